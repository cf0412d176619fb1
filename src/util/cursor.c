/* The bounds-checked reading cursor: the only way parsers touch untrusted bytes. */
#include <string.h>

#include "ownkey/util.h"

void ok_cursor_init(ok_cursor *c, const void *data, size_t len)
{
    c->data = data;
    c->len = len;
    c->pos = 0;
}

size_t ok_cursor_remaining(const ok_cursor *c)
{
    return c->len - c->pos;
}

ok_err ok_cursor_bytes(ok_cursor *c, size_t n, const uint8_t **out)
{
    if (n > ok_cursor_remaining(c))
        return ok_fail(OK_ERR_TRUNCATED, "input ends %zu bytes early", n - ok_cursor_remaining(c));
    *out = c->data + c->pos;
    c->pos += n;
    return OK_OK;
}

ok_err ok_cursor_copy(ok_cursor *c, void *out, size_t n)
{
    const uint8_t *p = NULL;
    OK_GUARD(ok_cursor_bytes(c, n, &p));
    if (n)
        memcpy(out, p, n);
    return OK_OK;
}

ok_err ok_cursor_u8(ok_cursor *c, uint8_t *out)
{
    const uint8_t *p = NULL;
    OK_GUARD(ok_cursor_bytes(c, 1, &p));
    *out = p[0];
    return OK_OK;
}

ok_err ok_cursor_u16(ok_cursor *c, uint16_t *out)
{
    const uint8_t *p = NULL;
    OK_GUARD(ok_cursor_bytes(c, 2, &p));
    *out = (uint16_t)((p[0] << 8) | p[1]);
    return OK_OK;
}

ok_err ok_cursor_u32(ok_cursor *c, uint32_t *out)
{
    const uint8_t *p = NULL;
    OK_GUARD(ok_cursor_bytes(c, 4, &p));
    *out = ok_load_u32(p);
    return OK_OK;
}

ok_err ok_cursor_u64(ok_cursor *c, uint64_t *out)
{
    const uint8_t *p = NULL;
    OK_GUARD(ok_cursor_bytes(c, 8, &p));
    *out = ((uint64_t)ok_load_u32(p) << 32) | ok_load_u32(p + 4);
    return OK_OK;
}

uint32_t ok_load_u32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

void ok_store_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

void ok_store_u64(uint8_t *p, uint64_t v)
{
    ok_store_u32(p, (uint32_t)(v >> 32));
    ok_store_u32(p + 4, (uint32_t)v);
}
