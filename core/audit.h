/* audit: the append-only, tamper-evident audit log.
 *
 * Each entry records who (user, API token or system), what, when (UTC), where
 * (client address or "cli"), which object and the outcome, never document
 * content or field values. Entries form a hash chain:
 *   hash = BLAKE2b-256(previous hash || canonical text of the entry)
 * where the canonical text is length-prefixed fields in a fixed order, so no
 * choice of values can imitate another entry. Changing, removing, inserting or
 * reordering an entry breaks every hash after it. The database refuses UPDATE,
 * DELETE and TRUNCATE on the table, and the application's role holds INSERT and
 * SELECT only (migrations 0001, 0003).
 *
 * A superuser can still rewrite the table and recompute the whole chain; signed
 * checkpoints catch that. A checkpoint is the chain hash up to an entry and the
 * number of entries, signed with the vault's Ed25519 key (which the database
 * never sees). They are stored in audit_checkpoints every N entries or S
 * seconds, and can be exported to a file for an outside witness;
 * audit_verify_signed() recomputes the chain and checks it against both.
 *
 * Appends are serialised with a transaction-scoped advisory lock, so
 * audit_append() must be called inside a transaction (the same one as the
 * change it records). */
#pragma once

#include <stdint.h>

#include "core/qerr.h"
#include "core/vault.h"

#define AUDIT_HASH_BYTES 32

struct db;

struct audit_event {
	const char *actor;       /* "cli:root", "system:worker", "user:alice", "token:7" */
	const char *action;      /* "document.submitted", "job.claimed", ... */
	const char *object_type; /* "document", "job", ... (may be NULL) */
	int64_t object_id;       /* 0 when none */
	const char *outcome;     /* "ok", "failed", "denied", ... */
	const char *client;      /* "cli", an address, ... (may be NULL) */
	const char *detail;      /* short non-sensitive note (may be NULL) */
};

struct audit_checkpoint {
	int64_t last_entry_id;
	int64_t entries; /* entries up to and including last_entry_id */
	char at[40];     /* UTC, ISO 8601 */
	uint8_t hash[AUDIT_HASH_BYTES];
	uint8_t public_key[VAULT_PK_BYTES];
	uint8_t signature[VAULT_SIG_BYTES];
};

struct audit_report {
	int64_t entries;     /* entries checked */
	int64_t checkpoints; /* stored checkpoints checked (and the witness, if given) */
	int64_t first_bad;   /* on failure: the first entry that does not match (0: none named) */
};

/* Appends one entry (inside the caller's transaction); makes a checkpoint when one is due. */
enum qerr audit_append(struct db *db, const struct audit_event *ev, char **reterr) QUIRE_MUST_CHECK;

/* Registers the vault that signs automatic checkpoints (borrowed: it must outlive its use; NULL:
 * none), made once every_n entries or every_s seconds have passed since the last one. */
void audit_set_signer(const struct vault *v, int every_n, int every_s);

/* Makes and stores a checkpoint of the whole log now (its own transaction); *ret receives it. */
enum qerr audit_checkpoint_now(struct db *db, const struct vault *v, struct audit_checkpoint *ret, char **reterr)
	QUIRE_MUST_CHECK;
/* The text form of a checkpoint (g_free), for a witness. */
char *audit_checkpoint_format(const struct audit_checkpoint *cp);
/* Parses the text form; checks the signature against the key written in it. */
enum qerr audit_checkpoint_parse(const char *text, struct audit_checkpoint *ret, char **reterr) QUIRE_MUST_CHECK;

/* Walks the whole chain. *ret_entries gets the number of entries checked. On a
 * broken chain returns QERR_CRYPTO with the id of the first bad entry in the message. */
enum qerr audit_verify(struct db *db, int64_t *ret_entries, char **reterr) QUIRE_MUST_CHECK;
/* Walks the chain and checks every stored checkpoint against pk (the vault's signing key), and,
 * when witness is not NULL, that checkpoint too. QERR_CRYPTO names the first entry that does
 * not match; *ret is filled in either case. */
enum qerr audit_verify_signed(struct db *db, const uint8_t pk[VAULT_PK_BYTES], const struct audit_checkpoint *witness,
                              struct audit_report *ret, char **reterr) QUIRE_MUST_CHECK;
