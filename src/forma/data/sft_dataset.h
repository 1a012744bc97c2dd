// SFT data on disk: PREFIX.bin/.idx hold the token ids of every sample (one document each), in
// Megatron's layout as pretraining data (so `forma data info` reads it and a pretraining recipe
// could too), and PREFIX.mask.bin/.idx hold, in the same layout with uint8 values, each sample's
// loss mask: 1 where the token is a training target. The two must agree sample by sample in count
// and length; the reader checks that when it opens them.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "forma/data/indexed_dataset.h"
#include "forma/data/sft_render.h"

namespace forma::data {

inline std::string mask_prefix(const std::string& prefix) { return prefix + ".mask"; }

// Whether PREFIX.mask.idx exists (an SFT dataset rather than pretraining data).
bool is_sft_dataset(const std::string& prefix);

class SftDatasetWriter {
 public:
  SftDatasetWriter(const std::string& prefix, TokenDType dtype);
  void add(const SftTokens& sample);
  // The mask first, then the ids: a reader never sees new ids with an old mask of the same count
  // unchecked (the lengths are compared on open).
  void finish();
  int64_t samples() const { return ids_.documents(); }
  int64_t tokens() const { return ids_.tokens(); }

 private:
  IndexedDatasetWriter ids_, mask_;
};

class SftDataset {
 public:
  explicit SftDataset(const std::string& prefix);  // errors name the files that disagree
  const std::string& prefix() const { return ids_.prefix(); }
  int64_t size() const { return ids_.sequence_count(); }
  int64_t length(int64_t sample) const { return ids_.sequence_length(sample); }
  // Copies tokens [offset, offset + count) of `sample` and their mask bits.
  void read(int64_t sample, int64_t offset, int64_t count, int32_t* ids, int32_t* mask) const;
  const IndexedDataset& ids() const { return ids_; }

 private:
  IndexedDataset ids_, mask_;
};

}  // namespace forma::data
