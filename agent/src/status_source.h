// The status page's figures (status_page.h) read from the daemon's parts: the event loop's
// ledger reader, the checkout service, trusted time, the scanners and the scan counter.
#pragma once

#include <string>

#include "loyalty/base/clock.h"
#include "loyalty/checkout/service.h"
#include "loyalty/codes/trusted_time.h"
#include "loyalty/ledger/ledger.h"
#include "status_page.h"

namespace loyalty::agent {

struct StatusSources {
  std::string version, terminal_id, store_id;
  const Clock& clock;
  const codes::TrustedTime& trusted_time;
  checkout::CheckoutService& service;
  ledger::Ledger& reader;
  nlohmann::json scanners;  // Scanners::Health()
  const HourlyCounter& scans_per_hour;
};

// Event-loop thread. A failed ledger read shows as zero / no runs (GET /v1/health reports
// the ledger itself).
StatusData CollectStatusData(const StatusSources& src);

}  // namespace loyalty::agent
