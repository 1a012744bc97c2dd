// Byte-level BPE training (GPT-2 style): words from the GPT-2 split regex, an alphabet of all 256
// bytes, then the most frequent adjacent pair is merged until the vocabulary is full. Pair counts
// are updated incrementally, only in the words a merge touches. The result is a Hugging Face
// tokenizer.json that load_tokenizer reads back.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace forma::tok {

struct BpeTrainOptions {
  int32_t vocab_size = 4096;  // special tokens + 256 bytes + merges
  // Added as special tokens with the first ids; the first is also BOS/EOS in tokenizer_config.json.
  std::vector<std::string> special_tokens = {"<|endoftext|>"};
  int64_t min_frequency = 2;  // pairs seen fewer times are never merged
  bool show_progress = true;
};

// Trains on in-memory texts. Special tokens written in the texts are not split into words.
nlohmann::ordered_json train_bpe(const std::vector<std::string_view>& texts, const BpeTrainOptions& options);
nlohmann::ordered_json train_bpe_files(const std::vector<std::string>& files, const BpeTrainOptions& options);

// Writes dir/tokenizer.json and dir/tokenizer_config.json (bos/eos = the first special token,
// model_max_length) atomically, creating dir if needed.
void save_trained_tokenizer(const nlohmann::ordered_json& tokenizer_json, const std::string& dir,
                            int64_t model_max_length);

}  // namespace forma::tok
