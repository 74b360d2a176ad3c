// The reconciliation protocol as pure message exchange: bytes in, bytes out. The transport
// (HTTPS to HQ) carries each message as one request or response body. Wire format:
// sync/PROTOCOL-recon.md.
//
// The initiator (the terminal) learns the whole difference; the responder (HQ) is stateless:
// every request is answered from its store alone, so requests may be retried or sent to
// another HQ process.
//
//   Initiator ini(my_store);
//   auto msg = ini.Start();                          // HELLO
//   while (msg) { reply = transport(*msg);           // one round trip
//                 next = ini.Next(reply, &have, &need, &mismatched);
//                 if (!next.ok()) fail; msg = *next; }
//
// Typical cost at N = 1M: in sync, 1 round trip of ~25 bytes; d = 1, 1 round trip of
// ~400 bytes; d = 10 to 1000, 2 round trips of ~40 bytes per difference.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "loyalty/base/status.h"
#include "loyalty/recon/recon.h"

namespace loyalty::recon {

// Not thread-safe. `store` must outlive the Initiator and must not change during the
// exchange (the ledger's single writer runs the exchange, or the exchange is retried).
class Initiator {
 public:
  explicit Initiator(const FingerprintStore& store);
  ~Initiator();
  Initiator(const Initiator&) = delete;
  Initiator& operator=(const Initiator&) = delete;

  // The first message (HELLO: item count and root fingerprint). Fails only if the store
  // cannot be read.
  Result<std::string> Start();

  // Consumes the responder's reply to the last message. Returns the next message to send,
  // or nullopt when the exchange is complete; then the three vectors get (appended, each
  // sorted) the 16-byte ids
  //   have_ids:       in our set, not in theirs;
  //   need_ids:       in theirs, not in ours;
  //   mismatched_ids: in both with different content hashes (a conflict).
  // Any malformed or inconsistent reply fails with bad_request and ends the exchange
  // (start a new Initiator to retry) — except symbols of a later round that do not decode
  // with the earlier ones (the responder's set changed between them): then the items are
  // listed instead (relisted()), once.
  Result<std::optional<std::string>> Next(std::string_view reply,
                                          std::vector<std::string>* have_ids,
                                          std::vector<std::string>* need_ids,
                                          std::vector<std::string>* mismatched_ids);

  // Figures for the sync-run record and the benchmarks.
  int round_trips() const { return round_trips_; }
  uint64_t bytes_sent() const { return bytes_sent_; }
  uint64_t bytes_received() const { return bytes_received_; }
  // True if the difference was too large for coded symbols and items were listed.
  bool listed_items() const { return listing_; }
  // True if the coded attempt was dropped for a listing because later symbols did not decode.
  bool relisted() const { return relisted_; }

 private:
  struct Decoder;
  Result<std::optional<std::string>> OnDiffer(std::string_view body);
  Result<std::optional<std::string>> OnSymbols(std::string_view body);
  Result<std::optional<std::string>> OnItems(std::string_view body);
  // After peeling: either finish or ask for more symbols or switch to listing.
  Result<std::optional<std::string>> Continue();
  std::string GetItems();
  Result<std::optional<std::string>> Relist();
  Status Fail(Status s);

  enum class State { kIdle, kHello, kSymbols, kItems, kDone, kFailed };

  const FingerprintStore& store_;
  State state_ = State::kIdle;
  std::unique_ptr<Decoder> dec_;
  int round_trips_ = 0;
  uint64_t bytes_sent_ = 0;
  uint64_t bytes_received_ = 0;
  bool listing_ = false;
  bool relisted_ = false;
  std::vector<std::string> have_, need_, mismatched_;
};

// Stateless: each Reply depends only on the message and the store. `store` must outlive the
// Responder. Thread-safety is the store's: a Responder over a MemoryStore may serve several
// threads only if nobody writes the store meanwhile.
class Responder {
 public:
  explicit Responder(const FingerprintStore& store) : store_(store) {}
  // The reply to one initiator message; bad_request for anything malformed, out of range or
  // of another protocol version; internal if the store cannot be read.
  Result<std::string> Reply(std::string_view msg) const;

 private:
  const FingerprintStore& store_;
};

}  // namespace loyalty::recon
