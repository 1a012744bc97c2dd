// trainer_state.json: everything besides weights and optimizer moments that a resumed run needs to
// continue the uninterrupted one bit for bit: the step, the data cursor, the RNG state, and the
// recipe it was trained with (to warn when a resume changes it).
#pragma once
#include <cstdint>
#include <string>

namespace forma::train {

struct TrainerState {
  int64_t step = 0;          // optimizer steps taken
  int64_t tokens_seen = 0;   // training tokens consumed
  int64_t data_cursor = 0;   // index of the next training sample (data::TokenSequences::get)
  std::string schedule;      // schedule type, for the record
  double lr = 0;             // learning rate of the last step
  double last_loss = 0;
  std::string recipe_snapshot;  // effective YAML of the run
  std::string rng_state_hex;    // LibTorch's default CPU generator state
  double loss_scale = 0;              // fp16 training: the dynamic loss scale (0: none)
  int64_t loss_scale_good_steps = 0;  // fp16: overflow-free steps since the scale last changed
};

std::string trainer_state_to_json(const TrainerState& state);
// Throws forma::Error naming `source` and the field.
TrainerState trainer_state_from_json(const std::string& text, const std::string& source);

// LibTorch's default CPU generator, as hex text (dropout or any sampling continues identically).
std::string capture_torch_rng();
void restore_torch_rng(const std::string& hex, const std::string& source);

}  // namespace forma::train
