/* server: libmicrohttpd set-up, routing of the two read-only endpoints. */
#include "web/server.h"

#include <arpa/inet.h>
#include <glib.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <string.h>

#include "core/db.h"
#include "core/json.h"

struct server {
	struct MHD_Daemon *daemon;
	struct db *db; /* guarded by lock: a libpq connection serves one request at a time */
	GMutex lock;
	uint16_t port;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type, const char *body)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static char *status_json(struct server *s)
{
	struct json *root = json_new_object();
	struct json *jobs = json_add_item(root, "jobs", json_new_object());
	struct db_res *res = NULL;
	g_mutex_lock(&s->lock);
	enum qerr e = db_query(s->db, "SELECT state, count(*) FROM jobs GROUP BY state", 0, NULL, &res, NULL);
	g_mutex_unlock(&s->lock);
	if (e) {
		json_free(root);
		return NULL;
	}
	for (int r = 0; r < db_res_rows(res); r++)
		json_add_number(jobs, db_res_text(res, r, 0), (double)db_res_int(res, r, 1));
	db_res_free(res);
	char *text = json_format(root, false);
	json_free(root);
	return text;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **state)
{
	(void)version;
	(void)upload;
	struct server *s = cls;
	if (!*state) { /* first call for this request: headers only */
		*state = s;
		return MHD_YES;
	}
	if (*upload_size)
		return reply(c, MHD_HTTP_CONTENT_TOO_LARGE, "text/plain", "request bodies are not accepted here\n");
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "method not allowed\n");
	if (strcmp(url, "/healthz") == 0)
		return reply(c, MHD_HTTP_OK, "text/plain", "ok\n");
	if (strcmp(url, "/api/v1/status") == 0) {
		g_autofree char *body = status_json(s);
		if (!body)
			return reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, "application/json", "{\"error\":\"database unavailable\"}");
		return reply(c, MHD_HTTP_OK, "application/json", body);
	}
	return reply(c, MHD_HTTP_NOT_FOUND, "text/plain", "not found\n");
}

static enum qerr parse_listen(const char *listen, struct sockaddr_in *sa, char **reterr)
{
	g_autofree char *host = g_strdup(listen);
	char *colon = strrchr(host, ':');
	char *end = NULL;
	long port = colon ? strtol(colon + 1, &end, 10) : -1;
	if (!colon || !end || *end || port < 0 || port > 65535)
		return qerr_set(reterr, QERR_CONFIG, "web.listen must be ADDRESS:PORT, not \"%s\"", listen);
	*colon = 0;
	memset(sa, 0, sizeof *sa);
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		return qerr_set(reterr, QERR_CONFIG, "web.listen address \"%s\" is not an IPv4 address", host);
	return QERR_OK;
}

enum qerr server_start(const struct server_options *opt, struct server **ret, char **reterr)
{
	struct sockaddr_in sa;
	enum qerr e = parse_listen(opt->listen, &sa, reterr);
	if (e)
		return e;
	struct server *s = g_new0(struct server, 1);
	g_mutex_init(&s->lock);
	e = db_connect(opt->conninfo, &s->db, reterr);
	if (e) {
		server_stop(s);
		return e;
	}
	s->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, handle, s,
	                             MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE,
	                             opt->threads ? opt->threads : 2, MHD_OPTION_CONNECTION_LIMIT, 256u,
	                             MHD_OPTION_PER_IP_CONNECTION_LIMIT, 32u, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
	                             MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024, MHD_OPTION_END);
	if (!s->daemon) {
		server_stop(s);
		return qerr_set(reterr, QERR_IO, "cannot listen on %s (address in use or not permitted)", opt->listen);
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
	s->port = info ? info->port : ntohs(sa.sin_port);
	*ret = s;
	return QERR_OK;
}

void server_stop(struct server *s)
{
	if (!s)
		return;
	if (s->daemon)
		MHD_stop_daemon(s->daemon);
	db_close(s->db);
	g_mutex_clear(&s->lock);
	g_free(s);
}

uint16_t server_port(const struct server *s) { return s->port; }
