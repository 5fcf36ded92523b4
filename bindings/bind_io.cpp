#include "common.h"
#include "io.h"

namespace annvil_py {

using namespace annvil;

void init_io(py::module_& m) {
  m.def("write_index", [](const Index& index, const std::string& path) {
    reading(index, [&] { write_index_file(index, path); });
  }, py::arg("index"), py::arg("path"));
  m.def("read_index", [](const std::string& path, bool mmap, bool verify) {
    py::gil_scoped_release release;
    return read_index_file(path, mmap, verify);
  }, py::arg("path"), py::arg("mmap") = false, py::arg("verify") = true);
  m.def("serialize_index", [](const Index& index) {
    std::vector<uint8_t> buf;
    buf = reading(index, [&] { return serialize_index(index); });
    py::array_t<uint8_t> a(int64_t(buf.size()));
    std::copy(buf.begin(), buf.end(), a.mutable_data());
    return a;
  }, py::arg("index"));
  m.def("deserialize_index", [](const ByteArray& data) {
    if (data.ndim() != 1) ANNVIL_THROW(value, "serialized index must be a 1-D uint8 array");
    const uint8_t* p = data.data();
    size_t n = size_t(data.shape(0));
    py::gil_scoped_release release;
    return deserialize_index(p, n);
  }, py::arg("data"));
  m.attr("FORMAT_VERSION") = kFormatVersion;
}

}  // namespace annvil_py
