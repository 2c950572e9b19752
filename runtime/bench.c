/* bench: speed of a GGUF model on this machine (see bench.h).
 *
 * The reference figures below are those of ../shared/reference/speed.md:
 * the reference engine (llama.cpp b4748, llama-bench -t 2 -p 512 -n 128) on a
 * 2-core machine of the kind Quire's benchmarks run on, for random-weight
 * files of real model shapes. A ratio compares only like with like: the same
 * shape (architecture, width, depth, vocabulary) and file type. Weights are
 * memory-mapped, so resident memory counts them once they are touched; the
 * warm-up pass touches all of them before anything is measured. */
#include "runtime/bench.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "runtime/gguf.h"
#include "runtime/kernels.h"
#include "runtime/model.h"
#include "runtime/threadpool.h"

static const struct bench_ref {
	const char *shape, *arch, *file_type;
	int32_t n_embd, n_layer, n_vocab;
	double pp, tg;
} bench_refs[] = {
	{"Qwen2.5-7B", "qwen2", "Q4_K_M", 3584, 28, 152064, 6.96, 2.85},
	{"Mistral-7B", "llama", "Q4_K_M", 4096, 32, 32768, 6.66, 2.67},
	{"Qwen2.5-1.5B", "qwen2", "Q8_0", 1536, 28, 151936, 47.5, 8.5},
	{"Qwen2.5-1.5B", "qwen2", "Q4_K_M", 1536, 28, 151936, 33.4, 11.8},
	{"Qwen2.5-0.5B", "qwen2", "Q8_0", 896, 24, 151936, 163, 25.0},
	{"Qwen2.5-0.5B", "qwen2", "Q4_K_M", 896, 24, 151936, 128, 29.9},
	{"SmolLM2-360M", "llama", "Q8_0", 960, 32, 49152, 151, 32.3},
	{"SmolLM2-360M", "llama", "Q4_K_M", 960, 32, 49152, 106, 38.4},
};

/* Memory read bandwidth of the machine the reference figures were taken on (GB/s). */
#define BENCH_REF_BANDWIDTH 25.8
#define BENCH_MAX_TOKENS 65536

void bench_opts_default(struct bench_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->n_prompt = 512;
	o->n_gen = 128;
	o->reps = 1;
	o->bandwidth = true;
	o->prec = MATMUL_ROUNDED;
}

static double bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const char *bench_ftype_name(uint32_t id)
{
	switch (id) {
	case 0: return "F32";
	case 1: return "F16";
	case 2: return "Q4_0";
	case 7: return "Q8_0";
	case 8: return "Q5_0";
	case 14: return "Q4_K_S";
	case 15: return "Q4_K_M";
	case 16: return "Q5_K_S";
	case 17: return "Q5_K_M";
	case 18: return "Q6_K";
	case 32: return "BF16";
	default: return "?";
	}
}

/* ---- memory bandwidth ---- */

struct bench_sweep {
	const uint64_t *buf;
	size_t n; /* 64-bit words */
	uint64_t sink[64];
};

typedef uint64_t bench_v4 __attribute__((vector_size(32)));

__attribute__((target("avx2"))) static uint64_t bench_sum_avx2(const uint64_t *p, size_t n)
{
	bench_v4 a = {0}, b = {0}, c = {0}, d = {0};
	for (size_t i = 0; i + 16 <= n; i += 16) {
		bench_v4 x, y, z, w;
		memcpy(&x, p + i, 32);
		memcpy(&y, p + i + 4, 32);
		memcpy(&z, p + i + 8, 32);
		memcpy(&w, p + i + 12, 32);
		a += x;
		b += y;
		c += z;
		d += w;
	}
	a += b + c + d;
	return a[0] + a[1] + a[2] + a[3];
}

static void bench_sweep_part(void *p, int ith, int nth)
{
	struct bench_sweep *s = p;
	size_t i0 = s->n * (size_t)ith / (size_t)nth, i1 = s->n * (size_t)(ith + 1) / (size_t)nth;
	i0 &= ~(size_t)15;
	i1 &= ~(size_t)15;
	if (__builtin_cpu_supports("avx2")) {
		s->sink[ith % 64] += bench_sum_avx2(s->buf + i0, i1 - i0);
		return;
	}
	uint64_t a = 0, b = 0;
	for (size_t i = i0; i + 2 <= i1; i += 2) {
		a += s->buf[i];
		b += s->buf[i + 1];
	}
	s->sink[ith % 64] += a + b;
}

double bench_bandwidth(int n_threads, int mib)
{
	struct threadpool *tp = threadpool_new(n_threads);
	size_t bytes = (size_t)mib << 20;
	uint64_t *buf = NULL;
	double best = 0;
	if (!tp || posix_memalign((void **)&buf, 64, bytes) != 0)
		goto out;
	memset(buf, 1, bytes);
	struct bench_sweep s = {.buf = buf, .n = bytes / 8};
	for (int rep = 0; rep < 5; rep++) {
		double t0 = bench_now();
		threadpool_run(tp, bench_sweep_part, &s);
		double dt = bench_now() - t0;
		if (dt > 0 && (double)bytes / dt * 1e-9 > best)
			best = (double)bytes / dt * 1e-9;
	}
out:
	free(buf);
	threadpool_free(tp);
	return best;
}

/* ---- model speed ---- */

static void bench_memory(struct bench_result *r)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		r->peak_rss_bytes = (uint64_t)ru.ru_maxrss * 1024;
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	while (f && fgets(line, sizeof line, f)) {
		unsigned long long kb;
		if (sscanf(line, "VmHWM: %llu kB", &kb) == 1)
			r->vm_hwm_bytes = (uint64_t)kb * 1024;
		if (sscanf(line, "VmPeak: %llu kB", &kb) == 1)
			r->vm_peak_bytes = (uint64_t)kb * 1024;
	}
	if (f)
		fclose(f);
}

static void bench_describe(const struct model *m, struct bench_result *r)
{
	const struct model_info *in = model_get_info(m);
	const struct gguf_file *g = model_gguf(m);
	uint32_t ft;
	snprintf(r->arch, sizeof r->arch, "%s", in->arch_name);
	snprintf(r->file_type, sizeof r->file_type, "%s",
	         gguf_get_u32(g, "general.file_type", &ft) ? bench_ftype_name(ft) : "?");
	r->n_embd = in->n_embd;
	r->n_layer = in->n_layer;
	r->n_vocab = in->n_vocab;
	r->file_bytes = gguf_file_size(g);
	r->bytes_per_token = in->weight_bytes;
	const struct gguf_tensor *te = gguf_find_tensor(g, "token_embd.weight");
	if (te && !in->tied_output)
		r->bytes_per_token -= te->nbytes; /* only one row of it is read per token */
	for (size_t i = 0; i < sizeof(bench_refs) / sizeof(bench_refs[0]); i++) {
		const struct bench_ref *b = &bench_refs[i];
		if (strcmp(b->arch, r->arch) == 0 && strcmp(b->file_type, r->file_type) == 0 &&
		    b->n_embd == r->n_embd && b->n_layer == r->n_layer && b->n_vocab == r->n_vocab) {
			snprintf(r->shape, sizeof r->shape, "%s", b->shape);
			r->ref_pp_tps = b->pp;
			r->ref_tg_tps = b->tg;
		}
	}
}

static int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Times n_prompt tokens as one batch and n_gen tokens one at a time, each from an empty context. */
static enum rterror bench_measure(struct model_ctx *c, const int32_t *toks, const struct bench_opts *o,
                                  float *logits, struct bench_result *r, char **reterr)
{
	enum rterror err = RTERROR_OK;
	double pp_time = 0, tg_time = 0, pp_best = 0;
	size_t n_times = (size_t)o->n_gen * (size_t)o->reps;
	double *times = malloc(sizeof(*times) * n_times);
	if (!times)
		return rterror_set(reterr, RTERROR_NOMEM, "bench: out of memory");
	for (int rep = 0; rep < o->reps && !err; rep++) {
		model_ctx_truncate(c, 0);
		double t0 = bench_now();
		err = model_eval(c, toks, o->n_prompt, logits, false, reterr);
		double dt = bench_now() - t0;
		pp_time += dt;
		if (dt > 0 && (double)o->n_prompt / dt > pp_best)
			pp_best = (double)o->n_prompt / dt;
		if (err)
			break;
		model_ctx_truncate(c, 0);
		for (int i = 0; i < o->n_gen && !err; i++) {
			t0 = bench_now();
			err = model_eval(c, &toks[i], 1, logits, false, reterr);
			dt = bench_now() - t0;
			tg_time += dt;
			times[(size_t)rep * (size_t)o->n_gen + (size_t)i] = dt;
		}
	}
	if (!err) {
		r->pp_tps = pp_time > 0 ? (double)o->n_prompt * o->reps / pp_time : 0;
		r->tg_tps = tg_time > 0 ? (double)o->n_gen * o->reps / tg_time : 0;
		r->pp_best_tps = pp_best;
		qsort(times, n_times, sizeof(*times), bench_cmp_double);
		r->tg_median_tps = times[n_times / 2] > 0 ? 1.0 / times[n_times / 2] : 0;
	}
	free(times);
	return err;
}

enum rterror bench_run(const char *path, const struct bench_opts *opts, struct bench_result *ret,
                       char **reterr)
{
	struct bench_opts o = *opts;
	struct bench_result r;
	struct model *m = NULL;
	struct model_ctx *c = NULL;
	int32_t *toks = NULL;
	float *logits = NULL;
	enum rterror err;

	memset(&r, 0, sizeof(r));
	o.reps = o.reps <= 0 ? 1 : o.reps;
	if (o.n_prompt <= 0 || o.n_gen <= 0 || o.n_prompt > BENCH_MAX_TOKENS || o.n_gen > BENCH_MAX_TOKENS)
		return rterror_set(reterr, RTERROR_INVALID, "bench: prompt and generation lengths must be 1..%d",
		                   BENCH_MAX_TOKENS);
	if ((err = model_load(path, &m, reterr)))
		goto out;
	bench_describe(m, &r);
	const struct model_info *in = model_get_info(m);
	int need = o.n_prompt > o.n_gen ? o.n_prompt : o.n_gen;
	int n_ctx = o.n_ctx > 0 ? o.n_ctx : (in->n_ctx_train < 4096 ? in->n_ctx_train : 4096);
	if (n_ctx < need)
		n_ctx = need;
	if ((err = model_ctx_new(m, n_ctx, o.n_threads, o.prec, &c, reterr)))
		goto out;
	r.n_ctx = model_ctx_size(c);
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	r.n_threads = o.n_threads > 0 ? o.n_threads : (cores > 0 ? (int)cores : 1);
	toks = malloc(sizeof(*toks) * (size_t)need);
	logits = malloc(sizeof(*logits) * (size_t)in->n_vocab);
	if (!toks || !logits) {
		err = rterror_set(reterr, RTERROR_NOMEM, "bench: out of memory");
		goto out;
	}
	uint32_t s = 12345;
	for (int i = 0; i < need; i++) {
		s = s * 1664525u + 1013904223u;
		toks[i] = (int32_t)((s >> 8) % (uint32_t)in->n_vocab);
	}
	/* warm-up: one token reads every weight once, faulting the mapping in */
	if ((err = model_eval(c, toks, 1, logits, false, reterr)))
		goto out;
	if ((err = bench_measure(c, toks, &o, logits, &r, reterr)))
		goto out;
	bench_memory(&r);
	r.kernels = kernels_get()->name;
	r.n_prompt = o.n_prompt;
	r.n_gen = o.n_gen;
	if (o.bandwidth)
		r.bandwidth_gbs = bench_bandwidth(r.n_threads, 512);
	*ret = r;
out:
	free(toks);
	free(logits);
	model_ctx_free(c);
	model_free(m);
	return err;
}

void bench_print(FILE *out, const struct bench_result *r)
{
	const double gib = 1024.0 * 1024.0 * 1024.0;
	fprintf(out, "model: %s, n_embd %d, %d layers, vocab %d, %s, %.2f GB; shape %s\n", r->arch, r->n_embd,
	        r->n_layer, r->n_vocab, r->file_type, (double)r->file_bytes * 1e-9,
	        r->shape[0] ? r->shape : "(not in the reference table)");
	fprintf(out, "threads %d, kernels %s, context %d\n", r->n_threads, r->kernels, r->n_ctx);
	fprintf(out, "pp%d: %8.2f tok/s", r->n_prompt, r->pp_tps);
	if (r->ref_pp_tps > 0)
		fprintf(out, "   reference %.2f, ratio %.2f", r->ref_pp_tps, r->pp_tps / r->ref_pp_tps);
	fprintf(out, "\ntg%d: %8.2f tok/s", r->n_gen, r->tg_tps);
	if (r->ref_tg_tps > 0)
		fprintf(out, "   reference %.2f, ratio %.2f", r->ref_tg_tps, r->tg_tps / r->ref_tg_tps);
	fprintf(out, "\n");
	fprintf(out, "pp best of %s: %.2f tok/s", "the repetitions", r->pp_best_tps);
	if (r->ref_pp_tps > 0)
		fprintf(out, " (ratio %.2f)", r->pp_best_tps / r->ref_pp_tps);
	fprintf(out, "; tg from the median token time: %.2f tok/s", r->tg_median_tps);
	if (r->ref_tg_tps > 0)
		fprintf(out, " (ratio %.2f)", r->tg_median_tps / r->ref_tg_tps);
	fprintf(out, "\n");
	double rate = r->tg_tps * (double)r->bytes_per_token * 1e-9;
	if (r->bandwidth_gbs > 0)
		fprintf(out, "generation reads %.1f GB/s of weights; measured bandwidth %.1f GB/s; %.0f%% of the bound "
		             "(%.1f tok/s)\n",
		        rate, r->bandwidth_gbs, 100.0 * rate / r->bandwidth_gbs,
		        r->bandwidth_gbs * 1e9 / (double)r->bytes_per_token);
	if (r->bandwidth_gbs > 0 && r->ref_tg_tps > 0)
		fprintf(out, "tg ratio at equal bandwidth (this run %.1f GB/s, reference machine %.1f GB/s): %.2f\n",
		        r->bandwidth_gbs, BENCH_REF_BANDWIDTH,
		        r->tg_tps / r->ref_tg_tps * BENCH_REF_BANDWIDTH / r->bandwidth_gbs);
	fprintf(out, "peak memory: %.2f GiB (maxrss), VmHWM %.2f GiB; address space VmPeak %.2f GiB "
	             "(an upper bound with the whole %d-token context in use)\n",
	        (double)r->peak_rss_bytes / gib, (double)r->vm_hwm_bytes / gib, (double)r->vm_peak_bytes / gib, r->n_ctx);
}
