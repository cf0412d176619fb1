/* ownkey key wrap|unwrap|encrypt|decrypt|sign|verify: one cryptographic operation by a vault key on raw
 * bytes. Input is -i FILE or stdin, output -o FILE or stdout (raw bytes, never to a terminal), or the
 * API's JSON with --output json. AES-GCM ciphertexts are written as IV (12) || ciphertext || tag (16) and
 * read back the same way. sign and verify take a digest, or with --data compute SHA-256 of the input. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/vault_cli.h"
#include "ownkey/crypto.h"

#define MAX_VALUE (700u * 1024u)           /* base64 of it stays under the vault's 1 MiB body limit */
#define MAX_DATA (256u * 1024u * 1024u)    /* --data: hashed locally */
#define GCM_IV 12
#define GCM_TAG 16

typedef enum { OP_WRAP, OP_UNWRAP, OP_ENCRYPT, OP_DECRYPT, OP_SIGN, OP_VERIFY } op_kind;

typedef struct {
    const char *name;
    const char *path_op;
    op_kind kind;
    const char *help;
} op_info;

#define CRYPTO_HELP_TAIL                                                                                     \
    "  --version V        the key version (default: the current one; to unwrap or decrypt after a\n"        \
    "                     rotation, give the version that wrapped or encrypted, as the kid shows)\n"        \
    "  -i, --in FILE      input (default stdin)\n" VAULT_COMMON_HELP

static const op_info OPS[] = {
    {"wrap", "wrapkey", OP_WRAP,
     "usage: ownkey key wrap NAME --alg ALG [--version V] [-i KEY] [-o WRAPPED]\n\n"
     "Wraps a key (e.g. a data key) with a vault key. ALG: RSA-OAEP-256, RSA-OAEP, RSA1_5 (RSA keys);\n"
     "A256KW, A192KW, A128KW (oct keys).\n\n"
     "  -o, --out FILE     output (default stdout, never a terminal)\n" CRYPTO_HELP_TAIL},
    {"unwrap", "unwrapkey", OP_UNWRAP,
     "usage: ownkey key unwrap NAME --alg ALG [--version V] [-i WRAPPED] [-o KEY]\n\n"
     "Unwraps a key wrapped by 'ownkey key wrap'. The output is secret: -o writes it with mode 0600.\n\n"
     "  -o, --out FILE     output (default stdout, never a terminal)\n" CRYPTO_HELP_TAIL},
    {"encrypt", "encrypt", OP_ENCRYPT,
     "usage: ownkey key encrypt NAME --alg ALG [--version V] [-i PLAIN] [-o CIPHER]\n\n"
     "Encrypts a small input with a vault key (RSA-OAEP-256, RSA-OAEP, RSA1_5; A128GCM..A256GCM on oct\n"
     "keys, written as IV || ciphertext || tag). For files, use 'ownkey encrypt --to https://...'.\n\n"
     "  -o, --out FILE     output (default stdout, never a terminal)\n" CRYPTO_HELP_TAIL},
    {"decrypt", "decrypt", OP_DECRYPT,
     "usage: ownkey key decrypt NAME --alg ALG [--version V] [-i CIPHER] [-o PLAIN]\n\n"
     "Decrypts what 'ownkey key encrypt' wrote.\n\n"
     "  -o, --out FILE     output (default stdout, never a terminal)\n" CRYPTO_HELP_TAIL},
    {"sign", "sign", OP_SIGN,
     "usage: ownkey key sign NAME --alg ALG [--version V] [-i DIGEST | --data -i FILE] [-o SIG]\n\n"
     "Signs a digest (RS256/384/512, PS256/384/512 on RSA keys; ES256, ES384 on EC keys).\n\n"
     "  --data             the input is the message: sign its SHA-256 (for the *256 algorithms)\n"
     "  -o, --out FILE     output (default stdout, never a terminal)\n" CRYPTO_HELP_TAIL},
    {"verify", "verify", OP_VERIFY,
     "usage: ownkey key verify NAME --alg ALG [--version V] [-i DIGEST | --data -i FILE] --signature SIG\n\n"
     "Verifies a signature; exits 0 when it verifies and 6 when it does not.\n\n"
     "  --data             the input is the message: verify against its SHA-256\n"
     "  --signature FILE   the signature to check\n" CRYPTO_HELP_TAIL},
};

static int is_gcm(const char *alg)
{
    return strlen(alg) == 7 && alg[0] == 'A' && !strcmp(alg + 4, "GCM");
}

static int valid_alg(const char *alg)
{
    size_t n = strlen(alg);
    if (n == 0 || n > 32)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)alg[i]) && alg[i] != '-' && alg[i] != '_')
            return 0;
    return 1;
}

static void set_b64(json_t *body, const char *member, const uint8_t *p, size_t n)
{
    char *s = NULL;
    if (ok_b64url_encode(p, n, &s) == OK_OK)
        json_object_set_new(body, member, json_string(s));
    if (s) {
        ok_zeroize(s, strlen(s));
        free(s);
    }
}

/* Decodes a base64url member of the answer into a malloc'ed buffer; NULL when absent or malformed. */
static uint8_t *get_b64(json_t *doc, const char *member, size_t *len)
{
    json_t *v = json_object_get(doc, member);
    uint8_t *out = NULL;
    *len = 0;
    if (!json_is_string(v) || ok_vault_b64_decode(json_string_value(v), &out, len) != OK_OK)
        return NULL;
    return out;
}

/* The request body for the operation from the input bytes (digest already computed for sign/verify). */
static int build_body(const op_info *op, const char *alg, const ok_buf *in, const ok_buf *sig, json_t *body)
{
    json_object_set_new(body, "alg", json_string(alg));
    if (op->kind == OP_DECRYPT && is_gcm(alg)) {
        if (in->len < GCM_IV + GCM_TAG)
            return cli_report(ok_fail(OK_ERR_TRUNCATED, "an %s ciphertext is IV (12) || ciphertext || tag (16)", alg));
        set_b64(body, "iv", in->data, GCM_IV);
        set_b64(body, "value", in->data + GCM_IV, in->len - GCM_IV - GCM_TAG);
        set_b64(body, "tag", in->data + in->len - GCM_TAG, GCM_TAG);
    } else if (op->kind == OP_VERIFY) {
        set_b64(body, "digest", in->data, in->len);
        set_b64(body, "value", sig->data, sig->len);
    } else {
        set_b64(body, "value", in->data, in->len);
    }
    return EXIT_OK;
}

/* Writes the raw result: value, or IV || value || tag for AES-GCM encryption. */
static int write_result(const op_info *op, json_t *doc, const char *out)
{
    size_t len = 0, iv_len = 0, tag_len = 0;
    uint8_t *value = get_b64(doc, "value", &len), *iv = NULL, *tag = NULL;
    int rc = EXIT_OK;
    if (!value) {
        rc = cli_report(ok_fail(OK_ERR_FORMAT, "the vault's answer has no base64url \"value\""));
    } else if (op->kind == OP_ENCRYPT && json_object_get(doc, "iv")) {
        iv = get_b64(doc, "iv", &iv_len);
        tag = get_b64(doc, "tag", &tag_len);
        ok_buf all;
        ok_buf_init(&all, 0);
        if (!iv || !tag || ok_buf_put(&all, iv, iv_len) || ok_buf_put(&all, value, len) || ok_buf_put(&all, tag, tag_len))
            rc = cli_report(ok_fail(OK_ERR_FORMAT, "the vault's AES-GCM answer lacks its iv or tag"));
        else
            rc = vault_write_output(out, all.data, all.len);
        ok_buf_free(&all);
    } else {
        rc = vault_write_output(out, value, len);
    }
    if (value)
        ok_zeroize(value, len);
    free(value);
    free(iv);
    free(tag);
    return rc;
}

/* With --data, replaces the input by its SHA-256. */
static int digest_input(const char *alg, ok_buf *in)
{
    size_t n = strlen(alg);
    if (n < 3 || strcmp(alg + n - 3, "256") != 0)
        return cli_report(ok_fail(OK_ERR_INVALID_ARG, "--data computes SHA-256, which %s does not use: give the digest with -i", alg));
    uint8_t d[OK_SHA256_LEN];
    ok_err rc = ok_sha256(in->data, in->len, d);
    ok_buf_free(in);
    if (rc == OK_OK)
        rc = ok_buf_put(in, d, sizeof d);
    return rc == OK_OK ? EXIT_OK : cli_report(rc);
}

typedef struct {
    vault_args va;
    const char *alg, *version, *in, *out, *sig;
    int data;
} crypto_args;

static int parse_args(const op_info *op, crypto_args *a, int argc, char **argv)
{
    static const struct option opts[] = {
        {"alg", required_argument, NULL, 'a'}, {"version", required_argument, NULL, 'v'},
        {"in", required_argument, NULL, 'i'}, {"out", required_argument, NULL, 'o'},
        {"data", no_argument, NULL, 'd'}, {"signature", required_argument, NULL, 's'}, VAULT_COMMON_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, ":hi:o:", opts, NULL)) != -1) {
        switch (c) {
        case 'a': a->alg = optarg; break;
        case 'v': a->version = optarg; break;
        case 'i': a->in = optarg; break;
        case 'o': a->out = optarg; break;
        case 'd': a->data = 1; break;
        case 's': a->sig = optarg; break;
        case 'h': fputs(op->help, stdout); return VAULT_HELP_SHOWN;
        VAULT_OPTION_DEFAULT(a->va)
        }
    }
    int rc = vault_args_positional(&a->va, argc, argv, 1, "NAME");
    if (rc != EXIT_OK)
        return rc;
    const char *cmd = a->va.command;
    if (!ok_vault_name_valid(argv[optind]))
        return cli_usage_error(cmd, "\"%s\" is not a key name", argv[optind]);
    if (a->version && !ok_vault_version_valid(a->version))
        return cli_usage_error(cmd, "\"%s\" is not a key version", a->version);
    if (!a->alg || !valid_alg(a->alg))
        return cli_usage_error(cmd, "--alg ALG is required (see --help)");
    if (a->data && op->kind != OP_SIGN && op->kind != OP_VERIFY)
        return cli_usage_error(cmd, "--data is for sign and verify");
    if ((op->kind == OP_VERIFY) != (a->sig != NULL))
        return cli_usage_error(cmd, op->kind == OP_VERIFY ? "--signature FILE is required" : "--signature is for verify");
    if (op->kind == OP_VERIFY && a->out)
        return cli_usage_error(cmd, "verify writes nothing: its answer is the exit code");
    if (op->kind != OP_VERIFY && !a->va.json)
        return vault_check_output(a->out);
    return EXIT_OK;
}

static int run(const op_info *op, crypto_args *a, const char *name, json_t *body)
{
    char path[OK_VAULT_NAME_MAX + OK_VAULT_VERSION_MAX + 32];
    snprintf(path, sizeof path, "/keys/%s/%s/%s", name, a->version ? a->version : "", op->path_op);
    vault_reply r;
    int rc = vault_args_connect(&a->va, 1);
    if (rc == EXIT_OK)
        rc = vault_call(&a->va, "POST", path, body, &r);
    if (rc != EXIT_OK)
        return rc;
    if (op->kind == OP_VERIFY) {
        int verified = json_is_true(json_object_get(r.doc, "value"));
        if (a->va.json)
            vault_print_raw(&r);
        rc = verified ? EXIT_OK : cli_report(ok_fail(OK_ERR_AUTH, "the signature does not verify"));
    } else if (a->va.json) {
        vault_print_raw(&r);
    } else {
        const char *kid = json_string_value(json_object_get(r.doc, "kid"));
        if (kid && isatty(STDERR_FILENO))
            fprintf(stderr, "ownkey: %s by %s\n", op->name, kid);
        rc = write_result(op, r.doc, a->out);
    }
    if (r.doc && op->kind != OP_VERIFY) { /* the answer may be a plaintext or key: wipe the parsed copy */
        json_t *v = json_object_get(r.doc, "value");
        if (json_is_string(v))
            ok_zeroize((char *)json_string_value(v), json_string_length(v));
    }
    vault_reply_clear(&r);
    return rc;
}

int cmd_key_crypto(int argc, char **argv)
{
    const op_info *op = NULL;
    for (size_t i = 0; i < sizeof OPS / sizeof *OPS; i++)
        if (!strcmp(argv[0], OPS[i].name))
            op = &OPS[i];
    if (!op)
        return cli_usage_error("key", "unknown operation \"%s\"", argv[0]);
    char command[32];
    snprintf(command, sizeof command, "key %s", op->name);
    crypto_args a;
    memset(&a, 0, sizeof a);
    vault_args_init(&a.va, command);
    int rc = parse_args(op, &a, argc, argv);
    if (rc != EXIT_OK)
        return rc == VAULT_HELP_SHOWN ? EXIT_OK : rc;
    const char *name = argv[optind];
    ok_buf in, sig;
    ok_buf_init(&sig, 0);
    if ((rc = vault_read_input(a.in, a.data ? MAX_DATA : MAX_VALUE, &in)) != EXIT_OK)
        return rc;
    if (a.data)
        rc = digest_input(a.alg, &in);
    if (rc == EXIT_OK && op->kind == OP_VERIFY)
        rc = vault_read_input(a.sig, MAX_VALUE, &sig);
    json_t *body = json_object();
    if (rc == EXIT_OK)
        rc = build_body(op, a.alg, &in, &sig, body);
    ok_buf_free(&in);
    ok_buf_free(&sig);
    if (rc == EXIT_OK)
        rc = run(op, &a, name, body);
    /* The body holds the input (perhaps a key or plaintext) in base64url: wipe it. */
    const char *member;
    json_t *v;
    json_object_foreach(body, member, v)
        if (json_is_string(v))
            ok_zeroize((char *)json_string_value(v), json_string_length(v));
    json_decref(body);
    vault_args_close(&a.va);
    return rc;
}
