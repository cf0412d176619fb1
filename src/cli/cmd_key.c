/* ownkey key: managing keys in a vault over its keys API (create, list, show, versions, update, delete,
 * recover, purge, backup, restore, rotate). The cryptographic operations (wrap, unwrap, encrypt, decrypt,
 * sign, verify) are in cmd_key_crypto.c, rotation-policy in cmd_key_rotation.c. Scripts rely on these
 * forms: `key create NAME --type RSA|EC|oct [--size N] [--curve C] [--ops op,...]`, `key update NAME
 * [--version V] --enabled true|false`, `key rotate NAME`, `key show NAME --output json` (the key bundle
 * exactly as the API returns it). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/vault_cli.h"

static const char USAGE[] =
    "usage: ownkey key <command> [options]\n"
    "\n"
    "Keys held by an ownkey vault (ownkeyd), over its Azure Key Vault compatible keys API.\n"
    "\n"
    "commands:\n"
    "  create NAME --type RSA|EC|oct   create a key, or a new version of it\n"
    "  list [--deleted]                list keys (or soft-deleted keys)\n"
    "  show NAME [--version V] [--pem] show a key (public parts and attributes; --pem: the public key)\n"
    "  versions NAME                   list a key's versions\n"
    "  update NAME [--version V]       change enabled, nbf, exp, tags, key operations\n"
    "  delete NAME                     soft-delete a key (recoverable until purged)\n"
    "  recover NAME                    recover a soft-deleted key\n"
    "  purge NAME                      permanently delete a soft-deleted key\n"
    "  backup NAME -o FILE             write a backup blob (restorable into the same vault)\n"
    "  restore -i FILE                 restore a key from a backup blob\n"
    "  rotate NAME                     create a new version with the same type and attributes\n"
    "  import NAME --byok FILE --type T   import a BYOK transfer blob (or --jwk FILE: a private JWK)\n"
    "  byok-blob --kek PEM --kid KID --key FILE -o OUT   make a BYOK transfer blob (docs/BYOK.md)\n"
    "  rotation-policy get|set NAME    show or set the automatic rotation policy\n"
    "  wrap|unwrap|encrypt|decrypt NAME --alg ALG [-i IN] [-o OUT]\n"
    "  sign NAME --alg ALG [-i DIGEST | --data -i FILE] [-o SIG]\n"
    "  verify NAME --alg ALG [-i DIGEST | --data -i FILE] --signature FILE\n"
    "\n"
    "Every command takes --addr, --token, --cacert (or OWNKEY_ADDR, OWNKEY_TOKEN, OWNKEY_CACERT) and\n"
    "--output table|json. Run 'ownkey key <command> --help' for its options. Exit codes are in ownkey(1).\n";

#define MAX_BACKUP (768u * 1024u) /* the request body limit is 1 MiB, and base64 grows by 4/3 */

/* ---- Shared pieces -------------------------------------------------------------------------------- */

static int check_name(vault_args *va, const char *name)
{
    if (!ok_vault_name_valid(name))
        return cli_usage_error(va->command, "\"%s\" is not a key name (1 to 127 letters, digits and '-')", name);
    return EXIT_OK;
}

static int check_version(vault_args *va, const char *version)
{
    if (version && !ok_vault_version_valid(version))
        return cli_usage_error(va->command, "\"%s\" is not a key version", version);
    return EXIT_OK;
}

/* "/keys/NAME[/VERSION]SUFFIX" (name and version already checked). */
static void key_path(char *buf, size_t len, const char *collection, const char *name, const char *version,
                     const char *suffix)
{
    snprintf(buf, len, "/%s/%s%s%s%s", collection, name, version ? "/" : "", version ? version : "", suffix);
}

static void join_strings(json_t *array, char *buf, size_t len)
{
    size_t used = 0, i;
    json_t *v;
    buf[0] = '\0';
    json_array_foreach(array, i, v) {
        if (!json_is_string(v) || used >= len)
            continue;
        int n = snprintf(buf + used, len - used, "%s%s", used ? "," : "", json_string_value(v));
        used += n > 0 ? (size_t)n : 0;
    }
    if (!buf[0])
        snprintf(buf, len, "-");
}

static void join_tags(json_t *tags, char *buf, size_t len)
{
    size_t used = 0;
    const char *k;
    json_t *v;
    buf[0] = '\0';
    json_object_foreach(tags, k, v) {
        if (!json_is_string(v) || used >= len)
            continue;
        int n = snprintf(buf + used, len - used, "%s%s=%s", used ? "," : "", k, json_string_value(v));
        used += n > 0 ? (size_t)n : 0;
    }
    if (!buf[0])
        snprintf(buf, len, "-");
}

static void print_time_field(const char *name, json_t *v)
{
    char t[32];
    vault_format_time(v, t, sizeof t);
    vault_print_field(name, t);
}

/* A KeyBundle (or DeletedKeyBundle) as "name: value" lines. */
static void print_bundle(json_t *doc)
{
    json_t *key = json_object_get(doc, "key"), *attrs = json_object_get(doc, "attributes");
    const char *kid = json_string_value(json_object_get(key, "kid"));
    char buf[1024];
    vault_print_field("kid", kid);
    vault_print_field("version", vault_last_segment(kid));
    vault_print_field("type", json_string_value(json_object_get(key, "kty")));
    if (json_is_string(json_object_get(key, "crv")))
        vault_print_field("curve", json_string_value(json_object_get(key, "crv")));
    const char *n = json_string_value(json_object_get(key, "n"));
    if (n) {
        snprintf(buf, sizeof buf, "%zu", strlen(n) * 6 / 8 * 8);
        vault_print_field("size", buf);
    }
    join_strings(json_object_get(key, "key_ops"), buf, sizeof buf);
    vault_print_field("operations", buf);
    vault_print_field("enabled", json_is_true(json_object_get(attrs, "enabled")) ? "true" : "false");
    print_time_field("not before", json_object_get(attrs, "nbf"));
    print_time_field("expires", json_object_get(attrs, "exp"));
    print_time_field("created", json_object_get(attrs, "created"));
    print_time_field("updated", json_object_get(attrs, "updated"));
    vault_print_field("recovery level", json_string_value(json_object_get(attrs, "recoveryLevel")));
    join_tags(json_object_get(doc, "tags"), buf, sizeof buf);
    vault_print_field("tags", buf);
    if (json_object_get(doc, "deletedDate")) {
        print_time_field("deleted", json_object_get(doc, "deletedDate"));
        print_time_field("purge date", json_object_get(doc, "scheduledPurgeDate"));
    }
}

/* Sends a request whose answer is a key bundle, and prints it. */
static int bundle_call(vault_args *va, const char *method, const char *path, json_t *body)
{
    vault_reply r;
    int rc = vault_call(va, method, path, body, &r);
    if (rc != EXIT_OK)
        return rc;
    if (va->json)
        vault_print_raw(&r);
    else
        print_bundle(r.doc);
    vault_reply_clear(&r);
    return EXIT_OK;
}

/* The common shape of "ownkey key VERB NAME [--version V]" commands. */
typedef struct {
    vault_args va;
    const char *name, *version;
    int deleted;
    int pem;             /* key show --pem */
} name_args;

static int parse_name_args(name_args *a, const char *command, const char *help, int allow_version, int allow_deleted,
                           int argc, char **argv)
{
    static const struct option opts[] = {
        {"version", required_argument, NULL, 'v'}, {"deleted", no_argument, NULL, 'd'},
        {"pem", no_argument, NULL, 'P'}, VAULT_COMMON_OPTIONS, {NULL, 0, NULL, 0},
    };
    memset(a, 0, sizeof *a);
    vault_args_init(&a->va, command);
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'v':
            if (!allow_version)
                return cli_usage_error(command, "unknown option --version");
            a->version = optarg;
            break;
        case 'd':
            if (!allow_deleted)
                return cli_usage_error(command, "unknown option --deleted");
            a->deleted = 1;
            break;
        case 'P':
            if (strcmp(command, "key show") != 0)
                return cli_usage_error(command, "unknown option --pem");
            a->pem = 1;
            break;
        case 'h': fputs(help, stdout); return VAULT_HELP_SHOWN;
        VAULT_OPTION_DEFAULT(a->va)
        }
    }
    int rc = vault_args_positional(&a->va, argc, argv, 1, "NAME");
    if (rc == EXIT_OK)
        a->name = argv[optind];
    if (rc == EXIT_OK)
        rc = check_name(&a->va, a->name);
    if (rc == EXIT_OK)
        rc = check_version(&a->va, a->version);
    if (rc == EXIT_OK && a->deleted && a->version)
        rc = cli_usage_error(command, "--deleted and --version do not go together");
    return rc;
}

/* ---- create ------------------------------------------------------------------------------------------ */

static const char CREATE_HELP[] =
    "usage: ownkey key create NAME --type RSA|EC|oct [--size N] [--curve P-256|P-384] [--ops op,...]\n"
    "                         [--tags K=V ...] [--nbf TIME] [--exp TIME] [--disabled]\n"
    "\n"
    "Creates a key (or, when NAME exists, a new current version of it) inside the vault.\n"
    "\n"
    "  --type T           RSA, EC or oct (AES); the -HSM variants are accepted\n"
    "  --size N           RSA: 2048 (default), 3072, 4096; oct: 128, 192, 256 (default)\n"
    "  --curve C          EC: P-256 (default) or P-384\n"
    "  --ops LIST         permitted operations: encrypt,decrypt,sign,verify,wrapKey,unwrapKey; or\n"
    "                     import alone (RSA): a key exchange key for BYOK (docs/BYOK.md)\n"
    "  --tags K=V         a tag (repeatable)\n"
    "  --nbf TIME         not valid before (Unix seconds, 2025-01-01 or 2025-01-01T00:00:00Z)\n"
    "  --exp TIME         expires\n"
    "  --disabled         create it disabled\n" VAULT_COMMON_HELP;

static int normal_kty(const char *in, const char **out)
{
    static const char *const TYPES[] = {"RSA", "EC", "oct", "RSA-HSM", "EC-HSM", "oct-HSM"};
    for (size_t i = 0; i < sizeof TYPES / sizeof *TYPES; i++)
        if (!strcasecmp(in, TYPES[i])) {
            *out = TYPES[i];
            return 0;
        }
    return -1;
}

/* Adds "attributes" to body from --nbf, --exp and --enabled values (NULL when not given). */
static int add_attributes(vault_args *va, json_t *body, const char *nbf, const char *exp, const char *enabled)
{
    json_t *attrs = json_object();
    json_object_set_new(body, "attributes", attrs);
    if (enabled) {
        int b = vault_parse_bool(enabled);
        if (b < 0)
            return cli_usage_error(va->command, "--enabled needs true or false, got \"%s\"", enabled);
        json_object_set_new(attrs, "enabled", json_boolean(b));
    }
    const char *names[2] = {"nbf", "exp"}, *values[2] = {nbf, exp};
    for (int i = 0; i < 2; i++) {
        if (!values[i])
            continue;
        json_t *t = vault_parse_time(values[i]);
        if (!t)
            return cli_usage_error(va->command, "--%s needs Unix seconds, a date (2025-01-01), "
                                   "2025-01-01T00:00:00Z or none; got \"%s\"", names[i], values[i]);
        json_object_set_new(attrs, names[i], t);
    }
    if (json_object_size(attrs) == 0)
        json_object_del(body, "attributes");
    return EXIT_OK;
}

static int key_create(int argc, char **argv)
{
    static const struct option opts[] = {
        {"type", required_argument, NULL, 't'}, {"size", required_argument, NULL, 's'},
        {"curve", required_argument, NULL, 'c'}, {"ops", required_argument, NULL, 'o'},
        {"tags", required_argument, NULL, 'T'}, {"nbf", required_argument, NULL, 'n'},
        {"exp", required_argument, NULL, 'e'}, {"disabled", no_argument, NULL, 'D'}, VAULT_COMMON_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    vault_args va;
    vault_args_init(&va, "key create");
    const char *type = NULL, *curve = NULL, *ops = NULL, *nbf = NULL, *exp = NULL;
    unsigned long size = 0;
    int disabled = 0, c, rc;
    json_t *body = json_object(), *tags = json_object();
    json_object_set_new(body, "tags", tags);
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 't': type = optarg; break;
        case 's':
            if (cli_parse_uint(optarg, 1, 16384, &size) != 0) {
                json_decref(body);
                return cli_usage_error(va.command, "--size needs a number of bits, got \"%s\"", optarg);
            }
            break;
        case 'c': curve = optarg; break;
        case 'o': ops = optarg; break;
        case 'T':
            if (vault_add_tag(tags, optarg) != 0) {
                json_decref(body);
                return cli_usage_error(va.command, "--tags needs KEY=VALUE, got \"%s\"", optarg);
            }
            break;
        case 'n': nbf = optarg; break;
        case 'e': exp = optarg; break;
        case 'D': disabled = 1; break;
        case 'h': fputs(CREATE_HELP, stdout); json_decref(body); return EXIT_OK;
        default:
            if ((rc = vault_args_option(&va, c, optarg, argv[optind - 1])) != EXIT_OK) {
                json_decref(body);
                return rc;
            }
        }
    }
    const char *kty = NULL;
    rc = vault_args_positional(&va, argc, argv, 1, "NAME");
    if (rc == EXIT_OK)
        rc = check_name(&va, argv[optind]);
    if (rc == EXIT_OK && (!type || normal_kty(type, &kty) != 0))
        rc = cli_usage_error(va.command, "--type must be RSA, EC or oct");
    if (rc == EXIT_OK && curve && strncmp(kty, "EC", 2) != 0)
        rc = cli_usage_error(va.command, "--curve is for EC keys");
    if (rc == EXIT_OK && size && !strncmp(kty, "EC", 2))
        rc = cli_usage_error(va.command, "EC keys take --curve, not --size");
    if (rc == EXIT_OK)
        rc = add_attributes(&va, body, nbf, exp, disabled ? "false" : NULL);
    if (rc == EXIT_OK && ops) {
        json_t *list = vault_parse_ops(ops);
        if (!list)
            rc = cli_usage_error(va.command, "--ops needs a list of encrypt, decrypt, sign, verify, wrapKey, unwrapKey");
        else
            json_object_set_new(body, "key_ops", list);
    }
    if (rc == EXIT_OK) {
        json_object_set_new(body, "kty", json_string(kty));
        if (size)
            json_object_set_new(body, "key_size", json_integer((json_int_t)size));
        if (curve)
            json_object_set_new(body, "crv", json_string(curve));
        if (json_object_size(tags) == 0)
            json_object_del(body, "tags");
        rc = vault_args_connect(&va, 1);
    }
    if (rc == EXIT_OK) {
        char path[OK_VAULT_NAME_MAX + 32];
        key_path(path, sizeof path, "keys", argv[optind], NULL, "/create");
        rc = bundle_call(&va, "POST", path, body);
    }
    json_decref(body);
    vault_args_close(&va);
    return rc;
}

/* ---- show, delete, recover, purge, rotate ------------------------------------------------------------ */

static const char SHOW_HELP[] =
    "usage: ownkey key show NAME [--version V | --deleted] [--pem] [--output json]\n"
    "\n"
    "Shows a key's current (or given) version: type, public parts, operations, attributes and tags;\n"
    "with --deleted, a soft-deleted key. --output json prints the key bundle exactly as the API returns it.\n"
    "\n"
    "  --version V        a particular version\n"
    "  --pem              print only the public key (RSA, EC) as PEM, e.g. a key exchange key's for BYOK\n"
    "  --deleted          the soft-deleted key NAME\n" VAULT_COMMON_HELP;

/* The public JWK of a key bundle as a PEM SubjectPublicKeyInfo on stdout. */
static int print_public_pem(json_t *key)
{
    json_t *copy = json_deep_copy(key);
    const char *kty = json_string_value(json_object_get(key, "kty"));
    if (!copy || !kty || (strncmp(kty, "RSA", 3) && strncmp(kty, "EC", 2))) {
        json_decref(copy);
        return cli_report(ok_fail(OK_ERR_KEY, "only RSA and EC keys have a public key to show"));
    }
    json_object_set_new(copy, "kty", json_string(strncmp(kty, "RSA", 3) ? "EC" : "RSA"));
    json_object_del(copy, "key_ops");
    json_object_del(copy, "kid");
    char *text = json_dumps(copy, JSON_COMPACT), *b64 = NULL;
    json_decref(copy);
    ok_jwk *jwk = NULL;
    uint8_t *der = NULL;
    size_t len = 0;
    ok_err rc = text ? ok_jwk_parse(text, strlen(text), &jwk) : ok_fail(OK_ERR_NOMEM, "out of memory");
    free(text);
    if (rc == OK_OK)
        rc = ok_pkey_public_der(jwk->pkey, &der, &len);
    if (rc == OK_OK)
        rc = ok_b64url_encode(der, len, &b64);
    if (rc == OK_OK) {
        size_t n = strlen(b64);
        for (size_t i = 0; i < n; i++)
            b64[i] = b64[i] == '-' ? '+' : b64[i] == '_' ? '/' : b64[i];
        printf("-----BEGIN PUBLIC KEY-----\n");
        for (size_t i = 0; i < n; i += 64) {
            size_t line = n - i < 64 ? n - i : 64;
            printf("%.*s%s\n", (int)line, b64 + i, i + line == n ? (n % 4 == 2 ? "==" : n % 4 == 3 ? "=" : "") : "");
        }
        printf("-----END PUBLIC KEY-----\n");
    }
    free(b64);
    free(der);
    ok_jwk_free(jwk);
    return rc == OK_OK ? EXIT_OK : cli_report(rc);
}

static int pem_call(vault_args *va, const char *path)
{
    vault_reply r;
    int rc = vault_call(va, "GET", path, NULL, &r);
    if (rc != EXIT_OK)
        return rc;
    rc = print_public_pem(json_object_get(r.doc, "key"));
    vault_reply_clear(&r);
    return rc;
}

static int key_show(int argc, char **argv)
{
    name_args a;
    int rc = parse_name_args(&a, "key show", SHOW_HELP, 1, 1, argc, argv);
    if (rc == VAULT_HELP_SHOWN)
        return EXIT_OK;
    if (rc == EXIT_OK)
        rc = vault_args_connect(&a.va, 1);
    if (rc == EXIT_OK) {
        char path[OK_VAULT_NAME_MAX + OK_VAULT_VERSION_MAX + 32];
        key_path(path, sizeof path, a.deleted ? "deletedkeys" : "keys", a.name, a.version, "");
        rc = a.pem ? pem_call(&a.va, path) : bundle_call(&a.va, "GET", path, NULL);
    }
    vault_args_close(&a.va);
    return rc;
}

static const char DELETE_HELP[] =
    "usage: ownkey key delete NAME\n"
    "\n"
    "Soft-deletes a key: every version stops working and the name stays reserved until the key is\n"
    "recovered or purged (after the vault's retention period, when purge protection is on).\n" VAULT_COMMON_HELP;
static const char RECOVER_HELP[] =
    "usage: ownkey key recover NAME\n\nRecovers a soft-deleted key with all its versions.\n" VAULT_COMMON_HELP;
static const char PURGE_HELP[] =
    "usage: ownkey key purge NAME\n"
    "\n"
    "Permanently deletes a soft-deleted key and all its versions. Data it protects becomes unreadable.\n"
    VAULT_COMMON_HELP;
static const char ROTATE_HELP[] =
    "usage: ownkey key rotate NAME\n"
    "\n"
    "Creates a new current version of the key with the same type, size and operations. Older versions\n"
    "stay usable for decryption and unwrapping, so existing envelopes still open.\n" VAULT_COMMON_HELP;

/* A command on one key name that prints the key bundle it gets back (or nothing, for 204). */
static int simple_key_command(int argc, char **argv, const char *command, const char *help, const char *method,
                              const char *collection, const char *suffix)
{
    name_args a;
    int rc = parse_name_args(&a, command, help, 0, 0, argc, argv);
    if (rc == VAULT_HELP_SHOWN)
        return EXIT_OK;
    if (rc == EXIT_OK)
        rc = vault_args_connect(&a.va, 1);
    if (rc == EXIT_OK) {
        char path[OK_VAULT_NAME_MAX + 32];
        key_path(path, sizeof path, collection, a.name, NULL, suffix);
        vault_reply r;
        rc = vault_call(&a.va, method, path, NULL, &r);
        if (rc == EXIT_OK && a.va.json)
            vault_print_raw(&r);
        else if (rc == EXIT_OK && r.doc)
            print_bundle(r.doc);
        if (rc == EXIT_OK)
            vault_reply_clear(&r);
    }
    vault_args_close(&a.va);
    return rc;
}

static int key_delete(int argc, char **argv)
{
    return simple_key_command(argc, argv, "key delete", DELETE_HELP, "DELETE", "keys", "");
}

static int key_recover(int argc, char **argv)
{
    return simple_key_command(argc, argv, "key recover", RECOVER_HELP, "POST", "deletedkeys", "/recover");
}

static int key_purge(int argc, char **argv)
{
    return simple_key_command(argc, argv, "key purge", PURGE_HELP, "DELETE", "deletedkeys", "");
}

static int key_rotate(int argc, char **argv)
{
    return simple_key_command(argc, argv, "key rotate", ROTATE_HELP, "POST", "keys", "/rotate");
}

/* ---- list, versions --------------------------------------------------------------------------------- */

static const char LIST_HELP[] =
    "usage: ownkey key list [--deleted]\n"
    "\n"
    "Lists the vault's keys (every page); with --deleted, the soft-deleted ones. --output json prints\n"
    "{\"value\": [...all items...], \"nextLink\": null}.\n" VAULT_COMMON_HELP;
static const char VERSIONS_HELP[] =
    "usage: ownkey key versions NAME\n\nLists the versions of a key (every page).\n" VAULT_COMMON_HELP;

/* GETs every page from path on, collecting the items into *items. */
static int get_all_pages(vault_args *va, const char *path, json_t **items)
{
    *items = json_array();
    char *next = strdup(path);
    int rc = next && *items ? EXIT_OK : cli_report(ok_fail(OK_ERR_NOMEM, "out of memory"));
    for (unsigned page = 0; rc == EXIT_OK && next; page++) {
        vault_reply r;
        if (page == 100000) {
            rc = cli_report(ok_fail(OK_ERR_LIMIT, "the vault keeps sending pages"));
            break;
        }
        rc = vault_call(va, "GET", next, NULL, &r);
        free(next);
        next = NULL;
        if (rc != EXIT_OK)
            break;
        json_array_extend(*items, json_object_get(r.doc, "value"));
        const char *link = json_string_value(json_object_get(r.doc, "nextLink"));
        const char *origin_end = link ? strstr(link, "://") : NULL;
        const char *link_path = origin_end ? strchr(origin_end + 3, '/') : NULL;
        if (link_path)
            next = strdup(link_path); /* the path only: always our vault, with our token */
        vault_reply_clear(&r);
    }
    free(next);
    if (rc != EXIT_OK) {
        json_decref(*items);
        *items = NULL;
    }
    return rc;
}

static void print_items_json(json_t *items)
{
    json_t *doc = json_pack("{s:O, s:n}", "value", items, "nextLink");
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    if (text)
        puts(text);
    free(text);
    json_decref(doc);
}

static int list_command(name_args *a, const char *path, int versions)
{
    json_t *items = NULL;
    int rc = vault_args_connect(&a->va, 1);
    if (rc == EXIT_OK)
        rc = get_all_pages(&a->va, path, &items);
    if (rc == EXIT_OK && a->va.json) {
        print_items_json(items);
    } else if (rc == EXIT_OK) {
        static const char *const KEYS_H[] = {"NAME", "ENABLED", "UPDATED", "TAGS"};
        static const char *const DELETED_H[] = {"NAME", "DELETED", "PURGE DATE"};
        static const char *const VERSIONS_H[] = {"VERSION", "ENABLED", "CREATED", "EXPIRES"};
        cli_table t;
        cli_table_init(&t, a->deleted ? 3 : 4, versions ? VERSIONS_H : a->deleted ? DELETED_H : KEYS_H);
        size_t i;
        json_t *item;
        json_array_foreach(items, i, item) {
            json_t *attrs = json_object_get(item, "attributes");
            char t1[32], t2[32], tags[512];
            const char *id = vault_last_segment(json_string_value(json_object_get(item, "kid")));
            const char *enabled = json_is_true(json_object_get(attrs, "enabled")) ? "true" : "false";
            join_tags(json_object_get(item, "tags"), tags, sizeof tags);
            if (a->deleted) {
                vault_format_time(json_object_get(item, "deletedDate"), t1, sizeof t1);
                vault_format_time(json_object_get(item, "scheduledPurgeDate"), t2, sizeof t2);
                cli_table_add(&t, (const char *const[]){id, t1, t2});
            } else if (versions) {
                vault_format_time(json_object_get(attrs, "created"), t1, sizeof t1);
                vault_format_time(json_object_get(attrs, "exp"), t2, sizeof t2);
                cli_table_add(&t, (const char *const[]){id, enabled, t1, t2});
            } else {
                vault_format_time(json_object_get(attrs, "updated"), t1, sizeof t1);
                cli_table_add(&t, (const char *const[]){id, enabled, t1, tags});
            }
        }
        cli_table_print(&t, stdout);
        cli_table_free(&t);
    }
    json_decref(items);
    vault_args_close(&a->va);
    return rc;
}

static int key_list(int argc, char **argv)
{
    static const struct option opts[] = {{"deleted", no_argument, NULL, 'd'}, VAULT_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
    name_args a;
    memset(&a, 0, sizeof a);
    vault_args_init(&a.va, "key list");
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': a.deleted = 1; break;
        VAULT_OPTION_CASES(a.va, LIST_HELP)
        }
    }
    int rc = vault_args_positional(&a.va, argc, argv, 0, "");
    return rc == EXIT_OK ? list_command(&a, a.deleted ? "/deletedkeys" : "/keys", 0) : rc;
}

static int key_versions(int argc, char **argv)
{
    name_args a;
    int rc = parse_name_args(&a, "key versions", VERSIONS_HELP, 0, 0, argc, argv);
    if (rc != EXIT_OK)
        return rc == VAULT_HELP_SHOWN ? EXIT_OK : rc;
    char path[OK_VAULT_NAME_MAX + 32];
    key_path(path, sizeof path, "keys", a.name, NULL, "/versions");
    return list_command(&a, path, 1);
}

/* ---- update ------------------------------------------------------------------------------------------ */

static const char UPDATE_HELP[] =
    "usage: ownkey key update NAME [--version V] [--enabled true|false] [--nbf TIME] [--exp TIME]\n"
    "                         [--tags K=V ...] [--ops op,...]\n"
    "\n"
    "Changes a key's attributes (of its current version, or of --version V). A disabled, not yet valid\n"
    "or expired key refuses every operation. --tags replaces all tags; TIME is Unix seconds, a date\n"
    "(2025-01-01), 2025-01-01T00:00:00Z, or none to clear.\n" VAULT_COMMON_HELP;

static int key_update(int argc, char **argv)
{
    static const struct option opts[] = {
        {"version", required_argument, NULL, 'v'}, {"enabled", required_argument, NULL, 'E'},
        {"nbf", required_argument, NULL, 'n'}, {"exp", required_argument, NULL, 'e'},
        {"tags", required_argument, NULL, 'T'}, {"ops", required_argument, NULL, 'o'}, VAULT_COMMON_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    vault_args va;
    vault_args_init(&va, "key update");
    const char *version = NULL, *enabled = NULL, *nbf = NULL, *exp = NULL, *ops = NULL;
    json_t *body = json_object(), *tags = NULL;
    int c, rc = EXIT_OK;
    while (rc == EXIT_OK && (c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'v': version = optarg; break;
        case 'E': enabled = optarg; break;
        case 'n': nbf = optarg; break;
        case 'e': exp = optarg; break;
        case 'o': ops = optarg; break;
        case 'T':
            if (!tags)
                json_object_set_new(body, "tags", tags = json_object());
            if (vault_add_tag(tags, optarg) != 0)
                rc = cli_usage_error(va.command, "--tags needs KEY=VALUE, got \"%s\"", optarg);
            break;
        case 'h': fputs(UPDATE_HELP, stdout); json_decref(body); return EXIT_OK;
        default: rc = vault_args_option(&va, c, optarg, argv[optind - 1]); break;
        }
    }
    if (rc == EXIT_OK)
        rc = vault_args_positional(&va, argc, argv, 1, "NAME");
    if (rc == EXIT_OK)
        rc = check_name(&va, argv[optind]);
    if (rc == EXIT_OK)
        rc = check_version(&va, version);
    if (rc == EXIT_OK)
        rc = add_attributes(&va, body, nbf, exp, enabled);
    if (rc == EXIT_OK && ops) {
        json_t *list = vault_parse_ops(ops);
        if (!list)
            rc = cli_usage_error(va.command, "--ops needs a list of encrypt, decrypt, sign, verify, wrapKey, unwrapKey");
        else
            json_object_set_new(body, "key_ops", list);
    }
    if (rc == EXIT_OK && json_object_size(body) == 0)
        rc = cli_usage_error(va.command, "nothing to change: give --enabled, --nbf, --exp, --tags or --ops");
    if (rc == EXIT_OK)
        rc = vault_args_connect(&va, 1);
    if (rc == EXIT_OK) {
        char path[OK_VAULT_NAME_MAX + OK_VAULT_VERSION_MAX + 32];
        key_path(path, sizeof path, "keys", argv[optind], version, "");
        rc = bundle_call(&va, "PATCH", path, body);
    }
    json_decref(body);
    vault_args_close(&va);
    return rc;
}

/* ---- backup, restore ---------------------------------------------------------------------------------- */

static const char BACKUP_HELP[] =
    "usage: ownkey key backup NAME -o FILE\n"
    "\n"
    "Writes the key's backup blob (all versions, sealed by the vault's master key: it restores only into\n"
    "a vault holding the same master key) to FILE, mode 0600. With --output json, prints the API's JSON.\n"
    "\n"
    "  -o, --out FILE     where to write the blob (default stdout, never a terminal)\n" VAULT_COMMON_HELP;
static const char RESTORE_HELP[] =
    "usage: ownkey key restore -i FILE\n"
    "\n"
    "Restores a key from a backup blob written by 'ownkey key backup'. The name must not be in use.\n"
    "\n"
    "  -i, --in FILE      the blob (default stdin)\n" VAULT_COMMON_HELP;

static int key_backup(int argc, char **argv)
{
    static const struct option opts[] = {{"out", required_argument, NULL, 'o'}, VAULT_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
    vault_args va;
    vault_args_init(&va, "key backup");
    const char *out = NULL;
    int c;
    while ((c = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        VAULT_OPTION_CASES(va, BACKUP_HELP)
        }
    }
    int rc = vault_args_positional(&va, argc, argv, 1, "NAME");
    if (rc == EXIT_OK)
        rc = check_name(&va, argv[optind]);
    if (rc == EXIT_OK && !(va.json && !out))
        rc = vault_check_output(out);
    if (rc == EXIT_OK)
        rc = vault_args_connect(&va, 1);
    vault_reply r;
    if (rc == EXIT_OK) {
        char path[OK_VAULT_NAME_MAX + 32];
        key_path(path, sizeof path, "keys", argv[optind], NULL, "/backup");
        rc = vault_call(&va, "POST", path, NULL, &r);
    }
    if (rc == EXIT_OK) {
        uint8_t *blob = NULL;
        size_t len = 0;
        const char *value = json_string_value(json_object_get(r.doc, "value"));
        if (va.json && !out)
            vault_print_raw(&r);
        else if (!value || ok_vault_b64_decode(value, &blob, &len) != OK_OK)
            rc = cli_report(ok_fail(OK_ERR_FORMAT, "the vault's backup answer has no base64url \"value\""));
        else
            rc = vault_write_output(out, blob, len);
        free(blob);
        vault_reply_clear(&r);
    }
    vault_args_close(&va);
    return rc;
}

static int key_restore(int argc, char **argv)
{
    static const struct option opts[] = {{"in", required_argument, NULL, 'i'}, VAULT_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
    vault_args va;
    vault_args_init(&va, "key restore");
    const char *in = NULL;
    int c;
    while ((c = getopt_long(argc, argv, ":hi:", opts, NULL)) != -1) {
        switch (c) {
        case 'i': in = optarg; break;
        VAULT_OPTION_CASES(va, RESTORE_HELP)
        }
    }
    ok_buf blob;
    int rc = vault_args_positional(&va, argc, argv, 0, "");
    if (rc != EXIT_OK)
        return rc;
    if ((rc = vault_read_input(in, MAX_BACKUP, &blob)) != EXIT_OK)
        return rc;
    char *b64 = NULL;
    if (ok_b64url_encode(blob.data, blob.len, &b64) != OK_OK)
        rc = cli_report(OK_ERR_NOMEM);
    ok_buf_free(&blob);
    json_t *body = b64 ? json_pack("{s:s}", "value", b64) : NULL;
    free(b64);
    if (rc == EXIT_OK)
        rc = vault_args_connect(&va, 1);
    if (rc == EXIT_OK)
        rc = bundle_call(&va, "POST", "/keys/restore", body);
    json_decref(body);
    vault_args_close(&va);
    return rc;
}

int cmd_key(int argc, char **argv)
{
    static const cli_subcommand subs[] = {
        {"create", key_create}, {"list", key_list}, {"show", key_show}, {"versions", key_versions},
        {"update", key_update}, {"delete", key_delete}, {"recover", key_recover}, {"purge", key_purge},
        {"backup", key_backup}, {"restore", key_restore}, {"rotate", key_rotate},
        {"rotation-policy", cmd_key_rotation_policy}, {"wrap", cmd_key_crypto}, {"unwrap", cmd_key_crypto},
        {"encrypt", cmd_key_crypto}, {"decrypt", cmd_key_crypto}, {"sign", cmd_key_crypto},
        {"verify", cmd_key_crypto}, {"import", cmd_key_import}, {"byok-blob", cmd_key_byok_blob}, {NULL, NULL},
    };
    return cli_dispatch("key", USAGE, subs, argc, argv);
}
