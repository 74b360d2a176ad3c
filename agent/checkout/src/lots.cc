#include "loyalty/checkout/lots.h"

#include "loyalty/rules/rules.h"

namespace loyalty::checkout {

Status ApplyLotDelta(ledger::Ledger& w, uint64_t member_id, int64_t delta, int64_t at_s,
                     int64_t expires_at_s, const std::string& entry_id) {
  if (delta == 0) return Status::Ok();
  auto lots = w.Lots(member_id);
  if (!lots.ok()) return lots.status();
  return ApplyLotDelta(w, *lots, member_id, delta, at_s, expires_at_s, entry_id);
}

Status ApplyLotDelta(ledger::Ledger& w, std::vector<model::Lot>& lots, uint64_t member_id,
                     int64_t delta, int64_t at_s, int64_t expires_at_s,
                     const std::string& entry_id) {
  if (delta == 0) return Status::Ok();
  const rules::LotMovement m =
      rules::PlanLotMovement(lots, member_id, delta, at_s, expires_at_s, entry_id);
  for (const auto& u : m.updates)
    if (Status s = w.SetLotRemaining(member_id, u.lot_id, u.remaining); !s.ok()) return s;
  int64_t new_id = 0;
  if (m.added) {
    auto id = w.AddLot(*m.added);
    if (!id.ok()) return id.status();
    new_id = *id;
  }
  rules::ApplyLotMovement(lots, m, new_id);
  return Status::Ok();
}

}  // namespace loyalty::checkout
