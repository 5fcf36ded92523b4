// Bindings of the meta indexes (IndexShards, IndexReplicas, IndexShardsIVF)
// and of the ivflib-level IndexIVF methods (add_core, copy_subset_to,
// update_vectors, search_and_return_codes, permute_invlists, quantizer
// replacement), added to the IndexIVF class bound in bind_ivf.cpp.
#include "common.h"
#include "ivf/index_ivf.h"
#include "index_shards.h"
#include "hnsw/index_hnsw.h"
#include "ivf/multi_index.h"
#include "index_flat.h"
#include "ivf/index_ivf_pq.h"
#include "index_pq.h"
#include "index_sq.h"
#include "ivf/index_ivf_sq.h"

namespace annvil {
void hnsw_permute_entries(IndexHNSW& idx, const idx_t* perm);  // hnsw_permute.cpp
}

namespace annvil_py {

using namespace annvil;

namespace {

// Faiss's two constructor forms: (d, threaded, second) and (threaded, second)
// with d taken from the first member; a bool first argument means the latter.
struct MetaArgs {
  int d = 0;
  bool threaded;
  bool second;
};

MetaArgs meta_args(const py::object& a, const py::object& b, const py::object& c, bool threaded_default,
                   bool second_default) {
  MetaArgs r{0, threaded_default, second_default};
  if (a.is_none() || py::isinstance<py::bool_>(a)) {
    if (!a.is_none()) r.threaded = a.cast<bool>();
    if (!b.is_none()) r.second = b.cast<bool>();
    ANNVIL_CHECK(c.is_none(), "too many arguments: (d, threaded, ...) or (threaded, ...)");
    return r;
  }
  if (!py::isinstance<py::int_>(a)) ANNVIL_THROW(type, "d must be an int, got ", std::string(py::str(py::type::of(a))));
  int64_t d = a.cast<int64_t>();
  ANNVIL_CHECK(d > 0 && d < (int64_t(1) << 30), "dimension d must be positive, got ", d);
  r.d = int(d);
  if (!b.is_none()) r.threaded = b.cast<bool>();
  if (!c.is_none()) r.second = c.cast<bool>();
  return r;
}

template <class T>
IndexPtr member_at(const std::vector<IndexPtr>& v, int64_t i) {
  if (i < 0) i += int64_t(v.size());
  if (i < 0 || size_t(i) >= v.size()) throw py::index_error("member index out of range");
  return v[size_t(i)];
}

}  // namespace

void init_shards(py::module_& m) {
  py::class_<IndexShards, Index, std::shared_ptr<IndexShards>>(
      m, "IndexShards", py::dynamic_attr(),
      "Faiss's IndexShards: the database split over shard indexes searched together (see index_shards.h)")
      .def(py::init([](const py::object& a, const py::object& b, const py::object& c) {
             MetaArgs r = meta_args(a, b, c, false, true);
             return std::make_shared<IndexShards>(r.d, r.threaded, r.second);
           }),
           py::arg("d") = py::none(), py::arg("threaded") = py::none(), py::arg("successive_ids") = py::none())
      .def(
          "add_shard", [](IndexShards& self, IndexPtr s) { writing(self, [&] { self.add_shard(std::move(s)); }); },
          py::arg("index"))
      .def(
          "addIndex", [](IndexShards& self, IndexPtr s) { writing(self, [&] { self.add_shard(std::move(s)); }); },
          py::arg("index"))
      .def(
          "remove_shard", [](IndexShards& self, IndexPtr s) { writing(self, [&] { self.remove_shard(s.get()); }); },
          py::arg("index"))
      .def(
          "removeIndex", [](IndexShards& self, IndexPtr s) { writing(self, [&] { self.remove_shard(s.get()); }); },
          py::arg("index"))
      .def("sync_with_shard_indexes", [](IndexShards& self) { writing(self, [&] { self.sync_with_shards(); }); })
      .def("syncWithSubIndexes", [](IndexShards& self) { writing(self, [&] { self.sync_with_shards(); }); })
      .def("count", [](const IndexShards& self) { return self.shards.size(); })
      .def(
          "at", [](const IndexShards& self, int64_t i) { return member_at<Index>(self.shards, i); }, py::arg("i"))
      .def_readwrite("successive_ids", &IndexShards::successive_ids)
      .def_readwrite("threaded", &IndexShards::threaded)
      .def_property(
          "own_indices", [](const IndexShards&) { return false; }, [](IndexShards&, bool) {},
          "SWIG ownership flag in Faiss; the shards are reference counted here");

  py::class_<IndexShardsIVF, IndexShards, std::shared_ptr<IndexShardsIVF>>(
      m, "IndexShardsIVF", py::dynamic_attr(),
      "Faiss's IndexShardsIVF: IVF shards sharing one coarse quantizer (one coarse search per batch)")
      .def(py::init([](IndexPtr q, int64_t nlist, bool threaded, bool successive_ids) {
             ANNVIL_CHECK(nlist > 0, "nlist must be positive, got ", nlist);
             return std::make_shared<IndexShardsIVF>(std::move(q), size_t(nlist), threaded, successive_ids);
           }),
           py::arg("quantizer"), py::arg("nlist"), py::arg("threaded") = false, py::arg("successive_ids") = true)
      .def_readonly("quantizer", &IndexShardsIVF::quantizer)
      .def_readonly("nlist", &IndexShardsIVF::nlist);

  py::class_<IndexReplicas, Index, std::shared_ptr<IndexReplicas>>(
      m, "IndexReplicas", py::dynamic_attr(),
      "Faiss's IndexReplicas: copies of one database; a search splits the queries between the replicas")
      .def(py::init([](const py::object& a, const py::object& b, const py::object& c) {
             MetaArgs r = meta_args(a, b, c, true, false);
             return std::make_shared<IndexReplicas>(r.d, r.threaded);
           }),
           py::arg("d") = py::none(), py::arg("threaded") = py::none(), py::arg("_unused") = py::none())
      .def(
          "add_replica",
          [](IndexReplicas& self, IndexPtr s) { writing(self, [&] { self.add_replica(std::move(s)); }); },
          py::arg("index"))
      .def(
          "addIndex", [](IndexReplicas& self, IndexPtr s) { writing(self, [&] { self.add_replica(std::move(s)); }); },
          py::arg("index"))
      .def(
          "remove_replica",
          [](IndexReplicas& self, IndexPtr s) { writing(self, [&] { self.remove_replica(s.get()); }); },
          py::arg("index"))
      .def(
          "removeIndex", [](IndexReplicas& self, IndexPtr s) { writing(self, [&] { self.remove_replica(s.get()); }); },
          py::arg("index"))
      .def("syncWithSubIndexes", [](IndexReplicas& self) { writing(self, [&] { self.sync_with_replicas(); }); })
      .def("count", [](const IndexReplicas& self) { return self.replicas.size(); })
      .def(
          "at", [](const IndexReplicas& self, int64_t i) { return member_at<Index>(self.replicas, i); }, py::arg("i"))
      .def_readwrite("threaded", &IndexReplicas::threaded)
      .def_property(
          "own_indices", [](const IndexReplicas&) { return false; }, [](IndexReplicas&, bool) {},
          "SWIG ownership flag in Faiss; the replicas are reference counted here");
}

void init_ivf_extra(py::module_& m) {
  py::class_<MultiIndexQuantizer, Index, std::shared_ptr<MultiIndexQuantizer>>(
      m, "MultiIndexQuantizer", py::dynamic_attr(),
      "Faiss's inverted multi-index quantizer (IMI): ksub^M virtual centroids of a product quantizer")
      .def(py::init([](int d, int64_t M, int64_t nbits) {
             ANNVIL_CHECK(M > 0 && nbits > 0, "M and nbits must be positive");
             return std::make_shared<MultiIndexQuantizer>(d, size_t(M), size_t(nbits));
           }),
           py::arg("d"), py::arg("M"), py::arg("nbits"))
      .def_property(
          "pq", [](MultiIndexQuantizer& s) -> ProductQuantizer& { return s.pq; },
          [](MultiIndexQuantizer& s, const ProductQuantizer& q) {
            writing(s, [&] {
              ANNVIL_CHECK(q.d == s.pq.d && q.M == s.pq.M && q.nbits == s.pq.nbits,
                           "the product quantizer's (d, M, nbits) differ from the multi-index's");
              if (&q != &s.pq) s.pq = q;
              if (s.pq.is_trained) {  // a trained codebook makes the virtual centroids exist
                s.is_trained = true;
                s.ntotal = idx_t(1) << (s.pq.M * s.pq.nbits);
              }
            });
          },
          py::return_value_policy::reference_internal);
  py::class_<MultiIndexQuantizer2, MultiIndexQuantizer, std::shared_ptr<MultiIndexQuantizer2>>(
      m, "MultiIndexQuantizer2", py::dynamic_attr(),
      "MultiIndexQuantizer whose sub-space assignment goes through given indexes (one per sub-quantizer)")
      .def(py::init([](int d, int64_t nbits, IndexPtr a0, IndexPtr a1) {
             ANNVIL_CHECK(nbits > 0, "nbits must be positive");
             return std::make_shared<MultiIndexQuantizer2>(d, size_t(nbits), std::vector<IndexPtr>{a0, a1});
           }),
           py::arg("d"), py::arg("nbits"), py::arg("assign_index_0"), py::arg("assign_index_1"))
      .def(py::init([](int d, int64_t M, int64_t nbits, std::vector<IndexPtr> ai) {
             ANNVIL_CHECK(nbits > 0 && M > 0 && size_t(M) == ai.size(), "need M assign indexes");
             return std::make_shared<MultiIndexQuantizer2>(d, size_t(nbits), std::move(ai));
           }),
           py::arg("d"), py::arg("M"), py::arg("nbits"), py::arg("assign_indexes"))
      .def_property_readonly("assign_indexes", [](const MultiIndexQuantizer2& s) { return s.assign_indexes; });

  auto ivf = py::reinterpret_borrow<py::class_<IndexIVF, Index, std::shared_ptr<IndexIVF>>>(m.attr("IndexIVF"));
  ivf.def_property(
         "quantizer", [](const IndexIVF& s) { return s.quantizer; },
         [](IndexIVF& s, IndexPtr q) {
           writing(s, [&] {
             s.replace_quantizer(std::move(q));
             // IVF-PQ's precomputed table holds centroid terms: rebuild or drop it
             if (auto* pq = dynamic_cast<IndexIVFPQ*>(&s)) pq->precompute_table();
           });
         },
         "the coarse quantizer; a new one must have the same d (and nlist centroids before the next search)")
      .def(
          "_add_core",
          [](IndexIVF& self, const FloatArray& x, const py::object& ids, const IdArray& lists) {
            int64_t n = rows_of(x, self.d, "vectors");
            ANNVIL_CHECK(lists.ndim() == 1 && lists.shape(0) == n, "list numbers must be a 1-D array of n entries");
            IdArray ida;
            const int64_t* ip = nullptr;
            if (!ids.is_none()) {
              ida = ids.cast<IdArray>();
              ANNVIL_CHECK(ida.ndim() == 1 && ida.shape(0) == n, "ids must be a 1-D array of n entries");
              ip = ida.data();
            }
            const float* xp = x.data();
            const int64_t* lp = lists.data();
            writing(self, [&] { self.add_core(n, xp, ip, lp); });
          },
          py::arg("x"), py::arg("ids"), py::arg("list_nos"))
      .def(
          "_copy_subset_to",
          [](const IndexIVF& self, IndexIVF& other, int t, int64_t a1, int64_t a2) {
            ANNVIL_CHECK(&other != &self, "copy_subset_to: the destination must be another index");
            py::gil_scoped_release release;
            auto l1 = self.lock.read();
            auto l2 = other.lock.write();
            return self.copy_subset_to(other, t, a1, a2);
          },
          py::arg("other"), py::arg("subset_type"), py::arg("a1"), py::arg("a2"))
      .def(
          "_update_vectors",
          [](IndexIVF& self, const IdArray& ids, const FloatArray& x) {
            int64_t n = rows_of(x, self.d, "vectors");
            ANNVIL_CHECK(ids.ndim() == 1 && ids.shape(0) == n, "ids must be a 1-D array of n entries");
            const float* xp = x.data();
            const int64_t* ip = ids.data();
            writing(self, [&] { self.update_vectors(n, ip, xp); });
          },
          py::arg("ids"), py::arg("x"))
      .def(
          "_search_and_return_codes",
          [](const IndexIVF& self, const FloatArray& x, int64_t k, bool include_listnos,
             const SearchParameters* params) {
            int64_t n = rows_of(x, self.d, "queries");
            self.check_k(k);
            self.check_trained();
            const int64_t cs = int64_t(self.code_size + (include_listnos ? self.coarse_code_size() : 0));
            py::array_t<float> D({n, k});
            py::array_t<int64_t> I({n, k});
            py::array_t<uint8_t> C({n, k, cs});
            float* dp = D.mutable_data();
            int64_t* ip = I.mutable_data();
            uint8_t* cp = C.mutable_data();
            const float* xp = x.data();
            reading(self, [&] { self.search_and_return_codes(n, xp, k, dp, ip, cp, include_listnos, params); });
            return py::make_tuple(D, I, C);
          },
          py::arg("x"), py::arg("k"), py::arg("include_listnos") = false, py::arg("params") = nullptr)
      .def(
          "_permute_invlists",
          [](IndexIVF& self, const IdArray& perm) {
            ANNVIL_CHECK(perm.ndim() == 1 && size_t(perm.shape(0)) == self.nlist, "perm must hold nlist entries");
            const int64_t* pp = perm.data();
            writing(self, [&] { self.permute_invlists(pp); });
          },
          py::arg("perm"));

  // Faiss lets clients assign a trained codec to another index
  // (`index.pq = other.pq`, `index.sq = other.sq`): the codec is copied in,
  // and must encode the same way as the one it replaces when the index holds
  // codes already
  auto set_pq = [](ProductQuantizer& dst, const ProductQuantizer& src, idx_t ntotal) {
    ANNVIL_CHECK(src.d == dst.d && src.M == dst.M && src.nbits == dst.nbits,
                 "the product quantizer has (d, M, nbits) = (", src.d, ", ", src.M, ", ", src.nbits,
                 "), the index needs (", dst.d, ", ", dst.M, ", ", dst.nbits, ")");
    ANNVIL_CHECK(ntotal == 0 || &src == &dst,
                 "the codec of an index holding vectors cannot be replaced: reset() it first");
    if (&src != &dst) dst = src;
  };
  auto set_sq = [](ScalarQuantizer& dst, const ScalarQuantizer& src, idx_t ntotal) {
    ANNVIL_CHECK(src.d == dst.d && src.qtype == dst.qtype, "the scalar quantizer has d=", src.d, ", qtype ", src.qtype,
                 "; the index needs d=", dst.d, ", qtype ", dst.qtype);
    ANNVIL_CHECK(ntotal == 0 || &src == &dst,
                 "the codec of an index holding vectors cannot be replaced: reset() it first");
    if (&src != &dst) dst = src;
  };
  auto pqc = py::reinterpret_borrow<py::class_<IndexPQ, Index, std::shared_ptr<IndexPQ>>>(m.attr("IndexPQ"));
  pqc.def_property(
      "pq", [](IndexPQ& s) -> ProductQuantizer& { return s.pq; },
      [set_pq](IndexPQ& s, const ProductQuantizer& q) { writing(s, [&] { set_pq(s.pq, q, s.ntotal); }); },
      py::return_value_policy::reference_internal);
  auto ivpq =
      py::reinterpret_borrow<py::class_<IndexIVFPQ, IndexIVF, std::shared_ptr<IndexIVFPQ>>>(m.attr("IndexIVFPQ"));
  ivpq.def_property(
      "pq", [](IndexIVFPQ& s) -> ProductQuantizer& { return s.pq; },
      [set_pq](IndexIVFPQ& s, const ProductQuantizer& q) {
        writing(s, [&] {
          set_pq(s.pq, q, s.ntotal);
          if (s.is_trained && s.pq.is_trained) s.precompute_table();
        });
      },
      py::return_value_policy::reference_internal);
  auto sqc = py::reinterpret_borrow<py::class_<IndexScalarQuantizer, Index, std::shared_ptr<IndexScalarQuantizer>>>(
      m.attr("IndexScalarQuantizer"));
  sqc.def_property(
      "sq", [](IndexScalarQuantizer& s) -> ScalarQuantizer& { return s.sq; },
      [set_sq](IndexScalarQuantizer& s, const ScalarQuantizer& q) { writing(s, [&] { set_sq(s.sq, q, s.ntotal); }); },
      py::return_value_policy::reference_internal);
  auto ivsq =
      py::reinterpret_borrow<py::class_<IndexIVFScalarQuantizer, IndexIVF, std::shared_ptr<IndexIVFScalarQuantizer>>>(
          m.attr("IndexIVFScalarQuantizer"));
  ivsq.def_property(
      "sq", [](IndexIVFScalarQuantizer& s) -> ScalarQuantizer& { return s.sq; },
      [set_sq](IndexIVFScalarQuantizer& s, const ScalarQuantizer& q) {
        writing(s, [&] { set_sq(s.sq, q, s.ntotal); });
      },
      py::return_value_policy::reference_internal);

  ivf.def(
         "_locate_results",
         [](const IndexIVF& self, const FloatArray& x, const IdArray& I, const SearchParameters* params) {
           int64_t n = rows_of(x, self.d, "queries");
           ANNVIL_CHECK(I.ndim() == 2 && I.shape(0) == n, "labels must be (n, k)");
           int64_t k = I.shape(1);
           self.check_trained();
           py::array_t<int64_t> L({n, k}), O({n, k});
           int64_t* lp = L.mutable_data();
           int64_t* op = O.mutable_data();
           const float* xp = x.data();
           const int64_t* ip = I.data();
           reading(self, [&] { self.locate_results(n, xp, k, ip, params, lp, op); });
           return py::make_tuple(L, O);
         },
         py::arg("x"), py::arg("labels"), py::arg("params") = nullptr)
      .def("_get_invlist_range",
           [](const IndexIVF& self, int64_t i0, int64_t i1) {
             ANNVIL_CHECK(i0 >= 0 && i1 >= i0, "bad list range [", i0, ", ", i1, ")");
             return reading(self, [&] { return self.get_invlist_range(size_t(i0), size_t(i1)); });
           })
      .def("_set_invlist_range", [](IndexIVF& self, int64_t i0, int64_t i1, const InvertedLists& src) {
        ANNVIL_CHECK(i0 >= 0 && i1 >= i0, "bad list range [", i0, ", ", i1, ")");
        writing(self, [&] { self.set_invlist_range(size_t(i0), size_t(i1), src); });
      });

  // Faiss's IndexFlat::permute_entries: new vector i = old vector perm[i]
  auto flat = py::reinterpret_borrow<py::class_<IndexFlat, Index, std::shared_ptr<IndexFlat>>>(m.attr("IndexFlat"));
  flat.def(
      "_permute_entries",
      [](IndexFlat& self, const IdArray& perm) {
        ANNVIL_CHECK(perm.ndim() == 1 && perm.shape(0) == self.ntotal, "perm must hold ntotal=", self.ntotal,
                     " entries");
        const int64_t* pp = perm.data();
        writing(self, [&] { self.permute_entries(pp); });
      },
      py::arg("perm"));

  auto hnsw = py::reinterpret_borrow<py::class_<IndexHNSW, Index, std::shared_ptr<IndexHNSW>>>(m.attr("IndexHNSW"));
  hnsw.def(
      "_permute_entries",
      [](IndexHNSW& self, const IdArray& perm) {
        ANNVIL_CHECK(perm.ndim() == 1 && perm.shape(0) == self.ntotal, "perm must hold ntotal=", self.ntotal,
                     " entries");
        const int64_t* pp = perm.data();
        writing(self, [&] { hnsw_permute_entries(self, pp); });
      },
      py::arg("perm"));

  auto il = py::reinterpret_borrow<py::class_<InvertedLists, std::shared_ptr<InvertedLists>>>(m.attr("InvertedLists"));
  il.def(py::init([](int64_t nlist, int64_t code_size) {
           ANNVIL_CHECK(nlist >= 0 && code_size > 0, "need nlist >= 0 and code_size > 0");
           return std::make_shared<InvertedLists>(size_t(nlist), size_t(code_size));
         }),
         py::arg("nlist"), py::arg("code_size"))
      .def(
          "_add_entries",
          [](InvertedLists& self, int64_t l, const IdArray& ids, const ByteArray& codes) {
            ANNVIL_CHECK(l >= 0 && size_t(l) < self.nlist, "list number ", l, " out of range");
            int64_t n = length_of(ids, "ids");
            ANNVIL_CHECK(codes.size() == n * int64_t(self.code_size), "codes must hold n * code_size bytes");
            return self.add_entries(size_t(l), size_t(n), ids.data(), codes.data());
          },
          py::arg("list_no"), py::arg("ids"), py::arg("codes"))
      .def("reset", &InvertedLists::reset);
  il.def(
      "_permute_invlists",
      [](InvertedLists& self, const IdArray& perm) {
        ANNVIL_CHECK(perm.ndim() == 1 && size_t(perm.shape(0)) == self.nlist, "perm must hold nlist entries");
        self.permute_invlists(perm.data());
      },
      py::arg("perm"));
}

}  // namespace annvil_py
