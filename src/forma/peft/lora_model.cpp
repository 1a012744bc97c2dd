#include "forma/peft/lora_model.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>

#include "forma/core/error.h"
#include "forma/core/files.h"
#include "forma/io/safetensors.h"
#include "forma/model/hf_names.h"
#include "forma/model/tensor_io.h"
#include "forma/peft/lora_linear.h"

namespace forma::peft {

namespace lora_model_detail {

namespace fs = std::filesystem;
constexpr const char* kPrefix = "base_model.model.";
constexpr const char* kWeightsFile = "adapter_model.safetensors";

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// "a.b.c" -> {"a.b", "c"}
std::pair<std::string, std::string> split_last(const std::string& name) {
  auto dot = name.rfind('.');
  if (dot == std::string::npos) return {"", name};
  return {name.substr(0, dot), name.substr(dot + 1)};
}

torch::nn::Module& module_at(CausalLM& model, const std::string& name) {
  if (name.empty()) return *model;
  auto modules = model->named_modules("", /*include_self=*/false);
  const auto* found = modules.find(name);
  check(found != nullptr, "the model has no module '{}'", name);
  return **found;
}

std::string linear_names(const std::vector<LinearModule>& modules) {
  std::set<std::string> leaves;
  for (const auto& m : modules) leaves.insert(split_last(m.hf_name).second);
  std::string out;
  for (const auto& l : leaves) out += (out.empty() ? "" : ", ") + l;
  return out;
}

// The modules_to_save parameters of the model, by forma parameter name.
std::vector<std::string> modules_to_save_params(CausalLM& model, const LoraConfig& config) {
  std::vector<std::string> names;
  if (config.modules_to_save.empty()) return names;
  for (const auto& p : model->named_parameters()) {
    if (is_lora_parameter(p.key())) continue;
    // Matched on the HF parameter name's module part.
    StateDict one{{p.key(), p.value()}};
    for (const auto& [hf, t] : to_hf_names(one, model->config())) {
      if (matches_modules_to_save(config, split_last(hf).first)) names.push_back(p.key());
    }
  }
  return names;
}

// A fused HF module's lora_B ([out, r], rows in the order of the HF weight's rows) and its parts'
// lora_B in forma's modules ([rows of the part, r] each): the rows are laid out as the weight's
// (one block per part, blocks of unequal sizes, or interleaved per head as gpt_neox's
// query_key_value), so the module's own weight rule splits and joins them. The rule works in HF's
// layout, which for a Conv1D weight (gpt2's c_attn) is [in, out]: B goes through it transposed.
StateDict split_fused_b(const ModelConfig& config, const LinearModule& module, const torch::Tensor& b) {
  return from_hf_names({{module.hf_name + ".weight", module.transposed ? b.t() : b}}, config);
}

torch::Tensor join_fused_b(const ModelConfig& config, const LinearModule& module, const StateDict& parts) {
  const StateDict joined = to_hf_names(parts, config);
  auto it = joined.find(module.hf_name + ".weight");
  check(it != joined.end() && joined.size() == 1, "adapter: the parts of '{}' do not join into it", module.hf_name);
  return module.transposed ? it->second.t().contiguous() : it->second;
}

}  // namespace lora_model_detail

using namespace lora_model_detail;

LinearModule hf_module(const ModelConfig& config, const std::string& name) {
  const HfModule m = hf_module_of(config, name);
  return {name, m.hf_name, m.part, m.parts, m.transposed};
}

bool is_lora_parameter(const std::string& name) {
  return ends_with(name, ".lora_A.weight") || ends_with(name, ".lora_B.weight");
}

std::vector<LinearModule> linear_modules(CausalLM& model) {
  std::vector<std::string> names;
  for (const auto& item : model->named_modules("", /*include_self=*/false)) {
    auto* m = item.value().get();
    if (!dynamic_cast<torch::nn::LinearImpl*>(m) && !dynamic_cast<LoraLinearImpl*>(m)) continue;
    const std::string& name = item.key();
    if (ends_with(name, ".lora_A") || ends_with(name, ".lora_B")) continue;
    names.push_back(name);
  }
  const std::vector<HfModule> hf = hf_modules_of(model->config(), names);  // the rules expanded once
  std::vector<LinearModule> out;
  for (size_t i = 0; i < names.size(); ++i) {
    out.push_back({names[i], hf[i].hf_name, hf[i].part, hf[i].parts, hf[i].transposed});
  }
  return out;
}

int64_t apply_lora(CausalLM& model, const LoraConfig& config, const std::string& where) {
  validate(config, where);
  const auto linears = linear_modules(model);
  std::set<std::string> linear_names_set;
  for (const auto& m : linears) linear_names_set.insert(m.name);
  // A named target that is some other kind of module (an embedding, a norm) is refused, not skipped.
  if (config.target_regex.empty() && !config.all_linear) {
    for (const auto& item : model->named_modules("", false)) {
      const std::string& name = item.key();
      if (linear_names_set.count(name) || ends_with(name, ".lora_A") || ends_with(name, ".lora_B")) continue;
      const std::string hf = hf_module_of(model->config(), name).hf_name;
      bool leaf = item.value()->children().empty();
      check(!leaf || !matches_target(config, hf), "{}: target_modules: '{}' is a {}, not a linear layer (forma's LoRA "
            "adapts linear layers only)", where, hf, item.value()->name());
    }
  }
  int64_t adapted = 0;
  for (const auto& m : linears) {
    if (matches_modules_to_save(config, m.hf_name)) continue;  // PEFT: trained whole instead
    const bool targeted = config.all_linear ? m.name != "lm_head" : matches_target(config, m.hf_name);
    if (!targeted) continue;
    auto [parent, leaf] = split_last(m.name);
    auto& parent_module = module_at(model, parent);
    auto child = parent_module.named_children()[leaf];
    check(!dynamic_cast<LoraLinearImpl*>(child.get()), "{}: {} has an adapter already", where, m.name);
    auto* linear = dynamic_cast<torch::nn::LinearImpl*>(child.get());
    check(linear != nullptr, "{}: {} is not a linear layer", where, m.name);
    auto lora = std::make_shared<LoraLinearImpl>(linear->weight, linear->bias, config.rank_for(m.hf_name),
                                                 config.scaling_for(m.hf_name), config.dropout, config.init);
    parent_module.replace_module(leaf, lora);
    ++adapted;
  }
  check(adapted > 0, "{}: target_modules matched no linear layer of this {} model (its linear layers: {}){}", where,
        model->config().model_type, linear_names(linears),
        linears.empty() ? " (tensor-parallel layers cannot take adapters yet)" : "");
  for (auto& p : model->parameters()) p.set_requires_grad(false);
  for (auto& p : model->named_parameters()) {
    if (is_lora_parameter(p.key())) p.value().set_requires_grad(true);
  }
  auto to_save = modules_to_save_params(model, config);
  check(config.modules_to_save.empty() || !to_save.empty(), "{}: modules_to_save matched no module of this {} model",
        where, model->config().model_type);
  auto params = model->named_parameters();
  for (const auto& name : to_save) params[name].set_requires_grad(true);
  return adapted;
}

ParameterCounts parameter_counts(CausalLM& model) {
  ParameterCounts c;
  for (const auto& p : model->parameters()) (p.requires_grad() ? c.trainable : c.frozen) += p.numel();
  return c;
}

std::map<std::string, torch::Tensor> adapter_state_dict(CausalLM& model, LoraConfig* config_out,
                                                        const LoraConfig& config, const StateDict* full) {
  *config_out = config;
  // A parameter's tensor: the model's own, or the full one given for it.
  auto tensor = [full](const std::string& name, const torch::Tensor& own) {
    if (full == nullptr) return own.detach();
    auto it = full->find(name);
    check(it != full->end(), "adapter: no full tensor for '{}'", name);
    return it->second;
  };
  std::map<std::string, torch::Tensor> out;
  // Fused HF modules (gpt2's c_attn, gpt_neox's query_key_value): parts gathered first, written as
  // one adapter.
  std::map<std::string, std::vector<std::pair<LinearModule, LoraLinearImpl*>>> fused;
  auto modules = model->named_modules("", false);
  std::map<const LoraLinearImpl*, std::pair<torch::Tensor, torch::Tensor>> ab;  // full A, B
  for (const auto& m : linear_modules(model)) {
    auto* lora = dynamic_cast<LoraLinearImpl*>(modules[m.name].get());
    if (lora == nullptr) continue;
    ab[lora] = {tensor(m.name + ".lora_A.weight", lora->lora_A), tensor(m.name + ".lora_B.weight", lora->lora_B)};
    if (m.parts > 1) {
      fused[m.hf_name].push_back({m, lora});
      continue;
    }
    out[kPrefix + m.hf_name + ".lora_A.weight"] = ab[lora].first;
    out[kPrefix + m.hf_name + ".lora_B.weight"] = ab[lora].second;
  }
  for (auto& [hf, parts] : fused) {
    check(static_cast<int>(parts.size()) == parts[0].first.parts, "{}: only some of the layers fused into it have "
          "adapters; PEFT cannot represent that", hf);
    std::sort(parts.begin(), parts.end(), [](auto& a, auto& b) { return a.first.part < b.first.part; });
    // A = [A_0; A_1; A_2] [sum r, in]; B block-diagonal: part p's B in its own columns (zeros in the
    // others), rescaled from its own scaling to the written one (alpha_f / r_f, or / sqrt(r_f)), so
    // the same delta exactly; the parts' rows then joined as the weight's are.
    int64_t rank = 0;
    for (auto& [m, l] : parts) rank += l->r;
    const double scaling = parts[0].second->scaling;
    std::vector<torch::Tensor> as;
    StateDict part_b;
    int64_t col = 0;
    for (auto& [m, l] : parts) {
      as.push_back(ab[l].first);
      const torch::Tensor& lb = ab[l].second;
      torch::Tensor b = torch::zeros({lb.size(0), rank}, lb.options());
      b.slice(1, col, col + l->r).copy_(lb * (l->scaling / scaling));
      part_b[m.name + ".weight"] = b;
      col += l->r;
    }
    out[kPrefix + hf + ".lora_A.weight"] = torch::cat(as, 0);
    out[kPrefix + hf + ".lora_B.weight"] = join_fused_b(model->config(), parts[0].first, part_b);
    const std::string key = split_last(hf).second;  // "c_attn": every layer's fused adapter has this rank
    config_out->rank_pattern[key] = rank;
    config_out->alpha_pattern[key] = config.use_rslora ? scaling * std::sqrt(static_cast<double>(rank))
                                                       : scaling * static_cast<double>(rank);
  }
  StateDict saved;
  auto params = model->named_parameters();
  for (const auto& name : modules_to_save_params(model, config)) saved[name] = tensor(name, params[name]);
  for (const auto& [hf, t] : to_hf_names(saved, model->config())) out[kPrefix + hf] = t;
  return out;
}

void save_adapter(CausalLM& model, const LoraConfig& config, const std::string& dir, const StateDict* full) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  check(!ec, "cannot create {}: {}", dir, ec.message());
  LoraConfig written;
  auto tensors = adapter_state_dict(model, &written, config, full);
  save_tensors((fs::path(dir) / kWeightsFile).string(), tensors, {{"format", "pt"}});
  write_file_atomic((fs::path(dir) / "adapter_config.json").string(), adapter_config_json(written).dump(2) + "\n");
}

LoraConfig load_adapter(CausalLM& model, const std::string& dir) {
  LoraConfig config = load_adapter_config(dir);
  const std::string path = (fs::path(dir) / kWeightsFile).string();
  check(fs::exists(path), "{}: no {} (forma reads adapters in safetensors only)", dir, kWeightsFile);
  auto tensors = load_tensors(path);
  apply_lora(model, config, (fs::path(dir) / "adapter_config.json").string());
  std::set<std::string> used;
  auto take = [&](const std::string& key, const std::vector<int64_t>& shape) {
    auto it = tensors.find(key);
    check(it != tensors.end(), "{}: missing tensor '{}'", path, key);
    check(it->second.sizes().vec() == shape, "{}: tensor '{}' has shape [{}] but the model needs [{}]", path, key,
          fmt::join(it->second.sizes(), ", "), fmt::join(shape, ", "));
    used.insert(key);
    return it->second;
  };
  torch::NoGradGuard no_grad;
  auto modules = model->named_modules("", false);
  // A fused HF module's B holds its parts' rows as its weight holds theirs (split_fused_b).
  std::map<std::string, int64_t> fused_rows;  // hf module -> rows of its B
  for (const auto& m : linear_modules(model)) {
    auto* lora = dynamic_cast<LoraLinearImpl*>(modules[m.name].get());
    if (lora != nullptr) fused_rows[m.hf_name] += lora->lora_B.size(0);
  }
  std::map<std::string, StateDict> parts_of;  // hf module -> its parts' rows of B, by forma weight name
  for (const auto& m : linear_modules(model)) {
    auto* lora = dynamic_cast<LoraLinearImpl*>(modules[m.name].get());
    if (lora == nullptr) continue;
    const int64_t in = lora->lora_A.size(1);
    lora->lora_A.copy_(take(kPrefix + m.hf_name + ".lora_A.weight", {lora->r, in}));
    const torch::Tensor b = take(kPrefix + m.hf_name + ".lora_B.weight", {fused_rows[m.hf_name], lora->r});
    if (m.parts == 1) {
      lora->lora_B.copy_(b);
      continue;
    }
    StateDict& parts = parts_of[m.hf_name];
    if (parts.empty()) parts = split_fused_b(model->config(), m, b);
    auto it = parts.find(m.name + ".weight");
    check(it != parts.end() && it->second.sizes() == lora->lora_B.sizes(), "{}: tensor '{}' does not split into "
          "the layers fused in '{}'", path, kPrefix + m.hf_name + ".lora_B.weight", m.hf_name);
    lora->lora_B.copy_(it->second);
  }
  StateDict hf_saved;
  for (const auto& [key, t] : tensors) {
    if (!used.count(key) && key.rfind(kPrefix, 0) == 0) hf_saved[key.substr(std::string(kPrefix).size())] = t;
  }
  auto params = model->named_parameters();
  for (const auto& [name, t] : from_hf_names(hf_saved, model->config())) {
    auto* p = params.find(name);
    check(p != nullptr && p->requires_grad() && !is_lora_parameter(name),
          "{}: unexpected tensor for '{}' (neither an adapter nor in modules_to_save)", path, name);
    check(p->sizes() == t.sizes(), "{}: tensor for '{}' has shape [{}] but the model needs [{}]", path, name,
          fmt::join(t.sizes(), ", "), fmt::join(p->sizes(), ", "));
    p->copy_(t);
    used.insert(name);
  }
  for (const auto& [key, t] : tensors) {
    check(key.rfind(kPrefix, 0) == 0, "{}: unexpected tensor '{}' (PEFT's names start with {})", path, key, kPrefix);
  }
  for (const auto& name : modules_to_save_params(model, config)) {
    check(used.count(name), "{}: modules_to_save: no tensor for '{}'", path, name);
  }
  return config;
}

void merge_lora(CausalLM& model) {
  auto modules = model->named_modules("", false);
  for (const auto& m : linear_modules(model)) {
    auto* lora = dynamic_cast<LoraLinearImpl*>(modules[m.name].get());
    if (lora == nullptr) continue;
    auto linear = torch::nn::Linear(torch::nn::LinearOptions(lora->weight.size(1), lora->weight.size(0))
                                        .bias(lora->bias.defined()));
    torch::NoGradGuard no_grad;
    linear->to(lora->weight.device(), lora->weight.scalar_type());
    linear->weight.set_data(lora->merged_weight());
    if (lora->bias.defined()) linear->bias.set_data(lora->bias.detach().clone());
    auto [parent, leaf] = split_last(m.name);
    module_at(model, parent).replace_module(leaf, linear.ptr());
  }
  for (auto& p : model->parameters()) p.set_requires_grad(true);
}

}  // namespace forma::peft
