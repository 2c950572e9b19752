/* Integration tests of the watched folder against a real PostgreSQL: only complete
 * files are taken, refusals go to failed/ with their reason, a crash between the
 * commit and the move does not make a second document, and watcher processes
 * killed with SIGKILL again and again while files arrive ingest each exactly once. */
#include <cairo-pdf.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/db.h"
#include "core/vault.h"
#include "pipeline/store.h"
#include "pipeline/watch.h"
#include "pipeline/worker.h"
#include "web/metrics.h"
#include "tests/integration/pgtest.h"

static struct db *db;
static struct vault *vault;

static GBytes *invoice_pdf(const char *number)
{
	g_autofree char *dir = g_dir_make_tmp("quire-it-pdf-XXXXXX", NULL);
	g_autofree char *path = g_build_filename(dir, "inv.pdf", NULL);
	cairo_surface_t *s = cairo_pdf_surface_create(path, 595, 842);
	cairo_t *cr = cairo_create(s);
	cairo_set_font_size(cr, 11);
	g_autofree char *num = g_strdup_printf("Invoice number: %s", number);
	const char *lines[] = {"Watched Folder Supplies", num, "Invoice date: 2026-02-01", "Total: 42.00 EUR"};
	for (size_t i = 0; i < G_N_ELEMENTS(lines); i++) {
		cairo_move_to(cr, 50, 60 + 16 * (double)i);
		cairo_show_text(cr, lines[i]);
	}
	cairo_destroy(cr);
	cairo_surface_destroy(s);
	gchar *data = NULL;
	gsize len = 0;
	g_assert_true(g_file_get_contents(path, &data, &len, NULL));
	g_unlink(path);
	g_rmdir(dir);
	return g_bytes_new_take(data, len);
}

static void drop(const char *dir, const char *name, const char *number)
{
	g_autoptr(GBytes) pdf = invoice_pdf(number);
	g_autofree char *path = g_build_filename(dir, name, NULL);
	gsize len = 0;
	const char *data = g_bytes_get_data(pdf, &len);
	g_assert_true(g_file_set_contents(path, data, (gssize)len, NULL));
}

static int64_t count(const char *sql)
{
	struct db_res *res = NULL;
	QT_OK(db_query(db, sql, 0, NULL, &res, NULL), sql);
	int64_t n = db_res_int(res, 0, 0);
	db_res_free(res);
	return n;
}

static bool exists(const char *dir, const char *sub, const char *name)
{
	g_autofree char *p = sub ? g_build_filename(dir, sub, name, NULL) : g_build_filename(dir, name, NULL);
	return g_file_test(p, G_FILE_TEST_EXISTS);
}

static struct watch_options options(const char *dir)
{
	return (struct watch_options){.dir = dir, .max_bytes = 10u << 20, .settle_ms = 150, .scan_ms = 50,
	                              .actor = "test:watch", .once = true};
}

static void test_takes_complete_files(void)
{
	g_autofree char *dir = g_dir_make_tmp("quire-watch-XXXXXX", NULL);
	int64_t before = count("SELECT count(*) FROM documents");
	drop(dir, "a.pdf", "W-A-1");
	drop(dir, "B.PDF", "W-B-1");
	g_autofree char *bad = g_build_filename(dir, "bad.pdf", NULL);
	g_autofree char *notes = g_build_filename(dir, "notes.txt", NULL);
	g_autofree char *hidden = g_build_filename(dir, ".partial.pdf", NULL);
	g_assert_true(g_file_set_contents(bad, "just some text, not a PDF", -1, NULL));
	g_assert_true(g_file_set_contents(notes, "left alone", -1, NULL));
	g_assert_true(g_file_set_contents(hidden, "%PDF-1.4 still being copied", -1, NULL));
	struct watch_options o = options(dir);
	struct watch_stats st;
	volatile int stop = 0;
	g_autofree char *err = NULL;
	QT_OK(watch_run(db, vault, &o, &stop, &st, &err), err);
	g_assert_cmpint(st.ingested, ==, 2);
	g_assert_cmpint(st.failed, ==, 1);
	g_assert_cmpint(count("SELECT count(*) FROM documents"), ==, before + 2);
	g_assert_true(exists(dir, "processed", "a.pdf") && exists(dir, "processed", "B.PDF"));
	g_assert_true(exists(dir, "failed", "bad.pdf") && exists(dir, "failed", "bad.pdf.error"));
	g_autofree char *why = NULL;
	g_autofree char *whypath = g_build_filename(dir, "failed", "bad.pdf.error", NULL);
	g_assert_true(g_file_get_contents(whypath, &why, NULL, NULL));
	g_assert_nonnull(strstr(why, "PDF"));
	g_assert_true(exists(dir, NULL, "notes.txt") && exists(dir, NULL, ".partial.pdf"));
	g_assert_false(exists(dir, NULL, "a.pdf") || exists(dir, NULL, "bad.pdf"));
	g_assert_cmpint(count("SELECT count(*) FROM audit_log WHERE action = 'watch.rejected'"), >=, 1);
	/* The same name again with other content: both kept, the second under a new name. */
	drop(dir, "a.pdf", "W-A-2");
	QT_OK(watch_run(db, vault, &o, &stop, &st, &err), err);
	g_assert_cmpint(st.ingested, ==, 1);
	g_assert_true(exists(dir, "processed", "a.pdf") && exists(dir, "processed", "a.1.pdf"));
}

struct bg {
	struct db *db;
	struct watch_options o;
	volatile int stop;
	struct watch_stats st;
	enum qerr e;
};

static gpointer run_bg(gpointer data)
{
	struct bg *b = data;
	g_autofree char *err = NULL;
	b->e = watch_run(b->db, vault, &b->o, &b->stop, &b->st, &err);
	return NULL;
}

static bool wait_for(const char *dir, const char *sub, const char *name, int ms)
{
	for (int i = 0; i < ms / 20; i++) {
		if (exists(dir, sub, name))
			return true;
		g_usleep(20000);
	}
	return false;
}

/* A writer holding the file open keeps it out, however long it pauses; its close lets it in. */
static void test_waits_for_writer(void)
{
	g_autofree char *dir = g_dir_make_tmp("quire-watch-XXXXXX", NULL);
	g_autoptr(GBytes) pdf = invoice_pdf("W-SLOW-1");
	gsize len = 0;
	const char *data = g_bytes_get_data(pdf, &len);
	g_autofree char *path = g_build_filename(dir, "slow.pdf", NULL);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(write(fd, data, len / 2), ==, (ssize_t)(len / 2));
	struct bg b = {.db = pgtest_connect(), .o = options(dir)};
	b.o.once = false;
	GThread *t = g_thread_new("watch", run_bg, &b);
	/* Three settle periods with a writer that stalls: it must not be taken. */
	g_usleep(600000);
	g_assert_false(exists(dir, "processed", "slow.pdf") || exists(dir, "failed", "slow.pdf"));
	g_assert_true(exists(dir, NULL, "slow.pdf"));
	g_assert_cmpint(write(fd, data + len / 2, len - len / 2), ==, (ssize_t)(len - len / 2));
	close(fd);
	g_assert_true(wait_for(dir, "processed", "slow.pdf", 5000));
	b.stop = 1;
	g_thread_join(t);
	db_close(b.db);
	g_assert_cmpint(b.e, ==, QERR_OK);
	g_assert_cmpint(b.st.ingested, ==, 1);
	g_assert_cmpint(b.st.failed, ==, 0);
}

/* A crash after the commit and before the move leaves the file behind: no second document. */
static void test_crash_after_commit(void)
{
	g_autofree char *dir = g_dir_make_tmp("quire-watch-XXXXXX", NULL);
	drop(dir, "c.pdf", "W-C-1");
	g_autofree char *path = g_build_filename(dir, "c.pdf", NULL);
	g_autofree char *data = NULL;
	gsize len = 0;
	g_assert_true(g_file_get_contents(path, &data, &len, NULL));
	struct store_submitted s;
	g_autofree char *err = NULL;
	QT_OK(store_submit(db, vault, "c.pdf", data, len, "test:watch", 3, &s, &err), err);
	int64_t before = count("SELECT count(*) FROM documents");
	struct watch_options o = options(dir);
	struct watch_stats st;
	volatile int stop = 0;
	QT_OK(watch_run(db, vault, &o, &stop, &st, &err), err);
	g_assert_cmpint(st.ingested, ==, 0);
	g_assert_cmpint(st.duplicates, ==, 1);
	g_assert_true(exists(dir, "processed", "c.pdf"));
	g_assert_cmpint(count("SELECT count(*) FROM documents"), ==, before);
}

static G_NORETURN void child_watch(const char *dir)
{
	struct watch_options o = options(dir);
	o.once = false;
	o.settle_ms = 40;
	volatile int stop = 0;
	g_autofree char *err = NULL;
	_exit(watch_run(pgtest_connect(), vault, &o, &stop, NULL, &err) == QERR_OK ? 0 : 1);
}

#define KILL_FILES 40

/* Files keep arriving while watcher processes are killed with SIGKILL at random moments. */
static void test_kill9_exactly_once(void)
{
	g_autofree char *dir = g_dir_make_tmp("quire-watch-XXXXXX", NULL);
	int64_t docs_before = count("SELECT count(*) FROM documents");
	int64_t audit_before = count("SELECT count(*) FROM audit_log WHERE action = 'document.submitted'");
	GRand *rnd = g_rand_new_with_seed(20260322);
	int dropped = 0, kills = 0, in_window = 0;
	g_autofree char *processed = g_build_filename(dir, "processed", NULL);
	while (dropped < KILL_FILES || kills < 30) {
		pid_t pid = fork();
		g_assert_cmpint(pid, >=, 0);
		if (pid == 0)
			child_watch(dir);
		for (int i = 0; i < 2 && dropped < KILL_FILES; i++, dropped++) {
			g_autofree char *name = g_strdup_printf("k%02d.pdf", dropped);
			g_autofree char *num = g_strdup_printf("W-K-%02d", dropped);
			drop(dir, name, num);
		}
		g_usleep((gulong)g_rand_int_range(rnd, 2000, 60000));
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		kills++;
		/* Killed between a commit and its move: more documents than moved files. */
		int moved = 0;
		g_autoptr(GDir) d = g_dir_open(processed, 0, NULL);
		while (d && g_dir_read_name(d))
			moved++;
		in_window += count("SELECT count(*) FROM documents") - docs_before > moved;
	}
	g_rand_free(rnd);
	/* A last, undisturbed run takes whatever the killed ones left. */
	struct watch_options o = options(dir);
	struct watch_stats st;
	volatile int stop = 0;
	g_autofree char *err = NULL;
	QT_OK(watch_run(db, vault, &o, &stop, &st, &err), err);
	for (int i = 0; i < KILL_FILES; i++) {
		g_autofree char *name = g_strdup_printf("k%02d.pdf", i);
		g_assert_true(exists(dir, "processed", name));
		g_assert_false(exists(dir, NULL, name));
		g_autofree char *again = g_strdup_printf("k%02d.1.pdf", i);
		g_assert_false(exists(dir, "processed", again));
	}
	g_assert_cmpint(count("SELECT count(*) FROM documents"), ==, docs_before + KILL_FILES);
	g_assert_cmpint(count("SELECT count(*) FROM audit_log WHERE action = 'document.submitted'"), ==,
	                audit_before + KILL_FILES);
	g_test_message("%d kills; after %d of them a committed file was still waiting to be moved", kills, in_window);
}

/* After the runs above: the figures agree with the tables, and every sample line is well formed. */
static void test_metrics(void)
{
	volatile int stop = 0;
	struct worker_options wo = {.name = "test", .lease_s = 60, .drain = true,
	                            .extract = {.limits = {.timeout_s = 60, .memory_bytes = 1u << 30, .max_pages = 50}}};
	g_autofree char *err = NULL;
	QT_OK(worker_run(db, vault, &wo, &stop, NULL, &err), err);
	g_autofree char *text = NULL;
	QT_OK(metrics_format(db, &text, &err), err);
	g_autofree char *done = g_strdup_printf("\nquire_jobs{state=\"done\"} %lld\n",
	                                        (long long)count("SELECT count(*) FROM jobs WHERE state = 'done'"));
	g_assert_nonnull(strstr(text, "\nquire_db_up 1\n"));
	g_assert_nonnull(strstr(text, done));
	g_assert_nonnull(strstr(text, "\nquire_jobs{state=\"queued\"} 0\n"));
	g_assert_nonnull(strstr(text, "\nquire_job_duration_seconds{quantile=\"0.9\"} "));
	g_autofree char *pages = g_strdup_printf(
		"\nquire_pages_processed_total %lld\n",
		(long long)count("SELECT coalesce(sum(page_count), 0) FROM documents WHERE state = 'processed'"));
	g_assert_nonnull(strstr(text, pages));
	g_assert_nonnull(strstr(text, "\nquire_watch_rejected_total 1\n"));
	g_assert_nonnull(strstr(text, "# TYPE quire_job_failures_total counter\n"));
	if (g_getenv("QUIRE_TEST_SHOW_METRICS"))
		g_test_message("%s", text);
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
	for (int i = 0; lines[i] && lines[i][0]; i++)
		if (lines[i][0] != '#' &&
		    !g_regex_match_simple("^quire_[a-z_]+(\\{[a-z]+=\"[^\"]*\"\\})? (NaN|-?[0-9.]+(e[-+]?[0-9]+)?)$",
		                          lines[i], 0, 0))
			g_error("malformed sample line: %s", lines[i]);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	db = pgtest_start();
	vault = pgtest_vault(NULL);
	g_test_add_func("/watch/takes-complete-files", test_takes_complete_files);
	g_test_add_func("/watch/waits-for-writer", test_waits_for_writer);
	g_test_add_func("/watch/crash-after-commit", test_crash_after_commit);
	g_test_add_func("/watch/kill9-exactly-once", test_kill9_exactly_once);
	g_test_add_func("/metrics/format", test_metrics);
	int rc = g_test_run();
	db_close(db);
	pgtest_stop();
	return rc;
}
