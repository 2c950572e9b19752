/* extract: sandboxed parsing, classification, extraction, validation, confidence. */
#include "extractors/extract.h"

#include <glib.h>
#include <math.h>
#include <string.h>

#include "core/json.h"
#include "extractors/calibrate.h"
#include "extractors/classify.h"
#include "extractors/doctype.h"
#include "extractors/einvoice.h"
#include "extractors/layout.h"
#include "extractors/learn.h"
#include "extractors/modelfields.h"
#include "extractors/pdftext.h"
#include "extractors/rules.h"
#include "extractors/validate.h"
#include "runtime/runtime.h"

static void add_page_summary(struct json *result, const struct pdftext_doc *doc)
{
	struct json *pages = json_add_item(result, "pages", json_new_array());
	for (int i = 0; i < doc->n_pages; i++) {
		struct json *p = json_append(pages, json_new_object());
		json_add_number(p, "page", i + 1);
		json_add_string(p, "method", doc->pages[i].method);
	}
	json_add_number(result, "page_count", doc->total_pages);
	/* what the parser repaired or skipped (a rebuilt cross-reference table, a
	 * truncated file), for the reviewer to know */
	if (doc->n_warnings) {
		struct json *w = json_add_item(result, "parse_warnings", json_new_array());
		for (uint32_t i = 0; i < doc->n_warnings; i++)
			json_append(w, json_string(doc->warnings[i]));
	}
}

static struct json *copy_of(const struct json *j)
{
	if (!j)
		return NULL;
	g_autofree char *t = json_format(j, false);
	struct json *c = NULL;
	return json_parse(t, strlen(t), &c, NULL) ? NULL : c;
}

struct json *extract_values(const struct json *result)
{
	const struct json *fields = json_get(result, "fields");
	struct json *v = json_new_object();
	const struct json *names = json_get(result, "field_names");
	for (size_t i = 0; i < json_array_size(names); i++) {
		const char *n = json_string_value(json_array_at(names, i));
		struct json *c = copy_of(json_get(json_get(fields, n), "value"));
		if (c)
			json_add_item(v, n, c);
		else
			json_add_null(v, n);
	}
	return v;
}

static bool same_value(const struct json *a, const struct json *b)
{
	if (!a || !b || json_is_null(a) || json_is_null(b))
		return false;
	g_autofree char *x = json_format(a, false);
	g_autofree char *y = json_format(b, false);
	if (json_string_value(a) && json_string_value(b))
		return g_ascii_strcasecmp(json_string_value(a), json_string_value(b)) == 0;
	return strcmp(x, y) == 0;
}

/* Per-field confidence factor from the checks: failed ones halve, passed cross-checks add 10%. */
static double check_factor(const struct json *checks, const char *field, GPtrArray *reasons)
{
	double f = 1;
	for (size_t i = 0; i < json_array_size(checks); i++) {
		const struct json *c = json_array_at(checks, i);
		const struct json *names = json_get(c, "fields");
		bool involved = false;
		for (size_t k = 0; k < json_array_size(names); k++)
			involved |= strcmp(json_string_value(json_array_at(names, k)), field) == 0;
		if (!involved)
			continue;
		g_autofree char *ok = json_format(json_get(c, "ok"), false);
		if (strcmp(ok, "true") != 0) {
			f *= 0.5;
			if (reasons)
				g_ptr_array_add(reasons, g_strdup_printf("%s: %s", json_get_string(c, "check"),
				                                         json_get_string(c, "reason")));
		} else if (json_array_size(names) > 1) {
			f *= 1.1;
		}
	}
	return f;
}

/* One output field: the chosen extractor's, with the combined confidence. */
static struct json *final_field(const struct json *primary, const struct json *other, const struct json *checks,
                                const char *name)
{
	struct json *o = json_new_object();
	const struct json *value = json_get(primary, "value");
	struct json *v = copy_of(value);
	if (v)
		json_add_item(o, "value", v);
	else
		json_add_null(o, "value");
	double conf = 0;
	json_get_number(primary, "confidence", &conf);
	bool has = value && !json_is_null(value);
	if (has && other) {
		bool agree = same_value(value, json_get(other, "value"));
		conf = agree ? 1 - (1 - conf) * 0.5 : conf * 0.8;
		json_add_bool(o, "agrees", agree);
	}
	if (has)
		conf = MIN(0.99, conf * check_factor(checks, name, NULL));
	json_add_number(o, "confidence", round(conf * 1000) / 1000);
	static const char *const keep[] = {"page", "box", "supported", "learned"};
	for (size_t i = 0; i < G_N_ELEMENTS(keep); i++) {
		struct json *k = copy_of(json_get(primary, keep[i]));
		if (k)
			json_add_item(o, keep[i], k);
	}
	return o;
}

static enum qerr pick_type(const struct doctypes *types, const struct pdftext_doc *doc,
                           const struct extract_options *opt, const struct doctype **ret, struct json *cls,
                           char **reterr)
{
	if (opt->doc_type && opt->doc_type[0]) {
		*ret = doctypes_find(types, opt->doc_type);
		if (!*ret)
			return qerr_set(reterr, QERR_BAD_INPUT, "unknown document type \"%s\"", opt->doc_type);
		json_add_string(cls, "method", "given");
		json_add_number(cls, "confidence", 1);
		return QERR_OK;
	}
	/* Keywords first; the model decides where they are not decisive. */
	struct classify_result r = classify_keywords(types, doc), m = {0};
	const char *method = "keywords";
	if (r.confidence < 0.5 && opt->model && modelfields_classify(opt->model, types, doc, &m, NULL) == QERR_OK) {
		r = m;
		method = "model";
	}
	*ret = doctypes_find(types, r.type);
	json_add_string(cls, "method", method);
	json_add_number(cls, "confidence", round(r.confidence * 1000) / 1000);
	return QERR_OK;
}

/* The plain values of fields (schema order); a list that was not found is an empty list, as
 * the schema wants a list there. */
static struct json *values_of(const struct doctype *type, const struct json *fields)
{
	const struct json *names = doctype_fields(type);
	struct json *v = json_new_object();
	for (size_t i = 0; i < json_array_size(names); i++) {
		const char *n = json_string_value(json_array_at(names, i));
		struct json *c = copy_of(json_get(json_get(fields, n), "value"));
		g_autofree char *t = json_format(json_get(doctype_property(type, n), "type"), false);
		if (c && !json_is_null(c))
			json_add_item(v, n, c);
		else if (t && strcmp(t, "\"array\"") == 0)
			json_add_item(v, n, json_new_array());
		else
			json_add_null(v, n);
		if (c && json_is_null(c))
			json_free(c);
	}
	return v;
}

/* Combines rules and model results, validates, scores; takes nothing over. */
static struct json *combine(const struct doctype *type, const struct pdftext_doc *doc, const struct json *rules,
                            const struct json *model, struct json *cls, double threshold, struct json *extra_check)
{
	const struct json *primary = model ? model : rules;
	const struct json *other = model ? rules : NULL;
	const struct json *names = doctype_fields(type);
	struct json *root = json_new_object();
	json_add_string(root, "document_type", type->name);
	json_add_item(root, "classification", cls);
	json_add_string(root, "method", json_get_string(primary, "method"));
	struct json *values = values_of(type, json_get(primary, "fields"));
	struct json *checks = validate_values(values);
	if (extra_check)
		json_append(checks, extra_check);
	struct json *fields = json_add_item(root, "fields", json_new_object());
	for (size_t i = 0; i < json_array_size(names); i++) {
		const char *n = json_string_value(json_array_at(names, i));
		json_add_item(fields, n,
		              final_field(json_get(json_get(primary, "fields"), n),
		                          other ? json_get(json_get(other, "fields"), n) : NULL, checks, n));
	}
	json_add_item(root, "field_names", copy_of(names));
	/* The document: as sure as its least sure key field, lowered by calibrate.h's rules. */
	struct json *rr = json_new_array();
	int n = doc ? doc->n_pages : 0;
	g_autofree struct calibrate_page *pages = g_new0(struct calibrate_page, (gsize)MAX(n, 1));
	for (int i = 0; i < n; i++)
		pages[i] = (struct calibrate_page){doc->pages[i].text,
		                                   doc->pages[i].method && strcmp(doc->pages[i].method, "ocr") == 0};
	double doc_conf =
	    calibrate_document(fields, json_get(type->hints, "key_fields"), checks, doc ? pages : NULL, n, rr);
	bool failed = false;
	for (size_t i = 0; i < json_array_size(checks); i++) {
		g_autofree char *ok = json_format(json_get(json_array_at(checks, i), "ok"), false);
		failed |= strcmp(ok, "true") != 0;
	}
	if (doc_conf < threshold && !failed && json_array_size(rr) == 0) {
		g_autofree char *r =
		    g_strdup_printf("confidence %.2f below the auto-approval threshold %.2f", doc_conf, threshold);
		json_append(rr, json_string(r));
	}
	/* Whether the values, as a whole, are an instance of the type's schema. */
	g_autofree char *vtext = json_format(values, false);
	char *verr = NULL;
	json_add_bool(root, "schema_valid",
	              rt_schema_validate(type->schema_text, vtext, strlen(vtext), &verr) == RTERROR_OK);
	free(verr);
	json_add_item(root, "checks", checks);
	json_add_number(root, "confidence", round(doc_conf * 1000) / 1000);
	json_add_number(root, "auto_approve", threshold);
	json_add_string(root, "status", doc_conf >= threshold && !failed ? "approved" : "review");
	json_add_item(root, "review_reasons", rr);
	json_free(values);
	return root;
}

static double approve_threshold(const struct extract_options *opt)
{
	return opt->auto_approve_set ? opt->auto_approve : EXTRACT_DEFAULT_APPROVE;
}

/* Fields a reviewer corrected on this supplier's earlier documents, read where they were found. */
static void apply_learned(const struct doctype *type, const struct pdftext_doc *doc, const struct layout *lay,
                          const struct extract_options *opt, struct json *extracted)
{
	if (!opt->learned.lookup || strcmp(type->name, "invoice") != 0)
		return;
	struct json *values = values_of(type, json_get(extracted, "fields"));
	char **keys = learn_supplier_keys(values, doc);
	struct json *hints = keys[0] ? opt->learned.lookup(opt->learned.ctx, keys) : NULL;
	if (hints)
		learn_apply(extracted, lay, hints);
	json_free(hints);
	g_strfreev(keys);
	json_free(values);
}

enum qerr extract_fields(const struct pdftext_doc *doc, const struct extract_options *opt, struct json **ret_result,
                         char **reterr)
{
	const struct doctypes *types = NULL;
	enum qerr e = doctypes_shared(opt->schemas_dir, &types, reterr);
	if (e)
		return e;
	const struct doctype *type = NULL;
	struct json *cls = json_new_object();
	e = pick_type(types, doc, opt, &type, cls, reterr);
	if (e) {
		json_free(cls);
		return e;
	}
	struct layout *lay = layout_build(doc);
	struct json *rules = NULL, *model = NULL;
	e = rules_extract(type, doc, lay, &rules, reterr);
	if (!e && opt->model)
		e = modelfields_extract(opt->model, type, doc, lay, &model, reterr);
	if (!e)
		apply_learned(type, doc, lay, opt, model ? model : rules);
	if (!e) {
		*ret_result = combine(type, doc, rules, model, cls, approve_threshold(opt), NULL);
		struct json *stats = model ? copy_of(json_get(model, "model")) : NULL;
		if (stats)
			json_add_item(*ret_result, "model", stats);
	} else {
		json_free(cls);
	}
	json_free(rules);
	json_free(model);
	layout_free(lay);
	return e;
}

/* The e-invoice's values as an extractor result, each as sure as a machine-readable value is. */
static struct json *einvoice_result(const struct doctype *type, const struct json *values)
{
	struct json *r = json_new_object();
	json_add_string(r, "method", "einvoice");
	struct json *fields = json_add_item(r, "fields", json_new_object());
	const struct json *names = doctype_fields(type);
	for (size_t i = 0; i < json_array_size(names); i++) {
		const char *n = json_string_value(json_array_at(names, i));
		struct json *f = json_add_item(fields, n, json_new_object());
		struct json *v = copy_of(json_get(values, n));
		g_autofree char *text = v ? json_format(v, false) : NULL;
		bool has = v && !json_is_null(v) && strcmp(text, "[]") != 0;
		if (has)
			json_add_item(f, "value", v);
		else
			json_add_null(f, "value");
		if (!has)
			json_free(v);
		json_add_number(f, "confidence", has ? 0.99 : 0);
	}
	return r;
}

enum qerr extract_fields_einvoice(const struct pdftext_doc *doc, const char *xml, size_t len,
                                  const struct extract_options *opt, struct json **ret_result, char **reterr)
{
	const struct doctypes *types = NULL;
	enum qerr e = doctypes_shared(opt->schemas_dir, &types, reterr);
	const struct doctype *type = e ? NULL : doctypes_find(types, "invoice");
	struct json *values = NULL;
	const char *syntax = NULL;
	if (!e && !type)
		e = qerr_set(reterr, QERR_CONFIG, "no invoice document type");
	if (!e)
		e = einvoice_parse(xml, len, &values, &syntax, reterr);
	if (e)
		return e;
	struct layout *lay = layout_build(doc);
	struct json *rules = NULL;
	e = rules_extract(type, doc, lay, &rules, reterr);
	if (!e) {
		struct json *page = values_of(type, json_get(rules, "fields"));
		struct json *cls = json_new_object();
		json_add_string(cls, "method", "einvoice");
		json_add_string(cls, "syntax", syntax);
		json_add_number(cls, "confidence", 1);
		struct json *primary = einvoice_result(type, values);
		*ret_result =
		    combine(type, NULL, rules, primary, cls, approve_threshold(opt), einvoice_crosscheck(values, page));
		json_free(primary);
		json_free(page);
	}
	json_free(rules);
	json_free(values);
	layout_free(lay);
	return e;
}

/* The fields from the first embedded e-invoice that reads (the child sends the
 * likeliest first). *ret_result stays NULL when there is none, when a type other
 * than invoice was given, or when none reads; then the page is the source, and
 * *ret_refused (g_free) says which file was refused and why. */
static enum qerr from_attachments(const struct pdftext_doc *doc, const struct extract_options *opt,
                                  struct json **ret_result, char **ret_refused, char **reterr)
{
	*ret_result = NULL;
	*ret_refused = NULL;
	if (doc->n_attachments == 0 || opt->pages_only ||
	    (opt->doc_type && opt->doc_type[0] && strcmp(opt->doc_type, "invoice") != 0))
		return QERR_OK;
	for (uint32_t i = 0; i < doc->n_attachments; i++) {
		const struct pdftext_attachment *a = &doc->attachments[i];
		g_autofree char *err = NULL;
		enum qerr e = extract_fields_einvoice(doc, (const char *)a->data, a->len, opt, ret_result, &err);
		if (!e) {
			json_add_string(json_get(*ret_result, "classification"), "file", a->name ? a->name : "");
			g_clear_pointer(ret_refused, g_free);
			return QERR_OK;
		}
		if (qerr_group(e) != QERR_GROUP_PERMANENT) {
			g_clear_pointer(ret_refused, g_free);
			if (reterr)
				*reterr = g_steal_pointer(&err);
			return e;
		}
		if (!*ret_refused)
			*ret_refused = g_strdup_printf("embedded file \"%s\" is not a readable e-invoice: %s",
			                               a->name ? a->name : "", err ? err : qerr_str(e));
	}
	return QERR_OK;
}

/* An embedded e-invoice that does not read: the page's fields stand, and a person looks. */
static void note_refused(struct json *result, const char *refused)
{
	json_add_string(result, "einvoice_error", refused);
	json_set_item(result, "status", json_string("review"));
	struct json *rr = json_get(result, "review_reasons");
	g_autofree char *reason = g_strdup_printf("einvoice: %s", refused);
	json_append(rr, json_string(reason));
}

enum qerr extract_document(const void *pdf, size_t len, const struct extract_options *opt, struct json **ret_result,
                           struct pdftext_doc **ret_doc, char **reterr)
{
	struct sandbox_memory m;
	struct sandbox_source src = sandbox_source_memory(&m, pdf, len);
	return extract_document_from(&src, opt, ret_result, ret_doc, reterr);
}

enum qerr extract_document_from(const struct sandbox_source *src, const struct extract_options *opt,
                                struct json **ret_result, struct pdftext_doc **ret_doc, char **reterr)
{
	struct pdftext_doc *doc = NULL;
	enum qerr e = sandbox_extract_from(src, opt->password, &opt->limits, &doc, reterr);
	if (e)
		return e;
	struct json *result = NULL;
	g_autofree char *refused = NULL;
	e = from_attachments(doc, opt, &result, &refused, reterr);
	if (!e && !result)
		e = extract_fields(doc, opt, &result, reterr);
	if (!e && refused)
		note_refused(result, refused);
	if (e) {
		pdftext_doc_free(doc);
		return e;
	}
	add_page_summary(result, doc);
	*ret_result = result;
	if (ret_doc)
		*ret_doc = doc;
	else
		pdftext_doc_free(doc);
	return QERR_OK;
}
