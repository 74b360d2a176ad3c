// One write transaction (Write) and what it reads once of each member it touches: the member
// row, its lots, its recorded states, the terminal's first entries and its downloads, kept
// current by every write the transaction makes and written back when the body succeeds.
#include "service_internal.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <utility>
#include <vector>

namespace loyalty::hq {

using namespace internal;

// Timed from here, the service's side: what a request waits for its transaction, including
// PostgreSQL's writer lock, whichever backend runs it.
Status HqService::Impl::Transact(const std::function<Status()>& body,
                                 const std::vector<std::string>* shared_keys) {
  const auto started = std::chrono::steady_clock::now();
  Status s = shared_keys ? store.SharedTransaction(*shared_keys, body) : store.Transaction(body);
  metrics.StoreTransaction(MicrosSince(started));
  return s;
}

// Runs body in one store transaction with a fresh member cache, and writes the members it
// changed before the commit. Every transaction that changes a member runs through here.
// With shared_keys, a SharedTransaction: body changes nothing but what they name (and the
// change sequence and HQ's chain, which the store locks itself).
Status HqService::Impl::Write(const std::function<Status()>& body,
                              const std::vector<std::string>* shared_keys) {
  return Transact(
      [&]() -> Status {
        struct Reset {
          std::unique_ptr<WriteCache>& p;
          ~Reset() { p.reset(); }
        } reset{tx};
        tx = std::make_unique<WriteCache>();
        if (Status s = body(); !s.ok()) return s;
        return FlushMembers();
      },
      shared_keys);
}

Status HqService::Impl::FlushMembers() {
  std::vector<std::pair<uint64_t, MemberSlot*>> dirty;
  for (auto& [id, slot] : tx->members) {
    if (slot.write || slot.touch) dirty.emplace_back(slot.order, &slot);
  }
  std::sort(dirty.begin(), dirty.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<Store::MemberWrite> writes;  // in the order of the changes: change_seq follows
  for (const auto& [order, slot] : dirty) {
    if (!slot->m) continue;  // a touch of a member HQ does not have changes nothing
    if (slot->write || slot->touch)
      writes.push_back({&*slot->m, slot->write, slot->stored ? &*slot->stored : nullptr});
  }
  return store.UpdateMembers(writes);
}

// Writes the changed members now and drops what the write had read of every member (a
// long job that goes through many members keeps none of them).
Status HqService::Impl::Forget() {
  if (Status s = FlushMembers(); !s.ok()) return s;
  tx->members.clear();
  return Status::Ok();
}

Status HqService::Impl::NoWrite() {
  return Status::Error(ErrorCode::kInternal, "a member change outside a write transaction");
}

// The member as the open write sees it, read on first use.
Result<HqService::Impl::MemberSlot*> HqService::Impl::Slot(uint64_t member_id) {
  if (!tx) return NoWrite();
  if (auto it = tx->members.find(member_id); it != tx->members.end()) return &it->second;
  auto m = store.GetMember(member_id);
  if (!m.ok()) return m.status();
  MemberSlot& slot = tx->members[member_id];
  slot.stored = *m;
  slot.m = std::move(*m);
  return &slot;
}

// Reads the members a write is about to check, with what the checks read of each (recorded
// states; the terminal's freezes and tier upgrades), in three statements rather than
// three per member. A member read already keeps its slot.
Status HqService::Impl::WarmMembers(const std::string& tid, std::vector<uint64_t> ids) {
  if (!tx) return NoWrite();
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  ids.erase(std::remove_if(ids.begin(), ids.end(),
                           [&](uint64_t id) { return id == 0 || tx->members.count(id) > 0; }),
            ids.end());
  if (ids.empty()) return Status::Ok();
  const std::vector<std::string> kinds{"freeze", "tier_upgrade"};  // TerminalMarks
  auto members = store.GetMembers(ids);
  if (!members.ok()) return members.status();
  auto sent = store.MemberDownloads(tid, ids);  // DownloadsOf's: one statement, not one a member
  if (!sent.ok()) return sent.status();
  for (uint64_t id : ids) {
    auto it = sent->find(id);
    tx->member_downloads[{tid, id}] =
        it == sent->end() ? std::vector<int64_t>() : std::move(it->second);
  }
  auto states = store.MemberStateHistories(ids);
  if (!states.ok()) return states.status();
  auto marks = store.TerminalMarksOf(tid, ids, kinds);
  if (!marks.ok()) return marks.status();
  std::map<uint64_t, MemberRecord> found;
  for (auto& m : *members) {
    const uint64_t id = m.member_id;
    found.emplace(id, std::move(m));
  }
  for (uint64_t id : ids) {
    MemberSlot& slot = tx->members[id];
    if (auto it = found.find(id); it != found.end()) {
      slot.stored = it->second;
      slot.m = std::move(it->second);
    }
    auto st = states->find(id);
    slot.states = st == states->end() ? std::vector<MemberStateRecord>() : std::move(st->second);
    for (const auto& kind : kinds) {
      auto f = marks->find({id, kind});
      slot.marks[{tid, kind}] =
          f == marks->end() ? std::vector<TerminalMark>() : std::move(f->second);
    }
  }
  return Status::Ok();
}

// What applying an upload's entries reads of each member, at once: its debt lots (an earn
// repays them first) and, for the members it earns for, the applied earnings chain-wide
// velocity sums (from an hour before the earliest earn on). Members must be warm (Slot).
Status HqService::Impl::WarmAccounting(const std::vector<sync::Entry>& entries,
                                       const std::string& tid) {
  if (!tx) return NoWrite();
  std::vector<uint64_t> debtors, earners;
  int64_t first_earn = std::numeric_limits<int64_t>::max();
  for (const auto& e : entries) {
    if (e.terminal_id != tid || e.member_id == 0) continue;
    auto it = tx->members.find(e.member_id);
    if (it == tx->members.end()) continue;
    if (!it->second.lots && !it->second.debts) debtors.push_back(e.member_id);
    if (e.kind == "earn" && e.points > 0 && !it->second.earns) {
      earners.push_back(e.member_id);
      first_earn = std::min(first_earn, e.at_ms);
    }
  }
  std::sort(debtors.begin(), debtors.end());
  debtors.erase(std::unique(debtors.begin(), debtors.end()), debtors.end());
  std::sort(earners.begin(), earners.end());
  earners.erase(std::unique(earners.begin(), earners.end()), earners.end());
  if (!debtors.empty()) {
    auto debts = store.DebtLotsOfMembers(debtors);
    if (!debts.ok()) return debts.status();
    for (uint64_t id : debtors) {
      auto d = debts->find(id);
      tx->members[id].debts = d == debts->end() ? std::vector<model::Lot>() : std::move(d->second);
    }
  }
  if (!earners.empty()) {
    // An hour before the earliest earn: ChainVelocity's windows all start at or after it.
    const int64_t after = first_earn < std::numeric_limits<int64_t>::min() + 3'600'000
                              ? first_earn
                              : first_earn - 3'600'000;
    auto earns = store.AppliedEarnsAfter(earners, after);
    if (!earns.ok()) return earns.status();
    for (uint64_t id : earners) {
      MemberSlot& slot = tx->members[id];
      auto found = earns->find(id);
      slot.earns = found == earns->end() ? std::vector<std::pair<int64_t, int64_t>>()
                                         : std::move(found->second);
      slot.earns_after = after;
    }
  }
  return Status::Ok();
}

// The uploading terminal's own earn entries, for the members of its checkouts that earned or
// redeemed (FrozenByOwnEarnings: the states a frozen member was priced with differ only
// there), in one statement: applied ones stored (from the look-back before each member's
// first sale in the upload, after its latest unfreeze; only below the terminal's first fork,
// since a restored terminal does not hold the branch it lost), and the upload's own.
Status HqService::Impl::WarmOwnEarns(const std::string& tid,
                                     const std::vector<sync::Checkout>& checkouts,
                                     const std::vector<sync::Entry>& entries) {
  if (!tx) return NoWrite();
  std::map<uint64_t, int64_t> first_sale;
  for (const auto& c : checkouts) {
    if (!c.member_id || *c.member_id == 0 || (c.points_earned <= 0 && c.redeemed_points <= 0))
      continue;
    auto [it, fresh] = first_sale.emplace(*c.member_id, c.committed_at_ms);
    if (!fresh) it->second = std::min(it->second, c.committed_at_ms);
  }
  std::map<uint64_t, int64_t> from_of;
  std::vector<uint64_t> ids;
  int64_t after = std::numeric_limits<int64_t>::max();
  for (const auto& [id, at] : first_sale) {
    auto slot = Slot(id);
    if (!slot.ok()) return slot.status();
    if ((*slot)->own_earns && (*slot)->own_earns_of == tid) continue;
    const int64_t from = OwnEarnsFrom((*slot)->m ? (*slot)->m->unfrozen_at_ms : 0, at);
    from_of[id] = from;
    ids.push_back(id);
    after = std::min(after, from);
  }
  if (ids.empty()) return Status::Ok();
  // This upload forks the chain too when it carries a seq HQ holds up to (a restored
  // terminal; or entries sent again, which only counts less): batch_resent_below.
  auto below = BranchBelow(tid);
  if (!below.ok()) return below.status();
  auto stored = store.TerminalEarnsOf(tid, ids, after);
  if (!stored.ok()) return stored.status();
  using OwnEarn = MemberSlot::OwnEarn;
  std::map<uint64_t, std::vector<OwnEarn>> own;
  for (const auto& e : entries) {
    if (e.terminal_id != tid || e.kind != "earn" || e.checkout_id.empty()) continue;
    auto from = from_of.find(e.member_id);
    if (from == from_of.end() || e.at_ms <= from->second || model::EntryHash(e) != e.hash) continue;
    own[e.member_id].push_back({{e.at_ms, e.seq, e.points, e.checkout_id}, true});
  }
  for (uint64_t id : ids) {
    auto& v = own[id];
    if (auto it = stored->find(id); it != stored->end()) {
      for (auto& e : it->second)
        if (e.at_ms > from_of[id] && e.seq < *below) v.push_back({std::move(e), false});
    }
  }
  for (auto& [id, v] : own) {
    // By seq; an entry both in the upload and stored is counted once (the upload's: what the
    // terminal holds now).
    std::stable_sort(v.begin(), v.end(),
                     [](const OwnEarn& a, const OwnEarn& b) { return a.e.seq < b.e.seq; });
    v.erase(std::unique(v.begin(), v.end(),
                        [](const OwnEarn& a, const OwnEarn& b) { return a.e.seq == b.e.seq; }),
            v.end());
    MemberSlot& slot = tx->members[id];
    slot.own_earns = std::move(v);
    slot.own_earns_of = tid;
    slot.own_earns_after = from_of[id];
  }
  return Status::Ok();
}

// The member's applied earns after after_ms, by time: a view of the slot's when it holds
// them (found by their time, not copied), else read from the store into *read.
Result<std::span<const std::pair<int64_t, int64_t>>> HqService::Impl::EarnsAfter(
    MemberSlot& s, uint64_t member_id, int64_t after_ms,
    std::vector<std::pair<int64_t, int64_t>>* read) {
  if (s.earns && after_ms >= s.earns_after) {
    auto from = std::upper_bound(
        s.earns->begin(), s.earns->end(), after_ms,
        [](int64_t t, const std::pair<int64_t, int64_t>& x) { return t < x.first; });
    return std::span<const std::pair<int64_t, int64_t>>(from, s.earns->end());
  }
  auto stored = store.AppliedEarnsAfter({member_id}, after_ms);
  if (!stored.ok()) return stored.status();
  read->clear();
  if (auto it = stored->find(member_id); it != stored->end()) *read = std::move(it->second);
  return std::span<const std::pair<int64_t, int64_t>>(*read);
}

Result<HqService::Impl::MemberSlot*> HqService::Impl::MemberOrBare(uint64_t member_id) {
  auto slot = Slot(member_id);
  if (!slot.ok() || (*slot)->m) return slot;
  // A terminal knows a member HQ has no row for only through a dynamic code HQ signed
  // (or a database from elsewhere): keep its points anyway, under a bare member.
  MemberRecord bare;
  bare.member_id = member_id;
  bare.created_at_ms = clock.now_ms();
  if (Status s = store.InsertMember(bare); !s.ok()) return s;
  (*slot)->m = bare;
  (*slot)->stored = bare;
  if (Status s = AddState(**slot, bare.created_at_ms, bare.tier, bare.status); !s.ok()) return s;
  return slot;
}

// Saves a member whose tier or status may have changed, recording the new state with
// HQ's time (what a terminal could have known is judged from these).
Status HqService::Impl::SaveMember(const MemberRecord& m, const std::string& old_tier,
                                   const std::string& old_status) {
  auto slot = Slot(m.member_id);
  if (!slot.ok()) return slot.status();
  MemberSlot& s = **slot;
  if (!s.m || &*s.m != &m) s.m = m;
  s.write = true;
  s.order = ++tx->changes;
  if (m.tier == old_tier && m.status == old_status) return Status::Ok();
  return AddState(s, clock.now_ms(), m.tier, m.status);
}

// Gives the member a new change_seq at the end of the write (it will be in the next page).
Status HqService::Impl::Touch(uint64_t member_id) {
  auto slot = Slot(member_id);
  if (!slot.ok()) return slot.status();
  (*slot)->touch = true;
  (*slot)->order = ++tx->changes;
  return Status::Ok();
}

Status HqService::Impl::AddState(MemberSlot& s, int64_t at_ms, const std::string& tier,
                                 const std::string& status) {
  if (Status st = store.AddMemberState(s.m->member_id, at_ms, tier, status); !st.ok()) return st;
  if (s.states) {
    auto at = std::upper_bound(s.states->begin(), s.states->end(), at_ms,
                               [](int64_t t, const MemberStateRecord& r) { return t < r.at_ms; });
    s.states->insert(at, MemberStateRecord{at_ms, tier, status});
  }
  return Status::Ok();
}

// (tier, status) pairs in effect at any time in [from_ms, to_ms]: the one in effect just
// before from_ms (the latest recorded before it, by time, then as recorded) and every one
// from from_ms up to to_ms. A state recorded in from_ms itself does not hide the one before:
// from_ms is a download's time, and a change in the same millisecond may have come after the
// download read the member. Empty when none was recorded.
Result<std::vector<std::pair<std::string, std::string>>> HqService::Impl::StatesBetween(
    MemberSlot& s, uint64_t member_id, int64_t from_ms, int64_t to_ms) {
  if (!s.states) {
    auto h = store.MemberStateHistory(member_id);
    if (!h.ok()) return h.status();
    s.states = std::move(*h);
  }
  int64_t base = 0;
  for (const auto& r : *s.states) {
    if (r.at_ms >= from_ms) break;
    base = r.at_ms;
  }
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& r : *s.states) {
    if (r.at_ms > to_ms) break;
    if (r.at_ms >= base) out.emplace_back(r.tier, r.status);
  }
  return out;
}

Result<std::vector<HqService::Impl::Mark>> HqService::Impl::TerminalMarks(MemberSlot& s,
                                                                          const std::string& tid,
                                                                          uint64_t member_id,
                                                                          const std::string& kind) {
  auto key = std::make_pair(tid, kind);
  auto it = s.marks.find(key);
  if (it == s.marks.end()) {
    auto stored = store.TerminalMarksOf(tid, {member_id}, {kind});
    if (!stored.ok()) return stored.status();
    auto f = stored->find({member_id, kind});
    it = s.marks
             .emplace(key, f == stored->end() ? std::vector<TerminalMark>() : std::move(f->second))
             .first;
  }
  std::vector<Mark> out;
  for (const auto& m : it->second) out.push_back({m, false});
  if (auto b = batch_marks.find({member_id, kind}); b != batch_marks.end())
    for (const auto& m : b->second) out.push_back({m, true});
  return out;
}

Result<int64_t> HqService::Impl::BranchBelow(const std::string& tid) {
  if (!tx) return NoWrite();
  auto it = tx->first_fork.find(tid);
  if (it == tx->first_fork.end()) {
    auto read = store.FirstForkSeq(tid);
    if (!read.ok()) return read.status();
    it = tx->first_fork.emplace(tid, *read).first;
  }
  return std::min(it->second.value_or(std::numeric_limits<int64_t>::max()), batch_resent_below);
}

// Every entry stored in a write goes through here (the first-entry times stay current).
Status HqService::Impl::InsertEntry(const sync::Entry& e, bool applied, int64_t received_at_ms) {
  if (Status s = store.InsertEntry(e, applied, received_at_ms); !s.ok()) return s;
  if (!tx) return Status::Ok();
  auto slot = tx->members.find(e.member_id);
  if (slot == tx->members.end()) return Status::Ok();
  if (auto& earns = slot->second.earns;
      earns && applied && e.kind == "earn" && e.at_ms > slot->second.earns_after) {
    auto at = std::upper_bound(
        earns->begin(), earns->end(), e.at_ms,
        [](int64_t t, const std::pair<int64_t, int64_t>& x) { return t < x.first; });
    earns->insert(at, {e.at_ms, e.points});
  }
  auto it = slot->second.marks.find({e.terminal_id, e.kind});
  if (it != slot->second.marks.end() &&
      (applied || e.kind != "tier_upgrade"))  // a refused upgrade promotes no one
    it->second.push_back({e.at_ms, e.seq});
  return Status::Ok();
}

// What the terminal was sent of the member up to at_ms: its last changes page at or before
// it, and the times the member was sent to it alone after that page (a look-up, a repair, a
// sale's record), in order, and whether it was sent alone after at_ms as well (downloads
// never happen inside a write).
Result<HqService::Impl::KnownDownloads> HqService::Impl::DownloadsOf(const std::string& tid,
                                                                     uint64_t member_id,
                                                                     int64_t at_ms) {
  KnownDownloads out;
  std::vector<DownloadSpan>* spans = tx ? &tx->downloads[tid] : nullptr;
  bool found = false;
  if (spans) {
    for (const auto& d : *spans) {
      if ((!d.last || *d.last <= at_ms) && (!d.next || at_ms < *d.next)) {
        out.page = d.last;
        found = true;
        break;
      }
    }
  }
  if (!found) {
    auto d = store.DownloadsAround(tid, at_ms);
    if (!d.ok()) return d.status();
    if (spans) spans->push_back({d->at_or_before, d->after});
    out.page = d->at_or_before;
  }
  std::vector<int64_t> read;
  const std::vector<int64_t>* own = nullptr;
  if (tx) {
    if (auto it = tx->member_downloads.find({tid, member_id}); it != tx->member_downloads.end())
      own = &it->second;
  }
  if (!own) {
    auto m = store.MemberDownloads(tid, {member_id});
    if (!m.ok()) return m.status();
    if (auto it = m->find(member_id); it != m->end()) read = std::move(it->second);
    own = tx ? &(tx->member_downloads[{tid, member_id}] = std::move(read)) : &read;
  }
  for (int64_t t : *own) {
    if (t > at_ms)
      out.alone_later = true;
    else if (!out.page || t > *out.page)
      out.alone.push_back(t);  // in order: Store::MemberDownloads gives them by time
  }
  return out;
}

Result<std::vector<model::Lot>*> HqService::Impl::LotsOf(MemberSlot& s, uint64_t member_id) {
  if (!s.lots) {
    auto lots = store.Lots(member_id);
    if (!lots.ok()) return lots.status();
    s.lots = std::move(*lots);
  }
  return &*s.lots;
}

Status HqService::Impl::SetLot(MemberSlot& s, int64_t lot_id, int64_t remaining) {
  if (Status st = store.SetLotRemaining(lot_id, remaining); !st.ok()) return st;
  std::vector<model::Lot>* debts = s.debts ? &*s.debts : nullptr;
  for (auto* held : {s.lots ? &*s.lots : nullptr, debts}) {
    if (!held) continue;
    auto it = std::find_if(held->begin(), held->end(),
                           [&](const model::Lot& l) { return l.lot_id == lot_id; });
    if (it == held->end()) {
      // A lot becoming a debt that the debts do not hold: read them again when next asked.
      if (held == debts && remaining < 0) s.debts.reset();
      continue;
    }
    if (remaining == 0 || (held == debts && remaining > 0))
      held->erase(it);
    else
      it->remaining = remaining;
  }
  return Status::Ok();
}

Status HqService::Impl::EmptyLots(MemberSlot& s, const std::set<int64_t>& lot_ids) {
  if (lot_ids.empty()) return Status::Ok();
  for (int64_t id : lot_ids)
    if (Status st = store.SetLotRemaining(id, 0); !st.ok()) return st;
  for (auto* held : {s.lots ? &*s.lots : nullptr, s.debts ? &*s.debts : nullptr}) {
    if (!held) continue;
    held->erase(std::remove_if(held->begin(), held->end(),
                               [&](const model::Lot& l) { return lot_ids.count(l.lot_id) > 0; }),
                held->end());
  }
  return Status::Ok();
}

Status HqService::Impl::AddLot(MemberSlot& s, model::Lot lot) {
  auto id = store.AddLot(lot);
  if (!id.ok()) return id.status();
  lot.lot_id = *id;
  auto by_expiry = [](const model::Lot& a, const model::Lot& b) {
    return a.expires_at_s != b.expires_at_s ? a.expires_at_s < b.expires_at_s : a.lot_id < b.lot_id;
  };
  if (s.debts && lot.remaining < 0)
    s.debts->insert(std::upper_bound(s.debts->begin(), s.debts->end(), lot, by_expiry), lot);
  if (s.lots && lot.remaining != 0)
    s.lots->insert(std::upper_bound(s.lots->begin(), s.lots->end(), lot, by_expiry),
                   std::move(lot));
  return Status::Ok();
}

}  // namespace loyalty::hq
