#include "loyalty/checkout/requests.h"

#include <cctype>

#include "loyalty/codes/return_token.h"

#include "loyalty/base/encoding.h"
#include "loyalty/base/hash.h"
#include "loyalty/base/json_reader.h"
#include "loyalty/base/json_writer.h"

namespace loyalty::checkout {
namespace {

constexpr int64_t kMaxRedeemPoints = 100000000;

// A client-chosen id (checkout_id, refund_id): required, 1-64 characters of [A-Za-z0-9_-].
bool ClientId(const JsonReader& in, std::string_view key, std::string* out) {
  if (!in.Str(key, out)) return false;
  return IsValidClientId(*out) || in.Fail(key, "must be 1-64 characters of [A-Za-z0-9_-]");
}

// An optional client id (cashier_id): absent or null, or as ClientId.
bool OptClientId(const JsonReader& in, std::string_view key, std::optional<std::string>* out) {
  out->reset();
  if (!in.Has(key)) return true;
  return ClientId(in, key, &out->emplace());
}

}  // namespace

// DumpCanonical prints dump()'s bytes without building them through nlohmann's serializer,
// so hashes stored by earlier versions still match.
std::string CanonicalHash(const nlohmann::json& body) {
  return DigestHex(Sha256(DumpCanonical(body)));
}

bool IsValidClientId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '-'))
      return false;
  return true;
}

Result<CheckoutRequest> ParseCheckoutRequest(const nlohmann::json& b, bool is_commit) {
  CheckoutRequest r;
  JsonReader in(b, ErrorCode::kBadRequest);
  ClientId(in, "checkout_id", &r.checkout_id);
  in.OptStr("identification_id", &r.identification_id, 0, 128);
  // Any length the body allows: a scan past codes::kMaxScanBytes is the verifier's
  // code_malformed (member-codes.md), as at identify, not a malformed request.
  in.OptStr("member_code", &r.member_code, 0, size_t{1} << 20);
  if (in.ok() && r.identification_id && r.member_code)
    return Status::Error(ErrorCode::kBadRequest, "give identification_id or member_code, not both");
  in.OptStr("coupon_id", &r.coupon_id, 0, 64);
  std::optional<bool> best;
  if (in.OptBool("best_coupon", &best) && best) {
    r.best_coupon = *best;
    if (r.best_coupon && r.coupon_id) in.Fail("best_coupon", "cannot be true with coupon_id");
  }

  // Lengths and text of sku and category are the rules' (rules::ValidateLines, below).
  in.Objects("lines", 1, 500, [&r](const JsonReader& l) {
    rules::Line line;
    l.Str("sku", &line.sku);
    l.Int("qty", &line.qty, 1, 10000);
    l.Int("unit_price_cents", &line.unit_price_cents, 0, 100000000);
    if (const JsonReader category = l.Field("category"); !category.absent())
      category.Str(&line.category);
    r.lines.push_back(std::move(line));
  });
  if (!in.ok()) return in.status();
  if (Status s = rules::ValidateLines(r.lines); !s.ok()) return s;

  if (const JsonReader red = in.Field("redeem_points"); !red.absent()) {
    if (!red.value()->is_string()) {
      red.Int(&r.redeem.points, 0, kMaxRedeemPoints);
    } else if (*red.value() == "max") {
      r.redeem.max = true;
    } else {
      red.Fail("must be an integer or \"max\"");
    }
  }

  if (is_commit) {
    if (in.OptStr("tender", &r.tender, 0, 16) && r.tender && *r.tender != "cash" &&
        *r.tender != "card" && *r.tender != "wechat" && *r.tender != "alipay" &&
        *r.tender != "other")
      in.Fail("tender", "must be one of cash, card, wechat, alipay, other");
    in.OptStr("rules_version", &r.rules_version, 0, 128);
    OptClientId(in, "cashier_id", &r.cashier_id);
  }
  if (!in.ok()) return in.status();
  return r;
}

Result<RefundRequest> ParseRefundRequest(const nlohmann::json& b) {
  RefundRequest r;
  JsonReader in(b, ErrorCode::kBadRequest);
  ClientId(in, "refund_id", &r.refund_id);
  ClientId(in, "checkout_id", &r.checkout_id);
  if (const JsonReader reason = in.Field("reason"); !reason.absent())
    reason.OneOf(&r.reason, {"return", "void"});
  OptClientId(in, "cashier_id", &r.cashier_id);
  if (in.OptStr("sold_at", &r.sold_at, 1, 32) && r.sold_at) {
    for (char c : *r.sold_at)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) {
        in.Fail("sold_at", "must be a terminal id: 1-32 characters of [A-Za-z0-9_-]");
        break;
      }
  }
  in.OptStr("receipt", &r.receipt, 1, codes::kMaxReturnTokenChars);
  // A void may omit lines: it then refunds every unit not refunded yet.
  if (in.ok() && r.reason == "void" && !in.Has("lines")) return r;
  in.Objects("lines", 1, 500, [&r](const JsonReader& l) {
    int64_t line = 0, qty = 0;
    if (l.Int("line", &line, 0, 499) && l.Int("qty", &qty, 1, 10000))
      r.lines.emplace_back(line, qty);
  });
  if (!in.ok()) return in.status();
  return r;
}

}  // namespace loyalty::checkout
