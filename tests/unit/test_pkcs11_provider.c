/* Tests of the pkcs11 provider (src/providers/pkcs11_*.c) against SoftHSM2: the test makes its own token
 * in a temporary directory (softhsm2-util --init-token) and its own keys through the C API (an AES-256
 * key with a known value, an RSA-3072 key pair, an RSA-2048 private key without a public key object).
 * Covers AES-KWP and RSA-OAEP round trips (hash negotiation recorded in the EDK), interop with OpenSSL,
 * 8 threads on one provider (session pool), wrong PIN, missing key, and a token that goes away and comes
 * back (and a PIN changed on the token, then fixed in the PIN file). Skipped without SoftHSM2. */
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "ownkey/crypto.h"
#include "ownkey/provider.h"
#include "softhsm_fixture.h"

#define LABEL "ok-test"
#define PIN "1234"

static struct {
    int ready;
    char *dir;
    char tokens[512];
    char pin_file[512];
    ok_p11_module *mod;
    CK_FUNCTION_LIST *f;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    uint8_t aes[32];
} fx;

static void make_uri(char *buf, size_t len, const char *object, const char *pin_file)
{
    snprintf(buf, len, "pkcs11:token=" LABEL ";%s?module-path=" SOFTHSM_MODULE "&pin-source=file:%s", object,
             pin_file ? pin_file : fx.pin_file);
}

static CK_RV create_aes(const char *label, unsigned char id)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_AES;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof cls},        {CKA_KEY_TYPE, &kt, sizeof kt},       {CKA_TOKEN, &yes, 1},
        {CKA_PRIVATE, &yes, 1},               {CKA_SENSITIVE, &no, 1},              {CKA_EXTRACTABLE, &yes, 1},
        {CKA_WRAP, &yes, 1},                  {CKA_UNWRAP, &yes, 1},                {CKA_ENCRYPT, &yes, 1},
        {CKA_DECRYPT, &yes, 1},               {CKA_LABEL, (void *)label, strlen(label)},
        {CKA_ID, &id, 1},                     {CKA_VALUE, fx.aes, sizeof fx.aes},
    };
    CK_OBJECT_HANDLE h;
    return fx.f->C_CreateObject(fx.s, t, sizeof t / sizeof t[0], &h);
}

static CK_RV create_rsa(const char *label, unsigned char id, CK_ULONG bits, int public_on_token)
{
    return softhsm_gen_rsa(fx.f, fx.s, label, &id, bits, public_on_token ? 0 : SOFTHSM_NO_PUBLIC);
}

static int group_setup(void **state)
{
    (void)state;
    if (!softhsm_available())
        return 0; /* not installed: every test skips */
    fx.dir = test_make_tmpdir();
    assert_non_null(fx.dir);
    softhsm_token_init(fx.dir, LABEL, PIN, fx.tokens, fx.pin_file);
    assert_int_equal(ok_p11_module_get(SOFTHSM_MODULE, &fx.mod), OK_OK);
    fx.f = ok_p11_module_functions(fx.mod);
    assert_int_equal(softhsm_session(fx.f, LABEL, PIN, CKF_SERIAL_SESSION | CKF_RW_SESSION, &fx.slot, &fx.s), CKR_OK);
    assert_int_equal(ok_random(fx.aes, sizeof fx.aes), OK_OK);
    assert_int_equal(create_aes("kek-aes", 1), CKR_OK);
    assert_int_equal(create_rsa("kek-rsa", 2, 3072, 1), CKR_OK);
    assert_int_equal(create_rsa("rsa-nopub", 3, 2048, 0), CKR_OK);
    fx.ready = 1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (fx.mod) {
        fx.f->C_CloseSession(fx.s);
        ok_p11_module_put(fx.mod);
    }
    if (fx.dir) {
        test_remove_tree(fx.dir);
        free(fx.dir);
    }
    ok_zeroize(fx.aes, sizeof fx.aes);
    return 0;
}

#define NEED_SOFTHSM() SOFTHSM_SKIP_UNLESS(fx.ready)

static ok_provider *open_ok(const char *object)
{
    char uri[1024];
    make_uri(uri, sizeof uri, object, NULL);
    ok_provider *p = NULL;
    ok_err rc = ok_pkcs11_provider_open(uri, &p);
    if (rc != OK_OK)
        fail_msg("open %s: %s", object, ok_err_message());
    return p;
}

static void round_trip(ok_provider *p, const char *want_alg, ok_edk *edk, uint8_t dek[32])
{
    assert_int_equal(ok_random(dek, 32), OK_OK);
    if (ok_provider_wrap(p, dek, 32, edk) != OK_OK)
        fail_msg("wrap: %s", ok_err_message());
    assert_string_equal(edk->provider, "pkcs11");
    assert_string_equal(edk->wrap_alg, want_alg);
    assert_true(ok_provider_matches(p, edk));
    uint8_t back[32];
    if (ok_provider_unwrap(p, edk, back, sizeof back) != OK_OK)
        fail_msg("unwrap: %s", ok_err_message());
    assert_memory_equal(back, dek, 32);
}

static void test_aes_kwp_round_trip_and_openssl_interop(void **state)
{
    (void)state;
    NEED_SOFTHSM();
    ok_provider *p = open_ok("object=kek-aes");
    ok_edk edk = {0};
    uint8_t dek[32];
    round_trip(p, "AES-KWP", &edk, dek);
    assert_string_equal(edk.key_id, "pkcs11:token=" LABEL ";object=kek-aes");
    /* The token's KWP output is RFC 5649: byte-identical to OpenSSL's EVP_aes_256_wrap_pad. */
    uint8_t ct[48];
    size_t ct_len = 0;
    assert_int_equal(ok_aes_kwp_wrap(fx.aes, 32, dek, 32, ct, &ct_len), OK_OK);
    assert_int_equal(edk.ct_len, ct_len);
    assert_memory_equal(edk.ct, ct, ct_len);
    char desc[256];
    assert_int_equal(ok_provider_describe(p, desc, sizeof desc), OK_OK);
    assert_non_null(strstr(desc, "pkcs11 AES"));
    /* Tampered, wrong length, other algorithm, other key. */
    uint8_t back[32];
    edk.ct[3] ^= 1;
    if (ok_provider_unwrap(p, &edk, back, 32) != OK_ERR_AUTH)
        fail_msg("tampered: %s", ok_err_message());
    edk.ct[3] ^= 1;
    assert_int_equal(ok_provider_unwrap(p, &edk, back, 16), OK_ERR_AUTH);
    ok_edk other = {0};
    assert_int_equal(ok_edk_set(&other, "pkcs11", edk.key_id, "", "RSA-OAEP", edk.ct, edk.ct_len), OK_OK);
    assert_int_equal(ok_provider_unwrap(p, &other, back, 32), OK_ERR_AUTH);
    ok_edk_clear(&other);
    assert_int_equal(ok_edk_set(&other, "pkcs11", "pkcs11:token=x;object=y", "", "AES-KWP", edk.ct, edk.ct_len),
                     OK_OK);
    assert_false(ok_provider_matches(p, &other));
    assert_int_equal(ok_provider_unwrap(p, &other, back, 32), OK_ERR_NO_RECIPIENT);
    ok_edk_clear(&other);
    /* The same key by id (and type) is the same recipient only when the key id says so: id-only differs. */
    ok_provider *by_id = open_ok("id=%01;type=secret-key");
    assert_int_equal(ok_provider_wrap(by_id, dek, 32, &other), OK_OK);
    assert_string_equal(other.key_id, "pkcs11:token=" LABEL ";id=%01");
    assert_memory_equal(other.ct, edk.ct, edk.ct_len);
    ok_edk_clear(&other);
    ok_provider_free(by_id);
    ok_edk_clear(&edk);
    ok_provider_free(p);
}

static void test_rsa_oaep_negotiates_sha1_on_softhsm(void **state)
{
    (void)state;
    NEED_SOFTHSM();
    ok_provider *p = open_ok("object=kek-rsa");
    ok_edk edk = {0};
    uint8_t dek[32];
    /* SoftHSM 2.6 refuses SHA-256 OAEP parameters: the provider falls back to SHA-1 and says so. */
    round_trip(p, "RSA-OAEP", &edk, dek);
    assert_int_equal(edk.ct_len, 384);
    ok_edk_clear(&edk);
    round_trip(p, "RSA-OAEP", &edk, dek); /* remembered */
    /* An OAEP-SHA-1 ciphertext made by OpenSSL with the token's public key unwraps in the token. */
    ok_edk_clear(&edk);
    ok_provider *nopub = open_ok("object=rsa-nopub");
    round_trip(nopub, "RSA-OAEP", &edk, dek); /* wrapped in OpenSSL: no public key object on the token */
    assert_int_equal(edk.ct_len, 256);
    /* An RSA-OAEP-256 EDK is refused clearly by a token without SHA-256 OAEP. */
    ok_edk e256 = {0};
    assert_int_equal(ok_edk_set(&e256, "pkcs11", edk.key_id, "", "RSA-OAEP-256", edk.ct, edk.ct_len), OK_OK);
    uint8_t back[32];
    ok_err rc = ok_provider_unwrap(nopub, &e256, back, 32);
    assert_true(rc == OK_ERR_UNSUPPORTED || rc == OK_ERR_AUTH);
    ok_edk_clear(&e256);
    ok_edk_clear(&edk);
    ok_provider_free(nopub);
    ok_provider_free(p);
}

typedef struct {
    ok_provider *p;
    int failures;
} worker_arg;

static void *worker(void *arg)
{
    worker_arg *w = arg;
    for (int i = 0; i < 100; i++) {
        uint8_t dek[32], back[32];
        ok_edk edk = {0};
        if (ok_random(dek, 32) != OK_OK || ok_provider_wrap(w->p, dek, 32, &edk) != OK_OK ||
            ok_provider_unwrap(w->p, &edk, back, 32) != OK_OK || memcmp(dek, back, 32) != 0)
            w->failures++;
        ok_edk_clear(&edk);
    }
    return NULL;
}

static void test_eight_threads_share_the_session_pool(void **state)
{
    (void)state;
    NEED_SOFTHSM();
    ok_provider *p = open_ok("object=kek-aes");
    pthread_t th[8];
    worker_arg args[8];
    for (int i = 0; i < 8; i++) {
        args[i] = (worker_arg){p, 0};
        assert_int_equal(pthread_create(&th[i], NULL, worker, &args[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].failures, 0);
    }
    unsigned long opened = ok_p11_token_sessions_opened(ok_pkcs11_provider_token(p));
    assert_true(opened >= 1 && opened <= OK_P11_POOL_MAX);
    ok_provider_free(p);
}

static void test_wrong_pin_is_forbidden_without_the_pin(void **state)
{
    (void)state;
    NEED_SOFTHSM();
    char bad[600], uri[1200];
    snprintf(bad, sizeof bad, "%s/badpin", fx.dir);
    softhsm_write_file(bad, "98765\n");
    make_uri(uri, sizeof uri, "object=kek-aes", bad);
    ok_provider *p = NULL;
    /* The fixture is logged in: close its login state first so that the provider has to log in. */
    assert_int_equal(fx.f->C_Logout(fx.s), CKR_OK);
    assert_int_equal(ok_pkcs11_provider_open(uri, &p), OK_ERR_FORBIDDEN);
    assert_null(p);
    assert_non_null(strstr(ok_err_message(), "PIN refused"));
    assert_null(strstr(ok_err_message(), "98765"));
    assert_null(strstr(ok_err_message(), PIN));
    snprintf(uri, sizeof uri, "pkcs11:token=" LABEL ";object=kek-aes?module-path=" SOFTHSM_MODULE "&pin-value=98765");
    assert_int_equal(ok_pkcs11_provider_open(uri, &p), OK_ERR_FORBIDDEN);
    assert_null(strstr(ok_err_message(), "98765"));
    assert_int_equal(fx.f->C_Login(fx.s, CKU_USER, (CK_UTF8CHAR *)PIN, 4), CKR_OK);
    unlink(bad);
}

static void test_missing_key_and_token_are_clear(void **state)
{
    (void)state;
    NEED_SOFTHSM();
    char uri[1200];
    ok_provider *p = NULL;
    make_uri(uri, sizeof uri, "object=no-such-key", NULL);
    assert_int_equal(ok_pkcs11_provider_open(uri, &p), OK_ERR_NOT_FOUND);
    assert_non_null(strstr(ok_err_message(), "no-such-key"));
    make_uri(uri, sizeof uri, "id=%7f", NULL);
    assert_int_equal(ok_pkcs11_provider_open(uri, &p), OK_ERR_NOT_FOUND);
    snprintf(uri, sizeof uri, "pkcs11:token=other;object=kek-aes?module-path=" SOFTHSM_MODULE "&pin-source=file:%s",
             fx.pin_file);
    assert_int_equal(ok_pkcs11_provider_open(uri, &p), OK_ERR_IO);
    assert_non_null(strstr(ok_err_message(), "token not present"));
    snprintf(uri, sizeof uri, "pkcs11:token=" LABEL ";object=kek-aes?module-path=/nonexistent/lib.so");
    assert_int_equal(ok_pkcs11_provider_open(uri, &p), OK_ERR_IO);
    assert_int_equal(ok_pkcs11_provider_open("pkcs11:object=kek-aes?module-path=" SOFTHSM_MODULE, &p),
                     OK_ERR_INVALID_ARG);
    assert_int_equal(ok_pkcs11_provider_open("pkcs11:token=" LABEL "?module-path=" SOFTHSM_MODULE, &p),
                     OK_ERR_INVALID_ARG);
    assert_null(p);
    /* The CLI's reference resolver knows the scheme. */
    make_uri(uri, sizeof uri, "object=kek-aes", NULL);
    assert_int_equal(ok_provider_from_ref(uri, &p), OK_OK);
    ok_provider_free(p);
}

/* A key deleted from the token while the provider holds its handle: NOT_FOUND, not a crash or a hang. */
static void test_key_deleted_then_recreated(void **state)
{
    (void)state;
    NEED_SOFTHSM();
    assert_int_equal(create_aes("kek-tmp", 9), CKR_OK);
    ok_provider *p = open_ok("object=kek-tmp");
    ok_edk edk = {0};
    uint8_t dek[32], back[32];
    round_trip(p, "AES-KWP", &edk, dek);
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_LABEL, "kek-tmp", 7}};
    CK_OBJECT_HANDLE h;
    CK_ULONG n = 0;
    assert_int_equal(fx.f->C_FindObjectsInit(fx.s, t, 2), CKR_OK);
    assert_int_equal(fx.f->C_FindObjects(fx.s, &h, 1, &n), CKR_OK);
    fx.f->C_FindObjectsFinal(fx.s);
    assert_int_equal(n, 1);
    assert_int_equal(fx.f->C_DestroyObject(fx.s, h), CKR_OK);
    if (ok_provider_unwrap(p, &edk, back, 32) != OK_ERR_NOT_FOUND)
        fail_msg("deleted key: %s", ok_err_message());
    /* The key is back (same value): the next call finds it again by itself. */
    assert_int_equal(create_aes("kek-tmp", 9), CKR_OK);
    if (ok_provider_unwrap(p, &edk, back, 32) != OK_OK)
        fail_msg("after re-creating the key: %s", ok_err_message());
    assert_memory_equal(back, dek, 32);
    ok_edk_clear(&edk);
    ok_provider_free(p);
}

/* The token's PIN changes under a running provider: the provider's next call after a logout gets
 * "PIN refused"; once the PIN file holds the new PIN, the next call succeeds again by itself. */
static void test_pin_changed_then_fixed(void **state)
{
    (void)state;
    NEED_SOFTHSM();
    ok_provider *p = open_ok("object=kek-aes");
    ok_edk edk = {0};
    uint8_t dek[32], back[32];
    round_trip(p, "AES-KWP", &edk, dek);
    assert_int_equal(fx.f->C_SetPIN(fx.s, (CK_UTF8CHAR *)PIN, 4, (CK_UTF8CHAR *)"5678", 4), CKR_OK);
    assert_int_equal(fx.f->C_Logout(fx.s), CKR_OK);
    if (ok_provider_unwrap(p, &edk, back, 32) != OK_ERR_FORBIDDEN)
        fail_msg("PIN changed: %s", ok_err_message());
    assert_non_null(strstr(ok_err_message(), "PIN refused"));
    assert_null(strstr(ok_err_message(), "5678"));
    assert_int_equal(ok_provider_wrap(p, dek, 32, &edk), OK_ERR_FORBIDDEN); /* still refused, still no crash */
    softhsm_write_file(fx.pin_file, "5678\n");
    if (ok_provider_unwrap(p, &edk, back, 32) != OK_OK)
        fail_msg("after fixing the PIN file: %s", ok_err_message());
    assert_memory_equal(back, dek, 32);
    /* Put the PIN back for the other tests. */
    assert_int_equal(fx.f->C_SetPIN(fx.s, (CK_UTF8CHAR *)"5678", 4, (CK_UTF8CHAR *)PIN, 4), CKR_OK);
    softhsm_write_file(fx.pin_file, PIN "\n");
    assert_int_equal(fx.f->C_Login(fx.s, CKU_USER, (CK_UTF8CHAR *)PIN, 4), CKR_USER_ALREADY_LOGGED_IN);
    ok_edk_clear(&edk);
    ok_provider_free(p);
}

static void test_token_removed_then_back(void **state)
{
    (void)state;
    NEED_SOFTHSM();
    ok_provider *p = open_ok("object=kek-aes");
    ok_edk edk = {0};
    uint8_t dek[32], back[32];
    round_trip(p, "AES-KWP", &edk, dek);
    char dir[1024], away[1024];
    softhsm_token_dir(fx.tokens, dir, sizeof dir);
    snprintf(away, sizeof away, "%s/away", fx.dir);
    assert_int_equal(rename(dir, away), 0);
    /* Gone: a clear "token not present", for unwrap and for wrap, however often it is asked. */
    for (int i = 0; i < 3; i++) {
        if (ok_provider_unwrap(p, &edk, back, 32) != OK_ERR_IO)
            fail_msg("removed token, unwrap: %s", ok_err_message());
        assert_non_null(strstr(ok_err_message(), "token not present"));
        ok_edk w = {0};
        assert_int_equal(ok_provider_wrap(p, dek, 32, &w), OK_ERR_IO);
        assert_non_null(strstr(ok_err_message(), "token not present"));
    }
    /* Back (SoftHSM finds it again when the module is re-initialized, at most once a second). */
    assert_int_equal(rename(away, dir), 0);
    usleep(1100 * 1000);
    if (ok_provider_unwrap(p, &edk, back, 32) != OK_OK)
        fail_msg("token back, unwrap: %s", ok_err_message());
    assert_memory_equal(back, dek, 32);
    ok_edk_clear(&edk);
    round_trip(p, "AES-KWP", &edk, dek);
    /* The module re-initialization ended the fixture's own session: open a new one. */
    assert_true(softhsm_find_slot(fx.f, LABEL, &fx.slot));
    assert_int_equal(fx.f->C_OpenSession(fx.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &fx.s), CKR_OK);
    ok_edk_clear(&edk);
    ok_provider_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aes_kwp_round_trip_and_openssl_interop),
        cmocka_unit_test(test_rsa_oaep_negotiates_sha1_on_softhsm),
        cmocka_unit_test(test_eight_threads_share_the_session_pool),
        cmocka_unit_test(test_wrong_pin_is_forbidden_without_the_pin),
        cmocka_unit_test(test_missing_key_and_token_are_clear),
        cmocka_unit_test(test_key_deleted_then_recreated),
        cmocka_unit_test(test_pin_changed_then_fixed),
        cmocka_unit_test(test_token_removed_then_back),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
