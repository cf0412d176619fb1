/* HSM-backed vault keys in a PKCS#11 token (the ok_vault_hsm vtable of include/ownkey/vault.h): making keys
 * as token objects that are CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE and not CKA_EXTRACTABLE (RSA and EC key
 * pairs, AES keys), labelled "ownkey:<name>/<version>" with CKA_ID the version's 16 bytes; returning the
 * public half; running the private operations there (RSA-OAEP with SHA-1 and PKCS#1 v1.5 decryption,
 * RS*, PS* and ES* signatures over a digest, AES key wrap of data through a session object), and destroying
 * the objects; and BYOK into the token (the target unwrapped with CKM_AES_KEY_WRAP_PAD under the ephemeral
 * AES key, a session object meanwhile). Sessions, login and reconnects are pkcs11_module.c's. Never logs or reports the PIN. */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "providers/pkcs11_hsm.h"
#include "providers/pkcs11_internal.h"

#define MAX_RSA_BYTES 512
#define MAX_POINT 160

typedef struct {
    ok_vault_hsm base;
    ok_p11_token *tok;
} p11_hsm;

static CK_BBOOL B_TRUE = CK_TRUE, B_FALSE = CK_FALSE;

/* ---- one operation on a pooled session, retried once after a reconnect ------------------------------- */
typedef CK_RV (*hsm_op)(const ok_p11_lease *l, void *ctx);

static ok_err run_op(p11_hsm *h, hsm_op op, void *ctx, const char *what)
{
    CK_RV rv = CKR_OK;
    for (int attempt = 0; attempt < 2; attempt++) {
        ok_p11_lease l;
        OK_GUARD(ok_p11_token_acquire(h->tok, &l));
        rv = op(&l, ctx);
        ok_p11_token_release(h->tok, &l, rv);
        if (!ok_p11_rv_stale(rv) || rv == CKR_KEY_HANDLE_INVALID)
            break;
    }
    if (rv == CKR_OK)
        return OK_OK;
    char msg[200];
    snprintf(msg, sizeof msg, "HSM \"%s\": %s", ok_p11_token_label(h->tok), what);
    return ok_p11_fail(rv, msg);
}

/* The one object of class cls with this label; CKR_KEY_HANDLE_INVALID when there is none. */
static CK_RV find(const ok_p11_lease *l, const char *label, CK_OBJECT_CLASS cls, CK_OBJECT_HANDLE *obj)
{
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_LABEL, (void *)label, strlen(label)}};
    CK_OBJECT_HANDLE found[2];
    CK_ULONG n = 0;
    CK_RV rv = l->f->C_FindObjectsInit(l->session, t, 2);
    if (rv != CKR_OK)
        return rv;
    rv = l->f->C_FindObjects(l->session, found, 2, &n);
    l->f->C_FindObjectsFinal(l->session);
    if (rv != CKR_OK)
        return rv;
    if (n != 1)
        return CKR_KEY_HANDLE_INVALID;
    *obj = found[0];
    return CKR_OK;
}

/* ---- generate ---------------------------------------------------------------------------------------- */
typedef struct {
    const char *label;
    uint8_t id[16];
    ok_kty kty;
    unsigned bits;
    ok_curve curve;
    uint8_t a[MAX_RSA_BYTES], b[16]; /* RSA: n, e; EC: the CKA_EC_POINT DER */
    CK_ULONG a_len, b_len;
} gen_ctx;

static const uint8_t OID_P256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t OID_P384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};

#define COMMON(c) {CKA_TOKEN, &B_TRUE, 1}, {CKA_LABEL, (void *)(c)->label, strlen((c)->label)}, {CKA_ID, (c)->id, 16}
#define PRIVATE_PART {CKA_PRIVATE, &B_TRUE, 1}, {CKA_SENSITIVE, &B_TRUE, 1}, {CKA_EXTRACTABLE, &B_FALSE, 1}

static CK_RV gen_pair(const ok_p11_lease *l, gen_ctx *c)
{
    CK_ULONG mbits = c->bits;
    CK_BYTE e[] = {1, 0, 1};
    CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE, priv = CK_INVALID_HANDLE;
    CK_RV rv;
    if (c->kty == OK_KTY_RSA) {
        CK_MECHANISM m = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
        CK_ATTRIBUTE pt[] = {COMMON(c), {CKA_ENCRYPT, &B_TRUE, 1}, {CKA_VERIFY, &B_TRUE, 1},
                             {CKA_MODULUS_BITS, &mbits, sizeof mbits}, {CKA_PUBLIC_EXPONENT, e, sizeof e}};
        CK_ATTRIBUTE st[] = {COMMON(c), PRIVATE_PART, {CKA_DECRYPT, &B_TRUE, 1}, {CKA_SIGN, &B_TRUE, 1}};
        rv = l->f->C_GenerateKeyPair(l->session, &m, pt, 7, st, 8, &pub, &priv);
        if (rv != CKR_OK)
            return rv;
        CK_ATTRIBUTE r[] = {{CKA_MODULUS, c->a, sizeof c->a}, {CKA_PUBLIC_EXPONENT, c->b, sizeof c->b}};
        rv = l->f->C_GetAttributeValue(l->session, pub, r, 2);
        c->a_len = r[0].ulValueLen;
        c->b_len = r[1].ulValueLen;
    } else {
        CK_MECHANISM m = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
        const uint8_t *oid = c->curve == OK_CURVE_P384 ? OID_P384 : OID_P256;
        CK_ULONG oid_len = c->curve == OK_CURVE_P384 ? sizeof OID_P384 : sizeof OID_P256;
        CK_ATTRIBUTE pt[] = {COMMON(c), {CKA_VERIFY, &B_TRUE, 1}, {CKA_EC_PARAMS, (void *)oid, oid_len}};
        CK_ATTRIBUTE st[] = {COMMON(c), PRIVATE_PART, {CKA_SIGN, &B_TRUE, 1}};
        rv = l->f->C_GenerateKeyPair(l->session, &m, pt, 5, st, 7, &pub, &priv);
        if (rv != CKR_OK)
            return rv;
        CK_ATTRIBUTE r[] = {{CKA_EC_POINT, c->a, sizeof c->a}};
        rv = l->f->C_GetAttributeValue(l->session, pub, r, 1);
        c->a_len = r[0].ulValueLen;
    }
    if (rv != CKR_OK) {
        l->f->C_DestroyObject(l->session, pub);
        l->f->C_DestroyObject(l->session, priv);
    }
    return rv;
}

static CK_RV gen_op(const ok_p11_lease *l, void *arg)
{
    gen_ctx *c = arg;
    if (c->kty != OK_KTY_OCT)
        return gen_pair(l, c);
    CK_MECHANISM m = {CKM_AES_KEY_GEN, NULL, 0};
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_AES;
    CK_ULONG len = c->bits / 8;
    CK_ATTRIBUTE t[] = {COMMON(c), PRIVATE_PART, {CKA_CLASS, &cls, sizeof cls}, {CKA_KEY_TYPE, &kt, sizeof kt},
                        {CKA_VALUE_LEN, &len, sizeof len}, {CKA_WRAP, &B_TRUE, 1}, {CKA_UNWRAP, &B_TRUE, 1},
                        {CKA_ENCRYPT, &B_TRUE, 1}, {CKA_DECRYPT, &B_TRUE, 1}};
    CK_OBJECT_HANDLE k = CK_INVALID_HANDLE;
    return l->f->C_GenerateKey(l->session, &m, t, sizeof t / sizeof t[0], &k);
}

/* An OpenSSL public key from the token's attributes, as an ok_pkey (through SubjectPublicKeyInfo DER). */
static ok_err public_key(const gen_ctx *c, ok_pkey **out)
{
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *pc = NULL;
    EVP_PKEY *pkey = NULL;
    BIGNUM *n = NULL, *e = NULL;
    unsigned char *der = NULL;
    ok_err rc = ok_fail(OK_ERR_CRYPTO, "the HSM's public key is malformed");
    int ok = bld != NULL;

    if (c->kty == OK_KTY_RSA) {
        n = BN_bin2bn(c->a, (int)c->a_len, NULL);
        e = BN_bin2bn(c->b, (int)c->b_len, NULL);
        ok = ok && n && e && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
             OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e);
    } else {
        /* CKA_EC_POINT is a DER OCTET STRING around the uncompressed point */
        size_t hdr = c->a_len > 2 && c->a[1] == 0x81 ? 3 : 2, want = c->curve == OK_CURVE_P384 ? 97 : 65;
        ok = ok && c->a_len == hdr + want && c->a[0] == 0x04 && c->a[hdr] == 0x04 &&
             OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                             c->curve == OK_CURVE_P384 ? "secp384r1" : "prime256v1", 0) &&
             OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, c->a + hdr, want);
    }
    ok = ok && (params = OSSL_PARAM_BLD_to_param(bld)) != NULL &&
         (pc = EVP_PKEY_CTX_new_from_name(NULL, c->kty == OK_KTY_RSA ? "RSA" : "EC", NULL)) != NULL &&
         EVP_PKEY_fromdata_init(pc) == 1 && EVP_PKEY_fromdata(pc, &pkey, EVP_PKEY_PUBLIC_KEY, params) == 1;
    int der_len = ok ? i2d_PUBKEY(pkey, &der) : -1;
    if (der_len > 0) {
        ok_err_clear();
        rc = ok_pkey_from_der(out, der, (size_t)der_len, 0);
    }
    OPENSSL_free(der);
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(pc);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    return rc;
}

static ok_err hsm_destroy_key(ok_vault_hsm *base, const char *label);

/* The version's 16 bytes: the label ends in "/<32 hex>". */
static void label_id(const char *label, uint8_t id[16])
{
    const char *hex = strrchr(label, '/');
    memset(id, 0, 16);
    for (size_t i = 0; hex != NULL && strlen(hex + 1) == 32 && i < 32; i++) {
        char ch = hex[1 + i];
        int v = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : 0;
        id[i / 2] |= (uint8_t)(i % 2 ? v : v << 4);
    }
}

static ok_err hsm_generate(ok_vault_hsm *base, const char *label, ok_kty kty, unsigned bits, ok_curve curve,
                           ok_pkey **pub)
{
    p11_hsm *h = (p11_hsm *)base;
    gen_ctx c = {.label = label, .kty = kty, .bits = bits, .curve = curve};
    *pub = NULL;
    label_id(label, c.id);
    OK_GUARD(run_op(h, gen_op, &c, kty == OK_KTY_OCT ? "C_GenerateKey" : "C_GenerateKeyPair"));
    if (kty == OK_KTY_OCT)
        return OK_OK;
    ok_err rc = public_key(&c, pub);
    if (rc != OK_OK)
        (void)hsm_destroy_key(base, label);
    return rc;
}

/* ---- operations -------------------------------------------------------------------------------------- */
typedef struct {
    const char *label;
    ok_kty kty;
    ok_hsm_op op;
    ok_sig_alg sig;
    const uint8_t *in;
    size_t in_len;
    uint8_t *out;
    CK_ULONG out_len;
} run_ctx;

static const uint8_t DI_SHA256[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                    0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
static const uint8_t DI_SHA384[] = {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                    0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30};
static const uint8_t DI_SHA512[] = {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                    0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40};

static CK_RV sign_op(const ok_p11_lease *l, run_ctx *c, CK_OBJECT_HANDLE key)
{
    uint8_t buf[sizeof DI_SHA512 + 64];
    const uint8_t *di = NULL;
    size_t di_len = 0, hlen = 32;
    CK_RSA_PKCS_PSS_PARAMS pss = {CKM_SHA256, CKG_MGF1_SHA256, 32};
    CK_MECHANISM m = {CKM_ECDSA, NULL, 0};
    switch (c->sig) {
    case OK_SIG_RS256: di = DI_SHA256, di_len = sizeof DI_SHA256; break;
    case OK_SIG_RS384: di = DI_SHA384, di_len = sizeof DI_SHA384, hlen = 48; break;
    case OK_SIG_RS512: di = DI_SHA512, di_len = sizeof DI_SHA512, hlen = 64; break;
    case OK_SIG_PS384: pss = (CK_RSA_PKCS_PSS_PARAMS){CKM_SHA384, CKG_MGF1_SHA384, 48}; break;
    case OK_SIG_PS512: pss = (CK_RSA_PKCS_PSS_PARAMS){CKM_SHA512, CKG_MGF1_SHA512, 64}; break;
    default: break;
    }
    if (c->sig == OK_SIG_PS256 || c->sig == OK_SIG_PS384 || c->sig == OK_SIG_PS512)
        m = (CK_MECHANISM){CKM_RSA_PKCS_PSS, &pss, sizeof pss};
    if (di != NULL) {
        if (c->in_len != hlen)
            return CKR_DATA_LEN_RANGE;
        memcpy(buf, di, di_len);
        memcpy(buf + di_len, c->in, hlen);
        m = (CK_MECHANISM){CKM_RSA_PKCS, NULL, 0};
    }
    CK_RV rv = l->f->C_SignInit(l->session, &m, key);
    if (rv == CKR_OK)
        rv = di != NULL ? l->f->C_Sign(l->session, buf, di_len + hlen, c->out, &c->out_len)
                        : l->f->C_Sign(l->session, (CK_BYTE_PTR)c->in, c->in_len, c->out, &c->out_len);
    return rv;
}

/* AES key wrap (RFC 3394) of data: the data become a session object that the token wraps, or the token
 * unwraps into one whose value is read back; the object is destroyed at once either way. */
static CK_RV kw_op(const ok_p11_lease *l, run_ctx *c, CK_OBJECT_HANDLE key)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
    CK_MECHANISM m = {CKM_AES_KEY_WRAP, NULL, 0};
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_KEY_TYPE, &kt, sizeof kt}, {CKA_TOKEN, &B_FALSE, 1},
                        {CKA_SENSITIVE, &B_FALSE, 1}, {CKA_EXTRACTABLE, &B_TRUE, 1},
                        {CKA_VALUE, (void *)c->in, c->in_len}};
    CK_OBJECT_HANDLE obj = CK_INVALID_HANDLE;
    CK_RV rv;
    if (c->op == OK_HSM_AES_KW_WRAP) {
        rv = l->f->C_CreateObject(l->session, t, 6, &obj);
        if (rv == CKR_OK)
            rv = l->f->C_WrapKey(l->session, &m, key, obj, c->out, &c->out_len);
    } else {
        rv = l->f->C_UnwrapKey(l->session, &m, key, (CK_BYTE_PTR)c->in, c->in_len, t, 5, &obj);
        CK_ATTRIBUTE v = {CKA_VALUE, c->out, c->out_len};
        if (rv == CKR_OK)
            rv = l->f->C_GetAttributeValue(l->session, obj, &v, 1);
        c->out_len = v.ulValueLen;
    }
    if (obj != CK_INVALID_HANDLE)
        l->f->C_DestroyObject(l->session, obj);
    if (c->op == OK_HSM_AES_KW_UNWRAP && (rv == CKR_GENERAL_ERROR || rv == CKR_FUNCTION_FAILED))
        rv = CKR_WRAPPED_KEY_INVALID; /* an integrity failure, as SoftHSM reports it */
    return rv;
}

static CK_RV do_run(const ok_p11_lease *l, void *arg)
{
    run_ctx *c = arg;
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    CK_RV rv = find(l, c->label, c->kty == OK_KTY_OCT ? CKO_SECRET_KEY : CKO_PRIVATE_KEY, &key);
    if (rv != CKR_OK)
        return rv;
    if (c->op == OK_HSM_SIGN_DIGEST)
        return sign_op(l, c, key);
    if (c->op == OK_HSM_AES_KW_WRAP || c->op == OK_HSM_AES_KW_UNWRAP)
        return kw_op(l, c, key);
    CK_RSA_PKCS_OAEP_PARAMS oaep = {CKM_SHA_1, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, NULL, 0};
    CK_MECHANISM m = c->op == OK_HSM_RSA_OAEP_DECRYPT ? (CK_MECHANISM){CKM_RSA_PKCS_OAEP, &oaep, sizeof oaep}
                                                      : (CK_MECHANISM){CKM_RSA_PKCS, NULL, 0};
    rv = l->f->C_DecryptInit(l->session, &m, key);
    if (rv == CKR_OK)
        rv = l->f->C_Decrypt(l->session, (CK_BYTE_PTR)c->in, c->in_len, c->out, &c->out_len);
    /* SoftHSM answers a bad padding with CKR_GENERAL_ERROR: a failed decryption all the same */
    return rv == CKR_GENERAL_ERROR || rv == CKR_FUNCTION_FAILED ? CKR_ENCRYPTED_DATA_INVALID : rv;
}

static ok_err hsm_run(ok_vault_hsm *base, const char *label, ok_kty kty, ok_hsm_op op, ok_sig_alg sig,
                      const uint8_t *in, size_t in_len, uint8_t *out, size_t *out_len)
{
    run_ctx c = {label, kty, op, sig, in, in_len, out, *out_len};
    if ((op == OK_HSM_AES_KW_WRAP || op == OK_HSM_AES_KW_UNWRAP) != (kty == OK_KTY_OCT) ||
        ((op == OK_HSM_RSA_OAEP_DECRYPT || op == OK_HSM_RSA_PKCS1_DECRYPT) && kty != OK_KTY_RSA))
        return ok_fail(OK_ERR_INVALID_ARG, "this operation does not fit the HSM key's type");
    ok_err rc = run_op((p11_hsm *)base, do_run, &c, op == OK_HSM_SIGN_DIGEST ? "sign" : "key operation");
    *out_len = rc == OK_OK ? c.out_len : 0;
    return rc;
}

/* ---- BYOK: unwrap into the token ---------------------------------------------------------------------- */
typedef struct {
    const char *label;
    ok_kty kty;
    const uint8_t *aes, *wrapped;
    size_t aes_len, wrapped_len;
    gen_ctx pub; /* RSA: modulus and exponent read back */
    CK_ULONG value_len;
} unwrap_ctx;

/* The ephemeral AES key becomes a session object that may only unwrap; the target is unwrapped from it
 * with CKM_AES_KEY_WRAP_PAD as a token object; the session object is destroyed either way. */
static CK_RV unwrap_into_op(const ok_p11_lease *l, void *arg)
{
    unwrap_ctx *c = arg;
    CK_OBJECT_CLASS scls = CKO_SECRET_KEY, cls = c->kty == OK_KTY_OCT ? CKO_SECRET_KEY : CKO_PRIVATE_KEY;
    CK_KEY_TYPE aes = CKK_AES, kt = c->kty == OK_KTY_OCT ? CKK_AES : CKK_RSA;
    CK_ATTRIBUTE et[] = {{CKA_CLASS, &scls, sizeof scls}, {CKA_KEY_TYPE, &aes, sizeof aes}, {CKA_TOKEN, &B_FALSE, 1},
                         {CKA_SENSITIVE, &B_TRUE, 1}, {CKA_EXTRACTABLE, &B_FALSE, 1}, {CKA_UNWRAP, &B_TRUE, 1},
                         {CKA_VALUE, (void *)c->aes, c->aes_len}};
    CK_ATTRIBUTE rsa[] = {COMMON(&c->pub), PRIVATE_PART, {CKA_CLASS, &cls, sizeof cls}, {CKA_KEY_TYPE, &kt, sizeof kt},
                          {CKA_DECRYPT, &B_TRUE, 1}, {CKA_SIGN, &B_TRUE, 1}};
    CK_ATTRIBUTE oct[] = {COMMON(&c->pub), PRIVATE_PART, {CKA_CLASS, &cls, sizeof cls}, {CKA_KEY_TYPE, &kt, sizeof kt},
                          {CKA_WRAP, &B_TRUE, 1}, {CKA_UNWRAP, &B_TRUE, 1}, {CKA_ENCRYPT, &B_TRUE, 1},
                          {CKA_DECRYPT, &B_TRUE, 1}};
    CK_MECHANISM m = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
    CK_OBJECT_HANDLE eph = CK_INVALID_HANDLE, obj = CK_INVALID_HANDLE;
    CK_RV rv = l->f->C_CreateObject(l->session, et, sizeof et / sizeof et[0], &eph);
    if (rv == CKR_OK)
        rv = c->kty == OK_KTY_OCT
                 ? l->f->C_UnwrapKey(l->session, &m, eph, (CK_BYTE_PTR)c->wrapped, c->wrapped_len, oct,
                                     sizeof oct / sizeof oct[0], &obj)
                 : l->f->C_UnwrapKey(l->session, &m, eph, (CK_BYTE_PTR)c->wrapped, c->wrapped_len, rsa,
                                     sizeof rsa / sizeof rsa[0], &obj);
    if (eph != CK_INVALID_HANDLE)
        l->f->C_DestroyObject(l->session, eph);
    /* SoftHSM answers an integrity failure, or a PKCS#8 that is no RSA key, with a general error */
    if (rv == CKR_GENERAL_ERROR || rv == CKR_FUNCTION_FAILED || rv == CKR_DATA_INVALID || rv == CKR_DATA_LEN_RANGE)
        rv = CKR_WRAPPED_KEY_INVALID;
    if (rv != CKR_OK)
        return rv;
    if (c->kty == OK_KTY_OCT) {
        /* SoftHSM neither sets CKA_VALUE_LEN of an unwrapped key (nor accepts it in the template): RFC 5649
         * adds 8 bytes to 16, 24 or 32, and one AES-ECB block shows the key is an AES key of that size (a
         * 20-byte secret also wraps to 32 bytes, and AES refuses it) */
        CK_MECHANISM ecb = {CKM_AES_ECB, NULL, 0};
        CK_BYTE block[16] = {0}, enc[16];
        CK_ULONG enc_len = sizeof enc;
        c->value_len = c->wrapped_len - 8;
        rv = l->f->C_EncryptInit(l->session, &ecb, obj);
        if (rv == CKR_OK)
            rv = l->f->C_Encrypt(l->session, block, sizeof block, enc, &enc_len);
        if (rv != CKR_OK && !ok_p11_rv_stale(rv))
            rv = CKR_WRAPPED_KEY_INVALID;
    } else {
        CK_ATTRIBUTE r[] = {{CKA_MODULUS, c->pub.a, sizeof c->pub.a}, {CKA_PUBLIC_EXPONENT, c->pub.b, sizeof c->pub.b}};
        rv = l->f->C_GetAttributeValue(l->session, obj, r, 2);
        c->pub.a_len = r[0].ulValueLen;
        c->pub.b_len = r[1].ulValueLen;
    }
    if (rv != CKR_OK)
        l->f->C_DestroyObject(l->session, obj);
    return rv;
}

static ok_err hsm_unwrap_into(ok_vault_hsm *base, const char *label, ok_kty kty, const uint8_t *aes, size_t aes_len,
                              const uint8_t *wrapped, size_t wrapped_len, ok_pkey **pub, unsigned *bits)
{
    unwrap_ctx c = {.label = label, .kty = kty, .aes = aes, .wrapped = wrapped, .aes_len = aes_len,
                    .wrapped_len = wrapped_len};
    ok_err rc;
    *pub = NULL;
    *bits = 0;
    if (kty != OK_KTY_RSA && kty != OK_KTY_OCT)
        return ok_fail(OK_ERR_INVALID_ARG, "only RSA and AES keys can be unwrapped into the HSM");
    c.pub.label = label;
    c.pub.kty = kty;
    label_id(label, c.pub.id);
    OK_GUARD(run_op((p11_hsm *)base, unwrap_into_op, &c, "C_UnwrapKey (CKM_AES_KEY_WRAP_PAD)"));
    if (kty == OK_KTY_OCT) {
        *bits = (unsigned)c.value_len * 8;
        return OK_OK;
    }
    *bits = (unsigned)c.pub.a_len * 8;
    if ((rc = public_key(&c.pub, pub)) != OK_OK)
        (void)hsm_destroy_key(base, label);
    return rc;
}

/* ---- destroy, close, open ---------------------------------------------------------------------------- */
static CK_RV destroy_op(const ok_p11_lease *l, void *arg)
{
    const char *label = arg;
    CK_ATTRIBUTE t[] = {{CKA_LABEL, (void *)label, strlen(label)}};
    CK_OBJECT_HANDLE found[8];
    CK_ULONG n = 0;
    CK_RV rv = l->f->C_FindObjectsInit(l->session, t, 1);
    if (rv != CKR_OK)
        return rv;
    rv = l->f->C_FindObjects(l->session, found, 8, &n);
    l->f->C_FindObjectsFinal(l->session);
    for (CK_ULONG i = 0; rv == CKR_OK && i < n; i++)
        rv = l->f->C_DestroyObject(l->session, found[i]);
    return rv;
}

static ok_err hsm_destroy_key(ok_vault_hsm *base, const char *label)
{
    return run_op((p11_hsm *)base, destroy_op, (void *)label, "C_DestroyObject");
}

static void hsm_close(ok_vault_hsm *base)
{
    p11_hsm *h = (p11_hsm *)base;
    if (h == NULL)
        return;
    ok_p11_token_close(h->tok);
    free(h);
}

static const ok_vault_hsm_vtable P11_HSM_VTABLE = {
    .size = sizeof(ok_vault_hsm_vtable),
    .generate = hsm_generate,
    .run = hsm_run,
    .destroy_key = hsm_destroy_key,
    .close = hsm_close,
    .unwrap_into = hsm_unwrap_into,
};

ok_err ok_pkcs11_hsm_open(const char *uri, ok_vault_hsm **out)
{
    ok_p11_uri u;
    *out = NULL;
    if (uri == NULL || strncmp(uri, "pkcs11:", 7) != 0)
        return ok_fail(OK_ERR_INVALID_ARG, "--hsm needs a \"pkcs11:\" URI");
    OK_GUARD(ok_p11_uri_parse(uri, &u));
    p11_hsm *h = calloc(1, sizeof *h);
    ok_err rc = h != NULL ? ok_p11_token_open_keyless(&u, &h->tok) : ok_fail(OK_ERR_NOMEM, "out of memory");
    ok_p11_uri_clear(&u);
    if (rc != OK_OK) {
        free(h);
        return rc;
    }
    h->base.vt = &P11_HSM_VTABLE;
    *out = &h->base;
    return OK_OK;
}
