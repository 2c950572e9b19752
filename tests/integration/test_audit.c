/* Integration tests of the audit log against a database superuser: every attack runs on a
 * fresh log (and a fresh witness file) with the triggers bypassed the way a superuser would
 * (session_replication_role = replica), on a small log and on one of thousands of entries
 * with several stored checkpoints, and `verify` must name what is wrong and the first bad
 * entry. Also: commits from many threads are all covered by the batched witness, exported
 * heads carry Merkle roots whose consistency proofs link them, a forged witness line
 * is refused, a process killed with SIGKILL between its COMMIT and its committed witness line
 * leaves a log that verifies (its prepared head covers it), and a commit rolled back after its
 * prepared line lets nothing through. */
#include <glib.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <sodium.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/audit.h"
#include "core/db.h"
#include "core/ringstore.h"
#include "core/vault.h"
#include "core/witness.h"
#include "tests/integration/pgtest.h"

static struct db *db;
static struct vault *vault;
static char *witness_file;
static const char *key_path;

static void exec_sql(const char *sql)
{
	g_autofree char *err = NULL;
	QT_OK(db_exec(db, sql, &err), err);
}

static int64_t count(const char *sql)
{
	struct db_res *res = NULL;
	g_autofree char *err = NULL;
	QT_OK(db_query(db, sql, 0, NULL, &res, &err), err);
	int64_t n = db_res_int(res, 0, 0);
	db_res_free(res);
	return n;
}

/* The id of the entry at position n (1-based) of the log. */
static int64_t id_at(int64_t n)
{
	g_autofree char *sql =
	    g_strdup_printf("SELECT id FROM audit_log ORDER BY id OFFSET %lld LIMIT 1", (long long)n - 1);
	return count(sql);
}

/* Runs sql as a superuser with every trigger bypassed. */
static void as_superuser(const char *sql)
{
	g_autofree char *full = g_strdup_printf("BEGIN; SET LOCAL session_replication_role = replica; %s; COMMIT", sql);
	exec_sql(full);
}

static void append_on(struct db *conn, int64_t i, const char *actor)
{
	struct audit_event ev = {.actor = actor,
	                         .action = "document.viewed",
	                         .object_type = "document",
	                         .object_id = 500 + i,
	                         .outcome = "ok",
	                         .client = "10.0.0.7"};
	g_autofree char *err = NULL;
	QT_OK(audit_append(conn, &ev, &err), err);
}

static void append(int64_t i)
{
	struct audit_event ev = {.actor = "user:alice",
	                         .action = "document.viewed",
	                         .object_type = "document",
	                         .object_id = 500 + i,
	                         .outcome = "ok",
	                         .client = "10.0.0.7"};
	g_autofree char *err = NULL;
	QT_OK(audit_append(db, &ev, &err), err);
}

static int batch_size = 3; /* entries of the larger transactions of fresh_log() */

/* How many entries the transaction starting at position i + 1 of fresh_log() holds: the first
 * ten alone, then transactions of batch_size entries and of one in turn. */
static int batch_at(int64_t i)
{
	return i >= 10 && (i - 10) % (batch_size + 1) == 0 ? batch_size : 1;
}

static char *snapshot_shape; /* the log kept in audit_snap, cp_snap and the witness copy */

/* Puts the log and the witness back as they were when built (a superuser's TRUNCATE and copy). */
static void restore_snapshot(void)
{
	as_superuser("TRUNCATE audit_log, audit_checkpoints; INSERT INTO audit_log SELECT * FROM audit_snap;"
	             " INSERT INTO audit_checkpoints SELECT * FROM cp_snap;"
	             " SELECT setval('audit_log_id_seq', (SELECT max(id) FROM audit_log))");
	g_autofree char *copy = g_strdup_printf("%s.snap", witness_file);
	g_autofree char *text = NULL;
	gsize len = 0;
	g_assert_true(g_file_get_contents(copy, &text, &len, NULL));
	g_assert_true(g_file_set_contents(witness_file, text, (gssize)len, NULL));
	g_chmod(witness_file, 0600);
}

/* A fresh log of n entries (transactions as batch_at() says), a checkpoint stored every every_n
 * entries, and a witness file begun with it. The first one of each shape is built by appending;
 * later ones are the same log and witness put back (building thousands of entries again for
 * every attack would only cost time). */
static void fresh_log(int n, int every_n)
{
	audit_set_signer(vault, every_n, 360000);
	audit_set_witness(witness_file, false);
	g_autofree char *shape = g_strdup_printf("%d/%d/%d", n, every_n, batch_size);
	if (snapshot_shape && strcmp(shape, snapshot_shape) == 0) {
		restore_snapshot();
		return;
	}
	as_superuser("TRUNCATE audit_log, audit_checkpoints; SELECT setval('audit_log_id_seq', 1, false)");
	g_remove(witness_file);
	g_autofree char *err = NULL;
	for (int i = 0; i < n;) {
		QT_OK(db_begin(db, &err), err);
		for (int k = 0, batch = batch_at(i); k < batch && i < n; k++)
			append(i++);
		QT_OK(db_commit(db, &err), err);
	}
	exec_sql("DROP TABLE IF EXISTS audit_snap, cp_snap; CREATE TABLE audit_snap AS SELECT * FROM audit_log;"
	         " CREATE TABLE cp_snap AS SELECT * FROM audit_checkpoints");
	g_autofree char *copy = g_strdup_printf("%s.snap", witness_file);
	g_autofree char *text = NULL;
	gsize len = 0;
	g_assert_true(g_file_get_contents(witness_file, &text, &len, NULL));
	g_assert_true(g_file_set_contents(copy, text, (gssize)len, NULL));
	g_free(snapshot_shape);
	snapshot_shape = g_steal_pointer(&shape);
}

static enum qerr verify(const struct audit_checkpoint *cp, struct audit_report *r, char **err)
{
	uint8_t pk[VAULT_PK_BYTES];
	vault_sign_public(vault, pk);
	return audit_verify_signed(db, pk, cp, r, err);
}

/* verify must fail, with want in its message and (when want_bad is not 0) that first bad entry. */
static void caught(const char *attack, const struct audit_checkpoint *cp, const char *want, int64_t want_bad)
{
	struct audit_report r;
	g_autofree char *err = NULL;
	g_assert_cmpint(verify(cp, &r, &err), ==, QERR_CRYPTO);
	g_test_message("%s: %s", attack, err);
	if (!strstr(err, want))
		g_error("%s: expected \"%s\" in: %s", attack, want, err);
	if (want_bad)
		g_assert_cmpint(r.first_bad, ==, want_bad);
}

/* Recomputes the chain from entry from_id on, as a superuser hiding an edit would (the encoding is public). */
static void rechain(int64_t from_id)
{
	struct db_res *res = NULL;
	g_autofree char *err = NULL;
	QT_OK(db_query(db,
	               "SELECT id, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), actor, action,"
	               " object_type, object_id::text, outcome, client, detail, prev_hash FROM audit_log ORDER BY id",
	               0, NULL, &res, &err),
	      err);
	uint8_t prev[32] = {0}, hash[32];
	GString *sql = g_string_new("BEGIN; SET LOCAL session_replication_role = replica;");
	/* positions move out of the way first: they are unique */
	g_string_append_printf(sql, "UPDATE audit_log SET seq = -seq - 1 WHERE id >= %lld;", (long long)from_id);
	for (int r = 0; r < db_res_rows(res); r++) {
		int64_t id = db_res_int(res, r, 0);
		if (id < from_id) {
			struct db_res *h = NULL;
			g_autofree char *q =
			    g_strdup_printf("SELECT hash FROM audit_log WHERE id = %lld", (long long)id);
			QT_OK(db_query(db, q, 0, NULL, &h, &err), err);
			size_t n = 0;
			g_autofree uint8_t *b = db_res_bytea(h, 0, 0, &n);
			memcpy(prev, b, 32);
			db_res_free(h);
			continue;
		}
		GString *c = g_string_new("quire-audit-v1\n");
		for (int i = 1; i <= 8; i++)
			g_string_append_printf(c, "%zu:%s\n", strlen(db_res_text(res, r, i)), db_res_text(res, r, i));
		crypto_generichash_state st;
		crypto_generichash_init(&st, NULL, 0, 32);
		crypto_generichash_update(&st, prev, 32);
		crypto_generichash_update(&st, (const uint8_t *)c->str, c->len);
		crypto_generichash_final(&st, hash, 32);
		g_string_free(c, TRUE);
		char hp[65], hh[65];
		sodium_bin2hex(hp, sizeof hp, prev, 32);
		sodium_bin2hex(hh, sizeof hh, hash, 32);
		g_string_append_printf(
		    sql, "UPDATE audit_log SET prev_hash = '\\x%s', hash = '\\x%s', seq = %d WHERE id = %lld;", hp, hh,
		    r + 1, (long long)id);
		memcpy(prev, hash, 32);
	}
	g_string_append(sql, "COMMIT");
	exec_sql(sql->str);
	g_string_free(sql, TRUE);
	db_res_free(res);
}

/* Appends a forged entry with its chain hash computed correctly, as a superuser can. */
static void forge_entry(void)
{
	as_superuser(
	    "INSERT INTO audit_log (at, actor, action, object_type, object_id, outcome, client, detail,"
	    " prev_hash, hash, seq) SELECT now(), 'user:mallory', 'document.viewed', 'document', 1, 'ok', 'cli',"
	    " '', hash, '\\x00', seq + 1 FROM audit_log ORDER BY id DESC LIMIT 1");
	g_autofree char *last = g_strdup_printf("%lld", (long long)count("SELECT max(id) FROM audit_log"));
	rechain(g_ascii_strtoll(last, NULL, 10));
}

/* Whether the entry at position p (1-based) of fresh_log() was its transaction's only one. */
static bool alone(int64_t p)
{
	for (int64_t i = 0; i < p;) {
		int64_t batch = batch_at(i);
		if (p <= i + batch)
			return batch == 1;
		i += batch;
	}
	return false;
}

/* A position near p whose entry was committed alone, so that the first bad entry is exact. */
static int64_t single_near(int64_t p)
{
	while (!alone(p))
		p++;
	return p;
}

struct log_shape {
	int entries, checkpoint_every, batch;
};

static void honest(const struct log_shape *s)
{
	fresh_log(s->entries, s->checkpoint_every);
	struct audit_report r;
	g_autofree char *err = NULL;
	QT_OK(verify(NULL, &r, &err), err);
	g_assert_cmpint(r.entries, ==, s->entries);
	g_assert_cmpint(r.covered, ==, s->entries);
	g_assert_cmpint(r.checkpoints, ==, count("SELECT count(*) FROM audit_checkpoints"));
	g_assert_cmpint(r.checkpoints, >=, 2);
	g_assert_cmpint(r.witness_heads, >=, 1);
}

static void attack_edit_middle(const struct log_shape *s)
{
	fresh_log(s->entries, s->checkpoint_every);
	int64_t mid = id_at(s->entries / 2);
	g_autofree char *sql =
	    g_strdup_printf("UPDATE audit_log SET actor = 'user:mallory' WHERE id = %lld", (long long)mid);
	as_superuser(sql);
	caught("edit one entry in the middle", NULL, "its content was changed", mid);
}

static void attack_cut_tail(const struct log_shape *s)
{
	fresh_log(s->entries, s->checkpoint_every);
	int64_t cp = count("SELECT max(last_entry_id) FROM audit_checkpoints");
	g_assert_cmpint(cp, <, count("SELECT max(id) FROM audit_log"));
	g_autofree char *sql = g_strdup_printf("DELETE FROM audit_log WHERE id > %lld;"
	                                       " SELECT setval('audit_log_id_seq', %lld)",
	                                       (long long)cp, (long long)cp);
	as_superuser(sql);
	caught("delete the newest entries, sequence reset", NULL, "shorter than its witness", 0);
	/* the application appends again over the gap: the history now forks from the signed one, or
	 * (where the new entry is signed in its own right) is still shorter than it */
	g_autofree char *err = NULL;
	QT_OK(db_begin(db, &err), err);
	append(9999);
	QT_OK(db_commit(db, &err), err);
	caught("delete the newest entries, then appends", NULL, " its witness", 0);
}

static void attack_truncate(const struct log_shape *s)
{
	fresh_log(s->entries, s->checkpoint_every);
	as_superuser("TRUNCATE audit_log, audit_checkpoints");
	caught("TRUNCATE audit_log, audit_checkpoints", NULL, "shorter than its witness", 0);
}

static void attack_rewrite_without_checkpoints(const struct log_shape *s)
{
	fresh_log(s->entries, s->checkpoint_every);
	int64_t p = single_near(s->entries / 3), victim = id_at(p);
	g_autofree char *sql = g_strdup_printf("DELETE FROM audit_checkpoints;"
	                                       " UPDATE audit_log SET actor = 'user:mallory' WHERE id = %lld",
	                                       (long long)victim);
	as_superuser(sql);
	rechain(victim);
	caught("DELETE FROM audit_checkpoints, edit, recompute the chain", NULL, "forks from its witness", victim);
}

static void attack_forged_append(const struct log_shape *s)
{
	fresh_log(s->entries, s->checkpoint_every);
	g_autofree char *err = NULL;
	struct audit_checkpoint *cp = g_new0(struct audit_checkpoint, 1);
	QT_OK(audit_checkpoint_export(db, vault, NULL, cp, &err), err);
	forge_entry();
	int64_t forged = count("SELECT max(id) FROM audit_log");
	caught("append a forged entry after the last checkpoint", NULL, "no signed head covers", forged);
	caught("the same, with an exported checkpoint", cp, "no signed head covers", forged);
	/* a later honest commit signs a head that includes the forged entry, but not its range */
	QT_OK(db_begin(db, &err), err);
	append(9998);
	QT_OK(db_commit(db, &err), err);
	caught("a forged entry, then an honest append", cp, "no signed head covers", forged);
	g_free(cp);
}

static void attack_rewrite_from_5(const struct log_shape *s)
{
	fresh_log(s->entries, s->checkpoint_every);
	g_assert_true(alone(5));
	as_superuser("UPDATE audit_log SET detail = 'nothing to see' WHERE id = 5");
	rechain(5);
	caught("edit entry 5 and recompute the chain from there", NULL, "forks from its witness", 5);
}

static void attack_remove_and_insert(const struct log_shape *s)
{
	fresh_log(s->entries, s->checkpoint_every);
	int64_t p = single_near(s->entries / 2), victim = id_at(p);
	g_autofree char *del = g_strdup_printf("DELETE FROM audit_log WHERE id = %lld", (long long)victim);
	as_superuser(del);
	rechain(victim);
	caught("remove an entry, recompute the chain", NULL, "chain recomputed", id_at(p));

	fresh_log(s->entries, s->checkpoint_every);
	victim = id_at(p);
	g_autofree char *ins = g_strdup_printf(
	    "UPDATE audit_log SET id = id + 10000000 WHERE id >= %lld; UPDATE audit_log SET id = id - 9999999 WHERE id "
	    "> "
	    "10000000; INSERT INTO audit_log (id, at, actor, action, object_type, object_id, outcome, client, detail,"
	    " prev_hash, hash, seq) VALUES (%lld, now(), 'user:mallory', 'document.viewed', 'document', 1, 'ok', 'cli',"
	    " '', '\\x00', '\\x00', 0)",
	    (long long)victim, (long long)victim);
	as_superuser(ins);
	rechain(victim);
	caught("insert an entry, recompute the chain", NULL, "chain recomputed", victim);
}

static void attack_old_copy(const struct log_shape *s)
{
	fresh_log(s->entries, s->checkpoint_every);
	exec_sql("CREATE TABLE audit_copy AS SELECT * FROM audit_log; CREATE TABLE cp_copy AS SELECT * FROM "
	         "audit_checkpoints");
	g_autofree char *err = NULL;
	for (int i = 0; i < 4; i++) {
		QT_OK(db_begin(db, &err), err);
		append(7000 + i);
		QT_OK(db_commit(db, &err), err);
	}
	as_superuser("TRUNCATE audit_log, audit_checkpoints; INSERT INTO audit_log SELECT * FROM audit_copy;"
	             " INSERT INTO audit_checkpoints SELECT * FROM cp_copy; DROP TABLE audit_copy, cp_copy");
	caught("restore an older copy of the log", NULL, "shorter than its witness", 0);
}

static void attack_witness(const struct log_shape *s)
{
	fresh_log(s->entries, s->checkpoint_every);
	/* the witness gone: nothing outside the database says how far the log reaches */
	g_autofree char *moved = g_strdup_printf("%s.moved", witness_file);
	g_assert_cmpint(g_rename(witness_file, moved), ==, 0);
	caught("no witness where entries exist", NULL, "no signed head", 0);
	/* a witness line altered by hand */
	g_autofree char *text = NULL;
	gsize len = 0;
	g_assert_true(g_file_get_contents(moved, &text, &len, NULL));
	char *seq = strstr(text, "seq=");
	seq[4] = seq[4] == '9' ? '8' : '9';
	g_assert_true(g_file_set_contents(witness_file, text, (gssize)len, NULL));
	caught("a witness line altered", NULL, "is not a valid signed head", 0);
	g_remove(moved);
}

static void run_attacks(gconstpointer data)
{
	const struct log_shape *s = data;
	batch_size = s->batch;
	honest(s);
	attack_edit_middle(s);
	attack_cut_tail(s);
	attack_truncate(s);
	attack_rewrite_without_checkpoints(s);
	attack_forged_append(s);
	attack_rewrite_from_5(s);
	attack_remove_and_insert(s);
	attack_old_copy(s);
	attack_witness(s);
}

#define THREADS 8
#define COMMITS 40

static gpointer commit_many(gpointer data)
{
	struct db *conn = pgtest_connect();
	g_autofree char *err = NULL;
	for (int i = 0; i < COMMITS; i++) {
		struct audit_event ev = {.actor = "system:worker",
		                         .action = "job.claimed",
		                         .object_type = "job",
		                         .object_id = GPOINTER_TO_INT(data) * 1000 + i,
		                         .outcome = "ok"};
		QT_OK(db_begin(conn, &err), err);
		QT_OK(audit_append(conn, &ev, &err), err);
		QT_OK(db_commit(conn, &err), err);
	}
	db_close(conn);
	return NULL;
}

/* Commits from many threads at once: each returns only once a witness line covers it. */
static void test_concurrent_commits(void)
{
	fresh_log(3, 1000);
	GThread *t[THREADS];
	for (int i = 0; i < THREADS; i++)
		t[i] = g_thread_new("commits", commit_many, GINT_TO_POINTER(i + 1));
	for (int i = 0; i < THREADS; i++)
		g_thread_join(t[i]);
	struct audit_report r;
	g_autofree char *err = NULL;
	QT_OK(verify(NULL, &r, &err), err);
	g_assert_cmpint(r.entries, ==, 3 + THREADS * COMMITS);
	g_assert_cmpint(r.covered, ==, r.entries);
	g_test_message("%lld commits, %lld witness lines", (long long)r.entries - 2, (long long)r.witness_heads);
}

/* The last complete line of the witness file (g_free). */
static char *last_witness_line(void)
{
	g_autofree char *text = NULL;
	g_assert_true(g_file_get_contents(witness_file, &text, NULL, NULL));
	g_auto(GStrv) lines = g_strsplit(g_strchomp(text), "\n", -1);
	guint n = g_strv_length(lines);
	g_assert_cmpuint(n, >, 0);
	return g_strdup(lines[n - 1]);
}

static void die_after_commit(enum audit_probe where)
{
	if (where == AUDIT_PROBE_COMMITTED)
		kill(getpid(), SIGKILL);
}

/* A process killed with SIGKILL right after its COMMIT, before its committed witness line: the
 * prepared head it synced before the COMMIT matches the log exactly, so verify passes; and that
 * head gives an attacker nothing: cutting the log back still fails against the committed heads,
 * and a forged entry after it is still signed by nobody. */
static void test_killed_after_commit(void)
{
	fresh_log(12, 5);
	int64_t before = count("SELECT count(*) FROM audit_log");
	pid_t pid = fork();
	g_assert_cmpint(pid, >=, 0);
	if (pid == 0) {
		struct db *conn = pgtest_connect();
		audit_set_commit_probe(die_after_commit);
		g_autofree char *err = NULL;
		QT_OK(db_begin(conn, &err), err);
		append_on(conn, 8001, "user:killed");
		append_on(conn, 8002, "user:killed");
		QT_OK(db_commit(conn, &err), err);
		_exit(3); /* not reached: the probe kills the process after the COMMIT */
	}
	int status = 0;
	g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
	g_assert_true(WIFSIGNALED(status));
	g_assert_cmpint(WTERMSIG(status), ==, SIGKILL);
	g_assert_cmpint(count("SELECT count(*) FROM audit_log WHERE actor = 'user:killed'"), ==, 2);
	g_autofree char *last = last_witness_line();
	g_autofree char *want = g_strdup_printf("seq=%lld ", (long long)before + 2);
	g_assert_nonnull(strstr(last, want));
	g_assert_nonnull(strstr(last, " state=prepared"));
	struct audit_report r;
	g_autofree char *err = NULL;
	QT_OK(verify(NULL, &r, &err), err);
	g_assert_cmpint(r.entries, ==, before + 2);
	g_assert_cmpint(r.covered, ==, r.entries);
	g_assert_cmpint(r.prepared, ==, 1);
	/* a forged entry after the killed commit: its prepared head covers its own entries only */
	forge_entry();
	int64_t forged = count("SELECT max(id) FROM audit_log");
	caught("a forged entry after a commit signed by its prepared head only", NULL, "no signed head covers", forged);
	/* the killed commit and the newest committed transactions cut away: still shorter than the
	 * last committed head */
	int64_t keep = id_at(before - 3);
	g_autofree char *cut = g_strdup_printf("DELETE FROM audit_log WHERE id > %lld", (long long)keep);
	as_superuser(cut);
	caught("cut the log back behind a killed commit", NULL, "shorter than its witness", 0);
	/* the application goes on after a kill: the next commits verify as usual */
	fresh_log(12, 5);
	pid = fork();
	g_assert_cmpint(pid, >=, 0);
	if (pid == 0) {
		struct db *conn = pgtest_connect();
		audit_set_commit_probe(die_after_commit);
		append_on(conn, 8003, "user:killed"); /* a transaction of its own */
		_exit(3);
	}
	g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
	g_assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	append(8004);
	QT_OK(verify(NULL, &r, &err), err);
	g_assert_cmpint(r.entries, ==, before + 2);
	g_assert_cmpint(r.prepared, ==, 1);
}

/* A commit refused at COMMIT (a deferred constraint) after its prepared line was synced: the log
 * equals the last committed head and verifies; a withdrawn line follows the prepared one, so the
 * refused entry put back by a superuser who read it (here from the error, as from the
 * write-ahead log) is signed by nobody, nor is a forged entry in its place; the next honest
 * commit at the same position verifies. */
static void test_rolled_back_after_prepared(void)
{
	fresh_log(12, 5);
	int64_t before = count("SELECT count(*) FROM audit_log");
	exec_sql("CREATE FUNCTION refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION"
	         " 'refused at commit: %', format('INSERT INTO audit_log SELECT * FROM json_populate_record(NULL::audit_log,"
	         " %L)', row_to_json(NEW)); END$$;"
	         " CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT ON audit_log DEFERRABLE INITIALLY DEFERRED"
	         " FOR EACH ROW WHEN (NEW.actor = 'user:refused') EXECUTE FUNCTION refuse_at_commit()");
	g_autofree char *err = NULL;
	QT_OK(db_begin(db, &err), err);
	append_on(db, 9001, "user:refused");
	g_assert_cmpint(db_commit(db, &err), !=, QERR_OK);
	const char *said = strstr(err, "refused at commit: ");
	g_assert_nonnull(said);
	g_autofree char *replay = g_strndup(said + strlen("refused at commit: "), strcspn(said, "\n") - strlen("refused at commit: "));
	g_clear_pointer(&err, g_free);
	db_rollback(db);
	exec_sql("DROP TRIGGER refuse_at_commit ON audit_log; DROP FUNCTION refuse_at_commit()");
	g_assert_cmpint(count("SELECT count(*) FROM audit_log"), ==, before);
	g_autofree char *last = last_witness_line();
	g_autofree char *want = g_strdup_printf("seq=%lld ", (long long)before + 1);
	g_assert_nonnull(strstr(last, want));
	g_assert_nonnull(strstr(last, " state=withdrawn"));
	struct audit_report r;
	QT_OK(verify(NULL, &r, &err), err);
	g_assert_cmpint(r.entries, ==, before);
	g_assert_cmpint(r.prepared, ==, 0);
	/* the refused entry itself put back: its prepared head would match it, but was withdrawn */
	as_superuser(replay);
	g_assert_cmpint(count("SELECT count(*) FROM audit_log WHERE actor = 'user:refused'"), ==, 1);
	caught("the entry of a refused commit put back", NULL, "no signed head covers",
	       count("SELECT max(id) FROM audit_log"));
	/* it is the withdrawn line that catches it: without it (the key folder written by hand, out
	 * of scope), the prepared head would vouch for the entry */
	g_autofree char *text = NULL;
	gsize len = 0;
	g_assert_true(g_file_get_contents(witness_file, &text, &len, NULL));
	gsize cut = len - strlen(last) - 1;
	g_assert_true(g_file_set_contents(witness_file, text, (gssize)cut, NULL));
	QT_OK(verify(NULL, &r, &err), err);
	g_assert_cmpint(r.prepared, ==, 1);
	g_assert_true(g_file_set_contents(witness_file, text, (gssize)len, NULL));
	g_chmod(witness_file, 0600);
	as_superuser("DELETE FROM audit_log WHERE actor = 'user:refused'");
	forge_entry();
	caught("a forged entry where a commit was rolled back", NULL, "no signed head covers",
	       count("SELECT max(id) FROM audit_log"));
	as_superuser("DELETE FROM audit_log WHERE actor = 'user:mallory'");
	QT_OK(verify(NULL, &r, &err), err);
	append(9002);
	QT_OK(verify(NULL, &r, &err), err);
	g_assert_cmpint(r.entries, ==, before + 1);
	g_assert_cmpint(r.covered, ==, before + 1);
}

/* A vault on the same key file whose keyring is in the database (created there). */
static struct vault *store_vault(struct ringstore **ret_rs, struct vault_store *store, char **err)
{
	QT_OK(ringstore_open(pgtest_conninfo(), ret_rs, err), *err);
	ringstore_bind(*ret_rs, store);
	struct vault_options o = {.source = VAULT_SOURCE_FILE, .key_file = key_path, .store = store, .create = true};
	struct vault *v = NULL;
	enum qerr e = vault_open_with(&o, &v, err);
	if (e)
		g_clear_pointer(ret_rs, ringstore_close);
	return e ? NULL : v;
}

static enum qerr verify_ring(int64_t generation, struct audit_report *r, char **err)
{
	uint8_t pk[VAULT_PK_BYTES];
	vault_sign_public(vault, pk);
	struct audit_verify_options o = {.pk = pk, .check_ring = true, .ring_generation = generation};
	return audit_verify_with(db, &o, r, err);
}

/* The keyring in the database put back as it was before a retirement, by a superuser: the
 * retired version would open again. The witness signed the newer generation, so verify
 * catches it; a process that saw the newer one refuses the older; and the older seal with the
 * newer generation number written beside it does not open at all. */
static void test_keyring_rollback(void)
{
	g_autofree char *err = NULL;
	struct ringstore *rs = NULL, *rs2 = NULL;
	struct vault_store store, store2;
	struct vault *v = store_vault(&rs, &store, &err);
	g_assert_nonnull(v);
	g_assert_cmpint(vault_ring_generation(v), ==, 1);
	exec_sql("CREATE TABLE ring_keep AS SELECT * FROM keyring");
	int32_t added = 0;
	QT_OK(vault_rotate(v, &added, &err), err);
	QT_OK(vault_retire(v, 1, &err), err);
	g_assert_cmpint(vault_ring_generation(v), ==, 3);
	/* a fresh log signed with this vault: its witness lines carry generation 3 */
	as_superuser("TRUNCATE audit_log, audit_checkpoints");
	g_remove(witness_file);
	g_clear_pointer(&snapshot_shape, g_free);
	audit_set_signer(v, 1000, 360000);
	audit_set_witness(witness_file, false);
	append(1);
	struct audit_report r;
	QT_OK(verify_ring(vault_ring_generation(v), &r, &err), err);
	g_assert_cmpint(r.ring_generation, ==, 3);
	exec_sql("CREATE TABLE ring_now AS SELECT * FROM keyring");
	as_superuser("UPDATE keyring SET sealed = k.sealed, generation = k.generation FROM ring_keep k");
	/* a host opening now gets the old keyring, version 1 back in it; verify says so */
	struct vault *old = store_vault(&rs2, &store2, &err);
	g_assert_nonnull(old);
	g_assert_cmpint(vault_ring_generation(old), ==, 1);
	g_assert_true(vault_has_version(old, 1));
	g_assert_cmpint(verify_ring(vault_ring_generation(old), &r, &err), ==, QERR_CRYPTO);
	g_test_message("keyring put back: %s", err);
	g_assert_nonnull(strstr(err, "keyring in the database was rolled back"));
	g_clear_pointer(&err, g_free);
	vault_close(old);
	g_clear_pointer(&rs2, ringstore_close);
	/* the process that wrote generation 3 refuses the older one at its next read */
	g_assert_cmpint(vault_rotate(v, &added, &err), ==, QERR_KEY);
	g_test_message("running process: %s", err);
	g_assert_nonnull(strstr(err, "rolled back from generation 3 to 1"));
	g_clear_pointer(&err, g_free);
	/* the old seal with the current generation number beside it: it does not open */
	as_superuser("UPDATE keyring SET generation = 3");
	g_assert_null(store_vault(&rs2, &store2, &err));
	g_test_message("old seal, new number: %s", err);
	g_assert_nonnull(strstr(err, "altered in the database"));
	g_clear_pointer(&err, g_free);
	/* put back as it was: verify passes again */
	as_superuser("UPDATE keyring SET sealed = k.sealed, generation = k.generation FROM ring_now k");
	QT_OK(verify_ring(3, &r, &err), err);
	exec_sql("DROP TABLE ring_keep, ring_now");
	audit_set_signer(vault, 1000, 360000);
	audit_set_witness(witness_file, false);
	vault_close(v);
	ringstore_close(rs);
}

/* Exported heads: a later one carries a consistency proof from an earlier one; verify --since
 * checks the log extends the earlier head; a proof that does not link the roots fails. */
static void test_exported_heads(void)
{
	fresh_log(20, 1000);
	g_autofree char *err = NULL;
	struct audit_checkpoint *cp = g_new0(struct audit_checkpoint, 3);
	QT_OK(audit_checkpoint_export(db, vault, NULL, &cp[0], &err), err);
	g_assert_true(cp[0].has_root);
	g_autofree char *text0 = audit_checkpoint_format(&cp[0]);
	QT_OK(audit_checkpoint_parse(text0, &cp[0], &err), err);
	g_assert_true(cp[0].has_root);
	for (int i = 0; i < 13; i++) {
		QT_OK(db_begin(db, &err), err);
		append(100 + i);
		QT_OK(db_commit(db, &err), err);
	}
	QT_OK(audit_checkpoint_export(db, vault, &cp[0], &cp[1], &err), err);
	g_assert_cmpint(cp[1].proof_from, ==, cp[0].entries);
	g_assert_cmpint(cp[1].proof_len, >, 0);
	g_autofree char *text1 = audit_checkpoint_format(&cp[1]);
	QT_OK(audit_checkpoint_parse(text1, &cp[1], &err), err);
	uint8_t pk[VAULT_PK_BYTES];
	vault_sign_public(vault, pk);
	struct audit_verify_options o = {.pk = pk, .checkpoint = &cp[1], .since = &cp[0]};
	struct audit_report r;
	QT_OK(audit_verify_with(db, &o, &r, &err), err);
	g_assert_cmpmem(r.root, sizeof r.root, cp[1].root, sizeof cp[1].root);
	/* the proof alone links the two heads: a changed proof hash fails */
	cp[2] = cp[1];
	cp[2].proof[0][3] ^= 1;
	o.checkpoint = &cp[2];
	g_assert_cmpint(audit_verify_with(db, &o, &r, &err), ==, QERR_CRYPTO);
	g_assert_nonnull(strstr(err, "does not extend the earlier one"));
	g_clear_pointer(&err, g_free);
	/* an earlier head that this log does not extend (another log's) */
	fresh_log(25, 1000);
	o.checkpoint = NULL;
	g_assert_cmpint(audit_verify_with(db, &o, &r, &err), ==, QERR_CRYPTO);
	g_assert_nonnull(strstr(err, "does not extend the earlier checkpoint"));
	g_free(cp);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	db = pgtest_start();
	vault = pgtest_vault(&key_path);
	g_autofree char *dir = g_path_get_dirname(key_path);
	witness_file = g_build_filename(dir, WITNESS_FILE_NAME, NULL);
	static const struct log_shape small = {12, 5, 3}, large = {3003, 500, 25};
	g_test_add_data_func("/audit/superuser-attacks/small-log", &small, run_attacks);
	g_test_add_data_func("/audit/superuser-attacks/thousands-of-entries", &large, run_attacks);
	g_test_add_func("/audit/witness/concurrent-commits", test_concurrent_commits);
	g_test_add_func("/audit/exported-heads/consistency", test_exported_heads);
	g_test_add_func("/audit/witness/killed-after-commit", test_killed_after_commit);
	g_test_add_func("/audit/witness/rolled-back-after-prepared", test_rolled_back_after_prepared);
	g_test_add_func("/audit/witness/keyring-rollback", test_keyring_rollback);
	int rc = g_test_run();
	g_free(snapshot_shape);
	audit_set_signer(NULL, 0, 0);
	audit_set_witness(NULL, false);
	db_close(db);
	pgtest_stop();
	g_free(witness_file);
	return rc;
}
