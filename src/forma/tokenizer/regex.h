// A compiled PCRE2 pattern (UTF + UCP, JIT when available) for pre-tokenizer splitting. Matching is
// thread-safe: each call uses its own match data.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace forma::tok {

class Regex {
 public:
  // `where` names the file/field the pattern came from, for the error message.
  Regex(const std::string& pattern, const std::string& where);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // All non-overlapping matches [begin, end) in text, left to right. Text that is not valid
  // UTF-8 is matched run by run: an invalid byte is never part of a match.
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const;

  const std::string& pattern() const { return pattern_; }

 private:
  void find_in_valid(std::string_view text, size_t offset, std::vector<std::pair<size_t, size_t>>& out) const;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string pattern_;
};

}  // namespace forma::tok
