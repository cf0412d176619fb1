/* AES key wrap: KW (RFC 3394) and KWP (RFC 5649), OpenSSL's modes (CRYPTO_128_wrap and friends) over
 * OpenSSL's AES. The length rules are checked here before OpenSSL is called, because OpenSSL's wrap
 * ciphers report success on empty input. Owns no key management; callers decide what is wrapped with
 * what. */
#include <limits.h>

#include <openssl/err.h>
#include <openssl/modes.h>

#include "crypto/internal.h"

/* Well under the modes' limit (2^31 bytes); wrapped output may be up to 15 bytes longer than the input. */
#define WRAP_MAX_INPUT ((size_t)INT_MAX - 16)

static const EVP_CIPHER *ecb_cipher(size_t kek_len)
{
    switch (kek_len) {
    case 16:
        return ok_crypto_cipher(OK_CIPHER_AES128_ECB);
    case 24:
        return ok_crypto_cipher(OK_CIPHER_AES192_ECB);
    case 32:
        return ok_crypto_cipher(OK_CIPHER_AES256_ECB);
    default:
        return NULL;
    }
}

/* The block function OpenSSL's KW and KWP modes (CRYPTO_128_wrap and friends) call: one AES block
 * through an ECB context. OpenSSL 3.0's own wrap ciphers give those modes the table-based AES_encrypt,
 * not AES-NI: 6-7 us for a 32-byte key here against about 1 us this way, and table lookups indexed by
 * key-dependent bytes are what cache-timing attacks read. */
typedef struct {
    EVP_CIPHER_CTX *ctx;
    int failed;
} ecb_key;

static void ecb_block(const unsigned char in[16], unsigned char out[16], const void *key)
{
    ecb_key *k = (ecb_key *)key; /* ours, handed back by the mode as const */
    int n = 0;
    if (EVP_CipherUpdate(k->ctx, out, &n, in, 16) != 1 || n != 16)
        k->failed = 1;
}

/* Runs one wrap or unwrap. Lengths have been checked by the caller. */
static ok_err wrap_run(const uint8_t *kek, size_t kek_len, int pad, int enc, const uint8_t *in,
                       size_t in_len, uint8_t *out, size_t *out_len)
{
    const EVP_CIPHER *cipher = ecb_cipher(kek_len);
    ecb_key k = {0};
    size_t n = 0;
    ok_err rc = OK_OK;

    *out_len = 0;
    if (cipher == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "AES key wrap: KEK must be 16, 24 or 32 bytes, not %zu", kek_len);
    k.ctx = EVP_CIPHER_CTX_new();
    if (k.ctx == NULL)
        return ok_crypto_fail(OK_ERR_NOMEM, "EVP_CIPHER_CTX_new");
    if (EVP_CipherInit_ex(k.ctx, cipher, NULL, kek, NULL, enc) != 1 || EVP_CIPHER_CTX_set_padding(k.ctx, 0) != 1) {
        rc = ok_crypto_fail(OK_ERR_CRYPTO, "AES key wrap setup");
        goto done;
    }
    if (enc)
        n = pad ? CRYPTO_128_wrap_pad(&k, NULL, out, in, in_len, ecb_block)
                : CRYPTO_128_wrap(&k, NULL, out, in, in_len, ecb_block);
    else
        n = pad ? CRYPTO_128_unwrap_pad(&k, NULL, out, in, in_len, ecb_block)
                : CRYPTO_128_unwrap(&k, NULL, out, in, in_len, ecb_block);
    if (k.failed) {
        ok_zeroize(out, enc ? (in_len + 7) / 8 * 8 + 8 : in_len); /* the sizes the caller provides */
        rc = ok_crypto_fail(OK_ERR_CRYPTO, "AES key wrap: block cipher");
    } else if (n == 0 && enc) {
        rc = ok_fail(OK_ERR_CRYPTO, "AES key wrap");
    } else if (n == 0) {
        /* the mode has cleansed out */
        rc = ok_fail(OK_ERR_AUTH, "AES key unwrap: integrity check failed");
    } else {
        *out_len = n;
    }
done:
    EVP_CIPHER_CTX_free(k.ctx);
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
