// Feeds a training recipe (YAML) to parse_recipe, which reads and validates every section.
#include <cstddef>
#include <cstdint>
#include <string>

#include "forma/core/error.h"
#include "forma/train/recipe.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  try {
    forma::train::Recipe recipe = forma::train::parse_recipe(text, "fuzz.yaml");
    (void)recipe.snapshot.size();
  } catch (const forma::Error&) {
  }
  return 0;
}
