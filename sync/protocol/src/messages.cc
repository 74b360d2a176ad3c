// Codecs of the sync messages. The reader below collects the first error of an object and
// turns every later call into a no-op, so each FromJson reads as a list of its fields; the
// path it carries ("checkouts[2].lines[0].qty") is what the error message names.
#include "loyalty/sync/messages.h"

#include <limits>

#include "loyalty/base/encoding.h"
#include "loyalty/base/json.h"

namespace loyalty::sync {
namespace {

using nlohmann::json;

constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kI64Min = std::numeric_limits<int64_t>::min();

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

class Reader {
 public:
  Reader(const json& j, std::string path) : j_(j), path_(std::move(path)) {
    if (!j_.is_object()) Fail("", "must be an object");
  }

  const Status& status() const { return status_; }
  bool ok() const { return status_.ok(); }
  std::string Path(std::string_view key) const {
    if (path_.empty()) return std::string(key);
    if (key.empty()) return path_;
    return path_ + "." + std::string(key);
  }

  // Fails and returns false; the first failure wins.
  bool Fail(std::string_view key, std::string_view what) {
    if (status_.ok()) status_ = Status::Error(ErrorCode::kBadRequest, Path(key) + " " + std::string(what));
    return false;
  }

  // The value under key, or null (and a failure) when missing.
  const json* Field(std::string_view key) {
    if (!ok()) return nullptr;
    auto it = j_.find(key);
    if (it == j_.end()) {
      Fail(key, "is missing");
      return nullptr;
    }
    return &*it;
  }

  bool Int(std::string_view key, int64_t* out, int64_t min = kI64Min, int64_t max = kI64Max) {
    const json* v = Field(key);
    return v && IntValue(*v, key, out, min, max);
  }

  bool IntValue(const json& v, std::string_view key, int64_t* out, int64_t min, int64_t max) {
    int64_t x = 0;
    if (v.is_number_unsigned()) {
      uint64_t u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(kI64Max)) return Fail(key, "is out of range");
      x = static_cast<int64_t>(u);
    } else if (v.is_number_integer()) {
      x = v.get<int64_t>();
    } else {
      return Fail(key, "must be an integer");
    }
    if (x < min || x > max) {
      return Fail(key, "must be " + std::to_string(min) + ".." + std::to_string(max) + ", got " + std::to_string(x));
    }
    *out = x;
    return true;
  }

  bool Bool(std::string_view key, bool* out) {
    const json* v = Field(key);
    if (!v) return false;
    if (!v->is_boolean()) return Fail(key, "must be a boolean");
    *out = v->get<bool>();
    return true;
  }

  bool Str(std::string_view key, std::string* out, size_t max_len, size_t min_len = 0) {
    const json* v = Field(key);
    return v && StrValue(*v, key, out, max_len, min_len);
  }

  bool StrValue(const json& v, std::string_view key, std::string* out, size_t max_len, size_t min_len) {
    if (!v.is_string()) return Fail(key, "must be a string");
    const auto& s = v.get_ref<const std::string&>();
    if (s.size() > max_len) return Fail(key, "must be at most " + std::to_string(max_len) + " bytes");
    if (s.size() < min_len) return Fail(key, "must be at least " + std::to_string(min_len) + " bytes");
    *out = s;
    return true;
  }

  bool OptStr(std::string_view key, std::optional<std::string>* out, size_t max_len) {
    const json* v = Field(key);
    if (!v) return false;
    if (v->is_null()) {
      out->reset();
      return true;
    }
    std::string s;
    if (!StrValue(*v, key, &s, max_len, 0)) return false;
    *out = std::move(s);
    return true;
  }

  // Lower-case hex of exactly `len` characters (or "" when allow_empty).
  bool Hex(std::string_view key, std::string* out, size_t len, bool allow_empty = false) {
    const json* v = Field(key);
    return v && HexValue(*v, key, out, len, allow_empty);
  }

  // Hex on the wire, raw bytes in the model.
  bool HexBytes(std::string_view key, std::string* out, size_t bytes) {
    std::string hex;
    if (!Hex(key, &hex, bytes * 2)) return false;
    *out = *HexDecode(hex);  // checked lower-case hex of even length: always decodes
    return true;
  }

  bool HexValue(const json& v, std::string_view key, std::string* out, size_t len, bool allow_empty) {
    if (!v.is_string()) return Fail(key, "must be a string");
    const auto& s = v.get_ref<const std::string&>();
    if (s.empty() && allow_empty) {
      out->clear();
      return true;
    }
    if (s.size() != len || !IsLowerHex(s)) {
      return Fail(key, "must be " + std::to_string(len) + " lower-case hex characters" + (allow_empty ? " or \"\"" : ""));
    }
    *out = s;
    return true;
  }

  bool MemberIdValue(const json& v, std::string_view key, uint64_t* out) {
    if (!v.is_string()) return Fail(key, "must be a decimal string");
    auto id = ParseMemberId(v.get_ref<const std::string&>());
    if (!id) return Fail(key, "must be a decimal uint64 string");
    *out = *id;
    return true;
  }

  bool MemberId(std::string_view key, uint64_t* out) {
    const json* v = Field(key);
    return v && MemberIdValue(*v, key, out);
  }

  bool OptMemberId(std::string_view key, std::optional<uint64_t>* out) {
    const json* v = Field(key);
    if (!v) return false;
    if (v->is_null()) {
      out->reset();
      return true;
    }
    uint64_t id = 0;
    if (!MemberIdValue(*v, key, &id)) return false;
    *out = id;
    return true;
  }

  bool OneOf(std::string_view key, std::string* out, std::initializer_list<std::string_view> allowed) {
    std::string s;
    if (!Str(key, &s, kMaxShortText)) return false;
    for (auto a : allowed) {
      if (s == a) {
        *out = std::move(s);
        return true;
      }
    }
    std::string list;
    for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
    return Fail(key, "must be one of " + list);
  }

  // An array of at most max_items, each read by fn(element, element_path, &item).
  template <typename T, typename Fn>
  bool Array(std::string_view key, std::vector<T>* out, size_t max_items, Fn fn) {
    const json* v = Field(key);
    if (!v) return false;
    if (!v->is_array()) return Fail(key, "must be an array");
    if (v->size() > max_items) return Fail(key, "must hold at most " + std::to_string(max_items) + " items");
    out->clear();
    out->reserve(v->size());
    size_t i = 0;
    for (const auto& e : *v) {
      std::string p = Path(key) + "[" + std::to_string(i++) + "]";
      T item{};
      Status s = fn(e, p, &item);
      if (!s.ok()) {
        if (status_.ok()) status_ = s;
        return false;
      }
      out->push_back(std::move(item));
    }
    return true;
  }

 private:
  const json& j_;
  std::string path_;
  Status status_;
};

// Reads an element that is itself a struct with a FromJson-like body taking a path.
template <typename T>
using BodyFn = Status (*)(const json&, const std::string&, T*);

Status ReadEntry(const json& j, const std::string& path, Entry* e) {
  Reader r(j, path);
  r.Hex("entry_id", &e->entry_id, 32);
  if (r.Str("terminal_id", &e->terminal_id, 32) && !IsTerminalId(e->terminal_id)) {
    r.Fail("terminal_id", "must match [A-Za-z0-9_-]{1,32}");
  }
  r.Int("seq", &e->seq, 1);
  if (r.Str("kind", &e->kind, kMaxShortText) && !IsEntryKind(e->kind)) r.Fail("kind", "is not an entry kind");
  r.MemberId("member_id", &e->member_id);
  r.Int("points", &e->points, -kMaxPoints, kMaxPoints);
  r.Int("at_ms", &e->at_ms, 0, kMaxTimeMs);
  r.Str("checkout_id", &e->checkout_id, kMaxIdChars);
  r.Str("refund_id", &e->refund_id, kMaxIdChars);
  r.Str("detail", &e->detail, kMaxDetailBytes);
  // The chain hashes travel as hex and are held as raw bytes (model::Entry).
  r.HexBytes("prev_hash", &e->prev_hash, model::kHashBytes);
  r.HexBytes("hash", &e->hash, model::kHashBytes);
  return r.status();
}

Status ReadCheckoutLine(const json& j, const std::string& path, CheckoutLine* l) {
  Reader r(j, path);
  r.Int("line", &l->line, 0, kMaxCheckoutLines - 1);
  r.Str("sku", &l->sku, kMaxShortText);
  r.Str("category", &l->category, kMaxShortText);
  r.Int("qty", &l->qty, 1, 10000);
  r.Int("unit_price_cents", &l->unit_price_cents, 0, kMaxUnitPriceCents);
  r.Int("tier_discount_cents", &l->tier_discount_cents, 0, kMaxCents);
  r.Int("coupon_cents", &l->coupon_cents, 0, kMaxCents);
  r.Int("redeem_cents", &l->redeem_cents, 0, kMaxCents);
  r.Int("net_cents", &l->net_cents, 0, kMaxCents);
  r.Int("net_before_redeem_cents", &l->net_before_redeem_cents, 0, kMaxCents);
  r.Bool("points_eligible", &l->points_eligible);
  r.Bool("redeemable", &l->redeemable);
  return r.status();
}

Status ReadCheckout(const json& j, const std::string& path, Checkout* c) {
  Reader r(j, path);
  r.Str("checkout_id", &c->checkout_id, kMaxIdChars, 1);
  r.Hex("request_hash", &c->request_hash, 64, true);
  r.OptMemberId("member_id", &c->member_id);
  r.Str("rules_version", &c->rules_version, kMaxShortText);
  r.Int("committed_at_ms", &c->committed_at_ms, 0, kMaxTimeMs);
  r.Int("subtotal_cents", &c->subtotal_cents, 0, kMaxCents);
  r.Int("total_due_cents", &c->total_due_cents, 0, kMaxCents);
  r.Int("points_earned", &c->points_earned, 0, kMaxPoints);
  r.Int("redeemed_points", &c->redeemed_points, 0, kMaxPoints);
  r.Int("eligible_cents", &c->eligible_cents, 0, kMaxCents);
  r.Int("redeemable_cents", &c->redeemable_cents, 0, kMaxCents);
  r.Hex("code_hash", &c->code_hash, 64, true);
  r.Str("tender", &c->tender, kMaxShortText);
  r.Str("coupon_id", &c->coupon_id, kMaxIdChars);
  r.Str("request_json", &c->request_json, kMaxDocumentBytes);
  r.Str("response_json", &c->response_json, kMaxDocumentBytes);
  r.Array("lines", &c->lines, kMaxCheckoutLines, ReadCheckoutLine);
  return r.status();
}

Status ReadRefundLine(const json& j, const std::string& path, RefundLine* l) {
  Reader r(j, path);
  r.Int("line", &l->line, 0, kMaxCheckoutLines - 1);
  r.Int("qty", &l->qty, 1, 10000);
  return r.status();
}

Status ReadRefund(const json& j, const std::string& path, Refund* f) {
  Reader r(j, path);
  r.Str("refund_id", &f->refund_id, kMaxIdChars, 1);
  r.Str("checkout_id", &f->checkout_id, kMaxIdChars, 1);
  r.Hex("request_hash", &f->request_hash, 64, true);
  r.Str("reason", &f->reason, kMaxShortText);
  r.Int("at_ms", &f->at_ms, 0, kMaxTimeMs);
  r.Int("refund_cents", &f->refund_cents, 0, kMaxCents);
  r.Int("points_clawed_back", &f->points_clawed_back, 0, kMaxPoints);
  r.Int("points_restored", &f->points_restored, 0, kMaxPoints);
  r.Str("response_json", &f->response_json, kMaxDocumentBytes);
  r.Array("lines", &f->lines, kMaxCheckoutLines, ReadRefundLine);
  return r.status();
}

Status ReadLot(const json& j, const std::string& path, SnapshotLot* l) {
  Reader r(j, path);
  r.Int("points", &l->points, -kMaxPoints, kMaxPoints);
  r.Int("expires_at_s", &l->expires_at_s);
  return r.status();
}

Status ReadSnapshot(const json& j, const std::string& path, Snapshot* s) {
  Reader r(j, path);
  r.MemberId("member_id", &s->member_id);
  r.OptStr("display_name", &s->display_name, kMaxShortText);
  r.OptStr("phone", &s->phone, kMaxShortText);
  r.Hex("phone_hash", &s->phone_hash, 64, true);
  r.OneOf("tier", &s->tier, {"member", "vip", "black"});
  r.OneOf("status", &s->status, {"active", "frozen"});
  r.Str("frozen_reason", &s->frozen_reason, kMaxReasonBytes);
  r.Int("birthday_month", &s->birthday_month, 0, 12);
  r.Int("balance", &s->balance, -kMaxPoints, kMaxPoints);
  r.Array("lots", &s->lots, kMaxSnapshotLots, ReadLot);
  r.Int("month_spend_cents", &s->month_spend_cents, 0, kMaxSpendCents);
  r.Int("unfrozen_at_ms", &s->unfrozen_at_ms, 0, kMaxTimeMs);
  r.Int("snapshot_at_s", &s->snapshot_at_s, 0, kMaxTimeS);
  r.Int("terminal_seq", &s->terminal_seq, 0);
  return r.status();
}

Status ReadIdentity(const json& j, const std::string& path, Identity* i) {
  Reader r(j, path);
  r.Str("channel", &i->channel, kMaxShortText, 1);
  r.Str("external_id", &i->external_id, kMaxShortText, 1);
  r.MemberId("member_id", &i->member_id);
  return r.status();
}

Status ReadCoupon(const json& j, const std::string& path, Coupon* c) {
  Reader r(j, path);
  r.Str("coupon_id", &c->coupon_id, kMaxIdChars, 1);
  r.MemberId("member_id", &c->member_id);
  r.OneOf("kind", &c->kind, {"amount_off", "percent_off"});
  r.Int("value_cents", &c->value_cents, 0);
  r.Int("bp", &c->bp, 0, 10000);
  r.Int("min_spend_cents", &c->min_spend_cents, 0);
  r.Int("valid_from_s", &c->valid_from_s);
  r.Int("valid_to_s", &c->valid_to_s);
  r.Bool("used", &c->used);
  return r.status();
}

Status ReadHead(const json& j, const std::string& path, ChainHead* h) {
  Reader r(j, path);
  r.Int("seq", &h->seq, 0);
  if (r.Hex("hash", &h->hash, 64, true) && h->hash.empty() != (h->seq == 0)) {
    r.Fail("hash", "must be \"\" exactly when seq is 0");
  }
  return r.status();
}

Status ReadUploadResult(const json& j, const std::string& path, UploadResult* u) {
  Reader r(j, path);
  r.Hex("entry_id", &u->entry_id, 32);
  r.OneOf("status", &u->status, {"created", "exists", "conflict", "invalid", "refused"});
  return r.status();
}

Status ReadEntryIdValue(const json& j, const std::string& path, std::string* out) {
  if (!j.is_string() || j.get_ref<const std::string&>().size() != 32 || !IsLowerHex(j.get_ref<const std::string&>())) {
    return Status::Error(ErrorCode::kBadRequest, path + " must be 32 lower-case hex characters");
  }
  *out = j.get<std::string>();
  return Status::Ok();
}

Status ReadMemberIdValue(const json& j, const std::string& path, uint64_t* out) {
  std::optional<uint64_t> id;
  if (j.is_string()) id = ParseMemberId(j.get_ref<const std::string&>());
  if (!id) return Status::Error(ErrorCode::kBadRequest, path + " must be a decimal uint64 string");
  *out = *id;
  return Status::Ok();
}

Status ReadRevocation(const json& j, const std::string& path, std::string* out) {
  if (j.is_string()) {
    auto raw = Base64UrlDecode(j.get_ref<const std::string&>());
    if (raw && raw->size() == 32) {
      *out = j.get<std::string>();
      return Status::Ok();
    }
  }
  return Status::Error(ErrorCode::kBadRequest, path + " must be a base64url Ed25519 public key (32 bytes)");
}

// Top-level messages read their fields with an empty path.
template <typename T>
Status Top(const json& j, T* out, BodyFn<T> fn) {
  if (!j.is_object()) return Status::Error(ErrorCode::kBadRequest, "the message must be a JSON object");
  return fn(j, "", out);
}

json Lines(const std::vector<CheckoutLine>& lines) {
  json a = json::array();
  for (const auto& l : lines) a.push_back(ToJson(l));
  return a;
}

template <typename T>
json ArrayOf(const std::vector<T>& v) {
  json a = json::array();
  for (const auto& x : v) a.push_back(ToJson(x));
  return a;
}

}  // namespace

bool IsEntryKind(std::string_view kind) {
  static constexpr std::string_view kKinds[] = {"earn",   "redeem", "clawback", "restore", "freeze",     "tier_upgrade",
                                                "correction", "expire", "adjust", "unfreeze", "tier_change"};
  for (auto k : kKinds) {
    if (k == kind) return true;
  }
  return false;
}

bool IsTerminalEntryKind(std::string_view kind) {
  static constexpr std::string_view kKinds[] = {"earn",   "redeem",       "clawback",  "restore",
                                                "freeze", "tier_upgrade", "correction"};
  for (auto k : kKinds) {
    if (k == kind) return true;
  }
  return false;
}

bool IsTerminalId(std::string_view id) {
  if (id.empty() || id.size() > 32) return false;
  for (char c : id) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::optional<uint64_t> ParseMemberId(std::string_view dec) {
  if (dec.empty() || dec.size() > 20) return std::nullopt;
  if (dec.size() > 1 && dec[0] == '0') return std::nullopt;
  uint64_t v = 0;
  for (char c : dec) {
    if (c < '0' || c > '9') return std::nullopt;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

// ---------------------------------------------------------------------------------------
// Entry, checkout, refund

json ToJson(const Entry& e) {
  return json{{"entry_id", e.entry_id},   {"terminal_id", e.terminal_id},
              {"seq", e.seq},             {"kind", e.kind},
              {"member_id", std::to_string(e.member_id)},
              {"points", e.points},       {"at_ms", e.at_ms},
              {"checkout_id", e.checkout_id}, {"refund_id", e.refund_id},
              {"detail", e.detail},       {"prev_hash", HexEncode(e.prev_hash)},
              {"hash", HexEncode(e.hash)}};
}
Status FromJson(const json& j, Entry* out) { return Top<Entry>(j, out, ReadEntry); }

json ToJson(const CheckoutLine& l) {
  return json{{"line", l.line},
              {"sku", l.sku},
              {"category", l.category},
              {"qty", l.qty},
              {"unit_price_cents", l.unit_price_cents},
              {"tier_discount_cents", l.tier_discount_cents},
              {"coupon_cents", l.coupon_cents},
              {"redeem_cents", l.redeem_cents},
              {"net_cents", l.net_cents},
              {"net_before_redeem_cents", l.net_before_redeem_cents},
              {"points_eligible", l.points_eligible},
              {"redeemable", l.redeemable}};
}
Status FromJson(const json& j, CheckoutLine* out) { return Top<CheckoutLine>(j, out, ReadCheckoutLine); }

json ToJson(const Checkout& c) {
  return json{{"checkout_id", c.checkout_id},
              {"request_hash", c.request_hash},
              {"member_id", c.member_id ? json(std::to_string(*c.member_id)) : json(nullptr)},
              {"rules_version", c.rules_version},
              {"committed_at_ms", c.committed_at_ms},
              {"subtotal_cents", c.subtotal_cents},
              {"total_due_cents", c.total_due_cents},
              {"points_earned", c.points_earned},
              {"redeemed_points", c.redeemed_points},
              {"eligible_cents", c.eligible_cents},
              {"redeemable_cents", c.redeemable_cents},
              {"code_hash", c.code_hash},
              {"tender", c.tender},
              {"coupon_id", c.coupon_id},
              {"request_json", c.request_json},
              {"response_json", c.response_json},
              {"lines", Lines(c.lines)}};
}
Status FromJson(const json& j, Checkout* out) { return Top<Checkout>(j, out, ReadCheckout); }

json ToJson(const RefundLine& l) { return json{{"line", l.line}, {"qty", l.qty}}; }
Status FromJson(const json& j, RefundLine* out) { return Top<RefundLine>(j, out, ReadRefundLine); }

json ToJson(const Refund& f) {
  return json{{"refund_id", f.refund_id},
              {"checkout_id", f.checkout_id},
              {"request_hash", f.request_hash},
              {"reason", f.reason},
              {"at_ms", f.at_ms},
              {"refund_cents", f.refund_cents},
              {"points_clawed_back", f.points_clawed_back},
              {"points_restored", f.points_restored},
              {"response_json", f.response_json},
              {"lines", ArrayOf(f.lines)}};
}
Status FromJson(const json& j, Refund* out) { return Top<Refund>(j, out, ReadRefund); }

// ---------------------------------------------------------------------------------------
// Snapshots, identities, coupons

json ToJson(const SnapshotLot& l) { return json{{"points", l.points}, {"expires_at_s", l.expires_at_s}}; }
Status FromJson(const json& j, SnapshotLot* out) { return Top<SnapshotLot>(j, out, ReadLot); }

json ToJson(const Snapshot& s) {
  return json{{"member_id", std::to_string(s.member_id)},
              {"display_name", s.display_name ? json(*s.display_name) : json(nullptr)},
              {"phone", s.phone ? json(*s.phone) : json(nullptr)},
              {"phone_hash", s.phone_hash},
              {"tier", s.tier},
              {"status", s.status},
              {"frozen_reason", s.frozen_reason},
              {"birthday_month", s.birthday_month},
              {"balance", s.balance},
              {"lots", ArrayOf(s.lots)},
              {"month_spend_cents", s.month_spend_cents},
              {"unfrozen_at_ms", s.unfrozen_at_ms},
              {"snapshot_at_s", s.snapshot_at_s},
              {"terminal_seq", s.terminal_seq}};
}
Status FromJson(const json& j, Snapshot* out) { return Top<Snapshot>(j, out, ReadSnapshot); }

Status ValidateSnapshot(const Snapshot& s) {
  Snapshot back;
  return FromJson(ToJson(s), &back);
}

json ToJson(const Identity& i) {
  return json{{"channel", i.channel}, {"external_id", i.external_id}, {"member_id", std::to_string(i.member_id)}};
}
Status FromJson(const json& j, Identity* out) { return Top<Identity>(j, out, ReadIdentity); }

json ToJson(const Coupon& c) {
  return json{{"coupon_id", c.coupon_id},
              {"member_id", std::to_string(c.member_id)},
              {"kind", c.kind},
              {"value_cents", c.value_cents},
              {"bp", c.bp},
              {"min_spend_cents", c.min_spend_cents},
              {"valid_from_s", c.valid_from_s},
              {"valid_to_s", c.valid_to_s},
              {"used", c.used}};
}
Status FromJson(const json& j, Coupon* out) { return Top<Coupon>(j, out, ReadCoupon); }

// ---------------------------------------------------------------------------------------
// Hello

json ToJson(const ChainHead& h) { return json{{"seq", h.seq}, {"hash", h.hash}}; }
Status FromJson(const json& j, ChainHead* out) { return Top<ChainHead>(j, out, ReadHead); }

json ToJson(const HelloRequest& h) {
  return json{{"protocol", h.protocol},
              {"store_id", h.store_id},
              {"agent_version", h.agent_version},
              {"head", ToJson(h.head)},
              {"entries", h.entries}};
}
Status FromJson(const json& j, HelloRequest* out) {
  return Top<HelloRequest>(j, out, [](const json& j, const std::string& path, HelloRequest* h) {
    Reader r(j, path);
    r.Int("protocol", &h->protocol, kProtocolVersion, kProtocolVersion);
    r.Str("store_id", &h->store_id, kMaxIdChars);
    r.Str("agent_version", &h->agent_version, kMaxShortText);
    if (const json* head = r.Field("head")) {
      Status s = ReadHead(*head, r.Path("head"), &h->head);
      if (!s.ok()) return s;
    }
    r.Int("entries", &h->entries, 0);
    return r.status();
  });
}

json ToJson(const HelloResponse& h) {
  return json{{"protocol", h.protocol},
              {"hq_time_ms", h.hq_time_ms},
              {"terminal_known", h.terminal_known},
              {"hq_entries", h.hq_entries},
              {"hq_head", ToJson(h.hq_head)}};
}
Status FromJson(const json& j, HelloResponse* out) {
  return Top<HelloResponse>(j, out, [](const json& j, const std::string& path, HelloResponse* h) {
    Reader r(j, path);
    r.Int("protocol", &h->protocol, kProtocolVersion, kProtocolVersion);
    r.Int("hq_time_ms", &h->hq_time_ms);
    r.Bool("terminal_known", &h->terminal_known);
    r.Int("hq_entries", &h->hq_entries, 0);
    if (const json* head = r.Field("hq_head")) {
      Status s = ReadHead(*head, r.Path("hq_head"), &h->hq_head);
      if (!s.ok()) return s;
    }
    return r.status();
  });
}

// ---------------------------------------------------------------------------------------
// Upload

json ToJson(const UploadRequest& u) {
  return json{{"entries", ArrayOf(u.entries)}, {"checkouts", ArrayOf(u.checkouts)}, {"refunds", ArrayOf(u.refunds)}};
}
Status FromJson(const json& j, UploadRequest* out) {
  return Top<UploadRequest>(j, out, [](const json& j, const std::string& path, UploadRequest* u) {
    Reader r(j, path);
    r.Array("entries", &u->entries, kMaxUploadEntries, ReadEntry);
    r.Array("checkouts", &u->checkouts, kMaxUploadCheckouts, ReadCheckout);
    r.Array("refunds", &u->refunds, kMaxUploadCheckouts, ReadRefund);
    return r.status();
  });
}

json ToJson(const UploadResult& u) { return json{{"entry_id", u.entry_id}, {"status", u.status}}; }
Status FromJson(const json& j, UploadResult* out) { return Top<UploadResult>(j, out, ReadUploadResult); }

json ToJson(const UploadResponse& u) { return json{{"results", ArrayOf(u.results)}}; }
Status FromJson(const json& j, UploadResponse* out) {
  return Top<UploadResponse>(j, out, [](const json& j, const std::string& path, UploadResponse* u) {
    Reader r(j, path);
    r.Array("results", &u->results, kMaxUploadEntries, ReadUploadResult);
    return r.status();
  });
}

// ---------------------------------------------------------------------------------------
// Changes

json ToJson(const ChangesResponse& c) {
  json rev = json::array();
  for (const auto& k : c.revocations) rev.push_back(k);
  return json{{"cursor", c.cursor},
              {"more", c.more},
              {"hq_time_ms", c.hq_time_ms},
              {"members", ArrayOf(c.members)},
              {"identities", ArrayOf(c.identities)},
              {"coupons", ArrayOf(c.coupons)},
              {"revocations", rev},
              {"rules", c.rules ? *c.rules : json(nullptr)}};
}
Status FromJson(const json& j, ChangesResponse* out) {
  return Top<ChangesResponse>(j, out, [](const json& j, const std::string& path, ChangesResponse* c) {
    Reader r(j, path);
    r.Str("cursor", &c->cursor, kMaxShortText);
    r.Bool("more", &c->more);
    r.Int("hq_time_ms", &c->hq_time_ms);
    // Pages hold at most `limit` members; identities and coupons belong to those members
    // (plus chain-wide coupons), so their caps are generous multiples.
    r.Array("members", &c->members, kMaxChangesLimit, ReadSnapshot);
    r.Array("identities", &c->identities, 8 * kMaxChangesLimit, ReadIdentity);
    r.Array("coupons", &c->coupons, 8 * kMaxChangesLimit, ReadCoupon);
    r.Array("revocations", &c->revocations, 8 * kMaxChangesLimit, ReadRevocation);
    if (const json* rules = r.Field("rules")) {
      if (rules->is_null()) {
        c->rules.reset();
      } else if (!rules->is_object()) {
        r.Fail("rules", "must be an object or null");
      } else if (auto v = rules->find("version"); v == rules->end() || !v->is_string()) {
        r.Fail("rules.version", "must be a string");
      } else {
        c->rules = *rules;
      }
    }
    return r.status();
  });
}

// ---------------------------------------------------------------------------------------
// Fetch, members

json ToJson(const FetchRequest& f) { return json{{"entry_ids", f.entry_ids}}; }
Status FromJson(const json& j, FetchRequest* out) {
  return Top<FetchRequest>(j, out, [](const json& j, const std::string& path, FetchRequest* f) {
    Reader r(j, path);
    r.Array("entry_ids", &f->entry_ids, kMaxFetchIds, ReadEntryIdValue);
    return r.status();
  });
}

json ToJson(const FetchResponse& f) {
  return json{{"entries", ArrayOf(f.entries)}, {"checkouts", ArrayOf(f.checkouts)}, {"refunds", ArrayOf(f.refunds)}};
}
Status FromJson(const json& j, FetchResponse* out) {
  return Top<FetchResponse>(j, out, [](const json& j, const std::string& path, FetchResponse* f) {
    Reader r(j, path);
    // A fetch answers at most kMaxFetchIds entries; their checkouts and refunds at most one each.
    r.Array("entries", &f->entries, kMaxFetchIds, ReadEntry);
    r.Array("checkouts", &f->checkouts, kMaxFetchIds, ReadCheckout);
    r.Array("refunds", &f->refunds, kMaxFetchIds, ReadRefund);
    return r.status();
  });
}

json ToJson(const MembersRequest& m) {
  json a = json::array();
  for (uint64_t id : m.member_ids) a.push_back(std::to_string(id));
  return json{{"member_ids", a}};
}
Status FromJson(const json& j, MembersRequest* out) {
  return Top<MembersRequest>(j, out, [](const json& j, const std::string& path, MembersRequest* m) {
    Reader r(j, path);
    r.Array("member_ids", &m->member_ids, kMaxMemberIds, ReadMemberIdValue);
    return r.status();
  });
}

json ToJson(const MembersResponse& m) { return json{{"members", ArrayOf(m.members)}}; }
Status FromJson(const json& j, MembersResponse* out) {
  return Top<MembersResponse>(j, out, [](const json& j, const std::string& path, MembersResponse* m) {
    Reader r(j, path);
    r.Array("members", &m->members, kMaxMemberIds, ReadSnapshot);
    return r.status();
  });
}

// ---------------------------------------------------------------------------------------

Result<json> ParseJsonObject(std::string_view body) { return loyalty::ParseJsonObject(body); }

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

Result<ChangesQuery> ParseChangesQuery(const std::map<std::string, std::string>& query) {
  ChangesQuery q;
  if (auto it = query.find("cursor"); it != query.end()) {
    if (it->second.size() > kMaxShortText) return Status::Error(ErrorCode::kBadRequest, "cursor is too long");
    q.cursor = it->second;
  }
  if (auto it = query.find("limit"); it != query.end()) {
    const std::string& s = it->second;
    int64_t v = 0;
    bool ok = !s.empty() && s.size() <= 4 && (s.size() == 1 || s[0] != '0');
    for (char c : s) {
      if (c < '0' || c > '9') ok = false;
      if (ok) v = v * 10 + (c - '0');
    }
    if (!ok || v < 1 || v > kMaxChangesLimit) {
      return Status::Error(ErrorCode::kBadRequest, "limit must be 1.." + std::to_string(kMaxChangesLimit));
    }
    q.limit = v;
  }
  return q;
}

}  // namespace loyalty::sync
