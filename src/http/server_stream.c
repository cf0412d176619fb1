/* Streamed bodies for the HTTPS server (server.c): requests whose body goes piece by piece to the stream
 * handler (begin -> body* -> finish -> release, in constant memory and without OK_HTTP_MAX_BODY), and
 * responses whose body is read on demand (body_read, through MHD_create_response_from_callback). Owns the
 * order of those calls and the promise that release() and body_free() run exactly once; does not own the
 * request's identity, the reply's headers or the metrics table (server.c).
 *
 * libmicrohttpd 0.9.75 facts this file relies on (checked with curl against this build):
 * - a reply queued on the headers call makes it skip the body and close the connection afterwards (so an
 *   ANSWER never reads the upload); otherwise a reply is queued on the last call only, once the whole body
 *   is in, which is why a failed body() has its reply held until the rest of the body has been dropped;
 * - the completion callback runs for every request the access handler saw, also when the client hangs up
 *   mid-body or the daemon stops, which is where release() runs;
 * - a callback response's free callback runs when the response is destroyed (once the reply is sent or
 *   the client went away, or at once when queueing fails); when MHD_create_response_from_callback itself
 *   fails (NULL) it has not taken the callback's argument, which is then freed here;
 * - for HEAD, a callback response's reader is never called and Content-Length still gives the full size;
 * - MHD_CONTENT_READER_END_WITH_ERROR closes the connection: a sized body ends short, a chunked one ends
 *   without its last chunk, so either way the client sees a failed transfer;
 * - a sized response's reader is not called again once it has returned the last byte; the socket's TCP
 *   options stay as set (libmicrohttpd sets TCP_NODELAY once per connection and never corks). */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "http/server_internal.h"

/* How much a response body read asks for at a time (libmicrohttpd allocates it with the response). 16 KiB
 * to 1 MiB measured the same (GnuTLS sends 16 KiB records); 64 KiB matches the envelope's frames. */
#define STREAM_BLOCK (64u * 1024u)
/* Responses of this many bytes or more are sent corked (TCP_CORK): libmicrohttpd sends one 16 KiB TLS
 * record per write with TCP_NODELAY on, so without it every record is a TCP segment of its own; corked,
 * the kernel fills 64 KiB loopback segments. The cork goes on with the first piece read (a HEAD reply,
 * whose body is never read, is never corked) and comes off on the call that reads the last bytes (or
 * fails), so the end of the body and later replies on the connection go out at once. Measured on a
 * 64 MiB get: ~15 % less server CPU. */
#define CORK_MIN (1u << 20)
/* The metrics status of a streamed request whose reply never went out (the client went away): nginx's
 * "client closed request". */
#define STATUS_CLIENT_GONE 499

/* ---- Request bodies ---------------------------------------------------------------------------------- */

static void owe_release(ok_http_request_ctx *rq, void *state)
{
    rq->owe_release = true;
    rq->stream_state = state;
}

bool ok_http_stream_headers(ok_http_request_ctx *rq, const char *url, const char *method, enum MHD_Result *result)
{
    ok_http_server *s = rq->server;
    ok_http_request req;
    ok_http_request_view(rq, url, method, &req);
    ok_http_response resp = {.status = 0};
    ok_buf_init(&resp.body, 0);
    void *state = NULL;
    int verdict = s->stream->begin(s->handler_ctx, &req, &resp, &state);
    if (verdict == OK_HTTP_STREAM_ACCEPT) {
        owe_release(rq, state);
        rq->phase = OK_HTTP_STREAM_BODY;
        rq->operation = resp.operation; /* kept for the metrics, should the client go away */
        ok_http_body_source_drop(&resp);
        ok_http_response_free(&resp);
        *result = MHD_YES;
        return true;
    }
    if (verdict == OK_HTTP_STREAM_ANSWER) {
        if (state)
            owe_release(rq, state);
        rq->phase = OK_HTTP_STREAM_ANSWERED;
        ok_http_response_check(&resp);
        *result = ok_http_answer(rq, &resp); /* libmicrohttpd skips the body and closes after the reply */
        return true;
    }
    ok_http_body_source_drop(&resp);
    ok_http_response_free(&resp);
    if (verdict == OK_HTTP_STREAM_DECLINE)
        return false;
    /* A verdict outside the contract: a bug in the handler, answered like a handler that set no status. */
    if (state)
        owe_release(rq, state);
    rq->phase = OK_HTTP_STREAM_ANSWERED;
    ok_buf_init(&resp.body, 0);
    ok_http_response_check(&resp);
    *result = ok_http_answer(rq, &resp);
    return true;
}

/* body() failed with `failed`: finish() now (so the handler hears of it even if the client then goes
 * away), and hold its reply until the rest of the body has been dropped. */
static void finish_failed(ok_http_request_ctx *rq, const char *url, const char *method, ok_err failed)
{
    ok_http_server *s = rq->server;
    ok_http_request req;
    ok_http_request_view(rq, url, method, &req);
    memset(&rq->pending, 0, sizeof rq->pending);
    ok_buf_init(&rq->pending.body, 0);
    s->stream->finish(s->handler_ctx, rq->stream_state, failed, &req, &rq->pending);
    rq->has_pending = true;
    rq->phase = OK_HTTP_STREAM_DROPPING;
}

enum MHD_Result ok_http_stream_body(ok_http_request_ctx *rq, const char *url, const char *method, const char *data,
                                    size_t *size)
{
    size_t n = *size;
    *size = 0;
    if (rq->phase == OK_HTTP_STREAM_BODY) {
        ok_http_server *s = rq->server;
        ok_err rc = s->stream->body(s->handler_ctx, rq->stream_state, (const uint8_t *)data, n);
        if (rc == OK_OK)
            return MHD_YES;
        finish_failed(rq, url, method, rc);
        return MHD_YES;
    }
    /* Dropping after a failure (or, never expected, after a reply): read on up to a bound, then hang up. */
    rq->discarded += n;
    return rq->discarded > OK_HTTP_DISCARD_MAX ? MHD_NO : MHD_YES;
}

enum MHD_Result ok_http_stream_complete(ok_http_request_ctx *rq, const char *url, const char *method)
{
    if (rq->phase == OK_HTTP_STREAM_ANSWERED)
        return MHD_YES; /* never expected: the reply is queued already */
    ok_http_response resp;
    if (rq->has_pending) {
        resp = rq->pending;
        memset(&rq->pending, 0, sizeof rq->pending);
        rq->has_pending = false;
    } else {
        ok_http_server *s = rq->server;
        ok_http_request req;
        ok_http_request_view(rq, url, method, &req);
        memset(&resp, 0, sizeof resp);
        ok_buf_init(&resp.body, 0);
        s->stream->finish(s->handler_ctx, rq->stream_state, OK_OK, &req, &resp);
    }
    rq->phase = OK_HTTP_STREAM_ANSWERED;
    ok_http_response_check(&resp);
    return ok_http_answer(rq, &resp);
}

void ok_http_stream_completed(ok_http_request_ctx *rq, enum MHD_RequestTerminationCode why)
{
    (void)why; /* whatever the cause, the state is released; a missing reply is what counts */
    ok_http_server *s = rq->server;
    if (rq->phase == OK_HTTP_STREAM_BODY || rq->phase == OK_HTTP_STREAM_DROPPING) {
        const char *operation = rq->has_pending && rq->pending.operation ? rq->pending.operation : rq->operation;
        ok_http_metrics_record(&s->metrics, operation, STATUS_CLIENT_GONE, ok_http_elapsed_us(&rq->started));
    }
    if (rq->has_pending) {
        ok_http_body_source_drop(&rq->pending);
        ok_http_response_free(&rq->pending);
        rq->has_pending = false;
    }
    if (rq->owe_release) {
        rq->owe_release = false;
        s->stream->release(s->handler_ctx, rq->stream_state);
        rq->stream_state = NULL;
    }
    rq->phase = OK_HTTP_STREAM_NONE;
}

/* ---- Response bodies --------------------------------------------------------------------------------- */

typedef struct {
    int64_t (*read)(void *cls, uint64_t pos, uint8_t *buf, size_t max);
    void (*free)(void *cls);
    void *cls;
    uint64_t size;              /* UINT64_MAX: unknown */
    int cork_fd;                /* the connection's socket, while the body may still be corked, else -1 */
    bool corked;
} body_source;

static void set_cork(int fd, int on)
{
    (void)setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof on); /* advice: a failure costs speed only */
}

static ssize_t source_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    body_source *b = cls;
    int64_t n = b->read(b->cls, pos, (uint8_t *)buf, max);
    if (b->cork_fd >= 0) {
        /* Corked from the first piece on (never for HEAD, whose body is never read), uncorked for the
         * last piece or a failure, so that what is queued goes out now. */
        bool last = n <= 0 || (uint64_t)n > max || pos + (uint64_t)n >= b->size;
        if (last && b->corked)
            set_cork(b->cork_fd, 0);
        else if (!last && !b->corked)
            set_cork(b->cork_fd, 1);
        b->corked = !last;
        if (last)
            b->cork_fd = -1;
    }
    if (n == 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (n < 0 || (uint64_t)n > max)
        return MHD_CONTENT_READER_END_WITH_ERROR; /* the connection closes: the client sees a short body */
    return (ssize_t)n;
}

static void source_free(void *cls)
{
    body_source *b = cls;
    if (b->free)
        b->free(b->cls);
    free(b);
}

void ok_http_body_source_drop(ok_http_response *resp)
{
    void (*release)(void *) = resp->body_free;
    void *cls = resp->body_cls;
    resp->body_read = NULL;
    resp->body_free = NULL;
    resp->body_cls = NULL;
    if (release)
        release(cls);
}

struct MHD_Response *ok_http_callback_response(ok_http_request_ctx *rq, ok_http_response *resp)
{
    body_source *b = malloc(sizeof *b);
    if (!b) {
        ok_http_body_source_drop(resp);
        return NULL;
    }
    *b = (body_source){.read = resp->body_read, .free = resp->body_free, .cls = resp->body_cls,
                       .size = resp->body_size, .cork_fd = -1};
    if (resp->body_size != UINT64_MAX && resp->body_size >= CORK_MIN) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(rq->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci)
            b->cork_fd = ci->connect_fd;
    }
    resp->body_read = NULL;
    resp->body_free = NULL;
    resp->body_cls = NULL;
    uint64_t size = resp->body_size == UINT64_MAX ? MHD_SIZE_UNKNOWN : resp->body_size;
    struct MHD_Response *r = MHD_create_response_from_callback(size, STREAM_BLOCK, source_read, b, source_free);
    if (!r)
        source_free(b); /* libmicrohttpd did not take it */
    return r;
}
