/* eval_einvoice: `quire eval DIR` on a folder of e-invoices, which label themselves.
 *
 * A PDF whose embedded XML is a readable invoice (Factur-X, ZUGFeRD 1.0/2.x,
 * XRechnung; extractors/einvoice.h) is a labelled case: the XML's values are
 * the truth, and the fields are read from the pages with the attachments left
 * aside (extract_options.pages_only), so the page reader is what is measured.
 * One sandboxed parse gives both. The folder is walked recursively; each
 * case counts overall, under the language of its pages and under its folder
 * relative to DIR. With --as-scans each document is also rendered to an
 * image-only PDF (extractors/render.h) and read again through OCR. With
 * --learn the set is replayed in file order: each document is read with the
 * corrections remembered so far (extractors/learn.h), counted as its
 * supplier's first document or a later one, and then every field it got
 * wrong is corrected with the XML's value, as a reviewer would. With
 * --show-misses each document's wrong header fields and unmatched line items
 * are printed before the report, to see what the reader gets wrong. */
#include "appliance/eval_einvoice.h"

#include <glib.h>
#include <stdio.h>
#include <string.h>

#include "appliance/config.h"
#include "core/json.h"
#include "extractors/einvoice.h"
#include "extractors/evaluate.h"
#include "extractors/layout.h"
#include "extractors/learn.h"
#include "extractors/pdftext.h"
#include "extractors/render.h"
#include "extractors/sandbox.h"

#define EVAL_MAX_FILES 100000
#define EVAL_MAX_DEPTH 16
#define BATCH 64
#define SCAN_WIDTH 2000 /* pixels across a page: about 240 dpi on A4 */
#define SCAN_ATTEMPTS 3

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
	long scans_failed; /* image-only copies that could not be read: counted as nothing found */
	size_t max_bytes;
	struct learn_memory *memory; /* --learn: corrections remembered so far */
	GHashTable *seen;            /* --learn: supplier identities already met */
	struct eval *first, *later;  /* --learn: a supplier's first document, its later ones */
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

/* The XML's values without line items where it lists none: profiles such as MINIMUM and
 * BASIC WL carry no lines though the page shows them, so the XML cannot judge the page's. */
static struct json *judged_values(struct json *values)
{
	if (json_array_size(json_get(values, "line_items")) > 0)
		return values;
	struct json *o = json_new_object();
	for (size_t i = 0; i < json_object_size(values); i++) {
		const char *key = NULL;
		const struct json *v = json_object_at(values, i, &key);
		if (strcmp(key, "line_items") != 0)
			json_add_item(o, key, json_duplicate(v));
	}
	json_free(values);
	return o;
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
			json_add_item(t, "fields", judged_values(values));
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
	enum qerr e = render_scan_pdf(pdf, len, w, h, doc->n_pages, SCAN_WIDTH, &lim, &scan, &scan_len, &err);
	if (!e && r->flags->keep_scans) {
		g_autofree char *flat = g_strdelimit(g_strdup(rel), "/", '_');
		g_autofree char *to = g_build_filename(r->flags->keep_scans, flat, NULL);
		if (!g_file_set_contents(to, (const char *)scan, (gssize)scan_len, NULL))
			fprintf(stderr, "quire eval: cannot write %s\n", to);
	}
	/* OCR takes several times the processor time a text layer needs, more on a loaded
	 * machine: the copy gets its own budget, by default the parse limit per page */
	struct extract_options opt = r->opt;
	opt.limits.timeout_s = r->flags->scan_timeout_s > 0 ? r->flags->scan_timeout_s
	                                                    : MAX(r->opt.limits.timeout_s, 1) * MAX(doc->n_pages, 1);
	/* OCR starved by a busy machine is a transient error: tried again, as the worker does */
	for (int attempt = 0; !e && attempt < SCAN_ATTEMPTS; attempt++) {
		g_clear_pointer(&err, g_free);
		e = extract_document(scan, scan_len, &opt, &result, NULL, &err);
		if (qerr_group(e) != QERR_GROUP_TRANSIENT)
			break;
	}
	if (e) {
		fprintf(stderr, "quire eval: %s: image-only copy: %s\n", rel, err ? err : "failed");
		return NULL;
	}
	return result;
}

/* A value as printed beside a miss: at most 60 characters (g_free). */
static char *shown(const struct json *v)
{
	g_autofree char *t = v ? json_format(v, false) : g_strdup("null");
	return g_utf8_strlen(t, -1) > 60 ? g_strdup_printf("%.60s...", t) : g_strdup(t);
}

/* --show-misses: the document's verdict and every field read wrong, on stdout. */
static void print_misses(const char *rel, const char *what, const struct json *truth, const struct json *result)
{
	struct eval *ev = eval_new();
	eval_add(ev, truth, result);
	const struct json *tf = json_get(truth, "fields"), *rf = json_get(result, "fields");
	double conf = 0;
	json_get_number(result, "confidence", &conf);
	const char *status = json_get_string(result, "status");
	printf("%s (%s): %s, confidence %.2f\n", rel, what, status ? status : "no result", conf);
	const struct json *reasons = json_get(result, "review_reasons");
	for (size_t i = 0; i < json_array_size(reasons); i++)
		printf("    review: %s\n", json_string_value(json_array_at(reasons, i)));
	for (size_t i = 0; i < json_object_size(tf); i++) {
		const char *name = NULL;
		const struct json *want = json_object_at(tf, i, &name);
		g_autofree char *key = g_strdup_printf("invoice.%s", name);
		struct eval_score sc = eval_score(ev, key);
		if (sc.fp + sc.fn == 0)
			continue;
		const struct json *f = json_get(rf, name);
		double c = 0;
		json_get_number(f, "confidence", &c);
		g_autofree char *g = shown(json_get(f, "value"));
		g_autofree char *w = shown(want);
		printf("    %-16s read %s (%.2f), truth %s\n", name, g, c, w);
	}
	eval_free(ev);
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

/* One PDF's outcome, read by a pool thread and counted afterwards in file order. */
struct one {
	const char *rel; /* borrowed from the file list */
	bool unreadable;
	char *problem; /* for stderr, or NULL */
	struct pdftext_doc *doc;
	struct json *truth, *text, *scan;
	const char *lang;
};

static void one_done(struct one *o)
{
	g_free(o->problem);
	pdftext_doc_free(o->doc);
	json_free(o->truth);
	json_free(o->text);
	json_free(o->scan);
	memset(o, 0, sizeof *o);
}

/* Parsed once in the sandbox: the truth from its XML, the fields from its pages. */
static void read_one(struct run *r, const char *root, struct one *o)
{
	g_autofree char *path = g_build_filename(root, o->rel, NULL);
	g_autofree char *pdf = NULL;
	gsize len = 0;
	g_autofree char *err = NULL;
	if (!g_file_get_contents(path, &pdf, &len, NULL) || len > r->max_bytes) {
		o->unreadable = true;
		o->problem = g_strdup("cannot be read or exceeds limits.max_file_mb");
		return;
	}
	if (sandbox_extract(pdf, len, NULL, &r->opt.limits, &o->doc, &err)) {
		o->unreadable = true;
		o->problem = g_steal_pointer(&err);
		return;
	}
	o->truth = truth_of(o->doc);
	if (!o->truth) {
		o->problem = g_strdup("no readable embedded invoice XML; not a labelled case");
		return;
	}
	if (extract_fields(o->doc, &r->opt, &o->text, &err))
		o->problem = g_steal_pointer(&err); /* counts as nothing found */
	if (r->flags->as_scans)
		o->scan = scan_result(r, o->rel, pdf, len, o->doc);
	g_autofree char *all = pages_text(o->doc);
	o->lang = eval_language(all);
}

struct batch {
	struct run *r;
	const char *root;
	GMutex lock;
	GCond done;
	guint left; /* files of the batch not read yet */
};

static void read_in_pool(gpointer data, gpointer user)
{
	struct batch *b = user;
	read_one(b->r, b->root, data);
	g_mutex_lock(&b->lock);
	if (--b->left == 0)
		g_cond_signal(&b->done);
	g_mutex_unlock(&b->lock);
}

static struct json *memory_lookup(void *ctx, char *const *keys)
{
	return learn_memory_lookup(ctx, keys);
}

/* Reads the document with what was learned so far, counts it, then corrects what it got wrong. */
static void learn_step(struct run *r, struct one *o)
{
	struct extract_options opt = r->opt;
	opt.learned = (struct extract_learned){memory_lookup, r->memory};
	struct json *result = NULL;
	if (extract_fields(o->doc, &opt, &result, NULL))
		result = NULL;
	const struct json *truth = json_get(o->truth, "fields");
	char **keys = learn_supplier_keys(truth, NULL);
	bool known = false;
	for (size_t i = 0; keys[i]; i++)
		known |= g_hash_table_contains(r->seen, keys[i]);
	eval_add(known ? r->later : r->first, o->truth, result);
	if (r->flags->show_misses)
		print_misses(o->rel, known ? "learned, later document" : "learned, first document", o->truth, result);
	struct layout *lay = layout_build(o->doc);
	for (size_t i = 0; i < json_object_size(truth); i++) {
		const char *field = NULL;
		const struct json *want = json_object_at(truth, i, &field);
		const struct json *got = json_get(json_get(json_get(result, "fields"), field), "value");
		struct json *hint = eval_same(want, got) ? NULL : learn_hint(lay, field, want);
		if (hint)
			learn_memory_put(r->memory, keys, field, hint);
		json_free(hint);
	}
	for (size_t i = 0; keys[i]; i++)
		g_hash_table_add(r->seen, g_strdup(keys[i]));
	layout_free(lay);
	g_strfreev(keys);
	json_free(result);
}

/* --show-misses: the header fields read wrong and the line items left unmatched on either side. */
static void show_misses(const char *rel, const struct json *truth, const struct json *result)
{
	const struct json *want = json_get(truth, "fields"), *got = json_get(result, "fields");
	g_auto(GStrv) header = g_strsplit(EVAL_HEADER_FIELDS, ", ", -1);
	for (size_t i = 0; header[i]; i++) {
		const struct json *e = json_get(want, header[i]), *g = json_get(json_get(got, header[i]), "value");
		if (!e || json_is_null(e) || eval_same(e, g))
			continue;
		g_autofree char *et = json_format(e, false);
		g_autofree char *gt = g ? json_format(g, false) : g_strdup("(none)");
		printf("miss %s: %s: expected %s, read %s\n", rel, header[i], et, gt);
	}
	const struct json *ei = json_get(want, "line_items"), *gi = json_get(json_get(got, "line_items"), "value");
	if (!ei)
		return; /* the XML lists no items: the page's are not judged */
	size_t ne = json_array_size(ei), ng = json_array_size(gi);
	g_autofree bool *used = g_new0(bool, ng + 1);
	for (size_t i = 0; i < ne; i++) {
		size_t j = 0;
		while (j < ng && (used[j] || !eval_same(json_array_at(ei, i), json_array_at(gi, j))))
			j++;
		if (j < ng) {
			used[j] = true;
			continue;
		}
		g_autofree char *t = json_format(json_array_at(ei, i), false);
		printf("miss %s: line item expected %s\n", rel, t);
	}
	for (size_t j = 0; j < ng; j++)
		if (!used[j]) {
			g_autofree char *t = json_format(json_array_at(gi, j), false);
			printf("miss %s: line item read %s\n", rel, t);
		}
}

static void count_one(struct run *r, struct one *o)
{
	r->pdfs++;
	if (o->problem)
		fprintf(stderr, "quire eval: %s: %s\n", o->rel, o->problem);
	r->failed += o->unreadable;
	if (!o->truth)
		return;
	r->labelled++;
	add_to_groups(r, o->rel, o->lang, o->truth, o->text, o->scan);
	r->scans_failed += r->flags->as_scans && !o->scan;
	if (r->flags->show_misses) {
		print_misses(o->rel, "text layer", o->truth, o->text);
		if (r->flags->as_scans)
			print_misses(o->rel, "image-only copy", o->truth, o->scan);
		show_misses(o->rel, o->truth, o->text);
	}
	if (r->memory)
		learn_step(r, o);
}

/* Reads the files in batches, several at a time, and counts each batch in file order. */
static void read_all(struct run *r, const char *root, GPtrArray *files)
{
	struct batch b = {.r = r, .root = root};
	g_mutex_init(&b.lock);
	g_cond_init(&b.done);
	GThreadPool *pool = g_thread_pool_new(read_in_pool, &b, r->flags->concurrency, TRUE, NULL);
	struct one *ones = g_new0(struct one, BATCH);
	for (guint at = 0; at < files->len; at += BATCH) {
		guint n = MIN(BATCH, files->len - at);
		b.left = n;
		for (guint i = 0; i < n; i++) {
			ones[i].rel = g_ptr_array_index(files, at + i);
			g_thread_pool_push(pool, &ones[i], NULL);
		}
		g_mutex_lock(&b.lock);
		while (b.left > 0)
			g_cond_wait(&b.done, &b.lock);
		g_mutex_unlock(&b.lock);
		for (guint i = 0; i < n; i++) {
			count_one(r, &ones[i]);
			one_done(&ones[i]);
		}
	}
	g_thread_pool_free(pool, FALSE, TRUE);
	g_mutex_clear(&b.lock);
	g_cond_clear(&b.done);
	g_free(ones);
}

static void print_row(const char *name, const struct group *g, bool scans)
{
	struct eval_totals t = eval_totals(g->text);
	printf("%-52s %5ld  %5.3f (%4ld of %4ld)  %6.3f", name, g->documents,
	       t.header_total ? (double)t.header_right / (double)t.header_total : 0, t.header_right, t.header_total,
	       eval_score(g->text, "invoice_line_items").f1);
	if (scans) {
		struct eval_totals s = eval_totals(g->scan);
		printf("  %5.3f (%4ld of %4ld)  %6.3f",
		       s.header_total ? (double)s.header_right / (double)s.header_total : 0, s.header_right,
		       s.header_total, eval_score(g->scan, "invoice_line_items").f1);
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
		print_row(g_ptr_array_index(keys, i), g_hash_table_lookup(r->groups, g_ptr_array_index(keys, i)),
		          scans);
}

static bool target(const char *what, double got, double want)
{
	if (want <= 0)
		return true;
	printf("target %-28s %8.3f >= %-8.3f %s\n", what, got, want, got >= want ? "met" : "MISSED");
	return got >= want;
}

static void learn_row(const char *name, const struct eval *ev)
{
	struct eval_totals t = eval_totals(ev);
	printf("%-36s %5ld  %5.3f (%4ld of %4ld)  %6.3f\n", name, t.documents,
	       t.header_total ? (double)t.header_right / (double)t.header_total : 0, t.header_right, t.header_total,
	       eval_score(ev, "invoice_line_items").f1);
}

static void learn_report(const struct run *r)
{
	printf(
	    "\nlearning from corrections (the set replayed in order, wrong fields corrected after each document):\n");
	printf("%-36s %5s  %-21s  %6s\n", "documents", "docs", "header fields right", "items");
	learn_row("a supplier's first document", r->first);
	learn_row("a supplier's later documents", r->later);
	printf("\nlater documents, per field:\n");
	eval_print(r->later, stdout, 0);
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
		printf("\nimage-only copies (rendered pages, OCR; %ld of %ld could not be read and count as nothing "
		       "found):\n",
		       r->scans_failed, r->labelled);
		eval_print(all->scan, stdout, 0);
	}
	print_groups(r);
	if (r->memory)
		learn_report(r);
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
	if (flags->learn) {
		r.memory = learn_memory_new();
		r.seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
		r.first = eval_new();
		r.later = eval_new();
	}
	r.max_bytes = (size_t)cfg->max_file_mb << 20;
	gint64 t0 = g_get_monotonic_time();
	read_all(&r, dir, files);
	int rc = r.labelled ? report(&r, (double)(g_get_monotonic_time() - t0) / 1e6) : 1;
	if (!r.labelled)
		fprintf(stderr,
		        "quire eval: no PDF in %s has an expected .json beside it or a readable embedded invoice\n",
		        dir);
	g_hash_table_destroy(r.groups);
	learn_memory_free(r.memory);
	if (r.seen)
		g_hash_table_destroy(r.seen);
	eval_free(r.first);
	eval_free(r.later);
	return rc;
}
