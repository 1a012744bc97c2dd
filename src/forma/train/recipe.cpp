#include "forma/train/recipe.h"

#include <yaml-cpp/yaml.h>

#include <map>
#include <set>
#include <sstream>

#include "forma/core/error.h"
#include "forma/core/files.h"
#include "forma/core/system.h"

namespace forma::train {
namespace {

// Where keys came from: the recipe file, or a --set argument (keyed by the full dotted key).
struct Origins {
  std::string source;
  std::map<std::string, std::string> overrides;  // "training.seq_len" -> "--set training.seq_len=x"

  std::string where(const std::string& full_key, const YAML::Node& node) const {
    for (auto& [key, arg] : overrides) {
      // The override itself, or a key inside a section that an override replaced.
      if (full_key == key || full_key.rfind(key + ".", 0) == 0) return arg;
    }
    if (node && !node.Mark().is_null()) {
      return fmt::format("{}:{}:{}", source, node.Mark().line + 1, node.Mark().column + 1);
    }
    return source;
  }
};

// A mapping key as text. YAML allows any node as a key (`? [a, b]`); a recipe's keys are names.
std::string key_text(const YAML::Node& key, const std::string& where) {
  check(key.IsScalar(), "{}: a key must be a name, not a list or mapping", where);
  return key.Scalar();
}

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> parts;
  std::stringstream stream(text);
  for (std::string part; std::getline(stream, part, sep);) parts.push_back(part);
  return parts;
}

// One section of the recipe: reads known keys, remembers them, and rejects the rest in finish().
class Section {
 public:
  Section(const YAML::Node& node, std::string name, const Origins& origins)
      : node_(node), name_(std::move(name)), origins_(origins) {
    check(!node_ || node_.IsNull() || node_.IsMap(), "{}: section '{}' must be a mapping",
          origins_.where(name_, node_), name_);
  }

  template <typename T>
  void read(const std::string& key, T* out) {
    known_.insert(key);
    if (!node_ || !node_.IsMap()) return;
    const YAML::Node& section = node_;  // const lookup: no placeholder entries are created
    YAML::Node value = section[key];
    if (!value || value.IsNull()) return;
    convert(key, value, out);
  }

  // A validation failure of `key`: names the key and where its value came from.
  void require(bool condition, const std::string& key, const std::string& what) const {
    if (condition) return;
    const YAML::Node& section = node_;
    YAML::Node value = (section && section.IsMap()) ? section[key] : YAML::Node();
    fail("{}: {}: {}", origins_.where(full(key), value), full(key), what);
  }

  void finish() const {
    if (!node_ || !node_.IsMap()) return;
    for (auto it = node_.begin(); it != node_.end(); ++it) {
      auto key = key_text(it->first, origins_.where(name_, it->first));
      if (known_.count(key)) continue;
      std::string names;
      for (auto& k : known_) names += (names.empty() ? "" : ", ") + k;
      fail("{}: unknown key '{}' (known keys of '{}': {})", origins_.where(full(key), it->first),
           full(key), name_, names);
    }
  }

 private:
  std::string full(const std::string& key) const { return name_ + "." + key; }

  [[noreturn]] void bad(const std::string& key, const YAML::Node& value, const char* expected) const {
    std::string text = value.IsScalar() ? "'" + value.Scalar() + "'" : "a non-scalar value";
    fail("{}: {}: expected {}, got {}", origins_.where(full(key), value), full(key), expected, text);
  }

  template <typename T>
  void scalar(const std::string& key, const YAML::Node& value, T* out, const char* expected) const {
    if (!value.IsScalar()) bad(key, value, expected);
    try {
      *out = value.as<T>();
    } catch (const YAML::Exception&) {
      bad(key, value, expected);
    }
  }

  void convert(const std::string& key, const YAML::Node& v, int64_t* out) const { scalar(key, v, out, "an integer"); }
  void convert(const std::string& key, const YAML::Node& v, uint64_t* out) const {
    scalar(key, v, out, "a non-negative integer");
  }
  void convert(const std::string& key, const YAML::Node& v, int* out) const { scalar(key, v, out, "an integer"); }
  void convert(const std::string& key, const YAML::Node& v, double* out) const { scalar(key, v, out, "a number"); }
  void convert(const std::string& key, const YAML::Node& v, bool* out) const { scalar(key, v, out, "true or false"); }
  void convert(const std::string& key, const YAML::Node& v, std::string* out) const { scalar(key, v, out, "a string"); }

  // A list, or one scalar (comma-separated values allowed, handy with --set).
  template <typename T>
  void list(const std::string& key, const YAML::Node& value, std::vector<T>* out, const char* expected) const {
    out->clear();
    if (value.IsScalar()) {
      for (auto& part : split(value.Scalar(), ',')) {
        T item;
        convert(key, YAML::Node(part), &item);
        out->push_back(item);
      }
      return;
    }
    if (!value.IsSequence()) bad(key, value, expected);
    for (const auto& item : value) {
      T parsed;
      if (!item.IsScalar()) bad(key, item, expected);
      scalar(key, item, &parsed, expected);
      out->push_back(parsed);
    }
  }
  void convert(const std::string& key, const YAML::Node& v, std::vector<std::string>* out) const {
    list(key, v, out, "a list of strings");
  }
  void convert(const std::string& key, const YAML::Node& v, std::vector<double>* out) const {
    list(key, v, out, "a list of numbers");
  }

  YAML::Node node_;
  std::string name_;
  const Origins& origins_;
  std::set<std::string> known_;
};

// Applies one "a.b.c=value" override to the tree, creating sections as needed.
void apply_override(YAML::Node& root, const std::string& arg, Origins* origins) {
  auto eq = arg.find('=');
  check(eq != std::string::npos && eq > 0, "--set {}: expected key=value", arg);
  std::string key = arg.substr(0, eq), text = arg.substr(eq + 1);
  auto parts = split(key, '.');
  for (auto& part : parts) check(!part.empty(), "--set {}: empty key component in '{}'", arg, key);
  YAML::Node value;
  try {
    value = YAML::Load(text);
  } catch (const YAML::Exception&) {
    value = YAML::Node(text);  // not valid YAML on its own: take it as a plain string
  }
  if (!value || value.IsNull()) value = YAML::Node(text);
  YAML::Node cur = root;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    YAML::Node next = cur[parts[i]];
    if (!next || next.IsNull()) {
      cur[parts[i]] = YAML::Node(YAML::NodeType::Map);
      next = cur[parts[i]];
    }
    check(next.IsMap(), "--set {}: '{}' is not a section", arg, parts[i]);
    cur.reset(next);  // Node::operator= would assign values, reset() moves the reference
  }
  cur[parts.back()] = value;
  origins->overrides[key] = "--set " + arg;
}

void read_top_sections(const YAML::Node& root, const Origins& origins, Recipe* r) {
  Section model(root["model"], "model", origins);
  model.read("path", &r->model.path);
  model.require(!r->model.path.empty(), "path", "required: a preset name, config.json or HF folder");
  model.finish();

  Section tokenizer(root["tokenizer"], "tokenizer", origins);
  tokenizer.read("path", &r->tokenizer.path);
  tokenizer.finish();

  Section data(root["data"], "data", origins);
  data.read("prefixes", &r->data.prefixes);
  data.read("weights", &r->data.weights);
  data.read("valid_fraction", &r->data.valid_fraction);
  data.read("seed", &r->data.seed);
  data.read("packing", &r->data.packing);
  data.require(r->data.weights.empty() || r->data.weights.size() == r->data.prefixes.size(), "weights",
               fmt::format("{} weights for {} prefixes", r->data.weights.size(), r->data.prefixes.size()));
  for (double w : r->data.weights) data.require(w > 0, "weights", "every weight must be > 0");
  data.require(r->data.valid_fraction >= 0 && r->data.valid_fraction < 1, "valid_fraction",
               "must be in [0, 1)");
  data.finish();
}

void read_training(const YAML::Node& root, const Origins& origins, Recipe* r) {
  auto& t = r->training;
  Section s(root["training"], "training", origins);
  s.read("micro_batch_size", &t.micro_batch_size);
  s.read("grad_accum_steps", &t.grad_accum_steps);
  s.read("seq_len", &t.seq_len);
  s.read("max_steps", &t.max_steps);
  s.read("seed", &t.seed);
  s.read("precision", &t.precision);
  s.read("device", &t.device);
  s.read("activation_checkpointing", &t.activation_checkpointing);
  s.read("threads", &t.threads);
  s.require(t.micro_batch_size > 0, "micro_batch_size", "must be > 0");
  s.require(t.grad_accum_steps > 0, "grad_accum_steps", "must be > 0");
  s.require(t.seq_len > 1, "seq_len", "must be > 1");
  s.require(t.max_steps > 0, "max_steps", "must be > 0");
  s.require(t.threads >= 0 && t.threads <= max_threads(), "threads",
            fmt::format("must be 0 (the default) or 1 to {} (this process may run on {} cores)", max_threads(),
                        available_cores()));
  s.require(t.precision == "fp32" || t.precision == "bf16" || t.precision == "fp16", "precision",
            "must be fp32, bf16 or fp16");
  s.require(t.device == "auto" || t.device == "cpu" || t.device == "cuda" || t.device.rfind("cuda:", 0) == 0,
            "device", "must be cpu, cuda, cuda:N or auto");
  s.finish();
}

void read_optimizer(const YAML::Node& root, const Origins& origins, Recipe* r) {
  auto& o = r->optimizer;
  Section s(root["optimizer"], "optimizer", origins);
  std::vector<double> betas{o.beta1, o.beta2};
  s.read("lr", &o.lr);
  s.read("betas", &betas);
  s.read("eps", &o.eps);
  s.read("weight_decay", &o.weight_decay);
  s.read("grad_clip", &o.grad_clip);
  s.require(betas.size() == 2, "betas", "expected two numbers [beta1, beta2]");
  o.beta1 = betas[0];
  o.beta2 = betas[1];
  s.require(o.lr > 0, "lr", "must be > 0");
  s.require(o.beta1 >= 0 && o.beta1 < 1 && o.beta2 >= 0 && o.beta2 < 1, "betas", "each must be in [0, 1)");
  s.require(o.eps > 0, "eps", "must be > 0");
  s.require(o.weight_decay >= 0, "weight_decay", "must be >= 0");
  s.require(o.grad_clip >= 0, "grad_clip", "must be >= 0 (0 disables clipping)");
  s.finish();
}

void read_schedule_logging_checkpoint(const YAML::Node& root, const Origins& origins, Recipe* r) {
  auto& sc = r->schedule;
  Section s(root["schedule"], "schedule", origins);
  s.read("type", &sc.type);
  s.read("warmup_steps", &sc.warmup_steps);
  s.read("min_lr_ratio", &sc.min_lr_ratio);
  s.read("decay_fraction", &sc.decay_fraction);
  s.require(sc.type == "constant" || sc.type == "linear" || sc.type == "cosine" || sc.type == "wsd", "type",
            "must be one of constant, linear, cosine, wsd");
  s.require(sc.warmup_steps >= 0 && sc.warmup_steps <= r->training.max_steps, "warmup_steps",
            "must be in [0, training.max_steps]");
  s.require(sc.min_lr_ratio >= 0 && sc.min_lr_ratio <= 1, "min_lr_ratio", "must be in [0, 1]");
  s.require(sc.decay_fraction >= 0 && sc.decay_fraction <= 1, "decay_fraction", "must be in [0, 1]");
  s.finish();

  auto& l = r->logging;
  Section lg(root["logging"], "logging", origins);
  lg.read("log_interval", &l.log_interval);
  lg.read("eval_interval", &l.eval_interval);
  lg.read("eval_steps", &l.eval_steps);
  lg.require(l.log_interval > 0, "log_interval", "must be > 0");
  lg.require(l.eval_interval >= 0, "eval_interval", "must be >= 0 (0 disables evaluation)");
  lg.require(l.eval_steps > 0, "eval_steps", "must be > 0");
  lg.finish();

  auto& c = r->checkpoint;
  Section ck(root["checkpoint"], "checkpoint", origins);
  ck.read("interval", &c.interval);
  ck.read("keep_last", &c.keep_last);
  ck.require(c.interval >= 0, "interval", "must be >= 0 (0: only at the end)");
  ck.require(c.keep_last >= 1, "keep_last", "must be >= 1");
  ck.finish();
}

void read_parallel(const YAML::Node& root, const Origins& origins, Recipe* r) {
  auto& p = r->parallel;
  Section s(root["parallel"], "parallel", origins);
  s.read("data_parallel", &p.data_parallel);
  s.read("tensor_parallel", &p.tensor_parallel);
  s.read("sequence_parallel", &p.sequence_parallel);
  s.read("pipeline_parallel", &p.pipeline_parallel);
  s.read("context_parallel", &p.context_parallel);
  s.read("expert_parallel", &p.expert_parallel);
  s.read("zero_stage", &p.zero_stage);
  s.read("bucket_mb", &p.bucket_mb);
  s.read("timeout_minutes", &p.timeout_minutes);
  s.require(p.data_parallel >= 0, "data_parallel", "must be >= 1, or 0 for WORLD_SIZE / (the other dimensions)");
  // Accepted so that recipes can name the whole layout; the layers for these come later.
  s.require(p.tensor_parallel >= 1, "tensor_parallel", "must be >= 1");
  const std::pair<const char*, int> not_yet[] = {{"pipeline_parallel", p.pipeline_parallel},
                                                 {"context_parallel", p.context_parallel},
                                                 {"expert_parallel", p.expert_parallel}};
  for (auto& [key, value] : not_yet) {
    s.require(value >= 1, key, "must be >= 1");
    s.require(value == 1, key, fmt::format("{} is not yet supported (only 1 for now)", value));
  }
  s.require(p.zero_stage == 0 || p.zero_stage == 1, "zero_stage",
            fmt::format("{} is not supported: 0 (replicated AdamW state) or 1 (sharded across data-parallel "
                        "ranks)", p.zero_stage));
  s.require(p.bucket_mb > 0, "bucket_mb", "must be > 0");
  s.require(p.timeout_minutes > 0, "timeout_minutes", "must be > 0");
  s.finish();
}

// LoRA (peft/lora_config.h): target_modules is a list of names, or one string: a regular
// expression or "all-linear", as PEFT's LoraConfig reads it.
void read_lora(const YAML::Node& root, const Origins& origins, Recipe* r) {
  auto& l = r->lora;
  l.enabled = root["lora"].IsDefined() && !root["lora"].IsNull();
  Section s(root["lora"], "lora", origins);
  s.read("r", &l.r);
  s.read("alpha", &l.alpha);
  s.read("dropout", &l.dropout);
  s.read("use_rslora", &l.use_rslora);
  s.read("modules_to_save", &l.modules_to_save);
  s.read("init", &l.init);
  s.read("base_dtype", &l.base_dtype);
  const YAML::Node& section = root["lora"];
  YAML::Node targets = (section && section.IsMap()) ? YAML::Node(section["target_modules"]) : YAML::Node();
  if (targets && targets.IsScalar()) {
    std::string text;
    s.read("target_modules", &text);
    l.all_linear = text == "all-linear";
    if (!l.all_linear) l.target_regex = text;
  } else {
    s.read("target_modules", &l.target_modules);
  }
  if (!l.enabled) return;
  s.require(l.r >= 1, "r", "must be >= 1");
  s.require(l.dropout >= 0 && l.dropout < 1, "dropout", "must be in [0, 1)");
  s.require(l.all_linear || !l.target_regex.empty() || !l.target_modules.empty(), "target_modules",
            "required: names such as [q_proj, v_proj], a regular expression, or all-linear");
  s.require(l.init == "default" || l.init == "gaussian" || l.init == "random", "init",
            "must be default, gaussian or random");
  s.require(l.base_dtype == "fp32" || l.base_dtype == "bf16", "base_dtype", "must be fp32 or bf16");
  // modules_to_save train whole in the base's dtype: AdamW on bf16 weights loses small updates.
  s.require(l.base_dtype == "fp32" || l.modules_to_save.empty(), "base_dtype",
            "bf16 cannot be combined with modules_to_save (those modules would train in bf16); use fp32");
  s.finish();
  peft::validate(l, r->source + ": lora");
}

// YAML lets a mapping repeat a key, and yaml-cpp keeps the first silently: a recipe that sets
// training.seq_len twice would train with the value the user did not edit last. Refuse it.
void reject_duplicate_keys(const YAML::Node& node, const std::string& path, const std::string& source) {
  if (node.IsSequence()) {
    for (const auto& item : node) reject_duplicate_keys(item, path, source);
    return;
  }
  if (!node.IsMap()) return;
  std::map<std::string, YAML::Mark> seen;
  for (auto it = node.begin(); it != node.end(); ++it) {
    const std::string key = it->first.IsScalar() ? it->first.Scalar() : "";
    const std::string full = path.empty() ? key : path + "." + key;
    const YAML::Mark mark = it->first.Mark();
    auto [first, inserted] = seen.emplace(key, mark);
    check(inserted, "{}:{}:{}: {}: duplicate key (first at line {})", source, mark.line + 1, mark.column + 1, full,
          first->second.line + 1);
    reject_duplicate_keys(it->second, full, source);
  }
}

}  // namespace

Recipe parse_recipe(const std::string& yaml_text, const std::string& source_name,
                    const std::vector<std::string>& overrides) {
  Origins origins{source_name, {}};
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    fail("{}:{}:{}: invalid YAML: {}", source_name, e.mark.line + 1, e.mark.column + 1, e.msg);
  }
  if (!root || root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  check(root.IsMap(), "{}: a recipe must be a mapping of sections", source_name);
  reject_duplicate_keys(root, "", source_name);
  for (auto& arg : overrides) apply_override(root, arg, &origins);

  static const std::set<std::string> kSections{"model",    "tokenizer", "data",       "training", "optimizer",
                                               "schedule", "logging",   "checkpoint", "parallel", "output_dir", "lora"};
  for (auto it = root.begin(); it != root.end(); ++it) {
    auto key = key_text(it->first, origins.where("", it->first));
    if (!kSections.count(key)) {
      fail("{}: unknown key '{}' (sections: model, tokenizer, data, training, optimizer, schedule, "
           "logging, checkpoint, parallel, lora, output_dir)", origins.where(key, it->first), key);
    }
  }
  Recipe r;
  r.source = source_name;
  read_top_sections(root, origins, &r);
  read_training(root, origins, &r);
  read_optimizer(root, origins, &r);
  read_schedule_logging_checkpoint(root, origins, &r);
  read_parallel(root, origins, &r);
  read_lora(root, origins, &r);
  if (root["output_dir"]) {
    YAML::Node out = root["output_dir"];
    check(out.IsScalar() && !out.Scalar().empty(), "{}: output_dir: expected a folder path",
          origins.where("output_dir", out));
    r.output_dir = out.Scalar();
  }
  YAML::Emitter emitter;
  emitter << root;
  r.snapshot = emitter.c_str();
  return r;
}

Recipe load_recipe(const std::string& path, const std::vector<std::string>& overrides) {
  std::string text;
  try {
    text = read_file(path);
  } catch (const Error& e) {
    fail("recipe {}: {}", path, e.what());
  }
  return parse_recipe(text, path, overrides);
}

}  // namespace forma::train
