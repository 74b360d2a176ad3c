// Running programs from tests.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

namespace loyalty::testing {

struct ProgramResult {
  int exit = -1;  // the exit status, or 128 + the signal that ended it
  std::string out, err;
};

// Runs `exe` with `args` (no shell), stdout and stderr each to a file of their own (so
// neither is a terminal), and waits for it.
ProgramResult RunProgram(const std::string& exe, const std::vector<std::string>& args);

// The built loyaltyctl (LOYALTY_BINARY_DIR/ctl/loyaltyctl) with `args`.
ProgramResult RunCtl(const std::vector<std::string>& args);

// What `cmd` (through /bin/sh) writes to stdout.
std::string ShellOutput(const std::string& cmd);

// Starts argv[0] (searched on PATH) with argv, stdout and stderr appended to `log_file`,
// `env` ("NAME=value") added to its environment; returns its pid without waiting.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& log_file,
            const std::vector<std::string>& env = {});

// Waits for a program just spawned to become ready: calls `ready` every poll_ms until it
// returns true, at most timeout_ms. kExited: the process ended first (it is reaped and
// *pid set to -1).
enum class StartOutcome { kReady, kExited, kTimedOut };
StartOutcome WaitUntilReady(pid_t* pid, const std::function<bool()>& ready, int timeout_ms,
                            int poll_ms);

// Sends `sig` to pid and reaps it: the exit status, or 128 + the signal that ended it.
int SignalAndReap(pid_t pid, int sig);
// Waits at most ms for pid to end: its exit status as above, or -2 when it still runs.
int ReapWithin(pid_t pid, int ms);

}  // namespace loyalty::testing
