/* KMIP TTLV encoding and decoding (see kmip_ttlv.h). Owns the byte layout only: every read goes through
 * ok_cursor and every write through ok_buf; the message structure of KMIP lives in kmip_client.c. */
#include <stdlib.h>
#include <string.h>

#include "providers/kmip_ttlv.h"

static const uint8_t ZERO_PAD[8];

static size_t padded(size_t len)
{
    return (len + 7) & ~(size_t)7;
}

static int tag_valid(uint32_t tag)
{
    /* 0x42xxxx: tags the specification defines; 0x54xxxx: extensions. */
    return (tag >> 16) == 0x42 || (tag >> 16) == 0x54;
}

/* ---- Writing ------------------------------------------------------------------------------------ */

void ok_ttlv_writer_init(ok_ttlv_writer *w, ok_buf *buf)
{
    memset(w, 0, sizeof *w);
    w->buf = buf;
}

static int writer_ok(ok_ttlv_writer *w, uint32_t tag)
{
    if (w->err != OK_OK)
        return 0;
    if (!tag_valid(tag) || tag > 0xffffff) {
        w->err = ok_fail(OK_ERR_INVALID_ARG, "TTLV tag 0x%06x is not a KMIP tag", (unsigned)tag);
        return 0;
    }
    return 1;
}

static void put_header(ok_ttlv_writer *w, uint32_t tag, uint8_t type, size_t len)
{
    if (len > OK_TTLV_MAX_LEN) {
        w->err = ok_fail(OK_ERR_LIMIT, "TTLV value of %zu bytes exceeds the limit", len);
        return;
    }
    uint8_t h[OK_TTLV_HEADER_LEN];
    h[0] = (uint8_t)(tag >> 16);
    h[1] = (uint8_t)(tag >> 8);
    h[2] = (uint8_t)tag;
    h[3] = type;
    ok_store_u32(h + 4, (uint32_t)len);
    w->err = ok_buf_put(w->buf, h, sizeof h);
}

/* Header, value, zero padding to 8. */
static void put_item(ok_ttlv_writer *w, uint32_t tag, uint8_t type, const void *value, size_t len)
{
    if (!writer_ok(w, tag))
        return;
    put_header(w, tag, type, len);
    if (w->err == OK_OK && len)
        w->err = ok_buf_put(w->buf, value, len);
    if (w->err == OK_OK && padded(len) != len)
        w->err = ok_buf_put(w->buf, ZERO_PAD, padded(len) - len);
}

void ok_ttlv_begin(ok_ttlv_writer *w, uint32_t tag)
{
    if (!writer_ok(w, tag))
        return;
    if (w->depth >= OK_TTLV_MAX_DEPTH) {
        w->err = ok_fail(OK_ERR_LIMIT, "TTLV structures nested deeper than %d", OK_TTLV_MAX_DEPTH);
        return;
    }
    w->open[w->depth++] = w->buf->len;
    put_header(w, tag, OK_TTLV_STRUCTURE, 0); /* length patched by ok_ttlv_end */
}

void ok_ttlv_end(ok_ttlv_writer *w)
{
    if (w->err != OK_OK)
        return;
    if (w->depth == 0) {
        w->err = ok_fail(OK_ERR_INVALID_ARG, "TTLV structure closed twice");
        return;
    }
    size_t start = w->open[--w->depth];
    size_t len = w->buf->len - start - OK_TTLV_HEADER_LEN;
    if (len > OK_TTLV_MAX_LEN) {
        w->err = ok_fail(OK_ERR_LIMIT, "TTLV structure of %zu bytes exceeds the limit", len);
        return;
    }
    ok_store_u32(w->buf->data + start + 4, (uint32_t)len);
}

void ok_ttlv_int(ok_ttlv_writer *w, uint32_t tag, int32_t v)
{
    uint8_t b[4];
    ok_store_u32(b, (uint32_t)v);
    put_item(w, tag, OK_TTLV_INTEGER, b, sizeof b);
}

void ok_ttlv_long(ok_ttlv_writer *w, uint32_t tag, int64_t v)
{
    uint8_t b[8];
    ok_store_u64(b, (uint64_t)v);
    put_item(w, tag, OK_TTLV_LONG, b, sizeof b);
}

void ok_ttlv_enum(ok_ttlv_writer *w, uint32_t tag, uint32_t v)
{
    uint8_t b[4];
    ok_store_u32(b, v);
    put_item(w, tag, OK_TTLV_ENUM, b, sizeof b);
}

void ok_ttlv_bool(ok_ttlv_writer *w, uint32_t tag, int v)
{
    uint8_t b[8];
    ok_store_u64(b, v ? 1 : 0);
    put_item(w, tag, OK_TTLV_BOOL, b, sizeof b);
}

void ok_ttlv_date_time(ok_ttlv_writer *w, uint32_t tag, int64_t unix_seconds)
{
    uint8_t b[8];
    ok_store_u64(b, (uint64_t)unix_seconds);
    put_item(w, tag, OK_TTLV_DATE_TIME, b, sizeof b);
}

void ok_ttlv_interval(ok_ttlv_writer *w, uint32_t tag, uint32_t seconds)
{
    uint8_t b[4];
    ok_store_u32(b, seconds);
    put_item(w, tag, OK_TTLV_INTERVAL, b, sizeof b);
}

void ok_ttlv_text(ok_ttlv_writer *w, uint32_t tag, const char *s, size_t len)
{
    put_item(w, tag, OK_TTLV_TEXT, s, len);
}

void ok_ttlv_bytes(ok_ttlv_writer *w, uint32_t tag, const uint8_t *p, size_t len)
{
    put_item(w, tag, OK_TTLV_BYTES, p, len);
}

void ok_ttlv_big_integer(ok_ttlv_writer *w, uint32_t tag, const uint8_t *p, size_t len)
{
    if (w->err == OK_OK && (len == 0 || len % 8 != 0)) {
        w->err = ok_fail(OK_ERR_INVALID_ARG, "TTLV Big Integer of %zu bytes is not a multiple of 8", len);
        return;
    }
    put_item(w, tag, OK_TTLV_BIG_INTEGER, p, len);
}

ok_err ok_ttlv_finish(ok_ttlv_writer *w)
{
    if (w->err == OK_OK && w->depth != 0)
        w->err = ok_fail(OK_ERR_INVALID_ARG, "TTLV structure left open");
    return w->err;
}

/* ---- Decoding ----------------------------------------------------------------------------------- */

typedef struct {
    ok_ttlv_doc *doc;
    size_t cap;
} decoder;

/* Checks a primitive's length and padding and reads its number. */
static ok_err decode_primitive(ok_ttlv_item *it, ok_cursor *c)
{
    size_t want; /* required length, 0 = variable */
    switch (it->type) {
    case OK_TTLV_INTEGER: case OK_TTLV_ENUM: case OK_TTLV_INTERVAL: want = 4; break;
    case OK_TTLV_LONG: case OK_TTLV_BOOL: case OK_TTLV_DATE_TIME: want = 8; break;
    case OK_TTLV_BIG_INTEGER: case OK_TTLV_TEXT: case OK_TTLV_BYTES: want = 0; break;
    default:
        return ok_fail(OK_ERR_FORMAT, "TTLV item 0x%06x has unknown type %u", (unsigned)it->tag, it->type);
    }
    if (want && it->len != want)
        return ok_fail(OK_ERR_FORMAT, "TTLV item 0x%06x of type %u has length %u, expected %zu", (unsigned)it->tag,
                       it->type, (unsigned)it->len, want);
    if (it->type == OK_TTLV_BIG_INTEGER && (it->len == 0 || it->len % 8 != 0))
        return ok_fail(OK_ERR_FORMAT, "TTLV Big Integer 0x%06x has length %u, not a multiple of 8", (unsigned)it->tag,
                       (unsigned)it->len);
    const uint8_t *pad = NULL;
    size_t pad_len = padded(it->len) - it->len;
    OK_GUARD(ok_cursor_bytes(c, it->len, &it->value));
    OK_GUARD(ok_cursor_bytes(c, pad_len, &pad));
    if (pad_len && memcmp(pad, ZERO_PAD, pad_len) != 0)
        return ok_fail(OK_ERR_FORMAT, "TTLV item 0x%06x has non-zero padding", (unsigned)it->tag);
    if (want == 4) {
        uint32_t v = ok_load_u32(it->value);
        it->num = it->type == OK_TTLV_INTEGER ? (int64_t)(int32_t)v : (int64_t)v;
    } else if (want == 8) {
        it->num = (int64_t)(((uint64_t)ok_load_u32(it->value) << 32) | ok_load_u32(it->value + 4));
        if (it->type == OK_TTLV_BOOL && it->num != 0 && it->num != 1)
            return ok_fail(OK_ERR_FORMAT, "TTLV Boolean 0x%06x is neither 0 nor 1", (unsigned)it->tag);
    }
    return OK_OK;
}

/* Decodes one item at c (and, for a Structure, everything in it); *index receives its position. */
static ok_err decode_item(decoder *d, ok_cursor *c, size_t depth, size_t *index)
{
    if (depth > OK_TTLV_MAX_DEPTH)
        return ok_fail(OK_ERR_LIMIT, "TTLV structures nested deeper than %d", OK_TTLV_MAX_DEPTH);
    if (d->doc->count >= d->cap)
        return ok_fail(OK_ERR_LIMIT, "TTLV message has more than %zu items", d->cap);
    const uint8_t *h = NULL;
    if (ok_cursor_bytes(c, OK_TTLV_HEADER_LEN, &h) != OK_OK)
        return ok_fail(OK_ERR_TRUNCATED, "TTLV item header truncated at offset %zu", c->pos);
    *index = d->doc->count++;
    ok_ttlv_item *it = &d->doc->items[*index];
    memset(it, 0, sizeof *it);
    it->tag = ((uint32_t)h[0] << 16) | ((uint32_t)h[1] << 8) | h[2];
    it->type = h[3];
    it->len = ok_load_u32(h + 4);
    if (!tag_valid(it->tag))
        return ok_fail(OK_ERR_FORMAT, "TTLV tag 0x%06x is not a KMIP tag", (unsigned)it->tag);
    if (padded(it->len) > ok_cursor_remaining(c))
        return ok_fail(OK_ERR_TRUNCATED, "TTLV item 0x%06x claims %u bytes, %zu remain", (unsigned)it->tag,
                       (unsigned)it->len, ok_cursor_remaining(c));
    if (it->type != OK_TTLV_STRUCTURE)
        return decode_primitive(it, c);
    if (it->len % 8 != 0)
        return ok_fail(OK_ERR_FORMAT, "TTLV structure 0x%06x has length %u, not a multiple of 8", (unsigned)it->tag,
                       (unsigned)it->len);
    OK_GUARD(ok_cursor_bytes(c, it->len, &it->value));
    ok_cursor inner;
    ok_cursor_init(&inner, it->value, it->len);
    size_t prev = 0;
    while (ok_cursor_remaining(&inner) > 0) {
        size_t child = 0;
        OK_GUARD(decode_item(d, &inner, depth + 1, &child));
        /* d->doc->items did not move: the array is allocated once, at its final size. */
        if (prev)
            d->doc->items[prev].next = child;
        else
            d->doc->items[*index].child = child;
        prev = child;
    }
    return OK_OK;
}

ok_err ok_ttlv_decode(const uint8_t *data, size_t len, ok_ttlv_doc *doc)
{
    memset(doc, 0, sizeof *doc);
    if (len > OK_TTLV_MAX_LEN)
        return ok_fail(OK_ERR_LIMIT, "TTLV message of %zu bytes exceeds the limit of %u", len, OK_TTLV_MAX_LEN);
    if (len < OK_TTLV_HEADER_LEN)
        return ok_fail(OK_ERR_TRUNCATED, "TTLV message of %zu bytes is shorter than one header", len);
    /* Every item takes at least 8 bytes, so len / 8 bounds the count before anything is allocated. */
    decoder d = {.doc = doc, .cap = len / OK_TTLV_HEADER_LEN};
    if (d.cap > OK_TTLV_MAX_ITEMS)
        d.cap = OK_TTLV_MAX_ITEMS;
    doc->items = calloc(d.cap, sizeof *doc->items);
    if (!doc->items)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    ok_cursor c;
    ok_cursor_init(&c, data, len);
    size_t root = 0;
    ok_err rc = decode_item(&d, &c, 1, &root);
    if (rc == OK_OK && ok_cursor_remaining(&c) != 0)
        rc = ok_fail(OK_ERR_FORMAT, "%zu bytes of trailing data after the TTLV message", ok_cursor_remaining(&c));
    if (rc != OK_OK)
        ok_ttlv_doc_free(doc);
    return rc;
}

void ok_ttlv_doc_free(ok_ttlv_doc *doc)
{
    free(doc->items);
    doc->items = NULL;
    doc->count = 0;
}

static void encode_item(ok_ttlv_writer *w, const ok_ttlv_doc *doc, size_t index, size_t depth)
{
    const ok_ttlv_item *it = &doc->items[index];
    if (it->type != OK_TTLV_STRUCTURE) {
        put_item(w, it->tag, it->type, it->value, it->len);
        return;
    }
    if (depth > OK_TTLV_MAX_DEPTH) {
        w->err = ok_fail(OK_ERR_LIMIT, "TTLV structures nested deeper than %d", OK_TTLV_MAX_DEPTH);
        return;
    }
    ok_ttlv_begin(w, it->tag);
    for (size_t c = it->child; c && w->err == OK_OK; c = doc->items[c].next) {
        if (c <= index || c >= doc->count) {
            w->err = ok_fail(OK_ERR_INVALID_ARG, "TTLV document links out of order");
            return;
        }
        encode_item(w, doc, c, depth + 1);
    }
    ok_ttlv_end(w);
}

ok_err ok_ttlv_encode_doc(const ok_ttlv_doc *doc, ok_buf *out)
{
    if (doc->count == 0)
        return ok_fail(OK_ERR_INVALID_ARG, "empty TTLV document");
    ok_ttlv_writer w;
    ok_ttlv_writer_init(&w, out);
    encode_item(&w, doc, 0, 1);
    return ok_ttlv_finish(&w);
}

/* ---- Lookups ------------------------------------------------------------------------------------ */

const ok_ttlv_item *ok_ttlv_find(const ok_ttlv_doc *doc, const ok_ttlv_item *parent, uint32_t tag)
{
    if (!parent || parent->type != OK_TTLV_STRUCTURE)
        return NULL;
    for (size_t c = parent->child; c && c < doc->count; c = doc->items[c].next)
        if (doc->items[c].tag == tag)
            return &doc->items[c];
    return NULL;
}

const ok_ttlv_item *ok_ttlv_find_next(const ok_ttlv_doc *doc, const ok_ttlv_item *item)
{
    for (size_t c = item->next; c && c < doc->count; c = doc->items[c].next)
        if (doc->items[c].tag == item->tag)
            return &doc->items[c];
    return NULL;
}

static ok_err find_typed(const ok_ttlv_doc *doc, const ok_ttlv_item *parent, uint32_t tag, uint8_t type,
                         const ok_ttlv_item **out)
{
    *out = ok_ttlv_find(doc, parent, tag);
    if (!*out)
        return OK_ERR_NOT_FOUND;
    if ((*out)->type != type)
        return ok_fail(OK_ERR_FORMAT, "TTLV item 0x%06x has type %u, expected %u", (unsigned)tag, (*out)->type, type);
    return OK_OK;
}

ok_err ok_ttlv_get_num(const ok_ttlv_doc *doc, const ok_ttlv_item *parent, uint32_t tag, uint8_t type, int64_t *out)
{
    const ok_ttlv_item *it = NULL;
    OK_GUARD(find_typed(doc, parent, tag, type, &it));
    *out = it->num;
    return OK_OK;
}

ok_err ok_ttlv_get_bytes(const ok_ttlv_doc *doc, const ok_ttlv_item *parent, uint32_t tag, uint8_t type,
                         const uint8_t **p, size_t *len)
{
    const ok_ttlv_item *it = NULL;
    OK_GUARD(find_typed(doc, parent, tag, type, &it));
    *p = it->value;
    *len = it->len;
    return OK_OK;
}

ok_err ok_ttlv_get_text(const ok_ttlv_doc *doc, const ok_ttlv_item *parent, uint32_t tag, char *out, size_t cap)
{
    const uint8_t *p = NULL;
    size_t len = 0;
    OK_GUARD(ok_ttlv_get_bytes(doc, parent, tag, OK_TTLV_TEXT, &p, &len));
    if (len >= cap)
        return ok_fail(OK_ERR_LIMIT, "TTLV text 0x%06x of %zu bytes is too long", (unsigned)tag, len);
    if (len && memchr(p, 0, len))
        return ok_fail(OK_ERR_FORMAT, "TTLV text 0x%06x holds a NUL byte", (unsigned)tag);
    if (len)
        memcpy(out, p, len);
    out[len] = '\0';
    return OK_OK;
}
