/* Listing with paging: live keys (the latest version of each, by name), the versions of one key (by
 * creation), and deleted keys (by name). A page asks for max + 1 rows to learn whether another follows;
 * the continuation handed out as `next` is the last item's name (key lists) or the last version's ordinal
 * in decimal (version lists), and one that does not have that form is OK_ERR_INVALID_ARG. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vault/keys_internal.h"

#define LATEST_JOIN                                                                                  \
    " FROM keys k JOIN key_versions v ON v.name = k.name"                                            \
    " AND v.ordinal = (SELECT max(ordinal) FROM key_versions WHERE name = k.name)"

typedef struct {
    ok_key_page *page;
    size_t cap;
    int64_t last_ordinal;
} page_ctx;

static ok_err page_row(void *ctx, const ok_val *cols, size_t n)
{
    page_ctx *pc = ctx;
    int64_t ordinal = 0;

    if (pc->page->count >= pc->cap)
        return OK_OK;
    OK_GUARD(ok_key_row_to_info(cols, n, &pc->page->items[pc->page->count], &ordinal));
    pc->page->count++;
    if (pc->page->count < pc->cap)
        pc->last_ordinal = ordinal;
    return OK_OK;
}

static ok_err page_size(size_t max, size_t *size)
{
    if (max > OK_KEYS_PAGE_MAX)
        return ok_fail(OK_ERR_INVALID_ARG, "a page holds at most %d items", OK_KEYS_PAGE_MAX);
    *size = max == 0 ? OK_KEYS_PAGE_DEFAULT : max;
    return OK_OK;
}

/* Runs a page query (whose last two parameters are the continuation and the row limit) and sets next. */
static ok_err run_page(ok_vault *v, const char *sql, ok_val *params, size_t nparams, size_t max, int by_ordinal,
                       ok_key_page *out)
{
    page_ctx pc = {out, max + 1, 0};
    char num[24];
    ok_err rc;

    out->items = calloc(max + 1, sizeof *out->items);
    if (out->items == NULL)
        return ok_fail(OK_ERR_NOMEM, "key page");
    params[nparams - 1] = OK_VINT((int64_t)max + 1);
    rc = v->store->vt->query(v->store, sql, params, nparams, page_row, &pc);
    if (rc != OK_OK) {
        ok_key_page_clear(out);
        return rc;
    }
    if (out->count <= max)
        return OK_OK;
    ok_key_info_clear(&out->items[max]); /* the probe row */
    out->count = max;
    if (by_ordinal) {
        snprintf(num, sizeof num, "%lld", (long long)pc.last_ordinal);
        out->next = strdup(num);
    } else {
        out->next = strdup(out->items[max - 1].name);
    }
    if (out->next == NULL) {
        ok_key_page_clear(out);
        return ok_fail(OK_ERR_NOMEM, "key page");
    }
    return OK_OK;
}

static ok_err name_continuation(const char *after)
{
    if (after == NULL)
        return OK_OK;
    if (ok_key_check_name(after) != OK_OK)
        return ok_fail(OK_ERR_INVALID_ARG, "malformed continuation token");
    return OK_OK;
}

/* Decimal 1..2^53 without leading zeros. */
static ok_err ordinal_continuation(const char *after, int64_t *ordinal)
{
    size_t n;

    *ordinal = 0;
    if (after == NULL)
        return OK_OK;
    n = strlen(after);
    if (n == 0 || n > 16 || after[0] == '0')
        return ok_fail(OK_ERR_INVALID_ARG, "malformed continuation token");
    for (size_t i = 0; i < n; i++) {
        if (after[i] < '0' || after[i] > '9')
            return ok_fail(OK_ERR_INVALID_ARG, "malformed continuation token");
        *ordinal = *ordinal * 10 + (after[i] - '0');
    }
    if (*ordinal > ((int64_t)1 << 53))
        return ok_fail(OK_ERR_INVALID_ARG, "malformed continuation token");
    return OK_OK;
}

static ok_err list_by_name(ok_vault *v, int deleted, const char *after, size_t max, ok_key_page *out)
{
    static const char live_sql[] =
        "SELECT " OK_KEY_COLS LATEST_JOIN " WHERE k.deleted = 0 AND k.name > ? ORDER BY k.name LIMIT ?";
    static const char deleted_sql[] =
        "SELECT " OK_KEY_COLS LATEST_JOIN " WHERE k.deleted != 0 AND k.name > ? ORDER BY k.name LIMIT ?";
    ok_val p[2] = {OK_VTEXT(after != NULL ? after : ""), OK_VNULL};
    size_t size = 0;
    ok_err rc;

    if (out == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "key list: NULL argument");
    memset(out, 0, sizeof *out);
    if (v == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "key list: NULL argument");
    OK_GUARD(page_size(max, &size));
    OK_GUARD(name_continuation(after));
    OK_GUARD(ok_seal_read_begin(v));
    rc = run_page(v, deleted ? deleted_sql : live_sql, p, 2, size, 0, out);
    ok_seal_read_end(v);
    return rc;
}

ok_err ok_vault_key_list(ok_vault *v, const char *after, size_t max, ok_key_page *out)
{
    return list_by_name(v, 0, after, max, out);
}

ok_err ok_vault_deleted_list(ok_vault *v, const char *after, size_t max, ok_key_page *out)
{
    return list_by_name(v, 1, after, max, out);
}

static ok_err versions_locked(ok_vault *v, const char *name, int64_t after, size_t size, ok_key_page *out)
{
    int exists = 0, deleted = 0;
    ok_val p[3] = {OK_VTEXT(name), OK_VINT(after), OK_VNULL};

    OK_GUARD(ok_key_name_state(v->store, name, &exists, &deleted));
    if (!exists || deleted)
        return ok_fail(OK_ERR_NOT_FOUND, "key \"%s\" not found", name);
    return run_page(v,
                    "SELECT " OK_KEY_COLS " FROM key_versions v JOIN keys k ON k.name = v.name"
                    " WHERE v.name = ? AND k.deleted = 0 AND v.ordinal > ? ORDER BY v.ordinal LIMIT ?",
                    p, 3, size, 1, out);
}

ok_err ok_vault_key_versions(ok_vault *v, const char *name, const char *after, size_t max, ok_key_page *out)
{
    int64_t ordinal = 0;
    size_t size = 0;
    ok_err rc;

    if (out == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_vault_key_versions: NULL argument");
    memset(out, 0, sizeof *out);
    if (v == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_vault_key_versions: NULL argument");
    OK_GUARD(ok_key_check_name(name));
    OK_GUARD(page_size(max, &size));
    OK_GUARD(ordinal_continuation(after, &ordinal));
    OK_GUARD(ok_seal_read_begin(v));
    rc = versions_locked(v, name, ordinal, size, out);
    ok_seal_read_end(v);
    return rc;
}
