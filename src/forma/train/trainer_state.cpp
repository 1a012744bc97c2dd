#include "forma/train/trainer_state.h"

#include <nlohmann/json.hpp>

#include <mutex>

#include "forma/core/error.h"

namespace forma::train {

std::string trainer_state_to_json(const TrainerState& s) {
  nlohmann::json j = {{"format", "forma-trainer-state-1"},
                      {"step", s.step},
                      {"tokens_seen", s.tokens_seen},
                      {"data_cursor", s.data_cursor},
                      {"schedule", s.schedule},
                      {"lr", s.lr},
                      {"last_loss", s.last_loss},
                      {"recipe", s.recipe_snapshot},
                      {"rng_state", s.rng_state_hex},
                      {"loss_scale", s.loss_scale},
                      {"loss_scale_good_steps", s.loss_scale_good_steps}};
  return j.dump(2) + "\n";
}

TrainerState trainer_state_from_json(const std::string& text, const std::string& source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: not valid JSON: {}", source, e.what());
  }
  check(j.is_object(), "{}: expected a JSON object", source);
  auto field = [&](const char* key) -> const nlohmann::json& {
    check(j.contains(key), "{}: field '{}' is missing", source, key);
    return j[key];
  };
  auto integer = [&](const char* key) {
    auto& v = field(key);
    check(v.is_number_integer() && v.get<int64_t>() >= 0, "{}: field '{}' must be a non-negative integer", source,
          key);
    return v.get<int64_t>();
  };
  auto string = [&](const char* key) {
    auto& v = field(key);
    check(v.is_string(), "{}: field '{}' must be a string", source, key);
    return v.get<std::string>();
  };
  auto number = [&](const char* key) {
    auto& v = field(key);
    check(v.is_number(), "{}: field '{}' must be a number", source, key);
    return v.get<double>();
  };
  TrainerState s;
  s.step = integer("step");
  s.tokens_seen = integer("tokens_seen");
  s.data_cursor = integer("data_cursor");
  s.schedule = string("schedule");
  s.lr = number("lr");
  s.last_loss = number("last_loss");
  s.recipe_snapshot = string("recipe");
  s.rng_state_hex = string("rng_state");
  // Absent in checkpoints written before fp16 training existed: no loss scale.
  if (j.contains("loss_scale")) s.loss_scale = number("loss_scale");
  if (j.contains("loss_scale_good_steps")) s.loss_scale_good_steps = integer("loss_scale_good_steps");
  return s;
}

std::string capture_torch_rng() {
  auto gen = at::detail::getDefaultCPUGenerator();
  torch::Tensor state;
  {
    std::lock_guard<std::mutex> lock(gen.mutex());
    state = gen.get_state();
  }
  static const char* digits = "0123456789abcdef";
  const auto* bytes = state.data_ptr<uint8_t>();
  std::string hex;
  hex.reserve(static_cast<size_t>(state.numel()) * 2);
  for (int64_t i = 0; i < state.numel(); ++i) {
    hex += digits[bytes[i] >> 4];
    hex += digits[bytes[i] & 15];
  }
  return hex;
}

void restore_torch_rng(const std::string& hex, const std::string& source) {
  check(hex.size() % 2 == 0, "{}: rng_state has an odd number of hex digits", source);
  auto state = torch::empty({static_cast<int64_t>(hex.size() / 2)}, torch::kUInt8);
  auto* bytes = state.data_ptr<uint8_t>();
  auto nibble = [&](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    fail("{}: rng_state contains '{}', not a hex digit", source, c);
  };
  for (size_t i = 0; i < hex.size() / 2; ++i) bytes[i] = static_cast<uint8_t>(nibble(hex[2 * i]) * 16 + nibble(hex[2 * i + 1]));
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  try {
    gen.set_state(state);
  } catch (const c10::Error& e) {
    fail("{}: rng_state is not a LibTorch CPU generator state ({})", source, e.what_without_backtrace());
  }
}

}  // namespace forma::train
