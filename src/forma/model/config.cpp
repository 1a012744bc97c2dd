#include "forma/model/config.h"

#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <set>

#include "forma/core/error.h"
#include "forma/core/files.h"
#include "forma/model/architecture.h"
#include "forma/model/config_reader.h"

namespace forma {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Upper bounds on sizes from an untrusted config.json, far above any published model, so that
// every size product below stays exact in int64 and a nonsense value is refused here, by name,
// instead of reaching LibTorch's allocator. Token ids are int32 in forma, hence the vocabulary cap.
constexpr int64_t kMaxVocab = INT32_MAX;
constexpr int64_t kMaxWidth = int64_t{1} << 24;  // hidden, intermediate, head_dim: 16 M
constexpr int64_t kMaxCount = int64_t{1} << 16;  // layers, heads, experts: 65,536
constexpr int64_t kMaxPositions = INT32_MAX;
constexpr double kMaxParameters = 1e15;           // a thousand times the largest published models

void validate_sizes(const ModelConfig& c) {
  auto at_most = [&](int64_t v, int64_t limit, const char* field) {
    check(v <= limit, "{}: field '{}' is {}, more than forma accepts ({})", c.source, field, v, limit);
  };
  at_most(c.vocab_size, kMaxVocab, "vocab_size");
  at_most(c.hidden_size, kMaxWidth, "hidden_size");
  at_most(c.intermediate_size, kMaxWidth, "intermediate_size");
  at_most(c.dense_intermediate_size, kMaxWidth, "intermediate_size");  // MoE models' dense layers
  at_most(c.shared_expert_intermediate_size, kMaxWidth, "shared_expert_intermediate_size");
  at_most(c.head_dim, kMaxWidth, "head_dim");
  at_most(c.num_hidden_layers, kMaxCount, "num_hidden_layers");
  at_most(c.num_attention_heads, kMaxCount, "num_attention_heads");
  at_most(c.num_key_value_heads, kMaxCount, "num_key_value_heads");
  at_most(c.num_local_experts, kMaxCount, "num_local_experts");
  at_most(c.max_position_embeddings, kMaxPositions, "max_position_embeddings");
  // Within those bounds the parameter count can still be absurd (and overflow int64): estimate it in
  // floating point first.
  const double d = static_cast<double>(c.hidden_size);
  const double attention = d * static_cast<double>(c.head_dim) *
                           static_cast<double>(2 * c.num_attention_heads + 2 * c.num_key_value_heads);
  const double mlp = 3.0 * d * static_cast<double>(c.intermediate_size) *
                         static_cast<double>(std::max<int64_t>(c.num_local_experts, 1)) +
                     3.0 * d * static_cast<double>(c.dense_intermediate_size + c.shared_expert_intermediate_size);
  const double params = static_cast<double>(c.num_hidden_layers) * (attention + mlp) +
                        2.0 * static_cast<double>(c.vocab_size) * d;
  check(params <= kMaxParameters, "{}: these sizes describe a model of about {:.3g} parameters, more than forma "
        "accepts ({:.0e}): check vocab_size, hidden_size, intermediate_size and num_hidden_layers",
        c.source, params, kMaxParameters);
}

void validate(const ModelConfig& c, const Architecture& arch) {
  const std::string& s = c.source;
  auto positive = [&](int64_t v, const char* field) {
    check(v > 0, "{}: field '{}' must be positive, got {}", s, field, v);
  };
  positive(c.vocab_size, "vocab_size");
  positive(c.hidden_size, "hidden_size");
  positive(c.intermediate_size, "intermediate_size");
  positive(c.num_hidden_layers, "num_hidden_layers");
  positive(c.num_attention_heads, "num_attention_heads");
  positive(c.num_key_value_heads, "num_key_value_heads");
  positive(c.head_dim, "head_dim");
  positive(c.max_position_embeddings, "max_position_embeddings");
  check(c.num_local_experts >= 0, "{}: field 'num_local_experts' must not be negative, got {}", s,
        c.num_local_experts);
  validate_sizes(c);
  check(c.num_attention_heads % c.num_key_value_heads == 0,
        "{}: field 'num_key_value_heads' ({}) must divide num_attention_heads ({})", s,
        c.num_key_value_heads, c.num_attention_heads);
  const bool rope = arch.position == PositionKind::Rope && !c.alibi;  // ALiBi replaces RoPE
  check(c.head_dim % 2 == 0 || !rope, "{}: field 'head_dim' must be even for rope", s);
  check(!rope || (c.rotary_dim() > 0 && c.rotary_dim() % 2 == 0),
        "{}: field 'partial_rotary_factor' ({}): head_dim {} * factor gives {} rotary dims, which must be even and "
        "positive", s, c.partial_rotary_factor, c.head_dim, c.rotary_dim());
  static const std::set<std::string> acts = {"silu", "swish", "gelu_new", "gelu_pytorch_tanh",
                                             "gelu", "relu", "relu2"};
  check(acts.count(c.hidden_act) > 0, "{}: field 'hidden_act': unsupported activation '{}'", s,
        c.hidden_act);
  check(c.norm_eps > 0, "{}: field 'rms_norm_eps' must be positive", s);
  check(c.rope_theta > 0, "{}: field 'rope_theta' must be positive", s);
  check(c.initializer_range >= 0, "{}: field 'initializer_range' must not be negative", s);
  if (c.sliding_window) positive(*c.sliding_window, "sliding_window");
  check(c.sliding_layers.empty() || static_cast<int64_t>(c.sliding_layers.size()) == c.num_hidden_layers,
        "{}: field 'layer_types' has {} entries for {} layers", s, c.sliding_layers.size(), c.num_hidden_layers);
  check(c.sparse_layers.empty() || static_cast<int64_t>(c.sparse_layers.size()) == c.num_hidden_layers,
        "{}: {} sparse-layer flags for {} layers", s, c.sparse_layers.size(), c.num_hidden_layers);
  // Dense layers among sparse ones (mlp_only_layers, decoder_sparse_step) need their width.
  if (c.is_moe() && !c.sparse_layers.empty()) positive(c.dense_intermediate_size, "intermediate_size");
  check(c.shared_expert_intermediate_size >= 0, "{}: field 'shared_expert_intermediate_size' must not be negative", s);
  if (c.is_moe()) {
    check(c.num_experts_per_tok > 0 && c.num_experts_per_tok <= c.num_local_experts,
          "{}: field 'num_experts_per_tok' ({}) must be in 1..num_local_experts ({})", s,
          c.num_experts_per_tok, c.num_local_experts);
  }
}

}  // namespace

int64_t ModelConfig::effective_sliding_window() const {
  if (!sliding_window || !use_sliding_window) return 0;
  return *sliding_window;
}

int64_t ModelConfig::layer_window(int64_t layer) const {
  if (sliding_layers.empty()) return effective_sliding_window();
  return sliding_layers.at(static_cast<size_t>(layer)) && sliding_window ? *sliding_window : 0;
}

ModelConfig parse_model_config(const json& j, const std::string& source) {
  check(j.is_object(), "{}: a model config must be a JSON object", source);
  FieldReader r(j, source);
  ModelConfig c;
  c.source = source;
  check(r.has("model_type"), "{}: field 'model_type' is missing", source);
  c.model_type = r.string("model_type", "");
  const Architecture& arch = architecture_named(c.model_type, source);
  c.initializer_range = r.number("initializer_range", 0.02);
  arch.read_config(r, j, c);
  c.extra = r.rest();
  validate(c, arch);
  return c;
}

std::string presets_dir() {
  if (const char* env = std::getenv("FORMA_CONFIG_DIR")) return env;
  std::vector<fs::path> starts;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) starts.push_back(exe.parent_path());
  starts.push_back(fs::current_path(ec));
  for (fs::path dir : starts) {
    for (int up = 0; up < 6 && !dir.empty(); ++up, dir = dir.parent_path()) {
      if (fs::is_directory(dir / "configs" / "models", ec)) return (dir / "configs" / "models").string();
      if (dir == dir.parent_path()) break;
    }
  }
  return "";
}

ModelConfig load_model_config(const std::string& what) {
  std::error_code ec;
  std::string path = what;
  if (fs::is_directory(what, ec)) {
    path = (fs::path(what) / "config.json").string();
  } else if (!fs::exists(what, ec)) {
    std::string dir = presets_dir();
    std::string preset = dir.empty() ? "" : dir + "/" + what + ".json";
    check(!preset.empty() && fs::exists(preset, ec),
          "model '{}' is neither a config file, a model folder, nor a preset in {}", what,
          dir.empty() ? "configs/models (not found)" : dir);
    path = preset;
  }
  check(fs::exists(path, ec), "{}: no such file", path);
  std::string text = read_file(path);
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  check(!j.is_discarded(), "{}: not valid JSON", path);
  return parse_model_config(j, path);
}

json to_hf_json(const ModelConfig& c) {
  json j = c.extra;
  const Architecture& arch = architecture_for(c);
  if (!j.contains("architectures")) j["architectures"] = {arch.hf_class};
  j["model_type"] = c.model_type;
  j["initializer_range"] = c.initializer_range;
  arch.write_config(c, j);
  return j;
}

}  // namespace forma
