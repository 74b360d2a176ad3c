// loyalty-hq: the reference HQ. Wiring only: configuration, keys, the store, the HTTP
// listener, the daily job timer and signals. Everything it answers is HqService's.
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <malloc.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <openssl/crypto.h>
#include <nlohmann/json.hpp>

#include "loyalty/base/clock.h"
#include "loyalty/base/secret_file.h"
#include "loyalty/base/time.h"
#include "loyalty/base/timezone.h"
#include "loyalty/config/config.h"
#include "loyalty/hq/events.h"
#include "loyalty/hq/keys.h"
#include "loyalty/hq/service.h"
#include "loyalty/hq/store.h"
#include "loyalty/http/server.h"
#include "loyalty/rules/rules.h"

namespace {

using nlohmann::json;

// [log] of hq.toml (operations.md, "Logs"): the least level written, and JSON lines or text.
// Until the config is read: info, and JSON under systemd, text otherwise, as when unset.
constexpr const char* kLevels[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};
int LevelRank(std::string_view level) {
  for (int i = 0; i < static_cast<int>(std::size(kLevels)); ++i)
    if (level == kLevels[i]) return i;
  return 2;
}
bool UnderSystemd() {
  return std::getenv("JOURNAL_STREAM") != nullptr || std::getenv("INVOCATION_ID") != nullptr;
}
std::atomic<int> g_min_level{2};
std::atomic<bool> g_json{UnderSystemd()};

// One line per event on stdout, flushed as written (journald keeps it): a JSON object, or
// "<time> <level> <event> key=value ..." as text. Every event is one of
// loyalty/hq/events.h; a name that is not is flagged with log_event_uncatalogued.
void Log(const char* level, const char* event, json fields = json::object()) {
  const int rank = LevelRank(level);
  if (rank < g_min_level.load() || g_min_level.load() >= LevelRank("off")) return;
  if (!loyalty::hq::FindHqEvent(event)) Log("error", "log_event_uncatalogued", {{"name", event}});
  const std::string ts = loyalty::FormatRfc3339(loyalty::SystemClock::Instance().now_s());
  std::string line;
  if (g_json.load()) {
    fields["ts"] = ts;
    fields["level"] = level;
    fields["event"] = event;
    line = fields.dump(-1, ' ', false, json::error_handler_t::replace);
  } else {
    line = loyalty::EventTextLine(ts, level, event, fields);
  }
  std::fprintf(stdout, "%s\n", line.c_str());
  std::fflush(stdout);
}

// Every connection is a descriptor: raises the soft limit toward the hard one so that
// max_connections (and as many refused ones, the database, logs and a margin) fit. Returns
// a warning for the log when it cannot.
std::string RaiseDescriptorLimit(size_t max_connections) {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return "getrlimit failed";
  const rlim_t want = static_cast<rlim_t>(max_connections) * 2 + 64;
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
    rlim_t cur = rl.rlim_max == RLIM_INFINITY ? want : std::min(want, rl.rlim_max);
    rlimit raised{cur, rl.rlim_max};
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) rl.rlim_cur = cur;
  }
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
    return "open files limited to " + std::to_string(rl.rlim_cur) + ", max_connections " +
           std::to_string(max_connections) + " wants " + std::to_string(want) +
           " (raise LimitNOFILE=)";
  }
  return {};
}

// Work for the workers, first in first out: each request the event loop read (it does TLS
// and HTTP; the workers do the service and the database), and the hourly job. Unbounded in
// type, bounded in fact: a connection has one request in the service at a time, and the
// listener holds at most max_connections.
class WorkQueue {
 public:
  using Work = std::function<void(loyalty::hq::HqService&)>;
  // Once closed, the work is dropped (a request's Responder, dropped, answers 500).
  void Push(Work w) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (closed_) return;
      q_.push_back(std::move(w));
    }
    cv_.notify_one();
  }
  // The next work; false once closed.
  bool Pop(Work& w) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return closed_ || !q_.empty(); });
    if (closed_) return false;
    w = std::move(q_.front());
    q_.pop_front();
    return true;
  }
  // Work not yet taken is dropped (on the event loop, while it runs: a request's Responder,
  // dropped, answers 500 if its connection is still open); work in a worker's hands finishes.
  void Close() {
    std::deque<Work> dropped;
    {
      std::lock_guard<std::mutex> lock(mu_);
      closed_ = true;
      dropped.swap(q_);
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Work> q_;
  bool closed_ = false;
};

// A TLS file the listener refused ("TLS CRL <file>: no CRL in the file"), said with its
// key as every other refused setting is: "<hq.toml>: hq.crl_file: TLS CRL <file>: ...".
std::string WithTlsKey(const std::string& cfg_file, const std::string& m) {
  for (const auto& [prefix, key] :
       {std::pair{"TLS certificate ", "hq.tls_cert_file"}, std::pair{"TLS key ", "hq.tls_key_file"},
        std::pair{"TLS client CA ", "hq.client_ca_file"}, std::pair{"TLS CRL ", "hq.crl_file"}}) {
    if (m.rfind(prefix, 0) == 0) return cfg_file + ": " + key + ": " + m;
  }
  return m;
}

int Usage() {
  std::fprintf(stderr, "usage: loyalty-hq --config FILE [--check-config]\n");
  return 2;
}

// Each request builds and frees a tree of small allocations (an upload's 388 KB of JSON is
// tens of thousands of them, a changes page's answer as many) around a few large buffers.
// glibc's defaults then mmap and unmap the large ones and trim the heap after each request,
// and grow it again for the next: in hourly runs under load 15 % of loyalty-hq's CPU was in
// the allocator (docs/performance.md, "Issue 11"). Large buffers stay on the heap, and up to
// 256 MB of freed heap is kept for the next requests (the process's footprint is its peak).
void TuneAllocator() {
  (void)mallopt(M_MMAP_THRESHOLD, 32 << 20);
  (void)mallopt(M_TRIM_THRESHOLD, 256 << 20);
  (void)mallopt(M_TOP_PAD, 64 << 20);
}

}  // namespace

int main(int argc, char** argv) {
  TuneAllocator();
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
    // Logged too, so the journal says why HQ did not start, as for every other refused
    // setting: in the format the refused file names, when it can be read (else the default).
    if (const std::string f = loyalty::config::LogFormatOf(config_path); !f.empty())
      g_json = f == "json";
    Log("error", "config_invalid", {{"reason", cfg.status().message()}});
    return 1;
  }
  g_min_level = LevelRank(cfg->log_level);
  if (!cfg->log_format.empty()) g_json = cfg->log_format == "json";
  auto fail = [&](const loyalty::Status& s) {
    std::fprintf(stderr, "loyalty-hq: %s\n", s.message().c_str());
    Log("error", "config_invalid", {{"reason", s.message()}});
    return 1;
  };
  // Every secret file hq.toml names is checked (owner-only, no link, a regular file) before
  // anything starts, and by --check-config alike; errors read "<hq.toml>: hq.<key>: <file>: ...",
  // the key dotted as the loader names keys.
  const std::string& cfg_file = cfg->path;
  auto token = loyalty::config::ReadTokenFile(cfg->admin_token_file);
  if (!token.ok())
    return fail(loyalty::config::SecretFileError(cfg_file, "hq.admin_token_file", token.status()));
  loyalty::hq::HqOptions opt;
  opt.admin_token = *token;
  if (!cfg->metrics_token_file.empty()) {
    auto metrics = loyalty::config::ReadTokenFile(cfg->metrics_token_file);
    if (!metrics.ok())
      return fail(
          loyalty::config::SecretFileError(cfg_file, "hq.metrics_token_file", metrics.status()));
    if (*metrics == *token)
      return fail(loyalty::Status::Error(
          loyalty::ErrorCode::kConfigInvalid,
          cfg_file + ": hq.metrics_token_file: must differ from the admin token"));
    opt.metrics_token = *metrics;
  }
  opt.card_prefix = cfg->card_prefix;
  opt.member_scope_months = cfg->member_scope_months;
  opt.phone_key_days = cfg->phone_key_days;
  opt.workers = cfg->workers;
  for (const auto& [id, file] : cfg->signing_keys) {
    auto seed = loyalty::hq::LoadSigningKeySeed(file);
    if (!seed.ok()) {
      return fail(loyalty::config::SecretFileError(
          cfg_file, "hq.signing_keys.\"" + std::to_string(id) + "\"", seed.status()));
    }
    opt.signing_seeds[id] = *seed;
  }
  // The TLS key is loaded by the listener from its path; this check comes just before.
  if (!cfg->tls_key_file.empty()) {
    auto key =
        loyalty::config::ReadConfiguredSecret(cfg_file, "hq.tls_key_file", cfg->tls_key_file);
    if (!key.ok()) return fail(key.status());
    OPENSSL_cleanse(key->data(), key->size());
  }
  // The PII key is created at the first start (below); an existing one is checked here too.
  if (auto pii_key =
          loyalty::ReadSecretFile(cfg->pii_key_file, loyalty::SecretAccess::kOwnerOnly, 64);
      !pii_key.ok() && pii_key.status().code() != loyalty::ErrorCode::kNotFound) {
    return fail(loyalty::config::SecretFileError(cfg_file, "hq.pii_key_file", pii_key.status()));
  } else if (pii_key.ok()) {
    OPENSSL_cleanse(pii_key->data(), pii_key->size());
  }
  // The chain's calendar for months (spend, tiers, lot expiry); hq.toml's timezone.
  auto tz = loyalty::TimeZone::Load(cfg->timezone);
  if (!tz.ok()) return fail(tz.status());
  opt.timezone = *tz;
  if (!cfg->rules_file.empty()) {
    auto rules = loyalty::rules::LoadRulesToml(cfg->rules_file);
    if (!rules.ok())  // the file, key and reason (operations.md), as for every other key
      return fail(
          loyalty::Status::Error(loyalty::ErrorCode::kConfigInvalid,
                                 cfg_file + ": hq.rules_file: " + rules.status().message()));
    opt.rules = std::move(*rules);
  }
  // What the service reports, at the level its catalogue entry names.
  opt.on_event = [](const char* event, const json& fields) {
    const loyalty::EventInfo* e = loyalty::hq::FindHqEvent(event);
    Log(e ? std::string(e->level).c_str() : "warn", event, fields);
  };
  // The listener's TLS files: the certificate chain, its key, the client CA and the CRL.
  // One that cannot be opened is said here with its key and the system's reason (the
  // listener would say only that OpenSSL could not read it).
  for (const auto& [key, file] :
       {std::pair<const char*, const std::string*>{"hq.tls_cert_file", &cfg->tls_cert_file},
        {"hq.client_ca_file", &cfg->client_ca_file},
        {"hq.crl_file", &cfg->crl_file}}) {
    if (file->empty()) continue;
    if (std::FILE* f = std::fopen(file->c_str(), "rb")) {
      std::fclose(f);
    } else {
      return fail(loyalty::Status::Error(
          loyalty::ErrorCode::kConfigInvalid,
          cfg_file + ": " + key + ": " + *file + ": cannot open: " + std::strerror(errno)));
    }
  }
  std::optional<loyalty::http::TlsServerOptions> tls_options;
  if (!cfg->tls_cert_file.empty()) {
    // Every client is asked for a certificate but the handshake does not require one: the
    // admin routes authenticate with the bearer token alone, so an operator's curl works
    // without a client certificate. The terminal routes check the certificate themselves.
    loyalty::http::TlsServerOptions t;
    t.cert_chain_file = cfg->tls_cert_file;
    t.key_file = cfg->tls_key_file;
    t.client_ca_file = cfg->client_ca_file;
    t.client_certs = loyalty::http::ClientCertMode::kRequest;
    t.crl_file = cfg->crl_file;  // certificates it lists are refused at the handshake
    tls_options = std::move(t);
  }
  // The database password file is a secret like the others: checked here, before
  // --check-config answers, so that the check refuses what the start would.
  std::string db_password;
  if (!cfg->database_password_file.empty()) {
    auto pw = loyalty::config::ReadTokenFile(cfg->database_password_file);
    if (!pw.ok())
      return fail(
          loyalty::config::SecretFileError(cfg_file, "hq.database_password_file", pw.status()));
    db_password = std::move(*pw);
  }
  if (check_only) {
    // The TLS files are loaded as the listener loads them at start (a CRL that is not PEM,
    // names no CA of client_ca_file, is not signed by it or is past its nextUpdate stops the
    // start, and so fails the check), on a loopback port of the system's choosing: the
    // configured one may be in use by the running HQ.
    if (tls_options) {
      boost::asio::io_context probe_ioc;
      loyalty::http::ServerOptions probe;
      probe.host = "127.0.0.1";
      probe.port = 0;
      probe.tls = tls_options;
      loyalty::http::Server listener(probe_ioc, probe,
                                     [](loyalty::http::Request&&, loyalty::http::Responder) {});
      if (auto s = listener.Listen(); !s.ok())
        return fail(loyalty::Status::Error(s.code(), WithTlsKey(cfg_file, s.message())));
    }
    for (const auto& w : cfg->warnings)
      std::fprintf(stderr, "loyalty-hq: warning: %s\n", w.c_str());
    std::printf("%s: ok\n", config_path.c_str());
    return 0;
  }
  auto pii = loyalty::hq::PiiCipher::LoadOrCreate(cfg->pii_key_file);
  if (!pii.ok())
    return fail(loyalty::config::SecretFileError(cfg_file, "hq.pii_key_file", pii.status()));
  // One store connection per worker, all opened before anything is served (a database that
  // takes fewer connections stops the start, not a later request).
  std::vector<std::unique_ptr<loyalty::hq::Store>> stores;
  for (int i = 0; i < cfg->workers; ++i) {
    auto store = loyalty::hq::IsPostgresUri(cfg->database)
                     ? loyalty::hq::OpenPgStore(cfg->database, db_password)
                     : loyalty::hq::OpenSqliteStore(cfg->database);
    if (!store.ok()) {
      Log("error", "database_error", {{"reason", store.status().message()}});
      return 1;
    }
    stores.push_back(std::move(*store));
  }
  for (const auto& w : cfg->warnings) Log("warn", "config_warning", {{"reason", w}});

  auto& clock = loyalty::SystemClock::Instance();
  // Worker 0's service; the others are its siblings (shared metrics and limits).
  std::vector<std::unique_ptr<loyalty::hq::HqService>> services;
  services.push_back(
      std::make_unique<loyalty::hq::HqService>(*stores[0], clock, std::move(*pii), opt));
  for (size_t i = 1; i < stores.size(); ++i)
    services.push_back(std::make_unique<loyalty::hq::HqService>(*stores[i], *services[0]));
  for (auto& svc : services)
    if (auto s = svc->Start(); !s.ok()) return fail(s);
  loyalty::hq::HqService& service = *services[0];
  WorkQueue work;

  boost::asio::io_context ioc;
  loyalty::http::ServerOptions so;
  so.host = cfg->listen_host;
  so.port = cfg->listen_port;
  so.body_limit = 1 << 20;
  so.max_connections = static_cast<size_t>(cfg->max_connections);
  so.max_connections_per_address = static_cast<size_t>(cfg->max_connections_per_address);
  if (std::string w = RaiseDescriptorLimit(so.max_connections); !w.empty()) {
    Log("warn", "config_warning", {{"reason", w}});
  }
  const bool tls = tls_options.has_value();
  so.tls = tls_options;
  loyalty::http::Server server(
      ioc, so, [&](loyalty::http::Request&& req, loyalty::http::Responder respond) {
        // The service runs on a worker; the Responder writes the answer on the event loop.
        // Counted in the process's metrics: requests waiting, and how long each waited.
        auto handle = [&work, &service](loyalty::http::Request&& r, loyalty::http::Responder answer,
                                        std::optional<std::string> peer) {
          const auto queued = std::chrono::steady_clock::now();
          service.RequestQueued();
          work.Push([r = std::move(r), answer = std::move(answer), peer = std::move(peer),
                     queued](loyalty::hq::HqService& svc) {
            svc.RequestTaken(std::chrono::duration_cast<std::chrono::microseconds>(
                                 std::chrono::steady_clock::now() - queued)
                                 .count());
            answer(svc.Handle(r, peer));
          });
        };
        if (!tls) {
          // Plain HTTP (loopback only, config checked): the terminal id the route names is
          // trusted, as the warning at start says.
          handle(std::move(req), std::move(respond), std::nullopt);
          return;
        }
        if (auto route = loyalty::hq::ParseTerminalRoute(req.path)) {
          // A terminal route needs a verified certificate naming exactly that terminal. No
          // certificate or an unverified one is refused here, before the service, because the
          // service reads "no peer" as the trusted plain-HTTP case.
          if (auto s = loyalty::http::CheckPeerCn(req, route->terminal_id); !s.ok()) {
            Log("warn", "terminal_refused",
                {{"terminal_id", route->terminal_id},
                 {"peer_cn", req.peer_cn},
                 {"remote", req.remote_address},
                 {"reason", s.message()}});
            // Counted in the process's metrics (thread-safe); no store, no worker.
            respond(service.RefuseTerminal(req, s));
            return;
          }
          std::string peer = req.peer_cn;
          handle(std::move(req), std::move(respond), std::move(peer));
          return;
        }
        handle(std::move(req), std::move(respond), std::nullopt);
      });
  if (auto s = server.Listen(); !s.ok()) {
    Log("error", "listen_failed", {{"reason", WithTlsKey(cfg->path, s.message())}});
    return 1;
  }

  // The daily job runs at start, then hourly and one second after each local midnight: it is
  // idempotent (an expired lot is emptied once), so running more often than daily only keeps
  // expiry close to the lots' dates and a new month's tiers to its first second.
  // The first run is here, before any worker starts; the later ones are work for a worker,
  // which sets the timer again on the event loop when done.
  boost::asio::steady_timer timer(ioc);
  auto daily_jobs = [&clock](loyalty::hq::HqService& svc) {
    auto r = svc.RunDailyJobs(clock.now_s());
    if (r.ok()) {
      if (r->members > 0)
        Log("info", "points_expired", {{"members", r->members}, {"points", r->points}});
    } else {
      Log("error", "daily_job_failed", {{"reason", r.status().message()}});
    }
  };
  std::function<void()> arm_jobs = [&] {
    timer.expires_after(
        std::chrono::seconds(loyalty::hq::HqService::SecondsToNextDailyRun(*tz, clock.now_s())));
    timer.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      work.Push([&](loyalty::hq::HqService& svc) {
        daily_jobs(svc);
        boost::asio::post(ioc, arm_jobs);
      });
    });
  };
  daily_jobs(service);
  arm_jobs();

  boost::asio::signal_set hup(ioc, SIGHUP);
  boost::asio::signal_set signals(ioc, SIGTERM, SIGINT);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    Log("info", "stopping", {{"signal", sig}});
    timer.cancel();
    hup.cancel();
    server.Stop([&] {
      work.Close();
      ioc.stop();
    });
  });
  // SIGHUP re-reads crl_file (the rest of hq.toml is read at start only). A file that does
  // not load is logged and the CRL in use stays.
  std::function<void()> wait_hup = [&] {
    hup.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      if (cfg->crl_file.empty()) {
        Log("info", "crl_not_configured",
            {{"reason", "SIGHUP: hq.crl_file is not set; nothing to reload"}});
      } else if (auto r = server.ReloadCrl(); r.ok()) {
        Log("info", "crl_loaded", {{"crl_file", cfg->crl_file}, {"revoked", *r}});
      } else {
        Log("error", "crl_reload_failed",
            {{"crl_file", cfg->crl_file},
             {"reason", r.status().message() + "; the previous CRL stays in use"}});
      }
      wait_hup();
    });
  };
  wait_hup();
  Log("info", "hq_started",
      {{"listen", cfg->listen_host + ":" + std::to_string(server.port())},
       {"database", cfg->database},
       {"timezone", cfg->timezone},
       {"rules_version", opt.rules ? opt.rules->version : std::string("default")},
       {"tls", tls},
       {"max_connections", cfg->max_connections},
       {"max_connections_per_address", cfg->max_connections_per_address},
       {"workers", cfg->workers},
       {"crl_file", cfg->crl_file}});
  if (!tls) {
    Log("warn", "hq_plain_http",
        {{"reason",
          "no TLS: terminal routes trust the terminal id they name; "
          "for loopback demos and tests only"}});
  }
  std::vector<std::thread> workers;
  for (auto& svc : services) {
    workers.emplace_back([&work, s = svc.get()] {
      WorkQueue::Work w;
      while (work.Pop(w)) {
        w(*s);  // HqService::Handle answers 500 for what it catches; nothing else throws
        w = nullptr;
      }
    });
  }
  int rc = 0;
  try {
    ioc.run();
  } catch (const std::exception& e) {
    Log("critical", "hq_crashed", {{"reason", e.what()}});
    rc = 1;
  }
  work.Close();
  for (auto& t : workers) t.join();
  if (rc == 0) Log("info", "hq_stopped");
  return rc;
}
