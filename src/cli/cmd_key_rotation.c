/* ownkey key rotation-policy get|set: a key's automatic rotation policy (Azure's lifetimeActions: rotate
 * some time after each version is created, notify some time before it expires; and the expiry given to
 * new versions). The vault's scheduler applies it; this only reads and replaces it. */
#include <string.h>

#include "cli/vault_cli.h"

static const char POLICY_GET_HELP[] =
    "usage: ownkey key rotation-policy get NAME\n\nShows the key's automatic rotation policy.\n" VAULT_COMMON_HELP;
static const char POLICY_SET_HELP[] =
    "usage: ownkey key rotation-policy set NAME [--rotate-after DURATION] [--notify-before DURATION]\n"
    "                                      [--expiry DURATION]\n"
    "\n"
    "Sets the key's rotation policy (replacing it). Durations are ISO 8601 (P30D, P1Y, PT12H).\n"
    "\n"
    "  --rotate-after D   rotate this long after each version is created\n"
    "  --notify-before D  record a notification this long before a version expires\n"
    "  --expiry D         new versions expire this long after they are created\n" VAULT_COMMON_HELP;
static const char POLICY_USAGE[] =
    "usage: ownkey key rotation-policy get NAME\n"
    "       ownkey key rotation-policy set NAME [--rotate-after P30D] [--notify-before P7D] [--expiry P90D]\n";

static void print_rotation_policy(json_t *doc)
{
    json_t *attrs = json_object_get(doc, "attributes"), *actions = json_object_get(doc, "lifetimeActions");
    const char *expiry = json_string_value(json_object_get(attrs, "expiryTime"));
    vault_print_field("expiry time", expiry ? expiry : "-");
    size_t i;
    json_t *a;
    if (json_array_size(actions) == 0)
        vault_print_field("actions", "-");
    json_array_foreach(actions, i, a) {
        json_t *trigger = json_object_get(a, "trigger");
        const char *type = json_string_value(json_object_get(json_object_get(a, "action"), "type"));
        const char *after = json_string_value(json_object_get(trigger, "timeAfterCreate"));
        const char *before = json_string_value(json_object_get(trigger, "timeBeforeExpiry"));
        char line[200];
        snprintf(line, sizeof line, "%s %s %s", type ? type : "?", after ? after : before ? before : "?",
                 after ? "after create" : "before expiry");
        vault_print_field("action", line);
    }
    char updated[32];
    vault_format_time(json_object_get(attrs, "updated"), updated, sizeof updated);
    vault_print_field("updated", updated);
}

/* The key NAME given to get/set: a usage error code unless it is a valid key name. */
static int check_name(vault_args *va, const char *name)
{
    if (!ok_vault_name_valid(name))
        return cli_usage_error(va->command, "\"%s\" is not a key name (1 to 127 letters, digits and '-')", name);
    return EXIT_OK;
}

/* Sends the request and prints the policy it gets back. */
static int policy_call(vault_args *va, const char *method, const char *name, json_t *body)
{
    char path[OK_VAULT_NAME_MAX + 32];
    snprintf(path, sizeof path, "/keys/%s/rotationpolicy", name);
    vault_reply r;
    int rc = vault_args_connect(va, 1);
    if (rc == EXIT_OK)
        rc = vault_call(va, method, path, body, &r);
    if (rc == EXIT_OK) {
        if (va->json)
            vault_print_raw(&r);
        else
            print_rotation_policy(r.doc);
        vault_reply_clear(&r);
    }
    vault_args_close(va);
    return rc;
}

static int policy_get(int argc, char **argv)
{
    static const struct option opts[] = {VAULT_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
    vault_args va;
    vault_args_init(&va, "key rotation-policy get");
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        VAULT_OPTION_CASES(va, POLICY_GET_HELP)
        }
    }
    int rc = vault_args_positional(&va, argc, argv, 1, "NAME");
    if (rc == EXIT_OK)
        rc = check_name(&va, argv[optind]);
    return rc == EXIT_OK ? policy_call(&va, "GET", argv[optind], NULL) : rc;
}

static int check_duration(vault_args *va, const char *flag, const char *value)
{
    int64_t secs = 0;
    if (ok_duration_parse(value, &secs) != OK_OK || secs <= 0)
        return cli_usage_error(va->command, "%s needs an ISO 8601 duration such as P30D, got \"%s\"", flag, value);
    return EXIT_OK;
}

static int policy_set(int argc, char **argv)
{
    static const struct option opts[] = {
        {"rotate-after", required_argument, NULL, 'r'}, {"notify-before", required_argument, NULL, 'n'},
        {"expiry", required_argument, NULL, 'e'}, VAULT_COMMON_OPTIONS, {NULL, 0, NULL, 0},
    };
    vault_args va;
    vault_args_init(&va, "key rotation-policy set");
    const char *rotate = NULL, *notify = NULL, *expiry = NULL;
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'r': rotate = optarg; break;
        case 'n': notify = optarg; break;
        case 'e': expiry = optarg; break;
        VAULT_OPTION_CASES(va, POLICY_SET_HELP)
        }
    }
    int rc = vault_args_positional(&va, argc, argv, 1, "NAME");
    if (rc == EXIT_OK)
        rc = check_name(&va, argv[optind]);
    if (rc == EXIT_OK && rotate)
        rc = check_duration(&va, "--rotate-after", rotate);
    if (rc == EXIT_OK && notify)
        rc = check_duration(&va, "--notify-before", notify);
    if (rc == EXIT_OK && expiry)
        rc = check_duration(&va, "--expiry", expiry);
    if (rc != EXIT_OK)
        return rc;
    json_t *actions = json_array(), *attrs = json_object();
    if (rotate)
        json_array_append_new(actions, json_pack("{s:{s:s}, s:{s:s}}", "trigger", "timeAfterCreate", rotate, "action",
                                                 "type", "Rotate"));
    if (notify)
        json_array_append_new(actions, json_pack("{s:{s:s}, s:{s:s}}", "trigger", "timeBeforeExpiry", notify, "action",
                                                 "type", "Notify"));
    if (expiry)
        json_object_set_new(attrs, "expiryTime", json_string(expiry));
    json_t *body = json_pack("{s:o, s:o}", "lifetimeActions", actions, "attributes", attrs);
    rc = policy_call(&va, "PUT", argv[optind], body);
    json_decref(body);
    return rc;
}

int cmd_key_rotation_policy(int argc, char **argv)
{
    static const cli_subcommand subs[] = {{"get", policy_get}, {"set", policy_set}, {NULL, NULL}};
    return cli_dispatch("key rotation-policy", POLICY_USAGE, subs, argc, argv);
}

