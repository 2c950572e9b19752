/* test_model: the forward pass against the reference engine's outputs.
 *
 * For every ../shared/reference/<model>.json: feed the reference's own tokens
 * (the prompt as one batch, then each generated token alone) and compare the
 * logits at the stored positions and the greedy choice at every step, as
 * ../shared/README.md prescribes. F32 arithmetic is compared with the main
 * block for all-F32 files and with the dequantized_f32 block for the others.
 * A reference made with a LoRA adapter (its "adapter" key) is run with that
 * adapter at its scale. gemma2 and gemma3 get the README's wider tolerance
 * (the reference's F16 GELU table amplified by 26 layers) and have their
 * greedy choices compared by the top2_gap rule even for F32 arithmetic.
 * Also checks batching, prefix reuse, context limits and load errors.
 *
 * Arguments (none: everything) split the work so that the sanitizer build
 * runs the parts side by side: "-" runs the checks that are not references,
 * any other argument the references whose name starts with it. */
#include "runtime/model.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/gguf.h"
#include "tests/runtime/tap.h"

#define TOL_F32 1e-4
#define TOL_GELU_TABLE 2e-3 /* gemma: the README's tolerance for an engine emulating the table */
#define MAX_TOKENS 256

static const char *shared;

static char *read_text(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return NULL;
	fseek(fp, 0, SEEK_END);
	long n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	char *p = n > 0 ? malloc((size_t)n + 1) : NULL;
	if (p && fread(p, 1, (size_t)n, fp) != (size_t)n) {
		free(p);
		p = NULL;
	}
	fclose(fp);
	*len = (size_t)n;
	return p;
}

static int read_ids(const cJSON *arr, int32_t *out, int max)
{
	int n = 0;
	const cJSON *e;
	cJSON_ArrayForEach(e, arr)
	{
		if (n < max)
			out[n] = (int32_t)e->valuedouble;
		n++;
	}
	return n;
}

static int argmax(const float *v, int n)
{
	int best = 0;
	for (int i = 1; i < n; i++)
		if (v[i] > v[best])
			best = i;
	return best;
}

/* max |got - want| over the stored entries, relative to the largest |want|. */
static double logit_error(const cJSON *entry, const float *got, int n_vocab)
{
	const cJSON *full = cJSON_GetObjectItem(entry, "full");
	double maxdiff = 0, maxref = 0;
	if (full) {
		int i = 0;
		const cJSON *e;
		cJSON_ArrayForEach(e, full)
		{
			if (i >= n_vocab)
				return INFINITY;
			maxdiff = fmax(maxdiff, fabs(got[i] - e->valuedouble));
			maxref = fmax(maxref, fabs(e->valuedouble));
			i++;
		}
		if (i != n_vocab)
			return INFINITY;
	} else {
		const cJSON *pair;
		cJSON_ArrayForEach(pair, cJSON_GetObjectItem(entry, "top"))
		{
			int id = (int)cJSON_GetArrayItem(pair, 0)->valuedouble;
			double want = cJSON_GetArrayItem(pair, 1)->valuedouble;
			if (id < 0 || id >= n_vocab)
				return INFINITY;
			maxdiff = fmax(maxdiff, fabs(got[id] - want));
			maxref = fmax(maxref, fabs(want));
		}
	}
	return maxref > 0 ? maxdiff / maxref : INFINITY;
}

struct run_result {
	double max_err;
	int greedy_mismatch; /* first step whose argmax differs, or -1 */
	int n_compared;
};

/* Runs one prompt: batch, then generated tokens one at a time; compares with block. */
static bool run_prompt(const struct model *m, enum matmul_precision prec, const cJSON *prompt,
                       const cJSON *block, struct run_result *res, char **msg)
{
	int n_vocab = model_get_info(m)->n_vocab;
	int32_t toks[MAX_TOKENS], gen[MAX_TOKENS];
	int n_prompt = read_ids(cJSON_GetObjectItem(prompt, "tokens"), toks, MAX_TOKENS);
	int n_gen = read_ids(cJSON_GetObjectItem(cJSON_GetObjectItem(block, "generated"), "tokens"), gen,
	                     MAX_TOKENS);
	const cJSON *logits = cJSON_GetObjectItem(block, "logits");
	res->max_err = 0;
	res->greedy_mismatch = -1;
	res->n_compared = 0;
	if (n_prompt < 1 || n_prompt > MAX_TOKENS || n_gen < 1 || n_gen > MAX_TOKENS || !logits)
		return false;
	struct model_ctx *c = NULL;
	float *out = malloc((size_t)n_vocab * sizeof *out);
	bool ok = out && model_ctx_new(m, 512, 2, prec, &c, msg) == RTERROR_OK &&
	          model_eval(c, toks, n_prompt, out, false, msg) == RTERROR_OK;
	for (int step = 0; ok && step < n_gen; step++) {
		if (step > 0)
			ok = model_eval(c, &gen[step - 1], 1, out, false, msg) == RTERROR_OK;
		if (!ok)
			break;
		if (argmax(out, n_vocab) != gen[step] && res->greedy_mismatch < 0)
			res->greedy_mismatch = step;
		const cJSON *e;
		cJSON_ArrayForEach(e, logits)
		{
			if ((int)cJSON_GetNumberValue(cJSON_GetObjectItem(e, "step")) != step)
				continue;
			int input = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(e, "input_token"));
			int pos = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(e, "position"));
			int want_input = step == 0 ? toks[n_prompt - 1] : gen[step - 1];
			if (input != want_input || pos != model_ctx_pos(c) - 1)
				res->max_err = INFINITY;
			res->max_err = fmax(res->max_err, logit_error(e, out, n_vocab));
			if (getenv("QUIRE_DEBUG"))
				tap_diag("step %d err %.3g", step, logit_error(e, out, n_vocab));
			res->n_compared++;
		}
	}
	model_ctx_free(c);
	free(out);
	return ok;
}

/* The tolerance for F32 arithmetic against the reference's F32 block. */
static double f32_tolerance(const cJSON *ref)
{
	const char *arch = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(ref, "model"), "architecture"));
	return arch && strncmp(arch, "gemma", 5) == 0 ? TOL_GELU_TABLE : TOL_F32;
}

/* Whether a differing greedy choice is legitimate: only where the reference's
 * top two logits were within tol of the largest |logit| (README's top2_gap rule). */
static bool greedy_ok(const cJSON *block, const struct run_result *r, double tol, double *gap)
{
	const cJSON *gaps = cJSON_GetObjectItem(cJSON_GetObjectItem(block, "generated"), "top2_gap");
	const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItem(block, "logits"), 0);
	double scale = 0;
	const cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItem(first, "full"))
		scale = fmax(scale, fabs(e->valuedouble));
	cJSON_ArrayForEach(e, cJSON_GetObjectItem(first, "top"))
		scale = fmax(scale, fabs(cJSON_GetArrayItem(e, 1)->valuedouble));
	*gap = r->greedy_mismatch < 0 ? INFINITY : cJSON_GetNumberValue(cJSON_GetArrayItem(gaps, r->greedy_mismatch));
	return r->greedy_mismatch < 0 || *gap <= tol * scale;
}

/* The README's bound on how far the reference's own rounding moves the logits. */
static double rounding_bound(const cJSON *ref)
{
	const cJSON *counts = cJSON_GetObjectItem(cJSON_GetObjectItem(ref, "model"), "tensor_type_counts");
	double bound = f32_tolerance(ref);
	const char *arch = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(ref, "model"), "architecture"));
	bool gemma3 = arch && strcmp(arch, "gemma3") == 0;
	const char *atype =
		cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(ref, "adapter"), "tensor_type"));
	if (atype && strcmp(atype, "F16") == 0)
		bound = fmax(bound, 1.5e-3); /* the adapter's products round their inputs to F16 */
	const cJSON *e;
	cJSON_ArrayForEach(e, counts)
	{
		if (e->string[0] == 'Q')
			bound = fmax(bound, gemma3 ? 1.2e-1 : 7.5e-2); /* README: gemma3-Q8_0's main block is 1.2e-1 away */
		else if (strcmp(e->string, "BF16") == 0)
			bound = fmax(bound, 1.3e-2);
		else if (strcmp(e->string, "F16") == 0)
			bound = fmax(bound, 1.5e-3);
	}
	return bound;
}

/* Rounded activations against the main block: much closer than the bound, and the
 * same greedy choices wherever the reference's top-2 gap leaves no doubt
 * (README: compare while top2_gap exceeds the tolerance in logit units). */
static void test_rounded(const struct model *m, const cJSON *ref, const char *file)
{
	double bound = rounding_bound(ref);
	if (bound <= f32_tolerance(ref))
		return; /* all-F32 file: nothing is rounded */
	/* an engine that rounds as the reference does lands inside the reference's own
	 * distance from F32 arithmetic; one flipped rounding can move a logit by ~1e-2.
	 * (The reference's Q8_K activation blocks use the scale -127/max, Q8_0 ones
	 * 127/amax; a different scale lands near or past these bounds.) */
	double tol = bound, worst = 0;
	char name[512], *msg = NULL;
	int pi = 0;
	const cJSON *prompt;
	cJSON_ArrayForEach(prompt, cJSON_GetObjectItem(ref, "prompts"))
	{
		struct run_result r;
		bool ran = run_prompt(m, MATMUL_ROUNDED, prompt, prompt, &r, &msg);
		snprintf(name, sizeof name, "/model/reference/%s/rounded/prompt%d/logits", file, pi);
		tap_ok(ran && r.n_compared == 9 && r.max_err <= tol, name,
		       "max relative error %.3g (tolerance %.3g) %s", r.max_err, tol, msg ? msg : "");
		double gap;
		bool same = greedy_ok(prompt, &r, tol, &gap);
		snprintf(name, sizeof name, "/model/reference/%s/rounded/prompt%d/greedy", file, pi);
		tap_ok(ran && same, name, "step %d differs with top-2 gap %.3g", r.greedy_mismatch, gap);
		if (r.greedy_mismatch >= 0)
			tap_diag("%s prompt %d: rounded greedy parts at step %d (gap %.3g)", file, pi,
			         r.greedy_mismatch, gap);
		worst = fmax(worst, r.max_err);
		free(msg);
		msg = NULL;
		pi++;
	}
	tap_diag("%s: rounded max relative logit error %.3g against the main block (README bound %.3g)", file,
	         worst, bound);
}

/* The hyperparameters the reference engine read agree with ours. */
static void check_info(const struct model *m, const cJSON *ref, const char *file)
{
	const struct model_info *in = model_get_info(m);
	const cJSON *mod = cJSON_GetObjectItem(ref, "model");
	const cJSON *hp = cJSON_GetObjectItem(mod, "hyperparameters");
	const char *arch = cJSON_GetStringValue(cJSON_GetObjectItem(mod, "architecture"));
	double eps = cJSON_GetNumberValue(cJSON_GetObjectItem(hp, "attention.layer_norm_rms_epsilon"));
	const cJSON *jb = cJSON_GetObjectItem(hp, "rope.freq_base");
	double base = jb ? cJSON_GetNumberValue(jb) : 10000.0; /* the default when the file has none */
	bool ok = arch && strcmp(arch, in->arch_name) == 0 &&
	          in->n_ctx_train == (int)cJSON_GetNumberValue(cJSON_GetObjectItem(hp, "context_length")) &&
	          in->n_embd == (int)cJSON_GetNumberValue(cJSON_GetObjectItem(hp, "embedding_length")) &&
	          in->n_layer == (int)cJSON_GetNumberValue(cJSON_GetObjectItem(hp, "block_count")) &&
	          in->n_ff == (int)cJSON_GetNumberValue(cJSON_GetObjectItem(hp, "feed_forward_length")) &&
	          in->n_head == (int)cJSON_GetNumberValue(cJSON_GetObjectItem(hp, "attention.head_count")) &&
	          in->n_head_kv == (int)cJSON_GetNumberValue(cJSON_GetObjectItem(hp, "attention.head_count_kv")) &&
	          in->n_vocab == (int)cJSON_GetNumberValue(
	                                 cJSON_GetObjectItem(cJSON_GetObjectItem(ref, "vocab"), "n_tokens")) &&
	          fabs(in->rms_eps - eps) <= 1e-6 * eps && fabs(in->rope_base - base) <= 1e-6 * base &&
	          in->tied_output == cJSON_IsTrue(cJSON_GetObjectItem(mod, "tied_embeddings")) &&
	          in->weight_bytes > 0 && in->weight_bytes < (uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(ref, "model_bytes"));
	char name[512];
	snprintf(name, sizeof name, "/model/reference/%s/info", file);
	tap_ok(ok, name, "hyperparameters differ from the reference's");
}

/* Applies the adapter a reference was made with, if any. */
static bool load_adapter(struct model *m, const cJSON *ref, const char *label)
{
	const cJSON *ad = cJSON_GetObjectItem(ref, "adapter");
	if (!ad)
		return true;
	const char *file = cJSON_GetStringValue(cJSON_GetObjectItem(ad, "file"));
	double scale = cJSON_GetNumberValue(cJSON_GetObjectItem(ad, "scale"));
	char path[8192], name[512], *msg = NULL;
	snprintf(path, sizeof path, "%s/models/adapters/%s", shared, file ? file : "?");
	snprintf(name, sizeof name, "/model/reference/%s/adapter", label);
	bool ok = file && model_add_adapter(m, path, (float)scale, &msg) == RTERROR_OK;
	const struct model_adapter_info *ai = model_adapter(m, 0);
	ok = tap_ok(ok && model_n_adapters(m) == 1 && ai->rank == cJSON_GetNumberValue(cJSON_GetObjectItem(ad, "rank")) &&
	                ai->alpha == cJSON_GetNumberValue(cJSON_GetObjectItem(ad, "alpha")) &&
	                ai->n_weights == 3 * cJSON_GetArraySize(cJSON_GetObjectItem(ad, "targets")),
	            name, "%s", msg ? msg : "adapter description differs from the reference's");
	free(msg);
	return ok;
}

static void test_reference(const char *json_path, const char *label)
{
	size_t len;
	char *text = read_text(json_path, &len);
	cJSON *ref = text ? cJSON_ParseWithLength(text, len) : NULL;
	free(text);
	const char *file = cJSON_GetStringValue(cJSON_GetObjectItem(ref, "model_file"));
	char path[8192], name[512];
	snprintf(path, sizeof path, "%s/models/%s", shared, file ? file : "?");
	struct model *m = NULL;
	char *msg = NULL;
	snprintf(name, sizeof name, "/model/reference/%s/load", label);
	if (!tap_ok(ref && file && model_load(path, &m, &msg) == RTERROR_OK, name, "%s", msg ? msg : "bad json") ||
	    !load_adapter(m, ref, label)) {
		free(msg);
		model_free(m);
		cJSON_Delete(ref);
		return;
	}
	check_info(m, ref, label);
	double worst = 0, tol = f32_tolerance(ref);
	int pi = 0;
	const cJSON *prompt;
	cJSON_ArrayForEach(prompt, cJSON_GetObjectItem(ref, "prompts"))
	{
		const cJSON *block = cJSON_GetObjectItem(prompt, "dequantized_f32");
		if (!block)
			block = prompt; /* all-F32 file: the main block is F32 arithmetic */
		struct run_result r;
		bool ran = run_prompt(m, MATMUL_F32, prompt, block, &r, &msg);
		snprintf(name, sizeof name, "/model/reference/%s/f32/prompt%d/logits", label, pi);
		tap_ok(ran && r.n_compared == 9 && r.max_err <= tol, name,
		       "ran %d, %d positions compared, max relative error %.3g %s", ran, r.n_compared, r.max_err,
		       msg ? msg : "");
		/* exact tokens, except where the GELU table's tolerance allows the top-2 rule */
		double gap = INFINITY;
		bool same = tol > TOL_F32 ? greedy_ok(block, &r, tol, &gap) : r.greedy_mismatch < 0;
		snprintf(name, sizeof name, "/model/reference/%s/f32/prompt%d/greedy", label, pi);
		tap_ok(ran && same, name, "first differing step %d (top-2 gap %.3g)", r.greedy_mismatch, gap);
		worst = fmax(worst, r.max_err);
		free(msg);
		msg = NULL;
		pi++;
	}
	tap_diag("%s: F32 max relative logit error %.3g (tolerance %.3g)", label, worst, tol);
	test_rounded(m, ref, label);
	model_free(m);
	cJSON_Delete(ref);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool wanted(const char *name, int argc, char **argv)
{
	if (argc < 2)
		return true;
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "-") != 0 && strncmp(name, argv[i], strlen(argv[i])) == 0)
			return true;
	return false;
}

static void test_all_references(int argc, char **argv)
{
	char dir[4096];
	snprintf(dir, sizeof dir, "%s/reference", shared);
	DIR *d = opendir(dir);
	if (!tap_ok(d != NULL, "/model/reference/dir", "cannot open %s", dir))
		return;
	char *names[256];
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < 256) {
		size_t l = strlen(e->d_name);
		if (l > 5 && strcmp(e->d_name + l - 5, ".json") == 0)
			names[n++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, (size_t)n, sizeof *names, cmp_str);
	tap_ok(n >= 20, "/model/reference/count", "only %d reference files", n);
	for (int i = 0; i < n; i++) {
		char path[8192];
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		names[i][strlen(names[i]) - 5] = '\0'; /* the label: the name without .json */
		if (wanted(names[i], argc, argv))
			test_reference(path, names[i]);
		free(names[i]);
	}
}

static double max_rel_diff(const float *a, const float *b, int n)
{
	double md = 0, mr = 0;
	for (int i = 0; i < n; i++) {
		md = fmax(md, fabs((double)a[i] - b[i]));
		mr = fmax(mr, fabs((double)b[i]));
	}
	return mr > 0 ? md / mr : md;
}

/* A batch with all logits equals token-by-token evaluation; truncation reuses a prefix. */
static void test_batching(const char *file)
{
	char path[8192];
	snprintf(path, sizeof path, "%s/models/%s", shared, file);
	struct model *m = NULL;
	if (!tap_ok(model_load(path, &m, NULL) == RTERROR_OK, "/model/batch/load", NULL))
		return;
	int nv = model_get_info(m)->n_vocab;
	enum { N = 12 };
	int32_t toks[N] = {1, 403, 407, 261, 378, 5, 90, 311, 2, 77, 500, 13};
	float *all = malloc((size_t)N * nv * sizeof(float)), *one = malloc((size_t)nv * sizeof(float));
	struct model_ctx *c = NULL, *c2 = NULL;
	bool ok = model_ctx_new(m, 16, 2, MATMUL_F32, &c, NULL) == RTERROR_OK &&
	          model_ctx_new(m, 16, 1, MATMUL_F32, &c2, NULL) == RTERROR_OK &&
	          model_eval(c, toks, N, all, true, NULL) == RTERROR_OK && model_ctx_pos(c) == N;
	double worst = 0;
	for (int t = 0; ok && t < N; t++) {
		ok = model_eval(c2, &toks[t], 1, one, false, NULL) == RTERROR_OK;
		worst = fmax(worst, max_rel_diff(all + (size_t)t * nv, one, nv));
	}
	tap_ok(ok && worst < 1e-5, "/model/batch/all-logits-match-sequential", "worst %.3g", worst);
	/* forget the last 5 positions and evaluate them again as one batch */
	model_ctx_truncate(c, N - 5);
	ok = model_ctx_pos(c) == N - 5 && model_eval(c, toks + N - 5, 5, one, false, NULL) == RTERROR_OK;
	tap_ok(ok && max_rel_diff(one, all + (size_t)(N - 1) * nv, nv) < 1e-5, "/model/ctx/truncate-reuse",
	       NULL);
	/* 16 positions: 12 used, 5 more do not fit and change nothing */
	char *msg = NULL;
	enum rterror err = model_eval(c, toks, 5, one, false, &msg);
	tap_ok(err == RTERROR_LIMIT && msg && model_ctx_pos(c) == N, "/model/ctx/limit", "%s", msg ? msg : "");
	free(msg);
	msg = NULL;
	int32_t bad = nv;
	err = model_eval(c, &bad, 1, one, false, &msg);
	tap_ok(err == RTERROR_INVALID && model_ctx_pos(c) == N, "/model/ctx/bad-token", "%s", msg ? msg : "");
	free(msg);
	model_ctx_free(c);
	model_ctx_free(c2);
	free(all);
	free(one);
	model_free(m);
}

static void test_load_errors(void)
{
	char path[8192];
	struct model *m = NULL;
	char *msg = NULL;
	snprintf(path, sizeof path, "%s/models/vocab/ggml-vocab-llama-spm.gguf", shared);
	enum rterror err = model_load(path, &m, &msg);
	tap_ok(err == RTERROR_FORMAT && msg && strstr(msg, "missing"), "/model/load/vocab-only", "%s",
	       msg ? msg : "");
	free(msg);
	msg = NULL;
	snprintf(path, sizeof path, "%s/models/vocab/ggml-vocab-gpt-2.gguf", shared);
	err = model_load(path, &m, &msg);
	tap_ok(err == RTERROR_UNSUPPORTED && msg && strstr(msg, "gpt2"), "/model/load/unknown-arch", "%s",
	       msg ? msg : "");
	free(msg);
	msg = NULL;
	err = model_load("/nonexistent/model.gguf", &m, &msg);
	tap_ok(err == RTERROR_IO && msg, "/model/load/missing-file", NULL);
	free(msg);
}

/* The small hand-made files of the GGUF corpus: two that load, and load errors. */
static void test_corpus(void)
{
	const char *src = getenv("QUIRE_SOURCE_DIR");
	static const struct {
		const char *file;
		enum rterror err;
		const char *needle;
	} cases[] = {
		{"llama-f32.gguf", RTERROR_OK, NULL},
		{"qwen2-q8_0.gguf", RTERROR_OK, NULL},
		{"llama-rope-dims.gguf", RTERROR_OK, NULL},
		{"llama-bad-shape.gguf", RTERROR_FORMAT, "tensor 'blk.0.attn_q.weight' has shape [32, 64"},
		{"qwen2-missing-bias.gguf", RTERROR_FORMAT, "tensor 'blk.0.attn_v.bias' is missing"},
		{"llama-odd-rope.gguf", RTERROR_FORMAT, "rope.dimension_count 7 is odd"},
		{"unknown-arch.gguf", RTERROR_UNSUPPORTED, "architecture 'mamba'"},
		{"truncated-data.gguf", RTERROR_FORMAT, "extends past end of file"},
	};
	for (size_t i = 0; src && i < sizeof cases / sizeof cases[0]; i++) {
		char path[8192], name[256];
		snprintf(path, sizeof path, "%s/tests/runtime/corpus/gguf/%s", src, cases[i].file);
		snprintf(name, sizeof name, "/model/corpus/%s", cases[i].file);
		struct model *m = NULL;
		char *msg = NULL;
		enum rterror err = model_load(path, &m, &msg);
		bool ok = err == cases[i].err && (!cases[i].needle || (msg && strstr(msg, cases[i].needle)));
		if (ok && m) {
			/* a loaded model evaluates a few tokens to finite logits */
			struct model_ctx *c = NULL;
			int32_t toks[3] = {1, 3, 4};
			float logits[8];
			ok = model_get_info(m)->n_vocab == 8 &&
			     model_ctx_new(m, 0, 1, MATMUL_F32, &c, NULL) == RTERROR_OK && model_ctx_size(c) == 64 &&
			     model_eval(c, toks, 3, logits, false, NULL) == RTERROR_OK;
			for (int j = 0; ok && j < 8; j++)
				ok = isfinite(logits[j]);
			model_ctx_free(c);
		}
		tap_ok(ok, name, "got %s: %s", rterror_str(err), msg ? msg : "(no message)");
		model_free(m);
		free(msg);
	}
}

int main(int argc, char **argv)
{
	bool others = argc < 2;
	for (int i = 1; i < argc; i++)
		others = others || strcmp(argv[i], "-") == 0;
	if (others)
		test_corpus();
	shared = getenv("QUIRE_SHARED_DIR");
	char probe[4096];
	snprintf(probe, sizeof probe, "%s/reference", shared ? shared : "/nonexistent");
	DIR *d = opendir(probe);
	if (!d) {
		tap_diag("../shared not present: reference checks skipped");
		return tap_done();
	}
	closedir(d);
	if (others) {
		test_load_errors();
		test_batching("synth-qwen2-F32.gguf");
		test_batching("synth-llama-Q4_K_M.gguf");
		test_batching("synth-gemma3-F32.gguf");
		test_batching("synth-phi3-Q4_K_M.gguf");
	}
	test_all_references(argc, argv);
	return tap_done();
}
