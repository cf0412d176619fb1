/* Internal to the PKCS#11 provider: RFC 7512 `pkcs11:` URIs, parsed into the attributes ownkey uses, the
 * stable key id derived from them, and reading the PIN they point at. Owns no PKCS#11 calls. */
#ifndef OWNKEY_PKCS11_URI_H
#define OWNKEY_PKCS11_URI_H

#include <stddef.h>
#include <stdint.h>

#include "ownkey/util.h"

#define OK_P11_URI_MAX 4096
#define OK_P11_ID_MAX 256
#define OK_P11_PIN_MAX 256

typedef enum {
    OK_P11_TYPE_ANY = 0, /* no type= attribute */
    OK_P11_TYPE_PUBLIC,
    OK_P11_TYPE_PRIVATE,
    OK_P11_TYPE_SECRET,
    OK_P11_TYPE_CERT,
    OK_P11_TYPE_DATA,
} ok_p11_type;

/* Strings are malloc'ed and percent-decoded (NULL = attribute absent); pin_value is in secure memory. */
typedef struct {
    char *token;        /* token label */
    char *manufacturer; /* token manufacturer */
    char *serial;       /* token serial number */
    char *model;        /* token model */
    char *object;       /* object label (CKA_LABEL) */
    uint8_t *id;        /* CKA_ID bytes */
    size_t id_len;
    int has_id;
    ok_p11_type type;
    char *module_path;  /* query: the module to load (absolute path) */
    char *pin_source;   /* query: a file path (the "file:" prefix removed) */
    char *pin_value;    /* query: the PIN itself (accepted; pin-source is preferred) */
    size_t pin_value_len;
} ok_p11_uri;

/* Parses text into *u (zeroed first). Refuses unknown, repeated or empty attributes, bad percent-escapes,
 * NUL bytes in text attributes, unsupported pin-source forms and a relative module-path. Error messages
 * never contain the PIN. */
ok_err ok_p11_uri_parse(const char *text, ok_p11_uri *u);
void ok_p11_uri_clear(ok_p11_uri *u);

/* The stable key id: "pkcs11:" with token, serial, object and id (in that order, those present),
 * percent-encoded canonically; no PIN, no module path, no type. Malloc'ed. */
ok_err ok_p11_uri_key_id(const ok_p11_uri *u, char **out);

/* Reads the PIN from pin-source (the file's first line) or copies pin-value; *pin is NUL-terminated in
 * secure memory (free with ok_secure_free(*pin, *len + 1)). *pin = NULL when the URI names no PIN. */
ok_err ok_p11_uri_read_pin(const char *pin_source, const char *pin_value, size_t pin_value_len, char **pin,
                           size_t *len);

#endif
