/* Internal to the data service (src/dataservice): the service object every module shares, the storage
 * schema, and the seams between the modules:
 *   ds.c             open/close, schema, the background worker that drives the others;
 *   tenants.c        tenant rows: create/get/list/set-key/remove-key/delete;
 *   tenant_keys.c    TKs: making, the TTL cache, ds_tenant_ref_get/ds_tk_get/ds_tk_next;
 *   tenant_rewrap.c  re-wrapping a tenant's TKs under a new or rotated customer key (O(1) in objects);
 *   tenant_lock.c    refresh, lock and probe with backoff (the worker's pass), metrics;
 *   root_keys.c      the root keys: the SRK (sealed under the vault master key) and customer vault keys;
 *                    (ds_keys.h is the private header of these five)
 *   objects.c        names and metadata, head, delete, list, stats, recovery after a crash;
 *   object_write.c   put: streamed sealing to a temporary file, durable commit (objects_internal.h is
 *                    shared by the object files and rekey.c);
 *   seal_pipe.c      the sealing thread of large puts (bounded buffers, write-back started as it goes);
 *   object_read.c    get with random access (only the frames a range needs are read and opened);
 *   tenant_provider.c the envelope provider that wraps/unwraps DEKs with a TK;
 *   rekey.c          re-key jobs: start, batches run by the worker, resume after a crash.
 * docs/DESIGN.md ("Data service") is the design these follow. */
#ifndef OWNKEY_DS_INTERNAL_H
#define OWNKEY_DS_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "ownkey/dataservice.h"
#include "ownkey/envelope.h"
#include "vault/store.h"

#define DS_TK_LEN 32
#define DS_UUID_LEN 32          /* 32 lowercase hex characters */
#define DS_FILE_ID_LEN 32
#define DS_TENANT_PROVIDER "ownkey-tenant" /* EDK provider of stored objects: key id = tenant uuid, version = TK generation */

typedef struct ds_keys ds_keys;  /* tenant_keys.c / root_keys.c */
typedef struct ds_jobs ds_jobs;  /* rekey.c */

struct ok_ds {
    char *dir;                   /* the data directory */
    char *objects_dir;           /* DIR/objects */
    ok_vault *vault;
    ok_store *store;             /* DIR/data.db */
    int64_t ttl;                 /* key cache TTL (seconds) */
    unsigned probe_max_backoff;  /* seconds */
    ds_keys *keys;
    ds_jobs *jobs;
    _Atomic uint64_t root_calls; /* every wrap/unwrap/get sent to a root key */
    _Atomic uint64_t locks, unlocks;
    pthread_t worker;
    bool worker_started;
    pthread_mutex_t worker_lock;
    pthread_cond_t worker_wake;
    bool stopping;
};

/* Storage schema (DIR/data.db), created by ds.c:
 *
 *   ds_meta(name TEXT PRIMARY KEY, value BLOB)
 *       'srk': the service root key, sealed with ok_vault_wrap_secret (aad "ownkey-ds-srk").
 *   tenants(name TEXT PRIMARY KEY, uuid TEXT UNIQUE NOT NULL, created INTEGER NOT NULL,
 *           source INTEGER NOT NULL,              -- ok_ds_key_source
 *           permanent INTEGER NOT NULL,
 *           customer_uri TEXT,                    -- as configured, NULL for service-managed
 *           customer_cred BLOB,                   -- {token, ca_pem} sealed (aad "ownkey-ds-cred|" uuid)
 *           tk_generation INTEGER NOT NULL,       -- the generation new objects use
 *           object_count INTEGER NOT NULL DEFAULT 0, byte_count INTEGER NOT NULL DEFAULT 0)
 *                                                 -- the tenant's objects rows and the sum of their sizes,
 *                                                 -- moved in the transaction of every objects row insert,
 *                                                 -- replace or delete (ds_objects_count), so that stats
 *                                                 -- (and a set-key's answer) are O(1) in objects
 *   tenant_keys(tenant TEXT NOT NULL REFERENCES tenants(name) ON DELETE CASCADE,
 *           generation INTEGER NOT NULL, source INTEGER NOT NULL,
 *           srk_wrap BLOB,                        -- service: the SRK layer; double: NULL (it is inside cust_ct)
 *           cust_key_id TEXT, cust_version TEXT, cust_alg TEXT, cust_ct BLOB,  -- the customer layer's EDK
 *           PRIMARY KEY(tenant, generation))
 *   objects(tenant TEXT NOT NULL REFERENCES tenants(name) ON DELETE CASCADE, name TEXT NOT NULL,
 *           file_id TEXT NOT NULL, size INTEGER NOT NULL, modified INTEGER NOT NULL, etag TEXT NOT NULL,
 *           content_type TEXT NOT NULL, meta TEXT NOT NULL,     -- JSON object of user metadata
 *           tk_generation INTEGER NOT NULL, dek_wrap BLOB NOT NULL, -- AES-KWP(TK[generation], DEK)
 *           PRIMARY KEY(tenant, name))
 *   rekey_jobs(tenant TEXT PRIMARY KEY REFERENCES tenants(name) ON DELETE CASCADE,
 *           new_generation INTEGER NOT NULL, reencrypt INTEGER NOT NULL, cursor TEXT NOT NULL,
 *           done INTEGER NOT NULL, total INTEGER NOT NULL, state INTEGER NOT NULL, error TEXT)
 *
 * Object files: DIR/objects/<tenant uuid>/<file id> (an envelope), written as
 * DIR/objects/<tenant uuid>/.tmp-<random> first. A file no row names is garbage (ds_objects_recover). */

/* ---- ds.c -------------------------------------------------------------------------------------- */
/* Wakes the worker now (a re-key was started, a tenant needs probing). */
void ds_worker_wake(ok_ds *ds);
/* The current time in unix seconds. */
int64_t ds_now(void);
/* 32 random lowercase hex characters + NUL. */
ok_err ds_random_hex(char out[DS_UUID_LEN + 1]);

/* ---- tenant_keys.c / root_keys.c / tenants.c --------------------------------------------------------- */
ok_err ds_keys_init(ok_ds *ds);
void ds_keys_free(ok_ds *ds);
/* One pass of the background work on keys: refreshes TKs whose cached copy is older than half the TTL,
 * locks tenants whose root key fails, probes locked tenants (with backoff) and unlocks them, wipes every
 * cached key when the vault was sealed. */
void ds_keys_tick(ok_ds *ds, int64_t now);

typedef struct {
    char uuid[DS_UUID_LEN + 1];
    uint64_t generation;         /* the TK generation new objects use */
} ds_tenant_ref;

/* Looks a tenant up and checks that it is usable: OK_ERR_NOT_FOUND (unknown), OK_ERR_LOCKED (message
 * names the cause), OK_ERR_SEALED (vault sealed). Makes sure the current TK is cached (refreshing it
 * through the root key when older than the TTL), so a following ds_tk_get is a memory lookup. */
ok_err ds_tenant_ref_get(ok_ds *ds, const char *tenant, ds_tenant_ref *out);
/* The TK of one generation of a tenant (32 bytes into tk; the caller zeroizes it). Same errors as above. */
ok_err ds_tk_get(ok_ds *ds, const char *tenant, uint64_t generation, uint8_t tk[DS_TK_LEN]);
/* Makes the next TK generation, wrapped under the tenant's root key(s) as the current one is, and in one
 * transaction stores it, makes it the tenant's current generation and calls in_txn (may be NULL) so that
 * the caller's rows commit with it. */
ok_err ds_tk_next(ok_ds *ds, const char *tenant, ok_err (*in_txn)(ok_ds *ds, void *arg), void *arg,
                  uint64_t *new_generation);
/* Deletes every TK generation of the tenant but keep (rows and cache). */
ok_err ds_tk_drop_others(ok_ds *ds, const char *tenant, uint64_t keep);

/* ---- objects.c / object_read.c / rekey.c ------------------------------------------------------------ */
/* At open: removes temporary files and files that no row names; creates DIR/objects. */
ok_err ds_objects_recover(ok_ds *ds);
/* Creates the tenant's object directory. */
ok_err ds_objects_tenant_init(ok_ds *ds, const char *uuid);
/* Removes the tenant's object directory and everything in it (after its rows are gone). */
ok_err ds_objects_tenant_erase(ok_ds *ds, const char *uuid);
/* Fills info->objects, ->bytes (the tenant's counters) and the rekey_* fields. */
ok_err ds_objects_stats(ok_ds *ds, const char *tenant, ok_ds_tenant_info *info);
/* Inside the caller's transaction: adds objects (+1 insert, -1 delete, 0 replace) and bytes (may be
 * negative) to the tenant's counters. Every objects row insert, replace or delete calls it. */
ok_err ds_objects_count(ok_ds *ds, const char *tenant, int64_t objects, int64_t bytes);

ok_err ds_jobs_init(ok_ds *ds);
void ds_jobs_free(ok_ds *ds);
/* Runs at most one batch of one re-key job; returns 1 when more work is waiting, 0 when idle. */
int ds_jobs_tick(ok_ds *ds);

/* ---- tenant_provider.c -------------------------------------------------------------------------- */
/* An envelope provider over one TK generation of a tenant: wrap seals a DEK with AES-KWP under the TK
 * (EDK: provider DS_TENANT_PROVIDER, key id = uuid, version = generation); unwrap opens the DEK from
 * `dek_wrap` when given (the objects row is authoritative: re-keys rewrite it), else from the EDK. The
 * TK is copied into locked memory and wiped when the provider is freed. */
ok_err ds_tenant_provider_new(const char *uuid, uint64_t generation, const uint8_t tk[DS_TK_LEN],
                              const uint8_t *dek_wrap, size_t dek_wrap_len, ok_provider **out);

#endif
