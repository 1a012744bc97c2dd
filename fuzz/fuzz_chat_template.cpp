// Feeds a Jinja chat template to ChatTemplate (lexer, parser) and renders a fixed conversation
// (system, user, assistant, user, with a generation prompt), as `forma chat` does.
#include <cstddef>
#include <cstdint>
#include <string>

#include "forma/chat/chat_template.h"
#include "forma/core/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string source(reinterpret_cast<const char*>(data), size);
  static const std::vector<forma::chat::ChatMessage> kMessages = {
      {"system", "You are terse."}, {"user", "Hi <b>there</b> \xc3\xa9"}, {"assistant", "Hello."}, {"user", "2+2?"}};
  try {
    forma::chat::ChatTemplate tmpl(source, {{"bos_token", "<s>"}, {"eos_token", "</s>"}});
    (void)tmpl.render(kMessages, /*add_generation_prompt=*/true);
    (void)tmpl.render({}, /*add_generation_prompt=*/false);
  } catch (const forma::Error&) {
  }
  return 0;
}
