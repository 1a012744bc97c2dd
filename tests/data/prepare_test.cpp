#include "forma/data/prepare.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "byte_tokenizer.h"
#include "forma/core/error.h"
#include "forma/core/files.h"
#include "forma/data/indexed_dataset.h"
#include "test_paths.h"

namespace fs = std::filesystem;
using forma::data::IndexedDataset;
using forma::data::InputFormat;
using forma::data::PrepareOptions;
using forma::data::prepare_dataset;

namespace {

std::string write_input(const std::string& name, const std::string& contents) {
  std::string path = forma::test::scratch_dir() + "/" + name;
  forma::write_file_atomic(path, contents);
  return path;
}

std::string out_prefix() { return forma::test::scratch_dir() + "/out"; }

// The documents of a prepared dataset, decoded by the byte tokenizer with EOS checked and removed.
std::vector<std::string> documents_of(const std::string& prefix) {
  IndexedDataset dataset(prefix);
  forma::test::ByteTokenizer tok;
  std::vector<std::string> docs;
  for (int64_t s = 0; s < dataset.sequence_count(); ++s) {
    std::vector<int32_t> ids = dataset.sequence(s);
    EXPECT_EQ(ids.back(), tok.eos()) << "document " << s << " does not end with EOS";
    docs.push_back(tok.decode(ids));
  }
  return docs;
}

// Prepares and expects failure; returns the message and checks that nothing was written.
std::string prepare_error(const std::vector<std::string>& inputs, PrepareOptions options = {}) {
  forma::test::ByteTokenizer tok;
  try {
    prepare_dataset(inputs, tok, out_prefix(), options);
  } catch (const forma::Error& e) {
    for (auto& entry : fs::directory_iterator(forma::test::scratch_dir()))
      EXPECT_EQ(entry.path().string().find(out_prefix()), std::string::npos)
          << "left behind " << entry.path();
    return e.what();
  }
  ADD_FAILURE() << "prepare succeeded on malformed input";
  return "";
}

}  // namespace

TEST(Prepare, TextFileIsOneDocumentWithEos) {
  forma::test::ByteTokenizer tok;
  auto a = write_input("a.txt", "Hi.\nThere\n");
  auto b = write_input("b.txt", "é");
  auto stats = prepare_dataset({a, b}, tok, out_prefix());
  IndexedDataset dataset(out_prefix());
  EXPECT_EQ(dataset.sequence(0), (std::vector<int32_t>{'H', 'i', '.', '\n', 'T', 'h', 'e', 'r', 'e', '\n', 256}));
  EXPECT_EQ(dataset.sequence(1), (std::vector<int32_t>{0xC3, 0xA9, 256}));
  EXPECT_EQ(stats.documents, 2);
  EXPECT_EQ(stats.tokens, 14);
  EXPECT_EQ(stats.files, 2);
  EXPECT_EQ(stats.input_bytes, 12);
  EXPECT_EQ(stats.dtype, forma::data::TokenDType::uint16);
}

TEST(Prepare, ParagraphsSplitAtBlankLines) {
  forma::test::ByteTokenizer tok;
  auto in = write_input("p.txt", "\n\none\ntwo\n\n \t\nthree\r\n\r\nfour");
  PrepareOptions options;
  options.split_paragraphs = true;
  prepare_dataset({in}, tok, out_prefix(), options);
  EXPECT_EQ(documents_of(out_prefix()), (std::vector<std::string>{"one\ntwo", "three", "four"}));
}

TEST(Prepare, JsonLinesTakeTheChosenField) {
  forma::test::ByteTokenizer tok;
  auto in = write_input("d.jsonl", "{\"text\": \"a\\nb\", \"id\": 1}\n\n{\"id\": 2, \"text\": \"\\u00e9\"}\r\n\"bare\"\n");
  prepare_dataset({in}, tok, out_prefix());
  EXPECT_EQ(documents_of(out_prefix()), (std::vector<std::string>{"a\nb", "é", "bare"}));

  auto other = write_input("e.jsonl", "{\"content\": \"x\"}\n{\"content\": \"yz\"}");
  PrepareOptions options;
  options.field = "content";
  prepare_dataset({other}, tok, out_prefix(), options);
  EXPECT_EQ(documents_of(out_prefix()), (std::vector<std::string>{"x", "yz"}));
}

TEST(Prepare, JsonArraysOfStringsAndObjects) {
  forma::test::ByteTokenizer tok;
  auto strings = write_input("s.json", " [\"one, [two]\", \"th\\\"ree\"]\n");
  auto objects = write_input("o.json", "[\n {\"text\": \"x}\", \"tags\": [1, {\"a\": 2}]},\n {\"text\": \"y\"}\n]");
  auto empty = write_input("n.json", "[ ]");
  prepare_dataset({strings, objects, empty}, tok, out_prefix());
  EXPECT_EQ(documents_of(out_prefix()), (std::vector<std::string>{"one, [two]", "th\"ree", "x}", "y"}));
}

TEST(Prepare, FormatDetectionAndOverride) {
  using forma::data::resolve_format;
  EXPECT_EQ(resolve_format(InputFormat::auto_detect, "a.jsonl", ""), InputFormat::jsonl);
  EXPECT_EQ(resolve_format(InputFormat::auto_detect, "a.json", "\n [1]"), InputFormat::json);
  EXPECT_EQ(resolve_format(InputFormat::auto_detect, "a.json", "{\"text\": 1}"), InputFormat::jsonl);
  EXPECT_EQ(resolve_format(InputFormat::auto_detect, "a.txt", "[1]"), InputFormat::text);
  EXPECT_EQ(resolve_format(InputFormat::text, "a.jsonl", ""), InputFormat::text);
  EXPECT_EQ(forma::data::parse_input_format("jsonl"), InputFormat::jsonl);
  EXPECT_THROW(forma::data::parse_input_format("csv"), forma::Error);

  forma::test::ByteTokenizer tok;
  auto in = write_input("d.jsonl", "{\"text\": \"q\"}");
  PrepareOptions options;
  options.format = InputFormat::text;
  prepare_dataset({in}, tok, out_prefix(), options);
  EXPECT_EQ(documents_of(out_prefix()), (std::vector<std::string>{"{\"text\": \"q\"}"}));
}

TEST(Prepare, LargeVocabularyWritesInt32) {
  forma::test::ByteTokenizer tok(/*offset=*/100000);
  auto in = write_input("a.txt", "ab");
  auto stats = prepare_dataset({in}, tok, out_prefix());
  EXPECT_EQ(stats.dtype, forma::data::TokenDType::int32);
  EXPECT_EQ(IndexedDataset(out_prefix()).sequence(0), (std::vector<int32_t>{100097, 100098, 100256}));
}

TEST(Prepare, EveryMalformedInputNamesFileAndLine) {
  struct Case { std::string name, contents, where, what; };
  std::vector<Case> cases = {
      {"bad.txt", "fine\nfine\nbad \xFF byte\n", "bad.txt:3:", "UTF-8"},
      {"trunc.txt", "ok\n\xE2\x82", "trunc.txt:2:", "UTF-8"},
      {"surrogate.txt", "\xED\xA0\x80", "surrogate.txt:1:", "UTF-8"},
      {"overlong.txt", "\xC0\xAF", "overlong.txt:1:", "UTF-8"},
      {"bad.jsonl", "{\"text\": \"a\"}\n\n{\"text\": tru}\n", "bad.jsonl:3:", "not valid JSON"},
      {"missing.jsonl", "{\"text\": \"a\"}\n{\"body\": \"b\"}\n", "missing.jsonl:2:", "no field \"text\""},
      {"number.jsonl", "{\"text\": 5}\n", "number.jsonl:1:", "not a string"},
      {"array.jsonl", "[\"a\"]\n", "array.jsonl:1:", "not an object or a string"},
      {"utf8.jsonl", "{\"text\": \"a\"}\n{\"text\": \"\xC3\x28\"}\n", "utf8.jsonl:2:", "UTF-8"},
      {"elem.json", "[\"a\",\n {\"text\": \"b\"},\n {\"text\": nul}\n]", "elem.json:3:", "element 2"},
      {"comma.json", "[\"a\",\n\n]", "comma.json:1:", "empty"},
      {"field.json", "[\n{\"txt\": \"a\"}]", "field.json:2:", "no field"},
      {"open.json", "[\"a\",\n {\"text\": \"b\"", "open.json:2:", "unterminated"},
      {"tail.json", "[\"a\"]\nx", "tail.json:2:", "after the JSON array"},
      {"notarray.json", "\n\n[", "notarray.json:3:", "unterminated"},
  };
  for (const auto& c : cases) {
    std::string message = prepare_error({write_input(c.name, c.contents)});
    EXPECT_NE(message.find(c.where), std::string::npos) << c.name << ": " << message;
    EXPECT_NE(message.find(c.what), std::string::npos) << c.name << ": " << message;
  }
  PrepareOptions json;
  json.format = InputFormat::json;
  std::string message = prepare_error({write_input("obj.json", "{\"text\": \"a\"}")}, json);
  EXPECT_NE(message.find("obj.json:1: a JSON array file must start with '['"), std::string::npos) << message;
}

TEST(Prepare, SkipBadCountsAndKeepsTheRest) {
  forma::test::ByteTokenizer tok;
  auto jsonl = write_input("d.jsonl", "{\"text\": \"a\"}\nnot json\n{\"text\": 1}\n{\"text\": \"b\"}\n{\"x\": 0}\n");
  auto json = write_input("d.json", "[\"c\", 3, {\"text\": \"\\ud800\"}, \"d\",]");
  auto text = write_input("p.txt", "e\n\nbad\xFF\n\nf");
  PrepareOptions options;
  options.skip_bad = true;
  options.split_paragraphs = true;
  auto stats = prepare_dataset({jsonl, json, text}, tok, out_prefix(), options);
  EXPECT_EQ(documents_of(out_prefix()), (std::vector<std::string>{"a", "b", "c", "d", "e", "f"}));
  EXPECT_EQ(stats.skipped, 3 + 3 + 1);
  ASSERT_FALSE(stats.skipped_examples.empty());
  EXPECT_NE(stats.skipped_examples[0].find("d.jsonl:2:"), std::string::npos) << stats.skipped_examples[0];
}

TEST(Prepare, StructuralDamageFailsEvenWithSkipBad) {
  PrepareOptions options;
  options.skip_bad = true;
  std::string message = prepare_error({write_input("open.json", "[\"a\", {\"text\": \"b]")}, options);
  EXPECT_NE(message.find("open.json:1:"), std::string::npos) << message;
}

TEST(Prepare, FailureLeavesPreviousOutputUntouched) {
  forma::test::ByteTokenizer tok;
  prepare_dataset({write_input("good.txt", "old")}, tok, out_prefix());
  auto bad = write_input("bad.jsonl", "{\"text\": \"new\"}\n{");
  EXPECT_THROW(prepare_dataset({bad}, tok, out_prefix()), forma::Error);
  EXPECT_EQ(documents_of(out_prefix()), (std::vector<std::string>{"old"}));
  for (auto& entry : fs::directory_iterator(forma::test::scratch_dir()))
    EXPECT_EQ(entry.path().string().find(".tmp"), std::string::npos) << entry.path();
}

TEST(Prepare, NoDocumentsOrMissingInputIsAnError) {
  std::string message = prepare_error({write_input("empty.txt", "")});
  EXPECT_NE(message.find("no documents"), std::string::npos) << message;
  message = prepare_error({forma::test::scratch_dir() + "/absent.txt"});
  EXPECT_NE(message.find("absent.txt"), std::string::npos) << message;
}

TEST(Prepare, OutputDoesNotDependOnThreadCount) {
  forma::test::ByteTokenizer tok;
  std::string jsonl;
  for (int i = 0; i < 3000; ++i) jsonl += "{\"text\": \"document " + std::string(static_cast<size_t>(i % 700), 'x') + "\"}\n";
  auto in = write_input("many.jsonl", jsonl);  // ~1 MiB of text: more than one batch
  PrepareOptions options;
  options.threads = 1;
  auto one = prepare_dataset({in}, tok, out_prefix(), options);
  std::string idx = forma::read_file(out_prefix() + ".idx"), bin = forma::read_file(out_prefix() + ".bin");
  options.threads = 3;
  auto three = prepare_dataset({in}, tok, out_prefix(), options);
  EXPECT_EQ(one.documents, 3000);
  EXPECT_EQ(three.tokens, one.tokens);
  EXPECT_EQ(forma::read_file(out_prefix() + ".idx"), idx);
  EXPECT_EQ(forma::read_file(out_prefix() + ".bin"), bin);
  EXPECT_EQ(documents_of(out_prefix())[2999], "document " + std::string(2999 % 700, 'x'));
}

TEST(Prepare, MissingOutputFoldersAreCreatedAndAFileInTheWayIsAnError) {
  forma::test::ByteTokenizer tok;
  auto input = write_input("a.txt", "Hi");
  const std::string nested = forma::test::scratch_dir() + "/runs/data/moby";
  prepare_dataset({input}, tok, nested);
  EXPECT_EQ(IndexedDataset(nested).sequence(0), (std::vector<int32_t>{'H', 'i', 256}));

  auto blocker = write_input("file", "not a folder");
  try {
    prepare_dataset({input}, tok, blocker + "/out");
    ADD_FAILURE() << "prepare wrote below a regular file";
  } catch (const forma::Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot create the output folder " + blocker), std::string::npos) << e.what();
  }
}
