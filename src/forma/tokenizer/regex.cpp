#define PCRE2_CODE_UNIT_WIDTH 8
#include "forma/tokenizer/regex.h"

#include <pcre2.h>

#include "forma/core/error.h"
#include "forma/tokenizer/unicode.h"

namespace forma::tok {

struct Regex::Impl {
  pcre2_code* code = nullptr;
  bool jit = false;
};

Regex::Regex(const std::string& pattern, const std::string& where) : impl_(new Impl), pattern_(pattern) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  // DOLLAR_ENDONLY: `\s+$` in tiktoken's patterns means the end of the text, as in Rust/JS regexes.
  uint32_t options = PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK | PCRE2_DOLLAR_ENDONLY;
  impl_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), options,
                              &error, &offset, nullptr);
  if (!impl_->code) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof(message));
    fail("{}: bad regex at offset {}: {} (pattern {})", where, offset, reinterpret_cast<char*>(message), pattern);
  }
  impl_->jit = pcre2_jit_compile(impl_->code, PCRE2_JIT_COMPLETE) == 0;
}

Regex::~Regex() {
  if (impl_ && impl_->code) pcre2_code_free(impl_->code);
}

std::vector<std::pair<size_t, size_t>> Regex::find_all(std::string_view text) const {
  std::vector<std::pair<size_t, size_t>> out;
  for_each_utf8_run(text, [&](size_t begin, size_t end, bool valid) {
    if (valid) find_in_valid(text.substr(begin, end - begin), begin, out);
  });
  return out;
}

void Regex::find_in_valid(std::string_view text, size_t offset, std::vector<std::pair<size_t, size_t>>& out) const {
  struct MatchData {
    pcre2_match_data* data;
    explicit MatchData(const pcre2_code* code) : data(pcre2_match_data_create_from_pattern(code, nullptr)) {}
    ~MatchData() { pcre2_match_data_free(data); }
  } match(impl_->code);
  auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t start = 0;
  while (start < text.size()) {
    // The text was validated as UTF-8 by find_all, so PCRE2 need not re-check it on every call
    // (which would make the loop quadratic).
    int rc = impl_->jit ? pcre2_jit_match(impl_->code, subject, text.size(), start, 0, match.data, nullptr)
                        : pcre2_match(impl_->code, subject, text.size(), start, PCRE2_NO_UTF_CHECK, match.data, nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    check(rc >= 0, "regex match failed with PCRE2 error {} (pattern {})", rc, pattern_);
    PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match.data);
    size_t b = ovector[0], e = ovector[1];
    if (e == b) {
      // An empty match: step over one character so that the loop advances.
      size_t n = utf8_char_length(text, b);
      start = b + (n ? n : 1);
      continue;
    }
    out.emplace_back(offset + b, offset + e);
    start = e;
  }
}

}  // namespace forma::tok
