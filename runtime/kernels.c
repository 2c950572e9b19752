/* kernels: choosing the kernel version at run time.
 *
 * The tables are built once (pthread_once) and never change afterwards;
 * kernels_force() only swaps which table kernels_get() returns, atomically,
 * so a concurrent matmul sees either table whole. */
#include "runtime/kernels.h"

#include <pthread.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

enum { KERNELS_SCALAR, KERNELS_AVX2, KERNELS_AVX512, KERNELS_AMX, KERNELS_COUNT };

static const char *const kernels_names[KERNELS_COUNT] = {"scalar", "avx2", "avx512", "amx"};
static struct kernels kernels_tables[KERNELS_COUNT];
static bool kernels_have[KERNELS_COUNT];
static _Atomic(const struct kernels *) kernels_current;
static pthread_once_t kernels_once = PTHREAD_ONCE_INIT;

static bool kernels_cpu_has(int v)
{
#if defined(__x86_64__)
	__builtin_cpu_init();
	if (v == KERNELS_AVX2)
		return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
		       __builtin_cpu_supports("f16c");
	if (v == KERNELS_AVX512)
		return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
		       __builtin_cpu_supports("avx512dq") &&
		       __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
		       __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("f16c") &&
		       __builtin_cpu_supports("fma");
	if (v == KERNELS_AMX) {
		unsigned a, b, c, d;
		/* CPUID leaf 7: EDX bit 24 AMX-TILE, bit 25 AMX-INT8 */
		if (!kernels_cpu_has(KERNELS_AVX512) || !__get_cpuid_count(7, 0, &a, &b, &c, &d))
			return false;
		return (d >> 24 & 1) && (d >> 25 & 1) && kernels_amx_init();
	}
#endif
	return v == KERNELS_SCALAR;
}

static void kernels_setup(void)
{
	kernels_scalar_fill(&kernels_tables[KERNELS_SCALAR]);
	kernels_have[KERNELS_SCALAR] = true;
	for (int v = KERNELS_AVX2; v < KERNELS_COUNT; v++) {
		if (!kernels_cpu_has(v))
			continue;
		/* start from the scalar table: a version overrides what it speeds up */
		kernels_tables[v] = kernels_tables[KERNELS_SCALAR];
		kernels_tables[v].name = kernels_names[v];
		if (v == KERNELS_AVX2) {
			kernels_avx2_fill(&kernels_tables[v]);
		} else {
			kernels_avx512_fill(&kernels_tables[v]);
		}
		if (v == KERNELS_AMX) {
			struct kernels *k = &kernels_tables[v];
			k->batch_supports = kernels_amx_supports;
			k->batch_act_size = kernels_amx_act_size;
			k->batch_prepare = kernels_amx_prepare;
			k->batch_scratch_size = kernels_amx_scratch_size;
			k->batch_rows = kernels_amx_rows;
		}
		kernels_have[v] = true;
	}
	int best = KERNELS_SCALAR;
	for (int v = 0; v < KERNELS_COUNT; v++)
		if (kernels_have[v])
			best = v;
	const char *env = getenv("QUIRE_KERNELS");
	for (int v = 0; env && v < KERNELS_COUNT; v++)
		if (strcmp(env, kernels_names[v]) == 0 && kernels_have[v])
			best = v;
	atomic_store(&kernels_current, &kernels_tables[best]);
}

enum quant_type kernels_act_type(enum quant_type wtype)
{
	switch (wtype) {
	case QUANT_F32: return QUANT_F32;
	case QUANT_F16: return QUANT_F16;
	case QUANT_BF16: return QUANT_BF16;
	case QUANT_Q4_0:
	case QUANT_Q5_0:
	case QUANT_Q8_0: return QUANT_Q8_0;
	case QUANT_Q4_K:
	case QUANT_Q5_K:
	case QUANT_Q6_K: return QUANT_Q8_K;
	default: return QUANT_TYPE_COUNT;
	}
}

const struct kernels *kernels_get(void)
{
	pthread_once(&kernels_once, kernels_setup);
	return atomic_load(&kernels_current);
}

const struct kernels *kernels_by_name(const char *name)
{
	pthread_once(&kernels_once, kernels_setup);
	for (int v = 0; v < KERNELS_COUNT; v++)
		if (strcmp(name, kernels_names[v]) == 0 && kernels_have[v])
			return &kernels_tables[v];
	return NULL;
}

bool kernels_force(const char *name)
{
	const struct kernels *k = kernels_by_name(name);
	if (!k)
		return false;
	atomic_store(&kernels_current, k);
	return true;
}
