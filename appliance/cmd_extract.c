/* cmd_extract: extract and config, and what every command shares (option
 * parsing, failures, extraction settings, loading a PDF). Nothing here opens a
 * database, a key or a web server: these two commands run in the quire program
 * itself (appliance/main.c), which loads none of the libraries those need. */
#include "appliance/commands.h"

#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "appliance/config.h"
#include "core/json.h"
#include "extractors/extract.h"
#include "extractors/modelfields.h"
#include "extractors/pdftext.h"
#include "extractors/sandbox.h"
#include "pipeline/store.h"

int cmd_fail(const char *what, const char *message)
{
	fprintf(stderr, "quire %s: %s\n", what, message);
	return 1;
}

int cmd_parse(int *argc, char ***argv, const char *params, const char *summary, const struct _GOptionEntry *entries)
{
	g_autoptr(GOptionContext) ctx = g_option_context_new(params);
	g_option_context_set_summary(ctx, summary);
	if (entries)
		g_option_context_add_main_entries(ctx, (const GOptionEntry *)entries, NULL);
	g_autoptr(GError) gerr = NULL;
	g_autofree char *prg = g_strdup_printf("quire %s", (*argv)[0]);
	g_set_prgname(prg);
	if (!g_option_context_parse(ctx, argc, argv, &gerr)) {
		fprintf(stderr, "%s: %s\n", prg, gerr->message);
		return 2;
	}
	return 0;
}

struct extract_options extract_options_of(const struct config *cfg)
{
	struct extract_options o = {
	    .limits = {.timeout_s = cfg->parse_timeout_s,
	               .memory_bytes = (size_t)cfg->parse_memory_mb << 20,
	               .max_pages = cfg->max_pages,
	               .ocr_lang = cfg->ocr_language,
	               .ocr_dpi = cfg->ocr_dpi},
	    .schemas_dir = cfg->schemas_dir,
	    .auto_approve = cfg->auto_approve / 100.0,
	    .auto_approve_set = true,
	};
	return o;
}

enum qerr open_model(const struct config *cfg, struct modelfields **ret, char **reterr)
{
	*ret = NULL;
	if (!cfg->model_path[0] && !cfg->model_endpoint[0])
		return QERR_OK;
	struct modelfields_options mo = {.model_path = cfg->model_path,
	                                 .endpoint = cfg->model_endpoint,
	                                 .chat_template = cfg->model_template,
	                                 .adapters = cfg->model_adapters,
	                                 .threads = cfg->model_threads,
	                                 .context = cfg->model_context,
	                                 .time_limit_s = cfg->parse_timeout_s * 5};
	return modelfields_open(&mo, ret, reterr);
}

enum qerr cmd_load_pdf(const char *path, size_t max, struct loaded *out, char **reterr)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return qerr_set(reterr, QERR_NOT_FOUND, "%s: %s", path, g_strerror(errno));
	if (!S_ISREG(st.st_mode))
		return qerr_set(reterr, QERR_BAD_INPUT, "%s: not a regular file", path);
	if ((size_t)st.st_size > max)
		return qerr_set(reterr, QERR_TOO_LARGE, "%s: %lld bytes exceeds the limit of %zu (limits.max_file_mb)",
		                path, (long long)st.st_size, max);
	g_autoptr(GError) gerr = NULL;
	gsize len = 0;
	if (!g_file_get_contents(path, &out->data, &len, &gerr))
		return qerr_set(reterr, QERR_IO, "%s", gerr->message);
	out->len = len;
	g_autofree char *why = NULL;
	enum qerr e = store_check_pdf(out->data, out->len, max, &why);
	if (e) {
		g_free(out->data);
		out->data = NULL;
		return qerr_set(reterr, e, "%s: %s", path, why);
	}
	out->path = g_strdup(path);
	return QERR_OK;
}

int cmd_extract(int argc, char **argv, struct config *cfg)
{
	gboolean text = FALSE, full = FALSE, pages_only = FALSE;
	char *password = NULL;
	GOptionEntry entries[] = {
	    {"text", 0, 0, G_OPTION_ARG_NONE, &text, "Print the text of each page", NULL},
	    {"json", 0, 0, G_OPTION_ARG_NONE, &full, "Print fields and page text as JSON", NULL},
	    {"pages-only", 0, 0, G_OPTION_ARG_NONE, &pages_only,
	     "Read the fields from the pages, leaving an embedded e-invoice XML aside", NULL},
	    {"password", 0, 0, G_OPTION_ARG_STRING, &password, "Password of an encrypted PDF", "PW"},
	    {NULL, 0, 0, 0, NULL, NULL, NULL}};
	if (cmd_parse(&argc, &argv, "FILE", "Extract one PDF and print its fields as JSON; no database is used.",
	              (const struct _GOptionEntry *)entries))
		return 2;
	if (argc != 2)
		return cmd_fail("extract", "give one PDF file");
	struct loaded f = {0};
	g_autofree char *err = NULL;
	if (cmd_load_pdf(argv[1], (size_t)cfg->max_file_mb << 20, &f, &err))
		return cmd_fail("extract", err);
	struct extract_options opt = extract_options_of(cfg);
	opt.password = password;
	opt.pages_only = pages_only;
	struct json *result = NULL;
	struct pdftext_doc *doc = NULL;
	int rc = 0;
	if (text) {
		/* the text only: no field extraction */
		if (sandbox_extract(f.data, f.len, password, &opt.limits, &doc, &err))
			rc = cmd_fail("extract", err);
		for (int i = 0; doc && i < doc->n_pages; i++)
			printf("--- page %d (%s) ---\n%s\n", i + 1, doc->pages[i].method, doc->pages[i].text);
		for (uint32_t i = 0; doc && i < doc->n_warnings; i++)
			fprintf(stderr, "quire extract: %s: %s\n", argv[1], doc->warnings[i]);
	} else if (open_model(cfg, &opt.model, &err)) {
		rc = cmd_fail("extract", err);
	} else if (extract_document(f.data, f.len, &opt, &result, &doc, &err)) {
		rc = cmd_fail("extract", err);
	} else {
		if (full)
			json_add_item(result, "document", pdftext_doc_to_json(doc));
		g_autofree char *out = json_format(result, true);
		printf("%s\n", out);
	}
	json_free(result);
	pdftext_doc_free(doc);
	modelfields_close(opt.model);
	g_free(f.data);
	g_free(f.path);
	g_free(password);
	return rc;
}

int cmd_config(int argc, char **argv, struct config *cfg)
{
	if (cmd_parse(&argc, &argv, "sample|show",
	              "Print the documented sample configuration, or the effective values.", NULL))
		return 2;
	if (argc == 2 && strcmp(argv[1], "sample") == 0)
		config_print_sample(stdout);
	else if (argc == 2 && strcmp(argv[1], "show") == 0)
		config_print(cfg, stdout);
	else
		return cmd_fail("config", "expected `sample` or `show`");
	return 0;
}
