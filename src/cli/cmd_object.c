/* ownkey put, get, ls, rm, head: a data service tenant's objects (/data/v1/tenants/T/objects/...). Bodies
 * stream in constant memory through ok_vault_client_transfer (its 60 s limit is on a stall, not on the
 * whole transfer): put sends a file with its size as Content-Length (stdin or a pipe chunked), get writes
 * to a temporary file beside the target that is renamed into place only once the whole object arrived
 * (as `ownkey decrypt -o` does). Object names are percent-encoded whole, '/' included. Scripts rely on
 * `put TENANT OBJECT -i FILE` and `get TENANT OBJECT -o FILE`. Tenants are in cmd_tenant.c. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/vault_cli.h"

#define MAX_META 16
#define MAX_META_VALUE 1024
#define MAX_CONTENT_TYPE 255
#define MAX_PUT_ANSWER (64u * 1024u)
#define DEFAULT_PAGE 1000

static const char PUT_HELP[] =
    "usage: ownkey put TENANT OBJECT [-i FILE] [--content-type TYPE] [--meta K=V ...] [-q] [--output json]\n"
    "\n"
    "Stores FILE (default stdin; '-' too) as OBJECT, replacing any previous version once the whole body\n"
    "arrived. A file is sent with its length; stdin from a pipe is sent chunked. Object names may contain\n"
    "'/' and any printable character. Prints the stored object (name, size, etag).\n"
    "\n"
    "  -i, --input FILE       the bytes to store (default stdin, never a terminal)\n"
    "  --content-type TYPE    stored and returned by get (default application/octet-stream)\n"
    "  --meta K=V             user metadata, K of [0-9a-z-] (repeatable, at most 16)\n"
    "  -q, --quiet            no progress bar\n" VAULT_COMMON_HELP;
static const char GET_HELP[] =
    "usage: ownkey get TENANT OBJECT [-o FILE] [--range A-B] [-q]\n"
    "\n"
    "Writes OBJECT (or a byte range of it) to FILE, mode 0600: through a temporary file beside it, renamed\n"
    "into place only when every byte arrived, so a failed get leaves nothing. '-' or no -o: stdout (never\n"
    "a terminal).\n"
    "\n"
    "  -o FILE            where to write (default stdout)\n"
    "  --range A-B        bytes A to B inclusive (from 0); A- to the end; -N the last N bytes\n"
    "  -q, --quiet        no progress bar\n" VAULT_COMMON_HELP;
static const char LS_HELP[] =
    "usage: ownkey ls TENANT [--prefix P] [--page-size N] [--output json]\n"
    "\n"
    "Lists the objects (name, size, modified, content type), every page of them. --output json prints\n"
    "{\"objects\":[...]} with the API's object entries of every page.\n"
    "\n"
    "  --prefix P         only names that start with P\n"
    "  --page-size N      objects per request, 1..1000 (default 1000)\n" VAULT_COMMON_HELP;
static const char RM_HELP[] = "usage: ownkey rm TENANT OBJECT\n\nDeletes an object.\n\n" VAULT_COMMON_HELP;
static const char HEAD_HELP[] =
    "usage: ownkey head TENANT OBJECT [--output json]\n"
    "\n"
    "Shows an object's size, content type, etag, modification time and metadata without reading it.\n"
    "--output json prints {\"name\",\"size\",\"content_type\",\"etag\",\"modified\",\"meta\":{...}}.\n"
    "\n" VAULT_COMMON_HELP;

enum { OOPT_CONTENT_TYPE = 3000, OOPT_META, OOPT_RANGE, OOPT_PREFIX, OOPT_PAGE };

/* TENANT OBJECT (object = 0: TENANT only), checked. */
static int object_positional(vault_args *va, int argc, char **argv, int object)
{
    int rc = vault_args_positional(va, argc, argv, object ? 2 : 1, argc - optind >= 1 ? "OBJECT" : "TENANT");
    if (rc == EXIT_OK)
        rc = data_check_tenant(va, argv[optind]);
    if (rc == EXIT_OK && object)
        rc = data_check_object(va, argv[optind + 1]);
    return rc;
}

/* A failed transfer: the error, or a non-2xx answer the transport did not turn into one. */
static int transfer_result(ok_err rc, const ok_vault_response *resp)
{
    if (rc == OK_OK && (resp->status < 200 || resp->status >= 300))
        rc = ok_vault_error_from_response(resp->status, resp->body, resp->body_len, NULL, 0);
    return rc == OK_OK ? EXIT_OK : data_report(rc, resp);
}

static void free_headers(char **h, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(h[i]);
}

static char *header_line(const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value) + 3;
    char *line = malloc(n);
    if (line)
        snprintf(line, n, "%s: %s", name, value);
    return line;
}

static int printable(const char *s, size_t max)
{
    size_t n = 0;
    for (; s[n]; n++)
        if ((unsigned char)s[n] < 0x20 || (unsigned char)s[n] > 0x7e)
            return 0;
    return n <= max;
}

/* "k=v" -> "x-ownkey-meta-k: v" (k lowercased; [0-9a-z-]{1,64}; v printable ASCII). */
static int meta_header(vault_args *va, const char *kv, char **out)
{
    const char *eq = strchr(kv, '=');
    size_t klen = eq ? (size_t)(eq - kv) : 0;
    if (!eq || klen == 0 || klen > 64)
        return cli_usage_error(va->command, "--meta needs K=V with a key of 1 to 64 characters, got \"%s\"", kv);
    char key[65];
    for (size_t i = 0; i < klen; i++) {
        key[i] = (char)tolower((unsigned char)kv[i]);
        if (!isdigit((unsigned char)key[i]) && !(key[i] >= 'a' && key[i] <= 'z') && key[i] != '-')
            return cli_usage_error(va->command, "--meta keys are letters, digits and '-', got \"%.*s\"", (int)klen, kv);
    }
    key[klen] = '\0';
    if (!printable(eq + 1, MAX_META_VALUE))
        return cli_usage_error(va->command, "--meta values are printable ASCII, at most %d bytes", MAX_META_VALUE);
    char name[sizeof "x-ownkey-meta-" + 64];
    snprintf(name, sizeof name, "x-ownkey-meta-%s", key);
    *out = header_line(name, eq + 1);
    return *out ? EXIT_OK : cli_report(ok_fail(OK_ERR_NOMEM, "out of memory"));
}

/* ---- put ---------------------------------------------------------------------------------------------- */

typedef struct {
    int fd;
    const char *what;
    uint64_t sent, size; /* size: UINT64_MAX when unknown */
    cli_progress *progress;
} upload_source;

static ok_err upload_read(void *ctx, uint8_t *buf, size_t len, size_t *got)
{
    upload_source *s = ctx;
    *got = 0;
    if (s->size != UINT64_MAX) {
        if (s->sent >= s->size)
            return OK_OK;
        if (len > s->size - s->sent)
            len = (size_t)(s->size - s->sent);
    }
    ssize_t n;
    do
        n = read(s->fd, buf, len);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return ok_fail(OK_ERR_IO, "cannot read %s: %s", s->what, strerror(errno));
    if (n == 0 && s->size != UINT64_MAX)
        return ok_fail(OK_ERR_TRUNCATED, "%s became shorter while it was sent", s->what);
    *got = (size_t)n;
    s->sent += (uint64_t)n;
    cli_progress_update(s->progress, s->sent);
    return OK_OK;
}

static ok_err buffer_write(void *ctx, const uint8_t *buf, size_t len)
{
    if (ok_buf_put(ctx, buf, len) != OK_OK)
        return ok_fail(OK_ERR_LIMIT, "the answer is larger than %u bytes", MAX_PUT_ANSWER);
    return OK_OK;
}

static void print_object(json_t *o)
{
    char buf[1100];
    static const char *const fields[][2] = {{"name", "name"}, {"size", "size"}, {"etag", "etag"},
                                            {"content type", "content_type"}};
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        data_format_value(json_object_get(o, fields[i][1]), buf, sizeof buf);
        vault_print_field(fields[i][0], buf);
    }
}

static int do_put(vault_args *va, const char *path, const char *input, char **headers, size_t nheaders, int quiet)
{
    if ((!input || !strcmp(input, "-")) && isatty(STDIN_FILENO))
        return cli_report(ok_fail(OK_ERR_INVALID_ARG, "no input: give -i FILE or pipe the input in"));
    cli_file in;
    ok_err err = cli_input_open(&in, input);
    if (err != OK_OK)
        return cli_report(err);
    struct stat st;
    int regular = fstat(in.io.fd, &st) == 0 && S_ISREG(st.st_mode);
    upload_source src = {.fd = in.io.fd, .what = input && strcmp(input, "-") ? input : "stdin",
                         .size = regular ? (uint64_t)st.st_size : UINT64_MAX};
    cli_progress progress;
    cli_progress_init(&progress, "uploading", regular ? src.size : 0, quiet);
    src.progress = &progress;
    ok_vault_upload up = {.read = upload_read, .ctx = &src, .size = src.size};
    ok_buf answer;
    ok_buf_init(&answer, MAX_PUT_ANSWER);
    ok_vault_download down = {.write = buffer_write, .ctx = &answer};
    ok_vault_response resp;
    memset(&resp, 0, sizeof resp);
    int rc = vault_args_connect(va, 1);
    if (rc == EXIT_OK) {
        err = ok_vault_client_transfer(va->client, "PUT", path, (const char *const *)headers, nheaders, &up, &down,
                                       &resp);
        cli_progress_finish(&progress, src.sent);
        rc = transfer_result(err, &resp);
    }
    if (rc == EXIT_OK && va->json && answer.len) {
        fwrite(answer.data, 1, answer.len, stdout);
        if (answer.data[answer.len - 1] != '\n')
            putchar('\n');
    } else if (rc == EXIT_OK && answer.len) {
        json_t *doc = json_loadb((const char *)answer.data, answer.len, 0, NULL);
        if (json_is_object(doc))
            print_object(doc);
        json_decref(doc);
    }
    ok_vault_response_clear(&resp);
    ok_buf_free(&answer);
    cli_file_close(&in);
    return rc;
}

int cmd_put(int argc, char **argv)
{
    static const struct option opts[] = {
        {"input", required_argument, NULL, 'i'}, {"content-type", required_argument, NULL, OOPT_CONTENT_TYPE},
        {"meta", required_argument, NULL, OOPT_META}, {"quiet", no_argument, NULL, 'q'}, VAULT_COMMON_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    vault_args va;
    vault_args_init(&va, "put");
    char *headers[MAX_META + 1] = {NULL};
    size_t nmeta = 0;
    const char *input = NULL, *type = "application/octet-stream";
    int quiet = 0, c, rc = EXIT_OK;
    while (rc == EXIT_OK && (c = getopt_long(argc, argv, ":hi:q", opts, NULL)) != -1) {
        switch (c) {
        case 'i': input = optarg; break;
        case 'q': quiet = 1; break;
        case OOPT_CONTENT_TYPE: type = optarg; break;
        case OOPT_META:
            if (nmeta == MAX_META)
                rc = cli_usage_error(va.command, "at most %d --meta entries", MAX_META);
            else
                rc = meta_header(&va, optarg, &headers[1 + nmeta++]);
            break;
        case 'h': fputs(PUT_HELP, stdout); free_headers(headers, MAX_META + 1); return EXIT_OK;
        default: rc = vault_args_option(&va, c, optarg, argv[optind - 1]); break;
        }
    }
    if (rc == EXIT_OK && (!*type || !printable(type, MAX_CONTENT_TYPE)))
        rc = cli_usage_error(va.command, "--content-type needs printable ASCII, at most %d bytes", MAX_CONTENT_TYPE);
    if (rc == EXIT_OK)
        rc = object_positional(&va, argc, argv, 1);
    if (rc == EXIT_OK && !(headers[0] = header_line("Content-Type", type)))
        rc = cli_report(ok_fail(OK_ERR_NOMEM, "out of memory"));
    char *path = rc == EXIT_OK ? data_object_path(argv[optind], argv[optind + 1]) : NULL;
    if (rc == EXIT_OK)
        rc = path ? do_put(&va, path, input, headers, 1 + nmeta, quiet) : EXIT_FAILURE_OTHER;
    free(path);
    free_headers(headers, MAX_META + 1);
    vault_args_close(&va);
    return rc;
}

/* ---- get ---------------------------------------------------------------------------------------------- */

typedef struct {
    ok_fd_io *io;
    const char *what;
    uint64_t bytes;
    cli_progress *progress;
} download_sink;

static ok_err download_write(void *ctx, const uint8_t *buf, size_t len)
{
    download_sink *d = ctx;
    while (len) {
        ssize_t n = write(d->io->fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return ok_fail(OK_ERR_IO, "cannot write %s: %s", d->what, strerror(errno));
        buf += n;
        len -= (size_t)n;
        d->bytes += (uint64_t)n;
    }
    cli_progress_update(d->progress, d->bytes);
    return OK_OK;
}

/* "A-B", "A-" or "-N" (bytes, inclusive); the Range header value and the length when known (else 0). */
static int parse_range(vault_args *va, const char *s, char *header, size_t len, uint64_t *count)
{
    unsigned long long a = 0, b = 0;
    size_t da = strspn(s, "0123456789");
    const char *dash = s + da;
    size_t db = *dash == '-' ? strspn(dash + 1, "0123456789") : 0;
    int ok = *dash == '-' && dash[1 + db] == '\0' && (da || db) && da <= 19 && db <= 19;
    if (ok) {
        a = da ? strtoull(s, NULL, 10) : 0;
        b = db ? strtoull(dash + 1, NULL, 10) : 0;
        ok = !(da && db && a > b) && !(!da && b == 0);
    }
    if (!ok)
        return cli_usage_error(va->command, "--range needs A-B (A <= B), A- or -N (bytes, from 0), got \"%s\"", s);
    if (da && db)
        snprintf(header, len, "Range: bytes=%llu-%llu", a, b);
    else if (da)
        snprintf(header, len, "Range: bytes=%llu-", a);
    else
        snprintf(header, len, "Range: bytes=-%llu", b);
    *count = da && db ? b - a + 1 : !da ? b : 0;
    return EXIT_OK;
}

static int do_get(vault_args *va, const char *path, const char *output, const char *range, uint64_t total, int quiet)
{
    cli_file out;
    ok_err err = cli_output_open(&out, output, 0600);
    if (err != OK_OK) {
        cli_file_close(&out);
        return cli_report(err);
    }
    cli_progress progress;
    cli_progress_init(&progress, "downloading", total, quiet);
    download_sink sink = {.io = &out.io, .what = output && strcmp(output, "-") ? output : "stdout",
                          .progress = &progress};
    ok_vault_download down = {.write = download_write, .ctx = &sink};
    const char *headers[1] = {range};
    ok_vault_response resp;
    memset(&resp, 0, sizeof resp);
    err = ok_vault_client_transfer(va->client, "GET", path, headers, range ? 1 : 0, NULL, &down, &resp);
    cli_progress_finish(&progress, sink.bytes);
    int rc = transfer_result(err, &resp);
    if (rc == EXIT_OK && range && resp.status != 206)
        rc = cli_report(ok_fail(OK_ERR_IO, "the server answered HTTP %ld to a range request, not 206", resp.status));
    if (rc == EXIT_OK && (err = cli_output_commit(&out)) != OK_OK)
        rc = cli_report(err);
    ok_vault_response_clear(&resp);
    cli_file_close(&out);
    return rc;
}

/* The object's size from a HEAD (for the progress bar); 0 when unknown. */
static uint64_t object_size(vault_args *va, const char *path)
{
    ok_vault_response resp;
    memset(&resp, 0, sizeof resp);
    char value[32];
    uint64_t size = 0;
    if (ok_vault_client_transfer(va->client, "HEAD", path, NULL, 0, NULL, NULL, &resp) == OK_OK &&
        ok_vault_response_header(&resp, "Content-Length", value, sizeof value))
        size = strtoull(value, NULL, 10);
    ok_vault_response_clear(&resp);
    return size;
}

int cmd_get(int argc, char **argv)
{
    static const struct option opts[] = {
        {"range", required_argument, NULL, OOPT_RANGE}, {"quiet", no_argument, NULL, 'q'}, VAULT_COMMON_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    vault_args va;
    vault_args_init(&va, "get");
    const char *output = NULL, *range = NULL;
    int quiet = 0, c;
    while ((c = getopt_long(argc, argv, ":ho:q", opts, NULL)) != -1) {
        switch (c) {
        case 'o': output = optarg; break;
        case 'q': quiet = 1; break;
        case OOPT_RANGE: range = optarg; break;
        VAULT_OPTION_CASES(va, GET_HELP)
        }
    }
    char range_header[64];
    uint64_t total = 0;
    int rc = range ? parse_range(&va, range, range_header, sizeof range_header, &total) : EXIT_OK;
    if (rc == EXIT_OK)
        rc = object_positional(&va, argc, argv, 1);
    if (rc == EXIT_OK)
        rc = vault_check_output(output);
    char *path = rc == EXIT_OK ? data_object_path(argv[optind], argv[optind + 1]) : NULL;
    if (rc == EXIT_OK && !path)
        rc = EXIT_FAILURE_OTHER;
    if (rc == EXIT_OK)
        rc = vault_args_connect(&va, 1);
    if (rc == EXIT_OK && !range && !quiet && isatty(STDERR_FILENO))
        total = object_size(&va, path);
    if (rc == EXIT_OK)
        rc = do_get(&va, path, output, range ? range_header : NULL, total, quiet);
    free(path);
    vault_args_close(&va);
    return rc;
}

/* ---- ls ----------------------------------------------------------------------------------------------- */

/* Appends "&name=escaped(value)" to the path being built. */
static int add_query(char **path, const char *name, const char *value)
{
    char *esc = ok_vault_escape(value);
    size_t n = strlen(*path) + strlen(name) + (esc ? strlen(esc) : 0) + 3;
    char *p = esc ? malloc(n) : NULL;
    if (p)
        snprintf(p, n, "%s&%s=%s", *path, name, esc);
    free(esc);
    free(*path);
    *path = p;
    return p ? 0 : -1;
}

/* Fetches every page into all (a JSON array of the API's object entries). */
static int list_all(vault_args *va, const char *tenant, const char *prefix, unsigned long page, json_t *all)
{
    char *marker = NULL;
    int rc = EXIT_OK;
    for (;;) {
        char size[48];
        snprintf(size, sizeof size, "/objects?maxresults=%lu", page);
        char *path = data_tenant_path(tenant, size);
        if (path && prefix && add_query(&path, "prefix", prefix))
            path = NULL;
        if (path && marker && add_query(&path, "marker", marker))
            path = NULL;
        if (!path) {
            rc = cli_report(ok_fail(OK_ERR_NOMEM, "out of memory"));
            break;
        }
        vault_reply r;
        rc = vault_call(va, "GET", path, NULL, &r);
        free(path);
        if (rc != EXIT_OK)
            break;
        json_array_extend(all, json_object_get(r.doc, "objects"));
        const char *next = json_string_value(json_object_get(r.doc, "next_marker"));
        int more = next && *next && !(marker && !strcmp(marker, next));
        free(marker);
        marker = more ? strdup(next) : NULL;
        vault_reply_clear(&r);
        if (!more)
            break;
        if (!marker) {
            rc = cli_report(ok_fail(OK_ERR_NOMEM, "out of memory"));
            break;
        }
    }
    free(marker);
    return rc;
}

static void print_listing(json_t *all)
{
    static const char *const HEADERS[] = {"NAME", "SIZE", "MODIFIED", "CONTENT TYPE"};
    cli_table t;
    cli_table_init(&t, 4, HEADERS);
    size_t i;
    json_t *o;
    json_array_foreach(all, i, o) {
        char name[1100], size[32], modified[64], type[300];
        json_t *m = json_object_get(o, "modified");
        data_format_value(json_object_get(o, "name"), name, sizeof name);
        data_format_value(json_object_get(o, "size"), size, sizeof size);
        if (!m)
            m = json_object_get(o, "last_modified");
        if (json_is_integer(m))
            vault_format_time(m, modified, sizeof modified);
        else
            data_format_value(m, modified, sizeof modified);
        data_format_value(json_object_get(o, "content_type"), type, sizeof type);
        cli_table_add(&t, (const char *const[]){name, size, modified, type});
    }
    cli_table_print(&t, stdout);
    cli_table_free(&t);
}

int cmd_ls(int argc, char **argv)
{
    static const struct option opts[] = {
        {"prefix", required_argument, NULL, OOPT_PREFIX}, {"page-size", required_argument, NULL, OOPT_PAGE},
        VAULT_COMMON_OPTIONS, {NULL, 0, NULL, 0},
    };
    vault_args va;
    vault_args_init(&va, "ls");
    const char *prefix = NULL;
    unsigned long page = DEFAULT_PAGE;
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case OOPT_PREFIX: prefix = optarg; break;
        case OOPT_PAGE:
            if (cli_parse_uint(optarg, 1, 1000, &page) != 0)
                return cli_usage_error(va.command, "--page-size needs 1..1000, got \"%s\"", optarg);
            break;
        VAULT_OPTION_CASES(va, LS_HELP)
        }
    }
    int rc = object_positional(&va, argc, argv, 0);
    json_t *all = rc == EXIT_OK ? json_array() : NULL;
    if (rc == EXIT_OK)
        rc = all ? vault_args_connect(&va, 1) : cli_report(ok_fail(OK_ERR_NOMEM, "out of memory"));
    if (rc == EXIT_OK)
        rc = list_all(&va, argv[optind], prefix, page, all);
    if (rc == EXIT_OK && va.json) {
        json_t *doc = json_pack("{s:O}", "objects", all);
        if (!doc || json_dumpf(doc, stdout, JSON_COMPACT) != 0)
            rc = cli_report(ok_fail(OK_ERR_NOMEM, "out of memory"));
        else
            putchar('\n');
        json_decref(doc);
    } else if (rc == EXIT_OK) {
        print_listing(all);
    }
    json_decref(all);
    vault_args_close(&va);
    return rc;
}

/* ---- rm ----------------------------------------------------------------------------------------------- */

int cmd_rm(int argc, char **argv)
{
    static const struct option opts[] = {VAULT_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
    vault_args va;
    vault_args_init(&va, "rm");
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        VAULT_OPTION_CASES(va, RM_HELP)
        }
    }
    int rc = object_positional(&va, argc, argv, 1);
    char *path = rc == EXIT_OK ? data_object_path(argv[optind], argv[optind + 1]) : NULL;
    if (rc == EXIT_OK)
        rc = path ? vault_args_connect(&va, 1) : EXIT_FAILURE_OTHER;
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

/* ---- head --------------------------------------------------------------------------------------------- */

/* The x-ownkey-meta-* headers of a response as a JSON object (names without the prefix). */
static json_t *meta_from_headers(const ok_vault_response *resp)
{
    static const char PREFIX[] = "x-ownkey-meta-";
    json_t *meta = json_object();
    const char *p = resp->headers;
    while (meta && p && *p) {
        size_t n = strcspn(p, "\r\n");
        const char *colon = memchr(p, ':', n);
        if (colon && (size_t)(colon - p) > sizeof PREFIX - 1 && !strncasecmp(p, PREFIX, sizeof PREFIX - 1)) {
            char key[80], value[MAX_META_VALUE + 1];
            size_t k = (size_t)(colon - p) - (sizeof PREFIX - 1);
            const char *v = colon + 1, *end = p + n;
            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
                end--;
            if (k < sizeof key && (size_t)(end - v) < sizeof value) {
                for (size_t i = 0; i < k; i++)
                    key[i] = (char)tolower((unsigned char)p[sizeof PREFIX - 1 + i]);
                key[k] = '\0';
                memcpy(value, v, (size_t)(end - v));
                value[end - v] = '\0';
                json_object_set_new(meta, key, json_string(value));
            }
        }
        p += n;
        p += strspn(p, "\r\n");
    }
    return meta;
}

static json_t *head_record(const char *name, const ok_vault_response *resp)
{
    char len[32], type[MAX_CONTENT_TYPE + 1], etag[128], modified[64];
    json_t *size = ok_vault_response_header(resp, "Content-Length", len, sizeof len)
                       ? json_integer((json_int_t)strtoll(len, NULL, 10)) : json_null();
    const char *t = ok_vault_response_header(resp, "Content-Type", type, sizeof type);
    const char *e = ok_vault_response_header(resp, "ETag", etag, sizeof etag);
    const char *m = ok_vault_response_header(resp, "Last-Modified", modified, sizeof modified);
    if (e && e[0] == '"' && strlen(e) >= 2) { /* the etag without its quotes */
        memmove(etag, etag + 1, strlen(etag));
        etag[strcspn(etag, "\"")] = '\0';
    }
    return json_pack("{s:s, s:o, s:s?, s:s?, s:s?, s:o}", "name", name, "size", size, "content_type", t, "etag", e,
                     "modified", m, "meta", meta_from_headers(resp));
}

int cmd_head(int argc, char **argv)
{
    static const struct option opts[] = {VAULT_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
    vault_args va;
    vault_args_init(&va, "head");
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        VAULT_OPTION_CASES(va, HEAD_HELP)
        }
    }
    int rc = object_positional(&va, argc, argv, 1);
    char *path = rc == EXIT_OK ? data_object_path(argv[optind], argv[optind + 1]) : NULL;
    if (rc == EXIT_OK)
        rc = path ? vault_args_connect(&va, 1) : EXIT_FAILURE_OTHER;
    ok_vault_response resp;
    memset(&resp, 0, sizeof resp);
    if (rc == EXIT_OK)
        rc = transfer_result(ok_vault_client_transfer(va.client, "HEAD", path, NULL, 0, NULL, NULL, &resp), &resp);
    json_t *rec = rc == EXIT_OK ? head_record(argv[optind + 1], &resp) : NULL;
    if (rc == EXIT_OK && !rec)
        rc = cli_report(ok_fail(OK_ERR_NOMEM, "out of memory"));
    if (rc == EXIT_OK && va.json) {
        json_dumpf(rec, stdout, JSON_COMPACT);
        putchar('\n');
    } else if (rc == EXIT_OK) {
        char buf[MAX_META_VALUE + 80];
        static const char *const fields[][2] = {{"name", "name"}, {"size", "size"}, {"content type", "content_type"},
                                                {"etag", "etag"}, {"modified", "modified"}};
        for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
            data_format_value(json_object_get(rec, fields[i][1]), buf, sizeof buf);
            vault_print_field(fields[i][0], buf);
        }
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(rec, "meta"), k, v) {
            char label[80];
            snprintf(label, sizeof label, "meta %s", k);
            vault_print_field(label, json_string_value(v));
        }
    }
    json_decref(rec);
    ok_vault_response_clear(&resp);
    free(path);
    vault_args_close(&va);
    return rc;
}
