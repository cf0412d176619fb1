/* Glue shared by the crypto layer's files: turning an OpenSSL failure into an ok_err with a detail
 * message, and the digests and ciphers the layer uses, fetched from OpenSSL's providers once. Owns no
 * primitive itself. */
#include <pthread.h>

#include <openssl/err.h>

#include "crypto/internal.h"

ok_err ok_crypto_fail(ok_err err, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    char reason[256];

    if (e != 0) {
        ERR_error_string_n(e, reason, sizeof reason);
        ERR_clear_error();
        return ok_fail(err, "%s: %s", what, reason);
    }
    return ok_fail(err, "%s", what);
}

/* Digests and ciphers fetched once for the process. OpenSSL 3.0 looks a legacy EVP_sha256() or
 * EVP_aes_256_gcm() up again in its shared method store on every init; an explicitly fetched object is
 * used as it is. Each entry falls back to the legacy object if the fetch fails, so that the failure is
 * reported where it is used. The fetched objects stay referenced from here until exit. */
static const char *const md_names[] = {
    [OK_HASH_SHA1] = "SHA1",     [OK_HASH_SHA224] = "SHA2-224", [OK_HASH_SHA256] = "SHA2-256",
    [OK_HASH_SHA384] = "SHA2-384", [OK_HASH_SHA512] = "SHA2-512",
};
#define MD_COUNT (sizeof md_names / sizeof md_names[0])

static const char *const cipher_names[OK_CIPHER_COUNT] = {
    [OK_CIPHER_AES128_GCM] = "AES-128-GCM", [OK_CIPHER_AES192_GCM] = "AES-192-GCM",
    [OK_CIPHER_AES256_GCM] = "AES-256-GCM", [OK_CIPHER_AES128_ECB] = "AES-128-ECB",
    [OK_CIPHER_AES192_ECB] = "AES-192-ECB", [OK_CIPHER_AES256_ECB] = "AES-256-ECB",
};

static const EVP_MD *mds[MD_COUNT];
static const EVP_CIPHER *ciphers[OK_CIPHER_COUNT];
static pthread_once_t fetched_once = PTHREAD_ONCE_INIT;

static const EVP_MD *legacy_md(ok_hash hash)
{
    switch (hash) {
    case OK_HASH_SHA1:
        return EVP_sha1();
    case OK_HASH_SHA224:
        return EVP_sha224();
    case OK_HASH_SHA256:
        return EVP_sha256();
    case OK_HASH_SHA384:
        return EVP_sha384();
    case OK_HASH_SHA512:
        return EVP_sha512();
    }
    return NULL;
}

static const EVP_CIPHER *legacy_cipher(ok_cipher_id id)
{
    switch (id) {
    case OK_CIPHER_AES128_GCM:
        return EVP_aes_128_gcm();
    case OK_CIPHER_AES192_GCM:
        return EVP_aes_192_gcm();
    case OK_CIPHER_AES256_GCM:
        return EVP_aes_256_gcm();
    case OK_CIPHER_AES128_ECB:
        return EVP_aes_128_ecb();
    case OK_CIPHER_AES192_ECB:
        return EVP_aes_192_ecb();
    case OK_CIPHER_AES256_ECB:
        return EVP_aes_256_ecb();
    case OK_CIPHER_COUNT:
        break;
    }
    return NULL;
}

static void fetch_all(void)
{
    for (size_t i = 0; i < MD_COUNT; i++) {
        if (md_names[i] == NULL)
            continue;
        EVP_MD *md = EVP_MD_fetch(NULL, md_names[i], NULL);
        mds[i] = md != NULL ? md : legacy_md((ok_hash)i);
    }
    for (size_t i = 0; i < OK_CIPHER_COUNT; i++) {
        EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, cipher_names[i], NULL);
        ciphers[i] = c != NULL ? c : legacy_cipher((ok_cipher_id)i);
    }
    ERR_clear_error(); /* a failed fetch is reported again where the legacy object fails */
}

const EVP_MD *ok_crypto_md(ok_hash hash)
{
    if ((size_t)hash >= MD_COUNT || md_names[hash] == NULL)
        return NULL;
    pthread_once(&fetched_once, fetch_all);
    return mds[hash];
}

const EVP_CIPHER *ok_crypto_cipher(ok_cipher_id id)
{
    if ((size_t)id >= OK_CIPHER_COUNT)
        return NULL;
    pthread_once(&fetched_once, fetch_all);
    return ciphers[id];
}
