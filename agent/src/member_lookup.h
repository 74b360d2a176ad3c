// The online look-up of a member this terminal does not hold (hq-and-sync.md, "Download":
// terminals hold their store's members; docs/sync.md, "Members this terminal does not
// hold"). Identify calls it when a scanned card, channel card or dynamic code names a member
// that is not in the ledger: one POST /v1/sync/{tid}/members to HQ within timeout_ms, and
// what HQ sends (the snapshot, the member's identities) goes into the ledger, so the member
// is known from then on, offline too. HQ records that the store asked for the member (the
// request names the store, so this holds before the terminal's first run too): the store's
// other terminals download it at their next run, and this one's runs keep it.
//
// A look-up that fails (HQ unreachable, slow, refusing) falls back to the offline rules at
// once and pauses look-ups for pause_ms, so an offline till waits on HQ at most once a
// minute, never at every scan. Events: member_lookup (found or not, the member id, ms),
// member_lookup_failed (the reason); codes and card numbers only as short hashes.
//
// Thread-safety: Lookup may be called from any thread; look-ups run one at a time.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "loyalty/base/clock.h"
#include "loyalty/base/status.h"
#include "loyalty/checkout/service.h"
#include "loyalty/codes/codes.h"
#include "loyalty/sync/transport.h"
#include "sync_local.h"

namespace loyalty::agent {

struct MemberLookupOptions {
  std::string terminal_id;
  // Named in every request, as hello names it: HQ counts the member in this store's scope
  // even before the terminal's first run (sync/PROTOCOL.md, §6).
  std::string store_id;
  int timeout_ms = 300;      // [hq] lookup_timeout_ms; 0: no look-ups
  int64_t pause_ms = 60000;  // after a failure
};

class MemberLookup {
 public:
  using MakeTransport = std::function<Result<std::unique_ptr<sync::Transport>>()>;
  // `local` and `clock` must outlive the look-up.
  MemberLookup(MemberLookupOptions options, MakeTransport make_transport, SyncLocal& local,
               const Clock& clock);

  // True when HQ answered with the member and it is now in the ledger.
  bool Lookup(const codes::Identified& id);
  // A sale of another terminal (or this one's, for the refunds other terminals made of it),
  // asked of HQ before a refund (docs/pos-api.md, "Returns anywhere"): POST
  // /v1/sync/{tid}/sale within max(timeout_ms, kSaleTimeoutMs) for another terminal's sale,
  // timeout_ms for this terminal's own; the checkout's member goes
  // into the ledger. nullopt: HQ was not asked (paused, look-ups off) or did not answer.
  // Events: sale_fetch (found, refunds elsewhere, ms), sale_fetch_failed (the reason).
  std::optional<checkout::RemoteSale> FetchSale(const std::string& sold_at,
                                                const std::string& checkout_id);
  static constexpr int kSaleTimeoutMs = 1000;
  // A member by phone number (docs/pos-api.md, "Phone look-up"): POST /v1/sync/{tid}/members
  // with the look-up digits within timeout_ms; HQ answers a consenting member, who goes into
  // the ledger. Their id, or nullopt (none, paused, or no answer). Events: member_lookup
  // (kind phone) and member_lookup_failed; never the number.
  std::optional<uint64_t> LookupPhone(const std::string& digits);
  // HQ answered a sync run: look-ups need not wait out a pause.
  void Resume() { paused_until_mono_ms_.store(0); }

 private:
  // One request to HQ, POST /v1/sync/{tid}/{route} within timeout_ms: the body of its 200
  // answer, or why there is none. The caller holds mu_.
  Result<std::string> Ask(std::string_view route, const std::string& body, int timeout_ms);
  // A look-up's answer: at most one member (`member_id` when given), identities of that
  // member only; what HQ sent goes into the ledger.
  Result<sync::MembersResponse> AdoptOne(const std::string& body,
                                         std::optional<uint64_t> member_id);
  // After a failure: look-ups wait pause_ms before asking HQ again.
  void Pause();

  MemberLookupOptions opt_;
  MakeTransport make_transport_;
  SyncLocal& local_;
  const Clock& clock_;
  std::mutex mu_;
  std::atomic<int64_t> paused_until_mono_ms_{0};
};

}  // namespace loyalty::agent
