/* Internal to the http layer: the request and response the server hands to the API handlers, and the
 * server itself (libmicrohttpd over TLS, thread pool, bounded bodies, metrics). The handlers (keys API,
 * management API) know nothing of libmicrohttpd. */
#ifndef OWNKEY_HTTP_H
#define OWNKEY_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "ownkey/util.h"

#define OK_HTTP_MAX_BODY (1024u * 1024u)  /* 413 past this */
#define OK_HTTP_MAX_HEADERS 32 /* response headers a handler may add (an object's metadata: 16) */

typedef struct ok_http_request ok_http_request;
typedef struct ok_http_response ok_http_response;

struct ok_http_request {
    const char *method;          /* "GET", "POST", ... */
    const char *path;            /* as received, percent-decoded, not normalized: "/keys/a//sign" stays */
    const uint8_t *body;         /* NULL when empty */
    size_t body_len;
    const char *client;          /* "ADDR:PORT" */
    const char *request_id;      /* x-ms-client-request-id, or a generated one */
    const char *base_url;        /* "https://" + the Host header the client used */
    /* Query parameter by name (names and values percent-decoded, so "api%2Dversion" is "api-version");
     * NULL when absent. */
    const char *(*query)(const ok_http_request *r, const char *name);
    /* Request header by name (case-insensitive); NULL when absent. */
    const char *(*header)(const ok_http_request *r, const char *name);
    /* Calls each(cls, name, value) for every request header in the order received, until it returns
     * non-zero. */
    void (*headers)(const ok_http_request *r, int (*each)(void *cls, const char *name, const char *value), void *cls);
    int can_hold;                /* the reply may be held (see ok_http_response's hold) */
    void *impl;                  /* the server's */
};

struct ok_http_response {
    int status;
    ok_buf body;                 /* response body (caller-initialized, unbounded) */
    const char *content_type;    /* static string; default "application/json; charset=utf-8" */
    const char *header_names[OK_HTTP_MAX_HEADERS];
    char *header_values[OK_HTTP_MAX_HEADERS]; /* malloc'ed */
    size_t header_count;
    const char *operation;       /* static string naming the operation, for metrics ("create", ...) */
    /* A body produced on demand instead of `body` (which must then be empty): the server calls read(cls,
     * pos, buf, max) as the client takes the bytes; it returns the bytes written (1..max), 0 at the end,
     * or -1 on failure (the connection is then closed: the client sees a short body). body_free(cls) runs
     * once when the server is done with it (also when the client went away), and also when the response
     * is never sent. body_size is the exact length (Content-Length), or UINT64_MAX when unknown. For a
     * HEAD request the server sends the headers only. */
    int64_t (*body_read)(void *cls, uint64_t pos, uint8_t *buf, size_t max);
    void (*body_free)(void *cls);
    void *body_cls;
    uint64_t body_size;
    /* A reply that may leave only once something else is done (the vault's: its audit line is durable),
     * without a server thread waiting for it; only when the request's can_hold is set. The server calls
     * hold(hold_cls, release, arg) once, after the handler returned, and sends nothing until the holder
     * calls release(arg, ok) exactly once, from any thread (also before hold returns): ok = 1 sends the
     * reply as it is; ok = 0 first has hold_failed(resp) replace it. */
    void (*hold)(void *hold_cls, void (*release)(void *arg, int ok), void *arg);
    void (*hold_failed)(ok_http_response *resp);
    void *hold_cls;
};

ok_err ok_http_response_header(ok_http_response *r, const char *name, const char *value);
void ok_http_response_free(ok_http_response *r);

/* Handles one request; always fills resp (status and body). Called on a server thread. */
typedef void (*ok_http_handler)(void *ctx, const ok_http_request *req, ok_http_response *resp);

/* Streamed request bodies (uploads of any size in constant memory), for the requests the stream handler
 * claims; every other request is buffered (OK_HTTP_MAX_BODY) and goes to the plain handler. The calls
 * for one request come in order, on one server thread; req is valid during each call (body NULL). */
enum { OK_HTTP_STREAM_DECLINE = 0, OK_HTTP_STREAM_ACCEPT = 1, OK_HTTP_STREAM_ANSWER = 2 };
typedef struct {
    /* The headers are in. DECLINE: not a streamed request (buffered as usual, state untouched). ACCEPT:
     * *state is the handler's; the body goes to body(), then finish(). ANSWER: resp is filled now (401,
     * 403, 404, ...), the body is not read, and the connection closes after the reply; release() still
     * runs when *state was set. */
    int (*begin)(void *ctx, const ok_http_request *req, ok_http_response *resp, void **state);
    /* A piece of the body. An error stops the upload: finish() is called at once with that error as
     * `failed`, and its reply goes out once the rest of the body has been read and dropped (past 16 MiB
     * more, the server hangs up instead). */
    ok_err (*body)(void *ctx, void *state, const uint8_t *data, size_t len);
    /* The whole body is in (failed == OK_OK), or body() failed (failed is its error): fill resp. */
    void (*finish)(void *ctx, void *state, ok_err failed, const ok_http_request *req, ok_http_response *resp);
    /* The request is over (answered, or the client went away mid-body): free state. Always called once
     * for an accepted request. */
    void (*release)(void *ctx, void *state);
} ok_http_stream_handler;

typedef struct {
    const char *listen;          /* "HOST:PORT", default "127.0.0.1:8443" */
    const char *cert_pem_path;   /* server certificate chain (PEM) */
    const char *key_pem_path;    /* its private key (PEM) */
    unsigned threads;            /* 0 = 16 x cores (at most 1024) */
    unsigned max_connections;    /* 0 = 1024 */
    ok_http_handler handler;
    void *handler_ctx;
    const ok_http_stream_handler *stream; /* may be NULL; called with handler_ctx */
    /* Extra lines for /metrics (e.g. seal state, key count), appended to the server's own. May be NULL. */
    void (*metrics_extra)(void *ctx, ok_buf *out);
} ok_http_config;

typedef struct ok_http_server ok_http_server;

/* Binds and starts serving (HTTPS only, TLS 1.2+). /healthz and /metrics are answered by the server
 * itself; everything else goes to the handler. */
ok_err ok_http_start(const ok_http_config *cfg, ok_http_server **out);
/* Stops accepting, lets requests in flight finish, frees the server. */
void ok_http_stop(ok_http_server *s);
/* The port actually bound (useful with port 0 in tests). */
unsigned ok_http_port(const ok_http_server *s);

/* Writes a self-signed certificate (EC P-256, valid one year, SAN DNS:localhost and IP:127.0.0.1) to
 * cert_path and key_path (the key with mode 0600) unless both exist already. */
ok_err ok_http_ensure_self_signed(const char *cert_path, const char *key_path);

#endif
