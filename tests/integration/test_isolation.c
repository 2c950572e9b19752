/* The PDF parser's isolation, proved from outside: while a parser works on a
 * document (held on its second page by a test hook), every readable byte of
 * its memory is read through /proc/PID/mem and searched for the vault's keys
 * (the root key, every subkey, the audit signing secret key), with two
 * controls that make the search able to fail: the same search finds the keys
 * in this process, which holds the vault, and finds the document's own bytes
 * in the parser. A parser that makes a forbidden system call is killed and
 * reported as a hostile document; a parser cannot open a file outside the
 * data folders; and the launcher and its parsers end when their worker is
 * killed with SIGKILL. */
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sodium.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/vault.h"
#include "extractors/pdftext.h"
#include "extractors/sandbox.h"
#include "tests/unit/test_pdf_fixtures.h"

#define N_SECRETS 6

static struct vault *vault;
static char *dir, *key_path;
static uint8_t secrets[N_SECRETS][32];
static const char *const secret_names[N_SECRETS] = {"root key",     "keyring subkey", "hash subkey",
                                                    "token subkey", "signing seed",   "signing secret key (end)"};

/* The keys this process's vault holds, derived from its key file as the vault does. */
static void load_secrets(void)
{
	gsize n = 0;
	g_autofree char *root = NULL;
	g_assert_true(g_file_get_contents(key_path, &root, &n, NULL));
	g_assert_cmpuint(n, ==, 32);
	memcpy(secrets[0], root, 32);
	static const char ctx[crypto_kdf_CONTEXTBYTES] = {'q', 'u', 'i', 'r', 'e', 'k', 'e', 'k'};
	for (int id = 1; id <= 4; id++)
		crypto_kdf_derive_from_key(secrets[id], 32, (uint64_t)id, ctx, (const uint8_t *)root);
	uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
	crypto_sign_seed_keypair(pk, sk, secrets[4]);
	memcpy(secrets[5], sk + 32, 32); /* the secret key's second half; its first is the seed */
}

struct scan {
	bool found[N_SECRETS];
	bool found_marker;
	size_t bytes;
};

/* Reads every readable mapping of pid and looks for the secrets and marker. */
static bool scan_memory(pid_t pid, const void *marker, size_t marker_len, struct scan *s)
{
	g_autofree char *maps_path = g_strdup_printf("/proc/%d/maps", (int)pid);
	g_autofree char *mem_path = g_strdup_printf("/proc/%d/mem", (int)pid);
	g_autofree char *maps = NULL;
	if (!g_file_get_contents(maps_path, &maps, NULL, NULL))
		return false;
	int fd = open(mem_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	memset(s, 0, sizeof *s);
	g_auto(GStrv) lines = g_strsplit(maps, "\n", -1);
	for (int i = 0; lines[i] && lines[i][0]; i++) {
		unsigned long lo = 0, hi = 0;
		char perms[5] = {0};
		if (sscanf(lines[i], "%lx-%lx %4s", &lo, &hi, perms) != 3 || perms[0] != 'r' ||
		    strstr(lines[i], "[vvar"))
			continue;
		size_t len = hi - lo;
		if (len > ((size_t)1 << 31))
			continue;
		g_autofree uint8_t *buf = g_try_malloc(len);
		ssize_t got = buf ? pread(fd, buf, len, (off_t)lo) : -1;
		if (got <= 0)
			continue;
		s->bytes += (size_t)got;
		for (int k = 0; k < N_SECRETS; k++)
			s->found[k] |= memmem(buf, (size_t)got, secrets[k], 32) != NULL;
		s->found_marker |= marker && memmem(buf, (size_t)got, marker, marker_len) != NULL;
	}
	close(fd);
	return true;
}

/* Children of pid that still run (not zombies). */
static GArray *children_of(pid_t parent)
{
	GArray *kids = g_array_new(FALSE, FALSE, sizeof(pid_t));
	g_autoptr(GDir) d = g_dir_open("/proc", 0, NULL);
	const char *name;
	while (d && (name = g_dir_read_name(d))) {
		if (!g_ascii_isdigit(name[0]))
			continue;
		g_autofree char *path = g_strdup_printf("/proc/%s/stat", name);
		g_autofree char *stat = NULL;
		if (!g_file_get_contents(path, &stat, NULL, NULL))
			continue;
		const char *p = strrchr(stat, ')');
		char state = 0;
		int ppid = 0;
		if (p && sscanf(p + 1, " %c %d", &state, &ppid) == 2 && ppid == parent && state != 'Z') {
			pid_t pid = (pid_t)g_ascii_strtoll(name, NULL, 10);
			g_array_append_val(kids, pid);
		}
	}
	return kids;
}

static bool running(pid_t pid)
{
	g_autofree char *path = g_strdup_printf("/proc/%d/stat", (int)pid);
	g_autofree char *stat = NULL;
	if (!g_file_get_contents(path, &stat, NULL, NULL))
		return false;
	const char *p = strrchr(stat, ')');
	return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

static void draw_page(cairo_t *cr, int page, void *data)
{
	for (int line = 0; line < 30; line++) {
		g_autofree char *text =
		    g_strdup_printf("Isolation page %d line %d: 4711 %d EUR", page + 1, line, page * line);
		fixture_text(cr, 40, 60 + line * 22, 11, text);
	}
}

static GBytes *two_pages(void)
{
	static const char *const lines[] = {"INVOICE ISOLATION-4711", "Total 99.00 EUR", NULL};
	return fixture_simple(lines, NULL, NULL);
}

struct job {
	GBytes *pdf;
	struct sandbox_limits lim;
	enum qerr e;
	char *err;
};

static gpointer extract_thread(gpointer data)
{
	struct job *j = data;
	gsize len = 0;
	const void *p = g_bytes_get_data(j->pdf, &len);
	struct pdftext_doc *doc = NULL;
	j->e = sandbox_extract(p, len, NULL, &j->lim, &doc, &j->err);
	pdftext_doc_free(doc);
	return NULL;
}

static void test_parser_memory_holds_no_key(void)
{
	load_secrets();
	/* control 1: this process holds the vault, and the search finds its keys here */
	struct scan self;
	g_assert_true(scan_memory(getpid(), NULL, 0, &self));
	for (int k = 1; k < N_SECRETS; k++)
		if (!self.found[k])
			g_error("control failed: the %s is not found in the worker's own memory", secret_names[k]);

	struct job j = {.pdf = fixture_cairo(3, 595, 842, "isolation", NULL, draw_page, NULL),
	                .lim = {.timeout_s = 60,
	                        .memory_bytes = (size_t)1 << 30,
	                        .max_pages = 10,
	                        .test_fault = SANDBOX_FAULT_HANG,
	                        .test_fault_page = 2,
	                        .test_dumpable = true}};
	gsize len = 0;
	const uint8_t *pdf = g_bytes_get_data(j.pdf, &len);
	const uint8_t *marker = pdf + len / 2; /* compressed page content: only this document has it */
	GThread *th = g_thread_new("extract", extract_thread, &j);
	pid_t working = 0;
	struct scan s = {0};
	int scanned = 0;
	for (int tries = 0; tries < 1200 && !working; tries++) {
		pid_t launcher = (pid_t)sandbox_launcher_pid();
		g_autoptr(GArray) kids = launcher ? children_of(launcher) : g_array_new(FALSE, FALSE, sizeof(pid_t));
		for (guint i = 0; i < kids->len; i++) {
			pid_t pid = g_array_index(kids, pid_t, i);
			struct scan one;
			if (!scan_memory(pid, marker, 48, &one))
				continue;
			scanned++;
			for (int k = 0; k < N_SECRETS; k++)
				if (one.found[k])
					g_error("the %s is in the memory of parser %d", secret_names[k], (int)pid);
			if (one.found_marker) {
				working = pid;
				s = one;
			}
		}
		if (!working)
			g_usleep(50000);
	}
	/* control 2: the parser that works on the document holds its bytes, so the search reads it */
	g_assert_cmpint(working, >, 0);
	g_test_message("read %zu bytes of parser %d's memory (%d scans of parsers): no key", s.bytes, (int)working,
	               scanned);
	kill(working, SIGKILL);
	g_thread_join(th);
	g_assert_cmpint(j.e, ==, QERR_PARSE_FAILED);
	g_assert_nonnull(strstr(j.err, "on page 2"));
	g_free(j.err);
	g_bytes_unref(j.pdf);
}

static void test_forbidden_syscall_is_hostile(void)
{
	g_autoptr(GBytes) pdf = two_pages();
	struct job j = {.pdf = pdf,
	                .lim = {.timeout_s = 30,
	                        .memory_bytes = (size_t)1 << 30,
	                        .max_pages = 10,
	                        .test_fault = SANDBOX_FAULT_SYSCALL,
	                        .test_fault_page = 1}};
	extract_thread(&j);
	g_assert_cmpint(j.e, ==, QERR_PARSE_FAILED);
	g_assert_nonnull(strstr(j.err, "hostile PDF"));
	g_assert_nonnull(strstr(j.err, "outside its allow list on page 1"));
	g_free(j.err);
	/* a permanent failure: the worker does not try the document again */
	g_assert_cmpint(qerr_group(j.e), ==, QERR_GROUP_PERMANENT);
}

static void test_parser_cannot_open_files(void)
{
	g_autoptr(GBytes) pdf = two_pages();
	struct job j = {.pdf = pdf,
	                .lim = {.timeout_s = 30,
	                        .memory_bytes = (size_t)1 << 30,
	                        .max_pages = 10,
	                        .test_fault = SANDBOX_FAULT_OPEN,
	                        .test_fault_page = 1}};
	/* the hook tries to open the vault's key file ($QUIRE_TEST_OPEN, set before the
	 * launcher started) and reports what open() said */
	extract_thread(&j);
	g_assert_cmpint(j.e, ==, QERR_PARSE_FAILED);
	if (!strstr(j.err, "open refused"))
		g_error("the parser could open %s: %s", key_path, j.err);
	g_free(j.err);
}

/* A parser that may OCR loads Tesseract only once a page needs it, after it
 * confined itself; the library folders it may then read give it no way to
 * make code of its own. */
static void scanned_page(cairo_t *cr, int page, void *data)
{
	(void)page;
	(void)data;
	static const char *const lines[] = {"INVOICE 4711", "Total amount 1234.56 EUR", NULL};
	fixture_scan(cr, 595, 842, lines);
}

static void test_ocr_loads_after_confinement(void)
{
	g_autoptr(GBytes) pdf = fixture_cairo(1, 595, 842, NULL, NULL, scanned_page, NULL);
	gsize len = 0;
	const void *p = g_bytes_get_data(pdf, &len);
	struct sandbox_limits lim = {.timeout_s = 120, .memory_bytes = (size_t)1 << 30, .max_pages = 10};
	struct pdftext_doc *doc = NULL;
	g_autofree char *err = NULL;
	if (sandbox_extract(p, len, NULL, &lim, &doc, &err) != QERR_OK)
		g_error("OCR in the parser: %s", err);
	g_assert_cmpstr(doc->pages[0].method, ==, "ocr");
	g_assert_nonnull(strstr(doc->pages[0].text, "INVOICE 4711"));
	pdftext_doc_free(doc);
	/* the same kind of parser (OCR allowed) is killed when it makes memory executable */
	struct job j = {.pdf = pdf, .lim = lim};
	j.lim.test_fault = SANDBOX_FAULT_EXEC_MEMORY;
	j.lim.test_fault_page = 1;
	extract_thread(&j);
	g_assert_cmpint(j.e, ==, QERR_PARSE_FAILED);
	if (!strstr(j.err, "hostile PDF"))
		g_error("anonymous executable memory was not refused: %s", j.err);
	g_free(j.err);
}

/* The child of test_dies_with_worker: a worker that parses a document that never ends. */
static int hang_child(void)
{
	g_autofree char *err = NULL;
	if (sandbox_launch(&err) != QERR_OK)
		g_error("%s", err);
	static const char *const lines[] = {"HANGING", NULL};
	g_autoptr(GBytes) pdf = fixture_simple(lines, NULL, NULL);
	struct job j = {.pdf = pdf,
	                .lim = {.timeout_s = 600,
	                        .memory_bytes = (size_t)1 << 30,
	                        .max_pages = 10,
	                        .test_fault = SANDBOX_FAULT_HANG,
	                        .test_fault_page = 1}};
	extract_thread(&j);
	return 1;
}

static void test_dies_with_worker(void)
{
	g_autofree char *self = g_file_read_link("/proc/self/exe", NULL);
	char *argv[] = {self, (char *)"--hang-child", NULL};
	GPid child = 0;
	g_autoptr(GError) gerr = NULL;
	g_assert_true(g_spawn_async(NULL, argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &child, &gerr));
	/* wait for its launcher and a parser working for it */
	pid_t launcher = 0;
	g_autoptr(GArray) parsers = NULL;
	for (int tries = 0; tries < 1200; tries++) {
		g_autoptr(GArray) kids = children_of(child);
		launcher = kids->len ? g_array_index(kids, pid_t, 0) : 0;
		if (launcher) {
			g_clear_pointer(&parsers, g_array_unref);
			parsers = children_of(launcher);
			if (parsers->len >= 2) /* the one at work and the one started to replace it */
				break;
		}
		g_usleep(50000);
	}
	g_assert_cmpint(launcher, >, 0);
	g_assert_nonnull(parsers);
	g_assert_cmpuint(parsers->len, >=, 1);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	/* the launcher sees its control socket close, the parsers their launcher die */
	bool gone = false;
	for (int tries = 0; tries < 400 && !gone; tries++) {
		gone = !running(launcher);
		for (guint i = 0; i < parsers->len; i++)
			gone = gone && !running(g_array_index(parsers, pid_t, i));
		if (!gone)
			g_usleep(25000);
	}
	if (!gone)
		g_error("the launcher %d or a parser still runs 10 s after its worker was killed", (int)launcher);
}

/* The child of test_launcher_outlives_its_thread: a worker with no launcher
 * forked by main, whose first parser is asked for by a pool thread that ends. */
static gpointer start_from_thread(gpointer data)
{
	struct sandbox_limits *lim = data;
	g_autofree char *err = NULL;
	if (sandbox_start(lim, 1, &err) != QERR_OK)
		g_error("%s", err);
	return GINT_TO_POINTER(sandbox_launcher_pid());
}

static int thread_child(void)
{
	struct sandbox_limits lim = {.timeout_s = 60, .memory_bytes = (size_t)1 << 30, .max_pages = 10};
	int launcher = GPOINTER_TO_INT(g_thread_join(g_thread_new("pool", start_from_thread, &lim)));
	static const char *const lines[] = {"AFTER THE THREAD", NULL};
	g_autoptr(GBytes) pdf = fixture_simple(lines, NULL, NULL);
	gsize len = 0;
	const void *p = g_bytes_get_data(pdf, &len);
	struct pdftext_doc *doc = NULL;
	g_autofree char *err = NULL;
	if (sandbox_extract(p, len, NULL, &lim, &doc, &err) != QERR_OK) {
		fprintf(stderr, "extraction failed: %s\n", err);
		return 1;
	}
	bool text = strstr(doc->pages[0].text, "AFTER THE THREAD") != NULL;
	pdftext_doc_free(doc);
	if (sandbox_launcher_pid() != launcher) {
		fprintf(stderr, "the launcher %d died with the thread that started it\n", launcher);
		return 1;
	}
	return text ? 0 : 1;
}

/* A launcher started by a worker's pool thread stays when that thread ends
 * (the parsers at work for the other threads with it). */
static void test_launcher_outlives_its_thread(void)
{
	g_autofree char *self = g_file_read_link("/proc/self/exe", NULL);
	char *argv[] = {self, (char *)"--thread-child", NULL};
	int status = 0;
	g_autofree char *out = NULL, *errs = NULL;
	g_autoptr(GError) gerr = NULL;
	g_assert_true(g_spawn_sync(NULL, argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &errs, &status, &gerr));
	if (!g_spawn_check_wait_status(status, NULL))
		g_error("%s", errs);
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--hang-child") == 0)
		return hang_child();
	if (argc == 2 && strcmp(argv[1], "--thread-child") == 0)
		return thread_child();
	dir = g_dir_make_tmp("quire-isolation-XXXXXX", NULL);
	g_assert_nonnull(dir);
	key_path = g_build_filename(dir, "kek.key", NULL);
	g_setenv("QUIRE_TEST_OPEN", key_path, TRUE);
	/* as quire does: the launcher is forked before a key is loaded or a thread started */
	g_autofree char *err = NULL;
	if (sandbox_launch(&err) != QERR_OK)
		g_error("%s", err);
	g_test_init(&argc, &argv, NULL);
	if (sodium_init() < 0)
		g_error("libsodium");
	if (vault_keyfile_create(key_path, &err) != QERR_OK || vault_open(key_path, &vault, &err) != QERR_OK)
		g_error("key file: %s", err);
	g_test_add_func("/isolation/parser-memory-holds-no-key", test_parser_memory_holds_no_key);
	g_test_add_func("/isolation/forbidden-syscall-is-hostile", test_forbidden_syscall_is_hostile);
	g_test_add_func("/isolation/parser-cannot-open-files", test_parser_cannot_open_files);
	g_test_add_func("/isolation/dies-with-worker", test_dies_with_worker);
	g_test_add_func("/isolation/ocr-loads-after-confinement", test_ocr_loads_after_confinement);
	g_test_add_func("/isolation/launcher-outlives-its-thread", test_launcher_outlives_its_thread);
	int rc = g_test_run();
	vault_close(vault);
	unlink(key_path);
	g_rmdir(dir);
	g_free(key_path);
	g_free(dir);
	return rc;
}
