/* eval_einvoice: `quire eval DIR` on a folder of e-invoices, which label themselves.
 *
 * A PDF whose embedded XML is a readable invoice (Factur-X, ZUGFeRD 1.0/2.x,
 * XRechnung; extractors/einvoice.h) is a labelled case: the XML's values are
 * the truth, and the fields are read from the pages with the attachments left
 * aside (extract_options.pages_only), so the page reader is what is measured.
 * One sandboxed parse gives both. The folder is walked recursively; each
 * case counts overall, under the language of its pages and under its folder
 * relative to DIR. With --as-scans each document is also rendered to an
 * image-only PDF (extractors/render.h) and read again through OCR. */
#include "appliance/eval_einvoice.h"

#include <glib.h>
#include <stdio.h>
#include <string.h>

#include "appliance/config.h"
#include "core/json.h"
#include "extractors/einvoice.h"
#include "extractors/evaluate.h"
#include "extractors/pdftext.h"
#include "extractors/render.h"
#include "extractors/sandbox.h"

#define EVAL_MAX_FILES 100000
#define EVAL_MAX_DEPTH 16
#define SCAN_WIDTH 2000 /* pixels across a page: about 240 dpi on A4 */

/* Measures of one group of documents (all, a language, a folder). */
struct group {
	long documents;
	struct eval *text, *scan;
};

struct run {
	const struct eval_einvoice_flags *flags;
	struct extract_options opt;
	GHashTable *groups; /* "all" / "language xx" / "folder a/b" -> struct group */
	long pdfs, labelled, failed;
};

static void group_free(gpointer p)
{
	struct group *g = p;
	eval_free(g->text);
	eval_free(g->scan);
	g_free(g);
}

static struct group *group_of(struct run *r, const char *name)
{
	struct group *g = g_hash_table_lookup(r->groups, name);
	if (!g) {
		g = g_new0(struct group, 1);
		g->text = eval_new();
		g->scan = eval_new();
		g_hash_table_insert(r->groups, g_strdup(name), g);
	}
	return g;
}

/* The PDFs under dir (relative paths, sorted), at most EVAL_MAX_FILES. */
static void list_pdfs(const char *root, const char *rel, int depth, GPtrArray *out)
{
	g_autofree char *path = rel[0] ? g_build_filename(root, rel, NULL) : g_strdup(root);
	g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
	if (!d || depth > EVAL_MAX_DEPTH)
		return;
	for (const char *n; (n = g_dir_read_name(d)) && out->len < EVAL_MAX_FILES;) {
		g_autofree char *sub = rel[0] ? g_build_filename(rel, n, NULL) : g_strdup(n);
		g_autofree char *full = g_build_filename(root, sub, NULL);
		if (g_file_test(full, G_FILE_TEST_IS_SYMLINK))
			continue;
		if (g_file_test(full, G_FILE_TEST_IS_DIR))
			list_pdfs(root, sub, depth + 1, out);
		else if (g_str_has_suffix(n, ".pdf") || g_str_has_suffix(n, ".PDF"))
			g_ptr_array_add(out, g_steal_pointer(&sub));
	}
}

static gint by_str(gconstpointer a, gconstpointer b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The truth: the first embedded XML that reads as an invoice, as a labelled document. */
static struct json *truth_of(const struct pdftext_doc *doc)
{
	for (uint32_t i = 0; i < doc->n_attachments; i++) {
		struct json *values = NULL;
		const char *syntax = NULL;
		if (einvoice_parse((const char *)doc->attachments[i].data, doc->attachments[i].len, &values, &syntax,
		                   NULL) == QERR_OK) {
			struct json *t = json_new_object();
			json_add_string(t, "document_type", "invoice");
			json_add_item(t, "fields", values);
			return t;
		}
	}
	return NULL;
}

static char *pages_text(const struct pdftext_doc *doc)
{
	GString *s = g_string_new(NULL);
	for (int i = 0; i < doc->n_pages; i++)
		g_string_append_printf(s, "%s\n", doc->pages[i].text ? doc->pages[i].text : "");
	return g_string_free(s, FALSE);
}

/* The image-only copy of pdf read through OCR, pages only; NULL (reported) when it fails. */
static struct json *scan_result(struct run *r, const char *rel, const char *pdf, size_t len,
                                const struct pdftext_doc *doc)
{
	g_autofree double *w = g_new0(double, (gsize)MAX(doc->n_pages, 1));
	g_autofree double *h = g_new0(double, (gsize)MAX(doc->n_pages, 1));
	for (int i = 0; i < doc->n_pages; i++) {
		w[i] = doc->pages[i].width;
		h[i] = doc->pages[i].height;
	}
	struct render_limits lim = {.timeout_s = r->opt.limits.timeout_s, .memory_bytes = r->opt.limits.memory_bytes};
	g_autofree uint8_t *scan = NULL;
	size_t scan_len = 0;
	g_autofree char *err = NULL;
	struct json *result = NULL;
	if (render_scan_pdf(pdf, len, w, h, doc->n_pages, SCAN_WIDTH, &lim, &scan, &scan_len, &err) ||
	    extract_document(scan, scan_len, &r->opt, &result, NULL, &err)) {
		fprintf(stderr, "quire eval: %s: image-only copy: %s\n", rel, err ? err : "failed");
		return NULL;
	}
	return result;
}

static void add_to_groups(struct run *r, const char *rel, const char *lang, const struct json *truth,
                          const struct json *text, const struct json *scan)
{
	g_autofree char *folder = g_path_get_dirname(rel);
	g_autofree char *lkey = g_strdup_printf("language %s", lang);
	g_autofree char *fkey = g_strdup_printf("folder %s", folder);
	const char *keys[] = {"all", lkey, fkey};
	for (size_t k = 0; k < G_N_ELEMENTS(keys); k++) {
		struct group *g = group_of(r, keys[k]);
		g->documents++;
		eval_add(g->text, truth, text);
		if (r->flags->as_scans)
			eval_add(g->scan, truth, scan);
	}
}

/* One PDF: parsed once in the sandbox; the truth from its XML, the fields from its pages. */
static void eval_one(struct run *r, const char *root, const char *rel, size_t max)
{
	g_autofree char *path = g_build_filename(root, rel, NULL);
	g_autofree char *pdf = NULL;
	gsize len = 0;
	g_autofree char *err = NULL;
	struct pdftext_doc *doc = NULL;
	r->pdfs++;
	if (!g_file_get_contents(path, &pdf, &len, NULL) || len > max) {
		fprintf(stderr, "quire eval: %s: cannot be read or exceeds limits.max_file_mb\n", rel);
		r->failed++;
		return;
	}
	if (sandbox_extract(pdf, len, NULL, &r->opt.limits, &doc, &err)) {
		fprintf(stderr, "quire eval: %s: %s\n", rel, err);
		r->failed++;
		return;
	}
	struct json *truth = truth_of(doc);
	struct json *text = NULL, *scan = NULL;
	if (!truth) {
		fprintf(stderr, "quire eval: %s: no readable embedded invoice XML; not a labelled case\n", rel);
	} else {
		r->labelled++;
		if (extract_fields(doc, &r->opt, &text, &err))
			fprintf(stderr, "quire eval: %s: %s\n", rel, err); /* counts as nothing found */
		if (r->flags->as_scans)
			scan = scan_result(r, rel, pdf, len, doc);
		g_autofree char *all = pages_text(doc);
		add_to_groups(r, rel, eval_language(all), truth, text, scan);
	}
	json_free(truth);
	json_free(text);
	json_free(scan);
	pdftext_doc_free(doc);
}

static void print_row(const char *name, const struct group *g, bool scans)
{
	struct eval_totals t = eval_totals(g->text);
	printf("%-52s %5ld  %5.3f (%4ld of %4ld)  %6.3f", name, g->documents,
	       t.header_total ? (double)t.header_right / (double)t.header_total : 0, t.header_right, t.header_total,
	       eval_score(g->text, "invoice_line_items").f1);
	if (scans) {
		struct eval_totals s = eval_totals(g->scan);
		printf("  %5.3f (%4ld of %4ld)  %6.3f", s.header_total ? (double)s.header_right / (double)s.header_total : 0,
		       s.header_right, s.header_total, eval_score(g->scan, "invoice_line_items").f1);
	}
	printf("\n");
}

static void print_groups(struct run *r)
{
	bool scans = r->flags->as_scans;
	printf("\nheader fields: %s\n", EVAL_HEADER_FIELDS);
	printf("%-52s %5s  %-21s  %6s", "group", "docs", "header fields right", "items");
	if (scans)
		printf("  %-21s  %6s", "scans: header right", "items");
	printf("\n");
	print_row("all", g_hash_table_lookup(r->groups, "all"), scans);
	g_autoptr(GPtrArray) keys = g_ptr_array_new();
	GHashTableIter it;
	gpointer k;
	g_hash_table_iter_init(&it, r->groups);
	while (g_hash_table_iter_next(&it, &k, NULL))
		if (strcmp(k, "all") != 0)
			g_ptr_array_add(keys, k);
	g_ptr_array_sort(keys, by_str);
	for (guint i = 0; i < keys->len; i++)
		print_row(g_ptr_array_index(keys, i), g_hash_table_lookup(r->groups, g_ptr_array_index(keys, i)), scans);
}

static bool target(const char *what, double got, double want)
{
	if (want <= 0)
		return true;
	printf("target %-28s %8.3f >= %-8.3f %s\n", what, got, want, got >= want ? "met" : "MISSED");
	return got >= want;
}

static int report(struct run *r, double seconds)
{
	struct group *all = g_hash_table_lookup(r->groups, "all");
	printf("%ld PDFs, %ld labelled by their embedded invoice XML, %ld without one, %ld unreadable; fields read "
	       "from the pages (attachments ignored), %.1f s\n\n",
	       r->pdfs, r->labelled, r->pdfs - r->labelled - r->failed, r->failed, seconds);
	printf("text layer:\n");
	eval_print(all->text, stdout, 0);
	if (r->flags->as_scans) {
		printf("\nimage-only copies (rendered pages, OCR):\n");
		eval_print(all->scan, stdout, 0);
	}
	print_groups(r);
	struct eval_totals t = eval_totals(all->text);
	double right = t.header_total ? (double)t.header_right / (double)t.header_total : 0;
	printf("\n");
	bool ok = target("header fields right", right, r->flags->min_header_right);
	ok &= target("invoice line items F1", eval_score(all->text, "invoice_line_items").f1, r->flags->min_items_f1);
	return ok ? 0 : 1;
}

int eval_einvoice_dir(const char *dir, const struct config *cfg, const struct extract_options *opt,
                      const struct eval_einvoice_flags *flags)
{
	g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(g_free);
	list_pdfs(dir, "", 0, files);
	g_ptr_array_sort(files, by_str);
	if (files->len == 0) {
		fprintf(stderr, "quire eval: no PDF in %s\n", dir);
		return 1;
	}
	struct run r = {.flags = flags, .opt = *opt};
	r.opt.pages_only = true;
	r.groups = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, group_free);
	group_of(&r, "all");
	gint64 t0 = g_get_monotonic_time();
	for (guint i = 0; i < files->len; i++)
		eval_one(&r, dir, g_ptr_array_index(files, i), (size_t)cfg->max_file_mb << 20);
	int rc = r.labelled ? report(&r, (double)(g_get_monotonic_time() - t0) / 1e6) : 1;
	if (!r.labelled)
		fprintf(stderr, "quire eval: no PDF in %s has an expected .json beside it or a readable embedded invoice\n",
		        dir);
	g_hash_table_destroy(r.groups);
	return rc;
}
