/* metrics: one query for every figure (one consistent snapshot, one round trip),
 * then the text format: a HELP and a TYPE line per metric, then its samples. */
#include "web/metrics.h"

#include <glib.h>
#include <math.h>
#include <string.h>

#include "core/db.h"

/* Rows: metric key, label value ('' for none), value. */
static const char METRICS_SQL[] =
	"SELECT 'jobs', s, coalesce(j.c, 0)::float8 FROM unnest(ARRAY['queued','running','done','failed','dead',"
	"'cancelled']) s LEFT JOIN (SELECT state, count(*) c FROM jobs GROUP BY state) j ON j.state = s"
	" UNION ALL SELECT 'oldest', '', coalesce(extract(epoch FROM now() - min(run_at)), 0)::float8 FROM jobs"
	"  WHERE state = 'queued' AND run_at <= now()"
	" UNION ALL SELECT 'duration', q::text, v FROM (SELECT unnest(ARRAY[0.5, 0.9, 0.99]) q,"
	"  unnest(percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY d)) v FROM (SELECT"
	"  extract(epoch FROM finished_at - started_at)::float8 d FROM jobs WHERE state = 'done'"
	"  AND finished_at > now() - interval '1 hour' AND started_at IS NOT NULL) x HAVING count(*) > 0) y"
	" UNION ALL SELECT 'duration_sum', '', coalesce(sum(extract(epoch FROM finished_at - started_at)), 0)::float8"
	"  FROM jobs WHERE state = 'done' AND finished_at > now() - interval '1 hour' AND started_at IS NOT NULL"
	" UNION ALL SELECT 'duration_count', '', count(*)::float8 FROM jobs WHERE state = 'done'"
	"  AND finished_at > now() - interval '1 hour' AND started_at IS NOT NULL"
	" UNION ALL SELECT 'completed', '', count(*)::float8 FROM audit_log WHERE action = 'job.completed'"
	" UNION ALL SELECT 'failures', detail, count(*)::float8 FROM audit_log WHERE action = 'job.failed'"
	"  GROUP BY detail"
	" UNION ALL SELECT 'failures', 'lease expired', count(*)::float8 FROM audit_log"
	"  WHERE action = 'job.lease_expired' HAVING count(*) > 0"
	" UNION ALL SELECT 'documents', s, coalesce(d.c, 0)::float8 FROM unnest(ARRAY['queued','processing',"
	"'processed','failed','erased','cancelled']) s LEFT JOIN (SELECT state, count(*) c FROM documents"
	"  GROUP BY state) d ON d.state = s"
	" UNION ALL SELECT 'pages', '', coalesce(sum(page_count), 0)::float8 FROM documents WHERE state = 'processed'"
	" UNION ALL SELECT 'rejected', '', count(*)::float8 FROM audit_log WHERE action = 'watch.rejected'"
	" UNION ALL SELECT 'ocr_pages', '', coalesce((SELECT value FROM counters WHERE name = 'pages'"
	"  AND label = 'ocr'), 0)"
	" UNION ALL SELECT 'pages_read', m, coalesce(c.value, 0) FROM unnest(ARRAY['text','ocr','none']) m"
	"  LEFT JOIN counters c ON c.name = 'pages' AND c.label = m"
	" UNION ALL SELECT 'model_documents', '', coalesce((SELECT value FROM counters"
	"  WHERE name = 'model_documents'), 0)"
	" UNION ALL SELECT 'model_tokens', k, coalesce(c.value, 0) FROM unnest(ARRAY['prompt','generated']) k"
	"  LEFT JOIN counters c ON c.name = 'model_' || k || '_tokens' AND c.label = ''"
	" UNION ALL SELECT 'model_seconds', '', coalesce((SELECT value FROM counters"
	"  WHERE name = 'model_generation_seconds'), 0)"
	" UNION ALL SELECT 'model_tps', '', coalesce((SELECT t.value / nullif(s.value, 0) FROM counters t, counters s"
	"  WHERE t.name = 'model_generated_tokens' AND s.name = 'model_generation_seconds'), 0)";

struct metric {
	const char *key;
	const char *name;
	const char *type;
	const char *label; /* label name, or NULL */
	const char *help;
};

static const struct metric metrics[] = {
	{"jobs", "quire_jobs", "gauge", "state", "Jobs by state."},
	{"oldest", "quire_job_oldest_queued_seconds", "gauge", NULL, "Age of the oldest job waiting to run."},
	{"duration", "quire_job_duration_seconds", "summary", "quantile",
	 "Claim-to-finish time of the jobs done in the last hour."},
	{"completed", "quire_jobs_completed_total", "counter", NULL, "Jobs completed."},
	{"failures", "quire_job_failures_total", "counter", "reason", "Failed job attempts by reason."},
	{"documents", "quire_documents", "gauge", "state", "Documents by state."},
	{"pages", "quire_pages_processed_total", "counter", NULL, "Pages of the processed documents."},
	{"rejected", "quire_watch_rejected_total", "counter", NULL, "Files the watched folder refused."},
	{"ocr_pages", "quire_ocr_pages_total", "counter", NULL, "Pages read by OCR (no usable text layer)."},
	{"pages_read", "quire_pages_read_total", "counter", "method",
	 "Pages of completed jobs by how their text was read: text layer, OCR, or none."},
	{"model_documents", "quire_model_documents_total", "counter", NULL, "Completed jobs whose fields the model read."},
	{"model_tokens", "quire_model_tokens_total", "counter", "kind",
	 "Model tokens of field extraction: prompt tokens evaluated, tokens generated."},
	{"model_seconds", "quire_model_generation_seconds_total", "counter", NULL,
	 "Time the model spent generating; rate(quire_model_tokens_total{kind=\"generated\"}[5m]) / "
	 "rate(quire_model_generation_seconds_total[5m]) is the recent generation speed."},
	{"model_tps", "quire_model_tokens_per_second", "gauge", NULL,
	 "Generated tokens per second of generation time, over every job counted so far."},
};

/* Label values may hold anything; the format escapes backslash, quote and newline. */
static void append_label(GString *out, const char *v)
{
	for (const char *p = v; *p; p++) {
		if (*p == '\\' || *p == '"')
			g_string_append_c(out, '\\');
		if (*p == '\n')
			g_string_append(out, "\\n");
		else
			g_string_append_c(out, *p);
	}
}

static void append_value(GString *out, double v)
{
	char buf[G_ASCII_DTOSTR_BUF_SIZE];
	g_string_append(out, isfinite(v) ? g_ascii_formatd(buf, sizeof buf, "%.9g", v) : "NaN");
	g_string_append_c(out, '\n');
}

static void append_metric(GString *out, const struct metric *m, struct db_res *res)
{
	g_string_append_printf(out, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help, m->name, m->type);
	for (int r = 0; r < db_res_rows(res); r++) {
		if (strcmp(db_res_text(res, r, 0), m->key) != 0)
			continue;
		g_string_append(out, m->name);
		if (m->label) {
			g_string_append_printf(out, "{%s=\"", m->label);
			append_label(out, db_res_text(res, r, 1));
			g_string_append(out, "\"}");
		}
		g_string_append_c(out, ' ');
		append_value(out, g_ascii_strtod(db_res_text(res, r, 2), NULL));
	}
	if (strcmp(m->type, "summary") != 0)
		return;
	for (int r = 0; r < db_res_rows(res); r++) {
		const char *k = db_res_text(res, r, 0);
		if (g_str_has_prefix(k, m->key) && k[strlen(m->key)] == '_') {
			g_string_append_printf(out, "%s%s ", m->name, k + strlen(m->key));
			append_value(out, g_ascii_strtod(db_res_text(res, r, 2), NULL));
		}
	}
}

enum qerr metrics_format(struct db *db, char **ret, char **reterr)
{
	struct db_res *res = NULL;
	enum qerr e = db_query(db, METRICS_SQL, 0, NULL, &res, reterr);
	GString *out = g_string_new("# HELP quire_db_up Whether the database answered the metrics queries.\n"
	                            "# TYPE quire_db_up gauge\n");
	g_string_append_printf(out, "quire_db_up %d\n", e ? 0 : 1);
	for (size_t i = 0; !e && i < G_N_ELEMENTS(metrics); i++)
		append_metric(out, &metrics[i], res);
	db_res_free(res);
	*ret = g_string_free(out, FALSE);
	return e;
}
