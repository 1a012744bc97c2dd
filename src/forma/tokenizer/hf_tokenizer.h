// A Hugging Face tokenizer.json (model type BPE) with its whole pipeline: added tokens ->
// normalizer -> pre-tokenizer -> BPE -> post-processor, and decoders for the way back.
#pragma once
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include <nlohmann/json_fwd.hpp>

#include "forma/tokenizer/added_tokens.h"
#include "forma/tokenizer/bpe_model.h"
#include "forma/tokenizer/pipeline.h"
#include "forma/tokenizer/tokenizer.h"

namespace forma::tok {

class HfTokenizer : public Tokenizer {
 public:
  // `source` names the file in error messages. `config` is tokenizer_config.json (or null): its
  // bos_token / eos_token name the BOS and EOS tokens.
  HfTokenizer(const nlohmann::json& tokenizer_json, const nlohmann::json& config, const std::string& source);
  ~HfTokenizer() override;

  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = false) const override;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens = false) const override;
  int32_t vocab_size() const override { return vocab_size_; }
  std::optional<int32_t> token_to_id(std::string_view token) const override;
  std::string id_to_token(int32_t id) const override;
  std::optional<int32_t> bos_id() const override { return bos_id_; }
  std::optional<int32_t> eos_id() const override { return eos_id_; }

 private:
  void parse_added_tokens(const nlohmann::json& j);
  int32_t post_processor_id(const nlohmann::json& id, const std::string& token, const std::string& where) const;
  void parse_post_processor(const nlohmann::json& j, const std::string& where);
  void choose_bos_eos(const nlohmann::json& config);
  void encode_plain(std::string_view text, bool first_segment, std::vector<int32_t>& out) const;
  void encode_normalized(std::string text, bool first_segment, std::vector<int32_t>& out) const;

  std::string source_;
  std::unique_ptr<BpeModel> model_;
  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<Decoder> decoder_;
  AddedTokenMatcher raw_tokens_;         // matched in the raw text (normalized: false)
  AddedTokenMatcher normalized_tokens_;  // matched after normalization (normalized: true)
  std::unordered_map<int32_t, AddedToken> added_by_id_;
  std::unordered_map<std::string, int32_t> added_by_content_;
  std::vector<int32_t> prefix_ids_, suffix_ids_;  // post-processor for a single sequence
  int32_t vocab_size_ = 0;
  std::optional<int32_t> bos_id_, eos_id_;
};

// Reads tokenizer.json (and tokenizer_config.json beside it when present).
std::unique_ptr<Tokenizer> load_hf_tokenizer(const std::string& tokenizer_json_path);

// GPT-2's encoder.json + vocab.bpe, as the equivalent tokenizer.json (ByteLevel BPE, <|endoftext|>).
std::unique_ptr<Tokenizer> load_gpt2_tokenizer(const std::string& encoder_json_path, const std::string& vocab_bpe_path);

}  // namespace forma::tok
