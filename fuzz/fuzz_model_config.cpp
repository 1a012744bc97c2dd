// Feeds a model config.json (Hugging Face's fields) to load_model_config, then writes it back with
// to_hf_json and parses that again: what loads must survive load -> save -> load.
#include <cstddef>
#include <cstdint>

#include "forma/core/error.h"
#include "forma/model/config.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string path = forma::fuzz::write_scratch("config.json", data, size);
  try {
    forma::ModelConfig config = forma::load_model_config(path);
    (void)config.effective_sliding_window();
    nlohmann::json back = forma::to_hf_json(config);
    (void)back.dump();
    forma::ModelConfig again = forma::parse_model_config(back, "round trip");
    if (again.hidden_size != config.hidden_size || again.vocab_size != config.vocab_size) __builtin_trap();
  } catch (const forma::Error&) {
  }
  return 0;
}
