// Points accounting: an applied entry's points into the member's balance and lots (within the
// limits table), HQ's own chain of entries, chain-wide velocity, and tiers by the month's spend.
#include "service_internal.h"

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "loyalty/base/ids.h"
#include "loyalty/hq/lots.h"
#include "loyalty/model/entry.h"

namespace loyalty::hq {

using namespace internal;

namespace {

// The reason of a terminal's freeze entry as HQ keeps and sends it: a short snake_case word
// (within the limits table), "velocity" for anything else.
std::string FreezeReason(const std::string& detail) {
  auto d = ParseJsonObject(detail);
  if (d.ok()) {
    auto it = d->find("reason");
    if (it != d->end() && it->is_string()) {
      const auto& r = it->get_ref<const std::string&>();
      bool ok = !r.empty() && r.size() <= sync::kMaxReasonBytes &&
                std::all_of(r.begin(), r.end(), [](char c) {
                  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
                });
      if (ok) return r;
    }
  }
  return "velocity";
}

// balance + points, when the sum neither overflows nor leaves the limits table's ±kMaxPoints.
std::optional<int64_t> BalanceAfter(int64_t balance, int64_t points) {
  int64_t after = 0;
  if (__builtin_add_overflow(balance, points, &after) || after > sync::kMaxPoints ||
      after < -sync::kMaxPoints) {
    return std::nullopt;
  }
  return after;
}

}  // namespace

int64_t HqService::Impl::UtcOffset(int64_t t) const { return opt.timezone.UtcOffsetAt(t); }

// [start, end) of the local calendar month holding now_s, in unix ms.
std::pair<int64_t, int64_t> HqService::Impl::MonthBounds(int64_t now_s) const {
  CivilTime l = opt.timezone.ToLocal(now_s);
  CivilTime start{l.year, l.month, 1, 0, 0, 0};
  CivilTime next{l.month == 12 ? l.year + 1 : l.year, l.month == 12 ? 1 : l.month + 1, 1, 0, 0, 0};
  return {opt.timezone.FromLocal(start) * 1000, opt.timezone.FromLocal(next) * 1000};
}

// Σ total due of the member's checkouts in the local month holding now_s, net of refunds.
Result<int64_t> HqService::Impl::MonthSpend(uint64_t member_id, int64_t now_s) {
  auto [from, to] = MonthBounds(now_s);
  return store.MemberSpend(member_id, from, to);
}

std::string HqService::Impl::TierForSpend(int64_t spend) const {
  if (spend >= current.black_threshold_cents) return "black";
  if (spend >= current.vip_threshold_cents) return "vip";
  return "member";
}

// The write's lots through its member slot (the store, with the slot's copy kept in
// step), as hq::MoveLots reads and writes them.
struct HqService::Impl::SlotLots {
  Impl& impl;
  MemberSlot& slot;
  Result<std::vector<model::Lot>> Lots(uint64_t member_id) {
    auto held = impl.LotsOf(slot, member_id);
    if (!held.ok()) return held.status();
    return **held;
  }
  Result<std::vector<model::Lot>> DebtLots(uint64_t member_id) {
    if (!slot.lots && slot.debts) return *slot.debts;
    if (!slot.lots) return impl.store.DebtLots(member_id);
    std::vector<model::Lot> debts;
    for (const auto& l : *slot.lots)
      if (l.remaining < 0) debts.push_back(l);
    return debts;
  }
  Status SetLotRemaining(int64_t lot_id, int64_t remaining) {
    return impl.SetLot(slot, lot_id, remaining);
  }
  Result<int64_t> AddLot(const model::Lot& lot) {
    if (Status s = impl.AddLot(slot, lot); !s.ok()) return s;
    return int64_t{0};  // MoveLots needs no id
  }
};

// Whether the member's balance can take `points` within the limits table.
Result<bool> HqService::Impl::BalanceCanTake(uint64_t member_id, int64_t points) {
  auto slot = Slot(member_id);
  if (!slot.ok()) return slot.status();
  return BalanceAfter((*slot)->m ? (*slot)->m->balance : 0, points).has_value();
}

// Counts an entry's points into the member's balance and lots, and its status effects.
Status HqService::Impl::ApplyEntry(const sync::Entry& e) {
  auto slot = MemberOrBare(e.member_id);
  if (!slot.ok()) return slot.status();
  MemberRecord& m = *(*slot)->m;
  const std::string old_tier = m.tier, old_status = m.status;
  std::optional<int64_t> after = BalanceAfter(m.balance, e.points);
  if (!after) {
    return Status::Error(ErrorCode::kBadRequest,
                         "the balance of member " + std::to_string(e.member_id) +
                             " would leave the limits (|balance| <= 10^15)");
  }
  int64_t at_s = FloorDiv(e.at_ms, 1000);
  if (e.kind != "expire") {  // expire entries empty specific lots themselves
    const int64_t expires = e.points > 0
                                ? rules::LotExpiry(at_s, current.points_validity_months,
                                                   [this](int64_t t) { return UtcOffset(t); })
                                : 0;
    SlotLots lots{*this, **slot};
    if (Status s = MoveLots(lots, e.member_id, e.points, at_s, expires, e.entry_id); !s.ok())
      return s;
  }
  m.balance = *after;
  // A terminal's velocity freeze stands unless HQ lifted a freeze after it.
  if (e.kind == "freeze" && e.at_ms > m.unfrozen_at_ms) {
    m.status = "frozen";
    m.frozen_reason = FreezeReason(e.detail);
  }
  return SaveMember(m, old_tier, old_status);
}

// Appends one of HQ's own entries to its chain (not applied: the caller does that).
Result<sync::Entry> HqService::Impl::AppendHqEntry(const std::string& kind, uint64_t member_id,
                                                   int64_t points, const json& detail) {
  if (Status s = store.LockHqChain(); !s.ok()) return s;  // before its head is read
  auto head = store.HqHead();
  if (!head.ok()) return head.status();
  sync::Entry e;
  int64_t now = clock.now_ms();
  e.entry_id = NewEntryId(now);
  e.terminal_id = kHqTerminalId;
  e.seq = head->first + 1;
  e.kind = kind;
  e.member_id = member_id;
  e.points = points;
  e.at_ms = now;
  e.detail = detail.is_null() ? "" : Dump(detail);
  e.prev_hash = head->second;
  e.hash = model::EntryHash(e);
  if (Status s = InsertEntry(e, true, now); !s.ok()) return s;
  return e;
}

// Tier upgrade when this month's spend reaches a threshold (HQ never downgrades mid-month).
Status HqService::Impl::MaybeUpgradeTier(uint64_t member_id) {
  auto slot = Slot(member_id);
  if (!slot.ok()) return slot.status();
  if (!(*slot)->m) return Status::Ok();
  auto spend = MonthSpend(member_id, clock.now_s());
  if (!spend.ok()) return spend.status();
  std::string target = TierForSpend(*spend);
  MemberRecord& m = *(*slot)->m;
  if (TierRank(target) <= TierRank(m.tier)) return Touch(member_id);
  const std::string old_tier = m.tier;
  m.tier = target;
  return SaveMember(m, old_tier, m.status);
}

// Chain-wide velocity: the member's applied earnings across every terminal in an hour that
// holds this entry (after the latest unfreeze) over the limit freeze the member at HQ. The
// hours are those ending at this earn and at each later one within the hour: terminals
// upload in any order, so an earlier sale may arrive after a later one and complete its hour.
Status HqService::Impl::ChainVelocity(const sync::Entry& e) {
  if (e.kind != "earn" || e.points <= 0) return Status::Ok();
  auto slot = Slot(e.member_id);
  if (!slot.ok()) return slot.status();
  const std::optional<MemberRecord>& m = (*slot)->m;
  if (!m || m->status == "frozen") return Status::Ok();
  constexpr int64_t kHour = 3'600'000;
  const int64_t floor_ms = m->unfrozen_at_ms;
  std::vector<std::pair<int64_t, int64_t>> read;
  auto earns = EarnsAfter(**slot, e.member_id, std::max(e.at_ms - kHour, floor_ms), &read);
  if (!earns.ok()) return earns.status();
  Result<int64_t> earned = int64_t{0};
  size_t lo = 0;
  int64_t sum = 0;
  for (size_t hi = 0; hi < earns->size() && earned.ok(); ++hi) {  // sorted by time
    const auto [at, points] = (*earns)[hi];
    if (at >= e.at_ms + kHour) break;
    if (__builtin_add_overflow(sum, points, &sum)) {
      earned = Status::Error(ErrorCode::kOverflow, "a sum of points leaves 64 bits");
      break;
    }
    while ((*earns)[lo].first <= std::max(at - kHour, floor_ms)) sum -= (*earns)[lo++].second;
    if (at >= e.at_ms && sum > *earned) earned = sum;  // the hour (at - 1 h, at]
  }
  if (earned.ok() && *earned <= current.max_points_per_hour) return Status::Ok();
  auto f = AppendHqEntry("freeze", e.member_id, 0,
                         {{"reason", "velocity"},
                          {"earned_in_hour", earned.ok() ? json(*earned) : json(nullptr)},
                          {"max_points_per_hour", current.max_points_per_hour},
                          {"entry_id", e.entry_id}});
  if (!f.ok()) return f.status();
  Report("member_frozen",
         {{"member_id", std::to_string(e.member_id)}, {"reason", "velocity"}, {"source", "hq"}});
  return ApplyEntry(*f);
}

}  // namespace loyalty::hq
