/* AES key wrap: KW (RFC 3394) and KWP (RFC 5649) via OpenSSL's wrap ciphers. The length rules are
 * checked here before OpenSSL is called, because OpenSSL reports success on empty input. Owns no
 * key management; callers decide what is wrapped with what. */
#include <limits.h>

#include <openssl/err.h>

#include "crypto/internal.h"

/* EVP takes int lengths; wrapped output may be up to 15 bytes longer than the input. */
#define WRAP_MAX_INPUT ((size_t)INT_MAX - 16)

static const EVP_CIPHER *wrap_cipher(size_t kek_len, int pad)
{
    switch (kek_len) {
    case 16:
        return ok_crypto_cipher(pad ? OK_CIPHER_AES128_WRAP_PAD : OK_CIPHER_AES128_WRAP);
    case 24:
        return ok_crypto_cipher(pad ? OK_CIPHER_AES192_WRAP_PAD : OK_CIPHER_AES192_WRAP);
    case 32:
        return ok_crypto_cipher(pad ? OK_CIPHER_AES256_WRAP_PAD : OK_CIPHER_AES256_WRAP);
    default:
        return NULL;
    }
}

/* Runs one wrap or unwrap. Lengths have been checked by the caller. */
static ok_err wrap_run(const uint8_t *kek, size_t kek_len, int pad, int enc, const uint8_t *in,
                       size_t in_len, uint8_t *out, size_t *out_len)
{
    const EVP_CIPHER *cipher = wrap_cipher(kek_len, pad);
    EVP_CIPHER_CTX *ctx = NULL;
    int n = 0, fin = 0;
    ok_err rc = OK_OK;

    *out_len = 0;
    if (cipher == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "AES key wrap: KEK must be 16, 24 or 32 bytes, not %zu", kek_len);
    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        return ok_crypto_fail(OK_ERR_NOMEM, "EVP_CIPHER_CTX_new");
    EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    if (EVP_CipherInit_ex(ctx, cipher, NULL, kek, NULL, enc) != 1) {
        rc = ok_crypto_fail(OK_ERR_CRYPTO, "AES key wrap setup");
        goto done;
    }
    /* The wrap ciphers take the whole input in one update. */
    if (EVP_CipherUpdate(ctx, out, &n, in, (int)in_len) != 1 || n <= 0 ||
        EVP_CipherFinal_ex(ctx, out + n, &fin) != 1) {
        if (enc) {
            rc = ok_crypto_fail(OK_ERR_CRYPTO, "AES key wrap");
        } else {
            ERR_clear_error();
            ok_zeroize(out, in_len - 8);
            rc = ok_fail(OK_ERR_AUTH, "AES key unwrap: integrity check failed");
        }
        goto done;
    }
    *out_len = (size_t)n + (size_t)fin;
done:
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

static ok_err check_args(const uint8_t *kek, const uint8_t *in, size_t in_len, uint8_t *out, size_t *out_len)
{
    if (out_len != NULL)
        *out_len = 0;
    if (kek == NULL || out == NULL || out_len == NULL || (in == NULL && in_len != 0))
        return ok_fail(OK_ERR_INVALID_ARG, "AES key wrap: NULL argument");
    if (in_len > WRAP_MAX_INPUT)
        return ok_fail(OK_ERR_LIMIT, "AES key wrap: input of %zu bytes is too long", in_len);
    return OK_OK;
}

ok_err ok_aes_kw_wrap(const uint8_t *kek, size_t kek_len, const uint8_t *in, size_t in_len,
                      uint8_t *out, size_t *out_len)
{
    OK_GUARD(check_args(kek, in, in_len, out, out_len));
    if (in_len < 16 || in_len % 8 != 0)
        return ok_fail(OK_ERR_INVALID_ARG, "AES-KW: input must be a multiple of 8 bytes, at least 16 (got %zu)",
                       in_len);
    return wrap_run(kek, kek_len, 0, 1, in, in_len, out, out_len);
}

ok_err ok_aes_kw_unwrap(const uint8_t *kek, size_t kek_len, const uint8_t *in, size_t in_len,
                        uint8_t *out, size_t *out_len)
{
    OK_GUARD(check_args(kek, in, in_len, out, out_len));
    /* The smallest valid KW output wraps 16 bytes: 24 bytes. */
    if (in_len < 24 || in_len % 8 != 0)
        return ok_fail(OK_ERR_FORMAT, "AES-KW: wrapped key must be a multiple of 8 bytes, at least 24 (got %zu)",
                       in_len);
    return wrap_run(kek, kek_len, 0, 0, in, in_len, out, out_len);
}

ok_err ok_aes_kwp_wrap(const uint8_t *kek, size_t kek_len, const uint8_t *in, size_t in_len,
                       uint8_t *out, size_t *out_len)
{
    OK_GUARD(check_args(kek, in, in_len, out, out_len));
    if (in_len == 0)
        return ok_fail(OK_ERR_INVALID_ARG, "AES-KWP: input must not be empty");
    return wrap_run(kek, kek_len, 1, 1, in, in_len, out, out_len);
}

ok_err ok_aes_kwp_unwrap(const uint8_t *kek, size_t kek_len, const uint8_t *in, size_t in_len,
                         uint8_t *out, size_t *out_len)
{
    OK_GUARD(check_args(kek, in, in_len, out, out_len));
    if (in_len < 16 || in_len % 8 != 0)
        return ok_fail(OK_ERR_FORMAT, "AES-KWP: wrapped key must be a multiple of 8 bytes, at least 16 (got %zu)",
                       in_len);
    return wrap_run(kek, kek_len, 1, 0, in, in_len, out, out_len);
}
