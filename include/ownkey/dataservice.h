/* ownkey data service (issue 4): tenants store objects encrypted at rest. Every object is an ordinary
 * ownkey envelope with its own data key (DEK); a tenant's DEKs are wrapped by its tenant key (TK); the TK
 * is wrapped by the service root key (SRK, sealed under the vault's master key), by a customer key in a
 * vault (reached over HTTPS with a credential the customer issued), or by both, layered. docs/DESIGN.md
 * ("Data service") has the hierarchy, the storage layout and the lock rules.
 *
 * This header is what the HTTP API and the daemon see. Callers authenticate and authorize requests
 * before calling here; nothing here knows about identities. All functions are thread-safe. */
#ifndef OWNKEY_DATASERVICE_H
#define OWNKEY_DATASERVICE_H

#include <stddef.h>
#include <stdint.h>

#include "ownkey/util.h"
#include "ownkey/vault.h"

#define OK_DS_TENANT_NAME_MAX 63        /* ^[0-9a-zA-Z-]{1,63}$ (a valid key name, so policies match it) */
#define OK_DS_OBJECT_NAME_MAX 1024      /* UTF-8 bytes, no NUL, no control characters, not "" */
#define OK_DS_CONTENT_TYPE_MAX 255
#define OK_DS_META_MAX 16               /* user metadata entries per object */
#define OK_DS_META_KEY_MAX 64           /* ^[0-9a-z-]{1,64}$ */
#define OK_DS_META_VALUE_MAX 1024       /* printable ASCII */
#define OK_DS_KEY_URI_MAX 512
#define OK_DS_REASON_MAX 512

typedef struct ok_ds ok_ds;

typedef struct {
    const char *dir;          /* the daemon's data directory: the service keeps DIR/data.db and DIR/objects/ */
    ok_vault *vault;          /* the local vault: seals the SRK and customer credentials under its master key */
    int64_t key_cache_ttl;    /* seconds an unwrapped TK is used before its root key is asked again; this is
                               * the lock bound. 0 = 3600. */
    unsigned probe_max_backoff; /* seconds between probes of a locked tenant at most; 0 = 60 */
} ok_ds_config;

/* Opens (creating if needed) the service's storage, removes what a crash left behind (temporary files,
 * files no row points to) and starts the background worker (TK refresh, lock probes, re-key jobs). */
ok_err ok_ds_open(const ok_ds_config *cfg, ok_ds **out);
/* Stops the worker, wipes every cached key, closes. NULL is fine. */
void ok_ds_close(ok_ds *ds);

/* ---- Tenants --------------------------------------------------------------------------------------- */
typedef enum { OK_DS_KEYS_SERVICE = 1, OK_DS_KEYS_CUSTOMER = 2, OK_DS_KEYS_DOUBLE = 3 } ok_ds_key_source;

/* A customer-managed key: its URI "https://HOST[:PORT]/keys/NAME[/VERSION]" (unversioned = always the
 * newest version), the bearer token the customer issued (get, wrapKey, unwrapKey on that key), and the
 * PEM of the CA to trust for that vault (NULL or "" = the system's CAs). Or a key the customer holds: a
 * PKCS#11 URI "pkcs11:token=…;object=…?module-path=…&pin-source=file:…" or a KMIP URI
 * "kmip://HOST:PORT/NAME?cert=…&key=…&ca=…", which carry their own credentials (token and ca_pem unset). */
typedef struct {
    const char *uri;
    const char *token;
    const char *ca_pem;
} ok_ds_customer_key;

typedef struct {
    const ok_ds_customer_key *customer; /* NULL = service-managed */
    int double_encryption;              /* with customer: TK wrapped by the SRK and then the customer key */
    int permanent;                      /* with customer: the customer key can never be removed later */
} ok_ds_tenant_settings;

typedef enum { OK_DS_ACTIVE = 1, OK_DS_LOCKED = 2 } ok_ds_state;

typedef enum { OK_DS_REKEY_NONE = 0, OK_DS_REKEY_RUNNING = 1, OK_DS_REKEY_DONE = 2, OK_DS_REKEY_FAILED = 3 } ok_ds_rekey_state;

typedef struct {
    char name[OK_DS_TENANT_NAME_MAX + 1];
    int64_t created;                           /* unix seconds */
    ok_ds_key_source source;
    int permanent;
    char customer_uri[OK_DS_KEY_URI_MAX + 1];  /* as configured ("" for service-managed) */
    char customer_kid[OK_DS_KEY_URI_MAX + 1];  /* the versioned key id that wraps the TK now ("" if none) */
    uint64_t tk_generation;                    /* bumps with every re-key */
    ok_ds_state state;
    char reason_code[64];                      /* locked: "KeyDisabled", "KeyNotFound", "Forbidden",
                                                * "KeyExpired", "VaultUnreachable", "VaultSealed",
                                                * "KeyUnreachable" (token, KMIP server), ... */
    char reason[OK_DS_REASON_MAX + 1];         /* locked: a sentence naming the cause; "" when active */
    int64_t since;                             /* unix seconds: when the current state began */
    uint64_t objects;
    uint64_t bytes;                            /* plaintext bytes */
    ok_ds_rekey_state rekey_state;
    int rekey_reencrypt;
    uint64_t rekey_done, rekey_total;
} ok_ds_tenant_info;

/* Creates a tenant. With a customer key, validates it first (the key exists, is enabled, is RSA or oct,
 * allows wrapKey and unwrapKey, and a test wrap + unwrap works) and refuses with OK_ERR_KEY and a precise
 * message otherwise. OK_ERR_CONFLICT when the name exists. */
ok_err ok_ds_tenant_create(ok_ds *ds, const char *name, const ok_ds_tenant_settings *s, ok_ds_tenant_info *out);
ok_err ok_ds_tenant_get(ok_ds *ds, const char *name, ok_ds_tenant_info *out);
/* Names of all tenants, sorted; free with ok_ds_names_free. */
ok_err ok_ds_tenant_list(ok_ds *ds, char ***names, size_t *count);
void ok_ds_names_free(char **names, size_t count);
/* Enables or replaces the customer key (s->customer required), validating it as create does; re-wraps the
 * TK only (O(1) in objects). A tenant that is `permanent` may change keys but never drop one. */
ok_err ok_ds_tenant_set_key(ok_ds *ds, const char *name, const ok_ds_tenant_settings *s, ok_ds_tenant_info *out);
/* Falls back to the service key. OK_ERR_CONFLICT for a permanent tenant; the tenant must be active. */
ok_err ok_ds_tenant_remove_key(ok_ds *ds, const char *name, ok_ds_tenant_info *out);
/* Crypto-erases the tenant: its TK wraps, DEK wraps and rows go (secure_delete, WAL checkpointed), then
 * its files. Works on a locked tenant too. */
ok_err ok_ds_tenant_delete(ok_ds *ds, const char *name);
/* Starts a re-key (new TK; every DEK re-wrapped, or with reencrypt every object re-encrypted under a new
 * DEK) that runs in the background and survives restarts. OK_ERR_CONFLICT while one runs. */
ok_err ok_ds_rekey_start(ok_ds *ds, const char *name, int reencrypt, ok_ds_tenant_info *out);

/* ---- Objects ------------------------------------------------------------------------------------ */
typedef struct {
    char key[OK_DS_META_KEY_MAX + 1];
    char value[OK_DS_META_VALUE_MAX + 1];
} ok_ds_meta;

typedef struct {
    char name[OK_DS_OBJECT_NAME_MAX + 1];
    uint64_t size;                             /* plaintext bytes */
    int64_t modified;                          /* unix seconds */
    char etag[33];                             /* 32 hex: unique per stored version */
    char content_type[OK_DS_CONTENT_TYPE_MAX + 1];
    size_t meta_count;
    ok_ds_meta meta[OK_DS_META_MAX];
} ok_ds_object_info;

/* 1 if the names are acceptable (tenant: a key name of at most 63 characters). */
int ok_ds_tenant_name_valid(const char *name);
int ok_ds_object_name_valid(const char *name);

/* A put in progress: the plaintext is sealed frame by frame into a temporary file as it arrives, in
 * constant memory. Nothing is visible until commit, which makes the object durable (file and directory
 * fsync'ed, row committed) and atomically replaces any previous version. */
typedef struct ok_ds_put ok_ds_put;
/* expected_size: the announced length (UINT64_MAX when unknown): commit fails with OK_ERR_TRUNCATED when
 * fewer bytes came, write with OK_ERR_LIMIT when more. content_type may be NULL (application/octet-stream). */
ok_err ok_ds_put_begin(ok_ds *ds, const char *tenant, const char *object, const char *content_type,
                       const ok_ds_meta *meta, size_t meta_count, uint64_t expected_size, ok_ds_put **out);
ok_err ok_ds_put_write(ok_ds_put *p, const uint8_t *data, size_t len);
/* On success the object is durable and *out (may be NULL) describes it; p is freed either way. */
ok_err ok_ds_put_commit(ok_ds_put *p, ok_ds_object_info *out);
/* Drops a put (removes its temporary file); p is freed. NULL is fine. */
void ok_ds_put_abort(ok_ds_put *p);

/* A get: the version of the object current at open, readable at any offset; only the frames that hold the
 * requested bytes are read and decrypted, and only verified plaintext is returned. */
typedef struct ok_ds_get ok_ds_get;
ok_err ok_ds_get_open(ok_ds *ds, const char *tenant, const char *object, ok_ds_object_info *info, ok_ds_get **out);
/* Reads up to len bytes at offset; *got = 0 only at or past the end. */
ok_err ok_ds_get_read(ok_ds_get *g, uint64_t offset, uint8_t *buf, size_t len, size_t *got);
void ok_ds_get_close(ok_ds_get *g);

ok_err ok_ds_object_head(ok_ds *ds, const char *tenant, const char *object, ok_ds_object_info *out);
ok_err ok_ds_object_delete(ok_ds *ds, const char *tenant, const char *object);

typedef struct {
    ok_ds_object_info *items;
    size_t count;
    char *next_marker;                         /* NULL on the last page */
} ok_ds_object_page;
/* Objects whose name starts with prefix (NULL = all), after marker (exclusive, NULL = from the start),
 * in byte order, at most max (1..1000). */
ok_err ok_ds_object_list(ok_ds *ds, const char *tenant, const char *prefix, const char *marker, size_t max,
                         ok_ds_object_page *out);
void ok_ds_object_page_clear(ok_ds_object_page *p);

/* ---- Status ------------------------------------------------------------------------------------- */
/* Prometheus lines: tenants by state, locks and unlocks so far, root-key calls made (wrap, unwrap, get). */
void ok_ds_metrics(ok_ds *ds, ok_buf *out);
/* Root-key calls made so far (every wrap, unwrap or key lookup sent to a vault or the SRK): for tests
 * and bench/dataservice ("vault calls per 1000 gets"). */
uint64_t ok_ds_root_calls(ok_ds *ds);

#endif
