/* ownkey tenant: the data service's tenants (/data/v1/tenants): create, show, list, set-key, remove-key,
 * rekey (optionally waiting with a progress bar), delete (crypto-erase, confirmed). Objects are in
 * cmd_object.c. Customer tokens are read from a flag, a file or OWNKEY_CUSTOMER_TOKEN, sent once in the
 * request body and zeroized; they are never printed. Scripts rely on `tenant create NAME [--customer-key URI
 * --customer-token TOKEN --customer-cacert PEM] [--double]` and `tenant show NAME --output json` (the
 * API's tenant object as returned). */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/vault_cli.h"

static const char USAGE[] =
    "usage: ownkey tenant <command> [options]\n"
    "\n"
    "Tenants of the ownkey data service (ownkeyd's data role): each stores objects encrypted under its own\n"
    "tenant key, wrapped by the service key, by a customer key in the customer's vault, or by both.\n"
    "\n"
    "commands:\n"
    "  create NAME [--customer-key URI ...]   create a tenant (service key, or the customer's key)\n"
    "  show NAME                              state (active|locked, reason, since), keys, usage, re-key\n"
    "  list                                   list tenants\n"
    "  set-key NAME --customer-key URI ...    use (or change to) a customer key\n"
    "  remove-key NAME                        go back to the service key\n"
    "  rekey NAME [--reencrypt] [--wait]      new tenant key; re-wrap (or re-encrypt) every object\n"
    "  delete NAME [--yes]                    crypto-erase the tenant and all its objects\n"
    "\n"
    "Every command takes --addr, --token, --cacert (or OWNKEY_ADDR, OWNKEY_TOKEN, OWNKEY_CACERT) and\n"
    "--output table|json. Run 'ownkey tenant <command> --help' for its options. Exit codes are in ownkey(1).\n";

#define CUSTOMER_HELP                                                                                          \
    "  --customer-key URI           https://HOST[:PORT]/keys/NAME[/VERSION] in the customer's vault\n"           \
    "                               (no version: always its newest version), or a key the customer holds:\n"   \
    "                               pkcs11:token=T;object=O?module-path=M&pin-source=file:P (PKCS#11) or\n"     \
    "                               kmip://HOST:PORT/NAME?cert=C&key=K&ca=A (KMIP), which need no token\n"      \
    "  --customer-token TOKEN       the customer's token for that key (get, wrapKey, unwrapKey); flags show\n"  \
    "                               in ps: prefer --customer-token-file or $OWNKEY_CUSTOMER_TOKEN\n"           \
    "  --customer-token-file FILE   the token, read from FILE ('-': stdin)\n"                                  \
    "  --customer-cacert PEMFILE    the CA certificate of the customer's vault (default: the system's CAs)\n"   \
    "  --double                     wrap with the service key and then the customer key (both needed)\n"      \
    "  --permanent                  the customer key can be changed but never removed\n"

static const char CREATE_HELP[] =
    "usage: ownkey tenant create NAME [--customer-key URI [--customer-token TOKEN | --customer-token-file FILE]\n"
    "                                 [--customer-cacert PEMFILE]] [--double] [--permanent] [--output json]\n"
    "\n"
    "Creates a tenant. With --customer-key its tenant key is wrapped by the customer's key (validated\n"
    "first: it must exist, be enabled, be RSA or oct and allow wrapKey and unwrapKey); without, by the\n"
    "service key. Prints the tenant.\n"
    "\n" CUSTOMER_HELP VAULT_COMMON_HELP;
static const char SHOW_HELP[] =
    "usage: ownkey tenant show NAME [--output json]\n"
    "\n"
    "Shows a tenant: state (active or locked, with the reason and since when), key source, customer key\n"
    "and the versioned key id that wraps the tenant key now, objects, bytes, re-key progress.\n"
    "--output json prints the API's tenant object as returned.\n"
    "\n" VAULT_COMMON_HELP;
static const char LIST_HELP[] = "usage: ownkey tenant list [--output json]\n\nLists the tenants.\n\n" VAULT_COMMON_HELP;
static const char SET_KEY_HELP[] =
    "usage: ownkey tenant set-key NAME --customer-key URI [--customer-token TOKEN | --customer-token-file FILE]\n"
    "                             [--customer-cacert PEMFILE] [--double] [--permanent] [--output json]\n"
    "\n"
    "Wraps the tenant key with a customer key (or another one). Only the tenant key is re-wrapped: this\n"
    "takes the same time for any number of objects.\n"
    "\n" CUSTOMER_HELP VAULT_COMMON_HELP;
static const char REMOVE_KEY_HELP[] =
    "usage: ownkey tenant remove-key NAME [--output json]\n"
    "\n"
    "Goes back to the service key (refused for a permanent tenant; the tenant must be active).\n"
    "\n" VAULT_COMMON_HELP;
static const char REKEY_HELP[] =
    "usage: ownkey tenant rekey NAME [--reencrypt] [--wait] [--quiet] [--output json]\n"
    "\n"
    "Makes a new tenant key (new objects use it at once) and re-wraps every object's data key under it in\n"
    "the background; with --reencrypt, re-encrypts every object under a new data key instead.\n"
    "\n"
    "  --reencrypt        re-encrypt the objects, not only re-wrap their data keys\n"
    "  --wait             wait until the re-key is done (progress bar on a terminal); exit 1 if it fails\n"
    "  -q, --quiet        no progress bar\n" VAULT_COMMON_HELP;
static const char DELETE_HELP[] =
    "usage: ownkey tenant delete NAME [--yes]\n"
    "\n"
    "Crypto-erases the tenant: its keys, every object and their data keys. This cannot be undone. Without\n"
    "--yes the name must be typed to confirm (on a terminal; elsewhere --yes is required).\n"
    "\n"
    "  -y, --yes          do not ask\n" VAULT_COMMON_HELP;

/* ---- Customer key options ------------------------------------------------------------------------------ */
enum { TOPT_KEY = 2000, TOPT_TOKEN, TOPT_TOKEN_FILE, TOPT_CACERT, TOPT_DOUBLE, TOPT_PERMANENT };

#define CUSTOMER_OPTIONS                                                                                       \
    {"customer-key", required_argument, NULL, TOPT_KEY}, {"customer-token", required_argument, NULL, TOPT_TOKEN}, \
    {"customer-token-file", required_argument, NULL, TOPT_TOKEN_FILE},                                         \
    {"customer-cacert", required_argument, NULL, TOPT_CACERT}, {"double", no_argument, NULL, TOPT_DOUBLE},     \
    {"permanent", no_argument, NULL, TOPT_PERMANENT}

#define MAX_TOKEN 8192
#define MAX_PEM (256u * 1024u)

typedef struct {
    const char *uri, *token, *token_file, *cacert;
    int dbl, permanent;
} customer_opts;

/* 1 when opt was a customer key option (and is recorded). */
static int customer_option(customer_opts *co, int opt, const char *arg)
{
    switch (opt) {
    case TOPT_KEY: co->uri = arg; return 1;
    case TOPT_TOKEN: co->token = arg; return 1;
    case TOPT_TOKEN_FILE: co->token_file = arg; return 1;
    case TOPT_CACERT: co->cacert = arg; return 1;
    case TOPT_DOUBLE: co->dbl = 1; return 1;
    case TOPT_PERMANENT: co->permanent = 1; return 1;
    default: return 0;
    }
}

/* A PKCS#11 ("pkcs11:") or KMIP ("kmip://") key URI carries its own credentials (module and PIN source;
 * certificate paths): no customer token, no customer CA. */
static int uri_self_contained(const char *uri)
{
    return strncmp(uri, "pkcs11:", 7) == 0 || strncmp(uri, "kmip://", 7) == 0;
}

static int customer_check(vault_args *va, const customer_opts *co, int required)
{
    if (required && !co->uri)
        return cli_usage_error(va->command, "--customer-key URI is required");
    if (!co->uri) {
        if (co->dbl)
            return cli_usage_error(va->command, "--double needs --customer-key URI");
        if (co->permanent)
            return cli_usage_error(va->command, "--permanent needs --customer-key URI");
        if (co->token || co->token_file || co->cacert)
            return cli_usage_error(va->command, "--customer-token, --customer-token-file and --customer-cacert go "
                                                "with --customer-key URI");
        return EXIT_OK;
    }
    if (uri_self_contained(co->uri)) {
        if (co->token || co->token_file || co->cacert)
            return cli_usage_error(va->command, "--customer-token, --customer-token-file and --customer-cacert go "
                                                "with a vault key URI only (a pkcs11: or kmip:// URI carries its own "
                                                "credentials)");
        return EXIT_OK;
    }
    ok_vault_key_ref ref;
    if (ok_vault_key_ref_parse(co->uri, &ref) != OK_OK)
        return cli_usage_error(va->command, "--customer-key: %s", ok_err_message());
    if (co->token && co->token_file)
        return cli_usage_error(va->command, "give one of --customer-token and --customer-token-file");
    if (!co->token && !co->token_file && !(getenv("OWNKEY_CUSTOMER_TOKEN") && *getenv("OWNKEY_CUSTOMER_TOKEN")))
        return cli_usage_error(va->command, "no customer token: give --customer-token-file FILE or set "
                                            "OWNKEY_CUSTOMER_TOKEN (or --customer-token)");
    return EXIT_OK;
}

/* The customer's token as a JSON string: from the flag, the file (surrounding white space dropped) or
 * the environment. The file's bytes are zeroized here; the string is by wipe_token. */
static int customer_token(const customer_opts *co, json_t **out)
{
    *out = NULL;
    const char *flag = co->token ? co->token : co->token_file ? NULL : getenv("OWNKEY_CUSTOMER_TOKEN");
    ok_buf file;
    ok_buf_init(&file, MAX_TOKEN);
    const char *p = flag;
    size_t n = flag ? strlen(flag) : 0;
    if (!flag) {
        int rc = vault_read_input(co->token_file, MAX_TOKEN, &file);
        if (rc != EXIT_OK)
            return rc;
        p = (const char *)file.data;
        n = file.len;
    }
    while (n && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++, n--;
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r' || p[n - 1] == '\n'))
        n--;
    int bad = n == 0;
    for (size_t i = 0; i < n; i++)
        bad |= (unsigned char)p[i] <= 0x20 || (unsigned char)p[i] >= 0x7f;
    if (!bad)
        *out = json_stringn(p, n);
    ok_buf_free(&file);
    if (bad)
        return cli_report(ok_fail(OK_ERR_INVALID_ARG, "the customer token is empty or has a space or control "
                                                      "character"));
    return *out ? EXIT_OK : cli_report(ok_fail(OK_ERR_NOMEM, "out of memory"));
}

/* Zeroizes the customer token inside a request body (jansson keeps its own copy of every string). */
static void wipe_token(json_t *body)
{
    json_t *ck = json_object_get(body, "customer_key");
    json_t *t = json_object_get(ck ? ck : body, "token");
    if (json_is_string(t))
        ok_zeroize((char *)json_string_value(t), json_string_length(t));
    t = json_object_get(ck ? ck : body, "uri"); /* a pkcs11: URI may hold a pin-value */
    if (json_is_string(t) && strncmp(json_string_value(t), "pkcs11:", 7) == 0)
        ok_zeroize((char *)json_string_value(t), json_string_length(t));
}

/* Adds uri, token and ca_pem (the PEM file's contents) to obj. */
static int customer_fill(const customer_opts *co, json_t *obj)
{
    json_t *token;
    if (uri_self_contained(co->uri)) {
        json_object_set_new(obj, "uri", json_string(co->uri));
        return EXIT_OK;
    }
    int rc = customer_token(co, &token);
    if (rc != EXIT_OK)
        return rc;
    json_object_set_new(obj, "uri", json_string(co->uri));
    json_object_set_new(obj, "token", token);
    if (co->cacert) {
        ok_buf pem;
        rc = vault_read_input(co->cacert, MAX_PEM, &pem);
        if (rc != EXIT_OK)
            return rc;
        json_t *s = json_stringn((const char *)pem.data, pem.len);
        ok_buf_free(&pem);
        if (!s)
            return cli_report(ok_fail(OK_ERR_FORMAT, "%s is not a PEM text file", co->cacert));
        json_object_set_new(obj, "ca_pem", s);
    }
    return EXIT_OK;
}

/* ---- Shared ------------------------------------------------------------------------------------------- */

/* Sends the call and prints the answer: the JSON as received, or the tenant block. */
static int tenant_call(vault_args *va, const char *method, const char *path, json_t *body)
{
    vault_reply r;
    int rc = vault_args_connect(va, 1);
    if (rc == EXIT_OK)
        rc = vault_call(va, method, path, body, &r);
    if (rc != EXIT_OK)
        return rc;
    if (va->json)
        vault_print_raw(&r);
    else if (json_is_object(r.doc))
        data_print_tenant(r.doc);
    vault_reply_clear(&r);
    return EXIT_OK;
}

/* Parses [customer options (co not NULL)] [--yes (yes not NULL)] [common options] NAME. */
static int parse_tenant_args(vault_args *va, customer_opts *co, int *yes, const char *help, int argc, char **argv)
{
    static const struct option opts[] = {CUSTOMER_OPTIONS, {"yes", no_argument, NULL, 'y'}, VAULT_COMMON_OPTIONS,
                                         {NULL, 0, NULL, 0}};
    customer_opts ignored;
    memset(&ignored, 0, sizeof ignored);
    if (co)
        memset(co, 0, sizeof *co);
    int c;
    while ((c = getopt_long(argc, argv, yes ? ":hy" : ":h", opts, NULL)) != -1) {
        if (c == 'h') {
            fputs(help, stdout);
            return VAULT_HELP_SHOWN;
        }
        if (c == 'y' && yes) {
            *yes = 1;
            continue;
        }
        if (co && customer_option(co, c, optarg))
            continue;
        if (c == 'y' || customer_option(&ignored, c, optarg))
            c = '?'; /* an option of another tenant command */
        int rc = vault_args_option(va, c, optarg, argv[optind - 1]);
        if (rc != EXIT_OK)
            return rc;
    }
    int rc = vault_args_positional(va, argc, argv, 1, "NAME");
    return rc == EXIT_OK ? data_check_tenant(va, argv[optind]) : rc;
}

/* ---- create, set-key ---------------------------------------------------------------------------------- */

static int create_or_set(int argc, char **argv, int create)
{
    vault_args va;
    vault_args_init(&va, create ? "tenant create" : "tenant set-key");
    customer_opts co;
    int rc = parse_tenant_args(&va, &co, NULL, create ? CREATE_HELP : SET_KEY_HELP, argc, argv);
    if (rc != EXIT_OK)
        return rc == VAULT_HELP_SHOWN ? EXIT_OK : rc;
    const char *name = argv[optind];
    if ((rc = customer_check(&va, &co, !create)) != EXIT_OK)
        return rc;
    json_t *body = json_object(), *ck = body;
    if (!body)
        return cli_report(ok_fail(OK_ERR_NOMEM, "out of memory"));
    if (create && co.uri) {
        ck = json_object();
        json_object_set_new(body, "customer_key", ck);
    }
    if (co.uri)
        rc = customer_fill(&co, ck);
    json_object_set_new(body, "double", json_boolean(co.dbl));
    json_object_set_new(body, "permanent", json_boolean(co.permanent));
    char *path = rc == EXIT_OK ? data_tenant_path(name, create ? "" : "/customer-key") : NULL;
    if (rc == EXIT_OK && !path)
        rc = EXIT_FAILURE_OTHER;
    if (rc == EXIT_OK)
        rc = tenant_call(&va, "PUT", path, body);
    free(path);
    wipe_token(body);
    json_decref(body);
    vault_args_close(&va);
    return rc;
}

static int tenant_create(int argc, char **argv)
{
    return create_or_set(argc, argv, 1);
}

static int tenant_set_key(int argc, char **argv)
{
    return create_or_set(argc, argv, 0);
}

/* ---- show, remove-key --------------------------------------------------------------------------------- */

static int simple_call(int argc, char **argv, const char *command, const char *help, const char *method,
                       const char *suffix)
{
    vault_args va;
    vault_args_init(&va, command);
    int rc = parse_tenant_args(&va, NULL, NULL, help, argc, argv);
    if (rc != EXIT_OK)
        return rc == VAULT_HELP_SHOWN ? EXIT_OK : rc;
    char *path = data_tenant_path(argv[optind], suffix);
    rc = path ? tenant_call(&va, method, path, NULL) : EXIT_FAILURE_OTHER;
    free(path);
    vault_args_close(&va);
    return rc;
}

static int tenant_show(int argc, char **argv)
{
    return simple_call(argc, argv, "tenant show", SHOW_HELP, "GET", "");
}

static int tenant_remove_key(int argc, char **argv)
{
    return simple_call(argc, argv, "tenant remove-key", REMOVE_KEY_HELP, "DELETE", "/customer-key");
}

/* ---- list --------------------------------------------------------------------------------------------- */

/* The list in the answer: the document itself, or its value/tenants/names array. */
static json_t *tenant_array(json_t *doc)
{
    static const char *const members[] = {"value", "tenants", "names"};
    if (json_is_array(doc))
        return doc;
    for (size_t i = 0; i < sizeof members / sizeof *members; i++)
        if (json_is_array(json_object_get(doc, members[i])))
            return json_object_get(doc, members[i]);
    return NULL;
}

static int tenant_list(int argc, char **argv)
{
    static const struct option opts[] = {VAULT_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
    vault_args va;
    vault_args_init(&va, "tenant list");
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
        rc = vault_call(&va, "GET", "/data/v1/tenants", NULL, &r);
    if (rc == EXIT_OK && va.json) {
        vault_print_raw(&r);
    } else if (rc == EXIT_OK) {
        static const char *const HEADERS[] = {"NAME", "STATE", "KEY SOURCE"};
        json_t *list = tenant_array(r.doc), *t;
        size_t i;
        int records = json_is_object(json_array_get(list, 0));
        cli_table table;
        cli_table_init(&table, records ? 3 : 1, HEADERS);
        json_array_foreach(list, i, t) {
            char name[128], state[32], source[32];
            data_format_value(records ? json_object_get(t, "name") : t, name, sizeof name);
            data_format_value(json_object_get(t, "state"), state, sizeof state);
            data_format_value(json_object_get(t, "key_source"), source, sizeof source);
            cli_table_add(&table, (const char *const[]){name, state, source});
        }
        cli_table_print(&table, stdout);
        cli_table_free(&table);
    }
    if (rc == EXIT_OK)
        vault_reply_clear(&r);
    vault_args_close(&va);
    return rc;
}

/* ---- rekey -------------------------------------------------------------------------------------------- */

typedef enum { REKEY_RUNNING, REKEY_DONE, REKEY_FAILED } rekey_phase;

/* The progress in a GET …/rekey answer (or a tenant's rekey member). */
static json_t *rekey_object(json_t *doc)
{
    json_t *r = json_object_get(doc, "rekey");
    return json_is_object(r) ? r : doc;
}

static rekey_phase rekey_phase_of(json_t *rk)
{
    const char *s = json_string_value(json_object_get(rk, "state"));
    static const char *const running[] = {"running", "pending", "queued", "started"};
    if (!s)
        return REKEY_DONE; /* no job: nothing is running */
    for (size_t i = 0; i < sizeof running / sizeof *running; i++)
        if (!strcmp(s, running[i]))
            return REKEY_RUNNING;
    return !strcmp(s, "failed") || !strcmp(s, "error") ? REKEY_FAILED : REKEY_DONE;
}

static uint64_t count_of(json_t *rk, const char *member)
{
    json_int_t v = json_integer_value(json_object_get(rk, member));
    return v > 0 ? (uint64_t)v : 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Polls GET …/rekey until the job is done or failed; prints the last answer. */
static int rekey_wait(vault_args *va, const char *path, int quiet)
{
    cli_progress progress;
    cli_progress_init(&progress, "re-keying", 0, quiet || va->json);
    cli_progress_items(&progress, "objects");
    long delay = 100;
    for (;;) {
        vault_reply r;
        int rc = vault_call(va, "GET", path, NULL, &r);
        if (rc != EXIT_OK) {
            cli_progress_finish(&progress, 0);
            return rc;
        }
        json_t *rk = rekey_object(r.doc);
        rekey_phase phase = rekey_phase_of(rk);
        progress.total = count_of(rk, "total");
        if (phase == REKEY_RUNNING) {
            cli_progress_update(&progress, count_of(rk, "done"));
            vault_reply_clear(&r);
            sleep_ms(delay);
            delay = delay < 1000 ? delay * 2 : 1000;
            continue;
        }
        cli_progress_finish(&progress, count_of(rk, "done"));
        char state[32], done[64];
        data_format_value(json_object_get(rk, "state"), state, sizeof state);
        snprintf(done, sizeof done, "%llu of %llu objects", (unsigned long long)count_of(rk, "done"),
                 (unsigned long long)count_of(rk, "total"));
        if (va->json) {
            vault_print_raw(&r);
        } else {
            vault_print_field("rekey", state);
            vault_print_field("progress", done);
        }
        if (phase == REKEY_FAILED) {
            char why[600];
            json_t *e = json_object_get(rk, "error");
            data_format_value(json_is_string(e) ? e : json_object_get(rk, "reason"), why, sizeof why);
            vault_reply_clear(&r);
            fprintf(stderr, "ownkey: the re-key failed: %s\n", why);
            return EXIT_FAILURE_OTHER;
        }
        vault_reply_clear(&r);
        return EXIT_OK;
    }
}

static int tenant_rekey(int argc, char **argv)
{
    static const struct option opts[] = {{"reencrypt", no_argument, NULL, 'r'}, {"wait", no_argument, NULL, 'w'},
                                         {"quiet", no_argument, NULL, 'q'}, VAULT_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
    vault_args va;
    vault_args_init(&va, "tenant rekey");
    int reencrypt = 0, wait = 0, quiet = 0, c;
    while ((c = getopt_long(argc, argv, ":hq", opts, NULL)) != -1) {
        switch (c) {
        case 'r': reencrypt = 1; break;
        case 'w': wait = 1; break;
        case 'q': quiet = 1; break;
        VAULT_OPTION_CASES(va, REKEY_HELP)
        }
    }
    int rc = vault_args_positional(&va, argc, argv, 1, "NAME");
    if (rc == EXIT_OK)
        rc = data_check_tenant(&va, argv[optind]);
    if (rc != EXIT_OK)
        return rc;
    char *path = data_tenant_path(argv[optind], "/rekey");
    json_t *body = json_pack("{s:b}", "reencrypt", reencrypt);
    rc = path && body ? vault_args_connect(&va, 1) : EXIT_FAILURE_OTHER;
    vault_reply r;
    if (rc == EXIT_OK)
        rc = vault_call(&va, "POST", path, body, &r);
    if (rc == EXIT_OK) {
        if (!wait && va.json) {
            vault_print_raw(&r);
        } else if (!wait && json_object_get(r.doc, "name") && json_object_get(r.doc, "state")) {
            data_print_tenant(r.doc);
        } else if (!wait) {
            char state[32];
            data_format_value(json_object_get(rekey_object(r.doc), "state"), state, sizeof state);
            vault_print_field("rekey", state);
        }
        vault_reply_clear(&r);
    }
    if (rc == EXIT_OK && wait)
        rc = rekey_wait(&va, path, quiet);
    json_decref(body);
    free(path);
    vault_args_close(&va);
    return rc;
}

/* ---- delete ------------------------------------------------------------------------------------------- */

/* On a terminal, the name typed back; elsewhere a refusal. EXIT_OK to go on. */
static int confirm_erase(vault_args *va, const char *name)
{
    if (!isatty(STDIN_FILENO) || !isatty(STDERR_FILENO))
        return cli_usage_error(va->command, "erasing tenant \"%s\" cannot be undone: give --yes to confirm", name);
    fprintf(stderr, "This erases tenant \"%s\" and every object in it, for good.\nType the tenant's name to "
                    "confirm: ", name);
    char line[128];
    if (!fgets(line, sizeof line, stdin))
        line[0] = '\0';
    line[strcspn(line, "\r\n")] = '\0';
    if (strcmp(line, name)) {
        fprintf(stderr, "ownkey: not confirmed: nothing was erased\n");
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

static int tenant_delete(int argc, char **argv)
{
    vault_args va;
    vault_args_init(&va, "tenant delete");
    int yes = 0;
    int rc = parse_tenant_args(&va, NULL, &yes, DELETE_HELP, argc, argv);
    if (rc != EXIT_OK)
        return rc == VAULT_HELP_SHOWN ? EXIT_OK : rc;
    const char *name = argv[optind];
    char *path = data_tenant_path(name, "");
    if (!path)
        return EXIT_FAILURE_OTHER;
    rc = vault_args_connect(&va, 1); /* before asking: a missing address or token is found first */
    if (rc == EXIT_OK && !yes)
        rc = confirm_erase(&va, name);
    vault_reply r;
    if (rc == EXIT_OK)
        rc = vault_call(&va, "DELETE", path, NULL, &r);
    if (rc == EXIT_OK) {
        if (va.json)
            vault_print_raw(&r);
        else if (isatty(STDOUT_FILENO))
            printf("tenant %s erased\n", name);
        vault_reply_clear(&r);
    }
    free(path);
    vault_args_close(&va);
    return rc;
}

int cmd_tenant(int argc, char **argv)
{
    static const cli_subcommand subs[] = {
        {"create", tenant_create}, {"show", tenant_show}, {"list", tenant_list}, {"set-key", tenant_set_key},
        {"remove-key", tenant_remove_key}, {"rekey", tenant_rekey}, {"delete", tenant_delete}, {NULL, NULL},
    };
    return cli_dispatch("tenant", USAGE, subs, argc, argv);
}
