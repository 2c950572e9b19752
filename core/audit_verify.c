/* audit_verify: walking the audit chain against everything signed about it.
 *
 * What the walk trusts comes from outside the database where it can: the witness
 * files (lines signed after every commit, core/witness.h), exported checkpoints.
 * The stored checkpoints are checked too, but a superuser can delete them, so
 * they never make a log pass on their own. The rules:
 *   - every entry's prev_hash and hash follow from the one before (edits, naive
 *     removals and insertions: the first bad entry is named exactly);
 *   - every signed head (witness line, checkpoint) meets the entry at its
 *     position with the same id and chain hash (a recomputed chain forks);
 *   - the log reaches the newest signed head (a cut tail, an emptied table);
 *   - every entry lies in the range of some committed witness line (an entry
 *     written behind the application's back is signed by nobody, even when a
 *     later line's head includes it), or of a prepared line whose head the log
 *     matches exactly (the commit happened; its process was killed before the
 *     committed line) and that no withdrawn line names (a COMMIT the server
 *     refused). A prepared head the log does not match is a commit that was
 *     rolled back, or is still under way: it vouches for nothing and says
 *     nothing of the log's length, which only committed heads do;
 *   - no witness line signed a newer keyring generation than the database holds.
 * Positions are counted by the walk itself, never read from the table. */
#include "core/audit.h"

#include <glib.h>
#include <sodium.h>
#include <string.h>
#include <unistd.h>

#include "core/db.h"
#include "core/internal.h"
#include "core/witness.h"

#define HASH_BYTES AUDIT_HASH_BYTES
#define VERIFY_BATCH 5000
#define MAX_CHECKPOINTS 100000
#define MAX_UNCOVERED 100000 /* uncovered entries remembered for a second look */
#define MAX_LEAVES ((int64_t)100000000)
#define TS_FORMAT(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

struct walk {
	const struct audit_verify_options *o;
	struct audit_checkpoint *cps; /* checkpoints to meet, in entry order */
	int n_cps, next_cp;
	struct witness_head *heads; /* committed witness lines, by position */
	size_t n_heads, next_head;
	GArray *prepared; /* prepared witness lines (struct prepared) */
	GArray *ranges;   /* positions committed lines cover, merged, ascending (int64_t pairs) */
	guint next_range;
	GArray *uncovered; /* struct uncovered: entries no committed range covered, by position */
	GArray *leaves;    /* chain hashes, when a Merkle root is wanted */
	const char *witness_names;
	uint8_t prev[HASH_BYTES];
	int64_t entries, last_id;
	int64_t confirmed_seq;   /* the last position a signed head confirmed */
	int64_t after_confirmed; /* the id of the entry just after it (0: not walked yet) */
	struct audit_report *report;
};

struct uncovered {
	int64_t pos, id;
	uint8_t hash[HASH_BYTES];
};

/* A prepared line: its head and the positions it vouches for (one transaction's, so one range). */
struct prepared {
	int64_t seq, id;
	uint8_t hash[HASH_BYTES];
	struct witness_range range;
	bool withdrawn; /* a line saying the commit of this head failed */
};

static int by_entry(const void *a, const void *b)
{
	int64_t x = ((const struct audit_checkpoint *)a)->last_entry_id;
	int64_t y = ((const struct audit_checkpoint *)b)->last_entry_id;
	return x < y ? -1 : x > y;
}

static int by_seq(const void *a, const void *b)
{
	int64_t x = ((const struct witness_head *)a)->seq, y = ((const struct witness_head *)b)->seq;
	return x < y ? -1 : x > y;
}

static int by_start(gconstpointer a, gconstpointer b)
{
	int64_t x = ((const struct witness_range *)a)->first, y = ((const struct witness_range *)b)->first;
	return x < y ? -1 : x > y;
}

static enum qerr load_checkpoints(struct db *db, const uint8_t *pk, struct walk *w, char **reterr)
{
	struct db_res *res = NULL;
	enum qerr e = db_query(
	    db,
	    "SELECT id, last_entry_id, entries, " TS_FORMAT("at") ", hash, public_key, signature"
	                                                          " FROM audit_checkpoints ORDER BY id LIMIT 100001",
	    0, NULL, &res, reterr);
	if (e)
		return e;
	int rows = db_res_rows(res);
	if (rows > MAX_CHECKPOINTS)
		rows = MAX_CHECKPOINTS; /* the newest beyond this are not checked; the chain and witness still are */
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
		g_autofree char *msg = audit_checkpoint_message(cp);
		if (!shaped || !vault_equal(cp->public_key, pk, VAULT_PK_BYTES) ||
		    !vault_sign_verify(pk, msg, strlen(msg), cp->signature))
			e = qerr_set(reterr, QERR_CRYPTO,
			             "stored audit checkpoint %s (entry %lld) has no valid signature",
			             db_res_text(res, r, 0), (long long)cp->last_entry_id);
		w->n_cps++;
	}
	db_res_free(res);
	return e;
}

/* Sorts and merges ranges in place. */
static void merge_ranges(GArray *ranges)
{
	g_array_sort(ranges, by_start);
	guint out = 0;
	for (guint i = 0; i < ranges->len; i++) {
		struct witness_range r = g_array_index(ranges, struct witness_range, i);
		struct witness_range *last = out ? &g_array_index(ranges, struct witness_range, out - 1) : NULL;
		if (last && r.first <= last->last + 1)
			last->last = MAX(last->last, r.last);
		else
			g_array_index(ranges, struct witness_range, out++) = r;
	}
	g_array_set_size(ranges, out);
}

/* Files one line read: a committed head and its ranges, or a prepared head. */
static void take_head(const struct witness_head *h, GArray *heads, GArray *ranges, struct walk *w)
{
	w->report->ring_generation = MAX(w->report->ring_generation, h->ring);
	if (h->prepared || h->withdrawn) {
		for (int i = 0; i < h->n_ranges; i++) {
			struct prepared p = {.seq = h->seq, .id = h->id, .range = h->ranges[i], .withdrawn = h->withdrawn};
			memcpy(p.hash, h->hash, HASH_BYTES);
			g_array_append_val(w->prepared, p);
		}
		return;
	}
	g_array_append_vals(ranges, h->ranges, (guint)h->n_ranges);
	g_array_append_vals(heads, h, 1);
}

/* Reads the witness files: committed heads sorted by position, their ranges merged, prepared heads. */
static enum qerr load_witness(const char *const *files, const uint8_t *pk, struct walk *w, char **reterr)
{
	GArray *heads = g_array_new(FALSE, FALSE, sizeof(struct witness_head));
	GArray *ranges = g_array_new(FALSE, FALSE, sizeof(struct witness_range));
	g_array_set_size(w->prepared, 0);
	enum qerr e = QERR_OK;
	int64_t lines = 0;
	for (int f = 0; files[f] && !e; f++) {
		struct witness_head *h = NULL;
		size_t n = 0;
		e = witness_read(files[f], pk, &h, &n, reterr);
		if (e == QERR_NOT_FOUND) { /* the file of a host that has not appended yet; coverage decides */
			g_clear_pointer(reterr, g_free);
			e = QERR_OK;
		}
		for (size_t i = 0; i < n; i++)
			take_head(&h[i], heads, ranges, w);
		lines += (int64_t)n;
		g_free(h);
	}
	g_array_sort(heads, by_seq);
	merge_ranges(ranges);
	g_free(w->heads);
	if (w->ranges)
		g_array_free(w->ranges, TRUE);
	w->n_heads = heads->len;
	w->heads = (struct witness_head *)(void *)g_array_free(heads, FALSE);
	w->ranges = ranges;
	w->report->witness_heads = lines;
	return e;
}

/* The first entry not confirmed by a signed head, for the messages. */
static int64_t first_unconfirmed(struct walk *w)
{
	w->report->first_bad = w->after_confirmed ? w->after_confirmed : w->last_id;
	return w->report->first_bad;
}

static enum qerr checkpoint_mismatch(struct walk *w, const struct audit_checkpoint *cp, const char *what, char **reterr)
{
	int64_t bad = first_unconfirmed(w);
	return qerr_set(reterr, QERR_CRYPTO,
	                "audit log does not match the signed checkpoint of %s at entry %lld (%s): an entry after the "
	                "last one a signed head confirms was changed, removed or inserted and the chain recomputed; "
	                "first entry that does not match: %lld",
	                cp->at, (long long)cp->last_entry_id, what, (long long)bad);
}

static void confirm(struct walk *w)
{
	if (w->confirmed_seq != w->entries) {
		w->confirmed_seq = w->entries;
		w->after_confirmed = 0;
	}
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
		confirm(w);
		w->report->checkpoints++;
	}
	return QERR_OK;
}

/* Meets the witness lines whose head is the entry just checked (at position w->entries). */
static enum qerr meet_heads(struct walk *w, int64_t id, const uint8_t *hash, char **reterr)
{
	for (; w->next_head < w->n_heads && w->heads[w->next_head].seq == w->entries; w->next_head++) {
		const struct witness_head *h = &w->heads[w->next_head];
		if (h->id != id || !vault_equal(h->hash, hash, HASH_BYTES)) {
			int64_t bad = first_unconfirmed(w);
			return qerr_set(
			    reterr, QERR_CRYPTO,
			    "audit log forks from its witness (%s): a signed head has entry %lld as number %lld of "
			    "the log, the database has entry %lld there%s; entries after number %lld, the last "
			    "a signed head confirms, were changed, removed or inserted and the chain recomputed; "
			    "first entry that does not match: %lld",
			    w->witness_names, (long long)h->id, (long long)h->seq, (long long)id,
			    h->id == id ? " with another chain hash" : "", (long long)w->confirmed_seq, (long long)bad);
		}
		confirm(w);
	}
	return QERR_OK;
}

/* Notes whether the entry at position w->entries (id, chain hash hash) lies in a committed range. */
static void check_covered(struct walk *w, int64_t id, const uint8_t *hash)
{
	GArray *ranges = w->ranges;
	while (w->next_range < ranges->len &&
	       g_array_index(ranges, struct witness_range, w->next_range).last < w->entries)
		w->next_range++;
	const struct witness_range *r =
	    w->next_range < ranges->len ? &g_array_index(ranges, struct witness_range, w->next_range) : NULL;
	if (r && r->first <= w->entries) {
		w->report->covered++;
	} else if (w->uncovered->len < MAX_UNCOVERED) {
		struct uncovered u = {.pos = w->entries, .id = id};
		memcpy(u.hash, hash, HASH_BYTES);
		g_array_append_val(w->uncovered, u);
	}
}

static enum qerr walk_entry(struct db_res *res, int r, struct walk *w, char **reterr)
{
	const char *fields[7];
	uint8_t want[HASH_BYTES];
	for (int i = 0; i < 7; i++)
		fields[i] = db_res_text(res, r, 2 + i);
	size_t plen = 0, hlen = 0;
	g_autofree uint8_t *p = db_res_bytea(res, r, 9, &plen);
	g_autofree uint8_t *h = db_res_bytea(res, r, 10, &hlen);
	int64_t id = db_res_int(res, r, 0);
	audit_entry_hash(w->prev, db_res_text(res, r, 1), fields, want);
	w->entries++;
	w->last_id = id;
	if (!w->after_confirmed)
		w->after_confirmed = id;
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
	if (w->leaves && w->entries <= MAX_LEAVES)
		g_array_append_vals(w->leaves, want, HASH_BYTES);
	if (w->ranges)
		check_covered(w, id, want);
	enum qerr e = meet_checkpoints(w, id, want, reterr);
	return e ? e : meet_heads(w, id, want, reterr);
}

static enum qerr walk_log(struct db *db, struct walk *w, char **reterr)
{
	enum qerr e = QERR_OK;
	while (!e) {
		char after[24];
		g_snprintf(after, sizeof after, "%lld", (long long)w->last_id);
		struct db_param p[1] = {DB_TEXT(after)};
		struct db_res *res = NULL;
		e = db_query(
		    db,
		    "SELECT id, " TS_FORMAT(
		        "at") ", actor, action, object_type, object_id::text, outcome, client,"
		              " detail, prev_hash, hash FROM audit_log WHERE id > $1::bigint ORDER BY id LIMIT 5000",
		    1, p, &res, reterr);
		int rows = e ? 0 : db_res_rows(res);
		for (int r = 0; r < rows && !e; r++)
			e = walk_entry(res, r, w, reterr);
		db_res_free(res);
		if (rows < VERIFY_BATCH)
			break;
	}
	return e;
}

/* After the walk: signed heads beyond the log's end mean it was cut short. */
static enum qerr check_end(struct walk *w, char **reterr)
{
	while (w->next_cp < w->n_cps && w->cps[w->next_cp].last_entry_id == 0 && w->cps[w->next_cp].entries == 0)
		w->next_cp++;
	if (w->next_head < w->n_heads) {
		const struct witness_head *h = &w->heads[w->n_heads - 1];
		/* entries walked after the last confirmed one do not match either (the log was cut, then grew) */
		w->report->first_bad = w->after_confirmed ? w->after_confirmed : h->id;
		return qerr_set(
		    reterr, QERR_CRYPTO,
		    "audit log is shorter than its witness (%s): the database holds %lld entries, ending at "
		    "entry %lld, but a signed head has %lld, ending at entry %lld: entries were removed (or the "
		    "database was restored from an older copy); first entry that does not match: %lld",
		    w->witness_names, (long long)w->entries, (long long)w->last_id, (long long)h->seq, (long long)h->id,
		    (long long)w->report->first_bad);
	}
	if (w->next_cp < w->n_cps)
		return checkpoint_mismatch(w, &w->cps[w->next_cp], "the log ends before it: entries were removed",
		                           reterr);
	return QERR_OK;
}

/* The witness files to read, as one string for messages (g_free). */
static char *names_of(const char *const *files)
{
	return files[0] ? g_strjoinv(", ", (char **)files) : g_strdup("no witness file given");
}

static int by_pos(gconstpointer a, gconstpointer b)
{
	int64_t x = ((const struct uncovered *)a)->pos, y = ((const struct uncovered *)b)->pos;
	return x < y ? -1 : x > y;
}

/* Whether pos lies in one of ranges (merged, ascending). */
static bool range_has(const GArray *ranges, int64_t pos)
{
	guint lo = 0, hi = ranges->len;
	while (lo < hi) {
		guint mid = lo + (hi - lo) / 2;
		const struct witness_range *r = &g_array_index(ranges, struct witness_range, mid);
		if (r->last < pos)
			lo = mid + 1;
		else if (r->first > pos)
			hi = mid;
		else
			return true;
	}
	return false;
}

/* Whether a withdrawn line names the head of h. */
static bool withdrawn(const GArray *prepared, const struct prepared *h)
{
	for (guint i = 0; i < prepared->len; i++) {
		const struct prepared *x = &g_array_index(prepared, struct prepared, i);
		if (x->withdrawn && x->seq == h->seq && x->id == h->id && vault_equal(x->hash, h->hash, HASH_BYTES))
			return true;
	}
	return false;
}

/* Keeps in w->uncovered the entries that neither a committed range nor a prepared head the log
 * matches covers. A prepared head matches when the entry at its position is the uncovered one
 * with its id and chain hash (the chain then pins every entry up to it), and no line withdrew it. */
static void cover(struct walk *w)
{
	GArray *matched = g_array_new(FALSE, FALSE, sizeof(struct witness_range));
	for (guint p = 0; p < w->prepared->len; p++) {
		const struct prepared *h = &g_array_index(w->prepared, struct prepared, p);
		struct uncovered key = {.pos = h->seq};
		guint at = 0;
		const struct uncovered *u = g_array_binary_search(w->uncovered, &key, by_pos, &at)
		                                ? &g_array_index(w->uncovered, struct uncovered, at)
		                                : NULL;
		if (!h->withdrawn && u && u->id == h->id && vault_equal(u->hash, h->hash, HASH_BYTES) &&
		    !withdrawn(w->prepared, h)) {
			g_array_append_val(matched, h->range);
			w->report->prepared++;
		} /* else rolled back, or under way: it vouches for nothing */
	}
	merge_ranges(matched);
	guint keep = 0;
	for (guint i = 0; i < w->uncovered->len; i++) {
		struct uncovered u = g_array_index(w->uncovered, struct uncovered, i);
		if (range_has(w->ranges, u.pos) || range_has(matched, u.pos))
			w->report->covered++;
		else
			g_array_index(w->uncovered, struct uncovered, keep++) = u;
	}
	g_array_set_size(w->uncovered, keep);
	g_array_free(matched, TRUE);
}

/* Entries no witness line covers fail the check, after one more look at the files for lines
 * of commits that were still writing theirs when the walk read the log. */
static enum qerr check_coverage(struct walk *w, const char *const *files, char **reterr)
{
	for (int tries = 0; w->uncovered->len && tries < 40; tries++) {
		if (tries)
			g_usleep(50000);
		enum qerr e = load_witness(files, w->o->pk, w, reterr);
		if (e)
			return e;
		cover(w);
	}
	if (!w->uncovered->len && w->report->covered == w->entries)
		return QERR_OK;
	int64_t n = w->entries - w->report->covered;
	const struct uncovered *u = w->uncovered->len ? &g_array_index(w->uncovered, struct uncovered, 0) : NULL;
	w->report->first_bad = u ? u->id : 0;
	if (!w->n_heads && !w->prepared->len)
		return qerr_set(
		    reterr, QERR_CRYPTO,
		    "audit log has %lld entries but no signed head in %s: the witness is missing (a log begun "
		    "before there was one is signed as it stands, once, by `quire audit checkpoint`); first "
		    "entry no signed head covers: %lld",
		    (long long)w->entries, w->witness_names, (long long)(u ? u->id : 0));
	return qerr_set(
	    reterr, QERR_CRYPTO,
	    "audit log has %lld entries that no signed head covers (%s), the first of them entry %lld (number "
	    "%lld of the log): written behind the application's back, or by a host whose witness file was "
	    "not given",
	    (long long)n, w->witness_names, (long long)(u ? u->id : 0), (long long)(u ? u->pos : 0));
}

/* A witness line signed a newer keyring generation than the database holds: rolled back. */
static enum qerr check_ring(const struct walk *w, char **reterr)
{
	const struct audit_verify_options *o = w->o;
	if (!o->check_ring || w->report->ring_generation <= o->ring_generation)
		return QERR_OK;
	if (o->ring_generation == 0)
		return qerr_set(reterr, QERR_CRYPTO,
		                "the keyring in the database was rolled back: the witness (%s) signed generation %lld, "
		                "the database holds a keyring whose generation is not sealed in (an older copy)",
		                w->witness_names, (long long)w->report->ring_generation);
	return qerr_set(reterr, QERR_CRYPTO,
	                "the keyring in the database was rolled back: the witness (%s) signed generation %lld, the "
	                "database holds generation %lld (restored from an older copy: key versions retired since "
	                "are back, newer ones are gone)",
	                w->witness_names, (long long)w->report->ring_generation, (long long)o->ring_generation);
}

/* The log must extend the earlier exported head o->since (a consistency proof between the two
 * Merkle roots), and an exported head carrying a proof from it must extend it too. */
static enum qerr check_since(struct walk *w, char **reterr)
{
	const struct audit_checkpoint *old = w->o->since, *cp = w->o->checkpoint;
	if (!old->has_root)
		return qerr_set(reterr, QERR_BAD_INPUT,
		                "the earlier checkpoint has no Merkle root (made by an older quire)");
	if (old->entries > w->entries)
		return qerr_set(
		    reterr, QERR_CRYPTO,
		    "audit log is shorter than the earlier checkpoint of %s: it has %lld entries, the checkpoint "
		    "%lld",
		    old->at, (long long)w->entries, (long long)old->entries);
	uint8_t(*proof)[HASH_BYTES] = g_malloc(sizeof(uint8_t[MERKLE_MAX_PROOF][HASH_BYTES]));
	size_t len = 0;
	const uint8_t *leaves = (const uint8_t *)w->leaves->data;
	merkle_consistency_proof(leaves, (size_t)old->entries, (size_t)w->entries, proof, &len);
	bool ok =
	    old->entries == 0 || merkle_consistency_verify((uint64_t)old->entries, (uint64_t)w->entries, old->root,
	                                                   w->report->root, (const uint8_t(*)[HASH_BYTES])proof, len);
	g_free(proof);
	if (!ok)
		return qerr_set(
		    reterr, QERR_CRYPTO,
		    "audit log does not extend the earlier checkpoint of %s (%lld entries): entries up to it "
		    "were changed, removed or inserted",
		    old->at, (long long)old->entries);
	if (cp && cp->proof_from == old->entries && cp->has_root &&
	    !merkle_consistency_verify((uint64_t)old->entries, (uint64_t)cp->entries, old->root, cp->root,
	                               (const uint8_t(*)[HASH_BYTES])cp->proof, (size_t)cp->proof_len))
		return qerr_set(
		    reterr, QERR_CRYPTO,
		    "the checkpoint of %s does not extend the earlier one of %s: its consistency proof fails", cp->at,
		    old->at);
	return QERR_OK;
}

static enum qerr prepare(struct db *db, struct walk *w, const char *const *files, char **reterr)
{
	const struct audit_verify_options *o = w->o;
	enum qerr e = o->pk ? load_checkpoints(db, o->pk, w, reterr) : QERR_OK;
	if (!e && o->checkpoint) {
		if (o->pk && !vault_equal(o->checkpoint->public_key, o->pk, VAULT_PK_BYTES))
			e = qerr_set(reterr, QERR_CRYPTO,
			             "the checkpoint file was signed by another key than this vault's");
		w->cps = g_renew(struct audit_checkpoint, w->cps, (size_t)w->n_cps + 1);
		w->cps[w->n_cps++] = *o->checkpoint;
	}
	if (w->n_cps > 1)
		qsort(w->cps, (size_t)w->n_cps, sizeof *w->cps, by_entry);
	if (!e && o->pk && files)
		e = load_witness(files, o->pk, w, reterr);
	return e;
}

enum qerr audit_verify_with(struct db *db, const struct audit_verify_options *o, struct audit_report *ret,
                            char **reterr)
{
	memset(ret, 0, sizeof *ret);
	const char *mine[2] = {audit_witness_path(), NULL};
	const char *const *files = o->witness_files ? o->witness_files : (mine[0] ? mine : NULL);
	g_autofree char *names = files ? names_of(files) : NULL;
	struct walk w = {.o = o, .report = ret, .witness_names = names};
	w.uncovered = g_array_new(FALSE, FALSE, sizeof(struct uncovered));
	w.prepared = g_array_new(FALSE, FALSE, sizeof(struct prepared));
	if (o->want_root || o->since)
		w.leaves = g_array_new(FALSE, FALSE, 1);
	enum qerr e = prepare(db, &w, files, reterr);
	if (!e && o->pk && !files)
		e = qerr_set(reterr, QERR_CONFIG,
		             "no audit witness file is configured, so nothing outside the database "
		             "says how far the log must reach");
	if (!e)
		e = walk_log(db, &w, reterr);
	if (!e)
		e = check_end(&w, reterr);
	if (!e && w.ranges)
		e = check_coverage(&w, files, reterr);
	if (!e && w.entries > MAX_LEAVES && w.leaves)
		e = qerr_set(reterr, QERR_TOO_LARGE, "the log is too long for a Merkle root here");
	if (!e && w.leaves)
		merkle_root((const uint8_t *)w.leaves->data, (size_t)w.entries, ret->root);
	if (!e && o->since)
		e = check_since(&w, reterr);
	if (!e && o->pk && files)
		e = check_ring(&w, reterr);
	ret->entries = w.entries;
	g_free(w.cps);
	g_free(w.heads);
	if (w.ranges)
		g_array_free(w.ranges, TRUE);
	g_array_free(w.uncovered, TRUE);
	g_array_free(w.prepared, TRUE);
	if (w.leaves)
		g_array_free(w.leaves, TRUE);
	return e;
}

enum qerr audit_verify_signed(struct db *db, const uint8_t pk[VAULT_PK_BYTES], const struct audit_checkpoint *witness,
                              struct audit_report *ret, char **reterr)
{
	struct audit_verify_options o = {.pk = pk, .checkpoint = witness};
	return audit_verify_with(db, &o, ret, reterr);
}

enum qerr audit_verify(struct db *db, int64_t *ret_entries, char **reterr)
{
	struct audit_report r = {0};
	struct audit_verify_options o = {0};
	enum qerr e = audit_verify_with(db, &o, &r, reterr);
	if (!e)
		*ret_entries = r.entries;
	return e;
}

/* The chain hashes of the entries up to last_id, in log order (as stored: export signs what is there). */
static enum qerr read_leaves(struct db *db, int64_t last_id, GArray *leaves, char **reterr)
{
	int64_t after = 0;
	enum qerr e = QERR_OK;
	for (int rows = VERIFY_BATCH; rows == VERIFY_BATCH && !e;) {
		char safter[24], slast[24];
		g_snprintf(safter, sizeof safter, "%lld", (long long)after);
		g_snprintf(slast, sizeof slast, "%lld", (long long)last_id);
		struct db_param p[2] = {DB_TEXT(safter), DB_TEXT(slast)};
		struct db_res *res = NULL;
		e = db_query(
		    db,
		    "SELECT id, hash FROM audit_log WHERE id > $1::bigint AND id <= $2::bigint ORDER BY id LIMIT 5000",
		    2, p, &res, reterr);
		rows = e ? 0 : db_res_rows(res);
		for (int r = 0; r < rows && !e; r++) {
			size_t n = 0;
			g_autofree uint8_t *h = db_res_bytea(res, r, 1, &n);
			if (!h || n != HASH_BYTES || leaves->len / HASH_BYTES >= (guint)MAX_LEAVES)
				e = qerr_set(reterr, QERR_CRYPTO,
				             "audit entry %s has no valid hash, or the log is too long",
				             db_res_text(res, r, 0));
			else
				g_array_append_vals(leaves, h, HASH_BYTES);
			after = db_res_int(res, r, 0);
		}
		db_res_free(res);
	}
	return e;
}

/* A log begun before the witness existed gets a first line vouching for it as it stands. */
static enum qerr adopt_log(const struct vault *v, const struct audit_checkpoint *cp, char **reterr)
{
	const char *path = audit_witness_path();
	if (!path || cp->entries == 0 || g_file_test(path, G_FILE_TEST_EXISTS))
		return QERR_OK;
	struct witness *w = witness_new(path, v, false);
	enum qerr e = witness_record(w, 1, cp->entries, cp->last_entry_id, cp->hash, true, reterr);
	witness_free(w);
	return e;
}

enum qerr audit_checkpoint_export(struct db *db, const struct vault *v, const struct audit_checkpoint *since,
                                  struct audit_checkpoint *ret, char **reterr)
{
	if (since && !since->has_root)
		return qerr_set(reterr, QERR_BAD_INPUT,
		                "the earlier checkpoint has no Merkle root (made by an older quire)");
	struct audit_checkpoint cp;
	enum qerr e = audit_checkpoint_now(db, v, &cp, reterr);
	GArray *leaves = g_array_new(FALSE, FALSE, 1);
	if (!e)
		e = read_leaves(db, cp.last_entry_id, leaves, reterr);
	if (!e && (int64_t)(leaves->len / HASH_BYTES) != cp.entries)
		e = qerr_set(reterr, QERR_CRYPTO, "the audit log changed while its checkpoint was made");
	if (!e && since && since->entries > cp.entries)
		e = qerr_set(reterr, QERR_CRYPTO,
		             "the audit log has %lld entries, fewer than the earlier checkpoint's %lld",
		             (long long)cp.entries, (long long)since->entries);
	if (!e) {
		cp.has_root = true;
		merkle_root((const uint8_t *)leaves->data, (size_t)cp.entries, cp.root);
		g_autofree char *msg = audit_checkpoint_message(&cp);
		vault_sign(v, msg, strlen(msg), cp.signature);
		size_t len = 0;
		if (since && since->entries > 0) {
			merkle_consistency_proof((const uint8_t *)leaves->data, (size_t)since->entries,
			                         (size_t)cp.entries, cp.proof, &len);
			cp.proof_from = since->entries;
			cp.proof_len = (int)len;
		}
		e = adopt_log(v, &cp, reterr);
	}
	g_array_free(leaves, TRUE);
	if (!e)
		*ret = cp;
	return e;
}
