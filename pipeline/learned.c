/* learned: learned_fields rows, sealed and keyed. */
#include "pipeline/learned.h"

#include <glib.h>
#include <string.h>

#include "core/db.h"
#include "core/json.h"
#include "core/vault.h"
#include "extractors/extract.h"
#include "extractors/layout.h"
#include "extractors/learn.h"
#include "extractors/pdftext.h"
#include "pipeline/store.h"

#define MAX_FIELDS 64

static char *purpose_of(const char *field) { return g_strdup_printf("learned:%s", field); }

static enum qerr put_hint(struct db *db, const struct vault *v, const struct vault_dek *dek, int64_t doc_id,
                          char *const *keys, const char *field, const struct json *hint, const char *actor,
                          char **reterr)
{
	g_autofree char *text = json_format(hint, false);
	g_autofree char *purpose = purpose_of(field);
	uint8_t *sealed = NULL;
	size_t slen = 0;
	enum qerr e = vault_seal(dek, doc_id, purpose, text, strlen(text), &sealed, &slen, reterr);
	char sid[24];
	g_snprintf(sid, sizeof sid, "%lld", (long long)doc_id);
	for (size_t i = 0; !e && keys[i]; i++) {
		uint8_t h[VAULT_HASH_BYTES];
		vault_keyed_hash(v, keys[i], strlen(keys[i]), h);
		struct db_param p[5] = {DB_BIN(h, sizeof h), DB_TEXT(field), DB_TEXT(sid), DB_BIN(sealed, slen),
		                        DB_TEXT(actor)};
		e = db_query(db,
		             "INSERT INTO learned_fields (supplier_key, field, document_id, hint, actor)"
		             " VALUES ($1, $2, $3::bigint, $4, $5) ON CONFLICT (supplier_key, field) DO UPDATE"
		             " SET document_id = EXCLUDED.document_id, hint = EXCLUDED.hint, actor = EXCLUDED.actor,"
		             " learned_at = now()",
		             5, p, NULL, reterr);
	}
	g_free(sealed);
	return e;
}

enum qerr learned_from_correction(struct db *db, const struct vault *v, int64_t doc_id, const struct json *result,
                                  const struct pdftext_doc *doc, const char *fields, const char *actor,
                                  int *ret_learned, char **reterr)
{
	int learned = 0;
	struct json *values = extract_values(result);
	char **keys = learn_supplier_keys(values, NULL);
	g_auto(GStrv) names = g_strsplit(fields ? fields : "", ",", MAX_FIELDS);
	struct layout *lay = keys[0] ? layout_build(doc) : NULL;
	struct vault_dek *dek = NULL;
	enum qerr e = lay ? store_dek(db, v, doc_id, &dek, reterr) : QERR_OK;
	for (size_t i = 0; !e && lay && names[i]; i++) {
		struct json *hint = names[i][0] ? learn_hint(lay, names[i], json_get(values, names[i])) : NULL;
		if (hint)
			e = put_hint(db, v, dek, doc_id, keys, names[i], hint, actor, reterr);
		learned += hint && !e;
		json_free(hint);
	}
	vault_dek_free(dek);
	layout_free(lay);
	g_strfreev(keys);
	json_free(values);
	if (!e && ret_learned)
		*ret_learned = learned;
	return e;
}

/* Opens one row's hint; NULL when its document's key is gone or the box does not open. */
static struct json *open_hint(struct db *db, const struct vault *v, const struct db_res *res, int row)
{
	const char *field = db_res_text(res, row, 0);
	int64_t doc_id = db_res_int(res, row, 1);
	size_t slen = 0;
	g_autofree uint8_t *sealed = db_res_bytea(res, row, 2, &slen);
	struct vault_dek *dek = NULL;
	struct vault_buf plain = {0};
	struct json *hint = NULL;
	g_autofree char *purpose = purpose_of(field);
	if (sealed && store_dek(db, v, doc_id, &dek, NULL) == QERR_OK &&
	    vault_unseal(dek, doc_id, purpose, sealed, slen, &plain, NULL) == QERR_OK &&
	    json_parse((const char *)plain.data, plain.len, &hint, NULL) != QERR_OK)
		hint = NULL;
	vault_buf_free(&plain);
	vault_dek_free(dek);
	return hint;
}

enum qerr learned_lookup(struct db *db, const struct vault *v, char *const *keys, struct json **ret, char **reterr)
{
	*ret = NULL;
	for (size_t i = 0; keys && keys[i]; i++) {
		uint8_t h[VAULT_HASH_BYTES];
		vault_keyed_hash(v, keys[i], strlen(keys[i]), h);
		struct db_param p[1] = {DB_BIN(h, sizeof h)};
		struct db_res *res = NULL;
		enum qerr e = db_query(db, "SELECT field, document_id, hint FROM learned_fields WHERE supplier_key = $1"
		                       " ORDER BY field", 1, p, &res, reterr);
		if (e)
			return e;
		struct json *hints = json_new_object();
		for (int r = 0; r < db_res_rows(res) && r < MAX_FIELDS; r++) {
			struct json *hint = open_hint(db, v, res, r);
			if (hint)
				json_set_item(hints, db_res_text(res, r, 0), hint);
		}
		db_res_free(res);
		if (json_object_size(hints) > 0) {
			*ret = hints;
			return QERR_OK;
		}
		json_free(hints);
	}
	return QERR_OK;
}
