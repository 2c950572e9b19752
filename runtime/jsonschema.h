/* jsonschema: a JSON Schema subset compiled into a graph of nodes, for the
 * token constraint (constraint.c) and for validating finished JSON texts.
 *
 * The subset: "type" (one name or an array of names, which makes a union),
 * object with "properties", "required" and "additionalProperties" (boolean;
 * unlike JSON Schema's default, keys not in "properties" are invalid unless it
 * is true, and generation never writes them);
 * string with "minLength", "maxLength", "enum", "const"; number; integer;
 * boolean; null; array with "items", "minItems", "maxItems"; "enum"/"const"
 * of strings, numbers, booleans and null; "anyOf"/"oneOf" whose alternatives
 * start with different bytes; local "$ref" to "#/$defs/..." or
 * "#/definitions/...". Annotations ("title", "description", "format",
 * "default", "examples", "$schema", "$id", "$comment") are ignored. Any other
 * keyword is refused with an error naming it and its path, so that a schema
 * never means less than it says.
 *
 * Invariants after a successful compile: every node index is in range, unions
 * hold only non-union alternatives whose first bytes differ, and every node has
 * a finite instance needing at most frames_needed nesting levels (so a
 * generator that respects the depth limit can always finish). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/rterror.h"

/* Built-in limits on what a schema may ask for. */
#define JSONSCHEMA_MAX_TEXT (1u << 20) /* bytes of schema text */
#define JSONSCHEMA_MAX_NODES 4096
#define JSONSCHEMA_MAX_PROPS 256        /* properties per object */
#define JSONSCHEMA_MAX_LITERALS 1024    /* enum values per node */
#define JSONSCHEMA_MAX_LITERAL_LEN 1024 /* bytes of one encoded key or enum value */
#define JSONSCHEMA_MAX_DEPTH 32         /* nesting of a JSON value (and of the schema) */
#define JSONSCHEMA_MAX_STRING 65536     /* code points of a string without maxLength */
#define JSONSCHEMA_MAX_ITEMS 65536      /* items of an array without maxItems */

enum jsonschema_kind {
	JSONSCHEMA_STRING,
	JSONSCHEMA_NUMBER,
	JSONSCHEMA_INTEGER,
	JSONSCHEMA_BOOLEAN,
	JSONSCHEMA_NULL,
	JSONSCHEMA_OBJECT,
	JSONSCHEMA_ARRAY,
	JSONSCHEMA_LITERALS, /* one of a fixed set of values (enum/const) */
	JSONSCHEMA_UNION,    /* one of several alternatives, told apart by the first byte */
	JSONSCHEMA_KIND_COUNT
};

/* A byte string (an encoded key or enum value in compact JSON). */
struct jsonschema_lit {
	char *text;
	uint32_t len;
};

struct jsonschema_prop {
	char *name;                /* decoded key, NUL-terminated */
	struct jsonschema_lit lit; /* the key as it is written: "name" with quotes */
	uint32_t node;
	bool required;
};

struct jsonschema_node {
	enum jsonschema_kind kind;
	uint32_t min_len, max_len;     /* STRING: code points */
	uint32_t min_items, max_items; /* ARRAY */
	uint32_t items;                /* ARRAY: node of each item */
	bool additional;               /* OBJECT: other keys are valid (never generated) */
	uint32_t n_props;              /* OBJECT, in schema order */
	struct jsonschema_prop *props;
	uint32_t n_lits; /* LITERALS */
	struct jsonschema_lit *lits;
	uint32_t n_alts; /* UNION */
	uint32_t *alts;
	uint32_t frames_needed; /* nesting levels of this node's smallest instance */
	uint8_t first[32];      /* bitset of the bytes an instance can start with */
	char *path;             /* where it was defined, for messages */
};

struct jsonschema {
	uint32_t n_nodes;
	struct jsonschema_node *nodes;
	uint32_t root;
};

/* Compiles schema text (JSON) into *ret, owned by the caller (jsonschema_free()).
 * RTERROR_FORMAT when the text is not JSON or not a schema; RTERROR_UNSUPPORTED
 * with the keyword and path for what the subset does not cover; RTERROR_LIMIT
 * past the limits above. */
enum rterror jsonschema_compile(const char *text, size_t len, struct jsonschema **ret, char **reterr)
    __attribute__((warn_unused_result));
void jsonschema_free(struct jsonschema *s);

/* Checks that json[0..len) is one JSON value valid for s (any key order, no
 * duplicate keys). RTERROR_FORMAT with the path of the first violation. */
enum rterror jsonschema_validate(const struct jsonschema *s, const char *json, size_t len, char **reterr)
    __attribute__((warn_unused_result));

static inline bool jsonschema_first_has(const struct jsonschema_node *n, uint8_t b)
{
	return (n->first[b >> 3] >> (b & 7)) & 1;
}
