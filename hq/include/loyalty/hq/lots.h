// HQ's side of the shared lot engine: writes a member's points movement to the store's lots
// as rules::PlanLotMovement plans it — the same plan the terminal's ledger applies
// (checkout::ApplyLotDelta), so both ends hold the same lots for the same entries.
#pragma once

#include <cstdint>
#include <string>

#include "loyalty/base/status.h"
#include "loyalty/hq/store.h"

namespace loyalty::hq {

// delta > 0 adds a lot expiring at expires_at_s (after paying any debt); delta < 0 consumes
// lots not expired at at_s, FIFO, and records any shortfall as the debt lot. Inside the
// caller's transaction.
Status MoveLots(Store& store, uint64_t member_id, int64_t delta, int64_t at_s, int64_t expires_at_s,
                const std::string& entry_id);

}  // namespace loyalty::hq
