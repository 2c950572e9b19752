/* hugemem: huge-page-backed memory for OCR (see hugemem.h).
 *
 * The heap part relies on glibc's malloc: blocks below M_MMAP_THRESHOLD come
 * from the heap that brk grows, and with a trim threshold no heap ever reaches
 * that memory stays mapped after free. brk extends the heap's mapping without
 * keeping an earlier madvise on the new part, so each call advises what was
 * added since the last. */
#include "extractors/hugemem.h"

#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define HEAP_BLOCK_MAX (32 << 20) /* glibc's largest M_MMAP_THRESHOLD on 64 bits */
#define HEAP_STEP (64 << 20)      /* each growth of the heap, beyond the request */

static uintptr_t advised_end; /* the heap is advised up to here; 0 before the first call */

void *hugemem_new(size_t size)
{
	if (size == 0)
		return NULL;
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	(void)madvise(p, size, MADV_HUGEPAGE); /* advice only: refused, the memory still works */
	return p;
}

void hugemem_free(void *p, size_t size)
{
	if (p)
		munmap(p, size);
}

void hugemem_heap_advise(void)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	if (!advised_end) {
		mallopt(M_MMAP_THRESHOLD, HEAP_BLOCK_MAX);
		mallopt(M_TRIM_THRESHOLD, INT32_MAX);
		mallopt(M_TOP_PAD, HEAP_STEP);
		/* a large block grows the heap (by HEAP_STEP beyond it); freed, it
		 * stays at the heap's top for what OCR allocates next */
		void *volatile room = malloc(HEAP_BLOCK_MAX / 2); /* volatile: the compiler keeps the pair */
		free(room);
		/* the whole heap, from where brk began: what is in use now is freed
		 * and reused later */
		advised_end = ((uintptr_t)sbrk(0) - mallinfo2().arena) & ~(page - 1);
	}
	uintptr_t end = (uintptr_t)sbrk(0) & ~(page - 1);
	if (end > advised_end) {
		(void)madvise((void *)advised_end, end - advised_end, MADV_HUGEPAGE);
		advised_end = end;
	}
}
