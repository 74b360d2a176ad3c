// What each checkout use case answers when it succeeds: plain values, no HTTP and no JSON.
// A use case returns Result<Outcome>; its errors are Status values with an ErrorCode
// (loyalty/base/error_code.h). checkout/views.h renders an outcome as the POS API's JSON and
// loyalty/http/errors.h maps an error to its HTTP status, both in one place.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "loyalty/codes/codes.h"
#include "loyalty/ledger/ledger.h"
#include "loyalty/rules/rules.h"

namespace loyalty::checkout {

// Points that expire together (all points earned in a month expire at the same second).
struct ExpiringPoints {
  int64_t expires_at_s = 0;
  int64_t points = 0;
};

// The member as the POS sees it (pos-api.md, "Member").
struct MemberView {
  ledger::MemberRow member;  // masked name and phone only: the terminal holds no more
  bool provisional = false;  // a valid dynamic code of a member this terminal has not seen
  int64_t available_balance = 0;
  std::vector<ExpiringPoints> lots;  // unexpired, with points left, soonest first
  bool birthday_month = false;
  bool stale = false;
  // The coupons the member may use now (docs/pos-api.md, "Coupons in view"), at most
  // kMemberViewCoupons, soonest-ending first.
  std::vector<model::Coupon> coupons;
};
inline constexpr int kMemberViewCoupons = 20;

struct IdentifyOutcome {
  std::string identification_id;
  codes::CodeKind kind = codes::CodeKind::kDynamic;
  std::string channel;  // for kChannel
  int64_t expires_at_s = 0;
  MemberView member;
};

struct QuoteOutcome {
  std::string checkout_id;
  std::optional<MemberView> member;
  rules::Quote quote;
  std::optional<std::string> coupon_id;  // the coupon applied
  std::string rules_version;
};

// A committed checkout or refund. `view` is its answer as pos-api.md shows it, rendered
// once at commit time (checkout/views.h) and kept in the ledger, so a replay of the same
// request gets the same bytes.
struct CommitOutcome {
  std::string checkout_id;
  bool replayed = false;
  std::string view;
};

struct RefundOutcome {
  std::string refund_id;
  bool replayed = false;
  std::string view;
};

struct MemberDetail {
  MemberView member;
  std::vector<ledger::EntryRow> recent_entries;  // newest first, at most 20
};

// The sign-up claim of a checkout made without a member (docs/pos-api.md, "Sign-up at the
// till"): the claim text (codes/enrol_claim.h) and when it expires. The link and the QR code
// around it are the API's (agent/src/enrolment.h).
struct EnrolmentOutcome {
  std::string checkout_id;
  std::string claim;
  int64_t committed_at_ms = 0;
  int64_t expires_at_s = 0;
};

// A committed checkout with its refunds, as stored (already parsed and checked).
struct CheckoutRecord {
  nlohmann::json checkout;
  std::vector<nlohmann::json> refunds;
};

}  // namespace loyalty::checkout
