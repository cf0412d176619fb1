/* RSA encryption: RSAES-OAEP (any SHA-1/SHA-2 label hash and MGF1 hash, optional label) and
 * RSAES-PKCS1-v1_5. Every decryption failure past argument checks (length, padding, label, anything)
 * returns the same OK_ERR_AUTH with the same detail and zeroized output, so callers cannot tell why.
 *
 * PKCS#1 v1.5 decryption is a padding oracle whenever its outcome is observable; it exists for
 * importing legacy wrapped keys only and must not be offered to online callers. Implicit rejection
 * (OpenSSL >= 3.2) is switched off so that this function keeps its contract (an error, never a
 * synthetic plaintext) on every OpenSSL version. Owns no key objects (see pkey.c). */
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

#include "crypto/internal.h"

#define DECRYPT_FAILED "RSA decryption failed"

/* A context for an operation with an rsaEncryption key (RSA-PSS keys may only sign). */
static ok_err rsa_ctx(const ok_pkey *k, int decrypt, EVP_PKEY_CTX **out)
{
    *out = NULL;
    if (k == NULL || EVP_PKEY_get_base_id(k->pkey) != EVP_PKEY_RSA)
        return ok_fail(OK_ERR_KEY, "RSA encryption needs an RSA (rsaEncryption) key");
    if (decrypt && !k->is_private)
        return ok_fail(OK_ERR_KEY, "RSA decryption needs a private key");
    *out = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
    if (*out == NULL)
        return ok_crypto_fail(OK_ERR_NOMEM, "EVP_PKEY_CTX_new_from_pkey");
    if ((decrypt ? EVP_PKEY_decrypt_init(*out) : EVP_PKEY_encrypt_init(*out)) != 1) {
        EVP_PKEY_CTX_free(*out);
        *out = NULL;
        return ok_crypto_fail(OK_ERR_CRYPTO, "RSA operation setup");
    }
    return OK_OK;
}

static ok_err oaep_setup(EVP_PKEY_CTX *ctx, ok_hash hash, ok_hash mgf_hash, const uint8_t *label, size_t label_len)
{
    const EVP_MD *md = ok_crypto_md(hash);
    const EVP_MD *mgf = ok_crypto_md(mgf_hash);
    void *copy;

    if (md == NULL || mgf == NULL)
        return ok_fail(OK_ERR_UNSUPPORTED, "RSA-OAEP: unknown hash");
    if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) != 1 || EVP_PKEY_CTX_set_rsa_oaep_md(ctx, md) != 1 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, mgf) != 1)
        return ok_crypto_fail(OK_ERR_CRYPTO, "RSA-OAEP setup");
    if (label_len == 0)
        return OK_OK;
    copy = OPENSSL_memdup(label, label_len);
    if (copy == NULL)
        return ok_fail(OK_ERR_NOMEM, "RSA-OAEP label");
    if (EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, copy, (int)label_len) != 1) { /* takes copy on success */
        OPENSSL_free(copy);
        return ok_crypto_fail(OK_ERR_CRYPTO, "RSA-OAEP label");
    }
    return OK_OK;
}

static ok_err pkcs1_setup(EVP_PKEY_CTX *ctx, int decrypt)
{
    unsigned int off = 0;
    OSSL_PARAM params[2];

    if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1)
        return ok_crypto_fail(OK_ERR_CRYPTO, "RSA PKCS#1 v1.5 setup");
    if (decrypt) {
        /* "implicit-rejection" exists from OpenSSL 3.2 on; older providers ignore unknown parameters. */
        params[0] = OSSL_PARAM_construct_uint("implicit-rejection", &off);
        params[1] = OSSL_PARAM_construct_end();
        if (EVP_PKEY_CTX_set_params(ctx, params) != 1)
            return ok_crypto_fail(OK_ERR_CRYPTO, "RSA PKCS#1 v1.5: disabling implicit rejection");
    }
    return OK_OK;
}

static ok_err check_io(const ok_pkey *k, const uint8_t *in, size_t in_len, uint8_t *out, size_t *out_len)
{
    if (out_len != NULL)
        *out_len = 0;
    if (k == NULL || out == NULL || out_len == NULL || (in == NULL && in_len != 0))
        return ok_fail(OK_ERR_INVALID_ARG, "RSA: NULL argument");
    return OK_OK;
}

static ok_err do_encrypt(EVP_PKEY_CTX *ctx, const ok_pkey *k, const uint8_t *in, size_t in_len, uint8_t *out,
                         size_t *out_len)
{
    static const uint8_t empty[1] = {0};
    size_t n = ok_pkey_size(k);

    if (EVP_PKEY_encrypt(ctx, out, &n, in_len ? in : empty, in_len) != 1 || n != ok_pkey_size(k))
        return ok_crypto_fail(OK_ERR_CRYPTO, "RSA encryption");
    *out_len = n;
    return OK_OK;
}

static ok_err do_decrypt(EVP_PKEY_CTX *ctx, const ok_pkey *k, const uint8_t *in, size_t in_len, uint8_t *out,
                         size_t *out_len)
{
    size_t cap = ok_pkey_size(k);
    size_t n = cap;

    /* RFC 8017 7.1.2 / 7.2.2 step 1: a ciphertext of any length but k is a decryption error. */
    if (in_len != cap || EVP_PKEY_decrypt(ctx, out, &n, in, in_len) != 1 || n > cap) {
        ERR_clear_error();
        ok_zeroize(out, cap);
        return ok_fail(OK_ERR_AUTH, DECRYPT_FAILED);
    }
    *out_len = n;
    return OK_OK;
}

ok_err ok_rsa_oaep_encrypt(const ok_pkey *k, ok_hash hash, ok_hash mgf_hash, const uint8_t *label,
                           size_t label_len, const uint8_t *in, size_t in_len, uint8_t *out, size_t *out_len)
{
    EVP_PKEY_CTX *ctx = NULL;
    const EVP_MD *md = ok_crypto_md(hash);
    ok_err rc;

    OK_GUARD(check_io(k, in, in_len, out, out_len));
    if (label == NULL && label_len != 0)
        return ok_fail(OK_ERR_INVALID_ARG, "RSA-OAEP: NULL label");
    if (md == NULL)
        return ok_fail(OK_ERR_UNSUPPORTED, "RSA-OAEP: unknown hash");
    OK_GUARD(rsa_ctx(k, 0, &ctx));
    if (in_len + 2 * (size_t)EVP_MD_get_size(md) + 2 > ok_pkey_size(k)) {
        rc = ok_fail(OK_ERR_INVALID_ARG, "RSA-OAEP: %zu bytes is too long for this key and hash", in_len);
        goto done;
    }
    OK_GUARD_GOTO(rc, oaep_setup(ctx, hash, mgf_hash, label, label_len), done);
    rc = do_encrypt(ctx, k, in, in_len, out, out_len);
done:
    EVP_PKEY_CTX_free(ctx);
    return rc;
}

/* The pool tag of a label-less OAEP decryption context with these hashes. */
#define OAEP_DECRYPT_TAG(hash, mgf) (0x10000 | (int)(hash) << 8 | (int)(mgf))

ok_err ok_rsa_oaep_decrypt(const ok_pkey *k, ok_hash hash, ok_hash mgf_hash, const uint8_t *label,
                           size_t label_len, const uint8_t *in, size_t in_len, uint8_t *out, size_t *out_len)
{
    EVP_PKEY_CTX *ctx = NULL;
    ok_err rc;

    OK_GUARD(check_io(k, in, in_len, out, out_len));
    if (label == NULL && label_len != 0)
        return ok_fail(OK_ERR_INVALID_ARG, "RSA-OAEP: NULL label");
    /* Without a label (the vault's case) a context from the key's pool is used, and kept after a
     * success; one that saw a failure is not kept. */
    int pooled = label_len == 0;
    int tag = OAEP_DECRYPT_TAG(hash, mgf_hash);
    if (pooled && k != NULL && (ctx = ok_crypto_pkey_pool_take(k, tag)) != NULL) {
        rc = do_decrypt(ctx, k, in, in_len, out, out_len);
        goto done;
    }
    OK_GUARD(rsa_ctx(k, 1, &ctx));
    OK_GUARD_GOTO(rc, oaep_setup(ctx, hash, mgf_hash, label, label_len), done);
    rc = do_decrypt(ctx, k, in, in_len, out, out_len);
done:
    if (pooled && rc == OK_OK)
        ok_crypto_pkey_pool_give(k, tag, ctx);
    else
        EVP_PKEY_CTX_free(ctx);
    return rc;
}

ok_err ok_rsa_pkcs1_encrypt(const ok_pkey *k, const uint8_t *in, size_t in_len, uint8_t *out, size_t *out_len)
{
    EVP_PKEY_CTX *ctx = NULL;
    ok_err rc;

    OK_GUARD(check_io(k, in, in_len, out, out_len));
    OK_GUARD(rsa_ctx(k, 0, &ctx));
    if (in_len + 11 > ok_pkey_size(k)) {
        rc = ok_fail(OK_ERR_INVALID_ARG, "RSA PKCS#1 v1.5: %zu bytes is too long for this key", in_len);
        goto done;
    }
    OK_GUARD_GOTO(rc, pkcs1_setup(ctx, 0), done);
    rc = do_encrypt(ctx, k, in, in_len, out, out_len);
done:
    EVP_PKEY_CTX_free(ctx);
    return rc;
}

ok_err ok_rsa_pkcs1_decrypt(const ok_pkey *k, const uint8_t *in, size_t in_len, uint8_t *out, size_t *out_len)
{
    EVP_PKEY_CTX *ctx = NULL;
    ok_err rc;

    OK_GUARD(check_io(k, in, in_len, out, out_len));
    OK_GUARD(rsa_ctx(k, 1, &ctx));
    OK_GUARD_GOTO(rc, pkcs1_setup(ctx, 1), done);
    rc = do_decrypt(ctx, k, in, in_len, out, out_len);
done:
    EVP_PKEY_CTX_free(ctx);
    return rc;
}
