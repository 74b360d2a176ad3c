// Scan events for the POS: what the agent's own scanners read, identified, kept in a
// bounded in-memory ring and served by GET /v1/scans as a long-poll (pos-api.md).
//
// ScanHub lives on the event-loop thread: every method must be called there (drivers post
// their scans to the loop first). seq starts at 1 and increases by one per scan.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <nlohmann/json.hpp>

namespace loyalty::agent {

class ScanHub {
 public:
  using Respond = std::function<void(nlohmann::json)>;

  ScanHub(boost::asio::io_context& ioc, size_t capacity = 1000) : ioc_(ioc), capacity_(capacity) {}

  // Appends a scan event (seq is assigned here) and answers every waiting long-poll.
  uint64_t Add(nlohmann::json scan);

  // Answers at once if a scan with seq > after exists, else after wait_ms with an empty
  // list or as soon as one arrives. after > last seq issued is treated as 0 (an agent
  // restart). wait_ms is clamped to 0..30000.
  void Poll(uint64_t after, int64_t wait_ms, Respond respond);

  // Answers every waiter (with what there is) and refuses new waits: shutdown.
  void Close();

  uint64_t last_seq() const { return next_seq_ - 1; }
  size_t waiting() const { return waiters_.size(); }

 private:
  struct Waiter {
    uint64_t after;
    Respond respond;  // empty once answered
    boost::asio::steady_timer timer;
    Waiter(uint64_t a, Respond r, boost::asio::io_context& ioc)
        : after(a), respond(std::move(r)), timer(ioc) {}
  };
  void Answer(const std::shared_ptr<Waiter>& w);
  nlohmann::json Collect(uint64_t after) const;

  boost::asio::io_context& ioc_;
  size_t capacity_;
  uint64_t next_seq_ = 1;
  std::deque<nlohmann::json> ring_;
  std::list<std::shared_ptr<Waiter>> waiters_;
  bool closed_ = false;
};

}  // namespace loyalty::agent
