// otel_audit_re2hold: RE2::Set matching that keeps the GIL.
//
// google-re2's Set.Match releases the GIL for every call. otel-audit's tier-1 prefilter calls
// it once per log record, on the application's thread, with a text of a few hundred bytes
// that RE2 scans in about a microsecond. Releasing the GIL there is a hand-off: any thread
// that wants the GIL (a request thread, the SDK's batch thread) takes it, and the logging
// thread waits until that thread lets go again, up to the interpreter's switch interval.
// Measured in otel-audit's benchmarks/bench_redaction.py. This module holds the GIL for
// short texts, as Python's own `re` does, and releases it for longer ones.
//
// "Short" is bounded by the worst case, not the typical one: a text crafted to thrash the
// many-match DFA's state cache costs 2-3.5 us a byte (against a few ns for a log line),
// so 512 bytes hold the GIL for about 1-2 ms, under the interpreter's own 5 ms switch
// interval; a 64 KiB text would hold it for 150 ms.
//
// The Python text is read through its UTF-8 form (no copy for ASCII strings). A match that
// RE2 cannot complete (DFA out of memory) raises RuntimeError: the caller must not take an
// incomplete answer for "no pattern present".

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <re2/re2.h>
#include <re2/set.h>

#include <cstdio>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <vector>

namespace {

// Texts of at least this many UTF-8 bytes are matched with the GIL released.
constexpr Py_ssize_t kReleaseAt = 512;

// Owns one reference; released on every exit, a C++ exception's included.
struct OwnedRef {
  PyObject* object;
  explicit OwnedRef(PyObject* o) : object(o) {}
  OwnedRef(const OwnedRef&) = delete;
  OwnedRef& operator=(const OwnedRef&) = delete;
  ~OwnedRef() { Py_XDECREF(object); }
};

struct SetObject {
  PyObject_HEAD
  re2::RE2::Set* set;
  Py_ssize_t size;
};

int Set_init_unguarded(SetObject* self, PyObject* args, PyObject* kwds) {
  static const char* kwlist[] = {"patterns", "max_mem", nullptr};
  PyObject* patterns = nullptr;
  long long max_mem = 8LL << 20;
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|L", const_cast<char**>(kwlist), &patterns,
                                   &max_mem)) {
    return -1;
  }
  if (max_mem <= 0) {
    PyErr_SetString(PyExc_ValueError, "max_mem must be positive");
    return -1;
  }
  if (self->set != nullptr) {
    PyErr_SetString(PyExc_RuntimeError, "Set is already initialised");
    return -1;
  }
  re2::RE2::Options options;
  options.set_max_mem(max_mem);
  options.set_log_errors(false);
  // Owned here until it is stored, so a C++ exception on the way cannot leak it.
  auto set = std::make_unique<re2::RE2::Set>(options, re2::RE2::UNANCHORED);
  OwnedRef iterator(PyObject_GetIter(patterns));
  if (iterator.object == nullptr) {
    return -1;
  }
  Py_ssize_t count = 0;
  while (true) {
    OwnedRef item(PyIter_Next(iterator.object));
    if (item.object == nullptr) {
      break;
    }
    Py_ssize_t length = 0;
    const char* text = PyUnicode_Check(item.object)
                           ? PyUnicode_AsUTF8AndSize(item.object, &length)
                           : nullptr;
    if (text == nullptr) {
      if (!PyErr_Occurred()) {
        PyErr_SetString(PyExc_TypeError, "patterns must be str");
      }
      return -1;
    }
    std::string error;
    if (set->Add(re2::StringPiece(text, static_cast<size_t>(length)), &error) < 0) {
      PyErr_Format(PyExc_ValueError, "pattern %zd is not valid RE2 syntax: %s", count,
                   error.c_str());
      return -1;
    }
    ++count;
  }
  if (PyErr_Occurred()) {
    return -1;
  }
  if (!set->Compile()) {
    PyErr_SetString(PyExc_ValueError, "the patterns do not fit in max_mem");
    return -1;
  }
  if (self->set != nullptr) {  // the pattern iterator ran Python code that initialised us
    PyErr_SetString(PyExc_RuntimeError, "Set is already initialised");
    return -1;
  }
  self->set = set.release();
  self->size = count;
  return 0;
}

// RE2 allocates with operator new: a std::bad_alloc must become a Python MemoryError, never
// unwind through the interpreter's C frames.
int Set_init(SetObject* self, PyObject* args, PyObject* kwds) {
  try {
    return Set_init_unguarded(self, args, kwds);
  } catch (const std::bad_alloc&) {
    PyErr_NoMemory();
  } catch (const std::exception& exc) {
    PyErr_SetString(PyExc_RuntimeError, exc.what());
  }
  return -1;
}

void Set_dealloc(SetObject* self) {
  delete self->set;
  Py_TYPE(self)->tp_free(reinterpret_cast<PyObject*>(self));
}

PyObject* Set_match(SetObject* self, PyObject* arg) {
  if (self->set == nullptr) {
    PyErr_SetString(PyExc_RuntimeError, "Set is not initialised");
    return nullptr;
  }
  if (!PyUnicode_Check(arg)) {
    PyErr_SetString(PyExc_TypeError, "match() takes a str");
    return nullptr;
  }
  Py_ssize_t length = 0;
  const char* text = PyUnicode_AsUTF8AndSize(arg, &length);  // lone surrogates raise here
  if (text == nullptr) {
    return nullptr;
  }
  std::vector<int> found;
  re2::RE2::Set::ErrorInfo info;
  info.kind = re2::RE2::Set::kNoError;
  bool matched = false;
  bool out_of_memory = false;
  char failure[256] = {0};  // no allocation in a handler that may run without the GIL
  re2::StringPiece piece(text, static_cast<size_t>(length));
  // `arg` is immutable and referenced by the caller for the whole call.
  PyThreadState* released = length >= kReleaseAt ? PyEval_SaveThread() : nullptr;
  try {
    matched = self->set->Match(piece, &found, &info);
  } catch (const std::bad_alloc&) {
    out_of_memory = true;
  } catch (const std::exception& exc) {
    const char* what = exc.what();
    std::snprintf(failure, sizeof failure, "%s",
                  (what != nullptr && what[0] != '\0') ? what : "RE2 raised a C++ exception");
  }
  if (released != nullptr) {
    PyEval_RestoreThread(released);
  }
  if (out_of_memory) {
    return PyErr_NoMemory();
  }
  if (failure[0] != '\0') {
    PyErr_SetString(PyExc_RuntimeError, failure);
    return nullptr;
  }
  if (!matched && info.kind != re2::RE2::Set::kNoError) {
    PyErr_Format(PyExc_RuntimeError, "RE2 could not complete the match (error kind %d)",
                 static_cast<int>(info.kind));
    return nullptr;
  }
  PyObject* out = PyList_New(static_cast<Py_ssize_t>(found.size()));
  if (out == nullptr) {
    return nullptr;
  }
  for (size_t i = 0; i < found.size(); ++i) {
    PyObject* index = PyLong_FromLong(found[i]);
    if (index == nullptr) {
      Py_DECREF(out);
      return nullptr;
    }
    PyList_SET_ITEM(out, static_cast<Py_ssize_t>(i), index);
  }
  return out;
}

PyObject* Set_len(SetObject* self, PyObject*) { return PyLong_FromSsize_t(self->size); }

PyMethodDef Set_methods[] = {
    {"match", reinterpret_cast<PyCFunction>(Set_match), METH_O,
     "match(text) -> list[int]: indexes of the patterns found in text, in no order."},
    {"pattern_count", reinterpret_cast<PyCFunction>(Set_len), METH_NOARGS,
     "pattern_count() -> int: how many patterns the set holds."},
    {nullptr, nullptr, 0, nullptr}};

PyTypeObject SetType = {PyVarObject_HEAD_INIT(nullptr, 0)};

PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "otel_audit_re2hold",
                          "RE2::Set matching that keeps the GIL for short texts.", -1,
                          nullptr};

}  // namespace

PyMODINIT_FUNC PyInit_otel_audit_re2hold(void) {
  SetType.tp_name = "otel_audit_re2hold.Set";
  SetType.tp_doc = "Set(patterns, max_mem=8 MiB): unanchored RE2 patterns matched at once.";
  SetType.tp_basicsize = sizeof(SetObject);
  SetType.tp_flags = Py_TPFLAGS_DEFAULT;
  SetType.tp_new = PyType_GenericNew;
  SetType.tp_init = reinterpret_cast<initproc>(Set_init);
  SetType.tp_dealloc = reinterpret_cast<destructor>(Set_dealloc);
  SetType.tp_methods = Set_methods;
  if (PyType_Ready(&SetType) < 0) {
    return nullptr;
  }
  PyObject* module = PyModule_Create(&module_def);
  if (module == nullptr) {
    return nullptr;
  }
  Py_INCREF(&SetType);
  if (PyModule_AddObject(module, "Set", reinterpret_cast<PyObject*>(&SetType)) < 0) {
    Py_DECREF(&SetType);
    Py_DECREF(module);
    return nullptr;
  }
  return module;
}
