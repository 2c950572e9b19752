/* log: formatting and output of log lines. */
#include "core/log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

enum log_level log_threshold = LOG_LEVEL_INFO;

static const char *const level_names[LOG_LEVEL_COUNT] = {"error", "warn", "info", "debug"};

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

void log_write(enum log_level lvl, const char *fmt, ...)
{
	char stamp[32];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);

	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	/* One write per line so concurrent processes do not interleave within a line. */
	fprintf(stderr, "%s.%03ldZ quire %s: %s\n", stamp, ts.tv_nsec / 1000000, level_names[lvl], line);
}
