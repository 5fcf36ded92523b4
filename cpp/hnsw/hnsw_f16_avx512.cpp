// HNSW half-precision storage kernels for AVX-512: hnsw_f16_impl.h over simd/ops_avx512.h.
#include "simd/ops_avx512.h"
#define ANNVIL_ISA avx512
#include "hnsw/hnsw_f16_impl.h"
