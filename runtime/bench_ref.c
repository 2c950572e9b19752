/* bench_ref: running the reference engine's llama-bench beside Quire's
 * benchmark (see bench_ref.h).
 *
 * llama-bench loads the best CPU variant (libggml-cpu-NAME.so) it finds in its
 * program's folder and in the current folder. To make it use a given
 * instruction set, a private temporary folder gets a copy of the program
 * (which finds its libraries through $ORIGIN) and links to the libraries and to
 * the chosen variants only; the folder is removed afterwards. */
#include "runtime/bench_ref.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BENCH_REF_MAX_FIELDS 64

char *bench_ref_find(const char *given, const char *model_path)
{
	if (given)
		return g_file_test(given, G_FILE_TEST_IS_EXECUTABLE) && !g_file_test(given, G_FILE_TEST_IS_DIR)
		           ? strdup(given)
		           : NULL;
	char *places[3] = {NULL, NULL, NULL};
	char *self = g_file_read_link("/proc/self/exe", NULL);
	if (self) {
		g_autofree char *dir = g_path_get_dirname(self);
		places[0] = g_build_filename(dir, "llama-bench", NULL);
	}
	if (model_path) {
		g_autofree char *dir = g_path_get_dirname(model_path);
		places[1] = g_build_filename(dir, "llama-bench", NULL);
	}
	places[2] = g_build_filename("..", "shared", "tools", "llama.cpp", "llama-bench", NULL);
	char *found = NULL;
	for (int i = 0; i < 3; i++)
		if (!found && places[i] && g_file_test(places[i], G_FILE_TEST_IS_EXECUTABLE) &&
		    !g_file_test(places[i], G_FILE_TEST_IS_DIR))
			found = strdup(places[i]);
	g_free(self);
	for (int i = 0; i < 3; i++)
		g_free(places[i]);
	return found;
}

void bench_cpu_name(char *buf, size_t size)
{
	snprintf(buf, size, "unknown processor");
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[512];
	while (f && fgets(line, sizeof line, f)) {
		if (strncmp(line, "model name", 10) != 0)
			continue;
		const char *v = strchr(line, ':');
		if (!v)
			continue;
		v++;
		while (*v == ' ' || *v == '\t')
			v++;
		snprintf(buf, size, "%.*s", (int)strcspn(v, "\n"), v);
		break;
	}
	if (f)
		fclose(f);
}

/* The variants of the reference tool that run the instructions of Quire's kernel set. */
static const char *const *ref_variants(const char *kernels)
{
	static const char *const avx2[] = {"haswell", NULL};
	static const char *const avx512[] = {"skylakex", "icelake", NULL};
	static const char *const scalar[] = {"sandybridge", NULL};
	if (!kernels || strcmp(kernels, "amx") == 0)
		return NULL;
	if (strcmp(kernels, "avx2") == 0)
		return avx2;
	if (strcmp(kernels, "avx512") == 0)
		return avx512;
	return scalar;
}

/* Splits one CSV line (fields in double quotes or bare) into fields, in place. */
static int csv_split(char *line, char **fields, int max)
{
	int n = 0;
	char *p = line;
	while (*p && *p != '\n' && *p != '\r' && n < max) {
		char *out = p;
		fields[n++] = out;
		if (*p == '"') {
			p++;
			while (*p && !(*p == '"' && p[1] != '"')) {
				if (*p == '"')
					p++;
				*out++ = *p++;
			}
			if (*p == '"')
				p++;
		} else {
			while (*p && *p != ',' && *p != '\n' && *p != '\r')
				*out++ = *p++;
		}
		char end = *p;
		*out = '\0';
		if (end == ',')
			p++;
		else
			break;
	}
	return n;
}

static int csv_column(char **fields, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(fields[i], name) == 0)
			return i;
	return -1;
}

/* Reads avg_ts of the prompt row (n_gen 0) and of the generation row (n_prompt 0). */
static bool parse_csv(char *text, struct bench_ref_result *r)
{
	char *fields[BENCH_REF_MAX_FIELDS];
	int col_p = -1, col_g = -1, col_ts = -1;
	bool pp = false, tg = false;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		int n = csv_split(line, fields, BENCH_REF_MAX_FIELDS);
		if (col_ts < 0) {
			col_p = csv_column(fields, n, "n_prompt");
			col_g = csv_column(fields, n, "n_gen");
			col_ts = csv_column(fields, n, "avg_ts");
			if (col_p < 0 || col_g < 0)
				col_ts = -1;
			continue;
		}
		if (n <= col_ts || n <= col_p || n <= col_g)
			continue;
		double ts = strtod(fields[col_ts], NULL);
		if (strtol(fields[col_g], NULL, 10) == 0) {
			r->pp_tps = ts;
			pp = true;
		} else if (strtol(fields[col_p], NULL, 10) == 0) {
			r->tg_tps = ts;
			tg = true;
		}
	}
	return pp && tg;
}

/* The CPU variant named in "load_backend: loaded CPU backend from .../libggml-cpu-NAME.so". */
static void parse_variant(const char *err, struct bench_ref_result *r)
{
	const char *p = err ? strstr(err, "libggml-cpu-") : NULL;
	if (!p)
		return;
	p += strlen("libggml-cpu-");
	snprintf(r->variant, sizeof r->variant, "%.*s", (int)strcspn(p, ".\n"), p);
}

/* Fills a private folder (*ret, which the caller removes, also on failure) with a
 * copy of the program, its libraries and only the given variants. */
static bool make_restricted(const char *bindir, const char *const *variants, char **ret)
{
	char *dir = g_dir_make_tmp("quire-llama-bench-XXXXXX", NULL);
	*ret = dir;
	if (!dir)
		return false;
	g_autofree char *prog = g_build_filename(bindir, "llama-bench", NULL);
	g_autofree char *copy = g_build_filename(dir, "llama-bench", NULL);
	g_autofree char *bytes = NULL;
	gsize len = 0;
	bool ok = g_file_get_contents(prog, &bytes, &len, NULL) &&
	          g_file_set_contents(copy, bytes, (gssize)len, NULL) && g_chmod(copy, 0700) == 0;
	const char *libs[] = {"libggml-base.so", "libggml.so", "libllama.so"};
	for (size_t i = 0; ok && i < sizeof libs / sizeof libs[0]; i++) {
		g_autofree char *from = g_build_filename(bindir, libs[i], NULL);
		g_autofree char *to = g_build_filename(dir, libs[i], NULL);
		ok = symlink(from, to) == 0;
	}
	for (size_t i = 0; ok && variants[i]; i++) {
		g_autofree char *name = g_strdup_printf("libggml-cpu-%s.so", variants[i]);
		g_autofree char *from = g_build_filename(bindir, name, NULL);
		g_autofree char *to = g_build_filename(dir, name, NULL);
		if (g_file_test(from, G_FILE_TEST_EXISTS))
			ok = symlink(from, to) == 0;
	}
	return ok;
}

static void remove_restricted(char *dir)
{
	if (!dir)
		return;
	GDir *d = g_dir_open(dir, 0, NULL);
	const char *name;
	while (d && (name = g_dir_read_name(d))) {
		g_autofree char *p = g_build_filename(dir, name, NULL);
		g_unlink(p);
	}
	if (d)
		g_dir_close(d);
	g_rmdir(dir);
	g_free(dir);
}

static enum rterror spawn_tool(char **argv, const char *cwd, struct bench_ref_result *r, char **reterr)
{
	g_autofree char *out = NULL, *err = NULL;
	g_autoptr(GError) gerr = NULL;
	int status = 0;
	if (!g_spawn_sync(cwd, argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status, &gerr))
		return rterror_set(reterr, RTERROR_IO, "cannot run %s: %s", argv[0], gerr->message);
	if (!g_spawn_check_wait_status(status, NULL) || !parse_csv(out, r)) {
		const char *why = err && *err ? err : "no figures in its output";
		size_t n = strlen(why);
		const char *tail = n > 400 ? why + n - 400 : why; /* its last words say what went wrong */
		return rterror_set(reterr, RTERROR_IO, "%s failed: %s", argv[0], tail);
	}
	parse_variant(err, r);
	return RTERROR_OK;
}

static enum rterror run_program(const char *program, const char *cwd, const char *model_path, int n_threads,
                                int n_prompt, int n_gen, int reps, struct bench_ref_result *r, char **reterr)
{
	g_autofree char *t = g_strdup_printf("%d", n_threads);
	g_autofree char *p = g_strdup_printf("%d", n_prompt);
	g_autofree char *n = g_strdup_printf("%d", n_gen);
	g_autofree char *rr = g_strdup_printf("%d", reps > 0 ? reps : 1);
	g_autofree char *abs_model = g_canonicalize_filename(model_path, NULL);
	char *argv[] = {(char *)program, "-m", abs_model, "-t", t, "-p", p, "-n", n, "-r", rr, "-o", "csv", NULL};
	return spawn_tool(argv, cwd, r, reterr);
}

enum rterror bench_ref_run(const char *tool, const char *model_path, int n_threads, int n_prompt, int n_gen, int reps,
                           const char *kernels, struct bench_ref_result *ret, char **reterr)
{
	struct bench_ref_result r = {{0}, 0, 0};
	char *abs_tool = g_canonicalize_filename(tool, NULL); /* it runs in another folder */
	char *dir = g_path_get_dirname(abs_tool);
	char *bindir = g_build_filename(dir, "bin", NULL);
	char *inner = g_build_filename(bindir, "llama-bench", NULL);
	char *tmp = NULL, *copy = NULL;
	enum rterror e = RTERROR_OK;
	if (!g_file_test(inner, G_FILE_TEST_IS_EXECUTABLE)) { /* the tool is the program itself */
		g_free(bindir);
		bindir = g_strdup(dir);
	}
	const char *const *variants = ref_variants(kernels);
	if (variants && !make_restricted(bindir, variants, &tmp))
		e = rterror_set(reterr, RTERROR_IO, "cannot prepare a copy of the reference tool from %s", bindir);
	else if (variants)
		copy = g_build_filename(tmp, "llama-bench", NULL);
	if (!e)
		e = run_program(copy ? copy : abs_tool, tmp ? tmp : bindir, model_path, n_threads, n_prompt, n_gen,
		                reps, &r, reterr);
	if (!e)
		*ret = r;
	remove_restricted(tmp);
	g_free(copy);
	g_free(inner);
	g_free(bindir);
	g_free(dir);
	g_free(abs_tool);
	return e;
}
