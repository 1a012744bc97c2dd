// The model zoo's bookkeeping: every registered architecture has a Hugging Face fixture that the
// whole fixture suite (hf_fixture_test.cpp) runs, and every fixture forma does not run is refused
// with an error naming the config file and what it cannot do.
#include <gtest/gtest.h>

#include "forma/model/architecture.h"
#include "forma/model/hf_io.h"
#include "test_paths.h"
#include "zoo_fixtures.h"

namespace forma {
namespace {

TEST(HfZoo, EveryRegisteredArchitectureHasAFixtureItRuns) {
  ASSERT_GE(test::zoo_fixtures().size(), 30u);
  for (const Architecture* a : all_architectures()) {
    bool covered = false;
    for (const auto& f : test::zoo_fixtures()) covered |= f.supported && f.model_type == a->model_type;
    EXPECT_TRUE(covered) << a->model_type << " has no hf-zoo fixture that forma runs";
  }
}

TEST(HfZoo, FixturesFormaDoesNotRunAreRefusedNamingTheConfigAndWhy) {
  for (const auto& f : test::zoo_fixtures()) {
    if (f.supported) continue;
    const std::string dir = test::fixture("hf-zoo/" + f.dir);
    const std::string error = test::error_of([&] { load_pretrained(dir); });
    EXPECT_NE(error.find(dir + "/config.json"), std::string::npos) << f.dir << ": " << error;
    EXPECT_NE(error.find(f.refusal), std::string::npos) << f.dir << ": " << error;
  }
  // Every zoo fixture runs since deepseek_v2/v3: kRefusedZooFixtures is empty. A fixture
  // refused again must be listed there with its error, which this test then checks.
}

}  // namespace
}  // namespace forma
