// generate() against Hugging Face transformers' own greedy generation on every tiny fixture
// (tests/fixtures/hf-tiny: tokens and per-step logits written by HF v4.47.1), with and without the
// KV cache; seeding; EOS, stop strings and streaming with a test tokenizer whose pieces are known.
#include "forma/infer/generate.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "forma/core/error.h"
#include "forma/core/files.h"
#include "forma/data/utf8.h"
#include "forma/model/hf_io.h"
#include "forma/model/tensor_io.h"
#include "piece_tokenizer.h"
#include "test_paths.h"

namespace forma::infer {
namespace {

struct Reference {
  CausalLM model{nullptr};
  std::vector<int32_t> prompt;      // generation.sequence[:16] = inputs.input_ids[0]
  std::vector<int32_t> new_tokens;  // HF's 8 greedy tokens
  torch::Tensor step_logits;        // [8, V]: the raw logits of each greedy step
};

Reference load_reference(const std::string& arch) {
  const std::string dir = test::fixture("hf-tiny/" + arch);
  Reference r;
  r.model = load_pretrained(dir);
  auto json = nlohmann::json::parse(read_file(dir + "/reference.json"));
  r.new_tokens = json.at("generation").at("new_tokens").get<std::vector<int32_t>>();
  auto sequence = json.at("generation").at("sequence").get<std::vector<int32_t>>();
  r.prompt.assign(sequence.begin(), sequence.end() - static_cast<long>(r.new_tokens.size()));
  SafetensorsFile ref(dir + "/reference.safetensors");
  r.step_logits = tensor_from(ref, "generation.step_logits", LoadAs::Float32);
  return r;
}

GenerationConfig greedy(int64_t max_new_tokens, bool use_cache = true) {
  GenerationConfig config;
  config.max_new_tokens = max_new_tokens;
  config.sampling.temperature = 0.0;
  config.use_cache = use_cache;
  return config;
}

// Runs generate() and collects every step's raw logits as [steps, V].
GenerationResult run(Reference& r, const GenerationConfig& config, torch::Tensor* logits) {
  std::vector<torch::Tensor> rows;
  GenerationCallbacks callbacks;
  callbacks.on_token = [&](int32_t, const torch::Tensor& row) { rows.push_back(row.clone()); };
  auto result = generate(r.model, r.prompt, config, nullptr, callbacks);
  *logits = torch::stack(rows);
  return result;
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

class GenerateHf : public ::testing::TestWithParam<std::string> {};

TEST_P(GenerateHf, GreedyWithCacheMatchesHfTokensAndStepLogits) {
  Reference r = load_reference(GetParam());
  torch::Tensor logits;
  auto result = run(r, greedy(8), &logits);
  EXPECT_EQ(result.ids, r.new_tokens);
  EXPECT_EQ(result.stop_reason, StopReason::kMaxNewTokens);
  EXPECT_LT(max_abs_diff(logits, r.step_logits), 1e-4);
}

TEST_P(GenerateHf, GreedyWithoutCacheEqualsGreedyWithCache) {
  Reference r = load_reference(GetParam());
  torch::Tensor cached, uncached;
  auto with_cache = run(r, greedy(8, true), &cached);
  auto without_cache = run(r, greedy(8, false), &uncached);
  EXPECT_EQ(without_cache.ids, with_cache.ids);
  EXPECT_EQ(without_cache.ids, r.new_tokens);
  EXPECT_LT(max_abs_diff(uncached, cached), 1e-4);
  EXPECT_LT(max_abs_diff(uncached, r.step_logits), 1e-4);
}

TEST_P(GenerateHf, SameSeedSameSampledTokensDifferentSeedDifferent) {
  Reference r = load_reference(GetParam());
  GenerationConfig config;
  config.max_new_tokens = 12;
  config.sampling.temperature = 2.0;  // flatten the tiny model's distribution
  auto sample = [&](uint64_t seed) {
    config.seed = seed;
    return generate(r.model, r.prompt, config).ids;
  };
  auto first = sample(11);
  EXPECT_EQ(sample(11), first);
  EXPECT_NE(sample(12), first);
}

INSTANTIATE_TEST_SUITE_P(All, GenerateHf,
                         ::testing::Values("gpt2", "llama", "llama3_rope", "mistral", "qwen2", "mixtral"));

// llama's greedy continuation is 169, 308, 131, 132, 120, 220, 161, 24 (all different), so a
// tokenizer that gives those ids chosen pieces makes the generated text known in advance.
class GenerateText : public ::testing::Test {
 protected:
  void SetUp() override { r = load_reference("llama"); }
  Reference r;
};

TEST_F(GenerateText, StopStringAcrossTokensStopsAndIsCut) {
  test::PieceTokenizer tok(320, {{169, "He"}, {308, "llo"}, {131, " wor"}, {132, "ld"}});
  auto config = greedy(8);
  config.stop_strings = {"o w"};  // spans tokens 308 and 131
  std::string streamed;
  GenerationCallbacks callbacks;
  callbacks.on_text = [&](std::string_view piece) { streamed += piece; };
  auto result = generate(r.model, r.prompt, config, &tok, callbacks);
  EXPECT_EQ(result.ids, (std::vector<int32_t>{169, 308, 131}));
  EXPECT_EQ(result.text, "Hell");
  EXPECT_EQ(streamed, "Hell");
  EXPECT_EQ(result.stop_reason, StopReason::kStopString);
}

TEST_F(GenerateText, EosStopsAndIsKeptInIdsButNotInText) {
  test::PieceTokenizer tok(320, {{169, "He"}, {308, "llo"}, {131, " wor"}, {132, "ld"}});
  auto config = greedy(8);
  config.eos_ids = {2, 132};
  auto result = generate(r.model, r.prompt, config, &tok);
  EXPECT_EQ(result.ids, (std::vector<int32_t>{169, 308, 131, 132}));
  EXPECT_EQ(result.text, "Hello wor");
  EXPECT_EQ(result.stop_reason, StopReason::kEos);
}

TEST_F(GenerateText, StreamingHoldsBackSplitCharactersAndReassemblesToTheText) {
  // € = E2 82 AC over three tokens, 😀 = F0 9F 98 80 over three.
  test::PieceTokenizer tok(320, {{169, "h"}, {308, "\xE2"}, {131, "\x82"}, {132, "\xAC"},
                                 {120, "\xF0"}, {220, "\x9F\x98"}, {161, "\x80"}, {24, "!"}});
  std::vector<std::string> pieces;
  GenerationCallbacks callbacks;
  callbacks.on_text = [&](std::string_view piece) { pieces.emplace_back(piece); };
  auto result = generate(r.model, r.prompt, greedy(8), &tok, callbacks);
  EXPECT_EQ(result.text, "h\xE2\x82\xAC\xF0\x9F\x98\x80!");
  EXPECT_EQ(pieces, (std::vector<std::string>{"h", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "!"}));
  std::string joined;
  for (const auto& piece : pieces) {
    EXPECT_EQ(data::find_invalid_utf8(piece), std::string_view::npos) << piece;
    joined += piece;
  }
  EXPECT_EQ(joined, result.text);
}

TEST_F(GenerateText, StopsAtTheModelsContextLength) {
  // max_position_embeddings is 64 and the prompt has 16 tokens: at most 48 new ones.
  auto result = generate(r.model, r.prompt, greedy(100));
  EXPECT_EQ(result.ids.size(), 48u);
  EXPECT_EQ(result.stop_reason, StopReason::kContextLength);
}

TEST_F(GenerateText, BadInputsAreErrors) {
  EXPECT_THROW(generate(r.model, {}, greedy(4)), Error);
  EXPECT_THROW(generate(r.model, {1, 320}, greedy(4)), Error);  // vocabulary is 320
  EXPECT_THROW(generate(r.model, std::vector<int32_t>(64, 1), greedy(4)), Error);
  auto config = greedy(4);
  config.stop_strings = {"x"};
  EXPECT_THROW(generate(r.model, {1, 2}, config), Error);  // stop strings without a tokenizer
  config = greedy(0);
  EXPECT_THROW(generate(r.model, {1, 2}, config), Error);
}

}  // namespace
}  // namespace forma::infer
