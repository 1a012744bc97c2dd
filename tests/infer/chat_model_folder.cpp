#include "infer/chat_model_folder.h"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "forma/core/files.h"
#include "test_paths.h"

namespace forma::test {

namespace fs = std::filesystem;

namespace {

const char* const kChatSpecialTokens[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
constexpr int32_t kChatVocabSize = 320;  // the llama fixture's

// GPT-2's ByteLevel stand-in for the bytes used here: space -> U+0120, newline -> U+010A,
// printable ASCII -> itself.
std::string byte_level_char(char c) {
  if (c == ' ') return "\xC4\xA0";
  if (c == '\n') return "\xC4\x8A";
  return std::string(1, c);
}

std::string chat_tokenizer_json(const std::vector<std::string>& pieces) {
  nlohmann::json vocab = nlohmann::json::object();
  nlohmann::json added = nlohmann::json::array();
  for (size_t id = 0; id < pieces.size(); ++id) {
    if (id < 3) {
      added.push_back({{"id", id}, {"content", pieces[id]}, {"single_word", false}, {"lstrip", false},
                       {"rstrip", false}, {"normalized", false}, {"special", true}});
      vocab[pieces[id]] = id;
    } else if (pieces[id].size() == 1) {
      vocab[byte_level_char(pieces[id][0])] = id;
    } else {
      vocab[pieces[id]] = id;
    }
  }
  nlohmann::json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
                               {"use_regex", true}};
  nlohmann::json tok = {
      {"version", "1.0"},
      {"added_tokens", added},
      {"normalizer", nullptr},
      {"pre_tokenizer", byte_level},
      {"post_processor", nullptr},
      {"decoder", byte_level},
      {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr},
                 {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr},
                 {"fuse_unk", false}, {"byte_fallback", false}, {"vocab", vocab},
                 {"merges", nlohmann::json::array()}}}};
  return tok.dump();
}

}  // namespace

std::vector<int32_t> ChatModelFolder::encode(const std::string& text) const {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i < text.size()) {
    int32_t id = -1;
    size_t length = 1;
    for (int32_t s = 0; s < 3; ++s) {
      if (text.compare(i, pieces[s].size(), pieces[s]) == 0) id = s, length = pieces[s].size();
    }
    for (int32_t c = 3; id < 0 && c < kChatVocabSize; ++c) {
      if (pieces[c].size() == 1 && pieces[c][0] == text[i]) id = c;
    }
    if (id < 0) throw std::runtime_error("chat test tokenizer: no token for '" + text.substr(i, 1) + "'");
    ids.push_back(id);
    i += length;
  }
  return ids;
}

std::string ChatModelFolder::decode(const std::vector<int32_t>& ids) const {
  std::string text;
  for (int32_t id : ids) text += pieces.at(id);
  return text;
}

ChatModelFolder make_chat_model_folder(const std::string& dir, const std::string& template_file,
                                       const std::string& generation_config) {
  ChatModelFolder folder;
  folder.dir = dir;
  for (const char* special : kChatSpecialTokens) folder.pieces.push_back(special);
  folder.pieces.push_back(" ");
  folder.pieces.push_back("\n");
  for (char c = '!'; c <= '~'; ++c) folder.pieces.push_back(std::string(1, c));
  for (int i = 0; folder.pieces.size() < kChatVocabSize; ++i) {
    folder.pieces.push_back({static_cast<char>('a' + i / 26), static_cast<char>('a' + i % 26)});
  }

  fs::create_directories(dir);
  fs::copy_file(fixture("hf-tiny/llama/model.safetensors"), dir + "/model.safetensors");
  auto config = nlohmann::json::parse(read_file(fixture("hf-tiny/llama/config.json")));
  config["max_position_embeddings"] = 1024;
  write_file_atomic(dir + "/config.json", config.dump(2));
  write_file_atomic(dir + "/tokenizer.json", chat_tokenizer_json(folder.pieces));
  // The template and special tokens of a real tokenizer_config.json, as they are.
  write_file_atomic(dir + "/tokenizer_config.json", read_file(fixture("chat_templates/" + template_file)));
  if (!generation_config.empty()) write_file_atomic(dir + "/generation_config.json", generation_config);
  return folder;
}

}  // namespace forma::test
