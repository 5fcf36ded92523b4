// Exceptions and OpenMP.  An exception may not leave an OpenMP parallel
// region: the runtime calls std::terminate and the interpreter dies.  Every
// parallel loop body in the core runs between ANNVIL_OMP_TRY and
// ANNVIL_OMP_CATCH, which record the first exception thrown by any thread;
// once one is recorded the remaining iterations are skipped (cheaply: one
// relaxed atomic load each), and the caller re-throws it on its own thread
// after the region, where it unwinds to Python as the proper exception:
//
//     ParallelErrors perr;
//   #pragma omp parallel for
//     for (idx_t i = 0; i < n; ++i) ANNVIL_OMP_TRY(perr) {
//       ...                                  // may throw
//     } ANNVIL_OMP_CATCH(perr)
//     perr.rethrow();
//
// Inside a `#pragma omp parallel` block with a nested `#pragma omp for`, the
// nested loop body is wrapped (never the whole block: a thread that left the
// block early would miss the worksharing loop's barrier and hang the others).
// Callers compute into scratch space and publish only after rethrow(), so a
// failed call leaves the index as it was.
#pragma once
#include <atomic>
#include <exception>
#include <mutex>
#include <utility>

namespace annvil {

// Fault injection for tests (annvil._core._inject_parallel_fault): when
// armed with n > 0, the n-th parallel loop iteration to start throws.  Costs
// one relaxed load per iteration when disarmed.
namespace detail {
extern std::atomic<int64_t> g_parallel_fault_countdown;
[[noreturn]] void throw_injected_fault();
}  // namespace detail
inline void parallel_fault_point() {
  if (detail::g_parallel_fault_countdown.load(std::memory_order_relaxed) > 0 &&
      detail::g_parallel_fault_countdown.fetch_sub(1) == 1)
    detail::throw_injected_fault();
}
void arm_parallel_fault(int64_t n);

class ParallelErrors {
 public:
  bool failed() const { return failed_.load(std::memory_order_relaxed); }
  // Called from a catch block: keeps the first exception.
  void capture() noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!first_) first_ = std::current_exception();
    failed_.store(true, std::memory_order_relaxed);
  }
  // Lambda form of ANNVIL_OMP_TRY / ANNVIL_OMP_CATCH: errs.run([&] { ... }).
  template <class F>
  void run(F&& f) noexcept {
    if (failed()) return;
    try {
      parallel_fault_point();
      f();
    } catch (...) {
      capture();
    }
  }
  // Re-throws the recorded exception, if any, on the calling thread.
  void rethrow() {
    if (first_) {
      std::exception_ptr e = std::exchange(first_, nullptr);
      failed_.store(false, std::memory_order_relaxed);
      std::rethrow_exception(e);
    }
  }

 private:
  std::atomic<bool> failed_{false};
  std::mutex mutex_;
  std::exception_ptr first_;
};

}  // namespace annvil

// TRY opens a try block around the loop body (the body's own braces nest
// inside it); CATCH closes it.
#define ANNVIL_OMP_TRY(perr)  \
  if (!(perr).failed()) try { \
      ::annvil::parallel_fault_point();
#define ANNVIL_OMP_CATCH(perr) \
  }                            \
  catch (...) {                \
    (perr).capture();          \
  }
