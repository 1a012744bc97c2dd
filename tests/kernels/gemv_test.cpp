// forma::kernels::linear_small_batch against at::linear for every shape class, on every code path this
// CPU runs (forced through set_gemv_path; paths the CPU lacks are skipped, saying so).
//
// Tolerances. fp32: both sides accumulate k products in fp32 in different orders; each differs from
// the exact sum by at most ~k·2^-24·Σ|x·w| in the worst case and ~sqrt(k)·2^-24·Σ|x·w| typically, so
// |y - at::linear| <= 1e-5·(|x|·|w|^T + |b|) (relative to the magnitude of the terms, which stays
// meaningful when the sum cancels). bf16: inputs are bf16, products are exact in fp32 and summed in
// fp32 (same bound as fp32), then each side rounds its fp32 result to bf16 once: half a bf16 ulp
// (2^-9 relative) each, so two results may land one ulp apart, 2^-8·|y|, and two when a sum sits on a
// rounding boundary of the other's fp32 error: |y - at::linear| <= 2^-7·|ref| + 1e-5·(|x|·|w|^T + |b|).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

#include "forma/core/error.h"
#include "forma/kernels/gemv.h"

namespace forma::kernels {

// ctest's names show the path ("GetParam() = avx2"), not its bytes.
void PrintTo(GemvPath path, std::ostream* out) { *out << gemv_path_name(path); }

namespace {

struct Shape {
  int64_t k, n;
};

// Odd and even sizes, k tails below one vector (16 fp32 / 32 bf16 for AVX-512, 8 for AVX2), n tails
// below one block of W's rows (4 for AVX-512, 2 for AVX2), and the tiny cases.
const std::vector<Shape> kShapes = {{1, 1},   {1, 5},   {5, 1},   {2, 2},   {7, 3},    {8, 8},    {15, 4},
                                    {16, 4},  {17, 9},  {31, 7},  {32, 8},  {33, 13},  {48, 6},   {63, 5},
                                    {64, 3},  {100, 37}, {129, 11}, {768, 256}, {2048, 10}};
const std::vector<int64_t> kRows = {1, 2, 3, 4, 7, 16};

// Where |y - ref| exceeds rel·|ref| + abs_rel·magnitude anywhere: the first such element, else "".
std::string compare(const torch::Tensor& y, const torch::Tensor& ref, const torch::Tensor& magnitude, double rel,
                    double abs_rel) {
  torch::Tensor y64 = y.to(torch::kDouble), ref64 = ref.to(torch::kDouble);
  torch::Tensor bound = ref64.abs() * rel + magnitude * abs_rel;
  torch::Tensor bad = (y64 - ref64).abs() > bound;
  if (!bad.any().item<bool>()) return "";
  const int64_t at = bad.flatten().nonzero()[0].item<int64_t>();
  return "element " + std::to_string(at) + ": " + std::to_string(y64.flatten()[at].item<double>()) + " vs " +
         std::to_string(ref64.flatten()[at].item<double>()) + " (bound " +
         std::to_string(bound.flatten()[at].item<double>()) + ")";
}

// Checks linear_small_batch(x, w, b) against at::linear on the same inputs.
void check_linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, const std::string& what) {
  ASSERT_TRUE(gemv_supported(x, w)) << what;
  torch::Tensor y = linear_small_batch(x, w, b);
  torch::Tensor ref = at::linear(x, w, b);
  ASSERT_EQ(y.sizes(), ref.sizes()) << what;
  ASSERT_EQ(y.scalar_type(), x.scalar_type()) << what;
  torch::Tensor magnitude = at::linear(x.to(torch::kDouble).abs(), w.to(torch::kDouble).abs(),
                                       b.defined() ? b.to(torch::kDouble).abs() : torch::Tensor());
  const bool bf16 = x.scalar_type() == torch::kBFloat16;
  const std::string error = compare(y, ref, magnitude, bf16 ? 1.0 / 128 : 0.0, 1e-5);
  EXPECT_EQ(error, "") << what;
}

class GemvPathTest : public ::testing::TestWithParam<GemvPath> {
 protected:
  void SetUp() override {
    if (!gemv_path_available(GetParam())) {
      GTEST_SKIP() << "this CPU cannot run the " << gemv_path_name(GetParam()) << " kernels";
    }
    set_gemv_path(GetParam());
    torch::manual_seed(7);
  }
  void TearDown() override { set_gemv_path(GemvPath::Auto); }
};

void every_shape(torch::ScalarType dtype) {
  torch::NoGradGuard no_grad;
  for (const Shape& s : kShapes) {
    for (int64_t m : kRows) {
      for (bool with_bias : {false, true}) {
        torch::Tensor x = torch::randn({m, s.k}).to(dtype);
        torch::Tensor w = torch::randn({s.n, s.k}).to(dtype);
        torch::Tensor b = with_bias ? torch::randn({s.n}).to(dtype) : torch::Tensor();
        check_linear(x, w, b,
                     "m " + std::to_string(m) + ", k " + std::to_string(s.k) + ", n " + std::to_string(s.n) +
                         (with_bias ? ", bias" : ""));
      }
    }
  }
}

TEST_P(GemvPathTest, Fp32EveryShape) { every_shape(torch::kFloat); }

TEST_P(GemvPathTest, Bf16EveryShape) { every_shape(torch::kBFloat16); }

// The lm_head of the 125M Llama of issue 14: the rows of W split among the threads.
TEST_P(GemvPathTest, Fp32LargeLmHead) {
  torch::NoGradGuard no_grad;
  torch::Tensor w = torch::randn({32000, 768}) * 0.02;
  torch::Tensor x = torch::randn({3, 768});
  check_linear(x, w, torch::Tensor(), "k 768, n 32000");
}

// Non-contiguous x (a column slice, a transpose, an expanded row) is copied; leading dimensions are
// kept as at::linear keeps them.
TEST_P(GemvPathTest, NonContiguousAndBatchedInputs) {
  torch::NoGradGuard no_grad;
  for (torch::ScalarType dtype : {torch::kFloat, torch::kBFloat16}) {
    torch::Tensor w = torch::randn({37, 45}).to(dtype);
    torch::Tensor b = torch::randn({37}).to(dtype);
    torch::Tensor wide = torch::randn({5, 90}).to(dtype);
    torch::Tensor sliced = wide.slice(1, 0, 90, 2);  // [5, 45], stride 2
    ASSERT_FALSE(sliced.is_contiguous());
    check_linear(sliced, w, b, "strided columns");
    torch::Tensor transposed = torch::randn({45, 6}).to(dtype).t();
    ASSERT_FALSE(transposed.is_contiguous());
    check_linear(transposed, w, b, "transposed");
    check_linear(torch::randn({45}).to(dtype).expand({4, 45}), w, torch::Tensor(), "expanded");
    check_linear(torch::randn({2, 3, 45}).to(dtype), w, b, "[2, 3, k]");
    check_linear(torch::randn({45}).to(dtype), w, b, "1-D x");
    // A non-contiguous bias is copied too.
    torch::Tensor b2 = torch::randn({37, 2}).to(dtype).select(1, 1);
    check_linear(torch::randn({2, 45}).to(dtype), w, b2, "strided bias");
  }
}

// Each output is one thread's, summed in one order: any thread count gives the same bits.
TEST_P(GemvPathTest, SameBitsOnAnyThreadCount) {
  torch::NoGradGuard no_grad;
  const int threads = torch::get_num_threads();
  torch::Tensor w = torch::randn({1000, 200}), x = torch::randn({5, 200});
  torch::set_num_threads(1);
  torch::Tensor one = linear_small_batch(x, w);
  torch::set_num_threads(2);
  torch::Tensor two = linear_small_batch(x, w);
  torch::set_num_threads(threads);
  EXPECT_TRUE(torch::equal(one, two));
}

INSTANTIATE_TEST_SUITE_P(Paths, GemvPathTest,
                         ::testing::Values(GemvPath::Scalar, GemvPath::Avx2, GemvPath::Avx512, GemvPath::Avx512Bf16),
                         [](const ::testing::TestParamInfo<GemvPath>& info) {
                           return std::string(gemv_path_name(info.param));
                         });

// What the kernels refuse: the caller then uses at::linear.
TEST(Gemv, UnsupportedInputs) {
  torch::Tensor w = torch::randn({8, 16}), x = torch::randn({2, 16});
  EXPECT_TRUE(gemv_supported(x, w));
  EXPECT_FALSE(gemv_supported(torch::randn({17, 16}), w));                   // more than 16 rows
  EXPECT_FALSE(gemv_supported(torch::randn({0, 16}), w));                    // no rows
  EXPECT_FALSE(gemv_supported(torch::randn({2, 15}), w));                    // k differs
  EXPECT_FALSE(gemv_supported(x.to(torch::kBFloat16), w));                   // dtypes differ
  EXPECT_FALSE(gemv_supported(x.to(torch::kHalf), w.to(torch::kHalf)));      // fp16
  EXPECT_FALSE(gemv_supported(x.to(torch::kDouble), w.to(torch::kDouble)));  // fp64
  EXPECT_FALSE(gemv_supported(x, torch::randn({16, 8}).t()));                // non-contiguous W
  EXPECT_FALSE(gemv_supported(x, torch::randn({8, 16, 1})));                 // 3-D W
  EXPECT_FALSE(gemv_supported(torch::Tensor(), w));
  {
    torch::Tensor wg = w.clone().requires_grad_(true);
    EXPECT_FALSE(gemv_supported(x, wg));  // autograd wants the graph
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(gemv_supported(x, wg));
  }
  {
    torch::InferenceMode inference;
    EXPECT_TRUE(gemv_supported(torch::randn({2, 16}), torch::randn({8, 16})));
  }
  EXPECT_THROW(linear_small_batch(torch::randn({17, 16}), w), forma::Error);
  EXPECT_THROW(linear_small_batch(x, w, torch::randn({7})), forma::Error);                      // bias size
  EXPECT_THROW(linear_small_batch(x, w, torch::randn({8}).to(torch::kBFloat16)), forma::Error);  // bias dtype
  EXPECT_THROW(gemv_f32(nullptr, nullptr, nullptr, nullptr, 17, 1, 1, GemvPath::Scalar), forma::Error);
}

TEST(Gemv, UnsupportedOnCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA GPU visible";
  torch::Tensor w = torch::randn({8, 16}, torch::kCUDA), x = torch::randn({2, 16}, torch::kCUDA);
  EXPECT_FALSE(gemv_supported(x, w));
}

TEST(Gemv, PathNamesAndEnvironment) {
  EXPECT_EQ(parse_gemv_path("avx2"), GemvPath::Avx2);
  EXPECT_EQ(parse_gemv_path("avx512bf16"), GemvPath::Avx512Bf16);
  EXPECT_THROW(parse_gemv_path("sse"), forma::Error);
  EXPECT_TRUE(gemv_path_available(GemvPath::Scalar));
  EXPECT_NE(best_gemv_path(), GemvPath::Auto);

  setenv("FORMA_KERNELS", "scalar", 1);
  set_gemv_path(GemvPath::Auto);
  EXPECT_EQ(active_gemv_path(), GemvPath::Scalar);
  setenv("FORMA_KERNELS", "neon", 1);
  EXPECT_THROW(set_gemv_path(GemvPath::Auto), forma::Error);
  setenv("FORMA_KERNELS", "auto", 1);
  set_gemv_path(GemvPath::Auto);
  EXPECT_EQ(active_gemv_path(), best_gemv_path());
  unsetenv("FORMA_KERNELS");
  set_gemv_path(GemvPath::Auto);
  EXPECT_EQ(active_gemv_path(), best_gemv_path());
  if (!gemv_path_available(GemvPath::Avx512Bf16)) {
    EXPECT_THROW(set_gemv_path(GemvPath::Avx512Bf16), forma::Error);
  }
}

}  // namespace
}  // namespace forma::kernels
