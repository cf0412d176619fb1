/* Secrets sealed under the vault's master key for other layers (the data service's root key and its
 * customers' credentials), and the seal epoch by which those layers notice that the vault was sealed.
 *
 * A sealed secret is  version(1) || nonce(12) || AES-256-GCM(K, aad) || tag(16)  with K = HKDF(master,
 * "ownkey secrets"), derived per call under the seal read lock and wiped before the call returns: nothing
 * here outlives a seal. The caller's aad names what the secret is ("ownkey-ds-srk", "ownkey-ds-cred|<uuid>"),
 * so a blob moved to another purpose does not open.
 *
 * The seal epoch is the vault's count of unseals (seal.c bumps it): 0 while sealed, and a new value after
 * every unseal, so a layer caching secrets notices a seal followed by an unseal between two calls. Owns
 * no key material at rest. */
#include <stdlib.h>
#include <string.h>

#include "vault/keys_internal.h"

#define SECRET_FORMAT 1
#define SECRET_LABEL "ownkey secrets"
#define SECRET_AAD_PREFIX "ownkey-secret|"
#define SECRET_MAX (1024u * 1024u)
#define SECRET_OVERHEAD (1 + OK_GCM_IV_LEN + OK_GCM_TAG_LEN)
#define AAD_MAX 1024

/* ---- sealed secrets -------------------------------------------------------------------------------- */

/* K = HKDF(master, SECRET_LABEL) into secure memory; the caller holds the seal read lock. */
static ok_err secrets_key(ok_vault *v, uint8_t **key)
{
    ok_err rc;

    *key = ok_secure_alloc(OK_AES256_KEY_LEN);
    if (*key == NULL)
        return ok_fail(OK_ERR_NOMEM, "secure memory");
    rc = ok_hkdf_sha256(NULL, 0, v->master_key, OK_MASTER_KEY_LEN, (const uint8_t *)SECRET_LABEL,
                        strlen(SECRET_LABEL), *key, OK_AES256_KEY_LEN);
    if (rc != OK_OK) {
        ok_secure_free(*key, OK_AES256_KEY_LEN);
        *key = NULL;
    }
    return rc;
}

/* The GCM aad: a fixed prefix and the caller's label. */
static ok_err full_aad(const char *aad, char out[sizeof SECRET_AAD_PREFIX + AAD_MAX], size_t *len)
{
    size_t n = aad ? strlen(aad) : 0;

    if (n == 0 || n > AAD_MAX)
        return ok_fail(OK_ERR_INVALID_ARG, "a sealed secret needs a label of 1 to %d bytes", AAD_MAX);
    memcpy(out, SECRET_AAD_PREFIX, sizeof SECRET_AAD_PREFIX - 1);
    memcpy(out + sizeof SECRET_AAD_PREFIX - 1, aad, n);
    *len = sizeof SECRET_AAD_PREFIX - 1 + n;
    return OK_OK;
}

ok_err ok_vault_wrap_secret(ok_vault *v, const char *aad, const uint8_t *in, size_t len, uint8_t **out,
                            size_t *out_len)
{
    char a[sizeof SECRET_AAD_PREFIX + AAD_MAX];
    size_t a_len = 0;
    uint8_t *key = NULL, *blob;
    ok_err rc;

    if (out == NULL || out_len == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_vault_wrap_secret: NULL argument");
    *out = NULL;
    *out_len = 0;
    if (v == NULL || in == NULL || len == 0 || len > SECRET_MAX)
        return ok_fail(OK_ERR_INVALID_ARG, "a sealed secret has 1 to %u bytes", SECRET_MAX);
    OK_GUARD(full_aad(aad, a, &a_len));
    blob = malloc(len + SECRET_OVERHEAD);
    if (blob == NULL)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    blob[0] = SECRET_FORMAT;
    OK_GUARD_GOTO(rc, ok_random(blob + 1, OK_GCM_IV_LEN), fail);
    OK_GUARD_GOTO(rc, ok_seal_read_begin(v), fail);
    rc = secrets_key(v, &key);
    ok_seal_read_end(v);
    if (rc != OK_OK)
        goto fail;
    rc = ok_aes_gcm_encrypt(key, OK_AES256_KEY_LEN, blob + 1, OK_GCM_IV_LEN, (const uint8_t *)a, a_len, in, len,
                            blob + 1 + OK_GCM_IV_LEN, blob + 1 + OK_GCM_IV_LEN + len);
    ok_secure_free(key, OK_AES256_KEY_LEN);
    if (rc != OK_OK)
        goto fail;
    *out = blob;
    *out_len = len + SECRET_OVERHEAD;
    return OK_OK;
fail:
    ok_zeroize(blob, len + SECRET_OVERHEAD);
    free(blob);
    return rc;
}

ok_err ok_vault_unwrap_secret(ok_vault *v, const char *aad, const uint8_t *in, size_t len, uint8_t **out,
                              size_t *out_len)
{
    char a[sizeof SECRET_AAD_PREFIX + AAD_MAX];
    size_t a_len = 0, n;
    uint8_t *key = NULL, *pt;
    ok_err rc;

    if (out == NULL || out_len == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_vault_unwrap_secret: NULL argument");
    *out = NULL;
    *out_len = 0;
    if (v == NULL || in == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_vault_unwrap_secret: NULL argument");
    OK_GUARD(full_aad(aad, a, &a_len));
    if (len <= SECRET_OVERHEAD || len - SECRET_OVERHEAD > SECRET_MAX || in[0] != SECRET_FORMAT)
        return ok_fail(OK_ERR_FORMAT, "a sealed secret is malformed");
    n = len - SECRET_OVERHEAD;
    pt = ok_secure_alloc(n);
    if (pt == NULL)
        return ok_fail(OK_ERR_NOMEM, "secure memory");
    OK_GUARD_GOTO(rc, ok_seal_read_begin(v), fail);
    rc = secrets_key(v, &key);
    ok_seal_read_end(v);
    if (rc != OK_OK)
        goto fail;
    rc = ok_aes_gcm_decrypt(key, OK_AES256_KEY_LEN, in + 1, OK_GCM_IV_LEN, (const uint8_t *)a, a_len,
                            in + 1 + OK_GCM_IV_LEN, n, in + 1 + OK_GCM_IV_LEN + n, pt);
    ok_secure_free(key, OK_AES256_KEY_LEN);
    if (rc != OK_OK) {
        rc = ok_fail(OK_ERR_AUTH, "a sealed secret does not open under this vault's master key");
        goto fail;
    }
    *out = pt;
    *out_len = n;
    return OK_OK;
fail:
    ok_secure_free(pt, n);
    return rc;
}

/* ---- the seal epoch ------------------------------------------------------------------------------------ */

uint64_t ok_vault_seal_epoch(ok_vault *v)
{
    if (v == NULL || ok_seal_read_begin(v) != OK_OK)
        return 0;
    /* The count only changes under the exclusive seal lock, which the read lock excludes. */
    uint64_t epoch = v->unseal_count;
    ok_seal_read_end(v);
    return epoch;
}
