/* The HTTPS server behind http.h, on libmicrohttpd (TLS by GnuTLS, TLS 1.2 and 1.3 only): a pool of
 * polling threads (epoll where available), bounded connections and buffered request bodies (413 past
 * OK_HTTP_MAX_BODY, the handler never called), keep-alive, /healthz and /metrics answered here, and a
 * stop that finishes the requests in flight. Owns the translation between libmicrohttpd and the
 * ok_http_request/ok_http_response the handlers see; knows nothing of what the handlers do. Streamed
 * request bodies and on-demand response bodies are server_stream.c's; this file routes to it.
 *
 * libmicrohttpd 0.9.75 facts this file relies on (checked with curl against this build):
 * - the `url` given to the access handler is the percent-decoded path with the query cut off and nothing
 *   normalized ("/keys/a//sign" and "/keys/a/" stay as sent, "%2F" becomes "/");
 * - query parameter names are percent-decoded like the values ("api%2Dversion" is found as
 *   "api-version"), '+' decodes to a space; "%00" decodes to a NUL that silently truncates, so a raw URI
 *   holding "%00" is refused here with 400 (the URI log callback sees the raw URI);
 * - the URI log callback runs once per request and its result is the request's context; the completion
 *   callback runs for every request that reached it, even when the headers were malformed;
 * - a response queued on the first call (headers only) makes libmicrohttpd skip the body and close the
 *   connection after replying, which is how an announced oversized body is refused without reading it;
 * - HTTP/1.1 requests without Host are accepted, hence the fallback base URL;
 * - with MHD_ALLOW_SUSPEND_RESUME, a connection suspended from the access handler once its request is
 *   complete gets the handler called again after MHD_resume_connection (which any thread may call, also
 *   before the suspending handler has returned), and that call queues the held reply; stopping the daemon
 *   with a connection still suspended is undefined, so held replies count as in flight and a stop waits
 *   for them. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "http/server_internal.h"
#include "ownkey/crypto.h"

/* Key exchange groups, X25519 first: OpenSSL clients (curl, wrk, Node and so the Azure SDK) send a TLS 1.3
 * key share for X25519 only, and GnuTLS's default order (P-256 first, with server precedence) answered
 * each of their handshakes with a HelloRetryRequest: one more round trip and one more ClientHello. */
#define TLS_PRIORITIES                                                                                     \
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305:" \
    "-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:"            \
    "+GROUP-SECP384R1:%SERVER_PRECEDENCE"
#define DEFAULT_LISTEN "127.0.0.1:8443"
#define DEFAULT_MAX_CONNECTIONS 1024u
#define CONNECTION_TIMEOUT_S 60u      /* idle keep-alive connections and stalled clients */
/* Each connection's memory pool (request line, headers, read and write buffers). Streamed uploads arrive
 * one TLS record (16 KiB) per call whatever the pool size: 32 KiB to 256 KiB gave the same 1.3-1.5 GB/s
 * for 256 MiB put through a handler that drops the bytes, on 2 cores. libmicrohttpd zeroes the pool
 * between two requests on a connection, so its size is paid on every request: 64 KiB made that memset 7 %
 * of an A256KW wrap's samples, 32 KiB 3.9 %. 32 KiB still holds a full record next to 16 KiB of request
 * line and headers (x-ownkey-meta-*); 1024 connections stay under 32 MiB. */
#define CONNECTION_MEMORY (32u * 1024u)
#define CONNECTION_MEMORY_INCREMENT (16u * 1024u) /* the read buffer grows a TLS record at a time */
#define DRAIN_TIMEOUT_S 30            /* how long a stop waits for requests in flight */
#define DISCARD_MAX OK_HTTP_DISCARD_MAX
#define REQUEST_ID_MAX OK_HTTP_REQUEST_ID_MAX
#define HOST_MAX OK_HTTP_HOST_MAX
#define DEFAULT_CONTENT_TYPE "application/json; charset=utf-8"

typedef ok_http_request_ctx request_ctx;

/* A response body handed to libmicrohttpd, zeroized when it is done with it (bodies carry key material). */
typedef struct {
    uint8_t *data;
    size_t cap;
} owned_body;

/* ---- Small helpers -------------------------------------------------------------------------------- */

uint64_t ok_http_elapsed_us(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t us = (int64_t)(now.tv_sec - since->tv_sec) * 1000000 + (now.tv_nsec - since->tv_nsec) / 1000;
    return us > 0 ? (uint64_t)us : 0;
}

/* Only characters that are safe in a URL authority, a JSON string and a header value. */
static bool is_host_text(const char *h)
{
    size_t n = strlen(h);
    return n > 0 && n <= HOST_MAX &&
           strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:[]") == n;
}

static bool is_request_id_text(const char *id)
{
    size_t n = strlen(id);
    return n > 0 && n <= REQUEST_ID_MAX &&
           strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:{}") == n;
}

/* Random bytes for request ids, drawn from a per-thread pool refilled 32 ids at a time: one call into
 * OpenSSL's generator cost about as much as the rest of a small request's bookkeeping (3.9 % of the
 * daemon's time under wrapkey load). The ids are public, so the pool needs no wiping. */
#define ID_POOL_IDS 32
static _Thread_local uint8_t id_pool[ID_POOL_IDS][16];
static _Thread_local unsigned id_pool_left;

static ok_err id_random(uint8_t b[16])
{
    if (id_pool_left == 0) {
        OK_GUARD(ok_random(&id_pool[0][0], sizeof id_pool));
        id_pool_left = ID_POOL_IDS;
    }
    memcpy(b, id_pool[--id_pool_left], 16);
    return OK_OK;
}

/* A random UUID (version 4) in its usual text form. */
static void generate_request_id(char out[REQUEST_ID_MAX + 1])
{
    static _Atomic uint64_t fallback;
    uint8_t b[16];
    if (id_random(b) != OK_OK) {
        /* Never expected; an ID must still be unique within this process. */
        uint64_t n = atomic_fetch_add(&fallback, 1);
        memset(b, 0, sizeof b);
        memcpy(b, &n, sizeof n);
    }
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[n++] = '-';
        out[n++] = hex[b[i] >> 4];
        out[n++] = hex[b[i] & 15];
    }
    out[n] = '\0'; /* 36 characters */
}

static void format_client(struct MHD_Connection *conn, char *out, size_t len)
{
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    char addr[INET6_ADDRSTRLEN] = "unknown";
    unsigned port = 0;
    const struct sockaddr *sa = info ? info->client_addr : NULL;
    if (sa && sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, addr, sizeof addr);
        port = ntohs(in->sin_port);
        snprintf(out, len, "%s:%u", addr, port);
    } else if (sa && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof addr);
        port = ntohs(in6->sin6_port);
        snprintf(out, len, "[%s]:%u", addr, port);
    } else {
        snprintf(out, len, "%s", addr);
    }
}

/* ---- Request accessors the handlers call ---------------------------------------------------------- */

static const char *request_query(const ok_http_request *r, const char *name)
{
    const request_ctx *rq = r->impl;
    const char *value = NULL;
    size_t value_len = 0;
    if (!name || MHD_lookup_connection_value_n(rq->conn, MHD_GET_ARGUMENT_KIND, name, strlen(name), &value,
                                               &value_len) != MHD_YES)
        return NULL;
    return value ? value : ""; /* "?flag" is present with an empty value */
}

static const char *request_header(const ok_http_request *r, const char *name)
{
    const request_ctx *rq = r->impl;
    return name ? MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name) : NULL;
}

typedef struct {
    int (*each)(void *cls, const char *name, const char *value);
    void *cls;
} header_walk;

static enum MHD_Result walk_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    header_walk *w = cls;
    return w->each(w->cls, key, value ? value : "") ? MHD_NO : MHD_YES;
}

static void request_headers(const ok_http_request *r, int (*each)(void *cls, const char *name, const char *value),
                            void *cls)
{
    const request_ctx *rq = r->impl;
    header_walk w = {.each = each, .cls = cls};
    if (each)
        MHD_get_connection_values(rq->conn, MHD_HEADER_KIND, walk_header, &w);
}

/* ---- Responses ------------------------------------------------------------------------------------ */

static void free_owned_body(void *cls)
{
    owned_body *o = cls;
    ok_zeroize(o->data, o->cap);
    free(o->data);
    free(o);
}

/* Builds the libmicrohttpd response, taking over resp's body (buffer or body source). NULL when out of
 * memory or when a header is refused; the body source has been released either way. */
static struct MHD_Response *build_response(request_ctx *rq, ok_http_response *resp)
{
    struct MHD_Response *r;
    bool has_body = resp->body.len > 0 || resp->body_read;
    if (resp->body_read) {
        r = ok_http_callback_response(rq, resp);
    } else if (resp->body.len == 0) {
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    } else {
        owned_body *o = malloc(sizeof *o);
        if (!o)
            return NULL;
        o->data = resp->body.data;
        o->cap = resp->body.cap;
        r = MHD_create_response_from_buffer_with_free_callback_cls(resp->body.len, o->data, free_owned_body, o);
        if (!r) {
            free(o);
            return NULL;
        }
        ok_buf_init(&resp->body, 0); /* now libmicrohttpd's */
    }
    if (!r)
        return NULL;
    bool ok = true;
    if (has_body)
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                                     resp->content_type ? resp->content_type : DEFAULT_CONTENT_TYPE) == MHD_YES;
    ok = ok && MHD_add_response_header(r, "x-ms-request-id", rq->request_id) == MHD_YES;
    ok = ok && MHD_add_response_header(r, "x-ms-client-request-id", rq->request_id) == MHD_YES;
    ok = ok && MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") == MHD_YES;
    for (size_t i = 0; ok && i < resp->header_count; i++)
        ok = MHD_add_response_header(r, resp->header_names[i], resp->header_values[i]) == MHD_YES;
    /* While stopping, close each connection after its reply so that keep-alive clients let go. */
    if (ok && atomic_load(&rq->server->stopping))
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close") == MHD_YES;
    if (!ok) {
        MHD_destroy_response(r); /* runs the body source's free callback */
        return NULL;
    }
    return r;
}

/* Queues resp (and frees it), counts the request in the metrics. */
enum MHD_Result ok_http_answer(request_ctx *rq, ok_http_response *resp)
{
    int status = resp->status;
    const char *operation = resp->operation;
    struct MHD_Response *r = build_response(rq, resp);
    ok_http_body_source_drop(resp); /* (only when build_response failed before taking it) */
    if (!r) {
        static const char OOM[] = "{\"error\":{\"code\":\"InternalError\",\"message\":\"cannot build the response\"}}";
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        r = MHD_create_response_from_buffer(sizeof OOM - 1, (void *)OOM, MHD_RESPMEM_PERSISTENT);
        if (r)
            MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, DEFAULT_CONTENT_TYPE);
    }
    ok_http_response_free(resp);
    ok_http_metrics_record(&rq->server->metrics, operation, status, ok_http_elapsed_us(&rq->started));
    if (!r)
        return MHD_NO; /* out of memory: drop the connection */
    enum MHD_Result rc = MHD_queue_response(rq->conn, (unsigned)status, r);
    MHD_destroy_response(r);
    return rc;
}

void ok_http_response_check(ok_http_response *resp)
{
    const char *why = NULL;
    if (resp->status < 100 || resp->status > 599)
        why = "the handler set no status";
    else if (resp->body_read && resp->body.len)
        why = "the handler set two bodies";
    if (!why)
        return;
    const char *operation = resp->operation;
    ok_http_body_source_drop(resp);
    if (ok_http_error_body(resp, MHD_HTTP_INTERNAL_SERVER_ERROR, "InternalError", why) != OK_OK)
        resp->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
    resp->operation = operation;
}

static enum MHD_Result answer_error(request_ctx *rq, int status, const char *code, const char *message)
{
    ok_http_response resp = {.operation = "unknown"};
    ok_buf_init(&resp.body, 0);
    if (ok_http_error_body(&resp, status, code, message) != OK_OK)
        resp.status = MHD_HTTP_INTERNAL_SERVER_ERROR; /* empty body; answer() still replies */
    return ok_http_answer(rq, &resp);
}

/* ---- Built-in endpoints --------------------------------------------------------------------------- */

static enum MHD_Result answer_builtin(request_ctx *rq, const char *url, const char *method)
{
    bool health = strcmp(url, "/healthz") == 0;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        ok_http_response resp = {.operation = health ? "healthz" : "metrics"};
        ok_buf_init(&resp.body, 0);
        if (ok_http_error_body(&resp, MHD_HTTP_METHOD_NOT_ALLOWED, "MethodNotAllowed", "use GET") != OK_OK ||
            ok_http_response_header(&resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD") != OK_OK)
            resp.status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        return ok_http_answer(rq, &resp);
    }
    ok_http_response resp = {.status = 200, .operation = health ? "healthz" : "metrics"};
    ok_buf_init(&resp.body, 0);
    ok_err rc;
    if (health) {
        rc = ok_buf_put(&resp.body, "{\"status\":\"ok\"}", 15);
    } else {
        resp.content_type = "text/plain; version=0.0.4; charset=utf-8";
        ok_http_server *s = rq->server;
        /* This request is in flight too; it is not counted in its own report. */
        uint64_t in_flight = atomic_load(&s->in_flight);
        rc = ok_http_metrics_render(&s->metrics, in_flight ? in_flight - 1 : 0, &resp.body);
        if (rc == OK_OK && s->metrics_extra)
            s->metrics_extra(s->handler_ctx, &resp.body);
    }
    if (rc != OK_OK && ok_http_error_body(&resp, MHD_HTTP_INTERNAL_SERVER_ERROR, "InternalError",
                                          "cannot build the response") != OK_OK)
        resp.status = MHD_HTTP_INTERNAL_SERVER_ERROR;
    return ok_http_answer(rq, &resp);
}

/* ---- The request life cycle ----------------------------------------------------------------------- */

static request_ctx *request_new(ok_http_server *s)
{
    request_ctx *rq = calloc(1, sizeof *rq);
    if (!rq)
        return NULL;
    rq->server = s;
    clock_gettime(CLOCK_MONOTONIC, &rq->started);
    ok_buf_init(&rq->body, OK_HTTP_MAX_BODY);
    return rq;
}

/* Called with the raw request URI, before libmicrohttpd decodes it; its result becomes the context. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    request_ctx *rq = request_new(cls);
    if (rq && uri && strstr(uri, "%00"))
        rq->bad_uri = true;
    return rq;
}

static bool is_builtin(const char *url)
{
    return strcmp(url, "/healthz") == 0 || strcmp(url, "/metrics") == 0;
}

void ok_http_request_view(request_ctx *rq, const char *url, const char *method, ok_http_request *out)
{
    *out = (ok_http_request){
        .method = method,
        .path = url,
        .client = rq->client,
        .request_id = rq->request_id,
        .base_url = rq->base_url,
        .query = request_query,
        .header = request_header,
        .headers = request_headers,
        .impl = rq,
    };
}

/* First call: the headers are in. Identify the request, offer it to the stream handler, and refuse an
 * announced oversized body that is to be buffered. */
static enum MHD_Result on_headers(request_ctx *rq, struct MHD_Connection *conn, const char *url, const char *method)
{
    ok_http_server *s = rq->server;
    rq->headers_seen = true;
    rq->conn = conn;
    rq->counted = true;
    atomic_fetch_add(&s->in_flight, 1);

    format_client(conn, rq->client, sizeof rq->client);
    const char *id = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "x-ms-client-request-id");
    if (id && is_request_id_text(id))
        snprintf(rq->request_id, sizeof rq->request_id, "%s", id);
    else
        generate_request_id(rq->request_id);
    const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    snprintf(rq->base_url, sizeof rq->base_url, "https://%s", host && is_host_text(host) ? host : s->default_host);

    if (rq->bad_uri)
        return answer_error(rq, MHD_HTTP_BAD_REQUEST, "BadParameter", "the request URI holds an encoded NUL byte");
    enum MHD_Result streamed;
    if (s->stream && !is_builtin(url) && ok_http_stream_headers(rq, url, method, &streamed))
        return streamed;
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        /* libmicrohttpd has already refused a malformed Content-Length. */
        unsigned long long announced = strtoull(cl, NULL, 10);
        if (announced > OK_HTTP_MAX_BODY)
            return answer_error(rq, MHD_HTTP_CONTENT_TOO_LARGE, "RequestTooLarge",
                                "the request body is larger than 1048576 bytes");
        if (announced > 0 && ok_buf_reserve(&rq->body, (size_t)announced) != OK_OK)
            rq->no_memory = true;
    }
    return MHD_YES;
}

/* A piece of the body: kept up to the limit, then dropped (and counted, to hang up on an endless one). */
static enum MHD_Result on_body(request_ctx *rq, const char *data, size_t *size)
{
    size_t n = *size;
    *size = 0;
    if (!rq->too_large && !rq->no_memory) {
        if (n > OK_HTTP_MAX_BODY - rq->body.len) {
            rq->too_large = true;
            ok_buf_free(&rq->body);
        } else if (ok_buf_put(&rq->body, data, n) != OK_OK) {
            rq->no_memory = true;
            ok_buf_free(&rq->body);
        }
        if (!rq->too_large && !rq->no_memory)
            return MHD_YES;
    }
    rq->discarded += n;
    return rq->discarded > DISCARD_MAX ? MHD_NO : MHD_YES;
}

/* ---- Held replies ---------------------------------------------------------------------------------
 * The connection is suspended (no thread waits) until the holder releases the reply; the release resumes
 * it, and libmicrohttpd then calls the access handler again (the request is complete and has no reply
 * yet), which sends the reply (answer_held). */

static void release_reply(void *arg, int ok)
{
    request_ctx *rq = arg;
    atomic_store(&rq->hold, ok ? OK_HTTP_HOLD_RELEASED : OK_HTTP_HOLD_FAILED);
    MHD_resume_connection(rq->conn);
}

static enum MHD_Result hold_reply(request_ctx *rq, ok_http_response *resp)
{
    void (*hold)(void *, void (*)(void *, int), void *) = resp->hold;
    void *cls = resp->hold_cls;
    resp->hold = NULL;
    resp->hold_cls = NULL;
    rq->held = *resp; /* the reply is the request's now */
    atomic_store(&rq->hold, OK_HTTP_HOLD_WAITING);
    MHD_suspend_connection(rq->conn);
    hold(cls, release_reply, rq);
    return MHD_YES;
}

static enum MHD_Result answer_held(request_ctx *rq)
{
    int state = atomic_load(&rq->hold);
    if (state == OK_HTTP_HOLD_WAITING)
        return MHD_YES; /* not released yet (never expected: the connection is suspended until then) */
    if (state == OK_HTTP_HOLD_ANSWERED)
        return MHD_NO;  /* called again: the reply could not be queued; hang up */
    atomic_store(&rq->hold, OK_HTTP_HOLD_ANSWERED);
    ok_http_response resp = rq->held;
    memset(&rq->held, 0, sizeof rq->held);
    if (state == OK_HTTP_HOLD_FAILED && resp.hold_failed)
        resp.hold_failed(&resp);
    ok_http_response_check(&resp);
    return ok_http_answer(rq, &resp);
}

/* Last call: the whole request is in. */
static enum MHD_Result on_complete(request_ctx *rq, const char *url, const char *method)
{
    ok_http_server *s = rq->server;
    if (rq->too_large)
        return answer_error(rq, MHD_HTTP_CONTENT_TOO_LARGE, "RequestTooLarge",
                            "the request body is larger than 1048576 bytes");
    if (rq->no_memory)
        return answer_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "InternalError", "out of memory");
    if (is_builtin(url))
        return answer_builtin(rq, url, method);
    if (!s->handler)
        return answer_error(rq, MHD_HTTP_NOT_FOUND, "NotFound", "no handler");

    ok_http_request req;
    ok_http_request_view(rq, url, method, &req);
    req.body = rq->body.len ? rq->body.data : NULL;
    req.body_len = rq->body.len;
    ok_http_response resp = {.status = 0};
    ok_buf_init(&resp.body, 0);
    req.can_hold = 1;
    s->handler(s->handler_ctx, &req, &resp);
    ok_buf_free(&rq->body); /* request bodies carry key material too */
    if (resp.hold)
        return hold_reply(rq, &resp);
    ok_http_response_check(&resp);
    return ok_http_answer(rq, &resp);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    request_ctx *rq = *req_cls;
    if (!rq) {
        rq = request_new(cls); /* the URI log callback ran out of memory */
        if (!rq)
            return MHD_NO;
        *req_cls = rq;
    }
    if (!rq->headers_seen)
        return on_headers(rq, conn, url, method);
    if (atomic_load(&rq->hold) != OK_HTTP_HOLD_NONE)
        return answer_held(rq);
    if (rq->phase != OK_HTTP_STREAM_NONE)
        return *upload_data_size ? ok_http_stream_body(rq, url, method, upload_data, upload_data_size)
                                 : ok_http_stream_complete(rq, url, method);
    if (*upload_data_size)
        return on_body(rq, upload_data, upload_data_size);
    return on_complete(rq, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls, enum MHD_RequestTerminationCode why)
{
    ok_http_server *s = cls;
    request_ctx *rq = *req_cls;
    *req_cls = NULL;
    if (!rq)
        return;
    bool counted = rq->counted;
    ok_http_stream_completed(rq, why); /* a streamed request's state is released here, whatever happened */
    ok_http_body_source_drop(&rq->held); /* a held reply never sent (its body carries key material) */
    ok_http_response_free(&rq->held);
    ok_buf_free(&rq->body);
    free(rq);
    if (counted && atomic_fetch_sub(&s->in_flight, 1) == 1 && atomic_load(&s->stopping)) {
        pthread_mutex_lock(&s->lock);
        pthread_cond_broadcast(&s->drained);
        pthread_mutex_unlock(&s->lock);
    }
}

static void on_log(void *cls, const char *fmt, va_list ap)
{
    ok_http_server *s = cls;
    if (atomic_load(&s->starting)) {
        pthread_mutex_lock(&s->lock);
        vsnprintf(s->start_error, sizeof s->start_error, fmt, ap);
        s->start_error[strcspn(s->start_error, "\r\n")] = '\0';
        pthread_mutex_unlock(&s->lock);
    } else if (s->debug) {
        fputs("ownkeyd: http: ", stderr);
        vfprintf(stderr, fmt, ap);
    }
}

/* ---- Start and stop ------------------------------------------------------------------------------- */

/* Splits "HOST:PORT" or "[V6]:PORT" and resolves it to one address. */
static ok_err resolve_listen(const char *listen, struct sockaddr_storage *addr, bool *v6)
{
    char host[HOST_MAX + 1];
    const char *port;
    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (!close || close[1] != ':' || (size_t)(close - listen - 1) > HOST_MAX)
            return ok_fail(OK_ERR_INVALID_ARG, "listen address %s: expected [ADDR]:PORT", listen);
        snprintf(host, sizeof host, "%.*s", (int)(close - listen - 1), listen + 1);
        port = close + 2;
    } else {
        const char *colon = strrchr(listen, ':');
        if (!colon || colon == listen || (size_t)(colon - listen) > HOST_MAX)
            return ok_fail(OK_ERR_INVALID_ARG, "listen address %s: expected HOST:PORT", listen);
        snprintf(host, sizeof host, "%.*s", (int)(colon - listen), listen);
        port = colon + 1;
    }
    char *end = NULL;
    errno = 0;
    unsigned long number = strtoul(port, &end, 10);
    if (!*port || *end || errno || number > 65535)
        return ok_fail(OK_ERR_INVALID_ARG, "listen address %s: bad port", listen);

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *found = NULL;
    int gai = getaddrinfo(host, port, &hints, &found);
    if (gai != 0 || !found)
        return ok_fail(OK_ERR_INVALID_ARG, "listen address %s: %s", listen, gai_strerror(gai));
    memset(addr, 0, sizeof *addr);
    memcpy(addr, found->ai_addr, found->ai_addrlen);
    *v6 = found->ai_family == AF_INET6;
    freeaddrinfo(found);
    return OK_OK;
}

/* Handlers still block on some I/O (SQLite commits, object files, a customer's vault), and a blocked
 * libmicrohttpd thread holds up every connection it polls: so more threads than cores. The wait for a
 * reply's audit line no longer holds a thread (held replies); before, bench/vault on 2 cores needed 64
 * threads per core. After, on a slower 2-core machine: 8 to 32 threads did as well as or better than
 * 128 (A256KW wraps 6.0-8.0k/s against 5.2-5.8k, RSA-2048 unwraps within the noise). */
static unsigned default_threads(void)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores > 0 && cores < 64 ? 16u * (unsigned)cores : 1024u;
}

static void server_free(ok_http_server *s)
{
    if (s->cert_pem)
        ok_secure_free(s->cert_pem, s->cert_cap);
    if (s->key_pem)
        ok_secure_free(s->key_pem, s->key_cap);
    pthread_cond_destroy(&s->drained);
    pthread_mutex_destroy(&s->lock);
    ok_http_metrics_destroy(&s->metrics);
    free(s);
}

static ok_err server_new(const ok_http_config *cfg, ok_http_server **out)
{
    ok_http_server *s = calloc(1, sizeof *s);
    if (!s)
        return ok_fail(OK_ERR_NOMEM, "cannot allocate the server");
    if (ok_http_metrics_init(&s->metrics) != OK_OK) {
        free(s);
        return ok_fail(OK_ERR_NOMEM, "cannot create the metrics");
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->drained, NULL);
    atomic_init(&s->in_flight, 0);
    atomic_init(&s->stopping, false);
    atomic_init(&s->starting, false);
    s->handler = cfg->handler;
    s->handler_ctx = cfg->handler_ctx;
    s->stream = cfg->stream;
    s->metrics_extra = cfg->metrics_extra;
    const char *debug = getenv("OWNKEY_HTTP_DEBUG");
    s->debug = debug && *debug && strcmp(debug, "0") != 0;
    ok_err rc = ok_http_read_pem(cfg->cert_pem_path, &s->cert_pem, &s->cert_cap);
    if (rc == OK_OK)
        rc = ok_http_read_pem(cfg->key_pem_path, &s->key_pem, &s->key_cap);
    if (rc != OK_OK) {
        server_free(s);
        return rc;
    }
    *out = s;
    return OK_OK;
}

/* The host for base URLs when a request carries no usable Host: the listen host with the bound port. */
static void set_default_host(ok_http_server *s, const char *listen)
{
    const char *colon = listen[0] == '[' ? strchr(listen, ']') + 1 : strrchr(listen, ':');
    snprintf(s->default_host, sizeof s->default_host, "%.*s:%u", (int)(colon - listen), listen, s->port);
    if (!is_host_text(s->default_host))
        snprintf(s->default_host, sizeof s->default_host, "localhost:%u", s->port);
}

ok_err ok_http_start(const ok_http_config *cfg, ok_http_server **out)
{
    if (!cfg || !out || !cfg->cert_pem_path || !cfg->key_pem_path)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_http_start: missing configuration");
    *out = NULL;
    const char *listen = cfg->listen && *cfg->listen ? cfg->listen : DEFAULT_LISTEN;
    struct sockaddr_storage addr;
    bool v6 = false;
    OK_GUARD(resolve_listen(listen, &addr, &v6));
    ok_http_server *s = NULL;
    OK_GUARD(server_new(cfg, &s));

    unsigned threads = cfg->threads ? cfg->threads : default_threads();
    unsigned max_connections = cfg->max_connections ? cfg->max_connections : DEFAULT_MAX_CONNECTIONS;
    if (max_connections < threads)
        max_connections = threads; /* libmicrohttpd shares the limit out among the pool's threads */
    unsigned flags =
        MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES)
        flags |= MHD_USE_EPOLL;
    if (v6)
        flags |= MHD_USE_IPv6;

    atomic_store(&s->starting, true);
    s->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_HTTPS_MEM_CERT, s->cert_pem, MHD_OPTION_HTTPS_MEM_KEY, s->key_pem, MHD_OPTION_HTTPS_PRIORITIES,
        TLS_PRIORITIES, MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT, max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, CONNECTION_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)CONNECTION_MEMORY, MHD_OPTION_CONNECTION_MEMORY_INCREMENT, (size_t)CONNECTION_MEMORY_INCREMENT,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_EXTERNAL_LOGGER, on_log, s, MHD_OPTION_END);
    atomic_store(&s->starting, false);
    if (!s->daemon) {
        pthread_mutex_lock(&s->lock);
        ok_err rc = ok_fail(OK_ERR_IO, "cannot serve HTTPS on %s: %s", listen,
                            s->start_error[0] ? s->start_error : "libmicrohttpd refused to start");
        pthread_mutex_unlock(&s->lock);
        server_free(s);
        return rc;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : 0;
    set_default_host(s, listen);
    *out = s;
    return OK_OK;
}

unsigned ok_http_port(const ok_http_server *s)
{
    return s ? s->port : 0;
}

void ok_http_stop(ok_http_server *s)
{
    if (!s)
        return;
    atomic_store(&s->stopping, true);
    MHD_socket listener = MHD_quiesce_daemon(s->daemon);
    /* Requests whose headers have arrived finish and are answered; then the idle connections close. */
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += DRAIN_TIMEOUT_S;
    pthread_mutex_lock(&s->lock);
    while (atomic_load(&s->in_flight) > 0)
        if (pthread_cond_timedwait(&s->drained, &s->lock, &deadline) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&s->lock);
    MHD_stop_daemon(s->daemon);
    if (listener != MHD_INVALID_SOCKET)
        close(listener);
    server_free(s);
}
