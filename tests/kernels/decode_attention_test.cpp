// forma::kernels::decode_attention against attention computed in double from the same (fp32 or
// bf16) inputs, on every code path this CPU runs (forced through set_gemv_path): head sizes with and
// without vector tails, grouped-query and multi-query heads, one key to many, caches that are views
// of a longer buffer (strided), per-row padding masks, and the cases it must decline.
//
// Tolerances. fp32: scores, softmax and the weighted sum in fp32 against double; the output is a
// convex combination of values of size ~1, so 2e-5 absolute covers D-term dot products, the
// polynomial exp (a few ulp) and S-term sums. bf16: the softmax weights are rounded to bf16 (half an
// ulp, 2^-9 relative, each; the reference does the same) and the output once more, so within 2^-8
// relative of the double reference plus the fp32 error.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "forma/core/error.h"
#include "forma/kernels/decode_attention.h"
#include "forma/kernels/gemv.h"

namespace forma::kernels {
namespace {

torch::Tensor reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale,
                        const torch::Tensor& allowed) {
  const int64_t group = q.size(1) / k.size(1);
  torch::Tensor kd = k.to(torch::kDouble).repeat_interleave(group, 1), vd = v.to(torch::kDouble).repeat_interleave(group, 1);
  torch::Tensor scores = torch::matmul(q.to(torch::kDouble), kd.transpose(2, 3)) * scale;  // [B, H, 1, S]
  if (allowed.defined()) {
    scores = scores.masked_fill(allowed.reshape({-1, 1, 1, k.size(2)}).logical_not(), -INFINITY);
  }
  torch::Tensor e = (scores - std::get<0>(scores.max(-1, true))).exp();
  torch::Tensor sum = e.sum(-1, true);
  // bf16: the weights that multiply V rounded to bf16, their sum not (the flash kernel's numerics).
  if (q.scalar_type() == torch::kBFloat16) e = e.to(torch::kBFloat16).to(torch::kDouble);
  return torch::matmul(e, vd) / sum;
}

struct Case {
  int64_t batch, q_heads, kv_heads, keys, dim;
  bool strided, masked;
};

std::vector<GemvPath> paths() {
  std::vector<GemvPath> out;
  for (GemvPath p : {GemvPath::Scalar, GemvPath::Avx2, GemvPath::Avx512, GemvPath::Avx512Bf16}) {
    if (gemv_path_available(p)) out.push_back(p);
  }
  return out;
}

void check_case(const Case& c, torch::ScalarType dtype, GemvPath path) {
  const std::string what = std::string(gemv_path_name(path)) + (dtype == torch::kFloat ? " fp32" : " bf16") +
                           " B=" + std::to_string(c.batch) + " Hq=" + std::to_string(c.q_heads) +
                           " Hkv=" + std::to_string(c.kv_heads) + " S=" + std::to_string(c.keys) +
                           " D=" + std::to_string(c.dim) + (c.strided ? " strided" : "") + (c.masked ? " masked" : "");
  torch::manual_seed(c.keys * 131 + c.dim);
  auto opts = torch::TensorOptions().dtype(dtype);
  torch::Tensor q = torch::randn({c.batch, c.q_heads, 1, c.dim}, opts) * 2;
  torch::Tensor k, v;
  if (c.strided) {  // a cache buffer longer than the keys in use, as KVCache::update returns
    k = torch::randn({c.batch, c.kv_heads, c.keys + 9, c.dim}, opts).narrow(2, 0, c.keys);
    v = torch::randn({c.batch, c.kv_heads, c.keys + 9, c.dim}, opts).narrow(2, 0, c.keys);
  } else {
    k = torch::randn({c.batch, c.kv_heads, c.keys, c.dim}, opts);
    v = torch::randn({c.batch, c.kv_heads, c.keys, c.dim}, opts);
  }
  torch::Tensor allowed;
  if (c.masked) {  // left padding per row, the last key always allowed (as padded_causal_mask)
    torch::Tensor first = torch::randint(0, c.keys, {c.batch, 1}, torch::kLong);
    allowed = (torch::arange(c.keys).unsqueeze(0) >= first).view({c.batch, 1, 1, c.keys});
  }
  const double scale = 1.0 / std::sqrt(static_cast<double>(c.dim));
  ASSERT_TRUE(decode_attention_supported(q, k, v, allowed)) << what;
  torch::Tensor out = decode_attention(q, k, v, scale, allowed);
  ASSERT_EQ(out.sizes(), q.sizes()) << what;
  ASSERT_EQ(out.scalar_type(), dtype) << what;
  torch::Tensor ref = reference(q, k, v, scale, allowed);
  torch::Tensor bound = dtype == torch::kFloat ? torch::full_like(ref, 2e-5) : ref.abs() * (1.0 / 256) + 2e-5;
  torch::Tensor diff = (out.to(torch::kDouble) - ref).abs();
  EXPECT_TRUE((diff <= bound).all().item<bool>())
      << what << ": largest difference " << diff.max().item<double>() << " (reference max "
      << ref.abs().max().item<double>() << ")";
}

TEST(DecodeAttention, EqualsDoublePrecisionAttentionOnEveryPath) {
  const GemvPath before = active_gemv_path();
  // D: 64 and 128 (whole vectors), 80 (an AVX-512 tail of 0 but an odd count of 16s), 72 and 7 (tails),
  // 1; S from one key to more than a page of them; GQA 12/4, MHA 8/8, MQA 6/1.
  const std::vector<Case> cases = {
      {1, 12, 4, 1, 64, false, false},  {1, 12, 4, 600, 64, true, false}, {3, 12, 4, 37, 64, true, true},
      {2, 8, 8, 129, 128, false, true}, {1, 6, 1, 17, 80, true, false},   {2, 4, 2, 33, 72, false, true},
      {1, 2, 1, 5, 7, false, false},    {2, 2, 2, 3, 1, true, true},
  };
  for (GemvPath path : paths()) {
    set_gemv_path(path);
    for (const auto dtype : {torch::kFloat, torch::kBFloat16}) {
      for (const auto& c : cases) check_case(c, dtype, path);
    }
  }
  set_gemv_path(before);
}

TEST(DecodeAttention, ARowWithNoAllowedKeyIsZeros) {
  torch::Tensor q = torch::randn({2, 2, 1, 16}), k = torch::randn({2, 1, 4, 16}), v = torch::randn({2, 1, 4, 16});
  torch::Tensor allowed = torch::tensor({false, false, false, false, true, false, true, true}).view({2, 1, 1, 4});
  torch::Tensor out = decode_attention(q, k, v, 0.25, allowed);
  EXPECT_TRUE(out[0].eq(0).all().item<bool>());
  EXPECT_TRUE(out[1].abs().sum().item<double>() > 0);
}

TEST(DecodeAttention, DeclinesWhatItDoesNotCompute) {
  torch::Tensor q = torch::randn({1, 4, 1, 16}), k = torch::randn({1, 2, 5, 16}), v = torch::randn({1, 2, 5, 16});
  EXPECT_TRUE(decode_attention_supported(q, k, v, {}));
  EXPECT_FALSE(decode_attention_supported(torch::randn({1, 4, 2, 16}), k, v, {})) << "two queries";
  EXPECT_FALSE(decode_attention_supported(q, k.to(torch::kBFloat16), v, {})) << "mixed dtypes";
  EXPECT_FALSE(decode_attention_supported(q.to(torch::kHalf), k.to(torch::kHalf), v.to(torch::kHalf), {})) << "fp16";
  EXPECT_FALSE(decode_attention_supported(torch::randn({1, 3, 1, 16}), k, v, {})) << "3 heads over 2";
  EXPECT_FALSE(decode_attention_supported(q, k, v, torch::ones({1, 1, 2, 5}, torch::kBool))) << "a 2-query mask";
  EXPECT_FALSE(decode_attention_supported(q, k, v, torch::zeros({1, 1, 1, 5}))) << "a float mask";
  EXPECT_FALSE(decode_attention_supported(q, torch::randn({1, 2, 16, 5}).transpose(2, 3), v, {}))
      << "a head dimension that is not contiguous";
  EXPECT_FALSE(decode_attention_supported(q.clone().requires_grad_(), k, v, {})) << "autograd";
  {
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(decode_attention_supported(q.clone().requires_grad_(), k, v, {})) << "no grad mode";
  }
  EXPECT_THROW(decode_attention(torch::randn({1, 4, 2, 16}), k, v, 0.25), Error);
}

}  // namespace
}  // namespace forma::kernels
