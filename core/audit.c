/* audit: hash-chained audit entries and signed checkpoints in PostgreSQL. */
#include "core/audit.h"

#include <glib.h>
#include <sodium.h>
#include <string.h>

#include "core/db.h"

#define AUDIT_LOCK_KEY 7277001 /* advisory lock id serialising appends */
#define HASH_BYTES AUDIT_HASH_BYTES
#define VERIFY_BATCH 5000
#define MAX_CHECKPOINTS 100000
#define TS_FORMAT(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
#define CP_MAGIC "quire-audit-checkpoint-v1"

static const struct vault *signer;
static int signer_every_n = 1000, signer_every_s = 3600;

static const char *nz(const char *s) { return s ? s : ""; }

void audit_set_signer(const struct vault *v, int every_n, int every_s)
{
	signer = v;
	signer_every_n = every_n > 0 ? every_n : 1000;
	signer_every_s = every_s > 0 ? every_s : 3600;
}

/* Canonical text: fixed field order, one field per line, lengths prefixed so
 * that no choice of field values can produce another entry's text. */
static void entry_hash(const uint8_t prev[HASH_BYTES], const char *at, const char *const fields[7],
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

static enum qerr last_hash(struct db *db, uint8_t prev[HASH_BYTES], char **reterr)
{
	struct db_res *res = NULL;
	enum qerr e = db_query(db, "SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1", 0, NULL, &res, reterr);
	if (e)
		return e;
	memset(prev, 0, HASH_BYTES);
	if (db_res_rows(res) == 1) {
		size_t n = 0;
		g_autofree uint8_t *h = db_res_bytea(res, 0, 0, &n);
		if (h && n == HASH_BYTES)
			memcpy(prev, h, HASH_BYTES);
	}
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
static char *checkpoint_message(const struct audit_checkpoint *cp)
{
	char hex[2 * HASH_BYTES + 1], pk[2 * VAULT_PK_BYTES + 1];
	sodium_bin2hex(hex, sizeof hex, cp->hash, HASH_BYTES);
	sodium_bin2hex(pk, sizeof pk, cp->public_key, VAULT_PK_BYTES);
	return g_strdup_printf(CP_MAGIC "\nlast-entry: %lld\nentries: %lld\nat: %s\nhash: %s\npublic-key: %s\n",
	                       (long long)cp->last_entry_id, (long long)cp->entries, cp->at, hex, pk);
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
	g_autofree char *msg = checkpoint_message(&cp);
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

enum qerr audit_append(struct db *db, const struct audit_event *ev, char **reterr)
{
	enum qerr e = lock_log(db, reterr);
	if (e)
		return e;
	uint8_t prev[HASH_BYTES], hash[HASH_BYTES];
	e = last_hash(db, prev, reterr);
	if (e)
		return e;
	struct db_res *res = NULL;
	e = db_query(db, "SELECT " TS_FORMAT("clock_timestamp()"), 0, NULL, &res, reterr);
	if (e)
		return e;
	g_autofree char *at = g_strdup(db_res_text(res, 0, 0));
	db_res_free(res);

	char oid[24];
	g_snprintf(oid, sizeof oid, "%lld", (long long)ev->object_id);
	const char *fields[7] = {nz(ev->actor),  nz(ev->action), nz(ev->object_type), oid,
	                         nz(ev->outcome), nz(ev->client), nz(ev->detail)};
	entry_hash(prev, at, fields, hash);
	struct db_param p[10] = {DB_TEXT(at),        DB_TEXT(fields[0]), DB_TEXT(fields[1]), DB_TEXT(fields[2]),
	                         DB_TEXT(oid),       DB_TEXT(fields[4]), DB_TEXT(fields[5]), DB_TEXT(fields[6]),
	                         DB_BIN(prev, HASH_BYTES), DB_BIN(hash, HASH_BYTES)};
	e = db_query(db,
	             "INSERT INTO audit_log (at, actor, action, object_type, object_id, outcome, client, detail,"
	             " prev_hash, hash) VALUES ($1::timestamptz, $2, $3, $4, $5::bigint, $6, $7, $8, $9, $10)"
	             " RETURNING id",
	             10, p, &res, reterr);
	if (e)
		return e;
	int64_t id = db_res_int(res, 0, 0);
	db_res_free(res);
	return maybe_checkpoint(db, id, hash, reterr);
}

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

char *audit_checkpoint_format(const struct audit_checkpoint *cp)
{
	g_autofree char *msg = checkpoint_message(cp);
	char sig[2 * VAULT_SIG_BYTES + 1];
	sodium_bin2hex(sig, sizeof sig, cp->signature, VAULT_SIG_BYTES);
	return g_strdup_printf("%ssignature: %s\n", msg, sig);
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

enum qerr audit_checkpoint_parse(const char *text, struct audit_checkpoint *ret, char **reterr)
{
	if (strlen(text) > 4096 || !g_str_has_prefix(text, CP_MAGIC "\n"))
		return qerr_set(reterr, QERR_BAD_INPUT, "not a quire audit checkpoint");
	g_auto(GStrv) lines = g_strsplit(text, "\n", 16);
	struct audit_checkpoint cp = {0};
	const char *at = field(lines, "at");
	if (!parse_int(field(lines, "last-entry"), &cp.last_entry_id) || !parse_int(field(lines, "entries"), &cp.entries) ||
	    !at || strlen(at) >= sizeof cp.at || !parse_hex(field(lines, "hash"), cp.hash, HASH_BYTES) ||
	    !parse_hex(field(lines, "public-key"), cp.public_key, VAULT_PK_BYTES) ||
	    !parse_hex(field(lines, "signature"), cp.signature, VAULT_SIG_BYTES))
		return qerr_set(reterr, QERR_BAD_INPUT, "the checkpoint is incomplete or malformed");
	g_strlcpy(cp.at, at, sizeof cp.at);
	g_autofree char *msg = checkpoint_message(&cp);
	if (!vault_sign_verify(cp.public_key, msg, strlen(msg), cp.signature))
		return qerr_set(reterr, QERR_CRYPTO, "the checkpoint's signature is not valid (the file was altered)");
	*ret = cp;
	return QERR_OK;
}

enum qerr audit_verify(struct db *db, int64_t *ret_entries, char **reterr)
{
	struct audit_report r = {0};
	enum qerr e = audit_verify_signed(db, NULL, NULL, &r, reterr);
	if (!e)
		*ret_entries = r.entries;
	return e;
}

/* Verification state: the checkpoints to meet, in entry order, and the chain so far. */
struct walk {
	struct audit_checkpoint *cps;
	int n_cps, next_cp;
	uint8_t prev[HASH_BYTES];
	int64_t entries, last_id, confirmed_id; /* confirmed_id: the last entry a checkpoint vouched for */
	struct audit_report *report;
};

static int by_entry(const void *a, const void *b)
{
	int64_t x = ((const struct audit_checkpoint *)a)->last_entry_id;
	int64_t y = ((const struct audit_checkpoint *)b)->last_entry_id;
	return x < y ? -1 : x > y;
}

static enum qerr load_checkpoints(struct db *db, const uint8_t *pk, struct walk *w, char **reterr)
{
	struct db_res *res = NULL;
	enum qerr e = db_query(db,
	                       "SELECT id, last_entry_id, entries, " TS_FORMAT("at") ", hash, public_key, signature"
	                       " FROM audit_checkpoints ORDER BY id LIMIT 100001",
	                       0, NULL, &res, reterr);
	if (e)
		return e;
	int rows = db_res_rows(res);
	if (rows > MAX_CHECKPOINTS)
		rows = MAX_CHECKPOINTS; /* the newest beyond this are not checked; the chain still is */
	w->cps = g_renew(struct audit_checkpoint, w->cps, (size_t)w->n_cps + (size_t)rows);
	for (int r = 0; r < rows && !e; r++) {
		struct audit_checkpoint *cp = &w->cps[w->n_cps];
		memset(cp, 0, sizeof *cp);
		cp->last_entry_id = db_res_int(res, r, 1);
		cp->entries = db_res_int(res, r, 2);
		g_strlcpy(cp->at, db_res_text(res, r, 3), sizeof cp->at);
		size_t hl = 0, kl = 0, sl = 0;
		g_autofree uint8_t *h = db_res_bytea(res, r, 4, &hl);
		g_autofree uint8_t *k = db_res_bytea(res, r, 5, &kl);
		g_autofree uint8_t *s = db_res_bytea(res, r, 6, &sl);
		bool shaped = h && k && s && hl == HASH_BYTES && kl == VAULT_PK_BYTES && sl == VAULT_SIG_BYTES;
		if (shaped) {
			memcpy(cp->hash, h, HASH_BYTES);
			memcpy(cp->public_key, k, VAULT_PK_BYTES);
			memcpy(cp->signature, s, VAULT_SIG_BYTES);
		}
		g_autofree char *msg = checkpoint_message(cp);
		if (!shaped || !vault_equal(cp->public_key, pk, VAULT_PK_BYTES) ||
		    !vault_sign_verify(pk, msg, strlen(msg), cp->signature))
			e = qerr_set(reterr, QERR_CRYPTO, "stored audit checkpoint %s (entry %lld) has no valid signature",
			             db_res_text(res, r, 0), (long long)cp->last_entry_id);
		w->n_cps++;
	}
	db_res_free(res);
	return e;
}

static enum qerr checkpoint_mismatch(struct walk *w, const struct audit_checkpoint *cp, const char *what,
                                     char **reterr)
{
	w->report->first_bad = w->confirmed_id + 1;
	return qerr_set(reterr, QERR_CRYPTO,
	                "audit log does not match the signed checkpoint of %s at entry %lld (%s): an entry after entry "
	                "%lld, the last one a checkpoint confirms, was changed, removed or inserted and the chain "
	                "recomputed; first entry that does not match: %lld",
	                cp->at, (long long)cp->last_entry_id, what, (long long)w->confirmed_id,
	                (long long)w->confirmed_id + 1);
}

/* Meets the checkpoints at or before entry id (the entry just checked, hash its chain hash). */
static enum qerr meet_checkpoints(struct walk *w, int64_t id, const uint8_t *hash, char **reterr)
{
	for (; w->next_cp < w->n_cps && w->cps[w->next_cp].last_entry_id <= id; w->next_cp++) {
		const struct audit_checkpoint *cp = &w->cps[w->next_cp];
		if (cp->last_entry_id == 0 && cp->entries == 0)
			continue; /* a checkpoint of the empty log */
		if (cp->last_entry_id < id)
			return checkpoint_mismatch(w, cp, "its last entry is missing", reterr);
		if (cp->entries != w->entries)
			return checkpoint_mismatch(w, cp, "entry count differs", reterr);
		if (!vault_equal(cp->hash, hash, HASH_BYTES))
			return checkpoint_mismatch(w, cp, "chain hash differs", reterr);
		w->confirmed_id = id;
		w->report->checkpoints++;
	}
	return QERR_OK;
}

static enum qerr walk_rows(struct db_res *res, struct walk *w, char **reterr)
{
	enum qerr e = QERR_OK;
	uint8_t want[HASH_BYTES];
	for (int r = 0; r < db_res_rows(res) && !e; r++) {
		const char *fields[7];
		for (int i = 0; i < 7; i++)
			fields[i] = db_res_text(res, r, 2 + i);
		size_t plen = 0, hlen = 0;
		g_autofree uint8_t *p = db_res_bytea(res, r, 9, &plen);
		g_autofree uint8_t *h = db_res_bytea(res, r, 10, &hlen);
		int64_t id = db_res_int(res, r, 0);
		entry_hash(w->prev, db_res_text(res, r, 1), fields, want);
		w->entries++;
		w->last_id = id;
		if (!p || plen != HASH_BYTES || memcmp(p, w->prev, HASH_BYTES) != 0) {
			w->report->first_bad = id;
			return qerr_set(reterr, QERR_CRYPTO,
			                "audit chain broken at entry %lld: it does not follow the entry before it (entries "
			                "removed or inserted)",
			                (long long)id);
		}
		if (!h || hlen != HASH_BYTES || memcmp(h, want, HASH_BYTES) != 0) {
			w->report->first_bad = id;
			return qerr_set(reterr, QERR_CRYPTO, "audit chain broken at entry %lld: its content was changed",
			                (long long)id);
		}
		memcpy(w->prev, want, HASH_BYTES);
		e = meet_checkpoints(w, id, want, reterr);
	}
	return e;
}

enum qerr audit_verify_signed(struct db *db, const uint8_t pk[VAULT_PK_BYTES], const struct audit_checkpoint *witness,
                              struct audit_report *ret, char **reterr)
{
	struct walk w = {.report = ret};
	memset(ret, 0, sizeof *ret);
	enum qerr e = pk ? load_checkpoints(db, pk, &w, reterr) : QERR_OK;
	if (!e && witness) {
		if (pk && !vault_equal(witness->public_key, pk, VAULT_PK_BYTES))
			e = qerr_set(reterr, QERR_CRYPTO, "the checkpoint file was signed by another key than this vault's");
		w.cps = g_renew(struct audit_checkpoint, w.cps, (size_t)w.n_cps + 1);
		w.cps[w.n_cps++] = *witness;
	}
	if (w.n_cps > 1)
		qsort(w.cps, (size_t)w.n_cps, sizeof *w.cps, by_entry);
	while (!e) {
		char after[24];
		g_snprintf(after, sizeof after, "%lld", (long long)w.last_id);
		struct db_param p[1] = {DB_TEXT(after)};
		struct db_res *res = NULL;
		e = db_query(db,
		             "SELECT id, " TS_FORMAT("at") ", actor, action, object_type, object_id::text, outcome, client,"
		             " detail, prev_hash, hash FROM audit_log WHERE id > $1::bigint ORDER BY id LIMIT 5000",
		             1, p, &res, reterr);
		int rows = e ? 0 : db_res_rows(res);
		if (!e)
			e = walk_rows(res, &w, reterr);
		db_res_free(res);
		if (rows < VERIFY_BATCH)
			break;
	}
	while (w.next_cp < w.n_cps && w.cps[w.next_cp].last_entry_id == 0 && w.cps[w.next_cp].entries == 0)
		w.next_cp++;
	if (!e && w.next_cp < w.n_cps)
		e = checkpoint_mismatch(&w, &w.cps[w.next_cp], "the log ends before it: entries were removed", reterr);
	ret->entries = w.entries;
	g_free(w.cps);
	return e;
}
