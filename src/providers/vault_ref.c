/* Vault addresses and key references as users write them ("https://HOST[:PORT]/keys/NAME[/VERSION]"),
 * parsed strictly and normalized (lowercase host, no ":443") so that one key has one spelling in
 * envelopes; plus the small encodings the vault client's callers need (percent-encoding, lenient
 * base64url). Knows nothing of HTTP or of the provider. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ownkey/vault_client.h"
#include "providers/vault_internal.h"

#define HOST_MAX 253

int ok_vault_name_valid(const char *s)
{
    return ok_name_valid(s, OK_VAULT_NAME_MAX, "-");
}

int ok_vault_version_valid(const char *s)
{
    return ok_name_valid(s, OK_VAULT_VERSION_MAX, "-");
}

/* Reads "[v6]" or a DNS name / IPv4 address from s[0..len); *used = the bytes taken. */
static ok_err parse_host(const char *s, size_t len, char *host, size_t *used)
{
    size_t n = 0;
    if (len && s[0] == '[') {
        while (n + 1 < len && s[n + 1] != ']' && (isxdigit((unsigned char)s[n + 1]) || s[n + 1] == ':' || s[n + 1] == '.'))
            n++;
        if (n == 0 || n + 1 >= len || s[n + 1] != ']')
            return ok_fail(OK_ERR_INVALID_ARG, "malformed IPv6 address in the vault address");
        n += 2; /* the brackets */
    } else {
        while (n < len && (isalnum((unsigned char)s[n]) || s[n] == '.' || s[n] == '-' || s[n] == '_'))
            n++;
        if (n == 0)
            return ok_fail(OK_ERR_INVALID_ARG, "the vault address has no host");
    }
    if (n > HOST_MAX)
        return ok_fail(OK_ERR_INVALID_ARG, "the vault host name is too long");
    for (size_t i = 0; i < n; i++)
        host[i] = (char)tolower((unsigned char)s[i]);
    host[n] = '\0';
    *used = n;
    return OK_OK;
}

ok_err vault_origin_parse(const char *s, size_t len, int allow_slash, char out[OK_VAULT_ADDR_MAX + 1])
{
    static const char HTTPS[] = "https://";
    const size_t scheme = sizeof HTTPS - 1;
    if (len >= 7 && !strncasecmp(s, "http://", 7))
        return ok_fail(OK_ERR_INVALID_ARG, "refusing plain http: the vault address must be https://HOST[:PORT]");
    if (len < scheme || strncasecmp(s, HTTPS, scheme) != 0)
        return ok_fail(OK_ERR_INVALID_ARG, "the vault address must be https://HOST[:PORT]");
    s += scheme;
    len -= scheme;
    char host[HOST_MAX + 1];
    size_t used = 0;
    OK_GUARD(parse_host(s, len, host, &used));
    unsigned long port = 443;
    if (used < len && s[used] == ':') {
        size_t start = ++used;
        port = 0;
        while (used < len && isdigit((unsigned char)s[used]) && used - start < 5)
            port = port * 10 + (unsigned long)(s[used++] - '0');
        if (used == start || port == 0 || port > 65535)
            return ok_fail(OK_ERR_INVALID_ARG, "the vault address has a bad port");
    }
    if (allow_slash && used + 1 == len && s[used] == '/')
        used++;
    if (used != len)
        return ok_fail(OK_ERR_INVALID_ARG, "unexpected \"%.*s\" in the vault address (expected https://HOST[:PORT])",
                       (int)(len - used > 40 ? 40 : len - used), s + used);
    if (port == 443)
        snprintf(out, OK_VAULT_ADDR_MAX + 1, "https://%s", host);
    else
        snprintf(out, OK_VAULT_ADDR_MAX + 1, "https://%s:%lu", host, port);
    return OK_OK;
}

/* Copies the path segment at *p (up to '/' or the end) into dst when it is at most max bytes. */
static int take_segment(const char **p, char *dst, size_t max)
{
    const char *end = strchr(*p, '/');
    size_t n = end ? (size_t)(end - *p) : strlen(*p);
    if (n > max)
        return -1;
    memcpy(dst, *p, n);
    dst[n] = '\0';
    *p += n;
    return 0;
}

ok_err ok_vault_key_ref_parse(const char *ref, ok_vault_key_ref *out)
{
    memset(out, 0, sizeof *out);
    const char *authority = strstr(ref, "://");
    const char *path = authority ? strchr(authority + 3, '/') : NULL;
    if (!path)
        return ok_fail(OK_ERR_INVALID_ARG, "key reference \"%s\" is not https://HOST[:PORT]/keys/NAME[/VERSION]", ref);
    OK_GUARD(vault_origin_parse(ref, (size_t)(path - ref), 0, out->addr));
    if (strncmp(path, "/keys/", 6) != 0)
        return ok_fail(OK_ERR_INVALID_ARG, "key reference \"%s\": the path must be /keys/NAME[/VERSION]", ref);
    const char *p = path + 6;
    if (take_segment(&p, out->name, OK_VAULT_NAME_MAX) != 0 || !ok_vault_name_valid(out->name))
        return ok_fail(OK_ERR_INVALID_ARG, "key reference \"%s\": key names are 1 to 127 letters, digits and '-'", ref);
    if (*p == '/' && p[1]) {
        p++;
        if (take_segment(&p, out->version, OK_VAULT_VERSION_MAX) != 0 || !ok_vault_version_valid(out->version))
            return ok_fail(OK_ERR_INVALID_ARG, "key reference \"%s\": malformed key version", ref);
    }
    if (*p == '/' && p[1] == '\0')
        p++;
    if (*p)
        return ok_fail(OK_ERR_INVALID_ARG, "key reference \"%s\": unexpected \"%s\" after the key", ref, p);
    snprintf(out->key_url, sizeof out->key_url, "%s/keys/%s", out->addr, out->name);
    return OK_OK;
}

char *ok_vault_escape(const char *s)
{
    static const char HEX[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = malloc(3 * n + 1);
    if (!out)
        return NULL;
    char *o = out;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            *o++ = (char)ch;
        } else {
            *o++ = '%';
            *o++ = HEX[ch >> 4];
            *o++ = HEX[ch & 15];
        }
    }
    *o = '\0';
    return out;
}

ok_err ok_vault_b64_decode(const char *text, uint8_t **out, size_t *out_len)
{
    return ok_b64_decode_any(text, out, out_len);
}
