/* log: formatting and output of log lines.
 *
 * On a terminal or in a file a line carries its own UTC timestamp. When stderr
 * is the systemd journal's stream (JOURNAL_STREAM names the device and inode
 * of that very file, see systemd.exec(5)), the journal stamps each line
 * itself, so the line leaves out the time and starts with its syslog priority
 * ("<4>"), which the journal takes as the entry's priority. A process whose
 * stderr was redirected elsewhere inherits the variable, but the device and
 * inode then differ and lines keep their timestamp. */
#include "core/log.h"

#include <glib.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum log_level log_threshold = LOG_LEVEL_INFO;

static const char *const level_names[LOG_LEVEL_COUNT] = {"error", "warn", "info", "debug"};
static const int syslog_priority[LOG_LEVEL_COUNT] = {3, 4, 6, 7}; /* err, warning, info, debug */

static gsize journal; /* 0: not looked yet; 1: not the journal; 2: the journal */

int log_set_level_name(const char *name)
{
	for (int i = 0; i < LOG_LEVEL_COUNT; i++) {
		if (strcmp(name, level_names[i]) == 0) {
			log_threshold = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

bool log_stream_is_journal(const char *journal_stream, int fd)
{
	uintmax_t dev = 0, ino = 0;
	char end = 0;
	struct stat st;
	if (!journal_stream || sscanf(journal_stream, "%ju:%ju%c", &dev, &ino, &end) != 2)
		return false;
	return fstat(fd, &st) == 0 && (uintmax_t)st.st_dev == dev && (uintmax_t)st.st_ino == ino;
}

static bool under_journal(void)
{
	if (g_once_init_enter(&journal))
		g_once_init_leave(&journal, log_stream_is_journal(getenv("JOURNAL_STREAM"), STDERR_FILENO) ? 2 : 1);
	return journal == 2;
}

void log_write(enum log_level lvl, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	/* One write per line so concurrent processes do not interleave within a line. */
	if (under_journal()) {
		fprintf(stderr, "<%d>quire %s: %s\n", syslog_priority[lvl], level_names[lvl], line);
		return;
	}
	char stamp[32];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ldZ quire %s: %s\n", stamp, ts.tv_nsec / 1000000, level_names[lvl], line);
}
