// The chain the load generator plays: its members, HQ's balances as they must be, and its
// terminals with their hash chains.
//
// A terminal's hour is what a till uploads after a busy hour: `entries_per_run` checkouts
// of one 100-cent basket, each by a different member (drawn from the whole chain: before
// member scoping every terminal serves every member), each with its `earn` entry. The
// checkout is priced with the rules code a terminal prices with (rules::ComputeQuote with
// the default rules, the version HQ runs when it has no rules file), its stored response is
// the POS API's commit body (checkout::CommitViewJson), and the entry is chained with the
// ledger's hash rule (model::EntryHash): HQ's checks pass as for a real till.
//
// BalanceView holds every member's balance as HQ must hold it — the points of every entry
// HQ answered `created` or (after a lost answer) `exists`. Thread-safe. A terminal
// reconciles the balances of the members it holds as it holds them (Terminal::held, as
// recon::MemberBalanceItem): what it was sent, plus its own entries since.
//
// Terminal is owned by one run at a time (the runner's scheduling guarantees it).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "loyalty/recon/recon.h"
#include "loyalty/sync/messages.h"

namespace loyalty::hqload {

inline constexpr uint64_t kFirstMemberId = 1'000'000'001;

class BalanceView {
 public:
  explicit BalanceView(size_t members);

  uint64_t member_id(size_t i) const { return kFirstMemberId + i; }
  size_t members() const { return balance_.size(); }

  void Apply(uint64_t member_id, int64_t points);
  int64_t Balance(uint64_t member_id) const;
  int64_t Total() const;
  // The member whose recon::MemberKey is `key` (16 raw bytes).
  std::optional<uint64_t> MemberOfKey(const std::string& key) const;

 private:
  mutable std::mutex mu_;
  std::vector<int64_t> balance_;
  std::unordered_map<std::string, uint64_t> by_key_;
};

// An upload not yet acknowledged by HQ: sent again, as it is, by the next run.
struct PendingBatch {
  sync::UploadRequest request;
  std::string body;
};

struct Terminal {
  int index = 0;
  std::string id, store_id;
  std::string cert_file, key_file;
  int64_t seq = 0;
  std::string head_hash;  // raw 32 bytes
  int hours = 0;          // hours generated
  int64_t entries = 0;    // entries in its chain
  std::string cursor;     // of the changes feed
  std::vector<PendingBatch> pending;
  // Every entry of its chain (id, hash): the terminal's side of recon/entries. Few symbols:
  // a terminal's set is small and, after its upload, equal to HQ's.
  recon::MemoryStore entry_set{64};
  // Points of its entries HQ acknowledged as applied; refused or conflicting ones (never
  // expected here) are counted apart.
  int64_t acked = 0, unexpected = 0;
  // The members HQ counts it as holding — every member of an upload HQ answered and of
  // every changes page or look-up it received (docs/hq.md, "Member scope") — and the balance
  // it holds for each: the one last sent (a snapshot) plus its own entries since, as a
  // terminal's ledger has it. A member it wrote entries for before it was sent one joins at
  // HQ's balance after those entries (the view's, then), as HQ's set takes it.
  std::map<uint64_t, int64_t> held;
  void Sent(uint64_t member_id, int64_t balance) { held[member_id] = balance; }
  // One `changes` page taken as a terminal takes it (its members sent, its cursor kept):
  // true when another page follows, an error when one is announced but the cursor did not
  // move.
  Result<bool> TakePage(const sync::ChangesResponse& page);
  // Its side of recon/balances.
  std::unique_ptr<recon::FingerprintStore> BalanceSet() const;
};

struct ChainOptions {
  int terminals = 1000;
  int tills_per_store = 4;
  size_t members = 10000;
  int entries_per_run = 200;
  int64_t basket_cents = 100;
  uint64_t seed = 1;
  // The share of an hour's members picked from the terminal's own store (members are split
  // evenly over the stores, in id order), the rest from the whole chain. 0: all chain-wide
  // (every terminal then meets every member, the worst case for member scope).
  double local_share = 0;
};

class Chain {
 public:
  Chain(ChainOptions options, int64_t first_hour_start_ms);

  const ChainOptions& options() const { return opt_; }
  BalanceView& view() { return view_; }
  std::vector<Terminal>& terminals() { return terminals_; }
  Terminal& terminal(int i) { return terminals_[static_cast<size_t>(i)]; }

  // The next hour of `t`: its checkouts and entries appended to its chain and pending.
  // Its entries are stamped inside hour `t.hours` after the first hour's start.
  void GenerateHour(Terminal& t) const;

  // Applies HQ's answer to the first pending batch: acknowledged entries count in the
  // view; the batch leaves `pending`. False when the answer does not fit the batch.
  bool Acknowledge(Terminal& t, const sync::UploadResponse& response);

 private:
  ChainOptions opt_;
  int64_t first_hour_start_ms_;
  BalanceView view_;
  std::vector<Terminal> terminals_;
};

}  // namespace loyalty::hqload
