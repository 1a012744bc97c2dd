#include "test_paths.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

namespace fs = std::filesystem;

namespace forma::test {

static std::string existing(const std::string& root, const std::string& relative) {
  std::string path = root + "/" + relative;
  if (!fs::exists(path)) {
    ADD_FAILURE() << "missing test input " << path << " (run scripts/setup.sh)";
  }
  return path;
}

std::string asset(const std::string& relative) { return existing(FORMA_ASSETS_DIR, relative); }
std::string fixture(const std::string& relative) { return existing(FORMA_FIXTURES_DIR, relative); }
std::string forma_binary() { return FORMA_BINARY; }

std::string scratch_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : "global";
  fs::path dir = fs::temp_directory_path() / ("forma-test-" + std::to_string(::getpid())) / name;
  // The first call in a test starts from an empty folder; later calls in the same test reuse it.
  static std::string current;
  if (current != dir.string()) {
    fs::remove_all(dir);
    fs::create_directories(dir);
    current = dir.string();
  }
  static struct Cleanup {
    fs::path root = fs::temp_directory_path() / ("forma-test-" + std::to_string(::getpid()));
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(root, ec);
    }
  } cleanup;
  return dir.string();
}

}  // namespace forma::test
