// Scalar-quantizer kernels for AVX2 + FMA + F16C: sq_impl.h over simd/ops_avx2.h.
#include "simd/ops_avx2.h"
#define ANNVIL_ISA avx2
#include "quant/sq_impl.h"
