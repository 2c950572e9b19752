/* progress: how far a long command has come, on standard error.
 *
 * On a terminal, one line redrawn in place (at most PROGRESS_REDRAW_US apart):
 * what is being done, done/total with the percentage, the rate and the time
 * left, estimated from the rate so far. Anywhere else (a pipe, a log, the
 * journal), plain lines: one when a stage starts, one at every tenth of the
 * way, and one at the end, so logs stay short and readable. Standard output
 * is left to the command's results. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define PROGRESS_REDRAW_US 100000

struct progress {
	char what[64];
	const char *unit; /* "documents", "bytes" (shown in MiB), ... */
	uint64_t total;   /* 0: unknown */
	uint64_t done;
	int64_t start_us, drawn_us;
	int tenth;   /* last tenth reported in plain lines */
	bool tty;    /* redraw in place */
	bool active; /* a line is on the terminal */
	FILE *out;
};

/* Starts a stage: what (copied), its unit and total (0 if unknown). tty: whether out is a
 * terminal (progress_init_for() decides from the file). */
void progress_begin(struct progress *p, FILE *out, bool tty, const char *what, const char *unit, uint64_t total);
/* progress_begin() on standard error, redrawn when it is a terminal. */
void progress_start(struct progress *p, const char *what, const char *unit, uint64_t total);
/* done so far (not more than total when total is known). */
void progress_update(struct progress *p, uint64_t done);
/* Takes the redrawn line off the terminal before other output; the next update redraws it. */
void progress_clear(struct progress *p);
/* The stage ended: its last line with the time it took. */
void progress_end(struct progress *p);
/* Formats the line for done/total after elapsed_us (what a terminal shows), into buf. */
void progress_format(const struct progress *p, int64_t elapsed_us, char *buf, size_t size);
