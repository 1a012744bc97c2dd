#include "forma/chat/jinja_lexer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "forma/core/error.h"

namespace forma::chat {

bool is_python_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

void append_utf8(uint32_t code, std::string& out) {
  if (code < 0x80) {
    out += static_cast<char>(code);
  } else if (code < 0x800) {
    out += static_cast<char>(0xC0 | (code >> 6));
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else if (code < 0x10000) {
    out += static_cast<char>(0xE0 | (code >> 12));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (code >> 18));
    out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  }
}


namespace {

// Jinja2 turns \r\n and \r into \n and drops one trailing newline (keep_trailing_newline=False).
std::string normalize_newlines(const std::string& source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

class Lexer {
 public:
  explicit Lexer(const std::string& source) : src_(normalize_newlines(source)) {}

  std::vector<Token> run() {
    while (pos_ < src_.size()) lex_text_and_tag();
    push(Token::Type::End, "", pos_);
    return std::move(tokens_);
  }

 private:
  std::string src_;
  size_t pos_ = 0;
  bool line_starting_ = true;  // the previous match ended with a newline (for lstrip_blocks)
  std::vector<Token> tokens_;
  mutable size_t scanned_offset_ = 0;  // line_column() has counted newlines before this offset
  mutable int scanned_line_ = 1;
  mutable size_t scanned_line_start_ = 0;

  [[noreturn]] void error_at(size_t offset, const std::string& message) const {
    auto [line, column] = line_column(offset);
    fail("chat template line {}, column {}: {}", line, column, message);
  }

  // Offsets arrive mostly in increasing order, so the scan resumes where the last one ended.
  std::pair<int, int> line_column(size_t offset) const {
    if (offset < scanned_offset_) {
      scanned_offset_ = 0;
      scanned_line_ = 1;
      scanned_line_start_ = 0;
    }
    for (size_t i = scanned_offset_; i < offset && i < src_.size(); ++i) {
      if (src_[i] == '\n') {
        ++scanned_line_;
        scanned_line_start_ = i + 1;
      }
    }
    scanned_offset_ = std::max(scanned_offset_, std::min(offset, src_.size()));
    return {scanned_line_, static_cast<int>(offset - scanned_line_start_) + 1};
  }

  void push(Token::Type type, std::string text, size_t offset) {
    Token token{type, std::move(text)};
    auto [line, column] = line_column(offset);
    token.line = line;
    token.column = column;
    tokens_.push_back(std::move(token));
  }

  bool starts_with(size_t at, const char* text) const {
    return src_.compare(at, std::strlen(text), text) == 0;
  }

  // Finds the next {{, {% or {#; emits the text before it (whitespace control applied) and the tag.
  void lex_text_and_tag() {
    size_t tag = pos_;
    while (true) {
      tag = src_.find('{', tag);
      if (tag == std::string::npos || tag + 1 >= src_.size()) break;
      char kind = src_[tag + 1];
      if (kind == '{' || kind == '%' || kind == '#') break;
      ++tag;
    }
    if (tag == std::string::npos || tag + 1 >= src_.size()) {
      push(Token::Type::Text, src_.substr(pos_), pos_);
      pos_ = src_.size();
      return;
    }
    char kind = src_[tag + 1];
    char sign = tag + 2 < src_.size() ? src_[tag + 2] : '\0';
    std::string text = src_.substr(pos_, tag - pos_);
    if (sign == '-') {
      size_t end = text.size();
      while (end > 0 && is_python_space(text[end - 1])) --end;
      text.resize(end);
    } else if (sign != '+' && kind != '{') {
      // lstrip_blocks: drop spaces and tabs between the line start and a block or comment tag.
      size_t line_pos = text.rfind('\n');
      line_pos = line_pos == std::string::npos ? 0 : line_pos + 1;
      if ((line_pos > 0 || line_starting_) &&
          text.find_first_not_of(" \t", line_pos) == std::string::npos) {
        text.resize(line_pos);
      }
    }
    if (!text.empty()) push(Token::Type::Text, text, pos_);
    pos_ = tag + 2 + ((sign == '-' || sign == '+') ? 1 : 0);
    line_starting_ = false;
    if (kind == '#') {
      lex_comment(tag);
    } else if (kind == '%' && try_raw(tag)) {
      return;
    } else {
      push(kind == '{' ? Token::Type::VarBegin : Token::Type::BlockBegin, "", tag);
      lex_expression_tokens(kind == '{', tag);
    }
  }

  // After "-#}" all whitespace goes; after "#}" (trim_blocks) one newline goes.
  void lex_comment(size_t begin) {
    size_t end = src_.find("#}", pos_);
    if (end == std::string::npos) error_at(begin, "unclosed comment (missing '#}')");
    bool minus = end > pos_ && src_[end - 1] == '-';
    bool plus = end > pos_ && src_[end - 1] == '+';
    pos_ = end + 2;
    consume_after_block_end(minus, plus);
  }

  void consume_after_block_end(bool minus, bool plus) {
    if (minus) {
      while (pos_ < src_.size() && is_python_space(src_[pos_])) ++pos_;
    } else if (!plus && pos_ < src_.size() && src_[pos_] == '\n') {
      ++pos_;
    }
    line_starting_ = pos_ > 0 && src_[pos_ - 1] == '\n';
  }

  // {% raw %}...{% endraw %}: the body is text, untouched.
  bool try_raw(size_t begin) {
    size_t p = pos_;
    while (p < src_.size() && is_python_space(src_[p])) ++p;
    if (!starts_with(p, "raw")) return false;
    p += 3;
    while (p < src_.size() && is_python_space(src_[p])) ++p;
    bool minus = starts_with(p, "-%}");
    if (!minus && !starts_with(p, "%}")) return false;
    pos_ = p + (minus ? 3 : 2);
    if (minus) consume_after_block_end(true, false);
    size_t search = pos_;
    while (true) {
      size_t tag = src_.find("{%", search);
      if (tag == std::string::npos) error_at(begin, "unclosed {% raw %} (missing {% endraw %})");
      size_t q = tag + 2;
      bool strip_before = q < src_.size() && src_[q] == '-';
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) ++q;
      while (q < src_.size() && is_python_space(src_[q])) ++q;
      if (!starts_with(q, "endraw")) {
        search = tag + 2;
        continue;
      }
      q += 6;
      while (q < src_.size() && is_python_space(src_[q])) ++q;
      bool end_minus = starts_with(q, "-%}");
      bool end_plus = starts_with(q, "+%}");
      if (!end_minus && !end_plus && !starts_with(q, "%}")) error_at(q, "expected '%}' after endraw");
      std::string body = src_.substr(pos_, tag - pos_);
      if (strip_before) {
        while (!body.empty() && is_python_space(body.back())) body.pop_back();
      }
      if (!body.empty()) push(Token::Type::Text, body, pos_);
      pos_ = q + (end_minus || end_plus ? 3 : 2);
      consume_after_block_end(end_minus, end_plus);
      return true;
    }
  }

  // Tokens inside {{ }} or {% %} up to the closing delimiter (not while brackets are open).
  void lex_expression_tokens(bool is_variable, size_t begin) {
    std::vector<char> brackets;
    while (true) {
      if (pos_ >= src_.size()) {
        error_at(begin, is_variable ? "unclosed '{{' (missing '}}')" : "unclosed '{%' (missing '%}')");
      }
      if (brackets.empty() && try_close(is_variable)) return;
      char c = src_[pos_];
      if (is_python_space(c)) {
        ++pos_;
      } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t start = pos_;
        while (pos_ < src_.size() &&
               (std::isalnum(static_cast<unsigned char>(src_[pos_])) || src_[pos_] == '_')) {
          ++pos_;
        }
        push(Token::Type::Name, src_.substr(start, pos_ - start), start);
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        lex_number();
      } else if (c == '\'' || c == '"') {
        lex_string();
      } else {
        lex_operator(brackets);
      }
    }
  }

  bool try_close(bool is_variable) {
    const char* close = is_variable ? "}}" : "%}";
    size_t at = pos_;
    bool minus = starts_with(at, "-") && starts_with(at + 1, close);
    bool plus = !is_variable && starts_with(at, "+") && starts_with(at + 1, close);
    if (minus || plus) ++at;
    if (!starts_with(at, close)) return false;
    push(is_variable ? Token::Type::VarEnd : Token::Type::BlockEnd, "", pos_);
    pos_ = at + 2;
    if (is_variable) {
      if (minus) {
        while (pos_ < src_.size() && is_python_space(src_[pos_])) ++pos_;
      }
      line_starting_ = pos_ > 0 && src_[pos_ - 1] == '\n';
    } else {
      consume_after_block_end(minus, plus);
    }
    return true;
  }

  void lex_number() {
    size_t start = pos_;
    std::string digits;
    auto take_digits = [&] {
      while (pos_ < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[pos_])) || src_[pos_] == '_')) {
        if (src_[pos_] != '_') digits += src_[pos_];
        ++pos_;
      }
    };
    take_digits();
    bool is_float = false;
    if (pos_ + 1 < src_.size() && src_[pos_] == '.' && std::isdigit(static_cast<unsigned char>(src_[pos_ + 1]))) {
      is_float = true;
      digits += src_[pos_++];
      take_digits();
    }
    if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
      size_t p = pos_ + 1;
      if (p < src_.size() && (src_[p] == '+' || src_[p] == '-')) ++p;
      if (p < src_.size() && std::isdigit(static_cast<unsigned char>(src_[p]))) {
        is_float = true;
        digits += src_.substr(pos_, p - pos_);
        pos_ = p;
        take_digits();
      }
    }
    push(is_float ? Token::Type::Float : Token::Type::Int, digits, start);
    try {
      if (is_float) {
        tokens_.back().float_value = std::stod(digits);
      } else {
        tokens_.back().int_value = std::stoll(digits);
      }
    } catch (const std::exception&) {
      error_at(start, "number out of range: " + digits);
    }
  }

  // Python string literal escapes (Jinja2 decodes literals with "unicode-escape").
  void lex_string() {
    size_t start = pos_;
    char quote = src_[pos_++];
    std::string value;
    while (true) {
      if (pos_ >= src_.size()) error_at(start, "unterminated string literal");
      char c = src_[pos_++];
      if (c == quote) break;
      if (c != '\\') {
        value += c;
        continue;
      }
      if (pos_ >= src_.size()) error_at(start, "unterminated string literal");
      char e = src_[pos_++];
      switch (e) {
        case 'n': value += '\n'; break;
        case 't': value += '\t'; break;
        case 'r': value += '\r'; break;
        case 'b': value += '\b'; break;
        case 'f': value += '\f'; break;
        case 'v': value += '\v'; break;
        case 'a': value += '\a'; break;
        case '0': value += '\0'; break;
        case '\\': value += '\\'; break;
        case '\'': value += '\''; break;
        case '"': value += '"'; break;
        case '\n': break;  // backslash-newline continues the line
        case 'x': value_hex(2, start, value); break;
        case 'u': value_hex(4, start, value); break;
        case 'U': value_hex(8, start, value); break;
        default: value += '\\'; value += e;  // unknown escapes stay as written, like Python
      }
    }
    push(Token::Type::String, value, start);
  }

  void value_hex(int count, size_t start, std::string& out) {
    if (pos_ + count > src_.size()) error_at(start, "truncated \\x/\\u escape in string literal");
    uint32_t code = 0;
    for (int i = 0; i < count; ++i) {
      char h = src_[pos_++];
      if (!std::isxdigit(static_cast<unsigned char>(h))) error_at(start, "bad \\x/\\u escape in string literal");
      code = code * 16 + static_cast<uint32_t>(std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
    }
    append_utf8(code, out);
  }

  void lex_operator(std::vector<char>& brackets) {
    static const char* two_char[] = {"**", "//", "==", "!=", "<=", ">="};
    for (const char* op : two_char) {
      if (starts_with(pos_, op)) {
        push(Token::Type::Op, op, pos_);
        pos_ += 2;
        return;
      }
    }
    char c = src_[pos_];
    if (std::strchr("+-/*%~[](){}<>=.:|,;", c) == nullptr) {
      error_at(pos_, fmt::format("unexpected character '{}'", c));
    }
    if (c == '(' || c == '[' || c == '{') brackets.push_back(c);
    if (c == ')' || c == ']' || c == '}') {
      char open = c == ')' ? '(' : c == ']' ? '[' : '{';
      if (brackets.empty() || brackets.back() != open) {
        error_at(pos_, fmt::format("unexpected '{}'", c));
      }
      brackets.pop_back();
    }
    push(Token::Type::Op, std::string(1, c), pos_);
    ++pos_;
  }
};

}  // namespace

std::vector<Token> tokenize_template(const std::string& source) { return Lexer(source).run(); }

}  // namespace forma::chat
