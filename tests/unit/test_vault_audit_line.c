/* Tests of the audit record's canonical form (audit_line.c): for thousands of records with random field
 * values (quotes, backslashes, control and non-ASCII bytes, "okt_" token prefixes, overlong and NULL
 * strings, odd latencies) the bytes are exactly what jansson makes of the same object with the flags the
 * log was first written with, after the same reduction of string values; the time is now's, also after
 * a second passed; too small a buffer is refused. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "test_support.h"
#include "vault/audit_line.h"

/* The reduction the log promises, written out again independently: printable ASCII, 256 bytes with
 * "..." at a cut, '*' over what follows "okt_". */
static json_t *reference_string(const char *s)
{
    if (!s)
        return json_null();
    char buf[300];
    size_t n = strlen(s);
    int cut = n > 256;
    if (cut)
        n = 256;
    for (size_t i = 0; i < n; i++)
        buf[i] = ((unsigned char)s[i] >= 0x20 && (unsigned char)s[i] <= 0x7e) ? s[i] : '?';
    if (cut)
        memcpy(buf + 253, "...", 3);
    buf[n] = '\0';
    for (char *t = buf; (t = strstr(t, "okt_")) != NULL;) {
        t += 4;
        while (*t && strchr("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_", *t))
            *t++ = '*';
    }
    return json_string(buf);
}

static char *reference_json(const ok_audit_record *r, const char *time)
{
    json_t *o = json_object();
    json_object_set_new(o, "time", json_string(time));
    json_object_set_new(o, "request_id", reference_string(r->request_id));
    json_object_set_new(o, "identity", reference_string(r->identity));
    json_object_set_new(o, "client", reference_string(r->client));
    json_object_set_new(o, "operation", reference_string(r->operation));
    json_object_set_new(o, "key", reference_string(r->key_name));
    json_object_set_new(o, "version", reference_string(r->key_version));
    json_object_set_new(o, "status", json_integer(r->status));
    json_object_set_new(o, "error", reference_string(r->error_code));
    json_object_set_new(o, "latency_ms", json_real(ok_audit_latency(r->latency_ms)));
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12));
    json_decref(o);
    return s;
}

static unsigned rnd(void)
{
    return (unsigned)rand();
}

/* A random field: NULL sometimes, else 0..300 bytes drawn from an alphabet rich in what needs care. */
static const char *random_field(char *buf)
{
    static const char *const pieces[] = {"\"", "\\", "okt_", "okt_abcDEF-_9", "\n", "\x01", "\x7f", "\xc3\xa9",
                                         "/", "a", "Z", " ", "{", "}", ":", ",", "\t"};
    if (rnd() % 8 == 0)
        return NULL;
    size_t target = rnd() % 4 == 0 ? rnd() % 300 : rnd() % 40, n = 0;
    while (n < target) {
        const char *p = pieces[rnd() % (sizeof pieces / sizeof pieces[0])];
        size_t len = strlen(p);
        if (n + len > 299)
            break;
        memcpy(buf + n, p, len);
        n += len;
    }
    buf[n] = '\0';
    return buf;
}

static void test_same_bytes_as_jansson(void **state)
{
    (void)state;
    static const double latencies[] = {0.0, 0.0004, 0.0005, 0.001, 1.0, 2.5, 12.3456789, 100.0, 123456.789,
                                       999999999.9999, 1e9, 5e9, -3.0, NAN, INFINITY, 1.0 / 3.0};
    char bufs[6][301], out[OK_AUDIT_RECORD_MAX], time[OK_AUDIT_TIME_LEN];
    srand(12345);
    ok_audit_time_now(time);
    for (int i = 0; i < 5000; i++) {
        ok_audit_record r = {
            .request_id = random_field(bufs[0]),
            .identity = random_field(bufs[1]),
            .client = random_field(bufs[2]),
            .operation = random_field(bufs[3]),
            .key_name = random_field(bufs[4]),
            .key_version = NULL,
            .status = (int)(rnd() % 600) - (i % 7 == 0 ? 1000 : 0),
            .error_code = random_field(bufs[5]),
            .latency_ms = i < 16 ? latencies[i] : (double)(rnd() % 100000000) / (double)(1 + rnd() % 100000),
        };
        size_t len = 0;
        assert_int_equal(ok_audit_record_json(&r, time, out, sizeof out, &len), OK_OK);
        char *want = reference_json(&r, time);
        assert_non_null(want);
        if (len != strlen(want) || memcmp(out, want, len) != 0) {
            fprintf(stderr, "record %d differs:\n  got  %.*s\n  want %s\n", i, (int)len, out, want);
            fail();
        }
        free(want);
    }
}

/* The time is now's, also after the second changed (the seconds part is kept per thread). */
static void test_time_is_now(void **state)
{
    (void)state;
    for (int round = 0; round < 2; round++) {
        char t[OK_AUDIT_TIME_LEN], before[32], after[32];
        struct tm tm;
        time_t a = time(NULL);
        ok_audit_time_now(t);
        time_t b = time(NULL);
        strftime(before, sizeof before, "%Y-%m-%dT%H:%M:%S", gmtime_r(&a, &tm));
        strftime(after, sizeof after, "%Y-%m-%dT%H:%M:%S", gmtime_r(&b, &tm));
        assert_int_equal(strlen(t), 24);
        assert_true(strncmp(t, before, 19) == 0 || strncmp(t, after, 19) == 0);
        assert_int_equal(t[19], '.');
        assert_int_equal(strspn(t + 20, "0123456789"), 3);
        assert_int_equal(t[23], 'Z');
        if (round == 0)
            usleep(1100 * 1000);
    }
}

static void test_too_small_a_buffer_is_refused(void **state)
{
    (void)state;
    ok_audit_record r = {.request_id = "r", .operation = "wrapkey", .status = 200, .latency_ms = 1.5};
    char out[64], time[OK_AUDIT_TIME_LEN];
    size_t len = 99;
    ok_audit_time_now(time);
    assert_int_equal(ok_audit_record_json(&r, time, out, 40, &len), OK_ERR_LIMIT);
    assert_int_equal(len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_bytes_as_jansson),
        cmocka_unit_test(test_time_is_now),
        cmocka_unit_test(test_too_small_a_buffer_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
