/* gen_gguf: writes a GGUF v3 model with random weights, of any shape and
 * tensor type, that loads as a whole model (llama or qwen2 architecture with
 * a small synthetic SentencePiece vocabulary and a ChatML template).
 *
 * Two ways to fill the weights: "exact" draws normal floats (the spreads of
 * the shared synthetic models) and quantizes them with quant_quantize_row, so
 * the weights are plausible; "fast" fills quantized blocks with random bytes
 * and small random F16 scales, which is all a speed benchmark needs and lets a
 * 7B-shaped file be written in the time the disk takes. By default small
 * models are exact and large ones fast. The file is streamed tensor by
 * tensor; memory use stays at one chunk of rows whatever the model size.
 *
 * Quantization mixes follow the reference tool's rules as
 * ../shared/reference/speed.md describes them: the _M types put Q6_K on the
 * output projection and on attn_v/ffn_down of the layers that get more bits,
 * and a K-quant that does not fit a row (length not a multiple of 256) falls
 * back to Q5_0 (for Q4_K) or Q8_0 (for Q5_K and Q6_K; the reference would use
 * Q5_1 for Q5_K, a type this runtime does not compute with). */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/quant.h"

#define GEN_ALIGN 32
#define GEN_MAX_TENSORS 4096
#define GEN_CHUNK_BYTES (8u << 20)
#define GEN_MAX_DIM (1 << 20)

enum gen_ftype { FT_F32, FT_F16, FT_BF16, FT_Q8_0, FT_Q4_0, FT_Q5_0, FT_Q6_K, FT_Q4_K_M, FT_Q5_K_M, FT_COUNT };

static const struct {
	const char *name;
	uint32_t gguf_id; /* general.file_type */
	enum quant_type base;
} ftypes[FT_COUNT] = {
	[FT_F32] = {"F32", 0, QUANT_F32},        [FT_F16] = {"F16", 1, QUANT_F16},
	[FT_BF16] = {"BF16", 32, QUANT_BF16},    [FT_Q8_0] = {"Q8_0", 7, QUANT_Q8_0},
	[FT_Q4_0] = {"Q4_0", 2, QUANT_Q4_0},     [FT_Q5_0] = {"Q5_0", 8, QUANT_Q5_0},
	[FT_Q6_K] = {"Q6_K", 18, QUANT_Q6_K},    [FT_Q4_K_M] = {"Q4_K_M", 15, QUANT_Q4_K},
	[FT_Q5_K_M] = {"Q5_K_M", 17, QUANT_Q5_K},
};

struct gen_cfg {
	const char *out;
	bool qwen2;
	int64_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx;
	float rope_base, rms_eps;
	bool tied;
	enum gen_ftype ftype;
	uint64_t seed;
	int fill; /* 0 auto, 1 exact, 2 fast */
};

static const struct {
	const char *name;
	struct gen_cfg c;
} presets[] = {
	{"qwen2.5-7b", {.qwen2 = true, 3584, 28, 28, 4, 18944, 152064, 32768, 1e6f, 1e-6f, false}},
	{"mistral-7b", {.qwen2 = false, 4096, 32, 32, 8, 14336, 32768, 32768, 1e6f, 1e-5f, false}},
	{"qwen2.5-1.5b", {.qwen2 = true, 1536, 28, 12, 2, 8960, 151936, 32768, 1e6f, 1e-6f, true}},
	{"qwen2.5-0.5b", {.qwen2 = true, 896, 24, 14, 2, 4864, 151936, 32768, 1e6f, 1e-6f, true}},
	{"smollm2-360m", {.qwen2 = false, 960, 32, 15, 5, 2560, 49152, 8192, 1e5f, 1e-5f, true}},
	{"synth", {.qwen2 = false, 256, 3, 4, 2, 512, 512, 512, 1e4f, 1e-5f, false}},
};

struct gen_tensor {
	char name[64];
	int64_t ne0, ne1; /* ne1 == 1 for vectors */
	enum quant_type type;
	float std, mean;
	uint64_t offset, nbytes;
};

static uint64_t rng = 0x243f6a8885a308d3ull;

static inline uint64_t rng_next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static float rng_normal(void)
{
	double u = ((double)(rng_next() >> 11) + 1.0) / 9007199254740993.0;
	double v = (double)(rng_next() >> 11) / 9007199254740992.0;
	return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

/* The type of a 2-D tensor under the file type, with the K-quant fallbacks. */
static enum quant_type gen_type(const struct gen_cfg *c, const char *role, int64_t layer, int64_t row_len)
{
	enum quant_type t = ftypes[c->ftype].base;
	bool mix = c->ftype == FT_Q4_K_M || c->ftype == FT_Q5_K_M;
	if (mix) {
		int64_t n = c->n_layer;
		bool more_bits = layer >= 0 && (layer < n / 8 || layer >= 7 * n / 8 || (layer - n / 8) % 3 == 2);
		bool is_output = strcmp(role, "output") == 0 || (c->tied && strcmp(role, "token_embd") == 0);
		if (is_output || (more_bits && (strcmp(role, "attn_v") == 0 || strcmp(role, "ffn_down") == 0)))
			t = QUANT_Q6_K;
	}
	if (row_len % QK_K != 0) {
		if (t == QUANT_Q4_K)
			t = QUANT_Q5_0;
		else if (t == QUANT_Q5_K || t == QUANT_Q6_K)
			t = QUANT_Q8_0;
	}
	return t;
}

static int gen_add(struct gen_tensor *ts, int *n, const char *name, int64_t ne0, int64_t ne1,
                   enum quant_type type, float std, float mean)
{
	if (*n >= GEN_MAX_TENSORS)
		return -1;
	struct gen_tensor *t = &ts[(*n)++];
	snprintf(t->name, sizeof t->name, "%s", name);
	t->ne0 = ne0;
	t->ne1 = ne1;
	t->type = type;
	t->std = std;
	t->mean = mean;
	t->nbytes = quant_row_size(type, ne0) * (uint64_t)ne1;
	return t->nbytes ? 0 : -1;
}

static int gen_tensors(const struct gen_cfg *c, struct gen_tensor *ts)
{
	int n = 0, rc = 0;
	int64_t hd = c->n_embd / c->n_head, kv = hd * c->n_head_kv;
	char name[64];
	rc |= gen_add(ts, &n, "token_embd.weight", c->n_embd, c->n_vocab,
	              gen_type(c, "token_embd", -1, c->n_embd), 0.02f, 0);
	rc |= gen_add(ts, &n, "output_norm.weight", c->n_embd, 1, QUANT_F32, 0.1f, 1.0f);
	if (!c->tied)
		rc |= gen_add(ts, &n, "output.weight", c->n_embd, c->n_vocab, gen_type(c, "output", -1, c->n_embd),
		              0.02f, 0);
	for (int64_t il = 0; il < c->n_layer && rc == 0; il++) {
		static const struct {
			const char *role;
			int in, out; /* 0 n_embd, 1 kv dim, 2 n_ff */
			float std;
		} mats[] = {{"attn_q", 0, 0, 0.08f},   {"attn_k", 0, 1, 0.08f},  {"attn_v", 0, 1, 0.02f},
		            {"attn_output", 0, 0, 0.01f}, {"ffn_gate", 0, 2, 0.1f}, {"ffn_up", 0, 2, 0.1f},
		            {"ffn_down", 2, 0, 0.02f}};
		const int64_t dims[3] = {c->n_embd, kv, c->n_ff};
		snprintf(name, sizeof name, "blk.%lld.attn_norm.weight", (long long)il);
		rc |= gen_add(ts, &n, name, c->n_embd, 1, QUANT_F32, 0.1f, 1.0f);
		snprintf(name, sizeof name, "blk.%lld.ffn_norm.weight", (long long)il);
		rc |= gen_add(ts, &n, name, c->n_embd, 1, QUANT_F32, 0.1f, 1.0f);
		for (size_t m = 0; m < sizeof(mats) / sizeof(mats[0]); m++) {
			snprintf(name, sizeof name, "blk.%lld.%s.weight", (long long)il, mats[m].role);
			int64_t in = dims[mats[m].in], out = dims[mats[m].out];
			rc |= gen_add(ts, &n, name, in, out, gen_type(c, mats[m].role, il, in), mats[m].std, 0);
		}
		if (c->qwen2) {
			snprintf(name, sizeof name, "blk.%lld.attn_q.bias", (long long)il);
			rc |= gen_add(ts, &n, name, c->n_embd, 1, QUANT_F32, 0.2f, 0);
			snprintf(name, sizeof name, "blk.%lld.attn_k.bias", (long long)il);
			rc |= gen_add(ts, &n, name, kv, 1, QUANT_F32, 0.2f, 0);
			snprintf(name, sizeof name, "blk.%lld.attn_v.bias", (long long)il);
			rc |= gen_add(ts, &n, name, kv, 1, QUANT_F32, 0.02f, 0);
		}
	}
	return rc ? -1 : n;
}

/* ---- writing ---- */

static bool gen_ok = true;

static void put(FILE *f, const void *p, size_t n)
{
	if (n && fwrite(p, 1, n, f) != n)
		gen_ok = false;
}
static void put_u32(FILE *f, uint32_t v) { put(f, &v, 4); }
static void put_u64(FILE *f, uint64_t v) { put(f, &v, 8); }
static void put_str(FILE *f, const char *s, size_t n)
{
	put_u64(f, n);
	put(f, s, n);
}
static void kv_key(FILE *f, const char *k, uint32_t vtype)
{
	put_str(f, k, strlen(k));
	put_u32(f, vtype);
}
static void kv_u32(FILE *f, const char *k, uint32_t v) { kv_key(f, k, 4); put_u32(f, v); }
static void kv_f32(FILE *f, const char *k, float v) { kv_key(f, k, 6); put(f, &v, 4); }
static void kv_bool(FILE *f, const char *k, bool v) { uint8_t b = v; kv_key(f, k, 7); put(f, &b, 1); }
static void kv_str(FILE *f, const char *k, const char *v) { kv_key(f, k, 8); put_str(f, v, strlen(v)); }
static void kv_arch_u32(FILE *f, const struct gen_cfg *c, const char *k, uint32_t v)
{
	char key[96];
	snprintf(key, sizeof key, "%s.%s", c->qwen2 ? "qwen2" : "llama", k);
	kv_u32(f, key, v);
}
static void kv_arch_f32(FILE *f, const struct gen_cfg *c, const char *k, float v)
{
	char key[96];
	snprintf(key, sizeof key, "%s.%s", c->qwen2 ? "qwen2" : "llama", k);
	kv_f32(f, key, v);
}

#define GEN_N_SPECIAL 5
static const char *const specials[GEN_N_SPECIAL] = {"<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"};

/* Piece i of the vocabulary (unique for each i) into buf. */
static size_t gen_piece(int64_t i, char *buf, size_t cap)
{
	if (i < GEN_N_SPECIAL)
		return (size_t)snprintf(buf, cap, "%s", specials[i]);
	if (i < GEN_N_SPECIAL + 256)
		return (size_t)snprintf(buf, cap, "<0x%02X>", (unsigned)(i - GEN_N_SPECIAL));
	int64_t k = i - GEN_N_SPECIAL - 256;
	size_t n = 0;
	if (k % 2 == 0) { /* "▁" marks a word start, as SentencePiece writes spaces */
		memcpy(buf, "\xe2\x96\x81", 3);
		n = 3;
	}
	k /= 2;
	do {
		buf[n++] = (char)('a' + k % 26);
		k /= 26;
	} while (k > 0 && n + 1 < cap);
	buf[n] = 0;
	return n;
}

static void gen_write_vocab(FILE *f, const struct gen_cfg *c)
{
	char buf[32];
	kv_str(f, "tokenizer.ggml.model", "llama");
	kv_key(f, "tokenizer.ggml.tokens", 9);
	put_u32(f, 8);
	put_u64(f, (uint64_t)c->n_vocab);
	for (int64_t i = 0; i < c->n_vocab; i++) {
		size_t n = gen_piece(i, buf, sizeof buf);
		put_str(f, buf, n);
	}
	kv_key(f, "tokenizer.ggml.scores", 9);
	put_u32(f, 6);
	put_u64(f, (uint64_t)c->n_vocab);
	for (int64_t i = 0; i < c->n_vocab; i++) {
		float s = i < GEN_N_SPECIAL + 256 ? 0.0f : -(float)(i - GEN_N_SPECIAL - 256) / 16.0f;
		put(f, &s, 4);
	}
	kv_key(f, "tokenizer.ggml.token_type", 9);
	put_u32(f, 5);
	put_u64(f, (uint64_t)c->n_vocab);
	for (int64_t i = 0; i < c->n_vocab; i++) {
		int32_t t = i == 0 ? 2 : i < GEN_N_SPECIAL ? 3 : i < GEN_N_SPECIAL + 256 ? 6 : 1;
		put(f, &t, 4);
	}
	kv_u32(f, "tokenizer.ggml.bos_token_id", 1);
	kv_u32(f, "tokenizer.ggml.eos_token_id", 2);
	kv_u32(f, "tokenizer.ggml.eot_token_id", 4);
	kv_u32(f, "tokenizer.ggml.unknown_token_id", 0);
	kv_bool(f, "tokenizer.ggml.add_bos_token", true);
	kv_bool(f, "tokenizer.ggml.add_space_prefix", true);
	kv_str(f, "tokenizer.chat_template",
	       "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
	       "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
	       "{% endif %}");
}

static int gen_write_header(FILE *f, const struct gen_cfg *c, const struct gen_tensor *ts, int n)
{
	const int n_kv = 11 + 11;
	put(f, "GGUF", 4);
	put_u32(f, 3);
	put_u64(f, (uint64_t)n);
	put_u64(f, (uint64_t)n_kv);
	kv_str(f, "general.architecture", c->qwen2 ? "qwen2" : "llama");
	kv_str(f, "general.name", "quire random-weight test model");
	kv_u32(f, "general.file_type", ftypes[c->ftype].gguf_id);
	kv_arch_u32(f, c, "context_length", (uint32_t)c->n_ctx);
	kv_arch_u32(f, c, "embedding_length", (uint32_t)c->n_embd);
	kv_arch_u32(f, c, "block_count", (uint32_t)c->n_layer);
	kv_arch_u32(f, c, "feed_forward_length", (uint32_t)c->n_ff);
	kv_arch_u32(f, c, "attention.head_count", (uint32_t)c->n_head);
	kv_arch_u32(f, c, "attention.head_count_kv", (uint32_t)c->n_head_kv);
	kv_arch_f32(f, c, "rope.freq_base", c->rope_base);
	kv_arch_f32(f, c, "attention.layer_norm_rms_epsilon", c->rms_eps);
	gen_write_vocab(f, c);

	uint64_t off = 0;
	for (int i = 0; i < n; i++) {
		const struct gen_tensor *t = &ts[i];
		put_str(f, t->name, strlen(t->name));
		put_u32(f, t->ne1 > 1 ? 2 : 1);
		put_u64(f, (uint64_t)t->ne0);
		if (t->ne1 > 1)
			put_u64(f, (uint64_t)t->ne1);
		put_u32(f, (uint32_t)t->type);
		put_u64(f, off);
		off += (t->nbytes + GEN_ALIGN - 1) / GEN_ALIGN * GEN_ALIGN;
	}
	long pos = ftell(f);
	static const uint8_t zeros[GEN_ALIGN];
	if (pos < 0)
		return -1;
	put(f, zeros, (size_t)((GEN_ALIGN - pos % GEN_ALIGN) % GEN_ALIGN));
	return gen_ok ? 0 : -1;
}

/* Random F16 scale around mid (times 0.5 .. 1.5). */
static quant_f16 rand_scale(float mid)
{
	return quant_f32_to_f16(mid * (0.5f + (float)(rng_next() >> 40) / 16777216.0f));
}

/* Fast fill: random codes, then each block's scales made small and finite. */
static void gen_fast_blocks(enum quant_type type, uint8_t *p, size_t nbytes, float std)
{
	for (size_t i = 0; i + 8 <= nbytes; i += 8) {
		uint64_t r = rng_next();
		memcpy(p + i, &r, 8);
	}
	size_t bsz = quant_type_size(type);
	for (size_t b = 0; b + bsz <= nbytes; b += bsz) {
		quant_f16 d;
		switch (type) {
		case QUANT_Q8_0: d = rand_scale(std / 73.0f); memcpy(p + b, &d, 2); break;
		case QUANT_Q4_0: d = rand_scale(std / 4.6f); memcpy(p + b, &d, 2); break;
		case QUANT_Q5_0: d = rand_scale(std / 9.2f); memcpy(p + b, &d, 2); break;
		case QUANT_Q4_K:
		case QUANT_Q5_K: {
			float lv = type == QUANT_Q4_K ? 4.6f : 9.2f;
			quant_f16 dd[2] = {rand_scale(std / (31.0f * lv)), rand_scale(std / (31.0f * lv) * lv)};
			memcpy(p + b, dd, 4);
			break;
		}
		case QUANT_Q6_K:
			d = rand_scale(std / (64.0f * 18.0f));
			memcpy(p + b + offsetof(struct block_q6_K, d), &d, 2);
			break;
		default: break;
		}
	}
}

static int gen_write_tensor(FILE *f, const struct gen_tensor *t, bool fast, uint8_t *buf, float *row)
{
	size_t rb = quant_row_size(t->type, t->ne0);
	int64_t rows_per_chunk = (int64_t)(GEN_CHUNK_BYTES / rb);
	if (rows_per_chunk < 1)
		rows_per_chunk = 1;
	for (int64_t r0 = 0; r0 < t->ne1; r0 += rows_per_chunk) {
		int64_t nr = t->ne1 - r0 < rows_per_chunk ? t->ne1 - r0 : rows_per_chunk;
		if (fast && t->type != QUANT_F32 && t->type != QUANT_F16 && t->type != QUANT_BF16) {
			gen_fast_blocks(t->type, buf, rb * (size_t)nr, t->std);
		} else {
			for (int64_t r = 0; r < nr; r++) {
				for (int64_t i = 0; i < t->ne0; i++)
					row[i] = t->mean + t->std * (fast ? (float)((int64_t)(rng_next() >> 40) - 8388608) / 4843165.0f
					                                  : rng_normal());
				quant_quantize_row(t->type, row, buf + (size_t)r * rb, t->ne0);
			}
		}
		put(f, buf, rb * (size_t)nr);
	}
	static const uint8_t zeros[GEN_ALIGN];
	put(f, zeros, (size_t)((GEN_ALIGN - t->nbytes % GEN_ALIGN) % GEN_ALIGN));
	return gen_ok ? 0 : -1;
}

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: gen-gguf --out FILE [--shape NAME] [--type TYPE] [options]\n"
	        "  --shape qwen2.5-7b|mistral-7b|qwen2.5-1.5b|qwen2.5-0.5b|smollm2-360m|synth\n"
	        "  --type F32|F16|BF16|Q8_0|Q4_0|Q5_0|Q6_K|Q4_K_M|Q5_K_M (default Q4_K_M)\n"
	        "  --arch llama|qwen2 --n-embd N --n-layer N --n-head N --n-head-kv N --n-ff N\n"
	        "  --n-vocab N --ctx N --rope-base F --rms-eps F --tied | --untied --seed N\n"
	        "  --exact | --fast   (weights: quantized normal floats, or random blocks)\n");
}

static int parse_args(int argc, char **argv, struct gen_cfg *c)
{
	static const struct option opts[] = {
		{"out", 1, 0, 'o'},      {"shape", 1, 0, 's'},   {"type", 1, 0, 't'},      {"arch", 1, 0, 'a'},
		{"n-embd", 1, 0, 'e'},   {"n-layer", 1, 0, 'l'}, {"n-head", 1, 0, 'h'},    {"n-head-kv", 1, 0, 'k'},
		{"n-ff", 1, 0, 'f'},     {"n-vocab", 1, 0, 'v'}, {"ctx", 1, 0, 'c'},       {"rope-base", 1, 0, 'r'},
		{"rms-eps", 1, 0, 'p'},  {"tied", 0, 0, 'T'},    {"untied", 0, 0, 'U'},    {"seed", 1, 0, 'S'},
		{"exact", 0, 0, 'X'},    {"fast", 0, 0, 'F'},    {"help", 0, 0, '?'},      {0, 0, 0, 0},
	};
	*c = presets[5].c; /* synth */
	c->ftype = FT_Q4_K_M;
	c->seed = 1;
	int o;
	optind = 1;
	while ((o = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		char *end = NULL;
		long long v = 0;
		if (strchr("elhkfvcS", o)) {
			errno = 0;
			v = strtoll(optarg, &end, 10);
			if (errno || *end || v <= 0 || v > GEN_MAX_DIM * 16LL) {
				fprintf(stderr, "gen-gguf: bad number: %s\n", optarg);
				return -1;
			}
		}
		switch (o) {
		case 'o': c->out = optarg; break;
		case 's': {
			size_t i;
			for (i = 0; i < sizeof(presets) / sizeof(presets[0]); i++)
				if (strcmp(optarg, presets[i].name) == 0)
					break;
			if (i == sizeof(presets) / sizeof(presets[0])) {
				fprintf(stderr, "gen-gguf: unknown shape %s\n", optarg);
				return -1;
			}
			enum gen_ftype ft = c->ftype;
			const char *out = c->out;
			*c = presets[i].c;
			c->ftype = ft;
			c->out = out;
			c->seed = 1;
			break;
		}
		case 't': {
			int i;
			for (i = 0; i < FT_COUNT && strcmp(optarg, ftypes[i].name) != 0; i++)
				;
			if (i == FT_COUNT) {
				fprintf(stderr, "gen-gguf: unknown type %s\n", optarg);
				return -1;
			}
			c->ftype = (enum gen_ftype)i;
			break;
		}
		case 'a': c->qwen2 = strcmp(optarg, "qwen2") == 0; break;
		case 'e': c->n_embd = v; break;
		case 'l': c->n_layer = v; break;
		case 'h': c->n_head = v; break;
		case 'k': c->n_head_kv = v; break;
		case 'f': c->n_ff = v; break;
		case 'v': c->n_vocab = v; break;
		case 'c': c->n_ctx = v; break;
		case 'r': c->rope_base = strtof(optarg, NULL); break;
		case 'p': c->rms_eps = strtof(optarg, NULL); break;
		case 'T': c->tied = true; break;
		case 'U': c->tied = false; break;
		case 'S': c->seed = (uint64_t)v; break;
		case 'X': c->fill = 1; break;
		case 'F': c->fill = 2; break;
		default: usage(o == '?' ? stdout : stderr); return -1;
		}
	}
	if (!c->out || c->n_embd % c->n_head != 0 || c->n_head % c->n_head_kv != 0 ||
	    c->n_vocab < GEN_N_SPECIAL + 256 + 2 || c->n_embd % 32 != 0 || c->n_ff % 32 != 0 ||
	    c->n_embd > GEN_MAX_DIM || c->n_ff > GEN_MAX_DIM || c->n_layer > 1024) {
		fprintf(stderr, "gen-gguf: need --out, n_embd and n_ff multiples of 32, n_head dividing n_embd, "
		                "n_head_kv dividing n_head, n_vocab >= 263\n");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct gen_cfg c;
	if (parse_args(argc, argv, &c) != 0)
		return 2;
	static struct gen_tensor ts[GEN_MAX_TENSORS];
	int n = gen_tensors(&c, ts);
	if (n < 0) {
		fprintf(stderr, "gen-gguf: a tensor's rows do not fit its type's blocks\n");
		return 2;
	}
	uint64_t params = 0;
	for (int i = 0; i < n; i++)
		params += (uint64_t)(ts[i].ne0 * ts[i].ne1);
	bool fast = c.fill == 2 || (c.fill == 0 && params > 50000000);
	rng ^= c.seed * 0x9e3779b97f4a7c15ull;
	for (int i = 0; i < 4; i++)
		rng_next();

	FILE *f = fopen(c.out, "wb");
	uint8_t *buf = malloc(GEN_CHUNK_BYTES + quant_row_size(QUANT_F32, GEN_MAX_DIM));
	float *row = malloc(sizeof(float) * (size_t)(c.n_ff > c.n_embd ? c.n_ff : c.n_embd));
	int rc = 1;
	if (!f || !buf || !row) {
		fprintf(stderr, "gen-gguf: %s: %s\n", c.out, strerror(errno));
		goto out;
	}
	if (gen_write_header(f, &c, ts, n) != 0)
		goto out;
	for (int i = 0; i < n; i++)
		if (gen_write_tensor(f, &ts[i], fast, buf, row) != 0)
			goto out;
	if (fflush(f) != 0 || !gen_ok)
		goto out;
	rc = 0;
	printf("wrote %s: %s %s, %d tensors, %llu parameters, %s weights\n", c.out, c.qwen2 ? "qwen2" : "llama",
	       ftypes[c.ftype].name, n, (unsigned long long)params, fast ? "random-block" : "quantized normal");
out:
	if (rc)
		fprintf(stderr, "gen-gguf: writing %s failed\n", c.out);
	if (f)
		fclose(f);
	free(buf);
	free(row);
	return rc;
}
