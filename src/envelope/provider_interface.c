/* The key provider interface as the envelope uses it: EDK values and the vtable dispatch. The providers
 * themselves live in src/providers; this file knows none of them. */
#include <stdlib.h>
#include <string.h>

#include "ownkey/provider.h"

void ok_edk_clear(ok_edk *edk)
{
    if (!edk)
        return;
    free(edk->provider);
    free(edk->key_id);
    free(edk->key_version);
    free(edk->wrap_alg);
    free(edk->ct);
    memset(edk, 0, sizeof *edk);
}

static char *dup_string(const char *s)
{
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d)
        memcpy(d, s, n + 1);
    return d;
}

ok_err ok_edk_set(ok_edk *edk, const char *provider, const char *key_id, const char *key_version,
                  const char *wrap_alg, const uint8_t *ct, size_t ct_len)
{
    ok_edk_clear(edk);
    edk->provider = dup_string(provider);
    edk->key_id = dup_string(key_id);
    edk->key_version = dup_string(key_version ? key_version : "");
    edk->wrap_alg = dup_string(wrap_alg);
    edk->ct = malloc(ct_len ? ct_len : 1);
    if (!edk->provider || !edk->key_id || !edk->key_version || !edk->wrap_alg || !edk->ct) {
        ok_edk_clear(edk);
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    }
    if (ct_len)
        memcpy(edk->ct, ct, ct_len);
    edk->ct_len = ct_len;
    return OK_OK;
}

ok_err ok_provider_wrap(ok_provider *p, const uint8_t *key, size_t key_len, ok_edk *out)
{
    return p->vt->wrap(p, key, key_len, out);
}

ok_err ok_provider_unwrap(ok_provider *p, const ok_edk *edk, uint8_t *key, size_t key_len)
{
    return p->vt->unwrap(p, edk, key, key_len);
}

ok_err ok_provider_describe(const ok_provider *p, char *buf, size_t len)
{
    return p->vt->describe(p, buf, len);
}

int ok_provider_matches(const ok_provider *p, const ok_edk *edk)
{
    return p->vt->matches(p, edk);
}

void ok_provider_free(ok_provider *p)
{
    if (p)
        p->vt->destroy(p);
}
