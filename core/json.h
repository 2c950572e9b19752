/* json: building, parsing and printing JSON documents.
 *
 * A struct json is one node of a JSON tree (the library behind it stays out of
 * this header). A tree is owned by its root; json_free() frees the whole tree.
 * Parsing enforces a size and nesting limit so hostile input cannot exhaust
 * the stack or memory. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "core/qerr.h"

struct json;

#define JSON_MAX_DEPTH 64
#define JSON_MAX_BYTES (16u << 20)

struct json *json_new_object(void);
struct json *json_new_array(void);
void json_free(struct json *j);

/* Adders: the value is copied; item (for add_item/append) is taken over by the parent.
 * Each returns the added node (borrowed), or NULL on allocation failure. */
struct json *json_add_string(struct json *obj, const char *key, const char *value);
struct json *json_add_number(struct json *obj, const char *key, double value);
struct json *json_add_bool(struct json *obj, const char *key, bool value);
struct json *json_add_null(struct json *obj, const char *key);
struct json *json_add_item(struct json *obj, const char *key, struct json *item);
struct json *json_append(struct json *arr, struct json *item);

/* Text of the tree; caller frees with g_free(). pretty: indented. */
char *json_format(const struct json *j, bool pretty);

/* Parses text (len bytes, need not be NUL-terminated). *ret owned by the caller. */
enum qerr json_parse(const char *text, size_t len, struct json **ret, char **reterr) QUIRE_MUST_CHECK;

/* Accessors on parsed or built trees (borrowed results; NULL when absent or of another type). */
struct json *json_get(const struct json *obj, const char *key);
const char *json_get_string(const struct json *obj, const char *key);
bool json_get_number(const struct json *obj, const char *key, double *out);
bool json_is_null(const struct json *j);
const char *json_string_value(const struct json *j);
size_t json_array_size(const struct json *arr);
struct json *json_array_at(const struct json *arr, size_t i);

/* Objects member by member, in order: key and value of member i (borrowed), NULL past the end. */
size_t json_object_size(const struct json *obj);
struct json *json_object_at(const struct json *obj, size_t i, const char **ret_key);
/* A number's value; false for other types. */
bool json_number_value(const struct json *j, double *out);
/* A deep copy (owned by the caller), NULL on allocation failure. */
struct json *json_duplicate(const struct json *j);
/* Sets obj[key] to item (taken over), replacing a member of that name. Returns item. */
struct json *json_set_item(struct json *obj, const char *key, struct json *item);

/* Free-standing scalar nodes, for json_add_item/json_append. */
struct json *json_string(const char *value);
struct json *json_number(double value);
