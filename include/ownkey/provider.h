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

#endif
