/* The `kmip` key provider (see ownkey/provider.h): a key on a KMIP server that wraps and unwraps data keys
 * with server-side Encrypt and Decrypt. Owns the provider vtable, the EDK layout (IV || ciphertext [||
 * tag]), turning the server's refusals into errors that name the key's state, and the "kmip://" reference
 * form. The messages are kmip_client.c's; the key material never passes through here. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ownkey/crypto.h"
#include "ownkey/provider.h"
#include "providers/kmip_client.h"

#define ALG_GCM "KMIP-AES256-GCM"
#define ALG_CBC "KMIP-AES256-CBC-PAD"
#define MAX_DATA_KEY 64
#define NAME_MAX_LEN 128

typedef struct {
    ok_provider base;
    ok_kmip_client *client;
    char uid[OK_KMIP_UID_MAX];
    char key_id[OK_KMIP_UID_MAX + 320];
    char version[8];
    pthread_mutex_t lock; /* one request at a time on the connection */
} kmip_provider;

/* After a refused Encrypt/Decrypt: asks for the key's state so the message says why. */
static ok_err explain(kmip_provider *kp, ok_err rc, const char *op)
{
    char why[512];
    snprintf(why, sizeof why, "%s", ok_err_message());
    const char *server = ok_kmip_client_server(kp->client);
    if (rc == OK_ERR_NOT_FOUND)
        return ok_fail(rc, "KMIP key %s not found on %s (destroyed or never existed): %s", kp->uid, server, why);
    if (rc != OK_ERR_FORBIDDEN)
        return ok_fail(rc, "%s", why);
    int64_t state = 0;
    if (ok_kmip_get_state(kp->client, kp->uid, &state) == OK_OK && state != OK_KMIP_ACTIVE)
        return ok_fail(rc, "KMIP key %s on %s is %s (not Active): the server refuses to %s with it: %s", kp->uid, server,
                       ok_kmip_state_name(state), op, why);
    return ok_fail(rc, "KMIP key %s on %s: permission denied: %s", kp->uid, server, why);
}

static int use_gcm(const kmip_provider *kp)
{
    int major = 0, minor = 0;
    ok_kmip_client_version(kp->client, &major, &minor);
    return major > 1 || (major == 1 && minor >= 4);
}

static ok_err kmip_wrap(ok_provider *p, const uint8_t *key, size_t key_len, ok_edk *out)
{
    kmip_provider *kp = (kmip_provider *)p;
    if (key_len == 0 || key_len > MAX_DATA_KEY)
        return ok_fail(OK_ERR_INVALID_ARG, "data key of %zu bytes cannot be wrapped", key_len);
    ok_kmip_cipher cp = {.aad = (const uint8_t *)kp->key_id, .aad_len = strlen(kp->key_id)};
    ok_buf ct;
    ok_buf_init(&ct, 4096);
    pthread_mutex_lock(&kp->lock);
    ok_err rc = ok_kmip_client_connect(kp->client);
    if (rc == OK_OK) {
        cp.gcm = use_gcm(kp);
        cp.iv_len = cp.gcm ? OK_KMIP_GCM_IV_LEN : OK_KMIP_CBC_IV_LEN;
        rc = ok_random(cp.iv, cp.iv_len);
    }
    if (rc == OK_OK) {
        rc = ok_kmip_encrypt(kp->client, kp->uid, &cp, key, key_len, &ct);
        if (rc != OK_OK)
            rc = explain(kp, rc, "encrypt");
    }
    pthread_mutex_unlock(&kp->lock);
    /* The EDK ciphertext: IV || ciphertext [|| tag]. */
    ok_buf edk;
    ok_buf_init(&edk, OK_EDK_CT_MAX);
    if (rc == OK_OK)
        rc = ok_buf_put(&edk, cp.iv, cp.iv_len);
    if (rc == OK_OK)
        rc = ok_buf_put(&edk, ct.data, ct.len);
    if (rc == OK_OK && cp.gcm)
        rc = ok_buf_put(&edk, cp.tag, OK_KMIP_TAG_LEN);
    if (rc == OK_OK)
        rc = ok_edk_set(out, OK_PROVIDER_KMIP, kp->key_id, "", cp.gcm ? ALG_GCM : ALG_CBC, edk.data, edk.len);
    ok_buf_free(&edk);
    ok_buf_free(&ct);
    return rc;
}

static int kmip_matches(const ok_provider *p, const ok_edk *edk)
{
    const kmip_provider *kp = (const kmip_provider *)p;
    return strcmp(edk->provider, OK_PROVIDER_KMIP) == 0 && strcmp(edk->key_id, kp->key_id) == 0;
}

static ok_err kmip_unwrap(ok_provider *p, const ok_edk *edk, uint8_t *key, size_t key_len)
{
    kmip_provider *kp = (kmip_provider *)p;
    if (!kmip_matches(p, edk))
        return OK_ERR_NO_RECIPIENT;
    ok_kmip_cipher cp = {.aad = (const uint8_t *)edk->key_id, .aad_len = strlen(edk->key_id)};
    if (strcmp(edk->wrap_alg, ALG_GCM) == 0)
        cp.gcm = 1, cp.iv_len = OK_KMIP_GCM_IV_LEN;
    else if (strcmp(edk->wrap_alg, ALG_CBC) == 0)
        cp.iv_len = OK_KMIP_CBC_IV_LEN;
    else
        return ok_fail(OK_ERR_AUTH, "wrapped key for %s uses %s, expected " ALG_GCM " or " ALG_CBC, kp->key_id,
                       edk->wrap_alg);
    size_t overhead = cp.iv_len + (cp.gcm ? OK_KMIP_TAG_LEN : 0);
    if (edk->ct_len <= overhead || edk->ct_len > overhead + MAX_DATA_KEY + 16)
        return ok_fail(OK_ERR_AUTH, "wrapped key for %s has a bad length", kp->key_id);
    memcpy(cp.iv, edk->ct, cp.iv_len);
    size_t body_len = edk->ct_len - overhead;
    if (cp.gcm)
        memcpy(cp.tag, edk->ct + cp.iv_len + body_len, OK_KMIP_TAG_LEN);
    ok_buf pt; /* zeroized by ok_buf_free */
    ok_buf_init(&pt, MAX_DATA_KEY + 16);
    pthread_mutex_lock(&kp->lock);
    ok_err rc = ok_kmip_decrypt(kp->client, kp->uid, &cp, edk->ct + cp.iv_len, body_len, &pt);
    if (rc != OK_OK && rc != OK_ERR_AUTH)
        rc = explain(kp, rc, "decrypt");
    pthread_mutex_unlock(&kp->lock);
    if (rc == OK_OK && pt.len != key_len)
        rc = OK_ERR_AUTH;
    if (rc == OK_OK)
        memcpy(key, pt.data, key_len);
    ok_buf_free(&pt);
    if (rc == OK_ERR_AUTH)
        return ok_fail(OK_ERR_AUTH, "authentication failed: the wrapped data key for %s does not decrypt under this key",
                       kp->key_id);
    return rc;
}

static ok_err kmip_describe(const ok_provider *p, char *buf, size_t len)
{
    const kmip_provider *kp = (const kmip_provider *)p;
    snprintf(buf, len, "kmip AES-256 uid=%s on %s (KMIP %s)", kp->uid, ok_kmip_client_server(kp->client), kp->version);
    return OK_OK;
}

static void kmip_destroy(ok_provider *p)
{
    kmip_provider *kp = (kmip_provider *)p;
    ok_kmip_client_free(kp->client);
    pthread_mutex_destroy(&kp->lock);
    free(kp);
}

static const ok_provider_vtable KMIP_VTABLE = {
    .size = sizeof(ok_provider_vtable),
    .wrap = kmip_wrap,
    .unwrap = kmip_unwrap,
    .describe = kmip_describe,
    .matches = kmip_matches,
    .destroy = kmip_destroy,
};

static int id_valid(const char *s)
{
    return s && ok_name_valid(s, NAME_MAX_LEN, "-_.");
}

ok_err ok_kmip_provider_open(const ok_kmip_config *cfg, ok_provider **out)
{
    int has_name = cfg->key_name && *cfg->key_name, has_uid = cfg->key_uid && *cfg->key_uid;
    if (has_name == has_uid)
        return ok_fail(OK_ERR_INVALID_ARG, "a KMIP key is given by exactly one of name and unique identifier");
    if ((has_name && !id_valid(cfg->key_name)) || (has_uid && !id_valid(cfg->key_uid)))
        return ok_fail(OK_ERR_INVALID_ARG, "KMIP key %s \"%s\" is not 1-%d letters, digits and \"-_.\"",
                       has_name ? "name" : "identifier", has_name ? cfg->key_name : cfg->key_uid, NAME_MAX_LEN);
    ok_kmip_client_config cc = {.host = cfg->host, .port = cfg->port, .cert_file = cfg->cert_file,
                                .key_file = cfg->key_file, .ca_file = cfg->ca_file,
                                .connect_timeout_ms = cfg->connect_timeout_ms, .timeout_ms = cfg->timeout_ms};
    if (cfg->version && *cfg->version) {
        char tail = 0;
        if (sscanf(cfg->version, "%d.%d%c", &cc.version_major, &cc.version_minor, &tail) != 2)
            return ok_fail(OK_ERR_INVALID_ARG, "KMIP version \"%s\" is not MAJOR.MINOR", cfg->version);
    }
    kmip_provider *kp = calloc(1, sizeof *kp);
    if (!kp)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    kp->base.vt = &KMIP_VTABLE;
    pthread_mutex_init(&kp->lock, NULL);
    ok_err rc = ok_kmip_client_new(&cc, &kp->client);
    if (rc == OK_OK)
        rc = ok_kmip_client_connect(kp->client);
    if (rc == OK_OK && has_name)
        rc = ok_kmip_locate_name(kp->client, cfg->key_name, kp->uid);
    if (rc == OK_OK && has_uid)
        snprintf(kp->uid, sizeof kp->uid, "%s", cfg->key_uid);
    if (rc == OK_OK && !id_valid(kp->uid))
        rc = ok_fail(OK_ERR_UNSUPPORTED, "KMIP server %s names the key with an identifier ownkey cannot record",
                     ok_kmip_client_server(kp->client));
    if (rc != OK_OK) {
        kmip_destroy(&kp->base);
        return rc;
    }
    int major = 0, minor = 0;
    ok_kmip_client_version(kp->client, &major, &minor);
    snprintf(kp->version, sizeof kp->version, "%d.%d", major, minor);
    snprintf(kp->key_id, sizeof kp->key_id, "kmip://%s/uid/%s", ok_kmip_client_server(kp->client), kp->uid);
    *out = &kp->base;
    return OK_OK;
}

const char *ok_kmip_provider_uid(const ok_provider *p)
{
    return p && p->vt == &KMIP_VTABLE ? ((const kmip_provider *)p)->uid : NULL;
}

const char *ok_kmip_provider_version(const ok_provider *p)
{
    return p && p->vt == &KMIP_VTABLE ? ((const kmip_provider *)p)->version : NULL;
}

/* ---- "kmip://HOST[:PORT]/NAME" and "kmip://HOST[:PORT]/uid/UID" ------------------------------------- */

/* The value of query parameter name ("" if absent) copied into out. */
static ok_err query_param(const char *query, const char *name, char *out, size_t cap)
{
    out[0] = '\0';
    size_t nlen = strlen(name);
    for (const char *p = query; p && *p;) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
            if (len - nlen - 1 >= cap)
                return ok_fail(OK_ERR_INVALID_ARG, "KMIP reference parameter %s is too long", name);
            memcpy(out, p + nlen + 1, len - nlen - 1);
            out[len - nlen - 1] = '\0';
        }
        p = end ? end + 1 : NULL;
    }
    return OK_OK;
}

static void env_default(char *val, size_t cap, const char *var)
{
    const char *e = getenv(var);
    if (!val[0] && e)
        snprintf(val, cap, "%s", e);
}

ok_err ok_kmip_provider_from_ref(const char *ref, ok_provider **out)
{
    static const char SCHEME[] = "kmip://";
    if (strncmp(ref, SCHEME, sizeof SCHEME - 1) != 0)
        return ok_fail(OK_ERR_INVALID_ARG, "KMIP reference \"%s\" does not start with kmip://", ref);
    char host[256], path[2 * NAME_MAX_LEN], cert[1024], key[1024], ca[1024], version[16];
    const char *authority = ref + sizeof SCHEME - 1;
    const char *slash = strchr(authority, '/');
    const char *query = strchr(authority, '?');
    if (!slash || (query && query < slash))
        return ok_fail(OK_ERR_INVALID_ARG, "KMIP reference \"%s\" names no key (kmip://HOST[:PORT]/NAME)", ref);
    size_t auth_len = (size_t)(slash - authority);
    size_t path_len = query ? (size_t)(query - slash - 1) : strlen(slash + 1);
    if (auth_len == 0 || auth_len >= sizeof host || path_len == 0 || path_len >= sizeof path)
        return ok_fail(OK_ERR_INVALID_ARG, "KMIP reference \"%s\" has a bad host or key", ref);
    memcpy(path, slash + 1, path_len);
    path[path_len] = '\0';
    /* HOST, HOST:PORT, [V6], [V6]:PORT */
    unsigned long port = 0;
    const char *h = authority, *colon = NULL;
    size_t hlen = auth_len;
    if (authority[0] == '[') {
        const char *close = memchr(authority, ']', auth_len);
        if (!close)
            return ok_fail(OK_ERR_INVALID_ARG, "KMIP reference \"%s\": unclosed [", ref);
        h = authority + 1;
        hlen = (size_t)(close - h);
        colon = close + 1 < slash && close[1] == ':' ? close + 1 : NULL;
        if (!colon && close + 1 != slash)
            return ok_fail(OK_ERR_INVALID_ARG, "KMIP reference \"%s\" has a bad host", ref);
    } else {
        colon = memchr(authority, ':', auth_len);
        if (colon)
            hlen = (size_t)(colon - authority);
    }
    if (colon) {
        char *end = NULL;
        port = strtoul(colon + 1, &end, 10);
        if (end != slash || port == 0 || port > 65535)
            return ok_fail(OK_ERR_INVALID_ARG, "KMIP reference \"%s\" has a bad port", ref);
    }
    if (hlen == 0)
        return ok_fail(OK_ERR_INVALID_ARG, "KMIP reference \"%s\" has no host", ref);
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    const char *q = query ? query + 1 : NULL;
    OK_GUARD(query_param(q, "cert", cert, sizeof cert));
    OK_GUARD(query_param(q, "key", key, sizeof key));
    OK_GUARD(query_param(q, "ca", ca, sizeof ca));
    OK_GUARD(query_param(q, "version", version, sizeof version));
    env_default(cert, sizeof cert, "OWNKEY_KMIP_CERT");
    env_default(key, sizeof key, "OWNKEY_KMIP_KEY");
    env_default(ca, sizeof ca, "OWNKEY_KMIP_CA");
    env_default(version, sizeof version, "OWNKEY_KMIP_VERSION");
    if (!cert[0] || !key[0] || !ca[0])
        return ok_fail(OK_ERR_INVALID_ARG, "KMIP reference \"%s\" needs a client certificate, key and CA: "
                       "?cert=&key=&ca= or OWNKEY_KMIP_CERT, OWNKEY_KMIP_KEY, OWNKEY_KMIP_CA", ref);
    ok_kmip_config cfg = {.host = host, .port = (unsigned)port, .cert_file = cert, .key_file = key, .ca_file = ca,
                          .version = version};
    if (strncmp(path, "uid/", 4) == 0)
        cfg.key_uid = path + 4;
    else
        cfg.key_name = path;
    return ok_kmip_provider_open(&cfg, out);
}
