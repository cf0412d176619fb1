/* Internal to the PKCS#11 provider: loaded modules (refcounted per module path), tokens (slot lookup,
 * login, a pool of logged-in sessions, the key objects found by label/id) and the CK_RV -> ok_err mapping.
 * pkcs11_module.c implements it; pkcs11_provider.c builds the provider on it; tests and the bench use it. */
#ifndef OWNKEY_PKCS11_INTERNAL_H
#define OWNKEY_PKCS11_INTERNAL_H

#include <p11-kit/pkcs11.h>

#include "ownkey/util.h"
#include "providers/pkcs11_uri.h"

/* ---- Modules: dlopen + C_GetFunctionList + C_Initialize(CKF_OS_LOCKING_OK), once per path ---------- */
typedef struct ok_p11_module ok_p11_module;
ok_err ok_p11_module_get(const char *path, ok_p11_module **out);
/* Drops a reference; the last one finalizes (if this process initialized it) and unloads the module. */
void ok_p11_module_put(ok_p11_module *m);
CK_FUNCTION_LIST *ok_p11_module_functions(const ok_p11_module *m);
/* Calls into the module happen between enter and leave (a read lock); *epoch says which initialization
 * of the module the caller's sessions belong to. */
void ok_p11_module_enter(ok_p11_module *m, unsigned *epoch);
void ok_p11_module_leave(ok_p11_module *m);
/* Re-initializes the module (C_Finalize + C_Initialize, under the write lock) so that it looks for its
 * tokens again: modules such as SoftHSM find a re-inserted token only then. Every session of the module
 * is gone afterwards (tokens notice the new epoch and reconnect). Does nothing if another thread already
 * did it since seen_epoch, if this process did not initialize the module, or if the last re-init was
 * less than a second ago. */
void ok_p11_module_reinit(ok_p11_module *m, unsigned seen_epoch);

/* ---- Errors ----------------------------------------------------------------------------------------- */
const char *ok_p11_rv_name(CK_RV rv);
/* ok_fail() with the ok_err that rv means and "WHAT: <meaning> (CKR_...)". */
ok_err ok_p11_fail(CK_RV rv, const char *what);
/* 1 when rv means the sessions, the login or the object handles are gone (token removed or re-inserted,
 * sessions closed, logged out): the token is reconnected and the call retried once. */
int ok_p11_rv_stale(CK_RV rv);

/* ---- Tokens ----------------------------------------------------------------------------------------- */
typedef enum { OK_P11_KEY_AES = 1, OK_P11_KEY_RSA = 2 } ok_p11_key_kind;

typedef struct ok_p11_token ok_p11_token;

/* Loads the module, then connects: finds the slot (token label / serial / manufacturer / model), logs
 * in with the PIN (re-read from pin-source at every login), finds the key (object label / id, type).
 * The URI must name a token (token= or serial=) and an object (object= or id=). */
ok_err ok_p11_token_open(const ok_p11_uri *uri, ok_p11_token **out);
/* The same for a token with no one key (the vault's HSM-backed keys, pkcs11_hsm.c): the URI names a token
 * and no object; the lease's handles are CK_INVALID_HANDLE. */
ok_err ok_p11_token_open_keyless(const ok_p11_uri *uri, ok_p11_token **out);
void ok_p11_token_close(ok_p11_token *t);
ok_p11_key_kind ok_p11_token_key_kind(const ok_p11_token *t);
/* The label of the token as the URI gives it (for messages). */
const char *ok_p11_token_label(const ok_p11_token *t);

/* A logged-in session from the pool, with the key's object handles as of the lease. */
typedef struct {
    CK_FUNCTION_LIST *f;
    CK_SESSION_HANDLE session;
    CK_OBJECT_HANDLE secret;  /* AES key, or CK_INVALID_HANDLE */
    CK_OBJECT_HANDLE priv;    /* RSA private key, or CK_INVALID_HANDLE */
    CK_OBJECT_HANDLE pub;     /* RSA public key object, or CK_INVALID_HANDLE (none on the token) */
    unsigned gen;
} ok_p11_lease;

/* Takes a session (opening one, up to the pool size, or waiting); reconnects first when needed. */
ok_err ok_p11_token_acquire(ok_p11_token *t, ok_p11_lease *l);
/* Gives the session back. last_rv is the result of the last call made on it: a stale one
 * (ok_p11_rv_stale) drops the whole pool so that the next acquire reconnects. */
void ok_p11_token_release(ok_p11_token *t, ok_p11_lease *l, CK_RV last_rv);
/* Sessions opened so far (for tests of the pool). */
unsigned long ok_p11_token_sessions_opened(ok_p11_token *t);

#define OK_P11_POOL_MAX 16

/* The token behind a `pkcs11` provider (NULL for another provider): for tests and the bench. */
struct ok_provider;
ok_p11_token *ok_pkcs11_provider_token(struct ok_provider *p);

#endif
