// The TCP rendezvous: rank 0 and two other ranks in forked processes.
#include "core/Rendezvous.h"

#include <arpa/inet.h>
#include <chrono>
#include <cstdlib>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace gai;

namespace {

int freePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  bind(fd, reinterpret_cast<sockaddr *>(&address), sizeof address);
  getsockname(fd, reinterpret_cast<sockaddr *>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

JobPlacement rankOf(int64_t rank, int64_t size) {
  JobPlacement placement;
  placement.rank = rank;
  placement.size = size;
  return placement;
}

/// Runs `rank` of a world of 3 in a child that exits 0 when it got `blob`.
pid_t startRank(int64_t rank, const std::vector<uint8_t> &blob) {
  pid_t pid = fork();
  if (pid == 0) {
    auto got = shareFromRankZero(rankOf(rank, 3),
                                 rank == 0 ? blob : std::vector<uint8_t>(), 10);
    if (!got)
      std::fprintf(stderr, "rank %lld: %s\n", static_cast<long long>(rank),
                   got.status().message().c_str());
    _exit(got && *got == blob ? 0 : 1);
  }
  return pid;
}

TEST(RendezvousTest, RankZeroReachesTwoRanks) {
  setenv("MASTER_ADDR", "127.0.0.1", 1);
  setenv("MASTER_PORT", std::to_string(freePort()).c_str(), 1);
  std::vector<uint8_t> blob(128);
  for (size_t i = 0; i < blob.size(); ++i)
    blob[i] = static_cast<uint8_t>(i * 7 + 1);
  // The other ranks start first: they retry until rank 0 listens.
  std::vector<pid_t> pids = {startRank(1, blob), startRank(2, blob)};
  usleep(300 * 1000);
  pids.push_back(startRank(0, blob));
  for (pid_t pid : pids) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
}

TEST(RendezvousTest, AWorldOfOneNeedsNoAddress) {
  unsetenv("MASTER_ADDR");
  auto got = shareFromRankZero(rankOf(0, 1), {1, 2, 3}, 1);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, (std::vector<uint8_t>{1, 2, 3}));
}

TEST(RendezvousTest, MissingOrBadVariablesAreNamed) {
  unsetenv("MASTER_ADDR");
  setenv("MASTER_PORT", "29500", 1);
  auto missing = shareFromRankZero(rankOf(1, 2), {}, 1);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.status().message().rfind("MASTER_ADDR is not set", 0), 0u);
  setenv("MASTER_ADDR", "127.0.0.1", 1);
  setenv("MASTER_PORT", "70000", 1);
  EXPECT_EQ(rendezvousAddressFromEnvironment().status().message(),
            "MASTER_PORT='70000' is not a port (1 to 65535)");
}

TEST(RendezvousTest, TimeoutsNameTheAddress) {
  RendezvousAddress address{"127.0.0.1", freePort()};
  auto start = std::chrono::steady_clock::now();
  auto lonely = shareFromRankZero(address, rankOf(1, 2), {}, 1);
  ASSERT_FALSE(lonely);
  EXPECT_EQ(lonely.status().message().rfind(
                "rank 1 found no rank 0 at " + address.text() +
                    " (MASTER_ADDR:MASTER_PORT) within 1 s",
                0),
            0u)
      << lonely.status().message();
  auto waiting = shareFromRankZero(address, rankOf(0, 3), {1}, 1);
  ASSERT_FALSE(waiting);
  EXPECT_EQ(waiting.status().message(),
            "rendezvous at " + address.text() +
                " (MASTER_ADDR:MASTER_PORT): 0 of the 2 other ranks reached "
                "rank 0 within 1 s");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(4));
}

} // namespace
