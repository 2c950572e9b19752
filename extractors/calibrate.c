/* calibrate: the document's confidence from its fields, its checks and its pages (see calibrate.h). */
#include "extractors/calibrate.h"

#include <glib.h>
#include <math.h>
#include <string.h>

#include "core/json.h"

#define MAX_PAGE_TEXT ((size_t)1 << 20) /* longer page texts are looked at up to here */

/* A number written as a percentage: "19 %", "7%", "19,00 %", "5.5%". */
static const char PERCENT[] =
    "(?<![\\d.,])(\\d{1,3}(?:[.,]\\d{1,4})?)[ \\t]?%|%[ \\t]*:?[ \\t]*(\\d{1,3}(?:[.,]\\d{1,4})?)(?![\\d.,])";
/* Words that make an account or a VAT id on the page the buyer's (a direct debit, "Ihre USt-IdNr."),
 * not the supplier's. */
static const char BUYER_ACCOUNT[] =
    "k[äa]ufer|kunde|buyer|customer|client|acheteur|debtor|d[ée]biteur|lastschrift|direct\\s*debit|"
    "pr[ée]l[èe]vement|adeudo|addebito|incasso|ihrem\\s*konto|ihre|your|votre|vuestr|vostr";
/* A due-date phrase with a date after it, in the languages the reader knows. */
static const char DUE_PHRASE[] =
    "(?:\\bdue\\b|\\bpayable\\b|f[äa]llig|zahlbar|[ée]ch[ée]ance|vencimiento|scadenza|verval|te\\s+betalen)"
    "[^\\n]{0,50}?(?<!\\d)(?:\\d{1,2}[./]\\d{1,2}[./]\\d{2,4}|\\d{4}-\\d{2}-\\d{2})(?!\\d)";

static void add_reason(struct json *reasons, const char *text)
{
	if (reasons)
		json_append(reasons, json_string(text));
}

static bool has_value(const struct json *fields, const char *name)
{
	const struct json *v = json_get(json_get(fields, name), "value");
	if (!v || json_is_null(v))
		return false;
	g_autofree char *t = json_format(v, false);
	return strcmp(t, "[]") != 0 && strcmp(t, "\"\"") != 0;
}

static bool check_ok(const struct json *check)
{
	g_autofree char *ok = json_format(json_get(check, "ok"), false);
	return ok && strcmp(ok, "true") == 0;
}

/* The pages' text matches pattern (case-blind unless told). */
static bool pages_match(const struct calibrate_page *pages, int n, const char *pattern, bool caseless)
{
	g_autoptr(GRegex) re = g_regex_new(pattern, (caseless ? G_REGEX_CASELESS : 0) | G_REGEX_OPTIMIZE, 0, NULL);
	g_assert(re); /* the patterns are ours */
	for (int i = 0; i < n; i++)
		if (pages[i].text &&
		    g_regex_match_full(re, pages[i].text, (gssize)MIN(strlen(pages[i].text), MAX_PAGE_TEXT), 0, 0, NULL,
		                       NULL))
			return true;
	return false;
}

/* Whether rate is written as a percentage on one of the pages. */
static bool rate_written(const struct calibrate_page *pages, int n, double rate)
{
	g_autoptr(GRegex) re = g_regex_new(PERCENT, G_REGEX_OPTIMIZE, 0, NULL);
	g_assert(re);
	for (int i = 0; i < n; i++) {
		if (!pages[i].text)
			continue;
		g_autoptr(GMatchInfo) mi = NULL;
		gssize len = (gssize)MIN(strlen(pages[i].text), MAX_PAGE_TEXT);
		for (g_regex_match_full(re, pages[i].text, len, 0, 0, &mi, NULL); g_match_info_matches(mi);
		     g_match_info_next(mi, NULL)) {
			g_autofree char *num = g_match_info_fetch(mi, 1);
			if (!num || !num[0]) {
				g_free(num);
				num = g_match_info_fetch(mi, 2);
			}
			g_strdelimit(num, ",", '.');
			if (fabs(g_ascii_strtod(num, NULL) - rate) < 0.005)
				return true;
		}
	}
	return false;
}

/* Amounts: all three there so that they can be checked, and each tax line's rate written as one. */
static double amount_rules(const struct json *fields, const struct calibrate_page *pages, int n, struct json *reasons)
{
	double conf = 1;
	static const char *const amounts[] = {"net_amount", "tax_amount", "total_amount"};
	int present = 0, declared = 0;
	for (size_t i = 0; i < G_N_ELEMENTS(amounts); i++) {
		declared += json_get(fields, amounts[i]) != NULL;
		present += has_value(fields, amounts[i]);
	}
	if (declared == 3 && present < 3 && present > 0) {
		conf = CALIBRATE_UNCHECKED;
		add_reason(reasons,
		           "amounts: net, tax and total could not all be read, so they were not checked against "
		           "each other");
	}
	const struct json *lines = json_get(json_get(fields, "tax_lines"), "value");
	for (size_t i = 0; pages && i < json_array_size(lines); i++) {
		double rate = 0, tax = 0;
		const struct json *l = json_array_at(lines, i);
		if (!json_get_number(l, "rate", &rate) || (json_get_number(l, "tax", &tax) && rate == 0 && tax == 0))
			continue;
		if (!rate_written(pages, n, rate)) {
			conf = MIN(conf, CALIBRATE_UNCHECKED);
			g_autofree char *r =
			    g_strdup_printf("tax_lines: the rate %g is not written as a percentage on the "
			                    "page",
			                    rate);
			add_reason(reasons, r);
			break;
		}
	}
	return conf;
}

/* Whether the line of a page that holds value (compared without spaces), or the line above it,
 * says before it that the account is the buyer's. */
static bool buyer_account(const struct calibrate_page *pages, int n, const char *value)
{
	g_autoptr(GRegex) re = g_regex_new(BUYER_ACCOUNT, G_REGEX_CASELESS | G_REGEX_OPTIMIZE, 0, NULL);
	g_assert(re);
	for (int i = 0; i < n; i++) {
		g_auto(GStrv) lines = g_strsplit(pages[i].text ? pages[i].text : "", "\n", 10000);
		for (size_t k = 0; lines[k]; k++) {
			GString *flat = g_string_new(k > 0 ? lines[k - 1] : "");
			g_string_append_c(flat, ' ');
			g_string_append(flat, lines[k]);
			g_string_truncate(flat, MIN(flat->len, 2048));
			for (char *w = flat->str, *r = flat->str;; r++) {
				if (*r != ' ')
					*w++ = *r;
				if (!*r)
					break;
			}
			const char *at = strstr(flat->str, value);
			bool buyer = at && g_regex_match_full(re, flat->str, at - flat->str, 0, 0, NULL, NULL);
			g_string_free(flat, TRUE);
			if (buyer)
				return true;
		}
	}
	return false;
}

/* A line item whose description is only a label ("GTIN:"), its value left out. */
static bool label_only_item(const struct json *fields)
{
	const struct json *items = json_get(json_get(fields, "line_items"), "value");
	for (size_t i = 0; i < json_array_size(items); i++) {
		const char *d = json_get_string(json_array_at(items, i), "description");
		if (d && (!d[0] || d[strlen(d) - 1] == ':'))
			return true;
	}
	return false;
}

/* Values the page announces that were not read, or read from the wrong party. */
static double announced_rules(const struct json *fields, const struct calibrate_page *pages, int n,
                              struct json *reasons)
{
	double conf = 1;
	if (json_get(fields, "iban") && !has_value(fields, "iban") && pages_match(pages, n, "\\bIBAN\\b", false)) {
		conf = CALIBRATE_UNCHECKED;
		add_reason(reasons, "iban: the page names an IBAN, none was read");
	}
	static const char *const own[] = {"iban", "supplier_vat_id"};
	for (size_t i = 0; i < G_N_ELEMENTS(own); i++) {
		const char *v = json_get_string(json_get(fields, own[i]), "value");
		g_autofree char *flat = v ? g_strdup(v) : NULL;
		if (flat) {
			char *w = flat;
			for (const char *p = v; *p; p++)
				if (*p != ' ')
					*w++ = *p;
			*w = 0;
		}
		if (flat && flat[0] && buyer_account(pages, n, flat)) {
			conf = CALIBRATE_UNCHECKED;
			g_autofree char *r = g_strdup_printf("%s: the page gives it as the buyer's", own[i]);
			add_reason(reasons, r);
		}
	}
	if (label_only_item(fields)) {
		conf = CALIBRATE_UNCHECKED;
		add_reason(reasons, "line_items: a description is a label without its value");
	}
	if (json_get(fields, "due_date") && !has_value(fields, "due_date") && pages_match(pages, n, DUE_PHRASE, true)) {
		conf = CALIBRATE_UNCHECKED;
		add_reason(reasons, "due_date: the page gives a payment date, none was read");
	}
	return conf;
}

/* Key fields read by OCR. */
static double ocr_rule(const struct json *fields, const struct json *keys, const struct calibrate_page *pages, int n,
                       struct json *reasons)
{
	bool any_ocr = false;
	for (int i = 0; i < n; i++)
		any_ocr |= pages[i].ocr;
	if (!any_ocr)
		return 1;
	for (size_t i = 0; i < json_array_size(keys); i++) {
		const char *k = json_string_value(json_array_at(keys, i));
		double page = 0;
		if (!k || !has_value(fields, k))
			continue;
		bool known = json_get_number(json_get(fields, k), "page", &page) && page >= 1 && page <= n;
		if (!known || pages[(int)page - 1].ocr) {
			g_autofree char *r =
			    g_strdup_printf("%s: read by OCR, where a misread character passes every check", k);
			add_reason(reasons, r);
			return CALIBRATE_OCR;
		}
	}
	return 1;
}

double calibrate_document(const struct json *fields, const struct json *key_fields, const struct json *checks,
                          const struct calibrate_page *pages, int n, struct json *reasons)
{
	double conf = 1;
	for (size_t i = 0; i < json_array_size(key_fields); i++) {
		const char *k = json_string_value(json_array_at(key_fields, i));
		double c = 0;
		if (!k || !json_get_number(json_get(fields, k), "confidence", &c) || c <= 0 || !has_value(fields, k)) {
			g_autofree char *r = g_strdup_printf("%s: not found", k ? k : "?");
			add_reason(reasons, r);
			c = 0;
		}
		conf = MIN(conf, c);
	}
	for (size_t i = 0; i < json_array_size(checks); i++) {
		const struct json *c = json_array_at(checks, i);
		if (check_ok(c))
			continue;
		g_autofree char *r =
		    g_strdup_printf("%s: %s", json_get_string(c, "check"), json_get_string(c, "reason"));
		add_reason(reasons, r);
		conf = MIN(conf, CALIBRATE_FAILED);
	}
	/* each rule once: MIN() would evaluate its arguments twice */
	double amounts = amount_rules(fields, pages, n, reasons);
	double announced = pages && n > 0 ? announced_rules(fields, pages, n, reasons) : 1;
	double ocr = pages && n > 0 ? ocr_rule(fields, key_fields, pages, n, reasons) : 1;
	conf = MIN(conf, MIN(amounts, MIN(announced, ocr)));
	return CLAMP(conf, 0, 1);
}
