/* Hashing and key derivation: HKDF-SHA256 (RFC 5869), HMAC-SHA256, SHA-256, and scrypt (RFC 7914) for
 * passphrases. Owns no key schedule of any format; callers choose salts, info strings and costs. */
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <pthread.h>

#include "crypto/internal.h"

ok_err ok_hkdf_sha256(const uint8_t *salt, size_t salt_len, const uint8_t *ikm, size_t ikm_len,
                      const uint8_t *info, size_t info_len, uint8_t *out, size_t out_len)
{
    static const uint8_t empty[1] = {0};
    EVP_KDF *kdf = NULL;
    EVP_KDF_CTX *ctx = NULL;
    OSSL_PARAM params[5];
    size_t n = 0;
    ok_err rc = OK_OK;

    if (out == NULL || (salt == NULL && salt_len != 0) || (ikm == NULL && ikm_len != 0) ||
        (info == NULL && info_len != 0))
        return ok_fail(OK_ERR_INVALID_ARG, "HKDF: NULL argument");
    if (out_len == 0 || out_len > OK_HKDF_SHA256_MAX)
        return ok_fail(OK_ERR_INVALID_ARG, "HKDF-SHA256: output length %zu not in 1..%u", out_len,
                       OK_HKDF_SHA256_MAX);

    params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)(ikm ? ikm : empty), ikm_len);
    if (salt_len > 0) /* an absent salt is HashLen zero bytes, which is what an empty one means too */
        params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len);
    if (info_len > 0)
        params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, info_len);
    params[n] = OSSL_PARAM_construct_end();

    kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_HKDF, NULL);
    ctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
    if (ctx == NULL) {
        rc = ok_crypto_fail(OK_ERR_CRYPTO, "HKDF setup");
        goto done;
    }
    if (EVP_KDF_derive(ctx, out, out_len, params) != 1) {
        ok_zeroize(out, out_len);
        rc = ok_crypto_fail(OK_ERR_CRYPTO, "HKDF derive");
    }
done:
    EVP_KDF_CTX_free(ctx); /* cleanses the PRK it held */
    EVP_KDF_free(kdf);
    return rc;
}

/* An unkeyed HMAC-SHA256 context made once: each MAC starts from a copy of it, so neither the HMAC
 * implementation nor SHA-256 is looked up again (OpenSSL 3.0 looks both up through a store shared by
 * every thread on each EVP_MAC_fetch and on each digest-name parameter; measured here 3.0 -> 1.4 us per
 * MAC on one thread, and the vault computes two per request). NULL if it could not be made. */
static EVP_MAC_CTX *hmac_base;
static pthread_once_t hmac_base_once = PTHREAD_ONCE_INIT;

static void hmac_base_make(void)
{
    OSSL_PARAM params[2];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    EVP_MAC *mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
    EVP_MAC_CTX *ctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
    EVP_MAC_free(mac); /* the context keeps its own reference */
    if (ctx != NULL && EVP_MAC_CTX_set_params(ctx, params) != 1) {
        EVP_MAC_CTX_free(ctx);
        ctx = NULL;
    }
    if (ctx == NULL)
        ERR_clear_error(); /* each MAC reports the failure again when it cannot start */
    hmac_base = ctx;
}

ok_err ok_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *msg, size_t msg_len,
                      uint8_t out[OK_SHA256_LEN])
{
    static const uint8_t empty[1] = {0};
    size_t n = 0;

    if (out == NULL || (key == NULL && key_len != 0) || (msg == NULL && msg_len != 0))
        return ok_fail(OK_ERR_INVALID_ARG, "HMAC: NULL argument");
    pthread_once(&hmac_base_once, hmac_base_make);
    EVP_MAC_CTX *ctx = hmac_base != NULL ? EVP_MAC_CTX_dup(hmac_base) : NULL;
    /* An empty key must still be passed (non-NULL): HMAC init without a key fails. */
    ok_err rc = OK_OK;
    if (ctx == NULL || EVP_MAC_init(ctx, key_len ? key : empty, key_len, NULL) != 1 ||
        (msg_len > 0 && EVP_MAC_update(ctx, msg, msg_len) != 1) || EVP_MAC_final(ctx, out, &n, OK_SHA256_LEN) != 1 ||
        n != OK_SHA256_LEN) {
        ok_zeroize(out, OK_SHA256_LEN);
        rc = ok_crypto_fail(OK_ERR_CRYPTO, "HMAC-SHA256");
    }
    EVP_MAC_CTX_free(ctx); /* cleanses the keyed state */
    return rc;
}

ok_err ok_sha256(const uint8_t *msg, size_t len, uint8_t out[OK_SHA256_LEN])
{
    static const uint8_t empty[1] = {0};
    unsigned int n = 0;

    if (out == NULL || (msg == NULL && len != 0))
        return ok_fail(OK_ERR_INVALID_ARG, "SHA-256: NULL argument");
    if (EVP_Digest(len ? msg : empty, len, out, &n, ok_crypto_md(OK_HASH_SHA256), NULL) != 1 || n != OK_SHA256_LEN)
        return ok_crypto_fail(OK_ERR_CRYPTO, "SHA-256");
    return OK_OK;
}

ok_err ok_scrypt(const uint8_t *pass, size_t pass_len, const uint8_t *salt, size_t salt_len, uint64_t n, uint32_t r,
                 uint32_t p, uint8_t *out, size_t out_len)
{
    static const uint8_t empty[1] = {0};
    EVP_KDF *kdf = NULL;
    EVP_KDF_CTX *ctx = NULL;
    OSSL_PARAM params[7];
    uint64_t maxmem = (uint64_t)OK_SCRYPT_MAX_MEM + (1u << 20); /* the n-sized array plus the r*p blocks */
    ok_err rc = OK_OK;

    if (out == NULL || (pass == NULL && pass_len != 0) || (salt == NULL && salt_len != 0))
        return ok_fail(OK_ERR_INVALID_ARG, "scrypt: NULL argument");
    if (out_len == 0 || out_len > 64)
        return ok_fail(OK_ERR_INVALID_ARG, "scrypt: output length %zu not in 1..64", out_len);
    if (n < 2 || (n & (n - 1)) != 0 || r == 0 || p == 0)
        return ok_fail(OK_ERR_INVALID_ARG, "scrypt: N must be a power of two >= 2, r and p >= 1");
    if (p > 16 || r > OK_SCRYPT_MAX_MEM / 128 || n > OK_SCRYPT_MAX_MEM / (128u * (uint64_t)r))
        return ok_fail(OK_ERR_LIMIT, "scrypt: parameters N=%llu r=%u p=%u need too much memory or time",
                       (unsigned long long)n, r, p);

    params[0] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)(pass ? pass : empty), pass_len);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)(salt ? salt : empty), salt_len);
    params[2] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
    params[3] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r);
    params[4] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p);
    params[5] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem);
    params[6] = OSSL_PARAM_construct_end();

    kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_SCRYPT, NULL);
    ctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
    if (ctx == NULL) {
        rc = ok_crypto_fail(OK_ERR_CRYPTO, "scrypt setup");
        goto done;
    }
    if (EVP_KDF_derive(ctx, out, out_len, params) != 1) {
        ok_zeroize(out, out_len);
        rc = ok_crypto_fail(OK_ERR_CRYPTO, "scrypt derive");
    }
done:
    EVP_KDF_CTX_free(ctx); /* cleanses the password copy it held */
    EVP_KDF_free(kdf);
    return rc;
}
