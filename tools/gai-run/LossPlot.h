// A loss curve as a self-contained SVG: training loss per step, and the
// evaluation loss where there is one.
#ifndef GAI_TOOLS_GAI_RUN_LOSSPLOT_H
#define GAI_TOOLS_GAI_RUN_LOSSPLOT_H

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace gai {

struct LossPoint {
  int64_t step;
  double loss;
};

/// The plot's SVG text; nothing when no loss is finite.
std::optional<std::string> lossPlotSvg(const std::vector<LossPoint> &train,
                                       const std::vector<LossPoint> &eval,
                                       const std::string &title);

} // namespace gai

#endif // GAI_TOOLS_GAI_RUN_LOSSPLOT_H
