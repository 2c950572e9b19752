/* export: approved results as CSV or JSON Lines, corrections as training data. */
#include "web/export.h"

#include <glib.h>
#include <string.h>

#include "core/db.h"
#include "core/json.h"
#include "core/vault.h"
#include "pipeline/store.h"
#include "web/internal.h"

#define BATCH 200

int export_format_parse(const char *name, enum export_format *ret)
{
	static const char *const names[] = {"csv", "jsonl", "training"};
	for (int i = 0; i < EXPORT_FORMAT_COUNT; i++)
		if (name && strcmp(name, names[i]) == 0) {
			*ret = (enum export_format)i;
			return 1;
		}
	return 0;
}

static enum qerr open_json(struct db *db, const struct vault *v, int64_t id, const char *purpose, struct json **ret,
                           char **reterr)
{
	struct vault_dek *dek = NULL;
	struct vault_buf buf = {0};
	enum qerr e = store_dek(db, v, id, &dek, reterr);
	if (!e)
		e = store_get(db, dek, id, purpose, &buf, reterr);
	vault_dek_free(dek);
	if (!e)
		e = json_parse((const char *)buf.data, buf.len, ret, reterr);
	vault_buf_free(&buf);
	return e;
}

static char *open_text(struct db *db, const struct vault *v, int64_t id, const char *purpose)
{
	struct vault_dek *dek = NULL;
	struct vault_buf buf = {0};
	char *out = NULL;
	if (store_dek(db, v, id, &dek, NULL) == QERR_OK && store_get(db, dek, id, purpose, &buf, NULL) == QERR_OK)
		out = g_utf8_make_valid((const char *)buf.data, (gssize)buf.len);
	vault_dek_free(dek);
	vault_buf_free(&buf);
	return out;
}

static void csv_cell(GString *out, const char *text, bool first)
{
	if (!first)
		g_string_append_c(out, ',');
	bool formula = text[0] && strchr("=+-@\t\r", text[0]);
	g_string_append_c(out, '"');
	if (formula)
		g_string_append_c(out, '\'');
	for (const char *p = text; *p; p++) {
		if (*p == '"')
			g_string_append_c(out, '"');
		g_string_append_c(out, *p);
	}
	g_string_append_c(out, '"');
}

static char *value_text(const struct json *v)
{
	double num;
	if (json_string_value(v))
		return g_strdup(json_string_value(v));
	if (json_number_value(v, &num))
		return g_strdup_printf("%.17g", num);
	return g_strdup("");
}

/* {name: value} of a result's fields (json_free). */
static struct json *plain_fields(const struct json *result)
{
	struct json *out = json_new_object(), *fields = json_get(result, "fields");
	for (size_t i = 0; i < json_object_size(fields); i++) {
		const char *key = NULL;
		struct json *f = json_object_at(fields, i, &key);
		struct json *v = json_get(f, "value");
		json_add_item(out, key, v ? json_duplicate(v) : json_new_object());
	}
	return out;
}

struct run {
	struct db *db;
	const struct vault *v;
	enum export_format f;
	export_sink sink;
	void *ctx;
	GPtrArray *columns; /* CSV: field names, from the first document */
	int64_t count;
};

static void csv_header(struct run *r, const struct json *result, GString *out)
{
	static const char *const fixed[] = {"document_id", "file", "document_type", "approved_by", "approved_at"};
	r->columns = g_ptr_array_new_with_free_func(g_free);
	struct json *fields = json_get(result, "fields");
	for (size_t i = 0; i < json_object_size(fields); i++) {
		const char *key = NULL;
		json_object_at(fields, i, &key);
		g_ptr_array_add(r->columns, g_strdup(key));
	}
	for (size_t i = 0; i < G_N_ELEMENTS(fixed); i++)
		csv_cell(out, fixed[i], i == 0);
	for (guint i = 0; i < r->columns->len; i++)
		csv_cell(out, r->columns->pdata[i], false);
	g_string_append(out, "\r\n");
}

static void approved_line(struct run *r, struct db_res *res, int row, const struct json *result, GString *out)
{
	g_autofree char *file = open_text(r->db, r->v, db_res_int(res, row, 0), "filename");
	if (r->f == EXPORT_CSV) {
		if (!r->columns)
			csv_header(r, result, out);
		csv_cell(out, db_res_text(res, row, 0), true);
		csv_cell(out, file ? file : "", false);
		for (int c = 1; c < 4; c++)
			csv_cell(out, db_res_text(res, row, c), false);
		struct json *fields = json_get(result, "fields");
		for (guint i = 0; i < r->columns->len; i++) {
			g_autofree char *t = value_text(json_get(json_get(fields, r->columns->pdata[i]), "value"));
			csv_cell(out, t, false);
		}
		g_string_append(out, "\r\n");
		return;
	}
	struct json *o = json_new_object();
	json_add_number(o, "document_id", (double)db_res_int(res, row, 0));
	json_add_string(o, "file", file ? file : "");
	json_add_string(o, "document_type", db_res_text(res, row, 1));
	json_add_string(o, "approved_by", db_res_text(res, row, 2));
	json_add_string(o, "approved_at", db_res_text(res, row, 3));
	json_add_number(o, "version", (double)db_res_int(res, row, 4));
	json_add_item(o, "fields", plain_fields(result));
	g_autofree char *line = json_format(o, false);
	json_free(o);
	g_string_append_printf(out, "%s\n", line);
}

static char *page_text(struct run *r, int64_t id)
{
	struct json *doc = NULL;
	if (open_json(r->db, r->v, id, "text", &doc, NULL) != QERR_OK)
		return g_strdup("");
	struct json *pages = json_get(doc, "pages");
	GString *s = g_string_new(NULL);
	for (size_t i = 0; i < json_array_size(pages); i++) {
		const char *t = json_get_string(json_array_at(pages, i), "text");
		g_string_append_printf(s, "%s%s", i ? "\f" : "", t ? t : "");
	}
	json_free(doc);
	return g_string_free(s, FALSE);
}

static void training_line(struct run *r, int64_t id, const struct json *result, GString *out)
{
	g_autofree char *text = page_text(r, id);
	struct json *o = json_new_object();
	json_add_number(o, "document_id", (double)id);
	json_add_string(o, "input", text);
	json_add_item(o, "output", plain_fields(result));
	g_autofree char *line = json_format(o, false);
	json_free(o);
	g_string_append_printf(out, "%s\n", line);
	explicit_bzero(text, strlen(text));
}

static enum qerr one(struct run *r, struct db_res *res, int row, char **reterr)
{
	int64_t id = db_res_int(res, row, 0);
	struct json *result = NULL;
	enum qerr e = open_json(r->db, r->v, id, "result", &result, reterr);
	if (e)
		return e;
	GString *out = g_string_new(NULL);
	if (r->f == EXPORT_TRAINING)
		training_line(r, id, result, out);
	else
		approved_line(r, res, row, result, out);
	json_free(result);
	int rc = r->sink(r->ctx, out->str, out->len);
	explicit_bzero(out->str, out->len);
	g_string_free(out, TRUE);
	r->count++;
	return rc ? qerr_set(reterr, QERR_IO, "the export could not be written") : QERR_OK;
}

enum qerr export_run(struct db *db, const struct vault *v, enum export_format f, export_sink sink, void *ctx,
                     int64_t *ret_count, char **reterr)
{
	struct run r = {.db = db, .v = v, .f = f, .sink = sink, .ctx = ctx};
	const char *sql =
		f == EXPORT_TRAINING
			? "SELECT d.id, '', '', '', 0 FROM documents d WHERE d.id > $1::bigint AND d.state = 'processed'"
			  " AND d.review_state <> 'rejected' AND EXISTS (SELECT 1 FROM result_versions v WHERE"
			  " v.document_id = d.id) ORDER BY d.id LIMIT 200"
			: "SELECT d.id, coalesce(d.doc_type, ''), coalesce(" WEB_REVIEWED_BY ", ''),"
			  " to_char(d.reviewed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
			  " (SELECT coalesce(max(version), 1) FROM payloads p WHERE p.document_id = d.id AND p.purpose = 'result')"
			  " FROM documents d WHERE d.id > $1::bigint AND d.state = 'processed' AND " WEB_REVIEW_STATE " = 'approved'"
			  " ORDER BY d.id LIMIT 200";
	int64_t after = 0;
	enum qerr e = QERR_OK;
	for (;;) { /* keyset pages of BATCH documents */
		char a[24];
		g_snprintf(a, sizeof a, "%lld", (long long)after);
		struct db_param p[1] = {DB_TEXT(a)};
		struct db_res *res = NULL;
		e = db_query(db, sql, 1, p, &res, reterr);
		if (e)
			break;
		int n = db_res_rows(res);
		for (int i = 0; i < n && !e; i++)
			e = one(&r, res, i, reterr);
		if (n)
			after = db_res_int(res, n - 1, 0);
		db_res_free(res);
		if (e || n < BATCH)
			break;
	}
	if (r.columns)
		g_ptr_array_unref(r.columns);
	if (!e && ret_count)
		*ret_count = r.count;
	return e;
}
