// Float32 distance kernels for AVX-512: distances_impl.h over simd/ops_avx512.h.
#include "simd/ops_avx512.h"
#define ANNVIL_ISA avx512
#define ANNVIL_PANEL_MR 12  // 32 queries x 12 rows: 24 accumulators + 2 panel registers + 1 broadcast of 32 zmm
#include "distances/distances_impl.h"
