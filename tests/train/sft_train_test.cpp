// SFT training: the rows the trainer reads (positions restart per sample, targets follow the loss
// mask, every sample once per epoch), the loss normalisation (the step's loss is the mean over its
// trained tokens, computed here by hand from separate forwards), and `forma data prepare --sft` +
// `forma train` end to end with an exact resume.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "forma/data/sft_dataset.h"
#include "forma/train/recipe.h"
#include "forma/train/sft_batches.h"
#include "forma/train/trainer.h"
#include "test_paths.h"
#include "train_fixture.h"

namespace forma::test {
namespace {

// Sample k: ids 100 * k + t (t = 0 .. len-1), trained where t % 3 != 0.
std::string write_samples(const std::string& dir, const std::vector<int>& lengths) {
  data::SftDatasetWriter writer(dir + "/sft", data::TokenDType::int32);
  for (size_t k = 0; k < lengths.size(); ++k) {
    data::SftTokens s;
    for (int t = 0; t < lengths[k]; ++t) {
      s.ids.push_back(static_cast<int32_t>(100 * k + t));
      s.mask.push_back(t % 3 != 0);
    }
    writer.add(s);
  }
  writer.finish();
  return dir + "/sft";
}

TEST(SftBatches, PositionsRestartPerSampleAndTargetsFollowTheMask) {
  const std::vector<int> lengths = {5, 16, 3, 9, 20, 7, 11, 2, 8, 6};
  const std::string prefix = write_samples(scratch_dir(), lengths);
  for (bool packing : {true, false}) {
    SCOPED_TRACE(packing ? "packing" : "padding");
    train::SftDataSpec spec{{prefix}, 16, packing, 0.0, 5, 0};
    auto source = train::sft_samples(spec, data::Split::train);
    std::map<int64_t, int64_t> seen;  // sample -> tokens seen
    for (int64_t epoch = 0; epoch < 2; ++epoch) {
      seen.clear();
      for (int64_t row = 0; row < source->size(); ++row) {
        auto batch = source->batch(epoch * source->size() + row, 1, 16);
        const int64_t width = batch.inputs.size(1);
        EXPECT_LE(width, 16);
        EXPECT_EQ(batch.position_ids.defined(), packing);
        int64_t expect_position = 0, segment = -2;
        for (int64_t t = 0; t < width; ++t) {
          const int64_t id = batch.inputs[0][t].item<int64_t>();
          const int64_t target = batch.targets[0][t].item<int64_t>();
          if (packing && batch.segment_ids[0][t].item<int64_t>() == -1) {  // padding
            EXPECT_EQ(target, -100);
            continue;
          }
          const int64_t sample = id / 100, position = id % 100;
          if (packing) {
            const int64_t seg = batch.segment_ids[0][t].item<int64_t>();
            if (seg != segment) segment = seg, expect_position = 0;
            EXPECT_EQ(batch.position_ids[0][t].item<int64_t>(), expect_position++);
            EXPECT_EQ(position, batch.position_ids[0][t].item<int64_t>());
          } else if (id == 0 && t > 0) {
            continue;  // padding after the row's sample
          }
          seen[sample] = std::max(seen[sample], position + 1);
          const int64_t length = std::min(lengths[sample], 16);
          const bool last = position + 1 == length;
          const bool trained = !last && (position + 1) % 3 != 0;
          EXPECT_EQ(target, trained ? id + 1 : -100) << "sample " << sample << " position " << position;
        }
      }
      // Every sample once per epoch, whole (cut to 16 tokens).
      ASSERT_EQ(seen.size(), lengths.size());
      for (auto [sample, tokens] : seen) EXPECT_EQ(tokens, std::min(lengths[sample], 16)) << sample;
    }
  }
}

TEST(SftTrainer, StepLossIsTheMeanOverTrainedTokens) {
  const std::string dir = scratch_dir();
  const std::vector<int> lengths = {9, 14, 5, 11};
  // ids 100 * k + t exceed the tiny model's 320 ids: write in-vocabulary ids instead.
  data::SftDatasetWriter writer(dir + "/sft", data::TokenDType::uint16);
  std::vector<data::SftTokens> samples;
  for (size_t k = 0; k < lengths.size(); ++k) {
    data::SftTokens s;
    for (int t = 0; t < lengths[k]; ++t) {
      s.ids.push_back(static_cast<int32_t>((37 * k + 11 * t + 3) % 320));
      s.mask.push_back(t >= 2 && t % 4 != 1);
    }
    writer.add(s);
    samples.push_back(s);
  }
  writer.finish();
  for (bool packing : {true, false}) {
    SCOPED_TRACE(packing ? "packing" : "padding");
    // One step sees every sample: 4 rows padded, or the packed rows (fewer) and then empty ones.
    auto recipe = train::load_recipe(tiny_recipe_path(),
                                     {"model.path=" + fixture("hf-tiny/llama/config.json"), "data.prefixes=" + dir + "/sft",
                                      "data.valid_fraction=0", std::string("data.packing=") + (packing ? "true" : "false"),
                                      "training.micro_batch_size=1", "training.grad_accum_steps=4",
                                      "training.seq_len=16"});
    train::Trainer trainer(recipe, {.write_outputs = false});
    double sum = 0, count = 0;
    {
      torch::NoGradGuard no_grad;
      trainer.model()->eval();
      for (const auto& s : samples) {
        auto ids = torch::tensor(std::vector<int64_t>(s.ids.begin(), s.ids.end())).unsqueeze(0);
        auto logp = torch::log_softmax(trainer.model()->forward(ids)[0], -1);
        for (size_t t = 1; t < s.ids.size() && t < 16; ++t) {
          if (!s.mask[t]) continue;
          sum -= logp[static_cast<int64_t>(t) - 1][s.ids[t]].item<double>();
          count += 1;
        }
      }
    }
    if (!packing) {
      EXPECT_NEAR(trainer.step().loss, sum / count, 1e-5);
    } else {
      // Packed: the 39 tokens fit in 3 rows of 16; the fourth micro-batch is the next epoch's first row.
      // Compare the first epoch's rows alone: micro_batch_size 3, one micro-batch.
      auto recipe3 = recipe;
      recipe3.training.micro_batch_size = 3;
      recipe3.training.grad_accum_steps = 1;
      train::Trainer three(recipe3, {.write_outputs = false});
      EXPECT_NEAR(three.step().loss, sum / count, 1e-5);
    }
  }
}

TEST(SftTrainCli, PrepareTrainAndResumeExactly) {
  const std::string dir = scratch_dir();
  // A byte-level BPE small enough for the tiny model's 320 ids, and a compact chat template.
  auto tok = run_forma(std::vector<std::string>{"tokenizer", "train", "--input", book("chapter_1.txt"),
                                                "--vocab-size", "300", "--out", dir + "/tok"});
  ASSERT_EQ(tok.exit_code, 0) << tok.output;
  std::ofstream(dir + "/chat.jinja") << "{% for m in messages %}<{{ m['role'][0] }}>{{ m['content'] }}\n{% endfor %}"
                                        "{% if add_generation_prompt %}<a>{% endif %}";
  {
    std::ofstream out(dir + "/train.jsonl");
    for (int a = 1; a <= 8; ++a) {
      for (int b = 1; b <= 6; ++b) {
        nlohmann::json rec;
        if ((a + b) % 3 == 0) {
          rec = {{"instruction", "add " + std::to_string(a)}, {"input", std::to_string(b)},
                 {"output", std::to_string(a + b)}};
        } else {
          rec = {{"messages", {{{"role", "user"}, {"content", std::to_string(a) + "+" + std::to_string(b) + "?"}},
                               {{"role", "assistant"}, {"content", std::to_string(a + b)}}}}};
        }
        out << rec.dump() << "\n";
      }
    }
  }
  auto prep = run_forma(std::vector<std::string>{"data", "prepare", "--sft", "--input", dir + "/train.jsonl",
                                                 "--tokenizer", dir + "/tok", "--chat-template", dir + "/chat.jinja",
                                                 "--out", dir + "/data/sft", "--max-length", "48"});
  ASSERT_EQ(prep.exit_code, 0) << prep.output;
  EXPECT_NE(prep.output.find("48 samples"), std::string::npos) << prep.output;
  EXPECT_NE(prep.output.find("messages 32 alpaca 16"), std::string::npos) << prep.output;

  auto info = run_forma(std::vector<std::string>{"data", "info", dir + "/data/sft"});
  ASSERT_EQ(info.exit_code, 0) << info.output;
  EXPECT_NE(info.output.find("SFT mask"), std::string::npos) << info.output;

  auto args = [&](const std::string& out, std::vector<std::string> extra) {
    std::vector<std::string> a{"train", "--config", tiny_recipe_path()};
    for (auto& o : tiny_overrides(dir + "/data/sft", out)) a.insert(a.end(), {"--set", o});
    for (const char* o : {"training.seq_len=48", "training.max_steps=8", "checkpoint.interval=2",
                          "logging.eval_interval=4", "training.micro_batch_size=2", "training.grad_accum_steps=2"}) {
      a.insert(a.end(), {"--set", o});
    }
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  auto straight = run_forma(args(dir + "/a", {}));
  ASSERT_EQ(straight.exit_code, 0) << straight.output;
  EXPECT_NE(straight.output.find("SFT training data"), std::string::npos) << straight.output;
  EXPECT_NE(straight.output.find("trainable, 0 frozen"), std::string::npos) << straight.output;
  auto part1 = run_forma(args(dir + "/b", {"--stop-after", "4"}));
  ASSERT_EQ(part1.exit_code, 0) << part1.output;
  auto part2 = run_forma(args(dir + "/b", {"--resume"}));
  ASSERT_EQ(part2.exit_code, 0) << part2.output;
  auto a = logged_losses(dir + "/a/metrics.jsonl"), b = logged_losses(dir + "/b/metrics.jsonl");
  ASSERT_EQ(a.size(), 8u);
  EXPECT_EQ(a, b);  // bit-equal loss text
  auto val_a = logged_steps(dir + "/a/metrics.jsonl", true), val_b = logged_steps(dir + "/b/metrics.jsonl", true);
  ASSERT_EQ(val_a.size(), 2u);
  ASSERT_EQ(val_b.size(), 2u);
  EXPECT_EQ(val_a[1].loss, val_b[1].loss);
  EXPECT_LT(std::stod(a.back().second), std::stod(a.front().second));  // it learns
}

}  // namespace
}  // namespace forma::test
