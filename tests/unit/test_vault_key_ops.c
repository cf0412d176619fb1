/* Tests of the vault's cryptographic operations (key_ops.c, material.c): every algorithm on the key types
 * it fits, results checked against the crypto layer with the key's public half; algorithms that do not fit
 * a key; the permission-free rules (disabled, key_ops, the nbf/exp window for encrypt/wrapKey/sign only);
 * uniform OK_ERR_AUTH for failed decryption; stored key material altered or moved between rows in the
 * database, which must fail authentication rather than produce garbage; and the material cache's eviction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "vault_fixture.h"

static ok_err op(ok_vault *v, const char *name, ok_key_op kop, const char *alg, const void *value, size_t len,
                 ok_key_op_result *res)
{
    ok_key_op_request req = {.op = kop, .alg = alg, .value = value, .value_len = len};

    return ok_vault_key_op(v, name, NULL, &req, res);
}

static size_t digest_of(const char *alg, uint8_t *out)
{
    const EVP_MD *md = strstr(alg, "384") ? EVP_sha384() : strstr(alg, "512") ? EVP_sha512() : EVP_sha256();
    unsigned int n = 0;

    assert_int_equal(EVP_Digest("message", 7, out, &n, md, NULL), 1);
    return n;
}

/* ---- RSA ----------------------------------------------------------------------------------------------------- */

static void rsa_round_trip(ok_vault *v, const char *alg, ok_key_op enc, ok_key_op dec)
{
    ok_key_op_result e, d;

    assert_int_equal(op(v, "rsa", enc, alg, SECRET32, 32, &e), OK_OK);
    assert_int_equal(e.value_len, 256);
    assert_int_equal(strlen(e.version), 32);
    assert_int_equal(op(v, "rsa", dec, alg, e.value, e.value_len, &d), OK_OK);
    assert_int_equal(d.value_len, 32);
    assert_memory_equal(d.value, SECRET32, 32);
    ok_key_op_result_clear(&d);
    e.value[10] ^= 1;
    assert_int_equal(op(v, "rsa", dec, alg, e.value, e.value_len, &d), OK_ERR_AUTH);
    assert_null(d.value);
    assert_int_equal(op(v, "rsa", dec, alg, e.value, e.value_len - 1, &d), OK_ERR_AUTH);
    ok_key_op_result_clear(&e);
}

static void test_rsa_ops(void **state)
{
    vault_fixture *f = *state;
    const char *sig_algs[] = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"};
    const ok_sig_alg sig_ids[] = {OK_SIG_RS256, OK_SIG_RS384, OK_SIG_RS512, OK_SIG_PS256, OK_SIG_PS384, OK_SIG_PS512};
    ok_key_info k;
    ok_key_op_result r;
    uint8_t digest[64], big[300] = {0};

    fixture_create(f->v, "rsa", OK_KTY_RSA, 2048, &k);
    for (size_t i = 0; i < 3; i++) {
        const char *alg = i == 0 ? "RSA-OAEP" : i == 1 ? "RSA-OAEP-256" : "RSA1_5";
        rsa_round_trip(f->v, alg, OK_KOP_ENCRYPT, OK_KOP_DECRYPT);
        rsa_round_trip(f->v, alg, OK_KOP_WRAP, OK_KOP_UNWRAP);
    }
    /* the public half decrypts nothing, but encrypts for the vault */
    uint8_t ct[256];
    size_t ct_len = 0;
    assert_int_equal(ok_rsa_oaep_encrypt(k.public_key, OK_HASH_SHA256, OK_HASH_SHA256, NULL, 0,
                                         (const uint8_t *)SECRET32, 32, ct, &ct_len), OK_OK);
    assert_int_equal(op(f->v, "rsa", OK_KOP_UNWRAP, "RSA-OAEP-256", ct, ct_len, &r), OK_OK);
    assert_memory_equal(r.value, SECRET32, 32);
    ok_key_op_result_clear(&r);
    /* too long for OAEP with this key */
    assert_int_equal(op(f->v, "rsa", OK_KOP_ENCRYPT, "RSA-OAEP-256", big, 200, &r), OK_ERR_INVALID_ARG);

    for (size_t i = 0; i < 6; i++) {
        size_t dlen = digest_of(sig_algs[i], digest);
        ok_key_op_request req = {.op = OK_KOP_SIGN, .alg = sig_algs[i], .value = digest, .value_len = dlen};
        ok_key_op_result s, vr;

        assert_int_equal(ok_vault_key_op(f->v, "rsa", NULL, &req, &s), OK_OK);
        assert_int_equal(s.value_len, 256);
        assert_int_equal(ok_verify(k.public_key, sig_ids[i], (const uint8_t *)"message", 7, s.value, s.value_len),
                         OK_OK);
        req = (ok_key_op_request){.op = OK_KOP_VERIFY, .alg = sig_algs[i], .value = s.value, .value_len = s.value_len,
                                  .digest = digest, .digest_len = dlen};
        assert_int_equal(ok_vault_key_op(f->v, "rsa", NULL, &req, &vr), OK_OK);
        assert_int_equal(vr.verified, 1);
        ok_key_op_result_clear(&vr);
        digest[0] ^= 1;
        assert_int_equal(ok_vault_key_op(f->v, "rsa", NULL, &req, &vr), OK_OK);
        assert_int_equal(vr.verified, 0);
        ok_key_op_result_clear(&vr);
        req = (ok_key_op_request){.op = OK_KOP_SIGN, .alg = sig_algs[i], .value = digest, .value_len = dlen - 1};
        assert_int_equal(ok_vault_key_op(f->v, "rsa", NULL, &req, &vr), OK_ERR_INVALID_ARG);
        ok_key_op_result_clear(&s);
    }
    ok_key_info_clear(&k);
}

/* ---- EC ------------------------------------------------------------------------------------------------------- */

static void test_ec_ops(void **state)
{
    vault_fixture *f = *state;
    ok_key_info k256, k384;
    ok_key_op_result s, vr;
    uint8_t d256[32], d384[48];

    fixture_create(f->v, "ec", OK_KTY_EC, 256, &k256);
    fixture_create(f->v, "ec384", OK_KTY_EC, 384, &k384);
    digest_of("ES256", d256);
    digest_of("ES384", d384);
    assert_int_equal(op(f->v, "ec", OK_KOP_SIGN, "ES256", d256, 32, &s), OK_OK);
    assert_int_equal(s.value_len, 64); /* raw r||s */
    assert_int_equal(ok_verify(k256.public_key, OK_SIG_ES256, (const uint8_t *)"message", 7, s.value, 64), OK_OK);
    ok_key_op_request req = {.op = OK_KOP_VERIFY, .alg = "ES256", .value = s.value, .value_len = 64, .digest = d256,
                             .digest_len = 32};
    assert_int_equal(ok_vault_key_op(f->v, "ec", NULL, &req, &vr), OK_OK);
    assert_int_equal(vr.verified, 1);
    ok_key_op_result_clear(&vr);
    req.value_len = 63;
    assert_int_equal(ok_vault_key_op(f->v, "ec", NULL, &req, &vr), OK_OK);
    assert_int_equal(vr.verified, 0);
    ok_key_op_result_clear(&s);
    assert_int_equal(op(f->v, "ec384", OK_KOP_SIGN, "ES384", d384, 48, &s), OK_OK);
    assert_int_equal(s.value_len, 96);
    assert_int_equal(ok_verify(k384.public_key, OK_SIG_ES384, (const uint8_t *)"message", 7, s.value, 96), OK_OK);
    ok_key_op_result_clear(&s);

    /* algorithms that do not fit */
    assert_int_equal(op(f->v, "ec", OK_KOP_SIGN, "ES384", d384, 48, &s), OK_ERR_INVALID_ARG);
    assert_int_equal(op(f->v, "ec384", OK_KOP_SIGN, "ES256", d256, 32, &s), OK_ERR_INVALID_ARG);
    assert_int_equal(op(f->v, "ec", OK_KOP_SIGN, "RS256", d256, 32, &s), OK_ERR_INVALID_ARG);
    assert_int_equal(op(f->v, "ec", OK_KOP_ENCRYPT, "RSA-OAEP", d256, 32, &s), OK_ERR_INVALID_ARG);
    assert_string_equal(ok_err_message(), "algorithm RSA-OAEP does not fit an EC key");
    assert_int_equal(op(f->v, "ec", OK_KOP_SIGN, "ES256", d256, 31, &s), OK_ERR_INVALID_ARG);
    ok_key_info_clear(&k256);
    ok_key_info_clear(&k384);
}

/* ---- oct -------------------------------------------------------------------------------------------------------- */

static void test_oct_ops(void **state)
{
    vault_fixture *f = *state;
    static const unsigned widths[3] = {128, 192, 256};
    const char *kw[3] = {"A128KW", "A192KW", "A256KW"}, *gcm[3] = {"A128GCM", "A192GCM", "A256GCM"};
    uint8_t wrapped[40], msg[100];
    ok_key_op_result e, d;

    memset(msg, 'm', sizeof msg);
    for (size_t i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof name, "oct%u", widths[i]);
        fixture_create(f->v, name, OK_KTY_OCT, widths[i], NULL);
        assert_int_equal(fixture_wrap(f->v, name, NULL, kw[i], wrapped), 40);
        assert_int_equal(fixture_unwrap(f->v, name, NULL, kw[i], wrapped, 40), OK_OK);
        wrapped[39] ^= 1;
        assert_int_equal(fixture_unwrap(f->v, name, NULL, kw[i], wrapped, 40), OK_ERR_AUTH);
        assert_int_equal(fixture_unwrap(f->v, name, NULL, kw[i], wrapped, 20), OK_ERR_AUTH);
        /* the width must match the key */
        assert_int_equal(op(f->v, name, OK_KOP_WRAP, kw[(i + 1) % 3], SECRET32, 32, &e), OK_ERR_INVALID_ARG);
        assert_int_equal(op(f->v, name, OK_KOP_ENCRYPT, gcm[(i + 2) % 3], msg, 100, &e), OK_ERR_INVALID_ARG);
        assert_int_equal(op(f->v, name, OK_KOP_WRAP, kw[i], SECRET32, 12, &e), OK_ERR_INVALID_ARG);

        /* GCM: the vault picks the IV; aad and tag are checked */
        ok_key_op_request req = {.op = OK_KOP_ENCRYPT, .alg = gcm[i], .value = msg, .value_len = 100,
                                 .aad = (const uint8_t *)"aad", .aad_len = 3};
        assert_int_equal(ok_vault_key_op(f->v, name, NULL, &req, &e), OK_OK);
        assert_int_equal(e.iv_len, 12);
        assert_int_equal(e.tag_len, 16);
        assert_int_equal(e.value_len, 100);
        req = (ok_key_op_request){.op = OK_KOP_DECRYPT, .alg = gcm[i], .value = e.value, .value_len = 100,
                                  .iv = e.iv, .iv_len = 12, .tag = e.tag, .tag_len = 16,
                                  .aad = (const uint8_t *)"aad", .aad_len = 3};
        assert_int_equal(ok_vault_key_op(f->v, name, NULL, &req, &d), OK_OK);
        assert_memory_equal(d.value, msg, 100);
        ok_key_op_result_clear(&d);
        req.aad_len = 2;
        assert_int_equal(ok_vault_key_op(f->v, name, NULL, &req, &d), OK_ERR_AUTH);
        req.aad_len = 3;
        e.tag[0] ^= 1;
        assert_int_equal(ok_vault_key_op(f->v, name, NULL, &req, &d), OK_ERR_AUTH);
        assert_string_equal(ok_err_message(), "decryption failed");
        req.tag = NULL;
        assert_int_equal(ok_vault_key_op(f->v, name, NULL, &req, &d), OK_ERR_INVALID_ARG);
        req.tag = e.tag;
        req.iv_len = 16;
        assert_int_equal(ok_vault_key_op(f->v, name, NULL, &req, &d), OK_ERR_INVALID_ARG);
        ok_key_op_result_clear(&e);
        req = (ok_key_op_request){.op = OK_KOP_ENCRYPT, .alg = gcm[i], .value = msg, .value_len = 10,
                                  .iv = msg, .iv_len = 12};
        assert_int_equal(ok_vault_key_op(f->v, name, NULL, &req, &e), OK_ERR_INVALID_ARG);
        /* GCM is not a wrapping algorithm, KW not an encryption one, and oct keys do not sign */
        assert_int_equal(op(f->v, name, OK_KOP_WRAP, gcm[i], SECRET32, 32, &e), OK_ERR_INVALID_ARG);
        assert_int_equal(op(f->v, name, OK_KOP_ENCRYPT, kw[i], SECRET32, 32, &e), OK_ERR_INVALID_ARG);
        assert_int_equal(op(f->v, name, OK_KOP_SIGN, "RS256", SECRET32, 32, &e), OK_ERR_INVALID_ARG);
        assert_int_equal(op(f->v, name, OK_KOP_WRAP, "RSA-OAEP", SECRET32, 32, &e), OK_ERR_INVALID_ARG);
    }
    assert_int_equal(op(f->v, "oct256", OK_KOP_WRAP, "A512KW", SECRET32, 32, &e), OK_ERR_INVALID_ARG);
    assert_int_equal(op(f->v, "oct256", OK_KOP_WRAP, NULL, SECRET32, 32, &e), OK_ERR_INVALID_ARG);
    assert_int_equal(op(f->v, "oct256", OK_KOP_WRAP, "A256KW", NULL, 0, &e), OK_ERR_INVALID_ARG);
    assert_int_equal(op(f->v, "oct256", (ok_key_op)42, "A256KW", SECRET32, 32, &e), OK_ERR_INVALID_ARG);
    assert_int_equal(op(f->v, "missing", OK_KOP_WRAP, "A256KW", SECRET32, 32, &e), OK_ERR_NOT_FOUND);
    ok_key_op_request req = {.op = OK_KOP_WRAP, .alg = "A256KW", .value = (const uint8_t *)SECRET32, .value_len = 32};
    assert_int_equal(ok_vault_key_op(f->v, "oct256", "00000000000000000000000000000000", &req, &e), OK_ERR_NOT_FOUND);
}

/* ---- the rules ------------------------------------------------------------------------------------------ */

static void test_rules(void **state)
{
    vault_fixture *f = *state;
    ok_key_info k;
    ok_key_attrs attrs = {.has_enabled = 1, .enabled = 0};
    ok_key_op_result r;
    uint8_t wrapped[256], digest[32], sig[64];
    int64_t now = ok_vault_now();

    fixture_create(f->v, "r", OK_KTY_OCT, 256, NULL);
    assert_int_equal(fixture_wrap(f->v, "r", NULL, "A256KW", wrapped), 40);

    /* disabled: everything refused, even unwrap */
    assert_int_equal(ok_vault_key_update(f->v, "r", NULL, &attrs, &k), OK_OK);
    ok_key_info_clear(&k);
    assert_int_equal(op(f->v, "r", OK_KOP_WRAP, "A256KW", SECRET32, 32, &r), OK_ERR_FORBIDDEN);
    assert_string_equal(ok_err_message(), "key \"r\" is disabled");
    assert_int_equal(fixture_unwrap(f->v, "r", NULL, "A256KW", wrapped, 40), OK_ERR_FORBIDDEN);
    attrs.enabled = 1;
    assert_int_equal(ok_vault_key_update(f->v, "r", NULL, &attrs, &k), OK_OK);
    ok_key_info_clear(&k);

    /* key_ops */
    attrs = (ok_key_attrs){.has_ops = 1, .ops = OK_KEYOP_UNWRAP};
    assert_int_equal(ok_vault_key_update(f->v, "r", NULL, &attrs, &k), OK_OK);
    ok_key_info_clear(&k);
    assert_int_equal(op(f->v, "r", OK_KOP_WRAP, "A256KW", SECRET32, 32, &r), OK_ERR_FORBIDDEN);
    assert_string_equal(ok_err_message(), "operation wrapKey is not permitted by the key's key_ops");
    assert_int_equal(fixture_unwrap(f->v, "r", NULL, "A256KW", wrapped, 40), OK_OK);
    attrs.ops = OK_KEYOP_WRAP | OK_KEYOP_UNWRAP;
    assert_int_equal(ok_vault_key_update(f->v, "r", NULL, &attrs, &k), OK_OK);
    ok_key_info_clear(&k);

    /* not yet valid: wrap refused, unwrap allowed */
    attrs = (ok_key_attrs){.has_nbf = 1, .nbf = now + 3600};
    assert_int_equal(ok_vault_key_update(f->v, "r", NULL, &attrs, &k), OK_OK);
    ok_key_info_clear(&k);
    assert_int_equal(op(f->v, "r", OK_KOP_WRAP, "A256KW", SECRET32, 32, &r), OK_ERR_FORBIDDEN);
    assert_int_equal(fixture_unwrap(f->v, "r", NULL, "A256KW", wrapped, 40), OK_OK);
    /* expired: the same */
    attrs = (ok_key_attrs){.has_nbf = 1, .nbf = 0, .has_exp = 1, .exp = now - 1};
    assert_int_equal(ok_vault_key_update(f->v, "r", NULL, &attrs, &k), OK_OK);
    ok_key_info_clear(&k);
    assert_int_equal(op(f->v, "r", OK_KOP_WRAP, "A256KW", SECRET32, 32, &r), OK_ERR_FORBIDDEN);
    assert_int_equal(fixture_unwrap(f->v, "r", NULL, "A256KW", wrapped, 40), OK_OK);
    attrs = (ok_key_attrs){.has_exp = 1, .exp = now + 3600}; /* inside the window again */
    assert_int_equal(ok_vault_key_update(f->v, "r", NULL, &attrs, &k), OK_OK);
    ok_key_info_clear(&k);
    assert_int_equal(fixture_wrap(f->v, "r", NULL, "A256KW", wrapped), 40);

    /* GCM encrypt and EC sign follow the window; decrypt and verify do not */
    fixture_create(f->v, "g", OK_KTY_OCT, 128, NULL);
    ok_key_op_request req = {.op = OK_KOP_ENCRYPT, .alg = "A128GCM", .value = (const uint8_t *)"hi", .value_len = 2};
    ok_key_op_result e, d;
    assert_int_equal(ok_vault_key_op(f->v, "g", NULL, &req, &e), OK_OK);
    attrs = (ok_key_attrs){.has_exp = 1, .exp = now - 10};
    assert_int_equal(ok_vault_key_update(f->v, "g", NULL, &attrs, &k), OK_OK);
    ok_key_info_clear(&k);
    assert_int_equal(ok_vault_key_op(f->v, "g", NULL, &req, &r), OK_ERR_FORBIDDEN);
    req = (ok_key_op_request){.op = OK_KOP_DECRYPT, .alg = "A128GCM", .value = e.value, .value_len = 2, .iv = e.iv,
                              .iv_len = 12, .tag = e.tag, .tag_len = 16};
    assert_int_equal(ok_vault_key_op(f->v, "g", NULL, &req, &d), OK_OK);
    assert_memory_equal(d.value, "hi", 2);
    ok_key_op_result_clear(&d);
    ok_key_op_result_clear(&e);

    fixture_create(f->v, "s", OK_KTY_EC, 256, NULL);
    digest_of("ES256", digest);
    assert_int_equal(op(f->v, "s", OK_KOP_SIGN, "ES256", digest, 32, &r), OK_OK);
    memcpy(sig, r.value, 64);
    ok_key_op_result_clear(&r);
    attrs = (ok_key_attrs){.has_nbf = 1, .nbf = now + 100};
    assert_int_equal(ok_vault_key_update(f->v, "s", NULL, &attrs, &k), OK_OK);
    ok_key_info_clear(&k);
    assert_int_equal(op(f->v, "s", OK_KOP_SIGN, "ES256", digest, 32, &r), OK_ERR_FORBIDDEN);
    req = (ok_key_op_request){.op = OK_KOP_VERIFY, .alg = "ES256", .value = sig, .value_len = 64, .digest = digest,
                              .digest_len = 32};
    assert_int_equal(ok_vault_key_op(f->v, "s", NULL, &req, &r), OK_OK);
    assert_int_equal(r.verified, 1);
    ok_key_op_result_clear(&r);
    /* default EC key_ops have no encrypt; the alg check comes first */
    assert_int_equal(op(f->v, "s", OK_KOP_VERIFY, "ES256", sig, 64, &r), OK_ERR_INVALID_ARG); /* no digest */
}

/* ---- tampered material ---------------------------------------------------------------------------------- */

typedef struct {
    uint8_t *blob;
    size_t len;
} blob_out;

static ok_err blob_cb(void *ctx, const ok_val *cols, size_t n)
{
    blob_out *b = ctx;

    assert_int_equal(n, 1);
    b->blob = malloc(cols[0].len);
    memcpy(b->blob, cols[0].b, cols[0].len);
    b->len = cols[0].len;
    return OK_OK;
}

static blob_out read_material(ok_vault *v, const char *name, const char *version)
{
    blob_out b = {NULL, 0};
    ok_val p[2] = {OK_VTEXT(name), OK_VTEXT(version)};

    assert_int_equal(v->store->vt->query(v->store, "SELECT material FROM key_versions WHERE name = ? AND version = ?",
                                         p, 2, blob_cb, &b), OK_OK);
    assert_non_null(b.blob);
    return b;
}

/* Replaces a stored row's material, then seals and unseals so that nothing opened before is cached. */
static void write_material(ok_vault *v, const char *name, const char *version, const blob_out *b)
{
    ok_val p[3] = {OK_VBLOB(b->blob, b->len), OK_VTEXT(name), OK_VTEXT(version)};
    int64_t changes = 0;

    assert_int_equal(v->store->vt->exec(v->store, "UPDATE key_versions SET material = ? WHERE name = ? AND version = ?",
                                        p, 3, &changes), OK_OK);
    assert_int_equal(changes, 1);
    assert_int_equal(ok_vault_seal(v), OK_OK);
    assert_int_equal(ok_vault_unseal_auto(v), OK_OK);
}

static void test_tampered_material(void **state)
{
    vault_fixture *f = *state;
    ok_key_info a, b, r;
    uint8_t wrapped[256], rwrapped[256];
    blob_out orig, other;

    fixture_create(f->v, "t", OK_KTY_OCT, 256, &a);
    fixture_create(f->v, "t", OK_KTY_OCT, 256, &b);
    fixture_create(f->v, "rsa", OK_KTY_RSA, 2048, &r);
    assert_int_equal(fixture_wrap(f->v, "t", a.version, "A256KW", wrapped), 40);
    assert_int_equal(fixture_wrap(f->v, "rsa", NULL, "RSA-OAEP-256", rwrapped), 256);

    /* every byte position class: nonce, ciphertext, tag */
    orig = read_material(f->v, "t", a.version);
    assert_int_equal(orig.len, 12 + 1 + 32 + 16);
    const size_t positions[3] = {0, 20, orig.len - 1};
    for (size_t i = 0; i < 3; i++) {
        orig.blob[positions[i]] ^= 0x40;
        write_material(f->v, "t", a.version, &orig);
        assert_int_equal(fixture_unwrap(f->v, "t", a.version, "A256KW", wrapped, 40), OK_ERR_AUTH);
        orig.blob[positions[i]] ^= 0x40;
    }
    write_material(f->v, "t", a.version, &orig);
    assert_int_equal(fixture_unwrap(f->v, "t", a.version, "A256KW", wrapped, 40), OK_OK);

    /* a row moved to another version (or another key) fails: the AAD names name and version */
    other = read_material(f->v, "t", b.version);
    write_material(f->v, "t", a.version, &other);
    assert_int_equal(fixture_unwrap(f->v, "t", a.version, "A256KW", wrapped, 40), OK_ERR_AUTH);
    write_material(f->v, "t", a.version, &orig);
    free(other.blob);
    other = read_material(f->v, "rsa", r.version);
    other.blob[other.len / 2] ^= 1;
    write_material(f->v, "rsa", r.version, &other);
    assert_int_equal(fixture_unwrap(f->v, "rsa", NULL, "RSA-OAEP-256", rwrapped, 256), OK_ERR_AUTH);
    assert_int_equal(fixture_wrap(f->v, "t", a.version, "A256KW", wrapped), 40); /* others unaffected */

    /* a changed key type in the row does not make the material parse as another type */
    ok_val p[2] = {OK_VTEXT("t"), OK_VTEXT(b.version)};
    assert_int_equal(f->v->store->vt->exec(f->v->store,
                                           "UPDATE key_versions SET kty = 1 WHERE name = ? AND version = ?", p, 2,
                                           NULL),
                     OK_OK);
    ok_key_info k;
    assert_int_equal(ok_vault_key_get(f->v, "t", b.version, &k), OK_ERR_FORMAT); /* no public key for RSA */
    free(orig.blob);
    free(other.blob);
    ok_key_info_clear(&a);
    ok_key_info_clear(&b);
    ok_key_info_clear(&r);
}

/* More versions than the material cache holds: evicted ones are opened again from storage. */
static void test_cache_eviction(void **state)
{
    vault_fixture *f = *state;
    enum { N = 1100 };
    char (*versions)[OK_KEY_VERSION_LEN + 1] = calloc(N, sizeof *versions);
    uint8_t wrapped[40], first[40];
    ok_key_info k;

    assert_non_null(versions);
    for (int i = 0; i < N; i++) {
        fixture_create(f->v, "many", OK_KTY_OCT, 128, &k);
        memcpy(versions[i], k.version, sizeof versions[i]);
        ok_key_info_clear(&k);
        assert_int_equal(fixture_wrap(f->v, "many", versions[i], "A128KW", i == 0 ? first : wrapped), 40);
    }
    for (int i = 0; i < N; i += 97)
        assert_int_equal(fixture_wrap(f->v, "many", versions[i], "A128KW", wrapped), 40);
    assert_int_equal(fixture_unwrap(f->v, "many", versions[0], "A128KW", first, 40), OK_OK);
    assert_int_equal(fixture_unwrap(f->v, "many", versions[1], "A128KW", first, 40), OK_ERR_AUTH);
    free(versions);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)
    const struct CMUnitTest tests[] = {
        T(test_rsa_ops), T(test_ec_ops), T(test_oct_ops), T(test_rules), T(test_tampered_material),
        T(test_cache_eviction),
    };
    return cmocka_run_group_tests_name("vault_key_ops", tests, NULL, NULL);
}
