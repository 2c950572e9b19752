/* docs: document data for the pages and the API: uploads, results,
 * corrections and review decisions.
 *
 * A correction never changes a stored result: it seals a new version of the
 * result payload (purpose "result", version n + 1) and records who made it,
 * when and which fields changed (names only) in result_versions and the
 * audit log, in one transaction. Corrected fields get confidence 1 and
 * "corrected": true; their page stays. A correction sends a document back to
 * review ("pending"); approval and rejection apply to processed documents.
 * Where a corrected value is on the page, where it is is remembered for the
 * supplier (pipeline/learned.h) in the same transaction, so the supplier's
 * next document is read there. */
#include "web/internal.h"

#include <stdlib.h>
#include <string.h>

#include "core/audit.h"
#include "core/db.h"
#include "core/json.h"
#include "core/vault.h"
#include "extractors/doctype.h"
#include "extractors/pdftext.h"
#include "pipeline/learned.h"
#include "pipeline/store.h"
#include "runtime/jsonschema.h"

#define MAX_VALUE_CHARS 2000

static void id_text(int64_t id, char out[24]) { g_snprintf(out, 24, "%lld", (long long)id); }

bool docs_visible(struct web_req *req, int64_t id)
{
	char sid[24];
	id_text(id, sid);
	struct db_param p[1] = {DB_TEXT(sid)};
	struct db_res *res = NULL;
	if (db_query(req->db, "SELECT coalesce(uploaded_by, '') FROM documents WHERE id = $1::bigint", 1, p, &res,
	             NULL) != QERR_OK)
		return false;
	bool ok = db_res_rows(res) == 1 &&
	          (users_allowed(req->who.role, USERS_PERM_DOC_VIEW) || strcmp(db_res_text(res, 0, 0), req->who.actor) == 0);
	db_res_free(res);
	return ok;
}

enum qerr docs_audit(struct web_req *req, const char *action, const char *type, int64_t id, const char *outcome,
                     const char *detail, char **reterr)
{
	enum qerr e = db_begin(req->db, reterr);
	if (e)
		return e;
	struct audit_event ev = {.actor = req->who.actor, .action = action, .object_type = type, .object_id = id,
	                         .outcome = outcome, .client = req->client, .detail = detail};
	e = audit_append(req->db, &ev, reterr);
	if (!e)
		e = db_commit(req->db, reterr);
	if (e)
		db_rollback(req->db);
	return e;
}

enum qerr docs_payload(struct web_req *req, int64_t id, const char *purpose, struct vault_buf *ret, char **reterr)
{
	struct vault_dek *dek = NULL;
	enum qerr e = store_dek(req->db, web_vault(req), id, &dek, reterr);
	if (!e)
		e = store_get(req->db, dek, id, purpose, ret, reterr);
	vault_dek_free(dek);
	return e;
}

enum qerr docs_result(struct web_req *req, int64_t id, struct json **ret, int *ret_version, char **reterr)
{
	struct vault_buf buf = {0};
	enum qerr e = docs_payload(req, id, "result", &buf, reterr);
	if (e)
		return e;
	struct json *j = NULL;
	e = json_parse((const char *)buf.data, buf.len, &j, reterr);
	vault_buf_free(&buf);
	if (e)
		return e;
	char sid[24];
	id_text(id, sid);
	struct db_param p[1] = {DB_TEXT(sid)};
	struct db_res *res = NULL;
	e = db_query(req->db, "SELECT coalesce(max(version), 1) FROM payloads WHERE document_id = $1::bigint"
	             " AND purpose = 'result'", 1, p, &res, reterr);
	if (e) {
		json_free(j);
		return e;
	}
	if (ret_version)
		*ret_version = (int)db_res_int(res, 0, 0);
	db_res_free(res);
	*ret = j;
	return QERR_OK;
}

static bool same_value(const struct json *a, const struct json *b)
{
	double x, y;
	if (json_number_value(a, &x) && json_number_value(b, &y))
		return x == y;
	const char *s = json_string_value(a), *t = json_string_value(b);
	if (s && t)
		return strcmp(s, t) == 0;
	if (json_is_null(a) || json_is_null(b))
		return json_is_null(a) && json_is_null(b);
	if (s || t || json_number_value(a, &x) || json_number_value(b, &y))
		return false;
	g_autofree char *ja = json_format(a, false), *jb = json_format(b, false);
	return strcmp(ja, jb) == 0;
}

/* A table value (line items, tax lines, parties...) is taken only when it is
 * valid for the field's schema in the document's type: the property is
 * checked inside an object of its own, so that references to the type's
 * "$defs" still resolve. */
static enum qerr check_table(const char *schemas_dir, const struct json *result, const char *key,
                             const struct json *v, char **reterr)
{
	const char *tname = json_get_string(result, "document_type");
	const struct doctypes *types = NULL;
	g_autofree char *terr = NULL;
	if (doctypes_shared(schemas_dir, &types, &terr))
		return qerr_set(reterr, QERR_INTERNAL, "document types: %s", terr);
	const struct doctype *type = tname ? doctypes_find(types, tname) : NULL;
	const struct json *prop = type ? doctype_property(type, key) : NULL;
	if (!prop)
		return qerr_set(reterr, QERR_BAD_INPUT, "field \"%.64s\" must be a string, a number or null", key);
	struct json *wrap = json_new_object(), *props = json_new_object(), *inst = json_new_object();
	json_add_string(wrap, "type", "object");
	json_add_item(props, key, json_duplicate(prop));
	json_add_item(wrap, "properties", props);
	const char *defs_names[] = {"$defs", "definitions"};
	for (size_t i = 0; i < G_N_ELEMENTS(defs_names); i++) {
		const struct json *defs = json_get(type->schema, defs_names[i]);
		if (defs)
			json_add_item(wrap, defs_names[i], json_duplicate(defs));
	}
	json_add_item(inst, key, json_duplicate(v));
	g_autofree char *schema_text = json_format(wrap, false), *text = json_format(inst, false);
	json_free(wrap);
	json_free(inst);
	struct jsonschema *js = NULL;
	char *verr = NULL;
	enum qerr e = QERR_OK;
	if (jsonschema_compile(schema_text, strlen(schema_text), &js, &verr) != RTERROR_OK)
		e = qerr_set(reterr, QERR_INTERNAL, "schema of %s.%.64s: %s", tname, key, verr ? verr : "not usable");
	else if (jsonschema_validate(js, text, strlen(text), &verr) != RTERROR_OK)
		e = qerr_set(reterr, QERR_BAD_INPUT, "field \"%.64s\" does not match the %s schema: %s", key, tname,
		             verr ? verr : "invalid");
	jsonschema_free(js);
	free(verr);
	return e;
}

/* Builds the corrected result in place; *ret_names lists the fields that changed. */
static enum qerr apply_changes(const char *schemas_dir, struct json *result, const struct json *changes,
                               GString *names, char **reterr)
{
	struct json *fields = json_get(result, "fields");
	size_t n = json_object_size(changes);
	if (!fields || n == 0)
		return qerr_set(reterr, QERR_BAD_INPUT, "no fields to correct");
	for (size_t i = 0; i < n; i++) {
		const char *key = NULL;
		struct json *v = json_object_at(changes, i, &key);
		struct json *old = json_get(fields, key);
		if (!old)
			return qerr_set(reterr, QERR_BAD_INPUT, "the result has no field \"%.64s\"", key);
		const char *s = json_string_value(v);
		double num;
		if (!s && !json_number_value(v, &num) && !json_is_null(v)) {
			enum qerr e = check_table(schemas_dir, result, key, v, reterr);
			if (e)
				return e;
		}
		if (s && g_utf8_strlen(s, -1) > MAX_VALUE_CHARS)
			return qerr_set(reterr, QERR_TOO_LARGE, "field \"%.64s\" is longer than %d characters", key,
			                MAX_VALUE_CHARS);
		struct json *nv = json_duplicate(v);
		double was;
		if (s && json_number_value(json_get(old, "value"), &was)) { /* an amount stays a number */
			g_autofree char *t = g_strdelimit(g_strstrip(g_strdup(s)), ",", '.');
			char *end = NULL;
			double x = g_ascii_strtod(t, &end);
			if (end == t || *end)
				return qerr_set(reterr, QERR_BAD_INPUT, "field \"%.64s\" must be a number", key);
			json_free(nv);
			nv = json_number(x);
		}
		if (same_value(json_get(old, "value"), nv)) {
			json_free(nv);
			continue;
		}
		json_set_item(old, "value", nv);
		json_set_item(old, "confidence", json_number(1));
		if (!json_get(old, "corrected"))
			json_add_bool(old, "corrected", true);
		g_string_append_printf(names, "%s%s", names->len ? "," : "", key);
	}
	return QERR_OK;
}

static enum qerr save_version(struct web_req *req, int64_t id, const struct json *result, int version,
                              const char *names, char **reterr)
{
	g_autofree char *text = json_format(result, false);
	struct vault_dek *dek = NULL;
	enum qerr e = store_dek(req->db, web_vault(req), id, &dek, reterr);
	if (!e)
		e = store_put_version(req->db, dek, id, "result", version, text, strlen(text), reterr);
	vault_dek_free(dek);
	explicit_bzero(text, strlen(text));
	if (e)
		return e;
	char sid[24], ver[16];
	id_text(id, sid);
	g_snprintf(ver, sizeof ver, "%d", version);
	struct db_param p[4] = {DB_TEXT(sid), DB_TEXT(ver), DB_TEXT(req->who.actor), DB_TEXT(names)};
	e = db_query(req->db, "INSERT INTO result_versions (document_id, version, actor, fields) VALUES"
	             " ($1::bigint, $2::int, $3, $4)", 4, p, NULL, reterr);
	if (!e)
		e = db_query(req->db, "UPDATE documents SET review_state = 'pending', reviewed_by = NULL, reviewed_at = NULL,"
		             " auto_approved = false"
		             " WHERE id = $1::bigint", 1, p, NULL, reterr);
	return e;
}

/* Remembers where the corrected values are on the page, for the supplier's next documents. */
static enum qerr learn_correction(struct web_req *req, int64_t id, const struct json *result, const char *names,
                                  char **reterr)
{
	struct vault_dek *dek = NULL;
	struct vault_buf text = {0};
	struct json *tj = NULL;
	struct pdftext_doc *doc = NULL;
	enum qerr e = store_dek(req->db, web_vault(req), id, &dek, reterr);
	if (!e)
		e = store_get(req->db, dek, id, "text", &text, reterr);
	vault_dek_free(dek);
	if (e == QERR_NOT_FOUND) { /* no page text kept: nothing to learn where */
		g_clear_pointer(reterr, g_free);
		return QERR_OK;
	}
	if (!e)
		e = json_parse((const char *)text.data, text.len, &tj, reterr);
	vault_buf_free(&text);
	if (!e)
		e = pdftext_doc_from_json(tj, &doc, reterr);
	json_free(tj);
	if (!e)
		e = learned_from_correction(req->db, web_vault(req), id, result, doc, names, req->who.actor, NULL, reterr);
	pdftext_doc_free(doc);
	return e;
}

/* Notes the extraction's confidence of fields a person corrected (names: "a,b") or, with
 * corrected false, of every field not corrected when the document was decided
 * (field_reviews, migration 0015; the quality page reads it). A field corrected after it
 * was kept turns corrected; its confidence stays the extraction's. */
static enum qerr note_reviews(struct web_req *req, int64_t id, const struct json *fields, const char *names,
                              bool corrected, char **reterr)
{
	char sid[24];
	id_text(id, sid);
	g_auto(GStrv) list = names ? g_strsplit(names, ",", -1) : NULL;
	size_t n = list ? g_strv_length(list) : json_object_size(fields);
	for (size_t i = 0; i < n; i++) {
		const char *key = list ? list[i] : NULL;
		const struct json *f = list ? json_get(fields, key) : json_object_at(fields, i, &key);
		double conf = -1;
		if (!key || !key[0] || strlen(key) > 128 || (!corrected && json_get(f, "corrected")))
			continue;
		char cbuf[32] = "";
		if (json_get_number(f, "confidence", &conf) && conf >= 0 && conf <= 1)
			g_snprintf(cbuf, sizeof cbuf, "%.4f", conf);
		struct db_param p[4] = {DB_TEXT(sid), DB_TEXT(key), DB_TEXT(cbuf[0] ? cbuf : NULL),
		                        DB_TEXT(corrected ? "true" : "false")};
		enum qerr e = db_query(req->db,
		                       "INSERT INTO field_reviews (document_id, field, confidence, corrected)"
		                       " VALUES ($1::bigint, $2, $3::real, $4::boolean) ON CONFLICT (document_id, field) DO"
		                       " UPDATE SET corrected = true, at = now() WHERE $4::boolean AND NOT field_reviews.corrected",
		                       4, p, NULL, reterr);
		if (e)
			return e;
	}
	return QERR_OK;
}

enum qerr docs_correct(struct web_req *req, int64_t id, const struct json *changes, int *ret_version, char **reterr)
{
	struct json *result = NULL;
	int version = 0;
	enum qerr e = db_begin(req->db, reterr);
	if (e)
		return e;
	char sid[24];
	id_text(id, sid);
	struct db_param p[1] = {DB_TEXT(sid)};
	/* Serialises corrections of one document: versions stay dense. */
	e = db_query(req->db, "SELECT 1 FROM documents WHERE id = $1::bigint AND state = 'processed' FOR UPDATE", 1, p,
	             NULL, reterr);
	if (!e)
		e = docs_result(req, id, &result, &version, reterr);
	g_autoptr(GString) names = g_string_new(NULL);
	struct json *before = !e && json_get(result, "fields") ? json_duplicate(json_get(result, "fields")) : NULL;
	if (!e)
		e = apply_changes(web_opt(req)->schemas_dir, result, changes, names, reterr);
	if (!e && names->len)
		e = note_reviews(req, id, before, names->str, true, reterr);
	json_free(before);
	if (!e && names->len) {
		version++;
		e = save_version(req, id, result, version, names->str, reterr);
		g_autofree char *detail = g_strdup_printf("version %d; fields %s", version, names->str);
		struct audit_event ev = {.actor = req->who.actor, .action = "document.corrected", .object_type = "document",
		                         .object_id = id, .outcome = "ok", .client = req->client, .detail = detail};
		if (!e)
			e = audit_append(req->db, &ev, reterr);
		if (!e)
			e = learn_correction(req, id, result, names->str, reterr);
	}
	if (!e)
		e = db_commit(req->db, reterr);
	if (e)
		db_rollback(req->db);
	json_free(result);
	if (!e && ret_version)
		*ret_version = version;
	return e;
}

enum qerr docs_review(struct web_req *req, int64_t id, const char *state, char **reterr)
{
	char sid[24];
	id_text(id, sid);
	struct db_param p[3] = {DB_TEXT(sid), DB_TEXT(state), DB_TEXT(req->who.actor)};
	enum qerr e = db_begin(req->db, reterr);
	struct db_res *res = NULL;
	if (!e)
		e = db_query(req->db, "UPDATE documents SET review_state = $2, reviewed_by = $3, reviewed_at = now()"
		             " WHERE id = $1::bigint AND state = 'processed' RETURNING id", 3, p, &res, reterr);
	if (!e && db_res_rows(res) != 1)
		e = qerr_set(reterr, QERR_CONFLICT, "only processed documents can be approved or rejected");
	db_res_free(res);
	struct json *result = NULL;
	if (!e)
		e = docs_result(req, id, &result, NULL, reterr);
	if (!e)
		e = note_reviews(req, id, json_get(result, "fields"), NULL, false, reterr);
	json_free(result);
	g_autofree char *action = g_strdup_printf("document.%s", state);
	struct audit_event ev = {.actor = req->who.actor, .action = action, .object_type = "document", .object_id = id,
	                         .outcome = "ok", .client = req->client};
	if (!e)
		e = audit_append(req->db, &ev, reterr);
	if (!e)
		e = db_commit(req->db, reterr);
	if (e)
		db_rollback(req->db);
	return e;
}

static const char *const info_cols[] = {"id", "created_at", "state", "doc_type", "page_count", "size_bytes",
                                        "review_state", "reviewed_by", "reviewed_at", "uploaded_by", "job_id",
                                        "job_state", "attempts", "last_error"};

enum qerr docs_info(struct web_req *req, int64_t id, struct json **ret, char **reterr)
{
	char sid[24];
	id_text(id, sid);
	struct db_param p[1] = {DB_TEXT(sid)};
	struct db_res *res = NULL;
	enum qerr e = db_query(req->db,
	                       "SELECT d.id, to_char(d.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
	                       " d.state, d.doc_type, d.page_count, d.size_bytes, " WEB_REVIEW_STATE ", " WEB_REVIEWED_BY ","
	                       " to_char(d.reviewed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
	                       " d.uploaded_by, j.id, j.state, j.attempts, j.last_error FROM documents d"
	                       " LEFT JOIN LATERAL (SELECT * FROM jobs WHERE document_id = d.id ORDER BY id DESC LIMIT 1) j"
	                       " ON true WHERE d.id = $1::bigint",
	                       1, p, &res, reterr);
	if (e)
		return e;
	if (db_res_rows(res) != 1) {
		db_res_free(res);
		return qerr_set(reterr, QERR_NOT_FOUND, "document %lld does not exist", (long long)id);
	}
	struct json *o = json_new_object();
	for (int c = 0; c < (int)G_N_ELEMENTS(info_cols); c++) {
		bool number = c == 0 || c == 4 || c == 5 || c == 10 || c == 12;
		if (db_res_isnull(res, 0, c))
			json_add_null(o, info_cols[c]);
		else if (number)
			json_add_number(o, info_cols[c], (double)db_res_int(res, 0, c));
		else
			json_add_string(o, info_cols[c], db_res_text(res, 0, c));
	}
	db_res_free(res);
	struct vault_buf name = {0};
	if (docs_payload(req, id, "filename", &name, NULL) == QERR_OK) {
		g_autofree char *n = g_utf8_make_valid((const char *)name.data, (gssize)name.len);
		json_add_string(o, "filename", n);
		vault_buf_free(&name);
	}
	*ret = o;
	return QERR_OK;
}
