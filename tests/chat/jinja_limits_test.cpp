// Templates are untrusted code: every render is bounded (range, output and string sizes, list
// sizes, evaluation steps, macro depth) and 64-bit integer arithmetic never wraps or traps.
#include <gtest/gtest.h>

#include "chat/jinja2_reference.h"
#include "forma/chat/chat_template.h"
#include "forma/chat/jinja_eval.h"
#include "forma/chat/jinja_limits.h"
#include "test_paths.h"

namespace forma::test {
namespace {

using json = nlohmann::ordered_json;
using chat::TemplateLimits;

// The error text of rendering `source`, or "" when it renders.
std::string limits_error_of(const std::string& source, const TemplateLimits& limits = TemplateLimits{}) {
  try {
    chat::JinjaTemplate(source).render(json::object(), limits);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

constexpr const char* kLimitsInt64Min = "(-9223372036854775807 - 1)";

TEST(JinjaLimits, IntegerOverflowIsAnErrorNotAWrapOrATrap) {
  const std::string min = kLimitsInt64Min;
  const std::vector<std::string> overflowing = {
      min + " // -1",  // SIGFPE before
      "9223372036854775807 + 1",
      min + " - 1",
      "4611686018427387904 * 2",
      "-3037000500 * 3037000500",
      "2 ** 63",
      "3 ** 40",
      "(-2) ** 64",
      "10 ** 1000000000000",
      "-" + min,
      min + " | abs",
      "[9223372036854775807, 1] | sum",
      "'ab' * 4611686018427387904",
      "[1, 2] * 4611686018427387904",
      "1e19 | int",
  };
  for (const auto& expr : overflowing) {
    std::string error = limits_error_of("line one\n{{ " + expr + " }}");
    EXPECT_NE(error.find("64 bits"), std::string::npos) << expr << " gave: " << error;
    EXPECT_NE(error.find("chat template line 2"), std::string::npos) << expr << " gave: " << error;
  }
}

// Results at the edge of 64 bits are exact: the same as Python's (through Jinja2 itself).
TEST(JinjaLimits, ZeroToANegativePowerIsAnErrorAsInPython) {
  for (const char* expr : {"0 ** -1", "0.0 ** -2", "0 ** -0.5"}) {
    EXPECT_NE(limits_error_of(std::string("{{ ") + expr + " }}").find("negative power"), std::string::npos) << expr;
  }
  EXPECT_EQ(limits_error_of("{{ 0 ** 0 }}{{ 2 ** -1 }}"), "");
}

TEST(JinjaLimits, IntegerResultsAtTheEdgeMatchJinja2) {
  const std::string min = kLimitsInt64Min;
  std::vector<std::string> snippets = {
      "{{ " + min + " % -1 }} {{ " + min + " // 1 }} {{ 9223372036854775807 // -1 }} {{ " + min + " % 7 }}",
      "{{ 2 ** 62 }} {{ (-2) ** 63 }} {{ 3 ** 39 }} {{ (-1) ** 65 }} {{ (-1) ** 1000000000000 }} {{ 0 ** 0 }} {{ 1 ** 99999 }}",
      "{{ 9223372036854775806 + 1 }} {{ " + min + " + 0 }} {{ -9223372036854775807 | abs }} {{ -3037000499 * 3037000499 }}",
      "{{ -7 // 2 }} {{ -7 % 2 }} {{ 7 % -2 }} {{ 7 // -2 }} {{ [4611686018427387904, 4611686018427387903] | sum }}",
  };
  std::vector<ReferenceCase> cases;
  for (const auto& s : snippets) cases.push_back({s, s, json::object()});
  EXPECT_EQ(expect_same_as_jinja2(cases), static_cast<int>(snippets.size()));
}

// Jinja2's sandbox (as transformers configures it) refuses range() over MAX_RANGE items; so does forma.
TEST(JinjaLimits, RangeIsCappedLikeJinja2Sandbox) {
  const int64_t cap = TemplateLimits{}.max_range;
  std::vector<std::string> snippets = {
      "{{ range(" + std::to_string(cap) + ") | length }}",
      "{{ range(" + std::to_string(cap + 1) + ") | length }}",
      "{{ range(-5, " + std::to_string(2 * cap - 10) + ", 2) | length }}",
      "{{ range(10, 0, -3) | list }} {{ range(0) | list }} {{ range(5, 1) | list }}",
  };
  std::vector<ReferenceCase> cases;
  for (const auto& s : snippets) cases.push_back({s, s, json::object()});
  EXPECT_EQ(expect_same_as_jinja2(cases), 3);

  std::string error = limits_error_of("{% for i in range(100000000) %}{% endfor %}");
  EXPECT_NE(error.find("range()"), std::string::npos) << error;
  EXPECT_NE(error.find(std::to_string(cap)), std::string::npos) << error;
  // The length is worked out before anything is built, even where stop - start overflows.
  EXPECT_NE(limits_error_of("{{ range(" + std::string(kLimitsInt64Min) + ", 9223372036854775807) | length }}").find("range()"),
            std::string::npos);
  TemplateLimits small;
  small.max_range = 10;
  EXPECT_EQ(limits_error_of("{{ range(10) | length }}", small), "");
  EXPECT_NE(limits_error_of("{{ range(11) | length }}", small).find("limit of 10 items"), std::string::npos);
}

TEST(JinjaLimits, NestedLoopsStopAtTheStepLimit) {
  // 10^10 empty iterations: minutes of work before the bound.
  const std::string nested = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}";
  // (It ends at all, with the error: how fast is a benchmark's question, not a test's.)
  std::string error = limits_error_of(nested);
  EXPECT_NE(error.find("evaluation steps"), std::string::npos) << error;

  TemplateLimits small;
  small.max_steps = 1000;
  EXPECT_NE(limits_error_of("{% for a in range(2000) %}{% endfor %}", small).find("1000 evaluation steps"), std::string::npos);
  EXPECT_EQ(limits_error_of("{% for a in range(100) %}{{ a }}{% endfor %}", small), "");
  // Work done inside filters counts too (unique is quadratic).
  EXPECT_NE(limits_error_of("{{ range(500) | unique | length }}", small).find("evaluation steps"), std::string::npos);
}

TEST(JinjaLimits, OutputAndBuiltStringsAreBounded) {
  TemplateLimits small;
  small.max_string_bytes = 1000;
  EXPECT_EQ(limits_error_of("{{ 'x' * 1000 }}", small), "");
  const std::vector<std::string> too_big = {
      "{{ 'x' * 1001 }}",
      "{% for i in range(200) %}{{ 'abcdef' }}{% endfor %}",
      "{% set ns = namespace(s='x') %}{% for i in range(20) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
      "{% set ns = namespace(s='x') %}{% for i in range(20) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
      "{{ range(600) | join(',') }}",
      "{{ 'x' | center(5000) }}",
      "{{ 'a\\nb' | indent(5000) }}",
      "{{ '%5000s' | format('x') }}",
      "{{ ('a' * 100).replace('a', 'bbbbbbbbbbbbbbbbbbbb') }}",
      "{{ ['x' * 500] * 3 }}",
  };
  for (const auto& source : too_big) {
    std::string error = limits_error_of(source, small);
    EXPECT_NE(error.find("limit of 1000 bytes"), std::string::npos) << source << " gave: " << error;
  }
  // With the defaults, doubling a string stops at the limit instead of eating the memory.
  std::string error = limits_error_of("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}");
  EXPECT_NE(error.find(std::to_string(TemplateLimits{}.max_string_bytes)), std::string::npos) << error;
  error = limits_error_of("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}");  // 100 MB of output
  EXPECT_NE(error.find("bytes"), std::string::npos) << error;
}

TEST(JinjaLimits, BuiltListsAreBounded) {
  TemplateLimits small;
  small.max_list_items = 100;
  EXPECT_EQ(limits_error_of("{{ ([1] * 100) | length }}", small), "");
  EXPECT_NE(limits_error_of("{{ ([1] * 101) | length }}", small).find("limit of 100 items"), std::string::npos);
  EXPECT_NE(limits_error_of("{% set ns = namespace(l=[1]) %}{% for i in range(10) %}{% set ns.l = ns.l + ns.l %}{% endfor %}", small)
                .find("limit of 100 items"),
            std::string::npos);
  EXPECT_NE(limits_error_of("{{ [1] | batch(1000, 0) | list }}", small).find("limit of 100 items"), std::string::npos);
  // Defaults: doubling a list 64 times stops at the limit.
  std::string error = limits_error_of("{% set ns = namespace(l=[1]) %}{% for i in range(64) %}{% set ns.l = ns.l + ns.l %}{% endfor %}");
  EXPECT_NE(error.find("items"), std::string::npos) << error;
}

TEST(JinjaLimits, MacroRecursionDepthIsBounded) {
  TemplateLimits small;
  small.max_call_depth = 8;
  const std::string countdown = "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{% endif %}.{% endmacro %}";
  EXPECT_EQ(limits_error_of(countdown + "{{ f(7) }}", small), "");
  EXPECT_NE(limits_error_of(countdown + "{{ f(8) }}", small).find("nested deeper than 8"), std::string::npos);
  std::string error = limits_error_of("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}");
  EXPECT_NE(error.find("nested deeper than " + std::to_string(TemplateLimits{}.max_call_depth)), std::string::npos) << error;
}

TEST(JinjaLimits, DeeplyNestedValuesAreBounded) {
  // Printing a list nested 100,000 deep overflowed the stack (SIGSEGV) before.
  const std::string nest = "{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = [ns.l] %}{% endfor %}";
  std::string error = limits_error_of(nest + "{{ ns.l }}");
  EXPECT_NE(error.find("nested deeper than " + std::to_string(TemplateLimits{}.max_value_depth)), std::string::npos) << error;
  error = limits_error_of(nest + "{{ ns.l == ns.l }}{{ ns.l | tojson }}");
  EXPECT_NE(error.find("nested deeper than"), std::string::npos) << error;
  TemplateLimits small;
  small.max_value_depth = 3;
  EXPECT_EQ(limits_error_of("{{ [[[1]]] }}", small), "");
  EXPECT_NE(limits_error_of("{{ [[[[1]]]] }}", small).find("nested deeper than 3"), std::string::npos);
}

TEST(JinjaLimits, NamespacesCannotBeLinkedIntoChainsOrCycles) {
  // A chain of 100,000 namespaces built by mutation escaped the nesting limit (each link was built
  // shallow) and overflowed the stack when freed; a namespace holding itself was a cycle (a leak).
  const std::string chain = "{% set ns = namespace(head=namespace()) %}{% set t = ns.head %}"
                            "{% for i in range(100000) %}{% set t.next = namespace() %}{% set t = t.next %}{% endfor %}";
  EXPECT_NE(limits_error_of(chain).find("'t.next': a namespace attribute may not hold a namespace"), std::string::npos)
      << limits_error_of(chain);
  EXPECT_NE(limits_error_of("{% set ns = namespace() %}{% set ns.me = [ns] %}").find("may not hold a namespace"),
            std::string::npos);
  // Everything else a namespace is for still works, including namespaces built holding one.
  EXPECT_EQ(limits_error_of("{% set ns = namespace(a=namespace(b=1), n=0) %}{% set ns.n = ns.n + ns.a.b %}"
                            "{% set ns.l = [1, {'k': 2}] %}{{ ns.n }}"), "");
}

// The bounds are far from what real templates need: every shipped template renders a long
// conversation under the defaults.
TEST(JinjaLimits, RealTemplatesRenderLongConversations) {
  json messages = json::array();
  messages.push_back({{"role", "system"}, {"content", "You are helpful."}});
  for (int i = 0; i < 2000; ++i) {
    messages.push_back({{"role", i % 2 == 0 ? "user" : "assistant"},
                        {"content", "message " + std::to_string(i) + " " + std::string(200, 'w')}});
  }
  int rendered = 0;
  for (const char* name : {"llama3-8b-instruct", "qwen2-7b-instruct", "qwen3-0.6b", "llama3.3-70b-instruct",
                           "phi-3.5-mini-instruct", "mistral-nemo-instruct-2407"}) {
    chat::ChatTemplate tmpl = chat::load_chat_template(fixture(std::string("chat_templates/") + name + ".json"));
    std::string text;
    ASSERT_NO_THROW(text = tmpl.render_json(messages, true)) << name;
    EXPECT_GT(text.size(), size_t{2000} * 200) << name;
    ++rendered;
  }
  EXPECT_EQ(rendered, 6);
}

}  // namespace
}  // namespace forma::test
