/* The root keys of the data service, which wrap tenant keys:
 *   the SRK   32 random bytes made on first use, stored sealed under the vault's master key (ds_meta 'srk',
 *             ok_vault_wrap_secret), unsealed on demand and cached in secure memory until the vault's seal
 *             epoch changes; its layer is AES-256-GCM with aad "ownkey-tk|<uuid>|<generation>" (a fixed
 *             64-byte blob);
 *   customer  a key in the customer's vault, reached through the `vault` provider with the credential the
 *             customer gave (sealed under the master key per tenant), whose failures are named as lock
 *             reasons from the code the customer's vault answered; or a key in a PKCS#11 token or on a
 *             KMIP server (hyok_keys.c opens those and names their failures), used the same way.
 * Every call to a root key counts in ds->root_calls. Owns no cache of tenant keys and no lock state
 * (tenant_keys.c, tenant_lock.c). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataservice/ds_keys.h"
#include "ownkey/vault_client.h"

#define SRK_MAGIC "oTK1"
#define CRED_MAGIC "OKC1"
#define CRED_TOKEN_MAX 8192
#define CRED_CA_MAX (256u * 1024u)
#define CONNECT_TIMEOUT_MS 5000
#define REQUEST_TIMEOUT_MS 20000

void ds_wrapped_tk_clear(ds_wrapped_tk *w)
{
    if (w == NULL)
        return;
    ok_edk_clear(&w->cust);
    ok_zeroize(w, sizeof *w);
}

/* ---- the SRK ----------------------------------------------------------------------------------------------- */

ok_err ds_root_init(ok_ds *ds)
{
    ds_keys *k = ds->keys;
    if (pthread_mutex_init(&k->srk_lock, NULL) != 0)
        return ok_fail(OK_ERR_NOMEM, "cannot create the SRK lock");
    return OK_OK;
}

void ds_root_wipe(ok_ds *ds)
{
    ds_keys *k = ds->keys;
    pthread_mutex_lock(&k->srk_lock);
    ok_secure_free(k->srk, DS_SRK_LEN);
    k->srk = NULL;
    k->srk_epoch = 0;
    pthread_mutex_unlock(&k->srk_lock);
}

void ds_root_free(ok_ds *ds)
{
    ds_root_wipe(ds);
    pthread_mutex_destroy(&ds->keys->srk_lock);
}

typedef struct {
    uint8_t *blob;
    size_t len;
} blob_row;

static ok_err blob_cb(void *ctx, const ok_val *c, size_t n)
{
    blob_row *r = ctx;
    if (n != 1 || c[0].type != OK_VAL_BLOB || c[0].len == 0)
        return ok_fail(OK_ERR_FORMAT, "data.db: the sealed SRK is malformed");
    free(r->blob);
    r->blob = malloc(c[0].len);
    if (r->blob == NULL)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    memcpy(r->blob, c[0].b, c[0].len);
    r->len = c[0].len;
    return OK_OK;
}

static ok_err srk_read(ok_ds *ds, blob_row *r)
{
    return ds->store->vt->query(ds->store, "SELECT value FROM ds_meta WHERE name = 'srk'", NULL, 0, blob_cb, r);
}

/* The first use ever: 32 random bytes, sealed, stored unless another thread was first. */
static ok_err srk_create(ok_ds *ds)
{
    uint8_t *srk = ok_secure_alloc(DS_SRK_LEN), *sealed = NULL;
    size_t sealed_len = 0;
    ok_err rc;

    if (srk == NULL)
        return ok_fail(OK_ERR_NOMEM, "secure memory");
    OK_GUARD_GOTO(rc, ok_random(srk, DS_SRK_LEN), done);
    OK_GUARD_GOTO(rc, ok_vault_wrap_secret(ds->vault, DS_SRK_AAD, srk, DS_SRK_LEN, &sealed, &sealed_len), done);
    ok_val p[1] = {OK_VBLOB(sealed, sealed_len)};
    rc = ds->store->vt->exec(ds->store, "INSERT OR IGNORE INTO ds_meta(name, value) VALUES('srk', ?)", p, 1, NULL);
done:
    ok_secure_free(srk, DS_SRK_LEN);
    free(sealed);
    return rc;
}

/* The SRK in k->srk for the current seal epoch; the caller holds srk_lock. */
static ok_err srk_ready(ok_ds *ds)
{
    ds_keys *k = ds->keys;
    uint64_t epoch = ok_vault_seal_epoch(ds->vault);
    blob_row row = {NULL, 0};
    uint8_t *srk = NULL;
    size_t n = 0;
    ok_err rc;

    if (epoch == 0)
        return ok_fail(OK_ERR_SEALED, "the vault is sealed");
    if (k->srk != NULL && k->srk_epoch == epoch)
        return OK_OK;
    ok_secure_free(k->srk, DS_SRK_LEN);
    k->srk = NULL;
    OK_GUARD_GOTO(rc, srk_read(ds, &row), done);
    if (row.blob == NULL) {
        OK_GUARD_GOTO(rc, srk_create(ds), done);
        OK_GUARD_GOTO(rc, srk_read(ds, &row), done);
        if (row.blob == NULL) {
            rc = ok_fail(OK_ERR_IO, "data.db: the SRK was not stored");
            goto done;
        }
    }
    atomic_fetch_add(&ds->root_calls, 1);
    OK_GUARD_GOTO(rc, ok_vault_unwrap_secret(ds->vault, DS_SRK_AAD, row.blob, row.len, &srk, &n), done);
    if (n != DS_SRK_LEN) {
        ok_secure_free(srk, n);
        rc = ok_fail(OK_ERR_FORMAT, "data.db: the SRK has %zu bytes", n);
        goto done;
    }
    k->srk = srk;
    k->srk_epoch = epoch;
done:
    free(row.blob);
    return rc;
}

static void tk_aad(const char *uuid, uint64_t generation, char out[96])
{
    snprintf(out, 96, "ownkey-tk|%s|%llu", uuid, (unsigned long long)generation);
}

static ok_err srk_wrap(ok_ds *ds, const char *uuid, uint64_t generation, const uint8_t tk[DS_TK_LEN],
                       uint8_t blob[DS_SRK_BLOB_LEN])
{
    ds_keys *k = ds->keys;
    char aad[96];
    ok_err rc;

    tk_aad(uuid, generation, aad);
    memcpy(blob, SRK_MAGIC, 4);
    OK_GUARD(ok_random(blob + 4, OK_GCM_IV_LEN));
    pthread_mutex_lock(&k->srk_lock);
    rc = srk_ready(ds);
    if (rc == OK_OK) {
        atomic_fetch_add(&ds->root_calls, 1);
        rc = ok_aes_gcm_encrypt(k->srk, DS_SRK_LEN, blob + 4, OK_GCM_IV_LEN, (const uint8_t *)aad, strlen(aad), tk,
                                DS_TK_LEN, blob + 4 + OK_GCM_IV_LEN, blob + 4 + OK_GCM_IV_LEN + DS_TK_LEN);
    }
    pthread_mutex_unlock(&k->srk_lock);
    return rc;
}

static ok_err srk_unwrap(ok_ds *ds, const char *uuid, uint64_t generation, const uint8_t *blob, size_t len,
                         uint8_t tk[DS_TK_LEN])
{
    ds_keys *k = ds->keys;
    char aad[96];
    ok_err rc;

    if (len != DS_SRK_BLOB_LEN || memcmp(blob, SRK_MAGIC, 4) != 0)
        return ok_fail(OK_ERR_AUTH, "the service layer of the tenant key does not open");
    tk_aad(uuid, generation, aad);
    pthread_mutex_lock(&k->srk_lock);
    rc = srk_ready(ds);
    if (rc == OK_OK) {
        atomic_fetch_add(&ds->root_calls, 1);
        rc = ok_aes_gcm_decrypt(k->srk, DS_SRK_LEN, blob + 4, OK_GCM_IV_LEN, (const uint8_t *)aad, strlen(aad),
                                blob + 4 + OK_GCM_IV_LEN, DS_TK_LEN, blob + 4 + OK_GCM_IV_LEN + DS_TK_LEN, tk);
        if (rc != OK_OK)
            rc = ok_fail(OK_ERR_AUTH, "the service layer of the tenant key does not open");
    }
    pthread_mutex_unlock(&k->srk_lock);
    if (rc != OK_OK)
        ok_zeroize(tk, DS_TK_LEN);
    return rc;
}

/* ---- the customer's key: failures named --------------------------------------------------------------------- */

static void reason_set(ds_reason *why, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void reason_set(ds_reason *why, const char *code, const char *fmt, ...)
{
    va_list ap;
    if (why == NULL)
        return;
    snprintf(why->code, sizeof why->code, "%s", code);
    va_start(ap, fmt);
    vsnprintf(why->text, sizeof why->text, fmt, ap);
    va_end(ap);
}

/* Names a failed call to the customer's vault by what it answered (ownkeyd and Azure alike): 404
 * KeyNotFound (deleted, purged, or no such version), 403 Forbidden (a disabled key or an expired one for
 * wrap, or a permission taken away: the message tells which), 401 (token revoked or expired), 503
 * VaultSealed, no answer (connection, TLS, timeout) or a 5xx: VaultUnreachable; anything else (a 400: the
 * ciphertext does not unwrap, a malformed answer): KeyInvalid. */
static void classify(ok_err rc, const char *what, const char *url, ds_reason *why)
{
    char code[64];
    long status = 0;
    const char *msg = ok_err_message();

    ok_vault_provider_last_error(code, sizeof code, &status);
    if (rc == OK_ERR_NOMEM) {
        reason_set(why, "KeyInvalid", "%s of %s failed: out of memory", what, url);
    } else if (status == 0 && rc == OK_ERR_IO) {
        reason_set(why, "VaultUnreachable", "cannot reach the customer's vault for %s: %s", url, msg);
    } else if (status == 404 || strcmp(code, "KeyNotFound") == 0) {
        reason_set(why, "KeyNotFound", "customer key %s was not found (deleted?): %s", url, msg);
    } else if (status == 403 && strstr(msg, "disabled") != NULL) {
        reason_set(why, "KeyDisabled", "customer key %s is disabled: %s", url, msg);
    } else if (status == 403 && strstr(msg, "expired") != NULL) {
        reason_set(why, "KeyExpired", "customer key %s has expired: %s", url, msg);
    } else if (status == 403 || strcmp(code, "Forbidden") == 0) {
        reason_set(why, "Forbidden", "the customer's vault refused %s on %s: %s", what, url, msg);
    } else if (status == 401) {
        reason_set(why, "Forbidden", "the customer's vault no longer accepts the token for %s: %s", url, msg);
    } else if (status == 503 || strcmp(code, "VaultSealed") == 0) {
        reason_set(why, "VaultSealed", "the customer's vault for %s is sealed: %s", url, msg);
    } else if (status >= 500) {
        reason_set(why, "VaultUnreachable", "the customer's vault failed %s for %s: %s", what, url, msg);
    } else {
        reason_set(why, "KeyInvalid", "%s of %s failed: %s", what, url, msg);
    }
}

/* Which kind of customer key a provider is: the data service opens only these three. */
static ds_cust_kind prov_kind(const ok_provider *prov)
{
    if (ok_kmip_provider_uid(prov) != NULL)
        return DS_CUST_KMIP;
    return ok_vault_provider_key_url(prov)[0] != '\0' ? DS_CUST_VAULT : DS_CUST_PKCS11;
}

/* The key's name for messages: a vault key's URL, else the provider's own description (no PIN). */
static const char *prov_name(const ok_provider *prov, char *buf, size_t cap)
{
    if (prov_kind(prov) == DS_CUST_VAULT)
        return ok_vault_provider_key_url(prov);
    if (ok_provider_describe(prov, buf, cap) != OK_OK)
        snprintf(buf, cap, "(customer key)");
    return buf;
}

/* Counts a customer call as root calls: the requests a vault provider sent, else one. */
static void count_calls(ok_ds *ds, const ok_provider *prov, uint64_t before)
{
    if (prov_kind(prov) == DS_CUST_VAULT)
        atomic_fetch_add(&ds->root_calls, ok_vault_provider_requests(prov) - before);
    else
        atomic_fetch_add(&ds->root_calls, 1);
}

static void cust_classify(const ok_provider *prov, ok_err rc, const char *what, ds_reason *why)
{
    char name[OK_DS_KEY_URI_MAX + 64];
    ds_cust_kind kind = prov_kind(prov);
    if (kind == DS_CUST_VAULT)
        classify(rc, what, ok_vault_provider_key_url(prov), why);
    else
        ds_hyok_classify(kind, rc, what, prov_name(prov, name, sizeof name), why);
}

static ok_err cust_wrap(ok_ds *ds, ok_provider *prov, const uint8_t *in, size_t len, ok_edk *out, ds_reason *why)
{
    uint64_t before = ok_vault_provider_requests(prov);
    ok_err rc = ok_provider_wrap(prov, in, len, out);
    count_calls(ds, prov, before);
    if (rc != OK_OK)
        cust_classify(prov, rc, "wrapKey", why);
    return rc;
}

static ok_err cust_unwrap(ok_ds *ds, ok_provider *prov, const ok_edk *edk, uint8_t *out, size_t len, ds_reason *why)
{
    uint64_t before = ok_vault_provider_requests(prov);
    ok_err rc = ok_provider_unwrap(prov, edk, out, len);
    count_calls(ds, prov, before);
    if (rc == OK_ERR_NO_RECIPIENT)
        rc = ok_fail(OK_ERR_KEY, "the tenant key is wrapped by %s, not by the configured key", edk->key_id);
    if (rc != OK_OK)
        cust_classify(prov, rc, "unwrapKey", why);
    return rc;
}

ok_err ds_root_wrap_tk(ok_ds *ds, ok_ds_key_source source, ok_provider *prov, const char *uuid,
                       uint64_t generation, const uint8_t tk[DS_TK_LEN], ds_wrapped_tk *out, ds_reason *why)
{
    ok_err rc = OK_OK;

    memset(out, 0, sizeof *out);
    out->generation = generation;
    out->source = source;
    if (source != OK_DS_KEYS_SERVICE && prov == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "a customer-keyed tenant key needs the customer's key");
    if (source != OK_DS_KEYS_CUSTOMER) {
        OK_GUARD_GOTO(rc, srk_wrap(ds, uuid, generation, tk, out->srk_wrap), fail);
        out->has_srk = 1;
    }
    if (source == OK_DS_KEYS_CUSTOMER)
        OK_GUARD_GOTO(rc, cust_wrap(ds, prov, tk, DS_TK_LEN, &out->cust, why), fail);
    if (source == OK_DS_KEYS_DOUBLE) {
        OK_GUARD_GOTO(rc, cust_wrap(ds, prov, out->srk_wrap, DS_SRK_BLOB_LEN, &out->cust, why), fail);
        out->has_srk = 0; /* the SRK layer lives inside the customer layer only */
        ok_zeroize(out->srk_wrap, sizeof out->srk_wrap);
    }
    out->has_cust = source != OK_DS_KEYS_SERVICE;
    return OK_OK;
fail:
    ds_wrapped_tk_clear(out);
    return rc;
}

ok_err ds_root_unwrap_tk(ok_ds *ds, ok_provider *prov, const char *uuid, const ds_wrapped_tk *w,
                         uint8_t tk[DS_TK_LEN], ds_reason *why)
{
    uint8_t blob[DS_SRK_BLOB_LEN];
    ok_err rc;

    switch (w->source) {
    case OK_DS_KEYS_SERVICE:
        if (!w->has_srk)
            return ok_fail(OK_ERR_FORMAT, "data.db: a service tenant key has no SRK layer");
        rc = srk_unwrap(ds, uuid, w->generation, w->srk_wrap, sizeof w->srk_wrap, tk);
        if (rc != OK_OK && rc != OK_ERR_SEALED)
            reason_set(why, "KeyInvalid", "the tenant key does not open under the service root key");
        return rc;
    case OK_DS_KEYS_CUSTOMER:
    case OK_DS_KEYS_DOUBLE:
        if (!w->has_cust || prov == NULL)
            return ok_fail(OK_ERR_FORMAT, "data.db: a customer tenant key has no customer layer");
        if (w->source == OK_DS_KEYS_CUSTOMER)
            return cust_unwrap(ds, prov, &w->cust, tk, DS_TK_LEN, why);
        OK_GUARD(cust_unwrap(ds, prov, &w->cust, blob, sizeof blob, why));
        rc = srk_unwrap(ds, uuid, w->generation, blob, sizeof blob, tk);
        ok_zeroize(blob, sizeof blob);
        if (rc != OK_OK && rc != OK_ERR_SEALED)
            reason_set(why, "KeyInvalid", "the tenant key does not open under the service root key");
        return rc;
    }
    return ok_fail(OK_ERR_FORMAT, "data.db: unknown key source %d", (int)w->source);
}

/* ---- the customer's credential ------------------------------------------------------------------------------- */

static void cred_aad(const char *uuid, char out[64])
{
    snprintf(out, 64, "%s%s", DS_CRED_AAD, uuid);
}

ok_err ds_cred_seal(ok_ds *ds, const char *uuid, const ok_ds_customer_key *key, uint8_t **blob, size_t *len)
{
    size_t tl = key->token ? strlen(key->token) : 0, cl = key->ca_pem ? strlen(key->ca_pem) : 0;
    char aad[64];
    ok_buf b;
    ok_err rc;

    if (ds_cust_kind_of(key->uri) != DS_CUST_VAULT) {
        ok_buf_init(&b, 0);
        rc = ds_hyok_cred_encode(key->uri, &b);
        cred_aad(uuid, aad);
        if (rc == OK_OK)
            rc = ok_vault_wrap_secret(ds->vault, aad, b.data, b.len, blob, len);
        ok_buf_free(&b); /* zeroizes the URI and any PIN in it */
        return rc;
    }
    if (tl == 0 || tl > CRED_TOKEN_MAX || cl > CRED_CA_MAX)
        return ok_fail(OK_ERR_INVALID_ARG, "the customer key's token (1..%d bytes) or CA (up to %u bytes) is out of range",
                       CRED_TOKEN_MAX, CRED_CA_MAX);
    ok_buf_init(&b, 0);
    OK_GUARD_GOTO(rc, ok_buf_put(&b, CRED_MAGIC, 4), done);
    OK_GUARD_GOTO(rc, ok_buf_u32(&b, (uint32_t)tl), done);
    OK_GUARD_GOTO(rc, ok_buf_put(&b, key->token, tl), done);
    OK_GUARD_GOTO(rc, ok_buf_u32(&b, (uint32_t)cl), done);
    if (cl)
        OK_GUARD_GOTO(rc, ok_buf_put(&b, key->ca_pem, cl), done);
    cred_aad(uuid, aad);
    rc = ok_vault_wrap_secret(ds->vault, aad, b.data, b.len, blob, len);
done:
    ok_buf_free(&b); /* zeroizes the token */
    return rc;
}

/* Splits an unsealed credential into a NUL-terminated token (secure memory) and CA text (malloc'ed). */
static ok_err cred_parse(const uint8_t *p, size_t n, char **token, size_t *token_size, char **ca)
{
    ok_cursor c;
    const uint8_t *magic, *t, *a;
    uint32_t tl, cl;

    ok_cursor_init(&c, p, n);
    if (ok_cursor_bytes(&c, 4, &magic) != OK_OK || memcmp(magic, CRED_MAGIC, 4) != 0 ||
        ok_cursor_u32(&c, &tl) != OK_OK || tl == 0 || tl > CRED_TOKEN_MAX || ok_cursor_bytes(&c, tl, &t) != OK_OK ||
        ok_cursor_u32(&c, &cl) != OK_OK || cl > CRED_CA_MAX || ok_cursor_bytes(&c, cl, &a) != OK_OK ||
        ok_cursor_remaining(&c) != 0)
        return ok_fail(OK_ERR_FORMAT, "data.db: a customer credential is malformed");
    *token_size = tl + 1;
    *token = ok_secure_alloc(*token_size);
    *ca = malloc(cl + 1);
    if (*token == NULL || *ca == NULL) {
        ok_secure_free(*token, *token_size);
        free(*ca);
        *token = *ca = NULL;
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    }
    memcpy(*token, t, tl);
    memcpy(*ca, a, cl);
    (*ca)[cl] = '\0';
    return OK_OK;
}

static ok_err open_provider(const char *uri, const char *token, const char *ca_pem, ok_provider **out)
{
    ok_vault_provider_config cfg = {.ref = uri, .token = token, .ca_pem = ca_pem,
                                    .connect_timeout_ms = CONNECT_TIMEOUT_MS, .timeout_ms = REQUEST_TIMEOUT_MS};
    return ok_vault_provider_open_config(&cfg, out);
}

ok_err ds_cust_open_sealed(ok_ds *ds, const char *uuid, const char *uri, const uint8_t *cred, size_t cred_len,
                           ok_provider **out, ds_reason *why)
{
    uint8_t *plain = NULL;
    size_t n = 0, token_size = 0;
    char aad[64], *token = NULL, *ca = NULL;
    ok_err rc;

    *out = NULL;
    if (uri == NULL || cred == NULL)
        return ok_fail(OK_ERR_FORMAT, "data.db: a customer-keyed tenant has no key URI or credential");
    cred_aad(uuid, aad);
    OK_GUARD(ok_vault_unwrap_secret(ds->vault, aad, cred, cred_len, &plain, &n));
    if (ds_cust_kind_of(uri) != DS_CUST_VAULT || ds_hyok_cred_is(plain, n)) {
        rc = ds_cust_kind_of(uri) != DS_CUST_VAULT && ds_hyok_cred_is(plain, n)
                 ? ds_hyok_cred_open(plain, n, uri, out)
                 : ok_fail(OK_ERR_FORMAT, "data.db: the customer credential does not match key %s", uri);
        ok_secure_free(plain, n);
        if (rc != OK_OK && rc != OK_ERR_FORMAT && rc != OK_ERR_NOMEM)
            ds_hyok_classify(ds_cust_kind_of(uri), rc, "open", uri, why);
        return rc;
    }
    rc = cred_parse(plain, n, &token, &token_size, &ca);
    ok_secure_free(plain, n);
    OK_GUARD(rc);
    rc = open_provider(uri, token, ca, out);
    ok_secure_free(token, token_size);
    free(ca);
    return rc;
}

/* ---- the customer's key: is it usable? ------------------------------------------------------------------------ */

static int kty_wraps(const char *kty)
{
    return !strcmp(kty, "RSA") || !strcmp(kty, "RSA-HSM") || !strcmp(kty, "oct") || !strcmp(kty, "oct-HSM");
}

ok_err ds_cust_verify_key(ok_ds *ds, ok_provider *prov, char version[65], ds_reason *why)
{
    if (prov_kind(prov) != DS_CUST_VAULT) {
        if (version != NULL)
            version[0] = '\0';
        return OK_OK; /* no lookup: the token or server refuses an unusable key at unwrap */
    }
    const char *url = ok_vault_provider_key_url(prov);
    uint64_t before = ok_vault_provider_requests(prov);
    int64_t now = ds_now();
    ok_vault_key_desc d;
    ok_err rc = ok_vault_provider_lookup(prov, &d);

    count_calls(ds, prov, before);
    if (rc != OK_OK) {
        classify(rc, "get", url, why);
        return rc;
    }
    if (!d.enabled) {
        reason_set(why, "KeyDisabled", "customer key %s is disabled", url);
        return ok_fail(OK_ERR_FORBIDDEN, "customer key %s is disabled", url);
    }
    if (d.exp != 0 && now >= d.exp) {
        reason_set(why, "KeyExpired", "customer key %s expired at %lld", url, (long long)d.exp);
        return ok_fail(OK_ERR_FORBIDDEN, "customer key %s has expired", url);
    }
    if (d.nbf != 0 && now < d.nbf) {
        reason_set(why, "KeyInvalid", "customer key %s is not valid before %lld", url, (long long)d.nbf);
        return ok_fail(OK_ERR_FORBIDDEN, "customer key %s is not valid yet", url);
    }
    if (!kty_wraps(d.kty)) {
        reason_set(why, "KeyInvalid", "customer key %s is of type %s, which cannot wrap keys; use an RSA or oct key",
                   url, d.kty);
        return ok_fail(OK_ERR_KEY, "customer key %s cannot wrap keys", url);
    }
    if (!d.can_wrap || !d.can_unwrap) {
        reason_set(why, "KeyInvalid", "customer key %s does not allow %s in its key_ops", url,
                   !d.can_wrap && !d.can_unwrap ? "wrapKey and unwrapKey" : !d.can_wrap ? "wrapKey" : "unwrapKey");
        return ok_fail(OK_ERR_KEY, "customer key %s lacks wrapKey or unwrapKey", url);
    }
    if (version != NULL)
        snprintf(version, 65, "%s", d.version);
    return OK_OK;
}

/* A test wrap + unwrap of random bytes through the customer's vault. */
static ok_err test_round_trip(ok_ds *ds, ok_provider *prov, ds_reason *why)
{
    uint8_t probe[DS_TK_LEN], back[DS_TK_LEN];
    ok_edk edk = {0};
    ok_err rc;

    OK_GUARD(ok_random(probe, sizeof probe));
    rc = cust_wrap(ds, prov, probe, sizeof probe, &edk, why);
    if (rc == OK_OK)
        rc = cust_unwrap(ds, prov, &edk, back, sizeof back, why);
    if (rc == OK_OK && !ok_ct_equal(probe, back, sizeof probe)) {
        char name[OK_DS_KEY_URI_MAX + 64];
        reason_set(why, "KeyInvalid", "a test wrap and unwrap through %s did not give back the same bytes",
                   prov_name(prov, name, sizeof name));
        rc = ok_fail(OK_ERR_KEY, "test unwrap mismatch");
    }
    ok_edk_clear(&edk);
    ok_zeroize(probe, sizeof probe);
    ok_zeroize(back, sizeof back);
    return rc;
}

/* A PKCS#11 or KMIP key: the URI carries everything (no token, no CA); opened, then a test round trip. */
static ok_err hyok_validate(ok_ds *ds, const ok_ds_customer_key *key, ok_provider **out)
{
    char shown[OK_DS_KEY_URI_MAX + 1];
    ok_provider *prov = NULL;
    ds_reason why = {"", ""};
    ok_err rc;

    if (strlen(key->uri) > OK_DS_KEY_URI_MAX || ds_cust_public_uri(key->uri, shown, sizeof shown) != OK_OK)
        return ok_fail(OK_ERR_KEY, "the customer key URI is longer than %d characters", OK_DS_KEY_URI_MAX);
    if ((key->token && key->token[0]) || (key->ca_pem && key->ca_pem[0]))
        return ok_fail(OK_ERR_KEY, "customer key %s: a token or CA goes with a vault key only (a %s URI carries "
                       "its own credentials)", shown, ds_cust_kind_of(key->uri) == DS_CUST_PKCS11 ? "PKCS#11" : "KMIP");
    rc = ds_hyok_check_uri(key->uri);
    if (rc != OK_OK) {
        char msg[OK_DS_REASON_MAX + 1];
        snprintf(msg, sizeof msg, "%s", ok_err_message()); /* ok_fail formats into the message's buffer */
        return ok_fail(OK_ERR_KEY, "customer key %s: %s", shown, msg);
    }
    rc = ds_hyok_open(key->uri, &prov);
    if (rc == OK_ERR_NOMEM)
        return rc;
    if (rc != OK_OK) {
        ds_hyok_classify(ds_cust_kind_of(key->uri), rc, "open", shown, &why);
        return ok_fail(OK_ERR_KEY, "%s (%s)", why.text, why.code);
    }
    rc = test_round_trip(ds, prov, &why);
    if (rc != OK_OK) {
        ok_provider_free(prov);
        if (rc == OK_ERR_NOMEM)
            return rc;
        if (why.text[0] == '\0')
            snprintf(why.text, sizeof why.text, "%s", ok_err_message());
        return ok_fail(OK_ERR_KEY, "%s (%s)", why.text, why.code[0] ? why.code : "KeyInvalid");
    }
    *out = prov;
    return OK_OK;
}

ok_err ds_cust_validate(ok_ds *ds, const ok_ds_customer_key *key, ok_provider **out)
{
    ok_vault_key_ref ref;
    ok_provider *prov = NULL;
    ds_reason why = {"", ""};
    ok_err rc;

    *out = NULL;
    if (key != NULL && key->uri != NULL && ds_cust_kind_of(key->uri) != DS_CUST_VAULT)
        return hyok_validate(ds, key, out);
    if (key == NULL || key->uri == NULL || strlen(key->uri) > OK_DS_KEY_URI_MAX ||
        ok_vault_key_ref_parse(key->uri, &ref) != OK_OK)
        return ok_fail(OK_ERR_KEY, "the customer key URI must be https://HOST[:PORT]/keys/NAME[/VERSION] (at most %d characters)",
                       OK_DS_KEY_URI_MAX);
    if (key->token == NULL || key->token[0] == '\0')
        return ok_fail(OK_ERR_KEY, "customer key %s: a token (with get, wrapKey and unwrapKey on the key) is required",
                       ref.key_url);
    if (strlen(key->token) > CRED_TOKEN_MAX || (key->ca_pem && strlen(key->ca_pem) > CRED_CA_MAX))
        return ok_fail(OK_ERR_KEY, "customer key %s: the token or CA is too long", ref.key_url);
    rc = open_provider(key->uri, key->token, key->ca_pem, &prov);
    if (rc != OK_OK)
        return ok_fail(OK_ERR_KEY, "customer key %s: %s", ref.key_url, ok_err_message());
    rc = ds_cust_verify_key(ds, prov, NULL, &why);
    if (rc == OK_OK)
        rc = test_round_trip(ds, prov, &why);
    if (rc != OK_OK) {
        ok_provider_free(prov);
        if (rc == OK_ERR_NOMEM)
            return rc;
        return ok_fail(OK_ERR_KEY, "%s (%s)", why.text[0] ? why.text : ok_err_message(), why.code[0] ? why.code : "KeyInvalid");
    }
    *out = prov;
    return OK_OK;
}
