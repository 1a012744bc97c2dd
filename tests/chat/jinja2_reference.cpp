#include "chat/jinja2_reference.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "forma/chat/jinja_eval.h"
#include "test_paths.h"

namespace forma::test {

std::vector<ReferenceResult> render_with_jinja2(const std::vector<ReferenceCase>& cases) {
  nlohmann::ordered_json request = {{"cases", nlohmann::ordered_json::array()}};
  for (const auto& c : cases) request["cases"].push_back({{"template", c.source}, {"context", c.context}});
  std::string dir = scratch_dir();
  std::string input = dir + "/jinja2_in.json";
  std::string output = dir + "/jinja2_out.json";
  std::ofstream(input) << request.dump();
  std::string command = "'" + python() + "' '" + fixture("../chat/render_jinja2.py") + "' '" + input + "' '" +
                        output + "' 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  std::string diagnostics;
  if (pipe) {
    char buffer[4096];
    size_t n;
    while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) diagnostics.append(buffer, n);
  }
  int status = pipe ? pclose(pipe) : -1;
  std::vector<ReferenceResult> results;
  if (status != 0) {
    ADD_FAILURE() << "render_jinja2.py failed (status " << status << "): " << diagnostics;
    return results;
  }
  std::stringstream text;
  text << std::ifstream(output).rdbuf();
  for (const auto& r : nlohmann::ordered_json::parse(text.str())) {
    ReferenceResult result;
    result.ok = r["ok"].get<bool>();
    result.raised = r.value("raised", false);
    result.text = result.ok ? r["text"].get<std::string>() : r["error"].get<std::string>();
    results.push_back(result);
  }
  EXPECT_EQ(results.size(), cases.size());
  return results;
}

int expect_same_as_jinja2(const std::vector<ReferenceCase>& cases) {
  std::vector<ReferenceResult> expected = render_with_jinja2(cases);
  int rendered = 0;
  for (size_t i = 0; i < cases.size() && i < expected.size(); ++i) {
    const auto& c = cases[i];
    const auto& want = expected[i];
    SCOPED_TRACE("case: " + c.label + "\ntemplate: " + c.source + "\ncontext: " + c.context.dump());
    try {
      std::string got = chat::JinjaTemplate(c.source).render(c.context);
      EXPECT_TRUE(want.ok) << "Jinja2 failed with \"" << want.text << "\" but forma rendered:\n" << got;
      if (want.ok) {
        EXPECT_EQ(got, want.text);
        ++rendered;
      }
    } catch (const chat::TemplateRaisedError& e) {
      EXPECT_TRUE(!want.ok && want.raised) << "forma raised \"" << e.what() << "\"; Jinja2 gave: " << want.text;
      EXPECT_EQ(std::string(e.what()), want.text);
    } catch (const Error& e) {
      EXPECT_FALSE(want.ok) << "forma failed with \"" << e.what() << "\"; Jinja2 rendered:\n" << want.text;
      EXPECT_FALSE(want.raised) << "Jinja2 raised \"" << want.text << "\"; forma failed with: " << e.what();
    }
  }
  return rendered;
}

}  // namespace forma::test
