/* JWK (RFC 7517/7518) parsing and serialization for oct, RSA and EC (P-256/P-384) keys, and RFC 7638
 * thumbprints. Parsing takes hostile input: sizes are bounded before any big-number work, integers
 * must be minimally encoded, EC coordinates full-length, and every key is validated by OpenSSL
 * (RSA private keys with the full pairwise/consistency check) before it is returned. Owns no key
 * storage and no JOSE message formats. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>

#include "crypto/internal.h"

#define JWK_RSA_MIN_BITS 2048
#define JWK_RSA_MAX_BITS 8192
#define JWK_RSA_MAX_E_BYTES 8
#define WIPE_DEPTH 8

/* ---- helpers -------------------------------------------------------------------------------------- */

/* Best effort: overwrite the string values jansson holds (they may be key material) before freeing.
 * jansson allocates string storage with its malloc, so writing to it is sound despite the const. */
static void wipe_json(json_t *v, int depth)
{
    const char *key;
    json_t *item;
    size_t i;

    if (v == NULL || depth > WIPE_DEPTH)
        return;
    if (json_is_string(v)) {
        ok_zeroize((char *)json_string_value(v), json_string_length(v));
    } else if (json_is_object(v)) {
        json_object_foreach(v, key, item) wipe_json(item, depth + 1);
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, item) wipe_json(item, depth + 1);
    }
}

static void free_secret(uint8_t *p, size_t len)
{
    if (p != NULL) {
        ok_zeroize(p, len);
        free(p);
    }
}

static ok_err get_string(json_t *obj, const char *name, int required, const char **out, size_t *len)
{
    json_t *v = json_object_get(obj, name);

    *out = NULL;
    *len = 0;
    if (v == NULL)
        return required ? ok_fail(OK_ERR_FORMAT, "JWK: missing \"%s\"", name) : OK_OK;
    if (!json_is_string(v))
        return ok_fail(OK_ERR_FORMAT, "JWK: \"%s\" is not a string", name);
    *out = json_string_value(v);
    *len = json_string_length(v);
    return OK_OK;
}

/* A base64url member; *out is NULL when absent and not required. */
static ok_err get_bytes(json_t *obj, const char *name, int required, uint8_t **out, size_t *len)
{
    const char *s;
    size_t slen;

    *out = NULL;
    *len = 0;
    OK_GUARD(get_string(obj, name, required, &s, &slen));
    if (s == NULL)
        return OK_OK;
    if (ok_b64url_decode(s, slen, out, len) != OK_OK)
        return ok_fail(OK_ERR_FORMAT, "JWK: \"%s\" is not base64url", name);
    return OK_OK;
}

/* A Base64urlUInt member (RFC 7518 2): at least one byte, no leading zero byte, at most max bytes. */
static ok_err get_uint(json_t *obj, const char *name, int required, size_t max, uint8_t **out, size_t *len)
{
    OK_GUARD(get_bytes(obj, name, required, out, len));
    if (*out == NULL)
        return OK_OK;
    if (*len == 0 || *len > max || (*len > 1 && (*out)[0] == 0)) {
        free_secret(*out, *len);
        *out = NULL;
        *len = 0;
        return ok_fail(OK_ERR_FORMAT, "JWK: \"%s\" is not a minimal integer of at most %zu bytes", name, max);
    }
    return OK_OK;
}

static ok_err dup_string(json_t *obj, const char *name, char **out)
{
    const char *s;
    size_t len;

    *out = NULL;
    OK_GUARD(get_string(obj, name, 0, &s, &len));
    if (s == NULL)
        return OK_OK;
    *out = malloc(len + 1);
    if (*out == NULL)
        return ok_fail(OK_ERR_NOMEM, "JWK");
    memcpy(*out, s, len + 1);
    return OK_OK;
}

static unsigned bit_length(const uint8_t *p, size_t len)
{
    unsigned bits = (unsigned)len * 8;

    for (uint8_t top = p[0]; (top & 0x80) == 0 && bits > 0; top = (uint8_t)(top << 1))
        bits--;
    return bits;
}

/* Pushes an unsigned big-endian integer. The builder keeps a pointer to the BIGNUM until
 * OSSL_PARAM_BLD_to_param, so it is returned for the caller to free after that (NULL on failure).
 * Secret values go through a secure BIGNUM so that OSSL_PARAM_free cleanses the param copy. */
static BIGNUM *push_uint(OSSL_PARAM_BLD *bld, const char *key, const uint8_t *p, size_t len, int secret)
{
    BIGNUM *bn = secret ? BN_secure_new() : BN_new();

    if (bn == NULL || BN_bin2bn(p, (int)len, bn) == NULL || !OSSL_PARAM_BLD_push_BN(bld, key, bn)) {
        BN_clear_free(bn);
        return NULL;
    }
    return bn;
}

/* Deterministic sanity checks of an RSA public key: n odd, e odd, 3 <= e < n. OpenSSL's
 * EVP_PKEY_public_check for RSA runs a probabilistic test on n, so the same text could be accepted
 * once and refused the next time (found by fuzz_jwk); a public key's n cannot be proven sound anyway. */
static int rsa_public_sane(const EVP_PKEY *pkey)
{
    BIGNUM *n = NULL, *e = NULL;
    int ok = EVP_PKEY_get_bn_param(pkey, "n", &n) == 1 && EVP_PKEY_get_bn_param(pkey, "e", &e) == 1 &&
             BN_is_odd(n) && BN_is_odd(e) && BN_cmp(e, BN_value_one()) > 0 && BN_num_bits(e) >= 2 &&
             BN_cmp(e, n) < 0;
    BN_free(n);
    BN_free(e);
    return ok;
}

/* Builds an EVP_PKEY from the parameters and validates it: the full check (including RSA pairwise
 * consistency and primality, EC private range and pairwise) for private keys; for public keys the EC
 * point check, and deterministic sanity checks for RSA (rsa_public_sane). */
static ok_err key_from_params(const char *type, OSSL_PARAM_BLD *bld, int is_private, ok_pkey **out)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = NULL, *check = NULL;
    EVP_PKEY *pkey = NULL;
    ok_err rc = OK_OK;

    if (params == NULL)
        return ok_crypto_fail(OK_ERR_NOMEM, "JWK key parameters");
    ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, is_private ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, params) != 1) {
        rc = ok_crypto_fail(OK_ERR_KEY, "JWK: unusable key");
        goto done;
    }
    if (!is_private && strcmp(type, "RSA") == 0) {
        if (!rsa_public_sane(pkey)) {
            rc = ok_fail(OK_ERR_KEY, "JWK: invalid RSA public key");
            goto done;
        }
    } else if ((check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL)) == NULL ||
               (is_private ? EVP_PKEY_check(check) : EVP_PKEY_public_check(check)) != 1) {
        rc = ok_crypto_fail(OK_ERR_KEY, "JWK: inconsistent or invalid key");
        goto done;
    }
    rc = ok_crypto_pkey_wrap(pkey, out);
    pkey = NULL;
done:
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(check);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params); /* cleanses the secure part holding private values */
    return rc;
}

/* ---- parsing -------------------------------------------------------------------------------------- */

static ok_err parse_oct(json_t *obj, ok_jwk *jwk)
{
    uint8_t *k = NULL;
    size_t len = 0;

    OK_GUARD(get_bytes(obj, "k", 1, &k, &len));
    if (len == 0) {
        free_secret(k, len);
        return ok_fail(OK_ERR_FORMAT, "JWK: empty oct key");
    }
    jwk->k = ok_secure_alloc(len);
    if (jwk->k == NULL) {
        free_secret(k, len);
        return ok_fail(OK_ERR_NOMEM, "JWK: secure memory");
    }
    memcpy(jwk->k, k, len);
    jwk->k_len = len;
    free_secret(k, len);
    return OK_OK;
}

enum { RSA_N, RSA_E, RSA_D, RSA_P, RSA_Q, RSA_DP, RSA_DQ, RSA_QI, RSA_NPARTS };

static const struct {
    const char *jwk;
    const char *ossl;
} rsa_parts[RSA_NPARTS] = {
    {"n", OSSL_PKEY_PARAM_RSA_N},         {"e", OSSL_PKEY_PARAM_RSA_E},
    {"d", OSSL_PKEY_PARAM_RSA_D},         {"p", OSSL_PKEY_PARAM_RSA_FACTOR1},
    {"q", OSSL_PKEY_PARAM_RSA_FACTOR2},   {"dp", OSSL_PKEY_PARAM_RSA_EXPONENT1},
    {"dq", OSSL_PKEY_PARAM_RSA_EXPONENT2}, {"qi", OSSL_PKEY_PARAM_RSA_COEFFICIENT1},
};

static ok_err parse_rsa(json_t *obj, ok_jwk *jwk)
{
    uint8_t *part[RSA_NPARTS] = {0};
    size_t len[RSA_NPARTS] = {0};
    BIGNUM *bn[RSA_NPARTS] = {0};
    OSSL_PARAM_BLD *bld = NULL;
    int is_private, present = 0;
    unsigned bits;
    ok_err rc = OK_OK;

    if (json_object_get(obj, "oth") != NULL)
        return ok_fail(OK_ERR_UNSUPPORTED, "JWK: multi-prime RSA keys are not supported");
    OK_GUARD_GOTO(rc, get_uint(obj, "n", 1, JWK_RSA_MAX_BITS / 8, &part[RSA_N], &len[RSA_N]), done);
    bits = bit_length(part[RSA_N], len[RSA_N]);
    if (bits < JWK_RSA_MIN_BITS || bits > JWK_RSA_MAX_BITS) {
        rc = ok_fail(OK_ERR_UNSUPPORTED, "JWK: RSA key of %u bits (%d..%d supported)", bits, JWK_RSA_MIN_BITS,
                     JWK_RSA_MAX_BITS);
        goto done;
    }
    OK_GUARD_GOTO(rc, get_uint(obj, "e", 1, JWK_RSA_MAX_E_BYTES, &part[RSA_E], &len[RSA_E]), done);
    if ((part[RSA_E][len[RSA_E] - 1] & 1) == 0 || (len[RSA_E] == 1 && part[RSA_E][0] < 3)) {
        rc = ok_fail(OK_ERR_KEY, "JWK: RSA public exponent must be odd and at least 3");
        goto done;
    }
    /* Private parts: none, or all of them (CRT-less private JWKs are not supported). */
    for (int i = RSA_D; i < RSA_NPARTS; i++) {
        OK_GUARD_GOTO(rc, get_uint(obj, rsa_parts[i].jwk, 0, len[RSA_N], &part[i], &len[i]), done);
        present += part[i] != NULL;
    }
    is_private = present != 0;
    if (present != 0 && present != RSA_NPARTS - RSA_D) {
        rc = ok_fail(OK_ERR_FORMAT, "JWK: RSA private key needs all of d, p, q, dp, dq, qi");
        goto done;
    }
    bld = OSSL_PARAM_BLD_new();
    if (bld == NULL) {
        rc = ok_fail(OK_ERR_NOMEM, "JWK");
        goto done;
    }
    for (int i = 0; i < (is_private ? RSA_NPARTS : RSA_D); i++) {
        bn[i] = push_uint(bld, rsa_parts[i].ossl, part[i], len[i], i >= RSA_D);
        if (bn[i] == NULL) {
            rc = ok_crypto_fail(OK_ERR_NOMEM, "JWK: RSA parameters");
            goto done;
        }
    }
    rc = key_from_params("RSA", bld, is_private, &jwk->pkey);
done:
    OSSL_PARAM_BLD_free(bld);
    for (int i = 0; i < RSA_NPARTS; i++) {
        BN_clear_free(bn[i]);
        free_secret(part[i], len[i]);
    }
    return rc;
}

static ok_err parse_ec(json_t *obj, ok_jwk *jwk)
{
    const char *crv;
    size_t crv_len, field;
    uint8_t *x = NULL, *y = NULL, *d = NULL;
    size_t x_len = 0, y_len = 0, d_len = 0;
    uint8_t point[1 + 2 * 48];
    OSSL_PARAM_BLD *bld = NULL;
    BIGNUM *d_bn = NULL;
    ok_err rc = OK_OK;

    OK_GUARD(get_string(obj, "crv", 1, &crv, &crv_len));
    if (crv_len == 5 && memcmp(crv, "P-256", 5) == 0)
        field = 32;
    else if (crv_len == 5 && memcmp(crv, "P-384", 5) == 0)
        field = 48;
    else
        return ok_fail(OK_ERR_UNSUPPORTED, "JWK: curve not supported (P-256 and P-384 are)");
    OK_GUARD_GOTO(rc, get_bytes(obj, "x", 1, &x, &x_len), done);
    OK_GUARD_GOTO(rc, get_bytes(obj, "y", 1, &y, &y_len), done);
    OK_GUARD_GOTO(rc, get_bytes(obj, "d", 0, &d, &d_len), done);
    if (x_len != field || y_len != field || (d != NULL && d_len != field)) {
        rc = ok_fail(OK_ERR_FORMAT, "JWK: EC members must be exactly %zu bytes", field);
        goto done;
    }
    point[0] = 0x04;
    memcpy(point + 1, x, field);
    memcpy(point + 1 + field, y, field);
    bld = OSSL_PARAM_BLD_new();
    if (bld == NULL ||
        !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, field == 32 ? "P-256" : "P-384", 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * field) ||
        (d != NULL && (d_bn = push_uint(bld, OSSL_PKEY_PARAM_PRIV_KEY, d, d_len, 1)) == NULL)) {
        rc = ok_crypto_fail(OK_ERR_NOMEM, "JWK: EC parameters");
        goto done;
    }
    rc = key_from_params("EC", bld, d != NULL, &jwk->pkey);
done:
    OSSL_PARAM_BLD_free(bld);
    BN_clear_free(d_bn);
    free_secret(x, x_len);
    free_secret(y, y_len);
    free_secret(d, d_len);
    return rc;
}

ok_err ok_jwk_parse(const char *json, size_t len, ok_jwk **out)
{
    json_error_t error;
    json_t *root = NULL;
    ok_jwk *jwk = NULL;
    const char *kty;
    size_t kty_len;
    ok_err rc = OK_OK;

    if (out == NULL || json == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_jwk_parse: NULL argument");
    *out = NULL;
    if (len > OK_JWK_MAX_LEN)
        return ok_fail(OK_ERR_LIMIT, "JWK of %zu bytes (at most %u)", len, OK_JWK_MAX_LEN);
    root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &error);
    /* The position only: jansson's error text quotes input, which may be key material. */
    if (root == NULL) {
        rc = ok_fail(OK_ERR_FORMAT, "JWK is not valid JSON (line %d, column %d)", error.line, error.column);
        goto done;
    }
    if (!json_is_object(root)) {
        rc = ok_fail(OK_ERR_FORMAT, "JWK is not a JSON object");
        goto done;
    }
    jwk = calloc(1, sizeof *jwk);
    if (jwk == NULL) {
        rc = ok_fail(OK_ERR_NOMEM, "JWK");
        goto done;
    }
    OK_GUARD_GOTO(rc, get_string(root, "kty", 1, &kty, &kty_len), done);
    OK_GUARD_GOTO(rc, dup_string(root, "kid", &jwk->kid), done);
    OK_GUARD_GOTO(rc, dup_string(root, "alg", &jwk->alg), done);
    if (kty_len == 3 && memcmp(kty, "oct", 3) == 0) {
        jwk->kty = OK_JWK_OCT;
        rc = parse_oct(root, jwk);
    } else if (kty_len == 3 && memcmp(kty, "RSA", 3) == 0) {
        jwk->kty = OK_JWK_RSA;
        rc = parse_rsa(root, jwk);
    } else if (kty_len == 2 && memcmp(kty, "EC", 2) == 0) {
        jwk->kty = OK_JWK_EC;
        rc = parse_ec(root, jwk);
    } else {
        rc = ok_fail(OK_ERR_UNSUPPORTED, "JWK: unsupported kty");
    }
done:
    wipe_json(root, 0);
    json_decref(root);
    if (rc != OK_OK) {
        ok_jwk_free(jwk);
        return rc;
    }
    *out = jwk;
    return OK_OK;
}

void ok_jwk_free(ok_jwk *jwk)
{
    if (jwk == NULL)
        return;
    free(jwk->kid);
    free(jwk->alg);
    ok_secure_free(jwk->k, jwk->k_len);
    ok_pkey_free(jwk->pkey);
    free(jwk);
}

/* ---- serialization -------------------------------------------------------------------------------- */

/* base64url of an integer key parameter: minimal, or left-padded to pad bytes when pad != 0. */
static ok_err param_b64(const EVP_PKEY *pkey, const char *name, size_t pad, char **out)
{
    BIGNUM *bn = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    ok_err rc = OK_OK;

    *out = NULL;
    if (EVP_PKEY_get_bn_param(pkey, name, &bn) != 1 || bn == NULL) {
        rc = ok_crypto_fail(OK_ERR_KEY, "key parameter missing");
        goto done;
    }
    len = pad != 0 ? pad : (size_t)BN_num_bytes(bn);
    if (len == 0)
        len = 1; /* zero is one zero byte */
    buf = malloc(len);
    if (buf == NULL) {
        rc = ok_fail(OK_ERR_NOMEM, "JWK");
        goto done;
    }
    if (BN_bn2binpad(bn, buf, (int)len) != (int)len) {
        rc = ok_fail(OK_ERR_KEY, "key parameter too large");
        goto done;
    }
    rc = ok_b64url_encode(buf, len, out);
done:
    free_secret(buf, len);
    BN_clear_free(bn);
    return rc;
}

static ok_err set_b64(json_t *obj, const char *member, const char *b64)
{
    if (json_object_set_new(obj, member, json_string(b64)) != 0)
        return ok_fail(OK_ERR_NOMEM, "JWK");
    return OK_OK;
}

static ok_err set_param(json_t *obj, const char *member, const EVP_PKEY *pkey, const char *name, size_t pad)
{
    char *b64 = NULL;
    ok_err rc;

    OK_GUARD(param_b64(pkey, name, pad, &b64));
    rc = set_b64(obj, member, b64);
    free_secret((uint8_t *)b64, strlen(b64));
    return rc;
}

static ok_err serialize_members(const ok_jwk *jwk, int include_private, json_t *obj)
{
    const EVP_PKEY *pkey = jwk->pkey != NULL ? jwk->pkey->pkey : NULL;
    char *b64 = NULL;
    ok_curve curve;
    size_t field;
    ok_err rc;

    switch (jwk->kty) {
    case OK_JWK_OCT:
        if (!include_private)
            return ok_fail(OK_ERR_INVALID_ARG, "JWK: an oct key has no public half");
        if (jwk->k == NULL || jwk->k_len == 0)
            return ok_fail(OK_ERR_INVALID_ARG, "JWK: oct key without k");
        OK_GUARD(ok_b64url_encode(jwk->k, jwk->k_len, &b64));
        rc = set_b64(obj, "k", b64);
        free_secret((uint8_t *)b64, strlen(b64));
        return rc;
    case OK_JWK_RSA:
        if (!ok_crypto_pkey_is_rsa(jwk->pkey))
            return ok_fail(OK_ERR_INVALID_ARG, "JWK: kty RSA without an RSA key");
        for (int i = 0; i < (include_private && jwk->pkey->is_private ? RSA_NPARTS : RSA_D); i++)
            OK_GUARD(set_param(obj, rsa_parts[i].jwk, pkey, rsa_parts[i].ossl, 0));
        return OK_OK;
    case OK_JWK_EC:
        if (ok_crypto_pkey_curve(jwk->pkey, &curve) != OK_OK)
            return ok_fail(OK_ERR_INVALID_ARG, "JWK: kty EC without an EC key");
        field = curve == OK_CURVE_P256 ? 32 : 48;
        if (json_object_set_new(obj, "crv", json_string(curve == OK_CURVE_P256 ? "P-256" : "P-384")) != 0)
            return ok_fail(OK_ERR_NOMEM, "JWK");
        OK_GUARD(set_param(obj, "x", pkey, OSSL_PKEY_PARAM_EC_PUB_X, field));
        OK_GUARD(set_param(obj, "y", pkey, OSSL_PKEY_PARAM_EC_PUB_Y, field));
        if (include_private && jwk->pkey->is_private)
            OK_GUARD(set_param(obj, "d", pkey, OSSL_PKEY_PARAM_PRIV_KEY, field));
        return OK_OK;
    }
    return ok_fail(OK_ERR_INVALID_ARG, "JWK: unknown kty");
}

ok_err ok_jwk_serialize(const ok_jwk *jwk, int include_private, char **out)
{
    static const char *const kty_names[] = {NULL, "oct", "RSA", "EC"};
    json_malloc_t json_malloc;
    json_free_t json_free;
    json_t *obj = NULL;
    char *text = NULL;
    size_t len;
    ok_err rc = OK_OK;

    if (jwk == NULL || out == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_jwk_serialize: NULL argument");
    *out = NULL;
    if (jwk->kty < OK_JWK_OCT || jwk->kty > OK_JWK_EC)
        return ok_fail(OK_ERR_INVALID_ARG, "JWK: unknown kty");
    obj = json_object();
    if (obj == NULL || json_object_set_new(obj, "kty", json_string(kty_names[jwk->kty])) != 0 ||
        (jwk->kid != NULL && json_object_set_new(obj, "kid", json_string(jwk->kid)) != 0) ||
        (jwk->alg != NULL && json_object_set_new(obj, "alg", json_string(jwk->alg)) != 0)) {
        rc = ok_fail(OK_ERR_FORMAT, "JWK: kid or alg is not valid UTF-8");
        goto done;
    }
    OK_GUARD_GOTO(rc, serialize_members(jwk, include_private, obj), done);
    text = json_dumps(obj, JSON_COMPACT);
    if (text == NULL) {
        rc = ok_fail(OK_ERR_NOMEM, "JWK serialization");
        goto done;
    }
    /* Hand back plain malloc memory whatever allocator jansson was given; wipe jansson's copy. */
    len = strlen(text);
    *out = malloc(len + 1);
    if (*out == NULL)
        rc = ok_fail(OK_ERR_NOMEM, "JWK serialization");
    else
        memcpy(*out, text, len + 1);
    ok_zeroize(text, len);
    json_get_alloc_funcs(&json_malloc, &json_free);
    json_free(text);
done:
    wipe_json(obj, 0);
    json_decref(obj);
    return rc;
}

/* ---- RFC 7638 thumbprint -------------------------------------------------------------------------- */

ok_err ok_jwk_thumbprint(const ok_pkey *k, char **out)
{
    char *a = NULL, *b = NULL, *canonical = NULL;
    uint8_t digest[OK_SHA256_LEN];
    ok_curve curve;
    int n;
    ok_err rc;

    if (k == NULL || out == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_jwk_thumbprint: NULL argument");
    *out = NULL;
    /* Members in lexicographic order, no whitespace (RFC 7638 3.2, 3.3). */
    if (ok_crypto_pkey_is_rsa(k)) {
        OK_GUARD_GOTO(rc, param_b64(k->pkey, OSSL_PKEY_PARAM_RSA_E, 0, &a), done);
        OK_GUARD_GOTO(rc, param_b64(k->pkey, OSSL_PKEY_PARAM_RSA_N, 0, &b), done);
        n = asprintf(&canonical, "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}", a, b);
    } else {
        OK_GUARD_GOTO(rc, ok_crypto_pkey_curve(k, &curve), done);
        size_t field = curve == OK_CURVE_P256 ? 32 : 48;
        OK_GUARD_GOTO(rc, param_b64(k->pkey, OSSL_PKEY_PARAM_EC_PUB_X, field, &a), done);
        OK_GUARD_GOTO(rc, param_b64(k->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, field, &b), done);
        n = asprintf(&canonical, "{\"crv\":\"%s\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
                     curve == OK_CURVE_P256 ? "P-256" : "P-384", a, b);
    }
    if (n < 0) {
        canonical = NULL;
        rc = ok_fail(OK_ERR_NOMEM, "JWK thumbprint");
        goto done;
    }
    OK_GUARD_GOTO(rc, ok_sha256((const uint8_t *)canonical, (size_t)n, digest), done);
    rc = ok_b64url_encode(digest, sizeof digest, out);
done:
    free(a);
    free(b);
    free(canonical);
    return rc;
}
