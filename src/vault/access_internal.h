/* Internal to the vault's access module (access.c: identities and tokens; policies.c: permissions,
 * policies, ok_vault_allowed): what the two files share. Nothing else includes this. */
#ifndef OWNKEY_VAULT_ACCESS_INTERNAL_H
#define OWNKEY_VAULT_ACCESS_INTERNAL_H

#include "vault/vault_internal.h"

/* 1 if name matches ^[0-9a-zA-Z._-]{1,64}$. */
int ok_access_identity_name_valid(const char *name);
/* Sets *exists to whether the identity row exists. */
ok_err ok_access_identity_exists(ok_store *s, const char *name, int *exists);
/* Inserts or replaces a policy row; the caller validated every argument and holds the transaction. */
ok_err ok_access_policy_put(ok_store *s, const char *identity, const char *pattern, unsigned perms);

/* Refuses (OK_ERR_CONFLICT) a change that would leave the vault without any administrator: `identity`
 * holds admin on "*" and no other identity does. The caller holds the transaction. */
ok_err ok_access_keep_an_admin(ok_store *s, const char *identity);

#endif
