// `forma bench generate --model M [--batch-sizes 1,4,16] [--pp 512] [--tg 128] [--reps 3] [--json]`:
// inference speed as llama-bench measures it, through the batched engine of --prompts-file
// (infer/batch_generate.h), for each batch size B:
//   ppN  prompt processing: one prefill of B prompts of N random tokens; B * N / seconds
//   tgN  text generation: B one-token prompts, then N greedy decode steps; B * N / seconds
// mean ± sample standard deviation over --reps timed runs, after one short untimed warm-up run.
// Next to tokens/s: the bytes of weights one token costs (a step reads every weight once for its
// B tokens; a prefill for its B * N), and for tg the fraction of the machine's read bandwidth the
// weight reads reach, the bandwidth measured in the same run (infer/memory_bandwidth.h, kernels/bandwidth.h).
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>

#include "forma/cli/command.h"
#include "forma/cli/model_inputs.h"
#include "forma/core/error.h"
#include "forma/core/log.h"
#include "forma/infer/batch_generate.h"
#include "forma/infer/memory_bandwidth.h"
#include "forma/kernels/bandwidth.h"
#include "forma/model/hf_io.h"

// A named namespace (not an anonymous one): unity builds compile the commands in one unit.
namespace forma::cli::bench_generate_command {

namespace fs = std::filesystem;

struct BenchGenerateArgs {
  std::string model;
  std::string batch_sizes = "1,4,16";
  int64_t pp = 512;
  int64_t tg = 128;
  int reps = 3;
  uint64_t seed = 0;
  std::string dtype = "fp32";
  std::string device = "auto";
  int threads = 0;
  int64_t bandwidth_mib = 256;
  bool json = false;
};

struct Measurement {
  int64_t batch = 0;
  std::string test;  // "pp512", "tg128"
  std::vector<double> tokens_per_second;
  double weight_bytes_per_token = 0;  // weights read per step / tokens per step

  // Bytes of weights read per second at the mean speed.
  double weight_bytes_per_second() const { return mean() * weight_bytes_per_token; }

  double mean() const {
    double sum = 0;
    for (double v : tokens_per_second) sum += v;
    return sum / static_cast<double>(tokens_per_second.size());
  }
  // Sample standard deviation (n - 1); 0 for a single run.
  double sd() const {
    const size_t n = tokens_per_second.size();
    if (n < 2) return 0.0;
    double squares = 0;
    for (double v : tokens_per_second) squares += (v - mean()) * (v - mean());
    return std::sqrt(squares / static_cast<double>(n - 1));
  }
};

// A model folder with weights loads them; a preset name, a config.json or a folder without
// weights gives a model of that shape with random weights (speed does not depend on the values).
CausalLM load_bench_model(const std::string& model, const std::string& dtype_flag, const torch::Device& device,
                          std::string* description) {
  const ModelConfig config = load_model_config(model);
  const torch::ScalarType dtype = parse_compute_dtype(dtype_flag, config, "--dtype");
  const bool has_weights = fs::is_directory(model) && (fs::exists(fs::path(model) / "model.safetensors") ||
                                                       fs::exists(fs::path(model) / "model.safetensors.index.json"));
  if (has_weights) {
    *description = model;
    return load_pretrained(model, LoadOptions{dtype, device});
  }
  CausalLM out(config, dtype);
  out->init_weights(0);
  out->to(device);
  *description = model + " (random weights)";
  return out;
}

// `rows` greedy requests of `prompt_length` random ids generating `new_tokens` each, no EOS.
std::vector<infer::BatchRequest> random_requests(int64_t rows, int64_t prompt_length, int64_t new_tokens,
                                                 int64_t vocab_size, std::mt19937_64& rng) {
  std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(vocab_size - 1));
  std::vector<infer::BatchRequest> requests(rows);
  for (auto& request : requests) {
    for (int64_t t = 0; t < prompt_length; ++t) request.prompt_ids.push_back(token(rng));
    request.config.max_new_tokens = new_tokens;
    request.config.sampling.temperature = 0.0;
  }
  return requests;
}

// Tokens per second of one run: the prefill (pp) or the decode steps (tg).
double run_once(CausalLM& model, int64_t batch, int64_t pp, int64_t tg, std::mt19937_64& rng) {
  infer::BatchTimings timings;
  const int64_t vocab = model->config().vocab_size;
  if (pp > 0) {
    infer::generate_batch(model, random_requests(batch, pp, 1, vocab, rng), nullptr, &timings);
    return static_cast<double>(batch * pp) / timings.prefill_seconds;
  }
  // The first token comes from the prefill of the one-token prompt; then tg one-token forwards.
  infer::generate_batch(model, random_requests(batch, 1, tg + 1, vocab, rng), nullptr, &timings);
  check(timings.decode_forwards == tg, "bench: expected {} decode steps, ran {}", tg, timings.decode_forwards);
  return static_cast<double>(batch * tg) / timings.decode_seconds;
}

void run_bench_generate(const BenchGenerateArgs& args) {
  apply_threads(args.threads);
  check(args.pp >= 1 && args.tg >= 1 && args.reps >= 1, "--pp, --tg and --reps must be >= 1");
  std::vector<int64_t> batch_sizes;
  for (int32_t b : parse_token_ids(args.batch_sizes, "--batch-sizes")) {
    check(b >= 1, "--batch-sizes: batch sizes must be >= 1, got {}", b);
    batch_sizes.push_back(b);
  }
  std::string description;
  CausalLM model = load_bench_model(args.model, args.dtype, device_from_flag(args.device), &description);
  const int64_t context = model->config().max_position_embeddings;
  check(context <= 0 || args.pp < context, "--pp {} must be below the model's context {}", args.pp, context);
  check(context <= 0 || args.tg + 2 <= context, "--tg {} must be below the model's context {} minus 1", args.tg,
        context);
  int64_t parameters = 0;
  for (const auto& p : model->parameters()) parameters += p.numel();

  // Read bandwidth with the threads that run the model, measured before the tests (and so under the
  // same load of the machine, give or take).
  const double bandwidth =
      kernels::measure_read_bandwidth(static_cast<size_t>(args.bandwidth_mib) << 20, 5).best_gb_per_s * 1e9;
  log::info("bench generate: read bandwidth {:.1f} GB/s ({} MiB buffer, {} threads)", bandwidth / 1e9,
            args.bandwidth_mib, torch::get_num_threads());

  std::mt19937_64 rng(args.seed);
  std::vector<Measurement> measurements;
  for (int64_t batch : batch_sizes) {
    // Warm-up (allocator, thread pool, caches): a short prefill and a few decode steps.
    run_once(model, batch, std::min<int64_t>(args.pp, 16), 0, rng);
    run_once(model, batch, 0, std::min<int64_t>(args.tg, 4), rng);
    for (bool prompt_test : {true, false}) {
      Measurement m{batch, fmt::format("{}{}", prompt_test ? "pp" : "tg", prompt_test ? args.pp : args.tg), {}};
      // A prefill is one step over batch * pp tokens; a decode step one over batch tokens.
      const int64_t step_tokens = prompt_test ? batch * args.pp : batch;
      m.weight_bytes_per_token = static_cast<double>(infer::weight_bytes_per_step(model, step_tokens)) /
                                 static_cast<double>(step_tokens);
      for (int rep = 0; rep < args.reps; ++rep) {
        m.tokens_per_second.push_back(run_once(model, batch, prompt_test ? args.pp : 0, args.tg, rng));
        log::info("bench generate: batch {} {} run {}/{}: {:.1f} tokens/s", batch, m.test, rep + 1, args.reps,
                  m.tokens_per_second.back());
      }
      measurements.push_back(m);
    }
  }

  if (args.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& m : measurements) {
      out.push_back({{"model", description},    {"parameters", parameters},   {"threads", torch::get_num_threads()},
                     {"dtype", compute_dtype_name(model->dtype())}, {"device", model->parameters().front().device().str()},
                     {"batch", m.batch},        {"test", m.test},             {"tokens_per_sec_mean", m.mean()},
                     {"tokens_per_sec_sd", m.sd()}, {"samples", m.tokens_per_second},
                     {"weight_bytes_per_token", m.weight_bytes_per_token},
                     {"weight_gbytes_per_sec", m.weight_bytes_per_second() / 1e9},
                     {"memory_bandwidth_gbytes_per_sec", bandwidth / 1e9},
                     {"bandwidth_fraction", m.weight_bytes_per_second() / bandwidth},
                     {"omp_wait_policy", std::getenv("OMP_WAIT_POLICY") ? std::getenv("OMP_WAIT_POLICY") : ""}});
    }
    std::printf("%s\n", out.dump(2).c_str());
    return;
  }
  const char* wait_policy = std::getenv("OMP_WAIT_POLICY");
  std::printf("model %s: %.2fM parameters, %s on %s, %d threads, %d runs each\n", description.c_str(),
              static_cast<double>(parameters) / 1e6, compute_dtype_name(model->dtype()),
              model->parameters().front().device().str().c_str(), torch::get_num_threads(), args.reps);
  std::printf("read bandwidth %.1f GB/s (%lld MiB, same threads), OpenMP wait policy %s\n\n", bandwidth / 1e9,
              static_cast<long long>(args.bandwidth_mib), wait_policy ? wait_policy : "default");
  fmt::print("| batch | test   |              t/s | weights/token | weight GB/s | of bandwidth |\n"
             "|------:|:-------|-----------------:|--------------:|------------:|-------------:|\n");
  for (const auto& m : measurements) {
    fmt::print("| {:>5} | {:<6} | {:>16} | {:>10.1f} MB | {:>11.1f} | {:>11.0f}% |\n", m.batch, m.test,
               fmt::format("{:.1f} ± {:.1f}", m.mean(), m.sd()), m.weight_bytes_per_token / 1e6,
               m.weight_bytes_per_second() / 1e9, 100.0 * m.weight_bytes_per_second() / bandwidth);
  }
  std::fflush(stdout);
}

CommandRegistration reg(81, [](CLI::App& app) {
  auto args = std::make_shared<BenchGenerateArgs>();
  auto* bench = subcommand_group(app, "bench", "benchmarks");
  auto* cmd = bench->add_subcommand("generate", "inference speed: prompt processing and generation tokens/s");
  cmd->add_option("--model", args->model,
                  "model folder, or a preset (configs/models) / config.json for random weights")
      ->required();
  cmd->add_option("--batch-sizes", args->batch_sizes, "comma-separated batch sizes (default 1,4,16)");
  cmd->add_option("--pp", args->pp, "prompt tokens per row of the prompt-processing test (default 512)");
  cmd->add_option("--tg", args->tg, "generated tokens per row of the generation test (default 128)");
  cmd->add_option("--reps", args->reps, "timed runs per test (default 3)");
  cmd->add_option("--seed", args->seed, "seed of the random prompt ids (default 0)");
  cmd->add_option("--bandwidth-mib", args->bandwidth_mib,
                  "buffer of the read-bandwidth measurement in MiB, several times the last-level cache (default 256)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  add_dtype_option(cmd, &args->dtype);
  add_device_option(cmd, &args->device);
  add_threads_option(cmd, &args->threads);
  cmd->add_flag("--json", args->json, "print a JSON array instead of the table");
  cmd->callback([args] { run_bench_generate(*args); });
});

}  // namespace forma::cli::bench_generate_command
