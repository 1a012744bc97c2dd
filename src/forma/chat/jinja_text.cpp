#include "forma/chat/jinja_text.h"

#include <cwctype>
#include <locale.h>

#include "forma/chat/jinja_lexer.h"

namespace forma::chat {

std::vector<std::string> utf8_code_points(const std::string& text) {
  std::vector<std::string> out;
  for (size_t i = 0; i < text.size();) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
    n = std::min(n, text.size() - i);
    out.push_back(text.substr(i, n));
    i += n;
  }
  return out;
}

size_t utf8_length(const std::string& text) {
  size_t count = 0;
  for (unsigned char c : text) count += (c & 0xC0) != 0x80;
  return count;
}

namespace {

// Unicode case mapping through glibc's C.UTF-8 tables (what Python's str.upper() does for all
// but the few characters that map to several, like "ß" -> "SS").
locale_t utf8_locale() {
  static locale_t locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(nullptr));
  return locale;
}

std::u32string decode_utf8(const std::string& text) {
  std::u32string out;
  for (const auto& point : utf8_code_points(text)) {
    auto b = [&](size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(point[i])); };
    switch (point.size()) {
      case 1: out += static_cast<char32_t>(b(0)); break;
      case 2: out += static_cast<char32_t>(((b(0) & 0x1F) << 6) | (b(1) & 0x3F)); break;
      case 3: out += static_cast<char32_t>(((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F)); break;
      default:
        out += static_cast<char32_t>(((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F));
    }
  }
  return out;
}

std::string encode_utf8(const std::u32string& points) {
  std::string out;
  for (char32_t c : points) append_utf8(static_cast<uint32_t>(c), out);
  return out;
}

char32_t to_upper(char32_t c) {
  if (c < 0x80) return static_cast<char32_t>(std::toupper(static_cast<int>(c)));
  locale_t l = utf8_locale();
  return l ? static_cast<char32_t>(towupper_l(static_cast<wint_t>(c), l)) : c;
}
char32_t to_lower(char32_t c) {
  if (c < 0x80) return static_cast<char32_t>(std::tolower(static_cast<int>(c)));
  locale_t l = utf8_locale();
  return l ? static_cast<char32_t>(towlower_l(static_cast<wint_t>(c), l)) : c;
}
bool is_cased_letter(char32_t c) {
  if (c < 0x80) return std::isalpha(static_cast<int>(c)) != 0;
  return to_upper(c) != c || to_lower(c) != c;
}

}  // namespace

std::string unicode_upper(const std::string& text) {
  std::u32string points = decode_utf8(text);
  for (auto& c : points) c = to_upper(c);
  return encode_utf8(points);
}

std::string unicode_lower(const std::string& text) {
  std::u32string points = decode_utf8(text);
  for (auto& c : points) c = to_lower(c);
  return encode_utf8(points);
}

std::string python_capitalize(const std::string& text) {
  std::u32string points = decode_utf8(text);
  for (size_t i = 0; i < points.size(); ++i) points[i] = i == 0 ? to_upper(points[i]) : to_lower(points[i]);
  return encode_utf8(points);
}

// Jinja's title filter: words start after "-", whitespace, "(", "{", "[" or "<".
std::string jinja_title(const std::string& text) {
  std::u32string points = decode_utf8(text);
  bool word_start = true;
  for (auto& c : points) {
    bool separator = c == '-' || (c < 0x80 && is_python_space(static_cast<char>(c))) || c == '(' || c == '{' ||
                     c == '[' || c == '<';
    if (separator) {
      word_start = true;
    } else {
      c = word_start ? to_upper(c) : to_lower(c);
      word_start = false;
    }
  }
  return encode_utf8(points);
}

// Python's str.title: a cased letter after an uncased character is upper-cased, others lower-cased.
std::string python_title(const std::string& text) {
  std::u32string points = decode_utf8(text);
  bool previous_cased = false;
  for (auto& c : points) {
    bool cased = is_cased_letter(c);
    if (cased) c = previous_cased ? to_lower(c) : to_upper(c);
    previous_cased = cased;
  }
  return encode_utf8(points);
}

}  // namespace forma::chat
