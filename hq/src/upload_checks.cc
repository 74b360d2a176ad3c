// What HQ trusts of an upload: a checkout priced again with the rules version it names, a
// refund against its checkout and the refunds before it, an entry against the record that
// backs it, the cooldown and what the terminal could know of the balance.
//
// An upload is believed only as far as HQ can check it (hq-and-sync.md, "What HQ
// trusts"). Each Check* returns "" when the record checks out, else the reason it is
// refused; a failed read is an error (the upload fails and is retried), never a pass.
#include "service_internal.h"

#include "loyalty/base/json.h"

#include <algorithm>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace loyalty::hq {

using namespace internal;

namespace {
// How long after HQ sent a changes page a terminal's sale may still have been priced without
// it (CandidateStates): the run writes the page a moment later.
constexpr int64_t kPageApplyGraceMs = 1000;
// Whether one of these (tier, frozen) states is frozen.
bool AnyFrozen(const auto& states) {
  return std::any_of(states.begin(), states.end(), [](const auto& s) { return s.second; });
}
}  // namespace

// Every (tier, frozen) state the terminal could have priced the member with at commit_ms:
// the states HQ recorded between the terminal's last download at or before the commit and
// the commit (its snapshot, or what HQ had by then; from its last changes page when the
// member was sent alone since: that answer may be lost), a provisional member when the
// terminal had no snapshot of it yet (or asked HQ for it after its last page), frozen after this
// terminal's own velocity freeze, and higher tiers after its own provisional upgrade where the
// rules allow one; only frozen ones after a freeze of its own since its last download, written or
// proved by its own earnings (FrozenByOwnEarnings), which *frozen_by_terminal tells.
Result<std::vector<std::pair<std::string, bool>>> HqService::Impl::CandidateStates(
    const std::string& tid, uint64_t member_id, int64_t commit_ms, std::optional<int64_t> sale_seq,
    const rules::Rules& r, MemberSlot& slot, bool earns_or_redeems, bool* frozen_by_terminal) {
  const std::optional<MemberRecord>& m = slot.m;
  auto d = DownloadsOf(tid, member_id, commit_ms);
  if (!d.ok()) return d.status();
  const std::optional<int64_t> last = d->last();
  // The member sent alone since the last changes page may never have arrived (a look-up HQ
  // answered after the terminal's timeout): the states since that page stay possible, or,
  // with no page before, those since the first such answer (and the provisional member).
  // The terminal asked for each, so a till that lies about one gains nothing it could not
  // have had by not asking.
  const bool unsure = !d->alone.empty();
  int64_t from = d->page ? *d->page : unsure ? d->alone.front() : commit_ms;
  // A page is the terminal's once its run has written it, a moment after HQ sent it (tens of
  // milliseconds; more for a big page or a clock a little ahead of HQ's): a sale committed
  // within kPageApplyGraceMs of the page may still have been priced with the page before it,
  // or -- before any page -- with no snapshot of the member at all.
  bool before_first_page = false;
  if (d->page && *d->page > 0 && commit_ms - *d->page < kPageApplyGraceMs) {
    auto prev = DownloadsOf(tid, member_id, *d->page - 1);
    if (!prev.ok()) return prev.status();
    if (prev->page)
      from = std::min(from, *prev->page);
    else if (!prev->alone.empty())
      from = std::min(from, prev->alone.front());
    else
      before_first_page = true;
  }
  auto states = StatesBetween(slot, member_id, from, std::max(from, commit_ms));
  if (!states.ok()) return states.status();
  std::set<std::pair<std::string, bool>> out;
  for (const auto& [tier, status] : *states) out.insert({tier, status == "frozen"});
  if (states->empty() && m) out.insert({m->tier, m->status == "frozen"});
  if (!last || !m || m->created_at_ms > *last || before_first_page) {
    out.insert({"member", false});
  } else if (unsure || d->alone_later) {
    // A look-up's answer lost on the way, or one HQ gave after the sale (the terminal asks
    // for a member it does not have: it sold them as provisional before HQ answered), leaves
    // the terminal without the member at the sale: a provisional member, never unfrozen
    // while HQ had it frozen since the page (asking again for a member it holds frozen must
    // not let a till sell it unfrozen).
    out.insert({"member", AnyFrozen(out)});
  }
  auto freezes = TerminalMarks(slot, tid, member_id, "freeze");
  if (!freezes.ok()) return freezes.status();
  auto upgrades = TerminalMarks(slot, tid, member_id, "tier_upgrade");
  if (!upgrades.ok()) return upgrades.status();
  // Written before the sale: in the chain's order when HQ has the sale's earn entry in this
  // upload (a clock stepped back leaves times out of order), else by time (the sale whose
  // earnings froze the member, in the freeze's millisecond, was priced before it); by the
  // sale's time, one in its millisecond too.
  auto before = [&](const TerminalMark& m) {
    return sale_seq ? m.seq < *sale_seq : m.at_ms < commit_ms;
  };
  auto any_by_sale = [&](const std::vector<Mark>& marks) {
    return std::any_of(marks.begin(), marks.end(), [&](const Mark& x) {
      return sale_seq ? x.m.seq < *sale_seq : x.m.at_ms <= commit_ms;
    });
  };
  const bool froze = any_by_sale(*freezes);
  const bool upgraded = any_by_sale(*upgrades);
  // Frozen by this terminal before the sale and after its last download (which would have
  // brought an unfreeze): the terminal priced the member frozen, and nothing else. Only a
  // freeze surely on the branch the sale is on: the upload's own, or one HQ holds below the
  // terminal's first fork (a terminal restored from an older backup does not hold the
  // freeze of the branch it lost, nor what it wrote after the restore if HQ cannot tell the
  // branches apart: that counts less, never more).
  bool frozen_only = false;
  for (const auto& f : *freezes) {
    if (!before(f.m) || (last && f.m.at_ms <= *last)) continue;
    if (!f.in_upload) {
      auto below = BranchBelow(tid);
      if (!below.ok()) return below.status();
      if (f.m.seq >= *below) continue;
    }
    frozen_only = true;
    break;
  }
  // Or frozen by its own earnings without a freeze entry (a rooted till leaving its freeze
  // out): asked only when a state left would price the member unfrozen, for a sale that earned
  // or redeemed (frozen differs from unfrozen only there: quote.cc).
  if (!frozen_only && earns_or_redeems &&
      std::any_of(out.begin(), out.end(), [](const auto& s) { return !s.second; })) {
    auto own = FrozenByOwnEarnings(tid, member_id, commit_ms, r, slot);
    if (!own.ok()) return own.status();
    frozen_only = *own;
  }
  if (frozen_by_terminal) *frozen_by_terminal = frozen_only;
  if (frozen_only) {
    std::set<std::pair<std::string, bool>> frozen;
    for (const auto& [tier, was_frozen] : out) frozen.insert({tier, true});
    out = std::move(frozen);
  }
  std::set<std::pair<std::string, bool>> more = out;
  for (const auto& [tier, frozen] : out) {
    if (froze) more.insert({tier, true});
    if (upgraded && r.provisional_upgrade) {
      for (const char* t : {"vip", "black"}) {
        if (TierRank(t) > TierRank(tier)) {
          more.insert({t, frozen});
          if (froze) more.insert({t, true});
        }
      }
    }
  }
  return std::vector<std::pair<std::string, bool>>(more.begin(), more.end());
}

namespace {
// How many of the answers that sent a member alone since a terminal's last changes page a
// redemption is checked against, besides that page (the latest ones).
constexpr size_t kMaxAnswersKnown = 8;
// How far before a sale FrozenByOwnEarnings looks for the sale that froze the member: a
// crossing further back is not looked for (which only counts less; HQ's chain-wide velocity
// froze that member for review at the upload that crossed, in any case).
constexpr int64_t kOwnEarningsLookBackMs = int64_t{30} * 86'400'000;
}  // namespace

int64_t HqService::Impl::OwnEarnsFrom(int64_t unfrozen_at_ms, int64_t commit_ms) {
  constexpr int64_t kBack = kOwnEarningsLookBackMs + 3'600'000;
  if (commit_ms < std::numeric_limits<int64_t>::min() + kBack) return unfrozen_at_ms;
  return std::max(unfrozen_at_ms, commit_ms - kBack);
}

// Did this terminal's velocity rule (loyalty-rules.md, "Risk rules") freeze the member before
// commit_ms? It froze it at a sale whose commit made the member's earnings in the trailing
// hour -- the terminal's own earn entries with at > commit - 1 h and after the latest
// unfreeze it knew -- exceed the limit of that sale's rules, with a freeze entry HQ accepts
// (its count is of the same entries); only HQ's unfreeze lifts it, a download keeps it
// (sync_local.cc, ApplySnapshot). Counted here from what the terminal cannot deny and HQ
// credited: its earn entries HQ applied (below the terminal's first fork: a terminal
// restored from an older backup does not hold the branch it lost), and those of this upload
// whose sales HQ accepted earlier in it; each sum only over the entries written before that
// sale's (lower seq) with at_ms in its hour, after HQ's latest unfreeze (at or after any the
// terminal knew), for sales in the look-back before this commit. Every choice counts less
// than the terminal did, never more: an honest terminal's sale is never judged frozen when it
// was not, and one that left its freeze out is judged frozen once the points HQ credited it
// cross the limit. (A refused forgery is not counted: it credited nothing.)
Result<bool> HqService::Impl::FrozenByOwnEarnings(const std::string& tid, uint64_t member_id,
                                                  int64_t commit_ms, const rules::Rules& r,
                                                  MemberSlot& slot) {
  constexpr int64_t kHour = 3'600'000;
  const int64_t from = OwnEarnsFrom(slot.m ? slot.m->unfrozen_at_ms : 0, commit_ms);
  // Read by WarmOwnEarns for every checkout of the upload that earned or redeemed, from its
  // member's first sale in the upload on (the only sales asked).
  if (!slot.own_earns || slot.own_earns_of != tid || from < slot.own_earns_after)
    return Status::Error(ErrorCode::kInternal, "the terminal's own earnings were not read for " +
                                                   std::to_string(member_id));
  std::vector<const TerminalEarn*> earns;  // in the chain's order
  for (const auto& [e, in_upload] : *slot.own_earns) {
    if (e.at_ms <= from || e.at_ms >= commit_ms) continue;
    if (in_upload) {  // credited only if its sale, judged before this one, was accepted
      auto b = batch_checkouts.find(e.checkout_id);
      if (b == batch_checkouts.end() || b->second.refused) continue;
    }
    earns.push_back(&e);
  }
  if (earns.empty()) return false;
  // Each sale's hour, in the chain's order: a Fenwick tree over the entries' times holds the
  // points of those written so far (a clock stepped back leaves times out of order).
  std::vector<int64_t> times;
  for (const auto* e : earns) times.push_back(e->at_ms);
  std::sort(times.begin(), times.end());
  times.erase(std::unique(times.begin(), times.end()), times.end());
  std::vector<__int128> tree(times.size() + 1, 0);
  auto add = [&](size_t i, int64_t v) {
    for (++i; i < tree.size(); i += i & (~i + 1)) tree[i] += v;
  };
  auto upto = [&](size_t n) {  // the points of the first n times
    __int128 sum = 0;
    for (; n > 0; n -= n & (~n + 1)) sum += tree[n];
    return sum;
  };
  auto rank = [&](int64_t t) {  // times <= t
    return static_cast<size_t>(std::upper_bound(times.begin(), times.end(), t) - times.begin());
  };
  // Below the lowest limit this sale's rules or the current ones set, no sale's is crossed
  // in practice; a lower limit another version may have had is not looked for (which only
  // counts less).
  const int64_t least = std::min(r.max_points_per_hour, current.max_points_per_hour);
  std::map<std::string, std::optional<int64_t>> limits;  // by checkout
  for (const auto* e : earns) {
    add(rank(e->at_ms) - 1, e->points);
    const int64_t hour_from = e->at_ms < std::numeric_limits<int64_t>::min() + kHour
                                  ? std::numeric_limits<int64_t>::min()
                                  : e->at_ms - kHour;
    const __int128 earned = upto(rank(e->at_ms)) - upto(rank(hour_from));
    if (earned <= least) continue;
    auto [it, fresh] = limits.emplace(e->checkout_id, std::nullopt);
    if (fresh) {  // a sale or version HQ does not know: not looked for (counts less)
      auto b = batch_checkouts.find(e->checkout_id);
      auto rv = KnownRulesOfSale(tid, e->checkout_id,
                                 b == batch_checkouts.end() ? nullptr : b->second.checkout);
      if (!rv.ok()) return rv.status();
      if (*rv) it->second = (*rv)->max_points_per_hour;
    }
    if (it->second && earned > *it->second) return true;
  }
  return false;
}

bool HqService::Impl::SamePricing(const rules::Quote& q, const sync::Checkout& c) {
  if (q.subtotal_cents != c.subtotal_cents || q.total_due_cents != c.total_due_cents ||
      q.points_to_earn != c.points_earned || q.redeem_points != c.redeemed_points ||
      q.eligible_cents != c.eligible_cents || q.redeemable_cents != c.redeemable_cents ||
      q.lines.size() != c.lines.size()) {
    return false;
  }
  for (size_t i = 0; i < q.lines.size(); ++i) {
    const auto& a = q.lines[i];
    const auto& b = c.lines[i];
    if (a.tier_discount_cents != b.tier_discount_cents || a.coupon_cents != b.coupon_cents ||
        a.redeem_cents != b.redeem_cents || a.net_cents != b.net_cents ||
        a.net_before_redeem_cents != b.net_before_redeem_cents ||
        a.points_eligible != b.points_eligible || a.redeemable != b.redeemable) {
      return false;
    }
  }
  return true;
}

// Prices the checkout again with the rules version it names, every state the member could
// have been in, and the member's birthday month.
Result<std::string> HqService::Impl::CheckCheckout(const std::string& tid,
                                                   const sync::Checkout& c) {
  // The Limits of loyalty-rules.md, which the codec leaves to this check so that a record
  // past them is refused alone (quantities, unit prices, line count, sku and category).
  rules::QuoteInput in;
  for (size_t i = 0; i < c.lines.size(); ++i) {
    const auto& l = c.lines[i];
    if (l.line != static_cast<int64_t>(i)) return std::string("record_malformed");
    in.lines.push_back({l.sku, l.qty, l.unit_price_cents, l.category});
  }
  if (!rules::ValidateLines(in.lines).ok()) return std::string("value_out_of_range");
  if (!c.member_id) {
    if (c.points_earned != 0 || c.redeemed_points != 0 || !c.coupon_id.empty())
      return std::string("no_member");
    return std::string();
  }
  auto rv = RulesVersion(c.rules_version);
  if (!rv.ok()) return rv.status();
  if (!*rv) return std::string("rules_version_unknown");
  const rules::Rules& r = **rv;
  if (!c.coupon_id.empty()) {
    auto rec = store.GetCoupon(c.coupon_id);
    if (!rec.ok()) return rec.status();
    if (!*rec) return std::string("coupon_unknown");
    const auto& k = (*rec)->coupon;
    if (!k.ForMember(*c.member_id)) return std::string("coupon_not_for_member");
    // The terminal takes a coupon only inside its validity period, at the second of the
    // commit (coupons never change once made, so HQ's record is the terminal's).
    if (!k.ValidAt(std::max<int64_t>(0, FloorDiv(c.committed_at_ms, 1000))))
      return std::string("coupon_out_of_period");
    in.coupon = rules::CouponTerms(k);
  }
  // A redemption is priced again as a request for the points it took. A request for a number
  // is at most rules::kMaxRedeemPoints, but one for "max" takes the cap whatever the balance
  // (loyalty-rules.md): more than that limit was a "max", priced as one with the points it
  // took as the balance (the cap is then exactly those points, or the sale is not this one).
  const bool as_max = c.redeemed_points > rules::kMaxRedeemPoints;
  if (as_max) {
    in.redeem.max = true;
  } else {
    in.redeem.points = c.redeemed_points;
  }
  auto slot = Slot(*c.member_id);
  if (!slot.ok()) return slot.status();
  bool frozen_by_terminal = false;
  auto seq = batch_sale_seq.find(c.checkout_id);
  auto states = CandidateStates(
      tid, *c.member_id, c.committed_at_ms,
      seq == batch_sale_seq.end() ? std::nullopt : std::optional<int64_t>(seq->second), r, **slot,
      c.points_earned > 0 || c.redeemed_points > 0, &frozen_by_terminal);
  if (!states.ok()) return states.status();
  // The store's calendar may differ from the chain's: a birthday month counts if it is
  // the month at the commit anywhere from UTC-12 to UTC+14.
  std::set<bool> birthdays{false};
  int bm = (*slot)->m ? (*slot)->m->birthday_month : 0;
  int64_t at_s = FloorDiv(c.committed_at_ms, 1000);
  for (int64_t off : {-12 * 3600, 14 * 3600}) {
    if (rules::IsBirthdayMonth(bm, at_s, [off](int64_t) { return off; })) birthdays.insert(true);
  }
  auto priced_as = [&](const std::string& tier, bool frozen) {
    for (bool birthday : birthdays) {
      rules::MemberContext ctx;
      ctx.tier = tier;
      ctx.frozen = frozen;
      ctx.static_identification = c.code_hash.empty();
      // The balance is checked with the redeem entry.
      ctx.available_balance = as_max ? c.redeemed_points : sync::kMaxPoints;
      ctx.birthday_month = birthday;
      in.member = ctx;
      auto q = rules::ComputeQuote(r, in);
      if (q.ok() && SamePricing(*q, c)) return true;
    }
    return false;
  };
  for (const auto& [tier, frozen] : *states)
    if (priced_as(tier, frozen)) return std::string();
  // A member HQ never sent this terminal (outside its store's scope, or evicted from it) was
  // a provisional member there (member-codes.md), however recent its downloads: priced as a
  // plain member (frozen if this terminal froze it: its velocity rule counts a provisional
  // member's earnings too). Asked only here, for a sale no other state explains.
  const std::pair<std::string, bool> provisional{"member", frozen_by_terminal};
  if (std::find(states->begin(), states->end(), provisional) == states->end()) {
    auto held = store.HoldsMember(tid, *c.member_id);
    if (!held.ok()) return held.status();
    if (!*held)
      return priced_as(provisional.first, provisional.second) ? std::string() : "price_mismatch";
    // Held since this terminal's own earlier sales of it reached HQ, with no changes page
    // since (the run's download failed after its upload): the terminal still has only the
    // provisional member its first sale made. Never unfrozen while HQ had the member frozen
    // (a till that holds it frozen must not sell it unfrozen by leaving its pages out).
    auto first = store.FirstEntryReceivedAt(tid, *c.member_id);
    if (!first.ok()) return first.status();
    auto d = DownloadsOf(tid, *c.member_id, c.committed_at_ms);
    if (!d.ok()) return d.status();
    if (*first && (!d->page || *d->page < **first) &&
        priced_as("member", frozen_by_terminal || AnyFrozen(*states)))
      return std::string();
  }
  return std::string("price_mismatch");
}

Result<std::map<std::string, int64_t>> HqService::Impl::RefundSeqs(const std::string& tid,
                                                                   const std::string& checkout_id) {
  auto seqs = store.RefundEntrySeqs(tid, checkout_id);
  if (!seqs.ok()) return seqs.status();
  for (auto it = batch_refund_seq.lower_bound({checkout_id, ""});
       it != batch_refund_seq.end() && it->first.first == checkout_id; ++it) {
    auto [at, fresh] = seqs->emplace(it->first.second, it->second);
    if (!fresh) at->second = std::min(at->second, it->second);
  }
  return seqs;
}

HqService::Impl::RefundOrder HqService::Impl::OrderOf(const sync::Refund& r,
                                                      const std::map<std::string, int64_t>& seqs) {
  auto it = seqs.find(r.refund_id);
  return {r.at_ms, it == seqs.end() ? std::numeric_limits<int64_t>::max() : it->second,
          r.refund_id};
}

namespace {
// The other terminals' refunds of one sale whose every subset a refund's amounts are tried
// against (2^8 computations at most).
constexpr size_t kMaxKnowableRefunds = 8;
}  // namespace

// A refund: of a sale HQ accepted (or a verified receipt's, docs/hq.md "Returns at another
// terminal"), within the window, no more units than were sold, and amounts that follow
// from the sale and the refunds before it. Refunds of one sale at other terminals that HQ
// accepted come before this one; the same terminal's, in the order it made them.
Result<std::string> HqService::Impl::CheckRefund(const std::string& tid, const sync::Refund& f,
                                                 std::string* other_terminal, uint64_t* member,
                                                 int64_t* correction) {
  *member = 0;
  *correction = 0;
  for (const auto& l : f.lines)
    if (l.qty < 1 || l.qty > rules::kMaxQty) return std::string("value_out_of_range");
  auto sale = SaleOf(tid, f);
  if (!sale.ok()) return sale.status();
  if (!sale->checkout) {
    *member = sale->refused_member;
    return sale->reason;
  }
  const sync::Checkout& co = *sale->checkout;
  if (co.member_id) *member = *co.member_id;
  // The window is the rules' current at the refund (docs/pos-api.md): the terminal's may be
  // HQ's current version or, offline since, the sale's; closed only when closed in both.
  auto rv = RulesVersion(co.rules_version);
  if (!rv.ok()) return rv.status();
  auto open_in = [&](const rules::Rules& r) {
    return r.refund_window_days == 0 ||
           f.at_ms - co.committed_at_ms <= r.refund_window_days * 86'400'000;
  };
  if (*rv && !open_in(**rv) && !open_in(current)) return std::string("refund_window_closed");
  auto earlier = store.AcceptedRefundsOfSale(sale->sold_at, f.checkout_id);
  if (!earlier.ok()) return earlier.status();
  auto seqs = RefundSeqs(tid, f.checkout_id);
  if (!seqs.ok()) return seqs.status();
  const RefundOrder mine = OrderOf(f, *seqs);
  size_t n = co.lines.size();
  std::vector<int64_t> before(n, 0), mine_only(n, 0), after(n, 0);
  std::vector<std::vector<int64_t>> others;  // each other terminal's accepted refund, by line
  std::string first_other;
  for (const auto& [by, e] : *earlier) {
    if (by == tid) {
      if (e.refund_id == f.refund_id) continue;
      if (OrderOf(e, *seqs) > mine) continue;
    } else {
      if (first_other.empty()) first_other = by;
      others.emplace_back(n, 0);
    }
    for (const auto& l : e.lines) {
      if (l.line >= 0 && static_cast<size_t>(l.line) < n) {
        before[static_cast<size_t>(l.line)] += l.qty;
        if (by == tid)
          mine_only[static_cast<size_t>(l.line)] += l.qty;
        else
          others.back()[static_cast<size_t>(l.line)] += l.qty;
      }
    }
  }
  after = before;
  for (const auto& l : f.lines) {
    if (l.line < 0 || static_cast<size_t>(l.line) >= n) return std::string("record_malformed");
    after[static_cast<size_t>(l.line)] += l.qty;  // qty <= 10^4, lines <= 500: no overflow
  }
  const rules::RefundBasis basis = rules::RefundBasisOf(co);
  auto amounts = rules::ComputeRefund(basis, before, after);
  if (!amounts.ok()) {
    if (amounts.status().code() != ErrorCode::kRefundExceedsSale)
      return std::string("record_malformed");
    // Units this terminal could not have known were refunded elsewhere (offline at two
    // terminals): the same units refunded twice, which HQ reports and claws back once.
    for (size_t i = 0; i < n && !first_other.empty(); ++i) {
      if (after[i] - (before[i] - mine_only[i]) <= co.lines[i].qty && after[i] > co.lines[i].qty) {
        if (other_terminal) *other_terminal = first_other;
        return std::string("refund_reused");
      }
    }
    return std::string("refund_exceeds_sale");
  }
  // The amounts: the terminal computed them against the refunds it knew of — its own, and
  // those HQ told it of — so a refund after another terminal's is checked as HQ orders them.
  auto same = [&f](const rules::RefundAmounts& a) {
    return a.refund_cents == f.refund_cents && a.points_clawed_back == f.points_clawed_back &&
           a.points_restored == f.points_restored;
  };
  if (same(*amounts)) return std::string();
  // A terminal that did not know of some of the other terminals' refunds (offline, or made
  // after it asked HQ) computed against its own refunds and those it knew of: the amounts
  // differ from these by the rounding of the allocation at most (docs/hq.md, "Returns at
  // another terminal"). Each set of the others' refunds it could have known is tried (every
  // subset up to kMaxKnowableRefunds of them; past that, none or all: a sale returned at so
  // many lanes is rare).
  if (!others.empty()) {
    const size_t k = others.size() <= kMaxKnowableRefunds ? others.size() : 0;
    const uint32_t last = (uint32_t{1} << k) - 1;  // the full set is `before`, tried above
    for (uint32_t known = 0; known <= last; ++known) {
      if (k > 0 && known == last) break;
      std::vector<int64_t> base = mine_only;
      for (size_t i = 0; i < k; ++i)
        if (known & (uint32_t{1} << i))
          for (size_t j = 0; j < n; ++j) base[j] += others[i][j];
      std::vector<int64_t> then = base;
      for (const auto& l : f.lines) then[static_cast<size_t>(l.line)] += l.qty;
      auto could = rules::ComputeRefund(basis, base, then);
      if (could.ok() && same(*could)) {
        // Accepted as the terminal could compute it; HQ makes up the rounding, so that once
        // every unit is refunded exactly the points of the sale are clawed back and restored
        // (loyalty-rules.md), whichever lanes refunded them in whatever order.
        *correction = (f.points_clawed_back - amounts->points_clawed_back) +
                      (amounts->points_restored - f.points_restored);
        return std::string();
      }
    }
  }
  return std::string("refund_mismatch");
}

Result<const rules::Rules*> HqService::Impl::RulesOfSale(const std::string& tid,
                                                         const std::string& checkout_id,
                                                         const sync::Checkout* sale) {
  auto known = KnownRulesOfSale(tid, checkout_id, sale);
  if (!known.ok() || *known) return known;
  return &current;
}

Result<const rules::Rules*> HqService::Impl::KnownRulesOfSale(const std::string& tid,
                                                              const std::string& checkout_id,
                                                              const sync::Checkout* sale) {
  std::optional<sync::Checkout> stored;
  if (!sale && !checkout_id.empty()) {
    auto c = store.GetCheckout(tid, checkout_id);
    if (!c.ok()) return c.status();
    if (*c) {
      stored = std::move(**c);
      sale = &*stored;
    }
  }
  if (sale) {
    auto rv = RulesVersion(sale->rules_version);
    if (!rv.ok()) return rv.status();
    if (*rv) return rv->get();  // kept in `versions` for the life of the service
  }
  return static_cast<const rules::Rules*>(nullptr);
}

// A terminal's provisional upgrade (loyalty-rules.md, "Tiers"): allowed by the rules its
// sale was priced with, to a higher tier, and reached by the month's spend. The lane counted
// HQ's month spend in its snapshot plus its own sales since, net of refunds; every one of
// those sales is a checkout HQ holds or this upload carries, committed in the month up to
// the upgrade. So the sum of those checkouts' totals — refunds not netted, the month begun
// 26 hours before the chain's (a store's calendar may run from UTC-12 to UTC+14) — is never
// below what an honest lane counted, and an upgrade it does not reach is one the lane
// could not have made: a till does not promote a member by saying so.
Result<std::string> HqService::Impl::UpgradeVerdict(const std::string& tid, const sync::Entry& e,
                                                    const sync::UploadRequest& up) {
  const sync::Checkout* sale = nullptr;
  for (const auto& c : up.checkouts)
    if (!e.checkout_id.empty() && c.checkout_id == e.checkout_id) sale = &c;
  auto rules_of_sale = RulesOfSale(tid, e.checkout_id, sale);
  if (!rules_of_sale.ok()) return rules_of_sale.status();
  const rules::Rules* r = *rules_of_sale;
  if (!r->provisional_upgrade) return std::string("upgrade_not_allowed");
  std::string to;
  if (auto detail = ParseJsonObject(e.detail); detail.ok()) {
    if (auto it = detail->find("to"); it != detail->end() && it->is_string())
      to = it->get<std::string>();
  }
  int64_t threshold = 0;
  if (to == "vip") {
    threshold = r->vip_threshold_cents;
  } else if (to == "black") {
    threshold = r->black_threshold_cents;
  } else {
    return std::string("record_malformed");
  }
  const int64_t from_ms = MonthBounds(FloorDiv(e.at_ms, 1000)).first - 26 * 3600 * 1000;
  const int64_t to_ms = e.at_ms + 1;
  auto held = store.MemberCheckoutTotal(e.member_id, from_ms, to_ms);
  if (!held.ok()) return held.status();
  __int128 spend = *held;
  for (const auto& c : up.checkouts) {
    if (!c.member_id || *c.member_id != e.member_id || c.committed_at_ms < from_ms ||
        c.committed_at_ms >= to_ms)
      continue;
    if (batch_verdicts && batch_verdicts->count(c.checkout_id)) continue;  // in `held`, or refused
    spend += std::max<int64_t>(c.total_due_cents, 0);
  }
  if (spend < threshold) return std::string("upgrade_unexplained");
  return std::string();
}

// An entry: a terminal kind, its points backed by a checked record, once, within limits.
Result<std::string> HqService::Impl::CheckEntry(const std::string& tid, const sync::Entry& e) {
  if (!sync::IsTerminalEntryKind(e.kind)) return std::string("kind_not_allowed");
  // Every member is enrolled at HQ before any till can know it: an entry for a member HQ
  // does not hold backs nothing, and applying it would make the member (a till could take
  // an id before HQ enrols it, and put it in every lane's evictions).
  auto slot = Slot(e.member_id);
  if (!slot.ok()) return slot.status();
  if (!(*slot)->m) return std::string("member_unknown");
  if (e.kind == "earn" || e.kind == "redeem") {
    if (e.checkout_id.empty() || !e.refund_id.empty()) return std::string("record_missing");
    // The batch's own checkouts were just judged: no need to read them back.
    std::optional<sync::Checkout> stored;
    const sync::Checkout* found = nullptr;
    const BatchCheckout* in_batch = nullptr;
    if (auto it = batch_checkouts.find(e.checkout_id); it != batch_checkouts.end()) {
      if (it->second.refused) return std::string("checkout_refused");
      in_batch = &it->second;
      found = in_batch->checkout;
    } else {
      auto verdict = store.CheckoutRefused(tid, e.checkout_id);
      if (!verdict.ok()) return verdict.status();
      if (!*verdict) return std::string("record_missing");
      if (**verdict) return std::string("checkout_refused");
      auto c = store.GetCheckout(tid, e.checkout_id);
      if (!c.ok()) return c.status();
      if (!*c) return std::string("record_missing");
      stored = std::move(**c);
      found = &*stored;
    }
    const sync::Checkout& co = *found;
    if (!co.member_id || *co.member_id != e.member_id) return std::string("member_mismatch");
    bool earn = e.kind == "earn";
    if (e.points != (earn ? co.points_earned : -co.redeemed_points) ||
        (!earn && co.redeemed_points == 0)) {
      return std::string("points_mismatch");
    }
    if (in_batch) {
      if (auto a = in_batch->applied.find(e.kind); a != in_batch->applied.end() && a->second > 0) {
        return std::string("duplicate");
      }
    } else {
      auto n = store.CountAppliedEntries(tid, e.checkout_id, "", e.kind);
      if (!n.ok()) return n.status();
      if (*n > 0) return std::string("duplicate");
    }
    if (!earn) {
      auto rv = RulesVersion(co.rules_version);
      if (!rv.ok()) return rv.status();
      if (!*rv) return std::string("rules_version_unknown");
      // The cooldown (loyalty-rules.md): the terminal refuses a redemption less than
      // redeem_cooldown_s after the member's last one recorded on it, refused at HQ or not.
      if ((*rv)->redeem_cooldown_s > 0) {
        auto last = store.LastTerminalEntryAt(tid, e.member_id, "redeem", e.seq);
        if (!last.ok()) return last.status();
        if (*last && **last > 0 && co.committed_at_ms - **last < (*rv)->redeem_cooldown_s * 1000) {
          return std::string("cooldown_active");
        }
      }
      // Against what the terminal could know: its last snapshot plus its own entries since;
      // the snapshot of its last changes page (none: a provisional member's 0) or of an
      // answer sent after it (which may not have arrived; the last kMaxAnswersKnown, so that
      // a till asking for a member again and again does not multiply this check's reads),
      // whichever knew the most.
      auto d = DownloadsOf(tid, e.member_id, co.committed_at_ms);
      if (!d.ok()) return d.status();
      std::vector<int64_t> bases{d->page.value_or(0)};
      const size_t answers = std::min(d->alone.size(), kMaxAnswersKnown);
      bases.insert(bases.end(), d->alone.end() - static_cast<std::ptrdiff_t>(answers),
                   d->alone.end());
      bool enough = false;
      for (int64_t base : bases) {
        auto known = store.KnownBalance(e.member_id, tid, base, e.seq, e.checkout_id,
                                        FloorDiv(co.committed_at_ms, 1000));
        if (!known.ok()) {
          if (known.status().code() == ErrorCode::kOverflow)
            return std::string("value_out_of_range");
          return known.status();
        }
        if (*known >= co.redeemed_points) {
          enough = true;
          break;
        }
      }
      if (!enough) return std::string("insufficient_points");
      // Stale as the terminal judged it: in whole seconds from the snapshot's snapshot_at_s,
      // the download's second (sync_routes.cc); from the latest download, arrived or not.
      const std::optional<int64_t> last = d->last();
      bool stale = !last || FloorDiv(co.committed_at_ms, 1000) - FloorDiv(*last, 1000) >
                                (*rv)->stale_after_s;
      if (stale && co.redeemed_points > (*rv)->stale_redeem_cap_points)
        return std::string("stale_cap_exceeded");
    }
  } else if (e.kind == "clawback" || e.kind == "restore") {
    if (e.checkout_id.empty() || e.refund_id.empty()) return std::string("record_missing");
    auto refunds = store.AcceptedRefundsOf(tid, e.checkout_id);
    if (!refunds.ok()) return refunds.status();
    auto it = std::find_if(refunds->begin(), refunds->end(),
                           [&](const sync::Refund& f) { return f.refund_id == e.refund_id; });
    if (it == refunds->end()) return std::string("record_missing");
    uint64_t member = 0;
    if (auto known = batch_refund_member.find(e.refund_id); known != batch_refund_member.end()) {
      member = known->second;
    } else {
      auto sale = SaleOf(tid, *it);
      if (!sale.ok()) return sale.status();
      if (sale->checkout && sale->checkout->member_id) member = *sale->checkout->member_id;
    }
    if (member == 0 || member != e.member_id) return std::string("member_mismatch");
    bool claw = e.kind == "clawback";
    if (e.points != (claw ? -it->points_clawed_back : it->points_restored))
      return std::string("points_mismatch");
    auto n = store.CountAppliedEntries(tid, e.checkout_id, e.refund_id, e.kind);
    if (!n.ok()) return n.status();
    if (*n > 0) return std::string("duplicate");
  } else {  // freeze, tier_upgrade, correction
    if (e.points != 0) return std::string("points_not_zero");
    if (e.kind == "tier_upgrade") {
      auto verdict = batch_upgrades.find(e.entry_id);
      if (verdict == batch_upgrades.end())
        return Status::Error(ErrorCode::kInternal, "tier_upgrade entry not judged before");
      if (!verdict->second.empty()) return verdict->second;
    }
    if (e.kind == "freeze") {
      // A terminal freezes a member for velocity (loyalty-rules.md): its own earn entries for
      // the member in the hour up to the freeze crossed max_points_per_hour of the rules its
      // sale was priced with. A freeze its own entries do not explain would let one till
      // freeze any member of the chain: refused (HQ's chain-wide velocity freezes apart).
      // The hour is counted from the freeze back, ignoring unfreezes the terminal may not
      // have known of, so an honest till's count is never above this one.
      const sync::Checkout* in_batch = nullptr;
      if (auto it = batch_checkouts.find(e.checkout_id);
          !e.checkout_id.empty() && it != batch_checkouts.end())
        in_batch = it->second.checkout;
      auto rules_of_sale = RulesOfSale(tid, e.checkout_id, in_batch);
      if (!rules_of_sale.ok()) return rules_of_sale.status();
      const int64_t limit = (*rules_of_sale)->max_points_per_hour;
      auto earned =
          store.TerminalEarnedBetween(tid, e.member_id, e.at_ms - 3600 * 1000, e.at_ms, e.seq);
      if (!earned.ok()) return earned.status();
      if (*earned <= limit) return std::string("freeze_unexplained");
    }
  }
  auto fits = BalanceCanTake(e.member_id, e.points);
  if (!fits.ok()) return fits.status();
  if (!*fits) return std::string("value_out_of_range");
  return std::string();
}

}  // namespace loyalty::hq
