/* server: libmicrohttpd set-up, request bodies, routing, security headers.
 *
 * libmicrohttpd calls the access handler several times per request: once
 * with the headers (we route, authenticate and check permissions and the
 * request's origin then, so a refused request is answered before its body is
 * read), once per piece of body (fed to the body sink, with limits; the files
 * of an upload go on to the vault piece by piece, upload.c), and once at the
 * end (CSRF token, then the handler, which commits an upload). A request's state lives in a
 * struct conn_req from the first call until libmicrohttpd reports it
 * completed. Database connections come from a pool with one per thread of
 * the daemon, so a request never waits for another thread's query. */
#include "web/server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <string.h>

#include "core/db.h"
#include "core/json.h"
#include "core/log.h"
#include "web/internal.h"
#include "web/formdata.h"

enum sink { SINK_NONE, SINK_FORM, SINK_MULTIPART, SINK_RAW_PDF, SINK_JSON };

struct server {
	struct server_options opt;
	struct MHD_Daemon *daemon;
	uint16_t port;
	bool tls;
	char *cert_pem, *key_pem;
	/* the connection pool */
	GMutex pool_lock;
	GCond pool_cond;
	struct db **pool;
	int pool_n, pool_free;
	/* statistics */
	uint64_t requests, refused; /* __atomic builtins */
	unsigned uploads;           /* being received; __atomic builtins */
};

struct conn_req {
	struct web_req req;
	const struct web_route *route;
	enum sink sink;
	struct formdata *mp;
	bool in_file; /* the multipart part being received is a file of the upload */
	size_t form_bytes;
	size_t received;
	bool answered; /* a response was queued early */
	/* A body refused half way (a bad part, or a chunked body that outgrew max_request_bytes) is
	 * read to its end and discarded, then answered: libmicrohttpd cannot answer while a body is
	 * still arriving. Past WEB_DISCARD_FACTOR times max_request_bytes in all, the connection is
	 * closed instead. */
	unsigned fail_status;
	const char *fail_code;
	char *fail_msg;
	char *field;      /* the plain multipart field being received */
	GString *field_value;
};

static const struct web_route *const route_tables[] = {session_routes, asset_routes, page_routes, review_routes,
                                                       insight_routes, api_routes};

const struct server_options *web_opt(const struct web_req *req) { return &req->srv->opt; }
const struct vault *web_vault(const struct web_req *req) { return req->srv->opt.vault; }

bool web_uploads_enter(struct web_req *req)
{
	struct server *s = req->srv;
	if (__atomic_add_fetch(&s->uploads, 1, __ATOMIC_RELAXED) <= s->opt.max_uploads)
		return true;
	__atomic_sub_fetch(&s->uploads, 1, __ATOMIC_RELAXED);
	return false;
}

void web_uploads_leave(struct web_req *req) { __atomic_sub_fetch(&req->srv->uploads, 1, __ATOMIC_RELAXED); }

const char *web_header(const struct web_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *web_cookie(const struct web_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_COOKIE_KIND, name);
}

const char *web_form(const struct web_req *req, const char *key)
{
	return req->form ? g_hash_table_lookup(req->form, key) : NULL;
}

const char *web_query(const struct web_req *req, const char *key)
{
	return req->query ? g_hash_table_lookup(req->query, key) : NULL;
}

void web_resp_header(struct web_resp *resp, const char *name, const char *value)
{
	g_ptr_array_add(resp->headers, g_strdup(name));
	g_ptr_array_add(resp->headers, g_strdup(value));
}

void web_text(struct web_resp *resp, unsigned status, const char *type, const char *text)
{
	resp->status = status;
	resp->type = type;
	g_string_assign(resp->body, text);
}

void web_json_error(struct web_resp *resp, unsigned status, const char *code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	g_autofree char *msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	struct json *root = json_new_object();
	struct json *err = json_add_item(root, "error", json_new_object());
	json_add_string(err, "code", code);
	json_add_string(err, "message", msg);
	g_autofree char *text = json_format(root, false);
	json_free(root);
	web_text(resp, status, "application/json", text);
}

void web_redirect(struct web_resp *resp, const char *location)
{
	resp->status = MHD_HTTP_SEE_OTHER;
	resp->type = "text/plain; charset=utf-8";
	web_resp_header(resp, "Location", location);
	g_string_assign(resp->body, "See other\n");
}

unsigned web_status_of(enum qerr e, const char **ret_code)
{
	static const struct {
		enum qerr e;
		unsigned status;
		const char *code;
	} map[] = {
		{QERR_NOT_FOUND, 404, "not_found"},        {QERR_BAD_INPUT, 400, "bad_request"},
		{QERR_NOT_PDF, 415, "not_pdf"},            {QERR_EMPTY, 400, "empty"},
		{QERR_TOO_LARGE, 413, "too_large"},        {QERR_UNSUPPORTED, 415, "unsupported"},
		{QERR_PARSE_FAILED, 422, "parse_failed"},  {QERR_DENIED, 403, "forbidden"},
		{QERR_CONFLICT, 409, "conflict"},          {QERR_DB_UNAVAILABLE, 503, "unavailable"},
		{QERR_TIMEOUT, 503, "unavailable"},        {QERR_BUSY, 503, "unavailable"},
	};
	for (size_t i = 0; i < G_N_ELEMENTS(map); i++)
		if (map[i].e == e) {
			*ret_code = map[i].code;
			return map[i].status;
		}
	*ret_code = "internal";
	return 500;
}

void web_stats(const struct web_req *req, uint64_t *ret_requests, uint64_t *ret_refused)
{
	*ret_requests = __atomic_load_n(&req->srv->requests, __ATOMIC_RELAXED);
	*ret_refused = __atomic_load_n(&req->srv->refused, __ATOMIC_RELAXED);
}

/* ---- the connection pool ---- */

static struct db *pool_get(struct server *s)
{
	g_mutex_lock(&s->pool_lock);
	while (s->pool_free == 0)
		g_cond_wait(&s->pool_cond, &s->pool_lock);
	struct db *db = s->pool[--s->pool_free];
	g_mutex_unlock(&s->pool_lock);
	if (!db && db_connect(s->opt.conninfo, &db, NULL) != QERR_OK) /* it broke earlier: try again now */
		db = NULL;
	return db;
}

/* Puts db back; a connection that no longer answers is replaced at its next use. */
static void pool_put(struct server *s, struct db *db, bool broken)
{
	if (broken) {
		db_close(db);
		db = NULL;
	}
	g_mutex_lock(&s->pool_lock);
	s->pool[s->pool_free++] = db;
	g_cond_signal(&s->pool_cond);
	g_mutex_unlock(&s->pool_lock);
}

static bool db_alive(struct db *db)
{
	return db && db_query(db, "SELECT 1", 0, NULL, NULL, NULL) != QERR_DB_UNAVAILABLE;
}

/* ---- responses ---- */

static void add_security_headers(struct server *s, struct MHD_Response *r, const struct web_resp *resp)
{
	MHD_add_response_header(r, "Content-Security-Policy",
	                        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self';"
	                        " connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "X-Frame-Options", "DENY");
	MHD_add_response_header(r, "Referrer-Policy", "same-origin"); /* "no-referrer" would make browsers send Origin: null */
	MHD_add_response_header(r, "Cross-Origin-Opener-Policy", "same-origin");
	MHD_add_response_header(r, "Cache-Control", resp->cacheable ? "private, max-age=3600" : "no-store");
	if (s->tls)
		MHD_add_response_header(r, "Strict-Transport-Security", "max-age=31536000");
}

static enum MHD_Result send_resp(struct server *s, struct MHD_Connection *c, struct web_resp *resp)
{
	size_t len = 0;
	void *data = NULL;
	if (resp->bytes) {
		data = g_bytes_unref_to_data(resp->bytes, &len);
		resp->bytes = NULL;
	} else {
		len = resp->body->len;
		data = g_string_free(resp->body, FALSE);
		resp->body = NULL;
	}
	struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback(len, data, g_free);
	if (!r) {
		g_free(data);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", resp->type ? resp->type : "text/plain; charset=utf-8");
	add_security_headers(s, r, resp);
	for (guint i = 0; i + 1 < resp->headers->len; i += 2)
		MHD_add_response_header(r, resp->headers->pdata[i], resp->headers->pdata[i + 1]);
	if (resp->status >= 400)
		__atomic_fetch_add(&s->refused, 1, __ATOMIC_RELAXED);
	enum MHD_Result ret = MHD_queue_response(c, resp->status ? resp->status : 200, r);
	MHD_destroy_response(r);
	return ret;
}

static void resp_init(struct web_resp *resp)
{
	memset(resp, 0, sizeof *resp);
	resp->status = 200;
	resp->type = "text/html; charset=utf-8";
	resp->body = g_string_new(NULL);
	resp->headers = g_ptr_array_new_with_free_func(g_free);
}

static void resp_done(struct web_resp *resp)
{
	if (resp->body)
		g_string_free(resp->body, TRUE);
	if (resp->bytes)
		g_bytes_unref(resp->bytes);
	g_ptr_array_unref(resp->headers);
}

/* An error answer in the route's style (JSON for the API, HTML for pages). */
static enum MHD_Result refuse(struct conn_req *cr, struct MHD_Connection *c, unsigned status, const char *code,
                              const char *message)
{
	struct web_resp resp;
	resp_init(&resp);
	if (!cr->route || (cr->route->flags & WEB_API))
		web_json_error(&resp, status, code, "%s", message);
	else
		html_error(&cr->req, &resp, status, message);
	if (status == 429 || status == 503)
		web_resp_header(&resp, "Retry-After", "5");
	cr->answered = true;
	enum MHD_Result r = send_resp(cr->req.srv, c, &resp);
	resp_done(&resp);
	return r;
}


/* ---- request bodies ---- */

static void wipe(GByteArray *b)
{
	if (b && b->len) /* an empty array may have no storage at all */
		explicit_bzero(b->data, b->len);
}

static void file_free(gpointer p)
{
	struct web_file *f = p;
	if (!f)
		return;
	g_free(f->field);
	g_free(f->name);
	g_free(f->error);
	g_free(f);
}

static enum qerr form_add(struct conn_req *cr, const char *key, const char *value, size_t vlen, char **reterr)
{
	cr->form_bytes += strlen(key) + vlen;
	if (cr->form_bytes > WEB_MAX_FORM || g_hash_table_size(cr->req.form) >= WEB_MAX_FORM_FIELDS)
		return qerr_set(reterr, QERR_TOO_LARGE, "the form is too large");
	g_hash_table_replace(cr->req.form, g_strdup(key), g_strndup(value, vlen));
	return QERR_OK;
}

static enum qerr mp_begin(void *ctx, const char *name, const char *filename, const char *type, char **reterr)
{
	struct conn_req *cr = ctx;
	cr->in_file = false;
	g_clear_pointer(&cr->field, g_free);
	if (!filename) {
		cr->field = g_strdup(name);
		g_string_truncate(cr->field_value, 0);
		return QERR_OK;
	}
	if (!filename[0]) /* a file input left empty */
		return QERR_OK;
	if (!cr->req.upload)
		return qerr_set(reterr, QERR_BAD_INPUT, "files are not accepted here");
	if (cr->req.files->len >= WEB_MAX_FILES)
		return qerr_set(reterr, QERR_BAD_INPUT, "at most %d files per upload", WEB_MAX_FILES);
	cr->in_file = true;
	upload_file_begin(&cr->req, name, filename, type);
	return QERR_OK;
}

static enum qerr mp_data(void *ctx, const void *data, size_t len, char **reterr)
{
	struct conn_req *cr = ctx;
	if (cr->field) {
		if (cr->form_bytes + cr->field_value->len + len > WEB_MAX_FORM)
			return qerr_set(reterr, QERR_TOO_LARGE, "the form fields are too large");
		g_string_append_len(cr->field_value, data, (gssize)len);
		return QERR_OK;
	}
	if (cr->in_file)
		upload_file_data(&cr->req, data, len);
	return QERR_OK;
}

static enum qerr mp_end(void *ctx, char **reterr)
{
	struct conn_req *cr = ctx;
	if (cr->in_file)
		upload_file_end(&cr->req);
	cr->in_file = false;
	if (!cr->field)
		return QERR_OK;
	enum qerr e = form_add(cr, cr->field, cr->field_value->str, cr->field_value->len, reterr);
	g_clear_pointer(&cr->field, g_free);
	return e;
}

static const struct formdata_handler mp_handler = {mp_begin, mp_data, mp_end};

/* application/x-www-form-urlencoded, whole (at most WEB_MAX_FORM bytes). */
static enum qerr parse_urlencoded(struct conn_req *cr, char **reterr)
{
	GByteArray *b = cr->req.body;
	g_autofree char *text = g_strndup((const char *)b->data, b->len);
	g_auto(GStrv) pairs = g_strsplit(text, "&", WEB_MAX_FORM_FIELDS + 1);
	for (int i = 0; pairs[i]; i++) {
		if (!pairs[i][0])
			continue;
		g_strdelimit(pairs[i], "+", ' ');
		char *eq = strchr(pairs[i], '=');
		if (eq)
			*eq = 0;
		g_autofree char *k = g_uri_unescape_string(pairs[i], NULL);
		g_autofree char *v = g_uri_unescape_string(eq ? eq + 1 : "", NULL);
		if (!k || !v || !g_utf8_validate(v, -1, NULL))
			return qerr_set(reterr, QERR_BAD_INPUT, "the form is not valid URL-encoded UTF-8");
		enum qerr e = form_add(cr, k, v, strlen(v), reterr);
		if (e)
			return e;
	}
	return QERR_OK;
}

/* An upload: its own transaction (upload.c); a PDF body is its one file. */
static unsigned start_upload(struct conn_req *cr, const char **code, char **msg)
{
	unsigned st = upload_start(&cr->req, code, msg);
	if (st || cr->sink != SINK_RAW_PDF)
		return st;
	const char *name = web_header(&cr->req, "X-Filename");
	upload_file_begin(&cr->req, "file", name ? name : "upload.pdf", "application/pdf");
	return 0;
}

/* Chooses how to read the body from its declared type; 0 or an HTTP status with *code set
 * (and *msg, g_free). */
static unsigned choose_sink(struct conn_req *cr, struct MHD_Connection *c, const char **code, char **msg)
{
	const char *ct = web_header(&cr->req, "Content-Type");
	unsigned flags = cr->route->flags;
	cr->req.content_type = g_strdup(ct ? ct : "");
	const char *len = web_header(&cr->req, "Content-Length");
	if (len && g_ascii_strtoull(len, NULL, 10) > cr->req.srv->opt.max_request_bytes) {
		*code = "too_large";
		*msg = g_strdup("the request body is larger than the server accepts");
		return 413;
	}
	if (!ct) {
		cr->sink = SINK_FORM; /* an empty POST */
		return 0;
	}
	if (g_ascii_strncasecmp(ct, "multipart/form-data", 19) == 0) {
		g_autofree char *err = NULL;
		if (formdata_new(c, &mp_handler, cr, &cr->mp, &err)) {
			*code = "bad_request";
			*msg = g_strdup("the multipart Content-Type has no valid boundary");
			return 400;
		}
		cr->sink = SINK_MULTIPART;
		return (flags & WEB_UPLOAD) ? start_upload(cr, code, msg) : 0;
	}
	if (g_ascii_strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0 && !(flags & WEB_API)) {
		cr->sink = SINK_FORM;
		return 0;
	}
	if (g_ascii_strncasecmp(ct, "application/pdf", 15) == 0 && (flags & WEB_UPLOAD) && (flags & WEB_API)) {
		cr->sink = SINK_RAW_PDF;
		return start_upload(cr, code, msg);
	}
	if (g_ascii_strncasecmp(ct, "application/json", 16) == 0 && (flags & WEB_JSON)) {
		cr->sink = SINK_JSON;
		return 0;
	}
	*code = "unsupported_media_type";
	*msg = g_strdup("this Content-Type is not accepted here");
	return 415;
}

/* Feeds a piece of body; 0 or an HTTP status. */
static unsigned feed(struct conn_req *cr, const char *data, size_t len, const char **code, char **msg)
{
	cr->received += len;
	struct server *s = cr->req.srv;
	if (cr->received > s->opt.max_request_bytes) {
		*code = "too_large";
		*msg = g_strdup("the request body is larger than the server accepts");
		return 413;
	}
	size_t cap = cr->sink == SINK_JSON ? WEB_MAX_JSON : WEB_MAX_FORM;
	switch (cr->sink) {
	case SINK_MULTIPART:
		if (formdata_feed(cr->mp, data, len, msg) != QERR_OK) {
			*code = "bad_request";
			return 400;
		}
		return 0;
	case SINK_RAW_PDF:
		upload_file_data(&cr->req, data, len);
		return 0;
	case SINK_FORM:
	case SINK_JSON:
		if (cr->req.body->len + len > cap) {
			*code = "too_large";
			*msg = g_strdup("the request body is too large for this endpoint");
			return 413;
		}
		g_byte_array_append(cr->req.body, (const guint8 *)data, (guint)len);
		return 0;
	default:
		*code = "bad_request";
		*msg = g_strdup("this request takes no body");
		return 400;
	}
}

/* The body is complete; 0 or an HTTP status. */
static unsigned finish_body(struct conn_req *cr, const char **code, char **msg)
{
	*code = "bad_request";
	if (cr->sink == SINK_MULTIPART && formdata_finish(cr->mp, msg) != QERR_OK)
		return 400;
	if (cr->sink == SINK_FORM && cr->req.body->len && parse_urlencoded(cr, msg) != QERR_OK)
		return 400;
	if (cr->sink == SINK_RAW_PDF)
		upload_file_end(&cr->req);
	return 0;
}

/* ---- routing ---- */

static bool match(const char *pattern, const char *path, int64_t ids[2])
{
	int n = 0;
	while (*pattern && *path) {
		if (*pattern == '*') {
			char *end = NULL;
			if (!g_ascii_isdigit(*path))
				return false;
			guint64 v = g_ascii_strtoull(path, &end, 10);
			if (end - path > 15 || v == 0 || n >= 2)
				return false;
			ids[n++] = (int64_t)v;
			path = end;
			pattern++;
			continue;
		}
		if (*pattern++ != *path++)
			return false;
	}
	return !*pattern && !*path;
}

/* The route for method and path; *ret_other_method when only another method matches. */
static const struct web_route *find_route(const char *method, const char *path, int64_t ids[2],
                                          bool *ret_other_method)
{
	const char *m = strcmp(method, "HEAD") == 0 ? "GET" : method;
	*ret_other_method = false;
	for (size_t t = 0; t < G_N_ELEMENTS(route_tables); t++)
		for (const struct web_route *r = route_tables[t]; r->method; r++) {
			if (!match(r->pattern, path, ids))
				continue;
			if (strcmp(r->method, m) == 0)
				return r;
			*ret_other_method = true;
		}
	return NULL;
}

static bool permitted(const struct web_req *req, const struct web_route *r)
{
	if (r->flags & (WEB_PUBLIC | WEB_ANY_ROLE))
		return true;
	for (int p = 0; p < USERS_PERM_COUNT; p++)
		if ((r->perms & P(p)) && users_allowed(req->who.role, (enum users_perm)p))
			return true;
	return false;
}

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	(*(int *)cls)++;
	return MHD_YES;
}

static enum MHD_Result add_query(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	GHashTable *q = cls;
	if (g_hash_table_size(q) < WEB_MAX_FORM_FIELDS && key && g_utf8_validate(key, -1, NULL) &&
	    (!value || g_utf8_validate(value, -1, NULL)))
		g_hash_table_replace(q, g_strdup(key), g_strdup(value ? value : ""));
	return MHD_YES;
}

static void client_address(struct MHD_Connection *c, char out[64])
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	g_strlcpy(out, "unknown", 64);
	if (!ci || !ci->client_addr)
		return;
	if (ci->client_addr->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr, out, 64);
	else if (ci->client_addr->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ci->client_addr)->sin6_addr, out, 64);
}

static struct conn_req *conn_req_new(struct server *s, struct MHD_Connection *c, const char *url,
                                     const char *method)
{
	struct conn_req *cr = g_new0(struct conn_req, 1);
	cr->req.srv = s;
	cr->req.conn = c;
	cr->req.method = method;
	cr->req.path = url;
	cr->req.tls = s->tls;
	client_address(c, cr->req.client);
	cr->req.query = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	cr->req.form = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	cr->req.files = g_ptr_array_new_with_free_func(file_free);
	cr->req.body = g_byte_array_new();
	cr->field_value = g_string_new(NULL);
	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, add_query, cr->req.query);
	return cr;
}

static void conn_req_free(struct conn_req *cr)
{
	if (!cr)
		return;
	formdata_free(cr->mp);
	upload_end(&cr->req); /* rolls back what the request did not commit */
	g_hash_table_unref(cr->req.query);
	g_hash_table_unref(cr->req.form);
	g_ptr_array_unref(cr->req.files);
	wipe(cr->req.body);
	g_byte_array_unref(cr->req.body);
	g_free(cr->req.content_type);
	g_free(cr->req.user_name);
	g_free(cr->req.csrf);
	g_free(cr->field);
	g_free(cr->fail_msg);
	g_string_free(cr->field_value, TRUE);
	g_free(cr);
}

/* Frees what a refused body had gathered so far (uploads are rolled back). */
static void drop_body(struct conn_req *cr)
{
	upload_end(&cr->req);
	cr->in_file = false;
	g_ptr_array_set_size(cr->req.files, 0);
	wipe(cr->req.body);
	g_byte_array_set_size(cr->req.body, 0);
	formdata_free(cr->mp);
	cr->mp = NULL;
}

static void completed(void *cls, struct MHD_Connection *c, void **state, enum MHD_RequestTerminationCode toe)
{
	conn_req_free(*state);
	*state = NULL;
}

/* Headers are in: route, authenticate, authorise, check the origin, choose the body sink. */
static enum MHD_Result on_headers(struct conn_req *cr, struct MHD_Connection *c)
{
	struct server *s = cr->req.srv;
	__atomic_fetch_add(&s->requests, 1, __ATOMIC_RELAXED);
	int n_headers = 0;
	MHD_get_connection_values(c, MHD_HEADER_KIND, count_header, &n_headers);
	if (n_headers > WEB_MAX_HEADERS)
		return refuse(cr, c, 431, "too_many_headers", "the request has too many header lines");
	bool other = false;
	cr->route = find_route(cr->req.method, cr->req.path, cr->req.ids, &other);
	if (!cr->route)
		return other ? refuse(cr, c, 405, "method_not_allowed", "method not allowed")
		             : refuse(cr, c, 404, "not_found", "no such page");
	bool post = strcmp(cr->req.method, "POST") == 0;
	if (!(cr->route->flags & WEB_PUBLIC) || strncmp(cr->req.path, "/login", 6) == 0 ||
	    strcmp(cr->req.path, "/logout") == 0) {
		cr->req.db = pool_get(s);
		g_autofree char *err = NULL;
		enum qerr e = cr->req.db ? session_authenticate(&cr->req, cr->route->flags & WEB_API, &err)
		                         : QERR_DB_UNAVAILABLE;
		pool_put(s, cr->req.db, e == QERR_DB_UNAVAILABLE);
		cr->req.db = NULL;
		if (e == QERR_DB_UNAVAILABLE)
			return refuse(cr, c, 503, "unavailable", "the database is unavailable; try again shortly");
	}
	if (!(cr->route->flags & WEB_PUBLIC) && !cr->req.authed) {
		if (cr->route->flags & WEB_API)
			return refuse(cr, c, 401, "unauthenticated", "a valid API token (Authorization: Bearer) is required");
		if (!post) {
			struct web_resp resp;
			resp_init(&resp);
			g_autofree char *next = g_uri_escape_string(cr->req.path, "/", FALSE);
			g_autofree char *loc = g_strdup_printf("/login?next=%s", next);
			web_redirect(&resp, loc);
			cr->answered = true;
			enum MHD_Result r = send_resp(s, c, &resp);
			resp_done(&resp);
			return r;
		}
		return refuse(cr, c, 401, "unauthenticated", "your session has ended; please log in again");
	}
	if (cr->req.authed && !permitted(&cr->req, cr->route))
		return refuse(cr, c, 403, "forbidden", "your role does not allow this");
	if (!post)
		return MHD_YES;
	if (!session_origin_ok(&cr->req))
		return refuse(cr, c, 403, "cross_site", "cross-site requests are refused");
	cr->req.idempotency_key = web_header(&cr->req, "Idempotency-Key");
	const char *code = NULL;
	g_autofree char *msg = NULL;
	unsigned st = choose_sink(cr, c, &code, &msg);
	if (st)
		return refuse(cr, c, st, code, msg);
	return MHD_YES;
}

static enum MHD_Result run_handler(struct conn_req *cr, struct MHD_Connection *c)
{
	struct server *s = cr->req.srv;
	const char *code = NULL;
	g_autofree char *msg = NULL;
	unsigned st = finish_body(cr, &code, &msg);
	if (st)
		return refuse(cr, c, st, code, msg ? msg : "the request body is malformed");
	/* Public routes (login, logout) check their own form tokens. */
	if (strcmp(cr->req.method, "POST") == 0 && cr->req.by_cookie && !(cr->route->flags & WEB_PUBLIC) &&
	    !session_csrf_ok(&cr->req))
		return refuse(cr, c, 403, "csrf", "the form's security token is missing or stale; reload the page");
	struct web_resp resp;
	resp_init(&resp);
	cr->req.db = pool_get(s);
	if (!cr->req.db) {
		pool_put(s, NULL, false);
		resp_done(&resp);
		return refuse(cr, c, 503, "unavailable", "the database is unavailable; try again shortly");
	}
	cr->route->fn(&cr->req, &resp);
	pool_put(s, cr->req.db, resp.status == 503 && !db_alive(cr->req.db));
	cr->req.db = NULL;
	cr->answered = true;
	enum MHD_Result r = send_resp(s, c, &resp);
	resp_done(&resp);
	return r;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **state)
{
	struct server *s = cls;
	struct conn_req *cr = *state;
	if (!cr) {
		cr = conn_req_new(s, c, url, method);
		*state = cr;
		return on_headers(cr, c);
	}
	if (cr->answered) { /* refused early: the rest of the body is discarded */
		*upload_size = 0;
		return MHD_YES;
	}
	if (*upload_size) {
		size_t len = *upload_size;
		*upload_size = 0;
		if (cr->fail_status) { /* discarding the rest of a refused body, within limits */
			cr->received += len;
			return cr->received / WEB_DISCARD_FACTOR > s->opt.max_request_bytes ? MHD_NO : MHD_YES;
		}
		if (cr->sink == SINK_NONE) {
			cr->fail_status = 413;
			cr->fail_code = "too_large";
			cr->fail_msg = g_strdup("request bodies are not accepted here");
		} else {
			cr->fail_status = feed(cr, upload, len, &cr->fail_code, &cr->fail_msg);
		}
		if (cr->fail_status)
			drop_body(cr);
		return MHD_YES;
	}
	if (cr->fail_status)
		return refuse(cr, c, cr->fail_status, cr->fail_code, cr->fail_msg ? cr->fail_msg : "the request body is malformed");
	return run_handler(cr, c);
}

/* ---- start and stop ---- */

static enum qerr parse_listen(const char *listen, struct sockaddr_in *sa, char **reterr)
{
	g_autofree char *host = g_strdup(listen);
	char *colon = strrchr(host, ':');
	char *end = NULL;
	long port = colon ? strtol(colon + 1, &end, 10) : -1;
	if (!colon || !end || *end || port < 0 || port > 65535)
		return qerr_set(reterr, QERR_CONFIG, "web.listen must be ADDRESS:PORT, not \"%s\"", listen);
	*colon = 0;
	memset(sa, 0, sizeof *sa);
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		return qerr_set(reterr, QERR_CONFIG, "web.listen address \"%s\" is not an IPv4 address", host);
	return QERR_OK;
}

static enum qerr load_tls(struct server *s, char **reterr)
{
	const char *cert = s->opt.tls_cert, *key = s->opt.tls_key;
	if ((!cert || !cert[0]) && (!key || !key[0]))
		return QERR_OK;
	if (!cert || !cert[0] || !key || !key[0])
		return qerr_set(reterr, QERR_CONFIG, "web.tls_cert and web.tls_key must be set together");
	g_autoptr(GError) gerr = NULL;
	if (!g_file_get_contents(cert, &s->cert_pem, NULL, &gerr) || !g_file_get_contents(key, &s->key_pem, NULL, &gerr))
		return qerr_set(reterr, QERR_CONFIG, "cannot read the TLS certificate or key: %s", gerr->message);
	s->tls = true;
	return QERR_OK;
}

static enum qerr open_pool(struct server *s, char **reterr)
{
	s->pool_n = (int)s->opt.threads;
	s->pool = g_new0(struct db *, s->pool_n);
	for (int i = 0; i < s->pool_n; i++) {
		enum qerr e = db_connect(s->opt.conninfo, &s->pool[i], reterr);
		if (e)
			return e;
		s->pool_free = i + 1;
	}
	return QERR_OK;
}

static void defaults(struct server_options *o)
{
	if (!o->threads)
		o->threads = 4;
	if (!o->max_connections)
		o->max_connections = 256;
	if (!o->max_per_address)
		o->max_per_address = 64;
	if (!o->timeout_s)
		o->timeout_s = 30;
	if (!o->max_file_bytes)
		o->max_file_bytes = (size_t)100 << 20;
	if (!o->max_request_bytes)
		o->max_request_bytes = o->max_file_bytes * 4 + (1u << 20);
	if (!o->max_uploads)
		o->max_uploads = 8;
	if (o->session_idle_s <= 0)
		o->session_idle_s = 30 * 60;
	if (o->session_max_s <= 0)
		o->session_max_s = 12 * 3600;
	if (o->token_days <= 0)
		o->token_days = 90;
}

enum qerr server_start(const struct server_options *opt, struct server **ret, char **reterr)
{
	struct sockaddr_in sa;
	enum qerr e = parse_listen(opt->listen, &sa, reterr);
	if (e)
		return e;
	struct server *s = g_new0(struct server, 1);
	s->opt = *opt;
	defaults(&s->opt);
	g_mutex_init(&s->pool_lock);
	g_cond_init(&s->pool_cond);
	e = load_tls(s, reterr);
	if (!e)
		e = open_pool(s, reterr);
	if (e) {
		server_stop(s);
		return e;
	}
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | (s->tls ? MHD_USE_TLS : 0);
	struct MHD_OptionItem tls[] = {{MHD_OPTION_HTTPS_MEM_KEY, 0, s->key_pem},
	                               {MHD_OPTION_HTTPS_MEM_CERT, 0, s->cert_pem},
	                               {MHD_OPTION_END, 0, NULL}};
	struct MHD_OptionItem none[] = {{MHD_OPTION_END, 0, NULL}};
	s->daemon = MHD_start_daemon(
		flags, 0, NULL, NULL, handle, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE,
		s->opt.threads, MHD_OPTION_CONNECTION_LIMIT, s->opt.max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
		s->opt.max_per_address, MHD_OPTION_CONNECTION_TIMEOUT, s->opt.timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
		(size_t)64 * 1024, MHD_OPTION_NOTIFY_COMPLETED, completed, s, MHD_OPTION_ARRAY, s->tls ? tls : none,
		MHD_OPTION_END);
	if (!s->daemon) {
		server_stop(s);
		return qerr_set(reterr, QERR_IO, "cannot listen on %s (address in use, not permitted, or a bad TLS key)",
		                opt->listen);
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
	s->port = info ? info->port : ntohs(sa.sin_port);
	*ret = s;
	return QERR_OK;
}

void server_stop(struct server *s)
{
	if (!s)
		return;
	if (s->daemon) {
		MHD_quiesce_daemon(s->daemon); /* no new connections; those open finish */
		MHD_stop_daemon(s->daemon);
	}
	for (int i = 0; i < s->pool_n; i++)
		db_close(s->pool ? s->pool[i] : NULL);
	g_free(s->pool);
	if (s->key_pem)
		explicit_bzero(s->key_pem, strlen(s->key_pem));
	g_free(s->key_pem);
	g_free(s->cert_pem);
	g_mutex_clear(&s->pool_lock);
	g_cond_clear(&s->pool_cond);
	g_free(s);
}

uint16_t server_port(const struct server *s) { return s->port; }
int server_tls(const struct server *s) { return s->tls; }
