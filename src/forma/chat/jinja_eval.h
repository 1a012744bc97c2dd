// Renders a parsed Jinja template: statements, expressions, scoping (for-loop bodies and macros
// get their own scope, `if` does not), loop variables, macros, and the globals transformers
// provides (raise_exception, strftime_now, range, namespace, dict).
#pragma once
#include <nlohmann/json.hpp>

#include <memory>
#include <string>

#include "forma/chat/jinja_ast.h"
#include "forma/chat/jinja_limits.h"
#include "forma/core/error.h"

namespace forma::chat {

// What raise_exception("...") in a template throws: the message is the template's own text.
class TemplateRaisedError : public Error {
 public:
  using Error::Error;
};

class JinjaTemplate {
 public:
  // Parses `source`; syntax errors throw forma::Error naming the template line and column.
  explicit JinjaTemplate(const std::string& source);

  // Renders with the JSON object's keys as variables. Runtime errors throw forma::Error naming
  // the line and column; raise_exception throws TemplateRaisedError with the template's message.
  // Every render runs under TemplateLimits (jinja_limits.h): the defaults, or `limits`.
  std::string render(const nlohmann::ordered_json& context) const;
  std::string render(const nlohmann::ordered_json& context, const TemplateLimits& limits) const;

 private:
  std::shared_ptr<const Body> body_;
};

}  // namespace forma::chat
