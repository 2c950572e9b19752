/* test_forward: the forward pass against a plain double-precision one, on
 * models of many shapes built here in memory.
 *
 * The shared references cover two shapes; these cases cover what they do not:
 * other head counts and grouping ratios, a head size that is not n_embd /
 * n_head, RoPE over part of each head, rope_freqs factors, untied and tied
 * outputs, F16 and Q8_0 weights, and prompts longer than one micro-batch. The
 * reference below is written for clarity, one token at a time, in double, on
 * the weights as quant_dequantize_row() decodes them.
 *
 * The phi3, gemma2 and gemma3 shapes add what their shared references cannot
 * reach: sliding windows far shorter than a prompt of two micro-batches,
 * default and explicit soft-caps, gemma3's local and global RoPE bases with
 * linear scaling, and phi3's LongRoPE factors and attention factor. GELU is
 * the reference engine's F16 table, emulated here in double. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/gguf.h"
#include "runtime/model.h"
#include "runtime/model_internal.h"
#include "tests/runtime/tap.h"

struct shape {
	const char *name;
	const char *arch;
	int n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_vocab, n_rot;
	float base, eps;
	bool tied, rope_freqs;
	enum quant_type wtype;
	int n_prompt;
	int n_swa;                 /* attention.sliding_window (phi3, gemma); 0: none written */
	float attn_cap, final_cap; /* soft-caps written (gemma); 0: none written */
	float rope_factor;         /* gemma3: rope.scaling linear factor; phi3: LongRoPE's attn_factor */
};

static bool is_gemma(const struct shape *s)
{
	return strncmp(s->arch, "gemma", 5) == 0;
}

static bool is_arch(const struct shape *s, const char *a)
{
	return strcmp(s->arch, a) == 0;
}

/* ---- a small GGUF writer ---- */

struct buf {
	uint8_t *p;
	size_t n, cap;
};

static void put(struct buf *b, const void *src, size_t n)
{
	if (b->n + n > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 4096;
		while (cap < b->n + n)
			cap *= 2;
		b->p = realloc(b->p, cap);
		if (!b->p)
			abort();
		b->cap = cap;
	}
	if (n)
		memcpy(b->p + b->n, src, n);
	b->n += n;
}

static void put_u32(struct buf *b, uint32_t v)
{
	put(b, &v, 4);
}

static void put_u64(struct buf *b, uint64_t v)
{
	put(b, &v, 8);
}

static void put_str(struct buf *b, const char *s)
{
	put_u64(b, strlen(s));
	put(b, s, strlen(s));
}

static void kv_u32(struct buf *b, int *n, const char *arch, const char *key, uint32_t v)
{
	char k[128];
	snprintf(k, sizeof k, "%s.%s", arch, key);
	put_str(b, k);
	put_u32(b, GGUF_VT_UINT32);
	put_u32(b, v);
	(*n)++;
}

static void kv_str(struct buf *b, int *n, const char *arch, const char *key, const char *v)
{
	char k[128];
	snprintf(k, sizeof k, "%s.%s", arch, key);
	put_str(b, k);
	put_u32(b, GGUF_VT_STRING);
	put_str(b, v);
	(*n)++;
}

static void kv_f32(struct buf *b, int *n, const char *arch, const char *key, float v)
{
	char k[128];
	snprintf(k, sizeof k, "%s.%s", arch, key);
	put_str(b, k);
	put_u32(b, GGUF_VT_FLOAT32);
	put(b, &v, 4);
	(*n)++;
}

struct tensor_spec {
	char name[64];
	int64_t ne0, ne1;
	enum quant_type type;
	float std, mean;
};

static uint64_t rng = 88172645463325252ull;

static double urand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) / 9007199254740992.0;
}

static float nrand(void)
{
	double u1 = urand() + 1e-12, u2 = urand();
	return (float)(sqrt(-2 * log(u1)) * cos(2 * M_PI * u2));
}

/* Random data for a tensor in its type: Q8_0 as random codes under a scale of std/64. */
static void put_tensor_data(struct buf *b, const struct tensor_spec *t)
{
	int64_t n = t->ne0 * t->ne1;
	for (int64_t i = 0; i < n;) {
		if (t->type == QUANT_Q8_0) {
			struct block_q8_0 blk;
			blk.d = quant_f32_to_f16(t->std / 64);
			for (int j = 0; j < QK8_0; j++)
				blk.qs[j] = (int8_t)(urand() * 255 - 127);
			put(b, &blk, sizeof blk);
			i += QK8_0;
			continue;
		}
		float v = t->mean + t->std * nrand();
		if (t->type == QUANT_F16) {
			quant_f16 h = quant_f32_to_f16(v);
			put(b, &h, 2);
		} else {
			put(b, &v, 4);
		}
		i++;
	}
}

static int add_spec(struct tensor_spec *ts, int n, const char *name, int64_t ne0, int64_t ne1,
                    enum quant_type type, float std, float mean)
{
	snprintf(ts[n].name, sizeof ts[n].name, "%s", name);
	ts[n].ne0 = ne0;
	ts[n].ne1 = ne1;
	ts[n].type = type;
	ts[n].std = std;
	ts[n].mean = mean;
	return n + 1;
}

static int tensor_specs(const struct shape *s, struct tensor_spec *ts)
{
	int hd = s->head_dim ? s->head_dim : s->n_embd / s->n_head;
	int nq = s->n_head * hd, nkv = s->n_head_kv * hd, n = 0;
	enum quant_type w = s->wtype;
	n = add_spec(ts, n, "token_embd.weight", s->n_embd, s->n_vocab, w, 0.5f, 0);
	n = add_spec(ts, n, "output_norm.weight", s->n_embd, 1, QUANT_F32, 0.1f, 1);
	if (!s->tied)
		n = add_spec(ts, n, "output.weight", s->n_embd, s->n_vocab, w, 0.1f, 0);
	if (s->rope_freqs && is_arch(s, "phi3")) {
		n = add_spec(ts, n, "rope_factors_short.weight", (s->n_rot ? s->n_rot : hd) / 2, 1, QUANT_F32, 0.3f, 1.5f);
		n = add_spec(ts, n, "rope_factors_long.weight", (s->n_rot ? s->n_rot : hd) / 2, 1, QUANT_F32, 0.5f, 3);
	} else if (s->rope_freqs) {
		n = add_spec(ts, n, "rope_freqs.weight", (s->n_rot ? s->n_rot : hd) / 2, 1, QUANT_F32, 0.5f, 2);
	}
	for (int l = 0; l < s->n_layer; l++) {
		char nm[64];
#define T(suffix, a, b_, type, sd, mu)                                     \
	snprintf(nm, sizeof nm, "blk.%d.%s", l, suffix);                       \
	n = add_spec(ts, n, nm, a, b_, type, sd, mu);
		T("attn_norm.weight", s->n_embd, 1, QUANT_F32, 0.1f, 1)
		T("ffn_norm.weight", s->n_embd, 1, QUANT_F32, 0.1f, 1)
		if (is_arch(s, "phi3")) {
			T("attn_qkv.weight", s->n_embd, nq + 2 * nkv, w, 0.3f, 0)
			T("ffn_up.weight", s->n_embd, 2 * s->n_ff, w, 0.2f, 0)
		} else {
			T("attn_q.weight", s->n_embd, nq, w, 0.3f, 0)
			T("attn_k.weight", s->n_embd, nkv, w, 0.3f, 0)
			T("attn_v.weight", s->n_embd, nkv, w, 0.2f, 0)
			T("ffn_gate.weight", s->n_embd, s->n_ff, w, 0.2f, 0)
			T("ffn_up.weight", s->n_embd, s->n_ff, w, 0.2f, 0)
		}
		T("attn_output.weight", nq, s->n_embd, w, 0.1f, 0)
		if (is_gemma(s)) {
			T("post_attention_norm.weight", s->n_embd, 1, QUANT_F32, 0.1f, 1)
			T("post_ffw_norm.weight", s->n_embd, 1, QUANT_F32, 0.1f, 1)
		}
		if (is_arch(s, "gemma3")) {
			T("attn_q_norm.weight", hd, 1, QUANT_F32, 0.1f, 1.5f)
			T("attn_k_norm.weight", hd, 1, QUANT_F32, 0.1f, 1.5f)
		}
		T("ffn_down.weight", s->n_ff, s->n_embd, w, 0.1f, 0)
		if (strcmp(s->arch, "qwen2") == 0) {
			T("attn_q.bias", nq, 1, QUANT_F32, 0.2f, 0)
			T("attn_k.bias", nkv, 1, QUANT_F32, 0.2f, 0)
			T("attn_v.bias", nkv, 1, QUANT_F32, 0.05f, 0)
		}
#undef T
	}
	return n;
}

static void build_model(const struct shape *s, struct buf *b)
{
	static struct tensor_spec ts[512];
	int nt = tensor_specs(s, ts), nkv = 0;
	struct buf kv = {0};
	put_str(&kv, "general.architecture");
	put_u32(&kv, GGUF_VT_STRING);
	put_str(&kv, s->arch);
	nkv++;
	kv_u32(&kv, &nkv, s->arch, "context_length", 2048);
	kv_u32(&kv, &nkv, s->arch, "embedding_length", (uint32_t)s->n_embd);
	kv_u32(&kv, &nkv, s->arch, "block_count", (uint32_t)s->n_layer);
	kv_u32(&kv, &nkv, s->arch, "feed_forward_length", (uint32_t)s->n_ff);
	kv_u32(&kv, &nkv, s->arch, "attention.head_count", (uint32_t)s->n_head);
	kv_u32(&kv, &nkv, s->arch, "attention.head_count_kv", (uint32_t)s->n_head_kv);
	kv_f32(&kv, &nkv, s->arch, "rope.freq_base", s->base);
	kv_f32(&kv, &nkv, s->arch, "attention.layer_norm_rms_epsilon", s->eps);
	if (s->head_dim) {
		kv_u32(&kv, &nkv, s->arch, "attention.key_length", (uint32_t)s->head_dim);
		kv_u32(&kv, &nkv, s->arch, "attention.value_length", (uint32_t)s->head_dim);
	}
	if (s->n_rot)
		kv_u32(&kv, &nkv, s->arch, "rope.dimension_count", (uint32_t)s->n_rot);
	if (s->n_swa)
		kv_u32(&kv, &nkv, s->arch, "attention.sliding_window", (uint32_t)s->n_swa);
	if (s->attn_cap > 0)
		kv_f32(&kv, &nkv, s->arch, "attn_logit_softcapping", s->attn_cap);
	if (s->final_cap > 0)
		kv_f32(&kv, &nkv, s->arch, "final_logit_softcapping", s->final_cap);
	if (s->rope_factor > 0 && is_arch(s, "gemma3")) {
		kv_str(&kv, &nkv, s->arch, "rope.scaling.type", "linear");
		kv_f32(&kv, &nkv, s->arch, "rope.scaling.factor", s->rope_factor);
	}
	if (s->rope_factor > 0 && is_arch(s, "phi3")) {
		kv_f32(&kv, &nkv, s->arch, "rope.scaling.attn_factor", s->rope_factor);
		kv_u32(&kv, &nkv, s->arch, "rope.scaling.original_context_length", 256);
	}
	b->n = 0;
	put(b, "GGUF", 4);
	put_u32(b, 3);
	put_u64(b, (uint64_t)nt);
	put_u64(b, (uint64_t)nkv);
	put(b, kv.p, kv.n);
	free(kv.p);
	uint64_t off = 0;
	for (int i = 0; i < nt; i++) {
		put_str(b, ts[i].name);
		bool vec = ts[i].ne1 == 1;
		put_u32(b, vec ? 1 : 2);
		put_u64(b, (uint64_t)ts[i].ne0);
		if (!vec)
			put_u64(b, (uint64_t)ts[i].ne1);
		put_u32(b, ts[i].type);
		put_u64(b, off);
		off += quant_row_size(ts[i].type, ts[i].ne0) * (uint64_t)ts[i].ne1;
		off = (off + 31) / 32 * 32;
	}
	static const uint8_t zero[32];
	put(b, zero, (32 - b->n % 32) % 32);
	size_t data0 = b->n;
	for (int i = 0; i < nt; i++) {
		put_tensor_data(b, &ts[i]);
		put(b, zero, (32 - (b->n - data0) % 32) % 32);
	}
}

/* ---- the double-precision reference ---- */

#define REF_TENSORS 16

struct ref_layer {
	/* in the order of ref_names; for phi3, wq..wv point into qkv, gate and up into gate_up */
	double *t[REF_TENSORS];
	double *qkv, *gate_up;
};

enum { R_ATTN_NORM, R_FFN_NORM, R_Q, R_K, R_V, R_O, R_GATE, R_UP, R_DOWN, R_BQ, R_BK, R_BV, R_POST_ATTN,
       R_POST_FFN, R_Q_NORM, R_K_NORM };

static const char *const ref_names[REF_TENSORS] = {
	"attn_norm.weight", "ffn_norm.weight", "attn_q.weight",     "attn_k.weight",
	"attn_v.weight",    "attn_output.weight", "ffn_gate.weight", "ffn_up.weight",
	"ffn_down.weight",  "attn_q.bias",      "attn_k.bias",       "attn_v.bias",
	"post_attention_norm.weight", "post_ffw_norm.weight", "attn_q_norm.weight", "attn_k_norm.weight"};

struct ref {
	const struct shape *s;
	int hd, nq, nkv, n_rot;
	double *embd, *out, *out_norm, *freqs;
	struct ref_layer *l;
	double *kc, *vc; /* [layer][pos][nkv] */
	int n_pos;
};

static double *deq(const struct gguf_file *g, const char *name)
{
	const struct gguf_tensor *t = gguf_find_tensor(g, name);
	if (!t)
		return NULL;
	int64_t n = t->ne[0] * t->ne[1];
	float *f = malloc((size_t)n * sizeof *f);
	double *d = malloc((size_t)n * sizeof *d);
	quant_dequantize_row(t->type, t->data, f, n);
	for (int64_t i = 0; i < n; i++)
		d[i] = f[i];
	free(f);
	return d;
}

static void ref_init(struct ref *r, const struct shape *s, const struct gguf_file *g, int max_pos)
{
	memset(r, 0, sizeof *r);
	r->s = s;
	r->hd = s->head_dim ? s->head_dim : s->n_embd / s->n_head;
	r->nq = s->n_head * r->hd;
	r->nkv = s->n_head_kv * r->hd;
	r->n_rot = s->n_rot ? s->n_rot : r->hd;
	r->embd = deq(g, "token_embd.weight");
	r->out = s->tied ? deq(g, "token_embd.weight") : deq(g, "output.weight");
	r->out_norm = deq(g, "output_norm.weight");
	/* the context (1024) is above the LongRoPE shape's original 256: its long factors */
	r->freqs = is_arch(s, "phi3") ? deq(g, "rope_factors_long.weight") : deq(g, "rope_freqs.weight");
	r->l = calloc((size_t)s->n_layer, sizeof *r->l);
	for (int i = 0; i < s->n_layer; i++) {
		char nm[80];
		struct ref_layer *l = &r->l[i];
		for (int j = 0; j < REF_TENSORS; j++) {
			snprintf(nm, sizeof nm, "blk.%d.%s", i, ref_names[j]);
			l->t[j] = deq(g, nm);
		}
		if (is_arch(s, "phi3")) {
			snprintf(nm, sizeof nm, "blk.%d.attn_qkv.weight", i);
			l->qkv = deq(g, nm);
			l->t[R_Q] = l->qkv;
			l->t[R_K] = l->qkv + (size_t)r->nq * s->n_embd;
			l->t[R_V] = l->qkv + (size_t)(r->nq + r->nkv) * s->n_embd;
			l->gate_up = l->t[R_UP]; /* ffn_up holds the gate's rows, then the up projection's */
			l->t[R_GATE] = l->gate_up;
			l->t[R_UP] = l->gate_up + (size_t)s->n_ff * s->n_embd;
		}
	}
	r->kc = calloc((size_t)s->n_layer * max_pos * r->nkv, sizeof(double));
	r->vc = calloc((size_t)s->n_layer * max_pos * r->nkv, sizeof(double));
}

static void ref_done(struct ref *r)
{
	for (int i = 0; i < r->s->n_layer; i++) {
		struct ref_layer *l = &r->l[i];
		for (int j = 0; j < REF_TENSORS; j++)
			if (!l->qkv || (j != R_Q && j != R_K && j != R_V && j != R_GATE && j != R_UP))
				free(l->t[j]);
		free(l->qkv);
		free(l->gate_up);
	}
	free(r->l);
	free(r->embd);
	free(r->out);
	free(r->out_norm);
	free(r->freqs);
	free(r->kc);
	free(r->vc);
}

static void matvec(const double *w, const double *x, double *y, int n_in, int n_out, const double *bias)
{
	for (int o = 0; o < n_out; o++) {
		double s = bias ? bias[o] : 0;
		for (int k = 0; k < n_in; k++)
			s += w[(size_t)o * n_in + k] * x[k];
		y[o] = s;
	}
}

static void rms(const double *x, const double *w, double *y, int n, double eps)
{
	double ss = 0;
	for (int i = 0; i < n; i++)
		ss += x[i] * x[i];
	double sc = 1 / sqrt(ss / n + eps);
	for (int i = 0; i < n; i++)
		y[i] = x[i] * sc * w[i];
}

/* Whether layer il applies the sliding window. */
static bool windowed(const struct shape *s, int il)
{
	if (!s->n_swa)
		return false;
	if (is_arch(s, "gemma2"))
		return il % 2 == 0;
	if (is_arch(s, "gemma3"))
		return il % 6 != 5;
	return true;
}

static void rope(const struct ref *r, double *v, int n_heads, int pos, int il)
{
	const struct shape *s = r->s;
	bool neox = !is_arch(s, "llama");
	double base = s->base, scale = 1, mscale = 1;
	if (is_arch(s, "gemma3") && windowed(s, il))
		base = 10000; /* local layers' own base */
	else if (is_arch(s, "gemma3") && s->rope_factor > 0)
		scale = 1.0 / s->rope_factor;
	if (is_arch(s, "phi3") && s->rope_factor > 0)
		mscale = s->rope_factor;
	int half = r->n_rot / 2;
	for (int h = 0; h < n_heads; h++) {
		double *x = v + h * r->hd;
		for (int i = 0; i < half; i++) {
			double th = pos * pow(base, -2.0 * i / r->n_rot) / (r->freqs ? r->freqs[i] : 1.0) * scale;
			int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
			double x0 = x[a], x1 = x[b];
			x[a] = (x0 * cos(th) - x1 * sin(th)) * mscale;
			x[b] = (x0 * sin(th) + x1 * cos(th)) * mscale;
		}
	}
}

static double attn_cap(const struct shape *s)
{
	if (is_arch(s, "gemma2"))
		return s->attn_cap > 0 ? s->attn_cap : 50; /* the default when the file has none */
	return 0;
}

static void attend(const struct ref *r, int il, int pos, const double *q, double *att)
{
	const struct shape *s = r->s;
	double *sc = malloc((size_t)(pos + 1) * sizeof *sc), cap = attn_cap(s);
	int j0 = windowed(s, il) && pos + 1 > s->n_swa ? pos + 1 - s->n_swa : 0;
	for (int h = 0; h < s->n_head; h++) {
		int kvh = h / (s->n_head / s->n_head_kv);
		double mx = -INFINITY, sum = 0;
		for (int j = j0; j <= pos; j++) {
			const double *k = r->kc + ((size_t)il * r->n_pos + j) * r->nkv + kvh * r->hd;
			double d = 0;
			for (int e = 0; e < r->hd; e++)
				d += q[h * r->hd + e] * k[e];
			sc[j] = d / sqrt((double)r->hd);
			if (cap > 0)
				sc[j] = cap * tanh(sc[j] / cap);
			mx = fmax(mx, sc[j]);
		}
		for (int j = j0; j <= pos; j++)
			sum += (sc[j] = exp(sc[j] - mx));
		for (int e = 0; e < r->hd; e++) {
			double o = 0;
			for (int j = j0; j <= pos; j++)
				o += sc[j] / sum * r->vc[((size_t)il * r->n_pos + j) * r->nkv + kvh * r->hd + e];
			att[h * r->hd + e] = o;
		}
	}
	free(sc);
}

/* The reference engine's GELU: an F16 table of the tanh form, read at the input rounded to F16. */
static double gelu_table(double x)
{
	if (x <= -10)
		return 0;
	if (x >= 10)
		return x;
	double y = quant_f16_to_f32(quant_f32_to_f16((float)x));
	double g = 0.5 * y * (1 + tanh(0.7978845608028654 * y * (1 + 0.044715 * y * y)));
	return quant_f16_to_f32(quant_f32_to_f16((float)g));
}

static void head_norms(double *v, int n_heads, int hd, const double *w, double eps)
{
	for (int h = 0; w && h < n_heads; h++)
		rms(v + h * hd, w, v + h * hd, hd, eps);
}

/* x += norm(o) with the optional post-norm w (gemma), else x += o. */
static void add_out(double *x, double *o, const double *w, int n, double eps)
{
	if (w)
		rms(o, w, o, n, eps);
	for (int i = 0; i < n; i++)
		x[i] += o[i];
}

/* One token at position pos; logits gets n_vocab values. */
static void ref_step(struct ref *r, int token, int pos, double *logits)
{
	const struct shape *s = r->s;
	int E = s->n_embd;
	double *x = malloc((size_t)E * sizeof *x), *xn = malloc((size_t)E * sizeof *xn);
	double *q = malloc((size_t)r->nq * sizeof *q), *att = malloc((size_t)r->nq * sizeof *att);
	double *g = malloc((size_t)s->n_ff * sizeof *g), *u = malloc((size_t)s->n_ff * sizeof *u);
	memcpy(x, r->embd + (size_t)token * E, (size_t)E * sizeof *x);
	for (int i = 0; is_gemma(s) && i < E; i++)
		x[i] *= sqrt((double)E);
	for (int il = 0; il < s->n_layer; il++) {
		double *const *t = r->l[il].t;
		double *k = r->kc + ((size_t)il * r->n_pos + pos) * r->nkv;
		double *v = r->vc + ((size_t)il * r->n_pos + pos) * r->nkv;
		rms(x, t[R_ATTN_NORM], xn, E, s->eps);
		matvec(t[R_Q], xn, q, E, r->nq, t[R_BQ]);
		matvec(t[R_K], xn, k, E, r->nkv, t[R_BK]);
		matvec(t[R_V], xn, v, E, r->nkv, t[R_BV]);
		head_norms(q, s->n_head, r->hd, t[R_Q_NORM], s->eps);
		head_norms(k, s->n_head_kv, r->hd, t[R_K_NORM], s->eps);
		rope(r, q, s->n_head, pos, il);
		rope(r, k, s->n_head_kv, pos, il);
		attend(r, il, pos, q, att);
		matvec(t[R_O], att, xn, r->nq, E, NULL);
		add_out(x, xn, t[R_POST_ATTN], E, s->eps);
		rms(x, t[R_FFN_NORM], xn, E, s->eps);
		matvec(t[R_GATE], xn, g, E, s->n_ff, NULL);
		matvec(t[R_UP], xn, u, E, s->n_ff, NULL);
		for (int i = 0; i < s->n_ff; i++)
			g[i] = (is_gemma(s) ? gelu_table(g[i]) : g[i] / (1 + exp(-g[i]))) * u[i];
		matvec(t[R_DOWN], g, xn, s->n_ff, E, NULL);
		add_out(x, xn, t[R_POST_FFN], E, s->eps);
	}
	rms(x, r->out_norm, xn, E, s->eps);
	matvec(r->out, xn, logits, E, s->n_vocab, NULL);
	double cap = is_arch(s, "gemma2") && s->final_cap <= 0 ? 30 : s->final_cap; /* gemma2's default */
	for (int i = 0; cap > 0 && i < s->n_vocab; i++)
		logits[i] = cap * tanh(logits[i] / cap);
	free(x);
	free(xn);
	free(q);
	free(att);
	free(g);
	free(u);
}

/* ---- the comparison ---- */

#define N_STEPS 3

static void test_shape(const struct shape *s)
{
	struct buf b = {0};
	build_model(s, &b);
	struct gguf_file *g = NULL;
	struct model *m = NULL;
	char *msg = NULL, name[256];
	snprintf(name, sizeof name, "/forward/%s/load", s->name);
	bool ok = gguf_open_memory(b.p, b.n, &g, &msg) == RTERROR_OK;
	if (ok && model_load_gguf(g, &m, &msg) != RTERROR_OK) {
		gguf_close(g);
		ok = false;
	}
	if (!tap_ok(ok, name, "%s", msg ? msg : "")) {
		free(msg);
		free(b.p);
		return;
	}
	int n = s->n_prompt + N_STEPS, V = s->n_vocab;
	int32_t *toks = malloc((size_t)n * sizeof *toks);
	for (int i = 0; i < n; i++)
		toks[i] = (int32_t)(urand() * V) % V;
	float *got = malloc((size_t)n * V * sizeof *got);
	struct model_ctx *c = NULL;
	ok = model_ctx_new(m, 1024, 2, MATMUL_F32, &c, &msg) == RTERROR_OK &&
	     model_eval(c, toks, s->n_prompt, got, true, &msg) == RTERROR_OK;
	for (int i = s->n_prompt; ok && i < n; i++)
		ok = model_eval(c, &toks[i], 1, got + (size_t)i * V, false, &msg) == RTERROR_OK;
	struct ref r;
	ref_init(&r, s, model_gguf(m), n);
	r.n_pos = n;
	double *want = malloc((size_t)V * sizeof *want), worst = 0;
	for (int i = 0; ok && i < n; i++) {
		ref_step(&r, toks[i], i, want);
		double md = 0, mr = 0;
		for (int j = 0; j < V; j++) {
			md = fmax(md, fabs(got[(size_t)i * V + j] - want[j]));
			mr = fmax(mr, fabs(want[j]));
		}
		worst = fmax(worst, md / mr);
	}
	snprintf(name, sizeof name, "/forward/%s/logits", s->name);
	/* gemma: an F16 rounding of a GELU input that lands the other way moves the logits by ~1e-4 */
	double tol = is_gemma(s) ? 1e-3 : 1e-4;
	tap_ok(ok && worst < tol, name, "max relative error %.3g over %d positions %s", worst, n, msg ? msg : "");
	tap_diag("%s: max relative error %.3g", s->name, worst);
	/* the prompt again without logits (the last layer then only fills the cache): the
	 * following steps must not change */
	struct model_ctx *c2 = NULL;
	float *step = malloc((size_t)V * sizeof *step);
	double diff = 0;
	bool ok2 = ok && model_ctx_new(m, 1024, 1, MATMUL_F32, &c2, NULL) == RTERROR_OK &&
	           model_eval(c2, toks, s->n_prompt, NULL, false, NULL) == RTERROR_OK;
	for (int i = s->n_prompt; ok2 && i < n; i++) {
		ok2 = model_eval(c2, &toks[i], 1, step, false, NULL) == RTERROR_OK;
		for (int j = 0; j < V; j++)
			diff = fmax(diff, fabs(step[j] - got[(size_t)i * V + j]));
	}
	snprintf(name, sizeof name, "/forward/%s/prompt-without-logits", s->name);
	tap_ok(ok2 && diff < 1e-5, name, "steps differ by %.3g", diff);
	free(step);
	model_ctx_free(c2);
	ref_done(&r);
	free(want);
	free(got);
	free(toks);
	free(msg);
	model_ctx_free(c);
	model_free(m);
	free(b.p);
}

int main(void)
{
	static const struct shape shapes[] = {
		{"llama-gqa2-f32", "llama", 64, 2, 4, 2, 0, 96, 40, 0, 10000, 1e-5f, false, false, QUANT_F32, 20, 0, 0, 0, 0},
		{"qwen2-gqa6-tied-f16", "qwen2", 48, 2, 6, 1, 0, 64, 37, 0, 1e6f, 1e-6f, true, false, QUANT_F16, 20, 0, 0, 0, 0},
		{"llama-partial-rope-freqs-q8_0", "llama", 64, 1, 2, 2, 0, 64, 33, 16, 10000, 1e-5f, false, true,
		 QUANT_Q8_0, 17, 0, 0, 0, 0},
		{"llama-head-dim-24", "llama", 64, 2, 4, 2, 24, 96, 30, 0, 500000, 1e-5f, false, false, QUANT_F32, 15, 0, 0, 0, 0},
		{"qwen2-partial-rope", "qwen2", 64, 1, 4, 4, 0, 64, 29, 8, 1e6f, 1e-6f, false, false, QUANT_F32, 9, 0, 0, 0, 0},
		{"qwen2-long-prompt", "qwen2", 32, 1, 2, 1, 0, 32, 20, 0, 1e6f, 1e-6f, true, false, QUANT_F32, 700, 0, 0, 0, 0},
		/* fused q/k/v and gate/up, a window on every layer, LongRoPE with an attention factor */
		{"phi3-fused-window-longrope", "phi3", 64, 2, 4, 2, 0, 96, 40, 0, 10000, 1e-5f, false, true, QUANT_F32, 20,
		 12, 0, 0, 1.19f},
		{"phi3-partial-rope-q8_0", "phi3", 64, 1, 2, 2, 0, 64, 33, 16, 10000, 1e-5f, false, false, QUANT_Q8_0, 17, 0, 0, 0, 0},
		/* explicit caps, a head size that is not n_embd / n_head, F16 */
		{"gemma2-caps-head-dim-32-f16", "gemma2", 64, 2, 4, 2, 32, 96, 40, 0, 10000, 1e-6f, true, false, QUANT_F16,
		 20, 8, 5, 1, 0},
		/* the default caps (50, 30), a window far shorter than two micro-batches */
		{"gemma2-default-caps-long-prompt", "gemma2", 32, 2, 2, 1, 0, 64, 30, 0, 10000, 1e-6f, true, false,
		 QUANT_F32, 600, 24, 0, 0, 0},
		/* five local layers, a global one with linear RoPE scaling, a local one again */
		{"gemma3-pattern-rope-scaling", "gemma3", 32, 7, 4, 1, 16, 64, 30, 0, 1e6f, 1e-6f, true, false, QUANT_F32,
		 40, 8, 0, 1, 4},
		{"gemma3-long-prompt-q8_0", "gemma3", 32, 6, 2, 1, 0, 64, 30, 0, 1e6f, 1e-6f, true, false, QUANT_Q8_0,
		 560, 16, 0, 0, 0},
	};
	for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
		test_shape(&shapes[i]);
	return tap_done();
}
