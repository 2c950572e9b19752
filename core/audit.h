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
 * Appends are serialised with a transaction-scoped advisory lock held until
 * the commit, so audit_append() belongs inside the transaction of the change it
 * records (outside one it makes its own). Each commit that added entries is
 * signed outside the database twice (core/witness.h): a prepared head before
 * the COMMIT, a committed one after it. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "core/merkle.h"
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
	bool has_root; /* exported heads: the Merkle root of the entries' chain hashes (core/merkle.h) */
	uint8_t root[AUDIT_HASH_BYTES];
	/* optional, unsigned: a consistency proof from the head of proof_from entries to this one */
	int64_t proof_from;
	int proof_len;
	uint8_t proof[MERKLE_MAX_PROOF][AUDIT_HASH_BYTES];
};

struct audit_report {
	int64_t entries;       /* entries checked */
	int64_t checkpoints;   /* stored checkpoints checked (and the exported one, if given) */
	int64_t witness_heads; /* signed witness lines read */
	int64_t covered;       /* entries a witness line vouches for */
	int64_t prepared;               /* prepared heads the log matches whose committed line is missing (a process
	                                   killed between its COMMIT and that line) */
	int64_t ring_generation;        /* the newest keyring generation a witness line signed (0: none) */
	int64_t first_bad;     /* on failure: the first entry that does not match (0: none named) */
	uint8_t root[AUDIT_HASH_BYTES]; /* the Merkle root of the entries checked, when one was asked for */
};

/* What audit_verify_with() checks the log against. */
struct audit_verify_options {
	const uint8_t *pk;                         /* the vault's signing key (VAULT_PK_BYTES); NULL: the chain alone */
	const struct audit_checkpoint *checkpoint; /* an exported head to meet too (may be NULL) */
	const char *const *witness_files;          /* NULL-terminated; NULL: this host's (audit_set_witness()) */
	const struct audit_checkpoint *since;      /* an earlier exported head the log must extend (may be NULL) */
	bool want_root;                            /* fill report.root */
	/* check_ring: ring_generation is the keyring's generation in the database now, as its seal
	 * authenticates it (vault_ring_generation(), 0 for one not sealed in); a witness line that
	 * signed a newer one means the keyring was rolled back */
	bool check_ring;
	int64_t ring_generation;
};

/* Appends one entry (inside the caller's transaction, or in one of its own when none is open);
 * makes a checkpoint when one is due. */
enum qerr audit_append(struct db *db, const struct audit_event *ev, char **reterr) QUIRE_MUST_CHECK;

/* Registers the vault that signs automatic checkpoints (borrowed: it must outlive its use; NULL:
 * none), made once every_n entries or every_s seconds have passed since the last one. */
void audit_set_signer(const struct vault *v, int every_n, int every_s);

/* Where this process writes signed heads after each commit that added entries (core/witness.h),
 * and which file verify reads: the witness needs the signer (audit_set_signer()). to_syslog also
 * sends each line to syslog. NULL: no witness. Process-wide: set it before starting threads. */
void audit_set_witness(const char *path, bool to_syslog);
/* Points in a commit that added entries, for tests that end the process there (SIGKILL). */
enum audit_probe { AUDIT_PROBE_PREPARED = 1, AUDIT_PROBE_COMMITTED, AUDIT_PROBE_COUNT };
typedef void audit_commit_probe_fn(enum audit_probe where);
/* Calls fn at each of those points (after the prepared line is written, before the COMMIT; after
 * the COMMIT, before the committed line); NULL: none. For tests only. */
void audit_set_commit_probe(audit_commit_probe_fn *fn);
/* The path given to audit_set_witness() (borrowed), or NULL. */
const char *audit_witness_path(void);

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
/* The export for an outside witness: a checkpoint made now, with the Merkle root of the log's
 * entries, and when since is not NULL a consistency proof from since's head to this one. When
 * this host's witness file does not exist yet (a log begun before there was one), it is created
 * with a line that vouches for the log as it stands. */
enum qerr audit_checkpoint_export(struct db *db, const struct vault *v, const struct audit_checkpoint *since,
                                  struct audit_checkpoint *ret, char **reterr) QUIRE_MUST_CHECK;
/* Walks the chain and checks it against everything o names: the stored checkpoints and the witness
 * files (needs o->pk), the exported head, the earlier head it must extend. QERR_CRYPTO names what
 * is wrong (shorter than, forked from, missing what a signed head has, entries no witness line
 * covers) and the first entry that does not match; *ret is filled in either case. */
enum qerr audit_verify_with(struct db *db, const struct audit_verify_options *o, struct audit_report *ret,
                            char **reterr) QUIRE_MUST_CHECK;
/* audit_verify_with() with pk, the exported head witness (may be NULL) and this host's witness file.
 * Walks the chain and checks every stored checkpoint against pk (the vault's signing key), and,
 * when witness is not NULL, that checkpoint too. QERR_CRYPTO names the first entry that does
 * not match; *ret is filled in either case. */
enum qerr audit_verify_signed(struct db *db, const uint8_t pk[VAULT_PK_BYTES], const struct audit_checkpoint *witness,
                              struct audit_report *ret, char **reterr) QUIRE_MUST_CHECK;
