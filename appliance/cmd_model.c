/* cmd_model: quire model info | bench | run. */
#include "appliance/commands.h"

#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/config.h"
#include "extractors/doctype.h"
#include "extractors/modelfields.h"
#include "runtime/bench.h"
#include "runtime/bench_extract.h"
#include "runtime/runtime.h"

static int rt_fail(const char *what, enum rterror e, char *err)
{
	int rc = cmd_fail(what, err ? err : rterror_str(e));
	free(err);
	return rc;
}

static void print_size(const char *label, uint64_t bytes)
{
	if (bytes >= 1000000000)
		printf("%s%.2f GB", label, (double)bytes / 1e9);
	else
		printf("%s%.2f MB", label, (double)bytes / 1e6);
}

/* SHA-256 of a file as hex (g_free), or NULL when it cannot be read. */
static char *file_sha256(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	GChecksum *ck = g_checksum_new(G_CHECKSUM_SHA256);
	g_autofree guchar *buf = g_malloc(1 << 20);
	size_t n;
	while ((n = fread(buf, 1, 1 << 20, f)) > 0)
		g_checksum_update(ck, buf, (gssize)n);
	char *hex = ferror(f) ? NULL : g_strdup(g_checksum_get_string(ck));
	g_checksum_free(ck);
	fclose(f);
	return hex;
}

static void print_adapters(const struct rt_model_info *i)
{
	if (i->n_adapters == 0) {
		printf("adapters:      none\n");
		return;
	}
	printf("adapters:      %u (LoRA, applied at load)\n", i->n_adapters);
	for (uint32_t k = 0; k < i->n_adapters; k++) {
		const struct rt_adapter_info *a = &i->adapters[k];
		g_autofree char *sha = file_sha256(a->path);
		printf("  %s (", a->path);
		print_size("", a->bytes);
		printf(")\n    sha256 %s\n", sha ? sha : "(unreadable)");
		if (a->alpha > 0)
			printf("    alpha %g, rank %d, scale %g (factor %g), %d weight matrices\n", (double)a->alpha, a->rank,
			       (double)a->scale, (double)(a->scale * a->alpha / (float)a->rank), a->n_weights);
		else
			printf("    no alpha, rank %d, scale %g (factor %g), %d weight matrices\n", a->rank, (double)a->scale,
			       (double)a->scale, a->n_weights);
	}
}

/* The adapters to apply to file: --adapter options if any, else model.adapters
 * when file is the configured model.path. g_free the result. */
static char *adapters_for(const char *file, char **opt, const struct config *cfg)
{
	if (opt && opt[0])
		return g_strjoinv(",", opt);
	if (file && cfg->model_path[0] && strcmp(file, cfg->model_path) == 0)
		return g_strdup(cfg->model_adapters);
	return NULL;
}

static int model_info(int argc, char **argv, struct config *cfg)
{
	char *tmpl = NULL;
	g_auto(GStrv) adapter = NULL;
	GOptionEntry entries[] = {
		{"template", 0, 0, G_OPTION_ARG_STRING, &tmpl, "Chat template to use", "NAME"},
		{"adapter", 0, 0, G_OPTION_ARG_STRING_ARRAY, &adapter,
		 "LoRA adapter to apply, FILE or FILE@SCALE (repeatable; default: model.adapters for model.path)",
		 "FILE[@SCALE]"},
		{NULL, 0, 0, 0, NULL, NULL, NULL}};
	if (cmd_parse(&argc, &argv, "FILE", "Describe a GGUF model: architecture, sizes, tensor types, template.",
	              (const struct _GOptionEntry *)entries))
		return 2;
	if (argc != 2)
		return cmd_fail("model info", "give one GGUF file");
	g_autofree char *adapters = adapters_for(argv[1], adapter, cfg);
	struct rt_local_options lo = {.n_threads = 1, .n_ctx = 0,
	                              .chat_template = tmpl ? tmpl : (cfg->model_template[0] ? cfg->model_template : NULL),
	                              .adapters = adapters};
	struct rt_model *m = NULL;
	char *err = NULL;
	enum rterror e = rt_model_open_local(argv[1], &lo, &m, &err);
	g_free(tmpl);
	if (e)
		return rt_fail("model info", e, err);
	struct rt_model_info i;
	rt_model_describe(m, &i);
	printf("file:          %s (", argv[1]);
	print_size("", i.file_bytes);
	printf(")\narchitecture:  %s\n", i.arch);
	printf("parameters:    %.2f M (", (double)i.n_params / 1e6);
	print_size("", i.weight_bytes);
	printf(" of weights)\n");
	printf("layers:        %d, embedding %d, feed-forward %d\n", i.n_layer, i.n_embd, i.n_ff);
	printf("heads:         %d (key/value heads %d)\n", i.n_head, i.n_head_kv);
	printf("vocabulary:    %d tokens (%s tokenizer)\n", i.n_vocab, i.tokenizer);
	printf("context:       %d trained\n", i.n_ctx_train);
	printf("chat template: %s\n", i.chat_template);
	print_adapters(&i);
	printf("tensor types:\n");
	for (uint32_t t = 0; t < i.n_types; t++)
		printf("  %-6s %5u tensors %10.1f MB\n", i.types[t].name, i.types[t].tensors,
		       (double)i.types[t].bytes / 1e6);
	rt_model_close(m);
	return 0;
}

/* A whole extraction of a generated invoice page, with and without the speed-ups. */
static int model_bench_extract(const char *file, const struct bench_opts *bo, int page_tokens,
                               const struct config *cfg)
{
	struct doctypes *types = NULL;
	char *err = NULL;
	if (doctypes_load(NULL, &types, &err) != QERR_OK) {
		int rc = cmd_fail("model bench", err);
		g_free(err);
		return rc;
	}
	g_autofree char *system = NULL, *head = NULL, *tail = NULL;
	const struct doctype *inv = doctypes_find(types, "invoice");
	modelfields_request_parts(inv, &system, &head, &tail);
	struct bench_extract_opts o = {.n_threads = bo->n_threads, .n_ctx = bo->n_ctx, .page_tokens = page_tokens,
	                               .reps = bo->reps, .system = system, .head = head, .tail = tail,
	                               .schema = inv->schema_text,
	                               .chat_template = cfg->model_template[0] ? cfg->model_template : NULL};
	struct bench_extract_result r;
	enum rterror e = bench_extract_run(file, &o, &r, &err);
	doctypes_free(types);
	if (e)
		return rt_fail("model bench", e, err);
	bench_extract_print(stdout, &r);
	return 0;
}

static int model_bench(int argc, char **argv, struct config *cfg)
{
	struct bench_opts o;
	bench_opts_default(&o);
	if (cfg->model_threads > 0)
		o.n_threads = cfg->model_threads;
	gboolean exact = FALSE, nobw = FALSE, noref = FALSE, extract = FALSE;
	int page_tokens = 1500;
	g_autofree char *reference = NULL;
	GOptionEntry entries[] = {
		{"threads", 't', 0, G_OPTION_ARG_INT, &o.n_threads, "Threads (default: one per core)", "N"},
		{"prompt", 'p', 0, G_OPTION_ARG_INT, &o.n_prompt, "Prompt tokens, evaluated as one batch (512)", "N"},
		{"gen", 'n', 0, G_OPTION_ARG_INT, &o.n_gen, "Tokens generated one at a time (128)", "N"},
		{"ctx", 'c', 0, G_OPTION_ARG_INT, &o.n_ctx, "Context to allocate (4096)", "N"},
		{"reps", 'r', 0, G_OPTION_ARG_INT, &o.reps, "Repetitions, averaged", "N"},
		{"exact", 0, 0, G_OPTION_ARG_NONE, &exact, "F32 arithmetic on dequantized weights", NULL},
		{"no-bandwidth", 0, 0, G_OPTION_ARG_NONE, &nobw, "Skip the memory bandwidth measurement", NULL},
		{"reference", 0, 0, G_OPTION_ARG_FILENAME, &reference,
		 "llama.cpp's llama-bench, run on the same file in the same run (default: found beside quire, beside "
		 "FILE, or at ../shared/tools/llama.cpp/llama-bench)", "PATH"},
		{"no-reference", 0, 0, G_OPTION_ARG_NONE, &noref, "Quire's figures only", NULL},
		{"extract", 0, 0, G_OPTION_ARG_NONE, &extract,
		 "Time a whole extraction of a generated invoice page, with the extraction speed-ups and plainly", NULL},
		{"page-tokens", 0, 0, G_OPTION_ARG_INT, &page_tokens, "With --extract: the page's length (1500)", "N"},
		{NULL, 0, 0, 0, NULL, NULL, NULL}};
	if (cmd_parse(&argc, &argv, "FILE",
	              "Measure prompt processing and generation speed and peak memory, side by side with llama.cpp's "
	              "llama-bench when it is at hand.",
	              (const struct _GOptionEntry *)entries))
		return 2;
	if (argc != 2)
		return cmd_fail("model bench", "give one GGUF file");
	if (o.n_prompt < 1 || o.n_gen < 1 || o.n_prompt > 65536 || o.n_gen > 65536)
		return cmd_fail("model bench", "--prompt and --gen must be from 1 to 65536");
	if (extract && (page_tokens < 100 || page_tokens > 20000))
		return cmd_fail("model bench", "--page-tokens must be from 100 to 20000");
	if (extract)
		return model_bench_extract(argv[1], &o, page_tokens, cfg);
	if (exact)
		o.prec = MATMUL_F32;
	o.bandwidth = !nobw;
	o.reference = reference;
	o.no_reference = noref;
	struct bench_result r;
	char *err = NULL;
	enum rterror e = bench_run(argv[1], &o, &r, &err);
	if (e)
		return rt_fail("model bench", e, err);
	bench_print(stdout, &r);
	return 0;
}

struct run_args {
	char *prompt, *system, *schema_path, *tmpl, *endpoint;
	char **adapter;
	int max_tokens, threads, ctx, seed;
	double temperature;
	gboolean plain;
};

static enum rterror open_for_run(const char *file, const struct run_args *a, const struct config *cfg,
                                 struct rt_model **m, char **err)
{
	if (a->endpoint) {
		struct rt_remote_options ro = {.base_url = a->endpoint, .retries = 2};
		return rt_model_open_remote(&ro, m, err);
	}
	g_autofree char *adapters = adapters_for(file, a->adapter, cfg);
	struct rt_local_options lo = {.n_threads = a->threads ? a->threads : cfg->model_threads,
	                              .n_ctx = a->ctx ? a->ctx : cfg->model_context,
	                              .chat_template = a->tmpl ? a->tmpl
	                                                       : (cfg->model_template[0] ? cfg->model_template : NULL),
	                              .adapters = adapters};
	return rt_model_open_local(file, &lo, m, err);
}

static int model_run(int argc, char **argv, struct config *cfg)
{
	struct run_args a = {.max_tokens = 256};
	GOptionEntry entries[] = {
		{"prompt", 0, 0, G_OPTION_ARG_STRING, &a.prompt, "The user's message", "TEXT"},
		{"system", 0, 0, G_OPTION_ARG_STRING, &a.system, "A system message", "TEXT"},
		{"schema", 0, 0, G_OPTION_ARG_FILENAME, &a.schema_path, "JSON Schema the answer must match", "FILE"},
		{"template", 0, 0, G_OPTION_ARG_STRING, &a.tmpl, "Chat template (chatml, llama3, mistral, phi3, gemma, raw)",
		 "NAME"},
		{"adapter", 0, 0, G_OPTION_ARG_STRING_ARRAY, &a.adapter,
		 "LoRA adapter to apply, FILE or FILE@SCALE (repeatable; default: model.adapters for model.path)",
		 "FILE[@SCALE]"},
		{"endpoint", 0, 0, G_OPTION_ARG_STRING, &a.endpoint, "OpenAI-compatible server instead of FILE", "URL"},
		{"max-tokens", 0, 0, G_OPTION_ARG_INT, &a.max_tokens, "Tokens to generate at most (256)", "N"},
		{"temperature", 0, 0, G_OPTION_ARG_DOUBLE, &a.temperature, "Sampling temperature (0: greedy)", "T"},
		{"seed", 0, 0, G_OPTION_ARG_INT, &a.seed, "Sampling seed", "N"},
		{"threads", 't', 0, G_OPTION_ARG_INT, &a.threads, "Threads", "N"},
		{"ctx", 'c', 0, G_OPTION_ARG_INT, &a.ctx, "Context length", "N"},
		{"plain", 0, 0, G_OPTION_ARG_NONE, &a.plain,
		 "One token per forward pass, no drafts (for comparison; the answer is the same)", NULL},
		{NULL, 0, 0, 0, NULL, NULL, NULL}};
	if (cmd_parse(&argc, &argv, "FILE", "Generate an answer to a prompt, optionally under a JSON Schema.",
	              (const struct _GOptionEntry *)entries))
		return 2;
	int rc = 0;
	g_autofree char *schema = NULL;
	g_autoptr(GError) gerr = NULL;
	struct rt_model *m = NULL;
	char *err = NULL;
	enum rterror e = RTERROR_OK;
	if ((argc != 2 && !a.endpoint) || !a.prompt)
		rc = cmd_fail("model run", "give a GGUF file (or --endpoint) and --prompt");
	else if (a.schema_path && !g_file_get_contents(a.schema_path, &schema, NULL, &gerr))
		rc = cmd_fail("model run", gerr->message);
	else if ((e = open_for_run(argv[1], &a, cfg, &m, &err)))
		rc = rt_fail("model run", e, err);
	if (!rc) {
		struct rt_request req = {.system = a.system, .prompt = a.prompt, .schema = schema,
		                         .max_tokens = a.max_tokens, .temperature = (float)a.temperature,
		                         .seed = (uint64_t)a.seed, .plain = a.plain};
		struct rt_result *r = NULL;
		if ((e = rt_generate(m, &req, &r, &err))) {
			rc = rt_fail("model run", e, err);
		} else {
			/* the whole answer: a token may decode to a NUL byte */
			fwrite(r->text, 1, r->text_len, stdout);
			putchar('\n');
			fprintf(stderr,
			        "[%d prompt tokens (%d reused) at %.1f tok/s; %zu generated at %.1f tok/s (%d forced, %d of %d "
			        "drafted accepted, %d forward passes); stop: %s]\n",
			        r->n_prompt, r->n_reused, r->prompt_tps, r->n_tokens, r->gen_tps, r->n_forced, r->n_accepted,
			        r->n_drafted, r->n_evals, rt_stop_name(r->stop));
			rt_result_free(r);
		}
	}
	rt_model_close(m);
	g_free(a.prompt);
	g_free(a.system);
	g_free(a.schema_path);
	g_free(a.tmpl);
	g_free(a.endpoint);
	g_strfreev(a.adapter);
	return rc;
}

int cmd_model(int argc, char **argv, struct config *cfg)
{
	static const struct {
		const char *name, *full;
		command_fn fn;
	} subs[] = {{"info", "model info", model_info},
	            {"bench", "model bench", model_bench},
	            {"run", "model run", model_run}};
	for (size_t i = 0; argc >= 2 && i < G_N_ELEMENTS(subs); i++)
		if (strcmp(argv[1], subs[i].name) == 0) {
			argv[1] = (char *)subs[i].full; /* option errors and --help name "quire model ..." */
			return subs[i].fn(argc - 1, argv + 1, cfg);
		}
	fprintf(stderr, "Usage: quire model info|bench|run FILE [OPTIONS]\n"
	                "  info   architecture, sizes, tensor types, template, context, adapters\n"
	                "  bench  prompt and generation tokens/s and peak memory, beside llama-bench's in the same run;\n"
	                "         --extract: a whole extraction, with and without the extraction speed-ups\n"
	                "  run    generate from --prompt, optionally under --schema FILE\n");
	return argc >= 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
}
