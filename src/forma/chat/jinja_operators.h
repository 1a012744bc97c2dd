// Python semantics of the template operators: arithmetic, comparisons, membership, slicing, and
// Jinja's attribute/subscript lookup (a missing key or index gives Undefined, as Jinja2 does).
// Errors are forma::Error without a position; the evaluator adds the template line and column.
#pragma once
#include <string>

#include "forma/chat/jinja_value.h"

namespace forma::chat {

// Throws the error an Undefined value carries ("'x' is undefined").
[[noreturn]] void fail_undefined(const Value& undefined);

// + - * / // % ** (op is the operator's text).
Value arithmetic(const std::string& op, const Value& a, const Value& b);
// == != < <= > >= in notin.
bool compare(const std::string& op, const Value& a, const Value& b);
// value[start:stop:step] on a list or str; null/None parts take Python's defaults.
Value slice(const Value& object, const Value* start, const Value* stop, const Value* step);
// object.name: a bound method first (as Python's getattr), then a dict key.
Value get_attribute(const Value& object, const std::string& name);
// object[key]: a dict key or list/str index, then an attribute.
Value get_item(const Value& object, const Value& key);

}  // namespace forma::chat
