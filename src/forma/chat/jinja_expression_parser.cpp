#include "forma/chat/jinja_expression_parser.h"

namespace forma::chat {

ExprPtr ExpressionParser::parse_tuple(bool with_condexpr) {
  const Token& start = cur();
  ExprPtr first = parse_expression(with_condexpr);
  if (!is_op(",")) return first;
  auto tuple = make<Expr>(Expr::Kind::Tuple, start);
  tuple->args.push_back(std::move(first));
  while (accept_op(",")) {
    if (cur().type == T::VarEnd || cur().type == T::BlockEnd || is_op(")")) break;
    tuple->args.push_back(parse_expression(with_condexpr));
  }
  return tuple;
}

ExprPtr ExpressionParser::parse_expression(bool with_condexpr) {
  return with_condexpr ? parse_condexpr() : parse_or();
}

ExprPtr ExpressionParser::parse_condexpr() {
  NestingGuard guard(*this, cur());
  ExprPtr expr = parse_or();
  while (is_name("if")) {
    const Token& at = advance();
    auto cond = make<Expr>(Expr::Kind::Cond, at);
    cond->args.push_back(std::move(expr));
    cond->args.push_back(parse_or());
    cond->args.push_back(accept_name("else") ? parse_condexpr() : nullptr);
    expr = std::move(cond);
  }
  return expr;
}

ExprPtr ExpressionParser::binary(Expr::Kind kind, const Token& at, ExprPtr left, ExprPtr right, std::string op) {
  auto node = make<Expr>(kind, at);
  node->name = std::move(op);
  node->args.push_back(std::move(left));
  node->args.push_back(std::move(right));
  return node;
}

ExprPtr ExpressionParser::parse_or() {
  ExprPtr left = parse_and();
  while (is_name("or")) {
    const Token& at = advance();
    left = binary(Expr::Kind::Or, at, std::move(left), parse_and());
  }
  return left;
}

ExprPtr ExpressionParser::parse_and() {
  ExprPtr left = parse_not();
  while (is_name("and")) {
    const Token& at = advance();
    left = binary(Expr::Kind::And, at, std::move(left), parse_not());
  }
  return left;
}

ExprPtr ExpressionParser::parse_not() {
  NestingGuard guard(*this, cur());
  if (is_name("not")) {
    const Token& at = advance();
    auto node = make<Expr>(Expr::Kind::Not, at);
    node->args.push_back(parse_not());
    return node;
  }
  return parse_compare();
}

ExprPtr ExpressionParser::parse_compare() {
  const Token& start = cur();
  ExprPtr first = parse_math1();
  std::unique_ptr<Expr> compare;
  while (true) {
    std::string op;
    if (cur().type == T::Op && (cur().text == "==" || cur().text == "!=" || cur().text == "<" ||
                                cur().text == "<=" || cur().text == ">" || cur().text == ">=")) {
      op = advance().text;
    } else if (is_name("in")) {
      advance();
      op = "in";
    } else if (is_name("not") && peek().type == T::Name && peek().text == "in") {
      advance();
      advance();
      op = "notin";
    } else {
      break;
    }
    if (!compare) {
      compare = make<Expr>(Expr::Kind::Compare, start);
      compare->args.push_back(std::move(first));
    }
    compare->ops.push_back(op);
    compare->args.push_back(parse_math1());
  }
  return compare ? std::move(compare) : std::move(first);
}

ExprPtr ExpressionParser::parse_math1() {
  ExprPtr left = parse_concat();
  while (is_op("+") || is_op("-")) {
    const Token& at = advance();
    left = binary(Expr::Kind::Binary, at, std::move(left), parse_concat(), at.text);
  }
  return left;
}

ExprPtr ExpressionParser::parse_concat() {
  ExprPtr left = parse_math2();
  while (is_op("~")) {
    const Token& at = advance();
    left = binary(Expr::Kind::Binary, at, std::move(left), parse_math2(), "~");
  }
  return left;
}

ExprPtr ExpressionParser::parse_math2() {
  ExprPtr left = parse_pow();
  while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
    const Token& at = advance();
    left = binary(Expr::Kind::Binary, at, std::move(left), parse_pow(), at.text);
  }
  return left;
}

ExprPtr ExpressionParser::parse_pow() {
  ExprPtr left = parse_unary(true);
  while (is_op("**")) {
    const Token& at = advance();
    left = binary(Expr::Kind::Binary, at, std::move(left), parse_unary(true), "**");
  }
  return left;
}

ExprPtr ExpressionParser::parse_unary(bool with_filter) {
  NestingGuard guard(*this, cur());
  ExprPtr node;
  if (is_op("-") || is_op("+")) {
    const Token& at = advance();
    node = make<Expr>(at.text == "-" ? Expr::Kind::Neg : Expr::Kind::Pos, at);
    node->args.push_back(parse_unary(false));
  } else {
    node = parse_primary();
  }
  node = parse_postfix(std::move(node));
  if (with_filter) node = parse_filter_expr(std::move(node));
  return node;
}

ExprPtr ExpressionParser::parse_primary() {
  const Token& token = cur();
  if (token.type == T::Name) {
    advance();
    auto node = make<Expr>(Expr::Kind::Literal, token);
    const std::string& n = token.text;
    if (n == "true" || n == "True") node->literal = Value(true);
    else if (n == "false" || n == "False") node->literal = Value(false);
    else if (n == "none" || n == "None") node->literal = Value::none();
    else {
      node->kind = Expr::Kind::Name;
      node->name = n;
    }
    return node;
  }
  if (token.type == T::String) {
    std::string text;
    while (cur().type == T::String) text += advance().text;  // adjacent literals concatenate
    auto node = make<Expr>(Expr::Kind::Literal, token);
    node->literal = Value(std::move(text));
    return node;
  }
  if (token.type == T::Int || token.type == T::Float) {
    advance();
    auto node = make<Expr>(Expr::Kind::Literal, token);
    node->literal = token.type == T::Int ? Value(token.int_value) : Value(token.float_value);
    return node;
  }
  if (accept_op("(")) {
    if (accept_op(")")) return make<Expr>(Expr::Kind::Tuple, token);
    ExprPtr inner = parse_tuple(true);
    if (inner->kind != Expr::Kind::Tuple && is_op(",")) advance();
    expect_op(")");
    return inner;
  }
  if (accept_op("[")) {
    auto list = make<Expr>(Expr::Kind::List, token);
    while (!is_op("]")) {
      if (!list->args.empty()) expect_op(",");
      if (is_op("]")) break;
      list->args.push_back(parse_expression(true));
    }
    expect_op("]");
    return list;
  }
  if (accept_op("{")) {
    auto dict = make<Expr>(Expr::Kind::Dict, token);
    while (!is_op("}")) {
      if (!dict->args.empty()) expect_op(",");
      if (is_op("}")) break;
      dict->args.push_back(parse_expression(true));
      expect_op(":");
      dict->args.push_back(parse_expression(true));
    }
    expect_op("}");
    return dict;
  }
  error(token, "unexpected " + describe(token) + " in expression");
}

ExprPtr ExpressionParser::parse_postfix(ExprPtr node) {
  while (true) {
    if (is_op(".")) {
      const Token& at = advance();
      if (cur().type == T::Int) {
        auto index = make<Expr>(Expr::Kind::Index, at);
        auto key = make<Expr>(Expr::Kind::Literal, cur());
        key->literal = Value(advance().int_value);
        index->args.push_back(std::move(node));
        index->args.push_back(std::move(key));
        node = std::move(index);
        continue;
      }
      auto attr = make<Expr>(Expr::Kind::Attr, at);
      attr->name = expect_name();
      attr->args.push_back(std::move(node));
      node = std::move(attr);
    } else if (is_op("[")) {
      node = parse_subscript(std::move(node));
    } else if (is_op("(")) {
      node = parse_call(std::move(node));
    } else {
      return node;
    }
  }
}

ExprPtr ExpressionParser::parse_subscript(ExprPtr object) {
  const Token& at = advance();  // '['
  ExprPtr parts[3];
  bool is_slice = false;
  if (!is_op(":")) parts[0] = parse_tuple(true);
  if (accept_op(":")) {
    is_slice = true;
    if (!is_op("]") && !is_op(":")) parts[1] = parse_expression(true);
    if (accept_op(":") && !is_op("]")) parts[2] = parse_expression(true);
  }
  expect_op("]");
  auto node = make<Expr>(is_slice ? Expr::Kind::Slice : Expr::Kind::Index, at);
  node->args.push_back(std::move(object));
  if (is_slice) {
    for (auto& part : parts) node->args.push_back(std::move(part));
  } else {
    node->args.push_back(std::move(parts[0]));
  }
  return node;
}

void ExpressionParser::parse_call_args(Expr& node) {
  expect_op("(");
  bool first = true;
  while (!is_op(")")) {
    if (!first) expect_op(",");
    first = false;
    if (is_op(")")) break;
    if (is_op("*") || is_op("**")) error(cur(), "*args and **kwargs in calls are not supported");
    if (cur().type == T::Name && peek().type == T::Op && peek().text == "=") {
      std::string key = advance().text;
      advance();
      node.kwargs.emplace_back(key, parse_expression(true));
    } else {
      if (!node.kwargs.empty()) error(cur(), "positional argument after keyword argument");
      node.args.push_back(parse_expression(true));
    }
  }
  expect_op(")");
}

ExprPtr ExpressionParser::parse_call(ExprPtr callee) {
  auto call = make<Expr>(Expr::Kind::Call, cur());
  call->args.push_back(std::move(callee));
  parse_call_args(*call);
  return call;
}

std::string ExpressionParser::parse_dotted_name() {
  std::string name = expect_name();
  while (is_op(".") && peek().type == T::Name) {
    advance();
    name += "." + advance().text;
  }
  return name;
}

ExprPtr ExpressionParser::parse_filter(ExprPtr object) {
  auto filter = make<Expr>(Expr::Kind::Filter, cur());
  filter->name = parse_dotted_name();
  filter->args.push_back(std::move(object));
  if (is_op("(")) parse_call_args(*filter);
  return filter;
}

ExprPtr ExpressionParser::parse_filter_chain(ExprPtr object, bool first_without_pipe) {
  if (first_without_pipe) object = parse_filter(std::move(object));
  while (accept_op("|")) object = parse_filter(std::move(object));
  return object;
}

ExprPtr ExpressionParser::parse_test(ExprPtr object) {
  auto test = make<Expr>(Expr::Kind::Test, cur());
  test->negated = accept_name("not");
  test->name = parse_dotted_name();
  test->args.push_back(std::move(object));
  if (is_op("(")) {
    parse_call_args(*test);
  } else if ((cur().type == T::Name || cur().type == T::String || cur().type == T::Int ||
              cur().type == T::Float || is_op("[") || is_op("{")) &&
             !is_name("else") && !is_name("or") && !is_name("and")) {
    if (is_name("is")) error(cur(), "you cannot chain multiple tests with 'is'");
    test->args.push_back(parse_postfix(parse_primary()));
  }
  return test;
}

ExprPtr ExpressionParser::parse_filter_expr(ExprPtr node) {
  while (true) {
    if (accept_op("|")) {
      node = parse_filter(std::move(node));
    } else if (accept_name("is")) {
      node = parse_test(std::move(node));
    } else if (is_op("(")) {
      node = parse_call(std::move(node));
    } else {
      return node;
    }
  }
}

}  // namespace forma::chat
