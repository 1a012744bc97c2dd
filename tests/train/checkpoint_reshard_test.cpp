// Training checkpoints in the distributed format, in one process: a trained model's checkpoint
// resharded for tensor_parallel 2 (and 4) and back holds every tensor bit for bit; the pieces are
// where Megatron's split puts them (computed by hand here); each tp rank reads exactly the piece
// parallelize_tensor gives it (shard_tensor of the full tensor); merge writes what save_pretrained
// of the same model writes.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>

#include "forma/core/error.h"
#include "forma/core/files.h"
#include "forma/model/hf_io.h"
#include "forma/parallel/tensor_parallel_model.h"
#include "forma/train/checkpoint.h"
#include "forma/train/checkpoint_convert.h"
#include "forma/train/checkpoint_slices.h"
#include "test_paths.h"

// A named namespace: unity builds compile several test files as one unit.
namespace forma::checkpoint_reshard_test {

namespace fs = std::filesystem;

// `model` after two AdamW steps on random tokens (so that moments and step counts are non-trivial),
// checkpointed at step 2 into DIR/checkpoints. Returns the step folder.
std::string train_and_save(CausalLM& model, const std::string& dir) {
  torch::manual_seed(5);
  auto optimizer = train::make_local_adamw(train::decay_groups(*model), train::AdamWOptions{1e-2});
  for (int step = 0; step < 2; ++step) {
    torch::Tensor ids = torch::randint(0, model->config().vocab_size, {2, 9});
    causal_lm_loss(model->forward(ids), ids).backward();
    optimizer->step(1e-2, 1.0);
    optimizer->zero_grad();
  }
  train::TrainerState state;
  state.step = 2;
  return train::save_checkpoint(dir + "/checkpoints", 3, model, optimizer->gather_state_dict(), state, "");
}

CausalLM llama(int64_t vocab) {
  ModelConfig config = load_model_config(test::fixture("hf-tiny/llama/config.json"));
  config.vocab_size = vocab;  // 321: the split over 2 or 4 ranks needs padding
  CausalLM model(config);
  model->init_weights(11);
  return model;
}

train::CheckpointLayout tp_layout(int tp) {
  train::CheckpointLayout layout;
  layout.world_size = layout.tensor_parallel = tp;
  return layout;
}

std::vector<int64_t> piece_geometry(const train::TensorEntry& e, size_t i, bool lengths) {
  return lengths ? e.pieces.at(i).lengths : e.pieces.at(i).offsets;
}

TEST(CheckpointReshard, OneToTwoToOneKeepsEveryTensorAndCutsMegatronPieces) {
  auto dir = test::scratch_dir();
  CausalLM model = llama(321);
  std::string saved = train_and_save(model, dir);
  train::reshard_checkpoint(saved, dir + "/tp2", tp_layout(2));
  train::reshard_checkpoint(dir + "/tp2", dir + "/tp1", tp_layout(1));
  train::reshard_checkpoint(saved, dir + "/tp4", tp_layout(4));

  train::DistCheckpointReader original(saved), two(dir + "/tp2"), back(dir + "/tp1"), four(dir + "/tp4");
  EXPECT_EQ(two.metadata().layout.tensor_parallel, 2);
  EXPECT_EQ(two.metadata().step, 2);
  EXPECT_EQ(back.metadata().layout.tensor_parallel, 1);
  ASSERT_EQ(original.metadata().tensors.size(), back.metadata().tensors.size());
  // 2 x 9 parameters of a 2-layer Llama + lm_head and norms, each with exp_avg, exp_avg_sq, step.
  EXPECT_EQ(original.metadata().tensors.size(), (2 * 9 + 3) * 4u);
  for (const auto& [name, entry] : original.metadata().tensors) {
    torch::Tensor full = original.read(name);
    EXPECT_TRUE(torch::equal(two.read(name), full)) << name;
    EXPECT_TRUE(torch::equal(back.read(name), full)) << name;
    EXPECT_TRUE(torch::equal(four.read(name), full)) << name;
    EXPECT_EQ(back.entry(name).pieces.size(), 1u) << name;
  }
  // The model itself, as HF's file: byte for byte what the trainer wrote with one rank.
  EXPECT_EQ(read_file(dir + "/tp1/model.safetensors"), read_file(saved + "/model.safetensors"));
  EXPECT_FALSE(fs::exists(dir + "/tp2/model.safetensors"));  // a tp=2 run has no rank holding it all
  EXPECT_NO_THROW(train::verify_checkpoint(dir + "/tp2", train::required_checkpoint_files()));

  // Vocabulary 321 over 2 ranks: 161 rows each, the last rank's one padding row never written.
  for (const char* name : {"model.embed_tokens.weight", "optim/model.embed_tokens.weight.exp_avg", "lm_head.weight"}) {
    const auto& e = two.entry(name);
    ASSERT_EQ(e.pieces.size(), 2u) << name;
    EXPECT_EQ(piece_geometry(e, 0, false), (std::vector<int64_t>{0, 0})) << name;
    EXPECT_EQ(piece_geometry(e, 0, true), (std::vector<int64_t>{161, 64})) << name;
    EXPECT_EQ(piece_geometry(e, 1, false), (std::vector<int64_t>{161, 0})) << name;
    EXPECT_EQ(piece_geometry(e, 1, true), (std::vector<int64_t>{160, 64})) << name;
    EXPECT_EQ(e.pieces[1].file, "shards/rank-00001.safetensors");
  }
  // Row-parallel o_proj: its 64 input columns halved. Norms and step counts: one piece, by rank 0.
  const auto& o = two.entry("model.layers.1.self_attn.o_proj.weight");
  EXPECT_EQ(piece_geometry(o, 1, false), (std::vector<int64_t>{0, 32}));
  EXPECT_EQ(piece_geometry(o, 1, true), (std::vector<int64_t>{64, 32}));
  for (const char* name : {"model.norm.weight", "optim/model.layers.0.mlp.up_proj.weight.step"}) {
    ASSERT_EQ(two.entry(name).pieces.size(), 1u) << name;
    EXPECT_EQ(two.entry(name).pieces[0].file, "shards/rank-00000.safetensors") << name;
  }
  // 4 ranks, 2 key-value heads of 16 rows: each head held by 2 ranks, written by the first of them.
  const auto& k = four.entry("model.layers.0.self_attn.k_proj.weight");
  ASSERT_EQ(k.pieces.size(), 2u);
  EXPECT_EQ(k.pieces[0].file, "shards/rank-00000.safetensors");
  EXPECT_EQ(k.pieces[1].file, "shards/rank-00002.safetensors");
  EXPECT_EQ(piece_geometry(k, 1, false), (std::vector<int64_t>{16, 0}));
  // ceil(321 / 4) = 81 rows: 81, 81, 81 and the last 78.
  EXPECT_EQ(piece_geometry(four.entry("lm_head.weight"), 3, false), (std::vector<int64_t>{243, 0}));
  EXPECT_EQ(piece_geometry(four.entry("lm_head.weight"), 3, true), (std::vector<int64_t>{78, 64}));
}

TEST(CheckpointReshard, EachTensorParallelRankReadsThePieceParallelizeTensorGivesIt) {
  auto dir = test::scratch_dir();
  CausalLM model = llama(321);
  std::string saved = train_and_save(model, dir);
  train::reshard_checkpoint(saved, dir + "/tp2", tp_layout(2));
  const ModelConfig& config = model->config();
  auto params = model->named_parameters();
  // From a tp=1 and a tp=2 checkpoint, for tp = 2 and 4: every rank's local tensor (padding rows
  // included) is shard_tensor of the full one, the slicing parallelize_tensor applies.
  for (const std::string& source : {saved, dir + "/tp2"}) {
    train::DistCheckpointReader reader(source);
    for (int tp : {2, 4}) {
      auto specs = parallel::tensor_parallel_shard_specs(config, tp, false);
      for (const auto& p : params) {
        auto it = specs.find(p.key());
        parallel::ShardSpec spec = it != specs.end() ? it->second : parallel::whole_shard_spec(tp, false);
        for (const std::string& name : {p.key(), "optim/" + p.key() + ".exp_avg_sq"}) {
          torch::Tensor full = reader.read(name);
          for (int rank = 0; rank < tp; ++rank) {
            torch::Tensor expected = parallel::shard_tensor(full, spec, tp, rank);
            auto slice = train::local_rank_slice(expected.sizes().vec(), spec, tp, rank, name);
            EXPECT_TRUE(torch::equal(train::read_rank_slice(reader, name, slice), expected))
                << source << " tp=" << tp << " rank " << rank << " " << name;
          }
        }
      }
    }
  }
}

TEST(CheckpointMerge, WritesWhatSavePretrainedOfTheSameModelWrites) {
  auto dir = test::scratch_dir();
  // gpt2: HF fuses q/k/v into c_attn and stores Conv1D weights transposed; the embedding is tied.
  CausalLM model = load_pretrained(test::fixture("hf-tiny/gpt2"));
  std::string saved = train_and_save(model, dir);
  train::reshard_checkpoint(saved, dir + "/tp2", tp_layout(2));
  EXPECT_EQ(train::merge_checkpoint(dir + "/tp2", dir + "/merged"), model->named_parameters().size());
  save_pretrained(model, dir + "/reference");
  EXPECT_EQ(read_file(dir + "/merged/model.safetensors"), read_file(dir + "/reference/model.safetensors"));
  EXPECT_EQ(read_file(dir + "/merged/config.json"), read_file(dir + "/reference/config.json"));
  EXPECT_TRUE(fs::exists(dir + "/merged/generation_config.json"));
  for (const char* absent : {"metadata.json", "manifest.json", "trainer_state.json", "shards"}) {
    EXPECT_FALSE(fs::exists(dir + "/merged/" + std::string(absent))) << absent;
  }
  CausalLM loaded = load_pretrained(dir + "/merged");
  auto want = model->named_parameters();
  for (const auto& p : loaded->named_parameters()) EXPECT_TRUE(torch::equal(p.value(), want[p.key()])) << p.key();
  // The output folder is never half-written or overwritten.
  std::string again;
  try {
    train::merge_checkpoint(dir + "/tp2", dir + "/merged");
  } catch (const Error& e) {
    again = e.what();
  }
  EXPECT_NE(again.find("already exists"), std::string::npos) << again;
}

TEST(CheckpointReshard, RefusesLayoutsTheModelCannotTakeAndForeignModels) {
  auto dir = test::scratch_dir();
  CausalLM model = llama(320);
  std::string saved = train_and_save(model, dir);
  auto error_of = [](const std::function<void()>& fn) -> std::string {
    try {
      fn();
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  std::string three = error_of([&] { train::reshard_checkpoint(saved, dir + "/tp3", tp_layout(3)); });
  EXPECT_NE(three.find("num_attention_heads=4 is not divisible by tensor_parallel=3"), std::string::npos) << three;
  EXPECT_FALSE(fs::exists(dir + "/tp3"));
  // A checkpoint of another model: the first tensor it lacks or does not know is named.
  CausalLM other = llama(330);
  auto optimizer = train::make_local_adamw(train::decay_groups(*other), train::AdamWOptions{});
  std::string shape = error_of([&] { train::load_checkpoint(saved, other, *optimizer); });
  EXPECT_NE(shape.find("tensor 'model.embed_tokens.weight' has shape 320x64, but this model's is 330x64"),
            std::string::npos)
      << shape;
  ModelConfig deeper = other->config();
  deeper.vocab_size = 320, deeper.num_hidden_layers = 1;
  CausalLM shallow(deeper);
  std::string extra = error_of([&] { train::load_checkpoint(saved, shallow, *optimizer); });
  EXPECT_NE(extra.find("belongs to no parameter of this llama model"), std::string::npos) << extra;
  EXPECT_NE(extra.find("model.layers.1."), std::string::npos) << extra;
}

}  // namespace forma::checkpoint_reshard_test
