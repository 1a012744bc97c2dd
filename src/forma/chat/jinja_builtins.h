// Jinja's built-in filters and tests, Python's methods on str/dict/list that templates call, and
// the global functions. All throw forma::Error (without a position; the evaluator adds it).
#pragma once
#include <string>

#include "forma/chat/jinja_text.h"
#include "forma/chat/jinja_value.h"

namespace forma::chat {

// Filters that call back into the template language (map('upper'), select('odd')) use these.
Value apply_filter(const std::string& name, const Value& input, const CallArgs& args);
bool apply_test(const std::string& name, const Value& input, const CallArgs& args);

// Python's method `name` bound to `object` (e.g. "hi".upper), or Undefined if there is none.
Value bound_method(const Value& object, const std::string& name);

// The globals every template sees: range, namespace, dict, raise_exception, strftime_now.
ValueDict builtin_globals();

// Python's iter(): the items of a list, the keys of a dict, the characters of a str; Undefined
// iterates as empty. Anything else is a forma::Error.
ValueList iterate(const Value& value);

}  // namespace forma::chat
