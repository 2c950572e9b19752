/* test_gen_gguf: the random-weight model generator writes files that load as
 * whole models (weights, hyperparameters, tokenizer) with the tensor types
 * its file type promises, and that evaluate to finite logits which agree
 * between F32 arithmetic and rounded activations.
 *
 * Runs the gen-gguf program of the build tree (QUIRE_BUILD_DIR) into a
 * temporary directory. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/gguf.h"
#include "runtime/model.h"
#include "runtime/tokenizer.h"
#include "tests/runtime/tap.h"

static char dir[] = "/tmp/quire-gen-XXXXXX";

static bool gen(const char *args, const char *out)
{
	char cmd[1024];
	const char *build = getenv("QUIRE_BUILD_DIR");
	snprintf(cmd, sizeof cmd, "'%s/tests/runtime/gen-gguf' --out '%s' %s >/dev/null", build, out, args);
	return system(cmd) == 0;
}

/* Counts 2-D tensors of type t. */
static int count_type(const struct gguf_file *f, enum quant_type t)
{
	int n = 0;
	for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
		const struct gguf_tensor *te = gguf_tensor_at(f, i);
		n += te->n_dims == 2 && te->type == t;
	}
	return n;
}

/* Largest |a - b| relative to the largest |b| over n logits; infinite if any is not finite. */
static double logit_diff(const float *a, const float *b, int n)
{
	double d = 0, m = 0;
	for (int i = 0; i < n; i++) {
		if (!isfinite(a[i]) || !isfinite(b[i]))
			return INFINITY;
		d = fmax(d, fabs((double)a[i] - b[i]));
		m = fmax(m, fabs((double)b[i]));
	}
	return m > 0 ? d / m : INFINITY;
}

static void check_model(const char *type, const char *args, double tol)
{
	char path[256], name[128], args2[512];
	snprintf(path, sizeof path, "%s/%s.gguf", dir, type);
	snprintf(args2, sizeof args2, "--type %s %s", type, args);
	snprintf(name, sizeof name, "/gen-gguf/%s/writes", type);
	if (!tap_ok(gen(args2, path), name, "gen-gguf %s failed", args2))
		return;

	struct model *m = NULL;
	struct model_ctx *c32 = NULL, *cr = NULL;
	struct tokenizer *tok = NULL;
	char *err = NULL;
	float *l32 = NULL, *lr = NULL;
	snprintf(name, sizeof name, "/gen-gguf/%s/loads", type);
	if (!tap_ok(model_load(path, &m, &err) == RTERROR_OK, name, "%s", err ? err : "?"))
		goto out;
	snprintf(name, sizeof name, "/gen-gguf/%s/tokenizer", type);
	tap_ok(tokenizer_load(model_gguf(m), &tok, &err) == RTERROR_OK && tokenizer_n_vocab(tok) == 512 &&
	               tokenizer_bos(tok) == 1 && tokenizer_is_eog(tok, 4),
	       name, "%s", err ? err : "unexpected vocabulary");

	const struct model_info *in = model_get_info(m);
	int32_t toks[6] = {1, 300, 301, 302, 400, 511};
	l32 = malloc(sizeof(float) * (size_t)in->n_vocab);
	lr = malloc(sizeof(float) * (size_t)in->n_vocab);
	bool ok = model_ctx_new(m, 64, 2, MATMUL_F32, &c32, &err) == RTERROR_OK &&
	          model_ctx_new(m, 64, 2, MATMUL_ROUNDED, &cr, &err) == RTERROR_OK &&
	          model_eval(c32, toks, 6, l32, false, &err) == RTERROR_OK &&
	          model_eval(cr, toks, 6, lr, false, &err) == RTERROR_OK;
	double d = ok ? logit_diff(lr, l32, in->n_vocab) : INFINITY;
	snprintf(name, sizeof name, "/gen-gguf/%s/evaluates", type);
	tap_ok(ok && d <= tol, name, "%s; rounded vs F32 logits differ by %.4f (limit %.4f)", err ? err : "", d, tol);
out:
	free(err);
	free(l32);
	free(lr);
	tokenizer_free(tok);
	model_ctx_free(c32);
	model_ctx_free(cr);
	model_free(m);
	unlink(path);
}

static void check_mix(const char *shape_args, int want_q4k, int want_q6k, int want_q5_0, int want_q8_0)
{
	char path[256];
	snprintf(path, sizeof path, "%s/mix.gguf", dir);
	struct gguf_file *f = NULL;
	char *err = NULL;
	char args[512];
	snprintf(args, sizeof args, "--type Q4_K_M --fast %s", shape_args);
	bool ok = gen(args, path) && gguf_open(path, &f, &err) == RTERROR_OK;
	int q4 = ok ? count_type(f, QUANT_Q4_K) : -1, q6 = ok ? count_type(f, QUANT_Q6_K) : -1;
	int q50 = ok ? count_type(f, QUANT_Q5_0) : -1, q80 = ok ? count_type(f, QUANT_Q8_0) : -1;
	char name[160];
	snprintf(name, sizeof name, "/gen-gguf/mix/Q4_K_M/%s", shape_args);
	tap_ok(q4 == want_q4k && q6 == want_q6k && q50 == want_q5_0 && q80 == want_q8_0, name,
	       "Q4_K %d Q6_K %d Q5_0 %d Q8_0 %d, want %d %d %d %d", q4, q6, q50, q80, want_q4k, want_q6k, want_q5_0,
	       want_q8_0);
	free(err);
	gguf_close(f);
	unlink(path);
}

int main(void)
{
	if (!getenv("QUIRE_BUILD_DIR"))
		return tap_skip_all("QUIRE_BUILD_DIR not set");
	if (!mkdtemp(dir))
		return tap_skip_all("no temporary directory");
	/* the shared synthetic models' shape; the tolerances are the reference's
	 * differences between its rounded and F32 arithmetic, with room */
	static const struct {
		const char *type;
		double tol;
	} types[] = {{"F32", 1e-6}, {"F16", 5e-3}, {"BF16", 3e-2}, {"Q8_0", 0.1}, {"Q4_0", 0.1},
	             {"Q5_0", 0.1}, {"Q6_K", 0.1}, {"Q4_K_M", 0.1}, {"Q5_K_M", 0.1}};
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		check_model(types[i].type, "--shape synth", types[i].tol);
	check_model("Q4_K_M", "--arch qwen2 --n-embd 128 --n-layer 2 --n-head 4 --n-head-kv 2 --n-ff 320 --n-vocab 512 "
	                      "--tied --rope-base 1000000",
	            0.1);
	/* 8 layers, all rows multiples of 256: Q6_K on output.weight and on attn_v and
	 * ffn_down of layers 0 (first eighth), 7 (last eighth), 3 and 6 (every third) */
	check_mix("--n-embd 256 --n-layer 8 --n-ff 512 --n-vocab 512 --untied", 8 * 7 + 2 - 9, 9, 0, 0);
	/* rows of 96: Q4_K falls back to Q5_0 and Q6_K to Q8_0, except ffn_down (rows of
	 * 512); layer 1 of 2 gets more bits, the tied embedding is the output (Q6_K) */
	check_mix("--n-embd 96 --n-head 3 --n-head-kv 1 --n-layer 2 --n-ff 512 --n-vocab 512 --tied", 1, 1, 11, 2);
	rmdir(dir);
	return tap_done();
}
