/* Tests of src/providers/kmip_ttlv.c: the KMIP spec's encoding examples (KMIP 1.x §9.1.2, tag 0x420020)
 * byte for byte in both directions, round trips of a nested message, and the decoder's refusals: bad
 * lengths and padding, unknown types and tags, truncation, trailing data, depth and size limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "providers/kmip_ttlv.h"

#define TAG 0x420020u

typedef struct {
    const char *name;
    const char *hex;
} vector;

/* The specification's examples (PyKMIP encodes them identically). */
static const vector SPEC[] = {
    {"Integer 8", "42002002000000040000000800000000"},
    {"Long Integer 123456789000000000", "420020030000000801b69b4ba5749200"},
    {"Big Integer 1234567890000000000000000000", "42002004000000100000000003fd35eb6bc2df4618080000"},
    {"Enumeration 255", "4200200500000004000000ff00000000"},
    {"Boolean True", "42002006000000080000000000000001"},
    {"Text String Hello World", "420020070000000b48656c6c6f20576f726c640000000000"},
    {"Byte String 01 02 03", "42002008000000030102030000000000"},
    {"Date-Time 2008-03-14 11:56:40", "42002009000000080000000047da67f8"},
    {"Interval 10 days", "4200200a00000004000d2f0000000000"},
    {"Structure {Enumeration 254, Integer 255}",
     "42002001000000204200040500000004000000fe000000004200050200000004000000ff00000000"},
};

static uint8_t *unhex(const char *hex, size_t *len)
{
    uint8_t *out = NULL;
    assert_int_equal(ok_hex_decode(hex, &out, len), OK_OK);
    return out;
}

/* The writer's bytes for example i. */
static void write_example(size_t i, ok_ttlv_writer *w)
{
    static const uint8_t big[] = {0x00, 0x00, 0x00, 0x00, 0x03, 0xfd, 0x35, 0xeb,
                                  0x6b, 0xc2, 0xdf, 0x46, 0x18, 0x08, 0x00, 0x00};
    static const uint8_t bytes[] = {1, 2, 3};
    switch (i) {
    case 0: ok_ttlv_int(w, TAG, 8); break;
    case 1: ok_ttlv_long(w, TAG, 123456789000000000LL); break;
    case 2: ok_ttlv_big_integer(w, TAG, big, sizeof big); break;
    case 3: ok_ttlv_enum(w, TAG, 255); break;
    case 4: ok_ttlv_bool(w, TAG, 1); break;
    case 5: ok_ttlv_text(w, TAG, "Hello World", 11); break;
    case 6: ok_ttlv_bytes(w, TAG, bytes, sizeof bytes); break;
    case 7: ok_ttlv_date_time(w, TAG, 0x47da67f8); break;
    case 8: ok_ttlv_interval(w, TAG, 864000); break;
    case 9:
        ok_ttlv_begin(w, TAG);
        ok_ttlv_enum(w, 0x420004, 254);
        ok_ttlv_int(w, 0x420005, 255);
        ok_ttlv_end(w);
        break;
    default: fail();
    }
}

static void test_spec_examples_encode(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof SPEC / sizeof SPEC[0]; i++) {
        ok_buf b;
        ok_buf_init(&b, 0);
        ok_ttlv_writer w;
        ok_ttlv_writer_init(&w, &b);
        write_example(i, &w);
        assert_int_equal(ok_ttlv_finish(&w), OK_OK);
        char *hex = NULL;
        assert_int_equal(ok_hex_encode(b.data, b.len, &hex), OK_OK);
        if (strcmp(hex, SPEC[i].hex) != 0)
            fail_msg("%s: wrote %s, expected %s", SPEC[i].name, hex, SPEC[i].hex);
        free(hex);
        ok_buf_free(&b);
    }
}

static void test_spec_examples_decode_and_round_trip(void **state)
{
    (void)state;
    static const int64_t nums[] = {8, 123456789000000000LL, 0, 255, 1, 0, 0, 0x47da67f8, 864000, 0};
    for (size_t i = 0; i < sizeof SPEC / sizeof SPEC[0]; i++) {
        size_t len = 0;
        uint8_t *in = unhex(SPEC[i].hex, &len);
        ok_ttlv_doc doc;
        assert_int_equal(ok_ttlv_decode(in, len, &doc), OK_OK);
        assert_int_equal(doc.items[0].tag, TAG);
        assert_int_equal(doc.items[0].type, i == 9 ? OK_TTLV_STRUCTURE : (uint8_t)(i < 9 ? (i + 2) : 1));
        if (nums[i])
            assert_true(doc.items[0].num == nums[i]);
        ok_buf b;
        ok_buf_init(&b, 0);
        assert_int_equal(ok_ttlv_encode_doc(&doc, &b), OK_OK);
        assert_int_equal(b.len, len);
        assert_memory_equal(b.data, in, len);
        ok_buf_free(&b);
        ok_ttlv_doc_free(&doc);
        free(in);
    }
    /* The structure's children, through the lookups. */
    size_t len = 0;
    uint8_t *in = unhex(SPEC[9].hex, &len);
    ok_ttlv_doc doc;
    assert_int_equal(ok_ttlv_decode(in, len, &doc), OK_OK);
    assert_int_equal(doc.count, 3);
    int64_t v = 0;
    assert_int_equal(ok_ttlv_get_num(&doc, &doc.items[0], 0x420004, OK_TTLV_ENUM, &v), OK_OK);
    assert_int_equal(v, 254);
    assert_int_equal(ok_ttlv_get_num(&doc, &doc.items[0], 0x420005, OK_TTLV_INTEGER, &v), OK_OK);
    assert_int_equal(v, 255);
    assert_int_equal(ok_ttlv_get_num(&doc, &doc.items[0], 0x420005, OK_TTLV_ENUM, &v), OK_ERR_FORMAT);
    assert_int_equal(ok_ttlv_get_num(&doc, &doc.items[0], 0x420006, OK_TTLV_ENUM, &v), OK_ERR_NOT_FOUND);
    ok_ttlv_doc_free(&doc);
    free(in);
}

static void test_nested_message_round_trip(void **state)
{
    (void)state;
    ok_buf b;
    ok_buf_init(&b, 0);
    ok_ttlv_writer w;
    ok_ttlv_writer_init(&w, &b);
    ok_ttlv_begin(&w, 0x420078);
    ok_ttlv_begin(&w, 0x420077);
    ok_ttlv_begin(&w, 0x420069);
    ok_ttlv_int(&w, 0x42006a, 1);
    ok_ttlv_int(&w, 0x42006b, 4);
    ok_ttlv_end(&w);
    ok_ttlv_int(&w, 0x42000d, 2);
    ok_ttlv_end(&w);
    for (int i = 0; i < 2; i++) {
        ok_ttlv_begin(&w, 0x42000f);
        ok_ttlv_enum(&w, 0x42005c, 8);
        ok_ttlv_begin(&w, 0x420079);
        ok_ttlv_text(&w, 0x420094, i ? "key-2" : "", i ? 5 : 0);
        ok_ttlv_end(&w);
        ok_ttlv_end(&w);
    }
    ok_ttlv_end(&w);
    assert_int_equal(ok_ttlv_finish(&w), OK_OK);

    ok_ttlv_doc doc;
    assert_int_equal(ok_ttlv_decode(b.data, b.len, &doc), OK_OK);
    const ok_ttlv_item *item = ok_ttlv_find(&doc, &doc.items[0], 0x42000f);
    assert_non_null(item);
    const ok_ttlv_item *second = ok_ttlv_find_next(&doc, item);
    assert_non_null(second);
    assert_null(ok_ttlv_find_next(&doc, second));
    char text[8];
    const ok_ttlv_item *payload = ok_ttlv_find(&doc, second, 0x420079);
    assert_int_equal(ok_ttlv_get_text(&doc, payload, 0x420094, text, sizeof text), OK_OK);
    assert_string_equal(text, "key-2");
    assert_int_equal(ok_ttlv_get_text(&doc, payload, 0x420094, text, 5), OK_ERR_LIMIT);
    ok_buf again;
    ok_buf_init(&again, 0);
    assert_int_equal(ok_ttlv_encode_doc(&doc, &again), OK_OK);
    assert_int_equal(again.len, b.len);
    assert_memory_equal(again.data, b.data, b.len);
    ok_buf_free(&again);
    ok_ttlv_doc_free(&doc);
    ok_buf_free(&b);
}

static ok_err decode_hex(const char *hex)
{
    size_t len = 0;
    uint8_t *in = unhex(hex, &len);
    ok_ttlv_doc doc;
    ok_err rc = ok_ttlv_decode(in, len, &doc);
    if (rc == OK_OK)
        ok_ttlv_doc_free(&doc);
    assert_null(rc == OK_OK ? NULL : doc.items);
    free(in);
    return rc;
}

static void test_decoder_refusals(void **state)
{
    (void)state;
    /* Integer with length 8; Long Integer with length 4. */
    assert_int_equal(decode_hex("42002002000000080000000800000000"), OK_ERR_FORMAT);
    assert_int_equal(decode_hex("42002003000000040000000800000000"), OK_ERR_FORMAT);
    /* Non-zero padding after an Integer and after a Text String. */
    assert_int_equal(decode_hex("42002002000000040000000800000001"), OK_ERR_FORMAT);
    assert_int_equal(decode_hex("420020070000000b48656c6c6f20576f726c640000000001"), OK_ERR_FORMAT);
    /* Boolean 2; Big Integer of 4 bytes; type 0 and 11; a tag outside 0x42/0x54. */
    assert_int_equal(decode_hex("42002006000000080000000000000002"), OK_ERR_FORMAT);
    assert_int_equal(decode_hex("42002004000000040000000100000000"), OK_ERR_FORMAT);
    assert_int_equal(decode_hex("42002000000000040000000100000000"), OK_ERR_FORMAT);
    assert_int_equal(decode_hex("4200200b000000040000000100000000"), OK_ERR_FORMAT);
    assert_int_equal(decode_hex("43002002000000040000000800000000"), OK_ERR_FORMAT);
    assert_int_equal(decode_hex("54002002000000040000000800000000"), OK_OK);
    /* Truncated: header only, value cut, padding cut, a length near 2^32. */
    assert_int_equal(decode_hex("4200200200000004"), OK_ERR_TRUNCATED);
    assert_int_equal(decode_hex("420020020000000400000008"), OK_ERR_TRUNCATED);
    assert_int_equal(decode_hex("420020070000000b48656c6c6f20576f726c6400"), OK_ERR_TRUNCATED);
    assert_int_equal(decode_hex("42002008fffffff90102030000000000"), OK_ERR_TRUNCATED);
    assert_int_equal(decode_hex("420020"), OK_ERR_TRUNCATED);
    /* Trailing bytes after the top-level item. */
    assert_int_equal(decode_hex("420020020000000400000008000000004200200200000004"), OK_ERR_FORMAT);
    /* A structure whose length is not a multiple of 8, and one whose child overruns it. */
    assert_int_equal(decode_hex("420020010000000c42000402000000040000000800000000"), OK_ERR_FORMAT);
    assert_int_equal(decode_hex("42002001000000084200040200000004000000080000000000000000"), OK_ERR_TRUNCATED);
    /* An empty structure is fine. */
    assert_int_equal(decode_hex("4200200100000000"), OK_OK);
}

static void test_limits(void **state)
{
    (void)state;
    /* Nesting one deeper than the limit, built by hand (the writer refuses it). */
    size_t depth = OK_TTLV_MAX_DEPTH + 1;
    uint8_t *in = calloc(depth, OK_TTLV_HEADER_LEN);
    assert_non_null(in);
    for (size_t i = 0; i < depth; i++) {
        uint8_t *h = in + i * OK_TTLV_HEADER_LEN;
        h[0] = 0x42, h[1] = 0x00, h[2] = 0x20, h[3] = OK_TTLV_STRUCTURE;
        ok_store_u32(h + 4, (uint32_t)((depth - 1 - i) * OK_TTLV_HEADER_LEN));
    }
    ok_ttlv_doc doc;
    assert_int_equal(ok_ttlv_decode(in, depth * OK_TTLV_HEADER_LEN, &doc), OK_ERR_LIMIT);
    /* One level less decodes. */
    assert_int_equal(ok_ttlv_decode(in + OK_TTLV_HEADER_LEN, (depth - 1) * OK_TTLV_HEADER_LEN, &doc), OK_OK);
    assert_int_equal(doc.count, OK_TTLV_MAX_DEPTH);
    ok_ttlv_doc_free(&doc);
    free(in);

    ok_buf b;
    ok_buf_init(&b, 0);
    ok_ttlv_writer w;
    ok_ttlv_writer_init(&w, &b);
    for (size_t i = 0; i < depth; i++)
        ok_ttlv_begin(&w, TAG);
    assert_int_equal(ok_ttlv_finish(&w), OK_ERR_LIMIT);
    ok_buf_free(&b);

    /* More items than OK_TTLV_MAX_ITEMS: a structure of empty structures. */
    size_t n = OK_TTLV_MAX_ITEMS;
    size_t len = (n + 1) * OK_TTLV_HEADER_LEN;
    in = calloc(1, len);
    assert_non_null(in);
    for (size_t i = 0; i <= n; i++) {
        uint8_t *h = in + i * OK_TTLV_HEADER_LEN;
        h[0] = 0x42, h[1] = 0x00, h[2] = 0x20, h[3] = OK_TTLV_STRUCTURE;
    }
    ok_store_u32(in + 4, (uint32_t)(n * OK_TTLV_HEADER_LEN));
    assert_int_equal(ok_ttlv_decode(in, len, &doc), OK_ERR_LIMIT);
    ok_store_u32(in + 4, (uint32_t)((n - 1) * OK_TTLV_HEADER_LEN));
    assert_int_equal(ok_ttlv_decode(in, len - OK_TTLV_HEADER_LEN, &doc), OK_OK);
    assert_int_equal(doc.count, n);
    ok_ttlv_doc_free(&doc);
    free(in);

    /* A message over the total length limit is refused before anything is read. */
    assert_int_equal(ok_ttlv_decode((const uint8_t *)"", (size_t)OK_TTLV_MAX_LEN + 1, &doc), OK_ERR_LIMIT);
}

static void test_writer_misuse(void **state)
{
    (void)state;
    ok_buf b;
    ok_buf_init(&b, 0);
    ok_ttlv_writer w;
    ok_ttlv_writer_init(&w, &b);
    ok_ttlv_begin(&w, TAG);
    assert_int_equal(ok_ttlv_finish(&w), OK_ERR_INVALID_ARG); /* left open */
    ok_buf_reset(&b);
    ok_ttlv_writer_init(&w, &b);
    ok_ttlv_end(&w);
    ok_ttlv_int(&w, TAG, 1); /* sticky: ignored */
    assert_int_equal(ok_ttlv_finish(&w), OK_ERR_INVALID_ARG);
    assert_int_equal(b.len, 0);
    ok_ttlv_writer_init(&w, &b);
    ok_ttlv_int(&w, 0x110020, 1);
    assert_int_equal(ok_ttlv_finish(&w), OK_ERR_INVALID_ARG);
    ok_ttlv_writer_init(&w, &b);
    ok_ttlv_big_integer(&w, TAG, (const uint8_t *)"1234", 4);
    assert_int_equal(ok_ttlv_finish(&w), OK_ERR_INVALID_ARG);
    ok_buf_free(&b);
    /* A bounded buffer: the writer reports the buffer's limit. */
    ok_buf_init(&b, 16);
    ok_ttlv_writer_init(&w, &b);
    ok_ttlv_text(&w, TAG, "Hello World", 11);
    assert_int_equal(ok_ttlv_finish(&w), OK_ERR_LIMIT);
    ok_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_examples_encode),
        cmocka_unit_test(test_spec_examples_decode_and_round_trip),
        cmocka_unit_test(test_nested_message_round_trip),
        cmocka_unit_test(test_decoder_refusals),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_writer_misuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
