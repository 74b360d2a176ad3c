// A refund's sale from the receipt's return token: what a refunding terminal and HQ check
// a refund against when no checkout record of the sale is at hand.
#pragma once

#include "loyalty/codes/return_token.h"
#include "loyalty/model/sale.h"

namespace loyalty::sync {

// The checkout record a verified return token stands for: the fields a refund is computed
// and checked from (member, time, rules version, lines with their allocations, points),
// nothing the token does not carry (no SKUs, no prices, no request).
model::Checkout CheckoutOfReturnBasis(const codes::ReturnBasis& b);

}  // namespace loyalty::sync
