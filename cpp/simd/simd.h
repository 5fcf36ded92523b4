// Which instruction set the kernels use, chosen once at run time.
// ANNVIL_SIMD=scalar|avx2|avx512 forces a level (never above what the CPU has).
#pragma once
#include <string>

namespace annvil {

enum class SimdLevel { scalar = 0, avx2 = 1, avx512 = 2 };

SimdLevel detected_simd_level();       // best level this CPU supports
SimdLevel simd_level();                // level in use
void set_simd_level(SimdLevel level);  // throws if the CPU lacks it
const char* simd_level_name(SimdLevel level);
SimdLevel parse_simd_level(const std::string& name);

}  // namespace annvil
