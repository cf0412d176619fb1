/* The data service object: opening its storage (DIR/data.db with the schema of ds_internal.h), the
 * recovery of what a crash left behind, and the background worker that drives key refresh, lock probes
 * and re-key jobs. Owns nothing about tenants or objects themselves. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "dataservice/ds_internal.h"

#define DEFAULT_TTL 3600
#define DEFAULT_MAX_BACKOFF 60u
#define WORKER_PERIOD_MS 250

static const char *const SCHEMA[] = {
    "CREATE TABLE IF NOT EXISTS ds_meta(name TEXT PRIMARY KEY, value BLOB)",
    "CREATE TABLE IF NOT EXISTS tenants(name TEXT PRIMARY KEY, uuid TEXT UNIQUE NOT NULL, created INTEGER NOT NULL,"
    " source INTEGER NOT NULL, permanent INTEGER NOT NULL, customer_uri TEXT, customer_cred BLOB,"
    " tk_generation INTEGER NOT NULL, object_count INTEGER NOT NULL DEFAULT 0, byte_count INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS tenant_keys(tenant TEXT NOT NULL REFERENCES tenants(name) ON DELETE CASCADE,"
    " generation INTEGER NOT NULL, source INTEGER NOT NULL, srk_wrap BLOB, cust_key_id TEXT, cust_version TEXT,"
    " cust_alg TEXT, cust_ct BLOB, PRIMARY KEY(tenant, generation))",
    "CREATE TABLE IF NOT EXISTS objects(tenant TEXT NOT NULL REFERENCES tenants(name) ON DELETE CASCADE,"
    " name TEXT NOT NULL, file_id TEXT NOT NULL, size INTEGER NOT NULL, modified INTEGER NOT NULL,"
    " etag TEXT NOT NULL, content_type TEXT NOT NULL, meta TEXT NOT NULL, tk_generation INTEGER NOT NULL,"
    " dek_wrap BLOB NOT NULL, PRIMARY KEY(tenant, name))",
    "CREATE INDEX IF NOT EXISTS objects_generation ON objects(tenant, tk_generation)",
    "CREATE TABLE IF NOT EXISTS rekey_jobs(tenant TEXT PRIMARY KEY REFERENCES tenants(name) ON DELETE CASCADE,"
    " new_generation INTEGER NOT NULL, reencrypt INTEGER NOT NULL, cursor TEXT NOT NULL, done INTEGER NOT NULL,"
    " total INTEGER NOT NULL, state INTEGER NOT NULL, error TEXT)",
};

int64_t ds_now(void)
{
    return (int64_t)time(NULL);
}

ok_err ds_random_hex(char out[DS_UUID_LEN + 1])
{
    uint8_t b[DS_UUID_LEN / 2];
    OK_GUARD(ok_random(b, sizeof b));
    static const char HEX[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof b; i++) {
        out[2 * i] = HEX[b[i] >> 4];
        out[2 * i + 1] = HEX[b[i] & 15];
    }
    out[DS_UUID_LEN] = '\0';
    return OK_OK;
}

void ds_worker_wake(ok_ds *ds)
{
    pthread_mutex_lock(&ds->worker_lock);
    pthread_cond_signal(&ds->worker_wake);
    pthread_mutex_unlock(&ds->worker_lock);
}

static void *worker_main(void *arg)
{
    ok_ds *ds = arg;
    pthread_mutex_lock(&ds->worker_lock);
    while (!ds->stopping) {
        pthread_mutex_unlock(&ds->worker_lock);
        ds_keys_tick(ds, ds_now());
        int more = ds_jobs_tick(ds);
        pthread_mutex_lock(&ds->worker_lock);
        if (more || ds->stopping)
            continue;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += WORKER_PERIOD_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec += 1;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&ds->worker_wake, &ds->worker_lock, &until);
    }
    pthread_mutex_unlock(&ds->worker_lock);
    return NULL;
}

static ok_err take_count(void *ctx, const ok_val *cols, size_t n)
{
    if (n >= 1 && cols[0].type == OK_VAL_INT)
        *(int64_t *)ctx = cols[0].i;
    return OK_OK;
}

/* A store made before the tenants kept their object counters gets the two columns, filled from the
 * objects rows once (the only O(objects) step; from then on every row change moves them). */
static ok_err add_counters(ok_store *s)
{
    static const char *const MIGRATE[] = {
        "ALTER TABLE tenants ADD COLUMN object_count INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE tenants ADD COLUMN byte_count INTEGER NOT NULL DEFAULT 0",
        ("UPDATE tenants SET object_count = (SELECT count(*) FROM objects WHERE tenant = tenants.name),"
         " byte_count = (SELECT coalesce(sum(size), 0) FROM objects WHERE tenant = tenants.name)"),
    };
    int64_t have = 0;
    OK_GUARD(s->vt->query(s, "SELECT count(*) FROM pragma_table_info('tenants') WHERE name = 'object_count'", NULL, 0,
                          take_count, &have));
    if (have)
        return OK_OK;
    OK_GUARD(s->vt->begin(s));
    ok_err rc = OK_OK;
    for (size_t i = 0; i < sizeof MIGRATE / sizeof *MIGRATE && rc == OK_OK; i++)
        rc = s->vt->exec(s, MIGRATE[i], NULL, 0, NULL);
    if (rc == OK_OK)
        rc = s->vt->commit(s);
    if (rc != OK_OK)
        s->vt->rollback(s);
    return rc;
}

static ok_err create_schema(ok_store *s)
{
    for (size_t i = 0; i < sizeof SCHEMA / sizeof *SCHEMA; i++)
        OK_GUARD(s->vt->exec(s, SCHEMA[i], NULL, 0, NULL));
    return add_counters(s);
}

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "%s/%s", a, b);
    return out;
}

ok_err ok_ds_open(const ok_ds_config *cfg, ok_ds **out)
{
    if (!cfg || !cfg->dir || !cfg->vault || !out)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_ds_open: missing configuration");
    *out = NULL;
    ok_ds *ds = calloc(1, sizeof *ds);
    if (!ds)
        return ok_fail(OK_ERR_NOMEM, "cannot allocate the data service");
    pthread_mutex_init(&ds->worker_lock, NULL);
    pthread_cond_init(&ds->worker_wake, NULL);
    ds->vault = cfg->vault;
    ds->ttl = cfg->key_cache_ttl > 0 ? cfg->key_cache_ttl : DEFAULT_TTL;
    ds->probe_max_backoff = cfg->probe_max_backoff ? cfg->probe_max_backoff : DEFAULT_MAX_BACKOFF;
    ok_err rc = OK_OK;
    char *db = NULL;
    ds->dir = strdup(cfg->dir);
    ds->objects_dir = join(cfg->dir, "objects");
    db = join(cfg->dir, "data.db");
    if (!ds->dir || !ds->objects_dir || !db) {
        rc = ok_fail(OK_ERR_NOMEM, "cannot allocate the data service");
        goto fail;
    }
    OK_GUARD_GOTO(rc, ok_store_open_sqlite(db, &ds->store), fail);
    OK_GUARD_GOTO(rc, create_schema(ds->store), fail);
    OK_GUARD_GOTO(rc, ds_objects_recover(ds), fail);
    OK_GUARD_GOTO(rc, ds_keys_init(ds), fail);
    OK_GUARD_GOTO(rc, ds_jobs_init(ds), fail);
    if (pthread_create(&ds->worker, NULL, worker_main, ds) != 0) {
        rc = ok_fail(OK_ERR_NOMEM, "cannot start the data service worker");
        goto fail;
    }
    ds->worker_started = true;
    free(db);
    *out = ds;
    return OK_OK;
fail:
    free(db);
    ok_ds_close(ds);
    return rc;
}

void ok_ds_close(ok_ds *ds)
{
    if (!ds)
        return;
    if (ds->worker_started) {
        pthread_mutex_lock(&ds->worker_lock);
        ds->stopping = true;
        pthread_cond_signal(&ds->worker_wake);
        pthread_mutex_unlock(&ds->worker_lock);
        pthread_join(ds->worker, NULL);
    }
    if (ds->jobs)
        ds_jobs_free(ds);
    if (ds->keys)
        ds_keys_free(ds);
    if (ds->store)
        ds->store->vt->close(ds->store);
    pthread_cond_destroy(&ds->worker_wake);
    pthread_mutex_destroy(&ds->worker_lock);
    free(ds->objects_dir);
    free(ds->dir);
    free(ds);
}

uint64_t ok_ds_root_calls(ok_ds *ds)
{
    return ds ? atomic_load(&ds->root_calls) : 0;
}
