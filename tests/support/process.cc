#include "support/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "support/files.h"

namespace loyalty::testing {
namespace {

int ExitStatus(int st) { return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st); }

// Forks and runs argv[0] (searched on PATH) with stdout to out_file and stderr to err_file,
// opened with `flags` (truncated or appended), `env` added to its environment.
pid_t ForkExec(const std::vector<std::string>& argv, const std::string& out_file,
               const std::string& err_file, int flags, const std::vector<std::string>& env) {
  std::vector<std::string> args = argv, vars = env;
  std::vector<char*> cargs;
  for (auto& a : args) cargs.push_back(a.data());
  cargs.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    int o = ::open(out_file.c_str(), O_WRONLY | O_CREAT | flags, 0644);
    int e = err_file == out_file ? o : ::open(err_file.c_str(), O_WRONLY | O_CREAT | flags, 0644);
    ::dup2(o, 1);
    ::dup2(e, 2);
    for (auto& v : vars) ::putenv(v.data());
    ::execvp(cargs[0], cargs.data());
    ::_exit(127);
  }
  return pid;
}

}  // namespace

ProgramResult RunProgram(const std::string& exe, const std::vector<std::string>& args) {
  static std::atomic<int> n{0};
  auto dir = std::filesystem::temp_directory_path();
  std::string tag = "loyalty_program_" + std::to_string(::getpid()) + "_" + std::to_string(++n);
  auto out_path = dir / (tag + ".out"), err_path = dir / (tag + ".err");
  std::vector<std::string> argv = {exe};
  argv.insert(argv.end(), args.begin(), args.end());
  pid_t pid = ForkExec(argv, out_path.string(), err_path.string(), O_TRUNC, {});
  int st = 0;
  ::waitpid(pid, &st, 0);
  ProgramResult r;
  r.exit = ExitStatus(st);
  r.out = ReadFile(out_path);
  r.err = ReadFile(err_path);
  std::filesystem::remove(out_path);
  std::filesystem::remove(err_path);
  return r;
}

ProgramResult RunCtl(const std::vector<std::string>& args) {
  return RunProgram(std::string(LOYALTY_BINARY_DIR) + "/ctl/loyaltyctl", args);
}

std::string ShellOutput(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

pid_t Spawn(const std::vector<std::string>& argv, const std::string& log_file,
            const std::vector<std::string>& env) {
  return ForkExec(argv, log_file, log_file, O_APPEND, env);
}

StartOutcome WaitUntilReady(pid_t* pid, const std::function<bool()>& ready, int timeout_ms,
                            int poll_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (ready()) return StartOutcome::kReady;
    int st = 0;
    if (::waitpid(*pid, &st, WNOHANG) == *pid) {
      *pid = -1;
      return StartOutcome::kExited;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
  }
  return StartOutcome::kTimedOut;
}

int SignalAndReap(pid_t pid, int sig) {
  ::kill(pid, sig);
  int st = 0;
  ::waitpid(pid, &st, 0);
  return ExitStatus(st);
}

int ReapWithin(pid_t pid, int ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  int st = 0;
  while (::waitpid(pid, &st, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() >= deadline) return -2;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return ExitStatus(st);
}

}  // namespace loyalty::testing
