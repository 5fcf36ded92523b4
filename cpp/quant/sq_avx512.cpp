// Scalar-quantizer kernels for AVX-512 (masked tails): sq_impl.h over simd/ops_avx512.h.
#include "simd/ops_avx512.h"
#define ANNVIL_ISA avx512
#include "quant/sq_impl.h"
