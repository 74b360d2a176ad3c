// What the files of HQ's service share, and no part of loyalty-hq's interface: HqService::Impl
// (the service's state, with every step of its routes and jobs declared under the file that
// defines it) and the few helpers more than one of those files uses. Every request that
// writes runs in one Store transaction, so a failure leaves nothing half done and every
// route can be retried.
//
//   routes.cc          HqService's entry points; paths to routes, the terminal check, the
//                      admin token
//   rules_versions.cc  the rules versions HQ publishes and prices uploads with
//   write_cache.cc     one write transaction (and every timed store transaction) and the
//                      members, lots and history it reads once
//   accounting.cc      points into balances and lots, HQ's own entries, velocity, tiers by spend
//   upload_checks.cc   what HQ trusts of an upload: checkouts priced again, refunds, entries
//   upload.cc          the upload route: records and entries stored, checked, applied; conflicts
//   claims.cc          sign-up claims: a sale's points credited once to the member who joined
//                      with its claim, settled at the sale's upload, taken back by its refunds
//   sync_routes.cc     the other terminal routes: hello, changes, members, fetch, recon
//   admin.cc           the admin API: members, identities, devices, adjustments, coupons,
//                      terminals (one, and the fleet view)
//   jobs.cc            the daily job (expiry, tiers at a new month) and its admin route
//   metrics.cc         what GET /metrics shows: this process's counters, the fleet's gauges
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "loyalty/base/rate_limit.h"
#include "loyalty/base/status.h"
#include "loyalty/codes/enrol_claim.h"
#include "loyalty/codes/return_token.h"
#include "loyalty/hq/service.h"
#include "loyalty/hq/store.h"
#include "loyalty/http/errors.h"
#include "loyalty/http/message.h"
#include "loyalty/model/lot.h"
#include "loyalty/rules/rules.h"
#include "loyalty/sync/messages.h"
#include "metrics.h"

namespace loyalty::hq {

using nlohmann::json;
using sync::Dump;

namespace internal {

inline http::Response JsonResponse(int status, const json& body) {
  http::Response r;
  r.status = status;
  r.body = Dump(body);
  return r;
}

inline http::Response Error(ErrorCode code, std::string_view message) {
  return http::JsonError(code, message);
}

// A Status from the service or the store as the contract's HTTP answer.
inline http::Response FromStatus(const Status& s) { return http::ErrorResponse(s); }

inline int TierRank(const std::string& t) { return t == "black" ? 2 : t == "vip" ? 1 : 0; }

inline int64_t FloorDiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// A terminal whose last sync request was more than this long ago is silent (the fleet
// view's `silent`, loyalty_hq_terminals_silent); one within kActiveWithinMs is active
// (loyalty_hq_terminals_active).
inline constexpr int64_t kSilentAfterMs = 2 * 3600 * 1000;
inline constexpr int64_t kActiveWithinMs = 5 * 60 * 1000;

// Microseconds since `t` on the monotonic clock (durations for metrics).
inline int64_t MicrosSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t)
      .count();
}

}  // namespace internal

// What a process's workers (hq.toml `workers`: one HqService and one store connection each)
// share: its metrics and its per-process limits.
struct ProcessShared {
  internal::HqMetrics metrics;
  std::mutex limits_mu;                                      // guards the two below
  std::map<std::string, std::deque<int64_t>> sale_fetches;   // by terminal, oldest first
  std::map<std::string, std::deque<int64_t>> phone_lookups;  // by terminal, oldest first
};

struct HqService::Impl {
  Store& store;
  const Clock& clock;
  PiiCipher pii;
  HqOptions opt;
  std::shared_ptr<ProcessShared> shared;

  rules::Rules current;  // the chain's current rules (opt.rules or the defaults)
  // The checkouts the upload being applied stored (new to HQ), with their verdicts and the
  // entries of each kind applied for them so far: no entry before this upload can name one
  // (valid during Upload).
  struct BatchCheckout {
    const sync::Checkout* checkout = nullptr;
    bool refused = false;
    std::map<std::string, int64_t> applied;  // by kind
  };
  std::map<std::string, BatchCheckout> batch_checkouts;
  // The upload's own freeze entries and the tier_upgrade entries HQ accepts, by (member,
  // kind), in the upload's order: the checkouts are judged before the entries are stored, and
  // a sale after the terminal's freeze in the same upload was priced frozen (valid during
  // Upload).
  std::map<std::pair<uint64_t, std::string>, std::vector<TerminalMark>> batch_marks;
  // checkout_id -> the seq of the upload's own earn entry for it: where the sale stands in
  // the terminal's chain (valid during Upload).
  std::map<std::string, int64_t> batch_sale_seq;
  // The lowest seq of the upload's own entries that HQ's chain already reaches (the head's
  // seq or below: a restored terminal, or entries sent again); INT64_MAX when none (valid
  // during Upload; BranchBelow).
  int64_t batch_resent_below = std::numeric_limits<int64_t>::max();
  // entry_id -> "" when the month's spend explains the upload's own tier_upgrade entry,
  // else the reason it is refused (UpgradeVerdict; valid during Upload).
  std::map<std::string, std::string> batch_upgrades;
  // (checkout_id, refund_id) -> the lowest seq of the upload's own entries naming the refund
  // (valid during Upload).
  std::map<std::pair<std::string, std::string>, int64_t> batch_refund_seq;
  // refund_id -> the member of its sale, for the refunds this upload stored (valid during
  // Upload): their clawback and restore entries need not look the sale up again.
  std::map<std::string, uint64_t> batch_refund_member;
  // (kind, checkout_id, refund_id, member, points) of the upload's own redeem and clawback
  // entries whose content matches their hash: a checkout that redeemed points, or a refund
  // that takes points back, is judged with the entry carrying them (valid during Upload).
  std::set<std::tuple<std::string, std::string, std::string, uint64_t, int64_t>> batch_carried;
  // checkout_id -> refused, of the upload's checkouts HQ holds (read at once before they are
  // stored, kept current as they are; valid during Upload, nullopt elsewhere).
  std::optional<std::map<std::string, bool>> batch_verdicts;
  // What the store held, before this upload, of its entries' ids and of the terminal's seqs
  // from the lowest seq - 1 to the highest, read in two statements, and every entry the
  // upload stored since (valid during Upload; `batch_seq_lo` > `batch_seq_hi`: not read).
  struct BatchEntries {
    std::map<std::string, sync::Entry> by_id;
    std::map<int64_t, std::vector<sync::Entry>> by_seq;
    int64_t seq_lo = 1, seq_hi = 0;
    bool read = false;
  } batch_entries;
  std::map<std::string, std::shared_ptr<const rules::Rules>> versions;  // published, by version
  bool published = false;
  internal::HqMetrics& metrics;  // this process's counters (metrics.h)
  // What the request being answered, an upload answered 200, gave its entries: status ->
  // entries, as its answer lists them (for the metrics; set by Upload, cleared by Handle).
  std::map<std::string, uint64_t> answered_statuses;

  Impl(Store& s, const Clock& c, PiiCipher p, HqOptions o, std::shared_ptr<ProcessShared> sh)
      : store(s),
        clock(c),
        pii(std::move(p)),
        opt(std::move(o)),
        shared(std::move(sh)),
        current(opt.rules.value_or(rules::Rules::Defaults())),
        metrics(shared->metrics) {}

  // The oldest checkout or look-up that still keeps a member in a store's scope.
  int64_t ScopeSinceMs() const {
    return clock.now_ms() - int64_t{opt.member_scope_months} * 31 * 86'400'000;
  }
  // The member enters (or stays in) the store's scope; a member new to it is touched so
  // that every terminal of the store downloads it at its next run.
  Status ScopeMember(const std::string& store_id, uint64_t member_id, const char* reason,
                     int64_t at_ms);
  // ScopeMember of each (member, at_ms) in turn inside a write, in two statements.
  Status ScopeMembers(const std::string& store_id,
                      const std::vector<std::pair<uint64_t, int64_t>>& members, const char* reason);

  void Report(const char* event, const json& fields) {
    if (opt.on_event) opt.on_event(event, fields);
  }

  // ------------------------------------------------------------------ one write's members
  // (write_cache.cc) A write transaction (Write) reads each member it touches once and keeps it
  // here while its checks and entries change it; each changed member's row and change_seq are
  // written once, when the body has succeeded, in the order of their last
  // change (a checkout and its earn entry used to read the member five times and write it twice).
  // What the checks read of a member's history — lots, recorded states, the uploading
  // terminal's freezes and upgrades (TerminalMarks), its downloads — is read once per write too,
  // and every write the transaction makes to those goes through here and keeps them current, so
  // each answer is the one the store would give at that point. A failed body rolls the transaction
  // back and drops all of it; nothing outlives the transaction.
  struct MemberSlot {
    std::optional<MemberRecord> m;  // nullopt: HQ has no such member (yet)
    // The row as the store holds it (read, or inserted, in this write): a write of m that
    // changes only the ledger's fields is written as those (Store::MemberWrite).
    std::optional<MemberRecord> stored;
    bool write = false;  // UpdateMember at the end
    bool touch = false;  // else TouchMember at the end
    uint64_t order = 0;  // the last write or touch
    std::optional<std::vector<model::Lot>>
        lots;  // as Store::Lots: remaining != 0, by expiry, lot id
    std::optional<std::vector<MemberStateRecord>> states;  // as Store::MemberStateHistory
    // When `lots` is not read: its debts (remaining < 0), as Store::DebtLots.
    std::optional<std::vector<model::Lot>> debts;
    // (at_ms, points) of the applied earn entries with at_ms > earns_after, by at_ms: what
    // ChainVelocity sums its hours from (EarnsAfter) when they start at or after earns_after.
    std::optional<std::vector<std::pair<int64_t, int64_t>>> earns;
    int64_t earns_after = 0;
    // (terminal, kind) -> Store::TerminalMarksOf (stored before this write)
    std::map<std::pair<std::string, std::string>, std::vector<TerminalMark>> marks;
    // The uploading terminal's earn entries for the member, applied ones stored and the
    // upload's own, with at_ms > own_earns_after, by seq: what its velocity rule counted that
    // HQ credits (FrozenByOwnEarnings). Read for an upload's checkouts at once (WarmOwnEarns).
    struct OwnEarn {
      TerminalEarn e;
      bool in_upload = false;  // counted once its checkout, earlier in the upload, is accepted
    };
    std::optional<std::vector<OwnEarn>> own_earns;
    std::string own_earns_of;  // the terminal
    int64_t own_earns_after = 0;
  };
  struct DownloadSpan {  // every moment in [last or -inf, next or +inf) has `last` as its last
                         // download
    std::optional<int64_t> last, next;
  };
  struct WriteCache {
    std::map<uint64_t, MemberSlot> members;
    uint64_t changes = 0;
    std::map<std::string, std::vector<DownloadSpan>> downloads;  // changes pages, by terminal
    // Store::MemberDownloads, by terminal and member
    std::map<std::pair<std::string, uint64_t>, std::vector<int64_t>> member_downloads;
    // Store::FirstForkSeq, by terminal
    std::map<std::string, std::optional<int64_t>> first_fork;
  };
  std::unique_ptr<WriteCache> tx;  // the open write's; nullptr outside one
  Status WarmMembers(const std::string& tid, std::vector<uint64_t> ids);
  Status WarmAccounting(const std::vector<sync::Entry>& entries, const std::string& tid);
  Status WarmOwnEarns(const std::string& tid, const std::vector<sync::Checkout>& checkouts,
                      const std::vector<sync::Entry>& entries);
  Result<std::span<const std::pair<int64_t, int64_t>>> EarnsAfter(
      MemberSlot& s, uint64_t member_id, int64_t after_ms,
      std::vector<std::pair<int64_t, int64_t>>* read);

  // ------------------------------------------------------------------ routes.cc
  http::Response Terminal(const std::string& tid, const std::string& route,
                          const http::Request& req, const std::optional<std::string>& peer);
  bool Authorized(const http::Request& req) const;
  // Constant time; false for an empty token.
  static bool BearerIs(const http::Request& req, const std::string& token);
  http::Response Admin(const std::vector<std::string>& p, const http::Request& req);
  http::Response Handle(const http::Request& req, const std::optional<std::string>& peer);
  http::Response MetricsPage(const http::Request& req);

  // ------------------------------------------------------------------ rules_versions.cc
  Status PublishRules();
  Result<std::shared_ptr<const rules::Rules>> RulesVersion(const std::string& v);

  // ------------------------------------------------------------------ write_cache.cc
  // Store::Transaction, timed for loyalty_hq_store_transaction_duration_seconds: every
  // transaction of the service goes through here (Write included), never store.Transaction.
  Status Transact(const std::function<Status()>& body,
                  const std::vector<std::string>* shared_keys = nullptr);
  Status Write(const std::function<Status()>& body,
               const std::vector<std::string>* shared_keys = nullptr);
  Status FlushMembers();
  Status Forget();
  static Status NoWrite();
  Result<MemberSlot*> Slot(uint64_t member_id);
  Result<MemberSlot*> MemberOrBare(uint64_t member_id);
  Status SaveMember(const MemberRecord& m, const std::string& old_tier,
                    const std::string& old_status);
  Status Touch(uint64_t member_id);
  Status AddState(MemberSlot& s, int64_t at_ms, const std::string& tier, const std::string& status);
  Result<std::vector<std::pair<std::string, std::string>>> StatesBetween(MemberSlot& s,
                                                                         uint64_t member_id,
                                                                         int64_t from_ms,
                                                                         int64_t to_ms);
  // The terminal's entries of a kind for the member, stored and the upload's own (flagged),
  // in no particular order.
  struct Mark {
    TerminalMark m;
    bool in_upload = false;
  };
  Result<std::vector<Mark>> TerminalMarks(MemberSlot& s, const std::string& tid, uint64_t member_id,
                                          const std::string& kind);
  // The seq below which every entry HQ holds of the terminal is on the branch the terminal
  // holds now: its first chain_fork, or the upload's first entry sent again (a restored
  // terminal does not hold the branch it lost).
  Result<int64_t> BranchBelow(const std::string& tid);
  Status InsertEntry(const sync::Entry& e, bool applied, int64_t received_at_ms);
  // What a terminal was sent of a member up to a moment (docs/hq.md, "What the terminal
  // could know"). The member sent alone since the last changes page is an answer the
  // terminal asked for and may never have received (its look-up timed out while HQ
  // answered): it widens what HQ accepts, never narrows it.
  struct KnownDownloads {
    std::optional<int64_t> page;  // the last changes page at or before the moment
    std::vector<int64_t> alone;   // the member sent alone after it, in order
    bool alone_later = false;     // and sent alone after the moment too
    // The latest download, arrived or not.
    std::optional<int64_t> last() const {
      return alone.empty() ? page : std::optional<int64_t>(alone.back());
    }
  };
  Result<KnownDownloads> DownloadsOf(const std::string& tid, uint64_t member_id, int64_t at_ms);
  Result<std::vector<model::Lot>*> LotsOf(MemberSlot& s, uint64_t member_id);
  Status SetLot(MemberSlot& s, int64_t lot_id, int64_t remaining);
  // SetLot(s, id, 0) for every id, in one pass over the slot's lots.
  Status EmptyLots(MemberSlot& s, const std::set<int64_t>& lot_ids);
  Status AddLot(MemberSlot& s, model::Lot lot);

  // ------------------------------------------------------------------ accounting.cc
  int64_t UtcOffset(int64_t t) const;
  std::pair<int64_t, int64_t> MonthBounds(int64_t now_s) const;
  Result<int64_t> MonthSpend(uint64_t member_id, int64_t now_s);
  std::string TierForSpend(int64_t spend) const;
  struct SlotLots;
  Result<bool> BalanceCanTake(uint64_t member_id, int64_t points);
  Status ApplyEntry(const sync::Entry& e);
  Result<sync::Entry> AppendHqEntry(const std::string& kind, uint64_t member_id, int64_t points,
                                    const json& detail);
  Status MaybeUpgradeTier(uint64_t member_id);
  Status ChainVelocity(const sync::Entry& e);

  // ------------------------------------------------------------------ upload_checks.cc
  // The order refunds of one checkout were made in: by time, then, within a millisecond,
  // by their place in the terminal's chain (the lowest seq of their clawback or restore,
  // stored or in this upload), as the terminal computed each against the ones before it;
  // a refund that moved no points is not in the chain and comes after, then by id.
  using RefundOrder = std::tuple<int64_t, int64_t, std::string>;
  // Where FrozenByOwnEarnings starts counting for a sale at commit_ms: after the member's
  // latest unfreeze, and an hour before its look-back (kOwnEarningsLookBackMs).
  static int64_t OwnEarnsFrom(int64_t unfrozen_at_ms, int64_t commit_ms);
  Result<bool> FrozenByOwnEarnings(const std::string& tid, uint64_t member_id, int64_t commit_ms,
                                   const rules::Rules& r, MemberSlot& slot);
  Result<std::vector<std::pair<std::string, bool>>> CandidateStates(
      const std::string& tid, uint64_t member_id, int64_t commit_ms,
      std::optional<int64_t> sale_seq, const rules::Rules& r, MemberSlot& slot,
      bool earns_or_redeems, bool* frozen_by_terminal);
  static bool SamePricing(const rules::Quote& q, const sync::Checkout& c);
  Result<std::string> CheckCheckout(const std::string& tid, const sync::Checkout& c);
  Result<std::map<std::string, int64_t>> RefundSeqs(const std::string& tid,
                                                    const std::string& checkout_id);
  static RefundOrder OrderOf(const sync::Refund& r, const std::map<std::string, int64_t>& seqs);
  // "" when the refund checks; else the reason it is refused. *other_terminal: the other
  // terminal whose refund of the same units came first (refund_reused), "" otherwise;
  // *member: the member of the sale, 0 for none or no sale (one look-up of the sale serves
  // the refund's check, its storing and its entries'); *correction: the points HQ adds to
  // the member (signed) so that the sale's claw-back and restore come out exact, when the
  // terminal computed them without another terminal's refund of the sale, 0 otherwise.
  Result<std::string> CheckRefund(const std::string& tid, const sync::Refund& f,
                                  std::string* other_terminal, uint64_t* member,
                                  int64_t* correction);
  Result<std::string> CheckEntry(const std::string& tid, const sync::Entry& e);
  // The rules an entry's sale was priced with: the version its checkout names (`sale` when
  // the caller holds it, else HQ's record of the terminal's checkout `checkout_id`); the
  // current rules without a sale, or for a version HQ does not know.
  Result<const rules::Rules*> RulesOfSale(const std::string& tid, const std::string& checkout_id,
                                          const sync::Checkout* sale);
  // The same, but nullptr where RulesOfSale falls back to the current rules.
  Result<const rules::Rules*> KnownRulesOfSale(const std::string& tid,
                                               const std::string& checkout_id,
                                               const sync::Checkout* sale);
  // "" when the terminal's provisional upgrade `e` follows from the member's spend as HQ
  // and the upload `up` know it (loyalty-rules.md, "Tiers"), else the reason it is refused.
  // Called before the upload's checkouts are stored (batch_verdicts read).
  Result<std::string> UpgradeVerdict(const std::string& tid, const sync::Entry& e,
                                     const sync::UploadRequest& up);

  // ------------------------------------------------------------------ returns.cc
  // The sale a refund is of: HQ's record of the checkout at the selling terminal (sold_at,
  // or the refunding terminal's own), or the receipt's verified return token while HQ has
  // no record; `reason` is why there is none (checkout_unknown, checkout_refused,
  // receipt_invalid, receipt_mismatch).
  struct Sale {
    std::string sold_at;
    std::optional<sync::Checkout> checkout;
    bool from_token = false;
    std::string reason;
    uint64_t refused_member = 0;  // a refused checkout's member (its refunds concern them)
  };
  Result<Sale> SaleOf(const std::string& tid, const sync::Refund& f);
  codes::ReceiptKeyCache receipt_certs;
  std::map<int, std::string> PublicKeys() const;
  http::Response SaleRoute(const std::string& tid, const http::Request& req);
  // Sales one terminal may ask for in any trailing hour (per process): a till cannot walk
  // the chain's sales and members through the sale route (docs/hq.md).
  static constexpr size_t kSaleFetchesPerHour = 120;
  bool AllowSaleFetch(const std::string& tid, int64_t now_ms);  // shared->sale_fetches
  http::Response ReceiptKey(const std::string& tid, const http::Request& req);
  http::Response RefundsByCashier(const http::Request& req);

  // ------------------------------------------------------------------ claims.cc
  // Sign-up claims (docs/hq.md, "Claims"). The claim text verified by HQ's clock and keys,
  // and within the current rules' refund window: the code_* errors.
  Result<codes::EnrolClaim> VerifyClaim(const std::string& text);
  // Inside a Write: records the member's claim of the sale; judged at once when HQ holds the
  // sale (credited, or the error: claim_used, checkout_has_member, checkout_refunded,
  // claim_refused), pending otherwise.
  Result<ClaimRecord> RecordClaim(const codes::EnrolClaim& claim, uint64_t member_id);
  // Inside the upload's Write, after its records: the terminal's pending claims of the sales
  // HQ now holds, credited or refused.
  Status SettleClaims(const std::string& tid);
  // Inside the upload's Write, after it accepted a refund of the sale (sold_at, checkout_id):
  // what a credited claim of the sale gives back so far.
  Status ClawBackClaim(const std::string& sold_at, const std::string& checkout_id,
                       const std::string& refund_id);
  // "" when the claim may be credited from the sale as HQ holds it; else why not.
  Result<std::string> JudgeClaim(const ClaimRecord& c, const sync::Checkout& co);
  Status CreditClaim(ClaimRecord& c, const sync::Checkout& co);
  static json ClaimJson(const ClaimRecord& c);
  void ReportClaimRecorded(const ClaimRecord& c);
  // claim_refused for the claim's own refusals (a code_* or claim error), nothing else.
  void ReportClaimRefused(const codes::EnrolClaim* claim, uint64_t member_id, const Status& why);
  http::Response AddClaim(const std::string& id_text, const http::Request& req);
  http::Response MemberClaims(const std::string& id_text);

  // ------------------------------------------------------------------ upload.cc
  Status Conflict(const std::string& kind, const std::string& tid, const std::string& other,
                  uint64_t member, const json& detail, const std::string& key);
  Status ReadBatchEntries(const std::string& tid, const std::vector<sync::Entry>& entries);
  Result<std::string> UploadOne(const std::string& tid, const sync::Entry& e, TerminalRecord* term,
                                int64_t now_ms);
  Status RefuseRecord(const std::string& tid, uint64_t member, const char* what,
                      const std::string& id, const std::string& reason,
                      const json& more = json::object(), const std::string& other = "");
  Status StoreCheckout(const std::string& tid, const sync::Checkout& c);
  http::Response Upload(const std::string& tid, const http::Request& req);
  static std::vector<std::string> UploadLockKeys(const std::string& tid,
                                                 const sync::UploadRequest& up);

  // ------------------------------------------------------------------ sync_routes.cc
  // What a terminal of store `store_id` may know of the member: for a member who consented
  // to phone look-up, phone_hash is the store-keyed look-up hash (docs/pos-api.md, "Phone
  // look-up"), else "".
  // `page`: the lots and month spends of a whole page, read at once (SnapshotPage); without
  // it they are read for this member.
  struct SnapshotPage {
    std::map<uint64_t, std::vector<model::Lot>> lots;
    std::map<uint64_t, int64_t> month_spend;
    std::map<uint64_t, std::vector<sync::HqEntry>> hq_entries;
  };
  Result<SnapshotPage> ReadSnapshotPage(const std::vector<uint64_t>& member_ids);
  // A changes page's size budget (the terminal refuses an answer over 8 MiB) and the
  // estimate of a snapshot's encoded bytes: its fixed fields and identities, each lot
  // ({"remaining","expires_at_s"}: ~40 bytes), each HQ entry (~300).
  static constexpr size_t kPageBudget = size_t{6} << 20;
  static constexpr size_t kSnapshotBaseBytes = 1024, kSnapshotLotBytes = 48,
                          kSnapshotHqEntryBytes = 320;
  // at_ms: the download's instant, recorded with it (snapshot_at_s is its second).
  Result<sync::Snapshot> Snapshot(const MemberRecord& m, int64_t terminal_seq,
                                  const std::string& store_id, int64_t at_ms,
                                  const SnapshotPage* page = nullptr);
  // The store phone look-up key number in force at `now_s` (hq.toml phone_key_days).
  int64_t PhoneKeyId(int64_t now_s) const;
  // Online phone look-ups one terminal may make in any trailing hour (per process).
  static constexpr size_t kPhoneLookupsPerHour = 60;
  bool AllowPhoneLookup(const std::string& tid, int64_t now_ms);  // shared->phone_lookups
  Result<TerminalRecord> TouchTerminal(const std::string& tid, const std::string* store_id);
  http::Response Hello(const std::string& tid, const http::Request& req);
  http::Response Changes(const std::string& tid, const http::Request& req);
  http::Response Recon(const std::string& tid, bool entries, const http::Request& req);
  http::Response Fetch(const std::string& tid, const http::Request& req);
  http::Response Members(const std::string& tid, const http::Request& req);
  http::Response Evicted(const std::string& tid, const http::Request& req);

  // ------------------------------------------------------------------ admin.cc
  Result<json> AdminBody(const http::Request& req);
  Status CheckIdentityFree(const std::string& channel, const std::string& external_id,
                           uint64_t member_id);
  http::Response CreateMember(const http::Request& req);
  Result<MemberRecord> RequireMember(const std::string& id_text);
  http::Response AddIdentity(const std::string& id_text, const http::Request& req);
  http::Response CertifyDevice(const std::string& id_text, const http::Request& req);
  http::Response RevokeDevice(const std::string& pk_text);
  http::Response MemberView(const std::string& id_text);
  http::Response Adjust(const std::string& id_text, const http::Request& req);
  http::Response Unfreeze(const std::string& id_text, const http::Request& req);
  http::Response SetTier(const std::string& id_text, const http::Request& req);
  http::Response SetPhoneConsent(const std::string& id_text, const http::Request& req);
  http::Response CreateCoupon(const http::Request& req);
  http::Response TerminalView(const std::string& tid);
  http::Response TerminalList(const http::Request& req);

  // ------------------------------------------------------------------ jobs.cc
  Result<ExpiryReport> DailyJobs(int64_t now_s);
  http::Response Expire(const http::Request& req);
};

}  // namespace loyalty::hq
