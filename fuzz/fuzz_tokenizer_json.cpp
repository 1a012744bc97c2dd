// Feeds a Hugging Face tokenizer.json to load_tokenizer, then encodes a fixed text (with special
// tokens) and decodes the ids, and decodes the first ids of the vocabulary one by one.
#include <cstddef>
#include <cstdint>

#include "forma/core/error.h"
#include "forma/tokenizer/tokenizer.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string path = forma::fuzz::write_scratch("tokenizer.json", data, size);
  try {
    auto tok = forma::tok::load_tokenizer(path);
    static const char* kText = "Hello world! <s> </s> <|endoftext|> \xc3\xa9t\xc3\xa9 \xe2\x96\x81 12345\n\t  x\xff";
    std::vector<int32_t> ids = tok->encode(kText, /*add_special_tokens=*/true);
    for (int32_t id : ids)
      if (id < 0 || id >= tok->vocab_size()) __builtin_trap();
    (void)tok->decode(ids, false);
    (void)tok->decode(ids, true);
    std::vector<int32_t> first;
    for (int32_t id = 0; id < tok->vocab_size() && id < 64; ++id) {
      first.push_back(id);
      (void)tok->token_to_id(tok->id_to_token(id));
    }
    (void)tok->decode(first, false);
  } catch (const forma::Error&) {
  }
  return 0;
}
