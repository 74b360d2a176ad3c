#include "chain.h"

#include <algorithm>
#include <functional>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "loyalty/base/encoding.h"
#include "loyalty/base/hash.h"
#include "loyalty/base/ids.h"
#include "loyalty/checkout/outcomes.h"
#include "loyalty/checkout/requests.h"
#include "loyalty/checkout/views.h"
#include "loyalty/model/entry.h"
#include "loyalty/rules/rules.h"

namespace loyalty::hqload {

using nlohmann::json;

// ------------------------------------------------------------------------------ BalanceView

BalanceView::BalanceView(size_t members) : balance_(members, 0) {
  by_key_.reserve(members);
  for (size_t i = 0; i < members; ++i) {
    by_key_.emplace(recon::MemberKey(std::to_string(member_id(i))), member_id(i));
  }
}

void BalanceView::Apply(uint64_t member_id, int64_t points) {
  std::lock_guard<std::mutex> lock(mu_);
  balance_[member_id - kFirstMemberId] += points;
}

int64_t BalanceView::Balance(uint64_t member_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  return balance_[member_id - kFirstMemberId];
}

int64_t BalanceView::Total() const {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t sum = 0;
  for (int64_t b : balance_) sum += b;
  return sum;
}

Result<bool> Terminal::TakePage(const sync::ChangesResponse& page) {
  for (const auto& m : page.members) Sent(m.member_id, m.balance);
  const bool moved = page.cursor != cursor;
  cursor = page.cursor;
  if (page.more && !moved)
    return Status::Error(ErrorCode::kBadResponse,
                         "changes: more pages announced but the cursor did not move");
  return page.more;
}

std::unique_ptr<recon::FingerprintStore> Terminal::BalanceSet() const {
  auto set = std::make_unique<recon::MemoryStore>();
  for (const auto& [id, balance] : held)
    (void)set->Upsert(recon::MemberBalanceItem(std::to_string(id), balance, 0));
  return set;
}

std::optional<uint64_t> BalanceView::MemberOfKey(const std::string& key) const {
  auto it = by_key_.find(key);  // by_key_ never changes after construction
  if (it == by_key_.end()) return std::nullopt;
  return it->second;
}

// ------------------------------------------------------------------------------------ Chain

Chain::Chain(ChainOptions options, int64_t first_hour_start_ms)
    : opt_(options), first_hour_start_ms_(first_hour_start_ms), view_(options.members) {
  terminals_.resize(static_cast<size_t>(opt_.terminals));
  for (int i = 0; i < opt_.terminals; ++i) {
    Terminal& t = terminals_[static_cast<size_t>(i)];
    t.index = i;
    char id[32], store[32];
    std::snprintf(id, sizeof id, "T%05d", i + 1);
    std::snprintf(store, sizeof store, "S%04d", i / std::max(1, opt_.tills_per_store) + 1);
    t.id = id;
    t.store_id = store;
    t.head_hash = model::ZeroHash();
  }
}

void Chain::GenerateHour(Terminal& t) const {
  const rules::Rules rules = rules::Rules::Defaults();
  const int n = opt_.entries_per_run;
  const int64_t hour_ms = 3'600'000;
  const int64_t start_ms = first_hour_start_ms_ + hour_ms * t.hours;
  // Distinct members for the hour, from the whole chain (Floyd's sampling).
  std::mt19937_64 rng(opt_.seed * 1'000'003 + static_cast<uint64_t>(t.index) * 7'919 +
                      static_cast<uint64_t>(t.hours));
  std::vector<size_t> picked;
  {
    std::unordered_set<size_t> seen;
    const size_t m = view_.members();
    // Floyd's sampling of k distinct values in [from, from + size).
    auto sample = [&](size_t from, size_t size, size_t k) {
      k = std::min(k, size);
      for (size_t j = size - k; j < size; ++j) {
        size_t r = from + std::uniform_int_distribution<size_t>(0, j)(rng);
        size_t v = seen.count(r) ? from + j : r;
        seen.insert(v);
        picked.push_back(v);
      }
    };
    size_t local = static_cast<size_t>(opt_.local_share * n + 0.5);
    if (local == 0) {
      sample(0, m, static_cast<size_t>(n));  // as before this option: the same hours
    } else {
      const int per = std::max(1, opt_.tills_per_store);
      const size_t stores = static_cast<size_t>((opt_.terminals + per - 1) / per);
      const size_t k = static_cast<size_t>(t.index / per);
      const size_t from = k * m / stores, to = (k + 1) * m / stores;
      sample(from, to - from, local);
    }
    // The rest chain-wide, distinct from those.
    while (picked.size() < static_cast<size_t>(n)) {
      size_t r = std::uniform_int_distribution<size_t>(0, m - 1)(rng);
      if (seen.insert(r).second) picked.push_back(r);
    }
    std::shuffle(picked.begin(), picked.end(), rng);
  }

  PendingBatch batch;
  for (int i = 0; i < n; ++i) {
    const uint64_t member = view_.member_id(picked[static_cast<size_t>(i)]);
    const int64_t at_ms = start_ms + hour_ms * i / n + static_cast<int64_t>(rng() % 1000);
    const std::string checkout_id =
        "c-" + t.id + "-" + std::to_string(t.hours) + "-" + std::to_string(i);
    // What the POS sent: one 100-cent line, a static card (the member's).
    json request{{"checkout_id", checkout_id},
                 {"lines", json::array({{{"sku", "sku-" + std::to_string(i % 97)},
                                         {"qty", 1},
                                         {"unit_price_cents", opt_.basket_cents},
                                         {"category", "grocery"}}})},
                 {"member_code", "88" + std::to_string(member)},
                 {"tender", "cash"}};
    rules::QuoteInput in;
    in.lines.push_back({"sku-" + std::to_string(i % 97), 1, opt_.basket_cents, "grocery"});
    rules::MemberContext ctx;
    ctx.tier = "member";
    ctx.static_identification = true;
    ctx.available_balance = 0;
    in.member = ctx;
    auto q = rules::ComputeQuote(rules, in);
    if (!q.ok()) std::abort();  // the default rules price a plain basket

    model::Entry e;
    e.entry_id = NewEntryId(at_ms);
    e.terminal_id = t.id;
    e.seq = ++t.seq;
    e.kind = "earn";
    e.member_id = member;
    e.points = q->points_to_earn;
    e.at_ms = at_ms;
    e.checkout_id = checkout_id;
    e.prev_hash = t.head_hash;
    e.hash = model::EntryHash(e);
    t.head_hash = e.hash;
    ++t.entries;
    recon::Item item;
    item.id = *HexDecode(e.entry_id);
    std::copy(e.hash.begin(), e.hash.end(), item.hash.begin());
    (void)t.entry_set.Add(item);

    // The stored response: the POS API's commit body for this quote.
    checkout::QuoteOutcome priced;
    priced.checkout_id = checkout_id;
    priced.rules_version = rules.version;
    checkout::MemberView mv;
    mv.member.member_id = member;
    mv.member.display_name = "会*";
    mv.member.phone = "138****" + std::to_string(1000 + member % 9000);
    mv.member.snapshot_at_s = start_ms / 1000;
    mv.member.balance = q->points_to_earn;
    mv.available_balance = q->points_to_earn;
    mv.lots.push_back({at_ms / 1000 + 365 * 86400, q->points_to_earn});
    priced.member = std::move(mv);
    priced.quote = *q;
    checkout::CommitDetails details;
    details.balance_after = q->points_to_earn;
    details.committed_at_s = at_ms / 1000;
    details.entries = {e.entry_id};
    details.receipt_lines = {"本次积分 Points earned: " + std::to_string(q->points_to_earn),
                             "积分余额 Balance: " + std::to_string(q->points_to_earn)};

    model::Checkout c;
    c.checkout_id = checkout_id;
    c.request_hash = checkout::CanonicalHash(request);
    c.member_id = member;
    c.rules_version = rules.version;
    c.committed_at_ms = at_ms;
    c.subtotal_cents = q->subtotal_cents;
    c.total_due_cents = q->total_due_cents;
    c.points_earned = q->points_to_earn;
    c.redeemed_points = q->redeem_points;
    c.eligible_cents = q->eligible_cents;
    c.redeemable_cents = q->redeemable_cents;
    c.tender = "cash";
    c.response_json = checkout::CommitViewJson(priced, details);
    for (size_t l = 0; l < q->lines.size(); ++l) {
      const auto& ql = q->lines[l];
      const auto& il = in.lines[l];
      c.lines.push_back({static_cast<int64_t>(l), il.sku, il.category, il.qty, il.unit_price_cents,
                         ql.tier_discount_cents, ql.coupon_cents, ql.redeem_cents, ql.net_cents,
                         ql.net_before_redeem_cents, ql.points_eligible, ql.redeemable});
    }
    batch.request.entries.push_back(std::move(e));
    batch.request.checkouts.push_back(std::move(c));
  }
  batch.body = sync::SerializeMessage(batch.request);
  t.pending.push_back(std::move(batch));
  ++t.hours;
}

bool Chain::Acknowledge(Terminal& t, const sync::UploadResponse& response) {
  if (t.pending.empty()) return false;
  const PendingBatch& b = t.pending.front();
  if (response.results.size() != b.request.entries.size()) return false;
  for (size_t i = 0; i < b.request.entries.size(); ++i)
    if (response.results[i].entry_id != b.request.entries[i].entry_id) return false;
  // HQ holds every member of an upload it answered for this terminal from now on: one
  // held already at the balance it was sent plus these entries, a new one at HQ's balance
  // after them.
  std::set<uint64_t> joined;
  for (const auto& c : b.request.checkouts)
    if (c.member_id && *c.member_id != 0 && !t.held.count(*c.member_id))
      joined.insert(*c.member_id);
  for (size_t i = 0; i < b.request.entries.size(); ++i) {
    const auto& e = b.request.entries[i];
    const auto& r = response.results[i];
    if (e.member_id != 0 && !t.held.count(e.member_id)) joined.insert(e.member_id);
    // `exists`: an earlier attempt was stored and applied, its answer lost (the entry was
    // still pending, so it was never counted here).
    if (r.status == "created" || r.status == "exists") {
      view_.Apply(e.member_id, e.points);
      if (e.member_id != 0 && !joined.count(e.member_id)) t.held[e.member_id] += e.points;
      ++t.acked;
    } else {
      ++t.unexpected;
    }
  }
  for (uint64_t id : joined) t.held[id] = view_.Balance(id);
  t.pending.erase(t.pending.begin());
  return true;
}

}  // namespace loyalty::hqload
