// Keeps exceptions inside OpenMP regions: an exception that leaves a
// parallel region terminates the process, so each iteration's body runs
// through run(), the first exception is kept, and rethrow() raises it on the
// calling thread once the region has ended.
//
//   OmpErrors errors;
//   #pragma omp parallel for
//   for (...) errors.run([&] { ... });
//   errors.rethrow();
#pragma once
#include <exception>

namespace annvil {

struct OmpErrors {
  std::exception_ptr first;

  template <class F>
  void run(F&& f) {
    try {
      f();
    } catch (...) {
#pragma omp critical(annvil_omp_errors)
      if (!first) first = std::current_exception();
    }
  }
  void rethrow() const {
    if (first) std::rethrow_exception(first);
  }
};

}  // namespace annvil
