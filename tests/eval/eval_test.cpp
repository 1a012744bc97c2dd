// Evaluation tasks with hand-made scorers whose scores are computed on paper, and the model scorer
// against Hugging Face's reference loss.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>

#include "forma/core/error.h"
#include "forma/eval/choice_tasks.h"
#include "forma/eval/perplexity.h"
#include "forma/eval/task_file.h"
#include "forma/model/hf_io.h"
#include "forma/model/tensor_io.h"
#include "test_paths.h"

namespace {

using namespace forma::eval;

// id = byte value; EOS = 256.
class ByteTokenizer : public forma::tok::Tokenizer {
 public:
  std::vector<int32_t> encode(std::string_view text, bool) const override {
    std::vector<int32_t> ids;
    for (unsigned char c : text) ids.push_back(c);
    return ids;
  }
  std::string decode(const std::vector<int32_t>& ids, bool) const override {
    std::string s;
    for (int32_t id : ids)
      if (id < 256) s += static_cast<char>(id);
    return s;
  }
  int32_t vocab_size() const override { return 257; }
  std::optional<int32_t> token_to_id(std::string_view) const override { return std::nullopt; }
  std::string id_to_token(int32_t id) const override { return std::string(1, static_cast<char>(id)); }
  std::optional<int32_t> bos_id() const override { return std::nullopt; }
  std::optional<int32_t> eos_id() const override { return 256; }
};

// log p of a token depends only on the token (a table), and every call is recorded.
class TableScorer : public Scorer {
 public:
  std::map<int32_t, double> table;
  double otherwise = -1.0;
  int64_t window = 1000;
  std::vector<std::pair<std::vector<int32_t>, std::vector<int32_t>>> calls;
  std::vector<double> continuation_logprobs(const std::vector<int32_t>& context,
                                            const std::vector<int32_t>& continuation) override {
    calls.emplace_back(context, continuation);
    std::vector<double> out;
    for (int32_t t : continuation) out.push_back(table.count(t) ? table[t] : otherwise);
    return out;
  }
  int64_t max_length() const override { return window; }
};

std::string write_file(const std::string& name, const std::string& text) {
  std::string path = forma::test::scratch_dir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

}  // namespace

TEST(Perplexity, RollingWindowsByHand) {
  TableScorer scorer;
  // s = [0,1,2,3,4,5], max_length 3, stride 2: windows predict {1,2}, {3,4}, {5}.
  double ll = rolling_loglikelihood(scorer, 0, {1, 2, 3, 4, 5}, {3, 2});
  EXPECT_DOUBLE_EQ(ll, -5.0);
  ASSERT_EQ(scorer.calls.size(), 3u);
  EXPECT_EQ(scorer.calls[0].first, (std::vector<int32_t>{0}));
  EXPECT_EQ(scorer.calls[0].second, (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(scorer.calls[1].first, (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(scorer.calls[1].second, (std::vector<int32_t>{3, 4}));
  EXPECT_EQ(scorer.calls[2].first, (std::vector<int32_t>{2, 3, 4}));
  EXPECT_EQ(scorer.calls[2].second, (std::vector<int32_t>{5}));
}

TEST(Perplexity, MetricsByHand) {
  TableScorer scorer;  // every token: log p = -1
  ByteTokenizer tok;
  auto r = document_perplexity(scorer, tok, "ab cd", {});
  EXPECT_EQ(r.tokens, 5);
  EXPECT_EQ(r.words, 2);
  EXPECT_EQ(r.bytes, 5);
  EXPECT_NEAR(r.token_perplexity(), std::exp(1.0), 1e-12);
  EXPECT_NEAR(r.word_perplexity(), std::exp(2.5), 1e-12);
  EXPECT_NEAR(r.byte_perplexity(), std::exp(1.0), 1e-12);
  EXPECT_NEAR(r.bits_per_byte(), 1.0 / std::log(2.0), 1e-12);
}

TEST(MultipleChoice, AccAndAccNormByHand) {
  TableScorer scorer;
  scorer.table = {{'a', -0.2}, {'b', -1.0}, {' ', -0.05}};
  ByteTokenizer tok;
  // Example 1: " aaaaaaaaaa" ll = -2.05 (norm -2.05/10 = -0.205), " b" ll = -1.05 (norm -1.05):
  // acc picks b (wrong), acc_norm picks the a's (gold). Example 2: both pick choice 0 = gold.
  std::string path = write_file("mc.jsonl",
                                "{\"context\": \"Q:\", \"choices\": [\"aaaaaaaaaa\", \"b\"], \"gold\": 0}\n\n"
                                "{\"context\": \"Q:\", \"choices\": [\"a\", \"b\"], \"gold\": 0}\n");
  auto score = run_multiple_choice(scorer, tok, path, 0);
  EXPECT_EQ(score.examples, 2);
  EXPECT_DOUBLE_EQ(score.metrics[0].second, 0.5);  // acc
  EXPECT_DOUBLE_EQ(score.metrics[1].second, 1.0);  // acc_norm
  EXPECT_EQ(run_multiple_choice(scorer, tok, path, 1).examples, 1);  // --limit
}

// lm-evaluation-harness's acc_norm divides by the length of the choice itself (len(choice) in
// Python, characters), not of the continuation with its delimiter. Here the two disagree:
// " a" = -6 - 1 = -7, " bb" = -6 - 3 - 3 = -12. Own lengths: -7/1 < -12/2 = -6, so choice 1;
// with the delimiter: -7/2 = -3.5 > -12/3 = -4, which would pick choice 0.
TEST(MultipleChoice, AccNormDividesByTheChoiceWithoutTheDelimiter) {
  TableScorer scorer;
  scorer.table = {{' ', -6.0}, {'a', -1.0}, {'b', -3.0}};
  ByteTokenizer tok;
  std::string path = write_file("norm.jsonl", "{\"context\": \"Q:\", \"choices\": [\"a\", \"bb\"], \"gold\": 1}\n");
  auto score = run_multiple_choice(scorer, tok, path, 0);
  EXPECT_DOUBLE_EQ(score.metrics[0].second, 0.0);  // acc: -7 > -12 picks choice 0
  EXPECT_DOUBLE_EQ(score.metrics[1].second, 1.0);  // acc_norm picks choice 1
}

TEST(MultipleChoice, TrailingSpacesMoveToTheContinuation) {
  TableScorer a, b;
  ByteTokenizer tok;
  loglikelihood(a, tok, "Q: ", "b");
  loglikelihood(b, tok, "Q:", " b");
  EXPECT_EQ(a.calls, b.calls);
  EXPECT_EQ(a.calls[0].second, (std::vector<int32_t>{' ', 'b'}));
}

TEST(MultipleChoice, MalformedLinesAreNamed) {
  TableScorer scorer;
  ByteTokenizer tok;
  auto expect_error = [&](const std::string& text, const std::string& needle) {
    std::string path = write_file("bad.jsonl", text);
    try {
      run_multiple_choice(scorer, tok, path, 0);
      ADD_FAILURE() << "no error for " << text;
    } catch (const forma::Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  std::string good = "{\"context\": \"x\", \"choices\": [\"a\"], \"gold\": 0}\n";
  expect_error(good + "{\"context\": \"x\", \"choices\": [\"a\"]\n", "bad.jsonl:2: not valid JSON");
  expect_error(good + good + "{\"context\": \"x\", \"choices\": [\"a\"]}\n", "bad.jsonl:3: missing field \"gold\"");
  expect_error("{\"context\": \"x\", \"choices\": [\"a\"], \"gold\": 3}\n", "bad.jsonl:1: \"gold\" 3");
  expect_error("{\"context\": 5, \"choices\": [\"a\"], \"gold\": 0}\n", "bad.jsonl:1: field \"context\" must be a string");
}

TEST(ExactMatch, NormalisedAnswers) {
  EXPECT_EQ(normalize_answer("  The  Quick, brown fox!"), "quick brown fox");
  std::string path = write_file("em.jsonl",
                                "{\"prompt\": \"capital of France?\", \"answer\": \"Paris\"}\n"
                                "{\"prompt\": \"2+2?\", \"answers\": [\"four\", \"4\"]}\n"
                                "{\"prompt\": \"color of the sky?\", \"answer\": \"blue\"}\n");
  auto score = run_exact_match([](const std::string& p) {
    return p == "capital of France?" ? " paris." : p == "2+2?" ? "4" : "green";
  }, path, 0);
  EXPECT_EQ(score.examples, 3);
  EXPECT_NEAR(score.metrics[0].second, 2.0 / 3.0, 1e-12);
}

TEST(ModelScorer, MatchesHuggingFaceLoss) {
  auto model = forma::load_pretrained(forma::test::fixture("hf-tiny/llama"));
  auto ref = forma::load_tensors(forma::test::fixture("hf-tiny/llama/reference.safetensors"));
  auto ids = ref.at("input_ids");  // [2, 16]
  ModelScorer scorer(*model);
  double total = 0;
  for (int64_t row = 0; row < 2; ++row) {
    std::vector<int32_t> seq;
    for (int64_t t = 0; t < 16; ++t) seq.push_back(static_cast<int32_t>(ids[row][t].item<int64_t>()));
    auto lps = scorer.continuation_logprobs({seq[0]}, std::vector<int32_t>(seq.begin() + 1, seq.end()));
    ASSERT_EQ(lps.size(), 15u);
    for (double lp : lps) total += lp;
  }
  EXPECT_NEAR(-total / 30.0, ref.at("loss").item<double>(), 1e-5);
}
