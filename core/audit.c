/* audit: hash-chained audit entries and signed checkpoints in PostgreSQL. */
#include "core/audit.h"

#include <glib.h>
#include <sodium.h>
#include <string.h>

#include "core/db.h"
#include "core/internal.h"
#include "core/merkle.h"
#include "core/witness.h"

#define AUDIT_LOCK_KEY 7277001 /* advisory lock id serialising appends */
#define HASH_BYTES AUDIT_HASH_BYTES
#define TS_FORMAT(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
#define CP_MAGIC "quire-audit-checkpoint-v1"
#define CP_MAGIC2 "quire-audit-checkpoint-v2" /* v1 and a Merkle root */
#define CP_MAX_TEXT 16384

static const struct vault *signer;
static int signer_every_n = 1000, signer_every_s = 3600;
static struct witness *witness; /* the writer of this process's witness lines (needs the signer) */
static char *witness_file;      /* this host's witness file, read by verify */

static const char *nz(const char *s) { return s ? s : ""; }

static bool witness_syslog;

void audit_set_signer(const struct vault *v, int every_n, int every_s)
{
	g_clear_pointer(&witness, witness_free);
	signer = v;
	if (v && witness_file)
		witness = witness_new(witness_file, v, witness_syslog);
	signer_every_n = every_n > 0 ? every_n : 1000;
	signer_every_s = every_s > 0 ? every_s : 3600;
}

/* Canonical text: fixed field order, one field per line, lengths prefixed so
 * that no choice of field values can produce another entry's text. */
void audit_entry_hash(const uint8_t prev[HASH_BYTES], const char *at, const char *const fields[7],
                       uint8_t out[HASH_BYTES])
{
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, HASH_BYTES);
	crypto_generichash_update(&st, prev, HASH_BYTES);
	GString *canon = g_string_new("quire-audit-v1\n");
	g_string_append_printf(canon, "%zu:%s\n", strlen(at), at);
	for (int i = 0; i < 7; i++)
		g_string_append_printf(canon, "%zu:%s\n", strlen(fields[i]), fields[i]);
	crypto_generichash_update(&st, (const uint8_t *)canon->str, canon->len);
	crypto_generichash_final(&st, out, HASH_BYTES);
	g_string_free(canon, TRUE);
}

/* The last entry's position and chain hash (0 and zeros for an empty log), and the time now. */
static enum qerr last_entry(struct db *db, int64_t *ret_seq, uint8_t prev[HASH_BYTES], char **ret_at, char **reterr)
{
	struct db_res *res = NULL;
	enum qerr e = db_query(db,
	                       "SELECT " TS_FORMAT("clock_timestamp()") ", l.seq, l.hash FROM (SELECT 1) one"
	                       " LEFT JOIN (SELECT seq, hash FROM audit_log ORDER BY id DESC LIMIT 1) l ON true",
	                       0, NULL, &res, reterr);
	if (e)
		return e;
	memset(prev, 0, HASH_BYTES);
	*ret_seq = db_res_isnull(res, 0, 1) ? 0 : db_res_int(res, 0, 1);
	size_t n = 0;
	g_autofree uint8_t *h = db_res_isnull(res, 0, 2) ? NULL : db_res_bytea(res, 0, 2, &n);
	if (h && n == HASH_BYTES)
		memcpy(prev, h, HASH_BYTES);
	*ret_at = g_strdup(db_res_text(res, 0, 0));
	db_res_free(res);
	return QERR_OK;
}

static enum qerr lock_log(struct db *db, char **reterr)
{
	char lock_sql[64];
	g_snprintf(lock_sql, sizeof lock_sql, "SELECT pg_advisory_xact_lock(%d)", AUDIT_LOCK_KEY);
	return db_exec(db, lock_sql, reterr);
}

/* The message a checkpoint's signature covers. */
char *audit_checkpoint_message(const struct audit_checkpoint *cp)
{
	char hex[2 * HASH_BYTES + 1], pk[2 * VAULT_PK_BYTES + 1];
	sodium_bin2hex(hex, sizeof hex, cp->hash, HASH_BYTES);
	sodium_bin2hex(pk, sizeof pk, cp->public_key, VAULT_PK_BYTES);
	if (!cp->has_root)
		return g_strdup_printf(CP_MAGIC "\nlast-entry: %lld\nentries: %lld\nat: %s\nhash: %s\npublic-key: %s\n",
		                       (long long)cp->last_entry_id, (long long)cp->entries, cp->at, hex, pk);
	char root[2 * HASH_BYTES + 1];
	sodium_bin2hex(root, sizeof root, cp->root, HASH_BYTES);
	return g_strdup_printf(CP_MAGIC2 "\nlast-entry: %lld\nentries: %lld\nat: %s\nhash: %s\nmerkle-root: %s\n"
	                                 "public-key: %s\n",
	                       (long long)cp->last_entry_id, (long long)cp->entries, cp->at, hex, root, pk);
}

/* Signs and stores a checkpoint of the chain ending at (last_id, hash); the caller holds the
 * append lock inside a transaction. prev_id/prev_entries: the previous checkpoint (0 if none). */
static enum qerr store_checkpoint(struct db *db, const struct vault *v, int64_t last_id, const uint8_t *hash,
                                  int64_t prev_id, int64_t prev_entries, struct audit_checkpoint *ret,
                                  char **reterr)
{
	char slast[24], sprev[24];
	g_snprintf(slast, sizeof slast, "%lld", (long long)last_id);
	g_snprintf(sprev, sizeof sprev, "%lld", (long long)prev_id);
	struct db_param p[2] = {DB_TEXT(sprev), DB_TEXT(slast)};
	struct db_res *res = NULL;
	enum qerr e = db_query(db,
	                       "SELECT count(*), " TS_FORMAT("clock_timestamp()") " FROM audit_log"
	                       " WHERE id > $1::bigint AND id <= $2::bigint",
	                       2, p, &res, reterr);
	if (e)
		return e;
	struct audit_checkpoint cp = {.last_entry_id = last_id, .entries = prev_entries + db_res_int(res, 0, 0)};
	g_strlcpy(cp.at, db_res_text(res, 0, 1), sizeof cp.at);
	db_res_free(res);
	memcpy(cp.hash, hash, HASH_BYTES);
	vault_sign_public(v, cp.public_key);
	g_autofree char *msg = audit_checkpoint_message(&cp);
	vault_sign(v, msg, strlen(msg), cp.signature);
	char sentries[24];
	g_snprintf(sentries, sizeof sentries, "%lld", (long long)cp.entries);
	struct db_param q[6] = {DB_TEXT(cp.at),   DB_TEXT(slast), DB_TEXT(sentries), DB_BIN(cp.hash, HASH_BYTES),
	                        DB_BIN(cp.public_key, VAULT_PK_BYTES), DB_BIN(cp.signature, VAULT_SIG_BYTES)};
	e = db_query(db,
	             "INSERT INTO audit_checkpoints (at, last_entry_id, entries, hash, public_key, signature)"
	             " VALUES ($1::timestamptz, $2::bigint, $3::bigint, $4, $5, $6)",
	             6, q, NULL, reterr);
	if (!e && ret)
		*ret = cp;
	return e;
}

/* The latest checkpoint's entry id, entry count and age in seconds (0, 0, huge when none). */
static enum qerr last_checkpoint(struct db *db, int64_t *ret_id, int64_t *ret_entries, double *ret_age,
                                 char **reterr)
{
	struct db_res *res = NULL;
	enum qerr e = db_query(db,
	                       "SELECT last_entry_id, entries, extract(epoch FROM clock_timestamp() - at)"
	                       " FROM audit_checkpoints ORDER BY id DESC LIMIT 1",
	                       0, NULL, &res, reterr);
	if (e)
		return e;
	*ret_id = 0;
	*ret_entries = 0;
	*ret_age = 1e18;
	if (db_res_rows(res) == 1) {
		*ret_id = db_res_int(res, 0, 0);
		*ret_entries = db_res_int(res, 0, 1);
		*ret_age = g_ascii_strtod(db_res_text(res, 0, 2), NULL);
	}
	db_res_free(res);
	return QERR_OK;
}

static enum qerr maybe_checkpoint(struct db *db, int64_t id, const uint8_t *hash, char **reterr)
{
	if (!signer)
		return QERR_OK;
	int64_t prev_id = 0, prev_entries = 0;
	double age = 0;
	enum qerr e = last_checkpoint(db, &prev_id, &prev_entries, &age, reterr);
	if (e || (id - prev_id < signer_every_n && age < signer_every_s))
		return e;
	return store_checkpoint(db, signer, id, hash, prev_id, prev_entries, NULL, reterr);
}

/* The entries the open transaction added, for its witness lines. */
struct pending {
	int64_t from, to, id;
	uint8_t hash[HASH_BYTES];
};

static audit_commit_probe_fn *commit_probe;

void audit_set_commit_probe(audit_commit_probe_fn *fn)
{
	commit_probe = fn;
}

/* Drops from p the entries a ROLLBACK TO SAVEPOINT undid. */
static enum qerr trim_pending(struct db *db, struct pending *p, char **reterr)
{
	struct db_res *res = NULL;
	enum qerr e =
	    db_query(db, "SELECT seq, id, hash FROM audit_log ORDER BY id DESC LIMIT 1", 0, NULL, &res, reterr);
	if (e)
		return e;
	int64_t seq = db_res_rows(res) ? db_res_int(res, 0, 0) : 0;
	if (seq < p->to) {
		p->to = seq;
		p->id = seq ? db_res_int(res, 0, 1) : 0;
		size_t n = 0;
		g_autofree uint8_t *h = seq ? db_res_bytea(res, 0, 2, &n) : NULL;
		if (h && n == HASH_BYTES)
			memcpy(p->hash, h, HASH_BYTES);
	}
	db_res_free(res);
	return QERR_OK;
}

/* The commit hook. Before COMMIT (the append lock still held): drops entries a ROLLBACK TO
 * SAVEPOINT undid, then signs and writes the prepared head, so that a process killed right after
 * its COMMIT leaves no entry unsigned. After it: the committed head, synced (in a batch with the
 * other threads' commits) before the commit returns; after a COMMIT the server refused: the
 * prepared head withdrawn. */
static enum qerr on_commit(struct db *db, void *data, enum db_commit_stage stage, bool partly_rolled_back,
                           char **reterr)
{
	struct pending *p = data;
	enum qerr e = QERR_OK;
	if (stage == DB_BEFORE_COMMIT && partly_rolled_back)
		e = trim_pending(db, p, reterr);
	if (e || !witness || p->to < p->from)
		return e;
	if (stage == DB_BEFORE_COMMIT) {
		e = witness_prepare(witness, p->from, p->to, p->id, p->hash, reterr);
		if (!e && commit_probe)
			commit_probe(AUDIT_PROBE_PREPARED);
		return e;
	}
	if (stage == DB_NOT_COMMITTED)
		return witness_withdraw(witness, p->from, p->to, p->id, p->hash, reterr);
	if (commit_probe)
		commit_probe(AUDIT_PROBE_COMMITTED);
	return witness_record(witness, p->from, p->to, p->id, p->hash, true, reterr);
}

/* Notes an entry of the open transaction for its witness lines, written at its commit. */
static void note_entry(struct db *db, int64_t seq, int64_t id, const uint8_t hash[HASH_BYTES])
{
	if (!witness)
		return;
	struct pending *p = db_commit_data(db, on_commit);
	if (!p) {
		p = g_new0(struct pending, 1);
		p->from = seq;
		db_on_commit(db, on_commit, p, g_free);
	}
	p->to = seq;
	p->id = id;
	memcpy(p->hash, hash, HASH_BYTES);
}

/* Appends ev inside the open transaction. */
static enum qerr append_in_transaction(struct db *db, const struct audit_event *ev, char **reterr)
{
	enum qerr e = lock_log(db, reterr);
	if (e)
		return e;
	uint8_t prev[HASH_BYTES], hash[HASH_BYTES];
	int64_t seq = 0;
	g_autofree char *at = NULL;
	e = last_entry(db, &seq, prev, &at, reterr);
	if (e)
		return e;
	char oid[24], sseq[24];
	g_snprintf(oid, sizeof oid, "%lld", (long long)ev->object_id);
	g_snprintf(sseq, sizeof sseq, "%lld", (long long)++seq);
	const char *fields[7] = {nz(ev->actor),   nz(ev->action), nz(ev->object_type), oid,
	                         nz(ev->outcome), nz(ev->client), nz(ev->detail)};
	audit_entry_hash(prev, at, fields, hash);
	struct db_param p[11] = {DB_TEXT(at),
	                         DB_TEXT(fields[0]),
	                         DB_TEXT(fields[1]),
	                         DB_TEXT(fields[2]),
	                         DB_TEXT(oid),
	                         DB_TEXT(fields[4]),
	                         DB_TEXT(fields[5]),
	                         DB_TEXT(fields[6]),
	                         DB_BIN(prev, HASH_BYTES),
	                         DB_BIN(hash, HASH_BYTES),
	                         DB_TEXT(sseq)};
	struct db_res *res = NULL;
	e = db_query(db,
	             "INSERT INTO audit_log (at, actor, action, object_type, object_id, outcome, client, detail,"
	             " prev_hash, hash, seq) VALUES ($1::timestamptz, $2, $3, $4, $5::bigint, $6, $7, $8, $9, $10,"
	             " $11::bigint) RETURNING id",
	             11, p, &res, reterr);
	if (e)
		return e;
	int64_t id = db_res_int(res, 0, 0);
	db_res_free(res);
	e = maybe_checkpoint(db, id, hash, reterr);
	if (!e)
		note_entry(db, seq, id, hash);
	return e;
}

enum qerr audit_append(struct db *db, const struct audit_event *ev, char **reterr)
{
	if (db_in_transaction(db))
		return append_in_transaction(db, ev, reterr);
	/* a transaction of its own: the append lock lasts until the commit, and the commit signs it */
	enum qerr e = db_begin(db, reterr);
	if (!e)
		e = append_in_transaction(db, ev, reterr);
	if (!e)
		e = db_commit(db, reterr);
	else
		db_rollback(db);
	return e;
}

void audit_set_witness(const char *path, bool to_syslog)
{
	g_clear_pointer(&witness, witness_free);
	g_free(witness_file);
	witness_file = g_strdup(path);
	witness_syslog = to_syslog;
	if (path && signer)
		witness = witness_new(path, signer, to_syslog);
}

const char *audit_witness_path(void) { return witness_file; }

enum qerr audit_checkpoint_now(struct db *db, const struct vault *v, struct audit_checkpoint *ret, char **reterr)
{
	enum qerr e = db_begin(db, reterr);
	if (!e)
		e = lock_log(db, reterr);
	struct db_res *res = NULL;
	if (!e)
		e = db_query(db, "SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1", 0, NULL, &res, reterr);
	int64_t last = 0, prev_id = 0, prev_entries = 0;
	uint8_t hash[HASH_BYTES] = {0};
	if (!e && db_res_rows(res) == 1) {
		last = db_res_int(res, 0, 0);
		size_t n = 0;
		g_autofree uint8_t *h = db_res_bytea(res, 0, 1, &n);
		if (h && n == HASH_BYTES)
			memcpy(hash, h, HASH_BYTES);
	}
	db_res_free(res);
	double age = 0;
	if (!e)
		e = last_checkpoint(db, &prev_id, &prev_entries, &age, reterr);
	if (!e && prev_id > last)
		e = qerr_set(reterr, QERR_CRYPTO, "the audit log ends at entry %lld but a checkpoint covers entry %lld",
		             (long long)last, (long long)prev_id);
	if (!e)
		e = store_checkpoint(db, v, last, hash, prev_id, prev_entries, ret, reterr);
	if (!e)
		e = db_commit(db, reterr);
	if (e)
		db_rollback(db);
	return e;
}

static bool parse_hex(const char *text, uint8_t *out, size_t n)
{
	size_t got = 0;
	return text && strlen(text) == 2 * n && sodium_hex2bin(out, n, text, 2 * n, NULL, &got, NULL) == 0 && got == n;
}

static bool parse_int(const char *text, int64_t *out)
{
	char *end = NULL;
	long long v = text ? g_ascii_strtoll(text, &end, 10) : -1;
	if (!text || end == text || *end || v < 0)
		return false;
	*out = v;
	return true;
}

/* The value of "name: value" among lines (borrowed), or NULL. */
static const char *field(char **lines, const char *name)
{
	size_t n = strlen(name);
	for (int i = 0; lines[i]; i++)
		if (strncmp(lines[i], name, n) == 0 && lines[i][n] == ':' && lines[i][n + 1] == ' ')
			return lines[i] + n + 2;
	return NULL;
}

char *audit_checkpoint_format(const struct audit_checkpoint *cp)
{
	g_autofree char *msg = audit_checkpoint_message(cp);
	char sig[2 * VAULT_SIG_BYTES + 1];
	sodium_bin2hex(sig, sizeof sig, cp->signature, VAULT_SIG_BYTES);
	GString *s = g_string_new(msg);
	g_string_append_printf(s, "signature: %s\n", sig);
	if (cp->proof_from > 0) { /* unsigned: a proof stands or falls by the roots it links */
		g_string_append_printf(s, "consistency-from: %lld\nconsistency-proof:", (long long)cp->proof_from);
		for (int i = 0; i < cp->proof_len; i++) {
			char h[2 * HASH_BYTES + 1];
			sodium_bin2hex(h, sizeof h, cp->proof[i], HASH_BYTES);
			g_string_append_printf(s, "%s%s", i ? "," : " ", h);
		}
		g_string_append_c(s, '\n');
	}
	return g_string_free(s, FALSE);
}

/* "consistency-from" and "consistency-proof" of a checkpoint's text. */
static bool parse_proof(char **lines, struct audit_checkpoint *cp)
{
	const char *from = field(lines, "consistency-from"), *proof = NULL;
	if (!from)
		return true;
	for (int i = 0; lines[i]; i++)
		if (g_str_has_prefix(lines[i], "consistency-proof:"))
			proof = lines[i] + strlen("consistency-proof:");
	if (!parse_int(from, &cp->proof_from) || cp->proof_from < 1 || cp->proof_from > cp->entries || !proof)
		return false;
	g_autofree char *list = g_strstrip(g_strdup(proof));
	g_auto(GStrv) parts = g_strsplit(list, ",", MERKLE_MAX_PROOF + 1);
	cp->proof_len = 0;
	for (int i = 0; parts[i] && parts[i][0]; i++)
		if (i >= MERKLE_MAX_PROOF || !parse_hex(parts[i], cp->proof[cp->proof_len++], HASH_BYTES))
			return false;
	return true;
}

enum qerr audit_checkpoint_parse(const char *text, struct audit_checkpoint *ret, char **reterr)
{
	bool v2 = g_str_has_prefix(text, CP_MAGIC2 "\n");
	if (strlen(text) > CP_MAX_TEXT || !(v2 || g_str_has_prefix(text, CP_MAGIC "\n")))
		return qerr_set(reterr, QERR_BAD_INPUT, "not a quire audit checkpoint");
	g_auto(GStrv) lines = g_strsplit(text, "\n", 16);
	struct audit_checkpoint cp = {.has_root = v2};
	const char *at = field(lines, "at");
	if (!parse_int(field(lines, "last-entry"), &cp.last_entry_id) || !parse_int(field(lines, "entries"), &cp.entries) ||
	    !at || strlen(at) >= sizeof cp.at || !parse_hex(field(lines, "hash"), cp.hash, HASH_BYTES) ||
	    !parse_hex(field(lines, "public-key"), cp.public_key, VAULT_PK_BYTES) ||
	    !parse_hex(field(lines, "signature"), cp.signature, VAULT_SIG_BYTES))
		return qerr_set(reterr, QERR_BAD_INPUT, "the checkpoint is incomplete or malformed");
	if ((v2 && !parse_hex(field(lines, "merkle-root"), cp.root, HASH_BYTES)) || !parse_proof(lines, &cp))
		return qerr_set(reterr, QERR_BAD_INPUT, "the checkpoint's Merkle root or consistency proof is malformed");
	g_strlcpy(cp.at, at, sizeof cp.at);
	g_autofree char *msg = audit_checkpoint_message(&cp);
	if (!vault_sign_verify(cp.public_key, msg, strlen(msg), cp.signature))
		return qerr_set(reterr, QERR_CRYPTO, "the checkpoint's signature is not valid (the file was altered)");
	*ret = cp;
	return QERR_OK;
}

