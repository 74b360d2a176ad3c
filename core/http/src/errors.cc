#include "loyalty/http/errors.h"

#include <nlohmann/json.hpp>

namespace loyalty::http {

int HttpStatusFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kBadRequest:
      return 400;
    case ErrorCode::kUnauthorized:
      return 401;
    case ErrorCode::kForbidden:
      return 403;
    case ErrorCode::kNotFound:
    case ErrorCode::kCheckoutUnknown:
    case ErrorCode::kMemberUnknown:
      return 404;
    case ErrorCode::kIdempotencyConflict:
    case ErrorCode::kRulesChanged:
    case ErrorCode::kIdentityConflict:
    case ErrorCode::kMemberExists:
    case ErrorCode::kClaimUsed:
      return 409;
    case ErrorCode::kBodyTooLarge:
      return 413;
    case ErrorCode::kRateLimited:
      return 429;
    case ErrorCode::kCodeMalformed:
    case ErrorCode::kCodeIssuerUnknown:
    case ErrorCode::kCodeSignatureInvalid:
    case ErrorCode::kCodeExpired:
    case ErrorCode::kCodeNotYetValid:
    case ErrorCode::kCodeRevoked:
    case ErrorCode::kCodeReplayed:
    case ErrorCode::kNotAMemberCode:
    case ErrorCode::kMemberFrozen:
    case ErrorCode::kInsufficientPoints:
    case ErrorCode::kRedeemNotAllowed:
    case ErrorCode::kRedeemCooldown:
    case ErrorCode::kStaticCodeCannotRedeem:
    case ErrorCode::kCouponInvalid:
    case ErrorCode::kCouponUsed:
    case ErrorCode::kRefundExceedsSale:
    case ErrorCode::kRefundWindowClosed:
    case ErrorCode::kClaimRefused:
    case ErrorCode::kCheckoutHasMember:
    case ErrorCode::kCheckoutRefunded:
      return 422;
    case ErrorCode::kUnavailable:
    case ErrorCode::kLedgerDamaged:
      return 503;
    default:
      return 500;
  }
}

ErrorCode PublicCode(ErrorCode code) {
  return HttpStatusFor(code) == 500 ? ErrorCode::kInternal : code;
}

Response JsonError(ErrorCode code, std::string_view message) {
  ErrorCode shown = PublicCode(code);
  nlohmann::json j = {
      {"error", {{"code", std::string(ErrorCodeName(shown))}, {"message", std::string(message)}}}};
  Response r;
  r.status = HttpStatusFor(shown);
  // A message may quote client input; replacing invalid UTF-8 keeps the answer valid JSON
  // instead of throwing in the middle of an error path.
  r.body = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

Response ErrorResponse(const Status& s) {
  if (s.ok()) return JsonError(ErrorCode::kInternal, "an error without a code");
  return JsonError(s.code(), s.message());
}

}  // namespace loyalty::http
