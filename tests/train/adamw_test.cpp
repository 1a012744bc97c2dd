// AdamW against LibTorch's own torch::optim::AdamW on the same parameters and gradients, and
// gradient clipping against a hand-computed global norm.
#include <gtest/gtest.h>

#include "forma/core/error.h"
#include "forma/train/adamw.h"

namespace forma::train {
namespace {

// Two matrices (decayed) and a vector (not decayed), as a model's weights and norm gains.
std::vector<torch::Tensor> make_params(uint64_t seed) {
  torch::manual_seed(seed);
  return {torch::randn({5, 7}).requires_grad_(), torch::randn({7}).requires_grad_(),
          torch::randn({3, 4}).requires_grad_()};
}

TEST(AdamW, MatchesTorchAdamWForTenStepsWithChangingLr) {
  auto ours = make_params(7), theirs = make_params(7);
  std::vector<NamedParameter> named{{"w1", ours[0], true}, {"g", ours[1], false}, {"w2", ours[2], true}};
  AdamWOptions options{0.0, 0.9, 0.95, 1e-8, 0.1};
  AdamW mine(named, options);

  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>{theirs[0], theirs[2]},
                      std::make_unique<torch::optim::AdamWOptions>(
                          torch::optim::AdamWOptions(1e-3).betas({0.9, 0.95}).eps(1e-8).weight_decay(0.1)));
  groups.emplace_back(std::vector<torch::Tensor>{theirs[1]},
                      std::make_unique<torch::optim::AdamWOptions>(
                          torch::optim::AdamWOptions(1e-3).betas({0.9, 0.95}).eps(1e-8).weight_decay(0.0)));
  torch::optim::AdamW reference(groups, torch::optim::AdamWOptions(1e-3));

  for (int step = 1; step <= 10; ++step) {
    double lr = 1e-2 * step / 10.0;
    torch::manual_seed(100 + step);
    for (size_t i = 0; i < ours.size(); ++i) {
      auto grad = torch::randn(ours[i].sizes());
      ours[i].mutable_grad() = grad.clone();
      theirs[i].mutable_grad() = grad.clone();
    }
    mine.step(lr);
    for (auto& group : reference.param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    reference.step();
  }
  for (size_t i = 0; i < ours.size(); ++i) {
    double diff = (ours[i] - theirs[i]).abs().max().item<double>();
    EXPECT_LE(diff, 1e-7) << "parameter " << i;
    EXPECT_TRUE(torch::equal(ours[i], theirs[i])) << "parameter " << i << " not bit-equal";
  }
}

TEST(AdamW, StateRoundTripsByNameAndContinuesIdentically) {
  auto a = make_params(3), b = make_params(3);
  auto named = [](std::vector<torch::Tensor>& p) {
    return std::vector<NamedParameter>{{"w1", p[0], true}, {"g", p[1], false}, {"w2", p[2], true}};
  };
  AdamWOptions options{0.0, 0.9, 0.999, 1e-8, 0.01};
  AdamW first(named(a), options), second(named(b), options);
  auto grads = [](std::vector<torch::Tensor>& p, int step) {
    torch::manual_seed(step);
    for (auto& t : p) t.mutable_grad() = torch::randn(t.sizes());
  };
  for (int s = 1; s <= 3; ++s) {
    grads(a, s), grads(b, s);
    first.step(1e-2), second.step(1e-2);
  }
  // A third optimizer on copies of b's parameters picks up second's state and must continue
  // exactly as `first` does.
  std::vector<torch::Tensor> c;
  for (auto& t : b) c.push_back(t.detach().clone().requires_grad_());
  AdamW third(named(c), options);
  third.load_state_dict(second.state_dict(), "test");
  EXPECT_EQ(third.state_dict().at("w1.step").item<int64_t>(), 3);
  for (int s = 4; s <= 6; ++s) {
    grads(a, s), grads(c, s);
    first.step(1e-2), third.step(1e-2);
  }
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], c[i]));
}

TEST(AdamW, LoadRejectsMissingAndMisshapenState) {
  auto p = make_params(1);
  AdamW opt({{"w1", p[0], true}, {"g", p[1], false}, {"w2", p[2], true}}, {});
  std::map<std::string, torch::Tensor> state{{"w1.step", torch::tensor({int64_t{2}})},
                                             {"w1.exp_avg", torch::zeros({5, 7})}};
  try {
    opt.load_state_dict(state, "opt.safetensors");
    FAIL() << "missing exp_avg_sq accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("w1.exp_avg_sq"), std::string::npos) << e.what();
  }
  state["w1.exp_avg_sq"] = torch::zeros({7, 5});
  EXPECT_THROW(opt.load_state_dict(state, "opt.safetensors"), Error);
  state["w1.exp_avg_sq"] = torch::zeros({5, 7});
  state["nope.exp_avg"] = torch::zeros({1});
  EXPECT_THROW(opt.load_state_dict(state, "opt.safetensors"), Error);
}

TEST(ClipGradNorm, ReportsPreClipNormAndScalesToMax) {
  auto w = torch::zeros({2, 2}).requires_grad_(), b = torch::zeros({3}).requires_grad_();
  w.mutable_grad() = torch::tensor({{3.0f, 0.0f}, {0.0f, 0.0f}});
  b.mutable_grad() = torch::tensor({0.0f, 4.0f, 0.0f});
  std::vector<NamedParameter> params{{"w", w, true}, {"b", b, false}};
  EXPECT_NEAR(clip_grad_norm(params, 10.0), 5.0, 1e-6);  // sqrt(3^2 + 4^2), no clipping
  EXPECT_FLOAT_EQ(w.grad()[0][0].item<float>(), 3.0f);
  EXPECT_NEAR(clip_grad_norm(params, 1.0), 5.0, 1e-6);
  EXPECT_NEAR(w.grad()[0][0].item<float>(), 3.0 / 5.0, 1e-6);
  EXPECT_NEAR(b.grad()[1].item<float>(), 4.0 / 5.0, 1e-6);
  EXPECT_NEAR(clip_grad_norm(params, 0.0), 1.0, 1e-5);
}

TEST(DecayGroups, OnlyMatricesAreDecayed) {
  torch::nn::Linear linear(torch::nn::LinearOptions(4, 3).bias(true));
  auto groups = decay_groups(*linear);
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].name, "weight");
  EXPECT_TRUE(groups[0].decay);
  EXPECT_EQ(groups[1].name, "bias");
  EXPECT_FALSE(groups[1].decay);
}

}  // namespace
}  // namespace forma::train
