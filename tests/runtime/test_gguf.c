/* test_gguf: the GGUF reader against the shared model files and against
 * hand-built valid and corrupt files.
 *
 * Every file in ../shared/models must open and agree with MANIFEST.json;
 * every prefix of a real file that cuts into its header or tensor data, and
 * every corruption built here, must give an error with a message (and never
 * crash, which the sanitizer build checks). */
#include "runtime/gguf.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/runtime/tap.h"

struct buf {
	uint8_t *p;
	size_t n, cap;
};

static void put(struct buf *b, const void *src, size_t n)
{
	if (b->n + n > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 256;
		while (cap < b->n + n)
			cap *= 2;
		b->p = realloc(b->p, cap);
		if (!b->p)
			abort();
		b->cap = cap;
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

static void put_header(struct buf *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
	put(b, "GGUF", 4);
	put_u32(b, version);
	put_u64(b, n_tensors);
	put_u64(b, n_kv);
}

static void put_tensor(struct buf *b, const char *name, uint32_t n_dims, const uint64_t *ne,
                       uint32_t type, uint64_t offset)
{
	put_str(b, name);
	put_u32(b, n_dims);
	for (uint32_t i = 0; i < n_dims; i++)
		put_u64(b, ne[i]);
	put_u32(b, type);
	put_u64(b, offset);
}

static void pad_to(struct buf *b, size_t align)
{
	static const uint8_t zero[64];
	while (b->n % align)
		put(b, zero, 1);
}

/* Ways to spoil the small valid file that build() writes. */
enum mutation {
	MUT_NONE,
	MUT_VERSION2,
	MUT_MAGIC,
	MUT_VERSION1,
	MUT_VERSION9,
	MUT_BIG_ENDIAN,
	MUT_HUGE_TENSORS,
	MUT_HUGE_KV,
	MUT_HUGE_STRING,
	MUT_BAD_VTYPE,
	MUT_BAD_ARRAY_TYPE,
	MUT_NESTED_ARRAY,
	MUT_HUGE_ARRAY,
	MUT_DUP_KEY,
	MUT_ALIGN_NOT_POW2,
	MUT_ALIGN_WRONG_TYPE,
	MUT_DUP_TENSOR,
	MUT_ZERO_DIMS,
	MUT_FIVE_DIMS,
	MUT_NEGATIVE_NE,
	MUT_OVERFLOW_NE,
	MUT_UNKNOWN_TYPE,
	MUT_UNSUPPORTED_TYPE,
	MUT_ROW_NOT_BLOCK,
	MUT_MISALIGNED,
	MUT_PAST_END,
	MUT_OVERLAP,
	MUT_EMPTY_NAME,
	MUT_COUNT
};

static const struct {
	const char *name;
	enum rterror err;
	const char *needle; /* the message must contain this */
} mutations[MUT_COUNT] = {
	[MUT_NONE] = {"valid", RTERROR_OK, NULL},
	[MUT_VERSION2] = {"version-2-accepted", RTERROR_OK, NULL},
	[MUT_MAGIC] = {"bad-magic", RTERROR_FORMAT, "magic"},
	[MUT_VERSION1] = {"version-1", RTERROR_UNSUPPORTED, "version 1"},
	[MUT_VERSION9] = {"version-9", RTERROR_UNSUPPORTED, "version 9"},
	[MUT_BIG_ENDIAN] = {"big-endian", RTERROR_UNSUPPORTED, "big-endian"},
	[MUT_HUGE_TENSORS] = {"huge-tensor-count", RTERROR_FORMAT, "tensor count"},
	[MUT_HUGE_KV] = {"huge-kv-count", RTERROR_FORMAT, "key/value count"},
	[MUT_HUGE_STRING] = {"huge-string", RTERROR_FORMAT, "general.name"},
	[MUT_BAD_VTYPE] = {"bad-value-type", RTERROR_FORMAT, "unknown value type"},
	[MUT_BAD_ARRAY_TYPE] = {"bad-array-type", RTERROR_FORMAT, "array element type"},
	[MUT_NESTED_ARRAY] = {"nested-array", RTERROR_UNSUPPORTED, "arrays of arrays"},
	[MUT_HUGE_ARRAY] = {"huge-array", RTERROR_FORMAT, "does not fit"},
	[MUT_DUP_KEY] = {"duplicate-key", RTERROR_FORMAT, "duplicate key 'general.name'"},
	[MUT_ALIGN_NOT_POW2] = {"alignment-not-power-of-two", RTERROR_FORMAT, "power of two"},
	[MUT_ALIGN_WRONG_TYPE] = {"alignment-wrong-type", RTERROR_FORMAT, "general.alignment"},
	[MUT_DUP_TENSOR] = {"duplicate-tensor", RTERROR_FORMAT, "duplicate tensor name 'a'"},
	[MUT_ZERO_DIMS] = {"zero-dims", RTERROR_FORMAT, "dimensions"},
	[MUT_FIVE_DIMS] = {"five-dims", RTERROR_FORMAT, "dimensions"},
	[MUT_NEGATIVE_NE] = {"negative-dim", RTERROR_FORMAT, "negative"},
	[MUT_OVERFLOW_NE] = {"element-count-overflow", RTERROR_FORMAT, "overflow"},
	[MUT_UNKNOWN_TYPE] = {"unknown-tensor-type", RTERROR_FORMAT, "unknown type id 77"},
	[MUT_UNSUPPORTED_TYPE] = {"unsupported-tensor-type", RTERROR_UNSUPPORTED, "Q2_K"},
	[MUT_ROW_NOT_BLOCK] = {"row-not-block-multiple", RTERROR_FORMAT, "multiple of the Q8_0 block"},
	[MUT_MISALIGNED] = {"misaligned-offset", RTERROR_FORMAT, "alignment"},
	[MUT_PAST_END] = {"data-past-end", RTERROR_FORMAT, "tensor 'b': data ["},
	[MUT_OVERLAP] = {"overlapping-tensors", RTERROR_FORMAT, "overlap"},
	[MUT_EMPTY_NAME] = {"empty-tensor-name", RTERROR_FORMAT, "empty name"},
};

static void build_kvs(struct buf *b, enum mutation m)
{
	put_str(b, "general.architecture");
	put_u32(b, GGUF_VT_STRING);
	put_str(b, "llama");
	put_str(b, m == MUT_DUP_KEY ? "general.name" : "general.alignment");
	if (m == MUT_ALIGN_WRONG_TYPE) {
		put_u32(b, GGUF_VT_FLOAT32);
		float a = 32.0f;
		put(b, &a, 4);
	} else if (m == MUT_DUP_KEY) {
		put_u32(b, GGUF_VT_STRING);
		put_str(b, "first");
	} else {
		put_u32(b, GGUF_VT_UINT32);
		put_u32(b, m == MUT_ALIGN_NOT_POW2 ? 48 : 64);
	}
	put_str(b, "general.name");
	put_u32(b, m == MUT_BAD_VTYPE ? 13 : GGUF_VT_STRING);
	if (m == MUT_HUGE_STRING)
		put_u64(b, (uint64_t)1 << 40);
	else
		put_str(b, "tiny");
	/* an array of u8 (misaligned in the file on purpose: 3 bytes) then an array of i32 */
	put_str(b, "test.bytes");
	put_u32(b, GGUF_VT_ARRAY);
	put_u32(b, m == MUT_BAD_ARRAY_TYPE ? 99 : m == MUT_NESTED_ARRAY ? GGUF_VT_ARRAY : GGUF_VT_UINT8);
	put_u64(b, m == MUT_HUGE_ARRAY ? (uint64_t)1 << 30 : 3);
	put(b, "\x01\x02\x03", 3);
	put_str(b, "test.ints");
	put_u32(b, GGUF_VT_ARRAY);
	put_u32(b, GGUF_VT_INT32);
	put_u64(b, 3);
	int32_t ints[3] = {-7, 0, 1 << 30};
	put(b, ints, sizeof ints);
	put_str(b, "test.strs");
	put_u32(b, GGUF_VT_ARRAY);
	put_u32(b, GGUF_VT_STRING);
	put_u64(b, 3);
	put_str(b, "zero");
	put_str(b, "");
	put_str(b, "two");
	put_str(b, "test.u64");
	put_u32(b, GGUF_VT_UINT64);
	put_u64(b, (uint64_t)1 << 40);
	put_str(b, "test.f64");
	put_u32(b, GGUF_VT_FLOAT64);
	double d = 0.25;
	put(b, &d, 8);
	put_str(b, "test.bool");
	put_u32(b, GGUF_VT_BOOL);
	put(b, "\x01", 1);
	put_str(b, "test.i8");
	put_u32(b, GGUF_VT_INT8);
	put(b, "\xff", 1);
}

#define N_KV 10

/* A small valid file: tensor 'a' F32 [8 x 2], tensor 'b' Q8_0 [64 x 1]; alignment 64. */
static void build(struct buf *b, enum mutation m)
{
	b->n = 0;
	uint64_t n_t = m == MUT_HUGE_TENSORS ? (uint64_t)1 << 40 : 2;
	uint64_t n_kv = m == MUT_HUGE_KV ? (uint64_t)1 << 33 : N_KV;
	uint32_t version = m == MUT_VERSION1 ? 1 : m == MUT_VERSION2 ? 2 : m == MUT_VERSION9 ? 9 : m == MUT_BIG_ENDIAN ? 0x03000000 : 3;
	put_header(b, version, n_t, n_kv);
	if (m == MUT_MAGIC)
		b->p[1] = 'X';
	build_kvs(b, m);
	uint64_t ne_a[5] = {8, 2, 1, 1, 1};
	uint64_t ne_b[5] = {64, 1, 1, 1, 1};
	if (m == MUT_NEGATIVE_NE)
		ne_a[1] = (uint64_t)-2;
	if (m == MUT_OVERFLOW_NE) {
		ne_a[0] = (uint64_t)1 << 40;
		ne_a[1] = (uint64_t)1 << 40;
	}
	if (m == MUT_ROW_NOT_BLOCK)
		ne_b[0] = 48;
	uint32_t dims_a = m == MUT_ZERO_DIMS ? 0 : m == MUT_FIVE_DIMS ? 5 : 2;
	uint32_t type_b = m == MUT_UNKNOWN_TYPE ? 77 : m == MUT_UNSUPPORTED_TYPE ? QUANT_Q2_K : QUANT_Q8_0;
	put_tensor(b, m == MUT_EMPTY_NAME ? "" : "a", dims_a, ne_a, QUANT_F32, 0);
	uint64_t off_b = m == MUT_MISALIGNED ? 96 : m == MUT_PAST_END ? 128 : m == MUT_OVERLAP ? 0 : 64;
	put_tensor(b, m == MUT_DUP_TENSOR ? "a" : "b", 2, ne_b, type_b, off_b);
	pad_to(b, 64);
	for (int i = 0; i < 16; i++) {
		float v = (float)i - 4.5f;
		put(b, &v, 4);
	}
	/* Q8_0: d = 0.5 (half 0x3800), then 64 quants in two blocks */
	for (int blk = 0; blk < 2; blk++) {
		uint16_t d = 0x3800;
		put(b, &d, 2);
		for (int j = 0; j < 32; j++) {
			int8_t q = (int8_t)(j - 16);
			put(b, &q, 1);
		}
	}
}

static void test_mutations(void)
{
	struct buf b = {0};
	char name[128];
	for (int m = 0; m < MUT_COUNT; m++) {
		build(&b, (enum mutation)m);
		struct gguf_file *f = NULL;
		char *msg = NULL;
		enum rterror err = gguf_open_memory(b.p, b.n, &f, &msg);
		bool pass = err == mutations[m].err &&
		            (mutations[m].needle == NULL || (msg && strstr(msg, mutations[m].needle)));
		if (err != RTERROR_OK)
			pass = pass && f == NULL && msg != NULL;
		snprintf(name, sizeof name, "/gguf/corrupt/%s", mutations[m].name);
		tap_ok(pass, name, "got %s: %s", rterror_str(err), msg ? msg : "(no message)");
		gguf_close(f);
		free(msg);
	}
	free(b.p);
}

static void test_accessors(void)
{
	struct buf b = {0};
	build(&b, MUT_NONE);
	struct gguf_file *f = NULL;
	if (!tap_ok(gguf_open_memory(b.p, b.n, &f, NULL) == RTERROR_OK, "/gguf/valid/opens", NULL)) {
		free(b.p);
		return;
	}
	uint32_t u;
	int64_t i64;
	float fl;
	bool bo;
	struct gguf_str s;
	tap_ok(gguf_version(f) == 3 && gguf_n_kv(f) == N_KV && gguf_n_tensors(f) == 2,
	       "/gguf/valid/counts", NULL);
	tap_ok(gguf_get_u32(f, "general.alignment", &u) && u == 64, "/gguf/get/u32", NULL);
	tap_ok(!gguf_get_u32(f, "test.u64", &u) && gguf_get_i64(f, "test.u64", &i64) &&
	               i64 == (int64_t)1 << 40,
	       "/gguf/get/u64-range", NULL);
	tap_ok(gguf_get_i64(f, "test.i8", &i64) && i64 == -1 && !gguf_get_u32(f, "test.i8", &u),
	       "/gguf/get/i8-sign", NULL);
	tap_ok(gguf_get_f32(f, "test.f64", &fl) && fl == 0.25f && !gguf_get_f32(f, "test.i8", &fl),
	       "/gguf/get/f32", NULL);
	tap_ok(gguf_get_bool(f, "test.bool", &bo) && bo && !gguf_get_bool(f, "test.i8", &bo),
	       "/gguf/get/bool", NULL);
	tap_ok(gguf_get_str(f, "general.name", &s) && s.len == 4 && memcmp(s.ptr, "tiny", 4) == 0 &&
	               !gguf_get_str(f, "missing", &s) && gguf_find_key(f, "missing") == -1,
	       "/gguf/get/str", NULL);
	enum gguf_vtype et;
	uint64_t n;
	const int32_t *ints = gguf_get_arr_data(f, "test.ints");
	tap_ok(gguf_get_arr(f, "test.ints", &et, &n) && et == GGUF_VT_INT32 && n == 3 && ints &&
	               ((uintptr_t)ints % 4) == 0 && ints[0] == -7 && ints[2] == 1 << 30,
	       "/gguf/get/int-array-aligned", NULL);
	const uint8_t *bytes = gguf_get_arr_data(f, "test.bytes");
	tap_ok(bytes && bytes[0] == 1 && bytes[2] == 3 && !gguf_get_arr_data(f, "test.strs"),
	       "/gguf/get/byte-array", NULL);
	tap_ok(gguf_get_arr_str(f, "test.strs", 2, &s) && s.len == 3 && memcmp(s.ptr, "two", 3) == 0 &&
	               gguf_get_arr_str(f, "test.strs", 1, &s) && s.len == 0 &&
	               !gguf_get_arr_str(f, "test.strs", 3, &s) &&
	               !gguf_get_arr_str(f, "test.ints", 0, &s),
	       "/gguf/get/str-array", NULL);
	const struct gguf_tensor *ta = gguf_find_tensor(f, "a"), *tb = gguf_find_tensor(f, "b");
	tap_ok(ta && tb && ta == gguf_tensor_at(f, 0) && ta->ne[0] == 8 && ta->ne[1] == 2 &&
	               ta->ne[3] == 1 && ta->nbytes == 64 && ((const float *)ta->data)[15] == 10.5f &&
	               tb->type == QUANT_Q8_0 && tb->nbytes == 68 && !gguf_find_tensor(f, "c") &&
	               (uintptr_t)((const uint8_t *)tb->data - b.p) % 64 == 0,
	       "/gguf/tensors", NULL);
	gguf_close(f);
	free(b.p);
}

static uint8_t *read_all(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return NULL;
	fseek(fp, 0, SEEK_END);
	long n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	uint8_t *p = n > 0 ? malloc((size_t)n) : NULL;
	if (p && fread(p, 1, (size_t)n, fp) != (size_t)n) {
		free(p);
		p = NULL;
	}
	fclose(fp);
	*len = (size_t)n;
	return p;
}

static bool check_model_entry(const char *dir, const cJSON *e, char *why, size_t whylen)
{
	const char *file = cJSON_GetStringValue(cJSON_GetObjectItem(e, "file"));
	char path[8192];
	snprintf(path, sizeof path, "%s/%s", dir, file);
	struct gguf_file *f = NULL;
	char *msg = NULL;
	if (gguf_open(path, &f, &msg) != RTERROR_OK) {
		snprintf(why, whylen, "%s", msg ? msg : "?");
		free(msg);
		return false;
	}
	bool ok = gguf_file_size(f) == (uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(e, "bytes"));
	const cJSON *types = cJSON_GetObjectItem(e, "tensor_types");
	if (types) {
		ok = ok && gguf_n_tensors(f) == cJSON_GetArraySize(types);
		const cJSON *t;
		cJSON_ArrayForEach(t, types)
		{
			const struct gguf_tensor *gt = gguf_find_tensor(f, t->string);
			if (!gt || strcmp(quant_type_name(gt->type), t->valuestring) != 0) {
				snprintf(why, whylen, "tensor %s: want %s", t->string, t->valuestring);
				ok = false;
			}
		}
	}
	const cJSON *ft = cJSON_GetObjectItem(e, "file_type");
	uint32_t u;
	if (cJSON_IsNumber(ft))
		ok = ok && gguf_get_u32(f, "general.file_type", &u) && u == (uint32_t)ft->valuedouble;
	else if (ft)
		ok = ok && gguf_find_key(f, "general.file_type") < 0;
	const cJSON *nv = cJSON_GetObjectItem(e, "n_vocab");
	if (!nv)
		nv = cJSON_GetObjectItem(e, "n_tokens");
	enum gguf_vtype et;
	uint64_t n = 0;
	struct gguf_str last;
	ok = ok && gguf_get_arr(f, "tokenizer.ggml.tokens", &et, &n) && et == GGUF_VT_STRING &&
	     n == (uint64_t)cJSON_GetNumberValue(nv) && gguf_get_arr_str(f, "tokenizer.ggml.tokens", n - 1, &last);
	const char *arch = cJSON_GetStringValue(cJSON_GetObjectItem(e, "architecture"));
	struct gguf_str s;
	if (arch)
		ok = ok && gguf_get_str(f, "general.architecture", &s) && s.len == strlen(arch) &&
		     memcmp(s.ptr, arch, s.len) == 0;
	const char *tm = cJSON_GetStringValue(cJSON_GetObjectItem(e, "tokenizer_model"));
	if (tm)
		ok = ok && gguf_get_str(f, "tokenizer.ggml.model", &s) && s.len == strlen(tm) &&
		     memcmp(s.ptr, tm, s.len) == 0;
	gguf_close(f);
	return ok;
}

static void test_shared(const char *shared)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/models/MANIFEST.json", shared);
	size_t len;
	char *text = (char *)read_all(path, &len);
	cJSON *man = text ? cJSON_ParseWithLength(text, len) : NULL;
	free(text);
	if (!tap_ok(man != NULL, "/gguf/shared/manifest", "cannot read %s", path))
		return;
	const char *groups[2] = {"models", "vocab"};
	for (int g = 0; g < 2; g++) {
		char dir[4200], name[512], why[512];
		snprintf(dir, sizeof dir, "%s/models%s", shared, g ? "/vocab" : "");
		const cJSON *e;
		cJSON_ArrayForEach(e, cJSON_GetObjectItem(man, groups[g]))
		{
			why[0] = 0;
			snprintf(name, sizeof name, "/gguf/shared/%s",
			         cJSON_GetStringValue(cJSON_GetObjectItem(e, "file")));
			tap_ok(check_model_entry(dir, e, why, sizeof why), name, "%s", why);
		}
	}
	cJSON_Delete(man);
}

/* Every prefix that cuts into the header or the tensor data must fail. */
static void test_truncation(const char *shared, const char *file, size_t stride_data)
{
	char path[4096], name[512];
	snprintf(path, sizeof path, "%s/models/%s", shared, file);
	size_t len = 0;
	uint8_t *full = read_all(path, &len);
	snprintf(name, sizeof name, "/gguf/truncated/%s", file);
	struct gguf_file *f = NULL;
	if (!full || gguf_open_memory(full, len, &f, NULL) != RTERROR_OK) {
		tap_ok(false, name, "cannot read %s", path);
		free(full);
		return;
	}
	size_t end = 0, header_end = len;
	for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
		const struct gguf_tensor *t = gguf_tensor_at(f, i);
		size_t off = (size_t)((const uint8_t *)t->data - full);
		if (off + t->nbytes > end)
			end = off + t->nbytes;
		if (off < header_end)
			header_end = off;
	}
	gguf_close(f);
	int tried = 0, wrong = 0;
	size_t first_wrong = 0;
	for (size_t n = 0; n < end; n += n < header_end ? 1 : stride_data) {
		/* a copy of exactly n bytes so that the sanitizer sees any over-read */
		uint8_t *p = malloc(n ? n : 1);
		memcpy(p, full, n);
		char *msg = NULL;
		f = NULL;
		enum rterror err = gguf_open_memory(p, n, &f, &msg);
		if (err == RTERROR_OK || !msg || f) {
			if (!wrong++)
				first_wrong = n;
		}
		gguf_close(f);
		free(msg);
		free(p);
		tried++;
	}
	tap_diag("%s: %d prefixes tried (header %zu bytes)", file, tried, header_end);
	tap_ok(wrong == 0 && tried > 100, name, "%d of %d prefixes accepted (first at %zu)", wrong, tried,
	       first_wrong);
	free(full);
}

static void test_files(void)
{
	struct gguf_file *f = NULL;
	char *msg = NULL;
	enum rterror err = gguf_open("/nonexistent/x.gguf", &f, &msg);
	tap_ok(err == RTERROR_IO && msg && strstr(msg, "/nonexistent/x.gguf"), "/gguf/open/missing", "%s",
	       msg ? msg : "");
	free(msg);
	msg = NULL;
	err = gguf_open("/", &f, &msg);
	tap_ok(err == RTERROR_IO && msg && strstr(msg, "not a regular file"), "/gguf/open/directory", "%s",
	       msg ? msg : "");
	free(msg);
	msg = NULL;
	err = gguf_open_memory("", 0, &f, &msg);
	tap_ok(err == RTERROR_FORMAT && msg, "/gguf/open/empty", NULL);
	free(msg);
}

int main(void)
{
	test_files();
	test_mutations();
	test_accessors();
	const char *shared = getenv("QUIRE_SHARED_DIR");
	char probe[4096];
	snprintf(probe, sizeof probe, "%s/models/MANIFEST.json", shared ? shared : "");
	FILE *fp = shared ? fopen(probe, "rb") : NULL;
	if (fp) {
		fclose(fp);
		test_shared(shared);
		test_truncation(shared, "stories260K.gguf", 4093);
		test_truncation(shared, "synth-qwen2-Q4_K_M.gguf", 8191);
	} else {
		tap_diag("../shared not present: shared-model checks skipped");
	}
	return tap_done();
}
