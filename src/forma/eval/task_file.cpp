#include "forma/eval/task_file.h"

#include <fstream>

#include "forma/core/error.h"

namespace forma::eval {

std::string TaskLine::string_field(const std::string& name) const {
  auto it = object.find(name);
  check(it != object.end(), "{}:{}: missing field \"{}\"", file, line, name);
  check(it->is_string(), "{}:{}: field \"{}\" must be a string", file, line, name);
  return it->get<std::string>();
}

int64_t TaskLine::int_field(const std::string& name) const {
  auto it = object.find(name);
  check(it != object.end(), "{}:{}: missing field \"{}\"", file, line, name);
  check(it->is_number_integer(), "{}:{}: field \"{}\" must be an integer", file, line, name);
  return it->get<int64_t>();
}

std::vector<std::string> TaskLine::string_list_field(const std::string& name) const {
  auto it = object.find(name);
  check(it != object.end(), "{}:{}: missing field \"{}\"", file, line, name);
  check(it->is_array() && !it->empty(), "{}:{}: field \"{}\" must be a non-empty list of strings", file, line, name);
  std::vector<std::string> out;
  for (const auto& v : *it) {
    check(v.is_string(), "{}:{}: field \"{}\" must be a non-empty list of strings", file, line, name);
    out.push_back(v.get<std::string>());
  }
  return out;
}

void for_each_task_line(const std::string& path, int64_t limit, const std::function<void(const TaskLine&)>& fn) {
  std::ifstream in(path);
  check(in.good(), "cannot open task file {}", path);
  std::string text;
  int64_t line_no = 0, done = 0;
  while (std::getline(in, text)) {
    ++line_no;
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    if (limit > 0 && done >= limit) break;
    nlohmann::json object;
    try {
      object = nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
      fail("{}:{}: not valid JSON ({})", path, line_no, e.what());
    }
    check(object.is_object(), "{}:{}: each line must be a JSON object", path, line_no);
    fn(TaskLine{path, line_no, object});
    ++done;
  }
}

int64_t utf8_length(const std::string& text) {
  int64_t n = 0;
  for (unsigned char c : text) n += (c & 0xC0) != 0x80;
  return n;
}

}  // namespace forma::eval
