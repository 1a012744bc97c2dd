// The token stream and Jinja2's expression grammar (precedence loosest first: conditional, or,
// and, not, comparisons, + -, ~, * / // %, **, unary, then postfix, filters and tests). The
// statement parser (jinja_parser.cpp) derives from it. Internal to the chat component.
#pragma once
#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "forma/chat/jinja_ast.h"
#include "forma/chat/jinja_lexer.h"
#include "forma/core/error.h"

namespace forma::chat {

class ExpressionParser {
 public:
  explicit ExpressionParser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

 protected:
  using T = Token::Type;

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int loop_depth_ = 0;
  int nesting_ = 0;  // open blocks plus open sub-expressions: bounded so no input overflows the stack

  static constexpr int kMaxNesting = 200;

  // Counts one level of nesting for the lifetime of the guard.
  struct NestingGuard {
    ExpressionParser& parser;
    NestingGuard(ExpressionParser& p, const Token& at) : parser(p) {
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


  // The entry points statements use.
  ExprPtr parse_tuple(bool with_condexpr);
  ExprPtr parse_expression(bool with_condexpr);
  ExprPtr parse_filter_chain(ExprPtr object, bool first_without_pipe = false);

 private:
  ExprPtr parse_condexpr();
  ExprPtr binary(Expr::Kind kind, const Token& at, ExprPtr left, ExprPtr right, std::string op = "");
  ExprPtr parse_or();
  ExprPtr parse_and();
  ExprPtr parse_not();
  ExprPtr parse_compare();
  ExprPtr parse_math1();
  ExprPtr parse_concat();
  ExprPtr parse_math2();
  ExprPtr parse_pow();
  ExprPtr parse_unary(bool with_filter);
  ExprPtr parse_primary();
  ExprPtr parse_postfix(ExprPtr node);
  ExprPtr parse_subscript(ExprPtr object);
  void parse_call_args(Expr& node);
  ExprPtr parse_call(ExprPtr callee);
  std::string parse_dotted_name();
  ExprPtr parse_filter(ExprPtr object);
  ExprPtr parse_test(ExprPtr object);
  ExprPtr parse_filter_expr(ExprPtr node);
};

}  // namespace forma::chat
