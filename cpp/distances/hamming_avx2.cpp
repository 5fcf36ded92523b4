// The Hamming kernel compiled for AVX2-class CPUs (this file's flags give
// the compiler the POPCNT instruction; the baseline build has to emulate it).
#include "distances/hamming.h"

#if defined(ANNVIL_X86)
#pragma GCC target("popcnt")
#endif
#include "distances/hamming_impl.h"

namespace annvil {

const HammingKernels& hamming_kernels_avx2() {
  static const HammingKernels k{&hamming_impl::distance, &hamming_impl::to_many};
  return k;
}

}  // namespace annvil
