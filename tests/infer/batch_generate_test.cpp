// generate_batch() against generate(): 16 prompts of different lengths (and different budgets, so
// rows leave the batch at different steps) must come back token for token as 16 single runs, on
// every tiny fixture (learned positions, RoPE, a sliding window, GQA, MoE); Hugging Face's own
// greedy continuation must appear for its prompt inside a batch; sampled rows equal single runs
// with the same seed; EOS and stop strings end rows as they end single runs.
#include "forma/infer/batch_generate.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "forma/core/error.h"
#include "forma/core/files.h"
#include "forma/infer/memory_bandwidth.h"
#include "forma/model/hf_io.h"
#include "forma/model/tensor_io.h"
#include "piece_tokenizer.h"
#include "test_paths.h"

namespace forma::infer {
namespace {

// `count` prompts of pairwise different lengths in [1, 40], random ids from a fixed seed.
std::vector<std::vector<int32_t>> random_prompts(int count, int32_t vocab_size, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> token(0, vocab_size - 1);
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < count; ++i) {
    const int length = 1 + (i * 7) % 40;  // 1, 8, 15, ..., all different for i < 40
    std::vector<int32_t> prompt;
    for (int t = 0; t < length; ++t) prompt.push_back(token(rng));
    prompts.push_back(prompt);
  }
  return prompts;
}

GenerationConfig greedy_config(int64_t max_new_tokens) {
  GenerationConfig config;
  config.max_new_tokens = max_new_tokens;
  config.sampling.temperature = 0.0;
  return config;
}

// Each request run alone through generate(), the single-sequence engine.
std::vector<GenerationResult> single_runs(CausalLM& model, const std::vector<BatchRequest>& requests,
                                          const tok::Tokenizer* tokenizer = nullptr) {
  std::vector<GenerationResult> results;
  for (const auto& request : requests) {
    results.push_back(generate(model, request.prompt_ids, request.config, tokenizer));
  }
  return results;
}

void expect_same_results(const std::vector<GenerationResult>& batched, const std::vector<GenerationResult>& single) {
  ASSERT_EQ(batched.size(), single.size());
  for (size_t i = 0; i < single.size(); ++i) {
    EXPECT_EQ(batched[i].ids, single[i].ids) << "request " << i;
    EXPECT_EQ(batched[i].text, single[i].text) << "request " << i;
    EXPECT_EQ(batched[i].stop_reason, single[i].stop_reason) << "request " << i;
  }
}

class BatchedGreedy : public ::testing::TestWithParam<std::string> {};

TEST_P(BatchedGreedy, SixteenPromptsEqualSixteenSingleRunsTokenForToken) {
  CausalLM model = load_pretrained(test::fixture(GetParam()));
  auto prompts = random_prompts(16, static_cast<int32_t>(model->config().vocab_size), 7);
  std::vector<BatchRequest> requests;
  std::vector<std::vector<torch::Tensor>> batched_logits(prompts.size());
  size_t longest = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (prompts[i].size() > prompts[longest].size()) longest = i;
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    BatchRequest request;
    request.prompt_ids = prompts[i];
    // Budgets 2..12: rows leave the batch at different steps. The longest prompt stops first, so
    // the padding shared by all remaining rows is dropped from the cache.
    request.config = greedy_config(i == longest ? 2 : 4 + static_cast<int64_t>(i % 9));
    request.callbacks.on_token = [&batched_logits, i](int32_t, const torch::Tensor& logits) {
      batched_logits[i].push_back(logits.clone());
    };
    requests.push_back(request);
  }
  auto batched = generate_batch(model, requests);
  auto single = single_runs(model, requests);
  expect_same_results(batched, single);
  // The logits behind each token agree with the single run's to rounding.
  for (size_t i = 0; i < requests.size(); ++i) {
    std::vector<torch::Tensor> single_logits;
    GenerationCallbacks callbacks;
    callbacks.on_token = [&](int32_t, const torch::Tensor& logits) { single_logits.push_back(logits.clone()); };
    generate(model, requests[i].prompt_ids, requests[i].config, nullptr, callbacks);
    ASSERT_EQ(batched_logits[i].size(), single_logits.size());
    double diff = (torch::stack(batched_logits[i]) - torch::stack(single_logits)).abs().max().item<double>();
    EXPECT_LT(diff, 1e-4) << "request " << i;
  }
}

TEST_P(BatchedGreedy, HfReferenceContinuationInsideABatch) {
  const std::string dir = test::fixture(GetParam());
  CausalLM model = load_pretrained(dir);
  auto json = nlohmann::json::parse(read_file(dir + "/reference.json"));
  auto new_tokens = json.at("generation").at("new_tokens").get<std::vector<int32_t>>();
  auto sequence = json.at("generation").at("sequence").get<std::vector<int32_t>>();
  std::vector<int32_t> prompt(sequence.begin(), sequence.end() - static_cast<long>(new_tokens.size()));
  SafetensorsFile reference(dir + "/reference.safetensors");
  torch::Tensor step_logits = tensor_from(reference, "generation.step_logits", LoadAs::Float32);

  // The HF prompt (16 tokens) among 15 others of 1..38 tokens: it is left-padded by 22 positions.
  std::vector<BatchRequest> requests;
  for (auto& other : random_prompts(15, static_cast<int32_t>(model->config().vocab_size), 3)) {
    requests.push_back({other, greedy_config(10), {}, ""});
  }
  std::vector<torch::Tensor> logits;
  BatchRequest hf{prompt, greedy_config(static_cast<int64_t>(new_tokens.size())), {}, ""};
  hf.callbacks.on_token = [&](int32_t, const torch::Tensor& row) { logits.push_back(row.clone()); };
  requests.insert(requests.begin() + 7, hf);

  auto results = generate_batch(model, requests);
  EXPECT_EQ(results[7].ids, new_tokens);
  EXPECT_LT((torch::stack(logits) - step_logits).abs().max().item<double>(), 1e-4);
}

// qwen2_sliding (hf-zoo): full and sliding-window layers in one model; gemma2: soft-capped
// attention (always the explicit kernel) on left-padded rows; gemma3: the sliding layers' own RoPE
// at per-row positions.
INSTANTIATE_TEST_SUITE_P(All, BatchedGreedy,
                         ::testing::Values("hf-tiny/llama", "hf-tiny/mixtral", "hf-tiny/gpt2", "hf-tiny/mistral",
                                           "hf-tiny/qwen2", "hf-tiny/llama3_rope", "hf-zoo/qwen2_sliding",
                                           "hf-zoo/gemma2", "hf-zoo/gemma3"));

TEST(BatchedSampling, EachRowDrawsWhatItDrawsAloneWithItsSeed) {
  CausalLM model = load_pretrained(test::fixture("hf-tiny/llama"));
  auto prompts = random_prompts(6, 320, 11);
  std::vector<BatchRequest> requests;
  for (size_t i = 0; i < prompts.size(); ++i) {
    GenerationConfig config;
    config.max_new_tokens = 10;
    config.sampling.temperature = 1.5;
    config.sampling.top_k = i % 2 ? 40 : 0;
    config.sampling.top_p = 0.95;
    config.sampling.repetition_penalty = 1.2;
    config.seed = 100 + i;
    requests.push_back({prompts[i], config, {}, ""});
  }
  const BatchRequest first = requests[0];
  requests.push_back(first);  // the same prompt and seed twice in one batch: the same draws
  auto batched = generate_batch(model, requests);
  expect_same_results(batched, single_runs(model, requests));
  EXPECT_EQ(batched.back().ids, batched.front().ids);
  EXPECT_NE(batched[1].ids, batched[0].ids);
}

TEST(BatchedStops, EosAndStopStringsEndRowsAsTheyEndSingleRuns) {
  CausalLM model = load_pretrained(test::fixture("hf-tiny/llama"));
  // Every id decodes to "<id>", so a stop string can span the text of two tokens.
  test::PieceTokenizer tokenizer(320, {});
  auto prompts = random_prompts(8, 320, 5);
  std::vector<BatchRequest> requests;
  for (auto& prompt : prompts) requests.push_back({prompt, greedy_config(12), {}, ""});
  // Stop rules taken from each row's own free-running output, so that they do fire mid-way.
  auto free_running = single_runs(model, requests, &tokenizer);
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto& ids = free_running[i].ids;
    if (i % 3 == 0) requests[i].config.eos_ids = {ids[3]};
    if (i % 3 == 1) requests[i].config.stop_strings = {std::to_string(ids[4]) + "><" + std::to_string(ids[5])};
  }
  auto batched = generate_batch(model, requests, &tokenizer);
  auto single = single_runs(model, requests, &tokenizer);
  expect_same_results(batched, single);
  for (size_t i = 0; i < requests.size(); ++i) {
    if (i % 3 == 0) {
      EXPECT_EQ(batched[i].stop_reason, StopReason::kEos) << i;
    } else if (i % 3 == 1) {
      EXPECT_EQ(batched[i].stop_reason, StopReason::kStopString) << i;
    } else {
      EXPECT_EQ(batched[i].ids, free_running[i].ids) << i;
    }
  }
}

TEST(BatchedChunks, ManyPromptsInSmallBatchesComeBackInRequestOrder) {
  CausalLM model = load_pretrained(test::fixture("hf-tiny/qwen2"));
  auto prompts = random_prompts(9, 320, 2);
  std::vector<BatchRequest> requests;
  for (auto& prompt : prompts) requests.push_back({prompt, greedy_config(5), {}, ""});
  BatchTimings timings;
  auto batched = generate_batches(model, requests, 4, nullptr, &timings);
  expect_same_results(batched, single_runs(model, requests));
  int64_t prompt_tokens = 0;
  for (auto& prompt : prompts) prompt_tokens += static_cast<int64_t>(prompt.size());
  EXPECT_EQ(timings.prompt_tokens, prompt_tokens);
  EXPECT_EQ(timings.generated_tokens, 9 * 5);
  EXPECT_EQ(timings.decode_forwards, 3 * 4);  // three batches, 4 one-token forwards each
}

TEST(BatchedErrors, BadRequestsNameTheirLabel) {
  CausalLM model = load_pretrained(test::fixture("hf-tiny/llama"));
  std::vector<BatchRequest> requests = {{{1, 2, 3}, greedy_config(4), {}, "prompts.jsonl:1"},
                                        {{1, 999}, greedy_config(4), {}, "prompts.jsonl:2"}};
  try {
    generate_batch(model, requests);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("prompts.jsonl:2: "), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("999"), std::string::npos) << e.what();
  }
  requests[1] = {std::vector<int32_t>(64, 5), greedy_config(4), {}, ""};  // as long as the context
  try {
    generate_batch(model, requests);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("request 2: "), std::string::npos) << e.what();
  }
  EXPECT_THROW(generate_batch(model, {}), Error);
}

TEST(BenchFigures, WeightBytesPerStepCountEveryWeightOnceAndTheRowsEmbeddings) {
  CausalLM model(load_model_config("tiny-llama"), torch::kBFloat16);  // untied, 4096 x 256 embedding
  int64_t all = 0;
  for (const auto& p : model->parameters()) all += p.numel() * 2;
  const int64_t table = 4096 * 256 * 2, row = 256 * 2;
  EXPECT_EQ(weight_bytes_per_step(model, 1), all - table + row);
  EXPECT_EQ(weight_bytes_per_step(model, 16), all - table + 16 * row);
}

}  // namespace
}  // namespace forma::infer
