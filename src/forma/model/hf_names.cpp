#include "forma/model/hf_names.h"

#include <unordered_map>

#include "forma/core/error.h"

namespace forma {

namespace {

std::string with_layer(const std::string& pattern, int64_t layer) {
  const size_t at = pattern.find("{L}");
  if (at == std::string::npos) return pattern;
  return pattern.substr(0, at) + std::to_string(layer) + pattern.substr(at + 3);
}

// Every rule, once per layer where its names hold "{L}".
std::vector<WeightRule> expanded_rules(const ModelConfig& config) {
  const Architecture& arch = architecture_for(config);
  std::vector<WeightRule> out;
  if (!arch.weight_rules) return out;
  for (const WeightRule& rule : arch.weight_rules(config)) {
    if (rule.hf.find("{L}") == std::string::npos) {
      out.push_back(rule);
      continue;
    }
    for (int64_t layer = 0; layer < config.num_hidden_layers; ++layer) {
      WeightRule r = rule;
      r.hf = with_layer(rule.hf, layer);
      for (auto& name : r.forma) name = with_layer(name, layer);
      out.push_back(std::move(r));
    }
  }
  return out;
}

int64_t group_count(const WeightRule& rule, const ModelConfig& config) { return rule.groups ? rule.groups(config) : 1; }

std::vector<torch::Tensor> split_parts(const torch::Tensor& t, const WeightRule& rule, const ModelConfig& config) {
  if (rule.forma.size() == 1) return {t};
  if (const int64_t groups = group_count(rule, config); groups > 1) {
    // [.., groups * group, ..] -> [.., groups, group, ..], split each group, each part back to one dim.
    const int64_t dim = rule.split_dim < 0 ? rule.split_dim + t.dim() : rule.split_dim;
    check(t.size(dim) % groups == 0, "{}: tensor '{}' of size {} along dim {} does not split into {} groups",
          config.source, rule.hf, t.size(dim), dim, groups);
    WeightRule one = rule;
    one.groups = nullptr;
    one.split_dim = dim + 1;
    const torch::Tensor grouped = t.unflatten(dim, {groups, t.size(dim) / groups});
    std::vector<torch::Tensor> parts;
    if (rule.part_sizes) {
      std::vector<int64_t> sizes = rule.part_sizes(config);
      for (int64_t& s : sizes) s /= groups;
      parts = grouped.split_with_sizes(sizes, dim + 1);
    } else {
      parts = grouped.chunk(static_cast<int64_t>(rule.forma.size()), dim + 1);
    }
    for (auto& p : parts) p = p.flatten(dim, dim + 1);
    return parts;
  }
  if (!rule.part_sizes) {
    check(t.size(rule.split_dim) % static_cast<int64_t>(rule.forma.size()) == 0,
          "{}: tensor '{}' of size {} along dim {} does not split into {} equal parts", config.source, rule.hf,
          t.size(rule.split_dim), rule.split_dim, rule.forma.size());
    return t.chunk(static_cast<int64_t>(rule.forma.size()), rule.split_dim);
  }
  std::vector<int64_t> sizes = rule.part_sizes(config);
  int64_t total = 0;
  for (int64_t s : sizes) total += s;
  check(sizes.size() == rule.forma.size() && total == t.size(rule.split_dim),
        "{}: tensor '{}' has size {} along dim {}, the config says {}", config.source, rule.hf, t.size(rule.split_dim),
        rule.split_dim, total);
  return t.split_with_sizes(sizes, rule.split_dim);
}

}  // namespace

StateDict from_hf_names(const StateDict& hf_in, const ModelConfig& config) {
  const Architecture& arch = architecture_for(config);
  StateDict hf;
  for (const auto& [name, t] : hf_in) {
    const std::string normal = arch.normalize_hf_name ? arch.normalize_hf_name(name) : name;
    if (!normal.empty()) hf[normal] = t;
  }
  StateDict out;
  for (const WeightRule& rule : expanded_rules(config)) {
    auto it = hf.find(rule.hf);
    if (it == hf.end()) continue;
    std::vector<torch::Tensor> parts = split_parts(it->second, rule, config);
    for (size_t p = 0; p < parts.size(); ++p) out[rule.forma[p]] = rule.transposed ? parts[p].t() : parts[p];
    hf.erase(it);
  }
  for (const auto& [name, t] : hf) out[name] = t;  // no rule: the same name in both
  return out;
}

StateDict to_hf_names(const StateDict& forma_in, const ModelConfig& config) {
  StateDict f = forma_in;
  StateDict out;
  for (const WeightRule& rule : expanded_rules(config)) {
    std::vector<torch::Tensor> parts;
    for (const auto& name : rule.forma) {
      auto it = f.find(name);
      if (it == f.end()) break;
      parts.push_back(rule.transposed ? it->second.t() : it->second);
    }
    // All parts or none (a LoRA adapter or a gradient subset may hold some tensors only).
    if (parts.size() != rule.forma.size()) continue;
    for (const auto& name : rule.forma) f.erase(name);
    const int64_t groups = group_count(rule, config);
    if (parts.size() > 1 && groups > 1) {  // each part into groups, then group g of every part in turn
      const int64_t dim = rule.split_dim < 0 ? rule.split_dim + parts[0].dim() : rule.split_dim;
      for (auto& p : parts) p = p.unflatten(dim, {groups, p.size(dim) / groups});
      out[rule.hf] = torch::cat(parts, dim + 1).flatten(dim, dim + 1).contiguous();
      continue;
    }
    out[rule.hf] = parts.size() == 1 ? (rule.transposed ? parts[0].contiguous() : parts[0])
                                     : torch::cat(parts, rule.split_dim).contiguous();
  }
  for (const auto& [name, t] : f) out[name] = t;
  return out;
}

HfModule hf_module_of(const ModelConfig& config, const std::string& name) {
  return hf_modules_of(config, {name}).front();
}

std::vector<HfModule> hf_modules_of(const ModelConfig& config, const std::vector<std::string>& names) {
  const std::string suffix = ".weight";
  const std::vector<WeightRule> rules = expanded_rules(config);
  std::unordered_map<std::string, std::pair<size_t, size_t>> part_of;  // forma weight -> rule, part
  for (size_t r = 0; r < rules.size(); ++r) {
    for (size_t p = 0; p < rules[r].forma.size(); ++p) part_of.emplace(rules[r].forma[p], std::make_pair(r, p));
  }
  std::vector<HfModule> out;
  out.reserve(names.size());
  for (const std::string& name : names) {
    const std::string weight = name + suffix;
    auto it = part_of.find(weight);
    if (it == part_of.end()) {
      out.push_back({name});
      continue;
    }
    const WeightRule& rule = rules[it->second.first];
    check(rule.hf.size() > suffix.size() && rule.hf.compare(rule.hf.size() - suffix.size(), suffix.size(), suffix) == 0,
          "{}: the weight rule for '{}' names no module", config.source, weight);
    out.push_back({rule.hf.substr(0, rule.hf.size() - suffix.size()), static_cast<int>(it->second.second),
                   static_cast<int>(rule.forma.size()), group_count(rule, config) > 1, rule.transposed});
  }
  return out;
}

}  // namespace forma
