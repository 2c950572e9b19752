/* parties: who bills (supplier) and who is billed (buyer), from the page's structure.
 *
 * A party label heads a block ("Verkäufer:", "Bill to", "Facturé à"); its
 * name is the rest of the label's cell, the cell right of it, a "Name:" line
 * of the block, or the block's first line that is neither a "key: value" pair
 * nor a number. Blocks under buyer and delivery labels are never the supplier.
 * Without a supplier label, the candidates are the sender line above the
 * address window ("Name - Street - Postcode City"), company names with a legal
 * form, and the letterhead (largest type at the top of page one); a name that
 * several of these agree on wins. */
#include <glib.h>
#include <math.h>
#include <string.h>

#include "extractors/internal.h"
#include "extractors/layout.h"

#define MAX_NAME 120
#define BLOCK_ROWS 8

static const char SUPPLIER_LABEL[] =
    "^\\s*(?:verk[äa]ufer|seller|supplier|vendor|lieferant|rechnungs(?:s|er)steller|leistungserbringer|fournisseur|"
    "vendeur|[ée]metteur|prestataire|proveedor|emisor|vendedor|fornitore|cedente(?:\\s*/?\\s*prestatore)?|leverancier|"
    "verkoper|from|bill(?:ed)?\\s+from|issued\\s+by|absender|exp[ée]diteur)\\s*(?::|$)";
static const char BUYER_LABEL[] =
    "^\\s*(?:bill(?:ed)?\\s+to|invoice\\s+to|invoiced\\s+to|sold\\s+to|customer|buyer|client|recipient|"
    "rechnungsempf[äa]nger|k[äa]ufer(?:\\s*/\\s*leistungsempf[äa]nger)?|leistungsempf[äa]nger|kunde|auftraggeber|"
    "factur[ée]\\s+[àa]|destinataire|acheteur|adresse\\s+de\\s+facturation|cliente|facturar\\s+a|comprador|"
    "destinatario|committente|cessionario(?:\\s*/?\\s*committente)?|klant|afnemer|factuuradres|koper)\\s*(?::|$)";
static const char OTHER_LABEL[] =
    "^\\s*(?:ship(?:ped)?\\s+to|deliver(?:ed|y)?\\s+(?:to|address)|warenempf[äa]nger|lieferanschrift|lieferadresse|"
    "abweichende\\w*\\s+\\w+|adresse\\s+de\\s+livraison|livr[ée]\\s+[àa]|direcci[óo]n\\s+de\\s+entrega|"
    "indirizzo\\s+di\\s+consegna|afleveradres|leveradres)\\s*(?::|$)";
static const char NAME_LABEL[] =
    "^\\s*(?:name|firma|company|raison\\s+sociale|nom|nombre|ragione\\s+sociale|naam|bedrijf(?:snaam)?|"
    "denominaci[óo]n)\\s*:?\\s*";
static const char LEGAL_FORM[] =
    "(?-i:(?<![\\p{L}])(?:GmbH|gGmbH|AG|KG|KGaA|OHG|GbR|UG|e\\.\\s?K\\.|SE|mbH|SARL|S\\.A\\.R\\.L\\.|SAS|S\\.A\\.S\\.|"
    "SA|S\\.A\\.|EURL|a\\.\\s?G\\.|e\\.\\s?V\\.|eG|Ltd\\.?|LTD|Limited|LLC|LLP|PLC|plc|Inc\\.?|Corp\\.?|Corporation|"
    "B\\.V\\.|BV|N\\.V\\.|NV|S\\.L\\.U?\\.?|"
    "SLU?|S\\.r\\.l\\.|Srl|SRL|S\\.p\\.A\\.|SpA|SPA|S\\.n\\.c\\.|GMBH|Sp\\.\\s?z\\s?o\\.o\\.)(?![\\p{L}]))";
static const char HEADING[] = "^\\s*(?:\\p{L}*rechnung|invoice|tax\\s+invoice|facture|factura|fattura|factuur|avoir|"
                              "gutschrift|credit\\s+note|page|seite)\\b";

static bool has_letters(const char *s)
{
	for (; *s; s = g_utf8_next_char(s))
		if (g_unichar_isalpha(g_utf8_get_char(s)))
			return true;
	return false;
}

/* A line that could be a party's name. */
static bool name_like(const char *s)
{
	size_t n = strlen(s);
	if (n < 2 || n > MAX_NAME || !has_letters(s) || g_ascii_isdigit(s[0]) || strchr(s, '@') || strstr(s, "www.") ||
	    strstr(s, "://"))
		return false;
	int digits = 0;
	for (const char *p = s; *p; p++)
		digits += g_ascii_isdigit(*p);
	return digits * 3 < (int)n;
}

static bool is_label(const char *s)
{
	return reader_has(SUPPLIER_LABEL, s) || reader_has(BUYER_LABEL, s) || reader_has(OTHER_LABEL, s);
}

/* The name after the colon of "Label: Name" (g_free), or NULL. */
static char *after_colon(const char *s)
{
	const char *colon = strchr(s, ':');
	if (!colon)
		return NULL;
	char *v = g_strstrip(g_strdup(colon + 1));
	if (name_like(v))
		return v;
	g_free(v);
	return NULL;
}

/* The cell of row r nearest under c's left edge (starting under c, or overlapping it). */
static const struct layout_cell *under(const struct layout_page *p, size_t r, const struct layout_cell *c)
{
	const struct layout_row *row = &p->rows[r];
	const struct layout_cell *best = NULL;
	for (size_t i = row->first; i < row->first + row->n; i++) {
		const struct layout_cell *x = &p->cells[i];
		if (!c->has_box)
			return x;
		bool ok = (x->box.x0 < c->box.x1 && x->box.x1 > c->box.x0) || fabsf(x->box.x0 - c->box.x0) < 40;
		if (ok && (!best || fabsf(x->box.x0 - c->box.x0) < fabsf(best->box.x0 - c->box.x0)))
			best = x;
	}
	return best;
}

/* The name of the block that label cell c heads; marks the block's cells in `block` when given. */
static const struct layout_cell *block_name(const struct layout *l, const struct layout_cell *c, GHashTable *block,
                                            char **ret)
{
	char *v = after_colon(c->text);
	if (v) {
		*ret = v;
		return c;
	}
	const struct layout_cell *r = layout_right_of(l, c);
	if (r && name_like(r->text) && !is_label(r->text) && (!c->has_box || r->box.x0 - c->box.x1 < 150)) {
		if (block)
			g_hash_table_add(block, (gpointer)r);
		*ret = g_strdup(r->text);
		return r;
	}
	const struct layout_page *p = &l->pages[c->page - 1];
	float h = c->has_box ? MAX(c->box.y1 - c->box.y0, 4.0f) : 1;
	float last_y = c->has_box ? c->box.y1 : 0;
	const struct layout_cell *found = NULL;
	for (size_t k = (size_t)c->row + 1; k < p->n_rows && k <= (size_t)c->row + BLOCK_ROWS; k++) {
		const struct layout_cell *x = under(p, k, c);
		if (!x)
			continue;
		if (c->has_box && x->box.y0 - last_y > 2.5f * h)
			break;
		last_y = x->has_box ? x->box.y1 : last_y;
		if (is_label(x->text))
			break;
		if (block)
			g_hash_table_add(block, (gpointer)x);
		if (found)
			continue;
		if (reader_has(NAME_LABEL, x->text)) {
			char *nv = after_colon(x->text);
			const struct layout_cell *rv = layout_right_of(l, x);
			if (nv) {
				*ret = nv;
				found = x;
			} else if (rv && name_like(rv->text)) {
				*ret = g_strdup(rv->text);
				found = rv;
			}
			continue;
		}
		const struct layout_cell *xr = layout_right_of(l, x);
		if (strchr(x->text, ':') || !name_like(x->text) || (xr && xr->text[0] == ':'))
			continue; /* a "key: value" line of the block */
		*ret = g_strdup(x->text);
		found = x;
		if (!block)
			break;
	}
	return found;
}

struct party_cand {
	char *name, *key;
	double score, best;
	const struct layout_cell *cell;
};

static void cand_add(GArray *cands, const char *name, double score, const struct layout_cell *cell)
{
	g_autofree char *t = g_strstrip(g_strdup(name));
	size_t n = strlen(t);
	while (n > 0 && strchr(",;:-", t[n - 1]))
		t[--n] = '\0';
	if (!name_like(t) || reader_has(HEADING, t))
		return;
	char *key = g_utf8_casefold(t, -1);
	for (guint i = 0; i < cands->len; i++) {
		struct party_cand *x = &g_array_index(cands, struct party_cand, i);
		if (strcmp(x->key, key) == 0) {
			x->score = MAX(x->best, score) + 0.2 * MIN(x->best, score);
			x->best = MAX(x->best, score);
			g_free(key);
			return;
		}
	}
	struct party_cand c = {g_strdup(t), key, score, score, cell};
	g_array_append_val(cands, c);
}

/* "Au bon moulin SARL - 1242 chemin de l'olive - 84340 Malaucène": the sender's name. */
static void sender_line(GArray *cands, const struct layout_page *p, GHashTable *block)
{
	static const char SEP[] = "\\s+[-–·•|]\\s+|\\s*,\\s+|\\s{2,}";
	for (size_t i = 0; i < p->n_cells; i++) {
		const struct layout_cell *c = &p->cells[i];
		if (g_hash_table_contains(block, c) || (c->has_box && c->box.y0 > 0.5 * p->height) ||
		    strlen(c->text) > 300 || !reader_has("\\b\\d{4,5}\\b", c->text))
			continue;
		g_auto(GStrv) seg = g_regex_split(reader_re(SEP), c->text, 0);
		if (g_strv_length(seg) >= 3 && !reader_has("\\d", seg[0]))
			cand_add(cands, seg[0], 0.8, c);
	}
}

static void company_names(GArray *cands, const struct layout_page *p, GHashTable *block)
{
	float top_h = 0;
	const struct layout_cell *top = NULL;
	for (size_t i = 0; i < p->n_cells; i++) {
		const struct layout_cell *c = &p->cells[i];
		if (g_hash_table_contains(block, c) || !name_like(c->text) || strchr(c->text, ':') || is_label(c->text))
			continue;
		bool high = c->has_box ? c->box.y1 < 0.25 * p->height : c->row < 6;
		if (reader_has(LEGAL_FORM, c->text) && g_utf8_strlen(c->text, -1) <= 80)
			cand_add(cands, c->text, high ? 0.6 : 0.45, c);
		float h = c->has_box ? c->box.y1 - c->box.y0 : (float)(6 - c->row);
		if (high && !reader_has(HEADING, c->text) && (!top || h > top_h + 0.5f)) {
			top = c;
			top_h = h;
		}
	}
	if (top)
		cand_add(cands, top->text, 0.5, top);
}

/* Where the supplier identifies itself: VAT id, IBAN, trade register, tax number. */
static const char SUPPLIER_ID[] =
    "\\b(?:vat|tva|ust|mwst|btw|iva|gst)\\b.{0,24}?\\b[A-Z]{2}\\s?[0-9A-Z]{2}[0-9A-Z "
    "]{6,14}\\b|\\biban\\b|\\bhrb?\\b\\s*(?:nr\\.?\\s*)?\\d|"
    "registered\\s+(?:in|office|no)|company\\s+(?:no|number|reg)|siret|siren|handelsregister|amtsgericht|steuer-?\\s*"
    "nr|"
    "st\\.-?\\s*nr|\\bkvk\\b|registro\\s+mercantil|\\bc\\.?i\\.?f\\b|p\\.?\\s?iva|ust-?id";
static const char BUYER_WORDS[] = "client|customer|kunde|k[äa]ufer|acheteur|buyer|destinataire|cliente|klant|afnemer";

/* The block that holds the supplier's identifiers (a footer, a sidebar): its name is the first
 * part of a "Name · Street · VAT ..." line, or the line with a name over the identifiers. */
static void id_blocks(GArray *cands, const struct layout *l, GHashTable *block)
{
	static const char SEP[] = "\\s+[-–·•|]\\s+|\\s{2,}";
	for (int pg = 0; pg < MIN(l->n_pages, 2); pg++) {
		const struct layout_page *p = &l->pages[pg];
		for (size_t i = 0; i < p->n_cells; i++) {
			const struct layout_cell *c = &p->cells[i];
			if (g_hash_table_contains(block, c) || strlen(c->text) > 300 ||
			    !reader_has(SUPPLIER_ID, c->text) || reader_has(BUYER_WORDS, c->text))
				continue;
			g_auto(GStrv) seg = g_regex_split(reader_re(SEP), c->text, 0);
			if (g_strv_length(seg) >= 2 && !reader_has("\\d", seg[0]) && !reader_has(SUPPLIER_ID, seg[0])) {
				cand_add(cands, seg[0], 0.65, c);
				continue;
			}
			for (size_t k = (size_t)c->row; k-- > 0 && k + 6 > (size_t)c->row;) {
				const struct layout_cell *x = under(p, k, c);
				if (!x || g_hash_table_contains(block, x))
					break;
				if (name_like(x->text) && !strchr(x->text, ':') && !reader_has(SUPPLIER_ID, x->text) &&
				    reader_has(LEGAL_FORM, x->text)) {
					cand_add(cands, x->text, 0.6, x);
					break;
				}
			}
		}
	}
}

static void cands_free(GArray *cands)
{
	for (guint i = 0; i < cands->len; i++) {
		g_free(g_array_index(cands, struct party_cand, i).name);
		g_free(g_array_index(cands, struct party_cand, i).key);
	}
	g_array_free(cands, TRUE);
}

/* Party labels on every page: the buyer's block, the supplier's name. */
static void labelled(const struct layout *l, struct reader_invoice *r, GHashTable *block, GArray *cands)
{
	for (int p = 0; p < l->n_pages; p++) {
		const struct layout_page *pg = &l->pages[p];
		for (size_t i = 0; i < pg->n_cells; i++) {
			const struct layout_cell *c = &pg->cells[i];
			char *name = NULL;
			const struct layout_cell *at = NULL;
			if (reader_has(BUYER_LABEL, c->text)) {
				g_hash_table_add(block, (gpointer)c);
				if ((at = block_name(l, c, block, &name)))
					reader_offer(&r->buyer, name, 0, p == 0 ? 0.9 : 0.8, at);
			} else if (reader_has(OTHER_LABEL, c->text)) {
				g_hash_table_add(block, (gpointer)c);
				at = block_name(l, c, block, &name);
			} else if (reader_has(SUPPLIER_LABEL, c->text) && (at = block_name(l, c, NULL, &name))) {
				cand_add(cands, name, p == 0 ? 1.0 : 0.9, at);
			}
			g_free(name);
		}
	}
}

/* The line of row k in c's column, flush with c's left edge and of the same size, or NULL. */
static const struct layout_cell *flush(const struct layout_page *p, size_t k, const struct layout_cell *c)
{
	const struct layout_cell *x = under(p, k, c);
	if (!x || !x->has_box || fabsf(x->box.x0 - c->box.x0) > 3 ||
	    fabsf((x->box.y1 - x->box.y0) - (c->box.y1 - c->box.y0)) > 1.5f ||
	    fabsf(x->box.y0 - c->box.y0) > 1.8f * (c->box.y1 - c->box.y0) || strchr(x->text, ':') ||
	    !name_like(x->text) || is_label(x->text))
		return NULL;
	return x;
}

/* A company name wrapped onto two lines, its legal form on the second ("MVM Musterhafter" /
 * "Versicherungsverein Musterstadt a.G."): both lines. */
static void unwrap(const struct layout *l, struct reader_value *v)
{
	const struct layout_cell *c = v->cell;
	if (!c || !c->has_box || !v->text || strcmp(v->text, c->text) != 0)
		return;
	const struct layout_page *p = &l->pages[c->page - 1];
	if (!reader_has(LEGAL_FORM, c->text) && (size_t)c->row + 1 < p->n_rows) {
		const struct layout_cell *next = flush(p, (size_t)c->row + 1, c);
		if (next && reader_has(LEGAL_FORM, next->text)) {
			char *t = g_strdup_printf("%s %s", c->text, next->text);
			g_free(v->text);
			v->text = t;
		}
	} else if (reader_has(LEGAL_FORM, c->text) && c->row > 0) {
		/* the name began on the line above (alone on its line, where a "Name:" label may stand
		 * left of the second one) */
		const struct layout_cell *prev = flush(p, (size_t)c->row - 1, c);
		if (prev && p->rows[prev->row].n == 1 && !reader_has(LEGAL_FORM, prev->text)) {
			char *t = g_strdup_printf("%s %s", prev->text, c->text);
			g_free(v->text);
			v->text = t;
		}
	}
}

void reader_parties(const struct layout *lay, struct reader_invoice *r)
{
	if (lay->n_pages == 0)
		return;
	GHashTable *block = g_hash_table_new(NULL, NULL);
	GArray *cands = g_array_new(FALSE, TRUE, sizeof(struct party_cand));
	labelled(lay, r, block, cands);
	sender_line(cands, &lay->pages[0], block);
	id_blocks(cands, lay, block);
	company_names(cands, &lay->pages[0], block);
	g_autofree char *buyer = r->buyer.text ? g_utf8_casefold(r->buyer.text, -1) : NULL;
	for (guint i = 0; i < cands->len; i++) {
		struct party_cand *c = &g_array_index(cands, struct party_cand, i);
		if (!buyer || strcmp(buyer, c->key) != 0)
			reader_offer(&r->supplier, c->name, 0, MIN(c->score, 1.0) * 0.95, c->cell);
	}
	unwrap(lay, &r->supplier);
	cands_free(cands);
	g_hash_table_destroy(block);
}
