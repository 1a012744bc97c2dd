// Training batches from SFT datasets (data/sft_dataset.h): rows of whole samples, laid out by
// data/sft_packing.h, with targets of -100 wherever the loss mask says not to train (the prompt,
// the user turns, a sample's last token, padding).
//
// A sample of L tokens fills L slots of a row: inputs ids[0..L), targets ids[1..L) where their mask
// is 1, then -100 for its last slot (the next sample is not its continuation). Packed rows also
// carry position_ids restarting at 0 per sample and segment_ids (the sample's place in the row; -1
// for padding), so the model attends within each sample only. A batch is as wide as its widest row.
//
// Split and order: data.valid_fraction of the samples of each dataset are held out (whole samples,
// data/packed_sequences.h's split_documents); the training samples are shuffled once with the seed
// and laid out into rows, and each epoch visits those rows in its own seeded order (index = epoch *
// size() + i, as data/sequences.h). Validation rows come in order.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "forma/data/sequences.h"
#include "forma/train/batches.h"

namespace forma::train {

struct SftDataSpec {
  std::vector<std::string> prefixes;  // SFT datasets (PREFIX.bin/.idx + PREFIX.mask.bin/.idx)
  int64_t seq_len = 0;                // row width T (input tokens)
  bool packing = true;                // several samples per row, else one (padded per batch)
  double valid_fraction = 0.0;
  uint64_t seed = 1234;
  int64_t vocab_size = 0;             // ids must be below it (checked as rows are read); 0: unchecked
};

// Errors name the prefix: a split with no samples, Split::valid with valid_fraction 0, bad files.
// Logs the rows, the packing efficiency and the samples cut to seq_len.
std::unique_ptr<SampleSource> sft_samples(const SftDataSpec& spec, data::Split split);

}  // namespace forma::train
