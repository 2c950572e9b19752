/* eval_einvoice: `quire eval` on a folder of e-invoices (see eval_einvoice.c). */
#pragma once

#include <stdbool.h>

#include "extractors/extract.h"

struct config;

struct eval_einvoice_flags {
	bool as_scans;           /* also read image-only copies of the pages through OCR */
	int concurrency;         /* documents read at once, 1 or more */
	bool learn;              /* replay in order, feeding the truth back as corrections */
	bool show_misses;        /* print each document's verdict, wrong fields and unmatched line items */
	double min_header_right; /* exit status 1 below this share of header fields right; 0: none */
	double min_items_f1;     /* ... below this line items F1; 0: none */
	const char *keep_scans;  /* a folder to keep the image-only copies in, or NULL */
	int scan_timeout_s;      /* processor time to read one image-only copy; 0: pages x limits.parse_timeout_s */
};

/* Measures the page reader on every PDF under dir that carries a readable invoice XML
 * (opt borrowed; the model in it is used when set). Prints the report on stdout and
 * each file's problem on stderr. Returns the exit status: 0, 1 when a target is missed
 * or no PDF is a labelled case. */
int eval_einvoice_dir(const char *dir, const struct config *cfg, const struct extract_options *opt,
                      const struct eval_einvoice_flags *flags);
