/* html: the page frame, escaping, and the static assets.
 *
 * Every page is built on the server; the stylesheet and the one script
 * (web/static/, compiled in as resources) are served from /static/ (the Content-Security-Policy
 * allows scripts and styles from this origin only, so there is no inline
 * script or style anywhere). Everything works without the script: it only
 * adds conveniences (the review screen's table editing, sums checked as you type,
 * boxes lit on the page image, values picked from it, keyboard shortcuts). All
 * text that comes from users or documents goes through html_escape(). */
#include "web/internal.h"

#include <gio/gio.h>
#include <string.h>

#include "web/web-resources.h"

static const char icon_svg[] =
	"<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 16 16\"><rect width=\"16\" height=\"16\" rx=\"3\""
	" fill=\"#2554c7\"/><path d=\"M4 4h8M4 7h8M4 10h5\" stroke=\"#fff\" stroke-width=\"1.5\"/></svg>\n";

void html_escape(GString *out, const char *text)
{
	for (const char *p = text ? text : ""; *p; p++) {
		switch (*p) {
		case '&':
			g_string_append(out, "&amp;");
			break;
		case '<':
			g_string_append(out, "&lt;");
			break;
		case '>':
			g_string_append(out, "&gt;");
			break;
		case '"':
			g_string_append(out, "&quot;");
			break;
		case '\'':
			g_string_append(out, "&#39;");
			break;
		default:
			g_string_append_c(out, *p);
		}
	}
}

struct nav_item {
	const char *key, *href, *label;
	unsigned perms; /* any of; 0: everyone signed in */
};

static const struct nav_item nav[] = {
	{"dashboard", "/", "Dashboard", 0},
	{"upload", "/upload", "Upload", P(USERS_PERM_UPLOAD)},
	{"documents", "/documents", "Documents", P(USERS_PERM_DOC_VIEW) | P(USERS_PERM_UPLOAD)},
	{"jobs", "/jobs", "Failed jobs", P(USERS_PERM_QUEUE_VIEW)},
	{"quality", "/quality", "Quality", P(USERS_PERM_DOC_VIEW)},
	{"audit", "/audit", "Audit log", P(USERS_PERM_AUDIT_READ)},
	{"users", "/users", "Users", P(USERS_PERM_USER_ADMIN)},
	{"settings", "/settings", "Settings", P(USERS_PERM_CONFIG)},
};

static bool may(const struct web_req *req, unsigned perms)
{
	if (!perms)
		return true;
	for (int p = 0; p < USERS_PERM_COUNT; p++)
		if ((perms & P(p)) && users_allowed(req->who.role, (enum users_perm)p))
			return true;
	return false;
}

void html_begin(struct web_req *req, struct web_resp *resp, const char *title, const char *active)
{
	resp->type = "text/html; charset=utf-8";
	GString *b = resp->body;
	g_string_append(b, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
	                   "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>");
	html_escape(b, title);
	g_string_append(b, " · Quire</title><link rel=\"stylesheet\" href=\"/static/style.css\">"
	                   "<link rel=\"icon\" href=\"/static/icon.svg\" type=\"image/svg+xml\">"
	                   "<script src=\"/static/app.js\" defer></script></head><body>"
	                   "<header class=\"top\"><a class=\"brand\" href=\"/\">Quire</a>");
	if (req->authed && req->by_cookie) {
		g_string_append(b, "<nav>");
		for (size_t i = 0; i < G_N_ELEMENTS(nav); i++) {
			if (!may(req, nav[i].perms))
				continue;
			g_string_append_printf(b, "<a href=\"%s\"%s>%s</a>", nav[i].href,
			                       active && strcmp(active, nav[i].key) == 0 ? " class=\"on\"" : "", nav[i].label);
		}
		g_string_append(b, "</nav><form method=\"post\" action=\"/logout\" class=\"inline\">");
		html_csrf(req, b);
		g_string_append(b, "<a href=\"/account\">");
		html_escape(b, req->user_name);
		g_string_append_printf(b, "</a> <span class=\"badge\">%s</span> "
		                          "<button class=\"secondary\" type=\"submit\">Log out</button></form>",
		                       users_role_name(req->who.role));
	}
	g_string_append(b, "</header><main>");
}

void html_end(struct web_resp *resp) { g_string_append(resp->body, "</main></body></html>\n"); }

void html_csrf(struct web_req *req, GString *out)
{
	if (req->csrf)
		g_string_append_printf(out, "<input type=\"hidden\" name=\"csrf\" value=\"%s\">", req->csrf);
}

void html_message(GString *out, const char *kind, const char *text)
{
	g_string_append_printf(out, "<p class=\"msg %s\">", kind);
	html_escape(out, text);
	g_string_append(out, "</p>");
}

void html_error(struct web_req *req, struct web_resp *resp, unsigned status, const char *text)
{
	g_string_truncate(resp->body, 0);
	html_begin(req, resp, "Error", NULL);
	resp->status = status;
	g_string_append_printf(resp->body, "<h1>%u</h1>", status);
	html_message(resp->body, "error", text);
	g_string_append(resp->body, "<p><a href=\"/\">Back to the dashboard</a></p>");
	html_end(resp);
}

static void resource(struct web_resp *resp, const char *path, const char *type)
{
	GBytes *data = g_resource_lookup_data(quire_web_resources_get_resource(), path, 0, NULL);
	g_assert(data); /* compiled in */
	resp->type = type;
	resp->bytes = data;
	resp->cacheable = true;
}

static void get_css(struct web_req *req, struct web_resp *resp)
{
	resource(resp, "/quire/web/static/style.css", "text/css; charset=utf-8");
}

static void get_js(struct web_req *req, struct web_resp *resp)
{
	resource(resp, "/quire/web/static/app.js", "text/javascript; charset=utf-8");
}

static void get_icon(struct web_req *req, struct web_resp *resp)
{
	web_text(resp, 200, "image/svg+xml", icon_svg);
	resp->cacheable = true;
}

const struct web_route asset_routes[] = {
	{"GET", "/static/icon.svg", 0, WEB_PUBLIC, get_icon},
	{"GET", "/static/style.css", 0, WEB_PUBLIC, get_css},
	{"GET", "/static/app.js", 0, WEB_PUBLIC, get_js},
	{NULL, NULL, 0, 0, NULL},
};
