/* json: the project's JSON helper over cJSON, with input limits. */
#include "core/json.h"

#include <cjson/cJSON.h>
#include <glib.h>
#include <stdint.h>
#include <string.h>

#define C(j) ((cJSON *)(j))
#define J(c) ((struct json *)(c))

struct json *json_new_object(void) { return J(cJSON_CreateObject()); }
struct json *json_new_array(void) { return J(cJSON_CreateArray()); }
void json_free(struct json *j) { cJSON_Delete(C(j)); }

struct json *json_add_string(struct json *obj, const char *key, const char *value)
{
	return J(cJSON_AddStringToObject(C(obj), key, value));
}
struct json *json_add_number(struct json *obj, const char *key, double value)
{
	return J(cJSON_AddNumberToObject(C(obj), key, value));
}
struct json *json_add_bool(struct json *obj, const char *key, bool value)
{
	return J(cJSON_AddBoolToObject(C(obj), key, value));
}
struct json *json_add_null(struct json *obj, const char *key) { return J(cJSON_AddNullToObject(C(obj), key)); }

struct json *json_add_item(struct json *obj, const char *key, struct json *item)
{
	if (!item)
		return NULL;
	if (!cJSON_AddItemToObject(C(obj), key, C(item))) {
		cJSON_Delete(C(item));
		return NULL;
	}
	return item;
}

struct json *json_append(struct json *arr, struct json *item)
{
	if (!item)
		return NULL;
	if (!cJSON_AddItemToArray(C(arr), C(item))) {
		cJSON_Delete(C(item));
		return NULL;
	}
	return item;
}

char *json_format(const struct json *j, bool pretty)
{
	char *s = pretty ? cJSON_Print(C(j)) : cJSON_PrintUnformatted(C(j));
	if (!s)
		return NULL;
	char *out = g_strdup(s);
	cJSON_free(s);
	return out;
}

/* cJSON recurses per nesting level; count depth first so deep input is refused
 * before it reaches the parser. Brackets inside strings do not count. */
static size_t max_depth(const char *p, size_t len)
{
	size_t depth = 0, deepest = 0;
	bool in_str = false;
	for (size_t i = 0; i < len; i++) {
		char c = p[i];
		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = false;
		} else if (c == '"') {
			in_str = true;
		} else if (c == '{' || c == '[') {
			if (++depth > deepest)
				deepest = depth;
		} else if ((c == '}' || c == ']') && depth > 0) {
			depth--;
		}
	}
	return deepest;
}

enum qerr json_parse(const char *text, size_t len, struct json **ret, char **reterr)
{
	if (len > JSON_MAX_BYTES)
		return qerr_set(reterr, QERR_TOO_LARGE, "JSON text of %zu bytes exceeds the %u byte limit", len,
		                JSON_MAX_BYTES);
	if (max_depth(text, len) > JSON_MAX_DEPTH)
		return qerr_set(reterr, QERR_BAD_INPUT, "JSON nested deeper than %d levels", JSON_MAX_DEPTH);
	const char *end = NULL;
	cJSON *c = cJSON_ParseWithLengthOpts(text, len, &end, false);
	if (!c) {
		size_t at = end && end >= text ? (size_t)(end - text) : 0;
		return qerr_set(reterr, QERR_BAD_INPUT, "invalid JSON near byte %zu", at);
	}
	*ret = J(c);
	return QERR_OK;
}

struct json *json_get(const struct json *obj, const char *key)
{
	return obj ? J(cJSON_GetObjectItemCaseSensitive(C(obj), key)) : NULL;
}

const char *json_get_string(const struct json *obj, const char *key)
{
	return json_string_value(json_get(obj, key));
}

bool json_get_number(const struct json *obj, const char *key, double *out)
{
	cJSON *c = C(json_get(obj, key));
	if (!cJSON_IsNumber(c))
		return false;
	*out = c->valuedouble;
	return true;
}

bool json_is_null(const struct json *j) { return cJSON_IsNull(C(j)); }

const char *json_string_value(const struct json *j)
{
	return cJSON_IsString(C(j)) ? C(j)->valuestring : NULL;
}

size_t json_array_size(const struct json *arr)
{
	return cJSON_IsArray(C(arr)) ? (size_t)cJSON_GetArraySize(C(arr)) : 0;
}

struct json *json_array_at(const struct json *arr, size_t i)
{
	if (i > (size_t)INT32_MAX)
		return NULL;
	return J(cJSON_GetArrayItem(C(arr), (int)i));
}

struct json *json_string(const char *value) { return J(cJSON_CreateString(value)); }
struct json *json_number(double value) { return J(cJSON_CreateNumber(value)); }

size_t json_object_size(const struct json *obj)
{
	return cJSON_IsObject(C(obj)) ? (size_t)cJSON_GetArraySize(C(obj)) : 0;
}

struct json *json_object_at(const struct json *obj, size_t i, const char **ret_key)
{
	if (!cJSON_IsObject(C(obj)) || i > (size_t)INT32_MAX)
		return NULL;
	cJSON *c = cJSON_GetArrayItem(C(obj), (int)i);
	if (c && ret_key)
		*ret_key = c->string;
	return J(c);
}

bool json_number_value(const struct json *j, double *out)
{
	if (!cJSON_IsNumber(C(j)))
		return false;
	*out = C(j)->valuedouble;
	return true;
}

struct json *json_duplicate(const struct json *j) { return J(cJSON_Duplicate(C(j), true)); }

struct json *json_set_item(struct json *obj, const char *key, struct json *item)
{
	if (!item)
		return NULL;
	if (cJSON_GetObjectItemCaseSensitive(C(obj), key))
		return cJSON_ReplaceItemInObjectCaseSensitive(C(obj), key, C(item)) ? item : NULL;
	return cJSON_AddItemToObject(C(obj), key, C(item)) ? item : NULL;
}
