/* Secure memory: zeroized, mlock'ed allocations for key material, and a zeroize that is never elided. */
#include <stdlib.h>
#include <sys/mman.h>

#include <openssl/crypto.h>

#include "ownkey/util.h"

void ok_zeroize(void *p, size_t len)
{
    if (p && len)
        OPENSSL_cleanse(p, len);
}

void *ok_secure_alloc(size_t len)
{
    if (len == 0)
        len = 1;
    void *p = calloc(1, len);
    if (p)
        (void)mlock(p, len); /* best effort: RLIMIT_MEMLOCK may refuse; the memory is still zeroized on free */
    return p;
}

void ok_secure_free(void *p, size_t len)
{
    if (!p)
        return;
    if (len == 0)
        len = 1;
    OPENSSL_cleanse(p, len);
    (void)munlock(p, len);
    free(p);
}
