// Codecs of the sync messages. Each reader takes a loyalty::JsonReader (base/json_reader.h)
// at the message's place in the tree and reads as a list of its fields: the first problem
// wins, and the path it carries ("checkouts[2].lines[0].qty") is what the error names.
#include "loyalty/sync/messages.h"

#include <algorithm>
#include <limits>

#include "loyalty/base/encoding.h"
#include "loyalty/base/json_reader.h"

namespace loyalty::sync {
namespace {

using nlohmann::json;

// The protocol's own kinds of value, read from a field or an array element.

// Lower-case hex of exactly `len` characters (or "" when allow_empty).
bool Hex(const JsonReader& v, std::string* out, size_t len, bool allow_empty = false) {
  if (!v.Str(out)) return false;
  if (IsHexField(*out, len, allow_empty)) return true;
  return v.Fail("must be " + std::to_string(len) + " lower-case hex characters" +
                (allow_empty ? " or \"\"" : ""));
}

// Hex on the wire, raw bytes in the model.
bool HexBytes(const JsonReader& v, std::string* out, size_t bytes) {
  std::string hex;
  if (!Hex(v, &hex, bytes * 2)) return false;
  *out = *HexDecode(hex);  // checked lower-case hex of even length: always decodes
  return true;
}

// A member id: a decimal uint64 string.
bool MemberId(const JsonReader& v, uint64_t* out) {
  std::string dec;
  if (!v.Str(&dec)) return false;
  auto id = ParseMemberId(dec);
  if (!id) return v.Fail("must be a decimal uint64 string");
  *out = *id;
  return true;
}

// Nullable fields are always sent: null, or the value.
bool OptMemberId(const JsonReader& v, std::optional<uint64_t>* out) {
  if (!v.Require()) return false;
  if (v.absent()) {
    out->reset();
    return true;
  }
  uint64_t id = 0;
  if (!MemberId(v, &id)) return false;
  *out = id;
  return true;
}

bool NullableStr(const JsonReader& r, std::string_view key, std::optional<std::string>* out,
                 size_t max_bytes) {
  return r.Require(key) && r.OptStr(key, out, 0, max_bytes);
}

// Names and phones reach a terminal only masked (hq-and-sync.md): a name is "*" or one
// character and "*" (hq/pii.h MaskName); a phone is digits and '*', at least one '*' and at
// most 7 digits shown (MaskPhone). Anything else would be held and shown as HQ sent it.
bool IsMaskedName(std::string_view name) {
  if (name.empty() || name.back() != '*') return false;
  const std::string_view shown = name.substr(0, name.size() - 1);
  if (shown.empty()) return true;
  const auto c = static_cast<unsigned char>(shown[0]);
  const size_t len = c < 0x80           ? 1
                     : (c >> 5) == 0x6  ? 2
                     : (c >> 4) == 0xe  ? 3
                     : (c >> 3) == 0x1e ? 4
                                        : 0;
  return len == shown.size();
}
bool IsMaskedPhone(std::string_view phone) {
  size_t digits = 0, stars = 0;
  for (char c : phone) {
    if (c >= '0' && c <= '9')
      ++digits;
    else if (c == '*')
      ++stars;
    else
      return false;
  }
  return stars > 0 && digits <= 7;
}

template <typename T>
using ReadFn = void (*)(const JsonReader&, T*);

// An array of at most max_items, each element read by read(element, &item).
template <typename T, typename Read>
bool List(const JsonReader& r, std::string_view key, size_t max_items, std::vector<T>* out,
          Read read) {
  out->clear();
  return r.Array(key, 0, max_items,
                 [out, read](const JsonReader& e) { read(e, &out->emplace_back()); });
}

void ReadEntry(const JsonReader& r, Entry* e) {
  if (!r.ExpectObject()) return;
  Hex(r.Field("entry_id"), &e->entry_id, 32);
  if (r.Str("terminal_id", &e->terminal_id, 0, 32) && !IsTerminalId(e->terminal_id)) {
    r.Fail("terminal_id", "must match [A-Za-z0-9_-]{1,32}");
  }
  r.Int("seq", &e->seq, 1);
  if (r.Str("kind", &e->kind, 0, kMaxShortText) && !IsEntryKind(e->kind))
    r.Fail("kind", "is not an entry kind");
  MemberId(r.Field("member_id"), &e->member_id);
  r.Int("points", &e->points, -kMaxPoints, kMaxPoints);
  r.Int("at_ms", &e->at_ms, 0, kMaxTimeMs);
  r.Str("checkout_id", &e->checkout_id, 0, kMaxIdChars);
  r.Str("refund_id", &e->refund_id, 0, kMaxIdChars);
  r.Str("detail", &e->detail, 0, kMaxDetailBytes);
  // The chain hashes travel as hex and are held as raw bytes (model::Entry).
  HexBytes(r.Field("prev_hash"), &e->prev_hash, model::kHashBytes);
  HexBytes(r.Field("hash"), &e->hash, model::kHashBytes);
}

// A line's qty and unit price: within the Limits of loyalty-rules.md in every message but an
// upload, whose records HQ's checks refuse alone past them (kWide: any integer, messages.h).
// A terminal reads HQ's answers (a sale, a fetch) with the limits: it trusts no record
// whose quantities its refunds would divide or sum.
template <bool kWide>
void ReadCheckoutLineAs(const JsonReader& r, CheckoutLine* l) {
  if (!r.ExpectObject()) return;
  r.Int("line", &l->line, 0, kMaxCheckoutLines - 1);
  r.Str("sku", &l->sku, 0, kMaxShortText);
  r.Str("category", &l->category, 0, kMaxShortText);
  r.Int("qty", &l->qty, kWide ? kMinWireInt : 1, kWide ? kMaxWireInt : 10000);
  r.Int("unit_price_cents", &l->unit_price_cents, kWide ? kMinWireInt : 0,
        kWide ? kMaxWireInt : kMaxUnitPriceCents);
  r.Int("tier_discount_cents", &l->tier_discount_cents, 0, kMaxCents);
  r.Int("coupon_cents", &l->coupon_cents, 0, kMaxCents);
  r.Int("redeem_cents", &l->redeem_cents, 0, kMaxCents);
  r.Int("net_cents", &l->net_cents, 0, kMaxCents);
  r.Int("net_before_redeem_cents", &l->net_before_redeem_cents, 0, kMaxCents);
  r.Bool("points_eligible", &l->points_eligible);
  r.Bool("redeemable", &l->redeemable);
}

// An optional client id (1-64 of [A-Za-z0-9_-]): absent or null is "".
void OptionalId(const JsonReader& r, std::string_view key, std::string* out) {
  std::optional<std::string> v;
  if (!r.OptStr(key, &v, 1, kMaxIdChars) || !v) return;
  if (!IsClientId(*v)) {
    r.Fail(key, "must be 1-64 characters of [A-Za-z0-9_-]");
    return;
  }
  *out = *v;
}

template <bool kWide>
void ReadCheckoutAs(const JsonReader& r, Checkout* c) {
  if (!r.ExpectObject()) return;
  r.Str("checkout_id", &c->checkout_id, 1, kMaxIdChars);
  Hex(r.Field("request_hash"), &c->request_hash, 64, true);
  OptMemberId(r.Field("member_id"), &c->member_id);
  r.Str("rules_version", &c->rules_version, 0, kMaxShortText);
  r.Int("committed_at_ms", &c->committed_at_ms, 0, kMaxTimeMs);
  r.Int("subtotal_cents", &c->subtotal_cents, 0, kMaxCents);
  r.Int("total_due_cents", &c->total_due_cents, 0, kMaxCents);
  r.Int("points_earned", &c->points_earned, 0, kMaxPoints);
  r.Int("redeemed_points", &c->redeemed_points, 0, kMaxPoints);
  r.Int("eligible_cents", &c->eligible_cents, 0, kMaxCents);
  r.Int("redeemable_cents", &c->redeemable_cents, 0, kMaxCents);
  Hex(r.Field("code_hash"), &c->code_hash, 64, true);
  r.Str("tender", &c->tender, 0, kMaxShortText);
  r.Str("coupon_id", &c->coupon_id, 0, kMaxIdChars);
  OptionalId(r, "cashier_id", &c->cashier_id);
  r.Str("request_json", &c->request_json, 0, kMaxDocumentBytes);
  r.Str("response_json", &c->response_json, 0, kMaxDocumentBytes);
  List(r, "lines", kMaxCheckoutLines, &c->lines, ReadCheckoutLineAs<kWide>);
}

template <bool kWide>
void ReadRefundLineAs(const JsonReader& r, RefundLine* l) {
  if (!r.ExpectObject()) return;
  r.Int("line", &l->line, 0, kMaxCheckoutLines - 1);
  r.Int("qty", &l->qty, kWide ? kMinWireInt : 1, kWide ? kMaxWireInt : 10000);
}

template <bool kWide>
void ReadRefundAs(const JsonReader& r, Refund* f) {
  if (!r.ExpectObject()) return;
  r.Str("refund_id", &f->refund_id, 1, kMaxIdChars);
  r.Str("checkout_id", &f->checkout_id, 1, kMaxIdChars);
  Hex(r.Field("request_hash"), &f->request_hash, 64, true);
  r.Str("reason", &f->reason, 0, kMaxShortText);
  r.Int("at_ms", &f->at_ms, 0, kMaxTimeMs);
  r.Int("refund_cents", &f->refund_cents, 0, kMaxCents);
  r.Int("points_clawed_back", &f->points_clawed_back, 0, kMaxPoints);
  r.Int("points_restored", &f->points_restored, 0, kMaxPoints);
  r.Str("response_json", &f->response_json, 0, kMaxDocumentBytes);
  List(r, "lines", kMaxCheckoutLines, &f->lines, ReadRefundLineAs<kWide>);
  std::optional<std::string> sold_at, receipt;
  if (r.OptStr("sold_at", &sold_at, 1, 32) && sold_at) {
    if (!IsTerminalId(*sold_at)) r.Fail("sold_at", "must match [A-Za-z0-9_-]{1,32}");
    f->sold_at = *sold_at;
  }
  if (r.OptStr("receipt", &receipt, 1, kMaxReceiptBytes) && receipt) f->receipt = *receipt;
  OptionalId(r, "cashier_id", &f->cashier_id);
}

void ReadCheckoutLine(const JsonReader& r, CheckoutLine* l) { ReadCheckoutLineAs<false>(r, l); }
void ReadCheckout(const JsonReader& r, Checkout* c) { ReadCheckoutAs<false>(r, c); }
void ReadRefundLine(const JsonReader& r, RefundLine* l) { ReadRefundLineAs<false>(r, l); }
void ReadRefund(const JsonReader& r, Refund* f) { ReadRefundAs<false>(r, f); }

void ReadLot(const JsonReader& r, SnapshotLot* l) {
  if (!r.ExpectObject()) return;
  r.Int("points", &l->points, -kMaxPoints, kMaxPoints);
  r.Int("expires_at_s", &l->expires_at_s);
}

void ReadHqEntry(const JsonReader& r, HqEntry* e) {
  if (!r.ExpectObject()) return;
  Hex(r.Field("entry_id"), &e->entry_id, 32);
  if (r.Str("kind", &e->kind, 0, kMaxShortText) && !IsHqEntryKind(e->kind))
    r.Fail("kind", "must be one of adjust, expire, unfreeze, tier_change, freeze");
  r.Int("points", &e->points, -kMaxPoints, kMaxPoints);
  r.Int("at_ms", &e->at_ms, 0, kMaxTimeMs);
}

void ReadSnapshot(const JsonReader& r, Snapshot* s) {
  if (!r.ExpectObject()) return;
  MemberId(r.Field("member_id"), &s->member_id);
  if (NullableStr(r, "display_name", &s->display_name, kMaxShortText) && s->display_name &&
      !IsMaskedName(*s->display_name))
    r.Fail("display_name", "must be masked: one character and \"*\", or \"*\"");
  if (NullableStr(r, "phone", &s->phone, kMaxShortText) && s->phone && !IsMaskedPhone(*s->phone))
    r.Fail("phone", "must be masked: digits and \"*\", at most 7 digits shown");
  Hex(r.Field("phone_hash"), &s->phone_hash, 64, true);
  r.OneOf("tier", &s->tier, {"member", "vip", "black"});
  r.OneOf("status", &s->status, {"active", "frozen"});
  r.Str("frozen_reason", &s->frozen_reason, 0, kMaxReasonBytes);
  r.Int("birthday_month", &s->birthday_month, 0, 12);
  r.Int("balance", &s->balance, -kMaxPoints, kMaxPoints);
  List(r, "lots", kMaxSnapshotLots, &s->lots, ReadLot);
  r.Int("month_spend_cents", &s->month_spend_cents, 0, kMaxSpendCents);
  r.Int("unfrozen_at_ms", &s->unfrozen_at_ms, 0, kMaxTimeMs);
  r.Int("snapshot_at_s", &s->snapshot_at_s, 0, kMaxTimeS);
  r.Int("terminal_seq", &s->terminal_seq, 0);
  if (r.Has("phone_key_id")) r.Int("phone_key_id", &s->phone_key_id, 1, kMaxPhoneKeyId);
  if (r.Has("hq_entries"))
    List(r, "hq_entries", kMaxSnapshotHqEntries, &s->hq_entries, ReadHqEntry);
}

void ReadIdentity(const JsonReader& r, Identity* i) {
  if (!r.ExpectObject()) return;
  r.Str("channel", &i->channel, 1, kMaxShortText);
  r.Str("external_id", &i->external_id, 1, kMaxShortText);
  MemberId(r.Field("member_id"), &i->member_id);
}

void ReadCoupon(const JsonReader& r, Coupon* c) {
  if (!r.ExpectObject()) return;
  r.Str("coupon_id", &c->coupon_id, 1, kMaxIdChars);
  MemberId(r.Field("member_id"), &c->member_id);
  r.OneOf("kind", &c->kind, {"amount_off", "percent_off"});
  r.Int("value_cents", &c->value_cents, 0);
  r.Int("bp", &c->bp, 0, 10000);
  r.Int("min_spend_cents", &c->min_spend_cents, 0);
  r.Int("valid_from_s", &c->valid_from_s);
  r.Int("valid_to_s", &c->valid_to_s);
  r.Bool("used", &c->used);
}

void ReadHead(const JsonReader& r, ChainHead* h) {
  if (!r.ExpectObject()) return;
  r.Int("seq", &h->seq, 0);
  if (Hex(r.Field("hash"), &h->hash, 64, true) && h->hash.empty() != (h->seq == 0)) {
    r.Fail("hash", "must be \"\" exactly when seq is 0");
  }
}

void ReadUploadResult(const JsonReader& r, UploadResult* u) {
  if (!r.ExpectObject()) return;
  Hex(r.Field("entry_id"), &u->entry_id, 32);
  r.OneOf("status", &u->status, {"created", "exists", "conflict", "invalid", "refused"});
}

void ReadRevocation(const JsonReader& v, std::string* out) {
  if (!v.Str(out)) return;
  auto raw = Base64UrlDecode(*out);
  if (!raw || raw->size() != 32) v.Fail("must be a base64url Ed25519 public key (32 bytes)");
}

// Top-level messages read their fields with an empty path.
template <typename T>
Status Top(const json& j, T* out, ReadFn<T> read) {
  if (!j.is_object())
    return Status::Error(ErrorCode::kBadRequest, "the message must be a JSON object");
  JsonReader r(j, ErrorCode::kBadRequest);
  read(r, out);
  return r.status();
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
  static constexpr std::string_view kKinds[] = {"earn",   "redeem",       "clawback",   "restore",
                                                "freeze", "tier_upgrade", "correction", "expire",
                                                "adjust", "unfreeze",     "tier_change"};
  for (auto k : kKinds) {
    if (k == kind) return true;
  }
  return false;
}

bool IsHqEntryKind(std::string_view kind) {
  static constexpr std::string_view kKinds[] = {"adjust", "expire", "unfreeze", "tier_change",
                                                "freeze"};
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

bool IsClientId(std::string_view id) {
  if (id.empty() || id.size() > kMaxIdChars) return false;
  for (char c : id) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool IsTerminalId(std::string_view id) { return id.size() <= 32 && IsClientId(id); }

bool IsHexField(std::string_view s, size_t len, bool allow_empty) {
  if (s.empty() && allow_empty) return true;
  if (s.size() != len) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
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
  return json{{"entry_id", e.entry_id},
              {"terminal_id", e.terminal_id},
              {"seq", e.seq},
              {"kind", e.kind},
              {"member_id", std::to_string(e.member_id)},
              {"points", e.points},
              {"at_ms", e.at_ms},
              {"checkout_id", e.checkout_id},
              {"refund_id", e.refund_id},
              {"detail", e.detail},
              {"prev_hash", HexEncode(e.prev_hash)},
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
Status FromJson(const json& j, CheckoutLine* out) {
  return Top<CheckoutLine>(j, out, ReadCheckoutLine);
}

json ToJson(const Checkout& c) {
  json j{{"checkout_id", c.checkout_id},
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
  if (!c.cashier_id.empty()) j["cashier_id"] = c.cashier_id;
  return j;
}
Status FromJson(const json& j, Checkout* out) { return Top<Checkout>(j, out, ReadCheckout); }

json ToJson(const RefundLine& l) { return json{{"line", l.line}, {"qty", l.qty}}; }
Status FromJson(const json& j, RefundLine* out) { return Top<RefundLine>(j, out, ReadRefundLine); }

json ToJson(const Refund& f) {
  json j{{"refund_id", f.refund_id},
         {"checkout_id", f.checkout_id},
         {"request_hash", f.request_hash},
         {"reason", f.reason},
         {"at_ms", f.at_ms},
         {"refund_cents", f.refund_cents},
         {"points_clawed_back", f.points_clawed_back},
         {"points_restored", f.points_restored},
         {"response_json", f.response_json},
         {"lines", ArrayOf(f.lines)}};
  // Absent when empty: the records of an older terminal read the same.
  if (!f.sold_at.empty()) j["sold_at"] = f.sold_at;
  if (!f.receipt.empty()) j["receipt"] = f.receipt;
  if (!f.cashier_id.empty()) j["cashier_id"] = f.cashier_id;
  return j;
}
Status FromJson(const json& j, Refund* out) { return Top<Refund>(j, out, ReadRefund); }
Status FromJsonAsUploaded(const json& j, Refund* out) {
  return Top<Refund>(j, out, ReadRefundAs<true>);
}

// ---------------------------------------------------------------------------------------
// Snapshots, identities, coupons

json ToJson(const SnapshotLot& l) {
  return json{{"points", l.points}, {"expires_at_s", l.expires_at_s}};
}
Status FromJson(const json& j, SnapshotLot* out) { return Top<SnapshotLot>(j, out, ReadLot); }

json ToJson(const Snapshot& s) {
  json out{{"member_id", std::to_string(s.member_id)},
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
  if (s.phone_key_id != 0) out["phone_key_id"] = s.phone_key_id;
  if (!s.hq_entries.empty()) {
    json entries = json::array();
    for (const auto& e : s.hq_entries)
      entries.push_back(json{
          {"entry_id", e.entry_id}, {"kind", e.kind}, {"points", e.points}, {"at_ms", e.at_ms}});
    out["hq_entries"] = std::move(entries);
  }
  return out;
}
Status FromJson(const json& j, Snapshot* out) { return Top<Snapshot>(j, out, ReadSnapshot); }

Status ValidateSnapshot(const Snapshot& s) {
  Snapshot back;
  return FromJson(ToJson(s), &back);
}

json ToJson(const Identity& i) {
  return json{{"channel", i.channel},
              {"external_id", i.external_id},
              {"member_id", std::to_string(i.member_id)}};
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
  json j{{"protocol", h.protocol},
         {"store_id", h.store_id},
         {"agent_version", h.agent_version},
         {"head", ToJson(h.head)},
         {"entries", h.entries}};
  if (h.cursor) j["cursor"] = *h.cursor;
  return j;
}
Status FromJson(const json& j, HelloRequest* out) {
  return Top<HelloRequest>(j, out, [](const JsonReader& r, HelloRequest* h) {
    r.Int("protocol", &h->protocol, kProtocolVersion, kProtocolVersion);
    r.Str("store_id", &h->store_id, 0, kMaxIdChars);
    r.Str("agent_version", &h->agent_version, 0, kMaxShortText);
    ReadHead(r.Field("head"), &h->head);
    r.Int("entries", &h->entries, 0);
    r.OptStr("cursor", &h->cursor, 0, kMaxShortText);
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
  return Top<HelloResponse>(j, out, [](const JsonReader& r, HelloResponse* h) {
    r.Int("protocol", &h->protocol, kProtocolVersion, kProtocolVersion);
    r.Int("hq_time_ms", &h->hq_time_ms, 0, kMaxTimeMs);
    r.Bool("terminal_known", &h->terminal_known);
    r.Int("hq_entries", &h->hq_entries, 0);
    ReadHead(r.Field("hq_head"), &h->hq_head);
  });
}

// ---------------------------------------------------------------------------------------
// Upload

json ToJson(const UploadRequest& u) {
  return json{{"entries", ArrayOf(u.entries)},
              {"checkouts", ArrayOf(u.checkouts)},
              {"refunds", ArrayOf(u.refunds)}};
}
Status FromJson(const json& j, UploadRequest* out) {
  return Top<UploadRequest>(j, out, [](const JsonReader& r, UploadRequest* u) {
    List(r, "entries", kMaxUploadEntries, &u->entries, ReadEntry);
    List(r, "checkouts", kMaxUploadCheckouts, &u->checkouts, ReadCheckoutAs<true>);
    List(r, "refunds", kMaxUploadCheckouts, &u->refunds, ReadRefundAs<true>);
  });
}

json ToJson(const UploadResult& u) { return json{{"entry_id", u.entry_id}, {"status", u.status}}; }
Status FromJson(const json& j, UploadResult* out) {
  return Top<UploadResult>(j, out, ReadUploadResult);
}

json ToJson(const UploadResponse& u) { return json{{"results", ArrayOf(u.results)}}; }
Status FromJson(const json& j, UploadResponse* out) {
  return Top<UploadResponse>(j, out, [](const JsonReader& r, UploadResponse* u) {
    List(r, "results", kMaxUploadEntries, &u->results, ReadUploadResult);
  });
}

// ---------------------------------------------------------------------------------------
// Changes

json ToJson(const ChangesResponse& c) {
  json rev = json::array();
  for (const auto& k : c.revocations) rev.push_back(k);
  json out{{"cursor", c.cursor},
           {"more", c.more},
           {"hq_time_ms", c.hq_time_ms},
           {"members", ArrayOf(c.members)},
           {"identities", ArrayOf(c.identities)},
           {"coupons", ArrayOf(c.coupons)},
           {"revocations", rev},
           {"rules", c.rules ? *c.rules : json(nullptr)}};
  if (!c.evict.empty()) {  // absent when empty: pages of older HQs read the same
    json ids = json::array();
    for (uint64_t id : c.evict) ids.push_back(std::to_string(id));
    out["evict"] = std::move(ids);
  }
  if (c.phone_key)
    out["phone_key"] = {{"key_id", c.phone_key->key_id},
                        {"key", Base64UrlEncode(c.phone_key->key)}};
  return out;
}
Status FromJson(const json& j, ChangesResponse* out) {
  return Top<ChangesResponse>(j, out, [](const JsonReader& r, ChangesResponse* c) {
    r.Str("cursor", &c->cursor, 0, kMaxShortText);
    r.Bool("more", &c->more);
    r.Int("hq_time_ms", &c->hq_time_ms);
    // Pages hold at most `limit` members; identities and coupons belong to those members
    // (plus chain-wide coupons), so their caps are generous multiples.
    List(r, "members", kMaxChangesLimit, &c->members, ReadSnapshot);
    List(r, "identities", 8 * kMaxChangesLimit, &c->identities, ReadIdentity);
    List(r, "coupons", 8 * kMaxChangesLimit, &c->coupons, ReadCoupon);
    List(r, "revocations", 8 * kMaxChangesLimit, &c->revocations, ReadRevocation);
    if (r.Has("evict"))
      List(r, "evict", kMaxEvictions, &c->evict,
           [](const JsonReader& v, uint64_t* id) { MemberId(v, id); });
    if (r.Has("phone_key")) {
      const JsonReader k = r.Field("phone_key");
      PhoneKey& pk = c->phone_key.emplace();
      std::string text;
      if (k.ExpectObject() && k.Int("key_id", &pk.key_id, 1, kMaxPhoneKeyId) &&
          k.Str("key", &text, 1, 64)) {
        auto raw = Base64UrlDecode(text);
        if (!raw || raw->size() != 32)
          k.Fail("key", "must be 32 bytes of base64url");
        else
          pk.key = *raw;
      }
    }
    // The rules are HQ's document, read by the rules module; here only its version is.
    const JsonReader rules = r.Field("rules");
    std::string version;
    if (rules.Require()) {
      if (rules.absent()) {
        c->rules.reset();
      } else if (rules.ExpectObject("an object or null") && rules.Str("version", &version)) {
        c->rules = *rules.value();
      }
    }
  });
}

// ---------------------------------------------------------------------------------------
// Fetch, members

// A checkout id as a paging cursor: "" (from the first) or a checkout id.
void CheckoutCursor(const JsonReader& r, std::string_view key, std::optional<std::string>* out) {
  if (!r.OptStr(key, out, 0, kMaxIdChars) || !*out) return;
  if (!(*out)->empty() && !IsClientId(**out))
    r.Fail(key, "must be \"\" or 1-64 characters of [A-Za-z0-9_-]");
}

json ToJson(const FetchRequest& f) {
  json out{{"entry_ids", f.entry_ids}};
  if (f.without_entries_after) out["without_entries_after"] = *f.without_entries_after;
  return out;
}
Status FromJson(const json& j, FetchRequest* out) {
  return Top<FetchRequest>(j, out, [](const JsonReader& r, FetchRequest* f) {
    List(r, "entry_ids", kMaxFetchIds, &f->entry_ids,
         [](const JsonReader& v, std::string* id) { Hex(v, id, 32); });
    CheckoutCursor(r, "without_entries_after", &f->without_entries_after);
  });
}

json ToJson(const FetchResponse& f) {
  json out{{"entries", ArrayOf(f.entries)},
           {"checkouts", ArrayOf(f.checkouts)},
           {"refunds", ArrayOf(f.refunds)}};
  if (f.next_without_entries) out["next_without_entries"] = *f.next_without_entries;
  return out;
}
Status FromJson(const json& j, FetchResponse* out) {
  return Top<FetchResponse>(j, out, [](const JsonReader& r, FetchResponse* f) {
    // A fetch answers at most kMaxFetchIds entries; their checkouts and refunds at most one
    // each, and at most kMaxFetchCheckoutsWithoutEntries more checkouts.
    List(r, "entries", kMaxFetchIds, &f->entries, ReadEntry);
    List(r, "checkouts", kMaxFetchIds + kMaxFetchCheckoutsWithoutEntries, &f->checkouts,
         ReadCheckout);
    List(r, "refunds", 2 * kMaxFetchIds, &f->refunds, ReadRefund);
    CheckoutCursor(r, "next_without_entries", &f->next_without_entries);
  });
}

json ToJson(const MembersRequest& m) {
  json a = json::array();
  for (uint64_t id : m.member_ids) a.push_back(std::to_string(id));
  json out{{"member_ids", a}};
  if (m.identities) {
    json ids = json::array();
    for (const auto& k : *m.identities)
      ids.push_back({{"channel", k.channel}, {"external_id", k.external_id}});
    out["identities"] = std::move(ids);
  }
  if (m.phone) out["phone"] = *m.phone;
  if (m.store_id) out["store_id"] = *m.store_id;
  return out;
}
Status FromJson(const json& j, MembersRequest* out) {
  return Top<MembersRequest>(j, out, [](const JsonReader& r, MembersRequest* m) {
    List(r, "member_ids", kMaxMemberIds, &m->member_ids,
         [](const JsonReader& v, uint64_t* id) { MemberId(v, id); });
    if (r.Has("identities")) {
      List(r, "identities", kMaxLookupIdentities, &m->identities.emplace(),
           [](const JsonReader& v, IdentityKey* k) {
             if (!v.ExpectObject()) return;
             v.Str("channel", &k->channel, 1, kMaxShortText);
             v.Str("external_id", &k->external_id, 1, kMaxShortText);
           });
    }
    if (r.Has("phone")) {
      std::string& d = m->phone.emplace();
      if (r.Str("phone", &d, 5, 20) &&
          !std::all_of(d.begin(), d.end(), [](char c) { return c >= '0' && c <= '9'; }))
        r.Fail("phone", "must be 5 to 20 digits");
    }
    if (r.Has("store_id")) r.Str("store_id", &m->store_id.emplace(), 0, kMaxIdChars);
  });
}

json ToJson(const MembersResponse& m) {
  json out{{"members", ArrayOf(m.members)}};
  if (m.identities) out["identities"] = ArrayOf(*m.identities);
  return out;
}
Status FromJson(const json& j, MembersResponse* out) {
  return Top<MembersResponse>(j, out, [](const JsonReader& r, MembersResponse* m) {
    List(r, "members", kMaxMemberIds, &m->members, ReadSnapshot);
    if (r.Has("identities"))
      List(r, "identities", 8 * kMaxMemberIds, &m->identities.emplace(), ReadIdentity);
  });
}

json ToJson(const EvictedRequest& m) {
  json a = json::array();
  for (uint64_t id : m.member_ids) a.push_back(std::to_string(id));
  return json{{"member_ids", a}};
}
Status FromJson(const json& j, EvictedRequest* out) {
  return Top<EvictedRequest>(j, out, [](const JsonReader& r, EvictedRequest* m) {
    List(r, "member_ids", kMaxEvictions, &m->member_ids,
         [](const JsonReader& v, uint64_t* id) { MemberId(v, id); });
  });
}

json ToJson(const EvictedResponse& m) { return json{{"forgotten", m.forgotten}}; }
Status FromJson(const json& j, EvictedResponse* out) {
  return Top<EvictedResponse>(j, out, [](const JsonReader& r, EvictedResponse* m) {
    r.Int("forgotten", &m->forgotten, 0, static_cast<int64_t>(kMaxEvictions));
  });
}

json ToJson(const SaleRequest& m) {
  json out{{"terminal_id", m.terminal_id}, {"checkout_id", m.checkout_id}};
  if (m.store_id) out["store_id"] = *m.store_id;
  return out;
}
Status FromJson(const json& j, SaleRequest* out) {
  return Top<SaleRequest>(j, out, [](const JsonReader& r, SaleRequest* m) {
    if (r.Str("terminal_id", &m->terminal_id, 1, 32) && !IsTerminalId(m->terminal_id))
      r.Fail("terminal_id", "must match [A-Za-z0-9_-]{1,32}");
    r.Str("checkout_id", &m->checkout_id, 1, kMaxIdChars);
    if (r.Has("store_id")) r.Str("store_id", &m->store_id.emplace(), 0, kMaxIdChars);
  });
}

json ToJson(const SaleResponse& m) {
  json refunds = json::array();
  for (const auto& o : m.refunds)
    refunds.push_back({{"terminal_id", o.terminal_id}, {"refund", ToJson(o.refund)}});
  return json{{"checkout", m.checkout ? ToJson(*m.checkout) : json(nullptr)},
              {"refunds", std::move(refunds)},
              {"members", ArrayOf(m.members)},
              {"identities", ArrayOf(m.identities)}};
}
Status FromJson(const json& j, SaleResponse* out) {
  return Top<SaleResponse>(j, out, [](const JsonReader& r, SaleResponse* m) {
    if (r.Require("checkout") && !r.Field("checkout").absent()) {
      m->checkout.emplace();
      ReadCheckout(r.Field("checkout"), &*m->checkout);
    }
    List(r, "refunds", kMaxSaleRefunds, &m->refunds,
         [](const JsonReader& v, SaleResponse::OtherRefund* o) {
           if (!v.ExpectObject()) return;
           if (v.Str("terminal_id", &o->terminal_id, 1, 32) && !IsTerminalId(o->terminal_id))
             v.Fail("terminal_id", "must match [A-Za-z0-9_-]{1,32}");
           ReadRefund(v.Field("refund"), &o->refund);
         });
    List(r, "members", 1, &m->members, ReadSnapshot);
    List(r, "identities", 64, &m->identities, ReadIdentity);
  });
}

json ToJson(const ReceiptKeyRequest& m) {
  return json{{"public_key", Base64UrlEncode(m.public_key)}};
}
Status FromJson(const json& j, ReceiptKeyRequest* out) {
  return Top<ReceiptKeyRequest>(j, out, [](const JsonReader& r, ReceiptKeyRequest* m) {
    std::string text;
    if (!r.Str("public_key", &text, 1, 64)) return;
    auto raw = Base64UrlDecode(text);
    if (!raw || raw->size() != 32) {
      r.Fail("public_key", "must be 32 bytes of base64url");
      return;
    }
    m->public_key = *raw;
  });
}

json ToJson(const ReceiptKeyResponse& m) {
  return json{{"certificate", Base64UrlEncode(m.certificate)}};
}
Status FromJson(const json& j, ReceiptKeyResponse* out) {
  return Top<ReceiptKeyResponse>(j, out, [](const JsonReader& r, ReceiptKeyResponse* m) {
    std::string text;
    if (!r.Str("certificate", &text, 1, 512)) return;
    auto raw = Base64UrlDecode(text);
    if (!raw || raw->empty() || raw->size() > 256) {
      r.Fail("certificate", "must be base64url of at most 256 bytes");
      return;
    }
    m->certificate = *raw;
  });
}

// ---------------------------------------------------------------------------------------

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

Result<ChangesQuery> ParseChangesQuery(const std::map<std::string, std::string>& query) {
  ChangesQuery q;
  if (auto it = query.find("cursor"); it != query.end()) {
    if (it->second.size() > kMaxShortText)
      return Status::Error(ErrorCode::kBadRequest, "cursor is too long");
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
      return Status::Error(ErrorCode::kBadRequest,
                           "limit must be 1.." + std::to_string(kMaxChangesLimit));
    }
    q.limit = v;
  }
  return q;
}

}  // namespace loyalty::sync
