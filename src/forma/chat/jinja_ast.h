// Syntax tree of a parsed Jinja template: expressions and statements, each with the template
// line and column they came from (for error messages).
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "forma/chat/jinja_value.h"

namespace forma::chat {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    Literal,  // literal
    Name,     // name
    List,     // args = items
    Tuple,    // args = items
    Dict,     // args = key0, value0, key1, value1, ...
    Attr,     // args[0].name
    Index,    // args[0][args[1]]
    Slice,    // args[0][args[1]:args[2]:args[3]] (missing parts are null)
    Call,     // args[0](args[1..], kwargs)
    Filter,   // args[0] | name(args[1..], kwargs); args[0] is null in {% filter %} blocks
    Test,     // args[0] is [not] name(args[1..], kwargs)
    Neg,      // -args[0]
    Pos,      // +args[0]
    Not,      // not args[0]
    Binary,   // args[0] name args[1] for + - * / // % ** ~
    And,      // args[0] and args[1]
    Or,       // args[0] or args[1]
    Compare,  // args[0] ops[0] args[1] ops[1] args[2] ... (==, !=, <, <=, >, >=, in, notin)
    Cond,     // args[0] if args[1] else args[2] (args[2] may be null)
  };
  Kind kind;
  int line = 0;
  int column = 0;
  Value literal;
  std::string name;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;
  bool negated = false;
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Stmt {
  enum class Kind {
    Text,         // text
    Output,       // {{ exprs[0] }}
    If,           // exprs = conditions, bodies = one per condition (+ else body)
    For,          // for targets in exprs[0] [if exprs[1]]: bodies[0] [else bodies[1]]
    Set,          // set targets = exprs[0]; or set targets[0].attribute = exprs[0]
    SetBlock,     // set targets[0] %}bodies[0]{% endset (exprs[0]: optional filter)
    Macro,        // macro name(targets = params with exprs defaults (null if none)): bodies[0]
    CallBlock,    // call exprs[0] (a Call) whose callee may call caller(): bodies[0]
    FilterBlock,  // filter exprs[0] (a Filter whose object is the rendered bodies[0])
    Break,
    Continue,
    Scope,        // bodies[0] rendered in place ({% generation %} of transformers)
  };
  Kind kind;
  int line = 0;
  int column = 0;
  std::string text;
  std::string name;
  std::string attribute;
  std::vector<std::string> targets;
  std::vector<ExprPtr> exprs;
  std::vector<Body> bodies;
};

}  // namespace forma::chat
