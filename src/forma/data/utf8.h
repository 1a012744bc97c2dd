// Strict UTF-8 validation for text that is about to be tokenized: a corpus with stray Latin-1 bytes
// or truncated multi-byte characters is a preparation error, reported with the place it occurs.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace forma::data {

// Offset of the first byte that does not start or continue a well-formed UTF-8 character (overlong
// forms, surrogates U+D800..DFFF and code points above U+10FFFF are ill-formed), or npos.
size_t find_invalid_utf8(std::string_view text);

// 1-based line number of byte `offset` in `text` (the number of '\n' before it, plus one).
int64_t line_of_offset(std::string_view text, size_t offset);

}  // namespace forma::data
