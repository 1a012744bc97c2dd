// The BPE model of a Hugging Face tokenizer.json: vocabulary, ranked merges between token ids,
// unknown-token and byte-fallback handling, and a per-word cache so repeated words cost a lookup.
#pragma once
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace forma::tok {

struct BpeOptions {
  std::optional<std::string> unk_token;
  bool byte_fallback = false;  // unknown characters become <0xXX> tokens, one per byte
  bool fuse_unk = false;       // consecutive unknown characters become one unk token
  bool ignore_merges = false;  // a word that is itself in the vocabulary is one token (Llama 3)
};

class BpeModel {
 public:
  // Merges are (left, right) token strings in rank order; left+right must be in the vocabulary.
  // `where` names the source file in errors.
  BpeModel(std::unordered_map<std::string, int32_t> vocab,
           const std::vector<std::pair<std::string, std::string>>& merges, BpeOptions options,
           const std::string& where);

  // Appends the ids of one pre-tokenized word.
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  // nullptr when the id is not in the vocabulary.
  const std::string* id_to_token(int32_t id) const;
  int32_t id_limit() const { return static_cast<int32_t>(id_to_token_.size()); }
  size_t size() const { return vocab_.size(); }  // tokens in the vocabulary

 private:
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;
  void encode_long_word(std::string_view word, std::vector<int32_t>& out) const;
  void initial_symbols(std::string_view word, struct SymbolList& list) const;

  std::unordered_map<std::string, int32_t> vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> has_id_;
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges_;  // (left<<32|right) -> (rank, id)
  BpeOptions options_;
  std::optional<int32_t> unk_id_;
  int32_t byte_ids_[256];  // <0xXX> ids when byte_fallback, else -1
  // True when no token has U+2581 after another character: then no merge crosses the start of a
  // "▁word", and a long input (tokenizer.json without pre-tokenizer, e.g. Mistral) can be encoded
  // word by word, exactly and with the cache.
  bool metaspace_boundaries_ = false;

  static constexpr size_t kCacheCapacity = 1 << 17;
  static constexpr size_t kMaxCachedWordBytes = 256;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace forma::tok
