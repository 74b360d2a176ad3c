#include "loyalty/checkout/lots.h"

#include <algorithm>
#include <map>
#include <vector>

#include "loyalty/rules/rules.h"

namespace loyalty::checkout {
namespace {

// Ledger::Lots order: by expiry, then by creation.
bool LotBefore(const ledger::LotRow& a, const ledger::LotRow& b) {
  return a.expires_at_s != b.expires_at_s ? a.expires_at_s < b.expires_at_s : a.lot_id < b.lot_id;
}

void InsertSorted(std::vector<ledger::LotRow>& lots, ledger::LotRow lot) {
  auto at = std::upper_bound(lots.begin(), lots.end(), lot, LotBefore);
  lots.insert(at, std::move(lot));
}

// Ledger::Lots leaves out lots with nothing remaining.
void DropEmpty(std::vector<ledger::LotRow>& lots) {
  lots.erase(std::remove_if(lots.begin(), lots.end(), [](const ledger::LotRow& l) { return l.remaining == 0; }),
             lots.end());
}

}  // namespace

Status ApplyLotDelta(ledger::Ledger& w, uint64_t member_id, int64_t delta, int64_t at_s, int64_t expires_at_s,
                     const std::string& entry_id) {
  if (delta == 0) return Status::Ok();
  auto lots = w.Lots(member_id);
  if (!lots.ok()) return lots.status();
  return ApplyLotDelta(w, *lots, member_id, delta, at_s, expires_at_s, entry_id);
}

Status ApplyLotDelta(ledger::Ledger& w, std::vector<ledger::LotRow>& lots, uint64_t member_id, int64_t delta,
                     int64_t at_s, int64_t expires_at_s, const std::string& entry_id) {
  if (delta == 0) return Status::Ok();
  if (delta > 0) {
    // New points first pay off a debt left by an earlier claw-back.
    int64_t remaining = delta;
    for (auto& lot : lots) {
      if (lot.remaining < 0 && remaining > 0) {
        int64_t pay = std::min(remaining, -lot.remaining);
        if (Status s = w.SetLotRemaining(member_id, lot.lot_id, lot.remaining + pay); !s.ok()) return s;
        lot.remaining += pay;
        remaining -= pay;
      }
    }
    DropEmpty(lots);
    ledger::LotRow lot{0, member_id, delta, remaining, at_s, expires_at_s, entry_id};
    auto id = w.AddLot(lot);
    if (!id.ok()) return id.status();
    lot.lot_id = *id;
    if (lot.remaining != 0) InsertSorted(lots, std::move(lot));
    return Status::Ok();
  }
  std::vector<rules::Lot> fifo;
  ledger::LotRow* debt = nullptr;
  for (auto& lot : lots) {
    if (lot.remaining < 0 || lot.expires_at_s == ledger::kNeverExpires) {
      debt = &lot;
      continue;
    }
    fifo.push_back({lot.lot_id, lot.remaining, lot.expires_at_s});
  }
  std::map<int64_t, ledger::LotRow*> by_id;
  for (auto& lot : lots) by_id[lot.lot_id] = &lot;
  int64_t shortfall = 0;
  for (const auto& take : rules::ConsumeFifo(fifo, -delta, at_s)) {
    if (take.lot_id == 0) {
      shortfall += take.points;
      continue;
    }
    ledger::LotRow* lot = by_id.at(take.lot_id);
    lot->remaining -= take.points;
    if (Status s = w.SetLotRemaining(member_id, lot->lot_id, lot->remaining); !s.ok()) return s;
  }
  if (shortfall == 0) {
    DropEmpty(lots);
    return Status::Ok();
  }
  // The points were already spent: the balance goes below zero, recorded as a debt lot.
  if (debt) {
    debt->remaining -= shortfall;
    if (Status s = w.SetLotRemaining(member_id, debt->lot_id, debt->remaining); !s.ok()) return s;
    DropEmpty(lots);
    return Status::Ok();
  }
  DropEmpty(lots);
  ledger::LotRow lot{0, member_id, 0, -shortfall, at_s, ledger::kNeverExpires, entry_id};
  auto id = w.AddLot(lot);
  if (!id.ok()) return id.status();
  lot.lot_id = *id;
  InsertSorted(lots, std::move(lot));
  return Status::Ok();
}

}  // namespace loyalty::checkout
