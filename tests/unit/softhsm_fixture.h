/* A fixture shared by the tests that run against SoftHSM2 (test_pkcs11_provider, test_vault_seal_pkcs11,
 * test_vault_hsm, test_vault_byok_hsm, test_ds_hyok). It owns the token's setup and the test's own access to
 * it: whether SoftHSM2 is installed, a token made in a temporary directory (a softhsm2.conf, SOFTHSM2_CONF,
 * a PIN file, `softhsm2-util --init-token`), the token's slot found by label, a session opened and logged
 * in, AES and RSA keys made through the C API, the token's directory (to move it away), the "ownkey:"
 * objects a vault left in the token (checked non-extractable), and a dev vault with the token attached.
 * Each test keeps its own label, PIN, keys and state. Header-only (static inline) so that only the tests
 * that use SoftHSM2 include it. */
#ifndef OWNKEY_TEST_SOFTHSM_FIXTURE_H
#define OWNKEY_TEST_SOFTHSM_FIXTURE_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ownkey/vault.h"
#include "providers/pkcs11_hsm.h"
#include "providers/pkcs11_internal.h"
#include "test_support.h"

#define SOFTHSM_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define SOFTHSM_SO_PIN "87654321"

/* Flags of softhsm_gen_aes / softhsm_gen_rsa. */
#define SOFTHSM_NOT_EXTRACTABLE 1 /* the secret or private key gets CKA_EXTRACTABLE false */
#define SOFTHSM_NO_PUBLIC 2       /* the RSA public key is a session object, destroyed once made */

/* Skips the current test unless `ready` (the group setup found SoftHSM2 and made the token). */
#define SOFTHSM_SKIP_UNLESS(ready)                                                                                 \
    do {                                                                                                          \
        if (!(ready))                                                                                             \
            skip();                                                                                               \
    } while (0)

static inline void softhsm_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* The module and softhsm2-util are installed (without them, every SoftHSM2 test skips). */
static inline int softhsm_available(void)
{
    return access(SOFTHSM_MODULE, R_OK) == 0 && system("command -v softhsm2-util >/dev/null 2>&1") == 0;
}

/* A token labelled `label` with user PIN `pin`, in `dir`/tokens (configured by `dir`/softhsm2.conf, which
 * SOFTHSM2_CONF then names) and `pin` in the PIN file `dir`/pin. Fills tokens and pin_file (each at least
 * 512 bytes) with those paths. */
static inline void softhsm_token_init(const char *dir, const char *label, const char *pin, char tokens[512],
                                      char pin_file[512])
{
    char conf[600], text[1200];
    snprintf(tokens, 512, "%s/tokens", dir);
    snprintf(pin_file, 512, "%s/pin", dir);
    snprintf(conf, sizeof conf, "%s/softhsm2.conf", dir);
    snprintf(text, sizeof text, "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n"
                                "slots.removable = false\n", tokens);
    softhsm_write_file(conf, text);
    snprintf(text, sizeof text, "%s\n", pin);
    softhsm_write_file(pin_file, text);
    assert_int_equal(mkdir(tokens, 0700), 0);
    setenv("SOFTHSM2_CONF", conf, 1);
    snprintf(text, sizeof text, "softhsm2-util --init-token --free --label %s --so-pin " SOFTHSM_SO_PIN
             " --pin %s >/dev/null", label, pin);
    assert_int_equal(system(text), 0);
}

/* The slot whose token is labelled `label` (the label is space-padded on the token). */
static inline int softhsm_find_slot(CK_FUNCTION_LIST *f, const char *label, CK_SLOT_ID *slot)
{
    CK_SLOT_ID slots[16];
    CK_ULONG n = 16;
    size_t len = strlen(label);
    if (f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
        return 0;
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO info;
        if (f->C_GetTokenInfo(slots[i], &info) == CKR_OK && memcmp(info.label, label, len) == 0 &&
            info.label[len] == ' ') {
            *slot = slots[i];
            return 1;
        }
    }
    return 0;
}

/* A session (flags: CKF_SERIAL_SESSION, maybe | CKF_RW_SESSION) on the token labelled `label`, its slot in
 * *slot; returns C_Login's result for the caller to check (each test accepts what it accepted before). */
static inline CK_RV softhsm_session(CK_FUNCTION_LIST *f, const char *label, const char *pin, CK_FLAGS flags,
                                    CK_SLOT_ID *slot, CK_SESSION_HANDLE *s)
{
    assert_true(softhsm_find_slot(f, label, slot));
    assert_int_equal(f->C_OpenSession(*slot, flags, NULL, NULL, s), CKR_OK);
    return f->C_Login(*s, CKU_USER, (CK_UTF8CHAR *)pin, strlen(pin));
}

/* An AES-256 token key made by the token (C_GenerateKey): private, sensitive, wrap/unwrap; with CKA_ID
 * *id unless id is NULL; flags: SOFTHSM_NOT_EXTRACTABLE. */
static inline CK_RV softhsm_gen_aes(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, const char *label,
                                    const unsigned char *id, int flags)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_AES;
    CK_ULONG len = 32;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_MECHANISM m = {CKM_AES_KEY_GEN, NULL, 0};
    CK_ATTRIBUTE t[11] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_KEY_TYPE, &kt, sizeof kt}, {CKA_TOKEN, &yes, 1},
                          {CKA_PRIVATE, &yes, 1},        {CKA_SENSITIVE, &yes, 1},      {CKA_WRAP, &yes, 1},
                          {CKA_UNWRAP, &yes, 1},         {CKA_VALUE_LEN, &len, sizeof len},
                          {CKA_LABEL, (void *)label, strlen(label)}};
    CK_ULONG n = 9;
    if (flags & SOFTHSM_NOT_EXTRACTABLE)
        t[n++] = (CK_ATTRIBUTE){CKA_EXTRACTABLE, &no, 1};
    if (id != NULL)
        t[n++] = (CK_ATTRIBUTE){CKA_ID, (void *)id, 1};
    CK_OBJECT_HANDLE h;
    return f->C_GenerateKey(s, &m, t, n, &h);
}

/* An RSA key pair (public exponent 65537) made by the token: the public key wraps/encrypts, the private key
 * is a private, sensitive token object that unwraps/decrypts; both with CKA_ID *id unless id is NULL; flags:
 * SOFTHSM_NOT_EXTRACTABLE, SOFTHSM_NO_PUBLIC. */
static inline CK_RV softhsm_gen_rsa(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, const char *label,
                                    const unsigned char *id, CK_ULONG bits, int flags)
{
    CK_MECHANISM m = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE, pub_token = (flags & SOFTHSM_NO_PUBLIC) ? CK_FALSE : CK_TRUE;
    CK_BYTE e[] = {1, 0, 1};
    CK_ATTRIBUTE pub[7] = {{CKA_TOKEN, &pub_token, 1},     {CKA_WRAP, &yes, 1}, {CKA_ENCRYPT, &yes, 1},
                           {CKA_MODULUS_BITS, &bits, sizeof bits}, {CKA_PUBLIC_EXPONENT, e, sizeof e},
                           {CKA_LABEL, (void *)label, strlen(label)}};
    CK_ATTRIBUTE priv[8] = {{CKA_TOKEN, &yes, 1},  {CKA_PRIVATE, &yes, 1}, {CKA_SENSITIVE, &yes, 1},
                            {CKA_UNWRAP, &yes, 1}, {CKA_DECRYPT, &yes, 1},
                            {CKA_LABEL, (void *)label, strlen(label)}};
    CK_ULONG npub = 6, npriv = 6;
    if (flags & SOFTHSM_NOT_EXTRACTABLE)
        priv[npriv++] = (CK_ATTRIBUTE){CKA_EXTRACTABLE, &no, 1};
    if (id != NULL) {
        pub[npub++] = (CK_ATTRIBUTE){CKA_ID, (void *)id, 1};
        priv[npriv++] = (CK_ATTRIBUTE){CKA_ID, (void *)id, 1};
    }
    CK_OBJECT_HANDLE hpub, hpriv;
    CK_RV rv = f->C_GenerateKeyPair(s, &m, pub, npub, priv, npriv, &hpub, &hpriv);
    if (rv == CKR_OK && (flags & SOFTHSM_NO_PUBLIC))
        rv = f->C_DestroyObject(s, hpub);
    return rv;
}

/* The token's directory under `tokens` (moved out of SoftHSM's token dir, SoftHSM reports the token gone). */
static inline void softhsm_token_dir(const char *tokens, char *buf, size_t len)
{
    DIR *d = opendir(tokens);
    assert_non_null(d);
    struct dirent *e;
    buf[0] = 0;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            if ((size_t)snprintf(buf, len, "%s/%s", tokens, e->d_name) >= len)
                buf[0] = 0;
    closedir(d);
    assert_true(buf[0] != 0);
}

/* The vault tests' HSM: a token in a temporary directory and the pkcs11 URI (pin-source file) to attach it. */
typedef struct {
    int ready; /* SoftHSM2 is installed and the token made */
    char *dir;
    char uri[1024];
    int n; /* vaults made so far */
} softhsm_hsm_fixture;

static inline void softhsm_hsm_setup(softhsm_hsm_fixture *fx, const char *label, const char *pin)
{
    if (!softhsm_available())
        return; /* not installed: every test skips */
    fx->dir = test_make_tmpdir();
    assert_non_null(fx->dir);
    char tokens[512], pin_file[512];
    softhsm_token_init(fx->dir, label, pin, tokens, pin_file);
    snprintf(fx->uri, sizeof fx->uri, "pkcs11:token=%s?module-path=" SOFTHSM_MODULE "&pin-source=file:%s", label,
             pin_file);
    fx->ready = 1;
}

static inline void softhsm_hsm_teardown(softhsm_hsm_fixture *fx)
{
    if (fx->dir) {
        test_remove_tree(fx->dir);
        free(fx->dir);
        fx->dir = NULL;
    }
}

/* A new dev vault in `root`/vault<++*n>, opened; with the HSM at `uri` attached if with_hsm. */
static inline ok_vault *softhsm_new_vault(const char *root, int *n, const char *uri, int with_hsm)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/vault%d", root, ++*n);
    ok_vault_init_params p = {.kind = OK_SEAL_DEV};
    ok_vault_init_result res = {0};
    assert_int_equal(ok_vault_init(dir, &p, &res), OK_OK);
    ok_vault_init_result_clear(&res);
    ok_vault *v = NULL;
    assert_int_equal(ok_vault_open(dir, &v), OK_OK);
    if (with_hsm) {
        ok_vault_hsm *h = NULL;
        if (ok_pkcs11_hsm_open(uri, &h) != OK_OK)
            fail_msg("hsm open: %s", ok_err_message());
        assert_int_equal(ok_vault_attach_hsm(v, h), OK_OK);
    }
    return v;
}

/* The number of objects in the token labelled `label` whose label is "ownkey:name/version" (with version
 * NULL: starts with "ownkey:name/"); each private/secret one must be non-extractable, sensitive and its
 * CKA_VALUE (or CKA_PRIVATE_EXPONENT) unreadable. */
static inline int softhsm_token_objects(const char *label, const char *pin, const char *name, const char *version)
{
    ok_p11_module *mod = NULL;
    assert_int_equal(ok_p11_module_get(SOFTHSM_MODULE, &mod), OK_OK);
    CK_FUNCTION_LIST *f = ok_p11_module_functions(mod);
    CK_SLOT_ID slot = 0;
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_RV lr = softhsm_session(f, label, pin, CKF_SERIAL_SESSION, &slot, &s);
    assert_true(lr == CKR_OK || lr == CKR_USER_ALREADY_LOGGED_IN);
    char want[256], got[256];
    snprintf(want, sizeof want, "ownkey:%s/%s", name, version ? version : "");
    CK_ATTRIBUTE t[] = {{CKA_LABEL, want, strlen(want)}};
    CK_OBJECT_HANDLE all[64], found[64];
    CK_ULONG n = 0, m = 0;
    assert_int_equal(f->C_FindObjectsInit(s, t, version ? 1 : 0), CKR_OK);
    assert_int_equal(f->C_FindObjects(s, all, 64, &m), CKR_OK);
    f->C_FindObjectsFinal(s);
    for (CK_ULONG i = 0; i < m; i++) {
        CK_ATTRIBUTE la = {CKA_LABEL, got, sizeof got - 1};
        if (f->C_GetAttributeValue(s, all[i], &la, 1) == CKR_OK && la.ulValueLen >= strlen(want) &&
            memcmp(got, want, strlen(want)) == 0)
            found[n++] = all[i];
    }
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

#endif
