#include "core/StepProfile.h"

#include <algorithm>
#include <cstdio>
#include <vector>

namespace gai {

void StepProfile::addStep(const std::string &entry, const std::string &step, double ms) {
  Timing &t = steps_[entry][step];
  t.ms += ms;
  ++t.calls;
}

void StepProfile::addRun(const std::string &entry) { ++runs_[entry]; }

namespace {

std::string line(const char *format, double a, double b, const std::string &text) {
  char buffer[96];
  std::snprintf(buffer, sizeof buffer, format, a, b);
  return buffer + text + "\n";
}

} // namespace

std::string StepProfile::report(const std::string &device, size_t costliest) const {
  // Each entry's steps per run of it; an entry whose runs were not counted
  // counts as run once.
  struct Row {
    double ms;
    double calls;
    std::string name;
  };
  std::vector<Row> rows;
  std::map<std::string, double> byKind, byEntry;
  double total = 0;
  for (const auto &[entry, steps] : steps_) {
    auto found = runs_.find(entry);
    const double runs =
        found == runs_.end() || found->second < 1 ? 1.0 : static_cast<double>(found->second);
    for (const auto &[step, t] : steps) {
      const double ms = t.ms / runs;
      rows.push_back({ms, static_cast<double>(t.calls) / runs, entry + ": " + step});
      byKind[entry + " " + step.substr(0, step.find(' '))] += ms;
      byEntry[entry] += ms;
      total += ms;
    }
  }
  auto descending = [](const auto &x, const auto &y) { return x.first > y.first; };
  char head[64];
  std::snprintf(head, sizeof head, "%.3f ms in steps, a run of each entry\n", total);
  std::string out = "gai profile (" + device + "): " + head + "  by entry:\n";
  std::vector<std::pair<double, std::string>> entries;
  for (const auto &[entry, ms] : byEntry)
    entries.emplace_back(ms, entry);
  std::sort(entries.begin(), entries.end(), descending);
  for (const auto &[ms, entry] : entries) {
    auto found = runs_.find(entry);
    out += line("  %10.3f ms a run, %.0f runs  ", ms,
                found == runs_.end() ? 0.0 : static_cast<double>(found->second), entry);
  }
  out += "  by kind (ms a run of its entry):\n";
  std::vector<std::pair<double, std::string>> kinds;
  for (const auto &[kind, ms] : byKind)
    kinds.emplace_back(ms, kind);
  std::sort(kinds.begin(), kinds.end(), descending);
  for (const auto &[ms, kind] : kinds)
    out += line("  %10.3f ms %5.1f%%  ", ms, total > 0 ? 100.0 * ms / total : 0.0, kind);
  out += "  costliest steps (ms and calls a run of their entry):\n";
  std::sort(rows.begin(), rows.end(), [](const Row &a, const Row &b) { return a.ms > b.ms; });
  for (size_t i = 0; i < rows.size() && (costliest == 0 || i < costliest); ++i)
    out += line("  %10.3f ms %8.1f  ", rows[i].ms, rows[i].calls, rows[i].name);
  return out;
}

} // namespace gai
