/* model: llama, qwen2, phi3, gemma2 and gemma3 transformers loaded from GGUF,
 * and their forward pass. What the later three add (fused projections, GeGLU,
 * soft-caps, sliding windows, extra norms) is described by struct arch_params
 * (model_arch.h); LoRA adapters add a term after a weight's product (lora.h).
 *
 * Weights stay in the file's mapping in their stored type; every product with
 * a weight matrix goes through matmul() over a whole micro-batch of tokens.
 * Only the small vectors (norm weights, biases, RoPE factors) are copied to
 * F32 at load. Once model_load() returns, every tensor the forward pass reads
 * has been checked for presence, shape and type, so model_eval() cannot read
 * outside a tensor whatever the file said.
 *
 * The KV cache is F32, laid out per layer as [position][kv head][head dim].
 * A context evaluates at most MODEL_UBATCH tokens at a time so that its
 * scratch buffers stay bounded whatever the prompt length. */
#include "runtime/model.h"

#include <assert.h>
#include <immintrin.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/attention.h"
#include "runtime/gguf.h"
#include "runtime/kernels.h"
#include "runtime/lora.h"
#include "runtime/model_arch.h"
#include "runtime/model_internal.h"
#include "runtime/threadpool.h"

#define MODEL_MAX_CTX 131072
#define MODEL_MAX_LAYERS 1024
#define MODEL_MAX_DIM 131072
#define MODEL_MAX_HEADS 1024
#define MODEL_MAX_VOCAB (1 << 22)
#define MODEL_UBATCH 512
#define MODEL_LORA_SCRATCH (1 << 16) /* floats of B (A x) a context holds at once (an output adapter's rows are long) */

/* A layer's weight matrices, for naming them and attaching adapters. */
enum layer_mat { LM_Q, LM_K, LM_V, LM_O, LM_GATE, LM_UP, LM_DOWN, LM_COUNT };

struct layer {
	struct matmul_weight wq, wk, wv, wo, gate, up, down;
	float *attn_norm, *ffn_norm;
	float *bq, *bk, *bv; /* qwen2 only */
	float *post_attn_norm, *post_ffn_norm, *q_norm, *k_norm; /* gemma */
	bool windowed;
	/* each matrix is rows [row0, row0 + n_out) of the tensor "blk.N.<src>.weight"
	 * (phi3 fuses q, k, v into attn_qkv and gate, up into ffn_up) */
	const char *src[LM_COUNT];
	int64_t row0[LM_COUNT];
	struct lora_link *lora[LM_COUNT];
};

struct model {
	struct gguf_file *gguf;
	struct model_info info;
	int32_t n_rot;     /* leading dimensions of each head that RoPE rotates */
	bool rope_neox;    /* rotate (x[i], x[i + n_rot/2]) rather than (x[2i], x[2i+1]) */
	float *rope_freqs; /* optional per-pair divisors of the angle, n_rot/2 */
	float *rope_long;  /* LongRoPE's divisors for contexts above ap.n_ctx_orig (rope_freqs: the short ones) */
	struct matmul_weight tok_embd, output;
	float *output_norm;
	struct layer *layers;
	struct arch_params ap;
	float *gelu_table; /* with ap.gelu */
	struct lora_adapter *adapters[MODEL_MAX_ADAPTERS];
	struct model_adapter_info adapter_info[MODEL_MAX_ADAPTERS];
	int n_adapters;
	struct lora_link *lora_links[MODEL_MAX_ADAPTERS]; /* each adapter's links, one array */
	struct lora_link *lora_output;
	int64_t lora_max_rank, lora_max_out; /* sizes of a context's LoRA scratch, per token */
};

struct model_ctx {
	const struct model *m;
	struct threadpool *tp;
	enum matmul_precision prec;
	int32_t n_ctx;
	int32_t pos;
	float *k_cache, *v_cache; /* n_layer * n_ctx * kv_dim each */
	/* scratch for one micro-batch */
	float *x, *xn, *q, *k, *v, *att, *gate, *up, *rope_cos, *rope_sin;
	float *rope_cos_swa, *rope_sin_swa; /* windowed layers' own RoPE base (gemma3) */
	const float *rope_freqs;            /* the model's, or its long ones for a long context */
	float *lora_ax, *lora_out;
	int64_t lora_rank, lora_n_out; /* per-token sizes of the two, from the model's adapters at creation */
	int lora_rows;                 /* tokens whose B (A x) lora_out holds */
	float *scores; /* n_threads * ATTENTION_MAX_HEADS * n_ctx */
	float (*dot)(const float *a, const float *b, int n);
	void (*axpy)(float a, const float *x, float *y, int n); /* y += a * x */
	attention_heads_fn *attention;                          /* attention.h's loops, for heads of a multiple of */
	int attention_step;                                     /* this many floats; NULL: attend_heads' own loops */
};

static void pick_kernels(struct model_ctx *c);

/* --- loading --- */

static enum rterror get_hparam(const struct gguf_file *g, const char *arch, const char *name,
                               bool required, uint32_t def, uint32_t max, int32_t *out, char **reterr)
{
	char key[128];
	snprintf(key, sizeof key, "%s.%s", arch, name);
	uint32_t v = def;
	if (gguf_find_key(g, key) >= 0) {
		if (!gguf_get_u32(g, key, &v))
			return rterror_set(reterr, RTERROR_FORMAT, "metadata '%s' is not an unsigned integer", key);
	} else if (required) {
		return rterror_set(reterr, RTERROR_FORMAT, "metadata '%s' is missing", key);
	}
	if (v == 0 || v > max)
		return rterror_set(reterr, RTERROR_FORMAT, "metadata '%s' is %" PRIu32 " (must be 1 to %" PRIu32 ")",
		                   key, v, max);
	*out = (int32_t)v;
	return RTERROR_OK;
}

static enum rterror get_fparam(const struct gguf_file *g, const char *arch, const char *name,
                               float def, float *out, char **reterr)
{
	char key[128];
	snprintf(key, sizeof key, "%s.%s", arch, name);
	float v = def;
	if (gguf_find_key(g, key) >= 0 && !gguf_get_f32(g, key, &v))
		return rterror_set(reterr, RTERROR_FORMAT, "metadata '%s' is not a float", key);
	if (!(v > 0.0f) || !isfinite(v))
		return rterror_set(reterr, RTERROR_FORMAT, "metadata '%s' is %g (must be positive)", key, (double)v);
	*out = v;
	return RTERROR_OK;
}

static enum rterror read_hparams(struct model *m, const char *arch, char **reterr)
{
	struct model_info *in = &m->info;
	const struct gguf_file *g = m->gguf;
	enum rterror err;
	if ((err = get_hparam(g, arch, "context_length", true, 0, 1u << 24, &in->n_ctx_train, reterr)) ||
	    (err = get_hparam(g, arch, "embedding_length", true, 0, MODEL_MAX_DIM, &in->n_embd, reterr)) ||
	    (err = get_hparam(g, arch, "block_count", true, 0, MODEL_MAX_LAYERS, &in->n_layer, reterr)) ||
	    (err = get_hparam(g, arch, "feed_forward_length", true, 0, 4 * MODEL_MAX_DIM, &in->n_ff, reterr)) ||
	    (err = get_hparam(g, arch, "attention.head_count", true, 0, MODEL_MAX_HEADS, &in->n_head, reterr)) ||
	    (err = get_hparam(g, arch, "attention.head_count_kv", false, (uint32_t)in->n_head,
	                      MODEL_MAX_HEADS, &in->n_head_kv, reterr)))
		return err;
	if (in->n_head % in->n_head_kv != 0)
		return rterror_set(reterr, RTERROR_FORMAT, "%d attention heads cannot be shared by %d KV heads",
		                   in->n_head, in->n_head_kv);
	int32_t hd_default = in->n_embd / in->n_head, hd_v;
	if ((err = get_hparam(g, arch, "attention.key_length", false, (uint32_t)(hd_default ? hd_default : 1),
	                      MODEL_MAX_DIM, &in->head_dim, reterr)) ||
	    (err = get_hparam(g, arch, "attention.value_length", false, (uint32_t)in->head_dim, MODEL_MAX_DIM,
	                      &hd_v, reterr)))
		return err;
	if (hd_v != in->head_dim)
		return rterror_set(reterr, RTERROR_UNSUPPORTED, "key length %d differs from value length %d",
		                   in->head_dim, hd_v);
	if ((int64_t)in->head_dim * in->n_head > MODEL_MAX_DIM)
		return rterror_set(reterr, RTERROR_FORMAT, "%d heads of %d dimensions are too many", in->n_head,
		                   in->head_dim);
	if ((err = get_hparam(g, arch, "rope.dimension_count", false, (uint32_t)in->head_dim,
	                      (uint32_t)in->head_dim, &m->n_rot, reterr)))
		return err;
	if (m->n_rot % 2 != 0)
		return rterror_set(reterr, RTERROR_FORMAT, "rope.dimension_count %d is odd", m->n_rot);
	if ((err = get_fparam(g, arch, "rope.freq_base", 10000.0f, &in->rope_base, reterr)) ||
	    (err = get_fparam(g, arch, "attention.layer_norm_rms_epsilon", 1e-5f, &in->rms_eps, reterr)))
		return err;
	return RTERROR_OK;
}

/* Finds a tensor of exactly the given shape (ne1 = 1 for a vector). */
static enum rterror find_tensor(const struct model *m, const char *name, int64_t ne0, int64_t ne1,
                                bool required, const struct gguf_tensor **ret, char **reterr)
{
	const struct gguf_tensor *t = gguf_find_tensor(m->gguf, name);
	*ret = NULL;
	if (!t)
		return required ? rterror_set(reterr, RTERROR_FORMAT, "tensor '%s' is missing", name) : RTERROR_OK;
	if (t->ne[0] != ne0 || t->ne[1] != ne1 || t->ne[2] != 1 || t->ne[3] != 1)
		return rterror_set(reterr, RTERROR_FORMAT,
		                   "tensor '%s' has shape [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64
		                   "], expected [%" PRId64 ", %" PRId64 "]",
		                   name, t->ne[0], t->ne[1], t->ne[2], t->ne[3], ne0, ne1);
	*ret = t;
	return RTERROR_OK;
}

static enum rterror load_matrix(const struct model *m, const char *name, int64_t n_in, int64_t n_out,
                                struct matmul_weight *w, char **reterr)
{
	const struct gguf_tensor *t;
	enum rterror err = find_tensor(m, name, n_in, n_out, true, &t, reterr);
	if (err)
		return err;
	*w = (struct matmul_weight){.type = t->type, .data = t->data, .n_in = n_in, .n_out = n_out};
	return RTERROR_OK;
}

/* A vector of n values converted to an owned F32 array (*ret stays NULL if absent and optional). */
static enum rterror load_vector(const struct model *m, const char *name, int64_t n, bool required,
                                float **ret, char **reterr)
{
	const struct gguf_tensor *t;
	enum rterror err = find_tensor(m, name, n, 1, required, &t, reterr);
	if (err || !t)
		return err;
	float *v = malloc((size_t)n * sizeof *v);
	if (!v)
		return rterror_set(reterr, RTERROR_NOMEM, "out of memory loading '%s'", name);
	quant_dequantize_row(t->type, t->data, v, n);
	for (int64_t i = 0; i < n; i++) {
		if (!isfinite(v[i])) {
			free(v);
			return rterror_set(reterr, RTERROR_FORMAT, "tensor '%s' holds a non-finite value", name);
		}
	}
	*ret = v;
	return RTERROR_OK;
}

static struct matmul_weight *layer_weight(struct layer *l, enum layer_mat k)
{
	struct matmul_weight *w[LM_COUNT] = {&l->wq, &l->wk, &l->wv, &l->wo, &l->gate, &l->up, &l->down};
	return w[k];
}

/* Matrix k of layer il: rows [row0, row0 + n_out) of "blk.<il>.<src>.weight", which
 * must have n_in columns and n_total rows. */
static enum rterror load_part(struct model *m, int il, enum layer_mat k, const char *src, int64_t n_in,
                              int64_t row0, int64_t n_out, int64_t n_total, char **reterr)
{
	struct layer *l = &m->layers[il];
	char name[96];
	snprintf(name, sizeof name, "blk.%d.%s.weight", il, src);
	const struct gguf_tensor *t;
	enum rterror err = find_tensor(m, name, n_in, n_total, true, &t, reterr);
	if (err)
		return err;
	size_t row = quant_row_size(t->type, n_in);
	*layer_weight(l, k) = (struct matmul_weight){
		.type = t->type, .data = (const uint8_t *)t->data + (size_t)row0 * row, .n_in = n_in, .n_out = n_out};
	l->src[k] = src;
	l->row0[k] = row0;
	return RTERROR_OK;
}

static bool has_tensor(const struct model *m, int il, const char *suffix)
{
	char name[96];
	snprintf(name, sizeof name, "blk.%d.%s", il, suffix);
	return gguf_find_tensor(m->gguf, name) != NULL;
}

static enum rterror load_layer(struct model *m, int il, char **reterr)
{
	const struct model_info *in = &m->info;
	struct layer *l = &m->layers[il];
	int64_t E = in->n_embd, F = in->n_ff;
	int64_t n_q = (int64_t)in->n_head * in->head_dim, n_kv = (int64_t)in->n_head_kv * in->head_dim;
	char name[96];
	enum rterror err = RTERROR_OK;
#define PART(k, src, nin, row0, nout, ntotal)                                          \
	if (!err)                                                                          \
		err = load_part(m, il, k, src, nin, row0, nout, ntotal, reterr);
#define VEC(field, suffix, n, req)                                                     \
	if (!err) {                                                                        \
		snprintf(name, sizeof name, "blk.%d.%s", il, suffix);                          \
		err = load_vector(m, name, n, req, &l->field, reterr);                         \
	}
	if (has_tensor(m, il, "attn_qkv.weight")) {
		PART(LM_Q, "attn_qkv", E, 0, n_q, n_q + 2 * n_kv)
		PART(LM_K, "attn_qkv", E, n_q, n_kv, n_q + 2 * n_kv)
		PART(LM_V, "attn_qkv", E, n_q + n_kv, n_kv, n_q + 2 * n_kv)
	} else {
		PART(LM_Q, "attn_q", E, 0, n_q, n_q)
		PART(LM_K, "attn_k", E, 0, n_kv, n_kv)
		PART(LM_V, "attn_v", E, 0, n_kv, n_kv)
	}
	PART(LM_O, "attn_output", n_q, 0, E, E)
	if (in->arch == MODEL_ARCH_PHI3 && !has_tensor(m, il, "ffn_gate.weight")) {
		PART(LM_GATE, "ffn_up", E, 0, F, 2 * F)
		PART(LM_UP, "ffn_up", E, F, F, 2 * F)
	} else {
		PART(LM_GATE, "ffn_gate", E, 0, F, F)
		PART(LM_UP, "ffn_up", E, 0, F, F)
	}
	PART(LM_DOWN, "ffn_down", F, 0, E, E)
	VEC(attn_norm, "attn_norm.weight", E, true)
	VEC(ffn_norm, "ffn_norm.weight", E, true)
	bool qwen2 = in->arch == MODEL_ARCH_QWEN2;
	VEC(bq, "attn_q.bias", n_q, qwen2)
	VEC(bk, "attn_k.bias", n_kv, qwen2)
	VEC(bv, "attn_v.bias", n_kv, qwen2)
	VEC(post_attn_norm, "post_attention_norm.weight", E, m->ap.post_norms)
	VEC(post_ffn_norm, "post_ffw_norm.weight", E, m->ap.post_norms)
	VEC(q_norm, "attn_q_norm.weight", in->head_dim, m->ap.qk_norm)
	VEC(k_norm, "attn_k_norm.weight", in->head_dim, m->ap.qk_norm)
#undef PART
#undef VEC
	l->windowed = arch_layer_windowed(&m->ap, il);
	return err;
}

static enum rterror load_arch(struct model *m, char **reterr)
{
	struct gguf_str s;
	if (!gguf_get_str(m->gguf, "general.architecture", &s))
		return rterror_set(reterr, RTERROR_FORMAT, "metadata 'general.architecture' is missing");
	static const char *const names[MODEL_ARCH_COUNT] = {
		[MODEL_ARCH_LLAMA] = "llama", [MODEL_ARCH_QWEN2] = "qwen2", [MODEL_ARCH_PHI3] = "phi3",
		[MODEL_ARCH_GEMMA2] = "gemma2", [MODEL_ARCH_GEMMA3] = "gemma3"};
	int a = 0;
	while (a < MODEL_ARCH_COUNT && !(s.len == strlen(names[a]) && memcmp(s.ptr, names[a], s.len) == 0))
		a++;
	if (a == MODEL_ARCH_COUNT)
		return rterror_set(reterr, RTERROR_UNSUPPORTED, "architecture '%.*s' is not supported",
		                   (int)(s.len > 64 ? 64 : s.len), s.ptr);
	m->info.arch = (enum model_arch)a;
	m->info.arch_name = names[a];
	m->rope_neox = a != MODEL_ARCH_LLAMA;
	enum rterror err = read_hparams(m, m->info.arch_name, reterr);
	if (!err)
		err = arch_params_read(m->gguf, m->info.arch, m->info.arch_name, &m->info, &m->ap, reterr);
	m->info.n_swa = m->ap.n_swa;
	return err;
}

static enum rterror load_tensors(struct model *m, char **reterr)
{
	struct model_info *in = &m->info;
	const struct gguf_tensor *te = gguf_find_tensor(m->gguf, "token_embd.weight");
	if (!te)
		return rterror_set(reterr, RTERROR_FORMAT, "tensor 'token_embd.weight' is missing");
	if (te->ne[1] < 1 || te->ne[1] > MODEL_MAX_VOCAB)
		return rterror_set(reterr, RTERROR_FORMAT, "tensor 'token_embd.weight': vocabulary of %" PRId64
		                   " tokens (must be 1 to %d)", te->ne[1], MODEL_MAX_VOCAB);
	in->n_vocab = (int32_t)te->ne[1];
	enum rterror err = load_matrix(m, "token_embd.weight", in->n_embd, in->n_vocab, &m->tok_embd, reterr);
	if (err || (err = load_vector(m, "output_norm.weight", in->n_embd, true, &m->output_norm, reterr)))
		return err;
	const struct gguf_tensor *to;
	if ((err = find_tensor(m, "output.weight", in->n_embd, in->n_vocab, false, &to, reterr)))
		return err;
	in->tied_output = to == NULL;
	m->output = m->tok_embd;
	if (to)
		m->output = (struct matmul_weight){.type = to->type, .data = to->data,
		                                   .n_in = in->n_embd, .n_out = in->n_vocab};
	if ((err = load_vector(m, "rope_freqs.weight", m->n_rot / 2, false, &m->rope_freqs, reterr)))
		return err;
	if (!m->rope_freqs &&
	    ((err = load_vector(m, "rope_factors_short.weight", m->n_rot / 2, false, &m->rope_freqs, reterr)) ||
	     (err = load_vector(m, "rope_factors_long.weight", m->n_rot / 2, false, &m->rope_long, reterr))))
		return err;
	if (m->ap.gelu && !(m->gelu_table = arch_gelu_table_new()))
		return rterror_set(reterr, RTERROR_NOMEM, "out of memory");
	m->layers = calloc((size_t)in->n_layer, sizeof *m->layers);
	if (!m->layers)
		return rterror_set(reterr, RTERROR_NOMEM, "out of memory");
	for (int il = 0; il < in->n_layer && !err; il++)
		err = load_layer(m, il, reterr);
	for (int64_t i = 0; i < gguf_n_tensors(m->gguf); i++) {
		const struct gguf_tensor *t = gguf_tensor_at(m->gguf, i);
		in->n_params += (uint64_t)(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
		in->weight_bytes += t->nbytes;
	}
	return err;
}

enum rterror model_load_gguf(struct gguf_file *g, struct model **ret, char **reterr)
{
	struct model *m = calloc(1, sizeof *m);
	if (!m)
		return rterror_set(reterr, RTERROR_NOMEM, "out of memory");
	m->gguf = g;
	enum rterror err = load_arch(m, reterr);
	if (!err)
		err = load_tensors(m, reterr);
	if (err) {
		m->gguf = NULL; /* the caller keeps the file on failure */
		model_free(m);
		return err;
	}
	*ret = m;
	return RTERROR_OK;
}

enum rterror model_load(const char *path, struct model **ret, char **reterr)
{
	struct gguf_file *g = NULL;
	enum rterror err = gguf_open(path, &g, reterr);
	if (err)
		return err;
	err = model_load_gguf(g, ret, reterr);
	if (err) {
		rterror_set(reterr, err, "%s: %s", path, reterr && *reterr ? *reterr : rterror_str(err));
		gguf_close(g);
	}
	return err;
}

void model_free(struct model *m)
{
	if (!m)
		return;
	if (m->layers) {
		for (int il = 0; il < m->info.n_layer; il++) {
			struct layer *l = &m->layers[il];
			free(l->attn_norm);
			free(l->ffn_norm);
			free(l->bq);
			free(l->bk);
			free(l->bv);
			free(l->post_attn_norm);
			free(l->post_ffn_norm);
			free(l->q_norm);
			free(l->k_norm);
		}
	}
	for (int i = 0; i < m->n_adapters; i++) {
		free(m->lora_links[i]);
		lora_close(m->adapters[i]);
	}
	free(m->gelu_table);
	free(m->layers);
	free(m->output_norm);
	free(m->rope_freqs);
	free(m->rope_long);
	gguf_close(m->gguf);
	free(m);
}

const struct model_info *model_get_info(const struct model *m)
{
	return &m->info;
}

const struct gguf_file *model_gguf(const struct model *m)
{
	return m->gguf;
}

/* --- adapters --- */

/* Every weight an adapter may change; *names holds their names. Free both with free(). */
static struct lora_target *adapter_targets(struct model *m, size_t *n, char **names)
{
	const struct model_info *in = &m->info;
	size_t max = (size_t)in->n_layer * LM_COUNT + 1, k = 0;
	struct lora_target *t = calloc(max, sizeof *t);
	char *buf = calloc(max, 64);
	if (!t || !buf) {
		free(t);
		free(buf);
		return NULL;
	}
	for (int il = 0; il < in->n_layer; il++) {
		struct layer *l = &m->layers[il];
		for (int j = 0; j < LM_COUNT; j++, k++) {
			const struct matmul_weight *w = layer_weight(l, (enum layer_mat)j);
			const struct gguf_tensor *src;
			snprintf(buf + k * 64, 64, "blk.%d.%s.weight", il, l->src[j]);
			src = gguf_find_tensor(m->gguf, buf + k * 64);
			t[k] = (struct lora_target){buf + k * 64, w->n_in, l->row0[j], w->n_out, src->ne[1], &l->lora[j]};
		}
	}
	if (!in->tied_output)
		t[k++] = (struct lora_target){"output.weight", in->n_embd, 0, in->n_vocab, in->n_vocab, &m->lora_output};
	*n = k;
	*names = buf;
	return t;
}

enum rterror model_add_adapter(struct model *m, const char *path, float scale, char **reterr)
{
	if (m->n_adapters == MODEL_MAX_ADAPTERS)
		return rterror_set(reterr, RTERROR_LIMIT, "more than %d adapters", MODEL_MAX_ADAPTERS);
	struct lora_adapter *ad = NULL;
	enum rterror err = lora_open(path, m->info.arch_name, scale, &ad, reterr);
	if (err)
		return err;
	size_t n = 0;
	char *names = NULL, *why = NULL;
	struct lora_target *t = adapter_targets(m, &n, &names);
	struct lora_link *links = NULL;
	int32_t n_links = 0;
	err = t ? lora_attach(ad, t, n, &links, &n_links, &why) : rterror_set(&why, RTERROR_NOMEM, "out of memory");
	for (size_t i = 0; !err && i < n; i++) {
		for (const struct lora_link *l = *t[i].chain; l; l = l->next) {
			if (l->a.n_out > m->lora_max_rank)
				m->lora_max_rank = l->a.n_out;
			if (l->b.n_out > m->lora_max_out)
				m->lora_max_out = l->b.n_out;
		}
	}
	free(t);
	free(names);
	if (err) {
		rterror_set(reterr, err, "adapter %s: %s", path, why ? why : rterror_str(err));
		free(why);
		lora_close(ad);
		return err;
	}
	m->adapters[m->n_adapters] = ad;
	m->lora_links[m->n_adapters] = links;
	m->adapter_info[m->n_adapters] = (struct model_adapter_info){
		.path = ad->path, .alpha = ad->alpha, .rank = ad->rank, .scale = scale, .n_weights = n_links,
		.bytes = gguf_file_size(ad->g)};
	m->n_adapters++;
	return RTERROR_OK;
}

int model_n_adapters(const struct model *m)
{
	return m->n_adapters;
}

const struct model_adapter_info *model_adapter(const struct model *m, int i)
{
	return i >= 0 && i < m->n_adapters ? &m->adapter_info[i] : NULL;
}

/* --- contexts --- */

static size_t kv_dim(const struct model *m)
{
	return (size_t)m->info.n_head_kv * (size_t)m->info.head_dim;
}

static enum rterror ctx_alloc(struct model_ctx *c, char **reterr)
{
	const struct model_info *in = &c->m->info;
	size_t ub = (size_t)(c->n_ctx < MODEL_UBATCH ? c->n_ctx : MODEL_UBATCH);
	size_t n_q = (size_t)in->n_head * (size_t)in->head_dim, n_kv = kv_dim(c->m);
	size_t cache = (size_t)in->n_layer * (size_t)c->n_ctx * n_kv;
	int nth = threadpool_size(c->tp);
	c->k_cache = malloc(cache * sizeof(float));
	c->v_cache = malloc(cache * sizeof(float));
	c->x = malloc(ub * (size_t)in->n_embd * sizeof(float));
	c->xn = malloc(ub * (size_t)in->n_embd * sizeof(float));
	c->q = malloc(ub * n_q * sizeof(float));
	c->att = malloc(ub * n_q * sizeof(float));
	c->k = malloc(ub * n_kv * sizeof(float));
	c->v = malloc(ub * n_kv * sizeof(float));
	c->gate = malloc(ub * (size_t)in->n_ff * sizeof(float));
	c->up = malloc(ub * (size_t)in->n_ff * sizeof(float));
	c->rope_cos = malloc(ub * (size_t)(c->m->n_rot / 2 + 1) * sizeof(float));
	c->rope_sin = malloc(ub * (size_t)(c->m->n_rot / 2 + 1) * sizeof(float));
	c->scores = malloc((size_t)nth * ATTENTION_MAX_HEADS * (size_t)c->n_ctx * sizeof(float));
	bool extra_ok = true;
	if (c->m->ap.rope_base_swa > 0) {
		c->rope_cos_swa = malloc(ub * (size_t)(c->m->n_rot / 2 + 1) * sizeof(float));
		c->rope_sin_swa = malloc(ub * (size_t)(c->m->n_rot / 2 + 1) * sizeof(float));
		extra_ok = c->rope_cos_swa && c->rope_sin_swa;
	}
	if (c->m->lora_max_rank > 0) {
		int64_t rows = MODEL_LORA_SCRATCH / c->m->lora_max_out;
		c->lora_rows = rows < 1 ? 1 : rows > (int64_t)ub ? (int)ub : (int)rows;
		c->lora_ax = malloc(ub * (size_t)c->m->lora_max_rank * sizeof(float));
		c->lora_out = malloc((size_t)c->lora_rows * (size_t)c->m->lora_max_out * sizeof(float));
		extra_ok = extra_ok && c->lora_ax && c->lora_out;
		c->lora_rank = c->m->lora_max_rank;
		c->lora_n_out = c->m->lora_max_out;
	}
	if (!c->k_cache || !c->v_cache || !c->x || !c->xn || !c->q || !c->att || !c->k || !c->v ||
	    !c->gate || !c->up || !c->rope_cos || !c->rope_sin || !c->scores || !extra_ok)
		return rterror_set(reterr, RTERROR_NOMEM,
		                   "out of memory for a context of %d positions (KV cache %zu MiB)", c->n_ctx,
		                   2 * cache * sizeof(float) >> 20);
	return RTERROR_OK;
}

enum rterror model_ctx_new(const struct model *m, int32_t n_ctx, int n_threads,
                           enum matmul_precision prec, struct model_ctx **ret, char **reterr)
{
	if ((unsigned)prec >= MATMUL_PRECISION_COUNT)
		return rterror_set(reterr, RTERROR_INVALID, "unknown matmul precision %d", (int)prec);
	if (n_ctx <= 0)
		n_ctx = m->info.n_ctx_train < MODEL_MAX_CTX ? m->info.n_ctx_train : MODEL_MAX_CTX;
	if (n_ctx > MODEL_MAX_CTX)
		return rterror_set(reterr, RTERROR_LIMIT, "context of %d positions exceeds the limit of %d",
		                   n_ctx, MODEL_MAX_CTX);
	struct model_ctx *c = calloc(1, sizeof *c);
	if (!c)
		return rterror_set(reterr, RTERROR_NOMEM, "out of memory");
	c->m = m;
	c->prec = prec;
	c->n_ctx = n_ctx;
	c->tp = threadpool_new(n_threads);
	c->rope_freqs = m->rope_long && n_ctx > m->ap.n_ctx_orig ? m->rope_long : m->rope_freqs;
	pick_kernels(c);
	enum rterror err = c->tp ? ctx_alloc(c, reterr)
	                         : rterror_set(reterr, RTERROR_NOMEM, "cannot start %d threads", n_threads);
	if (err) {
		model_ctx_free(c);
		return err;
	}
	*ret = c;
	return RTERROR_OK;
}

void model_ctx_free(struct model_ctx *c)
{
	if (!c)
		return;
	threadpool_free(c->tp);
	free(c->k_cache);
	free(c->v_cache);
	free(c->x);
	free(c->xn);
	free(c->q);
	free(c->att);
	free(c->k);
	free(c->v);
	free(c->gate);
	free(c->up);
	free(c->rope_cos);
	free(c->rope_sin);
	free(c->scores);
	free(c->rope_cos_swa);
	free(c->rope_sin_swa);
	free(c->lora_ax);
	free(c->lora_out);
	free(c);
}

int32_t model_ctx_size(const struct model_ctx *c)
{
	return c->n_ctx;
}

int32_t model_ctx_pos(const struct model_ctx *c)
{
	return c->pos;
}

void model_ctx_truncate(struct model_ctx *c, int32_t n_past)
{
	if (n_past >= 0 && n_past < c->pos)
		c->pos = n_past;
}

/* --- forward pass --- */

static void rmsnorm(const float *x, const float *w, float *y, int n, float eps)
{
	double sum = 0.0;
	for (int i = 0; i < n; i++)
		sum += (double)(x[i] * x[i]);
	float scale = 1.0f / sqrtf((float)(sum / n) + eps);
	for (int i = 0; i < n; i++)
		y[i] = (x[i] * scale) * w[i];
}

/* cos/sin of each rotated pair's angle for positions pos0 .. pos0+nb-1. The angle is
 * built by repeated multiplication, as the reference engine does, so that
 * rounding matches it closely. */
static void rope_fill(const struct model_ctx *c, float base, float scale, int32_t pos0, int nb, float *cos_out,
                      float *sin_out)
{
	const struct model *m = c->m;
	const float *freqs = c->rope_freqs, mscale = m->ap.rope_mscale;
	int half = m->n_rot / 2;
	float theta_scale = powf(base, -2.0f / (float)m->n_rot);
	for (int t = 0; t < nb; t++) {
		float theta = (float)(pos0 + t);
		for (int i = 0; i < half; i++) {
			float th = (freqs ? theta / freqs[i] : theta) * scale;
			cos_out[t * half + i] = cosf(th) * mscale;
			sin_out[t * half + i] = sinf(th) * mscale;
			theta *= theta_scale;
		}
	}
}

static void rope_tables(struct model_ctx *c, int32_t pos0, int nb)
{
	const struct model *m = c->m;
	rope_fill(c, m->info.rope_base, m->ap.rope_scale, pos0, nb, c->rope_cos, c->rope_sin);
	if (c->rope_cos_swa)
		rope_fill(c, m->ap.rope_base_swa, 1.0f, pos0, nb, c->rope_cos_swa, c->rope_sin_swa);
}

/* windowed: the layer is a windowed one, which may have its own RoPE base */
static void rope_apply(const struct model_ctx *c, float *v, int n_heads, int t, bool windowed)
{
	const struct model *m = c->m;
	int half = m->n_rot / 2, hd = m->info.head_dim;
	bool own = windowed && c->rope_cos_swa;
	const float *cs = (own ? c->rope_cos_swa : c->rope_cos) + t * half;
	const float *sn = (own ? c->rope_sin_swa : c->rope_sin) + t * half;
	for (int h = 0; h < n_heads; h++) {
		float *x = v + h * hd;
		for (int i = 0; i < half; i++) {
			int a = m->rope_neox ? i : 2 * i, b = m->rope_neox ? i + half : 2 * i + 1;
			float x0 = x[a], x1 = x[b];
			x[a] = x0 * cs[i] - x1 * sn[i];
			x[b] = x0 * sn[i] + x1 * cs[i];
		}
	}
}

/* Query row i of c->q belongs to token t0 + i of the micro-batch, at position pos0 + t0 + i. */
struct att_task {
	struct model_ctx *c;
	int il;
	int t0;
	int n_rows;
	int32_t pos0;
};

/* Attention's inner products and sums, in the widest instruction set the CPU
 * has (picked once per context); the scalar versions are the fallback. */
static float dot_scalar(const float *a, const float *b, int n)
{
	float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
	int i = 0;
	for (; i + 4 <= n; i += 4) {
		s0 += a[i] * b[i];
		s1 += a[i + 1] * b[i + 1];
		s2 += a[i + 2] * b[i + 2];
		s3 += a[i + 3] * b[i + 3];
	}
	for (; i < n; i++)
		s0 += a[i] * b[i];
	return (s0 + s1) + (s2 + s3);
}

static void axpy_scalar(float a, const float *x, float *y, int n)
{
	for (int i = 0; i < n; i++)
		y[i] += a * x[i];
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) static float dot_avx2(const float *a, const float *b, int n)
{
	__m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
	int i = 0;
	for (; i + 16 <= n; i += 16) {
		s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
		s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
	}
	for (; i + 8 <= n; i += 8)
		s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
	s0 = _mm256_add_ps(s0, s1);
	__m128 h = _mm_add_ps(_mm256_castps256_ps128(s0), _mm256_extractf128_ps(s0, 1));
	h = _mm_add_ps(h, _mm_movehl_ps(h, h));
	h = _mm_add_ss(h, _mm_movehdup_ps(h));
	float r = _mm_cvtss_f32(h);
	for (; i < n; i++)
		r += a[i] * b[i];
	return r;
}

__attribute__((target("avx2,fma"))) static void axpy_avx2(float a, const float *x, float *y, int n)
{
	__m256 va = _mm256_set1_ps(a);
	int i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
	for (; i < n; i++)
		y[i] += a * x[i];
}

__attribute__((target("avx512f"))) static float dot_avx512(const float *a, const float *b, int n)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
	int i = 0;
	for (; i + 32 <= n; i += 32) {
		s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
		s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
	}
	for (; i + 16 <= n; i += 16)
		s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
	float r = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
	for (; i < n; i++)
		r += a[i] * b[i];
	return r;
}

__attribute__((target("avx512f"))) static void axpy_avx512(float a, const float *x, float *y, int n)
{
	__m512 va = _mm512_set1_ps(a);
	int i = 0;
	for (; i + 16 <= n; i += 16)
		_mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
	for (; i < n; i++)
		y[i] += a * x[i];
}
#endif

static void pick_kernels(struct model_ctx *c)
{
	c->dot = dot_scalar;
	c->axpy = axpy_scalar;
	c->attention = NULL;
	/* the instruction set of the matrix kernels (QUIRE_KERNELS forces one) */
	const char *set = kernels_get()->name;
	if (getenv("QUIRE_FORCE_SCALAR") || strcmp(set, "scalar") == 0)
		return;
#if defined(__x86_64__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f") && strcmp(set, "avx2") != 0) {
		c->dot = dot_avx512;
		c->axpy = axpy_avx512;
		c->attention = attention_heads_avx512;
		c->attention_step = 16;
	} else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
		c->dot = dot_avx2;
		c->axpy = axpy_avx2;
		c->attention = attention_heads_avx2;
		c->attention_step = 8;
	}
#endif
}

/* Query heads h0 .. h0 + ng - 1 of one token, which share one key/value head,
 * against every cached position up to the token's own. Each cached key and
 * value is read once for all of them (it stays in the first-level cache from
 * one head to the next) instead of once per head: over a long context the
 * cache outgrows the second-level cache, and reading it again for every head
 * was most of attention's time. Each head's arithmetic is that of attending
 * alone, in the same order (with AVX-512 or AVX2, attention.h's loops instead).
 * scores holds ATTENTION_MAX_HEADS rows of n_ctx. */
static void attend_heads(const struct att_task *a, int row, int h0, int ng, float *scores)
{
	const struct model_ctx *c = a->c;
	const struct model_info *in = &c->m->info;
	int hd = in->head_dim, n_q = in->n_head * hd;
	size_t kvd = kv_dim(c->m), nc = (size_t)c->n_ctx;
	int kvh = h0 / (in->n_head / in->n_head_kv);
	const float *q = c->q + (size_t)row * n_q + (size_t)h0 * hd;
	const float *kc = c->k_cache + (size_t)a->il * c->n_ctx * kvd + (size_t)kvh * hd;
	const float *vc = c->v_cache + (size_t)a->il * c->n_ctx * kvd + (size_t)kvh * hd;
	int n_keys = a->pos0 + a->t0 + row + 1;
	const struct arch_params *ap = &c->m->ap;
	/* a windowed layer's query at p sees the keys p - n_swa + 1 .. p */
	int j0 = c->m->layers[a->il].windowed && n_keys > ap->n_swa ? n_keys - ap->n_swa : 0;
	float *out = c->att + (size_t)row * n_q + (size_t)h0 * hd;
	if (c->attention && hd % c->attention_step == 0 && hd <= ATTENTION_MAX_HD) {
		c->attention(q, ng, hd, kc, vc, kvd, j0, n_keys, ap->kq_scale, ap->attn_softcap, scores, nc, out);
		return;
	}
	float mx[ATTENTION_MAX_HEADS], inv[ATTENTION_MAX_HEADS];
	for (int g = 0; g < ng; g++)
		mx[g] = -INFINITY;
	for (int j = j0; j < n_keys; j++) {
		const float *k = kc + (size_t)j * kvd;
		for (int g = 0; g < ng; g++) {
			float *s = &scores[(size_t)g * nc + (size_t)j];
			*s = c->dot(q + (size_t)g * hd, k, hd) * ap->kq_scale;
			if (ap->attn_softcap > 0)
				arch_softcap(s, 1, ap->attn_softcap);
			if (*s > mx[g])
				mx[g] = *s;
		}
	}
	for (int g = 0; g < ng; g++) {
		float *sg = scores + (size_t)g * nc;
		double sum = 0.0;
		for (int j = j0; j < n_keys; j++) {
			float d = sg[j] - mx[g];
			/* below -80 the weight is under F32's smallest normal: zero, without expf's underflow path */
			sg[j] = d < -80.0f ? 0.0f : expf(d);
			sum += sg[j];
		}
		inv[g] = (float)(1.0 / sum);
	}
	memset(out, 0, (size_t)ng * (size_t)hd * sizeof *out);
	for (int j = j0; j < n_keys; j++) {
		const float *v = vc + (size_t)j * kvd;
		for (int g = 0; g < ng; g++) {
			float p = scores[(size_t)g * nc + (size_t)j];
			if (p != 0.0f)
				c->axpy(p * inv[g], v, out + (size_t)g * hd, hd);
		}
	}
}

static void attend_part(void *arg, int ith, int nth)
{
	const struct att_task *a = arg;
	const struct model_info *in = &a->c->m->info;
	int group = in->n_head / in->n_head_kv;
	int per_kv = (group + ATTENTION_MAX_HEADS - 1) / ATTENTION_MAX_HEADS, per_row = in->n_head_kv * per_kv;
	int64_t items = (int64_t)a->n_rows * per_row;
	float *scores = a->c->scores + (size_t)ith * ATTENTION_MAX_HEADS * (size_t)a->c->n_ctx;
	/* later tokens attend to more positions: deal items out in turn, not in ranges */
	for (int64_t w = ith; w < items; w += nth) {
		int row = (int)(w / per_row), rest = (int)(w % per_row);
		int kvh = rest / per_kv, part = rest % per_kv;
		int h0 = kvh * group + part * ATTENTION_MAX_HEADS;
		int ng = group - part * ATTENTION_MAX_HEADS < ATTENTION_MAX_HEADS ? group - part * ATTENTION_MAX_HEADS : ATTENTION_MAX_HEADS;
		attend_heads(a, row, h0, ng, scores);
	}
}

static void add_bias(float *y, const float *b, int nb, int n)
{
	if (!b)
		return;
	for (int t = 0; t < nb; t++)
		for (int i = 0; i < n; i++)
			y[(size_t)t * n + i] += b[i];
}

/* y (nb rows of n_out) += factor * B (A x) for each adapter linked to a weight. */
static void lora_add(struct model_ctx *c, const struct lora_link *l, const float *x, int nb, float *y)
{
	for (; l; l = l->next) {
		/* adapters are added before any context exists (model.h) */
		assert(l->a.n_out <= c->lora_rank && l->b.n_out <= c->lora_n_out);
		matmul(c->tp, c->prec, &l->a, x, nb, c->lora_ax);
		for (int t0 = 0; t0 < nb; t0 += c->lora_rows) {
			int rows = nb - t0 < c->lora_rows ? nb - t0 : c->lora_rows;
			matmul(c->tp, c->prec, &l->b, c->lora_ax + (size_t)t0 * (size_t)l->a.n_out, rows, c->lora_out);
			float *yt = y + (size_t)t0 * (size_t)l->b.n_out;
			for (size_t i = 0; i < (size_t)rows * (size_t)l->b.n_out; i++)
				yt[i] += l->factor * c->lora_out[i];
		}
	}
}

/* RMS norm of each head of each of nb rows, with weights w of one head's size. */
static void head_norm(float *v, int nb, int n_heads, int hd, const float *w, float eps)
{
	if (!w)
		return;
	for (int i = 0; i < nb * n_heads; i++)
		rmsnorm(v + (size_t)i * hd, w, v + (size_t)i * hd, hd, eps);
}

static void rows_norm(float *v, int nb, int n, const float *w, float eps)
{
	if (!w)
		return;
	for (int t = 0; t < nb; t++)
		rmsnorm(v + (size_t)t * n, w, v + (size_t)t * n, n, eps);
}

/* Appends the batch's keys and values to the cache and, for the last n_out
 * tokens only, adds the attention output to the residual stream: every token
 * needs its keys and values, but in the last layer only the tokens whose
 * logits are wanted need the rest. */
static void attention_block(struct model_ctx *c, int il, int nb, int n_out)
{
	const struct model_info *in = &c->m->info;
	const struct layer *l = &c->m->layers[il];
	int n_embd = in->n_embd, n_q = in->n_head * in->head_dim, n_kv = (int)kv_dim(c->m);
	int t0 = nb - n_out;
	for (int t = 0; t < nb; t++)
		rmsnorm(c->x + (size_t)t * n_embd, l->attn_norm, c->xn + (size_t)t * n_embd, n_embd, in->rms_eps);
	matmul(c->tp, c->prec, &l->wk, c->xn, nb, c->k);
	lora_add(c, l->lora[LM_K], c->xn, nb, c->k);
	matmul(c->tp, c->prec, &l->wv, c->xn, nb, c->v);
	lora_add(c, l->lora[LM_V], c->xn, nb, c->v);
	add_bias(c->k, l->bk, nb, n_kv);
	add_bias(c->v, l->bv, nb, n_kv);
	head_norm(c->k, nb, in->n_head_kv, in->head_dim, l->k_norm, in->rms_eps);
	size_t layer_off = (size_t)il * c->n_ctx * (size_t)n_kv;
	for (int t = 0; t < nb; t++) {
		rope_apply(c, c->k + (size_t)t * n_kv, in->n_head_kv, t, l->windowed);
		size_t at = layer_off + (size_t)(c->pos + t) * n_kv;
		memcpy(c->k_cache + at, c->k + (size_t)t * n_kv, (size_t)n_kv * sizeof(float));
		memcpy(c->v_cache + at, c->v + (size_t)t * n_kv, (size_t)n_kv * sizeof(float));
	}
	if (n_out == 0)
		return;
	matmul(c->tp, c->prec, &l->wq, c->xn + (size_t)t0 * n_embd, n_out, c->q);
	lora_add(c, l->lora[LM_Q], c->xn + (size_t)t0 * n_embd, n_out, c->q);
	add_bias(c->q, l->bq, n_out, n_q);
	head_norm(c->q, n_out, in->n_head, in->head_dim, l->q_norm, in->rms_eps);
	for (int i = 0; i < n_out; i++)
		rope_apply(c, c->q + (size_t)i * n_q, in->n_head, t0 + i, l->windowed);
	struct att_task a = {.c = c, .il = il, .t0 = t0, .n_rows = n_out, .pos0 = c->pos};
	threadpool_run(c->tp, attend_part, &a);
	matmul(c->tp, c->prec, &l->wo, c->att, n_out, c->xn);
	lora_add(c, l->lora[LM_O], c->att, n_out, c->xn);
	rows_norm(c->xn, n_out, n_embd, l->post_attn_norm, in->rms_eps);
	float *x = c->x + (size_t)t0 * n_embd;
	for (size_t i = 0; i < (size_t)n_out * n_embd; i++)
		x[i] += c->xn[i];
}

/* silu(gate) * up over a batch, split over the pool: for a long prompt this is
 * millions of expf calls per layer, too many for one thread. */
struct swiglu_task {
	float *gate;
	const float *up;
	size_t n;
	const float *gelu_table; /* GeGLU instead (gemma) */
};

static void swiglu_part(void *arg, int ith, int nth)
{
	const struct swiglu_task *s = arg;
	size_t i0 = s->n * (size_t)ith / (size_t)nth, i1 = s->n * (size_t)(ith + 1) / (size_t)nth;
	if (s->gelu_table) {
		arch_geglu(s->gelu_table, s->gate, s->up, i0, i1);
		return;
	}
	for (size_t i = i0; i < i1; i++) {
		float g = s->gate[i];
		s->gate[i] = g / (1.0f + expf(-g)) * s->up[i];
	}
}

/* The feed-forward block for the nb tokens whose residual rows start at x. */
static void ffn_block(struct model_ctx *c, int il, float *x, int nb)
{
	const struct model_info *in = &c->m->info;
	const struct layer *l = &c->m->layers[il];
	int n_embd = in->n_embd;
	for (int t = 0; t < nb; t++)
		rmsnorm(x + (size_t)t * n_embd, l->ffn_norm, c->xn + (size_t)t * n_embd, n_embd, in->rms_eps);
	matmul(c->tp, c->prec, &l->gate, c->xn, nb, c->gate);
	lora_add(c, l->lora[LM_GATE], c->xn, nb, c->gate);
	matmul(c->tp, c->prec, &l->up, c->xn, nb, c->up);
	lora_add(c, l->lora[LM_UP], c->xn, nb, c->up);
	struct swiglu_task sw = {
		.gate = c->gate, .up = c->up, .n = (size_t)nb * (size_t)in->n_ff, .gelu_table = c->m->gelu_table};
	if (nb > 1)
		threadpool_run(c->tp, swiglu_part, &sw);
	else
		swiglu_part(&sw, 0, 1);
	matmul(c->tp, c->prec, &l->down, c->gate, nb, c->xn);
	lora_add(c, l->lora[LM_DOWN], c->gate, nb, c->xn);
	rows_norm(c->xn, nb, n_embd, l->post_ffn_norm, in->rms_eps);
	for (size_t i = 0; i < (size_t)nb * n_embd; i++)
		x[i] += c->xn[i];
}

/* Evaluates nb <= MODEL_UBATCH tokens; logits gets every row (all) or the last row. */
static void eval_ubatch(struct model_ctx *c, const int32_t *tokens, int nb, float *logits, bool all)
{
	const struct model *m = c->m;
	const struct model_info *in = &m->info;
	int n_embd = in->n_embd;
	size_t row = quant_row_size(m->tok_embd.type, n_embd);
	for (int t = 0; t < nb; t++)
		quant_dequantize_row(m->tok_embd.type, (const uint8_t *)m->tok_embd.data + (size_t)tokens[t] * row,
		                     c->x + (size_t)t * n_embd, n_embd);
	if (m->ap.embd_scale != 1.0f)
		for (size_t i = 0; i < (size_t)nb * n_embd; i++)
			c->x[i] *= m->ap.embd_scale;
	rope_tables(c, c->pos, nb);
	/* tokens whose output the last layer must compute: all, the last one, or none */
	int n_last = !logits ? 0 : all ? nb : 1;
	for (int il = 0; il < in->n_layer; il++) {
		int n_out = il == in->n_layer - 1 ? n_last : nb;
		attention_block(c, il, nb, n_out);
		if (n_out)
			ffn_block(c, il, c->x + (size_t)(nb - n_out) * n_embd, n_out);
	}
	c->pos += nb;
	if (!logits)
		return;
	int first = nb - n_last;
	for (int t = first; t < nb; t++)
		rmsnorm(c->x + (size_t)t * n_embd, m->output_norm, c->xn + (size_t)(t - first) * n_embd, n_embd,
		        in->rms_eps);
	matmul(c->tp, c->prec, &m->output, c->xn, nb - first, logits);
	lora_add(c, m->lora_output, c->xn, nb - first, logits);
	if (m->ap.final_softcap > 0)
		arch_softcap(logits, (size_t)(nb - first) * (size_t)in->n_vocab, m->ap.final_softcap);
}

enum rterror model_eval(struct model_ctx *c, const int32_t *tokens, int32_t n_tokens, float *logits,
                        bool all_logits, char **reterr)
{
	const struct model_info *in = &c->m->info;
	if (n_tokens <= 0 || !tokens)
		return rterror_set(reterr, RTERROR_INVALID, "model_eval: no tokens");
	for (int32_t i = 0; i < n_tokens; i++)
		if (tokens[i] < 0 || tokens[i] >= in->n_vocab)
			return rterror_set(reterr, RTERROR_INVALID, "token %d at index %d is outside the vocabulary of %d",
			                   tokens[i], i, in->n_vocab);
	if (n_tokens > c->n_ctx - c->pos)
		return rterror_set(reterr, RTERROR_LIMIT,
		                   "context full: %d positions used, %d more do not fit in %d", c->pos, n_tokens,
		                   c->n_ctx);
	for (int32_t done = 0; done < n_tokens;) {
		int nb = n_tokens - done < MODEL_UBATCH ? n_tokens - done : MODEL_UBATCH;
		float *out = NULL;
		if (logits && all_logits)
			out = logits + (size_t)done * in->n_vocab;
		else if (logits && done + nb == n_tokens)
			out = logits;
		eval_ubatch(c, tokens + done, nb, out, all_logits);
		done += nb;
	}
	return RTERROR_OK;
}

/* --- saved KV states --- */

size_t model_ctx_state_size(const struct model_ctx *c, int32_t n)
{
	return 2 * (size_t)c->m->info.n_layer * (size_t)n * kv_dim(c->m) * sizeof(float);
}

void model_ctx_save(const struct model_ctx *c, int32_t n, void *dst)
{
	size_t kvd = kv_dim(c->m), per = (size_t)n * kvd;
	float *d = dst;
	for (int il = 0; il < c->m->info.n_layer; il++) {
		size_t at = (size_t)il * (size_t)c->n_ctx * kvd;
		memcpy(d, c->k_cache + at, per * sizeof(float));
		memcpy(d + per, c->v_cache + at, per * sizeof(float));
		d += 2 * per;
	}
}

void model_ctx_restore(struct model_ctx *c, int32_t n, const void *src)
{
	size_t kvd = kv_dim(c->m), per = (size_t)n * kvd;
	const float *s = src;
	for (int il = 0; il < c->m->info.n_layer; il++) {
		size_t at = (size_t)il * (size_t)c->n_ctx * kvd;
		memcpy(c->k_cache + at, s, per * sizeof(float));
		memcpy(c->v_cache + at, s + per, per * sizeof(float));
		s += 2 * per;
	}
	c->pos = n;
}
