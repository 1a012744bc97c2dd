// What a command's exit status promises (README, "Exit status"): 0 only when everything asked for
// was done, including writing the output; 1 for any error, command-line mistakes included; and
// errors from inside LibTorch reach the user as one line, without its C++ stack trace.
#include <gtest/gtest.h>

#include "test_paths.h"

namespace forma::test {
namespace {

TEST(ExitStatus, CommandLineMistakesExitOne) {
  for (const char* args : {" generate", " generate --bogus", " generate --model x --max-new-tokens abc",
                           " no-such-command"}) {
    auto r = run_forma(args);
    EXPECT_EQ(r.exit_code, 1) << args << "\n" << r.output;
    EXPECT_NE(r.output.find("--help"), std::string::npos) << args << "\n" << r.output;
  }
  EXPECT_EQ(run_forma(" --help").exit_code, 0);
  EXPECT_EQ(run_forma(" generate --help").exit_code, 0);
}

TEST(ExitStatus, OutputThatCannotBeWrittenIsAnError) {
  const std::string generate = " generate --model " + fixture("hf-tiny/llama") +
                               " --prompt-ids 1,2,3 --max-new-tokens 4 --json";
  auto ok = run_command(forma_binary() + generate + " > /dev/null");
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  // { ... } 2>&1: the redirection of stdout inside, stderr to the test's pipe outside.
  auto full = run_command("{ " + forma_binary() + generate + " > /dev/full; }");
  EXPECT_EQ(full.exit_code, 1) << full.output;
  EXPECT_NE(full.output.find("error: writing standard output: No space left on device"), std::string::npos)
      << full.output;
  auto closed = run_command("{ " + forma_binary() + generate + " >&-; }");
  EXPECT_EQ(closed.exit_code, 1) << closed.output;
  EXPECT_NE(closed.output.find("error: writing standard output"), std::string::npos) << closed.output;
}

}  // namespace
}  // namespace forma::test
