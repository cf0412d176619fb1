/* The data API's tenant handlers: list, create, status, crypto-erase, setting and removing the customer
 * key, and re-key (start and progress). Each checks the tenant name and the identity's data permission
 * (data_allow) before reading the body, then calls the data service; customer credentials in a body are
 * wiped from memory once the call is made. */
#include <stdlib.h>
#include <string.h>

#include "http/api/data_api.h"

/* An optional boolean member: 0 (with *out set) or -1 after a 400. */
static int read_bool(ok_api_call *c, json_t *obj, const char *name, int *out)
{
    json_t *v = json_object_get(obj, name);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_boolean(v)) {
        api_error(c, 400, "BadParameter", "\"%s\" must be true or false", name);
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

/* A PKCS#11 ("pkcs11:") or KMIP ("kmip://") key URI carries its own credentials: no token, no CA. */
static int uri_self_contained(const char *uri)
{
    return strncmp(uri, "pkcs11:", 7) == 0 || strncmp(uri, "kmip://", 7) == 0;
}

/* {uri, token, ca_pem?} from obj into ck (pointing into the JSON document); 0, or -1 after a 400. The
 * token is required for a vault key URI only. */
static int read_customer_key(ok_api_call *c, json_t *obj, const char *where, ok_ds_customer_key *ck)
{
    json_t *uri = json_object_get(obj, "uri"), *token = json_object_get(obj, "token"), *ca = json_object_get(obj, "ca_pem");
    if (!json_is_string(uri) || !json_string_length(uri)) {
        api_error(c, 400, "BadParameter", "%s\"uri\" (the customer key's URL) is required", where);
        return -1;
    }
    if (json_string_length(uri) > OK_DS_KEY_URI_MAX) {
        api_error(c, 400, "BadParameter", "%s\"uri\" is longer than %d bytes", where, OK_DS_KEY_URI_MAX);
        return -1;
    }
    int own = uri_self_contained(json_string_value(uri));
    if (own && token && !json_is_null(token) && !(json_is_string(token) && !json_string_length(token))) {
        api_error(c, 400, "BadParameter", "%s\"token\" goes with a vault key only: a pkcs11: or kmip:// URI carries "
                  "its own credentials", where);
        return -1;
    }
    if (!own && (!json_is_string(token) || !json_string_length(token))) {
        api_error(c, 400, "BadParameter", "%s\"token\" (the credential for the customer's vault) is required", where);
        return -1;
    }
    if (ca && !json_is_null(ca) && !json_is_string(ca)) {
        api_error(c, 400, "BadParameter", "%s\"ca_pem\" must be a PEM string or null", where);
        return -1;
    }
    ck->uri = json_string_value(uri);
    ck->token = json_is_string(token) ? json_string_value(token) : NULL;
    ck->ca_pem = json_is_string(ca) ? json_string_value(ca) : NULL;
    return 0;
}

/* "double" and "permanent" mean something only with a customer key. */
static int read_flags(ok_api_call *c, json_t *body, ok_ds_tenant_settings *s)
{
    if (read_bool(c, body, "double", &s->double_encryption) || read_bool(c, body, "permanent", &s->permanent))
        return -1;
    if (!s->customer && (s->double_encryption || s->permanent)) {
        api_error(c, 400, "BadParameter", "\"double\" and \"permanent\" need a customer_key");
        return -1;
    }
    return 0;
}

/* The customer's credential leaves memory with the request: jansson keeps string values in memory of its
 * own, which is overwritten in place before the document is freed. */
static void wipe_token(json_t *obj)
{
    json_t *v = json_is_object(obj) ? json_object_get(obj, "token") : NULL;
    if (json_is_string(v))
        ok_zeroize((char *)json_string_value(v), json_string_length(v));
    v = json_is_object(obj) ? json_object_get(obj, "uri") : NULL; /* a pkcs11: URI may hold a pin-value */
    if (json_is_string(v) && strncmp(json_string_value(v), "pkcs11:", 7) == 0)
        ok_zeroize((char *)json_string_value(v), json_string_length(v));
}

static void reply_tenant(ok_api_call *c, ok_err rc, int status, const char *tenant, const ok_ds_tenant_info *info)
{
    if (rc != OK_OK)
        data_fail(c, rc, tenant, NULL, NULL);
    else
        api_json(c, status, data_tenant_json(info));
}

void data_tenant_list(ok_api_call *c)
{
    c->resp->operation = "tenant.list";
    if (!data_allow(c, NULL, OK_PERM_DATA_READ))
        return;
    char **names = NULL;
    size_t n = 0;
    ok_err rc = ok_ds_tenant_list(c->api->ds, &names, &n);
    if (rc != OK_OK) {
        data_fail(c, rc, NULL, NULL, NULL);
        return;
    }
    json_t *list = json_array();
    for (size_t i = 0; list && i < n; i++)
        json_array_append_new(list, json_string(names[i]));
    ok_ds_names_free(names, n);
    api_json(c, 200, list ? json_pack("{s:o}", "tenants", list) : NULL);
}

void data_tenant_create(ok_api_call *c, const char *tenant)
{
    c->resp->operation = "tenant.create";
    if (!data_allow(c, tenant, OK_PERM_DATA_ADMIN))
        return;
    json_t *body = api_body(c, 1);
    if (!body)
        return;
    ok_ds_customer_key ck = {0};
    ok_ds_tenant_settings s = {0};
    json_t *key = json_object_get(body, "customer_key");
    int bad = 0;
    if (key && !json_is_null(key)) {
        if (!json_is_object(key)) {
            api_error(c, 400, "BadParameter", "\"customer_key\" must be an object {uri, token, ca_pem}");
            bad = 1;
        } else if (read_customer_key(c, key, "customer_key.", &ck) == 0) {
            s.customer = &ck;
        } else {
            bad = 1;
        }
    }
    if (!bad && read_flags(c, body, &s) == 0) {
        ok_ds_tenant_info info;
        ok_err rc = ok_ds_tenant_create(c->api->ds, tenant, &s, &info);
        reply_tenant(c, rc, 201, tenant, &info);
    }
    wipe_token(key);
    json_decref(body);
}

void data_tenant_get(ok_api_call *c, const char *tenant)
{
    c->resp->operation = "tenant.get";
    if (!data_allow(c, tenant, OK_PERM_DATA_READ))
        return;
    ok_ds_tenant_info info;
    reply_tenant(c, ok_ds_tenant_get(c->api->ds, tenant, &info), 200, tenant, &info);
}

void data_tenant_delete(ok_api_call *c, const char *tenant)
{
    c->resp->operation = "tenant.delete";
    if (!data_allow(c, tenant, OK_PERM_DATA_ADMIN))
        return;
    ok_err rc = ok_ds_tenant_delete(c->api->ds, tenant);
    if (rc != OK_OK) {
        data_fail(c, rc, tenant, NULL, NULL);
        return;
    }
    c->resp->status = 204;
    ok_buf_reset(&c->resp->body);
}

void data_customer_key_set(ok_api_call *c, const char *tenant)
{
    c->resp->operation = "tenant.setkey";
    if (!data_allow(c, tenant, OK_PERM_DATA_ADMIN))
        return;
    json_t *body = api_body(c, 0);
    if (!body)
        return;
    ok_ds_customer_key ck = {0};
    ok_ds_tenant_settings s = {.customer = &ck};
    if (read_customer_key(c, body, "", &ck) == 0 && read_flags(c, body, &s) == 0) {
        ok_ds_tenant_info info;
        ok_err rc = ok_ds_tenant_set_key(c->api->ds, tenant, &s, &info);
        reply_tenant(c, rc, 200, tenant, &info);
    }
    wipe_token(body);
    json_decref(body);
}

void data_customer_key_remove(ok_api_call *c, const char *tenant)
{
    c->resp->operation = "tenant.removekey";
    if (!data_allow(c, tenant, OK_PERM_DATA_ADMIN))
        return;
    ok_ds_tenant_info info;
    reply_tenant(c, ok_ds_tenant_remove_key(c->api->ds, tenant, &info), 200, tenant, &info);
}

void data_rekey_start(ok_api_call *c, const char *tenant)
{
    c->resp->operation = "tenant.rekey";
    if (!data_allow(c, tenant, OK_PERM_DATA_ADMIN))
        return;
    json_t *body = api_body(c, 1);
    if (!body)
        return;
    int reencrypt = 0;
    if (read_bool(c, body, "reencrypt", &reencrypt) == 0) {
        ok_ds_tenant_info info;
        reply_tenant(c, ok_ds_rekey_start(c->api->ds, tenant, reencrypt, &info), 202, tenant, &info);
    }
    json_decref(body);
}

void data_rekey_get(ok_api_call *c, const char *tenant)
{
    c->resp->operation = "tenant.rekey.status";
    if (!data_allow(c, tenant, OK_PERM_DATA_READ))
        return;
    ok_ds_tenant_info info;
    ok_err rc = ok_ds_tenant_get(c->api->ds, tenant, &info);
    if (rc != OK_OK)
        data_fail(c, rc, tenant, NULL, NULL);
    else
        api_json(c, 200, data_rekey_json(&info));
}
