// Checked file I/O: atomic outputs, line logs, whole-file inputs and a
// directory lock, all in POSIX calls whose every result is looked at.
#include "gai/SafeFile.h"

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <new>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/vfs.h>
#endif

namespace gai {
namespace {

Status failure(const std::string &path, const std::string &what, int err) {
  return Status::error(path + ": " + what + ": " + std::strerror(err));
}

const char *kindOf(mode_t mode) {
  if (S_ISDIR(mode))
    return "a directory";
  if (S_ISCHR(mode))
    return "a character device";
  if (S_ISBLK(mode))
    return "a block device";
  if (S_ISFIFO(mode))
    return "a FIFO";
  if (S_ISSOCK(mode))
    return "a socket";
  return "something else";
}

/// Writes all `size` bytes at the file's position, or at `offset` where it
/// is not negative.
Status writeAll(int fd, const void *data, size_t size, const std::string &path,
                int64_t offset = -1) {
  const auto *p = static_cast<const uint8_t *>(data);
  while (size > 0) {
    ssize_t n = offset < 0 ? ::write(fd, p, size) : ::pwrite(fd, p, size, offset);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return failure(path, "cannot write", errno);
    if (n == 0)
      return failure(path, "cannot write", ENOSPC);
    p += n;
    size -= static_cast<size_t>(n);
    if (offset >= 0)
      offset += n;
  }
  return Status::ok();
}

std::string parentOf(const std::string &path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos)
    return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

/// Makes a rename in `dir` survive a crash. File systems that cannot sync
/// a directory say EINVAL; there is nothing more to do on them.
Status syncDirectory(const std::string &dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return failure(dir, "cannot open the directory to sync it", errno);
  int result = ::fsync(fd), err = errno;
  ::close(fd);
  if (result != 0 && err != EINVAL && err != EROFS)
    return failure(dir, "cannot sync the directory", err);
  return Status::ok();
}

#ifdef __linux__
/// Whether `fs` is a pseudo file system, whose files report sizes that are
/// not their contents.
bool isPseudo(const struct statfs &fs) {
  constexpr long kProcMagic = 0x9fa0, kSysfsMagic = 0x62656572;
  return static_cast<long>(fs.f_type) == kProcMagic ||
         static_cast<long>(fs.f_type) == kSysfsMagic;
}
bool isPseudoFile(const std::string &path) {
  struct statfs fs;
  return ::statfs(path.c_str(), &fs) == 0 && isPseudo(fs);
}
bool isPseudoFile(int fd) {
  struct statfs fs;
  return ::fstatfs(fd, &fs) == 0 && isPseudo(fs);
}
#else
bool isPseudoFile(const std::string &) { return false; }
bool isPseudoFile(int) { return false; }
#endif

Status notRegular(const std::string &path, mode_t mode) {
  return Status::error(path + ": expected a regular file, got " + kindOf(mode));
}

Status pseudoFile(const std::string &path) {
  return Status::error(path +
                       ": expected a regular file, got a /proc or /sys file");
}

} // namespace

Status checkReplaceable(const std::string &path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT)
      return failure(path, "cannot inspect the output", errno);
    std::string parent = parentOf(path);
    if (::stat(parent.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
      return Status::error(path + ": cannot be created: " + parent +
                           " is not a directory");
    return Status::ok();
  }
  if (!S_ISREG(st.st_mode))
    return Status::error(path + ": refusing to replace " + kindOf(st.st_mode) +
                         "; outputs replace only regular files");
  return Status::ok();
}

StatusOr<AtomicFile> AtomicFile::create(const std::string &path) {
  if (Status s = checkReplaceable(path); !s)
    return s;
  static std::atomic<uint64_t> counter{0};
  for (int attempt = 0;; ++attempt) {
    std::string temporary = path + "." + std::to_string(::getpid()) + "." +
                            std::to_string(counter++) + ".tmp";
    int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                    0644);
    if (fd >= 0)
      return AtomicFile(path, temporary, fd);
    // EEXIST: a leftover of a dead process that had our pid; take the next.
    if (errno != EEXIST || attempt == 1000)
      return failure(
          path, "cannot create a temporary file beside it (" + temporary + ")",
          errno);
  }
}

AtomicFile::AtomicFile(AtomicFile &&other) noexcept
    : path_(std::move(other.path_)), temporary_(std::move(other.temporary_)),
      fd_(other.fd_) {
  other.fd_ = -1;
  other.temporary_.clear();
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0)
    ::close(fd_);
  if (!temporary_.empty())
    ::unlink(temporary_.c_str());
}

Status AtomicFile::write(const void *data, size_t size) {
  if (fd_ < 0)
    return Status::error(path_ + ": write after commit");
  return writeAll(fd_, data, size, path_);
}

Status AtomicFile::writeAt(uint64_t offset, const void *data, size_t size) {
  if (fd_ < 0)
    return Status::error(path_ + ": write after commit");
  return writeAll(fd_, data, size, path_, static_cast<int64_t>(offset));
}

Status AtomicFile::commit() {
  if (fd_ < 0)
    return Status::error(path_ + ": committed twice");
  Status s = Status::ok();
  if (::fsync(fd_) != 0)
    s = failure(path_, "cannot sync", errno);
  // close reports write-back errors some file systems (NFS) defer to it.
  if (::close(fd_) != 0 && s)
    s = failure(path_, "cannot close", errno);
  fd_ = -1;
  if (!s)
    return s;
  // Checked again: the target may have changed while this was written.
  if (Status check = checkReplaceable(path_); !check)
    return check;
  if (::rename(temporary_.c_str(), path_.c_str()) != 0)
    return failure(path_, "cannot rename into place", errno);
  temporary_.clear();
  return syncDirectory(parentOf(path_));
}

Status writeFileAtomically(const std::string &path, const std::string &bytes) {
  StatusOr<AtomicFile> file = AtomicFile::create(path);
  if (!file)
    return file.status();
  if (Status s = file->write(bytes.data(), bytes.size()); !s)
    return s;
  return file->commit();
}

StatusOr<AppendFile> AppendFile::open(const std::string &path, bool truncate) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode) &&
      !S_ISCHR(st.st_mode) && !S_ISFIFO(st.st_mode))
    return Status::error(
        path + ": cannot write a log to " + std::string(kindOf(st.st_mode)) +
        "; expected a regular file, a character device or a FIFO");
  // Non-blocking, so that a FIFO without a reader fails (ENXIO) at once.
  int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  int fd = ::open(path.c_str(), flags | (truncate ? O_TRUNC : 0), 0644);
  if (fd < 0)
    return failure(path,
                   errno == ENXIO ? "cannot open (a FIFO with no reader?)"
                                  : "cannot open",
                   errno);
  if (::fstat(fd, &st) != 0 || ::fcntl(fd, F_SETFL, O_APPEND) != 0) {
    int err = errno;
    ::close(fd);
    return failure(path, "cannot open", err);
  }
  return AppendFile(path, fd, S_ISREG(st.st_mode));
}

AppendFile::AppendFile(AppendFile &&other) noexcept
    : path_(std::move(other.path_)), fd_(other.fd_), regular_(other.regular_) {
  other.fd_ = -1;
}

AppendFile::~AppendFile() {
  if (fd_ >= 0)
    ::close(fd_);
}

Status AppendFile::append(const std::string &text) {
  return writeAll(fd_, text.data(), text.size(), path_);
}

Status AppendFile::sync() {
  if (regular_ && ::fsync(fd_) != 0)
    return failure(path_, "cannot sync", errno);
  return Status::ok();
}

Status checkRegularFile(const std::string &path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    return failure(path, "cannot open", errno);
  if (!S_ISREG(st.st_mode))
    return notRegular(path, st.st_mode);
  if (isPseudoFile(path))
    return pseudoFile(path);
  return Status::ok();
}

StatusOr<std::vector<uint8_t>> readRegularFile(const std::string &path) {
  if (Status s = checkRegularFile(path); !s)
    return s;
  // Non-blocking: if a FIFO took the file's place since the stat, opening
  // it must not wait for a writer.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0)
    return failure(path, "cannot open", errno);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st;
  if (::fstat(fd, &st) != 0)
    return failure(path, "cannot inspect", errno);
  if (!S_ISREG(st.st_mode))
    return notRegular(path, st.st_mode);
  if (isPseudoFile(fd))
    return pseudoFile(path);
  std::vector<uint8_t> bytes;
  try {
    bytes.resize(static_cast<size_t>(st.st_size));
  } catch (const std::bad_alloc &) {
    return Status::error(path + ": " + std::to_string(st.st_size) +
                         " bytes do not fit in memory");
  }
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return failure(path, "cannot read", errno);
    if (n == 0)
      return Status::error(path + ": shrank while being read (" +
                           std::to_string(done) + " of " +
                           std::to_string(bytes.size()) + " bytes)");
    done += static_cast<size_t>(n);
  }
  uint8_t extra;
  ssize_t n;
  while ((n = ::read(fd, &extra, 1)) < 0 && errno == EINTR) {
  }
  if (n < 0)
    return failure(path, "cannot read", errno);
  if (n > 0)
    return Status::error(path + ": grew while being read (past " +
                         std::to_string(bytes.size()) + " bytes)");
  return bytes;
}

StatusOr<DirectoryLock> DirectoryLock::acquire(const std::string &dir) {
  std::string path = dir + "/lock";
  // A retry when the file was removed between our open and our flock: its
  // owner released it, and the lock is now a new file.
  for (int attempt = 0; attempt < 16; ++attempt) {
    int fd =
        ::open(path.c_str(),
               O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
    if (fd < 0)
      return failure(path, "cannot create the lock", errno);
    auto fail = [&](Status s) {
      ::close(fd);
      return s;
    };
    struct stat held, named;
    if (::fstat(fd, &held) != 0)
      return fail(failure(path, "cannot inspect the lock", errno));
    if (!S_ISREG(held.st_mode))
      return fail(Status::error(path + ": the lock is " + kindOf(held.st_mode) +
                                ", not a regular file"));
    char text[32] = {};
    ssize_t n = ::pread(fd, text, sizeof text - 1, 0);
    long recorded = n > 0 ? std::strtol(text, nullptr, 10) : 0;
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      int err = errno;
      if (err != EWOULDBLOCK)
        return fail(failure(path, "cannot lock", err));
      return fail(Status::error(dir + ": in use by another process" +
                                (recorded > 0
                                     ? " (pid " + std::to_string(recorded) + ")"
                                     : std::string()) +
                                ", which holds " + path));
    }
    if (::stat(path.c_str(), &named) != 0 || named.st_ino != held.st_ino ||
        named.st_dev != held.st_dev) {
      ::close(fd);
      continue;
    }
    // Read again under the lock: the pid of an owner that died holding it.
    n = ::pread(fd, text, sizeof text - 1, 0);
    text[n > 0 ? n : 0] = '\0';
    long stale = n > 0 ? std::strtol(text, nullptr, 10) : 0;
    std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd, 0) != 0)
      return fail(failure(path, "cannot write the lock", errno));
    ssize_t written = ::pwrite(fd, pid.data(), pid.size(), 0);
    if (written != static_cast<ssize_t>(pid.size()))
      return fail(
          failure(path, "cannot write the lock", written < 0 ? errno : ENOSPC));
    return DirectoryLock(path, fd, stale > 0 ? stale : 0);
  }
  return Status::error(path + ": the lock keeps changing hands; try again");
}

DirectoryLock::DirectoryLock(DirectoryLock &&other) noexcept
    : path_(std::move(other.path_)), fd_(other.fd_),
      stalePid_(other.stalePid_) {
  other.fd_ = -1;
}

DirectoryLock::~DirectoryLock() {
  if (fd_ < 0)
    return;
  // Removed while still held, so that no one locks the old file after us.
  ::unlink(path_.c_str());
  ::close(fd_);
}

} // namespace gai
