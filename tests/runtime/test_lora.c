/* test_lora: LoRA adapters applied without merging.
 *
 * For each architecture's shared F32 model, an adapter written here that
 * changes every weight matrix (fused ones included: phi3's attn_qkv and
 * ffn_up, whose rows the runtime splits) must give the logits of the same
 * model with the adapter merged into its weights, W + factor * B A, with
 * adapter tensors in F32, F16, BF16 and Q8_0 (merged as they decode). Several
 * adapters add up; an adapter that does not fit is refused with a message
 * naming why and leaves the model as it was. The shared references with
 * adapters are compared in test_model. Skips where ../shared is absent. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/gguf.h"
#include "runtime/model.h"
#include "runtime/model_internal.h"
#include "tests/runtime/tap.h"

static const char *shared;
static char tmpdir[256];

/* ---- an adapter file writer ---- */

struct buf {
	uint8_t *p;
	size_t n, cap;
};

static void put(struct buf *b, const void *src, size_t n)
{
	if (b->n + n > b->cap) {
		b->cap = (b->n + n) * 2 + 4096;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			abort();
	}
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

static void kv_str(struct buf *b, const char *k, const char *v)
{
	put_str(b, k);
	put_u32(b, GGUF_VT_STRING);
	put_str(b, v);
}

struct mat {
	char name[96];
	int64_t ne0, ne1;
	float *v; /* ne1 rows of ne0 */
};

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static float nrand(void)
{
	double u[2];
	for (int i = 0; i < 2; i++) {
		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		u[i] = (double)(rng >> 11) / 9007199254740992.0;
	}
	return (float)(sqrt(-2 * log(u[0] + 1e-12)) * cos(2 * M_PI * u[1]));
}

static enum quant_type adapter_type = QUANT_F32; /* of the tensors write_adapter() writes */

/* Rounds m's values to what adapter_type stores, so that merging uses what the runtime reads. */
static void round_to_type(struct mat *m)
{
	size_t row = quant_row_size(adapter_type, m->ne0);
	uint8_t *q = malloc(row);
	for (int64_t r = 0; r < m->ne1; r++) {
		quant_quantize_row(adapter_type, m->v + r * m->ne0, q, m->ne0);
		quant_dequantize_row(adapter_type, q, m->v + r * m->ne0, m->ne0);
	}
	free(q);
}

/* Writes an adapter of the given tensors (in adapter_type) to path; alpha < 0: no alpha key. */
static bool write_adapter(const char *path, const char *arch, const char *type, float alpha, const struct mat *t,
                          int n)
{
	struct buf b = {0};
	put(&b, "GGUF", 4);
	put_u32(&b, 3);
	put_u64(&b, (uint64_t)n);
	put_u64(&b, alpha < 0 ? 3 : 4);
	kv_str(&b, "general.architecture", arch);
	kv_str(&b, "general.type", type);
	kv_str(&b, "adapter.type", "lora");
	if (alpha >= 0) {
		put_str(&b, "adapter.lora.alpha");
		put_u32(&b, GGUF_VT_FLOAT32);
		put(&b, &alpha, 4);
	}
	uint64_t off = 0;
	for (int i = 0; i < n; i++) {
		put_str(&b, t[i].name);
		put_u32(&b, 2);
		put_u64(&b, (uint64_t)t[i].ne0);
		put_u64(&b, (uint64_t)t[i].ne1);
		put_u32(&b, adapter_type);
		put_u64(&b, off);
		off += (quant_row_size(adapter_type, t[i].ne0) * (uint64_t)t[i].ne1 + 31) / 32 * 32;
	}
	static const uint8_t zero[32];
	put(&b, zero, (32 - b.n % 32) % 32);
	for (int i = 0; i < n; i++) {
		size_t row = quant_row_size(adapter_type, t[i].ne0);
		uint8_t *q = malloc(row);
		for (int64_t r = 0; r < t[i].ne1; r++) {
			quant_quantize_row(adapter_type, t[i].v + r * t[i].ne0, q, t[i].ne0);
			put(&b, q, row);
		}
		free(q);
		put(&b, zero, (32 - (row * (size_t)t[i].ne1) % 32) % 32);
	}
	FILE *f = fopen(path, "wb");
	bool ok = f && fwrite(b.p, 1, b.n, f) == b.n;
	if (f)
		ok = fclose(f) == 0 && ok;
	free(b.p);
	return ok;
}

static void mat_new(struct mat *m, const char *name, const char *suffix, int64_t ne0, int64_t ne1, float std)
{
	snprintf(m->name, sizeof m->name, "%s.%s", name, suffix);
	m->ne0 = ne0;
	m->ne1 = ne1;
	m->v = malloc((size_t)(ne0 * ne1) * sizeof(float));
	for (int64_t i = 0; i < ne0 * ne1; i++)
		m->v[i] = std * nrand();
}

/* A rank-r pair (lora_a, lora_b) for every 2-D tensor of g but the token embedding. */
static int make_pairs(const struct gguf_file *g, int r, struct mat *out, int max)
{
	int n = 0;
	for (int64_t i = 0; i < gguf_n_tensors(g) && n + 2 <= max; i++) {
		const struct gguf_tensor *t = gguf_tensor_at(g, i);
		if (t->n_dims != 2 || strcmp(t->name, "token_embd.weight") == 0)
			continue;
		mat_new(&out[n++], t->name, "lora_a", t->ne[0], r, 0.05f);
		mat_new(&out[n++], t->name, "lora_b", r, t->ne[1], 0.05f);
	}
	return n;
}

/* Adds factor * B A to each adapted F32 tensor of g (whose data is the caller's writable buffer). */
static void merge(const struct gguf_file *g, const struct mat *p, int n, float factor)
{
	for (int k = 0; k + 1 < n; k += 2) {
		char base[96];
		snprintf(base, sizeof base, "%.*s", (int)(strlen(p[k].name) - 7), p[k].name);
		const struct gguf_tensor *t = gguf_find_tensor(g, base);
		float *w = (float *)t->data;
		int64_t n_in = t->ne[0], n_out = t->ne[1], r = p[k].ne1;
		for (int64_t o = 0; o < n_out; o++)
			for (int64_t i = 0; i < n_in; i++) {
				double s = 0;
				for (int64_t j = 0; j < r; j++)
					s += (double)p[k + 1].v[o * r + j] * p[k].v[j * n_in + i];
				w[o * n_in + i] += (float)(factor * s);
			}
	}
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *p = malloc((size_t)n);
	if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
		free(p);
		p = NULL;
	}
	fclose(f);
	*len = (size_t)n;
	return p;
}

/* The tokens of a batch: N_TOK, or N_LONG, whose rows of logits make an output
 * adapter's products (512 wide) more than a context's LoRA scratch holds at once */
enum { N_TOK = 10, N_LONG = 300 };

/* All n rows of logits of a batch of n tokens, F32 arithmetic; NULL on failure. */
static float *logits_of(const struct model *m, int n)
{
	int nv = model_get_info(m)->n_vocab;
	float *out = malloc((size_t)n * nv * sizeof *out);
	int32_t toks[N_LONG];
	for (int i = 0; i < n; i++)
		toks[i] = i == 0 ? 1 : (int32_t)((i * 7919u) % (unsigned)nv);
	struct model_ctx *c = NULL;
	bool ok = out && model_ctx_new(m, 512, 2, MATMUL_F32, &c, NULL) == RTERROR_OK &&
	          model_eval(c, toks, n, out, true, NULL) == RTERROR_OK;
	model_ctx_free(c);
	if (!ok) {
		free(out);
		return NULL;
	}
	return out;
}

static double rel_diff(const float *a, const float *b, size_t n)
{
	double md = 0, mr = 0;
	for (size_t i = 0; i < n; i++) {
		md = fmax(md, fabs((double)a[i] - b[i]));
		mr = fmax(mr, fabs((double)b[i]));
	}
	return mr > 0 ? md / mr : INFINITY;
}

/* Unmerged adapter == merged weights, for one architecture's F32 file. */
static void test_merged(const char *file, const char *arch, enum quant_type type, int rank, int n_tok, double tol)
{
	char path[4096], apath[512], name[256];
	snprintf(path, sizeof path, "%s/models/%s", shared, file);
	snprintf(apath, sizeof apath, "%s/%s-adapter.gguf", tmpdir, arch);
	size_t len;
	char *bytes = read_file(path, &len);
	struct gguf_file *g = NULL;
	struct model *merged = NULL, *m = NULL;
	static struct mat pairs[512];
	int n = 0;
	const float scale = 0.75f, alpha = 8.0f;
	adapter_type = type;
	bool ok = bytes && gguf_open_memory(bytes, len, &g, NULL) == RTERROR_OK;
	if (ok) {
		n = make_pairs(g, rank, pairs, 512);
		for (int i = 0; i < n; i++)
			round_to_type(&pairs[i]);
		merge(g, pairs, n, scale * alpha / rank);
		ok = model_load_gguf(g, &merged, NULL) == RTERROR_OK;
		if (!ok)
			gguf_close(g);
	}
	char *msg = NULL;
	ok = ok && write_adapter(apath, arch, "adapter", alpha, pairs, n) && model_load(path, &m, NULL) == RTERROR_OK &&
	     model_add_adapter(m, apath, scale, &msg) == RTERROR_OK;
	float *want = ok ? logits_of(merged, n_tok) : NULL, *got = ok ? logits_of(m, n_tok) : NULL;
	double d = want && got ? rel_diff(got, want, (size_t)n_tok * model_get_info(m)->n_vocab) : INFINITY;
	snprintf(name, sizeof name, "/lora/merged/%s/%s-rank%d", arch, quant_type_name(type), rank);
	tap_ok(ok && d <= tol && model_adapter(m, 0)->n_weights == n / 2, name, "max relative difference %.3g %s", d,
	       msg ? msg : "");
	tap_diag("%s, %s adapter of rank %d on %d weights: unmerged vs merged %.3g", arch, quant_type_name(type), rank,
	         n / 2, d);
	adapter_type = QUANT_F32;
	for (int i = 0; i < n; i++)
		free(pairs[i].v);
	free(msg);
	free(want);
	free(got);
	model_free(m);
	model_free(merged);
	free(bytes);
	unlink(apath);
}

/* Two adapters at 0.5 each are one at 1.0; a refused adapter changes nothing. */
static void test_several_and_errors(void)
{
	char base[4096], f32[4096], qwen[4096], bad[512];
	snprintf(base, sizeof base, "%s/models/synth-llama-F32.gguf", shared);
	snprintf(f32, sizeof f32, "%s/models/adapters/synth-llama-lora-r8-F32.gguf", shared);
	snprintf(qwen, sizeof qwen, "%s/models/adapters/synth-qwen2-lora-r8-F32.gguf", shared);
	struct model *one = NULL, *two = NULL;
	bool ok = model_load(base, &one, NULL) == RTERROR_OK && model_load(base, &two, NULL) == RTERROR_OK &&
	          model_add_adapter(one, f32, 1.0f, NULL) == RTERROR_OK &&
	          model_add_adapter(two, f32, 0.5f, NULL) == RTERROR_OK &&
	          model_add_adapter(two, f32, 0.5f, NULL) == RTERROR_OK;
	float *a = ok ? logits_of(one, N_TOK) : NULL, *b = ok ? logits_of(two, N_TOK) : NULL;
	int nv = one ? model_get_info(one)->n_vocab : 0;
	double d = a && b ? rel_diff(b, a, (size_t)N_TOK * nv) : INFINITY;
	tap_ok(ok && model_n_adapters(two) == 2 && d < 1e-5, "/lora/several-add-up", "difference %.3g", d);

	/* each refused adapter names why, and two's logits stay what they were */
	struct mat t[4];
	mat_new(&t[0], "blk.0.attn_q.weight", "lora_a", 256, 4, 0.05f);
	mat_new(&t[1], "blk.0.attn_q.weight", "lora_b", 4, 256, 0.05f);
	mat_new(&t[2], "blk.0.attn_q.weight", "lora_a", 128, 4, 0.05f); /* the wrong width */
	mat_new(&t[3], "blk.0.attn_q.weight", "lora_b", 3, 256, 0.05f); /* the wrong rank */
	struct mat far[2] = {t[0], t[1]}, embd[2] = {t[0], t[1]};
	snprintf(far[0].name, sizeof far[0].name, "blk.7.attn_q.weight.lora_a");
	snprintf(far[1].name, sizeof far[1].name, "blk.7.attn_q.weight.lora_b");
	snprintf(embd[0].name, sizeof embd[0].name, "token_embd.weight.lora_a");
	snprintf(embd[1].name, sizeof embd[1].name, "token_embd.weight.lora_b");
	struct mat wide[2] = {t[2], t[1]}, rank[2] = {t[0], t[3]};
	static const struct {
		const char *name, *type;
		struct mat *t;
		int n;
		enum rterror err;
		const char *needle;
	} cases[] = {
		{"not-adapter", "model", NULL, 2, RTERROR_FORMAT, "not an adapter file"},
		{"unpaired", "adapter", NULL, 1, RTERROR_FORMAT, "blk.0.attn_q.weight.lora_b' is missing"},
		{"no-such-weight", "adapter", NULL, 2, RTERROR_FORMAT, "'blk.7.attn_q.weight' adapts no weight"},
		{"wrong-width", "adapter", NULL, 2, RTERROR_FORMAT, "adapts a [128, 256] weight; the model's is [256, 256]"},
		{"wrong-rank", "adapter", NULL, 2, RTERROR_FORMAT, "(both are the rank"},
		{"token-embedding", "adapter", NULL, 2, RTERROR_UNSUPPORTED, "token embedding"},
	};
	struct mat *sets[] = {t, t, far, wide, rank, embd};
	snprintf(bad, sizeof bad, "%s/bad-adapter.gguf", tmpdir);
	for (size_t i = 0; ok && i < sizeof cases / sizeof cases[0]; i++) {
		char *msg = NULL, name[128];
		bool written = write_adapter(bad, "llama", cases[i].type, 16.0f, sets[i], cases[i].n);
		enum rterror err = model_add_adapter(two, bad, 1.0f, &msg);
		snprintf(name, sizeof name, "/lora/refused/%s", cases[i].name);
		tap_ok(written && err == cases[i].err && msg && strstr(msg, cases[i].needle) && model_n_adapters(two) == 2,
		       name, "%s: %s", rterror_str(err), msg ? msg : "(no message)");
		free(msg);
	}
	char *msg = NULL;
	enum rterror err = ok ? model_add_adapter(two, qwen, 1.0f, &msg) : RTERROR_INVALID;
	tap_ok(err == RTERROR_UNSUPPORTED && msg && strstr(msg, "architecture 'qwen2'"), "/lora/refused/architecture",
	       "%s", msg ? msg : "");
	free(msg);
	float *c = ok ? logits_of(two, N_TOK) : NULL;
	tap_ok(c && b && rel_diff(c, b, (size_t)N_TOK * nv) == 0, "/lora/refused/nothing-changed", NULL);
	/* alpha missing: the factor is the scale alone */
	struct model *noalpha = NULL;
	ok = write_adapter(bad, "llama", "adapter", -1.0f, t, 2) && model_load(base, &noalpha, NULL) == RTERROR_OK &&
	     model_add_adapter(noalpha, bad, 0.5f, NULL) == RTERROR_OK;
	tap_ok(ok && model_adapter(noalpha, 0)->alpha == 0 && model_adapter(noalpha, 0)->rank == 4 &&
	           model_adapter(noalpha, 0)->n_weights == 1,
	       "/lora/no-alpha", NULL);
	int added = 0;
	while (ok && model_add_adapter(noalpha, bad, 0.5f, NULL) == RTERROR_OK)
		added++;
	msg = NULL;
	err = model_add_adapter(noalpha, bad, 0.5f, &msg);
	tap_ok(added == MODEL_MAX_ADAPTERS - 1 && err == RTERROR_LIMIT && msg, "/lora/limit", "%d added", added);
	free(msg);
	unlink(bad);
	for (int i = 0; i < 4; i++)
		free(t[i].v);
	free(a);
	free(b);
	free(c);
	model_free(noalpha);
	model_free(one);
	model_free(two);
}

int main(void)
{
	shared = getenv("QUIRE_SHARED_DIR");
	char probe[4096];
	snprintf(probe, sizeof probe, "%s/models/adapters", shared ? shared : "/nonexistent");
	DIR *d = opendir(probe);
	if (!d)
		return tap_skip_all("../shared not present: adapter checks skipped");
	closedir(d);
	const char *t = getenv("TMPDIR");
	snprintf(tmpdir, sizeof tmpdir, "%s/quire-lora-XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(tmpdir))
		return tap_skip_all("cannot make a temporary directory");
	test_merged("synth-llama-F32.gguf", "llama", QUANT_F32, 4, N_LONG, 1e-4);
	test_merged("synth-llama-F32.gguf", "llama", QUANT_BF16, 8, N_TOK, 1e-4);
	test_merged("synth-qwen2-F32.gguf", "qwen2", QUANT_F16, 8, N_TOK, 1e-4);
	test_merged("synth-phi3-F32.gguf", "phi3", QUANT_F32, 4, N_TOK, 1e-4);
	test_merged("synth-phi3-F32.gguf", "phi3", QUANT_Q8_0, 32, N_TOK, 1e-4); /* quantized rows of a fused B */
	/* gemma: the F16 GELU table turns rounding noise into ~1e-3 (README: 5e-3 for an engine without the table) */
	test_merged("synth-gemma2-F32.gguf", "gemma2", QUANT_F32, 4, N_TOK, 5e-3);
	test_merged("synth-gemma3-F32.gguf", "gemma3", QUANT_Q8_0, 32, N_TOK, 5e-3);
	test_several_and_errors();
	rmdir(tmpdir);
	return tap_done();
}
