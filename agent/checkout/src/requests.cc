#include "loyalty/checkout/requests.h"

#include "loyalty/base/encoding.h"
#include "loyalty/base/hash.h"
#include "loyalty/base/json.h"
#include "loyalty/base/json_writer.h"

namespace loyalty::checkout {
namespace {

Status Bad(std::string msg) { return Status::Error(ErrorCode::kBadRequest, std::move(msg)); }

constexpr int64_t kMaxRedeemPoints = 100000000;

// Reads an optional string field; wrong type → error.
Status OptString(const nlohmann::json& o, const char* key, std::optional<std::string>* out, size_t max_len) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return Status::Ok();
  if (!it->is_string()) return Bad(std::string(key) + " must be a string");
  const auto& s = it->get_ref<const std::string&>();
  if (s.size() > max_len) return Bad(std::string(key) + " is longer than " + std::to_string(max_len) + " bytes");
  *out = s;
  return Status::Ok();
}

bool IsInteger(const nlohmann::json& v) { return v.is_number_integer() || v.is_number_unsigned(); }

// An integer within [lo, hi]; anything else (float, string, out of range) is an error.
// name() gives the field's name for the message, built only when there is one to write.
template <typename Name>
Status IntField(const nlohmann::json& v, Name name, int64_t lo, int64_t hi, int64_t* out) {
  auto range = [&] { return " is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]"; };
  if (!IsInteger(v)) return Bad(name() + " must be an integer");
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) return Bad(name() + range());
  int64_t x = v.get<int64_t>();
  if (x < lo || x > hi) return Bad(name() + range());
  *out = x;
  return Status::Ok();
}

}  // namespace

Result<nlohmann::json> ParseJsonObject(std::string_view body) { return loyalty::ParseJsonObject(body); }

// DumpCanonical prints dump()'s bytes without building them through nlohmann's serializer,
// so hashes stored by earlier versions still match.
std::string CanonicalHash(const nlohmann::json& body) { return DigestHex(Sha256(DumpCanonical(body))); }

bool IsValidClientId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
      return false;
  return true;
}

Result<CheckoutRequest> ParseCheckoutRequest(const nlohmann::json& b, bool is_commit) {
  CheckoutRequest r;
  auto cid = b.find("checkout_id");
  if (cid == b.end() || !cid->is_string()) return Bad("checkout_id is required and must be a string");
  r.checkout_id = cid->get<std::string>();
  if (!IsValidClientId(r.checkout_id)) return Bad("checkout_id must be 1-64 characters of [A-Za-z0-9_-]");

  if (Status s = OptString(b, "identification_id", &r.identification_id, 128); !s.ok()) return s;
  if (Status s = OptString(b, "member_code", &r.member_code, 4096); !s.ok()) return s;
  if (r.identification_id && r.member_code) return Bad("give identification_id or member_code, not both");
  if (Status s = OptString(b, "coupon_id", &r.coupon_id, 64); !s.ok()) return s;

  auto lines = b.find("lines");
  if (lines == b.end() || !lines->is_array()) return Bad("lines is required and must be an array");
  if (lines->empty() || lines->size() > 500) return Bad("lines must hold 1 to 500 lines");
  r.lines.reserve(lines->size());
  for (size_t i = 0; i < lines->size(); ++i) {
    const auto& l = (*lines)[i];
    // The field's name is put together only for a refusal: this runs for every line.
    auto at = [i] { return "lines[" + std::to_string(i) + "]"; };
    if (!l.is_object()) return Bad(at() + " must be an object");
    rules::Line line;
    auto sku = l.find("sku");
    if (sku == l.end() || !sku->is_string()) return Bad(at() + ".sku is required and must be a string");
    line.sku = sku->get_ref<const std::string&>();
    auto qty = l.find("qty");
    if (qty == l.end()) return Bad(at() + ".qty is required");
    if (Status s = IntField(*qty, [&] { return at() + ".qty"; }, 1, 10000, &line.qty); !s.ok()) return s;
    auto price = l.find("unit_price_cents");
    if (price == l.end()) return Bad(at() + ".unit_price_cents is required");
    if (Status s = IntField(*price, [&] { return at() + ".unit_price_cents"; }, 0, 100000000, &line.unit_price_cents);
        !s.ok())
      return s;
    auto cat = l.find("category");
    if (cat != l.end() && !cat->is_null()) {
      if (!cat->is_string()) return Bad(at() + ".category must be a string");
      line.category = cat->get_ref<const std::string&>();
    }
    r.lines.push_back(std::move(line));
  }
  if (Status s = rules::ValidateLines(r.lines); !s.ok()) return s;

  auto red = b.find("redeem_points");
  if (red != b.end() && !red->is_null()) {
    if (red->is_string()) {
      if (red->get<std::string>() != "max") return Bad("redeem_points must be an integer or \"max\"");
      r.redeem.max = true;
    } else {
      if (Status s = IntField(*red, [] { return std::string("redeem_points"); }, 0, kMaxRedeemPoints, &r.redeem.points);
          !s.ok())
        return s;
    }
  }

  if (is_commit) {
    if (Status s = OptString(b, "tender", &r.tender, 16); !s.ok()) return s;
    if (r.tender && *r.tender != "cash" && *r.tender != "card" && *r.tender != "wechat" && *r.tender != "alipay" &&
        *r.tender != "other")
      return Bad("tender must be one of cash, card, wechat, alipay, other");
    if (Status s = OptString(b, "rules_version", &r.rules_version, 128); !s.ok()) return s;
  }
  return r;
}

Result<RefundRequest> ParseRefundRequest(const nlohmann::json& b) {
  RefundRequest r;
  auto rid = b.find("refund_id");
  if (rid == b.end() || !rid->is_string()) return Bad("refund_id is required and must be a string");
  r.refund_id = rid->get<std::string>();
  if (!IsValidClientId(r.refund_id)) return Bad("refund_id must be 1-64 characters of [A-Za-z0-9_-]");
  auto cid = b.find("checkout_id");
  if (cid == b.end() || !cid->is_string()) return Bad("checkout_id is required and must be a string");
  r.checkout_id = cid->get<std::string>();
  if (!IsValidClientId(r.checkout_id)) return Bad("checkout_id must be 1-64 characters of [A-Za-z0-9_-]");
  std::optional<std::string> reason;
  if (Status s = OptString(b, "reason", &reason, 16); !s.ok()) return s;
  if (reason) {
    if (*reason != "return" && *reason != "void") return Bad("reason must be \"return\" or \"void\"");
    r.reason = *reason;
  }
  auto lines = b.find("lines");
  // A void may omit lines: it then refunds every unit not refunded yet.
  if (r.reason == "void" && (lines == b.end() || lines->is_null())) return r;
  if (lines == b.end() || !lines->is_array()) return Bad("lines is required and must be an array");
  if (lines->empty() || lines->size() > 500) return Bad("lines must hold 1 to 500 lines");
  for (size_t i = 0; i < lines->size(); ++i) {
    const auto& l = (*lines)[i];
    // The field's name is put together only for a refusal: this runs for every line.
    auto at = [i] { return "lines[" + std::to_string(i) + "]"; };
    if (!l.is_object()) return Bad(at() + " must be an object");
    auto line = l.find("line");
    auto qty = l.find("qty");
    if (line == l.end() || qty == l.end()) return Bad(at() + " needs line and qty");
    int64_t li = 0, q = 0;
    if (Status s = IntField(*line, [&] { return at() + ".line"; }, 0, 499, &li); !s.ok()) return s;
    if (Status s = IntField(*qty, [&] { return at() + ".qty"; }, 1, 10000, &q); !s.ok()) return s;
    r.lines.emplace_back(li, q);
  }
  return r;
}

}  // namespace loyalty::checkout
