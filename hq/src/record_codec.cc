#include "loyalty/hq/record_codec.h"

#include <cstdint>

namespace loyalty::hq {
namespace {

constexpr unsigned char kVersion = 2;

void PutVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void PutInt(std::string& out, int64_t v) {
  PutVarint(out, (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
}
void PutStr(std::string& out, const std::string& s) {
  PutVarint(out, s.size());
  out.append(s);
}

// Reads the compact form; the first failure wins and every later read returns a zero value.
class In {
 public:
  explicit In(std::string_view b) : b_(b) {}

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  bool done() const { return pos_ == b_.size(); }

  void Fail(std::string what) {
    if (error_.empty()) error_ = std::move(what);
  }
  uint64_t Varint(const char* what) {
    uint64_t v = 0;
    for (int shift = 0; ok(); shift += 7) {
      if (pos_ >= b_.size() || shift > 63) {
        Fail(std::string(what) + ": truncated or too long a number");
        return 0;
      }
      unsigned char c = static_cast<unsigned char>(b_[pos_++]);
      if (shift == 63 && c > 1) {
        Fail(std::string(what) + ": a number past 64 bits");
        return 0;
      }
      v |= static_cast<uint64_t>(c & 0x7f) << shift;
      if (!(c & 0x80)) return v;
    }
    return 0;
  }
  int64_t Int(const char* what, int64_t min, int64_t max) {
    uint64_t z = Varint(what);
    int64_t v = static_cast<int64_t>((z >> 1) ^ (~(z & 1) + 1));
    if (ok() && (v < min || v > max)) {
      Fail(std::string(what) + " must be " + std::to_string(min) + ".." + std::to_string(max));
      return 0;
    }
    return ok() ? v : 0;
  }
  std::string Str(const char* what, size_t max_len, size_t min_len = 0) {
    uint64_t n = Varint(what);
    if (!ok()) return {};
    if (n > max_len || n < min_len) {
      Fail(std::string(what) + " must be " + std::to_string(min_len) + ".." +
           std::to_string(max_len) + " bytes");
      return {};
    }
    if (n > b_.size() - pos_) {
      Fail(std::string(what) + ": truncated");
      return {};
    }
    std::string s(b_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  unsigned char Byte(const char* what, unsigned char max) {
    if (!ok()) return 0;
    if (pos_ >= b_.size()) {
      Fail(std::string(what) + ": truncated");
      return 0;
    }
    unsigned char c = static_cast<unsigned char>(b_[pos_++]);
    if (c > max) {
      Fail(std::string(what) + " must be 0.." + std::to_string(max));
      return 0;
    }
    return c;
  }

 private:
  std::string_view b_;
  size_t pos_ = 0;
  std::string error_;
};

bool IsLowerHex(const std::string& s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// A hash field: "" or exactly 64 lower-case hex characters (the codec's Hex(…, 64, true)).
std::string Hash(In& in, const char* what) {
  std::string s = in.Str(what, 64);
  if (in.ok() && !s.empty() && (s.size() != 64 || !IsLowerHex(s)))
    in.Fail(std::string(what) + " must be 64 lower-case hex characters or empty");
  return s;
}

}  // namespace

std::string EncodeCheckout(const sync::Checkout& c) {
  std::string out;
  out.reserve(64 + c.checkout_id.size() + c.request_hash.size() + c.rules_version.size() +
              c.code_hash.size() + c.tender.size() + c.coupon_id.size() + c.request_json.size() +
              c.response_json.size() + c.lines.size() * 48);
  out.push_back(static_cast<char>(kVersion));
  PutStr(out, c.checkout_id);
  PutStr(out, c.request_hash);
  out.push_back(c.member_id ? 1 : 0);
  if (c.member_id) PutVarint(out, *c.member_id);
  PutStr(out, c.rules_version);
  for (int64_t v : {c.committed_at_ms, c.subtotal_cents, c.total_due_cents, c.points_earned,
                    c.redeemed_points, c.eligible_cents, c.redeemable_cents}) {
    PutInt(out, v);
  }
  PutStr(out, c.code_hash);
  PutStr(out, c.tender);
  PutStr(out, c.coupon_id);
  PutStr(out, c.request_json);
  PutStr(out, c.response_json);
  PutVarint(out, c.lines.size());
  for (const auto& l : c.lines) {
    PutInt(out, l.line);
    PutStr(out, l.sku);
    PutStr(out, l.category);
    for (int64_t v : {l.qty, l.unit_price_cents, l.tier_discount_cents, l.coupon_cents,
                      l.redeem_cents, l.net_cents, l.net_before_redeem_cents}) {
      PutInt(out, v);
    }
    out.push_back(static_cast<char>((l.points_eligible ? 1 : 0) | (l.redeemable ? 2 : 0)));
  }
  PutStr(out, c.cashier_id);  // version 2
  return out;
}

Result<sync::Checkout> DecodeCheckout(std::string_view body) {
  if (!body.empty() && body.front() == '{') {
    auto c = sync::ParseMessage<sync::Checkout>(body);
    if (!c.ok())
      return Status::Error(ErrorCode::kInternal, "stored checkout: " + c.status().message());
    return c;
  }
  const unsigned version = body.empty() ? 0 : static_cast<unsigned char>(body.front());
  if (version != 1 && version != kVersion) {
    return Status::Error(ErrorCode::kInternal, "stored checkout: not a form this program reads");
  }
  using namespace sync;  // the limits table
  In in(body.substr(1));
  Checkout c;
  c.checkout_id = in.Str("checkout_id", kMaxIdChars, 1);
  c.request_hash = Hash(in, "request_hash");
  if (in.Byte("member_id presence", 1)) c.member_id = in.Varint("member_id");
  c.rules_version = in.Str("rules_version", kMaxShortText);
  c.committed_at_ms = in.Int("committed_at_ms", 0, kMaxTimeMs);
  c.subtotal_cents = in.Int("subtotal_cents", 0, kMaxCents);
  c.total_due_cents = in.Int("total_due_cents", 0, kMaxCents);
  c.points_earned = in.Int("points_earned", 0, kMaxPoints);
  c.redeemed_points = in.Int("redeemed_points", 0, kMaxPoints);
  c.eligible_cents = in.Int("eligible_cents", 0, kMaxCents);
  c.redeemable_cents = in.Int("redeemable_cents", 0, kMaxCents);
  c.code_hash = Hash(in, "code_hash");
  c.tender = in.Str("tender", kMaxShortText);
  c.coupon_id = in.Str("coupon_id", kMaxIdChars);
  c.request_json = in.Str("request_json", kMaxDocumentBytes);
  c.response_json = in.Str("response_json", kMaxDocumentBytes);
  uint64_t n = in.Varint("lines");
  if (in.ok() && n > kMaxCheckoutLines)
    in.Fail("lines must hold at most " + std::to_string(kMaxCheckoutLines));
  for (uint64_t i = 0; in.ok() && i < n; ++i) {
    CheckoutLine l;
    l.line = in.Int("lines[].line", 0, static_cast<int64_t>(kMaxCheckoutLines) - 1);
    l.sku = in.Str("lines[].sku", kMaxShortText);
    l.category = in.Str("lines[].category", kMaxShortText);
    l.qty = in.Int("lines[].qty", kMinWireInt, kMaxWireInt);  // HQ refused it past the limits
    l.unit_price_cents = in.Int("lines[].unit_price_cents", kMinWireInt, kMaxWireInt);
    l.tier_discount_cents = in.Int("lines[].tier_discount_cents", 0, kMaxCents);
    l.coupon_cents = in.Int("lines[].coupon_cents", 0, kMaxCents);
    l.redeem_cents = in.Int("lines[].redeem_cents", 0, kMaxCents);
    l.net_cents = in.Int("lines[].net_cents", 0, kMaxCents);
    l.net_before_redeem_cents = in.Int("lines[].net_before_redeem_cents", 0, kMaxCents);
    unsigned char flags = in.Byte("lines[] flags", 3);
    l.points_eligible = flags & 1;
    l.redeemable = flags & 2;
    c.lines.push_back(std::move(l));
  }
  if (version >= 2) c.cashier_id = in.Str("cashier_id", kMaxIdChars);
  if (in.ok() && !in.done()) in.Fail("bytes after the last field");
  if (!in.ok()) return Status::Error(ErrorCode::kInternal, "stored checkout: " + in.error());
  return c;
}

}  // namespace loyalty::hq
