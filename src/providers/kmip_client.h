/* The KMIP client of the kmip provider (internal): a mutual-TLS connection to one KMIP server
 * (kmip_tls.c) and the few operations ownkey needs (kmip_client.c): Discover Versions, Locate by name,
 * Get Attributes (State), Encrypt and Decrypt with AES-256 on the server, and for tests and tooling
 * Create (then Activate and Get Attributes in one two-item batch), Activate, Revoke and Destroy. Speaks KMIP 1.2, 1.3, 1.4 and 2.0,
 * whichever the server prefers among those (GCM needs 1.4 or later). Not thread-safe: the provider
 * serializes calls. */
#ifndef OWNKEY_KMIP_CLIENT_H
#define OWNKEY_KMIP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "ownkey/util.h"

#define OK_KMIP_DEFAULT_PORT 5696
#define OK_KMIP_UID_MAX 128

typedef struct {
    const char *host;       /* host name or IP literal; the server certificate must name it */
    unsigned port;          /* 0 = 5696 */
    const char *cert_file;  /* client certificate chain (PEM) */
    const char *key_file;   /* its private key (PEM) */
    const char *ca_file;    /* CA(s) to trust for the server (PEM) */
    int version_major;      /* 0 = negotiate; else only this version (1.2, 1.3, 1.4 or 2.0) */
    int version_minor;
    long connect_timeout_ms; /* 0 = 5000 */
    long timeout_ms;         /* each read or write; 0 = 10000 */
} ok_kmip_client_config;

typedef struct ok_kmip_client ok_kmip_client;

/* Copies the configuration; connects on first use. */
ok_err ok_kmip_client_new(const ok_kmip_client_config *cfg, ok_kmip_client **out);
void ok_kmip_client_free(ok_kmip_client *c);
/* Connects (TLS, then Discover Versions) unless connected. */
ok_err ok_kmip_client_connect(ok_kmip_client *c);
/* The negotiated version (0.0 before the first connection). */
void ok_kmip_client_version(const ok_kmip_client *c, int *major, int *minor);
/* "HOST:PORT" (IPv6 literals bracketed). */
const char *ok_kmip_client_server(const ok_kmip_client *c);

/* KMIP object states (Get Attributes "State"). */
enum {
    OK_KMIP_PRE_ACTIVE = 1,
    OK_KMIP_ACTIVE = 2,
    OK_KMIP_DEACTIVATED = 3,
    OK_KMIP_COMPROMISED = 4,
    OK_KMIP_DESTROYED = 5,
    OK_KMIP_DESTROYED_COMPROMISED = 6,
};
const char *ok_kmip_state_name(int64_t state);

/* The unique identifier of the one object whose Name is name: OK_ERR_NOT_FOUND for none,
 * OK_ERR_CONFLICT for several. */
ok_err ok_kmip_locate_name(ok_kmip_client *c, const char *name, char uid[OK_KMIP_UID_MAX]);
ok_err ok_kmip_get_state(ok_kmip_client *c, const char *uid, int64_t *state);
/* Creates an AES-256 symmetric key named name with usage Encrypt|Decrypt and activates it (one request,
 * two batch items). */
ok_err ok_kmip_create_aes256(ok_kmip_client *c, const char *name, char uid[OK_KMIP_UID_MAX]);
ok_err ok_kmip_activate(ok_kmip_client *c, const char *uid);
/* Revokes with reason Key Compromise (compromised) or Cessation of Operation. */
ok_err ok_kmip_revoke(ok_kmip_client *c, const char *uid, int compromised);
ok_err ok_kmip_destroy(ok_kmip_client *c, const char *uid);

/* Server-side AES-256: GCM (KMIP 1.4+, 16-byte tag, optional AAD) or CBC with PKCS#5 padding. */
#define OK_KMIP_GCM_IV_LEN 12
#define OK_KMIP_CBC_IV_LEN 16
#define OK_KMIP_TAG_LEN 16
typedef struct {
    int gcm;
    uint8_t iv[16];
    size_t iv_len;          /* the IV sent (and, if the server chose another, the one it returned) */
    const uint8_t *aad;
    size_t aad_len;
    uint8_t tag[OK_KMIP_TAG_LEN]; /* GCM: filled by encrypt, read by decrypt */
} ok_kmip_cipher;

/* Appends the ciphertext to out. */
ok_err ok_kmip_encrypt(ok_kmip_client *c, const char *uid, ok_kmip_cipher *cp, const uint8_t *in, size_t in_len,
                       ok_buf *out);
/* Appends the plaintext to out (which should be a buffer for secrets: ok_buf_free zeroizes). A refused
 * tag or padding is OK_ERR_AUTH. */
ok_err ok_kmip_decrypt(ok_kmip_client *c, const char *uid, const ok_kmip_cipher *cp, const uint8_t *in,
                       size_t in_len, ok_buf *out);

/* ---- Transport (kmip_tls.c) ---------------------------------------------------------------------- */
typedef struct {
    void *ctx;  /* SSL_CTX */
    void *ssl;  /* SSL */
    int fd;
} ok_kmip_tls;

/* Connects and completes the TLS 1.2+ handshake with the client certificate. OK_ERR_IO when the server
 * is unreachable or the handshake fails (the detail names the cause), OK_ERR_KEY when the local
 * certificate, key or CA file cannot be used. */
ok_err ok_kmip_tls_open(ok_kmip_tls *t, const ok_kmip_client_config *cfg, const char *server);
void ok_kmip_tls_close(ok_kmip_tls *t);
ok_err ok_kmip_tls_write(ok_kmip_tls *t, const uint8_t *p, size_t len);
/* Reads exactly len bytes; *got counts what arrived before a failure. */
ok_err ok_kmip_tls_read(ok_kmip_tls *t, uint8_t *p, size_t len, size_t *got);

#endif
