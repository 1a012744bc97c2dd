// Text helpers with Python's semantics: strings index by code point, and case mapping is Unicode
// (through glibc's C.UTF-8 tables; mappings to several characters, like "ß" -> "SS", are not made).
#pragma once
#include <string>
#include <vector>

namespace forma::chat {

std::vector<std::string> utf8_code_points(const std::string& text);  // one string per code point
size_t utf8_length(const std::string& text);                           // Python's len(str)

std::string unicode_upper(const std::string& text);      // str.upper()
std::string unicode_lower(const std::string& text);      // str.lower()
std::string python_capitalize(const std::string& text);  // str.capitalize()
std::string python_title(const std::string& text);       // str.title()
std::string jinja_title(const std::string& text);        // Jinja's |title (words split at - ( { [ < and spaces)

}  // namespace forma::chat
