// Checked access to fields of untrusted JSON: errors name the file and the JSON path.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "forma/core/error.h"
#include "forma/tokenizer/tokenizer.h"

namespace forma::tok::json_util {

using nlohmann::json;

inline const json& field(const json& j, const char* name, const std::string& where) {
  check(j.is_object(), "{}: expected a JSON object", where);
  auto it = j.find(name);
  check(it != j.end(), "{}: missing field '{}'", where, name);
  return *it;
}

inline std::string string_field(const json& j, const char* name, const std::string& where) {
  const json& v = field(j, name, where);
  check(v.is_string(), "{}.{}: expected a string", where, name);
  return v.get<std::string>();
}

inline bool bool_or(const json& j, const char* name, bool fallback, const std::string& where) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return fallback;
  check(it->is_boolean(), "{}.{}: expected true or false", where, name);
  return it->get<bool>();
}

inline std::string string_or(const json& j, const char* name, const std::string& fallback, const std::string& where) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return fallback;
  check(it->is_string(), "{}.{}: expected a string", where, name);
  return it->get<std::string>();
}

inline int64_t int_or(const json& j, const char* name, int64_t fallback, const std::string& where) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return fallback;
  check(it->is_number_integer(), "{}.{}: expected an integer", where, name);
  return it->get<int64_t>();
}

// A token id: an integer from 0 to kMaxTokenId (tokenizer.h); errors name the token and the id.
inline int32_t token_id(const json& v, std::string_view token, const std::string& where) {
  check(v.is_number_integer(), "{}: token '{}': expected an integer id, got {}", where, token, v.dump());
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(kMaxTokenId)) {
    fail("{}: token '{}' has id {}, beyond the largest token id forma accepts ({})", where, token, v.get<uint64_t>(),
         kMaxTokenId);
  }
  check_token_id(v.get<int64_t>(), token, where);
  return static_cast<int32_t>(v.get<int64_t>());
}

inline const json& array_field(const json& j, const char* name, const std::string& where) {
  const json& v = field(j, name, where);
  check(v.is_array(), "{}.{}: expected an array", where, name);
  return v;
}

}  // namespace forma::tok::json_util
