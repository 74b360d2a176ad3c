// loyalty-hq: the reference HQ. Wiring only: configuration, keys, the store, the HTTP
// listener, the daily job timer and signals. Everything it answers is HqService's.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "loyalty/base/clock.h"
#include "loyalty/base/time.h"
#include "loyalty/base/timezone.h"
#include "loyalty/config/config.h"
#include "loyalty/hq/service.h"
#include "loyalty/hq/store.h"
#include "loyalty/http/server.h"

namespace {

using nlohmann::json;

// One JSON line per event on stdout, flushed as written (journald keeps it).
void Log(const char* level, const char* event, json fields = json::object()) {
  fields["ts"] = loyalty::FormatRfc3339(loyalty::SystemClock::Instance().now_s());
  fields["level"] = level;
  fields["event"] = event;
  std::string line = fields.dump(-1, ' ', false, json::error_handler_t::replace);
  std::fprintf(stdout, "%s\n", line.c_str());
  std::fflush(stdout);
}

int Usage() {
  std::fprintf(stderr, "usage: loyalty-hq --config FILE [--check-config]\n");
  return 2;
}

// The chain's time zone for calendar months (spend, tiers, lot expiry).
constexpr char kChainTimeZone[] = "Asia/Shanghai";

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
      config_path = argv[++i];
    } else if (std::strcmp(argv[i], "--check-config") == 0) {
      check_only = true;
    } else {
      return Usage();
    }
  }
  if (config_path.empty()) return Usage();

  auto cfg = loyalty::config::LoadHqConfig(config_path);
  if (!cfg.ok()) {
    std::fprintf(stderr, "loyalty-hq: %s\n", cfg.status().message().c_str());
    return 1;
  }
  auto fail = [&](const loyalty::Status& s) {
    std::fprintf(stderr, "loyalty-hq: %s\n", s.message().c_str());
    Log("error", "config_invalid", {{"reason", s.message()}});
    return 1;
  };
  auto token = loyalty::config::ReadTokenFile(cfg->admin_token_file);
  if (!token.ok()) return fail(token.status());
  loyalty::hq::HqOptions opt;
  opt.admin_token = *token;
  opt.card_prefix = cfg->card_prefix;
  for (const auto& [id, file] : cfg->signing_keys) {
    auto seed = loyalty::hq::LoadEd25519Seed(file);
    if (!seed.ok()) return fail(seed.status());
    opt.signing_seeds[id] = *seed;
  }
  auto tz = loyalty::TimeZone::Load(kChainTimeZone);
  opt.timezone = tz.ok() ? *tz : *loyalty::TimeZone::Fixed(8 * 3600);
  if (!cfg->tls_cert_file.empty()) {
    // The listener is plain HTTP until loyalty_http grows its TLS stream; HqService already
    // takes the client certificate's CN as `peer_terminal` when it does.
    return fail(loyalty::Status::Error("config_invalid",
                                       config_path + ": [hq] tls_cert_file: TLS is not available in this build yet; "
                                                     "omit the three TLS keys and listen on loopback"));
  }
  if (check_only) {
    for (const auto& w : cfg->warnings) std::fprintf(stderr, "loyalty-hq: warning: %s\n", w.c_str());
    std::printf("%s: ok\n", config_path.c_str());
    return 0;
  }
  auto pii = loyalty::hq::PiiCipher::LoadOrCreate(cfg->pii_key_file);
  if (!pii.ok()) return fail(pii.status());
  auto store = loyalty::hq::OpenSqliteStore(cfg->database);
  if (!store.ok()) {
    Log("error", "database_error", {{"reason", store.status().message()}});
    return 1;
  }
  for (const auto& w : cfg->warnings) Log("warn", "config_warning", {{"reason", w}});

  auto& clock = loyalty::SystemClock::Instance();
  loyalty::hq::HqService service(**store, clock, std::move(*pii), opt);

  boost::asio::io_context ioc;
  loyalty::http::ServerOptions so;
  so.host = cfg->listen_host;
  so.port = cfg->listen_port;
  so.body_limit = 1 << 20;
  loyalty::http::Server server(ioc, so, [&](loyalty::http::Request&& req, loyalty::http::Responder respond) {
    // No TLS listener yet: the terminal id the route names is trusted (logged at start).
    respond(service.Handle(req, std::nullopt));
  });
  if (auto s = server.Listen(); !s.ok()) {
    Log("error", "listen_failed", {{"reason", s.message()}});
    return 1;
  }

  // The daily job runs at start and then hourly: it is idempotent (an expired lot is emptied
  // once), so running more often than daily only keeps expiry close to the lots' dates.
  boost::asio::steady_timer timer(ioc);
  std::function<void()> run_jobs = [&] {
    auto r = service.RunDailyJobs(clock.now_s());
    if (r.ok()) {
      if (r->members > 0) Log("info", "points_expired", {{"members", r->members}, {"points", r->points}});
    } else {
      Log("error", "daily_job_failed", {{"reason", r.status().message()}});
    }
    timer.expires_after(std::chrono::hours(1));
    timer.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) run_jobs();
    });
  };
  run_jobs();

  boost::asio::signal_set signals(ioc, SIGTERM, SIGINT);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    Log("info", "stopping", {{"signal", sig}});
    timer.cancel();
    server.Stop([&] { ioc.stop(); });
  });
  Log("info", "hq_started", {{"listen", cfg->listen_host + ":" + std::to_string(server.port())},
                             {"database", cfg->database},
                             {"tls", false}});
  try {
    ioc.run();
  } catch (const std::exception& e) {
    Log("critical", "hq_crashed", {{"reason", e.what()}});
    return 1;
  }
  Log("info", "hq_stopped");
  return 0;
}
