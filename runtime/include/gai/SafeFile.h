// Files read and written without surprises: an output replaces its target
// only when complete and only if the target is a regular file; an input must
// be a regular file; every failure is a Status naming the path.
#ifndef GAI_SAFEFILE_H
#define GAI_SAFEFILE_H

#include "gai/Status.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace gai {

/// Ok when `path` is missing or a regular file (symlinks followed): what an
/// output may replace. A directory, device, FIFO or socket is an error.
Status checkReplaceable(const std::string &path);

/// A file that appears at `path` only when complete. Bytes go to a fresh
/// temporary beside it (`path`.PID.N.tmp, created O_EXCL, so two writers
/// never share one); commit() fsyncs it, renames it over `path` and fsyncs
/// the directory, so a crash leaves the old file or the new one. Dropped
/// without commit(), the temporary is removed.
class AtomicFile {
public:
  static StatusOr<AtomicFile> create(const std::string &path);
  AtomicFile(AtomicFile &&other) noexcept;
  AtomicFile &operator=(AtomicFile &&) = delete;
  ~AtomicFile();

  Status write(const void *data, size_t size);
  /// Overwrites `size` bytes at `offset` of what was written (a header
  /// completed after the data behind it).
  Status writeAt(uint64_t offset, const void *data, size_t size);
  Status commit();

private:
  AtomicFile(std::string path, std::string temporary, int fd)
      : path_(std::move(path)), temporary_(std::move(temporary)), fd_(fd) {}
  std::string path_, temporary_;
  int fd_ = -1;
};

/// `bytes` at `path`, as AtomicFile writes it.
Status writeFileAtomically(const std::string &path, const std::string &bytes);

/// A log written a line at a time (training metrics). Every write is
/// checked, so a full disk is an error at the first line it loses. `path`
/// may be a regular file or a stream (a character device, or a FIFO that
/// has a reader: opening one without is an error, not a wait).
class AppendFile {
public:
  /// `truncate`: start empty; otherwise append to what is there.
  static StatusOr<AppendFile> open(const std::string &path, bool truncate);
  AppendFile(AppendFile &&other) noexcept;
  AppendFile &operator=(AppendFile &&) = delete;
  ~AppendFile();

  Status append(const std::string &text);
  /// Makes what was written durable (a no-op on streams).
  Status sync();
  bool isRegularFile() const { return regular_; }

private:
  AppendFile(std::string path, int fd, bool regular)
      : path_(std::move(path)), fd_(fd), regular_(regular) {}
  std::string path_;
  int fd_ = -1;
  bool regular_ = false;
};

/// Ok when `path` is a regular file (symlinks followed) on a real file
/// system: what an input must be. Checked before opening, since opening a
/// FIFO waits for a writer and opening a device may do anything.
Status checkRegularFile(const std::string &path);

/// The whole of the regular file `path`. A directory, FIFO, device, socket
/// or /proc and /sys file is refused before it is opened for reading: those
/// may block, never end, or change while read.
StatusOr<std::vector<uint8_t>> readRegularFile(const std::string &path);

/// Exclusive use of a directory by one process, held until destroyed.
/// DIR/lock holds the owner's pid and an flock(2) lock: the kernel drops the
/// lock when its owner dies, so a lock left by a killed process is taken
/// over (stalePid() says whose it was) and a live owner is never displaced.
class DirectoryLock {
public:
  static StatusOr<DirectoryLock> acquire(const std::string &dir);
  DirectoryLock(DirectoryLock &&other) noexcept;
  DirectoryLock &operator=(DirectoryLock &&) = delete;
  ~DirectoryLock();

  const std::string &path() const { return path_; }
  /// The pid recorded by an owner that died holding the lock; 0 if none.
  long stalePid() const { return stalePid_; }

private:
  DirectoryLock(std::string path, int fd, long stalePid)
      : path_(std::move(path)), fd_(fd), stalePid_(stalePid) {}
  std::string path_;
  int fd_ = -1;
  long stalePid_ = 0;
};

} // namespace gai

#endif // GAI_SAFEFILE_H
