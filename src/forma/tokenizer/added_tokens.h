// Added tokens (special tokens like <|eot_id|>, and user tokens) are found in the text before
// pre-tokenization, leftmost-longest as Hugging Face does, honouring lstrip/rstrip/single_word.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace forma::tok {

struct AddedToken {
  std::string content;
  int32_t id = 0;
  bool special = false;
  bool lstrip = false;       // the match also swallows whitespace on its left
  bool rstrip = false;       // ... and on its right
  bool single_word = false;  // only matches when not inside a word
  bool normalized = false;   // matched in the normalized text instead of the raw text
};

struct TextSegment {
  size_t begin, end;
  int32_t token = -1;  // index into the matcher's tokens, or -1 for plain text
};

class AddedTokenMatcher {
 public:
  AddedTokenMatcher() = default;
  explicit AddedTokenMatcher(std::vector<AddedToken> tokens);

  bool empty() const { return tokens_.empty(); }
  const AddedToken& token(int32_t index) const { return tokens_[index]; }

  // Plain-text and token segments covering `text` in order (whitespace swallowed by lstrip/rstrip
  // belongs to no segment). Empty plain segments are left out.
  std::vector<TextSegment> split(std::string_view text) const;

 private:
  // Longest token matching at `pos` (obeying single_word), or -1.
  int32_t match_at(std::string_view text, size_t pos) const;
  std::vector<AddedToken> tokens_;
  std::vector<std::vector<int32_t>> by_first_byte_;  // 256 lists, longest first
};

}  // namespace forma::tok
