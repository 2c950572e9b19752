/* insights: the dashboard's charts and the quality page, drawn from what the
 * database already counts (nothing decrypted).
 *
 * Dashboard: documents finished per hour over the last day and the last week
 * (jobs done, by the hour they finished), the queue's depth at each hour of
 * the last day (jobs created and not yet started then), and per day of the
 * last two weeks the documents approved automatically, decided by a person,
 * and still waiting for one.
 *
 * Quality: from field_reviews (migration 0015), for each field over the last
 * 30 days how many reviewed documents had it corrected, and the confidence the
 * extraction gave to values later corrected versus values kept, by tenths of
 * confidence: the evidence for choosing fields.auto_approve. */
#include "web/internal.h"

#include <string.h>

#include "core/db.h"

#define WEEK_HOURS 168

static void hours_chart(struct web_req *req, GString *b, int hours, const char *title)
{
	char n[16];
	g_snprintf(n, sizeof n, "%d", hours);
	struct db_param p[1] = {DB_TEXT(n)};
	struct db_res *res = NULL;
	if (db_query(
	        req->db,
	        "SELECT to_char(h AT TIME ZONE 'UTC', CASE WHEN $1::int > 24 THEN 'Dy HH24:00' ELSE 'HH24:00' END),"
	        " count(j.id) FROM generate_series(date_trunc('hour', now()) - ($1::int - 1) * interval '1 hour',"
	        " date_trunc('hour', now()), interval '1 hour') h LEFT JOIN jobs j ON j.state = 'done'"
	        " AND j.finished_at >= h AND j.finished_at < h + interval '1 hour' GROUP BY h ORDER BY h",
	        1, p, &res, NULL) != QERR_OK)
		return;
	int rows = MIN(db_res_rows(res), WEEK_HOURS);
	double v[WEEK_HOURS];
	const char *labels[WEEK_HOURS];
	double total = 0;
	for (int r = 0; r < rows; r++) {
		v[r] = (double)db_res_int(res, r, 1);
		labels[r] = db_res_text(res, r, 0);
		total += v[r];
	}
	struct chart_series s = {"documents", "bar-a", v};
	g_string_append(b, "<figure class=\"chart\"><h3>");
	html_escape(b, title);
	g_string_append_printf(b, "</h3>");
	chart_bars(b, title, &s, 1, rows, labels, hours > 24 ? 24 : 3);
	g_string_append_printf(
	    b, "<figcaption class=\"hint\">%.0f documents finished, UTC hours.</figcaption></figure>", total);
	db_res_free(res);
}

static void queue_chart(struct web_req *req, GString *b)
{
	struct db_res *res = NULL;
	if (db_query(req->db,
	             "SELECT to_char(t AT TIME ZONE 'UTC', 'HH24:MI'), (SELECT count(*) FROM jobs j WHERE"
	             " j.created_at <= t AND (j.started_at IS NULL OR j.started_at > t)"
	             " AND (j.finished_at IS NULL OR j.finished_at > t))"
	             " FROM generate_series(now() - interval '23 hours', now(), interval '1 hour') t ORDER BY t",
	             0, NULL, &res, NULL) != QERR_OK)
		return;
	int rows = MIN(db_res_rows(res), 24);
	double v[24];
	const char *labels[24];
	for (int r = 0; r < rows; r++) {
		v[r] = (double)db_res_int(res, r, 1);
		labels[r] = db_res_text(res, r, 0);
	}
	g_string_append(b, "<figure class=\"chart\"><h3>Queue depth, last 24 hours</h3>");
	chart_line(b, "Queue depth, last 24 hours", "jobs waiting", v, rows, labels, 4);
	g_string_append_printf(b,
	                       "<figcaption class=\"hint\">Jobs waiting to start at each hour; now %.0f.</figcaption>"
	                       "</figure>",
	                       rows ? v[rows - 1] : 0);
	db_res_free(res);
}

static void review_share_chart(struct web_req *req, GString *b)
{
	struct db_res *res = NULL;
	if (db_query(req->db,
	             "SELECT to_char(day, 'Mon DD'),"
	             " count(d.id) FILTER (WHERE d.auto_approved AND d.review_state = 'pending'),"
	             " count(d.id) FILTER (WHERE d.review_state IN ('approved', 'rejected')),"
	             " count(d.id) FILTER (WHERE d.review_state = 'pending' AND NOT coalesce(d.auto_approved, false))"
	             " FROM generate_series(date_trunc('day', now()) - interval '13 days', date_trunc('day', now()),"
	             " interval '1 day') day LEFT JOIN documents d ON d.state = 'processed' AND d.created_at >= day"
	             " AND d.created_at < day + interval '1 day' GROUP BY day ORDER BY day",
	             0, NULL, &res, NULL) != QERR_OK)
		return;
	int rows = MIN(db_res_rows(res), 14);
	double a[14], r[14], w[14], ta = 0, tr = 0, tw = 0;
	const char *labels[14];
	for (int i = 0; i < rows; i++) {
		labels[i] = db_res_text(res, i, 0);
		ta += a[i] = (double)db_res_int(res, i, 1);
		tr += r[i] = (double)db_res_int(res, i, 2);
		tw += w[i] = (double)db_res_int(res, i, 3);
	}
	struct chart_series s[3] = {
	    {"approved automatically", "bar-a", a}, {"reviewed", "bar-b", r}, {"waiting for review", "bar-c", w}};
	g_string_append(b, "<figure class=\"chart\"><h3>Approved automatically and reviewed, last 14 days</h3>");
	chart_bars(b, "Documents approved automatically, reviewed and waiting, per day", s, 3, rows, labels, 2);
	double all = ta + tr + tw;
	g_string_append_printf(b,
	                       "<figcaption class=\"legend hint\"><span class=\"a\"></span>approved automatically"
	                       " %.0f%%<span class=\"b\"></span>reviewed %.0f%%<span class=\"c\"></span>waiting %.0f%%"
	                       " (of %.0f processed)</figcaption></figure>",
	                       all ? 100 * ta / all : 0, all ? 100 * tr / all : 0, all ? 100 * tw / all : 0, all);
	db_res_free(res);
}

void insights_dashboard(struct web_req *req, GString *b)
{
	g_string_append(b, "<h2>Activity</h2><div class=\"charts\">");
	hours_chart(req, b, 24, "Documents per hour, last 24 hours");
	hours_chart(req, b, WEEK_HOURS, "Documents per hour, last 7 days");
	queue_chart(req, b);
	review_share_chart(req, b);
	g_string_append(b, "</div>");
}

static void fields_table(struct web_req *req, GString *b)
{
	struct db_res *res = NULL;
	if (db_query(req->db,
	             "SELECT field, count(*) FILTER (WHERE corrected), count(*),"
	             " coalesce(to_char(avg(confidence) FILTER (WHERE corrected), 'FM0.00'), '—'),"
	             " coalesce(to_char(avg(confidence) FILTER (WHERE NOT corrected), 'FM0.00'), '—')"
	             " FROM field_reviews WHERE at > now() - interval '30 days'"
	             " GROUP BY field ORDER BY 2 DESC, 1 LIMIT 200",
	             0, NULL, &res, NULL) != QERR_OK)
		return;
	g_string_append(
	    b, "<h2>Corrections per field, last 30 days</h2><table class=\"quality\"><tr><th scope=\"col\">Field"
	       "</th><th scope=\"col\">Corrected</th><th scope=\"col\">Reviewed</th><th scope=\"col\">Share"
	       "</th><th scope=\"col\">Mean confidence, corrected</th><th scope=\"col\">Mean confidence, kept"
	       "</th></tr>");
	for (int r = 0; r < db_res_rows(res); r++) {
		double c = (double)db_res_int(res, r, 1), n = (double)db_res_int(res, r, 2), share = n ? c / n : 0;
		g_string_append(b, "<tr><td>");
		html_escape(b, db_res_text(res, r, 0));
		g_string_append_printf(b,
		                       "</td><td>%.0f</td><td>%.0f</td><td class=\"conf%s\"><span class=\"bar\">"
		                       "<i class=\"w%d\"></i></span>%.0f%%</td><td>%s</td><td>%s</td></tr>",
		                       c, n, share > 0.2 ? " low" : "", (int)(share * 10 + 0.5), share * 100,
		                       db_res_text(res, r, 3), db_res_text(res, r, 4));
	}
	if (db_res_rows(res) == 0)
		g_string_append(b, "<tr><td colspan=\"6\">No reviewed documents in the last 30 days.</td></tr>");
	g_string_append(b, "</table>");
	db_res_free(res);
}

static void confidence_chart(struct web_req *req, GString *b)
{
	struct db_res *res = NULL;
	if (db_query(
	        req->db,
	        "SELECT k, count(f.field) FILTER (WHERE NOT f.corrected), count(f.field) FILTER (WHERE f.corrected)"
	        " FROM generate_series(0, 9) k LEFT JOIN field_reviews f ON f.at > now() - interval '30 days'"
	        " AND f.confidence IS NOT NULL AND least(floor(f.confidence * 10), 9) = k GROUP BY k ORDER BY k",
	        0, NULL, &res, NULL) != QERR_OK)
		return;
	double kept[10] = {0}, fixed[10] = {0};
	const char *labels[10] = {"0.0", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9"};
	for (int r = 0; r < MIN(db_res_rows(res), 10); r++) {
		kept[r] = (double)db_res_int(res, r, 1);
		fixed[r] = (double)db_res_int(res, r, 2);
	}
	db_res_free(res);
	struct chart_series s[2] = {{"kept", "bar-a", kept}, {"corrected", "bar-b", fixed}};
	g_string_append(b, "<h2>Confidence of values kept and corrected, last 30 days</h2><figure class=\"chart\">");
	chart_bars(b, "Values kept and corrected by the extraction's confidence, in tenths", s, 2, 10, labels, 1);
	g_string_append(b, "<figcaption class=\"legend hint\"><span class=\"a\"></span>kept<span class=\"b\"></span>"
	                   "corrected</figcaption></figure><table class=\"quality\"><tr><th scope=\"col\">Confidence at"
	                   " least</th><th scope=\"col\">Values</th><th scope=\"col\">Corrected</th></tr>");
	double k = 0, f = 0;
	for (int i = 9; i >= 0; i--) { /* what an auto-approval threshold at this confidence would have let through */
		k += kept[i];
		f += fixed[i];
		g_string_append_printf(b, "<tr><td>%s</td><td>%.0f</td><td>%.0f (%.1f%%)</td></tr>", labels[i], k + f,
		                       f, k + f ? 100 * f / (k + f) : 0);
	}
	g_string_append(b, "</table>");
}

static void get_quality(struct web_req *req, struct web_resp *resp)
{
	html_begin(req, resp, "Quality", "quality");
	GString *b = resp->body;
	g_string_append(b,
	                "<h1>Quality</h1><p class=\"hint\">From what reviewers did: a value is <em>corrected</em> when"
	                " a person changed it, <em>kept</em> when a person approved or rejected the document without"
	                " changing it. Documents approved automatically are not counted. The table under the chart"
	                " shows, for each confidence, how many reviewed values at or above it needed a correction:"
	                " what an auto-approval threshold there would have let through.</p>");
	fields_table(req, b);
	confidence_chart(req, b);
	html_end(resp);
}

const struct web_route insight_routes[] = {
    {"GET", "/quality", P(USERS_PERM_DOC_VIEW), 0, get_quality},
    {NULL, NULL, 0, 0, NULL},
};
