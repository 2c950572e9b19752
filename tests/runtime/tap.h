/* tap: a minimal Test Anything Protocol writer for runtime/'s tests.
 *
 * runtime/ builds without GLib, so its tests are plain programs. Each test
 * calls tap_ok() once per check with a path-like name; tap_done() prints the
 * plan ("1..N") last, which TAP allows, and returns the exit status: 0 when
 * every check passed. tap_skip_all() prints a plan of zero with a reason. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

static int tap_count;
static int tap_failed;

/* Records one check; extra printf-style arguments are printed as a diagnostic when it fails. */
__attribute__((format(printf, 3, 4), unused)) static bool tap_ok(bool pass, const char *name,
                                                                   const char *fmt, ...)
{
	tap_count++;
	printf("%s %d - %s\n", pass ? "ok" : "not ok", tap_count, name);
	if (!pass) {
		tap_failed++;
		if (fmt) {
			va_list ap;
			va_start(ap, fmt);
			printf("# ");
			vprintf(fmt, ap);
			printf("\n");
			va_end(ap);
		}
	}
	fflush(stdout);
	return pass;
}

/* A diagnostic line that does not count as a check. */
__attribute__((format(printf, 1, 2), unused)) static void tap_diag(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("# ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
}

__attribute__((unused)) static int tap_done(void)
{
	printf("1..%d\n", tap_count);
	return tap_failed ? 1 : 0;
}

__attribute__((unused)) static int tap_skip_all(const char *reason)
{
	printf("1..0 # SKIP %s\n", reason);
	return 0;
}
