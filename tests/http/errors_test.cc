// The one table from error code to HTTP status (pos-api.md "Errors", hq-and-sync.md).
#include "loyalty/http/errors.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "support/error_codes.h"

namespace loyalty::http {
namespace {

TEST(HttpErrors, TheContractsTableHoldsCodeByCode) {
  // pos-api.md, "Errors", row by row; plus hq-and-sync.md's 403, HQ's 409s, the sale
  // route's 429 (sync/PROTOCOL.md) and the codes of sign-up at the till (docs/pos-api.md).
  const std::map<int, std::vector<const char*>> spec = {
      {400, {"bad_request"}},
      {401, {"unauthorized"}},
      {403, {"forbidden"}},
      {404, {"not_found", "checkout_unknown", "member_unknown"}},
      {409,
       {"idempotency_conflict", "rules_changed", "identity_conflict", "member_exists",
        "claim_used"}},
      {413, {"body_too_large"}},
      {429, {"rate_limited"}},
      {422,
       {"code_malformed",
        "code_issuer_unknown",
        "code_signature_invalid",
        "code_expired",
        "code_not_yet_valid",
        "code_revoked",
        "code_replayed",
        "not_a_member_code",
        "member_frozen",
        "insufficient_points",
        "redeem_not_allowed",
        "redeem_cooldown",
        "static_code_cannot_redeem",
        "coupon_invalid",
        "coupon_used",
        "refund_exceeds_sale",
        "refund_window_closed",
        "claim_refused",
        "checkout_has_member",
        "checkout_refunded"}},
      {503, {"unavailable", "ledger_damaged"}},
  };
  std::set<ErrorCode> in_spec;
  for (const auto& [status, names] : spec) {
    for (const char* name : names) {
      auto code = ErrorCodeFromName(name);
      ASSERT_TRUE(code.has_value()) << name;
      in_spec.insert(*code);
      EXPECT_EQ(HttpStatusFor(*code), status) << name;
      EXPECT_EQ(PublicCode(*code), *code) << name;
    }
  }
  // Every other code is internal to a process: 500, shown as "internal".
  for (ErrorCode c : testing::AllErrorCodes()) {
    if (in_spec.count(c)) continue;
    EXPECT_EQ(HttpStatusFor(c), 500) << c;
    EXPECT_EQ(PublicCode(c), ErrorCode::kInternal) << c;
  }
}

TEST(HttpErrors, TheBodyIsTheContractsShapeWithTheTablesStatus) {
  Response r = ErrorResponse(Status::Error(ErrorCode::kRefundWindowClosed, "older than 7 days"));
  EXPECT_EQ(r.status, 422);
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j,
            (nlohmann::json{
                {"error", {{"code", "refund_window_closed"}, {"message", "older than 7 days"}}}}));

  Response internal = JsonError(ErrorCode::kIoError, "disk");
  EXPECT_EQ(internal.status, 500);
  EXPECT_EQ(nlohmann::json::parse(internal.body)["error"]["code"], "internal");

  // A message quoting client bytes that are not UTF-8 still gives valid JSON.
  Response bad = JsonError(ErrorCode::kBadRequest, std::string("bad \xff byte"));
  EXPECT_EQ(bad.status, 400);
  EXPECT_TRUE(nlohmann::json::accept(bad.body));

  // An ok Status is a caller's bug, never a 200 with an error body.
  EXPECT_EQ(ErrorResponse(Status::Ok()).status, 500);
}

}  // namespace
}  // namespace loyalty::http
