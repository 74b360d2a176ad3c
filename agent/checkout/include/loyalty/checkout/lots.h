// Writes a change of a member's points to the ledger's lots, as the shared lot engine
// (rules::PlanLotMovement, docs/ledger.md) plans it.
// Used by checkout commits and refunds, and by the sync run when it applies a member's
// own unacknowledged entries again on top of an HQ snapshot. Writer thread, inside the
// caller's transaction.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "loyalty/base/status.h"
#include "loyalty/ledger/ledger.h"

namespace loyalty::checkout {

// delta > 0 adds a lot expiring at expires_at_s; delta < 0 consumes lots not yet expired
// at at_s. The member's cached balance is the caller's to update.
Status ApplyLotDelta(ledger::Ledger& w, uint64_t member_id, int64_t delta, int64_t at_s,
                     int64_t expires_at_s, const std::string& entry_id);

// The same on lots the caller has read already (Ledger::Lots of the member, in its order);
// on success `lots` is what Ledger::Lots would return now, so a commit reads them once.
Status ApplyLotDelta(ledger::Ledger& w, std::vector<model::Lot>& lots, uint64_t member_id,
                     int64_t delta, int64_t at_s, int64_t expires_at_s,
                     const std::string& entry_id);

}  // namespace loyalty::checkout
