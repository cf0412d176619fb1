/* Tests of BYOK import (byok.c, the KEK rules in keys.c and key_lifecycle.c, material_from_plain in
 * material.c): the transfer blob's parser (every field and its refusals); the key exchange key's rules
 * (import alone, RSA only, fixed at creation, every other operation refused); imports of RSA, EC and AES
 * targets checked against the customer's key; the SHA-256/384 enc extension; and the refusals, each
 * leaving nothing stored: another KEK's blob, one altered byte, a replay (also after reopening the vault),
 * a kid naming no KEK or a key that is not one, kty/crv mismatches, a disabled KEK, short ciphertext. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vault/keys_internal.h"
#include "vault_fixture.h"

#define BLOB_MAX 16384

static void make_kek(ok_vault *v, const char *name, ok_key_info *out)
{
    ok_key_spec spec = {.kty = OK_KTY_RSA, .bits = 3072, .attrs = {.has_ops = 1, .ops = OK_KEYOP_IMPORT}};

    assert_int_equal(ok_vault_key_create(v, name, &spec, out), OK_OK);
    assert_int_equal(out->ops, OK_KEYOP_IMPORT);
}

/* The blob's JSON for target under pub, naming kid, with enc and the OAEP hash given; flip >= 0 alters that
 * byte of the ciphertext. Returns the length written to json. */
static size_t make_blob(const ok_pkey *pub, const char *kid, const char *enc, ok_hash hash, const uint8_t *target,
                        size_t len, long flip, char *json)
{
    uint8_t aes[32], ct[BLOB_MAX / 2];
    size_t k = ok_pkey_size(pub), n = 0, w = 0;
    char *b64 = NULL;
    int written;

    assert_int_equal(ok_random(aes, sizeof aes), OK_OK);
    assert_int_equal(ok_rsa_oaep_encrypt(pub, hash, hash, NULL, 0, aes, sizeof aes, ct, &n), OK_OK);
    assert_int_equal(n, k);
    assert_int_equal(ok_aes_kwp_wrap(aes, sizeof aes, target, len, ct + k, &w), OK_OK);
    if (flip >= 0)
        ct[flip] ^= 1;
    assert_int_equal(ok_b64url_encode(ct, k + w, &b64), OK_OK);
    written = snprintf(json, BLOB_MAX,
                       "{\"schema_version\":\"1.0.0\",\"header\":{\"kid\":\"%s\",\"alg\":\"dir\",\"enc\":\"%s\"},"
                       "\"ciphertext\":\"%s\",\"generator\":\"test\"}",
                       kid, enc, b64);
    free(b64);
    assert_true(written > 0 && written < BLOB_MAX);
    return (size_t)written;
}

static void kid_of(const ok_key_info *k, char *out, size_t cap)
{
    snprintf(out, cap, "https://vault.example:8443/keys/%s/%s", k->name, k->version);
}

static ok_err import(ok_vault *v, const char *name, ok_kty kty, ok_curve curve, const char *json, size_t len,
                     ok_key_info *out)
{
    return ok_vault_key_import_byok(v, name, kty, curve, (const uint8_t *)json, len, NULL, out);
}

static void assert_absent(ok_vault *v, const char *name)
{
    ok_key_info info;

    assert_int_equal(ok_vault_key_get(v, name, NULL, &info), OK_ERR_NOT_FOUND);
}

/* ---- the parser ------------------------------------------------------------------------------------------ */

static ok_err parse(const char *json)
{
    ok_byok_blob b;
    ok_err rc = ok_byok_blob_parse((const uint8_t *)json, strlen(json), &b);

    ok_byok_blob_clear(&b);
    return rc;
}

#define HDR(kid, alg, enc) "\"header\":{\"kid\":\"" kid "\",\"alg\":\"" alg "\",\"enc\":\"" enc "\"}"
#define GOOD_KID "https://h/keys/kek-1/0123456789abcdef0123456789abcdef"

static void test_parse(void **state)
{
    ok_byok_blob b;
    const char *good = "{\"schema_version\":\"1.0.0\"," HDR(GOOD_KID, "dir", "CKM_RSA_AES_KEY_WRAP")
                       ",\"ciphertext\":\"AAECAw\",\"generator\":\"x\"}";

    (void)state;
    assert_int_equal(ok_byok_blob_parse((const uint8_t *)good, strlen(good), &b), OK_OK);
    assert_string_equal(b.kek_name, "kek-1");
    assert_string_equal(b.kek_version, "0123456789abcdef0123456789abcdef");
    assert_int_equal(b.oaep_hash, OK_HASH_SHA1);
    assert_int_equal(b.ciphertext_len, 4);
    assert_int_equal(b.ciphertext[3], 3);
    ok_byok_blob_clear(&b);

    const char *latest = "{\"schema_version\":\"1.0.0\"," HDR("https://h:1/keys/k", "dir", "RSA_AES_KEY_WRAP_384")
                         ",\"ciphertext\":\"AA==\"}";
    assert_int_equal(ok_byok_blob_parse((const uint8_t *)latest, strlen(latest), &b), OK_OK);
    assert_string_equal(b.kek_name, "k");
    assert_string_equal(b.kek_version, "");
    assert_int_equal(b.oaep_hash, OK_HASH_SHA384);
    ok_byok_blob_clear(&b);

    assert_int_equal(parse("{\"schema_version\":\"2.0.0\"," HDR(GOOD_KID, "dir", "CKM_RSA_AES_KEY_WRAP")
                           ",\"ciphertext\":\"AA\"}"), OK_ERR_INVALID_ARG);
    assert_non_null(strstr(ok_err_message(), "schema_version"));
    assert_int_equal(parse("{" HDR(GOOD_KID, "dir", "CKM_RSA_AES_KEY_WRAP") ",\"ciphertext\":\"AA\"}"),
                     OK_ERR_INVALID_ARG);
    assert_int_equal(parse("{\"schema_version\":\"1.0.0\"," HDR(GOOD_KID, "RSA-OAEP", "CKM_RSA_AES_KEY_WRAP")
                           ",\"ciphertext\":\"AA\"}"), OK_ERR_INVALID_ARG);
    assert_non_null(strstr(ok_err_message(), "alg"));
    assert_int_equal(parse("{\"schema_version\":\"1.0.0\"," HDR(GOOD_KID, "dir", "A256KW") ",\"ciphertext\":\"AA\"}"),
                     OK_ERR_INVALID_ARG);
    assert_non_null(strstr(ok_err_message(), "enc"));
    assert_int_equal(parse("{\"schema_version\":\"1.0.0\"," HDR("kek-1", "dir", "CKM_RSA_AES_KEY_WRAP")
                           ",\"ciphertext\":\"AA\"}"), OK_ERR_INVALID_ARG);
    assert_non_null(strstr(ok_err_message(), "kid"));
    assert_int_equal(parse("{\"schema_version\":\"1.0.0\"," HDR("https://h/secrets/k/0123", "dir",
                                                                 "CKM_RSA_AES_KEY_WRAP") ",\"ciphertext\":\"AA\"}"),
                     OK_ERR_INVALID_ARG);
    assert_int_equal(parse("{\"schema_version\":\"1.0.0\"," HDR("https://h/keys/k/XYZ", "dir",
                                                                 "CKM_RSA_AES_KEY_WRAP") ",\"ciphertext\":\"AA\"}"),
                     OK_ERR_INVALID_ARG);
    assert_int_equal(parse("{\"schema_version\":\"1.0.0\"," HDR("https://h/keys/bad_name/", "dir",
                                                                 "CKM_RSA_AES_KEY_WRAP") ",\"ciphertext\":\"AA\"}"),
                     OK_ERR_INVALID_ARG);
    assert_int_equal(parse("{\"schema_version\":\"1.0.0\"," HDR(GOOD_KID, "dir", "CKM_RSA_AES_KEY_WRAP")
                           ",\"ciphertext\":\"!!\"}"), OK_ERR_INVALID_ARG);
    assert_int_equal(parse("{\"schema_version\":\"1.0.0\"," HDR(GOOD_KID, "dir", "CKM_RSA_AES_KEY_WRAP") "}"),
                     OK_ERR_INVALID_ARG);
    assert_int_equal(parse("{\"schema_version\":\"1.0.0\"," HDR(GOOD_KID, "dir", "CKM_RSA_AES_KEY_WRAP")
                           ",\"ciphertext\":\"AA\",\"generator\":7}"), OK_ERR_INVALID_ARG);
    assert_int_equal(parse("{\"schema_version\":\"1.0.0\",\"schema_version\":\"1.0.0\"," HDR(GOOD_KID, "dir",
                                                                 "CKM_RSA_AES_KEY_WRAP") ",\"ciphertext\":\"AA\"}"),
                     OK_ERR_INVALID_ARG);
    assert_int_equal(parse("[1]"), OK_ERR_INVALID_ARG);
    assert_int_equal(parse("not json"), OK_ERR_INVALID_ARG);
    char *big = calloc(1, OK_BYOK_BLOB_MAX + 2);
    assert_non_null(big);
    memset(big, ' ', OK_BYOK_BLOB_MAX + 1);
    assert_int_equal(parse(big), OK_ERR_INVALID_ARG);
    free(big);
}

/* ---- the key exchange key ------------------------------------------------------------------------------ */

static void test_kek_rules(void **state)
{
    vault_fixture *f = *state;
    ok_key_info kek, info;
    ok_key_spec bad = {.kty = OK_KTY_RSA, .attrs = {.has_ops = 1, .ops = OK_KEYOP_IMPORT | OK_KEYOP_UNWRAP}};
    ok_key_op_request req = {.op = OK_KOP_WRAP, .alg = "RSA-OAEP", .value = (const uint8_t *)SECRET32, .value_len = 32};
    ok_key_op_result res;
    ok_key_attrs attrs = {.has_ops = 1, .ops = OK_KEYOP_WRAP};

    make_kek(f->v, "kek", &kek);
    assert_int_equal(kek.hsm, 0);
    assert_int_equal(ok_vault_key_create(f->v, "bad", &bad, &info), OK_ERR_INVALID_ARG);
    bad.kty = OK_KTY_EC;
    bad.attrs.ops = OK_KEYOP_IMPORT;
    assert_int_equal(ok_vault_key_create(f->v, "bad", &bad, &info), OK_ERR_INVALID_ARG);
    /* a key exchange key has 3072 or 4096 bits */
    bad.kty = OK_KTY_RSA;
    bad.bits = 2048;
    assert_int_equal(ok_vault_key_create(f->v, "bad", &bad, &info), OK_ERR_INVALID_ARG);
    assert_absent(f->v, "bad");
    /* every operation refused */
    for (ok_key_op op = OK_KOP_ENCRYPT; op <= OK_KOP_UNWRAP; op++) {
        req.op = op;
        assert_int_equal(ok_vault_key_op(f->v, "kek", NULL, &req, &res), OK_ERR_FORBIDDEN);
    }
    req.op = OK_KOP_SIGN;
    req.alg = "RS256";
    assert_int_equal(ok_vault_key_op(f->v, "kek", NULL, &req, &res), OK_ERR_FORBIDDEN);
    /* import is fixed at creation */
    assert_int_equal(ok_vault_key_update(f->v, "kek", NULL, &attrs, &info), OK_ERR_INVALID_ARG);
    attrs.ops = OK_KEYOP_IMPORT | OK_KEYOP_WRAP;
    assert_int_equal(ok_vault_key_update(f->v, "kek", NULL, &attrs, &info), OK_ERR_INVALID_ARG);
    fixture_create(f->v, "plain", OK_KTY_RSA, 2048, NULL);
    attrs.ops = OK_KEYOP_IMPORT;
    assert_int_equal(ok_vault_key_update(f->v, "plain", NULL, &attrs, &info), OK_ERR_INVALID_ARG);
    /* still a KEK after rotation */
    assert_int_equal(ok_vault_key_rotate(f->v, "kek", &info), OK_OK);
    assert_int_equal(info.ops, OK_KEYOP_IMPORT);
    ok_key_info_clear(&info);
    /* no key with import can be imported */
    ok_jwk jwk = {.kty = OK_JWK_RSA};
    assert_int_equal(ok_pkey_generate_rsa(&jwk.pkey, 2048), OK_OK);
    assert_int_equal(ok_vault_key_import(f->v, "imp", &jwk, &attrs, &info), OK_ERR_INVALID_ARG);
    assert_absent(f->v, "imp");
    ok_pkey_free(jwk.pkey);
    ok_key_info_clear(&kek);
}

/* ---- imports ----------------------------------------------------------------------------------------------- */

static void import_pkey(vault_fixture *f, const ok_key_info *kek, ok_pkey *target, const char *name, ok_kty kty,
                        ok_curve curve)
{
    char kid[256], *json = malloc(BLOB_MAX);
    uint8_t *der = NULL, *mine = NULL, *theirs = NULL;
    size_t der_len = 0, mine_len = 0, theirs_len = 0, len;
    ok_key_info info;

    assert_non_null(json);
    kid_of(kek, kid, sizeof kid);
    assert_int_equal(ok_pkey_private_der(target, &der, &der_len), OK_OK);
    len = make_blob(kek->public_key, kid, "CKM_RSA_AES_KEY_WRAP", OK_HASH_SHA1, der, der_len, -1, json);
    ok_secure_free(der, der_len);
    assert_int_equal(import(f->v, name, kty, curve, json, len, &info), OK_OK);
    assert_int_equal(info.kty, kty);
    assert_int_equal(info.hsm, 0);
    assert_int_equal(info.ops, ok_key_default_ops(kty));
    assert_int_equal(ok_pkey_public_der(info.public_key, &theirs, &theirs_len), OK_OK);
    assert_int_equal(ok_pkey_public_der(target, &mine, &mine_len), OK_OK);
    assert_int_equal(mine_len, theirs_len);
    assert_memory_equal(mine, theirs, mine_len);
    free(mine);
    free(theirs);
    ok_key_info_clear(&info);
    free(json);
}

static void test_import_rsa_ec(void **state)
{
    vault_fixture *f = *state;
    ok_key_info kek;
    ok_pkey *rsa = NULL, *ec = NULL;
    ok_key_op_request req = {.op = OK_KOP_UNWRAP, .alg = "RSA-OAEP"};
    ok_key_op_result res;
    uint8_t ct[256];
    size_t n = 0;

    make_kek(f->v, "kek", &kek);
    assert_int_equal(ok_pkey_generate_rsa(&rsa, 2048), OK_OK);
    assert_int_equal(ok_pkey_generate_ec(&ec, OK_CURVE_P384), OK_OK);
    import_pkey(f, &kek, rsa, "rsa", OK_KTY_RSA, 0);
    import_pkey(f, &kek, ec, "ec", OK_KTY_EC, OK_CURVE_P384);
    /* the vault unwraps what the customer's public key wrapped */
    assert_int_equal(ok_rsa_oaep_encrypt(rsa, OK_HASH_SHA1, OK_HASH_SHA1, NULL, 0, (const uint8_t *)SECRET32, 32, ct,
                                         &n), OK_OK);
    req.value = ct;
    req.value_len = n;
    assert_int_equal(ok_vault_key_op(f->v, "rsa", NULL, &req, &res), OK_OK);
    assert_int_equal(res.value_len, 32);
    assert_memory_equal(res.value, SECRET32, 32);
    ok_key_op_result_clear(&res);
    ok_pkey_free(rsa);
    ok_pkey_free(ec);
    ok_key_info_clear(&kek);
}

static void test_import_oct_and_enc_variants(void **state)
{
    vault_fixture *f = *state;
    ok_key_info kek, info;
    char kid[256], *json = malloc(BLOB_MAX);
    uint8_t aes[32], out[40];
    size_t len, n = 0;
    ok_key_op_request req = {.op = OK_KOP_WRAP, .alg = "A256KW", .value = (const uint8_t *)SECRET32, .value_len = 32};
    ok_key_op_result res;

    assert_non_null(json);
    make_kek(f->v, "kek", &kek);
    kid_of(&kek, kid, sizeof kid);
    assert_int_equal(ok_random(aes, sizeof aes), OK_OK);
    len = make_blob(kek.public_key, kid, "RSA_AES_KEY_WRAP_256", OK_HASH_SHA256, aes, sizeof aes, -1, json);
    assert_int_equal(import(f->v, "aes", OK_KTY_OCT, 0, json, len, &info), OK_OK);
    assert_int_equal(info.kty, OK_KTY_OCT);
    assert_int_equal(info.bits, 256);
    ok_key_info_clear(&info);
    assert_int_equal(ok_vault_key_op(f->v, "aes", NULL, &req, &res), OK_OK);
    assert_int_equal(ok_aes_kw_unwrap(aes, sizeof aes, res.value, res.value_len, out, &n), OK_OK);
    assert_int_equal(n, 32);
    assert_memory_equal(out, SECRET32, 32);
    ok_key_op_result_clear(&res);
    /* enc must name the hash the blob was made with */
    len = make_blob(kek.public_key, kid, "CKM_RSA_AES_KEY_WRAP", OK_HASH_SHA256, aes, sizeof aes, -1, json);
    assert_int_equal(import(f->v, "aes2", OK_KTY_OCT, 0, json, len, &info), OK_ERR_INVALID_ARG);
    assert_absent(f->v, "aes2");
    /* oct sizes */
    len = make_blob(kek.public_key, kid, "CKM_RSA_AES_KEY_WRAP", OK_HASH_SHA1, aes, 20, -1, json);
    assert_int_equal(import(f->v, "aes3", OK_KTY_OCT, 0, json, len, &info), OK_ERR_INVALID_ARG);
    assert_absent(f->v, "aes3");
    len = make_blob(kek.public_key, kid, "CKM_RSA_AES_KEY_WRAP", OK_HASH_SHA1, aes, 16, -1, json);
    assert_int_equal(import(f->v, "aes4", OK_KTY_OCT, 0, json, len, &info), OK_OK);
    assert_int_equal(info.bits, 128);
    ok_key_info_clear(&info);
    ok_zeroize(aes, sizeof aes);
    ok_key_info_clear(&kek);
    free(json);
}

/* ---- refusals ------------------------------------------------------------------------------------------------ */

static void test_replay(void **state)
{
    vault_fixture *f = *state;
    ok_key_info kek, info;
    ok_key_page page;
    char kid[256], *json = malloc(BLOB_MAX);
    uint8_t aes[32] = {1, 2, 3};
    size_t len;

    assert_non_null(json);
    make_kek(f->v, "kek", &kek);
    kid_of(&kek, kid, sizeof kid);
    len = make_blob(kek.public_key, kid, "CKM_RSA_AES_KEY_WRAP", OK_HASH_SHA1, aes, sizeof aes, -1, json);
    assert_int_equal(import(f->v, "once", OK_KTY_OCT, 0, json, len, &info), OK_OK);
    ok_key_info_clear(&info);
    assert_int_equal(import(f->v, "once", OK_KTY_OCT, 0, json, len, &info), OK_ERR_INVALID_ARG);
    assert_non_null(strstr(ok_err_message(), "only once"));
    assert_int_equal(import(f->v, "twice", OK_KTY_OCT, 0, json, len, &info), OK_ERR_INVALID_ARG);
    assert_absent(f->v, "twice");
    assert_int_equal(ok_vault_key_versions(f->v, "once", NULL, 0, &page), OK_OK);
    assert_int_equal(page.count, 1);
    ok_key_page_clear(&page);
    /* durable: after reopening, and after the key is deleted and purged */
    assert_int_equal(ok_vault_key_delete(f->v, "once", &info), OK_OK);
    ok_key_info_clear(&info);
    assert_int_equal(ok_vault_deleted_purge(f->v, "once"), OK_OK);
    ok_vault_close(f->v);
    assert_int_equal(ok_vault_open(f->dir, &f->v), OK_OK);
    assert_int_equal(import(f->v, "once", OK_KTY_OCT, 0, json, len, &info), OK_ERR_INVALID_ARG);
    assert_non_null(strstr(ok_err_message(), "only once"));
    assert_absent(f->v, "once");
    ok_key_info_clear(&kek);
    free(json);
}

static void test_refusals(void **state)
{
    vault_fixture *f = *state;
    ok_key_info kek, kek2, plain, info;
    ok_pkey *ec = NULL;
    uint8_t *der = NULL;
    size_t der_len = 0, len;
    char kid[256], kid2[256], *json = malloc(BLOB_MAX);
    ok_key_attrs off = {.has_enabled = 1, .enabled = 0};

    assert_non_null(json);
    make_kek(f->v, "kek", &kek);
    make_kek(f->v, "kek2", &kek2);
    fixture_create(f->v, "plain", OK_KTY_RSA, 2048, &plain);
    kid_of(&kek, kid, sizeof kid);
    kid_of(&kek2, kid2, sizeof kid2);
    assert_int_equal(ok_pkey_generate_ec(&ec, OK_CURVE_P256), OK_OK);
    assert_int_equal(ok_pkey_private_der(ec, &der, &der_len), OK_OK);

    /* made for kek2, naming kek */
    len = make_blob(kek2.public_key, kid, "CKM_RSA_AES_KEY_WRAP", OK_HASH_SHA1, der, der_len, -1, json);
    assert_int_equal(import(f->v, "x", OK_KTY_EC, 0, json, len, &info), OK_ERR_INVALID_ARG);
    assert_non_null(strstr(ok_err_message(), "does not open"));
    /* one byte altered: in the RSA part, in the KWP part */
    for (long flip = 5; flip < 600; flip += 400) {
        len = make_blob(kek.public_key, kid, "CKM_RSA_AES_KEY_WRAP", OK_HASH_SHA1, der, der_len, flip, json);
        assert_int_equal(import(f->v, "x", OK_KTY_EC, 0, json, len, &info), OK_ERR_INVALID_ARG);
        assert_non_null(strstr(ok_err_message(), "does not open"));
    }
    /* a key that is not a KEK, and no key at all */
    kid_of(&plain, kid2, sizeof kid2);
    len = make_blob(plain.public_key, kid2, "CKM_RSA_AES_KEY_WRAP", OK_HASH_SHA1, der, der_len, -1, json);
    assert_int_equal(import(f->v, "x", OK_KTY_EC, 0, json, len, &info), OK_ERR_INVALID_ARG);
    assert_non_null(strstr(ok_err_message(), "not a key exchange key"));
    len = make_blob(kek.public_key, "https://h/keys/nokek", "CKM_RSA_AES_KEY_WRAP", OK_HASH_SHA1, der, der_len, -1,
                    json);
    assert_int_equal(import(f->v, "x", OK_KTY_EC, 0, json, len, &info), OK_ERR_INVALID_ARG);
    assert_non_null(strstr(ok_err_message(), "not in this vault"));
    /* kty and crv mismatches do not use the blob up */
    len = make_blob(kek.public_key, kid, "CKM_RSA_AES_KEY_WRAP", OK_HASH_SHA1, der, der_len, -1, json);
    assert_int_equal(import(f->v, "x", OK_KTY_RSA, 0, json, len, &info), OK_ERR_INVALID_ARG);
    assert_non_null(strstr(ok_err_message(), "holds an EC key"));
    assert_int_equal(import(f->v, "x", OK_KTY_OCT, 0, json, len, &info), OK_ERR_INVALID_ARG);
    assert_int_equal(import(f->v, "x", OK_KTY_EC, OK_CURVE_P384, json, len, &info), OK_ERR_INVALID_ARG);
    /* a disabled KEK */
    assert_int_equal(ok_vault_key_update(f->v, "kek", NULL, &off, &info), OK_OK);
    ok_key_info_clear(&info);
    assert_int_equal(import(f->v, "x", OK_KTY_EC, 0, json, len, &info), OK_ERR_FORBIDDEN);
    assert_absent(f->v, "x");
    off.enabled = 1;
    assert_int_equal(ok_vault_key_update(f->v, "kek", NULL, &off, &info), OK_OK);
    ok_key_info_clear(&info);
    assert_int_equal(import(f->v, "x", OK_KTY_EC, OK_CURVE_P256, json, len, &info), OK_OK);
    ok_key_info_clear(&info);
    /* ciphertext shorter than the modulus plus one KWP block */
    const char *shorty = "{\"schema_version\":\"1.0.0\",\"header\":{\"kid\":\"https://h/keys/kek\",\"alg\":\"dir\","
                         "\"enc\":\"CKM_RSA_AES_KEY_WRAP\"},\"ciphertext\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}";
    assert_int_equal(import(f->v, "y", OK_KTY_OCT, 0, shorty, strlen(shorty), &info), OK_ERR_INVALID_ARG);
    assert_absent(f->v, "y");
    /* a KEK's import op cannot be asked for on the imported key */
    ok_key_attrs imp = {.has_ops = 1, .ops = OK_KEYOP_IMPORT};
    assert_int_equal(ok_vault_key_import_byok(f->v, "y", OK_KTY_EC, 0, (const uint8_t *)json, len, &imp, &info),
                     OK_ERR_INVALID_ARG);
    ok_secure_free(der, der_len);
    ok_pkey_free(ec);
    ok_key_info_clear(&kek);
    ok_key_info_clear(&kek2);
    ok_key_info_clear(&plain);
    free(json);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test_setup_teardown(test_kek_rules, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_import_rsa_ec, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_import_oct_and_enc_variants, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_replay, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_refusals, fixture_setup, fixture_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
