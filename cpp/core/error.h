// One exception type for the whole core, thrown through macros that record
// where.  The bindings map `kind` to a Python exception class.
#pragma once
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>

namespace annvil {

enum class ErrorKind {
  value,        // bad argument value (dimension, k, ids...)   -> ValueError
  type,         // wrong kind of argument                        -> TypeError
  not_trained,  // used before train()                           -> RuntimeError
  file_format,  // truncated, corrupt or foreign index file      -> IndexFileError
  io,           // the OS refused a read or write                -> OSError
  interrupted,  // a signal arrived during a long computation    -> KeyboardInterrupt
  runtime,      // anything else                                 -> RuntimeError
};

// `func`, `file` and `line` say where the error was raised (the bindings expose
// them as the Python exception's `where` attribute); the message itself stays
// free of source locations, since it is written for the user.
class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& msg, const char* func = "", const char* file = "", int line = 0)
      : std::runtime_error(msg), kind_(kind), func_(func), file_(file), line_(line) {}
  ErrorKind kind() const { return kind_; }
  const char* func() const { return func_; }
  const char* file() const { return file_; }
  int line() const { return line_; }

 private:
  ErrorKind kind_;
  const char* func_;  // string literals (__func__, __FILE__): never dangling
  const char* file_;
  int line_;
};

namespace detail {
template <class... Args>
[[noreturn]] inline void throw_error(ErrorKind kind, const char* func, const char* file, int line, Args&&... args) {
  std::ostringstream os;
  (os << ... << args);
  throw Error(kind, os.str(), func, file, line);
}
}  // namespace detail

}  // namespace annvil

// Throw `kind` with a message built from the streamable arguments.
#define ANNVIL_THROW(kind, ...) \
  ::annvil::detail::throw_error(::annvil::ErrorKind::kind, __func__, __FILE__, __LINE__, __VA_ARGS__)
// User-facing precondition: `cond` false -> ValueError with the message.
#define ANNVIL_CHECK(cond, ...)                    \
  do {                                             \
    if (!(cond)) ANNVIL_THROW(value, __VA_ARGS__); \
  } while (0)
// Internal invariant: reports file and line, since it points at a bug.
#define ANNVIL_ASSERT(cond)                                                   \
  do {                                                                        \
    if (!(cond)) ANNVIL_THROW(runtime, "internal error: ", #cond, " failed"); \
  } while (0)
