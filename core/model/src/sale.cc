#include "loyalty/model/sale.h"

#include <nlohmann/json.hpp>

#include "loyalty/base/json.h"
#include "loyalty/base/json_writer.h"

namespace loyalty::model {

std::string EncodeCheckoutLines(const std::vector<CheckoutLine>& lines) {
  std::string out;
  out.reserve(lines.size() * 64 + 2);
  JsonWriter w(out);
  w.BeginArray();
  for (const auto& l : lines) {
    w.BeginArray()
        .String(l.sku)
        .String(l.category)
        .Int(l.qty)
        .Int(l.unit_price_cents)
        .Int(l.tier_discount_cents);
    w.Int(l.coupon_cents).Int(l.redeem_cents).Int(l.net_cents).Int(l.net_before_redeem_cents);
    w.Int(l.points_eligible ? 1 : 0).Int(l.redeemable ? 1 : 0).EndArray();
  }
  w.EndArray();
  return out;
}

Result<std::vector<CheckoutLine>> DecodeCheckoutLines(std::string_view text) {
  auto bad = [](const std::string& why) {
    return Status::Error(ErrorCode::kInternal, "checkout lines: " + why);
  };
  auto parsed = ParseJson(text);  // stored bytes, read with the same limits as any other
  if (!parsed.ok()) return bad(parsed.status().message());
  const nlohmann::json& j = *parsed;
  if (!j.is_array()) return bad("not a JSON array");
  std::vector<CheckoutLine> out;
  out.reserve(j.size());
  for (const auto& a : j) {
    if (!a.is_array() || a.size() != 11 || !a[0].is_string() || !a[1].is_string())
      return bad("malformed line");
    for (size_t i = 2; i < 11; ++i)
      if (!a[i].is_number_integer()) return bad("malformed line");
    CheckoutLine l;
    l.line = static_cast<int64_t>(out.size());
    l.sku = a[0].get<std::string>();
    l.category = a[1].get<std::string>();
    l.qty = a[2].get<int64_t>();
    l.unit_price_cents = a[3].get<int64_t>();
    l.tier_discount_cents = a[4].get<int64_t>();
    l.coupon_cents = a[5].get<int64_t>();
    l.redeem_cents = a[6].get<int64_t>();
    l.net_cents = a[7].get<int64_t>();
    l.net_before_redeem_cents = a[8].get<int64_t>();
    l.points_eligible = a[9].get<int64_t>() != 0;
    l.redeemable = a[10].get<int64_t>() != 0;
    out.push_back(std::move(l));
  }
  return out;
}

}  // namespace loyalty::model
