#include "forma/tokenizer/bpe_trainer.h"

#include <filesystem>
#include <queue>
#include <unordered_map>

#include "forma/core/error.h"
#include "forma/core/files.h"
#include "forma/core/log.h"
#include "forma/core/progress.h"
#include "forma/tokenizer/added_tokens.h"
#include "forma/tokenizer/pipeline.h"
#include "forma/tokenizer/regex.h"
#include "forma/tokenizer/unicode.h"

namespace forma::tok {

namespace {

using Pair = uint64_t;  // (left id << 32) | right id
Pair make_pair_key(int32_t a, int32_t b) { return (static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b); }
int32_t left_of(Pair p) { return static_cast<int32_t>(p >> 32); }
int32_t right_of(Pair p) { return static_cast<int32_t>(p & 0xFFFFFFFFu); }

// Distinct words (raw bytes) with their counts.
std::unordered_map<std::string, int64_t> count_words(const std::vector<std::string_view>& texts,
                                                     const std::vector<std::string>& specials) {
  Regex regex(kGpt2SplitPattern, "BPE trainer");
  std::vector<AddedToken> tokens;
  for (size_t i = 0; i < specials.size(); ++i) tokens.push_back({specials[i], static_cast<int32_t>(i), true});
  AddedTokenMatcher matcher(std::move(tokens));
  std::unordered_map<std::string, int64_t> counts;
  for (std::string_view text : texts) {
    for (const TextSegment& s : matcher.split(text)) {
      if (s.token >= 0) continue;
      std::string_view plain = text.substr(s.begin, s.end - s.begin);
      size_t pos = 0;
      for (auto [b, e] : regex.find_all(plain)) {
        if (b > pos) ++counts[std::string(plain.substr(pos, b - pos))];  // invalid UTF-8 bytes
        ++counts[std::string(plain.substr(b, e - b))];
        pos = e;
      }
      if (pos < plain.size()) ++counts[std::string(plain.substr(pos))];
    }
  }
  return counts;
}

struct Word {
  std::vector<int32_t> symbols;
  int64_t count;
};

class Trainer {
 public:
  Trainer(const std::unordered_map<std::string, int64_t>& counts, int32_t first_byte_id) {
    words_.reserve(counts.size());
    for (const auto& [text, count] : counts) {
      Word w{{}, count};
      for (char c : text) w.symbols.push_back(first_byte_id + static_cast<uint8_t>(c));
      words_.push_back(std::move(w));
    }
    for (int32_t i = 0; i < static_cast<int32_t>(words_.size()); ++i) add_pairs(i, +1);
    for (const auto& [pair, count] : pair_counts_) heap_.push({count, pair});
    seen_.assign(words_.size(), -1);
  }

  // The most frequent pair (smallest pair on ties) with its count, or count 0 when none is left.
  std::pair<Pair, int64_t> best() {
    while (!heap_.empty()) {
      auto [count, pair] = heap_.top();
      heap_.pop();
      int64_t current = pair_counts_[pair];
      if (current == count) return {pair, count};
      if (current > 0) heap_.push({current, pair});  // stale entry: requeue with its true count
    }
    return {0, 0};
  }

  // Replaces every occurrence of `pair` by `new_id`, updating counts only for touched words.
  void merge(Pair pair, int32_t new_id) {
    auto it = where_.find(pair);
    if (it == where_.end()) return;
    std::vector<int32_t> word_ids = std::move(it->second);
    where_.erase(it);
    ++stamp_;
    for (int32_t w : word_ids) {
      if (seen_[w] == stamp_) continue;
      seen_[w] = stamp_;
      add_pairs(w, -1);
      merge_in_word(words_[w].symbols, left_of(pair), right_of(pair), new_id);
      add_pairs(w, +1, /*push_changed=*/true);
    }
  }

 private:
  void add_pairs(int32_t w, int sign, bool push_changed = false) {
    const Word& word = words_[w];
    for (size_t i = 0; i + 1 < word.symbols.size(); ++i) {
      Pair p = make_pair_key(word.symbols[i], word.symbols[i + 1]);
      int64_t& count = pair_counts_[p];
      count += sign * word.count;
      if (sign > 0) {
        auto& list = where_[p];
        if (list.empty() || list.back() != w) list.push_back(w);
        if (push_changed) heap_.push({count, p});
      }
    }
  }

  static void merge_in_word(std::vector<int32_t>& s, int32_t a, int32_t b, int32_t new_id) {
    size_t out = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
        s[out++] = new_id;
        ++i;
      } else {
        s[out++] = s[i];
      }
    }
    s.resize(out);
  }

  struct Entry {
    int64_t count;
    Pair pair;
    bool operator<(const Entry& o) const { return count != o.count ? count < o.count : pair > o.pair; }
  };
  std::vector<Word> words_;
  std::unordered_map<Pair, int64_t> pair_counts_;
  std::unordered_map<Pair, std::vector<int32_t>> where_;  // words that may contain the pair
  std::priority_queue<Entry> heap_;
  std::vector<int64_t> seen_;
  int64_t stamp_ = 0;
};

nlohmann::ordered_json tokenizer_json(const std::vector<std::string>& specials, const std::vector<std::string>& vocab,
                                      const std::vector<std::pair<int32_t, int32_t>>& merges) {
  using nlohmann::ordered_json;
  ordered_json added = ordered_json::array();
  for (size_t i = 0; i < specials.size(); ++i)
    added.push_back({{"id", i}, {"content", specials[i]}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", true}});
  ordered_json vocab_json = ordered_json::object();
  for (size_t id = 0; id < vocab.size(); ++id) vocab_json[vocab[id]] = id;
  ordered_json merges_json = ordered_json::array();
  for (auto [a, b] : merges) merges_json.push_back({vocab[a], vocab[b]});
  ordered_json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", added},
          {"normalizer", nullptr},
          {"pre_tokenizer", byte_level},
          {"post_processor", byte_level},
          {"decoder", byte_level},
          {"model",
           {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
            {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", false},
            {"vocab", vocab_json}, {"merges", merges_json}}}};
}

}  // namespace

nlohmann::ordered_json train_bpe(const std::vector<std::string_view>& texts, const BpeTrainOptions& options) {
  int32_t first_byte = static_cast<int32_t>(options.special_tokens.size());
  check(options.vocab_size >= first_byte + 256, "vocab_size {} is below the {} special tokens + 256 bytes",
        options.vocab_size, first_byte);
  std::vector<std::string> vocab = options.special_tokens;  // id -> byte-level token string
  for (int b = 0; b < 256; ++b) vocab.push_back(byte_to_char(static_cast<uint8_t>(b)));
  Trainer trainer(count_words(texts, options.special_tokens), first_byte);
  std::vector<std::pair<int32_t, int32_t>> merges;
  int64_t wanted = options.vocab_size - static_cast<int64_t>(vocab.size());
  std::unique_ptr<Progress> progress;
  if (options.show_progress) progress = std::make_unique<Progress>("BPE merges", wanted, "merges");
  while (static_cast<int32_t>(vocab.size()) < options.vocab_size) {
    auto [pair, count] = trainer.best();
    if (count < std::max<int64_t>(options.min_frequency, 1)) break;
    int32_t new_id = static_cast<int32_t>(vocab.size());
    vocab.push_back(vocab[left_of(pair)] + vocab[right_of(pair)]);
    merges.emplace_back(left_of(pair), right_of(pair));
    trainer.merge(pair, new_id);
    if (progress) progress->advance();
  }
  if (progress) progress->finish();
  if (static_cast<int32_t>(vocab.size()) < options.vocab_size)
    log::warn("BPE training stopped at {} tokens: no pair occurs at least {} times", vocab.size(), options.min_frequency);
  return tokenizer_json(options.special_tokens, vocab, merges);
}

nlohmann::ordered_json train_bpe_files(const std::vector<std::string>& files, const BpeTrainOptions& options) {
  check(!files.empty(), "BPE training needs at least one input file");
  std::vector<std::string> contents;
  for (const auto& f : files) contents.push_back(read_file(f));
  std::vector<std::string_view> views(contents.begin(), contents.end());
  return train_bpe(views, options);
}

void save_trained_tokenizer(const nlohmann::ordered_json& tokenizer_json, const std::string& dir,
                            int64_t model_max_length) {
  std::filesystem::create_directories(dir);
  const auto& added = tokenizer_json.at("added_tokens");
  nlohmann::ordered_json config = {{"tokenizer_class", "PreTrainedTokenizerFast"},
                                   {"model_max_length", model_max_length},
                                   {"clean_up_tokenization_spaces", false}};
  if (!added.empty()) {
    config["bos_token"] = added[0]["content"];
    config["eos_token"] = added[0]["content"];
  }
  write_file_atomic(dir + "/tokenizer.json", tokenizer_json.dump(2));
  write_file_atomic(dir + "/tokenizer_config.json", config.dump(2));
}

}  // namespace forma::tok
