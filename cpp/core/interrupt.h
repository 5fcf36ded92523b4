// Cooperative interruption of long computations (k-means iterations, index
// construction).  The bindings install a hook that asks Python whether a
// signal (Ctrl-C) arrived; the core calls check_interrupt() between units of
// work, from the calling thread and outside OpenMP regions, and it throws an
// Error of kind `interrupted` so the call unwinds cleanly.
#pragma once

namespace annvil {

using InterruptHook = bool (*)();
void set_interrupt_hook(InterruptHook hook);
void check_interrupt();

}  // namespace annvil
