/* Private to src/crypto: the ok_pkey layout, the digests and ciphers fetched once, and the helper that turns an
 * OpenSSL failure into an ok_err with a detail message. Nothing outside src/crypto includes this. */
#ifndef OWNKEY_CRYPTO_INTERNAL_H
#define OWNKEY_CRYPTO_INTERNAL_H

#include <pthread.h>

#include <openssl/evp.h>

#include "ownkey/crypto.h"

#define OK_PKEY_POOL 8

struct ok_pkey {
    EVP_PKEY *pkey;
    int is_private;
    /* Contexts set up for one operation and kept for the next (pkey.c): creating one costs OpenSSL 3.0 a
     * method fetch through its shared store, 3 % of an RSA-2048 decryption. Under pool_lock. */
    pthread_mutex_t pool_lock;
    struct {
        EVP_PKEY_CTX *ctx;
        int tag; /* what it was set up for: the user's choice, e.g. OAEP decryption with given hashes */
    } pool[OK_PKEY_POOL];
    size_t pool_len;
};

/* Wraps an EVP_PKEY (RSA, RSA-PSS, or EC on P-256/P-384) into a new ok_pkey, taking ownership of it
 * in every case (it is freed on failure). */
ok_err ok_crypto_pkey_wrap(EVP_PKEY *pkey, ok_pkey **out);
/* A context set up for `tag` from k's pool (the caller owns it), or NULL when there is none. */
EVP_PKEY_CTX *ok_crypto_pkey_pool_take(const ok_pkey *k, int tag);
/* Gives a context set up for `tag` back to k's pool (freed when the pool is full). */
void ok_crypto_pkey_pool_give(const ok_pkey *k, int tag, EVP_PKEY_CTX *ctx);
/* 1 for an RSA or RSA-PSS key, 0 otherwise. */
int ok_crypto_pkey_is_rsa(const ok_pkey *k);
/* The curve of an EC key; OK_ERR_KEY if k is not an EC key on a supported curve. */
ok_err ok_crypto_pkey_curve(const ok_pkey *k, ok_curve *curve);

/* The digest for an ok_hash, or NULL if the value is unknown; fetched once for the process. */
const EVP_MD *ok_crypto_md(ok_hash hash);

typedef enum {
    OK_CIPHER_AES128_GCM,
    OK_CIPHER_AES192_GCM,
    OK_CIPHER_AES256_GCM,
    OK_CIPHER_AES128_ECB,
    OK_CIPHER_AES192_ECB,
    OK_CIPHER_AES256_ECB,
    OK_CIPHER_COUNT
} ok_cipher_id;

/* The cipher for id, fetched once for the process; NULL if id is out of range. */
const EVP_CIPHER *ok_crypto_cipher(ok_cipher_id id);

/* Records "<what>: <OpenSSL reason>" as the detail, clears the OpenSSL error queue and returns err. */
ok_err ok_crypto_fail(ok_err err, const char *what);

#endif
