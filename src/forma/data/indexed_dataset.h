// Token datasets in Megatron-LM's indexed layout (PREFIX.bin + PREFIX.idx, "MMIDIDX"), so that data
// prepared by forma trains in Megatron and data prepared by Megatron's preprocess_data.py trains here.
//
// PREFIX.bin: the token ids of every sequence, back to back, in the dtype named by the index.
// PREFIX.idx (all little-endian):
//   9 bytes  magic "MMIDIDX\0\0"
//   u64      version = 1
//   u8       dtype code (1 uint8, 2 int8, 3 int16, 4 int32, 5 int64, 6 float64, 7 float32, 8 uint16)
//   u64      sequence count S
//   u64      document count D (= number of documents + 1: it counts the entries of document_indices)
//   i32[S]   sequence lengths, in tokens
//   i64[S]   sequence pointers, byte offsets into .bin
//   i64[D]   document indices: document d is sequences [doc[d], doc[d+1]); doc[0] = 0, doc[D-1] = S
//   (i8[S]   sequence modes, only in Megatron's multimodal datasets; accepted and ignored)
// forma writes one sequence per document (as preprocess_data.py does without sentence splitting).
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "forma/core/files.h"

namespace forma::data {

enum class TokenDType : uint8_t {
  uint8 = 1, int8 = 2, int16 = 3, int32 = 4, int64 = 5, float64 = 6, float32 = 7, uint16 = 8
};

// Megatron's rule: uint16 when every id fits below 65500, else int32.
TokenDType dtype_for_vocab(int64_t vocab_size);
int dtype_size(TokenDType dtype);           // bytes per token
const char* dtype_name(TokenDType dtype);   // "uint16", ...

inline std::string idx_path(const std::string& prefix) { return prefix + ".idx"; }
inline std::string bin_path(const std::string& prefix) { return prefix + ".bin"; }

// Streams documents to PREFIX.bin.tmp.<pid>; finish() writes the index and moves both files into
// place (old .idx removed, new .bin renamed, new .idx written atomically), so readers see the old
// pair, no dataset, or the new pair. Destroyed unfinished (an exception while preparing), it
// deletes its temporary files and leaves any previous dataset at PREFIX untouched.
class IndexedDatasetWriter {
 public:
  IndexedDatasetWriter(std::string prefix, TokenDType dtype);
  ~IndexedDatasetWriter();
  IndexedDatasetWriter(const IndexedDatasetWriter&) = delete;
  IndexedDatasetWriter& operator=(const IndexedDatasetWriter&) = delete;

  // Appends one document made of one sequence. Ids must fit the dtype (else forma::Error).
  void add_document(const int32_t* ids, size_t count);
  void add_document(const std::vector<int32_t>& ids) { add_document(ids.data(), ids.size()); }
  void finish();

  int64_t documents() const { return static_cast<int64_t>(lengths_.size()); }
  int64_t tokens() const { return tokens_; }

 private:
  void write_bytes(const void* data, size_t size);
  void discard();
  std::string prefix_, bin_tmp_, idx_tmp_;
  TokenDType dtype_;
  std::FILE* bin_ = nullptr;
  std::vector<int32_t> lengths_;
  std::vector<uint8_t> buffer_;
  int64_t tokens_ = 0;
  bool finished_ = false;
};

// Read-only view of PREFIX.bin/.idx through memory maps. The constructor checks the whole index
// against both file sizes, so a truncated or corrupt file is refused with an error naming it and
// no later read can leave the maps.
class IndexedDataset {
 public:
  explicit IndexedDataset(const std::string& prefix);

  const std::string& prefix() const { return prefix_; }
  TokenDType dtype() const { return dtype_; }
  int64_t sequence_count() const { return sequence_count_; }
  int64_t document_count() const { return document_count_ - 1; }  // real documents
  int64_t total_tokens() const { return total_tokens_; }
  int32_t sequence_length(int64_t sequence) const;
  int64_t sequence_pointer(int64_t sequence) const;
  // Document d covers sequences [document_begin(d), document_begin(d + 1)).
  int64_t document_begin(int64_t document) const;

  // Copies tokens [offset, offset + count) of `sequence` into out, converted to int32.
  void read(int64_t sequence, int64_t offset, int64_t count, int32_t* out) const;
  std::vector<int32_t> sequence(int64_t sequence) const;

 private:
  void parse_index();
  void check_sequences();
  std::string prefix_;
  MappedFile idx_, bin_;
  TokenDType dtype_ = TokenDType::int32;
  int64_t sequence_count_ = 0, document_count_ = 0, total_tokens_ = 0;
  const uint8_t* lengths_ = nullptr;    // i32[S], unaligned-safe reads through memcpy
  const uint8_t* pointers_ = nullptr;   // i64[S]
  const uint8_t* documents_ = nullptr;  // i64[D]
};

}  // namespace forma::data
