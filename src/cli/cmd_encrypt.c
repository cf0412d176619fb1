/* ownkey encrypt: encrypts a file or stream into an envelope for one or more recipient keys (any-of) or
 * for layered keys that are all needed (--all-of), with an optional encryption context. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/keys.h"

static const char HELP[] =
    "usage: ownkey encrypt --to KEYREF [--to KEYREF ...] [--all-of] [--context K=V ...]\n"
    "                      [-i IN] [-o OUT] [--threads N] [--frame-size BYTES] [--quiet]\n"
    "\n"
    "Encrypts IN (default stdin) to OUT (default stdout). With -o, OUT appears only when complete.\n"
    "\n"
    "  --to KEYREF        a recipient key: file:KEY.jwk (an AES-256 key, or an RSA public or private key)\n"
    "                     or https://HOST[:PORT]/keys/NAME[/VERSION], a vault key (RSA or oct; the token\n"
    "                     and CA come from OWNKEY_TOKEN and OWNKEY_CACERT)\n"
    "                     Repeat for several recipients: any one of them can decrypt (any-of).\n"
    "  --all-of           every --to key is needed to decrypt (layers, e.g. service + customer key)\n"
    "  --context K=V      an encryption context entry, authenticated and shown by inspect (repeatable)\n"
    "  -i, --input IN     input file (default stdin)\n"
    "  -o, --output OUT   output file (default stdout)\n"
    "  --threads N        threads to use (default: all cores)\n"
    "  --frame-size B     plaintext bytes per frame (default 65536; 64..4194304)\n"
    "  -q, --quiet        no progress bar\n";

typedef struct {
    ok_env_context_entry items[OK_ENV_MAX_CONTEXT];
    size_t count;
} context_args;

static int add_context(context_args *ctx, char *arg)
{
    char *eq = strchr(arg, '=');
    if (!eq || eq == arg)
        return cli_usage_error("encrypt", "--context needs KEY=VALUE, got \"%s\"", arg);
    if (ctx->count >= OK_ENV_MAX_CONTEXT)
        return cli_usage_error("encrypt", "at most %u --context entries", OK_ENV_MAX_CONTEXT);
    *eq = '\0';
    for (size_t i = 0; i < ctx->count; i++)
        if (!strcmp(ctx->items[i].key, arg))
            return cli_usage_error("encrypt", "--context key \"%s\" given twice", arg);
    ctx->items[ctx->count].key = arg;
    ctx->items[ctx->count].value = eq + 1;
    ctx->count++;
    return EXIT_OK;
}

int cmd_encrypt(int argc, char **argv)
{
    static const struct option opts[] = {
        {"to", required_argument, NULL, 't'}, {"all-of", no_argument, NULL, 'a'},
        {"context", required_argument, NULL, 'c'}, {"input", required_argument, NULL, 'i'},
        {"output", required_argument, NULL, 'o'}, {"threads", required_argument, NULL, 'n'},
        {"frame-size", required_argument, NULL, 'f'}, {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    const char *input = NULL, *output = NULL;
    unsigned long threads = 0, frame_size = 0;
    int all_of = 0, quiet = 0, c, rc_exit = EXIT_OK;
    context_args ctx = {0};
    cli_keys keys = {0};
    ok_err rc = OK_OK;
    while ((c = getopt_long(argc, argv, "i:o:qh", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            if ((rc = cli_keys_add(&keys, optarg)) != OK_OK) {
                rc_exit = cli_report(rc);
                goto done;
            }
            break;
        case 'a': all_of = 1; break;
        case 'c':
            if ((rc_exit = add_context(&ctx, optarg)) != EXIT_OK)
                goto done;
            break;
        case 'i': input = optarg; break;
        case 'o': output = optarg; break;
        case 'n':
            if (cli_parse_uint(optarg, 1, 256, &threads) != 0) {
                rc_exit = cli_usage_error("encrypt", "--threads needs 1..256, got \"%s\"", optarg);
                goto done;
            }
            break;
        case 'f':
            if (cli_parse_uint(optarg, OK_ENV_MIN_FRAME, OK_ENV_MAX_FRAME, &frame_size) != 0) {
                rc_exit = cli_usage_error("encrypt", "--frame-size needs %u..%u", OK_ENV_MIN_FRAME, OK_ENV_MAX_FRAME);
                goto done;
            }
            break;
        case 'q': quiet = 1; break;
        case 'h': fputs(HELP, stdout); goto done;
        default: rc_exit = cli_usage_error("encrypt", "bad option"); goto done;
        }
    }
    if (optind != argc) {
        rc_exit = cli_usage_error("encrypt", "unexpected argument \"%s\"", argv[optind]);
        goto done;
    }
    if (keys.count == 0) {
        rc_exit = cli_usage_error("encrypt", "at least one --to KEYREF is required");
        goto done;
    }

    cli_file in, out;
    if ((rc = cli_input_open(&in, input)) != OK_OK) {
        rc_exit = cli_report(rc);
        goto done;
    }
    if ((rc = cli_output_open(&out, output, 0644)) == OK_OK) {
        cli_progress progress;
        cli_progress_init(&progress, "encrypting", in.size, quiet);
        ok_env_encrypt_params p = {.recipients = keys.items, .recipient_count = keys.count,
                                   .mode = all_of ? OK_ENV_ALL_OF : OK_ENV_ANY_OF, .context = ctx.items,
                                   .context_count = ctx.count, .frame_size = (uint32_t)frame_size};
        ok_stream_options opt = {.threads = (unsigned)threads, .progress = cli_progress_update,
                                 .progress_ctx = &progress};
        rc = ok_env_encrypt_stream(&p, ok_fd_reader(&in.io), ok_fd_writer(&out.io), &opt);
        if (rc == OK_OK)
            rc = cli_output_commit(&out);
        cli_progress_finish(&progress, in.io.bytes);
    }
    if (rc != OK_OK)
        rc_exit = cli_report(rc);
    cli_file_close(&out);
    cli_file_close(&in);
done:
    cli_keys_free(&keys);
    return rc_exit;
}
