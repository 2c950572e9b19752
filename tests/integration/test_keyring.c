/* The keyring in the database, shared by several vaults as several hosts share it: the
 * keyring file imported once, a rotation and a retirement made through one vault seen by
 * another without reopening it, concurrent rotations that lose nothing, the key-encryption
 * key printed by a command, and a rotation by one `quire` process seen by a running
 * `quire worker` process, which goes on processing documents sealed under the new version. */
#include <glib.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "core/db.h"
#include "core/ringstore.h"
#include "core/vault.h"
#include "tests/integration/pgtest.h"
#include "tests/integration/test_queue_util.h"

static struct qt t;

/* A vault whose keyring is in the test's database, as a host opens it. */
struct host {
	struct ringstore *rs;
	struct vault_store store;
	struct vault *v;
};

static char *keyring_file(void)
{
	return g_build_filename(t.dir, "keyring", NULL);
}

static enum qerr host_open_with(struct host *h, struct vault_options *o, char **reterr)
{
	memset(h, 0, sizeof *h);
	enum qerr e = ringstore_open(t.conninfo, &h->rs, reterr);
	if (e)
		return e;
	ringstore_bind(h->rs, &h->store);
	o->store = &h->store;
	e = vault_open_with(o, &h->v, reterr);
	if (e)
		g_clear_pointer(&h->rs, ringstore_close);
	return e;
}

static void host_open(struct host *h)
{
	g_autofree char *ring = keyring_file();
	struct vault_options o = {.source = VAULT_SOURCE_FILE, .key_file = t.key, .keyring = ring};
	g_autofree char *err = NULL;
	QT_OK(host_open_with(h, &o, &err), err);
}

static void host_close(struct host *h)
{
	vault_close(h->v);
	ringstore_close(h->rs);
	memset(h, 0, sizeof *h);
}

/* A data key wrapped by one vault under version opens with the other. */
static bool opens_with(const struct vault *from, const struct vault *with, int32_t version, char **reterr)
{
	struct vault_dek *dek = NULL, *back = NULL;
	g_autofree uint8_t *wrapped = NULL;
	size_t len = 0;
	enum qerr e = vault_dek_new(&dek, reterr);
	if (!e)
		e = vault_dek_wrap(from, dek, 42, version, &wrapped, &len, reterr);
	if (!e)
		e = vault_dek_unwrap(with, wrapped, len, 42, version, &back, reterr);
	vault_dek_free(dek);
	vault_dek_free(back);
	return e == QERR_OK;
}

static struct host a, b;

static void test_import_once(void)
{
	g_autofree char *ring = keyring_file();
	g_autofree char *moved = g_strconcat(ring, ".imported", NULL);
	g_assert_true(g_file_test(ring, G_FILE_TEST_EXISTS)); /* made by the file vault of qt_start() */
	g_assert_cmpint(vault_key_version(t.vault), ==, 1);
	host_open(&a);
	g_assert_cmpint(vault_ring_origin(a.v), ==, VAULT_RING_IMPORTED);
	g_assert_false(g_file_test(ring, G_FILE_TEST_EXISTS));
	g_assert_true(g_file_test(moved, G_FILE_TEST_EXISTS));
	g_assert_cmpstr(vault_ring_where(a.v), ==, "in the database");
	g_assert_cmpint(qt_int(t.db, "SELECT count(*) FROM keyring"), ==, 1);
	/* the same keys: a data key wrapped by the file's vault opens with the database's */
	g_autofree char *err = NULL;
	g_assert_true(opens_with(t.vault, a.v, 1, &err));
	/* the next host finds it there; nothing is imported twice */
	host_open(&b);
	g_assert_cmpint(vault_ring_origin(b.v), ==, VAULT_RING_FOUND);
	g_assert_cmpint(qt_int(t.db, "SELECT generation FROM keyring"), ==, 1);
	/* the submissions of the following tests go through a vault of the database's keyring */
	vault_close(t.vault);
	t.vault = a.v;
}

static void test_rotation_and_retirement_seen(void)
{
	g_autofree char *err = NULL;
	int32_t v2 = 0, v3 = 0;
	QT_OK(vault_rotate(a.v, &v2, &err), err);
	g_assert_cmpint(v2, ==, 2);
	/* b never saw version 2: it reloads instead of failing */
	g_assert_cmpint(vault_key_version(b.v), ==, 1);
	g_assert_true(opens_with(a.v, b.v, 2, &err));
	g_assert_cmpint(vault_key_version(b.v), ==, 2);
	QT_OK(vault_rotate(b.v, &v3, &err), err);
	g_assert_cmpint(v3, ==, 3);
	g_assert_true(opens_with(b.v, a.v, 3, &err));
	/* a retirement through a: b stops using version 2 once its copy is a second old */
	g_assert_true(vault_has_version(b.v, 2));
	QT_OK(vault_retire(a.v, 2, &err), err);
	g_assert_false(vault_has_version(a.v, 2));
	gint64 end = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
	while (vault_has_version(b.v, 2) && g_get_monotonic_time() < end)
		g_usleep(50000);
	g_assert_false(vault_has_version(b.v, 2));
	g_assert_true(vault_has_version(b.v, 1));
	g_assert_cmpint(vault_retire(b.v, 3, &err), ==, QERR_CONFLICT); /* the newest */
	g_clear_pointer(&err, g_free);
	g_assert_cmpint(vault_retire(b.v, 2, &err), ==, QERR_NOT_FOUND);
	g_clear_pointer(&err, g_free);
}

enum { ROTATIONS = 6 };

static gpointer rotate_many(gpointer data)
{
	struct host *h = data;
	for (int i = 0; i < ROTATIONS; i++) {
		int32_t v = 0;
		g_autofree char *err = NULL;
		QT_OK(vault_rotate(h->v, &v, &err), err);
	}
	return NULL;
}

static void test_concurrent_rotations(void)
{
	int32_t before = vault_key_version(a.v);
	GThread *ta = g_thread_new("a", rotate_many, &a), *tb = g_thread_new("b", rotate_many, &b);
	g_thread_join(ta);
	g_thread_join(tb);
	/* every rotation landed: none overwrote another's version */
	struct host c;
	host_open(&c);
	g_assert_cmpint(vault_key_version(c.v), ==, before + 2 * ROTATIONS);
	for (int32_t v = before + 1; v <= before + 2 * ROTATIONS; v++)
		g_assert_true(vault_has_version(c.v, v));
	g_autofree char *err = NULL;
	g_assert_true(opens_with(a.v, c.v, before + 2 * ROTATIONS, &err));
	g_assert_true(opens_with(b.v, c.v, before + 2 * ROTATIONS, &err));
	host_close(&c);
}

static enum qerr open_by_command(const char *command, struct host *h, char **reterr)
{
	struct vault_options o = {.source = VAULT_SOURCE_COMMAND, .command = command};
	return host_open_with(h, &o, reterr);
}

static void test_kek_from_command(void)
{
	/* a host without the key file: a command prints the key (here from a copy of the file) */
	g_autofree char *cmd = g_strdup_printf("cat '%s'", t.key);
	struct host c;
	g_autofree char *err = NULL;
	QT_OK(open_by_command(cmd, &c, &err), err);
	g_assert_true(opens_with(a.v, c.v, vault_key_version(a.v), &err));
	host_close(&c);
	/* a failing command, a command printing something else than a key, a wrong key */
	struct {
		const char *cmd, *says;
	} bad[] = {
	    {"false", "failed (exit status 1)"},
	    {"echo not-a-key", "must print the key"},
	    {"printf %064d 0", "does not open"},
	    {"/nonexistent/kms-client", "cannot run vault.kek_command"},
	};
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_clear_pointer(&err, g_free);
		g_assert_cmpint(open_by_command(bad[i].cmd, &c, &err), ==, QERR_KEY);
		g_test_message("%s: %s", bad[i].cmd, err);
		g_assert_nonnull(strstr(err, bad[i].says));
	}
}

static void test_worker_sees_rotation(void)
{
	int64_t doc1 = 0, doc2 = 0;
	pid_t w = qt_worker(&t, 30, NULL);
	qt_submit(&t, "KEY-1", 1, 0, &doc1);
	g_autofree char *first =
	    g_strdup_printf("SELECT count(*) FROM documents WHERE id = %lld AND state = 'processed'", (long long)doc1);
	g_assert_true(qt_until(t.db, 1, 120, first));
	/* another process rotates; the worker keeps running */
	int status = -1;
	g_autofree char *out = qt_quire(&t, &status, "keys", "rotate", NULL);
	g_test_message("%s", out);
	g_assert_cmpint(status, ==, 0);
	int32_t active = (int32_t)qt_int(t.db, "SELECT version FROM key_versions WHERE state = 'active'");
	g_assert_cmpint(active, >, 1);
	qt_submit(&t, "KEY-2", 1, 0, &doc2);
	g_assert_cmpint(qt_int(t.db, "SELECT key_version FROM documents WHERE id = %lld", (long long)doc2), ==, active);
	g_autofree char *second = g_strdup_printf("SELECT count(*) FROM documents d JOIN jobs j ON j.document_id = d.id"
	                                          " WHERE d.id = %lld AND d.state = 'processed' AND j.attempts = 1"
	                                          " AND j.worker LIKE '%%:%d'",
	                                          (long long)doc2, (int)w);
	g_assert_true(qt_until(t.db, 1, 120, second));
	g_assert_cmpint(kill(w, 0), ==, 0); /* the same process, never restarted */
	kill(w, SIGTERM);
	g_assert_cmpint(qt_wait(w, 60), ==, 0);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	qt_start(&t);
	g_test_add_func("/keyring/import-once", test_import_once);
	g_test_add_func("/keyring/rotation-and-retirement-seen-by-another-host", test_rotation_and_retirement_seen);
	g_test_add_func("/keyring/concurrent-rotations", test_concurrent_rotations);
	g_test_add_func("/keyring/kek-from-command", test_kek_from_command);
	g_test_add_func("/keyring/worker-process-sees-rotation", test_worker_sees_rotation);
	int rc = g_test_run();
	if (t.vault == a.v)
		t.vault = NULL;
	host_close(&a);
	host_close(&b);
	qt_stop(&t);
	return rc;
}
