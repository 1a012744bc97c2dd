// `forma bench gemv [--m 1,4,16] [--dtypes fp32,bf16] [--path auto] [--threads N] [--json]`: the decode
// products y[m, n] = x[m, k] · W[n, k]^T of the 125M Llama of issue 14 (k 768 → n 768, 256, 2048,
// 32000; k 2048 → n 768), through forma's kernels (kernels/gemv.h) and through at::linear, as GB/s of
// weight bytes read and as the fraction of the streaming-read bandwidth measured in the same process
// with the same threads (kernels/bandwidth.h). Each product cycles through enough copies of W that
// they do not fit the caches (--working-set-mb), as decode sees its weights: every layer's read from
// memory once per token.
#include <ATen/Parallel.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "forma/cli/command.h"
#include "forma/cli/model_inputs.h"
#include "forma/core/error.h"
#include "forma/kernels/bandwidth.h"
#include "forma/kernels/gemv.h"

// A named namespace (not an anonymous one): unity builds compile the commands in one unit.
namespace forma::cli::bench_gemv_command {

struct BenchGemvArgs {
  std::string rows = "1,4,16";
  std::string dtypes = "fp32,bf16";
  std::string path = "auto";
  int reps = 5;
  double min_time = 0.1;
  int64_t working_set_mb = 256;
  int64_t bandwidth_mb = 512;
  int threads = 0;
  bool json = false;
};

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> items;
  std::stringstream stream(text);
  for (std::string item; std::getline(stream, item, ',');) items.push_back(item);
  return items;
}

std::vector<int64_t> parse_rows(const std::string& text) {
  std::vector<int64_t> rows;
  for (const std::string& item : split(text)) {
    size_t used = 0;
    int64_t value = 0;
    try {
      value = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    check(used == item.size() && !item.empty() && value >= 1 && value <= kernels::kGemvMaxRows,
          "--m: '{}' is not a row count in 1..{}", item, kernels::kGemvMaxRows);
    rows.push_back(value);
  }
  check(!rows.empty(), "--m: no row counts");
  return rows;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown CPU";
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

struct Row {
  std::string dtype;
  int64_t k, n, m;
  double forma_gbps, torch_gbps;
};

// GB/s of weight bytes of `product` over one rep: calls cycle through the copies of W, at least
// `calls` of them.
template <typename F>
double rate(F&& product, int64_t copies, int64_t calls, double weight_bytes) {
  const auto start = std::chrono::steady_clock::now();
  for (int64_t c = 0; c < calls; ++c) product(c % copies);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return static_cast<double>(calls) * weight_bytes / seconds / 1e9;
}

Row measure(const BenchGemvArgs& args, torch::ScalarType dtype, int64_t k, int64_t n, int64_t m) {
  const int64_t element = dtype == torch::kFloat ? 4 : 2;
  const double weight_bytes = static_cast<double>(n * k * element);
  const int64_t copies =
      std::max<int64_t>(2, static_cast<int64_t>((static_cast<double>(args.working_set_mb) * (1 << 20)) / weight_bytes) + 1);
  torch::Tensor weights = torch::empty({copies, n, k}, torch::TensorOptions().dtype(dtype)).uniform_(-0.05, 0.05);
  std::vector<torch::Tensor> w;
  for (int64_t c = 0; c < copies; ++c) w.push_back(weights[c]);
  torch::Tensor x = torch::randn({m, k}).to(dtype);
  auto ours = [&](int64_t c) { return kernels::linear_small_batch(x, w[c]); };
  auto theirs = [&](int64_t c) { return at::linear(x, w[c]); };
  check(kernels::gemv_supported(x, w[0]), "bench gemv: the kernels refuse m {} k {} n {}", m, k, n);

  // Warm-up (one pass over the copies each), then as many calls as fill --min-time.
  auto start = std::chrono::steady_clock::now();
  for (int64_t c = 0; c < copies; ++c) ours(c);
  const double pass = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (int64_t c = 0; c < copies; ++c) theirs(c);
  const int64_t calls = std::max<int64_t>(copies, static_cast<int64_t>(args.min_time / (pass / copies)));
  std::vector<double> forma_rates, torch_rates;
  for (int rep = 0; rep < args.reps; ++rep) {  // alternating, so that both see the same noise
    forma_rates.push_back(rate(ours, copies, calls, weight_bytes));
    torch_rates.push_back(rate(theirs, copies, calls, weight_bytes));
  }
  return Row{dtype == torch::kFloat ? "fp32" : "bf16", k, n, m, median(forma_rates), median(torch_rates)};
}

void run_bench_gemv(const BenchGemvArgs& args) {
  const std::vector<int64_t> rows = parse_rows(args.rows);
  std::vector<torch::ScalarType> dtypes;
  for (const std::string& d : split(args.dtypes)) {
    check(d == "fp32" || d == "bf16", "--dtypes: '{}' is not fp32 or bf16", d);
    dtypes.push_back(d == "fp32" ? torch::kFloat : torch::kBFloat16);
  }
  check(!dtypes.empty(), "--dtypes: none given");
  check(args.reps >= 1 && args.min_time > 0 && args.working_set_mb >= 1 && args.bandwidth_mb >= 64,
        "--reps >= 1, --min-time > 0, --working-set-mb >= 1, --bandwidth-mb >= 64");
  apply_threads(args.threads);
  kernels::set_gemv_path(kernels::parse_gemv_path(args.path, "--path"));
  torch::InferenceMode inference;

  const size_t bandwidth_bytes = static_cast<size_t>(args.bandwidth_mb) << 20;
  const kernels::ReadBandwidth before = kernels::measure_read_bandwidth(bandwidth_bytes);
  std::vector<Row> results;
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{768, 768}, {768, 256}, {768, 2048}, {768, 32000}, {2048, 768}};
  for (torch::ScalarType dtype : dtypes) {
    for (const auto& [k, n] : shapes) {
      for (int64_t m : rows) results.push_back(measure(args, dtype, k, n, m));
    }
  }
  const kernels::ReadBandwidth after = kernels::measure_read_bandwidth(bandwidth_bytes);
  // The higher of the two medians: the fractions are then never flattered by a slow measurement.
  const double bandwidth = std::max(before.gb_per_s, after.gb_per_s);
  const char* path = kernels::gemv_path_name(kernels::active_gemv_path());
  const int threads = at::get_num_threads();

  if (args.json) {
    for (const Row& r : results) {
      nlohmann::json j = {{"bench", "gemv"},
                          {"dtype", r.dtype},
                          {"k", r.k},
                          {"n", r.n},
                          {"m", r.m},
                          {"threads", threads},
                          {"path", path},
                          {"forma_gb_per_s", r.forma_gbps},
                          {"linear_gb_per_s", r.torch_gbps},
                          {"read_bandwidth_gb_per_s", bandwidth},
                          {"forma_fraction", r.forma_gbps / bandwidth},
                          {"linear_fraction", r.torch_gbps / bandwidth},
                          {"ratio", r.forma_gbps / r.torch_gbps}};
      std::printf("%s\n", j.dump().c_str());
    }
    return;
  }
  std::printf("%s, %d threads, forma kernels: %s, working set %lld MiB per product, median of %d reps\n",
              cpu_model().c_str(), threads, path, static_cast<long long>(args.working_set_mb), args.reps);
  std::printf("streaming read of %lld MiB: %.1f GB/s before, %.1f GB/s after (fractions below are of %.1f GB/s)\n\n",
              static_cast<long long>(args.bandwidth_mb), before.gb_per_s, after.gb_per_s, bandwidth);
  std::printf("| dtype | k | n | m | forma GB/s | of bw | at::linear GB/s | of bw | forma / at::linear |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|\n");
  for (const Row& r : results) {
    std::printf("| %s | %lld | %lld | %lld | %.1f | %.0f%% | %.1f | %.0f%% | %.2f |\n", r.dtype.c_str(),
                static_cast<long long>(r.k), static_cast<long long>(r.n), static_cast<long long>(r.m), r.forma_gbps,
                100 * r.forma_gbps / bandwidth, r.torch_gbps, 100 * r.torch_gbps / bandwidth, r.forma_gbps / r.torch_gbps);
  }
}

forma::cli::CommandRegistration reg(83, [](CLI::App& app) {
  auto args = std::make_shared<BenchGemvArgs>();
  auto* cmd = subcommand_group(app, "bench", "benchmarks")
                  ->add_subcommand("gemv", "decode matrix-vector products: forma's kernels vs at::linear, in GB/s and "
                                           "as a fraction of the measured memory bandwidth");
  cmd->add_option("--m", args->rows, "rows of x (decode batch sizes), 1..16, comma-separated (default 1,4,16)");
  cmd->add_option("--dtypes", args->dtypes, "fp32, bf16 or both (default fp32,bf16)");
  cmd->add_option("--path", args->path, "forma's kernels: auto (default), avx512bf16, avx512, avx2 or scalar");
  cmd->add_option("--reps", args->reps, "timed repetitions per product, the median is reported (default 5)");
  cmd->add_option("--min-time", args->min_time, "seconds per repetition at least (default 0.1)");
  cmd->add_option("--working-set-mb", args->working_set_mb,
                  "MiB of weight copies each product cycles through, beyond the caches (default 256)");
  cmd->add_option("--bandwidth-mb", args->bandwidth_mb, "MiB of the streaming-read buffer (default 512)");
  add_threads_option(cmd, &args->threads);
  cmd->add_flag("--json", args->json, "one JSON line per product");
  cmd->callback([args] { run_bench_gemv(*args); });
});

}  // namespace forma::cli::bench_gemv_command
