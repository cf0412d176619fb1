/* The vault commands' shared plumbing: common options and environment, opening the client, making a
 * call and reporting its failure once, subcommand dispatch, and parsing argument values (times, key
 * operations, tags, lists). Output formatting lives in vault_output.c. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cli/vault_cli.h"

void vault_args_init(vault_args *va, const char *command)
{
    memset(va, 0, sizeof *va);
    va->command = command;
    opterr = 0; /* errors are reported by us, on one line */
}

int vault_args_option(vault_args *va, int opt, const char *arg, const char *current)
{
    switch (opt) {
    case VOPT_ADDR: va->addr = arg; return EXIT_OK;
    case VOPT_TOKEN: va->token = arg; return EXIT_OK;
    case VOPT_CACERT: va->cacert = arg; return EXIT_OK;
    case VOPT_OUTPUT:
        if (!strcmp(arg, "json"))
            va->json = 1;
        else if (!strcmp(arg, "table"))
            va->json = 0;
        else
            return cli_usage_error(va->command, "--output must be table or json, got \"%s\"", arg);
        return EXIT_OK;
    case ':':
        return cli_usage_error(va->command, "option %s needs a value", current);
    default:
        return cli_usage_error(va->command, "unknown option %s", current);
    }
}

int vault_args_positional(vault_args *va, int argc, char **argv, int count, const char *what)
{
    int have = argc - optind;
    if (have < count)
        return cli_usage_error(va->command, "%s is required", what);
    if (have > count)
        return cli_usage_error(va->command, "unexpected argument \"%s\"", argv[optind + count]);
    return EXIT_OK;
}

static const char *flag_or_env(const char *flag, const char *env)
{
    if (flag)
        return *flag ? flag : NULL;
    const char *v = getenv(env);
    return v && *v ? v : NULL;
}

int vault_args_connect(vault_args *va, int need_token)
{
    ok_vault_client_config cfg = {
        .addr = flag_or_env(va->addr, "OWNKEY_ADDR"),
        .token = flag_or_env(va->token, "OWNKEY_TOKEN"),
        .ca_file = flag_or_env(va->cacert, "OWNKEY_CACERT"),
    };
    if (!cfg.addr)
        return cli_usage_error(va->command, "no vault address: give --addr https://HOST:PORT or set OWNKEY_ADDR");
    if (need_token && !cfg.token)
        return cli_usage_error(va->command, "no token: set OWNKEY_TOKEN or give --token");
    ok_err rc = ok_vault_client_new(&cfg, &va->client);
    return rc == OK_OK ? EXIT_OK : cli_report(rc);
}

void vault_args_close(vault_args *va)
{
    ok_vault_client_free(va->client);
    va->client = NULL;
}

int vault_call(vault_args *va, const char *method, const char *path, json_t *body, vault_reply *out)
{
    memset(out, 0, sizeof *out);
    char *text = NULL;
    if (body) {
        text = json_dumps(body, JSON_COMPACT);
        if (!text)
            return cli_report(ok_fail(OK_ERR_NOMEM, "out of memory"));
    }
    ok_err rc = ok_vault_client_request(va->client, method, path, text, &out->resp);
    if (text) {
        ok_zeroize(text, strlen(text));
        free(text);
    }
    if (rc == OK_OK && out->resp.body_len) {
        out->doc = json_loadb(out->resp.body, out->resp.body_len, 0, NULL);
        if (!out->doc)
            rc = ok_fail(OK_ERR_FORMAT, "the vault's answer is not JSON");
    }
    if (rc != OK_OK) {
        vault_reply_clear(out);
        return cli_report(rc);
    }
    return EXIT_OK;
}

void vault_reply_clear(vault_reply *r)
{
    json_decref(r->doc);
    r->doc = NULL;
    ok_vault_response_clear(&r->resp);
}

void vault_print_raw(const vault_reply *r)
{
    if (r->resp.body_len) {
        fwrite(r->resp.body, 1, r->resp.body_len, stdout);
        if (r->resp.body[r->resp.body_len - 1] != '\n')
            putchar('\n');
    }
}

char *vault_path(const char *fmt, const char *value)
{
    char *esc = ok_vault_escape(value);
    if (!esc)
        return NULL;
    size_t n = strlen(fmt) + strlen(esc) + 1;
    char *path = malloc(n);
    if (path)
        snprintf(path, n, fmt, esc);
    free(esc);
    return path;
}

int cli_dispatch(const char *group, const char *usage, const cli_subcommand *subs, int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
        fputs(usage, stdout);
        return EXIT_OK;
    }
    for (size_t i = 0; subs[i].name; i++)
        if (!strcmp(subs[i].name, name))
            return subs[i].run(argc - 1, argv + 1);
    fprintf(stderr, "ownkey %s: unknown command \"%s\" (see 'ownkey %s --help')\n", group, name, group);
    return EXIT_USAGE;
}

/* ---- Argument values -------------------------------------------------------------------------------- */

json_t *vault_parse_time(const char *s)
{
    if (!strcmp(s, "none"))
        return json_null();
    if (*s && strspn(s, "0123456789") == strlen(s) && strlen(s) <= 12)
        return json_integer(strtoll(s, NULL, 10));
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(s, "%Y-%m-%d", &tm);
    if (end && *end == 'T')
        end = strptime(end + 1, "%H:%M:%S", &tm);
    if (end && *end == 'Z')
        end++;
    if (!end || *end)
        return NULL;
    time_t t = timegm(&tm);
    return t < 0 ? NULL : json_integer((json_int_t)t);
}

json_t *vault_split_list(const char *s)
{
    json_t *a = json_array();
    const char *p = s;
    while (a && *p) {
        size_t n = strcspn(p, ",");
        if (n == 0) {
            json_decref(a);
            return NULL;
        }
        json_array_append_new(a, json_stringn(p, n));
        p += n;
        if (*p == ',' && !*++p) { /* a trailing comma */
            json_decref(a);
            return NULL;
        }
    }
    if (a && json_array_size(a) == 0) {
        json_decref(a);
        return NULL;
    }
    return a;
}

json_t *vault_parse_ops(const char *s)
{
    static const char *const OPS[] = {"encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey", "import", "export"};
    json_t *list = vault_split_list(s), *out = json_array();
    size_t i;
    json_t *v;
    int ok = list != NULL && out != NULL;
    json_array_foreach(list, i, v) {
        size_t k = 0;
        while (k < sizeof OPS / sizeof *OPS && strcasecmp(OPS[k], json_string_value(v)))
            k++;
        if (k == sizeof OPS / sizeof *OPS) {
            ok = 0;
            break;
        }
        json_array_append_new(out, json_string(OPS[k]));
    }
    json_decref(list);
    if (!ok) {
        json_decref(out);
        return NULL;
    }
    return out;
}

int vault_add_tag(json_t *tags, const char *kv)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv)
        return -1;
    char *name = strndup(kv, (size_t)(eq - kv));
    int rc = name ? json_object_set_new(tags, name, json_string(eq + 1)) : -1;
    free(name);
    return rc;
}

int vault_parse_bool(const char *s)
{
    if (!strcmp(s, "true"))
        return 1;
    if (!strcmp(s, "false"))
        return 0;
    return -1;
}
