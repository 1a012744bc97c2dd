#include "forma/chat/jinja_parser.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "forma/chat/jinja_lexer.h"
#include "forma/core/error.h"

namespace forma::chat {

namespace {

using T = Token::Type;

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  Body parse_all() {
    Body body = parse_body({}, nullptr);
    return body;
  }

 private:
  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int loop_depth_ = 0;
  int nesting_ = 0;  // open blocks plus open sub-expressions: bounded so no input overflows the stack

  static constexpr int kMaxNesting = 200;

  // Counts one level of nesting for the lifetime of the guard.
  struct NestingGuard {
    Parser& parser;
    NestingGuard(Parser& p, const Token& at) : parser(p) {
      if (++parser.nesting_ > kMaxNesting) {
        parser.error(at, fmt::format("template nested deeper than {} levels", kMaxNesting));
      }
    }
    ~NestingGuard() { --parser.nesting_; }
  };

  const Token& cur() const { return tokens_[pos_]; }
  const Token& peek(size_t ahead = 1) const {
    return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)];
  }
  const Token& advance() { return tokens_[pos_ < tokens_.size() - 1 ? pos_++ : pos_]; }

  [[noreturn]] void error(const Token& at, const std::string& message) const {
    fail("chat template line {}, column {}: {}", at.line, at.column, message);
  }

  static std::string describe(const Token& token) {
    switch (token.type) {
      case T::Text: return "text";
      case T::VarBegin: return "'{{'";
      case T::VarEnd: return "'}}'";
      case T::BlockBegin: return "'{%'";
      case T::BlockEnd: return "'%}'";
      case T::Name: return "'" + token.text + "'";
      case T::String: return "string literal";
      case T::Int:
      case T::Float: return "number";
      case T::Op: return "'" + token.text + "'";
      case T::End: return "end of template";
    }
    return "?";
  }

  bool is_op(const char* op) const { return cur().type == T::Op && cur().text == op; }
  bool is_name(const char* name) const { return cur().type == T::Name && cur().text == name; }
  bool accept_op(const char* op) {
    if (!is_op(op)) return false;
    advance();
    return true;
  }
  bool accept_name(const char* name) {
    if (!is_name(name)) return false;
    advance();
    return true;
  }
  void expect_op(const char* op) {
    if (!accept_op(op)) error(cur(), fmt::format("expected '{}', got {}", op, describe(cur())));
  }
  std::string expect_name() {
    if (cur().type != T::Name) error(cur(), "expected a name, got " + describe(cur()));
    return advance().text;
  }
  void expect_block_end(const std::string& tag) {
    if (cur().type != T::BlockEnd) {
      error(cur(), fmt::format("expected '%}}' to end '{}', got {}", tag, describe(cur())));
    }
    advance();
  }

  template <typename Node>
  std::unique_ptr<Node> make(typename Node::Kind kind, const Token& at) {
    auto node = std::make_unique<Node>();
    node->kind = kind;
    node->line = at.line;
    node->column = at.column;
    return node;
  }

  // ---- statements ----

  // Parses until one of `stop_tags` opens a block; stores that tag name in *stopped_at (the
  // stream is then just after the tag name). Without stop tags, parses to the end.
  Body parse_body(const std::set<std::string>& stop_tags, std::string* stopped_at,
                  const Token* opener = nullptr) {
    Body body;
    while (true) {
      const Token& token = cur();
      if (token.type == T::End) {
        if (stop_tags.empty()) return body;
        std::string expected = *stop_tags.rbegin();
        error(opener ? *opener : token,
              fmt::format("unclosed block: expected '{{% {} %}}' before the end of the template", expected));
      }
      if (token.type == T::Text) {
        auto stmt = make<Stmt>(Stmt::Kind::Text, token);
        stmt->text = token.text;
        body.push_back(std::move(stmt));
        advance();
      } else if (token.type == T::VarBegin) {
        advance();
        auto stmt = make<Stmt>(Stmt::Kind::Output, token);
        stmt->exprs.push_back(parse_tuple(true));
        if (cur().type != T::VarEnd) error(cur(), "expected '}}', got " + describe(cur()));
        advance();
        body.push_back(std::move(stmt));
      } else if (token.type == T::BlockBegin) {
        advance();
        const Token& tag = cur();
        if (tag.type != T::Name) error(tag, "expected a tag name after '{%', got " + describe(tag));
        if (stop_tags.count(tag.text)) {
          advance();
          *stopped_at = tag.text;
          return body;
        }
        body.push_back(parse_statement());
      } else {
        error(token, "unexpected " + describe(token));
      }
    }
  }

  StmtPtr parse_statement() {
    NestingGuard guard(*this, cur());
    const Token& tag = advance();
    const std::string& name = tag.text;
    if (name == "if") return parse_if(tag);
    if (name == "for") return parse_for(tag);
    if (name == "set") return parse_set(tag);
    if (name == "macro") return parse_macro(tag);
    if (name == "call") return parse_call_block(tag);
    if (name == "filter") return parse_filter_block(tag);
    if (name == "generation") {
      auto stmt = make<Stmt>(Stmt::Kind::Scope, tag);
      expect_block_end(name);
      std::string stop;
      stmt->bodies.push_back(parse_body({"endgeneration"}, &stop, &tag));
      expect_block_end("endgeneration");
      return stmt;
    }
    if (name == "break" || name == "continue") {
      if (loop_depth_ == 0) error(tag, fmt::format("'{}' outside of a loop", name));
      auto stmt = make<Stmt>(name == "break" ? Stmt::Kind::Break : Stmt::Kind::Continue, tag);
      expect_block_end(name);
      return stmt;
    }
    if (name.rfind("end", 0) == 0 || name == "else" || name == "elif") {
      error(tag, fmt::format("unexpected '{}' (no open block it could close)", name));
    }
    error(tag, fmt::format("unknown tag '{}'", name));
  }

  StmtPtr parse_if(const Token& tag) {
    auto stmt = make<Stmt>(Stmt::Kind::If, tag);
    stmt->exprs.push_back(parse_tuple(true));
    expect_block_end("if");
    while (true) {
      std::string stop;
      stmt->bodies.push_back(parse_body({"elif", "else", "endif"}, &stop, &tag));
      if (stop == "elif") {
        stmt->exprs.push_back(parse_tuple(true));
        expect_block_end("elif");
      } else if (stop == "else") {
        expect_block_end("else");
        stmt->bodies.push_back(parse_body({"endif"}, &stop, &tag));
        expect_block_end("endif");
        return stmt;
      } else {
        expect_block_end("endif");
        return stmt;
      }
    }
  }

  std::vector<std::string> parse_targets() {
    std::vector<std::string> names;
    bool paren = accept_op("(");
    names.push_back(expect_name());
    while (accept_op(",")) {
      if (cur().type != T::Name) break;
      names.push_back(expect_name());
    }
    if (paren) expect_op(")");
    return names;
  }

  StmtPtr parse_for(const Token& tag) {
    auto stmt = make<Stmt>(Stmt::Kind::For, tag);
    stmt->targets = parse_targets();
    if (!accept_name("in")) error(cur(), "expected 'in' in for loop, got " + describe(cur()));
    stmt->exprs.push_back(parse_tuple(false));
    stmt->exprs.push_back(accept_name("if") ? parse_expression(true) : nullptr);
    if (is_name("recursive")) error(cur(), "recursive for loops are not supported");
    expect_block_end("for");
    std::string stop;
    ++loop_depth_;
    stmt->bodies.push_back(parse_body({"else", "endfor"}, &stop, &tag));
    --loop_depth_;
    if (stop == "else") {
      expect_block_end("else");
      stmt->bodies.push_back(parse_body({"endfor"}, &stop, &tag));
    }
    expect_block_end("endfor");
    return stmt;
  }

  StmtPtr parse_set(const Token& tag) {
    if (cur().type == T::Name && peek().type == T::Op && peek().text == "." ) {
      auto stmt = make<Stmt>(Stmt::Kind::Set, tag);
      stmt->targets.push_back(expect_name());
      expect_op(".");
      stmt->attribute = expect_name();
      expect_op("=");
      stmt->exprs.push_back(parse_tuple(true));
      expect_block_end("set");
      return stmt;
    }
    std::vector<std::string> targets = parse_targets();
    if (accept_op("=")) {
      auto stmt = make<Stmt>(Stmt::Kind::Set, tag);
      stmt->targets = std::move(targets);
      stmt->exprs.push_back(parse_tuple(true));
      expect_block_end("set");
      return stmt;
    }
    auto stmt = make<Stmt>(Stmt::Kind::SetBlock, tag);
    if (targets.size() != 1) error(tag, "a block set assigns exactly one name");
    stmt->targets = std::move(targets);
    stmt->exprs.push_back(is_op("|") ? parse_filter_chain(nullptr) : nullptr);
    expect_block_end("set");
    std::string stop;
    stmt->bodies.push_back(parse_body({"endset"}, &stop, &tag));
    expect_block_end("endset");
    return stmt;
  }

  StmtPtr parse_macro(const Token& tag) {
    auto stmt = make<Stmt>(Stmt::Kind::Macro, tag);
    stmt->name = expect_name();
    expect_op("(");
    while (!is_op(")")) {
      if (!stmt->targets.empty()) expect_op(",");
      if (is_op(")")) break;
      stmt->targets.push_back(expect_name());
      stmt->exprs.push_back(accept_op("=") ? parse_expression(true) : nullptr);
    }
    expect_op(")");
    expect_block_end("macro");
    std::string stop;
    int saved_depth = loop_depth_;
    loop_depth_ = 0;
    stmt->bodies.push_back(parse_body({"endmacro"}, &stop, &tag));
    loop_depth_ = saved_depth;
    expect_block_end("endmacro");
    return stmt;
  }

  StmtPtr parse_call_block(const Token& tag) {
    auto stmt = make<Stmt>(Stmt::Kind::CallBlock, tag);
    if (is_op("(")) error(cur(), "call blocks with caller arguments are not supported");
    ExprPtr call = parse_expression(true);
    if (call->kind != Expr::Kind::Call) error(tag, "expected a macro call after 'call'");
    stmt->exprs.push_back(std::move(call));
    expect_block_end("call");
    std::string stop;
    stmt->bodies.push_back(parse_body({"endcall"}, &stop, &tag));
    expect_block_end("endcall");
    return stmt;
  }

  StmtPtr parse_filter_block(const Token& tag) {
    auto stmt = make<Stmt>(Stmt::Kind::FilterBlock, tag);
    stmt->exprs.push_back(parse_filter_chain(nullptr, /*first_without_pipe=*/true));
    expect_block_end("filter");
    std::string stop;
    stmt->bodies.push_back(parse_body({"endfilter"}, &stop, &tag));
    expect_block_end("endfilter");
    return stmt;
  }

  // ---- expressions (Jinja2's precedence, loosest first) ----

  ExprPtr parse_tuple(bool with_condexpr) {
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

  ExprPtr parse_expression(bool with_condexpr) {
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  ExprPtr parse_condexpr() {
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

  ExprPtr binary(Expr::Kind kind, const Token& at, ExprPtr left, ExprPtr right, std::string op = "") {
    auto node = make<Expr>(kind, at);
    node->name = std::move(op);
    node->args.push_back(std::move(left));
    node->args.push_back(std::move(right));
    return node;
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (is_name("or")) {
      const Token& at = advance();
      left = binary(Expr::Kind::Or, at, std::move(left), parse_and());
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (is_name("and")) {
      const Token& at = advance();
      left = binary(Expr::Kind::And, at, std::move(left), parse_not());
    }
    return left;
  }

  ExprPtr parse_not() {
    NestingGuard guard(*this, cur());
    if (is_name("not")) {
      const Token& at = advance();
      auto node = make<Expr>(Expr::Kind::Not, at);
      node->args.push_back(parse_not());
      return node;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
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

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      const Token& at = advance();
      left = binary(Expr::Kind::Binary, at, std::move(left), parse_concat(), at.text);
    }
    return left;
  }

  ExprPtr parse_concat() {
    ExprPtr left = parse_math2();
    while (is_op("~")) {
      const Token& at = advance();
      left = binary(Expr::Kind::Binary, at, std::move(left), parse_math2(), "~");
    }
    return left;
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Token& at = advance();
      left = binary(Expr::Kind::Binary, at, std::move(left), parse_pow(), at.text);
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    while (is_op("**")) {
      const Token& at = advance();
      left = binary(Expr::Kind::Binary, at, std::move(left), parse_unary(true), "**");
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
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

  ExprPtr parse_primary() {
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

  ExprPtr parse_postfix(ExprPtr node) {
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

  ExprPtr parse_subscript(ExprPtr object) {
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

  // Parses "(a, b, key=value)" into node->args (after any already present) and node->kwargs.
  void parse_call_args(Expr& node) {
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

  ExprPtr parse_call(ExprPtr callee) {
    auto call = make<Expr>(Expr::Kind::Call, cur());
    call->args.push_back(std::move(callee));
    parse_call_args(*call);
    return call;
  }

  std::string parse_dotted_name() {
    std::string name = expect_name();
    while (is_op(".") && peek().type == T::Name) {
      advance();
      name += "." + advance().text;
    }
    return name;
  }

  ExprPtr parse_filter(ExprPtr object) {
    auto filter = make<Expr>(Expr::Kind::Filter, cur());
    filter->name = parse_dotted_name();
    filter->args.push_back(std::move(object));
    if (is_op("(")) parse_call_args(*filter);
    return filter;
  }

  ExprPtr parse_filter_chain(ExprPtr object, bool first_without_pipe = false) {
    if (first_without_pipe) object = parse_filter(std::move(object));
    while (accept_op("|")) object = parse_filter(std::move(object));
    return object;
  }

  ExprPtr parse_test(ExprPtr object) {
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

  ExprPtr parse_filter_expr(ExprPtr node) {
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
};

}  // namespace

Body parse_template(const std::string& source) {
  return Parser(tokenize_template(source)).parse_all();
}

}  // namespace forma::chat
