/* classify: which document type a document is.
 *
 * Without a model, each type's keyword patterns ("x-quire".keywords in its
 * schema file) are counted on the first pages, with half a point for each of
 * its field labels that starts a line; the highest score wins, and its lead
 * over the runner-up (with enough evidence) is the confidence. Where that confidence is below one half and a model is
 * configured, the model chooses among the type names under an enum
 * constraint (modelfields_classify). A type given at submission overrides
 * both. */
#pragma once

struct doctypes;
struct pdftext_doc;

struct classify_result {
	const char *type;   /* borrowed from the registry */
	double confidence;  /* 0..1 */
};

/* By keywords. Never fails: with no keyword anywhere, the first type (invoice)
 * with confidence 0. */
struct classify_result classify_keywords(const struct doctypes *types, const struct pdftext_doc *doc);
