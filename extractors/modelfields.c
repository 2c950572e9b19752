/* modelfields: prompt building, constrained generation and confidence per field. */
#include "extractors/modelfields.h"

#include <gio/gio.h>
#include <glib.h>
#include <math.h>
#include <string.h>

#include "core/json.h"
#include "extractors/classify.h"
#include "extractors/doctype.h"
#include "extractors/layout.h"
#include "extractors/pdftext.h"
#include "extractors/rules.h"
#include "runtime/runtime.h"

#define MAX_ANSWER_TOKENS 768
#define MAX_CHUNKS 32
#define CLASSIFY_PROMPT 1500 /* bytes of text the classifier sees */

struct modelfields {
	struct rt_model *model;
	int context;
	int time_limit_s;
};

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

enum qerr modelfields_open(const struct modelfields_options *opt, struct modelfields **ret, char **reterr)
{
	struct modelfields *mf = g_new0(struct modelfields, 1);
	mf->context = opt->context > 0 ? opt->context : 4096;
	mf->time_limit_s = opt->time_limit_s > 0 ? opt->time_limit_s : 300;
	char *err = NULL;
	enum rterror re;
	if (opt->model_path && opt->model_path[0]) {
		struct rt_local_options lo = {.n_threads = opt->threads, .n_ctx = mf->context,
		                              .chat_template = opt->chat_template && opt->chat_template[0]
		                                                       ? opt->chat_template : NULL,
		                              .adapters = opt->adapters};
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
	g_free(mf);
}

/* Pages first.. as layout rows (cells apart by two spaces, so columns stay visible), with
 * page markers, cut to budget bytes; *next: the first page not included. */
void modelfields_request_parts(const struct doctype *type, char **system, char **head, char **tail)
{
	*system = g_strdup_printf("%s\n\nThe fields of a document of type %s, as a JSON Schema:\n%s", SYSTEM_PROMPT,
	                          type->name, type->schema_text);
	*head = g_strdup_printf("Return the %s fields of this document as JSON.\n\nDocument text:\n", type->name);
	*tail = g_strdup_printf("\nReturn the %s fields as JSON.", type->name);
}

/* The user's prompt for pages first..: the fixed head, as much text as budget allows, the tail. */
static char *build_prompt(const struct pdftext_doc *doc, const struct layout *lay, int first, size_t budget,
                          const char *head, const char *tail, int *next)
{
	GString *p = g_string_new(head);
	int i = first;
	for (; i < doc->n_pages && p->len < budget; i++) {
		GString *t = g_string_new(NULL);
		if (lay && i < lay->n_pages)
			for (size_t r = 0; r < lay->pages[i].n_rows; r++) {
				g_autofree char *row = layout_row_text(&lay->pages[i], r);
				g_string_append_printf(t, "%s\n", row);
			}
		else
			g_string_append(t, doc->pages[i].text ? doc->pages[i].text : "");
		size_t room = budget - p->len;
		if (t->len > room && i > first) { /* the next chunk starts with this page */
			g_string_free(t, TRUE);
			break;
		}
		g_string_append_printf(p, "--- page %d ---\n", i + 1);
		size_t len = t->len;
		if (len > room) {
			const char *cut = g_utf8_find_prev_char(t->str, t->str + room);
			len = cut ? (size_t)(cut - t->str) : 0;
		}
		g_string_append_len(p, t->str, (gssize)len);
		g_string_free(t, TRUE);
	}
	*next = i > first ? i : first + 1;
	g_string_append(p, tail);
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

/* Whether a scalar value occurs in text (dates and amounts in any written form). */
static bool occurs_in(const char *text, const struct json *value)
{
	const char *s = json_string_value(value);
	if (s) {
		bool iso = strlen(s) == 10 && s[4] == '-' && s[7] == '-';
		g_autofree char *lt = g_utf8_casefold(text, -1);
		g_autofree char *ls = g_utf8_casefold(s, -1);
		return (ls[0] && strstr(lt, ls)) || (iso && has_date(text, s));
	}
	g_autofree char *t = json_format(value, false);
	if (!t || !(g_ascii_isdigit(t[0]) || t[0] == '-'))
		return false;
	return has_amount(text, g_ascii_strtod(t, NULL));
}

/* Where a scalar value occurs: the first cell holding it, else its page (0: nowhere). */
static int find_value(const struct pdftext_doc *doc, const struct layout *lay, const struct json *value,
                      const struct layout_cell **cell)
{
	*cell = NULL;
	for (int p = 0; lay && p < lay->n_pages; p++)
		for (size_t i = 0; i < lay->pages[p].n_cells; i++)
			if (occurs_in(lay->pages[p].cells[i].text, value)) {
				*cell = &lay->pages[p].cells[i];
				return p + 1;
			}
	for (int p = 0; p < doc->n_pages; p++)
		if (doc->pages[p].text && occurs_in(doc->pages[p].text, value))
			return p + 1;
	return 0;
}

/* Share of a list's scalar values (items' properties too) found in the document. */
static double list_support(const struct pdftext_doc *doc, const struct layout *lay, const struct json *list)
{
	static const char *const keys[] = {"description", "amount", "code", "name", "dose", "tax", "merchant"};
	size_t n = 0, found = 0;
	const struct layout_cell *cell = NULL;
	for (size_t i = 0; i < json_array_size(list); i++) {
		const struct json *it = json_array_at(list, i);
		bool object = false;
		for (size_t k = 0; k < G_N_ELEMENTS(keys); k++) {
			const struct json *v = json_get(it, keys[k]);
			if (v && !json_is_null(v)) {
				object = true;
				n++;
				found += find_value(doc, lay, v, &cell) ? 1 : 0;
			}
		}
		if (!object && !json_is_null(it)) {
			n++;
			found += find_value(doc, lay, it, &cell) ? 1 : 0;
		}
	}
	return n ? (double)found / (double)n : 1;
}

static void add_box(struct json *f, const struct layout_cell *cell)
{
	if (!cell || !cell->has_box)
		return;
	struct json *b = json_add_item(f, "box", json_new_array());
	json_append(b, json_number(round(cell->box.x0 * 10) / 10));
	json_append(b, json_number(round(cell->box.y0 * 10) / 10));
	json_append(b, json_number(round(cell->box.x1 * 10) / 10));
	json_append(b, json_number(round(cell->box.y1 * 10) / 10));
}

static struct json *field_of(const struct rt_result *r, const struct json *answer, const char *key,
                             const struct pdftext_doc *doc, const struct layout *lay)
{
	struct json *f = json_new_object();
	const struct json *v = json_get(answer, key);
	size_t start = 0, end = 0;
	g_autofree char *copy = v ? json_format(v, false) : NULL;
	if (!v || json_is_null(v) || !copy || strcmp(copy, "[]") == 0 || !value_span(r->text, key, &start, &end)) {
		json_add_null(f, "value");
		json_add_number(f, "confidence", 0);
		return f;
	}
	struct json *dup = NULL;
	if (json_parse(copy, strlen(copy), &dup, NULL) == QERR_OK)
		json_add_item(f, "value", dup);
	double conf = r->tokens ? span_confidence(r, start, end) : 0.5;
	const struct layout_cell *cell = NULL;
	int page = 0;
	bool supported;
	if (copy[0] == '[') {
		double share = list_support(doc, lay, v);
		supported = share >= 0.999;
		conf *= 0.25 + 0.75 * share;
	} else {
		page = find_value(doc, lay, v, &cell);
		supported = page != 0;
		if (!supported)
			conf *= 0.25;
	}
	json_add_number(f, "confidence", round(conf * 1000) / 1000);
	if (page)
		json_add_number(f, "page", page);
	else
		json_add_null(f, "page");
	add_box(f, cell);
	json_add_bool(f, "supported", supported);
	return f;
}

/* One generation for pages first..; halves the text while the prompt does not fit. */
static enum rterror generate_chunk(struct modelfields *mf, const struct doctype *type, const struct pdftext_doc *doc,
                                   const struct layout *lay, int first, int *next, struct rt_result **r, char **err)
{
	/* Start from about three bytes per token of the context left after the answer. */
	size_t budget = (size_t)(mf->context > 2 * MAX_ANSWER_TOKENS ? mf->context - MAX_ANSWER_TOKENS : mf->context / 2) * 3;
	enum rterror re = RTERROR_LIMIT;
	g_autofree char *system = NULL, *head = NULL, *tail = NULL;
	modelfields_request_parts(type, &system, &head, &tail);
	/* the prompt's start (system text with the schema, instructions) is the same for every
	 * document of the type, so the runtime evaluates it once and keeps its KV cache; in a
	 * small context the schema is left to the constraint alone, to leave room for the text */
	if (strlen(system) > budget / 3) {
		g_free(system);
		system = g_strdup(SYSTEM_PROMPT);
	}
	budget = budget > strlen(system) + 64 ? budget - strlen(system) : 64;
	for (int tries = 0; re == RTERROR_LIMIT && tries < 8 && budget >= 64; tries++, budget /= 2) {
		g_autofree char *prompt = build_prompt(doc, lay, first, budget, head, tail, next);
		struct rt_request req = {.system = system, .prompt = prompt, .schema = type->schema_text,
		                         .max_tokens = MAX_ANSWER_TOKENS,
		                         .time_limit_ms = (int64_t)mf->time_limit_s * 1000};
		free(*err);
		*err = NULL;
		re = rt_generate(mf->model, &req, r, err);
	}
	return re;
}

static bool same_json(const struct json *a, const struct json *b)
{
	g_autofree char *x = json_format(a, false);
	g_autofree char *y = json_format(b, false);
	return x && y && strcmp(x, y) == 0;
}

/* Folds a chunk's field into the merged one: first non-null scalar; lists joined, an
 * item repeated at the boundary (a line split by a page break) kept once. */
static void merge_field(struct json *fields, const char *key, struct json *f, struct json **slot)
{
	(void)fields;
	const struct json *v = json_get(f, "value");
	if (!*slot) {
		*slot = f;
		return;
	}
	const struct json *have = json_get(*slot, "value");
	if (have && !json_is_null(have) && json_array_size(have) > 0 && json_array_size(v) > 0) {
		struct json *joined = json_new_array();
		for (size_t i = 0; i < json_array_size(have); i++) {
			g_autofree char *t = json_format(json_array_at(have, i), false);
			struct json *c = NULL;
			if (json_parse(t, strlen(t), &c, NULL) == QERR_OK)
				json_append(joined, c);
		}
		for (size_t i = 0; i < json_array_size(v); i++) {
			if (i == 0 && same_json(json_array_at(v, 0), json_array_at(have, json_array_size(have) - 1)))
				continue;
			g_autofree char *t = json_format(json_array_at(v, i), false);
			struct json *c = NULL;
			if (json_parse(t, strlen(t), &c, NULL) == QERR_OK)
				json_append(joined, c);
		}
		double c1 = 0, c2 = 0;
		json_get_number(*slot, "confidence", &c1);
		json_get_number(f, "confidence", &c2);
		struct json *m = json_new_object();
		json_add_item(m, "value", joined);
		json_add_number(m, "confidence", MIN(c1, c2));
		json_free(*slot);
		json_free(f);
		*slot = m;
		(void)key;
		return;
	}
	if ((!have || json_is_null(have)) && v && !json_is_null(v)) {
		json_free(*slot);
		*slot = f;
		return;
	}
	json_free(f);
}

enum qerr modelfields_extract(struct modelfields *mf, const struct doctype *type, const struct pdftext_doc *doc,
                              const struct layout *lay, struct json **ret, char **reterr)
{
	const struct json *names = doctype_fields(type);
	size_t n = json_array_size(names);
	struct json **slots = g_new0(struct json *, MAX(n, 1));
	int prompt_tokens = 0, generated = 0, chunks = 0;
	double gen_ms = 0;
	enum qerr e = QERR_OK;
	for (int first = 0; !e && chunks < MAX_CHUNKS && (first < doc->n_pages || chunks == 0); chunks++) {
		struct rt_result *r = NULL;
		char *err = NULL;
		int next = first + 1;
		enum rterror re = generate_chunk(mf, type, doc, lay, first, &next, &r, &err);
		if (re) {
			e = qerr_set(reterr, rt_to_qerr(re), "model extraction failed: %s", err ? err : rterror_str(re));
			free(err);
			break;
		}
		struct json *answer = NULL;
		e = json_parse(r->text, r->text_len, &answer, reterr);
		for (size_t i = 0; !e && i < n; i++) {
			const char *k = json_string_value(json_array_at(names, i));
			merge_field(NULL, k, field_of(r, answer, k, doc, lay), &slots[i]);
		}
		prompt_tokens += r->n_prompt;
		/* a remote server reports no tokens, only its count through the rate */
		generated += r->n_tokens ? (int)r->n_tokens : (int)lround(r->gen_tps * r->gen_ms / 1e3);
		gen_ms += r->gen_ms;
		json_free(answer);
		rt_result_free(r);
		first = next;
	}
	if (!e) {
		struct json *root = json_new_object();
		json_add_string(root, "document_type", type->name);
		json_add_string(root, "method", "model");
		struct json *fields = json_add_item(root, "fields", json_new_object());
		for (size_t i = 0; i < n; i++) {
			json_add_item(fields, json_string_value(json_array_at(names, i)), slots[i]);
			slots[i] = NULL;
		}
		struct json *stats = json_add_item(root, "model", json_new_object());
		json_add_number(stats, "prompt_tokens", prompt_tokens);
		json_add_number(stats, "generated_tokens", generated);
		json_add_number(stats, "chunks", chunks);
		json_add_number(stats, "generation_seconds", round(gen_ms) / 1e3);
		*ret = root;
	}
	for (size_t i = 0; i < n; i++)
		json_free(slots[i]);
	g_free(slots);
	return e;
}

enum qerr modelfields_classify(struct modelfields *mf, const struct doctypes *types, const struct pdftext_doc *doc,
                               struct classify_result *ret, char **reterr)
{
	struct json *schema = json_new_object();
	json_add_string(schema, "type", "object");
	struct json *props = json_add_item(schema, "properties", json_new_object());
	struct json *dt = json_add_item(props, "document_type", json_new_object());
	struct json *names = json_add_item(dt, "enum", json_new_array());
	for (size_t i = 0; i < doctypes_count(types); i++)
		json_append(names, json_string(doctypes_at(types, i)->name));
	json_append(json_add_item(schema, "required", json_new_array()), json_string("document_type"));
	g_autofree char *schema_text = json_format(schema, false);
	json_free(schema);
	GString *prompt = g_string_new("Which kind of document is this?\n");
	const char *t = doc->n_pages > 0 && doc->pages[0].text ? doc->pages[0].text : "";
	const char *cut = strlen(t) > CLASSIFY_PROMPT ? g_utf8_find_prev_char(t, t + CLASSIFY_PROMPT) : NULL;
	g_string_append_len(prompt, t, cut ? cut - t : (gssize)strlen(t));
	struct rt_request req = {.system = SYSTEM_PROMPT, .prompt = prompt->str, .schema = schema_text, .max_tokens = 32,
	                         .time_limit_ms = (int64_t)mf->time_limit_s * 1000};
	struct rt_result *r = NULL;
	char *err = NULL;
	enum rterror re = rt_generate(mf->model, &req, &r, &err);
	g_string_free(prompt, TRUE);
	if (re) {
		enum qerr e = qerr_set(reterr, rt_to_qerr(re), "model classification failed: %s", err ? err : rterror_str(re));
		free(err);
		return e;
	}
	struct json *answer = NULL;
	enum qerr e = json_parse(r->text, r->text_len, &answer, reterr);
	const struct doctype *d = e ? NULL : doctypes_find(types, json_get_string(answer, "document_type"));
	if (d) {
		ret->type = d->name;
		size_t s = 0, end = 0;
		ret->confidence = r->tokens && value_span(r->text, "document_type", &s, &end) ? span_confidence(r, s, end) : 0.5;
	} else if (!e) {
		e = qerr_set(reterr, QERR_MODEL, "model classification gave no known type");
	}
	json_free(answer);
	rt_result_free(r);
	return e;
}

enum qerr modelfields_invoice(struct modelfields *mf, const struct pdftext_doc *doc, struct json **ret,
                              char **reterr)
{
	const struct doctypes *types = NULL;
	enum qerr e = doctypes_shared(NULL, &types, reterr);
	if (e)
		return e;
	struct layout *lay = layout_build(doc);
	e = modelfields_extract(mf, doctypes_find(types, "invoice"), doc, lay, ret, reterr);
	layout_free(lay);
	return e;
}
