#include "verify.h"

#include <nlohmann/json.hpp>

#include "loyalty/http/client.h"
#include "loyalty/recon/protocol.h"
#include "loyalty/sync/messages.h"

namespace loyalty::hqload {
namespace {

using nlohmann::json;

std::string N(int64_t v) { return std::to_string(v); }

}  // namespace

VerifyResult VerifyChain(Chain& chain, const HqProcess& hq, const HqEndpoint& endpoint,
                         const std::function<Result<int64_t>(const std::string&)>& query_int,
                         size_t member_sample) {
  VerifyResult out;
  auto check = [&](bool ok, const std::string& what) {
    (ok ? out.passed : out.failed).push_back(what);
  };

  int64_t made = 0, pending = 0, unexpected = 0;
  for (const auto& t : chain.terminals()) {
    made += t.entries;
    pending += static_cast<int64_t>(t.pending.size());
    unexpected += t.unexpected;
  }
  check(pending == 0, "terminals with nothing pending: " + N(pending) + " batches pending");
  check(unexpected == 0,
        "every entry answered created/exists: " + N(unexpected) + " other answers");

  // The admin API, terminal by terminal.
  int64_t bad_terminals = 0;
  std::string first_bad;
  for (const auto& t : chain.terminals()) {
    if (t.entries == 0) continue;
    auto r = hq.Admin("GET", "/v1/terminals/" + t.id);
    bool ok = r.ok() && r->first == 200;
    if (ok) {
      auto j = json::parse(r->second, nullptr, false);
      ok = j.is_object() && j.value("entries", int64_t{-1}) == t.entries &&
           j.value("last_seq", int64_t{-1}) == t.seq && j.value("chain_ok", false) &&
           j.contains("conflicts") && j["conflicts"].empty();
      if (!ok && first_bad.empty())
        first_bad = t.id + " (made " + N(t.entries) + ", seq " + N(t.seq) + "): " + r->second;
    } else if (first_bad.empty()) {
      first_bad = t.id + ": " + (r.ok() ? N(r->first) + " " + r->second : r.status().ToString());
    }
    if (!ok) ++bad_terminals;
  }
  check(bad_terminals == 0,
        "admin API, every terminal: entries, last seq, chain_ok, no conflict: " + N(bad_terminals) +
            " differ" + (first_bad.empty() ? "" : "; first: " + first_bad.substr(0, 400)));

  // The admin API, member by member (a spread sample).
  int64_t bad_members = 0, asked = 0;
  const size_t m = chain.view().members();
  const size_t step = member_sample == 0 ? m + 1 : std::max<size_t>(1, m / member_sample);
  for (size_t i = 0; i < m; i += step) {
    const uint64_t id = chain.view().member_id(i);
    auto r = hq.Admin("GET", "/v1/members/" + std::to_string(id));
    ++asked;
    bool ok = r.ok() && r->first == 200;
    if (ok) {
      auto j = json::parse(r->second, nullptr, false);
      ok = j.is_object() && j.value("balance", int64_t{-1}) == chain.view().Balance(id);
    }
    if (!ok) ++bad_members;
  }
  check(bad_members == 0, "admin API, balances of " + N(asked) +
                              " members = the view's: " + N(bad_members) + " differ");

  // The database.
  auto q = [&](const std::string& sql) -> int64_t {
    auto r = query_int(sql);
    return r.ok() ? *r : -1;
  };
  const std::string mine = "terminal_id LIKE 'T%'";
  int64_t rows = q("SELECT count(*) FROM entries WHERE " + mine);
  int64_t distinct = q("SELECT count(DISTINCT entry_id) FROM entries WHERE " + mine);
  check(rows == made && distinct == made,
        "database: every uploaded entry stored exactly once: " + N(rows) + " rows, " + N(distinct) +
            " distinct ids, " + N(made) + " made");
  int64_t refused = q("SELECT count(*) FROM entries WHERE applied = 0");
  check(refused == 0, "database: no entry refused: " + N(refused));
  int64_t checkouts = q("SELECT count(*) FROM checkouts WHERE " + mine);
  check(checkouts == made,
        "database: one checkout row per checkout: " + N(checkouts) + " rows, " + N(made) + " made");
  int64_t off =
      q("SELECT count(*) FROM members m LEFT JOIN (SELECT member_id, sum(points) AS s FROM entries "
        "WHERE applied = 1 GROUP BY member_id) e ON e.member_id = m.member_id WHERE m.balance <> "
        "coalesce(e.s, 0)");
  check(off == 0, "database: every balance = the sum of its member's applied entries: " + N(off) +
                      " members differ");
  int64_t lots_off =
      q("SELECT count(*) FROM members m LEFT JOIN (SELECT member_id, sum(remaining) AS s FROM lots "
        "GROUP BY member_id) l ON l.member_id = m.member_id WHERE m.balance <> coalesce(l.s, 0)");
  check(lots_off == 0,
        "database: every balance = the sum of its lots: " + N(lots_off) + " members differ");
  int64_t total = q("SELECT coalesce(sum(balance), 0) FROM members");
  check(total == chain.view().Total(), "database: the chain's points = the view's: " + N(total) +
                                           " at HQ, " + N(chain.view().Total()) + " in the view");
  int64_t conflicts = q("SELECT count(*) FROM conflicts");
  check(conflicts == 0, "database: no conflict recorded: " + N(conflicts));

  // Balances at rest, as a terminal's run ends: its download (every page from its cursor),
  // then one reconciliation exchange; and what it was sent is what the entries say.
  {
    Terminal& t = chain.terminals().front();
    http::ClientTlsOptions o;
    o.ca_file = endpoint.ca_file;
    o.cert_file = t.cert_file;
    o.key_file = t.key_file;
    http::Client c(endpoint.host, endpoint.port, o);
    std::string why;
    bool downloaded = false;
    for (int page = 0; page < 10000 && why.empty() && !downloaded; ++page) {
      auto r = c.Request(
          "GET",
          "/v1/sync/" + t.id + "/changes?cursor=" + http::PercentEncode(t.cursor) + "&limit=1000",
          "", {}, 60000);
      if (!r.ok() || r->status != 200) {
        why = "changes " + (r.ok() ? N(r->status) : r.status().ToString());
        break;
      }
      auto ch = sync::ParseMessage<sync::ChangesResponse>(r->body);
      if (!ch.ok()) {
        why = "changes " + ch.status().ToString();
        break;
      }
      auto more = t.TakePage(*ch);
      if (!more.ok()) {
        why = more.status().ToString();
        break;
      }
      downloaded = !*more;
    }
    int64_t stale = 0;
    for (const auto& [id, balance] : t.held) stale += balance != chain.view().Balance(id);
    auto snapshot = t.BalanceSet();
    recon::Initiator ini(*snapshot);
    auto msg = ini.Start();
    std::vector<std::string> have, need, mismatched;
    bool done = false;
    for (int i = 0; why.empty() && msg.ok() && i < 64 && !done; ++i) {
      auto r = c.Request("POST", "/v1/sync/" + t.id + "/recon/balances", *msg,
                         {{"Content-Type", "application/octet-stream"}}, 60000);
      if (!r.ok() || r->status != 200) {
        why = r.ok() ? N(r->status) : r.status().ToString();
        break;
      }
      auto next = ini.Next(r->body, &have, &need, &mismatched);
      if (!next.ok()) {
        why = next.status().ToString();
        break;
      }
      if (!*next)
        done = true;
      else
        msg = std::move(**next);
    }
    size_t d = have.size() + need.size() + mismatched.size();
    check(done && d == 0 && stale == 0,
          "reconciliation of balances at rest in sync, after the download: " +
              (done ? N(static_cast<int64_t>(d)) + " differences, " + N(stale) + " of " +
                          N(static_cast<int64_t>(t.held.size())) +
                          " held balances not the entries' sum"
                    : "failed " + why));
  }
  return out;
}

}  // namespace loyalty::hqload
