#include "forma/tokenizer/hf_tokenizer.h"

#include <filesystem>

#include "forma/core/files.h"
#include "forma/tokenizer/json_util.h"

namespace forma::tok {

using namespace json_util;

namespace {

std::vector<std::pair<std::string, std::string>> parse_merges(const json& merges, const std::string& where) {
  check(merges.is_array(), "{}: model.merges: expected an array", where);
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const json& m = merges[i];
    if (m.is_string()) {  // "left right"
      const std::string& s = m.get_ref<const std::string&>();
      size_t space = s.find(' ');
      check(space != std::string::npos && s.find(' ', space + 1) == std::string::npos,
            "{}: model.merges[{}]: expected two tokens separated by one space, got '{}'", where, i, s);
      out.emplace_back(s.substr(0, space), s.substr(space + 1));
    } else {  // ["left", "right"]
      check(m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string(),
            "{}: model.merges[{}]: expected \"a b\" or [\"a\", \"b\"]", where, i);
      out.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    }
  }
  return out;
}

std::unique_ptr<BpeModel> parse_model(const json& root, const std::string& where) {
  const json& model = field(root, "model", where);
  std::string type = string_or(model, "type", "BPE", where + ": model");
  check(type == "BPE", "{}: model.type '{}' is not supported (only BPE)", where, type);
  check(string_or(model, "continuing_subword_prefix", "", where + ": model").empty() &&
            string_or(model, "end_of_word_suffix", "", where + ": model").empty(),
        "{}: model: continuing_subword_prefix / end_of_word_suffix are not supported", where);
  const json& vocab_json = field(model, "vocab", where + ": model");
  check(vocab_json.is_object(), "{}: model.vocab: expected an object of token -> id", where);
  std::unordered_map<std::string, int32_t> vocab;
  vocab.reserve(vocab_json.size());
  check(!vocab_json.empty(), "{}: model.vocab is empty: the tokenizer has no tokens to encode text with", where);
  for (auto it = vocab_json.begin(); it != vocab_json.end(); ++it) {
    check(it.value().is_number_integer(), "{}: model.vocab['{}']: expected an integer id", where, it.key());
    vocab.emplace(it.key(), token_id(it.value(), it.key(), where + ": model.vocab"));
  }
  BpeOptions options;
  auto unk = model.find("unk_token");
  if (unk != model.end() && !unk->is_null()) options.unk_token = string_field(model, "unk_token", where + ": model");
  options.byte_fallback = bool_or(model, "byte_fallback", false, where + ": model");
  options.fuse_unk = bool_or(model, "fuse_unk", false, where + ": model");
  options.ignore_merges = bool_or(model, "ignore_merges", false, where + ": model");
  auto merges = model.contains("merges") ? parse_merges(model["merges"], where)
                                         : std::vector<std::pair<std::string, std::string>>{};
  return std::make_unique<BpeModel>(std::move(vocab), merges, options, where);
}

// tokenizer_config.json names tokens as "..." or {"content": "..."}.
std::optional<std::string> config_token(const json& config, const char* name) {
  if (!config.is_object() || !config.contains(name)) return std::nullopt;
  const json& v = config[name];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return std::nullopt;
}

json read_json(const std::string& path) {
  std::string text = read_file(path);
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    fail("{}: not valid JSON: {}", path, e.what());
  }
}

}  // namespace

HfTokenizer::~HfTokenizer() = default;

HfTokenizer::HfTokenizer(const json& root, const json& config, const std::string& source) : source_(source) {
  check(root.is_object(), "{}: expected a JSON object at the top level", source);
  model_ = parse_model(root, source);
  vocab_size_ = model_->id_limit();
  parse_added_tokens(root.value("added_tokens", json::array()));
  normalizer_ = parse_normalizer(root.value("normalizer", json()), source + ": normalizer");
  pre_tokenizer_ = parse_pre_tokenizer(root.value("pre_tokenizer", json()), source + ": pre_tokenizer");
  decoder_ = parse_decoder(root.value("decoder", json()), source + ": decoder");
  parse_post_processor(root.value("post_processor", json()), source + ": post_processor");
  choose_bos_eos(config);
}

void HfTokenizer::parse_added_tokens(const json& j) {
  check(j.is_array(), "{}: added_tokens: expected an array", source_);
  std::vector<AddedToken> raw, normalized;
  for (size_t i = 0; i < j.size(); ++i) {
    std::string where = fmt::format("{}: added_tokens[{}]", source_, i);
    AddedToken t;
    t.content = string_field(j[i], "content", where);
    check(!t.content.empty(), "{}: empty content", where);
    check(j[i].contains("id"), "{}: token '{}' has no id", where, t.content);
    t.id = token_id(j[i]["id"], t.content, where);
    t.special = bool_or(j[i], "special", false, where);
    t.lstrip = bool_or(j[i], "lstrip", false, where);
    t.rstrip = bool_or(j[i], "rstrip", false, where);
    t.single_word = bool_or(j[i], "single_word", false, where);
    t.normalized = bool_or(j[i], "normalized", !t.special, where);
    vocab_size_ = std::max(vocab_size_, t.id + 1);
    added_by_id_[t.id] = t;
    added_by_content_[t.content] = t.id;
    (t.normalized ? normalized : raw).push_back(t);
  }
  // The added tokens may not stretch the id range far beyond the vocabulary either.
  if (vocab_size_ > model_->id_limit()) {
    const std::string& highest = added_by_id_.at(vocab_size_ - 1).content;
    check_token_id_density(vocab_size_ - 1, model_->size() + added_by_id_.size(), highest, source_ + ": added_tokens");
  }
  raw_tokens_ = AddedTokenMatcher(std::move(raw));
  normalized_tokens_ = AddedTokenMatcher(std::move(normalized));
}

int32_t HfTokenizer::post_processor_id(const json& id, const std::string& token, const std::string& where) const {
  int32_t value = token_id(id, token, where);
  check(value < vocab_size_, "{}: token '{}' has id {}, outside the vocabulary of {} ids", where, token, value, vocab_size_);
  return value;
}

void HfTokenizer::parse_post_processor(const json& j, const std::string& where) {
  if (j.is_null()) return;
  std::string type = string_field(j, "type", where);
  if (type == "ByteLevel") return;  // only adjusts offsets
  if (type == "Sequence") {
    const json& steps = array_field(j, "processors", where);
    for (size_t i = 0; i < steps.size(); ++i) parse_post_processor(steps[i], fmt::format("{}.processors[{}]", where, i));
    return;
  }
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    for (const char* name : {"cls", "sep"}) {
      const json& pair = field(j, name, where);
      check(pair.is_array() && pair.size() == 2 && pair[0].is_string() && pair[1].is_number_integer(),
            "{}.{}: expected [token, id]", where, name);
      (std::string(name) == "cls" ? prefix_ids_ : suffix_ids_)
          .push_back(post_processor_id(pair[1], pair[0].get<std::string>(), where + "." + name));
    }
    return;
  }
  check(type == "TemplateProcessing", "{}: unsupported post_processor type '{}'", where, type);
  const json& specials = field(j, "special_tokens", where);
  bool after_sequence = false;
  const json& single = array_field(j, "single", where);
  for (size_t i = 0; i < single.size(); ++i) {
    std::string item_where = fmt::format("{}.single[{}]", where, i);
    if (single[i].contains("Sequence")) {
      after_sequence = true;
      continue;
    }
    std::string name = string_field(field(single[i], "SpecialToken", item_where), "id", item_where + ".SpecialToken");
    const json& ids = array_field(field(specials, name.c_str(), where + ".special_tokens"), "ids",
                                  where + ".special_tokens." + name);
    for (const json& id : ids) {
      check(id.is_number_integer(), "{}.special_tokens.{}.ids: expected integers", where, name);
      (after_sequence ? suffix_ids_ : prefix_ids_).push_back(post_processor_id(id, name, where + ".special_tokens." + name));
    }
  }
}

void HfTokenizer::choose_bos_eos(const json& config) {
  auto lookup = [&](const std::optional<std::string>& name) -> std::optional<int32_t> {
    return name ? token_to_id(*name) : std::nullopt;
  };
  bos_id_ = lookup(config_token(config, "bos_token"));
  eos_id_ = lookup(config_token(config, "eos_token"));
  // Without a config: the post-processor's leading token, else the usual names.
  if (!bos_id_ && !prefix_ids_.empty()) bos_id_ = prefix_ids_.front();
  for (const char* name : {"<s>", "<|begin_of_text|>", "<bos>", "<|endoftext|>"})
    if (!bos_id_) bos_id_ = token_to_id(name);
  for (const char* name : {"</s>", "<|end_of_text|>", "<eos>", "<|endoftext|>"})
    if (!eos_id_) eos_id_ = token_to_id(name);
}

std::optional<int32_t> HfTokenizer::token_to_id(std::string_view token) const {
  auto it = added_by_content_.find(std::string(token));
  if (it != added_by_content_.end()) return it->second;
  return model_->token_to_id(token);
}

std::string HfTokenizer::id_to_token(int32_t id) const {
  auto it = added_by_id_.find(id);
  if (it != added_by_id_.end()) return it->second.content;
  const std::string* token = model_->id_to_token(id);
  check(token != nullptr, "{}: token id {} is not in the vocabulary (size {})", source_, id, vocab_size_);
  return *token;
}

std::vector<int32_t> HfTokenizer::encode(std::string_view text, bool add_special_tokens) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (add_special_tokens) ids = prefix_ids_;
  for (const TextSegment& s : raw_tokens_.split(text)) {
    if (s.token >= 0) {
      ids.push_back(raw_tokens_.token(s.token).id);
    } else {
      encode_plain(text.substr(s.begin, s.end - s.begin), s.begin == 0, ids);
    }
  }
  if (add_special_tokens) ids.insert(ids.end(), suffix_ids_.begin(), suffix_ids_.end());
  return ids;
}

void HfTokenizer::encode_plain(std::string_view text, bool first_segment, std::vector<int32_t>& out) const {
  std::string normalized(text);
  if (normalizer_) normalizer_->apply(normalized);
  if (normalized_tokens_.empty()) return encode_normalized(std::move(normalized), first_segment, out);
  for (const TextSegment& s : normalized_tokens_.split(normalized)) {
    if (s.token >= 0) {
      out.push_back(normalized_tokens_.token(s.token).id);
    } else {
      encode_normalized(normalized.substr(s.begin, s.end - s.begin), first_segment && s.begin == 0, out);
    }
  }
}

void HfTokenizer::encode_normalized(std::string text, bool first_segment, std::vector<int32_t>& out) const {
  if (!pre_tokenizer_) return model_->encode_word(text, out);
  std::vector<std::string> pieces{std::move(text)};
  pre_tokenizer_->apply(pieces, first_segment);
  for (const std::string& piece : pieces) model_->encode_word(piece, out);
}

std::string HfTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    auto it = added_by_id_.find(id);
    if (it != added_by_id_.end()) {
      if (!(skip_special_tokens && it->second.special)) tokens.push_back(it->second.content);
      continue;
    }
    tokens.push_back(id_to_token(id));
  }
  if (!decoder_) {
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i) out += (i ? " " : "") + tokens[i];
    return out;
  }
  decoder_->apply(tokens);
  std::string out;
  for (const auto& t : tokens) out += t;
  return out;
}

std::unique_ptr<Tokenizer> load_hf_tokenizer(const std::string& path) {
  json root = read_json(path);
  json config;
  auto config_path = std::filesystem::path(path).parent_path() / "tokenizer_config.json";
  if (std::filesystem::exists(config_path)) config = read_json(config_path.string());
  return std::make_unique<HfTokenizer>(root, config, path);
}

std::unique_ptr<Tokenizer> load_gpt2_tokenizer(const std::string& encoder_json_path, const std::string& vocab_bpe_path) {
  json encoder = read_json(encoder_json_path);
  check(encoder.is_object(), "{}: expected an object of token -> id", encoder_json_path);
  std::string bpe = read_file(vocab_bpe_path);
  json merges = json::array();
  size_t line_no = 0;
  for (size_t pos = 0; pos < bpe.size();) {
    size_t end = bpe.find('\n', pos);
    if (end == std::string::npos) end = bpe.size();
    std::string line = bpe.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (line_no == 1 && line.rfind("#version", 0) == 0)) continue;
    size_t space = line.find(' ');
    check(space != std::string::npos && line.find(' ', space + 1) == std::string::npos,
          "{}:{}: expected two tokens separated by one space", vocab_bpe_path, line_no);
    merges.push_back(json::array({line.substr(0, space), line.substr(space + 1)}));
  }
  json root = {
      {"model", {{"type", "BPE"}, {"vocab", std::move(encoder)}, {"merges", std::move(merges)}}},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"added_tokens", json::array()}};
  if (auto id = root["model"]["vocab"].find("<|endoftext|>"); id != root["model"]["vocab"].end())
    root["added_tokens"].push_back({{"id", *id}, {"content", "<|endoftext|>"}, {"special", true}});
  json config = {{"bos_token", "<|endoftext|>"}, {"eos_token", "<|endoftext|>"}};
  return std::make_unique<HfTokenizer>(root, config, encoder_json_path + " + " + vocab_bpe_path);
}

}  // namespace forma::tok
