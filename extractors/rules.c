/* rules: labelled-value patterns for invoices. */
#include "extractors/rules.h"

#include <glib.h>
#include <math.h>
#include <string.h>

#include "core/json.h"
#include "extractors/pdftext.h"

#define MAX_LINE 4096

enum field_kind { KIND_ID, KIND_DATE, KIND_AMOUNT };

struct field_rule {
	const char *name;
	enum field_kind kind;
	const char *label; /* a PCRE alternative matched case-insensitively at a word boundary */
	bool last;         /* prefer the last match in the document (totals) */
};

static const struct field_rule invoice_rules[] = {
	{"invoice_number", KIND_ID,
	 "invoice\\s*(?:no\\.?|number|num\\.?|nr\\.?|#)|rechnungs(?:nummer|-?nr\\.?)|"
	 "(?:num[ée]ro\\s+de\\s+)?facture\\s*(?:n[°o]\\.?|num[ée]ro)?|factuur(?:nummer|\\s*nr\\.?)|"
	 "n[úu]mero\\s+de\\s+factura|factura\\s*n[°ºo]\\.?",
	 false},
	{"issue_date", KIND_DATE,
	 "invoice\\s+date|date\\s+of\\s+issue|issue\\s+date|issued|rechnungsdatum|datum|date\\s+de\\s+facture|"
	 "date\\s+d'[ée]mission|factuurdatum|fecha(?:\\s+de\\s+(?:factura|emisi[óo]n))?|date",
	 false},
	{"due_date", KIND_DATE,
	 "due\\s+date|payment\\s+due|due\\s+by|f[äa]llig(?:keitsdatum|\\s+am)?|zahlbar\\s+bis|"
	 "date\\s+d'[ée]ch[ée]ance|[ée]ch[ée]ance|vervaldatum|fecha\\s+de\\s+vencimiento|vencimiento",
	 false},
	{"net_amount", KIND_AMOUNT,
	 "sub\\s*-?total|net\\s+amount|net\\s+total|total\\s+net|nettobetrag|netto(?:summe)?|total\\s+ht|"
	 "montant\\s+ht|totaal\\s+excl\\.?(?:\\s+btw)?|subtotaal|base\\s+imponible",
	 true},
	{"tax_amount", KIND_AMOUNT,
	 "(?:total\\s+)?(?:vat|tax|sales\\s+tax|mwst\\.?|ust\\.?|umsatzsteuer|tva|btw|iva)"
	 "(?!\\s*(?:id|no\\b|number|nr|reg|identification|-id))(?:\\s*\\(?\\d{1,2}(?:[.,]\\d+)?\\s*%\\)?)?",
	 true},
	{"total_amount", KIND_AMOUNT,
	 "grand\\s+total|total\\s+due|amount\\s+due|balance\\s+due|total\\s+amount|invoice\\s+total|"
	 "gesamtbetrag|rechnungsbetrag|gesamtsumme|total\\s+ttc|montant\\s+ttc|totaal(?:\\s+incl\\.?(?:\\s+btw)?)?|"
	 "importe\\s+total|total",
	 true},
};
#define N_RULES (sizeof invoice_rules / sizeof invoice_rules[0])

int rules_parse_amount(const char *text, double *ret)
{
	g_autoptr(GRegex) re = g_regex_new("(-?)\\s*(\\d{1,3}(?:[.,\\x{2019}' ]\\d{3})+(?:[.,]\\d{1,2})?|\\d+(?:[.,]\\d{1,2})?)",
	                                   G_REGEX_OPTIMIZE, 0, NULL);
	g_autoptr(GMatchInfo) mi = NULL;
	if (!g_regex_match(re, text, 0, &mi))
		return 0;
	g_autofree char *sign = g_match_info_fetch(mi, 1);
	g_autofree char *num = g_match_info_fetch(mi, 2);
	/* The decimal separator is the last '.' or ',' followed by one or two digits at the end. */
	GString *clean = g_string_new(NULL);
	size_t len = strlen(num);
	long dec = -1;
	for (long i = (long)len - 1; i >= 0 && i >= (long)len - 3; i--)
		if (num[i] == '.' || num[i] == ',') {
			dec = i;
			break;
		}
	for (size_t i = 0; i < len; i++) {
		if (g_ascii_isdigit(num[i]))
			g_string_append_c(clean, num[i]);
		else if ((long)i == dec)
			g_string_append_c(clean, '.');
	}
	double v = g_ascii_strtod(clean->str, NULL);
	g_string_free(clean, TRUE);
	*ret = sign[0] == '-' ? -v : v;
	return 1;
}

static const char *const month_names[][12] = {
	{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"},
	{"jan", "feb", "mär", "apr", "mai", "jun", "jul", "aug", "sep", "okt", "nov", "dez"},
	{"janv", "févr", "mars", "avr", "mai", "juin", "juil", "août", "sept", "oct", "nov", "déc"},
	{"jan", "feb", "maa", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec"},
	{"ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sep", "oct", "nov", "dic"},
};

static int month_of(const char *word)
{
	g_autofree char *w = g_utf8_strdown(word, -1);
	for (size_t l = 0; l < G_N_ELEMENTS(month_names); l++)
		for (int m = 0; m < 12; m++)
			if (g_str_has_prefix(w, month_names[l][m]))
				return m + 1;
	return 0;
}

static int valid_date(int y, int m, int d, char out[11])
{
	if (y < 1900 || y > 2200 || !g_date_valid_dmy((GDateDay)d, (GDateMonth)m, (GDateYear)y))
		return 0;
	g_snprintf(out, 11, "%04d-%02d-%02d", y, m, d);
	return 1;
}

int rules_parse_date(const char *text, char out[11])
{
	static const char *const patterns[] = {
		"(\\d{4})-(\\d{1,2})-(\\d{1,2})",                  /* ISO */
		"(\\d{1,2})[./](\\d{1,2})[./](\\d{4})",            /* day first, as in most of Europe */
		"(\\d{1,2})\\.?\\s+(\\p{L}+)\\.?\\s+(\\d{4})",     /* 14 March 2026, 14. März 2026 */
		"(\\p{L}+)\\.?\\s+(\\d{1,2}),?\\s+(\\d{4})",       /* March 14, 2026 */
	};
	for (size_t p = 0; p < G_N_ELEMENTS(patterns); p++) {
		g_autoptr(GRegex) re = g_regex_new(patterns[p], G_REGEX_OPTIMIZE, 0, NULL);
		g_autoptr(GMatchInfo) mi = NULL;
		if (!g_regex_match(re, text, 0, &mi))
			continue;
		g_autofree char *a = g_match_info_fetch(mi, 1);
		g_autofree char *b = g_match_info_fetch(mi, 2);
		g_autofree char *c = g_match_info_fetch(mi, 3);
		int ok = 0;
		if (p == 0)
			ok = valid_date((int)strtol(a, NULL, 10), (int)strtol(b, NULL, 10), (int)strtol(c, NULL, 10), out);
		else if (p == 1)
			ok = valid_date((int)strtol(c, NULL, 10), (int)strtol(b, NULL, 10), (int)strtol(a, NULL, 10), out);
		else if (p == 2)
			ok = valid_date((int)strtol(c, NULL, 10), month_of(b), (int)strtol(a, NULL, 10), out);
		else
			ok = valid_date((int)strtol(c, NULL, 10), month_of(a), (int)strtol(b, NULL, 10), out);
		if (ok)
			return 1;
	}
	return 0;
}

struct found {
	char *text; /* the value text after the label */
	int page;
	double confidence;
};

/* Finds rule's label in the page text and returns the remainder of that line,
 * or the next line when the label ends its line. */
static void scan_page(const struct field_rule *rule, GRegex *re, const char *text, int page, struct found *best)
{
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
	for (int i = 0; lines[i]; i++) {
		if (strlen(lines[i]) > MAX_LINE)
			continue;
		g_autoptr(GMatchInfo) mi = NULL;
		if (!g_regex_match(re, lines[i], 0, &mi))
			continue;
		int start = 0, end = 0;
		g_match_info_fetch_pos(mi, 0, &start, &end);
		const char *rest = lines[i] + end;
		while (*rest == ' ' || *rest == ':' || *rest == '\t' || *rest == '#')
			rest++;
		double conf = 0.85;
		if (!*rest && lines[i + 1]) {
			rest = lines[i + 1];
			conf = 0.7;
		}
		if (!*rest)
			continue;
		if (best->text && !rule->last)
			return;
		g_free(best->text);
		best->text = g_strdup(rest);
		best->page = page;
		best->confidence = conf;
		if (!rule->last)
			return;
	}
}

static void add_field(struct json *fields, const char *name, struct json *value, double conf, int page)
{
	struct json *f = json_add_item(fields, name, json_new_object());
	if (value) {
		json_add_item(f, "value", value);
		json_add_number(f, "confidence", conf);
		json_add_number(f, "page", page);
	} else {
		json_add_null(f, "value");
		json_add_number(f, "confidence", 0);
		json_add_null(f, "page");
	}
}

static struct json *value_of(const struct field_rule *rule, const char *text, double *conf)
{
	if (rule->kind == KIND_DATE) {
		char iso[11];
		if (!rules_parse_date(text, iso))
			return NULL;
		return json_string(iso);
	}
	if (rule->kind == KIND_AMOUNT) {
		double v = 0;
		if (!rules_parse_amount(text, &v))
			return NULL;
		return json_number(round(v * 100) / 100);
	}
	g_autoptr(GRegex) re = g_regex_new("^[A-Za-z0-9][A-Za-z0-9\\-/._]{0,63}", 0, 0, NULL);
	g_autoptr(GMatchInfo) mi = NULL;
	if (!g_regex_match(re, text, 0, &mi))
		return NULL;
	g_autofree char *id = g_match_info_fetch(mi, 0);
	if (!strpbrk(id, "0123456789"))
		*conf *= 0.6; /* identifiers nearly always carry digits */
	return json_string(id);
}

static const char *currency_code(const char *text)
{
	static const char *const codes[] = {"EUR", "USD", "GBP", "CHF", "SEK", "NOK", "DKK", "PLN", "CZK", "JPY", "CAD", "AUD"};
	for (size_t i = 0; i < G_N_ELEMENTS(codes); i++) {
		const char *p = strstr(text, codes[i]);
		if (p && (p == text || !g_ascii_isalpha(p[-1])) && !g_ascii_isalpha(p[3]))
			return codes[i];
	}
	if (strstr(text, "€"))
		return "EUR";
	if (strstr(text, "£"))
		return "GBP";
	if (strchr(text, '$'))
		return "USD";
	return NULL;
}

static bool is_heading(const char *line)
{
	static const char *const words[] = {"invoice", "rechnung", "facture", "factuur", "factura", "tax invoice", "receipt"};
	g_autofree char *l = g_utf8_strdown(line, -1);
	g_strstrip(l);
	for (size_t i = 0; i < G_N_ELEMENTS(words); i++)
		if (strcmp(l, words[i]) == 0)
			return true;
	return false;
}

/* The supplier usually heads the first page: its first line with letters that is
 * neither a heading like "INVOICE" nor a labelled value. */
static struct json *supplier_of(const struct pdftext_doc *doc, GRegex *const *labels)
{
	if (doc->n_pages == 0)
		return NULL;
	g_auto(GStrv) lines = g_strsplit(doc->pages[0].text, "\n", 40);
	for (int i = 0; lines[i]; i++) {
		char *l = g_strstrip(lines[i]);
		bool letters = false;
		for (const char *p = l; *p; p = g_utf8_next_char(p))
			letters |= g_unichar_isalpha(g_utf8_get_char(p));
		if (!letters || strlen(l) > 120 || is_heading(l))
			continue;
		bool labelled = false;
		for (size_t r = 0; r < N_RULES && !labelled; r++)
			labelled = g_regex_match(labels[r], l, 0, NULL);
		if (!labelled)
			return json_string(l);
	}
	return NULL;
}

enum qerr rules_invoice(const struct pdftext_doc *doc, struct json **ret, char **reterr)
{
	GRegex *labels[N_RULES];
	for (size_t r = 0; r < N_RULES; r++) {
		g_autofree char *pat = g_strdup_printf("^\\s*(?:%s)(?![\\p{L}])", invoice_rules[r].label);
		labels[r] = g_regex_new(pat, G_REGEX_CASELESS | G_REGEX_OPTIMIZE, 0, NULL);
		g_assert(labels[r]);
	}
	struct json *root = json_new_object();
	json_add_string(root, "document_type", "invoice");
	json_add_string(root, "method", "rules");
	struct json *fields = json_add_item(root, "fields", json_new_object());
	struct json *sup = supplier_of(doc, labels);
	add_field(fields, "supplier_name", sup, 0.5, 1);
	const char *currency = NULL;
	for (size_t r = 0; r < N_RULES; r++) {
		struct found best = {0};
		for (int p = 0; p < doc->n_pages; p++)
			scan_page(&invoice_rules[r], labels[r], doc->pages[p].text, p + 1, &best);
		double conf = best.confidence;
		struct json *v = best.text ? value_of(&invoice_rules[r], best.text, &conf) : NULL;
		if (best.text && invoice_rules[r].kind == KIND_AMOUNT && (!currency || r == N_RULES - 1)) {
			const char *c = currency_code(best.text);
			currency = c ? c : currency;
		}
		add_field(fields, invoice_rules[r].name, v, conf, best.page);
		g_free(best.text);
	}
	for (int p = 0; !currency && p < doc->n_pages; p++)
		currency = currency_code(doc->pages[p].text);
	add_field(fields, "currency", currency ? json_string(currency) : NULL, 0.8, 1);
	for (size_t r = 0; r < N_RULES; r++)
		g_regex_unref(labels[r]);
	(void)reterr;
	*ret = root;
	return QERR_OK;
}
