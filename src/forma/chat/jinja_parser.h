// Parses Jinja template source into a syntax tree, following Jinja2's grammar and operator
// precedence (filters bind tighter than arithmetic, `not` looser than comparisons).
#pragma once
#include <string>

#include "forma/chat/jinja_ast.h"

namespace forma::chat {

// Throws forma::Error "chat template line L, column C: ..." on a syntax error.
Body parse_template(const std::string& source);

}  // namespace forma::chat
