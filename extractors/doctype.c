/* doctype: built-in and operator-supplied document type schemas. */
#include "extractors/doctype.h"

#include <gio/gio.h>
#include <glib.h>
#include <string.h>

#include "core/json.h"

struct doctypes {
	struct doctype types[DOCTYPE_MAX_TYPES];
	size_t n;
};

static const char *const BUILTIN[] = {"invoice", "receipt", "medical_record", "contract"};

/* Generated from extractors.gresource.xml: the schemas compiled into the binary. */
GResource *quire_extractors_resources_get_resource(void);

static bool valid_name(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 40)
		return false;
	for (const char *p = name; *p; p++)
		if (!g_ascii_islower(*p) && !g_ascii_isdigit(*p) && *p != '_')
			return false;
	return true;
}

/* A deep copy through text: the json helper has no clone. */
static struct json *copy_of(const struct json *j)
{
	g_autofree char *t = json_format(j, false);
	struct json *c = NULL;
	if (json_parse(t, strlen(t), &c, NULL))
		return NULL;
	return c;
}

/* The schema for the runtime: the keywords it knows, without "x-quire". */
static char *runtime_schema(const struct json *file)
{
	static const char *const keys[] = {"title", "description", "type", "properties", "required",
	                                   "additionalProperties", "$defs", "definitions"};
	struct json *s = json_new_object();
	for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
		const struct json *v = json_get(file, keys[i]);
		if (v)
			json_add_item(s, keys[i], copy_of(v));
	}
	char *text = json_format(s, false);
	json_free(s);
	return text;
}

static enum qerr parse_type(const char *name, const char *text, size_t len, const char *origin, struct doctype *ret,
                            char **reterr)
{
	if (!valid_name(name))
		return qerr_set(reterr, QERR_CONFIG, "%s: a type name is 1 to 40 of a-z, 0-9 and _", origin);
	if (len > DOCTYPE_MAX_FILE)
		return qerr_set(reterr, QERR_CONFIG, "%s: larger than %u bytes", origin, DOCTYPE_MAX_FILE);
	struct json *j = NULL;
	g_autofree char *err = NULL;
	if (json_parse(text, len, &j, &err))
		return qerr_set(reterr, QERR_CONFIG, "%s: %s", origin, err);
	const struct json *props = json_get(j, "properties");
	const struct json *req = json_get(j, "required");
	if (!props || json_array_size(req) == 0) {
		json_free(j);
		return qerr_set(reterr, QERR_CONFIG, "%s: needs \"properties\" and a \"required\" list of the fields", origin);
	}
	for (size_t i = 0; i < json_array_size(req); i++) {
		const char *f = json_string_value(json_array_at(req, i));
		if (!f || !json_get(props, f)) {
			json_free(j);
			return qerr_set(reterr, QERR_CONFIG, "%s: \"required\" names a field without a property", origin);
		}
	}
	ret->name = g_strdup(name);
	ret->schema = j;
	ret->hints = json_get(j, "x-quire");
	ret->schema_text = runtime_schema(j);
	return QERR_OK;
}

static void type_done(struct doctype *d)
{
	g_free(d->name);
	g_free(d->schema_text);
	json_free(d->schema);
	memset(d, 0, sizeof *d);
}

/* Adds or replaces (same name) a type. */
static enum qerr put_type(struct doctypes *t, struct doctype *d, char **reterr)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->types[i].name, d->name) == 0) {
			type_done(&t->types[i]);
			t->types[i] = *d;
			return QERR_OK;
		}
	if (t->n >= DOCTYPE_MAX_TYPES) {
		type_done(d);
		return qerr_set(reterr, QERR_CONFIG, "more than %d document types", DOCTYPE_MAX_TYPES);
	}
	t->types[t->n++] = *d;
	return QERR_OK;
}

static gint by_name(gconstpointer a, gconstpointer b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static enum qerr load_dir(struct doctypes *t, const char *dir, char **reterr)
{
	g_autoptr(GError) gerr = NULL;
	g_autoptr(GDir) d = g_dir_open(dir, 0, &gerr);
	if (!d)
		return qerr_set(reterr, QERR_CONFIG, "schemas directory %s: %s", dir, gerr->message);
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	for (const char *n; (n = g_dir_read_name(d));)
		if (g_str_has_suffix(n, ".json"))
			g_ptr_array_add(names, g_strdup(n));
	g_ptr_array_sort(names, by_name);
	for (guint i = 0; i < names->len; i++) {
		const char *file = g_ptr_array_index(names, i);
		g_autofree char *path = g_build_filename(dir, file, NULL);
		g_autofree char *name = g_strndup(file, strlen(file) - 5);
		g_autofree char *text = NULL;
		gsize len = 0;
		if (!g_file_get_contents(path, &text, &len, &gerr))
			return qerr_set(reterr, QERR_CONFIG, "%s", gerr->message);
		struct doctype dt = {0};
		enum qerr e = parse_type(name, text, len, path, &dt, reterr);
		if (!e)
			e = put_type(t, &dt, reterr);
		if (e)
			return e;
	}
	return QERR_OK;
}

enum qerr doctypes_load(const char *dir, struct doctypes **ret, char **reterr)
{
	struct doctypes *t = g_new0(struct doctypes, 1);
	enum qerr e = QERR_OK;
	for (size_t i = 0; i < G_N_ELEMENTS(BUILTIN) && !e; i++) {
		g_autofree char *path = g_strdup_printf("/quire/schemas/%s.json", BUILTIN[i]);
		GBytes *b = g_resource_lookup_data(quire_extractors_resources_get_resource(), path, 0, NULL);
		g_assert(b); /* compiled in */
		struct doctype dt = {.builtin = 1};
		e = parse_type(BUILTIN[i], g_bytes_get_data(b, NULL), g_bytes_get_size(b), path, &dt, reterr);
		g_bytes_unref(b);
		if (!e)
			e = put_type(t, &dt, reterr);
	}
	if (!e && dir && dir[0])
		e = load_dir(t, dir, reterr);
	if (e) {
		doctypes_free(t);
		return e;
	}
	*ret = t;
	return QERR_OK;
}

void doctypes_free(struct doctypes *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		type_done(&t->types[i]);
	g_free(t);
}

static GMutex shared_lock;
static struct doctypes *shared;

enum qerr doctypes_shared(const char *dir, const struct doctypes **ret, char **reterr)
{
	g_mutex_lock(&shared_lock);
	enum qerr e = shared ? QERR_OK : doctypes_load(dir, &shared, reterr);
	if (!e)
		*ret = shared;
	g_mutex_unlock(&shared_lock);
	return e;
}

size_t doctypes_count(const struct doctypes *t) { return t ? t->n : 0; }

const struct doctype *doctypes_at(const struct doctypes *t, size_t i) { return i < t->n ? &t->types[i] : NULL; }

const struct doctype *doctypes_find(const struct doctypes *t, const char *name)
{
	for (size_t i = 0; name && i < t->n; i++)
		if (strcmp(t->types[i].name, name) == 0)
			return &t->types[i];
	return NULL;
}

const struct json *doctype_fields(const struct doctype *d) { return json_get(d->schema, "required"); }

const struct json *doctype_field_hints(const struct doctype *d, const char *field)
{
	return json_get(json_get(d->hints, "fields"), field);
}

const struct json *doctype_property(const struct doctype *d, const char *field)
{
	return json_get(json_get(d->schema, "properties"), field);
}
