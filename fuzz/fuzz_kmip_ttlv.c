/* libFuzzer target: the KMIP TTLV decoder of the kmip provider (src/providers/kmip_ttlv.c), which reads
 * what a KMIP server sends. Decodes the input as one message; on success every item must lie inside the
 * input, the lookups must stay inside the document, and re-encoding must give back exactly the input
 * (the decoder accepts only canonical TTLV: exact lengths, zero padding, nothing trailing). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "providers/kmip_ttlv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ok_ttlv_doc doc;
    if (ok_ttlv_decode(data, size, &doc) != OK_OK) {
        if (doc.items || doc.count)
            abort();
        return 0;
    }
    if (doc.count == 0 || doc.count > OK_TTLV_MAX_ITEMS)
        abort();
    for (size_t i = 0; i < doc.count; i++) {
        const ok_ttlv_item *it = &doc.items[i];
        if (it->len && (it->value < data || it->value + it->len > data + size))
            abort();
        if ((it->child && it->child <= i) || (it->next && it->next <= i))
            abort();
        /* Lookups over every structure: the first child of each tag seen, then its same-tag siblings. */
        if (it->type == OK_TTLV_STRUCTURE && it->child) {
            const ok_ttlv_item *f = ok_ttlv_find(&doc, it, doc.items[it->child].tag);
            if (f != &doc.items[it->child])
                abort();
            while (f)
                f = ok_ttlv_find_next(&doc, f);
            char text[64];
            int64_t num;
            const uint8_t *p;
            size_t n;
            (void)ok_ttlv_get_text(&doc, it, doc.items[it->child].tag, text, sizeof text);
            (void)ok_ttlv_get_num(&doc, it, doc.items[it->child].tag, doc.items[it->child].type, &num);
            (void)ok_ttlv_get_bytes(&doc, it, doc.items[it->child].tag, OK_TTLV_BYTES, &p, &n);
        }
    }
    ok_buf out;
    ok_buf_init(&out, OK_TTLV_MAX_LEN);
    if (ok_ttlv_encode_doc(&doc, &out) != OK_OK || out.len != size || memcmp(out.data, data, size) != 0) {
        fprintf(stderr, "fuzz_kmip_ttlv: %zu decoded bytes do not re-encode to themselves (%zu)\n", size, out.len);
        abort();
    }
    ok_buf_free(&out);
    ok_ttlv_doc_free(&doc);
    return 0;
}
