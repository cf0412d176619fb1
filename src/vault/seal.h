/* Internal to the vault: the seal module (seal.c, seal_shamir.c) as vault.c and the key modules use it:
 * creating and loading the master key's protection, the unsealed/sealed state, and the shared read lock
 * every operation on key material takes. */
#ifndef OWNKEY_VAULT_SEAL_H
#define OWNKEY_VAULT_SEAL_H

#include "vault/vault_internal.h"

#define OK_SHAMIR_MAX_SHARES 255
#define OK_SCRYPT_SALT_LEN 16
#define OK_WRAPPED_MASTER_LEN (OK_MASTER_KEY_LEN + 8) /* AES-KWP of 32 bytes */

/* The seal module's state (v->module_state). The parameters mirror the meta rows; the held shares are
 * Shamir shares submitted while sealed. */
typedef struct {
    pthread_mutex_t lock;                   /* guards held_* */
    unsigned shares, threshold;             /* OK_SEAL_SHAMIR */
    uint8_t check[32];                      /* the master key's check value */
    int64_t scrypt_n, scrypt_r, scrypt_p;   /* OK_SEAL_PASSPHRASE */
    uint8_t salt[OK_SCRYPT_SALT_LEN];
    uint8_t wrapped[OK_WRAPPED_MASTER_LEN];
    uint8_t *held;                          /* secure: OK_SHAMIR_MAX_SHARES * 32 bytes, or NULL */
    uint8_t held_nrs[OK_SHAMIR_MAX_SHARES];
    unsigned held_count;
    /* OK_SEAL_PKCS11 (seal_pkcs11.c): the meta rows, and why the last automatic unseal failed */
    char *p11_uri, *p11_key_id, *p11_key_version, *p11_alg;
    uint8_t *p11_wrapped;
    size_t p11_wrapped_len;
    char p11_error[256];                    /* guarded by lock */
} ok_seal_state;

ok_err ok_seal_state_new(ok_vault *v);
/* Wipes every secret (master, derived keys, held shares) and frees the state. */
void ok_seal_state_free(ok_vault *v);

/* For a new vault, inside the caller's transaction: makes the master key, protects it as p says (writing
 * the seal rows of meta, and DIR/master.key for a dev vault), and leaves v unsealed. Shamir shares go to
 * out->shares. */
ok_err ok_seal_create(ok_vault *v, const ok_vault_init_params *p, ok_vault_init_result *out);
/* For an existing vault: reads the seal rows of meta; a dev vault unseals itself. */
ok_err ok_seal_load(ok_vault *v);

/* Takes ownership of a candidate master key (ok_secure_alloc memory, freed in every case): OK_ERR_AUTH if
 * its check value is wrong, else derives the working keys and unseals. OK_OK too if already unsealed. */
ok_err ok_seal_install(ok_vault *v, uint8_t *master);
/* HMAC(HKDF(master, "ownkey check"), "check"). */
ok_err ok_seal_check_value(const uint8_t *master, uint8_t out[32]);

/* seal_shamir.c: splits the master key into `n` share strings "N-<64 hex>", any k of which recombine. */
ok_err ok_shamir_split(const uint8_t *master, unsigned n, unsigned k, char ***shares);
/* Wipes the held shares (the caller holds st->lock). */
void ok_shamir_drop(ok_seal_state *st);

/* seal_pkcs11.c: the master key wrapped by a key in a PKCS#11 token. check_uri refuses what cannot be
 * stored (no "pkcs11:", pin-value). create wraps `master` through the token and writes the meta rows (in
 * the caller's transaction); load reads them; unseal asks the token to unwrap and installs the result,
 * remembering a failure's message for status; free_fields drops what load or create kept. */
ok_err ok_seal_pkcs11_check_uri(const char *uri);
ok_err ok_seal_pkcs11_create(ok_vault *v, const char *uri, const uint8_t *master);
ok_err ok_seal_pkcs11_load(ok_vault *v);
ok_err ok_seal_pkcs11_unseal(ok_vault *v);
void ok_seal_pkcs11_free_fields(ok_seal_state *st);

/* The shared seal lock, for every operation that needs a key derived from the master key: on OK_OK the
 * vault is unsealed and stays so until ok_seal_read_end; on OK_ERR_SEALED nothing is held. */
ok_err ok_seal_read_begin(ok_vault *v);
void ok_seal_read_end(ok_vault *v);

#endif
