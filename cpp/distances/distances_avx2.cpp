// Float32 distance kernels for AVX2 + FMA: distances_impl.h over simd/ops_avx2.h.
#include "simd/ops_avx2.h"
#define ANNVIL_ISA avx2
#define ANNVIL_PANEL_MR 6  // 16 queries x 6 rows: 12 accumulators + 2 panel registers + 1 broadcast of 16 ymm
#include "distances/distances_impl.h"
