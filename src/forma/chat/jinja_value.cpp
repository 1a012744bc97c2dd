#include "forma/chat/jinja_value.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>

#include "forma/chat/jinja_limits.h"
#include "forma/core/error.h"

namespace forma::chat {

const Value* ValueDict::find(const std::string& key) const {
  for (const auto& entry : entries) {
    if (entry.first == key) return &entry.second;
  }
  return nullptr;
}

void ValueDict::set(const std::string& key, Value value) {
  for (auto& entry : entries) {
    if (entry.first == key) {
      entry.second = std::move(value);
      return;
    }
  }
  entries.emplace_back(key, std::move(value));
}

const Value* CallArgs::get(size_t position, const std::string& name) const {
  if (position < positional.size()) return &positional[position];
  for (const auto& [key, value] : keyword) {
    if (key == name) return &value;
  }
  return nullptr;
}

Value Value::undefined(std::string name) {
  Value v;
  v.string_ = std::move(name);
  return v;
}

Value Value::none() {
  Value v;
  v.type_ = Type::None;
  return v;
}

Value::Value(bool b) : type_(Type::Bool), bool_(b) {}
Value::Value(int64_t i) : type_(Type::Int), int_(i) {}
Value::Value(double f) : type_(Type::Float), float_(f) {}
Value::Value(std::string s) : type_(Type::String), string_(std::move(s)) {}
namespace {

// Printing, comparing and freeing nested lists and dicts recurse once per level: a list or dict is
// at most max_value_depth deep when built, and the recursive walks below stop at that depth too
// (a namespace can be changed after it was put in a list, or made to hold itself).
void check_value_depth(uint32_t depth) {
  const int limit = active_template_limits().max_value_depth;
  check(depth <= static_cast<uint32_t>(limit), "lists and dicts nested deeper than {} (the template limit)", limit);
}

thread_local int g_walk_depth = 0;

class WalkGuard {
 public:
  WalkGuard() { check_value_depth(static_cast<uint32_t>(++g_walk_depth)); }
  ~WalkGuard() { --g_walk_depth; }
  WalkGuard(const WalkGuard&) = delete;
  WalkGuard& operator=(const WalkGuard&) = delete;
};

}  // namespace

Value::Value(ValueList items, bool is_tuple)
    : type_(Type::List), tuple_(is_tuple), list_(std::make_shared<ValueList>(std::move(items))) {
  for (const auto& item : *list_) {
    depth_ = std::max(depth_, item.depth_ + 1);
    holds_namespace_ = holds_namespace_ || item.holds_namespace_;
  }
  check_value_depth(depth_);
}
Value::Value(ValueDict dict)
    : type_(Type::Dict), dict_(std::make_shared<ValueDict>(std::move(dict))) {
  holds_namespace_ = dict_->is_namespace;
  for (const auto& entry : dict_->entries) {
    depth_ = std::max(depth_, entry.second.depth_ + 1);
    holds_namespace_ = holds_namespace_ || entry.second.holds_namespace_;
  }
  check_value_depth(depth_);
}

Value Value::function(std::string name, Function fn) {
  Value v;
  v.type_ = Type::Function;
  v.string_ = std::move(name);
  v.function_ = std::make_shared<Function>(std::move(fn));
  return v;
}

Value Value::from_json(const nlohmann::ordered_json& json) {
  switch (json.type()) {
    case nlohmann::ordered_json::value_t::null: return none();
    case nlohmann::ordered_json::value_t::boolean: return Value(json.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return Value(json.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      const uint64_t n = json.get<uint64_t>();
      check(n <= static_cast<uint64_t>(INT64_MAX), "chat template context: integer {} does not fit in 64 bits", n);
      return Value(static_cast<int64_t>(n));
    }
    case nlohmann::ordered_json::value_t::number_float: return Value(json.get<double>());
    case nlohmann::ordered_json::value_t::string: return Value(json.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      ValueList items;
      for (const auto& item : json) items.push_back(from_json(item));
      return Value(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      ValueDict dict;
      for (const auto& [key, item] : json.items()) dict.entries.emplace_back(key, from_json(item));
      return Value(std::move(dict));
    }
    default: fail("chat template context: unsupported JSON value {}", json.dump());
  }
}

int64_t Value::as_int() const {
  if (type_ == Type::Float) return static_cast<int64_t>(float_);
  if (type_ == Type::Bool) return bool_ ? 1 : 0;
  return int_;
}

double Value::as_double() const {
  if (type_ == Type::Float) return float_;
  if (type_ == Type::Bool) return bool_ ? 1.0 : 0.0;
  return static_cast<double>(int_);
}

bool Value::truthy() const {
  switch (type_) {
    case Type::Undefined:
    case Type::None: return false;
    case Type::Bool: return bool_;
    case Type::Int: return int_ != 0;
    case Type::Float: return float_ != 0.0;
    case Type::String: return !string_.empty();
    case Type::List: return !list_->empty();
    case Type::Dict: return dict_->is_namespace || !dict_->entries.empty();
    case Type::Function: return true;
  }
  return false;
}

std::string Value::type_name() const {
  switch (type_) {
    case Type::Undefined: return "Undefined";
    case Type::None: return "NoneType";
    case Type::Bool: return "bool";
    case Type::Int: return "int";
    case Type::Float: return "float";
    case Type::String: return "str";
    case Type::List: return tuple_ ? "tuple" : "list";
    case Type::Dict: return dict_->is_namespace ? "Namespace" : "dict";
    case Type::Function: return "function";
  }
  return "?";
}

std::string python_float_repr(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  // fmt's shortest round-trip form equals Python's repr except that Python marks integral
  // values with ".0".
  std::string text = fmt::format("{}", value);
  if (text.find_first_of(".en") == std::string::npos) text += ".0";
  return text;
}

std::string python_string_repr(const std::string& text) {
  bool has_single = text.find('\'') != std::string::npos;
  bool has_double = text.find('"') != std::string::npos;
  char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  for (unsigned char c : text) {
    if (c == quote || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  out += quote;
  return out;
}

std::string Value::str() const {
  switch (type_) {
    case Type::Undefined: return "";
    case Type::String: return string_;
    default: return repr();
  }
}

std::string Value::repr() const {
  std::optional<WalkGuard> guard;
  if (type_ == Type::List || type_ == Type::Dict) guard.emplace();
  switch (type_) {
    case Type::Undefined: return "";
    case Type::None: return "None";
    case Type::Bool: return bool_ ? "True" : "False";
    case Type::Int: return std::to_string(int_);
    case Type::Float: return python_float_repr(float_);
    case Type::String: return python_string_repr(string_);
    case Type::List: {
      std::string out = tuple_ ? "(" : "[";
      for (size_t i = 0; i < list_->size(); ++i) {
        if (i) out += ", ";
        out += (*list_)[i].repr();
      }
      if (tuple_ && list_->size() == 1) out += ",";
      return out + (tuple_ ? ")" : "]");
    }
    case Type::Dict: {
      if (dict_->is_namespace) return "<Namespace>";
      std::string out = "{";
      bool first = true;
      for (const auto& [key, value] : dict_->entries) {
        if (!first) out += ", ";
        first = false;
        out += python_string_repr(key) + ": " + value.repr();
      }
      return out + "}";
    }
    case Type::Function: return "<function " + string_ + ">";
  }
  return "";
}

nlohmann::ordered_json Value::to_json() const {
  std::optional<WalkGuard> guard;
  if (type_ == Type::List || type_ == Type::Dict) guard.emplace();
  switch (type_) {
    case Type::None: return nullptr;
    case Type::Bool: return bool_;
    case Type::Int: return int_;
    case Type::Float: return float_;
    case Type::String: return string_;
    case Type::List: {
      auto array = nlohmann::ordered_json::array();
      for (const auto& item : *list_) array.push_back(item.to_json());
      return array;
    }
    case Type::Dict: {
      auto object = nlohmann::ordered_json::object();
      for (const auto& [key, value] : dict_->entries) object[key] = value.to_json();
      return object;
    }
    default: fail("Object of type {} is not JSON serializable", type_name());
  }
}

bool Value::equals(const Value& other) const {
  std::optional<WalkGuard> guard;
  if (type_ == Type::List || type_ == Type::Dict) guard.emplace();
  if (is_number() && other.is_number()) {
    if (type_ == Type::Float || other.type_ == Type::Float) return as_double() == other.as_double();
    return as_int() == other.as_int();
  }
  if (type_ != other.type_) return false;
  switch (type_) {
    case Type::Undefined:
    case Type::None: return true;
    case Type::String: return string_ == other.string_;
    case Type::List: {
      if (list_->size() != other.list_->size()) return false;
      for (size_t i = 0; i < list_->size(); ++i) {
        if (!(*list_)[i].equals((*other.list_)[i])) return false;
      }
      return true;
    }
    case Type::Dict: {
      if (dict_ == other.dict_) return true;
      if (dict_->entries.size() != other.dict_->entries.size()) return false;
      for (const auto& [key, value] : dict_->entries) {
        const Value* theirs = other.dict_->find(key);
        if (!theirs || !value.equals(*theirs)) return false;
      }
      return true;
    }
    case Type::Function: return function_ == other.function_;
    default: return false;
  }
}

bool Value::less_than(const Value& other) const {
  std::optional<WalkGuard> guard;
  if (type_ == Type::List || type_ == Type::Dict) guard.emplace();
  if (is_number() && other.is_number()) {
    if (type_ == Type::Float || other.type_ == Type::Float) return as_double() < other.as_double();
    return as_int() < other.as_int();
  }
  // UTF-8 byte order equals code point order, which is how Python compares str.
  if (is_string() && other.is_string()) return string_ < other.string_;
  if (is_list() && other.is_list()) {
    const auto& a = *list_;
    const auto& b = *other.list_;
    for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
      if (!a[i].equals(b[i])) return a[i].less_than(b[i]);
    }
    return a.size() < b.size();
  }
  fail("'<' not supported between instances of '{}' and '{}'", type_name(), other.type_name());
}

// json.dumps string escaping with ensure_ascii=False: only quotes, backslashes and control
// characters are escaped; everything else (non-ASCII, emoji) is written as is.
static void dump_json_string(const std::string& text, std::string& out) {
  out += '"';
  for (unsigned char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          out += fmt::format("\\u{:04x}", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

static void dump_json(const Value& value, int indent, bool sort_keys, int depth, std::string& out) {
  std::optional<WalkGuard> guard;
  if (value.is_list() || value.is_dict()) guard.emplace();
  std::string newline_indent;
  std::string inner_indent;
  if (indent >= 0) {
    newline_indent = "\n" + std::string(static_cast<size_t>(indent * depth), ' ');
    inner_indent = "\n" + std::string(static_cast<size_t>(indent * (depth + 1)), ' ');
  }
  const char* item_separator = indent >= 0 ? "," : ", ";
  switch (value.type()) {
    case Value::Type::None: out += "null"; return;
    case Value::Type::Bool: out += value.as_bool() ? "true" : "false"; return;
    case Value::Type::Int: out += std::to_string(value.as_int()); return;
    case Value::Type::Float: {
      double f = value.as_double();
      if (std::isnan(f)) out += "NaN";
      else if (std::isinf(f)) out += f > 0 ? "Infinity" : "-Infinity";
      else out += python_float_repr(f);
      return;
    }
    case Value::Type::String: dump_json_string(value.as_string(), out); return;
    case Value::Type::List: {
      const auto& items = value.as_list();
      if (items.empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += item_separator;
        out += inner_indent;
        dump_json(items[i], indent, sort_keys, depth + 1, out);
      }
      out += newline_indent + "]";
      return;
    }
    case Value::Type::Dict: {
      auto entries = value.as_dict().entries;
      if (entries.empty()) {
        out += "{}";
        return;
      }
      if (sort_keys) {
        std::stable_sort(entries.begin(), entries.end(),
                         [](const auto& a, const auto& b) { return a.first < b.first; });
      }
      out += '{';
      for (size_t i = 0; i < entries.size(); ++i) {
        if (i) out += item_separator;
        out += inner_indent;
        dump_json_string(entries[i].first, out);
        out += ": ";
        dump_json(entries[i].second, indent, sort_keys, depth + 1, out);
      }
      out += newline_indent + "}";
      return;
    }
    default: fail("Object of type {} is not JSON serializable", value.type_name());
  }
}

std::string python_json_dumps(const Value& value, int indent, bool sort_keys) {
  std::string out;
  dump_json(value, indent, sort_keys, 0, out);
  return out;
}

}  // namespace forma::chat
