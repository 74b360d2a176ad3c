// HQ's side of the shared lot engine: writes a member's points movement to HQ's lots as
// rules::PlanLotMovement plans it — the same plan the terminal's ledger applies
// (checkout::ApplyLotDelta), so both ends hold the same lots for the same entries.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "loyalty/base/status.h"
#include "loyalty/model/lot.h"
#include "loyalty/rules/rules.h"

namespace loyalty::hq {

// `Lots` is where the lots are read and written: hq::Store itself, or the upload's
// per-member cache in front of it. It offers
//   Result<std::vector<model::Lot>> Lots(uint64_t member_id);      // remaining != 0
//   Result<std::vector<model::Lot>> DebtLots(uint64_t member_id);  // remaining < 0
//   Status SetLotRemaining(int64_t lot_id, int64_t remaining);
//   Result<int64_t> AddLot(const model::Lot& lot);
// delta > 0 adds a lot expiring at expires_at_s after paying any debt (only the debt lots
// are read); delta < 0 consumes lots not expired at at_s, FIFO, and records any shortfall
// as the debt lot. Inside the caller's transaction.
template <typename Lots>
Status MoveLots(Lots& lots, uint64_t member_id, int64_t delta, int64_t at_s, int64_t expires_at_s,
                const std::string& entry_id) {
  if (delta == 0) return Status::Ok();
  auto held = delta > 0 ? lots.DebtLots(member_id) : lots.Lots(member_id);
  if (!held.ok()) return held.status();
  const rules::LotMovement m =
      rules::PlanLotMovement(*held, member_id, delta, at_s, expires_at_s, entry_id);
  for (const auto& u : m.updates)
    if (Status s = lots.SetLotRemaining(u.lot_id, u.remaining); !s.ok()) return s;
  if (m.added) {
    if (auto id = lots.AddLot(*m.added); !id.ok()) return id.status();
  }
  return Status::Ok();
}

}  // namespace loyalty::hq
