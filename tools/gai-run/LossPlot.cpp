// Hand-written SVG: a plot needs no library, and the file opens anywhere.
#include "LossPlot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace gai {
namespace {

std::string number(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.4g", v);
  return buffer;
}

} // namespace

std::optional<std::string> lossPlotSvg(const std::vector<LossPoint> &train,
                                       const std::vector<LossPoint> &eval,
                                       const std::string &title) {
  constexpr double kWidth = 800, kHeight = 480, kLeft = 70, kRight = 20, kTop = 40,
                   kBottom = 50;
  std::vector<LossPoint> all = train;
  all.insert(all.end(), eval.begin(), eval.end());
  all.erase(std::remove_if(all.begin(), all.end(),
                           [](const LossPoint &p) { return !std::isfinite(p.loss); }),
            all.end());
  if (all.empty())
    return std::nullopt;
  int64_t firstStep = all[0].step, lastStep = all[0].step;
  double low = all[0].loss, high = all[0].loss;
  for (const LossPoint &p : all) {
    firstStep = std::min(firstStep, p.step);
    lastStep = std::max(lastStep, p.step);
    low = std::min(low, p.loss);
    high = std::max(high, p.loss);
  }
  if (high - low < 1e-9)
    high = low + 1;
  if (lastStep == firstStep)
    ++lastStep;
  auto x = [&](int64_t step) {
    return kLeft + (kWidth - kLeft - kRight) * static_cast<double>(step - firstStep) /
                       static_cast<double>(lastStep - firstStep);
  };
  auto y = [&](double loss) {
    return kTop + (kHeight - kTop - kBottom) * (high - loss) / (high - low);
  };
  auto polyline = [&](const std::vector<LossPoint> &points, const char *colour) {
    std::ostringstream os;
    os << "<polyline fill=\"none\" stroke=\"" << colour << "\" stroke-width=\"1.5\" points=\"";
    for (const LossPoint &p : points)
      if (std::isfinite(p.loss))
        os << number(x(p.step)) << "," << number(y(p.loss)) << " ";
    os << "\"/>\n";
    return os.str();
  };
  std::ostringstream out;
  out << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kWidth << "\" height=\""
      << kHeight << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << kLeft << "\" y=\"24\" font-size=\"15\">" << title << "</text>\n";
  for (int i = 0; i <= 4; ++i) { // grid and axis labels
    double loss = low + (high - low) * i / 4;
    int64_t step = firstStep + (lastStep - firstStep) * i / 4;
    out << "<line x1=\"" << kLeft << "\" x2=\"" << kWidth - kRight << "\" y1=\""
        << number(y(loss)) << "\" y2=\"" << number(y(loss)) << "\" stroke=\"#ddd\"/>\n"
        << "<text x=\"" << kLeft - 8 << "\" y=\"" << number(y(loss) + 4)
        << "\" text-anchor=\"end\">" << number(loss) << "</text>\n"
        << "<text x=\"" << number(x(step)) << "\" y=\"" << kHeight - kBottom + 18
        << "\" text-anchor=\"middle\">" << step << "</text>\n";
  }
  out << "<text x=\"" << (kWidth + kLeft) / 2 << "\" y=\"" << kHeight - 10
      << "\" text-anchor=\"middle\">step</text>\n"
      << polyline(train, "#1f77b4");
  if (!eval.empty())
    out << polyline(eval, "#d62728");
  out << "<text x=\"" << kWidth - kRight - 150 << "\" y=\"24\" fill=\"#1f77b4\">train loss</text>\n";
  if (!eval.empty())
    out << "<text x=\"" << kWidth - kRight - 60 << "\" y=\"24\" fill=\"#d62728\">eval loss</text>\n";
  out << "</svg>\n";
  return out.str();
}

} // namespace gai
