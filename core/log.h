/* log: one line per event on stderr, journald-friendly: under the journal
 * (JOURNAL_STREAM is stderr) a line has no timestamp of its own, since the
 * journal stamps it, and starts with its syslog priority ("<6>"); elsewhere it
 * starts with the UTC time.
 *
 * The macros test the level before formatting anything. Library-like modules
 * (runtime/, extractors/) do not log above debug; the worker, the server and
 * the CLI log once, where they decide. Never log document text, field values
 * or keys. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG, LOG_LEVEL_COUNT };

extern enum log_level log_threshold;

/* Sets the threshold from a name ("error", "warn", "info", "debug"); returns 0, or -1 for an unknown name. */
int log_set_level_name(const char *name);
void log_write(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Whether fd is the stream journal_stream names ("DEVICE:INODE", the value of
 * $JOURNAL_STREAM; NULL: not under the journal). */
bool log_stream_is_journal(const char *journal_stream, int fd);

#define LOG_AT(lvl, ...)                          \
	do {                                      \
		if ((lvl) <= log_threshold)       \
			log_write(lvl, __VA_ARGS__); \
	} while (0)
#define log_error(...) LOG_AT(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) LOG_AT(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) LOG_AT(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) LOG_AT(LOG_LEVEL_DEBUG, __VA_ARGS__)
/* Job-scoped: prefixes job id and attempt. */
#define log_job(lvl, job_id, attempt, fmt, ...) \
	LOG_AT(lvl, "job=%lld attempt=%d " fmt, (long long)(job_id), (int)(attempt), __VA_ARGS__)
