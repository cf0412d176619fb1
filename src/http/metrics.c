/* The HTTP server's own metrics: requests by (operation, status) and a latency histogram, rendered in the
 * Prometheus text format for /metrics. Cheap on the request path (one short mutex hold, three relaxed
 * atomic adds). Knows nothing of libmicrohttpd or of what the operations mean. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/server_internal.h"

/* Upper bounds of the finite buckets, in microseconds (0.001 s to 5 s). */
static const uint64_t BUCKET_US[OK_HTTP_METRICS_BUCKETS] = {
    1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000, 5000000,
};

ok_err ok_http_metrics_init(ok_http_metrics *m)
{
    memset(m, 0, sizeof *m);
    if (pthread_mutex_init(&m->lock, NULL) != 0)
        return ok_fail(OK_ERR_NOMEM, "cannot create the metrics lock");
    for (size_t i = 0; i <= OK_HTTP_METRICS_BUCKETS; i++)
        atomic_init(&m->buckets[i], 0);
    atomic_init(&m->sum_us, 0);
    atomic_init(&m->count, 0);
    return OK_OK;
}

void ok_http_metrics_destroy(ok_http_metrics *m)
{
    pthread_mutex_destroy(&m->lock);
}

/* The series for (operation, status), created if there is room. The last slot is kept for one overflow
 * series (operation "other", status 0) that absorbs every pair seen once the table is full. Called with
 * the lock held. */
static ok_http_series *series_for(ok_http_metrics *m, const char *operation, int status)
{
    for (size_t i = 0; i < m->nseries; i++) {
        ok_http_series *s = &m->series[i];
        if (s->status == status && strcmp(s->operation, operation) == 0)
            return s;
    }
    if (m->nseries == OK_HTTP_METRICS_SERIES)
        return &m->series[OK_HTTP_METRICS_SERIES - 1];
    ok_http_series *s = &m->series[m->nseries++];
    if (m->nseries == OK_HTTP_METRICS_SERIES) {
        operation = "other";
        status = 0;
    }
    snprintf(s->operation, sizeof s->operation, "%s", operation);
    s->status = status;
    s->count = 0;
    return s;
}

void ok_http_metrics_record(ok_http_metrics *m, const char *operation, int status, uint64_t duration_us)
{
    if (!operation || !*operation)
        operation = "unknown";
    pthread_mutex_lock(&m->lock);
    series_for(m, operation, status)->count++;
    pthread_mutex_unlock(&m->lock);

    size_t b = 0;
    while (b < OK_HTTP_METRICS_BUCKETS && duration_us > BUCKET_US[b])
        b++;
    atomic_fetch_add_explicit(&m->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->sum_us, duration_us, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->count, 1, memory_order_relaxed);
}

static ok_err put_str(ok_buf *out, const char *s)
{
    return ok_buf_put(out, s, strlen(s));
}

static ok_err put_fmt(ok_buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static ok_err put_fmt(ok_buf *out, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof line)
        return ok_fail(OK_ERR_LIMIT, "metrics line too long");
    return ok_buf_put(out, line, (size_t)n);
}

/* A label value with the escapes the exposition format requires (\\, \" and \n). */
static ok_err put_label_value(ok_buf *out, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            OK_GUARD(ok_buf_u8(out, '\\'));
        if (*v == '\n') {
            OK_GUARD(put_str(out, "\\n"));
            continue;
        }
        OK_GUARD(ok_buf_u8(out, (uint8_t)*v));
    }
    return OK_OK;
}

static ok_err render_requests(ok_http_metrics *m, ok_buf *out)
{
    /* Copy under the lock, format outside it. */
    ok_http_series *copy = malloc(sizeof m->series);
    if (!copy)
        return ok_fail(OK_ERR_NOMEM, "cannot copy the metrics table");
    pthread_mutex_lock(&m->lock);
    size_t n = m->nseries;
    memcpy(copy, m->series, n * sizeof *copy);
    pthread_mutex_unlock(&m->lock);

    ok_err rc = put_str(out, "# HELP ownkey_http_requests_total HTTP requests answered, by operation and status.\n"
                             "# TYPE ownkey_http_requests_total counter\n");
    for (size_t i = 0; rc == OK_OK && i < n; i++) {
        rc = put_str(out, "ownkey_http_requests_total{operation=\"");
        if (rc == OK_OK)
            rc = put_label_value(out, copy[i].operation);
        if (rc == OK_OK)
            rc = put_fmt(out, "\",status=\"%d\"} %" PRIu64 "\n", copy[i].status, copy[i].count);
    }
    free(copy);
    return rc;
}

static ok_err render_histogram(ok_http_metrics *m, ok_buf *out)
{
    OK_GUARD(put_str(out, "# HELP ownkey_http_request_duration_seconds Time from request headers to response.\n"
                          "# TYPE ownkey_http_request_duration_seconds histogram\n"));
    uint64_t cumulative = 0;
    for (size_t b = 0; b <= OK_HTTP_METRICS_BUCKETS; b++) {
        cumulative += atomic_load_explicit(&m->buckets[b], memory_order_relaxed);
        if (b < OK_HTTP_METRICS_BUCKETS)
            OK_GUARD(put_fmt(out, "ownkey_http_request_duration_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
                             (double)BUCKET_US[b] / 1e6, cumulative));
        else
            OK_GUARD(put_fmt(out, "ownkey_http_request_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n",
                             cumulative));
    }
    uint64_t sum = atomic_load_explicit(&m->sum_us, memory_order_relaxed);
    /* The count line repeats +Inf so that the exposition stays self-consistent under concurrent updates. */
    OK_GUARD(put_fmt(out, "ownkey_http_request_duration_seconds_sum %.6f\n", (double)sum / 1e6));
    OK_GUARD(put_fmt(out, "ownkey_http_request_duration_seconds_count %" PRIu64 "\n", cumulative));
    return OK_OK;
}

ok_err ok_http_metrics_render(ok_http_metrics *m, uint64_t in_flight, ok_buf *out)
{
    OK_GUARD(render_requests(m, out));
    OK_GUARD(render_histogram(m, out));
    OK_GUARD(put_fmt(out,
                     "# HELP ownkey_http_requests_in_flight Requests received and not yet answered.\n"
                     "# TYPE ownkey_http_requests_in_flight gauge\n"
                     "ownkey_http_requests_in_flight %" PRIu64 "\n",
                     in_flight));
    return OK_OK;
}
