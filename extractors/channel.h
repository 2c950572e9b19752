/* channel: the sandbox child's reply, as length-prefixed binary frames.
 *
 * The child writes one frame per event, as soon as it happens, so that the
 * parent knows how far a child got before it crashed or was killed:
 *
 *   frame   = type:u8 length:u32 payload[length]      (host byte order: both
 *             ends are the same binary on the same machine)
 *   'M' meta    total_pages:u32 title author producer creation_date (str each)
 *   'P' page    index:u32 width:f64 height:f64 rotation:i32 ocr_confidence:f64
 *               method:str text:str n_words:u32 {start:u32 len:u32 box conf:f32}*
 *               n_lines:u32 {first:u32 count:u32 box}*
 *   'F' field   page:u32 name:str type:str value:str box
 *   'W' warning text:str
 *   'A' attachment  name:str data:bytes   (an embedded e-invoice XML, after the pages)
 *   'E' error   code:u32 message:str  (last frame)
 *   'Z' end     n_pages:u32           (last frame)
 *   str = length:u32 bytes (UTF-8, no NUL; 0xffffffff: absent), box = 4 x f32,
 *   bytes = length:u32 bytes (anything)
 *
 * The parser is the parent's defence against a compromised child: it trusts
 * nothing, checks every count against the remaining bytes and the limits in
 * pdftext.h, every span and index against what it refers to, every number for
 * range, and every string for UTF-8; it never reads past the buffer. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/qerr.h"

struct pdftext_doc;
struct pdftext_page;
struct pdftext_field;
struct pdftext_attachment;

/* A growing byte buffer for frames. Zero-initialise; channel_out_done frees. */
struct channel_out {
	uint8_t *data;
	size_t len, cap;
};
void channel_out_done(struct channel_out *o);

/* Frame writers (the child's side). Arguments are borrowed. */
void channel_put_meta(struct channel_out *o, const struct pdftext_doc *meta);
void channel_put_page(struct channel_out *o, uint32_t index, const struct pdftext_page *page);
void channel_put_field(struct channel_out *o, const struct pdftext_field *field);
void channel_put_warning(struct channel_out *o, const char *text);
void channel_put_attachment(struct channel_out *o, const struct pdftext_attachment *a);
void channel_put_error(struct channel_out *o, enum qerr e, const char *message);
void channel_put_end(struct channel_out *o, uint32_t n_pages);
/* A whole document: meta, pages with their fields, attachments, warnings, end. */
void channel_put_doc(struct channel_out *o, const struct pdftext_doc *doc);

/* How far a reply got, for messages about a child that died. */
struct channel_progress {
	bool opened;   /* the meta frame arrived */
	int pages;     /* complete page frames */
	int total;     /* pages the meta frame announced */
	bool finished; /* an end or error frame arrived */
};

/* Parses a reply of len bytes. On success *ret (pdftext_doc_free) holds the
 * document. An error frame returns its code and message. A reply that stops
 * early returns QERR_PARSE_FAILED with progress->finished false; a malformed
 * one QERR_INTERNAL. progress (may be NULL) is filled in every case. */
enum qerr channel_parse(const void *buf, size_t len, int max_pages, struct pdftext_doc **ret,
                        struct channel_progress *progress, char **reterr) QUIRE_MUST_CHECK;
