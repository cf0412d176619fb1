/* Cryptographic operations with a stored key (Azure Key Vault's encrypt, decrypt, wrapKey, unwrapKey, sign,
 * verify): the algorithm table, the rules (the algorithm must fit the key; a disabled key, an operation not
 * in key_ops, or encrypt/wrapKey/sign outside [nbf, exp) is refused), and the operations themselves on
 * material opened for the call (or kept in key_cache.c). Decrypt and unwrap fail with one uniform
 * OK_ERR_AUTH. Sign and verify take a digest. Owns no key rows (keys.c), material encoding (material.c)
 * or cache (key_cache.c). */
#include <stdlib.h>
#include <string.h>

#include "vault/keys_internal.h"

#define VALUE_MAX (1024u * 1024u)
#define DECRYPT_FAILED "decryption failed"

typedef enum { F_OAEP, F_OAEP256, F_RSA15, F_KW, F_GCM, F_SIG } alg_family;

/* Which requests an algorithm serves. */
#define USE_CRYPT (1u << OK_KOP_ENCRYPT | 1u << OK_KOP_DECRYPT)
#define USE_WRAP (1u << OK_KOP_WRAP | 1u << OK_KOP_UNWRAP)
#define USE_SIGN (1u << OK_KOP_SIGN | 1u << OK_KOP_VERIFY)

typedef struct {
    const char *name;
    ok_kty kty;
    alg_family family;
    unsigned uses;
    unsigned bits;     /* oct: the key width it needs; EC: the curve's field bits */
    ok_sig_alg sig;
} alg_entry;

static const alg_entry algs[] = {
    {"RSA-OAEP", OK_KTY_RSA, F_OAEP, USE_CRYPT | USE_WRAP, 0, 0},
    {"RSA-OAEP-256", OK_KTY_RSA, F_OAEP256, USE_CRYPT | USE_WRAP, 0, 0},
    {"RSA1_5", OK_KTY_RSA, F_RSA15, USE_CRYPT | USE_WRAP, 0, 0},
    {"RS256", OK_KTY_RSA, F_SIG, USE_SIGN, 0, OK_SIG_RS256},
    {"RS384", OK_KTY_RSA, F_SIG, USE_SIGN, 0, OK_SIG_RS384},
    {"RS512", OK_KTY_RSA, F_SIG, USE_SIGN, 0, OK_SIG_RS512},
    {"PS256", OK_KTY_RSA, F_SIG, USE_SIGN, 0, OK_SIG_PS256},
    {"PS384", OK_KTY_RSA, F_SIG, USE_SIGN, 0, OK_SIG_PS384},
    {"PS512", OK_KTY_RSA, F_SIG, USE_SIGN, 0, OK_SIG_PS512},
    {"ES256", OK_KTY_EC, F_SIG, USE_SIGN, 256, OK_SIG_ES256},
    {"ES384", OK_KTY_EC, F_SIG, USE_SIGN, 384, OK_SIG_ES384},
    {"A128KW", OK_KTY_OCT, F_KW, USE_WRAP, 128, 0},
    {"A192KW", OK_KTY_OCT, F_KW, USE_WRAP, 192, 0},
    {"A256KW", OK_KTY_OCT, F_KW, USE_WRAP, 256, 0},
    {"A128GCM", OK_KTY_OCT, F_GCM, USE_CRYPT, 128, 0},
    {"A192GCM", OK_KTY_OCT, F_GCM, USE_CRYPT, 192, 0},
    {"A256GCM", OK_KTY_OCT, F_GCM, USE_CRYPT, 256, 0},
};

static const char *op_name(ok_key_op op)
{
    static const char *const names[] = {"", "encrypt", "decrypt", "wrapKey", "unwrapKey", "sign", "verify"};

    return op >= OK_KOP_ENCRYPT && op <= OK_KOP_VERIFY ? names[op] : "unknown";
}

static unsigned op_bit(ok_key_op op)
{
    static const unsigned bits[] = {0, OK_KEYOP_ENCRYPT, OK_KEYOP_DECRYPT, OK_KEYOP_WRAP, OK_KEYOP_UNWRAP,
                                    OK_KEYOP_SIGN, OK_KEYOP_VERIFY};

    return op >= OK_KOP_ENCRYPT && op <= OK_KOP_VERIFY ? bits[op] : 0;
}

/* What the rules need of a version: its attributes, without the public key or tags ok_key_info carries. */
typedef struct {
    char name[OK_KEY_NAME_MAX + 1];
    char version[OK_KEY_VERSION_LEN + 1];
    ok_kty kty;
    unsigned bits, ops;
    int enabled, hsm;
    int64_t nbf, exp;
} op_key;

static ok_err op_key_row(void *ctx, const ok_val *c, size_t n)
{
    op_key *k = ctx;

    if (n != 8 || c[0].type != OK_VAL_TEXT || c[0].len != OK_KEY_VERSION_LEN)
        return ok_fail(OK_ERR_FORMAT, "a stored key row is malformed");
    for (size_t i = 1; i < 8; i++) {
        if (c[i].type != OK_VAL_INT)
            return ok_fail(OK_ERR_FORMAT, "a stored key row is malformed");
    }
    memcpy(k->version, c[0].s, OK_KEY_VERSION_LEN + 1);
    k->kty = (ok_kty)c[1].i;
    k->bits = (unsigned)c[2].i;
    k->ops = (unsigned)c[3].i;
    k->enabled = c[4].i != 0;
    k->nbf = c[5].i;
    k->exp = c[6].i;
    k->hsm = c[7].i != 0;
    return OK_OK;
}

/* The live version (NULL or "" = latest), or OK_ERR_NOT_FOUND. */
static ok_err load_op_key(ok_vault *v, const char *name, const char *version, op_key *k)
{
    int given = 0;

    memset(k, 0, sizeof *k);
    OK_GUARD(ok_key_check_version(name, version, &given));
    if (given) {
        ok_val p[2] = {OK_VTEXT(name), OK_VTEXT(version)};
        OK_GUARD(v->store->vt->query_cached(v->store,
                                            "SELECT v.version, v.kty, v.bits, v.ops, v.enabled, v.nbf, v.exp, v.hsm"
                                            " FROM key_versions v JOIN keys k ON k.name = v.name"
                                            " WHERE v.name = ? AND v.version = ? AND k.deleted = 0",
                                            p, 2, op_key_row, k));
    } else {
        ok_val p[1] = {OK_VTEXT(name)};
        OK_GUARD(v->store->vt->query_cached(v->store,
                                            "SELECT v.version, v.kty, v.bits, v.ops, v.enabled, v.nbf, v.exp, v.hsm"
                                            " FROM key_versions v JOIN keys k ON k.name = v.name"
                                            " WHERE v.name = ? AND k.deleted = 0 ORDER BY v.ordinal DESC LIMIT 1",
                                            p, 1, op_key_row, k));
    }
    if (k->version[0] == '\0')
        return given ? ok_fail(OK_ERR_NOT_FOUND, "key \"%s\" has no version \"%s\"", name, version)
                     : ok_fail(OK_ERR_NOT_FOUND, "key \"%s\" not found", name);
    memcpy(k->name, name, strlen(name) + 1);
    return OK_OK;
}

/* The version's material: from the cache, or opened from storage and then cached. */
static ok_err get_material(ok_vault *v, const op_key *k, ok_key_material *m)
{
    if (ok_key_cache_get(v, k->name, k->version, m)) {
        if (m->kty == k->kty)
            return OK_OK;
        ok_key_material_clear(m);
        return ok_fail(OK_ERR_AUTH, "stored key material does not match its row");
    }
    OK_GUARD(ok_key_material_load(v, k->name, k->version, k->kty, m));
    ok_key_cache_put(v, k->name, k->version, m);
    return OK_OK;
}

static const char *kty_name(ok_kty kty)
{
    return kty == OK_KTY_RSA ? "an RSA" : kty == OK_KTY_EC ? "an EC" : "an oct";
}

/* ---- rules ---------------------------------------------------------------------------------------- */

static ok_err pick_alg(const op_key *k, const ok_key_op_request *req, const alg_entry **out)
{
    const alg_entry *a = NULL;

    if (req->alg == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "an algorithm is required");
    for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++) {
        if (strcmp(algs[i].name, req->alg) == 0)
            a = &algs[i];
    }
    if (a == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "unknown algorithm \"%.40s\"", req->alg);
    if (a->kty != k->kty)
        return ok_fail(OK_ERR_INVALID_ARG, "algorithm %s does not fit %s key", a->name, kty_name(k->kty));
    if ((a->uses & (1u << req->op)) == 0)
        return ok_fail(OK_ERR_INVALID_ARG, "algorithm %s cannot %s", a->name, op_name(req->op));
    if (a->kty == OK_KTY_OCT && a->bits != k->bits)
        return ok_fail(OK_ERR_INVALID_ARG, "algorithm %s needs a %u-bit key; this key has %u bits", a->name, a->bits,
                       k->bits);
    if (a->kty == OK_KTY_EC && a->bits != k->bits)
        return ok_fail(OK_ERR_INVALID_ARG, "algorithm %s does not fit the key's curve", a->name);
    *out = a;
    return OK_OK;
}

static ok_err check_request(const ok_key_op_request *req, const alg_entry *a)
{
    if (req->value == NULL || req->value_len == 0)
        return ok_fail(OK_ERR_INVALID_ARG, "%s needs a value", op_name(req->op));
    if (req->value_len > VALUE_MAX)
        return ok_fail(OK_ERR_INVALID_ARG, "the value has more than %u bytes", VALUE_MAX);
    if (req->op == OK_KOP_VERIFY && (req->digest == NULL || req->digest_len == 0))
        return ok_fail(OK_ERR_INVALID_ARG, "verify needs a digest");
    if ((req->aad == NULL && req->aad_len != 0) || (req->aad_len != 0 && a->family != F_GCM))
        return ok_fail(OK_ERR_INVALID_ARG, "only the GCM algorithms take additional authenticated data");
    if (a->family == F_GCM && req->op == OK_KOP_ENCRYPT && req->iv_len != 0)
        return ok_fail(OK_ERR_INVALID_ARG, "the vault picks the IV for %s encryption", a->name);
    if (a->family == F_GCM && req->op == OK_KOP_DECRYPT &&
        (req->iv == NULL || req->iv_len != OK_GCM_IV_LEN || req->tag == NULL || req->tag_len != OK_GCM_TAG_LEN))
        return ok_fail(OK_ERR_INVALID_ARG, "%s decryption needs the 12-byte iv and the 16-byte tag", a->name);
    return OK_OK;
}

/* Enabled, key_ops, and the validity window for the operations that make new protected data. */
static ok_err check_state(const op_key *k, ok_key_op op)
{
    int64_t now = ok_vault_now();

    if (!k->enabled)
        return ok_fail(OK_ERR_FORBIDDEN, "key \"%s\" is disabled", k->name);
    if ((k->ops & op_bit(op)) == 0)
        return ok_fail(OK_ERR_FORBIDDEN, "operation %s is not permitted by the key's key_ops", op_name(op));
    if (op == OK_KOP_ENCRYPT || op == OK_KOP_WRAP || op == OK_KOP_SIGN) {
        if (k->nbf != 0 && now < k->nbf)
            return ok_fail(OK_ERR_FORBIDDEN, "key \"%s\" is not valid before %lld", k->name, (long long)k->nbf);
        if (k->exp != 0 && now >= k->exp)
            return ok_fail(OK_ERR_FORBIDDEN, "key \"%s\" expired at %lld", k->name, (long long)k->exp);
    }
    return OK_OK;
}

/* ---- operations ------------------------------------------------------------------------------------ */

static ok_err result_alloc(ok_key_op_result *out, size_t len)
{
    out->value = ok_secure_alloc(len);
    if (out->value == NULL)
        return ok_fail(OK_ERR_NOMEM, "result");
    out->value_len = len;
    return OK_OK;
}

static ok_err rsa_encrypt(const ok_key_material *m, const alg_entry *a, const ok_key_op_request *req,
                          ok_key_op_result *out)
{
    size_t k = ok_pkey_size(m->pkey), hlen = a->family == F_OAEP ? 20 : 32, n = 0;
    size_t max = a->family == F_RSA15 ? k - 11 : k - 2 * hlen - 2;
    ok_hash h = a->family == F_OAEP ? OK_HASH_SHA1 : OK_HASH_SHA256;

    if (req->value_len > max)
        return ok_fail(OK_ERR_INVALID_ARG, "%s with this key takes at most %zu bytes", a->name, max);
    OK_GUARD(result_alloc(out, k));
    if (a->family == F_RSA15)
        OK_GUARD(ok_rsa_pkcs1_encrypt(m->pkey, req->value, req->value_len, out->value, &n));
    else
        OK_GUARD(ok_rsa_oaep_encrypt(m->pkey, h, h, NULL, 0, req->value, req->value_len, out->value, &n));
    out->value_len = n;
    return OK_OK;
}

/* Decrypts into a modulus-sized scratch buffer (OpenSSL may write all of it), then copies the plaintext
 * out so the result's length is its allocation's. Every failure is the same OK_ERR_AUTH. */
static ok_err rsa_decrypt(const ok_key_material *m, const alg_entry *a, const ok_key_op_request *req,
                          ok_key_op_result *out)
{
    size_t k = ok_pkey_size(m->pkey), n = 0;
    ok_hash h = a->family == F_OAEP ? OK_HASH_SHA1 : OK_HASH_SHA256;
    uint8_t *scratch = ok_secure_alloc(k);
    ok_err rc;

    if (scratch == NULL)
        return ok_fail(OK_ERR_NOMEM, "result");
    if (a->family == F_RSA15)
        rc = ok_rsa_pkcs1_decrypt(m->pkey, req->value, req->value_len, scratch, &n);
    else
        rc = ok_rsa_oaep_decrypt(m->pkey, h, h, NULL, 0, req->value, req->value_len, scratch, &n);
    if (rc != OK_OK || n == 0 || n > k)
        rc = ok_fail(OK_ERR_AUTH, DECRYPT_FAILED);
    else if ((rc = result_alloc(out, n)) == OK_OK)
        memcpy(out->value, scratch, n);
    ok_secure_free(scratch, k);
    return rc;
}

static ok_err aes_kw(const ok_key_material *m, const ok_key_op_request *req, ok_key_op_result *out)
{
    size_t n = 0;

    if (req->op == OK_KOP_WRAP) {
        if (req->value_len < 16 || req->value_len % 8 != 0)
            return ok_fail(OK_ERR_INVALID_ARG, "AES key wrap takes a multiple of 8 bytes, at least 16");
        OK_GUARD(result_alloc(out, req->value_len + 8));
        return ok_aes_kw_wrap(m->k, m->k_len, req->value, req->value_len, out->value, &n);
    }
    if (req->value_len < 24 || req->value_len % 8 != 0)
        return ok_fail(OK_ERR_AUTH, DECRYPT_FAILED);
    /* the unwrap output buffer must hold the whole input (OpenSSL may cleanse that much) */
    uint8_t *scratch = ok_secure_alloc(req->value_len);
    ok_err rc;
    if (scratch == NULL)
        return ok_fail(OK_ERR_NOMEM, "result");
    if (ok_aes_kw_unwrap(m->k, m->k_len, req->value, req->value_len, scratch, &n) != OK_OK ||
        n != req->value_len - 8)
        rc = ok_fail(OK_ERR_AUTH, DECRYPT_FAILED);
    else if ((rc = result_alloc(out, n)) == OK_OK)
        memcpy(out->value, scratch, n);
    ok_secure_free(scratch, req->value_len);
    return rc;
}

static ok_err aes_gcm(const ok_key_material *m, const ok_key_op_request *req, ok_key_op_result *out)
{
    OK_GUARD(result_alloc(out, req->value_len));
    if (req->op == OK_KOP_ENCRYPT) {
        OK_GUARD(ok_random(out->iv, OK_GCM_IV_LEN));
        out->iv_len = OK_GCM_IV_LEN;
        out->tag_len = OK_GCM_TAG_LEN;
        return ok_aes_gcm_encrypt(m->k, m->k_len, out->iv, OK_GCM_IV_LEN, req->aad, req->aad_len, req->value,
                                  req->value_len, out->value, out->tag);
    }
    if (ok_aes_gcm_decrypt(m->k, m->k_len, req->iv, req->iv_len, req->aad, req->aad_len, req->value,
                           req->value_len, req->tag, out->value) != OK_OK)
        return ok_fail(OK_ERR_AUTH, DECRYPT_FAILED);
    return OK_OK;
}

static ok_err sign_or_verify(const ok_key_material *m, const alg_entry *a, const ok_key_op_request *req,
                             ok_key_op_result *out)
{
    size_t n = 0;
    ok_err rc;

    if (req->op == OK_KOP_SIGN) {
        OK_GUARD(result_alloc(out, ok_pkey_size(m->pkey)));
        OK_GUARD(ok_sign_digest(m->pkey, a->sig, req->value, req->value_len, out->value, &n));
        out->value_len = n; /* RSA and raw ECDSA signatures fill the buffer exactly */
        return OK_OK;
    }
    rc = ok_verify_digest(m->pkey, a->sig, req->digest, req->digest_len, req->value, req->value_len);
    if (rc == OK_ERR_AUTH) {
        out->verified = 0;
        return OK_OK;
    }
    OK_GUARD(rc);
    out->verified = 1;
    return OK_OK;
}

static ok_err perform(const ok_key_material *m, const alg_entry *a, const ok_key_op_request *req,
                      ok_key_op_result *out)
{
    switch (a->family) {
    case F_OAEP:
    case F_OAEP256:
    case F_RSA15:
        if (req->op == OK_KOP_ENCRYPT || req->op == OK_KOP_WRAP)
            return rsa_encrypt(m, a, req, out);
        return rsa_decrypt(m, a, req, out);
    case F_KW:
        return aes_kw(m, req, out);
    case F_GCM:
        return aes_gcm(m, req, out);
    case F_SIG:
        return sign_or_verify(m, a, req, out);
    }
    return ok_fail(OK_ERR_INVALID_ARG, "unknown algorithm");
}

/* ---- HSM-backed keys: private operations in the token, public ones here on the stored public key ---- */

static ok_err hsm_public(ok_vault *v, const op_key *k, ok_key_material *m)
{
    ok_key_info info;

    memset(m, 0, sizeof *m);
    OK_GUARD(ok_key_load(v, OK_KEYS_LIVE, k->name, k->version, &info));
    m->kty = k->kty;
    m->bits = k->bits;
    m->hsm = 1;
    m->pkey = info.public_key;
    info.public_key = NULL;
    ok_key_info_clear(&info);
    return m->pkey != NULL ? OK_OK : ok_fail(OK_ERR_FORMAT, "a stored key row lacks its public key");
}

static size_t sig_digest_len(ok_sig_alg sig)
{
    switch (sig) {
    case OK_SIG_RS384: case OK_SIG_PS384: case OK_SIG_ES384: return 48;
    case OK_SIG_RS512: case OK_SIG_PS512: return 64;
    default: return 32;
    }
}

/* Decrypt and unwrap answer one uniform OK_ERR_AUTH, except when the token cannot be reached at all. */
static ok_err hsm_decrypt_result(ok_err rc)
{
    if (rc == OK_OK || rc == OK_ERR_IO || rc == OK_ERR_NOMEM || rc == OK_ERR_FORBIDDEN || rc == OK_ERR_UNSUPPORTED)
        return rc;
    return ok_fail(OK_ERR_AUTH, DECRYPT_FAILED);
}

static ok_err perform_hsm(ok_vault *v, const op_key *k, const alg_entry *a, const ok_key_op_request *req,
                          ok_key_op_result *out)
{
    int public_op = req->op == OK_KOP_VERIFY ||
                    (k->kty == OK_KTY_RSA && (req->op == OK_KOP_ENCRYPT || req->op == OK_KOP_WRAP));
    ok_key_material m;
    ok_err rc;

    if (a->family == F_OAEP256) /* refused both ways, so that nothing is wrapped that could not be unwrapped */
        return ok_fail(OK_ERR_INVALID_ARG, "RSA-OAEP-256 is not available with RSA-HSM keys (the HSM does OAEP with "
                                           "SHA-1 only); use RSA-OAEP or RSA1_5");
    if (a->family == F_GCM)
        return ok_fail(OK_ERR_INVALID_ARG, "oct-HSM keys wrap and unwrap (A128KW, A192KW, A256KW); %s in the HSM "
                                           "is not supported", a->name);
    if (public_op) {
        OK_GUARD(hsm_public(v, k, &m));
        rc = a->family == F_SIG ? sign_or_verify(&m, a, req, out) : rsa_encrypt(&m, a, req, out);
        ok_key_material_clear(&m);
        return rc;
    }
    switch (a->family) {
    case F_OAEP:
    case F_RSA15:
        if (req->value_len != k->bits / 8)
            return ok_fail(OK_ERR_AUTH, DECRYPT_FAILED);
        return hsm_decrypt_result(ok_key_hsm_run(v, k->name, k->version, k->kty,
                                                 a->family == F_OAEP ? OK_HSM_RSA_OAEP_DECRYPT
                                                                     : OK_HSM_RSA_PKCS1_DECRYPT,
                                                 0, req->value, req->value_len, k->bits / 8, out));
    case F_SIG:
        if (req->value_len != sig_digest_len(a->sig))
            return ok_fail(OK_ERR_INVALID_ARG, "%s signs a %zu-byte digest, not %zu bytes", a->name,
                           sig_digest_len(a->sig), req->value_len);
        return ok_key_hsm_run(v, k->name, k->version, k->kty, OK_HSM_SIGN_DIGEST, a->sig, req->value, req->value_len,
                              k->kty == OK_KTY_RSA ? k->bits / 8 : 2 * ((k->bits + 7) / 8), out);
    case F_KW:
        if (req->op == OK_KOP_WRAP) {
            if (req->value_len < 16 || req->value_len % 8 != 0)
                return ok_fail(OK_ERR_INVALID_ARG, "AES key wrap takes a multiple of 8 bytes, at least 16");
            return ok_key_hsm_run(v, k->name, k->version, k->kty, OK_HSM_AES_KW_WRAP, 0, req->value, req->value_len,
                                  req->value_len + 8, out);
        }
        if (req->value_len < 24 || req->value_len % 8 != 0)
            return ok_fail(OK_ERR_AUTH, DECRYPT_FAILED);
        rc = hsm_decrypt_result(ok_key_hsm_run(v, k->name, k->version, k->kty, OK_HSM_AES_KW_UNWRAP, 0, req->value,
                                               req->value_len, req->value_len, out));
        if (rc == OK_OK && out->value_len != req->value_len - 8)
            rc = ok_fail(OK_ERR_AUTH, DECRYPT_FAILED);
        return rc;
    default:
        return ok_fail(OK_ERR_INVALID_ARG, "algorithm %s is not supported with HSM keys", a->name);
    }
}

static ok_err op_locked(ok_vault *v, const char *name, const char *version, const ok_key_op_request *req,
                        ok_key_op_result *out)
{
    const alg_entry *a = NULL;
    ok_key_material m;
    op_key k;
    ok_err rc;

    OK_GUARD(load_op_key(v, name, version, &k));
    OK_GUARD(pick_alg(&k, req, &a));
    OK_GUARD(check_request(req, a));
    OK_GUARD(check_state(&k, req->op));
    memcpy(out->version, k.version, sizeof out->version);
    if (k.hsm)
        return perform_hsm(v, &k, a, req, out);
    OK_GUARD(get_material(v, &k, &m));
    rc = perform(&m, a, req, out);
    ok_key_material_clear(&m);
    return rc;
}

ok_err ok_vault_key_op(ok_vault *v, const char *name, const char *version, const ok_key_op_request *req,
                       ok_key_op_result *out)
{
    ok_err rc;

    if (out == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_vault_key_op: NULL argument");
    memset(out, 0, sizeof *out);
    if (v == NULL || req == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_vault_key_op: NULL argument");
    if (op_bit(req->op) == 0)
        return ok_fail(OK_ERR_INVALID_ARG, "unknown key operation %d", (int)req->op);
    OK_GUARD(ok_key_check_name(name));
    OK_GUARD(ok_seal_read_begin(v));
    rc = op_locked(v, name, version, req, out);
    ok_seal_read_end(v);
    if (rc != OK_OK)
        ok_key_op_result_clear(out);
    return rc;
}

void ok_key_op_result_clear(ok_key_op_result *r)
{
    if (r == NULL)
        return;
    ok_secure_free(r->value, r->value_len);
    ok_zeroize(r, sizeof *r);
}
