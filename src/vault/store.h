/* Internal to the vault: the storage interface. Every vault module talks to storage only through this
 * small SQL interface ('?' placeholders, a handful of value types), so that a PostgreSQL backend can
 * follow the SQLite one by translating placeholders. A store serializes its users: a transaction holds
 * the store until commit or rollback, and single statements outside a transaction run atomically.
 * Commit returns only when the change is durable (SQLite: WAL + synchronous=FULL). */
#ifndef OWNKEY_VAULT_STORE_H
#define OWNKEY_VAULT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "ownkey/util.h"

typedef enum { OK_VAL_NULL = 0, OK_VAL_INT, OK_VAL_TEXT, OK_VAL_BLOB } ok_val_type;

typedef struct {
    ok_val_type type;
    int64_t i;
    const char *s;          /* TEXT: NUL-terminated */
    const uint8_t *b;       /* BLOB */
    size_t len;             /* BLOB length (TEXT: strlen) */
} ok_val;

#define OK_VINT(x) ((ok_val){.type = OK_VAL_INT, .i = (x)})
#define OK_VTEXT(x) ((ok_val){.type = OK_VAL_TEXT, .s = (x)})
#define OK_VBLOB(p, n) ((ok_val){.type = OK_VAL_BLOB, .b = (p), .len = (n)})
#define OK_VNULL ((ok_val){.type = OK_VAL_NULL})

/* Called once per result row; the values live until the callback returns. Returning an error stops
 * the query and is passed back to the caller. */
typedef ok_err (*ok_row_fn)(void *ctx, const ok_val *cols, size_t ncols);

typedef struct ok_store ok_store;

typedef struct {
    size_t size; /* sizeof(ok_store_vtable) of the backend's build */
    ok_err (*exec)(ok_store *s, const char *sql, const ok_val *params, size_t nparams, int64_t *changes);
    ok_err (*query)(ok_store *s, const char *sql, const ok_val *params, size_t nparams, ok_row_fn fn, void *ctx);
    /* query, for the small reads on every request's path: a caching store (store_cache.c) may answer
     * from memory what an earlier identical query returned, as long as nothing was written since. */
    ok_err (*query_cached)(ok_store *s, const char *sql, const ok_val *params, size_t nparams, ok_row_fn fn,
                           void *ctx);
    ok_err (*begin)(ok_store *s);    /* exclusive write transaction */
    ok_err (*commit)(ok_store *s);   /* durable on return */
    void (*rollback)(ok_store *s);
    void (*close)(ok_store *s);
} ok_store_vtable;

struct ok_store {
    const ok_store_vtable *vt;
};

/* Opens (creating if needed) a SQLite store: WAL, synchronous=FULL, secure_delete=ON, foreign keys on. */
ok_err ok_store_open_sqlite(const char *path, ok_store **out);

/* Wraps inner (taking ownership, also on failure) in a store whose query_cached answers repeated small
 * reads from memory until the next write through it. Only for a store this process alone writes. */
ok_err ok_store_cache_wrap(ok_store *inner, ok_store **out);

#endif
