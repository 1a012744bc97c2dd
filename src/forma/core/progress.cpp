#include "forma/core/progress.h"

#include <unistd.h>

#include <cstdio>

#include "forma/core/log.h"

namespace forma {

std::string format_duration(double seconds) {
  if (seconds < 0 || seconds != seconds) return "?";
  auto s = static_cast<int64_t>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
  if (s >= 60) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

Progress::Progress(std::string label, int64_t total, std::string unit, double log_every_seconds)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), log_every_(log_every_seconds),
      tty_(isatty(STDERR_FILENO) == 1), start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

Progress::~Progress() {
  if (!finished_ && tty_ && done_ > 0) std::fputc('\n', stderr);
}

std::string Progress::render(const std::string& extra) const {
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0;
  std::string out = label_;
  if (total_ > 0) {
    double frac = std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_));
    if (tty_) {
      const int width = 24;
      int filled = static_cast<int>(frac * width);
      out += " [" + std::string(filled, '#') + std::string(width - filled, '.') + "]";
    }
    double eta = rate > 0 ? static_cast<double>(total_ - done_) / rate : -1;
    out += fmt::format(" {}/{} {} ({:.0f}%) {:.1f} {}/s elapsed {} ETA {}", done_, total_, unit_,
                       100 * frac, rate, unit_, format_duration(elapsed), format_duration(eta));
  } else {
    out += fmt::format(" {} {} {:.1f} {}/s elapsed {}", done_, unit_, rate, unit_, format_duration(elapsed));
  }
  if (!extra.empty()) out += " " + extra;
  return out;
}

void Progress::update(int64_t done, const std::string& extra) {
  done_ = done;
  auto now = std::chrono::steady_clock::now();
  double since = std::chrono::duration<double>(now - last_draw_).count();
  if (tty_) {
    if (since < 0.1 && done_ < total_) return;
    std::fprintf(stderr, "\r\033[K%s", render(extra).c_str());
    std::fflush(stderr);
  } else {
    if (since < log_every_) return;
    log::info("{}", render(extra));
  }
  last_draw_ = now;
}

void Progress::finish(const std::string& extra) {
  if (finished_) return;
  finished_ = true;
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s\n", render(extra).c_str());
  } else {
    log::info("{}", render(extra));
  }
}

}  // namespace forma
