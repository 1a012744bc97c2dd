// `forma bench gemv`: every product gives a row (JSON lines), and bad flags are errors. Figures are
// not checked: speed is the benchmark's business, not a test's.
#include <gtest/gtest.h>

#include "test_paths.h"

namespace forma::test {
namespace {

TEST(BenchGemvCli, JsonRowPerProduct) {
  // Tiny settings: one short rep per product, small working set and bandwidth buffer.
  CommandResult r = run_forma("bench gemv --m 1,3 --dtypes fp32,bf16 --reps 1 --min-time 0.001 "
                              "--working-set-mb 1 --bandwidth-mb 64 --threads 1 --json",
                              /*with_stderr=*/false);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto rows = json_lines(r.output);
  ASSERT_EQ(rows.size(), 2u * 5u * 2u);  // dtypes × shapes × m
  for (const auto& row : rows) {
    EXPECT_EQ(row["bench"], "gemv");
    EXPECT_EQ(row["threads"], 1);
    EXPECT_GT(row["forma_gb_per_s"].get<double>(), 0);
    EXPECT_GT(row["linear_gb_per_s"].get<double>(), 0);
    EXPECT_GT(row["read_bandwidth_gb_per_s"].get<double>(), 0);
  }
  EXPECT_EQ(rows.front()["dtype"], "fp32");
  EXPECT_EQ(rows.back()["dtype"], "bf16");
  EXPECT_EQ(rows.back()["k"], 2048);
  EXPECT_EQ(rows.back()["m"], 3);
}

TEST(BenchGemvCli, BadFlags) {
  for (const char* flags : {"--m 17", "--m 0", "--m x", "--dtypes fp16", "--path sse", "--reps 0"}) {
    CommandResult r = run_forma(std::string("bench gemv --bandwidth-mb 64 ") + flags);
    EXPECT_EQ(r.exit_code, 1) << flags << ": " << r.output;
  }
}

}  // namespace
}  // namespace forma::test
