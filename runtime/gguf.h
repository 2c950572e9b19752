/* gguf: a validating reader for GGUF model files (versions 2 and 3).
 *
 * The file is memory-mapped read-only. gguf_open() checks every count, length,
 * type, offset, size and alignment in the header, the key/value section and the
 * tensor table before returning, so that every accessor below can trust what it
 * reads; tensor data pointers point into the mapping. Strings in the file are
 * not NUL-terminated: struct gguf_str carries a pointer and a length. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/quant.h"
#include "runtime/rterror.h"

enum gguf_vtype {
	GGUF_VT_UINT8 = 0,
	GGUF_VT_INT8 = 1,
	GGUF_VT_UINT16 = 2,
	GGUF_VT_INT16 = 3,
	GGUF_VT_UINT32 = 4,
	GGUF_VT_INT32 = 5,
	GGUF_VT_FLOAT32 = 6,
	GGUF_VT_BOOL = 7,
	GGUF_VT_STRING = 8,
	GGUF_VT_ARRAY = 9,
	GGUF_VT_UINT64 = 10,
	GGUF_VT_INT64 = 11,
	GGUF_VT_FLOAT64 = 12,
	GGUF_VT_COUNT
};

struct gguf_str {
	const char *ptr; /* into the mapping; not NUL-terminated */
	uint64_t len;
};

#define GGUF_MAX_DIMS 4

struct gguf_tensor {
	const char *name; /* NUL-terminated, owned by the gguf_file */
	uint32_t n_dims;
	int64_t ne[GGUF_MAX_DIMS]; /* ne[0] is the row length; unused dims are 1 */
	enum quant_type type;
	const void *data; /* into the mapping, aligned as the file says */
	uint64_t nbytes;
};

struct gguf_file;

/* Opens and validates path. On success *ret owns the mapping; free with gguf_close().
 * On failure *reterr (if not NULL) gets a malloc'd message naming what is wrong. */
enum rterror gguf_open(const char *path, struct gguf_file **ret, char **reterr)
	__attribute__((warn_unused_result));
/* The same over a caller's buffer, which must outlive the result (used by fuzzing). */
enum rterror gguf_open_memory(const void *buf, size_t len, struct gguf_file **ret, char **reterr)
	__attribute__((warn_unused_result));
void gguf_close(struct gguf_file *f);

uint32_t gguf_version(const struct gguf_file *f);
uint64_t gguf_file_size(const struct gguf_file *f);

/* Key/value metadata. Keys are found by exact name; -1 when absent. */
int64_t gguf_n_kv(const struct gguf_file *f);
int64_t gguf_find_key(const struct gguf_file *f, const char *key);
struct gguf_str gguf_kv_key(const struct gguf_file *f, int64_t i);
enum gguf_vtype gguf_kv_type(const struct gguf_file *f, int64_t i);

/* Typed getters by key name: true and *out set when the key exists and its value
 * converts without loss (any integer type in range for the integer getters,
 * FLOAT32 or FLOAT64 for gguf_get_f32). */
bool gguf_get_u32(const struct gguf_file *f, const char *key, uint32_t *out);
bool gguf_get_i64(const struct gguf_file *f, const char *key, int64_t *out);
bool gguf_get_f32(const struct gguf_file *f, const char *key, float *out);
bool gguf_get_bool(const struct gguf_file *f, const char *key, bool *out);
bool gguf_get_str(const struct gguf_file *f, const char *key, struct gguf_str *out);

/* Arrays: true when key holds an array; *elem_type and *n describe it. */
bool gguf_get_arr(const struct gguf_file *f, const char *key, enum gguf_vtype *elem_type, uint64_t *n);
/* The raw little-endian elements of a numeric array (not STRING/ARRAY), or NULL. */
const void *gguf_get_arr_data(const struct gguf_file *f, const char *key);
/* Element i of a STRING array; false if out of range or not a string array. */
bool gguf_get_arr_str(const struct gguf_file *f, const char *key, uint64_t i, struct gguf_str *out);

/* Tensors, in file order. */
int64_t gguf_n_tensors(const struct gguf_file *f);
const struct gguf_tensor *gguf_tensor_at(const struct gguf_file *f, int64_t i);
const struct gguf_tensor *gguf_find_tensor(const struct gguf_file *f, const char *name);
