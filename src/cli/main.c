/* ownkey: the client-side encryption command and the command-line client of ownkeyd (vault and data
 * service). Dispatches to the commands and maps errors to the documented exit codes. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/vault_cli.h"

static const char USAGE[] =
    "usage: ownkey <command> [options]\n"
    "\n"
    "Client-side envelope encryption: data is encrypted with a fresh data key, which is wrapped for\n"
    "each recipient key.\n"
    "\n"
    "commands:\n"
    "  keygen    generate a key file (AES-256 or RSA) as JWK\n"
    "  encrypt   encrypt a file or stream to one or more recipient keys\n"
    "  decrypt   decrypt an envelope with a key\n"
    "  inspect   show an envelope's header (recipients, context) without decrypting\n"
    "\n"
    "vault commands (an ownkeyd over HTTPS; --addr/--token/--cacert or OWNKEY_ADDR, OWNKEY_TOKEN,\n"
    "OWNKEY_CACERT):\n"
    "  key       create, list, show, update, rotate, delete, back up keys; wrap, sign, ... with them\n"
    "  identity  identities and their tokens\n"
    "  policy    access policies: which identity may do what with which keys\n"
    "  operator  seal status, unseal, seal\n"
    "  audit     verify the audit log; show its last records\n"
    "\n"
    "data service commands (ownkeyd's data role; the same address, token and CA):\n"
    "  tenant    create, show, list, set-key, remove-key, rekey, delete (crypto-erase) tenants\n"
    "  put       put TENANT OBJECT -i FILE       store an object (streamed; stdin with -i -)\n"
    "  get       get TENANT OBJECT -o FILE       fetch an object or a --range of it (stdout with -o -)\n"
    "  ls        ls TENANT [--prefix P]          list a tenant's objects\n"
    "  rm        rm TENANT OBJECT                delete an object\n"
    "  head      head TENANT OBJECT              show an object's size, type and metadata\n"
    "\n"
    "Run 'ownkey <command> --help' for a command's options. Exit codes are in ownkey(1).\n";

int cli_exit_code(ok_err err)
{
    switch (err) {
    case OK_OK: return EXIT_OK;
    case OK_ERR_INVALID_ARG: return EXIT_USAGE;
    case OK_ERR_IO: return EXIT_IO;
    case OK_ERR_KEY: return EXIT_KEY;
    case OK_ERR_NO_RECIPIENT: return EXIT_NO_RECIPIENT;
    case OK_ERR_AUTH: return EXIT_AUTH;
    case OK_ERR_TRUNCATED: return EXIT_TRUNCATED;
    case OK_ERR_UNSUPPORTED: return EXIT_UNSUPPORTED;
    case OK_ERR_FORMAT:
    case OK_ERR_LIMIT: return EXIT_FORMAT;
    case OK_ERR_NOT_FOUND: return EXIT_NOT_FOUND;
    case OK_ERR_CONFLICT: return EXIT_CONFLICT;
    case OK_ERR_FORBIDDEN: return EXIT_FORBIDDEN;
    case OK_ERR_SEALED: return EXIT_SEALED;
    case OK_ERR_LOCKED: return EXIT_FORBIDDEN;
    case OK_ERR_NOMEM:
    case OK_ERR_CRYPTO: return EXIT_FAILURE_OTHER;
    }
    return EXIT_FAILURE_OTHER;
}

int cli_report(ok_err err)
{
    const char *msg = ok_err_message();
    fprintf(stderr, "ownkey: %s\n", msg && *msg ? msg : ok_err_name(err));
    return cli_exit_code(err);
}

int cli_usage_error(const char *command, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "ownkey %s: ", command);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see 'ownkey %s --help')\n", command);
    return EXIT_USAGE;
}

int cli_parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
    char *end = NULL;
    if (!s || !*s || *s == '-')
        return -1;
    unsigned long v = strtoul(s, &end, 10);
    if (*end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    (void)ok_secure_heap_init(256u * 1024u); /* keys and tokens in locked memory where the limits allow */
    if (argc < 2) {
        fputs(USAGE, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(USAGE, stdout);
        return EXIT_OK;
    }
    if (!strcmp(cmd, "--version")) {
        puts("ownkey 0.1.0");
        return EXIT_OK;
    }
    if (!strcmp(cmd, "keygen"))
        return cmd_keygen(argc - 1, argv + 1);
    if (!strcmp(cmd, "encrypt"))
        return cmd_encrypt(argc - 1, argv + 1);
    if (!strcmp(cmd, "decrypt"))
        return cmd_decrypt(argc - 1, argv + 1);
    if (!strcmp(cmd, "inspect"))
        return cmd_inspect(argc - 1, argv + 1);
    if (!strcmp(cmd, "key"))
        return cmd_key(argc - 1, argv + 1);
    if (!strcmp(cmd, "identity"))
        return cmd_identity(argc - 1, argv + 1);
    if (!strcmp(cmd, "policy"))
        return cmd_policy(argc - 1, argv + 1);
    if (!strcmp(cmd, "operator"))
        return cmd_operator(argc - 1, argv + 1);
    if (!strcmp(cmd, "audit"))
        return cmd_audit(argc - 1, argv + 1);
    static const cli_subcommand data_commands[] = {
        {"tenant", cmd_tenant}, {"put", cmd_put}, {"get", cmd_get}, {"ls", cmd_ls}, {"rm", cmd_rm},
        {"head", cmd_head}, {NULL, NULL},
    };
    for (size_t i = 0; data_commands[i].name; i++)
        if (!strcmp(cmd, data_commands[i].name))
            return data_commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "ownkey: unknown command \"%s\" (see 'ownkey --help')\n", cmd);
    return EXIT_USAGE;
}
