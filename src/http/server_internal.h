/* Internal to the HTTP server (server.c and its helpers): the request metrics table and the reading of
 * the PEM files the server loads. Nothing here is seen by the API handlers. */
#ifndef OWNKEY_HTTP_SERVER_INTERNAL_H
#define OWNKEY_HTTP_SERVER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

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

/* ---- Responses (response.c) ----------------------------------------------------------------------- */
/* Replaces the body with {"error":{"code":code,"message":message}} and sets status. code and message are
 * the server's own fixed ASCII texts: nothing in them is escaped. */
ok_err ok_http_error_body(ok_http_response *r, int status, const char *code, const char *message);

/* ---- PEM files (tls_cert.c) ------------------------------------------------------------------------ */
/* Reads a whole PEM file (at most 1 MiB) into NUL-terminated memory from ok_secure_alloc; *cap is the
 * size to pass to ok_secure_free. */
ok_err ok_http_read_pem(const char *path, char **out, size_t *cap);

#endif
