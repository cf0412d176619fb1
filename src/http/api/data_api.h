/* Internal to the data API (src/http/api/data_*.c, the /data/v1/ paths): the parsed path, the checks
 * every data call makes (tenant name, permission), the mapping of the data service's errors to HTTP, the
 * JSON documents, and the handlers. Authentication and the audit record are the router's (router.c). */
#ifndef OWNKEY_HTTP_DATA_API_H
#define OWNKEY_HTTP_DATA_API_H

#include <jansson.h>

#include "http/api/api.h"
#include "ownkey/dataservice.h"

typedef enum {
    DATA_PATH_NONE = 0,     /* not a data API path: 404 */
    DATA_PATH_TENANTS,      /* /data/v1/tenants */
    DATA_PATH_TENANT,       /* /data/v1/tenants/T */
    DATA_PATH_CUSTOMER_KEY, /* /data/v1/tenants/T/customer-key */
    DATA_PATH_REKEY,        /* /data/v1/tenants/T/rekey */
    DATA_PATH_OBJECTS,      /* /data/v1/tenants/T/objects */
    DATA_PATH_OBJECT,       /* /data/v1/tenants/T/objects/NAME (NAME may hold '/') */
} data_path_kind;

typedef struct {
    data_path_kind kind;
    char *copy;             /* owns tenant and object */
    const char *tenant;     /* NULL for DATA_PATH_TENANTS and NONE */
    const char *object;     /* DATA_PATH_OBJECT only */
} data_path;

/* Splits a (percent-decoded) request path. 0, or -1 when out of memory. */
int data_path_parse(const char *path, data_path *out);
void data_path_free(data_path *p);

/* The checks before any call on a tenant (NULL = all tenants): the name is valid (else 400), the
 * identity holds perm on it (else 403, with the permission named). Sets the audit's key_name. 1 = go on,
 * 0 = the error is sent. */
int data_allow(ok_api_call *c, const char *tenant, unsigned perm);
/* The object name is valid (else 400); sets the audit's key_version. 1 = go on. Called before data_allow,
 * so that a refused call's audit record names the object too. */
int data_object_name_ok(ok_api_call *c, const char *object);

/* Sends the error for a failed data service call: TenantNotFound / ObjectNotFound 404 (object names the
 * object the call was about, NULL for tenant calls), TenantLocked 403 with the reason code, Forbidden 403,
 * Conflict 409, CustomerKeyInvalid 400 (OK_ERR_KEY), IncompleteBody 400 (OK_ERR_TRUNCATED), BadParameter
 * 400, VaultSealed 503, InternalError 500. message: the failure's sentence (NULL = ok_err_message()). */
void data_fail(ok_api_call *c, ok_err err, const char *tenant, const char *object, const char *message);

/* ---- Documents (data_router.c) ---- */
json_t *data_tenant_json(const ok_ds_tenant_info *t);
json_t *data_rekey_json(const ok_ds_tenant_info *t);
/* {"name","size","etag","modified","content_type"} */
json_t *data_object_json(const ok_ds_object_info *o);
/* "2026-01-31T12:00:00Z" */
void data_rfc3339(int64_t t, char out[32]);
/* "Sat, 31 Jan 2026 12:00:00 GMT" (RFC 9110 IMF-fixdate) */
void data_http_date(int64_t t, char out[40]);

/* ---- Handlers ---- */
/* data_tenants.c */
void data_tenant_list(ok_api_call *c);
void data_tenant_create(ok_api_call *c, const char *tenant);
void data_tenant_get(ok_api_call *c, const char *tenant);
void data_tenant_delete(ok_api_call *c, const char *tenant);
void data_customer_key_set(ok_api_call *c, const char *tenant);
void data_customer_key_remove(ok_api_call *c, const char *tenant);
void data_rekey_start(ok_api_call *c, const char *tenant);
void data_rekey_get(ok_api_call *c, const char *tenant);
/* data_put.c: the user metadata of a put, gathered from the request headers by data_meta_collect (a
 * header lister's callback: takes x-ownkey-meta-KEY, lowercases KEY; returns 1 to stop on an error). */
typedef struct {
    ok_ds_meta *items;      /* OK_DS_META_MAX entries */
    size_t count;
    const char *error;      /* set when a header was refused: the 400's message */
} data_meta_list;
int data_meta_collect(void *cls, const char *name, const char *value);
/* data_put.c: PUT of a body the server buffered (when no stream handler is configured) */
void data_object_put_buffered(ok_api_call *c, const char *tenant, const char *object);
/* data_objects.c (PUT is streamed: data_put.c) */
void data_object_get(ok_api_call *c, const char *tenant, const char *object, int head_only);
void data_object_delete(ok_api_call *c, const char *tenant, const char *object);
void data_object_list(ok_api_call *c, const char *tenant);

#endif
