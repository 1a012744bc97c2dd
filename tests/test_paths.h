// Where tests find their inputs: the npm assets fetched by scripts/fetch_assets.sh, the fixtures
// copied into tests/fixtures, the built forma binary, and a fresh scratch folder per test.
#pragma once
#include <string>

namespace forma::test {

std::string asset(const std::string& relative);    // .assets/<relative>; fails the test if missing
std::string fixture(const std::string& relative);  // tests/fixtures/<relative>; likewise
std::string forma_binary();
std::string scratch_dir();  // empty folder unique to the running test, removed at exit

}  // namespace forma::test
