#include "daemon.h"

#include <atomic>
#include <systemd/sd-daemon.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <thread>

#include "api.h"
#include "metrics.h"
#include "status_page.h"
#include "log.h"
#include "scanners.h"
#include "scan_pipeline.h"
#include "scans.h"
#include "status_source.h"
#include "sync_local.h"
#include "sync_service.h"
#include "loyalty/base/hash.h"
#include "loyalty/base/json.h"
#include "loyalty/base/clock.h"
#include "loyalty/base/time.h"
#include "loyalty/base/timezone.h"
#include "loyalty/checkout/service.h"
#include "loyalty/checkout/writer.h"
#include "loyalty/codes/codes.h"
#include "loyalty/codes/trusted_time.h"
#include "loyalty/config/config.h"
#include "loyalty/http/server.h"
#include "loyalty/ledger/ledger.h"
#include "loyalty/rules/rules.h"

#ifndef LOYALTY_VERSION
#define LOYALTY_VERSION "0.0.0"
#endif

namespace loyalty::agent {
namespace {

constexpr int kExitConfig = 2;    // bad command line or configuration
constexpr int kExitRuntime = 1;   // could not start (ledger, port) or failed while running

void Usage() {
  std::fprintf(stderr,
               "usage: loyaltyd [--config FILE] [--check-config] [--version]\n"
               "  --config FILE    agent configuration (default /etc/loyaltyd/agent.toml)\n"
               "  --check-config   validate the configuration and the files it names, then exit\n"
               "  --version        print the version and exit\n");
}

Result<std::shared_ptr<const rules::Rules>> LoadRules(const config::AgentConfig& cfg) {
  if (cfg.rules_file.empty()) return std::shared_ptr<const rules::Rules>(std::make_shared<rules::Rules>(rules::Rules::Defaults()));
  auto r = rules::LoadRulesToml(cfg.rules_file);
  if (!r.ok()) return r.status();
  return std::shared_ptr<const rules::Rules>(std::make_shared<rules::Rules>(std::move(*r)));
}

codes::CodesConfig ToCodesConfig(const config::AgentConfig& cfg) {
  codes::CodesConfig c;
  c.hq_public_keys = cfg.hq_public_keys;
  c.code_max_age_s = cfg.code_max_age_s;
  c.clock_skew_s = cfg.clock_skew_s;
  c.card_prefix = cfg.card_prefix;
  for (const auto& ch : cfg.channels) c.channels.push_back({ch.name, ch.pattern});
  return c;
}

// Everything start-up needs that can be checked without side effects.
struct Prepared {
  config::AgentConfig cfg;
  TimeZone tz = TimeZone::Utc();
  std::shared_ptr<const rules::Rules> rules;
  std::unique_ptr<codes::CodeVerifier> verifier;
  std::string token;
};

Result<Prepared> Prepare(const std::string& config_path) {
  Prepared p;
  auto cfg = config::LoadAgentConfig(config_path);
  if (!cfg.ok()) return cfg.status();
  p.cfg = std::move(*cfg);
  auto tz = TimeZone::Load(p.cfg.timezone);
  if (!tz.ok()) return Status::Error(ErrorCode::kConfigInvalid, config_path + ": agent.timezone: " + tz.status().message());
  p.tz = std::move(*tz);
  auto rules = LoadRules(p.cfg);
  if (!rules.ok()) return rules.status();
  p.rules = std::move(*rules);
  auto verifier = codes::CodeVerifier::Create(ToCodesConfig(p.cfg));
  if (!verifier.ok()) return Status::Error(ErrorCode::kConfigInvalid, config_path + ": codes: " + verifier.status().message());
  p.verifier = std::move(*verifier);
  // The POS API token is the one secret its owner's group may read (the POS's group).
  auto token = config::ReadTokenFile(p.cfg.token_file, SecretAccess::kOwnerAndGroupRead);
  if (!token.ok()) return Status::Error(ErrorCode::kConfigInvalid, config_path + ": api.token_file: " + token.status().message());
  p.token = std::move(*token);
  // The client key is read again at each sync run, through the same check; checking it
  // here makes a key others can read stop the start (and --check-config) at once.
  if (!p.cfg.key_file.empty()) {
    auto key = config::ReadConfiguredSecret(config_path, "hq.key_file", p.cfg.key_file);
    if (!key.ok()) return key.status();
  }
  return p;
}

}  // namespace

int RunDaemon(int argc, char** argv) {
  std::string config_path = "/etc/loyaltyd/agent.toml";
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      config_path = a.substr(9);
    } else if (a == "--check-config") {
      check_only = true;
    } else if (a == "--version") {
      std::printf("loyaltyd %s\n", LOYALTY_VERSION);
      return 0;
    } else if (a == "--help" || a == "-h") {
      Usage();
      return 0;
    } else {
      std::fprintf(stderr, "loyaltyd: unknown argument '%s'\n", a.c_str());
      Usage();
      return kExitConfig;
    }
  }

  auto prepared = Prepare(config_path);
  if (!prepared.ok()) {
    std::fprintf(stderr, "loyaltyd: %s\n", prepared.status().message().c_str());
    return kExitConfig;
  }
  Prepared& p = *prepared;
  if (check_only) {
    std::printf("%s: ok\n", config_path.c_str());
    return 0;
  }

  LogOptions lo{p.cfg.log_level, p.cfg.log_format, p.cfg.log_file, p.cfg.log_file_max_bytes, p.cfg.log_file_count};
  if (Status s = InitLog(lo); !s.ok()) {
    std::fprintf(stderr, "loyaltyd: %s: log: %s\n", config_path.c_str(), s.message().c_str());
    return kExitConfig;
  }

  try {
    const Clock& clock = SystemClock::Instance();
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(p.cfg.database).parent_path(), ec);
    // The first start of a new version migrates the ledger, one transaction a step: on a
    // year of sales that can outlast systemd's start timeout, and a start killed midway
    // would roll back and begin again, for ever. Ask for the time it takes.
    if (auto v = ledger::Ledger::PeekSchemaVersion(p.cfg.database); v && *v > 0 && *v < ledger::kSchemaVersion) {
      LogEvent(Level::kInfo, "ledger_migrating", {{"database", p.cfg.database}, {"from", *v}, {"to", ledger::kSchemaVersion}});
      sd_notify(0, "EXTEND_TIMEOUT_USEC=1800000000\nSTATUS=Migrating the ledger");
    }
    auto writer_ledger = ledger::Ledger::Open(p.cfg.database, ledger::Ledger::Mode::kWriter, p.cfg.terminal_id);
    if (!writer_ledger.ok()) {
      const Status& s = writer_ledger.status();
      if (s.code() == ErrorCode::kLedgerDamaged)
        LogEvent(Level::kCritical, "ledger_damaged", {{"database", p.cfg.database}, {"reason", s.message()}});
      else
        LogEvent(Level::kCritical, "ledger_error", {{"phase", "open"}, {"message", s.message()}});
      return kExitRuntime;
    }
    // Whichever connection first meets a corruption latches the file; said once.
    (*writer_ledger)->OnDamaged([database = p.cfg.database](const std::string& reason) {
      LogEvent(Level::kCritical, "ledger_damaged", {{"database", database}, {"reason", reason}});
    });
    // Checkpoints run when the writer thread is idle, never inside a checkout's commit.
    (*writer_ledger)->UseIdleCheckpoints();
    auto reader = ledger::Ledger::Open(p.cfg.database, ledger::Ledger::Mode::kReader, p.cfg.terminal_id);
    if (!reader.ok()) {
      LogEvent(Level::kCritical, "ledger_error", {{"phase", "open_reader"}, {"message", reader.status().message()}});
      return kExitRuntime;
    }
    auto counted = (*writer_ledger)->EntryCount();
    int64_t entries = counted.ok() ? *counted : -1;  // a failed count is the health's to report
    // A run the previous process was killed in is recorded as failed, not left running.
    if (auto n = (*writer_ledger)->FailInterruptedSyncRuns(clock.now_ms()); n.ok() && *n > 0)
      LogEvent(Level::kWarn, "sync_interrupted", {{"runs", *n}});
    // Rules HQ pushed at an earlier sync stay in force across restarts; the local rules
    // file is only the fallback before a first sync.
    auto hq_rules_adopted = std::make_shared<std::atomic<bool>>(false);
    if (auto stored = (*writer_ledger)->GetMeta("hq_rules"); stored.ok() && *stored) {
      if (auto j = ParseJsonObject(**stored); j.ok()) {
        if (auto r = rules::RulesFromJson(*j); r.ok()) {
          p.rules = std::make_shared<rules::Rules>(std::move(*r));
          *hq_rules_adopted = true;
        }
      }
    }

    codes::TrustedTime trusted_time(p.cfg.clock_skew_s);
    checkout::ServiceEvents events;
    events.log = [](const std::string& event, const nlohmann::json& fields) {
      LogEvent(event == "member_frozen" ? Level::kWarn : Level::kInfo, event, fields);
    };
    checkout::CheckoutService service({p.cfg.terminal_id, p.cfg.store_id}, clock, *p.verifier, trusted_time, p.tz,
                                      p.rules, events);
    checkout::LedgerWriter writer(std::move(*writer_ledger));

    SyncLocal sync_local({p.cfg.database, p.cfg.terminal_id, p.cfg.store_id, LOYALTY_VERSION}, writer, service, clock,
                         p.tz, [&service, hq_rules_adopted](const nlohmann::json& j) {
                           auto r = rules::RulesFromJson(j);
                           if (!r.ok()) return;
                           *hq_rules_adopted = true;
                           auto current = service.rules();
                           if (current && *current == *r) return;  // HQ sends its rules on every run
                           service.SetRules(std::make_shared<rules::Rules>(std::move(*r)));
                           LogEvent(Level::kInfo, "rules_updated", {{"rules_version", j.value("version", "")}});
                         });
    SyncServiceOptions sync_opts;
    sync_opts.terminal_id = p.cfg.terminal_id;
    sync_opts.hq_host = p.cfg.hq_host;
    sync_opts.hq_port = p.cfg.hq_port;
    sync_opts.hq_base_path = p.cfg.hq_base_path;
    sync_opts.hq_tls = p.cfg.hq_tls;
    sync_opts.hq_ca_file = p.cfg.ca_file;
    sync_opts.hq_cert_file = p.cfg.cert_file;
    sync_opts.hq_key_file = p.cfg.key_file;
    sync_opts.interval_s = p.cfg.interval_s;
    sync_opts.run_timeout_s = p.cfg.run_timeout_s;
    SyncService sync_service(sync_opts, sync_local, clock, [&trusted_time](int64_t hq_ms, int64_t mono_ms) {
      trusted_time.RecordHqTime(hq_ms, mono_ms);
    });

    // Metrics count events as they are logged (whatever the log level), so every counter
    // has exactly one source: the event the decision logged.
    Metrics metrics;
    HourlyCounter scans_per_hour;
    SetEventObserver([&metrics, &scans_per_hour, &clock](const std::string& event, const nlohmann::json& f) {
      if (event == "checkout_committed") {
        metrics.CheckoutCommitted(f.value("points_earned", int64_t{0}), f.value("points_redeemed", int64_t{0}));
      } else if (event == "refund_committed") {
        metrics.RefundCommitted(f.value("points_clawed_back", int64_t{0}), f.value("points_restored", int64_t{0}));
      } else if (event == "sync_finished" || event == "sync_failed") {
        metrics.SyncRun(event == "sync_finished");
      } else if (event == "scan_accepted" || event == "scan_rejected" || event == "scan_not_member_code") {
        metrics.ScanResult(event == "scan_accepted" ? "member" : event == "scan_rejected" ? "rejected" : "not_a_member_code");
        scans_per_hour.Add(clock.now_s());
      }
    });

    boost::asio::io_context ioc(1);
    ApiContext ctx;
    ctx.metrics = &metrics;
    ctx.token = p.token;
    ctx.version = LOYALTY_VERSION;
    ctx.terminal_id = p.cfg.terminal_id;
    ctx.store_id = p.cfg.store_id;
    ctx.service = &service;
    ctx.writer = &writer;
    ctx.reader = reader->get();
    ctx.sync = &sync_service;
    ctx.health_extra = [&]() {
      bool untrusted = trusted_time.untrusted(clock);
      return nlohmann::json{{"clock", {{"trusted", !untrusted}}}, {"rules_version", service.rules()->version}};
    };
    // Scans: each read is identified on the event loop and becomes a scan event.
    ScanHub hub(ioc);
    ctx.scans = &hub;
    ledger::Ledger* loop_reader = reader->get();
    Scanners scanners(ioc, clock, [&](const drivers::Scan& s) { hub.Add(IdentifyScan(s, service, *loop_reader)); });
    ctx.scanner_health = [&scanners]() { return scanners.Health(); };
    metrics.set_gauges([&]() {
      Metrics::Gauges g;
      // A failed read shows as 0 here; /v1/health and loyalty_ledger_ok say the ledger is not ok.
      auto count = loop_reader->EntryCount();
      auto pending = loop_reader->PendingEntryCount();
      g.ledger_entries = count.ok() ? std::max<int64_t>(0, *count) : 0;
      g.pending_entries = pending.ok() ? std::max<int64_t>(0, *pending) : 0;
      g.ledger_ok = count.ok() && !loop_reader->damaged();
      if (auto last = loop_reader->LastSuccessfulSyncRun(); last.ok() && *last)
        g.last_sync_success_s = (*last)->finished_at_ms.value_or((*last)->started_at_ms) / 1000;
      g.clock_trusted = !trusted_time.untrusted(clock);
      for (const auto& sc : scanners.Health()) g.scanners.emplace_back(sc["id"].get<std::string>(), sc["state"] == "connected");
      return g;
    });
    ctx.status_data = [&]() {
      StatusSources src{LOYALTY_VERSION, p.cfg.terminal_id, p.cfg.store_id, clock, trusted_time, service, *loop_reader,
                        scanners.Health(), scans_per_hour};
      return CollectStatusData(src);
    };
    PosApi api(ctx);

    http::ServerOptions so;
    so.host = p.cfg.listen_host;
    so.port = p.cfg.listen_port;
    so.max_connections = static_cast<size_t>(p.cfg.max_connections);
    so.read_timeout_ms = p.cfg.request_timeout_ms;
    so.write_timeout_ms = p.cfg.request_timeout_ms;
    http::Server server(ioc, so, [&api](http::Request&& r, http::Responder respond) {
      api.Handle(std::move(r), std::move(respond));
    });
    if (Status s = server.Listen(); !s.ok()) {
      LogEvent(Level::kCritical, "api_listen_failed", {{"listen", p.cfg.listen}, {"message", s.message()}});
      writer.Stop();
      return kExitRuntime;
    }

    if (Status s = scanners.Start(p.cfg.scanners); !s.ok()) {
      LogEvent(Level::kCritical, "scanner_error", {{"message", s.message()}});
      writer.Stop();
      return kExitConfig;
    }

    // Watchdog keep-alives come from the event loop itself, so a stalled loop is restarted.
    boost::asio::steady_timer watchdog(ioc);
    uint64_t watchdog_usec = 0;
    std::function<void()> arm_watchdog;
    if (sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec > 0) {
      arm_watchdog = [&]() {
        watchdog.expires_after(std::chrono::microseconds(watchdog_usec / 2));
        watchdog.async_wait([&](const boost::system::error_code& e) {
          if (e) return;
          sd_notify(0, "WATCHDOG=1");
          arm_watchdog();
        });
      };
      arm_watchdog();
    }

    // The clock check: log clock_untrusted once when the wall clock leaves the trusted time.
    boost::asio::steady_timer clock_timer(ioc);
    std::function<void()> check_clock = [&]() {
      switch (trusted_time.TakeTransition(clock)) {
        case codes::TrustedTime::Transition::kBecameUntrusted:
          LogEvent(Level::kWarn, "clock_untrusted",
                   {{"wall_clock", FormatRfc3339(clock.now_s())}, {"trusted_time", FormatRfc3339(service.NowS())}});
          break;
        case codes::TrustedTime::Transition::kBecameTrusted:
          LogEvent(Level::kInfo, "clock_trusted", {{"wall_clock", FormatRfc3339(clock.now_s())}});
          break;
        case codes::TrustedTime::Transition::kNone:
          break;
      }
      clock_timer.expires_after(std::chrono::seconds(10));
      clock_timer.async_wait([&](const boost::system::error_code& e) {
        if (!e) check_clock();
      });
    };
    check_clock();

    bool stopping = false;
    boost::asio::signal_set signals(ioc, SIGTERM, SIGINT, SIGHUP);
    std::function<void()> wait_signal = [&]() {
      signals.async_wait([&](const boost::system::error_code& e, int sig) {
        if (e) return;
        if (sig == SIGHUP) {
          // Reload the reloadable parts; a bad file keeps the old configuration.
          auto cfg = config::LoadAgentConfig(config_path);
          if (!cfg.ok()) {
            LogEvent(Level::kError, "config_reload_failed", {{"message", cfg.status().message()}});
          } else {
            auto level = ParseLevel(cfg->log_level);
            auto rules = LoadRules(*cfg);
            if (!rules.ok()) {
              LogEvent(Level::kError, "config_reload_failed", {{"message", rules.status().message()}});
            } else {
              if (level.ok()) SetLogLevel(*level);
              // Once HQ's rules are in force the local file no longer applies.
              if (!*hq_rules_adopted) service.SetRules(*rules);
              if (Status sc = scanners.Reload(cfg->scanners); !sc.ok())
                LogEvent(Level::kError, "config_reload_failed", {{"message", sc.message()}});
              LogEvent(Level::kInfo, "config_reloaded",
                       {{"rules_version", service.rules()->version}, {"log_level", cfg->log_level}});
            }
          }
          wait_signal();
          return;
        }
        if (stopping) return;
        stopping = true;
        sd_notify(0, "STOPPING=1");
        LogEvent(Level::kInfo, "agent_stopping", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
        watchdog.cancel();
        clock_timer.cancel();
        scanners.Stop();
        hub.Close();
        server.Stop([&]() {
          // In-flight requests are answered; a sync run stops at its next step (or when its
          // request in flight times out); then the writer finishes its queue.
          sync_service.Stop();
          writer.Stop();
          signals.cancel();
          ioc.stop();
        });
      });
    };
    wait_signal();

    LogEvent(Level::kInfo, "agent_started",
             {{"version", LOYALTY_VERSION}, {"terminal_id", p.cfg.terminal_id}, {"store_id", p.cfg.store_id},
              {"listen", p.cfg.listen_host + ":" + std::to_string(server.port())}, {"entries", entries},
              {"rules_version", p.rules->version}});
    for (const auto& w : p.cfg.warnings) LogEvent(Level::kWarn, "config_warning", {{"message", w}});
    sd_notify(0, "READY=1");
    // The start-up check of the file (operations.md, a damaged ledger), right after READY
    // on a connection and thread of its own: PRAGMA quick_check reads every page, seconds
    // for the 1M-entry ledger of bench_startup (docs/performance.md), far too long to hold
    // a lane's start (about 75 ms without it). A problem latches the ledger damaged (ledger_damaged is logged
    // by the latch), which commits and refunds then refuse.
    std::unique_ptr<ledger::Ledger> check_reader;
    if (auto cr = ledger::Ledger::Open(p.cfg.database, ledger::Ledger::Mode::kReader, p.cfg.terminal_id); cr.ok())
      check_reader = std::move(*cr);
    else
      LogEvent(Level::kError, "ledger_error", {{"phase", "quick_check"}, {"message", cr.status().message()}});
    std::atomic<bool> check_stopping{false};
    std::thread check_thread;
    // Stops a check still running (Ledger::Interrupt is safe from another thread while the
    // connection is in use) and joins it, however this scope is left.
    struct CheckJoin {
      std::thread& t;
      std::atomic<bool>& stopping;
      std::unique_ptr<ledger::Ledger>& reader;
      ~CheckJoin() { Stop(); }
      void Stop() {
        if (!t.joinable()) return;
        stopping = true;
        reader->Interrupt();
        t.join();
      }
    } check_join{check_thread, check_stopping, check_reader};
    if (check_reader) {
      check_thread = std::thread([&check_reader, &check_stopping]() {
        auto started = std::chrono::steady_clock::now();
        auto problems = check_reader->CheckIntegrity(/*quick=*/true);
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
        if (check_stopping) return;  // interrupted by the stop: no verdict
        if (!problems.ok() && problems.status().code() != ErrorCode::kLedgerDamaged) {
          LogEvent(Level::kError, "ledger_error", {{"phase", "quick_check"}, {"message", problems.status().message()}});
          return;
        }
        size_t n = problems.ok() ? problems->size() : 1;
        LogEvent(n == 0 ? Level::kInfo : Level::kError, "ledger_checked",
                 {{"check", "quick_check"}, {"ok", n == 0}, {"problems", n}, {"duration_ms", ms.count()}});
      });
    }
    sync_service.Start();
    ioc.run();
    check_join.Stop();
    sync_service.Stop();
    writer.Stop();
    SetEventObserver(nullptr);
    LogEvent(Level::kInfo, "agent_stopped", {});
    return 0;
  } catch (const std::exception& e) {
    LogEvent(Level::kCritical, "agent_crashed", {{"message", e.what()}});
    return kExitRuntime;
  }
}

}  // namespace loyalty::agent
