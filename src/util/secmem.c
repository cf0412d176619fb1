/* Secure memory: zeroized allocations for key material, from OpenSSL's secure heap (an mlock'ed arena,
 * also used by OpenSSL for private-key bignums) once a program has set it up with ok_secure_heap_init,
 * from the ordinary heap otherwise; and a zeroize that is never elided. Locking whole arenas once beats
 * mlock/munlock per allocation, which costs two system calls and splits the page's mapping each time,
 * and whose munlock would unlock a page still shared with another live secret. */
#include <openssl/crypto.h>

#include "ownkey/util.h"

void ok_zeroize(void *p, size_t len)
{
    if (p && len)
        OPENSSL_cleanse(p, len);
}

int ok_secure_heap_init(size_t size)
{
    if (CRYPTO_secure_malloc_initialized())
        return 1;
    /* 16-byte minimum blocks; returns 1 when locked, 2 when the arena exists but could not be locked. */
    return CRYPTO_secure_malloc_init(size, 16);
}

void *ok_secure_alloc(size_t len)
{
    return OPENSSL_secure_zalloc(len ? len : 1);
}

void ok_secure_free(void *p, size_t len)
{
    if (p)
        OPENSSL_secure_clear_free(p, len ? len : 1);
}
