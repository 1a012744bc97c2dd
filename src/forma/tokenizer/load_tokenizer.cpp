// load_tokenizer: picks the reader from the files present.
#include <filesystem>

#include "forma/core/error.h"
#include "forma/tokenizer/hf_tokenizer.h"
#include "forma/tokenizer/sentencepiece_tokenizer.h"
#include "forma/tokenizer/tiktoken.h"
#include "forma/tokenizer/tokenizer.h"

namespace forma::tok {

namespace fs = std::filesystem;

void check_token_id(int64_t id, std::string_view token, const std::string& where) {
  check(id >= 0, "{}: token '{}' has a negative id {}", where, token, id);
  check(id <= kMaxTokenId, "{}: token '{}' has id {}, beyond the largest token id forma accepts ({})", where, token, id,
        kMaxTokenId);
}

void check_token_id_density(int64_t highest_id, size_t tokens, std::string_view token, const std::string& where) {
  const int64_t bound = 2 * static_cast<int64_t>(tokens) + kMaxTokenIdSlack;
  check(highest_id < bound, "{}: token '{}' has id {}, far beyond the {} tokens of the vocabulary (ids must stay below {})",
        where, token, highest_id, tokens, bound);
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path) {
  check(fs::exists(path), "{}: no such file or folder", path);
  if (fs::is_directory(path)) {
    fs::path dir(path);
    if (fs::exists(dir / "tokenizer.json")) return load_hf_tokenizer((dir / "tokenizer.json").string());
    if (fs::exists(dir / "tokenizer.model")) return load_sentencepiece((dir / "tokenizer.model").string());
    if (fs::exists(dir / "encoder.json") && fs::exists(dir / "vocab.bpe"))
      return load_gpt2_tokenizer((dir / "encoder.json").string(), (dir / "vocab.bpe").string());
    for (const auto& entry : fs::directory_iterator(dir))
      if (entry.path().extension() == ".tiktoken") return load_tiktoken(entry.path().string());
    fail("{}: no tokenizer found (expected tokenizer.json, tokenizer.model, encoder.json + vocab.bpe, or *.tiktoken)",
         path);
  }
  fs::path file(path);
  std::string ext = file.extension().string();
  if (ext == ".json") {
    if (file.filename() == "encoder.json" && fs::exists(file.parent_path() / "vocab.bpe"))
      return load_gpt2_tokenizer(path, (file.parent_path() / "vocab.bpe").string());
    return load_hf_tokenizer(path);
  }
  if (ext == ".model") return load_sentencepiece(path);
  if (ext == ".tiktoken") return load_tiktoken(path);
  if (file.filename() == "vocab.bpe" && fs::exists(file.parent_path() / "encoder.json"))
    return load_gpt2_tokenizer((file.parent_path() / "encoder.json").string(), path);
  fail("{}: unknown tokenizer file type (expected tokenizer.json, *.model, *.tiktoken, encoder.json/vocab.bpe)", path);
}

}  // namespace forma::tok
