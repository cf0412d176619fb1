/* Envelope sessions: the streaming state machine (BODY -> DONE, or FAILED for good) that seals and opens
 * frames, in parallel across a thread pool, after the header has been written or authenticated; and the
 * random-access opening of one frame at a given index (ok_env_open_frame), for readers of byte ranges. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "envelope/datakey.h"
#include "envelope/header_internal.h"
#include "envelope/pool.h"
#include "envelope/session_internal.h"
#include "ownkey/crypto.h"
#include "ownkey/envelope.h"

#define FINAL_FLAG 0x80000000u

typedef enum { STATE_BODY = 1, STATE_DONE, STATE_FAILED } session_state;

struct ok_env_session {
    session_state state;
    uint32_t frame_size;
    uint8_t header_tag[16];
    uint64_t next_frame; /* number of the next frame, from 1 */
    unsigned threads;
    ok_gcm **gcm;        /* one per thread: index 0 for the caller, 1..threads-1 for the pool's workers */
    ok_pool *pool;       /* threads - 1 workers, only when threads > 1 */
    size_t *offsets;     /* open: wire offset of each frame in the current batch */
    ok_err *results;     /* result of each frame in the current batch */
    size_t batch_cap;    /* capacity of offsets and results */
    struct batch *pending; /* the batch submitted and not yet collected */
};

unsigned ok_online_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1u : n > 256 ? 256u : (unsigned)n;
}

static ok_err session_new(ok_env_session **out, const uint8_t content_key[32], uint32_t frame_size,
                          const uint8_t header_tag[16], unsigned threads)
{
    ok_env_session *s = calloc(1, sizeof *s);
    if (!s)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    s->state = STATE_BODY;
    s->frame_size = frame_size;
    memcpy(s->header_tag, header_tag, 16);
    s->next_frame = 1;
    s->threads = threads ? threads : ok_online_cores();
    ok_err rc = OK_OK;
    s->gcm = calloc(s->threads, sizeof *s->gcm);
    if (!s->gcm) {
        rc = ok_fail(OK_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (unsigned i = 0; i < s->threads; i++)
        OK_GUARD_GOTO(rc, ok_gcm_new(&s->gcm[i], content_key, 32), fail);
    if (s->threads > 1)
        OK_GUARD_GOTO(rc, ok_pool_new(&s->pool, s->threads - 1), fail);
    *out = s;
    return OK_OK;
fail:
    ok_env_session_free(s);
    return rc;
}

void ok_env_session_free(ok_env_session *s)
{
    if (!s)
        return;
    ok_env_drain(s);
    ok_pool_free(s->pool);
    if (s->gcm)
        for (unsigned i = 0; i < s->threads; i++)
            ok_gcm_free(s->gcm[i]);
    free(s->gcm);
    free(s->offsets);
    free(s->results);
    free(s->pending);
    free(s);
}

/* ---- Header side -------------------------------------------------------------------------------- */

static ok_err header_tag(const uint8_t content_key[32], const uint8_t *header, size_t len, uint8_t tag[16])
{
    static const uint8_t zero_iv[OK_GCM_IV_LEN];
    return ok_aes_gcm_encrypt(content_key, 32, zero_iv, sizeof zero_iv, header, len, NULL, 0, NULL, tag);
}

ok_err ok_env_encrypt_init(ok_env_session **out, const ok_env_encrypt_params *p, ok_buf *header_out)
{
    ok_env_mode mode = p->mode ? p->mode : OK_ENV_ANY_OF;
    uint32_t frame_size = p->frame_size ? p->frame_size : OK_ENV_DEFAULT_FRAME;
    if (mode != OK_ENV_ANY_OF && mode != OK_ENV_ALL_OF)
        return ok_fail(OK_ERR_INVALID_ARG, "unknown recipient mode %d", (int)mode);
    if (frame_size < OK_ENV_MIN_FRAME || frame_size > OK_ENV_MAX_FRAME)
        return ok_fail(OK_ERR_INVALID_ARG, "frame size %u outside %u..%u", frame_size, OK_ENV_MIN_FRAME, OK_ENV_MAX_FRAME);
    size_t limit = mode == OK_ENV_ALL_OF ? OK_ENV_MAX_LAYERS : OK_ENV_MAX_EDKS;
    if (p->recipient_count < 1 || p->recipient_count > limit)
        return ok_fail(OK_ERR_INVALID_ARG, "%zu recipients given (allowed 1..%zu)", p->recipient_count, limit);

    uint8_t *dk = ok_secure_alloc(OK_ENV_DATA_KEY_LEN + 32);
    ok_edk *edks = calloc(p->recipient_count, sizeof *edks);
    if (!dk || !edks) {
        ok_secure_free(dk, OK_ENV_DATA_KEY_LEN + 32);
        free(edks);
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    }
    uint8_t *content_key = dk + OK_ENV_DATA_KEY_LEN;
    ok_env_header_fields f = {.frame_size = frame_size, .mode = mode, .context = p->context,
                              .context_count = p->context_count, .edks = edks, .edk_count = p->recipient_count};
    uint8_t tag[16];
    size_t start = header_out->len;
    ok_err rc = OK_OK;
    OK_GUARD_GOTO(rc, ok_random(dk, OK_ENV_DATA_KEY_LEN), out);
    OK_GUARD_GOTO(rc, ok_random(f.message_id, sizeof f.message_id), out);
    OK_GUARD_GOTO(rc, ok_env_wrap_data_key(dk, mode, p->recipients, p->recipient_count, edks), out);
    OK_GUARD_GOTO(rc, ok_env_derive_keys(f.message_id, dk, content_key, f.commitment), out);
    OK_GUARD_GOTO(rc, ok_env_header_write_body(header_out, &f), out);
    OK_GUARD_GOTO(rc, header_tag(content_key, header_out->data + start, header_out->len - start, tag), out);
    OK_GUARD_GOTO(rc, ok_buf_put(header_out, tag, sizeof tag), out);
    OK_GUARD_GOTO(rc, session_new(out, content_key, frame_size, tag, p->threads), out);
out:
    if (rc != OK_OK)
        header_out->len = start;
    for (size_t i = 0; i < p->recipient_count; i++)
        ok_edk_clear(&edks[i]);
    free(edks);
    ok_secure_free(dk, OK_ENV_DATA_KEY_LEN + 32);
    return rc;
}

ok_err ok_env_decrypt_init(ok_env_session **out, const ok_env_header *h, ok_provider *const *keys,
                           size_t key_count, unsigned threads)
{
    uint8_t *dk = ok_secure_alloc(OK_ENV_DATA_KEY_LEN + 32);
    if (!dk)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    uint8_t *content_key = dk + OK_ENV_DATA_KEY_LEN;
    uint8_t commitment[OK_ENV_COMMITMENT_LEN], tag[16];
    ok_err rc = OK_OK;
    OK_GUARD_GOTO(rc, ok_env_unwrap_data_key(h, keys, key_count, dk), out);
    OK_GUARD_GOTO(rc, ok_env_derive_keys(h->message_id, dk, content_key, commitment), out);
    if (!ok_ct_equal(commitment, h->commitment, sizeof commitment)) {
        rc = ok_fail(OK_ERR_AUTH, "authentication failed: the data key does not match the header's key commitment");
        goto out;
    }
    OK_GUARD_GOTO(rc, header_tag(content_key, h->raw, h->header_len - 16, tag), out);
    if (!ok_ct_equal(tag, h->tag, sizeof tag)) {
        rc = ok_fail(OK_ERR_AUTH, "authentication failed in the header");
        goto out;
    }
    OK_GUARD_GOTO(rc, session_new(out, content_key, h->frame_size, h->tag, threads), out);
out:
    ok_secure_free(dk, OK_ENV_DATA_KEY_LEN + 32);
    return rc;
}

uint32_t ok_env_session_frame_size(const ok_env_session *s)
{
    return s->frame_size;
}

size_t ok_env_wire_frame_size(const ok_env_session *s)
{
    return (size_t)s->frame_size + OK_ENV_FRAME_OVERHEAD;
}

uint64_t ok_env_frames_done(const ok_env_session *s)
{
    return s->next_frame - 1;
}

int ok_env_session_done(const ok_env_session *s)
{
    return s->state == STATE_DONE;
}

/* ---- Frames ------------------------------------------------------------------------------------
 * A batch of frames is submitted (checked, then handed to the pool, or run inline with one thread) and
 * later collected (waited for, results checked, session advanced). Between the two the caller may do
 * I/O; ok_env_seal and ok_env_open are submit + collect. */

typedef struct batch {
    ok_env_session *s;
    int open;            /* 0 seal, 1 open */
    const uint8_t *in;
    uint8_t *out;
    size_t in_len;       /* seal: plaintext bytes */
    size_t nframes;
    int final;
    size_t plain;        /* open: plaintext bytes the batch yields */
} batch;

static void frame_nonce_aad(const ok_env_session *s, uint64_t number, uint32_t len_flag,
                            uint8_t nonce[OK_GCM_IV_LEN], uint8_t aad[28])
{
    memset(nonce, 0, 4);
    ok_store_u64(nonce + 4, number);
    memcpy(aad, s->header_tag, 16);
    ok_store_u64(aad + 16, number);
    ok_store_u32(aad + 24, len_flag);
}

static void seal_task(void *arg, size_t k, unsigned worker)
{
    batch *b = arg;
    ok_env_session *s = b->s;
    size_t F = s->frame_size;
    int is_final = b->final && k + 1 == b->nframes;
    uint32_t len = is_final ? (uint32_t)(b->in_len - k * F) : (uint32_t)F;
    uint32_t len_flag = len | (is_final ? FINAL_FLAG : 0);
    uint8_t nonce[OK_GCM_IV_LEN], aad[28];
    frame_nonce_aad(s, s->next_frame + k, len_flag, nonce, aad);
    uint8_t *w = b->out + k * (F + OK_ENV_FRAME_OVERHEAD);
    ok_store_u32(w, len_flag);
    s->results[k] = ok_gcm_seal(s->gcm[worker], nonce, aad, sizeof aad, b->in + k * F, len, w + 4, w + 4 + len);
}

static void open_task(void *arg, size_t k, unsigned worker)
{
    batch *b = arg;
    ok_env_session *s = b->s;
    const uint8_t *w = b->in + s->offsets[k];
    uint32_t len_flag = ok_load_u32(w);
    uint32_t len = len_flag & ~FINAL_FLAG;
    uint8_t nonce[OK_GCM_IV_LEN], aad[28];
    frame_nonce_aad(s, s->next_frame + k, len_flag, nonce, aad);
    s->results[k] = ok_gcm_open(s->gcm[worker], nonce, aad, sizeof aad, w + 4, len, w + 4 + len,
                                b->out + k * s->frame_size);
}

size_t ok_env_sealed_size(const ok_env_session *s, size_t in_len, int final)
{
    size_t F = s->frame_size;
    size_t frames = in_len / F + (final && (in_len % F || in_len == 0) ? 1 : 0);
    return in_len + frames * OK_ENV_FRAME_OVERHEAD;
}

static ok_err reserve_batch(ok_env_session *s, size_t nframes)
{
    if (nframes <= s->batch_cap)
        return OK_OK;
    size_t *offsets = realloc(s->offsets, nframes * sizeof *offsets);
    if (offsets)
        s->offsets = offsets;
    ok_err *results = realloc(s->results, nframes * sizeof *results);
    if (results)
        s->results = results;
    if (!offsets || !results)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    s->batch_cap = nframes;
    return OK_OK;
}

static ok_err check_state(ok_env_session *s)
{
    if (s->pending)
        return ok_fail(OK_ERR_INVALID_ARG, "a batch is already in flight");
    if (s->state != STATE_BODY)
        return ok_fail(OK_ERR_INVALID_ARG, "session is %s", s->state == STATE_DONE ? "finished" : "failed");
    return OK_OK;
}

static ok_err check_frame_budget(const ok_env_session *s, size_t nframes)
{
    if (s->next_frame - 1 + nframes > OK_ENV_MAX_FRAMES)
        return ok_fail(OK_ERR_LIMIT, "more than %llu frames", (unsigned long long)OK_ENV_MAX_FRAMES);
    return OK_OK;
}

static ok_err fail_session(ok_env_session *s, ok_err rc)
{
    s->state = STATE_FAILED;
    return rc;
}

static ok_err submit(ok_env_session *s, const batch *b)
{
    ok_err rc = check_frame_budget(s, b->nframes);
    if (rc != OK_OK)
        return fail_session(s, rc);
    batch *p = malloc(sizeof *p);
    if (!p)
        return fail_session(s, ok_fail(OK_ERR_NOMEM, "out of memory"));
    *p = *b;
    s->pending = p;
    ok_pool_fn fn = b->open ? open_task : seal_task;
    if (s->pool) {
        ok_pool_start(s->pool, fn, p, p->nframes);
    } else {
        for (size_t k = 0; k < p->nframes; k++)
            fn(p, k, 0);
    }
    return OK_OK;
}

/* Waits for the pending batch and returns the first failure in frame order. */
static ok_err collect(ok_env_session *s, batch *out)
{
    if (!s->pending)
        return ok_fail(OK_ERR_INVALID_ARG, "no batch in flight");
    if (s->pool)
        ok_pool_wait(s->pool);
    *out = *s->pending;
    free(s->pending);
    s->pending = NULL;
    for (size_t k = 0; k < out->nframes; k++) {
        if (s->results[k] == OK_OK)
            continue;
        if (s->results[k] == OK_ERR_AUTH)
            return fail_session(s, ok_fail(OK_ERR_AUTH, "authentication failed in frame %llu",
                                           (unsigned long long)(s->next_frame + k)));
        return fail_session(s, s->results[k]);
    }
    s->next_frame += out->nframes;
    if (out->final)
        s->state = STATE_DONE;
    return OK_OK;
}

void ok_env_drain(ok_env_session *s)
{
    if (!s || !s->pending)
        return;
    if (s->pool)
        ok_pool_wait(s->pool);
    free(s->pending);
    s->pending = NULL;
    s->state = STATE_FAILED;
}

ok_err ok_env_seal_submit(ok_env_session *s, const uint8_t *in, size_t in_len, int final, uint8_t *out)
{
    OK_GUARD(check_state(s));
    size_t F = s->frame_size;
    if (!final && in_len % F != 0)
        return ok_fail(OK_ERR_INVALID_ARG, "non-final input of %zu bytes is not a whole number of frames", in_len);
    size_t nframes = in_len / F + (final && (in_len % F || in_len == 0) ? 1 : 0);
    ok_err rc = reserve_batch(s, nframes);
    if (rc != OK_OK)
        return fail_session(s, rc);
    batch b = {.s = s, .in = in, .out = out, .in_len = in_len, .nframes = nframes, .final = final};
    return submit(s, &b);
}

ok_err ok_env_seal_collect(ok_env_session *s, size_t *out_len)
{
    batch b = {0};
    OK_GUARD(collect(s, &b));
    *out_len = b.in_len + b.nframes * OK_ENV_FRAME_OVERHEAD;
    return OK_OK;
}

ok_err ok_env_seal(ok_env_session *s, const uint8_t *in, size_t in_len, int final, uint8_t *out, size_t *out_len)
{
    OK_GUARD(ok_env_seal_submit(s, in, in_len, final, out));
    return ok_env_seal_collect(s, out_len);
}

/* Finds the whole frames in in[0..in_len): checks each length field, stops at a partial frame. */
static ok_err locate_frames(ok_env_session *s, const uint8_t *in, size_t in_len, size_t *nframes,
                            size_t *consumed, size_t *plain, int *final)
{
    size_t F = s->frame_size, pos = 0, n = 0;
    OK_GUARD(reserve_batch(s, in_len / (F + OK_ENV_FRAME_OVERHEAD) + 1));
    *final = 0;
    *plain = 0;
    while (in_len - pos >= 4) {
        uint32_t len_flag = ok_load_u32(in + pos);
        uint32_t len = len_flag & ~FINAL_FLAG;
        int is_final = (len_flag & FINAL_FLAG) != 0;
        if (is_final ? len > F : len != F)
            return ok_fail(OK_ERR_FORMAT, "frame %llu has a bad length (%u; frame size %zu)",
                           (unsigned long long)(s->next_frame + n), len, F);
        if (in_len - pos < 4 + (size_t)len + 16)
            break;
        s->offsets[n++] = pos;
        pos += 4 + (size_t)len + 16;
        *plain += len;
        if (is_final) {
            *final = 1;
            if (pos != in_len)
                return ok_fail(OK_ERR_FORMAT, "trailing data after the final frame");
            break;
        }
    }
    *nframes = n;
    *consumed = pos;
    return OK_OK;
}

ok_err ok_env_open_submit(ok_env_session *s, const uint8_t *in, size_t in_len, size_t *consumed, uint8_t *out,
                          int *final)
{
    if (s->state == STATE_DONE && !s->pending && in_len > 0)
        return ok_fail(OK_ERR_FORMAT, "trailing data after the final frame");
    OK_GUARD(check_state(s));
    size_t nframes = 0, used = 0, plain = 0;
    int saw_final = 0;
    ok_err rc = locate_frames(s, in, in_len, &nframes, &used, &plain, &saw_final);
    if (rc != OK_OK)
        return fail_session(s, rc);
    batch b = {.s = s, .open = 1, .in = in, .out = out, .nframes = nframes, .final = saw_final, .plain = plain};
    OK_GUARD(submit(s, &b));
    *consumed = used;
    *final = saw_final;
    return OK_OK;
}

ok_err ok_env_open_collect(ok_env_session *s, size_t *out_len)
{
    batch b = {0};
    OK_GUARD(collect(s, &b));
    *out_len = b.plain;
    return OK_OK;
}

ok_err ok_env_open(ok_env_session *s, const uint8_t *in, size_t in_len, size_t *consumed, uint8_t *out,
                   size_t *out_len, int *final)
{
    if (s->state == STATE_DONE && !s->pending && in_len == 0) {
        *consumed = *out_len = 0;
        *final = 1;
        return OK_OK;
    }
    OK_GUARD(ok_env_open_submit(s, in, in_len, consumed, out, final));
    return ok_env_open_collect(s, out_len);
}

/* ---- Random access -------------------------------------------------------------------------------- */

ok_err ok_env_open_frame(ok_env_session *s, uint64_t index, const uint8_t *wire, size_t wire_len, uint8_t *out,
                         size_t *out_len, int *final)
{
    OK_GUARD(check_state(s));
    if (index >= OK_ENV_MAX_FRAMES)
        return fail_session(s, ok_fail(OK_ERR_LIMIT, "frame index %llu past the %llu-frame limit",
                                       (unsigned long long)index, (unsigned long long)OK_ENV_MAX_FRAMES));
    if (wire_len < OK_ENV_FRAME_OVERHEAD)
        return fail_session(s, ok_fail(OK_ERR_TRUNCATED, "frame %llu is truncated", (unsigned long long)(index + 1)));
    size_t F = s->frame_size;
    uint32_t len_flag = ok_load_u32(wire);
    uint32_t len = len_flag & ~FINAL_FLAG;
    int is_final = (len_flag & FINAL_FLAG) != 0;
    if (is_final ? len > F : len != F)
        return fail_session(s, ok_fail(OK_ERR_FORMAT, "frame %llu has a bad length (%u; frame size %zu)",
                                       (unsigned long long)(index + 1), len, F));
    if (wire_len != (size_t)len + OK_ENV_FRAME_OVERHEAD)
        return fail_session(s, ok_fail(wire_len < (size_t)len + OK_ENV_FRAME_OVERHEAD ? OK_ERR_TRUNCATED : OK_ERR_FORMAT,
                                       "frame %llu: %zu wire bytes for a %u-byte frame",
                                       (unsigned long long)(index + 1), wire_len, len));
    uint8_t nonce[OK_GCM_IV_LEN], aad[28];
    frame_nonce_aad(s, index + 1, len_flag, nonce, aad);
    ok_err rc = ok_gcm_open(s->gcm[0], nonce, aad, sizeof aad, wire + 4, len, wire + 4 + len, out);
    if (rc != OK_OK) {
        ok_zeroize(out, len);
        if (rc == OK_ERR_AUTH)
            rc = ok_fail(OK_ERR_AUTH, "authentication failed in frame %llu", (unsigned long long)(index + 1));
        return fail_session(s, rc);
    }
    *out_len = len;
    *final = is_final;
    return OK_OK;
}
