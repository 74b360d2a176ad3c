// The terminal routes other than the upload: hello, changes (member snapshots, identities,
// coupons, revocations and the rules, page by page), members, fetch, and the two recon sets.
#include "service_internal.h"

#include <algorithm>
#include <limits>
#include <map>
#include <set>
#include <string>

#include "loyalty/recon/protocol.h"

namespace loyalty::hq {

using namespace internal;

int64_t HqService::Impl::PhoneKeyId(int64_t now_s) const {
  const int64_t period = int64_t{std::max(opt.phone_key_days, 1)} * 86'400;
  return std::max<int64_t>(now_s, 0) / period + 1;
}

// The lots and this month's spend of every member of a page, in a few statements: kept
// spends read at once; the others summed at once too and kept at the commit
// (Store::PrefetchSpends), then answered from what that read — a first sync's pages are
// mostly members with no spend kept yet (three statements each before). Outside a write
// transaction nothing is kept and they are summed one by one as MonthSpend does.
Result<HqService::Impl::SnapshotPage> HqService::Impl::ReadSnapshotPage(
    const std::vector<uint64_t>& member_ids) {
  SnapshotPage page;
  auto lots = store.LotsOfMembers(member_ids);
  if (!lots.ok()) return lots.status();
  page.lots = std::move(*lots);
  auto hq_entries = store.HqEntriesOfMembers(member_ids, sync::kMaxSnapshotHqEntries);
  if (!hq_entries.ok()) return hq_entries.status();
  page.hq_entries = std::move(*hq_entries);
  auto [from, to] = MonthBounds(clock.now_s());
  auto kept = store.KeptMemberSpends(member_ids, from, to);
  if (!kept.ok()) return kept.status();
  page.month_spend = std::move(*kept);
  std::vector<uint64_t> unkept;
  for (uint64_t id : member_ids)
    if (!page.month_spend.count(id)) unkept.push_back(id);
  if (Status s = store.PrefetchSpends(unkept, from, to); !s.ok()) return s;
  for (uint64_t id : unkept) {
    auto spend = store.MemberSpend(id, from, to);
    if (!spend.ok()) return spend.status();
    page.month_spend[id] = *spend;
  }
  return page;
}

Result<sync::Snapshot> HqService::Impl::Snapshot(const MemberRecord& m, int64_t terminal_seq,
                                                 const std::string& store_id, int64_t at_ms,
                                                 const SnapshotPage* page) {
  const int64_t now_s = FloorDiv(at_ms, 1000);
  sync::Snapshot s;
  s.member_id = m.member_id;
  s.display_name = m.display_name;
  s.phone = m.phone_masked;
  // HQ's chain-keyed hash stays at HQ; a terminal gets its store's look-up hash, and only
  // for a member who consented to phone look-up.
  if (m.phone_lookup_consent && !m.phone_enc.empty() && !store_id.empty()) {
    auto phone = pii.Decrypt(m.phone_enc, std::to_string(m.member_id) + "/phone");
    if (!phone.ok()) return phone.status();
    s.phone_key_id = PhoneKeyId(now_s);
    s.phone_hash = StorePhoneHash(pii.StorePhoneKey(store_id, s.phone_key_id), *phone);
  }
  s.tier = m.tier;
  s.status = m.status;
  s.frozen_reason = m.frozen_reason;
  s.birthday_month = m.birthday_month;
  s.balance = m.balance;
  if (page) {
    if (auto it = page->lots.find(m.member_id); it != page->lots.end())
      for (const auto& l : it->second) s.lots.push_back({l.remaining, l.expires_at_s});
    auto spend = page->month_spend.find(m.member_id);
    if (spend == page->month_spend.end())
      return Status::Error(ErrorCode::kInternal, "a snapshot page without the member's spend");
    s.month_spend_cents = std::clamp<int64_t>(spend->second, 0, sync::kMaxSpendCents);
    if (auto it = page->hq_entries.find(m.member_id); it != page->hq_entries.end())
      s.hq_entries = it->second;
  } else {
    auto lots = store.Lots(m.member_id);
    if (!lots.ok()) return lots.status();
    for (const auto& l : *lots) s.lots.push_back({l.remaining, l.expires_at_s});
    auto spend = MonthSpend(m.member_id, now_s);
    if (!spend.ok()) return spend.status();
    s.month_spend_cents = std::clamp<int64_t>(*spend, 0, sync::kMaxSpendCents);
    auto hq_entries = store.HqEntriesOfMembers({m.member_id}, sync::kMaxSnapshotHqEntries);
    if (!hq_entries.ok()) return hq_entries.status();
    if (auto it = hq_entries->find(m.member_id); it != hq_entries->end())
      s.hq_entries = std::move(it->second);
  }
  s.unfrozen_at_ms = m.unfrozen_at_ms;
  s.snapshot_at_s = now_s;
  s.terminal_seq = terminal_seq;
  return s;
}

Result<TerminalRecord> HqService::Impl::TouchTerminal(const std::string& tid,
                                                      const std::string* store_id) {
  auto t = store.GetTerminal(tid);
  if (!t.ok()) return t.status();
  TerminalRecord r = *t ? **t : TerminalRecord{tid, "", clock.now_ms(), 0, 0, ""};
  if (store_id) r.store_id = *store_id;
  r.last_sync_ms = clock.now_ms();
  if (Status s = store.PutTerminal(r); !s.ok()) return s;
  return r;
}

http::Response HqService::Impl::Hello(const std::string& tid, const http::Request& req) {
  auto h = sync::ParseMessage<sync::HelloRequest>(req.body);
  if (!h.ok()) return FromStatus(h.status());
  sync::HelloResponse out;
  // It reads and writes the terminal's own row and counts its own entries: beside any other
  // terminal's upload (docs/hq.md, "Writers in parallel").
  const std::vector<std::string> keys{"t:" + tid};
  Status s = Transact(
      [&]() -> Status {
        auto before = store.GetTerminal(tid);
        if (!before.ok()) return before.status();
        auto n = store.CountEntries(tid);
        if (!n.ok()) return n.status();
        auto t = TouchTerminal(tid, &h->store_id);
        if (!t.ok()) return t.status();
        // The pages sent past the cursor the terminal holds never arrived: what it could
        // know is the last page it did receive (upload_checks.cc prices with it).
        if (h->cursor) {
          const auto held =
              h->cursor->empty() ? std::optional<uint64_t>(0) : sync::ParseMemberId(*h->cursor);
          if (held && *held <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
            if (Status s = store.ForgetDownloadsPast(tid, static_cast<int64_t>(*held)); !s.ok())
              return s;
        }
        out.hq_time_ms = clock.now_ms();
        out.terminal_known = before->has_value() || *n > 0;
        out.hq_entries = *n;
        out.hq_head = {t->head_seq, t->head_seq > 0 ? t->head_hash : ""};
        return Status::Ok();
      },
      &keys);
  if (!s.ok()) return FromStatus(s);
  return JsonResponse(200, sync::ToJson(out));
}

http::Response HqService::Impl::Changes(const std::string& tid, const http::Request& req) {
  auto q = sync::ParseChangesQuery(req.query);
  if (!q.ok()) return FromStatus(q.status());
  int64_t after = 0;
  if (!q->cursor.empty()) {
    auto c = sync::ParseMemberId(q->cursor);
    if (!c || *c > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Error(ErrorCode::kBadRequest, "cursor is not one HQ gave");
    }
    after = static_cast<int64_t>(*c);
  }
  sync::ChangesResponse out;
  // Beside uploads (docs/hq.md, "Writers in parallel"), unless the terminal's sets have
  // journals to fold: uploads, which may run beside each other, leave them unfolded, and a
  // fold runs alone.
  auto fold = store.SetsFoldDue(tid);
  if (!fold.ok()) return FromStatus(fold.status());
  const bool exclusive = *fold;
  const std::vector<std::string> keys{"t:" + tid};
  Status s = Transact(
      [&]() -> Status {
        out = sync::ChangesResponse{};
        auto term = TouchTerminal(tid, nullptr);
        if (!term.ok()) return term.status();
        if (exclusive)
          if (Status s = store.FoldSets(tid); !s.ok()) return s;
        // The sequence's committed end, read before the page: a write committing after it has
        // values past it (a change value is taken under a lock held to the commit), so a cursor
        // of this value never passes a member this page does not have.
        auto max = store.MaxChangeSeq();
        if (!max.ok()) return max.status();
        // Past the newest change HQ has: not a cursor HQ gave, or one given before HQ was
        // restored from an older backup. Refused, so that the terminal downloads again from
        // the beginning; answering nothing would leave it without the changes in between.
        if (after > *max)
          return Status::Error(
              ErrorCode::kBadRequest,
              "cursor is not one HQ gave (past HQ's newest change " + std::to_string(*max) + ")");
        // Nor one HQ has no record of giving this terminal: after a restore from a backup
        // older than the cursor, HQ's later changes reuse its values, and the changes in
        // between would never be sent.
        if (!q->cursor.empty()) {
          auto given = store.CursorGiven(tid, after);
          if (!given.ok()) return given.status();
          if (!*given)
            return Status::Error(ErrorCode::kBadRequest,
                                 "cursor is not one HQ gave this terminal (HQ restored from an "
                                 "older backup?)");
        }
        // The store's members only (hq-and-sync.md, "Download"); every one sent is held.
        const int64_t since = ScopeSinceMs();
        auto members = store.StoreMembersChangedAfter(term->store_id, since, after, q->limit + 1);
        if (!members.ok()) return members.status();
        out.more = static_cast<int64_t>(members->size()) > q->limit;
        if (out.more) members->resize(static_cast<size_t>(q->limit));
        if (!exclusive && store.WritesInParallel() && !members->empty()) {
          // Beside uploads: the page's members locked, at most kMaxSharedWriteKeys with the
          // terminal's (a longer page ends there: the terminal asks for the next), then read
          // again — an upload may have changed them since the read above.
          if (members->size() >= kMaxSharedWriteKeys) {
            members->resize(kMaxSharedWriteKeys - 1);
            out.more = true;
          }
          std::vector<std::string> member_keys;
          std::vector<uint64_t> ids;
          for (const auto& m : *members) {
            member_keys.push_back("m:" + std::to_string(m.member_id));
            ids.push_back(m.member_id);
          }
          if (Status s = store.LockKeys(member_keys); !s.ok()) return s;
          auto fresh = store.GetMembers(ids);
          if (!fresh.ok()) return fresh.status();
          std::map<uint64_t, MemberRecord> by_id;
          for (auto& m : *fresh) by_id.emplace(m.member_id, std::move(m));
          for (auto& m : *members) {
            auto it = by_id.find(m.member_id);
            if (it == by_id.end()) return Status::Error(ErrorCode::kInternal, "a member is gone");
            const int64_t at = m.change_seq;  // its place in this page; a later change comes again
            m = std::move(it->second);
            m.change_seq = at;
          }
        }
        std::vector<uint64_t> page_ids;
        for (const auto& m : *members) page_ids.push_back(m.member_id);
        auto page = ReadSnapshotPage(page_ids);
        if (!page.ok()) return page.status();
        // A page also ends where its answer would pass kPageBudget (estimated from each
        // member's lots and HQ entries, before anything is encoded), with at least one
        // member: members with many lots must not make a page the terminal's 8 MiB limit
        // refuses, which would stop its runs for good.
        {
          size_t estimate = 0;
          for (size_t i = 0; i < members->size(); ++i) {
            const uint64_t id = (*members)[i].member_id;
            size_t bytes = kSnapshotBaseBytes;
            if (auto it = page->lots.find(id); it != page->lots.end())
              bytes += kSnapshotLotBytes * it->second.size();
            if (auto it = page->hq_entries.find(id); it != page->hq_entries.end())
              bytes += kSnapshotHqEntryBytes * it->second.size();
            if (i > 0 && estimate + bytes > kPageBudget) {
              members->resize(i);
              out.more = true;
              break;
            }
            estimate += bytes;
          }
        }
        const int64_t up_to = out.more ? members->back().change_seq : *max;
        const int64_t at = clock.now_ms();
        if (Status s = store.AddTerminalDownload(tid, at, up_to); !s.ok()) return s;
        std::vector<std::pair<uint64_t, int64_t>> held;  // every member sent is held
        std::vector<uint64_t> sent;
        for (const auto& m : *members) {
          auto snap = Snapshot(m, term->head_seq, term->store_id, at, &*page);
          if (!snap.ok()) return snap.status();
          // Never a value the terminal's codec would refuse: reported and left out, never a
          // failed page.
          if (Status v = sync::ValidateSnapshot(*snap); !v.ok()) {
            Report("snapshot_not_sent", {{"terminal_id", tid},
                                         {"member_id", std::to_string(m.member_id)},
                                         {"reason", v.message()}});
            continue;
          }
          held.emplace_back(m.member_id, m.balance);
          sent.push_back(m.member_id);
          out.members.push_back(std::move(*snap));
        }
        if (Status h = store.HoldMembers(tid, held, Store::Holding::kSent); !h.ok()) return h;
        auto ids = store.IdentitiesOfMembers(sent);
        if (!ids.ok()) return ids.status();
        out.identities = std::move(*ids);
        auto coupons = store.StoreCouponsChanged(term->store_id, since, after, up_to);
        if (!coupons.ok()) return coupons.status();
        for (const auto& c : *coupons) out.coupons.push_back(c.coupon);
        auto rev = store.RevocationsChanged(after, up_to);
        if (!rev.ok()) return rev.status();
        out.revocations = std::move(*rev);
        out.cursor = std::to_string(up_to);
        out.hq_time_ms = clock.now_ms();
        out.rules = rules::RulesToJson(current);
        // The last page names the members this terminal holds that left its store's scope: it
        // drops them and says so (POST evicted), and its ledger stays bounded by its store.
        if (!out.more && !term->store_id.empty()) {
          auto gone = store.HeldOutOfScope(tid, term->store_id, since,
                                           static_cast<int64_t>(sync::kMaxEvictions));
          if (!gone.ok()) return gone.status();
          out.evict = std::move(*gone);
          const int64_t key_id = PhoneKeyId(clock.now_s());
          out.phone_key = sync::PhoneKey{key_id, pii.StorePhoneKey(term->store_id, key_id)};
        }
        return Status::Ok();
      },
      exclusive ? nullptr : &keys);
  if (!s.ok()) return FromStatus(s);
  return JsonResponse(200, sync::ToJson(out));
}

http::Response HqService::Impl::Evicted(const std::string& tid, const http::Request& req) {
  auto m = sync::ParseMessage<sync::EvictedRequest>(req.body);
  if (!m.ok()) return FromStatus(m.status());
  sync::EvictedResponse out;
  Status s = Write([&]() -> Status {
    out = sync::EvictedResponse{};
    auto term = store.GetTerminal(tid);
    if (!term.ok()) return term.status();
    if (!*term || (*term)->store_id.empty()) return Status::Ok();
    // Only members still out of the store's scope now: one that came back meanwhile stays.
    auto gone = store.HeldOutOfScope(tid, (*term)->store_id, ScopeSinceMs(),
                                     std::numeric_limits<int64_t>::max());
    if (!gone.ok()) return gone.status();
    std::set<uint64_t> out_of_scope(gone->begin(), gone->end());
    for (uint64_t id : m->member_ids) {
      if (!out_of_scope.count(id)) continue;
      if (Status f = store.ForgetHolding(tid, id); !f.ok()) return f;
      ++out.forgotten;
    }
    return Status::Ok();
  });
  if (!s.ok()) return FromStatus(s);
  Report("members_evicted",
         {{"terminal_id", tid}, {"dropped", m->member_ids.size()}, {"forgotten", out.forgotten}});
  return JsonResponse(200, sync::ToJson(out));
}

http::Response HqService::Impl::Recon(const std::string& tid, bool entries,
                                      const http::Request& req) {
  auto set = entries ? store.TerminalSet(tid) : store.BalanceSet(tid);
  if (!set.ok()) return FromStatus(set.status());
  recon::Responder responder(**set);
  auto reply = responder.Reply(req.body);
  if (!reply.ok()) return FromStatus(reply.status());
  http::Response r;
  r.content_type = "application/octet-stream";
  r.body = std::move(*reply);
  return r;
}

http::Response HqService::Impl::Fetch(const std::string& tid, const http::Request& req) {
  auto f = sync::ParseMessage<sync::FetchRequest>(req.body);
  if (!f.ok()) return FromStatus(f.status());
  sync::FetchResponse out;
  // The answer's size, estimated as it is gathered (an entry and its text; a checkout's or
  // refund's stored response, which holds its lines, and its lines again): a few
  // checkouts of 500 lines are megabytes, and an answer must stay under the protocol's
  // 8 MiB. Entries asked by id that would pass the budget are refused as a whole (413,
  // before anything is encoded): the terminal asks for them in halves. A page of checkouts
  // without entries ends early instead.
  constexpr size_t kAnswerBudget = size_t{6} << 20;
  size_t estimate = 0;
  auto add_checkout = [&estimate](const sync::Checkout& c) {
    estimate += 512 + c.request_json.size() + c.response_json.size() + 160 * c.lines.size();
  };
  auto add_refund = [&estimate](const sync::Refund& r) {
    estimate += 256 + r.response_json.size() + 64 * r.lines.size();
  };
  auto too_large = [&] {
    return Error(ErrorCode::kBodyTooLarge,
                 "the answer for these " + std::to_string(f->entry_ids.size()) +
                     " entries would pass 8 MiB: ask for fewer at a time");
  };
  auto entries = store.TerminalEntriesByIds(tid, f->entry_ids);
  if (!entries.ok()) return FromStatus(entries.status());
  out.entries = std::move(*entries);
  for (const auto& e : out.entries) estimate += 320 + e.detail.size();
  std::set<std::string> checkout_ids;
  for (const auto& e : out.entries) {
    if (!e.checkout_id.empty()) checkout_ids.insert(e.checkout_id);
  }
  // Each checkout the entries name, when it is this terminal's, and this terminal's refunds
  // of it — also when the sale was another terminal's (a return made here of a sale made
  // there: the entry is this terminal's clawback, the checkout not): a restored terminal
  // must know its refund ids are taken, or a retried refund would be paid out again.
  // A record HQ stored refused as value_out_of_range (a line's qty or price past the limits
  // table, which only an upload reads) is left out: HQ never sends a terminal a value its
  // codec would refuse (hq-and-sync.md), and no honest terminal made such a record.
  auto sendable_checkout = [](const sync::Checkout& c) {
    sync::Checkout as_read;
    return sync::FromJson(sync::ToJson(c), &as_read).ok();
  };
  auto sendable_refunds = [](std::vector<sync::Refund> all) {
    std::vector<sync::Refund> out;
    for (auto& r : all) {
      sync::Refund as_read;
      if (sync::FromJson(sync::ToJson(r), &as_read).ok()) out.push_back(std::move(r));
    }
    return out;
  };
  for (const auto& id : checkout_ids) {
    auto c = store.GetCheckout(tid, id);
    if (!c.ok()) return FromStatus(c.status());
    if (*c && sendable_checkout(**c)) {
      add_checkout(**c);
      out.checkouts.push_back(**c);
    }
    auto read = store.RefundsOf(tid, id);
    if (!read.ok()) return FromStatus(read.status());
    auto refunds = sendable_refunds(std::move(*read));
    for (const auto& r : refunds) add_refund(r);
    out.refunds.insert(out.refunds.end(), refunds.begin(), refunds.end());
    if (estimate > kAnswerBudget && f->entry_ids.size() > 1) return too_large();
  }
  // A terminal restored from an empty disk: its checkouts made without a member have no
  // entries to be fetched by, so they come by id order, a page at a time, with their
  // refunds (at most kMaxFetchIds more refunds: a page ends early rather than past it).
  if (f->without_entries_after) {
    auto page = store.CheckoutsWithoutMember(tid, *f->without_entries_after,
                                             sync::kMaxFetchCheckoutsWithoutEntries);
    if (!page.ok()) return FromStatus(page.status());
    size_t refunds_added = 0, added = 0;
    bool cut = false;
    for (auto& c : *page) {
      auto read = store.RefundsOf(tid, c.checkout_id);
      if (!read.ok()) return FromStatus(read.status());
      auto refunds = sendable_refunds(std::move(*read));
      const bool sendable = sendable_checkout(c);
      size_t more = 512 + c.request_json.size() + c.response_json.size() + 160 * c.lines.size();
      for (const auto& r : refunds) more += 256 + r.response_json.size() + 64 * r.lines.size();
      if (added > 0 && (refunds_added + refunds.size() > sync::kMaxFetchIds ||
                        estimate + more > kAnswerBudget)) {
        cut = true;  // the next page starts with this checkout
        break;
      }
      estimate += more;
      ++added;
      refunds_added += refunds.size();
      out.next_without_entries = c.checkout_id;  // past it, sent or left out
      out.refunds.insert(out.refunds.end(), refunds.begin(), refunds.end());
      if (sendable) out.checkouts.push_back(std::move(c));
    }
    if (!cut && page->size() < sync::kMaxFetchCheckoutsWithoutEntries)
      out.next_without_entries.reset();  // the last page
  }
  return JsonResponse(200, sync::ToJson(out));
}

// A repair (member ids the reconciliation found different) or a look-up (a member a
// terminal identified online: by id from a dynamic code, or by a card it scanned). Either
// way the terminal holds the members it is sent, and a look-up brings the member into the
// store's scope: the store the look-up names (the terminal's own, which its hello names
// too), else the one of its last hello. A terminal that has never said hello names its
// store this way, so its first run does not evict what it looked up before.
http::Response HqService::Impl::Members(const std::string& tid, const http::Request& req) {
  auto m = sync::ParseMessage<sync::MembersRequest>(req.body);
  if (!m.ok()) return FromStatus(m.status());
  // A look-up by phone: limited per terminal, answered for consenting members only
  // (docs/pos-api.md, "Phone look-up"); the number is never logged.
  if (m->phone && !AllowPhoneLookup(tid, clock.now_ms())) {
    Report("phone_lookup_limited", {{"terminal_id", tid}, {"per_hour", kPhoneLookupsPerHour}});
    return Error(ErrorCode::kRateLimited, "more than " + std::to_string(kPhoneLookupsPerHour) +
                                              " phone look-ups in the last hour by this terminal");
  }
  const bool lookup = m->identities.has_value() || m->phone.has_value();
  sync::MembersResponse out;
  uint64_t phone_found = 0;
  Status s = Transact([&]() -> Status {
    out = sync::MembersResponse{};
    phone_found = 0;
    if (lookup) out.identities.emplace();
    auto term = store.GetTerminal(tid);
    if (!term.ok()) return term.status();
    const int64_t head = *term ? (*term)->head_seq : 0;
    // Trusted as far as a hello's store_id is, no further: a terminal can name any store
    // there too (PROTOCOL.md, §6).
    const std::string store_id =
        lookup && m->store_id ? *m->store_id : (*term ? (*term)->store_id : "");
    std::vector<uint64_t> ids = m->member_ids;
    if (lookup) {
      for (const auto& k : *m->identities) {
        auto holder = store.FindIdentity(k.channel, k.external_id);
        if (!holder.ok()) return holder.status();
        if (*holder && std::find(ids.begin(), ids.end(), **holder) == ids.end())
          ids.push_back(**holder);
      }
    }
    if (m->phone) {
      // Two members with one number (a family's shared phone): neither is named.
      auto found = store.ConsentingMembersByPhoneHash(pii.PhoneHash(*m->phone), 2);
      if (!found.ok()) return found.status();
      if (found->size() == 1 && std::find(ids.begin(), ids.end(), found->front()) == ids.end())
        ids.push_back(found->front());
      phone_found = found->size() == 1 ? found->front() : 0;
    }
    // What the terminal could know from now on: these members as sent (a download of the
    // members it carries, not of all it holds).
    const int64_t at = clock.now_ms();
    std::vector<uint64_t> sent;
    for (uint64_t id : ids) {
      if (lookup && !store_id.empty()) {
        if (Status s = ScopeMember(store_id, id, "asked", clock.now_ms()); !s.ok()) return s;
      }
      auto rec = store.GetMember(id);
      if (!rec.ok()) return rec.status();
      if (!*rec) continue;
      auto snap = Snapshot(**rec, head, store_id, at);
      if (!snap.ok()) return snap.status();
      if (Status v = sync::ValidateSnapshot(*snap); !v.ok()) {
        Report("snapshot_not_sent",
               {{"terminal_id", tid}, {"member_id", std::to_string(id)}, {"reason", v.message()}});
        continue;
      }
      if (Status h = store.SendMember(tid, id, (*rec)->balance); !h.ok()) return h;
      sent.push_back(id);
      out.members.push_back(std::move(*snap));
      if (lookup) {
        auto held = store.IdentitiesOf(id);
        if (!held.ok()) return held.status();
        out.identities->insert(out.identities->end(), held->begin(), held->end());
      }
    }
    return store.AddMemberDownloads(tid, sent, at);
  });
  if (!s.ok()) return FromStatus(s);
  if (m->phone)
    Report("phone_lookup", {{"terminal_id", tid},
                            {"found", phone_found != 0},
                            {"member_id", phone_found ? std::to_string(phone_found) : ""}});
  return JsonResponse(200, sync::ToJson(out));
}

Status HqService::Impl::ScopeMember(const std::string& store_id, uint64_t member_id,
                                    const char* reason, int64_t at_ms) {
  if (store_id.empty() || member_id == 0) return Status::Ok();
  if (tx) {
    auto slot = Slot(member_id);
    if (!slot.ok()) return slot.status();
    if (!(*slot)->m) return Status::Ok();  // nothing to hold yet
  } else {
    auto known = store.GetMember(member_id);
    if (!known.ok()) return known.status();
    if (!*known) return Status::Ok();
  }
  auto fresh = store.AddStoreMember(store_id, member_id, reason, at_ms, ScopeSinceMs());
  if (!fresh.ok()) return fresh.status();
  if (!*fresh) return Status::Ok();
  // Inside a write with a member cache (an upload), the cache gives the new change_seq
  // when it writes the member; elsewhere the store does it now.
  return tx ? Touch(member_id) : store.TouchMember(member_id);
}

Status HqService::Impl::ScopeMembers(const std::string& store_id,
                                     const std::vector<std::pair<uint64_t, int64_t>>& members,
                                     const char* reason) {
  if (store_id.empty()) return Status::Ok();
  if (!tx) return NoWrite();
  std::vector<std::pair<uint64_t, int64_t>> known;  // members HQ has: nothing to hold else
  for (const auto& [id, at] : members) {
    if (id == 0) continue;
    auto slot = Slot(id);
    if (!slot.ok()) return slot.status();
    if ((*slot)->m) known.emplace_back(id, at);
  }
  if (known.empty()) return Status::Ok();
  auto fresh = store.AddStoreMembers(store_id, known, reason, ScopeSinceMs());
  if (!fresh.ok()) return fresh.status();
  for (uint64_t id : *fresh)  // new to the scope: every lane of the store downloads it
    if (Status s = Touch(id); !s.ok()) return s;
  return Status::Ok();
}

}  // namespace loyalty::hq
