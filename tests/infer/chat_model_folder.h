// A small chat model folder for tests: the llama fixture's weights (its context raised to 1024,
// which RoPE allows without other changes), a hand-written byte-level tokenizer.json whose every
// token is ASCII (so any generated reply is valid text for the next turn's template), three special
// tokens <|endoftext|> (0), <|im_start|> (1), <|im_end|> (2), and a real chat template from
// tests/fixtures/chat_templates. The folder's vocabulary is known, so tests encode and decode by
// hand instead of trusting forma's tokenizer.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace forma::test {

struct ChatModelFolder {
  std::string dir;
  std::vector<std::string> pieces;  // id -> its text

  // Special tokens where they appear, other characters one token each (the tokenizer has no merges).
  std::vector<int32_t> encode(const std::string& text) const;
  std::string decode(const std::vector<int32_t>& ids) const;
};

// Writes the folder into `dir` with the template of tests/fixtures/chat_templates/`template_file`
// (its special tokens too) and, when `generation_config` is not empty, that generation_config.json.
ChatModelFolder make_chat_model_folder(const std::string& dir, const std::string& template_file,
                                       const std::string& generation_config = "");

}  // namespace forma::test
