// Streaming text: incomplete UTF-8 and possible stop-string prefixes are held back, stop strings
// are cut, and the streamed pieces reassemble to the final text. Checked by hand on byte pieces.
#include "forma/infer/text_stream.h"

#include <gtest/gtest.h>

#include "forma/core/error.h"
#include "piece_tokenizer.h"

namespace forma::infer {
namespace {

using test::PieceTokenizer;

// Pushes ids 1..n and returns the piece each push produced, then the piece finish() produced.
std::vector<std::string> stream_all(TextStream& stream, int32_t n) {
  std::vector<std::string> pieces;
  for (int32_t id = 1; id <= n && !stream.stopped(); ++id) pieces.push_back(stream.push(id));
  pieces.push_back(stream.finish());
  return pieces;
}

std::string concat(const std::vector<std::string>& pieces) {
  std::string out;
  for (const auto& p : pieces) out += p;
  return out;
}

TEST(TextStream, CompleteUtf8Prefix) {
  EXPECT_EQ(complete_utf8_prefix(""), 0u);
  EXPECT_EQ(complete_utf8_prefix("abc"), 3u);
  EXPECT_EQ(complete_utf8_prefix("a\xC3\xA9"), 3u);        // é complete
  EXPECT_EQ(complete_utf8_prefix("a\xC3"), 1u);            // é missing 1 byte
  EXPECT_EQ(complete_utf8_prefix("a\xE2\x82"), 1u);        // € missing 1 byte
  EXPECT_EQ(complete_utf8_prefix("a\xE2\x82\xAC"), 4u);    // € complete
  EXPECT_EQ(complete_utf8_prefix("\xF0\x9F\x98"), 0u);     // 4-byte emoji missing 1 byte
  EXPECT_EQ(complete_utf8_prefix("\xF0\x9F\x98\x80"), 4u);
  EXPECT_EQ(complete_utf8_prefix("a\x82"), 2u);  // stray continuation byte: never completes, shown
}

TEST(TextStream, HoldsBackACharacterSplitOverTokens) {
  PieceTokenizer tok(8, {{1, "a"}, {2, "\xE2"}, {3, "\x82"}, {4, "\xAC"}, {5, "b"}});
  TextStream stream(tok, {});
  EXPECT_EQ(stream_all(stream, 5), (std::vector<std::string>{"a", "", "", "\xE2\x82\xAC", "b", ""}));
  EXPECT_EQ(stream.text(), "a\xE2\x82\xAC" "b");
}

TEST(TextStream, FinishReleasesIncompleteBytesAsTheDecoderGaveThem) {
  PieceTokenizer tok(4, {{1, "a"}, {2, "\xE2"}});
  TextStream stream(tok, {});
  EXPECT_EQ(stream_all(stream, 2), (std::vector<std::string>{"a", "", "\xE2"}));
  EXPECT_EQ(stream.text(), "a\xE2");
}

TEST(TextStream, StopStringAcrossTokensIsHeldBackThenCut) {
  PieceTokenizer tok(8, {{1, "ab"}, {2, "c<"}, {3, "/s"}, {4, ">d"}, {5, "never"}});
  TextStream stream(tok, {"</s>"});
  // "<" and "</s" could start "</s>": held back; "</s>" completes in token 4; "d" is cut with it.
  EXPECT_EQ(stream_all(stream, 5), (std::vector<std::string>{"ab", "c", "", "", ""}));
  EXPECT_TRUE(stream.stopped());
  EXPECT_EQ(stream.text(), "abc");
  EXPECT_THROW(stream.push(5), Error);
}

TEST(TextStream, HeldBackPrefixIsReleasedWhenItIsNoStopString) {
  PieceTokenizer tok(8, {{1, "ab"}, {2, "c<"}, {3, "/x"}});
  TextStream stream(tok, {"</s>"});
  auto pieces = stream_all(stream, 3);
  EXPECT_EQ(pieces, (std::vector<std::string>{"ab", "c", "</x", ""}));
  EXPECT_FALSE(stream.stopped());
  EXPECT_EQ(concat(pieces), stream.text());
}

TEST(TextStream, EarliestOfSeveralStopStringsInsideOneToken) {
  PieceTokenizer tok(4, {{1, "xy"}, {2, "abcdSTOPb"}});
  TextStream stream(tok, {"STOP", "cd"});
  auto pieces = stream_all(stream, 2);
  EXPECT_EQ(pieces, (std::vector<std::string>{"xy", "ab", ""}));
  EXPECT_EQ(stream.text(), "xyab");
}

TEST(TextStream, EmptyStopStringIsAnError) {
  PieceTokenizer tok(4, {});
  EXPECT_THROW(TextStream(tok, {"ok", ""}), Error);
}

}  // namespace
}  // namespace forma::infer
