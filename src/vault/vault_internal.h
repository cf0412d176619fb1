/* Internal to the vault: the ok_vault object shared by the vault's modules (seal, keys, access, audit,
 * rotation), and the few helpers they share. */
#ifndef OWNKEY_VAULT_INTERNAL_H
#define OWNKEY_VAULT_INTERNAL_H

#include <pthread.h>

#include "ownkey/vault.h"
#include "vault/store.h"

struct ok_vault {
    char *dir;
    int dir_lock_fd;            /* flock on DIR while open (vault.c) */
    ok_store *store;
    /* Held shared by every operation that needs the master key or a key derived from it, exclusively
     * by seal and unseal. */
    pthread_rwlock_t seal_lock;
    int sealed;
    uint64_t unseal_count;      /* bumped by every unseal, under the exclusive seal lock (the seal epoch) */
    ok_seal_kind kind;
    uint8_t *master_key;        /* 32 bytes of ok_secure_alloc memory while unsealed, else NULL */
    uint8_t *token_key;         /* HKDF(master, "ownkey token hmac"), 32 bytes, while unsealed */
    uint8_t *audit_key;         /* HKDF(master, "ownkey audit mac"), 32 bytes, while unsealed */
    uint8_t *material_key;      /* HKDF(master, "ownkey key material"), 32 bytes, while unsealed (keys.c) */
    uint8_t *backup_key;        /* HKDF(master, "ownkey backup"), 32 bytes, while unsealed (key_backup.c) */
    pthread_mutex_t audit_lock; /* serializes appends to the audit log */
    int audit_fd;               /* DIR/audit.log, O_APPEND */
    uint8_t audit_prev_mac[32]; /* chain head: the last MAC, or a hash over trailing sealed lines */
    struct ok_audit_sync *audit_sync; /* group commit of audit lines (audit_sync.c), while the log is open */
    void *module_state;         /* for modules that need more (owned by seal.c) */
    struct ok_key_cache *key_cache; /* unsealed key material of recent operations (key_cache.c) */
    ok_vault_hsm *hsm;          /* the token holding HSM-backed keys, or NULL (key_hsm.c; closed by ok_vault_close) */
};

/* HKDF-SHA256 info labels of the keys derived from the master key (no salt; 32 bytes each). */
#define OK_LABEL_TOKEN "ownkey token hmac"
#define OK_LABEL_AUDIT "ownkey audit mac"
#define OK_LABEL_MATERIAL "ownkey key material"
#define OK_LABEL_BACKUP "ownkey backup"
#define OK_LABEL_CHECK "ownkey check"
#define OK_MASTER_KEY_LEN 32

/* Wall-clock Unix seconds (a single place, so tests can reason about time). */
int64_t ok_vault_now(void);

#endif
