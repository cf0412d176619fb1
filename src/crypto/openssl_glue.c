/* Glue shared by the crypto layer's files: turning an OpenSSL failure into an ok_err with a detail
 * message, and mapping ok_hash to EVP_MD. Owns no primitive itself. */
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

const EVP_MD *ok_crypto_md(ok_hash hash)
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
