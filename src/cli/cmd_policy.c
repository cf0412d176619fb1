/* ownkey policy: access policies, each an identity, a key-name pattern and a set of permissions
 * (management API /ownkey/v1/identities/NAME/policies, admin permission). Deny by default: a call
 * needs a policy whose pattern matches the key and that holds the permission. Scripts rely on
 * `policy set NAME --keys PATTERN --permissions p1,p2,...` and `policy delete NAME --keys PATTERN`. */
#include <stdlib.h>
#include <string.h>

#include "cli/vault_cli.h"

static const char USAGE[] =
    "usage: ownkey policy <command> [options]\n"
    "\n"
    "commands:\n"
    "  set NAME --keys PATTERN --permissions p1,p2,...   grant (replaces the policy for PATTERN)\n"
    "  delete NAME --keys PATTERN                        withdraw\n"
    "  list [NAME]                                       show policies\n"
    "\n"
    "Permissions: get, list, create, update, import, delete, recover, purge, backup, restore, rotate,\n"
    "getrotationpolicy, setrotationpolicy, encrypt, decrypt, wrapKey, unwrapKey, sign, verify, admin, all.\n"
    "Calls that name no key (list, restore, the management API) need the pattern \"*\".\n"
    "Needs a token with the admin permission.\n";

static const char SET_HELP[] =
    "usage: ownkey policy set NAME --keys PATTERN --permissions p1,p2,...\n"
    "\n"
    "Gives identity NAME the permissions on keys whose names match PATTERN ('*' matches any run of\n"
    "characters), replacing what an earlier policy with the same pattern gave.\n" VAULT_COMMON_HELP;
static const char DELETE_HELP[] =
    "usage: ownkey policy delete NAME --keys PATTERN\n\nRemoves identity NAME's policy for PATTERN.\n"
    VAULT_COMMON_HELP;
static const char LIST_HELP[] =
    "usage: ownkey policy list [NAME] [--output json]\n\nShows every identity's policies (or NAME's).\n"
    VAULT_COMMON_HELP;

/* "/ownkey/v1/identities/NAME/policies[?keys=PATTERN]", escaped. */
static char *policy_path(const char *identity, const char *pattern)
{
    char *id = ok_vault_escape(identity), *pat = pattern ? ok_vault_escape(pattern) : NULL;
    char *path = NULL;
    if (id && (pat || !pattern)) {
        size_t n = strlen(id) + (pat ? strlen(pat) : 0) + 64;
        path = malloc(n);
        if (path)
            snprintf(path, n, "/ownkey/v1/identities/%s/policies%s%s", id, pat ? "?keys=" : "", pat ? pat : "");
    }
    free(id);
    free(pat);
    return path;
}

/* set and delete share their options. */
static int change(int argc, char **argv, int set)
{
    static const struct option opts[] = {
        {"keys", required_argument, NULL, 'k'}, {"permissions", required_argument, NULL, 'p'}, VAULT_COMMON_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    vault_args va;
    vault_args_init(&va, set ? "policy set" : "policy delete");
    const char *keys = NULL, *perms = NULL;
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'k': keys = optarg; break;
        case 'p': perms = optarg; break;
        VAULT_OPTION_CASES(va, set ? SET_HELP : DELETE_HELP)
        }
    }
    int rc = vault_args_positional(&va, argc, argv, 1, "NAME");
    if (rc != EXIT_OK)
        return rc;
    if (!keys || !*keys)
        return cli_usage_error(va.command, "--keys PATTERN is required");
    if (set && !perms)
        return cli_usage_error(va.command, "--permissions p1,p2,... is required");
    if (!set && perms)
        return cli_usage_error(va.command, "--permissions is for policy set");
    json_t *body = NULL;
    if (set) {
        json_t *list = vault_split_list(perms);
        if (!list)
            return cli_usage_error(va.command, "--permissions needs a comma-separated list, got \"%s\"", perms);
        body = json_pack("{s:s, s:o}", "keys", keys, "permissions", list);
    }
    char *path = policy_path(argv[optind], set ? NULL : keys);
    rc = path ? vault_args_connect(&va, 1) : cli_report(ok_fail(OK_ERR_NOMEM, "out of memory"));
    vault_reply r;
    if (rc == EXIT_OK)
        rc = vault_call(&va, set ? "PUT" : "DELETE", path, body, &r);
    if (rc == EXIT_OK) {
        if (va.json)
            vault_print_raw(&r);
        vault_reply_clear(&r);
    }
    free(path);
    json_decref(body);
    vault_args_close(&va);
    return rc;
}

static int policy_set(int argc, char **argv)
{
    return change(argc, argv, 1);
}

static int policy_delete(int argc, char **argv)
{
    return change(argc, argv, 0);
}

static void add_rows(cli_table *t, json_t *identity)
{
    const char *name = json_string_value(json_object_get(identity, "name"));
    size_t i, j;
    json_t *p, *perm;
    json_array_foreach(json_object_get(identity, "policies"), i, p) {
        char perms[1024];
        size_t used = 0;
        perms[0] = '\0';
        json_array_foreach(json_object_get(p, "permissions"), j, perm) {
            int n = snprintf(perms + used, sizeof perms - used, "%s%s", j ? "," : "", json_string_value(perm));
            used += n > 0 ? (size_t)n : 0;
            if (used >= sizeof perms)
                break;
        }
        cli_table_add(t, (const char *const[]){name, json_string_value(json_object_get(p, "keys")), perms});
    }
}

static int policy_list(int argc, char **argv)
{
    static const struct option opts[] = {VAULT_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
    vault_args va;
    vault_args_init(&va, "policy list");
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        VAULT_OPTION_CASES(va, LIST_HELP)
        }
    }
    if (argc - optind > 1)
        return cli_usage_error(va.command, "unexpected argument \"%s\"", argv[optind + 1]);
    const char *only = argc > optind ? argv[optind] : NULL;
    int rc = vault_args_connect(&va, 1);
    vault_reply r;
    if (rc == EXIT_OK)
        rc = vault_call(&va, "GET", "/ownkey/v1/identities", NULL, &r);
    if (rc != EXIT_OK) {
        vault_args_close(&va);
        return rc;
    }
    json_t *selected = json_array();
    size_t i;
    json_t *id;
    json_array_foreach(json_object_get(r.doc, "value"), i, id) {
        const char *name = json_string_value(json_object_get(id, "name"));
        if (!only || (name && !strcmp(only, name)))
            json_array_append(selected, id);
    }
    if (only && json_array_size(selected) == 0) {
        rc = cli_report(ok_fail(OK_ERR_NOT_FOUND, "no identity \"%s\"", only));
    } else if (va.json && !only) {
        vault_print_raw(&r);
    } else if (va.json) {
        char *text = json_dumps(json_array_get(selected, 0), JSON_COMPACT);
        if (text)
            puts(text);
        free(text);
    } else {
        static const char *const HEADERS[] = {"IDENTITY", "KEYS", "PERMISSIONS"};
        cli_table t;
        cli_table_init(&t, 3, HEADERS);
        json_array_foreach(selected, i, id)
            add_rows(&t, id);
        cli_table_print(&t, stdout);
        cli_table_free(&t);
    }
    json_decref(selected);
    vault_reply_clear(&r);
    vault_args_close(&va);
    return rc;
}

int cmd_policy(int argc, char **argv)
{
    static const cli_subcommand subs[] = {
        {"set", policy_set}, {"delete", policy_delete}, {"list", policy_list}, {NULL, NULL},
    };
    return cli_dispatch("policy", USAGE, subs, argc, argv);
}
