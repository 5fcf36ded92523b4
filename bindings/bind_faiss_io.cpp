// Faiss's index file format (cpp/faiss_io.h): read and write, float and
// binary indexes.  read_index / deserialize_index dispatch here on their
// own when the bytes start with a Faiss fourcc (cpp/io.cpp); these entry
// points are what write_index(..., format="faiss") and the binary readers use.
#include "common.h"
#include "faiss_io.h"
#include "binary/index_binary.h"

namespace annvil_py {

using namespace annvil;

namespace {
py::array_t<uint8_t> to_array(const std::vector<uint8_t>& buf) {
  py::array_t<uint8_t> a(int64_t(buf.size()));
  if (!buf.empty()) std::memcpy(a.mutable_data(), buf.data(), buf.size());
  return a;
}
}  // namespace

void init_faiss_io(py::module_& m) {
  m.def(
      "faiss_write_index",
      [](const Index& index, const std::string& path) { reading(index, [&] { faiss_write_index_file(index, path); }); },
      py::arg("index"), py::arg("path"));
  m.def(
      "faiss_serialize_index",
      [](const Index& index) {
        std::vector<uint8_t> buf = reading(index, [&] { return faiss_serialize_index(index); });
        return to_array(buf);
      },
      py::arg("index"));
  m.def(
      "faiss_read_index",
      [](const std::string& path, bool mmap) {
        py::gil_scoped_release release;
        return faiss_read_index_file(path, mmap);
      },
      py::arg("path"), py::arg("mmap") = false);
  m.def(
      "faiss_deserialize_index",
      [](const ByteArray& data) {
        if (data.ndim() != 1) ANNVIL_THROW(value, "serialized index must be a 1-D uint8 array");
        const uint8_t* p = data.data();
        const size_t n = size_t(data.shape(0));
        py::gil_scoped_release release;
        return faiss_deserialize_index(p, n);
      },
      py::arg("data"));

  m.def(
      "faiss_write_index_binary",
      [](const IndexBinary& index, const std::string& path) {
        py::gil_scoped_release release;
        faiss_write_index_binary_file(index, path);
      },
      py::arg("index"), py::arg("path"));
  m.def(
      "faiss_serialize_index_binary",
      [](const IndexBinary& index) {
        std::vector<uint8_t> buf;
        {
          py::gil_scoped_release release;
          buf = faiss_serialize_index_binary(index);
        }
        return to_array(buf);
      },
      py::arg("index"));
  m.def(
      "faiss_read_index_binary",
      [](const std::string& path) {
        py::gil_scoped_release release;
        return faiss_read_index_binary_file(path);
      },
      py::arg("path"));
  m.def(
      "faiss_deserialize_index_binary",
      [](const ByteArray& data) {
        if (data.ndim() != 1) ANNVIL_THROW(value, "serialized index must be a 1-D uint8 array");
        const uint8_t* p = data.data();
        const size_t n = size_t(data.shape(0));
        py::gil_scoped_release release;
        return faiss_deserialize_index_binary(p, n);
      },
      py::arg("data"));

  // whether bytes (at least the first 4 of a file) start with a Faiss fourcc
  m.def(
      "is_faiss_data",
      [](const py::bytes& b, bool binary) {
        std::string s = b;
        const auto* p = reinterpret_cast<const uint8_t*>(s.data());
        return binary ? is_faiss_binary_index_data(p, s.size()) : is_faiss_index_data(p, s.size());
      },
      py::arg("head"), py::arg("binary") = false);
}

}  // namespace annvil_py
