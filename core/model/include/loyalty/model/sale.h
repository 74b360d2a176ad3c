// Checkouts and refunds as both ends keep them: the terminal's ledger writes them at the
// till, the sync upload carries them, HQ re-prices and stores them.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "loyalty/base/status.h"

namespace loyalty::model {

struct CheckoutLine {
  int64_t line = 0;  // 0-based index in the request
  std::string sku, category;
  int64_t qty = 0, unit_price_cents = 0;
  int64_t tier_discount_cents = 0, coupon_cents = 0, redeem_cents = 0;
  int64_t net_cents = 0, net_before_redeem_cents = 0;
  bool points_eligible = false, redeemable = false;
  bool operator==(const CheckoutLine&) const = default;
};

struct Checkout {
  std::string checkout_id;
  std::string request_hash;           // SHA-256 hex of the canonical request JSON
  std::optional<uint64_t> member_id;  // nullopt: a checkout without a member
  std::string rules_version;
  int64_t committed_at_ms = 0;
  int64_t subtotal_cents = 0, total_due_cents = 0;
  int64_t points_earned = 0, redeemed_points = 0;
  int64_t eligible_cents = 0, redeemable_cents = 0;
  std::string code_hash;  // SHA-256 hex of the dynamic code text, empty when none
  std::string tender, coupon_id;
  std::string request_json, response_json;
  std::vector<CheckoutLine> lines;
  std::string cashier_id;  // pos-api.md "cashier_id", "" when the POS named none
  bool operator==(const Checkout&) const = default;
};

struct RefundLine {
  int64_t line = 0;
  int64_t qty = 0;
  auto operator<=>(const RefundLine&) const = default;
};

struct Refund {
  std::string refund_id, checkout_id, request_hash, reason;
  int64_t at_ms = 0;
  int64_t refund_cents = 0, points_clawed_back = 0, points_restored = 0;
  std::string response_json;
  std::vector<RefundLine> lines;
  // The terminal that sold the checkout when it was not this one (a return at another lane
  // or store, docs/pos-api.md "Returns anywhere"); "" for this terminal's own checkouts.
  std::string sold_at;
  // The receipt's return token the refund was made from (offline), "" when none; HQ checks
  // the refund against it when it does not hold the selling terminal's checkout yet.
  std::string receipt;
  std::string cashier_id;
  bool operator==(const Refund&) const = default;
};

// A checkout's lines as one compact JSON array, one array per line, in line order:
//   [sku, category, qty, unit_price_cents, tier_discount_cents, coupon_cents, redeem_cents,
//    net_cents, net_before_redeem_cents, points_eligible (0|1), redeemable (0|1)]
// The terminal's ledger stores checkouts.lines_json in this form.
std::string EncodeCheckoutLines(const std::vector<CheckoutLine>& lines);
Result<std::vector<CheckoutLine>> DecodeCheckoutLines(std::string_view text);

}  // namespace loyalty::model
