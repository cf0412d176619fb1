/* Asymmetric key objects (ok_pkey): RSA, RSA-PSS and EC P-256/P-384 keys, their generation, DER/PEM
 * loading, SPKI and PKCS#8 export, public copies and accessors. Owns no operation with a key (see rsa_encrypt.c,
 * signature.c) and no JWK form (see jwk.c). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/encoder.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "crypto/internal.h"

/* RSA moduli outside this range are refused: below is broken, above is OpenSSL's own limit. */
#define RSA_MIN_BITS 1024
#define RSA_MAX_BITS 16384

static int has_private_part(const EVP_PKEY *pkey)
{
    const char *name = EVP_PKEY_get_base_id(pkey) == EVP_PKEY_EC ? OSSL_PKEY_PARAM_PRIV_KEY : OSSL_PKEY_PARAM_RSA_D;
    BIGNUM *bn = NULL;
    int found = EVP_PKEY_get_bn_param(pkey, name, &bn) == 1 && bn != NULL;

    BN_clear_free(bn);
    ERR_clear_error();
    return found;
}

static ok_err check_ec_curve(const EVP_PKEY *pkey)
{
    char name[64];
    int nid;

    if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof name, NULL) != 1)
        return ok_crypto_fail(OK_ERR_UNSUPPORTED, "EC key without a named curve");
    nid = OBJ_txt2nid(name);
    if (nid != NID_X9_62_prime256v1 && nid != NID_secp384r1)
        return ok_fail(OK_ERR_UNSUPPORTED, "EC curve %s is not supported (P-256 and P-384 are)", name);
    return OK_OK;
}

ok_err ok_crypto_pkey_wrap(EVP_PKEY *pkey, ok_pkey **out)
{
    ok_pkey *k;
    ok_err rc = OK_OK;
    int bits;

    *out = NULL;
    if (pkey == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "no key");
    switch (EVP_PKEY_get_base_id(pkey)) {
    case EVP_PKEY_RSA:
    case EVP_PKEY_RSA_PSS:
        bits = EVP_PKEY_get_bits(pkey);
        if (bits < RSA_MIN_BITS || bits > RSA_MAX_BITS)
            rc = ok_fail(OK_ERR_UNSUPPORTED, "RSA key of %d bits (%d..%d supported)", bits, RSA_MIN_BITS,
                         RSA_MAX_BITS);
        break;
    case EVP_PKEY_EC:
        rc = check_ec_curve(pkey);
        break;
    default:
        rc = ok_fail(OK_ERR_UNSUPPORTED, "key type %s is not supported", OBJ_nid2sn(EVP_PKEY_get_base_id(pkey)));
        break;
    }
    if (rc != OK_OK) {
        EVP_PKEY_free(pkey);
        return rc;
    }
    k = calloc(1, sizeof *k);
    if (k == NULL || pthread_mutex_init(&k->pool_lock, NULL) != 0) {
        free(k);
        EVP_PKEY_free(pkey);
        return ok_fail(OK_ERR_NOMEM, "ok_pkey");
    }
    k->pkey = pkey;
    k->is_private = has_private_part(pkey);
    *out = k;
    return OK_OK;
}

int ok_crypto_pkey_is_rsa(const ok_pkey *k)
{
    int id = k != NULL ? EVP_PKEY_get_base_id(k->pkey) : 0;
    return id == EVP_PKEY_RSA || id == EVP_PKEY_RSA_PSS;
}

ok_err ok_crypto_pkey_curve(const ok_pkey *k, ok_curve *curve)
{
    if (k == NULL || EVP_PKEY_get_base_id(k->pkey) != EVP_PKEY_EC)
        return ok_fail(OK_ERR_KEY, "not an EC key");
    switch (EVP_PKEY_get_bits(k->pkey)) { /* the curve was checked when the key was wrapped */
    case 256:
        *curve = OK_CURVE_P256;
        return OK_OK;
    case 384:
        *curve = OK_CURVE_P384;
        return OK_OK;
    default:
        return ok_fail(OK_ERR_KEY, "unsupported EC curve");
    }
}

ok_err ok_pkey_generate_rsa(ok_pkey **out, unsigned bits)
{
    EVP_PKEY *pkey;

    if (out == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_pkey_generate_rsa: NULL argument");
    *out = NULL;
    if (bits != 2048 && bits != 3072 && bits != 4096)
        return ok_fail(OK_ERR_INVALID_ARG, "RSA key size %u (2048, 3072 or 4096 supported)", bits);
    pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
    if (pkey == NULL)
        return ok_crypto_fail(OK_ERR_CRYPTO, "RSA key generation");
    return ok_crypto_pkey_wrap(pkey, out);
}

ok_err ok_pkey_generate_ec(ok_pkey **out, ok_curve curve)
{
    const char *name = curve == OK_CURVE_P256 ? "P-256" : curve == OK_CURVE_P384 ? "P-384" : NULL;
    EVP_PKEY *pkey;

    if (out == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_pkey_generate_ec: NULL argument");
    *out = NULL;
    if (name == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "unknown curve %d", (int)curve);
    pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", name);
    if (pkey == NULL)
        return ok_crypto_fail(OK_ERR_CRYPTO, "EC key generation");
    return ok_crypto_pkey_wrap(pkey, out);
}

static ok_err private_from_der(const uint8_t *der, size_t len, EVP_PKEY **pkey)
{
    const unsigned char *p = der;
    PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)len);

    if (p8 == NULL)
        return ok_crypto_fail(OK_ERR_FORMAT, "not a PKCS#8 PrivateKeyInfo");
    if (p != der + len) {
        PKCS8_PRIV_KEY_INFO_free(p8);
        return ok_fail(OK_ERR_FORMAT, "trailing bytes after PKCS#8 PrivateKeyInfo");
    }
    *pkey = EVP_PKCS82PKEY(p8);
    PKCS8_PRIV_KEY_INFO_free(p8);
    if (*pkey == NULL)
        return ok_crypto_fail(OK_ERR_KEY, "unusable PKCS#8 private key");
    return OK_OK;
}

static ok_err public_from_der(const uint8_t *der, size_t len, EVP_PKEY **pkey)
{
    const unsigned char *p = der;

    *pkey = d2i_PUBKEY(NULL, &p, (long)len);
    if (*pkey == NULL)
        return ok_crypto_fail(OK_ERR_FORMAT, "not a SubjectPublicKeyInfo");
    if (p != der + len) {
        EVP_PKEY_free(*pkey);
        *pkey = NULL;
        return ok_fail(OK_ERR_FORMAT, "trailing bytes after SubjectPublicKeyInfo");
    }
    return OK_OK;
}

ok_err ok_pkey_from_der(ok_pkey **out, const uint8_t *der, size_t len, int is_private)
{
    EVP_PKEY *pkey = NULL;

    if (out == NULL || der == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_pkey_from_der: NULL argument");
    *out = NULL;
    if (len == 0 || len > (size_t)LONG_MAX)
        return ok_fail(OK_ERR_FORMAT, "DER key of %zu bytes", len);
    OK_GUARD(is_private ? private_from_der(der, len, &pkey) : public_from_der(der, len, &pkey));
    return ok_crypto_pkey_wrap(pkey, out);
}

/* Refuses to prompt for a passphrase: encrypted PEM keys are not read. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

ok_err ok_pkey_from_pem(ok_pkey **out, const char *pem, size_t len)
{
    EVP_PKEY *pkey = NULL;
    BIO *bio;

    if (out == NULL || pem == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_pkey_from_pem: NULL argument");
    *out = NULL;
    if (len == 0 || len > (size_t)INT_MAX)
        return ok_fail(OK_ERR_FORMAT, "PEM key of %zu bytes", len);
    bio = BIO_new_mem_buf(pem, (int)len);
    if (bio != NULL)
        pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    BIO_free(bio);
    if (pkey == NULL) {
        ERR_clear_error();
        bio = BIO_new_mem_buf(pem, (int)len);
        if (bio != NULL)
            pkey = PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL);
        BIO_free(bio);
    }
    if (pkey == NULL)
        return ok_crypto_fail(OK_ERR_FORMAT, "no readable private key or public key in PEM");
    return ok_crypto_pkey_wrap(pkey, out);
}

/* Drops leading zero bytes of a big-endian integer. */
static void strip_zeros(const uint8_t **p, size_t *len)
{
    while (*len > 0 && **p == 0) {
        (*p)++;
        (*len)--;
    }
}

ok_err ok_pkey_rsa_from_public(ok_pkey **out, const uint8_t *n, size_t n_len, const uint8_t *e, size_t e_len)
{
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;
    BIGNUM *bn_n = NULL, *bn_e = NULL;
    ok_err rc = OK_OK;

    if (out == NULL || n == NULL || e == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_pkey_rsa_from_public: NULL argument");
    *out = NULL;
    strip_zeros(&n, &n_len);
    strip_zeros(&e, &e_len);
    if (n_len == 0 || n_len > RSA_MAX_BITS / 8 || (n[n_len - 1] & 1) == 0)
        return ok_fail(OK_ERR_KEY, "RSA modulus is empty, too long or even");
    if (e_len == 0 || e_len > 8 || (e[e_len - 1] & 1) == 0 || (e_len == 1 && e[0] < 3))
        return ok_fail(OK_ERR_KEY, "RSA public exponent must be odd, at least 3 and at most 64 bits");

    bn_n = BN_bin2bn(n, (int)n_len, NULL);
    bn_e = BN_bin2bn(e, (int)e_len, NULL);
    bld = OSSL_PARAM_BLD_new();
    if (bn_n == NULL || bn_e == NULL || bld == NULL || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) || (params = OSSL_PARAM_BLD_to_param(bld)) == NULL) {
        rc = ok_crypto_fail(OK_ERR_NOMEM, "RSA public key parameters");
        goto done;
    }
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        rc = ok_crypto_fail(OK_ERR_KEY, "RSA public key from modulus and exponent");
        goto done;
    }
    rc = ok_crypto_pkey_wrap(pkey, out);
done:
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    return rc;
}

ok_err ok_pkey_public_der(const ok_pkey *k, uint8_t **der, size_t *len)
{
    unsigned char *p;
    int n;

    if (k == NULL || der == NULL || len == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_pkey_public_der: NULL argument");
    *der = NULL;
    *len = 0;
    n = i2d_PUBKEY(k->pkey, NULL);
    if (n <= 0)
        return ok_crypto_fail(OK_ERR_CRYPTO, "SubjectPublicKeyInfo encoding");
    *der = malloc((size_t)n);
    if (*der == NULL)
        return ok_fail(OK_ERR_NOMEM, "SubjectPublicKeyInfo");
    p = *der;
    if (i2d_PUBKEY(k->pkey, &p) != n) {
        free(*der);
        *der = NULL;
        return ok_crypto_fail(OK_ERR_CRYPTO, "SubjectPublicKeyInfo encoding");
    }
    *len = (size_t)n;
    return OK_OK;
}

/* Encodes through OSSL_ENCODER into OpenSSL's buffer (a memory BIO, cleansed as it grows and on free), copies
 * it into secure memory and cleanses the OpenSSL copy. */
ok_err ok_pkey_private_der(const ok_pkey *k, uint8_t **der, size_t *len)
{
    OSSL_ENCODER_CTX *ectx = NULL;
    unsigned char *tmp = NULL;
    size_t tmp_len = 0;
    ok_err rc = OK_OK;

    if (k == NULL || der == NULL || len == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_pkey_private_der: NULL argument");
    *der = NULL;
    *len = 0;
    if (!k->is_private)
        return ok_fail(OK_ERR_KEY, "the key has no private part");
    ectx = OSSL_ENCODER_CTX_new_for_pkey(k->pkey, OSSL_KEYMGMT_SELECT_ALL, "DER", "PrivateKeyInfo", NULL);
    if (ectx == NULL || OSSL_ENCODER_to_data(ectx, &tmp, &tmp_len) != 1 || tmp == NULL || tmp_len == 0) {
        rc = ok_crypto_fail(OK_ERR_CRYPTO, "PKCS#8 encoding");
        goto done;
    }
    *der = ok_secure_alloc(tmp_len);
    if (*der == NULL) {
        rc = ok_fail(OK_ERR_NOMEM, "PKCS#8 encoding");
        goto done;
    }
    memcpy(*der, tmp, tmp_len);
    *len = tmp_len;
done:
    if (tmp != NULL)
        OPENSSL_clear_free(tmp, tmp_len);
    OSSL_ENCODER_CTX_free(ectx);
    return rc;
}

ok_err ok_pkey_public_copy(const ok_pkey *k, ok_pkey **out)
{
    uint8_t *der = NULL;
    size_t len = 0;
    ok_err rc;

    if (out == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_pkey_public_copy: NULL argument");
    *out = NULL;
    OK_GUARD(ok_pkey_public_der(k, &der, &len));
    rc = ok_pkey_from_der(out, der, len, 0);
    free(der);
    return rc;
}

ok_err ok_pkey_share(const ok_pkey *k, ok_pkey **out)
{
    if (k == NULL || out == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_pkey_share: NULL argument");
    ok_pkey *copy = calloc(1, sizeof *copy);
    if (copy == NULL)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    if (EVP_PKEY_up_ref(k->pkey) != 1) {
        free(copy);
        return ok_crypto_fail(OK_ERR_CRYPTO, "EVP_PKEY_up_ref");
    }
    copy->pkey = k->pkey;
    copy->is_private = k->is_private;
    *out = copy;
    return OK_OK;
}

EVP_PKEY_CTX *ok_crypto_pkey_pool_take(const ok_pkey *k, int tag)
{
    ok_pkey *mk = (ok_pkey *)k; /* the pool is a cache beside the key, not the key */
    EVP_PKEY_CTX *ctx = NULL;
    pthread_mutex_lock(&mk->pool_lock);
    for (size_t i = mk->pool_len; i-- > 0;) {
        if (mk->pool[i].tag == tag) {
            ctx = mk->pool[i].ctx;
            mk->pool[i] = mk->pool[--mk->pool_len];
            break;
        }
    }
    pthread_mutex_unlock(&mk->pool_lock);
    return ctx;
}

void ok_crypto_pkey_pool_give(const ok_pkey *k, int tag, EVP_PKEY_CTX *ctx)
{
    ok_pkey *mk = (ok_pkey *)k;
    pthread_mutex_lock(&mk->pool_lock);
    if (mk->pool_len < OK_PKEY_POOL) {
        mk->pool[mk->pool_len].ctx = ctx;
        mk->pool[mk->pool_len].tag = tag;
        mk->pool_len++;
        ctx = NULL;
    }
    pthread_mutex_unlock(&mk->pool_lock);
    EVP_PKEY_CTX_free(ctx);
}

void ok_pkey_free(ok_pkey *k)
{
    if (k == NULL)
        return;
    for (size_t i = 0; i < k->pool_len; i++)
        EVP_PKEY_CTX_free(k->pool[i].ctx); /* each holds a reference on the key */
    pthread_mutex_destroy(&k->pool_lock);
    EVP_PKEY_free(k->pkey); /* cleanses private parts */
    free(k);
}

ok_pkey_type ok_pkey_kind(const ok_pkey *k)
{
    return ok_crypto_pkey_is_rsa(k) ? OK_PKEY_RSA : OK_PKEY_EC;
}

int ok_pkey_is_private(const ok_pkey *k)
{
    return k != NULL && k->is_private;
}

unsigned ok_pkey_bits(const ok_pkey *k)
{
    int bits = k != NULL ? EVP_PKEY_get_bits(k->pkey) : 0;
    return bits > 0 ? (unsigned)bits : 0;
}

size_t ok_pkey_size(const ok_pkey *k)
{
    size_t bytes = (ok_pkey_bits(k) + 7) / 8;
    return ok_crypto_pkey_is_rsa(k) ? bytes : 2 * bytes;
}

void *ok_pkey_evp(const ok_pkey *k)
{
    return k != NULL ? k->pkey : NULL;
}
