#include "forma/model/config_reader.h"

#include <algorithm>
#include <cmath>
#include <set>

namespace forma {

using nlohmann::json;

namespace {

// The scaling keys of transformers 4's rope_scaling and of transformers 5's rope_parameters (which
// also holds rope_theta). `where` names the object in errors.
void read_partial_rotary(FieldReader& r, const std::string& where, bool supported, ModelConfig& c) {
  if (!r.has("partial_rotary_factor")) return;
  const double partial = r.number("partial_rotary_factor", 1.0);
  check(partial == 1.0 || supported,
        "{}: field '{}partial_rotary_factor' ({}): partial rotary is not supported for model_type '{}'", c.source,
        where, partial, c.model_type);
  check(partial > 0.0 && partial <= 1.0, "{}: field '{}partial_rotary_factor' ({}) must be in (0, 1]", c.source,
        where, partial);
  c.partial_rotary_factor = partial;
}

}  // namespace

void read_rope_object(const json& j, const std::string& where, bool partial_rotary, ModelConfig& c) {
  check(j.is_object(), "{}: field '{}' must be an object or null", c.source, where);
  FieldReader r(j, c.source + " " + where);
  c.rope_theta = r.number("rope_theta", c.rope_theta);
  read_partial_rotary(r, where + ".", partial_rotary, c);
  RopeScaling s;
  // Older configs spell the kind "type" instead of "rope_type".
  s.rope_type = r.string("rope_type", r.string("type", "default"));
  const bool known = s.rope_type == "default" || s.rope_type == "linear" || s.rope_type == "llama3" ||
                     s.rope_type == "yarn" || s.rope_type == "dynamic" || s.rope_type == "longrope";
  check(known, "{}: field '{}.rope_type': unsupported '{}' (forma supports default, linear, llama3, yarn, dynamic, "
        "longrope)", c.source, where, s.rope_type);
  s.factor_given = r.has("factor");
  s.factor = r.number("factor", 1.0);
  s.low_freq_factor = r.number("low_freq_factor", 1.0);
  s.high_freq_factor = r.number("high_freq_factor", 4.0);
  // HF's default for yarn and longrope is the model's own length (standardize_rope_params).
  const bool own_length = s.rope_type == "yarn" || s.rope_type == "longrope";
  s.original_max_position_embeddings =
      r.integer("original_max_position_embeddings", own_length ? c.max_position_embeddings : 8192);
  check(s.factor > 0, "{}: field '{}.factor' must be positive", c.source, where);
  check(s.original_max_position_embeddings > 0 || s.rope_type == "default" || s.rope_type == "linear" ||
            s.rope_type == "dynamic",
        "{}: field '{}.original_max_position_embeddings' must be positive", c.source, where);
  if (s.rope_type == "llama3") {
    check(s.high_freq_factor > s.low_freq_factor && s.low_freq_factor > 0,
          "{}: field '{}': need 0 < low_freq_factor < high_freq_factor", c.source, where);
  }
  if (s.rope_type == "yarn") {
    s.beta_fast = r.number("beta_fast", 32.0);
    s.beta_slow = r.number("beta_slow", 1.0);
    s.truncate = r.boolean("truncate", true);
    if (r.has("mscale")) s.mscale = r.number("mscale", 1.0);
    if (r.has("mscale_all_dim")) s.mscale_all_dim = r.number("mscale_all_dim", 1.0);
  }
  if ((s.rope_type == "yarn" || s.rope_type == "longrope") && r.has("attention_factor")) {
    s.attention_factor = r.number("attention_factor", 1.0);
  }
  if (s.rope_type == "longrope") {
    for (const char* key : {"short_factor", "long_factor"}) {
      const json factors = r.take(key);
      check(factors.is_array() && !factors.empty(), "{}: field '{}.{}' must be a list of numbers", c.source, where,
            key);
      std::vector<double>& out = std::string(key) == "short_factor" ? s.short_factor : s.long_factor;
      for (const json& x : factors) {
        check(x.is_number() && x.get<double>() > 0, "{}: field '{}.{}' must hold positive numbers, got {}",
              c.source, where, key, x.dump());
        out.push_back(x.get<double>());
      }
    }
  }
  if (s.rope_type != "default") c.rope_scaling = s;
}

void read_special_tokens(FieldReader& r, const json& original, int64_t bos_default, int64_t eos_default,
                         ModelConfig& c) {
  json bos = r.take("bos_token_id");
  if (!bos.is_null()) {
    check(bos.is_number_integer(), "{}: field 'bos_token_id' must be an integer", c.source);
    c.bos_token_id = bos.get<int64_t>();
  } else if (!original.contains("bos_token_id") && bos_default >= 0) {
    c.bos_token_id = bos_default;
  }
  json eos = r.take("eos_token_id");
  if (eos.is_null()) {
    if (!original.contains("eos_token_id") && eos_default >= 0) c.eos_token_id = {eos_default};
    return;
  }
  if (eos.is_number_integer()) {
    c.eos_token_id = {eos.get<int64_t>()};
    return;
  }
  check(eos.is_array(), "{}: field 'eos_token_id' must be an integer or a list of integers", c.source);
  for (const auto& x : eos) {
    check(x.is_number_integer(), "{}: field 'eos_token_id' must hold integers", c.source);
    c.eos_token_id.push_back(x.get<int64_t>());
  }
}

void write_special_tokens(const ModelConfig& c, json& j) {
  j["bos_token_id"] = c.bos_token_id ? json(*c.bos_token_id) : json(nullptr);
  if (c.eos_token_id.size() == 1) {
    j["eos_token_id"] = c.eos_token_id[0];
  } else if (c.eos_token_id.empty()) {
    j["eos_token_id"] = nullptr;
  } else {
    j["eos_token_id"] = c.eos_token_id;
  }
}

void read_standard_fields(FieldReader& r, const StandardDefaults& d, ModelConfig& c) {
  c.vocab_size = r.integer("vocab_size", d.vocab_size);
  c.hidden_size = r.integer("hidden_size", d.hidden_size);
  c.intermediate_size = r.integer("intermediate_size", d.intermediate_size);
  c.num_hidden_layers = r.integer("num_hidden_layers", d.num_hidden_layers);
  c.num_attention_heads = r.integer("num_attention_heads", d.num_attention_heads);
  const int64_t kv_default = d.num_key_value_heads ? d.num_key_value_heads : c.num_attention_heads;
  c.num_key_value_heads = r.integer("num_key_value_heads", kv_default);
  c.head_dim = r.integer("head_dim", c.hidden_size / std::max<int64_t>(c.num_attention_heads, 1));
  c.hidden_act = r.string("hidden_act", d.hidden_act);
  c.max_position_embeddings = r.integer("max_position_embeddings", d.max_position_embeddings);
  c.norm_eps = r.number(d.norm_eps_key, d.norm_eps);
  c.rope_theta = r.number("rope_theta", d.rope_theta);
  // transformers 4: rope_theta + rope_scaling; transformers 5: rope_parameters holding both.
  json scaling = r.take("rope_scaling");
  if (!scaling.is_null()) read_rope_object(scaling, "rope_scaling", d.partial_rotary, c);
  json parameters = r.take("rope_parameters");
  if (!parameters.is_null()) read_rope_object(parameters, "rope_parameters", d.partial_rotary, c);
  read_partial_rotary(r, "", d.partial_rotary, c);
  c.tie_word_embeddings = r.boolean("tie_word_embeddings", d.tie_word_embeddings);
}

void read_moe_fields(FieldReader& r, const MoeDefaults& d, ModelConfig& c) {
  const int64_t experts = r.integer("num_experts", d.num_experts);
  c.num_local_experts = r.integer("num_local_experts", experts);
  check(c.num_local_experts > 0, "{}: field 'num_experts' must be positive, got {}", c.source, c.num_local_experts);
  c.num_experts_per_tok = r.integer("num_experts_per_tok", d.experts_per_token);
  c.router_aux_loss_coef = r.number("router_aux_loss_coef", d.router_aux_loss_coef);
  c.moe_renormalize = r.boolean("norm_topk_prob", false);
}

void write_moe_fields(const ModelConfig& c, json& j) {
  j.erase("num_local_experts");
  j["num_experts"] = c.num_local_experts;
  j["num_experts_per_tok"] = c.num_experts_per_tok;
  j["router_aux_loss_coef"] = c.router_aux_loss_coef;
  j["norm_topk_prob"] = c.moe_renormalize;
}

void read_clip_qkv(FieldReader& r, ModelConfig& c) {
  const json clip = r.take("clip_qkv");
  if (clip.is_null()) return;
  check(clip.is_number() && std::isfinite(clip.get<double>()) && clip.get<double>() > 0,
        "{}: field 'clip_qkv' ({}) must be a positive number or null", c.source, clip.dump());
  c.clip_qkv = clip.get<double>();
}

void write_clip_qkv(const ModelConfig& c, json& j) {
  j["clip_qkv"] = c.clip_qkv > 0 ? json(c.clip_qkv) : json(nullptr);
}

void write_rope_scaling(const ModelConfig& c, json& j) {
  if (c.rope_scaling) {
    const RopeScaling& s = *c.rope_scaling;
    j["rope_scaling"] = {{"rope_type", s.rope_type}};
    if (s.factor_given) j["rope_scaling"]["factor"] = s.factor;
    if (s.rope_type == "llama3") {
      j["rope_scaling"]["low_freq_factor"] = s.low_freq_factor;
      j["rope_scaling"]["high_freq_factor"] = s.high_freq_factor;
    }
    if (s.rope_type == "llama3" || s.rope_type == "yarn" || s.rope_type == "longrope") {
      j["rope_scaling"]["original_max_position_embeddings"] = s.original_max_position_embeddings;
    }
    if (s.rope_type == "yarn") {
      j["rope_scaling"]["beta_fast"] = s.beta_fast;
      j["rope_scaling"]["beta_slow"] = s.beta_slow;
      if (!s.truncate) j["rope_scaling"]["truncate"] = false;
      if (s.mscale) j["rope_scaling"]["mscale"] = *s.mscale;
      if (s.mscale_all_dim) j["rope_scaling"]["mscale_all_dim"] = *s.mscale_all_dim;
    }
    if (s.attention_factor) j["rope_scaling"]["attention_factor"] = *s.attention_factor;
    if (s.rope_type == "longrope") {
      j["rope_scaling"]["short_factor"] = s.short_factor;
      j["rope_scaling"]["long_factor"] = s.long_factor;
    }
  } else {
    j["rope_scaling"] = nullptr;
  }
}

void write_standard_fields(const ModelConfig& c, const StandardDefaults& d, json& j) {
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["num_hidden_layers"] = c.num_hidden_layers;
  j["num_attention_heads"] = c.num_attention_heads;
  j["num_key_value_heads"] = c.num_key_value_heads;
  j["head_dim"] = c.head_dim;
  j["hidden_act"] = c.hidden_act;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j[d.norm_eps_key] = c.norm_eps;
  j["rope_theta"] = c.rope_theta;
  write_rope_scaling(c, j);
  if (c.partial_rotary_factor != 1.0) j["partial_rotary_factor"] = c.partial_rotary_factor;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  write_special_tokens(c, j);
}

void read_gpt2_style_fields(FieldReader& r, const json& original, const Gpt2StyleDefaults& d, ModelConfig& c) {
  c.vocab_size = r.integer("vocab_size", d.vocab_size);
  c.hidden_size = r.integer("n_embd", d.n_embd);
  c.num_hidden_layers = r.integer("n_layer", d.n_layer);
  c.num_attention_heads = r.integer("n_head", d.n_head);
  c.max_position_embeddings = r.integer("n_positions", d.n_positions);
  check(c.hidden_size <= std::numeric_limits<int64_t>::max() / 4, "{}: field 'n_embd' ({}) is too large", c.source,
        c.hidden_size);
  c.intermediate_size = r.integer("n_inner", 4 * c.hidden_size);
  c.hidden_act = r.string("activation_function", d.activation_function);
  c.norm_eps = r.number("layer_norm_epsilon", d.layer_norm_epsilon);
  c.num_key_value_heads = c.num_attention_heads;
  check(c.num_attention_heads > 0 && c.hidden_size % c.num_attention_heads == 0,
        "{}: field 'n_head' ({}) must divide n_embd ({})", c.source, c.num_attention_heads, c.hidden_size);
  c.head_dim = c.hidden_size / c.num_attention_heads;
  c.attention_bias = c.mlp_bias = true;
  check(r.boolean("scale_attn_weights", true), "{}: field 'scale_attn_weights': false is not supported", c.source);
  read_special_tokens(r, original, d.bos, d.eos, c);
}

void write_gpt2_style_fields(const ModelConfig& c, json& j) {
  j["vocab_size"] = c.vocab_size;
  j["n_embd"] = c.hidden_size;
  j["n_layer"] = c.num_hidden_layers;
  j["n_head"] = c.num_attention_heads;
  j["n_positions"] = c.max_position_embeddings;
  j["n_inner"] = c.intermediate_size;
  j["activation_function"] = c.hidden_act;
  j["layer_norm_epsilon"] = c.norm_eps;
  write_special_tokens(c, j);
}

void read_sliding_layers(const json& original, ModelConfig& c, SlidingLayersRule rule) {
  // Which layers slide (read, not taken: both keys stay in `extra` for the round trip).
  const int64_t max_window_layers =
      original.contains("max_window_layers") && original["max_window_layers"].is_number_integer()
          ? original["max_window_layers"].get<int64_t>()
          : 28;
  const nlohmann::json& types = original.contains("layer_types") ? original["layer_types"] : nlohmann::json();
  std::vector<bool> slides;
  int64_t sliding = 0;
  // Bounded: validation, which refuses more than 65,536 layers, runs after this.
  for (int64_t i = 0; i < std::min<int64_t>(c.num_hidden_layers, 1 << 16); ++i) {
    bool by_rule = false;
    switch (rule) {
      case SlidingLayersRule::FromMaxWindowLayers: by_rule = i >= max_window_layers; break;
      case SlidingLayersRule::EvenBelowMaxWindowLayers: by_rule = i % 2 == 0 && i < max_window_layers; break;
    }
    bool layer_slides = c.use_sliding_window && c.sliding_window && by_rule;
    if (types.is_array() && static_cast<int64_t>(types.size()) == c.num_hidden_layers) {
      layer_slides = c.sliding_window && types[i] == "sliding_attention";
    }
    slides.push_back(layer_slides);
    sliding += layer_slides;
  }
  // Uniform layers: one window (or none) for all; mixed: the window on the sliding layers only.
  c.use_sliding_window = sliding > 0;
  if (sliding > 0 && sliding < c.num_hidden_layers) c.sliding_layers = slides;
}

void read_sparse_layers(const json& original, ModelConfig& c) {
  // Read, not taken: both keys stay in `extra` for the round trip.
  const json step_json = original.contains("decoder_sparse_step") ? original["decoder_sparse_step"] : json();
  check(step_json.is_null() || step_json.is_number_integer(), "{}: field 'decoder_sparse_step' must be an integer, got {}",
        c.source, step_json.dump());
  const int64_t step = step_json.is_null() ? 1 : step_json.get<int64_t>();
  check(step >= 1, "{}: field 'decoder_sparse_step' ({}) must be positive", c.source, step);
  const json dense = original.contains("mlp_only_layers") ? original["mlp_only_layers"] : json();
  check(dense.is_null() || dense.is_array(), "{}: field 'mlp_only_layers' must be a list of layer indices, got {}",
        c.source, dense.dump());
  std::set<int64_t> dense_layers;
  for (const json& i : dense.is_array() ? dense : json::array()) {
    check(i.is_number_integer(), "{}: field 'mlp_only_layers' entry {} is not a layer index", c.source, i.dump());
    dense_layers.insert(i.get<int64_t>());  // HF: `layer_idx not in mlp_only_layers`, out-of-range ones match none
  }
  std::vector<bool> sparse;
  int64_t count = 0;
  // Bounded: validation, which refuses more than 65,536 layers, runs after this.
  for (int64_t i = 0; i < std::min<int64_t>(c.num_hidden_layers, 1 << 16); ++i) {
    const bool s = !dense_layers.count(i) && (i + 1) % step == 0;
    sparse.push_back(s);
    count += s;
  }
  c.sparse_layers.clear();
  if (count < static_cast<int64_t>(sparse.size())) c.sparse_layers = sparse;
}

void write_sparse_layers(const ModelConfig& c, json& j) {
  if (j.contains("decoder_sparse_step") || j.contains("mlp_only_layers")) return;  // kept as they were read
  json dense = json::array();
  for (size_t i = 0; i < c.sparse_layers.size(); ++i) {
    if (!c.sparse_layers[i]) dense.push_back(i);
  }
  j["decoder_sparse_step"] = 1;
  j["mlp_only_layers"] = dense;
}

int64_t read_layer_types(const json& original, int64_t pattern, ModelConfig& c) {
  const json types = original.contains("layer_types") ? original["layer_types"] : json();
  check(types.is_null() || types.is_array(), "{}: field 'layer_types' must be a list", c.source);
  check(types.is_null() || static_cast<int64_t>(types.size()) == c.num_hidden_layers,
        "{}: field 'layer_types' has {} entries for {} layers", c.source, types.size(), c.num_hidden_layers);
  std::vector<bool> slides;
  int64_t typed_sliding = 0, sliding = 0;
  // Bounded: validation, which refuses more than 65,536 layers, runs after this.
  for (int64_t i = 0; i < std::min<int64_t>(c.num_hidden_layers, 1 << 16); ++i) {
    bool typed = (i + 1) % pattern != 0;
    if (!types.is_null()) {
      const json& t = types[static_cast<size_t>(i)];
      check(t == "sliding_attention" || t == "full_attention",
            "{}: field 'layer_types' entry {} ({}): expected \"sliding_attention\" or \"full_attention\"", c.source,
            i, t.dump());
      typed = t == "sliding_attention";
    }
    typed_sliding += typed;
    const bool layer_slides = typed && c.sliding_window.has_value();
    slides.push_back(layer_slides);
    sliding += layer_slides;
  }
  c.use_sliding_window = sliding > 0;
  if (sliding > 0 && sliding < c.num_hidden_layers) c.sliding_layers = slides;
  return typed_sliding;
}

double read_softcap(FieldReader& r, const json& original, const char* key, double fallback, const ModelConfig& c) {
  if (!original.contains(key)) return fallback;
  const double cap = r.number(key, 0.0);
  check(cap >= 0, "{}: field '{}' ({}) must not be negative", c.source, key, cap);
  return cap;
}

void write_softcaps(const ModelConfig& c, json& j) {
  auto cap = [](double v) { return v > 0 ? json(v) : json(nullptr); };
  j["attn_logit_softcapping"] = cap(c.attn_logit_softcapping);
  j["final_logit_softcapping"] = cap(c.final_logit_softcapping);
}

void write_sliding_window(const ModelConfig& c, json& j) {
  j["sliding_window"] = c.sliding_window ? json(*c.sliding_window) : json(nullptr);
}

double read_query_pre_attn_scalar(const json& original, const ModelConfig& c) {
  double scalar = 256;
  if (original.contains("query_pre_attn_scalar") && !original["query_pre_attn_scalar"].is_null()) {
    const json& v = original["query_pre_attn_scalar"];
    check(v.is_number() && v.get<double>() > 0, "{}: field 'query_pre_attn_scalar' must be a positive number, got {}",
          c.source, v.dump());
    scalar = v.get<double>();
  }
  return std::pow(scalar, -0.5);
}

}  // namespace forma
