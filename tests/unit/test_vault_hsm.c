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

#include "ownkey/vault.h"
#include "providers/pkcs11_hsm.h"
#include "providers/pkcs11_internal.h"
#include "test_support.h"

#define MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define LABEL "ok-hsmkeys"
#define PIN "4711"

static struct {
    int ready;
    char *dir;
    char uri[1024];
    int n;
} fx;

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int group_setup(void **state)
{
    (void)state;
    if (access(MODULE, R_OK) != 0 || system("command -v softhsm2-util >/dev/null 2>&1") != 0)
        return 0;
    fx.dir = test_make_tmpdir();
    char conf[512], tokens[512], pin[512], text[1024];
    snprintf(tokens, sizeof tokens, "%s/tokens", fx.dir);
    snprintf(conf, sizeof conf, "%s/softhsm2.conf", fx.dir);
    snprintf(pin, sizeof pin, "%s/pin", fx.dir);
    snprintf(text, sizeof text, "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n", tokens);
    write_file(conf, text);
    write_file(pin, PIN "\n");
    assert_int_equal(mkdir(tokens, 0700), 0);
    setenv("SOFTHSM2_CONF", conf, 1);
    assert_int_equal(system("softhsm2-util --init-token --free --label " LABEL " --so-pin 87654321 --pin " PIN
                            " >/dev/null"), 0);
    snprintf(fx.uri, sizeof fx.uri, "pkcs11:token=" LABEL "?module-path=" MODULE "&pin-source=file:%s", pin);
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

static ok_vault *new_vault(int with_hsm)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/vault%d", fx.dir, ++fx.n);
    ok_vault_init_params p = {.kind = OK_SEAL_DEV};
    ok_vault_init_result res = {0};
    assert_int_equal(ok_vault_init(dir, &p, &res), OK_OK);
    ok_vault_init_result_clear(&res);
    ok_vault *v = NULL;
    assert_int_equal(ok_vault_open(dir, &v), OK_OK);
    if (with_hsm) {
        ok_vault_hsm *h = NULL;
        if (ok_pkcs11_hsm_open(fx.uri, &h) != OK_OK)
            fail_msg("hsm open: %s", ok_err_message());
        assert_int_equal(ok_vault_attach_hsm(v, h), OK_OK);
    }
    return v;
}

/* Objects labelled "ownkey:name/version" in the token; each private/secret one must be non-extractable,
 * sensitive and its CKA_VALUE unreadable. */
static int token_objects(const char *name, const char *version)
{
    ok_p11_module *mod = NULL;
    assert_int_equal(ok_p11_module_get(MODULE, &mod), OK_OK);
    CK_FUNCTION_LIST *f = ok_p11_module_functions(mod);
    CK_SLOT_ID slots[16];
    CK_ULONG ns = 16;
    assert_int_equal(f->C_GetSlotList(CK_TRUE, slots, &ns), CKR_OK);
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    for (CK_ULONG i = 0; i < ns; i++) {
        CK_TOKEN_INFO ti;
        if (f->C_GetTokenInfo(slots[i], &ti) == CKR_OK && memcmp(ti.label, LABEL " ", strlen(LABEL) + 1) == 0)
            assert_int_equal(f->C_OpenSession(slots[i], CKF_SERIAL_SESSION, NULL, NULL, &s), CKR_OK);
    }
    CK_RV lr = f->C_Login(s, CKU_USER, (CK_UTF8CHAR *)PIN, strlen(PIN));
    assert_true(lr == CKR_OK || lr == CKR_USER_ALREADY_LOGGED_IN);
    char label[256];
    snprintf(label, sizeof label, "ownkey:%s/%s", name, version);
    CK_ATTRIBUTE t[] = {{CKA_LABEL, label, strlen(label)}};
    CK_OBJECT_HANDLE found[8];
    CK_ULONG n = 0;
    assert_int_equal(f->C_FindObjectsInit(s, t, 1), CKR_OK);
    assert_int_equal(f->C_FindObjects(s, found, 8, &n), CKR_OK);
    f->C_FindObjectsFinal(s);
    for (CK_ULONG i = 0; i < n; i++) {
        CK_OBJECT_CLASS cls = 0;
        CK_ATTRIBUTE a = {CKA_CLASS, &cls, sizeof cls};
        assert_int_equal(f->C_GetAttributeValue(s, found[i], &a, 1), CKR_OK);
        if (cls == CKO_PUBLIC_KEY)
            continue;
        CK_BBOOL ext = CK_TRUE, sens = CK_FALSE, tok = CK_FALSE;
        CK_ATTRIBUTE b[] = {{CKA_EXTRACTABLE, &ext, 1}, {CKA_SENSITIVE, &sens, 1}, {CKA_TOKEN, &tok, 1}};
        assert_int_equal(f->C_GetAttributeValue(s, found[i], b, 3), CKR_OK);
        assert_false(ext);
        assert_true(sens);
        assert_true(tok);
        uint8_t value[1024];
        CK_ATTRIBUTE val = {CKA_VALUE, value, sizeof value};
        CK_ATTRIBUTE pe = {CKA_PRIVATE_EXPONENT, value, sizeof value};
        CK_RV r1 = f->C_GetAttributeValue(s, found[i], &val, 1), r2 = f->C_GetAttributeValue(s, found[i], &pe, 1);
        assert_true(r1 == CKR_ATTRIBUTE_SENSITIVE || r2 == CKR_ATTRIBUTE_SENSITIVE);
        assert_int_not_equal(r1, CKR_OK);
        assert_int_not_equal(r2, CKR_OK);
    }
    f->C_CloseSession(s);
    ok_p11_module_put(mod);
    return (int)n;
}

#define NEED_SOFTHSM()                                                                                             \
    do {                                                                                                          \
        if (!fx.ready)                                                                                            \
            skip();                                                                                               \
    } while (0)

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
