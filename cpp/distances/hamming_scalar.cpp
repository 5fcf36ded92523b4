// The Hamming kernel at the baseline ISA (popcount emulated): hamming_impl.h over simd/ops_scalar.h.
#include "simd/ops_scalar.h"
#define ANNVIL_ISA scalar
#include "distances/hamming_impl.h"
