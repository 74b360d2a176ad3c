// HqService's entry points and the routing: a request's path to a terminal route (checked
// against the client certificate's terminal) or an admin route (checked for the bearer
// token), and the daily jobs' entry. What each route does is in the file that owns it
// (service_internal.h lists them).
#include "service_internal.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "loyalty/base/json.h"
#include "loyalty/http/address.h"

namespace loyalty::hq {

using namespace internal;

namespace {

// The segments of a path, empty ones dropped: "/v1//sync/T01/" is v1, sync, T01.
std::vector<std::string> PathParts(std::string_view path) {
  std::vector<std::string> parts;
  while (!path.empty()) {
    if (path.front() == '/') {
      path.remove_prefix(1);
      continue;
    }
    size_t slash = path.find('/');
    parts.emplace_back(path.substr(0, slash));
    path.remove_prefix(slash == std::string_view::npos ? path.size() : slash);
  }
  return parts;
}

}  // namespace

std::optional<TerminalRoute> ParseTerminalRoute(std::string_view path) {
  std::vector<std::string> parts = PathParts(path);
  if (parts.size() < 4 || parts[0] != "v1" || parts[1] != "sync") return std::nullopt;
  TerminalRoute r{parts[2], parts[3]};
  for (size_t i = 4; i < parts.size(); ++i) r.route += "/" + parts[i];
  return r;
}

HqService::HqService(Store& store, const Clock& clock, PiiCipher pii, HqOptions options)
    : impl_(std::make_shared<Impl>(store, clock, std::move(pii), std::move(options),
                                   std::make_shared<ProcessShared>())) {}

HqService::HqService(Store& store, const HqService& sibling)
    : impl_(std::make_shared<Impl>(store, sibling.impl_->clock, sibling.impl_->pii,
                                   sibling.impl_->opt, sibling.impl_->shared)) {}

http::Response HqService::Handle(const http::Request& req,
                                 const std::optional<std::string>& peer_terminal) {
  const auto started = std::chrono::steady_clock::now();
  impl_->answered_statuses.clear();
  http::Response r;
  const std::optional<TerminalRoute> route = ParseTerminalRoute(req.path);
  // No route, whether it reads its body or not, sees one nested deeper than the limit. The
  // upload's readers (sync::ParseUploadRequest) count the depth as they read, and refuse
  // past it with this same answer: its body, the largest by far, is not scanned for it first.
  const bool counts_depth = route && route->route == "entries" && req.method == "POST";
  const Status depth = counts_depth ? Status::Ok() : CheckJsonDepth(req.body);
  if (!depth.ok()) {
    r = FromStatus(depth);
  } else {
    try {
      r = impl_->Handle(req, peer_terminal);
    } catch (const std::exception& e) {
      // Nothing here throws by design; a library that does must not take the server down.
      r = Error(ErrorCode::kInternal, e.what());
    }
  }
  if (route)
    impl_->metrics.SyncRequest(route->route, r, MicrosSince(started), impl_->answered_statuses);
  return r;
}

http::Response HqService::RefuseTerminal(const http::Request& req, const Status& why) {
  http::Response r = Error(ErrorCode::kForbidden, why.message());
  if (auto route = ParseTerminalRoute(req.path))
    impl_->metrics.SyncRequest(route->route, r, std::nullopt);
  return r;
}

void HqService::RequestQueued() { impl_->metrics.RequestQueued(); }
void HqService::RequestTaken(int64_t waited_us) { impl_->metrics.RequestTaken(waited_us); }

Result<ExpiryReport> HqService::RunDailyJobs(int64_t now_s) {
  if (Status s = impl_->PublishRules(); !s.ok()) return s;
  return impl_->DailyJobs(now_s);
}

int64_t HqService::SecondsToNextDailyRun(const TimeZone& tz, int64_t now_s) {
  const CivilTime local = tz.ToLocal(now_s);
  const int64_t today = DaysFromCivil(local.year, static_cast<unsigned>(local.month),
                                      static_cast<unsigned>(local.day));
  CivilTime next = CivilFromUnix((today + 1) * 86400);
  next.hour = next.minute = next.second = 0;
  const int64_t until_midnight = tz.FromLocal(next) - now_s;
  return std::clamp<int64_t>(until_midnight + 1, 1, 3600);
}

Status HqService::Start() { return impl_->PublishRules(); }

http::Response HqService::Impl::Handle(const http::Request& req,
                                       const std::optional<std::string>& peer) {
  // Before the rules are published: metrics are read most when the database is in trouble.
  if (req.method == "GET" && req.path == "/metrics") return MetricsPage(req);
  if (Status s = PublishRules(); !s.ok()) return Error(ErrorCode::kUnavailable, s.message());
  std::vector<std::string> parts = PathParts(req.path);
  if (parts.empty() || parts[0] != "v1") return Error(ErrorCode::kNotFound, "no such route");
  if (parts.size() == 2 && parts[1] == "health" && req.method == "GET") {
    // One indexed read: a load balancer takes a process whose database does not answer out
    // of its pool instead of sending it terminals that would all fail.
    if (auto probe = store.GetMeta("rules_current"); !probe.ok())
      return Error(ErrorCode::kUnavailable,
                   "the database does not answer: " + probe.status().message());
    return JsonResponse(200, {{"status", "ok"}});
  }
  if (auto t = ParseTerminalRoute(req.path)) return Terminal(t->terminal_id, t->route, req, peer);
  return Admin(parts, req);
}

// Who may read the metrics: a client on the HQ host itself (loopback: a Prometheus server or
// agent there, an SSH tunnel), as the agent's status page; anyone else needs the admin token.
http::Response HqService::Impl::MetricsPage(const http::Request& req) {
  if (!http::IsLoopbackAddress(req.remote_address) && !Authorized(req) &&
      !BearerIs(req, opt.metrics_token)) {
    return Error(ErrorCode::kUnauthorized,
                 "the metrics or admin bearer token is required from a client that is not on "
                 "loopback");
  }
  const int64_t now_ms = clock.now_ms();
  http::Response r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = metrics.Render(store.CountFleet(now_ms - kActiveWithinMs, now_ms - kSilentAfterMs),
                          opt.workers);
  return r;
}

http::Response HqService::Impl::Terminal(const std::string& tid, const std::string& route,
                                         const http::Request& req,
                                         const std::optional<std::string>& peer) {
  if (!sync::IsTerminalId(tid) || tid == kHqTerminalId)
    return Error(ErrorCode::kBadRequest, "invalid terminal id");
  if (peer && *peer != tid) {
    return Error(ErrorCode::kForbidden, "the client certificate does not name terminal " + tid);
  }
  bool post = req.method == "POST";
  if (route == "hello" && post) return Hello(tid, req);
  if (route == "entries" && post) return Upload(tid, req);
  if (route == "changes" && req.method == "GET") return Changes(tid, req);
  if (route == "recon/entries" && post) return Recon(tid, true, req);
  if (route == "recon/balances" && post) return Recon(tid, false, req);
  if (route == "fetch" && post) return Fetch(tid, req);
  if (route == "members" && post) return Members(tid, req);
  if (route == "sale" && post) return SaleRoute(tid, req);
  if (route == "evicted" && post) return Evicted(tid, req);
  if (route == "receipt-key" && post) return ReceiptKey(tid, req);
  return Error(ErrorCode::kNotFound, "no such route");
}

bool HqService::Impl::BearerIs(const http::Request& req, const std::string& token) {
  return http::BearerMatches(req.authorization, token);
}

bool HqService::Impl::Authorized(const http::Request& req) const {
  return BearerIs(req, opt.admin_token);
}

http::Response HqService::Impl::Admin(const std::vector<std::string>& p, const http::Request& req) {
  if (!Authorized(req))
    return Error(ErrorCode::kUnauthorized, "a valid admin bearer token is required");
  const std::string& m = req.method;
  size_t n = p.size();  // p[0] == "v1"
  if (n == 2 && p[1] == "members" && m == "POST") return CreateMember(req);
  if (n == 3 && p[1] == "members" && m == "GET") return MemberView(p[2]);
  if (n == 4 && p[1] == "members" && m == "POST") {
    if (p[3] == "devices") return CertifyDevice(p[2], req);
    if (p[3] == "adjustments") return Adjust(p[2], req);
    if (p[3] == "unfreeze") return Unfreeze(p[2], req);
    if (p[3] == "tier") return SetTier(p[2], req);
    if (p[3] == "identities") return AddIdentity(p[2], req);
    if (p[3] == "claims") return AddClaim(p[2], req);
  }
  if (n == 4 && p[1] == "members" && p[3] == "claims" && m == "GET") return MemberClaims(p[2]);
  if (n == 4 && p[1] == "members" && p[3] == "phone-lookup-consent" && m == "PUT")
    return SetPhoneConsent(p[2], req);
  if (n == 4 && p[1] == "devices" && p[3] == "revoke" && m == "POST") return RevokeDevice(p[2]);
  if (n == 2 && p[1] == "coupons" && m == "POST") return CreateCoupon(req);
  if (n == 2 && p[1] == "refunds" && m == "GET") return RefundsByCashier(req);
  if (n == 2 && p[1] == "terminals" && m == "GET") return TerminalList(req);
  if (n == 3 && p[1] == "terminals" && m == "GET") return TerminalView(p[2]);
  if (n == 3 && p[1] == "admin" && p[2] == "expire" && m == "POST") return Expire(req);
  return Error(ErrorCode::kNotFound, "no such route");
}

}  // namespace loyalty::hq
