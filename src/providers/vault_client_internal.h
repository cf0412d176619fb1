/* Internal to the vault HTTPS client (vault_client.c, and vault_transfer.c for streamed transfers): the
 * client's state and the steps every request shares (URL, response headers, the end of a request).
 * Nothing here is seen by the provider or the CLI. */
#ifndef OWNKEY_PROVIDERS_VAULT_CLIENT_INTERNAL_H
#define OWNKEY_PROVIDERS_VAULT_CLIENT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>

#include "ownkey/vault_client.h"

#define VAULT_MAX_URL 4096
#define VAULT_MAX_HEADERS (64u * 1024u) /* the final response's header lines, NUL included */

struct ok_vault_client {
    CURL *curl;
    struct curl_slist *headers; /* may hold "Authorization: Bearer …" */
    char addr[OK_VAULT_ADDR_MAX + 1];
    char errbuf[CURL_ERROR_SIZE];
    long timeout_ms;            /* whole request (a transfer: the longest stall) */
    ok_buf in;                  /* the response body being received (bounded) */
    ok_buf head;                /* the header lines of the response being received (bounded) */
    long head_status;           /* the status of the last status line seen */
    bool head_overflow;         /* the headers passed VAULT_MAX_HEADERS: the request failed */
};

/* addr + path (+ the api-version on keys API paths), checked: path starts with "/", nothing to escape. */
ok_err vault_client_url(const ok_vault_client *c, const char *path, char *url, size_t len);
/* Forgets what the last request left (body, headers, error text) before a new one. */
void vault_client_reset(ok_vault_client *c);
/* A transfer that failed in curl, as an ok_err with a message naming the vault (never the token). */
ok_err vault_client_transport_error(ok_vault_client *c, CURLcode e);
/* Moves the received body (c->in) and headers into resp with status, then maps a non-2xx answer. */
ok_err vault_client_respond(ok_vault_client *c, long status, ok_vault_response *resp);
/* Puts back the options ok_vault_client_request relies on (body writer, header list, total timeout). */
void vault_client_defaults(ok_vault_client *c);
/* Zeroizes and frees a header list (it may hold the token). */
void vault_client_free_headers(struct curl_slist *h);

#endif
