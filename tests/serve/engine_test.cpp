// The serving engine against independent references: infer::generate (the single-sequence
// decoder over a contiguous cache), the forma CLI, Hugging Face's own greedy continuation from the
// fixture, and log_softmax of one plain full forward. Busy batches mix arrivals at different
// steps, chunked prefills (prompts longer than prefill_chunk) and different budgets; a small
// kv_cache_tokens forces preemption; prefix reuse is observed in stats and cached_prompt_tokens.
#include "forma/serve/engine.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "engine_harness.h"
#include "forma/core/files.h"
#include "forma/model/hf_io.h"
#include "test_paths.h"

namespace forma::serve {
namespace {

using namespace test_engine;

// Prompts of lengths 1..38 and budgets 3..12 over the fixture's vocabulary.
std::vector<EngineRequest> mixed_greedy_requests(int count, uint64_t seed) {
  std::vector<EngineRequest> requests;
  for (int i = 0; i < count; ++i) {
    const int64_t length = 1 + (i * 11) % 38;
    requests.push_back(request_of(random_ids(length, 320, seed + i), greedy(3 + i % 10)));
  }
  return requests;
}

std::vector<int> staggered(size_t count) {
  std::vector<int> arrival;
  for (size_t i = 0; i < count; ++i) arrival.push_back(static_cast<int>((i * 3) % 7));
  return arrival;
}

class EngineGreedy : public ::testing::TestWithParam<std::string> {};

TEST_P(EngineGreedy, BusyBatchEqualsAloneEqualsGenerate) {
  CausalLM model = load_pretrained(test::fixture("hf-tiny/" + GetParam()));
  auto requests = mixed_greedy_requests(12, 5);
  EngineOptions options;
  options.max_batch = 5;
  options.block_size = 4;
  options.prefill_chunk = 8;  // prompts over 8 tokens are prefilled in chunks
  Engine engine(model, nullptr, options);
  auto busy = serve(engine, requests, staggered(requests.size()));
  for (size_t i = 0; i < requests.size(); ++i) {
    auto expected = infer::generate(model, requests[i].prompt_ids, requests[i].config);
    auto alone = serve_alone(model, requests[i]);
    ASSERT_TRUE(busy[i].finished && alone.finished) << "request " << i;
    EXPECT_EQ(busy[i].finish_calls, 1);
    EXPECT_EQ(busy[i].finished->result.ids, expected.ids) << "request " << i;
    EXPECT_EQ(alone.finished->result.ids, expected.ids) << "request " << i;
    EXPECT_EQ(busy[i].finished->result.stop_reason, expected.stop_reason) << "request " << i;
    std::vector<int32_t> streamed;
    for (const auto& e : busy[i].tokens) streamed.push_back(e.id);
    EXPECT_EQ(streamed, expected.ids) << "request " << i;
  }
  EXPECT_EQ(engine.stats().kv_blocks_used, 0);
}

TEST_P(EngineGreedy, HfReferenceContinuationInABusyBatch) {
  const std::string dir = test::fixture("hf-tiny/" + GetParam());
  CausalLM model = load_pretrained(dir);
  auto json = nlohmann::json::parse(read_file(dir + "/reference.json"));
  auto new_tokens = json.at("generation").at("new_tokens").get<std::vector<int32_t>>();
  auto sequence = json.at("generation").at("sequence").get<std::vector<int32_t>>();
  std::vector<int32_t> prompt(sequence.begin(), sequence.end() - static_cast<long>(new_tokens.size()));
  auto requests = mixed_greedy_requests(6, 9);
  requests.insert(requests.begin() + 3, request_of(prompt, greedy(static_cast<int64_t>(new_tokens.size()))));
  EngineOptions options;
  options.max_batch = 4;
  options.block_size = 4;
  options.prefill_chunk = 5;
  Engine engine(model, nullptr, options);
  auto outcomes = serve(engine, requests, staggered(requests.size()));
  ASSERT_TRUE(outcomes[3].finished);
  EXPECT_EQ(outcomes[3].finished->result.ids, new_tokens);
}

INSTANTIATE_TEST_SUITE_P(All, EngineGreedy, ::testing::Values("llama", "mistral", "qwen2", "gpt2", "mixtral"));

TEST(EngineCli, AloneEqualsFormaGenerate) {
  const std::string dir = test::fixture("hf-tiny/llama");
  CausalLM model = load_pretrained(dir);
  std::vector<int32_t> prompt = {5, 17, 42, 99, 3, 250, 7, 8, 61, 12, 140};
  auto alone = serve_alone(model, request_of(prompt, greedy(9)));
  std::string ids;
  for (int32_t id : prompt) ids += (ids.empty() ? "" : ",") + std::to_string(id);
  ASSERT_TRUE(alone.finished);
  EXPECT_EQ(alone.finished->result.ids, test::greedy_ids(dir, ids, 9));
}

TEST(EngineChunkedPrefill, ALongPromptDoesNotStallADecodingRequest) {
  CausalLM model = load_pretrained(test::fixture("hf-tiny/llama"));
  EngineOptions options;
  options.block_size = 4;
  options.prefill_chunk = 8;
  Engine engine(model, nullptr, options);
  int decoded = 0, long_tokens = 0;
  auto short_request = request_of(random_ids(3, 320, 1), greedy(20));
  auto long_request = request_of(random_ids(40, 320, 2), greedy(2));
  std::optional<FinishedEvent> short_done, long_done;
  engine.submit(short_request, {[&](const TokenEvent&) { ++decoded; }, [&](const FinishedEvent& e) { short_done = e; }});
  while (decoded < 2) engine.step();
  engine.submit(long_request, {[&](const TokenEvent&) { ++long_tokens; }, [&](const FinishedEvent& e) { long_done = e; }});
  // 40 prompt tokens in chunks of 8: five steps, in each of which the short request decodes a token.
  for (int step = 1; step <= 5; ++step) {
    const int before = decoded;
    engine.step();
    EXPECT_EQ(decoded, before + 1) << "step " << step;
    EXPECT_EQ(long_tokens, step == 5 ? 1 : 0) << "step " << step;
  }
  while (!short_done || !long_done) engine.step();
  EXPECT_EQ(short_done->result.ids, infer::generate(model, short_request.prompt_ids, short_request.config).ids);
  EXPECT_EQ(long_done->result.ids, infer::generate(model, long_request.prompt_ids, long_request.config).ids);
}

TEST(EnginePreemption, SmallCacheForcesPreemptionAndOutputsAreUnchanged) {
  CausalLM model = load_pretrained(test::fixture("hf-tiny/llama"));
  std::vector<EngineRequest> requests;
  for (int i = 0; i < 8; ++i) requests.push_back(request_of(random_ids(10 + i, 320, 40 + i), greedy(14)));
  EngineOptions options;
  options.max_batch = 8;
  options.block_size = 4;
  options.kv_cache_tokens = 64;  // 8 sequences of ~30 tokens do not fit: some are preempted
  options.prefill_chunk = 16;
  Engine engine(model, nullptr, options);
  auto outcomes = serve(engine, requests);
  EXPECT_GT(engine.stats().preemptions, 0);
  for (size_t i = 0; i < requests.size(); ++i) {
    auto expected = infer::generate(model, requests[i].prompt_ids, requests[i].config);
    ASSERT_TRUE(outcomes[i].finished);
    EXPECT_EQ(outcomes[i].finished->result.ids, expected.ids) << "request " << i;
    EXPECT_EQ(outcomes[i].tokens.size(), expected.ids.size()) << "request " << i << ": each token reported once";
  }
  EXPECT_EQ(engine.stats().kv_blocks_used, 0);
}

// Multi-head latent attention (DeepSeek-V2 and V3, whose greedy decoding over the contiguous cache
// equals transformers' in the zoo suite) in the paged cache, where k and v have different widths:
// a busy batch with chunked prefills, and a cache small enough to preempt, answer as generate does.
TEST(EngineLatentAttention, BusyBatchAndPreemptionEqualGenerate) {
  for (const std::string name : {"deepseek_v2", "deepseek_v3"}) {
    CausalLM model = load_pretrained(test::fixture("hf-zoo/" + name));
    std::vector<EngineRequest> requests;
    for (int i = 0; i < 8; ++i) {
      requests.push_back(request_of(random_ids(1 + (i * 11) % 38, 256, 70 + i), greedy(3 + i % 10)));
    }
    for (const int64_t cache_tokens : {int64_t{0}, int64_t{48}}) {
      EngineOptions options;
      options.max_batch = 4;
      options.block_size = 4;
      options.prefill_chunk = 8;
      options.kv_cache_tokens = cache_tokens;  // 48: too few for four long requests at once
      Engine engine(model, nullptr, options);
      auto busy = serve(engine, requests, staggered(requests.size()));
      for (size_t i = 0; i < requests.size(); ++i) {
        auto expected = infer::generate(model, requests[i].prompt_ids, requests[i].config);
        ASSERT_TRUE(busy[i].finished) << name << " request " << i;
        EXPECT_EQ(busy[i].finished->result.ids, expected.ids) << name << " request " << i << " cache " << cache_tokens;
      }
      if (cache_tokens > 0) {
        EXPECT_GT(engine.stats().preemptions, 0) << name;
      }
      EXPECT_EQ(engine.stats().kv_blocks_used, 0) << name;
    }
  }
}

TEST(EnginePrefixCache, SharedPrefixBlocksAreReusedAndCounted) {
  CausalLM model = load_pretrained(test::fixture("hf-tiny/llama"));
  auto prefix = random_ids(20, 320, 77);
  auto with_suffix = [&](std::vector<int32_t> suffix) {
    auto ids = prefix;
    ids.insert(ids.end(), suffix.begin(), suffix.end());
    return ids;
  };
  EngineOptions options;
  options.block_size = 4;
  Engine engine(model, nullptr, options);
  auto first = serve(engine, {request_of(with_suffix({1, 2, 3}), greedy(6))}).front();
  ASSERT_TRUE(first.finished);
  EXPECT_EQ(first.finished->cached_prompt_tokens, 0);
  EXPECT_EQ(engine.stats().prefix_cache_hit_tokens, 0);
  EXPECT_GT(engine.stats().kv_blocks_cached, 0);

  // A different suffix: the 20 prefix tokens (5 full blocks) come from the cache.
  auto second_request = request_of(with_suffix({9, 8, 7}), greedy(6));
  auto second = serve(engine, {second_request}).front();
  ASSERT_TRUE(second.finished);
  EXPECT_EQ(second.finished->cached_prompt_tokens, 20);
  EXPECT_EQ(second.finished->prompt_tokens, 23);
  EXPECT_EQ(engine.stats().prefix_cache_hit_tokens, 20);
  EXPECT_EQ(second.finished->result.ids, infer::generate(model, second_request.prompt_ids, second_request.config).ids);

  // The prefix alone: its last token is always computed, so 4 of its 5 blocks are reused.
  auto third_request = request_of(prefix, greedy(6));
  auto third = serve(engine, {third_request}).front();
  EXPECT_EQ(third.finished->cached_prompt_tokens, 16);
  EXPECT_EQ(third.finished->result.ids, infer::generate(model, prefix, third_request.config).ids);

  // Two running requests share the cached blocks (reference-counted) and both decode correctly.
  std::vector<EngineRequest> pair = {request_of(with_suffix({4, 4, 4, 4, 4}), greedy(5)),
                                     request_of(with_suffix({6}), greedy(7))};
  auto both = serve(engine, pair);
  for (size_t i = 0; i < pair.size(); ++i) {
    ASSERT_TRUE(both[i].finished);
    EXPECT_EQ(both[i].finished->cached_prompt_tokens, 20) << "request " << i;
    EXPECT_EQ(both[i].finished->result.ids, infer::generate(model, pair[i].prompt_ids, pair[i].config).ids);
  }
  EXPECT_EQ(engine.stats().prefix_cache_hit_tokens, 20 + 16 + 40);
  EXPECT_EQ(engine.stats().kv_blocks_used, 0);

  // Without prefix caching nothing is reused.
  options.prefix_caching = false;
  Engine plain(model, nullptr, options);
  serve(plain, {request_of(with_suffix({1, 2, 3}), greedy(2))});
  auto again = serve(plain, {request_of(with_suffix({1, 2, 3}), greedy(2))}).front();
  EXPECT_EQ(again.finished->cached_prompt_tokens, 0);
  EXPECT_EQ(plain.stats().prefix_cache_hit_tokens, 0);
}

TEST(EngineLogprobs, EqualLogSoftmaxOfOneFullForward) {
  CausalLM model = load_pretrained(test::fixture("hf-tiny/qwen2"));
  auto prompt = random_ids(13, 320, 21);
  EngineRequest scored = request_of(prompt, greedy(5));
  scored.logprobs = true;
  scored.echo_logprobs = true;
  scored.top_logprobs = 3;
  EngineRequest score_only = request_of(prompt, greedy(0));
  score_only.config.max_new_tokens = 0;
  score_only.echo_logprobs = true;
  // In a busy batch, after the prompt's blocks were cached by an earlier request (an echo must
  // still compute every position).
  EngineOptions options;
  options.block_size = 4;
  options.prefill_chunk = 5;
  Engine engine(model, nullptr, options);
  serve(engine, {request_of(prompt, greedy(3))});
  auto requests = mixed_greedy_requests(4, 31);
  requests.push_back(scored);
  requests.push_back(score_only);
  auto outcomes = serve(engine, requests, staggered(requests.size()));
  const Outcome& out = outcomes[4];
  ASSERT_TRUE(out.finished);
  const auto& generated = out.finished->result.ids;
  ASSERT_EQ(generated.size(), 5u);

  std::vector<int64_t> full(prompt.begin(), prompt.end());
  full.insert(full.end(), generated.begin(), generated.end());
  torch::NoGradGuard no_grad;
  model->eval();
  torch::Tensor lp = torch::log_softmax(model->forward(torch::tensor(full).view({1, -1}))[0], -1);  // [L, V]
  auto expect_position = [&](const PositionLogprobs& got, int64_t row, int32_t token, const std::string& where) {
    EXPECT_EQ(got.token.id, token) << where;
    EXPECT_NEAR(got.token.logprob, lp[row][token].item<float>(), 1e-4) << where;
    auto [values, ids] = lp[row].topk(3);
    ASSERT_EQ(got.top.size(), 3u) << where;
    for (int64_t k = 0; k < 3; ++k) {
      EXPECT_EQ(got.top[k].id, ids[k].item<int64_t>()) << where << " alternative " << k;
      EXPECT_NEAR(got.top[k].logprob, values[k].item<float>(), 1e-4) << where << " alternative " << k;
    }
  };
  ASSERT_EQ(out.finished->prompt_logprobs.size(), prompt.size() - 1);
  EXPECT_EQ(out.finished->cached_prompt_tokens, 0);
  for (size_t i = 1; i < prompt.size(); ++i) {
    expect_position(out.finished->prompt_logprobs[i - 1], static_cast<int64_t>(i) - 1, prompt[i],
                    "prompt position " + std::to_string(i));
  }
  ASSERT_EQ(out.tokens.size(), generated.size());
  for (size_t j = 0; j < generated.size(); ++j) {
    ASSERT_TRUE(out.tokens[j].logprobs);
    expect_position(*out.tokens[j].logprobs, static_cast<int64_t>(prompt.size() + j) - 1, generated[j],
                    "generated token " + std::to_string(j));
  }
  // Scoring only: prompt logprobs, no tokens.
  const Outcome& only = outcomes[5];
  ASSERT_TRUE(only.finished);
  EXPECT_TRUE(only.finished->result.ids.empty());
  EXPECT_TRUE(only.tokens.empty());
  ASSERT_EQ(only.finished->prompt_logprobs.size(), prompt.size() - 1);
  for (size_t i = 1; i < prompt.size(); ++i) {
    EXPECT_NEAR(only.finished->prompt_logprobs[i - 1].token.logprob, lp[i - 1][prompt[i]].item<float>(), 1e-4);
  }
}

TEST(EngineSampling, SeededRequestsDrawTheSameAloneAndInABusyBatch) {
  CausalLM model = load_pretrained(test::fixture("hf-tiny/mistral"));
  std::vector<EngineRequest> requests;
  for (int i = 0; i < 7; ++i) {
    infer::GenerationConfig config;
    config.max_new_tokens = 12;
    config.sampling.temperature = 1.3;
    config.sampling.top_k = i % 2 ? 50 : 0;
    config.sampling.top_p = 0.95;
    config.sampling.repetition_penalty = 1.1;
    config.seed = 300 + i;
    requests.push_back(request_of(random_ids(3 + 4 * i, 320, 60 + i), config));
  }
  EngineOptions options;
  options.max_batch = 4;
  options.block_size = 4;
  options.kv_cache_tokens = 60;  // preemption too: a recomputed sequence keeps its sampler
  options.prefill_chunk = 6;
  Engine engine(model, nullptr, options);
  auto busy = serve(engine, requests, staggered(requests.size()));
  for (size_t i = 0; i < requests.size(); ++i) {
    auto alone = serve_alone(model, requests[i]);
    auto expected = infer::generate(model, requests[i].prompt_ids, requests[i].config);
    ASSERT_TRUE(busy[i].finished && alone.finished);
    EXPECT_EQ(busy[i].finished->result.ids, alone.finished->result.ids) << "request " << i;
    EXPECT_EQ(alone.finished->result.ids, expected.ids) << "request " << i;
  }
}

}  // namespace
}  // namespace forma::serve
