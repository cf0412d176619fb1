/* Tests of the store's read cache (store_cache.c) over a fake inner store that counts its queries: a
 * repeated query_cached is answered from memory with the same values; different SQL or parameters
 * (also of different types with the same bytes) are different entries; a small working set whose
 * hashes meet stays cached; exec, commit and rollback make
 * every entry stale; a thread inside its own transaction always reads the inner store and caches
 * nothing; large results, failed queries and results a callback refused are not cached; plain query()
 * is never cached. Over SQLite: readers never see a value older than the last write that returned. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_support.h"
#include "vault/store.h"

/* ---- the fake inner store ----------------------------------------------------------------------------- */

typedef struct {
    ok_store base;
    int queries, execs, begins, commits, rollbacks, closed;
    int64_t value;      /* the INT column of every row */
    int rows;           /* rows per result */
    size_t text_len;    /* length of the TEXT column */
    ok_err fail;        /* returned by query when set */
} fake_store;

static ok_err fake_exec(ok_store *s, const char *sql, const ok_val *params, size_t nparams, int64_t *changes)
{
    (void)sql, (void)params, (void)nparams;
    fake_store *f = (fake_store *)s;
    f->execs++;
    f->value++;
    if (changes)
        *changes = 1;
    return OK_OK;
}

static ok_err fake_query(ok_store *s, const char *sql, const ok_val *params, size_t nparams, ok_row_fn fn, void *ctx)
{
    (void)sql, (void)params, (void)nparams;
    fake_store *f = (fake_store *)s;
    char text[4096];
    static const uint8_t blob[3] = {0, 1, 2};

    f->queries++;
    if (f->fail != OK_OK)
        return ok_fail(f->fail, "fake failure");
    memset(text, 'a', f->text_len);
    text[f->text_len] = '\0';
    for (int r = 0; r < f->rows; r++) {
        ok_val cols[4] = {OK_VINT(f->value + r), OK_VTEXT(text), OK_VBLOB(blob, sizeof blob), OK_VNULL};
        cols[1].len = f->text_len;
        OK_GUARD(fn(ctx, cols, 4));
    }
    return OK_OK;
}

static ok_err fake_begin(ok_store *s)
{
    ((fake_store *)s)->begins++;
    return OK_OK;
}

static ok_err fake_commit(ok_store *s)
{
    ((fake_store *)s)->commits++;
    return OK_OK;
}

static void fake_rollback(ok_store *s)
{
    ((fake_store *)s)->rollbacks++;
}

static void fake_close(ok_store *s)
{
    ((fake_store *)s)->closed++;
}

static const ok_store_vtable fake_vtable = {
    .size = sizeof(ok_store_vtable),
    .exec = fake_exec,
    .query = fake_query,
    .query_cached = fake_query,
    .begin = fake_begin,
    .commit = fake_commit,
    .rollback = fake_rollback,
    .close = fake_close,
};

typedef struct {
    fake_store inner;
    ok_store *s;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    f->inner.base.vt = &fake_vtable;
    f->inner.rows = 1;
    f->inner.text_len = 5;
    f->inner.value = 100;
    if (ok_store_cache_wrap(&f->inner.base, &f->s) != OK_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    f->s->vt->close(f->s);
    assert_int_equal(f->inner.closed, 1);
    free(f);
    return 0;
}

/* ---- what a caller sees ------------------------------------------------------------------------------- */

typedef struct {
    int rows;
    int64_t first;
    size_t text_len;
    int types_ok;
    int refuse; /* the callback fails on this row (1-based); 0: never */
} seen;

static ok_err see(void *ctx, const ok_val *c, size_t n)
{
    seen *s = ctx;
    s->rows++;
    if (s->rows == s->refuse)
        return ok_fail(OK_ERR_LIMIT, "refused by the callback");
    if (s->rows == 1)
        s->first = c[0].i;
    s->text_len = c[1].type == OK_VAL_TEXT ? strlen(c[1].s) : 0;
    s->types_ok = n == 4 && c[0].type == OK_VAL_INT && c[1].type == OK_VAL_TEXT && c[1].len == strlen(c[1].s) &&
                  c[2].type == OK_VAL_BLOB && c[2].len == 3 && c[2].b[2] == 2 && c[3].type == OK_VAL_NULL;
    return OK_OK;
}

static seen ask(ok_store *s, const char *sql, ok_val param)
{
    seen out = {0};
    assert_int_equal(s->vt->query_cached(s, sql, &param, 1, see, &out), OK_OK);
    return out;
}

#define Q "SELECT a FROM t WHERE k = ?"

static void test_repeated_reads_come_from_memory(void **state)
{
    fixture *f = *state;
    seen a = ask(f->s, Q, OK_VTEXT("x"));
    seen b = ask(f->s, Q, OK_VTEXT("x"));
    assert_int_equal(f->inner.queries, 1);
    assert_int_equal(a.rows, 1);
    assert_int_equal(b.rows, 1);
    assert_int_equal(b.first, 100);
    assert_int_equal(b.text_len, 5);
    assert_true(a.types_ok);
    assert_true(b.types_ok);
}

static void test_sql_and_parameters_tell_entries_apart(void **state)
{
    fixture *f = *state;
    ask(f->s, Q, OK_VTEXT("1"));
    ask(f->s, Q, OK_VINT(1));
    ask(f->s, Q, OK_VBLOB((const uint8_t *)"1", 1));
    ask(f->s, Q, OK_VTEXT("2"));
    ask(f->s, "SELECT b FROM t WHERE k = ?", OK_VTEXT("1"));
    assert_int_equal(f->inner.queries, 5);
    ask(f->s, Q, OK_VTEXT("1"));
    ask(f->s, Q, OK_VINT(1));
    assert_int_equal(f->inner.queries, 5);
}

/* A working set far below the cache's size stays cached whatever its keys hash to: with one slot per hash
 * value, two of these 64 keys meet (for these keys they do) and evict each other on every use. */
static void test_hot_keys_do_not_evict_each_other(void **state)
{
    fixture *f = *state;
    for (int64_t k = 0; k < 64; k++)
        ask(f->s, Q, OK_VINT(k * 1000));
    assert_int_equal(f->inner.queries, 64);
    for (int round = 0; round < 3; round++)
        for (int64_t k = 0; k < 64; k++)
            assert_int_equal(ask(f->s, Q, OK_VINT(k * 1000)).rows, 1);
    assert_int_equal(f->inner.queries, 64);
}

static void test_every_write_makes_entries_stale(void **state)
{
    fixture *f = *state;
    ask(f->s, Q, OK_VTEXT("x"));
    assert_int_equal(f->s->vt->exec(f->s, "UPDATE t SET a = a + 1", NULL, 0, NULL), OK_OK);
    seen after = ask(f->s, Q, OK_VTEXT("x"));
    assert_int_equal(after.first, 101);
    assert_int_equal(f->inner.queries, 2);

    assert_int_equal(f->s->vt->begin(f->s), OK_OK);
    assert_int_equal(f->s->vt->commit(f->s), OK_OK);
    ask(f->s, Q, OK_VTEXT("x"));
    assert_int_equal(f->inner.queries, 3);

    assert_int_equal(f->s->vt->begin(f->s), OK_OK);
    f->s->vt->rollback(f->s);
    ask(f->s, Q, OK_VTEXT("x"));
    assert_int_equal(f->inner.queries, 4);
    ask(f->s, Q, OK_VTEXT("x"));
    assert_int_equal(f->inner.queries, 4);
}

static void test_own_transaction_reads_through(void **state)
{
    fixture *f = *state;
    ask(f->s, Q, OK_VTEXT("x"));
    assert_int_equal(f->s->vt->begin(f->s), OK_OK);
    ask(f->s, Q, OK_VTEXT("x"));
    ask(f->s, Q, OK_VTEXT("x"));
    assert_int_equal(f->inner.queries, 3);
    assert_int_equal(f->s->vt->commit(f->s), OK_OK);
    ask(f->s, Q, OK_VTEXT("x"));
    ask(f->s, Q, OK_VTEXT("x"));
    assert_int_equal(f->inner.queries, 4);
}

static void test_large_results_are_not_cached(void **state)
{
    fixture *f = *state;
    f->inner.rows = 40;
    f->inner.text_len = 100;
    seen a = ask(f->s, Q, OK_VTEXT("x"));
    seen b = ask(f->s, Q, OK_VTEXT("x"));
    assert_int_equal(a.rows, 40);
    assert_int_equal(b.rows, 40);
    assert_int_equal(f->inner.queries, 2);
}

static void test_failures_are_not_cached(void **state)
{
    fixture *f = *state;
    ok_val p = OK_VTEXT("x");
    seen out = {0};

    f->inner.fail = OK_ERR_IO;
    assert_int_equal(f->s->vt->query_cached(f->s, Q, &p, 1, see, &out), OK_ERR_IO);
    f->inner.fail = OK_OK;
    f->inner.rows = 2;
    out = (seen){.refuse = 2};
    assert_int_equal(f->s->vt->query_cached(f->s, Q, &p, 1, see, &out), OK_ERR_LIMIT);
    out = (seen){0};
    assert_int_equal(f->s->vt->query_cached(f->s, Q, &p, 1, see, &out), OK_OK);
    assert_int_equal(out.rows, 2);
    assert_int_equal(f->inner.queries, 3);
    /* Now cached: a callback refusing a replayed row fails the same way. */
    out = (seen){.refuse = 1};
    assert_int_equal(f->s->vt->query_cached(f->s, Q, &p, 1, see, &out), OK_ERR_LIMIT);
    assert_int_equal(f->inner.queries, 3);
}

static void test_plain_queries_are_never_cached(void **state)
{
    fixture *f = *state;
    ok_val p = OK_VTEXT("x");
    seen out = {0};
    assert_int_equal(f->s->vt->query(f->s, Q, &p, 1, see, &out), OK_OK);
    assert_int_equal(f->s->vt->query(f->s, Q, &p, 1, see, &out), OK_OK);
    assert_int_equal(f->inner.queries, 2);
}

/* ---- over SQLite, with threads ----------------------------------------------------------------------- */

typedef struct {
    ok_store *s;
    _Atomic int64_t written; /* the last value whose UPDATE has returned */
    _Atomic int stop;
    int stale_reads;
    int reads;
} race;

static ok_err read_int(void *ctx, const ok_val *c, size_t n)
{
    if (n == 1 && c[0].type == OK_VAL_INT)
        *(int64_t *)ctx = c[0].i;
    return OK_OK;
}

static void *reader(void *arg)
{
    race *r = arg;
    while (!atomic_load(&r->stop)) {
        int64_t before = atomic_load(&r->written), got = -1;
        if (r->s->vt->query_cached(r->s, "SELECT v FROM c WHERE id = 1", NULL, 0, read_int, &got) != OK_OK ||
            got < before)
            __atomic_add_fetch(&r->stale_reads, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&r->reads, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static void test_no_read_older_than_a_returned_write(void **state)
{
    (void)state;
    char *tmp = test_make_tmpdir(), path[512];
    ok_store *inner = NULL;
    race r = {0};
    pthread_t t[2];

    assert_non_null(tmp);
    snprintf(path, sizeof path, "%s/c.db", tmp);
    assert_int_equal(ok_store_open_sqlite(path, &inner), OK_OK);
    assert_int_equal(ok_store_cache_wrap(inner, &r.s), OK_OK);
    assert_int_equal(r.s->vt->exec(r.s, "CREATE TABLE c (id INTEGER PRIMARY KEY, v INTEGER)", NULL, 0, NULL), OK_OK);
    assert_int_equal(r.s->vt->exec(r.s, "INSERT INTO c VALUES (1, 0)", NULL, 0, NULL), OK_OK);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, reader, &r), 0);
    for (int64_t v = 1; v <= 200; v++) {
        ok_val p = OK_VINT(v);
        if (v % 2) {
            assert_int_equal(r.s->vt->exec(r.s, "UPDATE c SET v = ? WHERE id = 1", &p, 1, NULL), OK_OK);
        } else {
            assert_int_equal(r.s->vt->begin(r.s), OK_OK);
            assert_int_equal(r.s->vt->exec(r.s, "UPDATE c SET v = ? WHERE id = 1", &p, 1, NULL), OK_OK);
            assert_int_equal(r.s->vt->commit(r.s), OK_OK);
        }
        atomic_store(&r.written, v);
    }
    atomic_store(&r.stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(r.stale_reads, 0);
    assert_true(r.reads > 0);
    r.s->vt->close(r.s);
    test_remove_tree(tmp);
    free(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_repeated_reads_come_from_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sql_and_parameters_tell_entries_apart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hot_keys_do_not_evict_each_other, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_write_makes_entries_stale, setup, teardown),
        cmocka_unit_test_setup_teardown(test_own_transaction_reads_through, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_results_are_not_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failures_are_not_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plain_queries_are_never_cached, setup, teardown),
        cmocka_unit_test(test_no_read_older_than_a_returned_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
