/* The vault's `meta` table: vault-wide settings as (name, value) rows, read and written one value at a
 * time. Owns no meaning of the values (see vault.c and seal.c). */
#include <stdlib.h>
#include <string.h>

#include "vault/meta.h"

ok_err ok_meta_schema(ok_store *s)
{
    return s->vt->exec(s, "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value NOT NULL) WITHOUT ROWID",
                       NULL, 0, NULL);
}

ok_err ok_meta_put_int(ok_store *s, const char *name, int64_t value)
{
    ok_val p[2] = {OK_VTEXT(name), OK_VINT(value)};

    return s->vt->exec(s, "INSERT OR REPLACE INTO meta(name, value) VALUES(?, ?)", p, 2, NULL);
}

ok_err ok_meta_put_blob(ok_store *s, const char *name, const uint8_t *b, size_t len)
{
    ok_val p[2] = {OK_VTEXT(name), OK_VBLOB(b, len)};

    return s->vt->exec(s, "INSERT OR REPLACE INTO meta(name, value) VALUES(?, ?)", p, 2, NULL);
}

typedef struct {
    const char *name;
    ok_val_type want;
    int found;
    int64_t i;
    uint8_t *out;
    size_t len;
    size_t max;       /* > 0: any length 1..max, copied to new memory (out, len) */
} meta_read;

static ok_err read_row(void *ctx, const ok_val *cols, size_t n)
{
    meta_read *r = ctx;

    r->found = 1;
    if (n != 1 || cols[0].type != r->want)
        return ok_fail(OK_ERR_FORMAT, "vault meta \"%s\" has the wrong type", r->name);
    if (r->want == OK_VAL_INT) {
        r->i = cols[0].i;
        return OK_OK;
    }
    if (r->max > 0) {
        if (cols[0].len == 0 || cols[0].len > r->max)
            return ok_fail(OK_ERR_FORMAT, "vault meta \"%s\" has %zu bytes (1..%zu)", r->name, cols[0].len, r->max);
        r->out = malloc(cols[0].len + 1);
        if (r->out == NULL)
            return ok_fail(OK_ERR_NOMEM, "out of memory");
        memcpy(r->out, cols[0].b, cols[0].len);
        r->out[cols[0].len] = 0;
        r->len = cols[0].len;
        return OK_OK;
    }
    if (cols[0].len != r->len)
        return ok_fail(OK_ERR_FORMAT, "vault meta \"%s\" has %zu bytes, not %zu", r->name, cols[0].len, r->len);
    memcpy(r->out, cols[0].b, r->len);
    return OK_OK;
}

static ok_err get(ok_store *s, meta_read *r)
{
    ok_val p[1] = {OK_VTEXT(r->name)};

    OK_GUARD(s->vt->query(s, "SELECT value FROM meta WHERE name = ?", p, 1, read_row, r));
    if (!r->found)
        return ok_fail(OK_ERR_NOT_FOUND, "vault meta \"%s\" is missing", r->name);
    return OK_OK;
}

ok_err ok_meta_get_int(ok_store *s, const char *name, int64_t *out)
{
    meta_read r = {.name = name, .want = OK_VAL_INT};

    OK_GUARD(get(s, &r));
    *out = r.i;
    return OK_OK;
}

ok_err ok_meta_get_blob(ok_store *s, const char *name, uint8_t *out, size_t len)
{
    meta_read r = {.name = name, .want = OK_VAL_BLOB, .out = out, .len = len};

    return get(s, &r);
}

ok_err ok_meta_get_blob_alloc(ok_store *s, const char *name, size_t max, uint8_t **out, size_t *len)
{
    meta_read r = {.name = name, .want = OK_VAL_BLOB, .max = max};
    ok_err rc = get(s, &r);

    if (rc != OK_OK) {
        free(r.out);
        return rc;
    }
    *out = r.out;
    *len = r.len;
    return OK_OK;
}
