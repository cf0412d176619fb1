/* PKCS#11 plumbing for the pkcs11 provider: loading modules (dlopen, C_GetFunctionList, C_Initialize with
 * CKF_OS_LOCKING_OK; refcounted per path), the CK_RV -> ok_err mapping, and tokens: the slot found by
 * label/serial, one login per token, a pool of sessions so concurrent wraps do not serialise, and the key
 * objects found by label/id and class. A token that was removed, re-inserted or logged out is reconnected
 * on the next call (new sessions, new login with the PIN re-read, objects found again); a "keyless" token
 * (HSM-backed vault keys) logs in without looking for a key. Owns no mechanism: pkcs11_provider.c does the
 * wrapping, pkcs11_hsm.c the vault's HSM keys. Never logs or reports the PIN. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "providers/pkcs11_internal.h"

/* ---- Modules ---------------------------------------------------------------------------------------- */
struct ok_p11_module {
    struct ok_p11_module *next;
    char *path;
    void *dl;
    CK_FUNCTION_LIST *f;
    int owns_init; /* this process's C_Initialize succeeded (not CKR_CRYPTOKI_ALREADY_INITIALIZED) */
    unsigned refs;
    pthread_rwlock_t lock; /* read: calls into the module; write: re-initialization */
    unsigned epoch;        /* re-initializations so far */
    struct timespec last_reinit;
};

static pthread_mutex_t modules_mu = PTHREAD_MUTEX_INITIALIZER;
static ok_p11_module *modules;

static CK_RV initialize(CK_FUNCTION_LIST *f)
{
    CK_C_INITIALIZE_ARGS args;
    memset(&args, 0, sizeof args);
    args.flags = CKF_OS_LOCKING_OK;
    return f->C_Initialize(&args);
}

ok_err ok_p11_module_get(const char *path, ok_p11_module **out)
{
    pthread_mutex_lock(&modules_mu);
    for (ok_p11_module *m = modules; m; m = m->next) {
        if (strcmp(m->path, path) == 0) {
            m->refs++;
            pthread_mutex_unlock(&modules_mu);
            *out = m;
            return OK_OK;
        }
    }
    ok_err rc = OK_OK;
    ok_p11_module *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(path))) {
        rc = ok_fail(OK_ERR_NOMEM, "out of memory");
        goto fail;
    }
    m->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!m->dl) {
        rc = ok_fail(OK_ERR_IO, "cannot load the PKCS#11 module %s: %s", path, dlerror());
        goto fail;
    }
    CK_C_GetFunctionList get_list;
    *(void **)&get_list = dlsym(m->dl, "C_GetFunctionList");
    CK_RV rv = get_list ? get_list(&m->f) : CKR_GENERAL_ERROR;
    if (rv != CKR_OK || !m->f) {
        rc = ok_fail(OK_ERR_IO, "%s is not a PKCS#11 module (no usable C_GetFunctionList)", path);
        goto fail;
    }
    rv = initialize(m->f);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        rc = ok_p11_fail(rv, "C_Initialize");
        goto fail;
    }
    m->owns_init = rv == CKR_OK;
    m->refs = 1;
    pthread_rwlock_init(&m->lock, NULL);
    m->next = modules;
    modules = m;
    pthread_mutex_unlock(&modules_mu);
    *out = m;
    return OK_OK;
fail:
    pthread_mutex_unlock(&modules_mu);
    if (m && m->dl)
        dlclose(m->dl);
    if (m)
        free(m->path);
    free(m);
    return rc;
}

void ok_p11_module_put(ok_p11_module *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&modules_mu);
    if (--m->refs > 0) {
        pthread_mutex_unlock(&modules_mu);
        return;
    }
    for (ok_p11_module **pp = &modules; *pp; pp = &(*pp)->next) {
        if (*pp == m) {
            *pp = m->next;
            break;
        }
    }
    if (m->owns_init)
        m->f->C_Finalize(NULL);
    dlclose(m->dl);
    pthread_mutex_unlock(&modules_mu);
    pthread_rwlock_destroy(&m->lock);
    free(m->path);
    free(m);
}

CK_FUNCTION_LIST *ok_p11_module_functions(const ok_p11_module *m) { return m->f; }

void ok_p11_module_enter(ok_p11_module *m, unsigned *epoch)
{
    pthread_rwlock_rdlock(&m->lock);
    *epoch = m->epoch;
}

void ok_p11_module_leave(ok_p11_module *m) { pthread_rwlock_unlock(&m->lock); }

void ok_p11_module_reinit(ok_p11_module *m, unsigned seen_epoch)
{
    if (!m->owns_init)
        return;
    pthread_rwlock_wrlock(&m->lock);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double since = (double)(now.tv_sec - m->last_reinit.tv_sec) + (now.tv_nsec - m->last_reinit.tv_nsec) / 1e9;
    if (m->epoch == seen_epoch && (m->epoch == 0 || since >= 1.0)) {
        m->f->C_Finalize(NULL);
        CK_RV rv = initialize(m->f);
        if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED)
            m->owns_init = 0; /* cannot happen with a sane module; calls will then fail with a clear error */
        m->epoch++;
        m->last_reinit = now;
    }
    pthread_rwlock_unlock(&m->lock);
}

/* ---- Errors ----------------------------------------------------------------------------------------- */
static const struct {
    CK_RV rv;
    const char *name;
    ok_err err;
    const char *meaning;
} RV_TABLE[] = {
    {CKR_TOKEN_NOT_PRESENT, "CKR_TOKEN_NOT_PRESENT", OK_ERR_IO, "token not present"},
    {CKR_DEVICE_REMOVED, "CKR_DEVICE_REMOVED", OK_ERR_IO, "token not present"},
    {CKR_SESSION_HANDLE_INVALID, "CKR_SESSION_HANDLE_INVALID", OK_ERR_IO, "token not present"},
    {CKR_SESSION_CLOSED, "CKR_SESSION_CLOSED", OK_ERR_IO, "token not present"},
    {CKR_SLOT_ID_INVALID, "CKR_SLOT_ID_INVALID", OK_ERR_IO, "token not present"},
    {CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR", OK_ERR_IO, "device error"},
    {CKR_TOKEN_NOT_RECOGNIZED, "CKR_TOKEN_NOT_RECOGNIZED", OK_ERR_IO, "token not recognized"},
    {CKR_PIN_INCORRECT, "CKR_PIN_INCORRECT", OK_ERR_FORBIDDEN, "PIN refused"},
    {CKR_PIN_EXPIRED, "CKR_PIN_EXPIRED", OK_ERR_FORBIDDEN, "PIN refused (expired)"},
    {CKR_PIN_LOCKED, "CKR_PIN_LOCKED", OK_ERR_FORBIDDEN, "PIN refused (locked)"},
    {CKR_PIN_INVALID, "CKR_PIN_INVALID", OK_ERR_FORBIDDEN, "PIN refused"},
    {CKR_PIN_LEN_RANGE, "CKR_PIN_LEN_RANGE", OK_ERR_FORBIDDEN, "PIN refused"},
    {CKR_USER_NOT_LOGGED_IN, "CKR_USER_NOT_LOGGED_IN", OK_ERR_FORBIDDEN, "not logged in"},
    {CKR_USER_PIN_NOT_INITIALIZED, "CKR_USER_PIN_NOT_INITIALIZED", OK_ERR_FORBIDDEN, "the token has no user PIN"},
    {CKR_KEY_HANDLE_INVALID, "CKR_KEY_HANDLE_INVALID", OK_ERR_NOT_FOUND, "key not found"},
    {CKR_OBJECT_HANDLE_INVALID, "CKR_OBJECT_HANDLE_INVALID", OK_ERR_NOT_FOUND, "key not found"},
    {CKR_WRAPPING_KEY_HANDLE_INVALID, "CKR_WRAPPING_KEY_HANDLE_INVALID", OK_ERR_NOT_FOUND, "key not found"},
    {CKR_UNWRAPPING_KEY_HANDLE_INVALID, "CKR_UNWRAPPING_KEY_HANDLE_INVALID", OK_ERR_NOT_FOUND, "key not found"},
    {CKR_WRAPPING_KEY_TYPE_INCONSISTENT, "CKR_WRAPPING_KEY_TYPE_INCONSISTENT", OK_ERR_KEY,
     "wrong key type for the mechanism"},
    {CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT, "CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT", OK_ERR_KEY,
     "wrong key type for the mechanism"},
    {CKR_WRAPPED_KEY_INVALID, "CKR_WRAPPED_KEY_INVALID", OK_ERR_AUTH, "the wrapped key does not unwrap"},
    {CKR_WRAPPED_KEY_LEN_RANGE, "CKR_WRAPPED_KEY_LEN_RANGE", OK_ERR_AUTH, "the wrapped key does not unwrap"},
    {CKR_ENCRYPTED_DATA_INVALID, "CKR_ENCRYPTED_DATA_INVALID", OK_ERR_AUTH, "the wrapped key does not unwrap"},
    {CKR_ENCRYPTED_DATA_LEN_RANGE, "CKR_ENCRYPTED_DATA_LEN_RANGE", OK_ERR_AUTH, "the wrapped key does not unwrap"},
    {CKR_MECHANISM_INVALID, "CKR_MECHANISM_INVALID", OK_ERR_UNSUPPORTED, "mechanism not supported by the token"},
    {CKR_MECHANISM_PARAM_INVALID, "CKR_MECHANISM_PARAM_INVALID", OK_ERR_UNSUPPORTED, "mechanism parameters refused"},
    {CKR_ARGUMENTS_BAD, "CKR_ARGUMENTS_BAD", OK_ERR_UNSUPPORTED, "arguments refused"},
    {CKR_KEY_FUNCTION_NOT_PERMITTED, "CKR_KEY_FUNCTION_NOT_PERMITTED", OK_ERR_KEY, "the key may not do this"},
    {CKR_KEY_TYPE_INCONSISTENT, "CKR_KEY_TYPE_INCONSISTENT", OK_ERR_KEY, "wrong key type for the mechanism"},
    {CKR_KEY_UNEXTRACTABLE, "CKR_KEY_UNEXTRACTABLE", OK_ERR_KEY, "key not extractable"},
    {CKR_KEY_NOT_WRAPPABLE, "CKR_KEY_NOT_WRAPPABLE", OK_ERR_KEY, "key not wrappable"},
    {CKR_KEY_SIZE_RANGE, "CKR_KEY_SIZE_RANGE", OK_ERR_KEY, "key size out of range"},
    {CKR_TEMPLATE_INCONSISTENT, "CKR_TEMPLATE_INCONSISTENT", OK_ERR_KEY, "template refused"},
    {CKR_ATTRIBUTE_SENSITIVE, "CKR_ATTRIBUTE_SENSITIVE", OK_ERR_KEY, "attribute not readable"},
    {CKR_HOST_MEMORY, "CKR_HOST_MEMORY", OK_ERR_NOMEM, "out of memory"},
    {CKR_DEVICE_MEMORY, "CKR_DEVICE_MEMORY", OK_ERR_NOMEM, "token out of memory"},
    {CKR_CRYPTOKI_NOT_INITIALIZED, "CKR_CRYPTOKI_NOT_INITIALIZED", OK_ERR_IO, "module not initialized"},
    {CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR", OK_ERR_IO, "general error"},
    {CKR_FUNCTION_FAILED, "CKR_FUNCTION_FAILED", OK_ERR_IO, "function failed"},
};

const char *ok_p11_rv_name(CK_RV rv)
{
    for (size_t i = 0; i < sizeof RV_TABLE / sizeof RV_TABLE[0]; i++)
        if (RV_TABLE[i].rv == rv)
            return RV_TABLE[i].name;
    return "CKR_(other)";
}

ok_err ok_p11_fail(CK_RV rv, const char *what)
{
    for (size_t i = 0; i < sizeof RV_TABLE / sizeof RV_TABLE[0]; i++)
        if (RV_TABLE[i].rv == rv)
            return ok_fail(RV_TABLE[i].err, "%s: %s (%s)", what, RV_TABLE[i].meaning, RV_TABLE[i].name);
    return ok_fail(OK_ERR_IO, "%s failed (CK_RV 0x%lx)", what, (unsigned long)rv);
}

int ok_p11_rv_stale(CK_RV rv)
{
    return rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_DEVICE_REMOVED || rv == CKR_SESSION_HANDLE_INVALID ||
           rv == CKR_SESSION_CLOSED || rv == CKR_USER_NOT_LOGGED_IN || rv == CKR_KEY_HANDLE_INVALID ||
           rv == CKR_OBJECT_HANDLE_INVALID || rv == CKR_WRAPPING_KEY_HANDLE_INVALID ||
           rv == CKR_UNWRAPPING_KEY_HANDLE_INVALID || rv == CKR_SLOT_ID_INVALID || rv == CKR_DEVICE_ERROR;
}

/* ---- Tokens ----------------------------------------------------------------------------------------- */
struct ok_p11_token {
    ok_p11_module *mod;
    CK_FUNCTION_LIST *f;
    ok_p11_uri uri; /* owned copy of what matters: token attributes, object, id, type, pin */
    ok_p11_key_kind kind;
    int keyless;    /* opened for HSM-backed keys (pkcs11_hsm.c): no one key to find at connect */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int connected;
    int absent;     /* the last connect found no such token */
    int was_seen;   /* connected once: a token that goes missing later is looked for again */
    unsigned gen;
    unsigned epoch; /* the module epoch the sessions belong to */
    CK_SLOT_ID slot;
    CK_OBJECT_HANDLE secret, priv, pub;
    CK_SESSION_HANDLE idle[OK_P11_POOL_MAX];
    size_t n_idle;
    size_t n_open; /* sessions of this generation, idle or leased */
    unsigned long opened_total;
};

/* PKCS#11 token info strings are blank-padded, not NUL-terminated. */
static int padded_equal(const unsigned char *field, size_t field_len, const char *want)
{
    if (!want)
        return 1;
    size_t n = strlen(want);
    if (n > field_len || memcmp(field, want, n) != 0)
        return 0;
    for (size_t i = n; i < field_len; i++)
        if (field[i] != ' ' && field[i] != 0)
            return 0;
    return 1;
}

static ok_err find_slot(ok_p11_token *t)
{
    CK_SLOT_ID slots[64];
    CK_ULONG n = sizeof slots / sizeof slots[0];
    CK_RV rv = t->f->C_GetSlotList(CK_TRUE, slots, &n);
    if (rv == CKR_BUFFER_TOO_SMALL)
        return ok_fail(OK_ERR_LIMIT, "the PKCS#11 module has more than 64 tokens");
    if (rv != CKR_OK)
        return ok_p11_fail(rv, "C_GetSlotList");
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO info;
        if (t->f->C_GetTokenInfo(slots[i], &info) != CKR_OK)
            continue;
        if (padded_equal(info.label, sizeof info.label, t->uri.token) &&
            padded_equal(info.serialNumber, sizeof info.serialNumber, t->uri.serial) &&
            padded_equal(info.manufacturerID, sizeof info.manufacturerID, t->uri.manufacturer) &&
            padded_equal(info.model, sizeof info.model, t->uri.model)) {
            t->slot = slots[i];
            return OK_OK;
        }
    }
    return ok_fail(OK_ERR_IO, "PKCS#11 token \"%s\": token not present", ok_p11_token_label(t));
}

static ok_err login(ok_p11_token *t, CK_SESSION_HANDLE s)
{
    char *pin = NULL;
    size_t pin_len = 0;
    OK_GUARD(ok_p11_uri_read_pin(t->uri.pin_source, t->uri.pin_value, t->uri.pin_value_len, &pin, &pin_len));
    if (!pin)
        return OK_OK; /* no PIN given: public objects only */
    CK_RV rv = t->f->C_Login(s, CKU_USER, (CK_UTF8CHAR *)pin, pin_len);
    ok_secure_free(pin, pin_len + 1);
    if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN)
        return OK_OK;
    char what[160];
    snprintf(what, sizeof what, "PKCS#11 token \"%s\": login", ok_p11_token_label(t));
    return ok_p11_fail(rv, what);
}

/* Finds the one object of class cls matching the URI's label and id. *h = CK_INVALID_HANDLE if none. */
static ok_err find_object(ok_p11_token *t, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, CK_OBJECT_HANDLE *h)
{
    CK_ATTRIBUTE tmpl[3];
    CK_ULONG n = 0;
    tmpl[n++] = (CK_ATTRIBUTE){CKA_CLASS, &cls, sizeof cls};
    if (t->uri.object)
        tmpl[n++] = (CK_ATTRIBUTE){CKA_LABEL, t->uri.object, strlen(t->uri.object)};
    if (t->uri.has_id)
        tmpl[n++] = (CK_ATTRIBUTE){CKA_ID, t->uri.id, t->uri.id_len};
    *h = CK_INVALID_HANDLE;
    CK_RV rv = t->f->C_FindObjectsInit(s, tmpl, n);
    if (rv != CKR_OK)
        return ok_p11_fail(rv, "C_FindObjectsInit");
    CK_OBJECT_HANDLE found[2];
    CK_ULONG count = 0;
    rv = t->f->C_FindObjects(s, found, 2, &count);
    t->f->C_FindObjectsFinal(s);
    if (rv != CKR_OK)
        return ok_p11_fail(rv, "C_FindObjects");
    if (count > 1)
        return ok_fail(OK_ERR_CONFLICT, "PKCS#11 token \"%s\": more than one key matches; add id= or type=",
                       ok_p11_token_label(t));
    if (count == 1)
        *h = found[0];
    return OK_OK;
}

static ok_err check_key_type(ok_p11_token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_KEY_TYPE want)
{
    CK_KEY_TYPE kt = 0;
    CK_ATTRIBUTE a = {CKA_KEY_TYPE, &kt, sizeof kt};
    CK_RV rv = t->f->C_GetAttributeValue(s, h, &a, 1);
    if (rv != CKR_OK)
        return ok_p11_fail(rv, "C_GetAttributeValue(CKA_KEY_TYPE)");
    if (kt != want)
        return ok_fail(OK_ERR_KEY, "PKCS#11 key in token \"%s\" is neither AES nor RSA: it cannot wrap data keys",
                       ok_p11_token_label(t));
    return OK_OK;
}

static ok_err find_key(ok_p11_token *t, CK_SESSION_HANDLE s)
{
    ok_p11_type ty = t->uri.type;
    t->secret = t->priv = t->pub = CK_INVALID_HANDLE;
    if (ty == OK_P11_TYPE_ANY || ty == OK_P11_TYPE_SECRET)
        OK_GUARD(find_object(t, s, CKO_SECRET_KEY, &t->secret));
    if (t->secret == CK_INVALID_HANDLE && (ty == OK_P11_TYPE_ANY || ty == OK_P11_TYPE_PRIVATE))
        OK_GUARD(find_object(t, s, CKO_PRIVATE_KEY, &t->priv));
    if (t->secret == CK_INVALID_HANDLE && ty != OK_P11_TYPE_SECRET)
        OK_GUARD(find_object(t, s, CKO_PUBLIC_KEY, &t->pub));
    ok_p11_key_kind kind;
    if (t->secret != CK_INVALID_HANDLE) {
        OK_GUARD(check_key_type(t, s, t->secret, CKK_AES));
        CK_ULONG len = 0;
        CK_ATTRIBUTE a = {CKA_VALUE_LEN, &len, sizeof len};
        if (t->f->C_GetAttributeValue(s, t->secret, &a, 1) == CKR_OK && len != 16 && len != 24 && len != 32)
            return ok_fail(OK_ERR_KEY, "PKCS#11 token \"%s\": the AES key is %lu bytes long, not 16, 24 or 32",
                           ok_p11_token_label(t), (unsigned long)len);
        kind = OK_P11_KEY_AES;
    } else if (t->priv != CK_INVALID_HANDLE || t->pub != CK_INVALID_HANDLE) {
        OK_GUARD(check_key_type(t, s, t->priv != CK_INVALID_HANDLE ? t->priv : t->pub, CKK_RSA));
        kind = OK_P11_KEY_RSA;
    } else {
        return ok_fail(OK_ERR_NOT_FOUND, "PKCS#11 token \"%s\": no key %s%s%s", ok_p11_token_label(t),
                       t->uri.object ? "labelled \"" : "with the given id", t->uri.object ? t->uri.object : "",
                       t->uri.object ? "\"" : "");
    }
    if (t->kind && t->kind != kind)
        return ok_fail(OK_ERR_KEY, "PKCS#11 token \"%s\": the key changed type since it was first found",
                       ok_p11_token_label(t));
    t->kind = kind;
    return OK_OK;
}

/* Forgets slot, login, objects and sessions (close_sessions = 0: the module was re-initialized, so the
 * handles are gone and may even name other sessions now). Under t->mu and the module's read lock. */
static void disconnect(ok_p11_token *t, int close_sessions)
{
    for (size_t i = 0; close_sessions && i < t->n_idle; i++)
        t->f->C_CloseSession(t->idle[i]);
    t->n_idle = 0;
    t->n_open = 0;
    t->connected = 0;
    t->gen++;
    pthread_cond_broadcast(&t->cv);
}

static ok_err open_session(ok_p11_token *t, CK_SESSION_HANDLE *s)
{
    /* HSM-backed keys make and destroy token objects: read-write sessions */
    CK_FLAGS flags = CKF_SERIAL_SESSION | (t->keyless ? CKF_RW_SESSION : 0);
    CK_RV rv = t->f->C_OpenSession(t->slot, flags, NULL, NULL, s);
    if (rv != CKR_OK) {
        t->absent = rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_DEVICE_REMOVED || rv == CKR_SLOT_ID_INVALID;
        char what[160];
        snprintf(what, sizeof what, "PKCS#11 token \"%s\": C_OpenSession", ok_p11_token_label(t));
        return ok_p11_fail(rv, what);
    }
    t->opened_total++;
    return OK_OK;
}

/* Slot, first session, login, objects. Under t->mu. */
static ok_err connect_token(ok_p11_token *t, unsigned epoch)
{
    t->absent = 0;
    ok_err slot_rc = find_slot(t);
    if (slot_rc != OK_OK) {
        t->absent = slot_rc == OK_ERR_IO;
        return slot_rc;
    }
    CK_SESSION_HANDLE s;
    OK_GUARD(open_session(t, &s));
    ok_err rc = login(t, s);
    if (rc == OK_OK && !t->keyless)
        rc = find_key(t, s);
    if (rc != OK_OK) {
        t->f->C_CloseSession(s);
        return rc;
    }
    t->idle[t->n_idle++] = s;
    t->n_open = 1;
    t->connected = 1;
    t->was_seen = 1;
    t->epoch = epoch;
    return OK_OK;
}

/* One try at a lease under the module's read lock (kept on success, until release). */
static ok_err acquire_once(ok_p11_token *t, ok_p11_lease *l, unsigned epoch)
{
    ok_err rc = OK_OK;
    pthread_mutex_lock(&t->mu);
    if (t->connected && t->epoch != epoch)
        disconnect(t, 0);
    for (;;) {
        if (!t->connected) {
            rc = connect_token(t, epoch);
            if (rc != OK_OK)
                break;
        }
        if (t->n_idle > 0) {
            l->session = t->idle[--t->n_idle];
            break;
        }
        if (t->n_open < OK_P11_POOL_MAX) {
            rc = open_session(t, &l->session);
            if (rc == OK_OK)
                t->n_open++;
            break;
        }
        pthread_cond_wait(&t->cv, &t->mu);
        if (t->connected && t->epoch != epoch)
            disconnect(t, 0);
    }
    if (rc == OK_OK) {
        l->f = t->f;
        l->secret = t->secret;
        l->priv = t->priv;
        l->pub = t->pub;
        l->gen = t->gen;
    }
    pthread_mutex_unlock(&t->mu);
    return rc;
}

ok_err ok_p11_token_acquire(ok_p11_token *t, ok_p11_lease *l)
{
    for (int attempt = 0;; attempt++) {
        unsigned epoch;
        ok_p11_module_enter(t->mod, &epoch);
        ok_err rc = acquire_once(t, l, epoch);
        if (rc == OK_OK)
            return OK_OK;
        ok_p11_module_leave(t->mod);
        pthread_mutex_lock(&t->mu);
        int absent = t->absent && t->was_seen;
        pthread_mutex_unlock(&t->mu);
        if (attempt > 0 || !absent)
            return rc;
        /* The token we had is not there: ask the module to look for its tokens again (a re-inserted
         * token), then try once more. A token never seen (a wrong label) does not get this, so a bad URI
         * cannot make the module re-initialize under everyone else. */
        ok_p11_module_reinit(t->mod, epoch);
    }
}

void ok_p11_token_release(ok_p11_token *t, ok_p11_lease *l, CK_RV last_rv)
{
    pthread_mutex_lock(&t->mu);
    if (l->gen != t->gen) {
        t->f->C_CloseSession(l->session); /* from before a reconnect (same module epoch: the lease held it) */
    } else if (ok_p11_rv_stale(last_rv)) {
        t->f->C_CloseSession(l->session);
        disconnect(t, 1);
    } else {
        t->idle[t->n_idle++] = l->session;
        pthread_cond_signal(&t->cv);
    }
    pthread_mutex_unlock(&t->mu);
    ok_p11_module_leave(t->mod);
    l->session = CK_INVALID_HANDLE;
}

unsigned long ok_p11_token_sessions_opened(ok_p11_token *t)
{
    pthread_mutex_lock(&t->mu);
    unsigned long n = t->opened_total;
    pthread_mutex_unlock(&t->mu);
    return n;
}

static ok_err dup_str(const char *s, char **out)
{
    if (!s)
        return OK_OK;
    *out = strdup(s);
    return *out ? OK_OK : ok_fail(OK_ERR_NOMEM, "out of memory");
}

/* Copies what the token needs from the caller's URI (the caller keeps its own). */
static ok_err copy_uri(const ok_p11_uri *u, ok_p11_uri *c)
{
    OK_GUARD(dup_str(u->token, &c->token));
    OK_GUARD(dup_str(u->serial, &c->serial));
    OK_GUARD(dup_str(u->manufacturer, &c->manufacturer));
    OK_GUARD(dup_str(u->model, &c->model));
    OK_GUARD(dup_str(u->object, &c->object));
    OK_GUARD(dup_str(u->pin_source, &c->pin_source));
    if (u->has_id) {
        c->id = malloc(u->id_len ? u->id_len : 1);
        if (!c->id)
            return ok_fail(OK_ERR_NOMEM, "out of memory");
        memcpy(c->id, u->id, u->id_len);
        c->id_len = u->id_len;
        c->has_id = 1;
    }
    if (u->pin_value && !u->pin_source) { /* pin-source wins when both are given */
        c->pin_value = ok_secure_alloc(u->pin_value_len + 1);
        if (!c->pin_value)
            return ok_fail(OK_ERR_NOMEM, "out of memory");
        memcpy(c->pin_value, u->pin_value, u->pin_value_len);
        c->pin_value_len = u->pin_value_len;
    }
    c->type = u->type;
    return OK_OK;
}

static ok_err token_open(const ok_p11_uri *uri, int keyless, ok_p11_token **out);

ok_err ok_p11_token_open(const ok_p11_uri *uri, ok_p11_token **out)
{
    return token_open(uri, 0, out);
}

ok_err ok_p11_token_open_keyless(const ok_p11_uri *uri, ok_p11_token **out)
{
    return token_open(uri, 1, out);
}

static ok_err token_open(const ok_p11_uri *uri, int keyless, ok_p11_token **out)
{
    if (!uri->token && !uri->serial)
        return ok_fail(OK_ERR_INVALID_ARG, "pkcs11 URI names no token (token= or serial=)");
    if (keyless && (uri->object || uri->has_id))
        return ok_fail(OK_ERR_INVALID_ARG, "the HSM URI names a token only (no object= or id=): the vault names "
                                           "its keys' objects itself");
    if (!keyless && !uri->object && !uri->has_id)
        return ok_fail(OK_ERR_INVALID_ARG, "pkcs11 URI names no key (object= or id=)");
    if (uri->type == OK_P11_TYPE_CERT || uri->type == OK_P11_TYPE_DATA)
        return ok_fail(OK_ERR_KEY, "pkcs11 URI: type=cert and type=data objects cannot wrap data keys");
    const char *module = uri->module_path ? uri->module_path : getenv("OWNKEY_PKCS11_MODULE");
    if (!module || !*module)
        return ok_fail(OK_ERR_INVALID_ARG, "pkcs11 URI has no module-path (nor is OWNKEY_PKCS11_MODULE set)");
    ok_p11_token *t = calloc(1, sizeof *t);
    if (!t)
        return ok_fail(OK_ERR_NOMEM, "out of memory");
    t->keyless = keyless;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    ok_err rc = copy_uri(uri, &t->uri);
    if (rc == OK_OK)
        rc = ok_p11_module_get(module, &t->mod);
    if (rc == OK_OK) {
        t->f = ok_p11_module_functions(t->mod);
        ok_p11_lease l;
        rc = ok_p11_token_acquire(t, &l);
        if (rc == OK_OK)
            ok_p11_token_release(t, &l, CKR_OK);
    }
    if (rc != OK_OK) {
        ok_p11_token_close(t);
        return rc;
    }
    *out = t;
    return OK_OK;
}

void ok_p11_token_close(ok_p11_token *t)
{
    if (!t)
        return;
    if (t->mod) {
        unsigned epoch;
        ok_p11_module_enter(t->mod, &epoch);
        pthread_mutex_lock(&t->mu);
        disconnect(t, t->epoch == epoch);
        pthread_mutex_unlock(&t->mu);
        ok_p11_module_leave(t->mod);
        ok_p11_module_put(t->mod);
    }
    ok_p11_uri_clear(&t->uri);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

ok_p11_key_kind ok_p11_token_key_kind(const ok_p11_token *t) { return t->kind; }

const char *ok_p11_token_label(const ok_p11_token *t) { return t->uri.token ? t->uri.token : t->uri.serial; }
