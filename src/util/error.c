/* The error convention: ok_err codes with a thread-local detail message set by ok_fail(). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ownkey/util.h"

static _Thread_local char detail[512];

/* Formats into a local buffer first: callers may wrap the previous message, passing ok_err_message() (the
 * detail buffer itself) as an argument, e.g. ok_fail(rc, "key file %s: %s", path, ok_err_message()). */
ok_err ok_fail(ok_err err, const char *fmt, ...)
{
    char text[sizeof detail];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    memcpy(detail, text, sizeof text);
    return err;
}

const char *ok_err_message(void)
{
    return detail;
}

void ok_err_clear(void)
{
    detail[0] = '\0';
}

const char *ok_err_name(ok_err err)
{
    switch (err) {
    case OK_OK: return "success";
    case OK_ERR_INVALID_ARG: return "invalid argument";
    case OK_ERR_NOMEM: return "out of memory";
    case OK_ERR_CRYPTO: return "cryptographic library failure";
    case OK_ERR_AUTH: return "authentication failed";
    case OK_ERR_FORMAT: return "malformed input";
    case OK_ERR_LIMIT: return "limit exceeded";
    case OK_ERR_UNSUPPORTED: return "unsupported";
    case OK_ERR_TRUNCATED: return "truncated input";
    case OK_ERR_NO_RECIPIENT: return "no recipient matches";
    case OK_ERR_IO: return "I/O error";
    case OK_ERR_KEY: return "unusable key";
    case OK_ERR_NOT_FOUND: return "not found";
    case OK_ERR_CONFLICT: return "conflict";
    case OK_ERR_FORBIDDEN: return "forbidden";
    case OK_ERR_SEALED: return "vault is sealed";
    case OK_ERR_LOCKED: return "tenant is locked";
    }
    return "unknown error";
}
