/* Tests of the util layer: the bounds-checked cursor, the bounded buffer, base64url and hex codecs,
 * secure memory and the error convention. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ownkey/util.h"

static void test_cursor_reads_and_refuses_overrun(void **state)
{
    (void)state;
    const uint8_t data[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f};
    ok_cursor c;
    ok_cursor_init(&c, data, sizeof data);
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    assert_int_equal(ok_cursor_u8(&c, &u8), OK_OK);
    assert_int_equal(u8, 0x01);
    assert_int_equal(ok_cursor_u16(&c, &u16), OK_OK);
    assert_int_equal(u16, 0x0203);
    assert_int_equal(ok_cursor_u32(&c, &u32), OK_OK);
    assert_int_equal(u32, 0x04050607);
    const uint8_t *p = NULL;
    assert_int_equal(ok_cursor_bytes(&c, 9, &p), OK_ERR_TRUNCATED); /* 8 bytes left */
    assert_int_equal(ok_cursor_remaining(&c), 8);                    /* a failed read moves nothing */
    assert_int_equal(ok_cursor_u64(&c, &u64), OK_OK);
    assert_true(u64 == 0x08090a0b0c0d0e0full);
    assert_int_equal(ok_cursor_u8(&c, &u8), OK_ERR_TRUNCATED);
    assert_int_equal(ok_cursor_bytes(&c, 0, &p), OK_OK);
    ok_cursor_init(&c, data, sizeof data);
    assert_int_equal(ok_cursor_bytes(&c, SIZE_MAX, &p), OK_ERR_TRUNCATED);
}

static void test_fixed_writer(void **state)
{
    (void)state;
    uint8_t mem[8];
    ok_fixbuf w;
    ok_fixbuf_init(&w, mem, sizeof mem);
    ok_fixbuf_str(&w, "abc");
    ok_fixbuf_put(&w, "defgh", 5);
    assert_int_equal(w.len, 8);
    assert_false(w.overflow);
    assert_memory_equal(mem, "abcdefgh", 8);
    ok_fixbuf_put(&w, "", 0);
    assert_false(w.overflow);
    ok_fixbuf_put(&w, "i", 1); /* does not fit: nothing written, and nothing after it either */
    assert_true(w.overflow);
    assert_int_equal(w.len, 8);
    ok_fixbuf_init(&w, mem, sizeof mem);
    ok_fixbuf_put(&w, "0123456789", 10);
    ok_fixbuf_put(&w, "x", 1);
    assert_true(w.overflow);
    assert_int_equal(w.len, 0);
}

static void test_buf_growth_and_limit(void **state)
{
    (void)state;
    ok_buf b;
    ok_buf_init(&b, 1000);
    for (int i = 0; i < 250; i++)
        assert_int_equal(ok_buf_u32(&b, (uint32_t)i), OK_OK);
    assert_int_equal(b.len, 1000);
    assert_int_equal(ok_load_u32(b.data + 4 * 249), 249);
    assert_int_equal(ok_buf_u8(&b, 1), OK_ERR_LIMIT);
    assert_int_equal(b.len, 1000);
    ok_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(ok_buf_u64(&b, 0x0102030405060708ull), OK_OK);
    assert_int_equal(b.data[0], 1);
    assert_int_equal(b.data[7], 8);
    assert_int_equal(ok_buf_reserve(&b, SIZE_MAX), OK_ERR_LIMIT);
    ok_buf_free(&b);
    assert_null(b.data);
}

static void test_base64url(void **state)
{
    (void)state;
    /* RFC 4648 test vectors, in the URL alphabet without padding. */
    const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *enc[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        char *s = NULL;
        uint8_t *d = NULL;
        size_t n = 0;
        assert_int_equal(ok_b64url_encode((const uint8_t *)plain[i], strlen(plain[i]), &s), OK_OK);
        assert_string_equal(s, enc[i]);
        assert_int_equal(ok_b64url_decode(enc[i], strlen(enc[i]), &d, &n), OK_OK);
        assert_int_equal(n, strlen(plain[i]));
        assert_memory_equal(d, plain[i], n);
        free(s);
        free(d);
    }
    const uint8_t url[] = {0xfb, 0xff};
    char *s = NULL;
    assert_int_equal(ok_b64url_encode(url, 2, &s), OK_OK);
    assert_string_equal(s, "-_8");
    free(s);
    uint8_t *d = NULL;
    size_t n;
    assert_int_equal(ok_b64url_decode("Zg==", 4, &d, &n), OK_ERR_FORMAT); /* padding refused */
    assert_int_equal(ok_b64url_decode("Zm9v+", 5, &d, &n), OK_ERR_FORMAT);
    assert_int_equal(ok_b64url_decode("Zh", 2, &d, &n), OK_ERR_FORMAT);   /* non-canonical tail bits */
    assert_int_equal(ok_b64url_decode("Z", 1, &d, &n), OK_ERR_FORMAT);    /* impossible length */
    assert_int_equal(ok_b64url_decode("Zm 9v", 5, &d, &n), OK_ERR_FORMAT);

    /* The lenient form other JOSE clients need: both alphabets, optional padding at the end only. */
    const char *same[] = {"-_8", "+/8", "+/8=", "-_8="};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(ok_b64_decode_any(same[i], &d, &n), OK_OK);
        assert_int_equal(n, 2);
        assert_memory_equal(d, url, 2);
        free(d);
    }
    assert_int_equal(ok_b64_decode_any("Zg===", &d, &n), OK_ERR_FORMAT);
    assert_int_equal(ok_b64_decode_any("Z=g", &d, &n), OK_ERR_FORMAT);
}

static void test_hex(void **state)
{
    (void)state;
    uint8_t *d = NULL;
    size_t n = 0;
    char *s = NULL;
    assert_int_equal(ok_hex_decode("00fFa5", &d, &n), OK_OK);
    assert_int_equal(n, 3);
    assert_int_equal(d[1], 0xff);
    assert_int_equal(ok_hex_encode(d, n, &s), OK_OK);
    assert_string_equal(s, "00ffa5");
    free(d);
    free(s);
    assert_int_equal(ok_hex_decode("abc", &d, &n), OK_ERR_FORMAT);
    assert_int_equal(ok_hex_decode("zz", &d, &n), OK_ERR_FORMAT);
    assert_int_equal(ok_hex_decode("", &d, &n), OK_OK);
    assert_int_equal(n, 0);
    free(d);
}

static void test_secure_memory_and_errors(void **state)
{
    (void)state;
    uint8_t *p = ok_secure_alloc(64);
    assert_non_null(p);
    for (int i = 0; i < 64; i++)
        assert_int_equal(p[i], 0);
    memset(p, 0xAA, 64);
    ok_zeroize(p, 64);
    for (int i = 0; i < 64; i++)
        assert_int_equal(p[i], 0);
    ok_secure_free(p, 64);
    ok_secure_free(NULL, 0);

    assert_int_equal(ok_fail(OK_ERR_AUTH, "frame %d", 7), OK_ERR_AUTH);
    assert_string_equal(ok_err_message(), "frame 7");
    /* wrapping the previous message (the argument is the detail buffer itself) */
    assert_int_equal(ok_fail(OK_ERR_KEY, "key file %s: %s", "k.jwk", ok_err_message()), OK_ERR_KEY);
    assert_string_equal(ok_err_message(), "key file k.jwk: frame 7");
    ok_err_clear();
    assert_string_equal(ok_err_message(), "");
    assert_string_equal(ok_err_name(OK_ERR_NO_RECIPIENT), "no recipient matches");
}

static void test_iso8601_durations(void **state)
{
    (void)state;
    int64_t s = 0;
    assert_int_equal(ok_duration_parse("P90D", &s), OK_OK);
    assert_int_equal(s, 90 * 86400);
    assert_int_equal(ok_duration_parse("PT12H", &s), OK_OK);
    assert_int_equal(s, 12 * 3600);
    assert_int_equal(ok_duration_parse("P1Y2M3DT4H5M6S", &s), OK_OK);
    assert_int_equal(s, 365 * 86400 + 60 * 86400 + 3 * 86400 + 4 * 3600 + 5 * 60 + 6);
    assert_int_equal(ok_duration_parse("P2W", &s), OK_OK);
    assert_int_equal(s, 14 * 86400);
    assert_int_equal(ok_duration_parse("P1025M3DT4H5M6S", &s), OK_OK); /* fuzz finding: formats as 10 digits */
    char back[32];
    ok_duration_format(s, back, sizeof back);
    int64_t again = 0;
    assert_int_equal(ok_duration_parse(back, &again), OK_OK);
    assert_int_equal(again, s);
    assert_int_equal(ok_duration_parse("PT1M", &s), OK_OK);
    assert_int_equal(s, 60);
    const char *bad[] = {"", "P", "PT", "90D", "P90", "PD", "P1D2Y", "PT1H1H", "P1DT", "P-1D", "P1.5D", "P1234567890123D", "PT5X", "P277701724W", "P101Y", "PT3155760001S", NULL};
    for (size_t i = 0; bad[i]; i++)
        if (ok_duration_parse(bad[i], &s) == OK_OK)
            fail_msg("duration \"%s\" was accepted", bad[i]);
    char out[32];
    ok_duration_format(90 * 86400, out, sizeof out);
    assert_string_equal(out, "P90D");
    ok_duration_format(7200, out, sizeof out);
    assert_string_equal(out, "PT2H");
    ok_duration_format(61, out, sizeof out);
    assert_string_equal(out, "PT61S");
}

static void test_name_valid(void **state)
{
    (void)state;
    assert_true(ok_name_valid("key-1", 127, "-"));
    assert_false(ok_name_valid("key_1", 127, "-"));
    assert_true(ok_name_valid("svc.app_1", 64, "._-"));
    assert_false(ok_name_valid("", 64, "-"));
    assert_false(ok_name_valid(NULL, 64, "-"));
    assert_true(ok_name_valid("abc", 3, ""));
    assert_false(ok_name_valid("abcd", 3, ""));
    assert_false(ok_name_valid("k\xc3\xa9", 64, "-"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cursor_reads_and_refuses_overrun),
        cmocka_unit_test(test_buf_growth_and_limit),
        cmocka_unit_test(test_fixed_writer),
        cmocka_unit_test(test_base64url),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_secure_memory_and_errors),
        cmocka_unit_test(test_iso8601_durations),
        cmocka_unit_test(test_name_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
