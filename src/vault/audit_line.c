/* ownkey vault: an audit record's canonical form, the JSON object audit.c MACs and writes (without the
 * mac member, ending in '}'). Members in this order: time, request_id, identity, client, operation, key,
 * version, status, error, latency_ms; compact (no spaces), exactly the bytes jansson's
 * json_dumps(JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12)) makes of the same object,
 * which is how the line was first written (tests/unit/test_vault_audit_line.c compares the two). Written
 * here directly because building and dumping a jansson object was a twentieth of the daemon's time per
 * wrapkey request.
 *
 * String values are reduced to printable ASCII (other bytes become '?'), cut to 256 bytes ("..." at the
 * end), and whatever follows an "okt_" (a token's prefix) is replaced by '*'; of what is left only '"'
 * and '\' need escaping. NULL strings are JSON null. Owns no file or chain (audit.c). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "vault/audit_line.h"

#define FIELD_MAX 256 /* bytes of one string value */

static int b64url_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '_';
}

/* A member's string value from caller text, as described at the top. */
static void put_value(ok_fixbuf *o, const char *s)
{
    if (!s) {
        ok_fixbuf_str(o, "null");
        return;
    }
    char buf[FIELD_MAX + 1];
    size_t n = strnlen(s, FIELD_MAX + 1);
    int cut = n > FIELD_MAX;
    if (cut)
        n = FIELD_MAX;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[i] = (c >= 0x20 && c <= 0x7e) ? (char)c : '?';
    }
    if (cut)
        memcpy(buf + FIELD_MAX - 3, "...", 3);
    buf[n] = '\0';
    for (char *t = buf; (t = strstr(t, "okt_")) != NULL;)
        for (t += 4; b64url_char(*t); t++)
            *t = '*';
    ok_fixbuf_put(o, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        if (buf[i] == '"' || buf[i] == '\\') {
            ok_fixbuf_put(o, buf + run, i - run);
            ok_fixbuf_put(o, buf[i] == '"' ? "\\\"" : "\\\\", 2);
            run = i + 1;
        }
    }
    ok_fixbuf_put(o, buf + run, n - run);
    ok_fixbuf_put(o, "\"", 1);
    ok_zeroize(buf, sizeof buf);
}

/* A real as jansson writes it with precision 12: "%.12g", then ".0" if it looks like an integer, and an
 * exponent without '+' or leading zeros. */
static void put_real(ok_fixbuf *o, double v)
{
    char b[48];
    int n = snprintf(b, sizeof b - 3, "%.12g", v);
    if (n < 0 || (size_t)n >= sizeof b - 3) {
        o->overflow = 1;
        return;
    }
    if (!strchr(b, '.') && !strchr(b, 'e')) {
        memcpy(b + n, ".0", 3);
    }
    char *e = strchr(b, 'e');
    if (e) {
        char *start = e + 1, *end = start + 1;
        if (*start == '-')
            start++;
        while (*end == '0')
            end++;
        if (end != start)
            memmove(start, end, strlen(end) + 1);
    }
    ok_fixbuf_str(o, b);
}

static void member(ok_fixbuf *o, const char *name, int first)
{
    ok_fixbuf_str(o, first ? "{\"" : ",\"");
    ok_fixbuf_str(o, name);
    ok_fixbuf_put(o, "\":", 2);
}

/* The seconds part is formatted once per second per thread: gmtime_r takes glibc's time-zone lock,
 * which every server thread contended for on every request. */
static _Thread_local time_t tls_sec = -1;
static _Thread_local char tls_prefix[24];
static _Thread_local size_t tls_prefix_len;

void ok_audit_time_now(char out[OK_AUDIT_TIME_LEN])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != tls_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        tls_prefix_len = strftime(tls_prefix, sizeof tls_prefix, "%Y-%m-%dT%H:%M:%S", &tm);
        tls_sec = ts.tv_sec;
    }
    memcpy(out, tls_prefix, tls_prefix_len);
    unsigned ms = (unsigned)(ts.tv_nsec / 1000000) % 1000;
    char *p = out + tls_prefix_len;
    *p++ = '.';
    *p++ = (char)('0' + ms / 100);
    *p++ = (char)('0' + ms / 10 % 10);
    *p++ = (char)('0' + ms % 10);
    *p++ = 'Z';
    *p = '\0';
}

double ok_audit_latency(double ms)
{
    if (!(ms >= 0.0))
        ms = 0.0; /* negative or NaN */
    if (ms > 1e9)
        ms = 1e9;
    return (double)(int64_t)(ms * 1000.0 + 0.5) / 1000.0; /* whole microseconds */
}

ok_err ok_audit_record_json(const ok_audit_record *r, const char *time, char *out, size_t cap, size_t *len)
{
    ok_fixbuf o;
    char status[24];

    *len = 0;
    ok_fixbuf_init(&o, out, cap);
    member(&o, "time", 1);
    put_value(&o, time);
    member(&o, "request_id", 0);
    put_value(&o, r->request_id);
    member(&o, "identity", 0);
    put_value(&o, r->identity);
    member(&o, "client", 0);
    put_value(&o, r->client);
    member(&o, "operation", 0);
    put_value(&o, r->operation);
    member(&o, "key", 0);
    put_value(&o, r->key_name);
    member(&o, "version", 0);
    put_value(&o, r->key_version);
    member(&o, "status", 0);
    snprintf(status, sizeof status, "%d", r->status);
    ok_fixbuf_str(&o, status);
    member(&o, "error", 0);
    put_value(&o, r->error_code);
    member(&o, "latency_ms", 0);
    put_real(&o, ok_audit_latency(r->latency_ms));
    ok_fixbuf_put(&o, "}", 1);
    if (o.overflow)
        return ok_fail(OK_ERR_LIMIT, "the audit record does not fit its line");
    *len = o.len;
    return OK_OK;
}
