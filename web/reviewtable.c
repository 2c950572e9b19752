/* reviewtable: the review screen's tables, checks and flow.
 *
 * A field whose value is a list of objects (line items, tax lines) is shown as
 * a table of inputs named table.FIELD.ROW.COLUMN, with a spare row to add one
 * and a Remove box per row, so it can be corrected without the script; the
 * hidden table.FIELD holds how many rows the form has (ROW < that count). The
 * columns and which of them are amounts come from the document type's schema.
 * On saving, the rows are read back in order, rows marked removed or left
 * wholly empty are dropped, and amounts are parsed ("1234,56" or "1234.56").
 *
 * The checks shown next to the fields are validate_values() run on the
 * current values, so they follow every correction. */
#include "web/internal.h"

#include <math.h>
#include <string.h>

#include "core/db.h"
#include "core/json.h"
#include "extractors/doctype.h"
#include "extractors/validate.h"

#define MAX_TABLE_ROWS 200
#define MAX_TABLE_COLUMNS 16

/* The schema of one row of field key, or NULL. */
static const struct json *row_schema(const char *schemas_dir, const char *doctype, const char *key)
{
	const struct doctypes *types = NULL;
	g_autofree char *err = NULL;
	if (!doctype || doctypes_shared(schemas_dir, &types, &err))
		return NULL;
	const struct doctype *t = doctypes_find(types, doctype);
	const struct json *prop = t ? doctype_property(t, key) : NULL;
	return json_get(json_get(prop, "items"), "properties");
}

static bool is_amount(const struct json *colschema)
{
	g_autofree char *t = json_format(json_get(colschema, "type"), false);
	return t && strstr(t, "\"number\"") != NULL;
}

/* The columns of a table: the schema's, or else the first row's keys. */
static GPtrArray *columns(const struct json *props, const struct json *rows)
{
	GPtrArray *cols = g_ptr_array_new();
	const struct json *src = props ? props : json_array_at(rows, 0);
	for (size_t i = 0; i < json_object_size(src) && cols->len < MAX_TABLE_COLUMNS; i++) {
		const char *k = NULL;
		json_object_at(src, i, &k);
		g_ptr_array_add(cols, (gpointer)k);
	}
	return cols;
}

char *review_number_text(double num)
{
	/* Cents as cents (12.50); anything finer in full, so saving the form unchanged changes nothing. */
	double cents = num * 100;
	if (fabs(num) < 1e13 && fabs(cents - round(cents)) < 1e-6)
		return g_strdup_printf("%.2f", num);
	char buf[G_ASCII_DTOSTR_BUF_SIZE];
	return g_strdup(g_ascii_formatd(buf, sizeof buf, "%.15g", num));
}

static void cell_text(GString *b, const struct json *v)
{
	double num;
	if (json_string_value(v)) {
		html_escape(b, json_string_value(v));
	} else if (json_number_value(v, &num)) {
		g_autofree char *t = review_number_text(num);
		g_string_append(b, t);
	}
}

static void table_row(GString *b, const char *key, size_t row, GPtrArray *cols, const struct json *props,
                      const struct json *values)
{
	g_string_append(b, "<tr>");
	for (guint c = 0; c < cols->len; c++) {
		const char *col = cols->pdata[c];
		bool amount = is_amount(json_get(props, col));
		g_string_append_printf(b, "<td><input name=\"table.%s.%zu.%s\" data-col=\"%s\"%s aria-label=\"", key,
		                       row, col, col, amount ? " inputmode=\"decimal\" class=\"num\"" : "");
		html_escape(b, col);
		g_string_append_printf(b, ", row %zu\" value=\"", row + 1);
		cell_text(b, json_get(values, col));
		g_string_append(b, "\"></td>");
	}
	g_string_append_printf(b,
	                       "<td><label class=\"rm\"><input type=\"checkbox\" name=\"table.%s.%zu._remove\""
	                       " value=\"1\"> Remove</label></td></tr>",
	                       key, row);
}

void review_table(GString *b, const char *schemas_dir, const char *doctype, const char *key, size_t fi,
                  const struct json *rows)
{
	const struct json *props = row_schema(schemas_dir, doctype, key);
	g_autoptr(GPtrArray) cols = columns(props, rows);
	size_t n = MIN(json_array_size(rows), (size_t)MAX_TABLE_ROWS - 1);
	g_string_append_printf(b, "<table class=\"rows\" id=\"f-%zu\" data-table=\"%s\"><thead><tr>", fi, key);
	for (guint c = 0; c < cols->len; c++) {
		g_string_append(b, "<th scope=\"col\">");
		html_escape(b, cols->pdata[c]);
		g_string_append(b, "</th>");
	}
	g_string_append(b, "<th scope=\"col\">Row</th></tr></thead><tbody>");
	for (size_t r = 0; r < n; r++)
		table_row(b, key, r, cols, props, json_array_at(rows, r));
	table_row(b, key, n, cols, props, NULL); /* the spare row */
	g_string_append_printf(b,
	                       "</tbody></table><input type=\"hidden\" name=\"table.%s\" value=\"%zu\">"
	                       "<button type=\"button\" class=\"secondary add-row\" data-table=\"%s\">Add row</button>",
	                       key, n + 1, key);
}

/* One posted row as an object, NULL when removed or empty; amounts parsed. */
static enum qerr row_from_form(struct web_req *req, const char *key, size_t r, GPtrArray *cols,
                               const struct json *props, struct json **ret, char **reterr)
{
	*ret = NULL;
	g_autofree char *rm = g_strdup_printf("table.%s.%zu._remove", key, r);
	if (web_form(req, rm))
		return QERR_OK;
	struct json *o = json_new_object();
	bool any = false;
	for (guint c = 0; c < cols->len; c++) {
		const char *col = cols->pdata[c];
		g_autofree char *name = g_strdup_printf("table.%s.%zu.%s", key, r, col);
		g_autofree char *v = g_strstrip(g_strdup(web_form(req, name) ? web_form(req, name) : ""));
		if (!v[0]) {
			json_add_null(o, col);
			continue;
		}
		any = true;
		if (!is_amount(json_get(props, col))) {
			json_add_string(o, col, v);
			continue;
		}
		g_strdelimit(v, ",", '.');
		char *end = NULL;
		double x = g_ascii_strtod(v, &end);
		if (end == v || *end) {
			json_free(o);
			return qerr_set(reterr, QERR_BAD_INPUT, "%s, row %zu: %s must be a number", key, r + 1, col);
		}
		json_add_number(o, col, x);
	}
	if (any)
		*ret = o;
	else
		json_free(o);
	return QERR_OK;
}

enum qerr review_tables_from_form(struct web_req *req, const char *doctype, const struct json *fields,
                                  struct json *changes, char **reterr)
{
	for (size_t i = 0; i < json_object_size(fields); i++) {
		const char *key = NULL;
		json_object_at(fields, i, &key);
		g_autofree char *marker = g_strdup_printf("table.%s", key);
		const char *count = web_form(req, marker);
		if (!count)
			continue;
		guint64 n = g_ascii_strtoull(count, NULL, 10);
		if (n > MAX_TABLE_ROWS)
			return qerr_set(reterr, QERR_TOO_LARGE, "%s: at most %d rows", key, MAX_TABLE_ROWS);
		const struct json *props = row_schema(web_opt(req)->schemas_dir, doctype, key);
		g_autoptr(GPtrArray) cols = columns(props, json_get(json_get(fields, key), "value"));
		struct json *rows = json_new_array();
		for (size_t r = 0; r < n; r++) {
			struct json *o = NULL;
			enum qerr e = row_from_form(req, key, r, cols, props, &o, reterr);
			if (e) {
				json_free(rows);
				return e;
			}
			if (o)
				json_append(rows, o);
		}
		json_set_item(changes, key, rows);
	}
	return QERR_OK;
}

struct json *review_checks(const struct json *fields)
{
	struct json *values = json_new_object();
	for (size_t i = 0; i < json_object_size(fields); i++) {
		const char *key = NULL;
		const struct json *f = json_object_at(fields, i, &key);
		const struct json *v = json_get(f, "value");
		json_add_item(values, key, v ? json_duplicate(v) : json_new_object());
	}
	struct json *checks = validate_values(values);
	json_free(values);
	return checks;
}

static bool failed(const struct json *check)
{
	if (!json_get(check, "ok"))
		return false;
	g_autofree char *ok = json_format(json_get(check, "ok"), false);
	return g_strcmp0(ok, "false") == 0;
}

static bool involves(const struct json *check, const char *key)
{
	const struct json *names = json_get(check, "fields");
	for (size_t i = 0; i < json_array_size(names); i++)
		if (g_strcmp0(json_string_value(json_array_at(names, i)), key) == 0)
			return true;
	return false;
}

/* The sums the script recomputes as values are typed: each has a place next to its fields even
 * while it holds, hidden then. */
static const char *const live_checks[] = {"totals", "line_items_sum", "tax_lines_sum", "line_item_arithmetic"};
static const char *const live_fields[][3] = {{"net_amount", "tax_amount", "total_amount"},
                                             {"line_items", "net_amount", NULL},
                                             {"tax_lines", "tax_amount", NULL},
                                             {"line_items", NULL, NULL}};

void review_checks_html(GString *b, const struct json *checks, const char *key)
{
	for (size_t c = 0; c < G_N_ELEMENTS(live_checks); c++) {
		bool mine = false;
		for (int k = 0; k < 3 && live_fields[c][k]; k++)
			mine = mine || strcmp(live_fields[c][k], key) == 0;
		const struct json *found = NULL;
		for (size_t i = 0; i < json_array_size(checks); i++)
			if (g_strcmp0(json_get_string(json_array_at(checks, i), "check"), live_checks[c]) == 0)
				found = json_array_at(checks, i);
		bool bad = found && failed(found);
		if (!mine)
			continue;
		g_string_append_printf(b, "<p class=\"check bad\" data-check=\"%s\" role=\"status\"%s>", live_checks[c],
		                       bad ? "" : " hidden");
		if (bad)
			html_escape(b, json_get_string(found, "reason"));
		g_string_append(b, "</p>");
	}
	for (size_t i = 0; i < json_array_size(checks); i++) { /* the other checks, as they stood */
		const struct json *c = json_array_at(checks, i);
		const char *name = json_get_string(c, "check");
		bool live = false;
		for (size_t k = 0; k < G_N_ELEMENTS(live_checks); k++)
			live = live || g_strcmp0(name, live_checks[k]) == 0;
		if (live || !failed(c) || !involves(c, key))
			continue;
		g_string_append(b, "<p class=\"check bad\">");
		html_escape(b, json_get_string(c, "reason"));
		g_string_append(b, "</p>");
	}
}

/* Documents that need a person: processed, not decided, not approved by the extraction. */
#define NEEDS_REVIEW                                                                                                   \
	"d.state = 'processed' AND d.review_state = 'pending' AND NOT coalesce(d.auto_approved, false)"                \
	" AND ($2::boolean OR d.uploaded_by = $3)"

int64_t review_next(struct web_req *req, int64_t id, int64_t *ret_left)
{
	char sid[24];
	g_snprintf(sid, sizeof sid, "%lld", (long long)id);
	bool all = users_allowed(req->who.role, USERS_PERM_DOC_VIEW);
	struct db_param p[3] = {DB_TEXT(sid), DB_TEXT(all ? "true" : "false"), DB_TEXT(req->who.actor)};
	struct db_res *res = NULL;
	int64_t next = 0;
	if (db_query(req->db,
	             "SELECT (SELECT d.id FROM documents d WHERE " NEEDS_REVIEW " AND d.id <> $1::bigint"
	             " ORDER BY d.id < $1::bigint, d.id LIMIT 1),"
	             " (SELECT count(*) FROM documents d WHERE " NEEDS_REVIEW " AND d.id <> $1::bigint)",
	             3, p, &res, NULL) == QERR_OK &&
	    db_res_rows(res) == 1) {
		next = db_res_isnull(res, 0, 0) ? 0 : db_res_int(res, 0, 0);
		if (ret_left)
			*ret_left = db_res_int(res, 0, 1);
	}
	db_res_free(res);
	return next;
}
