/* html: the page frame, escaping, and the two static assets.
 *
 * Every page is built on the server; the stylesheet and the one small script
 * are compiled in and served from /static/ (the Content-Security-Policy
 * allows scripts and styles from this origin only, so there is no inline
 * script or style anywhere). Everything works without the script: it only
 * adds conveniences (highlighting a field's source without a page jump). All
 * text that comes from users or documents goes through html_escape(). */
#include "web/internal.h"

#include <string.h>

static const char style_css[] =
	":root{--ink:#1d2330;--muted:#5b6474;--line:#d9dde5;--bg:#f6f7f9;--accent:#2554c7;--ok:#1f7a3a;--bad:#b3261e;"
	"--warn:#9a6700}\n"
	"*{box-sizing:border-box}body{margin:0;font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;"
	"color:var(--ink);background:var(--bg)}\n"
	"header.top{display:flex;align-items:center;gap:1.5rem;padding:.6rem 1.5rem;background:#fff;"
	"border-bottom:1px solid var(--line)}\n"
	"header.top .brand{font-weight:700;letter-spacing:.02em;color:var(--accent);text-decoration:none}\n"
	"nav a{color:var(--muted);text-decoration:none;margin-right:1rem}nav a.on{color:var(--ink);font-weight:600}\n"
	"header.top form{margin-left:auto}header.top .who{color:var(--muted);margin-left:auto}\n"
	"main{max-width:1280px;margin:0 auto;padding:1.2rem 1.5rem}\n"
	"h1{font-size:1.4rem;margin:.2rem 0 1rem}h2{font-size:1.1rem;margin:1.4rem 0 .6rem}\n"
	"table{border-collapse:collapse;width:100%;background:#fff;border:1px solid var(--line)}\n"
	"th,td{text-align:left;padding:.45rem .6rem;border-bottom:1px solid var(--line);vertical-align:top}\n"
	"th{font-size:.8rem;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);background:#fafbfc}\n"
	"a{color:var(--accent)}.cards{display:flex;gap:1rem;flex-wrap:wrap}\n"
	".card{background:#fff;border:1px solid var(--line);border-radius:6px;padding:.8rem 1rem;min-width:150px}\n"
	".card .n{font-size:1.6rem;font-weight:700}.card .l{color:var(--muted);font-size:.85rem}\n"
	"form.inline{display:inline}label{display:block;margin:.5rem 0}\n"
	"input,select,button{font:inherit;padding:.35rem .5rem;border:1px solid var(--line);border-radius:4px}\n"
	"button{background:var(--accent);color:#fff;border-color:var(--accent);cursor:pointer}\n"
	"button.secondary{background:#fff;color:var(--ink);border-color:var(--line)}\n"
	"button.danger{background:var(--bad);border-color:var(--bad)}button.ok{background:var(--ok);border-color:var(--ok)}\n"
	".msg{padding:.6rem .8rem;border-radius:4px;margin:.6rem 0;border:1px solid}\n"
	".msg.error{background:#fdecea;border-color:#f3b8b3;color:var(--bad)}\n"
	".msg.ok{background:#e8f5ec;border-color:#b4dcc0;color:var(--ok)}.hint{color:var(--muted);font-size:.9rem}\n"
	".filters{display:flex;gap:.6rem;flex-wrap:wrap;align-items:end;margin-bottom:1rem}.filters label{margin:0}\n"
	".badge{display:inline-block;padding:.05rem .45rem;border-radius:10px;font-size:.8rem;background:#eef1f6}\n"
	".badge.approved,.badge.done,.badge.processed{background:#e3f3e8;color:var(--ok)}\n"
	".badge.rejected,.badge.failed,.badge.dead{background:#fbe4e2;color:var(--bad)}\n"
	".review{display:grid;grid-template-columns:minmax(0,1.15fr) minmax(360px,1fr);gap:1.4rem;align-items:start}\n"
	".pages{display:flex;flex-direction:column;gap:1rem}\n"
	".page{position:relative;background:#fff;border:1px solid var(--line);box-shadow:0 1px 3px rgba(0,0,0,.06)}\n"
	".page img{display:block;width:100%;height:auto}\n"
	".box{position:absolute;border:2px solid transparent;border-radius:2px}\n"
	".box:target,.box.lit{border-color:#e8a500;background:rgba(255,196,0,.25)}\n"
	".fields td.conf{white-space:nowrap}.conf .bar{display:inline-block;height:6px;width:48px;background:#e4e7ec;"
	"border-radius:3px;vertical-align:middle;margin-right:.3rem;overflow:hidden}\n"
	".bar i.w0{width:0}.bar i.w1{width:10%}.bar i.w2{width:20%}.bar i.w3{width:30%}.bar i.w4{width:40%}"
	".bar i.w5{width:50%}.bar i.w6{width:60%}.bar i.w7{width:70%}.bar i.w8{width:80%}.bar i.w9{width:90%}"
	".bar i.w10{width:100%}\n"
	".page svg{display:block;width:100%;height:auto}rect.box{fill:transparent;stroke:none}"
	"rect.box:target,rect.box.lit{fill:rgba(255,196,0,.28);stroke:#e8a500;stroke-width:1.5}\n"
	".conf .bar i{display:block;height:100%;background:var(--ok)}.conf.low .bar i{background:var(--warn)}\n"
	".fields th[scope=row]{text-transform:none;letter-spacing:0;font-size:.9rem;color:var(--ink);background:#fff}"
	".fields input{width:100%}.fields a.src{font-size:.85rem}.actions{display:flex;gap:.6rem;margin-top:1rem}\n"
	".sticky{position:sticky;top:1rem}section.login{max-width:360px;margin:4rem auto;background:#fff;"
	"padding:1.5rem;border:1px solid var(--line);border-radius:6px}\n"
	"pre{white-space:pre-wrap;background:#fff;border:1px solid var(--line);padding:.6rem}\n";

static const char icon_svg[] =
	"<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 16 16\"><rect width=\"16\" height=\"16\" rx=\"3\""
	" fill=\"#2554c7\"/><path d=\"M4 4h8M4 7h8M4 10h5\" stroke=\"#fff\" stroke-width=\"1.5\"/></svg>\n";

static const char app_js[] =
	"'use strict';\n"
	"// Clicking a field's source link lights its box on the page image without jumping the page.\n"
	"document.addEventListener('click', function (ev) {\n"
	"  var a = ev.target.closest && ev.target.closest('a.src');\n"
	"  if (!a) return;\n"
	"  var box = document.getElementById(a.getAttribute('href').slice(1));\n"
	"  if (!box) return;\n"
	"  ev.preventDefault();\n"
	"  document.querySelectorAll('.box.lit').forEach(function (b) { b.classList.remove('lit'); });\n"
	"  box.classList.add('lit');\n"
	"  box.scrollIntoView({block: 'center', behavior: 'smooth'});\n"
	"});\n"
	"// Confirmation for destructive buttons.\n"
	"document.addEventListener('submit', function (ev) {\n"
	"  var q = ev.target.getAttribute('data-confirm');\n"
	"  if (q && !window.confirm(q)) ev.preventDefault();\n"
	"});\n";

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

static void get_css(struct web_req *req, struct web_resp *resp)
{
	web_text(resp, 200, "text/css; charset=utf-8", style_css);
	resp->cacheable = true;
}

static void get_js(struct web_req *req, struct web_resp *resp)
{
	web_text(resp, 200, "text/javascript; charset=utf-8", app_js);
	resp->cacheable = true;
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
