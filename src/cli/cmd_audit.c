/* ownkey audit: `verify` asks the vault to check its tamper-evident audit log (GET
 * /ownkey/v1/audit/verify, admin) and exits non-zero unless it is intact; `tail` reads the last lines of
 * DIR/audit.log on the vault host itself (no network, no token: file permissions are the control). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/vault_cli.h"

#define TAIL_MAX_LINES 100000
#define TAIL_CHUNK 65536

static const char USAGE[] =
    "usage: ownkey audit <command> [options]\n"
    "\n"
    "commands:\n"
    "  verify                   check the audit log's MAC chain on the vault (admin); exit 6 if broken\n"
    "  tail [-n N] --data-dir DIR  print the last N records of DIR/audit.log (local)\n";

static const char VERIFY_HELP[] =
    "usage: ownkey audit verify [--output json]\n"
    "\n"
    "Asks the vault to verify its audit log: every line's MAC, chained over the line before. Exits 0\n"
    "when the log is intact and 6 (authentication failed) naming the first bad line when it is not.\n"
    VAULT_COMMON_HELP;
static const char TAIL_HELP[] =
    "usage: ownkey audit tail [-n N] --data-dir DIR [--output json]\n"
    "\n"
    "Prints the last N (default 20) records of DIR/audit.log, read locally on the vault host: as a table,\n"
    "or with --output json the JSON lines themselves.\n"
    "\n"
    "  -n, --lines N      how many records (1..100000)\n"
    "  --data-dir DIR     the vault's data directory\n"
    "  --output FORMAT    table (default) or json\n";

static int audit_verify(int argc, char **argv)
{
    static const struct option opts[] = {VAULT_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
    vault_args va;
    vault_args_init(&va, "audit verify");
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        VAULT_OPTION_CASES(va, VERIFY_HELP)
        }
    }
    int rc = vault_args_positional(&va, argc, argv, 0, "");
    if (rc == EXIT_OK)
        rc = vault_args_connect(&va, 1);
    vault_reply r;
    if (rc == EXIT_OK)
        rc = vault_call(&va, "GET", "/ownkey/v1/audit/verify", NULL, &r);
    if (rc == EXIT_OK) {
        json_t *intact = json_object_get(r.doc, "intact");
        long long lines = (long long)json_integer_value(json_object_get(r.doc, "lines"));
        long long bad = (long long)json_integer_value(json_object_get(r.doc, "first_bad_line"));
        if (va.json)
            vault_print_raw(&r);
        else if (json_is_true(intact))
            printf("audit log intact: %lld lines verified\n", lines);
        if (!json_is_true(intact))
            rc = cli_report(ok_fail(OK_ERR_AUTH, "the audit log is not intact: line %lld of %lld fails verification",
                                    bad, lines));
        vault_reply_clear(&r);
    }
    vault_args_close(&va);
    return rc;
}

/* Finds where the last `want` lines of the file begin, reading backwards in chunks. */
static ok_err find_tail(int fd, off_t size, unsigned long want, off_t *start)
{
    char chunk[TAIL_CHUNK];
    off_t pos = size;
    unsigned long newlines = 0;
    /* A final newline ends the last line rather than starting an empty one. */
    off_t end = size;
    *start = 0;
    while (pos > 0) {
        size_t n = pos > TAIL_CHUNK ? TAIL_CHUNK : (size_t)pos;
        pos -= (off_t)n;
        ssize_t got = pread(fd, chunk, n, pos);
        if (got != (ssize_t)n)
            return ok_fail(OK_ERR_IO, "cannot read the audit log: %s", got < 0 ? strerror(errno) : "short read");
        for (size_t i = n; i-- > 0;) {
            if (chunk[i] != '\n' || pos + (off_t)i == end - 1)
                continue;
            if (++newlines == want) {
                *start = pos + (off_t)i + 1;
                return OK_OK;
            }
        }
    }
    return OK_OK;
}

static void add_record(cli_table *t, const char *line, size_t len)
{
    json_t *rec = json_loadb(line, len, 0, NULL);
    if (!rec) {
        cli_table_add(t, (const char *const[]){"(unparsable line)", "-", "-", "-", "-", "-"});
        return;
    }
    char status[16];
    snprintf(status, sizeof status, "%lld", (long long)json_integer_value(json_object_get(rec, "status")));
    const char *key = json_string_value(json_object_get(rec, "key"));
    const char *version = json_string_value(json_object_get(rec, "version"));
    char keyv[300];
    snprintf(keyv, sizeof keyv, "%s%s%s", key ? key : "-", version ? "/" : "", version ? version : "");
    cli_table_add(t, (const char *const[]){
        json_string_value(json_object_get(rec, "time")), json_string_value(json_object_get(rec, "identity")),
        json_string_value(json_object_get(rec, "operation")), keyv, status,
        json_string_value(json_object_get(rec, "error")),
    });
    json_decref(rec);
}

static int print_tail(const char *path, unsigned long lines, int json)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cli_report(ok_fail(errno == ENOENT ? OK_ERR_NOT_FOUND : OK_ERR_IO, "cannot open %s: %s", path, strerror(errno)));
    struct stat st;
    off_t start = 0;
    ok_err rc = fstat(fd, &st) == 0 ? OK_OK : ok_fail(OK_ERR_IO, "cannot stat %s: %s", path, strerror(errno));
    if (rc == OK_OK)
        rc = find_tail(fd, st.st_size, lines, &start);
    ok_buf text;
    ok_buf_init(&text, 0);
    if (rc == OK_OK)
        rc = ok_buf_reserve(&text, (size_t)(st.st_size - start));
    if (rc == OK_OK && pread(fd, text.data, (size_t)(st.st_size - start), start) != st.st_size - start)
        rc = ok_fail(OK_ERR_IO, "cannot read %s", path);
    close(fd);
    if (rc != OK_OK) {
        ok_buf_free(&text);
        return cli_report(rc);
    }
    text.len = (size_t)(st.st_size - start);
    static const char *const HEADERS[] = {"TIME", "IDENTITY", "OPERATION", "KEY", "STATUS", "ERROR"};
    cli_table t;
    cli_table_init(&t, 6, HEADERS);
    for (size_t i = 0; i < text.len;) {
        const char *line = (const char *)text.data + i;
        const char *nl = memchr(line, '\n', text.len - i);
        size_t n = nl ? (size_t)(nl - line) : text.len - i;
        if (json)
            printf("%.*s\n", (int)n, line);
        else if (n)
            add_record(&t, line, n);
        i += n + 1;
    }
    if (!json)
        cli_table_print(&t, stdout);
    cli_table_free(&t);
    ok_buf_free(&text);
    return EXIT_OK;
}

static int audit_tail(int argc, char **argv)
{
    static const struct option opts[] = {
        {"lines", required_argument, NULL, 'n'}, {"data-dir", required_argument, NULL, 'd'},
        {"output", required_argument, NULL, 'o'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    const char *dir = NULL;
    unsigned long lines = 20;
    int json = 0, c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":hn:", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (cli_parse_uint(optarg, 1, TAIL_MAX_LINES, &lines) != 0)
                return cli_usage_error("audit tail", "-n needs 1..%d, got \"%s\"", TAIL_MAX_LINES, optarg);
            break;
        case 'd': dir = optarg; break;
        case 'o':
            if (strcmp(optarg, "json") && strcmp(optarg, "table"))
                return cli_usage_error("audit tail", "--output must be table or json");
            json = !strcmp(optarg, "json");
            break;
        case 'h': fputs(TAIL_HELP, stdout); return EXIT_OK;
        case ':': return cli_usage_error("audit tail", "option %s needs a value", argv[optind - 1]);
        default: return cli_usage_error("audit tail", "unknown option %s", argv[optind - 1]);
        }
    }
    if (optind != argc)
        return cli_usage_error("audit tail", "unexpected argument \"%s\"", argv[optind]);
    if (!dir)
        return cli_usage_error("audit tail", "--data-dir DIR is required (the log is read locally)");
    size_t n = strlen(dir) + sizeof "/audit.log";
    char *path = malloc(n);
    if (!path)
        return cli_report(ok_fail(OK_ERR_NOMEM, "out of memory"));
    snprintf(path, n, "%s/audit.log", dir);
    int rc = print_tail(path, lines, json);
    free(path);
    return rc;
}

int cmd_audit(int argc, char **argv)
{
    static const cli_subcommand subs[] = {{"verify", audit_verify}, {"tail", audit_tail}, {NULL, NULL}};
    return cli_dispatch("audit", USAGE, subs, argc, argv);
}
