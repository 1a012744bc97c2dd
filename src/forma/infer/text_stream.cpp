#include "forma/infer/text_stream.h"

#include <algorithm>

#include "forma/core/error.h"

namespace forma::infer {

namespace {

// Bytes a UTF-8 sequence starting with `lead` has (0 when `lead` cannot start a multi-byte one).
size_t sequence_length(unsigned char lead) {
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 0;
}

bool is_continuation(unsigned char byte) { return (byte & 0xC0) == 0x80; }

}  // namespace

size_t complete_utf8_prefix(const std::string& text) {
  const size_t size = text.size();
  // Only the last lead byte can be waiting for continuation bytes, and it is at most 3 bytes back.
  for (size_t back = 1; back <= 3 && back <= size; ++back) {
    const auto byte = static_cast<unsigned char>(text[size - back]);
    if (is_continuation(byte)) continue;
    const size_t needed = sequence_length(byte);
    return (needed > back) ? size - back : size;
  }
  return size;
}

TextStream::TextStream(const tok::Tokenizer& tokenizer, std::vector<std::string> stop_strings)
    : tokenizer_(tokenizer), stop_strings_(std::move(stop_strings)) {
  for (size_t i = 0; i < stop_strings_.size(); ++i) {
    check(!stop_strings_[i].empty(), "generation: stop string {} is empty", i + 1);
  }
}

size_t TextStream::showable_end() const {
  size_t end = complete_utf8_prefix(text_);
  // Hold back the longest tail of the text that could still grow into a stop string.
  for (const auto& stop : stop_strings_) {
    const size_t longest = std::min(stop.size() - 1, text_.size());
    for (size_t k = longest; k > 0; --k) {
      if (text_.compare(text_.size() - k, k, stop, 0, k) == 0) {
        end = std::min(end, text_.size() - k);
        break;
      }
    }
  }
  return std::max(end, emitted_);
}

std::string TextStream::take_until(size_t end) {
  if (end <= emitted_) return {};
  std::string piece = text_.substr(emitted_, end - emitted_);
  emitted_ = end;
  return piece;
}

std::string TextStream::push(int32_t id) {
  check(!stopped_ && !finished_, "generation: token pushed after the text stream ended");
  ids_.push_back(id);
  text_ = tokenizer_.decode(ids_);
  // The earliest occurrence of any stop string ends the text there.
  size_t cut = std::string::npos;
  for (const auto& stop : stop_strings_) cut = std::min(cut, text_.find(stop));
  if (cut != std::string::npos) {
    // With a decoder whose output for a longer sequence does not extend the shorter one's, text
    // before `emitted_` may already be shown; never cut before what was shown.
    text_.resize(std::max(cut, emitted_));
    stopped_ = true;
    return take_until(text_.size());
  }
  return take_until(showable_end());
}

std::string TextStream::finish() {
  finished_ = true;
  return take_until(text_.size());
}

}  // namespace forma::infer
