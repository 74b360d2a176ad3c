// What a scanner read becomes: identified by the checkout service on the event loop's
// reader, logged once (scan_accepted / scan_not_member_code / scan_rejected), and turned
// into the scan event GET /v1/scans serves (pos-api.md).
#pragma once

#include <nlohmann/json.hpp>

#include "loyalty/checkout/service.h"
#include "loyalty/drivers/source.h"
#include "loyalty/ledger/ledger.h"

namespace loyalty::agent {

// Event-loop thread. The event has no seq yet (ScanHub::Add assigns it).
nlohmann::json IdentifyScan(const drivers::Scan& scan, checkout::CheckoutService& service,
                            ledger::Ledger& reader);

}  // namespace loyalty::agent
