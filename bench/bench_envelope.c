/* bench_envelope: throughput of the envelope format, for bench/envelope and docs/BENCHMARKS.md.
 *
 * Measures, on a logical stream of --size-mib MiB (default 1024):
 *   - the session API (ok_env_encrypt_init + ok_env_seal in batches; ok_env_header_parse +
 *     ok_env_decrypt_init + ok_env_open), 1 thread and all cores. Batches are threads * 16 frames
 *     (at most 16 MiB), as src/envelope/stream.c makes them. Encryption seals one reused input batch
 *     over and over, as `openssl speed` reuses one buffer. Decryption cannot reuse its input (every
 *     frame is bound to its position): it opens one 16 MiB envelope, sealed once, again and again with a
 *     new session each time (header, unwrap and pool creation timed), so its
 *     input is as cache-resident as encryption's; and, for comparison, one stored envelope of the
 *     whole stream read from memory.
 *   - the whole-stream helpers (ok_env_encrypt_stream / ok_env_decrypt_stream) with a memory reader
 *     (memcpy from a reused 1 MiB buffer, or from the stored envelope) and a writer that discards.
 *   - a frame-size sweep (session encrypt, 1 thread).
 * Each figure is the best of --runs runs (default 3) after one warm-up run, timed with CLOCK_MONOTONIC.
 * MB/s are 10^6 plaintext bytes per second, the unit of `openssl speed` (its "k" is 1000 bytes/s).
 * Given --openssl-one-core MB/s, prints the ratios against it and PASS/MISS against the targets. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ownkey/envelope.h"

#define MIB (1024u * 1024u)
#define BATCH_FRAMES_PER_THREAD 16 /* as src/envelope/stream.c; --frames-per-thread changes it here */
#define BATCH_MAX_BYTES (16u * MIB)
#define STREAM_SOURCE_BYTES MIB
#define TARGET_ONE_THREAD 0.9
#define TARGET_ALL_CORES 1.7

typedef struct {
    uint64_t total;         /* logical plaintext bytes per run */
    unsigned runs;
    unsigned cores;
    ok_provider *key;
    uint8_t *random;        /* BATCH_MAX_BYTES of random plaintext, the reused input */
    uint8_t *envelope;      /* a stored envelope of the whole stream (64 KiB frames), for decryption */
    size_t envelope_len;
} bench;

typedef double (*run_fn)(bench *b, unsigned threads, uint32_t frame_size);

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void check(ok_err rc, const char *what)
{
    if (rc != OK_OK) {
        fprintf(stderr, "bench_envelope: %s: %s (%s)\n", what, ok_err_name(rc), ok_err_message());
        exit(1);
    }
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "bench_envelope: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

static unsigned frames_per_thread = BATCH_FRAMES_PER_THREAD;

static size_t batch_frames(unsigned threads, uint32_t frame_size)
{
    size_t n = (size_t)threads * frames_per_thread;
    size_t cap = BATCH_MAX_BYTES / frame_size;
    if (n > cap)
        n = cap;
    return n ? n : 1;
}

/* ---- Session API -------------------------------------------------------------------------------- */

/* Encrypts the logical stream into out_buf (NULL: into one reused batch buffer). Returns seconds. */
static double session_encrypt(bench *b, unsigned threads, uint32_t frame_size, uint8_t *out_buf, size_t *out_len)
{
    size_t batch = batch_frames(threads, frame_size) * frame_size;
    size_t out_cap = batch + (batch / frame_size + 1) * OK_ENV_FRAME_OVERHEAD;
    uint8_t *reused = out_buf ? NULL : xmalloc(out_cap);
    ok_buf header;
    ok_buf_init(&header, OK_ENV_MAX_HEADER);
    ok_env_session *s = NULL;
    ok_provider *recipients[1] = {b->key};
    ok_env_encrypt_params p = {.recipients = recipients, .recipient_count = 1, .frame_size = frame_size,
                               .threads = threads};
    size_t pos = 0;

    double t0 = now();
    check(ok_env_encrypt_init(&s, &p, &header), "encrypt init");
    if (out_buf) {
        memcpy(out_buf, header.data, header.len);
        pos = header.len;
    }
    for (uint64_t done = 0; done < b->total || !ok_env_session_done(s);) {
        size_t n = b->total - done < batch ? (size_t)(b->total - done) : batch;
        int final = done + n == b->total;
        size_t sealed = 0;
        check(ok_env_seal(s, b->random, n, final, out_buf ? out_buf + pos : reused, &sealed), "seal");
        if (out_buf)
            pos += sealed;
        done += n;
    }
    double t = now() - t0;

    if (out_len)
        *out_len = pos;
    ok_env_session_free(s);
    ok_buf_free(&header);
    free(reused);
    return t;
}

static double run_session_encrypt(bench *b, unsigned threads, uint32_t frame_size)
{
    return session_encrypt(b, threads, frame_size, NULL, NULL);
}

/* Decryption with cache-resident input, the counterpart of openssl speed's reused buffer: frames are bound
 * to their envelope and position, so the reusable unit is a whole envelope. One envelope of REUSED_MIB
 * is sealed once (untimed); it is then decrypted again and again, each time with a new session (header
 * parse, unwrap, commitment and header tag, a new thread pool: all timed), in the batches the stream
 * helpers use, until the logical stream's size has been opened. */
#define REUSED_MIB 16
static double run_session_decrypt(bench *b, unsigned threads, uint32_t frame_size)
{
    ok_buf header;
    ok_buf_init(&header, OK_ENV_MAX_HEADER);
    ok_env_session *seal = NULL;
    ok_provider *recipients[1] = {b->key};
    ok_env_encrypt_params p = {.recipients = recipients, .recipient_count = 1, .frame_size = frame_size,
                               .threads = 1};
    check(ok_env_encrypt_init(&seal, &p, &header), "encrypt init");
    size_t env_plain = (size_t)REUSED_MIB << 20;
    if (env_plain > b->total)
        env_plain = (size_t)b->total;
    size_t src_batch = batch_frames(1, frame_size) * frame_size;
    size_t cap = header.len + env_plain + (env_plain / frame_size + 2) * OK_ENV_FRAME_OVERHEAD;
    uint8_t *env = xmalloc(cap);
    memcpy(env, header.data, header.len);
    size_t env_len = header.len;
    for (size_t done = 0; done < env_plain;) {
        size_t n = env_plain - done < src_batch ? env_plain - done : src_batch, sealed = 0;
        check(ok_env_seal(seal, b->random, n, done + n == env_plain, env + env_len, &sealed), "seal");
        env_len += sealed;
        done += n;
    }
    ok_env_session_free(seal);

    size_t nframes = batch_frames(threads, frame_size);
    size_t wire_batch = nframes * (frame_size + OK_ENV_FRAME_OVERHEAD);
    uint8_t *out = xmalloc(nframes * (size_t)frame_size);
    uint64_t plain_total = 0;
    double t0 = now();
    while (plain_total < b->total) {
        ok_env_header *h = NULL;
        ok_env_session *s = NULL;
        check(ok_env_header_parse(env, header.len, &h), "header parse");
        check(ok_env_decrypt_init(&s, h, &b->key, 1, threads), "decrypt init");
        int final = 0;
        for (size_t pos = header.len; !final;) {
            size_t n = env_len - pos < wire_batch ? env_len - pos : wire_batch, used = 0, plain = 0;
            check(ok_env_open(s, env + pos, n, &used, out, &plain, &final), "open");
            pos += used;
            plain_total += plain;
        }
        ok_env_session_free(s);
        ok_env_header_free(h);
    }
    double t = now() - t0;
    free(out);
    free(env);
    ok_buf_free(&header);
    /* Report the time for exactly the logical stream's size (the last envelope may overshoot it). */
    return t * (double)b->total / (double)plain_total;
}

/* Decryption of the stored envelope of the whole stream: input streamed from memory (DRAM), not cache. */
static double run_session_decrypt_stored(bench *b, unsigned threads, uint32_t frame_size)
{
    (void)frame_size; /* the stored envelope's */
    ok_env_header *h = NULL;
    ok_env_session *s = NULL;
    uint32_t header_len = 0;
    uint64_t plain_total = 0;
    int final = 0;

    double t0 = now();
    check(ok_env_header_prefix(b->envelope, &header_len), "header prefix");
    check(ok_env_header_parse(b->envelope, header_len, &h), "header parse");
    check(ok_env_decrypt_init(&s, h, &b->key, 1, threads), "decrypt init");
    size_t nframes = batch_frames(threads, h->frame_size);
    size_t chunk = nframes * ok_env_wire_frame_size(s);
    uint8_t *out = xmalloc(nframes * h->frame_size);
    size_t pos = header_len;
    while (!final) {
        size_t n = b->envelope_len - pos < chunk ? b->envelope_len - pos : chunk;
        size_t used = 0, plain = 0;
        check(ok_env_open(s, b->envelope + pos, n, &used, out, &plain, &final), "open");
        if (used == 0 && !final) {
            fprintf(stderr, "bench_envelope: decryption made no progress\n");
            exit(1);
        }
        pos += used;
        plain_total += plain;
    }
    double t = now() - t0;

    if (plain_total != b->total || pos != b->envelope_len) {
        fprintf(stderr, "bench_envelope: decrypted %llu of %llu bytes\n", (unsigned long long)plain_total,
                (unsigned long long)b->total);
        exit(1);
    }
    free(out);
    ok_env_session_free(s);
    ok_env_header_free(h);
    return t;
}

/* ---- Whole-stream helpers ------------------------------------------------------------------------ */

typedef struct {
    const uint8_t *src;
    size_t src_len;  /* the source repeats every src_len bytes */
    uint64_t total;  /* logical length */
    uint64_t pos;
} mem_reader;

static ok_err mem_read(void *ctx, uint8_t *buf, size_t len, size_t *got)
{
    mem_reader *r = ctx;
    size_t n = r->total - r->pos < len ? (size_t)(r->total - r->pos) : len;
    size_t done = 0;
    while (done < n) {
        size_t off = (size_t)((r->pos + done) % r->src_len);
        size_t piece = r->src_len - off < n - done ? r->src_len - off : n - done;
        memcpy(buf + done, r->src + off, piece);
        done += piece;
    }
    r->pos += n;
    *got = n;
    return OK_OK;
}

static ok_err discard_write(void *ctx, const uint8_t *buf, size_t len)
{
    (void)buf;
    *(uint64_t *)ctx += len;
    return OK_OK;
}

static double run_stream_encrypt(bench *b, unsigned threads, uint32_t frame_size)
{
    mem_reader r = {.src = b->random, .src_len = STREAM_SOURCE_BYTES, .total = b->total};
    uint64_t written = 0;
    ok_provider *recipients[1] = {b->key};
    ok_env_encrypt_params p = {.recipients = recipients, .recipient_count = 1, .frame_size = frame_size};
    ok_stream_options opt = {.threads = threads};

    double t0 = now();
    check(ok_env_encrypt_stream(&p, (ok_reader){.read = mem_read, .ctx = &r},
                                (ok_writer){.write = discard_write, .ctx = &written}, &opt),
          "encrypt stream");
    double t = now() - t0;

    if (r.pos != b->total) {
        fprintf(stderr, "bench_envelope: encrypt stream read %llu bytes\n", (unsigned long long)r.pos);
        exit(1);
    }
    return t;
}

static double run_stream_decrypt(bench *b, unsigned threads, uint32_t frame_size)
{
    (void)frame_size;
    mem_reader r = {.src = b->envelope, .src_len = b->envelope_len, .total = b->envelope_len};
    uint64_t written = 0;
    ok_stream_options opt = {.threads = threads};

    double t0 = now();
    check(ok_env_decrypt_stream(&b->key, 1, (ok_reader){.read = mem_read, .ctx = &r},
                                (ok_writer){.write = discard_write, .ctx = &written}, &opt),
          "decrypt stream");
    double t = now() - t0;

    if (written != b->total) {
        fprintf(stderr, "bench_envelope: decrypt stream wrote %llu bytes\n", (unsigned long long)written);
        exit(1);
    }
    return t;
}

/* ---- Measuring and reporting --------------------------------------------------------------------- */

/* One warm-up run, then the best (shortest) of b->runs runs, as MB/s of plaintext. */
static double measure(bench *b, run_fn fn, unsigned threads, uint32_t frame_size)
{
    double best = 0;
    fn(b, threads, frame_size);
    for (unsigned i = 0; i < b->runs; i++) {
        double t = fn(b, threads, frame_size);
        if (i == 0 || t < best)
            best = t;
    }
    return (double)b->total / best / 1e6;
}

static void print_figure(const char *what, unsigned threads, double mbps)
{
    printf("  %-38s %3u thread%s %10.1f MB/s\n", what, threads, threads == 1 ? " " : "s", mbps);
    fflush(stdout);
}

static void print_ratio(const char *what, double mbps, double base, double target)
{
    double ratio = mbps / base;
    printf("  %-44s %5.2fx  (target >= %.1fx)  %s\n", what, ratio, target, ratio >= target ? "PASS" : "MISS");
}

static void usage(void)
{
    fputs("usage: bench_envelope [--size-mib N] [--runs N] [--threads N] [--no-sweep]\n"
          "                      [--openssl-one-core MB/s] [--openssl-all-cores MB/s]\n"
          "                      [--frames-per-thread N]  (session API batches only; default 16)\n",
          stderr);
    exit(2);
}

static double parse_number(const char *s)
{
    char *end = NULL;
    double v = strtod(s, &end);
    if (!s[0] || *end || v <= 0)
        usage();
    return v;
}

static ok_provider *make_key(void)
{
    uint8_t k[OK_AES256_KEY_LEN];
    ok_provider *key = NULL;
    check(ok_random(k, sizeof k), "random");
    ok_jwk jwk = {.kty = OK_JWK_OCT, .kid = (char *)"bench", .k = k, .k_len = sizeof k};
    check(ok_file_provider_from_jwk(&jwk, &key), "key");
    ok_zeroize(k, sizeof k);
    return key;
}

int main(int argc, char **argv)
{
    bench b = {.total = 1024ull * MIB, .runs = 3, .cores = ok_online_cores()};
    double openssl_one = 0, openssl_all = 0;
    int sweep = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--no-sweep"))
            sweep = 0;
        else if (i + 1 >= argc)
            usage();
        else if (!strcmp(argv[i], "--size-mib"))
            b.total = (uint64_t)parse_number(argv[++i]) * MIB;
        else if (!strcmp(argv[i], "--runs"))
            b.runs = (unsigned)parse_number(argv[++i]);
        else if (!strcmp(argv[i], "--frames-per-thread"))
            frames_per_thread = (unsigned)parse_number(argv[++i]);
        else if (!strcmp(argv[i], "--threads"))
            b.cores = (unsigned)parse_number(argv[++i]);
        else if (!strcmp(argv[i], "--openssl-one-core"))
            openssl_one = parse_number(argv[++i]);
        else if (!strcmp(argv[i], "--openssl-all-cores"))
            openssl_all = parse_number(argv[++i]);
        else
            usage();
    }
    if (b.total == 0 || b.runs == 0 || b.cores == 0)
        usage();

    b.key = make_key();
    b.random = xmalloc(BATCH_MAX_BYTES);
    check(ok_random(b.random, BATCH_MAX_BYTES), "random");
    /* The stored envelope for decryption: the whole stream, default frames, sealed once untimed. */
    size_t frames = (size_t)(b.total / OK_ENV_DEFAULT_FRAME) + 1;
    b.envelope = xmalloc((size_t)b.total + frames * OK_ENV_FRAME_OVERHEAD + OK_ENV_MAX_HEADER);
    session_encrypt(&b, b.cores, OK_ENV_DEFAULT_FRAME, b.envelope, &b.envelope_len);

    unsigned all = b.cores;
    printf("ownkey envelope, %llu MiB logical stream, %u-byte frames unless stated, best of %u after a warm-up\n",
           (unsigned long long)(b.total / MIB), OK_ENV_DEFAULT_FRAME, b.runs);
    printf("  method: session encrypt seals one reused, cache-resident input batch (threads x %u frames,\n"
           "  <= 16 MiB) again and again, as openssl speed reuses one buffer. Frames are bound to their\n"
           "  position, so decryption reuses a whole envelope: session decrypt opens one 16 MiB envelope,\n"
           "  sealed once, again and again with a new session each time; \"stored envelope\" opens one envelope\n"
           "  of the whole stream kept in memory (read from DRAM). Stream figures: the reader memcpy's from a\n"
           "  reused 1 MiB buffer (encrypt) or from the stored envelope (decrypt); the writer discards.\n"
           "  MB/s = 10^6 plaintext bytes per second.\n\n",
           frames_per_thread);

    printf("session API (ok_env_seal / ok_env_open):\n");
    double enc1 = measure(&b, run_session_encrypt, 1, OK_ENV_DEFAULT_FRAME);
    print_figure("encrypt", 1, enc1);
    double encN = measure(&b, run_session_encrypt, all, OK_ENV_DEFAULT_FRAME);
    print_figure("encrypt", all, encN);
    double dec1 = measure(&b, run_session_decrypt, 1, OK_ENV_DEFAULT_FRAME);
    print_figure("decrypt", 1, dec1);
    double decN = measure(&b, run_session_decrypt, all, OK_ENV_DEFAULT_FRAME);
    print_figure("decrypt", all, decN);
    print_figure("decrypt, stored envelope (from DRAM)", 1, measure(&b, run_session_decrypt_stored, 1, 0));
    print_figure("decrypt, stored envelope (from DRAM)", all, measure(&b, run_session_decrypt_stored, all, 0));

    printf("\nend to end (ok_env_encrypt_stream / ok_env_decrypt_stream, memory reader, discarding writer):\n");
    double senc1 = measure(&b, run_stream_encrypt, 1, OK_ENV_DEFAULT_FRAME);
    print_figure("encrypt", 1, senc1);
    double sencN = measure(&b, run_stream_encrypt, all, OK_ENV_DEFAULT_FRAME);
    print_figure("encrypt", all, sencN);
    double sdec1 = measure(&b, run_stream_decrypt, 1, OK_ENV_DEFAULT_FRAME);
    print_figure("decrypt", 1, sdec1);
    double sdecN = measure(&b, run_stream_decrypt, all, OK_ENV_DEFAULT_FRAME);
    print_figure("decrypt", all, sdecN);

    if (sweep) {
        static const uint32_t sizes[] = {4096, 16384, 65536, 262144, 1048576};
        printf("\nframe-size sweep (session encrypt, 1 thread):\n");
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            double mbps = measure(&b, run_session_encrypt, 1, sizes[i]);
            double overhead = 100.0 * OK_ENV_FRAME_OVERHEAD / sizes[i];
            printf("  frame %7u bytes (%4u KiB): %10.1f MB/s   wire overhead %.3f%%\n", sizes[i], sizes[i] / 1024,
                   mbps, overhead);
            fflush(stdout);
        }
    }

    if (openssl_one > 0) {
        printf("\nagainst openssl speed -evp aes-256-gcm -bytes 65536, one core: %.1f MB/s", openssl_one);
        if (openssl_all > 0)
            printf(" (all cores: %.1f MB/s)", openssl_all);
        printf("\n");
        print_ratio("session encrypt, 1 thread / openssl 1 core", enc1, openssl_one, TARGET_ONE_THREAD);
        print_ratio("session encrypt, all cores / openssl 1 core", encN, openssl_one, TARGET_ALL_CORES);
        print_ratio("session decrypt, 1 thread / openssl 1 core", dec1, openssl_one, TARGET_ONE_THREAD);
        print_ratio("session decrypt, all cores / openssl 1 core", decN, openssl_one, TARGET_ALL_CORES);
        print_ratio("stream encrypt, 1 thread / openssl 1 core", senc1, openssl_one, TARGET_ONE_THREAD);
        print_ratio("stream encrypt, all cores / openssl 1 core", sencN, openssl_one, TARGET_ALL_CORES);
        print_ratio("stream decrypt, 1 thread / openssl 1 core", sdec1, openssl_one, TARGET_ONE_THREAD);
        print_ratio("stream decrypt, all cores / openssl 1 core", sdecN, openssl_one, TARGET_ALL_CORES);
        if (openssl_all > 0)
            printf("  (openssl itself, all cores / one core: %.2fx)\n", openssl_all / openssl_one);
    }

    free(b.envelope);
    free(b.random);
    ok_provider_free(b.key);
    return 0;
}
