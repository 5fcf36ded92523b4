// Helpers for the per-ISA translation units.  Each kernel family's body
// (distances_impl.h, sq_impl.h, hnsw_f16_impl.h, hamming_impl.h) is compiled
// once per instruction set by a file of three lines:
//
//   #include "simd/ops_avx2.h"  // the ISA's vector ops (its flags come from CMake)
//   #define ANNVIL_ISA avx2
//   #include "quant/sq_impl.h"  // the body: `using V = simd::ANNVIL_ISA::V`, and
//                               // the table accessor sq_kernels_avx2()
#pragma once

#define ANNVIL_CAT_(a, b) a##b
#define ANNVIL_CAT(a, b) ANNVIL_CAT_(a, b)
// the name of this ISA's table accessor: ANNVIL_ISA_FN(sq_kernels_) is sq_kernels_avx2
#define ANNVIL_ISA_FN(prefix) ANNVIL_CAT(prefix, ANNVIL_ISA)
