/* The data API's object upload: PUT /data/v1/tenants/T/objects/NAME, streamed through the server's
 * ok_http_stream_handler (ok_api_stream) so that a body of any size passes in constant memory. begin()
 * authenticates, authorizes (dataWrite on the tenant), reads Content-Type, Content-Length (absent =
 * chunked, size unknown) and the x-ownkey-meta-* headers and opens the put, or answers at once (the body
 * is then never read); body() seals each piece as it arrives; finish() commits (201, or 200 when the name
 * existed when the upload began) and writes the audit record; release() drops an uncommitted put and
 * audits an upload the client abandoned. Also the same PUT when the server buffered the body (no stream
 * handler configured). Owns nothing of reads or listings (data_objects.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/api/data_api.h"

#define META_PREFIX "x-ownkey-meta-"

/* ---- Starting a put ------------------------------------------------------------------------------ */

/* Content-Length: digits only. UINT64_MAX when absent (a chunked upload). 0, or -1 after a 400. */
static int read_length(ok_api_call *c, uint64_t *out)
{
    const char *v = c->req->header(c->req, "Content-Length");
    *out = UINT64_MAX;
    if (!v)
        return 0;
    uint64_t n = 0;
    const char *p = v;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (n > (UINT64_MAX - 1 - (uint64_t)(*p - '0')) / 10) {
            api_error(c, 400, "BadParameter", "Content-Length is out of range");
            return -1;
        }
        n = n * 10 + (uint64_t)(*p - '0');
    }
    if (p == v || *p) {
        api_error(c, 400, "BadParameter", "Content-Length must be a number of bytes");
        return -1;
    }
    *out = n;
    return 0;
}

int data_meta_collect(void *cls, const char *name, const char *value)
{
    data_meta_list *m = cls;
    if (strncasecmp(name, META_PREFIX, sizeof META_PREFIX - 1) != 0)
        return 0;
    const char *key = name + sizeof META_PREFIX - 1;
    size_t klen = strlen(key);
    if (m->count == OK_DS_META_MAX) {
        m->error = "more than 16 x-ownkey-meta-* headers";
        return 1;
    }
    if (!klen || klen > OK_DS_META_KEY_MAX || strlen(value) > OK_DS_META_VALUE_MAX) {
        m->error = "an x-ownkey-meta-* key must have 1 to 64 characters and its value at most 1024";
        return 1;
    }
    ok_ds_meta *e = &m->items[m->count++];
    for (size_t i = 0; i <= klen; i++)
        e->key[i] = (char)(key[i] >= 'A' && key[i] <= 'Z' ? key[i] - 'A' + 'a' : key[i]);
    memcpy(e->value, value, strlen(value) + 1);
    return 0;
}

/* The user metadata: every x-ownkey-meta-KEY header, KEY lowercased (the data service checks the
 * characters). 0, or -1 after a 400. */
static int read_meta(ok_api_call *c, data_meta_list *m)
{
    m->count = 0;
    m->error = NULL;
    if (c->req->headers)
        c->req->headers(c->req, data_meta_collect, m);
    if (m->error) {
        api_error(c, 400, "BadParameter", "%s", m->error);
        return -1;
    }
    return 0;
}

/* Checks the request and opens the put; 0, or -1 after the error was sent. *replaced: an object of that
 * name existed when the put began (200 rather than 201). */
static int start_put(ok_api_call *c, const char *tenant, const char *object, uint64_t expected, ok_ds_put **out,
                     int *replaced)
{
    *out = NULL;
    const char *type = c->req->header(c->req, "Content-Type");
    data_meta_list meta = {.items = calloc(OK_DS_META_MAX, sizeof *meta.items)};
    if (!meta.items) {
        api_error(c, 500, "InternalError", "out of memory");
        return -1;
    }
    if (read_meta(c, &meta) != 0) {
        free(meta.items);
        return -1;
    }
    ok_ds_object_info old;
    *replaced = ok_ds_object_head(c->api->ds, tenant, object, &old) == OK_OK;
    ok_err rc = ok_ds_put_begin(c->api->ds, tenant, object, type && *type ? type : NULL, meta.items, meta.count, expected,
                                out);
    free(meta.items);
    if (rc != OK_OK) {
        /* Not found here is the tenant's: the object need not exist. */
        data_fail(c, rc, tenant, NULL, NULL);
        return -1;
    }
    return 0;
}

static void commit_put(ok_api_call *c, ok_ds_put *put, int replaced)
{
    ok_ds_object_info info;
    ok_err rc = ok_ds_put_commit(put, &info);
    if (rc != OK_OK) {
        /* OK_ERR_TRUNCATED (fewer bytes than announced) is IncompleteBody: nothing was stored. */
        data_fail(c, rc, c->key_name, NULL, NULL);
        return;
    }
    char etag[40];
    snprintf(etag, sizeof etag, "\"%s\"", info.etag);
    if (ok_http_response_header(c->resp, "ETag", etag) != OK_OK) {
        api_error(c, 500, "InternalError", "cannot build the response headers");
        return;
    }
    api_json(c, replaced ? 200 : 201, data_object_json(&info));
}

/* ---- The buffered PUT (no stream handler) -------------------------------------------------------- */

void data_object_put_buffered(ok_api_call *c, const char *tenant, const char *object)
{
    c->resp->operation = "data.put";
    if (!data_object_name_ok(c, object) || !data_allow(c, tenant, OK_PERM_DATA_WRITE))
        return;
    ok_ds_put *put = NULL;
    int replaced = 0;
    if (start_put(c, tenant, object, c->req->body_len, &put, &replaced) != 0)
        return;
    ok_err rc = c->req->body_len ? ok_ds_put_write(put, c->req->body, c->req->body_len) : OK_OK;
    if (rc != OK_OK) {
        ok_ds_put_abort(put);
        data_fail(c, rc, tenant, NULL, NULL);
        return;
    }
    commit_put(c, put, replaced);
}

/* ---- The streamed PUT ---------------------------------------------------------------------------- */

typedef struct {
    ok_api_call c;              /* req and resp are valid during a call only */
    double started;
    data_path path;             /* owns the tenant and object names the audit record points to */
    ok_ds_put *put;             /* NULL once committed or aborted */
    int replaced;
    int audited;
    ok_err body_err;            /* body()'s failure and its sentence, for finish() */
    char body_msg[OK_DS_REASON_MAX + 1];
    char request_id[160];       /* for the audit of an upload abandoned mid-body (release has no request) */
    char client[80];
} put_state;

static void put_state_free(put_state *st)
{
    if (!st)
        return;
    ok_ds_put_abort(st->put);
    data_path_free(&st->path);
    free(st);
}

/* The record for an upload the client abandoned before its end: nothing was stored. */
static void audit_abandoned(ok_api *api, put_state *st)
{
    ok_audit_record r = {
        .request_id = st->request_id,
        .identity = st->c.authenticated ? st->c.who.name : NULL,
        .client = st->client,
        .operation = "data.put",
        .key_name = st->c.key_name,
        .key_version = st->c.key_version,
        .status = 400,
        .error_code = "IncompleteBody",
        .latency_ms = api_now_ms() - st->started,
    };
    /* Nothing was released or stored, so a failure here has nothing left to refuse. */
    (void)ok_vault_audit(api->vault, &r);
}

static int stream_begin(void *ctx, const ok_http_request *req, ok_http_response *resp, void **state)
{
    ok_api *api = ctx;
    if (strcmp(req->method, "PUT") != 0 || strncmp(req->path, "/data/", 6) != 0)
        return OK_HTTP_STREAM_DECLINE;
    put_state *st = calloc(1, sizeof *st);
    if (!st)
        return OK_HTTP_STREAM_DECLINE; /* the buffered path answers (and fails the same way) */
    ok_err_clear();
    st->started = api_now_ms();
    st->c = (ok_api_call){.api = api, .req = req, .resp = resp};
    if (data_path_parse(req->path, &st->path) != 0 || st->path.kind != DATA_PATH_OBJECT) {
        put_state_free(st);
        return OK_HTTP_STREAM_DECLINE; /* tenant creation and the rest: small JSON bodies */
    }
    snprintf(st->request_id, sizeof st->request_id, "%s", req->request_id ? req->request_id : "");
    snprintf(st->client, sizeof st->client, "%s", req->client ? req->client : "");
    ok_api_call *c = &st->c;
    resp->operation = "data.put";
    uint64_t expected = UINT64_MAX;
    if (!api->ds)
        api_error(c, 404, "NotFound", "the data API is not served here: this node runs without the data role");
    else if (api_authenticate(c) && data_object_name_ok(c, st->path.object) &&
             data_allow(c, st->path.tenant, OK_PERM_DATA_WRITE) && read_length(c, &expected) == 0 &&
             start_put(c, st->path.tenant, st->path.object, expected, &st->put, &st->replaced) == 0) {
        c->req = NULL;
        c->resp = NULL;
        *state = st;
        return OK_HTTP_STREAM_ACCEPT;
    }
    api_audit(c, st->started);
    put_state_free(st);
    return OK_HTTP_STREAM_ANSWER;
}

static ok_err stream_body(void *ctx, void *state, const uint8_t *data, size_t len)
{
    (void)ctx;
    put_state *st = state;
    ok_err rc = ok_ds_put_write(st->put, data, len);
    if (rc != OK_OK) {
        /* Other requests may run on this thread before finish(): keep the sentence. */
        st->body_err = rc;
        snprintf(st->body_msg, sizeof st->body_msg, "%s", ok_err_message());
    }
    return rc;
}

static void stream_finish(void *ctx, void *state, ok_err failed, const ok_http_request *req, ok_http_response *resp)
{
    (void)ctx;
    put_state *st = state;
    ok_api_call *c = &st->c;
    c->req = req;
    c->resp = resp;
    resp->operation = "data.put";
    ok_err_clear();
    if (failed != OK_OK) {
        ok_ds_put_abort(st->put);
        st->put = NULL;
        data_fail(c, failed, st->path.tenant, NULL, failed == st->body_err ? st->body_msg : NULL);
    } else {
        ok_ds_put *put = st->put;
        st->put = NULL; /* freed by the commit, whatever its outcome */
        commit_put(c, put, st->replaced);
    }
    api_audit(c, st->started);
    st->audited = 1;
    c->req = NULL;
    c->resp = NULL;
}

static void stream_release(void *ctx, void *state)
{
    put_state *st = state;
    if (!st)
        return;
    ok_ds_put_abort(st->put);
    st->put = NULL;
    if (!st->audited)
        audit_abandoned(ctx, st);
    put_state_free(st);
}

const ok_http_stream_handler ok_api_stream = {
    .begin = stream_begin,
    .body = stream_body,
    .finish = stream_finish,
    .release = stream_release,
};
