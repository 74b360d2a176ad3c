#include "scans.h"

#include <algorithm>

namespace loyalty::agent {

void ScanHub::Answer(const std::shared_ptr<Waiter>& w) {
  if (!w->respond) return;  // answered already (a timer that fired as a scan arrived)
  auto respond = std::move(w->respond);
  w->respond = nullptr;
  w->timer.cancel();
  waiters_.remove(w);
  respond(Collect(w->after));
}

uint64_t ScanHub::Add(nlohmann::json scan) {
  uint64_t seq = next_seq_++;
  scan["seq"] = seq;
  ring_.push_back(std::move(scan));
  while (ring_.size() > capacity_) ring_.pop_front();
  // Every waiter's cursor is below the new seq: answer them all.
  auto waiting = waiters_;
  for (const auto& w : waiting) Answer(w);
  return seq;
}

nlohmann::json ScanHub::Collect(uint64_t after) const {
  nlohmann::json scans = nlohmann::json::array();
  uint64_t next_after = after;
  for (const auto& s : ring_) {
    uint64_t seq = s["seq"].get<uint64_t>();
    if (seq > after) {
      scans.push_back(s);
      next_after = seq;
    }
  }
  return {{"scans", std::move(scans)}, {"next_after", next_after}};
}

void ScanHub::Poll(uint64_t after, int64_t wait_ms, Respond respond) {
  if (after > last_seq()) after = 0;  // the POS outlived an agent restart
  wait_ms = std::clamp<int64_t>(wait_ms, 0, 30000);
  if (after < last_seq() || wait_ms == 0 || closed_) {
    respond(Collect(after));
    return;
  }
  auto w = std::make_shared<Waiter>(after, std::move(respond), ioc_);
  waiters_.push_back(w);
  w->timer.expires_after(std::chrono::milliseconds(wait_ms));
  w->timer.async_wait([this, w](const boost::system::error_code&) { Answer(w); });
}

void ScanHub::Close() {
  closed_ = true;
  auto waiting = waiters_;
  for (const auto& w : waiting) Answer(w);
}

}  // namespace loyalty::agent
