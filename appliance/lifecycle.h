/* lifecycle: audit entries for a service's start and stop, and for changes of
 * the configuration it starts with.
 *
 * `quire serve`, `quire web` and `quire worker` append "service.started" when
 * they start and "service.stopped" when they stop (actor "system:<service>",
 * where "<host>/<pid>"). At start the effective configuration (defaults, file,
 * environment) is compared with the one this host last started a service with
 * (table config_state): if settings differ, "config.changed" names them, with
 * old and new values except for settings that may hold a credential
 * (config.h), of which only the change is told. Settings are compared by a
 * keyed hash (the vault's), so a secret is never stored in plain or as a plain
 * hash. */
#pragma once

#include "core/qerr.h"

struct app;

/* Records the start of service ("serve", "web", "worker") on app->db (and a
 * configuration change before it), in one transaction. Needs app->db and
 * app->vault. */
enum qerr lifecycle_started(struct app *app, const char *service, char **reterr) QUIRE_MUST_CHECK;

/* Records the stop of service with outcome ("ok" or "failed") on a new
 * connection to conninfo (the service's own may have been idle for days). A
 * failure is logged (the database may be the reason for stopping), not
 * returned. */
void lifecycle_stopped(const char *conninfo, const char *service, const char *outcome);
