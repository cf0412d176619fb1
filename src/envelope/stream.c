/* Whole-stream encryption and decryption over reader/writer callbacks, in constant memory: batches of
 * frames are read, sealed or opened in parallel by the session, and written in order. Also readers and
 * writers over file descriptors. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "envelope/session_internal.h"
#include "ownkey/envelope.h"

#define BATCH_FRAMES_PER_THREAD 16
#define BATCH_MAX_BYTES (16u * 1024u * 1024u)

/* Reads until len bytes or end of input. */
static ok_err read_full(ok_reader in, uint8_t *buf, size_t len, size_t *got)
{
    size_t have = 0;
    while (have < len) {
        size_t n = 0;
        OK_GUARD(in.read(in.ctx, buf + have, len - have, &n));
        if (n == 0)
            break;
        have += n;
    }
    *got = have;
    return OK_OK;
}

static size_t batch_frames(unsigned threads, uint32_t frame_size)
{
    size_t n = (size_t)(threads ? threads : ok_online_cores()) * BATCH_FRAMES_PER_THREAD;
    size_t cap = BATCH_MAX_BYTES / frame_size;
    if (n > cap)
        n = cap;
    return n ? n : 1;
}

static void report(const ok_stream_options *opt, uint64_t bytes)
{
    if (opt && opt->progress)
        opt->progress(opt->progress_ctx, bytes);
}

/* Encrypts with two buffer pairs: while the pool seals one batch, this thread writes the previous
 * batch's output and reads the next batch's input. */
ok_err ok_env_encrypt_stream(const ok_env_encrypt_params *p, ok_reader in, ok_writer out, const ok_stream_options *opt)
{
    ok_buf header;
    ok_buf_init(&header, OK_ENV_MAX_HEADER);
    ok_env_session *s = NULL;
    ok_env_encrypt_params params = *p;
    if (opt && opt->threads)
        params.threads = opt->threads;
    ok_err rc = ok_env_encrypt_init(&s, &params, &header);
    if (rc != OK_OK) {
        ok_buf_free(&header);
        return rc;
    }
    rc = out.write(out.ctx, header.data, header.len);
    ok_buf_free(&header);
    size_t F = ok_env_session_frame_size(s);
    size_t nframes = batch_frames(params.threads, (uint32_t)F);
    size_t in_cap = nframes * F, out_cap = in_cap + (nframes + 1) * OK_ENV_FRAME_OVERHEAD;
    uint8_t *inb[2] = {malloc(in_cap), malloc(in_cap)};
    uint8_t *outb[2] = {malloc(out_cap), malloc(out_cap)};
    if (rc == OK_OK && (!inb[0] || !inb[1] || !outb[0] || !outb[1]))
        rc = ok_fail(OK_ERR_NOMEM, "out of memory");
    uint64_t total = 0;
    size_t got[2] = {0, 0};
    int cur = 0, final = 0;
    if (rc == OK_OK)
        rc = read_full(in, inb[0], in_cap, &got[0]);
    if (rc == OK_OK) {
        final = got[0] < in_cap;
        rc = ok_env_seal_submit(s, inb[0], got[0], final, outb[0]);
    }
    while (rc == OK_OK) {
        int nxt = 1 - cur, next_final = 0;
        size_t sealed = 0;
        if (!final) {
            OK_GUARD_GOTO(rc, read_full(in, inb[nxt], in_cap, &got[nxt]), out);
            next_final = got[nxt] < in_cap;
        }
        OK_GUARD_GOTO(rc, ok_env_seal_collect(s, &sealed), out);
        if (!final)
            OK_GUARD_GOTO(rc, ok_env_seal_submit(s, inb[nxt], got[nxt], next_final, outb[nxt]), out);
        OK_GUARD_GOTO(rc, out.write(out.ctx, outb[cur], sealed), out);
        total += got[cur];
        report(opt, total);
        if (final)
            break;
        cur = nxt;
        final = next_final;
    }
out:
    ok_env_drain(s); /* on failure, a batch may still be using the buffers */
    ok_env_session_free(s);
    for (int i = 0; i < 2; i++) {
        if (inb[i]) {
            ok_zeroize(inb[i], in_cap);
            free(inb[i]);
        }
        free(outb[i]);
    }
    return rc;
}

ok_err ok_env_read_header(ok_reader in, ok_env_header **out)
{
    uint8_t prefix[OK_ENV_PREFIX_LEN];
    size_t got = 0;
    uint32_t header_len = 0;
    OK_GUARD(read_full(in, prefix, sizeof prefix, &got));
    if (got == 0)
        return ok_fail(OK_ERR_TRUNCATED, "input is empty: not an ownkey envelope");
    if (got < sizeof prefix) {
        static const uint8_t magic[4] = {'O', 'W', 'N', 'K'};
        if (memcmp(prefix, magic, got < 4 ? got : 4) != 0)
            return ok_fail(OK_ERR_FORMAT, "not an ownkey envelope (bad magic)");
        return ok_fail(OK_ERR_TRUNCATED, "truncated: input ends inside the envelope header");
    }
    OK_GUARD(ok_env_header_prefix(prefix, &header_len));
    uint8_t *raw = malloc(header_len);
    if (!raw)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    memcpy(raw, prefix, sizeof prefix);
    ok_err rc = read_full(in, raw + sizeof prefix, header_len - sizeof prefix, &got);
    if (rc == OK_OK && got < header_len - sizeof prefix)
        rc = ok_fail(OK_ERR_TRUNCATED, "truncated: input ends inside the envelope header");
    if (rc == OK_OK)
        rc = ok_env_header_parse(raw, header_len, out);
    free(raw);
    return rc;
}

/* After the final frame, the input must be at its end. */
static ok_err expect_end(ok_reader in)
{
    uint8_t extra;
    size_t got = 0;
    OK_GUARD(read_full(in, &extra, 1, &got));
    if (got)
        return ok_fail(OK_ERR_FORMAT, "trailing data after the final frame");
    return OK_OK;
}

static ok_err truncated(const ok_env_session *s, size_t leftover)
{
    if (leftover)
        return ok_fail(OK_ERR_TRUNCATED, "truncated: input ends inside frame %llu",
                       (unsigned long long)ok_env_frames_done(s) + 1);
    return ok_fail(OK_ERR_TRUNCATED, "truncated: input ends after frame %llu without a final frame",
                   (unsigned long long)ok_env_frames_done(s));
}

/* Decrypts with two buffer pairs: while the pool opens one batch, this thread writes the previous
 * batch's verified plaintext and reads the next batch's input. A partial frame at the end of a batch
 * is carried over to the next buffer. */
static ok_err decrypt_body(ok_env_session *s, ok_reader in, ok_writer out, const ok_stream_options *opt,
                           size_t nframes)
{
    size_t W = ok_env_wire_frame_size(s), F = ok_env_session_frame_size(s);
    size_t in_cap = nframes * W, out_cap = nframes * F;
    uint8_t *inb[2] = {malloc(in_cap), malloc(in_cap)};
    uint8_t *outb[2] = {malloc(out_cap), malloc(out_cap)};
    ok_err rc = OK_OK;
    uint64_t total = 0;
    size_t have = 0, consumed = 0;
    int cur = 0, final = 0, eof = 0, cur_eof = 0;
    if (!inb[0] || !inb[1] || !outb[0] || !outb[1]) {
        rc = ok_fail(OK_ERR_NOMEM, "out of memory");
        goto out;
    }
    OK_GUARD_GOTO(rc, read_full(in, inb[0], in_cap, &have), out);
    total = have;
    eof = cur_eof = have < in_cap;
    OK_GUARD_GOTO(rc, ok_env_open_submit(s, inb[0], have, &consumed, outb[0], &final), out);
    for (;;) {
        int nxt = 1 - cur, next_final = 0;
        size_t next_have = have - consumed, next_consumed = 0, plain = 0;
        memcpy(inb[nxt], inb[cur] + consumed, next_have);
        if (!final && !eof) {
            size_t got = 0;
            OK_GUARD_GOTO(rc, read_full(in, inb[nxt] + next_have, in_cap - next_have, &got), out);
            eof = next_have + got < in_cap;
            next_have += got;
            total += got;
        }
        OK_GUARD_GOTO(rc, ok_env_open_collect(s, &plain), out);
        if (final) {
            OK_GUARD_GOTO(rc, out.write(out.ctx, outb[cur], plain), out);
            report(opt, total);
            rc = expect_end(in);
            goto out;
        }
        if (cur_eof) {
            rc = truncated(s, have - consumed);
            goto out;
        }
        OK_GUARD_GOTO(rc, ok_env_open_submit(s, inb[nxt], next_have, &next_consumed, outb[nxt], &next_final), out);
        OK_GUARD_GOTO(rc, out.write(out.ctx, outb[cur], plain), out);
        report(opt, total);
        cur = nxt;
        have = next_have;
        consumed = next_consumed;
        final = next_final;
        cur_eof = eof;
    }
out:
    ok_env_drain(s);
    for (int i = 0; i < 2; i++) {
        free(inb[i]);
        if (outb[i]) {
            ok_zeroize(outb[i], out_cap);
            free(outb[i]);
        }
    }
    return rc;
}

ok_err ok_env_decrypt_stream(ok_provider *const *keys, size_t key_count, ok_reader in, ok_writer out,
                             const ok_stream_options *opt)
{
    ok_env_header *h = NULL;
    ok_env_session *s = NULL;
    unsigned threads = opt ? opt->threads : 0;
    OK_GUARD(ok_env_read_header(in, &h));
    ok_err rc = ok_env_decrypt_init(&s, h, keys, key_count, threads);
    if (rc == OK_OK)
        rc = decrypt_body(s, in, out, opt, batch_frames(threads, h->frame_size));
    ok_env_session_free(s);
    ok_env_header_free(h);
    return rc;
}

/* ---- File descriptors --------------------------------------------------------------------------- */

static ok_err fd_read(void *ctx, uint8_t *buf, size_t len, size_t *got)
{
    ok_fd_io *io = ctx;
    for (;;) {
        ssize_t n = read(io->fd, buf, len);
        if (n >= 0) {
            *got = (size_t)n;
            io->bytes += (uint64_t)n;
            return OK_OK;
        }
        if (errno != EINTR)
            return ok_fail(OK_ERR_IO, "read failed: %s", strerror(errno));
    }
}

static ok_err fd_write(void *ctx, const uint8_t *buf, size_t len)
{
    ok_fd_io *io = ctx;
    while (len) {
        ssize_t n = write(io->fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return ok_fail(OK_ERR_IO, "write failed: %s", strerror(errno));
        }
        buf += n;
        len -= (size_t)n;
        io->bytes += (uint64_t)n;
    }
    return OK_OK;
}

ok_reader ok_fd_reader(ok_fd_io *io)
{
    return (ok_reader){.read = fd_read, .ctx = io};
}

ok_writer ok_fd_writer(ok_fd_io *io)
{
    return (ok_writer){.write = fd_write, .ctx = io};
}
