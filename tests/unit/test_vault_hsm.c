/* Tests of HSM-backed vault keys (src/vault/key_hsm.c, key_ops.c's HSM path, src/providers/pkcs11_hsm.c)
 * against SoftHSM2 in a temporary directory: RSA-HSM, EC-HSM and oct-HSM creates make non-extractable token
 * objects (CKA_EXTRACTABLE false, CKA_VALUE unreadable); operations round-trip and signatures verify with
 * OpenSSL on the public key; the bundle says hsm; RSA-OAEP-256 and GCM are refused clearly; rotation makes a
 * new object; backup is refused; purge destroys the objects; -HSM without an HSM is refused. Skipped without
 * SoftHSM2. */
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

#define LABEL "ok-hsmkeys"
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

static void create(ok_vault *v, const char *name, ok_kty kty, unsigned bits, ok_curve curve, ok_key_info *info)
{
    ok_key_spec spec = {.kty = kty, .bits = bits, .curve = curve, .hsm = 1};
    if (ok_vault_key_create(v, name, &spec, info) != OK_OK)
        fail_msg("create %s: %s", name, ok_err_message());
    assert_true(info->hsm);
    assert_int_equal(info->kty, kty);
}

static ok_err op(ok_vault *v, const char *name, ok_key_op kop, const char *alg, const uint8_t *val, size_t len,
                 const uint8_t *digest, ok_key_op_result *r)
{
    ok_key_op_request req = {.op = kop, .alg = alg, .value = val, .value_len = len, .digest = digest,
                             .digest_len = digest ? 32 : 0};
    return ok_vault_key_op(v, name, NULL, &req, r);
}

static void test_rsa_hsm(void **state)
{
    (void)state;
    NEED_SOFTHSM();
    ok_vault *v = new_vault(1);
    ok_key_info info;
    create(v, "rsa", OK_KTY_RSA, 2048, 0, &info);
    assert_non_null(info.public_key);
    assert_int_equal(token_objects("rsa", info.version), 2);
    uint8_t dek[32], digest[32];
    memset(dek, 0x5a, sizeof dek);
    memset(digest, 0x33, sizeof digest);
    for (int i = 0; i < 2; i++) {
        const char *alg = i ? "RSA1_5" : "RSA-OAEP";
        ok_key_op_result w, u;
        assert_int_equal(op(v, "rsa", OK_KOP_WRAP, alg, dek, 32, NULL, &w), OK_OK);
        if (op(v, "rsa", OK_KOP_UNWRAP, alg, w.value, w.value_len, NULL, &u) != OK_OK)
            fail_msg("unwrap %s: %s", alg, ok_err_message());
        assert_int_equal(u.value_len, 32);
        assert_memory_equal(u.value, dek, 32);
        w.value[5] ^= 1;
        ok_key_op_result_clear(&u);
        assert_int_equal(op(v, "rsa", OK_KOP_UNWRAP, alg, w.value, w.value_len, NULL, &u), OK_ERR_AUTH);
        ok_key_op_result_clear(&w);
    }
    ok_key_op_result r;
    assert_int_equal(op(v, "rsa", OK_KOP_WRAP, "RSA-OAEP-256", dek, 32, NULL, &r), OK_ERR_INVALID_ARG);
    assert_non_null(strstr(ok_err_message(), "RSA-OAEP-256"));
    for (int i = 0; i < 2; i++) {
        const char *alg = i ? "PS256" : "RS256";
        ok_sig_alg sig = i ? OK_SIG_PS256 : OK_SIG_RS256;
        ok_key_op_result s, vr;
        if (op(v, "rsa", OK_KOP_SIGN, alg, digest, 32, NULL, &s) != OK_OK)
            fail_msg("sign %s: %s", alg, ok_err_message());
        assert_int_equal(s.value_len, 256);
        assert_int_equal(ok_verify_digest(info.public_key, sig, digest, 32, s.value, s.value_len), OK_OK);
        assert_int_equal(op(v, "rsa", OK_KOP_VERIFY, alg, s.value, s.value_len, digest, &vr), OK_OK);
        assert_true(vr.verified);
        ok_key_op_result_clear(&vr);
        ok_key_op_result_clear(&s);
    }
    /* backup refused; rotation makes a new object; purge destroys them all */
    uint8_t *blob = NULL;
    size_t blen = 0;
    assert_int_equal(ok_vault_key_backup(v, "rsa", &blob, &blen), OK_ERR_INVALID_ARG);
    assert_string_equal(ok_err_message(), "HSM-backed keys cannot be backed up");
    ok_key_info rot;
    assert_int_equal(ok_vault_key_rotate(v, "rsa", &rot), OK_OK);
    assert_true(rot.hsm);
    assert_string_not_equal(rot.version, info.version);
    assert_int_equal(token_objects("rsa", rot.version), 2);
    ok_key_info del;
    assert_int_equal(ok_vault_key_delete(v, "rsa", &del), OK_OK);
    ok_key_info_clear(&del);
    assert_int_equal(token_objects("rsa", info.version), 2); /* soft delete keeps them */
    assert_int_equal(ok_vault_deleted_purge(v, "rsa"), OK_OK);
    assert_int_equal(token_objects("rsa", info.version), 0);
    assert_int_equal(token_objects("rsa", rot.version), 0);
    ok_key_info_clear(&rot);
    ok_key_info_clear(&info);
    ok_vault_close(v);
}

static void test_ec_hsm(void **state)
{
    (void)state;
    NEED_SOFTHSM();
    ok_vault *v = new_vault(1);
    ok_key_info info;
    create(v, "ec", OK_KTY_EC, 0, OK_CURVE_P256, &info);
    assert_int_equal(token_objects("ec", info.version), 2);
    uint8_t digest[32];
    memset(digest, 0x44, sizeof digest);
    ok_key_op_result s, vr;
    if (op(v, "ec", OK_KOP_SIGN, "ES256", digest, 32, NULL, &s) != OK_OK)
        fail_msg("ES256: %s", ok_err_message());
    assert_int_equal(s.value_len, 64);
    assert_int_equal(ok_verify_digest(info.public_key, OK_SIG_ES256, digest, 32, s.value, s.value_len), OK_OK);
    assert_int_equal(op(v, "ec", OK_KOP_VERIFY, "ES256", s.value, s.value_len, digest, &vr), OK_OK);
    assert_true(vr.verified);
    ok_key_op_result_clear(&vr);
    ok_key_op_result_clear(&s);
    ok_key_info_clear(&info);
    ok_vault_close(v);
}

static void test_oct_hsm(void **state)
{
    (void)state;
    NEED_SOFTHSM();
    ok_vault *v = new_vault(1);
    ok_key_info info;
    create(v, "aes", OK_KTY_OCT, 256, 0, &info);
    assert_int_equal(token_objects("aes", info.version), 1);
    uint8_t dek[64];
    memset(dek, 0x77, sizeof dek);
    for (size_t len = 16; len <= 64; len *= 2) {
        ok_key_op_result w, u;
        if (op(v, "aes", OK_KOP_WRAP, "A256KW", dek, len, NULL, &w) != OK_OK)
            fail_msg("A256KW wrap: %s", ok_err_message());
        assert_int_equal(w.value_len, len + 8);
        /* RFC 3394 output: the same as OpenSSL's with the same key is not checkable (the key stays in the
         * token), so the token must unwrap it back and refuse an altered one */
        if (op(v, "aes", OK_KOP_UNWRAP, "A256KW", w.value, w.value_len, NULL, &u) != OK_OK)
            fail_msg("A256KW unwrap: %s", ok_err_message());
        assert_int_equal(u.value_len, len);
        assert_memory_equal(u.value, dek, len);
        ok_key_op_result_clear(&u);
        w.value[3] ^= 1;
        assert_int_equal(op(v, "aes", OK_KOP_UNWRAP, "A256KW", w.value, w.value_len, NULL, &u), OK_ERR_AUTH);
        ok_key_op_result_clear(&w);
    }
    ok_key_op_result r;
    if (op(v, "aes", OK_KOP_ENCRYPT, "A256GCM", dek, 16, NULL, &r) == OK_OK)
        fail_msg("A256GCM on oct-HSM must be refused");
    assert_non_null(strstr(ok_err_message(), "oct-HSM"));
    ok_key_info_clear(&info);
    ok_vault_close(v);
}

static void test_no_hsm_refused(void **state)
{
    (void)state;
    NEED_SOFTHSM();
    ok_vault *v = new_vault(0);
    ok_key_spec spec = {.kty = OK_KTY_RSA, .hsm = 1};
    ok_key_info info;
    assert_int_equal(ok_vault_key_create(v, "nohsm", &spec, &info), OK_ERR_INVALID_ARG);
    assert_non_null(strstr(ok_err_message(), "this vault has no HSM; create RSA, EC or oct"));
    assert_int_equal(ok_vault_key_get(v, "nohsm", NULL, &info), OK_ERR_NOT_FOUND);
    ok_vault_close(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rsa_hsm),
        cmocka_unit_test(test_ec_hsm),
        cmocka_unit_test(test_oct_hsm),
        cmocka_unit_test(test_no_hsm_refused),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
