/* doctype: the document types Quire knows, each a JSON Schema file.
 *
 * A type is one file NAME.json: a JSON Schema (the subset runtime/jsonschema.h
 * accepts) of the fields, plus an "x-quire" object that says how to find them
 * without a model (labels, patterns, tables), which words classify a document
 * as this type, and which fields must be sure for automatic approval. The
 * built-in types (invoice, receipt, medical_record, contract) are compiled
 * in; an operator adds a type, or replaces a built-in one, by dropping a file
 * into the schemas directory (fields.schemas_dir), no rebuild needed. The
 * schema handed to the model is the file without "x-quire".
 *
 * A registry is immutable once loaded and may be shared by threads. */
#pragma once

#include <stddef.h>

#include "core/qerr.h"

struct json;

#define DOCTYPE_MAX_TYPES 64
#define DOCTYPE_MAX_FILE (256u << 10)

struct doctype {
	char *name;              /* file name without .json: [a-z0-9_]{1,40} */
	char *schema_text;       /* the JSON Schema without "x-quire", compact */
	struct json *schema;     /* the whole file, parsed */
	const struct json *hints; /* its "x-quire" object (borrowed from schema); may be NULL */
	int builtin;
};

struct doctypes;

/* Loads the built-in types, then every *.json in dir (NULL or "": none), whose
 * types replace built-in ones of the same name. A bad file is an error naming
 * it. *ret owned by the caller (doctypes_free). */
enum qerr doctypes_load(const char *dir, struct doctypes **ret, char **reterr) QUIRE_MUST_CHECK;
void doctypes_free(struct doctypes *t);

/* The process's registry for dir, loaded once and kept until exit (borrowed).
 * Later calls with another dir get the first one's registry. */
enum qerr doctypes_shared(const char *dir, const struct doctypes **ret, char **reterr) QUIRE_MUST_CHECK;

size_t doctypes_count(const struct doctypes *t);
const struct doctype *doctypes_at(const struct doctypes *t, size_t i);
/* The type called name, or NULL (borrowed). */
const struct doctype *doctypes_find(const struct doctypes *t, const char *name);

/* The names of the type's fields in schema order ("required", which every
 * built-in schema lists in full). Borrowed JSON array of strings. */
const struct json *doctype_fields(const struct doctype *d);
/* The "x-quire" hints of one field (an object), or NULL (borrowed). */
const struct json *doctype_field_hints(const struct doctype *d, const char *field);
/* The schema of one property, or NULL (borrowed). */
const struct json *doctype_property(const struct doctype *d, const char *field);
