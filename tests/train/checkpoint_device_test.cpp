// A checkpoint written on one device type loads on another, simulated on a machine with only a CPU:
// the parameters it loads into live on the `meta` device, which LibTorch treats as a device type of
// its own. Mixing meta and CPU tensors in one operation raises the same "expected all tensors on the same
// device" error that mixing CUDA and CPU tensors does, so any loading code that assumes the
// checkpoint's device (the CPU) equals the model's fails here as it would on a GPU. (tests/cuda runs
// the real thing: GPU -> CPU -> GPU through forma train --resume.)
#include <gtest/gtest.h>

#include "forma/model/config.h"
#include "forma/train/adamw.h"
#include "forma/train/checkpoint.h"
#include "forma/train/optimizer.h"
#include "test_paths.h"

namespace forma::checkpoint_device_test {

CausalLM tiny_llama() {
  CausalLM model(load_model_config(test::fixture("hf-tiny/llama/config.json")));
  model->init_weights(3);
  return model;
}

TEST(CheckpointDevice, CpuCheckpointLoadsIntoAModelOnAnotherDeviceType) {
  auto dir = test::scratch_dir();
  CausalLM trained = tiny_llama();
  auto optimizer = train::make_local_adamw(train::decay_groups(*trained), train::AdamWOptions{1e-2});
  torch::manual_seed(5);
  torch::Tensor ids = torch::randint(0, trained->config().vocab_size, {2, 9});
  causal_lm_loss(trained->forward(ids), ids).backward();
  optimizer->step(1e-2, 1.0);
  train::TrainerState state;
  state.step = 1;
  auto saved = train::save_checkpoint(dir + "/checkpoints", 1, trained, optimizer->gather_state_dict(), state, "");

  // LibTorch cannot move a module's parameters to meta (set_data refuses another tensor type), so the
  // weights load into a CPU model, by copy_, which crosses devices by contract; the optimizer, whose
  // moments are made from the checkpoint's tensors, updates parameters that live on meta.
  CausalLM model = tiny_llama();
  std::vector<train::NamedParameter> on_meta = train::decay_groups(*model);
  for (auto& p : on_meta) p.tensor = torch::empty(p.tensor.sizes(), p.tensor.options().device(torch::kMeta));
  auto elsewhere = train::make_local_adamw(on_meta, train::AdamWOptions{1e-2});
  train::TrainerState loaded = train::load_checkpoint(saved, model, *elsewhere);
  EXPECT_EQ(loaded.step, 1);
  auto moments = elsewhere->gather_state_dict();
  EXPECT_EQ(moments.size(), optimizer->gather_state_dict().size());
  for (const auto& [name, tensor] : moments) {
    if (name.size() > 5 && name.substr(name.size() - 5) == ".step") continue;  // a count, kept on the CPU
    EXPECT_TRUE(tensor.is_meta()) << name << " stayed on " << tensor.device() << " instead of its parameter's";
  }
}

}  // namespace forma::checkpoint_device_test
