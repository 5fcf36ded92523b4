// HNSW half-precision storage kernels, portable (baseline flags): hnsw_f16_impl.h over simd/ops_scalar.h.
#include "simd/ops_scalar.h"
#define ANNVIL_ISA scalar
#include "hnsw/hnsw_f16_impl.h"
