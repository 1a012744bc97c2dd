// SentencePiece .model files (Llama 2 and others) through libsentencepiece.
#pragma once
#include <memory>
#include <string>

#include "forma/tokenizer/tokenizer.h"

namespace forma::tok {

// From a .model file, or from the serialized model bytes (`source` then names where they came from).
std::unique_ptr<Tokenizer> load_sentencepiece(const std::string& model_path);
std::unique_ptr<Tokenizer> load_sentencepiece_from_bytes(const std::string& serialized, const std::string& source);

}  // namespace forma::tok
