/* ownkey vault layer: the key vault's model and rules, independent of any transport. A vault lives in a
 * data directory: sealed storage (key material encrypted under a master key), keys with versions and
 * lifecycle, cryptographic operations, identities with tokens and access policies, rotation policies,
 * and a tamper-evident audit log. The HTTP layer maps the Azure Key Vault API onto these calls; nothing
 * here knows about HTTP or JSON request shapes. All functions are thread-safe on one ok_vault. */
#ifndef OWNKEY_VAULT_H
#define OWNKEY_VAULT_H

#include <stddef.h>
#include <stdint.h>

#include "ownkey/crypto.h"
#include "ownkey/util.h"

typedef struct ok_vault ok_vault;

/* ---- Creating, opening, sealing ------------------------------------------------------------------
 * init creates DIR (mode 0700) with the store (DIR/vault.db), a random 256-bit master key protected as
 * chosen, and the first identity "admin" holding the admin permission on every key ("*") and every key
 * permission, whose token is returned once. */
typedef enum { OK_SEAL_DEV = 1, OK_SEAL_SHAMIR = 2, OK_SEAL_PASSPHRASE = 3, OK_SEAL_PKCS11 = 4 } ok_seal_kind;

typedef struct {
    ok_seal_kind kind;
    unsigned shares, threshold;      /* OK_SEAL_SHAMIR: 2 <= threshold <= shares <= 255 */
    const uint8_t *passphrase;       /* OK_SEAL_PASSPHRASE: at least 8 bytes */
    size_t passphrase_len;
    const char *pkcs11_uri;          /* OK_SEAL_PKCS11: "pkcs11:token=…;object=…?module-path=…&pin-source=file:…"
                                        (pin-value refused: the URI is stored in the vault) */
    unsigned retention_days;         /* soft-delete retention, 7..90; 0 = 90 */
    int purge_protection;            /* on from the start (it can be turned on later, never off) */
} ok_vault_init_params;

typedef struct {
    char *admin_token;               /* printed once by `ownkeyd init` */
    char **shares;                   /* OK_SEAL_SHAMIR: `shares` printable share strings */
    size_t share_count;
} ok_vault_init_result;

ok_err ok_vault_init(const char *dir, const ok_vault_init_params *p, ok_vault_init_result *out);
void ok_vault_init_result_clear(ok_vault_init_result *r);

/* HSM auto-unseal (OK_SEAL_PKCS11): the master key is wrapped by a key inside a PKCS#11 token. The vault
 * layer does not link the providers, so the program wires them in once, before init or open: `open` is
 * ok_pkcs11_provider_open (include/ownkey/provider.h). Process-wide; without it a PKCS#11 vault stays
 * sealed with "no PKCS#11 support in this program". */
struct ok_provider;
typedef ok_err (*ok_vault_hsm_open_fn)(const char *uri, struct ok_provider **out);
void ok_vault_set_hsm_opener(ok_vault_hsm_open_fn open);

/* Opens an existing vault. A dev vault unseals itself, and so does a PKCS#11 vault while its token is
 * present (else it opens sealed, and status says why); others start sealed. */
ok_err ok_vault_open(const char *dir, ok_vault **out);
void ok_vault_close(ok_vault *v);

typedef struct {
    int sealed;
    ok_seal_kind kind;
    unsigned threshold;              /* shamir: shares needed */
    unsigned shares_submitted;       /* shamir: shares held so far while sealed */
    int purge_protection;
    unsigned retention_days;
    uint64_t keys;                   /* live (not deleted) key names */
    char seal_error[256];            /* pkcs11, while sealed: why the last automatic unseal failed ("" if none) */
    char hsm_key[256];               /* pkcs11: the token key's id (URI without PIN or module path) */
} ok_vault_status;

void ok_vault_get_status(ok_vault *v, ok_vault_status *st);
/* Submits one share; unseals when `threshold` distinct valid shares are held. A wrong set of shares is
 * OK_ERR_AUTH (and the held shares are dropped). OK_OK both for "accepted, need more" and "unsealed". */
ok_err ok_vault_unseal_share(ok_vault *v, const char *share);
ok_err ok_vault_unseal_passphrase(ok_vault *v, const uint8_t *passphrase, size_t len);
/* Unseals a vault that needs no operator (dev: reads DIR/master.key again after ok_vault_seal; pkcs11: the
 * token unwraps the master key; token absent OK_ERR_IO, PIN refused OK_ERR_FORBIDDEN, each remembered for
 * status). OK_OK if already unsealed. OK_ERR_INVALID_ARG for Shamir and passphrase vaults. */
ok_err ok_vault_unseal_auto(ok_vault *v);
/* Wipes the master key and every cached secret from memory. */
ok_err ok_vault_seal(ok_vault *v);
/* Turns purge protection on for good. */
ok_err ok_vault_enable_purge_protection(ok_vault *v);

/* ---- Keys ----------------------------------------------------------------------------------------- */
#define OK_KEY_NAME_MAX 127          /* names match ^[0-9a-zA-Z-]{1,127}$ */
#define OK_KEY_VERSION_LEN 32        /* 32 lowercase hex characters */
#define OK_KEY_MAX_TAGS 15
#define OK_KEY_TAG_MAX 256

typedef enum { OK_KTY_RSA = 1, OK_KTY_EC = 2, OK_KTY_OCT = 3 } ok_kty;

/* key_ops bits */
enum {
    OK_KEYOP_ENCRYPT = 1u << 0,
    OK_KEYOP_DECRYPT = 1u << 1,
    OK_KEYOP_SIGN = 1u << 2,
    OK_KEYOP_VERIFY = 1u << 3,
    OK_KEYOP_WRAP = 1u << 4,
    OK_KEYOP_UNWRAP = 1u << 5,
    OK_KEYOP_IMPORT = 1u << 6,
    OK_KEYOP_EXPORT = 1u << 7,
};
/* "encrypt", "wrapKey", ... <-> bits; parse returns OK_ERR_INVALID_ARG for an unknown name. */
ok_err ok_keyop_parse(const char *name, unsigned *bit);
const char *ok_keyop_name(unsigned bit);

typedef struct {
    char *name;
    char *value;
} ok_tag;

/* One key version as the API shows it: never private material. */
typedef struct {
    char name[OK_KEY_NAME_MAX + 1];
    char version[OK_KEY_VERSION_LEN + 1];
    ok_kty kty;
    int hsm;                         /* 1 when the attached HSM holds the key (RSA-HSM, EC-HSM, oct-HSM) */
    unsigned bits;                   /* RSA modulus bits, oct key bits, EC field bits */
    ok_curve curve;                  /* EC only */
    unsigned ops;                    /* OK_KEYOP_* */
    int enabled;
    int64_t nbf, exp;                /* Unix seconds; 0 = unset */
    int64_t created, updated;
    ok_tag *tags;
    size_t tag_count;
    ok_pkey *public_key;             /* RSA/EC public half; NULL for oct */
    unsigned recoverable_days;
    int64_t deleted, scheduled_purge; /* deleted keys only; 0 otherwise */
} ok_key_info;

void ok_key_info_clear(ok_key_info *k);

/* Attributes set by create, import and update; only the has_* members are applied. */
typedef struct {
    int has_enabled, enabled;
    int has_nbf;
    int64_t nbf;                     /* 0 clears */
    int has_exp;
    int64_t exp;                     /* 0 clears */
    int has_ops;
    unsigned ops;
    int has_tags;
    const ok_tag *tags;
    size_t tag_count;
} ok_key_attrs;

typedef struct {
    ok_kty kty;
    unsigned bits;                   /* RSA 2048/3072/4096 (0 = 2048); oct 128/192/256 (0 = 256) */
    ok_curve curve;                  /* EC: P-256 (default) or P-384 */
    int hsm;                         /* make it in the attached HSM (RSA-HSM, EC-HSM, oct-HSM) */
    ok_key_attrs attrs;              /* without ops: RSA all six RSA ops, EC sign/verify, oct
                                        encrypt/decrypt/wrapKey/unwrapKey */
} ok_key_spec;

/* HSM-backed keys (docs/DESIGN.md "HSM-backed keys"): keys of type RSA-HSM, EC-HSM and oct-HSM are made and
 * used inside a PKCS#11 token; the vault stores only a reference (the token object's label
 * "ownkey:<name>/<version>"). The vault does not link the providers: the program opens the token with the
 * pkcs11 provider (ok_pkcs11_hsm_open, src/providers/pkcs11_hsm.h) and attaches it to the open vault. Every
 * call is given the object's label and the key's type; the token's objects are CKA_TOKEN, CKA_SENSITIVE and
 * not CKA_EXTRACTABLE. Private operations only: public ones (RSA encrypt/wrap, verify) run in OpenSSL on the
 * public key the vault stores. */
typedef enum {
    OK_HSM_RSA_OAEP_DECRYPT = 1,     /* RSA-OAEP: SHA-1, MGF1-SHA-1 */
    OK_HSM_RSA_PKCS1_DECRYPT,        /* RSA1_5 */
    OK_HSM_SIGN_DIGEST,              /* sig: RS*, PS* (salt = hash length), ES* (raw r||s) over a digest */
    OK_HSM_AES_KW_WRAP,              /* RFC 3394 of in (a multiple of 8 bytes, at least 16) */
    OK_HSM_AES_KW_UNWRAP,
} ok_hsm_op;

typedef struct ok_vault_hsm ok_vault_hsm;
typedef struct {
    size_t size; /* sizeof (ok_vault_hsm_vtable) */
    /* Makes the key (RSA: bits 2048/3072/4096; EC: curve; oct: bits 128/192/256). RSA/EC: *pub gets the
     * public key; oct: *pub = NULL. */
    ok_err (*generate)(ok_vault_hsm *h, const char *label, ok_kty kty, unsigned bits, ok_curve curve,
                       ok_pkey **pub);
    /* One operation; out holds *out_len bytes on entry, the result's length on return. A failed decrypt or
     * unwrap is OK_ERR_AUTH. */
    ok_err (*run)(ok_vault_hsm *h, const char *label, ok_kty kty, ok_hsm_op op, ok_sig_alg sig, const uint8_t *in,
                  size_t in_len, uint8_t *out, size_t *out_len);
    /* Destroys every object with this label (OK_OK if there is none). */
    ok_err (*destroy_key)(ok_vault_hsm *h, const char *label);
    void (*close)(ok_vault_hsm *h);
    /* BYOK into the token (may be NULL: not supported): makes the token object label (private, sensitive,
     * not extractable) by C_UnwrapKey of wrapped, the AES-KWP (RFC 5649) of the target under aes (16, 24 or
     * 32 bytes, a session object in the token only while this runs). kty RSA: wrapped holds PKCS#8, the
     * object is a private key, *pub its public half; oct: the raw key, an AES key, *pub = NULL. *bits: the
     * modulus or key bits. A wrapped key that does not open, or holds no kty key, is OK_ERR_AUTH. */
    ok_err (*unwrap_into)(ok_vault_hsm *h, const char *label, ok_kty kty, const uint8_t *aes, size_t aes_len,
                          const uint8_t *wrapped, size_t wrapped_len, ok_pkey **pub, unsigned *bits);
} ok_vault_hsm_vtable;
struct ok_vault_hsm {
    const ok_vault_hsm_vtable *vt;
};
/* The vault owns h from then on (closes it in ok_vault_close, or now if attaching fails). Once, before the
 * vault serves requests. Without it, -HSM creates are OK_ERR_INVALID_ARG and operations on HSM keys
 * OK_ERR_UNSUPPORTED. */
ok_err ok_vault_attach_hsm(ok_vault *v, ok_vault_hsm *h);
int ok_vault_has_hsm(ok_vault *v);

/* Create and import add a new version (the name is created on first use). A soft-deleted name is
 * OK_ERR_CONFLICT. */
ok_err ok_vault_key_create(ok_vault *v, const char *name, const ok_key_spec *spec, ok_key_info *out);
ok_err ok_vault_key_import(ok_vault *v, const char *name, const ok_jwk *key, const ok_key_attrs *attrs,
                           ok_key_info *out);
/* BYOK import (byok.c; docs/BYOK.md). A key exchange key (KEK) is an RSA key created with key_ops exactly
 * OK_KEYOP_IMPORT: it performs no other operation, the import op can be neither added to nor removed from a
 * key after creation, and no key with it can be imported. A transfer blob is Azure Key Vault's .byok JSON:
 *   {"schema_version":"1.0.0","header":{"kid":"<KEK kid>","alg":"dir","enc":"CKM_RSA_AES_KEY_WRAP"},
 *    "ciphertext":"<base64url>","generator":"<informational>"}
 * where ciphertext = RSA-OAEP (SHA-1, MGF1-SHA-1) under the KEK of an ephemeral AES key (16, 24 or 32
 * bytes), followed by AES-KWP (RFC 5649) under that AES key of the target: PKCS#8 (RSA, EC) or the raw key
 * (oct). enc RSA_AES_KEY_WRAP_256/384 (OAEP with SHA-256/384) are accepted as an extension. Only the path of
 * the kid counts (/keys/NAME[/VERSION]; no version = latest). The target must be of type kty (and curve,
 * when not 0); it is stored as an ordinary software key. A blob imports once only: the SHA-256 of its
 * ciphertext is recorded in the same transaction as the new version, and kept for good. A malformed,
 * altered or replayed blob, one made for another key, a kid naming no KEK, or material that does not fit
 * kty is OK_ERR_INVALID_ARG, with nothing stored; a disabled KEK or one outside [nbf, exp) OK_ERR_FORBIDDEN. */
ok_err ok_vault_key_import_byok(ok_vault *v, const char *name, ok_kty kty, ok_curve curve, const uint8_t *blob,
                                size_t blob_len, const ok_key_attrs *attrs, ok_key_info *out);
/* The same with the request's -HSM: hsm 1 asks for the target in the attached HSM. With an RSA-HSM KEK (an
 * RSA KEK made in the token) the ephemeral AES key is opened in the token, and with hsm the target is
 * unwrapped into it (RSA-HSM or oct-HSM; the version has hsm = 1); without hsm it becomes a software key.
 * With a software KEK, or without an HSM, hsm is ignored and the key is a software one, reported without
 * -HSM. EC-HSM, or hsm under an RSA-HSM KEK when the HSM cannot unwrap into itself, is OK_ERR_INVALID_ARG. */
ok_err ok_vault_key_import_byok_ex(ok_vault *v, const char *name, ok_kty kty, int hsm, ok_curve curve,
                                   const uint8_t *blob, size_t blob_len, const ok_key_attrs *attrs, ok_key_info *out);
/* version NULL or "" = the latest version. */
ok_err ok_vault_key_get(ok_vault *v, const char *name, const char *version, ok_key_info *out);
ok_err ok_vault_key_update(ok_vault *v, const char *name, const char *version, const ok_key_attrs *attrs,
                           ok_key_info *out);
/* A new version with the same type, size, ops and tags as the latest. */
ok_err ok_vault_key_rotate(ok_vault *v, const char *name, ok_key_info *out);

/* Pages are ordered by name (keys) or creation (versions). `after` is the opaque continuation returned
 * as `next` by the previous page (NULL for the first page); next is NULL on the last page. A malformed
 * continuation is OK_ERR_INVALID_ARG. max: 0 = 25, at most 1000 (else OK_ERR_INVALID_ARG). */
typedef struct {
    ok_key_info *items;
    size_t count;
    char *next;
} ok_key_page;

void ok_key_page_clear(ok_key_page *p);
ok_err ok_vault_key_list(ok_vault *v, const char *after, size_t max, ok_key_page *out);     /* latest of each live key */
ok_err ok_vault_key_versions(ok_vault *v, const char *name, const char *after, size_t max, ok_key_page *out);

/* Soft delete: the key keeps its versions for recoverable_days; out describes the deleted key. */
ok_err ok_vault_key_delete(ok_vault *v, const char *name, ok_key_info *out);
ok_err ok_vault_deleted_get(ok_vault *v, const char *name, ok_key_info *out);
ok_err ok_vault_deleted_list(ok_vault *v, const char *after, size_t max, ok_key_page *out);
ok_err ok_vault_deleted_recover(ok_vault *v, const char *name, ok_key_info *out);
/* With purge protection on, OK_ERR_FORBIDDEN until scheduled_purge has passed. Key material is erased
 * (secure_delete) before this returns; HSM-backed versions' token objects are destroyed first (without an
 * attached HSM such a key is not purged: OK_ERR_UNSUPPORTED). */
ok_err ok_vault_deleted_purge(ok_vault *v, const char *name);

/* An opaque blob of every version, sealed under the master key; restorable only into a vault with the
 * same master key, and only when the name is free (else OK_ERR_CONFLICT). */
/* A key with an HSM-backed version is refused (OK_ERR_INVALID_ARG "HSM-backed keys cannot be backed up"). */
ok_err ok_vault_key_backup(ok_vault *v, const char *name, uint8_t **blob, size_t *len);
ok_err ok_vault_key_restore(ok_vault *v, const uint8_t *blob, size_t len, ok_key_info *out);

ok_err ok_vault_random(ok_vault *v, uint8_t *out, size_t len); /* 1..128 bytes */

/* ---- Cryptographic operations --------------------------------------------------------------------
 * Algorithms by key type (Azure names): RSA: RSA-OAEP, RSA-OAEP-256, RSA1_5 (encrypt/decrypt/wrapKey/
 * unwrapKey), RS256/384/512, PS256/384/512 (sign/verify over a digest); EC: ES256 (P-256), ES384
 * (P-384); oct: A128KW/A192KW/A256KW (wrap/unwrap, width must match the key), A128GCM/A192GCM/A256GCM
 * (encrypt/decrypt; the vault picks a 12-byte IV). An algorithm that does not fit the key is
 * OK_ERR_INVALID_ARG; a disabled key, an op not in key_ops, or (for encrypt, wrapKey, sign) a time
 * outside [nbf, exp) is OK_ERR_FORBIDDEN; a failed decrypt/unwrap is OK_ERR_AUTH (uniform). */
typedef enum {
    OK_KOP_ENCRYPT = 1, OK_KOP_DECRYPT, OK_KOP_WRAP, OK_KOP_UNWRAP, OK_KOP_SIGN, OK_KOP_VERIFY,
} ok_key_op;

typedef struct {
    ok_key_op op;
    const char *alg;
    const uint8_t *value;            /* plaintext, ciphertext, key, wrapped key, digest (sign), signature (verify) */
    size_t value_len;
    const uint8_t *digest;           /* verify only */
    size_t digest_len;
    const uint8_t *iv, *aad, *tag;   /* GCM decrypt needs iv and tag; aad optional on both sides */
    size_t iv_len, aad_len, tag_len;
} ok_key_op_request;

typedef struct {
    char version[OK_KEY_VERSION_LEN + 1]; /* the version that did the work */
    uint8_t *value;                  /* result bytes (secure memory for decrypt/unwrap) */
    size_t value_len;
    uint8_t iv[OK_GCM_IV_LEN];       /* GCM encrypt */
    size_t iv_len;
    uint8_t tag[OK_GCM_TAG_LEN];
    size_t tag_len;
    int verified;                    /* verify */
} ok_key_op_result;

ok_err ok_vault_key_op(ok_vault *v, const char *name, const char *version, const ok_key_op_request *req,
                       ok_key_op_result *out);
void ok_key_op_result_clear(ok_key_op_result *r);

/* ---- Rotation policies ----------------------------------------------------------------------------- */
typedef enum { OK_ROTATION_ROTATE = 1, OK_ROTATION_NOTIFY = 2 } ok_rotation_action;

typedef struct {
    ok_rotation_action action;
    int64_t after_create;            /* seconds after the latest version's creation; 0 = unused */
    int64_t before_expiry;           /* seconds before the latest version's exp; 0 = unused */
} ok_lifetime_action;

#define OK_ROTATION_MAX_ACTIONS 8
typedef struct {
    ok_lifetime_action actions[OK_ROTATION_MAX_ACTIONS];
    size_t count;
    int64_t expiry_time;             /* seconds; new versions get exp = created + expiry_time; 0 = none */
    int64_t created, updated;        /* 0 when no policy was ever set */
} ok_rotation_policy;

ok_err ok_vault_rotation_policy_get(ok_vault *v, const char *name, ok_rotation_policy *out);
ok_err ok_vault_rotation_policy_set(ok_vault *v, const char *name, const ok_rotation_policy *p,
                                    ok_rotation_policy *out);
/* Applies every due lifetime action as of `now`: rotates keys (audited as operation "rotate" by identity
 * "scheduler") and records notifications. The daemon calls it periodically. */
ok_err ok_vault_rotation_tick(ok_vault *v, int64_t now, unsigned *rotated, unsigned *notified);

/* ---- Identities, tokens, policies ------------------------------------------------------------------
 * Tokens are random (256 bits), shown once, stored only as HMAC-SHA256 under a key derived from the
 * master key, compared in constant time; they can expire and be revoked. A sealed vault authenticates
 * no one (OK_ERR_SEALED). */
enum {
    OK_PERM_GET = 1u << 0, OK_PERM_LIST = 1u << 1, OK_PERM_CREATE = 1u << 2, OK_PERM_UPDATE = 1u << 3,
    OK_PERM_IMPORT = 1u << 4, OK_PERM_DELETE = 1u << 5, OK_PERM_RECOVER = 1u << 6, OK_PERM_PURGE = 1u << 7,
    OK_PERM_BACKUP = 1u << 8, OK_PERM_RESTORE = 1u << 9, OK_PERM_ROTATE = 1u << 10,
    OK_PERM_GETROTATIONPOLICY = 1u << 11, OK_PERM_SETROTATIONPOLICY = 1u << 12, OK_PERM_ENCRYPT = 1u << 13,
    OK_PERM_DECRYPT = 1u << 14, OK_PERM_WRAPKEY = 1u << 15, OK_PERM_UNWRAPKEY = 1u << 16,
    OK_PERM_SIGN = 1u << 17, OK_PERM_VERIFY = 1u << 18, OK_PERM_ADMIN = 1u << 19,
    /* The data service's permissions on a tenant (the policy pattern matches tenant names): read
     * objects (get, head, list, tenant status); write objects (put, delete); administer the tenant
     * (create, keys, re-key, delete). */
    OK_PERM_DATA_READ = 1u << 20, OK_PERM_DATA_WRITE = 1u << 21, OK_PERM_DATA_ADMIN = 1u << 22,
    OK_PERM_ALL = (1u << 23) - 1,
};
/* "get", "wrapKey", ... (case-insensitive) <-> bit; "all" parses to OK_PERM_ALL. */
ok_err ok_perm_parse(const char *name, unsigned *bit);
const char *ok_perm_name(unsigned bit);

#define OK_IDENTITY_NAME_MAX 64      /* ^[0-9a-zA-Z._-]{1,64}$ */

typedef struct {
    char name[OK_IDENTITY_NAME_MAX + 1];
    char token_id[33];               /* which token authenticated the request */
} ok_identity;

/* Creates an identity and its first token (expires 0 = never). OK_ERR_CONFLICT if the name exists. */
ok_err ok_vault_identity_create(ok_vault *v, const char *name, int64_t expires, char **token, char **token_id);
ok_err ok_vault_identity_delete(ok_vault *v, const char *name); /* revokes its tokens and policies */
ok_err ok_vault_token_create(ok_vault *v, const char *identity, int64_t expires, char **token, char **token_id);
ok_err ok_vault_token_revoke(ok_vault *v, const char *token_id);
/* OK_ERR_AUTH for an unknown, revoked or expired token. */
ok_err ok_vault_authenticate(ok_vault *v, const char *token, ok_identity *out);

/* A policy grants an identity permissions on keys whose name matches a pattern ("*" any run of
 * characters, "?" one character). Setting a policy replaces the one with the same pattern. */
ok_err ok_vault_policy_set(ok_vault *v, const char *identity, const char *pattern, unsigned perms);
ok_err ok_vault_policy_delete(ok_vault *v, const char *identity, const char *pattern);
/* 1 if the policies of the identity whose pattern matches key_name together grant every bit of perm;
 * 0 otherwise (deny by default, also for who NULL, perm 0 or outside OK_PERM_ALL, a key_name that is
 * not a valid key name, or a storage failure). Patterns match the whole name, case-sensitively.
 * key_name NULL is for calls not about one key (identities, tokens, policies, vault-wide settings,
 * listing keys): then only a policy whose pattern is exactly "*" applies, so management calls need
 * OK_PERM_ADMIN granted on "*". */
int ok_vault_allowed(ok_vault *v, const ok_identity *who, const char *key_name, unsigned perm);

typedef struct {
    char *pattern;
    unsigned perms;
} ok_policy;

typedef struct {
    char name[OK_IDENTITY_NAME_MAX + 1];
    int64_t created;
    ok_policy *policies;
    size_t policy_count;
} ok_identity_info;

ok_err ok_vault_identity_list(ok_vault *v, ok_identity_info **out, size_t *count);
void ok_identity_info_free(ok_identity_info *items, size_t count);

/* ---- Audit ---------------------------------------------------------------------------------------
 * One JSON line per request in DIR/audit.log, chained: each line carries a MAC over the previous line's
 * MAC and its own content, under a key derived from the master key. Never key material, plaintext or
 * tokens. If the line cannot be written durably, ok_vault_audit fails and the caller must fail the
 * request. */
typedef struct {
    const char *request_id;
    const char *identity;            /* NULL for unauthenticated */
    const char *client;              /* client address */
    const char *operation;           /* "create", "wrapkey", ... */
    const char *key_name;            /* may be NULL */
    const char *key_version;         /* may be NULL */
    int status;                      /* HTTP status */
    const char *error_code;          /* NULL on success */
    double latency_ms;
} ok_audit_record;

ok_err ok_vault_audit(ok_vault *v, const ok_audit_record *r);
/* ok_vault_audit in two steps, for a caller that must not block a thread while the line becomes durable:
 * append writes the record's line (the chain moves; an error here is ok_vault_audit's) and returns its
 * ticket; when_durable then calls done(cls, rc) exactly once: rc = OK_OK once the line is durable, an
 * error when it cannot be (the request must then fail). done runs on the audit's own thread, or on the
 * caller's before when_durable returns (already durable, or already failed). ok_vault_audit_wait
 * blocks for a ticket instead. */
typedef struct {
    uint64_t seq; /* the line's number since the log was opened; 0: durable already */
    int fd;       /* the log it went to */
} ok_audit_ticket;
ok_err ok_vault_audit_append(ok_vault *v, const ok_audit_record *r, ok_audit_ticket *t);
ok_err ok_vault_audit_wait(ok_vault *v, ok_audit_ticket t);
void ok_vault_audit_when_durable(ok_vault *v, ok_audit_ticket t, void (*done)(void *cls, ok_err rc), void *cls);
/* Verifies the vault's audit log (the vault must be unsealed). *first_bad = 0 when intact, else the
 * 1-based number of the first line that fails. */
ok_err ok_vault_audit_verify(ok_vault *v, uint64_t *lines, uint64_t *first_bad);
/* Verifies an audit log file with the audit key, without a vault (for the CLI and offline checks).
 * *lines = lines in the file; *first_bad as above. Lines written while the vault was sealed carry no
 * MAC of their own and are proven by the next MAC'd line; trailing ones that no MAC'd line covers yet
 * cannot be proven here and count as bad. Removing whole lines from the end of the file is detectable
 * only by ok_vault_audit_verify on the running vault, which knows the chain's head. */
ok_err ok_audit_verify_file(const char *path, const uint8_t key[32], uint64_t *lines, uint64_t *first_bad);

/* ---- Secrets sealed under the master key (for the data service) ------------------------------------
 * wrap seals len (1 .. 1 MiB) bytes with AES-256-GCM under a key derived from the master key for this
 * purpose only, binding aad (a label of 1..1024 bytes naming what the secret is: the same label is needed
 * to open it). *out is malloc'ed (free()). unwrap's *out is ok_secure_alloc memory: release it with
 * ok_secure_free(*out, *out_len), which zeroizes it. A wrong label, another vault or an altered blob is
 * OK_ERR_AUTH; both are OK_ERR_SEALED while the vault is sealed. */
ok_err ok_vault_wrap_secret(ok_vault *v, const char *aad, const uint8_t *in, size_t len, uint8_t **out,
                            size_t *out_len);
ok_err ok_vault_unwrap_secret(ok_vault *v, const char *aad, const uint8_t *in, size_t len, uint8_t **out,
                              size_t *out_len);
/* 0 while sealed; otherwise the number of unseals of this vault object so far, so that a layer caching
 * secrets opened through the vault notices a seal (even one followed by an unseal) and wipes them. */
uint64_t ok_vault_seal_epoch(ok_vault *v);

#endif
