#include "loyalty/checkout/views.h"

#include "loyalty/base/json_writer.h"
#include "loyalty/base/time.h"

namespace loyalty::checkout {

using nlohmann::json;

namespace {

void WriteMember(JsonWriter& w, const MemberView& v) {
  const ledger::MemberRow& m = v.member;
  Rfc3339Buffer time_buf;
  w.BeginObject();
  w.Key("available_balance").Int(v.available_balance);
  w.Key("balance").Int(v.provisional ? 0 : m.balance);
  w.Key("birthday_month").Bool(v.birthday_month);
  w.Key("coupons").BeginArray();
  for (const auto& c : v.coupons) {
    w.BeginObject();
    if (c.kind == "percent_off") w.Key("bp").Int(c.bp);
    w.Key("coupon_id").String(c.coupon_id);
    w.Key("kind").String(c.kind);
    w.Key("min_spend_cents").Int(c.min_spend_cents);
    w.Key("valid_from");
    c.valid_from_s ? w.String(FormatRfc3339(c.valid_from_s, time_buf)) : w.Null();
    w.Key("valid_to");
    c.valid_to_s ? w.String(FormatRfc3339(c.valid_to_s, time_buf)) : w.Null();
    if (c.kind == "amount_off") w.Key("value_cents").Int(c.value_cents);
    w.EndObject();
  }
  w.EndArray();
  w.Key("display_name");
  m.display_name ? w.String(*m.display_name) : w.Null();
  if (m.status == "frozen") w.Key("frozen_reason").String(m.frozen_reason);
  w.Key("lots").BeginArray();
  for (const auto& lot : v.lots)
    w.BeginObject()
        .Key("expires_at")
        .String(FormatRfc3339(lot.expires_at_s, time_buf))
        .Key("points")
        .Int(lot.points)
        .EndObject();
  w.EndArray();
  w.Key("member_id").String(std::to_string(m.member_id));
  w.Key("phone");
  m.phone ? w.String(*m.phone) : w.Null();
  w.Key("snapshot_at");
  m.snapshot_at_s ? w.String(FormatRfc3339(*m.snapshot_at_s, time_buf)) : w.Null();
  w.Key("stale").Bool(v.stale);
  w.Key("status").String(m.status);
  w.Key("tier").String(m.tier);
  w.EndObject();
}

// The quote body, and with `commit` the commit body.
std::string CheckoutJson(const QuoteOutcome& o, const CommitDetails* commit) {
  const rules::Quote& q = o.quote;
  std::string out;
  out.reserve(960 + 112 * q.lines.size() + (o.member ? 48 * o.member->lots.size() : 0));
  JsonWriter w(out);
  w.BeginObject();
  if (commit) {
    w.Key("balance_after");
    commit->balance_after ? w.Int(*commit->balance_after) : w.Null();
  }
  w.Key("checkout_id").String(o.checkout_id);
  if (commit) w.Key("committed_at").String(FormatRfc3339(commit->committed_at_s));
  w.Key("coupon");
  if (o.coupon_id)
    w.BeginObject()
        .Key("coupon_id")
        .String(*o.coupon_id)
        .Key("discount_cents")
        .Int(q.coupon_discount_cents)
        .EndObject();
  else
    w.Null();
  w.Key("eligible_cents").Int(q.eligible_cents);
  if (commit) {
    w.Key("entries").BeginArray();
    for (const auto& e : commit->entries) w.String(e);
    w.EndArray();
  }
  w.Key("lines").BeginArray();
  for (size_t i = 0; i < q.lines.size(); ++i) {
    const auto& l = q.lines[i];
    w.BeginObject().Key("coupon_cents").Int(l.coupon_cents).Key("line").UInt(i);
    w.Key("net_cents").Int(l.net_cents).Key("redeem_cents").Int(l.redeem_cents);
    w.Key("tier_discount_cents").Int(l.tier_discount_cents).EndObject();
  }
  w.EndArray();
  w.Key("max_redeem_points").Int(q.max_redeem_points);
  if (o.member) {
    w.Key("member");
    WriteMember(w, *o.member);
  }
  w.Key("points_to_earn").Int(q.points_to_earn);
  if (commit) {
    w.Key("receipt_lines").BeginArray();
    for (const auto& line : commit->receipt_lines) w.String(line);
    w.EndArray();
  }
  w.Key("redeem_cents").Int(q.redeem_cents);
  w.Key("redeem_points").Int(q.redeem_points);
  if (commit) {
    w.Key("return_token");
    commit->return_token ? w.String(*commit->return_token) : w.Null();
  }
  w.Key("rules_version").String(o.rules_version);
  w.Key("subtotal_cents").Int(q.subtotal_cents);
  w.Key("tier_discount_cents").Int(q.tier_discount_cents);
  w.Key("total_due_cents").Int(q.total_due_cents);
  w.Key("warnings").BeginArray();
  for (const auto& x : q.warnings)
    w.BeginObject().Key("code").String(x.code).Key("message").String(x.message).EndObject();
  w.EndArray();
  w.EndObject();
  return out;
}

}  // namespace

std::string ViewJson(const MemberView& m) {
  std::string out;
  out.reserve(320 + 48 * m.lots.size());
  JsonWriter w(out);
  WriteMember(w, m);
  return out;
}

std::string ViewJson(const IdentifyOutcome& o) {
  std::string out;
  out.reserve(480 + 48 * o.member.lots.size());
  JsonWriter w(out);
  w.BeginObject().Key("identification").BeginObject();
  if (o.kind == codes::CodeKind::kChannel) w.Key("channel").String(o.channel);
  w.Key("expires_at").String(FormatRfc3339(o.expires_at_s));
  w.Key("id").String(o.identification_id);
  w.Key("kind").String(codes::CodeKindName(o.kind));
  w.EndObject();
  w.Key("member");
  WriteMember(w, o.member);
  w.EndObject();
  return out;
}

std::string ViewJson(const QuoteOutcome& o) { return CheckoutJson(o, nullptr); }

std::string CommitViewJson(const QuoteOutcome& priced, const CommitDetails& d) {
  return CheckoutJson(priced, &d);
}

std::string RefundViewJson(const RefundDetails& d) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject();
  w.Key("balance_after");
  d.balance_after ? w.Int(*d.balance_after) : w.Null();
  w.Key("checkout_id").String(d.checkout_id);
  w.Key("entries").BeginArray();
  for (const auto& e : d.entries) w.String(e);
  w.EndArray();
  w.Key("points_clawed_back").Int(d.points_clawed_back);
  w.Key("points_restored").Int(d.points_restored);
  w.Key("refund_cents").Int(d.refund_cents);
  w.Key("refund_id").String(d.refund_id);
  if (!d.sold_at.empty()) w.Key("sold_at").String(d.sold_at);
  w.EndObject();
  return out;
}

std::string ViewJson(const MemberDetail& o) {
  json j = json::parse(ViewJson(o.member));
  json recent = json::array();
  for (const auto& e : o.recent_entries) {
    json je{{"entry_id", e.entry_id},
            {"kind", e.kind},
            {"points", e.points},
            {"at", FormatRfc3339(e.at_ms / 1000)}};
    if (!e.checkout_id.empty()) je["checkout_id"] = e.checkout_id;
    recent.push_back(std::move(je));
  }
  j["recent_entries"] = std::move(recent);
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string ViewJson(const CheckoutRecord& o) {
  json j = o.checkout;
  j["refunds"] = o.refunds;
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace loyalty::checkout
