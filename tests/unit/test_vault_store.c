/* Tests of the SQLite store (store_sqlite.c): the pragmas it promises, value types both ways, parameter
 * count checks, constraint violations as OK_ERR_CONFLICT, transactions (commit, rollback, rollback without
 * one, nested begin), a statement run from inside a query callback, and a transaction holding other
 * threads off until it ends. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_support.h"
#include "vault/store.h"

typedef struct {
    char *tmp;
    ok_store *s;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    char path[512];

    if (f == NULL || (f->tmp = test_make_tmpdir()) == NULL)
        return -1;
    snprintf(path, sizeof path, "%s/t.db", f->tmp);
    if (ok_store_open_sqlite(path, &f->s) != OK_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    f->s->vt->close(f->s);
    test_remove_tree(f->tmp);
    free(f->tmp);
    free(f);
    return 0;
}

typedef struct {
    int rows;
    int64_t i;
    char text[64];
    uint8_t blob[16];
    size_t blob_len;
    int null_seen;
} rows_out;

static ok_err collect(void *ctx, const ok_val *cols, size_t n)
{
    rows_out *r = ctx;

    r->rows++;
    for (size_t i = 0; i < n; i++) {
        switch (cols[i].type) {
        case OK_VAL_INT: r->i = cols[i].i; break;
        case OK_VAL_TEXT: snprintf(r->text, sizeof r->text, "%s", cols[i].s); break;
        case OK_VAL_BLOB:
            r->blob_len = cols[i].len;
            memcpy(r->blob, cols[i].b, cols[i].len < 16 ? cols[i].len : 16);
            break;
        case OK_VAL_NULL: r->null_seen = 1; break;
        }
    }
    return OK_OK;
}

static void test_pragmas_and_values(void **state)
{
    fixture *f = *state;
    ok_store *s = f->s;
    rows_out r;
    int64_t changes = 0;
    static const char *const pragma[4][2] = {
        {"PRAGMA journal_mode", "wal"}, {"PRAGMA synchronous", "2"}, {"PRAGMA secure_delete", "1"},
        {"PRAGMA foreign_keys", "1"}};

    for (size_t i = 0; i < 4; i++) {
        memset(&r, 0, sizeof r);
        assert_int_equal(s->vt->query(s, pragma[i][0], NULL, 0, collect, &r), OK_OK);
        if (r.text[0] == '\0')
            snprintf(r.text, sizeof r.text, "%lld", (long long)r.i);
        assert_string_equal(r.text, pragma[i][1]);
    }
    assert_int_equal(s->vt->exec(s, "CREATE TABLE t (k TEXT PRIMARY KEY, i INTEGER, b BLOB, n)", NULL, 0, NULL), OK_OK);
    ok_val p[4] = {OK_VTEXT("a"), OK_VINT(-42), OK_VBLOB((const uint8_t *)"\0\1\2", 3), OK_VNULL};
    assert_int_equal(s->vt->exec(s, "INSERT INTO t VALUES(?, ?, ?, ?)", p, 4, &changes), OK_OK);
    assert_int_equal(changes, 1);
    p[0] = OK_VTEXT("empty");
    p[2] = OK_VBLOB(NULL, 0);
    assert_int_equal(s->vt->exec(s, "INSERT INTO t VALUES(?, ?, ?, ?)", p, 4, NULL), OK_OK);
    memset(&r, 0, sizeof r);
    ok_val q[1] = {OK_VTEXT("a")};
    assert_int_equal(s->vt->query(s, "SELECT k, i, b, n FROM t WHERE k = ?", q, 1, collect, &r), OK_OK);
    assert_int_equal(r.rows, 1);
    assert_string_equal(r.text, "a");
    assert_int_equal(r.i, -42);
    assert_int_equal(r.blob_len, 3);
    assert_memory_equal(r.blob, "\0\1\2", 3);
    assert_int_equal(r.null_seen, 1);

    /* refusals */
    assert_int_equal(s->vt->exec(s, "INSERT INTO t VALUES(?, ?, ?, ?)", p, 4, NULL), OK_ERR_CONFLICT);
    assert_int_equal(s->vt->exec(s, "INSERT INTO t VALUES(?, ?, ?, ?)", p, 3, NULL), OK_ERR_INVALID_ARG);
    assert_int_equal(s->vt->exec(s, "SELEKT 1", NULL, 0, NULL), OK_ERR_IO);
    p[0] = OK_VTEXT(NULL);
    assert_int_equal(s->vt->exec(s, "INSERT INTO t VALUES(?, ?, ?, ?)", p, 4, NULL), OK_ERR_INVALID_ARG);
    assert_int_equal(s->vt->exec(s, NULL, NULL, 0, NULL), OK_ERR_INVALID_ARG);
}

static void test_transactions(void **state)
{
    fixture *f = *state;
    ok_store *s = f->s;
    rows_out r;

    assert_int_equal(s->vt->exec(s, "CREATE TABLE t (k INTEGER PRIMARY KEY)", NULL, 0, NULL), OK_OK);
    assert_int_equal(s->vt->begin(s), OK_OK);
    assert_int_equal(s->vt->begin(s), OK_ERR_INVALID_ARG); /* nested */
    assert_int_equal(s->vt->exec(s, "INSERT INTO t VALUES(1)", NULL, 0, NULL), OK_OK);
    s->vt->rollback(s);
    s->vt->rollback(s); /* nothing open: nothing happens */
    assert_int_equal(s->vt->commit(s), OK_ERR_INVALID_ARG);
    memset(&r, 0, sizeof r);
    assert_int_equal(s->vt->query(s, "SELECT k FROM t", NULL, 0, collect, &r), OK_OK);
    assert_int_equal(r.rows, 0);
    assert_int_equal(s->vt->begin(s), OK_OK);
    assert_int_equal(s->vt->exec(s, "INSERT INTO t VALUES(2)", NULL, 0, NULL), OK_OK);
    assert_int_equal(s->vt->commit(s), OK_OK);
    s->vt->rollback(s); /* after a commit: nothing happens */
    memset(&r, 0, sizeof r);
    assert_int_equal(s->vt->query(s, "SELECT k FROM t", NULL, 0, collect, &r), OK_OK);
    assert_int_equal(r.rows, 1);
    assert_int_equal(r.i, 2);
}

/* A statement from inside a query callback (the same SQL too: it gets its own prepared statement). */
static ok_err nested(void *ctx, const ok_val *cols, size_t n)
{
    ok_store *s = ctx;
    rows_out r;

    (void)cols;
    (void)n;
    memset(&r, 0, sizeof r);
    OK_GUARD(s->vt->query(s, "SELECT k FROM t ORDER BY k", NULL, 0, collect, &r));
    return r.rows == 3 ? OK_OK : ok_fail(OK_ERR_IO, "nested query saw %d rows", r.rows);
}

static ok_err stop(void *ctx, const ok_val *cols, size_t n)
{
    (void)ctx;
    (void)cols;
    (void)n;
    return ok_fail(OK_ERR_FORBIDDEN, "stop");
}

static void test_nested_and_stop(void **state)
{
    fixture *f = *state;
    ok_store *s = f->s;

    assert_int_equal(s->vt->exec(s, "CREATE TABLE t (k INTEGER PRIMARY KEY)", NULL, 0, NULL), OK_OK);
    assert_int_equal(s->vt->exec(s, "INSERT INTO t VALUES(1), (2), (3)", NULL, 0, NULL), OK_OK);
    assert_int_equal(s->vt->query(s, "SELECT k FROM t ORDER BY k", NULL, 0, nested, s), OK_OK);
    assert_int_equal(s->vt->query(s, "SELECT k FROM t", NULL, 0, stop, NULL), OK_ERR_FORBIDDEN);
    /* the statement was reset: it runs again */
    assert_int_equal(s->vt->query(s, "SELECT k FROM t ORDER BY k", NULL, 0, nested, s), OK_OK);
}

typedef struct {
    ok_store *s;
    int done;
    ok_err rc;
} writer;

static void *write_one(void *arg)
{
    writer *w = arg;

    w->rc = w->s->vt->exec(w->s, "INSERT INTO t VALUES(99)", NULL, 0, NULL);
    __atomic_store_n(&w->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void test_transaction_excludes_others(void **state)
{
    fixture *f = *state;
    ok_store *s = f->s;
    writer w = {s, 0, OK_ERR_IO};
    pthread_t th;
    rows_out r;

    assert_int_equal(s->vt->exec(s, "CREATE TABLE t (k INTEGER PRIMARY KEY)", NULL, 0, NULL), OK_OK);
    assert_int_equal(s->vt->begin(s), OK_OK);
    assert_int_equal(pthread_create(&th, NULL, write_one, &w), 0);
    usleep(100000);
    assert_int_equal(__atomic_load_n(&w.done, __ATOMIC_SEQ_CST), 0); /* waiting for the transaction */
    memset(&r, 0, sizeof r);
    assert_int_equal(s->vt->query(s, "SELECT k FROM t", NULL, 0, collect, &r), OK_OK);
    assert_int_equal(r.rows, 0);
    s->vt->rollback(s);
    pthread_join(th, NULL);
    assert_int_equal(w.done, 1);
    assert_int_equal(w.rc, OK_OK);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {T(test_pragmas_and_values), T(test_transactions), T(test_nested_and_stop),
                                       T(test_transaction_excludes_others)};
    return cmocka_run_group_tests_name("vault_store", tests, NULL, NULL);
}
