// Runs Debian's Jinja2 (through tests/chat/render_jinja2.py, configured as transformers configures
// it) on a batch of template + context cases, and compares forma's renderings with its results.
#pragma once
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace forma::test {

struct ReferenceCase {
  std::string label;      // shown when the case fails
  std::string source;     // the Jinja template
  nlohmann::ordered_json context;  // the variables (key order kept, as in Python dicts)
};

struct ReferenceResult {
  bool ok = false;
  bool raised = false;  // the template called raise_exception
  std::string text;     // the rendering, or the error message
};

// One Python process for the whole batch.
std::vector<ReferenceResult> render_with_jinja2(const std::vector<ReferenceCase>& cases);

// Renders every case with forma and with Jinja2 and expects the same bytes (or, when Jinja2
// fails, a forma::Error too; raise_exception messages must match exactly). Returns how many
// cases rendered without error in Jinja2 (so callers can check the set is not all errors).
int expect_same_as_jinja2(const std::vector<ReferenceCase>& cases);

}  // namespace forma::test
