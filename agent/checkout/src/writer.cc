#include "loyalty/checkout/writer.h"

namespace loyalty::checkout {

LedgerWriter::LedgerWriter(std::unique_ptr<ledger::Ledger> ledger)
    : ledger_(std::move(ledger)), thread_([this] { Run(); }) {}

LedgerWriter::~LedgerWriter() { Stop(); }

bool LedgerWriter::Post(Job job) {
  {
    std::lock_guard<std::mutex> g(mu_);
    if (stopping_) return false;
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
  return true;
}

void LedgerWriter::Stop() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
  if (ledger_) (void)ledger_->CheckpointBeforeClose();
  ledger_.reset();
}

size_t LedgerWriter::queued() const {
  std::lock_guard<std::mutex> g(mu_);
  return jobs_.size();
}

void LedgerWriter::Run() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping and drained
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job(*ledger_);
    // Nothing waiting: a moment to checkpoint the WAL (if due), so no commit pays for it.
    bool idle;
    {
      std::lock_guard<std::mutex> g(mu_);
      idle = jobs_.empty();
    }
    if (idle) ledger_->CheckpointIfDue();
  }
}

}  // namespace loyalty::checkout
