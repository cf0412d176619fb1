/* ownkey keygen: writes a new AES-256 or RSA key as a JWK file with mode 0600 (and optionally the RSA
 * public half to a second file, for recipients who only encrypt). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "ownkey/crypto.h"

static const char HELP[] =
    "usage: ownkey keygen --type oct|rsa [--bits N] -o FILE [--public-out FILE]\n"
    "\n"
    "Generates a key and writes it as a JWK file readable only by its owner (mode 0600).\n"
    "\n"
    "  --type oct        an AES-256 key; data keys are wrapped with A256KW\n"
    "  --type rsa        an RSA key pair; data keys are wrapped with RSA-OAEP-256\n"
    "  --bits N          oct: 256 (default); rsa: 2048, 3072 (default) or 4096\n"
    "  -o, --output FILE where to write the key (refuses to overwrite an existing file)\n"
    "  --public-out FILE rsa: also write the public key, for those who only encrypt\n";

static ok_err write_jwk(const ok_jwk *jwk, int include_private, const char *path, int mode)
{
    char *text = NULL;
    OK_GUARD(ok_jwk_serialize(jwk, include_private, &text));
    size_t len = strlen(text);
    cli_file out;
    ok_err rc = cli_output_open(&out, path, mode);
    if (rc == OK_OK)
        rc = ok_fd_writer(&out.io).write(&out.io, (const uint8_t *)text, len);
    if (rc == OK_OK)
        rc = ok_fd_writer(&out.io).write(&out.io, (const uint8_t *)"\n", 1);
    if (rc == OK_OK)
        rc = cli_output_commit(&out);
    cli_file_close(&out);
    ok_zeroize(text, len);
    free(text);
    return rc;
}

static ok_err make_key(int rsa, unsigned bits, ok_jwk *jwk)
{
    if (!rsa) {
        uint8_t kid_bytes[16];
        jwk->kty = OK_JWK_OCT;
        jwk->k_len = OK_AES256_KEY_LEN;
        jwk->k = ok_secure_alloc(jwk->k_len);
        jwk->alg = strdup("A256KW");
        if (!jwk->k || !jwk->alg)
            return ok_fail(OK_ERR_NOMEM, "out of memory");
        OK_GUARD(ok_random(jwk->k, jwk->k_len));
        OK_GUARD(ok_random(kid_bytes, sizeof kid_bytes));
        return ok_b64url_encode(kid_bytes, sizeof kid_bytes, &jwk->kid);
    }
    jwk->kty = OK_JWK_RSA;
    jwk->alg = strdup("RSA-OAEP-256");
    if (!jwk->alg)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    OK_GUARD(ok_pkey_generate_rsa(&jwk->pkey, bits));
    return ok_jwk_thumbprint(jwk->pkey, &jwk->kid);
}

int cmd_keygen(int argc, char **argv)
{
    static const struct option opts[] = {
        {"type", required_argument, NULL, 't'}, {"bits", required_argument, NULL, 'b'},
        {"output", required_argument, NULL, 'o'}, {"public-out", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    const char *type = NULL, *output = NULL, *public_out = NULL;
    unsigned long bits = 0;
    int c;
    while ((c = getopt_long(argc, argv, "t:b:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 't': type = optarg; break;
        case 'b':
            if (cli_parse_uint(optarg, 1, 65536, &bits) != 0)
                return cli_usage_error("keygen", "--bits needs a number, got \"%s\"", optarg);
            break;
        case 'o': output = optarg; break;
        case 'p': public_out = optarg; break;
        case 'h': fputs(HELP, stdout); return EXIT_OK;
        default: return cli_usage_error("keygen", "bad option");
        }
    }
    if (optind != argc)
        return cli_usage_error("keygen", "unexpected argument \"%s\"", argv[optind]);
    if (!type || (strcmp(type, "oct") && strcmp(type, "rsa")))
        return cli_usage_error("keygen", "--type must be oct or rsa");
    if (!output)
        return cli_usage_error("keygen", "-o FILE is required (keys are never printed)");
    int rsa = !strcmp(type, "rsa");
    if (!rsa && bits && bits != 256)
        return cli_usage_error("keygen", "oct keys are 256 bits");
    if (rsa && bits && bits != 2048 && bits != 3072 && bits != 4096)
        return cli_usage_error("keygen", "RSA keys are 2048, 3072 or 4096 bits");
    if (!rsa && public_out)
        return cli_usage_error("keygen", "--public-out is for rsa keys; an oct key has no public half");
    if (access(output, F_OK) == 0)
        return cli_usage_error("keygen", "%s exists; refusing to overwrite a key", output);

    ok_jwk jwk = {0};
    ok_err rc = make_key(rsa, bits ? (unsigned)bits : 3072, &jwk);
    if (rc == OK_OK)
        rc = write_jwk(&jwk, 1, output, 0600);
    if (rc == OK_OK && public_out)
        rc = write_jwk(&jwk, 0, public_out, 0644);
    if (rc == OK_OK)
        fprintf(stderr, "ownkey: wrote %s key %s (kid %s)\n", rsa ? "RSA" : "AES-256", output, jwk.kid);
    free(jwk.kid);
    free(jwk.alg);
    ok_secure_free(jwk.k, jwk.k_len);
    ok_pkey_free(jwk.pkey);
    return rc == OK_OK ? EXIT_OK : cli_report(rc);
}
