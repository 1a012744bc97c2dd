// Values of the Jinja template language as chat templates see them: Python's None, bool, int,
// float, str, list (and tuple), dict (insertion-ordered) plus Jinja's Undefined and callables.
// Printing follows Python's str()/repr() so rendered text matches Jinja2 byte for byte.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace forma::chat {

class Value;
using ValueList = std::vector<Value>;

// Ordered dict with string keys (JSON objects and template dict literals only need those).
struct ValueDict {
  std::vector<std::pair<std::string, Value>> entries;
  bool is_namespace = false;  // namespace() objects accept attribute assignment

  const Value* find(const std::string& key) const;
  void set(const std::string& key, Value value);
};

// Arguments of a call: positional then keyword, as written in the template.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;

  // The argument at `position` or named `name`, or nullptr when neither was given.
  const Value* get(size_t position, const std::string& name) const;
};
using Function = std::function<Value(const CallArgs&)>;

class Value {
 public:
  enum class Type { Undefined, None, Bool, Int, Float, String, List, Dict, Function };

  Value() = default;  // Undefined
  static Value undefined(std::string name = "");
  static Value none();
  Value(bool b);
  Value(int i) : Value(static_cast<int64_t>(i)) {}
  Value(int64_t i);
  Value(double f);
  Value(std::string s);
  Value(const char* s) : Value(std::string(s)) {}
  Value(ValueList items, bool is_tuple = false);
  Value(ValueDict dict);
  static Value function(std::string name, Function fn);
  static Value from_json(const nlohmann::ordered_json& json);

  Type type() const { return type_; }
  bool is_undefined() const { return type_ == Type::Undefined; }
  bool is_none() const { return type_ == Type::None; }
  bool is_bool() const { return type_ == Type::Bool; }
  bool is_int() const { return type_ == Type::Int; }
  bool is_float() const { return type_ == Type::Float; }
  bool is_number() const { return type_ == Type::Int || type_ == Type::Float || type_ == Type::Bool; }
  bool is_string() const { return type_ == Type::String; }
  bool is_list() const { return type_ == Type::List; }
  bool is_tuple() const { return type_ == Type::List && tuple_; }
  bool is_dict() const { return type_ == Type::Dict; }
  bool is_function() const { return type_ == Type::Function; }

  bool as_bool() const { return bool_; }
  int64_t as_int() const;     // bool and int (float truncates)
  double as_double() const;   // bool, int, float
  const std::string& as_string() const { return string_; }  // also an Undefined's name
  const ValueList& as_list() const { return *list_; }
  ValueList& mutable_list() { return *list_; }
  const ValueDict& as_dict() const { return *dict_; }
  ValueDict& mutable_dict() { return *dict_; }  // shared: namespaces mutate in place
  const Function& as_function() const { return *function_; }
  // A namespace, or a list or dict holding one (at any depth): the only values a template can
  // change after building them.
  bool holds_namespace() const { return holds_namespace_; }

  bool truthy() const;
  std::string type_name() const;  // Python's name: 'str', 'list', 'NoneType', ...
  std::string str() const;        // Python str(): what {{ value }} prints
  std::string repr() const;       // Python repr(): how items print inside lists and dicts
  nlohmann::ordered_json to_json() const;  // fails on Undefined and callables, like json.dumps

  // Python ==: numbers compare by value (True == 1), containers element-wise, Undefined equals
  // only Undefined.
  bool equals(const Value& other) const;
  // Python <: numbers, strings (code points), lists lexicographically; else a forma::Error.
  bool less_than(const Value& other) const;

 private:
  Type type_ = Type::Undefined;
  bool bool_ = false;
  bool tuple_ = false;
  uint32_t depth_ = 0;  // lists and dicts: 1 + the deepest item when built (jinja_limits.h)
  bool holds_namespace_ = false;
  int64_t int_ = 0;
  double float_ = 0;
  std::string string_;
  std::shared_ptr<ValueList> list_;
  std::shared_ptr<ValueDict> dict_;
  std::shared_ptr<Function> function_;
};

// Python's repr() of a float ("1.0", "0.1", "1e+16", "inf").
std::string python_float_repr(double value);
// Python's repr() of a str: single quotes unless the text holds ' and no ".
std::string python_string_repr(const std::string& text);
// json.dumps(value, ensure_ascii=False, indent=indent) with Python's default separators
// (", " and ": ", or "," and ": " when indenting). indent < 0 means no indent.
std::string python_json_dumps(const Value& value, int indent, bool sort_keys = false);

}  // namespace forma::chat
