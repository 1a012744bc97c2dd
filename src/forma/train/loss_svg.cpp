#include "forma/train/loss_svg.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace forma::train {
namespace {

constexpr double kWidth = 720, kHeight = 420;
constexpr double kLeft = 64, kRight = 20, kTop = 36, kBottom = 48;

struct Box {
  double x0, x1, y0, y1;
  double px(double x) const { return kLeft + (x - x0) / (x1 - x0) * (kWidth - kLeft - kRight); }
  double py(double y) const { return kHeight - kBottom - (y - y0) / (y1 - y0) * (kHeight - kTop - kBottom); }
};

std::string escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else out += c;
  }
  return out;
}

Box bounds(const Series& a, const Series& b) {
  Box box{1e300, -1e300, 1e300, -1e300};
  for (const Series* s : {&a, &b}) {
    for (auto& [x, y] : *s) {
      if (!std::isfinite(y)) continue;
      box.x0 = std::min(box.x0, x), box.x1 = std::max(box.x1, x);
      box.y0 = std::min(box.y0, y), box.y1 = std::max(box.y1, y);
    }
  }
  if (box.x0 > box.x1) box = {0, 1, 0, 1};
  if (box.x1 - box.x0 < 1e-12) box.x1 = box.x0 + 1;
  if (box.y1 - box.y0 < 1e-12) box.y0 -= 0.5, box.y1 += 0.5;
  double pad = 0.05 * (box.y1 - box.y0);
  box.y0 -= pad, box.y1 += pad;
  return box;
}

std::string polyline(const Series& s, const Box& box, const char* color, double width) {
  std::string points;
  for (auto& [x, y] : s) {
    if (std::isfinite(y)) points += fmt::format("{:.1f},{:.1f} ", box.px(x), box.py(y));
  }
  if (points.empty()) return "";
  return fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"{}\" points=\"{}\"/>\n", color, width,
                     points);
}

std::string axes(const Box& box) {
  std::string out = fmt::format(
      "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#888\"/>\n", kLeft, kTop,
      kWidth - kLeft - kRight, kHeight - kTop - kBottom);
  for (int i = 0; i <= 5; ++i) {
    double y = box.y0 + (box.y1 - box.y0) * i / 5, x = box.x0 + (box.x1 - box.x0) * i / 5;
    out += fmt::format("<line x1=\"{0}\" x2=\"{1}\" y1=\"{2:.1f}\" y2=\"{2:.1f}\" stroke=\"#eee\"/>\n", kLeft,
                       kWidth - kRight, box.py(y));
    out += fmt::format("<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{:.3g}</text>\n", kLeft - 6,
                       box.py(y) + 4, y);
    out += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{:.0f}</text>\n", box.px(x),
                       kHeight - kBottom + 16, x);
  }
  out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">step</text>\n", (kWidth + kLeft) / 2,
                     kHeight - 10);
  return out;
}

}  // namespace

std::string render_loss_svg(const Series& train, const Series& valid, const std::string& title) {
  Box box = bounds(train, valid);
  std::string out = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
      kWidth, kHeight);
  out += fmt::format("<text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">{}</text>\n",
                     (kWidth + kLeft) / 2, escape(title));
  out += axes(box);
  out += polyline(train, box, "#1f77b4", 1.5);
  out += polyline(valid, box, "#d62728", 2.5);
  for (auto& [x, y] : valid) {
    if (std::isfinite(y)) {
      out += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"#d62728\"/>\n", box.px(x), box.py(y));
    }
  }
  double lx = kWidth - kRight - 150;
  out += fmt::format("<line x1=\"{0}\" x2=\"{1}\" y1=\"{2}\" y2=\"{2}\" stroke=\"#1f77b4\" stroke-width=\"2\"/>"
                     "<text x=\"{3}\" y=\"{4}\">train loss</text>\n",
                     lx, lx + 24, kTop + 16, lx + 30, kTop + 20);
  out += fmt::format("<line x1=\"{0}\" x2=\"{1}\" y1=\"{2}\" y2=\"{2}\" stroke=\"#d62728\" stroke-width=\"2\"/>"
                     "<text x=\"{3}\" y=\"{4}\">validation loss</text>\n",
                     lx, lx + 24, kTop + 34, lx + 30, kTop + 38);
  out += "</svg>\n";
  return out;
}

}  // namespace forma::train
