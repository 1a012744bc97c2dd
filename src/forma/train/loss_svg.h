// A small self-contained SVG line chart of the training and validation loss (no dependencies):
// axes with tick labels, one polyline per series, a legend.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace forma::train {

using Series = std::vector<std::pair<double, double>>;  // (step, loss)

std::string render_loss_svg(const Series& train, const Series& valid, const std::string& title);

}  // namespace forma::train
