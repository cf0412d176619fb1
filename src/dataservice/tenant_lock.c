/* Tenant lock state and the background work on keys: locking a tenant whose root key failed (its TKs
 * wiped, one line to stderr), unlocking it when a refresh succeeds again, the worker's pass (every cached
 * customer-keyed tenant re-verified once half the TTL has passed; locked tenants probed with exponential
 * backoff from 1 s to probe_max_backoff; caches wiped when the vault's seal epoch changes), the state a
 * tenant's status shows, and the Prometheus lines. The state is not stored: after a restart the first
 * refresh (the worker's first pass, or the first call) establishes it. Owns no TK cache (tenant_keys.c). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataservice/ds_keys.h"

void ds_lock_tenant(ok_ds *ds, ds_tenant_entry *e, const ds_reason *why)
{
    ds_keys *k = ds->keys;
    int64_t ms = ds_mono_ms();
    int newly = 0;

    pthread_mutex_lock(&k->lock);
    if (!e->gone) {
        ds_slots_wipe(e);
        if (e->state != OK_DS_LOCKED) {
            e->state = OK_DS_LOCKED;
            e->since = ds_now();
            e->backoff = 1;
            newly = 1;
        } else {
            e->backoff = e->backoff * 2 > ds->probe_max_backoff ? ds->probe_max_backoff : e->backoff * 2;
        }
        if (e->backoff == 0)
            e->backoff = 1;
        e->next_probe_ms = ms + (int64_t)e->backoff * 1000;
        e->reason = *why;
        e->known = 1;
    }
    pthread_mutex_unlock(&k->lock);
    if (newly) {
        atomic_fetch_add(&ds->locks, 1);
        fprintf(stderr, "ownkeyd: data: tenant %s locked: %s (%s)\n", e->name, why->text, why->code);
    }
}

void ds_mark_active_locked(ok_ds *ds, ds_tenant_entry *e)
{
    e->known = 1;
    if (e->state != OK_DS_LOCKED)
        return;
    e->state = OK_DS_ACTIVE;
    e->since = ds_now();
    memset(&e->reason, 0, sizeof e->reason);
    e->backoff = 0;
    e->next_probe_ms = 0;
    atomic_fetch_add(&ds->unlocks, 1);
    fprintf(stderr, "ownkeyd: data: tenant %s unlocked\n", e->name);
}

/* ---- status ---------------------------------------------------------------------------------------------------- */

void ds_keys_state(ok_ds *ds, const char *name, ok_ds_tenant_info *info)
{
    ds_tenant_entry *e = NULL;
    uint64_t epoch = ds_keys_epoch(ds);

    info->state = OK_DS_ACTIVE;
    info->reason_code[0] = info->reason[0] = '\0';
    info->since = info->created;
    if (epoch == 0) {
        info->state = OK_DS_LOCKED;
        snprintf(info->reason_code, sizeof info->reason_code, "VaultSealed");
        snprintf(info->reason, sizeof info->reason, "the vault is sealed; an operator must unseal it");
        info->since = ds_now();
        return;
    }
    if (ds_entry_get(ds, name, &e) != OK_OK)
        return;
    pthread_mutex_lock(&ds->keys->lock);
    int known = e->known;
    pthread_mutex_unlock(&ds->keys->lock);
    if (!known) {
        pthread_mutex_lock(&e->refresh_lock);
        pthread_mutex_lock(&ds->keys->lock);
        known = e->known;
        pthread_mutex_unlock(&ds->keys->lock);
        if (!known)
            (void)ds_entry_refresh(ds, e, epoch); /* establishes the state; its error is the state */
        pthread_mutex_unlock(&e->refresh_lock);
    }
    pthread_mutex_lock(&ds->keys->lock);
    info->state = e->state;
    info->since = e->since;
    if (e->state == OK_DS_LOCKED) {
        snprintf(info->reason_code, sizeof info->reason_code, "%s", e->reason.code);
        snprintf(info->reason, sizeof info->reason, "%s", e->reason.text);
    }
    pthread_mutex_unlock(&ds->keys->lock);
    ds_entry_put(ds, e);
}

/* ---- the worker's pass ---------------------------------------------------------------------------------------- */

typedef struct {
    char **names;
    size_t count;
} name_list;

static ok_err name_cb(void *ctx, const ok_val *c, size_t n)
{
    name_list *l = ctx;
    if (n != 1 || c[0].type != OK_VAL_TEXT)
        return ok_fail(OK_ERR_FORMAT, "data.db: a tenant row is malformed");
    char **grown = realloc(l->names, (l->count + 1) * sizeof *grown);
    if (grown == NULL)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    l->names = grown;
    if ((l->names[l->count] = strdup(c[0].s)) == NULL)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    l->count++;
    return OK_OK;
}

static ok_err names_load(ok_ds *ds, name_list *out)
{
    memset(out, 0, sizeof *out);
    ok_err rc = ds->store->vt->query(ds->store, "SELECT name FROM tenants ORDER BY name", NULL, 0, name_cb, out);
    if (rc != OK_OK) {
        ok_ds_names_free(out->names, out->count);
        memset(out, 0, sizeof *out);
    }
    return rc;
}

/* Frees every customer key (and so its token) opened in another seal epoch. */
static void release_providers(ok_ds *ds, uint64_t epoch)
{
    ds_keys *k = ds->keys;
    ds_tenant_entry **held = NULL;
    size_t n = 0, cap = 0;

    pthread_mutex_lock(&k->lock);
    for (ds_tenant_entry *e = k->head; e != NULL; e = e->next) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            ds_tenant_entry **grown = realloc(held, ncap * sizeof *grown);
            if (grown == NULL)
                break;
            held = grown;
            cap = ncap;
        }
        e->refs++;
        held[n++] = e;
    }
    pthread_mutex_unlock(&k->lock);
    for (size_t i = 0; i < n; i++) {
        pthread_mutex_lock(&held[i]->refresh_lock);
        if (held[i]->prov != NULL && held[i]->prov_epoch != epoch) {
            ok_provider_free(held[i]->prov);
            held[i]->prov = NULL;
        }
        pthread_mutex_unlock(&held[i]->refresh_lock);
        ds_entry_put(ds, held[i]);
    }
    free(held);
}

/* Whether the worker should refresh this tenant now. */
static int due(ok_ds *ds, ds_tenant_entry *e, int64_t ms)
{
    int yes;
    pthread_mutex_lock(&ds->keys->lock);
    if (e->state == OK_DS_LOCKED)
        yes = ms >= e->next_probe_ms;
    else if (!e->known)
        yes = 1;
    else
        yes = e->source != OK_DS_KEYS_SERVICE && (e->verified_ms == 0 || (ms - e->verified_ms) * 2 >= ds->ttl * 1000);
    pthread_mutex_unlock(&ds->keys->lock);
    return yes;
}

void ds_keys_tick(ok_ds *ds, int64_t now)
{
    ds_keys *k = ds->keys;
    name_list names;
    uint64_t before, epoch;

    (void)now; /* the cache runs on the monotonic clock */
    pthread_mutex_lock(&k->lock);
    before = k->epoch;
    pthread_mutex_unlock(&k->lock);
    epoch = ds_keys_epoch(ds);
    if (epoch != before || epoch == 0)
        release_providers(ds, epoch);
    if (epoch == 0 || names_load(ds, &names) != OK_OK)
        return;
    for (size_t i = 0; i < names.count; i++) {
        ds_tenant_entry *e = NULL;
        if (ds_entry_get(ds, names.names[i], &e) != OK_OK)
            continue;
        if (due(ds, e, ds_mono_ms())) {
            pthread_mutex_lock(&e->refresh_lock);
            if (due(ds, e, ds_mono_ms()))
                (void)ds_entry_refresh(ds, e, epoch); /* a failure locks the tenant, or waits for the next pass */
            pthread_mutex_unlock(&e->refresh_lock);
        }
        ds_entry_put(ds, e);
    }
    ok_ds_names_free(names.names, names.count);
}

/* ---- metrics ---------------------------------------------------------------------------------------------------- */

static void line(ok_buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line(ok_buf *out, const char *fmt, ...)
{
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (n > 0)
        (void)ok_buf_put(out, text, (size_t)n < sizeof text ? (size_t)n : sizeof text - 1);
}

void ok_ds_metrics(ok_ds *ds, ok_buf *out)
{
    name_list names;
    size_t locked = 0;
    char *flags;

    if (ds == NULL || out == NULL || names_load(ds, &names) != OK_OK)
        return;
    flags = calloc(names.count ? names.count : 1, 1);
    if (flags == NULL) {
        ok_ds_names_free(names.names, names.count);
        return;
    }
    pthread_mutex_lock(&ds->keys->lock);
    for (ds_tenant_entry *e = ds->keys->head; e != NULL; e = e->next) {
        for (size_t i = 0; i < names.count; i++) {
            if (e->state == OK_DS_LOCKED && strcmp(e->name, names.names[i]) == 0) {
                flags[i] = 1;
                locked++;
            }
        }
    }
    pthread_mutex_unlock(&ds->keys->lock);
    line(out, "# HELP ownkey_data_tenants Data service tenants by state.\n# TYPE ownkey_data_tenants gauge\n");
    line(out, "ownkey_data_tenants{state=\"active\"} %zu\n", names.count - locked);
    line(out, "ownkey_data_tenants{state=\"locked\"} %zu\n", locked);
    line(out, "# HELP ownkey_data_tenant_locked 1 while the tenant is locked (its root key failed).\n"
              "# TYPE ownkey_data_tenant_locked gauge\n");
    for (size_t i = 0; i < names.count; i++)
        line(out, "ownkey_data_tenant_locked{tenant=\"%s\"} %d\n", names.names[i], flags[i]);
    line(out, "# TYPE ownkey_data_tenant_locks_total counter\nownkey_data_tenant_locks_total %llu\n",
         (unsigned long long)atomic_load(&ds->locks));
    line(out, "# TYPE ownkey_data_tenant_unlocks_total counter\nownkey_data_tenant_unlocks_total %llu\n",
         (unsigned long long)atomic_load(&ds->unlocks));
    line(out, "# HELP ownkey_data_root_calls_total Calls to root keys (SRK and customer vaults).\n"
              "# TYPE ownkey_data_root_calls_total counter\nownkey_data_root_calls_total %llu\n",
         (unsigned long long)atomic_load(&ds->root_calls));
    free(flags);
    ok_ds_names_free(names.names, names.count);
}
