// Scalar-quantizer kernels, portable (baseline flags; the reference the SIMD
// levels are tested against): sq_impl.h over simd/ops_scalar.h.
#include "simd/ops_scalar.h"
#define ANNVIL_ISA scalar
#include "quant/sq_impl.h"
