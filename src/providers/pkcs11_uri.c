/* RFC 7512 `pkcs11:` URIs for the PKCS#11 provider: parsing (path attributes token, manufacturer, serial,
 * model, object, id, type; query attributes module-path, pin-source, pin-value), percent-decoding, the
 * normalized key id, and reading the PIN. Never puts a PIN in an error message. No PKCS#11 calls here. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "providers/pkcs11_uri.h"

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

/* Percent-decodes s[0..n) into a malloc'ed (or, when secret, secure) NUL-terminated buffer. Text values
 * (allow_nul = 0) refuse %00. Raw control characters, spaces and '#' are refused. */
static ok_err percent_decode(const char *name, const char *s, size_t n, int allow_nul, int secret, uint8_t **out,
                             size_t *out_len)
{
    uint8_t *buf = secret ? ok_secure_alloc(n + 1) : calloc(1, n + 1);
    if (!buf)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    size_t o = 0;
    ok_err rc = OK_OK;
    for (size_t i = 0; i < n && rc == OK_OK; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            int hi = i + 2 < n ? hex_value(s[i + 1]) : -1;
            int lo = i + 2 < n ? hex_value(s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                rc = ok_fail(OK_ERR_FORMAT, "pkcs11 URI: attribute \"%s\" has a bad percent-escape", name);
                break;
            }
            uint8_t b = (uint8_t)(hi << 4 | lo);
            if (b == 0 && !allow_nul) {
                rc = ok_fail(OK_ERR_FORMAT, "pkcs11 URI: attribute \"%s\" contains a NUL byte", name);
                break;
            }
            buf[o++] = b;
            i += 2;
        } else if (c <= 0x20 || c >= 0x7f || c == '#') {
            rc = ok_fail(OK_ERR_FORMAT, "pkcs11 URI: attribute \"%s\" has a character that must be percent-encoded",
                         name);
        } else {
            buf[o++] = c;
        }
    }
    if (rc != OK_OK) {
        if (secret)
            ok_secure_free(buf, n + 1);
        else
            free(buf);
        return rc;
    }
    *out = buf;
    *out_len = o;
    return OK_OK;
}

void ok_p11_uri_clear(ok_p11_uri *u)
{
    free(u->token);
    free(u->manufacturer);
    free(u->serial);
    free(u->model);
    free(u->object);
    free(u->id);
    free(u->module_path);
    free(u->pin_source);
    if (u->pin_value)
        ok_secure_free(u->pin_value, u->pin_value_len + 1);
    memset(u, 0, sizeof *u);
}

static ok_err parse_type(const char *v, ok_p11_type *t)
{
    static const struct {
        const char *name;
        ok_p11_type type;
    } TYPES[] = {{"public", OK_P11_TYPE_PUBLIC}, {"private", OK_P11_TYPE_PRIVATE}, {"secret-key", OK_P11_TYPE_SECRET},
                 {"cert", OK_P11_TYPE_CERT},     {"data", OK_P11_TYPE_DATA}};
    for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++) {
        if (strcmp(v, TYPES[i].name) == 0) {
            *t = TYPES[i].type;
            return OK_OK;
        }
    }
    return ok_fail(OK_ERR_FORMAT, "pkcs11 URI: type \"%s\" is not public, private, secret-key, cert or data", v);
}

/* pin-source is a URI; ownkey reads files only: "file:PATH", "file:///ABS" or a plain absolute path. */
static ok_err parse_pin_source(char *v, char **out)
{
    const char *path = v;
    if (strncasecmp(v, "file://", 7) == 0 && v[7] == '/')
        path = v + 7;
    else if (strncasecmp(v, "file:", 5) == 0)
        path = v + 5;
    else if (v[0] != '/')
        return ok_fail(OK_ERR_UNSUPPORTED, "pkcs11 URI: pin-source must be file:PATH (programs are not run)");
    if (!*path)
        return ok_fail(OK_ERR_FORMAT, "pkcs11 URI: pin-source has no path");
    *out = strdup(path);
    return *out ? OK_OK : ok_fail(OK_ERR_NOMEM, "out of memory");
}

/* One "name=value" attribute of the path (in_query = 0) or the query (in_query = 1). */
static ok_err parse_attr(ok_p11_uri *u, const char *a, size_t n, int in_query)
{
    const char *eq = memchr(a, '=', n);
    if (n == 0)
        return ok_fail(OK_ERR_FORMAT, "pkcs11 URI: empty attribute");
    size_t nlen = eq ? (size_t)(eq - a) : n;
    char name[32];
    if (nlen == 0 || nlen >= sizeof name)
        return ok_fail(OK_ERR_FORMAT, "pkcs11 URI: bad attribute name");
    memcpy(name, a, nlen);
    name[nlen] = 0;
    for (size_t i = 0; i < nlen; i++) {
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') || name[i] == '-'))
            return ok_fail(OK_ERR_FORMAT, "pkcs11 URI: bad attribute name");
    }
    if (!eq)
        return ok_fail(OK_ERR_FORMAT, "pkcs11 URI: attribute \"%s\" has no value", name);
    const char *v = eq + 1;
    size_t vlen = n - nlen - 1;
    if (vlen == 0)
        return ok_fail(OK_ERR_FORMAT, "pkcs11 URI: attribute \"%s\" is empty", name);

    char **text = NULL;
    if (!in_query) {
        if (strcmp(name, "token") == 0)
            text = &u->token;
        else if (strcmp(name, "manufacturer") == 0)
            text = &u->manufacturer;
        else if (strcmp(name, "serial") == 0)
            text = &u->serial;
        else if (strcmp(name, "model") == 0)
            text = &u->model;
        else if (strcmp(name, "object") == 0)
            text = &u->object;
        else if (strcmp(name, "id") != 0 && strcmp(name, "type") != 0)
            return ok_fail(OK_ERR_UNSUPPORTED, "pkcs11 URI: path attribute \"%s\" is not supported", name);
    } else if (strcmp(name, "module-path") != 0 && strcmp(name, "pin-source") != 0 && strcmp(name, "pin-value") != 0) {
        return ok_fail(OK_ERR_UNSUPPORTED, "pkcs11 URI: query attribute \"%s\" is not supported", name);
    }

    int secret = strcmp(name, "pin-value") == 0;
    int is_id = strcmp(name, "id") == 0;
    uint8_t *val = NULL;
    size_t val_len = 0;
    OK_GUARD(percent_decode(name, v, vlen, is_id, secret, &val, &val_len));
    ok_err rc = OK_OK;
    if (text) {
        if (*text)
            rc = ok_fail(OK_ERR_FORMAT, "pkcs11 URI: attribute \"%s\" given twice", name);
        else
            *text = (char *)val, val = NULL;
    } else if (is_id) {
        if (u->has_id)
            rc = ok_fail(OK_ERR_FORMAT, "pkcs11 URI: attribute \"id\" given twice");
        else if (val_len > OK_P11_ID_MAX)
            rc = ok_fail(OK_ERR_LIMIT, "pkcs11 URI: id is longer than %d bytes", OK_P11_ID_MAX);
        else
            u->id = val, u->id_len = val_len, u->has_id = 1, val = NULL;
    } else if (strcmp(name, "type") == 0) {
        rc = u->type != OK_P11_TYPE_ANY ? ok_fail(OK_ERR_FORMAT, "pkcs11 URI: attribute \"type\" given twice")
                                        : parse_type((char *)val, &u->type);
    } else if (strcmp(name, "module-path") == 0) {
        if (u->module_path)
            rc = ok_fail(OK_ERR_FORMAT, "pkcs11 URI: attribute \"module-path\" given twice");
        else if (val[0] != '/')
            rc = ok_fail(OK_ERR_FORMAT, "pkcs11 URI: module-path must be an absolute path");
        else
            u->module_path = (char *)val, val = NULL;
    } else if (strcmp(name, "pin-source") == 0) {
        rc = u->pin_source ? ok_fail(OK_ERR_FORMAT, "pkcs11 URI: attribute \"pin-source\" given twice")
                           : parse_pin_source((char *)val, &u->pin_source);
    } else { /* pin-value */
        if (u->pin_value)
            rc = ok_fail(OK_ERR_FORMAT, "pkcs11 URI: attribute \"pin-value\" given twice");
        else if (val_len > OK_P11_PIN_MAX)
            rc = ok_fail(OK_ERR_LIMIT, "pkcs11 URI: pin-value is too long");
        else
            u->pin_value = (char *)val, u->pin_value_len = val_len, val = NULL;
    }
    if (val) {
        if (secret)
            ok_secure_free(val, vlen + 1);
        else
            free(val);
    }
    return rc;
}

static ok_err parse_list(ok_p11_uri *u, const char *s, size_t n, char sep, int in_query)
{
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == sep) {
            OK_GUARD(parse_attr(u, s + start, i - start, in_query));
            start = i + 1;
        }
    }
    return OK_OK;
}

ok_err ok_p11_uri_parse(const char *text, ok_p11_uri *u)
{
    memset(u, 0, sizeof *u);
    static const char SCHEME[] = "pkcs11:";
    size_t len = strnlen(text, OK_P11_URI_MAX + 1);
    if (len > OK_P11_URI_MAX)
        return ok_fail(OK_ERR_LIMIT, "pkcs11 URI is longer than %d characters", OK_P11_URI_MAX);
    if (strncasecmp(text, SCHEME, sizeof SCHEME - 1) != 0)
        return ok_fail(OK_ERR_FORMAT, "not a pkcs11: URI");
    const char *path = text + sizeof SCHEME - 1;
    const char *q = strchr(path, '?');
    size_t path_len = q ? (size_t)(q - path) : strlen(path);
    ok_err rc = OK_OK;
    if (path_len > 0)
        rc = parse_list(u, path, path_len, ';', 0);
    if (rc == OK_OK && q)
        rc = parse_list(u, q + 1, strlen(q + 1), '&', 1);
    if (rc != OK_OK)
        ok_p11_uri_clear(u);
    return rc;
}

/* Appends s[0..n) percent-encoding everything but RFC 3986 unreserved characters (all bytes when
 * encode_all). */
static ok_err put_encoded(ok_buf *b, const uint8_t *s, size_t n, int encode_all)
{
    static const char HEX[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        int plain = !encode_all && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                                    c == '-' || c == '.' || c == '_' || c == '~');
        if (plain) {
            OK_GUARD(ok_buf_u8(b, c));
        } else {
            char e[3] = {'%', HEX[c >> 4], HEX[c & 15]};
            OK_GUARD(ok_buf_put(b, e, 3));
        }
    }
    return OK_OK;
}

ok_err ok_p11_uri_key_id(const ok_p11_uri *u, char **out)
{
    ok_buf b;
    ok_buf_init(&b, 0);
    ok_err rc = ok_buf_put(&b, "pkcs11:", 7);
    const struct {
        const char *name;
        const char *val;
    } parts[] = {{"token", u->token}, {"serial", u->serial}, {"object", u->object}};
    int first = 1;
    for (size_t i = 0; rc == OK_OK && i < sizeof parts / sizeof parts[0]; i++) {
        if (!parts[i].val)
            continue;
        if (!first)
            rc = ok_buf_u8(&b, ';');
        first = 0;
        if (rc == OK_OK)
            rc = ok_buf_put(&b, parts[i].name, strlen(parts[i].name));
        if (rc == OK_OK)
            rc = ok_buf_u8(&b, '=');
        if (rc == OK_OK)
            rc = put_encoded(&b, (const uint8_t *)parts[i].val, strlen(parts[i].val), 0);
    }
    if (rc == OK_OK && u->has_id) {
        rc = ok_buf_put(&b, first ? "id=" : ";id=", first ? 3 : 4);
        if (rc == OK_OK)
            rc = put_encoded(&b, u->id, u->id_len, 1);
    }
    if (rc == OK_OK)
        rc = ok_buf_u8(&b, 0);
    if (rc != OK_OK) {
        ok_buf_free(&b);
        return rc;
    }
    *out = (char *)b.data;
    return OK_OK;
}

ok_err ok_p11_uri_read_pin(const char *pin_source, const char *pin_value, size_t pin_value_len, char **pin,
                           size_t *len)
{
    *pin = NULL;
    *len = 0;
    if (!pin_source && !pin_value)
        return OK_OK;
    char *buf = ok_secure_alloc(OK_P11_PIN_MAX + 2);
    if (!buf)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    size_t have = 0;
    if (pin_source) {
        int fd = open(pin_source, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            int e = errno;
            if (fd >= 0)
                close(fd);
            ok_secure_free(buf, OK_P11_PIN_MAX + 2);
            return ok_fail(OK_ERR_IO, "cannot read the PIN file %s: %s", pin_source,
                           fd < 0 ? strerror(e) : "not a regular file");
        }
        while (have < OK_P11_PIN_MAX + 1) {
            ssize_t n = read(fd, buf + have, OK_P11_PIN_MAX + 1 - have);
            if (n <= 0)
                break;
            have += (size_t)n;
        }
        close(fd);
        char *nl = memchr(buf, '\n', have);
        if (nl)
            have = (size_t)(nl - buf);
        if (have > 0 && buf[have - 1] == '\r')
            have--;
        if (have > OK_P11_PIN_MAX || have == 0 || memchr(buf, 0, have)) {
            ok_secure_free(buf, OK_P11_PIN_MAX + 2);
            return ok_fail(OK_ERR_FORMAT, "the PIN file %s does not hold a PIN on its first line", pin_source);
        }
        ok_zeroize(buf + have, OK_P11_PIN_MAX + 2 - have);
    } else {
        have = pin_value_len;
        memcpy(buf, pin_value, have);
    }
    buf[have] = 0;
    /* Shrink to the documented allocation size (len + 1) so that callers free what they were given. */
    char *pinbuf = ok_secure_alloc(have + 1);
    if (!pinbuf) {
        ok_secure_free(buf, OK_P11_PIN_MAX + 2);
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    }
    memcpy(pinbuf, buf, have + 1);
    ok_secure_free(buf, OK_P11_PIN_MAX + 2);
    *pin = pinbuf;
    *len = have;
    return OK_OK;
}
