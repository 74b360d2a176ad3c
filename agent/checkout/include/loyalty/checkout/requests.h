// Parsing and validating POS API request bodies. Every failure is bad_request with a
// message that names the field ("lines[3].qty must be 1..10000, got 0", read with
// loyalty::JsonReader, base/json_reader.h); nothing is half-accepted.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "loyalty/base/json.h"
#include "loyalty/base/status.h"
#include "loyalty/rules/rules.h"

namespace loyalty::checkout {

// Request bodies are parsed with loyalty::ParseJsonObject (base/json.h): a UTF-8 JSON
// object nested at most kMaxJsonDepth (32) levels deep, at most 1 MiB (enforced by the
// HTTP layer); bad_request for anything else.

// SHA-256 hex of the body's canonical form (keys sorted, no white space): the same JSON
// value gives the same hash whatever its key order or spacing.
std::string CanonicalHash(const nlohmann::json& body);

bool IsValidClientId(std::string_view id);  // 1-64 chars [A-Za-z0-9_-]

struct CheckoutRequest {
  std::string checkout_id;
  std::optional<std::string> identification_id;
  std::optional<std::string> member_code;
  std::vector<rules::Line> lines;
  std::optional<std::string> coupon_id;
  rules::RedeemRequest redeem;
  std::optional<std::string> tender;         // commit only
  std::optional<std::string> rules_version;  // commit only
  std::optional<std::string> cashier_id;     // commit only: 1-64 chars [A-Za-z0-9_-]
  // Apply the usable coupon that takes the most off (docs/pos-api.md, "Coupons in view");
  // not with coupon_id.
  bool best_coupon = false;
};
Result<CheckoutRequest> ParseCheckoutRequest(const nlohmann::json& body, bool is_commit);

struct RefundRequest {
  std::string refund_id;
  std::string checkout_id;
  std::vector<std::pair<int64_t, int64_t>> lines;  // (line index, qty)
  std::string reason = "return";
  std::optional<std::string> cashier_id;  // 1-64 chars [A-Za-z0-9_-]
  // A checkout sold at another terminal (docs/pos-api.md, "Returns anywhere"): the terminal
  // that sold it ([A-Za-z0-9_-]{1,32}) and/or the receipt's return token (≤ 4096 chars).
  std::optional<std::string> sold_at;
  std::optional<std::string> receipt;
};
Result<RefundRequest> ParseRefundRequest(const nlohmann::json& body);

}  // namespace loyalty::checkout
