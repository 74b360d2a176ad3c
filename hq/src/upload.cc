// The upload route (POST /v1/sync/{tid}/entries): the terminal's checkouts and refunds stored
// with their verdicts, then each entry placed in the terminal's chain (forks, gaps and
// mismatches recorded as conflicts), checked, and applied or refused, in one write.
#include "service_internal.h"

#include <set>

#include <algorithm>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "loyalty/base/encoding.h"
#include "loyalty/model/entry.h"
#include "loyalty/recon/recon.h"

namespace loyalty::hq {

using namespace internal;

Status HqService::Impl::Conflict(const std::string& kind, const std::string& tid,
                                 const std::string& other, uint64_t member, const json& detail,
                                 const std::string& key) {
  return store.AddConflict(
      {kind, clock.now_ms(), tid, other, member, Dump(detail), kind + ":" + key});
}

Result<std::string> HqService::Impl::UploadOne(const std::string& tid, const sync::Entry& e,
                                               TerminalRecord* term, int64_t now_ms) {
  if (e.terminal_id != tid) {
    // Nothing is stored; a terminal sending another terminal's entries is looked at too.
    if (Status s = Conflict("entry_mismatch", tid, "", e.member_id,
                            {{"entry_id", e.entry_id},
                             {"reason", "another_terminals_entry"},
                             {"entry_terminal_id", e.terminal_id},
                             {"seq", e.seq}},
                            tid + ":foreign:" + e.entry_id + ":" + HexEncode(e.hash));
        !s.ok()) {
      return s;
    }
    return std::string("invalid");
  }
  if (model::EntryHash(e) != e.hash) {
    // Nothing is stored, but a terminal sending entries that do not match their hash is
    // something to look at: recorded against the terminal.
    if (Status s = Conflict(
            "entry_mismatch", tid, "", e.member_id,
            {{"entry_id", e.entry_id}, {"reason", "hash_does_not_match_content"}, {"seq", e.seq}},
            tid + ":invalid:" + e.entry_id + ":" + HexEncode(e.hash));
        !s.ok()) {
      return s;
    }
    return std::string("invalid");
  }
  Result<std::optional<sync::Entry>> existing = std::optional<sync::Entry>();
  if (batch_entries.read) {
    if (auto it = batch_entries.by_id.find(e.entry_id); it != batch_entries.by_id.end())
      existing = std::optional<sync::Entry>(it->second);
  } else {
    existing = store.GetEntry(e.entry_id);
  }
  if (!existing.ok()) return existing.status();
  if (*existing) {
    if ((*existing)->hash == e.hash) return std::string("exists");
    if (Status s =
            Conflict("entry_mismatch", tid,
                     (*existing)->terminal_id == tid ? "" : (*existing)->terminal_id, e.member_id,
                     {{"entry_id", e.entry_id},
                      {"stored_hash", HexEncode((*existing)->hash)},
                      {"received_hash", HexEncode(e.hash)},
                      {"terminal_id", tid}},
                     e.entry_id + ":" + HexEncode(e.hash));
        !s.ok()) {
      return s;
    }
    return std::string("conflict");
  }
  // The chain: a different entry already at this seq is a fork; a prev_hash that links to
  // no entry at seq - 1 (on any branch) is a gap. Either is recorded; the entry is kept.
  auto at_seq = [&](int64_t seq) -> Result<std::vector<sync::Entry>> {
    if (!batch_entries.read || seq < batch_entries.seq_lo || seq > batch_entries.seq_hi)
      return store.EntriesAtSeq(tid, seq);
    auto it = batch_entries.by_seq.find(seq);
    return it == batch_entries.by_seq.end() ? std::vector<sync::Entry>() : it->second;
  };
  auto same_seq = at_seq(e.seq);
  if (!same_seq.ok()) return same_seq.status();
  // Where the branches part, the entries at one seq follow the same entry; after it, each
  // follows its own branch's: one chain_fork a fork, not one for every later entry of the
  // branch (a terminal restored from an older backup, or from an empty disk, sells on).
  const bool parts_here =
      std::any_of(same_seq->begin(), same_seq->end(),
                  [&](const sync::Entry& other) { return other.prev_hash == e.prev_hash; });
  if (parts_here) {
    // The entry's member is concerned too: its view lists the conflict.
    if (Status s = Conflict("chain_fork", tid, "", e.member_id,
                            {{"terminal_id", tid},
                             {"seq", e.seq},
                             {"entry_id", e.entry_id},
                             {"other_entry_id", same_seq->front().entry_id}},
                            tid + ":" + e.entry_id);
        !s.ok()) {
      return s;
    }
  } else {  // a new seq, or the next entry of a branch that parted before: linked or a gap
    bool linked = false;
    if (e.seq == 1) {
      linked = e.prev_hash == model::ZeroHash();
    } else if (term->head_seq == e.seq - 1 && term->head_seq > 0 &&
               term->head_hash == HexEncode(e.prev_hash)) {
      linked = true;  // the terminal's head (stored with the entry it names) is at seq - 1
    } else {
      auto prev = at_seq(e.seq - 1);
      if (!prev.ok()) return prev.status();
      for (const auto& p : *prev) linked = linked || p.hash == e.prev_hash;
    }
    if (!linked) {
      if (Status s = Conflict("chain_gap", tid, "", e.member_id,
                              {{"terminal_id", tid},
                               {"seq", e.seq},
                               {"entry_id", e.entry_id},
                               {"prev_hash", HexEncode(e.prev_hash)}},
                              tid + ":" + e.entry_id);
          !s.ok()) {
        return s;
      }
    }
  }
  auto reason = CheckEntry(tid, e);
  if (!reason.ok()) return reason.status();
  bool applied = reason->empty();
  if (Status s = InsertEntry(e, applied, now_ms); !s.ok()) return s;
  if (batch_entries.read) {
    batch_entries.by_id.emplace(e.entry_id, e);
    batch_entries.by_seq[e.seq].push_back(e);
  }
  recon::Item item;
  item.id = *HexDecode(e.entry_id);
  std::copy(e.hash.begin(), e.hash.end(), item.hash.begin());
  if (Status s = store.AddToTerminalSet(tid, item); !s.ok()) return s;
  term->head_seq = e.seq;
  term->head_hash = HexEncode(e.hash);
  if (!applied) {
    // Kept in the chain and counted once; applied to no balance.
    if (Status s = Conflict("entry_refused", tid, "", e.member_id,
                            {{"entry_id", e.entry_id},
                             {"terminal_id", tid},
                             {"seq", e.seq},
                             {"kind", e.kind},
                             {"points", e.points},
                             {"member_id", std::to_string(e.member_id)},
                             {"checkout_id", e.checkout_id},
                             {"refund_id", e.refund_id},
                             {"reason", *reason}},
                            tid + ":" + e.entry_id);
        !s.ok()) {
      return s;
    }
    Report("entry_refused",
           {{"terminal_id", tid}, {"entry_id", e.entry_id}, {"kind", e.kind}, {"reason", *reason}});
    // A refused freeze or tier upgrade moves no point, so no balance differs for the
    // reconciliation to repair: the next page sends the member as HQ holds it, and the
    // terminal's status and tier come back to HQ's (its snapshot's terminal_seq is past it).
    if (e.kind == "freeze" || e.kind == "tier_upgrade") {
      auto slot = Slot(e.member_id);
      if (!slot.ok()) return slot.status();
      if ((*slot)->m) {
        if (Status s = Touch(e.member_id); !s.ok()) return s;
      }
    }
    return std::string("refused");
  }
  if (Status s = ApplyEntry(e); !s.ok()) return s;
  if (e.refund_id.empty()) {
    if (auto it = batch_checkouts.find(e.checkout_id); it != batch_checkouts.end())
      ++it->second.applied[e.kind];
  }
  if (Status s = ChainVelocity(e); !s.ok()) return s;
  return std::string("created");
}

// A refused record is kept (a restored terminal gets it back) and reported, but counts in
// no spend and backs no entry.
Status HqService::Impl::RefuseRecord(const std::string& tid, uint64_t member, const char* what,
                                     const std::string& id, const std::string& reason,
                                     const json& more, const std::string& other) {
  Report("record_refused", {{"terminal_id", tid}, {what, id}, {"reason", reason}});
  json detail = {
      {"terminal_id", tid}, {what, id}, {"member_id", std::to_string(member)}, {"reason", reason}};
  detail.update(more);
  return Conflict("entry_refused", tid, other, member, detail, tid + ":" + what + ":" + id);
}

Status HqService::Impl::StoreCheckout(const std::string& tid, const sync::Checkout& c) {
  Result<std::optional<bool>> prior = std::optional<bool>();
  if (batch_verdicts) {
    if (auto it = batch_verdicts->find(c.checkout_id); it != batch_verdicts->end())
      prior = std::optional<bool>(it->second);
  } else {
    prior = store.CheckoutRefused(tid, c.checkout_id);
  }
  if (!prior.ok()) return prior.status();
  if (*prior) return Status::Ok();  // known: its verdict stands
  auto reason = CheckCheckout(tid, c);
  if (!reason.ok()) return reason.status();
  // The points a sale redeemed are taken by its redeem entry, written in the same commit and
  // uploaded with it: without it the member would keep them.
  if (reason->empty() && c.redeemed_points > 0 && c.member_id &&
      !batch_carried.count({"redeem", c.checkout_id, "", *c.member_id, -c.redeemed_points}))
    *reason = "redeem_missing";
  batch_checkouts[c.checkout_id] = BatchCheckout{&c, !reason->empty(), {}};
  auto inserted = store.InsertCheckout(tid, c);
  if (!inserted.ok()) return inserted.status();
  if (batch_verdicts) (*batch_verdicts)[c.checkout_id] = !reason->empty();
  if (!*inserted) return Status::Ok();
  uint64_t member = c.member_id.value_or(0);
  if (!reason->empty()) {
    if (Status s = store.MarkCheckoutRefused(tid, c.checkout_id); !s.ok()) return s;
    if (Status s = RefuseRecord(tid, member, "checkout_id", c.checkout_id, *reason); !s.ok())
      return s;
  }
  if (!c.code_hash.empty()) {
    auto uses = store.CheckoutsWithCode(c.code_hash);
    if (!uses.ok()) return uses.status();
    for (const auto& [other_tid, other_checkout] : *uses) {
      if (other_tid == tid) continue;
      std::string a = std::min(tid, other_tid), b = std::max(tid, other_tid);
      Status s =
          Conflict("code_reused", tid, other_tid, member,
                   {{"code_hash", c.code_hash},
                    {"member_id", std::to_string(member)},
                    {"checkouts",
                     json::array({json{{"terminal_id", other_tid}, {"checkout_id", other_checkout}},
                                  json{{"terminal_id", tid}, {"checkout_id", c.checkout_id}}})}},
                   c.code_hash + ":" + a + ":" + b);
      if (!s.ok()) return s;
    }
  }
  if (!c.coupon_id.empty()) {
    auto uses = store.CheckoutsWithCoupon(c.coupon_id);
    if (!uses.ok()) return uses.status();
    for (const auto& [other_tid, other_checkout] : *uses) {
      if (other_tid == tid) continue;
      std::string a = std::min(tid, other_tid), b = std::max(tid, other_tid);
      Status s =
          Conflict("coupon_reused", tid, other_tid, member,
                   {{"coupon_id", c.coupon_id},
                    {"member_id", std::to_string(member)},
                    {"checkouts",
                     json::array({json{{"terminal_id", other_tid}, {"checkout_id", other_checkout}},
                                  json{{"terminal_id", tid}, {"checkout_id", c.checkout_id}}})}},
                   c.coupon_id + ":" + a + ":" + b);
      if (!s.ok()) return s;
    }
    if (reason->empty()) {
      if (Status s = store.MarkCouponUsed(c.coupon_id, tid, c.checkout_id); !s.ok()) return s;
    }
  }
  if (member != 0 && reason->empty()) {
    if (auto m = MemberOrBare(member); !m.ok()) return m.status();
    return MaybeUpgradeTier(member);
  }
  return Status::Ok();
}

// The entries an upload's checks would read one at a time (UploadOne: the same id, the same
// seq, the seq before), in two statements.
Status HqService::Impl::ReadBatchEntries(const std::string& tid,
                                         const std::vector<sync::Entry>& entries) {
  batch_entries = BatchEntries{};
  std::vector<std::string> ids;
  int64_t lo = std::numeric_limits<int64_t>::max(), hi = std::numeric_limits<int64_t>::min();
  for (const auto& e : entries) {
    ids.push_back(e.entry_id);
    if (e.terminal_id != tid || e.seq < 1) continue;
    lo = std::min(lo, e.seq - 1);
    hi = std::max(hi, e.seq);
  }
  auto known = store.EntriesByIds(ids);
  if (!known.ok()) return known.status();
  for (auto& k : *known) {
    std::string id = k.entry_id;
    batch_entries.by_id.emplace(std::move(id), std::move(k));
  }
  if (lo <= hi && hi - lo <= 2 * static_cast<int64_t>(sync::kMaxUploadEntries)) {
    auto range = store.TerminalEntriesBetween(tid, lo, hi);
    if (!range.ok()) return range.status();
    for (auto& r : *range) {
      const int64_t seq = r.seq;
      batch_entries.by_seq[seq].push_back(std::move(r));
    }
    batch_entries.seq_lo = lo;
    batch_entries.seq_hi = hi;
  }
  batch_entries.read = true;
  return Status::Ok();
}

// What an upload without refunds changes that another upload might too: its terminal (its
// chain, checkouts, holdings and sets), every member its checkouts and its own entries name
// (balances, lots, spend, scope, the balance sets holding them), and the coupons and codes
// its checkouts used (their use elsewhere is a conflict). Entries of another terminal are
// refused unread; HQ's chain and the change sequence the store locks when they are written.
std::vector<std::string> HqService::Impl::UploadLockKeys(const std::string& tid,
                                                         const sync::UploadRequest& up) {
  std::vector<std::string> keys{"t:" + tid};
  for (const auto& c : up.checkouts) {
    if (c.member_id && *c.member_id != 0) keys.push_back("m:" + std::to_string(*c.member_id));
    if (!c.coupon_id.empty()) keys.push_back("c:" + c.coupon_id);
    if (!c.code_hash.empty()) keys.push_back("k:" + c.code_hash);
  }
  for (const auto& e : up.entries)
    if (e.terminal_id == tid && e.member_id != 0)
      keys.push_back("m:" + std::to_string(e.member_id));
  return keys;
}

http::Response HqService::Impl::Upload(const std::string& tid, const http::Request& req) {
  auto up = sync::ParseUploadRequest(req.body);
  if (!up.ok()) return FromStatus(up.status());
  // Opened outside the transaction so that a rollback never removes the set's scope row.
  if (auto set = store.TerminalSet(tid); !set.ok()) return FromStatus(set.status());
  sync::UploadResponse out;
  // Beside other uploads (docs/hq.md, "Writers in parallel") unless it has refunds: a refund
  // names a sale that may be another terminal's, and its member and a claim to claw back
  // from are found only inside the write; nor while a claim of this terminal's sales waits
  // (its member is found only inside).
  bool exclusive = !up->refunds.empty();
  bool claims_wait = false;
  const std::vector<std::string> keys = UploadLockKeys(tid, *up);
  auto body = [&]() -> Status {
    if (!exclusive) {
      // No claim can be added while this runs (a claim is an exclusive write): none now, none
      // to settle at the end.
      auto pending = store.PendingClaims(tid);
      if (!pending.ok()) return pending.status();
      if (!pending->empty()) {
        claims_wait = true;
        return Status::Error(ErrorCode::kUnavailable, "claims wait: the upload runs alone");
      }
    }
    out.results.clear();
    batch_checkouts.clear();
    batch_marks.clear();
    batch_sale_seq.clear();
    auto term = TouchTerminal(tid, nullptr);
    if (!term.ok()) return term.status();
    batch_resent_below = std::numeric_limits<int64_t>::max();
    for (const auto& e : up->entries) {
      if (e.terminal_id != tid) continue;
      if (e.seq <= term->head_seq) batch_resent_below = std::min(batch_resent_below, e.seq);
      if (model::EntryHash(e) != e.hash) continue;
      if (e.kind == "freeze") batch_marks[{e.member_id, e.kind}].push_back({e.at_ms, e.seq});
      if (e.kind == "earn" && !e.checkout_id.empty() && e.refund_id.empty()) {
        auto [it, fresh] = batch_sale_seq.emplace(e.checkout_id, e.seq);
        if (!fresh) it->second = std::min(it->second, e.seq);
      }
    }
    std::vector<uint64_t> named;  // the members the upload's checks will read
    for (const auto& c : up->checkouts) named.push_back(c.member_id.value_or(0));
    for (const auto& e : up->entries)
      if (e.terminal_id == tid) named.push_back(e.member_id);
    if (Status s = WarmMembers(tid, std::move(named)); !s.ok()) return s;
    if (Status s = WarmAccounting(up->entries, tid); !s.ok()) return s;
    if (Status s = WarmOwnEarns(tid, up->checkouts, up->entries); !s.ok()) return s;
    {
      // The month's spend each accepted checkout's member is judged by (MaybeUpgradeTier).
      std::vector<uint64_t> spenders;
      for (const auto& c : up->checkouts)
        if (c.member_id && *c.member_id != 0) spenders.push_back(*c.member_id);
      auto [from_ms, to_ms] = MonthBounds(clock.now_s());
      if (Status s = store.PrefetchSpends(spenders, from_ms, to_ms); !s.ok()) return s;
    }
    const int64_t now_ms = clock.now_ms();
    // The records first: the entries are checked against them.
    std::vector<std::string> checkout_ids;
    for (const auto& c : up->checkouts) checkout_ids.push_back(c.checkout_id);
    auto verdicts = store.CheckoutVerdicts(tid, checkout_ids);
    if (!verdicts.ok()) return verdicts.status();
    batch_verdicts = std::move(*verdicts);
    // The upload's own upgrades, judged before its checkouts: a sale after an upgrade the
    // spend does not explain is judged without it.
    batch_upgrades.clear();
    for (const auto& e : up->entries) {
      if (e.kind != "tier_upgrade" || e.terminal_id != tid || model::EntryHash(e) != e.hash ||
          batch_upgrades.count(e.entry_id))
        continue;
      auto verdict = UpgradeVerdict(tid, e, *up);
      if (!verdict.ok()) return verdict.status();
      batch_upgrades[e.entry_id] = *verdict;
      if (verdict->empty()) batch_marks[{e.member_id, e.kind}].push_back({e.at_ms, e.seq});
    }
    batch_carried.clear();
    for (const auto& e : up->entries) {
      if ((e.kind == "redeem" || e.kind == "clawback") && e.terminal_id == tid &&
          model::EntryHash(e) == e.hash)
        batch_carried.emplace(e.kind, e.checkout_id, e.refund_id, e.member_id, e.points);
    }
    for (const auto& c : up->checkouts) {
      if (Status s = StoreCheckout(tid, c); !s.ok()) return s;
    }
    batch_refund_seq.clear();
    batch_refund_member.clear();
    for (const auto& e : up->entries) {
      if (e.terminal_id != tid || e.refund_id.empty()) continue;
      auto [it, fresh] =
          batch_refund_seq.emplace(std::make_pair(e.checkout_id, e.refund_id), e.seq);
      if (!fresh) it->second = std::min(it->second, e.seq);
    }
    std::vector<std::pair<RefundOrder, const sync::Refund*>> refunds;
    std::map<std::string, std::map<std::string, int64_t>> seqs_of;  // by checkout
    for (const auto& r : up->refunds) {
      auto seqs = seqs_of.find(r.checkout_id);
      if (seqs == seqs_of.end()) {
        auto read = RefundSeqs(tid, r.checkout_id);
        if (!read.ok()) return read.status();
        seqs = seqs_of.emplace(r.checkout_id, std::move(*read)).first;
      }
      refunds.emplace_back(OrderOf(r, seqs->second), &r);
    }
    std::sort(refunds.begin(), refunds.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& ordered : refunds) {
      const auto& r = ordered.second;  // not a structured binding: a lambda below uses it
      auto known = store.RefundsOf(tid, r->checkout_id);
      if (!known.ok()) return known.status();
      if (std::any_of(known->begin(), known->end(),
                      [&](const sync::Refund& k) { return k.refund_id == r->refund_id; })) {
        continue;  // known: its verdict stands
      }
      std::string other;
      uint64_t member = 0;
      int64_t correction = 0;
      auto reason = CheckRefund(tid, *r, &other, &member, &correction);
      if (!reason.ok()) return reason.status();
      // The points a refund takes back are its clawback entry's, from the same commit.
      if (reason->empty() && member != 0 && r->points_clawed_back > 0 &&
          !batch_carried.count(
              {"clawback", r->checkout_id, r->refund_id, member, -r->points_clawed_back}))
        *reason = "clawback_missing";
      auto inserted = store.InsertRefund(tid, *r);
      if (!inserted.ok()) return inserted.status();
      if (!*inserted) continue;
      batch_refund_member[r->refund_id] = member;
      if (!reason->empty()) {
        if (Status s = store.MarkRefundRefused(tid, r->refund_id); !s.ok()) return s;
        json more = json::object();
        if (*reason == "refund_reused") {
          // Units refunded at two terminals, each offline: the customer was paid twice. The
          // later refund's points are not applied (clawed back once); loss prevention sees
          // both refunds and their cashiers, from either terminal's view.
          more = {{"sold_at", r->sold_at.empty() ? tid : r->sold_at},
                  {"checkout_id", r->checkout_id},
                  {"refund_cents", r->refund_cents},
                  {"cashier_id", r->cashier_id},
                  {"other_terminal_id", other}};
        }
        if (Status s = RefuseRecord(tid, member, "refund_id", r->refund_id, *reason, more,
                                    *reason == "refund_reused" ? other : "");
            !s.ok())
          return s;
        continue;
      }
      // A sale made without a member may have been credited to one who joined with its
      // claim: the refund takes back its share (claims.cc).
      if (member == 0) {
        const std::string& sold_at = r->sold_at.empty() ? tid : r->sold_at;
        if (Status s = ClawBackClaim(sold_at, r->checkout_id, r->refund_id); !s.ok()) return s;
      }
      if (member != 0 && correction != 0) {
        // The terminal computed this refund without another lane's refund of the sale (both
        // offline): HQ's own entry makes up the allocation's rounding (CheckRefund).
        auto e = AppendHqEntry("adjust", member, correction,
                               {{"reason", "refund_rounding"},
                                {"terminal_id", tid},
                                {"checkout_id", r->checkout_id},
                                {"refund_id", r->refund_id}});
        if (!e.ok()) return e.status();
        if (Status s = ApplyEntry(*e); !s.ok()) return s;
        Report("refund_rounding_corrected", {{"terminal_id", tid},
                                             {"refund_id", r->refund_id},
                                             {"member_id", std::to_string(member)},
                                             {"points", correction}});
      }
      if (member != 0) {
        if (Status s = Touch(member); !s.ok()) return s;
        // A return at this store is a visit here: the member is in its scope, as a sale
        // makes them (docs/hq.md, "Member scope").
        if (!r->sold_at.empty()) {
          const int64_t at = std::min(r->at_ms, now_ms);
          if (Status s = ScopeMember(term->store_id, member, "shopped", at); !s.ok()) return s;
        }
      }
    }
    // Claims of this terminal's sales that waited for them (claims.cc): credited or refused
    // now that HQ holds the sales and their refunds.
    if (exclusive)
      if (Status s = SettleClaims(tid); !s.ok()) return s;
    if (Status s = ReadBatchEntries(tid, up->entries); !s.ok()) return s;
    for (const auto& e : up->entries) {
      auto st = UploadOne(tid, e, &*term, now_ms);
      if (!st.ok()) return st.status();
      out.results.push_back({e.entry_id, *st});
    }
    batch_checkouts.clear();
    // Where the store's scope grows (a sale there), and what the terminal holds now: every
    // member it wrote entries for (docs/hq.md, "Member scope").
    std::set<uint64_t> held;
    std::vector<std::pair<uint64_t, int64_t>> shopped;
    for (const auto& c : up->checkouts) {
      if (!c.member_id || *c.member_id == 0) continue;
      held.insert(*c.member_id);
      shopped.emplace_back(*c.member_id, std::min(c.committed_at_ms, now_ms));
    }
    if (Status s = ScopeMembers(term->store_id, shopped, "shopped"); !s.ok()) return s;
    for (const auto& e : up->entries)
      if (e.terminal_id == tid && e.member_id != 0) held.insert(e.member_id);
    std::vector<std::pair<uint64_t, int64_t>> holdings;
    for (uint64_t id : held) {
      auto slot = Slot(id);
      if (!slot.ok()) return slot.status();
      if ((*slot)->m) holdings.emplace_back(id, (*slot)->m->balance);
    }
    if (Status s = store.HoldMembers(tid, holdings, Store::Holding::kWrote); !s.ok()) return s;
    return store.PutTerminal(*term);
  };
  Status s = Write(body, exclusive ? nullptr : &keys);
  if (claims_wait) {
    exclusive = true;
    s = Write(body);
  }
  batch_checkouts.clear();  // it points into `up`, also after a failed transaction
  batch_marks.clear();
  batch_sale_seq.clear();
  batch_resent_below = std::numeric_limits<int64_t>::max();
  batch_upgrades.clear();
  batch_refund_seq.clear();
  batch_refund_member.clear();
  batch_entries = BatchEntries{};
  batch_verdicts.reset();
  if (!s.ok()) return FromStatus(s);
  for (const auto& r : out.results) ++answered_statuses[r.status];
  return JsonResponse(200, sync::ToJson(out));
}

}  // namespace loyalty::hq
