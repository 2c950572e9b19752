/* jsonschema: compiles the JSON Schema subset described in jsonschema.h and
 * validates JSON texts against the result.
 *
 * Compilation walks the schema with cJSON. A "$ref" is memoised by its target,
 * so recursive schemas become cycles in the node graph rather than unbounded
 * recursion; "type" arrays, "anyOf" and "oneOf" become UNION nodes, which are
 * flattened once the graph is complete. The schema's nesting is bounded by
 * JSONSCHEMA_MAX_DEPTH and its size by JSONSCHEMA_MAX_NODES, so compiling any
 * input terminates with bounded memory. */
#include "runtime/jsonschema.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INF_FRAMES UINT32_MAX

struct memo {
	const cJSON *target;
	uint32_t node;
};

struct compiler {
	struct jsonschema *s;
	uint32_t cap;
	const cJSON *doc;
	struct memo *memo;
	uint32_t n_memo;
	char **reterr;
	uint32_t depth;
};

static const char *const annotations[] = {
    "title",    "description", "format",      "default",  "examples",  "$schema",    "$id",
    "$comment", "$defs",       "definitions", "readOnly", "writeOnly", "deprecated",
};

static const char *const keywords[] = {
    "type",      "properties", "required", "additionalProperties",
    "minLength", "maxLength",  "enum",     "const",
    "items",     "minItems",   "maxItems", "anyOf",
    "oneOf",     "$ref",
};

static bool in_list(const char *k, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(k, list[i]) == 0)
			return true;
	return false;
}

static void node_done(struct jsonschema_node *n)
{
	for (uint32_t i = 0; i < n->n_props; i++) {
		free(n->props[i].name);
		free(n->props[i].lit.text);
	}
	free(n->props);
	for (uint32_t i = 0; i < n->n_lits; i++)
		free(n->lits[i].text);
	free(n->lits);
	free(n->alts);
	free(n->path);
}

void jsonschema_free(struct jsonschema *s)
{
	if (!s)
		return;
	for (uint32_t i = 0; i < s->n_nodes; i++)
		node_done(&s->nodes[i]);
	free(s->nodes);
	free(s);
}

static void bit_set(uint8_t *set, uint8_t b)
{
	set[b >> 3] |= (uint8_t)(1u << (b & 7));
}

static enum rterror new_node(struct compiler *c, const char *path, uint32_t *ret)
{
	struct jsonschema *s = c->s;
	if (s->n_nodes >= JSONSCHEMA_MAX_NODES)
		return rterror_set(c->reterr, RTERROR_LIMIT, "schema has more than %d nodes at %s",
		                   JSONSCHEMA_MAX_NODES, path);
	if (s->n_nodes == c->cap) {
		uint32_t cap = c->cap ? c->cap * 2 : 16;
		struct jsonschema_node *n = realloc(s->nodes, cap * sizeof(*n));
		if (!n)
			return rterror_set(c->reterr, RTERROR_NOMEM, "out of memory compiling schema");
		s->nodes = n;
		c->cap = cap;
	}
	struct jsonschema_node *n = &s->nodes[s->n_nodes];
	memset(n, 0, sizeof(*n));
	n->path = strdup(path);
	if (!n->path)
		return rterror_set(c->reterr, RTERROR_NOMEM, "out of memory compiling schema");
	*ret = s->n_nodes++;
	return RTERROR_OK;
}

/* The compact JSON text of v (a scalar), malloc'd. */
static enum rterror encode_lit(struct compiler *c, const cJSON *v, const char *path, struct jsonschema_lit *out)
{
	if (cJSON_IsNumber(v) && !isfinite(v->valuedouble))
		return rterror_set(c->reterr, RTERROR_FORMAT, "non-finite number at %s", path);
	char *t = cJSON_PrintUnformatted(v);
	if (!t)
		return rterror_set(c->reterr, RTERROR_NOMEM, "out of memory compiling schema");
	size_t len = strlen(t);
	if (len == 0 || len > JSONSCHEMA_MAX_LITERAL_LEN) {
		free(t);
		return rterror_set(c->reterr, RTERROR_LIMIT, "value longer than %d bytes at %s",
		                   JSONSCHEMA_MAX_LITERAL_LEN, path);
	}
	out->text = t;
	out->len = (uint32_t)len;
	return RTERROR_OK;
}

/* A non-negative integer keyword, or def when absent. */
static enum rterror get_count(struct compiler *c, const cJSON *js, const char *key, uint32_t def, uint32_t max,
                              const char *path, uint32_t *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(js, key);
	if (!v) {
		*out = def;
		return RTERROR_OK;
	}
	if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble != floor(v->valuedouble))
		return rterror_set(c->reterr, RTERROR_FORMAT, "%s at %s is not a non-negative integer", key, path);
	*out = v->valuedouble > max ? max : (uint32_t)v->valuedouble;
	return RTERROR_OK;
}

static enum rterror compile_node(struct compiler *c, const cJSON *js, const char *path, uint32_t *ret);

static enum rterror compile_sub(struct compiler *c, const cJSON *js, const char *path, const char *seg,
                                const char *seg2, uint32_t *ret)
{
	char sub[512];
	snprintf(sub, sizeof(sub), "%s/%s%s%s", path, seg, seg2 ? "/" : "", seg2 ? seg2 : "");
	return compile_node(c, js, sub, ret);
}

static enum rterror compile_object(struct compiler *c, const cJSON *js, const char *path, uint32_t idx)
{
	const cJSON *props = cJSON_GetObjectItemCaseSensitive(js, "properties");
	const cJSON *req = cJSON_GetObjectItemCaseSensitive(js, "required");
	const cJSON *add = cJSON_GetObjectItemCaseSensitive(js, "additionalProperties");
	if (props && !cJSON_IsObject(props))
		return rterror_set(c->reterr, RTERROR_FORMAT, "properties at %s is not an object", path);
	if (req && !cJSON_IsArray(req))
		return rterror_set(c->reterr, RTERROR_FORMAT, "required at %s is not an array", path);
	if (add && !cJSON_IsBool(add))
		return rterror_set(c->reterr, RTERROR_UNSUPPORTED, "additionalProperties at %s must be true or false",
		                   path);
	c->s->nodes[idx].additional = add && cJSON_IsTrue(add);
	int n = props ? cJSON_GetArraySize(props) : 0;
	if (n > JSONSCHEMA_MAX_PROPS)
		return rterror_set(c->reterr, RTERROR_LIMIT, "more than %d properties at %s", JSONSCHEMA_MAX_PROPS,
		                   path);
	struct jsonschema_prop *pr = calloc(n ? (size_t)n : 1, sizeof(*pr));
	if (!pr)
		return rterror_set(c->reterr, RTERROR_NOMEM, "out of memory compiling schema");
	c->s->nodes[idx].props = pr;
	uint32_t k = 0;
	for (const cJSON *p = props ? props->child : NULL; p; p = p->next, k++) {
		for (uint32_t j = 0; j < k; j++)
			if (strcmp(pr[j].name, p->string) == 0)
				return rterror_set(c->reterr, RTERROR_FORMAT, "property \"%s\" defined twice at %s",
				                   p->string, path);
		pr[k].name = strdup(p->string);
		c->s->nodes[idx].n_props = k + 1;
		cJSON *key = cJSON_CreateString(p->string);
		enum rterror e = pr[k].name && key ? encode_lit(c, key, path, &pr[k].lit)
		                                   : rterror_set(c->reterr, RTERROR_NOMEM, "out of memory");
		cJSON_Delete(key);
		if (e)
			return e;
		uint32_t child;
		e = compile_sub(c, p, path, "properties", p->string, &child);
		if (e)
			return e;
		/* nodes may have moved: index again */
		c->s->nodes[idx].props[k].node = child;
	}
	for (const cJSON *r = req ? req->child : NULL; r; r = r->next) {
		if (!cJSON_IsString(r))
			return rterror_set(c->reterr, RTERROR_FORMAT, "required at %s holds a non-string", path);
		uint32_t j = 0;
		while (j < k && strcmp(pr[j].name, r->valuestring) != 0)
			j++;
		if (j == k)
			return rterror_set(c->reterr, RTERROR_UNSUPPORTED,
			                   "required property \"%s\" at %s is not in properties", r->valuestring, path);
		pr[j].required = true;
	}
	return RTERROR_OK;
}

static enum rterror compile_typed(struct compiler *c, const cJSON *js, const char *type, const char *path, uint32_t idx)
{
	static const char *const names[] = {"string", "number", "integer", "boolean", "null", "object", "array"};
	enum jsonschema_kind kind = JSONSCHEMA_KIND_COUNT;
	for (int i = 0; i < 7; i++)
		if (strcmp(type, names[i]) == 0)
			kind = (enum jsonschema_kind)i;
	if (kind == JSONSCHEMA_KIND_COUNT)
		return rterror_set(c->reterr, RTERROR_UNSUPPORTED, "type \"%s\" at %s is not supported", type, path);
	c->s->nodes[idx].kind = kind;
	enum rterror e = RTERROR_OK;
	if (kind == JSONSCHEMA_STRING) {
		uint32_t lo = 0, hi = 0;
		e = get_count(c, js, "minLength", 0, JSONSCHEMA_MAX_STRING, path, &lo);
		if (!e)
			e = get_count(c, js, "maxLength", JSONSCHEMA_MAX_STRING, JSONSCHEMA_MAX_STRING, path, &hi);
		if (!e && lo > hi)
			e = rterror_set(c->reterr, RTERROR_FORMAT, "minLength > maxLength at %s", path);
		c->s->nodes[idx].min_len = lo;
		c->s->nodes[idx].max_len = hi;
	} else if (kind == JSONSCHEMA_ARRAY) {
		const cJSON *items = cJSON_GetObjectItemCaseSensitive(js, "items");
		if (!items)
			return rterror_set(c->reterr, RTERROR_UNSUPPORTED, "array without items at %s", path);
		uint32_t lo = 0, hi = 0, child = 0;
		e = get_count(c, js, "minItems", 0, JSONSCHEMA_MAX_ITEMS, path, &lo);
		if (!e)
			e = get_count(c, js, "maxItems", JSONSCHEMA_MAX_ITEMS, JSONSCHEMA_MAX_ITEMS, path, &hi);
		if (!e && lo > hi)
			e = rterror_set(c->reterr, RTERROR_FORMAT, "minItems > maxItems at %s", path);
		if (!e)
			e = compile_sub(c, items, path, "items", NULL, &child);
		if (e)
			return e;
		c->s->nodes[idx].min_items = lo;
		c->s->nodes[idx].max_items = hi;
		c->s->nodes[idx].items = child;
	} else if (kind == JSONSCHEMA_OBJECT) {
		e = compile_object(c, js, path, idx);
	}
	return e;
}

static enum rterror compile_literals(struct compiler *c, const cJSON *js, const char *path, uint32_t idx)
{
	const cJSON *en = cJSON_GetObjectItemCaseSensitive(js, "enum");
	const cJSON *co = cJSON_GetObjectItemCaseSensitive(js, "const");
	if (en && co)
		return rterror_set(c->reterr, RTERROR_UNSUPPORTED, "both enum and const at %s", path);
	if (en && (!cJSON_IsArray(en) || cJSON_GetArraySize(en) == 0))
		return rterror_set(c->reterr, RTERROR_FORMAT, "enum at %s is not a non-empty array", path);
	int n = en ? cJSON_GetArraySize(en) : 1;
	if (n > JSONSCHEMA_MAX_LITERALS)
		return rterror_set(c->reterr, RTERROR_LIMIT, "more than %d enum values at %s", JSONSCHEMA_MAX_LITERALS,
		                   path);
	struct jsonschema_node *node = &c->s->nodes[idx];
	node->kind = JSONSCHEMA_LITERALS;
	node->lits = calloc((size_t)n, sizeof(*node->lits));
	if (!node->lits)
		return rterror_set(c->reterr, RTERROR_NOMEM, "out of memory compiling schema");
	const cJSON *v = en ? en->child : co;
	for (int i = 0; i < n && v; i++, v = v->next) {
		if (cJSON_IsArray(v) || cJSON_IsObject(v))
			return rterror_set(c->reterr, RTERROR_UNSUPPORTED,
			                   "enum/const value at %s is an object or array", path);
		enum rterror e = encode_lit(c, v, path, &node->lits[i]);
		if (e)
			return e;
		node->n_lits = (uint32_t)i + 1;
	}
	return RTERROR_OK;
}

static enum rterror resolve_ref(struct compiler *c, const cJSON *ref, const char *path, uint32_t idx)
{
	if (!cJSON_IsString(ref))
		return rterror_set(c->reterr, RTERROR_FORMAT, "$ref at %s is not a string", path);
	const char *r = ref->valuestring;
	const char *name = NULL;
	const cJSON *defs = NULL;
	if (strncmp(r, "#/$defs/", 8) == 0) {
		defs = cJSON_GetObjectItemCaseSensitive(c->doc, "$defs");
		name = r + 8;
	} else if (strncmp(r, "#/definitions/", 14) == 0) {
		defs = cJSON_GetObjectItemCaseSensitive(c->doc, "definitions");
		name = r + 14;
	} else if (strcmp(r, "#") == 0) {
		defs = NULL;
	} else {
		return rterror_set(c->reterr, RTERROR_UNSUPPORTED,
		                   "$ref \"%s\" at %s is not local (#/$defs/... or #/definitions/...)", r, path);
	}
	const cJSON *target = name ? cJSON_GetObjectItemCaseSensitive(defs, name) : c->doc;
	if (!target || strchr(name ? name : "", '/'))
		return rterror_set(c->reterr, RTERROR_FORMAT, "$ref \"%s\" at %s points nowhere", r, path);
	uint32_t child = UINT32_MAX;
	for (uint32_t i = 0; i < c->n_memo; i++)
		if (c->memo[i].target == target)
			child = c->memo[i].node;
	if (child == UINT32_MAX) {
		if (c->n_memo >= JSONSCHEMA_MAX_NODES)
			return rterror_set(c->reterr, RTERROR_LIMIT, "too many $refs at %s", path);
		enum rterror e = compile_node(c, target, r, &child);
		if (e)
			return e;
	}
	struct jsonschema_node *n = &c->s->nodes[idx];
	n->kind = JSONSCHEMA_UNION;
	n->alts = malloc(sizeof(uint32_t));
	if (!n->alts)
		return rterror_set(c->reterr, RTERROR_NOMEM, "out of memory compiling schema");
	n->alts[0] = child;
	n->n_alts = 1;
	return RTERROR_OK;
}

static enum rterror compile_union(struct compiler *c, const cJSON *list, const cJSON *typelist, const cJSON *js,
                                  const char *path, uint32_t idx)
{
	const cJSON *l = list ? list : typelist;
	int n = cJSON_GetArraySize(l);
	if (!cJSON_IsArray(l) || n == 0 || n > JSONSCHEMA_MAX_PROPS)
		return rterror_set(c->reterr, RTERROR_FORMAT, "%s at %s is not a usable array",
		                   list ? "anyOf/oneOf" : "type", path);
	uint32_t *alts = calloc((size_t)n, sizeof(*alts));
	if (!alts)
		return rterror_set(c->reterr, RTERROR_NOMEM, "out of memory compiling schema");
	c->s->nodes[idx].kind = JSONSCHEMA_UNION;
	c->s->nodes[idx].alts = alts;
	int i = 0;
	for (const cJSON *a = l->child; a; a = a->next, i++) {
		uint32_t child;
		enum rterror e;
		char num[16];
		snprintf(num, sizeof(num), "%d", i);
		if (list) {
			e = compile_sub(c, a, path, "anyOf", num, &child);
		} else if (!cJSON_IsString(a)) {
			e = rterror_set(c->reterr, RTERROR_FORMAT, "type at %s holds a non-string", path);
		} else {
			e = new_node(c, path, &child);
			if (!e)
				e = compile_typed(c, js, a->valuestring, path, child);
		}
		if (e)
			return e;
		c->s->nodes[idx].alts[i] = child;
		c->s->nodes[idx].n_alts = (uint32_t)i + 1;
	}
	return RTERROR_OK;
}

static enum rterror check_keywords(struct compiler *c, const cJSON *js, const char *path)
{
	for (const cJSON *k = js->child; k; k = k->next) {
		if (in_list(k->string, keywords, sizeof(keywords) / sizeof(keywords[0])) ||
		    in_list(k->string, annotations, sizeof(annotations) / sizeof(annotations[0])))
			continue;
		return rterror_set(c->reterr, RTERROR_UNSUPPORTED, "schema keyword \"%s\" at %s is not supported",
		                   k->string, path);
	}
	return RTERROR_OK;
}

static enum rterror compile_node(struct compiler *c, const cJSON *js, const char *path, uint32_t *ret)
{
	if (!cJSON_IsObject(js))
		return rterror_set(c->reterr, RTERROR_UNSUPPORTED,
		                   "schema at %s is not an object (true/false schemas are not supported)", path);
	if (c->depth >= JSONSCHEMA_MAX_DEPTH)
		return rterror_set(c->reterr, RTERROR_LIMIT, "schema nested deeper than %d at %s", JSONSCHEMA_MAX_DEPTH,
		                   path);
	enum rterror e = check_keywords(c, js, path);
	uint32_t idx = 0;
	if (!e)
		e = new_node(c, path, &idx);
	if (e)
		return e;
	struct memo *m = realloc(c->memo, (c->n_memo + 1) * sizeof(*m));
	if (!m)
		return rterror_set(c->reterr, RTERROR_NOMEM, "out of memory compiling schema");
	c->memo = m;
	c->memo[c->n_memo++] = (struct memo){js, idx};
	c->depth++;
	const cJSON *ref = cJSON_GetObjectItemCaseSensitive(js, "$ref");
	const cJSON *any = cJSON_GetObjectItemCaseSensitive(js, "anyOf");
	const cJSON *one = cJSON_GetObjectItemCaseSensitive(js, "oneOf");
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(js, "type");
	int n_forms = !!ref + !!any + !!one;
	if (n_forms > 1 || (n_forms && (type || cJSON_HasObjectItem(js, "enum"))))
		e = rterror_set(c->reterr, RTERROR_UNSUPPORTED,
		                "$ref/anyOf/oneOf combined with other constraints at %s", path);
	else if (ref)
		e = resolve_ref(c, ref, path, idx);
	else if (any || one)
		e = compile_union(c, any ? any : one, NULL, js, path, idx);
	else if (cJSON_HasObjectItem(js, "enum") || cJSON_HasObjectItem(js, "const"))
		e = compile_literals(c, js, path, idx);
	else if (cJSON_IsArray(type))
		e = compile_union(c, NULL, type, js, path, idx);
	else if (cJSON_IsString(type))
		e = compile_typed(c, js, type->valuestring, path, idx);
	else if (type)
		e = rterror_set(c->reterr, RTERROR_FORMAT, "type at %s is not a string or array", path);
	else if (cJSON_HasObjectItem(js, "properties"))
		e = compile_typed(c, js, "object", path, idx);
	else if (cJSON_HasObjectItem(js, "items"))
		e = compile_typed(c, js, "array", path, idx);
	else
		e = rterror_set(c->reterr, RTERROR_UNSUPPORTED, "schema at %s allows any value; give it a type", path);
	c->depth--;
	if (!e)
		*ret = idx;
	return e;
}

/* Appends the non-union alternatives reachable from node i to out (deduplicated). */
static enum rterror flatten(struct compiler *c, uint32_t i, uint8_t *visiting, uint32_t *out, uint32_t *n_out)
{
	struct jsonschema_node *n = &c->s->nodes[i];
	if (n->kind != JSONSCHEMA_UNION) {
		for (uint32_t k = 0; k < *n_out; k++)
			if (out[k] == i)
				return RTERROR_OK;
		out[(*n_out)++] = i;
		return RTERROR_OK;
	}
	if (visiting[i])
		return rterror_set(c->reterr, RTERROR_FORMAT, "$ref cycle without progress at %s", n->path);
	visiting[i] = 1;
	for (uint32_t k = 0; k < n->n_alts; k++) {
		enum rterror e = flatten(c, n->alts[k], visiting, out, n_out);
		if (e)
			return e;
	}
	visiting[i] = 0;
	return RTERROR_OK;
}

static void first_bytes(struct jsonschema_node *n)
{
	memset(n->first, 0, sizeof(n->first));
	switch (n->kind) {
	case JSONSCHEMA_STRING:
		bit_set(n->first, '"');
		break;
	case JSONSCHEMA_NUMBER:
	case JSONSCHEMA_INTEGER:
		bit_set(n->first, '-');
		for (int d = '0'; d <= '9'; d++)
			bit_set(n->first, (uint8_t)d);
		break;
	case JSONSCHEMA_BOOLEAN:
		bit_set(n->first, 't');
		bit_set(n->first, 'f');
		break;
	case JSONSCHEMA_NULL:
		bit_set(n->first, 'n');
		break;
	case JSONSCHEMA_OBJECT:
		bit_set(n->first, '{');
		break;
	case JSONSCHEMA_ARRAY:
		bit_set(n->first, '[');
		break;
	case JSONSCHEMA_LITERALS:
		for (uint32_t k = 0; k < n->n_lits; k++)
			bit_set(n->first, (uint8_t)n->lits[k].text[0]);
		break;
	default:
		break;
	}
}

static enum rterror finish_union(struct compiler *c, uint32_t i, uint8_t *visiting, uint32_t *tmp)
{
	uint32_t n_out = 0;
	enum rterror e = flatten(c, i, visiting, tmp, &n_out);
	if (e)
		return e;
	struct jsonschema *s = c->s;
	bool has_number = false;
	for (uint32_t k = 0; k < n_out; k++)
		has_number |= s->nodes[tmp[k]].kind == JSONSCHEMA_NUMBER;
	uint32_t w = 0;
	for (uint32_t k = 0; k < n_out; k++)
		if (!(has_number && s->nodes[tmp[k]].kind == JSONSCHEMA_INTEGER))
			tmp[w++] = tmp[k];
	uint8_t seen[32] = {0};
	for (uint32_t k = 0; k < w; k++) {
		const struct jsonschema_node *a = &s->nodes[tmp[k]];
		for (int b = 0; b < 32; b++) {
			if (seen[b] & a->first[b])
				return rterror_set(c->reterr, RTERROR_UNSUPPORTED,
				                   "alternatives at %s can start with the same character",
				                   s->nodes[i].path);
			seen[b] |= a->first[b];
		}
	}
	uint32_t *alts = realloc(s->nodes[i].alts, (w ? w : 1) * sizeof(*alts));
	if (!alts)
		return rterror_set(c->reterr, RTERROR_NOMEM, "out of memory compiling schema");
	memcpy(alts, tmp, w * sizeof(*alts));
	s->nodes[i].alts = alts;
	s->nodes[i].n_alts = w;
	memcpy(s->nodes[i].first, seen, sizeof(seen));
	return RTERROR_OK;
}

static uint32_t frames_of(const struct jsonschema *s, const struct jsonschema_node *n)
{
	uint32_t f = 1, best = INF_FRAMES;
	switch (n->kind) {
	case JSONSCHEMA_OBJECT:
		for (uint32_t k = 0; k < n->n_props; k++) {
			if (!n->props[k].required)
				continue;
			uint32_t cf = s->nodes[n->props[k].node].frames_needed;
			if (cf == INF_FRAMES)
				return INF_FRAMES;
			f = cf + 1 > f ? cf + 1 : f;
		}
		return f;
	case JSONSCHEMA_ARRAY:
		if (n->min_items == 0)
			return 1;
		f = s->nodes[n->items].frames_needed;
		return f == INF_FRAMES ? f : f + 1;
	case JSONSCHEMA_UNION:
		for (uint32_t k = 0; k < n->n_alts; k++)
			if (s->nodes[n->alts[k]].frames_needed < best)
				best = s->nodes[n->alts[k]].frames_needed;
		return best;
	default:
		return 1;
	}
}

static enum rterror finalize(struct compiler *c)
{
	struct jsonschema *s = c->s;
	uint8_t *visiting = calloc(s->n_nodes, 1);
	uint32_t *tmp = calloc(s->n_nodes, sizeof(*tmp));
	enum rterror e = RTERROR_OK;
	if (!visiting || !tmp) {
		e = rterror_set(c->reterr, RTERROR_NOMEM, "out of memory compiling schema");
		goto out;
	}
	for (uint32_t i = 0; i < s->n_nodes; i++)
		if (s->nodes[i].kind != JSONSCHEMA_UNION)
			first_bytes(&s->nodes[i]);
	for (uint32_t i = 0; i < s->n_nodes && !e; i++)
		if (s->nodes[i].kind == JSONSCHEMA_UNION)
			e = finish_union(c, i, visiting, tmp);
	if (e)
		goto out;
	for (uint32_t i = 0; i < s->n_nodes; i++)
		s->nodes[i].frames_needed = INF_FRAMES;
	for (bool changed = true; changed;) {
		changed = false;
		for (uint32_t i = 0; i < s->n_nodes; i++) {
			uint32_t f = frames_of(s, &s->nodes[i]);
			if (f < s->nodes[i].frames_needed) {
				s->nodes[i].frames_needed = f;
				changed = true;
			}
		}
	}
	if (s->nodes[s->root].frames_needed > JSONSCHEMA_MAX_DEPTH)
		e = rterror_set(c->reterr, RTERROR_UNSUPPORTED,
		                "schema has no instance nested at most %d deep (required recursion?)",
		                JSONSCHEMA_MAX_DEPTH);
out:
	free(visiting);
	free(tmp);
	return e;
}

enum rterror jsonschema_compile(const char *text, size_t len, struct jsonschema **ret, char **reterr)
{
	if (!text || !ret)
		return rterror_set(reterr, RTERROR_INVALID, "jsonschema_compile: NULL argument");
	if (len > JSONSCHEMA_MAX_TEXT)
		return rterror_set(reterr, RTERROR_LIMIT, "schema longer than %u bytes", JSONSCHEMA_MAX_TEXT);
	struct compiler c = {.reterr = reterr};
	enum rterror e = RTERROR_OK;
	const char *end = NULL;
	cJSON *doc = cJSON_ParseWithLengthOpts(text, len, &end, false);
	if (!doc) {
		e = rterror_set(reterr, RTERROR_FORMAT, "schema is not valid JSON (near byte %td)",
		                end ? end - text : (ptrdiff_t)0);
		goto out;
	}
	c.doc = doc;
	c.s = calloc(1, sizeof(*c.s));
	if (!c.s) {
		e = rterror_set(reterr, RTERROR_NOMEM, "out of memory compiling schema");
		goto out;
	}
	e = compile_node(&c, doc, "#", &c.s->root);
	if (!e)
		e = finalize(&c);
out:
	cJSON_Delete(doc);
	free(c.memo);
	if (e) {
		jsonschema_free(c.s);
		return e;
	}
	*ret = c.s;
	return RTERROR_OK;
}

/* ---- validation ---- */

static size_t utf8_count(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += ((uint8_t)*s & 0xC0) != 0x80;
	return n;
}

struct vpath {
	char buf[512];
	size_t len;
};

static size_t vpath_push(struct vpath *p, const char *seg, int index)
{
	size_t old = p->len;
	int w = seg ? snprintf(p->buf + old, sizeof(p->buf) - old, "/%s", seg)
	            : snprintf(p->buf + old, sizeof(p->buf) - old, "/%d", index);
	if (w > 0)
		p->len = old + (size_t)w < sizeof(p->buf) ? old + (size_t)w : sizeof(p->buf) - 1;
	return old;
}

static void vpath_pop(struct vpath *p, size_t old)
{
	p->len = old;
	p->buf[old] = '\0';
}

static enum rterror vnode(const struct jsonschema *s, uint32_t i, const cJSON *v, struct vpath *p, int depth,
                          char **reterr);

static enum rterror vobject(const struct jsonschema *s, const struct jsonschema_node *n, const cJSON *v,
                            struct vpath *p, int depth, char **reterr)
{
	const char *at = p->len ? p->buf : "/";
	if (!cJSON_IsObject(v))
		return rterror_set(reterr, RTERROR_FORMAT, "value at %s is not an object", at);
	int count = 0;
	for (const cJSON *k = v->child; k; k = k->next, count++) {
		if (count > 4 * JSONSCHEMA_MAX_PROPS)
			return rterror_set(reterr, RTERROR_LIMIT, "object at %s has too many keys", at);
		for (const cJSON *o = v->child; o != k; o = o->next)
			if (strcmp(o->string, k->string) == 0)
				return rterror_set(reterr, RTERROR_FORMAT, "key \"%s\" repeated at %s", k->string, at);
		uint32_t j = 0;
		while (j < n->n_props && strcmp(n->props[j].name, k->string) != 0)
			j++;
		if (j == n->n_props) {
			if (n->additional)
				continue;
			return rterror_set(reterr, RTERROR_FORMAT, "unexpected key \"%s\" at %s", k->string, at);
		}
		size_t old = vpath_push(p, k->string, 0);
		enum rterror e = vnode(s, n->props[j].node, k, p, depth + 1, reterr);
		vpath_pop(p, old);
		if (e)
			return e;
	}
	for (uint32_t j = 0; j < n->n_props; j++)
		if (n->props[j].required && !cJSON_GetObjectItemCaseSensitive(v, n->props[j].name))
			return rterror_set(reterr, RTERROR_FORMAT, "required key \"%s\" missing at %s",
			                   n->props[j].name, at);
	return RTERROR_OK;
}

static enum rterror varray(const struct jsonschema *s, const struct jsonschema_node *n, const cJSON *v, struct vpath *p,
                           int depth, char **reterr)
{
	const char *at = p->len ? p->buf : "/";
	if (!cJSON_IsArray(v))
		return rterror_set(reterr, RTERROR_FORMAT, "value at %s is not an array", at);
	uint32_t count = 0;
	for (const cJSON *it = v->child; it; it = it->next, count++) {
		if (count >= n->max_items)
			return rterror_set(reterr, RTERROR_FORMAT, "array at %s has more than %u items", at,
			                   n->max_items);
		size_t old = vpath_push(p, NULL, (int)count);
		enum rterror e = vnode(s, n->items, it, p, depth + 1, reterr);
		vpath_pop(p, old);
		if (e)
			return e;
	}
	if (count < n->min_items)
		return rterror_set(reterr, RTERROR_FORMAT, "array at %s has fewer than %u items", at, n->min_items);
	return RTERROR_OK;
}

static enum rterror vnode(const struct jsonschema *s, uint32_t i, const cJSON *v, struct vpath *p, int depth,
                          char **reterr)
{
	const struct jsonschema_node *n = &s->nodes[i];
	const char *at = p->len ? p->buf : "/";
	if (depth > JSONSCHEMA_MAX_DEPTH)
		return rterror_set(reterr, RTERROR_LIMIT, "value nested deeper than %d at %s", JSONSCHEMA_MAX_DEPTH,
		                   at);
	switch (n->kind) {
	case JSONSCHEMA_STRING: {
		if (!cJSON_IsString(v))
			return rterror_set(reterr, RTERROR_FORMAT, "value at %s is not a string", at);
		size_t cp = utf8_count(v->valuestring);
		if (cp < n->min_len || cp > n->max_len)
			return rterror_set(reterr, RTERROR_FORMAT, "string at %s has %zu characters, outside [%u, %u]",
			                   at, cp, n->min_len, n->max_len);
		return RTERROR_OK;
	}
	case JSONSCHEMA_NUMBER:
	case JSONSCHEMA_INTEGER:
		if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) ||
		    (n->kind == JSONSCHEMA_INTEGER && v->valuedouble != floor(v->valuedouble)))
			return rterror_set(reterr, RTERROR_FORMAT, "value at %s is not %s", at,
			                   n->kind == JSONSCHEMA_INTEGER ? "an integer" : "a number");
		return RTERROR_OK;
	case JSONSCHEMA_BOOLEAN:
		return cJSON_IsBool(v) ? RTERROR_OK
		                       : rterror_set(reterr, RTERROR_FORMAT, "value at %s is not a boolean", at);
	case JSONSCHEMA_NULL:
		return cJSON_IsNull(v) ? RTERROR_OK
		                       : rterror_set(reterr, RTERROR_FORMAT, "value at %s is not null", at);
	case JSONSCHEMA_OBJECT:
		return vobject(s, n, v, p, depth, reterr);
	case JSONSCHEMA_ARRAY:
		return varray(s, n, v, p, depth, reterr);
	case JSONSCHEMA_LITERALS: {
		if (cJSON_IsArray(v) || cJSON_IsObject(v))
			return rterror_set(reterr, RTERROR_FORMAT, "value at %s is not one of the enum values", at);
		char *t = cJSON_PrintUnformatted(v);
		if (!t)
			return rterror_set(reterr, RTERROR_NOMEM, "out of memory validating");
		bool found = false;
		for (uint32_t k = 0; k < n->n_lits && !found; k++)
			found = strcmp(n->lits[k].text, t) == 0;
		free(t);
		return found ? RTERROR_OK
		             : rterror_set(reterr, RTERROR_FORMAT, "value at %s is not one of the enum values", at);
	}
	case JSONSCHEMA_UNION:
		for (uint32_t k = 0; k < n->n_alts; k++)
			if (vnode(s, n->alts[k], v, p, depth, NULL) == RTERROR_OK)
				return RTERROR_OK;
		return rterror_set(reterr, RTERROR_FORMAT, "value at %s matches none of the allowed types", at);
	default:
		return rterror_set(reterr, RTERROR_INVALID, "corrupt schema node at %s", at);
	}
}

enum rterror jsonschema_validate(const struct jsonschema *s, const char *json, size_t len, char **reterr)
{
	if (!s || !json)
		return rterror_set(reterr, RTERROR_INVALID, "jsonschema_validate: NULL argument");
	const char *end = NULL;
	cJSON *v = cJSON_ParseWithLengthOpts(json, len, &end, false);
	if (!v)
		return rterror_set(reterr, RTERROR_FORMAT, "not valid JSON (near byte %td)",
		                   end ? end - json : (ptrdiff_t)0);
	while (end && end < json + len && (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t'))
		end++;
	enum rterror e = RTERROR_OK;
	if (end != json + len)
		e = rterror_set(reterr, RTERROR_FORMAT, "text after the JSON value at byte %td", end - json);
	struct vpath p = {.len = 0};
	p.buf[0] = '\0';
	if (!e)
		e = vnode(s, s->root, v, &p, 0, reterr);
	cJSON_Delete(v);
	return e;
}
