// Members, identities, lots, coupons, revocations and code bindings.
#include "internal.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <map>
#include <set>

#include "loyalty/base/encoding.h"
#include "loyalty/base/json.h"
#include "loyalty/base/json_writer.h"
#include "loyalty/recon/recon.h"
#include "loyalty/recon/sqlite_store.h"

namespace loyalty::ledger {
using namespace internal;

Result<std::optional<MemberRow>> Ledger::GetMember(uint64_t member_id) {
  // snapshot_at_s: the member's own snapshot, or the last ok run's confirmation if later;
  // NULL (never sent) stays NULL.
  LEDGER_PREPARE(
      st,
      "SELECT member_id, display_name, phone, phone_hash, tier, status, frozen_reason, "
      "birthday_month, "
      "max(snapshot_at_s, coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = '"
      "members_confirmed_at_s'), snapshot_at_s)), "
      "snapshot_balance, month_spend_cents, unfrozen_at_ms, balance, phone_key_id "
      "FROM members WHERE member_id = ?");
  st.Bind(1, member_id);
  if (st.Step()) return std::optional<MemberRow>(ReadMember(st));
  LEDGER_CHECK_STEP(st);
  return std::optional<MemberRow>();
}

static_assert(std::string_view(kMembersConfirmedKey) == "members_confirmed_at_s",
              "GetMember's SQL names the key");

// The last ok run's confirmation time (meta members_confirmed_at_s); nullopt before the
// first. A value that is not a number is the file's damage, never a guess.
static Result<std::optional<int64_t>> ConfirmedAtS(Ledger& l) {
  auto was = l.GetMeta(kMembersConfirmedKey);
  if (!was.ok()) return was.status();
  if (!*was) return std::optional<int64_t>();
  int64_t at = 0;
  const std::string& t = **was;
  auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), at);
  if (ec != std::errc() || end != t.data() + t.size() || t.empty())
    return Status::Error(ErrorCode::kLedgerDamaged, "meta members_confirmed_at_s is not a number");
  return std::optional<int64_t>(at);
}

Status Ledger::ConfirmMembers(int64_t hq_time_s) {
  auto before = ConfirmedAtS(*this);
  if (!before.ok()) return before.status();
  if (*before && **before >= hq_time_s) return Status::Ok();
  return PutMeta(kMembersConfirmedKey, std::to_string(hq_time_s));
}

Status Ledger::ForgetSpendsBefore(int64_t month_start_s) {
  // Done once a month: after the month's first confirmation every member's snapshot time is
  // within the month (a new snapshot, or the confirmation that a commit writes back), so a
  // later run finds nothing to forget and need not read every member again.
  auto before = ConfirmedAtS(*this);
  if (!before.ok()) return before.status();
  if (*before && **before >= month_start_s) return Status::Ok();
  LEDGER_PREPARE(st,
                 "UPDATE members SET month_spend_cents = 0 WHERE month_spend_cents <> 0 AND "
                 "snapshot_at_s < ?");
  st.Bind(1, month_start_s);
  return st.Run();
}

Status Ledger::UpsertMember(const MemberRow& m, bool refresh_balance_index) {
  LEDGER_PREPARE(
      st,
      "INSERT INTO members (member_id, display_name, phone, phone_hash, tier, status, "
      "frozen_reason, "
      "birthday_month, snapshot_at_s, snapshot_balance, month_spend_cents, unfrozen_at_ms, "
      "balance, phone_key_id) "
      "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(member_id) DO UPDATE SET "
      "display_name=excluded.display_name, phone=excluded.phone, phone_hash=excluded.phone_hash, "
      "tier=excluded.tier, status=excluded.status, frozen_reason=excluded.frozen_reason, "
      "birthday_month=excluded.birthday_month, snapshot_at_s=excluded.snapshot_at_s, "
      "snapshot_balance=excluded.snapshot_balance, month_spend_cents=excluded.month_spend_cents, "
      "unfrozen_at_ms=excluded.unfrozen_at_ms, balance=excluded.balance, "
      "phone_key_id=excluded.phone_key_id");
  st.Bind(1, m.member_id)
      .Bind(2, m.display_name)
      .Bind(3, m.phone)
      .Bind(4, m.phone_hash)
      .Bind(5, m.tier);
  st.Bind(6, m.status).Bind(7, m.frozen_reason).Bind(8, m.birthday_month).Bind(9, m.snapshot_at_s);
  st.Bind(10, m.snapshot_balance)
      .Bind(11, m.month_spend_cents)
      .Bind(12, m.unfrozen_at_ms)
      .Bind(13, m.balance)
      .Bind(14, m.phone_key_id);
  if (Status s = st.Run(); !s.ok()) return s;
  // Every balance change goes through here, so this is the one place the index follows it.
  return refresh_balance_index ? RefreshBalanceItem(m.member_id, m.balance) : Status::Ok();
}

Result<std::optional<uint64_t>> Ledger::LookupIdentity(const std::string& channel,
                                                       const std::string& external_id) {
  LEDGER_PREPARE(st, "SELECT member_id FROM identities WHERE channel = ? AND external_id = ?");
  st.Bind(1, channel).Bind(2, external_id);
  if (st.Step()) return std::optional<uint64_t>(static_cast<uint64_t>(st.Int(0)));
  LEDGER_CHECK_STEP(st);
  return std::optional<uint64_t>();
}

Status Ledger::PutIdentity(const std::string& channel, const std::string& external_id,
                           uint64_t member_id) {
  LEDGER_PREPARE(
      st, "INSERT OR REPLACE INTO identities (channel, external_id, member_id) VALUES (?,?,?)");
  st.Bind(1, channel).Bind(2, external_id).Bind(3, member_id);
  return st.Run();
}

Result<std::vector<model::Lot>> Ledger::Lots(uint64_t member_id) {
  std::vector<model::Lot> out;
  // The member's key range, sorted here: a handful of rows, cheaper than SQLite's sorter.
  LEDGER_PREPARE(st,
                 "SELECT " LOYALTY_LOT_COLUMNS " FROM lots WHERE member_id = ? AND remaining <> 0");
  st.Bind(1, member_id);
  while (st.Step()) out.push_back(model::ReadLotColumns(st));
  LEDGER_CHECK_STEP(st);
  std::sort(out.begin(), out.end(), [](const model::Lot& a, const model::Lot& b) {
    return a.expires_at_s != b.expires_at_s ? a.expires_at_s < b.expires_at_s : a.lot_id < b.lot_id;
  });
  return out;
}

Result<int64_t> Ledger::AddLot(const model::Lot& lot) {
  // The member's next lot id (ids ascend in creation order within a member): one seek to
  // the end of the member's key range.
  int64_t id = 1;
  {
    LEDGER_PREPARE(st, "SELECT max(lot_id) FROM lots WHERE member_id = ?");
    st.Bind(1, lot.member_id);
    if (st.Step() && !st.IsNull(0)) id = st.Int(0) + 1;
    if (!st.status().ok()) return st.status();
  }
  LEDGER_PREPARE(st, "INSERT INTO lots (" LOYALTY_LOT_COLUMNS ") VALUES (?,?,?,?,?,?,?)");
  model::BindLotColumns(st, lot, id);
  if (Status s = st.Run(); !s.ok()) return s;
  return id;
}

Status Ledger::SetLotRemaining(uint64_t member_id, int64_t lot_id, int64_t remaining) {
  LEDGER_PREPARE(st, "UPDATE lots SET remaining = ? WHERE member_id = ? AND lot_id = ?");
  st.Bind(1, remaining).Bind(2, member_id).Bind(3, lot_id);
  return st.Run();
}

Result<std::vector<uint64_t>> Ledger::MembersByPhoneHash(int64_t key_id, const std::string& hash,
                                                         size_t limit) {
  LEDGER_PREPARE(st,
                 "SELECT member_id FROM members WHERE phone_hash = ? AND phone_key_id = ? AND "
                 "phone_hash <> '' ORDER BY member_id LIMIT ?");
  st.Bind(1, hash).Bind(2, key_id).Bind(3, static_cast<int64_t>(limit));
  std::vector<uint64_t> out;
  while (st.Step()) out.push_back(static_cast<uint64_t>(st.Int(0)));
  LEDGER_CHECK_STEP(st);
  return out;
}

Result<std::vector<uint64_t>> Ledger::MembersWithOtherPhoneKey(int64_t key_id, size_t limit) {
  LEDGER_PREPARE(st,
                 "SELECT member_id FROM members WHERE phone_hash <> '' AND phone_key_id <> ? "
                 "ORDER BY member_id LIMIT ?");
  st.Bind(1, key_id).Bind(2, static_cast<int64_t>(limit));
  std::vector<uint64_t> out;
  while (st.Step()) out.push_back(static_cast<uint64_t>(st.Int(0)));
  LEDGER_CHECK_STEP(st);
  return out;
}

Result<int64_t> Ledger::MemberCount() { return SelectInt("SELECT count(*) FROM members", nullptr); }

Result<std::optional<CouponRow>> Ledger::GetCoupon(const std::string& coupon_id) {
  LEDGER_PREPARE(
      st, "SELECT " LOYALTY_COUPON_COLUMNS ", used_by_checkout FROM coupons WHERE coupon_id = ?");
  st.Bind(1, coupon_id);
  if (!st.Step()) {
    LEDGER_CHECK_STEP(st);
    return std::optional<CouponRow>();
  }
  CouponRow c{model::ReadCouponColumns(st), st.Text(model::kCouponColumnCount)};
  return std::optional<CouponRow>(std::move(c));
}

Result<bool> Ledger::DropMember(uint64_t member_id) {
  auto unacked = SelectInt("SELECT count(*) FROM entries WHERE member_id = ? AND acked = 0",
                           [&](Stmt& st) { st.Bind(1, member_id); });
  if (!unacked.ok()) return unacked.status();
  if (*unacked > 0) return false;  // HQ has not got all of them yet: a later run drops it
  for (const char* sql :
       {"DELETE FROM members WHERE member_id = ?", "DELETE FROM lots WHERE member_id = ?",
        "DELETE FROM identities WHERE member_id = ?", "DELETE FROM hq_entries WHERE member_id = ?",
        "DELETE FROM coupons WHERE member_id = ? AND used_by_checkout = ''"}) {
    LEDGER_PREPARE(st, sql);
    st.Bind(1, member_id);
    if (Status s = st.Run(); !s.ok()) return s;
  }
  if (balances_index_) {
    const recon::Item item = recon::MemberBalanceItem(std::to_string(member_id), 0, 0);
    if (Status s = balances_index_->Remove(item.id); !s.ok()) return s;
  }
  return true;
}

Status Ledger::ReplaceHqEntries(uint64_t member_id, const std::vector<model::Entry>& entries) {
  {
    LEDGER_PREPARE(st, "DELETE FROM hq_entries WHERE member_id = ?");
    st.Bind(1, member_id);
    if (Status s = st.Run(); !s.ok()) return s;
  }
  std::vector<const model::Entry*> newest;
  for (const auto& e : entries) newest.push_back(&e);
  std::stable_sort(newest.begin(), newest.end(), [](const model::Entry* a, const model::Entry* b) {
    return a->at_ms > b->at_ms;
  });
  if (newest.size() > kMaxHqEntriesPerMember) newest.resize(kMaxHqEntriesPerMember);
  for (const model::Entry* e : newest) {
    LEDGER_PREPARE(st,
                   "INSERT OR REPLACE INTO hq_entries (member_id, entry_id, kind, points, at_ms) "
                   "VALUES (?,?,?,?,?)");
    st.Bind(1, member_id).Bind(2, e->entry_id).Bind(3, e->kind).Bind(4, e->points);
    st.Bind(5, e->at_ms);
    if (Status s = st.Run(); !s.ok()) return s;
  }
  return Status::Ok();
}

Result<std::vector<EntryRow>> Ledger::RecentHqEntries(uint64_t member_id, int limit) {
  LEDGER_PREPARE(st,
                 "SELECT entry_id, kind, points, at_ms FROM hq_entries WHERE member_id = ? "
                 "ORDER BY at_ms DESC, entry_id DESC LIMIT ?");
  st.Bind(1, member_id).Bind(2, limit);
  std::vector<EntryRow> out;
  while (st.Step()) {
    EntryRow e;
    e.entry_id = st.Text(0);
    e.terminal_id = "_hq";
    e.kind = st.Text(1);
    e.points = st.Int(2);
    e.at_ms = st.Int(3);
    e.member_id = member_id;
    e.acked = true;
    out.push_back(std::move(e));
  }
  LEDGER_CHECK_STEP(st);
  return out;
}

Result<std::vector<CouponRow>> Ledger::UsableCoupons(uint64_t member_id, int64_t now_s, int limit) {
  // coupons_usable (schema 5): the unused coupons of the member and those for anyone.
  LEDGER_PREPARE(st, "SELECT " LOYALTY_COUPON_COLUMNS
                     ", used_by_checkout FROM coupons WHERE used_by_checkout = '' AND member_id IN "
                     "(?1, 0) AND (valid_from_s = 0 OR valid_from_s <= ?2) AND (valid_to_s = 0 OR "
                     "valid_to_s >= ?2) ORDER BY valid_to_s = 0, valid_to_s, coupon_id LIMIT ?3");
  st.Bind(1, member_id).Bind(2, now_s).Bind(3, limit);
  std::vector<CouponRow> out;
  while (st.Step())
    out.push_back({model::ReadCouponColumns(st), st.Text(model::kCouponColumnCount)});
  LEDGER_CHECK_STEP(st);
  return out;
}

Status Ledger::PutCoupon(const CouponRow& c) {
  LEDGER_PREPARE(st, "INSERT OR REPLACE INTO coupons (" LOYALTY_COUPON_COLUMNS
                     ", used_by_checkout) VALUES (?,?,?,?,?,?,?,?,?)");
  model::BindCouponColumns(st, c);
  st.Bind(model::kCouponColumnCount + 1, c.used_by_checkout);
  return st.Run();
}

Status Ledger::MarkCouponUsed(const std::string& coupon_id, const std::string& checkout_id) {
  LEDGER_PREPARE(st, "UPDATE coupons SET used_by_checkout = ? WHERE coupon_id = ?");
  st.Bind(1, checkout_id).Bind(2, coupon_id);
  return st.Run();
}

Result<bool> Ledger::IsRevoked(std::string_view device_public_key) {
  LEDGER_PREPARE(st, "SELECT 1 FROM revoked_devices WHERE device_pk = ?");
  st.BindBlob(1, device_public_key);
  if (st.Step()) return true;
  LEDGER_CHECK_STEP(st);
  return false;
}

Status Ledger::PutRevocation(std::string_view device_public_key) {
  LEDGER_PREPARE(st, "INSERT OR IGNORE INTO revoked_devices (device_pk) VALUES (?)");
  st.BindBlob(1, device_public_key);
  return st.Run();
}

Result<std::optional<std::string>> Ledger::CodeBoundTo(const std::string& code_hash) {
  LEDGER_PREPARE(st, "SELECT checkout_id FROM code_bindings WHERE code_hash = ?");
  st.Bind(1, code_hash);
  if (st.Step()) return std::optional<std::string>(st.Text(0));
  LEDGER_CHECK_STEP(st);
  return std::optional<std::string>();
}

Status Ledger::BindCode(const std::string& code_hash, const std::string& checkout_id,
                        uint64_t member_id, int64_t at_ms) {
  LEDGER_PREPARE(st,
                 "INSERT INTO code_bindings (code_hash, checkout_id, member_id, bound_at_ms) "
                 "VALUES (?,?,?,?)");
  st.Bind(1, code_hash).Bind(2, checkout_id).Bind(3, member_id).Bind(4, at_ms);
  return st.Run();
}

}  // namespace loyalty::ledger
