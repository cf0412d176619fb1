/* Internal to the vault: the hooks by which vault.c (init/open/close, seal.c) drives the modules that
 * own their own tables or files. Each module creates its tables with CREATE TABLE IF NOT EXISTS. */
#ifndef OWNKEY_VAULT_MODULES_H
#define OWNKEY_VAULT_MODULES_H

#include "vault/vault_internal.h"

/* access.c: identities, tokens, policies. */
ok_err ok_access_schema(ok_store *s);
/* Called by ok_vault_init once the new vault is unsealed: creates identity "admin" with a policy "*"
 * granting OK_PERM_ALL, and returns its token. */
ok_err ok_access_bootstrap_admin(ok_vault *v, char **token);

/* audit.c: the chained audit log DIR/audit.log. Open finds the last line's MAC; called on open. */
ok_err ok_audit_open(ok_vault *v);
void ok_audit_close(ok_vault *v);

/* keys.c and friends: keys, versions, deleted keys, rotation policies. */
ok_err ok_keys_schema(ok_store *s);

/* key_cache.c: unsealed key material kept for the crypto operations. new/free with the vault object;
 * clear is called by ok_vault_seal under the exclusive seal lock. */
ok_err ok_key_cache_new(ok_vault *v);
void ok_key_cache_free(ok_vault *v);
void ok_key_cache_clear(ok_vault *v);

#endif
