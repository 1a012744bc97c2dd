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

namespace forma {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// HF's defaults per model_type (transformers v4.47 configuration_*.py), applied to absent keys.
struct TypeDefaults {
  const char* model_type;
  const char* hf_class;
  int64_t vocab_size, hidden_size, intermediate_size, num_hidden_layers, num_attention_heads;
  int64_t num_key_value_heads;  // 0: same as num_attention_heads
  const char* hidden_act;
  int64_t max_position_embeddings;
  double norm_eps, rope_theta;
  int64_t sliding_window;  // 0: null
  int64_t bos, eos;        // -1: null
  bool tie_word_embeddings;
  int64_t num_local_experts, num_experts_per_tok;
  double router_aux_loss_coef;
};

constexpr TypeDefaults kDefaults[] = {
    {"llama", "LlamaForCausalLM", 32000, 4096, 11008, 32, 32, 0, "silu", 2048, 1e-6, 1e4, 0, 1, 2,
     false, 0, 0, 0.0},
    {"mistral", "MistralForCausalLM", 32000, 4096, 14336, 32, 32, 8, "silu", 4096 * 32, 1e-6, 1e4,
     4096, 1, 2, false, 0, 0, 0.0},
    {"qwen2", "Qwen2ForCausalLM", 151936, 4096, 22016, 32, 32, 32, "silu", 32768, 1e-6, 1e4, 4096,
     -1, -1, false, 0, 0, 0.0},
    {"mixtral", "MixtralForCausalLM", 32000, 4096, 14336, 32, 32, 8, "silu", 4096 * 32, 1e-5, 1e6,
     0, 1, 2, false, 8, 2, 0.001},
    {"gpt2", "GPT2LMHeadModel", 50257, 768, 0, 12, 12, 0, "gelu_new", 1024, 1e-5, 1e4, 0, 50256,
     50256, true, 0, 0, 0.0},
};

const TypeDefaults& defaults_for(const std::string& model_type, const std::string& source) {
  for (const auto& d : kDefaults) {
    if (model_type == d.model_type) return d;
  }
  fail("{}: field 'model_type': unknown model type '{}' (forma knows llama, mistral, qwen2, "
       "mixtral, gpt2)",
       source, model_type);
}

// Reads fields out of a JSON object, removing each one it reads so that the rest becomes `extra`.
class FieldReader {
 public:
  FieldReader(json object, std::string source) : rest_(std::move(object)), source_(std::move(source)) {}

  bool has(const char* key) const { return rest_.contains(key) && !rest_[key].is_null(); }

  int64_t integer(const char* key, int64_t fallback) {
    json v = take(key);
    if (v.is_null()) return fallback;
    // HF writes some integers as 8.0 in hand-edited files; accept whole floats.
    // (Within int64's range: converting a larger double is undefined behaviour.)
    if (v.is_number_float()) {
      double x = v.get<double>();
      if (x >= -0x1p63 && x < 0x1p63 && x == std::trunc(x)) return static_cast<int64_t>(x);
    }
    check(v.is_number_integer(), "{}: field '{}' must be an integer, got {}", source_, key, v.dump());
    // JSON's unsigned integers above int64's range would wrap to negative values.
    check(!v.is_number_unsigned() || v.get<uint64_t>() <= uint64_t{std::numeric_limits<int64_t>::max()},
          "{}: field '{}' ({}) is too large", source_, key, v.dump());
    return v.get<int64_t>();
  }
  std::optional<int64_t> optional_integer(const char* key, std::optional<int64_t> fallback) {
    if (rest_.contains(key) && rest_[key].is_null()) {
      take(key);
      return std::nullopt;
    }
    if (!rest_.contains(key)) return fallback;
    return integer(key, 0);
  }
  double number(const char* key, double fallback) {
    json v = take(key);
    if (v.is_null()) return fallback;
    check(v.is_number(), "{}: field '{}' must be a number, got {}", source_, key, v.dump());
    return v.get<double>();
  }
  bool boolean(const char* key, bool fallback) {
    json v = take(key);
    if (v.is_null()) return fallback;
    check(v.is_boolean(), "{}: field '{}' must be true or false, got {}", source_, key, v.dump());
    return v.get<bool>();
  }
  std::string string(const char* key, const std::string& fallback) {
    json v = take(key);
    if (v.is_null()) return fallback;
    check(v.is_string(), "{}: field '{}' must be a string, got {}", source_, key, v.dump());
    return v.get<std::string>();
  }
  json take(const char* key) {
    if (!rest_.contains(key)) return json();
    json v = rest_[key];
    rest_.erase(key);
    return v;
  }
  json rest() const { return rest_; }

 private:
  json rest_;
  std::string source_;
};

RopeScaling parse_rope_scaling(const json& j, const std::string& source) {
  check(j.is_object(), "{}: field 'rope_scaling' must be an object or null", source);
  FieldReader r(j, source + " rope_scaling");
  RopeScaling s;
  // Older configs spell the kind "type" instead of "rope_type".
  s.rope_type = r.string("rope_type", r.string("type", ""));
  check(s.rope_type == "linear" || s.rope_type == "llama3" || s.rope_type == "default",
        "{}: field 'rope_scaling.rope_type': unsupported '{}' (forma supports linear, llama3)",
        source, s.rope_type);
  s.factor = r.number("factor", 1.0);
  s.low_freq_factor = r.number("low_freq_factor", 1.0);
  s.high_freq_factor = r.number("high_freq_factor", 4.0);
  s.original_max_position_embeddings = r.integer("original_max_position_embeddings", 8192);
  check(s.factor > 0, "{}: field 'rope_scaling.factor' must be positive", source);
  if (s.rope_type == "llama3") {
    check(s.high_freq_factor > s.low_freq_factor && s.low_freq_factor > 0,
          "{}: field 'rope_scaling': need 0 < low_freq_factor < high_freq_factor", source);
    check(s.original_max_position_embeddings > 0,
          "{}: field 'rope_scaling.original_max_position_embeddings' must be positive", source);
  }
  return s;
}

std::vector<int64_t> parse_token_ids(const json& v, int64_t fallback, const std::string& source,
                                     const char* key) {
  if (v.is_null()) return fallback >= 0 ? std::vector<int64_t>{fallback} : std::vector<int64_t>{};
  if (v.is_number_integer()) return {v.get<int64_t>()};
  check(v.is_array(), "{}: field '{}' must be an integer or a list of integers", source, key);
  std::vector<int64_t> ids;
  for (const auto& x : v) {
    check(x.is_number_integer(), "{}: field '{}' must hold integers", source, key);
    ids.push_back(x.get<int64_t>());
  }
  return ids;
}

void read_gpt2_fields(FieldReader& r, const TypeDefaults& d, ModelConfig& c) {
  c.hidden_size = r.integer("n_embd", d.hidden_size);
  c.num_hidden_layers = r.integer("n_layer", d.num_hidden_layers);
  c.num_attention_heads = r.integer("n_head", d.num_attention_heads);
  c.max_position_embeddings = r.integer("n_positions", d.max_position_embeddings);
  check(c.hidden_size <= std::numeric_limits<int64_t>::max() / 4, "{}: field 'n_embd' ({}) is too large", c.source,
        c.hidden_size);
  c.intermediate_size = r.integer("n_inner", 4 * c.hidden_size);
  c.hidden_act = r.string("activation_function", d.hidden_act);
  c.norm_eps = r.number("layer_norm_epsilon", d.norm_eps);
  c.num_key_value_heads = c.num_attention_heads;
  c.head_dim = c.hidden_size / std::max<int64_t>(c.num_attention_heads, 1);
  c.attention_bias = c.mlp_bias = true;  // Conv1D layers always carry a bias
  // Variants forma does not implement must not load silently as something else.
  for (const char* key : {"scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"}) {
    check(!r.boolean(key, false), "{}: field '{}': true is not supported", c.source, key);
  }
  check(r.boolean("scale_attn_weights", true), "{}: field 'scale_attn_weights': false is not supported",
        c.source);
}

void read_llama_family_fields(FieldReader& r, const TypeDefaults& d, ModelConfig& c) {
  c.hidden_size = r.integer("hidden_size", d.hidden_size);
  c.intermediate_size = r.integer("intermediate_size", d.intermediate_size);
  c.num_hidden_layers = r.integer("num_hidden_layers", d.num_hidden_layers);
  c.num_attention_heads = r.integer("num_attention_heads", d.num_attention_heads);
  int64_t kv_default = d.num_key_value_heads ? d.num_key_value_heads : c.num_attention_heads;
  c.num_key_value_heads = r.integer("num_key_value_heads", kv_default);
  c.head_dim = r.integer("head_dim", c.hidden_size / std::max<int64_t>(c.num_attention_heads, 1));
  c.hidden_act = r.string("hidden_act", d.hidden_act);
  c.max_position_embeddings = r.integer("max_position_embeddings", d.max_position_embeddings);
  c.norm_eps = r.number("rms_norm_eps", d.norm_eps);
  c.rope_theta = r.number("rope_theta", d.rope_theta);
  json scaling = r.take("rope_scaling");
  if (!scaling.is_null()) {
    RopeScaling s = parse_rope_scaling(scaling, c.source);
    if (s.rope_type != "default") c.rope_scaling = s;
  }
  // qwen2's q/k/v projections always have a bias; others follow attention_bias.
  c.attention_bias = r.boolean("attention_bias", c.model_type == "qwen2");
  c.mlp_bias = r.boolean("mlp_bias", false);
  std::optional<int64_t> window_default;
  if (d.sliding_window) window_default = d.sliding_window;
  c.sliding_window = r.optional_integer("sliding_window", window_default);
  c.use_sliding_window = c.model_type == "qwen2" ? r.boolean("use_sliding_window", false) : true;
  c.num_local_experts = r.integer("num_local_experts", d.num_local_experts);
  c.num_experts_per_tok = r.integer("num_experts_per_tok", d.num_experts_per_tok);
  c.router_aux_loss_coef = r.number("router_aux_loss_coef", d.router_aux_loss_coef);
}

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
                     static_cast<double>(std::max<int64_t>(c.num_local_experts, 1));
  const double params = static_cast<double>(c.num_hidden_layers) * (attention + mlp) +
                        2.0 * static_cast<double>(c.vocab_size) * d;
  check(params <= kMaxParameters, "{}: these sizes describe a model of about {:.3g} parameters, more than forma "
        "accepts ({:.0e}): check vocab_size, hidden_size, intermediate_size and num_hidden_layers",
        c.source, params, kMaxParameters);
}

void validate(const ModelConfig& c) {
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
  if (c.model_type == "mixtral") positive(c.num_local_experts, "num_local_experts");
  validate_sizes(c);
  check(c.num_attention_heads % c.num_key_value_heads == 0,
        "{}: field 'num_key_value_heads' ({}) must divide num_attention_heads ({})", s,
        c.num_key_value_heads, c.num_attention_heads);
  if (c.model_type == "gpt2") {
    check(c.hidden_size % c.num_attention_heads == 0,
          "{}: field 'n_head' ({}) must divide n_embd ({})", s, c.num_attention_heads, c.hidden_size);
  }
  check(c.head_dim % 2 == 0 || c.model_type == "gpt2", "{}: field 'head_dim' must be even for rope",
        s);
  static const std::set<std::string> acts = {"silu", "swish", "gelu_new", "gelu_pytorch_tanh",
                                             "gelu", "relu"};
  check(acts.count(c.hidden_act) > 0, "{}: field 'hidden_act': unsupported activation '{}'", s,
        c.hidden_act);
  check(c.norm_eps > 0, "{}: field 'rms_norm_eps' must be positive", s);
  check(c.rope_theta > 0, "{}: field 'rope_theta' must be positive", s);
  check(c.initializer_range >= 0, "{}: field 'initializer_range' must not be negative", s);
  if (c.sliding_window) positive(*c.sliding_window, "sliding_window");
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

ModelConfig parse_model_config(const json& j, const std::string& source) {
  check(j.is_object(), "{}: a model config must be a JSON object", source);
  FieldReader r(j, source);
  ModelConfig c;
  c.source = source;
  check(r.has("model_type"), "{}: field 'model_type' is missing", source);
  c.model_type = r.string("model_type", "");
  const TypeDefaults& d = defaults_for(c.model_type, source);
  c.vocab_size = r.integer("vocab_size", d.vocab_size);
  if (c.model_type == "gpt2") {
    read_gpt2_fields(r, d, c);
  } else {
    read_llama_family_fields(r, d, c);
  }
  c.tie_word_embeddings = r.boolean("tie_word_embeddings", d.tie_word_embeddings);
  c.initializer_range = r.number("initializer_range", 0.02);
  json bos = r.take("bos_token_id");
  if (!bos.is_null()) {
    check(bos.is_number_integer(), "{}: field 'bos_token_id' must be an integer", source);
    c.bos_token_id = bos.get<int64_t>();
  } else if (!j.contains("bos_token_id") && d.bos >= 0) {
    c.bos_token_id = d.bos;
  }
  json eos = r.take("eos_token_id");
  c.eos_token_id = parse_token_ids(eos, j.contains("eos_token_id") ? -1 : d.eos, source, "eos_token_id");
  c.extra = r.rest();
  validate(c);
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
  const TypeDefaults& d = defaults_for(c.model_type, c.source);
  if (!j.contains("architectures")) j["architectures"] = {d.hf_class};
  j["model_type"] = c.model_type;
  j["vocab_size"] = c.vocab_size;
  if (c.model_type == "gpt2") {
    j["n_embd"] = c.hidden_size;
    j["n_layer"] = c.num_hidden_layers;
    j["n_head"] = c.num_attention_heads;
    j["n_positions"] = c.max_position_embeddings;
    j["n_inner"] = c.intermediate_size;
    j["activation_function"] = c.hidden_act;
    j["layer_norm_epsilon"] = c.norm_eps;
  } else {
    j["hidden_size"] = c.hidden_size;
    j["intermediate_size"] = c.intermediate_size;
    j["num_hidden_layers"] = c.num_hidden_layers;
    j["num_attention_heads"] = c.num_attention_heads;
    j["num_key_value_heads"] = c.num_key_value_heads;
    j["head_dim"] = c.head_dim;
    j["hidden_act"] = c.hidden_act;
    j["max_position_embeddings"] = c.max_position_embeddings;
    j["rms_norm_eps"] = c.norm_eps;
    j["rope_theta"] = c.rope_theta;
    if (c.rope_scaling) {
      const RopeScaling& s = *c.rope_scaling;
      j["rope_scaling"] = {{"rope_type", s.rope_type}, {"factor", s.factor}};
      if (s.rope_type == "llama3") {
        j["rope_scaling"]["low_freq_factor"] = s.low_freq_factor;
        j["rope_scaling"]["high_freq_factor"] = s.high_freq_factor;
        j["rope_scaling"]["original_max_position_embeddings"] = s.original_max_position_embeddings;
      }
    } else {
      j["rope_scaling"] = nullptr;
    }
    if (c.model_type == "llama") {
      j["attention_bias"] = c.attention_bias;
      j["mlp_bias"] = c.mlp_bias;
    }
    if (c.model_type != "llama") {
      j["sliding_window"] = c.sliding_window ? json(*c.sliding_window) : json(nullptr);
    }
    if (c.model_type == "qwen2") j["use_sliding_window"] = c.use_sliding_window;
    if (c.is_moe()) {
      j["num_local_experts"] = c.num_local_experts;
      j["num_experts_per_tok"] = c.num_experts_per_tok;
      j["router_aux_loss_coef"] = c.router_aux_loss_coef;
    }
  }
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["initializer_range"] = c.initializer_range;
  j["bos_token_id"] = c.bos_token_id ? json(*c.bos_token_id) : json(nullptr);
  if (c.eos_token_id.size() == 1) {
    j["eos_token_id"] = c.eos_token_id[0];
  } else if (c.eos_token_id.empty()) {
    j["eos_token_id"] = nullptr;
  } else {
    j["eos_token_id"] = c.eos_token_id;
  }
  return j;
}

}  // namespace forma
