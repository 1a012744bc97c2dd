// The training view of prepared datasets: fixed-length samples packed from the document stream,
// the way Megatron's GPTDataset and nanoGPT read them. This is the API the trainer codes against.
//
// Packing: the tokens of a split's documents (EOS already after each), concatenated in document
// order, are cut into samples of seq_len + 1 tokens that overlap by one: sample k is stream tokens
// [k*T, k*T + T + 1), so inputs = s[0:T] and labels = s[1:T+1], and size() = (tokens - 1) / T.
// Samples cross document boundaries; the tail that does not fill a sample is unused.
//
// Validation split: round(valid_fraction * documents) whole documents (at least one when
// valid_fraction > 0, never all) chosen by a permutation seeded from `seed`; train is the rest.
// The choice depends on the documents and seed only (not on seq_len or the other datasets).
//
// Order: train samples are visited in a seeded permutation (std::mt19937_64; same seed, same order
// on any machine); valid samples in stream order.
//
// Epochs: get(index) accepts any index >= 0. index = epoch * size() + i reads position i of the
// epoch's order; each train epoch has its own permutation (derived from seed and epoch), so the
// trainer may simply count indices up without wrapping. Valid repeats the same order.
//
// Blending (several prefixes): each sample of the blend comes from the dataset whose realised
// share lags its normalised weight the most (Megatron's build_blending_indices; ties go to the
// first dataset). size() = sum of the datasets' sizes; a dataset asked for more samples than it has
// continues into its own next epoch. Empty weights mean weights proportional to dataset sizes.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace forma::data {

struct DataSpec {
  std::vector<std::string> prefixes;  // PREFIX of PREFIX.bin/.idx, one per dataset
  std::vector<double> weights;        // one per prefix (> 0, normalised), or empty
  int seq_len = 0;                    // T: each sample has T + 1 tokens
  double valid_fraction = 0.0;        // fraction of documents held out, in [0, 1)
  uint64_t seed = 1234;
  // Ids must be below this (the model's vocabulary); every sample read is checked, and an id
  // outside it stops with the dataset, document and position. 0: unchecked (no model to check by).
  int64_t vocab_size = 0;
};

enum class Split { train, valid };

class TokenSequences {
 public:
  virtual ~TokenSequences() = default;
  virtual int64_t size() const = 0;                        // number of samples in one epoch
  virtual void get(int64_t index, int32_t* out) const = 0;  // writes seq_len + 1 token ids
  virtual int seq_len() const = 0;
};

// Errors (forma::Error) name the prefix or field: missing/corrupt files, bad weights, a split with
// fewer than seq_len + 1 tokens, Split::valid with valid_fraction 0. Thread-safe get().
std::unique_ptr<TokenSequences> open_sequences(const DataSpec& spec, Split split);

}  // namespace forma::data
