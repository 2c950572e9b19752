/* validate: arithmetic, dates and identifier formats. */
#include "extractors/validate.h"

#include <glib.h>
#include <math.h>
#include <string.h>

#include "core/json.h"

#define CENT 0.011

bool validate_iban(const char *iban)
{
	size_t n = iban ? strlen(iban) : 0;
	if (n < 15 || n > 34 || !g_ascii_isupper(iban[0]) || !g_ascii_isupper(iban[1]) || !g_ascii_isdigit(iban[2]) ||
	    !g_ascii_isdigit(iban[3]))
		return false;
	int rem = 0;
	for (size_t i = 0; i < n; i++) {
		char c = iban[(i + 4) % n];
		if (g_ascii_isdigit(c))
			rem = (rem * 10 + (c - '0')) % 97;
		else if (g_ascii_isupper(c))
			rem = (rem * 100 + (c - 'A' + 10)) % 97;
		else
			return false;
	}
	return rem == 1;
}

static bool full_match(const char *pattern, const char *text)
{
	g_autoptr(GRegex) re = g_regex_new(pattern, G_REGEX_ANCHORED | G_REGEX_DOLLAR_ENDONLY, 0, NULL);
	g_assert(re);
	return text && g_regex_match(re, text, 0, NULL);
}

bool validate_vat_id(const char *v)
{
	static const char *const formats[][2] = {
		{"AT", "^ATU\\d{8}$"}, {"BE", "^BE[01]\\d{9}$"}, {"DE", "^DE\\d{9}$"}, {"DK", "^DK\\d{8}$"},
		{"ES", "^ES[0-9A-Z]\\d{7}[0-9A-Z]$"}, {"FI", "^FI\\d{8}$"}, {"FR", "^FR[0-9A-HJ-NP-Z]{2}\\d{9}$"},
		{"GB", "^GB(?:\\d{9}|\\d{12}|GD\\d{3}|HA\\d{3})$"}, {"IE", "^IE\\d[0-9A-Z+*]\\d{5}[A-Z]{1,2}$"},
		{"IT", "^IT\\d{11}$"}, {"LU", "^LU\\d{8}$"}, {"NL", "^NL\\d{9}B\\d{2}$"}, {"PL", "^PL\\d{10}$"},
		{"PT", "^PT\\d{9}$"}, {"SE", "^SE\\d{10}01$"}, {"CH", "^CHE\\d{9}(?:MWST|TVA|IVA)?$"},
	};
	if (!v || strlen(v) < 4 || strlen(v) > 20)
		return false;
	for (size_t i = 0; i < G_N_ELEMENTS(formats); i++)
		if (strncmp(v, formats[i][0], 2) == 0)
			return full_match(formats[i][1], v);
	return false; /* a country we do not know is for a person to check */
}

bool validate_icd10(const char *code)
{
	return full_match("^[A-TV-Z][0-9][0-9AB](?:\\.[0-9A-TV-Z]{1,4})?$", code);
}

bool validate_date(const char *iso)
{
	if (!iso || strlen(iso) != 10 || iso[4] != '-' || iso[7] != '-')
		return false;
	int y = (int)g_ascii_strtoll(iso, NULL, 10), m = (int)g_ascii_strtoll(iso + 5, NULL, 10),
	    d = (int)g_ascii_strtoll(iso + 8, NULL, 10);
	return y >= 1900 && y <= 2200 && m >= 1 && m <= 12 && d >= 1 && d <= 31 &&
	       g_date_valid_dmy((GDateDay)d, (GDateMonth)m, (GDateYear)y);
}

static void add_check(struct json *checks, const char *name, bool ok, const char *fields, const char *reason)
{
	struct json *c = json_append(checks, json_new_object());
	json_add_string(c, "check", name);
	json_add_bool(c, "ok", ok);
	struct json *f = json_add_item(c, "fields", json_new_array());
	g_auto(GStrv) names = g_strsplit(fields, ",", -1);
	for (int i = 0; names[i]; i++)
		json_append(f, json_string(names[i]));
	json_add_string(c, "reason", reason);
}

static bool num(const struct json *values, const char *key, double *out)
{
	return json_get_number(values, key, out);
}

/* Sum of key over the objects of list; false when one lacks it. */
static bool sum_of(const struct json *list, const char *key, double *out, size_t *n)
{
	*out = 0;
	*n = json_array_size(list);
	for (size_t i = 0; i < *n; i++) {
		double v = 0;
		if (!json_get_number(json_array_at(list, i), key, &v))
			return false;
		*out += v;
	}
	return *n > 0;
}

static void check_sums(const struct json *v, struct json *checks)
{
	double net = 0, tax = 0, total = 0, s = 0;
	size_t n = 0;
	if (num(v, "net_amount", &net) && num(v, "tax_amount", &tax) && num(v, "total_amount", &total)) {
		bool ok = fabs(net + tax - total) < CENT;
		g_autofree char *r = g_strdup_printf("net %.2f + tax %.2f = %.2f, total %.2f", net, tax, net + tax, total);
		add_check(checks, "totals", ok, "net_amount,tax_amount,total_amount", r);
	}
	if (sum_of(json_get(v, "line_items"), "amount", &s, &n) && num(v, "net_amount", &net)) {
		bool ok = fabs(s - net) < CENT + 0.005 * (double)n;
		g_autofree char *r = g_strdup_printf("%zu line items sum to %.2f, net amount %.2f", n, s, net);
		add_check(checks, "line_items_sum", ok, "line_items,net_amount", r);
	}
	if (sum_of(json_get(v, "tax_lines"), "tax", &s, &n) && num(v, "tax_amount", &tax)) {
		bool ok = fabs(s - tax) < CENT + 0.005 * (double)n;
		g_autofree char *r = g_strdup_printf("tax lines sum to %.2f, tax amount %.2f", s, tax);
		add_check(checks, "tax_lines_sum", ok, "tax_lines,tax_amount", r);
	}
	if (sum_of(json_get(v, "items"), "amount", &s, &n) && num(v, "total", &total)) {
		bool ok = fabs(s - total) < CENT + 0.005 * (double)n;
		g_autofree char *r = g_strdup_printf("%zu items sum to %.2f, total %.2f", n, s, total);
		add_check(checks, "items_sum", ok, "items,total", r);
	}
}

static void check_line_arithmetic(const struct json *v, struct json *checks)
{
	const struct json *items = json_get(v, "line_items");
	size_t n = json_array_size(items), bad = 0, checked = 0, first_bad = 0;
	for (size_t i = 0; i < n; i++) {
		double q = 0, p = 0, a = 0;
		const struct json *it = json_array_at(items, i);
		if (!json_get_number(it, "quantity", &q) || !json_get_number(it, "unit_price", &p) ||
		    !json_get_number(it, "amount", &a))
			continue;
		checked++;
		if (fabs(q * p - a) > CENT + 0.001 * fabs(a) && !bad++)
			first_bad = i + 1;
	}
	if (!checked)
		return;
	g_autofree char *r = bad ? g_strdup_printf("%zu of %zu lines: quantity x unit price is not the amount (line %zu first)",
	                                           bad, checked, first_bad)
	                         : g_strdup_printf("%zu lines: quantity x unit price = amount", checked);
	add_check(checks, "line_item_arithmetic", bad == 0, "line_items", r);
}

static void check_order(const struct json *v, struct json *checks, const char *a, const char *b)
{
	const char *x = json_get_string(v, a), *y = json_get_string(v, b);
	if (!validate_date(x) || !validate_date(y))
		return;
	g_autofree char *name = g_strdup_printf("%s_before_%s", a, b);
	g_autofree char *fields = g_strdup_printf("%s,%s", a, b);
	g_autofree char *r = g_strdup_printf("%s %s, %s %s", a, x, b, y);
	add_check(checks, name, strcmp(x, y) <= 0, fields, r);
}

static void check_formats(const struct json *v, struct json *checks)
{
	static const char *const dates[] = {"issue_date", "due_date", "date", "date_of_birth", "admission_date",
	                                    "discharge_date", "effective_date"};
	for (size_t i = 0; i < G_N_ELEMENTS(dates); i++) {
		const char *d = json_get_string(v, dates[i]);
		if (d && !validate_date(d)) {
			g_autofree char *name = g_strdup_printf("%s_valid", dates[i]);
			add_check(checks, name, false, dates[i], "not a real date in YYYY-MM-DD form");
		}
	}
	const char *iban = json_get_string(v, "iban");
	if (iban)
		add_check(checks, "iban", validate_iban(iban), "iban",
		          validate_iban(iban) ? "check digits correct" : "check digits wrong or not an IBAN");
	const char *vat = json_get_string(v, "supplier_vat_id");
	if (vat)
		add_check(checks, "vat_id", validate_vat_id(vat), "supplier_vat_id",
		          validate_vat_id(vat) ? "matches its country's format" : "not in a known country's VAT number format");
	const struct json *diags = json_get(v, "diagnoses");
	size_t bad = 0;
	for (size_t i = 0; i < json_array_size(diags); i++)
		bad += validate_icd10(json_get_string(json_array_at(diags, i), "code")) ? 0 : 1;
	if (json_array_size(diags))
		add_check(checks, "icd10", bad == 0, "diagnoses",
		          bad ? "a diagnosis code is not in ICD-10 format" : "diagnosis codes in ICD-10 format");
}

struct json *validate_values(const struct json *values)
{
	struct json *checks = json_new_array();
	check_sums(values, checks);
	check_line_arithmetic(values, checks);
	check_order(values, checks, "issue_date", "due_date");
	check_order(values, checks, "date_of_birth", "admission_date");
	check_order(values, checks, "admission_date", "discharge_date");
	check_formats(values, checks);
	return checks;
}
