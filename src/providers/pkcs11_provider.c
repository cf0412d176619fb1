/* The `pkcs11` key provider: data keys wrapped and unwrapped inside a PKCS#11 token (an HSM, SoftHSM).
 * An AES key wraps with CKM_AES_KEY_WRAP_PAD (RFC 5649; EDK alg "AES-KWP"): the data key goes in as a
 * session object and C_WrapKey wraps it; C_UnwrapKey makes a session object whose value is read and which
 * is destroyed at once. An RSA key wraps with CKM_RSA_PKCS_OAEP: SHA-256 first, SHA-1 when the token
 * refuses it (SoftHSM 2.6 knows SHA-1 only), remembered per key and recorded in the EDK ("RSA-OAEP-256" or
 * "RSA-OAEP"); wrap runs in the token with the public key object, or in OpenSSL with the public half read
 * from the private key object when the token has no public key object; unwrap always runs in the token.
 * Sessions, login and reconnects are pkcs11_module.c's; URIs are pkcs11_uri.c's. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ownkey/crypto.h"
#include "ownkey/provider.h"
#include "providers/pkcs11_internal.h"

#define ALG_KWP "AES-KWP"
#define ALG_OAEP "RSA-OAEP"
#define ALG_OAEP_256 "RSA-OAEP-256"
#define MAX_DATA_KEY 64
#define MAX_RSA_BYTES 1024

enum { HASH_UNKNOWN = 0, HASH_SHA1 = 1, HASH_SHA256 = 2 };

typedef struct {
    ok_provider base;
    ok_p11_token *tok;
    char *key_id;
    atomic_int oaep_hash;   /* HASH_*: what the token accepted for this key */
    pthread_mutex_t mu;     /* guards pkey */
    ok_pkey *pkey;          /* RSA public half for OpenSSL wraps (token without a public key object) */
} p11_provider;

/* ---- Running one operation on a pooled session, reconnecting once on a stale session/login/handle ---- */
typedef CK_RV (*p11_op)(const ok_p11_lease *l, void *ctx);

static ok_err run(p11_provider *pp, p11_op op, void *ctx, CK_RV *rv)
{
    *rv = CKR_OK;
    for (int attempt = 0; attempt < 2; attempt++) {
        ok_p11_lease l;
        OK_GUARD(ok_p11_token_acquire(pp->tok, &l));
        *rv = op(&l, ctx);
        ok_p11_token_release(pp->tok, &l, *rv);
        if (!ok_p11_rv_stale(*rv))
            break;
    }
    return OK_OK;
}

static ok_err op_fail(p11_provider *pp, CK_RV rv, const char *what)
{
    char msg[256];
    snprintf(msg, sizeof msg, "PKCS#11 token \"%s\": %s", ok_p11_token_label(pp->tok), what);
    return ok_p11_fail(rv, msg);
}

/* ---- Session objects for data keys ------------------------------------------------------------------ */
static CK_OBJECT_CLASS CLS_SECRET = CKO_SECRET_KEY;
static CK_KEY_TYPE KT_GENERIC = CKK_GENERIC_SECRET;
static CK_BBOOL B_FALSE = CK_FALSE;
static CK_BBOOL B_TRUE = CK_TRUE;

#define DATA_KEY_TEMPLATE                                                                                     \
    {CKA_CLASS, &CLS_SECRET, sizeof CLS_SECRET}, {CKA_KEY_TYPE, &KT_GENERIC, sizeof KT_GENERIC},             \
        {CKA_TOKEN, &B_FALSE, sizeof B_FALSE}, {CKA_SENSITIVE, &B_FALSE, sizeof B_FALSE},                     \
        {CKA_EXTRACTABLE, &B_TRUE, sizeof B_TRUE}

typedef struct {
    CK_MECHANISM mech;
    CK_OBJECT_HANDLE (*key)(const ok_p11_lease *l);
    uint8_t *value; /* in: the data key (wrap); out: the unwrapped value */
    CK_ULONG value_len;
    uint8_t *ct;
    CK_ULONG ct_len;
} wrap_ctx;

static CK_OBJECT_HANDLE key_secret(const ok_p11_lease *l) { return l->secret; }
static CK_OBJECT_HANDLE key_pub(const ok_p11_lease *l) { return l->pub; }
static CK_OBJECT_HANDLE key_priv(const ok_p11_lease *l) { return l->priv; }

/* C_CreateObject (session, extractable, not sensitive) + C_WrapKey + C_DestroyObject. */
static CK_RV wrap_op(const ok_p11_lease *l, void *arg)
{
    wrap_ctx *c = arg;
    CK_ATTRIBUTE tmpl[] = {DATA_KEY_TEMPLATE, {CKA_VALUE, c->value, c->value_len}};
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_RV rv = l->f->C_CreateObject(l->session, tmpl, sizeof tmpl / sizeof tmpl[0], &h);
    if (rv != CKR_OK)
        return rv;
    rv = l->f->C_WrapKey(l->session, &c->mech, c->key(l), h, c->ct, &c->ct_len);
    l->f->C_DestroyObject(l->session, h);
    return rv;
}

/* C_UnwrapKey into a session object + C_GetAttributeValue(CKA_VALUE) + C_DestroyObject. */
static CK_RV unwrap_op(const ok_p11_lease *l, void *arg)
{
    wrap_ctx *c = arg;
    CK_ATTRIBUTE tmpl[] = {DATA_KEY_TEMPLATE};
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_RV rv = l->f->C_UnwrapKey(l->session, &c->mech, c->key(l), c->ct, c->ct_len, tmpl,
                                 sizeof tmpl / sizeof tmpl[0], &h);
    if (rv != CKR_OK)
        return rv;
    CK_ATTRIBUTE v = {CKA_VALUE, c->value, c->value_len};
    rv = l->f->C_GetAttributeValue(l->session, h, &v, 1);
    l->f->C_DestroyObject(l->session, h);
    if (rv == CKR_OK)
        c->value_len = v.ulValueLen;
    return rv;
}

static void oaep_params(CK_RSA_PKCS_OAEP_PARAMS *p, int hash)
{
    memset(p, 0, sizeof *p);
    p->hashAlg = hash == HASH_SHA256 ? CKM_SHA256 : CKM_SHA_1;
    p->mgf = hash == HASH_SHA256 ? CKG_MGF1_SHA256 : CKG_MGF1_SHA1;
    p->source = CKZ_DATA_SPECIFIED;
}

static int param_refused(CK_RV rv)
{
    return rv == CKR_MECHANISM_PARAM_INVALID || rv == CKR_ARGUMENTS_BAD || rv == CKR_MECHANISM_INVALID;
}

/* ---- RSA public half for OpenSSL wraps ----------------------------------------------------------------- */
typedef struct {
    uint8_t n[MAX_RSA_BYTES];
    CK_ULONG n_len;
    uint8_t e[16];
    CK_ULONG e_len;
} rsa_pub_ctx;

static CK_RV read_pub_op(const ok_p11_lease *l, void *arg)
{
    rsa_pub_ctx *c = arg;
    CK_ATTRIBUTE a[] = {{CKA_MODULUS, c->n, sizeof c->n}, {CKA_PUBLIC_EXPONENT, c->e, sizeof c->e}};
    CK_RV rv = l->f->C_GetAttributeValue(l->session, l->priv, a, 2);
    c->n_len = a[0].ulValueLen;
    c->e_len = a[1].ulValueLen;
    return rv;
}

/* Negotiates the OAEP hash for the OpenSSL path: a random probe wrapped in OpenSSL with SHA-256 must
 * unwrap in the token to the same bytes, else SHA-1 (after the token refuses SHA-256's parameters). */
static ok_err negotiate_by_probe(p11_provider *pp, ok_pkey *pkey)
{
    static const int HASHES[] = {HASH_SHA256, HASH_SHA1};
    for (size_t i = 0; i < 2; i++) {
        uint8_t probe[32], back[64], ct[MAX_RSA_BYTES];
        size_t ct_len = sizeof ct;
        ok_hash h = HASHES[i] == HASH_SHA256 ? OK_HASH_SHA256 : OK_HASH_SHA1;
        OK_GUARD(ok_random(probe, sizeof probe));
        OK_GUARD(ok_rsa_oaep_encrypt(pkey, h, h, NULL, 0, probe, sizeof probe, ct, &ct_len));
        CK_RSA_PKCS_OAEP_PARAMS params;
        oaep_params(&params, HASHES[i]);
        wrap_ctx c = {{CKM_RSA_PKCS_OAEP, &params, sizeof params}, key_priv, back, sizeof back, ct, ct_len};
        CK_RV rv;
        OK_GUARD(run(pp, unwrap_op, &c, &rv));
        int same = rv == CKR_OK && c.value_len == sizeof probe && ok_ct_equal(back, probe, sizeof probe);
        ok_zeroize(back, sizeof back);
        if (same) {
            atomic_store(&pp->oaep_hash, HASHES[i]);
            return OK_OK;
        }
        if (rv != CKR_OK && !param_refused(rv))
            return op_fail(pp, rv, "RSA-OAEP probe unwrap");
    }
    return ok_fail(OK_ERR_UNSUPPORTED, "PKCS#11 token \"%s\" unwraps RSA-OAEP with neither SHA-256 nor SHA-1",
                   ok_p11_token_label(pp->tok));
}

static ok_err rsa_public(p11_provider *pp, ok_pkey **out)
{
    ok_err rc = OK_OK;
    pthread_mutex_lock(&pp->mu);
    if (!pp->pkey) {
        rsa_pub_ctx c;
        CK_RV rv;
        rc = run(pp, read_pub_op, &c, &rv);
        if (rc == OK_OK && rv != CKR_OK)
            rc = op_fail(pp, rv, "reading the RSA public key");
        if (rc == OK_OK)
            rc = ok_pkey_rsa_from_public(&pp->pkey, c.n, c.n_len, c.e, c.e_len);
    }
    if (rc == OK_OK)
        rc = ok_pkey_share(pp->pkey, out);
    pthread_mutex_unlock(&pp->mu);
    return rc;
}

/* ---- wrap / unwrap ---------------------------------------------------------------------------------- */
static ok_err wrap_in_token(p11_provider *pp, uint8_t *key, size_t key_len, uint8_t *ct, size_t *ct_len,
                            const char **alg)
{
    int rsa = ok_p11_token_key_kind(pp->tok) == OK_P11_KEY_RSA;
    int hash = atomic_load(&pp->oaep_hash);
    CK_RSA_PKCS_OAEP_PARAMS params;
    for (int tries = 0; tries < 2; tries++) {
        wrap_ctx c = {{CKM_AES_KEY_WRAP_PAD, NULL, 0}, key_secret, key, key_len, ct, *ct_len};
        if (rsa) {
            oaep_params(&params, hash == HASH_UNKNOWN ? HASH_SHA256 : hash);
            c.mech = (CK_MECHANISM){CKM_RSA_PKCS_OAEP, &params, sizeof params};
            c.key = key_pub;
        }
        CK_RV rv;
        OK_GUARD(run(pp, wrap_op, &c, &rv));
        if (rv == CKR_OK) {
            if (rsa && hash == HASH_UNKNOWN)
                atomic_store(&pp->oaep_hash, HASH_SHA256);
            *alg = !rsa ? ALG_KWP : params.hashAlg == CKM_SHA256 ? ALG_OAEP_256 : ALG_OAEP;
            *ct_len = c.ct_len;
            return OK_OK;
        }
        if (rsa && hash == HASH_UNKNOWN && param_refused(rv)) {
            hash = HASH_SHA1;
            atomic_store(&pp->oaep_hash, HASH_SHA1);
            continue;
        }
        return op_fail(pp, rv, "C_WrapKey");
    }
    return op_fail(pp, CKR_MECHANISM_PARAM_INVALID, "C_WrapKey RSA-OAEP (SHA-1)");
}

static ok_err p11_wrap(ok_provider *p, const uint8_t *key, size_t key_len, ok_edk *out)
{
    p11_provider *pp = (p11_provider *)p;
    if (key_len == 0 || key_len > MAX_DATA_KEY)
        return ok_fail(OK_ERR_INVALID_ARG, "key of %zu bytes cannot be wrapped", key_len);
    uint8_t copy[MAX_DATA_KEY];
    uint8_t ct[MAX_RSA_BYTES];
    size_t ct_len = sizeof ct;
    const char *alg = NULL;
    memcpy(copy, key, key_len); /* PKCS#11 templates take non-const values */
    ok_err rc;
    ok_p11_lease l;
    /* Does the token have a public key object for RSA? Looked up through a short lease. */
    int use_openssl = 0;
    if (ok_p11_token_key_kind(pp->tok) == OK_P11_KEY_RSA) {
        rc = ok_p11_token_acquire(pp->tok, &l);
        if (rc != OK_OK)
            goto done;
        use_openssl = l.pub == CK_INVALID_HANDLE;
        ok_p11_token_release(pp->tok, &l, CKR_OK);
    }
    if (use_openssl) {
        ok_pkey *pkey = NULL;
        OK_GUARD_GOTO(rc, rsa_public(pp, &pkey), done);
        if (atomic_load(&pp->oaep_hash) == HASH_UNKNOWN)
            rc = negotiate_by_probe(pp, pkey);
        if (rc == OK_OK) {
            ok_hash h = atomic_load(&pp->oaep_hash) == HASH_SHA256 ? OK_HASH_SHA256 : OK_HASH_SHA1;
            alg = h == OK_HASH_SHA256 ? ALG_OAEP_256 : ALG_OAEP;
            rc = ok_pkey_size(pkey) <= sizeof ct
                     ? ok_rsa_oaep_encrypt(pkey, h, h, NULL, 0, copy, key_len, ct, &ct_len)
                     : ok_fail(OK_ERR_KEY, "RSA key too large");
        }
        ok_pkey_free(pkey);
    } else {
        rc = wrap_in_token(pp, copy, key_len, ct, &ct_len, &alg);
    }
    if (rc == OK_OK)
        rc = ok_edk_set(out, OK_PROVIDER_PKCS11, pp->key_id, "", alg, ct, ct_len);
done:
    ok_zeroize(copy, sizeof copy);
    return rc;
}

static int p11_matches(const ok_provider *p, const ok_edk *edk)
{
    const p11_provider *pp = (const p11_provider *)p;
    return strcmp(edk->provider, OK_PROVIDER_PKCS11) == 0 && strcmp(edk->key_id, pp->key_id) == 0;
}

static ok_err p11_unwrap(ok_provider *p, const ok_edk *edk, uint8_t *key, size_t key_len)
{
    p11_provider *pp = (p11_provider *)p;
    if (!p11_matches(p, edk))
        return OK_ERR_NO_RECIPIENT;
    int rsa = ok_p11_token_key_kind(pp->tok) == OK_P11_KEY_RSA;
    CK_RSA_PKCS_OAEP_PARAMS params;
    wrap_ctx c = {{CKM_AES_KEY_WRAP_PAD, NULL, 0}, key_secret, NULL, 0, edk->ct, edk->ct_len};
    if (rsa) {
        int hash = strcmp(edk->wrap_alg, ALG_OAEP_256) == 0 ? HASH_SHA256
                   : strcmp(edk->wrap_alg, ALG_OAEP) == 0   ? HASH_SHA1
                                                            : HASH_UNKNOWN;
        if (hash == HASH_UNKNOWN)
            return ok_fail(OK_ERR_AUTH, "wrapped key for %s uses %s, expected " ALG_OAEP " or " ALG_OAEP_256,
                           pp->key_id, edk->wrap_alg);
        oaep_params(&params, hash);
        c.mech = (CK_MECHANISM){CKM_RSA_PKCS_OAEP, &params, sizeof params};
        c.key = key_priv;
    } else if (strcmp(edk->wrap_alg, ALG_KWP) != 0) {
        return ok_fail(OK_ERR_AUTH, "wrapped key for %s uses %s, expected " ALG_KWP, pp->key_id, edk->wrap_alg);
    }
    if (edk->ct_len == 0 || edk->ct_len > MAX_RSA_BYTES)
        return ok_fail(OK_ERR_AUTH, "wrapped key for %s has a bad length", pp->key_id);
    uint8_t buf[MAX_DATA_KEY + 8];
    c.value = buf;
    c.value_len = sizeof buf;
    CK_RV rv;
    ok_err rc = OK_OK;
    if (rsa) {
        ok_p11_lease l;
        OK_GUARD(ok_p11_token_acquire(pp->tok, &l));
        int has_priv = l.priv != CK_INVALID_HANDLE;
        ok_p11_token_release(pp->tok, &l, CKR_OK);
        if (!has_priv)
            return ok_fail(OK_ERR_KEY, "PKCS#11 token \"%s\" holds only the public key: unwrapping needs the private key",
                           ok_p11_token_label(pp->tok));
    }
    rc = run(pp, unwrap_op, &c, &rv);
    /* SoftHSM reports a failed integrity check (KWP) or padding check (OAEP) as CKR_GENERAL_ERROR. */
    if (rc == OK_OK && (rv == CKR_BUFFER_TOO_SMALL || rv == CKR_GENERAL_ERROR))
        rc = ok_fail(OK_ERR_AUTH, "authentication failed: the wrapped data key for %s does not unwrap under this key (%s)",
                     pp->key_id, ok_p11_rv_name(rv));
    else if (rc == OK_OK && rv != CKR_OK && rsa && param_refused(rv))
        rc = ok_fail(OK_ERR_UNSUPPORTED, "PKCS#11 token \"%s\" does not support %s", ok_p11_token_label(pp->tok),
                     edk->wrap_alg);
    else if (rc == OK_OK && rv != CKR_OK)
        rc = op_fail(pp, rv, "C_UnwrapKey");
    if (rc == OK_OK && c.value_len != key_len)
        rc = ok_fail(OK_ERR_AUTH, "authentication failed: the wrapped data key for %s does not unwrap to %zu bytes",
                     pp->key_id, key_len);
    if (rc == OK_OK)
        memcpy(key, buf, key_len);
    ok_zeroize(buf, sizeof buf);
    return rc;
}

static ok_err p11_describe(const ok_provider *p, char *buf, size_t len)
{
    const p11_provider *pp = (const p11_provider *)p;
    snprintf(buf, len, "pkcs11 %s %s", ok_p11_token_key_kind(pp->tok) == OK_P11_KEY_AES ? "AES" : "RSA",
             pp->key_id);
    return OK_OK;
}

static void p11_destroy(ok_provider *p)
{
    p11_provider *pp = (p11_provider *)p;
    ok_p11_token_close(pp->tok);
    ok_pkey_free(pp->pkey);
    free(pp->key_id);
    pthread_mutex_destroy(&pp->mu);
    free(pp);
}

static const ok_provider_vtable PKCS11_VTABLE = {
    .size = sizeof(ok_provider_vtable),
    .wrap = p11_wrap,
    .unwrap = p11_unwrap,
    .describe = p11_describe,
    .matches = p11_matches,
    .destroy = p11_destroy,
};

ok_p11_token *ok_pkcs11_provider_token(ok_provider *p)
{
    return p && p->vt == &PKCS11_VTABLE ? ((p11_provider *)p)->tok : NULL;
}

ok_err ok_pkcs11_provider_open(const char *uri, ok_provider **out)
{
    ok_p11_uri u;
    OK_GUARD(ok_p11_uri_parse(uri, &u));
    p11_provider *pp = calloc(1, sizeof *pp);
    if (!pp) {
        ok_p11_uri_clear(&u);
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    }
    pp->base.vt = &PKCS11_VTABLE;
    pthread_mutex_init(&pp->mu, NULL);
    ok_err rc = ok_p11_uri_key_id(&u, &pp->key_id);
    if (rc == OK_OK)
        rc = ok_p11_token_open(&u, &pp->tok);
    ok_p11_uri_clear(&u);
    if (rc != OK_OK) {
        p11_destroy(&pp->base);
        return rc;
    }
    *out = &pp->base;
    return OK_OK;
}
