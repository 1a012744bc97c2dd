#include "forma/peft/lora_config.h"

#include <cmath>
#include <filesystem>
#include <regex>

#include "forma/core/error.h"
#include "forma/core/files.h"

namespace forma::peft {

namespace lora_config_detail {

// PEFT's get_pattern_key: the first key k with re.match(r"(.*\.)?(k)$", name).
template <typename T>
const T* pattern_value(const std::map<std::string, T>& patterns, const std::string& hf_name) {
  for (const auto& [key, value] : patterns) {
    if (std::regex_match(hf_name, std::regex("(.*\\.)?(" + key + ")"))) return &value;
  }
  return nullptr;
}

bool is_null_or_empty(const nlohmann::json& j) {
  return j.is_null() || (j.is_array() && j.empty()) || (j.is_object() && j.empty());
}

}  // namespace lora_config_detail

using namespace lora_config_detail;

int64_t LoraConfig::rank_for(const std::string& hf_name) const {
  const int64_t* v = pattern_value(rank_pattern, hf_name);
  return v ? *v : r;
}

double LoraConfig::alpha_for(const std::string& hf_name) const {
  const double* v = pattern_value(alpha_pattern, hf_name);
  return v ? *v : alpha;
}

double LoraConfig::scaling_for(const std::string& hf_name) const {
  const double rank = static_cast<double>(rank_for(hf_name));
  return alpha_for(hf_name) / (use_rslora ? std::sqrt(rank) : rank);
}

void validate(const LoraConfig& c, const std::string& where) {
  check(c.r >= 1, "{}: r: must be >= 1, got {}", where, c.r);
  check(c.dropout >= 0 && c.dropout < 1, "{}: dropout: must be in [0, 1), got {}", where, c.dropout);
  check(c.all_linear || !c.target_regex.empty() || !c.target_modules.empty(),
        "{}: target_modules: required (names such as [q_proj, v_proj], a regular expression, or \"all-linear\")",
        where);
  check(c.init == "default" || c.init == "gaussian" || c.init == "random",
        "{}: init: '{}' is not one of default, gaussian, random", where, c.init);
  for (const auto& [key, rank] : c.rank_pattern) {
    check(rank >= 1, "{}: rank_pattern: '{}' must be >= 1, got {}", where, key, rank);
  }
  if (!c.target_regex.empty()) {
    try {
      std::regex check_syntax(c.target_regex);
    } catch (const std::regex_error& e) {
      fail("{}: target_modules: '{}' is not a valid regular expression ({})", where, c.target_regex, e.what());
    }
  }
}

bool matches_target(const LoraConfig& c, const std::string& hf_name) {
  if (!c.target_regex.empty()) return std::regex_match(hf_name, std::regex(c.target_regex));
  for (const auto& t : c.target_modules) {
    if (hf_name == t) return true;
    if (hf_name.size() > t.size() && hf_name.compare(hf_name.size() - t.size(), t.size(), t) == 0 &&
        hf_name[hf_name.size() - t.size() - 1] == '.') {
      return true;
    }
  }
  return false;
}

bool matches_modules_to_save(const LoraConfig& c, const std::string& hf_name) {
  for (const auto& m : c.modules_to_save) {
    // PEFT: re.match(rf"(^|.*\.){m}($|\..*)", key)
    if (std::regex_match(hf_name, std::regex("(|.*\\.)" + m + "(|\\..*)"))) return true;
  }
  return false;
}

LoraConfig lora_config_from_json(const nlohmann::json& j, const std::string& path) {
  check(j.is_object(), "{}: expected a JSON object", path);
  auto field = [&](const char* key) -> const nlohmann::json& {
    static const nlohmann::json null_json;
    auto it = j.find(key);
    return it == j.end() ? null_json : *it;
  };
  auto get = [&](const char* key, auto* out, const char* expected) {
    const auto& v = field(key);
    if (v.is_null()) return;
    try {
      *out = v.get<std::decay_t<decltype(*out)>>();
    } catch (const nlohmann::json::exception&) {
      fail("{}: field '{}': expected {}, got {}", path, key, expected, v.dump());
    }
  };
  std::string peft_type;
  get("peft_type", &peft_type, "a string");
  check(peft_type == "LORA", "{}: field 'peft_type': '{}' (forma loads LORA adapters only)", path, peft_type);
  LoraConfig c;
  c.enabled = true;
  get("r", &c.r, "an integer");
  get("lora_alpha", &c.alpha, "a number");
  get("lora_dropout", &c.dropout, "a number");
  get("use_rslora", &c.use_rslora, "true or false");
  get("base_model_name_or_path", &c.base_model, "a string");
  get("rank_pattern", &c.rank_pattern, "an object of integers");
  get("alpha_pattern", &c.alpha_pattern, "an object of numbers");
  const auto& targets = field("target_modules");
  if (targets.is_string()) {
    std::string t = targets.get<std::string>();
    if (t == "all-linear") c.all_linear = true; else c.target_regex = t;
  } else {
    get("target_modules", &c.target_modules, "a list of strings or a string");
    for (const auto& t : c.target_modules) c.all_linear = c.all_linear || t == "all-linear";
  }
  get("modules_to_save", &c.modules_to_save, "a list of strings");
  const auto& init = field("init_lora_weights");
  if (init.is_boolean()) c.init = init.get<bool>() ? "default" : "random";
  else if (init.is_string()) c.init = init.get<std::string>();  // validated below
  // What forma does not implement is refused, never ignored: the logits would differ from PEFT's.
  for (const char* key : {"use_dora", "lora_bias"}) {
    check(!field(key).is_boolean() || !field(key).get<bool>(), "{}: field '{}': true is not supported by forma",
          path, key);
  }
  const auto& bias = field("bias");
  check(bias.is_null() || bias == "none", "{}: field 'bias': {} is not supported (only \"none\")", path, bias.dump());
  for (const char* key : {"layers_to_transform", "layers_pattern", "exclude_modules", "target_parameters",
                          "trainable_token_indices", "layer_replication", "megatron_config", "alora_invocation_tokens"}) {
    check(is_null_or_empty(field(key)), "{}: field '{}': {} is not supported by forma", path, key, field(key).dump());
  }
  validate(c, path);
  return c;
}

LoraConfig load_adapter_config(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / "adapter_config.json").string();
  check(std::filesystem::exists(path), "{}: no adapter_config.json (not a PEFT adapter folder)", dir);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::parse_error& e) {
    fail("{}: invalid JSON: {}", path, e.what());
  }
  return lora_config_from_json(j, path);
}

nlohmann::json adapter_config_json(const LoraConfig& c) {
  nlohmann::json targets;
  if (c.all_linear) targets = "all-linear";
  else if (!c.target_regex.empty()) targets = c.target_regex;
  else targets = c.target_modules;
  nlohmann::json init = c.init == "default" ? nlohmann::json(true)
                        : c.init == "random" ? nlohmann::json(false) : nlohmann::json(c.init);
  return {{"peft_type", "LORA"},
          {"task_type", "CAUSAL_LM"},
          {"base_model_name_or_path", c.base_model.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.base_model)},
          {"r", c.r},
          {"lora_alpha", c.alpha},
          {"lora_dropout", c.dropout},
          {"target_modules", targets},
          {"use_rslora", c.use_rslora},
          {"modules_to_save", c.modules_to_save.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.modules_to_save)},
          {"init_lora_weights", init},
          {"rank_pattern", c.rank_pattern},
          {"alpha_pattern", c.alpha_pattern},
          {"bias", "none"},
          {"fan_in_fan_out", false},
          {"use_dora", false},
          {"lora_bias", false},
          {"inference_mode", true},
          {"layers_to_transform", nullptr},
          {"layers_pattern", nullptr},
          {"revision", nullptr}};
}

}  // namespace forma::peft
