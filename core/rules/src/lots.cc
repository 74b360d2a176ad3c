// Lots and the calendar and risk rules around them: FIFO consumption, month-end expiry in
// the store's local time, the birthday month, velocity and provisional upgrades.

#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

#include "loyalty/base/time.h"
#include "loyalty/rules/rules.h"

namespace loyalty::rules {
namespace {

constexpr int64_t kMaxAbsTime = 1000000000000;  // ±10^12 s, the range TimeZone supports
constexpr int64_t kMaxAbsOffset = 18 * 3600;

int64_t ClampTime(int64_t t) { return std::clamp(t, -kMaxAbsTime, kMaxAbsTime); }

// The offset function comes from elsewhere (a TZif file); a value outside ±18 h would be a
// broken zone, and is clamped so the calendar arithmetic stays defined.
int64_t OffsetAt(const UtcOffsetFn& f, int64_t t) {
  return std::clamp(f(t), -kMaxAbsOffset, kMaxAbsOffset);
}

int TierRank(const std::string& tier) {
  if (tier == "member") return 0;
  if (tier == "vip") return 1;
  if (tier == "black") return 2;
  return -1;
}

}  // namespace

std::vector<LotTake> ConsumeFifo(const std::vector<Lot>& lots, int64_t points, int64_t now_s) {
  std::vector<LotTake> takes;
  if (points <= 0) return takes;
  std::vector<size_t> order;
  for (size_t i = 0; i < lots.size(); ++i)
    if (lots[i].remaining > 0 && now_s <= lots[i].expires_at_s) order.push_back(i);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (lots[a].expires_at_s != lots[b].expires_at_s)
      return lots[a].expires_at_s < lots[b].expires_at_s;
    return lots[a].lot_id < lots[b].lot_id;
  });
  int64_t left = points;
  for (size_t i : order) {
    if (left == 0) break;
    int64_t take = std::min(left, lots[i].remaining);
    takes.push_back({lots[i].lot_id, take});
    left -= take;
  }
  if (left > 0) takes.push_back({0, left});
  return takes;
}

int64_t LotExpiry(int64_t earned_at_s, int64_t validity_months, const UtcOffsetFn& utc_offset_at) {
  earned_at_s = ClampTime(earned_at_s);
  validity_months = std::clamp<int64_t>(validity_months, 0, 12 * 100000);
  CivilTime local = CivilFromUnix(earned_at_s + OffsetAt(utc_offset_at, earned_at_s));
  // The month after the expiry month, as a month count from year 0; its first local second
  // minus one is the last second of the expiry month.
  int64_t next = local.year * 12 + (local.month - 1) + validity_months + 1;
  int64_t year = next >= 0 ? next / 12 : -((-next + 11) / 12);  // floor, also before year 0
  CivilTime first{year, static_cast<int>(next - year * 12) + 1, 1, 0, 0, 0};
  int64_t last_local = UnixFromCivil(first) - 1;  // wall-clock seconds read as if UTC
  // Local → UTC: the offset in effect at the answer is what matters. Two rounds find it
  // unless 23:59:59 falls in a daylight-saving gap, where the second round's reading (the
  // offset after the jump) is kept.
  int64_t guess = last_local - OffsetAt(utc_offset_at, last_local);
  return last_local - OffsetAt(utc_offset_at, guess);
}

bool IsBirthdayMonth(int birthday_month, int64_t now_s, const UtcOffsetFn& utc_offset_at) {
  if (birthday_month < 1 || birthday_month > 12) return false;
  now_s = ClampTime(now_s);
  return CivilFromUnix(now_s + OffsetAt(utc_offset_at, now_s)).month == birthday_month;
}

bool CrossesVelocity(const Rules& rules, int64_t earned_in_window_before, int64_t points_now) {
  if (points_now <= 0) return false;
  return static_cast<__int128>(earned_in_window_before) + points_now > rules.max_points_per_hour;
}

std::optional<std::string> ProvisionalUpgrade(const Rules& rules, const std::string& current_tier,
                                              int64_t hq_month_spend_cents,
                                              int64_t local_spend_since_snapshot_cents) {
  if (!rules.provisional_upgrade) return std::nullopt;
  int current = TierRank(current_tier);
  if (current < 0) return std::nullopt;
  __int128 spend = static_cast<__int128>(hq_month_spend_cents) + local_spend_since_snapshot_cents;
  std::string target = "member";
  if (spend >= rules.black_threshold_cents) {
    target = "black";
  } else if (spend >= rules.vip_threshold_cents) {
    target = "vip";
  }
  if (TierRank(target) <= current) return std::nullopt;
  return target;
}

LotMovement PlanLotMovement(const std::vector<model::Lot>& lots, uint64_t member_id, int64_t delta,
                            int64_t at_s, int64_t expires_at_s, const std::string& entry_id) {
  LotMovement m;
  if (delta == 0) return m;
  if (delta > 0) {
    int64_t left = delta;
    for (const auto& l : lots) {
      if (left == 0) break;
      if (l.remaining >= 0) continue;
      const int64_t pay = std::min(left, -l.remaining);
      m.updates.push_back({l.lot_id, l.remaining + pay});
      left -= pay;
    }
    if (left > 0) m.added = model::Lot{0, member_id, left, left, at_s, expires_at_s, entry_id};
    return m;
  }
  std::vector<Lot> fifo;
  const model::Lot* debt = nullptr;
  for (const auto& l : lots) {
    if (l.remaining < 0) {
      if (debt == nullptr || l.lot_id < debt->lot_id) debt = &l;
      continue;
    }
    fifo.push_back({l.lot_id, l.remaining, l.expires_at_s});
  }
  int64_t shortfall = 0;
  for (const auto& take : ConsumeFifo(fifo, -delta, at_s)) {
    if (take.lot_id == 0) {
      shortfall += take.points;
      continue;
    }
    for (const auto& l : lots)
      if (l.lot_id == take.lot_id) m.updates.push_back({l.lot_id, l.remaining - take.points});
  }
  if (shortfall == 0) return m;
  if (debt != nullptr) {
    m.updates.push_back({debt->lot_id, debt->remaining - shortfall});
  } else {
    m.added =
        model::Lot{0, member_id, -shortfall, -shortfall, at_s, model::kNeverExpires, entry_id};
  }
  return m;
}

void ApplyLotMovement(std::vector<model::Lot>& lots, const LotMovement& m, int64_t new_lot_id) {
  for (const auto& u : m.updates)
    for (auto& l : lots)
      if (l.lot_id == u.lot_id) l.remaining = u.remaining;
  lots.erase(std::remove_if(lots.begin(), lots.end(),
                            [](const model::Lot& l) { return l.remaining == 0; }),
             lots.end());
  if (m.added && m.added->remaining != 0) {
    model::Lot added = *m.added;
    added.lot_id = new_lot_id;
    // The lots are in Lots() order already: the new one goes in its place.
    auto at = std::upper_bound(
        lots.begin(), lots.end(), added, [](const model::Lot& a, const model::Lot& b) {
          return a.expires_at_s != b.expires_at_s ? a.expires_at_s < b.expires_at_s
                                                  : a.lot_id < b.lot_id;
        });
    lots.insert(at, std::move(added));
  }
}

}  // namespace loyalty::rules
