// Reading evaluation task files: JSON lines, one example per line. Every problem (bad JSON, a
// missing or mistyped field) is a forma::Error naming the file and the line.
#pragma once
#include <nlohmann/json.hpp>

#include <functional>
#include <string>

namespace forma::eval {

struct TaskLine {
  const std::string& file;
  int64_t line;  // 1-based
  const nlohmann::json& object;
  // Field accessors that fail with "FILE:LINE: field "NAME" ..." on a missing or mistyped field.
  std::string string_field(const std::string& name) const;
  int64_t int_field(const std::string& name) const;
  std::vector<std::string> string_list_field(const std::string& name) const;
  bool has(const std::string& name) const { return object.contains(name); }
};

// Calls `fn` for each non-blank line, up to `limit` examples (limit <= 0: all).
void for_each_task_line(const std::string& path, int64_t limit, const std::function<void(const TaskLine&)>& fn);

// Number of UTF-8 code points (what Python's len() counts for a str).
int64_t utf8_length(const std::string& text);

}  // namespace forma::eval
