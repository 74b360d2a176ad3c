#include "daemon.h"

#include <systemd/sd-daemon.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>

#include "api.h"
#include "events.h"
#include "log.h"
#include "loyalty/base/clock.h"
#include "loyalty/base/file.h"
#include "loyalty/base/json.h"
#include "loyalty/base/timezone.h"
#include "loyalty/checkout/service.h"
#include "loyalty/checkout/writer.h"
#include "loyalty/codes/codes.h"
#include "loyalty/codes/trusted_time.h"
#include "loyalty/config/config.h"
#include "loyalty/http/client.h"
#include "loyalty/http/server.h"
#include "loyalty/ledger/ledger.h"
#include "loyalty/rules/rules.h"
#include "member_lookup.h"
#include "metrics.h"
#include "reload.h"
#include "scan_pipeline.h"
#include "scanners.h"
#include "scans.h"
#include "signals.h"
#include "startup_check.h"
#include "status_page.h"
#include "status_source.h"
#include "sync_local.h"
#include "sync_service.h"
#include "timers.h"

#ifndef LOYALTY_VERSION
#define LOYALTY_VERSION "0.0.0"
#endif

namespace loyalty::agent {
namespace {

constexpr int kExitConfig = 2;   // bad command line or configuration
constexpr int kExitRuntime = 1;  // could not start (ledger, port) or failed while running

void Usage() {
  std::fprintf(stderr,
               "usage: loyaltyd [--config FILE] [--check-config] [--version]\n"
               "  --config FILE    agent configuration (default /etc/loyaltyd/agent.toml)\n"
               "  --check-config   validate the configuration and the files it names, then exit\n"
               "  --version        print the version and exit\n");
}

struct CommandLine {
  std::string config_path = "/etc/loyaltyd/agent.toml";
  bool check_only = false;
};

// Reads the command line into `cl`. Returns the exit status when there is nothing more to
// do: --version, --help, or an argument it does not know (said on stderr).
std::optional<int> ParseCommandLine(int argc, char** argv, CommandLine& cl) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--config" && i + 1 < argc) {
      cl.config_path = argv[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      cl.config_path = a.substr(9);
    } else if (a == "--check-config") {
      cl.check_only = true;
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
  return std::nullopt;
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
  if (!tz.ok())
    return Status::Error(ErrorCode::kConfigInvalid,
                         config_path + ": agent.timezone: " + tz.status().message());
  p.tz = std::move(*tz);
  auto rules = LoadRules(p.cfg);
  if (!rules.ok())
    return Status::Error(ErrorCode::kConfigInvalid,
                         config_path + ": agent.rules_file: " + rules.status().message());
  p.rules = std::move(*rules);
  auto verifier = codes::CodeVerifier::Create(ToCodesConfig(p.cfg));
  if (!verifier.ok())
    return Status::Error(ErrorCode::kConfigInvalid,
                         config_path + ": codes: " + verifier.status().message());
  p.verifier = std::move(*verifier);
  // The POS API token is the one secret its owner's group may read (the POS's group).
  auto token = config::ReadTokenFile(p.cfg.token_file, SecretAccess::kOwnerAndGroupRead);
  if (!token.ok())
    return Status::Error(ErrorCode::kConfigInvalid,
                         config_path + ": api.token_file: " + token.status().message());
  p.token = std::move(*token);
  // The client key is read again at each sync run, through the same check; checking it
  // here makes a key others can read stop the start (and --check-config) at once.
  if (!p.cfg.key_file.empty()) {
    auto key = config::ReadConfiguredSecret(config_path, "hq.key_file", p.cfg.key_file);
    if (!key.ok()) return key.status();
  }
  // The TLS files of [hq] load as the sync client will load them (the CA, the certificate,
  // the key and that they match), so a missing or wrong file stops the start (and
  // --check-config) naming its key, rather than failing every hourly run. No connection.
  if (!p.cfg.hq_url.empty() && p.cfg.hq_tls) {
    http::ClientTlsOptions tls{p.cfg.ca_file, p.cfg.cert_file, p.cfg.key_file, ""};
    http::Client probe(p.cfg.hq_host, p.cfg.hq_port, tls);
    if (const Status& s = probe.status(); !s.ok()) {
      const std::string& m = s.message();
      const char* key = m.rfind("TLS certificate ", 0) == 0 || m.find("go together") != m.npos
                            ? "hq.cert_file"
                        : m.rfind("TLS key ", 0) == 0 ? "hq.key_file"
                                                      : "hq.ca_file";
      return Status::Error(ErrorCode::kConfigInvalid, config_path + ": " + key + ": " + m);
    }
  }
  return p;
}

LogOptions ToLogOptions(const config::AgentConfig& cfg) {
  return {cfg.log_level, cfg.log_format, cfg.log_file, cfg.log_file_max_bytes, cfg.log_file_count};
}

// The daemon's two connections to the ledger, and what start-up read through them.
struct OpenedLedger {
  // The ledger has one writer: this process, while it holds <database>.lock (operations.md).
  std::optional<FileLock> lock;
  std::unique_ptr<ledger::Ledger> writer;  // for the writer thread
  std::unique_ptr<ledger::Ledger> reader;  // the event loop's
  int64_t entries = -1;                    // -1: the count failed (the health's to report)
  bool damaged = false;                    // SQLite reported the file damaged while opening it
  // Set once rules HQ pushed are in force; from then on the local rules file no longer
  // applies. Read and set from the sync thread and the event loop.
  std::shared_ptr<std::atomic<bool>> hq_rules_adopted;
};

// Opens the ledger's writer (migrating it) and the event loop's reader, marks a sync run
// the previous process was killed in as failed, and puts the rules HQ pushed at an earlier
// sync in force (in p.rules). Logs a failure and returns nullopt.
// A file SQLite reports damaged while it is opened is no failure: the agent starts on it
// degraded (operations.md, a damaged ledger), ledger_damaged logged once by the latch, and
// nothing more is read from it or written to it here.
std::optional<OpenedLedger> OpenLedger(Prepared& p, const Clock& clock) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(p.cfg.database).parent_path(), ec);
  // Before the file is touched: a second loyaltyd on the same ledger (a second unit, a
  // copy started by hand) would write entries under the seqs this one is about to use and
  // wedge both lanes, and its start-up would mark this one's running sync as interrupted.
  // Named after the ledger's real path: a second config that reaches the same file through
  // a symbolic link (of the file or of a folder above it) meets the same lock.
  std::string real = std::filesystem::weakly_canonical(p.cfg.database, ec).string();
  if (ec || real.empty()) real = p.cfg.database;
  auto lock = FileLock::TryExclusive(real + ".lock");
  if (!lock.ok()) {
    const bool busy = lock.status().code() == ErrorCode::kUnavailable;
    LogEvent(Level::kError, "ledger_error",
             {{"phase", "open"},
              {"message", p.cfg.database + ": " +
                              (busy ? "in use by another loyaltyd (" + real +
                                          ".lock is held); one process writes a ledger"
                                    : lock.status().message())}});
    return std::nullopt;
  }
  // The first start of a new version migrates the ledger, one transaction a step: on a
  // year of sales that can outlast systemd's start timeout, and a start killed midway
  // would roll back and begin again, for ever. Ask for the time it takes.
  if (auto v = ledger::Ledger::PeekSchemaVersion(p.cfg.database);
      v && *v > 0 && *v < ledger::kSchemaVersion) {
    LogEvent(Level::kInfo, "ledger_migrating",
             {{"database", p.cfg.database}, {"from", *v}, {"to", ledger::kSchemaVersion}});
    sd_notify(0, "EXTEND_TIMEOUT_USEC=1800000000\nSTATUS=Migrating the ledger");
  }
  auto writer_ledger =
      ledger::Ledger::Open(p.cfg.database, ledger::Ledger::Mode::kWriter, p.cfg.terminal_id);
  if (!writer_ledger.ok()) {
    LogEvent(Level::kError, "ledger_error",
             {{"phase", "open"}, {"message", writer_ledger.status().message()}});
    return std::nullopt;
  }
  // Whichever connection first meets a corruption latches the file; said once (at once
  // when opening it already did).
  (*writer_ledger)->OnDamaged([database = p.cfg.database](const std::string& reason) {
    LogEvent(Level::kCritical, "ledger_damaged", {{"database", database}, {"reason", reason}});
  });
  // Checkpoints run when the writer thread is idle, never inside a checkout's commit.
  (*writer_ledger)->UseIdleCheckpoints();
  auto reader =
      ledger::Ledger::Open(p.cfg.database, ledger::Ledger::Mode::kReader, p.cfg.terminal_id);
  if (!reader.ok()) {
    LogEvent(Level::kError, "ledger_error",
             {{"phase", "open_reader"}, {"message", reader.status().message()}});
    return std::nullopt;
  }
  OpenedLedger opened;
  opened.lock = std::move(*lock);
  opened.writer = std::move(*writer_ledger);
  opened.reader = std::move(*reader);
  opened.hq_rules_adopted = std::make_shared<std::atomic<bool>>(false);
  opened.damaged = opened.writer->damaged();
  // A damaged file is neither written (the interrupted runs) nor trusted (the rules).
  if (opened.damaged) return opened;
  auto counted = opened.writer->EntryCount();
  opened.entries = counted.ok() ? *counted : -1;
  // A run the previous process was killed in is recorded as failed, not left running.
  if (auto n = opened.writer->FailInterruptedSyncRuns(clock.now_ms()); n.ok() && *n > 0)
    LogEvent(Level::kWarn, "sync_interrupted", {{"runs", *n}});
  // Rules HQ pushed at an earlier sync stay in force across restarts; the local rules
  // file is only the fallback before a first sync.
  if (auto stored = opened.writer->GetMeta("hq_rules"); stored.ok() && *stored) {
    if (auto j = ParseJsonObject(**stored); j.ok()) {
      if (auto r = rules::RulesFromJson(*j); r.ok()) {
        p.rules = std::make_shared<rules::Rules>(std::move(*r));
        *opened.hq_rules_adopted = true;
      }
    }
  }
  return opened;
}

// The checkout service's events, logged at their catalogue's level (events.h: member_frozen
// and phone_lookup_limited are warnings).
checkout::ServiceEvents LoggedServiceEvents() {
  checkout::ServiceEvents events;
  events.log = [](const std::string& event, const nlohmann::json& fields) {
    Level level = Level::kInfo;
    if (const EventInfo* e = FindEvent(event)) {
      if (auto parsed = ParseLevel(std::string(e->level)); parsed.ok()) level = *parsed;
    }
    LogEvent(level, event, fields);
  };
  return events;
}

// Sync thread: the rules HQ sends on every run are put in force when they differ from the
// current ones (rules_updated); rules this build cannot take (a value out of range, a key
// of a newer HQ) leave the current ones in force and are said once (rules_refused), not on
// every page of every run.
std::function<void(const nlohmann::json&)> ApplyHqRules(
    checkout::CheckoutService& service, std::shared_ptr<std::atomic<bool>> hq_rules_adopted) {
  auto refused = std::make_shared<std::string>();  // the last document refused
  return [&service, hq_rules_adopted, refused](const nlohmann::json& j) {
    auto r = rules::RulesFromJson(j);
    if (!r.ok()) {
      std::string text = j.dump();
      if (text == *refused) return;
      *refused = std::move(text);
      std::string version;
      if (auto it = j.find("version"); j.is_object() && it != j.end() && it->is_string())
        version = it->get<std::string>().substr(0, 64);
      LogEvent(Level::kWarn, "rules_refused",
               {{"rules_version", version},
                {"reason", r.status().message().substr(0, 512)},
                {"in_force", service.rules() ? service.rules()->version : ""}});
      return;
    }
    refused->clear();
    *hq_rules_adopted = true;
    auto current = service.rules();
    if (current && *current == *r) return;  // HQ sends its rules on every run
    service.SetRules(std::make_shared<rules::Rules>(std::move(*r)));
    LogEvent(Level::kInfo, "rules_updated", {{"rules_version", j.value("version", "")}});
  };
}

SyncServiceOptions ToSyncOptions(const config::AgentConfig& cfg) {
  SyncServiceOptions o;
  o.terminal_id = cfg.terminal_id;
  o.hq_host = cfg.hq_host;
  o.hq_port = cfg.hq_port;
  o.hq_base_path = cfg.hq_base_path;
  o.hq_tls = cfg.hq_tls;
  o.hq_ca_file = cfg.ca_file;
  o.hq_cert_file = cfg.cert_file;
  o.hq_key_file = cfg.key_file;
  o.interval_s = cfg.interval_s;
  o.run_timeout_s = cfg.run_timeout_s;
  return o;
}

// The log's event observer that keeps the metrics. Metrics count events as they are logged
// (whatever the log level), so every counter has exactly one source: the event the
// decision logged.
std::function<void(const std::string&, const nlohmann::json&)> CountEvents(
    Metrics& metrics, HourlyCounter& scans_per_hour, const Clock& clock) {
  return [&metrics, &scans_per_hour, &clock](const std::string& event, const nlohmann::json& f) {
    if (event == "checkout_committed") {
      metrics.CheckoutCommitted(f.value("points_earned", int64_t{0}),
                                f.value("points_redeemed", int64_t{0}));
    } else if (event == "refund_committed") {
      metrics.RefundCommitted(f.value("points_clawed_back", int64_t{0}),
                              f.value("points_restored", int64_t{0}));
    } else if (event == "sync_finished" || event == "sync_failed") {
      metrics.SyncRun(event == "sync_finished");
    } else if (event == "scan_accepted" || event == "scan_rejected" ||
               event == "scan_not_member_code") {
      metrics.ScanResult(event == "scan_accepted"   ? "member"
                         : event == "scan_rejected" ? "rejected"
                                                    : "not_a_member_code");
      scans_per_hour.Add(clock.now_s());
    }
  };
}

// Event-loop thread, at scrape time.
Metrics::Gauges ReadGauges(ledger::Ledger& reader, const codes::TrustedTime& trusted_time,
                           const Clock& clock, const Scanners& scanners) {
  Metrics::Gauges g;
  // A failed read shows as 0 here; /v1/health and loyalty_ledger_ok say the ledger is not ok.
  auto count = reader.EntryCount();
  auto pending = reader.PendingEntryCount();
  g.ledger_entries = count.ok() ? std::max<int64_t>(0, *count) : 0;
  g.pending_entries = pending.ok() ? std::max<int64_t>(0, *pending) : 0;
  g.ledger_ok = count.ok() && !reader.damaged();
  if (auto last = reader.LastSuccessfulSyncRun(); last.ok() && *last)
    g.last_sync_success_s = (*last)->finished_at_ms.value_or((*last)->started_at_ms) / 1000;
  g.clock_trusted = !trusted_time.untrusted(clock);
  for (const auto& sc : scanners.Health())
    g.scanners.emplace_back(sc["id"].get<std::string>(), sc["state"] == "connected");
  for (auto& sg : scanners.Garbage())
    g.scanner_garbage.push_back({std::move(sg.scanner), std::move(sg.reason), sg.count});
  return g;
}

http::ServerOptions ToServerOptions(const config::AgentConfig& cfg) {
  http::ServerOptions so;
  so.host = cfg.listen_host;
  so.port = cfg.listen_port;
  so.max_connections = static_cast<size_t>(cfg.max_connections);
  so.read_timeout_ms = cfg.request_timeout_ms;
  so.write_timeout_ms = cfg.request_timeout_ms;
  return so;
}

// What a stop signal stops, in this order (BeginShutdown).
struct ShutdownOrder {
  WatchdogTimer& watchdog;
  ClockCheckTimer& clock_check;
  Scanners& scanners;
  ScanHub& hub;
  http::Server& server;
  SyncService& sync_service;
  checkout::LedgerWriter& writer;
  DaemonSignals& signals;
  boost::asio::io_context& ioc;
};

// Event-loop thread, on SIGTERM or SIGINT: STOPPING=1, the timers, the scanners and the
// long-polls, then the server stops accepting; once it has drained, the sync service, the
// writer, the signals and the event loop.
void BeginShutdown(const ShutdownOrder& s, int sig) {
  sd_notify(0, "STOPPING=1");
  LogEvent(Level::kInfo, "agent_stopping", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
  s.watchdog.Cancel();
  s.clock_check.Cancel();
  s.scanners.Stop();
  s.hub.Close();
  s.server.Stop([s]() {
    // In-flight requests are answered; a sync run stops at its next step (or when its
    // request in flight times out); then the writer finishes its queue.
    s.sync_service.Stop();
    s.writer.Stop();
    s.signals.Cancel();
    s.ioc.stop();
  });
}

// This boot's id (the kernel's, a UUID), which ties a monotonic clock reading to the boot it
// was made in; "" when it cannot be read.
std::string ReadBootId() {
  std::ifstream f("/proc/sys/kernel/random/boot_id");
  std::string id;
  if (!std::getline(f, id) || id.size() != 36) return "";
  return id;
}

void LogStarted(const Prepared& p, uint16_t port, int64_t entries) {
  LogEvent(Level::kInfo, "agent_started",
           {{"version", LOYALTY_VERSION},
            {"terminal_id", p.cfg.terminal_id},
            {"store_id", p.cfg.store_id},
            {"listen", p.cfg.listen_host + ":" + std::to_string(port)},
            {"entries", entries},
            {"rules_version", p.rules->version}});
  for (const auto& w : p.cfg.warnings) LogEvent(Level::kWarn, "config_warning", {{"message", w}});
}

// Start-up in order (docs/architecture.md, "Start-up and shutdown"), the event loop until
// a stop signal, then what the loop leaves running is stopped. Returns the exit status.
int Serve(const std::string& config_path, Prepared& p) {
  const Clock& clock = SystemClock::Instance();
  auto ledger = OpenLedger(p, clock);
  if (!ledger) return kExitRuntime;

  codes::TrustedTime trusted_time(p.cfg.clock_skew_s);
  checkout::ServiceOptions service_opts{p.cfg.terminal_id, p.cfg.store_id};
  service_opts.phone_lookups_per_hour = p.cfg.phone_lookups_per_hour;
  checkout::CheckoutService service(service_opts, clock, *p.verifier, trusted_time, p.tz, p.rules,
                                    LoggedServiceEvents());
  checkout::LedgerWriter writer(std::move(ledger->writer));
  SyncLocal sync_local({p.cfg.database, p.cfg.terminal_id, p.cfg.store_id, LOYALTY_VERSION}, writer,
                       service, clock, p.tz, ApplyHqRules(service, ledger->hq_rules_adopted));
  MemberLookup* lookup_ptr = nullptr;  // set below; HQ's answer to a run resumes look-ups
  // This boot's id, which ties the kept trusted time to the boot it was read in.
  const std::string boot_id = ReadBootId();
  SyncService sync_service(
      ToSyncOptions(p.cfg), sync_local, clock,
      [&trusted_time, &lookup_ptr, &sync_local, &boot_id](int64_t hq_ms, int64_t mono_ms) {
        trusted_time.RecordHqTime(hq_ms, mono_ms);
        // Kept for a restart within this boot; best effort: a record
        // not kept only means the wall clock until the next run.
        (void)sync_local.RememberHqTime(hq_ms, mono_ms, boot_id);
        if (lookup_ptr) lookup_ptr->Resume();
      });
  // Members this terminal does not hold are asked of HQ at identify (member_lookup.h).
  MemberLookup lookup(
      {p.cfg.terminal_id, p.cfg.store_id, p.cfg.lookup_timeout_ms},
      [&sync_service] { return sync_service.MakeTransport(); }, sync_local, clock);
  lookup_ptr = &lookup;
  if (!p.cfg.hq_url.empty()) {
    service.SetMemberLookup([&lookup](const codes::Identified& id) { return lookup.Lookup(id); });
    // Refunds ask HQ about their sale (docs/pos-api.md, "Returns anywhere").
    service.SetSaleFetcher([&lookup](const std::string& sold_at, const std::string& checkout_id) {
      return lookup.FetchSale(sold_at, checkout_id);
    });
    // A phone number found in no snapshot is asked of HQ (docs/pos-api.md, "Phone look-up").
    service.SetPhoneFetcher(
        [&lookup](const std::string& digits) { return lookup.LookupPhone(digits); });
  }
  // Keys kept in a damaged file are not read: nothing it holds is trusted, and nothing
  // that would use them is answered.
  if (!ledger->damaged) {
    if (Status s = sync_local.LoadPhoneKeys(); !s.ok())
      LogEvent(Level::kWarn, "phone_keys_unreadable", {{"reason", s.ToString()}});
    // Commits carry a return token once HQ has certified this terminal's receipt key.
    if (Status s = sync_local.LoadReceiptKey(clock.now_s()); !s.ok())
      LogEvent(Level::kWarn, "receipt_key_unreadable", {{"reason", s.ToString()}});
    // HQ's time from the last run of this boot: a restart (a crash, an upgrade) does not
    // leave codes judged by a wall clock set wrong until the next run.
    if (auto kept = sync_local.KeptHqTime(boot_id); kept.ok() && *kept) {
      if ((*kept)->second <= clock.mono_ms())
        trusted_time.RecordHqTime((*kept)->first, (*kept)->second);
    }
  }
  Metrics metrics;
  HourlyCounter scans_per_hour;
  SetEventObserver(CountEvents(metrics, scans_per_hour, clock));

  // The event loop's parts. Scans: each read is identified on the event loop and becomes a
  // scan event.
  boost::asio::io_context ioc(1);
  ScanHub hub(ioc);
  ledger::Ledger* loop_reader = ledger->reader.get();
  Scanners scanners(
      ioc, clock, [&](const drivers::Scan& s) { hub.Add(IdentifyScan(s, service, *loop_reader)); });
  ApiContext ctx;
  ctx.metrics = &metrics;
  ctx.token = p.token;
  ctx.version = LOYALTY_VERSION;
  ctx.terminal_id = p.cfg.terminal_id;
  ctx.store_id = p.cfg.store_id;
  ctx.service = &service;
  ctx.writer = &writer;
  ctx.reader = loop_reader;
  ctx.sync = &sync_service;
  ctx.enrolment.url_template = p.cfg.enrolment_url_template;
  ctx.enrolment.qr.module_pixels = p.cfg.enrolment_qr_module_pixels;
  ctx.enrolment.qr.error_correction =
      qr::ErrorCorrectionFromName(p.cfg.enrolment_qr_error_correction)
          .value_or(qr::ErrorCorrection::kMedium);
  ctx.health_extra = [&]() {
    bool untrusted = trusted_time.untrusted(clock);
    return nlohmann::json{
        {"clock", {{"trusted", !untrusted}, {"hq_time", trusted_time.has_hq_time()}}},
        {"rules_version", service.rules()->version}};
  };
  ctx.scans = &hub;
  ctx.scanner_health = [&scanners]() { return scanners.Health(); };
  ctx.status_data = [&]() {
    StatusSources src{LOYALTY_VERSION, p.cfg.terminal_id, p.cfg.store_id,
                      clock,           trusted_time,      service,
                      *loop_reader,    scanners.Health(), scans_per_hour};
    return CollectStatusData(src);
  };
  PosApi api(ctx);
  http::ServerOptions server_options = ToServerOptions(p.cfg);
  server_options.may_read_body = [&api](const http::Request& head) {
    return api.MayReadBody(head);
  };
  http::Server server(ioc, std::move(server_options),
                      [&api](http::Request&& r, http::Responder respond) {
                        api.Handle(std::move(r), std::move(respond));
                      });
  metrics.set_gauges([&]() {
    Metrics::Gauges g = ReadGauges(*loop_reader, trusted_time, clock, scanners);
    g.api_connections = static_cast<int64_t>(server.active_connections());
    g.api_connections_evicted = server.evicted_connections();
    g.api_connections_refused = server.refused_connections();
    return g;
  });

  if (Status s = server.Listen(); !s.ok()) {
    LogEvent(Level::kCritical, "api_listen_failed",
             {{"listen", p.cfg.listen}, {"message", s.message()}});
    writer.Stop();
    return kExitRuntime;
  }
  if (Status s = scanners.Start(p.cfg.scanners); !s.ok()) {
    LogEvent(Level::kError, "scanner_error", {{"message", s.message()}});
    writer.Stop();
    return kExitConfig;
  }
  WatchdogTimer watchdog(ioc);
  watchdog.Start();
  ClockCheckTimer clock_check(ioc, clock, trusted_time, service);
  clock_check.Start();
  DaemonSignals signals(ioc);
  ShutdownOrder shutdown{watchdog,     clock_check, scanners, hub, server,
                         sync_service, writer,      signals,  ioc};
  signals.Start([&]() { ReloadConfig(config_path, *ledger->hq_rules_adopted, service, scanners); },
                [&shutdown](int sig) { BeginShutdown(shutdown, sig); });

  LogStarted(p, server.port(), ledger->entries);
  sd_notify(0, "READY=1");
  StartupCheck startup_check(p.cfg.database, p.cfg.terminal_id);
  sync_service.Start();
  ioc.run();

  startup_check.Stop();
  sync_service.Stop();
  writer.Stop();
  SetEventObserver(nullptr);
  LogEvent(Level::kInfo, "agent_stopped", {});
  return 0;
}

}  // namespace

int RunDaemon(int argc, char** argv) {
  CommandLine cl;
  if (std::optional<int> exit_status = ParseCommandLine(argc, argv, cl)) return *exit_status;

  auto prepared = Prepare(cl.config_path);
  if (!prepared.ok()) {
    std::fprintf(stderr, "loyaltyd: %s\n", prepared.status().message().c_str());
    return kExitConfig;
  }
  if (cl.check_only) {
    // The ledger file named is looked at too, read-only: what would stop the start at
    // opening it (a directory, no access, not an SQLite file, a newer schema, another
    // terminal's) is said here, naming its key, with the status the start would exit with.
    if (Status s = ledger::Ledger::CheckFile(prepared->cfg.database, prepared->cfg.terminal_id);
        !s.ok()) {
      std::fprintf(stderr, "loyaltyd: %s: agent.database: %s\n", cl.config_path.c_str(),
                   s.message().c_str());
      return kExitRuntime;
    }
    if (Status s = CheckLogFile(prepared->cfg.log_file); !s.ok()) {
      std::fprintf(stderr, "loyaltyd: %s: %s\n", cl.config_path.c_str(), s.message().c_str());
      return kExitConfig;
    }
    std::printf("%s: ok\n", cl.config_path.c_str());
    return 0;
  }
  if (Status s = InitLog(ToLogOptions(prepared->cfg)); !s.ok()) {
    std::fprintf(stderr, "loyaltyd: %s: %s\n", cl.config_path.c_str(), s.message().c_str());
    return kExitConfig;
  }

  try {
    return Serve(cl.config_path, *prepared);
  } catch (const std::exception& e) {
    LogEvent(Level::kCritical, "agent_crashed", {{"message", e.what()}});
    return kExitRuntime;
  }
}

}  // namespace loyalty::agent
