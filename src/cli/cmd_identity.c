/* ownkey identity: who may call the vault (management API /ownkey/v1/identities, admin permission).
 * create prints the new identity's first token, once; token issues another; revoke-token withdraws one;
 * list shows identities with their access policies (set them with 'ownkey policy'). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/vault_cli.h"

static const char USAGE[] =
    "usage: ownkey identity <command> [options]\n"
    "\n"
    "commands:\n"
    "  create NAME [--expires TIME]        create an identity; prints its token (shown once)\n"
    "  list                                list identities and their policies\n"
    "  delete NAME                         delete an identity, its tokens and its policies\n"
    "  token NAME [--expires TIME]         issue another token for an identity\n"
    "  revoke-token TOKEN_ID               revoke one token\n"
    "\n"
    "Needs a token with the admin permission. Run 'ownkey identity <command> --help' for options.\n";

static const char CREATE_HELP[] =
    "usage: ownkey identity create NAME [--expires TIME] [--output json]\n"
    "\n"
    "Creates an identity with no permissions (grant them with 'ownkey policy set') and prints its first\n"
    "token, once. --output json prints the API's JSON: {\"name\", \"token\", \"token_id\"}.\n"
    "\n"
    "  --expires TIME     the token stops working then (Unix seconds, 2025-01-01, 2025-01-01T00:00:00Z)\n"
    VAULT_COMMON_HELP;
static const char TOKEN_HELP[] =
    "usage: ownkey identity token NAME [--expires TIME] [--output json]\n"
    "\n"
    "Issues another token for the identity and prints it, once.\n"
    "\n"
    "  --expires TIME     the token stops working then\n" VAULT_COMMON_HELP;
static const char LIST_HELP[] = "usage: ownkey identity list [--output json]\n\nLists identities and their policies.\n"
    VAULT_COMMON_HELP;
static const char DELETE_HELP[] = "usage: ownkey identity delete NAME\n\nDeletes an identity, its tokens and its "
    "policies.\n" VAULT_COMMON_HELP;
static const char REVOKE_HELP[] = "usage: ownkey identity revoke-token TOKEN_ID\n\nRevokes one token (its id is "
    "printed when it is issued).\n" VAULT_COMMON_HELP;

/* Prints a {name, token, token_id} answer, wiping the token from memory afterwards. */
static void print_token(vault_args *va, vault_reply *r)
{
    if (va->json) {
        vault_print_raw(r);
    } else {
        vault_print_field("name", json_string_value(json_object_get(r->doc, "name")));
        vault_print_field("token", json_string_value(json_object_get(r->doc, "token")));
        vault_print_field("token id", json_string_value(json_object_get(r->doc, "token_id")));
        if (isatty(STDOUT_FILENO))
            fputs("\nThe token is shown only once: store it safely.\n", stdout);
    }
    json_t *t = json_object_get(r->doc, "token");
    if (json_is_string(t))
        ok_zeroize((char *)json_string_value(t), json_string_length(t));
}

/* create NAME and token NAME: the same options, different paths. */
static int issue(int argc, char **argv, int create)
{
    static const struct option opts[] = {{"expires", required_argument, NULL, 'e'}, VAULT_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
    vault_args va;
    vault_args_init(&va, create ? "identity create" : "identity token");
    const char *expires = NULL;
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'e': expires = optarg; break;
        VAULT_OPTION_CASES(va, create ? CREATE_HELP : TOKEN_HELP)
        }
    }
    int rc = vault_args_positional(&va, argc, argv, 1, "NAME");
    if (rc != EXIT_OK)
        return rc;
    const char *name = argv[optind];
    json_t *body = json_object(), *when = NULL;
    if (create)
        json_object_set_new(body, "name", json_string(name));
    if (expires) {
        when = vault_parse_time(expires);
        if (!json_is_integer(when)) {
            json_decref(when);
            json_decref(body);
            return cli_usage_error(va.command, "--expires needs Unix seconds, a date or 2025-01-01T00:00:00Z");
        }
        json_object_set_new(body, "expires", when);
    }
    char *path = create ? strdup("/ownkey/v1/identities") : vault_path("/ownkey/v1/identities/%s/tokens", name);
    rc = path ? vault_args_connect(&va, 1) : cli_report(ok_fail(OK_ERR_NOMEM, "out of memory"));
    vault_reply r;
    if (rc == EXIT_OK)
        rc = vault_call(&va, "POST", path, body, &r);
    if (rc == EXIT_OK) {
        print_token(&va, &r);
        vault_reply_clear(&r);
    }
    free(path);
    json_decref(body);
    vault_args_close(&va);
    return rc;
}

static int identity_create(int argc, char **argv)
{
    return issue(argc, argv, 1);
}

static int identity_token(int argc, char **argv)
{
    return issue(argc, argv, 0);
}

/* "pattern: perm,perm; pattern: ..." */
static void join_policies(json_t *policies, char *buf, size_t len)
{
    size_t used = 0, i, j;
    json_t *p, *perm;
    buf[0] = '\0';
    json_array_foreach(policies, i, p) {
        int n = snprintf(buf + used, len - used, "%s%s:", i ? "; " : "", json_string_value(json_object_get(p, "keys")));
        used += n > 0 ? (size_t)n : 0;
        json_array_foreach(json_object_get(p, "permissions"), j, perm) {
            if (used >= len)
                break;
            n = snprintf(buf + used, len - used, "%s%s", j ? "," : " ", json_string_value(perm));
            used += n > 0 ? (size_t)n : 0;
        }
        if (used >= len)
            break;
    }
    if (!buf[0])
        snprintf(buf, len, "-");
}

static int identity_list(int argc, char **argv)
{
    static const struct option opts[] = {VAULT_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
    vault_args va;
    vault_args_init(&va, "identity list");
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        VAULT_OPTION_CASES(va, LIST_HELP)
        }
    }
    int rc = vault_args_positional(&va, argc, argv, 0, "");
    if (rc == EXIT_OK)
        rc = vault_args_connect(&va, 1);
    vault_reply r;
    if (rc == EXIT_OK)
        rc = vault_call(&va, "GET", "/ownkey/v1/identities", NULL, &r);
    if (rc == EXIT_OK && va.json) {
        vault_print_raw(&r);
    } else if (rc == EXIT_OK) {
        static const char *const HEADERS[] = {"NAME", "CREATED", "POLICIES"};
        cli_table t;
        cli_table_init(&t, 3, HEADERS);
        size_t i;
        json_t *id;
        json_array_foreach(json_object_get(r.doc, "value"), i, id) {
            char created[32], policies[2048];
            vault_format_time(json_object_get(id, "created"), created, sizeof created);
            join_policies(json_object_get(id, "policies"), policies, sizeof policies);
            cli_table_add(&t, (const char *const[]){json_string_value(json_object_get(id, "name")), created, policies});
        }
        cli_table_print(&t, stdout);
        cli_table_free(&t);
    }
    if (rc == EXIT_OK)
        vault_reply_clear(&r);
    vault_args_close(&va);
    return rc;
}

/* delete NAME and revoke-token ID: a DELETE on one escaped path segment. */
static int delete_one(int argc, char **argv, const char *command, const char *help, const char *fmt, const char *what)
{
    static const struct option opts[] = {VAULT_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
    vault_args va;
    vault_args_init(&va, command);
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        VAULT_OPTION_CASES(va, help)
        }
    }
    int rc = vault_args_positional(&va, argc, argv, 1, what);
    char *path = rc == EXIT_OK ? vault_path(fmt, argv[optind]) : NULL;
    if (rc == EXIT_OK && !path)
        rc = cli_report(ok_fail(OK_ERR_NOMEM, "out of memory"));
    if (rc == EXIT_OK)
        rc = vault_args_connect(&va, 1);
    vault_reply r;
    if (rc == EXIT_OK)
        rc = vault_call(&va, "DELETE", path, NULL, &r);
    if (rc == EXIT_OK) {
        if (va.json)
            vault_print_raw(&r);
        vault_reply_clear(&r);
    }
    free(path);
    vault_args_close(&va);
    return rc;
}

static int identity_delete(int argc, char **argv)
{
    return delete_one(argc, argv, "identity delete", DELETE_HELP, "/ownkey/v1/identities/%s", "NAME");
}

static int identity_revoke(int argc, char **argv)
{
    return delete_one(argc, argv, "identity revoke-token", REVOKE_HELP, "/ownkey/v1/tokens/%s", "TOKEN_ID");
}

int cmd_identity(int argc, char **argv)
{
    static const cli_subcommand subs[] = {
        {"create", identity_create}, {"list", identity_list}, {"delete", identity_delete},
        {"token", identity_token}, {"revoke-token", identity_revoke}, {NULL, NULL},
    };
    return cli_dispatch("identity", USAGE, subs, argc, argv);
}
