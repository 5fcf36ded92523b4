// Faiss's index file format, read and written (faiss/impl/index_read.cpp and
// index_write.cpp describe it; this is an independent implementation).
//
// A Faiss file is one index record: a 4-byte type code (fourcc, e.g. "IxF2"
// for IndexFlatL2) followed by the fields of the class, parents first, with
// no padding, all little endian:
//   index header   i32 d, i64 ntotal, i64 dummy, i64 dummy, u8 is_trained,
//                  i32 metric_type, then f32 metric_arg when metric_type > 1
//   vector<T>      u64 element count, then the raw elements
//   nested index   its own record (the quantizer of an IVF, a wrapped index);
//                  "null" stands for a missing one
// IVF lists are "ilar" (ArrayInvertedLists: sizes, then each non-empty
// list's codes and ids) or "ilbl" (BlockInvertedLists of the fast-scan
// indexes: per list the ids, then the codes in 4-bit blocks of bbs vectors).
//
// Reading maps each Faiss class onto the annvil index that computes the same
// thing (IndexFlatL2 -> IndexFlatL2, IndexHNSWFlat -> IndexHNSWFlat whose
// graph is converted to annvil's layout, ...).  Every count, size, offset,
// level and neighbour id read from the file is checked against the bytes
// left and against the other fields before it is used, so a truncated or
// corrupted file raises an Error of kind file_format (IndexFileError), never
// a crash.  A fourcc annvil has no counterpart for raises the same error,
// naming the Faiss class ("IndexNSGFlat (fourcc INSf) is not supported").
//
// mmap: annvil arrays that hold Faiss's bytes unchanged (the float vectors of
// IndexFlat and HNSW-Flat storage, the codes of IndexPQ, IndexScalarQuantizer
// and HNSW-SQ/PQ storage) view the mapped file when they are aligned for
// their element type; everything that has to be converted (HNSW graphs,
// inverted lists, fast-scan blocks) or is misaligned is copied.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/index.h"

namespace annvil {

struct IndexBinary;

// Whether the bytes start with a fourcc of a Faiss index (float or binary).
bool is_faiss_index_data(const uint8_t* data, size_t n);
bool is_faiss_binary_index_data(const uint8_t* data, size_t n);
// The Faiss class of a fourcc ("IndexFlatL2"), or "" when unknown.
std::string faiss_class_of_fourcc(uint32_t h);

// keep: owns the bytes when mapped is true (views into them may outlive the call)
IndexPtr faiss_deserialize_index(const uint8_t* data, size_t n, std::shared_ptr<const void> keep = nullptr,
                                 bool mapped = false);
IndexPtr faiss_read_index_file(const std::string& path, bool mmap);
std::vector<uint8_t> faiss_serialize_index(const Index& index);
// Atomic: written to a temporary file, fsynced, renamed over path.
void faiss_write_index_file(const Index& index, const std::string& path);

std::shared_ptr<IndexBinary> faiss_deserialize_index_binary(const uint8_t* data, size_t n);
std::shared_ptr<IndexBinary> faiss_read_index_binary_file(const std::string& path);
std::vector<uint8_t> faiss_serialize_index_binary(const IndexBinary& index);
void faiss_write_index_binary_file(const IndexBinary& index, const std::string& path);

}  // namespace annvil
