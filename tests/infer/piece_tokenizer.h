// A tokenizer for tests whose every id decodes to a fixed byte string (its "piece"), and decode is
// plain concatenation, as for byte-level BPE. Pieces may be fragments of a UTF-8 character. Ids
// without a piece decode to "<id>".
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "forma/tokenizer/tokenizer.h"

namespace forma::test {

class PieceTokenizer : public tok::Tokenizer {
 public:
  PieceTokenizer(int32_t vocab_size, std::map<int32_t, std::string> pieces)
      : vocab_size_(vocab_size), pieces_(std::move(pieces)) {}

  std::vector<int32_t> encode(std::string_view, bool = false) const override { return {}; }
  std::string decode(const std::vector<int32_t>& ids, bool = false) const override {
    std::string out;
    for (int32_t id : ids) out += id_to_token(id);
    return out;
  }
  int32_t vocab_size() const override { return vocab_size_; }
  std::optional<int32_t> token_to_id(std::string_view) const override { return std::nullopt; }
  std::string id_to_token(int32_t id) const override {
    auto it = pieces_.find(id);
    return it != pieces_.end() ? it->second : "<" + std::to_string(id) + ">";
  }
  std::optional<int32_t> bos_id() const override { return std::nullopt; }
  std::optional<int32_t> eos_id() const override { return std::nullopt; }

 private:
  int32_t vocab_size_;
  std::map<int32_t, std::string> pieces_;
};

}  // namespace forma::test
