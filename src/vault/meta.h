/* Internal to the vault: the `meta` table, one row per vault-wide setting (schema version, seal kind and
 * parameters, the master-key check value, retention, purge protection). Values are INTEGER or BLOB. */
#ifndef OWNKEY_VAULT_META_H
#define OWNKEY_VAULT_META_H

#include "vault/store.h"

#define OK_VAULT_SCHEMA_VERSION 1

/* Row names. */
#define OK_META_SCHEMA_VERSION "schema_version"
#define OK_META_SEAL_KIND "seal_kind"
#define OK_META_CHECK "check"                /* HMAC(HKDF(master, "ownkey check"), "check") */
#define OK_META_RETENTION_DAYS "retention_days"
#define OK_META_PURGE_PROTECTION "purge_protection"
#define OK_META_SHAMIR_SHARES "shamir_shares"
#define OK_META_SHAMIR_THRESHOLD "shamir_threshold"
#define OK_META_SCRYPT_N "scrypt_n"
#define OK_META_SCRYPT_R "scrypt_r"
#define OK_META_SCRYPT_P "scrypt_p"
#define OK_META_SCRYPT_SALT "scrypt_salt"
#define OK_META_WRAPPED_MASTER "wrapped_master"  /* AES-256-KWP(scrypt(passphrase), master) */
/* OK_SEAL_PKCS11: the URI (no PIN), and the master key's EDK from the pkcs11 provider (blobs, text ones
 * without a NUL). */
#define OK_META_PKCS11_URI "pkcs11_uri"
#define OK_META_PKCS11_KEY_ID "pkcs11_key_id"
#define OK_META_PKCS11_KEY_VERSION "pkcs11_key_version"
#define OK_META_PKCS11_WRAP_ALG "pkcs11_wrap_alg"
#define OK_META_PKCS11_WRAPPED "pkcs11_wrapped_master"

ok_err ok_meta_schema(ok_store *s);
/* Insert or replace. */
ok_err ok_meta_put_int(ok_store *s, const char *name, int64_t value);
ok_err ok_meta_put_blob(ok_store *s, const char *name, const uint8_t *p, size_t len);
/* OK_ERR_NOT_FOUND if the row is missing, OK_ERR_FORMAT if it has the wrong type (or, for a blob, does
 * not have exactly `len` bytes). */
ok_err ok_meta_get_int(ok_store *s, const char *name, int64_t *out);
ok_err ok_meta_get_blob(ok_store *s, const char *name, uint8_t *out, size_t len);
/* A blob of 1..max bytes in new malloc'ed memory (NUL-terminated beyond *len, for text). */
ok_err ok_meta_get_blob_alloc(ok_store *s, const char *name, size_t max, uint8_t **out, size_t *len);

#endif
