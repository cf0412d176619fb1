/* The pkcs11 seal kind: the vault's master key wrapped by a key inside a PKCS#11 token (HSM auto-unseal).
 * The token does the wrapping (AES-KWP with an AES key, RSA-OAEP with an RSA key; see the pkcs11
 * provider); the vault stores the URI (never a PIN: pin-value is refused, pin-source names a file read at
 * each login) and the provider's EDK in meta, and unseals by asking the token to unwrap it. The vault
 * layer does not link the providers: the program hands in the provider's open function
 * (ok_vault_set_hsm_opener), and this file calls the provider through its vtable only. Owns no master key
 * handling beyond passing it to ok_seal_install (seal.c). */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ownkey/provider.h"
#include "vault/meta.h"
#include "vault/seal.h"

#define URI_MAX 2048
#define TEXT_MAX 2048
#define WRAPPED_MAX 4096

static _Atomic(ok_vault_hsm_open_fn) hsm_opener;

void ok_vault_set_hsm_opener(ok_vault_hsm_open_fn open)
{
    atomic_store(&hsm_opener, open);
}

static ok_seal_state *state(ok_vault *v)
{
    return v->module_state;
}

ok_err ok_seal_pkcs11_check_uri(const char *uri)
{
    if (uri == NULL || strncmp(uri, "pkcs11:", 7) != 0)
        return ok_fail(OK_ERR_INVALID_ARG, "a PKCS#11 seal needs a \"pkcs11:\" URI");
    if (strlen(uri) > URI_MAX)
        return ok_fail(OK_ERR_INVALID_ARG, "the PKCS#11 URI is longer than %d characters", URI_MAX);
    /* The URI is stored in the vault: a PIN in it would lie in clear beside the data. */
    if (strcasestr(uri, "pin-value") != NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "the PKCS#11 URI of a seal may not hold pin-value (it is stored in the "
                                           "vault); use pin-source=file:PATH");
    return OK_OK;
}

void ok_seal_pkcs11_free_fields(ok_seal_state *st)
{
    free(st->p11_uri);
    free(st->p11_key_id);
    free(st->p11_key_version);
    free(st->p11_alg);
    free(st->p11_wrapped);
    st->p11_uri = st->p11_key_id = st->p11_key_version = st->p11_alg = NULL;
    st->p11_wrapped = NULL;
    st->p11_wrapped_len = 0;
}

static ok_err open_token(const char *uri, ok_provider **p)
{
    ok_vault_hsm_open_fn open = atomic_load(&hsm_opener);

    *p = NULL;
    if (open == NULL)
        return ok_fail(OK_ERR_UNSUPPORTED, "no PKCS#11 support in this program");
    return open(uri, p);
}

static void edk_free(ok_edk *e)
{
    free(e->provider);
    free(e->key_id);
    free(e->key_version);
    free(e->wrap_alg);
    free(e->ct);
    memset(e, 0, sizeof *e);
}

static ok_err put_text(ok_store *s, const char *name, const char *text)
{
    return ok_meta_put_blob(s, name, (const uint8_t *)text, strlen(text));
}

static char *dup_text(const char *s)
{
    return strdup(s != NULL ? s : "");
}

ok_err ok_seal_pkcs11_create(ok_vault *v, const char *uri, const uint8_t *master)
{
    ok_seal_state *st = state(v);
    ok_provider *p = NULL;
    ok_edk edk = {0};
    ok_err rc;

    OK_GUARD(ok_seal_pkcs11_check_uri(uri));
    OK_GUARD(open_token(uri, &p));
    rc = p->vt->wrap(p, master, OK_MASTER_KEY_LEN, &edk);
    p->vt->destroy(p);
    if (rc != OK_OK)
        goto done;
    if (edk.key_id == NULL || edk.wrap_alg == NULL || edk.ct_len == 0 || edk.ct_len > WRAPPED_MAX ||
        strlen(edk.key_id) > TEXT_MAX || strlen(edk.wrap_alg) > TEXT_MAX) {
        rc = ok_fail(OK_ERR_CRYPTO, "the token's wrapped master key is malformed");
        goto done;
    }
    OK_GUARD_GOTO(rc, put_text(v->store, OK_META_PKCS11_URI, uri), done);
    OK_GUARD_GOTO(rc, put_text(v->store, OK_META_PKCS11_KEY_ID, edk.key_id), done);
    if (edk.key_version != NULL && edk.key_version[0] != 0)
        OK_GUARD_GOTO(rc, put_text(v->store, OK_META_PKCS11_KEY_VERSION, edk.key_version), done);
    OK_GUARD_GOTO(rc, put_text(v->store, OK_META_PKCS11_WRAP_ALG, edk.wrap_alg), done);
    OK_GUARD_GOTO(rc, ok_meta_put_blob(v->store, OK_META_PKCS11_WRAPPED, edk.ct, edk.ct_len), done);
    ok_seal_pkcs11_free_fields(st);
    st->p11_uri = dup_text(uri);
    st->p11_key_id = dup_text(edk.key_id);
    st->p11_key_version = dup_text(edk.key_version);
    st->p11_alg = dup_text(edk.wrap_alg);
    st->p11_wrapped = edk.ct;
    st->p11_wrapped_len = edk.ct_len;
    edk.ct = NULL;
    if (!st->p11_uri || !st->p11_key_id || !st->p11_key_version || !st->p11_alg)
        rc = ok_fail(OK_ERR_NOMEM, "out of memory");
done:
    edk_free(&edk);
    return rc;
}

static ok_err get_text(ok_store *s, const char *name, char **out)
{
    uint8_t *b = NULL;
    size_t len = 0;

    OK_GUARD(ok_meta_get_blob_alloc(s, name, TEXT_MAX, &b, &len));
    if (memchr(b, 0, len) != NULL) {
        free(b);
        return ok_fail(OK_ERR_FORMAT, "vault meta \"%s\" holds a NUL byte", name);
    }
    *out = (char *)b; /* NUL-terminated by ok_meta_get_blob_alloc */
    return OK_OK;
}

ok_err ok_seal_pkcs11_load(ok_vault *v)
{
    ok_seal_state *st = state(v);
    ok_err rc;

    ok_seal_pkcs11_free_fields(st);
    OK_GUARD_GOTO(rc, get_text(v->store, OK_META_PKCS11_URI, &st->p11_uri), fail);
    OK_GUARD_GOTO(rc, ok_seal_pkcs11_check_uri(st->p11_uri), fail);
    OK_GUARD_GOTO(rc, get_text(v->store, OK_META_PKCS11_KEY_ID, &st->p11_key_id), fail);
    rc = get_text(v->store, OK_META_PKCS11_KEY_VERSION, &st->p11_key_version);
    if (rc == OK_ERR_NOT_FOUND) {
        ok_err_clear();
        st->p11_key_version = dup_text("");
        rc = st->p11_key_version ? OK_OK : ok_fail(OK_ERR_NOMEM, "out of memory");
    }
    if (rc != OK_OK)
        goto fail;
    OK_GUARD_GOTO(rc, get_text(v->store, OK_META_PKCS11_WRAP_ALG, &st->p11_alg), fail);
    OK_GUARD_GOTO(rc, ok_meta_get_blob_alloc(v->store, OK_META_PKCS11_WRAPPED, WRAPPED_MAX, &st->p11_wrapped,
                                             &st->p11_wrapped_len), fail);
    return OK_OK;
fail:
    ok_seal_pkcs11_free_fields(st);
    return rc;
}

static void remember(ok_seal_state *st, const char *msg)
{
    pthread_mutex_lock(&st->lock);
    snprintf(st->p11_error, sizeof st->p11_error, "%s", msg);
    pthread_mutex_unlock(&st->lock);
}

ok_err ok_seal_pkcs11_unseal(ok_vault *v)
{
    ok_seal_state *st = state(v);
    ok_edk edk = {.provider = OK_PROVIDER_PKCS11, .key_id = st->p11_key_id, .key_version = st->p11_key_version,
                  .wrap_alg = st->p11_alg, .ct = st->p11_wrapped, .ct_len = st->p11_wrapped_len};
    ok_provider *p = NULL;
    uint8_t *master;
    ok_err rc;

    if (st->p11_uri == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "this vault is not sealed with a PKCS#11 token");
    master = ok_secure_alloc(OK_MASTER_KEY_LEN);
    if (master == NULL)
        return ok_fail(OK_ERR_NOMEM, "secure memory");
    rc = open_token(st->p11_uri, &p);
    if (rc == OK_OK) {
        rc = p->vt->unwrap(p, &edk, master, OK_MASTER_KEY_LEN);
        p->vt->destroy(p);
    }
    if (rc == OK_OK) {
        rc = ok_seal_install(v, master); /* frees master */
        master = NULL;
        if (rc == OK_ERR_AUTH)
            rc = ok_fail(OK_ERR_AUTH, "the token's key does not open this vault");
    }
    ok_secure_free(master, OK_MASTER_KEY_LEN);
    if (rc == OK_OK) {
        remember(st, "");
        return OK_OK;
    }
    /* The provider's messages name the token and the cause, never the PIN. */
    char msg[sizeof st->p11_error];
    snprintf(msg, sizeof msg, "HSM unseal failed: %s", ok_err_message()[0] ? ok_err_message() : ok_err_name(rc));
    remember(st, msg);
    return ok_fail(rc, "%s", msg);
}
