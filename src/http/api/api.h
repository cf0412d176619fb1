/* Internal to the API layer (src/http/api): the handler context, the per-request state the handlers
 * share, and helpers for JSON bodies, base64url, errors and key bundles. The API maps the Azure Key
 * Vault keys REST API and ownkey's management API (/ownkey/v1/) onto the vault layer. */
#ifndef OWNKEY_HTTP_API_H
#define OWNKEY_HTTP_API_H

#include <jansson.h>

#include "http/http.h"
#include "ownkey/dataservice.h"
#include "ownkey/vault.h"

typedef struct {
    ok_vault *vault;
    const char *challenge_resource; /* NULL = derived from the Host header */
    const char *challenge_authority;
    ok_ds *ds;                      /* the data service; NULL when the data role is off (/data/v1 answers 404) */
    int vault_role_off;             /* 1: the keys API (/keys, /deletedkeys, /rng) answers 404; /ownkey/v1 stays */
} ok_api;

/* What a handler knows about the request being served. */
typedef struct {
    ok_api *api;
    const ok_http_request *req;
    ok_http_response *resp;
    ok_identity who;                /* valid when authenticated */
    int authenticated;
    const char *segments[8];        /* path split on '/', empty segments kept */
    size_t nsegments;
    char *path_copy;
    const char *api_version;
    const char *key_name;           /* for audit */
    const char *key_version;
    const char *error_code;         /* for audit: the error code sent, NULL on success */
} ok_api_call;

/* Entry point: an ok_http_handler with ctx = ok_api *. */
void ok_api_handle(void *ctx, const ok_http_request *req, ok_http_response *resp);
/* The streamed requests (object uploads under /data/v1/), with ctx = ok_api * (data_put.c). */
extern const ok_http_stream_handler ok_api_stream;

/* ---- Audit (router.c) ---- */
/* Milliseconds on the monotonic clock, for the audit's latency. */
double api_now_ms(void);
/* Writes the request's audit record; when it cannot be written, the response (whatever it was, a
 * streamed body included) becomes 500 AuditFailure. */
void api_audit(ok_api_call *c, double started);

/* ---- Responses ---- */
/* Sends {"error":{"code":code,"message":message}} with status. */
void api_error(ok_api_call *c, int status, const char *code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Maps an ok_err from the vault (with ok_err_message()) to status and code. */
void api_fail(ok_api_call *c, ok_err err);
/* Sends a JSON document (stolen reference) with status. */
void api_json(ok_api_call *c, int status, json_t *doc);

/* ---- Requests ---- */
/* Parses the body as a JSON object (an empty body is an empty object when allow_empty). NULL after
 * having sent a 400. */
json_t *api_body(ok_api_call *c, int allow_empty);
/* Decodes base64url (also accepting standard base64 and padding). OK_ERR_FORMAT when malformed. */
ok_err api_b64_decode(const char *text, uint8_t **out, size_t *len);
/* A base64url JSON string (unpadded) for bytes. */
json_t *api_b64_json(const uint8_t *p, size_t len);
/* Reads an optional base64url member: *out NULL when absent; 0 on success, -1 after sending a 400. */
int api_b64_member(ok_api_call *c, json_t *obj, const char *name, uint8_t **out, size_t *len);
/* Reads key attributes and tags from a create/import/update body; 0 on success, -1 after a 400. Tags
 * point into the JSON document, so they live as long as it. */
int api_read_attrs(ok_api_call *c, json_t *body, ok_key_attrs *attrs, ok_tag *tags_storage, size_t tags_cap);

/* ---- Key bundles ---- */
/* KeyBundle (or DeletedKeyBundle when info->deleted) as the API returns it. */
json_t *api_key_bundle(ok_api_call *c, const ok_key_info *info);
/* KeyItem for lists (versioned kid when with_version). */
json_t *api_key_item(ok_api_call *c, const ok_key_info *info, int with_version);
/* "{base}/keys/{name}/{version}" (version may be NULL). malloc'ed. */
char *api_kid(ok_api_call *c, const char *collection, const char *name, const char *version);

/* ---- Handlers (keys_manage.c, keys_crypto.c, admin.c) ---- */
void api_key_create(ok_api_call *c, const char *name);
void api_key_import(ok_api_call *c, const char *name);
void api_key_get(ok_api_call *c, const char *name, const char *version);
void api_key_update(ok_api_call *c, const char *name, const char *version);
void api_key_list(ok_api_call *c);
void api_key_versions(ok_api_call *c, const char *name);
void api_key_delete(ok_api_call *c, const char *name);
void api_deleted_get(ok_api_call *c, const char *name);
void api_deleted_list(ok_api_call *c);
void api_deleted_recover(ok_api_call *c, const char *name);
void api_deleted_purge(ok_api_call *c, const char *name);
void api_key_backup(ok_api_call *c, const char *name);
void api_key_restore(ok_api_call *c);
void api_key_rotate(ok_api_call *c, const char *name);
void api_rotation_policy_get(ok_api_call *c, const char *name);
void api_rotation_policy_set(ok_api_call *c, const char *name);
void api_random(ok_api_call *c);
void api_key_crypto(ok_api_call *c, const char *name, const char *version, const char *op);
/* Management API under /ownkey/v1/; returns 0 when the path is not one of its own. */
int api_admin_route(ok_api_call *c);
/* Data API under /data/ (data_router.c): every path there is its own (404 when the data role is off). */
void api_data_route(ok_api_call *c);

/* Authenticates the bearer token; on failure sends 401 (with the challenge) or 503 and returns 0. */
int api_authenticate(ok_api_call *c);
/* Permission check for the authenticated identity; sends 403 and returns 0 when refused. */
int api_allow(ok_api_call *c, const char *key_name, unsigned perm);

#endif
