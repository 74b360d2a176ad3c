// HQ's storage, behind an interface so that a PostgreSQL backend can follow the SQLite one.
//
// The Store holds rows; every decision (hash checks, chain checks, lots, tiers, conflicts)
// is the service's (service.h). All writes of one request happen inside one Transaction():
// a failure anywhere rolls every write back, including the reconciliation sets'.
//
// Invariants the backend enforces itself:
//   - entry ids are unique in the database (a UNIQUE constraint): InsertEntry of an id
//     already present fails with code `constraint` and changes nothing;
//   - (channel, external_id) identities, card numbers, coupon ids, adjustment ids and
//     (terminal, checkout id) / (terminal, refund id) are unique the same way;
//   - every write that changes what a terminal's snapshot of a member shows goes through
//     TouchMember, which gives the member the next value of the global change sequence
//     (the cursor of `GET changes`); coupons and revocations take values of the same
//     sequence.
//
// Names, phones and birthdays arrive here already encrypted (pii.h): the Store never sees
// them in clear.
//
// Thread-safety: none. One Store per thread (HQ runs every request on its event loop).
// Several processes may share one PostgreSQL database (OpenPgStore below).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "loyalty/base/status.h"
#include "loyalty/model/lot.h"
#include "loyalty/recon/recon.h"
#include "loyalty/sync/messages.h"

namespace loyalty::hq {

struct MemberRecord {
  uint64_t member_id = 0;
  std::string name_enc, phone_enc, birthday_enc;  // AES-256-GCM blobs; empty when none
  std::optional<std::string> display_name;        // masked
  std::optional<std::string> phone_masked;
  std::string phone_hash;  // hex keyed hash, "" when no phone
  int birthday_month = 0;
  std::string card_number;
  std::string tier = "member";
  std::string status = "active";
  std::string frozen_reason;
  int64_t unfrozen_at_ms = 0;
  int64_t balance = 0;
  int64_t created_at_ms = 0;
  int64_t change_seq = 0;  // set by the store
  // The member agreed to be found by phone number at the till (docs/pos-api.md, "Phone
  // look-up"): without it terminals get no look-up hash and HQ answers no phone look-up.
  bool phone_lookup_consent = false;
  bool operator==(const MemberRecord&) const = default;
};

struct MemberStateRecord {
  int64_t at_ms = 0;
  std::string tier, status;
  bool operator==(const MemberStateRecord&) const = default;
};

// Where one of a terminal's freeze or tier_upgrade entries for a member stands: its time and
// its place in the terminal's chain (Store::TerminalMarksOf).
struct TerminalMark {
  int64_t at_ms = 0, seq = 0;
  bool operator==(const TerminalMark&) const = default;
};

// One of a terminal's applied earn entries for a member (Store::TerminalEarnsOf).
struct TerminalEarn {
  int64_t at_ms = 0, seq = 0, points = 0;
  std::string checkout_id;
  bool operator==(const TerminalEarn&) const = default;
};

struct ConflictRecord {
  std::string kind;  // chain_fork | chain_gap | entry_mismatch | code_reused | coupon_reused |
                     // entry_refused (hq-and-sync.md's kinds, and no other)
  int64_t at_ms = 0;
  std::string terminal_id;        // the terminal whose upload revealed it
  std::string other_terminal_id;  // the other terminal involved, "" when none
  uint64_t member_id = 0;         // 0 when none
  std::string detail;             // compact JSON object
  std::string dedupe_key;         // the same conflict is recorded once
};

struct TerminalRecord {
  std::string terminal_id;
  std::string store_id;
  int64_t first_seen_ms = 0;
  int64_t last_sync_ms = 0;
  int64_t head_seq = 0;   // seq of the last entry uploaded (the branch it last sent)
  std::string head_hash;  // its hash, hex
};

// A terminal as the fleet view shows it (GET /v1/terminals): its row and the counts the
// terminal view computes one by one.
struct TerminalSummary {
  TerminalRecord terminal;
  int64_t entries = 0;          // its entries HQ holds (CountEntries)
  int64_t checkouts = 0;        // its checkouts (CountCheckouts)
  int64_t conflicts = 0;        // conflicts naming it on either side (ConflictsOfTerminal)
  int64_t chain_conflicts = 0;  // chain_fork, chain_gap and entry_mismatch its uploads revealed
};

// Which terminals ListTerminals returns: by terminal id, after `after`, at most `limit`.
struct TerminalFilter {
  std::string store_id;                     // "": every store
  std::optional<int64_t> synced_before_ms;  // only last_sync_ms < this
  std::optional<int64_t> synced_since_ms;   // only last_sync_ms >= this
  std::string after;                        // terminal ids greater than this ("": from the first)
  int64_t limit = 100;
};

// What /metrics reads from the database, the same in every process that shares it.
struct FleetCounts {
  int64_t terminals = 0;                     // every terminal HQ has seen
  int64_t synced_since = 0;                  // last_sync_ms >= the time asked
  int64_t synced_before = 0;                 // last_sync_ms < the time asked
  std::map<std::string, int64_t> conflicts;  // by kind
};

struct CouponRecord {
  sync::Coupon coupon;    // `used` derived from used_by_checkout
  std::string body_hash;  // of the admin request, for idempotency
  std::string used_by_terminal, used_by_checkout;
  int64_t change_seq = 0;
};

struct DeviceRecord {
  std::string device_public_key;  // base64url
  uint64_t member_id = 0;
  int key_id = 0;
  int64_t not_after_s = 0;
  int64_t issued_at_ms = 0;
};

struct AdjustmentRecord {
  std::string adjustment_id;
  uint64_t member_id = 0;
  int64_t points = 0;
  std::string reason;
  std::string entry_id;
  int64_t at_ms = 0;
};

// A sign-up claim (docs/hq.md, "Claims"): a member's claim to the points of a sale made
// without a member, one per sale (the selling terminal and its checkout id).
struct ClaimRecord {
  std::string terminal_id, checkout_id;  // the sale, as the claim names it
  uint64_t member_id = 0;
  int64_t committed_at_ms = 0;  // the sale's time, as the claim says
  int64_t expires_at_s = 0;     // the claim's expiry
  int64_t claimed_at_ms = 0;    // HQ's clock when it was recorded
  std::string status;           // "pending" (HQ has no record of the sale yet), "credited",
                                // "refused"
  std::string reason;           // refused: why (docs/hq.md lists the reasons)
  int64_t points = 0;           // credited: the points
  std::string entry_id;         // credited: HQ's `adjust` entry, "" for 0 points
  int64_t credited_at_ms = 0;   // credited or refused: when
  int64_t clawed_back = 0;      // of the points, taken back since by refunds of the sale
  bool operator==(const ClaimRecord&) const = default;
};

// One row of the refunds-by-cashier view.
struct CashierRefunds {
  std::string cashier_id;  // "" when the POS named none
  std::string terminal_id, store_id;
  int64_t refunds = 0, refund_cents = 0;
  int64_t refused = 0;         // of them, refused by HQ (refund_reused among them)
  int64_t other_terminal = 0;  // of them, of a checkout sold at another terminal
};

// The most keys a SharedTransaction locks (see there).
inline constexpr size_t kMaxSharedWriteKeys = 512;

class Store {
 public:
  virtual ~Store() = default;

  // Runs body inside one write transaction; commits when it returns ok, rolls back
  // otherwise (and returns its status). Not reentrant.
  virtual Status Transaction(const std::function<Status()>& body) = 0;

  // A write that may run beside other such writes (docs/hq.md, "Writers in parallel"): on
  // PostgreSQL it holds the writer lock shared — every Transaction() still waits for it, and
  // it for every Transaction() — and then, before body runs, an exclusive lock on each of
  // `keys` (strings naming what the write will change: a terminal, a member, a coupon, a
  // code), all taken in one statement in one global order, so that two such writes never
  // wait for each other in a cycle. What two writes with disjoint keys both change beyond
  // their keys — the change sequence, HQ's own chain — is taken by the first statement that
  // needs it (NextChange, LockHqChain) and held to the commit; the reconciliation sets are
  // written but not folded (FoldSets folds them in an exclusive transaction). On SQLite, one
  // writer at a time: Transaction(body).
  // More than kMaxSharedWriteKeys distinct keys and the write runs exclusively instead: each
  // key is an entry in PostgreSQL's shared lock table (max_locks_per_transaction ×
  // max_connections entries, 6,400 by default), which a few uploads of thousands of records
  // would fill ("out of shared memory", the upload failing again at every retry).
  virtual Status SharedTransaction(const std::vector<std::string>& keys,
                                   const std::function<Status()>& body) = 0;
  // In a SharedTransaction, waits for and takes what a write to HQ's own chain (HqHead, then
  // an entry at the next seq) needs to itself until the commit; elsewhere nothing to do.
  virtual Status LockHqChain() = 0;
  // Whether a SharedTransaction runs beside others (PostgreSQL) or alone (SQLite).
  virtual bool WritesInParallel() const = 0;
  // In a SharedTransaction, waits for and takes the locks of more keys (found by a read in
  // it: a `changes` page's members), in one statement in the same global order; elsewhere
  // nothing to do. The caller bounds them (kMaxSharedWriteKeys with the transaction's own).
  // Taken after the transaction's own keys, so a write holding one of those and waiting for
  // one of these can meet a write doing the opposite: PostgreSQL then fails one of them
  // (deadlock_detected: unavailable, and the terminal's run retries).
  virtual Status LockKeys(const std::vector<std::string>& keys) = 0;
  // Whether the terminal's reconciliation sets have journals to fold (FoldSets would fold
  // one): read outside a transaction, so that a write that would fold runs exclusively.
  virtual Result<bool> SetsFoldDue(const std::string& terminal_id) = 0;
  // Folds the terminal's reconciliation sets (entries, balances) when their journals have
  // grown past the auto-fold size. For an exclusive Transaction (a SharedTransaction never
  // folds); on SQLite, where every write is exclusive, the sets fold on their own.
  virtual Status FoldSets(const std::string& terminal_id) = 0;

  // --- members and identities
  virtual Status InsertMember(const MemberRecord& m) = 0;  // constraint if the id exists
  // Replaces every field of an existing member and gives it a new change_seq.
  virtual Status UpdateMember(const MemberRecord& m) = 0;
  virtual Result<std::optional<MemberRecord>> GetMember(uint64_t member_id) = 0;
  // The members of these ids HQ has (any order), in one statement per 1,000.
  virtual Result<std::vector<MemberRecord>> GetMembers(const std::vector<uint64_t>& ids) = 0;
  // Gives the member a new change_seq (it will be in the next `changes` page).
  virtual Status TouchMember(uint64_t member_id) = 0;
  // What UpdateMember (write) or TouchMember (!write, the record's id only) of each in turn
  // does — change_seq values in this order — in a few statements for the lot.
  // With `stored` (the row as the store holds it, read earlier in the transaction), a write
  // whose record differs from it only in the ledger's fields (balance, tier, status,
  // frozen_reason, unfrozen_at_ms) writes only those: the PII blobs, names and card number are
  // left as the row has them, not sent back.
  struct MemberWrite {
    const MemberRecord* m = nullptr;
    bool write = true;
    const MemberRecord* stored = nullptr;
  };
  virtual Status UpdateMembers(const std::vector<MemberWrite>& writes) = 0;
  virtual Result<std::optional<uint64_t>> FindIdentity(const std::string& channel,
                                                       const std::string& external_id) = 0;
  // The members whose chain-keyed phone hash is `phone_hash` and who consented to phone
  // look-up, by id (at most `limit`).
  virtual Result<std::vector<uint64_t>> ConsentingMembersByPhoneHash(const std::string& phone_hash,
                                                                     int64_t limit) = 0;
  virtual Status PutIdentity(const std::string& channel, const std::string& external_id,
                             uint64_t member_id) = 0;
  virtual Result<std::vector<sync::Identity>> IdentitiesOf(uint64_t member_id) = 0;
  // The identities of each member in turn, as IdentitiesOf of each (one statement per 1,000).
  virtual Result<std::vector<sync::Identity>> IdentitiesOfMembers(
      const std::vector<uint64_t>& member_ids) = 0;
  // Members with member_id > after, by member_id, at most limit: every member once, however
  // the pages' members change meanwhile (a walk of the whole chain: the monthly tiers).
  virtual Result<std::vector<MemberRecord>> MembersAfter(uint64_t after, int64_t limit) = 0;
  virtual Result<int64_t> MaxChangeSeq() = 0;

  // --- entries (terminals' and HQ's own, terminal_id "_hq")
  // constraint on a duplicate id. `applied` false: an entry HQ refused ("What HQ trusts"):
  // stored once, in its terminal's chain and set, counted by no balance or sum below.
  // `received_at_ms`: HQ's clock when it arrived (what a snapshot sent later could count).
  virtual Status InsertEntry(const sync::Entry& e, bool applied, int64_t received_at_ms) = 0;
  Status InsertEntry(const sync::Entry& e) { return InsertEntry(e, true, 0); }
  // The stored entries of these ids (those HQ has; any order), in one statement per 1,000.
  virtual Result<std::vector<sync::Entry>> EntriesByIds(const std::vector<std::string>& ids) = 0;
  // The terminal's entries with lo <= seq <= hi, by seq then entry id.
  virtual Result<std::vector<sync::Entry>> TerminalEntriesBetween(const std::string& terminal_id,
                                                                  int64_t lo, int64_t hi) = 0;
  virtual Result<std::optional<sync::Entry>> GetEntry(const std::string& entry_id) = 0;
  virtual Result<std::vector<sync::Entry>> EntriesAtSeq(const std::string& terminal_id,
                                                        int64_t seq) = 0;
  virtual Result<int64_t> CountEntries(const std::string& terminal_id) = 0;
  virtual Result<int64_t> CountMemberEntries(uint64_t member_id) = 0;
  virtual Result<int64_t> SumMemberPoints(uint64_t member_id) = 0;  // applied entries only
  // What a terminal could know of a member's available balance at at_s: Σ points of the
  // member's applied entries HQ had received by download_ms (its last snapshot) plus Σ
  // points of this terminal's own entries for the member received after it (applied or not:
  // the terminal counts them) with seq < before_seq, other than those of exclude_checkout
  // (a checkout's own earn does not pay for its redemption); less the lots those entries
  // created that are expired at at_s (at_s > expires_at_s: a terminal leaves them out of
  // the available balance), with what remains of them, and less HQ's expire entries
  // received after download_ms that emptied lots already expired at at_s (as_of_s <= at_s).
  // `overflow` when the sum leaves int64.
  virtual Result<int64_t> KnownBalance(uint64_t member_id, const std::string& terminal_id,
                                       int64_t download_ms, int64_t before_seq,
                                       const std::string& exclude_checkout, int64_t at_s) = 0;
  // Σ points of the member's applied earn entries with from_ms < at_ms <= to_ms.
  virtual Result<int64_t> EarnedBetween(uint64_t member_id, int64_t from_ms, int64_t to_ms) = 0;
  // (at_ms, points) of each of these members' applied earn entries with at_ms > after_ms,
  // by at_ms (what EarnedBetween sums), in one statement per 1,000.
  virtual Result<std::map<uint64_t, std::vector<std::pair<int64_t, int64_t>>>> AppliedEarnsAfter(
      const std::vector<uint64_t>& member_ids, int64_t after_ms) = 0;
  // Applied entries of a kind that name this checkout (and refund, when not "").
  virtual Result<int64_t> CountAppliedEntries(const std::string& terminal_id,
                                              const std::string& checkout_id,
                                              const std::string& refund_id,
                                              const std::string& kind) = 0;
  // When HQ received the terminal's first entry for the member (any kind, applied or not):
  // when its own sales first made HQ hold the member there. nullopt when it has none.
  virtual Result<std::optional<int64_t>> FirstEntryReceivedAt(const std::string& terminal_id,
                                                              uint64_t member_id) = 0;
  // The terminal's entries of these kinds for each of these members (applied or not, but
  // tier_upgrade applied only: a refused one promotes no one), by (member, kind), in seq
  // order: the first one and the latest kMaxTerminalMarks (a till that writes more of a kind
  // for one member has the ones between left out), in one statement per 1,000 members.
  static constexpr size_t kMaxTerminalMarks = 64;
  virtual Result<std::map<std::pair<uint64_t, std::string>, std::vector<TerminalMark>>>
  TerminalMarksOf(const std::string& terminal_id, const std::vector<uint64_t>& member_ids,
                  const std::vector<std::string>& kinds) = 0;
  // The latest at_ms of the terminal's entries of this kind for the member (applied or not)
  // with seq < before_seq: what its own ledger held before that entry. nullopt: none.
  virtual Result<std::optional<int64_t>> LastTerminalEntryAt(const std::string& terminal_id,
                                                             uint64_t member_id,
                                                             const std::string& kind,
                                                             int64_t before_seq) = 0;
  // refund_id -> the lowest seq of the terminal's entries naming that refund of the checkout
  // (its clawback and restore): where each refund stands in the terminal's chain.
  virtual Result<std::map<std::string, int64_t>> RefundEntrySeqs(
      const std::string& terminal_id, const std::string& checkout_id) = 0;
  virtual Result<std::vector<sync::Entry>> TerminalEntriesByIds(
      const std::string& terminal_id, const std::vector<std::string>& ids) = 0;
  // Σ points of the terminal's earn entries for the member (applied or not) with
  // after_ms < at_ms <= until_ms and seq < before_seq: what its velocity rule counted.
  virtual Result<int64_t> TerminalEarnedBetween(const std::string& terminal_id, uint64_t member_id,
                                                int64_t after_ms, int64_t until_ms,
                                                int64_t before_seq) = 0;
  // The terminal's applied earn entries for each of these members that has some, with
  // at_ms > after_ms, by at_ms then seq, in one statement per 1,000 members: the part of what
  // its velocity rule counted that HQ credited (HqService's frozen-by-its-own-earnings check).
  virtual Result<std::map<uint64_t, std::vector<TerminalEarn>>> TerminalEarnsOf(
      const std::string& terminal_id, const std::vector<uint64_t>& member_ids,
      int64_t after_ms) = 0;
  // The lowest seq at which HQ recorded a chain_fork of the terminal (two entries at one
  // seq: a restore from an older backup); nullopt when none.
  virtual Result<std::optional<int64_t>> FirstForkSeq(const std::string& terminal_id) = 0;
  // HQ's own chain head (seq, raw hash).
  virtual Result<std::pair<int64_t, std::string>> HqHead() = 0;
  // HQ's own entries (terminal_id "_hq") of each of these members that has some, newest
  // first, at most `per_member` each, in one statement per 1,000 members: what a snapshot
  // carries for the terminal to show (sync::Snapshot::hq_entries).
  virtual Result<std::map<uint64_t, std::vector<sync::HqEntry>>> HqEntriesOfMembers(
      const std::vector<uint64_t>& member_ids, size_t per_member) = 0;

  // --- lots
  virtual Result<std::vector<model::Lot>> Lots(uint64_t member_id) = 0;  // by expiry, then lot_id
  // Lots of each of these members (absent: none open), in one statement per 1,000.
  virtual Result<std::map<uint64_t, std::vector<model::Lot>>> LotsOfMembers(
      const std::vector<uint64_t>& member_ids) = 0;
  // The lots of Lots() with remaining < 0 (a debt), in the same order.
  virtual Result<std::vector<model::Lot>> DebtLots(uint64_t member_id) = 0;
  // DebtLots of each of these members that has one, in one statement per 1,000.
  virtual Result<std::map<uint64_t, std::vector<model::Lot>>> DebtLotsOfMembers(
      const std::vector<uint64_t>& member_ids) = 0;
  virtual Result<int64_t> AddLot(const model::Lot& lot) = 0;
  virtual Status SetLotRemaining(int64_t lot_id, int64_t remaining) = 0;
  // Members holding lots with remaining > 0 that expired before now_s (expires_at_s < now_s).
  virtual Result<std::vector<uint64_t>> MembersWithExpiredLots(int64_t now_s) = 0;

  // --- checkouts and refunds (per terminal; a duplicate is ignored: returns false)
  virtual Result<bool> InsertCheckout(const std::string& terminal_id, const sync::Checkout& c) = 0;
  // The terminal's checkouts made without a member (so without entries) with a checkout id
  // after `after` ("" from the first), in checkout id order, at most `limit`: what a
  // terminal restored from an empty disk fetches back besides its entries.
  virtual Result<std::vector<sync::Checkout>> CheckoutsWithoutMember(const std::string& terminal_id,
                                                                     const std::string& after,
                                                                     size_t limit) = 0;
  virtual Result<std::optional<sync::Checkout>> GetCheckout(const std::string& terminal_id,
                                                            const std::string& checkout_id) = 0;
  virtual Result<bool> InsertRefund(const std::string& terminal_id, const sync::Refund& r) = 0;
  virtual Result<std::vector<sync::Refund>> RefundsOf(const std::string& terminal_id,
                                                      const std::string& checkout_id) = 0;
  virtual Result<int64_t> CountCheckouts(const std::string& terminal_id) = 0;
  // (terminal_id, checkout_id) of checkouts with this code hash / coupon at other terminals.
  virtual Result<std::vector<std::pair<std::string, std::string>>> CheckoutsWithCode(
      const std::string& code_hash) = 0;
  virtual Result<std::vector<std::pair<std::string, std::string>>> CheckoutsWithCoupon(
      const std::string& coupon_id) = 0;
  // Σ total_due_cents of the member's checkouts committed in [from_ms, to_ms) minus Σ
  // refund_cents of their refunds.
  // Refused checkouts and refunds are left out; the sum saturates instead of overflowing.
  // A backend may keep the sum of a window it was asked for inside a transaction, as long as
  // every answer is the sum of the rows (the SQLite one does: each checkout then costs one
  // row update instead of a sum over the member's month at every checkout).
  virtual Result<int64_t> MemberSpend(uint64_t member_id, int64_t from_ms, int64_t to_ms) = 0;
  // Σ total_due_cents of the member's checkouts committed in [from_ms, to_ms) that were not
  // refused, refunds not netted, saturating; rows as stored (a write's queued rows are
  // flushed first). Nothing is kept for the window.
  virtual Result<int64_t> MemberCheckoutTotal(uint64_t member_id, int64_t from_ms,
                                              int64_t to_ms) = 0;
  // The spends of [from_ms, to_ms) a backend keeps for these members (a member it keeps
  // none for is absent: ask MemberSpend), in one statement per 1,000.
  virtual Result<std::map<uint64_t, int64_t>> KeptMemberSpends(
      const std::vector<uint64_t>& member_ids, int64_t from_ms, int64_t to_ms) = 0;
  // Inside a write transaction: reads at once what MemberSpend keeps of these members (and
  // sums [from_ms, to_ms) for those it keeps none of), so that their MemberSpend answers and
  // the writes that change their spends cost no statement until the commit. A no-op
  // outside a transaction; the answers are the same either way.
  virtual Status PrefetchSpends(const std::vector<uint64_t>& member_ids, int64_t from_ms,
                                int64_t to_ms) = 0;
  // Forgets the sums kept for windows [from, to) with to <= this time (the daily job).
  virtual Status PruneSpendTotals(int64_t ended_by_ms) = 0;
  // Forgets each terminal's downloads (changes pages, and members sent alone) older than its
  // last changes page before this time, which is kept: a sale committed after that page is
  // judged with the same last download as before (the daily job). Returns the rows removed.
  virtual Result<int64_t> PruneDownloads(int64_t before_ms) = 0;
  // A checkout or refund HQ could not check: kept (a restored terminal gets it back), counted
  // in no spend and backing no entry.
  virtual Status MarkCheckoutRefused(const std::string& terminal_id,
                                     const std::string& checkout_id) = 0;
  virtual Status MarkRefundRefused(const std::string& terminal_id,
                                   const std::string& refund_id) = 0;
  // nullopt: no such checkout; else whether it was refused.
  virtual Result<std::optional<bool>> CheckoutRefused(const std::string& terminal_id,
                                                      const std::string& checkout_id) = 0;
  // CheckoutRefused of each of these checkouts HQ has (absent: no such checkout).
  virtual Result<std::map<std::string, bool>> CheckoutVerdicts(
      const std::string& terminal_id, const std::vector<std::string>& checkout_ids) = 0;
  // The checkout's refunds that were not refused, by (at_ms, refund_id).
  virtual Result<std::vector<sync::Refund>> AcceptedRefundsOf(const std::string& terminal_id,
                                                              const std::string& checkout_id) = 0;
  // The refunds of the checkout `checkout_id` sold at terminal `sold_at` that were not
  // refused, made at any terminal: (refunding terminal, refund), by (at_ms, terminal, id).
  virtual Result<std::vector<std::pair<std::string, sync::Refund>>> AcceptedRefundsOfSale(
      const std::string& sold_at, const std::string& checkout_id) = 0;
  // Refunds made in [from_ms, to_ms) by cashier and terminal, store_id "" for every store:
  // the refunds-by-cashier view (docs/hq.md), largest refunded amount first.
  virtual Result<std::vector<CashierRefunds>> RefundsByCashier(const std::string& store_id,
                                                               int64_t from_ms, int64_t to_ms) = 0;
  // Eviction (docs/hq.md, "Member scope"): members the terminal holds that are not in its
  // store's scope at since_ms (enrolled there, or shopped/asked there at or after it), at
  // most `limit`, by member id.
  virtual Result<std::vector<uint64_t>> HeldOutOfScope(const std::string& terminal_id,
                                                       const std::string& store_id,
                                                       int64_t since_ms, int64_t limit) = 0;
  // Whether the terminal holds the member (HQ sent it the member, or it uploaded entries of
  // the member).
  virtual Result<bool> HoldsMember(const std::string& terminal_id, uint64_t member_id) = 0;
  // The terminal no longer holds the member: its holding and its balance-set item go.
  virtual Status ForgetHolding(const std::string& terminal_id, uint64_t member_id) = 0;
  // A receipt key HQ certified for a terminal (base64url public key), kept for the record.
  virtual Status AddReceiptKey(const std::string& terminal_id, const std::string& public_key_b64,
                               int64_t at_ms) = 0;

  // --- sign-up claims (docs/hq.md, "Claims"): one per sale, (terminal_id, checkout_id).
  // Inserts the claim; false, and nothing written, when that sale was claimed already.
  virtual Result<bool> InsertClaim(const ClaimRecord& c) = 0;
  virtual Result<std::optional<ClaimRecord>> GetClaim(const std::string& terminal_id,
                                                      const std::string& checkout_id) = 0;
  // Writes the claim's status, reason, points, entry_id, credited_at_ms and clawed_back.
  virtual Status UpdateClaim(const ClaimRecord& c) = 0;
  // The member's claims, by claimed_at_ms then sale.
  virtual Result<std::vector<ClaimRecord>> ClaimsOfMember(uint64_t member_id) = 0;
  // The claims of the terminal's sales still waiting for HQ to hold the sale ("pending").
  virtual Result<std::vector<ClaimRecord>> PendingClaims(const std::string& terminal_id) = 0;

  // --- what HQ told whom, for checking what a terminal could have known
  // A member's tier and status from at_ms on (recorded at every change).
  virtual Status AddMemberState(uint64_t member_id, int64_t at_ms, const std::string& tier,
                                const std::string& status) = 0;
  // Every state recorded for the member, by at_ms and then in the order recorded.
  virtual Result<std::vector<MemberStateRecord>> MemberStateHistory(uint64_t member_id) = 0;
  // MemberStateHistory of each of these members (absent: none recorded).
  virtual Result<std::map<uint64_t, std::vector<MemberStateRecord>>> MemberStateHistories(
      const std::vector<uint64_t>& member_ids) = 0;
  // What a terminal was sent of its members, and when (docs/hq.md, "What the terminal could
  // know"). A changes page, with the cursor it gave (AddTerminalDownload), counts for every
  // member the terminal holds; a look-up, a repair or a sale's record (AddMemberDownloads),
  // for the members it carried. ForgetDownloadsPast: the terminal holds the page of this
  // cursor and none after it, so the pages it was sent past it never arrived (an answer lost
  // on the way) and are forgotten. DownloadsAround: the terminal's last changes page at or
  // before a moment and the first one after it (nullopt when none), so that a caller knows
  // every moment before `after` has the same last page. MemberDownloads: the times each of
  // these members was sent to the terminal outside the changes pages, by time (absent: never).
  virtual Status AddTerminalDownload(const std::string& terminal_id, int64_t at_ms,
                                     int64_t cursor_seq) = 0;
  virtual Status AddMemberDownloads(const std::string& terminal_id,
                                    const std::vector<uint64_t>& member_ids, int64_t at_ms) = 0;
  virtual Status ForgetDownloadsPast(const std::string& terminal_id, int64_t cursor_seq) = 0;
  // Whether HQ gave this terminal a changes page with this cursor (and has not forgotten
  // it): false for a cursor it never gave, and for one given after the backup HQ was
  // restored from. A terminal with no page recorded with its cursor (downloads recorded
  // before schema 9 / 7) is taken at its word.
  virtual Result<bool> CursorGiven(const std::string& terminal_id, int64_t cursor_seq) = 0;
  struct Downloads {
    std::optional<int64_t> at_or_before, after;
  };
  virtual Result<Downloads> DownloadsAround(const std::string& terminal_id, int64_t at_ms) = 0;
  virtual Result<std::map<uint64_t, std::vector<int64_t>>> MemberDownloads(
      const std::string& terminal_id, const std::vector<uint64_t>& member_ids) = 0;

  // --- coupons, devices, revocations, adjustments
  virtual Status PutCoupon(const CouponRecord& c) = 0;  // insert; constraint if the id exists
  virtual Result<std::optional<CouponRecord>> GetCoupon(const std::string& coupon_id) = 0;
  virtual Status MarkCouponUsed(const std::string& coupon_id, const std::string& terminal_id,
                                const std::string& checkout_id) = 0;
  virtual Result<std::vector<CouponRecord>> CouponsChanged(int64_t after, int64_t up_to) = 0;
  virtual Status PutDevice(const DeviceRecord& d) = 0;  // insert or replace
  virtual Status Revoke(const std::string& device_public_key, int64_t at_ms) = 0;  // idempotent
  virtual Result<std::vector<std::string>> RevocationsChanged(int64_t after, int64_t up_to) = 0;
  virtual Result<std::optional<AdjustmentRecord>> GetAdjustment(
      const std::string& adjustment_id) = 0;
  virtual Status PutAdjustment(const AdjustmentRecord& a) = 0;

  // --- conflicts and terminals
  virtual Status AddConflict(const ConflictRecord& c) = 0;  // a known dedupe_key is a no-op
  virtual Result<std::vector<ConflictRecord>> ConflictsOfMember(uint64_t member_id) = 0;
  virtual Result<std::vector<ConflictRecord>> ConflictsOfTerminal(
      const std::string& terminal_id) = 0;
  virtual Status PutTerminal(const TerminalRecord& t) = 0;  // insert or replace
  virtual Result<std::optional<TerminalRecord>> GetTerminal(const std::string& terminal_id) = 0;
  // The terminals (rows of PutTerminal) the filter selects, by terminal id, with their counts.
  virtual Result<std::vector<TerminalSummary>> ListTerminals(const TerminalFilter& f) = 0;
  // How many terminals there are, and of them how many last synced at or after since_ms and
  // before before_ms; every conflict recorded, by kind.
  virtual Result<FleetCounts> CountFleet(int64_t since_ms, int64_t before_ms) = 0;

  // --- small key/value state (e.g. the month the tier job last ran)
  virtual Result<std::optional<std::string>> GetMeta(const std::string& key) = 0;
  virtual Status PutMeta(const std::string& key, const std::string& value) = 0;

  // --- what each store's terminals hold (hq-and-sync.md, "Download"; docs/hq.md, "Member
  // scope"). A store's scope: the members enrolled there, and those that shopped there or a
  // terminal of the store asked for at or after a moment (member_scope_months back).
  // `reason`: "enrolled" (never leaves the scope), "shopped" or "asked" (at at_ms; the latest
  // is kept). True when the member was not in the scope as of since_ms before (new to it,
  // or back after falling out): its snapshot must then reach the store's terminals again.
  virtual Result<bool> AddStoreMember(const std::string& store_id, uint64_t member_id,
                                      const std::string& reason, int64_t at_ms,
                                      int64_t since_ms) = 0;
  // AddStoreMember of each (member, at_ms) in turn with one reason, in two statements per
  // 1,000: the members for which any of those calls would have answered true.
  virtual Result<std::set<uint64_t>> AddStoreMembers(
      const std::string& store_id, const std::vector<std::pair<uint64_t, int64_t>>& members,
      const std::string& reason, int64_t since_ms) = 0;
  // Members of the store's scope as of since_ms with change_seq > after, by change_seq, at
  // most limit (+1 to tell "more").
  virtual Result<std::vector<MemberRecord>> StoreMembersChangedAfter(const std::string& store_id,
                                                                     int64_t since_ms,
                                                                     int64_t after,
                                                                     int64_t limit) = 0;
  // Coupons with after < change_seq <= up_to for anyone (member 0) or for a member of the
  // store's scope as of since_ms, by change_seq.
  virtual Result<std::vector<CouponRecord>> StoreCouponsChanged(const std::string& store_id,
                                                                int64_t since_ms, int64_t after,
                                                                int64_t up_to) = 0;
  // The terminal holds the member from now on, and its balance set has the member at
  // `balance` (HQ's balance of the member as the open transaction has it). kSent: the
  // terminal is being sent the member's snapshot with that balance — the set takes it whether
  // the member was held or not. kWrote: the terminal uploaded entries for the member — only a
  // member it did not hold joins the set; a held member keeps the balance it was last sent
  // until its next snapshot (docs/hq.md, "Member scope": a terminal's balance set is what it
  // was sent). Many at once: (member, balance) pairs, in one statement per 1,000.
  enum class Holding { kSent, kWrote };
  virtual Status HoldMembers(const std::string& terminal_id,
                             const std::vector<std::pair<uint64_t, int64_t>>& members,
                             Holding how) = 0;
  Status SendMember(const std::string& terminal_id, uint64_t member_id, int64_t balance) {
    return HoldMembers(terminal_id, {{member_id, balance}}, Holding::kSent);
  }

  // --- reconciliation sets, kept in the same transactions as the rows above: per terminal,
  // its entries (items: entry id bytes → chain hash) and the balances of the members it
  // holds (recon::MemberBalanceItem(member_id, balance, 0)).
  // A transaction that fails forgets every set opened in it (a set's scope row may be one of
  // the rows rolled back).
  // AddToTerminalSet takes the item of an entry InsertEntry has just stored, whose id no set
  // has held (entry ids are unique in the database).
  virtual Status AddToTerminalSet(const std::string& terminal_id, const recon::Item& item) = 0;
  // The responder's view of a set; valid until the next call of either on this store.
  virtual Result<const recon::FingerprintStore*> TerminalSet(const std::string& terminal_id) = 0;
  virtual Result<const recon::FingerprintStore*> BalanceSet(const std::string& terminal_id) = 0;
};

// The SQLite backend: one file, WAL, synchronous=FULL, migrations by user_version.
// `unavailable` when the file cannot be opened or is from a newer program.
Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path);

// The PostgreSQL backend (docs/hq.md): any number of loyalty-hq processes on one database,
// their writes serialised by one advisory lock. conninfo: a libpq URI
// ("postgresql://loyalty@db.example:5432/loyalty") or key=value string; password: "" for
// none. `unavailable` when the server cannot be reached or its schema is newer.
Result<std::unique_ptr<Store>> OpenPgStore(const std::string& conninfo,
                                           const std::string& password);
// Whether hq.toml's `database` names a PostgreSQL database rather than a SQLite file.
bool IsPostgresUri(const std::string& database);

// Test seam of the SQLite backend, in the manner of LevelDB's ErrorEnv (sqlite::InjectStepFault
// of the statement layer it shares with the terminal's ledger): makes steps
// of the store's statements fail as SQLite would, so tests drive the real service on a real
// file through a failing read. A fault matches statements whose SQL text contains
// `sql_contains`; the `nth` matching step (1 = the next) and the `count - 1` after it fail
// with `rc`, an SQLite result code (SQLITE_IOERR, 10, is `unavailable`: 503); count < 0
// fails every one from the nth on. Process-wide; one relaxed atomic load per step while
// none is armed.
struct StoreFault {
  std::string sql_contains;
  int nth = 1;
  int count = 1;
  int rc = 10;  // SQLITE_IOERR
};
void InjectStoreFault(const StoreFault& f);
void ClearStoreFaults();
// How many injected faults have fired since the last ClearStoreFaults().
int StoreFaultsFired();

}  // namespace loyalty::hq
