/* Tenant key rows over time: a new tenant's first TK (stored with the tenant row), the next generation for
 * a re-key (ds_tk_next), dropping generations no object uses (ds_tk_drop_others), and re-wrapping every live
 * generation under new root keys (set-key, remove-key: O(1) in objects). Serialized per tenant with
 * refreshes by the tenant's refresh lock; root calls are made outside every global lock and outside the
 * storage transaction. Owns no cache policy (tenant_keys.c) and no tenant settings checks (tenants.c). */
#include <stdlib.h>
#include <string.h>

#include "dataservice/ds_keys.h"

/* ---- new generations, dropping old ones ------------------------------------------------------------------------- */

typedef struct {
    uint64_t generation;
    int found;
} gen_row;

static ok_err gen_cb(void *ctx, const ok_val *c, size_t n)
{
    gen_row *g = ctx;
    if (n != 1 || c[0].type != OK_VAL_INT)
        return ok_fail(OK_ERR_FORMAT, "data.db: a tenant row is malformed");
    g->generation = (uint64_t)c[0].i;
    g->found = 1;
    return OK_OK;
}

/* Inside a transaction: the tenant's current generation must still be `expect`. */
static ok_err generation_is(ok_ds *ds, const char *name, uint64_t expect)
{
    gen_row g = {0, 0};
    ok_val p[1] = {OK_VTEXT(name)};
    OK_GUARD(ds->store->vt->query(ds->store, "SELECT tk_generation FROM tenants WHERE name = ?", p, 1, gen_cb, &g));
    if (!g.found)
        return ok_fail(OK_ERR_NOT_FOUND, "tenant %s not found", name);
    if (g.generation != expect)
        return ok_fail(OK_ERR_CONFLICT, "tenant %s changed key generation meanwhile", name);
    return OK_OK;
}

/* Makes, wraps and stores generation row->generation + 1; the caller holds e->refresh_lock. */
static ok_err next_locked(ok_ds *ds, ds_tenant_entry *e, const ds_tenant_row *row, uint64_t epoch,
                          ok_err (*in_txn)(ok_ds *ds, void *arg), void *arg, uint64_t *new_generation)
{
    uint64_t g = row->generation + 1;
    uint8_t *tk = ok_secure_alloc(DS_TK_LEN);
    ds_wrapped_tk w;
    ds_reason why = {"", ""};
    ok_err rc;

    if (tk == NULL)
        return ok_fail(OK_ERR_NOMEM, "secure memory");
    OK_GUARD_GOTO(rc, ok_random(tk, DS_TK_LEN), done);
    if (row->source != OK_DS_KEYS_SERVICE)
        OK_GUARD_GOTO(rc, ds_entry_provider(ds, e, row, epoch, &why), done);
    rc = ds_root_wrap_tk(ds, row->source, e->prov, row->uuid, g, tk, &w, &why);
    if (rc != OK_OK) {
        if (why.code[0] != '\0')
            rc = ok_fail(rc, "cannot wrap a new key for tenant %s: %s (%s)", row->name, why.text, why.code);
        goto done;
    }
    OK_GUARD_GOTO(rc, ds->store->vt->begin(ds->store), wrapped);
    ok_val p[2] = {OK_VINT((int64_t)g), OK_VTEXT(row->name)};
    if ((rc = generation_is(ds, row->name, row->generation)) != OK_OK ||
        (rc = ds_wrapped_store(ds, row->name, &w, 1, NULL)) != OK_OK ||
        (rc = ds->store->vt->exec(ds->store, "UPDATE tenants SET tk_generation = ? WHERE name = ?", p, 2, NULL)) != OK_OK ||
        (in_txn != NULL && (rc = in_txn(ds, arg)) != OK_OK) || (rc = ds->store->vt->commit(ds->store)) != OK_OK) {
        ds->store->vt->rollback(ds->store);
        goto wrapped;
    }
    pthread_mutex_lock(&ds->keys->lock);
    if (!e->gone && ds_slot_put(e, g, tk) == OK_OK)
        e->generation = g;
    else
        ds_slots_wipe(e); /* the next call refreshes from the rows */
    pthread_mutex_unlock(&ds->keys->lock);
    if (new_generation != NULL)
        *new_generation = g;
wrapped:
    ds_wrapped_tk_clear(&w);
done:
    ok_secure_free(tk, DS_TK_LEN);
    return rc;
}

ok_err ds_tk_next(ok_ds *ds, const char *tenant, ok_err (*in_txn)(ok_ds *ds, void *arg), void *arg,
                  uint64_t *new_generation)
{
    ds_tenant_ref ref;
    ds_tenant_entry *e = NULL;
    ds_tenant_row row;
    ok_err rc;

    OK_GUARD(ds_tenant_ref_get(ds, tenant, &ref)); /* active, and its root key works */
    uint64_t epoch = ds_keys_epoch(ds);
    if (epoch == 0)
        return ok_fail(OK_ERR_SEALED, "the vault is sealed");
    OK_GUARD(ds_entry_get(ds, tenant, &e));
    pthread_mutex_lock(&e->refresh_lock);
    rc = ds_tenant_row_load(ds, tenant, &row);
    if (rc == OK_OK) {
        rc = strcmp(row.uuid, e->uuid) == 0 ? next_locked(ds, e, &row, epoch, in_txn, arg, new_generation)
                                            : ok_fail(OK_ERR_NOT_FOUND, "tenant %s not found", tenant);
        ds_tenant_row_clear(&row);
    }
    pthread_mutex_unlock(&e->refresh_lock);
    ds_entry_put(ds, e);
    return rc;
}

ok_err ds_tk_drop_others(ok_ds *ds, const char *tenant, uint64_t keep)
{
    ds_tenant_entry *e = NULL;
    ok_val p[2] = {OK_VTEXT(tenant), OK_VINT((int64_t)keep)};
    ok_err rc;

    OK_GUARD(ds_entry_get(ds, tenant, &e));
    pthread_mutex_lock(&e->refresh_lock);
    rc = ds->store->vt->exec(ds->store, "DELETE FROM tenant_keys WHERE tenant = ? AND generation <> ?", p, 2, NULL);
    if (rc == OK_OK) {
        pthread_mutex_lock(&ds->keys->lock);
        for (size_t i = 0; i < e->nslots;) {
            if (e->slots[i].generation != keep) {
                ok_secure_free(e->slots[i].tk, DS_TK_LEN);
                e->slots[i] = e->slots[--e->nslots];
            } else {
                i++;
            }
        }
        pthread_mutex_unlock(&ds->keys->lock);
    }
    pthread_mutex_unlock(&e->refresh_lock);
    ds_entry_put(ds, e);
    return rc;
}

/* ---- a new tenant, and new root keys for a tenant ---------------------------------------------------------------- */

static ok_err exists_cb(void *ctx, const ok_val *c, size_t n)
{
    (void)c;
    (void)n;
    *(int *)ctx = 1;
    return OK_OK;
}

static ok_err store_new_tenant(ok_ds *ds, const ds_tenant_row *row, const ds_wrapped_tk *w)
{
    int exists = 0;
    ok_val q[1] = {OK_VTEXT(row->name)};
    ok_val p[8] = {OK_VTEXT(row->name), OK_VTEXT(row->uuid), OK_VINT(row->created), OK_VINT((int64_t)row->source),
                   OK_VINT(row->permanent ? 1 : 0), row->customer_uri ? OK_VTEXT(row->customer_uri) : OK_VNULL,
                   row->cred ? OK_VBLOB(row->cred, row->cred_len) : OK_VNULL, OK_VINT(1)};
    ok_err rc;

    OK_GUARD(ds->store->vt->begin(ds->store));
    rc = ds->store->vt->query(ds->store, "SELECT 1 FROM tenants WHERE name = ?", q, 1, exists_cb, &exists);
    if (rc == OK_OK && exists)
        rc = ok_fail(OK_ERR_CONFLICT, "tenant %s exists", row->name);
    if (rc == OK_OK)
        rc = ds->store->vt->exec(ds->store,
                                 "INSERT INTO tenants(name, uuid, created, source, permanent, customer_uri, customer_cred,"
                                 " tk_generation) VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
                                 p, 8, NULL);
    if (rc == OK_OK)
        rc = ds_wrapped_store(ds, row->name, w, 1, NULL);
    if (rc == OK_OK)
        rc = ds->store->vt->commit(ds->store);
    if (rc != OK_OK)
        ds->store->vt->rollback(ds->store);
    return rc;
}

/* Caches a new tenant's first TK and its customer key (taken). */
static void adopt(ok_ds *ds, const ds_tenant_row *row, uint64_t epoch, const uint8_t tk[DS_TK_LEN], ok_provider *prov)
{
    ds_tenant_entry *e = NULL;

    ds_keys_forget(ds, row->name); /* anything left from an earlier tenant of that name */
    if (ds_entry_get(ds, row->name, &e) != OK_OK) {
        ok_provider_free(prov);
        return; /* the next call refreshes from the rows */
    }
    pthread_mutex_lock(&e->refresh_lock);
    ok_provider_free(e->prov);
    e->prov = prov;
    e->prov_epoch = epoch;
    pthread_mutex_lock(&ds->keys->lock);
    if (strcmp(e->uuid, row->uuid) == 0 && ds->keys->epoch == epoch && ds_slot_put(e, 1, tk) == OK_OK) {
        e->verified_ms = ds_mono_ms();
        e->known = 1;
    }
    pthread_mutex_unlock(&ds->keys->lock);
    pthread_mutex_unlock(&e->refresh_lock);
    ds_entry_put(ds, e);
}

ok_err ds_keys_create(ok_ds *ds, const ds_tenant_row *row, ok_provider *prov)
{
    uint64_t epoch = ds_keys_epoch(ds);
    uint8_t *tk = ok_secure_alloc(DS_TK_LEN);
    ds_wrapped_tk w;
    ds_reason why = {"", ""};
    ok_err rc;

    if (tk == NULL) {
        ok_provider_free(prov);
        return ok_fail(OK_ERR_NOMEM, "secure memory");
    }
    if (epoch == 0) {
        rc = ok_fail(OK_ERR_SEALED, "the vault is sealed");
        goto done;
    }
    OK_GUARD_GOTO(rc, ok_random(tk, DS_TK_LEN), done);
    rc = ds_root_wrap_tk(ds, row->source, prov, row->uuid, 1, tk, &w, &why);
    if (rc != OK_OK) {
        if (why.code[0] != '\0')
            rc = ok_fail(OK_ERR_KEY, "cannot wrap the tenant key: %s (%s)", why.text, why.code);
        goto done;
    }
    rc = store_new_tenant(ds, row, &w);
    ds_wrapped_tk_clear(&w);
    if (rc == OK_OK) {
        adopt(ds, row, epoch, tk, prov);
        prov = NULL;
    }
done:
    ok_provider_free(prov);
    ok_secure_free(tk, DS_TK_LEN);
    return rc;
}

typedef struct {
    uint64_t *items;
    size_t count;
} gen_list;

static ok_err gen_list_cb(void *ctx, const ok_val *c, size_t n)
{
    gen_list *l = ctx;
    if (n != 1 || c[0].type != OK_VAL_INT)
        return ok_fail(OK_ERR_FORMAT, "data.db: a tenant key row is malformed");
    uint64_t *grown = realloc(l->items, (l->count + 1) * sizeof *grown);
    if (grown == NULL)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    l->items = grown;
    l->items[l->count++] = (uint64_t)c[0].i;
    return OK_OK;
}

/* Copies the TK of every live generation out of a fresh cache (refreshing first when needed) into tks
 * (secure memory, count * DS_TK_LEN); the caller holds e->refresh_lock. */
static ok_err live_tks(ok_ds *ds, ds_tenant_entry *e, uint64_t epoch, gen_list *gens, uint8_t **tks)
{
    ok_val p[1] = {OK_VTEXT(e->name)};
    ok_err rc = OK_OK;

    *tks = NULL;
    OK_GUARD(ds->store->vt->query(ds->store, "SELECT generation FROM tenant_keys WHERE tenant = ? ORDER BY generation",
                                  p, 1, gen_list_cb, gens));
    *tks = ok_secure_alloc(gens->count ? gens->count * DS_TK_LEN : 1);
    if (*tks == NULL)
        return ok_fail(OK_ERR_NOMEM, "secure memory");
    for (int attempt = 0; attempt < 2; attempt++) {
        int complete = 1;
        pthread_mutex_lock(&ds->keys->lock);
        if (e->state == OK_DS_LOCKED) {
            rc = ok_fail(OK_ERR_LOCKED, "tenant %s is locked: %s (%s)", e->name, e->reason.text, e->reason.code);
        } else {
            int fresh = e->verified_ms != 0 && ds_mono_ms() - e->verified_ms < ds->ttl * 1000;
            for (size_t i = 0; i < gens->count && complete; i++) {
                ds_tk_slot *s = fresh ? ds_slot_find(e, gens->items[i]) : NULL;
                if (s != NULL)
                    memcpy(*tks + i * DS_TK_LEN, s->tk, DS_TK_LEN);
                else
                    complete = 0;
            }
        }
        pthread_mutex_unlock(&ds->keys->lock);
        if (rc != OK_OK || complete)
            return rc;
        if (attempt == 0)
            OK_GUARD(ds_entry_refresh(ds, e, epoch));
    }
    return ok_fail(OK_ERR_CONFLICT, "tenant %s changed keys meanwhile; try again", e->name);
}

static ok_err store_root_change(ok_ds *ds, const char *name, ok_ds_key_source source, int permanent,
                                const char *customer_uri, const uint8_t *cred, size_t cred_len,
                                const ds_wrapped_tk *w, size_t count)
{
    ok_val p[6] = {OK_VINT((int64_t)source), OK_VINT(permanent ? 1 : 0),
                   customer_uri ? OK_VTEXT(customer_uri) : OK_VNULL, cred ? OK_VBLOB(cred, cred_len) : OK_VNULL,
                   OK_VTEXT(name)};
    ok_err rc;

    OK_GUARD(ds->store->vt->begin(ds->store));
    rc = ds->store->vt->exec(ds->store,
                             "UPDATE tenants SET source = ?, permanent = ?, customer_uri = ?, customer_cred = ?"
                             " WHERE name = ?",
                             p, 5, NULL);
    for (size_t i = 0; i < count && rc == OK_OK; i++)
        rc = ds_wrapped_store(ds, name, &w[i], 0, NULL);
    if (rc == OK_OK)
        rc = ds->store->vt->commit(ds->store);
    if (rc != OK_OK)
        ds->store->vt->rollback(ds->store);
    return rc;
}

static ok_err change_locked(ok_ds *ds, ds_tenant_entry *e, uint64_t epoch, ok_ds_key_source source, int permanent,
                            const char *customer_uri, const uint8_t *cred, size_t cred_len, ok_provider **prov)
{
    gen_list gens = {NULL, 0};
    uint8_t *tks = NULL;
    ds_wrapped_tk *w = NULL;
    size_t made = 0;
    ds_reason why = {"", ""};
    ok_err rc;

    OK_GUARD_GOTO(rc, live_tks(ds, e, epoch, &gens, &tks), done);
    w = calloc(gens.count ? gens.count : 1, sizeof *w);
    if (w == NULL) {
        rc = ok_fail(OK_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (; made < gens.count; made++) {
        rc = ds_root_wrap_tk(ds, source, *prov, e->uuid, gens.items[made], tks + made * DS_TK_LEN, &w[made], &why);
        if (rc != OK_OK) {
            if (why.code[0] != '\0')
                rc = ok_fail(OK_ERR_KEY, "cannot wrap the tenant key under the new key: %s (%s)", why.text, why.code);
            goto done;
        }
    }
    OK_GUARD_GOTO(rc, store_root_change(ds, e->name, source, permanent, customer_uri, cred, cred_len, w, gens.count), done);
    pthread_mutex_lock(&ds->keys->lock);
    e->source = source;
    if (e->verified_ms != 0)
        e->verified_ms = ds_mono_ms(); /* the new root key has just wrapped every generation */
    pthread_mutex_unlock(&ds->keys->lock);
    ok_provider_free(e->prov);
    e->prov = *prov;
    e->prov_epoch = epoch;
    *prov = NULL;
done:
    for (size_t i = 0; i < made; i++)
        ds_wrapped_tk_clear(&w[i]);
    free(w);
    ok_secure_free(tks, gens.count ? gens.count * DS_TK_LEN : 1);
    free(gens.items);
    return rc;
}

ok_err ds_keys_change_root(ok_ds *ds, const char *name, ok_ds_key_source source, int permanent,
                           const char *customer_uri, const uint8_t *cred, size_t cred_len, ok_provider *prov)
{
    ds_tenant_entry *e = NULL;
    uint64_t epoch = ds_keys_epoch(ds);
    ok_err rc;

    if (epoch == 0) {
        ok_provider_free(prov);
        return ok_fail(OK_ERR_SEALED, "the vault is sealed");
    }
    rc = ds_entry_get(ds, name, &e);
    if (rc != OK_OK) {
        ok_provider_free(prov);
        return rc;
    }
    pthread_mutex_lock(&e->refresh_lock);
    rc = change_locked(ds, e, epoch, source, permanent, customer_uri, cred, cred_len, &prov);
    pthread_mutex_unlock(&e->refresh_lock);
    ds_entry_put(ds, e);
    ok_provider_free(prov);
    return rc;
}
