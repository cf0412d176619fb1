/* Key material at rest. A version's private material is encoded as one byte of kty followed by PKCS#8
 * PrivateKeyInfo (RSA, EC) or the raw key bytes (oct), and sealed with AES-256-GCM under the material
 * key HKDF(master, "ownkey key material"), with a random 12-byte nonce and the AAD
 * "ownkey:key:<name>/<version>", stored as nonce || ciphertext || tag. A row moved to another name or
 * version, or altered in any byte, fails authentication. Plain material lives only in secure memory (or
 * OpenSSL's key objects) and only while an operation needs it. Owns no rows (keys.c) and no operation
 * (key_ops.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "vault/keys_internal.h"

#define AAD_MAX (sizeof "ownkey:key:" + OK_KEY_NAME_MAX + 1 + OK_KEY_VERSION_LEN)
#define MATERIAL_MAX (64u * 1024u) /* PKCS#8 of RSA-16384 is far below this */

void ok_key_material_clear(ok_key_material *m)
{
    if (m == NULL)
        return;
    ok_pkey_free(m->pkey);
    ok_secure_free(m->k, m->k_len);
    memset(m, 0, sizeof *m);
}

/* Type, size and curve of a private key object. */
static ok_err describe_pkey(ok_pkey *pkey, ok_key_material *out)
{
    if (!ok_pkey_is_private(pkey))
        return ok_fail(OK_ERR_INVALID_ARG, "the key has no private part");
    out->pkey = pkey;
    out->bits = ok_pkey_bits(pkey);
    if (ok_pkey_kind(pkey) == OK_PKEY_RSA) {
        out->kty = OK_KTY_RSA;
        return OK_OK;
    }
    out->kty = OK_KTY_EC;
    out->curve = out->bits == 384 ? OK_CURVE_P384 : OK_CURVE_P256;
    if (out->bits != 256 && out->bits != 384)
        return ok_fail(OK_ERR_INVALID_ARG, "EC keys must be on P-256 or P-384");
    return OK_OK;
}

static ok_err oct_material(const uint8_t *k, size_t len, ok_key_material *out)
{
    if (len != 16 && len != 24 && len != 32)
        return ok_fail(OK_ERR_INVALID_ARG, "oct keys have 128, 192 or 256 bits, not %zu", len * 8);
    out->k = ok_secure_alloc(len);
    if (out->k == NULL)
        return ok_fail(OK_ERR_NOMEM, "secure memory");
    if (k != NULL)
        memcpy(out->k, k, len);
    out->k_len = len;
    out->kty = OK_KTY_OCT;
    out->bits = (unsigned)len * 8;
    return OK_OK;
}

ok_err ok_key_material_generate(ok_kty kty, unsigned bits, ok_curve curve, ok_key_material *out)
{
    ok_pkey *pkey = NULL;
    ok_err rc;

    memset(out, 0, sizeof *out);
    switch (kty) {
    case OK_KTY_RSA:
        if (bits != 2048 && bits != 3072 && bits != 4096)
            return ok_fail(OK_ERR_INVALID_ARG, "RSA keys have 2048, 3072 or 4096 bits, not %u", bits);
        OK_GUARD(ok_pkey_generate_rsa(&pkey, bits));
        break;
    case OK_KTY_EC:
        if (curve != OK_CURVE_P256 && curve != OK_CURVE_P384)
            return ok_fail(OK_ERR_INVALID_ARG, "EC keys are on P-256 or P-384");
        OK_GUARD(ok_pkey_generate_ec(&pkey, curve));
        break;
    case OK_KTY_OCT:
        if (bits != 128 && bits != 192 && bits != 256)
            return ok_fail(OK_ERR_INVALID_ARG, "oct keys have 128, 192 or 256 bits, not %u", bits);
        OK_GUARD(oct_material(NULL, bits / 8, out));
        rc = ok_random(out->k, out->k_len);
        if (rc != OK_OK)
            ok_key_material_clear(out);
        return rc;
    default:
        return ok_fail(OK_ERR_INVALID_ARG, "unknown key type %d", (int)kty);
    }
    rc = describe_pkey(pkey, out);
    if (rc != OK_OK) {
        ok_pkey_free(pkey);
        memset(out, 0, sizeof *out);
    }
    return rc;
}

ok_err ok_key_material_from_jwk(const ok_jwk *jwk, ok_key_material *out)
{
    ok_pkey *copy = NULL;
    ok_err rc;

    memset(out, 0, sizeof *out);
    if (jwk == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "import: no key");
    if (jwk->kty == OK_JWK_OCT) {
        if (jwk->k == NULL)
            return ok_fail(OK_ERR_INVALID_ARG, "import: the oct key has no k");
        return oct_material(jwk->k, jwk->k_len, out);
    }
    if (jwk->pkey == NULL || !ok_pkey_is_private(jwk->pkey))
        return ok_fail(OK_ERR_INVALID_ARG, "import needs the private key; this JWK holds only a public key");
    OK_GUARD(ok_pkey_share(jwk->pkey, &copy));
    rc = describe_pkey(copy, out);
    if (rc != OK_OK) {
        ok_pkey_free(copy);
        memset(out, 0, sizeof *out);
    }
    return rc;
}

static const char *kty_word(ok_kty kty)
{
    return kty == OK_KTY_RSA ? "an RSA" : kty == OK_KTY_EC ? "an EC" : "an oct (AES)";
}

ok_err ok_key_material_from_plain(ok_kty kty, const uint8_t *p, size_t len, ok_key_material *out)
{
    ok_pkey *pkey = NULL;
    ok_err rc;

    memset(out, 0, sizeof *out);
    if (p == NULL || len == 0)
        return ok_fail(OK_ERR_INVALID_ARG, "no key material");
    if (kty == OK_KTY_OCT) {
        if (len != 16 && len != 24 && len != 32)
            return ok_fail(OK_ERR_INVALID_ARG, "kty is oct, but the key material has %zu bytes, not the 16, 24 or 32 "
                                               "raw bytes of an AES key", len);
        return oct_material(p, len, out);
    }
    if (kty != OK_KTY_RSA && kty != OK_KTY_EC)
        return ok_fail(OK_ERR_INVALID_ARG, "unknown key type %d", (int)kty);
    rc = ok_pkey_from_der(&pkey, p, len, 1);
    if (rc != OK_OK)
        return ok_fail(OK_ERR_INVALID_ARG, "kty is %s, but the key material is not a usable PKCS#8 private key "
                                           "(%s)", kty == OK_KTY_RSA ? "RSA" : "EC", ok_err_message());
    if (EVP_PKEY_is_a(ok_pkey_evp(pkey), "RSA-PSS")) {
        ok_pkey_free(pkey);
        return ok_fail(OK_ERR_INVALID_ARG, "the key material is an RSA-PSS-only key; import a plain RSA key");
    }
    rc = describe_pkey(pkey, out);
    if (rc == OK_OK && out->kty != kty)
        rc = ok_fail(OK_ERR_INVALID_ARG, "kty says %s key, but the key material holds %s key", kty_word(kty),
                     kty_word(out->kty));
    if (rc != OK_OK) {
        ok_pkey_free(pkey);
        memset(out, 0, sizeof *out);
    }
    return rc;
}

/* ---- sealing ---------------------------------------------------------------------------------------- */

static size_t make_aad(const char *name, const char *version, char aad[AAD_MAX])
{
    int n = snprintf(aad, AAD_MAX, "ownkey:key:%s/%s", name, version);

    return n > 0 && (size_t)n < AAD_MAX ? (size_t)n : 0;
}

/* kty || PKCS#8 or raw key, in secure memory. */
static ok_err encode(const ok_key_material *m, uint8_t **pt, size_t *len)
{
    uint8_t *der = NULL;
    size_t der_len = 0;

    if (m->kty == OK_KTY_OCT) {
        der = m->k;
        der_len = m->k_len;
    } else {
        OK_GUARD(ok_pkey_private_der(m->pkey, &der, &der_len));
    }
    *len = 1 + der_len;
    *pt = ok_secure_alloc(*len);
    if (*pt != NULL) {
        (*pt)[0] = (uint8_t)m->kty;
        memcpy(*pt + 1, der, der_len);
    }
    if (m->kty != OK_KTY_OCT)
        ok_secure_free(der, der_len);
    return *pt != NULL ? OK_OK : ok_fail(OK_ERR_NOMEM, "secure memory");
}

ok_err ok_key_material_seal(ok_vault *v, const char *name, const char *version, const ok_key_material *m,
                            uint8_t **blob, size_t *blob_len)
{
    char aad[AAD_MAX];
    size_t aad_len = make_aad(name, version, aad), len = 0;
    uint8_t *pt = NULL, *out;
    ok_err rc;

    *blob = NULL;
    *blob_len = 0;
    if (aad_len == 0)
        return ok_fail(OK_ERR_INVALID_ARG, "key name or version too long");
    OK_GUARD(encode(m, &pt, &len));
    out = malloc(OK_GCM_IV_LEN + len + OK_GCM_TAG_LEN);
    if (out == NULL) {
        ok_secure_free(pt, len);
        return ok_fail(OK_ERR_NOMEM, "sealed key material");
    }
    rc = ok_random(out, OK_GCM_IV_LEN);
    if (rc == OK_OK)
        rc = ok_aes_gcm_encrypt(v->material_key, OK_AES256_KEY_LEN, out, OK_GCM_IV_LEN, (const uint8_t *)aad, aad_len,
                                pt, len, out + OK_GCM_IV_LEN, out + OK_GCM_IV_LEN + len);
    ok_secure_free(pt, len);
    if (rc != OK_OK) {
        free(out);
        return rc;
    }
    *blob = out;
    *blob_len = OK_GCM_IV_LEN + len + OK_GCM_TAG_LEN;
    return OK_OK;
}

static ok_err decode(ok_kty kty, const uint8_t *pt, size_t len, ok_key_material *out)
{
    ok_pkey *pkey = NULL;
    ok_err rc;

    if (len < 2 || pt[0] != (uint8_t)kty)
        return ok_fail(OK_ERR_AUTH, "stored key material does not match its row");
    if (kty == OK_KTY_OCT)
        return oct_material(pt + 1, len - 1, out);
    OK_GUARD(ok_pkey_from_der(&pkey, pt + 1, len - 1, 1));
    rc = describe_pkey(pkey, out);
    if (rc == OK_OK && out->kty != kty)
        rc = ok_fail(OK_ERR_AUTH, "stored key material does not match its row");
    if (rc != OK_OK) {
        ok_pkey_free(pkey);
        memset(out, 0, sizeof *out);
    }
    return rc;
}

ok_err ok_key_material_open(ok_vault *v, const char *name, const char *version, ok_kty kty, const uint8_t *blob,
                            size_t blob_len, ok_key_material *out)
{
    char aad[AAD_MAX];
    size_t aad_len = make_aad(name, version, aad), len;
    uint8_t *pt;
    ok_err rc;

    memset(out, 0, sizeof *out);
    if (aad_len == 0 || blob_len < OK_GCM_IV_LEN + 2 + OK_GCM_TAG_LEN || blob_len > MATERIAL_MAX)
        return ok_fail(OK_ERR_AUTH, "stored key material of key \"%s\" failed authentication", name);
    len = blob_len - OK_GCM_IV_LEN - OK_GCM_TAG_LEN;
    pt = ok_secure_alloc(len);
    if (pt == NULL)
        return ok_fail(OK_ERR_NOMEM, "secure memory");
    rc = ok_aes_gcm_decrypt(v->material_key, OK_AES256_KEY_LEN, blob, OK_GCM_IV_LEN, (const uint8_t *)aad, aad_len,
                            blob + OK_GCM_IV_LEN, len, blob + OK_GCM_IV_LEN + len, pt);
    if (rc == OK_ERR_AUTH)
        rc = ok_fail(OK_ERR_AUTH, "stored key material of key \"%s\" failed authentication", name);
    if (rc == OK_OK)
        rc = decode(kty, pt, len, out);
    ok_secure_free(pt, len);
    return rc;
}

typedef struct {
    uint8_t *blob;
    size_t len;
} blob_copy;

/* Copies the sealed blob out, so that opening it (a PKCS#8 parse) runs without the store's lock. */
static ok_err material_row(void *ctx, const ok_val *cols, size_t n)
{
    blob_copy *bc = ctx;

    if (bc->blob != NULL || n != 1 || cols[0].type != OK_VAL_BLOB || cols[0].len > MATERIAL_MAX)
        return ok_fail(OK_ERR_AUTH, "stored key material failed authentication");
    bc->blob = malloc(cols[0].len ? cols[0].len : 1);
    if (bc->blob == NULL)
        return ok_fail(OK_ERR_NOMEM, "sealed key material");
    memcpy(bc->blob, cols[0].b, cols[0].len);
    bc->len = cols[0].len;
    return OK_OK;
}

ok_err ok_key_material_load(ok_vault *v, const char *name, const char *version, ok_kty kty, ok_key_material *out)
{
    blob_copy bc = {NULL, 0};
    ok_val p[2] = {OK_VTEXT(name), OK_VTEXT(version)};
    ok_err rc;

    memset(out, 0, sizeof *out);
    rc = v->store->vt->query(v->store, "SELECT material FROM key_versions WHERE name = ? AND version = ?", p, 2,
                             material_row, &bc);
    if (rc == OK_OK && bc.blob == NULL)
        rc = ok_fail(OK_ERR_NOT_FOUND, "key \"%s\" has no version \"%s\"", name, version);
    if (rc == OK_OK)
        rc = ok_key_material_open(v, name, version, kty, bc.blob, bc.len, out);
    free(bc.blob);
    return rc;
}
