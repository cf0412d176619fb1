/* ownkey inspect: shows an envelope's header (format, recipients, encryption context) without any key.
 * Nothing shown is authenticated until the envelope is decrypted; the output says so. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"

static const char HELP[] =
    "usage: ownkey inspect [-i IN] [--output text|json]\n"
    "\n"
    "Prints the header of the envelope IN (default stdin): format version, algorithm suite, message id,\n"
    "frame size, recipient mode, encryption context and wrapped data keys. No key is needed, so nothing\n"
    "shown is authenticated: decrypt to verify.\n"
    "\n"
    "  -i, --input IN        envelope file (default stdin)\n"
    "  --output text|json    output format (default text)\n";

static const char *mode_name(ok_env_mode m)
{
    return m == OK_ENV_ALL_OF ? "all-of" : "any-of";
}

static void print_text(const ok_env_header *h, const char *mid)
{
    printf("format:       ownkey envelope v%u\n", h->version);
    printf("suite:        0x%04x (AES-256-GCM, HKDF-SHA256, key commitment)\n", h->suite);
    printf("message id:   %s\n", mid);
    printf("header:       %u bytes\n", h->header_len);
    printf("frame size:   %u bytes\n", h->frame_size);
    printf("recipients:   %s, %zu wrapped data key%s\n", mode_name(h->mode), h->edk_count, h->edk_count == 1 ? "" : "s");
    for (size_t i = 0; i < h->edk_count; i++) {
        const ok_edk *e = &h->edks[i];
        printf("  [%zu] provider=%s key=%s%s%s alg=%s wrapped=%zu bytes\n", i + 1, e->provider, e->key_id,
               e->key_version[0] ? " version=" : "", e->key_version, e->wrap_alg, e->ct_len);
    }
    printf("context:      %s\n", h->context_count ? "" : "(none)");
    for (size_t i = 0; i < h->context_count; i++)
        printf("  %s=%s\n", h->context[i].key, h->context[i].value);
    printf("(not authenticated until decrypted)\n");
}

static int print_json(const ok_env_header *h, const char *mid)
{
    json_t *root = json_object(), *edks = json_array(), *ctx = json_object();
    json_object_set_new(root, "version", json_integer(h->version));
    json_object_set_new(root, "suite", json_integer(h->suite));
    json_object_set_new(root, "message_id", json_string(mid));
    json_object_set_new(root, "header_len", json_integer(h->header_len));
    json_object_set_new(root, "frame_size", json_integer(h->frame_size));
    json_object_set_new(root, "mode", json_string(mode_name(h->mode)));
    for (size_t i = 0; i < h->edk_count; i++) {
        const ok_edk *e = &h->edks[i];
        json_array_append_new(edks, json_pack("{s:s, s:s, s:s, s:s, s:I}", "provider", e->provider, "key_id",
                                              e->key_id, "key_version", e->key_version, "wrap_alg", e->wrap_alg,
                                              "wrapped_len", (json_int_t)e->ct_len));
    }
    for (size_t i = 0; i < h->context_count; i++)
        json_object_set_new(ctx, h->context[i].key, json_string(h->context[i].value));
    json_object_set_new(root, "recipients", edks);
    json_object_set_new(root, "context", ctx);
    int rc = json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    putchar('\n');
    json_decref(root);
    return rc == 0 ? EXIT_OK : EXIT_IO;
}

int cmd_inspect(int argc, char **argv)
{
    static const struct option opts[] = {
        {"input", required_argument, NULL, 'i'}, {"output", required_argument, NULL, 'O'},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    const char *input = NULL, *format = "text";
    int c;
    while ((c = getopt_long(argc, argv, "i:h", opts, NULL)) != -1) {
        switch (c) {
        case 'i': input = optarg; break;
        case 'O': format = optarg; break;
        case 'h': fputs(HELP, stdout); return EXIT_OK;
        default: return cli_usage_error("inspect", "bad option");
        }
    }
    if (optind != argc)
        return cli_usage_error("inspect", "unexpected argument \"%s\"", argv[optind]);
    if (strcmp(format, "text") && strcmp(format, "json"))
        return cli_usage_error("inspect", "--output must be text or json");
    cli_file in;
    ok_env_header *h = NULL;
    ok_err rc = cli_input_open(&in, input);
    if (rc == OK_OK)
        rc = ok_env_read_header(ok_fd_reader(&in.io), &h);
    cli_file_close(&in);
    if (rc != OK_OK)
        return cli_report(rc);
    char *mid = NULL;
    int exit_code = EXIT_OK;
    if ((rc = ok_hex_encode(h->message_id, sizeof h->message_id, &mid)) != OK_OK)
        exit_code = cli_report(rc);
    else if (!strcmp(format, "json"))
        exit_code = print_json(h, mid);
    else
        print_text(h, mid);
    free(mid);
    ok_env_header_free(h);
    return exit_code;
}
