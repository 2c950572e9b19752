/* evaluate: matching and counting. */
#include "extractors/evaluate.h"

#include <glib.h>
#include <math.h>
#include <string.h>

#include "core/json.h"
#include "extractors/rules.h"

#define EVAL_MAX_LIST 2000

static const char *const HEADER[] = {"invoice_number", "issue_date", "due_date",   "supplier_name",
                                     "currency",       "net_amount", "tax_amount", "total_amount"};

struct counts {
	long tp, fp, fn;
};

/* A document's verdict, to tell what other thresholds would have approved. */
struct verdict {
	double confidence;
	bool checks_passed, wrong, wrong_header;
};

struct eval {
	GHashTable *by_key; /* char * -> struct counts * */
	GPtrArray *order;   /* keys in first-seen order (borrowed from by_key) */
	struct eval_totals t;
	GArray *verdicts; /* struct verdict, one per document */
};

struct eval *eval_new(void)
{
	struct eval *ev = g_new0(struct eval, 1);
	ev->by_key = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	ev->order = g_ptr_array_new();
	ev->verdicts = g_array_new(FALSE, TRUE, sizeof(struct verdict));
	ev->t.threshold = -1;
	return ev;
}

void eval_free(struct eval *ev)
{
	if (!ev)
		return;
	g_hash_table_destroy(ev->by_key);
	g_ptr_array_free(ev->order, TRUE);
	g_array_free(ev->verdicts, TRUE);
	g_free(ev);
}

static struct counts *counts_of(struct eval *ev, const char *key)
{
	struct counts *c = g_hash_table_lookup(ev->by_key, key);
	if (!c) {
		char *k = g_strdup(key);
		c = g_new0(struct counts, 1);
		g_hash_table_insert(ev->by_key, k, c);
		g_ptr_array_add(ev->order, k);
	}
	return c;
}

static char *norm_text(const char *s)
{
	g_autofree char *f = g_utf8_casefold(s, -1);
	GString *o = g_string_new(NULL);
	bool space = false;
	for (const char *p = f; *p; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);
		if (g_unichar_isspace(c)) {
			space = o->len > 0;
			continue;
		}
		if (space)
			g_string_append_c(o, ' ');
		space = false;
		g_string_append_unichar(o, c);
	}
	return g_string_free(o, FALSE);
}

static bool number_of(const struct json *j, double *out)
{
	const char *s = json_string_value(j);
	if (s)
		return rules_parse_amount(s, out);
	g_autofree char *t = json_format(j, false);
	if (!t || !(g_ascii_isdigit(t[0]) || t[0] == '-'))
		return false;
	*out = g_ascii_strtod(t, NULL);
	return true;
}

static bool is_iso_date(const char *s)
{
	return s && strlen(s) == 10 && g_ascii_isdigit(s[0]) && s[4] == '-' && s[7] == '-';
}

bool eval_same(const struct json *expected, const struct json *got)
{
	if (!expected || !got || json_is_null(expected) || json_is_null(got))
		return (!expected || json_is_null(expected)) && (!got || json_is_null(got));
	const char *es = json_string_value(expected), *gs = json_string_value(got);
	if (es) {
		if (!gs)
			return false;
		char d[11];
		if (is_iso_date(es))
			return rules_parse_date(gs, d) && strcmp(d, es) == 0;
		g_autofree char *a = norm_text(es);
		g_autofree char *b = norm_text(gs);
		return strcmp(a, b) == 0;
	}
	double x = 0, y = 0;
	if (number_of(expected, &x))
		return number_of(got, &y) && fabs(x - y) < 0.005;
	/* An object: every expected property equal. */
	g_autofree char *t = json_format(expected, false);
	if (t && t[0] == '{') {
		struct json *e = NULL;
		if (json_parse(t, strlen(t), &e, NULL))
			return false;
		bool same = true;
		/* The json helper has no key iteration; go through the text's keys. */
		g_autoptr(GRegex) re = g_regex_new("\"([^\"\\\\]+)\":", 0, 0, NULL);
		g_autoptr(GMatchInfo) mi = NULL;
		for (g_regex_match(re, t, 0, &mi); same && g_match_info_matches(mi); g_match_info_next(mi, NULL)) {
			g_autofree char *k = g_match_info_fetch(mi, 1);
			if (json_get(e, k))
				same = eval_same(json_get(e, k), json_get(got, k));
		}
		json_free(e);
		return same;
	}
	return false;
}

static void count_list(struct counts *c, const struct json *exp, const struct json *got)
{
	size_t ne = MIN(json_array_size(exp), (size_t)EVAL_MAX_LIST),
	       ng = MIN(json_array_size(got), (size_t)EVAL_MAX_LIST);
	bool *used = g_new0(bool, ng + 1);
	long matched = 0;
	for (size_t i = 0; i < ne; i++)
		for (size_t j = 0; j < ng; j++)
			if (!used[j] && eval_same(json_array_at(exp, i), json_array_at(got, j))) {
				used[j] = true;
				matched++;
				break;
			}
	c->tp += matched;
	c->fn += (long)ne - matched;
	c->fp += (long)ng - matched;
	g_free(used);
}

static bool is_list(const struct json *j)
{
	g_autofree char *t = j ? json_format(j, false) : NULL;
	return t && t[0] == '[';
}

static void count_field(struct counts *c, const struct json *exp, const struct json *got)
{
	bool has_exp = exp && !json_is_null(exp), has_got = got && !json_is_null(got);
	if (is_list(exp) || is_list(got)) {
		count_list(c, has_exp ? exp : NULL, has_got ? got : NULL);
		return;
	}
	if (has_exp && has_got && eval_same(exp, got))
		c->tp++;
	else {
		c->fn += has_exp;
		c->fp += has_got;
	}
}

static bool in_group(const char *key, const char *group);

static long errors_so_far(const struct eval *ev)
{
	long n = 0;
	for (guint i = 0; i < ev->order->len; i++) {
		const struct counts *c = g_hash_table_lookup(ev->by_key, g_ptr_array_index(ev->order, i));
		n += c->fp + c->fn;
	}
	return n;
}

static bool checks_passed(const struct json *result)
{
	const struct json *checks = json_get(result, "checks");
	for (size_t i = 0; i < json_array_size(checks); i++) {
		g_autofree char *ok = json_format(json_get(json_array_at(checks, i), "ok"), false);
		if (!ok || strcmp(ok, "true") != 0)
			return false;
	}
	return result != NULL;
}

/* Results valid for their schema, values flagged as unsupported, approvals and their errors. */
static void count_result(struct eval *ev, const struct json *result, long errors_before, long header_missed_before)
{
	struct verdict v = {.checks_passed = checks_passed(result),
	                    .wrong = errors_so_far(ev) > errors_before,
	                    .wrong_header = ev->t.header_total - ev->t.header_right > header_missed_before};
	json_get_number(result, "confidence", &v.confidence);
	g_array_append_val(ev->verdicts, v);
	double th = 0;
	if (json_get_number(result, "auto_approve", &th))
		ev->t.threshold = th;
	ev->t.documents++;
	g_autofree char *valid = json_format(json_get(result, "schema_valid"), false);
	ev->t.schema_valid += valid && strcmp(valid, "true") == 0;
	const struct json *fields = json_get(result, "fields");
	const struct json *names = json_get(result, "field_names");
	for (size_t i = 0; i < json_array_size(names); i++) {
		const struct json *f = json_get(fields, json_string_value(json_array_at(names, i)));
		const struct json *value = json_get(f, "value");
		if (!value || json_is_null(value))
			continue;
		ev->t.values++;
		g_autofree char *sup = json_format(json_get(f, "supported"), false);
		ev->t.unsupported += sup && strcmp(sup, "false") == 0;
	}
	const char *status = json_get_string(result, "status");
	if (status && strcmp(status, "approved") == 0) {
		ev->t.approved++;
		ev->t.approved_wrong += v.wrong;
		ev->t.approved_wrong_header += v.wrong_header;
	}
}

struct eval_totals eval_totals(const struct eval *ev)
{
	return ev->t;
}

static void count_header(struct eval *ev, const char *key, const struct json *exp, const struct json *got)
{
	if (!in_group(key, "invoice_header") || !exp || json_is_null(exp))
		return;
	ev->t.header_total++;
	ev->t.header_right += eval_same(exp, got);
}

/* Words that mark a language on an invoice; a page counts its hits per language. */
static const struct {
	const char *lang;
	const char *words[12];
} MARKERS[] = {
    {"de",
     {"rechnung", "und", "der", "die", "betrag", "datum", "summe", "mwst", "zahlbar", "gesamt", "bitte", "netto"}},
    {"en", {"invoice", "the", "and", "amount", "date", "total", "due", "please", "payment", "tax", "price", "of"}},
    {"fr", {"facture", "et", "le", "la", "montant", "date", "tva", "total", "prix", "paiement", "avoir", "du"}},
    {"es", {"factura", "el", "y", "importe", "fecha", "iva", "total", "precio", "pago", "los", "las", "del"}},
    {"it", {"fattura", "il", "e", "importo", "data", "iva", "totale", "prezzo", "pagamento", "della", "di", "per"}},
    {"nl", {"factuur", "en", "het", "een", "bedrag", "datum", "btw", "totaal", "prijs", "betaling", "van", "voor"}},
};

const char *eval_language(const char *text)
{
	long hits[G_N_ELEMENTS(MARKERS)] = {0};
	g_autofree char *low = g_utf8_strdown(text ? text : "", MIN(strlen(text ? text : ""), (size_t)1 << 20));
	g_auto(GStrv) words = g_regex_split_simple("[^[:alpha:]]+", low, G_REGEX_OPTIMIZE, 0);
	for (size_t w = 0; words && words[w]; w++)
		for (size_t l = 0; l < G_N_ELEMENTS(MARKERS); l++)
			for (size_t k = 0; k < G_N_ELEMENTS(MARKERS[l].words); k++)
				hits[l] += strcmp(words[w], MARKERS[l].words[k]) == 0;
	size_t best = 0;
	for (size_t l = 1; l < G_N_ELEMENTS(MARKERS); l++)
		if (hits[l] > hits[best])
			best = l;
	return hits[best] >= 3 ? MARKERS[best].lang : "?";
}

void eval_add(struct eval *ev, const struct json *expected, const struct json *result)
{
	long errors_before = errors_so_far(ev), header_missed_before = ev->t.header_total - ev->t.header_right;
	const char *et = json_get_string(expected, "document_type");
	const char *gt = json_get_string(result, "document_type");
	struct counts *dt = counts_of(ev, "document_type");
	bool right_type = et && gt && strcmp(et, gt) == 0;
	dt->tp += right_type;
	dt->fn += !right_type;
	dt->fp += !right_type && gt;
	const struct json *ef = json_get(expected, "fields");
	const struct json *gf = json_get(result, "fields");
	g_autofree char *t = json_format(ef, false);
	g_autoptr(GRegex) re = g_regex_new("\"([a-z0-9_]+)\":", 0, 0, NULL);
	g_autoptr(GMatchInfo) mi = NULL;
	/* Top-level keys of the expected fields: those at nesting depth one. */
	for (g_regex_match(re, t, 0, &mi); g_match_info_matches(mi); g_match_info_next(mi, NULL)) {
		int s = 0, e = 0;
		g_match_info_fetch_pos(mi, 0, &s, &e);
		int depth = 0;
		bool in_str = false;
		for (int i = 0; i < s; i++) {
			if (t[i] == '\\' && in_str) {
				i++;
				continue;
			}
			if (t[i] == '"')
				in_str = !in_str;
			else if (!in_str)
				depth += t[i] == '{' || t[i] == '[' ? 1 : t[i] == '}' || t[i] == ']' ? -1 : 0;
		}
		if (depth != 1)
			continue;
		g_autofree char *name = g_match_info_fetch(mi, 1);
		g_autofree char *key = g_strdup_printf("%s.%s", et ? et : "?", name);
		const struct json *got = right_type ? json_get(json_get(gf, name), "value") : NULL;
		count_field(counts_of(ev, key), json_get(ef, name), got);
		count_header(ev, key, json_get(ef, name), got);
	}
	count_result(ev, result, errors_before, header_missed_before);
}

static struct eval_score score_of(long tp, long fp, long fn)
{
	struct eval_score s = {tp, fp, fn, 0, 0, 0};
	s.precision = tp + fp ? (double)tp / (double)(tp + fp) : 0;
	s.recall = tp + fn ? (double)tp / (double)(tp + fn) : 0;
	s.f1 = s.precision + s.recall > 0 ? 2 * s.precision * s.recall / (s.precision + s.recall) : 0;
	return s;
}

static bool in_group(const char *key, const char *group)
{
	if (strcmp(group, "all") == 0)
		return strcmp(key, "document_type") != 0;
	if (strcmp(group, "invoice_line_items") == 0)
		return strcmp(key, "invoice.line_items") == 0;
	if (strcmp(group, "invoice_header") == 0 && g_str_has_prefix(key, "invoice."))
		for (size_t i = 0; i < G_N_ELEMENTS(HEADER); i++)
			if (strcmp(key + 8, HEADER[i]) == 0)
				return true;
	return false;
}

struct eval_score eval_score(const struct eval *ev, const char *key)
{
	struct counts *c = g_hash_table_lookup(ev->by_key, key);
	if (c)
		return score_of(c->tp, c->fp, c->fn);
	long tp = 0, fp = 0, fn = 0;
	for (guint i = 0; i < ev->order->len; i++) {
		const char *k = g_ptr_array_index(ev->order, i);
		if (!in_group(k, key))
			continue;
		c = g_hash_table_lookup(ev->by_key, k);
		tp += c->tp, fp += c->fp, fn += c->fn;
	}
	return score_of(tp, fp, fn);
}

static void row(FILE *out, const char *name, struct eval_score s)
{
	fprintf(out, "%-34s %6ld %6ld %6ld  %9.3f %6.3f %6.3f\n", name, s.tp, s.fp, s.fn, s.precision, s.recall, s.f1);
}

static gint by_name(gconstpointer a, gconstpointer b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Auto-approval at the threshold in force, and what others would have done. */
static void print_approvals(const struct eval *ev, FILE *out)
{
	const struct eval_totals *t = &ev->t;
	fprintf(out, "approved automatically: %ld of %ld documents, %ld of them with a wrong field", t->approved,
	        t->documents, t->approved_wrong);
	if (t->approved)
		fprintf(out, " (precision %.3f), %ld with a wrong header field",
		        1 - (double)t->approved_wrong / (double)t->approved, t->approved_wrong_header);
	if (t->threshold >= 0)
		fprintf(out, "; threshold %.2f", t->threshold);
	fprintf(out, "\n");
	if (!ev->verdicts->len)
		return;
	fprintf(out, "at other thresholds (documents whose checks pass and confidence reaches it): ");
	static const double ths[] = {0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95};
	for (size_t k = 0; k < G_N_ELEMENTS(ths); k++) {
		long n = 0, wrong = 0;
		for (guint i = 0; i < ev->verdicts->len; i++) {
			const struct verdict *v = &g_array_index(ev->verdicts, struct verdict, i);
			if (v->checks_passed && v->confidence >= ths[k] - 1e-9) {
				n++;
				wrong += v->wrong;
			}
		}
		fprintf(out, "%s%.2f: %ld (%ld wrong)", k ? ", " : "", ths[k], n, wrong);
	}
	fprintf(out, "\n");
}

void eval_print(const struct eval *ev, FILE *out, double per_minute)
{
	fprintf(out, "%-34s %6s %6s %6s  %9s %6s %6s\n", "field", "tp", "fp", "fn", "precision", "recall", "F1");
	g_autoptr(GPtrArray) keys = g_ptr_array_copy(ev->order, NULL, NULL);
	g_ptr_array_sort(keys, by_name);
	for (guint i = 0; i < keys->len; i++) {
		const char *k = g_ptr_array_index(keys, i);
		row(out, k, eval_score(ev, k));
	}
	fprintf(out, "\n");
	row(out, "invoice header fields", eval_score(ev, "invoice_header"));
	row(out, "invoice line items", eval_score(ev, "invoice_line_items"));
	row(out, "all fields", eval_score(ev, "all"));
	fprintf(out, "\nresults valid against their type's schema: %ld of %ld\n", ev->t.schema_valid, ev->t.documents);
	fprintf(out, "values flagged as not found in the document: %ld of %ld\n", ev->t.unsupported, ev->t.values);
	print_approvals(ev, out);
	if (per_minute > 0)
		fprintf(out, "%.1f documents per minute\n", per_minute);
}
