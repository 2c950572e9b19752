/* test_reader_pdf: invoices drawn with cairo, read back by the rules extractor. */
#pragma once

struct json;

/* Text at (x, y); align 'l', or 'r' for its right edge at x. */
struct ink {
	int page;
	double x, y, size;
	char align;
	const char *text;
};

/* Draws inks (ended by one with text NULL) on pages pages, extracts the PDF's text and
 * runs the invoice rules on it; the result is the caller's (json_free). */
struct json *read_pdf(const struct ink *inks, int pages);

void reader_pdf_tests(void);
void reader_table_tests(void);
