/* Customer keys held outside a vault ("hold your own key"): a key in a PKCS#11 token ("pkcs11:" RFC 7512
 * URI with module-path and pin-source or pin-value) or on a KMIP server ("kmip://HOST:PORT/NAME?cert=&key=
 * &ca="). Owns what is particular to them: recognizing the URI kinds, the URI shown and stored in clear
 * (without pin-value), the sealed credential (the full URI, which may carry a PIN), opening the provider,
 * and naming a provider's failure as a lock reason from its error. The wrap/unwrap of TKs, the test round
 * trip and the vault customer keys stay in root_keys.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataservice/ds_keys.h"

#define CRED_URI_MAGIC "OKC2"

ds_cust_kind ds_cust_kind_of(const char *uri)
{
    if (uri == NULL)
        return DS_CUST_VAULT;
    if (strncmp(uri, "pkcs11:", 7) == 0)
        return DS_CUST_PKCS11;
    if (strncmp(uri, "kmip://", 7) == 0)
        return DS_CUST_KMIP;
    return DS_CUST_VAULT;
}

const char *ds_cust_provider_name(const char *key_id)
{
    switch (ds_cust_kind_of(key_id)) {
    case DS_CUST_PKCS11: return OK_PROVIDER_PKCS11;
    case DS_CUST_KMIP: return OK_PROVIDER_KMIP;
    default: return OK_PROVIDER_VAULT;
    }
}

/* The URI without its query attribute pin-value (the only secret a PKCS#11 URI carries); a KMIP URI holds
 * file paths only and is kept as it is. */
ok_err ds_cust_public_uri(const char *uri, char *out, size_t cap)
{
    const char *q = strchr(uri, '?');
    size_t n = 0;

    if (ds_cust_kind_of(uri) != DS_CUST_PKCS11 || q == NULL) {
        if ((size_t)snprintf(out, cap, "%s", uri) >= cap)
            return ok_fail(OK_ERR_LIMIT, "the customer key URI is too long");
        return OK_OK;
    }
    if ((size_t)(q - uri) >= cap)
        return ok_fail(OK_ERR_LIMIT, "the customer key URI is too long");
    memcpy(out, uri, (size_t)(q - uri));
    n = (size_t)(q - uri);
    for (const char *a = q + 1; *a != '\0';) {
        const char *end = strchr(a, '&');
        size_t len = end ? (size_t)(end - a) : strlen(a);
        if (len > 0 && strncmp(a, "pin-value=", 10) != 0) {
            if (n + len + 2 > cap)
                return ok_fail(OK_ERR_LIMIT, "the customer key URI is too long");
            out[n] = n == (size_t)(q - uri) ? '?' : '&';
            n++;
            memcpy(out + n, a, len);
            n += len;
        }
        a += len + (end ? 1 : 0);
    }
    out[n] = '\0';
    return OK_OK;
}

static void reason_set(ds_reason *why, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void reason_set(ds_reason *why, const char *code, const char *fmt, ...)
{
    va_list ap;
    if (why == NULL)
        return;
    snprintf(why->code, sizeof why->code, "%s", code);
    va_start(ap, fmt);
    vsnprintf(why->text, sizeof why->text, fmt, ap);
    va_end(ap);
}

/* The providers name their failures by error code (include/ownkey/provider.h): PKCS#11 a token not present
 * (or a module that does not load) OK_ERR_IO, a refused PIN OK_ERR_FORBIDDEN, a missing key
 * OK_ERR_NOT_FOUND; KMIP an unreachable server or a refused handshake OK_ERR_IO, a destroyed or unknown key
 * OK_ERR_NOT_FOUND, a key not Active (revoked, deactivated) OK_ERR_FORBIDDEN with its state. The provider's
 * message never holds a PIN. */
void ds_hyok_classify(ds_cust_kind kind, ok_err rc, const char *what, const char *name, ds_reason *why)
{
    const char *msg = ok_err_message();
    const char *where = kind == DS_CUST_PKCS11 ? "PKCS#11 token" : "KMIP server";

    if (rc == OK_ERR_NOMEM)
        reason_set(why, "KeyInvalid", "%s of %s failed: out of memory", what, name);
    else if (rc == OK_ERR_IO)
        reason_set(why, "KeyUnreachable", "cannot reach the %s holding customer key %s: %s", where, name, msg);
    else if (rc == OK_ERR_NOT_FOUND)
        reason_set(why, "KeyNotFound", "customer key %s was not found (deleted?): %s", name, msg);
    else if (rc == OK_ERR_FORBIDDEN && kind == DS_CUST_KMIP && strstr(msg, "not Active") != NULL)
        reason_set(why, "KeyDisabled", "customer key %s is not active (revoked or deactivated): %s", name, msg);
    else if (rc == OK_ERR_FORBIDDEN)
        reason_set(why, "Forbidden", "the %s refused %s on %s: %s", where, what, name, msg);
    else
        reason_set(why, "KeyInvalid", "%s of %s failed: %s", what, name, msg);
}

ok_err ds_hyok_check_uri(const char *uri)
{
    ds_cust_kind kind = ds_cust_kind_of(uri);
    const char *q = strchr(uri, '?');

    if (kind == DS_CUST_PKCS11 && (q == NULL || strstr(q, "module-path=") == NULL ||
                                   (strstr(q, "pin-source=") == NULL && strstr(q, "pin-value=") == NULL)))
        return ok_fail(OK_ERR_KEY, "a PKCS#11 customer key URI needs ?module-path=PATH&pin-source=file:PATH "
                                   "(or pin-value=)");
    if (kind == DS_CUST_KMIP && (q == NULL || strstr(q, "cert=") == NULL || strstr(q, "key=") == NULL ||
                                 strstr(q, "ca=") == NULL))
        return ok_fail(OK_ERR_KEY, "a KMIP customer key URI needs ?cert=PATH&key=PATH&ca=PATH (the client "
                                   "certificate, its key, and the server's CA)");
    return OK_OK;
}

ok_err ds_hyok_open(const char *uri, ok_provider **out)
{
    *out = NULL;
    switch (ds_cust_kind_of(uri)) {
    case DS_CUST_PKCS11: return ok_pkcs11_provider_open(uri, out);
    case DS_CUST_KMIP: return ok_kmip_provider_from_ref(uri, out);
    default: return ok_fail(OK_ERR_INVALID_ARG, "not a PKCS#11 or KMIP key URI");
    }
}

/* ---- the sealed credential: "OKC2" || u32 length || the full URI ------------------------------------------ */

ok_err ds_hyok_cred_encode(const char *uri, ok_buf *b)
{
    size_t n = strlen(uri);
    if (n == 0 || n > OK_DS_KEY_URI_MAX)
        return ok_fail(OK_ERR_INVALID_ARG, "the customer key URI is out of range (1..%d characters)", OK_DS_KEY_URI_MAX);
    OK_GUARD(ok_buf_put(b, CRED_URI_MAGIC, 4));
    OK_GUARD(ok_buf_u32(b, (uint32_t)n));
    return ok_buf_put(b, uri, n);
}

int ds_hyok_cred_is(const uint8_t *p, size_t n)
{
    return n >= 4 && memcmp(p, CRED_URI_MAGIC, 4) == 0;
}

ok_err ds_hyok_cred_open(const uint8_t *p, size_t n, const char *public_uri, ok_provider **out)
{
    ok_cursor c;
    const uint8_t *magic, *u;
    uint32_t len;
    char *uri;
    char shown[OK_DS_KEY_URI_MAX + 1];
    ok_err rc;

    *out = NULL;
    ok_cursor_init(&c, p, n);
    if (ok_cursor_bytes(&c, 4, &magic) != OK_OK || memcmp(magic, CRED_URI_MAGIC, 4) != 0 ||
        ok_cursor_u32(&c, &len) != OK_OK || len == 0 || len > OK_DS_KEY_URI_MAX ||
        ok_cursor_bytes(&c, len, &u) != OK_OK || ok_cursor_remaining(&c) != 0)
        return ok_fail(OK_ERR_FORMAT, "data.db: a customer credential is malformed");
    uri = ok_secure_alloc((size_t)len + 1);
    if (uri == NULL)
        return ok_fail(OK_ERR_NOMEM, "secure memory");
    memcpy(uri, u, len);
    uri[len] = '\0';
    /* The sealed URI must be the one the row shows (a row and a credential from two tenants never mix). */
    rc = ds_cust_public_uri(uri, shown, sizeof shown);
    if (rc == OK_OK && (public_uri == NULL || strcmp(shown, public_uri) != 0))
        rc = ok_fail(OK_ERR_FORMAT, "data.db: the customer credential does not belong to key %s",
                     public_uri ? public_uri : "(none)");
    if (rc == OK_OK)
        rc = ds_hyok_open(uri, out);
    ok_secure_free(uri, (size_t)len + 1);
    return rc;
}
