// The POS API (pos-api.md) on top of the generic HTTP layer: authentication, routing,
// JSON parsing, and dispatch of each use case to the thread that may run it (reads on the
// event loop with its reader connection, writes on the ledger writer thread).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "enrolment.h"
#include "loyalty/checkout/service.h"
#include "loyalty/checkout/writer.h"
#include "loyalty/http/server.h"
#include "loyalty/ledger/ledger.h"
#include "metrics.h"
#include "scans.h"
#include "status_page.h"
#include "sync_service.h"

namespace loyalty::agent {

struct ApiContext {
  std::string token;  // bearer token every request but health/metrics/status must carry
  std::string version;
  std::string terminal_id;
  std::string store_id;
  checkout::CheckoutService* service = nullptr;
  checkout::LedgerWriter* writer = nullptr;
  ledger::Ledger* reader = nullptr;                // used on the event-loop thread only
  ScanHub* scans = nullptr;                        // event-loop thread only
  std::function<nlohmann::json()> scanner_health;  // [{"id","kind","state","last_scan_at"}]
  std::function<nlohmann::json()> health_extra;    // clock, rules version
  Metrics* metrics = nullptr;                      // GET /metrics; request latency
  std::function<StatusData()> status_data;         // GET /status
  SyncService* sync = nullptr;                     // null: /v1/sync answers 503
  EnrolmentOptions enrolment;                      // sign-up QR codes; url_template "" = off
};

// A request path as the log shows it: a segment that is not a plain name (a letter among
// [A-Za-z0-9_-], at most 64 characters) -- a member id, phone or card number, or a member
// code pasted into the path -- as "~" and its short hash.
std::string LoggedPath(const std::string& path);

class PosApi {
 public:
  explicit PosApi(ApiContext ctx) : ctx_(std::move(ctx)) {}
  // The http::Handler: call on the event-loop thread.
  void Handle(http::Request&& req, http::Responder respond);
  // http::ServerOptions::may_read_body: only a request with the token has its body read;
  // another is answered from its head at once (401, or a token-free route's answer).
  bool MayReadBody(const http::Request& head) const;

 private:
  bool Authorized(const http::Request& req) const;
  http::Response Health();
  http::Response StatusPage();
  nlohmann::json SyncState();
  nlohmann::json SyncView();
  // The latest `n` runs, latest first: the ledger's records, and the runs this process
  // finished whose record the ledger does not hold (it could not be written).
  std::vector<ledger::SyncRunRow> RecentRuns(size_t n);

  ApiContext ctx_;
};

}  // namespace loyalty::agent
