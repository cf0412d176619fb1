/* Soft delete and what follows it: delete (the name keeps every version for recoverable_days), get a
 * deleted key, recover, and purge (every row of the name erased; with purge protection on, only once
 * scheduled_purge has passed). Owns no listing of deleted keys (key_list.c). */
#include <string.h>

#include "vault/keys_internal.h"
#include "vault/meta.h"

typedef struct {
    int exists;
    int64_t deleted, scheduled_purge, recoverable_days;
} del_state;

static ok_err del_row(void *ctx, const ok_val *cols, size_t n)
{
    del_state *ds = ctx;

    if (n != 3 || cols[0].type != OK_VAL_INT || cols[1].type != OK_VAL_INT || cols[2].type != OK_VAL_INT)
        return ok_fail(OK_ERR_FORMAT, "a stored key row is malformed");
    ds->exists = 1;
    ds->deleted = cols[0].i;
    ds->scheduled_purge = cols[1].i;
    ds->recoverable_days = cols[2].i;
    return OK_OK;
}

static ok_err read_state(ok_store *s, const char *name, del_state *ds)
{
    ok_val p[1] = {OK_VTEXT(name)};

    memset(ds, 0, sizeof *ds);
    return s->vt->query(s, "SELECT deleted, scheduled_purge, recoverable_days FROM keys WHERE name = ?", p, 1, del_row,
                        ds);
}

/* The live key, or OK_ERR_NOT_FOUND. */
static ok_err need_live(const del_state *ds, const char *name)
{
    if (!ds->exists || ds->deleted != 0)
        return ok_fail(OK_ERR_NOT_FOUND, "key \"%s\" not found", name);
    return OK_OK;
}

static ok_err need_deleted(const del_state *ds, const char *name)
{
    if (!ds->exists || ds->deleted == 0)
        return ok_fail(OK_ERR_NOT_FOUND, "no deleted key \"%s\"", name);
    return OK_OK;
}

/* One transaction: check the state, then run the statement on the name. */
static ok_err transition(ok_vault *v, const char *name, int want_deleted, const char *sql, const ok_val *params,
                         size_t nparams)
{
    ok_store *s = v->store;
    del_state ds;
    ok_err rc;

    OK_GUARD(s->vt->begin(s));
    OK_GUARD_GOTO(rc, read_state(s, name, &ds), fail);
    OK_GUARD_GOTO(rc, want_deleted ? need_deleted(&ds, name) : need_live(&ds, name), fail);
    OK_GUARD_GOTO(rc, s->vt->exec(s, sql, params, nparams, NULL), fail);
    return s->vt->commit(s);
fail:
    s->vt->rollback(s);
    return rc;
}

static ok_err delete_locked(ok_vault *v, const char *name, ok_key_info *out)
{
    int64_t now = ok_vault_now();
    ok_val p[3] = {OK_VINT(now), OK_VINT(now), OK_VTEXT(name)};

    OK_GUARD(transition(v, name, 0,
                        "UPDATE keys SET deleted = ?, scheduled_purge = ? + recoverable_days * 86400 WHERE name = ?", p,
                        3));
    if (out == NULL)
        return OK_OK;
    return ok_key_load(v, OK_KEYS_DELETED, name, NULL, out);
}

ok_err ok_vault_key_delete(ok_vault *v, const char *name, ok_key_info *out)
{
    ok_err rc;

    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (v == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_vault_key_delete: NULL vault");
    OK_GUARD(ok_key_check_name(name));
    OK_GUARD(ok_seal_read_begin(v));
    rc = delete_locked(v, name, out);
    ok_seal_read_end(v);
    return rc;
}

ok_err ok_vault_deleted_get(ok_vault *v, const char *name, ok_key_info *out)
{
    ok_err rc;

    if (v == NULL || out == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_vault_deleted_get: NULL argument");
    memset(out, 0, sizeof *out);
    OK_GUARD(ok_seal_read_begin(v));
    rc = ok_key_load(v, OK_KEYS_DELETED, name, NULL, out);
    ok_seal_read_end(v);
    return rc;
}

static ok_err recover_locked(ok_vault *v, const char *name, ok_key_info *out)
{
    ok_val p[1] = {OK_VTEXT(name)};

    OK_GUARD(transition(v, name, 1, "UPDATE keys SET deleted = 0, scheduled_purge = 0 WHERE name = ?", p, 1));
    if (out == NULL)
        return OK_OK;
    return ok_key_load(v, OK_KEYS_LIVE, name, NULL, out);
}

ok_err ok_vault_deleted_recover(ok_vault *v, const char *name, ok_key_info *out)
{
    ok_err rc;

    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (v == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_vault_deleted_recover: NULL vault");
    OK_GUARD(ok_key_check_name(name));
    OK_GUARD(ok_seal_read_begin(v));
    rc = recover_locked(v, name, out);
    ok_seal_read_end(v);
    return rc;
}

/* Inside the purge transaction: purge protection holds a deleted key until its scheduled purge date. */
static ok_err purge_allowed(ok_store *s, const char *name, const del_state *ds)
{
    int64_t protection = 0, now = ok_vault_now();

    OK_GUARD(ok_meta_get_int(s, OK_META_PURGE_PROTECTION, &protection));
    if (protection != 0 && now < ds->scheduled_purge)
        return ok_fail(OK_ERR_FORBIDDEN,
                       "purge protection is on: key \"%s\" can be purged only after its scheduled purge date "
                       "(%lld, in %lld s)",
                       name, (long long)ds->scheduled_purge, (long long)(ds->scheduled_purge - now));
    return OK_OK;
}

static ok_err purge_locked(ok_vault *v, const char *name)
{
    ok_store *s = v->store;
    ok_val p[1] = {OK_VTEXT(name)};
    del_state ds;
    ok_err rc;

    OK_GUARD(s->vt->begin(s));
    OK_GUARD_GOTO(rc, read_state(s, name, &ds), fail);
    OK_GUARD_GOTO(rc, need_deleted(&ds, name), fail);
    OK_GUARD_GOTO(rc, purge_allowed(s, name, &ds), fail);
    /* HSM-backed versions: their token objects go first; a failure leaves the key deleted, purgeable again. */
    OK_GUARD_GOTO(rc, ok_key_hsm_scan(v, name, 1, NULL), fail);
    /* key_versions and key_notifications follow by ON DELETE CASCADE; secure_delete zeroes the freed pages */
    OK_GUARD_GOTO(rc, s->vt->exec(s, "DELETE FROM keys WHERE name = ?", p, 1, NULL), fail);
    OK_GUARD(s->vt->commit(s));
    ok_key_cache_forget(v, name);
    /* Best effort: move the WAL's copies of the erased pages into the database (where secure_delete
     * zeroed them) and truncate the WAL. A busy reader only delays this to a later checkpoint. */
    (void)s->vt->exec(s, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, 0, NULL);
    return OK_OK;
fail:
    s->vt->rollback(s);
    return rc;
}

ok_err ok_vault_deleted_purge(ok_vault *v, const char *name)
{
    ok_err rc;

    if (v == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_vault_deleted_purge: NULL vault");
    OK_GUARD(ok_key_check_name(name));
    OK_GUARD(ok_seal_read_begin(v));
    rc = purge_locked(v, name);
    ok_seal_read_end(v);
    return rc;
}
