#include "forma/tokenizer/tiktoken.h"

#include <filesystem>
#include <mutex>
#include <unordered_map>

#include "forma/core/error.h"
#include "forma/core/files.h"
#include "forma/tokenizer/added_tokens.h"
#include "forma/tokenizer/bpe_merge.h"
#include "forma/tokenizer/regex.h"

namespace forma::tok {

namespace {

// Patterns as in tiktoken (openai_public.py); `$` is end of text (see Regex).
const char* const kR50kPattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
const char* const kCl100kPattern =
    R"('(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s)";
const char* const kO200kPattern =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

struct EncodingSpec {
  const char* pattern;
  std::vector<std::pair<std::string, int32_t>> specials;
};

EncodingSpec spec_for(const std::string& name, const std::string& where) {
  if (name == "r50k_base" || name == "gpt2") return {kR50kPattern, {{"<|endoftext|>", 50256}}};
  if (name == "p50k_base") return {kR50kPattern, {{"<|endoftext|>", 50256}}};
  if (name == "p50k_edit")
    return {kR50kPattern,
            {{"<|endoftext|>", 50256}, {"<|fim_prefix|>", 50281}, {"<|fim_middle|>", 50282}, {"<|fim_suffix|>", 50283}}};
  if (name == "cl100k_base")
    return {kCl100kPattern,
            {{"<|endoftext|>", 100257}, {"<|fim_prefix|>", 100258}, {"<|fim_middle|>", 100259},
             {"<|fim_suffix|>", 100260}, {"<|endofprompt|>", 100276}}};
  if (name == "o200k_base")
    return {kO200kPattern, {{"<|endoftext|>", 199999}, {"<|endofprompt|>", 200018}}};
  fail("{}: unknown tiktoken encoding '{}' (known: r50k_base, p50k_base, p50k_edit, cl100k_base, o200k_base)",
       where, name);
}

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

std::optional<std::string> base64_decode(std::string_view in) {
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    int v = base64_value(c);
    if (v < 0) return std::nullopt;
    buffer = (buffer << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xFF);
    }
  }
  return out;
}

class TiktokenTokenizer : public Tokenizer {
 public:
  TiktokenTokenizer(const std::string& path, const std::string& name) : source_(path) {
    parse_ranks(path);
    EncodingSpec spec = spec_for(name, path);
    regex_ = std::make_unique<Regex>(spec.pattern, path);
    std::vector<AddedToken> specials;
    for (auto& [content, id] : spec.specials) {
      specials.push_back({content, id, true});
      special_by_id_[id] = content;
      vocab_size_ = std::max(vocab_size_, id + 1);
    }
    specials_ = AddedTokenMatcher(std::move(specials));
    for (int b = 0; b < 256; ++b) {
      auto it = ranks_.find(std::string(1, static_cast<char>(b)));
      check(it != ranks_.end(), "{}: byte {} has no rank: not a byte-level BPE rank file", path, b);
      byte_rank_[b] = it->second;
    }
  }

  std::vector<int32_t> encode(std::string_view text, bool) const override {
    std::vector<int32_t> ids;
    ids.reserve(text.size() / 3 + 1);
    for (const TextSegment& s : specials_.split(text)) {
      if (s.token >= 0) {
        ids.push_back(specials_.token(s.token).id);
        continue;
      }
      std::string_view plain = text.substr(s.begin, s.end - s.begin);
      size_t pos = 0;
      for (auto [b, e] : regex_->find_all(plain)) {
        if (b > pos) encode_piece(plain.substr(pos, b - pos), ids);  // invalid UTF-8 bytes
        encode_piece(plain.substr(b, e - b), ids);
        pos = e;
      }
      if (pos < plain.size()) encode_piece(plain.substr(pos), ids);
    }
    return ids;
  }

  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const override {
    std::string out;
    for (int32_t id : ids) {
      auto it = special_by_id_.find(id);
      if (it != special_by_id_.end()) {
        if (!skip_special_tokens) out += it->second;
        continue;
      }
      out += id_to_token(id);
    }
    return out;
  }

  int32_t vocab_size() const override { return vocab_size_; }
  std::optional<int32_t> token_to_id(std::string_view token) const override {
    for (const auto& [id, content] : special_by_id_)
      if (content == token) return id;
    auto it = ranks_.find(std::string(token));
    if (it == ranks_.end()) return std::nullopt;
    return it->second;
  }
  std::string id_to_token(int32_t id) const override {
    auto it = special_by_id_.find(id);
    if (it != special_by_id_.end()) return it->second;
    check(id >= 0 && id < static_cast<int32_t>(by_rank_.size()) && has_rank_[id],
          "{}: token id {} is not in the vocabulary (size {})", source_, id, vocab_size_);
    return by_rank_[id];
  }
  std::optional<int32_t> bos_id() const override { return std::nullopt; }
  std::optional<int32_t> eos_id() const override { return token_to_id("<|endoftext|>"); }

 private:
  void parse_ranks(const std::string& path) {
    MappedFile file(path);
    std::string_view data = file.view();
    size_t line_no = 0;
    std::vector<std::pair<std::string, int32_t>> entries;
    int32_t highest = -1;
    std::string highest_token;
    for (size_t pos = 0; pos < data.size();) {
      size_t end = data.find('\n', pos);
      if (end == std::string_view::npos) end = data.size();
      std::string_view line = data.substr(pos, end - pos);
      pos = end + 1;
      ++line_no;
      if (line.empty()) continue;
      size_t space = line.find(' ');
      check(space != std::string_view::npos, "{}:{}: expected '<base64 token> <rank>'", path, line_no);
      auto token = base64_decode(line.substr(0, space));
      check(token.has_value() && !token->empty(), "{}:{}: bad base64 token", path, line_no);
      int64_t rank = 0;
      std::string_view digits = line.substr(space + 1);
      check(!digits.empty() && digits.size() < 10, "{}:{}: bad rank", path, line_no);
      for (char c : digits) {
        check(c >= '0' && c <= '9', "{}:{}: bad rank '{}'", path, line_no, digits);
        rank = rank * 10 + (c - '0');
      }
      check_token_id(rank, line.substr(0, space), fmt::format("{}:{}", path, line_no));
      if (rank > highest) highest = static_cast<int32_t>(rank), highest_token = std::string(line.substr(0, space));
      entries.emplace_back(std::move(*token), static_cast<int32_t>(rank));
    }
    check(!entries.empty(), "{}: no ranks in file", path);
    // The rank -> token table has an entry per rank up to the highest: refuse a sparse one first.
    check_token_id_density(highest, entries.size(), highest_token, path);
    by_rank_.resize(static_cast<size_t>(highest) + 1);
    has_rank_.assign(by_rank_.size(), false);
    for (auto& [token, r] : entries) {
      by_rank_[r] = token;
      has_rank_[r] = true;
      ranks_.emplace(std::move(token), r);
    }
    vocab_size_ = static_cast<int32_t>(by_rank_.size());
  }

  void encode_piece(std::string_view piece, std::vector<int32_t>& out) const {
    std::string key(piece);
    if (auto it = ranks_.find(key); it != ranks_.end()) {
      out.push_back(it->second);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(cache_mutex_);
      if (auto it = cache_.find(key); it != cache_.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        return;
      }
    }
    // tiktoken's rule: merge the adjacent pair whose concatenation has the lowest rank.
    std::vector<BpeSymbol> symbols(piece.size());
    for (size_t i = 0; i < piece.size(); ++i)
      symbols[i] = {byte_rank_[static_cast<uint8_t>(piece[i])], static_cast<uint32_t>(i), 1,
                    static_cast<int32_t>(i) - 1, i + 1 < piece.size() ? static_cast<int32_t>(i + 1) : -1};
    bpe_merge(symbols, [&](const BpeSymbol& l, const BpeSymbol& r) -> BpeMerge {
      auto it = ranks_.find(std::string(piece.substr(l.start, l.len + r.len)));
      if (it == ranks_.end()) return {-1, -1};
      return {it->second, it->second};
    });
    std::vector<int32_t> ids;
    for (const BpeSymbol& s : symbols)
      if (s.len > 0) ids.push_back(s.id);
    out.insert(out.end(), ids.begin(), ids.end());
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() >= (1 << 17)) cache_.clear();
    cache_.emplace(std::move(key), std::move(ids));
  }

  std::string source_;
  std::unordered_map<std::string, int32_t> ranks_;
  std::vector<std::string> by_rank_;
  std::vector<bool> has_rank_;
  std::unordered_map<int32_t, std::string> special_by_id_;
  AddedTokenMatcher specials_;
  std::unique_ptr<Regex> regex_;
  int32_t byte_rank_[256];
  int32_t vocab_size_ = 0;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace

std::unique_ptr<Tokenizer> load_tiktoken(const std::string& rank_file, const std::string& encoding_name) {
  std::string name = encoding_name.empty() ? std::filesystem::path(rank_file).stem().string() : encoding_name;
  return std::make_unique<TiktokenTokenizer>(rank_file, name);
}

}  // namespace forma::tok
