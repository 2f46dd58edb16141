// The TCP rendezvous of Rendezvous.h, over plain POSIX sockets. Rank 0
// answers each rank's hello (magic, protocol, rank) with the blob (magic,
// length, bytes); a connection that says anything else is dropped.
#include "core/Rendezvous.h"

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <netdb.h>
#include <netinet/in.h>
#include <optional>
#include <poll.h>
#include <set>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <utility>

namespace gai {
namespace {

using Clock = std::chrono::steady_clock;
using AddressList = std::unique_ptr<addrinfo, decltype(&freeaddrinfo)>;

constexpr uint8_t kMagic[4] = {'G', 'A', 'I', 'R'};
constexpr uint32_t kProtocol = 1;
constexpr size_t kHelloBytes = 16, kReplyHeaderBytes = 12;
/// Far more than an NCCL id; bounds what a stray answer makes a rank allocate.
constexpr uint64_t kMaxBlob = uint64_t(1) << 26;
/// How long rank 0 gives one connection to say hello.
constexpr auto kHelloWait = std::chrono::seconds(5);

class Socket {
public:
  explicit Socket(int fd = -1) : fd_(fd) {}
  Socket(Socket &&other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Socket &operator=(Socket &&) = delete;
  ~Socket() {
    if (fd_ >= 0)
      close(fd_);
  }
  int fd() const { return fd_; }

private:
  int fd_;
};

std::string errnoText(int code = errno) { return std::strerror(code); }

int millisecondsLeft(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                  deadline - Clock::now())
                  .count();
  return left <= 0 ? 0 : static_cast<int>(std::min<int64_t>(left, INT_MAX));
}

/// False when the deadline passes first (errno ETIMEDOUT) or poll fails.
bool waitFor(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd request{fd, events, 0};
    int ready = poll(&request, 1, millisecondsLeft(deadline));
    if (ready > 0)
      return true;
    if (ready == 0)
      errno = ETIMEDOUT;
    if (ready == 0 || errno != EINTR)
      return false;
  }
}

bool sendAll(int fd, const uint8_t *data, size_t bytes,
             Clock::time_point deadline) {
  while (bytes > 0) {
    if (!waitFor(fd, POLLOUT, deadline))
      return false;
    ssize_t sent = send(fd, data, bytes, MSG_NOSIGNAL);
    if (sent < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (sent < 0)
      return false;
    data += sent;
    bytes -= static_cast<size_t>(sent);
  }
  return true;
}

bool receiveAll(int fd, uint8_t *data, size_t bytes,
                Clock::time_point deadline) {
  while (bytes > 0) {
    if (!waitFor(fd, POLLIN, deadline))
      return false;
    ssize_t got = recv(fd, data, bytes, 0);
    if (got < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (got == 0)
      errno = ECONNRESET;
    if (got <= 0)
      return false;
    data += got;
    bytes -= static_cast<size_t>(got);
  }
  return true;
}

void putLittleEndian(uint8_t *out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i)
    out[i] = static_cast<uint8_t>(value >> (8 * i));
}

uint64_t getLittleEndian(const uint8_t *in, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i)
    value |= static_cast<uint64_t>(in[i]) << (8 * i);
  return value;
}

AddressList resolve(const RendezvousAddress &address, std::string &error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo *list = nullptr;
  int code = getaddrinfo(address.host.c_str(),
                         std::to_string(address.port).c_str(), &hints, &list);
  if (code != 0)
    error = std::string("cannot resolve ") + address.host + ": " +
            gai_strerror(code);
  return AddressList(code == 0 ? list : nullptr, freeaddrinfo);
}

std::string where(const RendezvousAddress &address) {
  return address.text() + " (MASTER_ADDR:MASTER_PORT)";
}

/// Rank 0 listens on the loopback when MASTER_ADDR is one, else on every
/// interface: a host's own name may resolve to 127.0.1.1, which other hosts
/// cannot reach.
StatusOr<Socket> listenAt(const RendezvousAddress &address, int backlog) {
  std::string error;
  AddressList list = resolve(address, error);
  for (addrinfo *ai = list.get(); ai; ai = ai->ai_next) {
    sockaddr_storage local{};
    std::memcpy(&local, ai->ai_addr, ai->ai_addrlen);
    if (ai->ai_family == AF_INET) {
      auto *v4 = reinterpret_cast<sockaddr_in *>(&local);
      if ((ntohl(v4->sin_addr.s_addr) >> 24) != 127)
        v4->sin_addr.s_addr = htonl(INADDR_ANY);
    } else if (ai->ai_family == AF_INET6) {
      auto *v6 = reinterpret_cast<sockaddr_in6 *>(&local);
      if (!IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr))
        v6->sin6_addr = in6addr_any;
    }
    Socket listener(
        socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    int one = 1;
    if (listener.fd() >= 0 &&
        setsockopt(listener.fd(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ==
            0 &&
        bind(listener.fd(), reinterpret_cast<sockaddr *>(&local),
             ai->ai_addrlen) == 0 &&
        listen(listener.fd(), backlog) == 0)
      return std::move(listener);
    error = errnoText();
  }
  return Status::error("rank 0 cannot listen at " + where(address) + ": " +
                       error);
}

StatusOr<std::vector<uint8_t>> serve(const RendezvousAddress &address,
                                     const JobPlacement &placement,
                                     const std::vector<uint8_t> &blob,
                                     Clock::time_point deadline,
                                     int timeoutSeconds) {
  if (blob.size() > kMaxBlob)
    return Status::error(
        "rendezvous: a blob of " + std::to_string(blob.size()) +
        " bytes is more than it carries (" + std::to_string(kMaxBlob) + ")");
  auto listener = listenAt(
      address, static_cast<int>(std::min<int64_t>(placement.size, 128)));
  if (!listener)
    return listener.status();
  uint8_t header[kReplyHeaderBytes];
  std::memcpy(header, kMagic, 4);
  putLittleEndian(header + 4, blob.size(), 8);
  std::set<int64_t> served;
  while (static_cast<int64_t>(served.size()) + 1 < placement.size) {
    if (!waitFor(listener->fd(), POLLIN, deadline))
      return Status::error("rendezvous at " + where(address) + ": " +
                           std::to_string(served.size()) + " of the " +
                           std::to_string(placement.size - 1) +
                           " other ranks reached rank 0 within " +
                           std::to_string(timeoutSeconds) + " s");
    Socket client(accept4(listener->fd(), nullptr, nullptr, SOCK_CLOEXEC));
    if (client.fd() < 0)
      continue;
    uint8_t hello[kHelloBytes];
    if (!receiveAll(client.fd(), hello, kHelloBytes,
                    std::min(deadline, Clock::now() + kHelloWait)) ||
        std::memcmp(hello, kMagic, 4) != 0 ||
        getLittleEndian(hello + 4, 4) != kProtocol)
      continue;
    auto rank = static_cast<int64_t>(getLittleEndian(hello + 8, 8));
    if (rank < 1 || rank >= placement.size || served.count(rank))
      continue;
    if (sendAll(client.fd(), header, sizeof header, deadline) &&
        sendAll(client.fd(), blob.data(), blob.size(), deadline))
      served.insert(rank);
  }
  return blob;
}

/// One attempt: the blob, or nothing with `error` saying why.
std::optional<std::vector<uint8_t>> tryFetch(const RendezvousAddress &address,
                                             int64_t rank,
                                             Clock::time_point deadline,
                                             std::string &error) {
  AddressList list = resolve(address, error);
  for (addrinfo *ai = list.get(); ai; ai = ai->ai_next) {
    Socket socket_(
        socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    int fd = socket_.fd();
    if (fd < 0) {
      error = errnoText();
      continue;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      int code = errno;
      socklen_t length = sizeof code;
      if (code == EINPROGRESS &&
          (!waitFor(fd, POLLOUT, deadline) ||
           getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &length) != 0))
        code = errno;
      if (code != 0) {
        error = errnoText(code);
        continue;
      }
    }
    uint8_t hello[kHelloBytes], header[kReplyHeaderBytes];
    std::memcpy(hello, kMagic, 4);
    putLittleEndian(hello + 4, kProtocol, 4);
    putLittleEndian(hello + 8, static_cast<uint64_t>(rank), 8);
    if (!sendAll(fd, hello, sizeof hello, deadline) ||
        !receiveAll(fd, header, sizeof header, deadline)) {
      error = errnoText();
      continue;
    }
    uint64_t bytes = getLittleEndian(header + 4, 8);
    if (std::memcmp(header, kMagic, 4) != 0 || bytes > kMaxBlob) {
      error = "something other than gai's rank 0 answered";
      continue;
    }
    std::vector<uint8_t> blob(bytes);
    if (!receiveAll(fd, blob.data(), blob.size(), deadline)) {
      error = errnoText();
      continue;
    }
    return blob;
  }
  return std::nullopt;
}

} // namespace

StatusOr<RendezvousAddress> rendezvousAddressFromEnvironment() {
  const char *host = std::getenv("MASTER_ADDR");
  const char *port = std::getenv("MASTER_PORT");
  for (const char *name : {"MASTER_ADDR", "MASTER_PORT"}) {
    const char *value = std::getenv(name);
    if (!value || !*value)
      return Status::error(std::string(name) +
                           " is not set: the ranks meet at rank 0's "
                           "MASTER_ADDR:MASTER_PORT (gai-run launch and "
                           "torchrun set both)");
  }
  char *end = nullptr;
  errno = 0;
  long number = std::strtol(port, &end, 10);
  if (*port < '0' || *port > '9' || errno || *end || number < 1 ||
      number > 65535)
    return Status::error(std::string("MASTER_PORT='") + port +
                         "' is not a port (1 to 65535)");
  RendezvousAddress address;
  address.host = host;
  address.port = static_cast<int>(number);
  return address;
}

StatusOr<std::vector<uint8_t>> shareFromRankZero(
    const RendezvousAddress &address, const JobPlacement &placement,
    const std::vector<uint8_t> &blobOnRankZero, int timeoutSeconds) {
  if (placement.size <= 1)
    return blobOnRankZero;
  Clock::time_point deadline =
      Clock::now() + std::chrono::seconds(std::max(timeoutSeconds, 0));
  if (placement.rank == 0)
    return serve(address, placement, blobOnRankZero, deadline, timeoutSeconds);
  std::string error = "no answer";
  for (;;) {
    if (auto blob = tryFetch(address, placement.rank, deadline, error))
      return std::move(*blob);
    // Rank 0 may not listen yet: try again shortly, until the deadline.
    if (millisecondsLeft(deadline) <= 100)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return Status::error("rank " + std::to_string(placement.rank) +
                       " found no rank 0 at " + where(address) + " within " +
                       std::to_string(timeoutSeconds) + " s: " + error);
}

StatusOr<std::vector<uint8_t>>
shareFromRankZero(const JobPlacement &placement,
                  const std::vector<uint8_t> &blobOnRankZero,
                  int timeoutSeconds) {
  if (placement.size <= 1)
    return blobOnRankZero;
  auto address = rendezvousAddressFromEnvironment();
  if (!address)
    return address.status();
  return shareFromRankZero(*address, placement, blobOnRankZero, timeoutSeconds);
}

} // namespace gai
