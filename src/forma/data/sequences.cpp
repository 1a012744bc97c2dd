#include "forma/data/sequences.h"

#include "forma/core/error.h"
#include "forma/data/blend.h"
#include "forma/data/packed_sequences.h"
#include "forma/data/shuffle.h"

namespace forma::data {

namespace {

constexpr uint64_t kDatasetStream = 0x64617461;  // "data": per-dataset seeds of a blend

void check_spec(const DataSpec& spec, Split split) {
  check(!spec.prefixes.empty(), "data: no dataset prefixes given");
  check(spec.weights.empty() || spec.weights.size() == spec.prefixes.size(),
        "data: {} weights for {} datasets (give one weight per prefix, or none)", spec.weights.size(),
        spec.prefixes.size());
  check(spec.seq_len >= 1, "data: seq_len must be at least 1, not {}", spec.seq_len);
  check(spec.valid_fraction >= 0.0 && spec.valid_fraction < 1.0,
        "data: valid_fraction {} is not in [0, 1)", spec.valid_fraction);
  check(split == Split::train || spec.valid_fraction > 0.0,
        "data: no validation split, because valid_fraction is 0");
}

std::unique_ptr<PackedSequences> open_one(const std::string& prefix, const DataSpec& spec, Split split,
                                          uint64_t seed) {
  auto dataset = std::make_shared<const IndexedDataset>(prefix);
  // The document split uses the user seed itself, so it does not depend on the other datasets.
  DocumentSplit documents = split_documents(dataset->document_count(), spec.valid_fraction, spec.seed);
  bool train = split == Split::train;
  auto sequences = std::make_unique<PackedSequences>(dataset, train ? documents.train : documents.valid,
                                                     spec.seq_len, train, seed, spec.vocab_size);
  check(sequences->size() > 0,
        "{}: its {} split ({} documents, {} tokens) has fewer than seq_len + 1 = {} tokens", prefix,
        train ? "train" : "valid", train ? documents.train.size() : documents.valid.size(),
        sequences->stream_tokens(), spec.seq_len + 1);
  return sequences;
}

}  // namespace

std::unique_ptr<TokenSequences> open_sequences(const DataSpec& spec, Split split) {
  check_spec(spec, split);
  if (spec.prefixes.size() == 1) return open_one(spec.prefixes[0], spec, split, spec.seed);

  std::vector<std::unique_ptr<TokenSequences>> sources;
  std::vector<double> weights = spec.weights;
  int64_t total = 0;
  for (size_t k = 0; k < spec.prefixes.size(); ++k) {
    // Each dataset gets its own order seed: two copies of one dataset are not shuffled alike.
    sources.push_back(open_one(spec.prefixes[k], spec, split, derive_seed(spec.seed, kDatasetStream, k)));
    total += sources.back()->size();
    if (spec.weights.empty()) weights.push_back(static_cast<double>(sources.back()->size()));
  }
  for (size_t k = 0; k < weights.size(); ++k)
    check(weights[k] > 0, "data: weight {} (for {}) is {}; weights must be positive", k,
          spec.prefixes[k], weights[k]);
  return std::make_unique<BlendedSequences>(std::move(sources), weights, total);
}

}  // namespace forma::data
