#include "loyalty/checkout/requests.h"

#include <cctype>
#include <cmath>
#include <vector>

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

namespace {
// A number written with a fraction or an exponent whose value is an integer (1990.0,
// 1990E0, -0.0), exactly representable (|v| <= 2^53), as that integer: the same JSON value
// as the integer (pos-api.md, "the same JSON value"). False when the tree has none.
bool IntegralFloatsAsIntegers(nlohmann::json& root) {
  constexpr double kExact = 9007199254740992.0;  // 2^53
  bool changed = false;
  std::vector<nlohmann::json*> todo{&root};
  while (!todo.empty()) {
    nlohmann::json* j = todo.back();
    todo.pop_back();
    if (j->is_object() || j->is_array()) {
      for (auto& v : *j) todo.push_back(&v);
    } else if (j->is_number_float()) {
      const double v = j->get<double>();
      if (std::isfinite(v) && std::trunc(v) == v && std::fabs(v) <= kExact) {
        *j = static_cast<int64_t>(v);
        changed = true;
      }
    }
  }
  return changed;
}

bool HasFloat(const nlohmann::json& root) {
  std::vector<const nlohmann::json*> todo{&root};
  while (!todo.empty()) {
    const nlohmann::json* j = todo.back();
    todo.pop_back();
    if (j->is_number_float()) return true;
    if (j->is_object() || j->is_array())
      for (const auto& v : *j) todo.push_back(&v);
  }
  return false;
}
}  // namespace

// DumpCanonical prints dump()'s bytes without building them through nlohmann's serializer,
// so hashes stored by earlier versions still match. A body with an integral number written
// as a float (which the request parsers refuse, so no stored hash has one) hashes as the
// integer: a replay written so is the same request.
std::string CanonicalHash(const nlohmann::json& body) {
  if (HasFloat(body)) {
    nlohmann::json copy = body;
    if (IntegralFloatsAsIntegers(copy)) return DigestHex(Sha256(DumpCanonical(copy)));
  }
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
