#include "terminal_run.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "loyalty/base/encoding.h"
#include "loyalty/http/client.h"
#include "loyalty/recon/protocol.h"

namespace loyalty::hqload {
namespace {

using Clk = std::chrono::steady_clock;

int64_t Us(Clk::time_point a, Clk::time_point b) {
  return std::chrono::duration_cast<std::chrono::microseconds>(b - a).count();
}

class Session {
 public:
  Session(const RunSetup& setup, const Terminal& t, RunStats& st)
      : setup_(setup), terminal_(t), base_("/v1/sync/" + t.id), st_(st) {
    Connect(setup.first);
  }

  // One request with the sync client's retries; any other answer but 2xx is an error
  // naming the step. `timeout_ms` > 0: the first attempt's own limit.
  Result<http::Response> Call(const char* step, std::string_view method, const std::string& route,
                              std::string_view body, const char* content_type,
                              int first_timeout_ms = 0) {
    Status last;
    for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
      if (attempt > 0) {
        ++st_.retries;
        const int64_t cap = std::min<int64_t>(kBackoffMaxMs, kBackoffBaseMs << (attempt - 1));
        std::this_thread::sleep_for(std::chrono::milliseconds(
            1 + static_cast<int64_t>(rng_() % static_cast<uint64_t>(cap))));
        Connect(NextLive());
      }
      if (!client_->status().ok()) return client_->status();
      http::HeaderList headers;
      if (method == "POST") headers.emplace_back("Content-Type", content_type);
      st_.bytes_sent += static_cast<int64_t>(body.size());
      const int timeout =
          attempt == 0 && first_timeout_ms > 0 ? first_timeout_ms : setup_.request_timeout_ms;
      auto r = client_->Request(method, base_ + route, body, std::move(headers), timeout);
      if (!r.ok()) {
        last = Status::Error(r.status().code(), std::string(step) + ": " + r.status().message());
        const ErrorCode c = r.status().code();
        if (attempt == 0 && first_timeout_ms > 0 && c == ErrorCode::kTimeout) ++st_.lost_answers;
        if (c == ErrorCode::kUnavailable || c == ErrorCode::kTimeout ||
            c == ErrorCode::kBadResponse)
          continue;
        return last;
      }
      ++st_.round_trips;
      st_.bytes_received += static_cast<int64_t>(r->body.size());
      if (r->status >= 200 && r->status < 300) return r;
      last = Status::Error(ErrorCode::kHqError, std::string(step) + ": HQ answered " +
                                                    std::to_string(r->status) + " " +
                                                    r->body.substr(0, 300));
      if (r->status < 500 && r->status != 408 && r->status != 429) return last;
    }
    return last;
  }

  template <typename T>
  Result<T> CallJson(const char* step, std::string_view method, const std::string& route,
                     std::string_view body, int first_timeout_ms = 0) {
    auto r = Call(step, method, route, body, "application/json", first_timeout_ms);
    if (!r.ok()) return r.status();
    auto m = sync::ParseMessage<T>(r->body);
    if (!m.ok())
      return Status::Error(ErrorCode::kBadResponse,
                           std::string(step) + ": " + m.status().message());
    return m;
  }

  // One reconciliation exchange; the differing ids (16 raw bytes) are appended to *diff.
  Status Reconcile(const char* step, const std::string& scope, const recon::FingerprintStore& set,
                   int* round_trips, std::vector<std::string>* diff) {
    recon::Initiator ini(set);
    auto msg = ini.Start();
    if (!msg.ok()) return msg.status();
    std::string out = std::move(*msg);
    std::vector<std::string> have, need, mismatched;
    for (int i = 0; i < 64; ++i) {
      auto reply = Call(step, "POST", "/recon/" + scope, out, "application/octet-stream");
      if (!reply.ok()) return reply.status();
      ++*round_trips;
      auto next = ini.Next(reply->body, &have, &need, &mismatched);
      if (!next.ok())
        return Status::Error(ErrorCode::kBadResponse,
                             std::string(step) + ": " + next.status().message());
      if (!*next) {
        for (auto* v : {&have, &need, &mismatched}) diff->insert(diff->end(), v->begin(), v->end());
        return Status::Ok();
      }
      out = std::move(**next);
    }
    return Status::Error(ErrorCode::kBadResponse, std::string(step) + ": the exchange did not end");
  }

 private:
  void Connect(size_t i) {
    const HqEndpoint& hq = setup_.endpoints[i];
    http::ClientTlsOptions o;
    o.ca_file = hq.ca_file;
    o.cert_file = terminal_.cert_file;
    o.key_file = terminal_.key_file;
    client_ = std::make_unique<http::Client>(hq.host, hq.port, o);
    client_->set_response_limit(8 << 20);  // PROTOCOL.md: responses ≤ 8 MiB
    current_ = i;
  }

  size_t NextLive() const {
    const size_t n = setup_.endpoints.size();
    for (size_t k = 1; k <= n; ++k) {
      size_t i = (current_ + k) % n;
      if (!setup_.down || !setup_.down[i].load()) return i;
    }
    return current_;
  }

  static constexpr int kMaxAttempts = 6;
  static constexpr int64_t kBackoffBaseMs = 200, kBackoffMaxMs = 5000;

  const RunSetup& setup_;
  const Terminal& terminal_;
  std::string base_;
  RunStats& st_;
  std::unique_ptr<http::Client> client_;
  size_t current_ = 0;
  std::mt19937_64 rng_{std::random_device{}()};
};

Status Steps(Chain& chain, Terminal& t, Session& s, const RunSetup& setup, RunStats& st) {
  std::atomic<int>* step = setup.step;
  const std::function<void(int)>* after = setup.after_step;
  auto mark = [step, after](int i) {
    if (after && i > 1) (*after)(i - 1);
    if (step) step->store(i);
  };
  mark(1);
  auto t0 = Clk::now();
  sync::HelloRequest hello;
  hello.store_id = t.store_id;
  hello.agent_version = "hq_load";
  hello.head = {t.seq, t.seq > 0 ? HexEncode(t.head_hash) : ""};
  hello.entries = t.entries;
  auto hr =
      s.CallJson<sync::HelloResponse>("hello", "POST", "/hello", sync::SerializeMessage(hello));
  if (!hr.ok()) return hr.status();
  auto t1 = Clk::now();
  st.step_us[0] = Us(t0, t1);
  mark(2);

  while (!t.pending.empty()) {
    const PendingBatch& b = t.pending.front();
    auto up = s.CallJson<sync::UploadResponse>("upload", "POST", "/entries", b.body,
                                               setup.lose_upload_answer_ms);
    if (!up.ok()) return up.status();
    for (const auto& r : up->results) {
      if (r.status == "created")
        ++st.created;
      else if (r.status == "exists")
        ++st.exists;
      else
        ++st.other;
    }
    st.uploaded_entries += static_cast<int64_t>(b.request.entries.size());
    if (!chain.Acknowledge(t, *up))
      return Status::Error(ErrorCode::kBadResponse, "upload: the answer does not fit the batch");
  }
  auto t2 = Clk::now();
  st.step_us[1] = Us(t1, t2);
  if (setup.kind == RunKind::kUploadOnly) {
    if (after) (*after)(2);
    return Status::Ok();
  }
  mark(3);

  // The download: every page from the cursor, as a terminal's run takes them before it
  // reconciles (sync/client/src/run.cc) — an hour's changes of a store come in one page, or
  // two on PostgreSQL past 511 members (docs/hq.md, "Writers in parallel").
  for (int pages = 0;; ++pages) {
    if (pages == 100) return Status::Error(ErrorCode::kBadResponse, "changes: too many pages");
    auto page =
        s.CallJson<sync::ChangesResponse>("changes", "GET",
                                          "/changes?cursor=" + http::PercentEncode(t.cursor) +
                                              "&limit=" + std::to_string(setup.changes_limit),
                                          "");
    if (!page.ok()) return page.status();
    st.changes_members += static_cast<int64_t>(page->members.size());
    ++st.changes_pages;
    auto more = t.TakePage(*page);
    if (!more.ok()) return more.status();
    if (!*more) break;
  }
  auto t3 = Clk::now();
  st.step_us[2] = Us(t2, t3);
  mark(4);

  std::vector<std::string> diff;
  if (Status r = s.Reconcile("recon/entries", "entries", t.entry_set, &st.recon_entries_round_trips,
                             &diff);
      !r.ok())
    return r;
  st.entry_differences = static_cast<int64_t>(diff.size());
  auto t4 = Clk::now();
  st.step_us[3] = Us(t3, t4);
  mark(5);

  diff.clear();
  auto snapshot = t.BalanceSet();
  if (Status r = s.Reconcile("recon/balances", "balances", *snapshot,
                             &st.recon_balances_round_trips, &diff);
      !r.ok())
    return r;
  st.balance_differences = static_cast<int64_t>(diff.size());
  // Balances that differ (a member this terminal began to hold through an upload while
  // another upload of the member went through HQ):
  // fresh snapshots, as a terminal asks for them, and their balances are the ones it holds.
  if (!diff.empty() && setup.repair_balances) {
    sync::MembersRequest req;
    for (const auto& key : diff) {
      if (auto id = chain.view().MemberOfKey(key)) req.member_ids.push_back(*id);
      if (req.member_ids.size() == sync::kMaxMemberIds) break;
    }
    if (!req.member_ids.empty()) {
      auto m = s.CallJson<sync::MembersResponse>("members", "POST", "/members",
                                                 sync::SerializeMessage(req));
      if (!m.ok()) return m.status();
      for (const auto& snap : m->members) t.Sent(snap.member_id, snap.balance);
    }
  }
  st.step_us[4] = Us(t4, Clk::now());
  if (after) (*after)(5);
  return Status::Ok();
}

}  // namespace

RunStats RunTerminal(Chain& chain, Terminal& t, const RunSetup& setup) {
  RunStats st;
  Session s(setup, t, st);
  Status r = Steps(chain, t, s, setup, st);
  if (setup.step) setup.step->store(0);
  st.ok = r.ok();
  if (!r.ok()) st.error = r.message();
  return st;
}

}  // namespace loyalty::hqload
