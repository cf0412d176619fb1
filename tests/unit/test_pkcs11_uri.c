/* Tests of src/providers/pkcs11_uri.c: RFC 7512 parsing, percent-decoding, refusals, the normalized key
 * id, and reading the PIN (pin-source preferred, never in error messages). No token needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ownkey/util.h"
#include "providers/pkcs11_uri.h"
#include "test_support.h"

static void test_parse_full_uri(void **state)
{
    (void)state;
    ok_p11_uri u;
    assert_int_equal(ok_p11_uri_parse("pkcs11:token=My%20Token;manufacturer=SoftHSM%20project;serial=abc123;"
                                      "model=SoftHSM%20v2;object=kek-aes;id=%01%ff%00;type=secret-key"
                                      "?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/pin",
                                      &u),
                     OK_OK);
    assert_string_equal(u.token, "My Token");
    assert_string_equal(u.manufacturer, "SoftHSM project");
    assert_string_equal(u.serial, "abc123");
    assert_string_equal(u.model, "SoftHSM v2");
    assert_string_equal(u.object, "kek-aes");
    assert_true(u.has_id);
    assert_int_equal(u.id_len, 3);
    assert_memory_equal(u.id, "\x01\xff\x00", 3);
    assert_int_equal(u.type, OK_P11_TYPE_SECRET);
    assert_string_equal(u.module_path, "/usr/lib/softhsm/libsofthsm2.so");
    assert_string_equal(u.pin_source, "/run/pin");
    assert_null(u.pin_value);
    ok_p11_uri_clear(&u);
}

static void test_parse_forms(void **state)
{
    (void)state;
    ok_p11_uri u;
    /* Scheme is case-insensitive; query only; pin-value; file:/// and plain-path pin-sources; other types. */
    assert_int_equal(ok_p11_uri_parse("PKCS11:token=t;object=o?pin-value=12%2534", &u), OK_OK);
    assert_int_equal(u.pin_value_len, 5);
    assert_memory_equal(u.pin_value, "12%34", 6);
    ok_p11_uri_clear(&u);
    assert_int_equal(ok_p11_uri_parse("pkcs11:token=t;object=o?pin-source=file:///etc/pin", &u), OK_OK);
    assert_string_equal(u.pin_source, "/etc/pin");
    ok_p11_uri_clear(&u);
    assert_int_equal(ok_p11_uri_parse("pkcs11:token=t;object=o?pin-source=/etc/pin2", &u), OK_OK);
    assert_string_equal(u.pin_source, "/etc/pin2");
    ok_p11_uri_clear(&u);
    assert_int_equal(ok_p11_uri_parse("pkcs11:token=t;object=o?pin-source=file:rel/pin", &u), OK_OK);
    assert_string_equal(u.pin_source, "rel/pin");
    ok_p11_uri_clear(&u);
    const char *types[] = {"public", "private", "cert", "data"};
    const ok_p11_type want[] = {OK_P11_TYPE_PUBLIC, OK_P11_TYPE_PRIVATE, OK_P11_TYPE_CERT, OK_P11_TYPE_DATA};
    for (size_t i = 0; i < 4; i++) {
        char text[64];
        snprintf(text, sizeof text, "pkcs11:token=t;type=%s;id=%%02", types[i]);
        assert_int_equal(ok_p11_uri_parse(text, &u), OK_OK);
        assert_int_equal(u.type, want[i]);
        ok_p11_uri_clear(&u);
    }
    /* An empty URI is valid RFC 7512 (matches everything); the provider refuses it later. */
    assert_int_equal(ok_p11_uri_parse("pkcs11:", &u), OK_OK);
    assert_null(u.token);
    ok_p11_uri_clear(&u);
    /* Reserved characters may appear raw in values where RFC 3986 allows them. */
    assert_int_equal(ok_p11_uri_parse("pkcs11:object=a:b@c(d)", &u), OK_OK);
    assert_string_equal(u.object, "a:b@c(d)");
    ok_p11_uri_clear(&u);
}

static void expect_refused(const char *text, ok_err want, const char *message_part)
{
    ok_p11_uri u;
    ok_err rc = ok_p11_uri_parse(text, &u);
    if (rc != want)
        fail_msg("%s: got %d (%s), want %d", text, rc, ok_err_message(), want);
    if (message_part && !strstr(ok_err_message(), message_part))
        fail_msg("%s: message \"%s\" lacks \"%s\"", text, ok_err_message(), message_part);
    assert_null(u.token);
    assert_null(u.pin_value);
}

static void test_refusals(void **state)
{
    (void)state;
    expect_refused("file:/x", OK_ERR_FORMAT, "not a pkcs11");
    expect_refused("pkcs11:token=a;token=b", OK_ERR_FORMAT, "given twice");
    expect_refused("pkcs11:id=%01;id=%02", OK_ERR_FORMAT, "given twice");
    expect_refused("pkcs11:token=t?pin-value=1&pin-value=2", OK_ERR_FORMAT, "given twice");
    expect_refused("pkcs11:token=a;", OK_ERR_FORMAT, "empty attribute");
    expect_refused("pkcs11:token=", OK_ERR_FORMAT, "is empty");
    expect_refused("pkcs11:token", OK_ERR_FORMAT, "no value");
    expect_refused("pkcs11:=x", OK_ERR_FORMAT, "bad attribute name");
    expect_refused("pkcs11:Token=x", OK_ERR_FORMAT, "bad attribute name");
    expect_refused("pkcs11:token=a%2", OK_ERR_FORMAT, "percent-escape");
    expect_refused("pkcs11:token=a%", OK_ERR_FORMAT, "percent-escape");
    expect_refused("pkcs11:token=a%zz", OK_ERR_FORMAT, "percent-escape");
    expect_refused("pkcs11:token=a%00b", OK_ERR_FORMAT, "NUL");
    expect_refused("pkcs11:token=a b", OK_ERR_FORMAT, "percent-encoded");
    expect_refused("pkcs11:token=a#b", OK_ERR_FORMAT, "percent-encoded");
    expect_refused("pkcs11:type=certificate", OK_ERR_FORMAT, "type");
    expect_refused("pkcs11:slot-id=1", OK_ERR_UNSUPPORTED, "slot-id");
    expect_refused("pkcs11:token=t?module-name=softhsm2", OK_ERR_UNSUPPORTED, "module-name");
    expect_refused("pkcs11:token=t?module-path=lib.so", OK_ERR_FORMAT, "absolute");
    expect_refused("pkcs11:token=t?pin-source=|/bin/getpin", OK_ERR_UNSUPPORTED, "pin-source");
    expect_refused("pkcs11:token=t?pin-source=file:", OK_ERR_FORMAT, "no path");
    expect_refused("pkcs11:token=t?token=x", OK_ERR_UNSUPPORTED, "query attribute");
    /* A PIN never appears in a refusal. */
    expect_refused("pkcs11:token=t?pin-value=secret%zz", OK_ERR_FORMAT, "pin-value");
    assert_null(strstr(ok_err_message(), "secret"));
    char *big = malloc(OK_P11_URI_MAX + 16);
    assert_non_null(big);
    memcpy(big, "pkcs11:object=", 14);
    memset(big + 14, 'a', OK_P11_URI_MAX);
    big[OK_P11_URI_MAX + 14] = 0;
    expect_refused(big, OK_ERR_LIMIT, NULL);
    free(big);
    char id[7 + 3 + 3 * (OK_P11_ID_MAX + 1) + 1];
    strcpy(id, "pkcs11:id=");
    for (int i = 0; i <= OK_P11_ID_MAX; i++)
        strcat(id, "%41");
    expect_refused(id, OK_ERR_LIMIT, "id");
}

static void test_key_id_is_normalized(void **state)
{
    (void)state;
    ok_p11_uri a, b;
    char *ka = NULL, *kb = NULL;
    assert_int_equal(ok_p11_uri_parse("pkcs11:object=k%20ey;token=T%2fok;id=A%01;type=private?module-path=/m.so&"
                                      "pin-value=1234",
                                      &a),
                     OK_OK);
    assert_int_equal(ok_p11_uri_parse("pkcs11:token=T/ok;id=%41%01;object=k%20ey?pin-source=file:/p", &b), OK_OK);
    assert_int_equal(ok_p11_uri_key_id(&a, &ka), OK_OK);
    assert_int_equal(ok_p11_uri_key_id(&b, &kb), OK_OK);
    assert_string_equal(ka, "pkcs11:token=T%2fok;object=k%20ey;id=%41%01");
    assert_string_equal(ka, kb);
    assert_null(strstr(ka, "1234"));
    free(ka);
    free(kb);
    ok_p11_uri_clear(&a);
    ok_p11_uri_clear(&b);
    assert_int_equal(ok_p11_uri_parse("pkcs11:serial=42;id=%00", &a), OK_OK);
    assert_int_equal(ok_p11_uri_key_id(&a, &ka), OK_OK);
    assert_string_equal(ka, "pkcs11:serial=42;id=%00");
    free(ka);
    ok_p11_uri_clear(&a);
}

static void test_read_pin(void **state)
{
    (void)state;
    char *dir = test_make_tmpdir();
    assert_non_null(dir);
    char path[512];
    snprintf(path, sizeof path, "%s/pin", dir);
    char *pin = NULL;
    size_t len = 0;
    /* No PIN at all. */
    assert_int_equal(ok_p11_uri_read_pin(NULL, NULL, 0, &pin, &len), OK_OK);
    assert_null(pin);
    /* pin-value. */
    assert_int_equal(ok_p11_uri_read_pin(NULL, "4321", 4, &pin, &len), OK_OK);
    assert_string_equal(pin, "4321");
    ok_secure_free(pin, len + 1);
    /* pin-source: the first line, without CR LF; preferred over pin-value. */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("s3cret\r\nsecond line\n", f);
    fclose(f);
    assert_int_equal(ok_p11_uri_read_pin(path, "4321", 4, &pin, &len), OK_OK);
    assert_int_equal(len, 6);
    assert_string_equal(pin, "s3cret");
    ok_secure_free(pin, len + 1);
    /* An empty file, a missing file: refused, and the message holds the path, not a PIN. */
    f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(ok_p11_uri_read_pin(path, NULL, 0, &pin, &len), OK_ERR_FORMAT);
    assert_null(pin);
    unlink(path);
    assert_int_equal(ok_p11_uri_read_pin(path, NULL, 0, &pin, &len), OK_ERR_IO);
    assert_non_null(strstr(ok_err_message(), "PIN file"));
    /* A directory is not a PIN file. */
    assert_int_equal(ok_p11_uri_read_pin(dir, NULL, 0, &pin, &len), OK_ERR_IO);
    test_remove_tree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_full_uri),    cmocka_unit_test(test_parse_forms),
        cmocka_unit_test(test_refusals),          cmocka_unit_test(test_key_id_is_normalized),
        cmocka_unit_test(test_read_pin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
