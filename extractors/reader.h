/* reader: an invoice's header fields read from any page, in any layout, with no templates.
 *
 * Where the schema-driven rules (rules.h) look for one pattern per field, the
 * reader gathers every candidate the page offers and scores each:
 * - labels from vocabularies in English, German, French, Spanish, Italian and
 *   Dutch, with their value in the same cell, the next cell to the right, the
 *   cell below (a column header over its value), or inline in a sentence
 *   ("Rechnung Nr. X vom DATE", "Facture n° X du DATE", "Invoice # X dated DATE");
 * - dates in any common written form, the issue date told apart from
 *   delivery, order and due dates by the words around them;
 * - amounts in any common format, net, tax and total chosen together as the
 *   arithmetically consistent set (net + tax = total, tax lines whose base
 *   times rate gives their tax) with the best placed labels, never a rate;
 * - the supplier from the page's structure (a supplier label, the sender line
 *   above the address window, the letterhead, a company name with its legal
 *   form), never from the buyer's block (Bill to, Rechnungsempfänger, ...);
 * - the currency from a currency label, codes and symbols, or the country of
 *   the supplier's VAT id or IBAN.
 * Each weight is hand-tuned and written next to the rule it belongs to (see
 * README, "How the rules reader scores"). A field without a candidate stays
 * unset, so rules.h's own strategies remain the fallback. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct layout;
struct layout_cell;

#define READER_MAX_TAX_LINES 8

struct reader_value {
	char *text; /* string value (g_free), or NULL for a number */
	double number;
	bool set;
	double confidence;              /* 0..1 */
	const struct layout_cell *cell; /* where it was read (borrowed from the layout) */
	double runner_up;               /* the best score of a different value offered, 0 when none */
};

/* A runner-up scoring at least this share of the winner's score makes the choice a close one:
 * the field's confidence is then multiplied by READER_CONTESTED_FACTOR (rules.c). */
#define READER_CONTESTED 0.9
#define READER_CONTESTED_FACTOR 0.8

struct reader_tax_line {
	double rate, tax;
};

struct reader_invoice {
	struct reader_value number, issue_date, due_date, supplier, buyer, currency, net, tax, total;
	struct reader_tax_line tax_lines[READER_MAX_TAX_LINES];
	size_t n_tax_lines;
	bool credit_note; /* amounts are reported as the credit's positive magnitudes */
};

/* Reads lay (borrowed; must outlive *ret's cells) into *ret (caller's storage,
 * reader_invoice_done). */
void reader_invoice_read(const struct layout *lay, struct reader_invoice *ret);
void reader_invoice_done(struct reader_invoice *r);
