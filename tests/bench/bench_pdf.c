/* bench_pdf: PDF text extraction and OCR speed against Poppler's and
 * Tesseract's own command-line tools, on the same files in the same run.
 *
 *   bench_pdf [--docs N] [--pages N] [--ocr-pages N] [--jobs N] [--ocr-only] [--dir DIR]...
 *
 * Per file: every PDF under /usr/share/doc and each --dir (real-world files
 * of whatever kind the machine has), plus generated ones (dense text, a table,
 * many small pages), each read one process per file by `quire extract --text
 * FILE` and by `pdftotext FILE OUT` (reading order, as Quire reads: no
 * -layout), and through the worker's path in this process (sandbox_extract
 * with a parser started ahead and waiting, as a worker has when a document
 * comes); best of 3 wall times
 * per file, the ratio pdftotext/quire per file (>= 1.0: quire as fast or
 * faster) and its geometric mean, and every file pdftotext reads within a
 * second that takes quire more than 10 times as long.
 *
 * Text, in bulk: N documents of dense text pages, each extracted by quire's
 * sandbox (a pre-started parser: Poppler, words and boxes, the reply frames,
 * the worker's parse) and by `pdftotext FILE OUT`, one document at a time;
 * pages/s of each and the ratio. OCR: single-page scans (letter, 300 dpi, one 8-bit grey
 * picture filling the page, as a scanner writes it), read by quire's
 * sandbox (render with Poppler, Tesseract C API) and by `tesseract IMG OUT` on
 * the same pages rendered by `pdftoppm -r 300 -gray`, both run the fastest way
 * on this machine: one OpenMP thread per process (OMP_THREAD_LIMIT=1 for the
 * command), --jobs pages at once (default: the number of cores); pages/min of
 * each and the ratio; the reference is the faster of the command with one
 * OpenMP thread (--jobs at once) and with its default threads (one page at a
 * time). For comparison only, the command with GLIBC_TUNABLES=glibc.malloc.hugetlb=1
 * too: the C library's malloc on huge pages, the advice Quire's parser gives its
 * own memory for OCR (extractors/hugemem.h). Names the processor. Prints
 * figures only; it asserts nothing about speed. */
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "extractors/pdftext.h"
#include "extractors/sandbox.h"
#include "tests/bench/bench_machine.h"
#include "tests/unit/test_pdf_fixtures.h"

static const char *const words[] = {"invoice", "total",   "amount",  "supplier",  "delivery", "quantity", "price",
                                    "service", "payment", "account", "reference", "order",    "number",   "date",
                                    "address", "street",  "Hamburg", "London",    "EUR",      "1,234.51", "2026-03-14"};

static void draw_dense(cairo_t *cr, int page, void *data)
{
	guint32 seed = GPOINTER_TO_UINT(data) * 7919u + (guint32)page;
	for (int l = 0; l < 60; l++) {
		GString *line = g_string_new(NULL);
		for (int w = 0; w < 11; w++) {
			seed = seed * 1103515245u + 12345u;
			g_string_append_printf(line, "%s%s", w ? " " : "", words[(seed >> 16) % G_N_ELEMENTS(words)]);
		}
		fixture_text(cr, 40, 40 + 12.0 * l, 8.5, line->str);
		g_string_free(line, TRUE);
	}
}

static void draw_scan(cairo_t *cr, int page, void *data)
{
	const char *lines[25];
	char store[24][160];
	guint32 seed = GPOINTER_TO_UINT(data) * 31u + 7u;
	for (int l = 0; l < 24; l++) {
		GString *s = g_string_new(NULL);
		for (int w = 0; w < 6; w++) {
			seed = seed * 1103515245u + 12345u;
			g_string_append_printf(s, "%s%s", w ? " " : "", words[(seed >> 16) % G_N_ELEMENTS(words)]);
		}
		g_strlcpy(store[l], s->str, sizeof store[l]);
		g_string_free(s, TRUE);
		lines[l] = store[l];
	}
	lines[24] = NULL;
	fixture_scan(cr, 612, 792, lines);
}

static char *write_file(const char *dir, const char *name, GBytes *b)
{
	char *path = g_build_filename(dir, name, NULL);
	gsize len = 0;
	const char *d = g_bytes_get_data(b, &len);
	if (!g_file_set_contents(path, d, (gssize)len, NULL))
		g_error("cannot write %s", path);
	return path;
}

static double now(void)
{
	return (double)g_get_monotonic_time() / 1e6;
}

/* omp_limit: OMP_THREAD_LIMIT for the command; glibc_tunables: GLIBC_TUNABLES (NULL: as this process has them) */
static void run_command(char **argv, const char *omp_limit, const char *glibc_tunables)
{
	g_auto(GStrv) env = g_get_environ();
	if (omp_limit)
		env = g_environ_setenv(env, "OMP_THREAD_LIMIT", omp_limit, TRUE);
	if (glibc_tunables)
		env = g_environ_setenv(env, "GLIBC_TUNABLES", glibc_tunables, TRUE);
	int status = 0;
	g_autoptr(GError) err = NULL;
	if (!g_spawn_sync(NULL, argv, env,
	                  G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL,
	                  NULL, NULL, &status, &err) ||
	    !g_spawn_check_wait_status(status, NULL))
		g_error("%s failed: %s", argv[0], err ? err->message : "exit status");
}

static struct sandbox_limits bench_limits(void)
{
	return (struct sandbox_limits){.timeout_s = 600, .memory_bytes = (size_t)2048 << 20, .max_pages = 2000};
}

static void extract_file(const char *path, int want_pages, const char *want_method)
{
	gchar *data = NULL;
	gsize len = 0;
	if (!g_file_get_contents(path, &data, &len, NULL))
		g_error("cannot read %s", path);
	struct sandbox_limits lim = bench_limits();
	struct pdftext_doc *doc = NULL;
	g_autofree char *err = NULL;
	if (sandbox_extract(data, len, NULL, &lim, &doc, &err))
		g_error("%s: %s", path, err);
	if (doc->n_pages != want_pages || strcmp(doc->pages[0].method, want_method) != 0 || !doc->pages[0].text[0])
		g_error("%s: unexpected result (%d pages, method %s)", path, doc->n_pages, doc->pages[0].method);
	pdftext_doc_free(doc);
	g_free(data);
}

static void bench_text(const char *dir, int docs, int pages)
{
	char **paths = g_new0(char *, docs + 1);
	for (int i = 0; i < docs; i++) {
		g_autoptr(GBytes) pdf = fixture_cairo(pages, 612, 792, "Bench", NULL, draw_dense, GINT_TO_POINTER(i));
		g_autofree char *name = g_strdup_printf("text-%03d.pdf", i);
		paths[i] = write_file(dir, name, pdf);
	}
	g_autofree char *out = g_build_filename(dir, "out.txt", NULL);
	/* one warm-up of each, so that neither pays for a cold page cache or font set-up */
	extract_file(paths[0], pages, "text");
	char *warm[] = {"pdftotext", paths[0], out, NULL};
	run_command(warm, NULL, NULL);
	double best_q = 1e9, best_p = 1e9;
	for (int round = 0; round < 5; round++) {
		double t0 = now();
		for (int i = 0; i < docs; i++)
			extract_file(paths[i], pages, "text");
		double t1 = now();
		for (int i = 0; i < docs; i++) {
			char *argv[] = {"pdftotext", paths[i], out, NULL};
			run_command(argv, NULL, NULL);
		}
		double t2 = now();
		best_q = MIN(best_q, t1 - t0);
		best_p = MIN(best_p, t2 - t1);
	}
	double n = (double)docs * pages;
	printf("text extraction, %d documents x %d pages, one document at a time (best of 5 rounds)\n", docs, pages);
	printf("  quire (sandbox, words and boxes)  %8.1f pages/s\n", n / best_q);
	printf("  pdftotext (reference)             %8.1f pages/s\n", n / best_p);
	printf("  ratio quire/pdftotext             %8.2f  (target >= 1.00)\n", (n / best_q) / (n / best_p));
	for (int i = 0; i < docs; i++)
		g_unlink(paths[i]);
	g_strfreev(paths);
}

/* ---- per file, real-world and generated ---- */

static double run_timed(char **argv)
{
	double t0 = now();
	int status = 0;
	if (!g_spawn_sync(NULL, argv, NULL,
	                  G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL,
	                  NULL, NULL, &status, NULL) ||
	    !g_spawn_check_wait_status(status, NULL))
		return -1;
	return now() - t0;
}

/* Whether process pid has confined itself (seccomp on) and waits (sleeping). */
static bool parser_waiting(const char *pid)
{
	g_autofree char *path = g_strdup_printf("/proc/%s/status", pid);
	g_autofree char *st = NULL;
	if (!g_file_get_contents(path, &st, NULL, NULL))
		return true; /* gone: nothing to wait for */
	return strstr(st, "\nSeccomp:\t2") && strstr(st, "\nState:\tS");
}

/* Waits (at most 10 s) until the parsers the launcher keeps are started and
 * waiting, as a worker's are when a document comes: the per-file figure of
 * the worker's path is then the document's own, not the start of the parser
 * that replaced the previous one. */
static void wait_pool_ready(void)
{
	int launcher = sandbox_launcher_pid();
	g_autofree char *kids_path = g_strdup_printf("/proc/%d/task/%d/children", launcher, launcher);
	for (int tries = 0; launcher > 0 && tries < 5000; tries++) {
		g_autofree char *kids = NULL;
		if (!g_file_get_contents(kids_path, &kids, NULL, NULL))
			return;
		g_auto(GStrv) pids = g_strsplit(g_strstrip(kids), " ", -1);
		bool ready = pids[0] && pids[0][0];
		for (int i = 0; ready && pids[i]; i++)
			ready = !pids[i][0] || parser_waiting(pids[i]);
		if (ready)
			return;
		g_usleep(2000);
	}
}

static double worker_timed(const char *path)
{
	wait_pool_ready();
	gchar *data = NULL;
	gsize len = 0;
	if (!g_file_get_contents(path, &data, &len, NULL))
		return -1;
	struct sandbox_limits lim = bench_limits();
	struct pdftext_doc *doc = NULL;
	double t0 = now();
	enum qerr e = sandbox_extract(data, len, NULL, &lim, &doc, NULL);
	double t = now() - t0;
	pdftext_doc_free(doc);
	g_free(data);
	return e ? -1 : t;
}

static void find_pdfs(const char *dir, GPtrArray *out, int depth)
{
	g_autoptr(GDir) d = depth < 8 ? g_dir_open(dir, 0, NULL) : NULL;
	const char *name;
	while (d && (name = g_dir_read_name(d)) && out->len < 400) {
		g_autofree char *path = g_build_filename(dir, name, NULL);
		if (g_file_test(path, G_FILE_TEST_IS_SYMLINK))
			continue;
		if (g_file_test(path, G_FILE_TEST_IS_DIR))
			find_pdfs(path, out, depth + 1);
		else if (g_str_has_suffix(name, ".pdf") || g_str_has_suffix(name, ".PDF"))
			g_ptr_array_add(out, g_steal_pointer(&path));
	}
}

static void draw_table(cairo_t *cr, int page, void *data)
{
	for (int r = 0; r < 50; r++)
		for (int c = 0; c < 6; c++) {
			char cell[32];
			g_snprintf(cell, sizeof cell, c == 0 ? "item %d-%d" : "%d.%02d", r + 1, (r * 7 + c * 13) % 100);
			fixture_text(cr, 40 + c * 90, 40 + r * 14.5, 8, cell);
		}
}

static void generated(const char *dir, GPtrArray *out)
{
	g_autoptr(GBytes) a = fixture_cairo(3, 612, 792, "Bench", NULL, draw_dense, GINT_TO_POINTER(99));
	g_autoptr(GBytes) b = fixture_cairo(4, 595, 842, "Table", NULL, draw_table, NULL);
	g_autoptr(GBytes) c = fixture_cairo(40, 300, 200, "Small", NULL, draw_dense, GINT_TO_POINTER(7));
	g_ptr_array_add(out, write_file(dir, "gen-dense.pdf", a));
	g_ptr_array_add(out, write_file(dir, "gen-table.pdf", b));
	g_ptr_array_add(out, write_file(dir, "gen-40-small-pages.pdf", c));
}

static double best3(double (*f)(void *), void *arg)
{
	double best = 1e9;
	for (int i = 0; i < 3; i++) {
		double t = f(arg);
		if (t < 0)
			return -1;
		best = MIN(best, t);
	}
	return best;
}

static double quire_once(void *path)
{
	char *argv[] = {(char *)QUIRE_BENCH_QUIRE, (char *)"extract", (char *)"--text", path, NULL};
	return run_timed(argv);
}

static const char *pdftotext_out;

static double pdftotext_once(void *path)
{
	char *argv[] = {(char *)"pdftotext", path, (char *)pdftotext_out, NULL};
	return run_timed(argv);
}

static double worker_once(void *path)
{
	return worker_timed(path);
}

static void bench_files(const char *dir, char **extra_dirs)
{
	g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(g_free);
	find_pdfs("/usr/share/doc", files, 0);
	for (int i = 0; extra_dirs && extra_dirs[i]; i++)
		find_pdfs(extra_dirs[i], files, 0);
	size_t real = files->len;
	generated(dir, files);
	g_autofree char *out = g_build_filename(dir, "out.txt", NULL);
	pdftotext_out = out;
	printf("per file: %zu real-world PDFs (/usr/share/doc%s) and %u generated; best of 3 wall times\n", real,
	       extra_dirs ? " and --dir" : "", files->len - (guint)real);
	printf("  %-36s %9s %9s %9s %7s %7s\n", "file", "pdftotext", "extract", "worker", "x(cli)", "x(wrk)");
	double log_cli = 0, log_wrk = 0;
	int n = 0, slow = 0, failed = 0;
	for (guint i = 0; i < files->len; i++) {
		char *path = files->pdata[i];
		double tp = best3(pdftotext_once, path);
		if (tp < 0)
			continue; /* pdftotext does not read it either */
		double tq = best3(quire_once, path), tw = best3(worker_once, path);
		g_autofree char *base = g_path_get_basename(path);
		if (tq < 0 || tw < 0) {
			printf("  %-36.36s %9.3f   FAILED (pdftotext reads it)\n", base, tp);
			failed++;
			continue;
		}
		printf("  %-36.36s %9.3f %9.3f %9.3f %7.2f %7.2f%s\n", base, tp, tq, tw, tp / tq, tp / tw,
		       tp < 1 && tq > 10 * tp ? "  > 10x slower" : "");
		slow += tp < 1 && tq > 10 * tp;
		log_cli += log(tp / tq);
		log_wrk += log(tp / tw);
		n++;
	}
	if (n)
		printf("  text ratio pdftotext/quire, geometric mean over %d files: quire extract %.2f, worker %.2f "
		       "(target >= 1.00)\n",
		       n, exp(log_cli / n), exp(log_wrk / n));
	printf(
	    "  files pdftotext reads that quire does not: %d; read within 1 s by pdftotext but > 10x slower in quire: "
	    "%d\n",
	    failed, slow);
	for (guint i = (guint)real; i < files->len; i++)
		g_unlink(files->pdata[i]);
	g_unlink(out);
}

struct pool {
	char **items;
	int n;
	gint next;
	bool ocr_cli;     /* items are PNG images for the command, else PDFs for quire */
	bool omp_default; /* the command with Tesseract's default threads */
	bool huge_pages;  /* the command with the C library's malloc on huge pages */
	const char *dir;
};

static gpointer pool_worker(gpointer data)
{
	struct pool *p = data;
	for (int i; (i = g_atomic_int_add(&p->next, 1)) < p->n;) {
		if (p->ocr_cli) {
			g_autofree char *base = g_strdup_printf("%s/ocr-out-%d", p->dir, i);
			char *argv[] = {"tesseract", p->items[i], base, NULL};
			run_command(argv, p->omp_default ? NULL : "1", p->huge_pages ? "glibc.malloc.hugetlb=1" : NULL);
		} else {
			extract_file(p->items[i], 1, "ocr");
		}
	}
	return NULL;
}

static double run_pool(struct pool *p, int jobs)
{
	p->next = 0;
	GThread **t = g_new(GThread *, jobs);
	double t0 = now();
	for (int j = 0; j < jobs; j++)
		t[j] = g_thread_new("bench", pool_worker, p);
	for (int j = 0; j < jobs; j++)
		g_thread_join(t[j]);
	g_free(t);
	return now() - t0;
}

static void bench_ocr(const char *dir, int n, int jobs)
{
	char **pdfs = g_new0(char *, n + 1), **pngs = g_new0(char *, n + 1);
	for (int i = 0; i < n; i++) {
		g_autoptr(GBytes) pdf = fixture_cairo(1, 612, 792, NULL, NULL, draw_scan, GINT_TO_POINTER(i));
		g_autofree char *name = g_strdup_printf("scan-%03d.pdf", i);
		pdfs[i] = write_file(dir, name, pdf);
		g_autofree char *prefix = g_strdup_printf("%s/scan-%03d", dir, i);
		char *argv[] = {"pdftoppm", "-r", "300", "-gray", "-png", "-singlefile", pdfs[i], prefix, NULL};
		run_command(argv, NULL, NULL);
		pngs[i] = g_strdup_printf("%s.png", prefix);
	}
	struct pool q = {.items = pdfs, .n = n, .dir = dir}, c = {.items = pngs, .n = n, .ocr_cli = true, .dir = dir};
	/* rounds alternate between the two, so a change in the machine's load
	 * falls on both; the best round of each counts */
	double tq = 1e9, tc = 1e9, tc_threads = 1e9, tc_huge = 1e9;
	for (int round = 0; round < 3; round++) {
		tq = MIN(tq, run_pool(&q, jobs));
		tc = MIN(tc, run_pool(&c, jobs));
		c.omp_default = true; /* the command with its own threads, one page at a time */
		tc_threads = MIN(tc_threads, run_pool(&c, 1));
		c.omp_default = false;
		c.huge_pages = true; /* for comparison: the memory advice Quire's parser gives itself */
		tc_huge = MIN(tc_huge, run_pool(&c, jobs));
		c.huge_pages = false;
	}
	printf("OCR, %d scanned letter pages at 300 dpi, %d at once, one thread each (best of 3 alternating rounds)\n",
	       n, jobs);
	printf("  quire (sandbox, render + Tesseract C API)    %7.1f pages/min\n", n * 60.0 / tq);
	printf("  tesseract command, OMP_THREAD_LIMIT=1        %7.1f pages/min\n", n * 60.0 / tc);
	printf("  tesseract command, its own threads, 1 at once %6.1f pages/min\n", n * 60.0 / tc_threads);
	printf("  OCR ratio quire/best tesseract command line  %7.2f  (target >= 1.20)\n", MIN(tc, tc_threads) / tq);
	printf("  for comparison, the command with GLIBC_TUNABLES=glibc.malloc.hugetlb=1 (huge pages, as quire's\n"
	       "  parser advises for OCR; no tesseract option): %.1f pages/min, ratio quire/it %.2f\n",
	       n * 60.0 / tc_huge, tc_huge / tq);
	for (int i = 0; i < n; i++) {
		g_unlink(pdfs[i]);
		g_unlink(pngs[i]);
		g_autofree char *txt = g_strdup_printf("%s/ocr-out-%d.txt", dir, i);
		g_unlink(txt);
	}
	g_strfreev(pdfs);
	g_strfreev(pngs);
}

int main(int argc, char **argv)
{
	int docs = 20, pages = 10, ocr_pages = 8, jobs = (int)g_get_num_processors();
	g_auto(GStrv) dirs = NULL;
	gboolean ocr_only = FALSE;
	GOptionEntry entries[] = {
	    {"dir", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &dirs, "Another folder of real-world PDFs (repeatable)", "DIR"},
	    {"docs", 0, 0, G_OPTION_ARG_INT, &docs, "Text documents", "N"},
	    {"pages", 0, 0, G_OPTION_ARG_INT, &pages, "Pages per text document", "N"},
	    {"ocr-pages", 0, 0, G_OPTION_ARG_INT, &ocr_pages, "Scanned pages (0: no OCR part)", "N"},
	    {"jobs", 0, 0, G_OPTION_ARG_INT, &jobs, "Pages OCRed at once", "N"},
	    {"ocr-only", 0, 0, G_OPTION_ARG_NONE, &ocr_only, "Only the OCR part", NULL},
	    {NULL, 0, 0, 0, NULL, NULL, NULL}};
	g_autoptr(GOptionContext) ctx = g_option_context_new("- PDF text and OCR throughput");
	g_option_context_add_main_entries(ctx, entries, NULL);
	if (!g_option_context_parse(ctx, &argc, &argv, NULL) || docs < 1 || pages < 1 || jobs < 1 || ocr_pages < 0)
		return 2;
	g_autofree char *dir = g_dir_make_tmp("quire-bench-XXXXXX", NULL);
	if (!dir)
		return 1;
	/* the parser of this build tree, unless told otherwise */
	g_setenv("QUIRE_PARSER", QUIRE_BENCH_PARSER, FALSE);
	g_setenv("QUIRE_CONFIG", "/dev/null", FALSE);
	bench_print_machine();
	struct sandbox_limits lim = bench_limits();
	g_autofree char *err = NULL;
	if (sandbox_start(&lim, 1, &err))
		g_error("%s", err);
	if (!ocr_only) {
		bench_files(dir, dirs);
		bench_text(dir, docs, pages);
	}
	if (ocr_pages > 0)
		bench_ocr(dir, ocr_pages, jobs);
	g_rmdir(dir);
	return 0;
}
