/* test_bench: the benchmarks' own machinery with real parts. The reference
 * engine's llama-bench from ../shared/tools runs on a real model and gives
 * figures and the CPU variant it loaded, also when limited to the variant of a
 * forced kernel set; a missing tool is reported, not guessed. The extraction
 * benchmark runs both ways on stories260K and finds the same answer. Skips the
 * parts whose files are absent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/bench.h"
#include "runtime/bench_extract.h"
#include "runtime/bench_ref.h"
#include "runtime/kernels.h"
#include "tests/runtime/tap.h"

static void test_reference(const char *shared, const char *model)
{
	char tool[4096];
	snprintf(tool, sizeof tool, "%s/tools/llama.cpp/llama-bench", shared);
	if (access(tool, X_OK) != 0) {
		tap_diag("no llama-bench in %s/tools: reference checks skipped", shared);
		return;
	}
	char *found = bench_ref_find(tool, model);
	tap_ok(found && strcmp(found, tool) == 0, "/bench/reference/given-path", "%s", found);
	free(found);
	tap_ok(bench_ref_find("/nonexistent/llama-bench", model) == NULL, "/bench/reference/missing-given-path", NULL);

	struct bench_ref_result r;
	char *err = NULL;
	enum rterror e = bench_ref_run(tool, model, 1, 16, 4, 1, NULL, &r, &err);
	tap_ok(e == RTERROR_OK && r.pp_tps > 0 && r.tg_tps > 0 && r.variant[0], "/bench/reference/runs", "%d %s", e,
	       err);
	free(err);
	err = NULL;
	if (kernels_by_name("avx2")) {
		e = bench_ref_run(tool, model, 1, 16, 4, 1, "avx2", &r, &err);
		tap_ok(e == RTERROR_OK && strcmp(r.variant, "haswell") == 0 && r.pp_tps > 0,
		       "/bench/reference/forced-variant", "%d %s %s", e, r.variant, err);
		free(err);
		err = NULL;
	}
	e = bench_ref_run(tool, "/nonexistent/model.gguf", 1, 16, 4, 1, NULL, &r, &err);
	tap_ok(e != RTERROR_OK && err && strstr(err, "failed"), "/bench/reference/bad-model-says-why", "%s", err);
	free(err);

	/* the speed benchmark prints both, with the ratio and the processor */
	struct bench_opts o;
	bench_opts_default(&o);
	o.n_threads = 1;
	o.n_prompt = 16;
	o.n_gen = 4;
	o.bandwidth = false;
	o.reference = tool;
	struct bench_result br;
	err = NULL;
	e = bench_run(model, &o, &br, &err);
	char out[4096] = "";
	FILE *f = fmemopen(out, sizeof out - 1, "w");
	if (!e && f)
		bench_print(f, &br);
	if (f)
		fclose(f);
	tap_ok(!e && br.ref_ran && strstr(out, "llama.cpp") && strstr(out, "x\n") && strstr(out, br.cpu),
	       "/bench/reference/side-by-side", "%s %s", out, err);
	free(err);
}

static void test_alone(const char *model)
{
	struct bench_opts o;
	bench_opts_default(&o);
	o.n_threads = 1;
	o.n_prompt = 16;
	o.n_gen = 4;
	o.bandwidth = false;
	o.no_reference = true;
	struct bench_result br;
	char *err = NULL;
	enum rterror e = bench_run(model, &o, &br, &err);
	char out[4096] = "";
	FILE *f = fmemopen(out, sizeof out - 1, "w");
	if (!e && f)
		bench_print(f, &br);
	if (f)
		fclose(f);
	tap_ok(!e && !br.ref_ran && br.pp_tps > 0 && strstr(out, "Quire's figures only") && !strstr(out, "llama.cpp"),
	       "/bench/alone", "%s %s", out, err);
	free(err);
}

static void test_extract(const char *model)
{
	struct bench_extract_opts o = {
	    .n_threads = 2,
	    .n_ctx = 1024,
	    .page_tokens = 300,
	    .max_tokens = 64,
	    .system = "You read invoices. Fields: number, total, supplier.",
	    .head = "Return the fields of this document as JSON.\n\nDocument text:\n",
	    .tail = "\nReturn the fields as JSON.",
	    .schema = "{\"type\":\"object\",\"properties\":{\"number\":{\"type\":[\"string\",\"null\"],"
	              "\"maxLength\":20},\"total\":{\"type\":[\"number\",\"null\"]},\"supplier\":{\"type\":"
	              "[\"string\",\"null\"],\"maxLength\":40}},\"required\":[\"number\",\"total\",\"supplier\"]}"};
	struct bench_extract_result r;
	char *err = NULL;
	enum rterror e = bench_extract_run(model, &o, &r, &err);
	tap_ok(e == RTERROR_OK && r.identical && r.page_tokens >= 300 && r.page_tokens < 1000 &&
	           r.fast.passes < r.plain.passes && r.fast.forced > 0 && r.plain.reused == 0 && r.fast.reused > 0,
	       "/bench/extract/both-ways", "%d %s: page %d, passes %d vs %d, reused %d", e, err, r.page_tokens,
	       r.fast.passes, r.plain.passes, r.fast.reused);
	free(err);
	o.page_tokens = 30000;
	err = NULL;
	e = bench_extract_run(model, &o, &r, &err);
	tap_ok(e == RTERROR_INVALID && err, "/bench/extract/page-limit", "%d", e);
	free(err);
}

int main(void)
{
	const char *shared = getenv("QUIRE_SHARED_DIR");
	char model[4096];
	snprintf(model, sizeof model, "%s/models/stories260K.gguf", shared ? shared : "");
	if (!shared || access(model, R_OK) != 0)
		return tap_skip_all("../shared not present");
	test_alone(model);
	test_reference(shared, model);
	test_extract(model);
	return tap_done();
}
