// A sale as a verified return token carries it, as the checkout record refunds are checked
// against (docs/pos-api.md, "Returns anywhere").
#include "loyalty/sync/sale_basis.h"

#include <utility>

namespace loyalty::sync {

model::Checkout CheckoutOfReturnBasis(const codes::ReturnBasis& b) {
  model::Checkout c;
  c.checkout_id = b.checkout_id;
  c.member_id = b.member_id;
  c.committed_at_ms = b.committed_at_ms;
  c.rules_version = b.rules_version;
  c.points_earned = b.points_earned;
  c.redeemed_points = b.redeemed_points;
  c.eligible_cents = b.eligible_cents;
  c.redeemable_cents = b.redeemable_cents;
  for (size_t i = 0; i < b.lines.size(); ++i) {
    model::CheckoutLine l;
    l.line = static_cast<int64_t>(i);
    l.qty = b.lines[i].qty;
    l.net_cents = b.lines[i].net_cents;
    l.net_before_redeem_cents = b.lines[i].net_before_redeem_cents;
    l.points_eligible = b.lines[i].points_eligible;
    l.redeemable = b.lines[i].redeemable;
    c.lines.push_back(std::move(l));
  }
  return c;
}

}  // namespace loyalty::sync
