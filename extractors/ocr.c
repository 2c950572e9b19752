/* ocr: Tesseract behind a small interface. Tesseract's types stay in this file.
 *
 * Tesseract and the 50-odd libraries it brings are loaded with dlopen at the
 * first ocr_new, not linked: most documents have a text layer, and every
 * parser process would otherwise pay for loading them at its start. In a
 * confined parser that load reads the system's library folders, which
 * extractors/confine.c leaves readable (and mappable as code) for parsers that
 * may OCR. The table below is filled once and never changes afterwards. */
#include "extractors/ocr.h"

#include <dlfcn.h>
#include <glib.h>
#include <string.h>
#include <tesseract/capi.h>

struct ocr {
	TessBaseAPI *api;
};

#define TESS_FUNCTIONS(X)                                                                                              \
	X(TessBaseAPICreate)                                                                                           \
	X(TessBaseAPIInit3)                                                                                            \
	X(TessBaseAPIDelete)                                                                                           \
	X(TessBaseAPIEnd)                                                                                              \
	X(TessBaseAPISetPageSegMode)                                                                                   \
	X(TessBaseAPISetImage)                                                                                         \
	X(TessBaseAPISetSourceResolution)                                                                              \
	X(TessBaseAPIRecognize)                                                                                        \
	X(TessBaseAPIClear)                                                                                            \
	X(TessBaseAPIGetIterator)                                                                                      \
	X(TessResultIteratorDelete)                                                                                    \
	X(TessResultIteratorGetPageIteratorConst)                                                                      \
	X(TessResultIteratorGetUTF8Text)                                                                               \
	X(TessResultIteratorConfidence)                                                                                \
	X(TessResultIteratorNext)                                                                                      \
	X(TessPageIteratorBoundingBox)                                                                                 \
	X(TessPageIteratorIsAtBeginningOf)                                                                             \
	X(TessDeleteText)

#define TESS_POINTER(name) __typeof__(name) *name;
static struct {
	TESS_FUNCTIONS(TESS_POINTER)
} tess;
#define T(name) (tess.name)

static GOnce tess_once = G_ONCE_INIT;
static void *tess_handle;

/* The sonames Tesseract has had on Debian, newest first. */
static const char *const tess_sonames[] = {"libtesseract.so.5", "libtesseract.so.4", "libtesseract.so"};

/* NULL when loaded, else why not (static text or a leaked dlerror copy, kept for the process). */
static gpointer tess_load(gpointer unused)
{
	(void)unused;
	void *h = NULL;
	char *why = NULL;
	for (size_t i = 0; i < G_N_ELEMENTS(tess_sonames) && !h; i++) {
		h = dlopen(tess_sonames[i], RTLD_NOW | RTLD_LOCAL);
		if (!h && !why) {
			const char *e = dlerror();
			why = g_strdup(e ? e : tess_sonames[i]);
		}
	}
	if (!h)
		return why;
	g_free(why);
	tess_handle = h;
#define TESS_RESOLVE(name)                                                                                             \
	if (!(*(void **)&tess.name = dlsym(h, #name)))                                                                 \
		return g_strdup_printf("%s lacks %s", "libtesseract", #name);
	TESS_FUNCTIONS(TESS_RESOLVE)
#undef TESS_RESOLVE
	return NULL;
}

/* Loads Tesseract once; QERR_DEPENDENCY when it cannot be. */
static enum qerr tess_ready(char **reterr)
{
	const char *why = g_once(&tess_once, tess_load, NULL);
	if (why)
		return qerr_set(reterr, QERR_DEPENDENCY,
		                "Tesseract cannot be loaded for OCR (%s); install the Debian package libtesseract5",
		                why);
	return QERR_OK;
}

/* Debian's Tesseract is built with OpenMP and asks for several threads per
 * page; on a small machine that is several times slower than one thread per
 * process. OMP_THREAD_LIMIT is read when libgomp loads, too early for us, so the
 * same effect comes from a maximum of zero active parallel levels, looked up at
 * run time so that a Tesseract without OpenMP needs nothing. */
static void single_threaded(void)
{
	void (*set_levels)(int) = NULL;
	/* searched in Tesseract's own dependencies, loaded with it out of the global scope */
	*(void **)&set_levels = dlsym(tess_handle, "omp_set_max_active_levels");
	if (set_levels)
		set_levels(0);
}

static bool lang_ok(const char *lang)
{
	size_t n = strlen(lang);
	if (n == 0 || n > OCR_MAX_LANG)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!g_ascii_isalnum(lang[i]) && lang[i] != '_' && lang[i] != '+')
			return false;
	return true;
}

enum qerr ocr_new(const char *lang, struct ocr **ret, char **reterr)
{
	if (!lang || !lang_ok(lang))
		return qerr_set(reterr, QERR_CONFIG,
		                "OCR language \"%s\" is not a Tesseract language name (ocr.language)",
		                lang ? lang : "");
	enum qerr e = tess_ready(reterr);
	if (e)
		return e;
	single_threaded();
	TessBaseAPI *api = T(TessBaseAPICreate)();
	if (T(TessBaseAPIInit3)(api, NULL, lang) != 0) {
		T(TessBaseAPIDelete)(api);
		g_autofree char *pkg = g_strdelimit(g_ascii_strdown(lang, -1), "_", '-');
		return qerr_set(reterr, QERR_DEPENDENCY,
		                "the OCR language data \"%s\" is not installed (Debian package tesseract-ocr-%s)", lang,
		                pkg);
	}
	T(TessBaseAPISetPageSegMode)(api, PSM_AUTO);
	struct ocr *o = g_new0(struct ocr, 1);
	o->api = api;
	*ret = o;
	return QERR_OK;
}

void ocr_free(struct ocr *o)
{
	if (!o)
		return;
	T(TessBaseAPIEnd)(o->api);
	T(TessBaseAPIDelete)(o->api);
	g_free(o);
}

static void collect_words(TessResultIterator *ri, struct ocr_result *r)
{
	const TessPageIterator *pi = T(TessResultIteratorGetPageIteratorConst)(ri);
	size_t cap = 0;
	double sum = 0;
	do {
		char *text = T(TessResultIteratorGetUTF8Text)(ri, RIL_WORD);
		int x0, y0, x1, y1;
		if (text && text[0] && g_utf8_validate(text, -1, NULL) &&
		    T(TessPageIteratorBoundingBox)(pi, RIL_WORD, &x0, &y0, &x1, &y1) && r->n_words < OCR_MAX_WORDS) {
			if (r->n_words == cap) {
				cap = cap ? cap * 2 : 256;
				r->words = g_renew(struct ocr_word, r->words, cap);
			}
			struct ocr_word *w = &r->words[r->n_words++];
			w->text = g_strdup(text);
			w->x0 = x0, w->y0 = y0, w->x1 = x1, w->y1 = y1;
			float c = T(TessResultIteratorConfidence)(ri, RIL_WORD);
			w->confidence = c < 0 ? 0 : c > 100 ? 100 : c;
			w->line_start = r->n_words == 1 || T(TessPageIteratorIsAtBeginningOf)(pi, RIL_TEXTLINE);
			sum += w->confidence;
		}
		if (text)
			T(TessDeleteText)(text);
	} while (T(TessResultIteratorNext)(ri, RIL_WORD));
	r->mean_confidence = r->n_words ? sum / (double)r->n_words : -1;
}

enum qerr ocr_recognize(struct ocr *o, const uint8_t *grey, int width, int height, int stride, int dpi,
                        struct ocr_result *ret, char **reterr)
{
	if (width <= 0 || height <= 0 || stride < width)
		return qerr_set(reterr, QERR_INTERNAL, "OCR was given an empty image");
	T(TessBaseAPISetImage)(o->api, grey, width, height, 1, stride);
	T(TessBaseAPISetSourceResolution)(o->api, dpi);
	if (T(TessBaseAPIRecognize)(o->api, NULL) != 0) {
		T(TessBaseAPIClear)(o->api);
		return qerr_set(reterr, QERR_PARSE_FAILED, "OCR could not read the page image");
	}
	struct ocr_result r = {.mean_confidence = -1};
	TessResultIterator *ri = T(TessBaseAPIGetIterator)(o->api);
	if (ri) {
		collect_words(ri, &r);
		T(TessResultIteratorDelete)(ri);
	}
	T(TessBaseAPIClear)(o->api);
	*ret = r;
	return QERR_OK;
}

void ocr_result_done(struct ocr_result *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_words; i++)
		g_free(r->words[i].text);
	g_free(r->words);
	memset(r, 0, sizeof *r);
}
