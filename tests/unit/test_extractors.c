/* Unit tests of extractors/: number and date forms, invoice rules, the sandboxed parser on real PDFs,
 * and the model's answers checked against the document (an OpenAI-compatible endpoint scripted on
 * 127.0.0.1 plays the model). */
#include <arpa/inet.h>
#include <cairo-pdf.h>
#include <glib.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/json.h"
#include "extractors/doctype.h"
#include "extractors/extract.h"
#include "extractors/layout.h"
#include "extractors/modelfields.h"
#include "extractors/pdftext.h"
#include "extractors/rules.h"
#include "extractors/sandbox.h"

static const struct sandbox_limits limits = {.timeout_s = 30, .memory_bytes = (size_t)2048 << 20, .max_pages = 50};

static void test_amounts(void)
{
	static const struct {
		const char *text;
		double want;
	} cases[] = {{"1,234.56 EUR", 1234.56}, {"1.234,56 €", 1234.56}, {"€ 12", 12},      {"12,5", 12.5},
	             {"-3.00", -3},            {"1 234,56", 1234.56},   {"1'234.50", 1234.5}, {"USD 99.99", 99.99}};
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		double v = 0;
		g_assert_true(rules_parse_amount(cases[i].text, &v));
		g_assert_cmpfloat_with_epsilon(v, cases[i].want, 1e-9);
	}
	double v;
	g_assert_false(rules_parse_amount("no amount here", &v));
}

static void test_dates(void)
{
	static const struct {
		const char *text, *want;
	} cases[] = {{"2026-03-14", "2026-03-14"}, {"14.03.2026", "2026-03-14"},     {"14/03/2026", "2026-03-14"},
	             {"14 March 2026", "2026-03-14"}, {"March 14, 2026", "2026-03-14"}, {"14. März 2026", "2026-03-14"},
	             {"3 févr. 2026", "2026-02-03"}};
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		char out[11] = "";
		g_assert_true(rules_parse_date(cases[i].text, out));
		g_assert_cmpstr(out, ==, cases[i].want);
	}
	char out[11];
	g_assert_false(rules_parse_date("31.02.2026", out));
	g_assert_false(rules_parse_date("nothing", out));
}

static const char *field_str(const struct json *r, const char *name)
{
	return json_get_string(json_get(json_get(r, "fields"), name), "value");
}

static double field_num(const struct json *r, const char *name)
{
	double v = -1;
	g_assert_true(json_get_number(json_get(json_get(r, "fields"), name), "value", &v));
	return v;
}

static void test_rules_german_text(void)
{
	struct pdftext_page page = {
		.text = "Müller Bürobedarf AG\nRechnung\nRechnungsnummer: RE-77/2026\nRechnungsdatum: 02.01.2026\n"
		        "Fällig am: 16.01.2026\nNettobetrag 1.000,00 EUR\nMwSt 19% 190,00 EUR\nGesamtbetrag 1.190,00 EUR",
		.method = "text"};
	struct pdftext_doc doc = {.n_pages = 1, .total_pages = 1, .pages = &page};
	struct json *r = NULL;
	g_assert_cmpint(rules_invoice(&doc, &r, NULL), ==, QERR_OK);
	g_assert_cmpstr(field_str(r, "supplier_name"), ==, "Müller Bürobedarf AG");
	g_assert_cmpstr(field_str(r, "invoice_number"), ==, "RE-77/2026");
	g_assert_cmpstr(field_str(r, "issue_date"), ==, "2026-01-02");
	g_assert_cmpstr(field_str(r, "due_date"), ==, "2026-01-16");
	g_assert_cmpfloat(field_num(r, "net_amount"), ==, 1000.0);
	g_assert_cmpfloat(field_num(r, "tax_amount"), ==, 190.0);
	g_assert_cmpfloat(field_num(r, "total_amount"), ==, 1190.0);
	g_assert_cmpstr(field_str(r, "currency"), ==, "EUR");
	json_free(r);
}

static GBytes *make_pdf(const char *const *lines, int n_pages)
{
	g_autofree char *dir = g_dir_make_tmp("quire-pdf-XXXXXX", NULL);
	g_autofree char *path = g_build_filename(dir, "t.pdf", NULL);
	cairo_surface_t *s = cairo_pdf_surface_create(path, 595, 842);
	cairo_t *cr = cairo_create(s);
	cairo_set_font_size(cr, 11);
	for (int p = 0; p < n_pages; p++) {
		for (int i = 0; lines[i]; i++) {
			cairo_move_to(cr, 50, 60 + 16 * i);
			cairo_show_text(cr, lines[i]);
		}
		cairo_show_page(cr);
	}
	cairo_destroy(cr);
	cairo_surface_destroy(s);
	gchar *data = NULL;
	gsize len = 0;
	g_assert_true(g_file_get_contents(path, &data, &len, NULL));
	return g_bytes_new_take(data, len);
}

static void test_sandbox_extracts_pages(void)
{
	const char *lines[] = {"Invoice number: A-17", "Total: 99.50 EUR", "Ελληνικά Кириллица àéîõü", NULL};
	g_autoptr(GBytes) pdf = make_pdf(lines, 3);
	gsize len = 0;
	const void *data = g_bytes_get_data(pdf, &len);
	struct pdftext_doc *doc = NULL;
	g_autofree char *err = NULL;
	g_assert_cmpint(sandbox_extract(data, len, NULL, &limits, &doc, &err), ==, QERR_OK);
	g_assert_cmpint(doc->n_pages, ==, 3);
	g_assert_nonnull(strstr(doc->pages[2].text, "Invoice number: A-17"));
	g_assert_nonnull(strstr(doc->pages[0].text, "Кириллица"));
	g_assert_cmpstr(doc->pages[1].method, ==, "text");
	g_assert_cmpfloat_with_epsilon(doc->pages[0].width, 595, 0.5);
	pdftext_doc_free(doc);
	/* the page cap applies */
	struct sandbox_limits two = limits;
	two.max_pages = 2;
	g_assert_cmpint(sandbox_extract(data, len, NULL, &two, &doc, &err), ==, QERR_TOO_LARGE);
	g_assert_nonnull(strstr(err, "3 pages"));
}

static void test_sandbox_bad_input(void)
{
	const char *lines[] = {"Total: 1.00", NULL};
	g_autoptr(GBytes) pdf = make_pdf(lines, 1);
	gsize len = 0;
	const char *data = g_bytes_get_data(pdf, &len);
	struct pdftext_doc *doc = NULL;
	g_autofree char *err = NULL;
	g_assert_cmpint(sandbox_extract("", 0, NULL, &limits, &doc, &err), ==, QERR_EMPTY);
	g_clear_pointer(&err, g_free);
	g_assert_cmpint(sandbox_extract("hello world", 11, NULL, &limits, &doc, &err), ==, QERR_NOT_PDF);
	g_clear_pointer(&err, g_free);
	/* truncated: only the header and part of the first object remain */
	enum qerr e = sandbox_extract(data, 60, NULL, &limits, &doc, &err);
	g_assert_cmpint(e, ==, QERR_PARSE_FAILED);
	g_assert_nonnull(err);
	g_clear_pointer(&err, g_free);
#ifndef __SANITIZE_ADDRESS__
	/* a tiny memory limit makes the child fail, not the caller (no address-space limit under ASan) */
	struct sandbox_limits tiny = limits;
	tiny.memory_bytes = 16u << 20;
	e = sandbox_extract(data, len, NULL, &tiny, &doc, &err);
	g_assert_cmpint(e, ==, QERR_PARSE_FAILED);
	g_assert_nonnull(err);
#endif
}

static void test_extract_document(void)
{
	const char *lines[] = {"Acme Paper Ltd", "INVOICE", "Invoice No: 2026-0007", "Date: 14 March 2026",
	                       "Due date: 13 April 2026", "Subtotal: 100.00 GBP", "VAT 20%: 20.00 GBP", "Total: 120.00 GBP",
	                       NULL};
	g_autoptr(GBytes) pdf = make_pdf(lines, 1);
	gsize len = 0;
	const void *data = g_bytes_get_data(pdf, &len);
	struct extract_options opt = {.limits = limits};
	struct json *r = NULL;
	g_assert_cmpint(extract_document(data, len, &opt, &r, NULL, NULL), ==, QERR_OK);
	g_assert_cmpstr(field_str(r, "supplier_name"), ==, "Acme Paper Ltd");
	g_assert_cmpstr(field_str(r, "invoice_number"), ==, "2026-0007");
	g_assert_cmpstr(field_str(r, "issue_date"), ==, "2026-03-14");
	g_assert_cmpstr(field_str(r, "due_date"), ==, "2026-04-13");
	g_assert_cmpfloat(field_num(r, "total_amount"), ==, 120.0);
	g_assert_cmpfloat(field_num(r, "net_amount"), ==, 100.0);
	g_assert_cmpfloat(field_num(r, "tax_amount"), ==, 20.0);
	g_assert_cmpstr(field_str(r, "currency"), ==, "GBP");
	json_free(r);
}

static char *shared_model(const char *name)
{
	const char *dir = g_getenv("QUIRE_SHARED_DIR");
	char *path = dir ? g_build_filename(dir, "models", name, NULL) : NULL;
	if (!path || !g_file_test(path, G_FILE_TEST_EXISTS)) {
		g_free(path);
		return NULL;
	}
	return path;
}

static void test_model_fields(void)
{
	g_autofree char *path = shared_model("synth-qwen2-Q4_K_M.gguf");
	if (!path) {
		g_test_skip("../shared not present: no model to run");
		return;
	}
	struct modelfields_options mo = {.model_path = path, .context = 512, .threads = 1, .time_limit_s = 60};
	struct modelfields *mf = NULL;
	g_autofree char *err = NULL;
	g_assert_cmpint(modelfields_open(&mo, &mf, &err), ==, QERR_OK);
	const char *lines[] = {"Acme Paper Ltd", "Invoice No: 2026-0007", "Date: 14 March 2026", "Total: 120.00 GBP",
	                       NULL};
	g_autoptr(GBytes) pdf = make_pdf(lines, 2);
	gsize len = 0;
	const void *data = g_bytes_get_data(pdf, &len);
	struct extract_options opt = {.limits = limits, .model = mf, .doc_type = "invoice"};
	for (int run = 0; run < 2; run++) { /* the second run reuses the system prompt's KV cache */
		struct json *r = NULL;
		g_assert_cmpint(extract_document(data, len, &opt, &r, NULL, &err), ==, QERR_OK);
		g_assert_cmpstr(json_get_string(r, "method"), ==, "model");
		static const char *const names[] = {"supplier_name", "invoice_number", "issue_date", "due_date",
		                                    "currency", "net_amount", "tax_amount", "total_amount"};
		for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
			const struct json *f = json_get(json_get(r, "fields"), names[i]);
			g_assert_nonnull(f);
			const struct json *v = json_get(f, "value");
			g_assert_nonnull(v);
			double conf = -1;
			g_assert_true(json_get_number(f, "confidence", &conf));
			g_assert_cmpfloat(conf, >=, 0);
			g_assert_cmpfloat(conf, <=, 1);
			if (json_is_null(v))
				continue;
			/* a value is either found on a page or flagged as unsupported */
			const struct json *sup = json_get(f, "supported");
			g_assert_nonnull(sup);
			double page = 0;
			g_assert_true(json_get_number(f, "page", &page) || json_is_null(json_get(f, "page")));
			if (i >= 5)
				g_assert_null(json_string_value(v)); /* amounts are numbers */
			if (i == 4)
				g_assert_nonnull(strstr("EUR USD GBP CHF SEK NOK DKK PLN CZK JPY CAD AUD", json_string_value(v)));
		}
		json_free(r);
	}
	modelfields_close(mf);
}

/* A chat-completions endpoint that answers every request with one canned model answer. */
struct fake_endpoint {
	int fd;
	int port;
	GThread *thread;
	gint stop;
	char *reply; /* the whole HTTP response */
	gint requests;
};

static void fake_read_request(int c)
{
	GString *in = g_string_new(NULL);
	long want = -1;
	bool continued = false;
	char buf[8192];
	for (;;) {
		struct pollfd p = {c, POLLIN, 0};
		if (poll(&p, 1, 5000) <= 0)
			break;
		ssize_t n = read(c, buf, sizeof buf);
		if (n <= 0)
			break;
		g_string_append_len(in, buf, n);
		const char *end = strstr(in->str, "\r\n\r\n");
		if (!end)
			continue;
		if (want < 0) {
			const char *cl = strcasestr(in->str, "Content-Length:");
			want = cl ? g_ascii_strtoll(cl + 15, NULL, 10) : 0;
		}
		if (!continued && strcasestr(in->str, "Expect: 100-continue")) {
			continued = true;
			static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
			if (write(c, cont, sizeof cont - 1) < 0)
				break;
		}
		if ((long)(in->len - (size_t)(end + 4 - in->str)) >= want)
			break;
	}
	g_string_free(in, TRUE);
}

static gpointer fake_serve(gpointer data)
{
	struct fake_endpoint *f = data;
	while (!g_atomic_int_get(&f->stop)) {
		struct pollfd p = {f->fd, POLLIN, 0};
		if (poll(&p, 1, 50) <= 0)
			continue;
		int c = accept(f->fd, NULL, NULL);
		if (c < 0)
			continue;
		fake_read_request(c);
		g_atomic_int_inc(&f->requests);
		if (write(c, f->reply, strlen(f->reply)) < 0)
			g_printerr("fake endpoint: write failed\n");
		close(c);
	}
	return NULL;
}

/* Serves answer (the model's JSON text) as the content of every chat completion. */
static void fake_start(struct fake_endpoint *f, const char *answer)
{
	struct json *body = json_new_object();
	struct json *choice = json_append(json_add_item(body, "choices", json_new_array()), json_new_object());
	struct json *msg = json_add_item(choice, "message", json_new_object());
	json_add_string(msg, "role", "assistant");
	json_add_string(msg, "content", answer);
	json_add_string(choice, "finish_reason", "stop");
	g_autofree char *text = json_format(body, false);
	json_free(body);
	f->reply = g_strdup_printf("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
	                           "Connection: close\r\n\r\n%s",
	                           strlen(text), text);
	f->fd = socket(AF_INET, SOCK_STREAM, 0);
	g_assert_cmpint(f->fd, >=, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof a;
	g_assert_cmpint(bind(f->fd, (struct sockaddr *)&a, sizeof a), ==, 0);
	g_assert_cmpint(listen(f->fd, 4), ==, 0);
	g_assert_cmpint(getsockname(f->fd, (struct sockaddr *)&a, &alen), ==, 0);
	f->port = ntohs(a.sin_port);
	f->thread = g_thread_new("fake-endpoint", fake_serve, f);
}

static void fake_stop(struct fake_endpoint *f)
{
	g_atomic_int_set(&f->stop, 1);
	g_thread_join(f->thread);
	close(f->fd);
	g_free(f->reply);
}

/* A member's JSON text ("true", "false", ...), for the tests' comparisons; "" when absent. */
static const char *literal(const struct json *obj, const char *key)
{
	static char out[64];
	const struct json *v = json_get(obj, key);
	g_autofree char *t = v ? json_format(v, false) : NULL;
	g_strlcpy(out, t ? t : "", sizeof out);
	return out;
}

/* The model's answer checked against the page: a value the document holds is supported, with its
 * page and box; one it does not (an invented invoice number) is flagged and its confidence cut. */
static void test_model_unsupported_value(void)
{
	static const char answer[] =
	    "{\"supplier_name\":\"Acme Paper Ltd\",\"supplier_address\":null,\"supplier_vat_id\":null,"
	    "\"iban\":null,\"invoice_number\":\"INV-4711-X\",\"issue_date\":\"2026-03-14\",\"due_date\":null,"
	    "\"currency\":\"GBP\",\"net_amount\":null,\"tax_amount\":null,\"total_amount\":120,"
	    "\"buyer_name\":null,\"tax_lines\":[],\"line_items\":[]}";
	struct fake_endpoint f = {0};
	fake_start(&f, answer);
	g_autofree char *url = g_strdup_printf("http://127.0.0.1:%d", f.port);
	struct modelfields_options mo = {.endpoint = url, .context = 4096, .time_limit_s = 20};
	struct modelfields *mf = NULL;
	g_autofree char *err = NULL;
	g_assert_cmpint(modelfields_open(&mo, &mf, &err), ==, QERR_OK);
	const char *lines[] = {"Acme Paper Ltd", "Invoice No: 2026-0007", "Date: 14 March 2026", "Total: 120.00 GBP",
	                       NULL};
	g_autoptr(GBytes) pdf = make_pdf(lines, 1);
	gsize len = 0;
	const void *data = g_bytes_get_data(pdf, &len);
	struct pdftext_doc *doc = NULL;
	g_assert_cmpint(sandbox_extract(data, len, NULL, &limits, &doc, &err), ==, QERR_OK);
	struct layout *lay = layout_build(doc);
	const struct doctypes *types = NULL;
	g_assert_cmpint(doctypes_shared(NULL, &types, &err), ==, QERR_OK);
	struct json *r = NULL;
	g_assert_cmpint(modelfields_extract(mf, doctypes_find(types, "invoice"), doc, lay, &r, &err), ==, QERR_OK);
	g_assert_cmpint(g_atomic_int_get(&f.requests), >=, 1);
	const struct json *fields = json_get(r, "fields");
	/* present in the text: supported, with the page and the box it was found in */
	const struct json *total = json_get(fields, "total_amount");
	g_assert_cmpstr(literal(total, "supported"), ==, "true");
	double page = 0, conf = 0, invented_conf = 1;
	g_assert_true(json_get_number(total, "page", &page));
	g_assert_cmpfloat(page, ==, 1);
	g_assert_cmpuint(json_array_size(json_get(total, "box")), ==, 4);
	g_assert_true(json_get_number(total, "confidence", &conf));
	g_assert_cmpstr(literal(json_get(fields, "issue_date"), "supported"), ==, "true"); /* written 14 March 2026 */
	/* nowhere in the text: unsupported, no page, its confidence a quarter of a supported one's */
	const struct json *invented = json_get(fields, "invoice_number");
	g_assert_cmpstr(json_get_string(invented, "value"), ==, "INV-4711-X");
	g_assert_cmpstr(literal(invented, "supported"), ==, "false");
	g_assert_true(json_is_null(json_get(invented, "page")));
	g_assert_null(json_get(invented, "box"));
	g_assert_true(json_get_number(invented, "confidence", &invented_conf));
	g_assert_cmpfloat(conf, >, 0);
	g_assert_cmpfloat_with_epsilon(invented_conf, conf * 0.25, 0.001);
	json_free(r);
	layout_free(lay);
	pdftext_doc_free(doc);
	modelfields_close(mf);
	fake_stop(&f);
}

static void test_model_bad_file(void)
{
	g_autofree char *dir = g_dir_make_tmp("quire-model-XXXXXX", NULL);
	g_autofree char *path = g_build_filename(dir, "broken.gguf", NULL);
	g_assert_true(g_file_set_contents(path, "GGUF\x03\x00\x00\x00garbage", 15, NULL));
	struct modelfields_options mo = {.model_path = path, .context = 512};
	struct modelfields *mf = NULL;
	g_autofree char *err = NULL;
	g_assert_cmpint(modelfields_open(&mo, &mf, &err), ==, QERR_MODEL);
	g_assert_nonnull(strstr(err, path));
	g_assert_null(mf);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/rules/amounts", test_amounts);
	g_test_add_func("/rules/dates", test_dates);
	g_test_add_func("/rules/german-invoice-text", test_rules_german_text);
	g_test_add_func("/sandbox/extracts-pages", test_sandbox_extracts_pages);
	g_test_add_func("/sandbox/bad-input", test_sandbox_bad_input);
	g_test_add_func("/extract/invoice-document", test_extract_document);
	g_test_add_func("/modelfields/constrained-answer", test_model_fields);
	g_test_add_func("/modelfields/bad-file", test_model_bad_file);
	g_test_add_func("/modelfields/unsupported-value", test_model_unsupported_value);
	return g_test_run();
}
