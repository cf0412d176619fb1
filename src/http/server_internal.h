/* Internal to the HTTP server (server.c and its helpers): the server and per-request state that server.c
 * and server_stream.c share, the request metrics table, and the reading of the PEM files the server
 * loads. Nothing here is seen by the API handlers. */
#ifndef OWNKEY_HTTP_SERVER_INTERNAL_H
#define OWNKEY_HTTP_SERVER_INTERNAL_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <microhttpd.h>

#include "http/http.h"

/* ---- Metrics (metrics.c) ---------------------------------------------------------------------------
 * Request counts by (operation, status) in a small table under a mutex, and one latency histogram in
 * atomic counters. Past OK_HTTP_METRICS_SERIES distinct pairs, further pairs count as operation "other". */
#define OK_HTTP_METRICS_SERIES 256
#define OK_HTTP_METRICS_OP_MAX 48
#define OK_HTTP_METRICS_BUCKETS 10 /* finite bucket bounds; +Inf is implied */

typedef struct {
    char operation[OK_HTTP_METRICS_OP_MAX];
    int status;
    uint64_t count;
} ok_http_series;

typedef struct {
    pthread_mutex_t lock;
    ok_http_series series[OK_HTTP_METRICS_SERIES];
    size_t nseries;
    _Atomic uint64_t buckets[OK_HTTP_METRICS_BUCKETS + 1]; /* non-cumulative; last is +Inf */
    _Atomic uint64_t sum_us;
    _Atomic uint64_t count;
} ok_http_metrics;

ok_err ok_http_metrics_init(ok_http_metrics *m);
void ok_http_metrics_destroy(ok_http_metrics *m);
/* Counts one finished request. operation NULL counts as "unknown". */
void ok_http_metrics_record(ok_http_metrics *m, const char *operation, int status, uint64_t duration_us);
/* Appends the Prometheus text exposition of the server's own metrics to out, then in_flight as a gauge. */
ok_err ok_http_metrics_render(ok_http_metrics *m, uint64_t in_flight, ok_buf *out);

/* ---- The server and one request (server.c) ---------------------------------------------------------- */
#define OK_HTTP_REQUEST_ID_MAX 128
#define OK_HTTP_HOST_MAX 255
#define OK_HTTP_DISCARD_MAX (16u * 1024u * 1024u) /* body bytes read and dropped before hanging up */

struct ok_http_server {
    struct MHD_Daemon *daemon;
    ok_http_handler handler;
    void *handler_ctx;
    const ok_http_stream_handler *stream; /* NULL: every request is buffered */
    void (*metrics_extra)(void *ctx, ok_buf *out);
    ok_http_metrics metrics;
    unsigned port;
    char default_host[OK_HTTP_HOST_MAX + 1]; /* "HOST:PORT" as bound, for requests without a usable Host */
    char *cert_pem, *key_pem;        /* held until stop: libmicrohttpd keeps the pointers */
    size_t cert_cap, key_cap;
    _Atomic uint64_t in_flight;      /* requests whose headers arrived and whose completion has not run */
    atomic_bool stopping;
    atomic_bool starting;            /* while set, libmicrohttpd's messages are kept for the start error */
    bool debug;                      /* OWNKEY_HTTP_DEBUG set: libmicrohttpd's messages go to stderr */
    pthread_mutex_t lock;            /* start_error and the drain wait */
    pthread_cond_t drained;
    char start_error[256];
};

/* A streamed request (server_stream.c): where it is in begin -> body* -> finish -> release. */
typedef enum {
    OK_HTTP_STREAM_NONE = 0,  /* buffered (or not yet decided) */
    OK_HTTP_STREAM_BODY,      /* accepted: the body goes to body() */
    OK_HTTP_STREAM_DROPPING,  /* body() failed, finish() has filled `pending`: the rest is dropped */
    OK_HTTP_STREAM_ANSWERED,  /* the reply is queued */
} ok_http_stream_phase;

enum { OK_HTTP_HOLD_NONE, OK_HTTP_HOLD_WAITING, OK_HTTP_HOLD_RELEASED, OK_HTTP_HOLD_FAILED, OK_HTTP_HOLD_ANSWERED };

/* One request, from the URI log callback to the completion callback. */
typedef struct {
    ok_http_server *server;
    struct MHD_Connection *conn;
    struct timespec started;
    bool headers_seen, counted, bad_uri, too_large, no_memory;
    uint64_t discarded;
    ok_buf body;
    /* Streamed requests only. */
    ok_http_stream_phase phase;
    bool owe_release;            /* release(stream_state) is due at completion */
    void *stream_state;
    ok_http_response pending;    /* finish()'s reply after a failed body(), sent once the body is dropped */
    bool has_pending;
    const char *operation;       /* for the metrics of a request that never got its reply */
    /* A held reply (ok_http_response.hold): OK_HTTP_HOLD_* and the reply, kept while the connection is
     * suspended. */
    atomic_int hold;
    ok_http_response held;
    char client[INET6_ADDRSTRLEN + 8];
    char request_id[OK_HTTP_REQUEST_ID_MAX + 1];
    char base_url[sizeof "https://" + OK_HTTP_HOST_MAX];
} ok_http_request_ctx;

/* Microseconds since `since` (CLOCK_MONOTONIC). */
uint64_t ok_http_elapsed_us(const struct timespec *since);
/* The request as the handlers see it (body NULL): valid while rq, url and method are. */
void ok_http_request_view(ok_http_request_ctx *rq, const char *url, const char *method, ok_http_request *out);
/* Checks what a handler filled (a status, one kind of body) and turns a bad response into a 500. */
void ok_http_response_check(ok_http_response *resp);
/* Queues resp (consuming it, body source included) and counts the request in the metrics. */
enum MHD_Result ok_http_answer(ok_http_request_ctx *rq, ok_http_response *resp);

/* ---- Streamed bodies (server_stream.c) --------------------------------------------------------------
 * The request side: called from the access handler when a stream handler is configured. headers() is
 * the first call (after the bad-URI check, never for the built-in endpoints): it returns true when the
 * request is now the stream's (*result is then the access handler's answer), false when it was declined
 * and goes the buffered way. body() and complete() take the later calls of an accepted request;
 * completed() runs from the completion callback and releases the handler's state. */
bool ok_http_stream_headers(ok_http_request_ctx *rq, const char *url, const char *method, enum MHD_Result *result);
enum MHD_Result ok_http_stream_body(ok_http_request_ctx *rq, const char *url, const char *method, const char *data,
                                    size_t *size);
enum MHD_Result ok_http_stream_complete(ok_http_request_ctx *rq, const char *url, const char *method);
void ok_http_stream_completed(ok_http_request_ctx *rq, enum MHD_RequestTerminationCode why);

/* The response side: a libmicrohttpd response reading resp's body_read on demand (resp's body source is
 * taken over: body_free runs exactly once, also when this fails and returns NULL). */
struct MHD_Response *ok_http_callback_response(ok_http_request_ctx *rq, ok_http_response *resp);
/* Runs resp's body_free (if any) and forgets the body source: for a response that will not be sent. */
void ok_http_body_source_drop(ok_http_response *resp);

/* ---- Responses (response.c) ----------------------------------------------------------------------- */
/* Replaces the body with {"error":{"code":code,"message":message}} and sets status. code and message are
 * the server's own fixed ASCII texts: nothing in them is escaped. */
ok_err ok_http_error_body(ok_http_response *r, int status, const char *code, const char *message);

/* ---- PEM files (tls_cert.c) ------------------------------------------------------------------------ */
/* Reads a whole PEM file (at most 1 MiB) into NUL-terminated memory from ok_secure_alloc; *cap is the
 * size to pass to ok_secure_free. */
ok_err ok_http_read_pem(const char *path, char **out, size_t *cap);

#endif
