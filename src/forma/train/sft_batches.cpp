#include "forma/train/sft_batches.h"

#include <algorithm>
#include <mutex>

#include "forma/core/error.h"
#include "forma/core/log.h"
#include "forma/data/packed_sequences.h"
#include "forma/data/sft_dataset.h"
#include "forma/data/sft_packing.h"
#include "forma/data/shuffle.h"

namespace forma::train {
namespace {

constexpr uint64_t kSftOrderStream = 0x7366746F72646572;  // "sftorder"
constexpr uint64_t kSftEpochStream = 0x73667465706F6368;  // "sftepoch"

struct SampleRef {
  int dataset;
  int64_t sample;
};

class SftSamples : public SampleSource {
 public:
  SftSamples(const SftDataSpec& spec, data::Split split) : spec_(spec), split_(split) {
    check(!spec.prefixes.empty(), "SFT data: no datasets");
    check(split == data::Split::train || spec.valid_fraction > 0,
          "SFT data: no validation split (data.valid_fraction is 0)");
    for (size_t d = 0; d < spec.prefixes.size(); ++d) {
      datasets_.push_back(std::make_unique<data::SftDataset>(spec.prefixes[d]));
      auto parts = data::split_documents(datasets_.back()->size(), spec.valid_fraction, spec.seed);
      for (int64_t s : split == data::Split::train ? parts.train : parts.valid)
        refs_.push_back({static_cast<int>(d), s});
    }
    check(!refs_.empty(), "SFT data {}: the {} split has no samples", spec.prefixes.front(),
          split == data::Split::train ? "training" : "validation");
    if (split == data::Split::train) {
      // A fixed shuffle before the layout: ties among equal lengths and the padding mode's rows
      // follow it, so neither depends on the order the files were written in.
      auto order = data::shuffled_range(static_cast<int64_t>(refs_.size()), data::derive_seed(spec.seed, kSftOrderStream));
      std::vector<SampleRef> shuffled;
      for (int64_t i : order) shuffled.push_back(refs_[i]);
      refs_ = std::move(shuffled);
    }
    std::vector<int64_t> lengths;
    for (const auto& r : refs_) lengths.push_back(datasets_[r.dataset]->length(r.sample));
    layout_ = data::layout_samples(lengths, spec.seq_len, spec.packing);
    log::info("SFT {} data: {} samples in {} rows of {} tokens ({}), {:.1f}% of the row slots hold tokens{}",
              split == data::Split::train ? "training" : "validation", refs_.size(), layout_.rows.size(),
              spec.seq_len, spec.packing ? "packed" : "one sample per row, padded per batch",
              100.0 * layout_.efficiency(spec.seq_len),
              layout_.truncated ? fmt::format("; {} samples longer than {} tokens cut to it", layout_.truncated,
                                              spec.seq_len)
                                : "");
  }

  int64_t size() const override { return static_cast<int64_t>(layout_.rows.size()); }
  bool masked() const override { return true; }

  void get(int64_t index, int32_t* out) const override {  // the row's input ids, then zeros
    auto row = read_row(index);
    std::fill(out, out + spec_.seq_len + 1, 0);
    std::copy(row.ids.begin(), row.ids.end(), out);
  }

  Batch batch(int64_t first, int64_t batch_size, int64_t seq_len) const override {
    check(seq_len == spec_.seq_len, "SFT batch of {} tokens from rows of {}", seq_len, spec_.seq_len);
    std::vector<Row> rows;
    int64_t width = 1;
    for (int64_t b = 0; b < batch_size; ++b) {
      rows.push_back(read_row(first + b));
      width = std::max<int64_t>(width, static_cast<int64_t>(rows.back().ids.size()));
    }
    auto opts = torch::TensorOptions().dtype(torch::kInt64);
    Batch out;
    out.inputs = torch::zeros({batch_size, width}, opts);
    out.targets = torch::full({batch_size, width}, -100, opts);
    if (spec_.packing) {
      out.position_ids = torch::zeros({batch_size, width}, opts);
      out.segment_ids = torch::full({batch_size, width}, -1, opts);
    }
    for (int64_t b = 0; b < batch_size; ++b) {
      const Row& r = rows[b];
      std::copy(r.ids.begin(), r.ids.end(), out.inputs[b].data_ptr<int64_t>());
      std::copy(r.targets.begin(), r.targets.end(), out.targets[b].data_ptr<int64_t>());
      if (spec_.packing) {
        std::copy(r.positions.begin(), r.positions.end(), out.position_ids[b].data_ptr<int64_t>());
        std::copy(r.segments.begin(), r.segments.end(), out.segment_ids[b].data_ptr<int64_t>());
      }
    }
    return out;
  }

 private:
  struct Row {
    std::vector<int64_t> ids, targets, positions, segments;
  };

  Row read_row(int64_t index) const {
    check(index >= 0, "SFT row index {} < 0", index);
    const int64_t rows = size();
    int64_t row = index % rows;
    if (split_ == data::Split::train) {
      // Each epoch its own order of the rows; one epoch's permutation is kept (the trainer reads them in order).
      const int64_t epoch = index / rows;
      std::lock_guard<std::mutex> lock(mutex_);
      if (epoch != cached_epoch_) {
        epoch_order_ = data::shuffled_range(rows, data::derive_seed(spec_.seed, kSftEpochStream, static_cast<uint64_t>(epoch)));
        cached_epoch_ = epoch;
      }
      row = epoch_order_[row];
    }
    Row out;
    int64_t segment = 0;
    for (int64_t s : layout_.rows[row].samples) {
      const SampleRef& ref = refs_[s];
      const auto& dataset = *datasets_[ref.dataset];
      const int64_t n = std::min<int64_t>(dataset.length(ref.sample), spec_.seq_len);
      std::vector<int32_t> ids(n), mask(n);
      dataset.read(ref.sample, 0, n, ids.data(), mask.data());
      for (int64_t t = 0; t < n; ++t) {
        check(spec_.vocab_size == 0 || (ids[t] >= 0 && ids[t] < spec_.vocab_size),
              "{}: sample {}, token {}: id {} is outside the model's vocabulary ({} ids)", dataset.prefix(),
              ref.sample, t, ids[t], spec_.vocab_size);
        out.ids.push_back(ids[t]);
        out.targets.push_back(t + 1 < n && mask[t + 1] ? ids[t + 1] : -100);
        out.positions.push_back(t);
        out.segments.push_back(segment);
      }
      ++segment;
    }
    return out;
  }

  SftDataSpec spec_;
  data::Split split_;
  std::vector<std::unique_ptr<data::SftDataset>> datasets_;
  std::vector<SampleRef> refs_;
  data::SftLayout layout_;
  mutable std::mutex mutex_;
  mutable int64_t cached_epoch_ = -1;
  mutable std::vector<int64_t> epoch_order_;
};

}  // namespace

std::unique_ptr<SampleSource> sft_samples(const SftDataSpec& spec, data::Split split) {
  return std::make_unique<SftSamples>(spec, split);
}

}  // namespace forma::train
