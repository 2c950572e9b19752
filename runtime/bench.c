/* bench: speed of a GGUF model on this machine (see bench.h).
 *
 * Quire's figures are measured first, then the reference tool's (when there is
 * one) on the same file, so both see the machine in the same state as far as
 * that can be had; on a shared machine, compare ratios from one run rather
 * than figures from different runs. Weights are memory-mapped, so resident
 * memory counts them once they are touched; the warm-up pass touches all of
 * them before anything is measured. */
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
	case 0:
		return "F32";
	case 1:
		return "F16";
	case 2:
		return "Q4_0";
	case 7:
		return "Q8_0";
	case 8:
		return "Q5_0";
	case 14:
		return "Q4_K_S";
	case 15:
		return "Q4_K_M";
	case 16:
		return "Q5_K_S";
	case 17:
		return "Q5_K_M";
	case 18:
		return "Q6_K";
	case 32:
		return "BF16";
	default:
		return "?";
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
}

static int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Times n_prompt tokens as one batch and n_gen tokens one at a time, each from an empty context. */
static enum rterror bench_measure(struct model_ctx *c, const int32_t *toks, const struct bench_opts *o, float *logits,
                                  struct bench_result *r, char **reterr)
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

/* Runs the reference tool on the same file with the same settings, when there is one. */
static void bench_reference(const char *path, const struct bench_opts *o, struct bench_result *r)
{
	r->ref_asked = !o->no_reference;
	char *tool = o->no_reference ? NULL : bench_ref_find(o->reference, path);
	if (!tool) {
		if (o->reference && !o->no_reference)
			snprintf(r->ref_error, sizeof r->ref_error, "%s is not an executable file", o->reference);
		return;
	}
	snprintf(r->ref_tool, sizeof r->ref_tool, "%s", tool);
	char *err = NULL;
	/* a kernel set forced on Quire is forced on the reference too */
	const char *forced = getenv("QUIRE_KERNELS");
	const char *kernels = forced && forced[0] ? r->kernels : NULL;
	if (bench_ref_run(tool, path, r->n_threads, r->n_prompt, r->n_gen, o->reps, kernels, &r->ref, &err) ==
	    RTERROR_OK)
		r->ref_ran = true;
	else
		snprintf(r->ref_error, sizeof r->ref_error, "%s", err ? err : "failed");
	free(err);
	free(tool);
}

enum rterror bench_run(const char *path, const struct bench_opts *opts, struct bench_result *ret, char **reterr)
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
	bench_cpu_name(r.cpu, sizeof r.cpu);
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
out:
	free(toks);
	free(logits);
	model_ctx_free(c);
	model_free(m);
	if (!err) {
		bench_reference(path, &o, &r); /* with Quire's memory given back */
		*ret = r;
	}
	return err;
}

static void bench_print_pair(FILE *out, const char *what, double quire, bool ref_ran, double ref)
{
	fprintf(out, "%-22s %10.2f", what, quire);
	if (ref_ran && ref > 0)
		fprintf(out, " %12.2f %8.2fx", ref, quire / ref);
	fprintf(out, "\n");
}

void bench_print(FILE *out, const struct bench_result *r)
{
	const double gib = 1024.0 * 1024.0 * 1024.0;
	fprintf(out, "model: %s, n_embd %d, %d layers, vocab %d, %s, %.2f GB\n", r->arch, r->n_embd, r->n_layer,
	        r->n_vocab, r->file_type, (double)r->file_bytes * 1e-9);
	fprintf(out, "processor: %s; threads %d; Quire kernels %s; context %d\n", r->cpu, r->n_threads, r->kernels,
	        r->n_ctx);
	if (r->ref_ran)
		fprintf(out,
		        "reference: %s (llama.cpp), CPU variant %s, same file, threads and lengths, run just after\n",
		        r->ref_tool, r->ref.variant[0] ? r->ref.variant : "not said");
	else if (r->ref_error[0])
		fprintf(out, "reference: none (%s)\n", r->ref_error);
	else
		fprintf(out,
		        "reference: none (no llama-bench found; give one with --reference): Quire's figures only\n");
	fprintf(out, "%-22s %10s", "tokens/s", "Quire");
	if (r->ref_ran)
		fprintf(out, " %12s %9s", "llama.cpp", "ratio");
	fprintf(out, "\n");
	char what[48];
	snprintf(what, sizeof what, "prompt (pp%d)", r->n_prompt);
	bench_print_pair(out, what, r->pp_tps, r->ref_ran, r->ref.pp_tps);
	snprintf(what, sizeof what, "generation (tg%d)", r->n_gen);
	bench_print_pair(out, what, r->tg_tps, r->ref_ran, r->ref.tg_tps);
	fprintf(out, "Quire alone: pp best repetition %.2f tok/s; tg from the median token time %.2f tok/s\n",
	        r->pp_best_tps, r->tg_median_tps);
	double rate = r->tg_tps * (double)r->bytes_per_token * 1e-9;
	if (r->bandwidth_gbs > 0)
		fprintf(out,
		        "generation reads %.1f GB/s of weights; measured bandwidth %.1f GB/s; %.0f%% of the bound "
		        "(%.1f tok/s)\n",
		        rate, r->bandwidth_gbs, 100.0 * rate / r->bandwidth_gbs,
		        r->bandwidth_gbs * 1e9 / (double)r->bytes_per_token);
	fprintf(out,
	        "peak memory: %.2f GiB (maxrss), VmHWM %.2f GiB; address space VmPeak %.2f GiB "
	        "(an upper bound with the whole %d-token context in use)\n",
	        (double)r->peak_rss_bytes / gib, (double)r->vm_hwm_bytes / gib, (double)r->vm_peak_bytes / gib,
	        r->n_ctx);
}
