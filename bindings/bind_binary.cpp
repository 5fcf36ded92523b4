// Bindings of the binary family (index_binary*.h, hamming.h): the raw
// methods python/annvil/binary.py wraps, the Hamming utilities and binary
// index files.  Codes arrive as C-contiguous uint8 (n, code_size) arrays,
// converted and checked by python/annvil/binary.py; the checks here only keep
// a direct call with a wrong shape from reading out of bounds.
#include "common.h"
#include "distances/hamming.h"
#include "binary/index_binary.h"
#include "binary/index_binary_hash.h"
#include "binary/index_binary_hnsw.h"
#include "binary/index_binary_ivf.h"
#include "core/io.h"

namespace annvil_py {

using namespace annvil;

namespace {

using I32Array = py::array_t<int32_t, py::array::c_style>;

// rows of an (n, code_size) uint8 matrix, checked
int64_t code_rows(const ByteArray& x, int64_t code_size, const char* what) {
  if (x.ndim() != 2) ANNVIL_THROW(value, what, " must be a 2-D uint8 array, got ", x.ndim(), " dimensions");
  if (x.shape(1) != code_size) ANNVIL_THROW(value, what, " has ", x.shape(1), " bytes per code, expected ", code_size);
  return x.shape(0);
}

int64_t cols_of(const ByteArray& b) {
  if (b.ndim() != 2) ANNVIL_THROW(value, "codes must be a 2-D uint8 array, got ", b.ndim(), " dimensions");
  return b.shape(1);
}

py::tuple range_result(const BinaryRangeResult& res) {
  py::array_t<int64_t> lims(int64_t(res.lims.size()));
  std::copy(res.lims.begin(), res.lims.end(), lims.mutable_data());
  py::array_t<int32_t> D(int64_t(res.distances.size()));
  std::copy(res.distances.begin(), res.distances.end(), D.mutable_data());
  py::array_t<int64_t> I(int64_t(res.labels.size()));
  std::copy(res.labels.begin(), res.labels.end(), I.mutable_data());
  return py::make_tuple(lims, D, I);
}

py::array_t<uint8_t> bytes_array(const std::vector<uint8_t>& buf) {
  py::array_t<uint8_t> a(int64_t(buf.size()));
  std::copy(buf.begin(), buf.end(), a.mutable_data());
  return a;
}

// a read-only (rows, cols) uint8 view of memory owned by `owner`
py::array_t<uint8_t> view_codes(const uint8_t* p, int64_t rows, int64_t cols, py::object owner) {
  py::array_t<uint8_t> a({rows, cols}, p, owner);
  py::detail::array_proxy(a.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
  return a;
}

}  // namespace

void init_binary(py::module_& m) {
  // ---- the base class: raw methods ----
  py::class_<IndexBinary, std::shared_ptr<IndexBinary>>(m, "IndexBinary", py::dynamic_attr())
      .def_readonly("d", &IndexBinary::d)
      .def_readonly("code_size", &IndexBinary::code_size)
      .def_property_readonly("ntotal", [](const IndexBinary& i) { return i.ntotal; })
      .def_property_readonly("metric_type", [](const IndexBinary& i) { return int(i.metric_type); })
      .def_readwrite("is_trained", &IndexBinary::is_trained)
      .def_readwrite("verbose", &IndexBinary::verbose)
      .def("_train",
           [](IndexBinary& self, const ByteArray& x) {
             const int64_t n = code_rows(x, self.code_size, "training vectors");
             const uint8_t* xp = x.data();
             py::gil_scoped_release release;
             self.train(n, xp);
           })
      .def("_add",
           [](IndexBinary& self, const ByteArray& x) {
             const int64_t n = code_rows(x, self.code_size, "vectors");
             self.check_trained();
             const uint8_t* xp = x.data();
             py::gil_scoped_release release;
             self.add(n, xp);
           })
      .def("_add_with_ids",
           [](IndexBinary& self, const ByteArray& x, const IdArray& ids) {
             const int64_t n = code_rows(x, self.code_size, "vectors");
             if (length_of(ids, "ids") != n) ANNVIL_THROW(value, "got ", ids.shape(0), " ids for ", n, " vectors");
             self.check_trained();
             const uint8_t* xp = x.data();
             const int64_t* idp = ids.data();
             py::gil_scoped_release release;
             self.add_with_ids(n, xp, idp);
           })
      .def(
          "_search",
          [](const IndexBinary& self, const ByteArray& x, int64_t k, const SearchParameters* params) {
            const int64_t n = code_rows(x, self.code_size, "queries");
            self.check_k(k);
            self.check_trained();
            py::array_t<int32_t> D({n, k});
            py::array_t<int64_t> I({n, k});
            int32_t* dp = D.mutable_data();
            int64_t* ip = I.mutable_data();
            const uint8_t* xp = x.data();
            {
              py::gil_scoped_release release;
              self.search(n, xp, k, dp, ip, params);
            }
            return py::make_tuple(D, I);
          },
          py::arg("x"), py::arg("k"), py::arg("params") = nullptr)
      .def(
          "_range_search",
          [](const IndexBinary& self, const ByteArray& x, int radius, const SearchParameters* params) {
            const int64_t n = code_rows(x, self.code_size, "queries");
            self.check_trained();
            BinaryRangeResult res;
            const uint8_t* xp = x.data();
            {
              py::gil_scoped_release release;
              self.range_search(n, xp, radius, &res, params);
            }
            return range_result(res);
          },
          py::arg("x"), py::arg("radius"), py::arg("params") = nullptr)
      .def("_reconstruct",
           [](const IndexBinary& self, int64_t key) {
             py::array_t<uint8_t> out(self.code_size);
             self.reconstruct(key, out.mutable_data());
             return out;
           })
      .def("_reconstruct_n",
           [](const IndexBinary& self, int64_t i0, int64_t ni) {
             ANNVIL_CHECK(i0 >= 0 && ni >= 0 && i0 + ni <= self.ntotal, "reconstruct_n(", i0, ", ", ni,
                          ") is out of range: codes [0, ntotal=", self.ntotal, ") are stored");
             py::array_t<uint8_t> out({ni, int64_t(self.code_size)});
             uint8_t* op = out.mutable_data();
             {
               py::gil_scoped_release release;
               self.reconstruct_n(i0, ni, op);
             }
             return out;
           })
      .def("_remove_ids",
           [](IndexBinary& self, const IDSelector& sel) {
             py::gil_scoped_release release;
             return self.remove_ids(sel);
           })
      .def("reset",
           [](IndexBinary& self) {
             py::gil_scoped_release release;
             self.reset();
           })
      .def("memory_usage", &IndexBinary::memory_usage)
      .def_property_readonly("_type_tag", &IndexBinary::type_tag);

  // ---- flat ----
  py::class_<IndexBinaryFlat, IndexBinary, std::shared_ptr<IndexBinaryFlat>>(m, "IndexBinaryFlat", py::dynamic_attr())
      .def(py::init<int>(), py::arg("d"))
      .def_readwrite("use_heap", &IndexBinaryFlat::use_heap)
      .def_readwrite("query_batch_size", &IndexBinaryFlat::query_batch_size)
      .def_property_readonly("xb", [](py::object self) {
        // the stored codes, ntotal * code_size bytes (read-only view)
        const IndexBinaryFlat& idx = self.cast<const IndexBinaryFlat&>();
        py::array_t<uint8_t> a(int64_t(idx.ntotal) * idx.code_size, idx.xb.data(), self);
        py::detail::array_proxy(a.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
        return a;
      });

  // ---- ids ----
  py::class_<IndexBinaryIDMap, IndexBinary, std::shared_ptr<IndexBinaryIDMap>>(m, "IndexBinaryIDMap",
                                                                               py::dynamic_attr())
      .def(py::init<IndexBinaryPtr>(), py::arg("index"))
      .def_readonly("index", &IndexBinaryIDMap::index)
      .def_property_readonly("id_map", [](const IndexBinaryIDMap& self) {
        py::array_t<int64_t> a(int64_t(self.id_map.size()));
        std::copy(self.id_map.begin(), self.id_map.end(), a.mutable_data());
        return a;
      });
  py::class_<IndexBinaryIDMap2, IndexBinaryIDMap, std::shared_ptr<IndexBinaryIDMap2>>(m, "IndexBinaryIDMap2",
                                                                                      py::dynamic_attr())
      .def(py::init<IndexBinaryPtr>(), py::arg("index"))
      .def("construct_rev_map", &IndexBinaryIDMap2::construct_rev_map);

  py::class_<IndexBinaryFromFloat, IndexBinary, std::shared_ptr<IndexBinaryFromFloat>>(m, "IndexBinaryFromFloat",
                                                                                       py::dynamic_attr())
      .def(py::init<IndexPtr>(), py::arg("index"))
      .def_readonly("index", &IndexBinaryFromFloat::index);

  // ---- IVF ----
  py::class_<IndexBinaryIVF, IndexBinary, std::shared_ptr<IndexBinaryIVF>>(m, "IndexBinaryIVF", py::dynamic_attr())
      .def(py::init<IndexBinaryPtr, int, size_t>(), py::arg("quantizer"), py::arg("d"), py::arg("nlist"))
      .def_readonly("quantizer", &IndexBinaryIVF::quantizer)
      .def_readonly("nlist", &IndexBinaryIVF::nlist)
      .def_readonly("invlists", &IndexBinaryIVF::invlists)
      .def_property(
          "nprobe", [](const IndexBinaryIVF& s) { return s.nprobe; },
          [](IndexBinaryIVF& s, int64_t v) {
            ANNVIL_CHECK(v > 0, "nprobe must be at least 1, got ", v);
            s.nprobe = size_t(v);
          })
      .def_property(
          "max_codes", [](const IndexBinaryIVF& s) { return s.max_codes; },
          [](IndexBinaryIVF& s, int64_t v) {
            ANNVIL_CHECK(v >= 0, "max_codes must be non-negative (0: no limit), got ", v);
            s.max_codes = size_t(v);
          })
      .def_readwrite("cp", &IndexBinaryIVF::cp)
      .def_readwrite("use_heap", &IndexBinaryIVF::use_heap)
      .def_readwrite("per_invlist_search", &IndexBinaryIVF::per_invlist_search)
      .def_property_readonly("direct_map_type", [](const IndexBinaryIVF& s) { return s.direct_map_type; })
      .def("make_direct_map", &IndexBinaryIVF::make_direct_map, py::arg("new_maintain_direct_map") = true)
      .def("set_direct_map_type", &IndexBinaryIVF::set_direct_map_type, py::arg("type"))
      .def("get_list_size",
           [](const IndexBinaryIVF& s, int64_t l) {
             ANNVIL_CHECK(l >= 0, "list number must be non-negative");
             return s.get_list_size(size_t(l));
           })
      .def(
          "merge_from",
          [](IndexBinaryIVF& self, IndexBinaryIVF& other, int64_t add_id) {
            py::gil_scoped_release release;
            self.merge_from(other, add_id);
          },
          py::arg("other"), py::arg("add_id") = 0)
      .def(
          "_search_preassigned",
          [](const IndexBinaryIVF& self, const ByteArray& x, int64_t k, const IdArray& keys,
             const SearchParameters* params) {
            const int64_t n = code_rows(x, self.code_size, "queries");
            self.check_k(k);
            self.check_trained();
            if (keys.ndim() != 2 || keys.shape(0) != n) ANNVIL_THROW(value, "assign must be an (n, nprobe) array");
            const size_t np = size_t(keys.shape(1));
            size_t np_ignored, mc;
            self.resolve_params(params, &np_ignored, &mc);
            py::array_t<int32_t> D({n, k});
            py::array_t<int64_t> I({n, k});
            int32_t* dp = D.mutable_data();
            int64_t* ip = I.mutable_data();
            const uint8_t* xp = x.data();
            const int64_t* kp = keys.data();
            {
              py::gil_scoped_release release;
              self.search_preassigned(n, xp, k, kp, np, mc, params ? params->sel : nullptr, dp, ip);
            }
            return py::make_tuple(D, I);
          },
          py::arg("x"), py::arg("k"), py::arg("assign"), py::arg("params") = nullptr)
      .def(
          "_range_search_preassigned",
          [](const IndexBinaryIVF& self, const ByteArray& x, int radius, const IdArray& keys,
             const SearchParameters* params) {
            const int64_t n = code_rows(x, self.code_size, "queries");
            self.check_trained();
            if (keys.ndim() != 2 || keys.shape(0) != n) ANNVIL_THROW(value, "assign must be an (n, nprobe) array");
            const size_t np = size_t(keys.shape(1));
            size_t np_ignored, mc;
            self.resolve_params(params, &np_ignored, &mc);
            BinaryRangeResult res;
            const uint8_t* xp = x.data();
            const int64_t* kp = keys.data();
            {
              py::gil_scoped_release release;
              self.range_search_preassigned(n, xp, radius, kp, np, mc, params ? params->sel : nullptr, &res);
            }
            return range_result(res);
          },
          py::arg("x"), py::arg("radius"), py::arg("assign"), py::arg("params") = nullptr)
      .def("_add_preassigned",
           [](IndexBinaryIVF& self, const ByteArray& x, const IdArray& list_nos, const IdArray& ids) {
             const int64_t n = code_rows(x, self.code_size, "vectors");
             if (length_of(list_nos, "list_nos") != n || length_of(ids, "ids") != n)
               ANNVIL_THROW(value, "list_nos and ids need one entry per vector");
             self.check_trained();
             const uint8_t* xp = x.data();
             const int64_t* lp = list_nos.data();
             const int64_t* ip = ids.data();
             py::gil_scoped_release release;
             self.add_preassigned(n, xp, lp, ip);
           });

  // ---- HNSW ----
  py::class_<IndexBinaryHNSW, IndexBinary, std::shared_ptr<IndexBinaryHNSW>>(m, "IndexBinaryHNSW", py::dynamic_attr())
      .def(py::init<int, int>(), py::arg("d"), py::arg("M") = 32)
      .def_property_readonly(
          "hnsw", [](IndexBinaryHNSW& s) -> HNSW& { return s.hnsw; }, py::return_value_policy::reference_internal)
      .def_property_readonly("codes", [](py::object self) {
        const IndexBinaryHNSW& idx = self.cast<const IndexBinaryHNSW&>();
        return view_codes(idx.codes.data(), int64_t(idx.ntotal), idx.code_size, self);
      });

  // ---- hashes ----
  py::class_<IndexBinaryHashStats>(m, "IndexBinaryHashStats",
                                   "Faiss's IndexBinaryHashStats: counters of every binary hash-index search")
      .def_property_readonly("nq", [](const IndexBinaryHashStats& s) { return s.nq.load(); })
      .def_property_readonly(
          "n0", [](const IndexBinaryHashStats& s) { return s.n0.load(); }, "hash-table lookups")
      .def_property_readonly(
          "nlist", [](const IndexBinaryHashStats& s) { return s.nlist.load(); }, "non-empty buckets visited")
      .def_property_readonly(
          "ndis", [](const IndexBinaryHashStats& s) { return s.ndis.load(); }, "distances computed")
      .def("reset", &IndexBinaryHashStats::reset);
  m.attr("indexBinaryHash_stats") = py::cast(&indexBinaryHash_stats, py::return_value_policy::reference);

  auto nflip_setter = [](int& field, int v) {
    ANNVIL_CHECK(v >= 0, "nflip must be non-negative, got ", v);
    field = v;
  };
  py::class_<IndexBinaryHash, IndexBinary, std::shared_ptr<IndexBinaryHash>>(m, "IndexBinaryHash", py::dynamic_attr())
      .def(py::init<int, int>(), py::arg("d"), py::arg("b"))
      .def_readonly("b", &IndexBinaryHash::b)
      .def_property(
          "nflip", [](const IndexBinaryHash& s) { return s.nflip; },
          [nflip_setter](IndexBinaryHash& s, int v) { nflip_setter(s.nflip, v); })
      .def("hashtable_size", &IndexBinaryHash::hashtable_size);
  py::class_<IndexBinaryMultiHash, IndexBinary, std::shared_ptr<IndexBinaryMultiHash>>(m, "IndexBinaryMultiHash",
                                                                                       py::dynamic_attr())
      .def(py::init<int, int, int>(), py::arg("d"), py::arg("nhash"), py::arg("b"))
      .def_readonly("b", &IndexBinaryMultiHash::b)
      .def_readonly("nhash", &IndexBinaryMultiHash::nhash)
      .def_readonly("storage", &IndexBinaryMultiHash::storage)
      .def_property(
          "nflip", [](const IndexBinaryMultiHash& s) { return s.nflip; },
          [nflip_setter](IndexBinaryMultiHash& s, int v) { nflip_setter(s.nflip, v); })
      .def("hashtable_size", &IndexBinaryMultiHash::hashtable_size);

  // ---- Hamming utilities (arrays checked by python/annvil/binary.py) ----
  m.def("_hammings", [](const ByteArray& a, const ByteArray& b) {
    const int64_t cs = cols_of(b), na = code_rows(a, cs, "a"), nb = b.shape(0);
    py::array_t<int32_t> dis({na, nb});
    int32_t* dp = dis.mutable_data();
    const uint8_t *ap = a.data(), *bp = b.data();
    py::gil_scoped_release release;
    hammings(ap, bp, size_t(na), size_t(nb), size_t(cs), dp);
    return dis;
  });
  m.def("_hamming_knn", [](const ByteArray& a, const ByteArray& b, int64_t k) {
    const int64_t cs = cols_of(b), na = code_rows(a, cs, "a"), nb = b.shape(0);
    ANNVIL_CHECK(k > 0, "k must be positive, got ", k);
    py::array_t<int32_t> D({na, k});
    py::array_t<int64_t> I({na, k});
    int32_t* dp = D.mutable_data();
    int64_t* ip = I.mutable_data();
    const uint8_t *ap = a.data(), *bp = b.data();
    {
      py::gil_scoped_release release;
      hamming_knn(size_t(na), ap, size_t(nb), bp, size_t(cs), size_t(k), dp, ip);
    }
    return py::make_tuple(D, I);
  });
  m.def("_generalized_hammings_knn", [](const ByteArray& a, const ByteArray& b, int64_t k) {
    const int64_t cs = cols_of(b), na = code_rows(a, cs, "a"), nb = b.shape(0);
    ANNVIL_CHECK(k > 0, "k must be positive, got ", k);
    py::array_t<int32_t> D({na, k});
    py::array_t<int64_t> I({na, k});
    int32_t* dp = D.mutable_data();
    int64_t* ip = I.mutable_data();
    const uint8_t *ap = a.data(), *bp = b.data();
    {
      py::gil_scoped_release release;
      generalized_hammings_knn(ap, bp, size_t(na), size_t(nb), size_t(cs), size_t(k), dp, ip);
    }
    return py::make_tuple(D, I);
  });
  m.def("_hamming_count_thres", [](const ByteArray& a, const ByteArray& b, int ht) {
    const int64_t cs = cols_of(b), na = code_rows(a, cs, "a"), nb = b.shape(0);
    const uint8_t *ap = a.data(), *bp = b.data();
    py::gil_scoped_release release;
    return hamming_count_thres(ap, bp, size_t(na), size_t(nb), ht, size_t(cs));
  });
  m.def("_crosshamming_count_thres", [](const ByteArray& a, int ht) {
    const int64_t cs = cols_of(a), na = code_rows(a, cs, "codes");
    const uint8_t* ap = a.data();
    py::gil_scoped_release release;
    return crosshamming_count_thres(ap, size_t(na), ht, size_t(cs));
  });
  m.def("_match_hamming_thres", [](const ByteArray& a, const ByteArray& b, int ht) {
    const int64_t cs = cols_of(b), na = code_rows(a, cs, "a"), nb = b.shape(0);
    const uint8_t *ap = a.data(), *bp = b.data();
    size_t count;
    std::vector<int64_t> idx;
    std::vector<int32_t> dis;
    {
      py::gil_scoped_release release;
      count = hamming_count_thres(ap, bp, size_t(na), size_t(nb), ht, size_t(cs));
      idx.resize(2 * count);
      dis.resize(count);
      match_hamming_thres(ap, bp, size_t(na), size_t(nb), ht, size_t(cs), idx.data(), dis.data());
    }
    py::array_t<int64_t> ia({int64_t(count), int64_t(2)});
    std::copy(idx.begin(), idx.end(), ia.mutable_data());
    py::array_t<int32_t> da(static_cast<int64_t>(count));
    std::copy(dis.begin(), dis.end(), da.mutable_data());
    return py::make_tuple(ia, da);
  });
  m.def("_bitvec_shuffle", [](const ByteArray& a, const I32Array& order) {
    if (a.ndim() != 2 || order.ndim() != 1) ANNVIL_THROW(value, "bitvec_shuffle: a must be 2-D, order 1-D");
    const size_t n = size_t(a.shape(0)), da = size_t(a.shape(1)) * 8, db = size_t(order.shape(0));
    py::array_t<uint8_t> b({int64_t(n), int64_t(db / 8)});
    bitvec_shuffle(n, da, db, order.data(), a.data(), b.mutable_data());
    return b;
  });
  m.def("_binary_to_real", [](const ByteArray& a, int64_t d) {
    const int64_t n = code_rows(a, d / 8, "codes");
    ANNVIL_CHECK(d > 0 && d % 8 == 0, "d must be a positive multiple of 8, got ", d);
    py::array_t<float> x({n, d});
    float* xp = x.mutable_data();
    const uint8_t* ap = a.data();
    py::gil_scoped_release release;
    binary_to_real(size_t(n), size_t(d), ap, xp);
    return x;
  });
  m.def("_real_to_binary", [](const FloatArray& x) {
    if (x.ndim() != 2 || x.shape(1) % 8 != 0)
      ANNVIL_THROW(value, "real_to_binary needs an (n, d) float array with d a multiple of 8");
    const int64_t n = x.shape(0), d = x.shape(1);
    py::array_t<uint8_t> c({n, d / 8});
    real_to_binary(size_t(n), size_t(d), x.data(), c.mutable_data());
    return c;
  });

  // ---- files ----
  m.def(
      "write_index_binary",
      [](const IndexBinary& index, const std::string& path) {
        py::gil_scoped_release release;
        write_index_binary_file(index, path);
      },
      py::arg("index"), py::arg("path"));
  m.def(
      "read_index_binary",
      [](const std::string& path, bool mmap, bool verify) {
        py::gil_scoped_release release;
        return read_index_binary_file(path, mmap, verify);
      },
      py::arg("path"), py::arg("mmap") = false, py::arg("verify") = true);
  m.def(
      "serialize_index_binary",
      [](const IndexBinary& index) {
        std::vector<uint8_t> buf;
        {
          py::gil_scoped_release release;
          buf = serialize_index_binary(index);
        }
        return bytes_array(buf);
      },
      py::arg("index"));
  m.def(
      "deserialize_index_binary",
      [](const ByteArray& data) {
        if (data.ndim() != 1) ANNVIL_THROW(value, "serialized index must be a 1-D uint8 array");
        const uint8_t* p = data.data();
        const size_t n = size_t(data.shape(0));
        py::gil_scoped_release release;
        return deserialize_index_binary(p, n);
      },
      py::arg("data"));
}

}  // namespace annvil_py
