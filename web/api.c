/* api: the REST API (JSON; API tokens in the Authorization header), health,
 * metrics and the OpenAPI document.
 *
 * Every error is {"error": {"code": "...", "message": "..."}} with a stable
 * code (web_status_of) and an HTTP status to match. The OpenAPI document is
 * compiled in (web/openapi.json, a resource) and describes exactly the routes below; a test
 * checks that every route it lists answers. */
#include "web/internal.h"

#include <gio/gio.h>
#include <string.h>

#include "core/db.h"
#include "core/json.h"
#include "core/log.h"
#include "web/metrics.h"
#include "web/web-resources.h"


static void json_reply(struct web_resp *resp, unsigned status, struct json *j)
{
	g_autofree char *text = json_format(j, false);
	json_free(j);
	web_text(resp, status, "application/json", text);
}

static void api_error(struct web_resp *resp, enum qerr e, const char *err)
{
	const char *code = NULL;
	unsigned st = web_status_of(e, &code);
	web_json_error(resp, st, code, "%s", err ? err : qerr_str(e));
}

static void post_documents(struct web_req *req, struct web_resp *resp)
{
	if (req->files->len == 0) {
		web_json_error(resp, 400, "no_file", "send a PDF as the body (application/pdf) or as multipart form data");
		return;
	}
	struct json *out = NULL;
	upload_commit(req, &out);
	/* One file: its own status; several: 207-like summary with 200 if all were stored. */
	size_t n = json_array_size(out);
	double st = 0, worst = 0;
	for (size_t i = 0; i < n; i++) {
		json_get_number(json_array_at(out, i), "status", &st);
		worst = MAX(worst, st);
	}
	if (n == 1) {
		struct json *one = json_duplicate(json_array_at(out, 0));
		json_free(out);
		if (worst >= 400) {
			web_json_error(resp, (unsigned)worst, json_get_string(one, "error"), "%s",
			               json_get_string(one, "message"));
			json_free(one);
			return;
		}
		json_reply(resp, (unsigned)worst, one);
		return;
	}
	struct json *root = json_new_object();
	json_add_item(root, "files", out);
	json_reply(resp, worst >= 400 ? 400 : 201, root);
}

static void get_documents(struct web_req *req, struct web_resp *resp)
{
	struct json *list = NULL;
	g_autofree char *err = NULL;
	enum qerr e = docs_list(req, &list, &err);
	if (e) {
		api_error(resp, e, err);
		return;
	}
	struct json *root = json_new_object();
	json_add_item(root, "documents", list);
	json_reply(resp, 200, root);
}

static void get_document(struct web_req *req, struct web_resp *resp)
{
	struct json *info = NULL;
	g_autofree char *err = NULL;
	if (!docs_visible(req, req->ids[0])) {
		web_json_error(resp, 404, "not_found", "no such document");
		return;
	}
	enum qerr e = docs_info(req, req->ids[0], &info, &err);
	if (e) {
		api_error(resp, e, err);
		return;
	}
	json_reply(resp, 200, info);
}

static void get_result(struct web_req *req, struct web_resp *resp)
{
	int64_t id = req->ids[0];
	struct json *result = NULL, *info = NULL;
	int version = 0;
	g_autofree char *err = NULL;
	if (!docs_visible(req, id)) {
		web_json_error(resp, 404, "not_found", "no such document");
		return;
	}
	enum qerr e = docs_info(req, id, &info, &err);
	const char *state = info ? json_get_string(info, "state") : NULL;
	if (!e && (!state || strcmp(state, "processed") != 0))
		e = qerr_set(&err, QERR_CONFLICT, "the document is %s; it has no result yet", state ? state : "unknown");
	if (!e)
		e = docs_result(req, id, &result, &version, &err);
	g_autofree char *detail = g_strdup_printf("API result, version %d", version);
	if (!e)
		e = docs_audit(req, "document.viewed", "document", id, "ok", detail, &err);
	if (e) {
		json_free(info);
		json_free(result);
		api_error(resp, e, err);
		return;
	}
	struct json *root = json_new_object();
	json_add_number(root, "document_id", (double)id);
	json_add_number(root, "version", version);
	json_add_string(root, "review_state", json_get_string(info, "review_state"));
	json_add_item(root, "result", result);
	json_free(info);
	json_reply(resp, 200, root);
}

static void post_corrections(struct web_req *req, struct web_resp *resp)
{
	int64_t id = req->ids[0];
	struct json *body = NULL;
	g_autofree char *err = NULL;
	if (!docs_visible(req, id)) {
		web_json_error(resp, 404, "not_found", "no such document");
		return;
	}
	enum qerr e = json_parse((const char *)req->body->data, req->body->len, &body, &err);
	struct json *fields = body ? json_get(body, "fields") : NULL;
	if (!e && !json_object_size(fields))
		e = qerr_set(&err, QERR_BAD_INPUT, "the body must be {\"fields\": {\"name\": value, ...}}");
	int version = 0;
	if (!e)
		e = docs_correct(req, id, fields, &version, &err);
	json_free(body);
	if (e) {
		api_error(resp, e, err);
		return;
	}
	struct json *root = json_new_object();
	json_add_number(root, "document_id", (double)id);
	json_add_number(root, "version", version);
	json_reply(resp, 200, root);
}

static void review(struct web_req *req, struct web_resp *resp, const char *state)
{
	g_autofree char *err = NULL;
	enum qerr e = docs_visible(req, req->ids[0]) ? docs_review(req, req->ids[0], state, &err)
	                                               : qerr_set(&err, QERR_NOT_FOUND, "no such document");
	if (e) {
		api_error(resp, e, err);
		return;
	}
	struct json *root = json_new_object();
	json_add_number(root, "document_id", (double)req->ids[0]);
	json_add_string(root, "review_state", state);
	json_reply(resp, 200, root);
}

static void post_approve(struct web_req *req, struct web_resp *resp) { review(req, resp, "approved"); }
static void post_reject(struct web_req *req, struct web_resp *resp) { review(req, resp, "rejected"); }

static enum qerr add_counts(struct web_req *req, struct json *root, const char *key, const char *sql, char **reterr)
{
	struct db_res *res = NULL;
	enum qerr e = db_query(req->db, sql, 0, NULL, &res, reterr);
	if (e)
		return e;
	struct json *o = json_add_item(root, key, json_new_object());
	for (int r = 0; r < db_res_rows(res); r++)
		json_add_number(o, db_res_text(res, r, 0), (double)db_res_int(res, r, 1));
	db_res_free(res);
	return QERR_OK;
}

static enum qerr stats_json(struct web_req *req, struct json **ret, char **reterr)
{
	struct json *root = json_new_object();
	enum qerr e = add_counts(req, root, "jobs", "SELECT state, count(*) FROM jobs GROUP BY state", reterr);
	if (!e)
		e = add_counts(req, root, "documents", "SELECT state, count(*) FROM documents GROUP BY state", reterr);
	if (!e)
		e = add_counts(req, root, "review",
		               "SELECT " WEB_REVIEW_STATE ", count(*) FROM documents d WHERE d.state = 'processed' GROUP BY 1",
		               reterr);
	struct db_res *res = NULL;
	if (!e)
		e = db_query(req->db,
		             "SELECT (SELECT count(*) FROM jobs WHERE state = 'done' AND finished_at > now() - interval '1 hour'),"
		             " (SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0)::bigint FROM jobs"
		             " WHERE state = 'queued')",
		             0, NULL, &res, reterr);
	if (!e) {
		json_add_number(root, "done_last_hour", (double)db_res_int(res, 0, 0));
		json_add_number(root, "oldest_queued_s", (double)db_res_int(res, 0, 1));
		db_res_free(res);
	}
	if (e) {
		json_free(root);
		return e;
	}
	*ret = root;
	return QERR_OK;
}

static void get_stats(struct web_req *req, struct web_resp *resp)
{
	struct json *root = NULL;
	g_autofree char *err = NULL;
	enum qerr e = stats_json(req, &root, &err);
	if (e) {
		api_error(resp, e, err);
		return;
	}
	json_reply(resp, 200, root);
}

/* The queue's counts only, as before the API existed (no document data). */
static void get_status(struct web_req *req, struct web_resp *resp)
{
	struct json *root = json_new_object();
	g_autofree char *err = NULL;
	enum qerr e = add_counts(req, root, "jobs", "SELECT state, count(*) FROM jobs GROUP BY state", &err);
	if (e) {
		json_free(root);
		api_error(resp, e, err);
		return;
	}
	json_reply(resp, 200, root);
}

static void get_health(struct web_req *req, struct web_resp *resp)
{
	web_text(resp, 200, "text/plain; charset=utf-8", "ok\n");
}

static void get_metrics(struct web_req *req, struct web_resp *resp)
{
	GString *b = resp->body;
	/* Queue, durations, failures by reason, documents, pages (web/metrics.h); on a database
	 * error the text says quire_db_up 0. */
	g_autofree char *figures = NULL;
	if (metrics_format(req->db, &figures, NULL) != QERR_OK)
		log_warn("metrics: the database did not answer");
	g_string_append(b, figures);
	uint64_t requests = 0, refused = 0;
	web_stats(req, &requests, &refused);
	g_string_append_printf(b, "# HELP quire_http_requests_total HTTP requests received.\n"
	                          "# TYPE quire_http_requests_total counter\nquire_http_requests_total %llu\n"
	                          "# HELP quire_http_refused_total HTTP requests answered with a status of 400 or more.\n"
	                          "# TYPE quire_http_refused_total counter\nquire_http_refused_total %llu\n",
	                       (unsigned long long)requests, (unsigned long long)refused);
	resp->type = "text/plain; version=0.0.4; charset=utf-8";
}

static void get_openapi(struct web_req *req, struct web_resp *resp)
{
	GBytes *doc = g_resource_lookup_data(quire_web_resources_get_resource(), "/quire/web/openapi.json", 0, NULL);
	if (!doc) {
		web_json_error(resp, 500, "internal", "the OpenAPI document is missing from this build");
		return;
	}
	resp->type = "application/json";
	resp->bytes = doc;
}

#define DOC P(USERS_PERM_DOC_VIEW)
const struct web_route api_routes[] = {
	{"GET", "/healthz", 0, WEB_PUBLIC | WEB_API, get_health},
	{"GET", "/api/v1/openapi.json", 0, WEB_PUBLIC | WEB_API, get_openapi},
	{"GET", "/api/v1/status", 0, WEB_PUBLIC | WEB_API, get_status},
	{"GET", "/metrics", P(USERS_PERM_QUEUE_VIEW), WEB_API, get_metrics},
	{"GET", "/api/v1/stats", P(USERS_PERM_QUEUE_VIEW), WEB_API, get_stats},
	{"POST", "/api/v1/documents", P(USERS_PERM_UPLOAD), WEB_API | WEB_UPLOAD, post_documents},
	{"GET", "/api/v1/documents", DOC | P(USERS_PERM_UPLOAD), WEB_API, get_documents},
	{"GET", "/api/v1/documents/*", DOC | P(USERS_PERM_UPLOAD), WEB_API, get_document},
	{"GET", "/api/v1/documents/*/result", DOC, WEB_API, get_result},
	{"POST", "/api/v1/documents/*/corrections", P(USERS_PERM_DOC_CORRECT), WEB_API | WEB_JSON, post_corrections},
	{"POST", "/api/v1/documents/*/approve", P(USERS_PERM_DOC_APPROVE), WEB_API, post_approve},
	{"POST", "/api/v1/documents/*/reject", P(USERS_PERM_DOC_APPROVE), WEB_API, post_reject},
	{NULL, NULL, 0, 0, NULL},
};
