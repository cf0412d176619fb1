/* ownkey vault client: HTTPS calls to an ownkeyd (or any Azure Key Vault keys API) on libcurl, for the
 * `vault` key provider and the CLI. Owns the connection (one keep-alive handle per client, TLS 1.2+,
 * https only, no redirects), the api-version on keys API paths, bounded response bodies, and the mapping
 * of Azure error bodies {"error":{"code","message"}} to ok_err. Does not own JSON request shapes: callers
 * build and parse their own bodies. A client is not thread-safe; use one per thread. The bearer token is
 * never logged and is zeroized when the client is freed. */
#ifndef OWNKEY_VAULT_CLIENT_H
#define OWNKEY_VAULT_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "ownkey/util.h"

/* Sent on every keys API call (/keys, /deletedkeys, /rng) that does not carry one already. */
#define OK_VAULT_API_VERSION "7.5"
/* Responses larger than this fail with OK_ERR_LIMIT (a key bundle or backup blob is far smaller). */
#define OK_VAULT_MAX_RESPONSE (4u * 1024u * 1024u)
#define OK_VAULT_ADDR_MAX 300       /* "https://" + host + ":" + port */
#define OK_VAULT_NAME_MAX 127       /* key names match ^[0-9a-zA-Z-]{1,127}$ */
#define OK_VAULT_VERSION_MAX 64     /* versions match ^[0-9a-zA-Z-]{1,64}$ (ownkeyd: 32 hex digits) */

typedef struct ok_vault_client ok_vault_client;

typedef struct {
    const char *addr;         /* "https://HOST[:PORT]" (a trailing "/" is fine); http:// is refused */
    const char *token;        /* bearer token; NULL or "" for the calls that need none (status, unseal) */
    const char *ca_file;      /* PEM file of the CA (or self-signed certificate) to trust; NULL = system */
    const char *ca_pem;       /* PEM text of the CA to trust (instead of ca_file); NULL = none */
    long connect_timeout_ms;  /* 0 = 10 s */
    long timeout_ms;          /* whole request; 0 = 60 s (a streamed transfer: the longest stall) */
} ok_vault_client_config;

/* What a request got back. Filled on success and on HTTP errors; status 0 when no answer came. */
typedef struct {
    long status;
    char *body;               /* NUL-terminated (malloc'ed, zeroized by ok_vault_response_clear) */
    size_t body_len;
    char error_code[64];      /* the Azure error code of a failed call ("KeyNotFound"), else "" */
    char *headers;            /* the final response's header lines "Name: value\r\n..." (malloc'ed, NUL-
                               * terminated, at most 64 KiB), or NULL */
    size_t headers_len;
} ok_vault_response;

/* Copies the configuration; connects lazily, on the first request. */
ok_err ok_vault_client_new(const ok_vault_client_config *cfg, ok_vault_client **out);
/* Closes the connection, zeroizes the token, frees. NULL is fine. */
void ok_vault_client_free(ok_vault_client *c);
/* The normalized address ("https://host:port", no trailing slash). */
const char *ok_vault_client_addr(const ok_vault_client *c);

/* Sends METHOD addr+path (path starts with "/" and may carry a query; escape its parts with
 * ok_vault_escape) with an optional JSON body. OK_OK for a 2xx answer; otherwise the error that
 * ok_vault_error_from_response gives (the response is still filled), or OK_ERR_IO when the request
 * failed in transport (connection, TLS, timeout). Clear resp with ok_vault_response_clear either way. */
ok_err ok_vault_client_request(ok_vault_client *c, const char *method, const char *path, const char *json_body,
                               ok_vault_response *resp);
void ok_vault_response_clear(ok_vault_response *r);

/* ---- Streamed transfers (the data service's objects) ------------------------------------------------
 * For bodies of any size in constant memory. The upload's bytes come from read (*got = 0 at the end);
 * size is the exact length (sent as Content-Length) or UINT64_MAX (chunked). A 2xx response body goes to
 * the download's write (NULL download: dropped); any other response body is kept in resp->body (bounded
 * by OK_VAULT_MAX_RESPONSE) for the error. headers are extra request header lines "Name: value". */
typedef struct {
    ok_err (*read)(void *ctx, uint8_t *buf, size_t len, size_t *got);
    void *ctx;
    uint64_t size;
} ok_vault_upload;

typedef struct {
    ok_err (*write)(void *ctx, const uint8_t *buf, size_t len);
    void *ctx;
} ok_vault_download;

ok_err ok_vault_client_transfer(ok_vault_client *c, const char *method, const char *path,
                                const char *const *headers, size_t header_count, const ok_vault_upload *up,
                                const ok_vault_download *down, ok_vault_response *resp);
/* The value of a response header (case-insensitive name, surrounding spaces trimmed) copied into buf;
 * NULL when absent or longer than len - 1. */
const char *ok_vault_response_header(const ok_vault_response *r, const char *name, char *buf, size_t len);

/* Maps a non-2xx status and its body to an error with ok_fail("<code>: <message>"), and copies the code
 * into code (may be NULL): 400 OK_ERR_INVALID_ARG, 401 OK_ERR_AUTH, 403 OK_ERR_FORBIDDEN,
 * 404 OK_ERR_NOT_FOUND, 409 OK_ERR_CONFLICT, 413 OK_ERR_LIMIT, 503 OK_ERR_SEALED, others OK_ERR_IO.
 * A 2xx status gives OK_OK. */
ok_err ok_vault_error_from_response(long status, const char *body, size_t body_len, char *code, size_t code_len);

/* Percent-encodes everything but RFC 3986 unreserved characters. malloc'ed; NULL when out of memory. */
char *ok_vault_escape(const char *s);
/* base64url as the API sends it, tolerating padding and the standard alphabet. */
ok_err ok_vault_b64_decode(const char *text, uint8_t **out, size_t *out_len);

/* ---- Key references: "https://HOST[:PORT]/keys/NAME[/VERSION]" -----------------------------------
 * The host is lowercased and a ":443" dropped, so that the same key has one spelling in envelopes. */
typedef struct {
    char addr[OK_VAULT_ADDR_MAX + 1];                                  /* "https://host[:port]" */
    char name[OK_VAULT_NAME_MAX + 1];
    char version[OK_VAULT_VERSION_MAX + 1];                            /* "" = the current version */
    char key_url[OK_VAULT_ADDR_MAX + sizeof "/keys/" + OK_VAULT_NAME_MAX]; /* versionless */
} ok_vault_key_ref;

ok_err ok_vault_key_ref_parse(const char *ref, ok_vault_key_ref *out);
/* 1 when s is a valid key name (^[0-9a-zA-Z-]{1,127}$) or version (^[0-9a-zA-Z-]{1,64}$). */
int ok_vault_name_valid(const char *s);
int ok_vault_version_valid(const char *s);

#endif
