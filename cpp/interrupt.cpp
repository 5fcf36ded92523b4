#include "interrupt.h"

#include <atomic>

#include "error.h"

namespace annvil {

namespace {
std::atomic<InterruptHook> g_hook{nullptr};
}

void set_interrupt_hook(InterruptHook hook) { g_hook.store(hook); }

void check_interrupt() {
  InterruptHook hook = g_hook.load();
  if (hook && hook()) ANNVIL_THROW(interrupted, "computation interrupted");
}

}  // namespace annvil
