/* fuzz_tokenizer: the pre-tokenizers, both tokenizer families and decoding
 * over arbitrary bytes.
 *
 * Input: byte 0 picks a tokenizer, byte 1 the flags (bit 0 parse_special,
 * bit 1 add_bos), the rest is the text; byte 0 = 255 makes the rest a GGUF
 * file whose tokenizer metadata is loaded instead. The tokenizers are small in-memory
 * vocabularies (one byte-level BPE vocabulary per pre-tokenizer, and a
 * SentencePiece one) plus, when ../shared is present, every vocab file there.
 * Checked beyond "no crash, hang or leak": pre-tokenizer pieces tile the
 * text; every id is in range; on the in-memory vocabularies, which can spell
 * any byte, decoding gives the text back. Built with -DQUIRE_LIBFUZZER it is
 * a libFuzzer target; otherwise main() replays the files and directories
 * named on the command line and prints TAP. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/gguf.h"
#include "runtime/pretok.h"
#include "runtime/tokenizer.h"
#include "runtime/unicode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_TOK 16

static struct tokenizer *toks[MAX_TOK];
/* Decoding must give the input back: 2 always, 1 without special parsing
 * (SentencePiece puts a space prefix after a special token), 0 never checked. */
static int exact[MAX_TOK];
static size_t n_toks;
static int failures;

static void fail(const char *what)
{
	fprintf(stderr, "fuzz_tokenizer: %s\n", what);
#ifdef QUIRE_LIBFUZZER
	abort();
#else
	failures++;
#endif
}

static char vb_text[300][16];
static struct tokenizer_str vb_tok[300];
static int32_t vb_type[300];
static float vb_score[300];

static size_t vb_add(size_t i, const char *s, int32_t type, float score)
{
	snprintf(vb_text[i], sizeof vb_text[i], "%s", s);
	vb_tok[i] = (struct tokenizer_str){vb_text[i], strlen(vb_text[i])};
	vb_type[i] = type;
	vb_score[i] = score;
	return i + 1;
}

static void add_tok(struct tokenizer *t, int ex)
{
	if (t && n_toks < MAX_TOK) {
		exact[n_toks] = ex;
		toks[n_toks++] = t;
	}
}

static void setup_memory(void)
{
	static const struct tokenizer_str merges[] = {
		{"\xc4\xa0 t", 4}, {"h e", 3}, {"\xc4\xa0t he", 7}, {"i n", 3}, {"1 2", 3},
	};
	static const char *const pres[] = {"gpt-2", "default", "llama-bpe", "qwen2", "smollm", "deepseek-llm"};
	size_t n = 0;
	for (unsigned b = 0; b < 256; b++) {
		char s[8] = {0};
		unicode_encode(unicode_byte_to_cp((uint8_t)b), s);
		n = vb_add(n, s, 1, 0);
	}
	static const char *const extra[] = {"\xc4\xa0t", "he", "\xc4\xa0the", "in", "12"};
	for (size_t i = 0; i < 5; i++)
		n = vb_add(n, extra[i], 1, 0);
	n = vb_add(n, "<|im_end|>", 3, 0);
	for (size_t i = 0; i < sizeof pres / sizeof pres[0]; i++) {
		struct tokenizer_vocab v = {.model = "gpt2", .pre = pres[i], .n_tokens = n, .tokens = vb_tok,
		                            .types = vb_type, .n_merges = 5, .merges = merges, .bos = -1,
		                            .eos = (int64_t)n - 1, .unk = -1, .eot = -1, .eom = -1,
		                            .add_bos = 0, .add_space_prefix = -1};
		struct tokenizer *t = NULL;
		if (tokenizer_new(&v, &t, NULL) == RTERROR_OK)
			add_tok(t, 2);
	}
	static struct tokenizer_str spm[300];
	static char spm_text[260][8];
	static int32_t spm_type[300];
	static float spm_score[300];
	size_t m = 0;
	spm[m] = (struct tokenizer_str){"<unk>", 5}, spm_type[m++] = 2;
	spm[m] = (struct tokenizer_str){"<s>", 3}, spm_type[m++] = 3;
	spm[m] = (struct tokenizer_str){"</s>", 4}, spm_type[m++] = 3;
	for (unsigned b = 0; b < 256; b++, m++) {
		snprintf(spm_text[b], sizeof spm_text[b], "<0x%02X>", b);
		spm[m] = (struct tokenizer_str){spm_text[b], 6};
		spm_type[m] = 6;
	}
	static const char *const words[] = {"\xe2\x96\x81", "a", "b", "\xe2\x96\x81" "a", "ab", "\xe2\x96\x81" "ab"};
	for (size_t i = 0; i < 6; i++, m++) {
		spm[m] = (struct tokenizer_str){words[i], strlen(words[i])};
		spm_type[m] = 1;
		spm_score[m] = -(float)i;
	}
	struct tokenizer_vocab v = {.model = "llama", .n_tokens = m, .tokens = spm, .scores = spm_score,
	                            .types = spm_type, .bos = -2, .eos = -2, .unk = -2, .eot = -1,
	                            .eom = -1, .add_bos = -1, .add_space_prefix = -1};
	struct tokenizer *t = NULL;
	if (tokenizer_new(&v, &t, NULL) == RTERROR_OK)
		add_tok(t, 1);
}

static void setup_shared(void)
{
	const char *shared = getenv("QUIRE_SHARED_DIR");
	char dir[1024];
	if (!shared || snprintf(dir, sizeof dir, "%s/models/vocab", shared) >= (int)sizeof dir - 300)
		return;
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		size_t l = strlen(e->d_name);
		if (l < 6 || l > 200 || strcmp(e->d_name + l - 5, ".gguf") != 0)
			continue;
		char path[1300];
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		struct gguf_file *g = NULL;
		struct tokenizer *t = NULL;
		if (gguf_open(path, &g, NULL) == RTERROR_OK && tokenizer_load(g, &t, NULL) == RTERROR_OK)
			add_tok(t, 0);
		gguf_close(g);
	}
	if (d)
		closedir(d);
}

static void setup(void)
{
	static bool done;
	if (done)
		return;
	done = true;
	setup_memory();
	setup_shared();
}

static void check_pretok(const char *text, size_t len, unsigned sel)
{
	uint32_t *ends = NULL;
	size_t n = 0;
	if (pretok_split((enum pretok_kind)(sel % PRETOK_COUNT), text, len, &ends, &n, NULL) != RTERROR_OK) {
		fail("pretok_split failed");
		return;
	}
	uint32_t prev = 0;
	for (size_t i = 0; i < n; i++) {
		if (ends[i] <= prev || ends[i] > len)
			fail("pre-tokenizer pieces do not tile the text");
		prev = ends[i];
	}
	if (prev != len)
		fail("pre-tokenizer pieces do not cover the text");
	free(ends);
}

/* Selector 255: the rest is a GGUF file whose tokenizer metadata is loaded and used. */
static void check_gguf(const uint8_t *data, size_t size)
{
	struct gguf_file *g = NULL;
	struct tokenizer *t = NULL;
	if (gguf_open_memory(data, size, &g, NULL) == RTERROR_OK &&
	    tokenizer_load(g, &t, NULL) == RTERROR_OK) {
		static const char text[] = "Hello <s> w\xc3\xb6rld 123 <|im_end|>\xff";
		int32_t *ids = NULL;
		size_t n = 0;
		char *back = NULL;
		if (tokenizer_encode(t, text, sizeof text - 1, true, true, 1000, &ids, &n, NULL) != RTERROR_OK ||
		    tokenizer_decode(t, ids, n, true, &back, NULL, NULL) != RTERROR_OK)
			fail("a loaded tokenizer failed");
		for (int32_t id = 0; id < tokenizer_n_vocab(t); id++) {
			size_t pl = 0;
			if (!tokenizer_piece(t, id, &pl) || tokenizer_find(t, "a", 1) >= tokenizer_n_vocab(t))
				fail("piece or lookup out of range");
		}
		free(back);
		free(ids);
	}
	tokenizer_free(t);
	gguf_close(g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup();
	if (size >= 2 && data[0] == 255) {
		check_gguf(data + 2, size - 2);
		return 0;
	}
	if (size < 2 || n_toks == 0)
		return 0;
	const char *text = (const char *)data + 2;
	size_t len = size - 2;
	check_pretok(text, len, data[0]);
	size_t k = data[0] % n_toks;
	const struct tokenizer *t = toks[k];
	bool special = data[1] & 1, bos = data[1] & 2;
	int32_t *ids = NULL;
	size_t n = 0;
	char *err = NULL, *back = NULL;
	size_t blen = 0;
	if (tokenizer_encode(t, text, len, bos, special, 4 * len + 8, &ids, &n, &err) != RTERROR_OK) {
		fail(err ? err : "encode failed");
		free(err);
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (ids[i] < 0 || ids[i] >= tokenizer_n_vocab(t))
			fail("id out of range");
	}
	if (tokenizer_decode(t, ids, n, special, &back, &blen, NULL) != RTERROR_OK)
		fail("decode failed");
	else if (exact[k] > (int)special && !bos && !memmem(text, len, "\xe2\x96\x81", 3) &&
	         (blen != len || memcmp(back, text, len) != 0))
		fail("decoding does not give the text back");
	free(back);
	free(ids);
	return 0;
}

#ifndef QUIRE_LIBFUZZER
static int n_run;

static void run_file(const char *path)
{
	FILE *fp = fopen(path, "rb");
	if (!fp) {
		fail("cannot open a corpus file");
		return;
	}
	size_t cap = 1 << 20;
	uint8_t *buf = malloc(cap);
	size_t len = buf ? fread(buf, 1, cap, fp) : 0;
	fclose(fp);
	/* An exact-size copy, so that an over-read lands outside the allocation. */
	uint8_t *copy = malloc(len ? len : 1);
	if (buf && copy) {
		memcpy(copy, buf, len);
		int before = failures;
		LLVMFuzzerTestOneInput(copy, len);
		n_run++;
		printf("%s %d - /fuzz/tokenizer/%s\n", failures == before ? "ok" : "not ok", n_run, path);
	}
	free(copy);
	free(buf);
}

static void run_path(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		fail("cannot stat a corpus path");
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		run_file(path);
		return;
	}
	DIR *d = opendir(path);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char sub[4096];
		if (snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) < (int)sizeof sub)
			run_path(sub);
	}
	if (d)
		closedir(d);
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		run_path(argv[i]);
	/* Every tokenizer once more over every selector, so that each is reached. */
	static const char probe[] = "\x00\x00Hello, World! 1234 <|im_end|> \xff\xc3 \xe4\xbd\xa0 it's\n\n  x";
	uint8_t in[sizeof probe];
	int before = failures;
	for (unsigned sel = 0; sel < 4 * MAX_TOK; sel++) {
		memcpy(in, probe, sizeof probe - 1);
		in[0] = (uint8_t)sel, in[1] = (uint8_t)(sel / MAX_TOK);
		LLVMFuzzerTestOneInput(in, sizeof probe - 1);
	}
	printf("%s %d - /fuzz/tokenizer/every-tokenizer (%zu)\n", failures == before ? "ok" : "not ok",
	       ++n_run, n_toks);
	printf("1..%d\n", n_run);
	for (size_t i = 0; i < n_toks; i++)
		tokenizer_free(toks[i]);
	return failures || n_run < 2;
}
#endif
