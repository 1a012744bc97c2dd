#include "forma/tokenizer/bpe_model.h"

#include "forma/core/error.h"
#include "forma/tokenizer/bpe_merge.h"
#include "forma/tokenizer/tokenizer.h"
#include "forma/tokenizer/unicode.h"

namespace forma::tok {

struct SymbolList {
  std::vector<BpeSymbol> symbols;
  void add(int32_t id, size_t start, size_t len) {
    int32_t index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, static_cast<uint32_t>(start), static_cast<uint32_t>(len), index - 1, -1});
    if (index > 0) symbols[index - 1].next = index;
  }
};

static const char* const kMetaspace = "\xE2\x96\x81";  // U+2581, 3 bytes

static uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

BpeModel::BpeModel(std::unordered_map<std::string, int32_t> vocab,
                   const std::vector<std::pair<std::string, std::string>>& merges, BpeOptions options,
                   const std::string& where)
    : vocab_(std::move(vocab)), options_(std::move(options)) {
  int32_t limit = 0;
  const std::string* highest = nullptr;
  for (const auto& [token, id] : vocab_) {
    check_token_id(id, token, where + ": model.vocab");
    if (id + 1 > limit) limit = id + 1, highest = &token;
  }
  // The id -> token table below has an entry per id up to the highest.
  if (highest) check_token_id_density(limit - 1, vocab_.size(), *highest, where + ": model.vocab");
  id_to_token_.resize(limit);
  has_id_.assign(limit, false);
  for (const auto& [token, id] : vocab_) {
    id_to_token_[id] = token;
    has_id_[id] = true;
  }
  merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [left, right] = merges[rank];
    auto l = vocab_.find(left), r = vocab_.find(right), m = vocab_.find(left + right);
    check(l != vocab_.end() && r != vocab_.end(), "{}: model.merges[{}]: '{} {}' uses a token not in the vocab",
          where, rank, left, right);
    check(m != vocab_.end(), "{}: model.merges[{}]: merged token '{}' is not in the vocab", where, rank,
          left + right);
    // The first occurrence of a pair wins, as in Hugging Face tokenizers.
    merges_.emplace(pair_key(l->second, r->second), std::make_pair(static_cast<int32_t>(rank), m->second));
  }
  if (options_.unk_token) {
    auto it = vocab_.find(*options_.unk_token);
    check(it != vocab_.end(), "{}: model.unk_token '{}' is not in the vocab", where, *options_.unk_token);
    unk_id_ = it->second;
  }
  metaspace_boundaries_ = !options_.ignore_merges && vocab_.count(kMetaspace);
  for (const auto& [token, id] : vocab_)
    for (size_t pos = token.find(kMetaspace, 1); metaspace_boundaries_ && pos != std::string::npos;
         pos = token.find(kMetaspace, pos + 1))
      if (pos < 3 || token.compare(pos - 3, 3, kMetaspace) != 0) metaspace_boundaries_ = false;
  for (int b = 0; b < 256; ++b) {
    auto it = options_.byte_fallback ? vocab_.find(byte_token(static_cast<uint8_t>(b))) : vocab_.end();
    byte_ids_[b] = it == vocab_.end() ? -1 : it->second;
  }
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  auto it = vocab_.find(std::string(token));
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || id >= id_limit() || !has_id_[id]) return nullptr;
  return &id_to_token_[id];
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (options_.ignore_merges) {
    if (auto id = token_to_id(word)) {
      out.push_back(*id);
      return;
    }
  }
  if (word.size() > kMaxCachedWordBytes) return encode_long_word(word, out);
  std::string key(word);
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids;
  merge_word(word, ids);
  out.insert(out.end(), ids.begin(), ids.end());
  std::lock_guard<std::mutex> lock(cache_mutex_);
  if (cache_.size() >= kCacheCapacity) cache_.clear();  // bounded memory on endless distinct words
  cache_.emplace(std::move(key), std::move(ids));
}

void BpeModel::encode_long_word(std::string_view word, std::vector<int32_t>& out) const {
  if (!metaspace_boundaries_) return merge_word(word, out);
  size_t start = 0;
  for (size_t pos = word.find(kMetaspace, 1); pos != std::string_view::npos; pos = word.find(kMetaspace, pos + 3)) {
    if (pos >= 3 && word.compare(pos - 3, 3, kMetaspace) == 0) continue;  // inside a run of U+2581
    if (pos - start > kMaxCachedWordBytes) {
      merge_word(word.substr(start, pos - start), out);
    } else {
      encode_word(word.substr(start, pos - start), out);
    }
    start = pos;
  }
  std::string_view last = word.substr(start);
  if (last.size() > kMaxCachedWordBytes) return merge_word(last, out);
  encode_word(last, out);
}

// One symbol per character; a character missing from the vocabulary becomes its bytes' <0xXX>
// tokens (byte_fallback) or the unk token (fused with a preceding unk when fuse_unk).
void BpeModel::initial_symbols(std::string_view word, SymbolList& list) const {
  bool previous_unk = false;
  for (size_t i = 0; i < word.size();) {
    size_t n = utf8_char_length(word, i);
    if (n == 0) n = 1;
    auto it = vocab_.find(std::string(word.substr(i, n)));
    if (it != vocab_.end()) {
      list.add(it->second, i, n);
      previous_unk = false;
    } else {
      bool all_bytes = options_.byte_fallback;
      for (size_t k = 0; k < n && all_bytes; ++k) all_bytes = byte_ids_[static_cast<uint8_t>(word[i + k])] >= 0;
      if (all_bytes) {
        for (size_t k = 0; k < n; ++k) list.add(byte_ids_[static_cast<uint8_t>(word[i + k])], i + k, 1);
        previous_unk = false;
      } else if (unk_id_) {
        if (options_.fuse_unk && previous_unk) {
          list.symbols.back().len += static_cast<uint32_t>(n);
        } else {
          list.add(*unk_id_, i, n);
        }
        previous_unk = true;
      }
      // No unk token and no byte fallback: the character is dropped, as Hugging Face does.
    }
    i += n;
  }
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  SymbolList list;
  list.symbols.reserve(word.size());
  initial_symbols(word, list);
  bpe_merge(list.symbols, [&](const BpeSymbol& left, const BpeSymbol& right) -> BpeMerge {
    auto it = merges_.find(pair_key(left.id, right.id));
    if (it == merges_.end()) return {-1, -1};
    return {it->second.first, it->second.second};
  });
  for (const BpeSymbol& s : list.symbols)
    if (s.len > 0) out.push_back(s.id);
}

}  // namespace forma::tok
