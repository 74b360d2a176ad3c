#include "api.h"

#include <algorithm>
#include <chrono>
#include <iterator>
#include <optional>

#include <openssl/crypto.h>

#include "log.h"
#include "loyalty/base/hash.h"
#include "loyalty/base/time.h"
#include "loyalty/checkout/requests.h"
#include "loyalty/checkout/views.h"
#include "loyalty/http/address.h"
#include "loyalty/http/errors.h"
#include "sync_local.h"

namespace loyalty::agent {
namespace {

using nlohmann::json;

http::Response Json(int status, std::string body) {
  http::Response resp;
  resp.status = status;
  resp.body = std::move(body);
  return resp;
}

http::Response Error(ErrorCode code, const std::string& message) {
  return http::JsonError(code, message);
}

bool StartsWith(const std::string& s, std::string_view p) { return s.compare(0, p.size(), p) == 0; }

}  // namespace

// A request path as the log shows it: a segment that is not a plain name (a letter among
// [A-Za-z0-9_-], at most 64) -- a member id, a phone or card number, a member code pasted
// where an id goes -- as "~" and its short hash, as codes are logged (operations.md: codes
// as a short hash, phone numbers masked).
std::string LoggedPath(const std::string& path) {
  std::string out;
  size_t at = 0;
  while (at <= path.size()) {
    size_t end = path.find('/', at);
    if (end == std::string::npos) end = path.size();
    const std::string_view seg(path.data() + at, end - at);
    const bool plain =
        checkout::IsValidClientId(seg) && std::any_of(seg.begin(), seg.end(), [](char c) {
          return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
        });
    out += seg.empty() || plain ? std::string(seg) : "~" + ShortHash(seg);
    if (end == path.size()) break;
    out += '/';
    at = end + 1;
  }
  return out;
}

namespace {

// Logs a refused request once, where the decision is made.
void LogRejected(const std::string& method, const std::string& path, const Status& s) {
  int status = http::HttpStatusFor(s.code());
  Level level = status >= 500 ? Level::kError : Level::kInfo;
  std::string event = status == 503 ? "ledger_error" : "request_rejected";
  LogEvent(level, event,
           {{"method", method},
            {"path", LoggedPath(path)},
            {"status", status},
            {"code", std::string(ErrorCodeName(http::PublicCode(s.code())))},
            {"message", s.message()}});
}

}  // namespace

bool PosApi::Authorized(const http::Request& req) const {
  return http::BearerMatches(req.authorization, ctx_.token);
}

bool PosApi::MayReadBody(const http::Request& head) const {
  // The routes that need no token (health, metrics, the status page) take no body either:
  // theirs is not read, and they are answered as usual, from the head.
  return Authorized(head);
}

http::Response PosApi::Health() {
  json j{{"status", "ok"},
         {"version", ctx_.version},
         {"terminal_id", ctx_.terminal_id},
         {"store_id", ctx_.store_id}};
  // Not ok when the ledger cannot be read, or is latched damaged (operations.md): then
  // `reason` says why.
  auto entries = ctx_.reader->EntryCount();
  bool ledger_ok = entries.ok() && !ctx_.reader->damaged();
  j["ledger"] = {{"ok", ledger_ok}, {"entries", entries.ok() ? *entries : 0}};
  if (ctx_.reader->damaged())
    j["ledger"]["reason"] = "damaged: " + ctx_.reader->damage_reason();
  else if (!entries.ok())
    j["ledger"]["reason"] = entries.status().ToString();
  j["scanners"] = ctx_.scanner_health ? ctx_.scanner_health() : json::array();
  j["sync"] = SyncState();
  if (ctx_.health_extra) {
    json extra = ctx_.health_extra();
    for (auto it = extra.begin(); it != extra.end(); ++it) j[it.key()] = it.value();
  }
  bool degraded = !ledger_ok || (j.contains("clock") && j["clock"].value("trusted", true) == false);
  if (degraded) j["status"] = "degraded";
  http::Response r;
  r.body = j.dump();
  return r;
}

namespace {
json TimeOrNull(std::optional<int64_t> ms) {
  return ms ? json(FormatRfc3339(*ms / 1000)) : json(nullptr);
}
}  // namespace

// health's `sync` object (pos-api.md): from the service's state and the recorded runs.
json PosApi::SyncState() {
  auto pending = ctx_.reader->PendingEntryCount();
  json s{{"state", "idle"},
         {"last_success_at", nullptr},
         {"last_attempt_at", nullptr},
         {"pending_entries", pending.ok() ? std::max<int64_t>(0, *pending) : 0},
         {"last_error", nullptr}};
  // A failed read leaves the fields at their defaults: the health's `ledger` says why.
  std::vector<ledger::SyncRunRow> runs = RecentRuns(1);
  if (!runs.empty()) {
    s["last_attempt_at"] = TimeOrNull(runs[0].started_at_ms);
    if (runs[0].result == "failed") {
      s["state"] = "failing";
      s["last_error"] = runs[0].error;
    }
  }
  std::optional<int64_t> last_success;
  if (auto ok = ctx_.reader->LastSuccessfulSyncRun(); ok.ok() && *ok)
    last_success = (*ok)->finished_at_ms;
  if (ctx_.sync) {
    const auto state = ctx_.sync->Snapshot();
    for (const auto& r : state.finished) {
      if (r.result == "ok" && r.finished_at_ms) {
        if (!last_success || *r.finished_at_ms > *last_success) last_success = r.finished_at_ms;
        break;
      }
    }
    if (state.running) s["state"] = "running";
  }
  if (last_success) s["last_success_at"] = TimeOrNull(last_success);
  return s;
}

std::vector<ledger::SyncRunRow> PosApi::RecentRuns(size_t n) {
  auto read = ctx_.reader->RecentSyncRuns(static_cast<int>(n));
  std::vector<ledger::SyncRunRow> runs =
      read.ok() ? std::move(*read) : std::vector<ledger::SyncRunRow>();
  if (!ctx_.sync) return runs;
  for (const auto& r : ctx_.sync->Snapshot().finished) {
    auto at = std::find_if(runs.begin(), runs.end(),
                           [&](const ledger::SyncRunRow& row) { return row.run_id == r.run_id; });
    // Recorded as it ended, or recorded as running and its end could not be written.
    if (at != runs.end() && at->result != "running") continue;
    if (at != runs.end()) runs.erase(at);
    runs.push_back(ToSyncRunRow(r));
  }
  // Latest first; a run recorded as running (the one in progress) sorts by its start too.
  std::stable_sort(runs.begin(), runs.end(),
                   [](const ledger::SyncRunRow& a, const ledger::SyncRunRow& b) {
                     return a.started_at_ms > b.started_at_ms;
                   });
  if (runs.size() > n) runs.resize(n);
  return runs;
}

json PosApi::SyncView() {
  json runs = json::array();
  // Finished runs only (pos-api.md: each `ok` or `failed`); the one in progress is the
  // state's "running", and joins the list when it ends.
  for (const auto& r : RecentRuns(21)) {
    if (r.result != "ok" && r.result != "failed") continue;
    if (runs.size() == 20) break;
    json j{{"run_id", r.run_id},
           {"started_at", TimeOrNull(r.started_at_ms)},
           {"finished_at", TimeOrNull(r.finished_at_ms)},
           {"result", r.result},
           {"uploaded", r.uploaded},
           {"downloaded", r.downloaded},
           {"repaired", r.repaired},
           {"conflicts", r.conflicts},
           {"round_trips", r.round_trips},
           {"bytes_sent", r.bytes_sent},
           {"bytes_received", r.bytes_received}};
    if (!r.error.empty()) j["error"] = r.error;
    runs.push_back(std::move(j));
  }
  return json{{"state", SyncState()["state"]}, {"last_runs", std::move(runs)}};
}

namespace {

// The route a request took, for metrics labels (ids left out: bounded cardinality). The
// method is the client's, unchecked by the server: one outside HTTP's own is "other" too,
// or every made-up method would be a series of its own, created without a token.
std::string RouteLabel(const std::string& method, const std::string& path) {
  static const char* const kMethods[] = {"GET",   "POST",    "PUT",   "DELETE",
                                         "PATCH", "OPTIONS", "TRACE", "CONNECT"};
  if (std::none_of(std::begin(kMethods), std::end(kMethods),
                   [&](const char* m) { return method == m; }))
    return "other";
  static const char* const kRoutes[] = {"/v1/health",
                                        "/v1/identify",
                                        "/v1/members/lookup",
                                        "/v1/checkouts/quote",
                                        "/v1/checkouts/commit",
                                        "/v1/refunds",
                                        "/v1/scans",
                                        "/v1/sync",
                                        "/metrics",
                                        "/status"};
  for (const char* r : kRoutes)
    if (path == r) return method + " " + r;
  if (path.rfind("/v1/members/", 0) == 0) return method + " /v1/members/:id";
  if (auto e = ParseEnrolmentPath(path)) {
    static const char* const kSuffix[] = {"", ".png", ".svg"};
    return method + " /v1/checkouts/:id/enrolment" + kSuffix[static_cast<int>(e->format)];
  }
  if (path.rfind("/v1/checkouts/", 0) == 0) return method + " /v1/checkouts/:id";
  return "other";
}

}  // namespace

http::Response PosApi::StatusPage() {
  http::Response r;
  r.content_type = "text/html; charset=utf-8";
  r.body = RenderStatusPage(ctx_.status_data ? ctx_.status_data() : StatusData{});
  return r;
}

void PosApi::Handle(http::Request&& req, http::Responder respond_now) {
  const std::string& path = req.path;
  http::Responder respond = respond_now;
  if (ctx_.metrics) {
    respond = [respond_now, metrics = ctx_.metrics, route = RouteLabel(req.method, path),
               started = std::chrono::steady_clock::now()](http::Response r) {
      auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                    std::chrono::steady_clock::now() - started)
                    .count();
      metrics->ApiRequest(route, r.status, us);
      respond_now(std::move(r));
    };
  }
  if (req.method == "GET" && path == "/v1/health") return respond(Health());
  if (req.method == "GET" && path == "/metrics" && ctx_.metrics) {
    http::Response r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = ctx_.metrics->Render();
    return respond(std::move(r));
  }
  // The status page needs no token from the terminal itself (loopback), a token otherwise.
  if (req.method == "GET" && path == "/status" &&
      (http::IsLoopbackAddress(req.remote_address) || Authorized(req)))
    return respond(StatusPage());
  if (!Authorized(req)) {
    LogEvent(Level::kWarn, "request_unauthorized",
             {{"method", req.method}, {"path", LoggedPath(path)}});
    return respond(Error(ErrorCode::kUnauthorized, "a valid bearer token is required"));
  }

  // Answers an outcome with its view (checkout/views.h) or an error with its contract status.
  auto refuse = [respond, method = req.method, path](const Status& s) {
    LogRejected(method, path, s);
    respond(http::ErrorResponse(s));
  };
  auto finish = [respond, refuse](const auto& result) {
    if (!result.ok()) return refuse(result.status());
    respond(Json(200, std::string(checkout::ViewJson(*result))));
  };

  // A body is a JSON object within the limits (pos-api.md: at most 32 levels deep) on every
  // route, whether the route reads it or not: a route that takes none still refuses a
  // malformed or too deep one (and so changes nothing), and no tree deeper than the limit is
  // ever built. Parsed once, here, for the routes that do read it.
  std::optional<json> body;
  if (!req.body.empty()) {
    auto parsed = ParseJsonObject(req.body);
    if (!parsed.ok()) return refuse(parsed.status());
    body = std::move(*parsed);
  }

  // Phone look-up (docs/pos-api.md): the number stays in this request's memory.
  if (req.method == "POST" && path == "/v1/members/lookup") {
    if (!body) return refuse(ParseJsonObject(req.body).status());  // empty
    auto phone = body->find("phone");
    if (phone == body->end() || !phone->is_string())
      return refuse(
          Status::Error(ErrorCode::kBadRequest, "phone is required and must be a string"));
    if (body->size() != 1)
      return refuse(Status::Error(ErrorCode::kBadRequest, "a look-up carries phone alone"));
    auto r = ctx_.service->LookupPhone(*ctx_.reader, phone->get_ref<const std::string&>());
    if (!r.ok() && r.status().code() == ErrorCode::kRateLimited) {
      LogRejected(req.method, path, r.status());
      http::Response limited = http::ErrorResponse(r.status());
      limited.headers.emplace_back("Retry-After", "60");
      return respond(std::move(limited));
    }
    return finish(r);
  }
  if (req.method == "GET" && StartsWith(path, "/v1/members/"))
    return finish(ctx_.service->GetMember(*ctx_.reader, path.substr(12)));
  // Sign-up at the till (docs/pos-api.md): the claim of a sale made without a member, as
  // a link or its QR code.
  if (req.method == "GET") {
    if (auto route = ParseEnrolmentPath(path)) {
      if (ctx_.enrolment.url_template.empty())
        return refuse(Status::Error(ErrorCode::kNotFound,
                                    "sign-up QR codes are off: agent.toml [enrolment] "
                                    "url_template is not set"));
      auto claim = ctx_.service->Enrolment(*ctx_.reader, route->checkout_id);
      if (!claim.ok()) return refuse(claim.status());
      auto answer = EnrolmentResponse(ctx_.enrolment, *claim, route->format);
      if (!answer.ok()) return refuse(answer.status());
      static const char* const kFormat[] = {"json", "png", "svg"};
      LogEvent(Level::kInfo, "enrolment_offered",
               {{"checkout_id", claim->checkout_id},
                {"format", kFormat[static_cast<int>(route->format)]},
                {"expires_at", FormatRfc3339(claim->expires_at_s)}});
      return respond(std::move(*answer));
    }
  }
  if (req.method == "GET" && StartsWith(path, "/v1/checkouts/") &&
      path.find('/', 14) == std::string::npos)
    return finish(ctx_.service->GetCheckout(*ctx_.reader, path.substr(14)));
  if (req.method == "GET" && path == "/v1/scans") {
    uint64_t after = 0;
    int64_t wait_ms = 0;
    // A non-negative integer of any length (the request target's limit bounds it); past
    // `max` it is refused, or with `saturate` taken as `max`: an `after` past the last seq
    // issued, however large, is treated as 0 (pos-api.md), never refused.
    auto num = [&](const char* key, uint64_t max, bool saturate, uint64_t* out) -> bool {
      auto it = req.query.find(key);
      if (it == req.query.end()) return true;
      const std::string& v = it->second;
      if (v.empty()) return false;
      uint64_t x = 0;
      for (char c : v) {
        if (c < '0' || c > '9') return false;
        const auto d = static_cast<uint64_t>(c - '0');
        x = x > (max - d) / 10 ? max + 1 : x * 10 + d;  // max + 1: past it (max < UINT64_MAX)
      }
      if (x > max && !saturate) return false;
      *out = std::min(x, max);
      return true;
    };
    uint64_t w = 0;
    if (!num("after", UINT64_MAX / 2, true, &after) || !num("wait_ms", 30000, false, &w))
      return refuse(
          Status::Error(ErrorCode::kBadRequest,
                        "after must be a non-negative integer and wait_ms an integer 0..30000"));
    wait_ms = static_cast<int64_t>(w);
    if (!ctx_.scans)
      return refuse(Status::Error(ErrorCode::kUnavailable, "scans are not available"));
    ctx_.scans->Poll(after, wait_ms, [respond](json body) {
      http::Response r;
      r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
      respond(std::move(r));
    });
    return;
  }
  if (path == "/v1/sync") {
    if (!ctx_.sync) return refuse(Status::Error(ErrorCode::kUnavailable, "sync is not available"));
    // A damaged ledger is not synced (its runs could not even be recorded): refused as
    // commits are, until the file is replaced (operations.md).
    if (req.method == "POST" && ctx_.reader->damaged())
      return refuse(Status::Error(ErrorCode::kLedgerDamaged,
                                  "the ledger file is damaged (" + ctx_.reader->damage_reason() +
                                      "); see docs/operations.md, \"A damaged ledger\""));
    if (req.method == "POST")
      return respond(Json(202, json{{"run_id", ctx_.sync->Trigger()}}.dump()));
    if (req.method == "GET") return respond(Json(200, SyncView().dump()));
    return refuse(Status::Error(ErrorCode::kNotFound, "no route " + req.method + " " + path));
  }

  bool is_post = req.method == "POST";
  enum class Route { kNone, kIdentify, kQuote, kCommit, kRefund } route = Route::kNone;
  if (is_post && path == "/v1/identify") route = Route::kIdentify;
  if (is_post && path == "/v1/checkouts/quote") route = Route::kQuote;
  if (is_post && path == "/v1/checkouts/commit") route = Route::kCommit;
  if (is_post && path == "/v1/refunds") route = Route::kRefund;
  if (route == Route::kNone)
    return refuse(Status::Error(ErrorCode::kNotFound, "no route " + req.method + " " + path));

  if (!body) return refuse(ParseJsonObject(req.body).status());  // empty

  switch (route) {
    case Route::kIdentify: {
      auto code = body->find("code");
      if (code == body->end() || !code->is_string())
        return refuse(
            Status::Error(ErrorCode::kBadRequest, "code is required and must be a string"));
      auto r = ctx_.service->Identify(*ctx_.reader, code->get_ref<const std::string&>());
      if (r.ok())
        LogEvent(Level::kInfo, "member_identified",
                 {{"member_id", std::to_string(r->member.member.member_id)},
                  {"kind", std::string(codes::CodeKindName(r->kind))}});
      return finish(r);
    }
    case Route::kQuote:
      ctx_.service->LookUpIfUnheld(*ctx_.reader, *body, /*is_commit=*/false);
      return finish(ctx_.service->Quote(*ctx_.reader, *body));
    case Route::kCommit:
    case Route::kRefund: {
      if (route == Route::kCommit)
        ctx_.service->LookUpIfUnheld(*ctx_.reader, *body, /*is_commit=*/true);
      // A refund asks HQ about its sale here, off the writer thread (docs/pos-api.md,
      // "Returns anywhere").
      checkout::PreparedRefund prepared;
      if (route == Route::kRefund) prepared = ctx_.service->PrepareRefund(*ctx_.reader, *body);
      auto* service = ctx_.service;
      bool commit = route == Route::kCommit;
      bool posted = ctx_.writer->Post([service, commit, finish, refuse, b = std::move(*body),
                                       prepared = std::move(prepared)](ledger::Ledger& w) {
        auto guarded = [&](auto use_case) {
          std::optional<decltype(use_case())> r;
          try {
            r.emplace(use_case());
          } catch (const std::exception& e) {
            // A defect, not input: answer, keep the lane alive, and say so in the log.
            w.Rollback();
            return refuse(
                Status::Error(ErrorCode::kInternal, std::string("internal error: ") + e.what()));
          }
          finish(*r);
        };
        if (commit)
          guarded([&] { return service->Commit(w, b); });
        else
          guarded([&] { return service->Refund(w, b, prepared); });
      });
      if (!posted) refuse(Status::Error(ErrorCode::kUnavailable, "the agent is shutting down"));
      return;
    }
    case Route::kNone:
      break;
  }
}

}  // namespace loyalty::agent
