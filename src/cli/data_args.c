/* What the data service commands (cmd_tenant.c, cmd_object.c) share: tenant and object name checks, the
 * /data/v1/ paths with their parts percent-encoded, the tenant status block, and error reporting for
 * data calls. Owns no command. */
#include <stdlib.h>
#include <string.h>

#include "cli/vault_cli.h"

#define TENANT_NAME_MAX 63    /* dataservice.h: OK_DS_TENANT_NAME_MAX */
#define OBJECT_NAME_MAX 1024  /* dataservice.h: OK_DS_OBJECT_NAME_MAX */

int data_check_tenant(vault_args *va, const char *name)
{
    if (!ok_vault_name_valid(name) || strlen(name) > TENANT_NAME_MAX)
        return cli_usage_error(va->command, "\"%s\" is not a tenant name (1 to 63 letters, digits and '-')", name);
    return EXIT_OK;
}

int data_check_object(vault_args *va, const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > OBJECT_NAME_MAX)
        return cli_usage_error(va->command, "an object name has 1 to %d bytes", OBJECT_NAME_MAX);
    for (const char *p = name; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return cli_usage_error(va->command, "an object name cannot contain control characters");
    return EXIT_OK;
}

/* "/data/v1/tenants/" escaped(tenant) middle escaped(object) suffix; reports running out of memory. */
static char *build_path(const char *tenant, const char *middle, const char *object, const char *suffix)
{
    char *t = ok_vault_escape(tenant), *o = object ? ok_vault_escape(object) : strdup("");
    char *path = NULL;
    if (t && o) {
        size_t n = sizeof "/data/v1/tenants/" + strlen(t) + strlen(middle) + strlen(o) + strlen(suffix);
        path = malloc(n);
        if (path)
            snprintf(path, n, "/data/v1/tenants/%s%s%s%s", t, middle, o, suffix);
    }
    free(t);
    free(o);
    if (!path)
        cli_report(ok_fail(OK_ERR_NOMEM, "out of memory"));
    return path;
}

char *data_tenant_path(const char *tenant, const char *suffix)
{
    return build_path(tenant, "", NULL, suffix ? suffix : "");
}

char *data_object_path(const char *tenant, const char *object)
{
    return build_path(tenant, "/objects/", object, "");
}

void data_format_value(json_t *v, char *buf, size_t len)
{
    if (json_is_string(v))
        snprintf(buf, len, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(buf, len, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(buf, len, "%g", json_real_value(v));
    else if (json_is_boolean(v))
        snprintf(buf, len, "%s", json_is_true(v) ? "true" : "false");
    else if (json_is_object(v) && json_is_string(json_object_get(v, "uri")))
        snprintf(buf, len, "%s", json_string_value(json_object_get(v, "uri")));
    else
        snprintf(buf, len, "-");
    if (!buf[0])
        snprintf(buf, len, "-");
}

static void print_value(const char *name, json_t *v)
{
    char buf[1024];
    data_format_value(v, buf, sizeof buf);
    vault_print_field(name, buf);
}

/* Unix seconds or an RFC 3339 string, whichever the server sent. */
static void print_time(const char *name, json_t *v)
{
    char buf[64];
    if (json_is_integer(v))
        vault_format_time(v, buf, sizeof buf);
    else
        data_format_value(v, buf, sizeof buf);
    vault_print_field(name, buf);
}

/* "running 40/100 (re-encrypt)", "done 100/100" or "none" from the tenant's rekey member (an object or a state string). */
static void print_rekey(json_t *rekey)
{
    char buf[160], state[32];
    json_t *s = json_is_object(rekey) ? json_object_get(rekey, "state") : rekey;
    data_format_value(s, state, sizeof state);
    if (json_is_object(rekey) && json_is_integer(json_object_get(rekey, "total")) && strcmp(state, "none"))
        snprintf(buf, sizeof buf, "%s %lld/%lld%s", state, (long long)json_integer_value(json_object_get(rekey, "done")),
                 (long long)json_integer_value(json_object_get(rekey, "total")),
                 json_is_true(json_object_get(rekey, "reencrypt")) ? " (re-encrypt)" : "");
    else
        snprintf(buf, sizeof buf, "%s", state);
    vault_print_field("rekey", buf);
}

void data_print_tenant(json_t *t)
{
    print_value("name", json_object_get(t, "name"));
    print_value("state", json_object_get(t, "state"));
    json_t *code = json_object_get(t, "reason_code"), *reason = json_object_get(t, "reason");
    if (json_is_string(code) && *json_string_value(code)) {
        char buf[700];
        snprintf(buf, sizeof buf, "%s%s%s", json_string_value(code), json_is_string(reason) ? ": " : "",
                 json_is_string(reason) ? json_string_value(reason) : "");
        vault_print_field("reason", buf);
    } else {
        print_value("reason", reason);
    }
    print_time("since", json_object_get(t, "since"));
    print_value("key source", json_object_get(t, "key_source"));
    print_value("customer key", json_object_get(t, "customer_key"));
    print_value("customer kid", json_object_get(t, "customer_kid"));
    print_value("permanent", json_object_get(t, "permanent"));
    print_value("tk generation", json_object_get(t, "tk_generation"));
    print_value("objects", json_object_get(t, "objects"));
    print_value("bytes", json_object_get(t, "bytes"));
    if (json_object_get(t, "rekey"))
        print_rekey(json_object_get(t, "rekey"));
}

int data_report(ok_err rc, const ok_vault_response *resp)
{
    if (resp && resp->status == 416) {
        fprintf(stderr, "ownkey: %s\n", ok_err_message());
        return EXIT_USAGE;
    }
    return cli_report(rc);
}
