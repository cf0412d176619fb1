/* Randomness (OpenSSL's DRBG) and constant-time comparison. Owns nothing else. */
#include <limits.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "crypto/internal.h"

ok_err ok_random(void *out, size_t len)
{
    uint8_t *p = out;

    if (len != 0 && out == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_random: NULL output");
    while (len > 0) {
        int chunk = len > (size_t)INT_MAX ? INT_MAX : (int)len;
        if (RAND_bytes(p, chunk) != 1)
            return ok_crypto_fail(OK_ERR_CRYPTO, "RAND_bytes");
        p += chunk;
        len -= (size_t)chunk;
    }
    return OK_OK;
}

int ok_ct_equal(const void *a, const void *b, size_t n)
{
    if (n == 0)
        return 1;
    return CRYPTO_memcmp(a, b, n) == 0;
}
