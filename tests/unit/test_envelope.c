/* Tests of the envelope format (src/envelope): round trips at frame edges, a multi-GiB stream in constant
 * memory, bit flips, truncation, frame reordering, any-of/all-of, key commitment, hard limits, and
 * random-access opening of single frames. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ownkey/crypto.h"
#include "ownkey/envelope.h"
#include "ownkey/provider.h"

#define FRAME 4096u

/* ---- Helpers ----------------------------------------------------------------------------------- */

static ok_provider *oct_key(uint8_t fill, const char *kid)
{
    uint8_t k[32];
    memset(k, fill, sizeof k);
    ok_jwk jwk = {.kty = OK_JWK_OCT, .kid = (char *)kid, .k = k, .k_len = sizeof k};
    ok_provider *p = NULL;
    assert_int_equal(ok_file_provider_from_jwk(&jwk, &p), OK_OK);
    return p;
}

static ok_provider *rsa_key(ok_provider **public_out)
{
    ok_jwk jwk = {.kty = OK_JWK_RSA};
    assert_int_equal(ok_pkey_generate_rsa(&jwk.pkey, 2048), OK_OK);
    ok_provider *p = NULL;
    assert_int_equal(ok_file_provider_from_jwk(&jwk, &p), OK_OK);
    if (public_out) {
        ok_jwk pub = {.kty = OK_JWK_RSA};
        assert_int_equal(ok_pkey_public_copy(jwk.pkey, &pub.pkey), OK_OK);
        assert_int_equal(ok_file_provider_from_jwk(&pub, public_out), OK_OK);
        ok_pkey_free(pub.pkey);
    }
    ok_pkey_free(jwk.pkey);
    return p;
}

typedef struct {
    const uint8_t *data;
    size_t len;
    size_t pos;
} mem_source;

static ok_err mem_read(void *ctx, uint8_t *buf, size_t len, size_t *got)
{
    mem_source *m = ctx;
    size_t n = m->len - m->pos < len ? m->len - m->pos : len;
    if (n > 1000 && n % 3 == 0)
        n = n / 3; /* short reads exercise the stream's refill logic */
    memcpy(buf, m->data + m->pos, n);
    m->pos += n;
    *got = n;
    return OK_OK;
}

static ok_err buf_write(void *ctx, const uint8_t *data, size_t len)
{
    return ok_buf_put(ctx, data, len);
}

static void pattern(uint8_t *p, size_t len, uint32_t seed)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)((i * 2654435761u + seed) >> 7);
}

static ok_err encrypt_buf(ok_provider **keys, size_t n, ok_env_mode mode, const uint8_t *pt, size_t len,
                          uint32_t frame, unsigned threads, ok_buf *out)
{
    ok_env_encrypt_params p = {.recipients = keys, .recipient_count = n, .mode = mode, .frame_size = frame};
    ok_stream_options o = {.threads = threads};
    mem_source src = {.data = pt, .len = len};
    ok_buf_init(out, 0);
    return ok_env_encrypt_stream(&p, (ok_reader){mem_read, &src}, (ok_writer){buf_write, out}, &o);
}

static ok_err decrypt_buf(ok_provider **keys, size_t n, const uint8_t *ct, size_t len, unsigned threads, ok_buf *out)
{
    ok_stream_options o = {.threads = threads};
    mem_source src = {.data = ct, .len = len};
    ok_buf_init(out, 0);
    return ok_env_decrypt_stream(keys, n, (ok_reader){mem_read, &src}, (ok_writer){buf_write, out}, &o);
}

static size_t header_len_of(const ok_buf *ct)
{
    return ok_load_u32(ct->data + 7);
}

/* ---- Round trips ------------------------------------------------------------------------------- */

static void round_trip(size_t len, unsigned threads)
{
    ok_provider *k = oct_key(1, "k1");
    uint8_t *pt = malloc(len + 1);
    pattern(pt, len, (uint32_t)len);
    ok_buf ct, back;
    assert_int_equal(encrypt_buf(&k, 1, OK_ENV_ANY_OF, pt, len, FRAME, threads, &ct), OK_OK);
    size_t frames = len / FRAME + 1;
    assert_int_equal(ct.len, header_len_of(&ct) + len + frames * OK_ENV_FRAME_OVERHEAD - (len && len % FRAME == 0 ? 20 : 0));
    assert_int_equal(decrypt_buf(&k, 1, ct.data, ct.len, threads, &back), OK_OK);
    assert_int_equal(back.len, len);
    if (len)
        assert_memory_equal(back.data, pt, len);
    ok_buf_free(&ct);
    ok_buf_free(&back);
    free(pt);
    ok_provider_free(k);
}

static void test_round_trip_sizes(void **state)
{
    (void)state;
    const size_t sizes[] = {0, 1, FRAME - 1, FRAME, FRAME + 1, 2 * FRAME, 37 * FRAME + 123, 200 * FRAME};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        round_trip(sizes[i], 1);
        round_trip(sizes[i], 2);
        round_trip(sizes[i], 3);
    }
}

static void test_default_frame_and_threads(void **state)
{
    (void)state;
    ok_provider *k = oct_key(2, "k2");
    size_t len = 3 * OK_ENV_DEFAULT_FRAME + 5;
    uint8_t *pt = malloc(len);
    pattern(pt, len, 9);
    ok_buf ct, back;
    assert_int_equal(encrypt_buf(&k, 1, 0, pt, len, 0, 0, &ct), OK_OK);
    ok_env_header *h = NULL;
    assert_int_equal(ok_env_header_parse(ct.data, header_len_of(&ct), &h), OK_OK);
    assert_int_equal(h->frame_size, OK_ENV_DEFAULT_FRAME);
    assert_int_equal(h->mode, OK_ENV_ANY_OF);
    ok_env_header_free(h);
    /* Encrypted with all cores, decrypted with one: the output is the same. */
    assert_int_equal(decrypt_buf(&k, 1, ct.data, ct.len, 1, &back), OK_OK);
    assert_int_equal(back.len, len);
    assert_memory_equal(back.data, pt, len);
    ok_buf_free(&ct);
    ok_buf_free(&back);
    free(pt);
    ok_provider_free(k);
}

/* ---- A multi-GiB stream through a pipe, in constant memory --------------------------------------- */

#define BIG_STREAM (2560ull * 1024 * 1024) /* 2.5 GiB: past 2^31 and 2^32 frame-size boundaries */

static uint64_t word_at(uint64_t index)
{
    return index * 0x9E3779B97F4A7C15ull ^ (index >> 7);
}

typedef struct {
    uint64_t pos;
    uint64_t len;
    int mismatch;
} generator;

static uint8_t byte_at(uint64_t off)
{
    return (uint8_t)(word_at(off / 8) >> (8 * (off % 8)));
}

static ok_err gen_read(void *ctx, uint8_t *buf, size_t len, size_t *got)
{
    generator *g = ctx;
    uint64_t left = g->len - g->pos;
    size_t n = left < len ? (size_t)left : len;
    size_t i = 0;
    for (; i < n && (g->pos + i) % 8; i++)
        buf[i] = byte_at(g->pos + i);
    for (; i + 8 <= n; i += 8) {
        uint64_t w = word_at((g->pos + i) / 8);
        memcpy(buf + i, &w, 8);
    }
    for (; i < n; i++)
        buf[i] = byte_at(g->pos + i);
    g->pos += n;
    *got = n;
    return OK_OK;
}

static ok_err gen_check(void *ctx, const uint8_t *buf, size_t len)
{
    generator *g = ctx;
    size_t i = 0;
    for (; i < len && (g->pos + i) % 8; i++)
        g->mismatch |= buf[i] != byte_at(g->pos + i);
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, buf + i, 8);
        g->mismatch |= w != word_at((g->pos + i) / 8);
    }
    for (; i < len; i++)
        g->mismatch |= buf[i] != byte_at(g->pos + i);
    g->pos += len;
    return OK_OK;
}

typedef struct {
    ok_provider *key;
    int fd;
    ok_err rc;
} encrypt_job;

static void *encrypt_thread(void *arg)
{
    encrypt_job *j = arg;
    generator g = {.len = BIG_STREAM};
    ok_fd_io io = {.fd = j->fd};
    ok_env_encrypt_params p = {.recipients = &j->key, .recipient_count = 1};
    j->rc = ok_env_encrypt_stream(&p, (ok_reader){gen_read, &g}, ok_fd_writer(&io), NULL);
    close(j->fd);
    return NULL;
}

static void test_multi_gib_stream(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    encrypt_job job = {.key = oct_key(3, "big"), .fd = fds[1]};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, encrypt_thread, &job), 0);
    generator check = {.len = BIG_STREAM};
    ok_fd_io in = {.fd = fds[0]};
    ok_err rc = ok_env_decrypt_stream(&job.key, 1, ok_fd_reader(&in), (ok_writer){gen_check, &check}, NULL);
    pthread_join(t, NULL);
    close(fds[0]);
    assert_int_equal(job.rc, OK_OK);
    assert_int_equal(rc, OK_OK);
    assert_int_equal(check.pos, BIG_STREAM);
    assert_false(check.mismatch);
    ok_provider_free(job.key);
}

/* ---- Tampering ---------------------------------------------------------------------------------- */

static void small_envelope(ok_provider *k, ok_buf *ct, uint8_t *pt, size_t len)
{
    pattern(pt, len, 77);
    assert_int_equal(encrypt_buf(&k, 1, OK_ENV_ANY_OF, pt, len, 64, 1, ct), OK_OK);
}

static void test_every_bit_flip_rejected(void **state)
{
    (void)state;
    ok_provider *k = oct_key(4, "flip");
    uint8_t pt[150];
    ok_buf ct, back;
    small_envelope(k, &ct, pt, sizeof pt); /* 3 frames of 64 bytes: 64, 64, final 22 */
    for (size_t bit = 0; bit < ct.len * 8; bit++) {
        ct.data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        ok_err rc = decrypt_buf(&k, 1, ct.data, ct.len, 1, &back);
        ct.data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        if (rc == OK_OK)
            fail_msg("bit flip at bit %zu (byte %zu) was accepted", bit, bit / 8);
        ok_buf_free(&back);
    }
    assert_int_equal(decrypt_buf(&k, 1, ct.data, ct.len, 1, &back), OK_OK);
    ok_buf_free(&back);
    ok_buf_free(&ct);
    ok_provider_free(k);
}

static void test_truncation_rejected(void **state)
{
    (void)state;
    ok_provider *k = oct_key(5, "trunc");
    uint8_t pt[200];
    ok_buf ct, back;
    small_envelope(k, &ct, pt, sizeof pt); /* frames: 64, 64, 64, final 8 */
    size_t h = header_len_of(&ct);
    for (size_t cut = 0; cut < ct.len; cut++) {
        ok_err rc = decrypt_buf(&k, 1, ct.data, cut, 1, &back);
        if (rc == OK_OK)
            fail_msg("truncation to %zu bytes accepted", cut);
        int at_frame_boundary = cut >= h && (cut - h) % (64 + OK_ENV_FRAME_OVERHEAD) == 0;
        if (at_frame_boundary)
            assert_int_equal(rc, OK_ERR_TRUNCATED);
        ok_buf_free(&back);
    }
    ok_buf_free(&ct);
    ok_provider_free(k);
}

static void test_frame_reorder_delete_duplicate(void **state)
{
    (void)state;
    ok_provider *k = oct_key(6, "order");
    uint8_t pt[200];
    ok_buf ct, back, bad;
    small_envelope(k, &ct, pt, sizeof pt);
    size_t h = header_len_of(&ct), w = 64 + OK_ENV_FRAME_OVERHEAD;
    uint8_t tmp[64 + OK_ENV_FRAME_OVERHEAD];

    /* Swap frames 1 and 2. */
    memcpy(tmp, ct.data + h, w);
    memmove(ct.data + h, ct.data + h + w, w);
    memcpy(ct.data + h + w, tmp, w);
    assert_int_equal(decrypt_buf(&k, 1, ct.data, ct.len, 1, &back), OK_ERR_AUTH);
    assert_non_null(strstr(ok_err_message(), "frame 1"));
    ok_buf_free(&back);
    memcpy(ct.data + h + w, ct.data + h, w);
    memcpy(ct.data + h, tmp, w); /* restore */
    assert_int_equal(decrypt_buf(&k, 1, ct.data, ct.len, 1, &back), OK_OK);
    ok_buf_free(&back);

    /* Delete frame 2. */
    ok_buf_init(&bad, 0);
    ok_buf_put(&bad, ct.data, h + w);
    ok_buf_put(&bad, ct.data + h + 2 * w, ct.len - h - 2 * w);
    assert_int_equal(decrypt_buf(&k, 1, bad.data, bad.len, 2, &back), OK_ERR_AUTH);
    assert_non_null(strstr(ok_err_message(), "authentication failed in frame 2"));
    ok_buf_free(&back);
    ok_buf_free(&bad);

    /* Duplicate frame 1. */
    ok_buf_init(&bad, 0);
    ok_buf_put(&bad, ct.data, h + w);
    ok_buf_put(&bad, ct.data + h, ct.len - h);
    assert_int_equal(decrypt_buf(&k, 1, bad.data, bad.len, 1, &back), OK_ERR_AUTH);
    ok_buf_free(&back);
    ok_buf_free(&bad);

    /* Trailing data after the final frame. */
    ok_buf_init(&bad, 0);
    ok_buf_put(&bad, ct.data, ct.len);
    ok_buf_u8(&bad, 0);
    assert_int_equal(decrypt_buf(&k, 1, bad.data, bad.len, 1, &back), OK_ERR_FORMAT);
    assert_non_null(strstr(ok_err_message(), "trailing data"));
    ok_buf_free(&back);
    ok_buf_free(&bad);

    ok_buf_free(&ct);
    ok_provider_free(k);
}

/* ---- Recipients ---------------------------------------------------------------------------------- */

static void expect_open(ok_provider **keys, size_t n, const ok_buf *ct, ok_err want)
{
    ok_buf back;
    ok_err rc = decrypt_buf(keys, n, ct->data, ct->len, 1, &back);
    assert_int_equal(rc, want);
    if (want == OK_OK)
        assert_memory_equal(back.data, "hello, recipients", 17);
    ok_buf_free(&back);
}

static void test_any_of(void **state)
{
    (void)state;
    ok_provider *pub = NULL;
    ok_provider *a = oct_key(7, "a"), *b = rsa_key(&pub), *c = oct_key(8, "c");
    ok_provider *to[] = {a, pub};
    ok_buf ct;
    assert_int_equal(encrypt_buf(to, 2, OK_ENV_ANY_OF, (const uint8_t *)"hello, recipients", 17, 0, 1, &ct), OK_OK);
    expect_open(&a, 1, &ct, OK_OK);
    expect_open(&b, 1, &ct, OK_OK);     /* the RSA private key opens what its public half sealed */
    expect_open(&c, 1, &ct, OK_ERR_NO_RECIPIENT);
    assert_non_null(strstr(ok_err_message(), "no recipient matches"));
    expect_open(&pub, 1, &ct, OK_ERR_KEY); /* a public key cannot unwrap */
    ok_provider *wrong_same_kid = oct_key(9, "a");
    expect_open(&wrong_same_kid, 1, &ct, OK_ERR_AUTH);
    ok_provider *both[] = {c, a};
    expect_open(both, 2, &ct, OK_OK);
    ok_buf_free(&ct);
    ok_provider_free(wrong_same_kid);
    ok_provider_free(a);
    ok_provider_free(b);
    ok_provider_free(pub);
    ok_provider_free(c);
}

static void test_all_of(void **state)
{
    (void)state;
    ok_provider *pub = NULL;
    ok_provider *service = oct_key(10, "service"), *customer = rsa_key(&pub), *other = oct_key(11, "other");
    ok_provider *to[] = {service, pub};
    ok_buf ct;
    assert_int_equal(encrypt_buf(to, 2, OK_ENV_ALL_OF, (const uint8_t *)"hello, recipients", 17, 0, 1, &ct), OK_OK);
    ok_env_header *h = NULL;
    assert_int_equal(ok_env_header_parse(ct.data, header_len_of(&ct), &h), OK_OK);
    assert_int_equal(h->mode, OK_ENV_ALL_OF);
    assert_int_equal(h->edk_count, 2);
    ok_env_header_free(h);
    expect_open(&service, 1, &ct, OK_ERR_NO_RECIPIENT);
    assert_non_null(strstr(ok_err_message(), "all-of needs every key"));
    expect_open(&customer, 1, &ct, OK_ERR_NO_RECIPIENT);
    ok_provider *both[] = {customer, other, service};
    expect_open(both, 3, &ct, OK_OK);
    ok_buf_free(&ct);
    ok_provider_free(service);
    ok_provider_free(customer);
    ok_provider_free(pub);
    ok_provider_free(other);
}

/* Splices envelope B's wrapped data key into envelope A: the key unwraps, but to B's data key, which
 * A's commitment refuses before any decryption. */
static void test_key_commitment(void **state)
{
    (void)state;
    ok_provider *k = oct_key(12, "commit");
    ok_buf a, b, back;
    assert_int_equal(encrypt_buf(&k, 1, 0, (const uint8_t *)"message A", 9, 0, 1, &a), OK_OK);
    assert_int_equal(encrypt_buf(&k, 1, 0, (const uint8_t *)"message B", 9, 0, 1, &b), OK_OK);
    ok_env_header *ha = NULL, *hb = NULL;
    assert_int_equal(ok_env_header_parse(a.data, header_len_of(&a), &ha), OK_OK);
    assert_int_equal(ok_env_header_parse(b.data, header_len_of(&b), &hb), OK_OK);
    assert_int_equal(ha->edks[0].ct_len, hb->edks[0].ct_len);
    uint8_t *pa = memmem(a.data, header_len_of(&a), ha->edks[0].ct, ha->edks[0].ct_len);
    assert_non_null(pa);
    memcpy(pa, hb->edks[0].ct, hb->edks[0].ct_len);
    assert_int_equal(decrypt_buf(&k, 1, a.data, a.len, 1, &back), OK_ERR_AUTH);
    assert_non_null(strstr(ok_err_message(), "commitment"));
    ok_buf_free(&back);
    ok_env_header_free(ha);
    ok_env_header_free(hb);
    ok_buf_free(&a);
    ok_buf_free(&b);
    ok_provider_free(k);
}

/* ---- Header: context, limits, versions ---------------------------------------------------------- */

static void test_context_bound_and_sorted(void **state)
{
    (void)state;
    ok_provider *k = oct_key(13, "ctx");
    ok_env_context_entry ctx[] = {{"tenant", "acme"}, {"purpose", "backup"}, {"empty", ""}};
    ok_env_encrypt_params p = {.recipients = &k, .recipient_count = 1, .context = ctx, .context_count = 3};
    ok_env_session *s = NULL;
    ok_buf header;
    ok_buf_init(&header, 0);
    assert_int_equal(ok_env_encrypt_init(&s, &p, &header), OK_OK);
    ok_env_header *h = NULL;
    assert_int_equal(ok_env_header_parse(header.data, header.len, &h), OK_OK);
    assert_int_equal(h->context_count, 3);
    assert_string_equal(h->context[0].key, "empty");
    assert_string_equal(h->context[1].key, "purpose");
    assert_string_equal(h->context[2].key, "tenant");
    assert_string_equal(h->context[2].value, "acme");
    ok_env_header_free(h);
    ok_env_session_free(s);
    ok_buf_free(&header);

    ok_env_context_entry dup[] = {{"a", "1"}, {"a", "2"}};
    p.context = dup;
    p.context_count = 2;
    ok_buf_init(&header, 0);
    assert_int_equal(ok_env_encrypt_init(&s, &p, &header), OK_ERR_INVALID_ARG);
    assert_int_equal(header.len, 0);
    ok_buf_free(&header);
    ok_provider_free(k);
}

static void test_limits_before_allocation(void **state)
{
    (void)state;
    uint8_t prefix[OK_ENV_PREFIX_LEN] = {'O', 'W', 'N', 'K', 1, 0, 1};
    uint32_t len = 0;
    ok_store_u32(prefix + 7, OK_ENV_MAX_HEADER + 1);
    assert_int_equal(ok_env_header_prefix(prefix, &len), OK_ERR_LIMIT);
    ok_store_u32(prefix + 7, 0xFFFFFFFFu);
    assert_int_equal(ok_env_header_prefix(prefix, &len), OK_ERR_LIMIT);
    ok_store_u32(prefix + 7, 20);
    assert_int_equal(ok_env_header_prefix(prefix, &len), OK_ERR_LIMIT);
    prefix[4] = 2;
    ok_store_u32(prefix + 7, 200);
    assert_int_equal(ok_env_header_prefix(prefix, &len), OK_ERR_UNSUPPORTED);
    assert_non_null(strstr(ok_err_message(), "unknown format version 2"));
    prefix[4] = 1;
    prefix[6] = 2;
    assert_int_equal(ok_env_header_prefix(prefix, &len), OK_ERR_UNSUPPORTED);
    prefix[0] = 'X';
    assert_int_equal(ok_env_header_prefix(prefix, &len), OK_ERR_FORMAT);

    /* A real header with its counts pushed past their limits. */
    ok_provider *k = oct_key(14, "lim");
    ok_buf ct;
    assert_int_equal(encrypt_buf(&k, 1, 0, (const uint8_t *)"x", 1, 0, 1, &ct), OK_OK);
    size_t h = header_len_of(&ct);
    ok_env_header *hd = NULL;
    uint8_t save[4];
    memcpy(save, ct.data + 43, 4);
    ok_store_u32(ct.data + 43, OK_ENV_MAX_FRAME + 1); /* frame size */
    assert_int_equal(ok_env_header_parse(ct.data, h, &hd), OK_ERR_LIMIT);
    memcpy(ct.data + 43, save, 4);
    ct.data[48] = 0xFF; /* context count 0xFF00 */
    assert_int_equal(ok_env_header_parse(ct.data, h, &hd), OK_ERR_LIMIT);
    ct.data[48] = 0;
    ct.data[50] = 0x03; /* edk count 0x03xx */
    assert_int_equal(ok_env_header_parse(ct.data, h, &hd), OK_ERR_LIMIT);
    ct.data[50] = 0;
    ct.data[47] = 3; /* mode */
    assert_int_equal(ok_env_header_parse(ct.data, h, &hd), OK_ERR_FORMAT);
    ct.data[47] = 1;
    assert_int_equal(ok_env_header_parse(ct.data, h - 1, &hd), OK_ERR_FORMAT);
    assert_int_equal(ok_env_header_parse(ct.data, h, &hd), OK_OK);
    ok_env_header_free(hd);
    ok_buf_free(&ct);
    ok_provider_free(k);
}

static void test_session_misuse(void **state)
{
    (void)state;
    ok_provider *k = oct_key(15, "misuse");
    ok_env_encrypt_params p = {.recipients = &k, .recipient_count = 1, .frame_size = 64, .threads = 1};
    ok_env_session *s = NULL;
    ok_buf header;
    ok_buf_init(&header, 0);
    assert_int_equal(ok_env_encrypt_init(&s, &p, &header), OK_OK);
    uint8_t in[128] = {0}, out[256];
    size_t n = 0;
    assert_int_equal(ok_env_seal(s, in, 100, 0, out, &n), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_env_seal(s, in, 64, 0, out, &n), OK_OK);
    assert_int_equal(n, 64 + OK_ENV_FRAME_OVERHEAD);
    assert_int_equal(ok_env_sealed_size(s, 100, 1), 100 + 2 * OK_ENV_FRAME_OVERHEAD);
    assert_int_equal(ok_env_seal(s, in, 100, 1, out, &n), OK_OK);
    assert_true(ok_env_session_done(s));
    assert_int_equal(ok_env_seal(s, in, 0, 1, out, &n), OK_ERR_INVALID_ARG);
    ok_env_session_free(s);
    ok_buf_free(&header);

    p.frame_size = 10;
    ok_buf_init(&header, 0);
    assert_int_equal(ok_env_encrypt_init(&s, &p, &header), OK_ERR_INVALID_ARG);
    p.frame_size = 0;
    p.recipient_count = 0;
    assert_int_equal(ok_env_encrypt_init(&s, &p, &header), OK_ERR_INVALID_ARG);
    ok_buf_free(&header);
    ok_provider_free(k);
}

/* ---- Random access: one frame at a given index ------------------------------------------------- */

/* Seals 3 full frames of 64 bytes and a final frame of tail bytes with a session (full frames sealed
 * as non-final, so a tail of 0 gives an empty final frame). */
static void sealed_frames(ok_provider *k, uint8_t *pt, size_t tail, ok_buf *ct)
{
    ok_env_encrypt_params p = {.recipients = &k, .recipient_count = 1, .frame_size = 64, .threads = 1};
    ok_env_session *s = NULL;
    ok_buf_init(ct, 0);
    assert_int_equal(ok_env_encrypt_init(&s, &p, ct), OK_OK);
    pattern(pt, 3 * 64 + tail, 77);
    uint8_t out[4 * (64 + OK_ENV_FRAME_OVERHEAD)];
    size_t n = 0;
    assert_int_equal(ok_env_seal(s, pt, 3 * 64, 0, out, &n), OK_OK);
    assert_int_equal(ok_buf_put(ct, out, n), OK_OK);
    assert_int_equal(ok_env_seal(s, pt + 3 * 64, tail, 1, out, &n), OK_OK);
    assert_int_equal(ok_buf_put(ct, out, n), OK_OK);
    ok_env_session_free(s);
}

static ok_env_session *open_session(ok_provider *k, const ok_buf *ct)
{
    ok_env_header *h = NULL;
    ok_env_session *s = NULL;
    assert_int_equal(ok_env_header_parse(ct->data, header_len_of(ct), &h), OK_OK);
    assert_int_equal(ok_env_decrypt_init(&s, h, &k, 1, 1), OK_OK);
    ok_env_header_free(h);
    return s;
}

static void test_open_frame_random_access(void **state)
{
    (void)state;
    ok_provider *k = oct_key(21, "random");
    const size_t W = 64 + OK_ENV_FRAME_OVERHEAD;
    for (size_t tail = 0; tail <= 10; tail += 10) {
        uint8_t pt[4 * 64];
        ok_buf ct;
        sealed_frames(k, pt, tail, &ct);
        size_t hl = header_len_of(&ct);
        assert_int_equal(ct.len, hl + 3 * W + tail + OK_ENV_FRAME_OVERHEAD);
        ok_env_session *s = open_session(k, &ct);
        uint8_t out[64];
        size_t n = 0;
        int final = -1;
        /* Any order, repeatedly; the sequential position is not used. */
        static const uint64_t order[] = {2, 0, 3, 1, 1, 3};
        for (size_t i = 0; i < sizeof order / sizeof *order; i++) {
            uint64_t idx = order[i];
            size_t wl = idx == 3 ? tail + OK_ENV_FRAME_OVERHEAD : W;
            assert_int_equal(ok_env_open_frame(s, idx, ct.data + hl + idx * W, wl, out, &n, &final), OK_OK);
            assert_int_equal(final, idx == 3);
            assert_int_equal(n, idx == 3 ? tail : 64);
            if (n)
                assert_memory_equal(out, pt + idx * 64, n);
        }
        assert_int_equal(ok_env_frames_done(s), 0);
        /* A frame presented at another index fails, and the session stays failed. */
        assert_int_equal(ok_env_open_frame(s, 1, ct.data + hl, W, out, &n, &final), OK_ERR_AUTH);
        assert_int_equal(ok_env_open_frame(s, 0, ct.data + hl, W, out, &n, &final), OK_ERR_INVALID_ARG);
        ok_env_session_free(s);
        /* The final frame cannot pose at another index either. */
        s = open_session(k, &ct);
        assert_int_equal(ok_env_open_frame(s, 2, ct.data + hl + 3 * W, tail + OK_ENV_FRAME_OVERHEAD, out, &n, &final),
                         OK_ERR_AUTH);
        ok_env_session_free(s);
        /* A wire length that does not match the frame's length field. */
        s = open_session(k, &ct);
        assert_int_equal(ok_env_open_frame(s, 0, ct.data + hl, W - 1, out, &n, &final), OK_ERR_TRUNCATED);
        ok_env_session_free(s);
        s = open_session(k, &ct);
        assert_int_equal(ok_env_open_frame(s, 0, ct.data + hl, W + 1, out, &n, &final), OK_ERR_FORMAT);
        ok_env_session_free(s);
        /* Tampering anywhere in a frame (length field, ciphertext, tag) is refused. */
        for (size_t off = 0; off < W; off += 7) {
            ct.data[hl + W + off] ^= 0x01;
            s = open_session(k, &ct);
            memset(out, 0, sizeof out);
            ok_err rc = ok_env_open_frame(s, 1, ct.data + hl + W, W, out, &n, &final);
            assert_true(rc == OK_ERR_AUTH || rc == OK_ERR_FORMAT || rc == OK_ERR_TRUNCATED);
            uint8_t zero[64] = {0};
            assert_memory_equal(out, zero, sizeof out); /* nothing unverified left in out */
            ok_env_session_free(s);
            ct.data[hl + W + off] ^= 0x01;
        }
        /* Past the frame limit. */
        s = open_session(k, &ct);
        assert_int_equal(ok_env_open_frame(s, OK_ENV_MAX_FRAMES, ct.data + hl, W, out, &n, &final), OK_ERR_LIMIT);
        ok_env_session_free(s);
        ok_buf_free(&ct);
    }
    ok_provider_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_sizes),
        cmocka_unit_test(test_default_frame_and_threads),
        cmocka_unit_test(test_every_bit_flip_rejected),
        cmocka_unit_test(test_truncation_rejected),
        cmocka_unit_test(test_frame_reorder_delete_duplicate),
        cmocka_unit_test(test_any_of),
        cmocka_unit_test(test_all_of),
        cmocka_unit_test(test_key_commitment),
        cmocka_unit_test(test_context_bound_and_sorted),
        cmocka_unit_test(test_limits_before_allocation),
        cmocka_unit_test(test_session_misuse),
        cmocka_unit_test(test_open_frame_random_access),
        cmocka_unit_test(test_multi_gib_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
