/* Internal to the vault: the ok_vault object shared by the vault's modules (seal, keys, access, audit,
 * rotation), and the few helpers they share. */
#ifndef OWNKEY_VAULT_INTERNAL_H
#define OWNKEY_VAULT_INTERNAL_H

#include <pthread.h>

#include "ownkey/vault.h"
#include "vault/store.h"

struct ok_vault {
    char *dir;
    ok_store *store;
    /* Held shared by every operation that needs the master key or a key derived from it, exclusively
     * by seal and unseal. */
    pthread_rwlock_t seal_lock;
    int sealed;
    ok_seal_kind kind;
    uint8_t *master_key;        /* 32 bytes of ok_secure_alloc memory while unsealed, else NULL */
    uint8_t *token_key;         /* HKDF(master, "ownkey token hmac"), 32 bytes, while unsealed */
    uint8_t *audit_key;         /* HKDF(master, "ownkey audit mac"), 32 bytes, while unsealed */
    pthread_mutex_t audit_lock; /* serializes appends to the audit log */
    int audit_fd;               /* DIR/audit.log, O_APPEND */
    uint8_t audit_prev_mac[32]; /* the last line's MAC (zeros for an empty log) */
    void *module_state;         /* for modules that need more (owned by seal.c) */
};

/* Wall-clock Unix seconds (a single place, so tests can reason about time). */
int64_t ok_vault_now(void);

#endif
