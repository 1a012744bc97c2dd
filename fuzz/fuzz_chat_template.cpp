// Feeds a Jinja chat template to the engine (lexer, parser) and renders a fixed conversation
// (system, user, assistant, user), with and without a generation prompt, as `forma chat` does.
// The render runs under smaller limits than forma's defaults (jinja_limits.h): the limits are
// what is under test, and at the defaults one input may run for seconds (10 million steps), past
// libFuzzer's -timeout with the sanitizers on.
#include <cstddef>
#include <cstdint>
#include <string>

#include "forma/chat/jinja_eval.h"
#include "forma/core/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string source(reinterpret_cast<const char*>(data), size);
  static const nlohmann::ordered_json kMessages = nlohmann::ordered_json::parse(
      R"([{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi <b>there</b> \u00e9"},
          {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "2+2?"}])");
  forma::chat::TemplateLimits limits;
  limits.max_steps = 200'000;
  limits.max_string_bytes = size_t{1} << 20;
  limits.max_list_items = 100'000;
  try {
    forma::chat::JinjaTemplate tmpl(source);
    for (bool prompt : {true, false}) {
      nlohmann::ordered_json context = {{"messages", kMessages}, {"add_generation_prompt", prompt},
                                        {"bos_token", "<s>"}, {"eos_token", "</s>"}};
      (void)tmpl.render(context, limits);
    }
  } catch (const forma::Error&) {
  }
  return 0;
}
