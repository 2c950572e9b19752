/* Unit tests of web/: multipart bodies read by web/formdata (libmicrohttpd's
 * post processor) from real HTTP requests sent to a libmicrohttpd daemon over
 * a socket pair, and the server-drawn SVG charts (well-formed, to scale). */
#include <glib.h>
#include <math.h>
#include <stdlib.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "web/formdata.h"
#include "web/internal.h"

/* ---- formdata ---- */

struct seen {
	GString *log; /* "begin name file type|data N|end" lines */
	struct formdata *fd;
	char *err;
	bool failed, in_data;
};

static void data_done(struct seen *s)
{
	if (s->in_data)
		g_string_append_c(s->log, '\n');
	s->in_data = false;
}

static enum qerr on_begin(void *ctx, const char *name, const char *filename, const char *type, char **reterr)
{
	struct seen *s = ctx;
	data_done(s);
	g_string_append_printf(s->log, "begin %s %s %s\n", name, filename ? filename : "-", type[0] ? type : "-");
	if (strcmp(name, "refuse") == 0)
		return qerr_set(reterr, QERR_BAD_INPUT, "field refuse is refused");
	return QERR_OK;
}

static enum qerr on_data(void *ctx, const void *data, size_t len, char **reterr)
{
	struct seen *s = ctx;
	if (!s->in_data) /* pieces of one part join on one line */
		g_string_append(s->log, "data ");
	s->in_data = true;
	g_string_append_len(s->log, data, (gssize)len);
	return QERR_OK;
}

static enum qerr on_end(void *ctx, char **reterr)
{
	data_done(ctx);
	g_string_append(((struct seen *)ctx)->log, "end\n");
	return QERR_OK;
}

static const struct formdata_handler handler = {on_begin, on_data, on_end};

/* What the last request's handler saw (the daemon answers one request at a time). */
static GString *last_log;
static char *last_err;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **state)
{
	struct seen *s = *state;
	if (!s) {
		s = g_new0(struct seen, 1);
		s->log = g_string_new(NULL);
		*state = s;
		s->failed = formdata_new(c, &handler, s, &s->fd, &s->err) != QERR_OK;
		return MHD_YES;
	}
	if (*upload_size) {
		if (!s->failed)
			s->failed = formdata_feed(s->fd, upload, *upload_size, &s->err) != QERR_OK;
		*upload_size = 0;
		return MHD_YES;
	}
	if (!s->failed)
		s->failed = formdata_finish(s->fd, &s->err) != QERR_OK;
	g_string_assign(last_log, s->log->str);
	g_free(last_err);
	last_err = g_strdup(s->err);
	struct MHD_Response *r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret = MHD_queue_response(c, s->failed ? 400 : 200, r);
	MHD_destroy_response(r);
	return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **state, enum MHD_RequestTerminationCode toe)
{
	struct seen *s = *state;
	if (!s)
		return;
	formdata_free(s->fd);
	g_string_free(s->log, TRUE);
	g_free(s->err);
	g_free(s);
}

static struct MHD_Daemon *daemon_;

/* Sends a POST with this Content-Type and body (chunked in pieces of step bytes when step > 0);
 * returns the status. */
static int post(const char *type, const char *body, size_t step)
{
	int sv[2];
	g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
	struct sockaddr_in peer = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	g_assert_cmpint(MHD_add_connection(daemon_, sv[0], (const struct sockaddr *)&peer, sizeof peer), ==, MHD_YES);
	g_autoptr(GString) req = g_string_new(NULL);
	g_string_printf(req, "POST /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: %s\r\n", type);
	size_t len = strlen(body);
	if (!step) {
		g_string_append_printf(req, "Content-Length: %zu\r\n\r\n%s", len, body);
	} else {
		g_string_append(req, "Transfer-Encoding: chunked\r\n\r\n");
		for (size_t off = 0; off < len; off += step)
			g_string_append_printf(req, "%zx\r\n%.*s\r\n", MIN(step, len - off), (int)MIN(step, len - off),
			                       body + off);
		g_string_append(req, "0\r\n\r\n");
	}
	g_assert_cmpint(send(sv[1], req->str, req->len, MSG_NOSIGNAL), ==, (ssize_t)req->len);
	char buf[512] = {0};
	ssize_t n = read(sv[1], buf, sizeof buf - 1);
	close(sv[1]);
	int status = 0;
	if (n > 12)
		status = (int)g_ascii_strtoll(buf + 9, NULL, 10);
	return status;
}

#define MP "multipart/form-data; boundary=XyZ"
#define TWO_PARTS                                                                                                      \
	"--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nabc\r\n"                                        \
	"--XyZ\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.pdf\"\r\n"                              \
	"Content-Type: application/pdf\r\n\r\n%PDF-1.4 body\r\n--XyZ--\r\n"

static void test_two_parts(void)
{
	for (size_t step = 0; step <= 7; step += 7) { /* whole, and chunked so the boundaries straddle pieces */
		g_assert_cmpint(post(MP, TWO_PARTS, step), ==, 200);
		g_assert_cmpstr(
		    last_log->str, ==,
		    "begin csrf - -\ndata abc\nend\nbegin files a.pdf application/pdf\ndata %PDF-1.4 body\nend\n");
	}
}

static void test_refused(void)
{
	g_assert_cmpint(post(MP, "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nxyz", 0), ==, 400);
	g_assert_cmpstr(last_err, ==, "the multipart body ends before its closing boundary");
	g_assert_cmpint(post("multipart/form-data", TWO_PARTS, 0), ==, 400);
	g_assert_cmpint(post(MP, "--XyZ\r\nContent-Disposition: form-data; name=\"refuse\"\r\n\r\nx\r\n--XyZ--\r\n", 0),
	                ==, 400);
	g_assert_cmpstr(last_err, ==, "field refuse is refused");
	GString *many = g_string_new(NULL);
	for (int i = 0; i <= FORMDATA_MAX_PARTS; i++)
		g_string_append_printf(many, "--XyZ\r\nContent-Disposition: form-data; name=\"f%d\"\r\n\r\nv\r\n", i);
	g_string_append(many, "--XyZ--\r\n");
	g_assert_cmpint(post(MP, many->str, 0), ==, 400);
	g_assert_nonnull(strstr(last_err, "more than 64 parts"));
	g_string_free(many, TRUE);
}

static void test_filename(void)
{
	g_assert_true(formdata_filename_ok("invoice 7.pdf"));
	g_assert_true(formdata_filename_ok("Rechnung-ä.pdf"));
	g_assert_false(formdata_filename_ok("../x.pdf"));
	g_assert_false(formdata_filename_ok(".hidden.pdf"));
	g_assert_false(formdata_filename_ok("a\\b.pdf"));
	g_assert_false(formdata_filename_ok("a\nb.pdf"));
	g_assert_false(formdata_filename_ok(""));
	g_assert_false(formdata_filename_ok("\xff.pdf"));
}

/* ---- charts ---- */

static xmlDocPtr parse_svg(const GString *b)
{
	xmlDocPtr doc = xmlReadMemory(b->str, (int)b->len, "chart.svg", NULL, XML_PARSE_NONET | XML_PARSE_NOERROR);
	g_assert_nonnull(doc);
	return doc;
}

static double attr_num(xmlNodePtr n, const char *name)
{
	xmlChar *v = xmlGetProp(n, (const xmlChar *)name);
	g_assert_nonnull(v);
	double d = g_ascii_strtod((const char *)v, NULL);
	xmlFree(v);
	return d;
}

static void test_axis(void)
{
	g_assert_cmpfloat(chart_axis_max(0), ==, 1);
	g_assert_cmpfloat(chart_axis_max(1), ==, 1);
	g_assert_cmpfloat(chart_axis_max(3), ==, 5);
	g_assert_cmpfloat(chart_axis_max(7), ==, 10);
	g_assert_cmpfloat(chart_axis_max(11), ==, 20);
	g_assert_cmpfloat(chart_axis_max(0.3), ==, 0.5);
}

static void test_bars_to_scale(void)
{
	double a[4] = {1, 0, 4, 2}, b[4] = {1, 0, 0, 3};
	const char *labels[4] = {"w", "x<y", "y", "z"};
	struct chart_series s[2] = {{"kept", "bar-a", a}, {"fixed & more", "bar-b", b}};
	GString *out = g_string_new(NULL);
	chart_bars(out, "Two \"series\"", s, 2, 4, labels, 1);
	xmlDocPtr doc = parse_svg(out);
	xmlXPathContextPtr x = xmlXPathNewContext(doc);
	xmlXPathObjectPtr rects = xmlXPathEvalExpression((const xmlChar *)"//*[local-name()='rect']", x);
	/* zero values draw nothing: 1+1, 4, 2+3 */
	g_assert_cmpint(rects->nodesetval->nodeNr, ==, 5);
	/* the axis tops at 5 (largest stack 5); heights are proportional */
	double h_first = attr_num(rects->nodesetval->nodeTab[0], "height");
	double h_four = attr_num(rects->nodesetval->nodeTab[2], "height");
	g_assert_cmpfloat(fabs(h_four - 4 * h_first), <, 0.05);
	xmlChar *title = xmlNodeGetContent(rects->nodesetval->nodeTab[1]);
	g_assert_cmpstr((const char *)title, ==, "w: fixed & more 1");
	xmlFree(title);
	g_assert_nonnull(strstr(out->str, "aria-label=\"Two &quot;series&quot;\""));
	g_assert_nonnull(strstr(out->str, ">x&lt;y</text>"));
	g_assert_null(strstr(out->str, "style="));
	xmlXPathFreeObject(rects);
	xmlXPathFreeContext(x);
	xmlFreeDoc(doc);
	g_string_free(out, TRUE);
}

static void test_line(void)
{
	double v[3] = {0, 10, 5};
	GString *out = g_string_new(NULL);
	chart_line(out, "Queue", "jobs", v, 3, NULL, 0);
	xmlDocPtr doc = parse_svg(out);
	g_assert_nonnull(strstr(out->str, "<polyline class=\"line-q\" points=\""));
	g_assert_nonnull(strstr(out->str, "<title>: jobs 10</title>"));
	xmlFreeDoc(doc);
	g_string_free(out, TRUE);
}

static void test_number_text(void)
{
	static const struct {
		double v;
		const char *want;
	} cases[] = {
	    {1037.4, "1037.40"}, {7.5, "7.50"}, {0.125, "0.125"}, {-12.3, "-12.30"}, {1.0 / 3, "0.333333333333333"}};
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *t = review_number_text(cases[i].v);
		g_assert_cmpstr(t, ==, cases[i].want);
	}
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	signal(SIGPIPE, SIG_IGN);
	last_log = g_string_new(NULL);
	daemon_ =
	    MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC, 0, NULL, NULL,
	                     on_request, NULL, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
	g_assert_nonnull(daemon_);
	g_test_add_func("/web/formdata/two-parts", test_two_parts);
	g_test_add_func("/web/formdata/refused", test_refused);
	g_test_add_func("/web/formdata/filename", test_filename);
	g_test_add_func("/web/charts/axis", test_axis);
	g_test_add_func("/web/charts/bars-to-scale", test_bars_to_scale);
	g_test_add_func("/web/charts/line", test_line);
	g_test_add_func("/web/review/number-text", test_number_text);
	int rc = g_test_run();
	MHD_stop_daemon(daemon_);
	g_string_free(last_log, TRUE);
	g_free(last_err);
	return rc;
}
