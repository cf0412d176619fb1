/* AES-GCM: one-shot encrypt/decrypt and the incremental ok_gcm context whose key schedule is set once
 * and reused for every message (only the IV changes per message). Owns no other AEAD and no framing. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "crypto/internal.h"

/* OpenSSL 3.0's GCM provider keeps the IV in a 128-byte buffer and refuses longer IVs. */
#define GCM_IV_MAX 128u
/* SP 800-38D: at most 2^39 - 256 bits of plaintext per invocation. */
#define GCM_MAX_MESSAGE ((UINT64_C(1) << 36) - 32)
/* EVP takes int lengths; feed large inputs in pieces. */
#define EVP_CHUNK ((size_t)1 << 30)

typedef enum { GCM_IDLE, GCM_AAD, GCM_DATA } gcm_state;

struct ok_gcm {
    EVP_CIPHER_CTX *ctx;
    size_t iv_len;      /* IV length currently configured in ctx */
    uint64_t msg_len;   /* bytes processed for the current message */
    int encrypt;
    gcm_state state;
};

static const EVP_CIPHER *gcm_cipher(size_t key_len)
{
    switch (key_len) {
    case 16:
        return ok_crypto_cipher(OK_CIPHER_AES128_GCM);
    case 24:
        return ok_crypto_cipher(OK_CIPHER_AES192_GCM);
    case 32:
        return ok_crypto_cipher(OK_CIPHER_AES256_GCM);
    default:
        return NULL;
    }
}

ok_err ok_gcm_new(ok_gcm **out, const uint8_t *key, size_t key_len)
{
    const EVP_CIPHER *cipher = gcm_cipher(key_len);
    ok_gcm *g;

    if (out == NULL || key == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_gcm_new: NULL argument");
    *out = NULL;
    if (cipher == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "AES-GCM key must be 16, 24 or 32 bytes, not %zu", key_len);
    g = calloc(1, sizeof *g);
    if (g == NULL)
        return ok_fail(OK_ERR_NOMEM, "ok_gcm_new");
    g->ctx = EVP_CIPHER_CTX_new();
    if (g->ctx == NULL) {
        free(g);
        return ok_crypto_fail(OK_ERR_NOMEM, "EVP_CIPHER_CTX_new");
    }
    if (EVP_CipherInit_ex(g->ctx, cipher, NULL, key, NULL, 1) != 1) {
        ok_gcm_free(g);
        return ok_crypto_fail(OK_ERR_CRYPTO, "AES-GCM key setup");
    }
    g->iv_len = OK_GCM_IV_LEN;
    g->state = GCM_IDLE;
    *out = g;
    return OK_OK;
}

void ok_gcm_free(ok_gcm *g)
{
    if (g == NULL)
        return;
    EVP_CIPHER_CTX_free(g->ctx); /* cleanses the key schedule */
    ok_zeroize(g, sizeof *g);
    free(g);
}

ok_err ok_gcm_begin(ok_gcm *g, int encrypt, const uint8_t *iv, size_t iv_len)
{
    if (g == NULL || iv == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_gcm_begin: NULL argument");
    g->state = GCM_IDLE;
    if (iv_len == 0)
        return ok_fail(OK_ERR_INVALID_ARG, "AES-GCM IV must not be empty");
    if (iv_len > GCM_IV_MAX)
        return ok_fail(OK_ERR_UNSUPPORTED, "AES-GCM IV of %zu bytes (at most %u supported)", iv_len, GCM_IV_MAX);
    if (iv_len != g->iv_len) {
        if (EVP_CIPHER_CTX_ctrl(g->ctx, EVP_CTRL_GCM_SET_IVLEN, (int)iv_len, NULL) <= 0)
            return ok_crypto_fail(OK_ERR_UNSUPPORTED, "AES-GCM IV length");
        g->iv_len = iv_len;
    }
    /* No key: the schedule from ok_gcm_new stays; only the IV and the direction change. */
    if (EVP_CipherInit_ex(g->ctx, NULL, NULL, NULL, iv, encrypt ? 1 : 0) != 1)
        return ok_crypto_fail(OK_ERR_CRYPTO, "AES-GCM IV setup");
    g->encrypt = encrypt ? 1 : 0;
    g->msg_len = 0;
    g->state = GCM_AAD;
    return OK_OK;
}

ok_err ok_gcm_aad(ok_gcm *g, const uint8_t *aad, size_t len)
{
    if (g == NULL || (aad == NULL && len != 0))
        return ok_fail(OK_ERR_INVALID_ARG, "ok_gcm_aad: NULL argument");
    if (g->state != GCM_AAD) {
        g->state = GCM_IDLE;
        return ok_fail(OK_ERR_INVALID_ARG, "AES-GCM: AAD must come after begin and before any data");
    }
    while (len > 0) {
        size_t chunk = len > EVP_CHUNK ? EVP_CHUNK : len;
        int outl = 0;
        if (EVP_CipherUpdate(g->ctx, NULL, &outl, aad, (int)chunk) != 1) {
            g->state = GCM_IDLE;
            return ok_crypto_fail(OK_ERR_CRYPTO, "AES-GCM AAD");
        }
        aad += chunk;
        len -= chunk;
    }
    return OK_OK;
}

ok_err ok_gcm_update(ok_gcm *g, const uint8_t *in, size_t len, uint8_t *out)
{
    if (g == NULL || (len != 0 && (in == NULL || out == NULL)))
        return ok_fail(OK_ERR_INVALID_ARG, "ok_gcm_update: NULL argument");
    if (g->state == GCM_IDLE)
        return ok_fail(OK_ERR_INVALID_ARG, "AES-GCM: update without begin");
    if (len > GCM_MAX_MESSAGE - g->msg_len) {
        g->state = GCM_IDLE;
        return ok_fail(OK_ERR_LIMIT, "AES-GCM message longer than 2^36 - 32 bytes");
    }
    g->state = GCM_DATA;
    while (len > 0) {
        size_t chunk = len > EVP_CHUNK ? EVP_CHUNK : len;
        int outl = 0;
        if (EVP_CipherUpdate(g->ctx, out, &outl, in, (int)chunk) != 1 || (size_t)outl != chunk) {
            g->state = GCM_IDLE;
            return ok_crypto_fail(OK_ERR_CRYPTO, "AES-GCM update");
        }
        g->msg_len += chunk;
        in += chunk;
        out += chunk;
        len -= chunk;
    }
    return OK_OK;
}

ok_err ok_gcm_finish_encrypt(ok_gcm *g, uint8_t tag[OK_GCM_TAG_LEN])
{
    uint8_t none[16];
    int outl = 0;

    if (g == NULL || tag == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_gcm_finish_encrypt: NULL argument");
    if (g->state == GCM_IDLE || !g->encrypt) {
        g->state = GCM_IDLE;
        return ok_fail(OK_ERR_INVALID_ARG, "AES-GCM: finish_encrypt without an encryption in progress");
    }
    g->state = GCM_IDLE;
    if (EVP_CipherFinal_ex(g->ctx, none, &outl) != 1 ||
        EVP_CIPHER_CTX_ctrl(g->ctx, EVP_CTRL_GCM_GET_TAG, OK_GCM_TAG_LEN, tag) <= 0) {
        ok_zeroize(tag, OK_GCM_TAG_LEN);
        return ok_crypto_fail(OK_ERR_CRYPTO, "AES-GCM final");
    }
    return OK_OK;
}

ok_err ok_gcm_finish_decrypt(ok_gcm *g, const uint8_t tag[OK_GCM_TAG_LEN])
{
    uint8_t expected[OK_GCM_TAG_LEN];
    uint8_t none[16];
    int outl = 0;
    int ok;

    if (g == NULL || tag == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_gcm_finish_decrypt: NULL argument");
    if (g->state == GCM_IDLE || g->encrypt) {
        g->state = GCM_IDLE;
        return ok_fail(OK_ERR_INVALID_ARG, "AES-GCM: finish_decrypt without a decryption in progress");
    }
    g->state = GCM_IDLE;
    memcpy(expected, tag, sizeof expected); /* the ctrl takes a non-const pointer */
    if (EVP_CIPHER_CTX_ctrl(g->ctx, EVP_CTRL_GCM_SET_TAG, OK_GCM_TAG_LEN, expected) <= 0)
        return ok_crypto_fail(OK_ERR_CRYPTO, "AES-GCM set tag");
    ok = EVP_CipherFinal_ex(g->ctx, none, &outl) == 1;
    if (!ok) {
        ERR_clear_error();
        return ok_fail(OK_ERR_AUTH, "AES-GCM: authentication failed");
    }
    return OK_OK;
}

ok_err ok_gcm_seal(ok_gcm *g, const uint8_t iv[OK_GCM_IV_LEN], const uint8_t *aad, size_t aad_len,
                   const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[OK_GCM_TAG_LEN])
{
    ok_err rc;

    OK_GUARD_GOTO(rc, ok_gcm_begin(g, 1, iv, OK_GCM_IV_LEN), fail);
    OK_GUARD_GOTO(rc, ok_gcm_aad(g, aad, aad_len), fail);
    OK_GUARD_GOTO(rc, ok_gcm_update(g, in, len, out), fail);
    OK_GUARD_GOTO(rc, ok_gcm_finish_encrypt(g, tag), fail);
    return OK_OK;
fail:
    if (tag != NULL)
        ok_zeroize(tag, OK_GCM_TAG_LEN);
    return rc;
}

ok_err ok_gcm_open(ok_gcm *g, const uint8_t iv[OK_GCM_IV_LEN], const uint8_t *aad, size_t aad_len,
                   const uint8_t *in, size_t len, const uint8_t tag[OK_GCM_TAG_LEN], uint8_t *out)
{
    int wrote = 0;
    ok_err rc;

    OK_GUARD_GOTO(rc, ok_gcm_begin(g, 0, iv, OK_GCM_IV_LEN), fail);
    OK_GUARD_GOTO(rc, ok_gcm_aad(g, aad, aad_len), fail);
    wrote = 1;
    OK_GUARD_GOTO(rc, ok_gcm_update(g, in, len, out), fail);
    OK_GUARD_GOTO(rc, ok_gcm_finish_decrypt(g, tag), fail);
    return OK_OK;
fail:
    if (wrote && out != NULL)
        ok_zeroize(out, len); /* never release unauthenticated plaintext */
    return rc;
}

ok_err ok_aes_gcm_encrypt(const uint8_t *key, size_t key_len, const uint8_t *iv, size_t iv_len,
                          const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t pt_len,
                          uint8_t *ct, uint8_t tag[OK_GCM_TAG_LEN])
{
    ok_gcm *g = NULL;
    ok_err rc;

    OK_GUARD_GOTO(rc, ok_gcm_new(&g, key, key_len), done);
    OK_GUARD_GOTO(rc, ok_gcm_begin(g, 1, iv, iv_len), done);
    OK_GUARD_GOTO(rc, ok_gcm_aad(g, aad, aad_len), done);
    OK_GUARD_GOTO(rc, ok_gcm_update(g, pt, pt_len, ct), done);
    OK_GUARD_GOTO(rc, ok_gcm_finish_encrypt(g, tag), done);
done:
    if (rc != OK_OK && tag != NULL)
        ok_zeroize(tag, OK_GCM_TAG_LEN);
    ok_gcm_free(g);
    return rc;
}

ok_err ok_aes_gcm_decrypt(const uint8_t *key, size_t key_len, const uint8_t *iv, size_t iv_len,
                          const uint8_t *aad, size_t aad_len, const uint8_t *ct, size_t ct_len,
                          const uint8_t tag[OK_GCM_TAG_LEN], uint8_t *pt)
{
    ok_gcm *g = NULL;
    int wrote = 0;
    ok_err rc;

    OK_GUARD_GOTO(rc, ok_gcm_new(&g, key, key_len), done);
    OK_GUARD_GOTO(rc, ok_gcm_begin(g, 0, iv, iv_len), done);
    OK_GUARD_GOTO(rc, ok_gcm_aad(g, aad, aad_len), done);
    wrote = 1;
    OK_GUARD_GOTO(rc, ok_gcm_update(g, ct, ct_len, pt), done);
    OK_GUARD_GOTO(rc, ok_gcm_finish_decrypt(g, tag), done);
done:
    if (rc != OK_OK && wrote && pt != NULL)
        ok_zeroize(pt, ct_len);
    ok_gcm_free(g);
    return rc;
}
