/* Fuzz target: multipart/form-data bodies as the server reads them, through
 * web/formdata (libmicrohttpd's post processor). The input is the body of a
 * real HTTP request sent to a libmicrohttpd daemon over a socket pair: with a
 * Content-Length, or chunked in pieces whose size comes from the input, so
 * boundaries straddle pieces. Checked: the request is answered (200 or 400,
 * never a crash or a hang), part events come in order (begin, data, end), the
 * content handed out never exceeds the input, parts stay within the limit, and
 * a refused body gets no callbacks afterwards. */
#include "tests/fuzz/fuzz_main.h"

#include <glib.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "web/formdata.h"

struct seen {
	size_t bytes;
	int parts, open;
	bool failed;
	struct formdata *fd;
	char *err;
};

static enum qerr begin(void *ctx, const char *name, const char *filename, const char *type, char **reterr)
{
	struct seen *s = ctx;
	(void)reterr;
	g_assert_false(s->failed);
	g_assert_nonnull(name);
	g_assert_nonnull(type);
	g_assert_cmpint(s->open, ==, 0);
	s->open = 1;
	s->parts++;
	g_assert_cmpint(s->parts, <=, FORMDATA_MAX_PARTS);
	(void)formdata_filename_ok(filename);
	return QERR_OK;
}

static enum qerr data_cb(void *ctx, const void *data, size_t len, char **reterr)
{
	struct seen *s = ctx;
	(void)data;
	(void)reterr;
	g_assert_false(s->failed);
	g_assert_cmpint(s->open, ==, 1);
	s->bytes += len;
	return QERR_OK;
}

static enum qerr end(void *ctx, char **reterr)
{
	struct seen *s = ctx;
	(void)reterr;
	g_assert_false(s->failed);
	g_assert_cmpint(s->open, ==, 1);
	s->open = 0;
	return QERR_OK;
}

static const struct formdata_handler handler = {begin, data_cb, end};

static size_t body_size; /* of the request being answered */

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **state)
{
	(void)cls, (void)url, (void)method, (void)version;
	struct seen *s = *state;
	if (!s) {
		s = g_new0(struct seen, 1);
		*state = s;
		if (formdata_new(c, &handler, s, &s->fd, &s->err) != QERR_OK)
			s->failed = true;
		return MHD_YES;
	}
	if (*upload_size) {
		if (!s->failed && formdata_feed(s->fd, upload, *upload_size, &s->err) != QERR_OK) {
			g_assert_nonnull(s->err);
			s->failed = true;
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (!s->failed && formdata_finish(s->fd, &s->err) != QERR_OK) {
		g_assert_nonnull(s->err);
		s->failed = true;
	}
	g_assert_cmpuint(s->bytes, <=, body_size);
	if (!s->failed)
		g_assert_cmpint(s->open, ==, 0);
	return answer(c, s->failed ? 400 : 200);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **state, enum MHD_RequestTerminationCode toe)
{
	(void)cls, (void)c, (void)toe;
	struct seen *s = *state;
	if (!s)
		return;
	formdata_free(s->fd);
	g_free(s->err);
	g_free(s);
	*state = NULL;
}

static struct MHD_Daemon *daemon_get(void)
{
	static struct MHD_Daemon *d;
	if (!d) {
		signal(SIGPIPE, SIG_IGN);
		d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC, 0, NULL,
		                     NULL, on_request, NULL, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
		                     MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
		g_assert_nonnull(d);
	}
	return d;
}

static void send_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n <= 0)
			return; /* the server stopped reading: its answer tells why */
		p += n;
		len -= (size_t)n;
	}
}

/* The request with data as its body; chunked (pieces of step bytes) or with a Content-Length. */
static GString *request(const uint8_t *data, size_t size, bool chunked, size_t step)
{
	GString *r = g_string_new("POST /upload HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n"
	                          "Content-Type: multipart/form-data; boundary=XyZ\r\n");
	if (!chunked) {
		g_string_append_printf(r, "Content-Length: %zu\r\n\r\n", size);
		g_string_append_len(r, (const char *)data, (gssize)size);
		return r;
	}
	g_string_append(r, "Transfer-Encoding: chunked\r\n\r\n");
	for (size_t off = 0; off < size; off += step) {
		size_t n = MIN(step, size - off);
		g_string_append_printf(r, "%zx\r\n", n);
		g_string_append_len(r, (const char *)data + off, (gssize)n);
		g_string_append(r, "\r\n");
	}
	g_string_append(r, "0\r\n\r\n");
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct MHD_Daemon *d = daemon_get();
	int sv[2];
	g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
	struct sockaddr_in peer = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	body_size = size;
	g_assert_cmpint(MHD_add_connection(d, sv[0], (const struct sockaddr *)&peer, sizeof peer), ==, MHD_YES);
	bool chunked = size && (data[0] & 0x80);
	size_t step = size ? (size_t)data[0] % 17 + 1 : 1;
	g_autoptr(GString) req = request(data, size, chunked, step);
	send_all(sv[1], req->str, req->len);
	GString *resp = g_string_new(NULL);
	char buf[4096];
	ssize_t n;
	while ((n = read(sv[1], buf, sizeof buf)) > 0)
		g_string_append_len(resp, buf, n);
	close(sv[1]);
	g_assert_true(g_str_has_prefix(resp->str, "HTTP/1.1 200 ") || g_str_has_prefix(resp->str, "HTTP/1.1 400 "));
	g_string_free(resp, TRUE);
	return 0;
}
