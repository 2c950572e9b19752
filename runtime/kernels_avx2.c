/* kernels_avx2: AVX2/FMA/F16C versions of the kernels (compiled with those
 * instructions enabled; only called when the CPU has them). */
#include "runtime/kernels.h"

#include <immintrin.h>

void kernels_avx2_fill(struct kernels *k)
{
	(void)k;
}
