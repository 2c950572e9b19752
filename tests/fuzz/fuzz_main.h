/* fuzz_main: a replay main for fuzz targets, so each runs as an ordinary test.
 *
 * A target defines LLVMFuzzerTestOneInput(). Built normally, this main feeds it
 * every file of the corpus directories and files named on the command line and
 * prints TAP; built with -DQUIRE_LIBFUZZER and -fsanitize=fuzzer, libFuzzer
 * provides main instead.  Include it first in the target file. */
#pragma once

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifndef QUIRE_LIBFUZZER
#include <glib.h>
#include <stdio.h>

static int replay_file(const char *path, int *n)
{
	gchar *data = NULL;
	gsize len = 0;
	if (!g_file_get_contents(path, &data, &len, NULL)) {
		printf("not ok %d - %s (unreadable)\n", ++*n, path);
		return 1;
	}
	LLVMFuzzerTestOneInput((const uint8_t *)data, len);
	g_free(data);
	printf("ok %d - %s\n", ++*n, path);
	return 0;
}

int main(int argc, char **argv)
{
	int n = 0, failed = 0;
	for (int i = 1; i < argc; i++) {
		if (g_file_test(argv[i], G_FILE_TEST_IS_DIR)) {
			GDir *dir = g_dir_open(argv[i], 0, NULL);
			const char *name;
			while (dir && (name = g_dir_read_name(dir))) {
				g_autofree char *path = g_build_filename(argv[i], name, NULL);
				failed += replay_file(path, &n);
			}
			if (dir)
				g_dir_close(dir);
		} else {
			failed += replay_file(argv[i], &n);
		}
	}
	printf("1..%d\n", n);
	return failed ? 1 : 0;
}
#endif
