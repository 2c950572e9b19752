/* upload: PDFs streamed from a request body into the vault.
 *
 * An upload (a WEB_UPLOAD route's multipart or application/pdf body) never
 * exists whole in memory or in a file: each piece libmicrohttpd hands over
 * goes through the multipart parser into a store_writer, which hashes it,
 * checks it and stores it sealed, chunk by chunk. The checks that need the
 * whole file (size, signature, dedupe hash) run as the bytes pass.
 *
 * Each upload has a database connection of its own, opened with the headers
 * and held until the request ends: the pool's connections serve requests
 * that finish within one call, and an upload spans many. The files of one
 * request go into one transaction, each in its own savepoint, so a refused
 * file leaves nothing while the others stay, and nothing at all is visible
 * before the request is accepted: the CSRF token is checked after the body,
 * and only then does upload_commit() record the idempotency key, audit each
 * new document (the audit lock is taken only there, for a moment) and
 * commit. A request refused or abandoned at any point rolls everything back.
 * web.max_uploads bounds the uploads received at once, and so the
 * connections they hold.
 *
 * The password of an encrypted PDF comes in the X-PDF-Password header or the
 * form field "pdf_password", which a form must send before its files (the
 * upload page does); it applies to every file of the request, is stored
 * sealed with each document and is never logged.
 *
 * A document type chosen by the uploader (the API's X-Document-Type header or
 * ?type=, checked before the body is read, or the form field "type", sent
 * before the files) overrides classification for every file; "detect" or
 * nothing leaves it to classification. An unknown type is refused. */
#include "web/internal.h"

#include <string.h>

#define UPLOAD_PASSWORD_FIELD "pdf_password"
#define UPLOAD_TYPE_FIELD "type"
#define UPLOAD_TYPE_DETECT "detect"

#include "core/audit.h"
#include "core/db.h"
#include "core/json.h"
#include "core/log.h"
#include "extractors/doctype.h"
#include "pipeline/store.h"
#include "web/formdata.h"

struct upload {
	struct db *db;
	bool slot;              /* holds one of web.max_uploads */
	bool open;              /* the transaction is open */
	struct web_file *file;  /* the file being received, or NULL */
	struct store_writer *w; /* its writer, or NULL when it is refused */
	bool hit;               /* the Idempotency-Key names an earlier upload: nothing is stored */
	struct store_submitted earlier;
	char *doc_type; /* given in the request's header or query; NULL: classify */
};

/* The type an uploader named: *ret (g_free) is NULL for none or "detect". QERR_BAD_INPUT
 * names the known types when name is not one of them. */
static enum qerr check_type(struct web_req *req, const char *name, char **ret, char **reterr)
{
	*ret = NULL;
	if (!name || !name[0] || strcmp(name, UPLOAD_TYPE_DETECT) == 0)
		return QERR_OK;
	const struct doctypes *types = NULL;
	enum qerr e = doctypes_shared(web_opt(req)->schemas_dir, &types, reterr);
	if (e)
		return e;
	if (doctypes_find(types, name)) {
		*ret = g_strdup(name);
		return QERR_OK;
	}
	g_autoptr(GString) known = g_string_new(NULL);
	for (size_t i = 0; i < doctypes_count(types); i++)
		g_string_append_printf(known, "%s%s", i ? ", " : "", doctypes_at(types, i)->name);
	g_autofree char *shown = g_utf8_make_valid(name, MIN(strlen(name), 64));
	return qerr_set(reterr, QERR_BAD_INPUT, "unknown document type \"%s\"; known: %s, or %s to classify", shown,
	                known->str, UPLOAD_TYPE_DETECT);
}

unsigned upload_start(struct web_req *req, const char **code, char **msg)
{
	struct upload *u = g_new0(struct upload, 1);
	req->upload = u;
	*code = "unavailable";
	if (!web_uploads_enter(req)) {
		*msg = g_strdup("too many uploads are being received at once; try again shortly");
		return 503;
	}
	u->slot = true;
	g_autofree char *err = NULL;
	const char *type = web_header(req, "X-Document-Type");
	if (!type || !type[0])
		type = web_query(req, UPLOAD_TYPE_FIELD);
	enum qerr e = check_type(req, type, &u->doc_type, &err);
	if (e) {
		*msg = g_steal_pointer(&err);
		return web_status_of(e, code);
	}
	e = db_connect(web_opt(req)->conninfo, &u->db, &err);
	if (!e)
		e = db_begin(u->db, &err);
	u->open = !e;
	const char *key = req->idempotency_key;
	if (!e && key && key[0])
		e = store_find_key(u->db, web_vault(req), key, &u->earlier, &u->hit, &err);
	if (!e)
		return 0;
	if (e != QERR_BAD_INPUT)
		log_warn("upload from %s: %s", req->client, err ? err : qerr_str(e));
	unsigned st = web_status_of(e, code);
	*msg = g_strdup(e == QERR_BAD_INPUT && err ? err : "the database is unavailable; try again shortly");
	return st;
}

static void file_refuse(struct web_file *f, enum qerr e, const char *why)
{
	if (f->e)
		return;
	f->e = e;
	f->error = g_strdup(why ? why : qerr_str(e));
}

void upload_file_begin(struct web_req *req, const char *field, const char *filename, const char *type)
{
	struct upload *u = req->upload;
	store_writer_abort(u->w); /* a file never ended (the parser always ends one first) */
	u->w = NULL;
	struct web_file *f = g_new0(struct web_file, 1);
	f->field = g_strdup(field);
	f->name = g_utf8_make_valid(filename, -1);
	g_ptr_array_add(req->files, f);
	u->file = f;
	if (!formdata_filename_ok(filename)) {
		file_refuse(f, QERR_BAD_INPUT,
		            "the file name is not acceptable (path separators, control characters or a leading dot)");
		return;
	}
	if (type[0] && g_ascii_strcasecmp(type, "application/pdf") != 0 &&
	    g_ascii_strcasecmp(type, "application/octet-stream") != 0) {
		file_refuse(f, QERR_BAD_INPUT, "the file's declared type is not application/pdf");
		return;
	}
	if (u->hit)
		return;
	g_autofree char *form_type = NULL, *err = NULL;
	enum qerr e = check_type(req, web_form(req, UPLOAD_TYPE_FIELD), &form_type, &err);
	if (e) {
		file_refuse(f, e, err);
		return;
	}
	const char *password = web_header(req, "X-PDF-Password");
	if (!password || !password[0])
		password = web_form(req, UPLOAD_PASSWORD_FIELD);
	struct store_writer_options o = {.max_bytes = web_opt(req)->max_file_bytes,
	                                 .require_pdf = true,
	                                 .job = {.max_attempts = web_opt(req)->max_attempts},
	                                 .password = password,
	                                 .doc_type = form_type ? form_type : u->doc_type};
	e = store_writer_open(u->db, web_vault(req), &o, &u->w, &err);
	if (e)
		file_refuse(f, e, err);
}

void upload_file_data(struct web_req *req, const void *data, size_t len)
{
	struct upload *u = req->upload;
	if (!u->file)
		return;
	u->file->bytes += len;
	if (!u->w) /* refused, or answered by an earlier upload: the rest is read and dropped */
		return;
	g_autofree char *err = NULL;
	enum qerr e = store_writer_write(u->w, data, len, &err);
	if (e) {
		store_writer_abort(u->w);
		u->w = NULL;
		file_refuse(u->file, e, err);
	}
}

void upload_file_end(struct web_req *req)
{
	struct upload *u = req->upload;
	struct web_file *f = u->file;
	u->file = NULL;
	if (!f || !u->w)
		return;
	g_autofree char *err = NULL;
	struct store_submitted s = {0};
	enum qerr e = store_writer_finish(u->w, f->name, &s, &err);
	u->w = NULL;
	if (e) {
		file_refuse(f, e, err);
		return;
	}
	f->stored = true;
	f->doc_id = s.doc_id;
	f->job_id = s.job_id;
	f->existing = s.existing;
}

/* A new document: its uploader (who may see it with only the upload permission) and its audit entry. */
static enum qerr record_new(struct web_req *req, struct web_file *f, char **reterr)
{
	char sid[24];
	g_snprintf(sid, sizeof sid, "%lld", (long long)f->doc_id);
	struct db_param p[2] = {DB_TEXT(sid), DB_TEXT(req->who.actor)};
	enum qerr e = db_query(req->upload->db, "UPDATE documents SET uploaded_by = $2 WHERE id = $1::bigint", 2, p,
	                       NULL, reterr);
	struct audit_event ev = {.actor = req->who.actor,
	                         .action = "document.submitted",
	                         .object_type = "document",
	                         .object_id = f->doc_id,
	                         .outcome = "ok",
	                         .client = req->client};
	if (!e)
		e = audit_append(req->upload->db, &ev, reterr);
	return e;
}

/* The key names the request's only file once it is stored; another request that stored a
 * file under the same key first wins, and this one's file is dropped in its favour. */
static enum qerr record_key(struct web_req *req, struct web_file *f, bool *ret_lost, char **reterr)
{
	struct upload *u = req->upload;
	*ret_lost = false;
	enum qerr e = store_set_key(u->db, web_vault(req), f->doc_id, req->idempotency_key, reterr);
	if (e != QERR_CONFLICT)
		return e;
	db_rollback(u->db);
	u->open = false;
	struct store_submitted s = {0};
	bool found = false;
	e = store_find_key(u->db, web_vault(req), req->idempotency_key, &s, &found, reterr);
	if (!e && !found)
		e = qerr_set(reterr, QERR_CONFLICT, "another upload with this Idempotency-Key is in progress");
	if (e)
		return e;
	f->doc_id = s.doc_id;
	f->job_id = s.job_id;
	f->existing = true;
	*ret_lost = true;
	return QERR_OK;
}

static enum qerr commit(struct web_req *req, char **reterr)
{
	struct upload *u = req->upload;
	GPtrArray *files = req->files;
	const char *key = req->idempotency_key;
	enum qerr e = QERR_OK;
	if (key && key[0] && files->len == 1) {
		struct web_file *f = files->pdata[0];
		bool lost = false;
		if (f->stored && !f->existing)
			e = record_key(req, f, &lost, reterr);
		if (e || lost)
			return e;
	}
	for (guint i = 0; i < files->len && !e; i++) {
		struct web_file *f = files->pdata[i];
		if (f->stored && !f->existing)
			e = record_new(req, f, reterr);
	}
	if (!e)
		e = db_commit(u->db, reterr);
	if (!e)
		u->open = false;
	return e;
}

static struct json *outcome(const struct web_file *f)
{
	struct json *o = json_new_object();
	json_add_string(o, "file", f->name);
	if (!f->stored) {
		const char *code = NULL;
		json_add_number(o, "status", web_status_of(f->e, &code));
		json_add_string(o, "error", code);
		json_add_string(o, "message", f->error ? f->error : qerr_str(f->e));
		return o;
	}
	json_add_number(o, "status", f->existing ? 200 : 201);
	json_add_number(o, "document_id", (double)f->doc_id);
	json_add_number(o, "job_id", (double)f->job_id);
	json_add_bool(o, "existing", f->existing);
	return o;
}

void upload_commit(struct web_req *req, struct json **ret)
{
	struct upload *u = req->upload;
	struct json *arr = json_new_array();
	*ret = arr;
	if (!u)
		return;
	if (u->hit) { /* the answer of the earlier upload; what came now was dropped */
		struct web_file *f = req->files->len ? req->files->pdata[0] : NULL;
		struct web_file earlier = {.name = f ? f->name : (char *)"",
		                           .stored = true,
		                           .existing = true,
		                           .doc_id = u->earlier.doc_id,
		                           .job_id = u->earlier.job_id};
		json_append(arr, outcome(&earlier));
		return;
	}
	g_autofree char *err = NULL;
	enum qerr e = commit(req, &err);
	if (e) {
		log_warn("upload from %s not stored: %s", req->client, err ? err : qerr_str(e));
		for (guint i = 0; i < req->files->len; i++) {
			struct web_file *f = req->files->pdata[i];
			if (f->stored) {
				f->stored = false;
				file_refuse(f, e, "the upload could not be stored; try again");
			}
		}
	}
	for (guint i = 0; i < req->files->len; i++)
		json_append(arr, outcome(req->files->pdata[i]));
}

void upload_end(struct web_req *req)
{
	struct upload *u = req->upload;
	if (!u)
		return;
	store_writer_abort(u->w);
	char *password = (char *)web_form(req, UPLOAD_PASSWORD_FIELD); /* the form's copy, wiped */
	if (password)
		explicit_bzero(password, strlen(password));
	if (u->open)
		db_rollback(u->db);
	db_close(u->db);
	if (u->slot)
		web_uploads_leave(req);
	g_free(u->doc_type);
	g_free(u);
	req->upload = NULL;
}
