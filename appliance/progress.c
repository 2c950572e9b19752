/* progress: a redrawn line on a terminal, plain lines elsewhere (progress.h). */
#include "appliance/progress.h"

#include <glib.h>
#include <string.h>
#include <unistd.h>

static void amount(const struct progress *p, uint64_t v, char *buf, size_t size)
{
	if (p->unit && strcmp(p->unit, "bytes") == 0)
		g_snprintf(buf, size, "%.1f MiB", (double)v / (1024.0 * 1024.0));
	else
		g_snprintf(buf, size, "%llu", (unsigned long long)v);
}

static void duration(double s, char *buf, size_t size)
{
	if (s < 90)
		g_snprintf(buf, size, "%.0f s", s);
	else if (s < 5400)
		g_snprintf(buf, size, "%.0f min", s / 60);
	else
		g_snprintf(buf, size, "%.1f h", s / 3600);
}

void progress_format(const struct progress *p, int64_t elapsed_us, char *buf, size_t size)
{
	char d[32], t[32], left[32] = "";
	amount(p, p->done, d, sizeof d);
	double secs = (double)elapsed_us / 1e6;
	bool bytes = p->unit && strcmp(p->unit, "bytes") == 0;
	const char *unit = bytes ? "" : p->unit ? p->unit : "";
	if (!p->total && !p->unit) { /* a stage whose size nobody knows */
		g_strlcpy(buf, p->what, size);
		return;
	}
	if (!p->total) {
		g_snprintf(buf, size, "%s: %s%s%s", p->what, d, unit[0] ? " " : "", unit);
		return;
	}
	amount(p, p->total, t, sizeof t);
	double frac = (double)p->done / (double)p->total;
	if (p->done > 0 && p->done < p->total && secs >= 0.5) {
		char rest[16];
		duration(secs / frac - secs, rest, sizeof rest);
		g_snprintf(left, sizeof left, ", about %s left", rest);
	}
	g_snprintf(buf, size, "%s: %s/%s%s%s (%.0f%%)%s", p->what, d, t, unit[0] ? " " : "", unit, frac * 100, left);
}

static void draw(struct progress *p, bool final)
{
	char line[256];
	int64_t now = g_get_monotonic_time();
	progress_format(p, now - p->start_us, line, sizeof line);
	if (p->tty) {
		/* \r and erase to the end of the line: the new text replaces the old */
		fprintf(p->out, "\r%s\033[K%s", line, final ? "\n" : "");
		p->active = !final;
	} else {
		fprintf(p->out, "%s\n", line);
	}
	fflush(p->out);
	p->drawn_us = now;
}

void progress_begin(struct progress *p, FILE *out, bool tty, const char *what, const char *unit, uint64_t total)
{
	memset(p, 0, sizeof *p);
	g_strlcpy(p->what, what, sizeof p->what);
	p->unit = unit;
	p->total = total;
	p->out = out;
	p->tty = tty;
	p->start_us = g_get_monotonic_time();
	draw(p, false);
}

void progress_start(struct progress *p, const char *what, const char *unit, uint64_t total)
{
	progress_begin(p, stderr, isatty(STDERR_FILENO) == 1, what, unit, total);
}

void progress_update(struct progress *p, uint64_t done)
{
	p->done = p->total && done > p->total ? p->total : done;
	if (p->tty) {
		if (g_get_monotonic_time() - p->drawn_us >= PROGRESS_REDRAW_US)
			draw(p, false);
		return;
	}
	int tenth = p->total ? (int)(p->done * 10 / p->total) : 0;
	if (tenth > p->tenth && tenth < 10) { /* the end has a line of its own */
		p->tenth = tenth;
		draw(p, false);
	}
}

void progress_clear(struct progress *p)
{
	if (!p->tty || !p->active)
		return;
	fprintf(p->out, "\r\033[K");
	fflush(p->out);
	p->active = false;
	p->drawn_us = 0;
}

void progress_end(struct progress *p)
{
	char took[16], line[256];
	int64_t us = g_get_monotonic_time() - p->start_us;
	duration((double)us / 1e6, took, sizeof took);
	progress_format(p, us, line, sizeof line);
	if (p->tty)
		fprintf(p->out, "\r%s, done in %s\033[K\n", line, took);
	else
		fprintf(p->out, "%s, done in %s\n", line, took);
	fflush(p->out);
	p->active = false;
}
