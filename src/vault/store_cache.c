/* A store wrapper that answers query_cached() from memory: the few small reads every request makes (the
 * token's row, the identity's policies, the key's live version) cost more than the rest of an A256KW
 * request's vault work together when SQLite runs them (read transactions, file locks, the VDBE).
 *
 * Correctness rests on one rule: every write through this store makes every cached result stale before
 * the write returns. exec(), commit() and rollback() bump a write generation after the inner store has
 * finished; a result is cached with the generation read before its query ran and is served only while
 * the generation is unchanged. So a result served after a write returned was read after that write, and
 * a revoked token or a removed policy fails on the next request, as it did without the cache. A thread
 * inside its own transaction bypasses the cache (it must see its own writes). The rule holds only when
 * this process is the store's only writer: the vault's SQLite file is (`ownkeyd` serves one data
 * directory, which it locks); a store shared by several nodes must not be wrapped.
 *
 * Bounded: SETS sets of WAYS slots (a key may sit in any slot of the set its hash picks, so a few hot keys
 * whose hashes meet do not evict each other on every request; the victim is an empty or stale slot, else
 * the one least recently used), results of at most RESULT_MAX encoded bytes (larger results are passed
 * through uncached). Slots are wiped when replaced or freed (a token row holds its keyed MAC).
 * Owns no SQL. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "vault/store.h"

#define SETS 256u
#define WAYS 4u
#define KEY_MAX 1024u    /* bytes of SQL text and encoded parameters */
#define RESULT_MAX 2048u /* bytes of encoded rows */
#define COLS_MAX 32u

typedef struct {
    uint64_t gen;  /* the write generation the result was read at; 0: empty */
    uint64_t hash; /* of the key */
    uint64_t used; /* the cache's use counter when last stored or hit */
    uint8_t *buf;  /* key, then result */
    size_t key_len, result_len;
} slot;

typedef struct {
    ok_store base;
    ok_store *inner;
    _Atomic uint64_t gen;
    pthread_mutex_t lock;
    uint64_t uses; /* under lock */
    slot slots[SETS][WAYS];
} cache_store;

/* The cache store whose transaction this thread holds. */
static _Thread_local cache_store *tls_tx;

static cache_store *impl(ok_store *s)
{
    return (cache_store *)s;
}

/* ---- encoding --------------------------------------------------------------------------------------- */

/* One value: a type byte, then the integer or a 32-bit length and the bytes (TEXT with its NUL). */
static void put_val(ok_fixbuf *e, const ok_val *v)
{
    uint8_t t = (uint8_t)v->type;
    ok_fixbuf_put(e, &t, 1);
    if (v->type == OK_VAL_INT) {
        ok_fixbuf_put(e, &v->i, sizeof v->i);
    } else if (v->type == OK_VAL_TEXT || v->type == OK_VAL_BLOB) {
        const void *src = v->type == OK_VAL_TEXT ? (const void *)v->s : (const void *)v->b;
        size_t n = v->type == OK_VAL_TEXT ? (v->s ? strlen(v->s) + 1 : 0) : v->len;
        if (n > UINT32_MAX || (n > 0 && src == NULL)) {
            e->overflow = 1;
            return;
        }
        uint32_t n32 = (uint32_t)n;
        ok_fixbuf_put(e, &n32, sizeof n32);
        ok_fixbuf_put(e, src, n);
    }
}

/* Replays encoded rows to fn. The encoding was made here, so it is well formed. */
static ok_err replay(const uint8_t *p, size_t len, ok_row_fn fn, void *ctx)
{
    ok_val cols[COLS_MAX];
    size_t off = 0;

    while (off < len) {
        uint8_t ncols = p[off++];
        for (size_t i = 0; i < ncols; i++) {
            ok_val *v = &cols[i];
            memset(v, 0, sizeof *v);
            v->type = (ok_val_type)p[off++];
            if (v->type == OK_VAL_INT) {
                memcpy(&v->i, p + off, sizeof v->i);
                off += sizeof v->i;
            } else if (v->type == OK_VAL_TEXT || v->type == OK_VAL_BLOB) {
                uint32_t n;
                memcpy(&n, p + off, sizeof n);
                off += sizeof n;
                if (v->type == OK_VAL_TEXT) {
                    v->s = n ? (const char *)(p + off) : NULL;
                    v->len = n ? n - 1 : 0;
                } else {
                    v->b = p + off;
                    v->len = n;
                }
                off += n;
            }
        }
        if (fn != NULL)
            OK_GUARD(fn(ctx, cols, ncols));
    }
    return OK_OK;
}

static uint64_t hash_bytes(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211u;
    return h;
}

/* ---- cached queries ------------------------------------------------------------------------------- */

typedef struct {
    ok_row_fn fn;
    void *ctx;
    ok_fixbuf rows;
} collect_ctx;

/* Hands each row to the caller's callback and records it. */
static ok_err collect_row(void *ctx, const ok_val *cols, size_t ncols)
{
    collect_ctx *c = ctx;
    if (ncols > COLS_MAX) {
        c->rows.overflow = 1;
    } else {
        uint8_t n = (uint8_t)ncols;
        ok_fixbuf_put(&c->rows, &n, 1);
        for (size_t i = 0; i < ncols; i++)
            put_val(&c->rows, &cols[i]);
    }
    return c->fn ? c->fn(c->ctx, cols, ncols) : OK_OK;
}

static void slot_clear(slot *sl)
{
    if (sl->buf != NULL) {
        ok_zeroize(sl->buf, sl->key_len + sl->result_len);
        free(sl->buf);
    }
    memset(sl, 0, sizeof *sl);
}

/* Where a result for key (hash h) goes in set: the slot already holding that key, else an empty slot, else
 * one read under an older generation, else the least recently used. Called under lock. */
static slot *victim(slot *set, uint64_t gen, uint64_t h, const ok_fixbuf *key)
{
    slot *best = NULL;
    int best_rank = 0;
    for (size_t w = 0; w < WAYS; w++) {
        slot *sl = &set[w];
        if (sl->gen != 0 && sl->hash == h && sl->key_len == key->len && memcmp(sl->buf, key->p, key->len) == 0)
            return sl;
        int rank = sl->gen == 0 ? 3 : sl->gen != gen ? 2 : 1;
        if (best == NULL || rank > best_rank || (rank == best_rank && sl->used < best->used)) {
            best = sl;
            best_rank = rank;
        }
    }
    return best;
}

static void slot_store(cache_store *cs, slot *set, uint64_t gen, uint64_t h, const ok_fixbuf *key,
                       const ok_fixbuf *rows)
{
    uint8_t *buf = malloc(key->len + rows->len + 1);
    if (buf == NULL)
        return; /* not cached; the answer was already given */
    memcpy(buf, key->p, key->len);
    if (rows->len > 0)
        memcpy(buf + key->len, rows->p, rows->len);
    pthread_mutex_lock(&cs->lock);
    uint64_t now = atomic_load(&cs->gen);
    if (gen != now) { /* written since the read: the result would never be served */
        pthread_mutex_unlock(&cs->lock);
        free(buf);
        return;
    }
    slot *sl = victim(set, now, h, key);
    slot_clear(sl);
    sl->buf = buf;
    sl->key_len = key->len;
    sl->result_len = rows->len;
    sl->gen = gen;
    sl->hash = h;
    sl->used = ++cs->uses;
    pthread_mutex_unlock(&cs->lock);
}

static ok_err cache_query_cached(ok_store *s, const char *sql, const ok_val *params, size_t nparams, ok_row_fn fn,
                                 void *ctx)
{
    cache_store *cs = impl(s);
    uint8_t key_buf[KEY_MAX], result_buf[RESULT_MAX];
    ok_fixbuf key;
    ok_err rc;

    if (sql == NULL || (params == NULL && nparams != 0))
        return ok_fail(OK_ERR_INVALID_ARG, "storage: NULL argument");
    if (tls_tx == cs)
        return cs->inner->vt->query(cs->inner, sql, params, nparams, fn, ctx);
    ok_fixbuf_init(&key, key_buf, sizeof key_buf);
    ok_fixbuf_put(&key, sql, strlen(sql) + 1);
    for (size_t i = 0; i < nparams; i++)
        put_val(&key, &params[i]);
    if (key.overflow)
        return cs->inner->vt->query(cs->inner, sql, params, nparams, fn, ctx);

    /* The generation is read before the lookup and before the query: see the top of the file. */
    uint64_t gen = atomic_load(&cs->gen);
    uint64_t h = hash_bytes(key.p, key.len);
    slot *set = cs->slots[h % SETS];
    size_t hit_len = 0;
    int hit = 0;
    pthread_mutex_lock(&cs->lock);
    for (size_t w = 0; w < WAYS && !hit; w++) {
        slot *sl = &set[w];
        if (sl->gen == gen && sl->hash == h && sl->key_len == key.len && memcmp(sl->buf, key.p, key.len) == 0) {
            hit = 1;
            hit_len = sl->result_len;
            memcpy(result_buf, sl->buf + sl->key_len, hit_len);
            sl->used = ++cs->uses;
        }
    }
    pthread_mutex_unlock(&cs->lock);
    if (hit) {
        rc = replay(result_buf, hit_len, fn, ctx);
        ok_zeroize(result_buf, hit_len);
        return rc;
    }

    collect_ctx c = {.fn = fn, .ctx = ctx};
    ok_fixbuf_init(&c.rows, result_buf, sizeof result_buf);
    rc = cs->inner->vt->query(cs->inner, sql, params, nparams, collect_row, &c);
    if (rc == OK_OK && !c.rows.overflow)
        slot_store(cs, set, gen, h, &key, &c.rows);
    ok_zeroize(result_buf, c.rows.len);
    return rc;
}

/* ---- everything else passes through; writes make the cache stale ----------------------------------- */

static void written(cache_store *cs)
{
    atomic_fetch_add(&cs->gen, 1);
}

static ok_err cache_exec(ok_store *s, const char *sql, const ok_val *params, size_t nparams, int64_t *changes)
{
    cache_store *cs = impl(s);
    ok_err rc = cs->inner->vt->exec(cs->inner, sql, params, nparams, changes);
    written(cs);
    return rc;
}

static ok_err cache_query(ok_store *s, const char *sql, const ok_val *params, size_t nparams, ok_row_fn fn, void *ctx)
{
    cache_store *cs = impl(s);
    return cs->inner->vt->query(cs->inner, sql, params, nparams, fn, ctx);
}

static ok_err cache_begin(ok_store *s)
{
    cache_store *cs = impl(s);
    OK_GUARD(cs->inner->vt->begin(cs->inner));
    tls_tx = cs;
    return OK_OK;
}

static ok_err cache_commit(ok_store *s)
{
    cache_store *cs = impl(s);
    ok_err rc = cs->inner->vt->commit(cs->inner);
    written(cs);
    if (tls_tx == cs)
        tls_tx = NULL;
    return rc;
}

static void cache_rollback(ok_store *s)
{
    cache_store *cs = impl(s);
    cs->inner->vt->rollback(cs->inner);
    written(cs);
    if (tls_tx == cs)
        tls_tx = NULL;
}

static void cache_close(ok_store *s)
{
    cache_store *cs = impl(s);
    if (cs == NULL)
        return;
    for (size_t i = 0; i < SETS; i++)
        for (size_t w = 0; w < WAYS; w++)
            slot_clear(&cs->slots[i][w]);
    if (cs->inner != NULL)
        cs->inner->vt->close(cs->inner);
    pthread_mutex_destroy(&cs->lock);
    free(cs);
}

static const ok_store_vtable cache_vtable = {
    .size = sizeof(ok_store_vtable),
    .exec = cache_exec,
    .query = cache_query,
    .query_cached = cache_query_cached,
    .begin = cache_begin,
    .commit = cache_commit,
    .rollback = cache_rollback,
    .close = cache_close,
};

ok_err ok_store_cache_wrap(ok_store *inner, ok_store **out)
{
    if (out == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_store_cache_wrap: NULL argument");
    *out = NULL;
    if (inner == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_store_cache_wrap: NULL argument");
    cache_store *cs = calloc(1, sizeof *cs);
    if (cs == NULL || pthread_mutex_init(&cs->lock, NULL) != 0) {
        free(cs);
        inner->vt->close(inner);
        return ok_fail(OK_ERR_NOMEM, "storage cache");
    }
    cs->base.vt = &cache_vtable;
    cs->inner = inner;
    atomic_init(&cs->gen, 1);
    *out = &cs->base;
    return OK_OK;
}
