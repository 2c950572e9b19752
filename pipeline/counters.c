/* counters: one upsert per completed job.
 *
 * Rows are written in (name, label) order, the same in every worker, so two
 * jobs completing at once lock the rows they share in the same order and
 * never deadlock. */
#include "pipeline/counters.h"

#include <glib.h>
#include <string.h>

#include "core/db.h"
#include "core/json.h"
#include "extractors/pdftext.h"

#define MAX_ROWS 8

struct row {
	const char *name, *label;
	double value;
};

enum qerr counters_add_job(struct db *db, const struct pdftext_doc *doc, const struct json *result, char **reterr)
{
	double pages[3] = {0}; /* none, ocr, text: label order */
	static const char *const methods[] = {"none", "ocr", "text"};
	for (int i = 0; i < doc->n_pages; i++)
		for (size_t m = 0; m < G_N_ELEMENTS(methods); m++)
			if (doc->pages[i].method && strcmp(doc->pages[i].method, methods[m]) == 0)
				pages[m]++;
	const struct json *model = json_get(result, "model");
	double prompt = 0, generated = 0, seconds = 0;
	json_get_number(model, "prompt_tokens", &prompt);
	json_get_number(model, "generated_tokens", &generated);
	json_get_number(model, "generation_seconds", &seconds);
	struct row all[MAX_ROWS] = {
	    {"model_documents", "", model ? 1 : 0},
	    {"model_generated_tokens", "", generated},
	    {"model_generation_seconds", "", seconds},
	    {"model_prompt_tokens", "", prompt},
	    {"pages", "none", pages[0]},
	    {"pages", "ocr", pages[1]},
	    {"pages", "text", pages[2]},
	};
	GString *sql = g_string_new("INSERT INTO counters (name, label, value) VALUES ");
	struct db_param p[3 * MAX_ROWS];
	char values[MAX_ROWS][G_ASCII_DTOSTR_BUF_SIZE];
	int n = 0;
	for (int i = 0; i < MAX_ROWS; i++) {
		if (!all[i].name || !(all[i].value > 0))
			continue;
		g_ascii_dtostr(values[n], sizeof values[n], all[i].value);
		g_string_append_printf(sql, "%s($%d, $%d, $%d::float8)", n ? ", " : "", 3 * n + 1, 3 * n + 2,
		                       3 * n + 3);
		p[3 * n] = DB_TEXT(all[i].name);
		p[3 * n + 1] = DB_TEXT(all[i].label);
		p[3 * n + 2] = DB_TEXT(values[n]);
		n++;
	}
	g_string_append(sql, " ON CONFLICT (name, label) DO UPDATE SET value = counters.value + EXCLUDED.value");
	enum qerr e = n ? db_query(db, sql->str, 3 * n, p, NULL, reterr) : QERR_OK;
	g_string_free(sql, TRUE);
	return e;
}
