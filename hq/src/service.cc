// HQ's decisions: what an upload means for chains, members and conflicts; what a terminal
// may see of a member; the admin API. Every request that writes runs in one Store
// transaction, so a failure leaves nothing half done and every route can be retried.
#include "loyalty/hq/service.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <cstdio>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <tuple>

#include "loyalty/base/encoding.h"
#include "loyalty/base/hash.h"
#include "loyalty/base/ids.h"
#include "loyalty/base/json.h"
#include "loyalty/base/time.h"
#include "loyalty/codes/codes.h"
#include "loyalty/codes/mint.h"
#include "loyalty/hq/lots.h"
#include "loyalty/http/errors.h"
#include "loyalty/model/entry.h"
#include "loyalty/model/sale.h"
#include "loyalty/recon/protocol.h"
#include "loyalty/rules/rules.h"

namespace loyalty::hq {
namespace {

using nlohmann::json;
using sync::Dump;


http::Response JsonResponse(int status, const json& body) {
  http::Response r;
  r.status = status;
  r.body = Dump(body);
  return r;
}

http::Response Error(ErrorCode code, std::string_view message) { return http::JsonError(code, message); }

// A Status from the service or the store as the contract's HTTP answer.
http::Response FromStatus(const Status& s) { return http::ErrorResponse(s); }

Status BadRequest(std::string message) { return Status::Error(ErrorCode::kBadRequest, std::move(message)); }


// The reason of a terminal's freeze entry as HQ keeps and sends it: a short snake_case word
// (within the limits table), "velocity" for anything else.
std::string FreezeReason(const std::string& detail) {
  auto d = sync::ParseJsonObject(detail);
  if (d.ok()) {
    auto it = d->find("reason");
    if (it != d->end() && it->is_string()) {
      const auto& r = it->get_ref<const std::string&>();
      bool ok = !r.empty() && r.size() <= sync::kMaxReasonBytes &&
                std::all_of(r.begin(), r.end(), [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; });
      if (ok) return r;
    }
  }
  return "velocity";
}

// balance + points, when the sum neither overflows nor leaves the limits table's ±kMaxPoints.
std::optional<int64_t> BalanceAfter(int64_t balance, int64_t points) {
  int64_t after = 0;
  if (__builtin_add_overflow(balance, points, &after) || after > sync::kMaxPoints || after < -sync::kMaxPoints) {
    return std::nullopt;
  }
  return after;
}

int TierRank(const std::string& t) { return t == "black" ? 2 : t == "vip" ? 1 : 0; }

int64_t FloorDiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

json ConflictJson(const ConflictRecord& c) {
  auto parsed = ParseJsonObject(c.detail);
  json detail = parsed.ok() ? std::move(*parsed) : json::object();
  return json{{"kind", c.kind}, {"at", FormatRfc3339(FloorDiv(c.at_ms, 1000))}, {"detail", detail}};
}

// --- small readers for admin bodies (the sync messages have their own codecs)
struct Body {
  const json& j;
  Status status;

  const json* Get(const char* key, bool required) {
    if (!status.ok()) return nullptr;
    auto it = j.find(key);
    if (it == j.end() || (!required && it->is_null())) {
      if (required) status = BadRequest(std::string(key) + " is missing");
      return nullptr;
    }
    return &*it;
  }
  std::optional<std::string> Str(const char* key, bool required, size_t min_len, size_t max_len) {
    const json* v = Get(key, required);
    if (!v) return std::nullopt;
    if (!v->is_string()) {
      status = BadRequest(std::string(key) + " must be a string");
      return std::nullopt;
    }
    const auto& s = v->get_ref<const std::string&>();
    if (s.size() < min_len || s.size() > max_len) {
      status = BadRequest(std::string(key) + " must be " + std::to_string(min_len) + ".." + std::to_string(max_len) +
                          " bytes");
      return std::nullopt;
    }
    return s;
  }
  std::optional<int64_t> Int(const char* key, bool required, int64_t min, int64_t max) {
    const json* v = Get(key, required);
    if (!v) return std::nullopt;
    if (!v->is_number_integer() || (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(max))) {
      status = BadRequest(std::string(key) + " must be an integer " + std::to_string(min) + ".." + std::to_string(max));
      return std::nullopt;
    }
    int64_t x = v->get<int64_t>();
    if (x < min || x > max) {
      status = BadRequest(std::string(key) + " must be " + std::to_string(min) + ".." + std::to_string(max));
      return std::nullopt;
    }
    return x;
  }
  // A member id as a decimal string (the protocol's form) or a JSON integer.
  std::optional<uint64_t> MemberId(const char* key, bool required) {
    const json* v = Get(key, required);
    if (!v) return std::nullopt;
    std::optional<uint64_t> id;
    if (v->is_string()) id = sync::ParseMemberId(v->get_ref<const std::string&>());
    else if (v->is_number_unsigned()) id = v->get<uint64_t>();
    else if (v->is_number_integer() && v->get<int64_t>() >= 0) id = static_cast<uint64_t>(v->get<int64_t>());
    if (!id) status = BadRequest(std::string(key) + " must be a decimal member id");
    return id;
  }
  // Unix seconds as an integer, or an RFC 3339 string.
  std::optional<int64_t> Time(const char* key, bool required) {
    const json* v = Get(key, required);
    if (!v) return std::nullopt;
    if (v->is_string()) {
      if (auto t = ParseRfc3339(v->get_ref<const std::string&>())) return t;
    } else if (v->is_number_integer() && !v->is_number_unsigned()) {
      return v->get<int64_t>();
    } else if (v->is_number_unsigned() && v->get<uint64_t>() < (uint64_t{1} << 40)) {
      return static_cast<int64_t>(v->get<uint64_t>());
    }
    status = BadRequest(std::string(key) + " must be unix seconds or an RFC 3339 time");
    return std::nullopt;
  }
};

}  // namespace

struct HqService::Impl {
  Store& store;
  const Clock& clock;
  PiiCipher pii;
  HqOptions opt;

  rules::Rules current;  // the chain's current rules (opt.rules or the defaults)
  // The checkouts the upload being applied stored (new to HQ), with their verdicts and the
  // entries of each kind applied for them so far: no entry before this upload can name one
  // (valid during Upload).
  struct BatchCheckout {
    const sync::Checkout* checkout = nullptr;
    bool refused = false;
    std::map<std::string, int64_t> applied;  // by kind
  };
  std::map<std::string, BatchCheckout> batch_checkouts;
  // The earliest at_ms of the upload's own freeze and tier_upgrade entries, by (member,
  // kind): the checkouts are judged before the entries are stored, and a sale after the
  // terminal's freeze in the same upload was priced frozen (valid during Upload).
  std::map<std::pair<uint64_t, std::string>, int64_t> batch_first_entry;
  // (checkout_id, refund_id) -> the lowest seq of the upload's own entries naming the refund
  // (valid during Upload).
  std::map<std::pair<std::string, std::string>, int64_t> batch_refund_seq;
  std::map<std::string, std::shared_ptr<const rules::Rules>> versions;  // published, by version
  bool published = false;

  Impl(Store& s, const Clock& c, PiiCipher p, HqOptions o)
      : store(s), clock(c), pii(std::move(p)), opt(std::move(o)), current(opt.rules.value_or(rules::Rules::Defaults())) {}

  void Report(const char* event, const json& fields) {
    if (opt.on_event) opt.on_event(event, fields);
  }

  // ------------------------------------------------------------------ rules versions

  // Stores the current version with its content once; a version is immutable.
  Status PublishRules() {
    if (published) return Status::Ok();
    const std::string text = Dump(rules::RulesToJson(current));
    if (current.version == "default" && !(current == rules::Rules::Defaults())) {
      return Status::Error(ErrorCode::kConfigInvalid,
                           "rules version \"default\" names the defaults of loyalty-rules.md; give changed rules "
                           "another version");
    }
    Status s = store.Transaction([&]() -> Status {
      auto prior = store.GetMeta("rules:" + current.version);
      if (!prior.ok()) return prior.status();
      if (*prior && **prior != text) {
        return Status::Error(ErrorCode::kConfigInvalid, "rules version \"" + current.version +
                                                   "\" was published before with other values; give the changed "
                                                   "rules a new version");
      }
      if (!*prior) {
        if (Status s = store.PutMeta("rules:" + current.version, text); !s.ok()) return s;
      }
      return store.PutMeta("rules_current", current.version);
    });
    if (!s.ok()) return s;
    versions[current.version] = std::make_shared<const rules::Rules>(current);
    published = true;
    return Status::Ok();
  }

  // A version HQ published (or "default"); nullptr for one it never did.
  Result<std::shared_ptr<const rules::Rules>> RulesVersion(const std::string& v) {
    if (auto it = versions.find(v); it != versions.end()) return it->second;
    std::shared_ptr<const rules::Rules> found;
    if (v == "default") {
      found = std::make_shared<const rules::Rules>(rules::Rules::Defaults());
    } else {
      auto text = store.GetMeta("rules:" + v);
      if (!text.ok()) return text.status();
      if (!*text) return found;
      auto j = sync::ParseJsonObject(**text);
      if (!j.ok()) return Status::Error(ErrorCode::kInternal, "stored rules " + v + ": " + j.status().message());
      auto r = rules::RulesFromJson(*j);
      if (!r.ok()) return Status::Error(ErrorCode::kInternal, "stored rules " + v + ": " + r.status().message());
      found = std::make_shared<const rules::Rules>(std::move(*r));
    }
    versions[v] = found;
    return found;
  }

  int64_t UtcOffset(int64_t t) const { return opt.timezone.UtcOffsetAt(t); }

  // [start, end) of the local calendar month holding now_s, in unix ms.
  std::pair<int64_t, int64_t> MonthBounds(int64_t now_s) const {
    CivilTime l = opt.timezone.ToLocal(now_s);
    CivilTime start{l.year, l.month, 1, 0, 0, 0};
    CivilTime next{l.month == 12 ? l.year + 1 : l.year, l.month == 12 ? 1 : l.month + 1, 1, 0, 0, 0};
    return {opt.timezone.FromLocal(start) * 1000, opt.timezone.FromLocal(next) * 1000};
  }

  // ------------------------------------------------------------------ one write's members
  // A write transaction (Write) reads each member it touches once and keeps it here while
  // its checks and entries change it; each changed member's row, change_seq and balance-set
  // item are written once, when the body has succeeded, in the order of their last change
  // (a checkout and its earn entry used to read the member five times and write it twice).
  // What the checks read of a member's history — lots, recorded states, the uploading
  // terminal's first freeze and upgrade, its downloads — is read once per write too, and
  // every write the transaction makes to those goes through here and keeps them current,
  // so each answer is the one the store would give at that point. A failed body rolls the
  // transaction back and drops all of it; nothing outlives the transaction.
  struct MemberSlot {
    std::optional<MemberRecord> m;  // nullopt: HQ has no such member (yet)
    bool write = false;    // UpdateMember at the end
    bool touch = false;    // else TouchMember at the end
    bool balance = false;  // UpsertBalance at the end
    uint64_t order = 0;    // the last write or touch
    std::optional<std::vector<model::Lot>> lots;  // as Store::Lots: remaining != 0, by expiry, lot id
    std::optional<std::vector<MemberStateRecord>> states;  // as Store::MemberStateHistory
    // (terminal, kind) -> Store::FirstTerminalEntryAt
    std::map<std::pair<std::string, std::string>, std::optional<int64_t>> first_entry_at;
  };
  struct DownloadSpan {  // every moment in [last or -inf, next or +inf) has `last` as its last download
    std::optional<int64_t> last, next;
  };
  struct WriteCache {
    std::map<uint64_t, MemberSlot> members;
    uint64_t changes = 0;
    std::map<std::string, std::vector<DownloadSpan>> downloads;  // by terminal
  };
  std::unique_ptr<WriteCache> tx;  // the open write's; nullptr outside one

  // Runs body in one store transaction with a fresh member cache, and writes the members it
  // changed before the commit. Every transaction that changes a member runs through here.
  Status Write(const std::function<Status()>& body) {
    return store.Transaction([&]() -> Status {
      struct Reset {
        std::unique_ptr<WriteCache>& p;
        ~Reset() { p.reset(); }
      } reset{tx};
      tx = std::make_unique<WriteCache>();
      if (Status s = body(); !s.ok()) return s;
      return FlushMembers();
    });
  }

  Status FlushMembers() {
    std::vector<std::pair<uint64_t, MemberSlot*>> dirty;
    for (auto& [id, slot] : tx->members) {
      if (slot.write || slot.touch || slot.balance) dirty.emplace_back(slot.order, &slot);
    }
    std::sort(dirty.begin(), dirty.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& [order, slot] : dirty) {
      if (!slot->m) continue;  // a touch of a member HQ does not have changes nothing
      if (slot->write) {
        if (Status s = store.UpdateMember(*slot->m); !s.ok()) return s;
      } else if (slot->touch) {
        if (Status s = store.TouchMember(slot->m->member_id); !s.ok()) return s;
      }
      if (slot->balance) {
        if (Status s = store.UpsertBalance(slot->m->member_id, slot->m->balance); !s.ok()) return s;
      }
    }
    return Status::Ok();
  }

  // Writes the changed members now and drops what the write had read of every member (a
  // long job that goes through many members keeps none of them).
  Status Forget() {
    if (Status s = FlushMembers(); !s.ok()) return s;
    tx->members.clear();
    return Status::Ok();
  }

  static Status NoWrite() { return Status::Error(ErrorCode::kInternal, "a member change outside a write transaction"); }

  // The member as the open write sees it, read on first use.
  Result<MemberSlot*> Slot(uint64_t member_id) {
    if (!tx) return NoWrite();
    if (auto it = tx->members.find(member_id); it != tx->members.end()) return &it->second;
    auto m = store.GetMember(member_id);
    if (!m.ok()) return m.status();
    MemberSlot& slot = tx->members[member_id];
    slot.m = std::move(*m);
    return &slot;
  }

  Result<MemberSlot*> MemberOrBare(uint64_t member_id) {
    auto slot = Slot(member_id);
    if (!slot.ok() || (*slot)->m) return slot;
    // A terminal knows a member HQ has no row for only through a dynamic code HQ signed
    // (or a database from elsewhere): keep its points anyway, under a bare member.
    MemberRecord bare;
    bare.member_id = member_id;
    bare.created_at_ms = clock.now_ms();
    if (Status s = store.InsertMember(bare); !s.ok()) return s;
    (*slot)->m = bare;
    if (Status s = AddState(**slot, bare.created_at_ms, bare.tier, bare.status); !s.ok()) return s;
    return slot;
  }

  // Saves a member whose tier or status may have changed, recording the new state with
  // HQ's time (what a terminal could have known is judged from these).
  Status SaveMember(const MemberRecord& m, const std::string& old_tier, const std::string& old_status) {
    auto slot = Slot(m.member_id);
    if (!slot.ok()) return slot.status();
    MemberSlot& s = **slot;
    if (!s.m || &*s.m != &m) s.m = m;
    s.write = true;
    s.order = ++tx->changes;
    if (m.tier == old_tier && m.status == old_status) return Status::Ok();
    return AddState(s, clock.now_ms(), m.tier, m.status);
  }

  // Gives the member a new change_seq at the end of the write (it will be in the next page).
  Status Touch(uint64_t member_id) {
    auto slot = Slot(member_id);
    if (!slot.ok()) return slot.status();
    (*slot)->touch = true;
    (*slot)->order = ++tx->changes;
    return Status::Ok();
  }

  Status AddState(MemberSlot& s, int64_t at_ms, const std::string& tier, const std::string& status) {
    if (Status st = store.AddMemberState(s.m->member_id, at_ms, tier, status); !st.ok()) return st;
    if (s.states) {
      auto at = std::upper_bound(s.states->begin(), s.states->end(), at_ms,
                                 [](int64_t t, const MemberStateRecord& r) { return t < r.at_ms; });
      s.states->insert(at, MemberStateRecord{at_ms, tier, status});
    }
    return Status::Ok();
  }

  // (tier, status) pairs in effect at any time in [from_ms, to_ms]: the one in effect at
  // from_ms (the latest recorded at or before it, by time, then as recorded) and every later
  // one up to to_ms. Empty when none was recorded.
  Result<std::vector<std::pair<std::string, std::string>>> StatesBetween(MemberSlot& s, uint64_t member_id,
                                                                         int64_t from_ms, int64_t to_ms) {
    if (!s.states) {
      auto h = store.MemberStateHistory(member_id);
      if (!h.ok()) return h.status();
      s.states = std::move(*h);
    }
    int64_t base = 0;
    for (const auto& r : *s.states) {
      if (r.at_ms > from_ms) break;
      base = r.at_ms;
    }
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& r : *s.states) {
      if (r.at_ms > to_ms) break;
      if (r.at_ms >= base) out.emplace_back(r.tier, r.status);
    }
    return out;
  }

  // Whether the terminal had written an entry of this kind for the member by at_ms: stored,
  // or in the upload being applied.
  Result<bool> TerminalEntryBy(MemberSlot& s, const std::string& tid, uint64_t member_id, const std::string& kind,
                               int64_t at_ms) {
    if (auto b = batch_first_entry.find({member_id, kind}); b != batch_first_entry.end() && b->second <= at_ms) {
      return true;
    }
    auto key = std::make_pair(tid, kind);
    auto it = s.first_entry_at.find(key);
    if (it == s.first_entry_at.end()) {
      auto first = store.FirstTerminalEntryAt(tid, member_id, kind);
      if (!first.ok()) return first.status();
      it = s.first_entry_at.emplace(key, *first).first;
    }
    return it->second && *it->second <= at_ms;
  }

  // Every entry stored in a write goes through here (the first-entry times stay current).
  Status InsertEntry(const sync::Entry& e, bool applied, int64_t received_at_ms) {
    if (Status s = store.InsertEntry(e, applied, received_at_ms); !s.ok()) return s;
    if (!tx) return Status::Ok();
    auto slot = tx->members.find(e.member_id);
    if (slot == tx->members.end()) return Status::Ok();
    auto it = slot->second.first_entry_at.find({e.terminal_id, e.kind});
    if (it != slot->second.first_entry_at.end() && (!it->second || e.at_ms < *it->second)) it->second = e.at_ms;
    return Status::Ok();
  }

  // The terminal's last download at or before at_ms (downloads never happen inside a write).
  Result<std::optional<int64_t>> LastDownload(const std::string& tid, int64_t at_ms) {
    std::vector<DownloadSpan>* spans = tx ? &tx->downloads[tid] : nullptr;
    if (spans) {
      for (const auto& d : *spans) {
        if ((!d.last || *d.last <= at_ms) && (!d.next || at_ms < *d.next)) return d.last;
      }
    }
    auto d = store.DownloadsAround(tid, at_ms);
    if (!d.ok()) return d.status();
    if (spans) spans->push_back({d->at_or_before, d->after});
    return d->at_or_before;
  }

  Result<std::vector<model::Lot>*> LotsOf(MemberSlot& s, uint64_t member_id) {
    if (!s.lots) {
      auto lots = store.Lots(member_id);
      if (!lots.ok()) return lots.status();
      s.lots = std::move(*lots);
    }
    return &*s.lots;
  }

  Status SetLot(MemberSlot& s, int64_t lot_id, int64_t remaining) {
    if (Status st = store.SetLotRemaining(lot_id, remaining); !st.ok()) return st;
    if (s.lots) {
      auto it = std::find_if(s.lots->begin(), s.lots->end(), [&](const model::Lot& l) { return l.lot_id == lot_id; });
      if (it != s.lots->end()) {
        if (remaining == 0) s.lots->erase(it);
        else it->remaining = remaining;
      }
    }
    return Status::Ok();
  }

  Status AddLot(MemberSlot& s, model::Lot lot) {
    auto id = store.AddLot(lot);
    if (!id.ok()) return id.status();
    lot.lot_id = *id;
    if (s.lots && lot.remaining != 0) {
      auto at = std::upper_bound(s.lots->begin(), s.lots->end(), lot, [](const model::Lot& a, const model::Lot& b) {
        return a.expires_at_s != b.expires_at_s ? a.expires_at_s < b.expires_at_s : a.lot_id < b.lot_id;
      });
      s.lots->insert(at, std::move(lot));
    }
    return Status::Ok();
  }

  // Σ total due of the member's checkouts in the local month holding now_s, net of refunds.
  Result<int64_t> MonthSpend(uint64_t member_id, int64_t now_s) {
    auto [from, to] = MonthBounds(now_s);
    return store.MemberSpend(member_id, from, to);
  }

  std::string TierForSpend(int64_t spend) const {
    if (spend >= current.black_threshold_cents) return "black";
    if (spend >= current.vip_threshold_cents) return "vip";
    return "member";
  }

  // The write's lots through its member slot (the store, with the slot's copy kept in
  // step), as hq::MoveLots reads and writes them.
  struct SlotLots {
    Impl& impl;
    MemberSlot& slot;
    Result<std::vector<model::Lot>> Lots(uint64_t member_id) {
      auto held = impl.LotsOf(slot, member_id);
      if (!held.ok()) return held.status();
      return **held;
    }
    Result<std::vector<model::Lot>> DebtLots(uint64_t member_id) {
      if (!slot.lots) return impl.store.DebtLots(member_id);
      std::vector<model::Lot> debts;
      for (const auto& l : *slot.lots)
        if (l.remaining < 0) debts.push_back(l);
      return debts;
    }
    Status SetLotRemaining(int64_t lot_id, int64_t remaining) { return impl.SetLot(slot, lot_id, remaining); }
    Result<int64_t> AddLot(const model::Lot& lot) {
      if (Status s = impl.AddLot(slot, lot); !s.ok()) return s;
      return int64_t{0};  // MoveLots needs no id
    }
  };

  // Whether the member's balance can take `points` within the limits table.
  Result<bool> BalanceCanTake(uint64_t member_id, int64_t points) {
    auto slot = Slot(member_id);
    if (!slot.ok()) return slot.status();
    return BalanceAfter((*slot)->m ? (*slot)->m->balance : 0, points).has_value();
  }

  // Counts an entry's points into the member's balance and lots, and its status effects.
  Status ApplyEntry(const sync::Entry& e) {
    auto slot = MemberOrBare(e.member_id);
    if (!slot.ok()) return slot.status();
    MemberRecord& m = *(*slot)->m;
    const std::string old_tier = m.tier, old_status = m.status;
    std::optional<int64_t> after = BalanceAfter(m.balance, e.points);
    if (!after) {
      return Status::Error(ErrorCode::kBadRequest, "the balance of member " + std::to_string(e.member_id) +
                                              " would leave the limits (|balance| <= 10^15)");
    }
    int64_t at_s = FloorDiv(e.at_ms, 1000);
    if (e.kind != "expire") {  // expire entries empty specific lots themselves
      const int64_t expires =
          e.points > 0
              ? rules::LotExpiry(at_s, current.points_validity_months, [this](int64_t t) { return UtcOffset(t); })
              : 0;
      SlotLots lots{*this, **slot};
      if (Status s = MoveLots(lots, e.member_id, e.points, at_s, expires, e.entry_id); !s.ok()) return s;
    }
    m.balance = *after;
    // A terminal's velocity freeze stands unless HQ lifted a freeze after it.
    if (e.kind == "freeze" && e.at_ms > m.unfrozen_at_ms) {
      m.status = "frozen";
      m.frozen_reason = FreezeReason(e.detail);
    }
    (*slot)->balance = true;
    return SaveMember(m, old_tier, old_status);
  }

  // Appends one of HQ's own entries to its chain (not applied: the caller does that).
  Result<sync::Entry> AppendHqEntry(const std::string& kind, uint64_t member_id, int64_t points, const json& detail) {
    auto head = store.HqHead();
    if (!head.ok()) return head.status();
    sync::Entry e;
    int64_t now = clock.now_ms();
    e.entry_id = NewEntryId(now);
    e.terminal_id = kHqTerminalId;
    e.seq = head->first + 1;
    e.kind = kind;
    e.member_id = member_id;
    e.points = points;
    e.at_ms = now;
    e.detail = detail.is_null() ? "" : Dump(detail);
    e.prev_hash = head->second;
    e.hash = model::EntryHash(e);
    if (Status s = InsertEntry(e, true, now); !s.ok()) return s;
    return e;
  }

  Result<sync::Snapshot> Snapshot(const MemberRecord& m, int64_t terminal_seq) {
    sync::Snapshot s;
    s.member_id = m.member_id;
    s.display_name = m.display_name;
    s.phone = m.phone_masked;
    s.phone_hash = m.phone_hash;
    s.tier = m.tier;
    s.status = m.status;
    s.frozen_reason = m.frozen_reason;
    s.birthday_month = m.birthday_month;
    s.balance = m.balance;
    auto lots = store.Lots(m.member_id);
    if (!lots.ok()) return lots.status();
    for (const auto& l : *lots) s.lots.push_back({l.remaining, l.expires_at_s});
    int64_t now_s = clock.now_s();
    auto spend = MonthSpend(m.member_id, now_s);
    if (!spend.ok()) return spend.status();
    s.month_spend_cents = std::clamp<int64_t>(*spend, 0, sync::kMaxSpendCents);
    s.unfrozen_at_ms = m.unfrozen_at_ms;
    s.snapshot_at_s = now_s;
    s.terminal_seq = terminal_seq;
    return s;
  }

  Status Conflict(const std::string& kind, const std::string& tid, const std::string& other, uint64_t member,
                  const json& detail, const std::string& key) {
    return store.AddConflict({kind, clock.now_ms(), tid, other, member, Dump(detail), kind + ":" + key});
  }

  // Tier upgrade when this month's spend reaches a threshold (HQ never downgrades mid-month).
  Status MaybeUpgradeTier(uint64_t member_id) {
    auto slot = Slot(member_id);
    if (!slot.ok()) return slot.status();
    if (!(*slot)->m) return Status::Ok();
    auto spend = MonthSpend(member_id, clock.now_s());
    if (!spend.ok()) return spend.status();
    std::string target = TierForSpend(*spend);
    MemberRecord& m = *(*slot)->m;
    if (TierRank(target) <= TierRank(m.tier)) return Touch(member_id);
    const std::string old_tier = m.tier;
    m.tier = target;
    return SaveMember(m, old_tier, m.status);
  }

  // ------------------------------------------------------------------ terminal routes

  Result<TerminalRecord> TouchTerminal(const std::string& tid, const std::string* store_id) {
    auto t = store.GetTerminal(tid);
    if (!t.ok()) return t.status();
    TerminalRecord r = *t ? **t : TerminalRecord{tid, "", clock.now_ms(), 0, 0, ""};
    if (store_id) r.store_id = *store_id;
    r.last_sync_ms = clock.now_ms();
    if (Status s = store.PutTerminal(r); !s.ok()) return s;
    return r;
  }

  http::Response Hello(const std::string& tid, const http::Request& req) {
    auto h = sync::ParseMessage<sync::HelloRequest>(req.body);
    if (!h.ok()) return FromStatus(h.status());
    sync::HelloResponse out;
    Status s = store.Transaction([&]() -> Status {
      auto before = store.GetTerminal(tid);
      if (!before.ok()) return before.status();
      auto n = store.CountEntries(tid);
      if (!n.ok()) return n.status();
      auto t = TouchTerminal(tid, &h->store_id);
      if (!t.ok()) return t.status();
      out.hq_time_ms = clock.now_ms();
      out.terminal_known = before->has_value() || *n > 0;
      out.hq_entries = *n;
      out.hq_head = {t->head_seq, t->head_seq > 0 ? t->head_hash : ""};
      return Status::Ok();
    });
    if (!s.ok()) return FromStatus(s);
    return JsonResponse(200, sync::ToJson(out));
  }


  // ------------------------------------------------------------------ what HQ trusts
  // An upload is believed only as far as HQ can check it (hq-and-sync.md, "What HQ
  // trusts"). Each Check* returns "" when the record checks out, else the reason it is
  // refused; a failed read is an error (the upload fails and is retried), never a pass.

  // Every (tier, frozen) state the terminal could have priced the member with at commit_ms:
  // the states HQ recorded between the terminal's last download at or before the commit and
  // the commit (its snapshot, or what HQ had by then), a provisional member when the
  // terminal had no snapshot of it yet, frozen after this terminal's own velocity freeze,
  // and higher tiers after its own provisional upgrade where the rules allow one.
  Result<std::vector<std::pair<std::string, bool>>> CandidateStates(const std::string& tid, uint64_t member_id,
                                                                     int64_t commit_ms, const rules::Rules& r,
                                                                     MemberSlot& slot) {
    const std::optional<MemberRecord>& m = slot.m;
    auto d = LastDownload(tid, commit_ms);
    if (!d.ok()) return d.status();
    int64_t from = d->value_or(commit_ms);
    auto states = StatesBetween(slot, member_id, from, std::max(from, commit_ms));
    if (!states.ok()) return states.status();
    std::set<std::pair<std::string, bool>> out;
    for (const auto& [tier, status] : *states) out.insert({tier, status == "frozen"});
    if (states->empty() && m) out.insert({m->tier, m->status == "frozen"});
    if (!*d || !m || m->created_at_ms > **d) out.insert({"member", false});
    auto froze = TerminalEntryBy(slot, tid, member_id, "freeze", commit_ms);
    if (!froze.ok()) return froze.status();
    auto upgraded = TerminalEntryBy(slot, tid, member_id, "tier_upgrade", commit_ms);
    if (!upgraded.ok()) return upgraded.status();
    std::set<std::pair<std::string, bool>> more = out;
    for (const auto& [tier, frozen] : out) {
      if (*froze) more.insert({tier, true});
      if (*upgraded && r.provisional_upgrade) {
        for (const char* t : {"vip", "black"}) {
          if (TierRank(t) > TierRank(tier)) {
            more.insert({t, frozen});
            if (*froze) more.insert({t, true});
          }
        }
      }
    }
    return std::vector<std::pair<std::string, bool>>(more.begin(), more.end());
  }

  static bool SamePricing(const rules::Quote& q, const sync::Checkout& c) {
    if (q.subtotal_cents != c.subtotal_cents || q.total_due_cents != c.total_due_cents ||
        q.points_to_earn != c.points_earned || q.redeem_points != c.redeemed_points ||
        q.eligible_cents != c.eligible_cents || q.redeemable_cents != c.redeemable_cents ||
        q.lines.size() != c.lines.size()) {
      return false;
    }
    for (size_t i = 0; i < q.lines.size(); ++i) {
      const auto& a = q.lines[i];
      const auto& b = c.lines[i];
      if (a.tier_discount_cents != b.tier_discount_cents || a.coupon_cents != b.coupon_cents ||
          a.redeem_cents != b.redeem_cents || a.net_cents != b.net_cents ||
          a.net_before_redeem_cents != b.net_before_redeem_cents || a.points_eligible != b.points_eligible ||
          a.redeemable != b.redeemable) {
        return false;
      }
    }
    return true;
  }

  // Prices the checkout again with the rules version it names, every state the member could
  // have been in, and the member's birthday month.
  Result<std::string> CheckCheckout(const std::string& tid, const sync::Checkout& c) {
    if (!c.member_id) {
      if (c.points_earned != 0 || c.redeemed_points != 0 || !c.coupon_id.empty()) return std::string("no_member");
      return std::string();
    }
    auto rv = RulesVersion(c.rules_version);
    if (!rv.ok()) return rv.status();
    if (!*rv) return std::string("rules_version_unknown");
    const rules::Rules& r = **rv;
    rules::QuoteInput in;
    for (size_t i = 0; i < c.lines.size(); ++i) {
      const auto& l = c.lines[i];
      if (l.line != static_cast<int64_t>(i)) return std::string("record_malformed");
      in.lines.push_back({l.sku, l.qty, l.unit_price_cents, l.category});
    }
    if (!c.coupon_id.empty()) {
      auto rec = store.GetCoupon(c.coupon_id);
      if (!rec.ok()) return rec.status();
      if (!*rec) return std::string("coupon_unknown");
      const auto& k = (*rec)->coupon;
      if (k.member_id != 0 && k.member_id != *c.member_id) return std::string("coupon_not_for_member");
      rules::Coupon coupon;
      coupon.coupon_id = k.coupon_id;
      coupon.kind = k.kind == "percent_off" ? rules::Coupon::Kind::kPercentOff : rules::Coupon::Kind::kAmountOff;
      coupon.value_cents = k.value_cents;
      coupon.bp = k.bp;
      coupon.min_spend_cents = k.min_spend_cents;
      in.coupon = coupon;
    }
    in.redeem.points = c.redeemed_points;
    auto slot = Slot(*c.member_id);
    if (!slot.ok()) return slot.status();
    auto states = CandidateStates(tid, *c.member_id, c.committed_at_ms, r, **slot);
    if (!states.ok()) return states.status();
    // The store's calendar may differ from the chain's: a birthday month counts if it is
    // the month at the commit anywhere from UTC-12 to UTC+14.
    std::set<bool> birthdays{false};
    int bm = (*slot)->m ? (*slot)->m->birthday_month : 0;
    int64_t at_s = FloorDiv(c.committed_at_ms, 1000);
    for (int64_t off : {-12 * 3600, 14 * 3600}) {
      if (rules::IsBirthdayMonth(bm, at_s, [off](int64_t) { return off; })) birthdays.insert(true);
    }
    for (const auto& [tier, frozen] : *states) {
      for (bool birthday : birthdays) {
        rules::MemberContext ctx;
        ctx.tier = tier;
        ctx.frozen = frozen;
        ctx.static_identification = c.code_hash.empty();
        ctx.available_balance = sync::kMaxPoints;  // the balance is checked with the redeem entry
        ctx.birthday_month = birthday;
        in.member = ctx;
        auto q = rules::ComputeQuote(r, in);
        if (q.ok() && SamePricing(*q, c)) return std::string();
      }
    }
    return std::string("price_mismatch");
  }

  // The order refunds of one checkout were made in: by time, then, within a millisecond,
  // by their place in the terminal's chain (the lowest seq of their clawback or restore,
  // stored or in this upload), as the terminal computed each against the ones before it;
  // a refund that moved no points is not in the chain and comes after, then by id.
  using RefundOrder = std::tuple<int64_t, int64_t, std::string>;
  Result<std::map<std::string, int64_t>> RefundSeqs(const std::string& tid, const std::string& checkout_id) {
    auto seqs = store.RefundEntrySeqs(tid, checkout_id);
    if (!seqs.ok()) return seqs.status();
    for (auto it = batch_refund_seq.lower_bound({checkout_id, ""});
         it != batch_refund_seq.end() && it->first.first == checkout_id; ++it) {
      auto [at, fresh] = seqs->emplace(it->first.second, it->second);
      if (!fresh) at->second = std::min(at->second, it->second);
    }
    return seqs;
  }
  static RefundOrder OrderOf(const sync::Refund& r, const std::map<std::string, int64_t>& seqs) {
    auto it = seqs.find(r.refund_id);
    return {r.at_ms, it == seqs.end() ? std::numeric_limits<int64_t>::max() : it->second, r.refund_id};
  }

  // A refund: of a checkout HQ accepted, within the window, no more units than were sold,
  // and amounts that follow from the checkout and the refunds before it.
  Result<std::string> CheckRefund(const std::string& tid, const sync::Refund& f) {
    auto verdict = store.CheckoutRefused(tid, f.checkout_id);
    if (!verdict.ok()) return verdict.status();
    if (!*verdict) return std::string("checkout_unknown");
    if (**verdict) return std::string("checkout_refused");
    auto c = store.GetCheckout(tid, f.checkout_id);
    if (!c.ok()) return c.status();
    if (!*c) return std::string("checkout_unknown");
    const sync::Checkout& co = **c;
    auto rv = RulesVersion(co.rules_version);
    if (!rv.ok()) return rv.status();
    if (*rv && (*rv)->refund_window_days > 0 &&
        f.at_ms - co.committed_at_ms > (*rv)->refund_window_days * 86'400'000) {
      return std::string("refund_window_closed");
    }
    auto earlier = store.AcceptedRefundsOf(tid, f.checkout_id);
    if (!earlier.ok()) return earlier.status();
    auto seqs = RefundSeqs(tid, f.checkout_id);
    if (!seqs.ok()) return seqs.status();
    const RefundOrder mine = OrderOf(f, *seqs);
    size_t n = co.lines.size();
    std::vector<int64_t> before(n, 0), after(n, 0);
    for (const auto& e : *earlier) {
      if (e.refund_id == f.refund_id) continue;
      if (OrderOf(e, *seqs) > mine) continue;
      for (const auto& l : e.lines) {
        if (l.line >= 0 && static_cast<size_t>(l.line) < n) before[static_cast<size_t>(l.line)] += l.qty;
      }
    }
    after = before;
    for (const auto& l : f.lines) {
      if (l.line < 0 || static_cast<size_t>(l.line) >= n) return std::string("record_malformed");
      after[static_cast<size_t>(l.line)] += l.qty;  // qty <= 10^4, lines <= 500: no overflow
    }
    rules::RefundBasis basis;
    for (const auto& l : co.lines) {
      basis.lines.push_back({l.qty, l.net_cents, l.net_before_redeem_cents, l.points_eligible, l.redeemable});
    }
    basis.points_earned = co.points_earned;
    basis.redeemed_points = co.redeemed_points;
    basis.eligible_cents = co.eligible_cents;
    basis.redeemable_cents = co.redeemable_cents;
    auto amounts = rules::ComputeRefund(basis, before, after);
    if (!amounts.ok()) return amounts.status().code() == ErrorCode::kRefundExceedsSale ? std::string("refund_exceeds_sale")
                                                                                 : std::string("record_malformed");
    if (amounts->refund_cents != f.refund_cents || amounts->points_clawed_back != f.points_clawed_back ||
        amounts->points_restored != f.points_restored) {
      return std::string("refund_mismatch");
    }
    return std::string();
  }

  // An entry: a terminal kind, its points backed by a checked record, once, within limits.
  Result<std::string> CheckEntry(const std::string& tid, const sync::Entry& e) {
    if (!sync::IsTerminalEntryKind(e.kind)) return std::string("kind_not_allowed");
    if (e.kind == "earn" || e.kind == "redeem") {
      if (e.checkout_id.empty() || !e.refund_id.empty()) return std::string("record_missing");
      // The batch's own checkouts were just judged: no need to read them back.
      std::optional<sync::Checkout> stored;
      const sync::Checkout* found = nullptr;
      const BatchCheckout* in_batch = nullptr;
      if (auto it = batch_checkouts.find(e.checkout_id); it != batch_checkouts.end()) {
        if (it->second.refused) return std::string("checkout_refused");
        in_batch = &it->second;
        found = in_batch->checkout;
      } else {
        auto verdict = store.CheckoutRefused(tid, e.checkout_id);
        if (!verdict.ok()) return verdict.status();
        if (!*verdict) return std::string("record_missing");
        if (**verdict) return std::string("checkout_refused");
        auto c = store.GetCheckout(tid, e.checkout_id);
        if (!c.ok()) return c.status();
        if (!*c) return std::string("record_missing");
        stored = std::move(**c);
        found = &*stored;
      }
      const sync::Checkout& co = *found;
      if (!co.member_id || *co.member_id != e.member_id) return std::string("member_mismatch");
      bool earn = e.kind == "earn";
      if (e.points != (earn ? co.points_earned : -co.redeemed_points) || (!earn && co.redeemed_points == 0)) {
        return std::string("points_mismatch");
      }
      if (in_batch) {
        if (auto a = in_batch->applied.find(e.kind); a != in_batch->applied.end() && a->second > 0) {
          return std::string("duplicate");
        }
      } else {
        auto n = store.CountAppliedEntries(tid, e.checkout_id, "", e.kind);
        if (!n.ok()) return n.status();
        if (*n > 0) return std::string("duplicate");
      }
      if (!earn) {
        auto rv = RulesVersion(co.rules_version);
        if (!rv.ok()) return rv.status();
        if (!*rv) return std::string("rules_version_unknown");
        // The cooldown (loyalty-rules.md): the terminal refuses a redemption less than
        // redeem_cooldown_s after the member's last one recorded on it, refused at HQ or not.
        if ((*rv)->redeem_cooldown_s > 0) {
          auto last = store.LastTerminalEntryAt(tid, e.member_id, "redeem", e.seq);
          if (!last.ok()) return last.status();
          if (*last && **last > 0 && co.committed_at_ms - **last < (*rv)->redeem_cooldown_s * 1000) {
            return std::string("cooldown_active");
          }
        }
        // Against what the terminal could know: its last snapshot plus its own entries since.
        auto d = LastDownload(tid, co.committed_at_ms);
        if (!d.ok()) return d.status();
        auto known =
            store.KnownBalance(e.member_id, tid, d->value_or(0), e.seq, e.checkout_id, FloorDiv(co.committed_at_ms, 1000));
        if (!known.ok()) {
          if (known.status().code() == ErrorCode::kOverflow) return std::string("value_out_of_range");
          return known.status();
        }
        if (*known < co.redeemed_points) return std::string("insufficient_points");
        bool stale = !*d || co.committed_at_ms - **d > (*rv)->stale_after_s * 1000;
        if (stale && co.redeemed_points > (*rv)->stale_redeem_cap_points) return std::string("stale_cap_exceeded");
      }
    } else if (e.kind == "clawback" || e.kind == "restore") {
      if (e.checkout_id.empty() || e.refund_id.empty()) return std::string("record_missing");
      auto refunds = store.AcceptedRefundsOf(tid, e.checkout_id);
      if (!refunds.ok()) return refunds.status();
      auto it = std::find_if(refunds->begin(), refunds->end(),
                             [&](const sync::Refund& f) { return f.refund_id == e.refund_id; });
      if (it == refunds->end()) return std::string("record_missing");
      auto c = store.GetCheckout(tid, e.checkout_id);
      if (!c.ok()) return c.status();
      if (!*c || !(*c)->member_id || *(*c)->member_id != e.member_id) return std::string("member_mismatch");
      bool claw = e.kind == "clawback";
      if (e.points != (claw ? -it->points_clawed_back : it->points_restored)) return std::string("points_mismatch");
      auto n = store.CountAppliedEntries(tid, e.checkout_id, e.refund_id, e.kind);
      if (!n.ok()) return n.status();
      if (*n > 0) return std::string("duplicate");
    } else {  // freeze, tier_upgrade, correction
      if (e.points != 0) return std::string("points_not_zero");
      if (e.kind == "tier_upgrade" && !current.provisional_upgrade) return std::string("upgrade_not_allowed");
    }
    auto fits = BalanceCanTake(e.member_id, e.points);
    if (!fits.ok()) return fits.status();
    if (!*fits) return std::string("value_out_of_range");
    return std::string();
  }

  // Chain-wide velocity: the member's applied earnings across every terminal in the hour up
  // to this entry (after the latest unfreeze) over the limit freeze the member at HQ.
  Status ChainVelocity(const sync::Entry& e) {
    if (e.kind != "earn" || e.points <= 0) return Status::Ok();
    auto slot = Slot(e.member_id);
    if (!slot.ok()) return slot.status();
    const std::optional<MemberRecord>& m = (*slot)->m;
    if (!m || m->status == "frozen") return Status::Ok();
    auto earned = store.EarnedBetween(e.member_id, std::max(e.at_ms - 3'600'000, m->unfrozen_at_ms), e.at_ms);
    if (!earned.ok() && earned.status().code() != ErrorCode::kOverflow) return earned.status();
    if (earned.ok() && *earned <= current.max_points_per_hour) return Status::Ok();
    auto f = AppendHqEntry("freeze", e.member_id, 0,
                           {{"reason", "velocity"},
                            {"earned_in_hour", earned.ok() ? json(*earned) : json(nullptr)},
                            {"max_points_per_hour", current.max_points_per_hour},
                            {"entry_id", e.entry_id}});
    if (!f.ok()) return f.status();
    Report("member_frozen", {{"member_id", std::to_string(e.member_id)}, {"reason", "velocity"}, {"source", "hq"}});
    return ApplyEntry(*f);
  }

  Result<std::string> UploadOne(const std::string& tid, const sync::Entry& e, TerminalRecord* term, int64_t now_ms) {
    if (e.terminal_id != tid) return std::string("invalid");
    if (model::EntryHash(e) != e.hash) {
      // Nothing is stored, but a terminal sending entries that do not match their hash is
      // something to look at: recorded against the terminal.
      if (Status s = Conflict("entry_mismatch", tid, "", e.member_id,
                              {{"entry_id", e.entry_id}, {"reason", "hash_does_not_match_content"}, {"seq", e.seq}},
                              tid + ":invalid:" + e.entry_id + ":" + HexEncode(e.hash));
          !s.ok()) {
        return s;
      }
      return std::string("invalid");
    }
    auto existing = store.GetEntry(e.entry_id);
    if (!existing.ok()) return existing.status();
    if (*existing) {
      if ((*existing)->hash == e.hash) return std::string("exists");
      if (Status s = Conflict("entry_mismatch", tid, (*existing)->terminal_id == tid ? "" : (*existing)->terminal_id,
                              e.member_id,
                              {{"entry_id", e.entry_id},
                               {"stored_hash", HexEncode((*existing)->hash)},
                               {"received_hash", HexEncode(e.hash)},
                               {"terminal_id", tid}},
                              e.entry_id + ":" + HexEncode(e.hash));
          !s.ok()) {
        return s;
      }
      return std::string("conflict");
    }
    // The chain: a different entry already at this seq is a fork; a prev_hash that links to
    // no entry at seq - 1 (on any branch) is a gap. Either is recorded; the entry is kept.
    auto same_seq = store.EntriesAtSeq(tid, e.seq);
    if (!same_seq.ok()) return same_seq.status();
    if (!same_seq->empty()) {
      if (Status s = Conflict("chain_fork", tid, "", 0,
                              {{"terminal_id", tid},
                               {"seq", e.seq},
                               {"entry_id", e.entry_id},
                               {"other_entry_id", same_seq->front().entry_id}},
                              tid + ":" + e.entry_id);
          !s.ok()) {
        return s;
      }
    } else {
      bool linked = false;
      if (e.seq == 1) {
        linked = e.prev_hash == model::ZeroHash();
      } else if (term->head_seq == e.seq - 1 && term->head_seq > 0 && term->head_hash == HexEncode(e.prev_hash)) {
        linked = true;  // the terminal's head (stored with the entry it names) is at seq - 1
      } else {
        auto prev = store.EntriesAtSeq(tid, e.seq - 1);
        if (!prev.ok()) return prev.status();
        for (const auto& p : *prev) linked = linked || p.hash == e.prev_hash;
      }
      if (!linked) {
        if (Status s = Conflict("chain_gap", tid, "", 0,
                                {{"terminal_id", tid}, {"seq", e.seq}, {"entry_id", e.entry_id},
                                 {"prev_hash", HexEncode(e.prev_hash)}},
                                tid + ":" + e.entry_id);
            !s.ok()) {
          return s;
        }
      }
    }
    auto reason = CheckEntry(tid, e);
    if (!reason.ok()) return reason.status();
    bool applied = reason->empty();
    if (Status s = InsertEntry(e, applied, now_ms); !s.ok()) return s;
    recon::Item item;
    item.id = *HexDecode(e.entry_id);
    std::copy(e.hash.begin(), e.hash.end(), item.hash.begin());
    if (Status s = store.AddToTerminalSet(tid, item); !s.ok()) return s;
    term->head_seq = e.seq;
    term->head_hash = HexEncode(e.hash);
    if (!applied) {
      // Kept in the chain and counted once; applied to no balance.
      if (Status s = Conflict("entry_refused", tid, "", e.member_id,
                              {{"entry_id", e.entry_id},
                               {"terminal_id", tid},
                               {"seq", e.seq},
                               {"kind", e.kind},
                               {"points", e.points},
                               {"member_id", std::to_string(e.member_id)},
                               {"checkout_id", e.checkout_id},
                               {"refund_id", e.refund_id},
                               {"reason", *reason}},
                              tid + ":" + e.entry_id);
          !s.ok()) {
        return s;
      }
      Report("entry_refused", {{"terminal_id", tid}, {"entry_id", e.entry_id}, {"kind", e.kind}, {"reason", *reason}});
      return std::string("refused");
    }
    if (Status s = ApplyEntry(e); !s.ok()) return s;
    if (e.refund_id.empty()) {
      if (auto it = batch_checkouts.find(e.checkout_id); it != batch_checkouts.end()) ++it->second.applied[e.kind];
    }
    if (Status s = ChainVelocity(e); !s.ok()) return s;
    return std::string("created");
  }

  // A refused record is kept (a restored terminal gets it back) and reported, but counts in
  // no spend and backs no entry.
  Status RefuseRecord(const std::string& tid, uint64_t member, const char* what, const std::string& id,
                      const std::string& reason) {
    Report("record_refused", {{"terminal_id", tid}, {what, id}, {"reason", reason}});
    return Conflict("entry_refused", tid, "", member,
                    {{"terminal_id", tid}, {what, id}, {"member_id", std::to_string(member)}, {"reason", reason}},
                    tid + ":" + what + ":" + id);
  }

  Status StoreCheckout(const std::string& tid, const sync::Checkout& c) {
    auto prior = store.CheckoutRefused(tid, c.checkout_id);
    if (!prior.ok()) return prior.status();
    if (*prior) return Status::Ok();  // known: its verdict stands
    auto reason = CheckCheckout(tid, c);
    if (!reason.ok()) return reason.status();
    batch_checkouts[c.checkout_id] = BatchCheckout{&c, !reason->empty(), {}};
    auto inserted = store.InsertCheckout(tid, c);
    if (!inserted.ok()) return inserted.status();
    if (!*inserted) return Status::Ok();
    uint64_t member = c.member_id.value_or(0);
    if (!reason->empty()) {
      if (Status s = store.MarkCheckoutRefused(tid, c.checkout_id); !s.ok()) return s;
      if (Status s = RefuseRecord(tid, member, "checkout_id", c.checkout_id, *reason); !s.ok()) return s;
    }
    if (!c.code_hash.empty()) {
      auto uses = store.CheckoutsWithCode(c.code_hash);
      if (!uses.ok()) return uses.status();
      for (const auto& [other_tid, other_checkout] : *uses) {
        if (other_tid == tid) continue;
        std::string a = std::min(tid, other_tid), b = std::max(tid, other_tid);
        Status s = Conflict("code_reused", tid, other_tid, member,
                            {{"code_hash", c.code_hash},
                             {"member_id", std::to_string(member)},
                             {"checkouts", json::array({json{{"terminal_id", other_tid}, {"checkout_id", other_checkout}},
                                                        json{{"terminal_id", tid}, {"checkout_id", c.checkout_id}}})}},
                            c.code_hash + ":" + a + ":" + b);
        if (!s.ok()) return s;
      }
    }
    if (!c.coupon_id.empty()) {
      auto uses = store.CheckoutsWithCoupon(c.coupon_id);
      if (!uses.ok()) return uses.status();
      for (const auto& [other_tid, other_checkout] : *uses) {
        if (other_tid == tid) continue;
        std::string a = std::min(tid, other_tid), b = std::max(tid, other_tid);
        Status s = Conflict("coupon_reused", tid, other_tid, member,
                            {{"coupon_id", c.coupon_id},
                             {"member_id", std::to_string(member)},
                             {"checkouts", json::array({json{{"terminal_id", other_tid}, {"checkout_id", other_checkout}},
                                                        json{{"terminal_id", tid}, {"checkout_id", c.checkout_id}}})}},
                            c.coupon_id + ":" + a + ":" + b);
        if (!s.ok()) return s;
      }
      if (reason->empty()) {
        if (Status s = store.MarkCouponUsed(c.coupon_id, tid, c.checkout_id); !s.ok()) return s;
      }
    }
    if (member != 0 && reason->empty()) {
      if (auto m = MemberOrBare(member); !m.ok()) return m.status();
      return MaybeUpgradeTier(member);
    }
    return Status::Ok();
  }

  http::Response Upload(const std::string& tid, const http::Request& req) {
    auto up = sync::ParseMessage<sync::UploadRequest>(req.body);
    if (!up.ok()) return FromStatus(up.status());
    // Opened outside the transaction so that a rollback never removes the set's scope row.
    if (auto set = store.TerminalSet(tid); !set.ok()) return FromStatus(set.status());
    sync::UploadResponse out;
    Status s = Write([&]() -> Status {
      out.results.clear();
      batch_checkouts.clear();
      batch_first_entry.clear();
      for (const auto& e : up->entries) {
        if ((e.kind == "freeze" || e.kind == "tier_upgrade") && e.terminal_id == tid && model::EntryHash(e) == e.hash) {
          auto [it, fresh] = batch_first_entry.emplace(std::make_pair(e.member_id, e.kind), e.at_ms);
          if (!fresh) it->second = std::min(it->second, e.at_ms);
        }
      }
      auto term = TouchTerminal(tid, nullptr);
      if (!term.ok()) return term.status();
      const int64_t now_ms = clock.now_ms();
      // The records first: the entries are checked against them.
      for (const auto& c : up->checkouts) {
        if (Status s = StoreCheckout(tid, c); !s.ok()) return s;
      }
      batch_refund_seq.clear();
      for (const auto& e : up->entries) {
        if (e.terminal_id != tid || e.refund_id.empty()) continue;
        auto [it, fresh] = batch_refund_seq.emplace(std::make_pair(e.checkout_id, e.refund_id), e.seq);
        if (!fresh) it->second = std::min(it->second, e.seq);
      }
      std::vector<std::pair<RefundOrder, const sync::Refund*>> refunds;
      std::map<std::string, std::map<std::string, int64_t>> seqs_of;  // by checkout
      for (const auto& r : up->refunds) {
        auto seqs = seqs_of.find(r.checkout_id);
        if (seqs == seqs_of.end()) {
          auto read = RefundSeqs(tid, r.checkout_id);
          if (!read.ok()) return read.status();
          seqs = seqs_of.emplace(r.checkout_id, std::move(*read)).first;
        }
        refunds.emplace_back(OrderOf(r, seqs->second), &r);
      }
      std::sort(refunds.begin(), refunds.end(),
                [](const auto& a, const auto& b) { return a.first < b.first; });
      for (const auto& ordered : refunds) {
        const auto& r = ordered.second;  // not a structured binding: a lambda below uses it
        auto known = store.RefundsOf(tid, r->checkout_id);
        if (!known.ok()) return known.status();
        if (std::any_of(known->begin(), known->end(), [&](const sync::Refund& k) { return k.refund_id == r->refund_id; })) {
          continue;  // known: its verdict stands
        }
        auto reason = CheckRefund(tid, *r);
        if (!reason.ok()) return reason.status();
        auto inserted = store.InsertRefund(tid, *r);
        if (!inserted.ok()) return inserted.status();
        if (!*inserted) continue;
        auto c = store.GetCheckout(tid, r->checkout_id);
        if (!c.ok()) return c.status();
        uint64_t member = *c && (*c)->member_id ? *(*c)->member_id : 0;
        if (!reason->empty()) {
          if (Status s = store.MarkRefundRefused(tid, r->refund_id); !s.ok()) return s;
          if (Status s = RefuseRecord(tid, member, "refund_id", r->refund_id, *reason); !s.ok()) return s;
          continue;
        }
        if (member != 0) {
          if (Status s = Touch(member); !s.ok()) return s;
        }
      }
      for (const auto& e : up->entries) {
        auto st = UploadOne(tid, e, &*term, now_ms);
        if (!st.ok()) return st.status();
        out.results.push_back({e.entry_id, *st});
      }
      batch_checkouts.clear();
      return store.PutTerminal(*term);
    });
    batch_checkouts.clear();  // it points into `up`, also after a failed transaction
    batch_first_entry.clear();
    batch_refund_seq.clear();
    if (!s.ok()) return FromStatus(s);
    return JsonResponse(200, sync::ToJson(out));
  }

  http::Response Changes(const std::string& tid, const http::Request& req) {
    auto q = sync::ParseChangesQuery(req.query);
    if (!q.ok()) return FromStatus(q.status());
    int64_t after = 0;
    if (!q->cursor.empty()) {
      auto c = sync::ParseMemberId(q->cursor);
      if (!c || *c > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return Error(ErrorCode::kBadRequest, "cursor is not one HQ gave");
      }
      after = static_cast<int64_t>(*c);
    }
    sync::ChangesResponse out;
    Status s = store.Transaction([&]() -> Status {
      auto term = TouchTerminal(tid, nullptr);
      if (!term.ok()) return term.status();
      auto members = store.MembersChangedAfter(after, q->limit + 1);
      if (!members.ok()) return members.status();
      out.more = static_cast<int64_t>(members->size()) > q->limit;
      if (out.more) members->resize(static_cast<size_t>(q->limit));
      int64_t up_to = 0;
      if (out.more) {
        up_to = members->back().change_seq;
      } else {
        auto max = store.MaxChangeSeq();
        if (!max.ok()) return max.status();
        up_to = *max;
      }
      if (Status s = store.AddTerminalDownload(tid, clock.now_ms()); !s.ok()) return s;
      for (const auto& m : *members) {
        auto snap = Snapshot(m, term->head_seq);
        if (!snap.ok()) return snap.status();
        // Never a value the terminal's codec would refuse: reported and left out, never a
        // failed page.
        if (Status v = sync::ValidateSnapshot(*snap); !v.ok()) {
          Report("snapshot_not_sent", {{"terminal_id", tid}, {"member_id", std::to_string(m.member_id)},
                                       {"reason", v.message()}});
          continue;
        }
        out.members.push_back(std::move(*snap));
        auto ids = store.IdentitiesOf(m.member_id);
        if (!ids.ok()) return ids.status();
        out.identities.insert(out.identities.end(), ids->begin(), ids->end());
      }
      auto coupons = store.CouponsChanged(after, up_to);
      if (!coupons.ok()) return coupons.status();
      for (const auto& c : *coupons) out.coupons.push_back(c.coupon);
      auto rev = store.RevocationsChanged(after, up_to);
      if (!rev.ok()) return rev.status();
      out.revocations = std::move(*rev);
      out.cursor = std::to_string(up_to);
      out.hq_time_ms = clock.now_ms();
      out.rules = rules::RulesToJson(current);
      return Status::Ok();
    });
    if (!s.ok()) return FromStatus(s);
    return JsonResponse(200, sync::ToJson(out));
  }

  http::Response Recon(const std::string& tid, bool entries, const http::Request& req) {
    auto set = entries ? store.TerminalSet(tid) : store.BalanceSet();
    if (!set.ok()) return FromStatus(set.status());
    recon::Responder responder(**set);
    auto reply = responder.Reply(req.body);
    if (!reply.ok()) return FromStatus(reply.status());
    http::Response r;
    r.content_type = "application/octet-stream";
    r.body = std::move(*reply);
    return r;
  }

  http::Response Fetch(const std::string& tid, const http::Request& req) {
    auto f = sync::ParseMessage<sync::FetchRequest>(req.body);
    if (!f.ok()) return FromStatus(f.status());
    sync::FetchResponse out;
    auto entries = store.TerminalEntriesByIds(tid, f->entry_ids);
    if (!entries.ok()) return FromStatus(entries.status());
    out.entries = std::move(*entries);
    std::set<std::string> checkout_ids;
    for (const auto& e : out.entries) {
      if (!e.checkout_id.empty()) checkout_ids.insert(e.checkout_id);
    }
    for (const auto& id : checkout_ids) {
      auto c = store.GetCheckout(tid, id);
      if (!c.ok()) return FromStatus(c.status());
      if (!*c) continue;
      out.checkouts.push_back(**c);
      auto refunds = store.RefundsOf(tid, id);
      if (!refunds.ok()) return FromStatus(refunds.status());
      out.refunds.insert(out.refunds.end(), refunds->begin(), refunds->end());
    }
    return JsonResponse(200, sync::ToJson(out));
  }

  http::Response Members(const std::string& tid, const http::Request& req) {
    auto m = sync::ParseMessage<sync::MembersRequest>(req.body);
    if (!m.ok()) return FromStatus(m.status());
    auto term = store.GetTerminal(tid);
    if (!term.ok()) return FromStatus(term.status());
    int64_t head = *term ? (*term)->head_seq : 0;
    sync::MembersResponse out;
    if (Status s = store.AddTerminalDownload(tid, clock.now_ms()); !s.ok()) return FromStatus(s);
    for (uint64_t id : m->member_ids) {
      auto rec = store.GetMember(id);
      if (!rec.ok()) return FromStatus(rec.status());
      if (!*rec) continue;
      auto snap = Snapshot(**rec, head);
      if (!snap.ok()) return FromStatus(snap.status());
      if (Status v = sync::ValidateSnapshot(*snap); !v.ok()) {
        Report("snapshot_not_sent", {{"terminal_id", tid}, {"member_id", std::to_string(id)}, {"reason", v.message()}});
        continue;
      }
      out.members.push_back(std::move(*snap));
    }
    return JsonResponse(200, sync::ToJson(out));
  }

  http::Response Terminal(const std::string& tid, const std::string& route, const http::Request& req,
                          const std::optional<std::string>& peer) {
    if (!sync::IsTerminalId(tid) || tid == kHqTerminalId) return Error(ErrorCode::kBadRequest, "invalid terminal id");
    if (peer && *peer != tid) {
      return Error(ErrorCode::kForbidden, "the client certificate does not name terminal " + tid);
    }
    bool post = req.method == "POST";
    if (route == "hello" && post) return Hello(tid, req);
    if (route == "entries" && post) return Upload(tid, req);
    if (route == "changes" && req.method == "GET") return Changes(tid, req);
    if (route == "recon/entries" && post) return Recon(tid, true, req);
    if (route == "recon/balances" && post) return Recon(tid, false, req);
    if (route == "fetch" && post) return Fetch(tid, req);
    if (route == "members" && post) return Members(tid, req);
    return Error(ErrorCode::kNotFound, "no such route");
  }

  // ------------------------------------------------------------------ admin routes

  Result<json> AdminBody(const http::Request& req) {
    auto j = sync::ParseJsonObject(req.body.empty() ? std::string_view("{}") : std::string_view(req.body));
    if (!j.ok()) return j.status();
    return *j;
  }

  Status CheckIdentityFree(const std::string& channel, const std::string& external_id, uint64_t member_id) {
    auto holder = store.FindIdentity(channel, external_id);
    if (!holder.ok()) return holder.status();
    if (*holder && **holder != member_id) {
      return Status::Error(ErrorCode::kIdentityConflict, channel + " identity " + external_id + " already belongs to member " +
                                                    std::to_string(**holder));
    }
    return Status::Ok();
  }

  http::Response CreateMember(const http::Request& req) {
    auto j = AdminBody(req);
    if (!j.ok()) return FromStatus(j.status());
    Body b{*j, {}};
    auto member_id = b.MemberId("member_id", false);
    auto name = b.Str("name", true, 1, 256);
    auto phone = b.Str("phone", false, 1, 64);
    auto birthday = b.Str("birthday", false, 5, 5);
    auto tier = b.Str("tier", false, 1, 16);
    auto card = b.Str("card_number", false, 16, 16);
    std::vector<std::pair<std::string, std::string>> identities;
    if (const json* ids = b.Get("identities", false)) {
      if (!ids->is_array() || ids->size() > 64) {
        b.status = BadRequest("identities must be an array of at most 64 {channel, external_id}");
      } else {
        for (const auto& i : *ids) {
          if (!i.is_object()) {
            b.status = BadRequest("identities[] must be objects");
            break;
          }
          Body ib{i, {}};
          auto ch = ib.Str("channel", true, 1, 64);
          auto ext = ib.Str("external_id", true, 1, 256);
          if (!ib.status.ok()) {
            b.status = BadRequest("identities[]." + ib.status.message());
            break;
          }
          identities.emplace_back(*ch, *ext);
        }
      }
    }
    if (!b.status.ok()) return FromStatus(b.status);
    if (member_id && *member_id == 0) return Error(ErrorCode::kBadRequest, "member_id must not be 0");
    if (tier && TierRank(*tier) == 0 && *tier != "member") return Error(ErrorCode::kBadRequest, "tier must be member, vip or black");
    if (phone && PhoneDigits(*phone).size() < 5) return Error(ErrorCode::kBadRequest, "phone must hold at least 5 digits");
    int birthday_month = 0;
    if (birthday) {
      const std::string& d = *birthday;
      bool ok = d[2] == '-' && std::isdigit(static_cast<unsigned char>(d[0])) && std::isdigit(static_cast<unsigned char>(d[1])) &&
                std::isdigit(static_cast<unsigned char>(d[3])) && std::isdigit(static_cast<unsigned char>(d[4]));
      int mm = ok ? (d[0] - '0') * 10 + (d[1] - '0') : 0, dd = ok ? (d[3] - '0') * 10 + (d[4] - '0') : 0;
      static constexpr int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
      if (!ok || mm < 1 || mm > 12 || dd < 1 || dd > kDays[mm - 1]) {
        return Error(ErrorCode::kBadRequest, "birthday must be MM-DD");
      }
      birthday_month = mm;
    }
    if (card && (!std::all_of(card->begin(), card->end(), [](char c) { return c >= '0' && c <= '9'; }) ||
                 !codes::IsLuhnValid(*card))) {
      return Error(ErrorCode::kBadRequest, "card_number must be 16 digits with a Luhn check digit");
    }

    MemberRecord m;
    Status s = store.Transaction([&]() -> Status {
      uint64_t id = 0;
      if (member_id) {
        auto existing = store.GetMember(*member_id);
        if (!existing.ok()) return existing.status();
        if (*existing) return Status::Error(ErrorCode::kMemberExists, "member " + std::to_string(*member_id) + " exists");
        id = *member_id;
      } else {
        for (int tries = 0; id == 0 && tries < 32; ++tries) {
          // Random ids below 2^53 stay exact in every JSON library, and say nothing about
          // how many members there are.
          std::string r = RandomBytes(8);
          uint64_t v = 0;
          for (unsigned char c : r) v = (v << 8) | c;
          v &= (uint64_t{1} << 53) - 1;
          auto existing = store.GetMember(v);
          if (!existing.ok()) return existing.status();
          if (v != 0 && !*existing) id = v;
        }
        if (id == 0) return Status::Error(ErrorCode::kInternal, "cannot pick a member id");
      }
      std::string card_number = card.value_or("");
      if (card_number.empty()) {
        for (int tries = 0; card_number.empty() && tries < 32; ++tries) {
          std::string body;
          std::string r = RandomBytes(16);
          for (size_t i = 0; i + opt.card_prefix.size() < 15; ++i) body.push_back(static_cast<char>('0' + static_cast<unsigned char>(r[i]) % 10));
          std::string c = codes::MakeCardNumber(opt.card_prefix, body);
          auto holder = store.FindIdentity("card", c);
          if (!holder.ok()) return holder.status();
          if (!*holder) card_number = c;
        }
        if (card_number.empty()) return Status::Error(ErrorCode::kInternal, "cannot pick a card number");
      }
      if (Status s = CheckIdentityFree("card", card_number, id); !s.ok()) return s;
      for (const auto& [ch, ext] : identities) {
        if (Status s = CheckIdentityFree(ch, ext, id); !s.ok()) return s;
      }
      std::string mid = std::to_string(id);
      m.member_id = id;
      m.name_enc = pii.Encrypt(*name, mid + "/name");
      m.display_name = MaskName(*name);
      if (phone) {
        m.phone_enc = pii.Encrypt(*phone, mid + "/phone");
        m.phone_masked = MaskPhone(*phone);
        m.phone_hash = pii.PhoneHash(*phone);
      }
      if (birthday) m.birthday_enc = pii.Encrypt(*birthday, mid + "/birthday");
      m.birthday_month = birthday_month;
      m.card_number = card_number;
      m.tier = tier.value_or("member");
      m.created_at_ms = clock.now_ms();
      if (Status s = store.InsertMember(m); !s.ok()) return s;
      if (Status s = store.AddMemberState(id, m.created_at_ms, m.tier, m.status); !s.ok()) return s;
      if (Status s = store.PutIdentity("card", card_number, id); !s.ok()) return s;
      for (const auto& [ch, ext] : identities) {
        auto held = store.FindIdentity(ch, ext);
        if (!held.ok()) return held.status();
        if (*held) continue;  // listed twice in the request
        if (Status s = store.PutIdentity(ch, ext, id); !s.ok()) return s;
      }
      return store.UpsertBalance(id, 0);
    });
    if (!s.ok()) return FromStatus(s);
    return JsonResponse(201, {{"member_id", std::to_string(m.member_id)}, {"card_number", m.card_number}});
  }

  Result<MemberRecord> RequireMember(const std::string& id_text) {
    auto id = sync::ParseMemberId(id_text);
    if (!id) return Status::Error(ErrorCode::kMemberUnknown, "no member " + id_text);
    if (tx) {  // inside a write: as the write sees it
      auto slot = Slot(*id);
      if (!slot.ok()) return slot.status();
      if (!(*slot)->m) return Status::Error(ErrorCode::kMemberUnknown, "no member " + id_text);
      return *(*slot)->m;
    }
    auto m = store.GetMember(*id);
    if (!m.ok()) return m.status();
    if (!*m) return Status::Error(ErrorCode::kMemberUnknown, "no member " + id_text);
    return **m;
  }

  http::Response AddIdentity(const std::string& id_text, const http::Request& req) {
    auto j = AdminBody(req);
    if (!j.ok()) return FromStatus(j.status());
    Body b{*j, {}};
    auto ch = b.Str("channel", true, 1, 64);
    auto ext = b.Str("external_id", true, 1, 256);
    if (!b.status.ok()) return FromStatus(b.status);
    bool created = false;
    Status s = store.Transaction([&]() -> Status {
      auto m = RequireMember(id_text);
      if (!m.ok()) return m.status();
      auto holder = store.FindIdentity(*ch, *ext);
      if (!holder.ok()) return holder.status();
      if (*holder) return CheckIdentityFree(*ch, *ext, m->member_id);
      created = true;
      if (Status s = store.PutIdentity(*ch, *ext, m->member_id); !s.ok()) return s;
      return store.TouchMember(m->member_id);
    });
    if (!s.ok()) return FromStatus(s);
    return JsonResponse(created ? 201 : 200, {{"member_id", id_text}, {"channel", *ch}, {"external_id", *ext}});
  }

  http::Response CertifyDevice(const std::string& id_text, const http::Request& req) {
    auto j = AdminBody(req);
    if (!j.ok()) return FromStatus(j.status());
    Body b{*j, {}};
    auto pk_text = b.Str("device_public_key", true, 43, 43);
    auto not_after = b.Int("not_after", false, 0, 0xffffffffll);
    if (!b.status.ok()) return FromStatus(b.status);
    auto pk = Base64UrlDecode(*pk_text);
    if (!pk || pk->size() != 32) return Error(ErrorCode::kBadRequest, "device_public_key must be base64url of 32 bytes");
    if (opt.signing_seeds.empty()) return Error(ErrorCode::kInternal, "no signing key");
    auto key = opt.signing_seeds.rbegin();  // the highest key id is the current one
    int64_t na = not_after.value_or(std::min<int64_t>(0xffffffffll, clock.now_s() + opt.default_certificate_days * 86400));
    std::string cert;
    Status s = store.Transaction([&]() -> Status {
      auto m = RequireMember(id_text);
      if (!m.ok()) return m.status();
      cert = codes::MakeCertificate(key->second, static_cast<uint8_t>(key->first), m->member_id, *pk,
                                    static_cast<uint32_t>(na));
      if (cert.size() != codes::kCertificateBytes) return Status::Error(ErrorCode::kInternal, "cannot sign the certificate");
      return store.PutDevice({*pk_text, m->member_id, key->first, na, clock.now_ms()});
    });
    if (!s.ok()) return FromStatus(s);
    return JsonResponse(201, {{"certificate", Base64UrlEncode(cert)}, {"key_id", key->first}});
  }

  http::Response RevokeDevice(const std::string& pk_text) {
    auto pk = Base64UrlDecode(pk_text);
    if (!pk || pk->size() != 32) return Error(ErrorCode::kBadRequest, "device public key must be base64url of 32 bytes");
    Status s = store.Transaction([&] { return store.Revoke(pk_text, clock.now_ms()); });
    if (!s.ok()) return FromStatus(s);
    return JsonResponse(200, {{"device_public_key", pk_text}, {"revoked", true}});
  }

  http::Response MemberView(const std::string& id_text) {
    auto m = RequireMember(id_text);
    if (!m.ok()) return FromStatus(m.status());
    auto n = store.CountMemberEntries(m->member_id);
    auto spend = MonthSpend(m->member_id, clock.now_s());
    auto conflicts = store.ConflictsOfMember(m->member_id);
    if (!n.ok()) return FromStatus(n.status());
    if (!spend.ok()) return FromStatus(spend.status());
    if (!conflicts.ok()) return FromStatus(conflicts.status());
    json c = json::array();
    for (const auto& x : *conflicts) c.push_back(ConflictJson(x));
    return JsonResponse(200, {{"member_id", std::to_string(m->member_id)},
                              {"tier", m->tier},
                              {"status", m->status},
                              {"balance", m->balance},
                              {"entries", *n},
                              {"month_spend_cents", std::max<int64_t>(0, *spend)},
                              {"conflicts", c}});
  }

  http::Response Adjust(const std::string& id_text, const http::Request& req) {
    auto j = AdminBody(req);
    if (!j.ok()) return FromStatus(j.status());
    Body b{*j, {}};
    auto adj_id = b.Str("adjustment_id", true, 1, 64);
    auto points = b.Int("points", true, -1'000'000'000, 1'000'000'000);
    auto reason = b.Str("reason", true, 0, 256);
    if (!b.status.ok()) return FromStatus(b.status);
    json out;
    Status s = Write([&]() -> Status {
      auto m = RequireMember(id_text);
      if (!m.ok()) return m.status();
      auto prior = store.GetAdjustment(*adj_id);
      if (!prior.ok()) return prior.status();
      if (*prior) {
        const auto& p = **prior;
        if (p.member_id != m->member_id || p.points != *points || p.reason != *reason) {
          return Status::Error(ErrorCode::kIdempotencyConflict, "adjustment " + *adj_id + " exists with other values");
        }
        out = {{"adjustment_id", p.adjustment_id}, {"entry_id", p.entry_id}, {"member_id", id_text}};
        return Status::Ok();
      }
      auto e = AppendHqEntry("adjust", m->member_id, *points, {{"adjustment_id", *adj_id}, {"reason", *reason}});
      if (!e.ok()) return e.status();
      if (Status s = ApplyEntry(*e); !s.ok()) return s;
      if (Status s = store.PutAdjustment({*adj_id, m->member_id, *points, *reason, e->entry_id, e->at_ms}); !s.ok()) {
        return s;
      }
      out = {{"adjustment_id", *adj_id}, {"entry_id", e->entry_id}, {"member_id", id_text}};
      return Status::Ok();
    });
    if (!s.ok()) return FromStatus(s);
    return JsonResponse(201, out);
  }

  http::Response Unfreeze(const std::string& id_text, const http::Request& req) {
    auto j = AdminBody(req);
    if (!j.ok()) return FromStatus(j.status());
    Body b{*j, {}};
    auto reason = b.Str("reason", true, 0, 256);
    if (!b.status.ok()) return FromStatus(b.status);
    Status s = Write([&]() -> Status {
      auto m = RequireMember(id_text);
      if (!m.ok()) return m.status();
      if (m->status != "frozen") return Status::Ok();  // nothing to lift: repeating is harmless
      auto e = AppendHqEntry("unfreeze", m->member_id, 0, {{"reason", *reason}, {"frozen_reason", m->frozen_reason}});
      if (!e.ok()) return e.status();
      m->status = "active";
      m->frozen_reason.clear();
      m->unfrozen_at_ms = e->at_ms;
      return SaveMember(*m, m->tier, "frozen");
    });
    if (!s.ok()) return FromStatus(s);
    return JsonResponse(200, {{"member_id", id_text}, {"status", "active"}});
  }

  http::Response SetTier(const std::string& id_text, const http::Request& req) {
    auto j = AdminBody(req);
    if (!j.ok()) return FromStatus(j.status());
    Body b{*j, {}};
    auto tier = b.Str("tier", true, 1, 16);
    if (!b.status.ok()) return FromStatus(b.status);
    if (*tier != "member" && *tier != "vip" && *tier != "black") {
      return Error(ErrorCode::kBadRequest, "tier must be member, vip or black");
    }
    Status s = Write([&]() -> Status {
      auto m = RequireMember(id_text);
      if (!m.ok()) return m.status();
      if (m->tier == *tier) return Status::Ok();
      auto e = AppendHqEntry("tier_change", m->member_id, 0, {{"from", m->tier}, {"to", *tier}});
      if (!e.ok()) return e.status();
      const std::string old_tier = m->tier;
      m->tier = *tier;
      return SaveMember(*m, old_tier, m->status);
    });
    if (!s.ok()) return FromStatus(s);
    return JsonResponse(200, {{"member_id", id_text}, {"tier", *tier}});
  }

  http::Response CreateCoupon(const http::Request& req) {
    auto j = AdminBody(req);
    if (!j.ok()) return FromStatus(j.status());
    Body b{*j, {}};
    CouponRecord c;
    auto id = b.Str("coupon_id", true, 1, 64);
    auto member = b.MemberId("member_id", true);
    auto kind = b.Str("kind", true, 1, 16);
    auto value = b.Int("value_cents", false, 0, 100'000'000'000);
    auto bp = b.Int("bp", false, 0, 10000);
    auto min_spend = b.Int("min_spend_cents", true, 0, 100'000'000'000);
    auto from = b.Time("valid_from", true);
    auto to = b.Time("valid_to", true);
    if (!b.status.ok()) return FromStatus(b.status);
    if (*kind != "amount_off" && *kind != "percent_off") {
      return Error(ErrorCode::kBadRequest, "kind must be amount_off or percent_off");
    }
    if (*kind == "amount_off" && !value) return Error(ErrorCode::kBadRequest, "value_cents is missing");
    if (*kind == "percent_off" && !bp) return Error(ErrorCode::kBadRequest, "bp is missing");
    if (*to < *from) return Error(ErrorCode::kBadRequest, "valid_to is before valid_from");
    c.coupon = {*id, *member, *kind, value.value_or(0), bp.value_or(0), *min_spend, *from, *to, false};
    c.body_hash = DigestHex(Sha256(Dump(sync::ToJson(c.coupon))));
    Status s = store.Transaction([&]() -> Status {
      if (*member != 0) {
        auto m = store.GetMember(*member);
        if (!m.ok()) return m.status();
        if (!*m) return Status::Error(ErrorCode::kMemberUnknown, "no member " + std::to_string(*member));
      }
      auto prior = store.GetCoupon(*id);
      if (!prior.ok()) return prior.status();
      if (*prior) {
        if ((*prior)->body_hash != c.body_hash) {
          return Status::Error(ErrorCode::kIdempotencyConflict, "coupon " + *id + " exists with other values");
        }
        return Status::Ok();
      }
      return store.PutCoupon(c);
    });
    if (!s.ok()) return FromStatus(s);
    return JsonResponse(201, {{"coupon_id", *id}});
  }

  http::Response TerminalView(const std::string& tid) {
    auto t = store.GetTerminal(tid);
    if (!t.ok()) return FromStatus(t.status());
    auto n = store.CountEntries(tid);
    if (!n.ok()) return FromStatus(n.status());
    if (!*t && *n == 0) return Error(ErrorCode::kNotFound, "terminal " + tid + " was never seen");
    auto checkouts = store.CountCheckouts(tid);
    auto conflicts = store.ConflictsOfTerminal(tid);
    if (!checkouts.ok()) return FromStatus(checkouts.status());
    if (!conflicts.ok()) return FromStatus(conflicts.status());
    json c = json::array();
    bool chain_ok = true;
    for (const auto& x : *conflicts) {
      c.push_back(ConflictJson(x));
      if (x.terminal_id == tid && (x.kind == "chain_fork" || x.kind == "chain_gap" || x.kind == "entry_mismatch")) {
        chain_ok = false;
      }
    }
    TerminalRecord r = t->value_or(TerminalRecord{tid, "", 0, 0, 0, ""});
    return JsonResponse(200, {{"terminal_id", tid},
                              {"store_id", r.store_id},
                              {"entries", *n},
                              {"checkouts", *checkouts},
                              {"last_seq", r.head_seq},
                              {"last_sync_at", r.last_sync_ms > 0 ? json(FormatRfc3339(r.last_sync_ms / 1000)) : json(nullptr)},
                              {"chain_ok", chain_ok},
                              {"conflicts", c}});
  }

  Result<ExpiryReport> DailyJobs(int64_t now_s) {
    ExpiryReport report;
    // Members are written as they are done (Forget): the job may see every member.
    Status s = Write([&]() -> Status {
      auto members = store.MembersWithExpiredLots(now_s);
      if (!members.ok()) return members.status();
      for (uint64_t id : *members) {
        auto slot = Slot(id);
        if (!slot.ok()) return slot.status();
        auto held = LotsOf(**slot, id);
        if (!held.ok()) return held.status();
        const std::vector<model::Lot> lots = **held;
        int64_t sum = 0, n = 0;
        for (const auto& l : lots) {
          if (l.remaining > 0 && l.expires_at_s < now_s) {
            sum += l.remaining;
            ++n;
            if (Status s = SetLot(**slot, l.lot_id, 0); !s.ok()) return s;
          }
        }
        if (sum != 0) {
          auto e = AppendHqEntry("expire", id, -sum, {{"lots", n}, {"as_of_s", now_s}});
          if (!e.ok()) return e.status();
          if (Status s = ApplyEntry(*e); !s.ok()) return s;
          ++report.members;
          report.points += sum;
        }
        if (Status s = Forget(); !s.ok()) return s;
      }
      // At the first run in a new local month, every tier follows that month's spend
      // (the contract's recomputation "at the start of each month").
      CivilTime l = opt.timezone.ToLocal(now_s);
      std::string month = std::to_string(l.year) + "-" + std::to_string(l.month);
      auto last = store.GetMeta("tier_month");
      if (!last.ok()) return last.status();
      if (*last && **last != month) {
        for (int64_t after = 0;;) {
          auto page = store.MembersChangedAfter(after, 500);
          if (!page.ok()) return page.status();
          if (page->empty()) break;
          // Updating a member moves it past the page: remember where the scan was.
          int64_t max_seen = page->back().change_seq;
          for (const auto& row : *page) {
            MemberSlot& slot = tx->members[row.member_id];
            if (!slot.m) slot.m = row;  // just read: the page's row is the member
            auto spend = MonthSpend(row.member_id, now_s);
            if (!spend.ok()) return spend.status();
            std::string t = TierForSpend(*spend);
            MemberRecord& m = *slot.m;
            if (t != m.tier) {
              const std::string old_tier = m.tier;
              m.tier = t;
              if (Status s = SaveMember(m, old_tier, m.status); !s.ok()) return s;
            }
          }
          if (Status s = Forget(); !s.ok()) return s;
          after = max_seen;
          auto max = store.MaxChangeSeq();
          if (!max.ok()) return max.status();
          if (after >= *max) break;
        }
      }
      // The spend sums the store keeps for windows before this month are not asked again.
      if (Status s = store.PruneSpendTotals(MonthBounds(now_s).first); !s.ok()) return s;
      return store.PutMeta("tier_month", month);
    });
    if (!s.ok()) return s;
    return report;
  }

  http::Response Expire(const http::Request& req) {
    int64_t now_s = clock.now_s();
    if (auto it = req.query.find("now"); it != req.query.end()) {
      auto v = sync::ParseMemberId(it->second);
      if (!v || *v > (uint64_t{1} << 40)) return Error(ErrorCode::kBadRequest, "now must be unix seconds");
      now_s = static_cast<int64_t>(*v);
    }
    auto r = DailyJobs(now_s);
    if (!r.ok()) return FromStatus(r.status());
    return JsonResponse(200, {{"members", r->members}, {"points", r->points}});
  }

  bool Authorized(const http::Request& req) const {
    const std::string want = "Bearer " + opt.admin_token;
    return !opt.admin_token.empty() && req.authorization.size() == want.size() &&
           CRYPTO_memcmp(req.authorization.data(), want.data(), want.size()) == 0;
  }

  http::Response Admin(const std::vector<std::string>& p, const http::Request& req) {
    if (!Authorized(req)) return Error(ErrorCode::kUnauthorized, "a valid admin bearer token is required");
    const std::string& m = req.method;
    size_t n = p.size();  // p[0] == "v1"
    if (n == 2 && p[1] == "members" && m == "POST") return CreateMember(req);
    if (n == 3 && p[1] == "members" && m == "GET") return MemberView(p[2]);
    if (n == 4 && p[1] == "members" && m == "POST") {
      if (p[3] == "devices") return CertifyDevice(p[2], req);
      if (p[3] == "adjustments") return Adjust(p[2], req);
      if (p[3] == "unfreeze") return Unfreeze(p[2], req);
      if (p[3] == "tier") return SetTier(p[2], req);
      if (p[3] == "identities") return AddIdentity(p[2], req);
    }
    if (n == 4 && p[1] == "devices" && p[3] == "revoke" && m == "POST") return RevokeDevice(p[2]);
    if (n == 2 && p[1] == "coupons" && m == "POST") return CreateCoupon(req);
    if (n == 3 && p[1] == "terminals" && m == "GET") return TerminalView(p[2]);
    if (n == 3 && p[1] == "admin" && p[2] == "expire" && m == "POST") return Expire(req);
    return Error(ErrorCode::kNotFound, "no such route");
  }

  http::Response Handle(const http::Request& req, const std::optional<std::string>& peer) {
    if (Status s = PublishRules(); !s.ok()) return Error(ErrorCode::kUnavailable, s.message());
    std::vector<std::string> parts;
    std::string_view path = req.path;
    while (!path.empty()) {
      if (path.front() == '/') {
        path.remove_prefix(1);
        continue;
      }
      size_t slash = path.find('/');
      parts.emplace_back(path.substr(0, slash));
      path.remove_prefix(slash == std::string_view::npos ? path.size() : slash);
    }
    if (parts.empty() || parts[0] != "v1") return Error(ErrorCode::kNotFound, "no such route");
    if (parts.size() == 2 && parts[1] == "health" && req.method == "GET") return JsonResponse(200, {{"status", "ok"}});
    if (parts.size() >= 4 && parts[1] == "sync") {
      std::string route = parts[3];
      for (size_t i = 4; i < parts.size(); ++i) route += "/" + parts[i];
      return Terminal(parts[2], route, req, peer);
    }
    return Admin(parts, req);
  }
};

HqService::HqService(Store& store, const Clock& clock, PiiCipher pii, HqOptions options)
    : impl_(std::make_shared<Impl>(store, clock, std::move(pii), std::move(options))) {}

http::Response HqService::Handle(const http::Request& req, const std::optional<std::string>& peer_terminal) {
  // No route, whether it reads its body or not, sees one nested deeper than the limit.
  if (Status s = CheckJsonDepth(req.body); !s.ok()) return FromStatus(s);
  try {
    return impl_->Handle(req, peer_terminal);
  } catch (const std::exception& e) {
    // Nothing here throws by design; a library that does must not take the server down.
    return Error(ErrorCode::kInternal, e.what());
  }
}

Result<ExpiryReport> HqService::RunDailyJobs(int64_t now_s) {
  if (Status s = impl_->PublishRules(); !s.ok()) return s;
  return impl_->DailyJobs(now_s);
}

Status HqService::Start() { return impl_->PublishRules(); }

}  // namespace loyalty::hq
