// SFT records and `prepare_sft_dataset`: every format read into the same conversation, bad records
// stopping with FILE:LINE and the field or skipped and counted, truncation and dropping counted,
// and the dataset read back (ids and masks as rendered). Byte tokenizer: ids are written by hand.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "data/byte_tokenizer.h"
#include "forma/data/sft_dataset.h"
#include "forma/data/sft_prepare.h"
#include "test_paths.h"

namespace forma::data {
namespace {

using nlohmann::ordered_json;

const char* kTemplate = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</s>{% endfor %}"
                        "{% if add_generation_prompt %}<assistant>{% endif %}";

std::string write(const std::string& dir, const std::string& name, const std::string& text) {
  std::ofstream(dir + "/" + name) << text;
  return dir + "/" + name;
}

TEST(SftRecords, EveryFormatBecomesTheSameConversation) {
  const ordered_json want = {{{"role", "system"}, {"content", "S"}},
                             {{"role", "user"}, {"content", "Q\n\nI"}},
                             {{"role", "assistant"}, {"content", "A"}}};
  auto parse = [](const char* text) { return parse_sft_record(nlohmann::json::parse(text), SftFormat::auto_detect); };
  EXPECT_EQ(parse(R"({"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q\n\nI"},
                                   {"role": "assistant", "content": "A"}]})").messages, want);
  EXPECT_EQ(parse(R"({"system": "S", "conversations": [{"from": "human", "value": "Q\n\nI"},
                                                       {"from": "gpt", "value": "A"}]})").messages, want);
  EXPECT_EQ(parse(R"({"system": "S", "instruction": "Q", "input": "I", "output": "A"})").messages, want);
  auto alpaca = parse(R"({"instruction": "Q", "input": "", "output": "A"})");
  EXPECT_EQ(alpaca.format, SftFormat::alpaca);
  EXPECT_EQ(alpaca.messages[0]["content"], "Q");  // no blank line without an input
  auto pc = parse(R"({"prompt": "P", "completion": "C"})");
  EXPECT_EQ(pc.format, SftFormat::prompt_completion);
  EXPECT_EQ(pc.prompt + "|" + pc.completion, "P|C");
  EXPECT_EQ(parse(R"({"text": "T"})").format, SftFormat::text);
}

TEST(SftRecords, ErrorsNameTheField) {
  auto error = [](const char* text, SftFormat format = SftFormat::auto_detect) {
    return test::error_of([&] { parse_sft_record(nlohmann::json::parse(text), format); });
  };
  EXPECT_EQ(error(R"({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": 5}]})"),
            "field \"messages[1].content\" is a number, not a string");
  EXPECT_EQ(error(R"({"messages": [{"role": "user", "content": "x"}]})"),
            "field \"messages\" has no assistant message (nothing to train on)");
  EXPECT_EQ(error(R"({"conversations": [{"from": "robot", "value": "x"}]})"),
            "field \"conversations[0].from\" is \"robot\" (expected human, gpt, system or tool)");
  EXPECT_EQ(error(R"({"instruction": "x"})"), "missing field \"output\"");
  EXPECT_EQ(error(R"({"question": "x"})"),
            "no field \"messages\", \"conversations\", \"instruction\", \"prompt\" or \"text\" (not a known SFT "
            "format)");
  EXPECT_EQ(error(R"({"text": "x"})", SftFormat::alpaca), "missing field \"instruction\"");
}

struct Prepared {
  SftPrepareStats stats;
  std::string prefix;
};

Prepared prepare(const std::string& dir, const std::vector<std::string>& inputs, SftPrepareOptions options = {}) {
  test::ByteTokenizer tokenizer;
  chat::ChatTemplate chat_template(kTemplate, ordered_json::object());
  Prepared p{{}, dir + "/out/sft"};
  p.stats = prepare_sft_dataset(inputs, tokenizer, chat_template, p.prefix, options);
  return p;
}

TEST(SftPrepare, WritesIdsAndMasksAsRendered) {
  const std::string dir = test::scratch_dir();
  auto input = write(dir, "a.jsonl",
                     R"({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]})"
                     "\n\n"
                     R"({"prompt": "ab", "completion": "c"})" "\n");
  auto p = prepare(dir, {input});
  EXPECT_EQ(p.stats.samples, 2);
  EXPECT_EQ(p.stats.skipped, 0);
  SftDataset dataset(p.prefix);
  ASSERT_EQ(dataset.size(), 2);
  // "<user>hi</s><assistant>yo</s>": trained from the end of "<assistant>" on.
  const std::string text = "<user>hi</s><assistant>yo</s>";
  ASSERT_EQ(dataset.length(0), static_cast<int32_t>(text.size()));
  std::vector<int32_t> ids(text.size()), mask(text.size());
  dataset.read(0, 0, dataset.length(0), ids.data(), mask.data());
  const size_t reply = text.find("yo");
  for (size_t i = 0; i < text.size(); ++i) {
    EXPECT_EQ(ids[i], static_cast<unsigned char>(text[i]));
    EXPECT_EQ(mask[i], i >= reply ? 1 : 0) << i;
  }
  std::vector<int32_t> ids1(4), mask1(4);
  dataset.read(1, 0, 4, ids1.data(), mask1.data());
  EXPECT_EQ(ids1, (std::vector<int32_t>{'a', 'b', 'c', 256}));
  EXPECT_EQ(mask1, (std::vector<int32_t>{0, 0, 1, 1}));
  EXPECT_EQ(p.stats.trained_tokens, static_cast<int64_t>(text.size() - reply) + 2);
  EXPECT_TRUE(is_sft_dataset(p.prefix));
}

TEST(SftPrepare, TextFilesAndJsonArraysAreRecordsToo) {
  const std::string dir = test::scratch_dir();
  auto text = write(dir, "book.txt", "xy");
  auto array = write(dir, "list.json", R"([{"instruction": "i", "output": "o"}, "plain"])");
  auto p = prepare(dir, {text, array});
  EXPECT_EQ(p.stats.samples, 3);
  EXPECT_EQ(p.stats.by_format[static_cast<int>(SftFormat::text)], 2);
  EXPECT_EQ(p.stats.by_format[static_cast<int>(SftFormat::alpaca)], 1);
  SftDataset dataset(p.prefix);
  std::vector<int32_t> ids(3), mask(3);
  dataset.read(0, 0, 3, ids.data(), mask.data());
  EXPECT_EQ(ids, (std::vector<int32_t>{'x', 'y', 256}));  // the text file, with EOS
  EXPECT_EQ(mask, (std::vector<int32_t>{1, 1, 1}));
}

TEST(SftPrepare, BadRecordStopsWithFileLineAndField) {
  const std::string dir = test::scratch_dir();
  auto input = write(dir, "bad.jsonl",
                     R"({"text": "fine"})" "\n"
                     R"({"text": "also fine"})" "\n"
                     R"({"messages": [{"role": "user", "content": "q"}, {"role": "assistant"}]})" "\n");
  std::string message = test::error_of([&] { prepare(dir, {input}); });
  EXPECT_EQ(message, input + ":3: missing field \"messages[1].content\"");
  EXPECT_FALSE(std::ifstream(dir + "/out/sft.idx").good());  // nothing written

  auto array = write(dir, "bad.json", "[\n {\"text\": \"a\"},\n {\"instruction\": 3, \"output\": \"x\"}\n]\n");
  message = test::error_of([&] { prepare(dir, {array}); });
  EXPECT_EQ(message, array + ":3: element 1: field \"instruction\" is a number, not a string");
}

TEST(SftPrepare, SkipBadCountsTheSkippedRecords) {
  const std::string dir = test::scratch_dir();
  auto input = write(dir, "mixed.jsonl",
                     R"({"text": "one"})" "\n"
                     "not json\n"
                     R"({"conversations": [{"from": "human", "value": "q"}]})" "\n"
                     R"({"text": "two"})" "\n"
                     R"({"prompt": "p"})" "\n");
  SftPrepareOptions options;
  options.skip_bad = true;
  auto p = prepare(dir, {input}, options);
  EXPECT_EQ(p.stats.samples, 2);
  EXPECT_EQ(p.stats.skipped, 3);
  ASSERT_EQ(p.stats.skipped_examples.size(), 3u);
  EXPECT_EQ(p.stats.skipped_examples[0].substr(0, input.size() + 3), input + ":2:");
  EXPECT_EQ(p.stats.skipped_examples[1], input + ":3: field \"conversations\" has no assistant message (nothing to train on)");
  EXPECT_EQ(p.stats.skipped_examples[2], input + ":5: missing field \"completion\"");
}

TEST(SftPrepare, OverlongSamplesAreTruncatedOrDroppedAndCounted) {
  const std::string dir = test::scratch_dir();
  auto input = write(dir, "long.jsonl",
                     R"({"text": "abcdefghij"})" "\n"  // 11 tokens with EOS
                     R"({"text": "abc"})" "\n"         // 4
                     R"({"prompt": "abcdefghij", "completion": "k"})" "\n");  // 12, trained from 10 on
  SftPrepareOptions options;
  options.max_length = 6;
  auto p = prepare(dir, {input}, options);
  EXPECT_EQ(p.stats.truncated, 2);
  EXPECT_EQ(p.stats.dropped_untrained, 1);  // the completion was cut off
  EXPECT_EQ(p.stats.samples, 2);
  SftDataset dataset(p.prefix);
  EXPECT_EQ(dataset.length(0), 6);
  EXPECT_EQ(dataset.length(1), 4);

  options.overlong = Overlong::drop;
  p = prepare(dir, {input}, options);
  EXPECT_EQ(p.stats.dropped_overlong, 2);
  EXPECT_EQ(p.stats.samples, 1);
}

TEST(SftDataset, MaskThatDisagreesWithTheIdsIsRefused) {
  const std::string dir = test::scratch_dir();
  {
    SftDatasetWriter writer(dir + "/a", TokenDType::uint16);
    writer.add({{1, 2, 3}, {0, 1, 1}});
    writer.finish();
    IndexedDatasetWriter other(dir + "/b", TokenDType::uint16);
    other.add_document(std::vector<int32_t>{1, 2});
    other.finish();
  }
  std::filesystem::rename(dir + "/b.idx", dir + "/a.idx");
  std::filesystem::rename(dir + "/b.bin", dir + "/a.bin");
  std::string message = test::error_of([&] { SftDataset dataset(dir + "/a"); });
  EXPECT_NE(message.find("sample 0 has 2 tokens but its mask"), std::string::npos) << message;
}

}  // namespace
}  // namespace forma::data
