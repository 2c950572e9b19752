/* cmd_serve: the daemon: the web server and a worker in one process. */
#include "appliance/commands.h"

#include <glib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "appliance/app.h"
#include "appliance/config.h"
#include "appliance/pgembed.h"
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

static int serve(struct config *cfg, struct app *app, struct server *srv)
{
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	g_autofree char *host = g_strndup(cfg->web_listen, (gsize)(strrchr(cfg->web_listen, ':') - cfg->web_listen));
	printf("quire is serving on http://%s:%u/ (health: /healthz, queue: /api/v1/status); Ctrl-C stops it\n", host,
	       (unsigned)server_port(srv));
	fflush(stdout);
	g_autofree char *name = g_strdup_printf("%s:%d", g_get_host_name(), (int)getpid());
	struct worker_options wo = {.name = name, .lease_s = cfg->lease_s, .drain = false,
	                            .extract = extract_options_of(cfg)};
	g_autofree char *err = NULL;
	if (open_model(cfg, &wo.extract.model, &err))
		return cmd_fail("serve", err);
	int rc = 0;
	if (worker_run(app->db, app->vault, &wo, &serve_stop, NULL, &err))
		rc = cmd_fail("serve", err);
	modelfields_close(wo.extract.model);
	log_info("stopping");
	return rc;
}

int cmd_serve(int argc, char **argv, struct config *cfg)
{
	if (cmd_parse(&argc, &argv, "", "Run the web server and a worker until SIGTERM or SIGINT.", NULL))
		return 2;
	struct app app;
	g_autofree char *err = NULL;
	if (app_open(cfg, APP_DB | APP_VAULT, &app, &err))
		return cmd_fail("serve", err);
	struct server_options so = {.listen = cfg->web_listen,
	                            .conninfo = cfg->db_url[0] ? cfg->db_url : pgembed_conninfo(app.pg),
	                            .threads = 2};
	struct server *srv = NULL;
	int rc = 0;
	struct ops_watcher *watcher = NULL;
	if (server_start(&so, &srv, &err)) {
		rc = cmd_fail("serve", err);
	} else {
		watcher = ops_watch_start(cfg, app.vault, so.conninfo); /* watch.dir, if set */
		rc = serve(cfg, &app, srv);
	}
	ops_watch_stop(watcher);
	server_stop(srv);
	app_close(&app);
	return rc;
}
