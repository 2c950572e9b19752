/* Unit tests of extractors/hugemem: blocks and the heap advised for the
 * kernel's transparent huge pages, read back from /proc/self/smaps. */
#include "extractors/hugemem.h"

#include <glib.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define ASAN_MALLOC 1 /* malloc is the sanitizer's, not the C library's heap */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASAN_MALLOC 1
#endif
#endif

/* Whether this kernel can advise huge pages at all (without it, madvise
 * refuses and the memory is ordinary). */
static bool kernel_has_thp(void)
{
	return g_file_test("/sys/kernel/mm/transparent_hugepage", G_FILE_TEST_IS_DIR);
}

/* The VmFlags line of the mapping that holds p, from /proc/self/smaps. */
static char *vm_flags_of(const void *p)
{
	g_autofree char *smaps = NULL;
	g_assert_true(g_file_get_contents("/proc/self/smaps", &smaps, NULL, NULL));
	uintptr_t a = (uintptr_t)p;
	bool inside = false;
	g_auto(GStrv) lines = g_strsplit(smaps, "\n", -1);
	for (char **l = lines; *l; l++) {
		unsigned long lo, hi;
		if (sscanf(*l, "%lx-%lx ", &lo, &hi) == 2 && strchr(*l, '-') < strchr(*l, ' '))
			inside = a >= lo && a < hi;
		else if (inside && g_str_has_prefix(*l, "VmFlags:"))
			return g_strdup(*l + 8);
	}
	return NULL;
}

static bool advised(const void *p)
{
	g_autofree char *flags = vm_flags_of(p);
	g_assert_nonnull(flags);
	g_auto(GStrv) f = g_strsplit_set(g_strstrip(flags), " ", -1);
	return g_strv_contains((const char *const *)f, "hg");
}

/* A block is zeroed, writable to its last byte, advised, and given back. */
static void test_block(void)
{
	size_t size = (size_t)9 << 20;
	guint8 *p = hugemem_new(size);
	g_assert_nonnull(p);
	g_assert_cmpuint((uintptr_t)p % 4096, ==, 0);
	g_assert_cmpuint(p[0], ==, 0);
	g_assert_cmpuint(p[size - 1], ==, 0);
	memset(p, 0xab, size);
	g_assert_cmpuint(p[size / 2], ==, 0xab);
	if (kernel_has_thp())
		g_assert_true(advised(p));
	hugemem_free(p, size);
	g_assert_null(hugemem_new(0));
	hugemem_free(NULL, 0);
}

/* After hugemem_heap_advise, the C library's heap serves blocks up to 32 MiB
 * from memory advised for huge pages, and keeps doing so as it grows. */
static void test_heap(void)
{
#ifdef ASAN_MALLOC
	g_test_skip("the sanitizer's malloc has no C library heap to advise");
	return;
#endif
	if (!kernel_has_thp()) {
		g_test_skip("this kernel has no transparent huge pages");
		return;
	}
	hugemem_heap_advise();
	char *a = malloc((size_t)8 << 20);
	g_assert_nonnull(a);
	memset(a, 1, (size_t)8 << 20);
	g_assert_true(advised(a));
	/* more than the heap had room for: it grows, and the next call advises the growth */
	GPtrArray *blocks = g_ptr_array_new_with_free_func(free);
	for (int i = 0; i < 12; i++) {
		char *b = malloc((size_t)24 << 20);
		g_assert_nonnull(b);
		b[0] = b[((size_t)24 << 20) - 1] = 2;
		g_ptr_array_add(blocks, b);
	}
	hugemem_heap_advise();
	char *last = blocks->pdata[blocks->len - 1];
	g_assert_true(advised(last + ((size_t)12 << 20)));
	g_ptr_array_free(blocks, TRUE);
	free(a);
	/* freed memory is reused: a new block still comes advised */
	char *c = malloc((size_t)16 << 20);
	g_assert_true(advised(c));
	free(c);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/hugemem/block", test_block);
	g_test_add_func("/hugemem/heap", test_heap);
	return g_test_run();
}
