/* Tenant keys (TKs): the per-tenant cache of unwrapped TKs (one per live generation, in secure memory),
 * how a data call gets one (ds_tenant_ref_get, ds_tk_get: a memory lookup while the tenant was verified
 * less than the TTL ago, else a refresh through the root key first), the refresh itself (every generation
 * unwrapped; an unversioned customer key followed to its newest version by re-wrapping the TK rows), new
 * generations (ds_tk_next), dropping old ones, and re-wrapping under new root keys (set/remove key).
 * Many HTTP threads call in at once: the cache is guarded by one mutex that is never held across a root
 * call; refreshes of one tenant are serialized by its own refresh lock. Owns no lock/probe policy
 * (tenant_lock.c), no root-key crypto (root_keys.c) and no tenant rows (tenants.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dataservice/ds_keys.h"
#include "ownkey/vault_client.h"

int64_t ds_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the cache ----------------------------------------------------------------------------------------------- */

void ds_slots_wipe(ds_tenant_entry *e)
{
    for (size_t i = 0; i < e->nslots; i++)
        ok_secure_free(e->slots[i].tk, DS_TK_LEN);
    free(e->slots);
    e->slots = NULL;
    e->nslots = 0;
    e->verified_ms = 0;
}

ds_tk_slot *ds_slot_find(ds_tenant_entry *e, uint64_t generation)
{
    for (size_t i = 0; i < e->nslots; i++) {
        if (e->slots[i].generation == generation)
            return &e->slots[i];
    }
    return NULL;
}

/* Adds (or replaces) one generation's TK, copying it. The caller holds ds_keys.lock. */
ok_err ds_slot_put(ds_tenant_entry *e, uint64_t generation, const uint8_t tk[DS_TK_LEN])
{
    ds_tk_slot *s = ds_slot_find(e, generation);
    if (s == NULL) {
        uint8_t *copy = ok_secure_alloc(DS_TK_LEN);
        ds_tk_slot *grown = copy ? realloc(e->slots, (e->nslots + 1) * sizeof *grown) : NULL;
        if (grown == NULL) {
            ok_secure_free(copy, DS_TK_LEN);
            return ok_fail(OK_ERR_NOMEM, "out of memory");
        }
        e->slots = grown;
        s = &e->slots[e->nslots++];
        s->generation = generation;
        s->tk = copy;
    }
    memcpy(s->tk, tk, DS_TK_LEN);
    return OK_OK;
}

static void entry_free(ds_tenant_entry *e)
{
    ds_slots_wipe(e);
    ok_provider_free(e->prov);
    pthread_mutex_destroy(&e->refresh_lock);
    ok_zeroize(e, sizeof *e);
    free(e);
}

ok_err ds_keys_init(ok_ds *ds)
{
    ds_keys *k = calloc(1, sizeof *k);
    if (k == NULL || pthread_mutex_init(&k->lock, NULL) != 0) {
        free(k);
        return ok_fail(OK_ERR_NOMEM, "cannot allocate the key cache");
    }
    ds->keys = k;
    ok_err rc = ds_root_init(ds);
    if (rc != OK_OK) {
        pthread_mutex_destroy(&k->lock);
        free(k);
        ds->keys = NULL;
    }
    return rc;
}

void ds_keys_free(ok_ds *ds)
{
    ds_keys *k = ds->keys;
    if (k == NULL)
        return;
    while (k->head != NULL) {
        ds_tenant_entry *e = k->head;
        k->head = e->next;
        entry_free(e); /* the worker is stopped and no call is in flight: no other references */
    }
    ds_root_free(ds);
    pthread_mutex_destroy(&k->lock);
    free(k);
    ds->keys = NULL;
}

uint64_t ds_keys_epoch(ok_ds *ds)
{
    ds_keys *k = ds->keys;
    uint64_t epoch = ok_vault_seal_epoch(ds->vault);
    int changed = 0;

    pthread_mutex_lock(&k->lock);
    if (epoch != k->epoch) {
        for (ds_tenant_entry *e = k->head; e != NULL; e = e->next)
            ds_slots_wipe(e);
        k->epoch = epoch;
        changed = 1;
    }
    pthread_mutex_unlock(&k->lock);
    if (changed)
        ds_root_wipe(ds);
    return epoch;
}

static ds_tenant_entry *entry_find_locked(ds_keys *k, const char *name)
{
    for (ds_tenant_entry *e = k->head; e != NULL; e = e->next) {
        if (strcmp(e->name, name) == 0)
            return e;
    }
    return NULL;
}

static ds_tenant_entry *entry_new(const ds_tenant_row *row)
{
    ds_tenant_entry *e = calloc(1, sizeof *e);
    if (e == NULL || pthread_mutex_init(&e->refresh_lock, NULL) != 0) {
        free(e);
        return NULL;
    }
    memcpy(e->name, row->name, sizeof e->name);
    memcpy(e->uuid, row->uuid, sizeof e->uuid);
    e->generation = row->generation;
    e->source = row->source;
    e->state = OK_DS_ACTIVE;
    e->since = row->created;
    e->refs = 1; /* the list's */
    return e;
}

ok_err ds_entry_get(ok_ds *ds, const char *name, ds_tenant_entry **out)
{
    ds_keys *k = ds->keys;
    ds_tenant_row row;
    ds_tenant_entry *e;

    *out = NULL;
    pthread_mutex_lock(&k->lock);
    e = entry_find_locked(k, name);
    if (e != NULL)
        e->refs++;
    pthread_mutex_unlock(&k->lock);
    if (e != NULL) {
        *out = e;
        return OK_OK;
    }
    OK_GUARD(ds_tenant_row_load(ds, name, &row));
    ds_tenant_entry *fresh = entry_new(&row);
    ds_tenant_row_clear(&row);
    if (fresh == NULL)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    pthread_mutex_lock(&k->lock);
    e = entry_find_locked(k, name);
    if (e == NULL) {
        e = fresh;
        fresh = NULL;
        e->next = k->head;
        k->head = e;
    }
    e->refs++;
    pthread_mutex_unlock(&k->lock);
    if (fresh != NULL)
        entry_free(fresh);
    *out = e;
    return OK_OK;
}

void ds_entry_put(ok_ds *ds, ds_tenant_entry *e)
{
    int last;
    if (e == NULL)
        return;
    pthread_mutex_lock(&ds->keys->lock);
    last = --e->refs == 0;
    pthread_mutex_unlock(&ds->keys->lock);
    if (last)
        entry_free(e);
}

void ds_keys_forget(ok_ds *ds, const char *name)
{
    ds_keys *k = ds->keys;
    ds_tenant_entry *e, **link;

    pthread_mutex_lock(&k->lock);
    for (link = &k->head; (e = *link) != NULL; link = &e->next) {
        if (strcmp(e->name, name) == 0)
            break;
    }
    if (e != NULL) {
        *link = e->next;
        e->gone = 1;
        ds_slots_wipe(e);
        e->refs--;
    }
    int last = e != NULL && e->refs == 0;
    pthread_mutex_unlock(&k->lock);
    if (last)
        entry_free(e);
}

/* ---- tenant_keys rows ------------------------------------------------------------------------------------------- */

#define TK_COLS "generation, source, srk_wrap, cust_key_id, cust_version, cust_alg, cust_ct"

typedef struct {
    ds_wrapped_tk *items;
    size_t count;
} wrapped_list;

static void wrapped_list_clear(wrapped_list *l)
{
    for (size_t i = 0; i < l->count; i++)
        ds_wrapped_tk_clear(&l->items[i]);
    free(l->items);
    l->items = NULL;
    l->count = 0;
}

static ok_err wrapped_row(void *ctx, const ok_val *c, size_t n)
{
    wrapped_list *l = ctx;
    if (n != 7 || c[0].type != OK_VAL_INT || c[1].type != OK_VAL_INT || c[0].i < 1 || c[1].i < OK_DS_KEYS_SERVICE ||
        c[1].i > OK_DS_KEYS_DOUBLE)
        return ok_fail(OK_ERR_FORMAT, "data.db: a tenant key row is malformed");
    ds_wrapped_tk *grown = realloc(l->items, (l->count + 1) * sizeof *grown);
    if (grown == NULL)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    l->items = grown;
    ds_wrapped_tk *w = &l->items[l->count++];
    memset(w, 0, sizeof *w);
    w->generation = (uint64_t)c[0].i;
    w->source = (ok_ds_key_source)c[1].i;
    if (c[2].type == OK_VAL_BLOB) {
        if (c[2].len != DS_SRK_BLOB_LEN)
            return ok_fail(OK_ERR_FORMAT, "data.db: a tenant key's service layer is malformed");
        memcpy(w->srk_wrap, c[2].b, DS_SRK_BLOB_LEN);
        w->has_srk = 1;
    }
    if (c[6].type == OK_VAL_BLOB) {
        if (c[3].type != OK_VAL_TEXT || c[4].type != OK_VAL_TEXT || c[5].type != OK_VAL_TEXT)
            return ok_fail(OK_ERR_FORMAT, "data.db: a tenant key's customer layer is malformed");
        OK_GUARD(ok_edk_set(&w->cust, ds_cust_provider_name(c[3].s), c[3].s, c[4].s, c[5].s, c[6].b, c[6].len));
        w->has_cust = 1;
    }
    return OK_OK;
}

static ok_err wrapped_load(ok_ds *ds, const char *name, wrapped_list *out)
{
    ok_val p[1] = {OK_VTEXT(name)};
    memset(out, 0, sizeof *out);
    ok_err rc = ds->store->vt->query(ds->store, "SELECT " TK_COLS " FROM tenant_keys WHERE tenant = ? ORDER BY generation",
                                     p, 1, wrapped_row, out);
    if (rc != OK_OK)
        wrapped_list_clear(out);
    return rc;
}

/* Writes one row: insert (a new generation) or update (a re-wrap; with old_version, only while the row
 * still names that customer key version). */
ok_err ds_wrapped_store(ok_ds *ds, const char *name, const ds_wrapped_tk *w, int insert, const char *old_version)
{
    ok_val p[9] = {
        OK_VINT((int64_t)w->source),
        w->has_srk ? OK_VBLOB(w->srk_wrap, DS_SRK_BLOB_LEN) : OK_VNULL,
        w->has_cust ? OK_VTEXT(w->cust.key_id) : OK_VNULL,
        w->has_cust ? OK_VTEXT(w->cust.key_version) : OK_VNULL,
        w->has_cust ? OK_VTEXT(w->cust.wrap_alg) : OK_VNULL,
        w->has_cust ? OK_VBLOB(w->cust.ct, w->cust.ct_len) : OK_VNULL,
        OK_VTEXT(name),
        OK_VINT((int64_t)w->generation),
        old_version ? OK_VTEXT(old_version) : OK_VNULL,
    };
    if (insert)
        return ds->store->vt->exec(ds->store,
                                   "INSERT INTO tenant_keys(source, srk_wrap, cust_key_id, cust_version, cust_alg, cust_ct,"
                                   " tenant, generation) VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
                                   p, 8, NULL);
    if (old_version)
        return ds->store->vt->exec(ds->store,
                                   "UPDATE tenant_keys SET source = ?, srk_wrap = ?, cust_key_id = ?, cust_version = ?,"
                                   " cust_alg = ?, cust_ct = ? WHERE tenant = ? AND generation = ? AND cust_version = ?",
                                   p, 9, NULL);
    return ds->store->vt->exec(ds->store,
                               "UPDATE tenant_keys SET source = ?, srk_wrap = ?, cust_key_id = ?, cust_version = ?,"
                               " cust_alg = ?, cust_ct = ? WHERE tenant = ? AND generation = ?",
                               p, 8, NULL);
}

/* ---- refresh ---------------------------------------------------------------------------------------------------- */

/* The customer's key for the tenant, opened from its sealed credential in this seal epoch. */
ok_err ds_entry_provider(ok_ds *ds, ds_tenant_entry *e, const ds_tenant_row *row, uint64_t epoch, ds_reason *why)
{
    if (e->prov != NULL && e->prov_epoch == epoch)
        return OK_OK;
    ok_provider_free(e->prov);
    e->prov = NULL;
    ok_err rc = ds_cust_open_sealed(ds, row->uuid, row->customer_uri, row->cred, row->cred_len, &e->prov, why);
    if (rc != OK_OK && rc != OK_ERR_SEALED && rc != OK_ERR_NOMEM && why->code[0] == '\0') {
        snprintf(why->code, sizeof why->code, "KeyInvalid");
        snprintf(why->text, sizeof why->text, "the stored customer key credential does not open: %s", ok_err_message());
    }
    if (rc == OK_OK)
        e->prov_epoch = epoch;
    return rc;
}

/* When an unversioned customer key has a newer version than the one that wrapped a TK row, re-wraps the TK
 * under the newest one and updates the row (only while it still names the old version). Best effort: a
 * failure leaves the old wrap, which still opens, for the next refresh to retry. */
static void follow_rotation(ok_ds *ds, ds_tenant_entry *e, const ds_tenant_row *row, const ds_wrapped_tk *w,
                            const uint8_t tk[DS_TK_LEN], const char *newest)
{
    ok_vault_key_ref ref;
    ds_wrapped_tk nw;
    ds_reason why;

    if (!w->has_cust || strcmp(w->cust.key_version, newest) == 0 ||
        ok_vault_key_ref_parse(row->customer_uri, &ref) != OK_OK || ref.version[0] != '\0')
        return;
    if (ds_root_wrap_tk(ds, w->source, e->prov, row->uuid, w->generation, tk, &nw, &why) != OK_OK)
        return;
    (void)ds_wrapped_store(ds, row->name, &nw, 0, w->cust.key_version);
    ds_wrapped_tk_clear(&nw);
}

/* Unwraps every row; on success installs them all in the cache. */
static ok_err refresh_rows(ok_ds *ds, ds_tenant_entry *e, const ds_tenant_row *row, uint64_t epoch, ds_reason *why)
{
    char newest[65] = "";
    wrapped_list rows;
    uint8_t *tks;
    ok_err rc;

    OK_GUARD(wrapped_load(ds, row->name, &rows));
    tks = ok_secure_alloc(rows.count ? rows.count * DS_TK_LEN : 1);
    if (tks == NULL) {
        wrapped_list_clear(&rows);
        return ok_fail(OK_ERR_NOMEM, "secure memory");
    }
    rc = OK_OK;
    for (size_t i = 0; i < rows.count && rc == OK_OK; i++) {
        if (rows.items[i].source != row->source) {
            snprintf(why->code, sizeof why->code, "KeyInvalid");
            snprintf(why->text, sizeof why->text, "tenant key generation %llu is not wrapped as the tenant's settings say",
                     (unsigned long long)rows.items[i].generation);
            rc = ok_fail(OK_ERR_FORMAT, "%s", why->text);
            break;
        }
        rc = ds_root_unwrap_tk(ds, e->prov, row->uuid, &rows.items[i], tks + i * DS_TK_LEN, why);
    }
    /* Then the key itself: a key that still unwraps may have expired (ownkeyd and Azure unwrap after exp),
     * and an unversioned URI may name a newer version now. The unwrap comes first so that the customer's
     * vault logs every failed probe as a failed unwrap. */
    if (rc == OK_OK && row->source != OK_DS_KEYS_SERVICE)
        rc = ds_cust_verify_key(ds, e->prov, newest, why);
    if (rc == OK_OK && newest[0] != '\0') {
        for (size_t i = 0; i < rows.count; i++)
            follow_rotation(ds, e, row, &rows.items[i], tks + i * DS_TK_LEN, newest);
    }
    if (rc == OK_OK) {
        ds_keys *k = ds->keys;
        pthread_mutex_lock(&k->lock);
        if (e->gone)
            rc = ok_fail(OK_ERR_NOT_FOUND, "tenant %s not found", e->name);
        else if (k->epoch != epoch)
            rc = ok_fail(OK_ERR_SEALED, "the vault was sealed during the call");
        else {
            ds_slots_wipe(e);
            for (size_t i = 0; i < rows.count && rc == OK_OK; i++)
                rc = ds_slot_put(e, rows.items[i].generation, tks + i * DS_TK_LEN);
            if (rc == OK_OK) {
                e->generation = row->generation;
                e->source = row->source;
                e->verified_ms = ds_mono_ms();
                ds_mark_active_locked(ds, e);
            } else {
                ds_slots_wipe(e);
            }
        }
        pthread_mutex_unlock(&k->lock);
    }
    ok_secure_free(tks, rows.count ? rows.count * DS_TK_LEN : 1);
    wrapped_list_clear(&rows);
    return rc;
}

ok_err ds_entry_refresh(ok_ds *ds, ds_tenant_entry *e, uint64_t epoch)
{
    ds_tenant_row row;
    ds_reason why = {"", ""};
    ok_err rc;

    OK_GUARD(ds_tenant_row_load(ds, e->name, &row));
    if (strcmp(row.uuid, e->uuid) != 0) {
        ds_tenant_row_clear(&row);
        return ok_fail(OK_ERR_NOT_FOUND, "tenant %s not found", e->name); /* deleted and made again */
    }
    rc = OK_OK;
    if (row.source != OK_DS_KEYS_SERVICE) {
        rc = ds_entry_provider(ds, e, &row, epoch, &why);
    } else {
        ok_provider_free(e->prov);
        e->prov = NULL;
    }
    if (rc == OK_OK)
        rc = refresh_rows(ds, e, &row, epoch, &why);
    if (rc != OK_OK && e->prov != NULL && ds_cust_kind_of(row.customer_uri) == DS_CUST_KMIP) {
        ok_provider_free(e->prov); /* the next probe connects afresh (a restarted server) */
        e->prov = NULL;
    }
    ds_tenant_row_clear(&row);
    if (rc == OK_OK || rc == OK_ERR_SEALED || rc == OK_ERR_NOMEM || why.code[0] == '\0')
        return rc;
    ds_lock_tenant(ds, e, &why);
    return ok_fail(OK_ERR_LOCKED, "tenant %s is locked: %s (%s)", e->name, why.text, why.code);
}

/* ---- serving TKs -------------------------------------------------------------------------------------------------- */

enum { SERVE_MISS = 0, SERVE_DONE = 1 };

/* Answers from the cache when it can: a locked tenant, or a fresh TK. generation 0 = the current one. */
static int try_serve(ok_ds *ds, ds_tenant_entry *e, uint64_t generation, uint8_t *tk, ds_tenant_ref *ref, ok_err *rc)
{
    ds_keys *k = ds->keys;
    int done = SERVE_MISS;

    pthread_mutex_lock(&k->lock);
    if (e->gone) {
        *rc = ok_fail(OK_ERR_NOT_FOUND, "tenant %s not found", e->name);
        done = SERVE_DONE;
    } else if (e->state == OK_DS_LOCKED) {
        *rc = ok_fail(OK_ERR_LOCKED, "tenant %s is locked: %s (%s)", e->name, e->reason.text, e->reason.code);
        done = SERVE_DONE;
    } else if (e->verified_ms != 0 && ds_mono_ms() - e->verified_ms < ds->ttl * 1000) {
        ds_tk_slot *s = ds_slot_find(e, generation ? generation : e->generation);
        if (s != NULL) {
            if (tk != NULL)
                memcpy(tk, s->tk, DS_TK_LEN);
            if (ref != NULL) {
                memcpy(ref->uuid, e->uuid, sizeof ref->uuid);
                ref->generation = e->generation;
            }
            *rc = OK_OK;
            done = SERVE_DONE;
        }
    }
    pthread_mutex_unlock(&k->lock);
    return done;
}

static ok_err fetch(ok_ds *ds, const char *name, uint64_t generation, uint8_t *tk, ds_tenant_ref *ref)
{
    ds_tenant_entry *e = NULL;
    ok_err rc = OK_OK;
    uint64_t epoch;

    if (ds == NULL || name == NULL || !ok_ds_tenant_name_valid(name))
        return ok_fail(OK_ERR_NOT_FOUND, "tenant %s not found", name ? name : "(null)");
    epoch = ds_keys_epoch(ds);
    if (epoch == 0)
        return ok_fail(OK_ERR_SEALED, "the vault is sealed");
    OK_GUARD(ds_entry_get(ds, name, &e));
    if (!try_serve(ds, e, generation, tk, ref, &rc)) {
        pthread_mutex_lock(&e->refresh_lock);
        if (!try_serve(ds, e, generation, tk, ref, &rc)) {
            rc = ds_entry_refresh(ds, e, epoch);
            if (rc == OK_OK && !try_serve(ds, e, generation, tk, ref, &rc))
                rc = ok_vault_seal_epoch(ds->vault) == 0
                         ? ok_fail(OK_ERR_SEALED, "the vault is sealed")
                         : ok_fail(OK_ERR_NOT_FOUND, "tenant %s has no key generation %llu", name,
                                   (unsigned long long)generation);
        }
        pthread_mutex_unlock(&e->refresh_lock);
    }
    ds_entry_put(ds, e);
    return rc;
}

ok_err ds_tenant_ref_get(ok_ds *ds, const char *tenant, ds_tenant_ref *out)
{
    if (out == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ds_tenant_ref_get: NULL argument");
    memset(out, 0, sizeof *out);
    return fetch(ds, tenant, 0, NULL, out);
}

ok_err ds_tk_get(ok_ds *ds, const char *tenant, uint64_t generation, uint8_t tk[DS_TK_LEN])
{
    if (tk == NULL || generation == 0)
        return ok_fail(OK_ERR_INVALID_ARG, "ds_tk_get: no generation %llu", (unsigned long long)generation);
    ok_err rc = fetch(ds, tenant, generation, tk, NULL);
    if (rc != OK_OK)
        ok_zeroize(tk, DS_TK_LEN);
    return rc;
}
