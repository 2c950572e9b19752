/* review: the review page (page images beside the extracted fields), page
 * images, corrections, approval and rejection.
 *
 * Page images are rendered on demand from the decrypted original in a child
 * process (extractors/render.h) and never stored. Each page is an SVG whose
 * coordinate system is the page in points (the layout boxes of
 * extractors/pdftext.h use the same), holding the image and one rectangle
 * per field found on it; a field's "source" link targets its rectangle, so
 * the CSS :target rule highlights it without any script. A field's box is
 * the one the extractor gave ("box": [x0, y0, x1, y1] with its page), or else
 * the words of the page text where its value is written. */
#include "web/internal.h"

#include <stdio.h>
#include <string.h>

#include "core/db.h"
#include "core/json.h"
#include "core/vault.h"
#include "extractors/render.h"
#include "extractors/sandbox.h"
#include "pipeline/store.h"

#define MAX_PAGES_SHOWN 30
#define IMAGE_WIDTH 1200
#define MAX_WORDS_SHOWN 5000 /* per page */

struct box {
	int page; /* 1-based; 0: none */
	double x0, y0, x1, y1;
};

/* Ways a value may be written on the page. */
static GPtrArray *spellings(const struct json *v)
{
	GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
	double num;
	const char *s = json_string_value(v);
	if (s && s[0]) {
		g_ptr_array_add(out, g_strdup(s));
		int y, m, d;
		char extra;
		if (strlen(s) == 10 && sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &extra) == 3) {
			g_ptr_array_add(out, g_strdup_printf("%02d.%02d.%04d", d, m, y));
			g_ptr_array_add(out, g_strdup_printf("%02d/%02d/%04d", d, m, y));
			g_ptr_array_add(out, g_strdup_printf("%02d/%02d/%04d", m, d, y));
		}
	} else if (json_number_value(v, &num) && num > -1e15 && num < 1e15) {
		long long units = (long long)(num < 0 ? -num : num);
		int cents = (int)(((num < 0 ? -num : num) - (double)units) * 100 + 0.5);
		if (cents == 100) {
			units++;
			cents = 0;
		}
		const char *sign = num < 0 ? "-" : "";
		g_ptr_array_add(out, g_strdup_printf("%s%lld.%02d", sign, units, cents));
		g_ptr_array_add(out, g_strdup_printf("%s%lld,%02d", sign, units, cents));
		g_ptr_array_add(out, g_strdup_printf("%s%lld,%03lld.%02d", sign, units / 1000, units % 1000, cents));
		g_ptr_array_add(out, g_strdup_printf("%s%lld.%03lld,%02d", sign, units / 1000, units % 1000, cents));
	}
	return out;
}

/* The union of the boxes of the words overlapping bytes [start, end) of a page. */
static bool words_box(const struct json *page, size_t start, size_t end, struct box *b)
{
	struct json *words = json_get(page, "words");
	bool any = false;
	for (size_t i = 0; i < json_array_size(words); i++) {
		struct json *w = json_array_at(words, i);
		double f[6];
		bool ok = json_array_size(w) >= 6;
		for (size_t k = 0; ok && k < 6; k++)
			ok = json_number_value(json_array_at(w, k), &f[k]);
		if (!ok || f[0] + f[1] <= (double)start || f[0] >= (double)end)
			continue;
		if (!any) {
			b->x0 = f[2], b->y0 = f[3], b->x1 = f[4], b->y1 = f[5];
			any = true;
		} else {
			b->x0 = MIN(b->x0, f[2]), b->y0 = MIN(b->y0, f[3]);
			b->x1 = MAX(b->x1, f[4]), b->y1 = MAX(b->y1, f[5]);
		}
	}
	return any;
}

static struct box find_box(const struct json *field, const struct json *text)
{
	struct box b = {0};
	double page = 0, c[4];
	struct json *given = json_get(field, "box");
	json_get_number(field, "page", &page);
	if (json_array_size(given) == 4 && page >= 1) {
		for (size_t k = 0; k < 4; k++)
			if (!json_number_value(json_array_at(given, k), &c[k]))
				return b;
		return (struct box){(int)page, c[0], c[1], c[2], c[3]};
	}
	g_autoptr(GPtrArray) forms = spellings(json_get(field, "value"));
	struct json *pages = json_get(text, "pages");
	for (size_t i = 0; i < json_array_size(pages) && i < MAX_PAGES_SHOWN; i++) {
		if (page >= 1 && (size_t)page != i + 1)
			continue;
		const char *t = json_get_string(json_array_at(pages, i), "text");
		for (guint k = 0; t && k < forms->len; k++) {
			const char *hit = strstr(t, forms->pdata[k]);
			if (hit && words_box(json_array_at(pages, i), (size_t)(hit - t),
			                     (size_t)(hit - t) + strlen(forms->pdata[k]), &b)) {
				b.page = (int)i + 1;
				return b;
			}
		}
	}
	return b;
}

/* The page's words as transparent rectangles holding their text (data-w): clicking one puts
 * it into the field being corrected (app.js). */
static void page_words(GString *b, const struct json *page)
{
	const char *t = json_get_string(page, "text");
	struct json *words = json_get(page, "words");
	size_t tlen = t ? strlen(t) : 0;
	for (size_t i = 0; t && i < json_array_size(words) && i < MAX_WORDS_SHOWN; i++) {
		struct json *w = json_array_at(words, i);
		double f[6];
		bool ok = json_array_size(w) >= 6;
		for (size_t k = 0; ok && k < 6; k++)
			ok = json_number_value(json_array_at(w, k), &f[k]);
		if (!ok || f[0] < 0 || f[1] <= 0 || f[0] + f[1] > (double)tlen)
			continue;
		g_autofree char *word = g_utf8_make_valid(t + (size_t)f[0], (gssize)f[1]);
		g_string_append_printf(b, "<rect class=\"word\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" data-w=\"",
		                       f[2], f[3], f[4] - f[2], f[5] - f[3]);
		html_escape(b, word);
		g_string_append(b, "\"/>");
	}
}

static void page_svg(GString *b, int64_t id, int n, const struct json *page, const struct json *fields,
                     const struct box *boxes)
{
	double w = 595, h = 842;
	json_get_number(page, "width", &w);
	json_get_number(page, "height", &h);
	g_string_append_printf(b, "<div class=\"page\"><svg viewBox=\"0 0 %.1f %.1f\" role=\"img\""
	                          " aria-label=\"page %d\"><image href=\"/documents/%lld/page/%d\" width=\"%.1f\""
	                          " height=\"%.1f\"/>",
	                       w, h, n, (long long)id, n, w, h);
	for (size_t i = 0; i < json_object_size(fields); i++) {
		const struct box *x = &boxes[i];
		if (x->page != n)
			continue;
		g_string_append_printf(b, "<rect class=\"box\" id=\"src-%zu\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\""
		                          " height=\"%.1f\"/>",
		                       i, x->x0 - 2, x->y0 - 2, x->x1 - x->x0 + 4, x->y1 - x->y0 + 4);
	}
	page_words(b, page);
	g_string_append(b, "</svg></div>");
}

static void field_row(struct web_req *req, GString *b, size_t i, const char *key, const struct json *f,
                      const struct box *x, const char *doctype, const struct json *checks)
{
	double conf = 0, num;
	json_get_number(f, "confidence", &conf);
	struct json *v = json_get(f, "value");
	bool structured = v && !json_string_value(v) && !json_number_value(v, &num) && !json_is_null(v);
	g_autofree char *text = json_string_value(v) ? g_strdup(json_string_value(v))
	                        : json_number_value(v, &num) ? review_number_text(num)
	                                                     : g_strdup("");
	g_string_append_printf(b, "<tr data-field=\"%s\"><th scope=\"row\">", key);
	if (!structured)
		g_string_append_printf(b, "<label for=\"f-%zu\">", i);
	html_escape(b, key);
	g_string_append_printf(b, "%s%s</th>", structured ? "" : "</label>",
	                       json_get(f, "corrected") ? " <span class=\"badge\">corrected</span>" : "");
	if (structured && json_array_size(v) == 0 && json_object_size(v) > 0) { /* an object: API only */
		g_string_append_printf(b, "<td class=\"hint\" id=\"f-%zu\">%zu entries (correct through the API)", i,
		                       json_object_size(v));
	} else if (structured) {
		g_string_append(b, "<td>");
		review_table(b, web_opt(req)->schemas_dir, doctype, key, i, v);
	} else {
		g_string_append_printf(b, "<td><input id=\"f-%zu\" class=\"field\" name=\"field.", i);
		html_escape(b, key);
		if (x->page)
			g_string_append_printf(b, "\" data-src=\"src-%zu", i);
		g_string_append(b, "\" value=\"");
		html_escape(b, text);
		g_string_append(b, "\">");
	}
	review_checks_html(b, checks, key);
	g_string_append_printf(b, "</td><td class=\"conf%s\"><span class=\"bar\"><i class=\"w%d\"></i></span>%.0f%%</td>",
	                       conf < 0.6 ? " low" : "", (int)(conf * 10 + 0.5), conf * 100);
	if (x->page)
		g_string_append_printf(b, "<td><a class=\"src\" href=\"#src-%zu\">p. %d</a></td></tr>", i, x->page);
	else
		g_string_append(b, "<td class=\"hint\">—</td></tr>");
}

static void history(struct web_req *req, GString *b, int64_t id)
{
	char sid[24];
	g_snprintf(sid, sizeof sid, "%lld", (long long)id);
	struct db_param p[1] = {DB_TEXT(sid)};
	struct db_res *res = NULL;
	if (db_query(req->db, "SELECT version, actor, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), fields"
	             " FROM result_versions WHERE document_id = $1::bigint ORDER BY version DESC", 1, p, &res, NULL))
		return;
	g_string_append(b, "<h2>Versions</h2><table><tr><th>Version</th><th>By</th><th>When (UTC)</th><th>Fields</th></tr>");
	for (int r = 0; r < db_res_rows(res); r++) {
		g_string_append(b, "<tr>");
		for (int c = 0; c < 4; c++) {
			g_string_append(b, "<td>");
			html_escape(b, db_res_text(res, r, c));
			g_string_append(b, "</td>");
		}
		g_string_append(b, "</tr>");
	}
	g_string_append(b, "<tr><td>1</td><td>extraction</td><td></td><td>all</td></tr></table>");
	db_res_free(res);
}

static void review_forms(struct web_req *req, GString *b, int64_t id, const struct json *info)
{
	const char *review = json_get_string(info, "review_state");
	g_string_append(b, "<p>Review: <span class=\"badge ");
	html_escape(b, review);
	g_string_append(b, "\">");
	html_escape(b, review);
	g_string_append(b, "</span>");
	if (json_get_string(info, "reviewed_by")) {
		g_string_append(b, " by ");
		html_escape(b, json_get_string(info, "reviewed_by"));
	}
	g_string_append(b, "</p><div class=\"actions\">");
	if (users_allowed(req->who.role, USERS_PERM_DOC_APPROVE)) {
		g_string_append_printf(b, "<form method=\"post\" action=\"/documents/%lld/approve\">", (long long)id);
		html_csrf(req, b);
		g_string_append(b, "<button class=\"ok\" type=\"submit\">Approve</button></form>");
		g_string_append_printf(b, "<form method=\"post\" action=\"/documents/%lld/reject\""
		                          " data-confirm=\"Reject this document?\">", (long long)id);
		html_csrf(req, b);
		g_string_append(b, "<button class=\"danger\" type=\"submit\">Reject</button></form>");
	}
	g_string_append(b, "</div>");
}

static void fields_panel(struct web_req *req, GString *b, int64_t id, const struct json *result,
                         const struct box *boxes, int version)
{
	const struct json *fields = json_get(result, "fields");
	bool edit = users_allowed(req->who.role, USERS_PERM_DOC_CORRECT);
	bool decide = users_allowed(req->who.role, USERS_PERM_DOC_APPROVE);
	struct json *checks = review_checks(fields);
	g_string_append_printf(b, "<form method=\"post\" action=\"/documents/%lld/correct\" class=\"review-fields\">",
	                       (long long)id);
	html_csrf(req, b);
	g_string_append_printf(b, "<input type=\"hidden\" name=\"version\" value=\"%d\"><table class=\"fields\"><tr>"
	                          "<th scope=\"col\">Field</th><th scope=\"col\">Value</th><th scope=\"col\">Confidence</th>"
	                          "<th scope=\"col\">Source</th></tr>",
	                       version);
	for (size_t i = 0; i < json_object_size(fields); i++) {
		const char *key = NULL;
		struct json *f = json_object_at(fields, i, &key);
		field_row(req, b, i, key, f, &boxes[i], json_get_string(result, "document_type"), checks);
	}
	json_free(checks);
	g_string_append(b, "</table>");
	if (edit) {
		g_string_append(b, "<div class=\"actions\"><button type=\"submit\" name=\"do\" value=\"save\" class=\"secondary\""
		                   " aria-keyshortcuts=\"Alt+S\">Save</button>"
		                   "<button type=\"submit\" name=\"do\" value=\"next\" class=\"secondary\""
		                   " aria-keyshortcuts=\"Alt+N\">Save and next</button>");
		if (decide)
			g_string_append(b, "<button type=\"submit\" name=\"do\" value=\"accept\" class=\"ok\""
			                   " aria-keyshortcuts=\"Alt+A\">Accept and next</button>"
			                   "<button type=\"submit\" name=\"do\" value=\"reject\" class=\"danger\""
			                   " aria-keyshortcuts=\"Alt+R\">Reject and next</button>");
		g_string_append(b, "</div><p class=\"hint keys\">Keys: <kbd>Enter</kbd> or <kbd>Alt</kbd>+<kbd>↓</kbd> next field,"
		                   " <kbd>Alt</kbd>+<kbd>↑</kbd> previous, <kbd>Alt</kbd>+<kbd>A</kbd> accept,"
		                   " <kbd>Alt</kbd>+<kbd>R</kbd> reject, <kbd>Alt</kbd>+<kbd>N</kbd> save and next document,"
		                   " <kbd>Alt</kbd>+<kbd>S</kbd> save. Click a word on the page to put it into the field"
		                   " being edited (<kbd>Shift</kbd>+click adds it).</p>");
	}
	g_string_append(b, "</form>");
}

static void render_review(struct web_req *req, struct web_resp *resp, int64_t id, struct json *info,
                          struct json *result, int version, struct json *text)
{
	struct json *fields = json_get(result, "fields");
	size_t nf = json_object_size(fields);
	struct box *boxes = g_new0(struct box, nf + 1);
	for (size_t i = 0; i < nf; i++)
		boxes[i] = find_box(json_object_at(fields, i, NULL), text);
	g_autofree char *title = g_strdup_printf("Document %lld", (long long)id);
	html_begin(req, resp, title, "documents");
	GString *b = resp->body;
	g_string_append_printf(b, "<h1>Document %lld — ", (long long)id);
	html_escape(b, json_get_string(info, "filename"));
	g_string_append(b, "</h1>");
	if (web_query(req, "saved"))
		html_message(b, "ok", web_query(req, "saved"));
	int64_t left = 0, next = review_next(req, id, &left);
	g_string_append_printf(b, "<p class=\"left\"><strong>%lld</strong> other document%s left to review", (long long)left,
	                       left == 1 ? "" : "s");
	if (next)
		g_string_append_printf(b, " · <a href=\"/documents/%lld\" rel=\"next\">next</a>", (long long)next);
	g_string_append(b, "</p><div class=\"review\"><div class=\"pages\">");
	struct json *pages = json_get(text, "pages");
	for (size_t p = 0; p < json_array_size(pages) && p < MAX_PAGES_SHOWN; p++)
		page_svg(b, id, (int)p + 1, json_array_at(pages, p), fields, boxes);
	g_string_append_printf(b, "</div><div class=\"sticky\"><p class=\"hint\">Type %s, version %d.</p>",
	                       json_get_string(result, "document_type") ? json_get_string(result, "document_type") : "?",
	                       version);
	fields_panel(req, b, id, result, boxes, version);
	review_forms(req, b, id, info);
	history(req, b, id);
	g_string_append(b, "</div></div>");
	html_end(resp);
	g_free(boxes);
}

static void get_review(struct web_req *req, struct web_resp *resp)
{
	int64_t id = req->ids[0];
	struct json *info = NULL, *result = NULL, *text = NULL;
	int version = 1;
	g_autofree char *err = NULL;
	if (!docs_visible(req, id) || docs_info(req, id, &info, &err)) {
		html_error(req, resp, 404, "No such document.");
		return;
	}
	const char *state = json_get_string(info, "state");
	if (!state || strcmp(state, "processed") != 0) {
		g_autofree char *msg = g_strdup_printf("Document %lld is %s; there is nothing to review yet.", (long long)id,
		                                       state ? state : "unknown");
		html_error(req, resp, 409, msg);
		json_free(info);
		return;
	}
	struct vault_buf tb = {0};
	bool opened = docs_result(req, id, &result, &version, &err) == QERR_OK &&
	              docs_payload(req, id, "text", &tb, &err) == QERR_OK &&
	              json_parse((const char *)tb.data, tb.len, &text, &err) == QERR_OK;
	g_autofree char *detail = g_strdup_printf("review page, result version %d", version);
	if (!opened)
		html_error(req, resp, 503, "The document's results could not be opened.");
	else if (docs_audit(req, "document.viewed", "document", id, "ok", detail, NULL) != QERR_OK)
		html_error(req, resp, 503, "Viewing the document could not be recorded in the audit log; try again.");
	else
		render_review(req, resp, id, info, result, version, text);
	vault_buf_free(&tb);
	json_free(info);
	json_free(result);
	json_free(text);
}

static void get_page_image(struct web_req *req, struct web_resp *resp)
{
	int64_t id = req->ids[0];
	if (!docs_visible(req, id) || req->ids[1] > 100000) {
		html_error(req, resp, 404, "No such page.");
		return;
	}
	g_autofree char *err = NULL;
	g_autofree uint8_t *png = NULL;
	size_t len = 0;
	struct render_limits lim = {web_opt(req)->render_timeout_s, web_opt(req)->render_memory};
	/* the original goes to the renderer as it is decrypted, never whole here */
	struct vault_dek *dek = NULL;
	struct store_reader *pdf = NULL;
	enum qerr e = store_dek(req->db, web_vault(req), id, &dek, &err);
	if (!e)
		e = store_reader_open(req->db, dek, id, &pdf, &err);
	if (!e) {
		struct sandbox_source src = {.len = store_reader_size(pdf), .read = store_reader_read, .ctx = pdf};
		e = render_page_png_from(&src, (int)req->ids[1], IMAGE_WIDTH, &lim, &png, &len, &err);
	}
	store_reader_close(pdf);
	vault_dek_free(dek);
	if (e) {
		const char *code;
		html_error(req, resp, web_status_of(e, &code), err ? err : qerr_str(e));
		return;
	}
	g_autofree char *detail = g_strdup_printf("page %lld image", (long long)req->ids[1]);
	if (docs_audit(req, "document.viewed", "document", id, "ok", detail, NULL) != QERR_OK) {
		html_error(req, resp, 503, "Viewing the page could not be recorded in the audit log; try again.");
		return;
	}
	resp->type = "image/png";
	resp->bytes = g_bytes_new_take(g_steal_pointer(&png), len);
}

/* The plain fields of the form (field.NAME) as changes; an empty box clears the value. */
static struct json *form_changes(struct web_req *req)
{
	struct json *changes = json_new_object();
	GHashTableIter it;
	gpointer k, v;
	g_hash_table_iter_init(&it, req->form);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		if (!g_str_has_prefix(k, "field."))
			continue;
		/* Text as typed; amounts become numbers again in docs_correct. */
		if (!((const char *)v)[0])
			json_add_null(changes, (const char *)k + 6);
		else
			json_add_string(changes, (const char *)k + 6, v);
	}
	return changes;
}

/* Saves the corrections of the form, then (do=accept|reject) decides the document; do=next,
 * accept and reject go on to the next document that needs review. */
static void post_correct(struct web_req *req, struct web_resp *resp)
{
	int64_t id = req->ids[0];
	const char *action = web_form(req, "do") ? web_form(req, "do") : "save";
	bool accept = strcmp(action, "accept") == 0, reject = strcmp(action, "reject") == 0;
	if (!docs_visible(req, id)) {
		html_error(req, resp, 404, "No such document.");
		return;
	}
	if ((accept || reject) && !users_allowed(req->who.role, USERS_PERM_DOC_APPROVE)) {
		html_error(req, resp, 403, "Your role may correct documents but not approve or reject them.");
		return;
	}
	struct json *changes = form_changes(req), *result = NULL;
	g_autofree char *err = NULL;
	int version = 0;
	enum qerr e = docs_result(req, id, &result, &version, &err);
	if (!e)
		e = review_tables_from_form(req, json_get_string(result, "document_type"), json_get(result, "fields"), changes,
		                            &err);
	if (!e && json_object_size(changes))
		e = docs_correct(req, id, changes, &version, &err);
	if (!e && (accept || reject))
		e = docs_review(req, id, accept ? "approved" : "rejected", &err);
	json_free(changes);
	json_free(result);
	if (e) {
		const char *code;
		html_error(req, resp, web_status_of(e, &code), err ? err : qerr_str(e));
		return;
	}
	g_autofree char *done = g_strdup_printf("Document %lld %s (version %d).", (long long)id,
	                                        accept ? "approved" : reject ? "rejected" : "saved", version);
	int64_t next = strcmp(action, "save") == 0 ? 0 : review_next(req, id, NULL);
	g_autofree char *text = next || strcmp(action, "save") == 0 ? g_strdup(done)
	                        : g_strconcat(done, " No other document needs review.", NULL);
	g_autofree char *msg = g_uri_escape_string(text, NULL, FALSE);
	g_autofree char *loc = g_strdup_printf("/documents/%lld?saved=%s", (long long)(next ? next : id), msg);
	web_redirect(resp, loc);
}

static void review_action(struct web_req *req, struct web_resp *resp, const char *state)
{
	int64_t id = req->ids[0];
	g_autofree char *err = NULL;
	enum qerr e = docs_visible(req, id) ? docs_review(req, id, state, &err) : QERR_NOT_FOUND;
	if (e) {
		const char *code;
		html_error(req, resp, web_status_of(e, &code), err ? err : "No such document.");
		return;
	}
	g_autofree char *loc = g_strdup_printf("/documents/%lld?saved=Document+%s", (long long)id, state);
	web_redirect(resp, loc);
}

static void post_approve(struct web_req *req, struct web_resp *resp) { review_action(req, resp, "approved"); }
static void post_reject(struct web_req *req, struct web_resp *resp) { review_action(req, resp, "rejected"); }

const struct web_route review_routes[] = {
	{"GET", "/documents/*", P(USERS_PERM_DOC_VIEW), 0, get_review},
	{"GET", "/documents/*/page/*", P(USERS_PERM_DOC_VIEW), 0, get_page_image},
	{"POST", "/documents/*/correct", P(USERS_PERM_DOC_CORRECT), 0, post_correct},
	{"POST", "/documents/*/approve", P(USERS_PERM_DOC_APPROVE), 0, post_approve},
	{"POST", "/documents/*/reject", P(USERS_PERM_DOC_APPROVE), 0, post_reject},
	{NULL, NULL, 0, 0, NULL},
};
