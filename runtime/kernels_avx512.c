/* kernels_avx512: AVX-512 (F, BW, VL, VNNI, BF16) versions of the kernels
 * (compiled with those instructions enabled; only called when the CPU has them). */
#include "runtime/kernels.h"

#include <immintrin.h>

void kernels_avx512_fill(struct kernels *k)
{
	(void)k;
}
