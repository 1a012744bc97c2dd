// UTF-8 helpers shared by the tokenizers: validation (invalid bytes must survive a round trip),
// splitting into characters, and GPT-2's byte-to-printable-character map used by ByteLevel BPE.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace forma::tok {

// Length of the valid UTF-8 character starting at s[pos], or 0 if the bytes there are not valid
// UTF-8 (overlong forms, surrogates and truncated sequences are invalid).
size_t utf8_char_length(std::string_view s, size_t pos);

// Decodes the valid character at s[pos] (utf8_char_length(s, pos) > 0 is a precondition).
uint32_t utf8_decode(std::string_view s, size_t pos);

void utf8_append(std::string& out, uint32_t codepoint);

// Calls visit(begin, end, valid) for the maximal runs of valid UTF-8 and for every invalid byte
// (one call each, valid = false), in order.
template <typename Visit>
void for_each_utf8_run(std::string_view s, Visit&& visit) {
  size_t run_start = 0, i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    size_t n = utf8_char_length(s, i);
    if (n > 0) {
      i += n;
      continue;
    }
    if (i > run_start) visit(run_start, i, true);
    visit(i, i + 1, false);
    run_start = ++i;
  }
  if (i > run_start) visit(run_start, i, true);
}

// The characters of s; each invalid byte is a piece of its own.
std::vector<std::string_view> split_utf8_chars(std::string_view s);

enum class NormalForm { NFC, NFD, NFKC, NFKD };
// The Unicode normalization form of s (utf8proc's tables). Invalid bytes pass through unchanged and
// split the text: each maximal valid run is normalized on its own.
std::string unicode_normalize(std::string_view s, NormalForm form);

// GPT-2's reversible map from the 256 byte values to printable characters (UTF-8 encoded).
const std::string& byte_to_char(uint8_t byte);
// The byte a character of that map stands for, or nothing if it is not one of the 256.
std::optional<uint8_t> char_to_byte(uint32_t codepoint);

// Maps every byte of `bytes` through byte_to_char.
std::string bytes_to_byte_level(std::string_view bytes);
// Inverse of bytes_to_byte_level; nothing if some character is not in the map.
std::optional<std::string> byte_level_to_bytes(std::string_view text);

// "<0x41>" -> 0x41: the byte-fallback token form used by SentencePiece-style vocabularies.
std::optional<uint8_t> parse_byte_token(std::string_view token);
std::string byte_token(uint8_t byte);

}  // namespace forma::tok
