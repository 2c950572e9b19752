/* audit: the append-only, tamper-evident audit log.
 *
 * Each entry records who, what, when (UTC), where, which object and the
 * outcome, never document content or field values. Entries form a hash chain:
 * hash = BLAKE2b-256(previous hash || canonical text of the entry), so changing,
 * removing or reordering any entry breaks every hash after it. The database
 * refuses UPDATE, DELETE and TRUNCATE on the table (migration 0001). Appends are
 * serialised with a transaction-scoped advisory lock, so audit_append() must be
 * called inside a transaction (the same one as the change it records). */
#pragma once

#include <stdint.h>

#include "core/qerr.h"

struct db;

struct audit_event {
	const char *actor;       /* "cli:root", "system:worker", "user:alice" */
	const char *action;      /* "document.submitted", "job.claimed", ... */
	const char *object_type; /* "document", "job", ... (may be NULL) */
	int64_t object_id;       /* 0 when none */
	const char *outcome;     /* "ok", "failed", ... */
	const char *client;      /* "cli", an address, ... (may be NULL) */
	const char *detail;      /* short non-sensitive note (may be NULL) */
};

enum qerr audit_append(struct db *db, const struct audit_event *ev, char **reterr) QUIRE_MUST_CHECK;

/* Walks the whole chain. *ret_entries gets the number of entries checked. On a
 * broken chain returns QERR_CRYPTO with the id of the first bad entry in the message. */
enum qerr audit_verify(struct db *db, int64_t *ret_entries, char **reterr) QUIRE_MUST_CHECK;
