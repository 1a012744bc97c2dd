// Decoders of tokenizer.json: turn the token strings of an id sequence back into text.
#include "forma/tokenizer/json_util.h"
#include "forma/tokenizer/pipeline.h"
#include "forma/tokenizer/unicode.h"

namespace forma::tok {

using namespace json_util;

namespace {

std::string join(const std::vector<std::string>& tokens) {
  std::string out;
  for (const auto& t : tokens) out += t;
  return out;
}

// Byte-level characters back to bytes. A token with a character outside the map (an added token
// such as "<|eot_id|>" is made of mapped characters, but others may not be) is kept as it is.
// Invalid UTF-8 is kept as raw bytes (Hugging Face would substitute U+FFFD).
class ByteLevelDecoder : public Decoder {
 public:
  void apply(std::vector<std::string>& tokens) const override {
    std::string out;
    for (const auto& t : tokens) {
      auto bytes = byte_level_to_bytes(t);
      out += bytes ? *bytes : t;
    }
    tokens.assign(1, std::move(out));
  }
};

class MetaspaceDecoder : public Decoder {
 public:
  std::string replacement;
  bool strip_first_space = true;
  void apply(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string out;
      const std::string& t = tokens[i];
      for (size_t pos = 0; pos < t.size();) {
        if (t.compare(pos, replacement.size(), replacement) == 0) {
          if (!(i == 0 && pos == 0 && strip_first_space)) out += ' ';
          pos += replacement.size();
        } else {
          out += t[pos++];
        }
      }
      tokens[i] = std::move(out);
    }
  }
};

class ReplaceDecoder : public Decoder {
 public:
  std::string from, to;
  void apply(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) {
      std::string out;
      size_t pos = 0;
      for (size_t hit; (hit = t.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
        out.append(t, pos, hit - pos);
        out += to;
      }
      out.append(t, pos, std::string::npos);
      t = std::move(out);
    }
  }
};

// Runs of <0xXX> tokens become their bytes.
class ByteFallbackDecoder : public Decoder {
 public:
  void apply(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    std::string bytes;
    for (auto& t : tokens) {
      if (auto b = parse_byte_token(t)) {
        bytes += static_cast<char>(*b);
        continue;
      }
      if (!bytes.empty()) out.push_back(std::move(bytes)), bytes.clear();
      out.push_back(std::move(t));
    }
    if (!bytes.empty()) out.push_back(std::move(bytes));
    tokens = std::move(out);
  }
};

class FuseDecoder : public Decoder {
 public:
  void apply(std::vector<std::string>& tokens) const override { tokens.assign(1, join(tokens)); }
};

// Removes up to `start` leading and `stop` trailing occurrences of `content` from every token.
class StripDecoder : public Decoder {
 public:
  std::string content;
  int64_t start = 0, stop = 0;
  void apply(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) {
      size_t b = 0, e = t.size();
      for (int64_t k = 0; k < start && e - b >= content.size() && t.compare(b, content.size(), content) == 0; ++k)
        b += content.size();
      for (int64_t k = 0; k < stop && e - b >= content.size() && t.compare(e - content.size(), content.size(), content) == 0; ++k)
        e -= content.size();
      t = t.substr(b, e - b);
    }
  }
};

class SequenceDecoder : public Decoder {
 public:
  std::vector<std::unique_ptr<Decoder>> steps;
  void apply(std::vector<std::string>& tokens) const override {
    for (const auto& s : steps) s->apply(tokens);
  }
};

}  // namespace

std::unique_ptr<Decoder> parse_decoder(const json& j, const std::string& where) {
  if (j.is_null()) return nullptr;
  std::string type = string_field(j, "type", where);
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "Metaspace") {
    auto d = std::make_unique<MetaspaceDecoder>();
    d->replacement = string_or(j, "replacement", "\xE2\x96\x81", where);
    std::string scheme = j.contains("prepend_scheme") ? string_field(j, "prepend_scheme", where)
                         : bool_or(j, "add_prefix_space", true, where) ? "always" : "never";
    d->strip_first_space = scheme != "never";
    return d;
  }
  if (type == "Replace") {
    auto d = std::make_unique<ReplaceDecoder>();
    const json& pattern = field(j, "pattern", where);
    check(pattern.is_object() && pattern.contains("String"), "{}.pattern: only {{\"String\": ...}} is supported", where);
    d->from = string_field(pattern, "String", where + ".pattern");
    check(!d->from.empty(), "{}.pattern.String: empty pattern", where);
    d->to = string_field(j, "content", where);
    return d;
  }
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    auto d = std::make_unique<StripDecoder>();
    d->content = string_field(j, "content", where);
    d->start = int_or(j, "start", 0, where);
    d->stop = int_or(j, "stop", 0, where);
    return d;
  }
  if (type == "Sequence") {
    auto seq = std::make_unique<SequenceDecoder>();
    const json& steps = array_field(j, "decoders", where);
    for (size_t i = 0; i < steps.size(); ++i)
      if (auto s = parse_decoder(steps[i], fmt::format("{}.decoders[{}]", where, i))) seq->steps.push_back(std::move(s));
    return seq;
  }
  fail("{}: unsupported decoder type '{}'", where, type);
}

}  // namespace forma::tok
