/* Tests of BYOK import into the HSM (byok.c's HSM path, key_hsm.c's ok_key_hsm_unwrap_into, pkcs11_hsm.c's
 * unwrap_into) against SoftHSM2 in a temporary directory: an RSA-HSM key exchange key (3072 by default or
 * 4096, import only, its refusals); a blob made the customer's way (RSA-OAEP-SHA1 + AES-KWP, as in
 * test_vault_byok.c) imported as RSA-HSM and oct-HSM lands in the token as a non-extractable object, and
 * operations there match the customer's key (unwrap of what its public key wrapped, a signature verified
 * with OpenSSL on it, an A256KW wrap that OpenSSL unwraps with it); replays, altered blobs, the SHA-256 enc
 * and EC-HSM are refused with nothing left in the token; without -HSM (or under a software KEK, or with no
 * HSM) the import is a software key reported as such. Skipped without SoftHSM2. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "softhsm_fixture.h"

#define LABEL "ok-byokhsm"
#define PIN "4711"

static softhsm_hsm_fixture fx;

static int group_setup(void **state)
{
    (void)state;
    softhsm_hsm_setup(&fx, LABEL, PIN);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    softhsm_hsm_teardown(&fx);
    return 0;
}

static ok_vault *new_vault(int with_hsm)
{
    return softhsm_new_vault(fx.dir, &fx.n, fx.uri, with_hsm);
}

static int token_objects(const char *name, const char *version)
{
    return softhsm_token_objects(LABEL, PIN, name, version);
}

#define NEED_SOFTHSM() SOFTHSM_SKIP_UNLESS(fx.ready)

#define BLOB_MAX 16384

static void make_kek(ok_vault *v, const char *name, int hsm, unsigned bits, ok_key_info *out)
{
    ok_key_spec spec = {.kty = OK_KTY_RSA, .bits = bits, .hsm = hsm,
                        .attrs = {.has_ops = 1, .ops = OK_KEYOP_IMPORT}};
    if (ok_vault_key_create(v, name, &spec, out) != OK_OK)
        fail_msg("KEK %s: %s", name, ok_err_message());
    assert_int_equal(out->ops, OK_KEYOP_IMPORT);
    assert_int_equal(out->hsm, hsm);
}

/* The customer's side (as test_vault_byok.c): RSA-OAEP (hash) of a fresh AES-256 key, then AES-KWP of target;
 * flip >= 0 alters that byte of the ciphertext. */
static size_t make_blob(const ok_key_info *kek, const char *enc, ok_hash hash, const uint8_t *target, size_t len,
                        long flip, char *json)
{
    uint8_t aes[32], ct[BLOB_MAX / 2];
    size_t k = ok_pkey_size(kek->public_key), n = 0, w = 0;
    char *b64 = NULL;
    assert_int_equal(ok_random(aes, sizeof aes), OK_OK);
    assert_int_equal(ok_rsa_oaep_encrypt(kek->public_key, hash, hash, NULL, 0, aes, sizeof aes, ct, &n), OK_OK);
    assert_int_equal(n, k);
    assert_int_equal(ok_aes_kwp_wrap(aes, sizeof aes, target, len, ct + k, &w), OK_OK);
    if (flip >= 0)
        ct[flip] ^= 1;
    assert_int_equal(ok_b64url_encode(ct, k + w, &b64), OK_OK);
    int written = snprintf(json, BLOB_MAX,
                           "{\"schema_version\":\"1.0.0\",\"header\":{\"kid\":\"https://h/keys/%s/%s\",\"alg\":"
                           "\"dir\",\"enc\":\"%s\"},\"ciphertext\":\"%s\"}",
                           kek->name, kek->version, enc, b64);
    free(b64);
    assert_true(written > 0 && written < BLOB_MAX);
    return (size_t)written;
}

static ok_err import(ok_vault *v, const char *name, ok_kty kty, int hsm, const char *json, size_t len,
                     ok_key_info *out)
{
    return ok_vault_key_import_byok_ex(v, name, kty, hsm, 0, (const uint8_t *)json, len, NULL, out);
}

static ok_err op(ok_vault *v, const char *name, ok_key_op kop, const char *alg, const uint8_t *val, size_t len,
                 ok_key_op_result *r)
{
    ok_key_op_request req = {.op = kop, .alg = alg, .value = val, .value_len = len};
    return ok_vault_key_op(v, name, NULL, &req, r);
}

static void assert_same_public(const ok_pkey *a, const ok_pkey *b)
{
    uint8_t *x = NULL, *y = NULL;
    size_t xl = 0, yl = 0;
    assert_int_equal(ok_pkey_public_der(a, &x, &xl), OK_OK);
    assert_int_equal(ok_pkey_public_der(b, &y, &yl), OK_OK);
    assert_int_equal(xl, yl);
    assert_memory_equal(x, y, xl);
    free(x);
    free(y);
}

static void test_kek_hsm(void **state)
{
    (void)state;
    NEED_SOFTHSM();
    ok_vault *v = new_vault(1);
    ok_key_info kek, info;
    make_kek(v, "kek", 1, 0, &kek);
    assert_int_equal(kek.bits, 3072);
    assert_int_equal(token_objects("kek", kek.version), 2);
    /* every operation is refused, in the token or not */
    ok_key_op_result r;
    uint8_t dek[32] = {1};
    assert_int_equal(op(v, "kek", OK_KOP_WRAP, "RSA-OAEP", dek, 32, &r), OK_ERR_FORBIDDEN);
    assert_int_equal(op(v, "kek", OK_KOP_UNWRAP, "RSA-OAEP", dek, 32, &r), OK_ERR_FORBIDDEN);
    assert_int_equal(op(v, "kek", OK_KOP_SIGN, "RS256", dek, 32, &r), OK_ERR_FORBIDDEN);
    /* 2048 bits, another type, import with another op */
    ok_key_spec spec = {.kty = OK_KTY_RSA, .bits = 2048, .hsm = 1, .attrs = {.has_ops = 1, .ops = OK_KEYOP_IMPORT}};
    assert_int_equal(ok_vault_key_create(v, "k2", &spec, &info), OK_ERR_INVALID_ARG);
    assert_non_null(strstr(ok_err_message(), "3072 or 4096"));
    spec.bits = 0;
    spec.kty = OK_KTY_EC;
    assert_int_equal(ok_vault_key_create(v, "k2", &spec, &info), OK_ERR_INVALID_ARG);
    spec.kty = OK_KTY_OCT;
    assert_int_equal(ok_vault_key_create(v, "k2", &spec, &info), OK_ERR_INVALID_ARG);
    spec.kty = OK_KTY_RSA;
    spec.attrs.ops = OK_KEYOP_IMPORT | OK_KEYOP_SIGN;
    assert_int_equal(ok_vault_key_create(v, "k2", &spec, &info), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_vault_key_get(v, "k2", NULL, &info), OK_ERR_NOT_FOUND);
    assert_int_equal(token_objects("k2", NULL), 0);
    /* the import op stays fixed */
    ok_key_attrs up = {.has_ops = 1, .ops = OK_KEYOP_SIGN};
    assert_int_equal(ok_vault_key_update(v, "kek", NULL, &up, &info), OK_ERR_INVALID_ARG);
    ok_key_info_clear(&kek);
    make_kek(v, "kek4k", 1, 4096, &kek);
    assert_int_equal(kek.bits, 4096);
    ok_key_info_clear(&kek);
    /* no HSM: an RSA-HSM KEK is refused like every -HSM create */
    ok_vault *plain = new_vault(0);
    spec = (ok_key_spec){.kty = OK_KTY_RSA, .bits = 3072, .hsm = 1, .attrs = {.has_ops = 1, .ops = OK_KEYOP_IMPORT}};
    assert_int_equal(ok_vault_key_create(plain, "kek", &spec, &info), OK_ERR_INVALID_ARG);
    assert_non_null(strstr(ok_err_message(), "no HSM"));
    ok_vault_close(plain);
    ok_vault_close(v);
}

static void test_import_rsa_into_token(void **state)
{
    (void)state;
    NEED_SOFTHSM();
    ok_vault *v = new_vault(1);
    ok_key_info kek, info;
    char *json = malloc(BLOB_MAX);
    ok_pkey *target = NULL;
    uint8_t *der = NULL;
    size_t der_len = 0;
    assert_non_null(json);
    make_kek(v, "kek", 1, 3072, &kek);
    assert_int_equal(ok_pkey_generate_rsa(&target, 2048), OK_OK);
    assert_int_equal(ok_pkey_private_der(target, &der, &der_len), OK_OK);
    size_t len = make_blob(&kek, "CKM_RSA_AES_KEY_WRAP", OK_HASH_SHA1, der, der_len, -1, json);
    if (import(v, "rsa", OK_KTY_RSA, 1, json, len, &info) != OK_OK)
        fail_msg("import RSA-HSM: %s", ok_err_message());
    assert_true(info.hsm);
    assert_int_equal(info.kty, OK_KTY_RSA);
    assert_int_equal(info.bits, 2048);
    assert_same_public(info.public_key, target);
    assert_int_equal(token_objects("rsa", info.version), 1); /* the private key: non-extractable, sensitive */
    /* the token unwraps what the customer's public key wrapped, and signs as the customer's key */
    uint8_t ct[256], digest[32];
    size_t n = 0;
    memset(digest, 0x21, sizeof digest);
    assert_int_equal(ok_rsa_oaep_encrypt(target, OK_HASH_SHA1, OK_HASH_SHA1, NULL, 0, (const uint8_t *)"0123456789abcdef"
                                         "0123456789abcdef", 32, ct, &n), OK_OK);
    ok_key_op_result r;
    if (op(v, "rsa", OK_KOP_UNWRAP, "RSA-OAEP", ct, n, &r) != OK_OK)
        fail_msg("unwrap: %s", ok_err_message());
    assert_int_equal(r.value_len, 32);
    assert_memory_equal(r.value, "0123456789abcdef0123456789abcdef", 32);
    ok_key_op_result_clear(&r);
    if (op(v, "rsa", OK_KOP_SIGN, "RS256", digest, 32, &r) != OK_OK)
        fail_msg("sign: %s", ok_err_message());
    assert_int_equal(ok_verify_digest(target, OK_SIG_RS256, digest, 32, r.value, r.value_len), OK_OK);
    ok_key_op_result_clear(&r);
    /* the same blob again: refused, nothing new in the token */
    ok_key_info again;
    assert_int_equal(import(v, "rsa", OK_KTY_RSA, 1, json, len, &again), OK_ERR_INVALID_ARG);
    assert_non_null(strstr(ok_err_message(), "imported before"));
    assert_int_equal(import(v, "rsa2", OK_KTY_RSA, 1, json, len, &again), OK_ERR_INVALID_ARG);
    assert_int_equal(token_objects("rsa", NULL), 1);
    assert_int_equal(token_objects("rsa2", NULL), 0);
    /* altered: one message, nothing stored or left in the token */
    len = make_blob(&kek, "CKM_RSA_AES_KEY_WRAP", OK_HASH_SHA1, der, der_len, 400, json);
    assert_int_equal(import(v, "bad", OK_KTY_RSA, 1, json, len, &again), OK_ERR_INVALID_ARG);
    assert_non_null(strstr(ok_err_message(), "made for another key, or altered"));
    /* the SHA-256 variant: the token opens SHA-1 only */
    len = make_blob(&kek, "RSA_AES_KEY_WRAP_256", OK_HASH_SHA256, der, der_len, -1, json);
    assert_int_equal(import(v, "bad", OK_KTY_RSA, 1, json, len, &again), OK_ERR_INVALID_ARG);
    assert_non_null(strstr(ok_err_message(), "SHA-1"));
    /* an RSA key asked for as oct-HSM; EC-HSM */
    len = make_blob(&kek, "CKM_RSA_AES_KEY_WRAP", OK_HASH_SHA1, der, der_len, -1, json);
    assert_int_equal(import(v, "bad", OK_KTY_OCT, 1, json, len, &again), OK_ERR_INVALID_ARG);
    assert_int_equal(import(v, "bad", OK_KTY_EC, 1, json, len, &again), OK_ERR_INVALID_ARG);
    assert_non_null(strstr(ok_err_message(), "EC"));
    assert_int_equal(ok_vault_key_get(v, "bad", NULL, &again), OK_ERR_NOT_FOUND);
    assert_int_equal(token_objects("bad", NULL), 0);
    /* without -HSM under the RSA-HSM KEK: the token opens the AES key, the target is a software key */
    if (import(v, "soft", OK_KTY_RSA, 0, json, len, &again) != OK_OK)
        fail_msg("import RSA: %s", ok_err_message());
    assert_false(again.hsm);
    assert_same_public(again.public_key, target);
    assert_int_equal(token_objects("soft", NULL), 0);
    if (op(v, "soft", OK_KOP_SIGN, "RS256", digest, 32, &r) != OK_OK)
        fail_msg("sign: %s", ok_err_message());
    assert_int_equal(ok_verify_digest(target, OK_SIG_RS256, digest, 32, r.value, r.value_len), OK_OK);
    ok_key_op_result_clear(&r);
    ok_key_info_clear(&again);
    /* purge destroys the imported object */
    assert_int_equal(ok_vault_key_delete(v, "rsa", &again), OK_OK);
    ok_key_info_clear(&again);
    assert_int_equal(ok_vault_deleted_purge(v, "rsa"), OK_OK);
    assert_int_equal(token_objects("rsa", NULL), 0);
    ok_secure_free(der, der_len);
    ok_pkey_free(target);
    ok_key_info_clear(&info);
    ok_key_info_clear(&kek);
    free(json);
    ok_vault_close(v);
}

static void test_import_oct_into_token(void **state)
{
    (void)state;
    NEED_SOFTHSM();
    ok_vault *v = new_vault(1);
    ok_key_info kek, soft_kek, info;
    char *json = malloc(BLOB_MAX);
    uint8_t key[32], dek[32], back[32];
    size_t n = 0;
    assert_non_null(json);
    assert_int_equal(ok_random(key, sizeof key), OK_OK);
    memset(dek, 0x6b, sizeof dek);
    make_kek(v, "kek", 1, 3072, &kek);
    size_t len = make_blob(&kek, "CKM_RSA_AES_KEY_WRAP", OK_HASH_SHA1, key, sizeof key, -1, json);
    if (import(v, "aes", OK_KTY_OCT, 1, json, len, &info) != OK_OK)
        fail_msg("import oct-HSM: %s", ok_err_message());
    assert_true(info.hsm);
    assert_int_equal(info.kty, OK_KTY_OCT);
    assert_int_equal(info.bits, 256);
    assert_int_equal(token_objects("aes", info.version), 1);
    /* the token wraps with the customer's key: OpenSSL unwraps it with the known key, and the token back */
    ok_key_op_result w, u;
    if (op(v, "aes", OK_KOP_WRAP, "A256KW", dek, 32, &w) != OK_OK)
        fail_msg("A256KW: %s", ok_err_message());
    assert_int_equal(ok_aes_kw_unwrap(key, sizeof key, w.value, w.value_len, back, &n), OK_OK);
    assert_int_equal(n, 32);
    assert_memory_equal(back, dek, 32);
    assert_int_equal(op(v, "aes", OK_KOP_UNWRAP, "A256KW", w.value, w.value_len, &u), OK_OK);
    assert_memory_equal(u.value, dek, 32);
    ok_key_op_result_clear(&u);
    ok_key_op_result_clear(&w);
    /* replayed: refused */
    ok_key_info again;
    assert_int_equal(import(v, "aes", OK_KTY_OCT, 1, json, len, &again), OK_ERR_INVALID_ARG);
    assert_int_equal(token_objects("aes", NULL), 1);
    /* 20 bytes are no AES key: destroyed, refused */
    len = make_blob(&kek, "CKM_RSA_AES_KEY_WRAP", OK_HASH_SHA1, key, 20, -1, json);
    assert_int_equal(import(v, "odd", OK_KTY_OCT, 1, json, len, &again), OK_ERR_INVALID_ARG);
    assert_int_equal(token_objects("odd", NULL), 0);
    /* a software KEK with -HSM: a software key, reported as oct */
    make_kek(v, "softkek", 0, 3072, &soft_kek);
    len = make_blob(&soft_kek, "CKM_RSA_AES_KEY_WRAP", OK_HASH_SHA1, key, sizeof key, -1, json);
    assert_int_equal(import(v, "aes-soft", OK_KTY_OCT, 1, json, len, &again), OK_OK);
    assert_false(again.hsm);
    assert_int_equal(token_objects("aes-soft", NULL), 0);
    ok_key_info_clear(&again);
    ok_key_info_clear(&soft_kek);
    ok_key_info_clear(&info);
    ok_key_info_clear(&kek);
    free(json);
    ok_vault_close(v);
}

/* Without an HSM: -HSM in the request gives a software key reported with the plain type. */
static void test_no_token(void **state)
{
    (void)state;
    NEED_SOFTHSM();
    ok_vault *v = new_vault(0);
    ok_key_info kek, info;
    char *json = malloc(BLOB_MAX);
    uint8_t key[16];
    assert_non_null(json);
    assert_int_equal(ok_random(key, sizeof key), OK_OK);
    make_kek(v, "kek", 0, 3072, &kek);
    size_t len = make_blob(&kek, "CKM_RSA_AES_KEY_WRAP", OK_HASH_SHA1, key, sizeof key, -1, json);
    assert_int_equal(import(v, "aes", OK_KTY_OCT, 1, json, len, &info), OK_OK);
    assert_false(info.hsm);
    assert_int_equal(info.kty, OK_KTY_OCT);
    assert_int_equal(info.bits, 128);
    ok_key_info_clear(&info);
    ok_key_info_clear(&kek);
    free(json);
    ok_vault_close(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kek_hsm),
        cmocka_unit_test(test_import_rsa_into_token),
        cmocka_unit_test(test_import_oct_into_token),
        cmocka_unit_test(test_no_token),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
