// The Hamming kernel for AVX2-class CPUs (POPCNT): hamming_impl.h over simd/ops_avx2.h.
#include "simd/ops_avx2.h"
#define ANNVIL_ISA avx2
#include "distances/hamming_impl.h"
