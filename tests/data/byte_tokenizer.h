// A stand-in tokenizer for dataset tests: every byte is its own id (0..255) and EOS is 256, so the
// expected ids of any text can be written down by hand. `extra_vocab` pads the vocabulary (to test
// the int32 dtype) and `offset` shifts the byte ids up (to produce ids above 65535).
#pragma once
#include <optional>
#include <string>

#include "forma/tokenizer/tokenizer.h"

namespace forma::test {

class ByteTokenizer : public tok::Tokenizer {
 public:
  explicit ByteTokenizer(int32_t offset = 0, int32_t extra_vocab = 0) : offset_(offset), extra_(extra_vocab) {}
  std::vector<int32_t> encode(std::string_view text, bool = false) const override {
    std::vector<int32_t> ids;
    for (unsigned char c : text) ids.push_back(offset_ + c);
    return ids;
  }
  std::string decode(const std::vector<int32_t>& ids, bool = false) const override {
    std::string text;
    for (int32_t id : ids)
      if (id != eos()) text += static_cast<char>(id - offset_);
    return text;
  }
  int32_t vocab_size() const override { return offset_ + 257 + extra_; }
  std::optional<int32_t> token_to_id(std::string_view) const override { return std::nullopt; }
  std::string id_to_token(int32_t id) const override { return std::to_string(id); }
  std::optional<int32_t> bos_id() const override { return std::nullopt; }
  std::optional<int32_t> eos_id() const override { return eos(); }
  int32_t eos() const { return offset_ + 256; }

 private:
  int32_t offset_, extra_;
};

}  // namespace forma::test
