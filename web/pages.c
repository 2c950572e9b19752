/* pages: the admin UI's server-rendered pages other than review: dashboard,
 * upload, the document list, failed jobs, the audit log, users and tokens,
 * settings and export.
 *
 * Lists are bounded (PAGE_ROWS rows per page); a search over extracted
 * fields decrypts results, so it looks at SEARCH_SCAN documents at most (the
 * newest that pass the other filters) and says so. Operators, who may upload
 * but not view documents, see only the documents they uploaded. */
#include "web/internal.h"

#include <stdio.h>
#include <string.h>

#include "core/audit.h"
#include "core/db.h"
#include "core/json.h"
#include "core/vault.h"
#include "extractors/doctype.h"
#include "pipeline/queue.h"
#include "web/export.h"

#define PAGE_ROWS 50
#define SEARCH_SCAN 500

static void cell(GString *b, const char *text)
{
	g_string_append(b, "<td>");
	html_escape(b, text);
	g_string_append(b, "</td>");
}

static void badge(GString *b, const char *state)
{
	g_string_append(b, "<td><span class=\"badge ");
	html_escape(b, state);
	g_string_append(b, "\">");
	html_escape(b, state);
	g_string_append(b, "</span></td>");
}

static void db_failed(struct web_req *req, struct web_resp *resp)
{
	html_error(req, resp, 503, "The database did not answer; try again shortly.");
}

static void card(GString *b, const char *n, const char *label, const char *href)
{
	g_string_append_printf(b, "<a class=\"card\" href=\"%s\"><div class=\"n\">", href);
	html_escape(b, n);
	g_string_append_printf(b, "</div><div class=\"l\">%s</div></a>", label);
}

static void dashboard_cards(struct web_req *req, GString *b, struct db_res *res)
{
	g_string_append(b, "<div class=\"cards\">");
	for (int c = 0; c < 6; c++) {
		static const char *const labels[] = {"queued",        "processing", "processed",
		                                     "needs review",  "failed",     "done in the last hour"};
		static const char *const links[] = {"/documents?state=queued",    "/documents?state=processing",
		                                    "/documents?state=processed", "/documents?review=pending",
		                                    "/jobs",                      "/documents"};
		card(b, db_res_text(res, 0, c), labels[c], links[c]);
	}
	g_string_append(b, "</div>");
	const char *oldest = db_res_text(res, 0, 6);
	g_string_append(b, "<p class=\"hint\">Oldest waiting job: ");
	html_escape(b, oldest[0] ? oldest : "none waiting");
	g_string_append(b, "</p>");
}

static void get_dashboard(struct web_req *req, struct web_resp *resp)
{
	struct db_res *res = NULL;
	if (db_query(req->db,
	             "SELECT (SELECT count(*) FROM documents WHERE state = 'queued'),"
	             " (SELECT count(*) FROM documents WHERE state = 'processing'),"
	             " (SELECT count(*) FROM documents WHERE state = 'processed'),"
	             " (SELECT count(*) FROM documents d WHERE d.state = 'processed' AND " WEB_REVIEW_STATE " = 'pending'),"
	             " (SELECT count(*) FROM jobs WHERE state IN ('failed', 'dead')),"
	             " (SELECT count(*) FROM jobs WHERE state = 'done' AND finished_at > now() - interval '1 hour'),"
	             " (SELECT 'job ' || id || ', waiting ' || justify_interval(date_trunc('second', now() - created_at))"
	             "  FROM jobs WHERE state = 'queued' ORDER BY created_at LIMIT 1)",
	             0, NULL, &res, NULL) != QERR_OK) {
		db_failed(req, resp);
		return;
	}
	html_begin(req, resp, "Dashboard", "dashboard");
	GString *b = resp->body;
	g_string_append(b, "<h1>Dashboard</h1>");
	dashboard_cards(req, b, res);
	db_res_free(res);
	insights_dashboard(req, b);
	if (!users_allowed(req->who.role, USERS_PERM_QUEUE_VIEW)) {
		html_end(resp);
		return;
	}
	if (db_query(req->db,
	             "SELECT id, document_id, state, left(coalesce(last_error, ''), 200),"
	             " to_char(finished_at, 'YYYY-MM-DD HH24:MI') FROM jobs WHERE state IN ('failed', 'dead')"
	             " ORDER BY finished_at DESC NULLS LAST LIMIT 5",
	             0, NULL, &res, NULL) == QERR_OK) {
		g_string_append(b, "<h2>Recent failures</h2><table><tr><th>Job</th><th>Document</th><th>State</th>"
		                   "<th>Error</th><th>When</th></tr>");
		for (int r = 0; r < db_res_rows(res); r++) {
			g_string_append(b, "<tr>");
			for (int c = 0; c < 5; c++)
				c == 2 ? badge(b, db_res_text(res, r, c)) : cell(b, db_res_text(res, r, c));
			g_string_append(b, "</tr>");
		}
		if (db_res_rows(res) == 0)
			g_string_append(b, "<tr><td colspan=\"5\">No failures.</td></tr>");
		g_string_append(b, "</table>");
		db_res_free(res);
	}
	html_end(resp);
}

/* ---- upload ---- */

static void upload_form(struct web_req *req, GString *b)
{
	g_autofree char *lim = g_format_size(web_opt(req)->max_file_bytes);
	g_string_append(b, "<h1>Upload</h1><form method=\"post\" action=\"/upload\" enctype=\"multipart/form-data\">");
	html_csrf(req, b);
	/* before the files: the upload reads these as each file begins */
	g_string_append(b, "<label>Document type <select name=\"type\"><option value=\"detect\">detect</option>");
	const struct doctypes *types = NULL;
	if (doctypes_shared(web_opt(req)->schemas_dir, &types, NULL) == QERR_OK) {
		for (size_t i = 0; i < doctypes_count(types); i++) {
			g_string_append(b, "<option>");
			html_escape(b, doctypes_at(types, i)->name);
			g_string_append(b, "</option>");
		}
	}
	g_string_append(b, "</select></label>");
	g_string_append(b, "<label>Password of encrypted PDFs (optional) <input type=\"password\""
	                   " name=\"pdf_password\" autocomplete=\"off\"></label>");
	g_string_append_printf(b, "<label>PDF files (up to %d at once, %s each) <input type=\"file\" name=\"files\""
	                          " accept=\"application/pdf,.pdf\" multiple required></label>"
	                          "<button type=\"submit\">Upload</button></form>",
	                       WEB_MAX_FILES, lim);
}

static void get_upload(struct web_req *req, struct web_resp *resp)
{
	html_begin(req, resp, "Upload", "upload");
	upload_form(req, resp->body);
	html_end(resp);
}

static void post_upload(struct web_req *req, struct web_resp *resp)
{
	struct json *out = NULL;
	upload_commit(req, &out);
	html_begin(req, resp, "Upload", "upload");
	GString *b = resp->body;
	size_t n = json_array_size(out);
	int good = 0;
	g_string_append(b, "<h1>Upload results</h1><table><tr><th>File</th><th>Result</th></tr>");
	for (size_t i = 0; i < n; i++) {
		struct json *o = json_array_at(out, i);
		double id = 0;
		g_string_append(b, "<tr>");
		cell(b, json_get_string(o, "file"));
		if (json_get_number(o, "document_id", &id)) {
			double st = 0;
			good++;
			json_get_number(o, "status", &st);
			g_string_append_printf(b, "<td><span class=\"badge done\">%s</span> document <a href=\"/documents/%.0f\">"
			                          "%.0f</a></td>",
			                       st == 200 ? "already stored" : "queued", id, id);
		} else {
			g_string_append(b, "<td><span class=\"badge failed\">refused</span> ");
			html_escape(b, json_get_string(o, "message"));
			g_string_append(b, "</td>");
		}
		g_string_append(b, "</tr>");
	}
	if (n == 0)
		g_string_append(b, "<tr><td colspan=\"2\">No file was chosen.</td></tr>");
	g_string_append(b, "</table>");
	resp->status = good ? 200 : 400;
	upload_form(req, b);
	html_end(resp);
	json_free(out);
}

/* ---- the document list ---- */

static const char *filter(struct web_req *req, const char *key, size_t max)
{
	const char *v = web_query(req, key);
	return v && strlen(v) <= max ? v : "";
}

static const char *date_filter(struct web_req *req, const char *key)
{
	const char *v = filter(req, key, 10);
	int y, m, d;
	char extra;
	return strlen(v) == 10 && sscanf(v, "%4d-%2d-%2d%c", &y, &m, &d, &extra) == 3 && m >= 1 && m <= 12 && d >= 1 &&
	                       d <= 31
	               ? v
	               : "";
}

static bool result_matches(struct web_req *req, int64_t id, const char *q)
{
	struct json *r = NULL;
	if (docs_result(req, id, &r, NULL, NULL) != QERR_OK)
		return false;
	struct json *fields = json_get(r, "fields");
	g_autofree char *needle = g_utf8_casefold(q, -1);
	bool hit = false;
	for (size_t i = 0; !hit && i < json_object_size(fields); i++) {
		struct json *f = json_object_at(fields, i, NULL);
		struct json *v = json_get(f, "value");
		double num;
		g_autofree char *text = json_string_value(v) ? g_strdup(json_string_value(v))
		                        : json_number_value(v, &num) ? g_strdup_printf("%.2f", num)
		                                                     : NULL;
		g_autofree char *folded = text ? g_utf8_casefold(text, -1) : NULL;
		hit = folded && strstr(folded, needle);
	}
	json_free(r);
	return hit;
}

static struct json *list_row(struct web_req *req, struct db_res *res, int r)
{
	static const char *const cols[] = {"id", "created_at", "state", "doc_type", "review_state", "page_count",
	                                   "uploaded_by"};
	struct json *o = json_new_object();
	for (int c = 0; c < 7; c++) {
		if (c == 0 || c == 5)
			db_res_isnull(res, r, c) ? json_add_null(o, cols[c])
			                         : json_add_number(o, cols[c], (double)db_res_int(res, r, c));
		else
			json_add_string(o, cols[c], db_res_text(res, r, c));
	}
	struct vault_buf name = {0};
	if (docs_payload(req, db_res_int(res, r, 0), "filename", &name, NULL) == QERR_OK) {
		g_autofree char *n = g_utf8_make_valid((const char *)name.data, (gssize)name.len);
		json_add_string(o, "filename", n);
		vault_buf_free(&name);
	}
	return o;
}

enum qerr docs_list(struct web_req *req, struct json **ret, char **reterr)
{
	const char *q = filter(req, "q", 200);
	bool own = !users_allowed(req->who.role, USERS_PERM_DOC_VIEW);
	const char *before = filter(req, "before", 18);
	char lim[16];
	g_snprintf(lim, sizeof lim, "%d", q[0] ? SEARCH_SCAN : PAGE_ROWS);
	struct db_param p[8] = {DB_TEXT(filter(req, "state", 20)), DB_TEXT(filter(req, "type", 40)),
	                        DB_TEXT(date_filter(req, "from")),  DB_TEXT(date_filter(req, "to")),
	                        DB_TEXT(filter(req, "review", 10)), DB_TEXT(own ? req->who.actor : ""),
	                        DB_TEXT(g_ascii_isdigit(before[0]) ? before : "0"), DB_TEXT(lim)};
	struct db_res *res = NULL;
	enum qerr e = db_query(req->db,
	                       "SELECT d.id, to_char(d.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), d.state,"
	                       " coalesce(d.doc_type, ''), " WEB_REVIEW_STATE ", d.page_count, coalesce(d.uploaded_by, '')"
	                       " FROM documents d WHERE ($1 = '' OR d.state = $1) AND ($2 = '' OR d.doc_type = $2)"
	                       " AND ($3 = '' OR d.created_at >= $3::date) AND ($4 = '' OR d.created_at < $4::date + 1)"
	                       " AND ($5 = '' OR (d.state = 'processed' AND " WEB_REVIEW_STATE " = $5))"
	                       " AND ($6 = '' OR d.uploaded_by = $6) AND ($7::bigint = 0 OR d.id < $7::bigint)"
	                       " ORDER BY d.id DESC LIMIT $8::int",
	                       8, p, &res, reterr);
	if (e)
		return e;
	struct json *arr = json_new_array();
	int kept = 0;
	for (int r = 0; r < db_res_rows(res) && kept < PAGE_ROWS; r++) {
		if (q[0] && (own || !result_matches(req, db_res_int(res, r, 0), q)))
			continue;
		json_append(arr, list_row(req, res, r));
		kept++;
	}
	db_res_free(res);
	*ret = arr;
	return QERR_OK;
}

static void filter_form(struct web_req *req, GString *b)
{
	static const char *const states[] = {"", "queued", "processing", "processed", "failed", "cancelled", "erased"};
	static const char *const reviews[] = {"", "pending", "approved", "rejected"};
	g_string_append(b, "<form class=\"filters\" method=\"get\" action=\"/documents\"><label>State <select name=\"state\">");
	for (size_t i = 0; i < G_N_ELEMENTS(states); i++)
		g_string_append_printf(b, "<option%s>%s</option>",
		                       strcmp(filter(req, "state", 20), states[i]) == 0 ? " selected" : "", states[i]);
	g_string_append(b, "</select></label><label>Review <select name=\"review\">");
	for (size_t i = 0; i < G_N_ELEMENTS(reviews); i++)
		g_string_append_printf(b, "<option%s>%s</option>",
		                       strcmp(filter(req, "review", 10), reviews[i]) == 0 ? " selected" : "", reviews[i]);
	g_string_append(b, "</select></label>");
	static const char *const texts[][3] = {{"type", "Type", "text"}, {"from", "From", "date"},
	                                       {"to", "To", "date"},     {"q", "Search fields", "search"}};
	for (size_t i = 0; i < G_N_ELEMENTS(texts); i++) {
		g_string_append_printf(b, "<label>%s <input type=\"%s\" name=\"%s\" value=\"", texts[i][1], texts[i][2],
		                       texts[i][0]);
		html_escape(b, filter(req, texts[i][0], 200));
		g_string_append(b, "\"></label>");
	}
	g_string_append(b, "<button type=\"submit\">Filter</button></form>");
}

static void get_documents(struct web_req *req, struct web_resp *resp)
{
	struct json *list = NULL;
	if (docs_list(req, &list, NULL) != QERR_OK) {
		db_failed(req, resp);
		return;
	}
	html_begin(req, resp, "Documents", "documents");
	GString *b = resp->body;
	g_string_append(b, "<h1>Documents</h1>");
	filter_form(req, b);
	if (filter(req, "q", 200)[0])
		g_string_append_printf(b, "<p class=\"hint\">The search looks through the newest %d documents that match"
		                          " the other filters.</p>", SEARCH_SCAN);
	g_string_append(b, "<table><tr><th>#</th><th>File</th><th>Received (UTC)</th><th>State</th><th>Type</th>"
	                   "<th>Review</th><th>Pages</th></tr>");
	size_t n = json_array_size(list);
	double last = 0;
	for (size_t i = 0; i < n; i++) {
		struct json *o = json_array_at(list, i);
		double id = 0, pages = 0;
		json_get_number(o, "id", &id);
		last = id;
		bool link = users_allowed(req->who.role, USERS_PERM_DOC_VIEW);
		g_string_append_printf(b, link ? "<tr><td><a href=\"/documents/%.0f\">%.0f</a></td>" : "<tr><td>%.0f</td>",
		                       id, id);
		cell(b, json_get_string(o, "filename"));
		cell(b, json_get_string(o, "created_at"));
		badge(b, json_get_string(o, "state"));
		cell(b, json_get_string(o, "doc_type"));
		badge(b, json_get_string(o, "review_state"));
		if (json_get_number(o, "page_count", &pages))
			g_string_append_printf(b, "<td>%.0f</td></tr>", pages);
		else
			g_string_append(b, "<td></td></tr>");
	}
	if (n == 0)
		g_string_append(b, "<tr><td colspan=\"7\">No documents match.</td></tr>");
	g_string_append(b, "</table>");
	if (n == PAGE_ROWS)
		g_string_append_printf(b, "<p><a href=\"/documents?before=%.0f\">Older documents</a></p>", last);
	if (users_allowed(req->who.role, USERS_PERM_DOC_EXPORT))
		g_string_append(b, "<h2>Export</h2><p>Approved results as <a href=\"/export/approved.csv\">CSV</a> or"
		                   " <a href=\"/export/approved.jsonl\">JSON Lines</a>; corrected documents as"
		                   " <a href=\"/export/training.jsonl\">fine-tuning examples</a>.</p>");
	json_free(list);
	html_end(resp);
}

/* ---- failed jobs ---- */

static void get_jobs(struct web_req *req, struct web_resp *resp)
{
	bool own = !users_allowed(req->who.role, USERS_PERM_DOC_VIEW) && req->who.role != USERS_ROLE_ADMIN;
	struct db_param p[1] = {DB_TEXT(own ? req->who.actor : "")};
	struct db_res *res = NULL;
	if (db_query(req->db,
	             "SELECT j.id, j.document_id, j.state, j.attempts || '/' || j.max_attempts, coalesce(j.last_error, ''),"
	             " to_char(j.finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') FROM jobs j"
	             " JOIN documents d ON d.id = j.document_id WHERE j.state IN ('failed', 'dead', 'cancelled')"
	             " AND ($1 = '' OR d.uploaded_by = $1) ORDER BY j.id DESC LIMIT 100",
	             1, p, &res, NULL) != QERR_OK) {
		db_failed(req, resp);
		return;
	}
	html_begin(req, resp, "Failed jobs", "jobs");
	GString *b = resp->body;
	g_string_append(b, "<h1>Failed jobs</h1>");
	if (web_query(req, "done"))
		html_message(b, "ok", "Done.");
	g_string_append(b, "<table><tr><th>Job</th><th>Document</th><th>State</th><th>Attempts</th><th>Error</th>"
	                   "<th>Finished (UTC)</th><th></th></tr>");
	bool may_retry = users_allowed(req->who.role, USERS_PERM_JOB_RETRY);
	for (int r = 0; r < db_res_rows(res); r++) {
		g_string_append(b, "<tr>");
		for (int c = 0; c < 6; c++)
			c == 2 ? badge(b, db_res_text(res, r, c)) : cell(b, db_res_text(res, r, c));
		g_string_append(b, "<td>");
		if (may_retry) {
			g_string_append_printf(b, "<form class=\"inline\" method=\"post\" action=\"/jobs/%s/retry\">",
			                       db_res_text(res, r, 0));
			html_csrf(req, b);
			g_string_append(b, "<button type=\"submit\">Retry</button></form>");
		}
		g_string_append(b, "</td></tr>");
	}
	if (db_res_rows(res) == 0)
		g_string_append(b, "<tr><td colspan=\"7\">No failed jobs.</td></tr>");
	g_string_append(b, "</table>");
	db_res_free(res);
	html_end(resp);
}

/* Whether the caller may act on job id (operators: jobs of their own uploads). */
static bool job_visible(struct web_req *req, int64_t id)
{
	char sid[24];
	g_snprintf(sid, sizeof sid, "%lld", (long long)id);
	struct db_param p[1] = {DB_TEXT(sid)};
	struct db_res *res = NULL;
	if (db_query(req->db, "SELECT document_id FROM jobs WHERE id = $1::bigint", 1, p, &res, NULL) != QERR_OK)
		return false;
	bool ok = db_res_rows(res) == 1 && (req->who.role == USERS_ROLE_ADMIN || docs_visible(req, db_res_int(res, 0, 0)));
	db_res_free(res);
	return ok;
}

static void job_action(struct web_req *req, struct web_resp *resp, bool retry)
{
	if (!job_visible(req, req->ids[0])) {
		html_error(req, resp, 404, "No such job.");
		return;
	}
	g_autofree char *err = NULL;
	enum qerr e = retry ? queue_retry(req->db, req->ids[0], req->who.actor, &err)
	                    : queue_cancel(req->db, req->ids[0], req->who.actor, &err);
	if (e) {
		const char *code;
		html_error(req, resp, web_status_of(e, &code), err ? err : qerr_str(e));
		return;
	}
	web_redirect(resp, "/jobs?done=1");
}

static void post_retry(struct web_req *req, struct web_resp *resp) { job_action(req, resp, true); }
static void post_cancel(struct web_req *req, struct web_resp *resp) { job_action(req, resp, false); }

/* ---- audit log ---- */

static void post_verify(struct web_req *req, struct web_resp *resp)
{
	/* the chain and every stored checkpoint against the vault's signing key, as `quire audit verify` */
	uint8_t pk[VAULT_PK_BYTES];
	vault_sign_public(web_vault(req), pk);
	struct audit_report r = {0};
	g_autofree char *err = NULL;
	enum qerr e = audit_verify_signed(req->db, pk, NULL, &r, &err);
	/* The result is kept as its audit entry (a broken chain can still take one): the audit
	 * page shows the latest of those, whichever server or command ran the check. The error
	 * names an entry id, never content. */
	g_autofree char *detail = e ? g_strdup_printf("entries=%lld checkpoints=%lld; %s", (long long)r.entries,
	                                              (long long)r.checkpoints, err ? err : qerr_str(e))
	                            : g_strdup_printf("entries=%lld checkpoints=%lld", (long long)r.entries,
	                                              (long long)r.checkpoints);
	if (docs_audit(req, "audit.verified", "audit_log", 0, e ? "failed" : "ok", detail, NULL) != QERR_OK) {
		html_error(req, resp, 503, "The check ran but could not be recorded in the audit log; try again.");
		return;
	}
	web_redirect(resp, "/audit");
}

static void get_audit(struct web_req *req, struct web_resp *resp)
{
	const char *actor = filter(req, "actor", 100), *action = filter(req, "action", 100);
	const char *obj = filter(req, "object", 18);
	struct db_param p[5] = {DB_TEXT(actor), DB_TEXT(action), DB_TEXT(g_ascii_isdigit(obj[0]) ? obj : "0"),
	                        DB_TEXT(date_filter(req, "from")), DB_TEXT(date_filter(req, "to"))};
	struct db_res *res = NULL;
	if (db_query(req->db,
	             "SELECT id, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), actor, action,"
	             " object_type || CASE WHEN object_id > 0 THEN ' ' || object_id ELSE '' END, outcome, client, detail"
	             " FROM audit_log WHERE ($1 = '' OR actor = $1) AND ($2 = '' OR action LIKE $2 || '%')"
	             " AND ($3::bigint = 0 OR object_id = $3::bigint) AND ($4 = '' OR at >= $4::date)"
	             " AND ($5 = '' OR at < $5::date + 1) ORDER BY id DESC LIMIT 200",
	             5, p, &res, NULL) != QERR_OK) {
		db_failed(req, resp);
		return;
	}
	g_autoptr(GString) detail = g_string_new("filters:");
	const char *const used[][2] = {{"actor", actor}, {"action", action}, {"object", p[2].value},
	                               {"from", p[3].value}, {"to", p[4].value}};
	for (size_t i = 0; i < G_N_ELEMENTS(used); i++)
		if (*used[i][1] && strcmp(used[i][1], "0") != 0)
			g_string_append_printf(detail, " %s=%s", used[i][0], used[i][1]);
	if (detail->len == strlen("filters:"))
		g_string_append(detail, " none");
	if (docs_audit(req, "audit.read", "audit_log", 0, "ok", detail->str, NULL) != QERR_OK) {
		db_res_free(res);
		html_error(req, resp, 503, "Reading the audit log could not be recorded in it; try again.");
		return;
	}
	html_begin(req, resp, "Audit log", "audit");
	GString *b = resp->body;
	g_autofree char *last = NULL;
	struct db_res *lv = NULL;
	if (db_query(req->db,
	             "SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), actor, outcome, detail"
	             " FROM audit_log WHERE action = 'audit.verified' ORDER BY id DESC LIMIT 1",
	             0, NULL, &lv, NULL) == QERR_OK &&
	    db_res_rows(lv) == 1)
		last = g_strdup_printf("%s UTC: %s, by %s (%s)", db_res_text(lv, 0, 0),
		                       strcmp(db_res_text(lv, 0, 2), "ok") == 0 ? "intact" : "BROKEN", db_res_text(lv, 0, 1),
		                       db_res_text(lv, 0, 3));
	db_res_free(lv);
	g_string_append(b, "<h1>Audit log</h1><p>Latest verification: <strong>");
	html_escape(b, last ? last : "none on record");
	g_string_append(b, "</strong></p><form method=\"post\" action=\"/audit/verify\">");
	html_csrf(req, b);
	g_string_append(b, "<button type=\"submit\" class=\"secondary\">Verify the chain now</button></form>"
	                   "<form class=\"filters\" method=\"get\" action=\"/audit\">");
	static const char *const texts[][3] = {{"actor", "Actor", "text"},       {"action", "Action", "text"},
	                                       {"object", "Object id", "text"},  {"from", "From", "date"},
	                                       {"to", "To", "date"}};
	for (size_t i = 0; i < G_N_ELEMENTS(texts); i++) {
		g_string_append_printf(b, "<label>%s <input type=\"%s\" name=\"%s\" value=\"", texts[i][1], texts[i][2],
		                       texts[i][0]);
		html_escape(b, filter(req, texts[i][0], 100));
		g_string_append(b, "\"></label>");
	}
	g_string_append(b, "<button type=\"submit\">Filter</button></form><table><tr><th>#</th><th>When (UTC)</th>"
	                   "<th>Actor</th><th>Action</th><th>Object</th><th>Outcome</th><th>Client</th><th>Detail</th></tr>");
	for (int r = 0; r < db_res_rows(res); r++) {
		g_string_append(b, "<tr>");
		for (int c = 0; c < 8; c++)
			cell(b, db_res_text(res, r, c));
		g_string_append(b, "</tr>");
	}
	g_string_append(b, "</table>");
	db_res_free(res);
	html_end(resp);
}

/* ---- users and API tokens ---- */

static void users_table(struct web_req *req, GString *b)
{
	struct users_info *u = NULL;
	int n = 0;
	if (users_list(req->db, &u, &n, NULL) != QERR_OK)
		return;
	g_string_append(b, "<table><tr><th>Name</th><th>Role</th><th>Status</th><th>Last login</th><th></th></tr>");
	for (int i = 0; i < n; i++) {
		g_string_append(b, "<tr>");
		cell(b, u[i].name);
		cell(b, users_role_name(u[i].role));
		cell(b, u[i].disabled ? "disabled" : "active");
		cell(b, u[i].last_login_at);
		g_string_append(b, "<td>");
		if (!u[i].disabled) {
			g_string_append(b, "<form class=\"inline\" method=\"post\" action=\"/users/disable\""
			                   " data-confirm=\"Disable this user?\">");
			html_csrf(req, b);
			g_string_append(b, "<input type=\"hidden\" name=\"name\" value=\"");
			html_escape(b, u[i].name);
			g_string_append(b, "\"><button class=\"danger\" type=\"submit\">Disable</button></form>");
		}
		g_string_append(b, "</td></tr>");
	}
	g_string_append(b, "</table>");
	users_info_free(u, n);
}

static void tokens_table(struct web_req *req, GString *b)
{
	struct users_token_info *t = NULL;
	int n = 0;
	if (users_token_list(req->db, &t, &n, NULL) != QERR_OK)
		return;
	g_string_append(b, "<table><tr><th>#</th><th>Name</th><th>Role</th><th>Made by</th><th>Expires</th>"
	                   "<th>Status</th><th></th></tr>");
	for (int i = 0; i < n; i++) {
		g_string_append_printf(b, "<tr><td>%lld</td>", (long long)t[i].id);
		cell(b, t[i].name);
		cell(b, users_role_name(t[i].role));
		cell(b, t[i].created_by);
		cell(b, t[i].expires_at);
		cell(b, t[i].revoked ? "revoked" : t[i].expired ? "expired" : "active");
		g_string_append(b, "<td>");
		if (!t[i].revoked) {
			g_string_append_printf(b, "<form class=\"inline\" method=\"post\" action=\"/tokens/%lld/revoke\">",
			                       (long long)t[i].id);
			html_csrf(req, b);
			g_string_append(b, "<button class=\"danger\" type=\"submit\">Revoke</button></form>");
		}
		g_string_append(b, "</td></tr>");
	}
	g_string_append(b, "</table>");
	users_token_list_free(t, n);
}

static void role_select(GString *b)
{
	g_string_append(b, "<label>Role <select name=\"role\">");
	for (int r = 0; r < USERS_ROLE_COUNT; r++)
		g_string_append_printf(b, "<option>%s</option>", users_role_name((enum users_role)r));
	g_string_append(b, "</select></label>");
}

static void users_page(struct web_req *req, struct web_resp *resp, const char *ok, const char *bad, const char *token)
{
	html_begin(req, resp, "Users", "users");
	GString *b = resp->body;
	g_string_append(b, "<h1>Users</h1>");
	if (ok)
		html_message(b, "ok", ok);
	if (bad)
		html_message(b, "error", bad);
	if (token) {
		g_string_append(b, "<p>The new token, shown this once:</p><pre class=\"token\">");
		html_escape(b, token);
		g_string_append(b, "</pre>");
	}
	users_table(req, b);
	g_string_append(b, "<h2>Add a user</h2><form method=\"post\" action=\"/users\">");
	html_csrf(req, b);
	g_string_append(b, "<label>Name <input name=\"name\" required></label><label>Password <input type=\"password\""
	                   " name=\"password\" required autocomplete=\"new-password\"></label>");
	role_select(b);
	g_string_append(b, "<button type=\"submit\">Add user</button></form><h2>API tokens</h2>");
	tokens_table(req, b);
	g_string_append(b, "<h2>New API token</h2><form method=\"post\" action=\"/tokens\">");
	html_csrf(req, b);
	g_string_append(b, "<label>Name <input name=\"name\" required maxlength=\"64\"></label>");
	role_select(b);
	g_string_append(b, "<button type=\"submit\">Create token</button></form>");
	html_end(resp);
}

static void get_users(struct web_req *req, struct web_resp *resp)
{
	users_page(req, resp, web_query(req, "ok") ? "Done." : NULL, NULL, NULL);
}

static void post_user(struct web_req *req, struct web_resp *resp)
{
	enum users_role role;
	const char *name = web_form(req, "name"), *pw = web_form(req, "password");
	g_autofree char *err = NULL;
	struct users_policy pol = {web_opt(req)->password_ops, web_opt(req)->password_mem};
	int64_t id = 0;
	enum qerr e = !name || !pw || !users_role_parse(web_form(req, "role"), &role)
	                      ? qerr_set(&err, QERR_BAD_INPUT, "name, password and role are required")
	                      : users_add(req->db, &pol, name, pw, role, req->who.actor, req->client, &id, &err);
	if (e) {
		const char *code;
		users_page(req, resp, NULL, err ? err : qerr_str(e), NULL);
		resp->status = web_status_of(e, &code);
		return;
	}
	web_redirect(resp, "/users?ok=1");
}

static void post_disable(struct web_req *req, struct web_resp *resp)
{
	const char *name = web_form(req, "name");
	g_autofree char *err = NULL;
	enum qerr e = name ? users_disable(req->db, name, req->who.actor, req->client, &err) : QERR_BAD_INPUT;
	if (e) {
		const char *code;
		users_page(req, resp, NULL, err ? err : qerr_str(e), NULL);
		resp->status = web_status_of(e, &code);
		return;
	}
	web_redirect(resp, "/users?ok=1");
}

static void post_token(struct web_req *req, struct web_resp *resp)
{
	enum users_role role;
	const char *name = web_form(req, "name");
	g_autofree char *err = NULL, *token = NULL;
	int64_t id = 0;
	enum qerr e = !name || !users_role_parse(web_form(req, "role"), &role)
	                      ? qerr_set(&err, QERR_BAD_INPUT, "name and role are required")
	                      : users_token_create(req->db, web_vault(req), name, role,
	                                           (int64_t)web_opt(req)->token_days * 86400, req->who.actor, req->client,
	                                           &token, &id, &err);
	if (e) {
		const char *code;
		users_page(req, resp, NULL, err ? err : qerr_str(e), NULL);
		resp->status = web_status_of(e, &code);
		return;
	}
	users_page(req, resp, "Token created. Copy it now: it is not stored and cannot be shown again.", NULL, token);
	explicit_bzero(token, strlen(token));
}

static void post_revoke(struct web_req *req, struct web_resp *resp)
{
	g_autofree char *err = NULL;
	enum qerr e = users_token_revoke(req->db, req->ids[0], req->who.actor, req->client, &err);
	if (e) {
		const char *code;
		html_error(req, resp, web_status_of(e, &code), err ? err : qerr_str(e));
		return;
	}
	web_redirect(resp, "/users?ok=1");
}

/* ---- settings and export ---- */

static void get_settings(struct web_req *req, struct web_resp *resp)
{
	html_begin(req, resp, "Settings", "settings");
	GString *b = resp->body;
	g_string_append(b, "<h1>Settings</h1><p class=\"hint\">Read-only. Change them in the configuration file or the"
	                   " environment and restart.</p><table><tr><th>Setting</th><th>Value</th></tr>");
	for (const char *const *s = web_opt(req)->settings; s && *s; s++) {
		const char *eq = strstr(*s, " = ");
		g_autofree char *key = eq ? g_strndup(*s, (gsize)(eq - *s)) : g_strdup(*s);
		g_string_append(b, "<tr>");
		cell(b, key);
		cell(b, eq ? eq + 3 : "");
		g_string_append(b, "</tr>");
	}
	g_string_append(b, "</table>");
	html_end(resp);
}

static int to_gstring(void *ctx, const char *data, size_t len)
{
	g_string_append_len(ctx, data, (gssize)len);
	return 0;
}

static void export(struct web_req *req, struct web_resp *resp, enum export_format f, const char *type,
                   const char *name)
{
	g_autofree char *err = NULL;
	int64_t n = 0;
	g_string_truncate(resp->body, 0);
	enum qerr e = export_run(req->db, web_vault(req), f, to_gstring, resp->body, &n, &err);
	if (e) {
		const char *code;
		html_error(req, resp, web_status_of(e, &code), err ? err : qerr_str(e));
		return;
	}
	resp->type = type;
	g_autofree char *cd = g_strdup_printf("attachment; filename=\"%s\"", name);
	web_resp_header(resp, "Content-Disposition", cd);
	g_autofree char *detail = g_strdup_printf("%s, %lld documents", name, (long long)n);
	if (docs_audit(req, "export.downloaded", NULL, 0, "ok", detail, NULL) != QERR_OK)
		html_error(req, resp, 503, "The export could not be recorded in the audit log; try again.");
}

static void get_csv(struct web_req *req, struct web_resp *resp)
{
	export(req, resp, EXPORT_CSV, "text/csv; charset=utf-8", "approved.csv");
}

static void get_jsonl(struct web_req *req, struct web_resp *resp)
{
	export(req, resp, EXPORT_JSONL, "application/x-ndjson", "approved.jsonl");
}

static void get_training(struct web_req *req, struct web_resp *resp)
{
	export(req, resp, EXPORT_TRAINING, "application/x-ndjson", "training.jsonl");
}

const struct web_route page_routes[] = {
	{"GET", "/", 0, WEB_ANY_ROLE, get_dashboard},
	{"GET", "/upload", P(USERS_PERM_UPLOAD), 0, get_upload},
	{"POST", "/upload", P(USERS_PERM_UPLOAD), WEB_UPLOAD, post_upload},
	{"GET", "/documents", P(USERS_PERM_DOC_VIEW) | P(USERS_PERM_UPLOAD), 0, get_documents},
	{"GET", "/jobs", P(USERS_PERM_QUEUE_VIEW), 0, get_jobs},
	{"POST", "/jobs/*/retry", P(USERS_PERM_JOB_RETRY), 0, post_retry},
	{"POST", "/jobs/*/cancel", P(USERS_PERM_JOB_RETRY), 0, post_cancel},
	{"GET", "/audit", P(USERS_PERM_AUDIT_READ), 0, get_audit},
	{"POST", "/audit/verify", P(USERS_PERM_AUDIT_READ), 0, post_verify},
	{"GET", "/users", P(USERS_PERM_USER_ADMIN), 0, get_users},
	{"POST", "/users", P(USERS_PERM_USER_ADMIN), 0, post_user},
	{"POST", "/users/disable", P(USERS_PERM_USER_ADMIN), 0, post_disable},
	{"POST", "/tokens", P(USERS_PERM_USER_ADMIN), 0, post_token},
	{"POST", "/tokens/*/revoke", P(USERS_PERM_USER_ADMIN), 0, post_revoke},
	{"GET", "/settings", P(USERS_PERM_CONFIG), 0, get_settings},
	{"GET", "/export/approved.csv", P(USERS_PERM_DOC_EXPORT), 0, get_csv},
	{"GET", "/export/approved.jsonl", P(USERS_PERM_DOC_EXPORT), 0, get_jsonl},
	{"GET", "/export/training.jsonl", P(USERS_PERM_DOC_EXPORT), 0, get_training},
	{NULL, NULL, 0, 0, NULL},
};
