/* test_queue_util: throwaway PostgreSQL, PDFs and worker processes for the queue tests. */
#include "tests/integration/test_queue_util.h"

#include "tests/integration/pgtest.h"

#include <cairo-pdf.h>
#include <fcntl.h>
#include <glib.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "appliance/app.h"
#include "appliance/pgembed.h"
#include "core/db.h"
#include "core/migrate.h"
#include "core/vault.h"
#include "pipeline/store.h"

static struct pgembed *pg;

static void must(enum qerr e, const char *what, const char *err)
{
	if (e != QERR_OK)
		g_error("%s: %s", what, err ? err : qerr_str(e));
}

void qt_pg_up(struct qt *t)
{
	g_autofree char *err = NULL;
	must(pgembed_start(t->pgdir, "postgres", &pg, &err), "start PostgreSQL", err);
	g_free(t->conninfo);
	t->conninfo = g_strdup(pgembed_conninfo(pg));
}

void qt_pg_down(struct qt *t)
{
	(void)t;
	pgembed_stop(pg);
	pg = NULL;
}

struct db *qt_connect(const struct qt *t)
{
	struct db *db = NULL;
	g_autofree char *err = NULL;
	must(db_connect(t->conninfo, &db, &err), "connect", err);
	return db;
}

void qt_start(struct qt *t)
{
	memset(t, 0, sizeof *t);
	t->dir = g_dir_make_tmp("quire-qt-XXXXXX", NULL);
	g_assert_nonnull(t->dir);
	chmod(t->dir, 0711); /* the server runs as another account when the tests run as root */
	pgtest_watchdog(t->dir);
	t->pgdir = g_build_filename(t->dir, "data", NULL);
	t->key = g_build_filename(t->dir, "kek.key", NULL);
	qt_pg_up(t);
	t->db = qt_connect(t);
	int n = 0;
	const struct migration *list = app_migrations(&n);
	g_autofree char *err = NULL;
	must(migrate_apply(t->db, list, n, NULL, &err), "migrations", err);
	must(vault_keyfile_create(t->key, &err), "key file", err);
	must(vault_open(t->key, &t->vault, &err), "vault", err);
}

void qt_stop(struct qt *t)
{
	vault_close(t->vault);
	db_close(t->db);
	qt_pg_down(t);
	g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", t->dir);
	g_assert_cmpint(system(cmd), ==, 0);
	g_free(t->dir);
	g_free(t->pgdir);
	g_free(t->conninfo);
	g_free(t->key);
}

static cairo_status_t to_bytes(void *closure, const unsigned char *data, unsigned int len)
{
	g_byte_array_append(closure, data, len);
	return CAIRO_STATUS_SUCCESS;
}

char *qt_invoice(const char *number, int pages, size_t *ret_len)
{
	GByteArray *out = g_byte_array_new();
	cairo_surface_t *s = cairo_pdf_surface_create_for_stream(to_bytes, out, 595, 842);
	cairo_t *cr = cairo_create(s);
	cairo_set_font_size(cr, 11);
	g_autofree char *num = g_strdup_printf("Invoice number: %s", number);
	const char *lines[] = {"Fabrikam Records Ltd", num, "Invoice date: 2026-02-01", "Total: 42.00 EUR"};
	for (int p = 0; p < pages; p++) {
		for (size_t i = 0; i < G_N_ELEMENTS(lines); i++) {
			cairo_move_to(cr, 50, 60 + 16 * (double)i);
			cairo_show_text(cr, p == 0 ? lines[i] : "Continued: terms and conditions of delivery");
		}
		cairo_show_page(cr);
	}
	cairo_destroy(cr);
	cairo_surface_destroy(s);
	*ret_len = out->len;
	return (char *)g_byte_array_free(out, FALSE);
}

static int64_t submit_bytes(struct qt *t, const char *data, size_t len, int priority, int64_t *ret_doc)
{
	struct store_submit_options o = {.job = {.priority = priority, .max_attempts = 3}};
	struct store_submitted s;
	g_autofree char *err = NULL;
	must(store_submit_with(t->db, t->vault, "inv.pdf", data, len, "test", &o, &s, &err), "submit", err);
	g_assert_false(s.existing);
	if (ret_doc)
		*ret_doc = s.doc_id;
	return s.job_id;
}

int64_t qt_submit(struct qt *t, const char *number, int pages, int priority, int64_t *ret_doc)
{
	size_t len = 0;
	g_autofree char *pdf = qt_invoice(number, pages, &len);
	return submit_bytes(t, pdf, len, priority, ret_doc);
}

int64_t qt_submit_damaged(struct qt *t, int n)
{
	g_autofree char *bad = g_strdup_printf("%%PDF-1.4\n%% damaged on purpose, number %d\n", n);
	return submit_bytes(t, bad, strlen(bad), 0, NULL);
}

static struct db_res *query_v(struct db *db, const char *fmt, va_list ap)
{
	g_autofree char *sql = g_strdup_vprintf(fmt, ap);
	struct db_res *res = NULL;
	g_autofree char *err = NULL;
	must(db_query(db, sql, 0, NULL, &res, &err), sql, err);
	return res;
}

int64_t qt_int(struct db *db, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	struct db_res *res = query_v(db, fmt, ap);
	va_end(ap);
	g_assert_cmpint(db_res_rows(res), >=, 1);
	int64_t v = db_res_int(res, 0, 0);
	db_res_free(res);
	return v;
}

char *qt_text(struct db *db, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	struct db_res *res = query_v(db, fmt, ap);
	va_end(ap);
	char *v = g_strdup(db_res_rows(res) ? db_res_text(res, 0, 0) : "");
	db_res_free(res);
	return v;
}

void qt_exec(struct db *db, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	db_res_free(query_v(db, fmt, ap));
	va_end(ap);
}

/* Starts quire with args (args[0] is the subcommand) and the test's settings; stdout and stderr
 * go to <dir>/<prefix>-<pid>.log. */
static pid_t spawn_quire(struct qt *t, int lease_s, const char *prefix, GPtrArray *args)
{
	const char *build = g_getenv("QUIRE_BUILD_DIR");
	g_assert_nonnull(build);
	g_autofree char *quire = g_build_filename(build, "appliance", "quire", NULL);
	g_ptr_array_insert(args, 0, quire);
	g_ptr_array_add(args, NULL);
	g_autofree char *lease = g_strdup_printf("%d", lease_s);
	fflush(NULL);
	pid_t pid = fork();
	g_assert_cmpint(pid, >=, 0);
	if (pid == 0) {
		/* a test that fails mid-way leaves no worker behind (SIGKILL reaches a frozen one too) */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		g_autofree char *log = g_strdup_printf("%s/%s-%d.log", t->dir, prefix, (int)getpid());
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		setenv("QUIRE_CONFIG", "/dev/null", 1);
		setenv("QUIRE_DATABASE_URL", t->conninfo, 1);
		setenv("QUIRE_VAULT_KEY_FILE", t->key, 1);
		setenv("QUIRE_GENERAL_DATA_DIR", t->dir, 1);
		setenv("QUIRE_WORKER_LEASE_S", lease, 1);
		setenv("QUIRE_WORKER_POLL_MS", "1000", 1);
		setenv("QUIRE_WORKER_GRACE_S", "5", 0); /* a test may set its own */
		execv(quire, (char **)args->pdata);
		_exit(127);
	}
	g_ptr_array_free(args, TRUE);
	return pid;
}

pid_t qt_worker(struct qt *t, int lease_s, ...)
{
	GPtrArray *args = g_ptr_array_new();
	g_ptr_array_add(args, "worker");
	va_list ap;
	va_start(ap, lease_s);
	for (const char *a; (a = va_arg(ap, const char *));)
		g_ptr_array_add(args, (char *)a);
	va_end(ap);
	return spawn_quire(t, lease_s, "worker", args);
}

char *qt_quire(struct qt *t, int *ret_status, ...)
{
	GPtrArray *args = g_ptr_array_new();
	va_list ap;
	va_start(ap, ret_status);
	for (const char *a; (a = va_arg(ap, const char *));)
		g_ptr_array_add(args, (char *)a);
	va_end(ap);
	pid_t pid = spawn_quire(t, 30, "cli", args);
	*ret_status = qt_wait(pid, 300);
	g_autofree char *log = g_strdup_printf("%s/cli-%d.log", t->dir, (int)pid);
	char *text = NULL;
	if (!g_file_get_contents(log, &text, NULL, NULL))
		text = g_strdup("");
	return text;
}

/* The bounds the tests give only stop a hang: a machine loaded by other work (or by a
 * sanitizer build) may take several times as long as a quiet one, and a test must not fail
 * for that; what it waits for is the condition. */
enum { QT_HANG_FACTOR = 3 };

int qt_wait(pid_t pid, int timeout_s)
{
	gint64 end = g_get_monotonic_time() + (gint64)timeout_s * QT_HANG_FACTOR * G_USEC_PER_SEC;
	while (g_get_monotonic_time() < end) {
		int status = 0;
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		g_usleep(20000);
	}
	return -1;
}

bool qt_until(struct db *db, int64_t want, int timeout_s, const char *sql)
{
	gint64 end = g_get_monotonic_time() + (gint64)timeout_s * QT_HANG_FACTOR * G_USEC_PER_SEC;
	while (g_get_monotonic_time() < end) {
		struct db_res *res = NULL;
		if (db_query(db, sql, 0, NULL, &res, NULL) == QERR_OK) {
			int64_t v = db_res_rows(res) ? db_res_int(res, 0, 0) : -1;
			db_res_free(res);
			if (v >= want)
				return true;
		}
		g_usleep(20000);
	}
	return false;
}
