/* ownkey operator: the vault's seal state over the management API: status and unseal need no token
 * (the shares or the passphrase are the authority), seal and purge-protection need admin. Creating a
 * vault is local to the vault host (`ownkeyd init`), so `operator init` only says so. Shares and
 * passphrases are read from files or stdin (not flags, which ps shows) unless --share is given, and
 * are zeroized after use. `unseal --auto` asks a PKCS#11-sealed vault to try its token again. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli/vault_cli.h"

#define SECRET_MAX 4096

static const char USAGE[] =
    "usage: ownkey operator <command> [options]\n"
    "\n"
    "commands:\n"
    "  status                                    seal state, seal kind, keys (no token needed)\n"
    "  unseal [--share S | --share-file F | --passphrase-file F | --auto]\n"
    "                                            submit a share (from stdin by default) or the passphrase,\n"
    "                                            or (--auto) have a PKCS#11-sealed vault ask its token again\n"
    "  seal                                      wipe the master key and cached keys from memory (admin)\n"
    "  purge-protection                          turn purge protection on, for good (admin)\n"
    "  init                                      (a vault is created on its host: ownkeyd init)\n";

static const char STATUS_HELP[] =
    "usage: ownkey operator status [--output json]\n\nShows whether the vault is sealed, how it is sealed, "
    "unseal progress,\npurge protection and the number of keys. Needs no token.\n" VAULT_COMMON_HELP;
static const char UNSEAL_HELP[] =
    "usage: ownkey operator unseal [--share S | --share-file F | --passphrase-file F | --auto]\n"
    "\n"
    "Submits one unseal share (Shamir vaults; repeat until the threshold is met) or the passphrase.\n"
    "Without an option, reads a share from stdin (without echo on a terminal). Needs no token.\n"
    "\n"
    "  --share S          the share itself (visible to ps: prefer --share-file or stdin)\n"
    "  --share-file F     a file holding the share\n"
    "  --passphrase-file F  a file holding the passphrase\n"
    "  --auto             a PKCS#11-sealed vault: unwrap the master key with the token again (once it is\n"
    "                     back, or the PIN file fixed); the daemon also retries by itself until it unseals\n"
    VAULT_COMMON_HELP;
static const char SEAL_HELP[] =
    "usage: ownkey operator seal\n\nSeals the vault: every keys call answers 503 until it is unsealed.\n"
    VAULT_COMMON_HELP;
static const char PURGE_HELP[] =
    "usage: ownkey operator purge-protection\n\nTurns purge protection on. It can never be turned off: soft-"
    "deleted keys\nthen cannot be purged before the retention period ends.\n" VAULT_COMMON_HELP;

static void print_status(vault_args *va, vault_reply *r)
{
    if (va->json) {
        vault_print_raw(r);
        return;
    }
    json_t *d = r->doc;
    char buf[64];
    vault_print_field("sealed", json_is_true(json_object_get(d, "sealed")) ? "true" : "false");
    vault_print_field("seal kind", json_string_value(json_object_get(d, "seal_kind")));
    if (json_is_integer(json_object_get(d, "threshold"))) {
        snprintf(buf, sizeof buf, "%lld of %lld", (long long)json_integer_value(json_object_get(d, "shares_submitted")),
                 (long long)json_integer_value(json_object_get(d, "threshold")));
        vault_print_field("unseal progress", buf);
    }
    if (json_is_string(json_object_get(d, "hsm_key")))
        vault_print_field("hsm key", json_string_value(json_object_get(d, "hsm_key")));
    if (json_is_string(json_object_get(d, "seal_error")))
        vault_print_field("seal error", json_string_value(json_object_get(d, "seal_error")));
    vault_print_field("purge protection", json_is_true(json_object_get(d, "purge_protection")) ? "on" : "off");
    snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(json_object_get(d, "retention_days")));
    vault_print_field("retention days", buf);
    snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(json_object_get(d, "keys")));
    vault_print_field("keys", buf);
}

/* A command without arguments that POSTs or GETs path and prints the status it gets back. */
static int status_command(int argc, char **argv, const char *command, const char *help, const char *method,
                          const char *path, int need_token)
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
    int rc = vault_args_positional(&va, argc, argv, 0, "");
    if (rc == EXIT_OK)
        rc = vault_args_connect(&va, need_token);
    vault_reply r;
    if (rc == EXIT_OK)
        rc = vault_call(&va, method, path, NULL, &r);
    if (rc == EXIT_OK) {
        print_status(&va, &r);
        vault_reply_clear(&r);
    }
    vault_args_close(&va);
    return rc;
}

static int op_status(int argc, char **argv)
{
    return status_command(argc, argv, "operator status", STATUS_HELP, "GET", "/ownkey/v1/status", 0);
}

static int op_seal(int argc, char **argv)
{
    return status_command(argc, argv, "operator seal", SEAL_HELP, "POST", "/ownkey/v1/seal", 1);
}

static int op_purge_protection(int argc, char **argv)
{
    return status_command(argc, argv, "operator purge-protection", PURGE_HELP, "POST", "/ownkey/v1/purge-protection", 1);
}

static int op_init(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("ownkey operator init: a vault is created on its host, where its data lives: run 'ownkeyd init --data-dir "
          "DIR [--shares N --threshold K | --passphrase-file F]' there\n",
          stderr);
    return EXIT_USAGE;
}

/* Reads a secret (one line, trailing newline dropped) from path, or stdin (echo off on a terminal). */
static ok_err read_secret(const char *path, char *buf, size_t cap, size_t *len)
{
    FILE *f = path ? fopen(path, "r") : stdin;
    if (!f)
        return ok_fail(OK_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct termios saved, quiet;
    int tty = !path && isatty(fileno(f)) && tcgetattr(fileno(f), &saved) == 0;
    if (tty) {
        fputs("Unseal share: ", stderr);
        quiet = saved;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(fileno(f), TCSAFLUSH, &quiet);
    }
    size_t n;
    if (tty) {
        n = fgets(buf, (int)cap, f) ? strlen(buf) : 0;
    } else {
        n = fread(buf, 1, cap - 1, f);
    }
    if (tty) {
        tcsetattr(fileno(f), TCSAFLUSH, &saved);
        fputc('\n', stderr);
    }
    int more = !tty && n == cap - 1 && fgetc(f) != EOF;
    if (path)
        fclose(f);
    if (more)
        return ok_fail(OK_ERR_LIMIT, "the share or passphrase is longer than %zu bytes", cap - 1);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = '\0';
    *len = n;
    if (n == 0)
        return ok_fail(OK_ERR_INVALID_ARG, "no share or passphrase given");
    return OK_OK;
}

/* Sends the unseal request; a refused share or passphrase (400 UnsealFailed) is an authentication failure. */
static int send_unseal(vault_args *va, const char *body)
{
    ok_vault_response resp;
    ok_err rc = ok_vault_client_request(va->client, "POST", "/ownkey/v1/unseal", body, &resp);
    if (rc == OK_ERR_INVALID_ARG && !strcmp(resp.error_code, "UnsealFailed")) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", ok_err_message());
        rc = ok_fail(OK_ERR_AUTH, "%s", msg);
    }
    vault_reply r = {.resp = resp};
    if (rc == OK_OK && resp.body_len && !(r.doc = json_loadb(resp.body, resp.body_len, 0, NULL)))
        rc = ok_fail(OK_ERR_FORMAT, "the vault's answer is not JSON");
    if (rc == OK_OK)
        print_status(va, &r);
    vault_reply_clear(&r);
    return rc == OK_OK ? EXIT_OK : cli_report(rc);
}

static int op_unseal(int argc, char **argv)
{
    static const struct option opts[] = {
        {"share", required_argument, NULL, 's'}, {"share-file", required_argument, NULL, 'S'},
        {"passphrase-file", required_argument, NULL, 'p'}, {"auto", no_argument, NULL, 'A'},
        VAULT_COMMON_OPTIONS, {NULL, 0, NULL, 0},
    };
    vault_args va;
    vault_args_init(&va, "operator unseal");
    const char *share = NULL, *share_file = NULL, *pass_file = NULL;
    int c, automatic = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 's': share = optarg; break;
        case 'S': share_file = optarg; break;
        case 'p': pass_file = optarg; break;
        case 'A': automatic = 1; break;
        VAULT_OPTION_CASES(va, UNSEAL_HELP)
        }
    }
    int rc = vault_args_positional(&va, argc, argv, 0, "");
    if (rc != EXIT_OK)
        return rc;
    if ((share != NULL) + (share_file != NULL) + (pass_file != NULL) + automatic > 1)
        return cli_usage_error(va.command, "give one of --share, --share-file, --passphrase-file, --auto");
    if (automatic) {
        rc = vault_args_connect(&va, 0);
        if (rc == EXIT_OK)
            rc = send_unseal(&va, "{\"auto\":true}");
        vault_args_close(&va);
        return rc;
    }
    char *secret = ok_secure_alloc(SECRET_MAX), *body = NULL;
    size_t len = 0;
    json_t *doc = NULL;
    ok_err err = secret ? OK_OK : ok_fail(OK_ERR_NOMEM, "out of memory");
    if (err == OK_OK && share) {
        len = strlen(share);
        if (len >= SECRET_MAX)
            err = ok_fail(OK_ERR_LIMIT, "the share is too long");
        else
            memcpy(secret, share, len + 1);
    } else if (err == OK_OK) {
        err = read_secret(pass_file ? pass_file : share_file, secret, SECRET_MAX, &len);
    }
    if (err == OK_OK) {
        json_t *value = json_stringn(secret, len);
        doc = json_object();
        if (value && json_object_set_new(doc, pass_file ? "passphrase" : "share", value) == 0)
            body = json_dumps(doc, JSON_COMPACT);
        if (!body)
            err = ok_fail(OK_ERR_INVALID_ARG, "the share or passphrase is not valid UTF-8 text");
    }
    rc = err == OK_OK ? vault_args_connect(&va, 0) : cli_report(err);
    if (rc == EXIT_OK)
        rc = send_unseal(&va, body);
    if (body) {
        ok_zeroize(body, strlen(body));
        free(body);
    }
    json_t *v = json_object_get(doc, pass_file ? "passphrase" : "share");
    if (json_is_string(v))
        ok_zeroize((char *)json_string_value(v), json_string_length(v));
    json_decref(doc);
    ok_secure_free(secret, SECRET_MAX);
    vault_args_close(&va);
    return rc;
}

int cmd_operator(int argc, char **argv)
{
    static const cli_subcommand subs[] = {
        {"status", op_status}, {"unseal", op_unseal}, {"seal", op_seal},
        {"purge-protection", op_purge_protection}, {"init", op_init}, {NULL, NULL},
    };
    return cli_dispatch("operator", USAGE, subs, argc, argv);
}
