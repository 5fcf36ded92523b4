// The compiled module annvil._core.  Each family's bindings live in their own
// file (bind_<family>.cpp); this file only calls them in dependency order.
#include "common.h"

PYBIND11_MODULE(_core, m) {
  m.doc() = "annvil native core";
  annvil_py::init_errors(m);
  annvil_py::init_distances(m);
  annvil_py::init_index(m);
  annvil_py::init_flat_codes(m);
  annvil_py::init_flat(m);
  annvil_py::init_idmap(m);
  annvil_py::init_kmeans(m);
  annvil_py::init_pq(m);
  annvil_py::init_pq_fastscan(m);
  annvil_py::init_refine(m);
  annvil_py::init_transform(m);
  annvil_py::init_ivf(m);
  annvil_py::init_sq(m);
  annvil_py::init_ivfpq(m);
  annvil_py::init_hnsw(m);
  annvil_py::init_ivf_extra(m);
  annvil_py::init_shards(m);
  annvil_py::init_qg(m);
  annvil_py::init_binary(m);
  annvil_py::init_lsh(m);
  annvil_py::init_io(m);
  annvil_py::init_faiss_io(m);
  annvil_py::init_gpu(m);
  annvil_py::init_kmeans_links(m);
  annvil_py::init_utils(m);
  annvil_py::init_distance_computer(m);
}
