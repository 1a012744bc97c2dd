// OpenAI tiktoken encodings from their rank files (one "base64-token rank" per line): r50k_base,
// p50k_base, p50k_edit, cl100k_base, o200k_base, with each encoding's split regex and special tokens.
#pragma once
#include <memory>
#include <string>

#include "forma/tokenizer/tokenizer.h"

namespace forma::tok {

// encoding_name empty: taken from the file name (cl100k_base.tiktoken -> cl100k_base).
// p50k_edit uses p50k_base's rank file.
std::unique_ptr<Tokenizer> load_tiktoken(const std::string& rank_file, const std::string& encoding_name = "");

}  // namespace forma::tok
