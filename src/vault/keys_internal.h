/* Internal to the vault's key modules (keys.c: schema, names, attributes, rows; material.c: key material
 * at rest; key_cache.c: opened material; key_lifecycle.c, key_list.c, key_deletion.c, key_ops.c,
 * key_backup.c, rotation.c): what they share. Nothing else includes this. Every function here expects
 * the caller to hold the seal read lock when it touches key material (ok_seal_read_begin). */
#ifndef OWNKEY_VAULT_KEYS_INTERNAL_H
#define OWNKEY_VAULT_KEYS_INTERNAL_H

#include "vault/seal.h"

#define OK_KEYS_PAGE_DEFAULT 25  /* max = 0 */
#define OK_KEYS_PAGE_MAX 1000
#define OK_KEYOPS_ALL 0xffu

/* ---- names, versions, attributes (keys.c) ------------------------------------------------------------ */
/* OK_ERR_INVALID_ARG unless name matches ^[0-9a-zA-Z-]{1,127}$. */
ok_err ok_key_check_name(const char *name);
/* NULL or "" -> 0 (latest); 32 lowercase hex -> 1; anything else is OK_ERR_NOT_FOUND (no such version). */
ok_err ok_key_check_version(const char *name, const char *version, int *given);
ok_err ok_key_new_version(char out[OK_KEY_VERSION_LEN + 1]);
/* The ops a new key of this type gets without key_ops. */
unsigned ok_key_default_ops(ok_kty kty);
/* Validates what attrs would set (ops bits, times, tags). */
ok_err ok_key_check_attrs(const ok_key_attrs *a);
/* The import op marks a key exchange key (BYOK): only an RSA key may have it, and then no other op.
 * OK_ERR_INVALID_ARG otherwise. */
ok_err ok_key_check_ops_for(ok_kty kty, unsigned ops);
/* Tags <-> the JSON object text stored in key_versions.tags. */
ok_err ok_key_tags_to_json(const ok_tag *tags, size_t n, char **json);
ok_err ok_key_tags_from_json(const char *json, ok_tag **tags, size_t *n);
void ok_key_tags_free(ok_tag *tags, size_t n);

/* ---- rows ------------------------------------------------------------------------------------------- */
/* The columns every key query selects, in this order (v = key_versions, k = keys). */
#define OK_KEY_COLS                                                                                   \
    "v.name, v.version, v.kty, v.bits, v.curve, v.ops, v.enabled, v.nbf, v.exp, v.created, v.updated, " \
    "v.tags, v.public_der, k.deleted, k.scheduled_purge, k.recoverable_days, v.ordinal, v.hsm"
#define OK_KEY_NCOLS 18

/* One row -> an ok_key_info (and its ordinal). */
ok_err ok_key_row_to_info(const ok_val *cols, size_t n, ok_key_info *out, int64_t *ordinal);

typedef enum { OK_KEYS_LIVE = 0, OK_KEYS_DELETED = 1 } ok_key_state;
/* Loads a version (NULL/"" = latest) of a live or deleted key. OK_ERR_NOT_FOUND with a message otherwise. */
ok_err ok_key_load(ok_vault *v, ok_key_state state, const char *name, const char *version, ok_key_info *out);
/* Whether the name row exists and whether it is deleted; call inside a transaction when it matters. */
ok_err ok_key_name_state(ok_store *s, const char *name, int *exists, int *deleted);

/* ---- key material (material.c) ---------------------------------------------------------------------------
 * Plain material is one byte of kty then PKCS#8 (RSA, EC) or the raw key (oct); sealed material is
 * nonce(12) || AES-256-GCM(material_key, AAD "ownkey:key:<name>/<version>") || tag(16). */
typedef struct {
    ok_kty kty;
    unsigned bits;
    ok_curve curve;
    ok_pkey *pkey;     /* RSA/EC, private */
    uint8_t *k;        /* oct: secure memory */
    size_t k_len;
    int hsm;           /* held by the attached HSM: pkey is the public half (RSA/EC) or NULL (oct), k is NULL,
                          and hsm_version names the version the token object was made for */
    char hsm_version[OK_KEY_VERSION_LEN + 1];
} ok_key_material;

void ok_key_material_clear(ok_key_material *m);
/* Fresh material: RSA 2048/3072/4096, EC P-256/P-384, oct 128/192/256. */
ok_err ok_key_material_generate(ok_kty kty, unsigned bits, ok_curve curve, ok_key_material *out);
/* Material from an imported JWK (private parts required). */
ok_err ok_key_material_from_jwk(const ok_jwk *jwk, ok_key_material *out);
/* Material from plain bytes said to hold a key of type kty: PKCS#8 PrivateKeyInfo (RSA, EC) or the raw
 * key (oct: 16, 24 or 32 bytes). OK_ERR_INVALID_ARG, naming what the bytes hold, when they do not fit. */
ok_err ok_key_material_from_plain(ok_kty kty, const uint8_t *p, size_t len, ok_key_material *out);
/* Seals material for name/version: *blob malloc'ed. */
ok_err ok_key_material_seal(ok_vault *v, const char *name, const char *version, const ok_key_material *m,
                            uint8_t **blob, size_t *blob_len);
/* Opens a sealed blob (OK_ERR_AUTH if it was altered or belongs to another name/version, or does not hold
 * a key of type kty). */
ok_err ok_key_material_open(ok_vault *v, const char *name, const char *version, ok_kty kty, const uint8_t *blob,
                            size_t blob_len, ok_key_material *out);
/* Reads and opens the stored material of one version. */
ok_err ok_key_material_load(ok_vault *v, const char *name, const char *version, ok_kty kty, ok_key_material *out);

/* ---- HSM-backed keys (key_hsm.c) ----------------------------------------------------------------------------
 * The token object's label for a version: "ownkey:<name>/<version>" (also what key_versions.material holds). */
#define OK_HSM_LABEL_MAX (sizeof "ownkey:" + OK_KEY_NAME_MAX + 1 + OK_KEY_VERSION_LEN)
void ok_key_hsm_label(const char *name, const char *version, char label[OK_HSM_LABEL_MAX]);
/* Makes a new version's key in the HSM: out->hsm = 1, out->hsm_version set, out->pkey the public half.
 * OK_ERR_INVALID_ARG "this vault has no HSM; ..." without one. */
ok_err ok_key_hsm_generate(ok_vault *v, const char *name, ok_kty kty, unsigned bits, ok_curve curve,
                           ok_key_material *out);
/* BYOK into the HSM: the AES-KWP wrapped target (RSA PKCS#8 or an AES key) unwrapped under aes into a new
 * version's token object, checked (RSA 2048/3072/4096, oct 128/192/256; otherwise destroyed, 400); out
 * as for ok_key_hsm_generate. OK_ERR_AUTH when it does not open. EC and an HSM that cannot: 400. */
ok_err ok_key_hsm_unwrap_into(ok_vault *v, const char *name, ok_kty kty, const uint8_t *aes, size_t aes_len,
                              const uint8_t *wrapped, size_t wrapped_len, ok_key_material *out);
/* A private operation on an HSM-backed version (see ok_hsm_op); out->value is secure memory. */
ok_err ok_key_hsm_run(ok_vault *v, const char *name, const char *version, ok_kty kty, ok_hsm_op op, ok_sig_alg sig,
                      const uint8_t *in, size_t in_len, size_t out_cap, ok_key_op_result *out);
/* Destroys the token objects of name/version (purge, or a create whose row could not be stored). */
ok_err ok_key_hsm_destroy(ok_vault *v, const char *name, const char *version);
/* Counts name's HSM-backed versions; with destroy, destroys each one's token objects (purge). */
ok_err ok_key_hsm_scan(ok_vault *v, const char *name, int destroy, int64_t *count);

/* ---- the cache of opened material (key_cache.c) -------------------------------------------------------------
 * get: 1 and a copy the caller owns (clear it) on a hit, else 0. put copies m. forget drops a name's
 * entries (purge). */
int ok_key_cache_get(ok_vault *v, const char *name, const char *version, ok_key_material *out);
void ok_key_cache_put(ok_vault *v, const char *name, const char *version, const ok_key_material *m);
void ok_key_cache_forget(ok_vault *v, const char *name);

/* ---- adding versions (key_lifecycle.c) -------------------------------------------------------------------- */
/* Stores material as a new version of name (creating the name; OK_ERR_CONFLICT if it is soft-deleted) with
 * the attributes given (ops default per kty, enabled default 1), in one transaction; exp_default applies
 * when attrs set no exp. Fills out if non-NULL. */
ok_err ok_key_add_version(ok_vault *v, const char *name, const ok_key_material *m, const ok_key_attrs *attrs,
                          int64_t exp_default, ok_key_info *out);
/* The same for a BYOK import: in the same transaction, refuses a blob whose SHA-256 (blob_id) was used
 * before (OK_ERR_INVALID_ARG) and records it as used (byok.c's byok_used table), so that a blob imports
 * at most once even under concurrent requests. */
ok_err ok_key_add_version_once(ok_vault *v, const char *name, const ok_key_material *m, const ok_key_attrs *attrs,
                               const uint8_t blob_id[OK_SHA256_LEN], const char *kek_kid, ok_key_info *out);
/* Rotation without the seal lock juggling: the caller holds the read lock. */
ok_err ok_key_rotate_locked(ok_vault *v, const char *name, ok_key_info *out);

/* ---- BYOK transfer blobs (byok.c) ------------------------------------------------------------------------------
 * The parsed blob: which KEK (name, version or "" for latest), the OAEP hash its enc names, and the
 * ciphertext (malloc'ed). */
typedef struct {
    char kek_name[OK_KEY_NAME_MAX + 1];
    char kek_version[OK_KEY_VERSION_LEN + 1];
    ok_hash oaep_hash;
    uint8_t *ciphertext;
    size_t ciphertext_len;
} ok_byok_blob;

#define OK_BYOK_BLOB_MAX (64u * 1024u)
/* Parses the JSON of a transfer blob; OK_ERR_INVALID_ARG with a precise message when malformed. */
ok_err ok_byok_blob_parse(const uint8_t *json, size_t len, ok_byok_blob *out);
void ok_byok_blob_clear(ok_byok_blob *b);
/* Whether a blob (by its id) was used; for the early, friendly refusal before any decryption. */
ok_err ok_byok_check_unused(ok_store *s, const uint8_t blob_id[OK_SHA256_LEN]);
/* Inside add_version_once's transaction: refuse a used id, else record it. */
ok_err ok_byok_claim(ok_store *s, const uint8_t blob_id[OK_SHA256_LEN], const char *kek_kid, const char *name,
                     const char *version, int64_t now);

/* ---- rotation policies (rotation.c) -------------------------------------------------------------------------- */
/* expiry_time of name's policy, 0 if none. */
ok_err ok_rotation_expiry(ok_store *s, const char *name, int64_t *expiry_time);

#endif
