// `forma model info` end to end: the binary prints the published parameter count of a preset and
// names a bad model in its error.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <string>

#include "test_paths.h"

namespace {

// Runs a shell command, returning its stdout+stderr and exit status.
std::pair<std::string, int> run(const std::string& command) {
  std::string out;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return {"popen failed", -1};
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  int status = pclose(pipe);
  return {out, WEXITSTATUS(status)};
}

TEST(ModelCli, InfoPrintsPublishedCounts) {
  auto [out, status] = run(forma::test::forma_binary() + " model info llama-2-7b --seq-len 4096");
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("6738415616"), std::string::npos) << out;
  auto [moe, moe_status] = run(forma::test::forma_binary() + " model info mixtral-8x7b");
  EXPECT_EQ(moe_status, 0) << moe;
  EXPECT_NE(moe.find("46702792704"), std::string::npos) << moe;
  EXPECT_NE(moe.find("active per token 12879925248"), std::string::npos) << moe;
}

TEST(ModelCli, InfoReadsFixtureFolder) {
  auto [out, status] = run(forma::test::forma_binary() + " model info " + forma::test::fixture("hf-tiny/mixtral"));
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("262976"), std::string::npos) << out;  // reference.json num_parameters
}

TEST(ModelCli, UnknownModelIsAnError) {
  auto [out, status] = run(forma::test::forma_binary() + " model info no-such-model");
  EXPECT_EQ(status, 1);
  EXPECT_NE(out.find("error: model 'no-such-model'"), std::string::npos) << out;
}

}  // namespace
