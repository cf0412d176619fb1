/* The response a handler fills: extra headers (names static, values copied) and the body buffer, plus
 * the Azure-shaped error body the server itself answers with (413, 405, 400, 500). Knows nothing of
 * libmicrohttpd. */
#include <stdlib.h>
#include <string.h>

#include "http/server_internal.h"

ok_err ok_http_response_header(ok_http_response *r, const char *name, const char *value)
{
    if (!r || !name || !value || !*name)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_http_response_header: missing argument");
    if (r->header_count == OK_HTTP_MAX_HEADERS)
        return ok_fail(OK_ERR_LIMIT, "more than %d response headers", OK_HTTP_MAX_HEADERS);
    /* A CR or LF would let a value start a header of its own. */
    if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n"))
        return ok_fail(OK_ERR_INVALID_ARG, "response header %s: line break in the name or value", name);
    char *copy = strdup(value);
    if (!copy)
        return ok_fail(OK_ERR_NOMEM, "cannot copy a response header");
    r->header_names[r->header_count] = name;
    r->header_values[r->header_count] = copy;
    r->header_count++;
    return OK_OK;
}

void ok_http_response_free(ok_http_response *r)
{
    if (!r)
        return;
    ok_buf_free(&r->body);
    for (size_t i = 0; i < r->header_count; i++) {
        free(r->header_values[i]);
        r->header_values[i] = NULL;
        r->header_names[i] = NULL;
    }
    r->header_count = 0;
}

ok_err ok_http_error_body(ok_http_response *r, int status, const char *code, const char *message)
{
    static const char PREFIX[] = "{\"error\":{\"code\":\"", MIDDLE[] = "\",\"message\":\"", SUFFIX[] = "\"}}";
    r->status = status;
    r->content_type = NULL;
    ok_buf_reset(&r->body);
    OK_GUARD(ok_buf_put(&r->body, PREFIX, sizeof PREFIX - 1));
    OK_GUARD(ok_buf_put(&r->body, code, strlen(code)));
    OK_GUARD(ok_buf_put(&r->body, MIDDLE, sizeof MIDDLE - 1));
    OK_GUARD(ok_buf_put(&r->body, message, strlen(message)));
    return ok_buf_put(&r->body, SUFFIX, sizeof SUFFIX - 1);
}
