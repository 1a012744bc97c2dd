#include "forma/infer/generation_defaults.h"

#include <filesystem>

#include "forma/core/error.h"
#include "forma/core/files.h"

namespace forma::infer {

namespace {

using nlohmann::json;

bool present(const json& j, const char* key) { return j.contains(key) && !j.at(key).is_null(); }

double number_field(const json& j, const char* key, const std::string& source) {
  check(j.at(key).is_number(), "{}: field \"{}\" must be a number", source, key);
  return j.at(key).get<double>();
}

int64_t integer_field(const json& j, const char* key, const std::string& source) {
  check(j.at(key).is_number_integer(), "{}: field \"{}\" must be an integer", source, key);
  return j.at(key).get<int64_t>();
}

// eos_token_id is one id or a list of ids (Llama 3.1).
std::vector<int32_t> eos_field(const json& j, const std::string& source) {
  const json& value = j.at("eos_token_id");
  std::vector<int32_t> ids;
  auto add = [&](const json& id) {
    check(id.is_number_integer() && id.get<int64_t>() >= 0 && id.get<int64_t>() <= INT32_MAX,
          "{}: field \"eos_token_id\" must be a non-negative id or a list of them", source);
    ids.push_back(static_cast<int32_t>(id.get<int64_t>()));
  };
  if (value.is_array()) {
    for (const auto& id : value) add(id);
  } else {
    add(value);
  }
  return ids;
}

std::vector<std::string> stop_strings_field(const json& j, const std::string& source) {
  const json& value = j.at("stop_strings");
  std::vector<std::string> out;
  auto add = [&](const json& s) {
    check(s.is_string() && !s.get<std::string>().empty(),
          "{}: field \"stop_strings\" must be a non-empty string or a list of them", source);
    out.push_back(s.get<std::string>());
  };
  if (value.is_array()) {
    for (const auto& s : value) add(s);
  } else {
    add(value);
  }
  return out;
}

}  // namespace

void apply_generation_config_json(const json& j, const std::string& source, GenerationConfig* config) {
  check(j.is_object(), "{}: expected a JSON object", source);
  bool do_sample = false;
  if (present(j, "do_sample")) {
    check(j.at("do_sample").is_boolean(), "{}: field \"do_sample\" must be true or false", source);
    do_sample = j.at("do_sample").get<bool>();
  }
  SamplingConfig& s = config->sampling;
  if (do_sample) {
    s.temperature = present(j, "temperature") ? number_field(j, "temperature", source) : 1.0;
    s.top_k = present(j, "top_k") ? integer_field(j, "top_k", source) : 50;  // HF's default
    if (present(j, "top_p")) s.top_p = number_field(j, "top_p", source);
    if (present(j, "min_p")) s.min_p = number_field(j, "min_p", source);
  } else {
    s.temperature = 0.0;
  }
  if (present(j, "repetition_penalty")) {
    s.repetition_penalty = number_field(j, "repetition_penalty", source);
  }
  if (present(j, "max_new_tokens")) config->max_new_tokens = integer_field(j, "max_new_tokens", source);
  if (present(j, "eos_token_id")) config->eos_ids = eos_field(j, source);
  if (present(j, "stop_strings")) config->stop_strings = stop_strings_field(j, source);
  try {
    config->validate();
  } catch (const Error& e) {
    fail("{}: {}", source, e.what());
  }
}

GenerationConfig load_generation_defaults(const std::string& model_dir, const ModelConfig& model_config,
                                          const tok::Tokenizer* tokenizer) {
  GenerationConfig config;
  config.sampling.temperature = 0.0;  // HF generates greedily unless told to sample
  const std::string path = (std::filesystem::path(model_dir) / "generation_config.json").string();
  if (std::filesystem::exists(path)) {
    json j;
    try {
      j = json::parse(read_file(path));
    } catch (const json::parse_error& e) {
      fail("{}: not valid JSON: {}", path, e.what());
    }
    apply_generation_config_json(j, path, &config);
  }
  if (config.eos_ids.empty()) {
    for (int64_t id : model_config.eos_token_id) config.eos_ids.push_back(static_cast<int32_t>(id));
  }
  if (config.eos_ids.empty() && tokenizer && tokenizer->eos_id()) {
    config.eos_ids.push_back(*tokenizer->eos_id());
  }
  return config;
}

}  // namespace forma::infer
