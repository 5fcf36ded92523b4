// The one kernel dispatcher.  Every SIMD kernel family is a table of function
// pointers (a struct), compiled once per instruction set from one body
// (cpp/simd/ops_*.h + the family's *_impl.h; simd/isa.h).  A family declares its tables and
// one KernelDispatch; every call site reads the active table through it:
//
//   // sq.h
//   struct SQKernels { ... };
//   const SQKernels& sq_kernels();                  // the active table
//   // sq.cpp
//   const SQKernels& sq_kernels() {
//     static const KernelDispatch<SQKernels> d(&sq_kernels_scalar(),
//                                              ANNVIL_ISA_TABLE(sq_kernels_avx2),
//                                              ANNVIL_ISA_TABLE(sq_kernels_avx512));
//     return d.get();
//   }
//
// The level is chosen once at start-up (detected_simd_level(), lowered by the
// ANNVIL_SIMD environment variable) and switched by set_simd_level(), which
// re-points every dispatcher with one atomic store each.  A table missing for
// a level (nullptr: not compiled on this architecture, or the family has no
// kernel for that ISA) falls back to the next level down, so a scalar-only
// build (ANNVIL_SIMD=scalar in CMake, or any non-x86 machine) runs the same
// code paths with the portable tables.
#pragma once
#include <atomic>

#include "simd/simd.h"

namespace annvil {

namespace detail {
// set_simd_level() calls back every dispatcher registered here.
struct DispatchBase {
  virtual void select(SimdLevel level) = 0;
  virtual ~DispatchBase() = default;
};
void register_dispatch(DispatchBase* d);    // thread-safe; d must live forever
void select_all_dispatch(SimdLevel level);  // under the registry lock
}  // namespace detail

template <class Table>
class KernelDispatch final : public detail::DispatchBase {
 public:
  KernelDispatch(const Table* scalar, const Table* avx2, const Table* avx512) : tables_{scalar, avx2, avx512} {
    select(simd_level());
    detail::register_dispatch(this);
  }
  KernelDispatch(const KernelDispatch&) = delete;
  KernelDispatch& operator=(const KernelDispatch&) = delete;

  // the table for the level in use (one relaxed atomic load)
  const Table& get() const { return *active_.load(std::memory_order_relaxed); }
  // the table a level would use (falls back to lower levels)
  const Table& for_level(SimdLevel level) const {
    for (int l = static_cast<int>(level); l > 0; --l)
      if (tables_[l]) return *tables_[l];
    return *tables_[0];
  }
  void select(SimdLevel level) override { active_.store(&for_level(level), std::memory_order_relaxed); }

 private:
  const Table* tables_[3];
  std::atomic<const Table*> active_{nullptr};
};

}  // namespace annvil

// The address of a per-ISA table accessor's result where x86 kernels are
// compiled, nullptr elsewhere: ANNVIL_ISA_TABLE(sq_kernels_avx2).
#if defined(ANNVIL_X86)
#define ANNVIL_ISA_TABLE(fn) (&fn())
#else
#define ANNVIL_ISA_TABLE(fn) (static_cast<decltype(&fn())>(nullptr))
#endif
