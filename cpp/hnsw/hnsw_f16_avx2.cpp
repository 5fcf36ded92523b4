// HNSW half-precision storage kernels for AVX2 + F16C: hnsw_f16_impl.h over simd/ops_avx2.h.
#include "simd/ops_avx2.h"
#define ANNVIL_ISA avx2
#include "hnsw/hnsw_f16_impl.h"
