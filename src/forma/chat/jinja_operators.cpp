#include "forma/chat/jinja_operators.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "forma/chat/jinja_builtins.h"
#include "forma/chat/jinja_limits.h"
#include "forma/core/error.h"

namespace forma::chat {

namespace {

std::string describe_type(const Value& v) { return v.type_name() + " object"; }

// Copying a list copies its strings (nested lists and dicts are shared): a list built by + or *
// may hold no more string bytes than one string may, and the copy costs a step per KiB.
void check_list_copy(const ValueList& items, int64_t times) {
  check_template_list_size(static_cast<size_t>(items.size()) * static_cast<size_t>(times));
  size_t bytes = 0;
  for (const auto& item : items) {
    if (item.is_string()) bytes += item.as_string().size();
  }
  size_t copied = 0;
  if (__builtin_mul_overflow(bytes, static_cast<size_t>(times), &copied)) copied = SIZE_MAX;
  check_template_string_size(copied);
  charge_template_steps(static_cast<int64_t>(copied >> 10));
}

bool could_be_dict_method(const std::string& name) {
  static const char* const kNames[] = {"get", "items", "keys", "values", "update", "pop", "popitem",
                                       "setdefault", "clear", "copy"};
  for (const char* method : kNames) {
    if (name == method) return true;
  }
  return false;
}

bool contains(const Value& container, const Value& item) {
  if (container.is_string()) {
    check(item.is_string(), "'in <string>' requires string as left operand, not {}", item.type_name());
    charge_template_steps(static_cast<int64_t>(container.as_string().size() / 1024));
    return container.as_string().find(item.as_string()) != std::string::npos;
  }
  if (container.is_dict()) {
    return item.is_string() && container.as_dict().find(item.as_string()) != nullptr;
  }
  if (container.is_list()) {
    charge_template_steps(static_cast<int64_t>(container.as_list().size()));
    for (const auto& element : container.as_list()) {
      if (element.equals(item)) return true;
    }
    return false;
  }
  if (container.is_undefined()) return false;
  fail("argument of type '{}' is not iterable", container.type_name());
}

}  // namespace

void fail_undefined(const Value& undefined) {
  const std::string& hint = undefined.as_string();
  fail("{}", hint.empty() ? "value is undefined" : hint);
}




Value arithmetic(const std::string& op, const Value& a, const Value& b) {
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  bool numbers = a.is_number() && b.is_number();
  bool floats = numbers && (a.is_float() || b.is_float());
  auto type_error = [&]() -> Value {
    if (op == "+" && a.is_string()) fail("can only concatenate str (not \"{}\") to str", b.type_name());
    fail("unsupported operand type(s) for {}: '{}' and '{}'", op, a.type_name(), b.type_name());
  };
  if (op == "+") {
    if (numbers) return floats ? Value(a.as_double() + b.as_double()) : Value(checked_add(a.as_int(), b.as_int()));
    if (a.is_string() && b.is_string()) {
      check_template_string_size(a.as_string().size() + b.as_string().size());
      return Value(a.as_string() + b.as_string());
    }
    if (a.is_list() && b.is_list()) {
      check_template_list_size(a.as_list().size() + b.as_list().size());
      check_list_copy(a.as_list(), 1);
      check_list_copy(b.as_list(), 1);
      ValueList items = a.as_list();
      items.insert(items.end(), b.as_list().begin(), b.as_list().end());
      return Value(std::move(items), a.is_tuple());
    }
    return type_error();
  }
  if (op == "*") {
    if (numbers) return floats ? Value(a.as_double() * b.as_double()) : Value(checked_mul(a.as_int(), b.as_int()));
    const Value* seq = a.is_number() ? &b : &a;
    const Value* count = a.is_number() ? &a : &b;
    if ((count->is_int() || count->is_bool()) && (seq->is_string() || seq->is_list())) {
      int64_t n = std::max<int64_t>(0, count->as_int());
      const int64_t unit = static_cast<int64_t>(seq->is_string() ? seq->as_string().size() : seq->as_list().size());
      int64_t total = 0;
      check(!__builtin_mul_overflow(n, unit, &total), "repetition of a {} of {} {} times does not fit in 64 bits",
            seq->type_name(), unit, n);
      if (seq->is_string()) check_template_string_size(static_cast<size_t>(total));
      else check_list_copy(seq->as_list(), n);
      if (unit == 0) n = 0;  // empty times anything: no need to loop
      if (seq->is_string()) {
        std::string out;
        for (int64_t i = 0; i < n; ++i) out += seq->as_string();
        return Value(out);
      }
      ValueList out;
      for (int64_t i = 0; i < n; ++i) out.insert(out.end(), seq->as_list().begin(), seq->as_list().end());
      return Value(std::move(out));
    }
    return type_error();
  }
  if (!numbers) {
    if (op == "%" && a.is_string()) {
      CallArgs args;
      if (b.is_tuple()) args.positional = b.as_list();
      else args.positional.push_back(b);
      return apply_filter("format", a, args);
    }
    return type_error();
  }
  if (op == "-") return floats ? Value(a.as_double() - b.as_double()) : Value(checked_sub(a.as_int(), b.as_int()));
  if (op == "/") {
    check(b.as_double() != 0.0, "division by zero");
    return Value(a.as_double() / b.as_double());
  }
  if (op == "//" || op == "%") {
    if (floats) {
      check(b.as_double() != 0.0, "float division by zero");
      double q = std::floor(a.as_double() / b.as_double());
      return op == "//" ? Value(q) : Value(a.as_double() - q * b.as_double());
    }
    check(b.as_int() != 0, "integer division or modulo by zero");
    return op == "//" ? Value(checked_floor_div(a.as_int(), b.as_int())) : Value(checked_floor_mod(a.as_int(), b.as_int()));
  }
  if (op == "**") {
    if (!floats && b.as_int() >= 0) return Value(checked_pow(a.as_int(), b.as_int()));
    // Python: 0 ** -1 (and 0.0 ** -1.0) raise ZeroDivisionError rather than give inf.
    check(a.as_double() != 0.0 || b.as_double() >= 0.0, "0.0 cannot be raised to a negative power");
    return Value(std::pow(a.as_double(), b.as_double()));
  }
  fail("unknown operator {}", op);
}


bool compare(const std::string& op, const Value& a, const Value& b) {
  if (op == "==") return a.equals(b);
  if (op == "!=") return !a.equals(b);
  if (op == "in") return contains(b, a);
  if (op == "notin") return !contains(b, a);
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  if (op == "<") return a.less_than(b);
  if (op == ">") return b.less_than(a);
  if (op == "<=") return a.less_than(b) || a.equals(b);
  if (op == ">=") return b.less_than(a) || a.equals(b);
  fail("unknown comparison {}", op);
}

// Python slice semantics for list and str (by code point).
Value slice(const Value& object, const Value* start, const Value* stop, const Value* step) {
  if (object.is_undefined()) fail_undefined(object);
  std::vector<std::string> chars;
  const ValueList* list = nullptr;
  if (object.is_string()) chars = utf8_code_points(object.as_string());
  else if (object.is_list()) list = &object.as_list();
  else fail("'{}' object is not subscriptable", object.type_name());
  int64_t n = static_cast<int64_t>(list ? list->size() : chars.size());
  int64_t s = (step && !step->is_none()) ? step->as_int() : 1;
  check(s != 0, "slice step cannot be zero");
  auto bound = [&](const Value* v, int64_t fallback) {
    if (!v || v->is_none()) return fallback;
    int64_t i = v->as_int();
    if (i < 0) i += n;
    if (s > 0) return std::clamp<int64_t>(i, 0, n);
    return std::clamp<int64_t>(i, -1, n - 1);
  };
  int64_t begin = bound(start, s > 0 ? 0 : n - 1);
  int64_t end = bound(stop, s > 0 ? n : -1);
  ValueList items;
  std::string text;
  for (int64_t i = begin; s > 0 ? i < end : i > end; i += s) {
    if (list) items.push_back((*list)[static_cast<size_t>(i)]);
    else text += chars[static_cast<size_t>(i)];
  }
  return list ? Value(std::move(items), object.is_tuple()) : Value(std::move(text));
}

Value get_attribute(const Value& object, const std::string& name) {
  if (object.is_undefined()) fail_undefined(object);
  if (object.is_dict()) {
    // Python's getattr finds dict methods before keys; most lookups are keys, so the method
    // table is consulted only for names that could be one.
    if (!object.as_dict().is_namespace && could_be_dict_method(name)) {
      Value method = bound_method(object, name);
      if (!method.is_undefined()) return method;
    }
    if (const Value* found = object.as_dict().find(name)) return *found;
    return Value::undefined(fmt::format("'{}' has no attribute '{}'", describe_type(object), name));
  }
  Value method = bound_method(object, name);
  if (!method.is_undefined()) return method;
  return Value::undefined(fmt::format("'{}' has no attribute '{}'", describe_type(object), name));
}

Value get_item(const Value& object, const Value& key) {
  if (object.is_undefined()) fail_undefined(object);
  if (object.is_dict() && key.is_string()) {
    if (const Value* found = object.as_dict().find(key.as_string())) return *found;
    return get_attribute(object, key.as_string());
  }
  if ((object.is_list() || object.is_string()) && (key.is_int() || key.is_bool())) {
    int64_t i = key.as_int();
    if (object.is_list()) {
      int64_t n = static_cast<int64_t>(object.as_list().size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return object.as_list()[static_cast<size_t>(i)];
    } else {
      auto chars = utf8_code_points(object.as_string());
      int64_t n = static_cast<int64_t>(chars.size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return Value(chars[static_cast<size_t>(i)]);
    }
    return Value::undefined(fmt::format("{} has no element {}", describe_type(object), key.as_int()));
  }
  if (key.is_string()) return get_attribute(object, key.as_string());
  return Value::undefined(fmt::format("{} has no element {}", describe_type(object), key.repr()));
}

}  // namespace forma::chat
