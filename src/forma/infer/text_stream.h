// Turns generated token ids into streamed text. Each push() decodes all generated ids so far (so
// tokenizers whose decode depends on context, like SentencePiece's leading-space rule, come out as
// one decode() of the whole output would) and returns only the part that is safe to show:
//  - complete UTF-8: the bytes of a character split over byte-level tokens are held back until the
//    character is complete;
//  - not possibly the start of a stop string: a tail of the text that is a prefix of a stop string
//    is held back until it either completes the stop string (generation stops, the stop string and
//    all after it are cut) or turns out not to be one.
// The pieces returned by push() and finish() concatenate to text().
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "forma/tokenizer/tokenizer.h"

namespace forma::infer {

// Length of the longest prefix of `text` that does not end inside an incomplete UTF-8 sequence
// (a lead byte at the end whose continuation bytes have not all arrived yet).
size_t complete_utf8_prefix(const std::string& text);

class TextStream {
 public:
  // Empty stop strings are rejected (forma::Error): they would stop before the first token.
  TextStream(const tok::Tokenizer& tokenizer, std::vector<std::string> stop_strings);

  // Adds one generated token (not an EOS token: generate() leaves those out of the text) and
  // returns the newly showable text, possibly empty. After a stop string appears, stopped() is
  // true and further pushes are errors.
  std::string push(int32_t id);
  // End of generation: returns everything still held back (incomplete bytes are emitted as they
  // are, as the tokenizer's decode does). text() is final afterwards.
  std::string finish();

  bool stopped() const { return stopped_; }
  // The text so far: after finish(), the whole generated text without the stop string.
  const std::string& text() const { return text_; }

 private:
  // Bytes of text_ (from `emitted_` on) that may be shown now.
  size_t showable_end() const;
  std::string take_until(size_t end);

  const tok::Tokenizer& tokenizer_;
  std::vector<std::string> stop_strings_;
  std::vector<int32_t> ids_;
  std::string text_;
  size_t emitted_ = 0;
  bool stopped_ = false;
  bool finished_ = false;
};

}  // namespace forma::infer
