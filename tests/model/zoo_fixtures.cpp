#include "zoo_fixtures.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "forma/model/architecture.h"

namespace forma::test {

namespace {

// Fixtures of registered architectures that use a feature forma does not implement yet, and the
// words the refusal must contain (the field it names).
const std::map<std::string, std::string> kRefusedZooFixtures = {
};

bool registered(const std::string& model_type) {
  for (const Architecture* a : all_architectures()) {
    if (a->model_type == model_type) return true;
  }
  return false;
}

}  // namespace

const std::vector<ZooFixture>& zoo_fixtures() {
  static const std::vector<ZooFixture> fixtures = [] {
    namespace fs = std::filesystem;
    std::vector<ZooFixture> out;
    for (const auto& entry : fs::directory_iterator(fs::path(FORMA_FIXTURES_DIR) / "hf-zoo")) {
      if (!entry.is_directory()) continue;
      std::ifstream in(entry.path() / "config.json");
      ZooFixture f;
      f.dir = entry.path().filename().string();
      f.model_type = nlohmann::json::parse(in).at("model_type").get<std::string>();
      auto refused = kRefusedZooFixtures.find(f.dir);
      if (!registered(f.model_type)) {
        f.refusal = "unknown model type '" + f.model_type + "'";
      } else if (refused != kRefusedZooFixtures.end()) {
        f.refusal = refused->second;
      } else {
        f.supported = true;
      }
      out.push_back(f);
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.dir < b.dir; });
    return out;
  }();
  return fixtures;
}

}  // namespace forma::test
