#include "loyalty/hq/lots.h"

#include "loyalty/rules/rules.h"

namespace loyalty::hq {

Status MoveLots(Store& store, uint64_t member_id, int64_t delta, int64_t at_s, int64_t expires_at_s,
                const std::string& entry_id) {
  if (delta == 0) return Status::Ok();
  auto lots = store.Lots(member_id);
  if (!lots.ok()) return lots.status();
  const rules::LotMovement m = rules::PlanLotMovement(*lots, member_id, delta, at_s, expires_at_s, entry_id);
  for (const auto& u : m.updates)
    if (Status s = store.SetLotRemaining(u.lot_id, u.remaining); !s.ok()) return s;
  if (m.added) {
    if (auto id = store.AddLot(*m.added); !id.ok()) return id.status();
  }
  return Status::Ok();
}

}  // namespace loyalty::hq
