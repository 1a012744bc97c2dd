// `forma model info` end to end: the binary prints the published parameter count of a preset and
// names a bad model in its error.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <string>

#include "test_paths.h"

namespace {

TEST(ModelCli, InfoPrintsPublishedCounts) {
  auto [status, out, out_seconds] =
      forma::test::run_command(forma::test::forma_binary() + " model info llama-2-7b --seq-len 4096");
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("6738415616"), std::string::npos) << out;
  auto [moe_status, moe, moe_seconds] =
      forma::test::run_command(forma::test::forma_binary() + " model info mixtral-8x7b");
  EXPECT_EQ(moe_status, 0) << moe;
  EXPECT_NE(moe.find("46702792704"), std::string::npos) << moe;
  EXPECT_NE(moe.find("active per token 12879925248"), std::string::npos) << moe;
}

TEST(ModelCli, InfoReadsFixtureFolder) {
  auto [status, out, out_seconds] =
      forma::test::run_command(forma::test::forma_binary() + " model info " + forma::test::fixture("hf-tiny/mixtral"));
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("262976"), std::string::npos) << out;  // reference.json num_parameters
}

TEST(ModelCli, UnknownModelIsAnError) {
  auto [status, out, out_seconds] = forma::test::run_command(forma::test::forma_binary() + " model info no-such-model");
  EXPECT_EQ(status, 1);
  EXPECT_NE(out.find("error: model 'no-such-model'"), std::string::npos) << out;
}

}  // namespace
