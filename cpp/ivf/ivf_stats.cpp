#include "ivf/ivf_stats.h"

namespace annvil {

IndexIVFStats indexIVF_stats;

}  // namespace annvil
