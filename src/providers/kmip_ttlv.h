/* KMIP TTLV (Tag-Type-Length-Value, KMIP 1.x/2.0 §9.1) for the kmip provider: a writer that appends items
 * to an ok_buf and back-patches structure lengths, and a decoder that turns a whole message into a flat
 * array of items pointing into the input. Hard limits (depth, item count, total length) are checked
 * before anything is allocated; decoding reads only through ok_cursor and refuses wrong lengths, non-zero
 * padding, unknown types and items that do not exactly fill their structure. Knows nothing of the KMIP
 * operations (kmip_client.c) or of TLS. */
#ifndef OWNKEY_KMIP_TTLV_H
#define OWNKEY_KMIP_TTLV_H

#include <stddef.h>
#include <stdint.h>

#include "ownkey/util.h"

#define OK_TTLV_MAX_DEPTH 16          /* structure nesting, the top level being depth 1 */
#define OK_TTLV_MAX_ITEMS 4096        /* items in one message */
#define OK_TTLV_MAX_LEN (1u << 20)    /* bytes in one message */
#define OK_TTLV_HEADER_LEN 8          /* tag (3) + type (1) + length (4) */

enum {
    OK_TTLV_STRUCTURE = 0x01,
    OK_TTLV_INTEGER = 0x02,
    OK_TTLV_LONG = 0x03,
    OK_TTLV_BIG_INTEGER = 0x04,
    OK_TTLV_ENUM = 0x05,
    OK_TTLV_BOOL = 0x06,
    OK_TTLV_TEXT = 0x07,
    OK_TTLV_BYTES = 0x08,
    OK_TTLV_DATE_TIME = 0x09,
    OK_TTLV_INTERVAL = 0x0a,
};

/* ---- Writing ------------------------------------------------------------------------------------
 * Errors are sticky: after the first failure every call does nothing, and ok_ttlv_finish returns it, so
 * a message is built with plain calls and checked once. */
typedef struct {
    ok_buf *buf;
    size_t open[OK_TTLV_MAX_DEPTH]; /* offsets of the open structures' headers */
    size_t depth;
    ok_err err;
} ok_ttlv_writer;

void ok_ttlv_writer_init(ok_ttlv_writer *w, ok_buf *buf);
void ok_ttlv_begin(ok_ttlv_writer *w, uint32_t tag); /* opens a Structure */
void ok_ttlv_end(ok_ttlv_writer *w);                 /* closes the innermost Structure */
void ok_ttlv_int(ok_ttlv_writer *w, uint32_t tag, int32_t v);
void ok_ttlv_long(ok_ttlv_writer *w, uint32_t tag, int64_t v);
void ok_ttlv_enum(ok_ttlv_writer *w, uint32_t tag, uint32_t v);
void ok_ttlv_bool(ok_ttlv_writer *w, uint32_t tag, int v);
void ok_ttlv_date_time(ok_ttlv_writer *w, uint32_t tag, int64_t unix_seconds);
void ok_ttlv_interval(ok_ttlv_writer *w, uint32_t tag, uint32_t seconds);
void ok_ttlv_text(ok_ttlv_writer *w, uint32_t tag, const char *s, size_t len);
void ok_ttlv_bytes(ok_ttlv_writer *w, uint32_t tag, const uint8_t *p, size_t len);
/* Big Integer: big-endian two's complement, len a non-zero multiple of 8 (the caller sign-extends). */
void ok_ttlv_big_integer(ok_ttlv_writer *w, uint32_t tag, const uint8_t *p, size_t len);
/* OK_OK when every call succeeded and every Structure was closed. */
ok_err ok_ttlv_finish(ok_ttlv_writer *w);

/* ---- Decoding -----------------------------------------------------------------------------------
 * Items are stored in document order; index 0 is the top-level item. child and next are indices (0 =
 * none: item 0 is nobody's child or sibling). value points into the decoded input, which must outlive
 * the document; num holds Integer, Long Integer, Enumeration, Boolean, Date-Time and Interval values
 * (Integer sign-extended, Enumeration and Interval as unsigned 32-bit). */
typedef struct {
    uint32_t tag;
    uint8_t type;
    uint32_t len;          /* value length as encoded (without padding) */
    const uint8_t *value;
    int64_t num;
    size_t child, next;
} ok_ttlv_item;

typedef struct {
    ok_ttlv_item *items;
    size_t count;
} ok_ttlv_doc;

/* Decodes exactly one item filling all of data[0..len). On failure *doc is empty and the detail says
 * where: OK_ERR_TRUNCATED, OK_ERR_FORMAT or OK_ERR_LIMIT. */
ok_err ok_ttlv_decode(const uint8_t *data, size_t len, ok_ttlv_doc *doc);
void ok_ttlv_doc_free(ok_ttlv_doc *doc);
/* Re-encodes a decoded document (canonical TTLV: the same bytes as a successful decode's input). */
ok_err ok_ttlv_encode_doc(const ok_ttlv_doc *doc, ok_buf *out);

/* The first child of structure parent with tag (NULL if none or parent is not a Structure). */
const ok_ttlv_item *ok_ttlv_find(const ok_ttlv_doc *doc, const ok_ttlv_item *parent, uint32_t tag);
/* The next sibling of item with the same tag (NULL if none). */
const ok_ttlv_item *ok_ttlv_find_next(const ok_ttlv_doc *doc, const ok_ttlv_item *item);
/* Typed lookups of a child: OK_ERR_NOT_FOUND when absent, OK_ERR_FORMAT when of another type. */
ok_err ok_ttlv_get_num(const ok_ttlv_doc *doc, const ok_ttlv_item *parent, uint32_t tag, uint8_t type, int64_t *out);
ok_err ok_ttlv_get_bytes(const ok_ttlv_doc *doc, const ok_ttlv_item *parent, uint32_t tag, uint8_t type,
                         const uint8_t **p, size_t *len);
/* A Text String child copied NUL-terminated into out; OK_ERR_FORMAT if it holds a NUL, OK_ERR_LIMIT if it
 * does not fit. */
ok_err ok_ttlv_get_text(const ok_ttlv_doc *doc, const ok_ttlv_item *parent, uint32_t tag, char *out, size_t cap);

#endif
