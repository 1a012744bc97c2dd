#include "forma/chat/jinja_eval.h"

#include <fmt/format.h>

#include <unordered_map>

#include "forma/chat/jinja_builtins.h"
#include "forma/chat/jinja_limits.h"
#include "forma/chat/jinja_operators.h"
#include "forma/chat/jinja_parser.h"

namespace forma::chat {

namespace {

// An error that already names its template position; outer expressions pass it through.
class LocatedError : public Error {
 public:
  using Error::Error;
};

struct Scope {
  std::unordered_map<std::string, Value> vars;
  std::shared_ptr<Scope> parent;

  const Value* find(const std::string& name) const {
    for (const Scope* s = this; s; s = s->parent.get()) {
      auto it = s->vars.find(name);
      if (it != s->vars.end()) return &it->second;
    }
    return nullptr;
  }
};
using ScopePtr = std::shared_ptr<Scope>;

enum class Flow { Normal, Break, Continue };

// Walks the tree for one render call.
class Renderer {
 public:
  Renderer(ScopePtr root, TemplateBudget& budget) : root_(std::move(root)), budget_(budget) {}

  Flow exec(const Body& body, const ScopePtr& scope, std::string& out) {
    for (const auto& stmt : body) {
      Flow flow;
      try {
        budget_.charge(1);
        flow = exec(*stmt, scope, out);
        check_template_string_size(out.size());
      } catch (const LocatedError&) {
        throw;
      } catch (const TemplateRaisedError&) {
        throw;
      } catch (const Error& error) {
        throw LocatedError(fmt::format("chat template line {}, column {}: {}", stmt->line, stmt->column, error.what()));
      }
      if (flow != Flow::Normal) return flow;
    }
    return Flow::Normal;
  }

  Value eval(const Expr& expr, const ScopePtr& scope) {
    try {
      Value result = eval_unlocated(expr, scope);
      // Strings cost by their size (every lookup copies one): a step per KiB.
      budget_.charge(1 + (result.is_string() ? static_cast<int64_t>(result.as_string().size() >> 10) : 0));
      if (result.is_string()) check_template_string_size(result.as_string().size());
      return result;
    } catch (const LocatedError&) {
      throw;
    } catch (const TemplateRaisedError&) {
      throw;
    } catch (const Error& error) {
      throw LocatedError(fmt::format("chat template line {}, column {}: {}", expr.line, expr.column, error.what()));
    }
  }

 private:
  ScopePtr root_;
  TemplateBudget& budget_;
  int call_depth_ = 0;

  Flow exec(const Stmt& stmt, const ScopePtr& scope, std::string& out) {
    switch (stmt.kind) {
      case Stmt::Kind::Text: out += stmt.text; return Flow::Normal;
      case Stmt::Kind::Output: out += eval(*stmt.exprs[0], scope).str(); return Flow::Normal;
      case Stmt::Kind::If:
        for (size_t i = 0; i < stmt.exprs.size(); ++i) {
          if (eval(*stmt.exprs[i], scope).truthy()) return exec(stmt.bodies[i], scope, out);
        }
        if (stmt.bodies.size() > stmt.exprs.size()) return exec(stmt.bodies.back(), scope, out);
        return Flow::Normal;
      case Stmt::Kind::For: exec_for(stmt, scope, out); return Flow::Normal;
      case Stmt::Kind::Set: exec_set(stmt, scope); return Flow::Normal;
      case Stmt::Kind::SetBlock: {
        std::string text;
        exec(stmt.bodies[0], scope, text);
        Value value(text);
        if (stmt.exprs[0]) value = eval_filter(*stmt.exprs[0], scope, &value);
        scope->vars[stmt.targets[0]] = value;
        return Flow::Normal;
      }
      case Stmt::Kind::Macro: scope->vars[stmt.name] = make_macro(stmt, scope); return Flow::Normal;
      case Stmt::Kind::CallBlock: out += exec_call_block(stmt, scope).str(); return Flow::Normal;
      case Stmt::Kind::FilterBlock: {
        std::string text;
        exec(stmt.bodies[0], scope, text);
        Value input(text);
        out += eval_filter(*stmt.exprs[0], scope, &input).str();
        return Flow::Normal;
      }
      case Stmt::Kind::Break: return Flow::Break;
      case Stmt::Kind::Continue: return Flow::Continue;
      case Stmt::Kind::Scope: return exec(stmt.bodies[0], scope, out);
    }
    return Flow::Normal;
  }

  static void bind_targets(const std::vector<std::string>& targets, const Value& value, Scope& scope) {
    if (targets.size() == 1) {
      scope.vars[targets[0]] = value;
      return;
    }
    check(value.is_list(), "cannot unpack non-sequence {}", value.type_name());
    const auto& items = value.as_list();
    check(items.size() == targets.size(), "{} values to unpack (expected {}, got {})",
          items.size() > targets.size() ? "too many" : "not enough", targets.size(), items.size());
    for (size_t i = 0; i < targets.size(); ++i) scope.vars[targets[i]] = items[i];
  }

  void exec_for(const Stmt& stmt, const ScopePtr& scope, std::string& out) {
    ValueList items;
    try {
      items = iterate(eval(*stmt.exprs[0], scope));
      if (stmt.exprs[1]) {  // `for x in xs if cond`: filter first, so loop.* counts kept items
        ValueList kept;
        for (auto& item : items) {
          auto probe = std::make_shared<Scope>();
          probe->parent = scope;
          bind_targets(stmt.targets, item, *probe);
          if (eval(*stmt.exprs[1], probe).truthy()) kept.push_back(std::move(item));
        }
        items = std::move(kept);
      }
    } catch (const LocatedError&) {
      throw;
    } catch (const TemplateRaisedError&) {
      throw;
    } catch (const Error& error) {
      throw LocatedError(fmt::format("chat template line {}, column {}: {}", stmt.line, stmt.column, error.what()));
    }
    if (items.empty()) {
      if (stmt.bodies.size() > 1) exec(stmt.bodies[1], scope, out);
      return;
    }
    const int64_t n = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < n; ++i) {
      budget_.charge(1);  // an empty body still costs its iteration
      auto iteration = std::make_shared<Scope>();
      iteration->parent = scope;
      bind_targets(stmt.targets, items[static_cast<size_t>(i)], *iteration);
      iteration->vars["loop"] = loop_object(items, i);
      if (exec(stmt.bodies[0], iteration, out) == Flow::Break) break;
    }
  }

  static Value loop_object(const ValueList& items, int64_t i) {
    const int64_t n = static_cast<int64_t>(items.size());
    ValueDict loop;
    loop.is_namespace = true;  // attribute access only: loop.index, not dict methods
    loop.set("index", Value(i + 1));
    loop.set("index0", Value(i));
    loop.set("revindex", Value(n - i));
    loop.set("revindex0", Value(n - i - 1));
    loop.set("first", Value(i == 0));
    loop.set("last", Value(i == n - 1));
    loop.set("length", Value(n));
    loop.set("depth", Value(int64_t{1}));
    loop.set("depth0", Value(int64_t{0}));
    loop.set("previtem", i > 0 ? items[static_cast<size_t>(i - 1)] : Value::undefined("there is no previous item"));
    loop.set("nextitem", i + 1 < n ? items[static_cast<size_t>(i + 1)] : Value::undefined("there is no next item"));
    loop.set("cycle", Value::function("loop.cycle", [i](const CallArgs& args) {
      check(!args.positional.empty(), "no items for cycling given");
      return args.positional[static_cast<size_t>(i) % args.positional.size()];
    }));
    return Value(std::move(loop));
  }

  void exec_set(const Stmt& stmt, const ScopePtr& scope) {
    Value value = eval(*stmt.exprs[0], scope);
    if (stmt.attribute.empty()) {
      try {
        bind_targets(stmt.targets, value, *scope);
      } catch (const Error& error) {
        throw LocatedError(fmt::format("chat template line {}, column {}: {}", stmt.line, stmt.column, error.what()));
      }
      return;
    }
    const Value* target = scope->find(stmt.targets[0]);
    if (!target || !target->is_dict() || !target->as_dict().is_namespace) {
      throw LocatedError(fmt::format("chat template line {}, column {}: cannot assign attribute on non-namespace object '{}'",
                                     stmt.line, stmt.column, stmt.targets[0]));
    }
    // A namespace is the one value a template changes after building it: were it to take in a
    // namespace, a loop could link them into a chain (or a cycle) of any length, past the nesting
    // limit that is checked when values are built, and freeing that chain would overflow the stack.
    // No chat template needs it; Jinja2 allows it.
    if (value.holds_namespace()) {
      throw LocatedError(fmt::format("chat template line {}, column {}: '{}.{}': a namespace attribute may not hold a "
                                     "namespace (or a list or dict holding one)",
                                     stmt.line, stmt.column, stmt.targets[0], stmt.attribute));
    }
    const_cast<Value*>(target)->mutable_dict().set(stmt.attribute, std::move(value));
  }

  Value make_macro(const Stmt& stmt, const ScopePtr& definition_scope) {
    const Stmt* macro = &stmt;
    std::weak_ptr<Scope> weak_scope = definition_scope;
    return Value::function(stmt.name, [this, macro, weak_scope](const CallArgs& args) {
      ScopePtr parent = weak_scope.lock();
      check(parent != nullptr, "macro '{}' called after its scope ended", macro->name);
      const int max_depth = budget_.limits().max_call_depth;
      check(call_depth_ < max_depth, "macro calls nested deeper than {} (the template limit)", max_depth);
      auto scope = std::make_shared<Scope>();
      scope->parent = parent;
      check(args.positional.size() <= macro->targets.size(), "macro '{}' takes not more than {} argument(s)",
            macro->name, macro->targets.size());
      for (size_t i = 0; i < macro->targets.size(); ++i) {
        const Value* given = args.get(i, macro->targets[i]);
        if (given) scope->vars[macro->targets[i]] = *given;
        else if (macro->exprs[i]) scope->vars[macro->targets[i]] = eval(*macro->exprs[i], scope);
        else scope->vars[macro->targets[i]] = Value::undefined(fmt::format("parameter '{}' was not provided", macro->targets[i]));
      }
      for (const auto& [key, value] : args.keyword) {
        bool known = std::find(macro->targets.begin(), macro->targets.end(), key) != macro->targets.end();
        check(known || key == "caller", "macro '{}' has no argument named '{}'", macro->name, key);
        if (!known) scope->vars[key] = value;
      }
      std::string out;
      ++call_depth_;
      try {
        exec(macro->bodies[0], scope, out);
      } catch (...) {
        --call_depth_;
        throw;
      }
      --call_depth_;
      return Value(out);
    });
  }

  Value exec_call_block(const Stmt& stmt, const ScopePtr& scope) {
    const Stmt* block = &stmt;
    ScopePtr captured = scope;
    Value caller = Value::function("caller", [this, block, captured](const CallArgs&) {
      std::string out;
      auto inner = std::make_shared<Scope>();
      inner->parent = captured;
      exec(block->bodies[0], inner, out);
      return Value(out);
    });
    const Expr& call = *stmt.exprs[0];
    CallArgs args = eval_args(call, scope);
    args.keyword.emplace_back("caller", caller);
    return call_value(eval(*call.args[0], scope), args, call);
  }

  CallArgs eval_args(const Expr& call, const ScopePtr& scope) {
    CallArgs args;
    for (size_t i = 1; i < call.args.size(); ++i) args.positional.push_back(eval(*call.args[i], scope));
    for (const auto& [key, value] : call.kwargs) args.keyword.emplace_back(key, eval(*value, scope));
    return args;
  }

  Value call_value(const Value& callee, const CallArgs& args, const Expr& where) {
    if (callee.is_undefined()) fail_undefined(callee);
    if (!callee.is_function()) fail("'{}' object is not callable", callee.type_name());
    try {
      return callee.as_function()(args);
    } catch (const LocatedError&) {
      throw;
    } catch (const TemplateRaisedError&) {
      throw;
    } catch (const Error& error) {
      throw LocatedError(fmt::format("chat template line {}, column {}: {}", where.line, where.column, error.what()));
    }
  }

  // A filter chain; in {% filter %} and block sets the innermost object is `block_input`.
  Value eval_filter(const Expr& expr, const ScopePtr& scope, const Value* block_input) {
    Value input;
    if (expr.args[0]) {
      input = expr.args[0]->kind == Expr::Kind::Filter ? eval_filter(*expr.args[0], scope, block_input)
                                                       : eval(*expr.args[0], scope);
    } else {
      input = *block_input;
    }
    CallArgs args = eval_args(expr, scope);
    try {
      return apply_filter(expr.name, input, args);
    } catch (const TemplateRaisedError&) {
      throw;
    } catch (const LocatedError&) {
      throw;
    } catch (const Error& error) {
      throw LocatedError(fmt::format("chat template line {}, column {}: {}", expr.line, expr.column, error.what()));
    }
  }

  Value eval_unlocated(const Expr& expr, const ScopePtr& scope) {
    switch (expr.kind) {
      case Expr::Kind::Literal: return expr.literal;
      case Expr::Kind::Name: {
        if (const Value* found = scope->find(expr.name)) return *found;
        return Value::undefined(fmt::format("'{}' is undefined", expr.name));
      }
      case Expr::Kind::List:
      case Expr::Kind::Tuple: {
        ValueList items;
        for (const auto& item : expr.args) items.push_back(eval(*item, scope));
        return Value(std::move(items), expr.kind == Expr::Kind::Tuple);
      }
      case Expr::Kind::Dict: {
        ValueDict dict;
        for (size_t i = 0; i + 1 < expr.args.size(); i += 2) {
          Value key = eval(*expr.args[i], scope);
          dict.set(key.is_string() ? key.as_string() : key.str(), eval(*expr.args[i + 1], scope));
        }
        return Value(std::move(dict));
      }
      case Expr::Kind::Attr: return get_attribute(eval(*expr.args[0], scope), expr.name);
      case Expr::Kind::Index: return get_item(eval(*expr.args[0], scope), eval(*expr.args[1], scope));
      case Expr::Kind::Slice: {
        Value object = eval(*expr.args[0], scope);
        Value parts[3];
        for (int i = 0; i < 3; ++i) parts[i] = expr.args[i + 1] ? eval(*expr.args[i + 1], scope) : Value::none();
        return slice(object, &parts[0], &parts[1], &parts[2]);
      }
      case Expr::Kind::Call: return call_value(eval(*expr.args[0], scope), eval_args(expr, scope), expr);
      case Expr::Kind::Filter: return eval_filter(expr, scope, nullptr);
      case Expr::Kind::Test: {
        Value input = eval(*expr.args[0], scope);
        bool result = apply_test(expr.name, input, eval_args(expr, scope));
        return Value(expr.negated ? !result : result);
      }
      case Expr::Kind::Neg:
      case Expr::Kind::Pos: {
        Value v = eval(*expr.args[0], scope);
        if (v.is_undefined()) fail_undefined(v);
        check(v.is_number(), "bad operand type for unary {}: '{}'", expr.kind == Expr::Kind::Neg ? "-" : "+", v.type_name());
        if (expr.kind == Expr::Kind::Pos) return v.is_bool() ? Value(v.as_int()) : v;
        return v.is_float() ? Value(-v.as_double()) : Value(checked_neg(v.as_int()));
      }
      case Expr::Kind::Not: return Value(!eval(*expr.args[0], scope).truthy());
      case Expr::Kind::And: {
        Value left = eval(*expr.args[0], scope);
        return left.truthy() ? eval(*expr.args[1], scope) : left;
      }
      case Expr::Kind::Or: {
        Value left = eval(*expr.args[0], scope);
        return left.truthy() ? left : eval(*expr.args[1], scope);
      }
      case Expr::Kind::Binary: {
        Value left = eval(*expr.args[0], scope);
        Value right = eval(*expr.args[1], scope);
        if (expr.name == "~") {
          std::string text = left.str();
          std::string right_text = right.str();
          check_template_string_size(text.size() + right_text.size());
          return Value(text + right_text);
        }
        return arithmetic(expr.name, left, right);
      }
      case Expr::Kind::Compare: {
        Value left = eval(*expr.args[0], scope);
        for (size_t i = 0; i < expr.ops.size(); ++i) {
          Value right = eval(*expr.args[i + 1], scope);
          if (!compare(expr.ops[i], left, right)) return Value(false);
          left = std::move(right);
        }
        return Value(true);
      }
      case Expr::Kind::Cond: {
        if (eval(*expr.args[1], scope).truthy()) return eval(*expr.args[0], scope);
        if (expr.args[2]) return eval(*expr.args[2], scope);
        return Value::undefined("the inline if-expression evaluated to false and no else section was defined");
      }
    }
    return Value();
  }
};

}  // namespace

JinjaTemplate::JinjaTemplate(const std::string& source)
    : body_(std::make_shared<const Body>(parse_template(source))) {}

std::string JinjaTemplate::render(const nlohmann::ordered_json& context) const {
  return render(context, TemplateLimits{});
}

std::string JinjaTemplate::render(const nlohmann::ordered_json& context, const TemplateLimits& limits) const {
  check(context.is_object(), "chat template context must be a JSON object");
  TemplateBudget budget(limits);
  auto globals = std::make_shared<Scope>();
  for (auto& [name, value] : builtin_globals().entries) globals->vars[name] = value;
  auto root = std::make_shared<Scope>();
  root->parent = globals;
  for (const auto& [key, value] : context.items()) root->vars[key] = Value::from_json(value);
  Renderer renderer(root, budget);
  std::string out;
  renderer.exec(*body_, root, out);
  return out;
}

}  // namespace forma::chat
