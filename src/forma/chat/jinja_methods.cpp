// Python methods on str, dict and list values, the template globals, and UTF-8 helpers.
#include <fmt/format.h>

#include <algorithm>
#include <ctime>

#include "forma/chat/jinja_builtins.h"
#include "forma/chat/jinja_eval.h"
#include "forma/chat/jinja_lexer.h"
#include "forma/chat/jinja_limits.h"
#include "forma/core/error.h"

namespace forma::chat {

ValueList iterate(const Value& value) {
  // Walking over a value costs a step per item (filters, loops and `in` go through here).
  if (value.is_list()) charge_template_steps(static_cast<int64_t>(value.as_list().size()));
  else if (value.is_dict()) charge_template_steps(static_cast<int64_t>(value.as_dict().entries.size()));
  else if (value.is_string()) charge_template_steps(static_cast<int64_t>(value.as_string().size()));
  switch (value.type()) {
    case Value::Type::Undefined: return {};
    case Value::Type::List: return value.as_list();
    case Value::Type::Dict: {
      ValueList keys;
      for (const auto& entry : value.as_dict().entries) keys.push_back(Value(entry.first));
      return keys;
    }
    case Value::Type::String: {
      ValueList chars;
      for (auto& c : utf8_code_points(value.as_string())) chars.push_back(Value(std::move(c)));
      return chars;
    }
    default: fail("'{}' object is not iterable", value.type_name());
  }
}

namespace {

const std::string& string_arg(const CallArgs& args, size_t position, const std::string& name,
                              const std::string& method) {
  const Value* v = args.get(position, name);
  check(v && v->is_string(), "{}() argument '{}' must be a str", method, name);
  return v->as_string();
}

// Python's strip family: `chars` None strips whitespace; otherwise any of its code points.
std::string strip_chars(const std::string& text, const Value* chars, bool left, bool right) {
  bool whitespace = !chars || chars->is_none() || chars->is_undefined();
  if (!whitespace) check(chars->is_string(), "strip arg must be None or str");
  const std::string set = whitespace ? std::string(" \t\n\r\f\v") : chars->as_string();
  bool ascii_set = std::all_of(set.begin(), set.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  if (ascii_set) {
    // ASCII bytes never occur inside a multi-byte UTF-8 sequence, so bytes can be stripped directly.
    size_t begin = left ? text.find_first_not_of(set) : 0;
    if (begin == std::string::npos) return "";
    size_t end = right ? text.find_last_not_of(set) + 1 : text.size();
    return text.substr(begin, end - begin);
  }
  std::vector<std::string> points = utf8_code_points(text);
  std::vector<std::string> members = utf8_code_points(set);
  auto strippable = [&](const std::string& p) { return std::find(members.begin(), members.end(), p) != members.end(); };
  size_t begin = 0;
  size_t end = points.size();
  while (left && begin < end && strippable(points[begin])) ++begin;
  while (right && end > begin && strippable(points[end - 1])) --end;
  std::string out;
  for (size_t i = begin; i < end; ++i) out += points[i];
  return out;
}

Value split(const std::string& text, const Value* sep, const Value* maxsplit_value) {
  int64_t maxsplit = maxsplit_value && !maxsplit_value->is_none() ? maxsplit_value->as_int() : -1;
  ValueList parts;
  if (!sep || sep->is_none()) {
    size_t i = 0;
    while (true) {
      while (i < text.size() && is_python_space(text[i])) ++i;
      if (i >= text.size()) break;
      if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
        size_t end = text.size();
        while (end > i && is_python_space(text[end - 1])) --end;
        parts.push_back(Value(text.substr(i, end - i)));
        break;
      }
      size_t start = i;
      while (i < text.size() && !is_python_space(text[i])) ++i;
      parts.push_back(Value(text.substr(start, i - start)));
    }
    return Value(std::move(parts));
  }
  check(sep->is_string(), "split() separator must be str or None");
  const std::string& s = sep->as_string();
  check(!s.empty(), "empty separator");
  size_t start = 0;
  while (true) {
    size_t at = text.find(s, start);
    if (at == std::string::npos || (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit)) break;
    parts.push_back(Value(text.substr(start, at - start)));
    start = at + s.size();
  }
  parts.push_back(Value(text.substr(start)));
  return Value(std::move(parts));
}

std::string replace_all(const std::string& text, const std::string& old_text, const std::string& new_text,
                        int64_t count) {
  std::string out;
  size_t start = 0;
  int64_t done = 0;
  if (old_text.empty()) {  // Python inserts `new` between every code point
    auto points = utf8_code_points(text);
    for (size_t i = 0; i <= points.size(); ++i) {
      if (count < 0 || done < count) {
        out += new_text;
        ++done;
      }
      if (i < points.size()) out += points[i];
      check_template_string_size(out.size());
    }
    return out;
  }
  while (count < 0 || done < count) {
    size_t at = text.find(old_text, start);
    if (at == std::string::npos) break;
    out += text.substr(start, at - start) + new_text;
    check_template_string_size(out.size());
    start = at + old_text.size();
    ++done;
  }
  return out + text.substr(start);
}

bool affix_matches(const std::string& text, const Value& affix, bool prefix) {
  auto one = [&](const Value& v) {
    check(v.is_string(), "{}with first arg must be str or a tuple of str", prefix ? "starts" : "ends");
    const std::string& a = v.as_string();
    if (a.size() > text.size()) return false;
    return prefix ? text.compare(0, a.size(), a) == 0 : text.compare(text.size() - a.size(), a.size(), a) == 0;
  };
  if (affix.is_list()) {
    for (const auto& v : affix.as_list()) {
      if (one(v)) return true;
    }
    return false;
  }
  return one(affix);
}

// str.format with {} / {0} / {name} fields (no format specs or conversions).
std::string python_format(const std::string& pattern, const CallArgs& args) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c == '}' ) {
      check(i + 1 < pattern.size() && pattern[i + 1] == '}', "Single '}}' encountered in format string");
      out += '}';
      ++i;
      continue;
    }
    if (c != '{') {
      out += c;
      continue;
    }
    if (i + 1 < pattern.size() && pattern[i + 1] == '{') {
      out += '{';
      ++i;
      continue;
    }
    size_t close = pattern.find('}', i);
    check(close != std::string::npos, "Single '{{' encountered in format string");
    std::string field = pattern.substr(i + 1, close - i - 1);
    check(field.find_first_of(":!") == std::string::npos, "format specs are not supported in str.format: {}", field);
    const Value* v = nullptr;
    if (field.empty()) {
      v = args.get(auto_index++, "");
    } else if (std::isdigit(static_cast<unsigned char>(field[0]))) {
      v = args.get(std::stoul(field), "");
    } else {
      for (const auto& [key, value] : args.keyword) {
        if (key == field) v = &value;
      }
    }
    check(v != nullptr, "str.format: no argument for field '{{{}}}'", field);
    out += v->str();
    i = close;
  }
  return out;
}

bool all_chars(const std::string& text, int (*predicate)(int)) {
  if (text.empty()) return false;
  for (unsigned char c : text) {
    if (!predicate(c)) return false;
  }
  return true;
}

Value string_method(const std::string& text, const std::string& name, const CallArgs& args) {
  if (name == "strip") return Value(strip_chars(text, args.get(0, "chars"), true, true));
  if (name == "lstrip") return Value(strip_chars(text, args.get(0, "chars"), true, false));
  if (name == "rstrip") return Value(strip_chars(text, args.get(0, "chars"), false, true));
  if (name == "split") return split(text, args.get(0, "sep"), args.get(1, "maxsplit"));
  if (name == "startswith" || name == "endswith") {
    const Value* affix = args.get(0, "prefix");
    check(affix != nullptr, "{}() takes at least 1 argument (0 given)", name);
    return Value(affix_matches(text, *affix, name == "startswith"));
  }
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize") {
    return apply_filter(name == "title" ? "python_title" : name, Value(text), {});
  }
  if (name == "replace") {
    const Value* count = args.get(2, "count");
    return Value(replace_all(text, string_arg(args, 0, "old", name), string_arg(args, 1, "new", name),
                             count ? count->as_int() : -1));
  }
  if (name == "find" || name == "index" || name == "rfind") {
    const std::string& needle = string_arg(args, 0, "sub", name);
    size_t at = name == "rfind" ? text.rfind(needle) : text.find(needle);
    if (at == std::string::npos) {
      check(name != "index", "substring not found");
      return Value(int64_t{-1});
    }
    return Value(static_cast<int64_t>(utf8_length(text.substr(0, at))));
  }
  if (name == "count") {
    const std::string& needle = string_arg(args, 0, "sub", name);
    if (needle.empty()) return Value(static_cast<int64_t>(utf8_length(text) + 1));
    int64_t n = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++n;
    return Value(n);
  }
  if (name == "format") return Value(python_format(text, args));
  if (name == "join") {
    std::string out;
    const Value* items = args.get(0, "iterable");
    check(items != nullptr, "join() takes exactly one argument");
    bool first = true;
    for (const auto& item : iterate(*items)) {
      check(item.is_string(), "sequence item: expected str instance, {} found", item.type_name());
      if (!first) out += text;
      first = false;
      out += item.as_string();
      check_template_string_size(out.size());
    }
    return Value(out);
  }
  if (name == "splitlines") {
    ValueList lines;
    size_t start = 0;
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '\n' || text[i] == '\r') {
        lines.push_back(Value(text.substr(start, i - start)));
        if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
        start = i + 1;
      }
    }
    if (start < text.size()) lines.push_back(Value(text.substr(start)));
    return Value(std::move(lines));
  }
  if (name == "isdigit") return Value(all_chars(text, ::isdigit));
  if (name == "isalpha") return Value(all_chars(text, ::isalpha));
  if (name == "isalnum") return Value(all_chars(text, ::isalnum));
  if (name == "isspace") return Value(all_chars(text, ::isspace));
  if (name == "islower" || name == "isupper") {
    bool cased = false;
    for (unsigned char c : text) {
      if (std::isalpha(c)) {
        cased = true;
        if ((name == "islower") != (std::islower(c) != 0)) return Value(false);
      }
    }
    return Value(cased);
  }
  if (name == "removeprefix" || name == "removesuffix") {
    const std::string& affix = string_arg(args, 0, name == "removeprefix" ? "prefix" : "suffix", name);
    if (affix_matches(text, Value(affix), name == "removeprefix")) {
      return Value(name == "removeprefix" ? text.substr(affix.size()) : text.substr(0, text.size() - affix.size()));
    }
    return Value(text);
  }
  fail("'str' object has no attribute '{}'", name);
}

Value dict_method(const Value& dict, const std::string& name, const CallArgs& args) {
  if (name == "get") {
    const Value* key = args.get(0, "key");
    check(key != nullptr, "get expected at least 1 argument, got 0");
    if (key->is_string()) {
      if (const Value* found = dict.as_dict().find(key->as_string())) return *found;
    }
    const Value* fallback = args.get(1, "default");
    return fallback ? *fallback : Value::none();
  }
  ValueList out;
  for (const auto& [key, value] : dict.as_dict().entries) {
    if (name == "keys") out.push_back(Value(key));
    else if (name == "values") out.push_back(value);
    else out.push_back(Value(ValueList{Value(key), value}, /*is_tuple=*/true));
  }
  return Value(std::move(out));
}

const char* const kStringMethods[] = {
    "strip", "lstrip", "rstrip", "split", "startswith", "endswith", "upper", "lower", "title",
    "capitalize", "replace", "find", "rfind", "index", "count", "format", "join", "splitlines",
    "isdigit", "isalpha", "isalnum", "isspace", "islower", "isupper", "removeprefix", "removesuffix"};

}  // namespace

Value bound_method(const Value& object, const std::string& name) {
  if (object.is_string()) {
    for (const char* method : kStringMethods) {
      if (name == method) {
        std::string text = object.as_string();
        return Value::function("str." + name, [text, name](const CallArgs& args) {
          return string_method(text, name, args);
        });
      }
    }
  } else if (object.is_dict() && (name == "get" || name == "items" || name == "keys" || name == "values")) {
    Value dict = object;
    return Value::function("dict." + name, [dict, name](const CallArgs& args) { return dict_method(dict, name, args); });
  } else if (object.is_list() && (name == "index" || name == "count")) {
    Value list = object;
    return Value::function("list." + name, [list, name](const CallArgs& args) {
      const Value* needle = args.get(0, "value");
      check(needle != nullptr, "list.{}() takes exactly one argument", name);
      int64_t count = 0;
      for (size_t i = 0; i < list.as_list().size(); ++i) {
        if (!list.as_list()[i].equals(*needle)) continue;
        if (name == "index") return Value(static_cast<int64_t>(i));
        ++count;
      }
      check(name == "count", "{} is not in list", needle->repr());
      return Value(count);
    });
  } else if (object.is_list() || object.is_dict()) {
    static const char* const kMutators[] = {"append", "extend", "insert", "pop", "remove", "clear",
                                            "update", "setdefault", "popitem", "sort", "reverse"};
    for (const char* mutator : kMutators) {
      if (name == mutator) {
        return Value::function(name, [name, object](const CallArgs&) -> Value {
          fail("access to attribute '{}' of '{}' object is unsafe (templates cannot modify values)", name,
               object.type_name());
        });
      }
    }
  }
  return Value::undefined(fmt::format("'{} object' has no attribute '{}'", object.type_name(), name));
}

ValueDict builtin_globals() {
  ValueDict globals;
  globals.set("raise_exception", Value::function("raise_exception", [](const CallArgs& args) -> Value {
    const Value* message = args.get(0, "message");
    throw TemplateRaisedError(message ? message->str() : "raise_exception called");
  }));
  globals.set("strftime_now", Value::function("strftime_now", [](const CallArgs& args) {
    const Value* format = args.get(0, "format");
    check(format && format->is_string(), "strftime_now() needs a format string");
    std::time_t now = std::time(nullptr);
    std::tm local{};
    localtime_r(&now, &local);
    char buffer[512];
    size_t n = std::strftime(buffer, sizeof buffer, format->as_string().c_str(), &local);
    return Value(std::string(buffer, n));
  }));
  globals.set("range", Value::function("range", [](const CallArgs& args) {
    check(!args.positional.empty() && args.positional.size() <= 3, "range expected 1 to 3 arguments");
    for (const auto& a : args.positional) check(a.is_int() || a.is_bool(), "range() arguments must be integers");
    int64_t start = 0, stop = 0, step = 1;
    if (args.positional.size() == 1) {
      stop = args.positional[0].as_int();
    } else {
      start = args.positional[0].as_int();
      stop = args.positional[1].as_int();
      if (args.positional.size() == 3) step = args.positional[2].as_int();
    }
    check(step != 0, "range() arg 3 must not be zero");
    // The length first, in 128 bits (stop - start may not fit in 64), as Python's range does.
    __int128 span = step > 0 ? static_cast<__int128>(stop) - start : static_cast<__int128>(start) - stop;
    __int128 magnitude = step > 0 ? static_cast<__int128>(step) : -static_cast<__int128>(step);
    __int128 length = span <= 0 ? 0 : (span + magnitude - 1) / magnitude;
    const int64_t max_range = active_template_limits().max_range;
    check(length <= max_range, "range() of {} items is longer than the template limit of {} items",
          static_cast<int64_t>(length), max_range);
    charge_template_steps(static_cast<int64_t>(length));
    ValueList items;
    items.reserve(static_cast<size_t>(length));
    for (int64_t k = 0; k < static_cast<int64_t>(length); ++k) items.push_back(Value(start + k * step));
    return Value(std::move(items));
  }));
  globals.set("namespace", Value::function("namespace", [](const CallArgs& args) {
    ValueDict ns;
    ns.is_namespace = true;
    for (const auto& a : args.positional) {
      check(a.is_dict(), "namespace() positional arguments must be dicts");
      for (const auto& [k, v] : a.as_dict().entries) ns.set(k, v);
    }
    for (const auto& [k, v] : args.keyword) ns.set(k, v);
    return Value(std::move(ns));
  }));
  globals.set("dict", Value::function("dict", [](const CallArgs& args) {
    ValueDict d;
    for (const auto& a : args.positional) {
      check(a.is_dict(), "dict() positional arguments must be dicts");
      for (const auto& [k, v] : a.as_dict().entries) d.set(k, v);
    }
    for (const auto& [k, v] : args.keyword) d.set(k, v);
    return Value(std::move(d));
  }));
  return globals;
}

}  // namespace forma::chat
