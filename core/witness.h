/* witness: signed heads of the audit log kept outside the database.
 *
 * After each committed transaction that added audit entries, the process that
 * added them appends one line to a witness file in the key folder of its host
 * (and sends the same line to syslog, which may ship it off the host):
 *
 *   quire-witness-v1 seq=S id=I hash=H covers=A-B[,C-D...] [state=prepared|withdrawn] [ring=R]
 *     at=T host=N pid=P sig=G
 *
 * S is the number of entries in the log up to and including entry I, whose
 * chain hash is H (so the line pins the whole log up to there); covers lists
 * the positions (1-based, in log order) of the entries this process appended
 * and vouches for; R is the generation of the keyring in the database as this
 * process last read it, authenticated by its seal (absent: none); G is the
 * Ed25519 signature by the vault's audit key of the line up to " sig=". The
 * database never sees that key, so a superuser can neither make a line nor
 * change one. Lines are only ever appended.
 *
 * Each transaction that added entries gets two lines. Before its COMMIT, a
 * prepared one (state=prepared): the head the log will have if the commit
 * succeeds, written (not synced: a process killed after it cannot lose it, and
 * the committed line's sync makes it durable) while the transaction still
 * holds the log's append lock. After the COMMIT, a committed one, synced
 * before the commit returns to its caller. A prepared head counts
 * only where the database matches it exactly (the commit happened, and its
 * process may have been killed before the second line); one the database does
 * not match is a commit rolled back (or still under way) and vouches for
 * nothing, and where the server answered that the COMMIT failed, a withdrawn
 * line (state=withdrawn, the same head) says so, so that entries put back in its
 * place later are signed by nobody. Only committed heads say how far the log
 * must reach. Threads of one process share a writer that writes and
 * fdatasync()s the committed lines of all the commits waiting at once in one
 * batch, so a sync is shared by every commit that finished meanwhile. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/qerr.h"
#include "core/vault.h"

#define WITNESS_HASH_BYTES 32
#define WITNESS_MAX_RANGES 32      /* ranges on one line; a batch with more writes more lines */
#define WITNESS_MAX_LINE 4096      /* bytes in one line, newline included */
#define WITNESS_MAX_HEADS 50000000 /* lines read from one file */
#define WITNESS_FILE_NAME "audit.witness"

struct witness;

struct witness_range {
	int64_t first, last; /* inclusive positions */
};

struct witness_head {
	int64_t seq;
	int64_t id;
	int64_t ring;  /* keyring generation the writer knew (0: none) */
	bool prepared;  /* written before the commit: valid only where the log matches it */
	bool withdrawn; /* the prepared head of this position, id and hash was not committed */
	uint8_t hash[WITNESS_HASH_BYTES];
	int n_ranges;
	struct witness_range ranges[WITNESS_MAX_RANGES]; /* ascending */
};

/* A writer appending to the file at path (created with mode 0600), signing with v (borrowed:
 * it must outlive the writer); to_syslog also sends each line to syslog. Lines carry v's
 * keyring generation (vault_ring_generation()). Free with witness_free(). */
struct witness *witness_new(const char *path, const struct vault *v, bool to_syslog);
void witness_free(struct witness *w);
/* The file the writer appends to (borrowed). */
const char *witness_path(const struct witness *w);
/* Before a COMMIT: signs the head the log will have if it succeeds (entries at positions
 * from..to, the last of them entry id with chain hash hash) as a prepared line, and returns once
 * it is written (not synced: a process killed after this cannot lose the line; a power cut may,
 * and then verify reports that commit's entries as unsigned rather than passing them). The caller holds the log's append lock, so at most one
 * transaction is between its prepared line and its COMMIT. QERR_IO when it could not be written:
 * the caller must not commit. */
enum qerr witness_prepare(struct witness *w, int64_t from, int64_t to, int64_t id,
                          const uint8_t hash[WITNESS_HASH_BYTES], char **reterr) QUIRE_MUST_CHECK;
/* After a COMMIT the server answered with a failure: withdraws the prepared head of the same
 * arguments (a line, written and synced). */
enum qerr witness_withdraw(struct witness *w, int64_t from, int64_t to, int64_t id,
                           const uint8_t hash[WITNESS_HASH_BYTES], char **reterr) QUIRE_MUST_CHECK;
/* Vouches for the committed entries at positions from..to, the last of them entry id with chain
 * hash hash: returns once a signed committed line covering them is in the file (written by this
 * thread or by another one's batch), synced too when sync. QERR_IO when the line could not be written. */
enum qerr witness_record(struct witness *w, int64_t from, int64_t to, int64_t id,
                         const uint8_t hash[WITNESS_HASH_BYTES], bool sync, char **reterr) QUIRE_MUST_CHECK;

/* Reads every line of the file at path, checking each signature against pk. *ret (g_free) and
 * *ret_n receive the heads in file order. A last line cut short (a crash while writing) is
 * skipped; any other malformed or badly signed line is QERR_CRYPTO naming its line number.
 * QERR_NOT_FOUND when the file does not exist. */
enum qerr witness_read(const char *path, const uint8_t pk[VAULT_PK_BYTES], struct witness_head **ret, size_t *ret_n,
                       char **reterr) QUIRE_MUST_CHECK;
/* Formats and signs one line (g_free; ends with a newline). */
char *witness_line_format(const struct witness_head *h, const struct vault *v);
/* Parses one line (without its newline) and checks its signature against pk. */
enum qerr witness_line_parse(const char *line, const uint8_t pk[VAULT_PK_BYTES], struct witness_head *ret,
                             char **reterr) QUIRE_MUST_CHECK;
