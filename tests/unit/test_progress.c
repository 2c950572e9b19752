/* Unit tests of appliance/progress: the plain lines written where the output is not a
 * terminal, the redrawn line on a terminal, and the line's text (counts, percentage, time
 * left). Output goes to a memory stream. */
#include "appliance/progress.h"

#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *run(bool tty, uint64_t total, const uint64_t *steps, int n)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct progress p;
	progress_begin(&p, f, tty, "submit: storing", "files", total);
	for (int i = 0; i < n; i++)
		progress_update(&p, steps[i]);
	progress_end(&p);
	fclose(f);
	char *copy = g_strdup(buf); /* g_free, like the rest */
	free(buf);
	return copy;
}

static void test_plain_lines_at_tenths(void)
{
	uint64_t steps[100];
	for (int i = 0; i < 100; i++)
		steps[i] = (uint64_t)i + 1;
	g_autofree char *out = run(false, 100, steps, 100);
	g_auto(GStrv) lines = g_strsplit(out, "\n", -1);
	/* the start, 10% ... 90%, and the end: 11 lines and an empty tail */
	g_assert_cmpuint(g_strv_length(lines), ==, 12);
	g_assert_cmpstr(lines[0], ==, "submit: storing: 0/100 files (0%)");
	g_assert_true(g_str_has_prefix(lines[1], "submit: storing: 10/100 files (10%)"));
	g_assert_true(g_str_has_prefix(lines[9], "submit: storing: 90/100 files (90%)"));
	g_assert_true(g_str_has_prefix(lines[10], "submit: storing: 100/100 files (100%), done in "));
	g_assert_null(strchr(out, '\r'));
	g_assert_null(strchr(out, '\033'));
}

static void test_terminal_redraws(void)
{
	uint64_t steps[3] = {1, 2, 3};
	g_autofree char *out = run(true, 3, steps, 3);
	g_assert_true(g_str_has_prefix(out, "\rsubmit: storing: 0/3 files (0%)\033[K"));
	g_assert_true(g_str_has_suffix(out, "\rsubmit: storing: 3/3 files (100%), done in 0 s\033[K\n"));
	g_assert_cmpint((int)(strchr(out, '\n') - out), ==, (int)strlen(out) - 1); /* one line in all */
}

static void test_format(void)
{
	struct progress p;
	FILE *f = fopen("/dev/null", "w");
	progress_begin(&p, f, false, "backup: writing", "bytes", 100u << 20);
	p.done = 25u << 20;
	char line[256];
	progress_format(&p, 10 * G_USEC_PER_SEC, line, sizeof line);
	/* a quarter in 10 s: 30 s left */
	g_assert_cmpstr(line, ==, "backup: writing: 25.0 MiB/100.0 MiB (25%), about 30 s left");
	progress_begin(&p, f, false, "restore: loading the database", NULL, 0);
	progress_format(&p, 0, line, sizeof line);
	g_assert_cmpstr(line, ==, "restore: loading the database");
	progress_begin(&p, f, false, "keys rotate", "documents", 0);
	p.done = 7;
	progress_format(&p, 0, line, sizeof line);
	g_assert_cmpstr(line, ==, "keys rotate: 7 documents");
	fclose(f);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/progress/plain-lines-at-tenths", test_plain_lines_at_tenths);
	g_test_add_func("/progress/terminal-redraws", test_terminal_redraws);
	g_test_add_func("/progress/format", test_format);
	return g_test_run();
}
