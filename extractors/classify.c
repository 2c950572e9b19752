/* classify: keyword scores per type. */
#include "extractors/classify.h"

#include <glib.h>
#include <string.h>

#include "core/json.h"
#include "extractors/doctype.h"
#include "extractors/pdftext.h"

#define CLASSIFY_PAGES 2
#define CLASSIFY_TEXT (64u << 10) /* bytes of text looked at */

/* Keywords found, plus half a point for each of the type's field labels that starts a line. */
static double score_of(const struct doctype *t, const char *text)
{
	const struct json *kw = json_get(t->hints, "keywords");
	double score = 0;
	for (size_t i = 0; i < json_array_size(kw); i++) {
		const char *p = json_string_value(json_array_at(kw, i));
		g_autoptr(GRegex) re = p ? g_regex_new(p, G_REGEX_CASELESS, 0, NULL) : NULL;
		if (re && g_regex_match(re, text, 0, NULL))
			score += 1;
	}
	const struct json *names = doctype_fields(t);
	for (size_t i = 0; i < json_array_size(names); i++) {
		const char *labels = json_get_string(doctype_field_hints(t, json_string_value(json_array_at(names, i))),
		                                     "labels");
		g_autofree char *p = labels ? g_strdup_printf("^\\s*(?:%s)(?![\\p{L}])", labels) : NULL;
		g_autoptr(GRegex) re = p ? g_regex_new(p, G_REGEX_CASELESS | G_REGEX_MULTILINE, 0, NULL) : NULL;
		if (re && g_regex_match(re, text, 0, NULL))
			score += 0.5;
	}
	return score;
}

struct classify_result classify_keywords(const struct doctypes *types, const struct pdftext_doc *doc)
{
	GString *text = g_string_new(NULL);
	for (int p = 0; p < doc->n_pages && p < CLASSIFY_PAGES && text->len < CLASSIFY_TEXT; p++) {
		g_string_append(text, doc->pages[p].text ? doc->pages[p].text : "");
		g_string_append_c(text, '\n');
	}
	if (text->len > CLASSIFY_TEXT)
		g_string_truncate(text, CLASSIFY_TEXT);
	if (!g_utf8_validate(text->str, -1, NULL)) {
		char *valid = g_utf8_make_valid(text->str, -1);
		g_string_assign(text, valid);
		g_free(valid);
	}
	struct classify_result r = {doctypes_count(types) ? doctypes_at(types, 0)->name : "invoice", 0};
	double best = 0, second = 0;
	for (size_t i = 0; i < doctypes_count(types); i++) {
		const struct doctype *t = doctypes_at(types, i);
		double s = score_of(t, text->str);
		if (s > best) {
			second = best;
			best = s;
			r.type = t->name;
		} else if (s > second) {
			second = s;
		}
	}
	g_string_free(text, TRUE);
	/* Sure when the winner leads clearly and has evidence enough (four points). */
	r.confidence = best > 0 ? CLAMP((1 - second / best) * MIN(best / 4, 1) * 1.5, 0, 1) : 0;
	return r;
}
