/* bench_extract: a whole extraction, with and without the speed-ups (see
 * bench_extract.h).
 *
 * Each repetition runs the plain extraction first (it starts from an empty
 * cache), then an earlier, shorter document (as a process that has already
 * answered one: the fixed start of the prompt is then in the KV cache), then
 * the measured extraction of the same page with the speed-ups. Both read the
 * same page with the same model and threads, in the same minute. */
#include "runtime/bench_extract.h"

#include <glib.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runtime/bench_ref.h"
#include "runtime/kernels.h"
#include "runtime/runtime.h"

#define BENCH_EXTRACT_MAX_PAGE 20000 /* tokens */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint32_t next_rand(uint32_t *s)
{
	*s = *s * 1664525u + 1013904223u;
	return *s >> 8;
}

static const char *pick(uint32_t *s, const char *const *list, size_t n)
{
	return list[next_rand(s) % n];
}

#define PICK(s, list) pick(s, list, sizeof(list) / sizeof(list[0]))

static const char *const suppliers[] = {"Nordlicht Maschinenbau GmbH", "Atelier Bellecour SARL",
                                        "Vandenberg Installatie B.V.", "Kowalski Logistyka Sp. z o.o.",
                                        "Harbour & Finch Supplies Ltd"};
static const char *const streets[] = {"Hafenstrasse 112, 20457 Hamburg", "12 rue de la Charite, 69002 Lyon",
                                      "Keizersgracht 391, 1016 EJ Amsterdam", "ul. Prosta 51, 00-838 Warszawa",
                                      "45 Wharf Road, Leeds LS1 4AP"};
static const char *const items[] = {"Hydraulic pump HP-2210, 24 V, with flange",
                                    "Stainless hex bolt M12 x 80, DIN 933",
                                    "Service technician, hourly rate",
                                    "Cable harness CH-7 (2.5 m), shielded",
                                    "Bearing housing BH-40, cast iron",
                                    "Pallet transport Hamburg - Lyon",
                                    "Control valve CV-15, PN 16",
                                    "Maintenance kit for compressor K-300",
                                    "Safety gloves, size 9, pack of 12",
                                    "Calibration certificate, ISO 17025"};

/* One invoice page of at least want tokens (as far as a page can hold). */
static enum rterror make_page(struct rt_model *m, uint32_t seed, int want, GString *page, int32_t *ret_tokens,
                              char **reterr)
{
	uint32_t s = seed;
	int sup = (int)(next_rand(&s) % 5);
	g_string_printf(
	    page,
	    "%s\n%s\nVAT ID: DE%09u    IBAN: DE89 3704 0044 0532 %04u %02u\nPhone +49 40 %07u    "
	    "accounts@example.com\n\nINVOICE\n\nInvoice number: INV-2024-%05u    Invoice date: %02u.03.2024    "
	    "Due date: %02u.04.2024\nCustomer number: C-%06u    Order reference: PO-%07u\n\nBill to:\n"
	    "Meridian Logistics Ltd\n%s\n\nPos  Description                                   Qty   Unit price"
	    "      Amount\n",
	    suppliers[sup], streets[sup], next_rand(&s) % 1000000000u, next_rand(&s) % 10000u, next_rand(&s) % 100u,
	    next_rand(&s) % 10000000u, next_rand(&s) % 100000u, 1 + next_rand(&s) % 28, 1 + next_rand(&s) % 28,
	    next_rand(&s) % 1000000u, next_rand(&s) % 10000000u, streets[(sup + 2) % 5]);
	double net = 0;
	int32_t n = 0;
	enum rterror e = RTERROR_OK;
	for (int pos = 1; !e && pos < 400; pos++) {
		unsigned qty = 1 + next_rand(&s) % 24, cents = 150 + next_rand(&s) % 90000;
		double amount = qty * (cents / 100.0);
		net += amount;
		g_string_append_printf(page, "%-4d %-45s %5u %10.2f EUR %12.2f EUR\n", pos, PICK(&s, items), qty,
		                       cents / 100.0, amount);
		if ((e = rt_count_tokens(m, page->str, &n, reterr)) == RTERROR_OK && n >= want - 60) /* totals follow */
			break;
	}
	g_string_append_printf(
	    page,
	    "\nNet amount: %.2f EUR\nVAT 19%%: %.2f EUR\nTotal amount due: %.2f EUR\n\nPayment terms: "
	    "30 days net, 2%% discount within 10 days. Please quote the invoice number with your "
	    "payment.\nThank you for your business.\n",
	    net, net * 0.19, net * 1.19);
	if (!e)
		e = rt_count_tokens(m, page->str, ret_tokens, reterr);
	return e;
}

static char *request_prompt(const struct bench_extract_opts *o, const char *page)
{
	return g_strdup_printf("%s--- page 1 ---\n%s%s", o->head, page, o->tail);
}

static void add_run(struct bench_extract_run *sum, const struct rt_result *r, double seconds)
{
	sum->seconds += seconds;
	sum->prompt_s += r->prompt_ms / 1e3;
	sum->answer_s += r->gen_ms / 1e3;
	sum->prompt_tokens += r->n_prompt;
	sum->reused += r->n_reused;
	sum->answer_tokens += (int32_t)r->n_tokens;
	sum->forced += r->n_forced;
	sum->drafted += r->n_drafted;
	sum->accepted += r->n_accepted;
	sum->passes += r->n_evals;
}

static bool same_answer(const struct rt_result *a, const struct rt_result *b)
{
	if (a->n_tokens != b->n_tokens || a->text_len != b->text_len || memcmp(a->text, b->text, a->text_len) != 0)
		return false;
	for (size_t i = 0; i < a->n_tokens; i++)
		if (a->tokens[i].id != b->tokens[i].id)
			return false;
	return true;
}

static enum rterror timed(struct rt_model *m, const struct rt_request *req, struct rt_result **r, double *secs,
                          char **reterr)
{
	double t0 = now_s();
	enum rterror e = rt_generate(m, req, r, reterr);
	*secs = now_s() - t0;
	return e;
}

/* One repetition: plain, an earlier document, then the same page with the speed-ups. */
static enum rterror one_rep(struct rt_model *m, const struct bench_extract_opts *o, const char *prompt,
                            const char *earlier, struct bench_extract_result *res, char **reterr)
{
	struct rt_request req = {.system = o->system,
	                         .prompt = prompt,
	                         .schema = o->schema,
	                         .max_tokens = o->max_tokens > 0 ? o->max_tokens : 768,
	                         .plain = true};
	struct rt_result *plain = NULL, *first = NULL, *fast = NULL;
	double t_plain = 0, t_first = 0, t_fast = 0;
	enum rterror e = timed(m, &req, &plain, &t_plain, reterr);
	struct rt_request req1 = req;
	req1.prompt = earlier;
	req1.plain = false;
	req1.max_tokens = 1;
	if (!e)
		e = timed(m, &req1, &first, &t_first, reterr);
	req.plain = false;
	if (!e)
		e = timed(m, &req, &fast, &t_fast, reterr);
	if (!e) {
		add_run(&res->plain, plain, t_plain);
		add_run(&res->fast, fast, t_fast);
		res->first_s += t_first;
		res->identical &= same_answer(plain, fast);
	}
	rt_result_free(plain);
	rt_result_free(first);
	rt_result_free(fast);
	return e;
}

static void average(struct bench_extract_run *r, int n)
{
	r->seconds /= n;
	r->prompt_s /= n;
	r->answer_s /= n;
	r->prompt_tokens /= n;
	r->reused /= n;
	r->answer_tokens /= n;
	r->forced /= n;
	r->drafted /= n;
	r->accepted /= n;
	r->passes /= n;
}

enum rterror bench_extract_run(const char *path, const struct bench_extract_opts *o, struct bench_extract_result *ret,
                               char **reterr)
{
	if (!o->system || !o->head || !o->tail || !o->schema)
		return rterror_set(reterr, RTERROR_INVALID, "bench_extract: the request's texts are missing");
	int want = o->page_tokens > 0 ? o->page_tokens : 1500, reps = o->reps > 0 ? o->reps : 1;
	if (want > BENCH_EXTRACT_MAX_PAGE)
		return rterror_set(reterr, RTERROR_INVALID, "bench: a page of at most %d tokens",
		                   BENCH_EXTRACT_MAX_PAGE);
	struct bench_extract_result r;
	memset(&r, 0, sizeof r);
	r.identical = true;
	struct rt_local_options lo = {
	    .n_threads = o->n_threads, .n_ctx = o->n_ctx > 0 ? o->n_ctx : 4096, .chat_template = o->chat_template};
	struct rt_model *m = NULL;
	GString *page = g_string_new(NULL), *other = g_string_new(NULL);
	char *prompt = NULL, *earlier = NULL;
	int32_t other_tokens = 0;
	enum rterror e = rt_model_open_local(path, &lo, &m, reterr);
	if (!e)
		e = make_page(m, 1, want, page, &r.page_tokens, reterr);
	if (!e)
		e = make_page(m, 2, 200, other, &other_tokens, reterr);
	if (!e) {
		prompt = request_prompt(o, page->str);
		earlier = request_prompt(o, other->str);
	}
	for (int i = 0; !e && i < reps; i++)
		e = one_rep(m, o, prompt, earlier, &r, reterr);
	if (!e) {
		struct rt_model_info info;
		rt_model_describe(m, &info);
		snprintf(r.arch, sizeof r.arch, "%s", info.arch);
		r.file_bytes = info.file_bytes;
		average(&r.plain, reps);
		average(&r.fast, reps);
		r.first_s /= reps;
		bench_cpu_name(r.cpu, sizeof r.cpu);
		r.kernels = kernels_get()->name;
		long cores = sysconf(_SC_NPROCESSORS_ONLN);
		r.n_threads = o->n_threads > 0 ? o->n_threads : (cores > 0 ? (int)cores : 1);
		*ret = r;
	}
	g_free(prompt);
	g_free(earlier);
	g_string_free(page, TRUE);
	g_string_free(other, TRUE);
	rt_model_close(m);
	return e;
}

void bench_extract_print(FILE *out, const struct bench_extract_result *r)
{
	const struct bench_extract_run *p = &r->plain, *f = &r->fast;
	fprintf(out, "model: %s, %.2f GB; processor: %s; threads %d; kernels %s\n", r->arch,
	        (double)r->file_bytes * 1e-9, r->cpu, r->n_threads, r->kernels);
	fprintf(out, "extraction of a generated invoice page of %d tokens; prompt %d tokens, answer %d tokens\n",
	        r->page_tokens, f->prompt_tokens, f->answer_tokens);
	fprintf(out, "%-34s %12s %12s\n", "", "plain", "speed-ups");
	fprintf(out, "%-34s %12.2f %12.2f   %.2fx faster\n", "total seconds", p->seconds, f->seconds,
	        f->seconds > 0 ? p->seconds / f->seconds : 0);
	fprintf(out, "%-34s %12.2f %12.2f\n", "  prompt seconds", p->prompt_s, f->prompt_s);
	fprintf(out, "%-34s %12.2f %12.2f\n", "  answer seconds", p->answer_s, f->answer_s);
	fprintf(out, "%-34s %12d %12d\n", "prompt tokens evaluated", p->prompt_tokens - p->reused,
	        f->prompt_tokens - f->reused);
	fprintf(out, "%-34s %12d %12d\n", "  fixed start from the KV cache", p->reused, f->reused);
	fprintf(out, "%-34s %12d %12d\n", "answer tokens", p->answer_tokens, f->answer_tokens);
	fprintf(out, "%-34s %12d %12d\n", "  forced by the schema", p->forced, f->forced);
	fprintf(out, "%-34s %12s %5d of %d\n", "  drafted from the page, accepted", "-", f->accepted, f->drafted);
	fprintf(out, "%-34s %12d %12d\n", "forward passes for the answer", p->passes, f->passes);
	fprintf(out, "the same answer, token for token: %s\n", r->identical ? "yes" : "NO");
	fprintf(out, "the fixed start is evaluated once per process: a first, shorter document took %.2f s\n",
	        r->first_s);
}
