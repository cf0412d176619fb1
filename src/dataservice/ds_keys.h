/* Internal to the key half of the data service (root_keys.c, tenant_keys.c, tenant_lock.c, tenants.c): the
 * key cache's shared state, the lock reasons, and the root-key calls (the SRK and the customer's vault
 * key) that wrap and unwrap tenant keys. ds_internal.h has the seams the rest of the service uses. */
#ifndef OWNKEY_DS_KEYS_H
#define OWNKEY_DS_KEYS_H

#include "dataservice/ds_internal.h"
#include "ownkey/provider.h"

#define DS_SRK_LEN 32
#define DS_SRK_BLOB_LEN 64               /* "oTK1" || nonce(12) || GCM(SRK, TK)(32) || tag(16) */
#define DS_SRK_AAD "ownkey-ds-srk"
#define DS_CRED_AAD "ownkey-ds-cred|"    /* + tenant uuid */

/* Why a tenant is locked, or why a customer key was refused: a code the API shows ("KeyDisabled",
 * "KeyExpired", "KeyNotFound", "Forbidden", "VaultUnreachable", "VaultSealed", "KeyUnreachable" (a PKCS#11
 * token or KMIP server), "KeyInvalid") and a sentence. Never a key, a token or a PIN. */
typedef struct {
    char code[64];
    char text[OK_DS_REASON_MAX + 1];
} ds_reason;

/* A TK as one tenant_keys row stores it: the SRK layer (service), the customer layer (customer), or the
 * customer layer over the SRK layer's blob (double). */
typedef struct {
    uint64_t generation;
    ok_ds_key_source source;
    int has_srk;
    uint8_t srk_wrap[DS_SRK_BLOB_LEN];
    int has_cust;
    ok_edk cust;                         /* the provider's EDK: "vault" (key id = versionless URL, version),
                                          * "pkcs11" or "kmip" (version ""); alg, ct */
} ds_wrapped_tk;

void ds_wrapped_tk_clear(ds_wrapped_tk *w);

/* One tenant's cached keys and lock state (tenant_keys.c, tenant_lock.c). Entries are reference-counted:
 * the list holds one reference until the tenant is deleted. */
typedef struct {
    uint64_t generation;
    uint8_t *tk;                 /* DS_TK_LEN bytes of secure memory */
} ds_tk_slot;

typedef struct ds_tenant_entry {
    struct ds_tenant_entry *next;
    unsigned refs;
    int gone;                    /* deleted: no longer in the list, nothing is cached again */
    char name[OK_DS_TENANT_NAME_MAX + 1];
    pthread_mutex_t refresh_lock; /* one refresh (or key change) at a time; held across root calls */
    /* guarded by ds_keys.lock */
    char uuid[DS_UUID_LEN + 1];
    uint64_t generation;         /* the generation new objects use */
    ok_ds_key_source source;
    ds_tk_slot *slots;
    size_t nslots;
    int64_t verified_ms;         /* monotonic ms of the last successful refresh; 0 = nothing cached */
    int known;                   /* the state was established by a refresh since open */
    ok_ds_state state;
    ds_reason reason;            /* when locked */
    int64_t since;               /* unix seconds */
    int64_t next_probe_ms;       /* locked: when the worker probes again */
    unsigned backoff;            /* locked: seconds to the next probe after this one */
    /* guarded by refresh_lock */
    ok_provider *prov;           /* the customer's key (token in secure memory), or NULL */
    uint64_t prov_epoch;         /* the seal epoch it was opened in */
} ds_tenant_entry;

struct ds_keys {
    pthread_mutex_t lock;        /* guards the entry list and every entry's cached state */
    ds_tenant_entry *head;
    uint64_t epoch;              /* the vault seal epoch the cached keys belong to (0: none cached) */
    int64_t last_scan_ms;        /* tenant_lock.c: the worker's last pass over every tenant */
    /* root_keys.c */
    pthread_mutex_t srk_lock;
    uint8_t *srk;                /* DS_SRK_LEN bytes of secure memory while cached, else NULL */
    uint64_t srk_epoch;
};

/* ---- root_keys.c -------------------------------------------------------------------------------------- */
ok_err ds_root_init(ok_ds *ds);
void ds_root_free(ok_ds *ds);
/* Wipes the cached SRK (the vault was sealed). */
void ds_root_wipe(ok_ds *ds);

/* Wraps tk under the tenant's root key(s) for generation `generation` (prov: the customer's key, for
 * customer and double). On failure of the customer layer, *why says what the customer's vault answered. */
ok_err ds_root_wrap_tk(ok_ds *ds, ok_ds_key_source source, ok_provider *prov, const char *uuid,
                       uint64_t generation, const uint8_t tk[DS_TK_LEN], ds_wrapped_tk *out, ds_reason *why);
ok_err ds_root_unwrap_tk(ok_ds *ds, ok_provider *prov, const char *uuid, const ds_wrapped_tk *w,
                         uint8_t tk[DS_TK_LEN], ds_reason *why);

/* The customer's credential, sealed under the vault (aad DS_CRED_AAD uuid): {token, ca_pem} for a vault
 * key, the full URI (which may hold a pin-value) for a PKCS#11 or KMIP key. */
ok_err ds_cred_seal(ok_ds *ds, const char *uuid, const ok_ds_customer_key *key, uint8_t **blob, size_t *len);
/* A provider for the tenant's customer key from its sealed credential (uri: the row's, as shown).
 * OK_ERR_SEALED when sealed; on another failure *why names it (the key's holder unreachable, ...). */
ok_err ds_cust_open_sealed(ok_ds *ds, const char *uuid, const char *uri, const uint8_t *cred, size_t cred_len,
                           ok_provider **out, ds_reason *why);
/* For a vault key: looks the key up (a root call) and checks that it can serve: enabled, in its validity
 * window, RSA or oct, wrapKey and unwrapKey allowed; version (may be NULL) gets the version the key's URI
 * names now. A PKCS#11 or KMIP key has no lookup: OK, version "" (its unwrap is the check). */
ok_err ds_cust_verify_key(ok_ds *ds, ok_provider *prov, char version[65], ds_reason *why);
/* A new customer key: the URI parses, the token is there (vault keys), the key is usable
 * (ds_cust_verify_key) and a test wrap + unwrap of random bytes works. OK_ERR_KEY with a precise message
 * otherwise. */
ok_err ds_cust_validate(ok_ds *ds, const ok_ds_customer_key *key, ok_provider **out);

/* ---- hyok_keys.c: PKCS#11 and KMIP customer keys --------------------------------------------------------- */
typedef enum { DS_CUST_VAULT = 0, DS_CUST_PKCS11 = 1, DS_CUST_KMIP = 2 } ds_cust_kind;
/* By the URI's (or an EDK key id's) scheme: "pkcs11:", "kmip://", else a vault key. */
ds_cust_kind ds_cust_kind_of(const char *uri);
/* The EDK provider name for a stored key id. */
const char *ds_cust_provider_name(const char *key_id);
/* The URI as the tenant row stores and shows it: a PKCS#11 URI without pin-value. */
ok_err ds_cust_public_uri(const char *uri, char *out, size_t cap);
/* OK_ERR_KEY naming what a PKCS#11 (module-path, PIN) or KMIP (cert, key, ca) URI lacks. */
ok_err ds_hyok_check_uri(const char *uri);
/* Opens the provider for a full PKCS#11 or KMIP URI. */
ok_err ds_hyok_open(const char *uri, ok_provider **out);
/* Names a failed call (what: "wrap", "unwrap", "open") to the key `name` as a lock reason. */
void ds_hyok_classify(ds_cust_kind kind, ok_err rc, const char *what, const char *name, ds_reason *why);
/* The credential: encode the full URI; recognize and open an unsealed one (checked against public_uri). */
ok_err ds_hyok_cred_encode(const char *uri, ok_buf *b);
int ds_hyok_cred_is(const uint8_t *p, size_t n);
ok_err ds_hyok_cred_open(const uint8_t *p, size_t n, const char *public_uri, ok_provider **out);

/* ---- tenants.c ------------------------------------------------------------------------------------------ */
typedef struct {
    char name[OK_DS_TENANT_NAME_MAX + 1];
    char uuid[DS_UUID_LEN + 1];
    int64_t created;
    ok_ds_key_source source;
    int permanent;
    char *customer_uri;          /* NULL for service-managed */
    uint8_t *cred;               /* the sealed credential, or NULL */
    size_t cred_len;
    uint64_t generation;
} ds_tenant_row;

/* OK_ERR_NOT_FOUND ("tenant NAME not found") when there is no such tenant. */
ok_err ds_tenant_row_load(ok_ds *ds, const char *name, ds_tenant_row *out);
void ds_tenant_row_clear(ds_tenant_row *r);

/* ---- tenant_keys.c ------------------------------------------------------------------------------------ */
/* tenant_rewrap.c: stores a new tenant (row->name, uuid, created, source, permanent, customer_uri, cred) with
 * its first TK (generation 1, made here and wrapped under the root keys) in one transaction, and caches the
 * TK. prov (the validated customer key, or NULL) is taken. OK_ERR_CONFLICT when the name exists. */
ok_err ds_keys_create(ok_ds *ds, const ds_tenant_row *row, ok_provider *prov);
/* Re-wraps every live TK generation of the tenant under new root keys and stores them with the new
 * tenant settings in one transaction (set-key, remove-key). prov is taken (freed on failure). */
ok_err ds_keys_change_root(ok_ds *ds, const char *name, ok_ds_key_source source, int permanent,
                           const char *customer_uri, const uint8_t *cred, size_t cred_len, ok_provider *prov);
/* Drops everything cached for the tenant (it was deleted). */
void ds_keys_forget(ok_ds *ds, const char *name);
/* The tenant's lock state for its status; establishes it first (a refresh) when not known yet. */
void ds_keys_state(ok_ds *ds, const char *name, ok_ds_tenant_info *info);

/* Shared by tenant_keys.c, tenant_rewrap.c and tenant_lock.c. */
int64_t ds_mono_ms(void);
/* The entry's cached TKs: wipe all, find one, add or replace one (copied). The caller holds ds_keys.lock. */
void ds_slots_wipe(ds_tenant_entry *e);
ds_tk_slot *ds_slot_find(ds_tenant_entry *e, uint64_t generation);
ok_err ds_slot_put(ds_tenant_entry *e, uint64_t generation, const uint8_t tk[DS_TK_LEN]);
/* Writes one tenant_keys row: insert, or update (with old_version: only while the row still names that
 * customer key version). */
ok_err ds_wrapped_store(ok_ds *ds, const char *name, const ds_wrapped_tk *w, int insert, const char *old_version);
/* e->prov opened from the row's sealed credential for this seal epoch; the caller holds e->refresh_lock. */
ok_err ds_entry_provider(ok_ds *ds, ds_tenant_entry *e, const ds_tenant_row *row, uint64_t epoch, ds_reason *why);
/* The vault's seal epoch; when it changed, every cached TK and the SRK are wiped first. 0 = sealed. */
uint64_t ds_keys_epoch(ok_ds *ds);
/* The tenant's entry with a reference (created from its row if needed), or OK_ERR_NOT_FOUND. */
ok_err ds_entry_get(ok_ds *ds, const char *name, ds_tenant_entry **out);
void ds_entry_put(ok_ds *ds, ds_tenant_entry *e);
/* Unwraps every TK generation of the tenant through its root key(s) (following an unversioned customer
 * key to its newest version), caches them, and marks the tenant verified and active. On failure it locks
 * the tenant when the root key is to blame (OK_ERR_LOCKED, message naming the cause); OK_ERR_SEALED,
 * OK_ERR_NOT_FOUND and storage errors pass through. The caller holds e->refresh_lock. */
ok_err ds_entry_refresh(ok_ds *ds, ds_tenant_entry *e, uint64_t epoch);

/* ---- tenant_lock.c ----------------------------------------------------------------------------------------- */
/* Locks the tenant (wiping its TKs) or, when locked already, schedules the next probe with backoff. Logs
 * one line on a new lock. Takes ds_keys.lock. */
void ds_lock_tenant(ok_ds *ds, ds_tenant_entry *e, const ds_reason *why);
/* Marks a tenant active after a successful refresh (logs and counts an unlock); the caller holds
 * ds_keys.lock. */
void ds_mark_active_locked(ok_ds *ds, ds_tenant_entry *e);

#endif
