/* ownkey decrypt: opens an envelope with any of the given keys (all of them, for an all-of envelope) and
 * writes the verified plaintext. With -o the output appears only after the whole envelope verified. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/keys.h"

static const char HELP[] =
    "usage: ownkey decrypt --key KEYREF [--key KEYREF ...] [-i IN] [-o OUT] [--threads N] [--quiet]\n"
    "\n"
    "Decrypts the envelope IN (default stdin) to OUT (default stdout). Each key is tried against the\n"
    "envelope's recipients; an RSA private key file also serves its public half. With -o, OUT appears\n"
    "only when the whole envelope has been authenticated: never a partial plaintext. On stdout, only\n"
    "authenticated frames are written, but a later failure leaves what came before.\n"
    "\n"
    "  --key KEYREF       a key: file:KEY.jwk, https://HOST[:PORT]/keys/NAME (a vault key that unwraps\n"
    "                     with the version recorded in the envelope), pkcs11:… or kmip://… as for\n"
    "                     encrypt (repeatable)\n"
    "  -i, --input IN     input file (default stdin)\n"
    "  -o, --output OUT   output file (default stdout)\n"
    "  --threads N        threads to use (default: all cores)\n"
    "  -q, --quiet        no progress bar\n";

int cmd_decrypt(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'}, {"input", required_argument, NULL, 'i'},
        {"output", required_argument, NULL, 'o'}, {"threads", required_argument, NULL, 'n'},
        {"quiet", no_argument, NULL, 'q'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    const char *input = NULL, *output = NULL;
    unsigned long threads = 0;
    int quiet = 0, c, rc_exit = EXIT_OK;
    cli_keys keys = {0};
    ok_err rc = OK_OK;
    while ((c = getopt_long(argc, argv, "k:i:o:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'k':
            if ((rc = cli_keys_add(&keys, optarg)) != OK_OK) {
                rc_exit = cli_report(rc);
                goto done;
            }
            break;
        case 'i': input = optarg; break;
        case 'o': output = optarg; break;
        case 'n':
            if (cli_parse_uint(optarg, 1, 256, &threads) != 0) {
                rc_exit = cli_usage_error("decrypt", "--threads needs 1..256, got \"%s\"", optarg);
                goto done;
            }
            break;
        case 'q': quiet = 1; break;
        case 'h': fputs(HELP, stdout); goto done;
        default: rc_exit = cli_usage_error("decrypt", "bad option"); goto done;
        }
    }
    if (optind != argc) {
        rc_exit = cli_usage_error("decrypt", "unexpected argument \"%s\"", argv[optind]);
        goto done;
    }
    if (keys.count == 0) {
        rc_exit = cli_usage_error("decrypt", "at least one --key KEYREF is required");
        goto done;
    }

    cli_file in, out;
    if ((rc = cli_input_open(&in, input)) != OK_OK) {
        rc_exit = cli_report(rc);
        goto done;
    }
    if ((rc = cli_output_open(&out, output, 0600)) == OK_OK) {
        cli_progress progress;
        cli_progress_init(&progress, "decrypting", in.size, quiet);
        ok_stream_options opt = {.threads = (unsigned)threads, .progress = cli_progress_update,
                                 .progress_ctx = &progress};
        rc = ok_env_decrypt_stream(keys.items, keys.count, ok_fd_reader(&in.io), ok_fd_writer(&out.io), &opt);
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
