// Sampling filters against hand computation on small logits vectors: which tokens survive each
// filter, the distribution after filtering, HF's order of processors, greedy = argmax, seeding.
#include "forma/infer/sampling.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "forma/core/error.h"

namespace forma::infer {
namespace {

torch::Tensor row(std::vector<float> values) { return torch::tensor(values, torch::kFloat); }

// Logits whose softmax is exactly `probs` (log of each probability).
torch::Tensor from_probs(std::vector<float> probs) { return row(probs).log(); }

std::set<int64_t> survivors(const torch::Tensor& logits) {
  std::set<int64_t> out;
  for (int64_t i = 0; i < logits.size(0); ++i) {
    if (std::isfinite(logits[i].item<float>())) out.insert(i);
  }
  return out;
}

torch::Tensor no_seen(int64_t vocab) { return torch::zeros({vocab}, torch::kBool); }

TEST(Sampling, RepetitionPenaltyDividesPositiveAndMultipliesNegativeSeenLogits) {
  auto seen = torch::tensor({true, true, false, false, true});
  auto out = apply_repetition_penalty(row({2.f, -1.f, 0.5f, -3.f, 0.f}), seen, 2.0);
  // seen: 2 -> 1, -1 -> -2, 0 stays 0 (HF divides non-negative values); unseen untouched.
  EXPECT_TRUE(torch::equal(out, row({1.f, -2.f, 0.5f, -3.f, 0.f})));
}

TEST(Sampling, TemperatureDividesLogits) {
  EXPECT_TRUE(torch::allclose(apply_temperature(row({1.f, -2.f, 3.f}), 0.5), row({2.f, -4.f, 6.f})));
  EXPECT_THROW(apply_temperature(row({1.f}), 0.0), Error);
}

TEST(Sampling, TopKKeepsTheKLargestAndTiesWithTheKth) {
  EXPECT_EQ(survivors(apply_top_k(row({1.f, 3.f, 2.f, 3.5f, 0.f}), 2)), (std::set<int64_t>{1, 3}));
  // The 2nd largest value (2) appears twice: both stay, as in HF (scores < kth are removed).
  EXPECT_EQ(survivors(apply_top_k(row({1.f, 3.f, 2.f, 2.f, 0.f}), 2)), (std::set<int64_t>{1, 2, 3}));
  EXPECT_EQ(survivors(apply_top_k(row({1.f, 3.f, 2.f}), 10)).size(), 3u);  // k > V: no-op
  EXPECT_EQ(survivors(apply_top_k(row({1.f, 3.f, 2.f}), 1)), (std::set<int64_t>{1}));
}

TEST(Sampling, TopPKeepsTheSmallestSetReachingP) {
  auto logits = from_probs({0.5f, 0.3f, 0.15f, 0.05f});
  // Ascending cumulative: 0.05, 0.20, 0.50, 1.0; drop those <= 1 - p.
  EXPECT_EQ(survivors(apply_top_p(logits, 0.9)), (std::set<int64_t>{0, 1, 2}));
  EXPECT_EQ(survivors(apply_top_p(logits, 0.75)), (std::set<int64_t>{0, 1}));
  EXPECT_EQ(survivors(apply_top_p(logits, 0.4)), (std::set<int64_t>{0}));
  EXPECT_EQ(survivors(apply_top_p(logits, 0.01)), (std::set<int64_t>{0}));  // never empty
  // The distribution after filtering is the renormalised survivors: 0.5/0.8, 0.3/0.8.
  auto probs = apply_top_p(logits, 0.75).softmax(-1);
  EXPECT_TRUE(torch::allclose(probs, row({0.625f, 0.375f, 0.f, 0.f}), 1e-5, 1e-6));
}

TEST(Sampling, MinPDropsTokensBelowAFractionOfTheTopProbability) {
  auto logits = from_probs({0.5f, 0.3f, 0.15f, 0.05f});
  EXPECT_EQ(survivors(apply_min_p(logits, 0.2)), (std::set<int64_t>{0, 1, 2}));  // threshold 0.1
  EXPECT_EQ(survivors(apply_min_p(logits, 0.5)), (std::set<int64_t>{0, 1}));     // threshold 0.25
  EXPECT_EQ(survivors(apply_min_p(logits, 1.0)), (std::set<int64_t>{0}));
  auto probs = apply_min_p(logits, 0.5).softmax(-1);
  EXPECT_TRUE(torch::allclose(probs, row({0.625f, 0.375f, 0.f, 0.f}), 1e-5, 1e-6));
}

TEST(Sampling, TemperatureIsAppliedBeforeTopP) {
  // probs 1/2, 1/4, 1/8, 1/8. With temperature 0.5 they become 16/22, 4/22, 1/22, 1/22, whose
  // ascending cumulative sums (1/22, 2/22, 6/22) all stay below 1 - 0.7: only token 0 survives.
  // Applying top-p first would have kept tokens 0 and 1.
  SamplingConfig config;
  config.temperature = 0.5;
  config.top_p = 0.7;
  auto out = process_logits(from_probs({0.5f, 0.25f, 0.125f, 0.125f}), no_seen(4), config);
  EXPECT_EQ(survivors(out), (std::set<int64_t>{0}));
  config.temperature = 1.0;
  out = process_logits(from_probs({0.5f, 0.25f, 0.125f, 0.125f}), no_seen(4), config);
  EXPECT_EQ(survivors(out), (std::set<int64_t>{0, 1}));
}

TEST(Sampling, RepetitionPenaltyIsAppliedBeforeTopK) {
  // Token 0 (logit 3) is seen; penalty 4 makes it 0.75, so top-1 is token 1 (logit 2).
  SamplingConfig config;
  config.repetition_penalty = 4.0;
  config.top_k = 1;
  auto out = process_logits(row({3.f, 2.f, 1.f}), torch::tensor({true, false, false}), config);
  EXPECT_EQ(survivors(out), (std::set<int64_t>{1}));
}

TEST(Sampling, GreedyIsArgmaxAfterRepetitionPenalty) {
  SamplingConfig config;
  config.temperature = 0.0;
  config.top_k = 1;  // ignored by greedy, as HF applies no warpers without sampling
  Sampler sampler(config, 1, 5);
  EXPECT_EQ(sampler.next(row({0.1f, 2.f, -1.f, 1.9f, 0.f})), 1);

  config.repetition_penalty = 2.0;
  Sampler penalized(config, 1, 5);
  penalized.observe({1});  // 2.0 -> 1.0, so 1.9 wins
  EXPECT_EQ(penalized.next(row({0.1f, 2.f, -1.f, 1.9f, 0.f})), 3);
  // Token 3 is now seen too: 1.9 -> 0.95, 1.0 is the largest.
  EXPECT_EQ(penalized.next(row({0.1f, 2.f, -1.f, 1.9f, 0.f})), 1);
}

TEST(Sampling, SampledFrequenciesFollowTheFilteredDistribution) {
  SamplingConfig config;
  config.top_p = 0.75;  // survivors 0 and 1 with 0.625 / 0.375
  Sampler sampler(config, 1234, 4);
  auto logits = from_probs({0.5f, 0.3f, 0.15f, 0.05f});
  std::vector<int> counts(4, 0);
  const int draws = 5000;
  for (int i = 0; i < draws; ++i) counts[sampler.next(logits)]++;
  EXPECT_EQ(counts[2] + counts[3], 0);
  EXPECT_NEAR(counts[0] / double(draws), 0.625, 0.03);  // 4.4 sigma
  EXPECT_NEAR(counts[1] / double(draws), 0.375, 0.03);
}

std::vector<int32_t> draw(uint64_t seed, int n) {
  SamplingConfig config;
  config.temperature = 1.0;
  Sampler sampler(config, seed, 8);
  auto logits = torch::zeros({8});  // uniform over 8 tokens
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) out.push_back(sampler.next(logits));
  return out;
}

TEST(Sampling, SameSeedSameTokensDifferentSeedDifferentTokens) {
  EXPECT_EQ(draw(7, 32), draw(7, 32));
  // Two uniform sequences of 32 draws over 8 tokens agree with probability 8^-32.
  EXPECT_NE(draw(7, 32), draw(8, 32));
}

TEST(Sampling, InvalidSettingsNameTheField) {
  auto expect_error = [](SamplingConfig config, const std::string& field) {
    try {
      config.validate();
      ADD_FAILURE() << "no error for " << field;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
    }
  };
  SamplingConfig c;
  c.temperature = -1;
  expect_error(c, "temperature");
  c = {};
  c.top_k = -2;
  expect_error(c, "top_k");
  c = {};
  c.top_p = 0.0;
  expect_error(c, "top_p");
  c = {};
  c.min_p = 1.5;
  expect_error(c, "min_p");
  c = {};
  c.repetition_penalty = 0.0;
  expect_error(c, "repetition_penalty");
}

TEST(Sampling, RejectsWrongRowSizeAndNaN) {
  Sampler sampler(SamplingConfig{}, 1, 3);
  EXPECT_THROW(sampler.next(row({1.f, 2.f})), Error);
  EXPECT_THROW(sampler.next(row({1.f, NAN, 2.f})), Error);
  EXPECT_THROW(sampler.observe({3}), Error);
}

}  // namespace
}  // namespace forma::infer
