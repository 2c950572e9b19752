/* Fuzz target: the sandbox parent's reply parser (extractors/channel.h), the
 * one parser that reads what a possibly compromised child wrote. A reply it
 * accepts must keep every promise of struct pdftext_doc (spans inside the
 * text, lines covering the words, counts within limits) and survive being
 * written again and parsed to the same document. */
#include "tests/fuzz/fuzz_main.h"

#include <glib.h>
#include <string.h>

#include "extractors/channel.h"
#include "extractors/pdftext.h"

#define MAX_PAGES 2000

static void check_doc(const struct pdftext_doc *d)
{
	g_assert_cmpint(d->n_pages, <=, d->total_pages);
	g_assert_cmpint(d->total_pages, <=, MAX_PAGES);
	for (int i = 0; i < d->n_pages; i++) {
		const struct pdftext_page *p = &d->pages[i];
		size_t len = strlen(p->text);
		g_assert_true(g_utf8_validate(p->text, -1, NULL));
		for (uint32_t w = 0; w < p->n_words; w++)
			g_assert_cmpuint((size_t)p->words[w].start + p->words[w].len, <=, len);
		for (uint32_t l = 0; l < p->n_lines; l++)
			g_assert_cmpuint((size_t)p->lines[l].first_word + p->lines[l].n_words, <=, p->n_words);
	}
	for (uint32_t f = 0; f < d->n_fields; f++)
		g_assert_true(d->fields[f].page >= 1 && d->fields[f].page <= d->n_pages);
	g_assert_cmpuint(d->n_attachments, <=, PDFTEXT_MAX_ATTACHMENTS);
	for (uint32_t a = 0; a < d->n_attachments; a++) {
		g_assert_cmpuint(d->attachments[a].len, <=, PDFTEXT_MAX_ATTACHMENT);
		g_assert_true(d->attachments[a].data[d->attachments[a].len] == 0);
		g_assert_true(!d->attachments[a].name || g_utf8_validate(d->attachments[a].name, -1, NULL));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pdftext_doc *doc = NULL;
	struct channel_progress pr;
	g_autofree char *err = NULL;
	enum qerr e = channel_parse(data, size, MAX_PAGES, &doc, &pr, &err);
	if (e) {
		g_assert_nonnull(err);
		g_assert_null(doc);
		return 0;
	}
	check_doc(doc);
	struct channel_out out = {0};
	channel_put_doc(&out, doc);
	struct pdftext_doc *again = NULL;
	g_assert_cmpint(channel_parse(out.data, out.len, MAX_PAGES, &again, NULL, NULL), ==, QERR_OK);
	g_assert_cmpint(again->n_pages, ==, doc->n_pages);
	g_assert_cmpuint(again->n_fields, ==, doc->n_fields);
	g_assert_cmpuint(again->n_attachments, ==, doc->n_attachments);
	for (uint32_t a = 0; a < doc->n_attachments; a++)
		g_assert_cmpmem(again->attachments[a].data, again->attachments[a].len, doc->attachments[a].data,
		                doc->attachments[a].len);
	for (int i = 0; i < doc->n_pages; i++) {
		g_assert_cmpstr(again->pages[i].text, ==, doc->pages[i].text);
		g_assert_cmpuint(again->pages[i].n_words, ==, doc->pages[i].n_words);
	}
	pdftext_doc_free(again);
	channel_out_done(&out);
	pdftext_doc_free(doc);
	return 0;
}
