#include "core/interrupt.h"

#include <omp.h>

#include <atomic>

#include "core/error.h"

namespace annvil {

namespace {
std::atomic<InterruptHook> g_hook{nullptr};
}

void set_interrupt_hook(InterruptHook hook) { g_hook.store(hook); }

void check_interrupt() {
  // Only the thread that entered the core may ask Python (and throw): inside
  // a parallel region (e.g. sub-space k-means run by worker threads) the
  // check is skipped, and the caller's own checks cover the computation.
  if (omp_in_parallel()) return;
  InterruptHook hook = g_hook.load();
  if (hook && hook()) ANNVIL_THROW(interrupted, "computation interrupted");
}

}  // namespace annvil
