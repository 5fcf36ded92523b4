#include "simd/simd.h"

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <vector>

#include "simd/dispatch.h"
#include "core/error.h"

namespace annvil {

SimdLevel detected_simd_level() {
#if defined(ANNVIL_X86)
  static const SimdLevel level = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma"))
      return SimdLevel::avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
      return SimdLevel::avx2;
    return SimdLevel::scalar;
  }();
  return level;
#else
  return SimdLevel::scalar;
#endif
}

const char* simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::avx512:
      return "avx512";
    case SimdLevel::avx2:
      return "avx2";
    default:
      return "scalar";
  }
}

SimdLevel parse_simd_level(const std::string& name) {
  if (name == "avx512" || name == "AVX512") return SimdLevel::avx512;
  if (name == "avx2" || name == "AVX2") return SimdLevel::avx2;
  if (name == "scalar" || name == "generic" || name == "none") return SimdLevel::scalar;
  ANNVIL_THROW(value, "unknown SIMD level '", name, "'; expected one of scalar, avx2, avx512");
}

namespace {
SimdLevel initial_level() {
  SimdLevel best = detected_simd_level();
  if (const char* env = std::getenv("ANNVIL_SIMD")) {
    try {
      SimdLevel want = parse_simd_level(env);
      if (static_cast<int>(want) < static_cast<int>(best)) return want;
    } catch (const Error&) {
    }
  }
  return best;
}
std::atomic<int>& current_level() {
  static std::atomic<int> level{static_cast<int>(initial_level())};
  return level;
}
struct DispatchRegistry {
  std::mutex mu;
  std::vector<detail::DispatchBase*> all;
};
DispatchRegistry& registry() {
  static DispatchRegistry* r = new DispatchRegistry();  // never destroyed: dispatchers outlive exit order
  return *r;
}
}  // namespace

void detail::register_dispatch(DispatchBase* d) {
  DispatchRegistry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.all.push_back(d);
  d->select(static_cast<SimdLevel>(current_level().load()));  // a switch raced with this registration
}

void detail::select_all_dispatch(SimdLevel level) {
  DispatchRegistry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  current_level().store(static_cast<int>(level));
  for (DispatchBase* d : r.all) d->select(level);
}

SimdLevel simd_level() { return static_cast<SimdLevel>(current_level().load(std::memory_order_relaxed)); }

void set_simd_level(SimdLevel level) {
  ANNVIL_CHECK(static_cast<int>(level) <= static_cast<int>(detected_simd_level()), "this CPU does not support ",
               simd_level_name(level), " (best available: ", simd_level_name(detected_simd_level()), ")");
  detail::select_all_dispatch(level);
}

}  // namespace annvil
