/* model_arch: per-architecture hyperparameters and the operations only the
 * phi3 and gemma architectures use.
 *
 * Where a key is optional, the default is the one the reference engine uses
 * for that architecture (gemma2's soft-caps 50 and 30, window 4096), so a file
 * that leaves it out computes what it computes there. */
#include "runtime/model_arch.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/gguf.h"
#include "runtime/quant.h"

#define ARCH_MAX_WINDOW (1u << 24)

/* An optional positive float; *out keeps its value when the key is absent. */
static enum rterror opt_float(const struct gguf_file *g, const char *name, const char *key, float *out, char **reterr)
{
	char full[128];
	snprintf(full, sizeof full, "%s.%s", name, key);
	if (gguf_find_key(g, full) < 0)
		return RTERROR_OK;
	float v;
	if (!gguf_get_f32(g, full, &v) || !isfinite(v) || v <= 0.0f)
		return rterror_set(reterr, RTERROR_FORMAT, "metadata '%s' must be a positive number", full);
	*out = v;
	return RTERROR_OK;
}

/* An optional integer from 0 to ARCH_MAX_WINDOW; *out keeps its value when the key is absent. */
static enum rterror opt_u32(const struct gguf_file *g, const char *name, const char *key, int32_t *out,
                            char **reterr)
{
	char full[128];
	snprintf(full, sizeof full, "%s.%s", name, key);
	if (gguf_find_key(g, full) < 0)
		return RTERROR_OK;
	uint32_t v;
	if (!gguf_get_u32(g, full, &v) || v > ARCH_MAX_WINDOW)
		return rterror_set(reterr, RTERROR_FORMAT, "metadata '%s' must be an integer from 0 to %u", full,
		                   ARCH_MAX_WINDOW);
	*out = (int32_t)v;
	return RTERROR_OK;
}

/* Linear RoPE scaling (rope.scaling.type "linear", rope.scaling.factor F):
 * positions are divided by F. Other scaling types are left to the tensors
 * that carry them (rope_freqs). */
static enum rterror rope_scaling(const struct gguf_file *g, const char *name, float *scale, char **reterr)
{
	char key[128];
	struct gguf_str type;
	snprintf(key, sizeof key, "%s.rope.scaling.type", name);
	if (!gguf_get_str(g, key, &type) || type.len != 6 || memcmp(type.ptr, "linear", 6) != 0)
		return RTERROR_OK;
	float factor = 1.0f;
	enum rterror err = opt_float(g, name, "rope.scaling.factor", &factor, reterr);
	if (!err)
		*scale = 1.0f / factor;
	return err;
}

enum rterror arch_params_read(const struct gguf_file *g, enum model_arch arch, const char *name,
                              const struct model_info *in, struct arch_params *ret, char **reterr)
{
	struct arch_params ap = {
		.arch = arch, .embd_scale = 1.0f, .rope_scale = 1.0f, .n_ctx_orig = in->n_ctx_train, .rope_mscale = 1.0f};
	/* the largest Gemma models scale q by n_embd / n_head rather than the head size */
	bool wide_scale =
	    (arch == MODEL_ARCH_GEMMA2 && in->n_layer == 46) || (arch == MODEL_ARCH_GEMMA3 && in->n_layer == 62);
	int32_t scale_dim = wide_scale && in->n_embd >= in->n_head ? in->n_embd / in->n_head : in->head_dim;
	ap.kq_scale = 1.0f / sqrtf((float)scale_dim);
	if (arch == MODEL_ARCH_GEMMA2 || arch == MODEL_ARCH_GEMMA3) {
		ap.gelu = true;
		ap.post_norms = true;
		ap.embd_scale = sqrtf((float)in->n_embd);
	}
	if (arch == MODEL_ARCH_GEMMA2) {
		ap.attn_softcap = 50.0f;
		ap.final_softcap = 30.0f;
		ap.n_swa = 4096;
	}
	if (arch == MODEL_ARCH_GEMMA3) {
		ap.qk_norm = true;
		ap.rope_base_swa = 10000.0f;
	}
	enum rterror err = RTERROR_OK;
	if (arch == MODEL_ARCH_GEMMA2)
		err = opt_float(g, name, "attn_logit_softcapping", &ap.attn_softcap, reterr);
	if (!err && (arch == MODEL_ARCH_GEMMA2 || arch == MODEL_ARCH_GEMMA3))
		err = opt_float(g, name, "final_logit_softcapping", &ap.final_softcap, reterr);
	if (!err && (arch == MODEL_ARCH_PHI3 || arch == MODEL_ARCH_GEMMA2 || arch == MODEL_ARCH_GEMMA3))
		err = opt_u32(g, name, "attention.sliding_window", &ap.n_swa, reterr);
	if (!err)
		err = rope_scaling(g, name, &ap.rope_scale, reterr);
	if (!err)
		err = opt_float(g, name, "rope.scaling.attn_factor", &ap.rope_mscale, reterr);
	if (!err)
		err = opt_u32(g, name, "rope.scaling.original_context_length", &ap.n_ctx_orig, reterr);
	if (err)
		return err;
	*ret = ap;
	return RTERROR_OK;
}

bool arch_layer_windowed(const struct arch_params *ap, int il)
{
	if (ap->n_swa <= 0)
		return false;
	switch (ap->arch) {
	case MODEL_ARCH_PHI3:
		return true;
	case MODEL_ARCH_GEMMA2:
		return il % 2 == 0;
	case MODEL_ARCH_GEMMA3:
		return il % 6 != 5; /* five local layers, then a global one */
	default:
		return false;
	}
}

/* GELU, tanh form, in F32 as the reference engine computes its table. */
static float gelu_f32(float x)
{
	const float sqrt_2_over_pi = 0.79788456080286535587989211986876f, coef_a = 0.044715f;
	return 0.5f * x * (1.0f + tanhf(sqrt_2_over_pi * x * (1.0f + coef_a * x * x)));
}

float *arch_gelu_table_new(void)
{
	float *t = malloc(65536 * sizeof *t);
	for (uint32_t i = 0; t && i < 65536; i++)
		t[i] = quant_f16_to_f32(quant_f32_to_f16(gelu_f32(quant_f16_to_f32((quant_f16)i))));
	return t;
}

void arch_geglu(const float *table, float *gate, const float *up, size_t i0, size_t i1)
{
	for (size_t i = i0; i < i1; i++) {
		float x = gate[i], y;
		if (x <= -10.0f)
			y = 0.0f;
		else if (x >= 10.0f)
			y = x;
		else
			y = table[quant_f32_to_f16(x)];
		gate[i] = y * up[i];
	}
}

void arch_softcap(float *v, size_t n, float cap)
{
	float inv = 1.0f / cap;
	for (size_t i = 0; i < n; i++)
		v[i] = cap * tanhf(v[i] * inv);
}
