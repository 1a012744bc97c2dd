#include "forma/chat/jinja_parser.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "forma/chat/jinja_expression_parser.h"
#include "forma/core/error.h"

namespace forma::chat {

namespace {

class Parser : public ExpressionParser {
 public:
  using ExpressionParser::ExpressionParser;

  Body parse_all() {
    Body body = parse_body({}, nullptr);
    return body;
  }

 private:
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
};

}  // namespace

Body parse_template(const std::string& source) {
  return Parser(tokenize_template(source)).parse_all();
}

}  // namespace forma::chat
