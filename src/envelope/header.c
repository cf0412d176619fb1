/* Envelope header: serializing and parsing the header of docs/FORMAT.md. Parsing goes through the
 * bounds-checked cursor and checks every count and length against its hard limit before allocating.
 * Authentication of the header (commitment, tag) is the session's job, not this file's. */
#include <stdlib.h>
#include <string.h>

#include "envelope/header_internal.h"
#include "ownkey/envelope.h"

static const uint8_t MAGIC[4] = {'O', 'W', 'N', 'K'};

ok_err ok_env_header_prefix(const uint8_t prefix[OK_ENV_PREFIX_LEN], uint32_t *header_len)
{
    if (memcmp(prefix, MAGIC, 4) != 0)
        return ok_fail(OK_ERR_FORMAT, "not an ownkey envelope (bad magic)");
    if (prefix[4] != OK_ENV_VERSION)
        return ok_fail(OK_ERR_UNSUPPORTED, "unknown format version %u", prefix[4]);
    uint16_t suite = (uint16_t)(prefix[5] << 8 | prefix[6]);
    if (suite != OK_ENV_SUITE_AES256GCM_HKDF_COMMIT)
        return ok_fail(OK_ERR_UNSUPPORTED, "unknown algorithm suite 0x%04x", suite);
    uint32_t len = ok_load_u32(prefix + 7);
    if (len < OK_ENV_MIN_HEADER || len > OK_ENV_MAX_HEADER)
        return ok_fail(OK_ERR_LIMIT, "header length %u outside %u..%u", len, OK_ENV_MIN_HEADER, OK_ENV_MAX_HEADER);
    *header_len = len;
    return OK_OK;
}

/* ---- Parsing ------------------------------------------------------------------------------------ */

/* Reads a length-prefixed byte string of min..max bytes as a NUL-terminated string. */
static ok_err read_string(ok_cursor *c, int len_bytes, size_t min, size_t max, const char *what, char **out)
{
    size_t n;
    if (len_bytes == 1) {
        uint8_t v;
        OK_GUARD(ok_cursor_u8(c, &v));
        n = v;
    } else {
        uint16_t v;
        OK_GUARD(ok_cursor_u16(c, &v));
        n = v;
    }
    if (n < min || n > max)
        return ok_fail(OK_ERR_LIMIT, "%s length %zu outside %zu..%zu", what, n, min, max);
    const uint8_t *p;
    OK_GUARD(ok_cursor_bytes(c, n, &p));
    if (memchr(p, '\0', n))
        return ok_fail(OK_ERR_FORMAT, "%s contains a NUL byte", what);
    char *s = malloc(n + 1);
    if (!s)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    memcpy(s, p, n);
    s[n] = '\0';
    *out = s;
    return OK_OK;
}

static ok_err parse_context(ok_cursor *c, ok_env_header *h)
{
    uint16_t n;
    OK_GUARD(ok_cursor_u16(c, &n));
    if (n > OK_ENV_MAX_CONTEXT)
        return ok_fail(OK_ERR_LIMIT, "%u context entries (limit %u)", n, OK_ENV_MAX_CONTEXT);
    if (n == 0)
        return OK_OK;
    h->context = calloc(n, sizeof *h->context);
    if (!h->context)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    for (uint16_t i = 0; i < n; i++) {
        ok_env_context_entry *e = &h->context[i];
        OK_GUARD(read_string(c, 2, 1, OK_ENV_MAX_CONTEXT_KEY, "context key", &e->key));
        h->context_count = i + 1u;
        OK_GUARD(read_string(c, 2, 0, OK_ENV_MAX_CONTEXT_VALUE, "context value", &e->value));
        if (i > 0 && strcmp(h->context[i - 1].key, e->key) >= 0)
            return ok_fail(OK_ERR_FORMAT, "context keys not sorted and unique");
    }
    return OK_OK;
}

static ok_err parse_edk(ok_cursor *c, ok_edk *e)
{
    OK_GUARD(read_string(c, 1, 1, OK_EDK_PROVIDER_MAX, "provider", &e->provider));
    OK_GUARD(read_string(c, 2, 1, OK_EDK_KEY_ID_MAX, "key id", &e->key_id));
    OK_GUARD(read_string(c, 2, 0, OK_EDK_VERSION_MAX, "key version", &e->key_version));
    OK_GUARD(read_string(c, 1, 1, OK_EDK_ALG_MAX, "wrap algorithm", &e->wrap_alg));
    uint16_t n;
    OK_GUARD(ok_cursor_u16(c, &n));
    if (n < 1 || n > OK_EDK_CT_MAX)
        return ok_fail(OK_ERR_LIMIT, "wrapped key length %u outside 1..%u", n, OK_EDK_CT_MAX);
    e->ct = malloc(n);
    if (!e->ct)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    e->ct_len = n;
    return ok_cursor_copy(c, e->ct, n);
}

static ok_err parse_edks(ok_cursor *c, ok_env_header *h)
{
    uint16_t n;
    OK_GUARD(ok_cursor_u16(c, &n));
    unsigned limit = h->mode == OK_ENV_ALL_OF ? OK_ENV_MAX_LAYERS : OK_ENV_MAX_EDKS;
    if (n < 1 || n > limit)
        return ok_fail(OK_ERR_LIMIT, "%u wrapped data keys (allowed 1..%u)", n, limit);
    h->edks = calloc(n, sizeof *h->edks);
    if (!h->edks)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    for (uint16_t i = 0; i < n; i++) {
        h->edk_count = i + 1u;
        OK_GUARD(parse_edk(c, &h->edks[i]));
    }
    return OK_OK;
}

static ok_err parse_body(ok_cursor *c, ok_env_header *h)
{
    const uint8_t *prefix;
    OK_GUARD(ok_cursor_bytes(c, OK_ENV_PREFIX_LEN, &prefix));
    OK_GUARD(ok_env_header_prefix(prefix, &h->header_len));
    if (h->header_len != c->len)
        return ok_fail(OK_ERR_FORMAT, "header length field %u does not match %zu bytes", h->header_len, c->len);
    h->version = prefix[4];
    h->suite = (uint16_t)(prefix[5] << 8 | prefix[6]);
    OK_GUARD(ok_cursor_copy(c, h->message_id, sizeof h->message_id));
    OK_GUARD(ok_cursor_u32(c, &h->frame_size));
    if (h->frame_size < OK_ENV_MIN_FRAME || h->frame_size > OK_ENV_MAX_FRAME)
        return ok_fail(OK_ERR_LIMIT, "frame size %u outside %u..%u", h->frame_size, OK_ENV_MIN_FRAME, OK_ENV_MAX_FRAME);
    uint8_t mode;
    OK_GUARD(ok_cursor_u8(c, &mode));
    if (mode != OK_ENV_ANY_OF && mode != OK_ENV_ALL_OF)
        return ok_fail(OK_ERR_FORMAT, "unknown recipient mode %u", mode);
    h->mode = (ok_env_mode)mode;
    OK_GUARD(parse_context(c, h));
    OK_GUARD(parse_edks(c, h));
    OK_GUARD(ok_cursor_copy(c, h->commitment, sizeof h->commitment));
    OK_GUARD(ok_cursor_copy(c, h->tag, sizeof h->tag));
    if (ok_cursor_remaining(c) != 0)
        return ok_fail(OK_ERR_FORMAT, "%zu unexpected bytes at the end of the header", ok_cursor_remaining(c));
    return OK_OK;
}

ok_err ok_env_header_parse(const uint8_t *data, size_t len, ok_env_header **out)
{
    if (len < OK_ENV_PREFIX_LEN)
        return ok_fail(OK_ERR_TRUNCATED, "header shorter than its %d-byte prefix", OK_ENV_PREFIX_LEN);
    if (len > OK_ENV_MAX_HEADER)
        return ok_fail(OK_ERR_LIMIT, "header of %zu bytes exceeds %u", len, OK_ENV_MAX_HEADER);
    ok_env_header *h = calloc(1, sizeof *h);
    if (!h)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    ok_cursor c;
    ok_cursor_init(&c, data, len);
    ok_err rc = parse_body(&c, h);
    if (rc == OK_OK) {
        h->raw = malloc(len);
        if (!h->raw)
            rc = ok_fail(OK_ERR_NOMEM, "out of memory");
        else
            memcpy(h->raw, data, len);
    }
    if (rc != OK_OK) {
        ok_env_header_free(h);
        return rc;
    }
    *out = h;
    return OK_OK;
}

void ok_env_header_free(ok_env_header *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->context_count; i++) {
        free(h->context[i].key);
        free(h->context[i].value);
    }
    free(h->context);
    for (size_t i = 0; i < h->edk_count; i++)
        ok_edk_clear(&h->edks[i]);
    free(h->edks);
    free(h->raw);
    free(h);
}

/* ---- Serializing -------------------------------------------------------------------------------- */

static ok_err put_string(ok_buf *b, int len_bytes, const char *s, size_t min, size_t max, const char *what)
{
    size_t n = strlen(s);
    if (n < min || n > max)
        return ok_fail(OK_ERR_LIMIT, "%s length %zu outside %zu..%zu", what, n, min, max);
    OK_GUARD(len_bytes == 1 ? ok_buf_u8(b, (uint8_t)n) : ok_buf_u16(b, (uint16_t)n));
    return ok_buf_put(b, s, n);
}

static int compare_context(const void *a, const void *b)
{
    const ok_env_context_entry *x = a, *y = b;
    return strcmp(x->key, y->key);
}

ok_err ok_env_header_write_body(ok_buf *b, const ok_env_header_fields *f)
{
    if (f->context_count > OK_ENV_MAX_CONTEXT)
        return ok_fail(OK_ERR_LIMIT, "%zu context entries (limit %u)", f->context_count, OK_ENV_MAX_CONTEXT);
    size_t limit = f->mode == OK_ENV_ALL_OF ? OK_ENV_MAX_LAYERS : OK_ENV_MAX_EDKS;
    if (f->edk_count < 1 || f->edk_count > limit)
        return ok_fail(OK_ERR_LIMIT, "%zu recipients (allowed 1..%zu)", f->edk_count, limit);
    ok_env_context_entry *sorted = NULL;
    if (f->context_count) {
        sorted = malloc(f->context_count * sizeof *sorted);
        if (!sorted)
            return ok_fail(OK_ERR_NOMEM, "out of memory");
        memcpy(sorted, f->context, f->context_count * sizeof *sorted);
        qsort(sorted, f->context_count, sizeof *sorted, compare_context);
    }
    ok_err rc = OK_OK;
    OK_GUARD_GOTO(rc, ok_buf_put(b, MAGIC, 4), out);
    OK_GUARD_GOTO(rc, ok_buf_u8(b, OK_ENV_VERSION), out);
    OK_GUARD_GOTO(rc, ok_buf_u16(b, OK_ENV_SUITE_AES256GCM_HKDF_COMMIT), out);
    OK_GUARD_GOTO(rc, ok_buf_u32(b, 0), out); /* header_len, patched by the caller */
    OK_GUARD_GOTO(rc, ok_buf_put(b, f->message_id, OK_ENV_MESSAGE_ID_LEN), out);
    OK_GUARD_GOTO(rc, ok_buf_u32(b, f->frame_size), out);
    OK_GUARD_GOTO(rc, ok_buf_u8(b, (uint8_t)f->mode), out);
    OK_GUARD_GOTO(rc, ok_buf_u16(b, (uint16_t)f->context_count), out);
    for (size_t i = 0; i < f->context_count; i++) {
        if (i > 0 && strcmp(sorted[i - 1].key, sorted[i].key) == 0) {
            rc = ok_fail(OK_ERR_INVALID_ARG, "context key \"%s\" given twice", sorted[i].key);
            goto out;
        }
        OK_GUARD_GOTO(rc, put_string(b, 2, sorted[i].key, 1, OK_ENV_MAX_CONTEXT_KEY, "context key"), out);
        OK_GUARD_GOTO(rc, put_string(b, 2, sorted[i].value, 0, OK_ENV_MAX_CONTEXT_VALUE, "context value"), out);
    }
    OK_GUARD_GOTO(rc, ok_buf_u16(b, (uint16_t)f->edk_count), out);
    for (size_t i = 0; i < f->edk_count; i++) {
        const ok_edk *e = &f->edks[i];
        OK_GUARD_GOTO(rc, put_string(b, 1, e->provider, 1, OK_EDK_PROVIDER_MAX, "provider"), out);
        OK_GUARD_GOTO(rc, put_string(b, 2, e->key_id, 1, OK_EDK_KEY_ID_MAX, "key id"), out);
        OK_GUARD_GOTO(rc, put_string(b, 2, e->key_version, 0, OK_EDK_VERSION_MAX, "key version"), out);
        OK_GUARD_GOTO(rc, put_string(b, 1, e->wrap_alg, 1, OK_EDK_ALG_MAX, "wrap algorithm"), out);
        if (e->ct_len < 1 || e->ct_len > OK_EDK_CT_MAX) {
            rc = ok_fail(OK_ERR_LIMIT, "wrapped key of %zu bytes", e->ct_len);
            goto out;
        }
        OK_GUARD_GOTO(rc, ok_buf_u16(b, (uint16_t)e->ct_len), out);
        OK_GUARD_GOTO(rc, ok_buf_put(b, e->ct, e->ct_len), out);
    }
    OK_GUARD_GOTO(rc, ok_buf_put(b, f->commitment, OK_ENV_COMMITMENT_LEN), out);
    if (b->len + 16 > OK_ENV_MAX_HEADER) {
        rc = ok_fail(OK_ERR_LIMIT, "header of %zu bytes exceeds %u", b->len + 16, OK_ENV_MAX_HEADER);
        goto out;
    }
    ok_store_u32(b->data + 7, (uint32_t)(b->len + 16));
out:
    free(sorted);
    return rc;
}
