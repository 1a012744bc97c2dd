// A hand-written HF tokenizer.json for CLI tests: byte-level BPE without merges, id b < 256 is byte
// b and ids 256..319 are two-letter tokens "aa".."hh", so the ids of a text and the text of ids are
// known without forma's tokenizer. Fits the 320-entry vocabulary of the tiny fixtures.
#pragma once
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace forma::test {

// GPT-2's printable stand-ins for bytes (bytes_to_unicode), UTF-8 encoded.
inline std::string byte_level_char(int byte) {
  int cp = byte;
  bool printable = (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) || (byte >= 0xAE);
  if (!printable) {
    int shift = 0;
    for (int b = 0; b < byte; ++b) {
      bool p = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      if (!p) ++shift;
    }
    cp = 256 + shift;
  }
  std::string out;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return out;
}

// Byte-level BPE without merges: id b < 256 is byte b; ids 256..319 are two-letter tokens "aa".."hh".
inline std::string byte_level_tokenizer_json(std::vector<std::string>* id_text) {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) {
    vocab[byte_level_char(b)] = b;
    id_text->push_back(std::string(1, static_cast<char>(b)));
  }
  for (int i = 0; i < 64; ++i) {
    std::string two = {static_cast<char>('a' + i / 8), static_cast<char>('a' + i % 8)};
    vocab[two] = 256 + i;
    id_text->push_back(two);
  }
  nlohmann::json tok = {
      {"version", "1.0"},
      {"added_tokens", nlohmann::json::array()},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
                         {"use_regex", true}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
                   {"use_regex", true}}},
      {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr},
                 {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr},
                 {"fuse_unk", false}, {"byte_fallback", false}, {"vocab", vocab},
                 {"merges", nlohmann::json::array()}}}};
  return tok.dump();
}

}  // namespace forma::test
