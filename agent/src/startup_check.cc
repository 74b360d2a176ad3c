#include "startup_check.h"

#include <chrono>

#include "log.h"

namespace loyalty::agent {

StartupCheck::StartupCheck(const std::string& database, const std::string& terminal_id) {
  if (auto cr = ledger::Ledger::Open(database, ledger::Ledger::Mode::kReader, terminal_id); cr.ok())
    reader_ = std::move(*cr);
  else
    LogEvent(Level::kError, "ledger_error",
             {{"phase", "quick_check"}, {"message", cr.status().message()}});
  if (reader_) thread_ = std::thread([this]() { Run(); });
}

StartupCheck::~StartupCheck() { Stop(); }

void StartupCheck::Stop() {
  if (!thread_.joinable()) return;
  stopping_ = true;
  reader_->Interrupt();
  thread_.join();
}

void StartupCheck::Run() {
  auto started = std::chrono::steady_clock::now();
  auto problems = reader_->CheckIntegrity(/*quick=*/true);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  started);
  if (stopping_) return;  // interrupted by the stop: no verdict
  if (!problems.ok() && problems.status().code() != ErrorCode::kLedgerDamaged) {
    LogEvent(Level::kError, "ledger_error",
             {{"phase", "quick_check"}, {"message", problems.status().message()}});
    return;
  }
  size_t n = problems.ok() ? problems->size() : 1;
  // At its catalogue level whatever the verdict: a failed check also logs ledger_damaged
  // (error), where store IT's alerts look.
  LogEvent(
      Level::kInfo, "ledger_checked",
      {{"check", "quick_check"}, {"ok", n == 0}, {"problems", n}, {"duration_ms", ms.count()}});
}

}  // namespace loyalty::agent
