/* Wycheproof vector runner for the crypto layer (tests/vectors/wycheproof, see its README.md).
 *
 * Rules, per case: "valid" must succeed with exactly the expected output; "invalid" must be rejected
 * (for AEAD and key wrap the forward direction may run, but must then not reproduce ct/tag); an
 * "acceptable" case passes either way as long as a success gives the expected output, and is counted
 * apart, by flag. Skips are explicit rules with a reason and are counted. Policy assertions (things
 * ownkey refuses on purpose) are checked separately from the pass/fail rule. One cmocka test per
 * file; a file fails if any case fails. */
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

/* ---- tallies -------------------------------------------------------------------------------------- */

#define MAX_REASONS 8

typedef struct {
    const char *file;
    unsigned passed, failed, skipped, acceptable;
    struct {
        const char *reason;
        unsigned count;
    } skips[MAX_REASONS];
    struct {
        char flag[64];
        unsigned accepted, rejected;
    } acc[MAX_REASONS];
    size_t nskips, nacc;
    unsigned policy_checks, key_checks, rsa_private_jwks;
} tally;

static void skip_case(tally *t, const char *reason)
{
    size_t i;

    t->skipped++;
    for (i = 0; i < t->nskips; i++) {
        if (strcmp(t->skips[i].reason, reason) == 0)
            break;
    }
    if (i == t->nskips) {
        assert_true(t->nskips < MAX_REASONS);
        t->skips[t->nskips++].reason = reason;
    }
    t->skips[i].count++;
}

static void count_acceptable(tally *t, const char *flag, int accepted)
{
    size_t i;

    for (i = 0; i < t->nacc; i++) {
        if (strcmp(t->acc[i].flag, flag) == 0)
            break;
    }
    if (i == t->nacc) {
        assert_true(t->nacc < MAX_REASONS);
        snprintf(t->acc[t->nacc++].flag, sizeof t->acc[0].flag, "%s", flag);
    }
    if (accepted)
        t->acc[i].accepted++;
    else
        t->acc[i].rejected++;
}

/* accepted: the case's input was taken (decrypted, unwrapped, verified, derived) by some direction;
 * matches: every output produced equals the expected one. */
static void judge(tally *t, json_t *tc, int accepted, int matches)
{
    const char *result = json_string_value(json_object_get(tc, "result"));
    int pass;

    assert_non_null(result);
    if (strcmp(result, "valid") == 0) {
        pass = accepted && matches;
    } else if (strcmp(result, "invalid") == 0) {
        pass = !accepted;
    } else {
        assert_string_equal(result, "acceptable");
        pass = !accepted || matches;
        if (pass) {
            json_t *flags = json_object_get(tc, "flags"), *flag;
            size_t i;
            t->acceptable++;
            json_array_foreach(flags, i, flag) count_acceptable(t, json_string_value(flag), accepted);
            if (json_array_size(flags) == 0)
                count_acceptable(t, "(no flag)", accepted);
            return;
        }
    }
    if (pass) {
        t->passed++;
        return;
    }
    t->failed++;
    printf("  FAIL %s tcId %lld (%s, %s): %s [%s]\n", t->file,
           (long long)json_integer_value(json_object_get(tc, "tcId")), result,
           accepted ? "accepted" : "rejected", json_string_value(json_object_get(tc, "comment")),
           ok_err_message());
}

static void report(const tally *t)
{
    printf("%s: %u passed, %u failed, %u skipped", t->file, t->passed, t->failed, t->skipped);
    for (size_t i = 0; i < t->nskips; i++)
        printf("%s%s: %u", i == 0 ? " (" : "; ", t->skips[i].reason, t->skips[i].count);
    printf("%s, %u acceptable", t->nskips ? ")" : "", t->acceptable);
    for (size_t i = 0; i < t->nacc; i++)
        printf("%s%s: %u accepted, %u rejected", i == 0 ? " (" : "; ", t->acc[i].flag, t->acc[i].accepted,
               t->acc[i].rejected);
    printf("%s\n", t->nacc ? ")" : "");
    if (t->policy_checks || t->key_checks)
        printf("  + %u policy assertions, %u key cross-checks\n", t->policy_checks, t->key_checks);
}

/* ---- per-case byte strings -------------------------------------------------------------------------- */

#define ARENA_SIZE 16

typedef struct {
    void *p[ARENA_SIZE];
    size_t n;
} arena;

static void arena_free(arena *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->p[i]);
    a->n = 0;
}

static void *arena_keep(arena *a, void *p)
{
    assert_non_null(p);
    assert_true(a->n < ARENA_SIZE);
    a->p[a->n++] = p;
    return p;
}

static void *arena_alloc(arena *a, size_t n)
{
    return arena_keep(a, calloc(1, n ? n : 1));
}

/* Hex member name of obj, decoded (the buffer lives until arena_free). */
static uint8_t *hexm(arena *a, json_t *obj, const char *name, size_t *len)
{
    const char *s = json_string_value(json_object_get(obj, name));
    uint8_t *p = NULL;
    size_t n = 0;

    if (s == NULL)
        fail_msg("missing hex member %s", name);
    assert_int_equal(ok_hex_decode(s, &p, &n), OK_OK);
    if (len)
        *len = n;
    return arena_keep(a, p);
}

static int eq(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len)
{
    return a_len == b_len && (a_len == 0 || memcmp(a, b, a_len) == 0);
}

static long long intm(json_t *obj, const char *name)
{
    json_t *v = json_object_get(obj, name);
    if (!json_is_integer(v))
        fail_msg("missing integer member %s", name);
    return json_integer_value(v);
}

static const char *strm(json_t *obj, const char *name)
{
    const char *s = json_string_value(json_object_get(obj, name));
    if (s == NULL)
        fail_msg("missing string member %s", name);
    return s;
}

static int hash_of(const char *name, ok_hash *h)
{
    static const struct {
        const char *name;
        ok_hash hash;
    } map[] = {{"SHA-1", OK_HASH_SHA1},     {"SHA-224", OK_HASH_SHA224}, {"SHA-256", OK_HASH_SHA256},
               {"SHA-384", OK_HASH_SHA384}, {"SHA-512", OK_HASH_SHA512}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (strcmp(map[i].name, name) == 0) {
            *h = map[i].hash;
            return 1;
        }
    }
    return 0;
}

/* ---- files --------------------------------------------------------------------------------------- */

typedef void (*group_runner)(tally *t, json_t *group);

typedef struct {
    const char *file;
    const char *schema;
    const char *group_type;
    group_runner run;
} vector_file;

static void run_file(void **state)
{
    const vector_file *vf = *state;
    tally t = {.file = vf->file};
    char path[512];
    json_error_t err;
    json_t *root, *groups, *group;
    size_t i, total = 0;

    snprintf(path, sizeof path, "wycheproof/%s", vf->file);
    root = json_load_file(test_vector_path(path), JSON_REJECT_DUPLICATES, &err);
    if (root == NULL)
        fail_msg("%s: %s (line %d)", test_vector_path(path), err.text, err.line);
    assert_string_equal(strm(root, "schema"), vf->schema);
    groups = json_object_get(root, "testGroups");
    assert_true(json_is_array(groups));
    json_array_foreach(groups, i, group) {
        assert_string_equal(strm(group, "type"), vf->group_type);
        total += json_array_size(json_object_get(group, "tests"));
        vf->run(&t, group);
    }
    assert_int_equal(total, intm(root, "numberOfTests"));
    assert_int_equal(t.passed + t.failed + t.skipped + t.acceptable, total);
    report(&t);
    json_decref(root);
    assert_int_equal(t.failed, 0);
}

#define FOREACH_TEST(group, idx, tc) json_array_foreach(json_object_get((group), "tests"), (idx), (tc))

/* ---- AES-GCM ------------------------------------------------------------------------------------- */

static void gcm_group(tally *t, json_t *g)
{
    long long iv_bits = intm(g, "ivSize");
    size_t idx;
    json_t *tc;

    assert_int_equal(intm(g, "tagSize"), 128);
    FOREACH_TEST(g, idx, tc) {
        arena a = {0};
        size_t key_len, iv_len, aad_len, msg_len, ct_len, tag_len;
        uint8_t *key = hexm(&a, tc, "key", &key_len), *iv = hexm(&a, tc, "iv", &iv_len);
        uint8_t *aad = hexm(&a, tc, "aad", &aad_len), *msg = hexm(&a, tc, "msg", &msg_len);
        uint8_t *ct = hexm(&a, tc, "ct", &ct_len), *tag = hexm(&a, tc, "tag", &tag_len);
        uint8_t *out = arena_alloc(&a, ct_len > msg_len ? ct_len : msg_len), otag[OK_GCM_TAG_LEN];
        assert_int_equal(tag_len, OK_GCM_TAG_LEN);

        if (iv_bits > 1024) {
            /* OpenSSL 3.0's GCM keeps at most 128 IV bytes; ownkey refuses longer IVs cleanly. */
            assert_int_equal(ok_aes_gcm_encrypt(key, key_len, iv, iv_len, aad, aad_len, msg, msg_len, out, otag),
                             OK_ERR_UNSUPPORTED);
            skip_case(t, "ivSize > 1024 bits, unsupported by OpenSSL 3.0 (refusal checked)");
            arena_free(&a);
            continue;
        }
        int enc_ok = ok_aes_gcm_encrypt(key, key_len, iv, iv_len, aad, aad_len, msg, msg_len, out, otag) == OK_OK;
        int enc_match = enc_ok && eq(out, msg_len, ct, ct_len) && eq(otag, 16, tag, 16);
        memset(out, 0xAA, ct_len);
        ok_err drc = ok_aes_gcm_decrypt(key, key_len, iv, iv_len, aad, aad_len, ct, ct_len, tag, out);
        int dec_ok = drc == OK_OK;
        int dec_match = dec_ok && eq(out, ct_len, msg, msg_len);
        if (drc == OK_ERR_AUTH) { /* a failed tag check leaves no plaintext behind */
            for (size_t i = 0; i < ct_len; i++)
                assert_int_equal(out[i], 0);
        }
        if (strcmp(strm(tc, "result"), "invalid") == 0)
            judge(t, tc, dec_ok || enc_match, 0);
        else
            judge(t, tc, enc_ok && dec_ok, enc_match && dec_match);
        arena_free(&a);
    }
}

/* ---- AES-KW / AES-KWP ----------------------------------------------------------------------------- */

typedef ok_err (*wrap_fn)(const uint8_t *, size_t, const uint8_t *, size_t, uint8_t *, size_t *);

static void wrap_cases(tally *t, json_t *g, wrap_fn wrap, wrap_fn unwrap)
{
    size_t idx;
    json_t *tc;

    FOREACH_TEST(g, idx, tc) {
        arena a = {0};
        size_t key_len, msg_len, ct_len, n = 0;
        uint8_t *key = hexm(&a, tc, "key", &key_len), *msg = hexm(&a, tc, "msg", &msg_len);
        uint8_t *ct = hexm(&a, tc, "ct", &ct_len);
        uint8_t *out = arena_alloc(&a, (msg_len > ct_len ? msg_len : ct_len) + 16);

        int wrap_ok = wrap(key, key_len, msg, msg_len, out, &n) == OK_OK;
        int wrap_match = wrap_ok && eq(out, n, ct, ct_len);
        int unwrap_ok = unwrap(key, key_len, ct, ct_len, out, &n) == OK_OK;
        int unwrap_match = unwrap_ok && eq(out, n, msg, msg_len);
        const char *result = strm(tc, "result");
        if (strcmp(result, "invalid") == 0)
            judge(t, tc, unwrap_ok || wrap_match, 0);
        else if (strcmp(result, "valid") == 0)
            judge(t, tc, wrap_ok && unwrap_ok, wrap_match && unwrap_match);
        else /* acceptable: whichever direction succeeds must be exact */
            judge(t, tc, wrap_ok || unwrap_ok, (!wrap_ok || wrap_match) && (!unwrap_ok || unwrap_match));
        arena_free(&a);
    }
}

static void kw_group(tally *t, json_t *g)
{
    wrap_cases(t, g, ok_aes_kw_wrap, ok_aes_kw_unwrap);
}

static void kwp_group(tally *t, json_t *g)
{
    wrap_cases(t, g, ok_aes_kwp_wrap, ok_aes_kwp_unwrap);
}

/* ---- keys -------------------------------------------------------------------------------------------- */

static ok_pkey *load_der(json_t *g, const char *member, int is_private)
{
    arena a = {0};
    size_t len;
    uint8_t *der = hexm(&a, g, member, &len);
    ok_pkey *k = NULL;

    if (ok_pkey_from_der(&k, der, len, is_private) != OK_OK)
        fail_msg("cannot load %s: %s", member, ok_err_message());
    arena_free(&a);
    return k;
}

static void assert_same_public(const ok_pkey *a, const ok_pkey *b)
{
    uint8_t *da = NULL, *db = NULL;
    size_t la = 0, lb = 0;

    assert_int_equal(ok_pkey_public_der(a, &da, &la), OK_OK);
    assert_int_equal(ok_pkey_public_der(b, &db, &lb), OK_OK);
    assert_true(eq(da, la, db, lb));
    free(da);
    free(db);
}

/* Private RSA JWKs get OpenSSL's full key check (primality of p and q): ~0.2 s each at 4096 bits, so
 * only the first few per file are cross-checked. */
#define MAX_RSA_PRIVATE_JWKS 4

/* Cross-checks the group's other key encodings (PEM, JWK) against the DER-loaded key. JWKs of RSA
 * keys outside 2048..8192 bits must be refused (ownkey's JWK policy). */
static void cross_check_keys(tally *t, json_t *g, const ok_pkey *k, const char *pem_member, const char *jwk_member)
{
    json_t *jwk_obj = jwk_member ? json_object_get(g, jwk_member) : NULL;
    const char *pem = pem_member ? json_string_value(json_object_get(g, pem_member)) : NULL;

    if (pem != NULL) {
        ok_pkey *p = NULL;
        assert_int_equal(ok_pkey_from_pem(&p, pem, strlen(pem)), OK_OK);
        assert_int_equal(ok_pkey_is_private(p), ok_pkey_is_private(k));
        assert_same_public(p, k);
        ok_pkey_free(p);
        t->key_checks++;
    }
    if (jwk_obj != NULL && ok_pkey_kind(k) == OK_PKEY_RSA && ok_pkey_is_private(k) &&
        t->rsa_private_jwks++ >= MAX_RSA_PRIVATE_JWKS)
        jwk_obj = NULL;
    if (jwk_obj != NULL) {
        char *text = json_dumps(jwk_obj, JSON_COMPACT);
        ok_jwk *jwk = NULL;
        ok_err rc;
        assert_non_null(text);
        rc = ok_jwk_parse(text, strlen(text), &jwk);
        if (ok_pkey_kind(k) == OK_PKEY_RSA && (ok_pkey_bits(k) < 2048 || ok_pkey_bits(k) > 8192)) {
            assert_int_not_equal(rc, OK_OK);
            t->policy_checks++;
        } else {
            if (rc != OK_OK)
                fail_msg("%s: JWK refused: %s", t->file, ok_err_message());
            assert_int_equal(ok_pkey_is_private(jwk->pkey), ok_pkey_is_private(k));
            assert_same_public(jwk->pkey, k);
            ok_jwk_free(jwk);
            t->key_checks++;
        }
        free(text);
    }
}

/* ---- RSA decryption -------------------------------------------------------------------------------- */

/* A rejected decryption must give the one uniform error: OK_ERR_AUTH with the same detail. */
static int uniform_rejection(ok_err rc)
{
    return rc == OK_ERR_AUTH && strcmp(ok_err_message(), "RSA decryption failed") == 0;
}

static void rsa_decrypt_group(tally *t, json_t *g, int oaep)
{
    ok_pkey *k = load_der(g, "privateKeyPkcs8", 1);
    ok_hash sha = OK_HASH_SHA256, mgf = OK_HASH_SHA256;
    size_t idx;
    json_t *tc;

    assert_int_equal(ok_pkey_bits(k), intm(g, "keySize"));
    cross_check_keys(t, g, k, "privateKeyPem", "privateKeyJwk");
    if (oaep) {
        assert_string_equal(strm(g, "mgf"), "MGF1");
        assert_true(hash_of(strm(g, "sha"), &sha));
        assert_true(hash_of(strm(g, "mgfSha"), &mgf));
    }
    FOREACH_TEST(g, idx, tc) {
        arena a = {0};
        size_t msg_len, ct_len, label_len = 0, n = 0;
        uint8_t *msg = hexm(&a, tc, "msg", &msg_len), *ct = hexm(&a, tc, "ct", &ct_len);
        uint8_t *label = oaep ? hexm(&a, tc, "label", &label_len) : NULL;
        uint8_t *out = arena_alloc(&a, ok_pkey_size(k));
        ok_err rc = oaep ? ok_rsa_oaep_decrypt(k, sha, mgf, label, label_len, ct, ct_len, out, &n)
                         : ok_rsa_pkcs1_decrypt(k, ct, ct_len, out, &n);
        if (rc != OK_OK && !uniform_rejection(rc)) {
            printf("  non-uniform rejection: %s\n", ok_err_message());
            judge(t, tc, 1, 0); /* counts as a failure whatever the expected result */
        } else {
            judge(t, tc, rc == OK_OK, rc == OK_OK && eq(out, n, msg, msg_len));
        }
        arena_free(&a);
    }
    ok_pkey_free(k);
}

static void oaep_group(tally *t, json_t *g)
{
    rsa_decrypt_group(t, g, 1);
}

static void pkcs1_decrypt_group(tally *t, json_t *g)
{
    rsa_decrypt_group(t, g, 0);
}

/* ---- RSA signatures -------------------------------------------------------------------------------- */

static void rsa_verify_group(tally *t, json_t *g)
{
    ok_pkey *k = load_der(g, "publicKeyDer", 0);
    ok_hash sha = OK_HASH_SHA256;
    size_t idx;
    json_t *tc;

    assert_true(hash_of(strm(g, "sha"), &sha));
    cross_check_keys(t, g, k, "publicKeyPem", "keyJwk");
    FOREACH_TEST(g, idx, tc) {
        arena a = {0};
        size_t msg_len, sig_len;
        uint8_t *msg = hexm(&a, tc, "msg", &msg_len), *sig = hexm(&a, tc, "sig", &sig_len);
        ok_err rc = ok_rsa_pkcs1_verify(k, sha, msg, msg_len, sig, sig_len);
        assert_true(rc == OK_OK || rc == OK_ERR_AUTH);
        if (sha == OK_HASH_SHA256) /* the JOSE entry point must agree */
            assert_int_equal(ok_verify(k, OK_SIG_RS256, msg, msg_len, sig, sig_len), rc);
        judge(t, tc, rc == OK_OK, 1);
        arena_free(&a);
    }
    ok_pkey_free(k);
}

static void rsa_sign_group(tally *t, json_t *g)
{
    ok_pkey *k = load_der(g, "privateKeyPkcs8", 1);
    ok_pkey *pub = load_der(g, "keyDer", 0);
    ok_hash sha = OK_HASH_SHA256;
    size_t idx;
    json_t *tc;

    assert_true(hash_of(strm(g, "sha"), &sha));
    assert_same_public(k, pub);
    cross_check_keys(t, g, k, "privateKeyPem", NULL);
    FOREACH_TEST(g, idx, tc) {
        arena a = {0};
        size_t msg_len, sig_len, n = 0;
        uint8_t *msg = hexm(&a, tc, "msg", &msg_len), *sig = hexm(&a, tc, "sig", &sig_len);
        uint8_t *out = arena_alloc(&a, ok_pkey_size(k));
        ok_err rc = ok_rsa_pkcs1_sign(k, sha, msg, msg_len, out, &n);
        int match = rc == OK_OK && eq(out, n, sig, sig_len);
        if (sha == OK_HASH_SHA1) { /* policy: ownkey makes no SHA-1 signatures */
            assert_int_equal(rc, OK_ERR_UNSUPPORTED);
            t->policy_checks++;
        }
        if (rc == OK_OK) /* what was signed verifies with the public key */
            assert_int_equal(ok_rsa_pkcs1_verify(pub, sha, msg, msg_len, out, n), OK_OK);
        judge(t, tc, rc == OK_OK, match);
        arena_free(&a);
    }
    ok_pkey_free(pub);
    ok_pkey_free(k);
}

static void pss_group(tally *t, json_t *g)
{
    ok_pkey *k = load_der(g, "publicKeyDer", 0);
    ok_hash sha = OK_HASH_SHA256, mgf = OK_HASH_SHA256;
    long long slen = intm(g, "sLen");
    size_t idx;
    json_t *tc;

    assert_string_equal(strm(g, "mgf"), "MGF1");
    assert_true(hash_of(strm(g, "sha"), &sha));
    assert_true(hash_of(strm(g, "mgfSha"), &mgf));
    cross_check_keys(t, g, k, "publicKeyPem", "publicKeyJwk");
    int jose = sha == OK_HASH_SHA256 && mgf == OK_HASH_SHA256 && slen == 32;
    FOREACH_TEST(g, idx, tc) {
        arena a = {0};
        size_t msg_len, sig_len;
        uint8_t *msg = hexm(&a, tc, "msg", &msg_len), *sig = hexm(&a, tc, "sig", &sig_len);
        ok_err rc = ok_rsa_pss_verify(k, sha, mgf, (int)slen, msg, msg_len, sig, sig_len);
        assert_true(rc == OK_OK || rc == OK_ERR_AUTH);
        if (jose) /* PS256 is exactly these parameters */
            assert_int_equal(ok_verify(k, OK_SIG_PS256, msg, msg_len, sig, sig_len), rc);
        judge(t, tc, rc == OK_OK, 1);
        arena_free(&a);
    }
    ok_pkey_free(k);
}

/* ---- ECDSA ------------------------------------------------------------------------------------------ */

static void ecdsa_group(tally *t, json_t *g, ok_sig_alg alg)
{
    ok_pkey *k = load_der(g, "publicKeyDer", 0);
    size_t idx;
    json_t *tc;

    assert_string_equal(strm(g, "sha"), "SHA-256");
    assert_string_equal(strm(json_object_get(g, "publicKey"), "curve"), "secp256r1");
    cross_check_keys(t, g, k, "publicKeyPem", "publicKeyJwk");
    FOREACH_TEST(g, idx, tc) {
        arena a = {0};
        size_t msg_len, sig_len;
        uint8_t *msg = hexm(&a, tc, "msg", &msg_len), *sig = hexm(&a, tc, "sig", &sig_len);
        ok_err rc = ok_verify(k, alg, msg, msg_len, sig, sig_len);
        assert_true(rc == OK_OK || rc == OK_ERR_AUTH);
        judge(t, tc, rc == OK_OK, 1);
        arena_free(&a);
    }
    ok_pkey_free(k);
}

static void ecdsa_der_group(tally *t, json_t *g)
{
    ecdsa_group(t, g, OK_SIG_ES256_DER);
}

static void ecdsa_p1363_group(tally *t, json_t *g)
{
    ecdsa_group(t, g, OK_SIG_ES256);
}

/* ---- HKDF and HMAC ------------------------------------------------------------------------------------ */

static void hkdf_group(tally *t, json_t *g)
{
    size_t idx;
    json_t *tc;

    FOREACH_TEST(g, idx, tc) {
        arena a = {0};
        size_t ikm_len, salt_len, info_len, okm_len, size = (size_t)intm(tc, "size");
        uint8_t *ikm = hexm(&a, tc, "ikm", &ikm_len), *salt = hexm(&a, tc, "salt", &salt_len);
        uint8_t *info = hexm(&a, tc, "info", &info_len), *okm = hexm(&a, tc, "okm", &okm_len);
        uint8_t *out = arena_alloc(&a, size);
        ok_err rc = ok_hkdf_sha256(salt, salt_len, ikm, ikm_len, info, info_len, out, size);
        judge(t, tc, rc == OK_OK, rc == OK_OK && eq(out, size, okm, okm_len));
        arena_free(&a);
    }
}

static void hmac_group(tally *t, json_t *g)
{
    size_t tag_bytes = (size_t)intm(g, "tagSize") / 8, idx;
    json_t *tc;

    assert_true(tag_bytes > 0 && tag_bytes <= OK_SHA256_LEN);
    FOREACH_TEST(g, idx, tc) {
        arena a = {0};
        size_t key_len, msg_len, tag_len;
        uint8_t *key = hexm(&a, tc, "key", &key_len), *msg = hexm(&a, tc, "msg", &msg_len);
        uint8_t *tag = hexm(&a, tc, "tag", &tag_len), out[OK_SHA256_LEN];
        assert_int_equal(ok_hmac_sha256(key, key_len, msg, msg_len, out), OK_OK);
        /* Verification: the (possibly truncated) tag compared in constant time. */
        judge(t, tc, tag_len == tag_bytes && ok_ct_equal(out, tag, tag_bytes), 1);
        arena_free(&a);
    }
}

/* ---- the file list ------------------------------------------------------------------------------------ */

#define OAEP(f) {f, "rsaes_oaep_decrypt_schema_v1.json", "RsaesOaepDecrypt", oaep_group}
#define PKCS1D(f) {f, "rsaes_pkcs1_decrypt_schema_v1.json", "RsaesPkcs1Decrypt", pkcs1_decrypt_group}

static const vector_file files[] = {
    {"aes_gcm_test.json", "aead_test_schema_v1.json", "AeadTest", gcm_group},
    {"aes_wrap_test.json", "keywrap_test_schema_v1.json", "KeywrapTest", kw_group},
    {"aes_kwp_test.json", "keywrap_test_schema_v1.json", "KeywrapTest", kwp_group},
    OAEP("rsa_oaep_2048_sha1_mgf1sha1_test.json"),
    OAEP("rsa_oaep_2048_sha256_mgf1sha1_test.json"),
    OAEP("rsa_oaep_2048_sha256_mgf1sha256_test.json"),
    OAEP("rsa_oaep_3072_sha256_mgf1sha1_test.json"),
    OAEP("rsa_oaep_3072_sha256_mgf1sha256_test.json"),
    OAEP("rsa_oaep_4096_sha256_mgf1sha1_test.json"),
    OAEP("rsa_oaep_4096_sha256_mgf1sha256_test.json"),
    OAEP("rsa_oaep_misc_test.json"),
    PKCS1D("rsa_pkcs1_2048_test.json"),
    PKCS1D("rsa_pkcs1_3072_test.json"),
    PKCS1D("rsa_pkcs1_4096_test.json"),
    {"rsa_signature_2048_sha256_test.json", "rsassa_pkcs1_verify_schema_v1.json", "RsassaPkcs1Verify",
     rsa_verify_group},
    {"rsa_signature_3072_sha256_test.json", "rsassa_pkcs1_verify_schema_v1.json", "RsassaPkcs1Verify",
     rsa_verify_group},
    {"rsa_pkcs1_2048_sig_gen_test.json", "rsassa_pkcs1_generate_schema_v1.json", "RsassaPkcs1Generate",
     rsa_sign_group},
    {"rsa_pss_2048_sha256_mgf1_32_test.json", "rsassa_pss_verify_schema_v1.json", "RsassaPssVerify", pss_group},
    {"rsa_pss_3072_sha256_mgf1_32_test.json", "rsassa_pss_verify_schema_v1.json", "RsassaPssVerify", pss_group},
    {"rsa_pss_2048_sha256_mgf1_32_params_test.json", "rsassa_pss_with_parameters_verify_schema.json",
     "RsassaPssWithParametersVerify", pss_group},
    {"rsa_pss_3072_sha256_mgf1_32_params_test.json", "rsassa_pss_with_parameters_verify_schema.json",
     "RsassaPssWithParametersVerify", pss_group},
    {"ecdsa_secp256r1_sha256_test.json", "ecdsa_verify_schema_v1.json", "EcdsaVerify", ecdsa_der_group},
    {"ecdsa_secp256r1_sha256_p1363_test.json", "ecdsa_p1363_verify_schema_v1.json", "EcdsaP1363Verify",
     ecdsa_p1363_group},
    {"hkdf_sha256_test.json", "hkdf_test_schema_v1.json", "HkdfTest", hkdf_group},
    {"hmac_sha256_test.json", "mac_test_schema_v1.json", "MacTest", hmac_group},
};

#define NFILES (sizeof files / sizeof files[0])

/* Optional argument: run only the files whose name contains it. */
int main(int argc, char **argv)
{
    struct CMUnitTest tests[NFILES];
    size_t n = 0;

    for (size_t i = 0; i < NFILES; i++) {
        if (argc > 1 && strstr(files[i].file, argv[1]) == NULL)
            continue;
        tests[n] = (struct CMUnitTest)cmocka_unit_test_prestate(run_file, (void *)&files[i]);
        tests[n++].name = files[i].file;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    return _cmocka_run_group_tests("wycheproof", tests, n, NULL, NULL);
}
