// Fault injection behind parallel_fault_point() (see parallel.h).
#include "core/parallel.h"

#include "core/error.h"

namespace annvil {

namespace detail {
std::atomic<int64_t> g_parallel_fault_countdown{0};
void throw_injected_fault() { ANNVIL_THROW(runtime, "injected fault in a parallel loop (annvil test hook)"); }
}  // namespace detail

void arm_parallel_fault(int64_t n) { detail::g_parallel_fault_countdown.store(n < 0 ? 0 : n); }

}  // namespace annvil
