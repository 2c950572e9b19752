/* cmd_serve: the daemon: `quire serve` runs the web server and a worker in
 * one process, `quire web` only the web server (workers run elsewhere).
 *
 * SIGTERM and SIGINT stop it gracefully: the worker stops claiming and lets
 * its jobs finish (worker.grace_s), then the server stops accepting and
 * finishes the requests in flight. */
#include "appliance/commands.h"

#include <glib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "appliance/app.h"
#include "appliance/config.h"
#include "appliance/lifecycle.h"
#include "appliance/pgembed.h"
#include "core/audit.h"
#include "core/log.h"
#include "extractors/modelfields.h"
#include "pipeline/worker.h"
#include "web/server.h"

static volatile int serve_stop;
static void on_signal(int sig)
{
	(void)sig;
	serve_stop = 1;
}

static void announce(struct config *cfg, struct server *srv, const char *what)
{
	g_autofree char *host = g_strndup(cfg->web_listen, (gsize)(strrchr(cfg->web_listen, ':') - cfg->web_listen));
	printf("quire is serving on %s://%s:%u/ (%s); Ctrl-C stops it\n", server_tls(srv) ? "https" : "http", host,
	       (unsigned)server_port(srv), what);
	fflush(stdout);
}

static int run_worker(struct config *cfg, struct app *app, const char *conninfo)
{
	g_autofree char *name = g_strdup_printf("%s:%d", g_get_host_name(), (int)getpid());
	struct worker_options wo = {.name = name, .lease_s = cfg->lease_s, .drain = false,
	                            .extract = extract_options_of(cfg), .conninfo = conninfo,
	                            .concurrency = cfg->worker_concurrency, .grace_s = cfg->worker_grace_s,
	                            .poll_ms = cfg->worker_poll_ms, .retention_h = cfg->retention_h,
	                            .dead_retention_h = cfg->dead_retention_h};
	g_autofree char *err = NULL;
	if (open_model(cfg, &wo.extract.model, &err))
		return cmd_fail("serve", err);
	int rc = 0;
	if (worker_run(app->db, app->vault, &wo, &serve_stop, NULL, &err))
		rc = cmd_fail("serve", err);
	modelfields_close(wo.extract.model);
	return rc;
}

/* The effective settings for the read-only settings page (no secrets: none are settings). */
static char **settings_lines(struct config *cfg)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		return g_new0(char *, 1);
	config_print(cfg, f);
	fclose(f);
	char **lines = g_strsplit(text ? text : "", "\n", -1);
	free(text);
	return lines;
}

static int run(int argc, char **argv, struct config *cfg, bool with_worker)
{
	const char *what = with_worker ? "serve" : "web";
	if (cmd_parse(&argc, &argv, "",
	              with_worker ? "Run the web server and a worker until SIGTERM or SIGINT."
	                          : "Run the web server only (workers run elsewhere) until SIGTERM or SIGINT.",
	              NULL))
		return 2;
	struct app app;
	g_autofree char *err = NULL;
	if (app_open(cfg, APP_DB | APP_VAULT, &app, &err))
		return cmd_fail(what, err);
	audit_set_signer(app.vault, cfg->checkpoint_entries, cfg->checkpoint_minutes * 60);
	const char *conninfo = cfg->db_url[0] ? cfg->db_url : pgembed_conninfo(app.pg);
	g_autofree char *tls_cert = NULL, *tls_key = NULL;
	if (config_tls(cfg, &tls_cert, &tls_key, &err) || lifecycle_started(&app, what, &err)) {
		app_close(&app);
		return cmd_fail(what, err);
	}
	g_auto(GStrv) settings = settings_lines(cfg);
	struct server_options so = {
		.listen = cfg->web_listen, .conninfo = conninfo, .vault = app.vault, .threads = (unsigned)cfg->web_threads,
		.tls_cert = tls_cert, .tls_key = tls_key,
		.max_connections = (unsigned)cfg->web_max_connections, .max_per_address = (unsigned)cfg->web_max_per_address,
		.timeout_s = (unsigned)cfg->web_timeout_s, .max_file_bytes = (size_t)cfg->max_file_mb << 20,
		.max_request_bytes = (size_t)cfg->web_max_request_mb << 20,
		.max_uploads = (unsigned)cfg->web_max_uploads, .max_attempts = cfg->max_attempts,
		.session_idle_s = cfg->web_session_idle_s, .session_max_s = cfg->web_session_max_h * 3600,
		.password_ops = (unsigned long long)cfg->password_ops, .password_mem = (size_t)cfg->password_mem_mb << 20,
		.token_days = cfg->token_days, .render_timeout_s = cfg->parse_timeout_s,
		.render_memory = (size_t)cfg->parse_memory_mb << 20, .schemas_dir = cfg->schemas_dir, .settings = (const char *const *)settings};
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	struct server *srv = NULL;
	struct ops_watcher *watcher = NULL;
	int rc = 0;
	if (server_start(&so, &srv, &err)) {
		rc = cmd_fail(what, err);
	} else {
		announce(cfg, srv, with_worker ? "web server and worker" : "web server only");
		watcher = with_worker ? ops_watch_start(cfg, app.vault, conninfo) : NULL; /* watch.dir, if set */
		if (with_worker)
			rc = run_worker(cfg, &app, conninfo); /* returns once asked to stop, or on a fatal error */
		while (!serve_stop && rc == 0)
			g_usleep(200 * 1000);
		log_info("stopping");
	}
	ops_watch_stop(watcher);
	server_stop(srv);
	lifecycle_stopped(conninfo, what, rc ? "failed" : "ok");
	app_close(&app);
	return rc;
}

int cmd_serve(int argc, char **argv, struct config *cfg) { return run(argc, argv, cfg, true); }
int cmd_web(int argc, char **argv, struct config *cfg) { return run(argc, argv, cfg, false); }
