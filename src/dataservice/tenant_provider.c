/* The envelope provider over one TK generation of a tenant: wraps a stored object's DEK with AES-KWP
 * (RFC 5649) under the TK, and unwraps it from the objects row's dek_wrap (authoritative: re-keys rewrite
 * it) or, without one, from the header's EDK. Owns the TK copy (secure memory, wiped on destroy); knows
 * nothing of where TKs come from (tenant_keys.c) or of files and rows (objects.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataservice/ds_internal.h"
#include "ownkey/crypto.h"

#define TENANT_WRAP_ALG "A256KWP"
#define MAX_KEY 64                  /* DEKs are 32 bytes; anything up to this wraps */
#define MAX_WRAP (MAX_KEY + 8)      /* KWP output for MAX_KEY bytes */

typedef struct {
    ok_provider base;
    char uuid[DS_UUID_LEN + 1];
    char version[24];               /* the generation in decimal */
    uint8_t *tk;                    /* DS_TK_LEN bytes of secure memory */
    uint8_t dek_wrap[MAX_WRAP];     /* the row's wrap, when given */
    size_t dek_wrap_len;
} tenant_provider;

static ok_err tenant_wrap(ok_provider *p, const uint8_t *key, size_t key_len, ok_edk *out)
{
    tenant_provider *tp = (tenant_provider *)p;
    if (key_len < 1 || key_len > MAX_KEY)
        return ok_fail(OK_ERR_INVALID_ARG, "key of %zu bytes cannot be wrapped by a tenant key", key_len);
    uint8_t ct[MAX_WRAP];
    size_t ct_len = 0;
    OK_GUARD(ok_aes_kwp_wrap(tp->tk, DS_TK_LEN, key, key_len, ct, &ct_len));
    return ok_edk_set(out, DS_TENANT_PROVIDER, tp->uuid, tp->version, TENANT_WRAP_ALG, ct, ct_len);
}

static int tenant_matches(const ok_provider *p, const ok_edk *edk)
{
    const tenant_provider *tp = (const tenant_provider *)p;
    return strcmp(edk->provider, DS_TENANT_PROVIDER) == 0 && strcmp(edk->key_id, tp->uuid) == 0;
}

static ok_err tenant_unwrap(ok_provider *p, const ok_edk *edk, uint8_t *key, size_t key_len)
{
    tenant_provider *tp = (tenant_provider *)p;
    if (!tenant_matches(p, edk))
        return OK_ERR_NO_RECIPIENT;
    const uint8_t *ct = tp->dek_wrap;
    size_t ct_len = tp->dek_wrap_len;
    if (ct_len == 0) {
        /* No row wrap: the header's EDK must be of this generation. */
        if (strcmp(edk->wrap_alg, TENANT_WRAP_ALG) != 0 || strcmp(edk->key_version, tp->version) != 0)
            return ok_fail(OK_ERR_AUTH, "authentication failed: the data key is not wrapped by tenant key "
                                        "generation %s", tp->version);
        ct = edk->ct;
        ct_len = edk->ct_len;
    }
    uint8_t buf[MAX_WRAP];
    size_t n = 0;
    ok_err rc = ct_len >= 16 && ct_len <= sizeof buf ? ok_aes_kwp_unwrap(tp->tk, DS_TK_LEN, ct, ct_len, buf, &n)
                                                      : OK_ERR_AUTH;
    if (rc == OK_OK && n != key_len)
        rc = OK_ERR_AUTH;
    if (rc == OK_OK)
        memcpy(key, buf, key_len);
    ok_zeroize(buf, sizeof buf);
    if (rc == OK_ERR_AUTH)
        return ok_fail(OK_ERR_AUTH, "authentication failed: the data key does not unwrap under tenant key "
                                    "generation %s", tp->version);
    return rc;
}

static ok_err tenant_describe(const ok_provider *p, char *buf, size_t len)
{
    const tenant_provider *tp = (const tenant_provider *)p;
    snprintf(buf, len, DS_TENANT_PROVIDER " tenant=%s generation=%s", tp->uuid, tp->version);
    return OK_OK;
}

static void tenant_destroy(ok_provider *p)
{
    tenant_provider *tp = (tenant_provider *)p;
    ok_secure_free(tp->tk, DS_TK_LEN);
    ok_zeroize(tp->dek_wrap, sizeof tp->dek_wrap);
    free(tp);
}

static const ok_provider_vtable TENANT_VTABLE = {
    .size = sizeof(ok_provider_vtable),
    .wrap = tenant_wrap,
    .unwrap = tenant_unwrap,
    .describe = tenant_describe,
    .matches = tenant_matches,
    .destroy = tenant_destroy,
};

ok_err ds_tenant_provider_new(const char *uuid, uint64_t generation, const uint8_t tk[DS_TK_LEN],
                              const uint8_t *dek_wrap, size_t dek_wrap_len, ok_provider **out)
{
    if (!uuid || strlen(uuid) != DS_UUID_LEN || !tk || !out || (dek_wrap_len && !dek_wrap))
        return ok_fail(OK_ERR_INVALID_ARG, "tenant provider: bad arguments");
    if (dek_wrap_len > MAX_WRAP)
        return ok_fail(OK_ERR_FORMAT, "a stored data key wrap of %zu bytes is too long", dek_wrap_len);
    tenant_provider *tp = calloc(1, sizeof *tp);
    if (!tp)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    tp->tk = ok_secure_alloc(DS_TK_LEN);
    if (!tp->tk) {
        free(tp);
        return ok_fail(OK_ERR_NOMEM, "out of secure memory");
    }
    tp->base.vt = &TENANT_VTABLE;
    memcpy(tp->uuid, uuid, DS_UUID_LEN + 1);
    snprintf(tp->version, sizeof tp->version, "%llu", (unsigned long long)generation);
    memcpy(tp->tk, tk, DS_TK_LEN);
    if (dek_wrap_len)
        memcpy(tp->dek_wrap, dek_wrap, dek_wrap_len);
    tp->dek_wrap_len = dek_wrap_len;
    *out = &tp->base;
    return OK_OK;
}
