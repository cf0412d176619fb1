/* The vault's HSM (HSM-backed keys, include/ownkey/vault.h ok_vault_hsm) on a PKCS#11 token: the program
 * opens it and attaches it to the vault (ok_vault_attach_hsm), which then owns it. */
#ifndef OWNKEY_PKCS11_HSM_H
#define OWNKEY_PKCS11_HSM_H

#include "ownkey/vault.h"

/* uri: "pkcs11:token=LABEL?module-path=…&pin-source=file:…" (a token, no object). Logs in once to check. */
ok_err ok_pkcs11_hsm_open(const char *uri, ok_vault_hsm **out);

#endif
