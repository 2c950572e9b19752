/* fuzz_gguf: the GGUF reader and the model loader over arbitrary bytes.
 *
 * One input goes through gguf_open_memory() and, when that succeeds, through
 * every accessor and model_load_gguf(), which reads the hyperparameters and
 * checks every tensor's shape; nothing may crash, hang or leak. Built with
 * -DQUIRE_LIBFUZZER it is a libFuzzer target; otherwise its main() replays
 * every file of the directories and files named on the command line (a
 * corpus directory by default), so that it runs as an ordinary test. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/gguf.h"
#include "runtime/model.h"
#include "runtime/model_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Touches what the reader exposes, so that a bad index or pointer shows up under the sanitizers. */
static unsigned walk(const struct gguf_file *f)
{
	unsigned acc = 0;
	for (int64_t i = 0; i < gguf_n_kv(f); i++) {
		struct gguf_str k = gguf_kv_key(f, i);
		char key[256];
		if (k.len >= sizeof key)
			continue;
		memcpy(key, k.ptr, k.len);
		key[k.len] = '\0';
		acc += (unsigned)gguf_find_key(f, key) + gguf_kv_type(f, i);
		enum gguf_vtype et;
		uint64_t n;
		struct gguf_str s;
		if (gguf_get_arr(f, key, &et, &n) && n > 0) {
			if (gguf_get_arr_str(f, key, n - 1, &s) && s.len)
				acc += (uint8_t)s.ptr[s.len - 1];
			const uint8_t *d = gguf_get_arr_data(f, key);
			if (d)
				acc += d[0];
		} else if (gguf_get_str(f, key, &s) && s.len) {
			acc += (uint8_t)s.ptr[0];
		}
	}
	for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
		const struct gguf_tensor *t = gguf_tensor_at(f, i);
		acc += gguf_find_tensor(f, t->name) == t;
		if (t->nbytes)
			acc += ((const uint8_t *)t->data)[t->nbytes - 1];
	}
	return acc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gguf_file *f = NULL;
	char *msg = NULL;
	if (gguf_open_memory(data, size, &f, &msg) != RTERROR_OK) {
		free(msg);
		return 0;
	}
	volatile unsigned sink = walk(f);
	(void)sink;
	struct model *m = NULL;
	if (model_load_gguf(f, &m, &msg) == RTERROR_OK)
		model_free(m); /* closes f */
	else
		gguf_close(f);
	free(msg);
	return 0;
}

#ifndef QUIRE_LIBFUZZER
static int run_file(const char *path)
{
	FILE *fp = fopen(path, "rb");
	if (!fp) {
		fprintf(stderr, "cannot open %s\n", path);
		return 1;
	}
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0, n;
	uint8_t chunk[65536];
	while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0) {
		if (len + n > cap) {
			cap = (len + n) * 2;
			uint8_t *p = realloc(buf, cap);
			if (!p)
				abort();
			buf = p;
		}
		memcpy(buf + len, chunk, n);
		len += n;
	}
	fclose(fp);
	/* an exact-size copy so that an over-read lands outside the allocation */
	uint8_t *exact = malloc(len ? len : 1);
	if (len)
		memcpy(exact, buf, len);
	free(buf);
	LLVMFuzzerTestOneInput(exact, len);
	free(exact);
	return 0;
}

static int run_path(const char *path, int *count)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		fprintf(stderr, "cannot stat %s\n", path);
		return 1;
	}
	if (!S_ISDIR(st.st_mode)) {
		(*count)++;
		return run_file(path);
	}
	DIR *d = opendir(path);
	if (!d)
		return 1;
	int bad = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char sub[4096];
		snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
		bad |= run_path(sub, count);
	}
	closedir(d);
	return bad;
}

int main(int argc, char **argv)
{
	int bad = 0, count = 0;
	for (int i = 1; i < argc; i++)
		bad |= run_path(argv[i], &count);
	printf("1..1\n%s 1 - /fuzz/gguf/replay (%d inputs)\n", bad || count == 0 ? "not ok" : "ok", count);
	return bad || count == 0;
}
#endif
