#include "common.h"
#include "core/io.h"

namespace annvil_py {

using namespace annvil;

void init_io(py::module_& m) {
  m.def(
      "write_index",
      [](const Index& index, const std::string& path) { reading(index, [&] { write_index_file(index, path); }); },
      py::arg("index"), py::arg("path"));
  m.def(
      "read_index",
      [](const std::string& path, bool mmap, bool verify) {
        py::gil_scoped_release release;
        return read_index_file(path, mmap, verify);
      },
      py::arg("path"), py::arg("mmap") = false, py::arg("verify") = true);
  m.def(
      "serialize_index",
      [](const Index& index) {
        // written straight into the array's own buffer: one copy of the index
        std::unique_ptr<uint8_t[]> buf;
        size_t n = 0;
        reading(index, [&] {
          serialize_index_into(index, [&](size_t total) {
            buf.reset(new uint8_t[total]);  // not zeroed: every byte is written
            n = total;
            return buf.get();
          });
        });
        uint8_t* p = buf.release();
        py::capsule owner(p, [](void* q) { delete[] static_cast<uint8_t*>(q); });
        return py::array_t<uint8_t>({py::ssize_t(n)}, {py::ssize_t(1)}, p, owner);
      },
      py::arg("index"));
  m.def(
      "serialize_index_bytes",
      [](const Index& index) {
        // for pickling: written straight into a bytes object, which pickle then
        // copies into its output, as it would any bytes (one copy, not two)
        py::object out;
        reading(index, [&] {
          serialize_index_into(index, [&](size_t total) {
            py::gil_scoped_acquire gil;  // safe: a writer waiting for the lock never holds the GIL
            out = py::reinterpret_steal<py::object>(PyBytes_FromStringAndSize(nullptr, py::ssize_t(total)));
            if (!out) throw std::bad_alloc();
            return reinterpret_cast<uint8_t*>(PyBytes_AS_STRING(out.ptr()));
          });
        });
        return out;
      },
      py::arg("index"));
  m.def(
      "deserialize_index",
      [](const ByteArray& data) {
        if (data.ndim() != 1) ANNVIL_THROW(value, "serialized index must be a 1-D uint8 array");
        const uint8_t* p = data.data();
        size_t n = size_t(data.shape(0));
        py::gil_scoped_release release;
        return deserialize_index(p, n);
      },
      py::arg("data"));
  m.attr("FORMAT_VERSION") = kFormatVersion;
}

}  // namespace annvil_py
