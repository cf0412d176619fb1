/* ownkey envelope: the framed, committed, authenticated encryption format of docs/FORMAT.md, as a
 * streaming session (init, seal/open frames, final) and as whole-stream helpers over reader/writer
 * callbacks that use several cores. Knows key providers only through include/ownkey/provider.h. */
#ifndef OWNKEY_ENVELOPE_H
#define OWNKEY_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "ownkey/provider.h"
#include "ownkey/util.h"

#define OK_ENV_VERSION 1
#define OK_ENV_SUITE_AES256GCM_HKDF_COMMIT 0x0001
#define OK_ENV_PREFIX_LEN 11
#define OK_ENV_MESSAGE_ID_LEN 32
#define OK_ENV_COMMITMENT_LEN 32
#define OK_ENV_DATA_KEY_LEN 32
#define OK_ENV_MIN_HEADER 112u
#define OK_ENV_MAX_HEADER (256u * 1024u)
#define OK_ENV_MIN_FRAME 64u
#define OK_ENV_MAX_FRAME (4u * 1024u * 1024u)
#define OK_ENV_DEFAULT_FRAME (64u * 1024u)
#define OK_ENV_MAX_CONTEXT 64u
#define OK_ENV_MAX_CONTEXT_KEY 256u
#define OK_ENV_MAX_CONTEXT_VALUE 4096u
#define OK_ENV_MAX_EDKS 64u
#define OK_ENV_MAX_LAYERS 16u
#define OK_ENV_MAX_FRAMES 0x100000000ull
#define OK_ENV_FRAME_OVERHEAD 20u /* u32 len_flag + 16-byte tag */

typedef enum { OK_ENV_ANY_OF = 1, OK_ENV_ALL_OF = 2 } ok_env_mode;

typedef struct {
    char *key;
    char *value;
} ok_env_context_entry;

/* A parsed header. Everything in it has been bounds-checked but not yet authenticated: nothing in it is
 * to be trusted until a session has opened it with a key. */
typedef struct {
    uint8_t version;
    uint16_t suite;
    uint32_t header_len;
    uint8_t message_id[OK_ENV_MESSAGE_ID_LEN];
    uint32_t frame_size;
    ok_env_mode mode;
    size_t context_count;
    ok_env_context_entry *context; /* sorted by key */
    size_t edk_count;
    ok_edk *edks;
    uint8_t commitment[OK_ENV_COMMITMENT_LEN];
    uint8_t tag[16];
    uint8_t *raw; /* the header bytes as read (header_len) */
} ok_env_header;

/* Checks the fixed prefix (magic, version, suite, header_len within limits) and returns header_len. */
ok_err ok_env_header_prefix(const uint8_t prefix[OK_ENV_PREFIX_LEN], uint32_t *header_len);
/* Parses exactly len header bytes. */
ok_err ok_env_header_parse(const uint8_t *data, size_t len, ok_env_header **out);
void ok_env_header_free(ok_env_header *h);

/* ---- Streaming session (state machine: HEADER -> BODY -> DONE, or FAILED for good) ---------------- */
typedef struct ok_env_session ok_env_session;

typedef struct {
    ok_provider *const *recipients;
    size_t recipient_count;
    ok_env_mode mode;                  /* 0 = any-of */
    const ok_env_context_entry *context; /* any order; duplicates refused */
    size_t context_count;
    uint32_t frame_size;               /* 0 = OK_ENV_DEFAULT_FRAME */
    unsigned threads;                  /* 0 = all online cores */
} ok_env_encrypt_params;

/* Creates the data key, wraps it for every recipient and writes the whole header to header_out. */
ok_err ok_env_encrypt_init(ok_env_session **out, const ok_env_encrypt_params *p, ok_buf *header_out);
/* Opens a header with the given keys: unwraps, checks the commitment and the header tag. */
ok_err ok_env_decrypt_init(ok_env_session **out, const ok_env_header *h, ok_provider *const *keys,
                           size_t key_count, unsigned threads);
uint32_t ok_env_session_frame_size(const ok_env_session *s);
/* Bytes of output ok_env_seal writes for in_len bytes of plaintext. */
size_t ok_env_sealed_size(const ok_env_session *s, size_t in_len, int final);
/* Seals in_len bytes as frames. Unless final, in_len must be a whole number of frames; with final, the
 * last (possibly partial or empty) frame is the final one and the session is DONE. Frames are sealed in
 * parallel when the session has threads. out may not overlap in. */
ok_err ok_env_seal(ok_env_session *s, const uint8_t *in, size_t in_len, int final, uint8_t *out, size_t *out_len);
/* Opens whole wire frames from in. Sets *consumed (a partial frame at the end is left unconsumed),
 * writes their verified plaintext to out (room for (in_len / wire frame) * frame_size bytes, or
 * frame_size when less), and sets *final when the final frame was opened. Any bytes after the final
 * frame fail with OK_ERR_FORMAT. On failure nothing of this call's output may be used. */
ok_err ok_env_open(ok_env_session *s, const uint8_t *in, size_t in_len, size_t *consumed, uint8_t *out,
                   size_t *out_len, int *final);
/* Wire bytes of one full frame. */
size_t ok_env_wire_frame_size(const ok_env_session *s);
/* Frames sealed or opened so far. */
uint64_t ok_env_frames_done(const ok_env_session *s);
int ok_env_session_done(const ok_env_session *s);
void ok_env_session_free(ok_env_session *s);

/* ---- Whole streams over callbacks ---------------------------------------------------------------- */
typedef struct {
    /* Reads up to len bytes; *got = 0 means end of input. */
    ok_err (*read)(void *ctx, uint8_t *buf, size_t len, size_t *got);
    void *ctx;
} ok_reader;

typedef struct {
    ok_err (*write)(void *ctx, const uint8_t *buf, size_t len);
    void *ctx;
} ok_writer;

typedef struct {
    unsigned threads;                                 /* 0 = all online cores */
    void (*progress)(void *ctx, uint64_t bytes_in);   /* called after each batch; may be NULL */
    void *progress_ctx;
} ok_stream_options;

ok_err ok_env_encrypt_stream(const ok_env_encrypt_params *p, ok_reader in, ok_writer out,
                             const ok_stream_options *opt);
/* Reads and parses a header from a stream (for inspect and decrypt). */
ok_err ok_env_read_header(ok_reader in, ok_env_header **out);
/* Decrypts a whole stream with any of the keys; writes only authenticated plaintext, in order. */
ok_err ok_env_decrypt_stream(ok_provider *const *keys, size_t key_count, ok_reader in, ok_writer out,
                             const ok_stream_options *opt);

/* Readers and writers over file descriptors. */
typedef struct {
    int fd;
    uint64_t bytes;
} ok_fd_io;
ok_reader ok_fd_reader(ok_fd_io *io);
ok_writer ok_fd_writer(ok_fd_io *io);

unsigned ok_online_cores(void);

/* ---- Random access (appended for the data service) ------------------------------------------------
 * Opens one wire frame at a given position, independent of the sequential position of ok_env_open (which
 * it neither uses nor moves): the frame with 0-based index `index` is frame number index + 1 of
 * docs/FORMAT.md, sealed with that number in its nonce and AAD, so a frame presented at another index
 * fails authentication. wire holds exactly that one frame (its length field must match wire_len). Writes
 * its verified plaintext to out (room for frame_size bytes), sets *out_len and *final (1 when the frame
 * is the envelope's final frame; the caller checks that this is the index it expects to be last).
 * Failures (bad length, authentication) fail the session for good, and out is wiped. */
ok_err ok_env_open_frame(ok_env_session *s, uint64_t index, const uint8_t *wire, size_t wire_len, uint8_t *out,
                         size_t *out_len, int *final);

#endif
