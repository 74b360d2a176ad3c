// The daily job: points of expired lots taken back with an expire entry per member, at the
// first run in a new local month every tier set from that month's spend, and downloads older
// than any sale is judged by forgotten; and the admin route that runs it
// (POST /v1/admin/expire).
#include "service_internal.h"

#include <set>
#include <string>
#include <vector>

namespace loyalty::hq {

using namespace internal;

namespace {
// Each terminal's downloads are kept from its last changes page 90 days ago on: a sale
// uploaded within 90 days of its commit is judged with the download it was made after.
constexpr int64_t kDownloadsKeptMs = int64_t{90} * 86'400'000;
}  // namespace

Result<ExpiryReport> HqService::Impl::DailyJobs(int64_t now_s) {
  ExpiryReport report;
  // Members are written as they are done (Forget): the job may see every member.
  Status s = Write([&]() -> Status {
    auto members = store.MembersWithExpiredLots(now_s);
    if (!members.ok()) return members.status();
    for (uint64_t id : *members) {
      auto slot = Slot(id);
      if (!slot.ok()) return slot.status();
      auto held = LotsOf(**slot, id);
      if (!held.ok()) return held.status();
      int64_t sum = 0, n = 0;
      std::set<int64_t> expired;
      for (const auto& l : **held) {
        if (l.remaining > 0 && l.expires_at_s < now_s) {
          sum += l.remaining;
          ++n;
          expired.insert(l.lot_id);
        }
      }
      // All at once: one lot at a time searched and erased the member's held lots for each,
      // quadratic in a member's lots (minutes at 100,000).
      if (Status s = EmptyLots(**slot, expired); !s.ok()) return s;
      if (sum != 0) {
        auto e = AppendHqEntry("expire", id, -sum, {{"lots", n}, {"as_of_s", now_s}});
        if (!e.ok()) return e.status();
        if (Status s = ApplyEntry(*e); !s.ok()) return s;
        ++report.members;
        report.points += sum;
      }
      if (Status s = Forget(); !s.ok()) return s;
    }
    // At the first run in a new local month, every tier follows that month's spend
    // (the contract's recomputation "at the start of each month").
    CivilTime l = opt.timezone.ToLocal(now_s);
    std::string month = std::to_string(l.year) + "-" + std::to_string(l.month);
    auto last = store.GetMeta("tier_month");
    if (!last.ok()) return last.status();
    if (*last && **last != month) {
      // By member id: a page's updates (new change_seq values) move no member in the walk.
      constexpr int64_t kPage = 500;
      for (uint64_t after = 0;;) {
        auto page = store.MembersAfter(after, kPage);
        if (!page.ok()) return page.status();
        if (page->empty()) break;
        after = page->back().member_id;
        for (const auto& row : *page) {
          MemberSlot& slot = tx->members[row.member_id];
          if (!slot.m) slot.m = slot.stored = row;  // just read: the page's row is the member
          auto spend = MonthSpend(row.member_id, now_s);
          if (!spend.ok()) return spend.status();
          std::string t = TierForSpend(*spend);
          MemberRecord& m = *slot.m;
          if (t != m.tier) {
            const std::string old_tier = m.tier;
            m.tier = t;
            if (Status s = SaveMember(m, old_tier, m.status); !s.ok()) return s;
          }
        }
        if (Status s = Forget(); !s.ok()) return s;
        if (static_cast<int64_t>(page->size()) < kPage) break;
      }
    }
    // The spend sums the store keeps for windows before this month are not asked again.
    if (Status s = store.PruneSpendTotals(MonthBounds(now_s).first); !s.ok()) return s;
    return store.PutMeta("tier_month", month);
  });
  if (!s.ok()) return s;
  // Downloads HQ judges no sale by any more (docs/hq.md, "Downloads kept"), outside the
  // writer: old rows only, which no upload reads.
  s = Transact([&]() -> Status {
    auto removed = store.PruneDownloads(now_s * 1000 - kDownloadsKeptMs);
    return removed.ok() ? Status::Ok() : removed.status();
  });
  if (!s.ok()) return s;
  return report;
}

http::Response HqService::Impl::Expire(const http::Request& req) {
  int64_t now_s = clock.now_s();
  if (auto it = req.query.find("now"); it != req.query.end()) {
    auto v = sync::ParseMemberId(it->second);
    if (!v || *v > (uint64_t{1} << 40))
      return Error(ErrorCode::kBadRequest, "now must be unix seconds");
    now_s = static_cast<int64_t>(*v);
  }
  auto r = DailyJobs(now_s);
  if (!r.ok()) return FromStatus(r.status());
  return JsonResponse(200, {{"members", r->members}, {"points", r->points}});
}

}  // namespace loyalty::hq
