/* Tests of the vault's audit log (src/vault/audit.c): the line format, the MAC chain and both verifiers
 * (intact, a changed byte, a deleted, reordered or truncated line), lines written while sealed, reopening
 * (head restored, crash fragment dropped), write failures (OK_ERR_IO, chain unchanged), what never reaches
 * the file, and the append rate. The vault is built by hand (random audit key, locks) so that these tests
 * need nothing of vault.c or seal.c. */
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "ownkey/vault.h"
#include "test_support.h"
#include "vault/modules.h"

/* ---- A hand-built vault ---------------------------------------------------------------------------- */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static ok_vault *vault_new(void)
{
    ok_vault *v = calloc(1, sizeof *v);
    assert_non_null(v);
    char tmpl[] = "/tmp/ownkey-audit-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    v->dir = strdup(tmpl);
    assert_int_equal(pthread_rwlock_init(&v->seal_lock, NULL), 0);
    assert_int_equal(pthread_mutex_init(&v->audit_lock, NULL), 0);
    v->audit_key = ok_secure_alloc(32);
    assert_non_null(v->audit_key);
    assert_int_equal(ok_random(v->audit_key, 32), OK_OK);
    v->audit_fd = -1;
    assert_int_equal(ok_audit_open(v), OK_OK);
    return v;
}

static void vault_free(ok_vault *v)
{
    ok_audit_close(v);
    ok_secure_free(v->audit_key, 32);
    pthread_rwlock_destroy(&v->seal_lock);
    pthread_mutex_destroy(&v->audit_lock);
    nftw(v->dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(v->dir);
    free(v);
}

static int setup(void **state)
{
    *state = vault_new();
    return 0;
}

static int teardown(void **state)
{
    vault_free(*state);
    return 0;
}

/* Seal and unseal as seal.c does, for the audit's purposes: the audit key goes away and comes back. */
static uint8_t *seal(ok_vault *v)
{
    uint8_t *key = v->audit_key;
    pthread_rwlock_wrlock(&v->seal_lock);
    v->audit_key = NULL;
    v->sealed = 1;
    pthread_rwlock_unlock(&v->seal_lock);
    return key;
}

static void unseal(ok_vault *v, uint8_t *key)
{
    pthread_rwlock_wrlock(&v->seal_lock);
    v->audit_key = key;
    v->sealed = 0;
    pthread_rwlock_unlock(&v->seal_lock);
}

static const char *log_path(ok_vault *v)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/audit.log", v->dir);
    return path;
}

/* Record i (rid and key are its buffers, 64 bytes each). */
static ok_audit_record make_record(int i, char *rid, char *key)
{
    snprintf(rid, 64, "req-%d", i);
    snprintf(key, 64, "key-%d", i % 7);
    return (ok_audit_record){
        .request_id = rid,
        .identity = i % 3 ? "alice" : NULL,
        .client = "127.0.0.1:5555",
        .operation = i % 2 ? "wrapkey" : "get",
        .key_name = key,
        .key_version = i % 4 ? "0123456789abcdef0123456789abcdef" : NULL,
        .status = i % 5 ? 200 : 403,
        .error_code = i % 5 ? NULL : "Forbidden",
        .latency_ms = 0.25 * i,
    };
}

static ok_err write_record(ok_vault *v, int i)
{
    char rid[64], key[64];
    ok_audit_record r = make_record(i, rid, key);
    return ok_vault_audit(v, &r);
}

static void write_records(ok_vault *v, int from, int to)
{
    for (int i = from; i < to; i++)
        assert_int_equal(write_record(v, i), OK_OK);
}

static void expect_live(ok_vault *v, uint64_t lines, uint64_t first_bad)
{
    uint64_t n = 99, bad = 99;
    assert_int_equal(ok_vault_audit_verify(v, &n, &bad), OK_OK);
    assert_int_equal(n, lines);
    assert_int_equal(bad, first_bad);
}

static void expect_file(ok_vault *v, uint64_t lines, uint64_t first_bad)
{
    uint64_t n = 99, bad = 99;
    assert_int_equal(ok_audit_verify_file(log_path(v), v->audit_key, &n, &bad), OK_OK);
    assert_int_equal(n, lines);
    assert_int_equal(bad, first_bad);
}

/* The file as lines (without newlines); the array and the text are one allocation each. */
typedef struct {
    char *text;
    char *line[256];
    size_t count;
    int trailing_newline;
} log_lines;

static void read_lines(ok_vault *v, log_lines *l)
{
    size_t len = 0;
    memset(l, 0, sizeof *l);
    l->text = test_read_file(log_path(v), &len);
    assert_non_null(l->text);
    l->trailing_newline = len > 0 && l->text[len - 1] == '\n';
    for (char *p = l->text, *nl; *p; p = nl + 1) {
        nl = strchr(p, '\n');
        assert_non_null(nl);
        *nl = '\0';
        assert_true(l->count < 256);
        l->line[l->count++] = p;
    }
}

/* Writes lines[order[0]], lines[order[1]], ... back to the log (n entries). */
static void write_lines(ok_vault *v, const log_lines *l, const size_t *order, size_t n)
{
    FILE *f = fopen(log_path(v), "w");
    assert_non_null(f);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s\n", l->line[order[i]]);
    fclose(f);
}

static void identity_order(size_t *order, size_t n)
{
    for (size_t i = 0; i < n; i++)
        order[i] = i;
}

/* ---- Tests -------------------------------------------------------------------------------------------- */

static void test_line_format(void **state)
{
    ok_vault *v = *state;
    write_records(v, 0, 3);
    log_lines l;
    read_lines(v, &l);
    assert_int_equal(l.count, 3);
    assert_true(l.trailing_newline);
    static const char *const order[] = {"time", "request_id", "identity", "client", "operation", "key",
                                        "version", "status", "error", "latency_ms", "mac"};
    for (size_t i = 0; i < l.count; i++) {
        json_error_t err;
        json_t *o = json_loads(l.line[i], 0, &err);
        assert_non_null(o);
        assert_int_equal(json_object_size(o), 11);
        /* Members appear in the documented order. */
        const char *prev = l.line[i];
        for (size_t k = 0; k < 11; k++) {
            char member[32];
            snprintf(member, sizeof member, "\"%s\":", order[k]);
            const char *at = strstr(l.line[i], member);
            assert_non_null(at);
            assert_true(at >= prev);
            prev = at;
        }
        const char *t = json_string_value(json_object_get(o, "time"));
        assert_non_null(t);
        assert_int_equal(strlen(t), 24); /* 2025-01-02T03:04:05.678Z */
        assert_int_equal(t[10], 'T');
        assert_int_equal(t[19], '.');
        assert_int_equal(t[23], 'Z');
        const char *mac = json_string_value(json_object_get(o, "mac"));
        assert_non_null(mac);
        assert_int_equal(strspn(mac, "0123456789abcdef"), 64);
        assert_int_equal(strlen(mac), 64);
        assert_true(json_is_integer(json_object_get(o, "status")));
        assert_true(json_is_number(json_object_get(o, "latency_ms")));
        json_decref(o);
    }
    assert_non_null(strstr(l.line[0], "\"identity\":null"));
    assert_non_null(strstr(l.line[0], "\"error\":\"Forbidden\""));
    assert_non_null(strstr(l.line[0], "\"version\":null"));
    assert_non_null(strstr(l.line[1], "\"error\":null"));
    assert_non_null(strstr(l.line[2], "\"latency_ms\":0.5,"));
    free(l.text);
    ok_audit_record r = {.operation = NULL};
    assert_int_equal(ok_vault_audit(v, &r), OK_ERR_INVALID_ARG);
}

static void test_chain_intact(void **state)
{
    ok_vault *v = *state;
    expect_live(v, 0, 0);
    expect_file(v, 0, 0);
    write_records(v, 0, 20);
    expect_live(v, 20, 0);
    expect_file(v, 20, 0);
    /* The chain is under the audit key: another key fails at line 1. */
    uint8_t other[32];
    assert_int_equal(ok_random(other, sizeof other), OK_OK);
    uint64_t n = 0, bad = 0;
    assert_int_equal(ok_audit_verify_file(log_path(v), other, &n, &bad), OK_OK);
    assert_int_equal(bad, 1);
    assert_int_equal(ok_audit_verify_file("/nonexistent/audit.log", other, &n, &bad), OK_ERR_IO);
}

static void test_changed_byte(void **state)
{
    ok_vault *v = *state;
    write_records(v, 0, 6);
    log_lines l;
    read_lines(v, &l);
    char *status = strstr(l.line[2], "\"status\":200");
    assert_non_null(status);
    status[9] = '4'; /* 200 -> 400 */
    size_t order[6];
    identity_order(order, 6);
    write_lines(v, &l, order, 6);
    expect_file(v, 6, 3);
    expect_live(v, 6, 3);
    /* A changed MAC digit is caught too. */
    status[9] = '2';
    char *mac = strstr(l.line[4], "\"mac\":\"") + 7;
    mac[5] = mac[5] == 'a' ? 'b' : 'a';
    write_lines(v, &l, order, 6);
    expect_file(v, 6, 5);
    expect_live(v, 6, 5);
    free(l.text);
}

static void test_deleted_and_reordered_lines(void **state)
{
    ok_vault *v = *state;
    write_records(v, 0, 6);
    log_lines l;
    read_lines(v, &l);
    size_t without2[] = {0, 2, 3, 4, 5};
    write_lines(v, &l, without2, 5);
    expect_file(v, 5, 2);
    expect_live(v, 5, 2);
    size_t without1[] = {1, 2, 3, 4, 5};
    write_lines(v, &l, without1, 5);
    expect_file(v, 5, 1);
    size_t swapped[] = {0, 1, 3, 2, 4, 5};
    write_lines(v, &l, swapped, 6);
    expect_file(v, 6, 3);
    expect_live(v, 6, 3);
    size_t dup[] = {0, 1, 1, 2, 3, 4, 5};
    write_lines(v, &l, dup, 7);
    expect_file(v, 7, 3);
    size_t all[6];
    identity_order(all, 6);
    write_lines(v, &l, all, 6);
    expect_file(v, 6, 0);
    expect_live(v, 6, 0);
    free(l.text);
}

static void test_truncation(void **state)
{
    ok_vault *v = *state;
    write_records(v, 0, 5);
    log_lines l;
    read_lines(v, &l);
    /* Cut inside line 4: lines 1-3 stand, the fragment is bad. */
    size_t keep = strlen(l.line[0]) + strlen(l.line[1]) + strlen(l.line[2]) + 3 + 20;
    assert_int_equal(truncate(log_path(v), (off_t)keep), 0);
    expect_file(v, 4, 4);
    expect_live(v, 4, 4);
    /* Whole lines cut from the end: invisible in the file alone, caught by the running vault. */
    size_t order[5];
    identity_order(order, 5);
    write_lines(v, &l, order, 4);
    expect_file(v, 4, 0);
    expect_live(v, 4, 5);
    write_lines(v, &l, order, 0);
    expect_file(v, 0, 0);
    expect_live(v, 0, 1);
    free(l.text);
}

static void test_sealed_period(void **state)
{
    ok_vault *v = *state;
    write_records(v, 0, 2);
    uint8_t *key = seal(v);
    write_records(v, 2, 5); /* lines 3-5, written without the key */
    uint64_t n, bad;
    assert_int_equal(ok_vault_audit_verify(v, &n, &bad), OK_ERR_SEALED);
    log_lines l;
    read_lines(v, &l);
    assert_int_equal(l.count, 5);
    for (size_t i = 2; i < 5; i++) {
        size_t len = strlen(l.line[i]);
        assert_true(len > 26);
        assert_string_equal(l.line[i] + len - 26, ",\"sealed\":true,\"mac\":null}");
    }
    free(l.text);
    unseal(v, key);
    /* The running vault's head vouches for them; the file alone cannot until a MAC'd line follows. */
    expect_live(v, 5, 0);
    expect_file(v, 5, 3);
    write_records(v, 5, 7);
    expect_live(v, 7, 0);
    expect_file(v, 7, 0);

    /* A changed sealed line is reported at the MAC'd line that covers it. */
    read_lines(v, &l);
    char *status = strstr(l.line[3], "\"status\":");
    assert_non_null(status);
    status[9] = status[9] == '2' ? '5' : '2';
    size_t order[7];
    identity_order(order, 7);
    write_lines(v, &l, order, 7);
    expect_file(v, 7, 6);
    /* So is a deleted one. */
    status[9] = status[9] == '2' ? '5' : '2';
    size_t without4[] = {0, 1, 2, 4, 5, 6};
    write_lines(v, &l, without4, 6);
    expect_file(v, 6, 5);
    write_lines(v, &l, order, 7);
    expect_file(v, 7, 0);
    expect_live(v, 7, 0);
    free(l.text);
}

static void test_reopen(void **state)
{
    ok_vault *v = *state;
    write_records(v, 0, 4);
    ok_audit_close(v);
    assert_int_equal(ok_audit_open(v), OK_OK);
    write_records(v, 4, 6);
    expect_live(v, 6, 0);
    expect_file(v, 6, 0);

    /* Opening while sealed: the head comes from the last MAC'd line, without the key; trailing sealed
     * lines are folded in. */
    uint8_t *key = seal(v);
    write_records(v, 6, 8);
    ok_audit_close(v);
    assert_int_equal(ok_audit_open(v), OK_OK);
    write_records(v, 8, 9);
    unseal(v, key);
    write_records(v, 9, 10);
    expect_live(v, 10, 0);
    expect_file(v, 10, 0);

    /* A crash in the middle of a write leaves a fragment without a newline: open drops it. */
    ok_audit_close(v);
    int fd = open(log_path(v), O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "{\"time\":\"2025-", 14), 14);
    close(fd);
    expect_file(v, 11, 11);
    assert_int_equal(ok_audit_open(v), OK_OK);
    expect_file(v, 10, 0);
    write_records(v, 10, 11);
    expect_live(v, 11, 0);
    expect_file(v, 11, 0);
}

static void test_write_failure(void **state)
{
    ok_vault *v = *state;
    write_records(v, 0, 3);
    int good = v->audit_fd;
    uint8_t head[32];
    memcpy(head, v->audit_prev_mac, 32);

    int full = open("/dev/full", O_WRONLY | O_APPEND);
    if (full >= 0) {
        v->audit_fd = full;
        assert_int_equal(write_record(v, 3), OK_ERR_IO);
        assert_memory_equal(v->audit_prev_mac, head, 32); /* the chain did not move */
        close(full);
    }
    int ro = open(log_path(v), O_RDONLY);
    assert_true(ro >= 0);
    v->audit_fd = ro;
    assert_int_equal(write_record(v, 3), OK_ERR_IO);
    assert_memory_equal(v->audit_prev_mac, head, 32);
    close(ro);
    v->audit_fd = -1;
    assert_int_equal(write_record(v, 3), OK_ERR_IO);
    v->audit_fd = good;

    /* The log continues intact. */
    write_records(v, 3, 5);
    expect_live(v, 5, 0);
    expect_file(v, 5, 0);
}

/* A failed fdatasync is final for the open log (a later one could succeed over lost lines): that request
 * and every later one fail, until the log is opened again; the file then continues intact. */
static void test_sync_failure_is_final(void **state)
{
    ok_vault *v = *state;
    write_records(v, 0, 3);
    int good = v->audit_fd;
    int p[2];
    assert_int_equal(pipe(p), 0);
    v->audit_fd = p[1]; /* the write goes through, fdatasync on a pipe fails (EINVAL) */
    assert_int_equal(write_record(v, 3), OK_ERR_IO);
    assert_non_null(strstr(ok_err_message(), "fdatasync"));
    v->audit_fd = good;
    close(p[0]);
    close(p[1]);
    assert_int_equal(write_record(v, 3), OK_ERR_IO);
    assert_non_null(strstr(ok_err_message(), "an earlier fdatasync failed"));
    assert_int_equal(write_record(v, 4), OK_ERR_IO);

    ok_audit_close(v);
    assert_int_equal(ok_audit_open(v), OK_OK);
    write_records(v, 3, 5);
    expect_live(v, 5, 0);
    expect_file(v, 5, 0);
}

typedef struct {
    atomic_int done, failed;
} durable_count;

static void count_durable(void *cls, ok_err rc)
{
    durable_count *d = cls;
    if (rc != OK_OK)
        atomic_fetch_add(&d->failed, 1);
    atomic_fetch_add(&d->done, 1);
}

static bool wait_count(atomic_int *v, int want)
{
    for (int i = 0; i < 1000 && atomic_load(v) < want; i++)
        usleep(5000);
    return atomic_load(v) == want;
}

/* The non-blocking way (append, then when_durable): every line is called back once, as durable, and the
 * log is whole; when the sync fails, the waiters are called back with the failure. */
static void test_when_durable(void **state)
{
    ok_vault *v = *state;
    durable_count d = {0};
    for (int i = 0; i < 200; i++) {
        char rid[64], key[64];
        ok_audit_record r = make_record(i, rid, key);
        ok_audit_ticket t;
        assert_int_equal(ok_vault_audit_append(v, &r, &t), OK_OK);
        ok_vault_audit_when_durable(v, t, count_durable, &d);
    }
    assert_true(wait_count(&d.done, 200));
    assert_int_equal(atomic_load(&d.failed), 0);
    expect_live(v, 200, 0);
    expect_file(v, 200, 0);

    int good = v->audit_fd, p[2];
    assert_int_equal(pipe(p), 0);
    v->audit_fd = p[1]; /* fdatasync on a pipe fails */
    durable_count f = {0};
    char rid[64], key[64];
    ok_audit_record r = make_record(200, rid, key);
    ok_audit_ticket t;
    assert_int_equal(ok_vault_audit_append(v, &r, &t), OK_OK);
    ok_vault_audit_when_durable(v, t, count_durable, &f);
    assert_true(wait_count(&f.done, 1));
    assert_int_equal(atomic_load(&f.failed), 1);
    v->audit_fd = good;
    close(p[0]);
    close(p[1]);
    ok_audit_close(v); /* the failure is final until the log is opened again */
    assert_int_equal(ok_audit_open(v), OK_OK);
    expect_file(v, 200, 0);
}

static void test_never_written(void **state)
{
    ok_vault *v = *state;
    char long_id[1000];
    memset(long_id, 'r', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    const char *token = "okt_SECRETSECRETSECRETSECRETSECRETSECRETSECRE";
    char rid[128];
    snprintf(rid, sizeof rid, "x-%s.y", token);
    char redacted[160];
    size_t stars = strlen(token) - 4;
    snprintf(redacted, sizeof redacted, "\"request_id\":\"x-okt_%.*s.y\"", (int)stars,
             "**************************************************");
    ok_audit_record r = {
        .request_id = rid,
        .identity = "bob",
        .client = "10.0.0.1:1\n{\"forged\":1}",
        .operation = "decrypt",
        .key_name = "k\xc3\xa9y",
        .key_version = long_id,
        .status = 200,
        .latency_ms = -5,
    };
    assert_int_equal(ok_vault_audit(v, &r), OK_OK);
    log_lines l;
    read_lines(v, &l);
    assert_int_equal(l.count, 1); /* the newline in client did not split the line */
    assert_null(strstr(l.line[0], "SECRET"));
    assert_non_null(strstr(l.line[0], redacted));
    assert_non_null(strstr(l.line[0], "\"key\":\"k??y\""));
    assert_non_null(strstr(l.line[0], "\"latency_ms\":0.0"));
    json_t *o = json_loads(l.line[0], 0, NULL);
    assert_non_null(o);
    const char *ver = json_string_value(json_object_get(o, "version"));
    assert_int_equal(strlen(ver), 256);
    assert_string_equal(ver + 253, "...");
    assert_string_equal(json_string_value(json_object_get(o, "client")), "10.0.0.1:1?{\"forged\":1}");
    json_decref(o);
    free(l.text);
    expect_file(v, 1, 0);
}

/* Through the real vault: lines before, during and after a seal, across a restart, verify intact. */
static void test_real_vault(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/ownkey-audit-XXXXXX", dir[64], path[96];
    assert_non_null(mkdtemp(tmpl));
    snprintf(dir, sizeof dir, "%s/v", tmpl);
    snprintf(path, sizeof path, "%s/audit.log", dir);
    ok_vault_init_params p = {.kind = OK_SEAL_DEV};
    ok_vault_init_result res;
    assert_int_equal(ok_vault_init(dir, &p, &res), OK_OK);
    ok_vault_init_result_clear(&res);
    ok_vault *v = NULL;
    assert_int_equal(ok_vault_open(dir, &v), OK_OK);
    write_records(v, 0, 3);
    assert_int_equal(ok_vault_seal(v), OK_OK);
    write_records(v, 3, 5);
    uint64_t n = 0, bad = 0;
    assert_int_equal(ok_vault_audit_verify(v, &n, &bad), OK_ERR_SEALED);
    ok_vault_close(v);
    assert_int_equal(ok_vault_open(dir, &v), OK_OK);
    expect_live(v, 5, 0);
    write_records(v, 5, 6);
    expect_live(v, 6, 0);
    uint8_t key[32];
    memcpy(key, v->audit_key, 32);
    ok_vault_close(v);
    assert_int_equal(ok_audit_verify_file(path, key, &n, &bad), OK_OK);
    assert_int_equal(n, 6);
    assert_int_equal(bad, 0);
    ok_zeroize(key, sizeof key);
    nftw(tmpl, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

typedef struct {
    ok_vault *v;
    int from, n;
} append_job;

static void *append_thread(void *arg)
{
    append_job *j = arg;
    for (int i = 0; i < j->n; i++)
        if (write_record(j->v, j->from + i) != OK_OK)
            return (void *)1;
    return NULL;
}

static double seconds_since(const struct timespec *a)
{
    struct timespec b;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (double)(b.tv_sec - a->tv_sec) + (double)(b.tv_nsec - a->tv_nsec) / 1e9;
}

/* Every acknowledged request waits for its line to be durable: print the rates (no assertion on time). */
static void test_append_rate(void **state)
{
    ok_vault *v = *state;
    const int n = 500, threads = 8, per = 250;
    struct timespec a;
    clock_gettime(CLOCK_MONOTONIC, &a);
    write_records(v, 0, n);
    double s1 = seconds_since(&a);
    printf("audit append (durable): %d in %.3f s = %.0f/s (one thread)\n", n, s1, n / s1);

    pthread_t tid[8];
    append_job jobs[8];
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int t = 0; t < threads; t++) {
        jobs[t] = (append_job){v, n + t * per, per};
        assert_int_equal(pthread_create(&tid[t], NULL, append_thread, &jobs[t]), 0);
    }
    for (int t = 0; t < threads; t++) {
        void *ret = NULL;
        pthread_join(tid[t], &ret);
        assert_null(ret);
    }
    double s2 = seconds_since(&a);
    printf("audit append (durable): %d in %.3f s = %.0f/s (%d threads)\n", threads * per, s2, threads * per / s2,
           threads);
    expect_live(v, (uint64_t)(n + threads * per), 0);
    expect_file(v, (uint64_t)(n + threads * per), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_line_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_intact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changed_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deleted_and_reordered_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sealed_period, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_failure_is_final, setup, teardown),
        cmocka_unit_test_setup_teardown(test_when_durable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_never_written, setup, teardown),
        cmocka_unit_test(test_real_vault),
        cmocka_unit_test_setup_teardown(test_append_rate, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
