/* calibrate: how sure an extraction is as a whole, which decides auto-approval.
 *
 * A document approved without review is one nobody looks at, so a wrong field
 * approved is the worst outcome, and the document's confidence has to be
 * honest rather than the best of its fields. It starts from its least sure
 * key field and each rule below can only lower it; each lowering adds a reason
 * a reviewer can check:
 * - a key field not found: 0;
 * - a failed check (validate.h: totals, line items summing to the net,
 *   quantity x price, dates in order, IBAN and VAT formats): at most
 *   CALIBRATE_FAILED;
 * - amounts that cannot be checked against each other (net, tax or total
 *   missing where the type has all three): at most CALIBRATE_UNCHECKED;
 * - a tax line whose rate is not written on any page as a percentage (a base
 *   or an amount may have been taken for the rate; base x rate = tax reads the
 *   same with the two swapped): at most CALIBRATE_UNCHECKED;
 * - a value the page announces but that was not read: an "IBAN" written with
 *   no IBAN read, a due-date phrase followed by a date with no due date read:
 *   at most CALIBRATE_UNCHECKED;
 * - an IBAN or a supplier VAT id read from a line (or under a label) that gives it as the
 *   buyer's ("Käufer-IBAN", "von Ihrem Konto ... per Lastschrift", "Ihre USt-IdNr."): at most
 *   CALIBRATE_UNCHECKED;
 * - a line item description that is only a label ("GTIN:"): at most CALIBRATE_UNCHECKED;
 * - a key field read by OCR: a misread digit in a number or a date leaves no
 *   trace that a check could catch (amounts have their arithmetic, the rest
 *   has nothing), so at most CALIBRATE_OCR.
 * Field confidences themselves already carry the extractor's doubts (label
 * position, a close runner-up candidate of another value, OCR word quality).
 * With the default threshold (extract.h, 0.85) every rule above sends the
 * document to review; a lower threshold (fields.auto_approve) can let OCR'd
 * documents through while still stopping the others. */
#pragma once

#include <stdbool.h>

struct json;

#define CALIBRATE_FAILED 0.5
#define CALIBRATE_UNCHECKED 0.6
#define CALIBRATE_OCR 0.8

/* A page as the rules see it: its text and whether OCR read it. */
struct calibrate_page {
	const char *text;
	bool ocr;
};

/* The document's confidence in [0, 1] for fields ({name: {value, confidence, page}}, as
 * extract.h's result holds them), its type's key_fields (array of names), its checks
 * (validate.h's array) and its n pages (NULL, 0 for values not read from pages, such as an
 * e-invoice's XML: the page rules are then skipped). Every argument is borrowed; each rule
 * that lowers the confidence appends a reason (a string) to reasons when it is not NULL. */
double calibrate_document(const struct json *fields, const struct json *key_fields, const struct json *checks,
                          const struct calibrate_page *pages, int n, struct json *reasons);
