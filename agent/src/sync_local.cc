#include "sync_local.h"

#include "loyalty/checkout/lots.h"

#include <algorithm>
#include <future>
#include <map>
#include <set>

#include "loyalty/base/encoding.h"
#include "loyalty/base/ids.h"
#include "loyalty/base/json.h"
#include "loyalty/codes/return_token.h"
#include "loyalty/rules/rules.h"

namespace loyalty::agent {

using nlohmann::json;

Status ApplySnapshot(ledger::Ledger& w, const sync::Snapshot& snap, const TimeZone& tz,
                     int64_t validity_months) {
  // Expiries of the lots this terminal created, so entries applied again keep theirs.
  std::map<std::string, int64_t> expiry_by_entry;
  auto old_lots = w.Lots(snap.member_id);
  if (!old_lots.ok()) return old_lots.status();
  for (const auto& lot : *old_lots)
    if (!lot.entry_id.empty() && lot.points > 0) expiry_by_entry[lot.entry_id] = lot.expires_at_s;

  ledger::MemberRow m;
  m.member_id = snap.member_id;
  m.display_name = snap.display_name;
  m.phone = snap.phone;
  // Only a store look-up hash is kept (docs/pos-api.md, "Phone look-up").
  m.phone_key_id = snap.phone_hash.empty() ? 0 : snap.phone_key_id;
  m.phone_hash = m.phone_key_id != 0 ? snap.phone_hash : "";
  m.tier = snap.tier;
  m.status = snap.status;
  m.frozen_reason = snap.frozen_reason;
  m.birthday_month = static_cast<int>(snap.birthday_month);
  m.snapshot_at_s = snap.snapshot_at_s;
  m.snapshot_balance = snap.balance;
  m.month_spend_cents = snap.month_spend_cents;
  m.unfrozen_at_ms = snap.unfrozen_at_ms;
  m.balance = snap.balance;

  std::vector<model::Entry> hq_entries;
  for (const auto& h : snap.hq_entries) {
    model::Entry e;
    e.entry_id = h.entry_id;
    e.kind = h.kind;
    e.points = h.points;
    e.at_ms = h.at_ms;
    hq_entries.push_back(std::move(e));
  }
  if (Status s = w.ReplaceHqEntries(snap.member_id, hq_entries); !s.ok()) return s;
  if (Status s = w.DeleteLots(snap.member_id); !s.ok()) return s;
  int64_t lot_sum = 0;
  for (const auto& l : snap.lots) {
    model::Lot lot{
        0,        snap.member_id,     l.points,
        l.points, snap.snapshot_at_s, l.points < 0 ? model::kNeverExpires : l.expires_at_s,
        ""};
    if (auto id = w.AddLot(lot); !id.ok()) return id.status();
    lot_sum += l.points;
  }
  auto offset = [&tz](int64_t t) { return tz.UtcOffsetAt(t); };
  // The cached balance always equals the sum of the lots: if HQ's lots do not add up to its
  // balance, the rest is kept as a lot rather than breaking that rule: points as if earned
  // at the snapshot (a date the POS can show), a shortfall as a debt that never expires.
  if (lot_sum != snap.balance) {
    const int64_t rest = snap.balance - lot_sum;
    model::Lot lot{0,
                   snap.member_id,
                   rest,
                   rest,
                   snap.snapshot_at_s,
                   rest < 0 ? model::kNeverExpires
                            : rules::LotExpiry(snap.snapshot_at_s, validity_months, offset),
                   ""};
    if (auto id = w.AddLot(lot); !id.ok()) return id.status();
  }
  auto after = w.MemberEntriesAfter(snap.member_id, snap.terminal_seq);
  if (!after.ok()) return after.status();
  for (const auto& e : *after) {
    int64_t at_s = e.at_ms >= 0 ? e.at_ms / 1000 : 0;
    if (e.points != 0) {
      auto it = expiry_by_entry.find(e.entry_id);
      int64_t expires = it != expiry_by_entry.end()
                            ? it->second
                            : rules::LotExpiry(at_s, validity_months, offset);
      if (Status s = checkout::ApplyLotDelta(w, m.member_id, e.points, at_s, expires, e.entry_id);
          !s.ok())
        return s;
      m.balance += e.points;
    }
    // What this terminal decided after the snapshot still holds until HQ has seen it.
    if (e.kind == "freeze" && e.at_ms > m.unfrozen_at_ms) {
      m.status = "frozen";
      m.frozen_reason = "velocity";
    } else if (e.kind == "tier_upgrade") {
      auto d = ParseJsonObject(e.detail);
      if (d.ok() && d->contains("to") && (*d)["to"].is_string())
        m.tier = (*d)["to"].get<std::string>();
    }
  }
  return w.UpsertMember(m);
}

SyncLocal::SyncLocal(SyncLocalOptions options, checkout::LedgerWriter& writer,
                     checkout::CheckoutService& service, const Clock& clock, TimeZone tz,
                     std::function<void(const json&)> on_rules)
    : opt_(std::move(options)),
      writer_(writer),
      service_(service),
      clock_(clock),
      tz_(std::move(tz)),
      on_rules_(std::move(on_rules)) {}

SyncLocal::~SyncLocal() = default;

Result<ledger::Ledger*> SyncLocal::Reader() {
  if (!reader_) {
    auto r = ledger::Ledger::Open(opt_.database, ledger::Ledger::Mode::kReader, opt_.terminal_id);
    if (!r.ok()) return r.status();
    reader_ = std::move(*r);
  }
  return reader_.get();
}

Status SyncLocal::OnWriter(std::function<Status(ledger::Ledger&)> fn) {
  auto done = std::make_shared<std::promise<Status>>();
  auto fut = done->get_future();
  bool posted = writer_.Post([fn = std::move(fn), done](ledger::Ledger& w) {
    Status s = w.Begin();
    if (s.ok()) {
      try {
        s = fn(w);
      } catch (const std::exception& e) {
        s = Status::Error(ErrorCode::kInternal, std::string("sync write: ") + e.what());
      }
      if (s.ok()) {
        s = w.Commit();
      } else {
        w.Rollback();
      }
    }
    done->set_value(s);
  });
  if (!posted) return Status::Error(ErrorCode::kCancelled, "the ledger writer is stopping");
  return fut.get();
}

Result<bool> SyncLocal::HasCheckouts() {
  auto r = Reader();
  if (!r.ok()) return r.status();
  return (*r)->HasCheckouts();
}

Result<sync::HelloRequest> SyncLocal::Hello() {
  auto r = Reader();
  if (!r.ok()) return r.status();
  // A damaged file is not synced: nothing it holds is uploaded, nothing is written to it
  // (operations.md, a damaged ledger: it is moved aside, and a fresh one synced).
  if ((*r)->damaged())
    return Status::Error(ErrorCode::kLedgerDamaged, "the ledger file is damaged (" +
                                                        (*r)->damage_reason() +
                                                        "): it is not synced until it is replaced");
  sync::HelloRequest h;
  h.store_id = opt_.store_id;
  h.agent_version = opt_.agent_version;
  auto head = (*r)->CommittedHead();
  if (!head.ok()) return head.status();
  if (*head) {
    h.head.seq = (*head)->seq;
    h.head.hash = HexEncode((*head)->hash);
  }
  auto entries = (*r)->EntryCount();
  if (!entries.ok()) return entries.status();
  h.entries = *entries;
  // The page this ledger last applied: HQ forgets what it sent past it (an answer lost).
  auto cursor = (*r)->GetMeta(ledger::kSyncCursorKey);
  if (!cursor.ok()) return cursor.status();
  h.cursor = cursor->value_or("");
  return h;
}

Result<std::string> SyncLocal::Cursor() {
  auto r = Reader();
  if (!r.ok()) return r.status();
  auto cursor = (*r)->GetMeta(ledger::kSyncCursorKey);
  if (!cursor.ok()) return cursor.status();
  return cursor->value_or("");
}

Result<sync::UploadRequest> SyncLocal::WithRecords(std::vector<ledger::EntryRow> entries) {
  auto r = Reader();
  if (!r.ok()) return r.status();
  sync::UploadRequest req;
  std::set<std::string> checkouts, refunds;
  for (const auto& e : entries) {
    bool foreign = false;  // a refund of another terminal's sale: no checkout of ours to send
    if (!e.refund_id.empty() && refunds.insert(e.refund_id).second) {
      auto f = (*r)->GetRefund(e.refund_id);
      if (!f.ok()) return f.status();
      if (*f) {
        foreign = !(*f)->sold_at.empty();
        // With the other refunds of its sale not uploaded yet: HQ checks a refund's amounts
        // against the refunds before it, and one that moved no points has no entry of its
        // own to carry it (it would otherwise reach HQ after the refunds that followed it).
        // Only those: one that moved points travels with its own entries, which HQ judges
        // it with (PROTOCOL.md: without its clawback in the upload it would be refused).
        auto sale = (*r)->UnuploadedRefundsOfSale((*f)->sold_at, (*f)->checkout_id);
        if (!sale.ok()) return sale.status();
        for (auto& other : *sale)
          if (other.points_clawed_back == 0 && other.points_restored == 0 &&
              refunds.insert(other.refund_id).second)
            req.refunds.push_back(std::move(other));
        req.refunds.push_back(std::move(**f));
      }
    } else if (!e.refund_id.empty()) {
      for (const auto& f : req.refunds)
        if (f.refund_id == e.refund_id) foreign = !f.sold_at.empty();
    }
    if (!foreign && !e.checkout_id.empty() && checkouts.insert(e.checkout_id).second) {
      auto c = (*r)->GetCheckout(e.checkout_id);
      if (!c.ok()) return c.status();
      if (*c) req.checkouts.push_back(std::move(**c));
    }
    req.entries.push_back(e);  // the shared model: the row is the wire entry
  }
  return req;
}

namespace {

// The entries one commit writes (a sale's earn, redeem, freeze and upgrade; a refund's
// claw-back and restore) share their record: HQ judges a record with the entries that carry
// its points in the same upload (PROTOCOL.md), so a batch never ends inside one.
constexpr size_t kMaxCommitEntries = 8;

std::pair<std::string_view, std::string_view> RecordOf(const ledger::EntryRow& e) {
  return {e.checkout_id, e.refund_id};
}

// Where a batch of at most max_entries of `entries` (read with kMaxCommitEntries more)
// ends: before the commit that max_entries would cut, or after it when that commit is all
// the batch would hold.
size_t CommitBoundary(const std::vector<ledger::EntryRow>& entries, size_t max_entries) {
  if (entries.size() <= max_entries || max_entries == 0) return entries.size();
  const auto cut = RecordOf(entries[max_entries]);
  if (cut.first.empty() || RecordOf(entries[max_entries - 1]) != cut) return max_entries;
  size_t end = max_entries - 1;
  while (end > 0 && RecordOf(entries[end - 1]) == cut) --end;
  if (end > 0) return end;
  end = max_entries;
  while (end < entries.size() && RecordOf(entries[end]) == cut) ++end;
  return end;
}

}  // namespace

Result<sync::UploadBatch> SyncLocal::NextUploadBatch(int64_t after_seq, size_t max_entries) {
  auto r = Reader();
  if (!r.ok()) return r.status();
  auto entries = (*r)->UnackedEntries(after_seq, static_cast<int>(max_entries + kMaxCommitEntries));
  if (!entries.ok()) return entries.status();
  entries->resize(CommitBoundary(*entries, max_entries));
  sync::UploadBatch b;
  if (!entries->empty()) {
    b.last_seq = entries->back().seq;
    auto req = WithRecords(std::move(*entries));
    if (!req.ok()) return req.status();
    b.request = std::move(*req);
    return b;
  }
  // Checkouts without a member and refunds without points have no entries to carry them.
  auto checkouts = (*r)->UnuploadedCheckoutsWithoutEntries(200);
  if (!checkouts.ok()) return checkouts.status();
  auto refunds = (*r)->UnuploadedRefunds(200);
  if (!refunds.ok()) return refunds.status();
  for (auto& c : *checkouts) b.request.checkouts.push_back(std::move(c));
  for (auto& f : *refunds) b.request.refunds.push_back(std::move(f));
  return b;
}

Result<sync::UploadRequest> SyncLocal::EntriesForUpload(const std::vector<std::string>& entry_ids) {
  auto r = Reader();
  if (!r.ok()) return r.status();
  auto entries = (*r)->EntriesByIds(entry_ids);
  if (!entries.ok()) return entries.status();
  // HQ judges a record with the entries carrying its points in the same upload: the ids the
  // reconciliation found missing come in whatever order their bytes sort, so each entry
  // brings the other entries of its commit (those its checkout's or refund's stored response
  // names; HQ answers `exists` for those it has).
  std::set<std::string> have(entry_ids.begin(), entry_ids.end());
  std::set<std::pair<std::string, std::string>> records;
  std::vector<std::string> more;
  for (const auto& e : *entries) {
    if (e.checkout_id.empty() || !records.insert({e.checkout_id, e.refund_id}).second) continue;
    std::string response;
    if (!e.refund_id.empty()) {
      auto f = (*r)->GetRefund(e.refund_id);
      if (!f.ok()) return f.status();
      if (*f) response = (*f)->response_json;
    } else {
      auto c = (*r)->GetCheckout(e.checkout_id);
      if (!c.ok()) return c.status();
      if (*c) response = (*c)->response_json;
    }
    auto parsed = ParseJsonObject(response);
    if (!parsed.ok() || !parsed->contains("entries") || !(*parsed)["entries"].is_array()) continue;
    for (const auto& id : (*parsed)["entries"])
      if (id.is_string() && have.insert(id.get<std::string>()).second)
        more.push_back(id.get<std::string>());
  }
  if (!more.empty()) {
    std::vector<std::string> all(have.begin(), have.end());
    entries = (*r)->EntriesByIds(all);
    if (!entries.ok()) return entries.status();
  }
  return WithRecords(std::move(*entries));
}

namespace {

// The ledger's snapshot of the reconciliation index as the sync run's view of it.
class ReconViewImpl final : public sync::LocalLedger::ReconView {
 public:
  explicit ReconViewImpl(std::unique_ptr<ledger::ReconSnapshot> snapshot)
      : snapshot_(std::move(snapshot)) {}
  const recon::FingerprintStore& entries() override { return snapshot_->entries(); }
  const recon::FingerprintStore& balances() override { return snapshot_->balances(); }

 private:
  std::unique_ptr<ledger::ReconSnapshot> snapshot_;
};

}  // namespace

Result<std::unique_ptr<sync::LocalLedger::ReconView>> SyncLocal::OpenReconView() {
  auto v = ledger::ReconSnapshot::Open(opt_.database);
  if (!v.ok()) return v.status();
  return std::unique_ptr<ReconView>(std::make_unique<ReconViewImpl>(std::move(*v)));
}

Result<std::vector<uint64_t>> SyncLocal::MembersForKeys(const std::vector<std::string>& keys) {
  auto r = Reader();
  if (!r.ok()) return r.status();
  return (*r)->MembersByReconKey(keys);
}

namespace {

// Members with points of this terminal HQ refused ("What HQ trusts"), not yet corrected:
// meta "refused_pending", a JSON object member id -> the highest seq of such an entry. A
// snapshot that counts the refusal (terminal_seq at or past it) is applied with a correction
// entry, as the balance reconciliation would have written; RepairBalances and eviction
// clear it. At most kMaxRefusedPending members (past it the reconciliation still corrects).
constexpr const char* kRefusedMeta = "refused_pending";
constexpr size_t kMaxRefusedPending = 10000;

Result<std::map<uint64_t, int64_t>> ReadRefused(ledger::Ledger& w) {
  std::map<uint64_t, int64_t> out;
  auto text = w.GetMeta(kRefusedMeta);
  if (!text.ok()) return text.status();
  if (!*text) return out;
  auto j = json::parse(**text, nullptr, false);
  if (!j.is_object()) return out;  // unreadable: nothing pending (the reconciliation corrects)
  for (auto it = j.begin(); it != j.end(); ++it) {
    auto id = sync::ParseMemberId(it.key());
    if (id && it.value().is_number_integer()) out[*id] = it.value().get<int64_t>();
  }
  return out;
}

Status WriteRefused(ledger::Ledger& w, const std::map<uint64_t, int64_t>& pending) {
  json j = json::object();
  for (const auto& [id, seq] : pending) j[std::to_string(id)] = seq;
  return w.PutMeta(kRefusedMeta, j.dump());
}

// The balance the reconciliation compares: the cached one without unacknowledged entries.
Result<int64_t> ReconciledBalance(ledger::Ledger& w, uint64_t member_id) {
  auto old = w.GetMember(member_id);
  if (!old.ok()) return old.status();
  if (!*old) return int64_t{0};
  auto unacked = w.UnackedPoints(member_id);
  if (!unacked.ok()) return unacked.status();
  return (*old)->balance - *unacked;
}

Status AppendCorrection(ledger::Ledger& w, uint64_t member_id, int64_t terminal, int64_t hq,
                        int64_t now_ms) {
  json detail{{"terminal_balance", terminal}, {"hq_balance", hq}};
  ledger::EntryDraft d{NewEntryId(now_ms), "correction", member_id, 0, now_ms, "", "",
                       detail.dump()};
  auto e = w.AppendEntry(d);
  return e.ok() ? Status::Ok() : e.status();
}

}  // namespace

Status SyncLocal::Acknowledge(const sync::UploadRequest& sent,
                              const sync::UploadResponse& results) {
  std::vector<std::string> acked, checkouts, refunds;
  std::set<std::string> refused;
  for (const auto& r : results.results) {
    if (r.status != "invalid") acked.push_back(r.entry_id);
    if (r.status == "refused") refused.insert(r.entry_id);
  }
  for (const auto& c : sent.checkouts) checkouts.push_back(c.checkout_id);
  for (const auto& f : sent.refunds) refunds.push_back(f.refund_id);
  return OnWriter([&](ledger::Ledger& w) {
    if (Status s = w.AckEntries(acked); !s.ok()) return s;
    if (Status s = w.MarkUploaded(checkouts, refunds); !s.ok()) return s;
    std::map<uint64_t, int64_t> more;
    for (const auto& e : sent.entries)
      if (e.points != 0 && refused.count(e.entry_id))
        more[e.member_id] = std::max(more[e.member_id], e.seq);
    if (more.empty()) return Status::Ok();
    auto pending = ReadRefused(w);
    if (!pending.ok()) return pending.status();
    for (const auto& [id, seq] : more)
      if (pending->count(id) || pending->size() < kMaxRefusedPending)
        (*pending)[id] = std::max((*pending)[id], seq);
    return WriteRefused(w, *pending);
  });
}

namespace {

// The ledger's meta key for the store's phone look-up keys: a JSON array of {"key_id",
// "key" (base64url)}, the current first, then the one before it (docs/pos-api.md).
constexpr const char* kPhoneKeysMeta = "phone_keys";

std::vector<std::pair<int64_t, std::string>> ParsePhoneKeys(const std::string& text) {
  std::vector<std::pair<int64_t, std::string>> out;
  auto j = json::parse(text, nullptr, false);
  if (!j.is_array()) return out;
  for (const auto& k : j) {
    if (!k.is_object() || !k.contains("key_id") || !k["key_id"].is_number_integer() ||
        !k.contains("key") || !k["key"].is_string())
      continue;
    auto raw = Base64UrlDecode(k["key"].get<std::string>());
    if (raw && raw->size() == 32) out.emplace_back(k["key_id"].get<int64_t>(), *raw);
  }
  return out;
}

json PhoneKeysJson(const std::vector<std::pair<int64_t, std::string>>& keys) {
  json out = json::array();
  for (const auto& [id, key] : keys) out.push_back({{"key_id", id}, {"key", Base64UrlEncode(key)}});
  return out;
}

}  // namespace

namespace {
constexpr char kTrustedTimeMeta[] = "trusted_time";  // {"hq_ms","mono_ms","boot_id"}
}  // namespace

Status SyncLocal::RememberHqTime(int64_t hq_ms, int64_t mono_ms, const std::string& boot_id) {
  if (boot_id.empty()) return Status::Ok();  // no boot to tie it to: nothing worth keeping
  const std::string text =
      json{{"hq_ms", hq_ms}, {"mono_ms", mono_ms}, {"boot_id", boot_id}}.dump();
  return OnWriter([&](ledger::Ledger& w) { return w.PutMeta(kTrustedTimeMeta, text); });
}

Result<std::optional<std::pair<int64_t, int64_t>>> SyncLocal::KeptHqTime(
    const std::string& boot_id) {
  using Kept = std::optional<std::pair<int64_t, int64_t>>;
  if (boot_id.empty()) return Kept();
  auto r = Reader();
  if (!r.ok()) return r.status();
  auto text = (*r)->GetMeta(kTrustedTimeMeta);
  if (!text.ok()) return text.status();
  if (!*text) return Kept();
  auto j = ParseJsonObject(**text);
  if (!j.ok()) return Kept();  // unreadable: as if none was kept
  const json& o = *j;
  if (!o.contains("boot_id") || !o["boot_id"].is_string() || o["boot_id"] != boot_id ||
      !o.contains("hq_ms") || !o["hq_ms"].is_number_integer() || !o.contains("mono_ms") ||
      !o["mono_ms"].is_number_integer())
    return Kept();
  return Kept(std::make_pair(o["hq_ms"].get<int64_t>(), o["mono_ms"].get<int64_t>()));
}

Status SyncLocal::LoadPhoneKeys() {
  auto r = Reader();
  if (!r.ok()) return r.status();
  auto text = (*r)->GetMeta(kPhoneKeysMeta);
  if (!text.ok()) return text.status();
  if (*text) service_.SetPhoneKeys(ParsePhoneKeys(**text));
  return Status::Ok();
}

Result<std::vector<uint64_t>> SyncLocal::MembersToRehash(size_t limit) {
  auto r = Reader();
  if (!r.ok()) return r.status();
  auto text = (*r)->GetMeta(kPhoneKeysMeta);
  if (!text.ok()) return text.status();
  auto keys = *text ? ParsePhoneKeys(**text) : std::vector<std::pair<int64_t, std::string>>();
  if (keys.empty()) return std::vector<uint64_t>();
  return (*r)->MembersWithOtherPhoneKey(keys.front().first, limit);
}

Status SyncLocal::ApplyChanges(const sync::ChangesResponse& page) {
  std::optional<json> rules_json;
  if (page.rules) {
    // Validated before the page is applied; a rules push this build cannot read is left
    // out (and said so: on_rules_) rather than blocking every later page.
    auto parsed = rules::RulesFromJson(*page.rules);
    if (parsed.ok()) rules_json = *page.rules;
  }
  int64_t validity = service_.rules()->points_validity_months;
  std::vector<std::pair<int64_t, std::string>> phone_keys;
  const int64_t now_ms = service_.NowMs();
  Status s = OnWriter([&](ledger::Ledger& w) -> Status {
    phone_keys.clear();
    auto refused = ReadRefused(w);
    if (!refused.ok()) return refused.status();
    bool refused_changed = false;
    for (const auto& snap : page.members) {
      // A snapshot that counts an entry of this terminal HQ refused replaces the balance
      // that still has its points: recorded with a correction entry, as the reconciliation
      // records any other difference (hq-and-sync.md, "Refused is not lost").
      auto r = refused->find(snap.member_id);
      const bool corrects = r != refused->end() && snap.terminal_seq >= r->second;
      std::optional<int64_t> terminal;
      if (corrects) {
        auto b = ReconciledBalance(w, snap.member_id);
        if (!b.ok()) return b.status();
        terminal = *b;
      }
      if (Status s = ApplySnapshot(w, snap, tz_, validity); !s.ok()) return s;
      if (!corrects) continue;
      refused->erase(r);
      refused_changed = true;
      if (*terminal != snap.balance)
        if (Status s = AppendCorrection(w, snap.member_id, *terminal, snap.balance, now_ms);
            !s.ok())
          return s;
    }
    if (refused_changed)
      if (Status s = WriteRefused(w, *refused); !s.ok()) return s;
    for (const auto& id : page.identities)
      if (Status s = w.PutIdentity(id.channel, id.external_id, id.member_id); !s.ok()) return s;
    for (const auto& c : page.coupons) {
      ledger::CouponRow row{c, ""};
      auto local = w.GetCoupon(c.coupon_id);
      if (!local.ok()) return local.status();
      // A local use stays recorded; a use HQ knows of (another store) makes it used here.
      if (*local && !(*local)->used_by_checkout.empty())
        row.used_by_checkout = (*local)->used_by_checkout;
      else if (c.used)
        row.used_by_checkout = "@hq";
      if (Status s = w.PutCoupon(row); !s.ok()) return s;
    }
    for (const auto& k : page.revocations) {
      auto raw = Base64UrlDecode(k);
      if (!raw || raw->size() != 32)
        return Status::Error(ErrorCode::kBadResponse, "changes: revocation is not a 32-byte key");
      if (Status s = w.PutRevocation(*raw); !s.ok()) return s;
    }
    if (rules_json) {
      if (Status s = w.PutMeta("hq_rules", rules_json->dump()); !s.ok()) return s;
    }
    if (page.phone_key) {
      // A new key joins as the current one; the one it replaces stays for look-ups until
      // the members hashed with it are sent again.
      auto text = w.GetMeta(kPhoneKeysMeta);
      if (!text.ok()) return text.status();
      auto held = *text ? ParsePhoneKeys(**text) : std::vector<std::pair<int64_t, std::string>>();
      phone_keys = {{page.phone_key->key_id, page.phone_key->key}};
      for (const auto& k : held)
        if (k.first != page.phone_key->key_id && phone_keys.size() < 2) phone_keys.push_back(k);
      if (Status s = w.PutMeta(kPhoneKeysMeta, PhoneKeysJson(phone_keys).dump()); !s.ok()) return s;
    }
    return w.PutMeta(ledger::kSyncCursorKey, page.cursor);
  });
  if (s.ok() && !phone_keys.empty()) service_.SetPhoneKeys(phone_keys);
  // Every page's rules, read or not: the daemon puts readable ones in force and says once
  // which it cannot take (rules_refused).
  if (s.ok() && page.rules && on_rules_) on_rules_(*page.rules);
  return s;
}

Result<int64_t> SyncLocal::Restore(const sync::FetchResponse& fetched) {
  std::vector<ledger::EntryRow> rows;
  for (const auto& e : fetched.entries) rows.push_back({e, /*acked=*/true});  // HQ holds them
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.seq < b.seq; });
  int64_t added = 0;
  Status s = OnWriter([&](ledger::Ledger& w) -> Status {
    added = 0;
    for (const auto& c : fetched.checkouts)
      if (auto r = w.RestoreCheckout(c); !r.ok()) return r.status();
    for (const auto& f : fetched.refunds)
      if (auto r = w.RestoreRefund(f); !r.ok()) return r.status();
    for (const auto& e : rows) {
      auto r = w.RestoreEntry(e);
      if (!r.ok()) {
        if (r.status().code() == ErrorCode::kConflict)
          continue;  // reconciliation reports it as a mismatch
        return Status::Error(ErrorCode::kBadResponse, "fetch: " + r.status().message());
      }
      if (*r != ledger::RestoreOutcome::kPresent) ++added;
    }
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return added;
}

Result<int64_t> SyncLocal::RepairBalances(const sync::MembersResponse& members) {
  int64_t corrections = 0;
  int64_t validity = service_.rules()->points_validity_months;
  int64_t now_ms = service_.NowMs();
  Status s = OnWriter([&](ledger::Ledger& w) -> Status {
    corrections = 0;
    auto refused = ReadRefused(w);
    if (!refused.ok()) return refused.status();
    bool refused_changed = false;
    for (const auto& snap : members.members) {
      // The figure reconciliation compared: the balance without unacknowledged entries.
      auto terminal = ReconciledBalance(w, snap.member_id);
      if (!terminal.ok()) return terminal.status();
      if (Status s = ApplySnapshot(w, snap, tz_, validity); !s.ok()) return s;
      refused_changed |= refused->erase(snap.member_id) > 0;
      if (*terminal == snap.balance) continue;
      if (Status s = AppendCorrection(w, snap.member_id, *terminal, snap.balance, now_ms); !s.ok())
        return s;
      ++corrections;
    }
    if (refused_changed)
      if (Status s = WriteRefused(w, *refused); !s.ok()) return s;
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return corrections;
}

Status SyncLocal::AdoptMembers(const sync::MembersResponse& found) {
  int64_t validity = service_.rules()->points_validity_months;
  return OnWriter([&](ledger::Ledger& w) -> Status {
    for (const auto& snap : found.members)
      if (Status s = ApplySnapshot(w, snap, tz_, validity); !s.ok()) return s;
    if (found.identities) {
      for (const auto& id : *found.identities)
        if (Status s = w.PutIdentity(id.channel, id.external_id, id.member_id); !s.ok()) return s;
    }
    return Status::Ok();
  });
}

namespace {

constexpr char kReceiptSeedKey[] = "receipt_key_seed";  // hex of the 32-byte seed
constexpr char kReceiptCertKey[] = "receipt_key_cert";  // base64url of HQ's certificate
constexpr int64_t kRenewWithinS = 30 * 86400;

}  // namespace

Result<std::optional<std::string>> SyncLocal::ReceiptKeyToCertify(int64_t hq_now_s) {
  auto r = Reader();
  if (!r.ok()) return r.status();
  auto seed_hex = (*r)->GetMeta(kReceiptSeedKey);
  if (!seed_hex.ok()) return seed_hex.status();
  std::string seed;
  if (*seed_hex) {
    auto raw = HexDecode(**seed_hex);
    if (!raw || raw->size() != 32)
      return Status::Error(ErrorCode::kInternal, "the ledger's receipt key is damaged");
    seed = *raw;
  } else {
    seed = codes::NewReceiptKeySeed();
    if (seed.empty()) return Status::Error(ErrorCode::kInternal, "no random bytes for a key");
    if (Status s = OnWriter([&](ledger::Ledger& w) -> Status {
          // Another run may have made one meanwhile: keep the first.
          auto again = w.GetMeta(kReceiptSeedKey);
          if (!again.ok()) return again.status();
          if (*again) {
            auto raw = HexDecode(**again);
            if (raw && raw->size() == 32) seed = *raw;
            return Status::Ok();
          }
          return w.PutMeta(kReceiptSeedKey, HexEncode(seed));
        });
        !s.ok())
      return s;
  }
  const std::string pk = codes::ReceiptPublicKey(seed);
  auto cert_text = (*r)->GetMeta(kReceiptCertKey);
  if (!cert_text.ok()) return cert_text.status();
  if (*cert_text) {
    auto raw = Base64UrlDecode(**cert_text);
    auto c = raw ? codes::VerifyReceiptKeyCert(*raw, service_.hq_public_keys(), hq_now_s)
                 : Result<codes::ReceiptKeyCert>(Status::Error(ErrorCode::kCodeMalformed, ""));
    if (c.ok() && c->public_key == pk && c->terminal_id == opt_.terminal_id &&
        static_cast<int64_t>(c->not_after) - hq_now_s > kRenewWithinS)
      return std::optional<std::string>();
  }
  return std::optional<std::string>(pk);
}

Status SyncLocal::StoreReceiptKeyCert(const std::string& certificate, int64_t hq_now_s) {
  auto r = Reader();
  if (!r.ok()) return r.status();
  auto seed_hex = (*r)->GetMeta(kReceiptSeedKey);
  if (!seed_hex.ok()) return seed_hex.status();
  auto seed = *seed_hex ? HexDecode(**seed_hex) : std::nullopt;
  if (!seed || seed->size() != 32)
    return Status::Error(ErrorCode::kInternal, "the ledger has no receipt key");
  // What HQ sent is checked as any terminal will check it: HQ's key, this terminal, this key.
  auto c = codes::VerifyReceiptKeyCert(certificate, service_.hq_public_keys(), hq_now_s);
  if (!c.ok())
    return Status::Error(ErrorCode::kBadResponse, "receipt-key: " + c.status().message());
  if (c->terminal_id != opt_.terminal_id || c->public_key != codes::ReceiptPublicKey(*seed))
    return Status::Error(ErrorCode::kBadResponse,
                         "receipt-key: the certificate is of another terminal or key");
  if (Status s = OnWriter([&](ledger::Ledger& w) {
        return w.PutMeta(kReceiptCertKey, Base64UrlEncode(certificate));
      });
      !s.ok())
    return s;
  service_.SetReceiptKey(*seed, certificate);
  return Status::Ok();
}

Status SyncLocal::LoadReceiptKey(int64_t now_s) {
  auto r = Reader();
  if (!r.ok()) return r.status();
  auto seed_hex = (*r)->GetMeta(kReceiptSeedKey);
  if (!seed_hex.ok()) return seed_hex.status();
  auto cert_text = (*r)->GetMeta(kReceiptCertKey);
  if (!cert_text.ok()) return cert_text.status();
  if (!*seed_hex || !*cert_text) return Status::Ok();  // the next sync makes and certifies one
  auto seed = HexDecode(**seed_hex);
  auto cert = Base64UrlDecode(**cert_text);
  if (!seed || seed->size() != 32 || !cert) return Status::Ok();
  auto c = codes::VerifyReceiptKeyCert(*cert, service_.hq_public_keys(), now_s);
  if (!c.ok() || c->terminal_id != opt_.terminal_id ||
      c->public_key != codes::ReceiptPublicKey(*seed))
    return Status::Ok();  // expired or of another key: the next sync renews it
  service_.SetReceiptKey(*seed, *cert);
  return Status::Ok();
}

Result<std::vector<uint64_t>> SyncLocal::Evict(const std::vector<uint64_t>& member_ids) {
  std::vector<uint64_t> dropped;
  Status s = OnWriter([&](ledger::Ledger& w) -> Status {
    dropped.clear();
    auto refused = ReadRefused(w);
    if (!refused.ok()) return refused.status();
    bool refused_changed = false;
    for (uint64_t id : member_ids) {
      auto gone = w.DropMember(id);
      if (!gone.ok()) return gone.status();
      if (!*gone) continue;
      dropped.push_back(id);
      refused_changed |= refused->erase(id) > 0;
    }
    if (refused_changed) return WriteRefused(w, *refused);
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return dropped;
}

ledger::SyncRunRow ToSyncRunRow(const sync::RunRecord& r) {
  ledger::SyncRunRow row;
  row.run_id = r.run_id;
  row.started_at_ms = r.started_at_ms;
  row.finished_at_ms = r.finished_at_ms;
  row.result = r.result;
  row.uploaded = r.uploaded;
  row.downloaded = r.downloaded;
  row.repaired = r.repaired;
  row.conflicts = r.conflicts;
  row.round_trips = r.round_trips;
  row.bytes_sent = r.bytes_sent;
  row.bytes_received = r.bytes_received;
  row.error = r.error;
  return row;
}

Status SyncLocal::RecordRun(const sync::RunRecord& r) {
  ledger::SyncRunRow row = ToSyncRunRow(r);
  return OnWriter([&](ledger::Ledger& w) { return w.PutSyncRun(row); });
}

Status SyncLocal::ConfirmMembers(int64_t hq_time_s) {
  // The month HQ's time is in (store local time): spends of snapshots from before it are
  // an earlier month's, not this one's.
  const CivilTime now = tz_.ToLocal(hq_time_s);
  const int64_t month_start_s = tz_.FromLocal({now.year, now.month, 1, 0, 0, 0});
  return OnWriter([&](ledger::Ledger& w) {
    if (Status s = w.ForgetSpendsBefore(month_start_s); !s.ok()) return s;
    return w.ConfirmMembers(hq_time_s);
  });
}

Status SyncLocal::Finish() {
  return OnWriter([](ledger::Ledger& w) { return w.FlushReconIndex(); });
}

}  // namespace loyalty::agent
