// The start-up check of the ledger file (operations.md, a damaged ledger): PRAGMA
// quick_check, run once right after READY=1 on a read connection and a thread of its own.
// It reads every page, seconds for the 1M-entry ledger of bench_startup
// (docs/performance.md), far too long to hold a lane's start (about 75 ms without it). A
// problem latches the ledger damaged (ledger_damaged is logged by the latch), which commits
// and refunds then refuse; the verdict is logged as ledger_checked.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "loyalty/ledger/ledger.h"

namespace loyalty::agent {

class StartupCheck {
 public:
  // Opens the check's connection and starts the check. A connection that cannot be opened
  // is logged (ledger_error, phase quick_check) and no check runs.
  StartupCheck(const std::string& database, const std::string& terminal_id);
  // Stop().
  ~StartupCheck();
  StartupCheck(const StartupCheck&) = delete;
  StartupCheck& operator=(const StartupCheck&) = delete;

  // Stops a check still running (Ledger::Interrupt is safe from another thread while the
  // connection is in use; an interrupted check logs no verdict) and joins its thread.
  // Safe to call twice.
  void Stop();

 private:
  void Run();

  std::unique_ptr<ledger::Ledger> reader_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace loyalty::agent
