/* The ownkey CLI's vault commands (key, identity, policy, operator, audit): what they share. The address,
 * token and CA come from --addr/--token/--cacert or OWNKEY_ADDR/OWNKEY_TOKEN/OWNKEY_CACERT; replies are
 * printed as tables (aligned with a header on a terminal, tab-separated without one otherwise) or, with
 * --output json, as the API's JSON exactly as it arrived. Every failure is one line on stderr and a
 * documented exit code (cli.h). */
#ifndef OWNKEY_CLI_VAULT_CLI_H
#define OWNKEY_CLI_VAULT_CLI_H

#include <getopt.h>
#include <stdio.h>

#include <jansson.h>

#include "cli/cli.h"
#include "ownkey/vault_client.h"

/* ---- Common options ----------------------------------------------------------------------------- */
enum { VOPT_ADDR = 1000, VOPT_TOKEN, VOPT_CACERT, VOPT_OUTPUT };

#define VAULT_COMMON_OPTIONS                                                                                   \
    {"addr", required_argument, NULL, VOPT_ADDR}, {"token", required_argument, NULL, VOPT_TOKEN},              \
    {"cacert", required_argument, NULL, VOPT_CACERT}, {"output", required_argument, NULL, VOPT_OUTPUT},        \
    {"help", no_argument, NULL, 'h'}

#define VAULT_COMMON_HELP                                                                                      \
    "  --addr URL         the vault, https://HOST:PORT (default $OWNKEY_ADDR)\n"                                \
    "  --token TOKEN      bearer token (default $OWNKEY_TOKEN; prefer the variable: flags show in ps)\n"        \
    "  --cacert FILE      PEM file of the CA to trust (default $OWNKEY_CACERT, else the system's)\n"            \
    "  --output FORMAT    table (default) or json (the API's JSON as returned)\n"

typedef struct {
    const char *command;     /* "key create", for messages */
    const char *addr, *token, *cacert;
    int json;                /* --output json */
    ok_vault_client *client;
} vault_args;

void vault_args_init(vault_args *va, const char *command);
/* Handles a common option (or an unknown one, or one without its value: a usage error naming current,
 * the argument getopt was at). EXIT_OK or the exit code to return. Option strings start with ':'. */
int vault_args_option(vault_args *va, int opt, const char *arg, const char *current);
/* The default case of a vault subcommand's getopt switch: common options, unknown options. */
#define VAULT_OPTION_DEFAULT(va)                              \
    default: {                                                \
        int vopt_rc_ = vault_args_option(&(va), c, optarg,    \
                                         argv[optind - 1]);   \
        if (vopt_rc_ != EXIT_OK)                              \
            return vopt_rc_;                                  \
        break;                                                \
    }
/* The cases every vault command's getopt switch ends with, in the command's own function. */
#define VAULT_OPTION_CASES(va, help)                          \
    case 'h': fputs(help, stdout); return EXIT_OK;            \
    VAULT_OPTION_DEFAULT(va)
/* What an argument-parsing helper returns after printing --help: its caller returns EXIT_OK. */
#define VAULT_HELP_SHOWN (-1)
/* Exactly `count` positional arguments remain (argv[optind..]); else a usage error code. */
int vault_args_positional(vault_args *va, int argc, char **argv, int count, const char *what);
/* Opens the client (address, token, CA from flags or environment). need_token: refuse without one. */
int vault_args_connect(vault_args *va, int need_token);
void vault_args_close(vault_args *va);

/* ---- Calls ---------------------------------------------------------------------------------------- */
typedef struct {
    ok_vault_response resp;
    json_t *doc;             /* the parsed answer (NULL for an empty body) */
} vault_reply;

/* Sends body (may be NULL; its serialization is zeroized after sending) and parses the answer. On
 * failure prints the one-line error and returns its exit code; EXIT_OK on success. */
int vault_call(vault_args *va, const char *method, const char *path, json_t *body, vault_reply *out);
void vault_reply_clear(vault_reply *r);
/* Prints the answer's body exactly as received, with a final newline. */
void vault_print_raw(const vault_reply *r);
/* A path with one escaped segment or query value: fmt has exactly one %s. NULL when out of memory. */
char *vault_path(const char *fmt, const char *value);

/* ---- Argument values ------------------------------------------------------------------------------ */
/* "1735689600", "2025-01-01", "2025-01-01T00:00:00Z" -> integer; "none" -> null (clears). NULL if bad. */
json_t *vault_parse_time(const char *s);
/* "encrypt,wrapKey,..." -> array of key operation names (case-insensitive, canonical spelling). */
json_t *vault_parse_ops(const char *s);
/* Splits "a,b,c" into a JSON array of strings. */
json_t *vault_split_list(const char *s);
/* Adds "k=v" to the tags object; 0 on success. */
int vault_add_tag(json_t *tags, const char *kv);
/* "true"/"false" -> 1/0; -1 otherwise. */
int vault_parse_bool(const char *s);

/* ---- Output --------------------------------------------------------------------------------------- */
/* Unix seconds (a JSON integer) as "2025-01-01T00:00:00Z"; "-" when absent. */
void vault_format_time(json_t *v, char *buf, size_t len);
/* The last path segment of a kid/id URL (a key name or version). */
const char *vault_last_segment(const char *url);
/* One "name: value" line of a record. */
void vault_print_field(const char *name, const char *value);

/* Tables: rows of strings, printed aligned under a header on a terminal, tab-separated otherwise. */
#define CLI_TABLE_MAX_COLS 8
typedef struct {
    size_t ncols;
    const char *headers[CLI_TABLE_MAX_COLS];
    char **cells;            /* rows * ncols strings */
    size_t rows, cap;
} cli_table;

void cli_table_init(cli_table *t, size_t ncols, const char *const *headers);
int cli_table_add(cli_table *t, const char *const *cells); /* copies; 0 on success */
void cli_table_print(const cli_table *t, FILE *f);
void cli_table_free(cli_table *t);

/* ---- Raw input and output (vault_io.c) --------------------------------------------------------------
 * Reads all of path ("-" or NULL: stdin) into out (created with max_len = max); EXIT_OK or an exit code
 * after printing the error. */
int vault_read_input(const char *path, size_t max, ok_buf *out);
/* EXIT_OK unless path means stdout and stdout is a terminal (checked before asking the vault). */
int vault_check_output(const char *path);
/* Writes bytes to path (atomically, mode 0600) or to stdout, refusing a terminal. */
int vault_write_output(const char *path, const uint8_t *p, size_t n);

/* ---- Subcommand dispatch -------------------------------------------------------------------------- */
typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
} cli_subcommand;

/* Runs the subcommand argv[1] with (argc - 1, argv + 1); prints usage for none, --help or an unknown one. */
int cli_dispatch(const char *group, const char *usage, const cli_subcommand *subs, int argc, char **argv);

int cmd_key(int argc, char **argv);
int cmd_key_crypto(int argc, char **argv); /* wrap, unwrap, encrypt, decrypt, sign, verify */
int cmd_key_rotation_policy(int argc, char **argv);
int cmd_key_import(int argc, char **argv);     /* import --byok FILE | --jwk FILE (cmd_key_byok.c) */
int cmd_key_byok_blob(int argc, char **argv);  /* byok-blob: make a BYOK transfer blob (cmd_key_byok.c) */
int cmd_identity(int argc, char **argv);
int cmd_policy(int argc, char **argv);
int cmd_operator(int argc, char **argv);
int cmd_audit(int argc, char **argv);

/* ---- The data service (/data/v1/): data_args.c, cmd_tenant.c, cmd_object.c ---------------------------- */
int cmd_tenant(int argc, char **argv);
int cmd_put(int argc, char **argv);
int cmd_get(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_head(int argc, char **argv);

/* Tenant names are key names of at most 63 characters; object names 1..1024 bytes without control
 * characters. A usage error naming the command otherwise. */
int data_check_tenant(vault_args *va, const char *name);
int data_check_object(vault_args *va, const char *name);
/* "/data/v1/tenants/<escaped tenant><suffix>" and "/data/v1/tenants/T/objects/<escaped object>" (every
 * byte of the object name but the unreserved ones percent-encoded, '/' included, so that no client
 * normalizes "." or ".." segments away). malloc'ed; NULL when out of memory (reported). */
char *data_tenant_path(const char *tenant, const char *suffix);
char *data_object_path(const char *tenant, const char *object);
/* A JSON scalar as text: strings as they are, integers, booleans, "-" for null or absent. */
void data_format_value(json_t *v, char *buf, size_t len);
/* The tenant status object as "name: value" lines. */
void data_print_tenant(json_t *tenant);
/* Reports a failed data call: 416 becomes a usage error (exit 2); otherwise as cli_report. */
int data_report(ok_err rc, const ok_vault_response *resp);

#endif
