// The steps of a Hugging Face tokenizer.json pipeline around the model: normalizers (text ->
// text), pre-tokenizers (text -> words), decoders (tokens -> text). Each is parsed from its JSON
// object; an unknown or malformed step is a forma::Error naming the file and the JSON path.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace forma::tok {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void apply(std::string& text) const = 0;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Splits (and may rewrite) the pieces in place. first_segment: the pieces start the input text
  // (Metaspace's prepend_scheme "first").
  virtual void apply(std::vector<std::string>& pieces, bool first_segment) const = 0;
};

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void apply(std::vector<std::string>& tokens) const = 0;
};

// `where` is "<file>: <json path>" for error messages. A JSON null gives nullptr (no step).
std::unique_ptr<Normalizer> parse_normalizer(const nlohmann::json& j, const std::string& where);
std::unique_ptr<PreTokenizer> parse_pre_tokenizer(const nlohmann::json& j, const std::string& where);
std::unique_ptr<Decoder> parse_decoder(const nlohmann::json& j, const std::string& where);

// The regex GPT-2's ByteLevel pre-tokenizer splits words with.
extern const char* const kGpt2SplitPattern;

// A literal string as a PCRE2 pattern.
std::string regex_escape(const std::string& literal);

}  // namespace forma::tok
