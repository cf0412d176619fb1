/* ownkey key import and ownkey key byok-blob: bringing your own key into a vault. `key import NAME --byok
 * FILE --type T` sends a BYOK transfer blob (PUT /keys/NAME with key.key_hsm); `key import NAME --jwk FILE`
 * sends a private JWK. `key byok-blob` makes the transfer blob on the customer's side from a key file and
 * the vault's key exchange key (KEK): the KEK's public key as PEM with --kek and --kid, or fetched from the
 * vault with --kek-name. The blob format is docs/BYOK.md's: RSA-OAEP-SHA1(KEK, fresh AES-256 key) ||
 * AES-KWP(AES key, PKCS#8 or raw AES key), in Azure Key Vault's .byok JSON. Key material read here lives in
 * zeroized buffers only. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/vault_cli.h"
#include "ownkey/crypto.h"

#define MAX_KEY_FILE (64u * 1024u)
#define MAX_BLOB_FILE (64u * 1024u)

/* ---- key import ---------------------------------------------------------------------------------------- */

static const char IMPORT_HELP[] =
    "usage: ownkey key import NAME (--byok FILE --type RSA|EC|oct [--curve C] | --jwk FILE)\n"
    "                         [--ops op,...] [--tags K=V ...] [--nbf TIME] [--exp TIME] [--disabled]\n"
    "\n"
    "Imports a key (or a new current version of NAME). With --byok, FILE is a BYOK transfer blob made for\n"
    "one of the vault's key exchange keys (see 'ownkey key byok-blob' and docs/BYOK.md); --type says what\n"
    "the blob holds. With --jwk, FILE is a private JSON Web Key. The key is stored as a software key.\n"
    "\n"
    "  --byok FILE        a transfer blob (.byok JSON); it can be imported once only\n"
    "  --type T           RSA, EC or oct (for --byok; the -HSM variants are accepted)\n"
    "  --curve C          EC: P-256 or P-384 (checked against the blob)\n"
    "  --jwk FILE         a private JWK (RSA, EC or oct)\n"
    "  --ops LIST         permitted operations: encrypt,decrypt,sign,verify,wrapKey,unwrapKey\n"
    "  --tags K=V         a tag (repeatable)\n"
    "  --nbf TIME, --exp TIME, --disabled   as for 'ownkey key create'\n" VAULT_COMMON_HELP;

typedef struct {
    const char *byok, *jwk, *type, *curve, *ops, *nbf, *exp;
    int disabled;
    json_t *tags;
} import_args;

/* body = {"key": {...}, "attributes": {...}, "tags": {...}} from the arguments; EXIT_OK or an exit code. */
static int build_import_body(vault_args *va, const import_args *a, json_t *body)
{
    json_t *key = json_object(), *attrs = json_object();
    json_object_set_new(body, "key", key);
    json_object_set_new(body, "attributes", attrs);
    ok_buf file;
    int rc = vault_read_input(a->byok ? a->byok : a->jwk, a->byok ? MAX_BLOB_FILE : MAX_KEY_FILE, &file);
    if (rc != EXIT_OK)
        return rc;
    if (a->byok) {
        char *b64 = NULL;
        if (ok_b64url_encode(file.data, file.len, &b64) != OK_OK)
            rc = cli_report(OK_ERR_NOMEM);
        else
            json_object_set_new(key, "key_hsm", json_string(b64));
        free(b64);
        json_object_set_new(key, "kty", json_string(a->type));
        if (a->curve)
            json_object_set_new(key, "crv", json_string(a->curve));
        json_object_set_new(body, "Hsm", json_true());
    } else {
        json_error_t jerr;
        json_t *jwk = json_loadb((const char *)file.data, file.len, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object(jwk))
            rc = cli_report(ok_fail(OK_ERR_KEY, "%s is not a JSON Web Key", a->jwk));
        else
            json_object_update(key, jwk);
        json_decref(jwk); /* vault_call zeroizes the serialized body after sending it */
    }
    ok_buf_free(&file);
    if (rc == EXIT_OK && a->ops) {
        json_t *list = vault_parse_ops(a->ops);
        if (!list)
            return cli_usage_error(va->command, "--ops needs a list of encrypt, decrypt, sign, verify, wrapKey, unwrapKey");
        json_object_set_new(key, "key_ops", list);
    }
    const char *names[2] = {"nbf", "exp"}, *values[2] = {a->nbf, a->exp};
    for (int i = 0; rc == EXIT_OK && i < 2; i++) {
        if (!values[i])
            continue;
        json_t *t = vault_parse_time(values[i]);
        if (!t)
            return cli_usage_error(va->command, "--%s needs Unix seconds, a date (2025-01-01) or "
                                   "2025-01-01T00:00:00Z; got \"%s\"", names[i], values[i]);
        json_object_set_new(attrs, names[i], t);
    }
    if (a->disabled)
        json_object_set_new(attrs, "enabled", json_false());
    if (json_object_size(a->tags))
        json_object_set(body, "tags", a->tags);
    return rc;
}

static int check_import_args(vault_args *va, import_args *a, const char *name)
{
    static const char *const TYPES[] = {"RSA", "EC", "oct", "RSA-HSM", "EC-HSM", "oct-HSM"};
    if (!ok_vault_name_valid(name))
        return cli_usage_error(va->command, "\"%s\" is not a key name (1 to 127 letters, digits and '-')", name);
    if (!a->byok == !a->jwk)
        return cli_usage_error(va->command, "give exactly one of --byok FILE and --jwk FILE");
    if (a->jwk && (a->type || a->curve))
        return cli_usage_error(va->command, "--type and --curve go with --byok (a JWK names its own type)");
    if (a->byok) {
        const char *canon = NULL;
        for (size_t i = 0; a->type && i < sizeof TYPES / sizeof *TYPES; i++)
            if (!strcasecmp(a->type, TYPES[i]))
                canon = TYPES[i];
        if (!canon)
            return cli_usage_error(va->command, "--byok needs --type RSA, EC or oct (what the blob holds)");
        a->type = canon;
        if (a->curve && strncmp(canon, "EC", 2) != 0)
            return cli_usage_error(va->command, "--curve is for EC keys");
        if (a->curve && strcmp(a->curve, "P-256") && strcmp(a->curve, "P-384"))
            return cli_usage_error(va->command, "--curve must be P-256 or P-384");
    }
    return EXIT_OK;
}

static int key_import(int argc, char **argv)
{
    static const struct option opts[] = {
        {"byok", required_argument, NULL, 'b'}, {"jwk", required_argument, NULL, 'j'},
        {"type", required_argument, NULL, 't'}, {"curve", required_argument, NULL, 'c'},
        {"ops", required_argument, NULL, 'o'}, {"tags", required_argument, NULL, 'T'},
        {"nbf", required_argument, NULL, 'n'}, {"exp", required_argument, NULL, 'e'},
        {"disabled", no_argument, NULL, 'D'}, VAULT_COMMON_OPTIONS, {NULL, 0, NULL, 0},
    };
    vault_args va;
    vault_args_init(&va, "key import");
    import_args a = {0};
    a.tags = json_object();
    int c, rc = EXIT_OK;
    while (rc == EXIT_OK && (c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'b': a.byok = optarg; break;
        case 'j': a.jwk = optarg; break;
        case 't': a.type = optarg; break;
        case 'c': a.curve = optarg; break;
        case 'o': a.ops = optarg; break;
        case 'n': a.nbf = optarg; break;
        case 'e': a.exp = optarg; break;
        case 'D': a.disabled = 1; break;
        case 'T':
            if (vault_add_tag(a.tags, optarg) != 0)
                rc = cli_usage_error(va.command, "--tags needs KEY=VALUE, got \"%s\"", optarg);
            break;
        case 'h': fputs(IMPORT_HELP, stdout); json_decref(a.tags); return EXIT_OK;
        default: rc = vault_args_option(&va, c, optarg, argv[optind - 1]); break;
        }
    }
    json_t *body = json_object();
    if (rc == EXIT_OK)
        rc = vault_args_positional(&va, argc, argv, 1, "NAME");
    if (rc == EXIT_OK)
        rc = check_import_args(&va, &a, argv[optind]);
    if (rc == EXIT_OK)
        rc = build_import_body(&va, &a, body);
    if (rc == EXIT_OK)
        rc = vault_args_connect(&va, 1);
    char *path = rc == EXIT_OK ? vault_path("/keys/%s", argv[optind]) : NULL;
    if (rc == EXIT_OK && !path)
        rc = cli_report(OK_ERR_NOMEM);
    vault_reply r;
    if (rc == EXIT_OK && (rc = vault_call(&va, "PUT", path, body, &r)) == EXIT_OK) {
        if (va.json) {
            vault_print_raw(&r);
        } else {
            json_t *key = json_object_get(r.doc, "key");
            vault_print_field("kid", json_string_value(json_object_get(key, "kid")));
            vault_print_field("type", json_string_value(json_object_get(key, "kty")));
        }
        vault_reply_clear(&r);
    }
    free(path);
    json_decref(body);
    json_decref(a.tags);
    vault_args_close(&va);
    return rc;
}

/* ---- key byok-blob ------------------------------------------------------------------------------------ */

static const char BLOB_HELP[] =
    "usage: ownkey key byok-blob (--kek KEK.pem --kid KID | --kek-name NAME) --key FILE -o OUT\n"
    "\n"
    "Makes a BYOK transfer blob: the key in FILE wrapped for the vault's key exchange key (KEK), to send\n"
    "with 'ownkey key import NAME --byok OUT --type T'. Runs on your side; only the KEK's public key is\n"
    "needed. The blob is Azure Key Vault's .byok format (docs/BYOK.md): a fresh AES-256 key under\n"
    "RSA-OAEP (SHA-1), then FILE's key under AES-KWP (RFC 5649) with that AES key.\n"
    "\n"
    "  --kek FILE         the KEK's public key, PEM ('ownkey key show KEK --pem')\n"
    "  --kid KID          the KEK's kid, https://HOST/keys/NAME/VERSION ('ownkey key show KEK')\n"
    "  --kek-name NAME    fetch the KEK's public key and kid from the vault instead\n"
    "  --key FILE         the key to bring: a PEM private key (RSA or EC), a private JWK (RSA, EC or\n"
    "                     oct), or a file of exactly 16, 24 or 32 raw bytes (an AES key)\n"
    "  -o, --out OUT      where to write the blob (mode 0600; default stdout, never a terminal)\n"
    "\n"
    "--addr, --token and --cacert are needed only with --kek-name.\n";

/* The target's plain bytes (PKCS#8 DER or the raw AES key) in secure memory, and what it is. */
typedef struct {
    uint8_t *p;
    size_t len;
    const char *type;  /* "RSA", "EC", "oct" */
} target_key;

static void target_clear(target_key *t)
{
    ok_secure_free(t->p, t->len);
    memset(t, 0, sizeof *t);
}

static ok_err target_from_pkey(const ok_pkey *k, target_key *t)
{
    if (!ok_pkey_is_private(k))
        return ok_fail(OK_ERR_KEY, "the key file holds a public key; BYOK needs the private key");
    t->type = ok_pkey_kind(k) == OK_PKEY_RSA ? "RSA" : "EC";
    return ok_pkey_private_der(k, &t->p, &t->len);
}

static ok_err read_target(const char *path, target_key *t)
{
    ok_buf file;
    ok_pkey *k = NULL;
    ok_jwk *jwk = NULL;
    ok_err rc = OK_OK;
    memset(t, 0, sizeof *t);
    if (vault_read_input(path, MAX_KEY_FILE, &file) != EXIT_OK)
        return OK_ERR_IO; /* reported */
    if (file.len > 10 && !memcmp(file.data, "-----BEGIN", 10)) {
        rc = ok_pkey_from_pem(&k, (const char *)file.data, file.len);
        if (rc == OK_OK)
            rc = target_from_pkey(k, t);
    } else if (file.len > 0 && file.data[0] == '{' && ok_jwk_parse((const char *)file.data, file.len, &jwk) == OK_OK) {
        if (jwk->kty != OK_JWK_OCT) {
            rc = target_from_pkey(jwk->pkey, t);
        } else if ((t->p = ok_secure_alloc(jwk->k_len)) == NULL) {
            rc = ok_fail(OK_ERR_NOMEM, "secure memory");
        } else {
            memcpy(t->p, jwk->k, jwk->k_len);
            t->len = jwk->k_len;
            t->type = "oct";
        }
    } else if (file.len == 16 || file.len == 24 || file.len == 32) {
        if ((t->p = ok_secure_alloc(file.len)) == NULL) {
            rc = ok_fail(OK_ERR_NOMEM, "secure memory");
        } else {
            memcpy(t->p, file.data, file.len);
            t->len = file.len;
            t->type = "oct";
        }
    } else {
        rc = ok_fail(OK_ERR_KEY, "%s is not a PEM private key, a private JWK, or 16, 24 or 32 raw bytes", path);
    }
    if (rc == OK_OK && !strcmp(t->type, "oct") && t->len != 16 && t->len != 24 && t->len != 32)
        rc = ok_fail(OK_ERR_KEY, "an AES key has 16, 24 or 32 bytes, not %zu", t->len);
    ok_pkey_free(k);
    ok_jwk_free(jwk);
    ok_buf_free(&file);
    if (rc != OK_OK)
        target_clear(t);
    return rc;
}

/* The blob's JSON text (malloc'ed). */
static ok_err make_blob(const ok_pkey *kek, const char *kid, const target_key *t, char **out)
{
    size_t k = ok_pkey_size(kek), n = 0, w = 0, total = k + (t->len + 7) / 8 * 8 + 8;
    uint8_t aes[OK_AES256_KEY_LEN], *ct = malloc(total);
    char *b64 = NULL;
    ok_err rc = ct ? ok_random(aes, sizeof aes) : ok_fail(OK_ERR_NOMEM, "out of memory");
    *out = NULL;
    if (rc == OK_OK)
        rc = ok_rsa_oaep_encrypt(kek, OK_HASH_SHA1, OK_HASH_SHA1, NULL, 0, aes, sizeof aes, ct, &n);
    if (rc == OK_OK && n != k)
        rc = ok_fail(OK_ERR_CRYPTO, "RSA-OAEP gave %zu bytes, not %zu", n, k);
    if (rc == OK_OK)
        rc = ok_aes_kwp_wrap(aes, sizeof aes, t->p, t->len, ct + k, &w);
    ok_zeroize(aes, sizeof aes);
    if (rc == OK_OK)
        rc = ok_b64url_encode(ct, k + w, &b64);
    if (rc == OK_OK) {
        json_t *doc = json_pack("{s:s, s:{s:s, s:s, s:s}, s:s, s:s}", "schema_version", "1.0.0", "header", "kid", kid,
                                "alg", "dir", "enc", "CKM_RSA_AES_KEY_WRAP", "ciphertext", b64, "generator",
                                "ownkey key byok-blob 0.1.0");
        *out = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(doc);
        if (!*out)
            rc = ok_fail(OK_ERR_NOMEM, "out of memory");
    }
    free(b64);
    free(ct);
    return rc;
}

/* The KEK's public key and kid from the vault: GET /keys/NAME, which must be an RSA key exchange key. */
static int fetch_kek(vault_args *va, const char *name, ok_pkey **kek, char **kid)
{
    char *path = vault_path("/keys/%s/", name);
    vault_reply r;
    int rc = path ? vault_call(va, "GET", path, NULL, &r) : cli_report(OK_ERR_NOMEM);
    free(path);
    if (rc != EXIT_OK)
        return rc;
    json_t *key = json_object_get(r.doc, "key"), *ops = json_object_get(key, "key_ops");
    const char *n = json_string_value(json_object_get(key, "n")), *e = json_string_value(json_object_get(key, "e"));
    const char *k = json_string_value(json_object_get(key, "kid"));
    uint8_t *nb = NULL, *eb = NULL;
    size_t nl = 0, el = 0;
    if (!n || !e || !k || json_array_size(ops) != 1 ||
        !json_is_string(json_array_get(ops, 0)) || strcmp(json_string_value(json_array_get(ops, 0)), "import"))
        rc = cli_report(ok_fail(OK_ERR_KEY, "key \"%s\" is not a key exchange key (an RSA key with key_ops "
                                "[\"import\"])", name));
    else if (ok_b64_decode_any(n, &nb, &nl) != OK_OK || ok_b64_decode_any(e, &eb, &el) != OK_OK ||
             ok_pkey_rsa_from_public(kek, nb, nl, eb, el) != OK_OK)
        rc = cli_report(ok_fail(OK_ERR_FORMAT, "the vault's answer for \"%s\" holds no usable RSA public key", name));
    else if (!(*kid = strdup(k)))
        rc = cli_report(OK_ERR_NOMEM);
    free(nb);
    free(eb);
    vault_reply_clear(&r);
    return rc;
}

static int read_kek_pem(const char *path, ok_pkey **kek)
{
    ok_buf file;
    int rc = vault_read_input(path, MAX_KEY_FILE, &file);
    if (rc != EXIT_OK)
        return rc;
    ok_err err = ok_pkey_from_pem(kek, (const char *)file.data, file.len);
    ok_buf_free(&file);
    if (err != OK_OK)
        return cli_report(ok_fail(OK_ERR_KEY, "%s: %s", path, ok_err_message()));
    return EXIT_OK;
}

static int key_byok_blob(int argc, char **argv)
{
    static const struct option opts[] = {
        {"kek", required_argument, NULL, 'k'}, {"kid", required_argument, NULL, 'i'},
        {"kek-name", required_argument, NULL, 'N'}, {"key", required_argument, NULL, 'K'},
        {"out", required_argument, NULL, 'o'}, VAULT_COMMON_OPTIONS, {NULL, 0, NULL, 0},
    };
    vault_args va;
    vault_args_init(&va, "key byok-blob");
    const char *kek_file = NULL, *kid_arg = NULL, *kek_name = NULL, *key_file = NULL, *out = NULL;
    int c;
    while ((c = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
        switch (c) {
        case 'k': kek_file = optarg; break;
        case 'i': kid_arg = optarg; break;
        case 'N': kek_name = optarg; break;
        case 'K': key_file = optarg; break;
        case 'o': out = optarg; break;
        VAULT_OPTION_CASES(va, BLOB_HELP)
        }
    }
    int rc = vault_args_positional(&va, argc, argv, 0, "");
    if (rc == EXIT_OK && !key_file)
        rc = cli_usage_error(va.command, "--key FILE is required (the key to bring)");
    if (rc == EXIT_OK && !((kek_file && kid_arg && !kek_name) || (kek_name && !kek_file && !kid_arg)))
        rc = cli_usage_error(va.command, "give --kek FILE with --kid KID, or --kek-name NAME");
    if (rc == EXIT_OK && kek_name && !ok_vault_name_valid(kek_name))
        rc = cli_usage_error(va.command, "\"%s\" is not a key name", kek_name);
    if (rc == EXIT_OK && kid_arg && (strncmp(kid_arg, "https://", 8) || !strstr(kid_arg + 8, "/keys/")))
        rc = cli_usage_error(va.command, "--kid must be the KEK's kid, https://HOST/keys/NAME/VERSION");
    if (rc == EXIT_OK)
        rc = vault_check_output(out);
    ok_pkey *kek = NULL;
    char *kid = NULL;
    if (rc == EXIT_OK && kek_name && (rc = vault_args_connect(&va, 1)) == EXIT_OK)
        rc = fetch_kek(&va, kek_name, &kek, &kid);
    if (rc == EXIT_OK && kek_file && (rc = read_kek_pem(kek_file, &kek)) == EXIT_OK && !(kid = strdup(kid_arg)))
        rc = cli_report(OK_ERR_NOMEM);
    if (rc == EXIT_OK && (ok_pkey_kind(kek) != OK_PKEY_RSA || ok_pkey_bits(kek) < 2048))
        rc = cli_report(ok_fail(OK_ERR_KEY, "the key exchange key must be an RSA key of at least 2048 bits"));
    target_key t = {0};
    ok_err err = OK_OK;
    if (rc == EXIT_OK && (err = read_target(key_file, &t)) != OK_OK)
        rc = err == OK_ERR_IO ? EXIT_IO : cli_report(err);
    char *json = NULL;
    if (rc == EXIT_OK && (err = make_blob(kek, kid, &t, &json)) != OK_OK)
        rc = cli_report(err);
    if (rc == EXIT_OK) {
        size_t len = strlen(json);
        json[len] = '\n'; /* the terminating NUL becomes the final newline */
        rc = vault_write_output(out, (const uint8_t *)json, len + 1);
        json[len] = '\0';
    }
    if (rc == EXIT_OK)
        fprintf(stderr, "ownkey: transfer blob for an %s key; import it with: ownkey key import NAME --byok %s "
                "--type %s\n", t.type, out ? out : "FILE", t.type);
    free(json);
    free(kid);
    target_clear(&t);
    ok_pkey_free(kek);
    vault_args_close(&va);
    return rc;
}

int cmd_key_import(int argc, char **argv)
{
    return key_import(argc, argv);
}

int cmd_key_byok_blob(int argc, char **argv)
{
    return key_byok_blob(argc, argv);
}
