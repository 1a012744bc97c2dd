// Where tests find their inputs: the tokenizer assets in tests/assets, the book in data/moby-dick,
// the fixtures in tests/fixtures, the built forma binary, the project's Python (the reference
// libraries scripts/setup.sh installs into .venv), and a fresh scratch folder per test.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace forma::test {

std::string asset(const std::string& relative);    // tests/assets/<relative>; fails the test if missing
std::string book(const std::string& relative);     // data/moby-dick/<relative>; likewise
std::string fixture(const std::string& relative);  // tests/fixtures/<relative>; likewise
std::string forma_binary();
std::string python();  // the interpreter of the project's virtual environment
std::string scratch_dir();  // empty folder unique to the running test, removed at exit

struct CommandResult {
  int exit_code = -1;  // -1 when the command did not exit normally (a signal) or could not start
  std::string output;
  double seconds = 0;
};
// Runs `command` through /bin/sh; output is its stdout, and its stderr too when with_stderr.
CommandResult run_command(const std::string& command, bool with_stderr = true);
// Runs the built forma binary with `args` (a shell-quoted string).
CommandResult run_forma(const std::string& args, bool with_stderr = true);

// Each line of `text` parsed as JSON (command output in JSON-lines form).
std::vector<nlohmann::json> json_lines(const std::string& text);

// The message of the forma::Error that `fn` throws, or "(no error)".
std::string error_of(const std::function<void()>& fn);

// The ids `forma generate --model MODEL --prompt-ids PROMPT_IDS --max-new-tokens N --json` produces
// (greedy: the defaults); empty, with a test failure, when the command fails.
std::vector<int32_t> greedy_ids(const std::string& model, const std::string& prompt_ids, int max_new_tokens);

}  // namespace forma::test
