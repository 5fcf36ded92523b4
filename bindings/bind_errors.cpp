// Maps annvil::Error kinds to Python exceptions.  The classes subclass both
// the specific builtin (ValueError, TypeError) and RuntimeError, because Faiss
// raises RuntimeError for most bad input and drop-in code catches that.
#include <cstring>

#include "common.h"
#include "core/interrupt.h"

namespace annvil_py {

namespace {
PyObject* new_exc(py::module_& m, const char* name, PyObject* bases, const char* doc) {
  std::string full = std::string("annvil.") + name;
  PyObject* e = PyErr_NewExceptionWithDoc(full.c_str(), doc, bases, nullptr);
  if (!e) throw py::error_already_set();
  m.attr(name) = py::handle(e);
  return e;
}
PyObject *g_base, *g_value, *g_type, *g_not_trained, *g_file;
}  // namespace

void init_errors(py::module_& m) {
  g_base = new_exc(m, "AnnvilError", PyExc_RuntimeError, "Base class of annvil's errors (a RuntimeError).");
  g_value = new_exc(m, "InvalidArgumentError", py::make_tuple(py::handle(g_base), py::handle(PyExc_ValueError)).ptr(),
                    "A bad argument: wrong dimension, k, ids, NaN... (a ValueError and a RuntimeError).");
  g_type = new_exc(m, "InvalidTypeError", py::make_tuple(py::handle(g_base), py::handle(PyExc_TypeError)).ptr(),
                   "An argument of the wrong kind (a TypeError and a RuntimeError).");
  g_not_trained = new_exc(m, "NotTrainedError", g_base, "The index must be trained first (a RuntimeError).");
  g_file = new_exc(m, "IndexFileError", py::make_tuple(py::handle(g_base), py::handle(PyExc_ValueError)).ptr(),
                   "A truncated, corrupt or foreign index file (a ValueError and a RuntimeError).");
  // Long computations poll this from the calling thread (which released the GIL).
  annvil::set_interrupt_hook([]() -> bool {
    py::gil_scoped_acquire acquire;
    if (PyErr_CheckSignals() == 0) return false;
    PyErr_Clear();  // re-raised as KeyboardInterrupt by the translator below
    return true;
  });
  // keep the new references alive for the process lifetime (module attributes hold them too)
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const annvil::Error& e) {
      PyObject* cls = g_base;
      switch (e.kind()) {
        case annvil::ErrorKind::value:
          cls = g_value;
          break;
        case annvil::ErrorKind::type:
          cls = g_type;
          break;
        case annvil::ErrorKind::not_trained:
          cls = g_not_trained;
          break;
        case annvil::ErrorKind::file_format:
          cls = g_file;
          break;
        case annvil::ErrorKind::io:
          cls = PyExc_OSError;
          break;
        case annvil::ErrorKind::interrupted:
          cls = PyExc_KeyboardInterrupt;
          break;
        default:
          cls = g_base;
          break;
      }
      // messages may quote bytes from a corrupt file: decode leniently
      const char* msg = e.what();
      PyObject* text = PyUnicode_DecodeUTF8(msg, Py_ssize_t(std::strlen(msg)), "replace");
      PyErr_SetObject(cls, text);
      Py_XDECREF(text);
      // record where the core raised it: e.where == "func (file.cpp:123)"
      PyObject *type, *value, *tb;
      PyErr_Fetch(&type, &value, &tb);
      PyErr_NormalizeException(&type, &value, &tb);
      if (value && e.line() > 0) {
        const char* file = std::strrchr(e.file(), '/');
        file = file ? file + 1 : e.file();
        std::string where = std::string(e.func()) + " (" + file + ":" + std::to_string(e.line()) + ")";
        PyObject* w = PyUnicode_FromString(where.c_str());
        if (w && PyObject_SetAttrString(value, "where", w) != 0) PyErr_Clear();
        Py_XDECREF(w);
      }
      PyErr_Restore(type, value, tb);
    }
  });
}

}  // namespace annvil_py
