/* Text codecs: unpadded base64url (JOSE) and lowercase hex, strict in what they accept; and the
 * character-class check of names. */
#include <stdlib.h>
#include <string.h>

#include "ownkey/util.h"

static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

ok_err ok_b64url_encode(const uint8_t *in, size_t len, char **out)
{
    if (len > (SIZE_MAX - 4) / 4 * 3)
        return ok_fail(OK_ERR_LIMIT, "input too large to encode");
    size_t olen = len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0);
    char *s = malloc(olen + 1);
    if (!s)
        return ok_fail(OK_ERR_NOMEM, "cannot allocate %zu bytes", olen + 1);
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
        s[o++] = B64URL[(v >> 18) & 63];
        s[o++] = B64URL[(v >> 12) & 63];
        s[o++] = B64URL[(v >> 6) & 63];
        s[o++] = B64URL[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        s[o++] = B64URL[(v >> 18) & 63];
        s[o++] = B64URL[(v >> 12) & 63];
    } else if (len - i == 2) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8);
        s[o++] = B64URL[(v >> 18) & 63];
        s[o++] = B64URL[(v >> 12) & 63];
        s[o++] = B64URL[(v >> 6) & 63];
    }
    s[o] = '\0';
    *out = s;
    return OK_OK;
}

static int b64url_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

ok_err ok_b64url_decode(const char *in, size_t len, uint8_t **out, size_t *out_len)
{
    if (len % 4 == 1)
        return ok_fail(OK_ERR_FORMAT, "base64url text has an impossible length");
    size_t olen = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
    uint8_t *p = malloc(olen ? olen : 1);
    if (!p)
        return ok_fail(OK_ERR_NOMEM, "cannot allocate %zu bytes", olen);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value(in[i]);
        if (v < 0) {
            ok_zeroize(p, olen);
            free(p);
            return ok_fail(OK_ERR_FORMAT, "invalid base64url character at offset %zu", i);
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            p[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) { /* leftover bits must be zero: one canonical encoding per byte string */
        ok_zeroize(p, olen);
        free(p);
        return ok_fail(OK_ERR_FORMAT, "non-canonical base64url encoding");
    }
    *out = p;
    *out_len = o;
    return OK_OK;
}

ok_err ok_b64_decode_any(const char *text, uint8_t **out, size_t *out_len)
{
    size_t n = strlen(text), pad = 0;
    while (pad < n && text[n - 1 - pad] == '=')
        pad++;
    if (pad > 2)
        return ok_fail(OK_ERR_FORMAT, "misplaced base64 padding");
    n -= pad;
    char *norm = malloc(n + 1);
    if (!norm)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        norm[i] = text[i] == '+' ? '-' : text[i] == '/' ? '_' : text[i];
    ok_err rc = ok_b64url_decode(norm, n, out, out_len); /* refuses a '=' left inside */
    ok_zeroize(norm, n);
    free(norm);
    return rc;
}

int ok_name_valid(const char *s, size_t max, const char *extra)
{
    if (!s)
        return 0;
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        int ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c && strchr(extra, c));
        if (!ok || n >= max)
            return 0;
    }
    return n > 0;
}

ok_err ok_hex_encode(const uint8_t *in, size_t len, char **out)
{
    static const char digits[] = "0123456789abcdef";
    if (len > (SIZE_MAX - 1) / 2)
        return ok_fail(OK_ERR_LIMIT, "input too large to encode");
    char *s = malloc(len * 2 + 1);
    if (!s)
        return ok_fail(OK_ERR_NOMEM, "cannot allocate %zu bytes", len * 2 + 1);
    for (size_t i = 0; i < len; i++) {
        s[2 * i] = digits[in[i] >> 4];
        s[2 * i + 1] = digits[in[i] & 15];
    }
    s[len * 2] = '\0';
    *out = s;
    return OK_OK;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

ok_err ok_hex_decode(const char *in, uint8_t **out, size_t *out_len)
{
    size_t len = strlen(in);
    if (len % 2)
        return ok_fail(OK_ERR_FORMAT, "hex text has an odd length");
    uint8_t *p = malloc(len / 2 + 1);
    if (!p)
        return ok_fail(OK_ERR_NOMEM, "cannot allocate %zu bytes", len / 2 + 1);
    for (size_t i = 0; i < len; i += 2) {
        int hi = hex_value(in[i]), lo = hex_value(in[i + 1]);
        if (hi < 0 || lo < 0) {
            free(p);
            return ok_fail(OK_ERR_FORMAT, "invalid hex character at offset %zu", i);
        }
        p[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    *out = p;
    *out_len = len / 2;
    return OK_OK;
}
