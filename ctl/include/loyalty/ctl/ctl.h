// loyaltyctl: the command line store IT and the support desk use on a terminal.
//
// `status`, `sync [--wait]`, `member <id>` and `scan <text>` go through the running
// loyaltyd's POS API (address `api.listen`, bearer token from `api.token_file` of the agent
// config); `checkouts`, `export` and `verify` open the ledger file named by
// `agent.database` read-only, so they work while the daemon is down. docs/loyaltyctl.md is
// the reference for every command, its output and the exit codes below.
//
// Run() is the whole program behind main(): it parses `args` (without the program name),
// writes results to `out` and every error as one line "loyaltyctl: <what>" to `err`, and
// returns the exit status. It reads no global state besides the files and daemon the
// config names, so it may be called more than once in a process (not concurrently: the
// sync progress shares `out`).
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace loyalty::ctl {

// Exit statuses; stable, documented in docs/loyaltyctl.md. Scripts (the sync timer,
// monitoring) branch on them.
enum ExitCode : int {
  kExitOk = 0,
  kExitInternal = 1,      // an unexpected failure (a bug, or output that cannot be written)
  kExitUsage = 2,         // unknown command or option, missing or invalid argument
  kExitConfig = 3,        // the agent config or token file cannot be read or is invalid
  kExitUnreachable = 4,   // loyaltyd does not answer (not running, wrong address, timeout)
  kExitApiError = 5,      // loyaltyd refused the request (4xx: unknown member, bad code, …)
  kExitUnavailable = 6,   // loyaltyd answered 503 (ledger busy, failing or damaged)
  kExitDatabase = 7,      // the ledger file cannot be opened or read
  kExitVerifyFailed = 8,  // verify found problems (each is printed)
  kExitSyncFailed = 9,    // the sync run finished "failed" or did not finish in time
};

struct RunOptions {
  bool out_is_tty = false;  // sync --wait draws a one-line progress only on a terminal
};

int Run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
        const RunOptions& opts = {});

}  // namespace loyalty::ctl
