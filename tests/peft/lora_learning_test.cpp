// The LoRA learning test (issue 11): LoRA adapters alone teach a frozen tiny model a task it cannot
// do, end to end through the command line. The task: reverse a 3-letter word written as spaced
// letters ("reverse k e m =" -> " m e k"), on 2000 random words for training and 100 other words
// held out. The base is the fixture Llama of tests/fixtures/hf-tiny (random weights, 2 layers,
// 64 wide); `forma data prepare --sft` makes prompt/completion samples, `forma train` with a
// `lora` section (all-linear, r=16) trains the adapters, and greedy `forma generate --prompts-file`
// scores exact match on the held-out prompts without the adapter (the base) and with it.
// The answers are computed here, independently of forma. About 20 s on 2 loaded cores.
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "../train/train_fixture.h"
#include "test_paths.h"

// A namespace of its own: unity builds compile this file together with other tests.
namespace forma::test::lora_learning_test {
namespace {

constexpr int kWordLength = 3;
constexpr int kTrainWords = 2000;
constexpr int kHeldOutWords = 100;
constexpr int kModelVocab = 320;  // the fixture's vocab_size

std::string spaced(const std::string& word) {
  std::string s;
  for (char c : word) (s += ' ') += c;
  return s;
}

// Distinct random words in a fixed order: mt19937's raw output is the same on every platform
// (unlike std::uniform_int_distribution's), so the data are too.
std::vector<std::string> random_words(int count) {
  std::mt19937 rng(7);
  std::set<std::string> seen;
  std::vector<std::string> words;
  while (static_cast<int>(words.size()) < count) {
    std::string w;
    for (int i = 0; i < kWordLength; ++i) w += static_cast<char>('a' + rng() % 26);
    if (seen.insert(w).second) words.push_back(w);
  }
  return words;
}

std::string prompt_of(const std::string& word) { return "reverse" + spaced(word) + " ="; }
std::string answer_of(const std::string& word) { return spaced(std::string(word.rbegin(), word.rend())); }

// The vocabulary size of a tokenizer.json (its model's vocab, special tokens included).
int tokenizer_size(const std::string& dir) {
  std::ifstream in(dir + "/tokenizer.json");
  return static_cast<int>(nlohmann::json::parse(in).at("model").at("vocab").size());
}

// Greedy generation of every held-out prompt in one batch; the share whose output is exactly the
// answer followed by <|endoftext|> (the model must also stop).
double exact_match(const std::string& model, const std::string& adapter, const std::string& prompts,
                   const std::vector<std::string>& held_out, std::string* sample) {
  std::vector<std::string> args{"generate", "--model", model, "--prompts-file", prompts,
                                "--max-new-tokens", std::to_string(kWordLength + 1), "--threads", "1"};
  if (!adapter.empty()) args.insert(args.end(), {"--adapter", adapter});
  std::string quoted;
  for (const auto& a : args) quoted += " '" + a + "'";
  auto gen = run_forma(quoted, /*with_stderr=*/false);  // stdout: the JSON lines alone
  EXPECT_EQ(gen.exit_code, 0) << gen.output;
  auto rows = json_lines(gen.output);
  EXPECT_EQ(rows.size(), held_out.size()) << gen.output;
  int right = 0;
  for (size_t i = 0; i < rows.size() && i < held_out.size(); ++i) {
    const auto text = rows[i].at("text").get<std::string>();
    right += text == answer_of(held_out[i]) + "<|endoftext|>";
    if (i == 0 && sample) *sample = prompt_of(held_out[i]) + " -> " + text;
  }
  return static_cast<double>(right) / static_cast<double>(held_out.size());
}

TEST(LoraLearning, ReverseWordsHeldOutExactMatchFromNearZeroToAtLeast90Percent) {
  const std::string dir = scratch_dir();
  const auto words = random_words(kTrainWords + kHeldOutWords);  // distinct: train and held out are disjoint
  const std::vector<std::string> train(words.begin(), words.begin() + kTrainWords);
  const std::vector<std::string> held_out(words.begin() + kTrainWords, words.end());
  {
    std::ofstream records(dir + "/train.jsonl"), text(dir + "/text.txt"), prompts(dir + "/prompts.jsonl");
    for (const auto& w : train) {
      records << nlohmann::json{{"prompt", prompt_of(w)}, {"completion", answer_of(w)}}.dump() << "\n";
      text << prompt_of(w) << answer_of(w) << "\n";
    }
    for (const auto& w : held_out) prompts << nlohmann::json{{"prompt", prompt_of(w)}}.dump() << "\n";
  }

  // A byte-level BPE of the training text: every " x" becomes one token. It runs out of pairs to
  // merge well below the model's 320 ids; padding special tokens fill the rest, so that any id the
  // untrained base emits decodes.
  auto tok = run_forma(std::vector<std::string>{"tokenizer", "train", "--input", dir + "/text.txt", "--vocab-size",
                                                std::to_string(kModelVocab), "--out", dir + "/tok0"});
  ASSERT_EQ(tok.exit_code, 0) << tok.output;
  const int pads = kModelVocab - tokenizer_size(dir + "/tok0");
  ASSERT_GE(pads, 0);
  std::vector<std::string> tok_args{"tokenizer", "train", "--input", dir + "/text.txt", "--vocab-size",
                                    std::to_string(kModelVocab), "--out", dir + "/tok", "--special", "<|endoftext|>"};
  for (int i = 0; i < pads; ++i) tok_args.insert(tok_args.end(), {"--special", "<|pad" + std::to_string(i) + "|>"});
  tok = run_forma(tok_args);
  ASSERT_EQ(tok.exit_code, 0) << tok.output;
  ASSERT_EQ(tokenizer_size(dir + "/tok"), kModelVocab);

  auto prep = run_forma(std::vector<std::string>{"data", "prepare", "--sft", "--input", dir + "/train.jsonl",
                                                 "--tokenizer", dir + "/tok", "--out", dir + "/data/reverse"});
  ASSERT_EQ(prep.exit_code, 0) << prep.output;
  // prompt: "reverse", 3 letters, " ="; trained on: 3 letters and EOS.
  EXPECT_NE(prep.output.find("2000 samples, 18000 tokens (uint16), 8000 trained on"), std::string::npos)
      << prep.output;

  std::ofstream(dir + "/recipe.yaml") << "model:\n  path: " << fixture("hf-tiny/llama") << "\n"
                                      << "tokenizer:\n  path: " << dir << "/tok\n"
                                      << "data:\n  prefixes: [" << dir << "/data/reverse]\n"
                                      << R"(  valid_fraction: 0.02
  seed: 1
training:
  micro_batch_size: 16
  seq_len: 64
  max_steps: 600
  seed: 1
  threads: 1          # one thread: steps are tiny, and on a shared machine two threads wait on each other
optimizer:
  lr: 1.0e-2
  weight_decay: 0.0
schedule:
  type: cosine
  warmup_steps: 20
logging:
  log_interval: 50
  eval_interval: 0
checkpoint:
  interval: 0
lora:
  r: 16
  alpha: 32
  target_modules: all-linear
)" << "output_dir: " << dir << "/out\n";
  auto trained = run_forma(std::vector<std::string>{"train", "--config", dir + "/recipe.yaml"});
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  EXPECT_NE(trained.output.find("LoRA: 14 layers adapted (r=16, alpha=32)"), std::string::npos) << trained.output;
  const std::string ckpt = dir + "/out/checkpoints/step-0000600";

  // The checkpoint's model.safetensors is the frozen base: without --adapter it is the untrained model.
  std::string before_sample, after_sample;
  const double before = exact_match(ckpt, "", dir + "/prompts.jsonl", held_out, &before_sample);
  const double after = exact_match(ckpt, ckpt, dir + "/prompts.jsonl", held_out, &after_sample);
  RecordProperty("exact_match_before", std::to_string(before));
  RecordProperty("exact_match_after", std::to_string(after));
  std::cout << "held-out exact match: base " << before << " (" << before_sample << "), with the adapter " << after
            << " (" << after_sample << ")\n";
  EXPECT_LE(before, 0.05);
  EXPECT_GE(after, 0.90);
}

}  // namespace
}  // namespace forma::test::lora_learning_test
