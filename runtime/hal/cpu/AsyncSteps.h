// Steps that run beside the others: the CPU backend's collectives, on a
// thread of their own (in order, so that every rank calls them alike),
// while the compute steps that do not touch their buffers go on. A step
// that reads or writes a pending collective's buffers waits for it first.
#ifndef GAI_RUNTIME_HAL_CPU_ASYNCSTEPS_H
#define GAI_RUNTIME_HAL_CPU_ASYNCSTEPS_H

#include "core/Commands.h"
#include "gai/Status.h"

#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace gai::cpu {

class AsyncSteps {
public:
  AsyncSteps() : worker_([this] { work(); }) {}
  ~AsyncSteps() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    ready_.notify_one();
    worker_.join();
  }

  /// Runs `step` on the worker after those started before it.
  void start(std::vector<Buffer> buffers, std::function<Status()> step) {
    // An exception becomes the step's error, so a wait never throws and
    // every pending step is waited for.
    std::packaged_task<Status()> task([step = std::move(step)]() -> Status {
      try {
        return step();
      } catch (const std::exception &e) {
        return Status::error(std::string("a collective failed: ") + e.what());
      }
    });
    pending_.push_back({std::move(buffers), task.get_future()});
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back(std::move(task));
    }
    ready_.notify_one();
  }

  /// Waits for the pending steps whose buffers overlap `buffers` (and those
  /// started before them); the first error among them.
  Status waitFor(const std::vector<Buffer> &buffers) {
    size_t last = 0;
    for (size_t i = 0; i < pending_.size(); ++i)
      for (const Buffer &b : buffers)
        for (const Buffer &mine : pending_[i].buffers)
          if (b.overlaps(mine))
            last = i + 1;
    return finish(last);
  }
  /// Waits for every pending step.
  Status waitAll() { return finish(pending_.size()); }

private:
  struct Pending {
    std::vector<Buffer> buffers;
    std::future<Status> done;
  };
  /// The first `count` pending steps, in order (the worker runs them so).
  Status finish(size_t count) {
    Status first = Status::ok();
    for (size_t i = 0; i < count; ++i)
      if (Status s = pending_[i].done.get(); !s && first)
        first = s;
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(count));
    return first;
  }
  void work() {
    for (;;) {
      std::packaged_task<Status()> task;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty())
          return;
        task = std::move(queue_.front());
        queue_.pop_front();
      }
      task();
    }
  }

  std::vector<Pending> pending_; // the caller's thread only
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::packaged_task<Status()>> queue_;
  bool stopping_ = false;
  std::thread worker_;
};

} // namespace gai::cpu

#endif // GAI_RUNTIME_HAL_CPU_ASYNCSTEPS_H
