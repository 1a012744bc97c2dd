#include "forma/tokenizer/added_tokens.h"

#include <algorithm>
#include <cctype>

namespace forma::tok {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

// A word character for single_word: ASCII alphanumerics, '_' and every non-ASCII byte.
bool is_word_byte(char c) {
  auto u = static_cast<unsigned char>(c);
  return u >= 0x80 || std::isalnum(u) || c == '_';
}

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(std::vector<AddedToken> tokens) : tokens_(std::move(tokens)) {
  by_first_byte_.resize(256);
  for (int32_t i = 0; i < static_cast<int32_t>(tokens_.size()); ++i)
    if (!tokens_[i].content.empty()) by_first_byte_[static_cast<uint8_t>(tokens_[i].content[0])].push_back(i);
  for (auto& list : by_first_byte_)
    std::stable_sort(list.begin(), list.end(), [&](int32_t a, int32_t b) {
      return tokens_[a].content.size() > tokens_[b].content.size();
    });
}

int32_t AddedTokenMatcher::match_at(std::string_view text, size_t pos) const {
  for (int32_t index : by_first_byte_[static_cast<uint8_t>(text[pos])]) {
    const AddedToken& t = tokens_[index];
    if (text.compare(pos, t.content.size(), t.content) != 0) continue;
    if (t.single_word) {
      size_t end = pos + t.content.size();
      if ((pos > 0 && is_word_byte(text[pos - 1])) || (end < text.size() && is_word_byte(text[end]))) continue;
    }
    return index;
  }
  return -1;
}

std::vector<TextSegment> AddedTokenMatcher::split(std::string_view text) const {
  std::vector<TextSegment> out;
  if (tokens_.empty()) {
    if (!text.empty()) out.push_back({0, text.size(), -1});
    return out;
  }
  size_t plain_start = 0;
  for (size_t pos = 0; pos < text.size();) {
    int32_t index = match_at(text, pos);
    if (index < 0) {
      ++pos;
      continue;
    }
    const AddedToken& t = tokens_[index];
    size_t plain_end = pos;
    if (t.lstrip)
      while (plain_end > plain_start && is_space(text[plain_end - 1])) --plain_end;
    if (plain_end > plain_start) out.push_back({plain_start, plain_end, -1});
    size_t end = pos + t.content.size();
    out.push_back({pos, end, index});
    if (t.rstrip)
      while (end < text.size() && is_space(text[end])) ++end;
    plain_start = pos = end;
  }
  if (plain_start < text.size()) out.push_back({plain_start, text.size(), -1});
  return out;
}

}  // namespace forma::tok
