// gai-run launch: starts N local ranks of a gai-run command (or, for
// scripts, of any program) with the rank variables set, through mpirun for
// CPU jobs, else directly, supervising them so that one failure stops all.
#include "Launch.h"

#include "Flags.h"

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <string>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace gai {
namespace {

const char *kLaunchHelp =
    "usage: gai-run launch -n N [--direct] [--] COMMAND ARGS...\n"
    "       gai-run launch -n N [--direct] --exec PROGRAM ARGS...\n"
    "\n"
    "Starts N ranks of a job on this host, each running `gai-run COMMAND\n"
    "ARGS`, or with --exec PROGRAM ARGS (a script that runs gai-run itself),\n"
    "with RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR\n"
    "(127.0.0.1), MASTER_PORT (a free port) and GAI_LAUNCH=1 set.\n"
    "\n"
    "GPU ranks (a CUDA artifact) each take the GPU of their LOCAL_RANK and\n"
    "exchange tensors through NCCL (GAI_NCCL_LIBRARY, else libnccl.so.2 on\n"
    "the library path), rank 0 handing NCCL's id to the others over TCP at\n"
    "MASTER_ADDR:MASTER_PORT; no MPI is needed.\n"
    "\n"
    "CPU ranks exchange tensors through MPI, so when mpirun is on PATH and\n"
    "ARGS have no --device cuda..., launch runs `mpirun -n N` instead (with\n"
    "--oversubscribe, and --allow-run-as-root as root, for Open MPI), and\n"
    "mpirun supervises the ranks. Otherwise, or with --direct, launch starts\n"
    "the ranks itself, each in its own process group: their output passes\n"
    "through; when one exits with an error or a signal, launch stops the\n"
    "others (SIGTERM, then SIGKILL 10 s later) and exits with that rank's\n"
    "status. SIGINT, SIGTERM and SIGHUP are passed on to every rank (and\n"
    "SIGKILL to those still running 10 s later).\n"
    "\n"
    "  -n N        how many ranks (1 to 1024)\n"
    "  --direct    start the ranks directly even when mpirun is on PATH\n"
    "  --exec P    run program P (found on PATH) instead of gai-run\n";

constexpr int64_t kMaxRanks = 1024;
constexpr auto kKillAfter = std::chrono::seconds(10);

int fail(const std::string &message) {
  std::fprintf(stderr, "gai-run launch: error: %s\n", message.c_str());
  return 1;
}

struct LaunchPlan {
  int64_t ranks = 0;
  bool direct = false;
  /// argv of each rank: the program, then its arguments.
  std::vector<std::string> command;
};

std::string selfPath() {
  char path[PATH_MAX];
  ssize_t length = readlink("/proc/self/exe", path, sizeof path - 1);
  return length > 0 ? std::string(path, static_cast<size_t>(length)) : "";
}

/// The first executable `name` on PATH, or "".
std::string findOnPath(const std::string &name) {
  const char *path = std::getenv("PATH");
  std::string dirs = path ? path : "";
  for (size_t start = 0; start <= dirs.size();) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos)
      end = dirs.size();
    std::string dir = dirs.substr(start, end - start);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0)
      return candidate;
    start = end + 1;
  }
  return "";
}

/// A CUDA job's ranks talk through NCCL, not MPI.
bool runsOnCuda(const std::vector<std::string> &args) {
  for (size_t i = 0; i < args.size(); ++i)
    if ((args[i] == "--device" && i + 1 < args.size() &&
         args[i + 1].rfind("cuda", 0) == 0) ||
        args[i].rfind("--device=cuda", 0) == 0)
      return true;
  return false;
}

/// A port free now on the loopback (another program may still take it
/// before rank 0 listens; the rendezvous then fails with its address).
int freePort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return 0;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr *>(&address), sizeof address) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr *>(&address), &length) == 0)
    port = ntohs(address.sin_port);
  close(fd);
  return port;
}

std::string signalName(int signal) {
  if (const char *abbreviation = sigabbrev_np(signal))
    return std::string("SIG") + abbreviation;
  return std::to_string(signal);
}

std::vector<char *> argvOf(std::vector<std::string> &words) {
  std::vector<char *> argv;
  for (std::string &word : words)
    argv.push_back(word.data());
  argv.push_back(nullptr);
  return argv;
}

/// Replaces this process with `mpirun -n N ... COMMAND`.
int execMpirun(const LaunchPlan &plan, const std::string &mpirun) {
  std::vector<std::string> words = {mpirun, "-n", std::to_string(plan.ranks)};
  // Open MPI's flags; other MPIs (Hydra) oversubscribe as they are.
  std::string dir = mpirun.substr(0, mpirun.rfind('/'));
  if (access((dir + "/ompi_info").c_str(), X_OK) == 0) {
    words.push_back("--oversubscribe");
    if (geteuid() == 0)
      words.push_back("--allow-run-as-root");
    for (const char *name : {"MASTER_ADDR", "MASTER_PORT", "GAI_LAUNCH"}) {
      words.push_back("-x");
      words.push_back(name);
    }
  }
  words.insert(words.end(), plan.command.begin(), plan.command.end());
  std::vector<char *> argv = argvOf(words);
  std::fflush(nullptr);
  execv(mpirun.c_str(), argv.data());
  return fail("cannot run " + mpirun + ": " + std::strerror(errno));
}

/// The child's side of fork: its own process group, the rank variables,
/// then the command. Never returns.
[[noreturn]] void execRank(const LaunchPlan &plan, int64_t rank,
                           const sigset_t &parentMask, pid_t parent) {
  setpgid(0, 0);
  // Gone with the launcher, even one killed by SIGKILL.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent)
    _exit(128 + SIGKILL);
  sigprocmask(SIG_SETMASK, &parentMask, nullptr);
  // A rank outside the terminal's foreground group that reads the terminal
  // would stop: ranks read no terminal.
  if (isatty(STDIN_FILENO)) {
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0)
      dup2(null, STDIN_FILENO);
  }
  std::string ranks = std::to_string(plan.ranks), me = std::to_string(rank);
  setenv("RANK", me.c_str(), 1);
  setenv("LOCAL_RANK", me.c_str(), 1);
  setenv("WORLD_SIZE", ranks.c_str(), 1);
  setenv("LOCAL_WORLD_SIZE", ranks.c_str(), 1);
  std::vector<std::string> words = plan.command;
  std::vector<char *> argv = argvOf(words);
  execvp(argv[0], argv.data());
  std::fprintf(stderr, "gai-run launch: rank %lld: cannot run %s: %s\n",
               static_cast<long long>(rank), argv[0], std::strerror(errno));
  _exit(127);
}

/// Starts the ranks and waits for them; returns the launcher's exit status.
int superviseRanks(const LaunchPlan &plan) {
  using Clock = std::chrono::steady_clock;
  sigset_t watched, parentMask;
  sigemptyset(&watched);
  for (int signal : {SIGCHLD, SIGINT, SIGTERM, SIGHUP})
    sigaddset(&watched, signal);
  // Taken by sigtimedwait below, never by handlers.
  sigprocmask(SIG_BLOCK, &watched, &parentMask);

  std::vector<pid_t> pids(static_cast<size_t>(plan.ranks), 0);
  int64_t live = 0;
  bool stopping = false, killed = false;
  int exitStatus = 0;
  Clock::time_point killAt;
  // Whole process groups: what a rank started goes with it.
  auto signalRanks = [&](int signal) {
    for (pid_t pid : pids)
      if (pid > 0)
        kill(-pid, signal);
  };
  // Sends `signal` to every rank, and SIGKILL to those left kKillAfter later.
  auto stop = [&](int status, int signal) {
    if (stopping)
      return;
    stopping = true;
    exitStatus = status;
    killAt = Clock::now() + kKillAfter;
    signalRanks(signal);
  };

  std::fflush(nullptr);
  pid_t self = getpid();
  for (int64_t rank = 0; rank < plan.ranks && !stopping; ++rank) {
    pid_t pid = fork();
    if (pid < 0) {
      std::fprintf(stderr, "gai-run launch: cannot start rank %lld: %s\n",
                   static_cast<long long>(rank), std::strerror(errno));
      stop(1, SIGTERM);
      break;
    }
    if (pid == 0)
      execRank(plan, rank, parentMask, self);
    // Also here, so that a signal sent before the child ran reaches it.
    setpgid(pid, pid);
    pids[static_cast<size_t>(rank)] = pid;
    ++live;
  }

  while (live > 0) {
    int status;
    for (pid_t pid; live > 0 && (pid = waitpid(-1, &status, WNOHANG)) > 0;) {
      size_t rank = 0;
      while (rank < pids.size() && pids[rank] != pid)
        ++rank;
      if (rank == pids.size())
        continue;
      --live;
      bool failed = !WIFEXITED(status) || WEXITSTATUS(status) != 0;
      if (failed && !stopping) {
        bool signalled = WIFSIGNALED(status);
        std::fprintf(stderr,
                     "gai-run launch: rank %zu exited with %s %s; stopping "
                     "the other ranks\n",
                     rank, signalled ? "signal" : "status",
                     signalled ? signalName(WTERMSIG(status)).c_str()
                               : std::to_string(WEXITSTATUS(status)).c_str());
        stop(signalled ? 128 + WTERMSIG(status) : WEXITSTATUS(status), SIGTERM);
      }
      pids[rank] = -pid; // reaped: its pid may be reused
    }
    if (live == 0)
      break;
    if (stopping && !killed && Clock::now() >= killAt) {
      signalRanks(SIGKILL);
      killed = true;
    }
    auto wait = stopping && !killed
                    ? std::chrono::duration_cast<std::chrono::nanoseconds>(
                          killAt - Clock::now())
                    : std::chrono::nanoseconds(std::chrono::seconds(1));
    if (wait.count() < 0)
      wait = std::chrono::nanoseconds(0);
    timespec timeout{static_cast<time_t>(wait.count() / 1000000000),
                     static_cast<long>(wait.count() % 1000000000)};
    int signal = sigtimedwait(&watched, nullptr, &timeout);
    // Passed on as it came (a rank may save its work on SIGINT); a second
    // one is passed on too.
    if (signal == SIGINT || signal == SIGTERM || signal == SIGHUP) {
      if (stopping)
        signalRanks(signal);
      stop(128 + signal, signal);
    }
  }
  return exitStatus;
}

} // namespace

int launchCommand(int argc, char **argv) {
  LaunchPlan plan;
  bool exec = false;
  int i = 0;
  for (; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kLaunchHelp, stdout);
      return 0;
    }
    if (arg == "-n") {
      if (i + 1 >= argc || !parseInt(argv[++i], plan.ranks) || plan.ranks < 1 ||
          plan.ranks > kMaxRanks)
        return fail("-n needs a rank count from 1 to " +
                    std::to_string(kMaxRanks));
    } else if (arg == "--direct") {
      plan.direct = true;
    } else if (arg == "--exec") {
      exec = true;
      ++i;
      break;
    } else if (arg == "--") {
      ++i;
      break;
    } else if (!arg.empty() && arg[0] == '-') {
      return fail("unknown option '" + arg + "' (see gai-run launch --help)");
    } else {
      break;
    }
  }
  if (plan.ranks == 0)
    return fail("-n N is needed (see gai-run launch --help)");
  if (i >= argc)
    return fail(exec ? "--exec needs a program" : "no command to launch");
  if (!exec) {
    std::string self = selfPath();
    if (self.empty())
      return fail("cannot find gai-run's own path (/proc/self/exe)");
    plan.command.push_back(self);
  }
  plan.command.insert(plan.command.end(), argv + i, argv + argc);

  int port = freePort();
  if (port == 0)
    return fail(std::string("no free port on 127.0.0.1: ") +
                std::strerror(errno));
  setenv("MASTER_ADDR", "127.0.0.1", 1);
  setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
  setenv("GAI_LAUNCH", "1", 1);
  if (!plan.direct && !runsOnCuda(plan.command))
    if (std::string mpirun = findOnPath("mpirun"); !mpirun.empty())
      return execMpirun(plan, mpirun);
  return superviseRanks(plan);
}

} // namespace gai
