#include "loyalty/sync/run.h"

#include <algorithm>
#include <chrono>
#include <random>
#include <set>
#include <thread>

#include "loyalty/base/encoding.h"
#include "loyalty/http/message.h"
#include "loyalty/recon/protocol.h"

namespace loyalty::sync {
namespace {

constexpr const char* kJson = "application/json";
constexpr const char* kBinary = "application/octet-stream";
// Guards against a peer that never says "done" (pages, batches).
constexpr int kMaxLoops = 100000;
// HQ refuses request bodies over 1 MiB (PROTOCOL.md). A batch is cut by entry count first,
// then halved until its body fits under this, so a member with a long history (large
// stored responses) never wedges the upload on a 413.
constexpr size_t kMaxUploadBodyBytes = 900 * 1024;

bool Retryable(const Status& s) {
  return s.code() == ErrorCode::kUnavailable || s.code() == ErrorCode::kTimeout ||
         s.code() == ErrorCode::kBadResponse;
}
bool RetryableStatus(int status) { return status >= 500 || status == 429 || status == 408; }

// The error HQ named in a non-2xx answer, or a generic one.
Status HttpError(const Exchange& e, std::string_view what) {
  ErrorCode code = ErrorCode::kHqError;
  std::string message = std::string(what) + ": HQ answered " + std::to_string(e.status);
  auto j = ParseJsonObject(e.body);
  if (j.ok() && j->contains("error") && (*j)["error"].is_object()) {
    const auto& err = (*j)["error"];
    // A code this build does not know stays hq_error, its name kept in the message.
    if (err.contains("code") && err["code"].is_string()) {
      const auto& name = err["code"].get_ref<const std::string&>();
      if (auto known = ErrorCodeFromName(name))
        code = *known;
      else
        message += " [" + name + "]";
    }
    if (err.contains("message") && err["message"].is_string())
      message += " (" + err["message"].get<std::string>() + ")";
  }
  if (code == ErrorCode::kForbidden)
    message += "; the terminal's client certificate must name this terminal";
  return Status::Error(code, message);
}

}  // namespace

struct SyncRun::Impl {
  LocalLedger& local;
  Transport& transport;
  const Clock& clock;
  RunOptions opt;
  RunRecord rec;
  int64_t deadline_mono = 0;
  std::mt19937_64 rng;
  std::optional<std::pair<int64_t, int64_t>> hq_time;  // (hq ms, local mono ms)

  Impl(LocalLedger& l, Transport& t, const Clock& c, RunOptions o)
      : local(l),
        transport(t),
        clock(c),
        opt(std::move(o)),
        rng(opt.jitter_seed ? opt.jitter_seed : std::random_device{}()) {}

  std::string Base() const { return "/v1/sync/" + opt.terminal_id; }

  Status Check() const {
    if (opt.cancel && opt.cancel->load())
      return Status::Error(ErrorCode::kCancelled, "the run was cancelled (agent stopping)");
    if (clock.mono_ms() >= deadline_mono)
      return Status::Error(
          ErrorCode::kTimeout,
          "the run did not finish within " + std::to_string(opt.run_timeout_ms / 1000) + " s");
    return Status::Ok();
  }

  void Sleep(int64_t ms) {
    if (opt.sleep) return opt.sleep(ms);
    // Sleep in slices so a cancel is noticed promptly.
    while (ms > 0) {
      if (opt.cancel && opt.cancel->load()) return;
      int64_t slice = std::min<int64_t>(ms, 50);
      std::this_thread::sleep_for(std::chrono::milliseconds(slice));
      ms -= slice;
    }
  }

  // One request with retries. Every attempt's body bytes that reached HQ count (all of
  // them when the transport cannot tell); a response counts as one round trip.
  Result<Exchange> Call(std::string_view method, const std::string& target,
                        std::string_view content_type, std::string_view body,
                        std::string_view what) {
    Status last;
    for (int attempt = 0; attempt < opt.max_attempts; ++attempt) {
      if (Status s = Check(); !s.ok()) return s;
      int64_t left = deadline_mono - clock.mono_ms();
      int timeout =
          static_cast<int>(std::min<int64_t>(opt.request_timeout_ms, std::max<int64_t>(left, 1)));
      const std::optional<int64_t> written_before = transport.BodyBytesWritten();
      auto r = transport.Send(method, target, content_type, body, timeout);
      const std::optional<int64_t> written_after = transport.BodyBytesWritten();
      rec.bytes_sent += written_before && written_after ? *written_after - *written_before
                                                        : static_cast<int64_t>(body.size());
      if (r.ok()) {
        ++rec.round_trips;
        rec.bytes_received += static_cast<int64_t>(r->body.size());
        if (r->status >= 200 && r->status < 300) return r;
        last = HttpError(*r, what);
        if (!RetryableStatus(r->status)) return last;
      } else {
        last = Status::Error(r.status().code(), std::string(what) + ": " + r.status().message());
        if (!Retryable(r.status())) return last;
      }
      transport.Reset();
      if (attempt + 1 == opt.max_attempts) break;
      // Exponential backoff with full jitter, never past the deadline.
      int64_t cap = std::min(opt.backoff_max_ms, opt.backoff_base_ms << std::min(attempt, 20));
      int64_t wait =
          static_cast<int64_t>(rng() % static_cast<uint64_t>(std::max<int64_t>(cap, 1))) + 1;
      wait = std::min(wait, deadline_mono - clock.mono_ms());
      if (wait > 0) Sleep(wait);
    }
    return last;
  }

  template <typename Resp>
  Result<Resp> CallJson(std::string_view method, const std::string& target, const std::string& body,
                        std::string_view what) {
    auto e = Call(method, target, kJson, body, what);
    if (!e.ok()) return e.status();
    auto m = ParseMessage<Resp>(e->body);
    if (!m.ok())
      return Status::Error(ErrorCode::kBadResponse,
                           std::string(what) + ": " + m.status().message());
    return m;
  }

  void Log(const std::string& event, const nlohmann::json& fields) {
    if (opt.log) opt.log(event, fields);
  }

  Status Upload(const UploadRequest& req, int64_t* created) {
    return UploadBody(req, SerializeMessage(req), created);
  }

  Status UploadBody(const UploadRequest& req, std::string body, int64_t* created) {
    auto resp = CallJson<UploadResponse>("POST", Base() + "/entries", std::move(body), "upload");
    if (!resp.ok()) return resp.status();
    if (resp->results.size() != req.entries.size())
      return Status::Error(ErrorCode::kBadResponse,
                           "upload: HQ answered " + std::to_string(resp->results.size()) +
                               " results for " + std::to_string(req.entries.size()) + " entries");
    for (size_t i = 0; i < req.entries.size(); ++i) {
      const auto& r = resp->results[i];
      if (r.entry_id != req.entries[i].entry_id)
        return Status::Error(ErrorCode::kBadResponse,
                             "upload: result " + std::to_string(i) + " names another entry");
      if (r.status == "created") {
        ++*created;
      } else if (r.status == "conflict" || r.status == "invalid" || r.status == "refused") {
        // refused: HQ stored the entry in the chain but applied it to no balance (it could
        // not check it); the reconciliation then corrects this terminal's balance.
        ++rec.conflicts;
        Log("sync_conflict", {{"kind", r.status == "conflict"  ? "entry_mismatch"
                                       : r.status == "refused" ? "entry_refused"
                                                               : "entry_invalid"},
                              {"entry_id", r.entry_id},
                              {"seq", req.entries[i].seq}});
      }
    }
    return local.Acknowledge(req, *resp);
  }

  Status UploadPending() {
    int64_t after = 0;
    size_t limit = kMaxUploadEntries;
    for (int i = 0; i < kMaxLoops; ++i) {
      if (Status s = Check(); !s.ok()) return s;
      auto batch = local.NextUploadBatch(after, limit);
      if (!batch.ok()) return batch.status();
      const auto& req = batch->request;
      if (req.entries.empty() && req.checkouts.empty() && req.refunds.empty()) return Status::Ok();
      std::string body = SerializeMessage(req);
      if (body.size() > kMaxUploadBodyBytes && limit > 1) {
        limit = std::max<size_t>(1, limit / 2);
        continue;
      }
      if (Status s = UploadBody(req, std::move(body), &rec.uploaded); !s.ok()) return s;
      if (batch->last_seq > 0) after = batch->last_seq;
    }
    return Status::Error(ErrorCode::kInternal, "upload did not converge");
  }

  // Members HQ says left the store's scope: the terminal drops those it can (none with
  // entries HQ has not acknowledged), then tells HQ which, so that both balance sets agree
  // before they are reconciled (PROTOCOL.md, "Eviction").
  Status Evict(const std::vector<uint64_t>& ids) {
    if (ids.empty()) return Status::Ok();
    auto dropped = local.Evict(ids);
    if (!dropped.ok()) return dropped.status();
    if (dropped->empty()) return Status::Ok();
    EvictedRequest req{*dropped};
    auto resp =
        CallJson<EvictedResponse>("POST", Base() + "/evicted", SerializeMessage(req), "evicted");
    if (!resp.ok()) return resp.status();
    Log("members_evicted",
        {{"asked", ids.size()}, {"dropped", dropped->size()}, {"forgotten", resp->forgotten}});
    return Status::Ok();
  }

  // HQ answers a repair with the members asked for, none else.
  static Status OnlyAsked(const MembersRequest& req, const MembersResponse& resp) {
    std::set<uint64_t> asked(req.member_ids.begin(), req.member_ids.end());
    for (const auto& m : resp.members)
      if (!asked.count(m.member_id))
        return Status::Error(ErrorCode::kBadResponse,
                             "members: HQ sent member " + std::to_string(m.member_id) + " unasked");
    return Status::Ok();
  }

  // After a rotation of the store's phone look-up key: the members whose look-up hash was
  // made with the old key are asked for again (a batch of up to kMaxMemberIds a request, each
  // member at most once a run), so phone look-up finds them under the new key.
  Status Rehash() {
    std::set<uint64_t> asked;
    for (int i = 0; i < kMaxLoops; ++i) {
      if (Status s = Check(); !s.ok()) return s;
      auto stale = local.MembersToRehash(kMaxMemberIds);
      if (!stale.ok()) return stale.status();
      MembersRequest req;
      for (uint64_t id : *stale)
        if (asked.insert(id).second) req.member_ids.push_back(id);
      if (req.member_ids.empty()) return Status::Ok();
      auto resp =
          CallJson<MembersResponse>("POST", Base() + "/members", SerializeMessage(req), "members");
      if (!resp.ok()) return resp.status();
      if (Status s = OnlyAsked(req, *resp); !s.ok()) return s;
      rec.downloaded += static_cast<int64_t>(resp->members.size());
      if (Status s = local.ApplySnapshots(*resp); !s.ok()) return s;
    }
    return Status::Ok();
  }

  Status Download() {
    auto cursor = local.Cursor();
    if (!cursor.ok()) return cursor.status();
    std::string c = *cursor;
    bool restarted = false;
    for (int i = 0; i < kMaxLoops; ++i) {
      if (Status s = Check(); !s.ok()) return s;
      std::string target = Base() + "/changes?cursor=" + http::PercentEncode(c) +
                           "&limit=" + std::to_string(opt.changes_limit);
      auto page = CallJson<ChangesResponse>("GET", target, "", "changes");
      if (!page.ok() && page.status().code() == ErrorCode::kBadRequest && !c.empty() &&
          !restarted) {
        // HQ refuses the cursor (past its newest change: HQ restored from an older backup;
        // or not one it gave): the download starts again from the beginning, as a first
        // sync's, rather than every later run failing on it. Once a run.
        Log("sync_cursor_reset",
            {{"cursor", c.substr(0, 64)}, {"reason", page.status().message()}});
        restarted = true;
        c.clear();
        continue;
      }
      if (!page.ok()) return page.status();
      if (Status s = local.ApplyChanges(*page); !s.ok()) return s;
      rec.downloaded += static_cast<int64_t>(page->members.size());
      if (!page->more) {
        if (Status s = Evict(page->evict); !s.ok()) return s;
        return Rehash();
      }
      if (page->cursor == c)
        return Status::Error(ErrorCode::kBadResponse,
                             "changes: more pages announced but the cursor did not move");
      c = page->cursor;
    }
    return Status::Error(ErrorCode::kBadResponse, "changes: too many pages");
  }

  // One reconciliation exchange over scope ("entries" or "balances"); ids are raw 16 bytes.
  Status Reconcile(const std::string& scope, std::vector<std::string>* have,
                   std::vector<std::string>* need, std::vector<std::string>* mismatched) {
    auto view = local.OpenReconView();
    if (!view.ok()) return view.status();
    const recon::FingerprintStore& store =
        scope == "entries" ? (*view)->entries() : (*view)->balances();
    recon::Initiator ini(store);
    auto msg = ini.Start();
    if (!msg.ok()) return msg.status();
    std::string out = std::move(*msg);
    for (int i = 0; i < 64; ++i) {
      auto reply = Call("POST", Base() + "/recon/" + scope, kBinary, out, "recon/" + scope);
      if (!reply.ok()) return reply.status();
      auto next = ini.Next(reply->body, have, need, mismatched);
      if (!next.ok())
        return Status::Error(ErrorCode::kBadResponse,
                             "recon/" + scope + ": " + next.status().message());
      if (!*next) return Status::Ok();
      out = std::move(**next);
    }
    return Status::Error(ErrorCode::kBadResponse, "recon/" + scope + ": the exchange did not end");
  }

  static std::vector<std::string> Hex(const std::vector<std::string>& raw) {
    std::vector<std::string> out;
    out.reserve(raw.size());
    for (const auto& r : raw) out.push_back(HexEncode(r));
    return out;
  }

  // Whether a fetch failed only for the size of its answer: HQ's 413 (the answer would pass
  // the protocol's 8 MiB) or a body over that limit. The same ids are then asked in halves.
  static bool AnswerTooLarge(const Status& s) {
    return s.code() == ErrorCode::kBodyTooLarge ||
           (s.code() == ErrorCode::kBadResponse &&
            s.message().find("response body too large") != std::string::npos);
  }

  Status Fetch(const std::vector<std::string>& ids, int64_t* added) {
    size_t chunk = kMaxFetchIds;
    for (size_t i = 0; i < ids.size();) {
      if (Status s = Check(); !s.ok()) return s;
      const size_t n = std::min(ids.size() - i, chunk);
      FetchRequest req;
      req.entry_ids.assign(ids.begin() + static_cast<std::ptrdiff_t>(i),
                           ids.begin() + static_cast<std::ptrdiff_t>(i + n));
      auto resp =
          CallJson<FetchResponse>("POST", Base() + "/fetch", SerializeMessage(req), "fetch");
      if (!resp.ok() && AnswerTooLarge(resp.status()) && n > 1) {
        chunk = n / 2;  // the same ids again, fewer to an answer
        continue;
      }
      if (!resp.ok()) return resp.status();
      i += n;
      for (const auto& e : resp->entries)
        if (e.terminal_id != opt.terminal_id)
          return Status::Error(ErrorCode::kBadResponse,
                               "fetch: entry " + e.entry_id + " belongs to another terminal");
      auto restored = local.Restore(*resp);
      if (!restored.ok()) return restored.status();
      *added += *restored;
      rec.downloaded += static_cast<int64_t>(resp->entries.size());
    }
    return Status::Ok();
  }

  // The checkouts HQ holds that no entry brings back (made without a member), a page at a
  // time in checkout id order, with their refunds: their ids stay taken after a restore.
  Status FetchCheckoutsWithoutEntries() {
    std::string after;
    for (int i = 0; i < kMaxLoops; ++i) {
      if (Status s = Check(); !s.ok()) return s;
      FetchRequest req;
      req.without_entries_after = after;
      auto resp =
          CallJson<FetchResponse>("POST", Base() + "/fetch", SerializeMessage(req), "fetch");
      if (!resp.ok()) return resp.status();
      if (!resp->entries.empty())
        return Status::Error(ErrorCode::kBadResponse, "fetch: entries nobody asked for");
      auto n = local.Restore(*resp);
      if (!n.ok()) return n.status();
      if (!resp->next_without_entries) return Status::Ok();
      if (*resp->next_without_entries <= after)
        return Status::Error(ErrorCode::kBadResponse,
                             "fetch: checkouts without entries: the cursor did not move");
      after = *resp->next_without_entries;
    }
    return Status::Error(ErrorCode::kBadResponse, "fetch: too many pages of checkouts");
  }

  Status ReconcileEntries() {
    std::vector<std::string> have, need, mismatched;
    if (Status s = Reconcile("entries", &have, &need, &mismatched); !s.ok()) return s;
    for (const auto& id : Hex(mismatched)) {
      ++rec.conflicts;
      Log("sync_conflict", {{"kind", "entry_mismatch"}, {"entry_id", id}});
    }
    auto have_hex = Hex(have);
    size_t limit = kMaxUploadEntries;
    for (size_t i = 0; i < have_hex.size();) {
      if (Status s = Check(); !s.ok()) return s;
      size_t n = std::min(have_hex.size() - i, limit);
      std::vector<std::string> chunk(have_hex.begin() + static_cast<std::ptrdiff_t>(i),
                                     have_hex.begin() + static_cast<std::ptrdiff_t>(i + n));
      auto req = local.EntriesForUpload(chunk);
      if (!req.ok()) return req.status();
      std::string body = SerializeMessage(*req);
      if (body.size() > kMaxUploadBodyBytes && limit > 1) {
        limit = std::max<size_t>(1, limit / 2);  // the same ids again, in smaller pieces
        continue;
      }
      i += n;
      if (req->entries.empty()) continue;
      if (Status s = UploadBody(*req, std::move(body), &rec.repaired); !s.ok()) return s;
    }
    return Fetch(Hex(need), &rec.repaired);
  }

  Status ReconcileBalances() {
    std::vector<std::string> have, need, mismatched;
    if (Status s = Reconcile("balances", &have, &need, &mismatched); !s.ok()) return s;
    std::vector<std::string> keys = mismatched;
    keys.insert(keys.end(), have.begin(), have.end());
    if (keys.empty()) return Status::Ok();
    auto ids = local.MembersForKeys(keys);
    if (!ids.ok()) return ids.status();
    for (size_t i = 0; i < ids->size(); i += kMaxMemberIds) {
      if (Status s = Check(); !s.ok()) return s;
      MembersRequest req;
      req.member_ids.assign(
          ids->begin() + static_cast<std::ptrdiff_t>(i),
          ids->begin() + static_cast<std::ptrdiff_t>(std::min(ids->size(), i + kMaxMemberIds)));
      auto resp =
          CallJson<MembersResponse>("POST", Base() + "/members", SerializeMessage(req), "members");
      if (!resp.ok()) return resp.status();
      if (Status s = OnlyAsked(req, *resp); !s.ok()) return s;
      rec.downloaded += static_cast<int64_t>(resp->members.size());
      auto n = local.RepairBalances(*resp);
      if (!n.ok()) return n.status();
      rec.repaired += *n;
    }
    return Status::Ok();
  }

  // A receipt key without a current certificate gets one (one round trip, rarely); a
  // failure fails the run, as any step's does.
  Status CertifyReceiptKey(int64_t hq_now_s) {
    auto pk = local.ReceiptKeyToCertify(hq_now_s);
    if (!pk.ok()) return pk.status();
    if (!*pk) return Status::Ok();
    ReceiptKeyRequest req{**pk};
    auto resp = CallJson<ReceiptKeyResponse>("POST", Base() + "/receipt-key", SerializeMessage(req),
                                             "receipt-key");
    if (!resp.ok()) return resp.status();
    return local.StoreReceiptKeyCert(resp->certificate, hq_now_s);
  }

  Status Steps() {
    auto hello = local.Hello();
    if (!hello.ok()) return hello.status();
    auto hr = CallJson<HelloResponse>("POST", Base() + "/hello", SerializeMessage(*hello), "hello");
    if (!hr.ok()) return hr.status();
    hq_time = std::make_pair(hr->hq_time_ms, clock.mono_ms());
    if (hr->protocol != kProtocolVersion)
      return Status::Error(ErrorCode::kBadResponse,
                           "hello: HQ speaks protocol " + std::to_string(hr->protocol));
    // A terminal whose ledger was lost gets its history back before it uploads anything.
    // And the checkouts no entry brings back, when the ledger holds no checkout at all
    // (asked before the entries bring theirs).
    bool no_checkouts = false;
    if (hello->entries == 0 && hr->terminal_known) {
      auto has = local.HasCheckouts();
      if (!has.ok()) return has.status();
      no_checkouts = !*has;
    }
    if (hello->entries == 0 && hr->hq_entries > 0) {
      if (Status s = ReconcileEntries(); !s.ok()) return s;
    }
    if (no_checkouts)
      if (Status s = FetchCheckoutsWithoutEntries(); !s.ok()) return s;
    if (Status s = CertifyReceiptKey(hr->hq_time_ms / 1000); !s.ok()) return s;
    if (Status s = UploadPending(); !s.ok()) return s;
    if (Status s = Download(); !s.ok()) return s;
    if (Status s = ReconcileEntries(); !s.ok()) return s;
    if (Status s = ReconcileBalances(); !s.ok()) return s;
    if (hr->hq_time_ms > 0 && hr->hq_time_ms / 1000 <= kMaxTimeS)
      if (Status s = local.ConfirmMembers(hr->hq_time_ms / 1000); !s.ok()) return s;
    return local.Finish();
  }
};

SyncRun::SyncRun(LocalLedger& local, Transport& transport, const Clock& clock, RunOptions options)
    : impl_(std::make_unique<Impl>(local, transport, clock, std::move(options))) {}

SyncRun::~SyncRun() = default;

RunRecord SyncRun::Execute(const std::string& run_id) {
  Impl& d = *impl_;
  d.rec = RunRecord{};
  d.rec.run_id = run_id;
  d.rec.started_at_ms = d.clock.now_ms();
  d.deadline_mono = d.clock.mono_ms() + d.opt.run_timeout_ms;
  d.hq_time.reset();
  // Best effort: a run that cannot even be recorded still runs, and fails if the ledger
  // really cannot be written.
  (void)d.local.RecordRun(d.rec);
  Status s;
  try {
    s = d.Steps();
  } catch (const std::exception& e) {
    s = Status::Error(ErrorCode::kInternal, std::string("sync run: ") + e.what());
  }
  d.transport.Reset();
  d.rec.finished_at_ms = d.clock.now_ms();
  d.rec.result = s.ok() ? "ok" : "failed";
  if (!s.ok()) d.rec.error = s.ToString();
  if (s.ok() && d.hq_time && d.opt.on_hq_time)
    d.opt.on_hq_time(d.hq_time->first, d.hq_time->second);
  if (Status rs = d.local.RecordRun(d.rec); !rs.ok() && s.ok()) {
    d.rec.result = "failed";
    d.rec.error = std::string(rs.code_name()) + ": recording the run: " + rs.message();
  }
  return d.rec;
}

}  // namespace loyalty::sync
