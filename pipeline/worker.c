/* worker: the job loop. */
#include "pipeline/worker.h"

#include <glib.h>
#include <string.h>

#include "core/audit.h"
#include "core/db.h"
#include "core/json.h"
#include "core/log.h"
#include "core/vault.h"
#include "extractors/pdftext.h"
#include "pipeline/queue.h"
#include "pipeline/store.h"

static enum qerr audit_job(struct db *db, const struct job *job, const char *action, const char *outcome,
                           const char *detail, char **reterr)
{
	struct audit_event ev = {.actor = "system:worker", .action = action, .object_type = "document",
	                         .object_id = job->document_id, .outcome = outcome, .client = "worker",
	                         .detail = detail};
	return audit_append(db, &ev, reterr);
}

static enum qerr save_result(struct db *db, const struct vault_dek *dek, const struct job *job,
                             const struct json *result, const struct pdftext_doc *doc, char **reterr)
{
	g_autofree char *result_text = json_format(result, false);
	struct json *tj = pdftext_doc_to_json(doc);
	g_autofree char *text = json_format(tj, false);
	json_free(tj);
	char sid[24], pages[16];
	g_snprintf(sid, sizeof sid, "%lld", (long long)job->document_id);
	g_snprintf(pages, sizeof pages, "%d", doc->total_pages);
	const char *type = json_get_string(result, "document_type");
	struct db_param p[3] = {DB_TEXT(sid), DB_TEXT(type ? type : "unknown"), DB_TEXT(pages)};
	enum qerr e = db_begin(db, reterr);
	if (!e)
		e = store_put(db, dek, job->document_id, "text", text, strlen(text), reterr);
	if (!e)
		e = store_put(db, dek, job->document_id, "result", result_text, strlen(result_text), reterr);
	if (!e)
		e = db_query(db,
		             "UPDATE documents SET state = 'processed', doc_type = $2, page_count = $3::int"
		             " WHERE id = $1::bigint",
		             3, p, NULL, reterr);
	if (!e)
		e = queue_complete(db, job, reterr);
	if (!e)
		e = audit_job(db, job, "job.completed", "ok", NULL, reterr);
	if (!e)
		e = db_commit(db, reterr);
	if (e)
		db_rollback(db);
	return e;
}

static enum qerr process(struct db *db, const struct vault *v, const struct worker_options *opt,
                         const struct job *job, char **reterr)
{
	struct vault_dek *dek = NULL;
	struct vault_buf pdf = {0};
	struct json *result = NULL;
	struct pdftext_doc *doc = NULL;
	enum qerr e = store_dek(db, v, job->document_id, &dek, reterr);
	if (!e)
		e = store_get(db, dek, job->document_id, "original", &pdf, reterr);
	if (!e)
		e = queue_progress(db, job, "extracting", reterr);
	if (!e)
		e = extract_document(pdf.data, pdf.len, &opt->extract, &result, &doc, reterr);
	if (!e)
		e = save_result(db, dek, job, result, doc, reterr);
	json_free(result);
	pdftext_doc_free(doc);
	vault_buf_free(&pdf);
	vault_dek_free(dek);
	return e;
}

static enum qerr record_failure(struct db *db, const struct job *job, enum qerr cause, const char *msg,
                                char **reterr)
{
	char sid[24];
	g_snprintf(sid, sizeof sid, "%lld", (long long)job->id);
	struct db_param p[1] = {DB_TEXT(sid)};
	enum qerr e = db_begin(db, reterr);
	if (!e)
		e = queue_fail(db, job, cause, msg, reterr);
	if (!e)
		e = db_query(db,
		             "UPDATE documents SET state = CASE WHEN (SELECT state FROM jobs WHERE id = $1::bigint)"
		             " = 'queued' THEN 'queued' ELSE 'failed' END WHERE id = (SELECT document_id FROM jobs"
		             " WHERE id = $1::bigint)",
		             1, p, NULL, reterr);
	if (!e)
		e = audit_job(db, job, "job.failed", "failed", qerr_str(cause), reterr);
	if (!e)
		e = db_commit(db, reterr);
	if (e)
		db_rollback(db);
	return e;
}

static enum qerr claim(struct db *db, const struct worker_options *opt, struct job *job, bool *found,
                       char **reterr)
{
	enum qerr e = db_begin(db, reterr);
	if (!e)
		e = queue_claim(db, opt->name, opt->lease_s, job, found, reterr);
	if (!e && *found) {
		char sid[24];
		g_snprintf(sid, sizeof sid, "%lld", (long long)job->document_id);
		struct db_param p[1] = {DB_TEXT(sid)};
		e = db_query(db, "UPDATE documents SET state = 'processing' WHERE id = $1::bigint", 1, p, NULL, reterr);
	}
	if (!e && *found)
		e = audit_job(db, job, "job.claimed", "ok", NULL, reterr);
	if (!e)
		e = db_commit(db, reterr);
	if (e)
		db_rollback(db);
	return e;
}

enum qerr worker_run(struct db *db, const struct vault *v, const struct worker_options *opt, volatile int *stop,
                     struct worker_stats *ret, char **reterr)
{
	struct worker_stats stats = {0};
	enum qerr e = db_exec(db, "LISTEN quire_jobs", reterr);
	while (!e && !(stop && *stop)) {
		struct job job = {0};
		bool found = false;
		e = claim(db, opt, &job, &found, reterr);
		if (e)
			break;
		if (!found) {
			if (opt->drain)
				break;
			bool notified = false;
			e = db_wait_notify(db, 2000, &notified, reterr);
			continue;
		}
		log_job(LOG_LEVEL_INFO, job.id, job.attempt, "processing document %lld", (long long)job.document_id);
		g_autofree char *err = NULL;
		enum qerr pe = process(db, v, opt, &job, &err);
		if (!pe) {
			stats.done++;
			log_job(LOG_LEVEL_INFO, job.id, job.attempt, "document %lld processed", (long long)job.document_id);
			continue;
		}
		stats.failed++;
		bool retry = qerr_group(pe) == QERR_GROUP_TRANSIENT && job.attempt < job.max_attempts;
		log_job(LOG_LEVEL_WARN, job.id, job.attempt, "document %lld failed: %s%s", (long long)job.document_id,
		        err ? err : qerr_str(pe), retry ? ", will retry" : "");
		if (pe == QERR_CONFLICT)
			continue; /* the lease is gone; the newer attempt owns the job */
		g_autofree char *ferr = NULL;
		if (record_failure(db, &job, pe, err ? err : qerr_str(pe), &ferr))
			log_job(LOG_LEVEL_WARN, job.id, job.attempt, "could not record the failure: %s, the lease will expire",
			        ferr);
	}
	if (!e && ret)
		*ret = stats;
	return e;
}
