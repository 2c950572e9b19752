/* modelfields: prompt building, constrained generation and confidence per field. */
#include "extractors/modelfields.h"

#include <gio/gio.h>
#include <glib.h>
#include <math.h>
#include <string.h>

#include "core/json.h"
#include "extractors/pdftext.h"
#include "extractors/rules.h"
#include "runtime/runtime.h"

#define MAX_ANSWER_TOKENS 384

struct modelfields {
	struct rt_model *model;
	int context;
	int time_limit_s;
	char *schema;
};

static const char *const invoice_fields[] = {"supplier_name", "invoice_number", "issue_date", "due_date",
                                             "currency",      "net_amount",     "tax_amount", "total_amount"};

static const char SYSTEM_PROMPT[] =
	"You read the text of a business document and return its fields as JSON. Copy values exactly as they "
	"appear; write dates as YYYY-MM-DD and amounts as plain numbers; use null for a field the document does "
	"not contain. Never guess.";

static enum qerr rt_to_qerr(enum rterror e)
{
	switch (e) {
	case RTERROR_OK: return QERR_OK;
	case RTERROR_TIMEOUT: return QERR_TIMEOUT;
	case RTERROR_BUSY: return QERR_BUSY;
	case RTERROR_NOMEM: return QERR_NOMEM;
	case RTERROR_IO: return QERR_IO;
	default: return QERR_MODEL;
	}
}

/* Generated from extractors.gresource.xml: the schemas compiled into the binary. */
GResource *quire_extractors_resources_get_resource(void);

static char *load_schema(const char *type)
{
	g_autofree char *path = g_strdup_printf("/quire/schemas/%s.json", type);
	GBytes *b = g_resource_lookup_data(quire_extractors_resources_get_resource(), path, 0, NULL);
	if (!b)
		return NULL;
	char *s = g_strndup(g_bytes_get_data(b, NULL), g_bytes_get_size(b));
	g_bytes_unref(b);
	return s;
}

enum qerr modelfields_open(const struct modelfields_options *opt, struct modelfields **ret, char **reterr)
{
	struct modelfields *mf = g_new0(struct modelfields, 1);
	mf->context = opt->context > 0 ? opt->context : 4096;
	mf->time_limit_s = opt->time_limit_s > 0 ? opt->time_limit_s : 300;
	mf->schema = load_schema("invoice");
	g_assert(mf->schema); /* compiled into the binary */
	char *err = NULL;
	enum rterror re;
	if (opt->model_path && opt->model_path[0]) {
		struct rt_local_options lo = {.n_threads = opt->threads, .n_ctx = mf->context,
		                              .chat_template = opt->chat_template && opt->chat_template[0]
		                                                       ? opt->chat_template : NULL};
		re = rt_model_open_local(opt->model_path, &lo, &mf->model, &err);
	} else {
		struct rt_remote_options ro = {.base_url = opt->endpoint, .retries = 2};
		re = rt_model_open_remote(&ro, &mf->model, &err);
	}
	if (re) {
		qerr_set(reterr, rt_to_qerr(re), "model %s: %s", opt->model_path && opt->model_path[0] ? opt->model_path
		                                                                                     : opt->endpoint,
		         err ? err : rterror_str(re));
		free(err);
		modelfields_close(mf);
		return rt_to_qerr(re);
	}
	*ret = mf;
	return QERR_OK;
}

void modelfields_close(struct modelfields *mf)
{
	if (!mf)
		return;
	rt_model_close(mf->model);
	g_free(mf->schema);
	g_free(mf);
}

/* The page texts, with page markers, cut to budget bytes. */
static char *build_prompt(const struct pdftext_doc *doc, size_t budget)
{
	GString *p = g_string_new("Document text:\n");
	for (int i = 0; i < doc->n_pages && p->len < budget; i++) {
		g_string_append_printf(p, "--- page %d ---\n", i + 1);
		size_t room = budget - p->len;
		const char *t = doc->pages[i].text;
		size_t len = strlen(t);
		if (len > room) {
			const char *cut = g_utf8_find_prev_char(t, t + room);
			len = cut ? (size_t)(cut - t) : 0;
		}
		g_string_append_len(p, t, (gssize)len);
		g_string_append_c(p, '\n');
	}
	g_string_append(p, "\nReturn the invoice fields as JSON.");
	return g_string_free(p, FALSE);
}

/* Byte span of the value of "key" in compact JSON text; false if absent. */
static bool value_span(const char *text, const char *key, size_t *start, size_t *end)
{
	g_autofree char *needle = g_strdup_printf("\"%s\":", key);
	const char *p = strstr(text, needle);
	if (!p)
		return false;
	const char *v = p + strlen(needle), *e = v;
	if (*e == '"') {
		for (e++; *e && *e != '"'; e++)
			if (*e == '\\' && e[1])
				e++;
		if (*e)
			e++;
	} else {
		while (*e && *e != ',' && *e != '}')
			e++;
	}
	*start = (size_t)(v - text);
	*end = (size_t)(e - text);
	return true;
}

/* The lowest probability the model gave to a token that spelled the value. */
static double span_confidence(const struct rt_result *r, size_t start, size_t end)
{
	double conf = 1.0;
	for (size_t i = 0; i < r->n_tokens; i++) {
		const struct rt_token *t = &r->tokens[i];
		if (t->forced || t->offset + t->len <= start || t->offset >= end)
			continue;
		if (t->prob < conf)
			conf = t->prob;
	}
	return conf;
}

/* Whether an amount equal to num is written somewhere in text, in any of the usual forms. */
static bool has_amount(const char *text, double num)
{
	static GRegex *re;
	if (g_once_init_enter(&re))
		g_once_init_leave(&re, g_regex_new("-?\\d[\\d.,' ]*", G_REGEX_OPTIMIZE, 0, NULL));
	g_autoptr(GMatchInfo) mi = NULL;
	for (g_regex_match(re, text, 0, &mi); g_match_info_matches(mi); g_match_info_next(mi, NULL)) {
		g_autofree char *m = g_match_info_fetch(mi, 0);
		double v = 0;
		if (rules_parse_amount(m, &v) && fabs(v - num) < 0.005)
			return true;
	}
	return false;
}

static bool has_date(const char *text, const char *iso)
{
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
	for (int l = 0; lines[l]; l++) {
		char d[11];
		if (rules_parse_date(lines[l], d) && strcmp(d, iso) == 0)
			return true;
	}
	return false;
}

/* The first page where the value occurs (dates and amounts in any written form), or 0. */
static int find_page(const struct pdftext_doc *doc, const struct json *value)
{
	const char *s = json_string_value(value);
	g_autofree char *text = s ? NULL : json_format(value, false);
	double num = text ? g_ascii_strtod(text, NULL) : 0;
	bool iso = s && strlen(s) == 10 && s[4] == '-' && s[7] == '-';
	for (int p = 0; p < doc->n_pages; p++) {
		const char *t = doc->pages[p].text;
		if ((s && s[0] && strstr(t, s)) || (!s && has_amount(t, num)) || (iso && has_date(t, s)))
			return p + 1;
	}
	return 0;
}

static struct json *field_of(const struct rt_result *r, const struct json *answer, const char *key,
                             const struct pdftext_doc *doc)
{
	struct json *f = json_new_object();
	const struct json *v = json_get(answer, key);
	size_t start = 0, end = 0;
	if (!v || json_is_null(v) || !value_span(r->text, key, &start, &end)) {
		json_add_null(f, "value");
		json_add_number(f, "confidence", 0);
		json_add_null(f, "page");
		return f;
	}
	g_autofree char *copy = json_format(v, false);
	struct json *dup = NULL;
	if (json_parse(copy, strlen(copy), &dup, NULL) == QERR_OK)
		json_add_item(f, "value", dup);
	double conf = r->tokens ? span_confidence(r, start, end) : 0.5;
	int page = find_page(doc, v);
	if (!page)
		conf *= 0.25;
	json_add_number(f, "confidence", round(conf * 1000) / 1000);
	if (page)
		json_add_number(f, "page", page);
	else
		json_add_null(f, "page");
	json_add_bool(f, "supported", page != 0);
	return f;
}

enum qerr modelfields_invoice(struct modelfields *mf, const struct pdftext_doc *doc, struct json **ret,
                              char **reterr)
{
	/* Start from about three bytes per token of the context left after the answer;
	 * when the tokenizer says the prompt still does not fit, halve the text. */
	size_t budget = (size_t)(mf->context > 2 * MAX_ANSWER_TOKENS ? mf->context - MAX_ANSWER_TOKENS : mf->context / 2) * 3;
	struct rt_result *r = NULL;
	char *err = NULL;
	enum rterror re = RTERROR_LIMIT;
	for (int tries = 0; re == RTERROR_LIMIT && tries < 8 && budget >= 64; tries++, budget /= 2) {
		g_autofree char *prompt = build_prompt(doc, budget);
		struct rt_request req = {.system = SYSTEM_PROMPT, .prompt = prompt, .schema = mf->schema,
		                         .max_tokens = MAX_ANSWER_TOKENS,
		                         .time_limit_ms = (int64_t)mf->time_limit_s * 1000};
		free(err);
		err = NULL;
		re = rt_generate(mf->model, &req, &r, &err);
	}
	if (re) {
		enum qerr e = qerr_set(reterr, rt_to_qerr(re), "model extraction failed: %s", err ? err : rterror_str(re));
		free(err);
		return e;
	}
	struct json *answer = NULL;
	enum qerr e = json_parse(r->text, r->text_len, &answer, reterr);
	if (!e) {
		struct json *root = json_new_object();
		json_add_string(root, "document_type", "invoice");
		json_add_string(root, "method", "model");
		struct json *fields = json_add_item(root, "fields", json_new_object());
		for (size_t i = 0; i < G_N_ELEMENTS(invoice_fields); i++)
			json_add_item(fields, invoice_fields[i], field_of(r, answer, invoice_fields[i], doc));
		struct json *stats = json_add_item(root, "model", json_new_object());
		json_add_number(stats, "prompt_tokens", r->n_prompt);
		json_add_number(stats, "generated_tokens", (double)r->n_tokens);
		json_add_string(stats, "stop", rt_stop_name(r->stop));
		json_free(answer);
		*ret = root;
	}
	rt_result_free(r);
	return e;
}
