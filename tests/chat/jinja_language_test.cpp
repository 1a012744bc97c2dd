// The Jinja language itself: expressions, statements, whitespace control, filters, tests and
// methods. Expected outputs are worked out by hand from Python/Jinja2 semantics; a second set of
// snippets is compared with Jinja2 itself.
#include <gtest/gtest.h>

#include "chat/jinja2_reference.h"
#include "forma/chat/jinja_eval.h"

namespace forma::test {
namespace {

using json = nlohmann::ordered_json;

std::string render(const std::string& source, const json& context = json::object()) {
  return chat::JinjaTemplate(source).render(context);
}

struct HandCase {
  const char* source;
  const char* expected;
};

TEST(JinjaLanguage, ArithmeticAndPythonNumberFormatting) {
  const HandCase cases[] = {
      {"{{ 1 + 2 * 3 }}", "7"},
      {"{{ (1 + 2) * 3 }}", "9"},
      {"{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }}", "3 -4 1 2"},
      {"{{ 7 / 2 }} {{ 4 / 2 }} {{ 2 ** 10 }} {{ 2 ** -1 }}", "3.5 2.0 1024 0.5"},
      {"{{ 1.5 + 1 }} {{ 0.1 + 0.2 }} {{ 1e16 }} {{ 1.0 }}", "2.5 0.30000000000000004 1e+16 1.0"},
      {"{{ -3 }} {{ - 2.5 }} {{ true + 1 }}", "-3 -2.5 2"},
      {"{{ 'ab' * 3 }}{{ [1] * 2 }}", "ababab[1, 1]"},
      {"{{ 'a' ~ 1 ~ none ~ true }}", "a1NoneTrue"},
      {"{{ 1_000 + 0 }}", "1000"},
  };
  for (const auto& c : cases) EXPECT_EQ(render(c.source), c.expected) << c.source;
}

TEST(JinjaLanguage, ValuesPrintLikePythonStr) {
  const HandCase cases[] = {
      {"{{ [1, 'a', none, true, 2.0] }}", "[1, 'a', None, True, 2.0]"},
      {"{{ {'k': 'v', 'n': [1]} }}", "{'k': 'v', 'n': [1]}"},
      {"{{ [\"it's\"] }} {{ ['say \"hi\"'] }} {{ ['a\\nb'] }}", "[\"it's\"] ['say \"hi\"'] ['a\\nb']"},
      {"{{ none }}|{{ undefined_name }}|{{ false }}", "None||False"},
      {"{{ {'a': 1}.items() | list }}", "[('a', 1)]"},
  };
  for (const auto& c : cases) EXPECT_EQ(render(c.source), c.expected) << c.source;
}

TEST(JinjaLanguage, ComparisonsLogicAndMembership) {
  const HandCase cases[] = {
      {"{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 1 == 1.0 }} {{ 'a' != 'b' }}", "True False True True"},
      {"{{ 'b' in 'abc' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 'z' not in 'abc' }}", "True True True True"},
      {"{{ 0 or 'x' }} {{ 'y' and 0 }} {{ not none }} {{ none or [] }}", "x 0 True []"},
      {"{{ 'yes' if 1 > 0 else 'no' }} {{ 'yes' if 0 else 'no' }}[{{ 'v' if false }}]", "yes no[]"},
      {"{{ not 1 == 2 }} {{ (not 1) == 2 }}", "True False"},
  };
  for (const auto& c : cases) EXPECT_EQ(render(c.source), c.expected) << c.source;
}

TEST(JinjaLanguage, SubscriptsSlicesAndAttributes) {
  json context = {{"m", {{"role", "user"}, {"content", "hi"}}}, {"xs", {10, 20, 30, 40}}};
  EXPECT_EQ(render("{{ m.role }} {{ m['content'] }} {{ xs[0] }} {{ xs[-1] }} {{ xs.1 }}", context), "user hi 10 40 20");
  EXPECT_EQ(render("{{ xs[1:3] }} {{ xs[::-1] }} {{ xs[:-1] }} {{ xs[::2] }} {{ 'h\xC3\xA9llo'[::-1] }}", context),
            "[20, 30] [40, 30, 20, 10] [10, 20, 30] [10, 30] oll\xC3\xA9h");
  EXPECT_EQ(render("[{{ m.missing }}][{{ xs[10] }}]{{ m.missing is defined }}", context), "[][]False");
  EXPECT_EQ(render("{{ m.get('role') }} {{ m.get('nope', 'dflt') }} {{ m.get('nope') }} {{ m.keys() | list }}", context),
            "user dflt None ['role', 'content']");
}

TEST(JinjaLanguage, StringMethods) {
  const HandCase cases[] = {
      {"{{ '  a b  '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ '\\n\\na\\n'.lstrip('\\n') }}|{{ 'a  '.rstrip() }}", "a b|a|a\n|a"},
      {"{{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a<t>b<t>c'.split('<t>')[-1] }}", "['a', 'b', '', 'c'] ['a', 'b'] c"},
      {"{{ 'hello'.startswith('he') }} {{ 'hello'.endswith(('x', 'lo')) }} {{ 'Hi'.upper() }}{{ 'Hi'.lower() }}", "True True HIhi"},
      {"{{ 'aaa'.replace('a', 'b', 2) }} {{ 'hello world'.title() }} {{ 'hELLO'.capitalize() }}", "bba Hello World Hello"},
      {"{{ '{} and {}'.format(1, 'x') }} {{ '{name}!'.format(name='Bo') }} {{ 'abcb'.count('b') }} {{ 'abc'.find('c') }}", "1 and x Bo! 2 2"},
  };
  for (const auto& c : cases) EXPECT_EQ(render(c.source), c.expected) << c.source;
}

TEST(JinjaLanguage, Filters) {
  json context = {{"people", json::array({{{"name", "Ann"}, {"age", 31}}, {{"name", "bob"}, {"age", 25}}})}};
  const HandCase cases[] = {
      {"{{ '  x  ' | trim }}|{{ [1, 2, 3] | length }}|{{ 'h\xC3\xA9' | length }}|{{ {'a': 1} | count }}", "x|3|2|1"},
      {"{{ [3, 1, 2] | sort }} {{ ['b', 'A', 'c'] | sort }} {{ [1, 2, 3] | reverse | list }} {{ [1, 2, 3] | sum }}",
       "[1, 2, 3] ['A', 'b', 'c'] [3, 2, 1] 6"},
      {"{{ [1, 2] | first }}{{ [1, 2] | last }} {{ ['a', 'b'] | join('-') }} {{ 'ab' | list }}", "12 a-b ['a', 'b']"},
      {"{{ x | default('d') }} {{ '' | default('d') }} {{ '' | default('d', true) }} {{ x | d(5) }}", "d  d 5"},
      {"{{ '3' | int + 1 }} {{ 'x' | int }} {{ 2.7 | int }} {{ '2.5' | float }} {{ -3 | abs }} {{ 2.5 | round }} {{ 3.14159 | round(2) }}",
       "4 0 2 2.5 3 2.0 3.14"},
      {"{{ 'hello world' | upper }} {{ 'HELLO' | lower }} {{ 'hello big-world' | title }} {{ 'hi' | capitalize }}",
       "HELLO WORLD hello Hello Big-World Hi"},
      {"{{ [1, 2, 3, 4] | select('even') | list }} {{ [1, 2, 3] | reject('equalto', 2) | list }} {{ [1, 1, 2] | unique | list }}",
       "[2, 4] [1, 3] [1, 2]"},
      {"{{ 'a\\nb' | indent(2) }}|{{ 'a\\nb' | indent(2, true) }}|{{ 'one two, three' | wordcount }}", "a\n  b|  a\n  b|3"},
      {"{{ {'b': 1, 'a': 2} | dictsort }} {{ [3, 9, 1] | max }} {{ [3, 9, 1] | min }} {{ '%s=%d' | format('x', 3) }}",
       "[('a', 2), ('b', 1)] 9 1 x=3"},
  };
  for (const auto& c : cases) EXPECT_EQ(render(c.source), c.expected) << c.source;
  EXPECT_EQ(render("{{ people | map(attribute='name') | join(', ') }}", context), "Ann, bob");
  EXPECT_EQ(render("{{ people | selectattr('age', 'gt', 30) | map(attribute='name') | list }}", context), "['Ann']");
  EXPECT_EQ(render("{{ people | rejectattr('age', 'gt', 30) | map(attribute='name') | first }}", context), "bob");
  EXPECT_EQ(render("{{ people | sort(attribute='age') | map(attribute='name') | list }}", context), "['bob', 'Ann']");
  EXPECT_EQ(render("{{ ['a', 'b'] | map('upper') | list }}"), "['A', 'B']");
}

TEST(JinjaLanguage, TojsonMatchesTransformersJsonDumps) {
  json context = {{"v", {{"s", "h\xC3\xA9 \"q\" \\ \n\t\x01"}, {"n", 1}, {"f", 2.5}, {"l", json::array({true, nullptr})},
                         {"e", json::object()}, {"el", json::array()}}}};
  EXPECT_EQ(render("{{ v | tojson }}", context),
            "{\"s\": \"h\xC3\xA9 \\\"q\\\" \\\\ \\n\\t\\u0001\", \"n\": 1, \"f\": 2.5, \"l\": [true, null], \"e\": {}, \"el\": []}");
  EXPECT_EQ(render("{{ {'a': [1, {'b': 2}]} | tojson(indent=2) }}"),
            "{\n  \"a\": [\n    1,\n    {\n      \"b\": 2\n    }\n  ]\n}");
  EXPECT_EQ(render("{{ '<&>' | tojson }}"), "\"<&>\"");  // no HTML escaping, unlike Jinja's own tojson
}

TEST(JinjaLanguage, Tests) {
  const HandCase cases[] = {
      {"{{ x is defined }}{{ x is undefined }}{{ none is none }}{{ 'a' is string }}{{ 1 is number }}{{ 1.5 is number }}",
       "FalseTrueTrueTrueTrueTrue"},
      {"{{ {} is mapping }}{{ [] is iterable }}{{ 'a' is sequence }}{{ 1 is iterable }}{{ true is true }}{{ 1 is true }}",
       "TrueTrueTrueFalseTrueFalse"},
      {"{{ 3 is odd }}{{ 3 is even }}{{ 9 is divisibleby 3 }}{{ 2 is equalto 2 }}{{ 1 is not none }}{{ 'a' is eq('a') }}",
       "TrueFalseTrueTrueTrueTrue"},
  };
  for (const auto& c : cases) EXPECT_EQ(render(c.source), c.expected) << c.source;
}

TEST(JinjaLanguage, ForLoops) {
  json context = {{"xs", {"a", "b", "c"}}, {"d", {{"k1", 1}, {"k2", 2}}}};
  EXPECT_EQ(render("{% for x in xs %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ x }}{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}", context),
            "103aTrueFalse3;212bFalseFalse3;321cFalseTrue3;");
  EXPECT_EQ(render("{% for k, v in d.items() %}{{ k }}={{ v }}{% if not loop.last %},{% endif %}{% endfor %}", context), "k1=1,k2=2");
  EXPECT_EQ(render("{% for k in d %}{{ k }}{% endfor %}", context), "k1k2");
  EXPECT_EQ(render("{% for x in xs if x != 'b' %}{{ x }}{{ loop.index }}{{ loop.last }}{% endfor %}", context), "a1Falsec2True");
  EXPECT_EQ(render("{% for x in [] %}no{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(render("{% for x in xs %}{% if x == 'b' %}{% continue %}{% endif %}{% if x == 'c' %}{% break %}{% endif %}{{ x }}{% endfor %}", context), "a");
  EXPECT_EQ(render("{% for i in range(3) %}{{ i }}{% endfor %}{% for i in range(5, 0, -2) %}{{ i }}{% endfor %}"), "012531");
  EXPECT_EQ(render("{% for x in xs %}{{ loop.cycle('o', 'e') }}{% endfor %}", context), "oeo");
  EXPECT_EQ(render("{% for x in xs %}{{ loop.previtem }}{% endfor %}", context), "ab");
}

TEST(JinjaLanguage, ScopingSetAndNamespace) {
  // A set inside a loop does not leak out; a namespace attribute does.
  EXPECT_EQ(render("{% set x = 1 %}{% for i in [1, 2] %}{% set x = x + i %}{% endfor %}{{ x }}"), "1");
  EXPECT_EQ(render("{% set ns = namespace(t=0) %}{% for i in [1, 2] %}{% set ns.t = ns.t + i %}{% endfor %}{{ ns.t }}"), "3");
  EXPECT_EQ(render("{% if true %}{% set y = 'in if' %}{% endif %}{{ y }}"), "in if");
  EXPECT_EQ(render("{% set a, b = 1, 2 %}{{ a }}{{ b }}"), "12");
  EXPECT_EQ(render("{% set block %}  x {{ 1 + 1 }}{% endset %}[{{ block }}]"), "[  x 2]");
  EXPECT_EQ(render("{% set block | upper %}abc{% endset %}{{ block }}"), "ABC");
  EXPECT_EQ(render("{% filter upper %}hi {{ 'there' }}{% endfilter %}"), "HI THERE");
}

TEST(JinjaLanguage, Macros) {
  EXPECT_EQ(render("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('Ann') }} {{ greet('Bo', punct='?') }}"),
            "Hi Ann! Hi Bo?");
  EXPECT_EQ(render("{% macro wrap() %}[{{ caller() }}]{% endmacro %}{% call wrap() %}inner{% endcall %}"), "[inner]");
  EXPECT_EQ(render("{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(3) }}"), "321");
}

TEST(JinjaLanguage, WhitespaceControlTrimAndLstripBlocks) {
  // trim_blocks eats the newline after a block tag; lstrip_blocks the indentation before it.
  EXPECT_EQ(render("a\n  {% if true %}\n    b\n  {% endif %}\nc"), "a\n    b\nc");
  EXPECT_EQ(render("a  {{- ' b ' -}}  c"), "a b c");
  EXPECT_EQ(render("a\n{%- if true -%}\n  b\n{%- endif %}"), "ab");
  EXPECT_EQ(render("x {# comment #}\ny"), "x y");
  EXPECT_EQ(render("  {#- comment #}\nz"), "z");
  EXPECT_EQ(render("a\n  {%+ if true %}b{% endif %}"), "a\n  b");
  EXPECT_EQ(render("{{ 'v' }}\nw"), "v\nw");  // trim_blocks does not apply to {{ }}
  EXPECT_EQ(render("line\n"), "line");         // one trailing newline is dropped
  EXPECT_EQ(render("{% raw %}{{ not evaluated }}{% endraw %}"), "{{ not evaluated }}");
  EXPECT_EQ(render("a\r\nb"), "a\nb");
}

TEST(JinjaLanguage, RaiseExceptionCarriesTheTemplatesMessage) {
  try {
    render("{% if true %}{{ raise_exception('Conversation roles must alternate!') }}{% endif %}");
    FAIL() << "expected an exception";
  } catch (const chat::TemplateRaisedError& e) {
    EXPECT_EQ(std::string(e.what()), "Conversation roles must alternate!");
  }
}

std::string error_of(const std::string& source, const json& context = json::object()) {
  try {
    render(source, context);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(JinjaLanguage, SyntaxErrorsNameLineAndColumn) {
  EXPECT_EQ(error_of("hello\n{% if x %}\nno end"),
            "chat template line 2, column 4: unclosed block: expected '{% endif %}' before the end of the template");
  EXPECT_EQ(error_of("ab\ncd {{ 1 + }}"), "chat template line 2, column 11: unexpected '}}' in expression");
  EXPECT_EQ(error_of("{% for x in %}{% endfor %}"), "chat template line 1, column 13: unexpected '%}' in expression");
  EXPECT_EQ(error_of("x\n\n   {% frobnicate %}"), "chat template line 3, column 7: unknown tag 'frobnicate'");
  EXPECT_EQ(error_of("{% endif %}"), "chat template line 1, column 4: unexpected 'endif' (no open block it could close)");
  EXPECT_EQ(error_of("{{ 'open string }}"), "chat template line 1, column 4: unterminated string literal");
  EXPECT_EQ(error_of("{{ x"), "chat template line 1, column 1: unclosed '{{' (missing '}}')");
  EXPECT_EQ(error_of("{% break %}"), "chat template line 1, column 4: 'break' outside of a loop");
  EXPECT_EQ(error_of("{{ a $ b }}"), "chat template line 1, column 6: unexpected character '$'");
  // Absurd nesting is an error, not a stack overflow.
  EXPECT_NE(error_of("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}").find("nested deeper than 200"),
            std::string::npos);
  std::string ifs;
  for (int i = 0; i < 5000; ++i) ifs += "{% if true %}";
  EXPECT_NE(error_of(ifs).find("nested deeper than 200"), std::string::npos);
  EXPECT_NE(error_of("{{ " + std::string(5000, '-') + "1 }}").find("nested deeper than 200"), std::string::npos);
}

TEST(JinjaLanguage, RuntimeErrorsNameLineAndColumn) {
  EXPECT_EQ(error_of("ok\n{{ x.y }}"), "chat template line 2, column 5: 'x' is undefined");
  EXPECT_EQ(error_of("{{ 1 + 'a' }}"), "chat template line 1, column 6: unsupported operand type(s) for +: 'int' and 'str'");
  EXPECT_EQ(error_of("{{ 'a' + 1 }}"), "chat template line 1, column 8: can only concatenate str (not \"int\") to str");
  EXPECT_EQ(error_of("{{ 1 // 0 }}"), "chat template line 1, column 6: integer division or modulo by zero");
  EXPECT_EQ(error_of("{{ [] | nosuchfilter }}"), "chat template line 1, column 9: no filter named 'nosuchfilter'");
  EXPECT_EQ(error_of("{% set s = 'x' %}{% set s.a = 1 %}"),
            "chat template line 1, column 21: cannot assign attribute on non-namespace object 's'");
  EXPECT_NE(error_of("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}").find("nested deeper than 256"), std::string::npos);
}

// Snippets whose exact output we take from Jinja2 itself (corner cases of Python formatting).
TEST(JinjaLanguage, SnippetsMatchJinja2) {
  json ctx = {{"s", "  Mixed Case  "}, {"n", -7}, {"f", 1.25}, {"xs", {3, 1, 2}},
              {"d", {{"b", 1}, {"a", {1, 2}}, {"c", nullptr}}}, {"u", "\xC3\xA9t\xC3\xA9 \xF0\x9F\x98\x80"}};
  std::vector<std::string> snippets = {
      "{{ s | trim | lower }}|{{ s.split() }}|{{ s.title() }}|{{ s | title }}|{{ s | wordcount }}",
      "{{ n // 2 }} {{ n % 2 }} {{ n / 2 }} {{ f * 2 }} {{ f ** 2 }} {{ 10 / 4 }} {{ 1e-5 }} {{ 123456789.0 * 10 }}",
      "{{ xs | sort(reverse=true) }} {{ xs | sum(start=10) }} {{ xs[1:] }} {{ xs | map('string') | join }}",
      "{{ d }} {{ d | tojson }} {{ d | tojson(indent=4) }} {{ d.items() | list }} {{ d | dictsort }}",
      "{{ d.values() | list }} {{ d | length }} {{ d.a[1] }} {{ d['c'] is none }}",
      "{{ u | length }} {{ u[0] }} {{ u[-1] }} {{ u | upper }} {{ u[::-1] }} {{ u | tojson }} {{ [u] }}",
      "{{ 3 | float }} {{ '7' | int * 2 }} {{ 0.5 | round }} {{ 1.5 | round }} {{ -1.5 | round }} {{ 2.675 | round(2) }}",
      "{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }}{% endfor %} {{ (1, 'x') }} {{ ('a',) }}",
      "{{ 'x' ~ xs ~ d.c }} {{ [1, [2, 'y']] ~ '' }} {{ {'k': {'n': 'v'}} }}",
      "  {% if true %}\n    text\n  {% endif %}\n  {{ 'after' }}\n{%- for i in xs -%}\n {{ i }}\n{%- endfor %}\n",
      "{% set t %}\n  inner\n{% endset %}[{{ t }}]{# c #}\n  {# c2 #}\nend\n\n",
      "{{ 'a\\tb\\\\c\\'d\\\"e\\u00e9\\x41' }} {{ \"it's\" }} {{ 'con' 'cat' }}",
      "{{ none | string }} {{ true | string }} {{ [none] | tojson }} {{ 'a' if none else 'b' }} {{ xs | first is odd }}",
      "{{ 'abc'.startswith('') }} {{ ''.split(',') }} {{ 'a,b'.split(',', 1) }} {{ ' x '.strip() ~ '|' }}",
      "{{ xs | select('gt', 1) | list }} {{ xs | reject('odd') | list }} {{ [0, '', 'a', none] | select | list }}",
      "{{ s | truncate(5) }}|{{ s | truncate(8, true) }}|{{ 'one two three four five' | truncate(12) }}|{{ s | truncate(6, end='!') }}",
      "{{ xs | batch(2) | list }} {{ xs | batch(2, 'x') | list }} [{{ d | attr('a') }}] {{ 'ab' | attr('upper') is callable }}",
      "{{ '%d items' | format(3) }} {{ '%s-%s' % ('a', 'b') }} {{ '%.2f' | format(3.14159) }} {{ 'x%sy' % 5 }}",
      "{{ 2 ** 3 ** 2 }} {{ -2 ** 2 }} {{ 10 // 3 * 3 + 10 % 3 }} {{ 'É' | lower }}{{ 'ñandú' | capitalize }}{{ 'straße' | title }}",
      "{% macro m(a, b=2) %}{{ a }}-{{ b }}{% endmacro %}{{ m(1) }} {{ m(1, 3) }} {{ m(b=5, a=0) }} {{ dict(a=1, b=[2]) }}",
  };
  std::vector<ReferenceCase> cases;
  for (const auto& snippet : snippets) cases.push_back({snippet, snippet, ctx});
  EXPECT_EQ(expect_same_as_jinja2(cases), static_cast<int>(snippets.size()));
}

}  // namespace
}  // namespace forma::test
