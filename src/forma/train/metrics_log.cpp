#include "forma/train/metrics_log.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <sstream>

#include "forma/core/error.h"
#include "forma/core/files.h"
#include "forma/core/log.h"

namespace forma::train {
namespace fs = std::filesystem;

MetricsLog::MetricsLog(std::string output_dir, int64_t keep_through_step) : dir_(std::move(output_dir)) {
  fs::create_directories(dir_);
  auto path = (fs::path(dir_) / "metrics.jsonl").string();
  std::string kept;
  if (keep_through_step >= 0 && fs::exists(path)) {
    std::istringstream lines(read_file(path));
    int line_no = 0;
    for (std::string line; std::getline(lines, line);) {
      ++line_no;
      if (line.empty()) continue;
      auto record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (!record.is_object() || !record.contains("step") || !record["step"].is_number_integer()) {
        log::warn("{}:{}: not a metrics record; dropped", path, line_no);
        continue;
      }
      int64_t step = record["step"].get<int64_t>();
      if (step > keep_through_step) continue;
      if (record.contains("loss") && record["loss"].is_number()) train_.emplace_back(step, record["loss"].get<double>());
      if (record.contains("val_loss") && record["val_loss"].is_number()) {
        valid_.emplace_back(step, record["val_loss"].get<double>());
      }
      kept += line + "\n";
    }
  }
  write_file_atomic(path, kept);
  file_ = std::fopen(path.c_str(), "a");
  check(file_ != nullptr, "cannot open {} for appending", path);
}

MetricsLog::~MetricsLog() {
  if (file_) std::fclose(file_);
}

void MetricsLog::append(const std::string& line) {
  std::fputs(line.c_str(), file_);
  std::fputc('\n', file_);
  std::fflush(file_);
}

void MetricsLog::log_train(const TrainRecord& r) {
  nlohmann::json j = {{"step", r.step},     {"loss", r.loss},     {"lr", r.lr},
                      {"grad_norm", r.grad_norm}, {"tokens", r.tokens}, {"tokens_per_sec", r.tokens_per_sec},
                      {"mfu", r.mfu}};
  append(j.dump());
  train_.emplace_back(r.step, r.loss);
}

void MetricsLog::log_eval(int64_t step, double val_loss) {
  append(nlohmann::json{{"step", step}, {"val_loss", val_loss}}.dump());
  valid_.emplace_back(step, val_loss);
}

void MetricsLog::write_svg() const {
  write_file_atomic((fs::path(dir_) / "loss.svg").string(), render_loss_svg(train_, valid_, "loss: " + dir_));
}

}  // namespace forma::train
