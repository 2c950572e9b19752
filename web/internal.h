/* internal: what the files of web/ share, and nothing outside web/ sees.
 *
 * server.c owns libmicrohttpd: it turns each HTTP request into a struct
 * web_req (method, path, client, query, form fields, the outcomes of uploaded
 * files whose bytes went on to the vault as they came (upload.c), or a JSON
 * body, all with limits), finds its route, authenticates it (session.c),
 * checks the route's permission and, for state changes, the CSRF defences,
 * then calls the handler with a database connection from the pool and sends
 * the struct web_resp it filled, adding the security headers. Handlers never
 * see libmicrohttpd. Every handler checks object-level access itself (an
 * operator sees only the documents it uploaded) and answers 404 for what the
 * caller may not see, so existence does not leak. */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/qerr.h"
#include "core/users.h"
#include "web/server.h"

#define WEB_DISCARD_FACTOR 2u         /* a refused body is read and discarded up to this times the limit */
#define WEB_MAX_FORM (64u << 10)     /* urlencoded form or plain multipart fields, in all */
#define WEB_MAX_JSON (1u << 20)      /* JSON request bodies */
#define WEB_MAX_FILES 20             /* files in one upload */
#define WEB_MAX_FORM_FIELDS 200
#define WEB_MAX_HEADERS 64           /* header lines in one request */
#define WEB_MAX_FAILED_VERIFY 200    /* audit rows shown per page */

struct db;
struct vault;

/* Route flags. */
enum {
	WEB_PUBLIC = 1 << 0, /* no authentication */
	WEB_API = 1 << 1,    /* JSON errors; API tokens accepted */
	WEB_UPLOAD = 1 << 2, /* body may hold PDFs (multipart, or raw application/pdf for the API) */
	WEB_JSON = 1 << 3,   /* body may be JSON */
	WEB_ANY_ROLE = 1 << 4, /* any authenticated principal */
};

/* One file of an upload and its outcome; its content went to the vault as it came (upload.c). */
struct web_file {
	char *field;
	char *name;       /* as the client sent it, made valid UTF-8 */
	uint64_t bytes;   /* received */
	bool stored;      /* in the upload's transaction (doc_id, job_id, existing) */
	bool existing;    /* the same content (or Idempotency-Key) was there already */
	int64_t doc_id, job_id;
	enum qerr e;      /* why it is refused: QERR_OK, or the code of error */
	char *error;      /* a message for people, or NULL */
};

struct upload;

struct web_req {
	struct server *srv;
	const char *method;
	const char *path;
	char client[64];
	bool tls;
	GHashTable *query; /* char* -> char* */
	GHashTable *form;  /* char* -> char* */
	GPtrArray *files;  /* struct web_file*, of an upload */
	struct upload *upload; /* upload.c; NULL unless the body is an upload */
	GByteArray *body;  /* JSON or a URL-encoded form (uploads never come here) */
	char *content_type;
	const char *idempotency_key; /* a request header, or NULL */
	/* who is asking */
	bool authed;
	bool by_cookie; /* a browser session (CSRF defences apply) */
	struct users_principal who;
	char *user_name;   /* for sessions */
	int64_t session_id;
	char *csrf;        /* the session's CSRF token */
	int64_t ids[2];    /* numbers captured from the path */
	struct db *db;     /* borrowed from the pool while the handler runs */
	void *conn;        /* the libmicrohttpd connection (server.c only) */
};

struct web_resp {
	unsigned status;
	const char *type; /* static string */
	GString *body;
	GBytes *bytes;    /* instead of body, for binary replies */
	GPtrArray *headers; /* alternating names and values (g_free) */
	bool cacheable;   /* static assets only; everything else is no-store */
};

typedef void (*web_handler)(struct web_req *req, struct web_resp *resp);

struct web_route {
	const char *method;
	const char *pattern; /* "*" in a segment captures a positive integer */
	unsigned perms;      /* bit mask of enum users_perm: any one of them suffices */
	unsigned flags;
	web_handler fn;
};

#define P(perm) (1u << (perm))

/* A document's review state as people see it: a pending document the extraction approved
 * automatically (documents.auto_approved, migration 0004) counts as approved, until a
 * correction sends it back to review. SQL over documents aliased d. */
#define WEB_REVIEW_STATE "(CASE WHEN d.review_state = 'pending' AND d.auto_approved THEN 'approved' ELSE d.review_state END)"
#define WEB_REVIEWED_BY "(CASE WHEN d.review_state = 'pending' AND d.auto_approved THEN 'auto' ELSE d.reviewed_by END)"

/* server.c */
const struct server_options *web_opt(const struct web_req *req);
const struct vault *web_vault(const struct web_req *req);
const char *web_header(const struct web_req *req, const char *name);
const char *web_cookie(const struct web_req *req, const char *name);
const char *web_form(const struct web_req *req, const char *key);
const char *web_query(const struct web_req *req, const char *key);
void web_resp_header(struct web_resp *resp, const char *name, const char *value);
void web_text(struct web_resp *resp, unsigned status, const char *type, const char *text);
/* A JSON error {"error":{"code":..,"message":..}}. */
void web_json_error(struct web_resp *resp, unsigned status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void web_redirect(struct web_resp *resp, const char *location);
/* Maps a result code to an HTTP status and a stable API error code. */
unsigned web_status_of(enum qerr e, const char **ret_code);
/* Statistics shared with the dashboard and /metrics. */
void web_stats(const struct web_req *req, uint64_t *ret_requests, uint64_t *ret_refused);
/* One of web.max_uploads for the request (false: all are taken), and its release. */
bool web_uploads_enter(struct web_req *req);
void web_uploads_leave(struct web_req *req);
/* Login throttling: seconds the caller must still wait (0: may try now). */
int web_throttle_wait(struct web_req *req, const char *name);
void web_throttle_note(struct web_req *req, const char *name, bool ok);

/* session.c */
/* Authenticates from the Authorization header (API routes) or the session cookie; sets req->authed. */
enum qerr session_authenticate(struct web_req *req, bool api, char **reterr) QUIRE_MUST_CHECK;
/* Origin / Sec-Fetch-Site check for a state-changing request: false when it comes from another site. */
bool session_origin_ok(const struct web_req *req);
/* The form's (or X-CSRF-Token header's) token matches the session's. */
bool session_csrf_ok(const struct web_req *req);
const char *session_cookie_name(const struct web_req *req);
extern const struct web_route session_routes[];

/* upload.c: the files of an upload body, streamed into the vault */
struct json;
/* With the headers of an upload: a connection and transaction of its own, and the request's
 * Idempotency-Key looked up. 0, or an HTTP status with *code (static) and *msg (g_free). */
unsigned upload_start(struct web_req *req, const char **code, char **msg);
/* A file part begins (the file is added to req->files), continues, ends. A file refused on
 * the way (name, declared type, size, signature, database) gets its outcome and the rest of
 * its bytes are dropped. */
void upload_file_begin(struct web_req *req, const char *field, const char *filename, const char *type);
void upload_file_data(struct web_req *req, const void *data, size_t len);
void upload_file_end(struct web_req *req);
/* The request is accepted: stores what was received for good. *ret: each file's outcome
 * (json array, json_free), or the earlier upload's when the Idempotency-Key named one. */
void upload_commit(struct web_req *req, struct json **ret);
/* Drops what was not committed and frees req->upload (NULL is fine). */
void upload_end(struct web_req *req);

/* html.c */
void html_escape(GString *out, const char *text);
void html_begin(struct web_req *req, struct web_resp *resp, const char *title, const char *active);
void html_end(struct web_resp *resp);
/* A hidden input with the session's CSRF token. */
void html_csrf(struct web_req *req, GString *out);
void html_message(GString *out, const char *kind, const char *text);
/* An error page with status. */
void html_error(struct web_req *req, struct web_resp *resp, unsigned status, const char *text);
extern const struct web_route asset_routes[];

/* pages.c, review.c, api.c */
extern const struct web_route page_routes[];
extern const struct web_route review_routes[];
extern const struct web_route api_routes[];

/* charts.c: bar and line charts as inline SVG (no script, no style attribute) */
struct chart_series {
	const char *name; /* in each bar's title */
	const char *cls;  /* the stylesheet's class for its colour */
	const double *v;  /* n values */
};
/* The top of a value axis for values up to max: 1, 2 or 5 times a power of ten (1 for none). */
double chart_axis_max(double max);
/* n slots of ns stacked series; labels (n, or NULL) under every label_every-th slot. */
void chart_bars(GString *b, const char *title, const struct chart_series *s, int ns, int n,
                const char *const *labels, int label_every);
/* One series of n points joined by a line. */
void chart_line(GString *b, const char *title, const char *name, const double *v, int n, const char *const *labels,
                int label_every);

/* insights.c: the dashboard's charts and the quality page */
void insights_dashboard(struct web_req *req, GString *b);
extern const struct web_route insight_routes[];

/* reviewtable.c: the review screen's tables, checks and flow */
/* A list-of-objects field (line items, tax lines) as an editable table: inputs named
 * table.KEY.ROW.COLUMN, a spare row, a Remove box per row, hidden table.KEY = the row count. */
void review_table(GString *b, const char *schemas_dir, const char *doctype, const char *key, size_t fi,
                  const struct json *rows);
/* The tables posted in the form, as new values of their fields, into changes. */
enum qerr review_tables_from_form(struct web_req *req, const char *doctype, const struct json *fields,
                                  struct json *changes, char **reterr) QUIRE_MUST_CHECK;
/* A number as the review form shows it (g_free): 2 decimals for whole cents, else in full. */
char *review_number_text(double num);
/* validate_values() on the fields' current values (json_free). */
struct json *review_checks(const struct json *fields);
/* The failed checks that involve field key, as HTML (and hidden places for the sums the script
 * checks as values are typed). */
void review_checks_html(GString *b, const struct json *checks, const char *key);
/* The next document after id that needs a person's review (wrapping around; 0: none), and how
 * many besides id need one. */
int64_t review_next(struct web_req *req, int64_t id, int64_t *ret_left);

/* docs.c: document data shared by pages and the API */
struct json;
/* Whether the caller may see document id (exists, and owned when the caller has only UPLOAD). */
bool docs_visible(struct web_req *req, int64_t id);
/* The documents matching the request's filters (state, type, from, to, review, q, before), newest
 * first, at most one page; operators get only their own. *ret: json array (json_free). */
enum qerr docs_list(struct web_req *req, struct json **ret, char **reterr) QUIRE_MUST_CHECK;
/* The latest result of a document, parsed (json_free), and its version. */
enum qerr docs_result(struct web_req *req, int64_t id, struct json **ret, int *ret_version, char **reterr)
	QUIRE_MUST_CHECK;
/* Applies corrections (an object field -> new value) as a new result version. */
enum qerr docs_correct(struct web_req *req, int64_t id, const struct json *changes, int *ret_version, char **reterr)
	QUIRE_MUST_CHECK;
/* Sets the review state ("approved" / "rejected"). */
enum qerr docs_review(struct web_req *req, int64_t id, const char *state, char **reterr) QUIRE_MUST_CHECK;
/* A document's metadata as JSON (json_free). */
enum qerr docs_info(struct web_req *req, int64_t id, struct json **ret, char **reterr) QUIRE_MUST_CHECK;
/* Opens a sealed payload of a document into guarded memory. */
struct vault_buf;
enum qerr docs_payload(struct web_req *req, int64_t id, const char *purpose, struct vault_buf *ret, char **reterr)
	QUIRE_MUST_CHECK;
/* Adds an audit entry by the caller. */
enum qerr docs_audit(struct web_req *req, const char *action, const char *type, int64_t id, const char *outcome,
                     const char *detail, char **reterr) QUIRE_MUST_CHECK;
