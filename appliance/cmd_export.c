/* cmd_export: `quire export`: approved results as CSV or JSON Lines, or
 * corrected documents as fine-tuning examples (web/export.h), to a file or
 * standard output. A file is created with mode 0600 and refused if it
 * exists: an export holds decrypted document data. */
#include "appliance/commands.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "appliance/app.h"
#include "appliance/config.h"
#include "core/audit.h"
#include "core/db.h"
#include "web/export.h"

static int write_fd(void *ctx, const char *data, size_t len)
{
	int fd = *(int *)ctx;
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

static enum qerr audit_export(struct app *app, const char *format, int64_t n, char **reterr)
{
	g_autofree char *detail = g_strdup_printf("%s, %lld documents", format, (long long)n);
	struct audit_event ev = {.actor = app->actor, .action = "export.written", .outcome = "ok", .client = "cli",
	                         .detail = detail};
	enum qerr e = db_begin(app->db, reterr);
	if (!e)
		e = audit_append(app->db, &ev, reterr);
	if (!e)
		e = db_commit(app->db, reterr);
	if (e)
		db_rollback(app->db);
	return e;
}

int cmd_export(int argc, char **argv, struct config *cfg)
{
	g_autofree char *format = NULL, *output = NULL;
	GOptionEntry entries[] = {
		{"format", 'f', 0, G_OPTION_ARG_STRING, &format,
		 "csv or jsonl (approved results), or training (corrected documents as fine-tuning examples)", "FORMAT"},
		{"output", 'o', 0, G_OPTION_ARG_FILENAME, &output, "write to FILE (created 0600; default: standard output)",
		 "FILE"},
		{NULL, 0, 0, 0, NULL, NULL, NULL}};
	if (cmd_parse(&argc, &argv, "", "Export approved results or training examples.", entries))
		return 2;
	enum export_format f;
	if (!export_format_parse(format ? format : "jsonl", &f))
		return cmd_fail("export", "--format must be csv, jsonl or training");
	int fd = STDOUT_FILENO;
	if (output) {
		fd = open(output, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0) {
			g_autofree char *msg = g_strdup_printf("cannot create %s: %s", output, g_strerror(errno));
			return cmd_fail("export", msg);
		}
	}
	struct app app;
	g_autofree char *err = NULL;
	int64_t n = 0;
	enum qerr e = app_open(cfg, APP_DB | APP_VAULT, &app, &err);
	if (!e)
		e = export_run(app.db, app.vault, f, write_fd, &fd, &n, &err);
	if (!e)
		e = audit_export(&app, format ? format : "jsonl", n, &err);
	if (!e)
		fprintf(stderr, "quire export: %lld documents\n", (long long)n);
	if (fd != STDOUT_FILENO && close(fd) != 0 && !e)
		e = qerr_set(&err, QERR_IO, "cannot write %s: %s", output, g_strerror(errno));
	if (e && output)
		unlink(output);
	app_close(&app); /* also fine after a failed app_open */
	return e ? cmd_fail("export", err ? err : qerr_str(e)) : 0;
}
