/* Tests of HSM auto-unseal (src/vault/seal_pkcs11.c, the OK_SEAL_PKCS11 kind of seal.c) against SoftHSM2:
 * the test makes its own token in a temporary directory (softhsm2-util) and its keys through the C API (an
 * AES-256 key and an RSA-2048 key pair, both sensitive), wires the pkcs11 provider into the vault
 * (ok_vault_set_hsm_opener) as ownkeyd does, and covers: init with an AES key and with an RSA key, close,
 * reopen unsealed by itself with the same master key (a key made before still unwraps); the token moved
 * away (opens sealed, status says "token not present"), moved back (ok_vault_unseal_auto works); a wrong
 * PIN (sealed, a clear error without the PIN); pin-value refused; seal then auto-unseal; the meta rows
 * hold no PIN. Skipped without SoftHSM2. */
#include <dirent.h>
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

#include "ownkey/provider.h"
#include "softhsm_fixture.h"
#include "vault/vault_internal.h"

#define LABEL "ok-seal"
#define PIN "4711"
#define WRONG_PIN "97531"
#define SECRET "0123456789abcdef0123456789abcdef"

static struct {
    int ready;
    char *dir;
    char tokens[512];
    char pin_file[512];
    char bad_pin_file[512];
    int n; /* vaults made so far */
} fx;

static void make_uri(char *buf, size_t len, const char *object, const char *pin_file)
{
    snprintf(buf, len, "pkcs11:token=" LABEL ";object=%s?module-path=" SOFTHSM_MODULE "&pin-source=file:%s", object,
             pin_file);
}

/* The seal keys, made once in the token: AES (KWP) and RSA (OAEP), sensitive and not extractable. */
static void make_keys(void)
{
    ok_p11_module *mod = NULL;
    assert_int_equal(ok_p11_module_get(SOFTHSM_MODULE, &mod), OK_OK);
    CK_FUNCTION_LIST *f = ok_p11_module_functions(mod);
    CK_SLOT_ID slot = 0;
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    assert_int_equal(softhsm_session(f, LABEL, PIN, CKF_SERIAL_SESSION | CKF_RW_SESSION, &slot, &s), CKR_OK);
    const unsigned char id1 = 1, id2 = 2;
    assert_int_equal(softhsm_gen_aes(f, s, "seal-aes", &id1, SOFTHSM_NOT_EXTRACTABLE), CKR_OK);
    assert_int_equal(softhsm_gen_rsa(f, s, "seal-rsa", &id2, 2048, SOFTHSM_NOT_EXTRACTABLE), CKR_OK);
    f->C_CloseSession(s);
    /* The last reference finalizes the module: the vault's provider loads it afresh. */
    ok_p11_module_put(mod);
}

static int group_setup(void **state)
{
    (void)state;
    if (!softhsm_available())
        return 0; /* not installed: every test skips */
    fx.dir = test_make_tmpdir();
    assert_non_null(fx.dir);
    softhsm_token_init(fx.dir, LABEL, PIN, fx.tokens, fx.pin_file);
    snprintf(fx.bad_pin_file, sizeof fx.bad_pin_file, "%s/bad-pin", fx.dir);
    softhsm_write_file(fx.bad_pin_file, WRONG_PIN "\n");
    make_keys();
    ok_vault_set_hsm_opener(ok_pkcs11_provider_open);
    fx.ready = 1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (fx.dir) {
        test_remove_tree(fx.dir);
        free(fx.dir);
    }
    return 0;
}

#define NEED_SOFTHSM() SOFTHSM_SKIP_UNLESS(fx.ready)

/* A new PKCS#11 vault sealed by `object`, with key "k1" and a value wrapped under it (wrapped[40]). */
static void new_vault(char *dir, size_t len, const char *object, uint8_t wrapped[40])
{
    char uri[1024];
    snprintf(dir, len, "%s/vault%d", fx.dir, ++fx.n);
    make_uri(uri, sizeof uri, object, fx.pin_file);
    ok_vault_init_params p = {.kind = OK_SEAL_PKCS11, .pkcs11_uri = uri};
    ok_vault_init_result res = {0};
    if (ok_vault_init(dir, &p, &res) != OK_OK)
        fail_msg("init with %s: %s", object, ok_err_message());
    assert_non_null(res.admin_token);
    ok_vault_init_result_clear(&res);

    ok_vault *v = NULL;
    assert_int_equal(ok_vault_open(dir, &v), OK_OK);
    ok_key_spec spec = {.kty = OK_KTY_OCT};
    ok_key_info info;
    assert_int_equal(ok_vault_key_create(v, "k1", &spec, &info), OK_OK);
    ok_key_info_clear(&info);
    ok_key_op_request req = {.op = OK_KOP_WRAP, .alg = "A256KW", .value = (const uint8_t *)SECRET, .value_len = 32};
    ok_key_op_result r;
    assert_int_equal(ok_vault_key_op(v, "k1", NULL, &req, &r), OK_OK);
    assert_int_equal(r.value_len, 40);
    memcpy(wrapped, r.value, 40);
    ok_key_op_result_clear(&r);
    ok_vault_close(v);
}

/* k1 unwraps the value again: the master key is the one of init. */
static void expect_same_master(ok_vault *v, const uint8_t wrapped[40])
{
    ok_key_op_request req = {.op = OK_KOP_UNWRAP, .alg = "A256KW", .value = wrapped, .value_len = 40};
    ok_key_op_result r;
    if (ok_vault_key_op(v, "k1", NULL, &req, &r) != OK_OK)
        fail_msg("unwrap with k1: %s", ok_err_message());
    assert_int_equal(r.value_len, 32);
    assert_memory_equal(r.value, SECRET, 32);
    ok_key_op_result_clear(&r);
}

static void expect_status(ok_vault *v, int sealed, const char *error_part)
{
    ok_vault_status st;
    ok_vault_get_status(v, &st);
    assert_int_equal(st.kind, OK_SEAL_PKCS11);
    assert_int_equal(st.sealed, sealed);
    assert_non_null(strstr(st.hsm_key, "token=" LABEL));
    assert_null(strstr(st.hsm_key, "pin"));
    if (error_part == NULL) {
        assert_string_equal(st.seal_error, "");
    } else if (strstr(st.seal_error, error_part) == NULL) {
        fail_msg("status error \"%s\" lacks \"%s\"", st.seal_error, error_part);
    }
    assert_null(strstr(st.seal_error, PIN));
    assert_null(strstr(st.seal_error, WRONG_PIN));
}

static void reopen_unsealed(const char *object)
{
    NEED_SOFTHSM();
    char dir[600];
    uint8_t wrapped[40];
    new_vault(dir, sizeof dir, object, wrapped);
    ok_vault *v = NULL;
    assert_int_equal(ok_vault_open(dir, &v), OK_OK);
    expect_status(v, 0, NULL);
    expect_same_master(v, wrapped);
    /* An operator's seal; the token unseals it again on request. */
    assert_int_equal(ok_vault_seal(v), OK_OK);
    assert_null(v->master_key);
    expect_status(v, 1, NULL);
    assert_int_equal(ok_vault_unseal_auto(v), OK_OK);
    assert_int_equal(ok_vault_unseal_auto(v), OK_OK); /* already unsealed: fine */
    expect_same_master(v, wrapped);
    ok_vault_close(v);
}

static void test_aes_key_reopens_unsealed(void **state)
{
    (void)state;
    reopen_unsealed("seal-aes");
}

static void test_rsa_key_reopens_unsealed(void **state)
{
    (void)state;
    reopen_unsealed("seal-rsa;type=private");
}

static void test_token_away_opens_sealed_then_unseals(void **state)
{
    (void)state;
    NEED_SOFTHSM();
    char dir[600], tok[1024], away[1024];
    uint8_t wrapped[40];
    new_vault(dir, sizeof dir, "seal-aes", wrapped);
    softhsm_token_dir(fx.tokens, tok, sizeof tok);
    snprintf(away, sizeof away, "%s/away", fx.dir);
    assert_int_equal(rename(tok, away), 0);

    ok_vault *v = NULL;
    assert_int_equal(ok_vault_open(dir, &v), OK_OK);
    expect_status(v, 1, "token");
    ok_key_op_request req = {.op = OK_KOP_UNWRAP, .alg = "A256KW", .value = wrapped, .value_len = 40};
    ok_key_op_result r;
    assert_int_equal(ok_vault_key_op(v, "k1", NULL, &req, &r), OK_ERR_SEALED);
    /* A retry while it is still away fails the same clear way. */
    assert_int_not_equal(ok_vault_unseal_auto(v), OK_OK);
    assert_non_null(strstr(ok_err_message(), "HSM unseal failed"));
    expect_status(v, 1, "token");

    assert_int_equal(rename(away, tok), 0);
    if (ok_vault_unseal_auto(v) != OK_OK)
        fail_msg("token back, unseal: %s", ok_err_message());
    expect_status(v, 0, NULL);
    expect_same_master(v, wrapped);
    ok_vault_close(v);
}

/* The vault's pin-source file holds a wrong PIN: sealed, "PIN" in the reason, never the PIN itself. */
static void test_wrong_pin_opens_sealed_without_the_pin(void **state)
{
    (void)state;
    NEED_SOFTHSM();
    char dir[600];
    uint8_t wrapped[40];
    new_vault(dir, sizeof dir, "seal-aes", wrapped);
    softhsm_write_file(fx.pin_file, WRONG_PIN "\n");
    ok_vault *v = NULL;
    assert_int_equal(ok_vault_open(dir, &v), OK_OK);
    expect_status(v, 1, "PIN");
    assert_int_equal(ok_vault_unseal_auto(v), OK_ERR_FORBIDDEN);
    assert_null(strstr(ok_err_message(), WRONG_PIN));
    assert_null(strstr(ok_err_message(), PIN));
    /* The PIN file fixed: the next try unseals. */
    softhsm_write_file(fx.pin_file, PIN "\n");
    if (ok_vault_unseal_auto(v) != OK_OK)
        fail_msg("PIN fixed, unseal: %s", ok_err_message());
    expect_same_master(v, wrapped);
    ok_vault_close(v);
}

static void test_init_refusals(void **state)
{
    (void)state;
    NEED_SOFTHSM();
    char dir[600], uri[1024];
    snprintf(dir, sizeof dir, "%s/refused", fx.dir);
    /* pin-value would be stored in the vault */
    snprintf(uri, sizeof uri, "pkcs11:token=" LABEL ";object=seal-aes?module-path=" SOFTHSM_MODULE "&pin-value=" PIN);
    ok_vault_init_params p = {.kind = OK_SEAL_PKCS11, .pkcs11_uri = uri};
    ok_vault_init_result res = {0};
    assert_int_equal(ok_vault_init(dir, &p, &res), OK_ERR_INVALID_ARG);
    assert_non_null(strstr(ok_err_message(), "pin-source"));
    assert_null(strstr(ok_err_message(), PIN));
    /* a wrong PIN at init: nothing made */
    make_uri(uri, sizeof uri, "seal-aes", fx.bad_pin_file);
    assert_int_equal(ok_vault_init(dir, &p, &res), OK_ERR_FORBIDDEN);
    assert_null(strstr(ok_err_message(), WRONG_PIN));
    assert_int_not_equal(access(dir, F_OK), 0);
    /* a key the token does not hold */
    make_uri(uri, sizeof uri, "no-such-key", fx.pin_file);
    assert_int_equal(ok_vault_init(dir, &p, &res), OK_ERR_NOT_FOUND);
    assert_int_not_equal(access(dir, F_OK), 0);
    /* not a pkcs11 URI */
    p.pkcs11_uri = "file:/etc/passwd";
    assert_int_equal(ok_vault_init(dir, &p, &res), OK_ERR_INVALID_ARG);
}

/* Nothing in the vault directory holds the PIN. */
static void test_no_pin_at_rest(void **state)
{
    (void)state;
    NEED_SOFTHSM();
    char dir[600], db[700];
    uint8_t wrapped[40];
    new_vault(dir, sizeof dir, "seal-aes", wrapped);
    snprintf(db, sizeof db, "%s/vault.db", dir);
    size_t len = 0;
    char *text = test_read_file(db, &len);
    assert_non_null(text);
    assert_null(memmem(text, len, PIN, strlen(PIN)));
    assert_non_null(memmem(text, len, "pin-source=file:", 16)); /* the URI is there, as a path */
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aes_key_reopens_unsealed),
        cmocka_unit_test(test_rsa_key_reopens_unsealed),
        cmocka_unit_test(test_token_away_opens_sealed_then_unseals),
        cmocka_unit_test(test_wrong_pin_opens_sealed_without_the_pin),
        cmocka_unit_test(test_init_refusals),
        cmocka_unit_test(test_no_pin_at_rest),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
