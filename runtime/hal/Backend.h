// The one interface a device implements: a method per command (IREE's HAL
// command buffer is the model). The CPU backend runs each command as it
// comes; the CUDA backend records it for replay.
#ifndef GAI_RUNTIME_HAL_BACKEND_H
#define GAI_RUNTIME_HAL_BACKEND_H

#include "core/Commands.h"

namespace gai {

class Backend {
public:
  virtual ~Backend() = default;
  virtual Status record(const cmd::Gemm &c) = 0;
  virtual Status record(const cmd::Attention &c) = 0;
  virtual Status record(const cmd::Launch &c) = 0;
  virtual Status record(const cmd::Embedding &c) = 0;
  virtual Status record(const cmd::CacheWrite &c) = 0;
  virtual Status record(const cmd::Take &c) = 0;
  virtual Status record(const cmd::Transpose &c) = 0;
  virtual Status record(const cmd::Slice &c) = 0;
  virtual Status record(const cmd::TopK &c) = 0;
  virtual Status record(const cmd::CrossEntropy &c) = 0;
  virtual Status record(const cmd::CrossEntropyGrad &c) = 0;
  virtual Status record(const cmd::Place &c) = 0;
  virtual Status record(const cmd::OneHot &c) = 0;
  virtual Status record(const cmd::Reduce &c) = 0;
  virtual Status record(const cmd::Copy &c) = 0;
  virtual Status record(const cmd::Fill &c) = 0;
  virtual Status record(const cmd::AllReduce &c) = 0;
  virtual Status record(const cmd::AllGather &c) = 0;
  virtual Status record(const cmd::ReduceScatter &c) = 0;
  virtual Status record(const cmd::AllSlice &c) = 0;
  virtual Status record(const cmd::AttentionGrad &c) = 0;
  virtual Status record(const cmd::EmbeddingGrad &c) = 0;

  /// The index of the step being recorded, in the artifact's numbering.
  int64_t step() const { return step_; }

  /// Records step `index`, naming it and the command in an error.
  Status recordStep(size_t index, const Command &command) {
    step_ = static_cast<int64_t>(index);
    Status s = std::visit([this](const auto &c) { return record(c); }, command);
    if (!s)
      return Status::error("step " + std::to_string(index) + " (" + commandName(command) +
                           "): " + s.message());
    return s;
  }

protected:
  /// For steps a backend records together: which one errors name.
  void setStep(size_t index) { step_ = static_cast<int64_t>(index); }

private:
  int64_t step_ = 0;
};

} // namespace gai

#endif // GAI_RUNTIME_HAL_BACKEND_H
