/* store_check: the checks every PDF passes before it is stored or read
 * (store.h), apart from store.c so that a program that only reads PDFs (quire
 * extract) does not bring in the database code. */
#include "pipeline/store.h"

#include "extractors/pdftext.h"

enum qerr store_check_pdf(const void *pdf, size_t len, size_t max_bytes, char **reterr)
{
	if (len == 0)
		return qerr_set(reterr, QERR_EMPTY, "the file is empty");
	if (len > max_bytes)
		return qerr_set(reterr, QERR_TOO_LARGE, "the file has %zu bytes; the limit is %zu (limits.max_file_mb)",
		                len, max_bytes);
	if (!pdftext_looks_like_pdf(pdf, len))
		return qerr_set(reterr, QERR_NOT_PDF, "the file is not a PDF (it does not start with %%PDF-)");
	return QERR_OK;
}
