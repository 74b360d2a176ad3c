// The ledger's single writer: a thread that owns the write connection and runs jobs one
// at a time, in order. Everything that writes the ledger is a job posted here, so SQLite's
// fsync never blocks the event loop and no two transactions ever interleave. When the
// queue is empty after a job the thread checkpoints the WAL if it is due
// (Ledger::UseIdleCheckpoints), so that work never lands inside a checkout's commit.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "loyalty/ledger/ledger.h"

namespace loyalty::checkout {

class LedgerWriter {
 public:
  using Job = std::function<void(ledger::Ledger&)>;

  // Takes ownership of the writer connection; starts the thread.
  explicit LedgerWriter(std::unique_ptr<ledger::Ledger> ledger);
  // Runs the jobs already queued, then joins the thread and closes the connection.
  ~LedgerWriter();

  // Queues a job; returns false once Stop() has begun (the job is not run).
  bool Post(Job job);
  // Stops accepting, runs what is queued, joins. Safe to call twice.
  void Stop();
  size_t queued() const;

 private:
  void Run();

  std::unique_ptr<ledger::Ledger> ledger_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace loyalty::checkout
