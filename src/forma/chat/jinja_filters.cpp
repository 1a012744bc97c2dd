// Jinja2's built-in filters and tests, as they behave under transformers (tojson is
// transformers' json.dumps(ensure_ascii=False) version, not Jinja's HTML-escaping one).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <utility>

#include "forma/chat/jinja_builtins.h"
#include "forma/chat/jinja_limits.h"
#include "forma/chat/jinja_lexer.h"
#include "forma/chat/jinja_text.h"
#include "forma/core/error.h"

namespace forma::chat {

namespace {

const Value* arg(const CallArgs& args, size_t position, const char* name) { return args.get(position, name); }

int64_t length_of(const Value& v) {
  switch (v.type()) {
    case Value::Type::Undefined: return 0;
    case Value::Type::String: return static_cast<int64_t>(utf8_length(v.as_string()));
    case Value::Type::List: return static_cast<int64_t>(v.as_list().size());
    case Value::Type::Dict: return static_cast<int64_t>(v.as_dict().entries.size());
    default: fail("object of type '{}' has no len()", v.type_name());
  }
}

// Jinja's attribute lookup for filters: "a.b.0" walks dict keys and list indices.
Value lookup_attribute(const Value& item, const std::string& path) {
  Value current = item;
  size_t start = 0;
  while (start <= path.size()) {
    size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (current.is_dict()) {
      const Value* found = current.as_dict().find(part);
      current = found ? *found : Value::undefined(fmt::format("'dict object' has no attribute '{}'", part));
    } else if (current.is_list() && !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit)) {
      size_t index = std::stoul(part);
      current = index < current.as_list().size() ? current.as_list()[index] : Value::undefined();
    } else if (current.is_undefined()) {
      fail("{}", current.as_string().empty() ? "value is undefined" : current.as_string());
    } else {
      current = Value::undefined(fmt::format("'{} object' has no attribute '{}'", current.type_name(), part));
    }
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return current;
}

// Arguments after the first `skip` positional ones, for select('test', args...) and friends.
CallArgs rest_args(const CallArgs& args, size_t skip) {
  CallArgs rest;
  for (size_t i = skip; i < args.positional.size(); ++i) rest.positional.push_back(args.positional[i]);
  rest.keyword = args.keyword;
  return rest;
}

Value select_items(const Value& input, const CallArgs& args, bool by_attribute, bool keep_matches) {
  ValueList out;
  size_t test_position = by_attribute ? 1 : 0;
  std::string attribute;
  if (by_attribute) {
    const Value* a = arg(args, 0, "attribute");
    check(a && a->is_string(), "selectattr/rejectattr need an attribute name");
    attribute = a->as_string();
  }
  const Value* test = test_position < args.positional.size() ? &args.positional[test_position] : nullptr;
  CallArgs test_args = rest_args(args, test_position + 1);
  for (const auto& item : iterate(input)) {
    Value probe = by_attribute ? lookup_attribute(item, attribute) : item;
    bool matched = test ? apply_test(test->str(), probe, test_args) : probe.truthy();
    if (matched == keep_matches) out.push_back(item);
  }
  return Value(std::move(out));
}

Value map_items(const Value& input, const CallArgs& args) {
  ValueList out;
  const Value* attribute = nullptr;
  for (const auto& [key, value] : args.keyword) {
    if (key == "attribute") attribute = &value;
  }
  if (attribute) {
    const Value* fallback = nullptr;
    for (const auto& [key, value] : args.keyword) {
      if (key == "default") fallback = &value;
    }
    for (const auto& item : iterate(input)) {
      Value v = lookup_attribute(item, attribute->str());
      out.push_back(v.is_undefined() && fallback ? *fallback : v);
    }
    return Value(std::move(out));
  }
  check(!args.positional.empty(), "map requires a filter name or attribute=");
  std::string filter = args.positional[0].str();
  CallArgs filter_args = rest_args(args, 1);
  for (const auto& item : iterate(input)) out.push_back(apply_filter(filter, item, filter_args));
  return Value(std::move(out));
}

// Sort key used by sort/unique/min/max/dictsort: strings compare case-insensitively by default.
Value sort_key(const Value& v, bool case_sensitive) {
  if (v.is_string() && !case_sensitive) return Value(unicode_lower(v.as_string()));
  return v;
}

bool flag(const CallArgs& args, size_t position, const char* name, bool fallback) {
  const Value* v = arg(args, position, name);
  return v ? v->truthy() : fallback;
}

Value sorted(const Value& input, const CallArgs& args) {
  bool reverse = flag(args, 0, "reverse", false);
  bool case_sensitive = flag(args, 1, "case_sensitive", false);
  const Value* attribute = arg(args, 2, "attribute");
  ValueList items = iterate(input);
  auto key = [&](const Value& v) {
    return sort_key(attribute ? lookup_attribute(v, attribute->str()) : v, case_sensitive);
  };
  std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) {
    return reverse ? key(b).less_than(key(a)) : key(a).less_than(key(b));
  });
  return Value(std::move(items));
}

Value extreme(const Value& input, const CallArgs& args, bool want_max) {
  bool case_sensitive = flag(args, 0, "case_sensitive", false);
  const Value* attribute = arg(args, 1, "attribute");
  ValueList items = iterate(input);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  auto key = [&](const Value& v) {
    return sort_key(attribute ? lookup_attribute(v, attribute->str()) : v, case_sensitive);
  };
  size_t best = 0;
  for (size_t i = 1; i < items.size(); ++i) {
    bool better = want_max ? key(items[best]).less_than(key(items[i])) : key(items[i]).less_than(key(items[best]));
    if (better) best = i;
  }
  return items[best];
}

std::string indent_text(const std::string& text, const CallArgs& args) {
  const Value* width = arg(args, 0, "width");
  if (width && !width->is_string()) check_template_string_size(static_cast<size_t>(std::max<int64_t>(0, width->as_int())));
  std::string pad = width ? (width->is_string() ? width->as_string() : std::string(static_cast<size_t>(std::max<int64_t>(0, width->as_int())), ' '))
                          : std::string(4, ' ');
  bool first = flag(args, 1, "first", false);
  bool blank = flag(args, 2, "blank", false);
  std::string out;
  size_t start = 0;
  bool first_line = true;
  std::string body = text;
  while (true) {
    size_t nl = body.find('\n', start);
    std::string line = body.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    bool add = first_line ? first : (blank || !line.empty());
    // Jinja treats whitespace-only lines as blank too.
    if (!first_line && !blank && line.find_first_not_of(" \t\r\f\v") == std::string::npos) add = false;
    out += (add ? pad : "") + line;
    check_template_string_size(out.size());
    if (nl == std::string::npos) break;
    out += '\n';
    start = nl + 1;
    first_line = false;
  }
  return out;
}

Value to_int(const Value& v, const CallArgs& args) {
  const Value* fallback = arg(args, 0, "default");
  Value dflt = fallback ? *fallback : Value(int64_t{0});
  if (v.is_int() || v.is_bool()) return Value(v.as_int());
  if (v.is_float()) return std::isfinite(v.as_double()) ? Value(checked_float_to_int(v.as_double())) : dflt;
  if (v.is_string()) {
    std::string s;
    for (char c : v.as_string()) {
      if (c != '_') s += c;
    }
    try {
      size_t used = 0;
      int64_t i = std::stoll(s, &used, 10);
      if (s.find_first_not_of(" \t\n", used) == std::string::npos) return Value(i);
    } catch (const std::exception&) {
    }
    try {
      size_t used = 0;
      double d = std::stod(s, &used);
      if (s.find_first_not_of(" \t\n", used) == std::string::npos && std::isfinite(d)) {
        return Value(checked_float_to_int(d));
      }
    } catch (const std::exception&) {
    }
  }
  return dflt;
}

Value to_float(const Value& v, const CallArgs& args) {
  const Value* fallback = arg(args, 0, "default");
  Value dflt = fallback ? *fallback : Value(0.0);
  if (v.is_number()) return Value(v.as_double());
  if (v.is_string()) {
    try {
      size_t used = 0;
      double d = std::stod(v.as_string(), &used);
      if (v.as_string().find_first_not_of(" \t\n", used) == std::string::npos) return Value(d);
    } catch (const std::exception&) {
    }
  }
  return dflt;
}

Value round_value(const Value& v, const CallArgs& args) {
  check(v.is_number(), "round needs a number, got {}", v.type_name());
  const Value* precision = arg(args, 0, "precision");
  const Value* method = arg(args, 1, "method");
  int64_t digits = precision ? precision->as_int() : 0;
  std::string how = method ? method->str() : "common";
  double x = v.as_double();
  if (how == "common" && digits >= 0 && digits <= 300) {
    // Python's round(x, n) rounds the exact binary value to n decimals, halves to even; fmt's
    // fixed formatting does the same (2.675 -> "2.67", 0.5 -> "0").
    return Value(std::stod(fmt::format("{:.{}f}", x, digits)));
  }
  double scale = std::pow(10.0, static_cast<double>(digits));
  if (how == "common") x = std::nearbyint(x * scale);
  else if (how == "ceil") x = std::ceil(x * scale);
  else if (how == "floor") x = std::floor(x * scale);
  else fail("method must be common, ceil or floor");
  return Value(x / scale);
}

// A width or precision of a printf format: digits, as long as a string may be.
size_t format_number(const std::string& spec) {
  size_t value = 0;
  for (char c : spec) {
    if (!std::isdigit(static_cast<unsigned char>(c))) break;
    value = value * 10 + static_cast<size_t>(c - '0');
    check_template_string_size(value);
  }
  return value;
}

// printf-style formatting for the `format` filter and str % args: %s %r %d %i %f %%.
std::string printf_format(const std::string& pattern, const CallArgs& args) {
  std::string out;
  size_t next = 0;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] != '%') {
      out += pattern[i];
      continue;
    }
    check(i + 1 < pattern.size(), "incomplete format");
    size_t j = i + 1;
    std::string spec;
    while (j < pattern.size() && (std::isdigit(static_cast<unsigned char>(pattern[j])) || pattern[j] == '.' || pattern[j] == '-')) {
      spec += pattern[j++];
    }
    check(j < pattern.size(), "incomplete format");
    char conv = pattern[j];
    i = j;
    if (conv == '%') {
      out += '%';
      continue;
    }
    check(next < args.positional.size(), "not enough arguments for format string");
    const Value& v = args.positional[next++];
    if (conv == 's') {
      std::string s = v.str();
      size_t width = spec.empty() || spec[0] == '-' || spec[0] == '.' ? 0 : format_number(spec);
      size_t n = utf8_length(s);
      out += (n < width ? std::string(width - n, ' ') : "") + s;
    }
    else if (conv == 'r') out += v.repr();
    else if (conv == 'd' || conv == 'i') out += std::to_string(v.as_int());
    else if (conv == 'f') {
      std::string precision = spec.find('.') != std::string::npos ? spec.substr(spec.find('.') + 1) : "6";
      format_number(precision.empty() ? "0" : precision);
      out += fmt::format(fmt::runtime("{:." + precision + "f}"), v.as_double());
    }
    else fail("unsupported format character '{}'", conv);
  }
  check(next == args.positional.size(), "not all arguments converted during string formatting");
  return out;
}

std::string html_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

Value tojson(const Value& input, const CallArgs& args) {
  // transformers: tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
  const Value* ensure_ascii = arg(args, 0, "ensure_ascii");
  check(!ensure_ascii || !ensure_ascii->truthy(), "tojson(ensure_ascii=True) is not supported");
  const Value* indent = arg(args, 1, "indent");
  const Value* separators = arg(args, 2, "separators");
  check(!separators || separators->is_none(), "tojson(separators=...) is not supported");
  int width = -1;
  if (indent && !indent->is_none()) {
    check(indent->is_int(), "tojson indent must be an integer");
    width = static_cast<int>(indent->as_int());
  }
  return Value(python_json_dumps(input, width, flag(args, 3, "sort_keys", false)));
}

// Filters on the string form of the input.
std::optional<Value> text_filter(const std::string& name, const Value& input, const CallArgs& args) {
  auto text = [&] { return input.str(); };
  if (name == "trim") return Value(bound_method(Value(text()), "strip").as_function()(args));
  if (name == "string") return Value(text());
  if (name == "upper") return Value(unicode_upper(text()));
  if (name == "lower") return Value(unicode_lower(text()));
  if (name == "title") return Value(jinja_title(text()));
  if (name == "python_title") return Value(python_title(text()));
  if (name == "capitalize") return Value(python_capitalize(text()));
  if (name == "replace") return bound_method(Value(text()), "replace").as_function()(args);
  if (name == "safe") return input;
  if (name == "escape" || name == "e" || name == "forceescape") return Value(html_escape(text()));
  if (name == "indent") return Value(indent_text(text(), args));
  if (name == "wordcount") {
    int64_t words = 0;
    bool in_word = false;
    for (unsigned char c : text()) {
      bool word_char = std::isalnum(c) || c == '_' || c >= 0x80;
      if (word_char && !in_word) ++words;
      in_word = word_char;
    }
    return Value(words);
  }
  if (name == "format") return Value(printf_format(text(), args));
  if (name == "center") {
    const Value* width = arg(args, 0, "width");
    size_t w = width ? static_cast<size_t>(std::max<int64_t>(0, width->as_int())) : 80;
    check_template_string_size(w);
    std::string s = text();
    size_t n = utf8_length(s);
    if (n >= w) return Value(s);
    size_t left = (w - n) / 2 + ((w - n) & w & 1);  // Python's str.center puts the extra space left when w is odd
    return Value(std::string(left, ' ') + s + std::string(w - n - left, ' '));
  }
  if (name == "truncate") {  // truncate(length=255, killwords=False, end='...', leeway=5)
    std::vector<std::string> points = utf8_code_points(text());
    const Value* length_value = arg(args, 0, "length");
    const Value* leeway_value = arg(args, 3, "leeway");
    const Value* end_value = arg(args, 2, "end");
    size_t length = static_cast<size_t>(std::max<int64_t>(0, length_value ? length_value->as_int() : 255));
    size_t leeway = static_cast<size_t>(std::max<int64_t>(0, leeway_value ? leeway_value->as_int() : 5));
    std::string end = end_value ? end_value->str() : "...";
    if (points.size() <= length + leeway) return Value(text());
    size_t keep = length > utf8_length(end) ? length - utf8_length(end) : 0;
    std::string head;
    for (size_t i = 0; i < keep; ++i) head += points[i];
    if (!flag(args, 1, "killwords", false)) {
      size_t space = head.rfind(' ');
      if (space != std::string::npos) head.resize(space);
    }
    return Value(head + end);
  }
  return std::nullopt;
}

// Filters over the items of a list, dict or str.
std::optional<Value> sequence_filter(const std::string& name, const Value& input, const CallArgs& args) {
  if (name == "length" || name == "count") return Value(length_of(input));
  if (name == "first" || name == "last") {
    ValueList items = iterate(input);
    if (items.empty()) return Value::undefined(fmt::format("No {} item, sequence was empty.", name));
    return name == "first" ? items.front() : items.back();
  }
  if (name == "items") {
    if (input.is_undefined()) return Value(ValueList{});
    check(input.is_dict(), "items filter needs a mapping, got {}", input.type_name());
    return bound_method(input, "items").as_function()({});
  }
  if (name == "join") {
    const Value* separator = arg(args, 0, "d");
    const Value* attribute = arg(args, 1, "attribute");
    std::string out;
    bool first = true;
    for (const auto& item : iterate(input)) {
      if (!first) out += separator ? separator->str() : "";
      first = false;
      out += (attribute ? lookup_attribute(item, attribute->str()) : item).str();
      check_template_string_size(out.size());
    }
    return Value(out);
  }
  if (name == "list") return Value(iterate(input));
  if (name == "select" || name == "reject") return select_items(input, args, false, name == "select");
  if (name == "selectattr" || name == "rejectattr") return select_items(input, args, true, name == "selectattr");
  if (name == "map") return map_items(input, args);
  if (name == "reverse") {
    if (input.is_string()) {
      auto points = utf8_code_points(input.as_string());
      std::string out;
      for (auto it = points.rbegin(); it != points.rend(); ++it) out += *it;
      return Value(out);
    }
    ValueList items = iterate(input);
    std::reverse(items.begin(), items.end());
    return Value(std::move(items));
  }
  if (name == "sort") return sorted(input, args);
  if (name == "unique") {
    bool case_sensitive = flag(args, 0, "case_sensitive", false);
    ValueList out;
    ValueList seen;
    for (const auto& item : iterate(input)) {
      charge_template_steps(static_cast<int64_t>(seen.size()));  // the scan below is quadratic
      Value key = sort_key(item, case_sensitive);
      if (std::none_of(seen.begin(), seen.end(), [&](const Value& s) { return s.equals(key); })) {
        seen.push_back(key);
        out.push_back(item);
      }
    }
    return Value(std::move(out));
  }
  if (name == "min" || name == "max") return extreme(input, args, name == "max");
  if (name == "dictsort") {
    check(input.is_dict(), "dictsort needs a mapping");
    bool case_sensitive = flag(args, 0, "case_sensitive", false);
    ValueList items = bound_method(input, "items").as_function()({}).as_list();
    std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) {
      return sort_key(a.as_list()[0], case_sensitive).less_than(sort_key(b.as_list()[0], case_sensitive));
    });
    return Value(std::move(items));
  }
  if (name == "batch") {  // batch(size, fill_with=None): lists of `size` items
    const Value* size = arg(args, 0, "linecount");
    check(size && size->as_int() > 0, "batch size must be a positive integer");
    check_template_list_size(static_cast<size_t>(size->as_int()));
    const Value* fill = arg(args, 1, "fill_with");
    ValueList rows;
    ValueList row;
    for (const auto& item : iterate(input)) {
      row.push_back(item);
      if (static_cast<int64_t>(row.size()) == size->as_int()) rows.push_back(Value(std::exchange(row, {})));
    }
    if (!row.empty()) {
      while (fill && !fill->is_none() && static_cast<int64_t>(row.size()) < size->as_int()) row.push_back(*fill);
      rows.push_back(Value(std::move(row)));
    }
    return Value(std::move(rows));
  }
  return std::nullopt;
}

// Filters on single values: numbers, defaults, JSON.
std::optional<Value> value_filter(const std::string& name, const Value& input, const CallArgs& args) {
  if (name == "tojson") return tojson(input, args);
  if (name == "default" || name == "d") {
    const Value* fallback = arg(args, 0, "default_value");
    bool boolean = flag(args, 1, "boolean", false);
    if (input.is_undefined() || (boolean && !input.truthy())) return fallback ? *fallback : Value("");
    return input;
  }
  if (name == "int") return to_int(input, args);
  if (name == "float") return to_float(input, args);
  if (name == "abs") {
    check(input.is_number(), "bad operand type for abs(): '{}'", input.type_name());
    return input.is_float() ? Value(std::fabs(input.as_double())) : Value(checked_abs(input.as_int()));
  }
  if (name == "round") return round_value(input, args);
  if (name == "attr") {  // getattr only, unlike `.`: a dict key is not an attribute
    const Value* attribute = arg(args, 0, "name");
    check(attribute != nullptr, "attr filter needs a name");
    if (input.is_undefined()) return input;
    return bound_method(input, attribute->str());
  }
  if (name == "sum") {
    const Value* attribute = arg(args, 0, "attribute");
    const Value* start = arg(args, 1, "start");
    Value total = start ? *start : Value(int64_t{0});
    for (const auto& item : iterate(input)) {
      Value v = attribute ? lookup_attribute(item, attribute->str()) : item;
      check(v.is_number() && total.is_number(), "unsupported operand type(s) for +: '{}' and '{}'",
            total.type_name(), v.type_name());
      total = (total.is_float() || v.is_float()) ? Value(total.as_double() + v.as_double())
                                                 : Value(checked_add(total.as_int(), v.as_int()));
    }
    return total;
  }
  return std::nullopt;
}

}  // namespace

Value apply_filter(const std::string& name, const Value& input, const CallArgs& args) {
  for (auto* group : {&text_filter, &sequence_filter, &value_filter}) {
    if (std::optional<Value> result = group(name, input, args)) return *std::move(result);
  }
  fail("no filter named '{}'", name);
}

bool apply_test(const std::string& name, const Value& input, const CallArgs& args) {
  auto other = [&]() -> const Value& {
    const Value* v = args.get(0, "other");
    check(v != nullptr, "test '{}' needs an argument", name);
    return *v;
  };
  if (name == "defined") return !input.is_undefined();
  if (name == "undefined") return input.is_undefined();
  if (name == "none") return input.is_none();
  if (name == "string") return input.is_string();
  if (name == "number") return input.is_number();
  if (name == "integer") return input.is_int();
  if (name == "float") return input.is_float();
  if (name == "boolean") return input.is_bool();
  if (name == "true") return input.is_bool() && input.as_bool();
  if (name == "false") return input.is_bool() && !input.as_bool();
  if (name == "mapping") return input.is_dict();
  if (name == "iterable") return input.is_list() || input.is_dict() || input.is_string() || input.is_undefined();
  if (name == "sequence") return input.is_list() || input.is_dict() || input.is_string() || input.is_undefined();
  if (name == "callable") return input.is_function();
  if (name == "odd" || name == "even" || name == "divisibleby") {
    check(input.is_int() || input.is_bool(), "test '{}' needs an integer, got {}", name, input.type_name());
    int64_t n = input.as_int();
    if (name == "divisibleby") {
      int64_t d = other().as_int();
      check(d != 0, "integer division or modulo by zero");
      return n % d == 0;
    }
    return (n % 2 != 0) == (name == "odd");
  }
  if (name == "equalto" || name == "eq" || name == "==") return input.equals(other());
  if (name == "ne" || name == "!=") return !input.equals(other());
  if (name == "lt" || name == "lessthan" || name == "<") return input.less_than(other());
  if (name == "gt" || name == "greaterthan" || name == ">") return other().less_than(input);
  if (name == "le" || name == "<=") return input.less_than(other()) || input.equals(other());
  if (name == "ge" || name == ">=") return other().less_than(input) || input.equals(other());
  if (name == "in") {
    const Value& container = other();
    if (container.is_string()) return input.is_string() && container.as_string().find(input.as_string()) != std::string::npos;
    if (container.is_dict()) return input.is_string() && container.as_dict().find(input.as_string()) != nullptr;
    for (const auto& item : iterate(container)) {
      if (item.equals(input)) return true;
    }
    return false;
  }
  if (name == "sameas") {  // Python's `is`: identity for singletons, value for the rest here
    return input.type() == other().type() && input.equals(other());
  }
  if (name == "lower") return input.is_string() && unicode_lower(input.as_string()) == input.as_string();
  if (name == "upper") return input.is_string() && unicode_upper(input.as_string()) == input.as_string();
  fail("no test named '{}'", name);
}

}  // namespace forma::chat
