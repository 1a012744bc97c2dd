// `forma model info MODEL`: parameter counts, FLOPs per token and memory estimates of a preset, a
// config.json or a model folder, computed from the config alone (model/model_stats.h).
#include <cstdio>
#include <string>

#include "forma/cli/command.h"
#include "forma/core/error.h"
#include "forma/model/config.h"
#include "forma/model/model_stats.h"
#include "forma/peft/lora_plan.h"

// A named namespace (not an anonymous one): unity builds compile the commands in one unit.
namespace forma::cli::model_command {

struct InfoArgs {
  std::string model;
  int64_t seq_len = 0;  // 0: max_position_embeddings capped at 2048
  int64_t batch = 1;
  int64_t lora_r = 0;       // > 0: also what LoRA of this rank on lora_targets trains
  std::string lora_targets = "all-linear";
};

std::string human_count(double n) {
  const char* units[] = {"", "K", "M", "B", "T"};
  int u = 0;
  while (n >= 1000 && u < 4) {
    n /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.2f%s" : "%.0f%s", n, units[u]);
  return buf;
}

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f %s", bytes, units[u]);
  return buf;
}

// --lora-r R --lora-targets LIST: the adapters' parameters and their training memory.
void print_lora_plan(const InfoArgs& a, const forma::ModelConfig& c, int64_t total) {
  forma::peft::LoraConfig lora;
  lora.enabled = true;
  lora.r = a.lora_r;
  if (a.lora_targets == "all-linear") {
    lora.all_linear = true;
  } else {
    std::string item;
    for (char ch : a.lora_targets + ",") {
      if (ch != ',') item += ch;
      else if (!item.empty()) lora.target_modules.push_back(item), item.clear();
    }
  }
  const auto plan = forma::peft::plan_lora(c, lora, "--lora-targets " + a.lora_targets);
  const double n = static_cast<double>(plan.adapter_params);
  std::printf("LoRA r=%lld        %s: %lld layers, %lld trainable (%s, %.3f%%), AdamW moments %s + grads %s (fp32); "
              "frozen base %s\n",
              (long long)a.lora_r, a.lora_targets.c_str(), (long long)plan.layers, (long long)plan.adapter_params,
              human_count(n).c_str(), 100.0 * n / static_cast<double>(total), human_bytes(8 * n).c_str(),
              human_bytes(4 * n).c_str(), human_count(static_cast<double>(total)).c_str());
}

void run_info(const InfoArgs& a) {
  forma::ModelConfig c = forma::load_model_config(a.model);
  const int64_t seq = a.seq_len > 0 ? a.seq_len : std::min<int64_t>(c.max_position_embeddings, 2048);
  forma::check(a.batch > 0, "--batch must be positive");
  forma::ParameterCounts n = forma::count_parameters(c);
  std::printf("model            %s (%s)\n", a.model.c_str(), c.model_type.c_str());
  // MLA (kv_lora_rank): each head's q.k is nope + rope dims (head_dim is the rope part), v its own.
  const std::string heads =
      c.kv_lora_rank > 0
          ? fmt::format("q/k dim {} = {} + {} rope, v dim {}, kv latent {}", c.qk_nope_head_dim + c.head_dim,
                        c.qk_nope_head_dim, c.head_dim, c.v_head_dim, c.kv_lora_rank)
          : fmt::format("kv {}, dim {}", c.num_key_value_heads, c.head_dim);
  std::printf("shape            layers %lld, hidden %lld, heads %lld (%s), ffn %lld, vocab %lld\n",
              (long long)c.num_hidden_layers, (long long)c.hidden_size, (long long)c.num_attention_heads,
              heads.c_str(), (long long)c.intermediate_size, (long long)c.vocab_size);
  std::printf("parameters       %lld (%s)\n", (long long)n.total, human_count(n.total).c_str());
  if (c.is_moe()) {
    std::printf("active per token %lld (%s), %lld of %lld experts\n", (long long)n.active,
                human_count(n.active).c_str(), (long long)c.num_experts_per_tok,
                (long long)c.num_local_experts);
  }
  std::printf("embedding tables %lld (%s)\n", (long long)n.embedding, human_count(n.embedding).c_str());
  // Attention's q.k and scores.v per token: 6 (training) or 2 (inference) x L x heads x (qk + v dims) x T,
  // which is 12LHT / 4LHT when q, k and v share head_dim (H = heads x head_dim).
  const bool mla = c.kv_lora_rank > 0;
  std::printf("FLOPs per token  at seq-len %lld: training %s (%s), inference %s (%s); N = %s\n", (long long)seq,
              human_count(forma::training_flops_per_token(c, seq)).c_str(),
              mla ? "6N + 6L·heads·(qk + v dims)·T" : "6N + 12LHT",
              human_count(forma::inference_flops_per_token(c, seq)).c_str(),
              mla ? "2N + 2L·heads·(qk + v dims)·T" : "2N + 4LHT", human_count(n.matmul_active).c_str());
  forma::TrainingMemory fp32 = forma::training_memory(c, false), bf16 = forma::training_memory(c, true);
  std::printf("train fp32 AdamW %s (weights %s + grads %s + moments %s), activations not included\n",
              human_bytes(fp32.total()).c_str(), human_bytes(fp32.weights).c_str(),
              human_bytes(fp32.gradients).c_str(), human_bytes(fp32.adam_moments).c_str());
  std::printf("train bf16 AdamW %s (weights %s + grads %s + moments %s + fp32 master %s)\n",
              human_bytes(bf16.total()).c_str(), human_bytes(bf16.weights).c_str(),
              human_bytes(bf16.gradients).c_str(), human_bytes(bf16.adam_moments).c_str(),
              human_bytes(bf16.master_weights).c_str());
  for (int bytes : {4, 2}) {
    std::printf("inference %s    %s (weights %s + KV cache %s for batch %lld x %lld)\n",
                bytes == 4 ? "fp32" : "bf16", human_bytes(forma::inference_memory(c, a.batch, seq, bytes)).c_str(),
                human_bytes(static_cast<double>(n.total) * bytes).c_str(),
                human_bytes(forma::kv_cache_bytes(c, a.batch, seq, bytes)).c_str(), (long long)a.batch,
                (long long)seq);
  }
  if (a.lora_r > 0) print_lora_plan(a, c, n.total);
}

forma::cli::CommandRegistration reg(30, [](CLI::App& app) {
  auto* model = app.add_subcommand("model", "inspect model configurations");
  model->require_subcommand(1);
  auto args = std::make_shared<InfoArgs>();
  auto* info = model->add_subcommand("info", "parameters, FLOPs per token and memory of a model");
  info->add_option("model", args->model, "preset name (configs/models), config.json or model folder")
      ->required();
  info->add_option("--seq-len", args->seq_len, "sequence length for FLOPs and KV cache (default: "
                   "max_position_embeddings, at most 2048)");
  info->add_option("--batch", args->batch, "batch size for the KV cache")->capture_default_str();
  info->add_option("--lora-r", args->lora_r, "also plan LoRA of this rank: adapted layers, trainable parameters, "
                   "AdamW memory");
  info->add_option("--lora-targets", args->lora_targets, "with --lora-r: target modules, comma-separated "
                   "(q_proj,v_proj) or all-linear")->capture_default_str();
  info->callback([args] { run_info(*args); });
});

}  // namespace forma::cli::model_command
