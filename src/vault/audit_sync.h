/* Internal to the vault: audit_sync.c, when audit lines are durable, for audit.c. */
#ifndef OWNKEY_VAULT_AUDIT_SYNC_H
#define OWNKEY_VAULT_AUDIT_SYNC_H

#include <stdint.h>

#include "vault/vault_internal.h"

/* fdatasync, retried on EINTR; OK_ERR_IO with errno in the message. */
ok_err ok_audit_sync_file(int fd);
/* The group commit of an open log (v->audit_sync) and its syncer thread; close lets the syncer settle
 * every waiter first. */
ok_err ok_audit_sync_open(ok_vault *v);
void ok_audit_sync_close(ok_vault *v);
/* Under audit_lock, after a line was appended: its sequence number. */
uint64_t ok_audit_sync_note_written(struct ok_audit_sync *g);
/* An fdatasync failed: no line can be made durable until the log is opened again. */
int ok_audit_sync_failed(const struct ok_audit_sync *g);
ok_err ok_audit_sync_failure(void);

#endif
