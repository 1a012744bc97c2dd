// Normalizers and pre-tokenizers of tokenizer.json (decoders are in decoders.cpp).
#include "forma/tokenizer/pipeline.h"

#include "forma/tokenizer/json_util.h"
#include "forma/tokenizer/regex.h"
#include "forma/tokenizer/unicode.h"

namespace forma::tok {

using namespace json_util;

const char* const kGpt2SplitPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

std::string regex_escape(const std::string& literal) {
  std::string out;
  for (char c : literal) {
    if (std::string_view("\\^$.|?*+()[]{}-/ #").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

namespace {

void replace_all(std::string& text, const std::string& from, const std::string& to) {
  if (from.empty() || text.find(from) == std::string::npos) return;
  std::string out;
  size_t pos = 0;
  for (size_t hit; (hit = text.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
    out.append(text, pos, hit - pos);
    out += to;
  }
  out.append(text, pos, std::string::npos);
  text = std::move(out);
}

// {"String": "..."} or {"Regex": "..."}: literal patterns stay literal, regexes are compiled.
struct Pattern {
  std::string literal;
  std::unique_ptr<Regex> regex;
  Pattern(const json& j, const std::string& where) {
    check(j.is_object(), "{}.pattern: expected {{\"String\": ...}} or {{\"Regex\": ...}}", where);
    if (j.contains("Regex")) {
      regex = std::make_unique<Regex>(string_field(j, "Regex", where + ".pattern"), where + ".pattern");
    } else {
      literal = string_field(j, "String", where + ".pattern");
      check(!literal.empty(), "{}.pattern.String: empty pattern", where);
    }
  }
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const {
    if (regex) return regex->find_all(text);
    std::vector<std::pair<size_t, size_t>> out;
    for (size_t pos = 0, hit; (hit = text.find(literal, pos)) != std::string_view::npos; pos = hit + literal.size())
      out.emplace_back(hit, hit + literal.size());
    return out;
  }
};

class SequenceNormalizer : public Normalizer {
 public:
  std::vector<std::unique_ptr<Normalizer>> steps;
  void apply(std::string& text) const override {
    for (const auto& s : steps) s->apply(text);
  }
};

class PrependNormalizer : public Normalizer {
 public:
  std::string prefix;
  void apply(std::string& text) const override {
    if (!text.empty()) text.insert(0, prefix);  // Hugging Face leaves an empty text empty
  }
};

class ReplaceNormalizer : public Normalizer {
 public:
  ReplaceNormalizer(const json& j, const std::string& where)
      : pattern(field(j, "pattern", where), where), content(string_field(j, "content", where)) {}
  Pattern pattern;
  std::string content;
  void apply(std::string& text) const override {
    if (!pattern.regex) return replace_all(text, pattern.literal, content);
    std::string out;
    size_t pos = 0;
    for (auto [b, e] : pattern.find_all(text)) {
      out.append(text, pos, b - pos);
      out += content;
      pos = e;
    }
    out.append(text, pos, std::string::npos);
    text = std::move(out);
  }
};

class StripNormalizer : public Normalizer {
 public:
  bool left = true, right = true;
  void apply(std::string& text) const override {
    auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; };
    size_t b = 0, e = text.size();
    if (left)
      while (b < e && space(text[b])) ++b;
    if (right)
      while (e > b && space(text[e - 1])) --e;
    text = text.substr(b, e - b);
  }
};

class UnicodeNormalizer : public Normalizer {
 public:
  explicit UnicodeNormalizer(NormalForm f) : form(f) {}
  NormalForm form;
  void apply(std::string& text) const override { text = unicode_normalize(text, form); }
};

enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

// Splits every piece at the pattern's matches, keeping them as `behavior` says.
class SplitPreTokenizer : public PreTokenizer {
 public:
  SplitPreTokenizer(std::unique_ptr<Pattern> p, SplitBehavior b, bool inv)
      : pattern(std::move(p)), behavior(b), invert(inv) {}
  std::unique_ptr<Pattern> pattern;
  SplitBehavior behavior;
  bool invert;

  void apply(std::vector<std::string>& pieces, bool) const override {
    std::vector<std::string> out;
    out.reserve(pieces.size() * 4);
    for (const std::string& piece : pieces) split(piece, out);
    pieces = std::move(out);
  }

 private:
  void split(const std::string& piece, std::vector<std::string>& out) const {
    // Spans covering the piece: (begin, end, is_match).
    struct Span { size_t b, e; bool match; };
    std::vector<Span> spans;
    size_t pos = 0;
    for (auto [b, e] : pattern->find_all(piece)) {
      if (b > pos) spans.push_back({pos, b, invert});
      spans.push_back({b, e, !invert});
      pos = e;
    }
    if (pos < piece.size()) spans.push_back({pos, piece.size(), invert});
    std::string pending;  // MergedWithNext: a match waiting for the text after it
    for (size_t i = 0; i < spans.size(); ++i) {
      const Span& s = spans[i];
      std::string text = piece.substr(s.b, s.e - s.b);
      switch (behavior) {
        case SplitBehavior::Removed:
          if (!s.match) out.push_back(std::move(text));
          break;
        case SplitBehavior::Isolated:
          out.push_back(std::move(text));
          break;
        case SplitBehavior::MergedWithPrevious:
          if (s.match && !out.empty() && i > 0 && !spans[i - 1].match) out.back() += text;
          else out.push_back(std::move(text));
          break;
        case SplitBehavior::MergedWithNext:
          if (s.match) {
            if (!pending.empty()) out.push_back(std::move(pending));
            pending = std::move(text);
          } else {
            out.push_back(pending + text);
            pending.clear();
          }
          break;
        case SplitBehavior::Contiguous:
          if (s.match && i > 0 && spans[i - 1].match) out.back() += text;
          else out.push_back(std::move(text));
          break;
      }
    }
    if (!pending.empty()) out.push_back(std::move(pending));
  }
};

class ByteLevelPreTokenizer : public PreTokenizer {
 public:
  bool add_prefix_space = false;
  std::unique_ptr<Regex> regex;  // null when use_regex is false
  void apply(std::vector<std::string>& pieces, bool) const override {
    std::vector<std::string> out;
    out.reserve(pieces.size() * 4);
    for (std::string& piece : pieces) {
      if (add_prefix_space && (piece.empty() || piece[0] != ' ')) piece.insert(0, " ");
      if (!regex) {
        out.push_back(bytes_to_byte_level(piece));
        continue;
      }
      // Text between matches (only invalid UTF-8 bytes, given the pattern) is kept as well.
      size_t pos = 0;
      for (auto [b, e] : regex->find_all(piece)) {
        if (b > pos) out.push_back(bytes_to_byte_level(std::string_view(piece).substr(pos, b - pos)));
        out.push_back(bytes_to_byte_level(std::string_view(piece).substr(b, e - b)));
        pos = e;
      }
      if (pos < piece.size()) out.push_back(bytes_to_byte_level(std::string_view(piece).substr(pos)));
    }
    pieces = std::move(out);
  }
};

class MetaspacePreTokenizer : public PreTokenizer {
 public:
  std::string replacement = "\xE2\x96\x81";  // U+2581
  std::string prepend_scheme = "always";
  bool split = true;
  void apply(std::vector<std::string>& pieces, bool first_segment) const override {
    std::vector<std::string> out;
    for (size_t i = 0; i < pieces.size(); ++i) {
      std::string piece = pieces[i];
      replace_all(piece, " ", replacement);
      bool prepend = prepend_scheme == "always" || (prepend_scheme == "first" && first_segment && i == 0);
      if (prepend && piece.compare(0, replacement.size(), replacement) != 0) piece.insert(0, replacement);
      if (!split) {
        out.push_back(std::move(piece));
        continue;
      }
      // Each replacement character starts a new word (MergedWithNext).
      size_t start = 0;
      size_t hit = piece.find(replacement, replacement.size());
      while (hit != std::string::npos) {
        if (hit > start) out.push_back(piece.substr(start, hit - start));
        start = hit;
        hit = piece.find(replacement, start + replacement.size());
      }
      if (start < piece.size()) out.push_back(piece.substr(start));
    }
    pieces = std::move(out);
  }
};

class SequencePreTokenizer : public PreTokenizer {
 public:
  std::vector<std::unique_ptr<PreTokenizer>> steps;
  void apply(std::vector<std::string>& pieces, bool first_segment) const override {
    for (const auto& s : steps) s->apply(pieces, first_segment);
  }
};

std::unique_ptr<PreTokenizer> regex_split(const std::string& pattern, SplitBehavior behavior, bool invert,
                                          const std::string& where) {
  auto p = std::make_unique<Pattern>(json{{"Regex", pattern}}, where);
  return std::make_unique<SplitPreTokenizer>(std::move(p), behavior, invert);
}

SplitBehavior parse_behavior(const std::string& name, const std::string& where) {
  if (name == "Removed") return SplitBehavior::Removed;
  if (name == "Isolated") return SplitBehavior::Isolated;
  if (name == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::MergedWithNext;
  if (name == "Contiguous") return SplitBehavior::Contiguous;
  fail("{}.behavior: unknown split behavior '{}'", where, name);
}

std::string prepend_scheme_of(const json& j, const std::string& where) {
  if (j.contains("prepend_scheme")) return string_field(j, "prepend_scheme", where);
  return bool_or(j, "add_prefix_space", true, where) ? "always" : "never";  // older files
}

}  // namespace

std::unique_ptr<Normalizer> parse_normalizer(const json& j, const std::string& where) {
  if (j.is_null()) return nullptr;
  std::string type = string_field(j, "type", where);
  if (type == "Sequence") {
    auto seq = std::make_unique<SequenceNormalizer>();
    const json& steps = array_field(j, "normalizers", where);
    for (size_t i = 0; i < steps.size(); ++i)
      if (auto s = parse_normalizer(steps[i], fmt::format("{}.normalizers[{}]", where, i))) seq->steps.push_back(std::move(s));
    return seq;
  }
  if (type == "Prepend") {
    auto n = std::make_unique<PrependNormalizer>();
    n->prefix = string_field(j, "prepend", where);
    return n;
  }
  if (type == "Replace") return std::make_unique<ReplaceNormalizer>(j, where);
  if (type == "Strip") {
    auto n = std::make_unique<StripNormalizer>();
    n->left = bool_or(j, "strip_left", true, where);
    n->right = bool_or(j, "strip_right", true, where);
    return n;
  }
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(NormalForm::NFC);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(NormalForm::NFD);
  if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(NormalForm::NFKC);
  if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(NormalForm::NFKD);
  fail("{}: unsupported normalizer type '{}'", where, type);
}

std::unique_ptr<PreTokenizer> parse_pre_tokenizer(const json& j, const std::string& where) {
  if (j.is_null()) return nullptr;
  std::string type = string_field(j, "type", where);
  if (type == "Sequence") {
    auto seq = std::make_unique<SequencePreTokenizer>();
    const json& steps = array_field(j, "pretokenizers", where);
    for (size_t i = 0; i < steps.size(); ++i)
      if (auto s = parse_pre_tokenizer(steps[i], fmt::format("{}.pretokenizers[{}]", where, i)))
        seq->steps.push_back(std::move(s));
    return seq;
  }
  if (type == "Split") {
    auto pattern = std::make_unique<Pattern>(field(j, "pattern", where), where);
    return std::make_unique<SplitPreTokenizer>(std::move(pattern),
                                               parse_behavior(string_field(j, "behavior", where), where),
                                               bool_or(j, "invert", false, where));
  }
  if (type == "ByteLevel") {
    auto p = std::make_unique<ByteLevelPreTokenizer>();
    p->add_prefix_space = bool_or(j, "add_prefix_space", true, where);
    if (bool_or(j, "use_regex", true, where)) p->regex = std::make_unique<Regex>(kGpt2SplitPattern, where);
    return p;
  }
  if (type == "Metaspace") {
    auto p = std::make_unique<MetaspacePreTokenizer>();
    p->replacement = string_or(j, "replacement", p->replacement, where);
    p->prepend_scheme = prepend_scheme_of(j, where);
    p->split = bool_or(j, "split", true, where);
    return p;
  }
  if (type == "Whitespace") return regex_split(R"(\w+|[^\w\s]+)", SplitBehavior::Removed, true, where);
  if (type == "WhitespaceSplit") return regex_split(R"(\s+)", SplitBehavior::Removed, false, where);
  if (type == "Digits") {
    bool single = bool_or(j, "individual_digits", false, where);
    return regex_split(single ? R"(\p{N})" : R"(\p{N}+)", SplitBehavior::Isolated, false, where);
  }
  fail("{}: unsupported pre_tokenizer type '{}'", where, type);
}

}  // namespace forma::tok
