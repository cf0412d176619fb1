/* API-level tests of the crypto layer that the Wycheproof vectors do not cover: incremental and
 * in-place AES-GCM and reuse of one context over many IVs, tamper handling, key wrap round trips and
 * length refusals, RSA key generation with OAEP round trips, RS/PS/ES signing over messages and over
 * digests, key loading and PKCS#8 export, HKDF and scrypt limits and constant-time comparison, and OAEP
 * decryption contexts reused across threads. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "ownkey/crypto.h"
#include "test_support.h"

static void fill(uint8_t *p, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed + i * 31u);
}

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != 0)
            return 0;
    }
    return 1;
}

/* ---- randomness and comparison ------------------------------------------------------------------ */

static void test_random_and_ct_equal(void **state)
{
    uint8_t a[64], b[64];

    (void)state;
    assert_int_equal(ok_random(a, sizeof a), OK_OK);
    assert_int_equal(ok_random(b, sizeof b), OK_OK);
    assert_memory_not_equal(a, b, sizeof a);
    assert_int_equal(ok_random(NULL, 0), OK_OK);
    assert_int_equal(ok_random(NULL, 1), OK_ERR_INVALID_ARG);

    memcpy(b, a, sizeof a);
    assert_int_equal(ok_ct_equal(a, b, sizeof a), 1);
    b[63] ^= 1;
    assert_int_equal(ok_ct_equal(a, b, sizeof a), 0);
    assert_int_equal(ok_ct_equal(a, b, 63), 1);
    b[0] ^= 0x80;
    assert_int_equal(ok_ct_equal(a, b, 1), 0);
    assert_int_equal(ok_ct_equal(a, b, 0), 1);
}

/* ---- AES-GCM --------------------------------------------------------------------------------------- */

#define MSG_LEN 1000

static void test_gcm_incremental_matches_oneshot(void **state)
{
    static const size_t steps[] = {1, 7, 16, 17, 100, 333, MSG_LEN};
    uint8_t key[32], iv[12], aad[40], msg[MSG_LEN], ct[MSG_LEN], tag[16], ct2[MSG_LEN], tag2[16], pt[MSG_LEN];
    ok_gcm *g = NULL;

    (void)state;
    fill(key, sizeof key, 1);
    fill(iv, sizeof iv, 2);
    fill(aad, sizeof aad, 3);
    fill(msg, sizeof msg, 4);
    assert_int_equal(ok_aes_gcm_encrypt(key, 32, iv, 12, aad, sizeof aad, msg, sizeof msg, ct, tag), OK_OK);
    assert_int_equal(ok_gcm_new(&g, key, 32), OK_OK);
    for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
        size_t step = steps[s];
        /* encrypt in pieces of `step`, AAD in two pieces */
        assert_int_equal(ok_gcm_begin(g, 1, iv, 12), OK_OK);
        assert_int_equal(ok_gcm_aad(g, aad, 9), OK_OK);
        assert_int_equal(ok_gcm_aad(g, aad + 9, sizeof aad - 9), OK_OK);
        for (size_t off = 0; off < MSG_LEN; off += step) {
            size_t n = MSG_LEN - off < step ? MSG_LEN - off : step;
            assert_int_equal(ok_gcm_update(g, msg + off, n, ct2 + off), OK_OK);
        }
        assert_int_equal(ok_gcm_finish_encrypt(g, tag2), OK_OK);
        assert_memory_equal(ct, ct2, MSG_LEN);
        assert_memory_equal(tag, tag2, 16);
        /* and decrypt in pieces */
        assert_int_equal(ok_gcm_begin(g, 0, iv, 12), OK_OK);
        assert_int_equal(ok_gcm_aad(g, aad, sizeof aad), OK_OK);
        for (size_t off = 0; off < MSG_LEN; off += step) {
            size_t n = MSG_LEN - off < step ? MSG_LEN - off : step;
            assert_int_equal(ok_gcm_update(g, ct + off, n, pt + off), OK_OK);
        }
        assert_int_equal(ok_gcm_finish_decrypt(g, tag), OK_OK);
        assert_memory_equal(pt, msg, MSG_LEN);
    }
    /* seal/open are the same computation */
    assert_int_equal(ok_gcm_seal(g, iv, aad, sizeof aad, msg, MSG_LEN, ct2, tag2), OK_OK);
    assert_memory_equal(ct, ct2, MSG_LEN);
    assert_memory_equal(tag, tag2, 16);
    assert_int_equal(ok_gcm_open(g, iv, aad, sizeof aad, ct, MSG_LEN, tag, pt), OK_OK);
    assert_memory_equal(pt, msg, MSG_LEN);
    /* empty message and empty AAD */
    assert_int_equal(ok_gcm_seal(g, iv, NULL, 0, NULL, 0, NULL, tag2), OK_OK);
    assert_int_equal(ok_aes_gcm_encrypt(key, 32, iv, 12, NULL, 0, NULL, 0, NULL, tag), OK_OK);
    assert_memory_equal(tag, tag2, 16);
    assert_int_equal(ok_gcm_open(g, iv, NULL, 0, NULL, 0, tag, NULL), OK_OK);
    ok_gcm_free(g);
}

static void test_gcm_in_place(void **state)
{
    uint8_t key[16], iv[12], msg[MSG_LEN], buf[MSG_LEN], ct[MSG_LEN], tag[16], tag2[16];
    ok_gcm *g = NULL;

    (void)state;
    fill(key, sizeof key, 9);
    fill(iv, sizeof iv, 8);
    fill(msg, sizeof msg, 7);
    assert_int_equal(ok_aes_gcm_encrypt(key, 16, iv, 12, NULL, 0, msg, MSG_LEN, ct, tag), OK_OK);
    memcpy(buf, msg, MSG_LEN);
    assert_int_equal(ok_aes_gcm_encrypt(key, 16, iv, 12, NULL, 0, buf, MSG_LEN, buf, tag2), OK_OK);
    assert_memory_equal(buf, ct, MSG_LEN);
    assert_memory_equal(tag, tag2, 16);
    assert_int_equal(ok_aes_gcm_decrypt(key, 16, iv, 12, NULL, 0, buf, MSG_LEN, tag, buf), OK_OK);
    assert_memory_equal(buf, msg, MSG_LEN);

    assert_int_equal(ok_gcm_new(&g, key, 16), OK_OK);
    assert_int_equal(ok_gcm_seal(g, iv, NULL, 0, buf, MSG_LEN, buf, tag2), OK_OK);
    assert_memory_equal(buf, ct, MSG_LEN);
    assert_int_equal(ok_gcm_open(g, iv, NULL, 0, buf, MSG_LEN, tag, buf), OK_OK);
    assert_memory_equal(buf, msg, MSG_LEN);
    ok_gcm_free(g);
}

/* One context, many messages: every IV length and direction change must give the one-shot result. */
static void test_gcm_reuse_many_ivs(void **state)
{
    static const size_t key_lens[] = {16, 24, 32};
    static const size_t iv_lens[] = {12, 1, 12, 16, 60, 128, 12, 8};
    uint8_t key[32], iv[128], aad[20], msg[257], ct[257], tag[16], ct2[257], tag2[16], pt[257];

    (void)state;
    for (size_t k = 0; k < 3; k++) {
        ok_gcm *g = NULL;
        fill(key, sizeof key, (uint8_t)(k + 40));
        assert_int_equal(ok_gcm_new(&g, key, key_lens[k]), OK_OK);
        for (unsigned i = 0; i < 400; i++) {
            size_t iv_len = iv_lens[i % (sizeof iv_lens / sizeof iv_lens[0])];
            size_t len = (i * 37u) % sizeof msg;
            fill(iv, iv_len, (uint8_t)i);
            iv[0] = (uint8_t)(i >> 8);
            fill(aad, sizeof aad, (uint8_t)(i + 1));
            fill(msg, len, (uint8_t)(i + 2));
            assert_int_equal(ok_aes_gcm_encrypt(key, key_lens[k], iv, iv_len, aad, i % 21, msg, len, ct, tag), OK_OK);
            assert_int_equal(ok_gcm_begin(g, 1, iv, iv_len), OK_OK);
            assert_int_equal(ok_gcm_aad(g, aad, i % 21), OK_OK);
            assert_int_equal(ok_gcm_update(g, msg, len, ct2), OK_OK);
            assert_int_equal(ok_gcm_finish_encrypt(g, tag2), OK_OK);
            assert_memory_equal(ct, ct2, len);
            assert_memory_equal(tag, tag2, 16);
            if (i % 3 == 0) { /* switch direction on the same context */
                assert_int_equal(ok_gcm_begin(g, 0, iv, iv_len), OK_OK);
                assert_int_equal(ok_gcm_aad(g, aad, i % 21), OK_OK);
                assert_int_equal(ok_gcm_update(g, ct, len, pt), OK_OK);
                assert_int_equal(ok_gcm_finish_decrypt(g, tag), OK_OK);
                assert_memory_equal(pt, msg, len);
            }
        }
        ok_gcm_free(g);
    }
}

static void test_gcm_tamper(void **state)
{
    uint8_t key[32], iv[12], aad[16], msg[100], ct[100], tag[16], bad[100], badtag[16], out[100];
    ok_gcm *g = NULL;

    (void)state;
    fill(key, sizeof key, 11);
    fill(iv, sizeof iv, 12);
    fill(aad, sizeof aad, 13);
    fill(msg, sizeof msg, 14);
    assert_int_equal(ok_aes_gcm_encrypt(key, 32, iv, 12, aad, 16, msg, 100, ct, tag), OK_OK);

    memcpy(bad, ct, 100);
    bad[50] ^= 0x01;
    memset(out, 0x55, sizeof out);
    assert_int_equal(ok_aes_gcm_decrypt(key, 32, iv, 12, aad, 16, bad, 100, tag, out), OK_ERR_AUTH);
    assert_true(all_zero(out, sizeof out));

    memcpy(badtag, tag, 16);
    badtag[15] ^= 0x80;
    memset(out, 0x55, sizeof out);
    assert_int_equal(ok_aes_gcm_decrypt(key, 32, iv, 12, aad, 16, ct, 100, badtag, out), OK_ERR_AUTH);
    assert_true(all_zero(out, sizeof out));

    aad[0] ^= 1; /* different AAD */
    assert_int_equal(ok_aes_gcm_decrypt(key, 32, iv, 12, aad, 16, ct, 100, tag, out), OK_ERR_AUTH);
    aad[0] ^= 1;
    assert_int_equal(ok_aes_gcm_decrypt(key, 32, iv, 12, aad, 15, ct, 100, tag, out), OK_ERR_AUTH);
    iv[11] ^= 1; /* different IV */
    assert_int_equal(ok_aes_gcm_decrypt(key, 32, iv, 12, aad, 16, ct, 100, tag, out), OK_ERR_AUTH);
    iv[11] ^= 1;
    assert_int_equal(ok_aes_gcm_decrypt(key, 32, iv, 12, aad, 16, ct, 99, tag, out), OK_ERR_AUTH); /* truncated */

    assert_int_equal(ok_gcm_new(&g, key, 32), OK_OK);
    memset(out, 0x55, sizeof out);
    assert_int_equal(ok_gcm_open(g, iv, aad, 16, bad, 100, tag, out), OK_ERR_AUTH);
    assert_true(all_zero(out, sizeof out));
    /* incremental: the tag check fails at finish */
    assert_int_equal(ok_gcm_begin(g, 0, iv, 12), OK_OK);
    assert_int_equal(ok_gcm_aad(g, aad, 16), OK_OK);
    assert_int_equal(ok_gcm_update(g, ct, 100, out), OK_OK);
    assert_int_equal(ok_gcm_finish_decrypt(g, badtag), OK_ERR_AUTH);
    /* and the context still works afterwards */
    assert_int_equal(ok_gcm_open(g, iv, aad, 16, ct, 100, tag, out), OK_OK);
    assert_memory_equal(out, msg, 100);
    ok_gcm_free(g);
}

static void test_gcm_misuse(void **state)
{
    uint8_t key[32] = {0}, iv[200] = {0}, buf[32] = {0}, tag[16];
    ok_gcm *g = NULL;

    (void)state;
    assert_int_equal(ok_gcm_new(&g, key, 20), OK_ERR_INVALID_ARG);
    assert_null(g);
    assert_int_equal(ok_aes_gcm_encrypt(key, 0, iv, 12, NULL, 0, buf, 16, buf, tag), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_aes_gcm_encrypt(key, 32, iv, 0, NULL, 0, buf, 16, buf, tag), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_aes_gcm_encrypt(key, 32, iv, 129, NULL, 0, buf, 16, buf, tag), OK_ERR_UNSUPPORTED);
    assert_int_equal(ok_aes_gcm_encrypt(key, 32, iv, 128, NULL, 0, buf, 16, buf, tag), OK_OK);

    assert_int_equal(ok_gcm_new(&g, key, 32), OK_OK);
    assert_int_equal(ok_gcm_update(g, buf, 16, buf), OK_ERR_INVALID_ARG);      /* no begin */
    assert_int_equal(ok_gcm_finish_encrypt(g, tag), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_gcm_begin(g, 1, iv, 12), OK_OK);
    assert_int_equal(ok_gcm_update(g, buf, 16, buf), OK_OK);
    assert_int_equal(ok_gcm_aad(g, buf, 4), OK_ERR_INVALID_ARG);               /* AAD after data */
    assert_int_equal(ok_gcm_update(g, buf, 16, buf), OK_ERR_INVALID_ARG);      /* message abandoned */
    assert_int_equal(ok_gcm_begin(g, 0, iv, 12), OK_OK);
    assert_int_equal(ok_gcm_finish_encrypt(g, tag), OK_ERR_INVALID_ARG);       /* wrong direction */
    assert_int_equal(ok_gcm_begin(g, 1, iv, 12), OK_OK);
    assert_int_equal(ok_gcm_finish_decrypt(g, tag), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_gcm_begin(g, 1, iv, 0), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_gcm_begin(g, 1, iv, 200), OK_ERR_UNSUPPORTED);
    assert_int_equal(ok_gcm_begin(g, 1, NULL, 12), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_gcm_seal(g, iv, NULL, 0, buf, 16, buf, tag), OK_OK);  /* still usable */
    ok_gcm_free(g);
    ok_gcm_free(NULL);
}

/* ---- key wrap -------------------------------------------------------------------------------------- */

static void test_keywrap_round_trips(void **state)
{
    static const size_t kek_lens[] = {16, 24, 32};
    uint8_t kek[32], other[32], key[80], wrapped[96], out[96];
    size_t n, m;

    (void)state;
    fill(other, sizeof other, 99);
    for (size_t k = 0; k < 3; k++) {
        fill(kek, sizeof kek, (uint8_t)k);
        for (size_t len = 16; len <= 64; len += 8) { /* KW */
            fill(key, len, (uint8_t)len);
            assert_int_equal(ok_aes_kw_wrap(kek, kek_lens[k], key, len, wrapped, &n), OK_OK);
            assert_int_equal(n, len + 8);
            assert_int_equal(ok_aes_kw_unwrap(kek, kek_lens[k], wrapped, n, out, &m), OK_OK);
            assert_int_equal(m, len);
            assert_memory_equal(out, key, len);
            assert_int_equal(ok_aes_kw_unwrap(other, kek_lens[k], wrapped, n, out, &m), OK_ERR_AUTH);
            assert_int_equal(m, 0);
            wrapped[n - 1] ^= 1;
            assert_int_equal(ok_aes_kw_unwrap(kek, kek_lens[k], wrapped, n, out, &m), OK_ERR_AUTH);
        }
        for (size_t len = 1; len <= 72; len++) { /* KWP */
            fill(key, len, (uint8_t)(len + 3));
            assert_int_equal(ok_aes_kwp_wrap(kek, kek_lens[k], key, len, wrapped, &n), OK_OK);
            assert_int_equal(n, (len + 7) / 8 * 8 + 8);
            memset(out, 0, sizeof out);
            assert_int_equal(ok_aes_kwp_unwrap(kek, kek_lens[k], wrapped, n, out, &m), OK_OK);
            assert_int_equal(m, len);
            assert_memory_equal(out, key, len);
            assert_int_equal(ok_aes_kwp_unwrap(other, kek_lens[k], wrapped, n, out, &m), OK_ERR_AUTH);
            assert_true(all_zero(out, n - 8));
            wrapped[0] ^= 1;
            assert_int_equal(ok_aes_kwp_unwrap(kek, kek_lens[k], wrapped, n, out, &m), OK_ERR_AUTH);
        }
    }
}

static void test_keywrap_length_refusals(void **state)
{
    uint8_t kek[32] = {1}, in[64] = {2}, out[96];
    size_t n = 123;

    (void)state;
    assert_int_equal(ok_aes_kw_wrap(kek, 32, in, 0, out, &n), OK_ERR_INVALID_ARG);
    assert_int_equal(n, 0);
    assert_int_equal(ok_aes_kw_wrap(kek, 32, in, 8, out, &n), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_aes_kw_wrap(kek, 32, in, 17, out, &n), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_aes_kw_wrap(kek, 20, in, 16, out, &n), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_aes_kw_unwrap(kek, 32, in, 0, out, &n), OK_ERR_FORMAT);
    assert_int_equal(ok_aes_kw_unwrap(kek, 32, in, 16, out, &n), OK_ERR_FORMAT);
    assert_int_equal(ok_aes_kw_unwrap(kek, 32, in, 25, out, &n), OK_ERR_FORMAT);
    assert_int_equal(ok_aes_kwp_wrap(kek, 32, in, 0, out, &n), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_aes_kwp_wrap(kek, 0, in, 8, out, &n), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_aes_kwp_unwrap(kek, 32, in, 0, out, &n), OK_ERR_FORMAT);
    assert_int_equal(ok_aes_kwp_unwrap(kek, 32, in, 8, out, &n), OK_ERR_FORMAT);
    assert_int_equal(ok_aes_kwp_unwrap(kek, 32, in, 23, out, &n), OK_ERR_FORMAT);
    assert_int_equal(ok_aes_kwp_unwrap(kek, 32, in, 16, out, &n), OK_ERR_AUTH); /* right size, garbage */
    assert_int_equal(ok_aes_kw_unwrap(kek, 32, in, 24, out, &n), OK_ERR_AUTH);
    assert_int_equal(ok_aes_kw_wrap(kek, 32, NULL, 16, out, &n), OK_ERR_INVALID_ARG);
}

/* ---- RSA -------------------------------------------------------------------------------------------- */

/* 3072- and 4096-bit keys are generated once for the whole group (slow, more so under sanitizers). */
typedef struct {
    ok_pkey *rsa3072, *rsa4096;
} rsa_keys;

static int rsa_setup(void **state)
{
    rsa_keys *keys = calloc(1, sizeof *keys);

    if (keys == NULL || ok_pkey_generate_rsa(&keys->rsa3072, 3072) != OK_OK ||
        ok_pkey_generate_rsa(&keys->rsa4096, 4096) != OK_OK)
        return -1;
    *state = keys;
    return 0;
}

static int rsa_teardown(void **state)
{
    rsa_keys *keys = *state;

    ok_pkey_free(keys->rsa3072);
    ok_pkey_free(keys->rsa4096);
    free(keys);
    return 0;
}

static void oaep256_round_trip(const ok_pkey *k, unsigned bits)
{
    static const uint8_t label[] = "ownkey label";
    uint8_t msg[32], ct[512], pt[512];
    size_t n = 0, m = 0, size = bits / 8;
    ok_pkey *pub = NULL;

    assert_int_equal(ok_pkey_kind(k), OK_PKEY_RSA);
    assert_int_equal(ok_pkey_bits(k), bits);
    assert_int_equal(ok_pkey_size(k), size);
    assert_true(ok_pkey_is_private(k));
    assert_int_equal(ok_pkey_public_copy(k, &pub), OK_OK);
    assert_false(ok_pkey_is_private(pub));
    fill(msg, sizeof msg, (uint8_t)bits);

    assert_int_equal(ok_rsa_oaep_encrypt(pub, OK_HASH_SHA256, OK_HASH_SHA256, label, sizeof label, msg, sizeof msg,
                                         ct, &n), OK_OK);
    assert_int_equal(n, size);
    assert_int_equal(ok_rsa_oaep_decrypt(k, OK_HASH_SHA256, OK_HASH_SHA256, label, sizeof label, ct, n, pt, &m), OK_OK);
    assert_int_equal(m, sizeof msg);
    assert_memory_equal(pt, msg, sizeof msg);

    /* wrong label, wrong hash, tampered ciphertext, wrong length: one uniform error */
    const char *detail;
    assert_int_equal(ok_rsa_oaep_decrypt(k, OK_HASH_SHA256, OK_HASH_SHA256, label, 3, ct, n, pt, &m), OK_ERR_AUTH);
    assert_int_equal(m, 0);
    assert_true(all_zero(pt, size));
    detail = ok_err_message();
    char first[128];
    snprintf(first, sizeof first, "%s", detail);
    assert_int_equal(ok_rsa_oaep_decrypt(k, OK_HASH_SHA256, OK_HASH_SHA1, label, sizeof label, ct, n, pt, &m),
                     OK_ERR_AUTH);
    assert_string_equal(ok_err_message(), first);
    ct[10] ^= 1;
    assert_int_equal(ok_rsa_oaep_decrypt(k, OK_HASH_SHA256, OK_HASH_SHA256, label, sizeof label, ct, n, pt, &m),
                     OK_ERR_AUTH);
    assert_string_equal(ok_err_message(), first);
    assert_int_equal(ok_rsa_oaep_decrypt(k, OK_HASH_SHA256, OK_HASH_SHA256, label, sizeof label, ct + 1, n - 1, pt, &m),
                     OK_ERR_AUTH);
    assert_string_equal(ok_err_message(), first);

    /* a public key cannot decrypt; messages too long are refused before encryption */
    assert_int_equal(ok_rsa_oaep_decrypt(pub, OK_HASH_SHA256, OK_HASH_SHA256, NULL, 0, ct, n, pt, &m), OK_ERR_KEY);
    assert_int_equal(ok_rsa_oaep_encrypt(pub, OK_HASH_SHA256, OK_HASH_SHA256, NULL, 0, pt, size - 2 * 32 - 1, ct, &n),
                     OK_ERR_INVALID_ARG);
    assert_int_equal(ok_rsa_oaep_encrypt(pub, OK_HASH_SHA256, OK_HASH_SHA256, NULL, 0, pt, size - 2 * 32 - 2, ct, &n),
                     OK_OK);

    /* PKCS#1 v1.5 round trip */
    assert_int_equal(ok_rsa_pkcs1_encrypt(pub, msg, sizeof msg, ct, &n), OK_OK);
    assert_int_equal(ok_rsa_pkcs1_decrypt(k, ct, n, pt, &m), OK_OK);
    assert_int_equal(m, sizeof msg);
    assert_memory_equal(pt, msg, sizeof msg);
    ct[n - 1] ^= 1;
    assert_int_equal(ok_rsa_pkcs1_decrypt(k, ct, n, pt, &m), OK_ERR_AUTH);
    assert_int_equal(ok_rsa_pkcs1_encrypt(pub, pt, size - 10, ct, &n), OK_ERR_INVALID_ARG);
    ok_pkey_free(pub);
}

static void test_rsa_2048_generate_oaep(void **state)
{
    ok_pkey *k = NULL;

    (void)state;
    assert_int_equal(ok_pkey_generate_rsa(&k, 1024), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_pkey_generate_rsa(&k, 2048), OK_OK);
    oaep256_round_trip(k, 2048);
    ok_pkey_free(k);
}

/* Label-less OAEP decryptions reuse contexts kept with the key: threads sharing one key, ciphertexts
 * under two hash choices interleaved and tampered ones between, must each get their own answer. */
typedef struct {
    const ok_pkey *k;
    const uint8_t *ct256, *ct1;
    size_t n;
    int wrong;
} oaep_race;

static void *oaep_racer(void *arg)
{
    oaep_race *r = arg;
    uint8_t pt[256], bad[256];
    size_t m;
    memcpy(bad, r->ct256, r->n);
    bad[7] ^= 0x40;
    for (int i = 0; i < 40; i++) {
        int which = i % 3;
        const uint8_t *ct = which == 0 ? r->ct256 : which == 1 ? r->ct1 : bad;
        ok_hash h = which == 1 ? OK_HASH_SHA1 : OK_HASH_SHA256;
        ok_err rc = ok_rsa_oaep_decrypt(r->k, h, h, NULL, 0, ct, r->n, pt, &m);
        if (which == 2 ? rc != OK_ERR_AUTH : rc != OK_OK || m != 20 || pt[0] != (which ? 0xA1 : 0xB2))
            __atomic_add_fetch(&r->wrong, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static void test_oaep_decrypt_context_reuse(void **state)
{
    (void)state;
    ok_pkey *k = NULL;
    uint8_t m256[20], m1[20], ct256[256], ct1[256];
    size_t n256, n1;
    pthread_t t[4];

    memset(m256, 0xB2, sizeof m256);
    memset(m1, 0xA1, sizeof m1);
    assert_int_equal(ok_pkey_generate_rsa(&k, 2048), OK_OK);
    assert_int_equal(ok_rsa_oaep_encrypt(k, OK_HASH_SHA256, OK_HASH_SHA256, NULL, 0, m256, 20, ct256, &n256), OK_OK);
    assert_int_equal(ok_rsa_oaep_encrypt(k, OK_HASH_SHA1, OK_HASH_SHA1, NULL, 0, m1, 20, ct1, &n1), OK_OK);
    oaep_race r = {.k = k, .ct256 = ct256, .ct1 = ct1, .n = n256};
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, oaep_racer, &r), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(r.wrong, 0);
    ok_pkey_free(k); /* frees the kept contexts too (LeakSanitizer in CI) */
}

static void test_rsa_3072_4096_oaep(void **state)
{
    rsa_keys *keys = *state;

    oaep256_round_trip(keys->rsa3072, 3072);
    oaep256_round_trip(keys->rsa4096, 4096);
}

static void sign_verify_case(const ok_pkey *k, const ok_pkey *wrong, ok_sig_alg alg, int deterministic)
{
    uint8_t msg[100], sig[600], sig2[600];
    size_t n = 0, n2 = 0;
    ok_pkey *pub = NULL;

    fill(msg, sizeof msg, (uint8_t)alg);
    assert_int_equal(ok_pkey_public_copy(k, &pub), OK_OK);
    assert_int_equal(ok_sign(k, alg, msg, sizeof msg, sig, &n), OK_OK);
    assert_int_equal(ok_verify(pub, alg, msg, sizeof msg, sig, n), OK_OK);
    assert_int_equal(ok_verify(k, alg, msg, sizeof msg, sig, n), OK_OK);
    assert_int_equal(ok_sign(k, alg, msg, sizeof msg, sig2, &n2), OK_OK);
    assert_int_equal(n, n2);
    if (deterministic)
        assert_memory_equal(sig, sig2, n);
    else
        assert_memory_not_equal(sig, sig2, n);
    /* tampering: message, signature, length, key */
    msg[0] ^= 1;
    assert_int_equal(ok_verify(pub, alg, msg, sizeof msg, sig, n), OK_ERR_AUTH);
    msg[0] ^= 1;
    sig[n / 2] ^= 4;
    assert_int_equal(ok_verify(pub, alg, msg, sizeof msg, sig, n), OK_ERR_AUTH);
    sig[n / 2] ^= 4;
    assert_int_equal(ok_verify(pub, alg, msg, sizeof msg, sig, n - 1), OK_ERR_AUTH);
    assert_int_equal(ok_verify(wrong, alg, msg, sizeof msg, sig, n), OK_ERR_AUTH);
    /* a public key cannot sign */
    assert_int_equal(ok_sign(pub, alg, msg, sizeof msg, sig, &n), OK_ERR_KEY);
    ok_pkey_free(pub);
}

static void test_rsa_signatures(void **state)
{
    rsa_keys *keys = *state;
    uint8_t msg[10] = {1, 2, 3}, sig[512];
    size_t n = 0;
    ok_pkey *k = NULL;

    assert_int_equal(ok_pkey_generate_rsa(&k, 2048), OK_OK);
    sign_verify_case(k, keys->rsa3072, OK_SIG_RS256, 1);
    sign_verify_case(keys->rsa3072, k, OK_SIG_RS384, 1);
    sign_verify_case(k, keys->rsa3072, OK_SIG_RS512, 1);
    sign_verify_case(k, keys->rsa3072, OK_SIG_PS256, 0);
    sign_verify_case(keys->rsa3072, k, OK_SIG_PS384, 0);
    sign_verify_case(keys->rsa4096, k, OK_SIG_PS512, 0);

    /* PS256 = PSS, SHA-256, MGF1-SHA-256, 32-byte salt; other salt lengths are refused */
    assert_int_equal(ok_sign(k, OK_SIG_PS256, msg, sizeof msg, sig, &n), OK_OK);
    assert_int_equal(ok_rsa_pss_verify(k, OK_HASH_SHA256, OK_HASH_SHA256, 32, msg, sizeof msg, sig, n), OK_OK);
    assert_int_equal(ok_rsa_pss_verify(k, OK_HASH_SHA256, OK_HASH_SHA256, 20, msg, sizeof msg, sig, n), OK_ERR_AUTH);
    assert_int_equal(ok_rsa_pss_verify(k, OK_HASH_SHA256, OK_HASH_SHA1, 32, msg, sizeof msg, sig, n), OK_ERR_AUTH);
    assert_int_equal(ok_rsa_pss_verify(k, OK_HASH_SHA256, OK_HASH_SHA256, -1, msg, sizeof msg, sig, n),
                     OK_ERR_INVALID_ARG);
    assert_int_equal(ok_verify(k, OK_SIG_RS256, msg, sizeof msg, sig, n), OK_ERR_AUTH); /* wrong primitive */

    /* RS256 = PKCS#1 v1.5 with SHA-256; no new SHA-1 signatures */
    assert_int_equal(ok_sign(k, OK_SIG_RS256, msg, sizeof msg, sig, &n), OK_OK);
    assert_int_equal(ok_rsa_pkcs1_verify(k, OK_HASH_SHA256, msg, sizeof msg, sig, n), OK_OK);
    assert_int_equal(ok_rsa_pkcs1_verify(k, OK_HASH_SHA384, msg, sizeof msg, sig, n), OK_ERR_AUTH);
    assert_int_equal(ok_rsa_pkcs1_sign(k, OK_HASH_SHA256, msg, sizeof msg, sig, &n), OK_OK);
    assert_int_equal(ok_verify(k, OK_SIG_RS256, msg, sizeof msg, sig, n), OK_OK);
    assert_int_equal(ok_rsa_pkcs1_sign(k, OK_HASH_SHA1, msg, sizeof msg, sig, &n), OK_ERR_UNSUPPORTED);

    /* an RSA key is no ECDSA key */
    assert_int_equal(ok_sign(k, OK_SIG_ES256, msg, sizeof msg, sig, &n), OK_ERR_KEY);
    assert_int_equal(ok_verify(k, OK_SIG_ES256, msg, sizeof msg, sig, 64), OK_ERR_KEY);
    assert_int_equal(ok_sign(k, (ok_sig_alg)99, msg, sizeof msg, sig, &n), OK_ERR_UNSUPPORTED);
    ok_pkey_free(k);
}

/* ---- ECDSA ----------------------------------------------------------------------------------------- */

static void test_ecdsa(void **state)
{
    ok_pkey *p256 = NULL, *p256b = NULL, *p384 = NULL, *p384b = NULL, *none = NULL;
    uint8_t msg[33] = "the quick brown fox jumps over..", sig[128], der[128];
    size_t n = 0, dn = 0;

    (void)state;
    assert_int_equal(ok_pkey_generate_ec(&p256, OK_CURVE_P256), OK_OK);
    assert_int_equal(ok_pkey_generate_ec(&p256b, OK_CURVE_P256), OK_OK);
    assert_int_equal(ok_pkey_generate_ec(&p384, OK_CURVE_P384), OK_OK);
    assert_int_equal(ok_pkey_generate_ec(&p384b, OK_CURVE_P384), OK_OK);
    assert_int_equal(ok_pkey_generate_ec(&none, (ok_curve)7), OK_ERR_INVALID_ARG);
    assert_null(none);
    assert_int_equal(ok_pkey_kind(p256), OK_PKEY_EC);
    assert_int_equal(ok_pkey_bits(p256), 256);
    assert_int_equal(ok_pkey_size(p256), 64);
    assert_int_equal(ok_pkey_size(p384), 96);

    sign_verify_case(p256, p256b, OK_SIG_ES256, 0);
    sign_verify_case(p384, p384b, OK_SIG_ES384, 0);

    /* raw signatures are exactly r||s */
    assert_int_equal(ok_sign(p256, OK_SIG_ES256, msg, sizeof msg, sig, &n), OK_OK);
    assert_int_equal(n, 64);
    assert_int_equal(ok_verify(p256, OK_SIG_ES256, msg, sizeof msg, sig, 63), OK_ERR_AUTH);
    assert_int_equal(ok_verify(p256, OK_SIG_ES256, msg, sizeof msg, sig, 65), OK_ERR_AUTH);
    memset(der, 0, 64);
    assert_int_equal(ok_verify(p256, OK_SIG_ES256, msg, sizeof msg, der, 64), OK_ERR_AUTH); /* r = s = 0 */
    assert_int_equal(ok_verify(p256b, OK_SIG_ES256, msg, sizeof msg, sig, 64), OK_ERR_AUTH);

    /* DER form */
    assert_int_equal(ok_sign(p256, OK_SIG_ES256_DER, msg, sizeof msg, der, &dn), OK_OK);
    assert_true(dn >= 8 && dn <= 72 && der[0] == 0x30);
    assert_int_equal(ok_verify(p256, OK_SIG_ES256_DER, msg, sizeof msg, der, dn), OK_OK);
    assert_int_equal(ok_verify(p256, OK_SIG_ES256, msg, sizeof msg, der, dn), OK_ERR_AUTH);
    assert_int_equal(ok_verify(p256, OK_SIG_ES256_DER, msg, sizeof msg, sig, 64), OK_ERR_AUTH);
    der[dn] = 0; /* trailing garbage is not DER */
    assert_int_equal(ok_verify(p256, OK_SIG_ES256_DER, msg, sizeof msg, der, dn + 1), OK_ERR_AUTH);

    /* curve and family mismatches */
    assert_int_equal(ok_sign(p256, OK_SIG_ES384, msg, sizeof msg, sig, &n), OK_ERR_KEY);
    assert_int_equal(ok_sign(p384, OK_SIG_ES256, msg, sizeof msg, sig, &n), OK_ERR_KEY);
    assert_int_equal(ok_sign(p256, OK_SIG_RS256, msg, sizeof msg, sig, &n), OK_ERR_KEY);
    assert_int_equal(ok_sign(p256, OK_SIG_PS256, msg, sizeof msg, sig, &n), OK_ERR_KEY);
    assert_int_equal(ok_rsa_oaep_encrypt(p256, OK_HASH_SHA256, OK_HASH_SHA256, NULL, 0, msg, 4, sig, &n),
                     OK_ERR_KEY);
    ok_pkey_free(p256);
    ok_pkey_free(p256b);
    ok_pkey_free(p384);
    ok_pkey_free(p384b);
}

/* ---- signatures over digests (the vault's sign/verify) --------------------------------------------- */

static size_t md_of(ok_sig_alg alg, const uint8_t *msg, size_t len, uint8_t *digest)
{
    const EVP_MD *md = alg == OK_SIG_RS384 || alg == OK_SIG_PS384 || alg == OK_SIG_ES384 ? EVP_sha384()
                       : alg == OK_SIG_RS512 || alg == OK_SIG_PS512 ? EVP_sha512() : EVP_sha256();
    unsigned int n = 0;

    assert_int_equal(EVP_Digest(msg, len, digest, &n, md, NULL), 1);
    return n;
}

/* sign_digest(H(msg)) verifies with verify(msg), sign(msg) verifies with verify_digest(H(msg)), and a
 * digest of the wrong length is refused. */
static void digest_case(const ok_pkey *k, ok_sig_alg alg)
{
    uint8_t msg[77], digest[64], sig[600];
    size_t n = 0, dlen;
    ok_pkey *pub = NULL;

    fill(msg, sizeof msg, (uint8_t)(alg + 3));
    dlen = md_of(alg, msg, sizeof msg, digest);
    assert_int_equal(ok_pkey_public_copy(k, &pub), OK_OK);

    assert_int_equal(ok_sign_digest(k, alg, digest, dlen, sig, &n), OK_OK);
    assert_int_equal(ok_verify(pub, alg, msg, sizeof msg, sig, n), OK_OK);
    assert_int_equal(ok_verify_digest(pub, alg, digest, dlen, sig, n), OK_OK);
    digest[1] ^= 1;
    assert_int_equal(ok_verify_digest(pub, alg, digest, dlen, sig, n), OK_ERR_AUTH);
    digest[1] ^= 1;
    assert_int_equal(ok_sign(k, alg, msg, sizeof msg, sig, &n), OK_OK);
    assert_int_equal(ok_verify_digest(pub, alg, digest, dlen, sig, n), OK_OK);
    sig[3] ^= 0x10;
    assert_int_equal(ok_verify_digest(pub, alg, digest, dlen, sig, n), OK_ERR_AUTH);

    assert_int_equal(ok_sign_digest(k, alg, digest, dlen - 1, sig, &n), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_sign_digest(k, alg, msg, sizeof msg, sig, &n), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_verify_digest(pub, alg, digest, dlen + 1, sig, n), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_sign_digest(pub, alg, digest, dlen, sig, &n), OK_ERR_KEY);
    ok_pkey_free(pub);
}

static void test_sign_digest(void **state)
{
    rsa_keys *keys = *state;
    ok_pkey *rsa = NULL, *p256 = NULL, *p384 = NULL;

    assert_int_equal(ok_pkey_generate_rsa(&rsa, 2048), OK_OK);
    assert_int_equal(ok_pkey_generate_ec(&p256, OK_CURVE_P256), OK_OK);
    assert_int_equal(ok_pkey_generate_ec(&p384, OK_CURVE_P384), OK_OK);
    for (ok_sig_alg alg = OK_SIG_RS256; alg <= OK_SIG_PS512; alg++)
        digest_case(alg == OK_SIG_RS384 || alg == OK_SIG_PS384 ? keys->rsa3072 : rsa, alg);
    digest_case(p256, OK_SIG_ES256);
    digest_case(p384, OK_SIG_ES384);
    ok_pkey_free(rsa);
    ok_pkey_free(p256);
    ok_pkey_free(p384);
}

/* PKCS#8 export round-trips through ok_pkey_from_der and is refused for public keys. */
static void test_private_der(void **state)
{
    rsa_keys *keys = *state;
    const ok_pkey *ks[2] = {keys->rsa3072, NULL};
    ok_pkey *ec = NULL, *back = NULL, *pub = NULL;
    uint8_t *der = NULL, msg[5] = "hello", sig[512];
    size_t len = 0, n = 0;

    assert_int_equal(ok_pkey_generate_ec(&ec, OK_CURVE_P384), OK_OK);
    ks[1] = ec;
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(ok_pkey_private_der(ks[i], &der, &len), OK_OK);
        assert_true(len > 100);
        assert_int_equal(ok_pkey_from_der(&back, der, len, 1), OK_OK);
        assert_true(ok_pkey_is_private(back));
        /* the same key: the copy signs for the original */
        assert_int_equal(ok_sign(back, i == 0 ? OK_SIG_PS256 : OK_SIG_ES384, msg, 5, sig, &n), OK_OK);
        assert_int_equal(ok_verify(ks[i], i == 0 ? OK_SIG_PS256 : OK_SIG_ES384, msg, 5, sig, n), OK_OK);
        ok_secure_free(der, len);
        ok_pkey_free(back);
    }
    assert_int_equal(ok_pkey_public_copy(ec, &pub), OK_OK);
    assert_int_equal(ok_pkey_private_der(pub, &der, &len), OK_ERR_KEY);
    assert_null(der);
    assert_int_equal(ok_pkey_private_der(NULL, &der, &len), OK_ERR_INVALID_ARG);
    ok_pkey_free(pub);
    ok_pkey_free(ec);
}

/* ---- key loading ------------------------------------------------------------------------------------ */

static void test_pkey_loading(void **state)
{
    rsa_keys *keys = *state;
    ok_pkey *k = NULL, *ec = NULL;
    uint8_t *der = NULL, *der2 = NULL, *n_buf, *e_buf;
    size_t len = 0, len2 = 0;
    BIGNUM *bn_n = NULL, *bn_e = NULL;
    int n_len, e_len;

    /* SPKI round trip */
    assert_int_equal(ok_pkey_public_der(keys->rsa3072, &der, &len), OK_OK);
    assert_int_equal(ok_pkey_from_der(&k, der, len, 0), OK_OK);
    assert_false(ok_pkey_is_private(k));
    assert_int_equal(ok_pkey_bits(k), 3072);
    ok_pkey_free(k);
    k = NULL;
    assert_int_not_equal(ok_pkey_from_der(&k, der, len, 1), OK_OK);       /* not a PKCS#8 */
    assert_int_equal(ok_pkey_from_der(&k, der, len - 1, 0), OK_ERR_FORMAT); /* truncated */
    der2 = malloc(len + 1);
    memcpy(der2, der, len);
    der2[len] = 0;
    assert_int_equal(ok_pkey_from_der(&k, der2, len + 1, 0), OK_ERR_FORMAT); /* trailing byte */
    assert_null(k);
    free(der2);
    der2 = NULL;

    /* modulus and exponent, with leading zero bytes */
    assert_int_equal(EVP_PKEY_get_bn_param(ok_pkey_evp(keys->rsa3072), OSSL_PKEY_PARAM_RSA_N, &bn_n), 1);
    assert_int_equal(EVP_PKEY_get_bn_param(ok_pkey_evp(keys->rsa3072), OSSL_PKEY_PARAM_RSA_E, &bn_e), 1);
    n_len = BN_num_bytes(bn_n) + 1;
    e_len = BN_num_bytes(bn_e) + 2;
    n_buf = calloc(1, (size_t)n_len);
    e_buf = calloc(1, (size_t)e_len);
    BN_bn2binpad(bn_n, n_buf, n_len);
    BN_bn2binpad(bn_e, e_buf, e_len);
    assert_int_equal(ok_pkey_rsa_from_public(&k, n_buf, (size_t)n_len, e_buf, (size_t)e_len), OK_OK);
    assert_int_equal(ok_pkey_public_der(k, &der2, &len2), OK_OK);
    assert_int_equal(len, len2);
    assert_memory_equal(der, der2, len);
    ok_pkey_free(k);
    k = NULL;
    n_buf[n_len - 1] ^= 1; /* even modulus */
    assert_int_equal(ok_pkey_rsa_from_public(&k, n_buf, (size_t)n_len, e_buf, (size_t)e_len), OK_ERR_KEY);
    n_buf[n_len - 1] ^= 1;
    e_buf[e_len - 1] = 1; /* e = 1 */
    e_buf[e_len - 2] = 0;
    e_buf[e_len - 3] = 0;
    assert_int_equal(ok_pkey_rsa_from_public(&k, n_buf, (size_t)n_len, e_buf, (size_t)e_len), OK_ERR_KEY);
    assert_int_equal(ok_pkey_rsa_from_public(&k, n_buf, 0, e_buf, (size_t)e_len), OK_ERR_KEY);
    free(n_buf);
    free(e_buf);
    BN_free(bn_n);
    BN_free(bn_e);
    free(der);
    free(der2);

    /* EC key: public copy, SPKI, garbage */
    assert_int_equal(ok_pkey_generate_ec(&ec, OK_CURVE_P384), OK_OK);
    assert_int_equal(ok_pkey_public_der(ec, &der, &len), OK_OK);
    assert_int_equal(ok_pkey_from_der(&k, der, len, 0), OK_OK);
    assert_int_equal(ok_pkey_kind(k), OK_PKEY_EC);
    assert_int_equal(ok_pkey_bits(k), 384);
    ok_pkey_free(k);
    k = NULL;
    free(der);
    assert_int_equal(ok_pkey_from_der(&k, (const uint8_t *)"\x30\x03\x02\x01\x01", 5, 0), OK_ERR_FORMAT);
    assert_int_equal(ok_pkey_from_der(&k, (const uint8_t *)"\x30\x03\x02\x01\x01", 5, 1), OK_ERR_FORMAT);
    static const char bad_pem[] = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
    assert_int_not_equal(ok_pkey_from_pem(&k, bad_pem, strlen(bad_pem)), OK_OK);
    assert_null(k);
    ok_pkey_free(ec);
    ok_pkey_free(NULL);
}

/* ---- HKDF, HMAC, SHA-256 ------------------------------------------------------------------------------ */

static void test_kdf_limits_and_kats(void **state)
{
    /* RFC 5869 A.1 */
    static const uint8_t ikm[22] = {0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b,
                                    0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b};
    static const uint8_t salt[13] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    static const uint8_t info[10] = {0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9};
    static const uint8_t okm[42] = {0x3c, 0xb2, 0x5f, 0x25, 0xfa, 0xac, 0xd5, 0x7a, 0x90, 0x43, 0x4f, 0x64, 0xd0, 0x36,
                                    0x2f, 0x2a, 0x2d, 0x2d, 0x0a, 0x90, 0xcf, 0x1a, 0x5a, 0x4c, 0x5d, 0xb0, 0x2d, 0x56,
                                    0xec, 0xc4, 0xc5, 0xbf, 0x34, 0x00, 0x72, 0x08, 0xd5, 0xb8, 0x87, 0x18, 0x58, 0x65};
    /* SHA-256("abc") */
    static const uint8_t abc[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
                                    0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
                                    0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    uint8_t *out = malloc(OK_HKDF_SHA256_MAX + 1), mac[32], mac2[32];

    (void)state;
    assert_int_equal(ok_hkdf_sha256(salt, sizeof salt, ikm, sizeof ikm, info, sizeof info, out, 42), OK_OK);
    assert_memory_equal(out, okm, 42);
    assert_int_equal(ok_hkdf_sha256(salt, 13, ikm, 22, info, 10, out, 0), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_hkdf_sha256(salt, 13, ikm, 22, info, 10, out, OK_HKDF_SHA256_MAX + 1), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_hkdf_sha256(salt, 13, ikm, 22, info, 10, out, OK_HKDF_SHA256_MAX), OK_OK);
    assert_memory_equal(out, okm, 42); /* a longer output extends the shorter one */
    assert_int_equal(ok_hkdf_sha256(NULL, 0, NULL, 0, NULL, 0, out, 32), OK_OK);
    free(out);

    assert_int_equal(ok_sha256((const uint8_t *)"abc", 3, mac), OK_OK);
    assert_memory_equal(mac, abc, 32);
    assert_int_equal(ok_sha256(NULL, 0, mac), OK_OK);
    assert_int_equal(ok_hmac_sha256(NULL, 0, NULL, 0, mac), OK_OK);
    assert_int_equal(ok_hmac_sha256((const uint8_t *)"", 0, (const uint8_t *)"x", 0, mac2), OK_OK);
    assert_memory_equal(mac, mac2, 32);
}

/* RFC 7914 §12 vector 2, and the parameter limits. */
static void test_scrypt(void **state)
{
    static const uint8_t want[64] = {
        0xfd, 0xba, 0xbe, 0x1c, 0x9d, 0x34, 0x72, 0x00, 0x78, 0x56, 0xe7, 0x19, 0x0d, 0x01, 0xe9, 0xfe,
        0x7c, 0x6a, 0xd7, 0xcb, 0xc8, 0x23, 0x78, 0x30, 0xe7, 0x73, 0x76, 0x63, 0x4b, 0x37, 0x31, 0x62,
        0x2e, 0xaf, 0x30, 0xd9, 0x2e, 0x22, 0xa3, 0x88, 0x6f, 0xf1, 0x09, 0x27, 0x9d, 0x98, 0x30, 0xda,
        0xc7, 0x27, 0xaf, 0xb9, 0x4a, 0x83, 0xee, 0x6d, 0x83, 0x60, 0xcb, 0xdf, 0xa2, 0xcc, 0x06, 0x40};
    const uint8_t *pw = (const uint8_t *)"password", *salt = (const uint8_t *)"NaCl";
    uint8_t out[65];

    (void)state;
    assert_int_equal(ok_scrypt(pw, 8, salt, 4, 1024, 8, 16, out, 64), OK_OK);
    assert_memory_equal(out, want, 64);
    /* N not 2^k, r = 0, p = 0, output 65 or 0 bytes; then 2 GiB of memory, p = 17 */
    static const struct { uint64_t n; uint32_t r, p; size_t len; ok_err want; } bad[] = {
        {1000, 8, 1, 32, OK_ERR_INVALID_ARG}, {1024, 0, 1, 32, OK_ERR_INVALID_ARG},
        {1024, 8, 0, 32, OK_ERR_INVALID_ARG}, {1024, 8, 1, 65, OK_ERR_INVALID_ARG},
        {1024, 8, 1, 0, OK_ERR_INVALID_ARG},  {1u << 21, 8, 1, 32, OK_ERR_LIMIT}, {1024, 8, 17, 32, OK_ERR_LIMIT}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(ok_scrypt(pw, 8, salt, 4, bad[i].n, bad[i].r, bad[i].p, out, bad[i].len), bad[i].want);
}

int main(void)
{
    const struct CMUnitTest basic[] = {
        cmocka_unit_test(test_random_and_ct_equal),
        cmocka_unit_test(test_oaep_decrypt_context_reuse),
        cmocka_unit_test(test_gcm_incremental_matches_oneshot),
        cmocka_unit_test(test_gcm_in_place),
        cmocka_unit_test(test_gcm_reuse_many_ivs),
        cmocka_unit_test(test_gcm_tamper),
        cmocka_unit_test(test_gcm_misuse),
        cmocka_unit_test(test_keywrap_round_trips),
        cmocka_unit_test(test_keywrap_length_refusals),
        cmocka_unit_test(test_ecdsa),
        cmocka_unit_test(test_kdf_limits_and_kats),
        cmocka_unit_test(test_scrypt),
    };
    const struct CMUnitTest rsa[] = {
        cmocka_unit_test(test_rsa_2048_generate_oaep),
        cmocka_unit_test(test_rsa_3072_4096_oaep),
        cmocka_unit_test(test_rsa_signatures),
        cmocka_unit_test(test_pkey_loading),
        cmocka_unit_test(test_sign_digest),
        cmocka_unit_test(test_private_der),
    };
    int failed = cmocka_run_group_tests_name("crypto", basic, NULL, NULL);
    failed += cmocka_run_group_tests_name("crypto_rsa", rsa, rsa_setup, rsa_teardown);
    return failed;
}
