// `--profile`: the time each step of each entry took, summed over the runs,
// and the report printed at exit (per run of its entry, so that a training
// step's breakdown reads the same after 6 steps as after 600).
#ifndef GAI_RUNTIME_CORE_STEPPROFILE_H
#define GAI_RUNTIME_CORE_STEPPROFILE_H

#include <cstdint>
#include <map>
#include <string>

namespace gai {

class StepProfile {
public:
  /// One run of step `step` (its description: "gemm 8192x2048x5632",
  /// "kernel k12_exp_mul") of entry `entry` took `ms`.
  void addStep(const std::string &entry, const std::string &step, double ms);
  /// Entry `entry` ran once more.
  void addRun(const std::string &entry);
  bool empty() const { return steps_.empty(); }

  /// The report: the total, each entry's runs and time a run, the time by
  /// kind (the step description's first word) per run of its entry, and the
  /// `costliest` steps per run of their entry (0: every step), with their
  /// calls a run.
  std::string report(const std::string &device, size_t costliest = 30) const;

private:
  struct Timing {
    double ms = 0;
    int64_t calls = 0;
  };
  std::map<std::string, std::map<std::string, Timing>> steps_; // entry -> step
  std::map<std::string, int64_t> runs_;
};

} // namespace gai

#endif // GAI_RUNTIME_CORE_STEPPROFILE_H
