/* The data API's object reads and deletes: GET (the whole object or one byte range, streamed to the client
 * as it is decrypted: the body is produced on demand over ok_ds_get_read, so memory stays constant
 * whatever the size), HEAD (the same headers, no body), DELETE, and the listing with prefix and paging.
 * Uploads are data_put.c's.
 *
 * Ranges: one `bytes=a-b`, `bytes=a-` or `bytes=-n` answers 206 with Content-Range; a range starting at or
 * past the end (or any range of an empty object, or `-0`) answers 416 with `Content-Range: bytes * /SIZE`.
 * Several ranges, other units and malformed values are ignored, as RFC 9110 allows: 200 with the whole
 * object. HEAD ignores Range. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/api/data_api.h"

#define META_PREFIX "x-ownkey-meta-"

/* What the response needs after the handler returned: the open get, the range, and the strings the
 * server reads when it builds the headers (content type, metadata header names). Freed by body_free. */
typedef struct {
    ok_ds_get *get;             /* NULL for HEAD */
    uint64_t first;             /* offset in the object of the body's first byte */
    uint64_t length;            /* bytes in the body */
    char content_type[OK_DS_CONTENT_TYPE_MAX + 1];
    char meta_names[OK_DS_META_MAX][sizeof META_PREFIX + OK_DS_META_KEY_MAX];
} body_state;

static int64_t body_read(void *cls, uint64_t pos, uint8_t *buf, size_t max)
{
    body_state *b = cls;
    if (!b->get)
        return -1;
    if (pos >= b->length)
        return 0;
    uint64_t left = b->length - pos;
    size_t want = (uint64_t)max < left ? max : (size_t)left;
    size_t got = 0;
    /* Only verified plaintext comes back; a failure closes the connection (the client sees a short body). */
    if (ok_ds_get_read(b->get, b->first + pos, buf, want, &got) != OK_OK || got == 0)
        return -1;
    return (int64_t)got;
}

static void body_free(void *cls)
{
    body_state *b = cls;
    ok_ds_get_close(b->get);
    free(b);
}

/* ---- Range --------------------------------------------------------------------------------------- */

typedef enum { RANGE_NONE, RANGE_OK, RANGE_UNSATISFIABLE } range_result;

/* Digits into *out, saturating at UINT64_MAX; 0 when there is none. */
static int read_u64(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    while (*s >= '0' && *s <= '9') {
        unsigned d = (unsigned)(*s - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
        s++;
    }
    if (s == *p)
        return 0;
    *p = s;
    *out = v;
    return 1;
}

static range_result parse_range(const char *h, uint64_t size, uint64_t *first, uint64_t *last)
{
    if (!h || strncmp(h, "bytes=", 6) != 0 || strchr(h, ','))
        return RANGE_NONE;
    const char *p = h + 6;
    while (*p == ' ')
        p++;
    uint64_t a = 0, b = UINT64_MAX;
    if (*p == '-') {
        p++;
        uint64_t n;
        if (!read_u64(&p, &n) || *p)
            return RANGE_NONE;
        if (n == 0 || size == 0)
            return RANGE_UNSATISFIABLE;
        *first = n >= size ? 0 : size - n;
        *last = size - 1;
        return RANGE_OK;
    }
    if (!read_u64(&p, &a) || *p++ != '-')
        return RANGE_NONE;
    if (*p && (!read_u64(&p, &b) || *p || b < a))
        return RANGE_NONE;
    if (a >= size)
        return RANGE_UNSATISFIABLE;
    *first = a;
    *last = b < size - 1 ? b : size - 1;
    return RANGE_OK;
}

/* ---- GET and HEAD -------------------------------------------------------------------------------- */

static ok_err add_header(ok_api_call *c, const char *name, const char *value)
{
    return ok_http_response_header(c->resp, name, value);
}

/* ETag, Last-Modified, Accept-Ranges and the user metadata; the names live in b. */
static ok_err object_headers(ok_api_call *c, const ok_ds_object_info *info, body_state *b)
{
    char text[64];
    snprintf(text, sizeof text, "\"%s\"", info->etag);
    OK_GUARD(add_header(c, "ETag", text));
    data_http_date(info->modified, text);
    OK_GUARD(add_header(c, "Last-Modified", text));
    OK_GUARD(add_header(c, "Accept-Ranges", "bytes"));
    for (size_t i = 0; i < info->meta_count && i < OK_DS_META_MAX; i++) {
        snprintf(b->meta_names[i], sizeof b->meta_names[i], META_PREFIX "%s", info->meta[i].key);
        OK_GUARD(add_header(c, b->meta_names[i], info->meta[i].value));
    }
    return OK_OK;
}

static void send_body(ok_api_call *c, body_state *b, int status)
{
    c->resp->status = status;
    ok_buf_reset(&c->resp->body);
    c->resp->content_type = b->content_type;
    c->resp->body_read = body_read;
    c->resp->body_free = body_free;
    c->resp->body_cls = b;
    c->resp->body_size = b->length;
}

void data_object_get(ok_api_call *c, const char *tenant, const char *object, int head_only)
{
    c->resp->operation = head_only ? "data.head" : "data.get";
    if (!data_object_name_ok(c, object) || !data_allow(c, tenant, OK_PERM_DATA_READ))
        return;
    body_state *b = calloc(1, sizeof *b);
    if (!b) {
        api_error(c, 500, "InternalError", "out of memory");
        return;
    }
    ok_ds_object_info info;
    ok_err rc = head_only ? ok_ds_object_head(c->api->ds, tenant, object, &info)
                          : ok_ds_get_open(c->api->ds, tenant, object, &info, &b->get);
    if (rc != OK_OK) {
        free(b);
        data_fail(c, rc, tenant, object, NULL);
        return;
    }
    snprintf(b->content_type, sizeof b->content_type, "%s",
             info.content_type[0] ? info.content_type : "application/octet-stream");
    b->length = info.size;
    int status = 200;
    uint64_t first = 0, last = 0;
    range_result range = head_only ? RANGE_NONE : parse_range(c->req->header(c->req, "Range"), info.size, &first, &last);
    char text[80];
    if (range == RANGE_UNSATISFIABLE) {
        body_free(b);
        snprintf(text, sizeof text, "bytes */%llu", (unsigned long long)info.size);
        api_error(c, 416, "RangeNotSatisfiable", "the range is not within the object's %llu bytes",
                  (unsigned long long)info.size);
        if (add_header(c, "Content-Range", text) != OK_OK)
            api_error(c, 500, "InternalError", "cannot build the response headers");
        return;
    }
    if (range == RANGE_OK) {
        status = 206;
        b->first = first;
        b->length = last - first + 1;
        snprintf(text, sizeof text, "bytes %llu-%llu/%llu", (unsigned long long)first, (unsigned long long)last,
                 (unsigned long long)info.size);
    }
    if ((range == RANGE_OK && add_header(c, "Content-Range", text) != OK_OK) || object_headers(c, &info, b) != OK_OK) {
        /* More headers than the server takes: refused loudly rather than sent without its metadata. */
        body_free(b);
        for (size_t i = 0; i < c->resp->header_count; i++)
            free(c->resp->header_values[i]);
        c->resp->header_count = 0;
        api_error(c, 500, "InternalError", "cannot build the response headers: %s", ok_err_message());
        return;
    }
    send_body(c, b, status);
}

/* ---- DELETE and list ----------------------------------------------------------------------------- */

void data_object_delete(ok_api_call *c, const char *tenant, const char *object)
{
    c->resp->operation = "data.delete";
    if (!data_object_name_ok(c, object) || !data_allow(c, tenant, OK_PERM_DATA_WRITE))
        return;
    ok_err rc = ok_ds_object_delete(c->api->ds, tenant, object);
    if (rc != OK_OK) {
        data_fail(c, rc, tenant, object, NULL);
        return;
    }
    c->resp->status = 204;
    ok_buf_reset(&c->resp->body);
}

/* maxresults: 1..1000, default 1000; 0 and -1 after a 400. */
static int read_max(ok_api_call *c, size_t *max)
{
    const char *v = c->req->query(c->req, "maxresults");
    *max = 1000;
    if (!v || !*v)
        return 0;
    uint64_t n = 0;
    const char *p = v;
    if (!read_u64(&p, &n) || *p || n < 1 || n > 1000) {
        api_error(c, 400, "BadParameter", "maxresults must be a number from 1 to 1000");
        return -1;
    }
    *max = (size_t)n;
    return 0;
}

void data_object_list(ok_api_call *c, const char *tenant)
{
    c->resp->operation = "data.list";
    if (!data_allow(c, tenant, OK_PERM_DATA_READ))
        return;
    size_t max;
    if (read_max(c, &max) != 0)
        return;
    const char *prefix = c->req->query(c->req, "prefix"), *marker = c->req->query(c->req, "marker");
    ok_ds_object_page page = {0};
    ok_err rc = ok_ds_object_list(c->api->ds, tenant, prefix && *prefix ? prefix : NULL, marker && *marker ? marker : NULL,
                                  max, &page);
    if (rc != OK_OK) {
        data_fail(c, rc, tenant, NULL, NULL);
        return;
    }
    json_t *items = json_array();
    for (size_t i = 0; items && i < page.count; i++)
        json_array_append_new(items, data_object_json(&page.items[i]));
    json_t *doc = items ? json_pack("{s:o, s:o}", "objects", items, "next_marker",
                                    page.next_marker ? json_string(page.next_marker) : json_null())
                        : NULL;
    ok_ds_object_page_clear(&page);
    api_json(c, 200, doc);
}
