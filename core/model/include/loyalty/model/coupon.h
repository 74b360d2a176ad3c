// A coupon as HQ issues it and both ends store it: who may use it, what it takes off, from
// when to when. Whether it has been used is each store's own bookkeeping beside it (the
// terminal: the checkout that used it; HQ: the terminal and checkout; the wire: a flag).
//
// The column list, reader and binder serve both ends' SQLite stores, as entry_columns.h does
// for entries; they are templates over the statement so that the model needs no SQLite.
#pragma once

#include <cstdint>
#include <string>

// The coupon's columns in the order ReadCouponColumns reads and BindCouponColumns binds.
#define LOYALTY_COUPON_COLUMNS \
  "coupon_id, member_id, kind, value_cents, bp, min_spend_cents, valid_from_s, valid_to_s"

namespace loyalty::model {

struct Coupon {
  std::string coupon_id;
  uint64_t member_id = 0;  // 0: any member
  std::string kind;        // amount_off | percent_off
  int64_t value_cents = 0, bp = 0, min_spend_cents = 0;
  int64_t valid_from_s = 0, valid_to_s = 0;  // 0: open at that end
  bool operator==(const Coupon&) const = default;

  // True when `member` may use it (a coupon for member 0 is for anyone).
  bool ForMember(uint64_t member) const { return member_id == 0 || member_id == member; }
  // True when `now_s` is inside [valid_from_s, valid_to_s], an open end admitting anything.
  bool ValidAt(int64_t now_s) const {
    return (valid_from_s == 0 || now_s >= valid_from_s) && (valid_to_s == 0 || now_s <= valid_to_s);
  }
};

// How many columns LOYALTY_COUPON_COLUMNS names: a store's own columns follow.
inline constexpr int kCouponColumnCount = 8;

template <class Row>
Coupon ReadCouponColumns(const Row& row) {
  Coupon c;
  c.coupon_id = row.Text(0);
  c.member_id = static_cast<uint64_t>(row.Int(1));
  c.kind = row.Text(2);
  c.value_cents = row.Int(3);
  c.bp = row.Int(4);
  c.min_spend_cents = row.Int(5);
  c.valid_from_s = row.Int(6);
  c.valid_to_s = row.Int(7);
  return c;
}

// Binds the coupon to parameters 1..kCouponColumnCount, in LOYALTY_COUPON_COLUMNS order.
template <class Stmt>
void BindCouponColumns(Stmt& st, const Coupon& c) {
  st.Bind(1, c.coupon_id).Bind(2, c.member_id).Bind(3, c.kind).Bind(4, c.value_cents);
  st.Bind(5, c.bp).Bind(6, c.min_spend_cents).Bind(7, c.valid_from_s).Bind(8, c.valid_to_s);
}

}  // namespace loyalty::model
