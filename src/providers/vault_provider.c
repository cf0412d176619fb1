/* The `vault` key provider: a key held by an ownkeyd (or any Azure Key Vault keys API), named by
 * "https://HOST[:PORT]/keys/NAME[/VERSION]". Wrapping asks the vault for the key (to learn its type and
 * current version) and then for wrapkey: RSA-OAEP-256 for RSA keys, A256KW for oct keys. The EDK records
 * provider "vault", the versionless key URL as key id, and the version that wrapped, so unwrapping uses
 * that version and a rotated key still opens old envelopes. The key material never leaves the vault; the
 * provider holds only the token (secure memory) and one keep-alive connection, opened on first use.
 * For services (the data service) it also looks a key up (type, key_ops, state, newest version), counts
 * its requests, and keeps the remote error code of the thread's last failed request, so that a caller can
 * tell a disabled key from a removed permission or an unreachable vault. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ownkey/provider.h"
#include "ownkey/vault_client.h"

#define ALG_A256KW "A256KW"
#define ALG_RSA_OAEP_256 "RSA-OAEP-256"
#define MAX_DATA_KEY 64

typedef struct {
    ok_provider base;
    ok_vault_key_ref ref;
    char *token;          /* secure memory */
    size_t token_size;
    char *ca_file;
    char *ca_pem;
    long connect_timeout_ms, timeout_ms;
    ok_vault_client *client;
    pthread_mutex_t lock; /* one request at a time on the connection */
    _Atomic uint64_t requests;
} vault_provider;

/* The remote side of this thread's last failed request (ok_vault_provider_last_error). */
static _Thread_local char last_code[64];
static _Thread_local long last_status;

static ok_err connect_lazily(vault_provider *vp)
{
    if (vp->client)
        return OK_OK;
    ok_vault_client_config cfg = {.addr = vp->ref.addr, .token = vp->token, .ca_file = vp->ca_file,
                                  .ca_pem = vp->ca_pem, .connect_timeout_ms = vp->connect_timeout_ms,
                                  .timeout_ms = vp->timeout_ms};
    return ok_vault_client_new(&cfg, &vp->client);
}

/* Sends a request and parses its JSON answer. */
static ok_err call_json(vault_provider *vp, const char *method, const char *path, const char *body, json_t **out)
{
    *out = NULL;
    last_code[0] = '\0';
    last_status = 0;
    OK_GUARD(connect_lazily(vp));
    ok_vault_response resp;
    atomic_fetch_add(&vp->requests, 1);
    ok_err rc = ok_vault_client_request(vp->client, method, path, body, &resp);
    if (rc != OK_OK) {
        snprintf(last_code, sizeof last_code, "%s", resp.error_code);
        last_status = resp.status;
    } else {
        *out = json_loadb(resp.body, resp.body_len, 0, NULL);
        if (!json_is_object(*out)) {
            json_decref(*out);
            *out = NULL;
            rc = ok_fail(OK_ERR_FORMAT, "the vault's answer to %s %s is not a JSON object", method, path);
        }
    }
    ok_vault_response_clear(&resp);
    return rc;
}

/* The version in a kid "https://host/keys/NAME/VERSION", checked against our key name. */
static ok_err version_of_kid(const vault_provider *vp, const char *kid, char version[OK_VAULT_VERSION_MAX + 1])
{
    const char *p = kid ? strstr(kid, "/keys/") : NULL;
    size_t name_len = strlen(vp->ref.name);
    if (!p || strncmp(p + 6, vp->ref.name, name_len) != 0 || p[6 + name_len] != '/')
        return ok_fail(OK_ERR_FORMAT, "the vault answered for another key (kid %.200s)", kid ? kid : "missing");
    const char *v = p + 7 + name_len;
    if (strlen(v) > OK_VAULT_VERSION_MAX || !ok_vault_version_valid(v))
        return ok_fail(OK_ERR_FORMAT, "the vault's kid has a malformed version");
    snprintf(version, OK_VAULT_VERSION_MAX + 1, "%s", v);
    return OK_OK;
}

/* GET the key (pinned version or current); *doc is the answer. */
static ok_err get_key(vault_provider *vp, json_t **doc)
{
    char path[OK_VAULT_NAME_MAX + OK_VAULT_VERSION_MAX + 16];
    snprintf(path, sizeof path, "/keys/%s%s%s", vp->ref.name, vp->ref.version[0] ? "/" : "", vp->ref.version);
    return call_json(vp, "GET", path, NULL, doc);
}

/* GET the key (pinned version or current): its wrapping algorithm and version. */
static ok_err learn_key(vault_provider *vp, const char **alg, char version[OK_VAULT_VERSION_MAX + 1])
{
    json_t *doc = NULL;
    OK_GUARD(get_key(vp, &doc));
    json_t *key = json_object_get(doc, "key");
    const char *kty = json_string_value(json_object_get(key, "kty"));
    ok_err rc = version_of_kid(vp, json_string_value(json_object_get(key, "kid")), version);
    if (rc == OK_OK) {
        if (kty && (!strcmp(kty, "RSA") || !strcmp(kty, "RSA-HSM")))
            *alg = ALG_RSA_OAEP_256;
        else if (kty && (!strcmp(kty, "oct") || !strcmp(kty, "oct-HSM")))
            *alg = ALG_A256KW;
        else
            rc = ok_fail(OK_ERR_KEY, "vault key %s is of type %s, which cannot wrap data keys; use an oct or RSA key",
                         vp->ref.key_url, kty ? kty : "unknown");
    }
    json_decref(doc);
    return rc;
}

/* {"alg":ALG,"value":B64(bytes)}, malloc'ed; *len for zeroizing. */
static ok_err op_body(const char *alg, const uint8_t *bytes, size_t n, char **out, size_t *len)
{
    char *b64 = NULL;
    OK_GUARD(ok_b64url_encode(bytes, n, &b64));
    size_t b64_len = strlen(b64);
    *len = b64_len + strlen(alg) + 32;
    *out = malloc(*len);
    if (*out)
        snprintf(*out, *len, "{\"alg\":\"%s\",\"value\":\"%s\"}", alg, b64);
    ok_zeroize(b64, b64_len);
    free(b64);
    return *out ? OK_OK : ok_fail(OK_ERR_NOMEM, "out of memory");
}

/* POSTs {alg, value} to /keys/NAME/VERSION/OP; *doc is the answer. The request body is zeroized. */
static ok_err key_op(vault_provider *vp, const char *version, const char *op, const char *alg, const uint8_t *in,
                     size_t in_len, json_t **doc)
{
    char path[OK_VAULT_NAME_MAX + OK_VAULT_VERSION_MAX + 32];
    snprintf(path, sizeof path, "/keys/%s/%s/%s", vp->ref.name, version, op);
    char *body = NULL;
    size_t body_len = 0;
    OK_GUARD(op_body(alg, in, in_len, &body, &body_len));
    ok_err rc = call_json(vp, "POST", path, body, doc);
    ok_zeroize(body, body_len);
    free(body);
    return rc;
}

/* Decodes the "value" member into out (at most cap bytes) and zeroizes the JSON copy of it. */
static ok_err take_value(json_t *doc, uint8_t *out, size_t cap, size_t *len)
{
    json_t *v = json_object_get(doc, "value");
    if (!json_is_string(v))
        return ok_fail(OK_ERR_FORMAT, "the vault's answer has no \"value\"");
    uint8_t *raw = NULL;
    size_t n = 0;
    ok_err rc = ok_vault_b64_decode(json_string_value(v), &raw, &n);
    ok_zeroize((char *)json_string_value(v), json_string_length(v)); /* ours to wipe: we own doc */
    if (rc != OK_OK)
        return ok_fail(OK_ERR_FORMAT, "the vault's \"value\" is not base64url");
    if (n <= cap)
        memcpy(out, raw, n);
    ok_zeroize(raw, n);
    free(raw);
    if (n > cap)
        return ok_fail(OK_ERR_FORMAT, "the vault's \"value\" is too long (%zu bytes)", n);
    *len = n;
    return OK_OK;
}

static ok_err wrap_locked(vault_provider *vp, const uint8_t *key, size_t key_len, ok_edk *out)
{
    const char *alg = NULL;
    char version[OK_VAULT_VERSION_MAX + 1], used[OK_VAULT_VERSION_MAX + 1];
    OK_GUARD(learn_key(vp, &alg, version));
    json_t *doc = NULL;
    OK_GUARD(key_op(vp, version, "wrapkey", alg, key, key_len, &doc));
    uint8_t ct[OK_EDK_CT_MAX];
    size_t ct_len = 0;
    ok_err rc = take_value(doc, ct, sizeof ct, &ct_len);
    if (rc == OK_OK && json_is_string(json_object_get(doc, "kid")))
        rc = version_of_kid(vp, json_string_value(json_object_get(doc, "kid")), used);
    else if (rc == OK_OK)
        memcpy(used, version, sizeof used);
    json_decref(doc);
    if (rc == OK_OK)
        rc = ok_edk_set(out, OK_PROVIDER_VAULT, vp->ref.key_url, used, alg, ct, ct_len);
    return rc;
}

static ok_err vault_wrap(ok_provider *p, const uint8_t *key, size_t key_len, ok_edk *out)
{
    vault_provider *vp = (vault_provider *)p;
    if (key_len == 0 || key_len > MAX_DATA_KEY)
        return ok_fail(OK_ERR_INVALID_ARG, "key of %zu bytes cannot be wrapped", key_len);
    pthread_mutex_lock(&vp->lock);
    ok_err rc = wrap_locked(vp, key, key_len, out);
    pthread_mutex_unlock(&vp->lock);
    return rc;
}

static int vault_matches(const ok_provider *p, const ok_edk *edk)
{
    const vault_provider *vp = (const vault_provider *)p;
    return strcmp(edk->provider, OK_PROVIDER_VAULT) == 0 && strcmp(edk->key_id, vp->ref.key_url) == 0;
}

static int known_wrap_alg(const char *alg)
{
    static const char *const algs[] = {ALG_RSA_OAEP_256, "RSA-OAEP", "RSA1_5", ALG_A256KW, "A192KW", "A128KW"};
    for (size_t i = 0; i < sizeof algs / sizeof *algs; i++)
        if (!strcmp(alg, algs[i]))
            return 1;
    return 0;
}

static ok_err unwrap_locked(vault_provider *vp, const ok_edk *edk, uint8_t *key, size_t key_len)
{
    json_t *doc = NULL;
    ok_err rc = key_op(vp, edk->key_version, "unwrapkey", edk->wrap_alg, edk->ct, edk->ct_len, &doc);
    if (rc == OK_ERR_INVALID_ARG) /* 400: the vault could not unwrap what the envelope holds */
        return ok_fail(OK_ERR_AUTH, "authentication failed: the vault cannot unwrap the data key for %s version %s (%s)",
                       vp->ref.key_url, edk->key_version, ok_err_message());
    if (rc != OK_OK)
        return rc;
    uint8_t buf[MAX_DATA_KEY];
    size_t n = 0;
    rc = take_value(doc, buf, sizeof buf, &n);
    json_decref(doc);
    if (rc == OK_OK && n != key_len)
        rc = ok_fail(OK_ERR_AUTH, "authentication failed: the data key unwrapped by %s has the wrong length",
                     vp->ref.key_url);
    if (rc == OK_OK)
        memcpy(key, buf, key_len);
    ok_zeroize(buf, sizeof buf);
    return rc;
}

static ok_err vault_unwrap(ok_provider *p, const ok_edk *edk, uint8_t *key, size_t key_len)
{
    vault_provider *vp = (vault_provider *)p;
    if (!vault_matches(p, edk))
        return OK_ERR_NO_RECIPIENT;
    /* The header is not authenticated until the data key opens it: its strings go into a URL and a body. */
    if (!ok_vault_version_valid(edk->key_version))
        return ok_fail(OK_ERR_FORMAT, "the envelope's key version for %s is malformed", vp->ref.key_url);
    if (!known_wrap_alg(edk->wrap_alg))
        return ok_fail(OK_ERR_UNSUPPORTED, "the envelope's data key for %s is wrapped with an unknown algorithm",
                       vp->ref.key_url);
    pthread_mutex_lock(&vp->lock);
    ok_err rc = unwrap_locked(vp, edk, key, key_len);
    pthread_mutex_unlock(&vp->lock);
    return rc;
}

static ok_err vault_describe(const ok_provider *p, char *buf, size_t len)
{
    const vault_provider *vp = (const vault_provider *)p;
    if (vp->ref.version[0])
        snprintf(buf, len, "vault %s (version %s)", vp->ref.key_url, vp->ref.version);
    else
        snprintf(buf, len, "vault %s", vp->ref.key_url);
    return OK_OK;
}

static void vault_destroy(ok_provider *p)
{
    vault_provider *vp = (vault_provider *)p;
    ok_vault_client_free(vp->client);
    ok_secure_free(vp->token, vp->token_size);
    free(vp->ca_file);
    free(vp->ca_pem);
    pthread_mutex_destroy(&vp->lock);
    free(vp);
}

static const ok_provider_vtable VAULT_VTABLE = {
    .size = sizeof(ok_provider_vtable),
    .wrap = vault_wrap,
    .unwrap = vault_unwrap,
    .describe = vault_describe,
    .matches = vault_matches,
    .destroy = vault_destroy,
};

ok_err ok_vault_provider_open(const char *ref, const char *token, const char *ca_file, ok_provider **out)
{
    ok_vault_provider_config cfg = {.ref = ref, .token = token, .ca_file = ca_file};
    return ok_vault_provider_open_config(&cfg, out);
}

ok_err ok_vault_provider_open_config(const ok_vault_provider_config *cfg, ok_provider **out)
{
    if (!out || !cfg || !cfg->ref)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_vault_provider_open_config: NULL argument");
    const char *ref = cfg->ref, *token = cfg->token, *ca_file = cfg->ca_file;
    *out = NULL;
    vault_provider *vp = calloc(1, sizeof *vp);
    if (!vp)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    vp->base.vt = &VAULT_VTABLE;
    pthread_mutex_init(&vp->lock, NULL);
    ok_err rc = ok_vault_key_ref_parse(ref, &vp->ref);
    if (rc == OK_OK && (!token || !*token))
        rc = ok_fail(OK_ERR_INVALID_ARG, "key %s needs a vault token: set OWNKEY_TOKEN", vp->ref.key_url);
    if (rc == OK_OK) {
        vp->token_size = strlen(token) + 1;
        vp->token = ok_secure_alloc(vp->token_size);
        vp->ca_file = ca_file && *ca_file ? strdup(ca_file) : NULL;
        vp->ca_pem = cfg->ca_pem && *cfg->ca_pem ? strdup(cfg->ca_pem) : NULL;
        vp->connect_timeout_ms = cfg->connect_timeout_ms;
        vp->timeout_ms = cfg->timeout_ms;
        if (!vp->token || (ca_file && *ca_file && !vp->ca_file) || (cfg->ca_pem && *cfg->ca_pem && !vp->ca_pem))
            rc = ok_fail(OK_ERR_NOMEM, "out of memory");
        else
            memcpy(vp->token, token, vp->token_size);
    }
    if (rc != OK_OK) {
        vault_destroy(&vp->base);
        return rc;
    }
    *out = &vp->base;
    return OK_OK;
}

ok_err ok_vault_provider_from_env(const char *ref, ok_provider **out)
{
    return ok_vault_provider_open(ref, getenv("OWNKEY_TOKEN"), getenv("OWNKEY_CACERT"), out);
}

/* ---- for services: lookup, request count, remote errors ------------------------------------------------ */

static vault_provider *as_vault(const ok_provider *p)
{
    return p && p->vt == &VAULT_VTABLE ? (vault_provider *)p : NULL;
}

static int has_op(json_t *ops, const char *name)
{
    size_t i;
    json_t *op;
    json_array_foreach(ops, i, op) {
        if (json_is_string(op) && strcmp(json_string_value(op), name) == 0)
            return 1;
    }
    return 0;
}

static int64_t time_member(json_t *attrs, const char *name)
{
    json_t *t = json_object_get(attrs, name);
    return json_is_integer(t) ? (int64_t)json_integer_value(t) : 0;
}

static ok_err lookup_locked(vault_provider *vp, ok_vault_key_desc *out)
{
    json_t *doc = NULL;
    OK_GUARD(get_key(vp, &doc));
    json_t *key = json_object_get(doc, "key"), *attrs = json_object_get(doc, "attributes");
    const char *kty = json_string_value(json_object_get(key, "kty"));
    ok_err rc = version_of_kid(vp, json_string_value(json_object_get(key, "kid")), out->version);
    if (rc == OK_OK && !kty)
        rc = ok_fail(OK_ERR_FORMAT, "the vault's answer for %s has no key type", vp->ref.key_url);
    if (rc == OK_OK) {
        snprintf(out->kty, sizeof out->kty, "%s", kty);
        json_t *ops = json_object_get(key, "key_ops");
        out->can_wrap = has_op(ops, "wrapKey");
        out->can_unwrap = has_op(ops, "unwrapKey");
        json_t *enabled = json_object_get(attrs, "enabled");
        out->enabled = !json_is_false(enabled); /* Azure omits nothing here; absent = enabled */
        out->nbf = time_member(attrs, "nbf");
        out->exp = time_member(attrs, "exp");
    }
    json_decref(doc);
    return rc;
}

ok_err ok_vault_provider_lookup(ok_provider *p, ok_vault_key_desc *out)
{
    vault_provider *vp = as_vault(p);
    if (!vp || !out)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_vault_provider_lookup: not a vault provider");
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&vp->lock);
    ok_err rc = lookup_locked(vp, out);
    pthread_mutex_unlock(&vp->lock);
    return rc;
}

const char *ok_vault_provider_key_url(const ok_provider *p)
{
    const vault_provider *vp = as_vault(p);
    return vp ? vp->ref.key_url : "";
}

uint64_t ok_vault_provider_requests(const ok_provider *p)
{
    vault_provider *vp = as_vault(p);
    return vp ? atomic_load(&vp->requests) : 0;
}

void ok_vault_provider_last_error(char *code, size_t code_len, long *status)
{
    if (code && code_len)
        snprintf(code, code_len, "%s", last_code);
    if (status)
        *status = last_status;
}
