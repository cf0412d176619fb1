/* Internal to the vault: an audit record's canonical JSON form (audit_line.c), for audit.c and tests. */
#ifndef OWNKEY_VAULT_AUDIT_LINE_H
#define OWNKEY_VAULT_AUDIT_LINE_H

#include <stddef.h>

#include "ownkey/vault.h"

#define OK_AUDIT_TIME_LEN 40
/* The longest canonical record: ten members of at most 256 escaped (so 512) bytes plus names. */
#define OK_AUDIT_RECORD_MAX 6144

/* Now as RFC 3339 UTC with milliseconds: 2026-12-07T21:02:41.123Z. */
void ok_audit_time_now(char out[OK_AUDIT_TIME_LEN]);
/* The latency as recorded: clamped to [0, 1e9] (NaN: 0), rounded to whole microseconds. */
double ok_audit_latency(double ms);
/* Writes the record (with the given time) to out; *len = its length (no NUL is written). */
ok_err ok_audit_record_json(const ok_audit_record *r, const char *time, char *out, size_t cap, size_t *len);

#endif
