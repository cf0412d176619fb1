/* KMIP request and response messages for the kmip provider (see kmip_client.h): version negotiation with
 * Discover Versions, batches, the mapping of Result Status/Reason/Message to ok_err with a message that
 * names the operation and the server, and the operations themselves in their KMIP 1.x and 2.0 forms (1.x
 * carries attributes as Attribute {Name, Value} structures, 2.0 as tagged items inside Attributes). The
 * TTLV bytes are kmip_ttlv.c's, the TLS connection kmip_tls.c's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "providers/kmip_client.h"
#include "providers/kmip_ttlv.h"

/* Tags (KMIP 1.4 §9.1.3.1, 2.0 §11.5). */
#define T_ATTRIBUTE 0x420008u
#define T_ATTRIBUTE_NAME 0x42000Au
#define T_ATTRIBUTE_VALUE 0x42000Bu
#define T_BATCH_COUNT 0x42000Du
#define T_BATCH_ITEM 0x42000Fu
#define T_BLOCK_CIPHER_MODE 0x420011u
#define T_CRYPTO_ALGORITHM 0x420028u
#define T_CRYPTO_LENGTH 0x42002Au
#define T_CRYPTO_PARAMETERS 0x42002Bu
#define T_CRYPTO_USAGE_MASK 0x42002Cu
#define T_IV_COUNTER_NONCE 0x42003Du
#define T_NAME 0x420053u
#define T_NAME_TYPE 0x420054u
#define T_NAME_VALUE 0x420055u
#define T_OBJECT_TYPE 0x420057u
#define T_OPERATION 0x42005Cu
#define T_PADDING_METHOD 0x42005Fu
#define T_PROTOCOL_VERSION 0x420069u
#define T_PROTOCOL_VERSION_MAJOR 0x42006Au
#define T_PROTOCOL_VERSION_MINOR 0x42006Bu
#define T_REQUEST_HEADER 0x420077u
#define T_REQUEST_MESSAGE 0x420078u
#define T_REQUEST_PAYLOAD 0x420079u
#define T_RESPONSE_HEADER 0x42007Au
#define T_RESPONSE_MESSAGE 0x42007Bu
#define T_RESPONSE_PAYLOAD 0x42007Cu
#define T_RESULT_MESSAGE 0x42007Du
#define T_RESULT_REASON 0x42007Eu
#define T_RESULT_STATUS 0x42007Fu
#define T_REVOCATION_REASON 0x420081u
#define T_REVOCATION_REASON_CODE 0x420082u
#define T_STATE 0x42008Du
#define T_TEMPLATE_ATTRIBUTE 0x420091u
#define T_UNIQUE_BATCH_ITEM_ID 0x420093u
#define T_UNIQUE_IDENTIFIER 0x420094u
#define T_DATA 0x4200C2u
#define T_TAG_LENGTH 0x4200CEu
#define T_AEAD_ADDITIONAL_DATA 0x4200FEu
#define T_AEAD_TAG 0x4200FFu
#define T_ATTRIBUTES 0x420125u
#define T_ATTRIBUTE_REFERENCE 0x42013Bu

enum {
    OP_CREATE = 1, OP_LOCATE = 8, OP_GET_ATTRIBUTES = 11, OP_ACTIVATE = 18, OP_REVOKE = 19, OP_DESTROY = 20,
    OP_DISCOVER_VERSIONS = 30, OP_ENCRYPT = 31, OP_DECRYPT = 32,
};
#define ALG_AES 3
#define MODE_CBC 1
#define MODE_GCM 9
#define PAD_PKCS5 3
#define OBJECT_SYMMETRIC_KEY 2
#define NAME_TYPE_TEXT 1
#define USAGE_ENCRYPT_DECRYPT (4 | 8)
#define MAX_BATCH 4

struct ok_kmip_client {
    ok_kmip_client_config cfg; /* strings owned */
    char server[300];
    ok_kmip_tls tls;
    int connected;
    int major, minor;
};

/* Versions this client speaks, most preferred first. */
static const int VERSIONS[][2] = {{2, 0}, {1, 4}, {1, 3}, {1, 2}};

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

ok_err ok_kmip_client_new(const ok_kmip_client_config *cfg, ok_kmip_client **out)
{
    if (!cfg->host || !*cfg->host)
        return ok_fail(OK_ERR_INVALID_ARG, "no KMIP server host");
    if (cfg->version_major) {
        int ok = 0;
        for (size_t i = 0; i < sizeof VERSIONS / sizeof VERSIONS[0]; i++)
            ok |= VERSIONS[i][0] == cfg->version_major && VERSIONS[i][1] == cfg->version_minor;
        if (!ok)
            return ok_fail(OK_ERR_UNSUPPORTED, "KMIP %d.%d is not supported (1.2, 1.3, 1.4 or 2.0)", cfg->version_major,
                           cfg->version_minor);
    }
    ok_kmip_client *c = calloc(1, sizeof *c);
    if (!c)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    c->cfg = *cfg;
    c->cfg.host = strdup(cfg->host);
    c->cfg.cert_file = dup_or_null(cfg->cert_file);
    c->cfg.key_file = dup_or_null(cfg->key_file);
    c->cfg.ca_file = dup_or_null(cfg->ca_file);
    c->cfg.port = cfg->port ? cfg->port : OK_KMIP_DEFAULT_PORT;
    c->tls.fd = -1;
    if (!c->cfg.host || (cfg->cert_file && !c->cfg.cert_file) || (cfg->key_file && !c->cfg.key_file) ||
        (cfg->ca_file && !c->cfg.ca_file)) {
        ok_kmip_client_free(c);
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    }
    snprintf(c->server, sizeof c->server, strchr(cfg->host, ':') ? "[%s]:%u" : "%s:%u", cfg->host, c->cfg.port);
    *out = c;
    return OK_OK;
}

void ok_kmip_client_free(ok_kmip_client *c)
{
    if (!c)
        return;
    ok_kmip_tls_close(&c->tls);
    SSL_CTX_free(c->tls.ctx);
    free((char *)c->cfg.host);
    free((char *)c->cfg.cert_file);
    free((char *)c->cfg.key_file);
    free((char *)c->cfg.ca_file);
    free(c);
}

void ok_kmip_client_version(const ok_kmip_client *c, int *major, int *minor)
{
    *major = c->major;
    *minor = c->minor;
}

const char *ok_kmip_client_server(const ok_kmip_client *c)
{
    return c->server;
}

const char *ok_kmip_state_name(int64_t state)
{
    static const char *const NAMES[] = {"Unknown", "Pre-Active", "Active", "Deactivated", "Compromised",
                                        "Destroyed", "Destroyed Compromised"};
    return state >= 1 && state <= 6 ? NAMES[state] : NAMES[0];
}

static const char *op_name(int op)
{
    switch (op) {
    case OP_CREATE: return "Create";
    case OP_LOCATE: return "Locate";
    case OP_GET_ATTRIBUTES: return "Get Attributes";
    case OP_ACTIVATE: return "Activate";
    case OP_REVOKE: return "Revoke";
    case OP_DESTROY: return "Destroy";
    case OP_DISCOVER_VERSIONS: return "Discover Versions";
    case OP_ENCRYPT: return "Encrypt";
    case OP_DECRYPT: return "Decrypt";
    default: return "operation";
    }
}

/* Result Reason -> (ok_err, name). */
static ok_err map_reason(int op, int64_t reason, const char **name)
{
    switch (reason) {
    case 0x01: *name = "Item Not Found"; return OK_ERR_NOT_FOUND;
    case 0x37: *name = "Object Not Found"; return OK_ERR_NOT_FOUND;
    case 0x36: *name = "Object Destroyed"; return OK_ERR_NOT_FOUND;
    case 0x03: *name = "Authentication Not Successful"; return OK_ERR_FORBIDDEN;
    case 0x0C: *name = "Permission Denied"; return OK_ERR_FORBIDDEN;
    case 0x39: *name = "Not Authorised"; return OK_ERR_FORBIDDEN;
    case 0x43: *name = "Wrong Key Lifecycle State"; return OK_ERR_FORBIDDEN;
    case 0x29: *name = "Incompatible Cryptographic Usage Mask"; return OK_ERR_FORBIDDEN;
    case 0x05: *name = "Operation Not Supported"; return OK_ERR_UNSUPPORTED;
    case 0x08: *name = "Feature Not Supported"; return OK_ERR_UNSUPPORTED;
    case 0x3E: *name = "Unsupported Cryptographic Parameters"; return OK_ERR_UNSUPPORTED;
    case 0x3F: *name = "Unsupported Protocol Version"; return OK_ERR_UNSUPPORTED;
    case 0x0A: *name = "Cryptographic Failure"; return op == OP_DECRYPT ? OK_ERR_AUTH : OK_ERR_CRYPTO;
    case 0x18: *name = "Object Already Exists"; return OK_ERR_CONFLICT;
    case 0x35: *name = "Non Unique Name Attribute"; return OK_ERR_CONFLICT;
    case 0x02: *name = "Response Too Large"; return OK_ERR_LIMIT;
    case 0x04: *name = "Invalid Message"; return OK_ERR_FORMAT;
    case 0x06: *name = "Missing Data"; return OK_ERR_FORMAT;
    case 0x07: *name = "Invalid Field"; return OK_ERR_FORMAT;
    /* PyKMIP answers a GCM tag mismatch with General Failure: on Decrypt, that is a refused ciphertext. */
    default: *name = "General Failure"; return op == OP_DECRYPT ? OK_ERR_AUTH : OK_ERR_IO;
    }
}

/* The server's Result Message, printable ASCII only, shortened. */
static void clean_message(const ok_ttlv_doc *doc, const ok_ttlv_item *item, char *out, size_t cap)
{
    const uint8_t *p = NULL;
    size_t len = 0, n = 0;
    if (ok_ttlv_get_bytes(doc, item, T_RESULT_MESSAGE, OK_TTLV_TEXT, &p, &len) == OK_OK)
        for (size_t i = 0; i < len && n + 1 < cap; i++)
            out[n++] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
    out[n] = '\0';
}

/* ---- Messages ----------------------------------------------------------------------------------- */

static void begin_request(ok_ttlv_writer *w, int major, int minor, int batch_count)
{
    ok_ttlv_begin(w, T_REQUEST_MESSAGE);
    ok_ttlv_begin(w, T_REQUEST_HEADER);
    ok_ttlv_begin(w, T_PROTOCOL_VERSION);
    ok_ttlv_int(w, T_PROTOCOL_VERSION_MAJOR, major);
    ok_ttlv_int(w, T_PROTOCOL_VERSION_MINOR, minor);
    ok_ttlv_end(w);
    ok_ttlv_int(w, T_BATCH_COUNT, batch_count);
    ok_ttlv_end(w);
}

/* Batch item index (0-based) of a request; its Unique Batch Item ID is index + 1 as 4 bytes (the spec
 * requires IDs when a batch has several items; the response must echo them). */
static void begin_item_at(ok_ttlv_writer *w, int op, uint32_t index)
{
    uint8_t id[4];
    ok_store_u32(id, index + 1);
    ok_ttlv_begin(w, T_BATCH_ITEM);
    ok_ttlv_enum(w, T_OPERATION, (uint32_t)op);
    ok_ttlv_bytes(w, T_UNIQUE_BATCH_ITEM_ID, id, sizeof id);
    ok_ttlv_begin(w, T_REQUEST_PAYLOAD);
}

static void begin_item(ok_ttlv_writer *w, int op)
{
    begin_item_at(w, op, 0);
}

static void end_item(ok_ttlv_writer *w)
{
    ok_ttlv_end(w); /* payload */
    ok_ttlv_end(w); /* batch item */
}

/* Sends req and reads the whole response into resp (header first: its length is checked before the
 * rest is read). */
static ok_err exchange(ok_kmip_client *c, const ok_buf *req, ok_buf *resp, size_t *got)
{
    uint8_t h[OK_TTLV_HEADER_LEN];
    *got = 0;
    OK_GUARD(ok_kmip_tls_write(&c->tls, req->data, req->len));
    OK_GUARD(ok_kmip_tls_read(&c->tls, h, sizeof h, got));
    uint32_t tag = ((uint32_t)h[0] << 16) | ((uint32_t)h[1] << 8) | h[2];
    uint32_t len = ok_load_u32(h + 4);
    if (tag != T_RESPONSE_MESSAGE || h[3] != OK_TTLV_STRUCTURE)
        return ok_fail(OK_ERR_FORMAT, "the answer is not a KMIP Response Message");
    if (len > OK_TTLV_MAX_LEN - OK_TTLV_HEADER_LEN)
        return ok_fail(OK_ERR_LIMIT, "KMIP response of %u bytes exceeds the limit", (unsigned)len);
    OK_GUARD(ok_buf_put(resp, h, sizeof h));
    OK_GUARD(ok_buf_reserve(resp, len));
    size_t n = 0;
    ok_err rc = ok_kmip_tls_read(&c->tls, resp->data + resp->len, len, &n);
    resp->len += n;
    return rc;
}

/* One round trip of a finished request: connects if needed; a reused connection that fails before any
 * answer arrived is reopened and the request sent once more. On return *doc (over resp) is the decoded
 * response; the batch items are checked by check_batch. */
static ok_err round_trip(ok_kmip_client *c, int op, const ok_buf *req, ok_buf *resp, ok_ttlv_doc *doc)
{
    for (int attempt = 0;; attempt++) {
        int reused = c->connected;
        OK_GUARD(ok_kmip_client_connect(c));
        ok_buf_reset(resp);
        size_t got = 0;
        ok_err rc = exchange(c, req, resp, &got);
        if (rc == OK_OK)
            break;
        ok_kmip_tls_close(&c->tls);
        c->connected = 0;
        /* Not for Discover Versions: it runs inside connect, which would recurse. */
        if (rc == OK_ERR_IO && reused && got == 0 && attempt == 0 && op != OP_DISCOVER_VERSIONS)
            continue;
        char why[512];
        snprintf(why, sizeof why, "%s", ok_err_message());
        if (rc == OK_ERR_IO)
            return ok_fail(OK_ERR_IO, "KMIP server %s unreachable: connection lost during %s: %s", c->server,
                           op_name(op), why);
        return ok_fail(rc, "KMIP %s on %s: %s", op_name(op), c->server, why);
    }
    ok_err rc = ok_ttlv_decode(resp->data, resp->len, doc);
    if (rc != OK_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", ok_err_message());
        return ok_fail(rc, "KMIP %s on %s: malformed response: %s", op_name(op), c->server, why);
    }
    return OK_OK;
}

/* Checks the response's batch against the request's operations and returns each item's payload (NULL
 * when the server sent none). A failed item becomes the error, naming what (and whom) it was about. */
static ok_err check_batch(ok_kmip_client *c, const ok_ttlv_doc *doc, const int *ops, size_t n, const char *about,
                          const ok_ttlv_item **payloads)
{
    const ok_ttlv_item *root = &doc->items[0];
    const ok_ttlv_item *header = ok_ttlv_find(doc, root, T_RESPONSE_HEADER);
    int64_t count = 0;
    if (root->tag != T_RESPONSE_MESSAGE || !header ||
        ok_ttlv_get_num(doc, header, T_BATCH_COUNT, OK_TTLV_INTEGER, &count) != OK_OK)
        return ok_fail(OK_ERR_FORMAT, "KMIP %s on %s: response without a header", op_name(ops[0]), c->server);
    const ok_ttlv_item *item = ok_ttlv_find(doc, root, T_BATCH_ITEM);
    for (size_t i = 0; i < n; i++, item = item ? ok_ttlv_find_next(doc, item) : NULL) {
        int64_t status = -1, op = 0, reason = 0;
        if (!item || ok_ttlv_get_num(doc, item, T_RESULT_STATUS, OK_TTLV_ENUM, &status) != OK_OK)
            return ok_fail(OK_ERR_FORMAT, "KMIP %s on %s: response has %lld batch items, expected %zu",
                           op_name(ops[i]), c->server, (long long)count, n);
        if (ok_ttlv_get_num(doc, item, T_OPERATION, OK_TTLV_ENUM, &op) == OK_OK && op != ops[i])
            return ok_fail(OK_ERR_FORMAT, "KMIP %s on %s: response is for operation %lld", op_name(ops[i]), c->server,
                           (long long)op);
        const uint8_t *id = NULL;
        size_t id_len = 0;
        if (ok_ttlv_get_bytes(doc, item, T_UNIQUE_BATCH_ITEM_ID, OK_TTLV_BYTES, &id, &id_len) == OK_OK &&
            (id_len != 4 || ok_load_u32(id) != i + 1))
            return ok_fail(OK_ERR_FORMAT, "KMIP %s on %s: response batch items out of order", op_name(ops[i]),
                           c->server);
        if (status != 0) {
            char msg[200];
            const char *reason_name = "General Failure";
            (void)ok_ttlv_get_num(doc, item, T_RESULT_REASON, OK_TTLV_ENUM, &reason);
            ok_err rc = status == 1 ? map_reason(ops[i], reason, &reason_name) : OK_ERR_UNSUPPORTED;
            clean_message(doc, item, msg, sizeof msg);
            return ok_fail(rc, "KMIP %s%s%s on %s failed: %s%s%s", op_name(ops[i]), about ? " of " : "",
                           about ? about : "", c->server, status == 1 ? reason_name : "operation pending or undone",
                           msg[0] ? ": " : "", msg);
        }
        payloads[i] = ok_ttlv_find(doc, item, T_RESPONSE_PAYLOAD);
    }
    return OK_OK;
}

/* Sends the request in w's buffer (ops: its batch) and checks the answer. */
static ok_err call(ok_kmip_client *c, ok_ttlv_writer *w, const int *ops, size_t n, const char *about, ok_buf *resp,
                   ok_ttlv_doc *doc, const ok_ttlv_item **payloads)
{
    ok_ttlv_end(w); /* the request message */
    OK_GUARD(ok_ttlv_finish(w));
    OK_GUARD(round_trip(c, ops[0], w->buf, resp, doc));
    ok_err rc = check_batch(c, doc, ops, n, about, payloads);
    if (rc != OK_OK)
        ok_ttlv_doc_free(doc);
    return rc;
}

ok_err ok_kmip_client_connect(ok_kmip_client *c)
{
    if (c->connected)
        return OK_OK;
    OK_GUARD(ok_kmip_tls_open(&c->tls, &c->cfg, c->server));
    c->connected = 1;
    /* Discover Versions in 1.2 (the oldest version offered); the server answers with the offered
     * versions it supports, in its order of preference. */
    ok_buf req, resp;
    ok_buf_init(&req, OK_TTLV_MAX_LEN);
    ok_buf_init(&resp, OK_TTLV_MAX_LEN);
    ok_ttlv_writer w;
    ok_ttlv_writer_init(&w, &req);
    begin_request(&w, 1, 2, 1);
    begin_item(&w, OP_DISCOVER_VERSIONS);
    for (size_t i = 0; i < sizeof VERSIONS / sizeof VERSIONS[0]; i++) {
        if (c->cfg.version_major && (VERSIONS[i][0] != c->cfg.version_major || VERSIONS[i][1] != c->cfg.version_minor))
            continue;
        ok_ttlv_begin(&w, T_PROTOCOL_VERSION);
        ok_ttlv_int(&w, T_PROTOCOL_VERSION_MAJOR, VERSIONS[i][0]);
        ok_ttlv_int(&w, T_PROTOCOL_VERSION_MINOR, VERSIONS[i][1]);
        ok_ttlv_end(&w);
    }
    end_item(&w);
    static const int OPS[] = {OP_DISCOVER_VERSIONS};
    const ok_ttlv_item *payload = NULL;
    ok_ttlv_doc doc = {0};
    ok_err rc = call(c, &w, OPS, 1, NULL, &resp, &doc, &payload);
    c->major = c->minor = 0;
    for (const ok_ttlv_item *v = rc == OK_OK ? ok_ttlv_find(&doc, payload, T_PROTOCOL_VERSION) : NULL; v && !c->major;
         v = ok_ttlv_find_next(&doc, v)) {
        int64_t major = 0, minor = 0;
        if (ok_ttlv_get_num(&doc, v, T_PROTOCOL_VERSION_MAJOR, OK_TTLV_INTEGER, &major) != OK_OK ||
            ok_ttlv_get_num(&doc, v, T_PROTOCOL_VERSION_MINOR, OK_TTLV_INTEGER, &minor) != OK_OK)
            continue;
        for (size_t i = 0; i < sizeof VERSIONS / sizeof VERSIONS[0]; i++)
            if (VERSIONS[i][0] == major && VERSIONS[i][1] == minor &&
                (!c->cfg.version_major || (major == c->cfg.version_major && minor == c->cfg.version_minor))) {
                c->major = (int)major;
                c->minor = (int)minor;
            }
    }
    if (rc == OK_OK && !c->major)
        rc = ok_fail(OK_ERR_UNSUPPORTED, "KMIP server %s supports none of the versions offered (%s)", c->server,
                     c->cfg.version_major ? "as configured" : "1.2, 1.3, 1.4, 2.0");
    ok_ttlv_doc_free(&doc);
    ok_buf_free(&req);
    ok_buf_free(&resp);
    if (rc != OK_OK) {
        ok_kmip_tls_close(&c->tls);
        c->connected = 0;
    }
    return rc;
}

/* ---- Operations --------------------------------------------------------------------------------- */

static int v2(const ok_kmip_client *c)
{
    return c->major >= 2;
}

/* A 1.x Attribute {Attribute Name, Attribute Value ...}: the caller writes the value and closes it. */
static void attr1_begin(ok_ttlv_writer *w, const char *name)
{
    ok_ttlv_begin(w, T_ATTRIBUTE);
    ok_ttlv_text(w, T_ATTRIBUTE_NAME, name, strlen(name));
}

static void write_name(ok_kmip_client *c, ok_ttlv_writer *w, const char *name)
{
    if (!v2(c))
        attr1_begin(w, "Name");
    ok_ttlv_begin(w, v2(c) ? T_NAME : T_ATTRIBUTE_VALUE);
    ok_ttlv_text(w, T_NAME_VALUE, name, strlen(name));
    ok_ttlv_enum(w, T_NAME_TYPE, NAME_TYPE_TEXT);
    ok_ttlv_end(w);
    if (!v2(c))
        ok_ttlv_end(w);
}

/* The request writer, connected first so that the negotiated version shapes the message. */
static ok_err start(ok_kmip_client *c, ok_ttlv_writer *w, ok_buf *req, ok_buf *resp, int batch_count)
{
    ok_buf_init(req, OK_TTLV_MAX_LEN);
    ok_buf_init(resp, OK_TTLV_MAX_LEN);
    ok_ttlv_writer_init(w, req);
    OK_GUARD(ok_kmip_client_connect(c));
    begin_request(w, c->major, c->minor, batch_count);
    return OK_OK;
}

static ok_err copy_uid(const ok_ttlv_doc *doc, const ok_ttlv_item *payload, char uid[OK_KMIP_UID_MAX], const char *op)
{
    ok_err rc = ok_ttlv_get_text(doc, payload, T_UNIQUE_IDENTIFIER, uid, OK_KMIP_UID_MAX);
    if (rc != OK_OK)
        return ok_fail(OK_ERR_FORMAT, "KMIP %s response without a usable Unique Identifier", op);
    return OK_OK;
}

ok_err ok_kmip_locate_name(ok_kmip_client *c, const char *name, char uid[OK_KMIP_UID_MAX])
{
    ok_buf req, resp;
    ok_ttlv_writer w;
    ok_ttlv_doc doc = {0};
    const ok_ttlv_item *payload = NULL;
    static const int OPS[] = {OP_LOCATE};
    char about[200];
    snprintf(about, sizeof about, "name \"%s\"", name);
    ok_err rc = start(c, &w, &req, &resp, 1);
    if (rc == OK_OK) {
        begin_item(&w, OP_LOCATE);
        if (v2(c))
            ok_ttlv_begin(&w, T_ATTRIBUTES);
        write_name(c, &w, name);
        if (v2(c))
            ok_ttlv_end(&w);
        end_item(&w);
        rc = call(c, &w, OPS, 1, about, &resp, &doc, &payload);
    }
    if (rc == OK_OK) {
        const ok_ttlv_item *first = ok_ttlv_find(&doc, payload, T_UNIQUE_IDENTIFIER);
        if (!first)
            rc = ok_fail(OK_ERR_NOT_FOUND, "no key named \"%s\" on KMIP server %s", name, c->server);
        else if (ok_ttlv_find_next(&doc, first))
            rc = ok_fail(OK_ERR_CONFLICT, "several objects are named \"%s\" on KMIP server %s; use uid/UID", name,
                         c->server);
        else
            rc = copy_uid(&doc, payload, uid, "Locate");
    }
    ok_ttlv_doc_free(&doc);
    ok_buf_free(&req);
    ok_buf_free(&resp);
    return rc;
}

/* A Get Attributes batch item asking for the State. */
static void write_get_state(ok_kmip_client *c, ok_ttlv_writer *w, const char *uid, uint32_t index)
{
    begin_item_at(w, OP_GET_ATTRIBUTES, index);
    ok_ttlv_text(w, T_UNIQUE_IDENTIFIER, uid, strlen(uid));
    if (v2(c))
        ok_ttlv_enum(w, T_ATTRIBUTE_REFERENCE, T_STATE);
    else
        ok_ttlv_text(w, T_ATTRIBUTE_NAME, "State", 5);
    end_item(w);
}

/* The State in a Get Attributes response payload. */
static ok_err read_state(ok_kmip_client *c, const ok_ttlv_doc *doc, const ok_ttlv_item *payload, const char *uid,
                         int64_t *state)
{
    ok_err rc = OK_ERR_NOT_FOUND;
    if (v2(c)) {
        rc = ok_ttlv_get_num(doc, ok_ttlv_find(doc, payload, T_ATTRIBUTES), T_STATE, OK_TTLV_ENUM, state);
    } else {
        char name[32];
        for (const ok_ttlv_item *a = ok_ttlv_find(doc, payload, T_ATTRIBUTE); a && rc != OK_OK;
             a = ok_ttlv_find_next(doc, a))
            if (ok_ttlv_get_text(doc, a, T_ATTRIBUTE_NAME, name, sizeof name) == OK_OK && strcmp(name, "State") == 0)
                rc = ok_ttlv_get_num(doc, a, T_ATTRIBUTE_VALUE, OK_TTLV_ENUM, state);
    }
    if (rc != OK_OK)
        return ok_fail(OK_ERR_FORMAT, "KMIP Get Attributes of key %s on %s: no State in the response", uid, c->server);
    return OK_OK;
}

ok_err ok_kmip_get_state(ok_kmip_client *c, const char *uid, int64_t *state)
{
    ok_buf req, resp;
    ok_ttlv_writer w;
    ok_ttlv_doc doc = {0};
    const ok_ttlv_item *payload = NULL;
    static const int OPS[] = {OP_GET_ATTRIBUTES};
    char about[200];
    snprintf(about, sizeof about, "key %s", uid);
    ok_err rc = start(c, &w, &req, &resp, 1);
    if (rc == OK_OK) {
        write_get_state(c, &w, uid, 0);
        rc = call(c, &w, OPS, 1, about, &resp, &doc, &payload);
    }
    if (rc == OK_OK)
        rc = read_state(c, &doc, payload, uid, state);
    ok_ttlv_doc_free(&doc);
    ok_buf_free(&req);
    ok_buf_free(&resp);
    return rc;
}

ok_err ok_kmip_create_aes256(ok_kmip_client *c, const char *name, char uid[OK_KMIP_UID_MAX])
{
    ok_buf req, resp;
    ok_ttlv_writer w;
    ok_ttlv_doc doc = {0};
    const ok_ttlv_item *payloads[2] = {NULL, NULL};
    static const int OPS[] = {OP_CREATE};
    static const int ACTIVATE_OPS[] = {OP_ACTIVATE, OP_GET_ATTRIBUTES};
    ok_err rc = start(c, &w, &req, &resp, 1);
    if (rc == OK_OK) {
        begin_item(&w, OP_CREATE);
        ok_ttlv_enum(&w, T_OBJECT_TYPE, OBJECT_SYMMETRIC_KEY);
        if (v2(c)) {
            ok_ttlv_begin(&w, T_ATTRIBUTES);
            ok_ttlv_enum(&w, T_CRYPTO_ALGORITHM, ALG_AES);
            ok_ttlv_int(&w, T_CRYPTO_LENGTH, 256);
            ok_ttlv_int(&w, T_CRYPTO_USAGE_MASK, USAGE_ENCRYPT_DECRYPT);
        } else {
            ok_ttlv_begin(&w, T_TEMPLATE_ATTRIBUTE);
            attr1_begin(&w, "Cryptographic Algorithm");
            ok_ttlv_enum(&w, T_ATTRIBUTE_VALUE, ALG_AES);
            ok_ttlv_end(&w);
            attr1_begin(&w, "Cryptographic Length");
            ok_ttlv_int(&w, T_ATTRIBUTE_VALUE, 256);
            ok_ttlv_end(&w);
            attr1_begin(&w, "Cryptographic Usage Mask");
            ok_ttlv_int(&w, T_ATTRIBUTE_VALUE, USAGE_ENCRYPT_DECRYPT);
            ok_ttlv_end(&w);
        }
        write_name(c, &w, name);
        ok_ttlv_end(&w);
        end_item(&w);
        rc = call(c, &w, OPS, 1, name, &resp, &doc, payloads);
    }
    if (rc == OK_OK)
        rc = copy_uid(&doc, payloads[0], uid, "Create");
    ok_ttlv_doc_free(&doc);
    /* Activate and read the State back in one request of two batch items (PyKMIP cannot parse an
     * Activate without a Unique Identifier, so the ID placeholder cannot join them to the Create). */
    if (rc == OK_OK) {
        ok_buf_free(&req);
        ok_buf_free(&resp);
        rc = start(c, &w, &req, &resp, 2);
    }
    if (rc == OK_OK) {
        begin_item_at(&w, OP_ACTIVATE, 0);
        ok_ttlv_text(&w, T_UNIQUE_IDENTIFIER, uid, strlen(uid));
        end_item(&w);
        write_get_state(c, &w, uid, 1);
        rc = call(c, &w, ACTIVATE_OPS, 2, name, &resp, &doc, payloads);
    }
    int64_t state = 0;
    if (rc == OK_OK)
        rc = read_state(c, &doc, payloads[1], uid, &state);
    if (rc == OK_OK && state != OK_KMIP_ACTIVE)
        rc = ok_fail(OK_ERR_CONFLICT, "KMIP key %s on %s is %s after Activate", uid, c->server, ok_kmip_state_name(state));
    ok_ttlv_doc_free(&doc);
    ok_buf_free(&req);
    ok_buf_free(&resp);
    return rc;
}

/* Activate, Revoke, Destroy: a Unique Identifier and, for Revoke, a reason. */
static ok_err simple_op(ok_kmip_client *c, int op, const char *uid, int revocation_code)
{
    ok_buf req, resp;
    ok_ttlv_writer w;
    ok_ttlv_doc doc = {0};
    const ok_ttlv_item *payload = NULL;
    char about[200];
    snprintf(about, sizeof about, "key %s", uid);
    ok_err rc = start(c, &w, &req, &resp, 1);
    if (rc == OK_OK) {
        begin_item(&w, op);
        ok_ttlv_text(&w, T_UNIQUE_IDENTIFIER, uid, strlen(uid));
        if (op == OP_REVOKE) {
            ok_ttlv_begin(&w, T_REVOCATION_REASON);
            ok_ttlv_enum(&w, T_REVOCATION_REASON_CODE, (uint32_t)revocation_code);
            ok_ttlv_end(&w);
        }
        end_item(&w);
        rc = call(c, &w, &op, 1, about, &resp, &doc, &payload);
    }
    ok_ttlv_doc_free(&doc);
    ok_buf_free(&req);
    ok_buf_free(&resp);
    return rc;
}

ok_err ok_kmip_activate(ok_kmip_client *c, const char *uid)
{
    return simple_op(c, OP_ACTIVATE, uid, 0);
}

ok_err ok_kmip_revoke(ok_kmip_client *c, const char *uid, int compromised)
{
    return simple_op(c, OP_REVOKE, uid, compromised ? 2 /* Key Compromise */ : 6 /* Cessation of Operation */);
}

ok_err ok_kmip_destroy(ok_kmip_client *c, const char *uid)
{
    return simple_op(c, OP_DESTROY, uid, 0);
}

/* Encrypt or Decrypt: the same request but for the direction and the tag. */
static ok_err crypt(ok_kmip_client *c, int op, const char *uid, ok_kmip_cipher *cp, const uint8_t *in, size_t in_len,
                    ok_buf *out)
{
    ok_buf req, resp;
    ok_ttlv_writer w;
    ok_ttlv_doc doc = {0};
    const ok_ttlv_item *payload = NULL;
    char about[200];
    snprintf(about, sizeof about, "key %s", uid);
    ok_err rc = start(c, &w, &req, &resp, 1);
    if (rc == OK_OK && cp->gcm && c->major == 1 && c->minor < 4)
        rc = ok_fail(OK_ERR_UNSUPPORTED, "KMIP server %s speaks KMIP %d.%d: AES-GCM needs 1.4 or later", c->server,
                     c->major, c->minor);
    if (rc == OK_OK) {
        begin_item(&w, op);
        ok_ttlv_text(&w, T_UNIQUE_IDENTIFIER, uid, strlen(uid));
        ok_ttlv_begin(&w, T_CRYPTO_PARAMETERS);
        ok_ttlv_enum(&w, T_BLOCK_CIPHER_MODE, cp->gcm ? MODE_GCM : MODE_CBC);
        if (!cp->gcm)
            ok_ttlv_enum(&w, T_PADDING_METHOD, PAD_PKCS5);
        ok_ttlv_enum(&w, T_CRYPTO_ALGORITHM, ALG_AES);
        if (cp->gcm)
            ok_ttlv_int(&w, T_TAG_LENGTH, OK_KMIP_TAG_LEN);
        ok_ttlv_end(&w);
        ok_ttlv_bytes(&w, T_DATA, in, in_len);
        ok_ttlv_bytes(&w, T_IV_COUNTER_NONCE, cp->iv, cp->iv_len);
        if (cp->gcm && cp->aad_len)
            ok_ttlv_bytes(&w, T_AEAD_ADDITIONAL_DATA, cp->aad, cp->aad_len);
        if (cp->gcm && op == OP_DECRYPT)
            ok_ttlv_bytes(&w, T_AEAD_TAG, cp->tag, OK_KMIP_TAG_LEN);
        end_item(&w);
        rc = call(c, &w, &op, 1, about, &resp, &doc, &payload);
    }
    const uint8_t *p = NULL;
    size_t len = 0;
    if (rc == OK_OK && ok_ttlv_get_bytes(&doc, payload, T_DATA, OK_TTLV_BYTES, &p, &len) != OK_OK)
        rc = ok_fail(OK_ERR_FORMAT, "KMIP %s of key %s on %s: no Data in the response", op_name(op), uid, c->server);
    if (rc == OK_OK && op == OP_ENCRYPT) {
        const uint8_t *iv = NULL, *tag = NULL;
        size_t iv_len = 0, tag_len = 0;
        if (ok_ttlv_get_bytes(&doc, payload, T_IV_COUNTER_NONCE, OK_TTLV_BYTES, &iv, &iv_len) == OK_OK) {
            if (iv_len != cp->iv_len)
                rc = ok_fail(OK_ERR_FORMAT, "KMIP Encrypt on %s returned a %zu-byte IV", c->server, iv_len);
            else
                memcpy(cp->iv, iv, iv_len);
        }
        if (rc == OK_OK && cp->gcm) {
            if (ok_ttlv_get_bytes(&doc, payload, T_AEAD_TAG, OK_TTLV_BYTES, &tag, &tag_len) != OK_OK ||
                tag_len != OK_KMIP_TAG_LEN)
                rc = ok_fail(OK_ERR_FORMAT, "KMIP Encrypt on %s returned no %d-byte tag", c->server, OK_KMIP_TAG_LEN);
            else
                memcpy(cp->tag, tag, OK_KMIP_TAG_LEN);
        }
    }
    if (rc == OK_OK)
        rc = ok_buf_put(out, p, len);
    ok_ttlv_doc_free(&doc);
    ok_buf_free(&req);
    ok_buf_free(&resp); /* zeroized: a Decrypt response holds the plaintext */
    return rc;
}

ok_err ok_kmip_encrypt(ok_kmip_client *c, const char *uid, ok_kmip_cipher *cp, const uint8_t *in, size_t in_len,
                       ok_buf *out)
{
    return crypt(c, OP_ENCRYPT, uid, cp, in, in_len, out);
}

ok_err ok_kmip_decrypt(ok_kmip_client *c, const char *uid, const ok_kmip_cipher *cp, const uint8_t *in,
                       size_t in_len, ok_buf *out)
{
    ok_kmip_cipher copy = *cp;
    return crypt(c, OP_DECRYPT, uid, &copy, in, in_len, out);
}
