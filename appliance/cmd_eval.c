/* cmd_eval: `quire eval DIR`, field accuracy and throughput on a labelled set.
 *
 * A folder with no expected JSON beside its PDFs is taken as a folder of
 * e-invoices, whose embedded XML labels each page (appliance/eval_einvoice.c).
 *
 * DIR holds PDFs, each with NAME.json beside it ({"document_type":..,
 * "fields":{..}}, as tests/fixtures/make_labelled writes). By default every
 * PDF goes through the real pipeline: submitted (sealed, queued, audited),
 * processed by a worker with worker.concurrency job threads (sandboxed
 * parsing, classification, extraction, validation, sealing of the result,
 * completion, audit), and its result read back and decrypted. With --direct
 * the files are extracted in this process (sandbox included) without a
 * database. The table gives precision, recall and F1 per field and for the
 * groups of extractors/evaluate.h; throughput is documents per minute of
 * wall-clock time from the first submission to the last completion. With
 * --min-* targets the exit status is 1 when one is missed. */
#include "appliance/commands.h"

#include <glib.h>
#include <stdio.h>
#include <string.h>

#include "appliance/app.h"
#include "appliance/config.h"
#include "appliance/eval_einvoice.h"
#include "appliance/pgembed.h"
#include "appliance/progress.h"
#include "core/db.h"
#include "core/json.h"
#include "core/vault.h"
#include "extractors/evaluate.h"
#include "extractors/modelfields.h"
#include "pipeline/queue.h"
#include "pipeline/store.h"
#include "pipeline/worker.h"

#define EVAL_MAX_FILES 100000

struct sample {
	char *pdf; /* path */
	struct json *expected;
	int64_t doc_id;
};

static void samples_free(GArray *s)
{
	for (guint i = 0; i < s->len; i++) {
		struct sample *x = &g_array_index(s, struct sample, i);
		g_free(x->pdf);
		json_free(x->expected);
	}
	g_array_free(s, TRUE);
}

static gint by_path(gconstpointer a, gconstpointer b)
{
	return strcmp(((const struct sample *)a)->pdf, ((const struct sample *)b)->pdf);
}

/* The PDFs of dir that have an expected JSON beside them, sorted by name. */
static enum qerr list_samples(const char *dir, GArray **ret, char **reterr)
{
	g_autoptr(GError) gerr = NULL;
	g_autoptr(GDir) d = g_dir_open(dir, 0, &gerr);
	if (!d)
		return qerr_set(reterr, QERR_IO, "%s", gerr->message);
	GArray *s = g_array_new(FALSE, TRUE, sizeof(struct sample));
	for (const char *n; (n = g_dir_read_name(d)) && s->len < EVAL_MAX_FILES;) {
		if (!g_str_has_suffix(n, ".pdf"))
			continue;
		g_autofree char *stem = g_strndup(n, strlen(n) - 4);
		g_autofree char *jpath = g_strdup_printf("%s/%s.json", dir, stem);
		g_autofree char *text = NULL;
		gsize len = 0;
		struct json *exp = NULL;
		if (!g_file_get_contents(jpath, &text, &len, NULL))
			continue;
		if (json_parse(text, len, &exp, reterr)) {
			samples_free(s);
			return qerr_set(reterr, QERR_BAD_INPUT, "%s is not valid JSON", jpath);
		}
		struct sample x = {g_strdup_printf("%s/%s", dir, n), exp, 0};
		g_array_append_val(s, x);
	}
	g_array_sort(s, by_path);
	*ret = s;
	return QERR_OK;
}

static enum qerr eval_direct(const struct config *cfg, GArray *samples, struct eval *ev, double *ret_seconds,
                             char **reterr)
{
	struct extract_options opt = extract_options_of(cfg);
	enum qerr e = open_model(cfg, &opt.model, reterr);
	gint64 t0 = g_get_monotonic_time();
	struct progress pr;
	progress_start(&pr, "eval: extracting", "documents", samples->len);
	for (guint i = 0; !e && i < samples->len; i++) {
		struct sample *x = &g_array_index(samples, struct sample, i);
		g_autofree char *pdf = NULL;
		gsize len = 0;
		struct json *result = NULL;
		g_autofree char *err = NULL;
		if (!g_file_get_contents(x->pdf, &pdf, &len, NULL))
			e = qerr_set(reterr, QERR_IO, "cannot read %s", x->pdf);
		else if (extract_document(pdf, len, &opt, &result, NULL, &err))
			fprintf(stderr, "%squire eval: %s: %s\n", pr.active ? "\n" : "", x->pdf,
			        err); /* counts as nothing found */
		if (!e)
			eval_add(ev, x->expected, result);
		json_free(result);
		progress_update(&pr, i + 1);
	}
	progress_end(&pr);
	*ret_seconds = (double)(g_get_monotonic_time() - t0) / 1e6;
	modelfields_close(opt.model);
	return e;
}

static enum qerr submit_all(struct app *app, const struct config *cfg, GArray *samples, char **reterr)
{
	struct progress pr;
	progress_start(&pr, "eval: submitting", "documents", samples->len);
	for (guint i = 0; i < samples->len; i++, progress_update(&pr, i)) {
		struct sample *x = &g_array_index(samples, struct sample, i);
		g_autofree char *pdf = NULL;
		gsize len = 0;
		if (!g_file_get_contents(x->pdf, &pdf, &len, NULL))
			return qerr_set(reterr, QERR_IO, "cannot read %s", x->pdf);
		g_autofree char *base = g_path_get_basename(x->pdf);
		struct store_submitted s;
		enum qerr e =
		    store_submit(app->db, app->vault, base, pdf, len, app->actor, cfg->max_attempts, &s, reterr);
		if (e)
			return e;
		x->doc_id = s.doc_id;
	}
	progress_end(&pr);
	fprintf(stderr, "eval: processing %u documents with the worker\n", samples->len);
	return QERR_OK;
}

static void collect_results(struct app *app, GArray *samples, struct eval *ev)
{
	for (guint i = 0; i < samples->len; i++) {
		struct sample *x = &g_array_index(samples, struct sample, i);
		struct vault_dek *dek = NULL;
		struct vault_buf buf = {0};
		struct json *result = NULL;
		g_autofree char *err = NULL;
		if (store_dek(app->db, app->vault, x->doc_id, &dek, &err) ||
		    store_get(app->db, dek, x->doc_id, "result", &buf, &err) ||
		    json_parse((const char *)buf.data, buf.len, &result, &err))
			fprintf(stderr, "quire eval: %s: no result (%s)\n", x->pdf, err ? err : "unknown");
		eval_add(ev, x->expected, result);
		json_free(result);
		vault_buf_free(&buf);
		vault_dek_free(dek);
	}
}

static enum qerr eval_pipeline(const struct config *cfg, GArray *samples, int concurrency, struct eval *ev,
                               double *ret_seconds, char **reterr)
{
	struct app app;
	enum qerr e = app_open((struct config *)cfg, APP_DB | APP_VAULT | APP_MIGRATE, &app, reterr);
	if (e)
		return e;
	gint64 t0 = g_get_monotonic_time();
	e = submit_all(&app, cfg, samples, reterr);
	struct worker_options opt = {.name = "eval",
	                             .lease_s = cfg->lease_s,
	                             .drain = true,
	                             .extract = extract_options_of(cfg),
	                             .conninfo = cfg->db_url[0] ? cfg->db_url : pgembed_conninfo(app.pg),
	                             .concurrency = concurrency,
	                             .grace_s = cfg->worker_grace_s,
	                             .poll_ms = cfg->worker_poll_ms};
	if (!e)
		e = open_model(cfg, &opt.extract.model, reterr);
	volatile int stop = 0;
	struct worker_stats stats = {0};
	if (!e)
		e = worker_run(NULL, app.vault, &opt, &stop, &stats, reterr);
	*ret_seconds = (double)(g_get_monotonic_time() - t0) / 1e6;
	if (!e)
		collect_results(&app, samples, ev);
	modelfields_close(opt.extract.model);
	app_close(&app);
	return e;
}

static bool target(const char *what, double got, double want)
{
	if (want <= 0)
		return true;
	printf("target %-28s %8.3f >= %-8.3f %s\n", what, got, want, got >= want ? "met" : "MISSED");
	return got >= want;
}

int cmd_eval(int argc, char **argv, struct config *cfg)
{
	gboolean direct = FALSE;
	int concurrency = cfg->worker_concurrency;
	double min_header = 0, min_items = 0, min_rate = 0;
	gboolean all_valid = FALSE, as_scans = FALSE, learn = FALSE, show_misses = FALSE;
	double min_right = 0;
	int scan_timeout = 0;
	g_autofree char *keep_scans = NULL;
	GOptionEntry entries[] = {
	    {"direct", 0, 0, G_OPTION_ARG_NONE, &direct, "Extract in this process, without the database and queue",
	     NULL},
	    {"concurrency", 'c', 0, G_OPTION_ARG_INT, &concurrency, "Worker job threads (default worker.concurrency)",
	     "N"},
	    {"min-header-f1", 0, 0, G_OPTION_ARG_DOUBLE, &min_header, "Fail below this F1 on invoice header fields",
	     "F"},
	    {"min-items-f1", 0, 0, G_OPTION_ARG_DOUBLE, &min_items, "Fail below this F1 on invoice line items", "F"},
	    {"min-per-minute", 0, 0, G_OPTION_ARG_DOUBLE, &min_rate, "Fail below this many documents per minute", "N"},
	    {"all-valid", 0, 0, G_OPTION_ARG_NONE, &all_valid, "Fail unless every result is valid for its schema",
	     NULL},
	    {"as-scans", 0, 0, G_OPTION_ARG_NONE, &as_scans,
	     "E-invoices: also read image-only copies of the pages (rendered, then OCR)", NULL},
	    {"learn", 0, 0, G_OPTION_ARG_NONE, &learn,
	     "E-invoices: replay in order, correcting wrong fields after each document; report first and later "
	     "documents of each supplier",
	     NULL},
	    {"show-misses", 0, 0, G_OPTION_ARG_NONE, &show_misses,
	     "E-invoices: print each document's verdict, review reasons and wrong fields (value read, truth), and "
	     "its unmatched line items",
	     NULL},
	    {"scan-timeout", 0, 0, G_OPTION_ARG_INT, &scan_timeout,
	     "E-invoices with --as-scans: processor seconds to read one image-only copy (default: "
	     "limits.parse_timeout_s per page)",
	     "S"},
	    {"keep-scans", 0, 0, G_OPTION_ARG_FILENAME, &keep_scans,
	     "E-invoices with --as-scans: write the image-only copies into this folder", "DIR"},
	    {"min-header-right", 0, 0, G_OPTION_ARG_DOUBLE, &min_right,
	     "E-invoices: fail below this share of header fields right", "F"},
	    {NULL, 0, 0, 0, NULL, NULL, NULL}};
	if (cmd_parse(&argc, &argv, "DIR",
	              "Measure field extraction on a folder of PDFs with expected JSON beside each, or on a folder of "
	              "e-invoices (their embedded XML is the truth, the pages are read).",
	              (const struct _GOptionEntry *)entries))
		return 2;
	if (argc != 2) {
		fprintf(stderr, "quire eval: give one folder\n");
		return 2;
	}
	if (scan_timeout < 0 || scan_timeout > 3600) {
		fprintf(stderr, "quire eval: --scan-timeout must be from 1 to 3600 seconds\n");
		return 2;
	}
	if (concurrency < 1 || concurrency > QUEUE_MAX_HEARTBEAT) {
		fprintf(stderr, "quire eval: --concurrency must be from 1 to %d\n", QUEUE_MAX_HEARTBEAT);
		return 2;
	}
	g_autofree char *err = NULL;
	GArray *samples = NULL;
	if (list_samples(argv[1], &samples, &err))
		return cmd_fail("eval", err);
	if (samples->len == 0) {
		/* No expected JSON: a folder of e-invoices labels itself. */
		samples_free(samples);
		struct extract_options opt = extract_options_of(cfg);
		if (open_model(cfg, &opt.model, &err))
			return cmd_fail("eval", err);
		struct eval_einvoice_flags f = {.as_scans = as_scans,
		                                .concurrency = concurrency,
		                                .learn = learn,
		                                .min_header_right = min_right,
		                                .min_items_f1 = min_items,
		                                .show_misses = show_misses,
		                                .scan_timeout_s = scan_timeout,
		                                .keep_scans = keep_scans};
		int rc = eval_einvoice_dir(argv[1], cfg, &opt, &f);
		modelfields_close(opt.model);
		return rc;
	}
	struct eval *ev = eval_new();
	double seconds = 0;
	enum qerr e = direct ? eval_direct(cfg, samples, ev, &seconds, &err)
	                     : eval_pipeline(cfg, samples, concurrency, ev, &seconds, &err);
	int rc = 0;
	if (e) {
		rc = cmd_fail("eval", err);
	} else {
		double rate = seconds > 0 ? samples->len * 60.0 / seconds : 0;
		printf("%u documents, %s, %.1f s\n\n", samples->len,
		       direct ? "direct extraction" : "through the pipeline", seconds);
		eval_print(ev, stdout, rate);
		bool ok = target("invoice header F1", eval_score(ev, "invoice_header").f1, min_header);
		ok &= target("invoice line items F1", eval_score(ev, "invoice_line_items").f1, min_items);
		ok &= target("documents per minute", rate, min_rate);
		struct eval_totals t = eval_totals(ev);
		if (all_valid)
			ok &= target("results valid for their schema",
			             (double)t.schema_valid / (double)MAX(t.documents, 1), 1);
		rc = ok ? 0 : 1;
	}
	eval_free(ev);
	samples_free(samples);
	return rc;
}
