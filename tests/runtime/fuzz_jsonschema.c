/* fuzz_jsonschema: the schema compiler, the validator and the byte automaton
 * over arbitrary input.
 *
 * An input is a schema, a NUL byte, then a candidate JSON text (no NUL: the
 * whole input is the schema and the text is empty). When the schema compiles,
 * the text is validated, and fed byte by byte to the automaton; two promises
 * are checked, and a broken one aborts:
 *   - a text the automaton accepts as complete also passes the validator;
 *   - from wherever the automaton stopped, its completion gives a text that
 *     passes the validator (the automaton has no dead ends).
 * Built with -DQUIRE_LIBFUZZER it is a libFuzzer target; otherwise main()
 * replays the files and directories on its command line and prints TAP. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/constraint.h"
#include "runtime/jsonschema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_automaton(const struct jsonschema *s, const char *text, size_t len)
{
	struct constraint *c = NULL;
	struct constraint_cursor *cur = NULL;
	if (constraint_new(s, NULL, &c, NULL) || constraint_cursor_new(c, &cur, NULL)) {
		constraint_free(c);
		return;
	}
	size_t fed = 0;
	while (fed < len && constraint_cursor_feed(cur, text + fed, 1))
		fed++;
	if (fed == len && constraint_cursor_complete(cur) && jsonschema_validate(s, text, len, NULL)) {
		fprintf(stderr, "automaton accepted a text the validator refuses\n");
		abort();
	}
	char *tail = NULL;
	size_t tail_len = 0;
	if (constraint_cursor_completion(cur, &tail, &tail_len, NULL) == RTERROR_OK) {
		char *full = malloc(fed + tail_len + 1);
		if (full) {
			memcpy(full, text, fed);
			memcpy(full + fed, tail, tail_len);
			char *why = NULL;
			if (jsonschema_validate(s, full, fed + tail_len, &why) != RTERROR_OK) {
				fprintf(stderr, "completion \"%.200s\" does not validate: %s\n", full, why);
				abort();
			}
			free(full);
		}
		free(tail);
	}
	constraint_cursor_free(cur);
	constraint_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	size_t slen = nul ? (size_t)(nul - data) : size;
	const char *text = nul ? (const char *)nul + 1 : "";
	size_t tlen = nul ? size - slen - 1 : 0;
	struct jsonschema *s = NULL;
	char *err = NULL;
	if (jsonschema_compile((const char *)data, slen, &s, &err) != RTERROR_OK) {
		free(err);
		return 0;
	}
	if (jsonschema_validate(s, text, tlen, &err) != RTERROR_OK) {
		free(err);
		err = NULL;
	}
	check_automaton(s, text, tlen);
	jsonschema_free(s);
	return 0;
}

#ifndef QUIRE_LIBFUZZER
static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	size_t cap = 4096, len = 0;
	uint8_t *buf = malloc(cap);
	size_t n;
	while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
		len += n;
		if (len == cap) {
			uint8_t *b = realloc(buf, cap * 2);
			if (!b) {
				free(buf);
				buf = NULL;
			}
			buf = b;
			cap *= 2;
		}
	}
	fclose(f);
	if (!buf)
		return -1;
	/* an exact-size copy, so that reading past the end is caught by the sanitizers */
	uint8_t *exact = malloc(len ? len : 1);
	if (exact) {
		memcpy(exact, buf, len);
		LLVMFuzzerTestOneInput(exact, len);
	}
	free(exact);
	free(buf);
	return 0;
}

static void replay(const char *path, int *count, int *failed)
{
	struct stat st;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		DIR *d = opendir(path);
		struct dirent *e;
		while (d && (e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			char sub[4096];
			snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
			replay(sub, count, failed);
		}
		if (d)
			closedir(d);
		return;
	}
	int rc = replay_file(path);
	++*count;
	*failed += rc != 0;
	printf("%s %d - %s\n", rc ? "not ok" : "ok", *count, path);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	int count = 0, failed = 0;
	for (int i = 1; i < argc; i++)
		replay(argv[i], &count, &failed);
	printf("1..%d\n", count);
	return failed ? 1 : 0;
}
#endif
