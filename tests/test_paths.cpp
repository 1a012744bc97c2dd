#include "test_paths.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "forma/core/error.h"

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
std::string book(const std::string& relative) { return existing(FORMA_BOOK_DIR, relative); }
std::string fixture(const std::string& relative) { return existing(FORMA_FIXTURES_DIR, relative); }
std::string forma_binary() { return FORMA_BINARY; }
std::string python() { return FORMA_PYTHON; }

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

CommandResult run_command(const std::string& command, bool with_stderr) {
  CommandResult result;
  auto start = std::chrono::steady_clock::now();
  std::FILE* pipe = popen((command + (with_stderr ? " 2>&1" : " 2>/dev/null")).c_str(), "r");
  if (!pipe) return result;
  char buffer[4096];
  for (size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) result.output.append(buffer, n);
  int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

CommandResult run_forma(const std::string& args, bool with_stderr) {
  return run_command("'" + forma_binary() + "' " + args, with_stderr);
}

std::vector<nlohmann::json> json_lines(const std::string& text) {
  std::vector<nlohmann::json> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

std::vector<int32_t> greedy_ids(const std::string& model, const std::string& prompt_ids, int max_new_tokens) {
  auto r = run_forma("generate --model '" + model + "' --prompt-ids " + prompt_ids + " --max-new-tokens " +
                         std::to_string(max_new_tokens) + " --json",
                     /*with_stderr=*/false);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return r.exit_code == 0 ? nlohmann::json::parse(r.output).at("output_ids").get<std::vector<int32_t>>()
                          : std::vector<int32_t>{};
}

}  // namespace forma::test
