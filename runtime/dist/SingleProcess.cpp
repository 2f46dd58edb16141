// The communicator of a world of one: every collective is a copy.
#include "dist/CollectiveChecks.h"

#include <cstring>

namespace gai {
namespace {

class SingleProcessCommunicator final : public Communicator {
public:
  SingleProcessCommunicator() { mesh_.shape = {1}; }
  int64_t rank() const override { return 0; }
  int64_t size() const override { return 1; }
  std::string kind() const override { return "single"; }

  Status setMesh(const Mesh &mesh) override {
    auto kept = dist::normalizedMesh(mesh, 1);
    if (!kept)
      return kept.status();
    mesh_ = *kept;
    return Status::ok();
  }

  Status allReduce(const void *in, void *out, int64_t count, DType dtype,
                   CollectiveReduce op, uint32_t axes) override {
    return copy("allReduce", in, out, count, dtype, &op, axes);
  }
  Status allGather(const void *in, void *out, int64_t count, DType dtype,
                   uint32_t axes) override {
    return copy("allGather", in, out, count, dtype, nullptr, axes);
  }
  Status reduceScatter(const void *in, void *out, int64_t count, DType dtype,
                       CollectiveReduce op, uint32_t axes) override {
    return copy("reduceScatter", in, out, count, dtype, &op, axes);
  }
  Status broadcast(void *data, int64_t bytes, int64_t root) override {
    return dist::checkBroadcast(data, bytes, root, 1);
  }
  Status barrier() override { return Status::ok(); }

private:
  // Every group holds this rank alone: the sum, average and maximum of one
  // value are the value.
  Status copy(const char *name, const void *in, void *out, int64_t count,
              DType dtype, const CollectiveReduce *op, uint32_t axes) {
    auto elementSize =
        dist::checkCollective(name, mesh_, in, out, count, dtype, op, axes);
    if (!elementSize)
      return elementSize.status();
    if (count > 0 && in != out)
      std::memmove(out, in, static_cast<size_t>(count) * *elementSize);
    return Status::ok();
  }
};

} // namespace

std::unique_ptr<Communicator> singleProcessCommunicator() {
  return std::make_unique<SingleProcessCommunicator>();
}

} // namespace gai
