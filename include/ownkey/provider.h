/* ownkey key providers: the one interface through which the envelope (and later the data service)
 * reaches a key that wraps and unwraps data keys. A provider is a vtable plus its own state, as the AWS
 * Encryption SDK's keyrings are; adding a provider never touches the envelope code. This header also
 * declares the providers that live in src/providers. */
#ifndef OWNKEY_PROVIDER_H
#define OWNKEY_PROVIDER_H

#include <stddef.h>
#include <stdint.h>

#include "ownkey/crypto.h"
#include "ownkey/util.h"

/* Limits of the EDK fields (docs/FORMAT.md). */
#define OK_EDK_PROVIDER_MAX 64
#define OK_EDK_KEY_ID_MAX 2048
#define OK_EDK_VERSION_MAX 256
#define OK_EDK_ALG_MAX 32
#define OK_EDK_CT_MAX 4096

/* A wrapped data key as it appears in an envelope header. Strings are NUL-terminated, malloc'ed. */
typedef struct {
    char *provider;
    char *key_id;
    char *key_version; /* "" when the provider has no versions */
    char *wrap_alg;
    uint8_t *ct;
    size_t ct_len;
} ok_edk;

void ok_edk_clear(ok_edk *edk);
/* Fills an EDK from borrowed values, copying them. */
ok_err ok_edk_set(ok_edk *edk, const char *provider, const char *key_id, const char *key_version,
                  const char *wrap_alg, const uint8_t *ct, size_t ct_len);

typedef struct ok_provider ok_provider;

typedef struct {
    size_t size; /* sizeof(ok_provider_vtable) of the provider's build: lets the interface grow */
    /* Wraps key (key_len bytes) and fills *out. */
    ok_err (*wrap)(ok_provider *p, const uint8_t *key, size_t key_len, ok_edk *out);
    /* Unwraps edk into key (exactly key_len bytes). OK_ERR_NO_RECIPIENT when the EDK names another key;
     * OK_ERR_AUTH when it names this key but does not unwrap to key_len bytes. */
    ok_err (*unwrap)(ok_provider *p, const ok_edk *edk, uint8_t *key, size_t key_len);
    /* One line for people: "file RSA-3072 kid=…". */
    ok_err (*describe)(const ok_provider *p, char *buf, size_t len);
    /* 1 if this provider holds a key that the EDK names (provider and key id match). */
    int (*matches)(const ok_provider *p, const ok_edk *edk);
    void (*destroy)(ok_provider *p);
} ok_provider_vtable;

struct ok_provider {
    const ok_provider_vtable *vt;
};

ok_err ok_provider_wrap(ok_provider *p, const uint8_t *key, size_t key_len, ok_edk *out);
ok_err ok_provider_unwrap(ok_provider *p, const ok_edk *edk, uint8_t *key, size_t key_len);
ok_err ok_provider_describe(const ok_provider *p, char *buf, size_t len);
int ok_provider_matches(const ok_provider *p, const ok_edk *edk);
void ok_provider_free(ok_provider *p);

/* ---- The `file` provider: local JWK key files ----------------------------------------------------
 * An oct JWK (256-bit) wraps with A256KW. An RSA JWK wraps with RSA-OAEP-256 and unwraps only when it
 * holds the private key. An EC key is refused (it cannot wrap). The provider copies what it needs. */
#define OK_PROVIDER_FILE "file"
ok_err ok_file_provider_from_jwk(const ok_jwk *jwk, ok_provider **out);
/* Reads and parses a JWK file (refusing files over OK_JWK_MAX_LEN). */
ok_err ok_file_provider_open(const char *path, ok_provider **out);

/* ---- The `vault` provider: a key in an ownkey vault (or an Azure Key Vault keys API) --------------
 * Referenced as "https://HOST[:PORT]/keys/NAME[/VERSION]". Wraps with the vault's wrapkey (RSA-OAEP-256
 * for RSA keys, A256KW for oct keys) using the given version, else the current one; the EDK's key id is
 * the versionless key URL and its version the one that wrapped, which unwrap uses, so envelopes outlive
 * rotations. token is required; ca_file (PEM) may be NULL for the system's CAs. Connects on first use. */
#define OK_PROVIDER_VAULT "vault"
ok_err ok_vault_provider_open(const char *ref, const char *token, const char *ca_file, ok_provider **out);
/* The same with the token from OWNKEY_TOKEN and the CA file from OWNKEY_CACERT. */
ok_err ok_vault_provider_from_env(const char *ref, ok_provider **out);

/* A key reference as the CLI takes it: "file:PATH" or "https://HOST[:PORT]/keys/NAME[/VERSION]" (later
 * "pkcs11:…", "kmip:…"). */
ok_err ok_provider_from_ref(const char *ref, ok_provider **out);

/* ---- The `vault` provider for services (the data service's customer keys) --------------------------
 * The same provider, configured in full: ca_pem is the PEM text of the CA to trust (NULL or "" = ca_file,
 * else the system's CAs); timeouts 0 = the client's defaults. The token is copied to secure memory. */
typedef struct {
    const char *ref;          /* "https://HOST[:PORT]/keys/NAME[/VERSION]" */
    const char *token;
    const char *ca_file;
    const char *ca_pem;
    long connect_timeout_ms;
    long timeout_ms;
} ok_vault_provider_config;

ok_err ok_vault_provider_open_config(const ok_vault_provider_config *cfg, ok_provider **out);

/* What GET /keys/NAME[/VERSION] says of the key (the pinned version, else the newest). */
typedef struct {
    char kty[16];             /* as the vault names it: "RSA", "RSA-HSM", "oct", "EC", ... */
    int can_wrap;             /* key_ops holds wrapKey */
    int can_unwrap;           /* key_ops holds unwrapKey */
    int enabled;
    int64_t nbf, exp;         /* Unix seconds; 0 = unset */
    char version[65];         /* the version the kid names (OK_VAULT_VERSION_MAX) */
} ok_vault_key_desc;

/* Looks the provider's key up. p must be a `vault` provider (else OK_ERR_INVALID_ARG). */
ok_err ok_vault_provider_lookup(ok_provider *p, ok_vault_key_desc *out);
/* The versionless key URL of a `vault` provider ("" for another provider). */
const char *ok_vault_provider_key_url(const ok_provider *p);
/* HTTP requests a `vault` provider has sent so far (0 for another provider). */
uint64_t ok_vault_provider_requests(const ok_provider *p);
/* The remote side of the calling thread's last failed `vault` provider request: the error code the vault
 * sent ("KeyNotFound", "Forbidden", "Unauthorized", "VaultSealed", ...; "" if none) and the HTTP status
 * (0 when no answer came: connection, TLS or timeout). Cleared by each request; both empty after success. */
void ok_vault_provider_last_error(char *code, size_t code_len, long *status);

/* ---- The `pkcs11` provider: a key inside a PKCS#11 token (HSM) -------------------------------------
 * Referenced by an RFC 7512 URI: "pkcs11:token=LABEL;object=LABEL[;id=%01][;type=secret-key|private]
 * ?module-path=/path/to/module.so&pin-source=file:/path/to/pin" (serial=, manufacturer=, model= narrow the
 * token; pin-value= is accepted, pin-source is preferred; without module-path OWNKEY_PKCS11_MODULE is
 * used). An AES key wraps with CKM_AES_KEY_WRAP_PAD (EDK alg "AES-KWP"), an RSA key with RSA-OAEP, SHA-256
 * when the token supports it ("RSA-OAEP-256"), else SHA-1 ("RSA-OAEP"). Unwrapping always happens in the
 * token. The EDK's key id is the URI without PIN, module path or type ("pkcs11:token=…;object=…;id=…").
 * Opening connects (slot, login, key lookup); a token removed later gives OK_ERR_IO "token not present", a
 * refused PIN OK_ERR_FORBIDDEN, a missing key OK_ERR_NOT_FOUND, and the next call after the token is back
 * (or the PIN file fixed) reconnects by itself. Safe to use from several threads (a session pool). */
#define OK_PROVIDER_PKCS11 "pkcs11"
ok_err ok_pkcs11_provider_open(const char *uri, ok_provider **out);

/* ---- The `kmip` provider: an AES-256 key on a KMIP server -----------------------------------------
 * The server does the cryptography; the key never leaves it. Wrapping is a KMIP Encrypt of the data key:
 * AES-256-GCM (KMIP 1.4 and 2.0; 12-byte IV chosen here, the EDK's key id as additional data, 16-byte
 * tag), or AES-256-CBC with PKCS#5 padding when the server speaks only 1.2 or 1.3. The EDK records
 * provider "kmip", key id "kmip://HOST:PORT/uid/UID" (the server's Unique Identifier: stable across
 * renames) and wrap_alg "KMIP-AES256-GCM" or "KMIP-AES256-CBC-PAD"; its ciphertext is IV || ciphertext
 * [|| tag]. Unwrapping is a KMIP Decrypt. The connection is mutual TLS 1.2+ (client certificate and key,
 * the CA that signed the server's certificate, which must name HOST); the KMIP version is negotiated with
 * Discover Versions among 2.0, 1.4, 1.3 and 1.2 (or pinned). Opening connects and, for a key given by
 * name, Locates it (exactly one object must carry the name). Errors name the cause: an unreachable server
 * is OK_ERR_IO ("unreachable"), a refused handshake OK_ERR_IO, a destroyed or unknown key
 * OK_ERR_NOT_FOUND, a revoked/deactivated (not Active) key OK_ERR_FORBIDDEN with its state. Calls are
 * serialized on one connection, which is reopened once if the server closed it. */
#define OK_PROVIDER_KMIP "kmip"
typedef struct {
    const char *host;         /* host name or IP literal (IPv6 without brackets) */
    unsigned port;            /* 0 = 5696 */
    const char *key_name;     /* the key's Name attribute, or */
    const char *key_uid;      /* its Unique Identifier (exactly one of the two) */
    const char *cert_file;    /* client certificate (PEM; extendedKeyUsage clientAuth) */
    const char *key_file;     /* its private key (PEM) */
    const char *ca_file;      /* CA for the server's certificate (PEM) */
    const char *version;      /* NULL or "" = negotiate; "1.2", "1.3", "1.4" or "2.0" = only that one */
    long connect_timeout_ms;  /* 0 = 5000 */
    long timeout_ms;          /* per read or write; 0 = 10000 */
} ok_kmip_config;

ok_err ok_kmip_provider_open(const ok_kmip_config *cfg, ok_provider **out);
/* A reference "kmip://HOST[:PORT]/NAME" or "kmip://HOST[:PORT]/uid/UID" (an EDK's key id), with optional
 * query parameters "?cert=PATH&key=PATH&ca=PATH&version=V" (no percent-encoding: paths without '&');
 * missing ones come from OWNKEY_KMIP_CERT, OWNKEY_KMIP_KEY, OWNKEY_KMIP_CA and OWNKEY_KMIP_VERSION. NAME and
 * UID are 1-128 characters of letters, digits and "-_.". */
ok_err ok_kmip_provider_from_ref(const char *ref, ok_provider **out);
/* The key's Unique Identifier and the negotiated version ("2.0") of a `kmip` provider (NULL otherwise). */
const char *ok_kmip_provider_uid(const ok_provider *p);
const char *ok_kmip_provider_version(const ok_provider *p);

#endif
