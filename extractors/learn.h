/* learn: where a reviewer's corrected value sits on the page, remembered per
 * supplier and used again on that supplier's next documents.
 *
 * A post-pass over the page's layout (extractors/layout.h), independent of how
 * the reader found its values. When a reviewer corrects a field, the value is
 * looked up among the page's cells and a hint records where it was: the
 * words that label it (the anchor) and how the value stands to them ("inline":
 * after the anchor in the same cell; "right": the next cell of the row;
 * "below": the cell under it), and the value's box relative to the page size.
 * On a later document of the same supplier the anchor is searched for (the
 * occurrence nearest the remembered box wins), the value read in the same
 * relation and parsed as the field's kind (amount, date, text); without an
 * anchor, or where the anchor is missing, the cell at the remembered box is
 * read. A value found this way overrides the reader's for that field.
 *
 * A supplier is known by its VAT id, its IBAN or its name (learn_supplier_keys).
 * Hints are plain JSON (document text: the caller keeps them encrypted at
 * rest); at most LEARN_MAX_ANCHOR bytes of anchor text each. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct json;
struct layout;
struct pdftext_doc;

#define LEARN_MAX_ANCHOR 200
#define LEARN_MAX_KEYS 16
#define LEARN_MAX_KEY 256

/* The identities of the supplier whose values (a plain {"field": value} object,
 * borrowed) are given: "vat:<id>", "iban:<id>", "name:<folded name>", in that
 * order, those present. With doc, also every VAT id and IBAN written on its
 * pages (after the values' own), so a supplier is recognised even where the
 * reader took the buyer's. NULL-terminated (g_strfreev), at most LEARN_MAX_KEYS. */
char **learn_supplier_keys(const struct json *values, const struct pdftext_doc *doc);

/* The hint for field whose right value is value (borrowed), from the page
 * layout lay: {"kind","anchor","rel","page","box":[x0,y0,x1,y1] as fractions
 * of the page} (json_free), or NULL when the value is not on the page or is
 * not a single value (a list). */
struct json *learn_hint(const struct layout *lay, const char *field, const struct json *value);

/* Reads the value a hint (borrowed) points to in lay: a new JSON value
 * (json_free) with *ret_page and *ret_box set, or NULL when not found. */
struct json *learn_read(const struct layout *lay, const struct json *hint, int *ret_page, double ret_box[4]);

/* Applies hints ({field: hint}, borrowed) to an extractor's result (extract.h's
 * form {"fields": {name: {value, confidence, page, box}}}, changed in place):
 * each field whose hint reads a value takes it, with "learned": true. Returns
 * how many fields were set. */
int learn_apply(struct json *extracted, const struct layout *lay, const struct json *hints);

/* Corrections remembered in memory (for `quire eval --learn` and tests; the
 * appliance keeps them in the database, pipeline/learned.h). */
struct learn_memory;
struct learn_memory *learn_memory_new(void);
void learn_memory_free(struct learn_memory *m);
/* Remembers hint (copied) for field under every key of keys. */
void learn_memory_put(struct learn_memory *m, char *const *keys, const char *field, const struct json *hint);
/* The hints of the first key of keys that has any ({field: hint}, json_free), or NULL. */
struct json *learn_memory_lookup(const struct learn_memory *m, char *const *keys);
