// Atomic outputs, checked logs, regular-file inputs and the directory lock.
#include "gai/SafeFile.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

using namespace gai;

namespace {

class SafeFile : public ::testing::Test {
protected:
  void SetUp() override {
    char pattern[] = "/tmp/gai-safefile-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir = pattern;
  }
  void TearDown() override { std::system(("rm -rf " + dir).c_str()); }
  std::string read(const std::string &path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  std::string dir;
};

TEST_F(SafeFile, ReplacesOnlyWhenCommitted) {
  std::string path = dir + "/out";
  ASSERT_TRUE(writeFileAtomically(path, "old"));
  {
    auto file = AtomicFile::create(path);
    ASSERT_TRUE(file.isOk());
    ASSERT_TRUE(file->write("new", 3));
    EXPECT_EQ(read(path), "old"); // dropped without commit()
  }
  EXPECT_EQ(read(path), "old");
  ASSERT_TRUE(writeFileAtomically(path, "new"));
  EXPECT_EQ(read(path), "new");
  EXPECT_EQ(std::system(("test $(ls " + dir + " | wc -l) -eq 1").c_str()), 0)
      << "a temporary file was left behind";
}

TEST_F(SafeFile, TwoWritersNeverShareATemporary) {
  auto a = AtomicFile::create(dir + "/out"),
       b = AtomicFile::create(dir + "/out");
  ASSERT_TRUE(a.isOk());
  ASSERT_TRUE(b.isOk());
  ASSERT_TRUE(a->write("a", 1));
  ASSERT_TRUE(b->write("b", 1));
  ASSERT_TRUE(a->commit());
  ASSERT_TRUE(b->commit());
  EXPECT_EQ(read(dir + "/out"), "b");
}

TEST_F(SafeFile, RefusesToReplaceWhatIsNotARegularFile) {
  ASSERT_EQ(::mkfifo((dir + "/fifo").c_str(), 0644), 0);
  Status fifo = writeFileAtomically(dir + "/fifo", "x");
  EXPECT_EQ(fifo.message(),
            dir + "/fifo: refusing to replace a FIFO; outputs replace "
                  "only regular files");
  struct stat st;
  ASSERT_EQ(::stat((dir + "/fifo").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_FALSE(writeFileAtomically(dir, "x").isOk());
  EXPECT_FALSE(checkReplaceable("/dev/null").isOk());
  EXPECT_TRUE(checkReplaceable(dir + "/missing").isOk());
  EXPECT_FALSE(checkReplaceable(dir + "/missing/file").isOk());
}

TEST_F(SafeFile, LogWritesAreChecked) {
  auto full = AppendFile::open("/dev/full", false);
  ASSERT_TRUE(full.isOk());
  EXPECT_EQ(full->append("line\n").message(),
            "/dev/full: cannot write: No space left on device");
  auto log = AppendFile::open(dir + "/log", true);
  ASSERT_TRUE(log.isOk());
  ASSERT_TRUE(log->append("a\n"));
  ASSERT_TRUE(log->sync());
  auto again = AppendFile::open(dir + "/log", false);
  ASSERT_TRUE(again.isOk());
  ASSERT_TRUE(again->append("b\n"));
  EXPECT_EQ(read(dir + "/log"), "a\nb\n");
  EXPECT_FALSE(AppendFile::open(dir, true).isOk());
}

TEST_F(SafeFile, ReadsOnlyRegularFiles) {
  ASSERT_TRUE(writeFileAtomically(dir + "/in", "bytes"));
  auto bytes = readRegularFile(dir + "/in");
  ASSERT_TRUE(bytes.isOk());
  EXPECT_EQ(std::string(bytes->begin(), bytes->end()), "bytes");
  ASSERT_EQ(::mkfifo((dir + "/fifo").c_str(), 0644), 0);
  EXPECT_EQ(readRegularFile(dir + "/fifo").status().message(),
            dir + "/fifo: expected a regular file, got a FIFO");
  EXPECT_EQ(readRegularFile(dir).status().message(),
            dir + ": expected a regular file, got a directory");
  EXPECT_EQ(
      readRegularFile("/proc/self/status").status().message(),
      "/proc/self/status: expected a regular file, got a /proc or /sys file");
  EXPECT_FALSE(readRegularFile(dir + "/missing").isOk());
}

TEST_F(SafeFile, OneLockAtATimeAndStaleLocksAreTakenOver) {
  {
    auto first = DirectoryLock::acquire(dir);
    ASSERT_TRUE(first.isOk());
    EXPECT_EQ(first->stalePid(), 0);
    auto second = DirectoryLock::acquire(dir);
    ASSERT_FALSE(second.isOk());
    EXPECT_EQ(second.status().message(),
              dir + ": in use by another process (pid " +
                  std::to_string(::getpid()) + "), which holds " + dir +
                  "/lock");
  }
  EXPECT_NE(::access((dir + "/lock").c_str(), F_OK), 0)
      << "released locks are removed";
  ASSERT_TRUE(writeFileAtomically(dir + "/lock", "4242\n")); // its owner died
  auto taken = DirectoryLock::acquire(dir);
  ASSERT_TRUE(taken.isOk());
  EXPECT_EQ(taken->stalePid(), 4242);
  EXPECT_EQ(read(dir + "/lock"), std::to_string(::getpid()) + "\n");
}

} // namespace
