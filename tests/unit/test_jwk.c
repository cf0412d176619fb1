/* JWK tests: round trips of oct, RSA and EC keys (private and public), the RFC 7638 thumbprint
 * example, and refusal of malformed or hostile input (bad base64url, missing or mistyped members,
 * unknown kty, RSA sizes outside 2048..8192, inconsistent private parts, points off the curve,
 * oversized and deeply nested documents, truncations and byte mutations). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "ownkey/crypto.h"
#include "test_support.h"

/* RFC 7638 3.1 */
static const char RFC7638_JWK[] =
    "{\"kty\":\"RSA\",\"n\":\"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJ"
    "ECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqz"
    "s8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqb"
    "w0Ls1jF44-"
    "csFCur-kEgU8awapJzKnqDKgw\",\"e\":\"AQAB\",\"alg\":\"RS256\",\"kid\":\"2011-04-29\"}";
static const char RFC7638_KID[] = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";

static ok_err parse(const char *text, ok_jwk **out)
{
    return ok_jwk_parse(text, strlen(text), out);
}

/* Parses text and expects a refusal (and no object). */
static void refuse(const char *text)
{
    ok_jwk *jwk = (ok_jwk *)1;
    ok_err rc = parse(text, &jwk);

    if (rc == OK_OK)
        fail_msg("accepted: %.200s", text);
    assert_null(jwk);
}

/* The serialization of a key with one member replaced (value NULL: removed). */
static char *with_member(const char *text, const char *member, const char *value)
{
    json_t *obj = json_loads(text, 0, NULL);
    char *out;

    assert_non_null(obj);
    if (value == NULL)
        json_object_del(obj, member);
    else
        json_object_set_new(obj, member, json_string(value));
    out = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    assert_non_null(out);
    return out;
}

static const char *member(const char *text, const char *name, char *buf, size_t size)
{
    json_t *obj = json_loads(text, 0, NULL);
    const char *v;

    assert_non_null(obj);
    v = json_string_value(json_object_get(obj, name));
    assert_non_null(v);
    snprintf(buf, size, "%s", v);
    json_decref(obj);
    return buf;
}

static void assert_same_public(const ok_pkey *a, const ok_pkey *b)
{
    uint8_t *da = NULL, *db = NULL;
    size_t la = 0, lb = 0;

    assert_int_equal(ok_pkey_public_der(a, &da, &la), OK_OK);
    assert_int_equal(ok_pkey_public_der(b, &db, &lb), OK_OK);
    assert_int_equal(la, lb);
    assert_memory_equal(da, db, la);
    free(da);
    free(db);
}

/* ---- thumbprint ----------------------------------------------------------------------------------- */

static void test_rfc7638_thumbprint(void **state)
{
    ok_jwk *jwk = NULL;
    char *tp = NULL, *text = NULL;

    (void)state;
    assert_int_equal(parse(RFC7638_JWK, &jwk), OK_OK);
    assert_int_equal(jwk->kty, OK_JWK_RSA);
    assert_string_equal(jwk->kid, "2011-04-29");
    assert_string_equal(jwk->alg, "RS256");
    assert_false(ok_pkey_is_private(jwk->pkey));
    assert_int_equal(ok_pkey_bits(jwk->pkey), 2048);
    assert_int_equal(ok_jwk_thumbprint(jwk->pkey, &tp), OK_OK);
    assert_string_equal(tp, RFC7638_KID);
    /* serializing and parsing again keeps the key and so the thumbprint */
    assert_int_equal(ok_jwk_serialize(jwk, 0, &text), OK_OK);
    ok_jwk_free(jwk);
    assert_int_equal(parse(text, &jwk), OK_OK);
    free(tp);
    assert_int_equal(ok_jwk_thumbprint(jwk->pkey, &tp), OK_OK);
    assert_string_equal(tp, RFC7638_KID);
    free(tp);
    free(text);
    ok_jwk_free(jwk);
}

/* ---- round trips ------------------------------------------------------------------------------------ */

static void test_oct_round_trip(void **state)
{
    uint8_t key[32];
    ok_jwk in = {.kty = OK_JWK_OCT, .kid = "k1", .alg = "A256GCM", .k = key, .k_len = sizeof key};
    ok_jwk *out = NULL;
    char *text = NULL, *text2 = NULL;

    (void)state;
    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (uint8_t)(i * 7 + 1);
    assert_int_equal(ok_jwk_serialize(&in, 1, &text), OK_OK);
    assert_non_null(strstr(text, "\"kty\":\"oct\""));
    assert_int_equal(parse(text, &out), OK_OK);
    assert_int_equal(out->kty, OK_JWK_OCT);
    assert_int_equal(out->k_len, sizeof key);
    assert_memory_equal(out->k, key, sizeof key);
    assert_string_equal(out->kid, "k1");
    assert_string_equal(out->alg, "A256GCM");
    assert_null(out->pkey);
    assert_int_equal(ok_jwk_serialize(out, 1, &text2), OK_OK);
    assert_string_equal(text, text2);
    free(text);
    free(text2);
    assert_int_equal(ok_jwk_serialize(out, 0, &text2), OK_ERR_INVALID_ARG); /* no public half */
    assert_null(text2);
    ok_jwk_free(out);

    assert_int_equal(parse("{\"kty\":\"oct\",\"k\":\"AQ\"}", &out), OK_OK); /* one byte */
    assert_int_equal(out->k_len, 1);
    assert_null(out->kid);
    ok_jwk_free(out);
}

/* Private round trip: serialize, parse, serialize again (same text), public half, thumbprints, and the
 * parsed key signs what the original verifies. */
static void asym_round_trip(ok_pkey *k, ok_sig_alg alg)
{
    ok_jwk in = {.kty = ok_pkey_kind(k) == OK_PKEY_RSA ? OK_JWK_RSA : OK_JWK_EC, .kid = "kid-1", .pkey = k};
    ok_jwk *priv = NULL, *pub = NULL;
    char *text = NULL, *text2 = NULL, *pub_text = NULL, *tp1 = NULL, *tp2 = NULL;
    uint8_t msg[3] = {1, 2, 3}, sig[600];
    size_t n = 0;

    assert_int_equal(ok_jwk_serialize(&in, 1, &text), OK_OK);
    assert_int_equal(parse(text, &priv), OK_OK);
    assert_true(ok_pkey_is_private(priv->pkey));
    assert_string_equal(priv->kid, "kid-1");
    assert_null(priv->alg);
    assert_same_public(priv->pkey, k);
    assert_int_equal(ok_jwk_serialize(priv, 1, &text2), OK_OK);
    assert_string_equal(text, text2);

    assert_int_equal(ok_jwk_serialize(&in, 0, &pub_text), OK_OK);
    assert_null(strstr(pub_text, "\"d\""));
    assert_int_equal(parse(pub_text, &pub), OK_OK);
    assert_false(ok_pkey_is_private(pub->pkey));
    assert_same_public(pub->pkey, k);

    assert_int_equal(ok_jwk_thumbprint(k, &tp1), OK_OK);
    assert_int_equal(ok_jwk_thumbprint(pub->pkey, &tp2), OK_OK);
    assert_string_equal(tp1, tp2);
    assert_int_equal(strlen(tp1), 43);

    assert_int_equal(ok_sign(priv->pkey, alg, msg, sizeof msg, sig, &n), OK_OK);
    assert_int_equal(ok_verify(k, alg, msg, sizeof msg, sig, n), OK_OK);
    assert_int_equal(ok_verify(pub->pkey, alg, msg, sizeof msg, sig, n), OK_OK);

    free(text);
    free(text2);
    free(pub_text);
    free(tp1);
    free(tp2);
    ok_jwk_free(priv);
    ok_jwk_free(pub);
}

static void test_rsa_round_trip(void **state)
{
    ok_pkey *k = *state;

    asym_round_trip(k, OK_SIG_RS256);
}

static void test_ec_round_trip(void **state)
{
    ok_pkey *k = NULL;

    (void)state;
    assert_int_equal(ok_pkey_generate_ec(&k, OK_CURVE_P256), OK_OK);
    asym_round_trip(k, OK_SIG_ES256);
    ok_pkey_free(k);
    assert_int_equal(ok_pkey_generate_ec(&k, OK_CURVE_P384), OK_OK);
    asym_round_trip(k, OK_SIG_ES384);
    ok_pkey_free(k);
}

/* ---- refusals ---------------------------------------------------------------------------------------- */

static void test_refuse_malformed(void **state)
{
    ok_jwk *jwk = NULL;

    (void)state;
    refuse("");
    refuse("not json");
    refuse("[]");
    refuse("\"oct\"");
    refuse("{}");
    refuse("{\"k\":\"AAAA\"}");                               /* no kty */
    refuse("{\"kty\":7,\"k\":\"AAAA\"}");                     /* kty not a string */
    refuse("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AAAA\"}"); /* unsupported kty */
    refuse("{\"kty\":\"oct\"}");                              /* missing k */
    refuse("{\"kty\":\"oct\",\"k\":\"\"}");                   /* empty key */
    refuse("{\"kty\":\"oct\",\"k\":5}");
    refuse("{\"kty\":\"oct\",\"k\":\"AA+/\"}");               /* base64, not base64url */
    refuse("{\"kty\":\"oct\",\"k\":\"AAAA=\"}");              /* padding */
    refuse("{\"kty\":\"oct\",\"k\":\"AA AA\"}");              /* whitespace */
    refuse("{\"kty\":\"oct\",\"k\":\"A\"}");                  /* impossible length */
    refuse("{\"kty\":\"oct\",\"k\":\"AB\"}");                 /* non-canonical trailing bits */
    refuse("{\"kty\":\"oct\",\"k\":\"AAAA\",\"kid\":5}");     /* kid not a string */
    refuse("{\"kty\":\"oct\",\"k\":\"AAAA\",\"alg\":null}");
    refuse("{\"kty\":\"oct\",\"k\":\"AAAA\",\"kid\":\"a\\u0000b\"}");   /* NUL inside a string */
    refuse("{\"kty\":\"oct\",\"kty\":\"oct\",\"k\":\"AAAA\"}");         /* duplicate member */
    refuse("{\"kty\":\"oct\",\"k\":\"AAAA\"} trailing");
    assert_int_equal(ok_jwk_parse("{\"kty\":\"oct\",\"k\":\"AAAA\"}", 10, &jwk), OK_ERR_FORMAT); /* cut short */
    assert_int_equal(ok_jwk_parse(NULL, 0, &jwk), OK_ERR_INVALID_ARG);
    /* unknown members are ignored */
    assert_int_equal(parse("{\"kty\":\"oct\",\"k\":\"AAAA\",\"use\":\"enc\",\"x\":[1,{}]}", &jwk), OK_OK);
    ok_jwk_free(jwk);
    ok_jwk_free(NULL);
}

static void test_refuse_rsa(void **state)
{
    ok_pkey *k = *state, *other = NULL;
    ok_jwk in = {.kty = OK_JWK_RSA, .pkey = k}, in2 = {.kty = OK_JWK_RSA};
    char *text = NULL, *text_other = NULL, *t;
    char buf[2048];

    assert_int_equal(ok_pkey_generate_rsa(&other, 2048), OK_OK);
    in2.pkey = other;
    assert_int_equal(ok_jwk_serialize(&in, 1, &text), OK_OK);
    assert_int_equal(ok_jwk_serialize(&in2, 1, &text_other), OK_OK);

    /* missing members */
    static const char *const members[] = {"n", "e", "d", "p", "q", "dp", "dq", "qi"};
    for (size_t i = 0; i < sizeof members / sizeof members[0]; i++) {
        t = with_member(text, members[i], NULL);
        refuse(t);
        free(t);
    }
    /* private parts of another key: d, p alone, or the CRT values */
    static const char *const swapped[] = {"d", "p", "q", "dp", "dq", "qi"};
    for (size_t i = 0; i < sizeof swapped / sizeof swapped[0]; i++) {
        t = with_member(text, swapped[i], member(text_other, swapped[i], buf, sizeof buf));
        refuse(t);
        free(t);
    }
    /* non-minimal integers, bad exponents */
    assert_string_equal(member(text, "e", buf, sizeof buf), "AQAB");
    t = with_member(text, "e", "AAEAAQ"); /* 65537 with a leading zero byte */
    refuse(t);
    free(t);
    { /* n with a leading zero byte */
        uint8_t *raw = NULL, *padded;
        size_t raw_len = 0;
        char *b64 = NULL, *t2;
        member(text, "n", buf, sizeof buf);
        assert_int_equal(ok_b64url_decode(buf, strlen(buf), &raw, &raw_len), OK_OK);
        padded = calloc(1, raw_len + 1);
        memcpy(padded + 1, raw, raw_len);
        assert_int_equal(ok_b64url_encode(padded, raw_len + 1, &b64), OK_OK);
        t2 = with_member(text, "n", b64);
        refuse(t2);
        free(t2);
        free(b64);
        free(padded);
        free(raw);
    }
    t = with_member(text, "e", "Ag"); /* e = 2 */
    refuse(t);
    free(t);
    t = with_member(text, "e", "AQ"); /* e = 1 */
    refuse(t);
    free(t);
    t = with_member(text, "e", "AQAAAAAAAAAB"); /* 9 bytes */
    refuse(t);
    free(t);
    t = with_member(text, "n", "!!!!"); /* not base64url */
    refuse(t);
    free(t);
    t = with_member(text, "kty", "EC"); /* wrong kty for the members */
    refuse(t);
    free(t);
    t = with_member(text, "kty", "rsa");
    refuse(t);
    free(t);
    /* multi-prime keys are not supported */
    {
        json_t *obj = json_loads(text, 0, NULL);
        json_object_set_new(obj, "oth", json_array());
        t = json_dumps(obj, JSON_COMPACT);
        json_decref(obj);
        refuse(t);
        free(t);
    }

    /* sizes: 1024 bits and 8200 bits (an odd modulus of 0xc1 bytes ... 0x01) */
    for (size_t bytes = 128; bytes <= 1025; bytes += 897) {
        uint8_t *n = malloc(bytes);
        char *b64 = NULL, pub[4500];
        memset(n, 0xc1, bytes);
        n[bytes - 1] = 0x01;
        assert_int_equal(ok_b64url_encode(n, bytes, &b64), OK_OK);
        snprintf(pub, sizeof pub, "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"AQAB\"}", b64);
        refuse(pub);
        free(b64);
        free(n);
    }
    /* a modulus that is not a valid RSA modulus (even) */
    {
        uint8_t n[256];
        char *b64 = NULL, pub[600];
        memset(n, 0xc1, sizeof n);
        n[255] = 0x02;
        assert_int_equal(ok_b64url_encode(n, sizeof n, &b64), OK_OK);
        snprintf(pub, sizeof pub, "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"AQAB\"}", b64);
        refuse(pub);
        free(b64);
    }
    free(text);
    free(text_other);
    ok_pkey_free(other);
}

static void test_refuse_ec(void **state)
{
    ok_pkey *k = NULL, *other = NULL;
    ok_jwk in = {.kty = OK_JWK_EC}, in2 = {.kty = OK_JWK_EC};
    char *text = NULL, *text_other = NULL, *t;
    char buf[256], y[256];

    (void)state;
    assert_int_equal(ok_pkey_generate_ec(&k, OK_CURVE_P256), OK_OK);
    assert_int_equal(ok_pkey_generate_ec(&other, OK_CURVE_P256), OK_OK);
    in.pkey = k;
    in2.pkey = other;
    assert_int_equal(ok_jwk_serialize(&in, 1, &text), OK_OK);
    assert_int_equal(ok_jwk_serialize(&in2, 1, &text_other), OK_OK);

    static const char *const members[] = {"crv", "x", "y"};
    for (size_t i = 0; i < 3; i++) {
        t = with_member(text, members[i], NULL);
        refuse(t);
        free(t);
    }
    t = with_member(text, "d", member(text_other, "d", buf, sizeof buf)); /* d of another key */
    refuse(t);
    free(t);
    t = with_member(text, "crv", "P-521");
    refuse(t);
    free(t);
    t = with_member(text, "crv", "P-384"); /* coordinates of the wrong length */
    refuse(t);
    free(t);
    t = with_member(text, "x", "AAAA");
    refuse(t);
    free(t);
    t = with_member(text, "d", "AQ"); /* short d */
    refuse(t);
    free(t);
    t = with_member(text, "d", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"); /* d = 0 */
    refuse(t);
    free(t);
    /* a point off the curve: y changed in its last character */
    member(text, "y", y, sizeof y);
    y[strlen(y) - 1] = y[strlen(y) - 1] == 'A' ? 'E' : 'A';
    t = with_member(text, "y", y);
    {
        char *pub = with_member(t, "d", NULL);
        refuse(pub);
        free(pub);
    }
    refuse(t);
    free(t);
    free(text);
    free(text_other);
    ok_pkey_free(k);
    ok_pkey_free(other);
}

static void test_refuse_hostile_sizes(void **state)
{
    size_t len = OK_JWK_MAX_LEN + 1, depth = 20000;
    char *huge = malloc(len + 1), *deep = malloc(2 * depth + 64);
    ok_jwk *jwk = (ok_jwk *)1;

    (void)state;
    /* over the size limit: refused before parsing */
    memset(huge, ' ', len);
    memcpy(huge, "{\"kty\":\"oct\",\"k\":\"AAAA\"}", 24);
    huge[len] = '\0';
    assert_int_equal(ok_jwk_parse(huge, len, &jwk), OK_ERR_LIMIT);
    assert_null(jwk);
    /* just under it: fine (trailing whitespace) */
    assert_int_equal(ok_jwk_parse(huge, len - 1, &jwk), OK_OK);
    ok_jwk_free(jwk);
    /* deeply nested arrays within the size limit: refused, no stack exhaustion */
    size_t n = (size_t)sprintf(deep, "{\"kty\":\"oct\",\"k\":\"AAAA\",\"x\":");
    memset(deep + n, '[', depth);
    memset(deep + n + depth, ']', depth);
    strcpy(deep + n + 2 * depth, "}");
    refuse(deep);
    /* a long oct key is fine */
    {
        uint8_t *k = calloc(1, 40000);
        char *b64 = NULL, *doc;
        assert_int_equal(ok_b64url_encode(k, 40000, &b64), OK_OK);
        doc = malloc(strlen(b64) + 40);
        sprintf(doc, "{\"kty\":\"oct\",\"k\":\"%s\"}", b64);
        assert_int_equal(parse(doc, &jwk), OK_OK);
        assert_int_equal(jwk->k_len, 40000);
        ok_jwk_free(jwk);
        free(doc);
        free(b64);
        free(k);
    }
    free(huge);
    free(deep);
}

/* Every truncation of a valid private key, and every single-character mutation of an EC key: no crash,
 * no leak, and no object on failure. */
static void test_truncations_and_mutations(void **state)
{
    ok_pkey *k = *state, *ec = NULL;
    ok_jwk in = {.kty = OK_JWK_RSA, .pkey = k}, in_ec = {.kty = OK_JWK_EC};
    char *text = NULL, *ec_text = NULL;
    ok_jwk *jwk;
    size_t len, accepted = 0;

    assert_int_equal(ok_jwk_serialize(&in, 1, &text), OK_OK);
    len = strlen(text);
    for (size_t i = 0; i < len; i++) {
        jwk = (ok_jwk *)1;
        assert_int_not_equal(ok_jwk_parse(text, i, &jwk), OK_OK);
        assert_null(jwk);
    }
    assert_int_equal(ok_pkey_generate_ec(&ec, OK_CURVE_P256), OK_OK);
    in_ec.pkey = ec;
    assert_int_equal(ok_jwk_serialize(&in_ec, 1, &ec_text), OK_OK);
    len = strlen(ec_text);
    for (size_t i = 0; i < len; i++) {
        static const char subst[] = {'A', '"', '{', '\\', '_', '\x01', '\xff'};
        for (size_t s = 0; s < sizeof subst; s++) {
            char saved = ec_text[i];
            if (saved == subst[s])
                continue;
            ec_text[i] = subst[s];
            jwk = NULL;
            if (ok_jwk_parse(ec_text, len, &jwk) == OK_OK) {
                accepted++; /* e.g. a change inside kid: still a consistent key */
                ok_jwk_free(jwk);
            } else {
                assert_null(jwk);
            }
            ec_text[i] = saved;
        }
    }
    assert_true(accepted < len); /* most mutations are refused */
    free(text);
    free(ec_text);
    ok_pkey_free(ec);
}

static void test_serialize_misuse(void **state)
{
    ok_pkey *rsa = *state;
    ok_jwk bad = {.kty = OK_JWK_EC, .pkey = rsa}, bad2 = {.kty = OK_JWK_RSA, .pkey = NULL};
    ok_jwk oct = {.kty = OK_JWK_OCT, .k = NULL, .k_len = 0};
    char *text = (char *)1;

    assert_int_equal(ok_jwk_serialize(&bad, 0, &text), OK_ERR_INVALID_ARG);
    assert_null(text);
    assert_int_equal(ok_jwk_serialize(&bad2, 0, &text), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_jwk_serialize(&oct, 1, &text), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_jwk_thumbprint(NULL, &text), OK_ERR_INVALID_ARG);
}

/* One RSA-2048 key for the RSA tests. */
static int rsa_setup(void **state)
{
    ok_pkey *k = NULL;

    if (ok_pkey_generate_rsa(&k, 2048) != OK_OK)
        return -1;
    *state = k;
    return 0;
}

static int rsa_teardown(void **state)
{
    ok_pkey_free(*state);
    return 0;
}

/* Regression (found by fuzz_jwk): parsing the same RSA public JWK must give the same answer every time.
 * OpenSSL's RSA public check is probabilistic on a malformed modulus. */
static void test_rsa_public_parse_is_deterministic(void **state)
{
    (void)state;
    const char *files[] = {"regress/jwk-rsa-public-check-nondeterministic.json",
                           "regress/jwk-rsa-public-check-nondeterministic-2.json"};
    for (size_t f = 0; f < 2; f++) {
        size_t len = 0;
        char *text = test_read_file(test_vector_path(files[f]), &len);
        assert_non_null(text);
        ok_jwk *first = NULL;
        ok_err want = ok_jwk_parse(text, len, &first);
        ok_jwk_free(first);
        for (int i = 0; i < 300; i++) {
            ok_jwk *jwk = NULL;
            assert_int_equal(ok_jwk_parse(text, len, &jwk), want);
            ok_jwk_free(jwk);
        }
        free(text);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc7638_thumbprint),
        cmocka_unit_test(test_oct_round_trip),
        cmocka_unit_test(test_rsa_round_trip),
        cmocka_unit_test(test_ec_round_trip),
        cmocka_unit_test(test_refuse_malformed),
        cmocka_unit_test(test_refuse_rsa),
        cmocka_unit_test(test_refuse_ec),
        cmocka_unit_test(test_refuse_hostile_sizes),
        cmocka_unit_test(test_truncations_and_mutations),
        cmocka_unit_test(test_serialize_misuse),
        cmocka_unit_test(test_rsa_public_parse_is_deterministic),
    };
    return cmocka_run_group_tests_name("jwk", tests, rsa_setup, rsa_teardown);
}
