/* hugemem: memory for page images and OCR backed by the kernel's huge pages.
 *
 * OCR of one page touches some 100 MB of fresh memory (the rendered page, the
 * copies Tesseract makes, its layout and recognition buffers). In 4 KiB pages
 * that is some 25,000 page faults per page, a large share of the time OCR
 * takes, and the larger on virtual machines, where a fault costs most. Memory
 * advised as transparent huge pages faults in 2 MiB at once. Where the kernel
 * has transparent huge pages off, the advice is ignored and nothing changes. */
#pragma once

#include <stddef.h>

/* A zeroed, page-aligned block of size bytes advised for huge pages; NULL when
 * it cannot be mapped. Owned by the caller, who gives it back with
 * hugemem_free and the same size. */
void *hugemem_new(size_t size);
void hugemem_free(void *p, size_t size);

/* For a process of its own that ends with its document (the parser): keeps
 * the C library's heap (blocks up to 32 MiB) instead of returning it to the
 * kernel, grows it in large steps, and advises it for huge pages, so that what
 * Tesseract allocates and frees page after page is faulted in once, in 2 MiB
 * pieces. The first call sets this up; later ones advise what the heap has
 * grown by since. Not thread-safe: called from the one thread that OCRs. */
void hugemem_heap_advise(void);
