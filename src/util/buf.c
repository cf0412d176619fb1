/* The growable write buffer (bounded growth, zeroized on free so it may hold secrets) and the fixed
 * buffer over caller memory (ok_fixbuf). */
#include <stdlib.h>
#include <string.h>

#include "ownkey/util.h"

void ok_buf_init(ok_buf *b, size_t max_len)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max_len = max_len;
}

void ok_buf_free(ok_buf *b)
{
    if (b->data) {
        ok_zeroize(b->data, b->cap);
        free(b->data);
    }
    ok_buf_init(b, b->max_len);
}

void ok_buf_reset(ok_buf *b)
{
    if (b->data)
        ok_zeroize(b->data, b->len);
    b->len = 0;
}

ok_err ok_buf_reserve(ok_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len || (b->max_len && b->len + extra > b->max_len))
        return ok_fail(OK_ERR_LIMIT, "buffer would exceed its limit of %zu bytes", b->max_len);
    size_t need = b->len + extra;
    if (need <= b->cap)
        return OK_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (b->max_len && cap > b->max_len)
        cap = b->max_len;
    /* Grow by copy rather than realloc so that the old block can be zeroized. */
    uint8_t *p = malloc(cap);
    if (!p)
        return ok_fail(OK_ERR_NOMEM, "cannot allocate %zu bytes", cap);
    if (b->data) {
        memcpy(p, b->data, b->len);
        ok_zeroize(b->data, b->cap);
        free(b->data);
    }
    b->data = p;
    b->cap = cap;
    return OK_OK;
}

ok_err ok_buf_put(ok_buf *b, const void *p, size_t n)
{
    OK_GUARD(ok_buf_reserve(b, n));
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return OK_OK;
}

ok_err ok_buf_u8(ok_buf *b, uint8_t v)
{
    return ok_buf_put(b, &v, 1);
}

ok_err ok_buf_u16(ok_buf *b, uint16_t v)
{
    uint8_t p[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    return ok_buf_put(b, p, 2);
}

ok_err ok_buf_u32(ok_buf *b, uint32_t v)
{
    uint8_t p[4];
    ok_store_u32(p, v);
    return ok_buf_put(b, p, 4);
}

ok_err ok_buf_u64(ok_buf *b, uint64_t v)
{
    uint8_t p[8];
    ok_store_u64(p, v);
    return ok_buf_put(b, p, 8);
}

void ok_fixbuf_init(ok_fixbuf *w, void *mem, size_t cap)
{
    w->p = mem;
    w->len = 0;
    w->cap = mem ? cap : 0;
    w->overflow = 0;
}

void ok_fixbuf_put(ok_fixbuf *w, const void *src, size_t n)
{
    if (w->overflow || n > w->cap - w->len) {
        w->overflow = 1;
        return;
    }
    if (n)
        memcpy(w->p + w->len, src, n);
    w->len += n;
}

void ok_fixbuf_str(ok_fixbuf *w, const char *s)
{
    ok_fixbuf_put(w, s, strlen(s));
}
