// loyalty-hq's request handling: the admin API of hq-and-sync.md and the terminal routes of
// sync/PROTOCOL.md, over a Store. docs/hq.md describes every route with examples.
//
// Transport seams: the service sees an http::Request and who the TLS layer says the client
// is (`peer_terminal`: the subject CN of a verified client certificate, nullopt on a plain
// HTTP listener). With a peer, a terminal route for another terminal id is 403 forbidden;
// without one (loopback demos and tests) the route's terminal id is trusted.
//
// Threading: one HqService is not thread-safe: its owner calls Handle and the jobs from one
// thread at a time, over its Store's one connection. A process runs several at once as
// workers (hq.toml `workers`), each on its own thread with its own Store, built as siblings
// of the first: they share the process's metrics and per-process limits, and nothing else
// (every other state is the database's, as between processes).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "loyalty/base/clock.h"
#include "loyalty/base/status.h"
#include "loyalty/base/timezone.h"
#include "loyalty/hq/pii.h"
#include "loyalty/hq/store.h"
#include "loyalty/http/message.h"
#include "loyalty/rules/rules.h"

namespace loyalty::hq {

// HQ's own entries (adjust, expire, unfreeze, tier_change) form a chain of their own under
// this terminal id, which no terminal may use.
inline constexpr char kHqTerminalId[] = "_hq";

struct HqOptions {
  std::string admin_token;
  // Reads GET /metrics only (hq.toml metrics_token_file); "" = none.
  std::string metrics_token;
  std::map<int, std::string> signing_seeds;  // key id -> raw 32-byte Ed25519 seed; highest id signs
  std::string card_prefix = "88";
  TimeZone timezone = TimeZone::Utc();  // the chain's: months for spend, tiers and expiry
  // The chain's current rules (hq.toml rules_file); nullopt: the defaults of
  // loyalty-rules.md, version "default". HQ publishes them to terminals in `changes`, keeps
  // every version it ever published (to price uploaded checkouts again), and takes its tier
  // thresholds, point validity and velocity limit from them.
  std::optional<rules::Rules> rules;
  int64_t default_certificate_days = 365;
  // A store's terminals hold the members enrolled there and those that shopped there or
  // were asked for there within this many months (hq.toml member_scope_months; a month is
  // 31 days here). docs/hq.md, "Member scope".
  int member_scope_months = 12;
  // A store's phone look-up key changes every this many days (hq.toml phone_key_days):
  // key id = floor(now / period) + 1 (docs/pos-api.md, "Phone look-up").
  int phone_key_days = 30;
  // Threads of the process answering requests, each with a sibling service (hq.toml
  // `workers`): reported by GET /metrics.
  int workers = 1;
  // Where the service reports what it did not send or apply (HQ's log); may be empty.
  std::function<void(const char* event, const nlohmann::json& fields)> on_event;
};

// A terminal route's path, /v1/sync/{terminal_id}/{route}: route is what follows the terminal
// id ("hello", "recon/entries"). nullopt for every other path (admin routes, health, metrics).
struct TerminalRoute {
  std::string terminal_id;
  std::string route;
};
std::optional<TerminalRoute> ParseTerminalRoute(std::string_view path);

struct ExpiryReport {
  int64_t members = 0;
  int64_t points = 0;  // total expired (positive)
};

class HqService {
 public:
  // `store` and `clock` must outlive the service.
  HqService(Store& store, const Clock& clock, PiiCipher pii, HqOptions options);
  // Another worker of the same process over its own `store` (another connection to the
  // same database): the sibling's clock, keys and options; its metrics and limits shared.
  HqService(Store& store, const HqService& sibling);

  // Publishes the current rules version (stored with its content; a version published
  // before with other content is refused: config_invalid). Handle does it on first use;
  // the program calls it at start to fail early.
  Status Start();

  // Every request, routes and metrics alike (GET /metrics: docs/hq.md, "Metrics").
  http::Response Handle(const http::Request& req, const std::optional<std::string>& peer_terminal);

  // The answer to a terminal route the listener refused before the service (a client
  // certificate that does not name the terminal; `why` says so): 403 forbidden, counted in
  // the route's metrics as a refused request.
  http::Response RefuseTerminal(const http::Request& req, const Status& why);

  // The process's request queue, counted in GET /metrics (thread-safe, any sibling): a
  // request queued for a worker; one a worker took after `waited_us`.
  void RequestQueued();
  void RequestTaken(int64_t waited_us);

  // The daily job: an `expire` entry per member for the points of lots that expired before
  // now_s (lots' expires_at_s < now_s), and at the first run in a new local month the tiers
  // recomputed from that month's spend. Idempotent: expired lots are emptied.
  Result<ExpiryReport> RunDailyJobs(int64_t now_s);

  // Seconds from now_s to the next run of the daily job: an hour, or less to run one second
  // after the next local midnight in `tz` (the chain's calendar), so that a lot's expiry at
  // the end of its month and the tiers of a new month are not an hour late. At least 1.
  static int64_t SecondsToNextDailyRun(const TimeZone& tz, int64_t now_s);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace loyalty::hq
