// Splits a Jinja template into tokens the way Jinja2's lexer does with the options transformers
// uses (trim_blocks, lstrip_blocks, keep_trailing_newline=False): text, {{ }}, {% %} with the
// expression tokens inside them; comments vanish, {% raw %} bodies become text, and whitespace
// control (-, +, trim_blocks, lstrip_blocks) is applied to the text here.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace forma::chat {

struct Token {
  enum class Type { Text, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, End };
  Type type;
  std::string text;  // Text: the data; Name/Op: the symbol; String: the decoded value
  int64_t int_value = 0;
  double float_value = 0;
  int line = 1;
  int column = 1;
};

// Throws forma::Error "chat template line L, column C: ..." on malformed input.
std::vector<Token> tokenize_template(const std::string& source);

// Python's str.isspace() for one ASCII byte (what Jinja's "-" and \s strip).
bool is_python_space(char c);

// Appends the UTF-8 encoding of a code point.
void append_utf8(uint32_t code, std::string& out);

}  // namespace forma::chat
