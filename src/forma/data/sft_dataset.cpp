#include "forma/data/sft_dataset.h"

#include <filesystem>

#include "forma/core/error.h"

namespace forma::data {

bool is_sft_dataset(const std::string& prefix) { return std::filesystem::exists(idx_path(mask_prefix(prefix))); }

SftDatasetWriter::SftDatasetWriter(const std::string& prefix, TokenDType dtype)
    : ids_(prefix, dtype), mask_(mask_prefix(prefix), TokenDType::uint8) {}

void SftDatasetWriter::add(const SftTokens& sample) {
  check(sample.ids.size() == sample.mask.size(), "SFT sample: {} ids but {} mask values", sample.ids.size(),
        sample.mask.size());
  ids_.add_document(sample.ids);
  std::vector<int32_t> mask(sample.mask.begin(), sample.mask.end());
  mask_.add_document(mask);
}

void SftDatasetWriter::finish() {
  mask_.finish();
  ids_.finish();
}

SftDataset::SftDataset(const std::string& prefix) : ids_(prefix), mask_(mask_prefix(prefix)) {
  check(mask_.dtype() == TokenDType::uint8, "{}.idx: an SFT mask is uint8, not {}", mask_prefix(prefix),
        dtype_name(mask_.dtype()));
  check(mask_.sequence_count() == ids_.sequence_count(),
        "{}.idx holds {} samples but {}.idx holds {} masks: they were not written together", prefix,
        ids_.sequence_count(), mask_prefix(prefix), mask_.sequence_count());
  for (int64_t s = 0; s < ids_.sequence_count(); ++s) {
    check(ids_.sequence_length(s) == mask_.sequence_length(s),
          "{}: sample {} has {} tokens but its mask in {}.idx has {}", prefix, s, ids_.sequence_length(s),
          mask_prefix(prefix), mask_.sequence_length(s));
  }
}

void SftDataset::read(int64_t sample, int64_t offset, int64_t count, int32_t* ids, int32_t* mask) const {
  ids_.read(sample, offset, count, ids);
  mask_.read(sample, offset, count, mask);
}

}  // namespace forma::data
