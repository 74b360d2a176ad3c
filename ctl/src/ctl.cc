#include "loyalty/ctl/ctl.h"

#include <CLI/CLI.hpp>

#include <chrono>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>
#include <thread>

#include "loyalty/base/json.h"
#include "loyalty/base/time.h"
#include "loyalty/base/timezone.h"
#include "loyalty/config/config.h"
#include "loyalty/ctl/export.h"
#include "loyalty/ctl/format.h"
#include "loyalty/http/client.h"
#include "loyalty/ledger/ledger.h"

namespace loyalty::ctl {
namespace {

// The entries a refund wrote: the ones its stored response names.
std::vector<std::string> RefundEntryIds(const model::Refund& rf) {
  std::vector<std::string> ids;
  auto parsed = ParseJsonObject(rf.response_json);
  if (!parsed.ok()) return ids;
  auto it = parsed->find("entries");
  if (it == parsed->end() || !it->is_array()) return ids;
  for (const auto& id : *it)
    if (id.is_string()) ids.push_back(id.get<std::string>());
  return ids;
}

using nlohmann::json;

constexpr char kDefaultConfig[] = "/etc/loyaltyd/agent.toml";

// What the command line asked for, filled in by CLI11.
struct Args {
  std::string config = kDefaultConfig;
  bool json = false;
  bool wait = false;
  std::string member_id;
  std::string scan_text;
  std::string since;
  std::string format;
  std::string output;
};

// A failure on its way to the exit status: the one line for stderr and the code.
struct Failure {
  int code;
  std::string what;
};

// Dumps never throw on invalid UTF-8 (a damaged ledger may hold some): it is replaced.
template <typename J>
std::string Dump(const J& j, int indent = 2) {
  return j.dump(indent, ' ', false, J::error_handler_t::replace);
}

class Context {
 public:
  Context(const Args& args, std::ostream& out, std::ostream& err, const RunOptions& opts)
      : args_(args), out_(out), err_(err), opts_(opts) {}

  std::optional<Failure> LoadConfig() {
    auto c = config::LoadAgentConfig(args_.config);
    if (!c.ok()) return Failure{kExitConfig, c.status().message()};
    cfg_ = std::move(*c);
    return std::nullopt;
  }
  const config::AgentConfig& cfg() const { return cfg_; }
  const Args& args() const { return args_; }
  std::ostream& out() { return out_; }
  const RunOptions& opts() const { return opts_; }

  // --- the POS API

  struct Reply {
    int status = 0;
    json body;
    std::string raw;
  };

  std::optional<Failure> ReadToken() {
    auto t = config::ReadTokenFile(cfg_.token_file, SecretAccess::kOwnerAndGroupRead);
    if (!t.ok()) {  // said as loyaltyd says it (docs/configuration.md)
      return Failure{kExitConfig,
                     config::SecretFileError(cfg_.path, "api.token_file", t.status()).message()};
    }
    token_ = std::move(*t);
    return std::nullopt;
  }

  // One request. A transport failure or a non-2xx answer is a Failure; with --json the
  // daemon's error body is also printed on stdout, for scripts.
  Result<Reply> Call(const std::string& method, const std::string& target, const std::string& body,
                     std::optional<Failure>* failure) {
    if (!client_) client_ = std::make_unique<http::Client>(ConnectHost(), cfg_.listen_port);
    http::HeaderList headers;
    if (!token_.empty()) headers.emplace_back("Authorization", "Bearer " + token_);
    // The daemon's own deadline plus a margin, so its 503 arrives before ours expires.
    auto r = client_->Request(method, target, body, headers, cfg_.request_timeout_ms + 5000);
    if (!r.ok()) {
      *failure =
          Failure{kExitUnreachable, "cannot reach loyaltyd at " + cfg_.listen + " (" + method +
                                        " " + target + "): " + r.status().message()};
      return r.status();
    }
    Reply rep;
    rep.status = r->status;
    rep.raw = r->body;
    // The daemon's answer goes through the same limited parser as everything read from
    // outside: a reply that does not parse (or nests too deep) is discarded, never walked.
    auto parsed = ParseJson(r->body);
    rep.body = parsed.ok() ? std::move(*parsed) : json(json::value_t::discarded);
    if (rep.status < 200 || rep.status > 299) {
      if (args_.json && rep.body.is_object()) out_ << Dump(rep.body) << "\n";
      *failure =
          Failure{rep.status == 503 ? kExitUnavailable : kExitApiError,
                  method + " " + target + ": " + FormatApiError(rep.status, rep.body, rep.raw)};
      return Status::Error(ErrorCode::kApiError, failure->value().what);
    }
    if (rep.body.is_discarded()) {
      *failure =
          Failure{kExitApiError,
                  method + " " + target + ": the answer is not JSON: " + parsed.status().message()};
      return Status::Error(ErrorCode::kBadResponse, failure->value().what);
    }
    return rep;
  }

  // --- the ledger file

  std::optional<Failure> OpenLedger() {
    auto l = ledger::Ledger::Open(cfg_.database, ledger::Ledger::Mode::kReader, cfg_.terminal_id);
    if (!l.ok())
      return Failure{kExitDatabase,
                     "cannot open the ledger " + cfg_.database + ": " + l.status().message()};
    ledger_ = std::move(*l);
    return std::nullopt;
  }
  ledger::Ledger& ledger() { return *ledger_; }

  Result<int64_t> SinceMs() {
    auto tz = TimeZone::Load(cfg_.timezone);
    if (!tz.ok())
      return Status::Error(ErrorCode::kConfigInvalid,
                           cfg_.path + ": agent.timezone: " + tz.status().message());
    return ParseSince(args_.since, *tz);
  }

 private:
  // A daemon listening on a wildcard address is reached over loopback.
  std::string ConnectHost() const {
    if (cfg_.listen_host == "0.0.0.0" || cfg_.listen_host.empty()) return "127.0.0.1";
    if (cfg_.listen_host == "::") return "::1";
    return cfg_.listen_host;
  }

  const Args& args_;
  std::ostream& out_;
  std::ostream& err_;
  const RunOptions& opts_;
  config::AgentConfig cfg_;
  std::string token_;
  std::unique_ptr<http::Client> client_;
  std::unique_ptr<ledger::Ledger> ledger_;
};

// Every commit of the store since `since_ms`, oldest first, read in pages so a year of
// checkouts never sits in memory at once. Pages continue after the last (time, id) seen;
// the page grows when more checkouts than a page share one millisecond. f returns a
// Status; the first error (f's or a failed read) ends the walk and is returned.
template <typename F>
Status ForEachCheckoutSince(ledger::Ledger& l, int64_t since_ms, F&& f) {
  int64_t from = since_ms;
  std::string last_id;
  bool have_last = false;
  int limit = 500;
  for (;;) {
    auto read = l.CheckoutsSince(from, limit);
    if (!read.ok()) return read.status();
    const auto& rows = *read;
    size_t taken = 0;
    for (auto& c : rows) {
      if (have_last &&
          (c.committed_at_ms < from || (c.committed_at_ms == from && c.checkout_id <= last_id)))
        continue;
      from = c.committed_at_ms;
      last_id = c.checkout_id;
      have_last = true;
      ++taken;
      if (Status s = f(c); !s.ok()) return s;
    }
    if (static_cast<int>(rows.size()) < limit) return Status::Ok();
    if (taken == 0) {
      if (limit > std::numeric_limits<int>::max() / 2) return Status::Ok();
      limit *= 2;
    }
  }
}

// A ledger read that failed: the command stops and says so (a partial listing or export
// would pass for a complete one).
Failure ReadFailure(const Status& s) {
  return Failure{kExitDatabase, "reading the ledger: " + s.ToString()};
}

// --- commands

std::optional<Failure> CmdStatus(Context& ctx) {
  // /v1/health needs no token: status works for whoever may read the config.
  std::optional<Failure> f;
  auto r = ctx.Call("GET", "/v1/health", "", &f);
  if (!r.ok()) return f;
  if (ctx.args().json)
    ctx.out() << Dump(r->body) << "\n";
  else
    ctx.out() << FormatHealth(r->body);
  // A degraded daemon answered: the command worked, the state is in the output.
  return std::nullopt;
}

std::optional<Failure> CmdMember(Context& ctx) {
  if (auto f = ctx.ReadToken()) return f;
  std::optional<Failure> f;
  auto r = ctx.Call("GET", "/v1/members/" + EncodePathSegment(ctx.args().member_id), "", &f);
  if (!r.ok()) return f;
  ctx.out() << (ctx.args().json ? Dump(r->body) + "\n" : FormatMember(r->body));
  return std::nullopt;
}

std::optional<Failure> CmdScan(Context& ctx) {
  if (auto f = ctx.ReadToken()) return f;
  std::optional<Failure> f;
  auto r = ctx.Call("POST", "/v1/identify", Dump(json{{"code", ctx.args().scan_text}}, -1), &f);
  if (!r.ok()) return f;
  ctx.out() << (ctx.args().json ? Dump(r->body) + "\n" : FormatIdentify(r->body));
  return std::nullopt;
}

std::optional<Failure> CmdSync(Context& ctx) {
  if (auto f = ctx.ReadToken()) return f;
  std::optional<Failure> f;
  auto started = ctx.Call("POST", "/v1/sync", "{}", &f);
  if (!started.ok()) return f;
  const json& id = started->body.is_object() ? started->body["run_id"] : json();
  if (!id.is_string() && !id.is_number())
    return Failure{kExitApiError, "POST /v1/sync: the answer names no run_id"};
  std::string run_id = id.is_string() ? id.get<std::string>() : id.dump();
  bool json_out = ctx.args().json;
  if (!ctx.args().wait) {
    ctx.out() << (json_out ? Dump(json{{"run_id", run_id}}) : "sync run " + run_id + " started")
              << "\n";
    return std::nullopt;
  }

  bool tty = ctx.opts().out_is_tty && !json_out;
  if (!tty && !json_out) ctx.out() << "sync run " + run_id + " started" << std::endl;
  // The daemon ends every run within sync.run_timeout_s; the margin covers a run that
  // was already going when we joined it.
  auto t0 = std::chrono::steady_clock::now();
  auto deadline = t0 + std::chrono::seconds(2 * ctx.cfg().run_timeout_s + 30);
  std::string last_state;
  for (;;) {
    auto r = ctx.Call("GET", "/v1/sync", "", &f);
    if (!r.ok()) {
      if (tty) ctx.out() << "\n";
      return f;
    }
    const json& runs =
        r->body.is_object() && r->body.contains("last_runs") ? r->body["last_runs"] : json();
    if (runs.is_array()) {
      for (const auto& run : runs) {
        if (!run.is_object() || !run.contains("run_id")) continue;
        const json& rid = run["run_id"];
        if ((rid.is_string() ? rid.get<std::string>() : rid.dump()) != run_id) continue;
        const json& result = run.contains("result") ? run["result"] : json();
        // GET /v1/sync lists finished runs only (an older daemon listed a run in progress
        // with result "running").
        if (!result.is_string() || result == "running") break;
        if (tty) ctx.out() << "\r\033[K";
        ctx.out() << (json_out ? Dump(run) : FormatSyncRun(run)) << std::endl;
        if (result == "ok") return std::nullopt;
        std::string why = run.contains("error") && run["error"].is_string()
                              ? run["error"].get<std::string>()
                              : "";
        return Failure{kExitSyncFailed,
                       "sync run " + run_id + " failed" + (why.empty() ? "" : ": " + why)};
      }
    }
    auto elapsed =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - t0)
            .count();
    std::string state =
        r->body.is_object() && r->body.contains("state") && r->body["state"].is_string()
            ? r->body["state"].get<std::string>()
            : "running";
    if (tty) {
      ctx.out() << "\r\033[Ksync run " << run_id << ": " << state << ", " << elapsed << " s"
                << std::flush;
    } else if (!json_out && state != last_state && !last_state.empty()) {
      ctx.out() << "sync run " << run_id << ": " << state << std::endl;
    }
    last_state = state;
    if (std::chrono::steady_clock::now() > deadline) {
      if (tty) ctx.out() << "\n";
      return Failure{kExitSyncFailed, "sync run " + run_id + " did not finish within " +
                                          std::to_string(elapsed) + " s"};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

std::optional<Failure> CmdCheckouts(Context& ctx) {
  auto since = ctx.SinceMs();
  if (!since.ok())
    return Failure{since.status().code() == ErrorCode::kConfigInvalid ? kExitConfig : kExitUsage,
                   since.status().message()};
  if (auto f = ctx.OpenLedger()) return f;
  auto& out = ctx.out();
  bool json_out = ctx.args().json;
  int64_t n = 0;
  if (json_out) {
    out << "{\"since\": " << Dump(json(FormatTimeMs(*since))) << ", \"checkouts\": [";
  } else {
    out << "committed_at              checkout_id                       member_id        total_due "
           " earned "
           "redeemed  tender  refunds\n";
  }
  Status walked =
      ForEachCheckoutSince(ctx.ledger(), *since, [&](const model::Checkout& c) -> Status {
        auto read = ctx.ledger().RefundsForCheckout(c.checkout_id);
        if (!read.ok()) return read.status();
        const auto& refunds = *read;
        if (json_out) {
          nlohmann::ordered_json j{
              {"checkout_id", c.checkout_id},
              {"committed_at", FormatTimeMs(c.committed_at_ms)},
              {"member_id",
               c.member_id ? nlohmann::ordered_json(std::to_string(*c.member_id)) : nullptr},
              {"subtotal_cents", c.subtotal_cents},
              {"total_due_cents", c.total_due_cents},
              {"points_earned", c.points_earned},
              {"redeemed_points", c.redeemed_points},
              {"tender", c.tender},
              {"coupon_id", c.coupon_id.empty() ? nullptr : nlohmann::ordered_json(c.coupon_id)},
              {"rules_version", c.rules_version},
              {"refunds", nlohmann::ordered_json::array()}};
          for (const auto& r : refunds)
            j["refunds"].push_back({{"refund_id", r.refund_id},
                                    {"at", FormatTimeMs(r.at_ms)},
                                    {"refund_cents", r.refund_cents},
                                    {"points_clawed_back", r.points_clawed_back},
                                    {"points_restored", r.points_restored}});
          out << (n ? ",\n" : "\n") << Dump(j, -1);
        } else {
          char line[512];
          std::snprintf(line, sizeof line, "%-25s %-33s %-15s %10s %7lld %8lld  %-7s %zu\n",
                        FormatTimeMs(c.committed_at_ms).c_str(), c.checkout_id.c_str(),
                        c.member_id ? std::to_string(*c.member_id).c_str() : "-",
                        FormatCents(c.total_due_cents).c_str(),
                        static_cast<long long>(c.points_earned),
                        static_cast<long long>(c.redeemed_points),
                        c.tender.empty() ? "-" : c.tender.c_str(), refunds.size());
          out << line;
        }
        ++n;
        return Status::Ok();
      });
  if (!walked.ok()) return ReadFailure(walked);
  if (json_out)
    out << "\n]}\n";
  else
    out << n << (n == 1 ? " checkout" : " checkouts") << " since " << FormatTimeMs(*since) << "\n";
  return std::nullopt;
}

std::optional<Failure> CmdExport(Context& ctx) {
  std::string format = ctx.args().format;
  if (ctx.args().json) {
    if (format == "csv")
      return Failure{kExitUsage, "--json and --format csv contradict each other"};
    format = "json";
  }
  if (format.empty()) format = "csv";
  auto since = ctx.SinceMs();
  if (!since.ok())
    return Failure{since.status().code() == ErrorCode::kConfigInvalid ? kExitConfig : kExitUsage,
                   since.status().message()};
  if (auto f = ctx.OpenLedger()) return f;

  std::ofstream file;
  std::ostream* out = &ctx.out();
  if (!ctx.args().output.empty()) {
    file.open(ctx.args().output, std::ios::binary | std::ios::trunc);
    if (!file) return Failure{kExitInternal, "cannot write " + ctx.args().output};
    out = &file;
  }
  bool csv = format == "csv";
  int64_t n = 0;
  if (csv)
    *out << ExportCsvHeader();
  else
    *out << "{\"since\": " << Dump(json(FormatTimeMs(*since))) << ", \"records\": [";
  auto emit = [&](const std::vector<ExportRecord>& records) {
    for (const auto& r : records) {
      if (csv)
        *out << ExportCsvRow(r);
      else
        *out << (n ? ",\n" : "\n") << Dump(ExportJson(r), -1);
      ++n;
    }
  };
  Status walked =
      ForEachCheckoutSince(ctx.ledger(), *since, [&](const model::Checkout& head) -> Status {
        // CheckoutsSince leaves out the lines; the export needs them.
        auto full = ctx.ledger().GetCheckout(head.checkout_id, /*with_lines=*/true);
        if (!full.ok()) return full.status();
        const model::Checkout& c = *full ? **full : head;
        auto entries = ctx.ledger().EntriesForCheckout(c.checkout_id);
        if (!entries.ok()) return entries.status();
        auto refunds = ctx.ledger().RefundsForCheckout(c.checkout_id);
        if (!refunds.ok()) return refunds.status();
        emit(RecordsForCheckout(c, *entries, *refunds));
        return Status::Ok();
      });
  if (!walked.ok()) return ReadFailure(walked);
  // Then the refunds made since of checkouts committed before (today's returns of earlier
  // sales): each with its refunded lines and entries; the checkout is in an earlier export.
  auto refunds = ctx.ledger().RefundsSince(*since);
  if (!refunds.ok()) return ReadFailure(refunds.status());
  for (const auto& rf : *refunds) {
    if (!rf.sold_at.empty()) {
      // A return of another terminal's sale: its checkout is in that terminal's export.
      auto entries = ctx.ledger().EntriesByIds(RefundEntryIds(rf));
      if (!entries.ok()) return ReadFailure(entries.status());
      model::Checkout sale;
      sale.checkout_id = rf.checkout_id;
      if (!entries->empty()) sale.member_id = entries->front().member_id;
      emit(RecordsForRefund(sale, rf, *entries));
      continue;
    }
    auto c = ctx.ledger().GetCheckout(rf.checkout_id, /*with_lines=*/true);
    if (!c.ok()) return ReadFailure(c.status());
    if (!*c || (*c)->committed_at_ms >= *since) continue;  // exported above, with its checkout
    auto all = ctx.ledger().EntriesForCheckout(rf.checkout_id);
    if (!all.ok()) return ReadFailure(all.status());
    std::vector<ledger::EntryRow> entries;
    for (auto& e : *all)
      if (e.refund_id == rf.refund_id) entries.push_back(std::move(e));
    emit(RecordsForRefund(**c, rf, entries));
  }
  // Last, the entries since of no checkout and no refund (corrections), so that the day's
  // exports hold every entry of the ledger too.
  auto loose = ctx.ledger().EntriesWithoutRecordSince(*since);
  if (!loose.ok()) return ReadFailure(loose.status());
  for (const auto& e : *loose) emit({EntryRecord(e)});
  if (!csv) *out << "\n]}\n";
  out->flush();
  if (!*out)
    return Failure{
        kExitInternal,
        "cannot write " + (ctx.args().output.empty() ? "the output" : ctx.args().output)};
  return std::nullopt;
}

std::optional<Failure> CmdVerify(Context& ctx) {
  if (auto f = ctx.OpenLedger()) return f;
  ledger::VerifyReport rep = ctx.ledger().Verify();
  const std::string& db = ctx.cfg().database;
  if (ctx.args().json) {
    ctx.out() << Dump(json{{"database", db},
                           {"ok", rep.ok()},
                           {"entries", rep.entries},
                           {"problems", rep.problems}})
              << "\n";
  } else if (rep.ok()) {
    ctx.out() << "ledger " << db << ": " << rep.entries
              << " entries; hash chain and balances verified\n";
  } else {
    for (const auto& p : rep.problems) ctx.out() << "problem: " << p << "\n";
  }
  if (!rep.ok())
    return Failure{kExitVerifyFailed, "verify found " + std::to_string(rep.problems.size()) +
                                          (rep.problems.size() == 1 ? " problem" : " problems") +
                                          " in " + db};
  return std::nullopt;
}

}  // namespace

int Run(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err,
        const RunOptions& opts) {
  Args a;
  CLI::App app{"loyaltyctl: store IT's command line for loyaltyd (see docs/loyaltyctl.md)",
               "loyaltyctl"};
  app.option_defaults()->always_capture_default();
  app.add_option("--config", a.config,
                 "the agent's config file (address, token, database, time zone)");
  app.add_flag("--json", a.json, "machine-readable JSON on stdout");
  app.require_subcommand(1);
  app.fallthrough();

  auto* status =
      app.add_subcommand("status", "the daemon's health: terminal, ledger, scanners, sync, clock");
  auto* sync = app.add_subcommand("sync", "start a sync run now (joins a running one)");
  sync->add_flag("--wait", a.wait, "wait for the run to finish; exit 9 when it failed");
  auto* member =
      app.add_subcommand("member", "a member as the terminal knows it, with recent entries");
  member->add_option("member_id", a.member_id, "the member id (decimal)")->required();
  auto* scan = app.add_subcommand("scan", "identify text as if it had been scanned");
  scan->add_option("text", a.scan_text, "the scanned or typed text (a member code, card number, …)")
      ->required();
  auto* checkouts =
      app.add_subcommand("checkouts", "checkouts committed since a time (from the ledger file)");
  checkouts->add_option("--since", a.since, "RFC 3339 time, or YYYY-MM-DD in the store's time zone")
      ->required();
  auto* exp = app.add_subcommand("export",
                                 "checkouts, lines, refunds and entries since a time, CSV or JSON");
  exp->add_option("--since", a.since, "RFC 3339 time, or YYYY-MM-DD in the store's time zone")
      ->required();
  exp->add_option("--format", a.format, "csv (default) or json")
      ->check(CLI::IsMember({"csv", "json"}));
  exp->add_option("-o,--output", a.output, "write to this file instead of stdout");
  auto* verify =
      app.add_subcommand("verify", "check the ledger file: hash chain, balances against lots");

  std::vector<std::string> reversed(argv.rbegin(), argv.rend());  // CLI11 consumes from the back
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) {  // --help
      app.exit(e, out, err);
      return kExitOk;
    }
    std::string what = e.what();
    // A word that is no command reads "A subcommand is required" from CLI11: name it.
    if (app.get_subcommands().empty() && !app.remaining().empty() &&
        app.remaining().front().rfind("-", 0) != 0)
      what = "unknown command '" + app.remaining().front() + "'";
    for (char& c : what)
      if (c == '\n') c = ' ';
    err << "loyaltyctl: " << what << " (loyaltyctl --help lists the commands)\n";
    return kExitUsage;
  }

  try {
    Context ctx(a, out, err, opts);
    std::optional<Failure> f = ctx.LoadConfig();
    if (!f) {
      if (status->parsed())
        f = CmdStatus(ctx);
      else if (sync->parsed())
        f = CmdSync(ctx);
      else if (member->parsed())
        f = CmdMember(ctx);
      else if (scan->parsed())
        f = CmdScan(ctx);
      else if (checkouts->parsed())
        f = CmdCheckouts(ctx);
      else if (exp->parsed())
        f = CmdExport(ctx);
      else if (verify->parsed())
        f = CmdVerify(ctx);
    }
    out.flush();
    if (f) {
      err << "loyaltyctl: " << f->what << "\n";
      return f->code;
    }
    if (!out) {
      err << "loyaltyctl: cannot write the output\n";
      return kExitInternal;
    }
    return kExitOk;
  } catch (const std::exception& e) {
    err << "loyaltyctl: internal error: " << e.what() << "\n";
    return kExitInternal;
  }
}

}  // namespace loyalty::ctl
