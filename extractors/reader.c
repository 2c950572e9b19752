/* reader: labels, dates, parties and currency of an invoice page (totals.c does the amounts).
 *
 * Every rule offers candidates with a score (label weight times where the value
 * sits relative to its label); each field keeps its best. The vocabularies are
 * tables below, one entry per label family and language group. */
#include "extractors/reader.h"

#include <glib.h>
#include <math.h>
#include <string.h>

#include "extractors/internal.h"
#include "extractors/layout.h"
#include "extractors/rules.h"

#define MAX_TEXT 4096 /* longer cells are not labels or values */

/* ---- regexes, compiled once ---- */

static GMutex re_lock;
static GHashTable *re_cache; /* pattern (static string) -> GRegex */

GRegex *reader_re(const char *pattern)
{
	g_mutex_lock(&re_lock);
	if (!re_cache)
		re_cache = g_hash_table_new(g_direct_hash, g_direct_equal);
	GRegex *re = g_hash_table_lookup(re_cache, pattern);
	if (!re) {
		re = g_regex_new(pattern, G_REGEX_CASELESS | G_REGEX_OPTIMIZE, 0, NULL);
		g_assert(re); /* the patterns are ours */
		g_hash_table_insert(re_cache, (gpointer)pattern, re);
	}
	g_mutex_unlock(&re_lock);
	return re;
}

bool reader_has(const char *pattern, const char *text)
{
	return text && strlen(text) <= MAX_TEXT && g_regex_match(reader_re(pattern), text, 0, NULL);
}

void reader_offer(struct reader_value *v, const char *text, double number, double score, const struct layout_cell *cell)
{
	bool same = v->set && (text ? v->text && g_ascii_strcasecmp(v->text, text) == 0
	                            : !v->text && fabs(v->number - number) < 0.005);
	if (v->set && !same)
		v->runner_up = MAX(v->runner_up, MIN(score, v->confidence));
	if (v->set && score <= v->confidence)
		return;
	g_free(v->text);
	v->text = text ? g_strdup(text) : NULL;
	v->number = number;
	v->confidence = score;
	v->cell = cell;
	v->set = true;
}

/* ---- geometry ---- */

static const struct layout_cell *right_of(const struct layout *l, const struct layout_cell *c, int k)
{
	const struct layout_cell *r = c;
	for (int i = 0; i < k && r; i++)
		r = layout_right_of(l, r);
	return r;
}

const struct layout_cell *reader_below(const struct layout *l, const struct layout_cell *c)
{
	const struct layout_page *p = &l->pages[c->page - 1];
	if (!c->has_box)
		return layout_below(l, c);
	float h = MAX(c->box.y1 - c->box.y0, 4.0f);
	const struct layout_cell *next = layout_right_of(l, c);
	float limit = next ? next->box.x0 : (float)(c->box.x1 + 0.3 * p->width);
	for (size_t r = (size_t)c->row + 1; r < p->n_rows; r++) {
		const struct layout_row *row = &p->rows[r];
		if (row->box.y0 > c->box.y1 + 3 * h)
			break;
		const struct layout_cell *best = NULL;
		for (size_t i = row->first; i < row->first + row->n; i++) {
			const struct layout_cell *x = &p->cells[i];
			bool overlaps = x->box.x0 < c->box.x1 && x->box.x1 > c->box.x0;
			bool under = x->box.x0 >= c->box.x0 - 2 && x->box.x0 < limit;
			if ((overlaps || under) &&
			    (!best || fabsf(x->box.x0 - c->box.x0) < fabsf(best->box.x0 - c->box.x0)))
				best = x;
		}
		if (best)
			return best;
	}
	return NULL;
}

/* ---- vocabularies ---- */

enum rfield { RF_NUMBER, RF_ISSUE, RF_DUE, RF_CURRENCY, RF_COUNT };

struct vocab {
	enum rfield field;
	double weight;
	const char *pattern;
};

/* Labels whose value follows them (same cell, right, below). Word-bounded when matched. */
static const struct vocab VOCAB[] = {
    /* invoice number */
    {RF_NUMBER, 1.0, "invoice\\s*(?:no\\.?|number|num\\.?|nr\\.?|#|n[°º]|id)"},
    {RF_NUMBER, 1.0,
     "rechnungs?-?\\s*(?:nummer|nr\\.?|no\\.?)|(?:\\p{L}*rechnung)\\s*(?:\\(\\d+\\)\\s*)?(?:nr\\.?|nummer|no\\.?|#)"},
    {RF_NUMBER, 1.0, "gutschrifts?-?\\s*(?:nummer|nr\\.?)|beleg-?\\s*(?:nummer|nr\\.?)"},
    {RF_NUMBER, 1.0,
     "(?:n[°ºo]\\.?|num[ée]ro)\\s*(?:de\\s+(?:la\\s+)?)?(?:facture|l'avoir|avoir)|(?:facture|avoir)\\s*(?:n[°ºo]\\.?|"
     "num[ée]ro|#)"},
    {RF_NUMBER, 1.0,
     "(?:n[úu]mero|n[°ºo]\\.?|num\\.?)\\s*(?:de\\s+)?factura|factura\\s*(?:n[°ºo.]|n[úu]m(?:ero|\\.)?|#)"},
    {RF_NUMBER, 1.0, "(?:numero|n[°ºo.])\\s*(?:della\\s+)?fattura|fattura\\s*(?:n[°ºo.]|nr\\.?|num(?:ero|\\.)?|#)"},
    {RF_NUMBER, 1.0, "factuur\\s*-?(?:nummer|nr\\.?|#)|factuurnummer|factuurnr\\.?|creditnota\\s*(?:nummer|nr\\.?)"},
    {RF_NUMBER, 1.0, "credit\\s+(?:note|memo)\\s*(?:no\\.?|number|#)"},
    {RF_NUMBER, 0.9,
     "\\p{L}*(?:rechnung|invoice|facture|factura|fattura|factuur|avoir|gutschrift)\\p{L}*[^:\\p{L}][^:]{0,40}?(?:nr|no|"
     "n[°º]|nummer|number|num[ée]ro|#)\\.?"},
    {RF_NUMBER, 0.55, "n[°ºo]\\.?|no\\.|nr\\.?|num[ée]ro|nummer|number|#"}, /* bare, at a cell's start only */
    {RF_NUMBER, 0.7, "document\\s*(?:no\\.?|number|nr\\.?)|doc\\.?\\s*no\\.?"},
    /* issue date */
    {RF_ISSUE, 1.0,
     "invoice\\s+date|date\\s+of\\s+(?:issue|invoice)|issue\\s+date|date\\s+issued|issued\\s+on|billing\\s+date"},
    {RF_ISSUE, 1.0, "rechnungs-?\\s*datum|ausstellungsdatum|belegdatum|gutschriftsdatum|datum\\s+der\\s+rechnung"},
    {RF_ISSUE, 1.0,
     "date\\s+(?:de\\s+(?:la\\s+)?)?(?:facture|facturation)|date\\s+d'[ée]mission|date\\s+de\\s+l'avoir"},
    {RF_ISSUE, 1.0, "fecha\\s+(?:de\\s+)?(?:la\\s+)?(?:factura|emisi[óo]n|expedici[óo]n)"},
    {RF_ISSUE, 1.0, "data\\s+(?:della\\s+)?fattura|data\\s+(?:di\\s+)?emissione|factuurdatum|datum\\s+factuur"},
    {RF_ISSUE, 0.9,
     "\\p{L}*(?:rechnung|invoice|facture|factura|fattura|factuur|avoir|gutschrift)\\p{L}*\\b.{0,60}?\\b(?:vom|du|dated|"
     "del|van|of|from|d\\.d\\.)"},
    {RF_ISSUE, 0.55, "dat(?:e|um|a)|fecha|date\\s+le"},
    /* due date */
    {RF_DUE, 1.0,
     "due\\s+date|payment\\s+due(?:\\s+date)?|due\\s+(?:by|on)|pay(?:able)?\\s+(?:by|before|until)|payment\\s+date"},
    {RF_DUE, 1.0,
     "f[äa]lligkeit(?:sdatum|stag|stermin)?|f[äa]llig\\s+(?:am|bis|zum)|zahlbar\\s+(?:bis|sp[äa]testens)|zahlungsziel|"
     "zahlungstermin"},
    {RF_DUE, 1.0,
     "date\\s+d'[ée]ch[ée]ance|[ée]ch[ée]ance|[àa]\\s+payer\\s+(?:avant\\s+le|avant|le)|date\\s+(?:limite\\s+)?de\\s+(?"
     ":paiement|r[èe]glement)"},
    {RF_DUE, 1.0,
     "fecha\\s+(?:de\\s+)?vencimiento|vencimiento|fecha\\s+(?:l[íi]mite\\s+)?de\\s+pago|(?:data\\s+(?:di\\s+)?)?"
     "scadenza"},
    {RF_DUE, 1.0, "vervaldatum|vervaldag|te\\s+betalen\\s+(?:voor|v[óo][óo]r|uiterlijk)|uiterste\\s+betaaldatum"},
    /* currency */
    {RF_CURRENCY, 1.0,
     "(?:rechnungs)?w[äa]hrung|currency|devise|monnaie|moneda|divisa|valuta|betr[äa]ge\\s+in|amounts?\\s+in|montants?"
     "\\s+en|importes\\s+en|"
     "bedragen\\s+in|importi\\s+in"},
};

/* Words that make a date something other than the issue date, before or right after its label. */
static const char NOT_ISSUE[] =
    "liefer|leistung|deliver|ship|versand|livraison|entrega|consegna|levering|bestell|order|commande|pedido|ordine|"
    "\\bdue\\b|f[äa]llig|[ée]ch[ée]ance|vencimiento|scadenza|verval|zahl|payment|paiement|pago|pagamento|betaal|skonto|"
    "period|zeitraum|p[ée]riode|valid|g[üu]ltig|print|druck|birth|geburt|start|\\bend\\b|\\bvon\\b|\\bbis\\b|until|"
    "reference|"
    "referenz|contract|vertrag|contrat|mandat|bestellung|auftrag";

/* Numbers of other documents that a sentence about the invoice may name. */
static const char NOT_NUMBER[] =
    "bestell|order|commande|pedido|ordine|bestel|kunden|customer|client|auftrag|lieferschein|"
    "delivery|livraison|contract|vertrag|contrat|steuer|tax|vat|ust|tva|iban|konto|account";

static GRegex *vocab_re(size_t i)
{
	static GRegex *res[G_N_ELEMENTS(VOCAB)];
	static gsize done;
	if (g_once_init_enter(&done)) {
		for (size_t k = 0; k < G_N_ELEMENTS(VOCAB); k++) {
			g_autofree char *p = g_strdup_printf("(?<![\\p{L}\\p{N}])(?:%s)(?![\\p{L}])", VOCAB[k].pattern);
			res[k] = g_regex_new(p, G_REGEX_CASELESS | G_REGEX_OPTIMIZE, 0, NULL);
			g_assert(res[k]);
		}
		g_once_init_leave(&done, 1);
	}
	return res[i];
}

/* ---- values ---- */

/* An identifier at the start of text (after separators and filler words), or NULL (g_free). */
static char *id_at(const char *text)
{
	static const char ID[] = "^[\\s:#.°º\\-]*(?:(?:no|nr|n°|number|nummer|num[ée]ro)\\b[\\s:#.]*)?"
	                         "([\\p{L}\\p{N}][\\p{L}\\p{N}\\-/._]{0,63})";
	g_autoptr(GMatchInfo) mi = NULL;
	if (!g_regex_match(reader_re(ID), text, 0, &mi))
		return NULL;
	char *id = g_match_info_fetch(mi, 1);
	while (strlen(id) > 1 && strchr("./-_", id[strlen(id) - 1]))
		id[strlen(id) - 1] = '\0';
	char iso[11];
	if (!strpbrk(id, "0123456789") || rules_parse_date(id, iso) || strlen(id) < 2) {
		g_free(id);
		return NULL;
	}
	return id;
}

/* A date that starts within about `within` bytes of text's start (a whole cell's value: 4). */
static bool date_at(const char *text, size_t within, char out[11])
{
	g_autofree char *head = g_strndup(text, within + 20);
	return rules_parse_date(head, out);
}

static int to_int(const char *s)
{
	return (int)g_ascii_strtoll(s, NULL, 10);
}

static const char SLASHED[] = "(?<!\\d)(\\d{1,2})/(\\d{1,2})/(\\d{4})(?!\\d)";

/* Rereads a slashed date month first where the page writes them so. */
static void month_first(const char *text, char iso[11])
{
	g_autoptr(GMatchInfo) mi = NULL;
	if (!g_regex_match(reader_re(SLASHED), text, 0, &mi))
		return;
	g_autofree char *a = g_match_info_fetch(mi, 1);
	g_autofree char *b = g_match_info_fetch(mi, 2);
	g_autofree char *y = g_match_info_fetch(mi, 3);
	char dmy[11];
	g_snprintf(dmy, sizeof dmy, "%s-%02d-%02d", y, to_int(b), to_int(a));
	int m = to_int(a), d = to_int(b);
	if (strcmp(dmy, iso) == 0 && m >= 1 && m <= 12 && d >= 1 && d <= 31 &&
	    g_date_valid_dmy((GDateDay)d, (GDateMonth)m, (GDateYear)to_int(y)))
		g_snprintf(iso, 11, "%s-%02d-%02d", y, m, d);
}

/* A date near text's start as the page writes them: n/n/yyyy month first where it does so,
 * and wherever the second number can only be a day (04/22/2024). */
static bool page_date(const char *text, size_t within, bool mdy, char out[11])
{
	if (date_at(text, within, out)) {
		if (mdy)
			month_first(text, out);
		return true;
	}
	g_autofree char *head = g_strndup(text, within + 20);
	g_autoptr(GMatchInfo) mi = NULL;
	if (!g_regex_match(reader_re(SLASHED), head, 0, &mi))
		return false;
	g_autofree char *a = g_match_info_fetch(mi, 1);
	g_autofree char *b = g_match_info_fetch(mi, 2);
	g_autofree char *y = g_match_info_fetch(mi, 3);
	int m = to_int(a), d = to_int(b);
	if (m < 1 || m > 12 || d < 1 || d > 31 || !g_date_valid_dmy((GDateDay)d, (GDateMonth)m, (GDateYear)to_int(y)))
		return false;
	g_snprintf(out, 11, "%s-%02d-%02d", y, m, d);
	return true;
}

/* Whether the page writes n/n/yyyy month first: a date that can only be read so
 * (13/... can only be a day), else an English page whose currency is not the pound. */
static bool dates_month_first(const struct layout *l)
{
	int dmy = 0, mdy = 0, english = 0, other = 0, pound = 0;
	for (int p = 0; p < l->n_pages; p++)
		for (size_t i = 0; i < l->pages[p].n_cells; i++) {
			const char *t = l->pages[p].cells[i].text;
			if (strlen(t) > 1024)
				continue;
			g_autoptr(GMatchInfo) mi = NULL;
			for (g_regex_match(reader_re(SLASHED), t, 0, &mi); g_match_info_matches(mi);
			     g_match_info_next(mi, NULL)) {
				g_autofree char *a = g_match_info_fetch(mi, 1);
				g_autofree char *b = g_match_info_fetch(mi, 2);
				dmy += to_int(a) > 12;
				mdy += to_int(b) > 12;
			}
			english += reader_has("\\b(?:invoice|due\\s+date|bill\\s+to|total|amount)\\b", t);
			other +=
			    reader_has("rechnung|facture|factura|fattura|factuur|betrag|montant|importe|totaal", t);
			pound += reader_has("£|\\bGBP\\b", t);
		}
	if (dmy || mdy)
		return mdy > dmy;
	return english > 0 && other == 0 && pound == 0;
}

/* The value of field f in text (the part after a label, or a whole cell). */
static bool value_in(enum rfield f, const char *text, bool rest, bool mdy, char **ret_text)
{
	char iso[11];
	while (*text == ' ' || *text == ':' || *text == '\t')
		text++;
	if (!*text)
		return false;
	if (f == RF_NUMBER) {
		*ret_text = id_at(text);
		return *ret_text != NULL;
	}
	if (f == RF_ISSUE || f == RF_DUE) {
		if (!page_date(text, rest ? 48 : 4, mdy, iso))
			return false;
		*ret_text = g_strdup(iso);
		return true;
	}
	const char *code = rules_currency(text);
	if (!code || strlen(text) > 24)
		return false;
	*ret_text = g_strdup(code);
	return true;
}

struct fields {
	struct reader_value *v[RF_COUNT];
	bool mdy; /* ambiguous n/n/yyyy dates are month first */
};

static double page_factor(const struct layout_cell *c)
{
	return c->page == 1 ? 1.0 : 0.9;
}

/* Offers the value of a label that ends at `end` in cell c: the rest of c, the cells right, the cell below. */
static void offer_label(const struct layout *l, const struct layout_cell *c, int start, int end, size_t vi,
                        struct fields *fs)
{
	const struct vocab *v = &VOCAB[vi];
	double w = v->weight * page_factor(c);
	if (v->field == RF_ISSUE && v->weight < 0.6) {
		/* A bare "Date": the words around it decide what date it is. */
		g_autofree char *before = g_strndup(c->text, (gsize)end);
		g_autofree char *after = g_strndup(c->text + end, 24);
		if (reader_has(NOT_ISSUE, before) ||
		    reader_has("^\\s*(?:de\\s+|d'|of\\s+)?(?:livraison|[ée]ch[ée]ance|commande|paiement|"
		               "delivery|due|order|supply|service|prestation|entrega|vencimiento)",
		               after))
			return;
	} else if (v->field == RF_ISSUE) {
		g_autofree char *before = g_strndup(c->text, (gsize)end);
		if (reader_has(NOT_ISSUE, before))
			return;
	} else if (v->field == RF_NUMBER) {
		if (v->weight < 0.6 && start > 0)
			return; /* a bare "No." inside a cell belongs to something else ("Kunden-Nr.") */
		g_autofree char *label = g_strndup(c->text + start, (gsize)(end - start));
		if (reader_has(NOT_NUMBER, label))
			return;
	}
	if (start > 0 && v->field != RF_ISSUE && v->field != RF_DUE)
		w *= 0.9; /* inside a sentence */
	char *val = NULL;
	if (value_in(v->field, c->text + end, true, fs->mdy, &val)) {
		reader_offer(fs->v[v->field], val, 0, w, c);
		g_free(val);
		return;
	}
	if (c->text[end] && v->field != RF_NUMBER && strspn(c->text + end, " :.#") < strlen(c->text + end) &&
	    strlen(c->text + end) > 3)
		return; /* the label is followed by something else in its own cell */
	for (int k = 1; k <= 2; k++) {
		const struct layout_cell *r = right_of(l, c, k);
		if (!r)
			break;
		if (value_in(v->field, r->text, false, fs->mdy, &val)) {
			reader_offer(fs->v[v->field], val, 0, w * (k == 1 ? 0.95 : 0.85), r);
			g_free(val);
			return;
		}
		if (strspn(r->text, " :.#") != strlen(r->text))
			break; /* only separators may stand between */
	}
	const struct layout_cell *b = reader_below(l, c);
	if (b && value_in(v->field, b->text, false, fs->mdy, &val)) {
		reader_offer(fs->v[v->field], val, 0, w * 0.85, b);
		g_free(val);
	}
}

static void read_labels(const struct layout *l, struct fields *fs)
{
	for (int p = 0; p < l->n_pages; p++) {
		const struct layout_page *pg = &l->pages[p];
		for (size_t i = 0; i < pg->n_cells; i++) {
			const struct layout_cell *c = &pg->cells[i];
			if (strlen(c->text) > MAX_TEXT)
				continue;
			for (size_t v = 0; v < G_N_ELEMENTS(VOCAB); v++) {
				g_autoptr(GMatchInfo) mi = NULL;
				int s = 0, e = 0;
				if (g_regex_match(vocab_re(v), c->text, 0, &mi) &&
				    g_match_info_fetch_pos(mi, 0, &s, &e))
					offer_label(l, c, s, e, v, fs);
			}
		}
	}
}

/* "Facture FA-2017-0009", "Invoice INV-42", "Gutschrift G-7": a heading with its number. */
static void read_heading_number(const struct layout *l, struct reader_invoice *r)
{
	static const char HEAD[] =
	    "^\\s*(?:tax\\s+|commercial\\s+|pro[- ]?forma\\s+)?(?:invoice|rechnung|facture|factura|fattura|"
	    "factuur|avoir|gutschrift|credit\\s+note|creditnota|nota\\s+de\\s+cr[ée]dito|nota\\s+di\\s+credito)"
	    "\\s*:?\\s+(?=\\S*\\d)";
	for (int p = 0; p < MIN(l->n_pages, 1); p++) {
		const struct layout_page *pg = &l->pages[p];
		for (size_t i = 0; i < pg->n_cells; i++) {
			g_autoptr(GMatchInfo) mi = NULL;
			int s = 0, e = 0;
			if (strlen(pg->cells[i].text) > 200 ||
			    !g_regex_match(reader_re(HEAD), pg->cells[i].text, 0, &mi) ||
			    !g_match_info_fetch_pos(mi, 0, &s, &e))
				continue;
			g_autofree char *id = id_at(pg->cells[i].text + e);
			if (id)
				reader_offer(&r->number, id, 0, 0.75, &pg->cells[i]);
		}
	}
}

/* The date of "Gutschrift Nr. 471102" | "vom 05.03.2018": the inline sentence broken into the
 * next cell, or onto the next line. */
static void offer_continued_date(const struct layout_cell *c, struct reader_invoice *r, bool mdy)
{
	static const char SENTENCE[] =
	    "^\\s*(?:[\\p{L}\\p{N}][\\p{L}\\p{N}\\-/._]*\\s+)?(?:vom|du|dated|del|van|of|d\\.d\\.)\\s+";
	g_autoptr(GMatchInfo) mi = NULL;
	int s = 0, e = 0;
	char iso[11];
	if (c && strlen(c->text) <= 80 && g_regex_match(reader_re(SENTENCE), c->text, 0, &mi) &&
	    g_match_info_fetch_pos(mi, 0, &s, &e) && page_date(c->text + e, 4, mdy, iso))
		reader_offer(&r->issue_date, iso, 0, 0.85, c);
}

static void read_date_below_number(const struct layout *l, struct reader_invoice *r, bool mdy)
{
	static const char HEAD[] =
	    "\\p{L}*(?:rechnung|invoice|facture|factura|fattura|factuur|avoir|gutschrift)\\p{L}*"
	    "\\b.{0,60}?(?:nr|no|n[°º]|nummer|number|num[ée]ro|#)\\.?\\s*:?\\s*(?:\\S*\\d\\S*)?\\s*$";
	for (int p = 0; p < MIN(l->n_pages, 1); p++)
		for (size_t i = 0; i < l->pages[p].n_cells; i++) {
			const struct layout_cell *c = &l->pages[p].cells[i];
			if (strlen(c->text) > 200 || !reader_has(HEAD, c->text) || reader_has(NOT_ISSUE, c->text))
				continue;
			offer_continued_date(layout_right_of(l, c), r, mdy);
			offer_continued_date(reader_below(l, c), r, mdy);
		}
}

/* A date standing alone at the top of page one ("München, 11. März 2014"): the letter's date,
 * unless the words above it say it is another. */
static void read_letter_date(const struct layout *l, struct reader_invoice *r, bool mdy)
{
	if (r->issue_date.set || l->n_pages == 0)
		return;
	const struct layout_page *pg = &l->pages[0];
	for (size_t i = 0; i < pg->n_cells; i++) {
		const struct layout_cell *c = &pg->cells[i];
		const struct layout_row *row = &pg->rows[c->row];
		char iso[11];
		if ((c->has_box && c->box.y0 > 0.4 * pg->height) || strlen(c->text) > 40 || row->n > 2 ||
		    !reader_has("^(?:[\\p{L} .-]{2,30},\\s*)?(?:\\d{1,2}|\\p{L}+)[ ./-]", c->text) ||
		    !page_date(c->text, 30, mdy, iso))
			continue;
		bool other = false;
		for (size_t k = (size_t)c->row; k-- > 0 && k + 3 > (size_t)c->row;)
			for (size_t j = pg->rows[k].first; j < pg->rows[k].first + pg->rows[k].n; j++)
				other = other || (pg->cells[j].box.x1 > c->box.x0 && pg->cells[j].box.x0 < c->box.x1 &&
				                  reader_has(NOT_ISSUE, pg->cells[j].text));
		if (other)
			continue;
		reader_offer(&r->issue_date, iso, 0, 0.45, c);
		return;
	}
}

static void read_credit_note(const struct layout *l, struct reader_invoice *r)
{
	static const char CREDIT[] =
	    "^\\s*(?:gutschrift|avoir|credit\\s+(?:note|memo)|nota\\s+de\\s+cr[ée]dito|nota\\s+di\\s+credito|"
	    "creditnota|creditfactuur)(?![\\p{L}])";
	if (l->n_pages == 0)
		return;
	const struct layout_page *pg = &l->pages[0];
	for (size_t i = 0; i < pg->n_cells; i++)
		if ((!pg->cells[i].has_box || pg->cells[i].box.y0 < 0.5 * pg->height) &&
		    reader_has(CREDIT, pg->cells[i].text))
			r->credit_note = true;
}

/* The currency written with the total, else the one written most, else the one of the
 * supplier's country (VAT id or IBAN prefix) where that country has one currency. */
static void read_currency(const struct layout *l, struct reader_invoice *r)
{
	if (r->currency.set)
		return;
	if (r->total.cell) {
		const struct layout_page *p = &l->pages[r->total.cell->page - 1];
		g_autofree char *row = layout_row_text(p, (size_t)r->total.cell->row);
		const char *code = rules_currency(row);
		if (code) {
			reader_offer(&r->currency, code, 0, 0.9, r->total.cell);
			return;
		}
	}
	GHashTable *count = g_hash_table_new(g_str_hash, g_str_equal);
	const char *best = NULL;
	const struct layout_cell *at = NULL;
	guint best_n = 0;
	for (int p = 0; p < l->n_pages; p++)
		for (size_t i = 0; i < l->pages[p].n_cells; i++) {
			const struct layout_cell *c = &l->pages[p].cells[i];
			const char *code = strlen(c->text) < 200 ? rules_currency(c->text) : NULL;
			if (!code)
				continue;
			guint n = GPOINTER_TO_UINT(g_hash_table_lookup(count, code)) + 1;
			g_hash_table_insert(count, (gpointer)code, GUINT_TO_POINTER(n));
			if (n > best_n)
				best = code, best_n = n, at = c;
		}
	g_hash_table_destroy(count);
	if (best) {
		reader_offer(&r->currency, best, 0, 0.7, at);
		return;
	}
	static const char EURO_ID[] = "\\b(?:AT|BE|DE|EE|ES|FI|FR|GR|EL|HR|IE|IT|LT|LU|LV|MT|NL|PT|SI|SK|CY)"
	                              "(?:U?\\d{8,12}|\\d{2}(?:\\s?[0-9A-Z]{4}){3,7})\\b";
	for (int p = 0; p < l->n_pages; p++)
		for (size_t i = 0; i < l->pages[p].n_cells; i++)
			if (reader_has(EURO_ID, l->pages[p].cells[i].text)) {
				reader_offer(&r->currency, "EUR", 0, 0.5, &l->pages[p].cells[i]);
				return;
			}
}

void reader_invoice_read(const struct layout *lay, struct reader_invoice *ret)
{
	memset(ret, 0, sizeof *ret);
	struct fields fs = {{&ret->number, &ret->issue_date, &ret->due_date, &ret->currency}, dates_month_first(lay)};
	read_labels(lay, &fs);
	read_heading_number(lay, ret);
	read_date_below_number(lay, ret, fs.mdy);
	read_letter_date(lay, ret, fs.mdy);
	read_credit_note(lay, ret);
	reader_parties(lay, ret);
	totals_read(lay, ret);
	read_currency(lay, ret);
}

void reader_invoice_done(struct reader_invoice *r)
{
	struct reader_value *all[] = {&r->number,   &r->issue_date, &r->due_date, &r->supplier, &r->buyer,
	                              &r->currency, &r->net,        &r->tax,      &r->total};
	for (size_t i = 0; i < G_N_ELEMENTS(all); i++)
		g_free(all[i]->text);
	memset(r, 0, sizeof *r);
}
