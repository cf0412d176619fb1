/* The SQLite backend of the vault's storage interface (store.h): one writing connection in WAL mode with
 * synchronous=FULL, secure_delete=ON and foreign keys on, guarded by one recursive mutex, plus a few
 * read-only connections for queries. begin() takes the writer's mutex and keeps it until commit() or
 * rollback(); exec() takes it per call. query() runs on the writer inside the calling thread's own
 * transaction (to see its own writes), and otherwise on a free reader: WAL lets readers run beside the
 * writer and each other, and every statement outside a transaction sees everything committed before it
 * started. Prepared statements are cached by SQL text, per connection. Owns no schema: the vault's
 * modules create their own tables. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "vault/store.h"

#define BUSY_TIMEOUT_MS 5000
#define STMT_CACHE 64
#define MAX_COLS 32
#define READERS 8

typedef struct {
    char *sql;
    sqlite3_stmt *stmt;
    int in_use; /* a statement running now (a query callback may run another one: it gets its own) */
} cached_stmt;

/* One connection with its statement cache. */
typedef struct {
    sqlite3 *db;
    pthread_mutex_t mu; /* recursive */
    cached_stmt cache[STMT_CACHE];
    size_t cache_next;  /* round-robin eviction */
} conn;

typedef struct {
    ok_store base;
    conn writer;
    int in_tx;          /* guarded by writer.mu */
    pthread_t owner;    /* the thread of the open transaction */
    conn readers[READERS];
    size_t nreaders;
    atomic_uint next_reader;
} sqlite_store;

/* The store whose transaction this thread holds, and the reader this thread is using (a query callback
 * that queries again reuses it). */
static _Thread_local sqlite_store *tls_tx;
static _Thread_local conn *tls_reader;
static _Thread_local sqlite_store *tls_reader_store;

static sqlite_store *impl(ok_store *s)
{
    return (sqlite_store *)s;
}

static ok_err db_fail(conn *ss, int rc, const char *what)
{
    ok_err err = (rc & 0xff) == SQLITE_CONSTRAINT ? OK_ERR_CONFLICT : OK_ERR_IO;

    return ok_fail(err, "storage: %s: %s", what, ss->db ? sqlite3_errmsg(ss->db) : sqlite3_errstr(rc));
}

/* ---- prepared statements ----------------------------------------------------------------------- */

/* A statement for sql, from the cache when a free one is there; *cached tells release() what to do. */
static ok_err stmt_get(conn *ss, const char *sql, sqlite3_stmt **out, cached_stmt **cached)
{
    cached_stmt *slot;
    int rc;

    *cached = NULL;
    for (size_t i = 0; i < STMT_CACHE; i++) {
        slot = &ss->cache[i];
        if (slot->sql != NULL && !slot->in_use && strcmp(slot->sql, sql) == 0) {
            slot->in_use = 1;
            *out = slot->stmt;
            *cached = slot;
            return OK_OK;
        }
    }
    rc = sqlite3_prepare_v3(ss->db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL);
    if (rc != SQLITE_OK)
        return db_fail(ss, rc, "prepare");
    /* Cache it in a free slot, evicting round-robin a slot not in use. */
    for (size_t n = 0; n < STMT_CACHE; n++) {
        slot = &ss->cache[ss->cache_next];
        ss->cache_next = (ss->cache_next + 1) % STMT_CACHE;
        if (slot->in_use)
            continue;
        char *copy = strdup(sql);
        if (copy == NULL)
            return OK_OK; /* uncached: still usable */
        if (slot->stmt != NULL)
            sqlite3_finalize(slot->stmt);
        free(slot->sql);
        slot->sql = copy;
        slot->stmt = *out;
        slot->in_use = 1;
        *cached = slot;
        break;
    }
    return OK_OK;
}

/* Resets the statement and forgets its bindings (they point into the caller's memory). */
static void stmt_release(sqlite3_stmt *stmt, cached_stmt *cached)
{
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    if (cached != NULL)
        cached->in_use = 0;
    else
        sqlite3_finalize(stmt);
}

static ok_err bind_all(conn *ss, sqlite3_stmt *stmt, const ok_val *params, size_t n)
{
    static const uint8_t empty[1] = {0};

    if ((size_t)sqlite3_bind_parameter_count(stmt) != n)
        return ok_fail(OK_ERR_INVALID_ARG, "storage: %d placeholders, %zu parameters",
                       sqlite3_bind_parameter_count(stmt), n);
    for (size_t i = 0; i < n; i++) {
        int idx = (int)i + 1, rc;

        switch (params[i].type) {
        case OK_VAL_NULL:
            rc = sqlite3_bind_null(stmt, idx);
            break;
        case OK_VAL_INT:
            rc = sqlite3_bind_int64(stmt, idx, params[i].i);
            break;
        case OK_VAL_TEXT:
            if (params[i].s == NULL)
                return ok_fail(OK_ERR_INVALID_ARG, "storage: NULL text parameter %zu", i + 1);
            rc = sqlite3_bind_text(stmt, idx, params[i].s, -1, SQLITE_STATIC);
            break;
        case OK_VAL_BLOB:
            if (params[i].len > (size_t)0x7fffffff)
                return ok_fail(OK_ERR_LIMIT, "storage: blob parameter too large");
            rc = sqlite3_bind_blob(stmt, idx, params[i].b ? (const void *)params[i].b : (const void *)empty,
                                   (int)params[i].len, SQLITE_STATIC);
            break;
        default:
            return ok_fail(OK_ERR_INVALID_ARG, "storage: unknown parameter type");
        }
        if (rc != SQLITE_OK)
            return db_fail(ss, rc, "bind");
    }
    return OK_OK;
}

static void column_values(sqlite3_stmt *stmt, ok_val *cols, size_t n)
{
    static const uint8_t empty[1] = {0};

    for (size_t i = 0; i < n; i++) {
        int c = (int)i;

        memset(&cols[i], 0, sizeof cols[i]);
        switch (sqlite3_column_type(stmt, c)) {
        case SQLITE_INTEGER:
        case SQLITE_FLOAT:
            cols[i].type = OK_VAL_INT;
            cols[i].i = sqlite3_column_int64(stmt, c);
            break;
        case SQLITE_TEXT:
            cols[i].type = OK_VAL_TEXT;
            cols[i].s = (const char *)sqlite3_column_text(stmt, c);
            cols[i].len = (size_t)sqlite3_column_bytes(stmt, c);
            if (cols[i].s == NULL)
                cols[i].s = "";
            break;
        case SQLITE_BLOB:
            cols[i].type = OK_VAL_BLOB;
            cols[i].b = sqlite3_column_blob(stmt, c);
            cols[i].len = (size_t)sqlite3_column_bytes(stmt, c);
            if (cols[i].b == NULL)
                cols[i].b = empty;
            break;
        default:
            cols[i].type = OK_VAL_NULL;
            break;
        }
    }
}

/* Runs one statement to completion, handing each row to fn (if any). */
static ok_err run(conn *ss, const char *sql, const ok_val *params, size_t nparams, ok_row_fn fn, void *ctx,
                  int64_t *changes)
{
    sqlite3_stmt *stmt = NULL;
    cached_stmt *cached = NULL;
    ok_val cols[MAX_COLS];
    ok_err rc;
    int step;

    if (sql == NULL || (params == NULL && nparams != 0))
        return ok_fail(OK_ERR_INVALID_ARG, "storage: NULL argument");
    OK_GUARD(stmt_get(ss, sql, &stmt, &cached));
    OK_GUARD_GOTO(rc, bind_all(ss, stmt, params, nparams), done);
    for (;;) {
        step = sqlite3_step(stmt);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            rc = db_fail(ss, step, "statement");
            goto done;
        }
        if (fn == NULL)
            continue;
        size_t ncols = (size_t)sqlite3_column_count(stmt);
        if (ncols > MAX_COLS) {
            rc = ok_fail(OK_ERR_LIMIT, "storage: more than %d result columns", MAX_COLS);
            goto done;
        }
        column_values(stmt, cols, ncols);
        OK_GUARD_GOTO(rc, fn(ctx, cols, ncols), done);
    }
    if (changes != NULL)
        *changes = sqlite3_changes64(ss->db);
done:
    stmt_release(stmt, cached);
    return rc;
}

/* ---- the vtable ----------------------------------------------------------------------------------- */

static ok_err store_exec(ok_store *s, const char *sql, const ok_val *params, size_t nparams, int64_t *changes)
{
    conn *w = &impl(s)->writer;
    ok_err rc;

    if (changes != NULL)
        *changes = 0;
    pthread_mutex_lock(&w->mu);
    rc = run(w, sql, params, nparams, NULL, NULL, changes);
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* A reader for this thread: the one it already uses, else a free one, else it waits for one. */
static conn *reader_acquire(sqlite_store *ss)
{
    if (tls_reader != NULL && tls_reader_store == ss) {
        pthread_mutex_lock(&tls_reader->mu);
        return tls_reader;
    }
    unsigned start = atomic_fetch_add(&ss->next_reader, 1u) % (unsigned)ss->nreaders;
    for (size_t i = 0; i < ss->nreaders; i++) {
        conn *r = &ss->readers[(start + i) % ss->nreaders];
        if (pthread_mutex_trylock(&r->mu) == 0)
            return r;
    }
    pthread_mutex_lock(&ss->readers[start].mu);
    return &ss->readers[start];
}

static ok_err store_query(ok_store *s, const char *sql, const ok_val *params, size_t nparams, ok_row_fn fn, void *ctx)
{
    sqlite_store *ss = impl(s);
    ok_err rc;

    if (tls_tx == ss || ss->nreaders == 0) {
        pthread_mutex_lock(&ss->writer.mu);
        rc = run(&ss->writer, sql, params, nparams, fn, ctx, NULL);
        pthread_mutex_unlock(&ss->writer.mu);
        return rc;
    }
    conn *r = reader_acquire(ss), *outer = tls_reader;
    sqlite_store *outer_store = tls_reader_store;
    tls_reader = r;
    tls_reader_store = ss;
    rc = run(r, sql, params, nparams, fn, ctx, NULL);
    tls_reader = outer;
    tls_reader_store = outer_store;
    pthread_mutex_unlock(&r->mu);
    return rc;
}

/* Plain SQL without parameters or rows, the writer's mutex held by the caller. */
static int raw(sqlite_store *ss, const char *sql)
{
    return sqlite3_exec(ss->writer.db, sql, NULL, NULL, NULL);
}

static ok_err store_begin(ok_store *s)
{
    sqlite_store *ss = impl(s);
    int rc;

    pthread_mutex_lock(&ss->writer.mu); /* held until commit or rollback */
    if (ss->in_tx) {
        pthread_mutex_unlock(&ss->writer.mu);
        return ok_fail(OK_ERR_INVALID_ARG, "storage: nested transaction");
    }
    rc = raw(ss, "BEGIN IMMEDIATE");
    if (rc != SQLITE_OK) {
        ok_err err = db_fail(&ss->writer, rc, "begin");
        pthread_mutex_unlock(&ss->writer.mu);
        return err;
    }
    ss->in_tx = 1;
    ss->owner = pthread_self();
    tls_tx = ss;
    return OK_OK;
}

/* 1 if the calling thread holds an open transaction; takes one more hold of the mutex either way. */
static int own_tx(sqlite_store *ss)
{
    pthread_mutex_lock(&ss->writer.mu);
    return ss->in_tx && pthread_equal(ss->owner, pthread_self());
}

/* A failed COMMIT is rolled back, so that the caller's later rollback() finds nothing to do. */
static ok_err store_commit(ok_store *s)
{
    sqlite_store *ss = impl(s);
    ok_err err = OK_OK;
    int rc;

    if (!own_tx(ss)) {
        pthread_mutex_unlock(&ss->writer.mu);
        return ok_fail(OK_ERR_INVALID_ARG, "storage: commit without a transaction");
    }
    rc = raw(ss, "COMMIT");
    if (rc != SQLITE_OK) {
        err = db_fail(&ss->writer, rc, "commit");
        if (!sqlite3_get_autocommit(ss->writer.db))
            (void)raw(ss, "ROLLBACK");
    }
    ss->in_tx = 0;
    tls_tx = NULL;
    pthread_mutex_unlock(&ss->writer.mu); /* own_tx's hold */
    pthread_mutex_unlock(&ss->writer.mu); /* begin's hold */
    return err;
}

/* Safe to call without an open transaction (after a failed begin or commit): it does nothing then. */
static void store_rollback(ok_store *s)
{
    sqlite_store *ss = impl(s);

    if (!own_tx(ss)) {
        pthread_mutex_unlock(&ss->writer.mu);
        return;
    }
    if (!sqlite3_get_autocommit(ss->writer.db))
        (void)raw(ss, "ROLLBACK");
    ss->in_tx = 0;
    tls_tx = NULL;
    pthread_mutex_unlock(&ss->writer.mu);
    pthread_mutex_unlock(&ss->writer.mu);
}

static void conn_close(conn *c)
{
    for (size_t i = 0; i < STMT_CACHE; i++) {
        if (c->cache[i].stmt != NULL)
            sqlite3_finalize(c->cache[i].stmt);
        free(c->cache[i].sql);
    }
    if (c->db != NULL)
        sqlite3_close_v2(c->db);
    pthread_mutex_destroy(&c->mu);
}

static void store_close(ok_store *s)
{
    sqlite_store *ss = impl(s);

    if (ss == NULL)
        return;
    for (size_t i = 0; i < ss->nreaders; i++)
        conn_close(&ss->readers[i]);
    conn_close(&ss->writer);
    free(ss);
}

static const ok_store_vtable sqlite_vtable = {
    .size = sizeof(ok_store_vtable),
    .exec = store_exec,
    .query = store_query,
    .query_cached = store_query,
    .begin = store_begin,
    .commit = store_commit,
    .rollback = store_rollback,
    .close = store_close,
};

/* ---- opening ---------------------------------------------------------------------------------------- */

/* journal_mode answers with a row naming the mode it got; anything but "wal" is a failure. */
static ok_err expect_wal(void *ctx, const ok_val *cols, size_t n)
{
    int *is_wal = ctx;

    *is_wal = n == 1 && cols[0].type == OK_VAL_TEXT && strcmp(cols[0].s, "wal") == 0;
    return OK_OK;
}

static ok_err configure(conn *ss)
{
    static const char *const pragmas[] = {
        "PRAGMA synchronous = FULL", "PRAGMA secure_delete = ON", "PRAGMA foreign_keys = ON",
        "PRAGMA trusted_schema = OFF",
    };
    int is_wal = 0, rc;

    rc = sqlite3_busy_timeout(ss->db, BUSY_TIMEOUT_MS);
    if (rc == SQLITE_OK)
        rc = sqlite3_db_config(ss->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    if (rc != SQLITE_OK)
        return db_fail(ss, rc, "configure");
    OK_GUARD(run(ss, "PRAGMA journal_mode = WAL", NULL, 0, expect_wal, &is_wal, NULL));
    if (!is_wal)
        return ok_fail(OK_ERR_IO, "storage: the database refused WAL mode");
    for (size_t i = 0; i < sizeof pragmas / sizeof pragmas[0]; i++)
        OK_GUARD(run(ss, pragmas[i], NULL, 0, NULL, NULL, NULL));
    return OK_OK;
}

static int conn_init_mutex(conn *c)
{
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    int rc = pthread_mutex_init(&c->mu, &attr);
    pthread_mutexattr_destroy(&attr);
    return rc;
}

/* NOMUTEX: this file serializes every use of a connection itself. */
static ok_err conn_open(conn *c, const char *path, int flags)
{
    int rc = sqlite3_open_v2(path, &c->db, flags | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK)
        return ok_fail(OK_ERR_IO, "storage: cannot open %s: %s", path, c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
    sqlite3_extended_result_codes(c->db, 1);
    return OK_OK;
}

ok_err ok_store_open_sqlite(const char *path, ok_store **out)
{
    sqlite_store *ss;
    ok_err err;

    if (path == NULL || out == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_store_open_sqlite: NULL argument");
    *out = NULL;
    ss = calloc(1, sizeof *ss);
    if (ss == NULL)
        return ok_fail(OK_ERR_NOMEM, "storage");
    ss->base.vt = &sqlite_vtable;
    if (conn_init_mutex(&ss->writer) != 0) {
        free(ss);
        return ok_fail(OK_ERR_NOMEM, "storage: mutex");
    }
    err = conn_open(&ss->writer, path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    if (err == OK_OK)
        err = configure(&ss->writer);
    for (size_t i = 0; err == OK_OK && i < READERS; i++) {
        conn *r = &ss->readers[i];
        if (conn_init_mutex(r) != 0) {
            err = ok_fail(OK_ERR_NOMEM, "storage: mutex");
            break;
        }
        ss->nreaders++;
        err = conn_open(r, path, SQLITE_OPEN_READONLY);
        if (err == OK_OK)
            err = configure(r); /* the same settings everywhere (the database is already in WAL mode) */
    }
    if (err != OK_OK) {
        store_close(&ss->base);
        return err;
    }
    *out = &ss->base;
    return OK_OK;
}
