/* ocr: text of a page image, with Tesseract (through its C API).
 *
 * The image comes from pdftext, which renders the page with Poppler; this
 * module knows only pixels. Words come back in reading order with their boxes
 * (pixels, top-left origin) and confidences; a word that starts a new text line
 * says so. Tesseract runs single-threaded: several documents are OCRed at once
 * instead, which on few cores is several times faster than Tesseract's own
 * threads. Runs in the sandbox child, like all parsing of a document. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/qerr.h"

#define OCR_MAX_LANG 64
#define OCR_MAX_WORDS 200000

struct ocr;

struct ocr_word {
	char *text;         /* UTF-8 */
	int x0, y0, x1, y1; /* pixels */
	float confidence;   /* 0..100 */
	bool line_start;    /* first word of a text line */
};

struct ocr_result {
	size_t n_words;
	struct ocr_word *words;
	double mean_confidence; /* over the words; -1 with no words */
};

/* Loads the language data: lang is one or more installed Tesseract languages
 * joined by '+' ("eng", "deu+eng"). *ret owned by the caller (ocr_free). Errors:
 * QERR_CONFIG (malformed name), QERR_DEPENDENCY (language data not installed,
 * naming the Debian package). */
enum qerr ocr_new(const char *lang, struct ocr **ret, char **reterr) QUIRE_MUST_CHECK;
void ocr_free(struct ocr *o);

/* Recognises an 8-bit grey image (width x height, stride bytes a row) scanned at
 * dpi. *ret (caller's storage) is released with ocr_result_done. */
enum qerr ocr_recognize(struct ocr *o, const uint8_t *grey, int width, int height, int stride, int dpi,
                        struct ocr_result *ret, char **reterr) QUIRE_MUST_CHECK;
void ocr_result_done(struct ocr_result *r);

/* Mends in place the letters OCR reads for digits in a word that is otherwise a number, an
 * amount or a date ("1O0,0O" -> "100,00", "l9.O5.2014" -> "19.05.2014"): O and o for 0, l, I
 * and | for 1, where the word holds at least two real digits, no more such letters than
 * digits, and nothing else but separators (. , ' / - :), signs and currency symbols. Any
 * other letter leaves the word as it is ("EUR", "enl6931", "Nr."). Returns whether it
 * changed anything. ocr_recognize applies it to every word. */
bool ocr_mend_digits(char *word);
