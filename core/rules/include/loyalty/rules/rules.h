// The loyalty rules engine: how a checkout turns into discounts, redemption and points,
// how a refund turns back into money and points, and the calendar rules of points lots.
// The arithmetic is the contract of shared/spec/loyalty-rules.md; docs/rules.md writes
// down every choice the contract leaves open.
//
// Everything here is pure: no clock reads (times are passed in), no I/O except
// LoadRulesToml, no global state. Every function is thread-safe, and a Rules value may be
// shared between threads as long as nobody modifies it. Money is integer cents, rates are
// integer basis points (10000 = 100 %), points are integers; intermediate products are
// computed in 128 bits and inputs outside the spec's Limits are rejected, so nothing wraps.
//
// Error codes (Status::code()):
//   bad_request                 an input outside the Limits (message names the field)
//   rules_invalid               a rules value out of range (message names file, key, reason)
//   coupon_invalid              a coupon without a member, or a coupon with impossible values
//   member_frozen, static_code_cannot_redeem, redeem_cooldown, insufficient_points,
//   redeem_not_allowed          redemption refusals, in the spec's order
//   refund_exceeds_sale         more units refunded (cumulatively) than were sold
//   internal                    a stored refund basis that contradicts itself
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "loyalty/base/status.h"
#include "loyalty/model/coupon.h"
#include "loyalty/model/lot.h"
#include "loyalty/model/sale.h"

namespace loyalty::rules {

// ---------------------------------------------------------------------------------------
// Limits of the spec ("Limits" section): inputs outside them are bad_request.
inline constexpr int64_t kMaxQty = 10000;
inline constexpr int64_t kMaxUnitPriceCents = 100000000;
inline constexpr size_t kMaxLines = 500;
inline constexpr size_t kMaxTextBytes = 64;  // sku, category
inline constexpr int64_t kMaxRedeemPoints = 100000000;

// ---------------------------------------------------------------------------------------
// Rules: the programme's parameters. Key names are the spec's; the same names are used in
// the TOML rules file and in the JSON that HQ pushes over sync.

struct TierRule {
  int64_t multiplier_bp = 10000;  // points multiplier, 0..100000
  int64_t discount_bp = 0;        // discount on discountable lines, 0..10000
  bool operator==(const TierRule&) const = default;
};

struct Rules {
  std::string version = "default";  // reported as rules_version; 1..128 bytes, no controls
  int64_t earn_points_per_yuan = 1;
  std::map<std::string, TierRule> tiers;  // exactly "member", "vip", "black"
  int64_t vip_threshold_cents = 50000, black_threshold_cents = 200000;  // key tier_thresholds_cents
  bool provisional_upgrade = false;
  int64_t birthday_multiplier_bp = 20000;
  std::set<std::string> no_discount_categories, no_points_categories, no_redeem_categories;
  int64_t cents_per_point = 1, redeem_step_points = 100, max_redeem_bp = 5000,
          redeem_cooldown_s = 600;
  int64_t points_validity_months = 12, max_points_per_hour = 5000, stale_after_s = 7200,
          stale_redeem_cap_points = 2000;
  bool static_codes_can_redeem = false;
  int64_t refund_window_days = 7;  // 0 = no limit

  // The spec's defaults: tiers member 10000/0, vip 15000/500, black 20000/1000, the three
  // category sets {tobacco, gift_card}, version "default".
  static Rules Defaults();
  bool operator==(const Rules&) const = default;
};

// Ranges (docs/rules.md lists them): step ≥ 1, cents_per_point ≥ 1, bp within 0..10000
// for discounts and the redemption share, multipliers 0..100000, vip ≤ black threshold,
// exactly the three tiers, category names ≤ 64 bytes of UTF-8 without control characters.
// Error code rules_invalid; the message names every offending key and why.
Status ValidateRules(const Rules& rules);

// The rules file (TOML; config/rules.example.toml shows every key). Every key is optional
// and falls back to its default; unknown keys, wrong types, floats and out-of-range values
// are errors (rules_invalid) whose message names the file, the line, the key and the
// reason. When `version` is absent, the version is "local-" + ShortHash of the rules'
// canonical JSON, so editing the file always changes the reported rules_version.
// LoadRulesToml reads at most 1 MiB; a file it cannot read is rules_invalid too.
Result<Rules> LoadRulesToml(const std::string& path);
Result<Rules> ParseRulesToml(std::string_view text, const std::string& source_name);

// The same keys as JSON (HQ pushes rules over sync). RulesToJson writes every key;
// RulesFromJson(RulesToJson(r)) == r for valid rules. Absent keys take their defaults and
// an absent version is derived from the content as for the file.
Result<Rules> RulesFromJson(const nlohmann::json& j);
nlohmann::json RulesToJson(const Rules& rules);

// ---------------------------------------------------------------------------------------
// Quotes.

struct Line {
  std::string sku;
  int64_t qty = 0;
  int64_t unit_price_cents = 0;
  std::string category;
};

// Limits: 1..500 lines, qty 1..10000, unit_price_cents 0..100000000, sku and category
// ≤ 64 bytes of valid UTF-8 without control characters (C0, DEL, C1). bad_request with a
// message naming the line and field ("lines[3].qty must be 1..10000, got 10001").
Status ValidateLines(const std::vector<Line>& lines);

struct Coupon {
  std::string coupon_id;
  enum class Kind { kAmountOff, kPercentOff } kind = Kind::kAmountOff;
  int64_t value_cents = 0;      // amount_off: 0..
  int64_t bp = 0;               // percent_off: 0..10000
  int64_t min_spend_cents = 0;  // applies when the discountable base is ≥ this
};

// The pricing terms of a stored coupon: the one conversion from the model, used by the
// terminal when it prices a sale and by HQ when it re-prices an upload.
Coupon CouponTerms(const model::Coupon& c);

struct MemberContext {
  std::string tier = "member";  // a tier unknown to the rules is read as "member" (warning)
  bool frozen = false;
  bool static_identification = false;  // identified by a static card or channel number
  int64_t available_balance = 0;       // over unexpired lots; may be negative
  bool stale = false;                  // snapshot older than stale_after_s (caller decides)
  bool birthday_month = false;         // in store local time (see IsBirthdayMonth)
  bool in_redeem_cooldown = false;     // a redemption on this terminal < redeem_cooldown_s ago
};

struct RedeemRequest {
  bool max = false;    // "max": takes max_redeem_points, never refused (points is ignored)
  int64_t points = 0;  // 0..100000000
};

struct QuoteInput {
  std::vector<Line> lines;
  std::optional<MemberContext> member;
  std::optional<Coupon> coupon;
  RedeemRequest redeem;
};

struct LineResult {
  int64_t line_total = 0;
  int64_t tier_discount_cents = 0;
  int64_t coupon_cents = 0;
  int64_t redeem_cents = 0;
  int64_t net_cents = 0;  // final: line_total − tier − coupon − redeem, never < 0
  int64_t net_before_redeem_cents = 0;  // line_total − tier − coupon
  bool discountable = false, points_eligible = false, redeemable = false;  // from the category
};

struct Warning {
  std::string code, message;
};

struct Quote {
  int64_t subtotal_cents = 0;
  int64_t tier_discount_cents = 0;
  int64_t coupon_discount_cents = 0;
  bool coupon_applied = false;
  int64_t redeem_points = 0;
  int64_t redeem_cents = 0;
  int64_t total_due_cents = 0;
  int64_t eligible_cents = 0;     // 0 without a member
  int64_t redeemable_cents = 0;   // Σ net before redemption of redeemable lines
  int64_t points_to_earn = 0;     // 0 without a member or for a frozen member
  int64_t max_redeem_points = 0;  // the cap; 0 without a member or when refusals 1–4 apply
  std::vector<LineResult> lines;  // one per input line, same order
  std::vector<Warning> warnings;  // codes: coupon_below_min_spend, coupon_no_discount,
                                  // tier_unknown, redeem_unavailable
};

// The spec's computation, steps 1–6. Checks, in this order: the rules (rules_invalid),
// the lines and redeem_points (bad_request), the coupon (coupon_invalid: no member, or
// value_cents < 0, bp outside 0..10000, min_spend_cents < 0), a non-zero redemption
// without a member (redeem_not_allowed), then the spec's redemption refusals 1–5.
Result<Quote> ComputeQuote(const Rules& rules, const QuoteInput& input);

// Step 6 alone: the points `eligible_cents` of final net earn a member of `member`'s tier (a
// tier the rules do not know counts as "member"), in or out of the birthday month; 0 for a
// frozen member or eligible_cents <= 0. ComputeQuote's points_to_earn is this of its
// eligible_cents. HQ credits a claimed sale with it (docs/hq.md, "Claims").
int64_t PointsFor(const Rules& rules, int64_t eligible_cents, const MemberContext& member);

// Allocation of `amount` over `weights`: floor(amount × w_i / Σw) each, then the cents
// left over one at a time to the largest remainders (amount × w_i) mod Σw, ties to the
// lower index. The result sums to exactly `amount` when amount ≥ 0 and Σw > 0; negative
// weights count as 0; amount ≤ 0 or Σw = 0 gives all zeros. A line never receives more
// than its weight when amount ≤ Σw.
std::vector<int64_t> Allocate(int64_t amount, const std::vector<int64_t>& weights);

// ---------------------------------------------------------------------------------------
// Refunds: cumulative and exact. The basis is what the checkout stored from its quote.

struct RefundLine {
  int64_t qty = 0;                      // units sold, 1..10000
  int64_t final_net_cents = 0;          // LineResult::net_cents
  int64_t net_before_redeem_cents = 0;  // LineResult::net_before_redeem_cents
  bool points_eligible = false;
  bool redeemable = false;
};

struct RefundBasis {
  std::vector<RefundLine> lines;
  int64_t points_earned = 0;
  int64_t redeemed_points = 0;
  int64_t eligible_cents = 0;    // Quote::eligible_cents
  int64_t redeemable_cents = 0;  // Quote::redeemable_cents
};

// The basis of a committed checkout (its lines' allocations and its points), as the selling
// terminal, HQ and a refunding terminal all compute refunds from.
RefundBasis RefundBasisOf(const model::Checkout& sale);

struct RefundAmounts {
  int64_t refund_cents = 0;
  int64_t points_clawed_back = 0;
  int64_t points_restored = 0;
};

// What one refund returns, given the cumulative units refunded per line before it and
// after it (both sized like basis.lines). Every amount is the increase of a cumulative
// "so far" figure, so a sequence of refunds returns exactly total_due_cents, points_earned
// and redeemed_points once every unit is back, and never more at any step.
// Errors: bad_request (sizes differ, negative units, units_after < units_before),
// refund_exceeds_sale (units_after[i] > qty), internal (a basis out of range or whose
// eligible/redeemable totals do not match its lines while points are at stake).
Result<RefundAmounts> ComputeRefund(const RefundBasis& basis,
                                    const std::vector<int64_t>& units_before,
                                    const std::vector<int64_t>& units_after);

// ---------------------------------------------------------------------------------------
// Lots, expiry, calendar rules, risk rules.

struct Lot {
  int64_t lot_id = 0;  // ascending in creation order (0 is reserved for the shortfall)
  int64_t remaining = 0;
  int64_t expires_at_s = 0;  // last second of validity: expired when now_s > expires_at_s
};

struct LotTake {
  int64_t lot_id = 0;
  int64_t points = 0;
  bool operator==(const LotTake&) const = default;
};

// Takes `points` from the lots, oldest expiry first, then lowest lot_id (creation), then
// input order. Lots already expired at now_s (now_s > expires_at_s) and lots with
// remaining ≤ 0 are skipped. What the lots cannot cover is returned last as a take with
// lot_id = 0 (the balance goes below zero). points ≤ 0 takes nothing.
std::vector<LotTake> ConsumeFifo(const std::vector<Lot>& lots, int64_t points, int64_t now_s);

// The lot engine: how a points movement changes a member's lots, computed the same way by
// the terminal's ledger and by HQ (each applies the writes to its own store).
//   delta > 0: the points first pay any debt lot; what is left becomes a new lot expiring
//              at expires_at_s (no lot when the debt took it all).
//   delta < 0: lots not expired at at_s are consumed FIFO (ConsumeFifo); what they cannot
//              cover deepens the debt lot, or opens one (points = remaining = -shortfall,
//              never expires).
// `lots` are the member's lots with something remaining, in any order.
struct LotUpdate {
  int64_t lot_id = 0;
  int64_t remaining = 0;  // the lot's new remainder
  bool operator==(const LotUpdate&) const = default;
};
struct LotMovement {
  std::vector<LotUpdate> updates;   // in the order to apply
  std::optional<model::Lot> added;  // lot_id 0: the store assigns it
  bool operator==(const LotMovement&) const = default;
};
LotMovement PlanLotMovement(const std::vector<model::Lot>& lots, uint64_t member_id, int64_t delta,
                            int64_t at_s, int64_t expires_at_s, const std::string& entry_id);
// Applies a movement to an in-memory copy of the lots, given in a store's Lots() order (by
// expiry, then lot id), and leaves them as Lots() would read them now: nothing-remaining
// lots dropped, the added lot (with new_lot_id) in its place.
void ApplyLotMovement(std::vector<model::Lot>& lots, const LotMovement& m, int64_t new_lot_id);

// Seconds east of UTC in effect at a unix time (e.g. TimeZone::UtcOffsetAt), |offset| ≤ 18 h.
using UtcOffsetFn = std::function<int64_t(int64_t)>;

// Expiry of a lot earned at `earned_at_s`: the last second (23:59:59 local) of the
// `validity_months`-th month after the local month of earning. Earned 2026-11-05 with 12
// months → 2027-11-30T23:59:59 local. Returned as unix seconds; the lot is valid while
// now_s ≤ result. validity_months < 0 counts as 0. Times are clamped to ±10^12 s.
int64_t LotExpiry(int64_t earned_at_s, int64_t validity_months, const UtcOffsetFn& utc_offset_at);

// Whether the store-local month at now_s is birthday_month (1..12; anything else: false).
bool IsBirthdayMonth(int birthday_month, int64_t now_s, const UtcOffsetFn& utc_offset_at);

// Whether a commit earning points_now makes the trailing hour's earnings (earned before
// this commit: earned_in_window_before) exceed max_points_per_hour. A commit that earns
// nothing never crosses.
bool CrossesVelocity(const Rules& rules, int64_t earned_in_window_before, int64_t points_now);

// The tier a provisional upgrade moves to, or nullopt: only with provisional_upgrade,
// only upwards (member < vip < black), never for a tier the rules do not know. The spend
// is HQ's month-to-date qualifying spend plus this terminal's since that snapshot.
std::optional<std::string> ProvisionalUpgrade(const Rules& rules, const std::string& current_tier,
                                              int64_t hq_month_spend_cents,
                                              int64_t local_spend_since_snapshot_cents);

}  // namespace loyalty::rules
