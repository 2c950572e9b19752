/* totals: net, tax and total as the page's arithmetically consistent set.
 *
 * Each row is cut into segments: a cell with words starts one, and the
 * numbers in it and in the word-less cells after it belong to it ("Steuerbetrag
 * in | EUR | 56,87"). A segment's words give it roles with weights (net, tax,
 * total; discounts, prepayments and charges none), and its last number that is
 * not a rate is its value, or the number under its label when it has none (a
 * column header over its value). Tax lines are rows holding a rate, a base and
 * a tax with base × rate = tax. The chosen net, tax and total are the triple of
 * candidates with the highest summed weight, where a triple that adds up
 * (net + tax = total) earns a bonus worth more than any one label; the tax lines'
 * sum is a tax candidate and their bases' sum a net candidate. */
#include <glib.h>
#include <math.h>
#include <string.h>

#include "extractors/internal.h"
#include "extractors/layout.h"

#define MAX_NUMS 64  /* numbers of one row */
#define MAX_CANDS 16 /* per role, the best kept */
#define CONSISTENT 1.5

struct num {
	double v;
	int decimals;
	bool percent;
	bool id_like; /* five digits or more without any separator */
	const struct layout_cell *cell;
};

struct cand {
	double v, score;
	const struct layout_cell *cell;
};

enum role { R_NET, R_TAX, R_TOTAL, R_COUNT };

struct pool {
	struct cand c[R_COUNT][MAX_CANDS];
	int n[R_COUNT];
	struct reader_tax_line lines[READER_MAX_TAX_LINES];
	double bases[READER_MAX_TAX_LINES];
	size_t n_lines;
	const struct layout_cell *line_cell;
	bool exempt;
};

static void add_cand(struct pool *p, enum role r, double v, double score, const struct layout_cell *cell)
{
	int worst = 0;
	for (int i = 0; i < p->n[r]; i++) {
		if (fabs(p->c[r][i].v - v) < 0.005) { /* the same amount again: surer, not a new one */
			p->c[r][i].score = MAX(p->c[r][i].score, score) + 0.05;
			return;
		}
		if (p->c[r][i].score < p->c[r][worst].score)
			worst = i;
	}
	if (p->n[r] < MAX_CANDS)
		p->c[r][p->n[r]++] = (struct cand){v, score, cell};
	else if (p->c[r][worst].score < score)
		p->c[r][worst] = (struct cand){v, score, cell};
}

/* ---- numbers ---- */

static const char NUM[] =
    "(?<![\\p{L}\\p{N}.,/:])(\\(|-\\s?)?(\\d{1,3}(?:(?:[.,'\\x{2019}]|\\s|\\x{a0}|\\x{202f})\\d{3})+"
    "(?:[.,]\\d{1,4})?|\\d+(?:[.,]\\d{1,4})?)(?![\\p{N}]|[.,]\\d)(\\)|\\s?-(?![\\p{N}]))?(\\s?%)?";
static const char DATE_LIKE[] = "\\d{1,4}[./-]\\d{1,2}[./-]\\d{1,4}|\\d{1,2}\\.\\s?\\p{L}+\\.?\\s\\d{4}";

/* The value of a number as written: the last '.' or ',' followed by 1, 2 or 4 digits
 * (or the only one of two kinds) is the decimal point; other separators group thousands. */
static double number_value(const char *s, int *ret_decimals)
{
	long dec = -1;
	size_t n = strlen(s);
	int dots = 0, commas = 0;
	for (size_t i = 0; i < n; i++)
		dots += s[i] == '.', commas += s[i] == ',';
	for (long i = (long)n - 1; i >= 0; i--)
		if (s[i] == '.' || s[i] == ',') {
			long after = (long)n - 1 - i;
			bool both = dots > 0 && commas > 0;
			bool once = (s[i] == '.' ? dots : commas) == 1;
			if (both || (once && after != 3))
				dec = i;
			break;
		}
	GString *clean = g_string_new(NULL);
	for (size_t i = 0; i < n; i++) {
		if (g_ascii_isdigit(s[i]))
			g_string_append_c(clean, s[i]);
		else if ((long)i == dec)
			g_string_append_c(clean, '.');
	}
	*ret_decimals = dec < 0 ? 0 : (int)((long)n - 1 - dec);
	double v = g_ascii_strtod(clean->str, NULL);
	g_string_free(clean, TRUE);
	return v;
}

/* Appends the numbers of cell c to nums. */
static void cell_numbers(const struct layout_cell *c, struct num *nums, int *n)
{
	if (strlen(c->text) > 1024)
		return;
	g_autofree char *t = g_regex_replace_literal(reader_re(DATE_LIKE), c->text, -1, 0, " ", 0, NULL);
	g_autoptr(GMatchInfo) mi = NULL;
	for (g_regex_match(reader_re(NUM), t ? t : "", 0, &mi); g_match_info_matches(mi) && *n < MAX_NUMS;
	     g_match_info_next(mi, NULL)) {
		g_autofree char *sign = g_match_info_fetch(mi, 1);
		g_autofree char *digits = g_match_info_fetch(mi, 2);
		g_autofree char *trail = g_match_info_fetch(mi, 3);
		g_autofree char *pct = g_match_info_fetch(mi, 4);
		struct num x = {.cell = c, .percent = pct && pct[0]};
		x.v = number_value(digits, &x.decimals);
		x.id_like = strlen(digits) >= 5 && strspn(digits, "0123456789") == strlen(digits);
		/* "(35,13 €)" on an invoice is an amount shown for information, not a negative one */
		if ((sign && sign[0] == '-') || (trail && strchr(trail, '-')))
			x.v = -x.v;
		nums[(*n)++] = x;
	}
}

/* Whether a cell's text, without its numbers and currency, still has words. */
static bool has_words(const char *text)
{
	static const char NOISE[] =
	    "[\\d.,'%()\\s+*:=/\\-]|€|\\$|£|¥|\\b(?:EUR|USD|GBP|CHF|JPY|SEK|NOK|DKK|PLN|CZK|CAD|AUD)\\b";
	if (strlen(text) > 1024)
		return false;
	g_autofree char *rest = g_regex_replace_literal(reader_re(NOISE), text, -1, 0, "", 0, NULL);
	return rest && g_utf8_strlen(rest, -1) >= 2;
}

/* ---- roles ---- */

static const char IGNORE[] =
    "rabatt|discount|remise|abschl[äa]g|zuschl[äa]g|skonto|anzahlung|prepaid|paid|deposit|acompte|vers[ée]|r[èe]"
    "glement|"
    "already|erhalten|bezahlt|descuento|sconto|korting|aanbetaling|rounding|rundung|arrondi|shipping|fracht|porto|"
    "leergut|pfand|gutschein|einbehalt|retention|allowance|charge|frais|nachlass|bonus|stk|menge|quantity|qty|"
    /* identifiers that share a tax word: VAT numbers, tax numbers, registrations, contacts */
    "(?:vat|tax|ust|mwst|tva|btw|iva|gst)[\\s.-]*(?:reg|no\\b|nr|id|number|num|code)|steuer-?\\s*nr|steuernummer|ust-?"
    "idnr|"
    "identifi|siret|siren|\\bkvk\\b|\\bcif\\b|\\bnif\\b|partita|codice|iban|\\bbic\\b|swift|\\btel|\\bfax\\b|phone|"
    "telefon|\\bhrb\\b|amtsgericht|kunden-?\\s*nr|customer\\s+(?:no|number|id)|order\\s+(?:no|number)|bestell";
static const char GROSS[] =
    "grand\\s+total|total\\s+(?:incl|inc\\.|including|with|gross|amount|invoice)|invoice\\s+total|gross|brutto|inkl|"
    "incl|"
    "gesamtbetrag|gesamtsumme|endbetrag|rechnungsbetrag|rechnungssumme\\s+brutto|\\bttc\\b|net\\s+[àa]\\s+payer|"
    "montant\\s+total|"
    "importe\\s+total|total\\s+factura|totale\\s+(?:fattura|documento)|importo\\s+totale|totaalbedrag|factuurbedrag|"
    "totaal\\s+(?:incl|te\\s+betalen)";
static const char PAYABLE[] = "zahlbetrag|zu\\s+zahlen|amount\\s+due|balance\\s+due|total\\s+due|[àa]\\s+payer|solde|"
                              "te\\s+betalen|da\\s+pagare|a\\s+pagar|payable|now\\s+due";
static const char NET[] = "\\bnet(?:to)?\\b|netto|sub-?\\s*total|zwischensumme|warenwert|excl|exkl|excluding|"
                          "\\bohne\\b|hors\\s+tax|\\bht\\b|h\\.t\\.|"
                          "base\\s+imponible|imponibile|subtotaal|taxable\\s+amount|before\\s+tax|steuerpflichtig";
static const char ITEMS_SUM[] = "positionssumme|summe\\s+(?:der\\s+)?positionen|line\\s+total|total\\s+(?:lines|items)|"
                                "warenwert|total\\s+des\\s+lignes|suma\\s+de\\s+l[íi]neas";
static const char TAX[] =
    "\\bvat\\b|v\\.a\\.t|\\btax(?:es)?\\b|\\bgst\\b|\\bhst\\b|mwst|mehrwertsteuer|\\bust\\b|ust\\.|umsatzsteuer|"
    "steuer|\\btva\\b|\\btaxe|\\bbtw\\b|\\biva\\b|imposta|impuesto";
static const char BASE[] = "basis|\\bbase\\b|bemessung|taxable|imponible|grondslag|imponibile|steuersatz|tax\\s+rate";
static const char TOTALISH[] =
    "total|summe|gesamt|betrag|montant|importe|totale|totaal|bedrag|amount|\\bsum\\b|\\bsomme\\b";
static const char EXEMPT[] =
    "steuerfrei|tax\\s+exempt|exempt|exon[ée]r|reverse\\s+charge|autoliquidation|innergemeinschaftlich|"
    "intra-?community|intracommunautaire|vat\\s+0|0\\s?%|nicht\\s+steuerbar|kleinunternehmer|"
    "art(?:icle)?\\.?\\s+\\d+.*(?:cgi|ustg)|\\b19\\s+ustg|franchise\\s+en\\s+base";

/* The roles a label gives its amount, with their weights. */
static void roles_of(const char *label, double w[R_COUNT])
{
	memset(w, 0, sizeof(double) * R_COUNT);
	if (reader_has(IGNORE, label))
		return;
	if (reader_has(GROSS, label)) {
		w[R_TOTAL] = 1.0;
		return;
	}
	if (reader_has(NET, label)) {
		w[R_NET] = 1.0;
		return;
	}
	if (reader_has(ITEMS_SUM, label)) {
		w[R_NET] = 0.6;
		return;
	}
	if (reader_has(TAX, label)) {
		if (!reader_has(BASE, label))
			w[R_TAX] = reader_has(TOTALISH, label) ? 1.0 : 0.8;
		return;
	}
	if (reader_has(PAYABLE, label))
		w[R_TOTAL] = 0.75;
	else if (reader_has(TOTALISH, label))
		w[R_TOTAL] = 0.55;
}

/* ---- reading rows ---- */

static double place(const struct layout *l, const struct layout_cell *c)
{
	const struct layout_page *p = &l->pages[c->page - 1];
	double y = c->has_box && p->height > 0 ? c->box.y0 / p->height : (double)c->row / MAX(p->n_rows, 1);
	return 0.9 + 0.1 * y + (c->page == l->n_pages ? 0.03 : 0);
}

/* An amount, not a rate, a unit price or an identifier (a long run of digits with no separator). */
static bool money(const struct num *x)
{
	return !x->percent && x->decimals <= 2 && !x->id_like;
}

/* A column header's values: the amounts under it; the last one (the breakdown's sum) is likelier. */
static void column(const struct layout *l, const struct layout_cell *label, const double w[R_COUNT], struct pool *pool)
{
	const struct layout_cell *b = label, *last_cell = NULL;
	double last = 0;
	for (int k = 0; k < 12 && (b = reader_below(l, b)) && !has_words(b->text); k++) {
		struct num nums[MAX_NUMS];
		int n = 0;
		cell_numbers(b, nums, &n);
		if (n != 1 || !money(&nums[0]))
			break;
		if (last_cell)
			for (int r = 0; r < R_COUNT; r++)
				if (w[r] > 0)
					add_cand(pool, (enum role)r, last, w[r] * 0.8 * place(l, last_cell), last_cell);
		last = nums[0].v;
		last_cell = b;
	}
	if (last_cell)
		for (int r = 0; r < R_COUNT; r++)
			if (w[r] > 0)
				add_cand(pool, (enum role)r, last, w[r] * 0.88 * place(l, last_cell), last_cell);
}

/* The segment of words at cells[from] with its numbers (up to the next cell with words). */
static void segment(const struct layout *l, const struct layout_page *p, const struct layout_row *row, size_t from,
                    struct pool *pool)
{
	const struct layout_cell *label = &p->cells[from];
	double w[R_COUNT];
	roles_of(label->text, w);
	if (w[R_NET] == 0 && w[R_TAX] == 0 && w[R_TOTAL] == 0)
		return;
	struct num nums[MAX_NUMS];
	int n = 0;
	cell_numbers(label, nums, &n);
	for (size_t i = from + 1; i < row->first + row->n && !has_words(p->cells[i].text); i++)
		cell_numbers(&p->cells[i], nums, &n);
	const struct num *last = NULL;
	for (int i = 0; i < n; i++)
		if (money(&nums[i]))
			last = &nums[i];
	if (!last) {
		column(l, label, w, pool);
		return;
	}
	for (int r = 0; r < R_COUNT; r++)
		if (w[r] > 0)
			add_cand(pool, (enum role)r, last->v, w[r] * place(l, last->cell), last->cell);
}

/* A tax line (base NAN when the page gives none); the same breakdown printed again counts once. */
static void add_line(struct pool *pool, double rate, double base, double tax, const struct layout_cell *cell)
{
	for (size_t k = 0; k < pool->n_lines; k++)
		if (pool->lines[k].rate == rate && pool->lines[k].tax == tax)
			return;
	if (pool->n_lines < READER_MAX_TAX_LINES) {
		pool->lines[pool->n_lines] = (struct reader_tax_line){rate, tax};
		pool->bases[pool->n_lines++] = base;
		pool->line_cell = pool->line_cell ? pool->line_cell : cell;
	}
}

static bool rate_like(const struct num *x)
{
	return x->v >= 0 && x->v <= 30 && x->decimals <= 2 &&
	       (x->percent || x->decimals == 0 || fmod(x->v * 10, 1) < 1e-6);
}

/* Whether the header over cell c (the nearest cell with words above it in its column) names a rate. */
static bool rate_column(const struct layout_page *p, const struct layout_cell *c)
{
	if (!c->has_box)
		return false;
	for (size_t k = (size_t)c->row; k-- > 0 && k + 8 > (size_t)c->row;) {
		const struct layout_row *row = &p->rows[k];
		for (size_t i = row->first; i < row->first + row->n; i++) {
			const struct layout_cell *x = &p->cells[i];
			if (x->box.x0 < c->box.x1 && x->box.x1 > c->box.x0 && has_words(x->text))
				return reader_has("%|\\brate\\b|satz|taux|tasa|aliquota|tarief", x->text);
		}
	}
	return false;
}

/* A row with a rate, a base and a tax that agree (base × rate / 100 = tax). */
static void tax_line(const struct layout_page *p, const struct layout_row *row, struct pool *pool)
{
	struct num nums[MAX_NUMS];
	int n = 0;
	bool taxword = false;
	for (size_t i = row->first; i < row->first + row->n; i++) {
		cell_numbers(&p->cells[i], nums, &n);
		taxword = taxword || reader_has(TAX, p->cells[i].text);
	}
	g_autofree char *text = layout_row_text(p, (size_t)(row - p->rows));
	if (n < 2 || reader_has(IGNORE, text))
		return; /* a discount's or a charge's tax is not a tax line */
	double w[R_COUNT];
	roles_of(text, w);
	if (n == 2 && w[R_TAX] > 0 && nums[0].percent && rate_like(&nums[0]) && money(&nums[1]) && !nums[1].percent) {
		add_line(pool, nums[0].v, NAN, nums[1].v, nums[1].cell); /* "MwSt. 19 %: 7.995,83" */
		return;
	}
	for (int r = 0; r < n; r++) {
		if (!rate_like(&nums[r]) || (!nums[r].percent && !taxword && !rate_column(p, nums[r].cell)))
			continue;
		for (int b = 0; b < n; b++)
			for (int t = 0; t < n; t++) {
				const struct num *B = &nums[b], *T = &nums[t];
				if (b == r || t == r || b == t || !money(B) || !money(T) || fabs(B->v) <= fabs(T->v) ||
				    (T->v == 0 && nums[r].v != 0) || (T->v != 0 && (B->v < 0) != (T->v < 0)))
					continue;
				if (fabs(B->v * nums[r].v / 100 - T->v) > 0.011 + 0.0005 * fabs(T->v))
					continue;
				add_line(pool, nums[r].v, B->v, T->v, T->cell);
				return;
			}
	}
}

static void read_rows(const struct layout *l, struct pool *pool)
{
	for (int pg = 0; pg < l->n_pages; pg++) {
		const struct layout_page *p = &l->pages[pg];
		for (size_t r = 0; r < p->n_rows; r++) {
			const struct layout_row *row = &p->rows[r];
			for (size_t i = row->first; i < row->first + row->n; i++) {
				if (has_words(p->cells[i].text))
					segment(l, p, row, i, pool);
				pool->exempt = pool->exempt || reader_has(EXEMPT, p->cells[i].text);
			}
			tax_line(p, row, pool);
		}
	}
}

/* ---- choosing ---- */

static void choose(struct pool *p, struct reader_invoice *r)
{
	const struct cand none = {0, 0, NULL};
	double best = 0;
	const struct cand *bn = &none, *bt = &none, *bg = &none;
	for (int i = -1; i < p->n[R_NET]; i++)
		for (int j = -1; j < p->n[R_TAX]; j++)
			for (int k = -1; k < p->n[R_TOTAL]; k++) {
				const struct cand *n = i < 0 ? &none : &p->c[R_NET][i];
				const struct cand *t = j < 0 ? &none : &p->c[R_TAX][j];
				const struct cand *g = k < 0 ? &none : &p->c[R_TOTAL][k];
				double s = n->score + t->score + g->score;
				if (i >= 0 && j >= 0 && k >= 0 && fabs(n->v + t->v - g->v) < 0.011)
					s += CONSISTENT;
				else if (i >= 0 && k >= 0 && fabs(g->v) + 0.005 < fabs(n->v))
					s -= 0.5; /* a total smaller than its net */
				if (s > best + 1e-9) {
					best = s;
					bn = n, bt = t, bg = g;
				}
			}
	bool consistent = bn->score > 0 && bt->score > 0 && bg->score > 0 && fabs(bn->v + bt->v - bg->v) < 0.011;
	double conf = consistent ? 0.95 : 0.7;
	if (bn->score > 0)
		reader_offer(&r->net, NULL, bn->v, MIN(1.0, conf * MIN(bn->score, 1.0) + (consistent ? 0.05 : 0)),
		             bn->cell);
	if (bt->score > 0)
		reader_offer(&r->tax, NULL, bt->v, MIN(1.0, conf * MIN(bt->score, 1.0) + (consistent ? 0.05 : 0)),
		             bt->cell);
	if (bg->score > 0)
		reader_offer(&r->total, NULL, bg->v, MIN(1.0, conf * MIN(bg->score, 1.0) + (consistent ? 0.05 : 0)),
		             bg->cell);
	/* Two of the three give the third. */
	if (r->net.set && r->total.set && !r->tax.set && fabs(r->total.number) >= fabs(r->net.number))
		reader_offer(&r->tax, NULL, round((r->total.number - r->net.number) * 100) / 100, 0.5, r->total.cell);
	else if (r->tax.set && r->total.set && !r->net.set)
		reader_offer(&r->net, NULL, round((r->total.number - r->tax.number) * 100) / 100, 0.5, r->total.cell);
	else if (r->net.set && r->tax.set && !r->total.set)
		reader_offer(&r->total, NULL, round((r->net.number + r->tax.number) * 100) / 100, 0.5, r->net.cell);
}

void totals_read(const struct layout *lay, struct reader_invoice *r)
{
	struct pool *p = g_new0(struct pool, 1);
	read_rows(lay, p);
	if (p->n_lines > 0) {
		double tax = 0, base = 0;
		for (size_t i = 0; i < p->n_lines; i++)
			tax += p->lines[i].tax, base += p->bases[i];
		add_cand(p, R_TAX, round(tax * 100) / 100, 0.9, p->line_cell);
		if (!isnan(base))
			add_cand(p, R_NET, round(base * 100) / 100, 0.6, p->line_cell);
		memcpy(r->tax_lines, p->lines, sizeof p->lines);
		r->n_tax_lines = p->n_lines;
	}
	if (p->n[R_TAX] == 0 || p->exempt)
		add_cand(p, R_TAX, 0, p->exempt ? 0.4 : 0.1, NULL);
	choose(p, r);
	if (r->credit_note) {
		struct reader_value *v[] = {&r->net, &r->tax, &r->total};
		for (size_t i = 0; i < G_N_ELEMENTS(v); i++)
			v[i]->number = fabs(v[i]->number);
		for (size_t i = 0; i < r->n_tax_lines; i++)
			r->tax_lines[i].tax = fabs(r->tax_lines[i].tax);
	}
	g_free(p);
}
