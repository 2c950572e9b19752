/* Integration tests of the security core against a real PostgreSQL: ciphertexts and wrapped
 * keys bound to their rows (result boxes to their version too), streams in the database,
 * rotation under load, erasure against a pre-erasure copy, the database role's rights, users,
 * roles and API tokens. Audit tampering by a superuser is test_audit.c's. */
#include <glib.h>
#include <glib/gstdio.h>
#include <sodium.h>
#include <string.h>

#include "core/audit.h"
#include "core/db.h"
#include "core/users.h"
#include "core/vault.h"
#include "pipeline/custody.h"
#include "pipeline/store.h"
#include "tests/integration/pgtest.h"

static struct db *db;
static struct vault *vault;
static const char *key_path;

/* A unique small "PDF": the store takes bytes, and these are recognisable when read back. */
static GBytes *fake_pdf(const char *tag)
{
	char *s = g_strdup_printf("%%PDF-1.4\n%% %s\n%s\n%%%%EOF\n", tag, "0123456789abcdef0123456789abcdef");
	return g_bytes_new_take(s, strlen(s));
}

static struct store_submitted submit_on(struct db *conn, const struct vault *v, const char *tag)
{
	g_autoptr(GBytes) pdf = fake_pdf(tag);
	gsize len = 0;
	const void *data = g_bytes_get_data(pdf, &len);
	struct store_submitted s;
	g_autofree char *err = NULL;
	QT_OK(store_submit(conn, v, "doc.pdf", data, len, "test", 3, &s, &err), err);
	return s;
}

/* Opens doc's original with conn and v; checks it is the one submitted under tag. */
static enum qerr read_original(struct db *conn, const struct vault *v, int64_t doc, const char *tag, char **reterr)
{
	struct vault_dek *dek = NULL;
	struct vault_buf buf = {0};
	enum qerr e = store_dek(conn, v, doc, &dek, reterr);
	if (!e)
		e = store_get(conn, dek, doc, "original", &buf, reterr);
	if (!e && tag) {
		g_autoptr(GBytes) want = fake_pdf(tag);
		g_assert_cmpmem(buf.data, buf.len, g_bytes_get_data(want, NULL), g_bytes_get_size(want));
	}
	vault_buf_free(&buf);
	vault_dek_free(dek);
	return e;
}

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

static void test_swaps_refused(void)
{
	struct store_submitted a = submit_on(db, vault, "SWAP-A"), b = submit_on(db, vault, "SWAP-B");
	g_autofree char *err = NULL;
	QT_OK(read_original(db, vault, a.doc_id, "SWAP-A", &err), err);
	/* wrapped data keys exchanged between the two rows */
	g_autofree char *swap_keys = g_strdup_printf(
		"UPDATE documents d SET wrapped_key = o.wrapped_key FROM documents o"
		" WHERE (d.id, o.id) IN ((%lld, %lld), (%lld, %lld))",
		(long long)a.doc_id, (long long)b.doc_id, (long long)b.doc_id, (long long)a.doc_id);
	exec_sql(swap_keys);
	g_assert_cmpint(read_original(db, vault, a.doc_id, NULL, &err), ==, QERR_CRYPTO);
	g_assert_cmpint(read_original(db, vault, b.doc_id, NULL, &err), ==, QERR_CRYPTO);
	exec_sql(swap_keys); /* back */
	QT_OK(read_original(db, vault, a.doc_id, "SWAP-A", &err), err);
	/* sealed payloads exchanged between the rows, then between purposes of one document */
	g_autofree char *swap_payloads = g_strdup_printf(
		"UPDATE payloads p SET sealed = o.sealed FROM payloads o WHERE p.purpose = 'filename'"
		" AND o.purpose = 'filename' AND (p.document_id, o.document_id) IN ((%lld, %lld), (%lld, %lld))",
		(long long)a.doc_id, (long long)b.doc_id, (long long)b.doc_id, (long long)a.doc_id);
	exec_sql(swap_payloads);
	struct vault_dek *dek = NULL;
	struct vault_buf buf = {0};
	QT_OK(store_dek(db, vault, a.doc_id, &dek, &err), err);
	g_assert_cmpint(store_get(db, dek, a.doc_id, "filename", &buf, &err), ==, QERR_CRYPTO);
	exec_sql(swap_payloads);
	QT_OK(store_get(db, dek, a.doc_id, "filename", &buf, &err), err);
	g_assert_cmpstr((const char *)buf.data, ==, "doc.pdf");
	vault_buf_free(&buf);
	QT_OK(store_put(db, dek, a.doc_id, "text", "some text", 9, &err), err);
	g_autofree char *cross = g_strdup_printf(
		"UPDATE payloads SET sealed = (SELECT sealed FROM payloads WHERE document_id = %lld AND purpose = 'text')"
		" WHERE document_id = %lld AND purpose = 'filename'",
		(long long)a.doc_id, (long long)a.doc_id);
	exec_sql(cross);
	g_assert_cmpint(store_get(db, dek, a.doc_id, "filename", &buf, &err), ==, QERR_CRYPTO);
	vault_dek_free(dek);
}

/* Opens doc's newest result; on success checks it is want. */
static enum qerr read_result(const struct vault_dek *dek, int64_t doc, const char *want, char **reterr)
{
	struct vault_buf buf = {0};
	enum qerr e = store_get(db, dek, doc, "result", &buf, reterr);
	if (!e && want)
		g_assert_cmpstr((const char *)buf.data, ==, want);
	vault_buf_free(&buf);
	return e;
}

/* A result version's box binds its row version: version 1 copied over version 2 (undoing a
 * correction) is refused, and so is marking the row as written before the binding existed;
 * a row that was written before (layout 1) still opens. */
static void test_result_versions_bound(void)
{
	struct store_submitted a = submit_on(db, vault, "VERSIONS");
	g_autofree char *err = NULL;
	struct vault_dek *dek = NULL;
	QT_OK(store_dek(db, vault, a.doc_id, &dek, &err), err);
	QT_OK(store_put(db, dek, a.doc_id, "result", "{\"total\":1}", 11, &err), err);
	QT_OK(store_put_version(db, dek, a.doc_id, "result", 2, "{\"total\":2}", 11, &err), err);
	g_assert_cmpint(store_put_version(db, dek, a.doc_id, "result", 2, "{\"total\":3}", 11, &err), ==,
	                QERR_CONFLICT);
	g_clear_pointer(&err, g_free);
	QT_OK(read_result(dek, a.doc_id, "{\"total\":2}", &err), err);
	g_autofree char *keep = g_strdup_printf("CREATE TABLE result_v2 AS SELECT sealed FROM payloads"
	                                        " WHERE document_id = %lld AND purpose = 'result' AND version = 2",
	                                        (long long)a.doc_id);
	exec_sql(keep);
	g_autofree char *swap = g_strdup_printf(
		"UPDATE payloads SET sealed = (SELECT sealed FROM payloads WHERE document_id = %lld AND purpose = 'result'"
		" AND version = 1) WHERE document_id = %lld AND purpose = 'result' AND version = 2",
		(long long)a.doc_id, (long long)a.doc_id);
	exec_sql(swap);
	g_assert_cmpint(read_result(dek, a.doc_id, NULL, &err), ==, QERR_CRYPTO);
	g_clear_pointer(&err, g_free);
	/* the older layout cannot be claimed for a row written in the new one */
	g_autofree char *downgrade = g_strdup_printf("UPDATE payloads SET layout = 1 WHERE document_id = %lld"
	                                             " AND purpose = 'result' AND version = 2",
	                                             (long long)a.doc_id);
	g_assert_cmpint(db_exec(db, downgrade, &err), ==, QERR_DB);
	g_clear_pointer(&err, g_free);
	g_autofree char *restore = g_strdup_printf("UPDATE payloads SET sealed = (SELECT sealed FROM result_v2)"
	                                           " WHERE document_id = %lld AND purpose = 'result' AND version = 2",
	                                           (long long)a.doc_id);
	exec_sql(restore);
	exec_sql("DROP TABLE result_v2");
	QT_OK(read_result(dek, a.doc_id, "{\"total\":2}", &err), err);

	vault_dek_free(dek);

	/* a row written before the binding existed, as migration 0010 marks them (and before result
	 * versions were recorded in the audit log: a document with no record) */
	struct store_submitted b = submit_on(db, vault, "LEGACY");
	QT_OK(store_dek(db, vault, b.doc_id, &dek, &err), err);
	g_autofree uint8_t *old = NULL;
	size_t olen = 0;
	QT_OK(vault_seal(dek, b.doc_id, "result", "{\"total\":0}", 11, &old, &olen, &err), err);
	char sid[24];
	g_snprintf(sid, sizeof sid, "%lld", (long long)b.doc_id);
	struct db_param p[2] = {DB_TEXT(sid), DB_BIN(old, olen)};
	QT_OK(db_begin(db, &err), err);
	exec_sql("SET LOCAL session_replication_role = replica"); /* triggers off: the row predates them */
	QT_OK(db_query(db,
	               "INSERT INTO payloads (document_id, purpose, version, sealed, layout) VALUES ($1::bigint,"
	               " 'result', 1, $2, 1)",
	               2, p, NULL, &err),
	      err);
	QT_OK(db_commit(db, &err), err);
	QT_OK(read_result(dek, b.doc_id, "{\"total\":0}", &err), err);
	vault_dek_free(dek);
}

/* Writes a result version the way the worker (version 1) and a correction (later ones) do. */
static void put_result(const struct vault_dek *dek, int64_t doc, int32_t version, const char *json)
{
	g_autofree char *err = NULL;
	QT_OK(db_begin(db, &err), err);
	if (version == 1)
		QT_OK(store_put(db, dek, doc, "result", json, strlen(json), &err), err);
	else
		QT_OK(store_put_version(db, dek, doc, "result", version, json, strlen(json), &err), err);
	QT_OK(db_commit(db, &err), err);
}

/* The current result version is on record in the audit log: the newest version deleted by a
 * superuser does not bring the uncorrected values back as current, nor does a box of another
 * version restored in its place; removing the record as well breaks the audit chain. */
static void test_result_rollback(void)
{
	struct store_submitted a = submit_on(db, vault, "ROLLBACK");
	g_autofree char *err = NULL;
	struct vault_dek *dek = NULL;
	QT_OK(store_dek(db, vault, a.doc_id, &dek, &err), err);
	put_result(dek, a.doc_id, 1, "{\"total\":100}");
	put_result(dek, a.doc_id, 2, "{\"total\":999}");
	QT_OK(read_result(dek, a.doc_id, "{\"total\":999}", &err), err);
	struct audit_event viewed = {.actor = "user:alice", .action = "document.viewed", .object_type = "document",
	                             .object_id = a.doc_id, .outcome = "ok"};
	QT_OK(db_begin(db, &err), err);
	QT_OK(audit_append(db, &viewed, &err), err);
	QT_OK(db_commit(db, &err), err);
	g_autofree char *records = g_strdup_printf("SELECT count(*) FROM audit_log WHERE action = 'result.stored' AND"
	                                           " object_id = %lld AND detail LIKE 'version=2 %%'",
	                                           (long long)a.doc_id);
	g_assert_cmpint(count(records), ==, 1);
	g_autofree char *keep = g_strdup_printf("CREATE TABLE result_keep AS SELECT * FROM payloads WHERE document_id = %lld"
	                                        " AND purpose = 'result' AND version = 2",
	                                        (long long)a.doc_id);
	exec_sql(keep);
	g_autofree char *del = g_strdup_printf("BEGIN; SET LOCAL session_replication_role = replica; DELETE FROM payloads"
	                                       " WHERE document_id = %lld AND purpose = 'result' AND version = 2; COMMIT",
	                                       (long long)a.doc_id);
	exec_sql(del);
	g_assert_cmpint(read_result(dek, a.doc_id, NULL, &err), ==, QERR_CRYPTO);
	g_test_message("newest version deleted: %s", err);
	g_assert_nonnull(strstr(err, "records version 2, the database's newest is version 1"));
	/* version 1's box put back as version 2 (its row version rewritten too) */
	g_autofree char *back = g_strdup_printf(
		"BEGIN; SET LOCAL session_replication_role = replica; INSERT INTO payloads (document_id, purpose, version,"
		" sealed, layout) SELECT document_id, purpose, 2, sealed, layout FROM payloads WHERE document_id = %lld"
		" AND purpose = 'result' AND version = 1; COMMIT",
		(long long)a.doc_id);
	exec_sql(back);
	g_clear_pointer(&err, g_free);
	g_assert_cmpint(read_result(dek, a.doc_id, NULL, &err), ==, QERR_CRYPTO);
	g_assert_nonnull(strstr(err, "with another content"));
	exec_sql("BEGIN; SET LOCAL session_replication_role = replica; DELETE FROM payloads p USING result_keep k"
	         " WHERE p.document_id = k.document_id AND p.purpose = 'result' AND p.version = 2;"
	         " INSERT INTO payloads SELECT * FROM result_keep; DROP TABLE result_keep; COMMIT");
	QT_OK(read_result(dek, a.doc_id, "{\"total\":999}", &err), err);
	/* the record removed along with the row: the result reads as version 1, and the log is broken */
	int64_t n = 0;
	QT_OK(audit_verify(db, &n, &err), err);
	g_autofree char *save = g_strdup_printf("CREATE TABLE record_keep AS SELECT * FROM audit_log WHERE action ="
	                                        " 'result.stored' AND object_id = %lld AND detail LIKE 'version=2 %%'",
	                                        (long long)a.doc_id);
	exec_sql(save);
	g_autofree char *both = g_strdup_printf(
		"BEGIN; SET LOCAL session_replication_role = replica; DELETE FROM payloads WHERE document_id = %lld"
		" AND purpose = 'result' AND version = 2; DELETE FROM audit_log WHERE action = 'result.stored'"
		" AND object_id = %lld AND detail LIKE 'version=2 %%'; COMMIT",
		(long long)a.doc_id, (long long)a.doc_id);
	exec_sql(both);
	g_clear_pointer(&err, g_free);
	g_assert_cmpint(audit_verify(db, &n, &err), ==, QERR_CRYPTO);
	g_test_message("record removed too: %s", err);
	exec_sql("BEGIN; SET LOCAL session_replication_role = replica; INSERT INTO audit_log SELECT * FROM record_keep;"
	         " DROP TABLE record_keep; COMMIT");
	QT_OK(audit_verify(db, &n, &err), err);
	vault_dek_free(dek);
}

/* The newest result version deleted together with its `result.stored` entry, the newest entry of
 * the log, by a superuser: the chain that is left is whole and the result reads as version 1,
 * but the witness signed the log with that entry, so verify catches it. */
static void test_result_rollback_with_its_record(void)
{
	g_autofree char *dir = g_path_get_dirname(key_path);
	g_autofree char *witness = g_build_filename(dir, "rollback.witness", NULL);
	audit_set_signer(vault, 1000, 360000);
	audit_set_witness(witness, false);
	g_autofree char *err = NULL;
	struct audit_checkpoint cp;
	QT_OK(audit_checkpoint_export(db, vault, NULL, &cp, &err), err); /* signs the log as it stands, once */
	struct store_submitted a = submit_on(db, vault, "ROLLBACK-WITH-RECORD");
	struct vault_dek *dek = NULL;
	QT_OK(store_dek(db, vault, a.doc_id, &dek, &err), err);
	put_result(dek, a.doc_id, 1, "{\"total\":100}");
	put_result(dek, a.doc_id, 2, "{\"total\":999}");
	uint8_t pk[VAULT_PK_BYTES];
	vault_sign_public(vault, pk);
	struct audit_report r;
	QT_OK(audit_verify_signed(db, pk, NULL, &r, &err), err);
	g_autofree char *newest = g_strdup_printf("SELECT count(*) FROM audit_log WHERE id = (SELECT max(id) FROM"
	                                          " audit_log) AND action = 'result.stored' AND object_id = %lld"
	                                          " AND detail LIKE 'version=2 %%'",
	                                          (long long)a.doc_id);
	g_assert_cmpint(count(newest), ==, 1);
	exec_sql("CREATE TABLE record_keep AS SELECT * FROM audit_log WHERE id = (SELECT max(id) FROM audit_log)");
	g_autofree char *both = g_strdup_printf(
		"BEGIN; SET LOCAL session_replication_role = replica; CREATE TABLE result_keep AS SELECT * FROM payloads"
		" WHERE document_id = %lld AND purpose = 'result' AND version = 2; DELETE FROM payloads WHERE"
		" document_id = %lld AND purpose = 'result' AND version = 2; DELETE FROM audit_log WHERE id = (SELECT"
		" id FROM record_keep); SELECT setval('audit_log_id_seq', (SELECT max(id) FROM audit_log)); COMMIT",
		(long long)a.doc_id, (long long)a.doc_id);
	exec_sql(both);
	QT_OK(read_result(dek, a.doc_id, "{\"total\":100}", &err), err); /* the database alone cannot tell */
	int64_t n = 0;
	QT_OK(audit_verify(db, &n, &err), err); /* nor can the chain */
	g_assert_cmpint(audit_verify_signed(db, pk, NULL, &r, &err), ==, QERR_CRYPTO);
	g_test_message("newest version and its record deleted: %s", err);
	g_assert_nonnull(strstr(err, "shorter than its witness"));
	g_clear_pointer(&err, g_free);
	exec_sql("BEGIN; SET LOCAL session_replication_role = replica; INSERT INTO audit_log SELECT * FROM record_keep;"
	         " INSERT INTO payloads SELECT * FROM result_keep; DROP TABLE record_keep, result_keep; COMMIT");
	QT_OK(audit_verify_signed(db, pk, NULL, &r, &err), err);
	QT_OK(read_result(dek, a.doc_id, "{\"total\":999}", &err), err);
	vault_dek_free(dek);
	audit_set_witness(NULL, false);
	audit_set_signer(NULL, 0, 0);
	g_remove(witness);
}

/* An original is a header in its payload row and one row per sealed chunk (migration 0006):
 * a chunk cut short, dropped, duplicated at the end, swapped with another or taken from
 * another document does not open, nor does a header moved from another document. */
static void test_stream_in_database(void)
{
	/* three chunks: 64 KiB, 64 KiB and the rest */
	GString *big = g_string_new("%PDF-1.4\n% STREAM-A\n");
	while (big->len < 2 * VAULT_STREAM_CHUNK + 1000)
		g_string_append(big, "0123456789abcdef");
	struct store_submitted a, b = submit_on(db, vault, "STREAM-B");
	g_autofree char *err = NULL;
	QT_OK(store_submit(db, vault, "big.pdf", big->str, big->len, "test", 3, &a, &err), err);
	struct vault_dek *dek = NULL;
	struct vault_buf buf = {0};
	QT_OK(store_dek(db, vault, a.doc_id, &dek, &err), err);
	QT_OK(store_get(db, dek, a.doc_id, "original", &buf, &err), err);
	g_assert_cmpmem(buf.data, buf.len, big->str, big->len);
	vault_buf_free(&buf);
	g_autofree char *chunks = g_strdup_printf("SELECT chunks FROM payloads WHERE document_id = %lld AND purpose = 'original'",
	                                          (long long)a.doc_id);
	g_assert_cmpint(count(chunks), ==, 3);
	g_autofree char *where = g_strdup_printf("WHERE document_id = %lld AND purpose = 'original'", (long long)a.doc_id);
	g_autofree char *save = g_strdup_printf("CREATE TEMP TABLE saved AS SELECT * FROM payload_chunks %s;"
	                                        "CREATE TEMP TABLE saved_header AS SELECT sealed FROM payloads %s", where, where);
	exec_sql(save);
	g_autofree char *restore = g_strdup_printf("DELETE FROM payload_chunks %s; INSERT INTO payload_chunks SELECT * FROM saved;"
	                                           "UPDATE payloads SET chunks = 3, sealed = (SELECT sealed FROM saved_header) %s",
	                                           where, where);
	/* {W}: A's original, {B}: B's document id */
	const char *tamper[] = {
		"UPDATE payload_chunks SET sealed = substring(sealed FROM 1 FOR length(sealed) - 17) {W} AND seq = 3",
		"DELETE FROM payload_chunks {W} AND seq = 3",
		"DELETE FROM payload_chunks {W} AND seq = 3; UPDATE payloads SET chunks = 2 {W}",
		"INSERT INTO payload_chunks SELECT document_id, purpose, version, 4, sealed FROM saved WHERE seq = 1;"
		" UPDATE payloads SET chunks = 4 {W}",
		"UPDATE payload_chunks SET seq = 10 - seq {W} AND seq IN (1, 2); UPDATE payload_chunks SET seq = seq - 7 {W} AND seq > 7",
		"UPDATE payload_chunks SET sealed = sealed || '\\x00'::bytea {W} AND seq = 3",
		"UPDATE payloads SET sealed = (SELECT sealed FROM payloads WHERE document_id = {B} AND purpose = 'original') {W}",
		"UPDATE payload_chunks SET sealed = (SELECT sealed FROM payload_chunks WHERE document_id = {B}"
		" AND purpose = 'original' AND seq = 1) {W} AND seq = 3",
	};
	g_autofree char *bid = g_strdup_printf("%lld", (long long)b.doc_id);
	for (size_t i = 0; i < G_N_ELEMENTS(tamper); i++) {
		g_autoptr(GString) sql = g_string_new(tamper[i]);
		g_string_replace(sql, "{W}", where, 0);
		g_string_replace(sql, "{B}", bid, 0);
		exec_sql(sql->str);
		g_clear_pointer(&err, g_free);
		g_assert_cmpint(store_get(db, dek, a.doc_id, "original", &buf, &err), ==, QERR_CRYPTO);
		exec_sql(restore);
		QT_OK(store_get(db, dek, a.doc_id, "original", &buf, &err), err);
		vault_buf_free(&buf);
	}
	exec_sql("DROP TABLE saved; DROP TABLE saved_header");
	vault_dek_free(dek);
	g_string_free(big, TRUE);
	QT_OK(read_original(db, vault, b.doc_id, "STREAM-B", &err), err);
}

struct load {
	volatile gint stop;
	int submitted, reads;
	int64_t first_doc;
	char *failure;
};

/* Submits documents on its own connection and vault handle until told to stop. */
static gpointer submitter(gpointer data)
{
	struct load *l = data;
	struct db *conn = pgtest_connect();
	struct vault *v = NULL;
	g_autofree char *err = NULL;
	QT_OK(vault_open(key_path, &v, &err), err);
	while (!g_atomic_int_get(&l->stop) && !l->failure) {
		g_autofree char *tag = g_strdup_printf("LOAD-%d", l->submitted);
		g_autoptr(GBytes) pdf = fake_pdf(tag);
		struct store_submitted s;
		if (store_submit(conn, v, "doc.pdf", g_bytes_get_data(pdf, NULL), g_bytes_get_size(pdf), "test", 3, &s, &err))
			l->failure = g_strdup_printf("submit: %s", err);
		else if (l->submitted++ == 0)
			l->first_doc = s.doc_id;
	}
	vault_close(v);
	db_close(conn);
	return NULL;
}

/* Reads back the load documents already submitted while the rotation runs. */
static gpointer reader(gpointer data)
{
	struct load *l = data;
	struct db *conn = pgtest_connect();
	struct vault *v = NULL;
	g_autofree char *err = NULL;
	QT_OK(vault_open(key_path, &v, &err), err);
	while (!g_atomic_int_get(&l->stop) && !l->failure) {
		int n = g_atomic_int_get(&l->submitted);
		if (n < 2)
			continue;
		int k = g_random_int_range(0, n - 1);
		g_autofree char *tag = g_strdup_printf("LOAD-%d", k);
		if (read_original(conn, v, l->first_doc + k, tag, &err))
			l->failure = g_strdup_printf("read of load document %d: %s", k, err);
		l->reads++;
	}
	vault_close(v);
	db_close(conn);
	return NULL;
}


static void test_rotation_under_load(void)
{
	g_autofree char *err = NULL;
	struct load l = {0};
	GThread *t1 = g_thread_new("submitter", submitter, &l), *t2 = g_thread_new("reader", reader, &l);
	while (g_atomic_int_get(&l.submitted) < 30 && !l.failure)
		g_usleep(10000);
	int32_t old = vault_key_version(vault), next = 0;
	int64_t rewrapped = 0;
	QT_OK(vault_rotate(vault, &next, &err), err);
	QT_OK(custody_activate(db, next, "test", &err), err);
	QT_OK(custody_rewrap(db, vault, next, 7, &rewrapped, &err), err);
	/* new submissions go on under the new version while we check */
	g_usleep(200000);
	g_atomic_int_set(&l.stop, 1);
	g_thread_join(t1);
	g_thread_join(t2);
	g_assert_null(l.failure);
	g_assert_cmpint(rewrapped, >=, 30);
	g_assert_cmpint(l.reads, >, 0);
	g_autofree char *old_rows = g_strdup_printf("SELECT count(*) FROM documents WHERE key_version = %d", (int)old);
	g_assert_cmpint(count(old_rows), ==, 0);
	QT_OK(custody_retire(db, old, "test", &err), err);
	QT_OK(vault_retire(vault, old, &err), err);
	g_assert_false(vault_has_version(vault, old));
	for (int k = 0; k < l.submitted; k++) {
		g_autofree char *tag = g_strdup_printf("LOAD-%d", k);
		QT_OK(read_original(db, vault, l.first_doc + k, tag, &err), err);
	}
	g_test_message("rotation under load: %d documents submitted, %d reads, %lld data keys rewrapped", l.submitted,
	               l.reads, (long long)rewrapped);
	/* the active version cannot be retired */
	g_assert_cmpint(custody_retire(db, next, "test", &err), ==, QERR_CONFLICT);
}

static void test_erasure_defeats_backup(void)
{
	struct store_submitted a = submit_on(db, vault, "ERASE-ME"), b = submit_on(db, vault, "KEEP-ME");
	g_autofree char *err = NULL;
	/* the backup: every row of the document, as pg_dump would have them */
	g_autofree char *q = g_strdup_printf("SELECT wrapped_key, key_version FROM documents WHERE id = %lld", (long long)a.doc_id);
	struct db_res *res = NULL;
	QT_OK(db_query(db, q, 0, NULL, &res, &err), err);
	size_t wlen = 0;
	g_autofree uint8_t *wrapped = db_res_bytea(res, 0, 0, &wlen);
	int32_t ver = (int32_t)db_res_int(res, 0, 1);
	db_res_free(res);
	g_autofree char *backup = g_strdup_printf("CREATE TABLE payload_backup AS SELECT * FROM payloads WHERE document_id = %lld",
	                                          (long long)a.doc_id);
	exec_sql(backup);
	/* the backup is readable before the erasure */
	struct vault_dek *dek = NULL;
	QT_OK(vault_dek_unwrap(vault, wrapped, wlen, a.doc_id, ver, &dek, &err), err);
	vault_dek_free(dek);

	QT_OK(custody_erase(db, a.doc_id, "test", "cli", &err), err);
	g_assert_cmpint(custody_erase(db, a.doc_id, "test", "cli", &err), ==, QERR_CONFLICT);
	g_assert_cmpint(read_original(db, vault, a.doc_id, NULL, &err), ==, QERR_NOT_FOUND);
	g_autofree char *left = g_strdup_printf("SELECT count(*) FROM payloads WHERE document_id = %lld", (long long)a.doc_id);
	g_assert_cmpint(count(left), ==, 0);
	/* the key version is rotated away and retired, as `quire erase` does */
	int32_t next = 0;
	int64_t done = 0;
	QT_OK(vault_rotate(vault, &next, &err), err);
	QT_OK(custody_activate(db, next, "test", &err), err);
	QT_OK(custody_rewrap(db, vault, next, 100, &done, &err), err);
	QT_OK(custody_retire(db, ver, "test", &err), err);
	QT_OK(vault_retire(vault, ver, &err), err);
	/* the pre-erasure copy no longer opens: its wrapping key is gone */
	g_assert_cmpint(vault_dek_unwrap(vault, wrapped, wlen, a.doc_id, ver, &dek, &err), ==, QERR_KEY);
	/* not even when restored into the database */
	g_autofree char *hex = g_malloc(2 * wlen + 1);
	sodium_bin2hex(hex, 2 * wlen + 1, wrapped, wlen);
	g_autofree char *restore_sql = g_strdup_printf(
		"ALTER TABLE documents DROP CONSTRAINT documents_erased_has_no_key;"
		"UPDATE documents SET wrapped_key = '\\x%s', key_version = %d, state = 'processed' WHERE id = %lld;"
		"INSERT INTO payloads SELECT * FROM payload_backup;",
		hex, (int)ver, (long long)a.doc_id);
	exec_sql(restore_sql);
	g_assert_cmpint(read_original(db, vault, a.doc_id, NULL, &err), ==, QERR_KEY);
	exec_sql("DELETE FROM payloads WHERE document_id IN (SELECT document_id FROM payload_backup);"
	         "DROP TABLE payload_backup;");
	g_autofree char *reerase = g_strdup_printf("UPDATE documents SET wrapped_key = NULL, state = 'erased' WHERE id = %lld;"
	                                           "ALTER TABLE documents ADD CONSTRAINT documents_erased_has_no_key"
	                                           " CHECK (state <> 'erased' OR wrapped_key IS NULL)",
	                                           (long long)a.doc_id);
	exec_sql(reerase);
	/* the other document is untouched, and the audit log has the erasure without content */
	QT_OK(read_original(db, vault, b.doc_id, "KEEP-ME", &err), err);
	g_autofree char *audited = g_strdup_printf(
		"SELECT count(*) FROM audit_log WHERE action = 'document.erased' AND object_id = %lld"
		" AND detail = '' AND position('ERASE-ME' IN actor || action || outcome || client) = 0",
		(long long)a.doc_id);
	g_assert_cmpint(count(audited), ==, 1);
}

static void test_database_refuses(void)
{
	g_autofree char *err = NULL;
	g_assert_cmpint(db_exec(db, "TRUNCATE audit_log", &err), ==, QERR_DB);
	g_assert_nonnull(strstr(err, "append-only"));
	g_clear_pointer(&err, g_free);
	struct audit_checkpoint cp;
	QT_OK(audit_checkpoint_now(db, vault, &cp, &err), err);
	g_assert_cmpint(db_exec(db, "DELETE FROM audit_checkpoints", &err), ==, QERR_DB);
	/* the application's role may insert and read, never change or delete, even with the triggers off */
	QT_OK(db_begin(db, &err), err);
	exec_sql("ALTER TABLE audit_log DISABLE TRIGGER USER; SET LOCAL ROLE quire_app");
	struct audit_event ev = {.actor = "system:test", .action = "role.checked", .outcome = "ok"};
	QT_OK(audit_append(db, &ev, &err), err);
	g_assert_cmpint(db_exec(db, "SELECT count(*) FROM audit_log", &err), ==, QERR_OK);
	g_assert_cmpint(db_exec(db, "UPDATE audit_log SET outcome = 'x'", &err), ==, QERR_DB);
	g_assert_nonnull(strstr(err, "permission denied"));
	db_rollback(db);
	QT_OK(db_begin(db, &err), err);
	exec_sql("SET LOCAL ROLE quire_app");
	g_assert_cmpint(db_exec(db, "DELETE FROM audit_log", &err), ==, QERR_DB);
	g_assert_nonnull(strstr(err, "permission denied"));
	db_rollback(db);
}

static void test_users_and_tokens(void)
{
	g_autofree char *err = NULL;
	struct users_policy weak = {.ops = 1, .mem = 8 << 20}, strong = {.ops = 2, .mem = 8 << 20};
	int64_t id = 0;
	QT_OK(users_add(db, &weak, "alice", "correct horse battery", USERS_ROLE_REVIEWER, "cli:root", "cli", &id, &err),
	      err);
	g_assert_cmpint(users_add(db, &weak, "alice", "another password", USERS_ROLE_ADMIN, "cli:root", "cli", &id, &err),
	                ==, QERR_CONFLICT);
	g_assert_cmpint(users_add(db, &weak, "bob", "short", USERS_ROLE_ADMIN, "cli:root", "cli", &id, &err), ==,
	                QERR_BAD_INPUT);
	g_assert_cmpint(users_add(db, &weak, "bad name!", "long enough pw", USERS_ROLE_ADMIN, "cli:root", "cli", &id, &err),
	                ==, QERR_BAD_INPUT);
	g_assert_cmpint(count("SELECT count(*) FROM users WHERE password_hash LIKE '$argon2id$%'"), ==, 1);
	g_assert_cmpint(count("SELECT count(*) FROM users WHERE password_hash LIKE '%horse%'"), ==, 0);
	struct users_principal who;
	QT_OK(users_login(db, &weak, "alice", "correct horse battery", "10.1.2.3", &who, &err), err);
	g_assert_cmpint(who.role, ==, USERS_ROLE_REVIEWER);
	g_assert_cmpstr(who.actor, ==, "user:alice");
	g_assert_cmpint(users_login(db, &weak, "alice", "Not-The-Password", "10.1.2.3", &who, &err), ==, QERR_DENIED);
	g_assert_cmpint(users_login(db, &weak, "nobody", "Not-The-Password", "10.1.2.3", &who, &err), ==, QERR_DENIED);
	g_assert_cmpint(count("SELECT count(*) FROM audit_log WHERE action = 'auth.login' AND outcome = 'failed'"
	                      " AND client = '10.1.2.3' AND position('Not-The-Password' IN detail || actor) = 0"),
	                ==, 2);
	/* a stronger policy: the next good login rehashes */
	QT_OK(users_login(db, &strong, "alice", "correct horse battery", "cli", &who, &err), err);
	g_assert_cmpint(count("SELECT count(*) FROM users WHERE name = 'alice' AND password_hash LIKE '%t=2,%'"), ==, 1);
	QT_OK(users_logout(db, &who, "cli", &err), err);
	QT_OK(users_set_role(db, "alice", USERS_ROLE_AUDITOR, "cli:root", "cli", &err), err);
	QT_OK(users_passwd(db, &strong, "alice", "a new passphrase", "cli:root", "cli", &err), err);
	QT_OK(users_login(db, &strong, "alice", "a new passphrase", "cli", &who, &err), err);
	g_assert_cmpint(who.role, ==, USERS_ROLE_AUDITOR);
	QT_OK(users_disable(db, "alice", "cli:root", "cli", &err), err);
	g_assert_cmpint(users_login(db, &strong, "alice", "a new passphrase", "cli", &who, &err), ==, QERR_DENIED);
	g_assert_cmpint(users_disable(db, "nobody", "cli:root", "cli", &err), ==, QERR_NOT_FOUND);
	/* roles: deny by default */
	g_assert_true(users_allowed(USERS_ROLE_ADMIN, USERS_PERM_KEY_ADMIN));
	g_assert_true(users_allowed(USERS_ROLE_OPERATOR, USERS_PERM_UPLOAD));
	g_assert_false(users_allowed(USERS_ROLE_OPERATOR, USERS_PERM_DOC_VIEW));
	g_assert_true(users_allowed(USERS_ROLE_REVIEWER, USERS_PERM_DOC_APPROVE));
	g_assert_false(users_allowed(USERS_ROLE_REVIEWER, USERS_PERM_AUDIT_READ));
	g_assert_true(users_allowed(USERS_ROLE_AUDITOR, USERS_PERM_AUDIT_READ));
	g_assert_false(users_allowed(USERS_ROLE_AUDITOR, USERS_PERM_DOC_CORRECT));
	g_assert_false(users_allowed(USERS_ROLE_COUNT, USERS_PERM_QUEUE_VIEW));
	g_assert_false(users_allowed(USERS_ROLE_ADMIN, USERS_PERM_COUNT));
	/* tokens: shown once, stored hashed, scoped, expiring, revocable */
	char *token = NULL, *short_lived = NULL;
	int64_t tid = 0, sid = 0;
	QT_OK(users_token_create(db, vault, "ci", USERS_ROLE_OPERATOR, 3600, "cli:root", "cli", &token, &tid, &err),
	      err);
	QT_OK(
	    users_token_create(db, vault, "brief", USERS_ROLE_AUDITOR, 1, "cli:root", "cli", &short_lived, &sid, &err),
	    err);
	g_assert_true(g_str_has_prefix(token, USERS_TOKEN_PREFIX));
	g_autofree char *leak = g_strdup_printf("SELECT count(*) FROM api_tokens t WHERE position('%s' IN t::text) > 0"
	                                        " OR position(encode(convert_to('%s', 'UTF8'), 'hex') IN t::text) > 0",
	                                        token + 3, token + 3);
	g_assert_cmpint(count(leak), ==, 0);
	QT_OK(users_token_check(db, vault, token, "10.9.9.9", &who, &err), err);
	g_assert_true(who.is_token);
	g_assert_cmpint(who.role, ==, USERS_ROLE_OPERATOR);
	g_assert_cmpint(users_token_check(db, vault, "qt_forged", "10.9.9.9", &who, &err), ==, QERR_DENIED);
	g_usleep(1100000);
	g_assert_cmpint(users_token_check(db, vault, short_lived, "10.9.9.9", &who, &err), ==, QERR_DENIED);
	QT_OK(users_token_revoke(db, tid, "cli:root", "cli", &err), err);
	g_assert_cmpint(users_token_check(db, vault, token, "10.9.9.9", &who, &err), ==, QERR_DENIED);
	struct users_token_info *list = NULL;
	int n = 0;
	QT_OK(users_token_list(db, &list, &n, &err), err);
	g_assert_cmpint(n, ==, 2);
	g_assert_true(list[1].revoked && !list[1].expired);
	g_assert_true(list[0].expired);
	users_token_list_free(list, n);
	g_free(token);
	g_free(short_lived);
	int64_t entries = 0;
	QT_OK(audit_verify(db, &entries, &err), err);
}

/* Opens two web sessions for user (as the login page does, by row). */
static void open_sessions(const char *user)
{
	g_autofree char *sql = g_strdup_printf(
		"INSERT INTO web_sessions (token_mac, user_id, csrf) SELECT gen_random_uuid()::text::bytea, id, 'c'"
		" FROM users, generate_series(1, 2) WHERE name = '%s'",
		user);
	exec_sql(sql);
}

static int64_t sessions_of(const char *user)
{
	g_autofree char *sql = g_strdup_printf("SELECT count(*) FROM web_sessions s JOIN users u ON u.id = s.user_id"
	                                       " WHERE u.name = '%s'",
	                                       user);
	return count(sql);
}

/* A password, role or disabled flag changed from the command line ends that user's sessions at
 * once, and no one else's; disabling also revokes the API tokens the user made. */
static void test_user_changes_end_sessions(void)
{
	g_autofree char *err = NULL;
	struct users_policy pol = {.ops = 1, .mem = 8 << 20};
	int64_t id = 0;
	QT_OK(users_add(db, &pol, "carol", "carol's long password", USERS_ROLE_REVIEWER, "cli:root", "cli", &id, &err),
	      err);
	QT_OK(users_add(db, &pol, "dave", "dave's long password", USERS_ROLE_REVIEWER, "cli:root", "cli", &id, &err),
	      err);
	open_sessions("carol");
	open_sessions("dave");
	QT_OK(users_passwd(db, &pol, "carol", "a new long password", "cli:root", "cli", &err), err);
	g_assert_cmpint(sessions_of("carol"), ==, 0);
	g_assert_cmpint(sessions_of("dave"), ==, 2);
	open_sessions("carol");
	QT_OK(users_set_role(db, "carol", USERS_ROLE_AUDITOR, "cli:root", "cli", &err), err);
	g_assert_cmpint(sessions_of("carol"), ==, 0);
	open_sessions("carol");
	char *mine = NULL, *other = NULL;
	QT_OK(users_token_create(db, vault, "carols", USERS_ROLE_AUDITOR, 3600, "user:carol", "10.0.0.1", &mine, &id,
	                         &err),
	      err);
	QT_OK(users_token_create(db, vault, "daves", USERS_ROLE_AUDITOR, 3600, "user:dave", "10.0.0.1", &other, &id,
	                         &err),
	      err);
	struct users_principal who;
	QT_OK(users_token_check(db, vault, mine, "10.0.0.1", &who, &err), err);
	QT_OK(users_disable(db, "carol", "cli:root", "cli", &err), err);
	g_assert_cmpint(sessions_of("carol"), ==, 0);
	g_assert_cmpint(sessions_of("dave"), ==, 2);
	g_assert_cmpint(users_token_check(db, vault, mine, "10.0.0.1", &who, &err), ==, QERR_DENIED);
	QT_OK(users_token_check(db, vault, other, "10.0.0.1", &who, &err), err);
	g_free(mine);
	g_free(other);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	db = pgtest_start();
	vault = pgtest_vault(&key_path);
	g_test_add_func("/security/swaps-refused", test_swaps_refused);
	g_test_add_func("/security/result-versions-bound", test_result_versions_bound);
	g_test_add_func("/security/result-rollback-refused", test_result_rollback);
	g_test_add_func("/security/result-rollback-with-its-record-caught", test_result_rollback_with_its_record);
	g_test_add_func("/security/stream-in-database", test_stream_in_database);
	g_test_add_func("/security/rotation-under-load", test_rotation_under_load);
	g_test_add_func("/security/erasure-defeats-backup", test_erasure_defeats_backup);
	g_test_add_func("/security/audit/database-refuses", test_database_refuses);
	g_test_add_func("/security/users-and-tokens", test_users_and_tokens);
	g_test_add_func("/security/users/changes-end-sessions", test_user_changes_end_sessions);
	int rc = g_test_run();
	db_close(db);
	pgtest_stop();
	return rc;
}
