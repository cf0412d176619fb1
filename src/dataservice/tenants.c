/* Tenants: names, their rows (settings, sealed customer credential, current TK generation), and the
 * administrative calls on them: create (a customer key validated first), status, list, set-key and
 * remove-key (re-wrapping only the TK rows: O(1) in objects), and delete (crypto-erase: rows in one
 * transaction, the WAL checkpointed, then the files, then the cache). Owns no key cache or root-key crypto
 * (tenant_keys.c, tenant_rewrap.c, root_keys.c) and no objects (objects.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataservice/ds_keys.h"

int ok_ds_tenant_name_valid(const char *name)
{
    return name != NULL && ok_name_valid(name, OK_DS_TENANT_NAME_MAX, "-");
}

/* ---- rows ------------------------------------------------------------------------------------------------------ */

void ds_tenant_row_clear(ds_tenant_row *r)
{
    if (r == NULL)
        return;
    free(r->customer_uri);
    free(r->cred);
    ok_zeroize(r, sizeof *r);
}

static ok_err row_cb(void *ctx, const ok_val *c, size_t n)
{
    ds_tenant_row *r = ctx;
    if (n != 8 || c[0].type != OK_VAL_TEXT || c[1].type != OK_VAL_TEXT || c[1].len != DS_UUID_LEN ||
        c[2].type != OK_VAL_INT || c[3].type != OK_VAL_INT || c[3].i < OK_DS_KEYS_SERVICE ||
        c[3].i > OK_DS_KEYS_DOUBLE || c[4].type != OK_VAL_INT || c[7].type != OK_VAL_INT || c[7].i < 1 ||
        strlen(c[0].s) > OK_DS_TENANT_NAME_MAX)
        return ok_fail(OK_ERR_FORMAT, "data.db: a tenant row is malformed");
    memcpy(r->name, c[0].s, strlen(c[0].s) + 1);
    memcpy(r->uuid, c[1].s, DS_UUID_LEN + 1);
    r->created = c[2].i;
    r->source = (ok_ds_key_source)c[3].i;
    r->permanent = c[4].i != 0;
    r->generation = (uint64_t)c[7].i;
    if (c[5].type == OK_VAL_TEXT && (r->customer_uri = strdup(c[5].s)) == NULL)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    if (c[6].type == OK_VAL_BLOB && c[6].len > 0) {
        if ((r->cred = malloc(c[6].len)) == NULL)
            return ok_fail(OK_ERR_NOMEM, "out of memory");
        memcpy(r->cred, c[6].b, c[6].len);
        r->cred_len = c[6].len;
    }
    return OK_OK;
}

ok_err ds_tenant_row_load(ok_ds *ds, const char *name, ds_tenant_row *out)
{
    ok_val p[1] = {OK_VTEXT(name)};
    memset(out, 0, sizeof *out);
    ok_err rc = ds->store->vt->query(ds->store,
                                     "SELECT name, uuid, created, source, permanent, customer_uri, customer_cred,"
                                     " tk_generation FROM tenants WHERE name = ?",
                                     p, 1, row_cb, out);
    if (rc == OK_OK && out->name[0] == '\0')
        rc = ok_fail(OK_ERR_NOT_FOUND, "tenant %s not found", name);
    if (rc != OK_OK)
        ds_tenant_row_clear(out);
    return rc;
}

typedef struct {
    char *key_id, *version;
} kid_row;

static ok_err kid_cb(void *ctx, const ok_val *c, size_t n)
{
    kid_row *k = ctx;
    if (n == 2 && c[0].type == OK_VAL_TEXT && c[1].type == OK_VAL_TEXT) {
        k->key_id = strdup(c[0].s);
        k->version = strdup(c[1].s);
    }
    return OK_OK;
}

/* The versioned key id that wraps the current generation ("" when none). */
static ok_err current_kid(ok_ds *ds, const ds_tenant_row *row, char *out, size_t len)
{
    kid_row k = {NULL, NULL};
    ok_val p[2] = {OK_VTEXT(row->name), OK_VINT((int64_t)row->generation)};
    ok_err rc = ds->store->vt->query(ds->store,
                                     "SELECT cust_key_id, cust_version FROM tenant_keys WHERE tenant = ? AND generation = ?",
                                     p, 2, kid_cb, &k);
    out[0] = '\0';
    if (rc == OK_OK && k.key_id != NULL && k.version != NULL)
        snprintf(out, len, "%s%s%s", k.key_id, k.version[0] ? "/" : "", k.version); /* PKCS#11, KMIP: no version */
    free(k.key_id);
    free(k.version);
    return rc;
}

/* ---- calls ------------------------------------------------------------------------------------------------------- */

static ok_err check_name(const char *name)
{
    if (!ok_ds_tenant_name_valid(name))
        return ok_fail(OK_ERR_INVALID_ARG, "invalid tenant name \"%.80s\": use 1 to %d letters, digits and dashes",
                       name ? name : "", OK_DS_TENANT_NAME_MAX);
    return OK_OK;
}

ok_err ok_ds_tenant_get(ok_ds *ds, const char *name, ok_ds_tenant_info *out)
{
    ds_tenant_row row;

    if (ds == NULL || out == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_ds_tenant_get: NULL argument");
    memset(out, 0, sizeof *out);
    if (!ok_ds_tenant_name_valid(name))
        return ok_fail(OK_ERR_NOT_FOUND, "tenant %.80s not found", name ? name : "");
    OK_GUARD(ds_tenant_row_load(ds, name, &row));
    snprintf(out->name, sizeof out->name, "%s", row.name);
    out->created = row.created;
    out->source = row.source;
    out->permanent = row.permanent;
    snprintf(out->customer_uri, sizeof out->customer_uri, "%s", row.customer_uri ? row.customer_uri : "");
    out->tk_generation = row.generation;
    ok_err rc = current_kid(ds, &row, out->customer_kid, sizeof out->customer_kid);
    ds_tenant_row_clear(&row);
    OK_GUARD(rc);
    ds_keys_state(ds, name, out);
    return ds_objects_stats(ds, name, out);
}

static ok_err list_cb(void *ctx, const ok_val *c, size_t n)
{
    char ***names = ((void **)ctx)[0];
    size_t *count = ((void **)ctx)[1];
    if (n != 1 || c[0].type != OK_VAL_TEXT)
        return ok_fail(OK_ERR_FORMAT, "data.db: a tenant row is malformed");
    char **grown = realloc(*names, (*count + 1) * sizeof *grown);
    if (grown == NULL)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    *names = grown;
    if ((grown[*count] = strdup(c[0].s)) == NULL)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    (*count)++;
    return OK_OK;
}

ok_err ok_ds_tenant_list(ok_ds *ds, char ***names, size_t *count)
{
    if (ds == NULL || names == NULL || count == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_ds_tenant_list: NULL argument");
    *names = NULL;
    *count = 0;
    void *ctx[2] = {names, count};
    ok_err rc = ds->store->vt->query(ds->store, "SELECT name FROM tenants ORDER BY name", NULL, 0, list_cb, ctx);
    if (rc != OK_OK) {
        ok_ds_names_free(*names, *count);
        *names = NULL;
        *count = 0;
    }
    return rc;
}

void ok_ds_names_free(char **names, size_t count)
{
    if (names == NULL)
        return;
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
}

static ok_err check_settings(const ok_ds_tenant_settings *s)
{
    if (s != NULL && s->customer == NULL && (s->double_encryption || s->permanent))
        return ok_fail(OK_ERR_INVALID_ARG, "double encryption and permanent need a customer key");
    return OK_OK;
}

ok_err ok_ds_tenant_create(ok_ds *ds, const char *name, const ok_ds_tenant_settings *s, ok_ds_tenant_info *out)
{
    ds_tenant_row row;
    ok_provider *prov = NULL;
    char shown[OK_DS_KEY_URI_MAX + 1];
    ok_err rc;

    if (ds == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_ds_tenant_create: NULL argument");
    OK_GUARD(check_name(name));
    OK_GUARD(check_settings(s));
    if (ds_keys_epoch(ds) == 0)
        return ok_fail(OK_ERR_SEALED, "the vault is sealed");
    rc = ds_tenant_row_load(ds, name, &row);
    ds_tenant_row_clear(&row);
    if (rc == OK_OK)
        return ok_fail(OK_ERR_CONFLICT, "tenant %s exists", name);
    if (rc != OK_ERR_NOT_FOUND)
        return rc;
    memset(&row, 0, sizeof row);
    snprintf(row.name, sizeof row.name, "%s", name);
    row.created = ds_now();
    row.generation = 1;
    row.source = OK_DS_KEYS_SERVICE;
    OK_GUARD(ds_random_hex(row.uuid));
    if (s != NULL && s->customer != NULL) {
        OK_GUARD(ds_cust_validate(ds, s->customer, &prov));
        row.source = s->double_encryption ? OK_DS_KEYS_DOUBLE : OK_DS_KEYS_CUSTOMER;
        row.permanent = s->permanent != 0;
        OK_GUARD_GOTO(rc, ds_cust_public_uri(s->customer->uri, shown, sizeof shown), fail); /* no pin-value */
        row.customer_uri = strdup(shown);
        if (row.customer_uri == NULL) {
            rc = ok_fail(OK_ERR_NOMEM, "out of memory");
            goto fail;
        }
        OK_GUARD_GOTO(rc, ds_cred_seal(ds, row.uuid, s->customer, &row.cred, &row.cred_len), fail);
    }
    OK_GUARD_GOTO(rc, ds_objects_tenant_init(ds, row.uuid), fail);
    rc = ds_keys_create(ds, &row, prov); /* takes prov */
    prov = NULL;
    if (rc != OK_OK) {
        (void)ds_objects_tenant_erase(ds, row.uuid);
        goto fail;
    }
    ds_tenant_row_clear(&row);
    return out != NULL ? ok_ds_tenant_get(ds, name, out) : OK_OK;
fail:
    ok_provider_free(prov);
    ds_tenant_row_clear(&row);
    return rc;
}

ok_err ok_ds_tenant_set_key(ok_ds *ds, const char *name, const ok_ds_tenant_settings *s, ok_ds_tenant_info *out)
{
    ds_tenant_row row;
    ok_provider *prov = NULL;
    uint8_t *cred = NULL;
    size_t cred_len = 0;
    char shown[OK_DS_KEY_URI_MAX + 1];
    ok_err rc;

    if (ds == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_ds_tenant_set_key: NULL argument");
    if (s == NULL || s->customer == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "set-key needs a customer key");
    if (!ok_ds_tenant_name_valid(name))
        return ok_fail(OK_ERR_NOT_FOUND, "tenant %.80s not found", name ? name : "");
    OK_GUARD(ds_tenant_row_load(ds, name, &row));
    OK_GUARD_GOTO(rc, ds_cust_validate(ds, s->customer, &prov), done);
    OK_GUARD_GOTO(rc, ds_cred_seal(ds, row.uuid, s->customer, &cred, &cred_len), done);
    OK_GUARD_GOTO(rc, ds_cust_public_uri(s->customer->uri, shown, sizeof shown), done); /* no pin-value */
    rc = ds_keys_change_root(ds, name, s->double_encryption ? OK_DS_KEYS_DOUBLE : OK_DS_KEYS_CUSTOMER,
                             row.permanent || s->permanent, shown, cred, cred_len, prov);
    prov = NULL;
done:
    ok_provider_free(prov);
    free(cred);
    ds_tenant_row_clear(&row);
    OK_GUARD(rc);
    return out != NULL ? ok_ds_tenant_get(ds, name, out) : OK_OK;
}

ok_err ok_ds_tenant_remove_key(ok_ds *ds, const char *name, ok_ds_tenant_info *out)
{
    ds_tenant_row row;
    ok_err rc = OK_OK;

    if (ds == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_ds_tenant_remove_key: NULL argument");
    if (!ok_ds_tenant_name_valid(name))
        return ok_fail(OK_ERR_NOT_FOUND, "tenant %.80s not found", name ? name : "");
    OK_GUARD(ds_tenant_row_load(ds, name, &row));
    if (row.permanent)
        rc = ok_fail(OK_ERR_CONFLICT, "tenant %s has a permanent customer key: it can be changed, never removed", name);
    else if (row.source != OK_DS_KEYS_SERVICE)
        rc = ds_keys_change_root(ds, name, OK_DS_KEYS_SERVICE, 0, NULL, NULL, 0, NULL);
    ds_tenant_row_clear(&row);
    OK_GUARD(rc);
    return out != NULL ? ok_ds_tenant_get(ds, name, out) : OK_OK;
}

ok_err ok_ds_tenant_delete(ok_ds *ds, const char *name)
{
    ds_tenant_row row;
    ok_val p[1] = {OK_VTEXT(name)};
    static const char *const deletes[] = {
        "DELETE FROM rekey_jobs WHERE tenant = ?",
        "DELETE FROM objects WHERE tenant = ?",
        "DELETE FROM tenant_keys WHERE tenant = ?",
        "DELETE FROM tenants WHERE name = ?",
    };
    ok_err rc = OK_OK;

    if (ds == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_ds_tenant_delete: NULL argument");
    if (!ok_ds_tenant_name_valid(name))
        return ok_fail(OK_ERR_NOT_FOUND, "tenant %.80s not found", name ? name : "");
    OK_GUARD(ds_tenant_row_load(ds, name, &row));
    OK_GUARD_GOTO(rc, ds->store->vt->begin(ds->store), done);
    for (size_t i = 0; i < sizeof deletes / sizeof *deletes && rc == OK_OK; i++)
        rc = ds->store->vt->exec(ds->store, deletes[i], p, 1, NULL);
    if (rc == OK_OK)
        rc = ds->store->vt->commit(ds->store);
    if (rc != OK_OK) {
        ds->store->vt->rollback(ds->store);
        goto done;
    }
    ds_keys_forget(ds, name);
    /* secure_delete zeroed the freed pages; the WAL may still hold copies until it is checkpointed. A busy
     * reader only delays this to a later checkpoint. */
    (void)ds->store->vt->exec(ds->store, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, 0, NULL);
    rc = ds_objects_tenant_erase(ds, row.uuid);
done:
    ds_tenant_row_clear(&row);
    return rc;
}
