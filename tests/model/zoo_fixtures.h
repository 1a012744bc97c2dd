// The fixtures of tests/fixtures/hf-zoo (scripts/make_hf_fixtures.py), each with its model_type and
// whether forma runs it: its model_type is registered (architecture.h) and it uses no feature forma
// refuses (kRefusedZooFixtures, each with the words its error must contain).
#pragma once
#include <string>
#include <vector>

namespace forma::test {

struct ZooFixture {
  std::string dir;         // folder under hf-zoo
  std::string model_type;  // from its config.json
  bool supported = false;
  std::string refusal;  // when not supported: what the error must say
};

// Read once from the folder, sorted by name.
const std::vector<ZooFixture>& zoo_fixtures();

}  // namespace forma::test
