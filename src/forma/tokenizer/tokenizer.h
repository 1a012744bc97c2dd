// The tokenizer interface every format implements (HF tokenizer.json, GPT-2 encoder.json+vocab.bpe,
// tiktoken rank files, SentencePiece .model). Ids are int32 everywhere in forma.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace forma::tok {

// The largest token id forma reads from a tokenizer file. Tokenizer files are untrusted: an id
// indexes tables (id -> token) and, later, a model's embedding rows. 2^24 - 1 (16.8 million) is 64
// times the largest vocabularies in use (Gemma 3's 262,144) and keeps ids exact in float32.
constexpr int64_t kMaxTokenId = (int64_t{1} << 24) - 1;
// Ids may leave holes (added tokens after a padded vocabulary), but not many: the highest id must
// stay below 2 x (number of tokens) + kMaxTokenIdSlack, so a table indexed by id is never much
// larger than the file.
constexpr int64_t kMaxTokenIdSlack = 65'536;

// Errors (naming `where`, the token and the id) unless 0 <= id <= kMaxTokenId.
void check_token_id(int64_t id, std::string_view token, const std::string& where);
// Errors unless the ids up to `highest_id` are dense enough for `tokens` tokens (see above);
// `token` is the one holding the highest id.
void check_token_id_density(int64_t highest_id, size_t tokens, std::string_view token, const std::string& where);

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // add_special_tokens: apply the tokenizer's post-processor (e.g. Llama's BOS), as HF's
  // encode(text, add_special_tokens=True) does. Special tokens written in `text` are recognised.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = false) const = 0;
  // skip_special_tokens as in HF's decode. Bytes that are not valid UTF-8 by themselves are emitted
  // as they are, so decode(encode(x)) == x for any byte string x.
  virtual std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens = false) const = 0;

  // Number of ids (base vocabulary plus added tokens): every id is < vocab_size().
  virtual int32_t vocab_size() const = 0;
  virtual std::optional<int32_t> token_to_id(std::string_view token) const = 0;
  virtual std::string id_to_token(int32_t id) const = 0;

  virtual std::optional<int32_t> bos_id() const = 0;
  virtual std::optional<int32_t> eos_id() const = 0;
};

// Loads a tokenizer from a folder (tokenizer.json preferred; else tokenizer.model, else
// encoder.json + vocab.bpe) or from one file (tokenizer.json, *.model, *.tiktoken). Errors name the
// file and what is wrong with it.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path);

}  // namespace forma::tok
