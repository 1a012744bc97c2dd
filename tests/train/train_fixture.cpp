#include "train_fixture.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <random>

#include "forma/data/indexed_dataset.h"
#include "test_paths.h"

namespace forma::test {

std::string write_pattern_dataset(const std::string& dir, int documents, int length, int vocab) {
  std::string prefix = dir + "/pattern";
  data::IndexedDatasetWriter writer(prefix, data::TokenDType::uint16);
  std::mt19937 rng(42);
  for (int d = 0; d < documents; ++d) {
    int start = static_cast<int>(rng() % static_cast<unsigned>(vocab)), stride = 1 + static_cast<int>(rng() % 3);
    std::vector<int32_t> ids(static_cast<size_t>(length));
    for (int i = 0; i < length; ++i) ids[static_cast<size_t>(i)] = (start + i * stride) % vocab;
    writer.add_document(ids);
  }
  writer.finish();
  return prefix;
}

std::string tiny_recipe_path() { return std::string(FORMA_FIXTURES_DIR) + "/../../configs/recipes/tiny-test.yaml"; }

std::vector<std::string> tiny_overrides(const std::string& data_prefix, const std::string& output_dir) {
  return {"model.path=" + fixture("hf-tiny/llama/config.json"), "data.prefixes=" + data_prefix,
          "output_dir=" + output_dir};
}

CommandResult run_forma(const std::vector<std::string>& args) {
  std::string quoted;
  for (auto& a : args) quoted += " '" + a + "'";  // test arguments hold no single quotes
  return run_forma(quoted);
}

std::vector<std::pair<int64_t, std::string>> logged_losses(const std::string& metrics_path) {
  std::vector<std::pair<int64_t, std::string>> out;
  std::ifstream in(metrics_path);
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    if (j.contains("loss")) out.emplace_back(j["step"].get<int64_t>(), j["loss"].dump());
  }
  return out;
}

std::vector<LoggedStep> logged_steps(const std::string& metrics_path, bool validation) {
  std::vector<LoggedStep> out;
  std::ifstream in(metrics_path);
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    if (!validation && j.contains("loss")) {
      out.push_back({j["step"].get<int64_t>(), j["loss"].get<double>(), j["grad_norm"].get<double>()});
    } else if (validation && j.contains("val_loss")) {
      out.push_back({j["step"].get<int64_t>(), j["val_loss"].get<double>(), 0.0});
    }
  }
  return out;
}

}  // namespace forma::test
