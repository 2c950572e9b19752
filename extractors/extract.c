/* extract: sandboxed parsing, then field extraction. */
#include "extractors/extract.h"

#include <glib.h>

#include "core/json.h"
#include "extractors/modelfields.h"
#include "extractors/pdftext.h"
#include "extractors/rules.h"

static void add_page_summary(struct json *result, const struct pdftext_doc *doc)
{
	struct json *pages = json_add_item(result, "pages", json_new_array());
	for (int i = 0; i < doc->n_pages; i++) {
		struct json *p = json_append(pages, json_new_object());
		json_add_number(p, "page", i + 1);
		json_add_string(p, "method", doc->pages[i].method);
	}
	json_add_number(result, "page_count", doc->total_pages);
}

enum qerr extract_document(const void *pdf, size_t len, const struct extract_options *opt, struct json **ret_result,
                           struct pdftext_doc **ret_doc, char **reterr)
{
	struct pdftext_doc *doc = NULL;
	enum qerr e = sandbox_extract(pdf, len, opt->password, &opt->limits, &doc, reterr);
	if (e)
		return e;
	struct json *result = NULL;
	if (opt->model)
		e = modelfields_invoice(opt->model, doc, &result, reterr);
	else
		e = rules_invoice(doc, &result, reterr);
	if (e) {
		pdftext_doc_free(doc);
		return e;
	}
	add_page_summary(result, doc);
	*ret_result = result;
	if (ret_doc)
		*ret_doc = doc;
	else
		pdftext_doc_free(doc);
	return QERR_OK;
}
