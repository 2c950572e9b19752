/* gguf: a validating reader for GGUF model files (versions 2 and 3).
 *
 * Layout, all little-endian: magic "GGUF", u32 version, u64 tensor count,
 * u64 key/value count; the key/value pairs (string key, u32 value type, value;
 * a string is a u64 length then bytes; an array is a u32 element type, a u64
 * count, then the elements); the tensor infos (string name, u32 n_dims, u64
 * ne[n_dims], u32 type, u64 offset); padding to general.alignment; the tensor
 * data, each tensor at its offset from the start of that section.
 *
 * Invariants once gguf_open() has returned: every string, array and tensor
 * lies inside the buffer; keys and tensor names are unique; every tensor has
 * a computable type, a row length that is a multiple of its block size, an
 * aligned offset and a byte range that overlaps no other tensor's. Every
 * allocation made while parsing is bounded by a fixed maximum and by the
 * bytes the file actually holds, so a hostile header cannot make us allocate
 * more than a small multiple of the file's size. Numeric arrays that are not
 * aligned for their element type in the file are copied so that callers may
 * read them through typed pointers. */
#include "runtime/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_MAGIC "GGUF"
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_ALIGNMENT (1u << 20)
#define GGUF_MAX_KV 65536
#define GGUF_MAX_TENSORS 65536
#define GGUF_MAX_KEY_LEN 65535
#define GGUF_MAX_NAME_LEN 1024
#define GGUF_MAX_STR_LEN (1u << 26)
#define GGUF_MAX_ARR_LEN (1u << 26)

struct gguf_kv {
	struct gguf_str key;
	enum gguf_vtype type;
	const uint8_t *val;        /* scalar value (not for STRING/ARRAY) */
	struct gguf_str str;       /* STRING */
	enum gguf_vtype arr_type;  /* ARRAY */
	uint64_t arr_n;            /* ARRAY */
	const void *arr_data;      /* numeric ARRAY: into the buffer, or arr_copy */
	void *arr_copy;            /* owned aligned copy of a misaligned numeric array */
	struct gguf_str *arr_strs; /* owned index of a STRING array */
};

struct gguf_file {
	const uint8_t *base;
	size_t size;
	bool mapped;
	uint32_t version;
	uint64_t alignment;
	uint64_t data_offset;
	int64_t n_kv;
	struct gguf_kv *kvs;
	int64_t n_tensors;
	struct gguf_tensor *tensors;
	char *names; /* every tensor name, NUL-terminated, one after another */
	uint32_t *kv_hash; /* open addressing: index + 1, 0 = empty */
	size_t kv_hash_cap;
	uint32_t *t_hash;
	size_t t_hash_cap;
};

/* A cursor over the buffer; every read is bounds-checked. */
struct rd {
	const uint8_t *p;
	size_t len;
	size_t off;
	char **reterr;
};

/* The message a nested read left, for wrapping with context. */
static const char *prev_msg(char **reterr)
{
	return reterr && *reterr ? *reterr : "malformed";
}

static const size_t vtype_size[GGUF_VT_COUNT] = {
	[GGUF_VT_UINT8] = 1,   [GGUF_VT_INT8] = 1,    [GGUF_VT_UINT16] = 2, [GGUF_VT_INT16] = 2,
	[GGUF_VT_UINT32] = 4,  [GGUF_VT_INT32] = 4,   [GGUF_VT_FLOAT32] = 4, [GGUF_VT_BOOL] = 1,
	[GGUF_VT_STRING] = 0,  [GGUF_VT_ARRAY] = 0,   [GGUF_VT_UINT64] = 8, [GGUF_VT_INT64] = 8,
	[GGUF_VT_FLOAT64] = 8,
};

static enum rterror rd_need(struct rd *r, uint64_t n, const char *what)
{
	if (n > r->len - r->off)
		return rterror_set(r->reterr, RTERROR_FORMAT,
		                   "truncated file: %s at offset %zu needs %" PRIu64
		                   " bytes, only %zu remain (file size %zu)",
		                   what, r->off, n, r->len - r->off, r->len);
	return RTERROR_OK;
}

static enum rterror rd_u32(struct rd *r, uint32_t *out, const char *what)
{
	enum rterror err = rd_need(r, 4, what);
	if (err)
		return err;
	memcpy(out, r->p + r->off, 4);
	r->off += 4;
	return RTERROR_OK;
}

static enum rterror rd_u64(struct rd *r, uint64_t *out, const char *what)
{
	enum rterror err = rd_need(r, 8, what);
	if (err)
		return err;
	memcpy(out, r->p + r->off, 8);
	r->off += 8;
	return RTERROR_OK;
}

static enum rterror rd_str(struct rd *r, struct gguf_str *out, uint64_t max, const char *what)
{
	uint64_t n;
	enum rterror err = rd_u64(r, &n, what);
	if (err)
		return err;
	if (n > max)
		return rterror_set(r->reterr, RTERROR_FORMAT,
		                   "%s at offset %zu: length %" PRIu64 " exceeds the limit of %" PRIu64,
		                   what, r->off - 8, n, max);
	err = rd_need(r, n, what);
	if (err)
		return err;
	out->ptr = (const char *)r->p + r->off;
	out->len = n;
	r->off += (size_t)n;
	return RTERROR_OK;
}

static uint32_t hash_bytes(const char *s, uint64_t n)
{
	uint32_t h = 2166136261u;
	for (uint64_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)s[i]) * 16777619u;
	return h;
}

static size_t hash_cap_for(int64_t n)
{
	size_t cap = 16;
	while (cap < (size_t)n * 2)
		cap *= 2;
	return cap;
}

static bool str_eq(struct gguf_str a, const char *b, size_t blen)
{
	return a.len == blen && memcmp(a.ptr, b, blen) == 0;
}

/* Finds key in the key table; returns the slot where it is or would go. */
static size_t kv_slot(const struct gguf_file *f, const char *key, size_t len, int64_t *idx)
{
	size_t mask = f->kv_hash_cap - 1;
	size_t s = hash_bytes(key, len) & mask;
	*idx = -1;
	while (f->kv_hash[s]) {
		int64_t i = (int64_t)f->kv_hash[s] - 1;
		if (str_eq(f->kvs[i].key, key, len)) {
			*idx = i;
			break;
		}
		s = (s + 1) & mask;
	}
	return s;
}

static size_t tensor_slot(const struct gguf_file *f, const char *name, size_t len, int64_t *idx)
{
	size_t mask = f->t_hash_cap - 1;
	size_t s = hash_bytes(name, len) & mask;
	*idx = -1;
	while (f->t_hash[s]) {
		int64_t i = (int64_t)f->t_hash[s] - 1;
		const char *tn = f->tensors[i].name;
		if (strlen(tn) == len && memcmp(tn, name, len) == 0) {
			*idx = i;
			break;
		}
		s = (s + 1) & mask;
	}
	return s;
}

static const char *vtype_name(uint32_t t)
{
	static const char *const names[GGUF_VT_COUNT] = {
		"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
		"bool", "string", "array", "uint64", "int64", "float64",
	};
	return t < GGUF_VT_COUNT ? names[t] : "unknown";
}

/* Reads an array value: element type, count, elements. */
static enum rterror read_array(struct rd *r, struct gguf_kv *kv, char **reterr)
{
	int klen = (int)(kv->key.len > 200 ? 200 : kv->key.len);
	uint32_t et;
	enum rterror err = rd_u32(r, &et, "array element type");
	if (err)
		return err;
	if (et >= GGUF_VT_COUNT)
		return rterror_set(reterr, RTERROR_FORMAT, "key '%.*s': unknown array element type %" PRIu32,
		                   klen, kv->key.ptr, et);
	if (et == GGUF_VT_ARRAY)
		return rterror_set(reterr, RTERROR_UNSUPPORTED,
		                   "key '%.*s': arrays of arrays are not supported", klen, kv->key.ptr);
	uint64_t n;
	err = rd_u64(r, &n, "array length");
	if (err)
		return err;
	/* every element takes at least its size (a string at least its 8-byte length) */
	uint64_t min_elem = et == GGUF_VT_STRING ? 8 : vtype_size[et];
	if (n > GGUF_MAX_ARR_LEN || n > (r->len - r->off) / min_elem)
		return rterror_set(reterr, RTERROR_FORMAT,
		                   "key '%.*s': array of %" PRIu64 " %s elements does not fit in the file",
		                   klen, kv->key.ptr, n, vtype_name(et));
	kv->arr_type = (enum gguf_vtype)et;
	kv->arr_n = n;
	if (et != GGUF_VT_STRING) {
		size_t bytes = (size_t)(n * vtype_size[et]);
		const uint8_t *src = r->p + r->off;
		kv->arr_data = src;
		if (n > 0 && ((uintptr_t)src % vtype_size[et]) != 0) {
			kv->arr_copy = malloc(bytes);
			if (!kv->arr_copy)
				return rterror_set(reterr, RTERROR_NOMEM, "out of memory copying key '%.*s'",
				                   klen, kv->key.ptr);
			memcpy(kv->arr_copy, src, bytes);
			kv->arr_data = kv->arr_copy;
		}
		r->off += bytes;
		return RTERROR_OK;
	}
	kv->arr_strs = malloc((n ? n : 1) * sizeof *kv->arr_strs);
	if (!kv->arr_strs)
		return rterror_set(reterr, RTERROR_NOMEM, "out of memory indexing key '%.*s'", klen,
		                   kv->key.ptr);
	for (uint64_t i = 0; i < n; i++) {
		err = rd_str(r, &kv->arr_strs[i], GGUF_MAX_STR_LEN, "array string");
		if (err)
			return rterror_set(reterr, err, "key '%.*s', element %" PRIu64 ": %s", klen,
			                   kv->key.ptr, i, prev_msg(reterr));
	}
	return RTERROR_OK;
}

static enum rterror read_kv(struct gguf_file *f, struct rd *r, int64_t i, char **reterr)
{
	struct gguf_kv *kv = &f->kvs[i];
	enum rterror err = rd_str(r, &kv->key, GGUF_MAX_KEY_LEN, "key");
	if (err)
		return rterror_set(reterr, err, "key/value pair %" PRId64 ": %s", i, prev_msg(reterr));
	int klen = (int)(kv->key.len > 200 ? 200 : kv->key.len);
	if (kv->key.len == 0)
		return rterror_set(reterr, RTERROR_FORMAT, "key/value pair %" PRId64 ": empty key", i);
	int64_t dup;
	size_t slot = kv_slot(f, kv->key.ptr, (size_t)kv->key.len, &dup);
	if (dup >= 0)
		return rterror_set(reterr, RTERROR_FORMAT, "duplicate key '%.*s' (pairs %" PRId64 " and %" PRId64 ")",
		                   klen, kv->key.ptr, dup, i);
	uint32_t t;
	err = rd_u32(r, &t, "value type");
	if (err)
		return rterror_set(reterr, err, "key '%.*s': %s", klen, kv->key.ptr, prev_msg(reterr));
	if (t >= GGUF_VT_COUNT)
		return rterror_set(reterr, RTERROR_FORMAT, "key '%.*s': unknown value type %" PRIu32, klen,
		                   kv->key.ptr, t);
	kv->type = (enum gguf_vtype)t;
	if (t == GGUF_VT_STRING) {
		err = rd_str(r, &kv->str, GGUF_MAX_STR_LEN, "string value");
	} else if (t == GGUF_VT_ARRAY) {
		err = read_array(r, kv, reterr);
	} else {
		err = rd_need(r, vtype_size[t], "value");
		if (!err) {
			kv->val = r->p + r->off;
			r->off += vtype_size[t];
		}
	}
	if (err)
		return rterror_set(reterr, err, "key '%.*s': %s", klen, kv->key.ptr, prev_msg(reterr));
	f->kv_hash[slot] = (uint32_t)(i + 1);
	return RTERROR_OK;
}

static enum rterror read_header(struct gguf_file *f, struct rd *r, uint64_t *n_tensors,
                                char **reterr)
{
	if (r->len < 4 || memcmp(r->p, GGUF_MAGIC, 4) != 0)
		return rterror_set(reterr, RTERROR_FORMAT, "not a GGUF file (bad magic)");
	r->off = 4;
	enum rterror err = rd_u32(r, &f->version, "version");
	if (err)
		return err;
	if (f->version == 1)
		return rterror_set(reterr, RTERROR_UNSUPPORTED,
		                   "GGUF version 1 is not supported (only versions 2 and 3)");
	if ((f->version & 0xffff) == 0 && (f->version >> 24) >= 1 && (f->version >> 24) <= 3)
		return rterror_set(reterr, RTERROR_UNSUPPORTED, "big-endian GGUF files are not supported");
	if (f->version != 2 && f->version != 3)
		return rterror_set(reterr, RTERROR_UNSUPPORTED, "unknown GGUF version %" PRIu32, f->version);
	uint64_t n_kv;
	if ((err = rd_u64(r, n_tensors, "tensor count")) || (err = rd_u64(r, &n_kv, "key/value count")))
		return err;
	if (*n_tensors > GGUF_MAX_TENSORS || *n_tensors > (r->len - r->off) / 32)
		return rterror_set(reterr, RTERROR_FORMAT,
		                   "tensor count %" PRIu64 " is too large for the file (limit %d)",
		                   *n_tensors, GGUF_MAX_TENSORS);
	/* a pair takes at least 8 (key length) + 4 (type) + 1 bytes */
	if (n_kv > GGUF_MAX_KV || n_kv > (r->len - r->off) / 13)
		return rterror_set(reterr, RTERROR_FORMAT,
		                   "key/value count %" PRIu64 " is too large for the file (limit %d)", n_kv,
		                   GGUF_MAX_KV);
	f->n_kv = (int64_t)n_kv;
	f->kvs = calloc(n_kv ? n_kv : 1, sizeof *f->kvs);
	f->kv_hash_cap = hash_cap_for(f->n_kv);
	f->kv_hash = calloc(f->kv_hash_cap, sizeof *f->kv_hash);
	if (!f->kvs || !f->kv_hash)
		return rterror_set(reterr, RTERROR_NOMEM, "out of memory reading the GGUF header");
	return RTERROR_OK;
}

static enum rterror read_alignment(struct gguf_file *f, char **reterr)
{
	f->alignment = GGUF_DEFAULT_ALIGNMENT;
	int64_t i = gguf_find_key(f, "general.alignment");
	if (i < 0)
		return RTERROR_OK;
	uint32_t a;
	if (!gguf_get_u32(f, "general.alignment", &a))
		return rterror_set(reterr, RTERROR_FORMAT,
		                   "key 'general.alignment' must be an unsigned 32-bit integer (it is %s)",
		                   vtype_name(f->kvs[i].type));
	if (a == 0 || (a & (a - 1)) != 0 || a > GGUF_MAX_ALIGNMENT)
		return rterror_set(reterr, RTERROR_FORMAT,
		                   "key 'general.alignment' is %" PRIu32 ", not a power of two up to %u", a,
		                   GGUF_MAX_ALIGNMENT);
	f->alignment = a;
	return RTERROR_OK;
}

/* Reads one tensor info; its name is copied to *names (advanced past it). */
static enum rterror read_tensor_info(struct gguf_file *f, struct rd *r, int64_t i, char **names,
                                     uint64_t *offset, char **reterr)
{
	struct gguf_tensor *t = &f->tensors[i];
	struct gguf_str name;
	enum rterror err = rd_str(r, &name, GGUF_MAX_NAME_LEN, "tensor name");
	if (err)
		return rterror_set(reterr, err, "tensor %" PRId64 ": %s", i, prev_msg(reterr));
	int nlen = (int)name.len;
	if (name.len == 0 || memchr(name.ptr, '\0', (size_t)name.len))
		return rterror_set(reterr, RTERROR_FORMAT, "tensor %" PRId64 ": empty name or name with a NUL byte", i);
	memcpy(*names, name.ptr, (size_t)name.len);
	(*names)[name.len] = '\0';
	t->name = *names;
	*names += name.len + 1;
	int64_t dup;
	size_t slot = tensor_slot(f, t->name, (size_t)name.len, &dup);
	if (dup >= 0)
		return rterror_set(reterr, RTERROR_FORMAT, "duplicate tensor name '%.*s'", nlen, name.ptr);
	f->t_hash[slot] = (uint32_t)(i + 1);
	uint32_t n_dims, type;
	if ((err = rd_u32(r, &n_dims, "tensor dimension count")))
		return rterror_set(reterr, err, "tensor '%s': %s", t->name, prev_msg(reterr));
	if (n_dims < 1 || n_dims > GGUF_MAX_DIMS)
		return rterror_set(reterr, RTERROR_FORMAT, "tensor '%s': %" PRIu32 " dimensions (must be 1 to %d)",
		                   t->name, n_dims, GGUF_MAX_DIMS);
	t->n_dims = n_dims;
	for (int d = 0; d < GGUF_MAX_DIMS; d++)
		t->ne[d] = 1;
	for (uint32_t d = 0; d < n_dims; d++) {
		uint64_t ne;
		if ((err = rd_u64(r, &ne, "tensor dimension")))
			return rterror_set(reterr, err, "tensor '%s': %s", t->name, prev_msg(reterr));
		if (ne > INT64_MAX)
			return rterror_set(reterr, RTERROR_FORMAT, "tensor '%s': dimension %" PRIu32 " is negative",
			                   t->name, d);
		t->ne[d] = (int64_t)ne;
	}
	if ((err = rd_u32(r, &type, "tensor type")) || (err = rd_u64(r, offset, "tensor offset")))
		return rterror_set(reterr, err, "tensor '%s': %s", t->name, prev_msg(reterr));
	t->type = (enum quant_type)type;
	return RTERROR_OK;
}

/* Checks a tensor's type, shape and size; sets t->nbytes. */
static enum rterror check_tensor_shape(struct gguf_tensor *t, char **reterr)
{
	const char *tn = quant_type_name(t->type);
	if (!tn)
		return rterror_set(reterr, RTERROR_FORMAT, "tensor '%s': unknown type id %u", t->name,
		                   (unsigned)t->type);
	size_t bs = quant_block_size(t->type);
	if (bs == 0)
		return rterror_set(reterr, RTERROR_UNSUPPORTED, "tensor '%s': type %s is not supported",
		                   t->name, tn);
	uint64_t n = 1;
	for (int d = 0; d < GGUF_MAX_DIMS; d++) {
		if (t->ne[d] != 0 && n > (uint64_t)INT64_MAX / (uint64_t)t->ne[d])
			return rterror_set(reterr, RTERROR_FORMAT, "tensor '%s': element count overflows",
			                   t->name);
		n *= (uint64_t)t->ne[d];
	}
	if ((uint64_t)t->ne[0] % bs != 0)
		return rterror_set(reterr, RTERROR_FORMAT,
		                   "tensor '%s': row length %" PRId64 " is not a multiple of the %s block size %zu",
		                   t->name, t->ne[0], tn, bs);
	/* n / bs blocks of type_size bytes; both factors are bounded so check the product */
	uint64_t blocks = n / bs, ts = quant_type_size(t->type);
	if (blocks > UINT64_MAX / ts)
		return rterror_set(reterr, RTERROR_FORMAT, "tensor '%s': byte size overflows", t->name);
	t->nbytes = blocks * ts;
	return RTERROR_OK;
}

static int cmp_by_data(const void *a, const void *b)
{
	const struct gguf_tensor *x = *(const struct gguf_tensor *const *)a;
	const struct gguf_tensor *y = *(const struct gguf_tensor *const *)b;
	uintptr_t px = (uintptr_t)x->data, py = (uintptr_t)y->data;
	return px < py ? -1 : px > py;
}

static enum rterror check_overlaps(struct gguf_file *f, char **reterr)
{
	if (f->n_tensors < 2)
		return RTERROR_OK;
	const struct gguf_tensor **order = malloc((size_t)f->n_tensors * sizeof *order);
	if (!order)
		return rterror_set(reterr, RTERROR_NOMEM, "out of memory checking tensor offsets");
	for (int64_t i = 0; i < f->n_tensors; i++)
		order[i] = &f->tensors[i];
	qsort(order, (size_t)f->n_tensors, sizeof *order, cmp_by_data);
	enum rterror err = RTERROR_OK;
	for (int64_t i = 0; i + 1 < f->n_tensors; i++) {
		const struct gguf_tensor *a = order[i], *b = order[i + 1];
		if ((const uint8_t *)a->data + a->nbytes > (const uint8_t *)b->data) {
			err = rterror_set(reterr, RTERROR_FORMAT, "tensors '%s' and '%s' overlap in the file",
			                  a->name, b->name);
			break;
		}
	}
	free(order);
	return err;
}

static enum rterror read_tensors(struct gguf_file *f, struct rd *r, uint64_t n, char **reterr)
{
	f->n_tensors = (int64_t)n;
	f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
	uint64_t *offsets = calloc(n ? n : 1, sizeof *offsets);
	/* names are at most what the rest of the file holds, plus their NULs */
	uint64_t name_bytes = (uint64_t)(r->len - r->off);
	if (name_bytes > n * GGUF_MAX_NAME_LEN)
		name_bytes = n * GGUF_MAX_NAME_LEN;
	f->names = malloc((size_t)(name_bytes + n + 1));
	f->t_hash_cap = hash_cap_for(f->n_tensors);
	f->t_hash = calloc(f->t_hash_cap, sizeof *f->t_hash);
	enum rterror err = RTERROR_OK;
	if (!f->tensors || !offsets || !f->names || !f->t_hash) {
		err = rterror_set(reterr, RTERROR_NOMEM, "out of memory reading the tensor table");
		goto out;
	}
	char *names = f->names;
	for (uint64_t i = 0; i < n && !err; i++)
		err = read_tensor_info(f, r, (int64_t)i, &names, &offsets[i], reterr);
	if (err)
		goto out;
	uint64_t pad = (f->alignment - r->off % f->alignment) % f->alignment;
	f->data_offset = (uint64_t)r->off + pad;
	for (uint64_t i = 0; i < n && !err; i++) {
		struct gguf_tensor *t = &f->tensors[i];
		err = check_tensor_shape(t, reterr);
		if (err)
			break;
		if (offsets[i] % f->alignment != 0) {
			err = rterror_set(reterr, RTERROR_FORMAT,
			                  "tensor '%s': data offset %" PRIu64 " is not a multiple of the alignment %" PRIu64,
			                  t->name, offsets[i], f->alignment);
			break;
		}
		uint64_t avail = f->data_offset <= f->size ? f->size - f->data_offset : 0;
		if (offsets[i] > avail || t->nbytes > avail - offsets[i]) {
			err = rterror_set(reterr, RTERROR_FORMAT,
			                  "tensor '%s': data [%" PRIu64 ", %" PRIu64 ") extends past end of file (size %zu)",
			                  t->name, f->data_offset + offsets[i],
			                  f->data_offset + offsets[i] + t->nbytes, f->size);
			break;
		}
		t->data = f->base + f->data_offset + offsets[i];
	}
	if (!err)
		err = check_overlaps(f, reterr);
out:
	free(offsets);
	return err;
}

static enum rterror parse(struct gguf_file *f, char **reterr)
{
	struct rd r = {.p = f->base, .len = f->size, .off = 0, .reterr = reterr};
	uint64_t n_tensors = 0;
	enum rterror err = read_header(f, &r, &n_tensors, reterr);
	for (int64_t i = 0; !err && i < f->n_kv; i++)
		err = read_kv(f, &r, i, reterr);
	if (!err)
		err = read_alignment(f, reterr);
	if (!err)
		err = read_tensors(f, &r, n_tensors, reterr);
	return err;
}

enum rterror gguf_open_memory(const void *buf, size_t len, struct gguf_file **ret, char **reterr)
{
	if (!buf && len)
		return rterror_set(reterr, RTERROR_INVALID, "gguf_open_memory: NULL buffer");
	struct gguf_file *f = calloc(1, sizeof *f);
	if (!f)
		return rterror_set(reterr, RTERROR_NOMEM, "out of memory");
	f->base = buf;
	f->size = len;
	enum rterror err = parse(f, reterr);
	if (err) {
		gguf_close(f);
		return err;
	}
	*ret = f;
	return RTERROR_OK;
}

enum rterror gguf_open(const char *path, struct gguf_file **ret, char **reterr)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return rterror_set(reterr, RTERROR_IO, "cannot open '%s': %s", path, strerror(errno));
	struct stat st;
	void *map = MAP_FAILED;
	enum rterror err = RTERROR_OK;
	if (fstat(fd, &st) != 0) {
		err = rterror_set(reterr, RTERROR_IO, "cannot stat '%s': %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size <= 0) {
		err = rterror_set(reterr, S_ISREG(st.st_mode) ? RTERROR_FORMAT : RTERROR_IO,
		                  "'%s' is %s", path, S_ISREG(st.st_mode) ? "empty" : "not a regular file");
		goto out;
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED) {
		err = rterror_set(reterr, RTERROR_IO, "cannot map '%s': %s", path, strerror(errno));
		goto out;
	}
	struct gguf_file *f = NULL;
	err = gguf_open_memory(map, (size_t)st.st_size, &f, reterr);
	if (err) {
		rterror_set(reterr, err, "%s: %s", path, prev_msg(reterr));
		munmap(map, (size_t)st.st_size);
		goto out;
	}
	f->mapped = true;
	*ret = f;
out:
	close(fd);
	return err;
}

void gguf_close(struct gguf_file *f)
{
	if (!f)
		return;
	if (f->kvs) {
		for (int64_t i = 0; i < f->n_kv; i++) {
			free(f->kvs[i].arr_copy);
			free(f->kvs[i].arr_strs);
		}
	}
	free(f->kvs);
	free(f->kv_hash);
	free(f->tensors);
	free(f->names);
	free(f->t_hash);
	if (f->mapped)
		munmap((void *)f->base, f->size);
	free(f);
}

uint32_t gguf_version(const struct gguf_file *f)
{
	return f->version;
}

uint64_t gguf_file_size(const struct gguf_file *f)
{
	return f->size;
}

int64_t gguf_n_kv(const struct gguf_file *f)
{
	return f->n_kv;
}

int64_t gguf_find_key(const struct gguf_file *f, const char *key)
{
	int64_t idx;
	kv_slot(f, key, strlen(key), &idx);
	return idx;
}

struct gguf_str gguf_kv_key(const struct gguf_file *f, int64_t i)
{
	if (i < 0 || i >= f->n_kv)
		return (struct gguf_str){.ptr = "", .len = 0};
	return f->kvs[i].key;
}

enum gguf_vtype gguf_kv_type(const struct gguf_file *f, int64_t i)
{
	if (i < 0 || i >= f->n_kv)
		return GGUF_VT_COUNT;
	return f->kvs[i].type;
}

static const struct gguf_kv *find_kv(const struct gguf_file *f, const char *key)
{
	int64_t i = gguf_find_key(f, key);
	return i < 0 ? NULL : &f->kvs[i];
}

/* The value of an integer key as a signed 128-bit-safe pair: false if not an integer. */
static bool kv_int(const struct gguf_kv *kv, int64_t *s, uint64_t *u, bool *is_unsigned)
{
	const uint8_t *v = kv->val;
	*is_unsigned = false;
	switch (kv->type) {
	case GGUF_VT_UINT8: *s = v[0]; return true;
	case GGUF_VT_INT8: *s = (int8_t)v[0]; return true;
	case GGUF_VT_UINT16: { uint16_t x; memcpy(&x, v, 2); *s = x; return true; }
	case GGUF_VT_INT16: { int16_t x; memcpy(&x, v, 2); *s = x; return true; }
	case GGUF_VT_UINT32: { uint32_t x; memcpy(&x, v, 4); *s = x; return true; }
	case GGUF_VT_INT32: { int32_t x; memcpy(&x, v, 4); *s = x; return true; }
	case GGUF_VT_INT64: memcpy(s, v, 8); return true;
	case GGUF_VT_UINT64:
		memcpy(u, v, 8);
		*is_unsigned = true;
		return true;
	default: return false;
	}
}

bool gguf_get_u32(const struct gguf_file *f, const char *key, uint32_t *out)
{
	const struct gguf_kv *kv = find_kv(f, key);
	int64_t s = 0;
	uint64_t u = 0;
	bool uns;
	if (!kv || !kv_int(kv, &s, &u, &uns))
		return false;
	if (uns ? u > UINT32_MAX : (s < 0 || s > (int64_t)UINT32_MAX))
		return false;
	*out = uns ? (uint32_t)u : (uint32_t)s;
	return true;
}

bool gguf_get_i64(const struct gguf_file *f, const char *key, int64_t *out)
{
	const struct gguf_kv *kv = find_kv(f, key);
	int64_t s = 0;
	uint64_t u = 0;
	bool uns;
	if (!kv || !kv_int(kv, &s, &u, &uns))
		return false;
	if (uns && u > (uint64_t)INT64_MAX)
		return false;
	*out = uns ? (int64_t)u : s;
	return true;
}

bool gguf_get_f32(const struct gguf_file *f, const char *key, float *out)
{
	const struct gguf_kv *kv = find_kv(f, key);
	if (!kv)
		return false;
	if (kv->type == GGUF_VT_FLOAT32) {
		memcpy(out, kv->val, 4);
		return true;
	}
	if (kv->type == GGUF_VT_FLOAT64) {
		double d;
		memcpy(&d, kv->val, 8);
		*out = (float)d;
		return true;
	}
	return false;
}

bool gguf_get_bool(const struct gguf_file *f, const char *key, bool *out)
{
	const struct gguf_kv *kv = find_kv(f, key);
	if (!kv || kv->type != GGUF_VT_BOOL)
		return false;
	*out = kv->val[0] != 0;
	return true;
}

bool gguf_get_str(const struct gguf_file *f, const char *key, struct gguf_str *out)
{
	const struct gguf_kv *kv = find_kv(f, key);
	if (!kv || kv->type != GGUF_VT_STRING)
		return false;
	*out = kv->str;
	return true;
}

bool gguf_get_arr(const struct gguf_file *f, const char *key, enum gguf_vtype *elem_type, uint64_t *n)
{
	const struct gguf_kv *kv = find_kv(f, key);
	if (!kv || kv->type != GGUF_VT_ARRAY)
		return false;
	*elem_type = kv->arr_type;
	*n = kv->arr_n;
	return true;
}

const void *gguf_get_arr_data(const struct gguf_file *f, const char *key)
{
	const struct gguf_kv *kv = find_kv(f, key);
	if (!kv || kv->type != GGUF_VT_ARRAY || kv->arr_type == GGUF_VT_STRING)
		return NULL;
	return kv->arr_data;
}

bool gguf_get_arr_str(const struct gguf_file *f, const char *key, uint64_t i, struct gguf_str *out)
{
	const struct gguf_kv *kv = find_kv(f, key);
	if (!kv || kv->type != GGUF_VT_ARRAY || kv->arr_type != GGUF_VT_STRING || i >= kv->arr_n)
		return false;
	*out = kv->arr_strs[i];
	return true;
}

int64_t gguf_n_tensors(const struct gguf_file *f)
{
	return f->n_tensors;
}

const struct gguf_tensor *gguf_tensor_at(const struct gguf_file *f, int64_t i)
{
	if (i < 0 || i >= f->n_tensors)
		return NULL;
	return &f->tensors[i];
}

const struct gguf_tensor *gguf_find_tensor(const struct gguf_file *f, const char *name)
{
	int64_t idx;
	tensor_slot(f, name, strlen(name), &idx);
	return idx < 0 ? NULL : &f->tensors[idx];
}
