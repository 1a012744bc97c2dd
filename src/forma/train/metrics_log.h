// OUTPUT_DIR/metrics.jsonl (one JSON object per logged step; evaluation lines carry val_loss) and
// OUTPUT_DIR/loss.svg. On resume, records after the resumed step (written by the interrupted run
// after its last checkpoint) are dropped, so the file reads as one uninterrupted run.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>

#include "forma/train/loss_svg.h"

namespace forma::train {

struct TrainRecord {
  int64_t step = 0;
  double loss = 0, lr = 0, grad_norm = 0;
  int64_t tokens = 0;  // tokens seen so far
  double tokens_per_sec = 0, mfu = 0;
};

class MetricsLog {
 public:
  // keep_through_step < 0: start a new file; otherwise keep the records with step <= it.
  MetricsLog(std::string output_dir, int64_t keep_through_step);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  void log_train(const TrainRecord& record);
  void log_eval(int64_t step, double val_loss);
  void write_svg() const;  // OUTPUT_DIR/loss.svg, atomically

 private:
  void append(const std::string& line);
  std::string dir_;
  std::FILE* file_ = nullptr;
  Series train_, valid_;
};

}  // namespace forma::train
