// Progress of a long operation. On a terminal: a bar redrawn in place (at most 10 times a second)
// with rate and ETA. Otherwise (CI, logs): one plain log line every `log_every_seconds`.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace forma {

class Progress {
 public:
  // total <= 0 means unknown: no bar or ETA, only the count and rate.
  Progress(std::string label, int64_t total, std::string unit = "it", double log_every_seconds = 10.0);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void advance(int64_t n = 1, const std::string& extra = "") { update(done_ + n, extra); }
  void update(int64_t done, const std::string& extra = "");
  void finish(const std::string& extra = "");
  int64_t done() const { return done_; }

 private:
  std::string render(const std::string& extra) const;
  std::string label_, unit_;
  int64_t total_, done_ = 0;
  double log_every_;
  bool tty_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

// "1h02m", "3m05s", "12s".
std::string format_duration(double seconds);

}  // namespace forma
