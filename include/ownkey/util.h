/* ownkey util layer: the error convention, secure memory, the bounds-checked cursor and growable
 * buffer every parser and writer uses, and base64url/hex codecs. Knows nothing of cryptography. */
#ifndef OWNKEY_UTIL_H
#define OWNKEY_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* ---- Errors --------------------------------------------------------------------------------------
 * Every fallible function returns ok_err. A failing function may attach a detail message with
 * ok_fail(); callers propagate with OK_GUARD and never log and return at once. */
typedef enum {
    OK_OK = 0,
    OK_ERR_INVALID_ARG,  /* caller passed something out of contract */
    OK_ERR_NOMEM,        /* allocation failed */
    OK_ERR_CRYPTO,       /* the crypto library failed unexpectedly */
    OK_ERR_AUTH,         /* authentication failed: tag, MAC, signature, unwrap integrity, commitment */
    OK_ERR_FORMAT,       /* malformed input */
    OK_ERR_LIMIT,        /* input exceeds a hard limit */
    OK_ERR_UNSUPPORTED,  /* unknown version, suite or algorithm; unsupported parameter */
    OK_ERR_TRUNCATED,    /* input ended early */
    OK_ERR_NO_RECIPIENT, /* no given key matches any wrapped data key */
    OK_ERR_IO,           /* read/write/open failed */
    OK_ERR_KEY,          /* key unreadable, of the wrong type, or unusable for the operation */
    OK_ERR_NOT_FOUND,    /* no such key, version, identity, ... */
    OK_ERR_CONFLICT,     /* the name exists, or is soft-deleted, or the state forbids the change */
    OK_ERR_FORBIDDEN,    /* not permitted: policy, disabled key, key_ops, validity window */
    OK_ERR_SEALED,       /* the vault is sealed */
    OK_ERR_LOCKED,       /* a data-service tenant is locked: its root key is unusable */
} ok_err;

/* Records a detail message for the current thread and returns err. */
ok_err ok_fail(ok_err err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The detail message of the last ok_fail() on this thread ("" if none). */
const char *ok_err_message(void);
void ok_err_clear(void);
/* A short fixed name for an error code ("authentication failed", ...). */
const char *ok_err_name(ok_err err);

#define OK_GUARD(expr)                  \
    do {                                \
        ok_err ok_guard_rc_ = (expr);   \
        if (ok_guard_rc_ != OK_OK)      \
            return ok_guard_rc_;        \
    } while (0)

/* Sets rc and jumps to label on failure: for functions with one cleanup path. */
#define OK_GUARD_GOTO(rc, expr, label)  \
    do {                                \
        (rc) = (expr);                  \
        if ((rc) != OK_OK)              \
            goto label;                 \
    } while (0)

/* ---- Secure memory ------------------------------------------------------------------------------ */
/* Sets up the locked arena (a power of two bytes) that ok_secure_alloc and OpenSSL's private-key
 * bignums come from; programs call it once at start. 1 = locked, 2 = arena without mlock (limits), 0 =
 * none (allocations then come from the ordinary heap, still zeroized on free). */
int ok_secure_heap_init(size_t size);
/* Allocates zeroed memory from the locked arena when there is one (and room in it). NULL on failure. */
void *ok_secure_alloc(size_t len);
/* Zeroizes and frees memory from ok_secure_alloc. NULL is fine. */
void ok_secure_free(void *p, size_t len);
/* Zeroizes memory in a way the compiler cannot elide. */
void ok_zeroize(void *p, size_t len);

/* ---- Bounds-checked reading cursor ---------------------------------------------------------------
 * Every read either succeeds completely or fails with OK_ERR_TRUNCATED and leaves the cursor alone. */
typedef struct {
    const uint8_t *data;
    size_t len;
    size_t pos;
} ok_cursor;

void ok_cursor_init(ok_cursor *c, const void *data, size_t len);
size_t ok_cursor_remaining(const ok_cursor *c);
ok_err ok_cursor_u8(ok_cursor *c, uint8_t *out);
ok_err ok_cursor_u16(ok_cursor *c, uint16_t *out); /* big-endian */
ok_err ok_cursor_u32(ok_cursor *c, uint32_t *out); /* big-endian */
ok_err ok_cursor_u64(ok_cursor *c, uint64_t *out); /* big-endian */
/* Points *out at the next n bytes without copying. */
ok_err ok_cursor_bytes(ok_cursor *c, size_t n, const uint8_t **out);
ok_err ok_cursor_copy(ok_cursor *c, void *out, size_t n);

/* ---- Growable write buffer ----------------------------------------------------------------------
 * Writes never overrun; the buffer grows up to max_len (0 = unbounded) and fails with OK_ERR_LIMIT past
 * it. ok_buf_free zeroizes before freeing, so a buffer may hold secrets. */
typedef struct {
    uint8_t *data;
    size_t len;
    size_t cap;
    size_t max_len;
} ok_buf;

void ok_buf_init(ok_buf *b, size_t max_len);
void ok_buf_free(ok_buf *b);
void ok_buf_reset(ok_buf *b); /* len = 0, keeps capacity (zeroized) */
ok_err ok_buf_reserve(ok_buf *b, size_t extra);
ok_err ok_buf_put(ok_buf *b, const void *p, size_t n);
ok_err ok_buf_u8(ok_buf *b, uint8_t v);
ok_err ok_buf_u16(ok_buf *b, uint16_t v);
ok_err ok_buf_u32(ok_buf *b, uint32_t v);
ok_err ok_buf_u64(ok_buf *b, uint64_t v);

/* ---- Fixed buffer -------------------------------------------------------------------------------
 * Appends into caller memory of a fixed size, for paths that must not allocate: a write that does not
 * fit sets `overflow` and nothing more is written, so a caller checks once at the end. */
typedef struct {
    uint8_t *p;
    size_t len;
    size_t cap;
    int overflow;
} ok_fixbuf;

void ok_fixbuf_init(ok_fixbuf *w, void *mem, size_t cap);
void ok_fixbuf_put(ok_fixbuf *w, const void *src, size_t n);
void ok_fixbuf_str(ok_fixbuf *w, const char *s); /* without its NUL */

/* Big-endian stores, for fixed layouts built in place. */
void ok_store_u32(uint8_t *p, uint32_t v);
void ok_store_u64(uint8_t *p, uint64_t v);
uint32_t ok_load_u32(const uint8_t *p);

/* ---- Codecs ------------------------------------------------------------------------------------- */
/* base64url without padding (RFC 4648 §5, as JOSE uses). Encode output is NUL-terminated and
 * malloc'ed. Decode refuses padding, whitespace and non-canonical trailing bits. */
ok_err ok_b64url_encode(const uint8_t *in, size_t len, char **out);
ok_err ok_b64url_decode(const char *in, size_t len, uint8_t **out, size_t *out_len);
/* Lenient decode for what other JOSE clients send: base64url or standard base64, with or without
 * padding (at most two '=' at the end). Text must be NUL-terminated. */
ok_err ok_b64_decode_any(const char *text, uint8_t **out, size_t *out_len);
/* Lowercase hex. Decode output is malloc'ed (at least 1 byte even when empty). */
ok_err ok_hex_encode(const uint8_t *in, size_t len, char **out);
ok_err ok_hex_decode(const char *in, uint8_t **out, size_t *out_len);

/* ---- Names ------------------------------------------------------------------------------------------
 * 1 if s has 1..max characters, each an ASCII letter or digit or one of `extra` (key names: "-";
 * identities: "._-"; policy patterns: "-*?"). The one check behind every name the project accepts. */
int ok_name_valid(const char *s, size_t max, const char *extra);

/* ---- ISO 8601 durations ("P90D", "PT12H", "P1Y2M3DT4H5M6S", "P2W"); Y = 365 days, M = 30 days ---- */
ok_err ok_duration_parse(const char *text, int64_t *seconds);
void ok_duration_format(int64_t seconds, char *out, size_t len);

#endif
