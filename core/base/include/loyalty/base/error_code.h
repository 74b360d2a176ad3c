// ErrorCode: every error the project reports, as one enum.
//
// The contract's codes (pos-api.md "Errors", hq-and-sync.md) are the ones a client sees;
// the rest are internal and never leave a process under their own name (a server answers
// them as 500 "internal", see loyalty/http/errors.h). The wire name of each code is its
// snake_case spelling, given once in LOYALTY_ERROR_CODES.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string_view>

namespace loyalty {

// X(enumerator, wire name)
#define LOYALTY_ERROR_CODES(X)                                   \
  /* pos-api.md and hq-and-sync.md: answered to clients */       \
  X(kBadRequest, "bad_request")                                  \
  X(kUnauthorized, "unauthorized")                               \
  X(kForbidden, "forbidden")                                     \
  X(kRateLimited, "rate_limited")                                \
  X(kNotFound, "not_found")                                      \
  X(kCheckoutUnknown, "checkout_unknown")                        \
  X(kMemberUnknown, "member_unknown")                            \
  X(kIdempotencyConflict, "idempotency_conflict")                \
  X(kRulesChanged, "rules_changed")                              \
  X(kIdentityConflict, "identity_conflict")                      \
  X(kMemberExists, "member_exists")                              \
  X(kBodyTooLarge, "body_too_large")                             \
  X(kCodeMalformed, "code_malformed")                            \
  X(kCodeIssuerUnknown, "code_issuer_unknown")                   \
  X(kCodeSignatureInvalid, "code_signature_invalid")             \
  X(kCodeExpired, "code_expired")                                \
  X(kCodeNotYetValid, "code_not_yet_valid")                      \
  X(kCodeRevoked, "code_revoked")                                \
  X(kCodeReplayed, "code_replayed")                              \
  X(kNotAMemberCode, "not_a_member_code")                        \
  X(kMemberFrozen, "member_frozen")                              \
  X(kInsufficientPoints, "insufficient_points")                  \
  X(kRedeemNotAllowed, "redeem_not_allowed")                     \
  X(kRedeemCooldown, "redeem_cooldown")                          \
  X(kStaticCodeCannotRedeem, "static_code_cannot_redeem")        \
  X(kCouponInvalid, "coupon_invalid")                            \
  X(kCouponUsed, "coupon_used")                                  \
  X(kRefundExceedsSale, "refund_exceeds_sale")                   \
  X(kRefundWindowClosed, "refund_window_closed")                 \
  /* sign-up at the till (docs/pos-api.md, docs/hq.md) */        \
  X(kClaimUsed, "claim_used")                                    \
  X(kClaimRefused, "claim_refused")                              \
  X(kCheckoutHasMember, "checkout_has_member")                   \
  X(kCheckoutRefunded, "checkout_refunded")                      \
  X(kUnavailable, "unavailable")                                 \
  X(kLedgerDamaged, "ledger_damaged")                            \
  X(kInternal, "internal")                                       \
  /* internal: configuration, files, I/O, and the sync client */ \
  X(kInvalidArgument, "invalid_argument")                        \
  X(kConfigInvalid, "config_invalid")                            \
  X(kRulesInvalid, "rules_invalid")                              \
  X(kTimezoneInvalid, "timezone_invalid")                        \
  X(kSecretFileRefused, "secret_file_refused")                   \
  X(kIoError, "io_error")                                        \
  X(kFileTooLarge, "file_too_large")                             \
  X(kTimeout, "timeout")                                         \
  X(kCancelled, "cancelled")                                     \
  X(kOverflow, "overflow")                                       \
  X(kConflict, "conflict")                                       \
  X(kConstraint, "constraint")                                   \
  X(kFailedPrecondition, "failed_precondition")                  \
  X(kUnreadableImage, "unreadable_image")                        \
  X(kImageTooLarge, "image_too_large")                           \
  X(kBadResponse, "bad_response")                                \
  X(kApiError, "api_error")                                      \
  X(kHqError, "hq_error")                                        \
  X(kHqUnconfigured, "hq_unconfigured")

enum class ErrorCode : uint8_t {
  kOk = 0,
#define LOYALTY_ERROR_CODE_ENUM(name, text) name,
  LOYALTY_ERROR_CODES(LOYALTY_ERROR_CODE_ENUM)
#undef LOYALTY_ERROR_CODE_ENUM
};

// The wire name ("bad_request"); "ok" for kOk.
std::string_view ErrorCodeName(ErrorCode c);
// The code a wire name names; nullopt for a name this build does not know (and for "ok").
std::optional<ErrorCode> ErrorCodeFromName(std::string_view name);
// Prints the wire name (test failures, logs).
std::ostream& operator<<(std::ostream& os, ErrorCode c);

}  // namespace loyalty
