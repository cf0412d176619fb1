/* Tests of the vault client and the `vault` key provider that need no daemon: key reference parsing and
 * normalization, Azure error bodies mapped to ok_err, escaping and lenient base64url, client
 * configuration checks, a refused connection as a transport error, and the provider's matching, its
 * refusal of malformed envelope fields before any request, and its construction from references. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ownkey/provider.h"
#include "ownkey/vault_client.h"

static void test_key_ref_parses_and_normalizes(void **state)
{
    (void)state;
    ok_vault_key_ref r;
    assert_int_equal(ok_vault_key_ref_parse("https://127.0.0.1:8443/keys/k1", &r), OK_OK);
    assert_string_equal(r.addr, "https://127.0.0.1:8443");
    assert_string_equal(r.name, "k1");
    assert_string_equal(r.version, "");
    assert_string_equal(r.key_url, "https://127.0.0.1:8443/keys/k1");

    assert_int_equal(ok_vault_key_ref_parse("https://127.0.0.1:8443/keys/k1/0123456789abcdef0123456789abcdef", &r), OK_OK);
    assert_string_equal(r.version, "0123456789abcdef0123456789abcdef");
    assert_string_equal(r.key_url, "https://127.0.0.1:8443/keys/k1"); /* versionless */

    /* One spelling per key: scheme and host case, the default port and a trailing slash do not matter. */
    assert_int_equal(ok_vault_key_ref_parse("HTTPS://Vault.Example.COM:443/keys/My-Key/", &r), OK_OK);
    assert_string_equal(r.addr, "https://vault.example.com");
    assert_string_equal(r.name, "My-Key");
    assert_string_equal(r.key_url, "https://vault.example.com/keys/My-Key");

    assert_int_equal(ok_vault_key_ref_parse("https://[::1]:9000/keys/a/v1/", &r), OK_OK);
    assert_string_equal(r.addr, "https://[::1]:9000");
    assert_string_equal(r.version, "v1");

    char name127[128];
    memset(name127, 'a', 127);
    name127[127] = '\0';
    char ref[300];
    snprintf(ref, sizeof ref, "https://h/keys/%s", name127);
    assert_int_equal(ok_vault_key_ref_parse(ref, &r), OK_OK);
    assert_string_equal(r.name, name127);
}

static void test_key_ref_refuses_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "http://h/keys/a",              /* plain http */
        "https://h/keys/",              /* no name */
        "https://h/keys",               /* no name */
        "https://h",                    /* no path */
        "https://h/keys/a_b",           /* '_' is not a name character */
        "https://h/keys/a.b",
        "https://h/secrets/a",          /* not a key */
        "https://user@h/keys/a",        /* userinfo */
        "https://h:0/keys/a",           /* bad ports */
        "https://h:70000/keys/a",
        "https://h:/keys/a",
        "https://h:12x/keys/a",
        "https:///keys/a",              /* no host */
        "https://h/keys/a/v/extra",     /* too many segments */
        "https://h/keys/a?api-version=7.5",
        "https://h/keys/a#frag",
        "https://h/keys/a/..",
        "https://h/keys/a/v%2F",
        "https://[::1/keys/a",          /* unterminated IPv6 */
        "file:/keys/a",
        "h/keys/a",
        "",
    };
    ok_vault_key_ref r;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (ok_vault_key_ref_parse(bad[i], &r) != OK_ERR_INVALID_ARG)
            fail_msg("accepted \"%s\"", bad[i]);
        assert_true(ok_err_message()[0] != '\0');
    }
    char ref[300];
    memset(ref, 0, sizeof ref);
    strcpy(ref, "https://h/keys/");
    memset(ref + strlen(ref), 'a', 128); /* a 128-character name */
    assert_int_equal(ok_vault_key_ref_parse(ref, &r), OK_ERR_INVALID_ARG);
}

static void test_names_and_versions(void **state)
{
    (void)state;
    assert_true(ok_vault_name_valid("k1"));
    assert_true(ok_vault_name_valid("A-b-9"));
    assert_false(ok_vault_name_valid(""));
    assert_false(ok_vault_name_valid("a/b"));
    assert_false(ok_vault_name_valid("a b"));
    assert_false(ok_vault_name_valid(".."));
    assert_true(ok_vault_version_valid("0123456789abcdef0123456789abcdef"));
    assert_false(ok_vault_version_valid("../../x"));
    assert_false(ok_vault_version_valid("v?x=1"));
    char long_version[66];
    memset(long_version, 'a', 65);
    long_version[65] = '\0';
    assert_false(ok_vault_version_valid(long_version));
}

/* status + body -> expected error, message and code. */
typedef struct {
    long status;
    const char *body;
    ok_err err;
    const char *message;
    const char *code;
} error_case;

static void test_error_bodies_map_to_codes(void **state)
{
    (void)state;
    static const error_case cases[] = {
        {200, "{}", OK_OK, NULL, ""},
        {204, "", OK_OK, NULL, ""},
        {404, "{\"error\":{\"code\":\"KeyNotFound\",\"message\":\"no key k1\"}}", OK_ERR_NOT_FOUND,
         "KeyNotFound: no key k1", "KeyNotFound"},
        {403, "{\"error\":{\"code\":\"Forbidden\",\"message\":\"identity \\\"app\\\" lacks the unwrapKey permission\"}}",
         OK_ERR_FORBIDDEN, "Forbidden: identity \"app\" lacks the unwrapKey permission", "Forbidden"},
        {409, "{\"error\":{\"code\":\"Conflict\",\"message\":\"k1 is soft-deleted\"}}", OK_ERR_CONFLICT,
         "Conflict: k1 is soft-deleted", "Conflict"},
        {401, "{\"error\":{\"code\":\"Unauthorized\",\"message\":\"AKV10032: Invalid token.\"}}", OK_ERR_AUTH,
         "Unauthorized: AKV10032: Invalid token.", "Unauthorized"},
        {503, "{\"error\":{\"code\":\"VaultSealed\",\"message\":\"the vault is sealed\"}}", OK_ERR_SEALED,
         "VaultSealed: the vault is sealed", "VaultSealed"},
        {400, "{\"error\":{\"code\":\"BadParameter\",\"message\":\"kty must be RSA\"}}", OK_ERR_INVALID_ARG,
         "BadParameter: kty must be RSA", "BadParameter"},
        {413, "", OK_ERR_LIMIT, "the vault answered HTTP 413", ""},
        {500, "{\"error\":{\"code\":\"InternalError\",\"message\":\"disk\"}}", OK_ERR_IO, "InternalError: disk",
         "InternalError"},
        {502, "<html>bad gateway</html>", OK_ERR_IO, "the vault answered HTTP 502", ""},
        {503, "", OK_ERR_SEALED, "the vault answered HTTP 503 (unavailable or sealed)", ""},
        {404, "{\"error\":{\"code\":\"NotFound\"}}", OK_ERR_NOT_FOUND, "NotFound: HTTP 404", "NotFound"},
        {404, "{\"error\":\"flat\"}", OK_ERR_NOT_FOUND, "the vault answered HTTP 404", ""},
        {400, "[1,2]", OK_ERR_INVALID_ARG, "the vault answered HTTP 400", ""},
        /* A message cannot drive the terminal: control characters become '?'. */
        {400, "{\"error\":{\"code\":\"Bad\\u001b\",\"message\":\"a\\u001b[2Jb\\nc\"}}", OK_ERR_INVALID_ARG,
         "Bad?: a?[2Jb?c", "Bad?"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const error_case *c = &cases[i];
        char code[64] = "unchanged";
        ok_err_clear();
        ok_err err = ok_vault_error_from_response(c->status, c->body, strlen(c->body), code, sizeof code);
        if (err != c->err)
            fail_msg("case %zu (HTTP %ld): got error %d, want %d", i, c->status, err, c->err);
        if (c->message)
            assert_string_equal(ok_err_message(), c->message);
        assert_string_equal(code, c->code);
    }
    /* A NULL code buffer is fine. */
    assert_int_equal(ok_vault_error_from_response(404, NULL, 0, NULL, 0), OK_ERR_NOT_FOUND);
}

static void test_escape_and_base64(void **state)
{
    (void)state;
    char *e = ok_vault_escape("a b/*?&=%~._-Z9");
    assert_non_null(e);
    assert_string_equal(e, "a%20b%2F%2A%3F%26%3D%25~._-Z9");
    free(e);
    e = ok_vault_escape("");
    assert_string_equal(e, "");
    free(e);

    static const struct {
        const char *text;
        size_t len;
        uint8_t bytes[3];
    } ok_cases[] = {
        {"AQID", 3, {1, 2, 3}}, {"AQI", 2, {1, 2}}, {"AQI=", 2, {1, 2}}, {"-_8", 2, {0xfb, 0xff}}, {"+/8=", 2, {0xfb, 0xff}},
        {"", 0, {0}},
    };
    for (size_t i = 0; i < sizeof ok_cases / sizeof *ok_cases; i++) {
        uint8_t *out = NULL;
        size_t len = 99;
        assert_int_equal(ok_vault_b64_decode(ok_cases[i].text, &out, &len), OK_OK);
        assert_int_equal(len, ok_cases[i].len);
        assert_memory_equal(out, ok_cases[i].bytes, len);
        free(out);
    }
    uint8_t *out = NULL;
    size_t len = 0;
    assert_int_equal(ok_vault_b64_decode("A", &out, &len), OK_ERR_FORMAT);
    assert_int_equal(ok_vault_b64_decode("AQ!D", &out, &len), OK_ERR_FORMAT);
}

static void test_client_configuration(void **state)
{
    (void)state;
    ok_vault_client *c = NULL;
    ok_vault_client_config cfg = {.addr = "http://127.0.0.1:8443"};
    assert_int_equal(ok_vault_client_new(&cfg, &c), OK_ERR_INVALID_ARG);
    assert_non_null(strstr(ok_err_message(), "plain http"));
    assert_null(c);
    cfg.addr = NULL;
    assert_int_equal(ok_vault_client_new(&cfg, &c), OK_ERR_INVALID_ARG);
    cfg.addr = "https://127.0.0.1:8443/keys";
    assert_int_equal(ok_vault_client_new(&cfg, &c), OK_ERR_INVALID_ARG);
    cfg.addr = "https://127.0.0.1:8443";
    cfg.token = "has a space";
    assert_int_equal(ok_vault_client_new(&cfg, &c), OK_ERR_INVALID_ARG);
    assert_null(strstr(ok_err_message(), "has a space")); /* the token is never echoed */

    cfg.addr = "https://LOCALHOST:8443/";
    cfg.token = "okt_secret";
    assert_int_equal(ok_vault_client_new(&cfg, &c), OK_OK);
    assert_string_equal(ok_vault_client_addr(c), "https://localhost:8443");
    ok_vault_response resp;
    assert_int_equal(ok_vault_client_request(c, "GET", "keys", NULL, &resp), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_vault_client_request(c, "GET", "/keys/a b", NULL, &resp), OK_ERR_INVALID_ARG);
    ok_vault_response_clear(&resp);
    ok_vault_client_free(c);
    ok_vault_client_free(NULL);
}

/* Nothing listens on port 1: the request fails in transport, which is an I/O error without a status. */
static void test_refused_connection_is_io_error(void **state)
{
    (void)state;
    ok_vault_client *c = NULL;
    ok_vault_client_config cfg = {.addr = "https://127.0.0.1:1", .token = "okt_x", .connect_timeout_ms = 2000};
    assert_int_equal(ok_vault_client_new(&cfg, &c), OK_OK);
    ok_vault_response resp;
    assert_int_equal(ok_vault_client_request(c, "GET", "/keys/k1", NULL, &resp), OK_ERR_IO);
    assert_int_equal(resp.status, 0);
    assert_null(resp.body);
    assert_non_null(strstr(ok_err_message(), "https://127.0.0.1:1"));
    assert_null(strstr(ok_err_message(), "okt_x"));
    ok_vault_response_clear(&resp);
    ok_vault_client_free(c);
}

static void set_edk(ok_edk *edk, const char *provider, const char *key_id, const char *version, const char *alg)
{
    static const uint8_t ct[40] = {1};
    assert_int_equal(ok_edk_set(edk, provider, key_id, version, alg, ct, sizeof ct), OK_OK);
}

static void test_provider_matches_and_refuses_bad_edks(void **state)
{
    (void)state;
    ok_provider *p = NULL;
    assert_int_equal(ok_vault_provider_open("https://127.0.0.1:1/keys/k1", NULL, NULL, &p), OK_ERR_INVALID_ARG);
    assert_non_null(strstr(ok_err_message(), "OWNKEY_TOKEN"));
    assert_int_equal(ok_vault_provider_open("https://127.0.0.1:1/keys/k1/abc", "okt_x", NULL, &p), OK_OK);

    char desc[200];
    assert_int_equal(ok_provider_describe(p, desc, sizeof desc), OK_OK);
    assert_string_equal(desc, "vault https://127.0.0.1:1/keys/k1 (version abc)");

    ok_edk edk = {0};
    /* The key id is the versionless URL, whatever version wrapped. */
    set_edk(&edk, "vault", "https://127.0.0.1:1/keys/k1", "0123456789abcdef0123456789abcdef", "A256KW");
    assert_true(ok_provider_matches(p, &edk));
    set_edk(&edk, "vault", "https://127.0.0.1:1/keys/k2", "v", "A256KW");
    assert_false(ok_provider_matches(p, &edk));
    uint8_t key[32];
    assert_int_equal(ok_provider_unwrap(p, &edk, key, sizeof key), OK_ERR_NO_RECIPIENT);
    set_edk(&edk, "vault", "https://127.0.0.1:2/keys/k1", "v", "A256KW");
    assert_false(ok_provider_matches(p, &edk));
    set_edk(&edk, "file", "https://127.0.0.1:1/keys/k1", "", "A256KW");
    assert_false(ok_provider_matches(p, &edk));

    /* Header fields are unauthenticated until the data key opens the envelope: a version or algorithm
     * that could change the request is refused before any request is made (port 1 would fail as I/O). */
    static const char *const bad_versions[] = {"../../ownkey/v1/seal", "", "v?x", "a/b"};
    for (size_t i = 0; i < sizeof bad_versions / sizeof *bad_versions; i++) {
        set_edk(&edk, "vault", "https://127.0.0.1:1/keys/k1", bad_versions[i], "A256KW");
        assert_int_equal(ok_provider_unwrap(p, &edk, key, sizeof key), OK_ERR_FORMAT);
    }
    set_edk(&edk, "vault", "https://127.0.0.1:1/keys/k1", "v1", "A256KW\",\"x\":\"");
    assert_int_equal(ok_provider_unwrap(p, &edk, key, sizeof key), OK_ERR_UNSUPPORTED);
    set_edk(&edk, "vault", "https://127.0.0.1:1/keys/k1", "v1", "RSA-OAEP-256");
    assert_int_equal(ok_provider_unwrap(p, &edk, key, sizeof key), OK_ERR_IO); /* well-formed: it tries */
    ok_edk_clear(&edk);
    ok_provider_free(p);
}

static void test_provider_from_ref(void **state)
{
    (void)state;
    ok_provider *p = NULL;
    unsetenv("OWNKEY_TOKEN");
    assert_int_equal(ok_provider_from_ref("https://127.0.0.1:1/keys/k1", &p), OK_ERR_INVALID_ARG);
    assert_non_null(strstr(ok_err_message(), "OWNKEY_TOKEN"));
    setenv("OWNKEY_TOKEN", "okt_test", 1);
    assert_int_equal(ok_provider_from_ref("http://127.0.0.1:1/keys/k1", &p), OK_ERR_INVALID_ARG);
    assert_non_null(strstr(ok_err_message(), "plain http"));
    assert_int_equal(ok_provider_from_ref("https://127.0.0.1:1/keys/bad_name", &p), OK_ERR_INVALID_ARG);
    assert_int_equal(ok_provider_from_ref("HTTPS://LOCALHOST:443/keys/k1", &p), OK_OK);
    ok_edk edk = {0};
    set_edk(&edk, "vault", "https://localhost/keys/k1", "v1", "A256KW");
    assert_true(ok_provider_matches(p, &edk));
    ok_edk_clear(&edk);
    ok_provider_free(p);
    assert_int_equal(ok_provider_from_ref("vault:k1", &p), OK_ERR_INVALID_ARG);
    unsetenv("OWNKEY_TOKEN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_ref_parses_and_normalizes),
        cmocka_unit_test(test_key_ref_refuses_malformed),
        cmocka_unit_test(test_names_and_versions),
        cmocka_unit_test(test_error_bodies_map_to_codes),
        cmocka_unit_test(test_escape_and_base64),
        cmocka_unit_test(test_client_configuration),
        cmocka_unit_test(test_refused_connection_is_io_error),
        cmocka_unit_test(test_provider_matches_and_refuses_bad_edks),
        cmocka_unit_test(test_provider_from_ref),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
