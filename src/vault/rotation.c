/* Rotation policies and the scheduler's tick. A policy is kept as JSON in keys.rotation_policy:
 *   {"actions":[{"action":"rotate"|"notify","after_create":s | "before_expiry":s}...],
 *    "expiry_time":s, "created":t, "updated":t}
 * The tick applies every due action of every live key's latest version: rotate (once per key and tick) or
 * notify (recorded once per version and action in key_notifications), each audited as identity
 * "scheduler". Owns no rotation itself (key_lifecycle.c) and no audit lines (audit.c). */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "vault/keys_internal.h"
#include "vault/modules.h"

#define POLICY_TEXT_MAX 4096

/* ---- the JSON column ---------------------------------------------------------------------------------- */

static ok_err check_policy(const ok_rotation_policy *p)
{
    if (p->count > OK_ROTATION_MAX_ACTIONS)
        return ok_fail(OK_ERR_INVALID_ARG, "a rotation policy has at most %d lifetime actions",
                       OK_ROTATION_MAX_ACTIONS);
    if (p->expiry_time < 0)
        return ok_fail(OK_ERR_INVALID_ARG, "expiry_time must not be negative");
    for (size_t i = 0; i < p->count; i++) {
        const ok_lifetime_action *a = &p->actions[i];
        if (a->action != OK_ROTATION_ROTATE && a->action != OK_ROTATION_NOTIFY)
            return ok_fail(OK_ERR_INVALID_ARG, "lifetime action %zu: the action is Rotate or Notify", i + 1);
        if (a->after_create < 0 || a->before_expiry < 0 || (a->after_create > 0) == (a->before_expiry > 0))
            return ok_fail(OK_ERR_INVALID_ARG,
                           "lifetime action %zu needs exactly one trigger (timeAfterCreate or timeBeforeExpiry) of "
                           "more than 0 seconds",
                           i + 1);
    }
    return OK_OK;
}

static ok_err policy_to_json(const ok_rotation_policy *p, char **text)
{
    json_t *root = json_object(), *actions = json_array();
    ok_err rc = OK_OK;

    *text = NULL;
    if (root == NULL || actions == NULL || json_object_set(root, "actions", actions) != 0)
        goto nomem;
    for (size_t i = 0; i < p->count; i++) {
        const ok_lifetime_action *a = &p->actions[i];
        json_t *item = a->after_create > 0
                           ? json_pack("{s:s, s:I}", "action", a->action == OK_ROTATION_ROTATE ? "rotate" : "notify",
                                       "after_create", (json_int_t)a->after_create)
                           : json_pack("{s:s, s:I}", "action", a->action == OK_ROTATION_ROTATE ? "rotate" : "notify",
                                       "before_expiry", (json_int_t)a->before_expiry);
        if (item == NULL || json_array_append_new(actions, item) != 0)
            goto nomem;
    }
    if (json_object_set_new(root, "expiry_time", json_integer(p->expiry_time)) != 0 ||
        json_object_set_new(root, "created", json_integer(p->created)) != 0 ||
        json_object_set_new(root, "updated", json_integer(p->updated)) != 0)
        goto nomem;
    *text = json_dumps(root, JSON_COMPACT);
    if (*text == NULL)
        goto nomem;
    goto done;
nomem:
    rc = ok_fail(OK_ERR_NOMEM, "rotation policy");
done:
    json_decref(actions);
    json_decref(root);
    return rc;
}

static ok_err policy_from_json(const char *text, ok_rotation_policy *p)
{
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, NULL), *actions, *item;
    json_int_t expiry = 0, created = 0, updated = 0;
    size_t i;
    ok_err rc = OK_OK;

    memset(p, 0, sizeof *p);
    if (root == NULL || json_unpack(root, "{s:o, s:I, s:I, s:I}", "actions", &actions, "expiry_time", &expiry,
                                    "created", &created, "updated", &updated) != 0 ||
        !json_is_array(actions) || json_array_size(actions) > OK_ROTATION_MAX_ACTIONS) {
        rc = ok_fail(OK_ERR_FORMAT, "a stored rotation policy is malformed");
        goto done;
    }
    json_array_foreach(actions, i, item) {
        const char *action = NULL;
        json_int_t after = 0, before = 0;
        if (json_unpack(item, "{s:s, s?I, s?I}", "action", &action, "after_create", &after, "before_expiry",
                        &before) != 0) {
            rc = ok_fail(OK_ERR_FORMAT, "a stored rotation policy is malformed");
            goto done;
        }
        p->actions[i].action = strcmp(action, "rotate") == 0 ? OK_ROTATION_ROTATE : OK_ROTATION_NOTIFY;
        p->actions[i].after_create = after;
        p->actions[i].before_expiry = before;
        p->count++;
    }
    p->expiry_time = expiry;
    p->created = created;
    p->updated = updated;
    rc = check_policy(p);
    if (rc != OK_OK)
        rc = ok_fail(OK_ERR_FORMAT, "a stored rotation policy is malformed");
done:
    json_decref(root);
    return rc;
}

typedef struct {
    int live;
    char *text;
} policy_row;

static ok_err policy_cb(void *ctx, const ok_val *cols, size_t n)
{
    policy_row *pr = ctx;

    if (n != 2 || cols[0].type != OK_VAL_INT)
        return ok_fail(OK_ERR_FORMAT, "a stored key row is malformed");
    pr->live = cols[0].i == 0;
    if (cols[1].type == OK_VAL_TEXT && (pr->text = strdup(cols[1].s)) == NULL)
        return ok_fail(OK_ERR_NOMEM, "rotation policy");
    return OK_OK;
}

/* The policy of a live key (count 0 and created 0 when none was set). */
static ok_err read_policy(ok_store *s, const char *name, ok_rotation_policy *out)
{
    policy_row pr = {0, NULL};
    ok_val p[1] = {OK_VTEXT(name)};
    ok_err rc;

    memset(out, 0, sizeof *out);
    OK_GUARD(s->vt->query(s, "SELECT deleted, rotation_policy FROM keys WHERE name = ?", p, 1, policy_cb, &pr));
    if (!pr.live)
        rc = ok_fail(OK_ERR_NOT_FOUND, "key \"%s\" not found", name);
    else
        rc = pr.text != NULL ? policy_from_json(pr.text, out) : OK_OK;
    free(pr.text);
    return rc;
}

ok_err ok_rotation_expiry(ok_store *s, const char *name, int64_t *expiry_time)
{
    ok_rotation_policy p;

    *expiry_time = 0;
    OK_GUARD(read_policy(s, name, &p));
    *expiry_time = p.expiry_time;
    return OK_OK;
}

/* ---- get and set ---------------------------------------------------------------------------------------- */

ok_err ok_vault_rotation_policy_get(ok_vault *v, const char *name, ok_rotation_policy *out)
{
    ok_err rc;

    if (v == NULL || out == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_vault_rotation_policy_get: NULL argument");
    memset(out, 0, sizeof *out);
    OK_GUARD(ok_key_check_name(name));
    OK_GUARD(ok_seal_read_begin(v));
    rc = read_policy(v->store, name, out);
    ok_seal_read_end(v);
    return rc;
}

static ok_err set_locked(ok_vault *v, const char *name, const ok_rotation_policy *p, ok_rotation_policy *out)
{
    ok_store *s = v->store;
    ok_rotation_policy cur, next = *p;
    char *text = NULL;
    ok_err rc;

    OK_GUARD(s->vt->begin(s));
    OK_GUARD_GOTO(rc, read_policy(s, name, &cur), fail);
    next.updated = ok_vault_now();
    next.created = cur.created != 0 ? cur.created : next.updated;
    OK_GUARD_GOTO(rc, policy_to_json(&next, &text), fail);
    ok_val q[2] = {OK_VTEXT(text), OK_VTEXT(name)};
    OK_GUARD_GOTO(rc, s->vt->exec(s, "UPDATE keys SET rotation_policy = ? WHERE name = ?", q, 2, NULL), fail);
    OK_GUARD_GOTO(rc, s->vt->commit(s), fail);
    free(text);
    if (out != NULL)
        *out = next;
    return OK_OK;
fail:
    s->vt->rollback(s);
    free(text);
    return rc;
}

ok_err ok_vault_rotation_policy_set(ok_vault *v, const char *name, const ok_rotation_policy *p,
                                    ok_rotation_policy *out)
{
    ok_err rc;

    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (v == NULL || p == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_vault_rotation_policy_set: NULL argument");
    OK_GUARD(ok_key_check_name(name));
    OK_GUARD(check_policy(p));
    OK_GUARD(ok_seal_read_begin(v));
    rc = set_locked(v, name, p, out);
    ok_seal_read_end(v);
    return rc;
}

/* ---- the tick ------------------------------------------------------------------------------------------------ */

typedef struct {
    char name[OK_KEY_NAME_MAX + 1];
    char version[OK_KEY_VERSION_LEN + 1];
    const char *operation; /* "rotate" or "notify" */
} tick_event;

typedef struct {
    char (*names)[OK_KEY_NAME_MAX + 1];
    size_t count, cap;
    tick_event *events;
    size_t nevents, events_cap;
} tick_state;

static ok_err name_cb(void *ctx, const ok_val *cols, size_t n)
{
    tick_state *ts = ctx;

    if (n != 1 || cols[0].type != OK_VAL_TEXT || cols[0].len > OK_KEY_NAME_MAX)
        return ok_fail(OK_ERR_FORMAT, "a stored key row is malformed");
    if (ts->count == ts->cap) {
        size_t cap = ts->cap ? ts->cap * 2 : 64;
        void *grown = realloc(ts->names, cap * sizeof *ts->names);
        if (grown == NULL)
            return ok_fail(OK_ERR_NOMEM, "rotation tick");
        ts->names = grown;
        ts->cap = cap;
    }
    memcpy(ts->names[ts->count++], cols[0].s, cols[0].len + 1);
    return OK_OK;
}

static ok_err add_event(tick_state *ts, const char *name, const char *version, const char *operation)
{
    if (ts->nevents == ts->events_cap) {
        size_t cap = ts->events_cap ? ts->events_cap * 2 : 16;
        void *grown = realloc(ts->events, cap * sizeof *ts->events);
        if (grown == NULL)
            return ok_fail(OK_ERR_NOMEM, "rotation tick");
        ts->events = grown;
        ts->events_cap = cap;
    }
    tick_event *e = &ts->events[ts->nevents++];
    memcpy(e->name, name, strlen(name) + 1);
    memcpy(e->version, version, sizeof e->version);
    e->operation = operation;
    return OK_OK;
}

static int action_due(const ok_lifetime_action *a, const ok_key_info *latest, int64_t now, int64_t *due)
{
    if (a->after_create > 0)
        *due = latest->created + a->after_create;
    else if (latest->exp != 0)
        *due = latest->exp - a->before_expiry;
    else
        return 0;
    return *due <= now;
}

/* One key: records due notifications, then rotates once if any Rotate action is due. */
static ok_err tick_key(ok_vault *v, const char *name, int64_t now, tick_state *ts, unsigned *rotated,
                       unsigned *notified)
{
    ok_rotation_policy p;
    ok_key_info latest, fresh;
    int rotate = 0;
    int64_t due = 0, changes = 0;
    ok_err rc = OK_OK;

    OK_GUARD(read_policy(v->store, name, &p));
    OK_GUARD(ok_key_load(v, OK_KEYS_LIVE, name, NULL, &latest));
    for (size_t i = 0; i < p.count && rc == OK_OK; i++) {
        if (!action_due(&p.actions[i], &latest, now, &due))
            continue;
        if (p.actions[i].action == OK_ROTATION_ROTATE) {
            rotate = 1;
            continue;
        }
        ok_val q[5] = {OK_VTEXT(name), OK_VTEXT(latest.version), OK_VINT((int64_t)i), OK_VINT(due), OK_VINT(now)};
        rc = v->store->vt->exec(v->store,
                                "INSERT OR IGNORE INTO key_notifications(name, version, action, due, recorded) "
                                "VALUES(?, ?, ?, ?, ?)",
                                q, 5, &changes);
        if (rc == OK_OK && changes == 1) {
            (*notified)++;
            rc = add_event(ts, name, latest.version, "notify");
        }
    }
    if (rc == OK_OK && rotate) {
        rc = ok_key_rotate_locked(v, name, &fresh);
        if (rc == OK_OK) {
            (*rotated)++;
            rc = add_event(ts, name, fresh.version, "rotate");
            ok_key_info_clear(&fresh);
        }
    }
    ok_key_info_clear(&latest);
    return rc;
}

/* Audits what the tick did, after the seal lock is released. */
static ok_err audit_events(ok_vault *v, const tick_state *ts)
{
    for (size_t i = 0; i < ts->nevents; i++) {
        ok_audit_record r = {
            .request_id = "scheduler",
            .identity = "scheduler",
            .client = "internal",
            .operation = ts->events[i].operation,
            .key_name = ts->events[i].name,
            .key_version = ts->events[i].version,
            .status = 200,
        };
        OK_GUARD(ok_vault_audit(v, &r));
    }
    return OK_OK;
}

ok_err ok_vault_rotation_tick(ok_vault *v, int64_t now, unsigned *rotated, unsigned *notified)
{
    tick_state ts;
    unsigned r = 0, n = 0;
    ok_err rc, first = OK_OK;

    if (v == NULL)
        return ok_fail(OK_ERR_INVALID_ARG, "ok_vault_rotation_tick: NULL vault");
    memset(&ts, 0, sizeof ts);
    OK_GUARD(ok_seal_read_begin(v));
    rc = v->store->vt->query(v->store,
                             "SELECT name FROM keys WHERE deleted = 0 AND rotation_policy IS NOT NULL ORDER BY name",
                             NULL, 0, name_cb, &ts);
    /* One key's failure (say, an imported size that cannot be generated) does not stop the others. */
    for (size_t i = 0; rc == OK_OK && i < ts.count; i++) {
        ok_err krc = tick_key(v, ts.names[i], now, &ts, &r, &n);
        if (krc != OK_OK && first == OK_OK)
            first = krc;
    }
    ok_seal_read_end(v);
    if (rc == OK_OK)
        rc = audit_events(v, &ts);
    if (rc == OK_OK)
        rc = first;
    free(ts.names);
    free(ts.events);
    if (rotated != NULL)
        *rotated = r;
    if (notified != NULL)
        *notified = n;
    return rc;
}
