/* Signatures: the JOSE algorithms (RS*, PS*, ES*) over messages or over digests the caller computed (the
 * vault's sign/verify, as Azure Key Vault's), with ES* signatures converted between
 * raw r||s (JOSE, IEEE P1363) and DER, and the generic RSASSA-PKCS1-v1_5 / RSASSA-PSS forms with
 * explicit hashes and salt length. Verification returns OK_ERR_AUTH for every bad signature. Owns no
 * key objects (see pkey.c) and no JWS/JWT encoding. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

#include "crypto/internal.h"

#define BAD_SIGNATURE "signature verification failed"
#define DER_SLACK 16 /* an ECDSA-Sig-Value is at most 2 * field + 9 bytes for P-256/P-384 */

/* How a signature operation is set up. */
typedef struct {
    const EVP_MD *md;
    int padding;        /* RSA_PKCS1_PADDING, RSA_PKCS1_PSS_PADDING, or 0 for ECDSA */
    const EVP_MD *mgf;  /* PSS only */
    int salt_len;       /* PSS only, bytes */
} sig_params;

static ok_err sig_setup(EVP_PKEY_CTX *pctx, const sig_params *sp)
{
    if (sp->padding == 0)
        return OK_OK;
    if (EVP_PKEY_CTX_set_rsa_padding(pctx, sp->padding) != 1)
        return ok_crypto_fail(OK_ERR_KEY, "RSA signature padding");
    if (sp->padding == RSA_PKCS1_PSS_PADDING &&
        (EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, sp->salt_len) != 1 || EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, sp->mgf) != 1))
        return ok_crypto_fail(OK_ERR_KEY, "RSA-PSS parameters");
    return OK_OK;
}

/* Signs msg; *sig_len is the capacity on entry and the signature length on return. */
static ok_err digest_sign(const ok_pkey *k, const sig_params *sp, const uint8_t *msg, size_t msg_len, uint8_t *sig,
                          size_t *sig_len)
{
    static const uint8_t empty[1] = {0};
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    ok_err rc = OK_OK;

    if (mctx == NULL)
        return ok_crypto_fail(OK_ERR_NOMEM, "EVP_MD_CTX_new");
    if (EVP_DigestSignInit(mctx, &pctx, sp->md, NULL, k->pkey) != 1) {
        rc = ok_crypto_fail(OK_ERR_KEY, "signature setup");
        goto done;
    }
    OK_GUARD_GOTO(rc, sig_setup(pctx, sp), done);
    if (EVP_DigestSign(mctx, sig, sig_len, msg_len ? msg : empty, msg_len) != 1)
        rc = ok_crypto_fail(OK_ERR_CRYPTO, "signing");
done:
    EVP_MD_CTX_free(mctx);
    return rc;
}

/* OK_OK for a good signature, OK_ERR_AUTH for a bad one, other codes for setup failures. */
static ok_err digest_verify(const ok_pkey *k, const sig_params *sp, const uint8_t *msg, size_t msg_len,
                            const uint8_t *sig, size_t sig_len)
{
    static const uint8_t empty[1] = {0};
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    ok_err rc = OK_OK;

    if (mctx == NULL)
        return ok_crypto_fail(OK_ERR_NOMEM, "EVP_MD_CTX_new");
    if (EVP_DigestVerifyInit(mctx, &pctx, sp->md, NULL, k->pkey) != 1) {
        rc = ok_crypto_fail(OK_ERR_KEY, "verification setup");
        goto done;
    }
    OK_GUARD_GOTO(rc, sig_setup(pctx, sp), done);
    if (EVP_DigestVerify(mctx, sig, sig_len, msg_len ? msg : empty, msg_len) != 1) {
        ERR_clear_error();
        rc = ok_fail(OK_ERR_AUTH, BAD_SIGNATURE);
    }
done:
    EVP_MD_CTX_free(mctx);
    return rc;
}

/* A context for signing (or verifying) a digest the caller computed: EVP_PKEY_sign/verify with the hash
 * named, so that RSASSA-PKCS1-v1_5 builds the DigestInfo and PSS hashes the digest as its mHash. */
static ok_err prehashed_ctx(const ok_pkey *k, const sig_params *sp, int verify, EVP_PKEY_CTX **out)
{
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
    ok_err rc = OK_OK;

    if (pctx == NULL)
        return ok_crypto_fail(OK_ERR_NOMEM, "EVP_PKEY_CTX_new");
    if ((verify ? EVP_PKEY_verify_init(pctx) : EVP_PKEY_sign_init(pctx)) != 1) {
        rc = ok_crypto_fail(OK_ERR_KEY, verify ? "verification setup" : "signature setup");
        goto fail;
    }
    OK_GUARD_GOTO(rc, sig_setup(pctx, sp), fail);
    if (EVP_PKEY_CTX_set_signature_md(pctx, sp->md) != 1) {
        rc = ok_crypto_fail(OK_ERR_KEY, "signature digest");
        goto fail;
    }
    *out = pctx;
    return OK_OK;
fail:
    EVP_PKEY_CTX_free(pctx);
    return rc;
}

/* Signs a digest; *sig_len is the capacity on entry. */
static ok_err prehashed_sign(const ok_pkey *k, const sig_params *sp, const uint8_t *digest, size_t len, uint8_t *sig,
                             size_t *sig_len)
{
    EVP_PKEY_CTX *pctx = NULL;
    OK_GUARD(prehashed_ctx(k, sp, 0, &pctx));
    ok_err rc = EVP_PKEY_sign(pctx, sig, sig_len, digest, len) == 1 ? OK_OK : ok_crypto_fail(OK_ERR_CRYPTO, "signing");
    EVP_PKEY_CTX_free(pctx);
    return rc;
}

/* OK_OK for a good signature over the digest, OK_ERR_AUTH for a bad one, other codes for setup failures. */
static ok_err prehashed_verify(const ok_pkey *k, const sig_params *sp, const uint8_t *digest, size_t len,
                               const uint8_t *sig, size_t sig_len)
{
    EVP_PKEY_CTX *pctx = NULL;
    OK_GUARD(prehashed_ctx(k, sp, 1, &pctx));
    ok_err rc = OK_OK;
    if (EVP_PKEY_verify(pctx, sig, sig_len, digest, len) != 1) {
        ERR_clear_error();
        rc = ok_fail(OK_ERR_AUTH, BAD_SIGNATURE);
    }
    EVP_PKEY_CTX_free(pctx);
    return rc;
}

/* One signing or verifying primitive over either the message or its digest. */
static ok_err any_sign(const ok_pkey *k, const sig_params *sp, int prehashed, const uint8_t *in, size_t in_len,
                       uint8_t *sig, size_t *sig_len)
{
    return prehashed ? prehashed_sign(k, sp, in, in_len, sig, sig_len) : digest_sign(k, sp, in, in_len, sig, sig_len);
}

static ok_err any_verify(const ok_pkey *k, const sig_params *sp, int prehashed, const uint8_t *in, size_t in_len,
                         const uint8_t *sig, size_t sig_len)
{
    return prehashed ? prehashed_verify(k, sp, in, in_len, sig, sig_len)
                     : digest_verify(k, sp, in, in_len, sig, sig_len);
}

/* ---- key checks -------------------------------------------------------------------------------- */

static ok_err need_rsa(const ok_pkey *k, int pss, int sign)
{
    int id = EVP_PKEY_get_base_id(k->pkey);

    if (id != EVP_PKEY_RSA && !(pss && id == EVP_PKEY_RSA_PSS))
        return ok_fail(OK_ERR_KEY, pss ? "RSA-PSS needs an RSA key" : "RSASSA-PKCS1-v1_5 needs an rsaEncryption key");
    if (sign && !k->is_private)
        return ok_fail(OK_ERR_KEY, "signing needs a private key");
    return OK_OK;
}

static ok_err need_ec(const ok_pkey *k, ok_curve want, int sign)
{
    ok_curve curve;

    OK_GUARD(ok_crypto_pkey_curve(k, &curve));
    if (curve != want)
        return ok_fail(OK_ERR_KEY, "ECDSA: the key is on the wrong curve for this algorithm");
    if (sign && !k->is_private)
        return ok_fail(OK_ERR_KEY, "signing needs a private key");
    return OK_OK;
}

/* ---- ECDSA signature encodings ------------------------------------------------------------------- */

/* DER ECDSA-Sig-Value -> r||s, each half `half` bytes. */
static ok_err ecdsa_der_to_raw(const uint8_t *der, size_t der_len, size_t half, uint8_t *raw)
{
    const unsigned char *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    const BIGNUM *r, *s;
    ok_err rc = OK_OK;

    if (es == NULL)
        return ok_crypto_fail(OK_ERR_CRYPTO, "ECDSA signature decoding");
    ECDSA_SIG_get0(es, &r, &s);
    if (BN_bn2binpad(r, raw, (int)half) != (int)half || BN_bn2binpad(s, raw + half, (int)half) != (int)half)
        rc = ok_fail(OK_ERR_CRYPTO, "ECDSA signature does not fit the curve");
    ECDSA_SIG_free(es);
    return rc;
}

/* r||s -> malloc'ed DER; OK_ERR_AUTH if raw has the wrong length. */
static ok_err ecdsa_raw_to_der(const uint8_t *raw, size_t raw_len, size_t half, uint8_t **der, size_t *der_len)
{
    ECDSA_SIG *es = NULL;
    BIGNUM *r = NULL, *s = NULL;
    unsigned char *p = NULL;
    int n;
    ok_err rc = OK_OK;

    *der = NULL;
    if (raw_len != 2 * half)
        return ok_fail(OK_ERR_AUTH, BAD_SIGNATURE);
    es = ECDSA_SIG_new();
    r = BN_bin2bn(raw, (int)half, NULL);
    s = BN_bin2bn(raw + half, (int)half, NULL);
    if (es == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        rc = ok_crypto_fail(OK_ERR_NOMEM, "ECDSA signature");
        goto done;
    }
    n = i2d_ECDSA_SIG(es, &p);
    if (n <= 0) {
        rc = ok_crypto_fail(OK_ERR_CRYPTO, "ECDSA signature encoding");
        goto done;
    }
    *der = p;
    *der_len = (size_t)n;
done:
    ECDSA_SIG_free(es); /* frees r and s once set0 succeeded */
    return rc;
}

/* ---- JOSE algorithms ----------------------------------------------------------------------------- */

typedef struct {
    int family;         /* 'R' PKCS#1 v1.5, 'P' PSS, 'E' ECDSA raw, 'D' ECDSA DER */
    ok_hash hash;
    ok_curve curve;     /* ECDSA only */
} alg_info;

static int alg_lookup(ok_sig_alg alg, alg_info *ai)
{
    static const struct {
        ok_sig_alg alg;
        alg_info info;
    } table[] = {
        {OK_SIG_RS256, {'R', OK_HASH_SHA256, 0}}, {OK_SIG_RS384, {'R', OK_HASH_SHA384, 0}},
        {OK_SIG_RS512, {'R', OK_HASH_SHA512, 0}}, {OK_SIG_PS256, {'P', OK_HASH_SHA256, 0}},
        {OK_SIG_PS384, {'P', OK_HASH_SHA384, 0}}, {OK_SIG_PS512, {'P', OK_HASH_SHA512, 0}},
        {OK_SIG_ES256, {'E', OK_HASH_SHA256, OK_CURVE_P256}}, {OK_SIG_ES384, {'E', OK_HASH_SHA384, OK_CURVE_P384}},
        {OK_SIG_ES256_DER, {'D', OK_HASH_SHA256, OK_CURVE_P256}},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (table[i].alg == alg) {
            *ai = table[i].info;
            return 1;
        }
    }
    return 0;
}

static sig_params params_for(const alg_info *ai)
{
    sig_params sp = {ok_crypto_md(ai->hash), 0, NULL, 0};

    if (ai->family == 'R') {
        sp.padding = RSA_PKCS1_PADDING;
    } else if (ai->family == 'P') {
        sp.padding = RSA_PKCS1_PSS_PADDING;
        sp.mgf = sp.md;
        sp.salt_len = EVP_MD_get_size(sp.md);
    }
    return sp;
}

static ok_err check_args(const ok_pkey *k, const uint8_t *msg, size_t msg_len, const void *sig)
{
    if (k == NULL || sig == NULL || (msg == NULL && msg_len != 0))
        return ok_fail(OK_ERR_INVALID_ARG, "signature: NULL argument");
    return OK_OK;
}

static ok_err sign_ecdsa(const ok_pkey *k, const alg_info *ai, int prehashed, const uint8_t *in, size_t in_len,
                         uint8_t *sig, size_t *sig_len)
{
    sig_params sp = params_for(ai);
    size_t raw_len = ok_pkey_size(k);
    uint8_t der[2 * 66 + DER_SLACK];
    size_t der_len = raw_len + DER_SLACK;

    if (der_len > sizeof der)
        return ok_fail(OK_ERR_KEY, "ECDSA key too large");
    OK_GUARD(any_sign(k, &sp, prehashed, in, in_len, der, &der_len));
    if (ai->family == 'D') {
        memcpy(sig, der, der_len);
        *sig_len = der_len;
        return OK_OK;
    }
    OK_GUARD(ecdsa_der_to_raw(der, der_len, raw_len / 2, sig));
    *sig_len = raw_len;
    return OK_OK;
}

/* A digest must be exactly as long as the algorithm's hash. */
static ok_err check_digest_len(const alg_info *ai, size_t len)
{
    int want = EVP_MD_get_size(ok_crypto_md(ai->hash));

    if (want <= 0 || len != (size_t)want)
        return ok_fail(OK_ERR_INVALID_ARG, "digest of %zu bytes; the algorithm needs %d", len, want);
    return OK_OK;
}

static ok_err sign_any(const ok_pkey *k, ok_sig_alg alg, int prehashed, const uint8_t *in, size_t in_len,
                       uint8_t *sig, size_t *sig_len)
{
    alg_info ai;
    sig_params sp;

    if (sig_len == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "signature: NULL argument");
    *sig_len = 0;
    OK_GUARD(check_args(k, in, in_len, sig));
    if (!alg_lookup(alg, &ai))
        return ok_fail(OK_ERR_UNSUPPORTED, "unknown signature algorithm %d", (int)alg);
    if (prehashed)
        OK_GUARD(check_digest_len(&ai, in_len));
    if (ai.family == 'E' || ai.family == 'D') {
        OK_GUARD(need_ec(k, ai.curve, 1));
        return sign_ecdsa(k, &ai, prehashed, in, in_len, sig, sig_len);
    }
    OK_GUARD(need_rsa(k, ai.family == 'P', 1));
    sp = params_for(&ai);
    *sig_len = ok_pkey_size(k);
    return any_sign(k, &sp, prehashed, in, in_len, sig, sig_len);
}

static ok_err verify_any(const ok_pkey *k, ok_sig_alg alg, int prehashed, const uint8_t *in, size_t in_len,
                         const uint8_t *sig, size_t sig_len)
{
    alg_info ai;
    sig_params sp;
    uint8_t *der = NULL;
    size_t der_len = 0;
    ok_err rc;

    OK_GUARD(check_args(k, in, in_len, sig));
    if (!alg_lookup(alg, &ai))
        return ok_fail(OK_ERR_UNSUPPORTED, "unknown signature algorithm %d", (int)alg);
    if (prehashed)
        OK_GUARD(check_digest_len(&ai, in_len));
    sp = params_for(&ai);
    if (ai.family == 'D') {
        OK_GUARD(need_ec(k, ai.curve, 0));
        return any_verify(k, &sp, prehashed, in, in_len, sig, sig_len);
    }
    if (ai.family == 'E') {
        OK_GUARD(need_ec(k, ai.curve, 0));
        OK_GUARD(ecdsa_raw_to_der(sig, sig_len, ok_pkey_size(k) / 2, &der, &der_len));
        rc = any_verify(k, &sp, prehashed, in, in_len, der, der_len);
        OPENSSL_free(der);
        return rc;
    }
    OK_GUARD(need_rsa(k, ai.family == 'P', 0));
    if (sig_len != ok_pkey_size(k)) /* RFC 8017 8.1.2 / 8.2.2 step 1 */
        return ok_fail(OK_ERR_AUTH, BAD_SIGNATURE);
    return any_verify(k, &sp, prehashed, in, in_len, sig, sig_len);
}

ok_err ok_sign(const ok_pkey *k, ok_sig_alg alg, const uint8_t *msg, size_t msg_len, uint8_t *sig, size_t *sig_len)
{
    return sign_any(k, alg, 0, msg, msg_len, sig, sig_len);
}

ok_err ok_verify(const ok_pkey *k, ok_sig_alg alg, const uint8_t *msg, size_t msg_len, const uint8_t *sig,
                 size_t sig_len)
{
    return verify_any(k, alg, 0, msg, msg_len, sig, sig_len);
}

ok_err ok_sign_digest(const ok_pkey *k, ok_sig_alg alg, const uint8_t *digest, size_t len, uint8_t *sig,
                      size_t *sig_len)
{
    return sign_any(k, alg, 1, digest, len, sig, sig_len);
}

ok_err ok_verify_digest(const ok_pkey *k, ok_sig_alg alg, const uint8_t *digest, size_t len, const uint8_t *sig,
                        size_t sig_len)
{
    return verify_any(k, alg, 1, digest, len, sig, sig_len);
}

/* ---- generic RSA forms ---------------------------------------------------------------------------- */

ok_err ok_rsa_pkcs1_sign(const ok_pkey *k, ok_hash hash, const uint8_t *msg, size_t msg_len, uint8_t *sig,
                         size_t *sig_len)
{
    sig_params sp = {ok_crypto_md(hash), RSA_PKCS1_PADDING, NULL, 0};

    if (sig_len == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "signature: NULL argument");
    *sig_len = 0;
    OK_GUARD(check_args(k, msg, msg_len, sig));
    if (sp.md == NULL)
        return ok_fail(OK_ERR_UNSUPPORTED, "unknown hash %d", (int)hash);
    if (hash == OK_HASH_SHA1) /* policy: no new SHA-1 signatures; verifying old ones is allowed */
        return ok_fail(OK_ERR_UNSUPPORTED, "RSASSA-PKCS1-v1_5 with SHA-1 is not produced");
    OK_GUARD(need_rsa(k, 0, 1));
    *sig_len = ok_pkey_size(k);
    return digest_sign(k, &sp, msg, msg_len, sig, sig_len);
}

ok_err ok_rsa_pkcs1_verify(const ok_pkey *k, ok_hash hash, const uint8_t *msg, size_t msg_len, const uint8_t *sig,
                           size_t sig_len)
{
    sig_params sp = {ok_crypto_md(hash), RSA_PKCS1_PADDING, NULL, 0};

    OK_GUARD(check_args(k, msg, msg_len, sig));
    if (sp.md == NULL)
        return ok_fail(OK_ERR_UNSUPPORTED, "unknown hash %d", (int)hash);
    OK_GUARD(need_rsa(k, 0, 0));
    if (sig_len != ok_pkey_size(k))
        return ok_fail(OK_ERR_AUTH, BAD_SIGNATURE);
    return digest_verify(k, &sp, msg, msg_len, sig, sig_len);
}

ok_err ok_rsa_pss_verify(const ok_pkey *k, ok_hash hash, ok_hash mgf_hash, int salt_len, const uint8_t *msg,
                         size_t msg_len, const uint8_t *sig, size_t sig_len)
{
    sig_params sp = {ok_crypto_md(hash), RSA_PKCS1_PSS_PADDING, ok_crypto_md(mgf_hash), salt_len};

    OK_GUARD(check_args(k, msg, msg_len, sig));
    if (sp.md == NULL || sp.mgf == NULL)
        return ok_fail(OK_ERR_UNSUPPORTED, "RSA-PSS: unknown hash");
    /* An explicit length only: OpenSSL's negative special values (auto, max) would accept any salt. */
    if (salt_len < 0)
        return ok_fail(OK_ERR_INVALID_ARG, "RSA-PSS: salt length must be given explicitly");
    OK_GUARD(need_rsa(k, 1, 0));
    if (sig_len != ok_pkey_size(k))
        return ok_fail(OK_ERR_AUTH, BAD_SIGNATURE);
    return digest_verify(k, &sp, msg, msg_len, sig, sig_len);
}
