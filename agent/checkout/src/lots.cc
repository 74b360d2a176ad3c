#include "loyalty/checkout/lots.h"

#include <algorithm>
#include <map>
#include <vector>

#include "loyalty/rules/rules.h"

namespace loyalty::checkout {

Status ApplyLotDelta(ledger::Ledger& w, uint64_t member_id, int64_t delta, int64_t at_s, int64_t expires_at_s,
                     const std::string& entry_id) {
  if (delta == 0) return Status::Ok();
  auto lots = w.Lots(member_id);
  if (delta > 0) {
    // New points first pay off a debt left by an earlier claw-back.
    int64_t remaining = delta;
    for (const auto& lot : lots) {
      if (lot.remaining < 0 && remaining > 0) {
        int64_t pay = std::min(remaining, -lot.remaining);
        if (Status s = w.SetLotRemaining(lot.lot_id, lot.remaining + pay); !s.ok()) return s;
        remaining -= pay;
      }
    }
    ledger::LotRow lot{0, member_id, delta, remaining, at_s, expires_at_s, entry_id};
    auto id = w.AddLot(lot);
    return id.ok() ? Status::Ok() : id.status();
  }
  std::vector<rules::Lot> fifo;
  const ledger::LotRow* debt = nullptr;
  for (const auto& lot : lots) {
    if (lot.remaining < 0 || lot.expires_at_s == ledger::kNeverExpires) {
      debt = &lot;
      continue;
    }
    fifo.push_back({lot.lot_id, lot.remaining, lot.expires_at_s});
  }
  std::map<int64_t, int64_t> left;
  for (const auto& f : fifo) left[f.lot_id] = f.remaining;
  int64_t shortfall = 0;
  for (const auto& take : rules::ConsumeFifo(fifo, -delta, at_s)) {
    if (take.lot_id == 0) {
      shortfall += take.points;
      continue;
    }
    left[take.lot_id] -= take.points;
    if (Status s = w.SetLotRemaining(take.lot_id, left[take.lot_id]); !s.ok()) return s;
  }
  if (shortfall == 0) return Status::Ok();
  // The points were already spent: the balance goes below zero, recorded as a debt lot.
  if (debt) return w.SetLotRemaining(debt->lot_id, debt->remaining - shortfall);
  ledger::LotRow lot{0, member_id, 0, -shortfall, at_s, ledger::kNeverExpires, entry_id};
  auto id = w.AddLot(lot);
  return id.ok() ? Status::Ok() : id.status();
}

}  // namespace loyalty::checkout
