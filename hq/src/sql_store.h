// HQ's store over SQL, once for both engines: a template over a backend B that names the
// connection and statement types (sqlite::Db and pg::Db share their surface), the
// reconciliation set type, the migrations and how a write transaction begins.
//
//   struct B {
//     using Db = ...; using Stmt = ...; using Set = ...;   // Set: a recon::FingerprintStore
//     static Status Migrate(Db&);                           // schema to the current version
//     static Result<std::unique_ptr<Set>> OpenSet(Db&, const std::string& scope);
//     static Status Begin(Db&);                             // opens a write transaction
//     static bool InTransaction(Db&);
//     static Status UpsertMany(const std::vector<std::pair<Set*, recon::Item>>&,
//                              bool may_fold);    // may fold a set whose journal grew
//     static constexpr bool kSharedWrites;         // writes beside each other (SharedTransaction)
//     static Status BeginShared(Db&, const std::vector<int64_t>& keys);  // sorted, unique
//     static bool IsReservedLock(int64_t);          // a lock number the backend uses itself
//     static Status FoldIfDue(Set&);                // folds a journal past the auto-fold size
//     static Result<bool> FoldDue(Set&);            // whether FoldIfDue would fold
//     static Status LockKeys(Db&, const std::vector<int64_t>& keys);  // more, in a shared write
//     static constexpr bool kLateralPages;         // a changes page from the scope's rows
//     static std::string InInts(int n);    // "column <this>": the column is one of the
//     static std::string InTexts(int n);   // integers (strings) of the JSON array of
//                                          // parameter n (ListText), planned as a look-up
//                                          // per element where an index leads with it
//     static std::string IntRows(int n);   // a subquery: one row per integer of parameter n
//   };
//
// The SQL is the dialect both engines share (ON CONFLICT, RETURNING, `?N` parameters; see
// loyalty/pg/pg.h). Uniqueness (entry ids above all) is enforced by the schema, not by
// look-ups before inserts, so two writers could never both succeed. `rowid` orders rows by
// insertion: SQLite's own, a BIGSERIAL column of that name in PostgreSQL.
#pragma once

#include <algorithm>
#include <deque>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "loyalty/base/encoding.h"
#include "loyalty/hq/record_codec.h"
#include "loyalty/hq/store.h"
#include "loyalty/model/coupon.h"
#include "loyalty/model/entry.h"
#include "loyalty/model/entry_columns.h"
#include "loyalty/model/lot.h"

namespace loyalty::hq::internal {

// "b = excluded.b, c = excluded.c" for the columns of a list after the first `skip`: the
// SET of an upsert that replaces the row.
inline std::string Excluded(const std::string& columns, size_t skip) {
  std::string out;
  size_t i = 0, n = 0;
  while (i <= columns.size()) {
    size_t j = columns.find(',', i);
    if (j == std::string::npos) j = columns.size();
    std::string col = columns.substr(i, j - i);
    col.erase(0, col.find_first_not_of(' '));
    col.erase(col.find_last_not_of(' ') + 1);
    if (n++ >= skip && !col.empty()) out += (out.empty() ? "" : ", ") + col + " = excluded." + col;
    i = j + 1;
  }
  return out;
}

// Every statement of the store but the queued rows' own (FlushRows) is prepared here: the
// rows a write transaction queued are written first, so that it reads them.
#define HQ_PREPARE(var, sql)                                       \
  if (Status var##_f = FlushRows(); !var##_f.ok()) return var##_f; \
  auto var##_r = db_->Prepare(sql);                                \
  if (!var##_r.ok()) return var##_r.status();                      \
  Stmt& var = **var##_r

inline constexpr const char* kMemberCols =
    "member_id, name_enc, phone_enc, birthday_enc, display_name, phone_masked, phone_hash, "
    "birthday_month, "
    "card_number, tier, status, frozen_reason, unfrozen_at_ms, balance, created_at_ms, change_seq, "
    "phone_consent";
inline constexpr const char* kCouponCols =
    LOYALTY_COUPON_COLUMNS ", body_hash, used_by_terminal, used_by_checkout, change_seq";
inline constexpr const char* kConflictCols =
    "kind, at_ms, terminal_id, other_terminal_id, member_id, detail, dedupe_key";

// A chain hash as HQ stores it (64 hex characters) back to the model's raw bytes. Any other
// text is a damaged row: an error, never an empty hash that would compare as "different".
inline Result<std::string> StoredHash(const std::string& text, const std::string& what) {
  auto raw = HexDecode(text);
  if (!raw || raw->size() != model::kHashBytes)
    return Status::Error(ErrorCode::kInternal, what + ": stored hash is not 64 hex characters");
  return *raw;
}

// The shared entry columns (loyalty/model/entry_columns.h); the hashes are stored as hex
// text and held raw (model::Entry).
template <class Row>
Result<sync::Entry> ReadEntry(const Row& s) {
  sync::Entry e = model::ReadEntryColumns(s);
  auto prev = StoredHash(e.prev_hash, "entry " + e.entry_id);
  if (!prev.ok()) return prev.status();
  auto hash = StoredHash(e.hash, "entry " + e.entry_id);
  if (!hash.ok()) return hash.status();
  e.prev_hash = std::move(*prev);
  e.hash = std::move(*hash);
  return e;
}

template <class Row>
MemberRecord ReadMember(const Row& s) {
  MemberRecord m;
  m.member_id = static_cast<uint64_t>(s.Int(0));
  m.name_enc = s.Text(1);
  m.phone_enc = s.Text(2);
  m.birthday_enc = s.Text(3);
  m.display_name = s.OptText(4);
  m.phone_masked = s.OptText(5);
  m.phone_hash = s.Text(6);
  m.birthday_month = static_cast<int>(s.Int(7));
  m.card_number = s.Text(8);
  m.tier = s.Text(9);
  m.status = s.Text(10);
  m.frozen_reason = s.Text(11);
  m.unfrozen_at_ms = s.Int(12);
  m.balance = s.Int(13);
  m.created_at_ms = s.Int(14);
  m.change_seq = s.Int(15);
  m.phone_lookup_consent = s.Int(16) != 0;
  return m;
}

template <class Row>
CouponRecord ReadCoupon(const Row& s) {
  constexpr int n = model::kCouponColumnCount;
  CouponRecord c;
  static_cast<model::Coupon&>(c.coupon) = model::ReadCouponColumns(s);
  c.body_hash = s.Text(n);
  c.used_by_terminal = s.Text(n + 1);
  c.used_by_checkout = s.Text(n + 2);
  c.coupon.used = !c.used_by_checkout.empty();
  c.change_seq = s.Int(n + 3);
  return c;
}

template <class Row>
ConflictRecord ReadConflict(const Row& s) {
  ConflictRecord c;
  c.kind = s.Text(0);
  c.at_ms = s.Int(1);
  c.terminal_id = s.Text(2);
  c.other_terminal_id = s.Text(3);
  c.member_id = static_cast<uint64_t>(s.Int(4));
  c.detail = s.Text(5);
  c.dedupe_key = s.Text(6);
  return c;
}

template <class B>
class SqlStore final : public Store {
 public:
  using Db = typename B::Db;
  using Stmt = typename B::Stmt;
  using Set = typename B::Set;

  explicit SqlStore(std::unique_ptr<Db> db) : db_(std::move(db)) {}

  Status Init() {
    if (Status s = B::Migrate(*db_); !s.ok()) return s;
    return RebuildBalanceSetsIfAsked();
  }

  Status Transaction(const std::function<Status()>& body) override {
    return Run(B::Begin(*db_), body);
  }

  Status SharedTransaction(const std::vector<std::string>& keys,
                           const std::function<Status()>& body) override {
    if constexpr (!B::kSharedWrites) {
      return Transaction(body);
    } else {
      const std::vector<int64_t> locks = SortedLocks(keys);
      if (locks.size() > kMaxSharedWriteKeys) return Transaction(body);
      shared_ = true;
      Status s = Run(B::BeginShared(*db_, locks), body);
      shared_ = false;
      return s;
    }
  }

  Status LockHqChain() override {
    if constexpr (B::kSharedWrites) {
      if (!shared_) return Status::Ok();  // the writer lock, exclusive, is enough
      // HQ's chain and the change sequence are one lock: the counter's row, which NextChange
      // takes too. Whoever holds it asks for no other lock before the commit, so waiting for
      // it closes no cycle.
      HQ_PREPARE(st, "SELECT value FROM change_counter WHERE id = 1 FOR UPDATE");
      return st.Run();
    } else {
      return Status::Ok();
    }
  }

  bool WritesInParallel() const override { return B::kSharedWrites; }

  Status LockKeys(const std::vector<std::string>& keys) override {
    if constexpr (B::kSharedWrites) {
      if (!shared_) return Status::Ok();
      return B::LockKeys(*db_, SortedLocks(keys));
    } else {
      return Status::Ok();
    }
  }

  Result<bool> SetsFoldDue(const std::string& terminal_id) override {
    auto entries = OpenTerminalSet(terminal_id);
    if (!entries.ok()) return entries.status();
    auto due = B::FoldDue(**entries);
    if (!due.ok() || *due) return due;
    auto balances = OpenBalanceSet(terminal_id);
    if (!balances.ok()) return balances.status();
    return B::FoldDue(**balances);
  }

  Status FoldSets(const std::string& terminal_id) override {
    if (Status s = FlushSets(); !s.ok()) return s;
    auto entries = OpenTerminalSet(terminal_id);
    if (!entries.ok()) return entries.status();
    if (Status s = B::FoldIfDue(**entries); !s.ok()) return s;
    auto balances = OpenBalanceSet(terminal_id);
    if (!balances.ok()) return balances.status();
    return B::FoldIfDue(**balances);
  }

  // Keys as lock numbers in one global order (the numbers'), each once: two writes taking
  // theirs in this order never wait for each other in a cycle.
  static std::vector<int64_t> SortedLocks(const std::vector<std::string>& keys) {
    std::vector<int64_t> locks;
    locks.reserve(keys.size());
    for (const auto& k : keys) locks.push_back(WriteLockKey(k));
    std::sort(locks.begin(), locks.end());
    locks.erase(std::unique(locks.begin(), locks.end()), locks.end());
    return locks;
  }

  // A key of SharedTransaction as an advisory lock number: FNV-1a, 64 bits (the same in
  // every process and build), never one of the backend's own locks.
  static int64_t WriteLockKey(const std::string& key) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (unsigned char c : key) {
      h ^= c;
      h *= 0x100000001b3ULL;
    }
    auto v = static_cast<int64_t>(h);
    return B::IsReservedLock(v) ? v ^ 1 : v;
  }

 private:
  Status Run(Status begun, const std::function<Status()>& body) {
    Status s = std::move(begun);
    if (!s.ok()) return s;
    s = body();
    if (s.ok()) s = FlushQueued();
    if (s.ok()) s = db_->Exec("COMMIT");
    pending_items_.clear();
    spend_rows_.clear();
    spend_stored_.clear();
    spend_dirty_.clear();
    rows_ = QueuedRows{};
    absent_checkouts_.clear();
    lot_ids_.clear();
    if (!s.ok()) {
      (void)db_->Exec(
          "ROLLBACK");  // the failure to report is s; a failed rollback ends the transaction too
      // A set opened in the transaction may name a scope row that is gone now.
      terminal_sets_.clear();
      balance_sets_.clear();
    }
    return s;
  }

 public:
  // --- members
  Status InsertMember(const MemberRecord& m) override {
    auto seq = NextChange();
    if (!seq.ok()) return seq.status();
    HQ_PREPARE(st, std::string("INSERT INTO members (") + kMemberCols +
                       ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    BindMember(st, m, *seq);
    return st.Run();
  }

  Status UpdateMember(const MemberRecord& m) override {
    auto seq = NextChange();
    if (!seq.ok()) return seq.status();
    HQ_PREPARE(
        st,
        std::string("INSERT INTO members (") + kMemberCols +
            ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (member_id) DO UPDATE SET " +
            Excluded(kMemberCols, 1));
    BindMember(st, m, *seq);
    return st.Run();
  }

  Result<std::optional<MemberRecord>> GetMember(uint64_t member_id) override {
    HQ_PREPARE(st, std::string("SELECT ") + kMemberCols + " FROM members WHERE member_id = ?");
    st.Bind(1, member_id);
    if (st.Step()) return std::optional<MemberRecord>(ReadMember(st));
    if (!st.status().ok()) return st.status();
    return std::optional<MemberRecord>();
  }

  Status UpdateMembers(const std::vector<MemberWrite>& writes) override {
    if (writes.empty()) return Status::Ok();
    // What the transaction queued goes first. The counter's row, locked by the next statement
    // until the commit, is the one lock every write of members waits for (docs/hq.md,
    // "Writers in parallel"): held across the member rows and the commit only, not across
    // the entries, checkouts, lots, journal and spend rows as well.
    if (Status s = FlushQueued(); !s.ok()) return s;
    int64_t seq = 0;  // the last of the values taken: the first write gets seq - n + 1
    {
      HQ_PREPARE(st, "UPDATE change_counter SET value = value + ?1 WHERE id = 1 RETURNING value");
      st.Bind(1, static_cast<int64_t>(writes.size()));
      if (!st.Step()) return Fail(st);
      seq = st.Int(0);
      if (Status s = st.Run(); !s.ok()) return s;
    }
    seq -= static_cast<int64_t>(writes.size());
    constexpr size_t kRows = 100;  // 1,700 parameters a statement, within both engines' limits
    std::vector<std::pair<const MemberRecord*, int64_t>> rows;
    auto upsert = [&]() -> Status {
      if (rows.empty()) return Status::Ok();
      std::string sql = std::string("INSERT INTO members (") + kMemberCols + ") VALUES ";
      for (size_t i = 0; i < rows.size(); ++i)
        sql += std::string(i ? "," : "") + "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
      sql += " ON CONFLICT (member_id) DO UPDATE SET " + Excluded(kMemberCols, 1);
      HQ_PREPARE(st, sql);
      for (size_t i = 0; i < rows.size(); ++i)
        BindMember(st, *rows[i].first, rows[i].second, static_cast<int>(i) * kMemberColCount);
      rows.clear();
      return st.Run();
    };
    // Rows whose ledger fields alone changed: written at the end, one UPDATE of those fields
    // for many rows.
    std::vector<std::pair<const MemberRecord*, int64_t>> narrow;
    for (const auto& w : writes) {
      ++seq;
      if (w.write && w.stored && OnlyLedgerDiffers(*w.stored, *w.m)) {
        narrow.emplace_back(w.m, seq);
        continue;
      }
      if (w.write) {
        rows.emplace_back(w.m, seq);
        if (rows.size() == kRows)
          if (Status s = upsert(); !s.ok()) return s;
        continue;
      }
      HQ_PREPARE(st, "UPDATE members SET change_seq = ? WHERE member_id = ?");
      st.Bind(1, seq).Bind(2, w.m->member_id);
      if (Status s = st.Run(); !s.ok()) return s;
    }
    if (Status s = upsert(); !s.ok()) return s;
    // The VALUES are untyped parameters (text to PostgreSQL): the SET and the join cast them.
    return InsertRows(
        "WITH v(id, tier, status, frozen_reason, unfrozen_at_ms, balance, change_seq) AS (", 7,
        narrow,
        ") UPDATE members SET tier = v.tier, status = v.status, frozen_reason = v.frozen_reason, "
        "unfrozen_at_ms = CAST(v.unfrozen_at_ms AS BIGINT), balance = CAST(v.balance AS BIGINT), "
        "change_seq = CAST(v.change_seq AS BIGINT) FROM v WHERE members.member_id = CAST(v.id AS "
        "BIGINT)",
        false, [](Stmt& st, int b, const std::pair<const MemberRecord*, int64_t>& row) {
          const MemberRecord& m = *row.first;
          st.Bind(b + 1, m.member_id).Bind(b + 2, m.tier).Bind(b + 3, m.status);
          st.Bind(b + 4, m.frozen_reason).Bind(b + 5, m.unfrozen_at_ms).Bind(b + 6, m.balance);
          st.Bind(b + 7, row.second);
        });
  }

  // Whether m is `stored` with only the fields UpdateMembers' narrow write sets changed.
  static bool OnlyLedgerDiffers(const MemberRecord& stored, const MemberRecord& m) {
    MemberRecord rest = m;
    rest.tier = stored.tier;
    rest.status = stored.status;
    rest.frozen_reason = stored.frozen_reason;
    rest.unfrozen_at_ms = stored.unfrozen_at_ms;
    rest.balance = stored.balance;
    rest.change_seq = stored.change_seq;
    return rest == stored;
  }

  Result<std::vector<MemberRecord>> GetMembers(const std::vector<uint64_t>& ids) override {
    std::vector<MemberRecord> out;
    if (Status s = EachChunk(
            std::string("SELECT ") + kMemberCols + " FROM members WHERE member_id " + B::InInts(1),
            1, ids, NoBind,
            [&](const Stmt& r) {
              out.push_back(ReadMember(r));
              return Status::Ok();
            });
        !s.ok())
      return s;
    return out;
  }

  Status TouchMember(uint64_t member_id) override {
    auto seq = NextChange();
    if (!seq.ok()) return seq.status();
    HQ_PREPARE(st, "UPDATE members SET change_seq = ? WHERE member_id = ?");
    st.Bind(1, *seq).Bind(2, member_id);
    return st.Run();
  }

  Result<std::optional<uint64_t>> FindIdentity(const std::string& channel,
                                               const std::string& external_id) override {
    HQ_PREPARE(st, "SELECT member_id FROM identities WHERE channel = ? AND external_id = ?");
    st.Bind(1, channel).Bind(2, external_id);
    if (st.Step()) return std::optional<uint64_t>(static_cast<uint64_t>(st.Int(0)));
    if (!st.status().ok()) return st.status();
    return std::optional<uint64_t>();
  }

  Result<std::vector<uint64_t>> ConsentingMembersByPhoneHash(const std::string& phone_hash,
                                                             int64_t limit) override {
    HQ_PREPARE(st,
               "SELECT member_id FROM members WHERE phone_hash = ? AND phone_hash <> '' AND "
               "phone_consent = 1 ORDER BY member_id LIMIT ?");
    st.Bind(1, phone_hash).Bind(2, limit);
    return ReadAll<uint64_t>(st, [](const Stmt& r) { return static_cast<uint64_t>(r.Int(0)); });
  }

  Status PutIdentity(const std::string& channel, const std::string& external_id,
                     uint64_t member_id) override {
    HQ_PREPARE(st, "INSERT INTO identities (channel, external_id, member_id) VALUES (?,?,?)");
    st.Bind(1, channel).Bind(2, external_id).Bind(3, member_id);
    return st.Run();
  }

  Result<std::vector<sync::Identity>> IdentitiesOf(uint64_t member_id) override {
    HQ_PREPARE(st,
               "SELECT channel, external_id FROM identities WHERE member_id = ? ORDER BY channel, "
               "external_id");
    st.Bind(1, member_id);
    return ReadAll<sync::Identity>(st, [&](const Stmt& r) -> sync::Identity {
      return {r.Text(0), r.Text(1), member_id};
    });
  }

  Result<std::vector<sync::Identity>> IdentitiesOfMembers(
      const std::vector<uint64_t>& member_ids) override {
    std::map<uint64_t, std::vector<sync::Identity>> by_member;
    if (Status s =
            EachChunk("SELECT member_id, channel, external_id FROM identities WHERE member_id " +
                          B::InInts(1) + " ORDER BY member_id, channel, external_id",
                      1, member_ids, NoBind,
                      [&](const Stmt& r) {
                        const auto id = static_cast<uint64_t>(r.Int(0));
                        by_member[id].push_back({r.Text(1), r.Text(2), id});
                        return Status::Ok();
                      });
        !s.ok())
      return s;
    std::vector<sync::Identity> out;  // in the order of member_ids, as one call per member
    for (uint64_t id : member_ids) {
      auto it = by_member.find(id);
      if (it == by_member.end()) continue;
      for (auto& i : it->second) out.push_back(std::move(i));
      by_member.erase(it);
    }
    return out;
  }

  Result<std::vector<MemberRecord>> MembersAfter(uint64_t after, int64_t limit) override {
    HQ_PREPARE(st, std::string("SELECT ") + kMemberCols +
                       " FROM members WHERE member_id > ? ORDER BY member_id LIMIT ?");
    st.Bind(1, after).Bind(2, limit);
    return ReadAll<MemberRecord>(st, [&](const Stmt& r) { return ReadMember(r); });
  }

  Result<int64_t> MaxChangeSeq() override {
    HQ_PREPARE(st, "SELECT value FROM change_counter WHERE id = 1");
    if (st.Step()) return st.Int(0);
    return st.status().ok() ? Status::Error(ErrorCode::kInternal, "change counter missing")
                            : st.status();
  }

  // --- entries
  // Queued in a write transaction (a duplicate id fails the flush, and so the transaction);
  // written at once outside one.
  Status InsertEntry(const sync::Entry& e, bool applied, int64_t received_at_ms) override {
    rows_.entries.push_back({e, applied, received_at_ms});
    return B::InTransaction(*db_) ? Status::Ok() : FlushRows();
  }

  Result<std::optional<sync::Entry>> GetEntry(const std::string& entry_id) override {
    HQ_PREPARE(st, "SELECT " LOYALTY_ENTRY_COLUMNS " FROM entries WHERE entry_id = ?");
    st.Bind(1, entry_id);
    if (st.Step()) {
      auto e = ReadEntry(st);
      if (!e.ok()) return e.status();
      return std::optional<sync::Entry>(std::move(*e));
    }
    if (!st.status().ok()) return st.status();
    return std::optional<sync::Entry>();
  }

  Result<std::vector<sync::Entry>> EntriesByIds(const std::vector<std::string>& ids) override {
    std::vector<sync::Entry> out;
    if (Status s = EachChunk(
            "SELECT " LOYALTY_ENTRY_COLUMNS " FROM entries WHERE entry_id " + B::InTexts(1), 1, ids,
            NoBind,
            [&](const Stmt& r) -> Status {
              auto e = ReadEntry(r);
              if (!e.ok()) return e.status();
              out.push_back(std::move(*e));
              return Status::Ok();
            });
        !s.ok())
      return s;
    return out;
  }

  Result<std::vector<sync::Entry>> TerminalEntriesBetween(const std::string& terminal_id,
                                                          int64_t lo, int64_t hi) override {
    HQ_PREPARE(st, "SELECT " LOYALTY_ENTRY_COLUMNS
                   " FROM entries WHERE terminal_id = ? AND seq >= ? AND seq <= ? ORDER BY seq, "
                   "entry_id");
    st.Bind(1, terminal_id).Bind(2, lo).Bind(3, hi);
    std::vector<sync::Entry> out;
    while (st.Step()) {
      auto e = ReadEntry(st);
      if (!e.ok()) return e.status();
      out.push_back(std::move(*e));
    }
    if (!st.status().ok()) return st.status();
    return out;
  }

  Result<std::vector<sync::Entry>> EntriesAtSeq(const std::string& terminal_id,
                                                int64_t seq) override {
    HQ_PREPARE(st,
               "SELECT " LOYALTY_ENTRY_COLUMNS " FROM entries WHERE terminal_id = ? AND seq = ?");
    st.Bind(1, terminal_id).Bind(2, seq);
    std::vector<sync::Entry> out;
    while (st.Step()) {
      auto e = ReadEntry(st);
      if (!e.ok()) return e.status();
      out.push_back(std::move(*e));
    }
    if (!st.status().ok()) return st.status();
    return out;
  }

  Result<int64_t> CountEntries(const std::string& terminal_id) override {
    return Count("SELECT count(*) FROM entries WHERE terminal_id = ?", terminal_id);
  }
  Result<int64_t> CountMemberEntries(uint64_t member_id) override {
    HQ_PREPARE(st, "SELECT count(*) FROM entries WHERE member_id = ?");
    st.Bind(1, member_id);
    return st.Step() ? Result<int64_t>(st.Int(0)) : Result<int64_t>(Fail(st));
  }
  Result<int64_t> SumMemberPoints(uint64_t member_id) override {
    HQ_PREPARE(st, "SELECT points FROM entries WHERE member_id = ? AND applied = 1");
    st.Bind(1, member_id);
    return SumChecked(st);
  }

  Result<int64_t> KnownBalance(uint64_t member_id, const std::string& terminal_id,
                               int64_t download_ms, int64_t before_seq,
                               const std::string& exclude_checkout, int64_t at_s) override {
    __int128 sum = 0;
    {
      HQ_PREPARE(st,
                 "SELECT points FROM entries WHERE member_id = ?1 AND "
                 "((applied = 1 AND received_at_ms <= ?3) OR "
                 "(terminal_id = ?2 AND received_at_ms > ?3 AND seq < ?4 AND checkout_id <> ?5))");
      st.Bind(1, member_id)
          .Bind(2, terminal_id)
          .Bind(3, download_ms)
          .Bind(4, before_seq)
          .Bind(5, exclude_checkout);
      while (st.Step()) sum += st.Int(0);
      if (!st.status().ok()) return st.status();
    }
    {
      // The lots of those same entries expired at at_s, with what remains of them (a lot only
      // shrinks once made, so never more than the terminal still counted in it).
      HQ_PREPARE(
          st,
          "SELECT l.remaining FROM lots l JOIN entries e ON e.entry_id = l.entry_id "
          "WHERE l.member_id = ?1 AND l.expires_at_s < ?6 AND l.remaining > 0 AND "
          "((e.applied = 1 AND e.received_at_ms <= ?3) OR "
          "(e.terminal_id = ?2 AND e.received_at_ms > ?3 AND e.seq < ?4 AND e.checkout_id <> ?5))");
      st.Bind(1, member_id)
          .Bind(2, terminal_id)
          .Bind(3, download_ms)
          .Bind(4, before_seq)
          .Bind(5, exclude_checkout);
      st.Bind(6, at_s);
      while (st.Step()) sum -= st.Int(0);
      if (!st.status().ok()) return st.status();
    }
    {
      // Lots HQ's daily job emptied after the download (their expire entry came later than
      // the snapshot) as of a time they were expired at at_s too.
      HQ_PREPARE(st,
                 "SELECT points, detail FROM entries WHERE member_id = ? AND kind = 'expire' AND "
                 "applied = 1 "
                 "AND terminal_id = '_hq' AND received_at_ms > ?");
      st.Bind(1, member_id).Bind(2, download_ms);
      while (st.Step()) {
        auto detail = ParseJsonObject(st.Text(1));
        if (!detail.ok()) continue;  // no time to judge by: the points stay known
        auto as_of = detail->find("as_of_s");
        if (as_of == detail->end() || !as_of->is_number_integer() ||
            as_of->template get<int64_t>() > at_s)
          continue;
        sum += st.Int(0);
      }
      if (!st.status().ok()) return st.status();
    }
    if (sum > std::numeric_limits<int64_t>::max() || sum < std::numeric_limits<int64_t>::min()) {
      return Status::Error(ErrorCode::kOverflow, "a sum of points leaves 64 bits");
    }
    return static_cast<int64_t>(sum);
  }

  Result<int64_t> EarnedBetween(uint64_t member_id, int64_t from_ms, int64_t to_ms) override {
    HQ_PREPARE(st,
               "SELECT points FROM entries WHERE member_id = ? AND kind = 'earn' AND applied = 1 "
               "AND at_ms > ? "
               "AND at_ms <= ?");
    st.Bind(1, member_id).Bind(2, from_ms).Bind(3, to_ms);
    return SumChecked(st);
  }

  Result<std::map<uint64_t, std::vector<std::pair<int64_t, int64_t>>>> AppliedEarnsAfter(
      const std::vector<uint64_t>& member_ids, int64_t after_ms) override {
    std::map<uint64_t, std::vector<std::pair<int64_t, int64_t>>> out;
    if (Status s = EachChunk(
            "SELECT member_id, at_ms, points FROM entries WHERE member_id " + B::InInts(1) +
                " AND kind = 'earn' AND applied = 1 AND at_ms > ?2 ORDER BY "
                "member_id, at_ms",
            1, member_ids, [&](Stmt& st) { st.Bind(2, after_ms); },
            [&](const Stmt& r) {
              out[static_cast<uint64_t>(r.Int(0))].emplace_back(r.Int(1), r.Int(2));
              return Status::Ok();
            });
        !s.ok())
      return s;
    return out;
  }

  Result<int64_t> CountAppliedEntries(const std::string& terminal_id,
                                      const std::string& checkout_id, const std::string& refund_id,
                                      const std::string& kind) override {
    HQ_PREPARE(st,
               // `checkout_id <> ''` lets SQLite use the partial index entries_by_checkout.
               "SELECT count(*) FROM entries WHERE terminal_id = ? AND checkout_id = ? AND "
               "checkout_id <> '' "
               "AND refund_id = ? AND kind = ? AND applied = 1");
    st.Bind(1, terminal_id).Bind(2, checkout_id).Bind(3, refund_id).Bind(4, kind);
    return st.Step() ? Result<int64_t>(st.Int(0)) : Result<int64_t>(Fail(st));
  }

  Result<std::optional<int64_t>> FirstEntryReceivedAt(const std::string& terminal_id,
                                                      uint64_t member_id) override {
    HQ_PREPARE(st,
               "SELECT min(received_at_ms) FROM entries WHERE member_id = ? AND terminal_id = ?");
    st.Bind(1, member_id).Bind(2, terminal_id);
    if (!st.Step()) return Fail(st);
    if (st.IsNull(0)) return std::optional<int64_t>();
    return std::optional<int64_t>(st.Int(0));
  }

  Result<std::map<std::pair<uint64_t, std::string>, std::vector<TerminalMark>>> TerminalMarksOf(
      const std::string& terminal_id, const std::vector<uint64_t>& member_ids,
      const std::vector<std::string>& kinds) override {
    std::map<std::pair<uint64_t, std::string>, std::vector<TerminalMark>> out;
    if (kinds.empty()) return out;
    if (Status s = EachChunk(
            "SELECT member_id, kind, at_ms, seq FROM (SELECT member_id, kind, at_ms, seq, "
            "row_number() OVER (PARTITION BY member_id, kind ORDER BY seq, at_ms) AS early, "
            "row_number() OVER (PARTITION BY member_id, kind ORDER BY seq DESC, at_ms DESC) AS "
            "late FROM entries WHERE terminal_id = ?1 AND member_id " +
                B::InInts(2) + " AND kind " + B::InTexts(3) +
                " AND (applied = 1 OR kind <> 'tier_upgrade')) AS marks WHERE early = 1 OR late "
                "<= " +
                std::to_string(kMaxTerminalMarks) + " ORDER BY member_id, kind, seq, at_ms",
            2, member_ids, [&](Stmt& st) { st.Bind(1, terminal_id).Bind(3, ListText(kinds)); },
            [&](const Stmt& r) {
              out[{static_cast<uint64_t>(r.Int(0)), r.Text(1)}].push_back({r.Int(2), r.Int(3)});
              return Status::Ok();
            });
        !s.ok())
      return s;
    return out;
  }

  Result<std::optional<int64_t>> LastTerminalEntryAt(const std::string& terminal_id,
                                                     uint64_t member_id, const std::string& kind,
                                                     int64_t before_seq) override {
    HQ_PREPARE(st,
               "SELECT max(at_ms) FROM entries WHERE member_id = ? AND kind = ? AND terminal_id = "
               "? AND seq < ?");
    st.Bind(1, member_id).Bind(2, kind).Bind(3, terminal_id).Bind(4, before_seq);
    if (!st.Step()) return Fail(st);
    if (st.IsNull(0)) return std::optional<int64_t>();
    return std::optional<int64_t>(st.Int(0));
  }

  Result<int64_t> TerminalEarnedBetween(const std::string& terminal_id, uint64_t member_id,
                                        int64_t after_ms, int64_t until_ms,
                                        int64_t before_seq) override {
    HQ_PREPARE(st,
               "SELECT CAST(coalesce(sum(points), 0) AS BIGINT) FROM entries WHERE member_id = ? "
               "AND kind = 'earn' AND terminal_id = ? AND at_ms > ? AND at_ms <= ? AND seq < ?");
    st.Bind(1, member_id).Bind(2, terminal_id).Bind(3, after_ms).Bind(4, until_ms);
    st.Bind(5, before_seq);
    if (!st.Step()) return Fail(st);
    return st.Int(0);
  }

  Result<std::optional<int64_t>> FirstForkSeq(const std::string& terminal_id) override {
    HQ_PREPARE(st, "SELECT detail FROM conflicts WHERE terminal_id = ? AND kind = 'chain_fork'");
    st.Bind(1, terminal_id);
    std::optional<int64_t> first;
    while (st.Step()) {
      auto d = ParseJsonObject(st.Text(0));
      if (!d.ok() || !d->contains("seq") || !(*d)["seq"].is_number_integer())
        return Status::Error(ErrorCode::kInternal, "stored chain_fork without its seq");
      const int64_t seq = (*d)["seq"].template get<int64_t>();
      if (!first || seq < *first) first = seq;
    }
    if (!st.status().ok()) return st.status();
    return first;
  }

  Result<std::map<uint64_t, std::vector<TerminalEarn>>> TerminalEarnsOf(
      const std::string& terminal_id, const std::vector<uint64_t>& member_ids,
      int64_t after_ms) override {
    std::map<uint64_t, std::vector<TerminalEarn>> out;
    if (Status s = EachChunk(
            "SELECT member_id, at_ms, seq, points, checkout_id FROM entries WHERE member_id " +
                B::InInts(1) +
                " AND kind = 'earn' AND applied = 1 AND terminal_id = ?2 AND at_ms > ?3 ORDER BY "
                "member_id, at_ms, seq",
            1, member_ids, [&](Stmt& st) { st.Bind(2, terminal_id).Bind(3, after_ms); },
            [&](const Stmt& r) {
              out[static_cast<uint64_t>(r.Int(0))].push_back(
                  {r.Int(1), r.Int(2), r.Int(3), r.Text(4)});
              return Status::Ok();
            });
        !s.ok())
      return s;
    return out;
  }

  Result<std::map<std::string, int64_t>> RefundEntrySeqs(const std::string& terminal_id,
                                                         const std::string& checkout_id) override {
    HQ_PREPARE(st,
               // `checkout_id <> ''` lets SQLite use the partial index entries_by_checkout.
               "SELECT refund_id, min(seq) FROM entries WHERE terminal_id = ? AND checkout_id = ? "
               "AND checkout_id <> '' AND refund_id <> '' GROUP BY refund_id");
    st.Bind(1, terminal_id).Bind(2, checkout_id);
    std::map<std::string, int64_t> out;
    while (st.Step()) out.emplace(st.Text(0), st.Int(1));
    if (!st.status().ok()) return st.status();
    return out;
  }

  Result<std::vector<sync::Entry>> TerminalEntriesByIds(
      const std::string& terminal_id, const std::vector<std::string>& ids) override {
    std::vector<sync::Entry> out;
    for (const auto& id : ids) {
      auto e = GetEntry(id);
      if (!e.ok()) return e.status();
      if (*e && (*e)->terminal_id == terminal_id) out.push_back(**e);
    }
    return out;
  }

  Result<std::pair<int64_t, std::string>> HqHead() override {
    HQ_PREPARE(st,
               "SELECT seq, hash FROM entries WHERE terminal_id = '_hq' ORDER BY seq DESC LIMIT 1");
    if (st.Step()) {
      auto hash = StoredHash(st.Text(1), "HQ's chain head");
      if (!hash.ok()) return hash.status();
      return std::make_pair(st.Int(0), std::move(*hash));
    }
    if (!st.status().ok()) return st.status();
    return std::make_pair(int64_t{0}, model::ZeroHash());
  }

  // --- lots
  Result<std::vector<model::Lot>> Lots(uint64_t member_id) override {
    HQ_PREPARE(st, "SELECT " LOYALTY_LOT_COLUMNS
                   " FROM lots "
                   "WHERE member_id = ? AND remaining <> 0 ORDER BY expires_at_s, lot_id");
    st.Bind(1, member_id);
    std::vector<model::Lot> out;
    while (st.Step()) {
      out.push_back(model::ReadLotColumns(st));
    }
    if (!st.status().ok()) return st.status();
    return out;
  }

  Result<std::map<uint64_t, std::vector<sync::HqEntry>>> HqEntriesOfMembers(
      const std::vector<uint64_t>& member_ids, size_t per_member) override {
    std::map<uint64_t, std::vector<sync::HqEntry>> out;
    // terminal_id as a literal, so that both engines see the partial index
    // entries_hq_by_member applies.
    if (Status s = EachChunk(
            "SELECT member_id, entry_id, kind, points, at_ms FROM (SELECT member_id, entry_id, "
            "kind, points, at_ms, seq, row_number() OVER (PARTITION BY member_id ORDER BY seq "
            "DESC) AS n FROM entries WHERE terminal_id = '_hq' AND member_id " +
                B::InInts(1) + ") AS t WHERE n <= ?2 ORDER BY member_id, seq DESC",
            1, member_ids, [&](Stmt& st) { st.Bind(2, static_cast<int64_t>(per_member)); },
            [&](const Stmt& r) {
              sync::HqEntry e;
              e.entry_id = r.Text(1);
              e.kind = r.Text(2);
              e.points = r.Int(3);
              e.at_ms = r.Int(4);
              out[static_cast<uint64_t>(r.Int(0))].push_back(std::move(e));
              return Status::Ok();
            });
        !s.ok())
      return s;
    return out;
  }

  Result<std::map<uint64_t, std::vector<model::Lot>>> LotsOfMembers(
      const std::vector<uint64_t>& member_ids) override {
    return LotsOfMembersWhere(member_ids, "remaining <> 0");
  }

  Result<std::vector<model::Lot>> DebtLots(uint64_t member_id) override {
    HQ_PREPARE(st, "SELECT " LOYALTY_LOT_COLUMNS
                   " FROM lots "
                   "WHERE member_id = ? AND remaining < 0 ORDER BY expires_at_s, lot_id");
    st.Bind(1, member_id);
    std::vector<model::Lot> out;
    while (st.Step()) {
      out.push_back(model::ReadLotColumns(st));
    }
    if (!st.status().ok()) return st.status();
    return out;
  }

  Result<std::map<uint64_t, std::vector<model::Lot>>> DebtLotsOfMembers(
      const std::vector<uint64_t>& member_ids) override {
    return LotsOfMembersWhere(member_ids, "remaining < 0");
  }

  Result<int64_t> AddLot(const model::Lot& l) override {
    if (B::InTransaction(*db_)) {  // an id reserved now, the row written later
      if (lot_ids_.empty()) {
        HQ_PREPARE(st, B::kReserveLotIds);
        st.Bind(1, int64_t{kLotIdsReserved});
        while (st.Step()) lot_ids_.push_back(st.Int(0));
        if (!st.status().ok()) return st.status();
        if (lot_ids_.empty()) return Status::Error(ErrorCode::kInternal, "no lot id reserved");
      }
      model::Lot queued = l;
      queued.lot_id = lot_ids_.front();
      lot_ids_.pop_front();
      rows_.lots.push_back(queued);
      return queued.lot_id;
    }
    // lot_id left out: the store assigns it (SQLite's rowid, PostgreSQL's BIGSERIAL).
    HQ_PREPARE(st,
               "INSERT INTO lots (member_id, points, remaining, earned_at_s, expires_at_s, "
               "entry_id) VALUES (?,?,?,?,?,?) RETURNING lot_id");
    st.Bind(1, l.member_id).Bind(2, l.points).Bind(3, l.remaining).Bind(4, l.earned_at_s);
    st.Bind(5, l.expires_at_s).Bind(6, l.entry_id);
    if (!st.Step()) return Fail(st);
    const int64_t id = st.Int(0);
    if (Status s = st.Run(); !s.ok()) return s;
    return id;
  }

  Status SetLotRemaining(int64_t lot_id, int64_t remaining) override {
    HQ_PREPARE(st, "UPDATE lots SET remaining = ? WHERE lot_id = ?");
    st.Bind(1, remaining).Bind(2, lot_id);
    return st.Run();
  }

  Result<std::vector<uint64_t>> MembersWithExpiredLots(int64_t now_s) override {
    HQ_PREPARE(st,
               "SELECT DISTINCT member_id FROM lots WHERE remaining > 0 AND expires_at_s < ? ORDER "
               "BY member_id");
    st.Bind(1, now_s);
    return ReadAll<uint64_t>(st, [&](const Stmt& r) { return static_cast<uint64_t>(r.Int(0)); });
  }

  // --- checkouts and refunds
  // A checkout's body is its compact form (record_codec.h); rows older versions wrote hold
  // JSON text, which GetCheckout reads too.
  Result<bool> InsertCheckout(const std::string& terminal_id, const sync::Checkout& c) override {
    QueuedCheckout row{terminal_id,       c.checkout_id,     c.member_id,
                       c.committed_at_ms, c.total_due_cents, c.code_hash,
                       c.coupon_id,       EncodeCheckout(c), c.cashier_id};
    if (B::InTransaction(*db_) && absent_checkouts_.erase({terminal_id, c.checkout_id}) > 0) {
      // This transaction read it as absent (CheckoutVerdicts): new, so queued.
      rows_.checkouts.push_back(std::move(row));
    } else {
      // Written now, after what is queued (which may hold the same checkout).
      if (Status s = InsertRows(kCheckoutInsert, 9, std::vector<QueuedCheckout>{std::move(row)},
                                kCheckoutConflict, false, BindCheckout);
          !s.ok())
        return s;
      if (db_->Changes() == 0) return false;
    }
    if (c.member_id) {
      if (Status s = SpendTotalsAdd(*c.member_id, c.committed_at_ms, c.total_due_cents); !s.ok())
        return s;
    }
    return true;
  }

  Result<std::vector<sync::Checkout>> CheckoutsWithoutMember(const std::string& terminal_id,
                                                             const std::string& after,
                                                             size_t limit) override {
    HQ_PREPARE(st,
               "SELECT body FROM checkouts WHERE terminal_id = ? AND checkout_id > ? AND "
               "member_id IS NULL ORDER BY checkout_id LIMIT ?");
    st.Bind(1, terminal_id).Bind(2, after).Bind(3, static_cast<int64_t>(limit));
    std::vector<sync::Checkout> out;
    while (st.Step()) {
      auto c = DecodeCheckout(st.Text(0));
      if (!c.ok()) return c.status();
      out.push_back(std::move(*c));
    }
    if (!st.status().ok()) return st.status();
    return out;
  }

  Result<std::optional<sync::Checkout>> GetCheckout(const std::string& terminal_id,
                                                    const std::string& checkout_id) override {
    HQ_PREPARE(st, "SELECT body FROM checkouts WHERE terminal_id = ? AND checkout_id = ?");
    st.Bind(1, terminal_id).Bind(2, checkout_id);
    if (!st.Step()) {
      if (!st.status().ok()) return st.status();
      return std::optional<sync::Checkout>();
    }
    auto c = DecodeCheckout(st.Text(0));
    if (!c.ok()) return c.status();
    return std::optional<sync::Checkout>(std::move(*c));
  }

  Result<bool> InsertRefund(const std::string& terminal_id, const sync::Refund& r) override {
    HQ_PREPARE(st,
               "INSERT INTO refunds (terminal_id, refund_id, checkout_id, refund_cents, body, "
               "sold_at, cashier_id, at_ms) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING");
    const std::string& sold_at = r.sold_at.empty() ? terminal_id : r.sold_at;
    st.Bind(1, terminal_id).Bind(2, r.refund_id).Bind(3, r.checkout_id).Bind(4, r.refund_cents);
    st.Bind(5, sync::SerializeMessage(r)).Bind(6, sold_at).Bind(7, r.cashier_id).Bind(8, r.at_ms);
    if (Status s = st.Run(); !s.ok()) return s;
    if (db_->Changes() == 0) return false;
    if (Status s = SpendTotalsForget(sold_at, r.checkout_id); !s.ok()) return s;
    return true;
  }

  Status MarkCheckoutRefused(const std::string& terminal_id,
                             const std::string& checkout_id) override {
    HQ_PREPARE(st, "UPDATE checkouts SET refused = 1 WHERE terminal_id = ? AND checkout_id = ?");
    st.Bind(1, terminal_id).Bind(2, checkout_id);
    if (Status s = st.Run(); !s.ok()) return s;
    return SpendTotalsForget(terminal_id, checkout_id);
  }

  Status MarkRefundRefused(const std::string& terminal_id, const std::string& refund_id) override {
    std::string sold_at, checkout_id;
    {
      HQ_PREPARE(
          q, "SELECT sold_at, checkout_id FROM refunds WHERE terminal_id = ? AND refund_id = ?");
      q.Bind(1, terminal_id).Bind(2, refund_id);
      if (q.Step()) {
        sold_at = q.Text(0);
        checkout_id = q.Text(1);
      } else if (!q.status().ok()) {
        return q.status();
      } else {
        return Status::Ok();  // no such refund: nothing to mark
      }
    }
    HQ_PREPARE(st, "UPDATE refunds SET refused = 1 WHERE terminal_id = ? AND refund_id = ?");
    st.Bind(1, terminal_id).Bind(2, refund_id);
    if (Status s = st.Run(); !s.ok()) return s;
    return SpendTotalsForget(sold_at, checkout_id);
  }

  Result<std::vector<std::pair<std::string, sync::Refund>>> AcceptedRefundsOfSale(
      const std::string& sold_at, const std::string& checkout_id) override {
    HQ_PREPARE(st,
               "SELECT terminal_id, body FROM refunds WHERE sold_at = ? AND checkout_id = ? AND "
               "refused = 0");
    st.Bind(1, sold_at).Bind(2, checkout_id);
    std::vector<std::pair<std::string, sync::Refund>> out;
    while (st.Step()) {
      auto r = StoredRefund(st.Text(1));
      if (!r.ok())
        return Status::Error(ErrorCode::kInternal, "stored refund: " + r.status().message());
      out.emplace_back(st.Text(0), std::move(*r));
    }
    if (!st.status().ok()) return st.status();
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
      return std::tie(a.second.at_ms, a.first, a.second.refund_id) <
             std::tie(b.second.at_ms, b.first, b.second.refund_id);
    });
    return out;
  }

  Result<std::vector<CashierRefunds>> RefundsByCashier(const std::string& store_id, int64_t from_ms,
                                                       int64_t to_ms) override {
    HQ_PREPARE(st,
               "SELECT r.cashier_id, r.terminal_id, t.store_id, count(*), sum(r.refund_cents), "
               "sum(CASE WHEN r.refused = 0 THEN 0 ELSE 1 END), "
               "sum(CASE WHEN r.sold_at = r.terminal_id THEN 0 ELSE 1 END) "
               "FROM refunds r LEFT JOIN terminals t ON t.terminal_id = r.terminal_id "
               "WHERE r.at_ms >= ?1 AND r.at_ms < ?2 AND (?3 = '' OR t.store_id = ?3) "
               "GROUP BY r.cashier_id, r.terminal_id, t.store_id "
               "ORDER BY sum(r.refund_cents) DESC, r.cashier_id, r.terminal_id");
    st.Bind(1, from_ms).Bind(2, to_ms).Bind(3, store_id);
    return ReadAll<CashierRefunds>(st, [](const Stmt& r) -> CashierRefunds {
      return {r.Text(0), r.Text(1), r.Text(2), r.Int(3), r.Int(4), r.Int(5), r.Int(6)};
    });
  }

  // NOT EXISTS, never NOT IN over the scope: PostgreSQL hashes a NOT IN subquery only while
  // it fits in work_mem (about 250,000 members at the default 4 MB) and otherwise scans the
  // whole scope once per held member; the anti-join stays one pass at any size.
  Result<std::vector<uint64_t>> HeldOutOfScope(const std::string& terminal_id,
                                               const std::string& store_id, int64_t since_ms,
                                               int64_t limit) override {
    HQ_PREPARE(st,
               "SELECT t.member_id FROM terminal_members t WHERE t.terminal_id = ?1 AND NOT "
               "EXISTS (SELECT 1 FROM store_members s WHERE s.store_id = ?2 AND s.member_id = "
               "t.member_id AND (s.reason = 'enrolled' OR s.last_at_ms >= ?3)) ORDER BY "
               "t.member_id LIMIT ?4");
    st.Bind(1, terminal_id).Bind(2, store_id).Bind(3, since_ms).Bind(4, limit);
    return ReadAll<uint64_t>(st, [](const Stmt& r) { return static_cast<uint64_t>(r.Int(0)); });
  }

  Status ForgetHolding(const std::string& terminal_id, uint64_t member_id) override {
    if (Status s = FlushSets(); !s.ok()) return s;  // a held member's pending item first
    {
      HQ_PREPARE(st, "DELETE FROM terminal_members WHERE terminal_id = ? AND member_id = ?");
      st.Bind(1, terminal_id).Bind(2, member_id);
      if (Status s = st.Run(); !s.ok()) return s;
    }
    if (db_->Changes() == 0) return Status::Ok();
    auto set = OpenBalanceSet(terminal_id);
    if (!set.ok()) return set.status();
    const recon::Item item = recon::MemberBalanceItem(std::to_string(member_id), 0, 0);
    return (*set)->Remove(item.id);
  }

  Status AddReceiptKey(const std::string& terminal_id, const std::string& public_key_b64,
                       int64_t at_ms) override {
    HQ_PREPARE(st,
               "INSERT INTO receipt_keys (terminal_id, public_key, certified_at_ms) VALUES "
               "(?,?,?) ON CONFLICT DO NOTHING");
    st.Bind(1, terminal_id).Bind(2, public_key_b64).Bind(3, at_ms);
    return st.Run();
  }

  // --- sign-up claims
  static constexpr const char* kClaimCols =
      "terminal_id, checkout_id, member_id, committed_at_ms, expires_at_s, claimed_at_ms, status, "
      "reason, points, entry_id, credited_at_ms, clawed_back";
  static ClaimRecord ReadClaim(const Stmt& r) {
    ClaimRecord c;
    c.terminal_id = r.Text(0);
    c.checkout_id = r.Text(1);
    c.member_id = static_cast<uint64_t>(r.Int(2));
    c.committed_at_ms = r.Int(3);
    c.expires_at_s = r.Int(4);
    c.claimed_at_ms = r.Int(5);
    c.status = r.Text(6);
    c.reason = r.Text(7);
    c.points = r.Int(8);
    c.entry_id = r.Text(9);
    c.credited_at_ms = r.Int(10);
    c.clawed_back = r.Int(11);
    return c;
  }

  Result<bool> InsertClaim(const ClaimRecord& c) override {
    HQ_PREPARE(st, std::string("INSERT INTO claims (") + kClaimCols +
                       ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING");
    st.Bind(1, c.terminal_id)
        .Bind(2, c.checkout_id)
        .Bind(3, c.member_id)
        .Bind(4, c.committed_at_ms)
        .Bind(5, c.expires_at_s)
        .Bind(6, c.claimed_at_ms);
    st.Bind(7, c.status)
        .Bind(8, c.reason)
        .Bind(9, c.points)
        .Bind(10, c.entry_id)
        .Bind(11, c.credited_at_ms)
        .Bind(12, c.clawed_back);
    if (Status s = st.Run(); !s.ok()) return s;
    return db_->Changes() > 0;
  }

  Result<std::optional<ClaimRecord>> GetClaim(const std::string& terminal_id,
                                              const std::string& checkout_id) override {
    HQ_PREPARE(st, std::string("SELECT ") + kClaimCols +
                       " FROM claims WHERE terminal_id = ? AND checkout_id = ?");
    st.Bind(1, terminal_id).Bind(2, checkout_id);
    if (st.Step()) return std::optional<ClaimRecord>(ReadClaim(st));
    if (!st.status().ok()) return st.status();
    return std::optional<ClaimRecord>();
  }

  Status UpdateClaim(const ClaimRecord& c) override {
    HQ_PREPARE(st,
               "UPDATE claims SET status = ?, reason = ?, points = ?, entry_id = ?, "
               "credited_at_ms = ?, clawed_back = ? WHERE terminal_id = ? AND checkout_id = ?");
    st.Bind(1, c.status)
        .Bind(2, c.reason)
        .Bind(3, c.points)
        .Bind(4, c.entry_id)
        .Bind(5, c.credited_at_ms)
        .Bind(6, c.clawed_back);
    st.Bind(7, c.terminal_id).Bind(8, c.checkout_id);
    if (Status s = st.Run(); !s.ok()) return s;
    if (db_->Changes() != 1)
      return Status::Error(ErrorCode::kInternal,
                           "no claim of " + c.terminal_id + "/" + c.checkout_id + " to update");
    return Status::Ok();
  }

  Result<std::vector<ClaimRecord>> ClaimsOfMember(uint64_t member_id) override {
    HQ_PREPARE(st, std::string("SELECT ") + kClaimCols +
                       " FROM claims WHERE member_id = ? ORDER BY claimed_at_ms, terminal_id, "
                       "checkout_id");
    st.Bind(1, member_id);
    return ReadAll<ClaimRecord>(st, [](const Stmt& r) { return ReadClaim(r); });
  }

  Result<std::vector<ClaimRecord>> PendingClaims(const std::string& terminal_id) override {
    HQ_PREPARE(st, std::string("SELECT ") + kClaimCols +
                       " FROM claims WHERE terminal_id = ? AND status = 'pending' ORDER BY "
                       "checkout_id");
    st.Bind(1, terminal_id);
    return ReadAll<ClaimRecord>(st, [](const Stmt& r) { return ReadClaim(r); });
  }

  Result<std::map<std::string, bool>> CheckoutVerdicts(
      const std::string& terminal_id, const std::vector<std::string>& checkout_ids) override {
    std::map<std::string, bool> out;
    if (Status s = EachChunk(
            "SELECT checkout_id, refused FROM checkouts WHERE terminal_id = ?1 AND checkout_id " +
                B::InTexts(2),
            2, checkout_ids, [&](Stmt& st) { st.Bind(1, terminal_id); },
            [&](const Stmt& r) {
              out[r.Text(0)] = r.Int(1) != 0;
              return Status::Ok();
            });
        !s.ok())
      return s;
    if (B::InTransaction(*db_)) {
      for (const auto& id : checkout_ids)
        if (out.count(id) == 0) absent_checkouts_.insert({terminal_id, id});
    }
    return out;
  }

  Result<std::optional<bool>> CheckoutRefused(const std::string& terminal_id,
                                              const std::string& checkout_id) override {
    HQ_PREPARE(st, "SELECT refused FROM checkouts WHERE terminal_id = ? AND checkout_id = ?");
    st.Bind(1, terminal_id).Bind(2, checkout_id);
    if (st.Step()) return std::optional<bool>(st.Int(0) != 0);
    if (!st.status().ok()) return st.status();
    return std::optional<bool>();
  }

  Result<std::vector<sync::Refund>> AcceptedRefundsOf(const std::string& terminal_id,
                                                      const std::string& checkout_id) override {
    auto refunds = Refunds(
        "SELECT body FROM refunds WHERE terminal_id = ? AND checkout_id = ? AND refused = 0",
        terminal_id, checkout_id);
    if (!refunds.ok()) return refunds.status();
    std::vector<sync::Refund>& out = *refunds;
    std::sort(out.begin(), out.end(), [](const sync::Refund& a, const sync::Refund& b) {
      return a.at_ms != b.at_ms ? a.at_ms < b.at_ms : a.refund_id < b.refund_id;
    });
    return std::move(*refunds);
  }

  Status AddMemberState(uint64_t member_id, int64_t at_ms, const std::string& tier,
                        const std::string& status) override {
    HQ_PREPARE(st, "INSERT INTO member_states (member_id, at_ms, tier, status) VALUES (?,?,?,?)");
    st.Bind(1, member_id).Bind(2, at_ms).Bind(3, tier).Bind(4, status);
    return st.Run();
  }

  Result<std::map<uint64_t, std::vector<MemberStateRecord>>> MemberStateHistories(
      const std::vector<uint64_t>& member_ids) override {
    std::map<uint64_t, std::vector<MemberStateRecord>> out;
    if (Status s = EachChunk(
            "SELECT member_id, at_ms, tier, status FROM member_states WHERE member_id " +
                B::InInts(1) + " ORDER BY member_id, at_ms, rowid",
            1, member_ids, NoBind,
            [&](const Stmt& r) {
              out[static_cast<uint64_t>(r.Int(0))].push_back({r.Int(1), r.Text(2), r.Text(3)});
              return Status::Ok();
            });
        !s.ok())
      return s;
    return out;
  }

  Result<std::vector<MemberStateRecord>> MemberStateHistory(uint64_t member_id) override {
    HQ_PREPARE(
        st,
        "SELECT at_ms, tier, status FROM member_states WHERE member_id = ? ORDER BY at_ms, rowid");
    st.Bind(1, member_id);
    return ReadAll<MemberStateRecord>(st, [&](const Stmt& r) -> MemberStateRecord {
      return {r.Int(0), r.Text(1), r.Text(2)};
    });
  }

  Status AddTerminalDownload(const std::string& terminal_id, int64_t at_ms,
                             int64_t cursor_seq) override {
    // Two pages in one millisecond share a row, which keeps the later page's cursor (the
    // earlier one's, refused if it is ever named again, costs a download from the start).
    HQ_PREPARE(st,
               "INSERT INTO terminal_downloads (terminal_id, at_ms, cursor_seq) VALUES (?,?,?) ON "
               "CONFLICT (terminal_id, at_ms) DO UPDATE SET cursor_seq = CASE WHEN "
               "terminal_downloads.cursor_seq IS NULL OR excluded.cursor_seq > "
               "terminal_downloads.cursor_seq THEN excluded.cursor_seq ELSE "
               "terminal_downloads.cursor_seq END");
    st.Bind(1, terminal_id).Bind(2, at_ms).Bind(3, cursor_seq);
    return st.Run();
  }

  Status AddMemberDownloads(const std::string& terminal_id, const std::vector<uint64_t>& member_ids,
                            int64_t at_ms) override {
    for (uint64_t id : member_ids) {  // a look-up's few, a repair's at most 1000
      HQ_PREPARE(st,
                 "INSERT INTO member_downloads (terminal_id, member_id, at_ms) VALUES (?,?,?) ON "
                 "CONFLICT DO NOTHING");
      st.Bind(1, terminal_id).Bind(2, id).Bind(3, at_ms);
      if (Status s = st.Run(); !s.ok()) return s;
    }
    return Status::Ok();
  }

  Status ForgetDownloadsPast(const std::string& terminal_id, int64_t cursor_seq) override {
    HQ_PREPARE(st, "DELETE FROM terminal_downloads WHERE terminal_id = ? AND cursor_seq > ?");
    st.Bind(1, terminal_id).Bind(2, cursor_seq);
    return st.Run();
  }

  Result<bool> CursorGiven(const std::string& terminal_id, int64_t cursor_seq) override {
    HQ_PREPARE(st,
               "SELECT CASE WHEN EXISTS (SELECT 1 FROM terminal_downloads WHERE terminal_id = ?1 "
               "AND cursor_seq = ?2) OR NOT EXISTS (SELECT 1 FROM terminal_downloads WHERE "
               "terminal_id = ?1 AND cursor_seq IS NOT NULL) THEN 1 ELSE 0 END");
    st.Bind(1, terminal_id).Bind(2, cursor_seq);
    if (!st.Step()) return Fail(st);
    return st.Int(0) == 1;
  }

  Result<Downloads> DownloadsAround(const std::string& terminal_id, int64_t at_ms) override {
    HQ_PREPARE(st,
               "SELECT (SELECT max(at_ms) FROM terminal_downloads WHERE terminal_id = ?1 AND at_ms "
               "<= ?2), "
               "(SELECT min(at_ms) FROM terminal_downloads WHERE terminal_id = ?1 AND at_ms > ?2)");
    st.Bind(1, terminal_id).Bind(2, at_ms);
    if (!st.Step()) return Fail(st);
    return Downloads{st.OptInt(0), st.OptInt(1)};
  }

  Result<std::map<uint64_t, std::vector<int64_t>>> MemberDownloads(
      const std::string& terminal_id, const std::vector<uint64_t>& member_ids) override {
    std::map<uint64_t, std::vector<int64_t>> out;
    if (Status s = EachChunk(
            "SELECT member_id, at_ms FROM member_downloads WHERE terminal_id = ?1 AND member_id " +
                B::InInts(2) + " ORDER BY member_id, at_ms",
            2, member_ids, [&](Stmt& st) { st.Bind(1, terminal_id); },
            [&](const Stmt& r) {
              out[static_cast<uint64_t>(r.Int(0))].push_back(r.Int(1));
              return Status::Ok();
            });
        !s.ok())
      return s;
    return out;
  }

  Result<std::vector<sync::Refund>> RefundsOf(const std::string& terminal_id,
                                              const std::string& checkout_id) override {
    return Refunds(
        "SELECT body FROM refunds WHERE terminal_id = ? AND checkout_id = ? ORDER BY refund_id",
        terminal_id, checkout_id);
  }

  Result<int64_t> CountCheckouts(const std::string& terminal_id) override {
    return Count("SELECT count(*) FROM checkouts WHERE terminal_id = ?", terminal_id);
  }

  Result<std::vector<std::pair<std::string, std::string>>> CheckoutsWithCode(
      const std::string& code_hash) override {
    return Pairs(
        "SELECT terminal_id, checkout_id FROM checkouts WHERE code_hash = ? ORDER BY rowid",
        code_hash);
  }
  Result<std::vector<std::pair<std::string, std::string>>> CheckoutsWithCoupon(
      const std::string& coupon_id) override {
    return Pairs(
        "SELECT terminal_id, checkout_id FROM checkouts WHERE coupon_id = ? ORDER BY rowid",
        coupon_id);
  }

  // The spend of a window is kept in spend_totals once it was summed inside a transaction,
  // and every write that changes it changes or drops that row in the same transaction
  // (SpendTotals* below): a row, when there is one, is the sum of the rows, so the answer
  // is the same either way. A row is kept only while |cents| <= 2^62, so that adding one
  // checkout (at most kMaxCents) can never overflow it; past that the rows are summed.
  //
  // Inside a write transaction the rows of the members PrefetchSpends read are kept here
  // (spend_rows_: every row of each such member), changed here by the same rules, and
  // written back before the commit (FlushSpends): an upload's checkouts then cost no
  // spend_totals statement each.
  Result<std::map<uint64_t, int64_t>> KeptMemberSpends(const std::vector<uint64_t>& member_ids,
                                                       int64_t from_ms, int64_t to_ms) override {
    if (Status s = FlushSpends(); !s.ok()) return s;
    std::map<uint64_t, int64_t> out;
    if (Status s = EachChunk(
            "SELECT member_id, cents FROM spend_totals WHERE member_id " + B::InInts(1) +
                " AND from_ms = ?2 AND to_ms = ?3",
            1, member_ids, [&](Stmt& st) { st.Bind(2, from_ms).Bind(3, to_ms); },
            [&](const Stmt& r) {
              out[static_cast<uint64_t>(r.Int(0))] = r.Int(1);
              return Status::Ok();
            });
        !s.ok())
      return s;
    return out;
  }

  Result<int64_t> MemberSpend(uint64_t member_id, int64_t from_ms, int64_t to_ms) override {
    auto known = spend_rows_.find(member_id);
    if (known != spend_rows_.end()) {
      for (const auto& r : known->second)
        if (r.from_ms == from_ms && r.to_ms == to_ms) return r.cents;
    } else {
      HQ_PREPARE(
          t, "SELECT cents FROM spend_totals WHERE member_id = ? AND from_ms = ? AND to_ms = ?");
      t.Bind(1, member_id).Bind(2, from_ms).Bind(3, to_ms);
      if (t.Step()) return t.Int(0);
      if (!t.status().ok()) return t.status();
    }
    // Summed here, in 128 bits and saturating: an SQL sum() fails on overflow, and a
    // month's spend only ever meets thresholds.
    __int128 sum = 0;
    {
      HQ_PREPARE(st, SpendRowsSql(false));
      st.Bind(1, member_id).Bind(2, from_ms).Bind(3, to_ms);
      while (st.Step()) sum += st.Int(1);
      if (!st.status().ok()) return st.status();
    }
    // Kept only by a transaction's writer: a read outside one (a GET) writes nothing.
    if (sum >= -kSpendTotalLimit && sum <= kSpendTotalLimit && B::InTransaction(*db_)) {
      if (known != spend_rows_.end()) {
        known->second.push_back({from_ms, to_ms, static_cast<int64_t>(sum)});
        spend_dirty_.insert(member_id);
      } else {
        HQ_PREPARE(put,
                   "INSERT INTO spend_totals (member_id, from_ms, to_ms, cents) VALUES (?,?,?,?) "
                   "ON CONFLICT (member_id, from_ms, to_ms) DO UPDATE SET cents = excluded.cents");
        put.Bind(1, member_id).Bind(2, from_ms).Bind(3, to_ms).Bind(4, static_cast<int64_t>(sum));
        if (Status s = put.Run(); !s.ok()) return s;
      }
    }
    return Saturate(sum);
  }

  Result<int64_t> MemberCheckoutTotal(uint64_t member_id, int64_t from_ms, int64_t to_ms) override {
    HQ_PREPARE(st,
               "SELECT total_due_cents FROM checkouts WHERE member_id = ? AND committed_at_ms >= ? "
               "AND committed_at_ms < ? AND refused = 0");
    st.Bind(1, member_id).Bind(2, from_ms).Bind(3, to_ms);
    __int128 sum = 0;
    while (st.Step()) sum += st.Int(0);
    if (!st.status().ok()) return st.status();
    return Saturate(sum);
  }

  Status PrefetchSpends(const std::vector<uint64_t>& member_ids, int64_t from_ms,
                        int64_t to_ms) override {
    if (!B::InTransaction(*db_)) return Status::Ok();
    std::vector<uint64_t> ids;
    for (uint64_t id : member_ids)
      if (spend_rows_.count(id) == 0) ids.push_back(id);
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    if (ids.empty()) return Status::Ok();
    std::map<uint64_t, std::vector<SpendRow>> rows;
    if (Status s = EachChunk(
            "SELECT member_id, from_ms, to_ms, cents FROM spend_totals WHERE member_id " +
                B::InInts(1),
            1, ids, NoBind,
            [&](const Stmt& r) {
              rows[static_cast<uint64_t>(r.Int(0))].push_back({r.Int(1), r.Int(2), r.Int(3)});
              return Status::Ok();
            });
        !s.ok())
      return s;
    for (uint64_t id : ids) spend_stored_[id] = rows[id];
    std::vector<uint64_t> unsummed;  // no row for the window yet: summed as MemberSpend would
    for (uint64_t id : ids) {
      const auto& held = rows[id];
      if (std::none_of(held.begin(), held.end(),
                       [&](const SpendRow& r) { return r.from_ms == from_ms && r.to_ms == to_ms; }))
        unsummed.push_back(id);
    }
    std::map<uint64_t, __int128> sums;
    if (Status s = EachChunk(
            SpendRowsSql(true), 1, unsummed, [&](Stmt& st) { st.Bind(2, from_ms).Bind(3, to_ms); },
            [&](const Stmt& r) {
              sums[static_cast<uint64_t>(r.Int(0))] += r.Int(1);
              return Status::Ok();
            });
        !s.ok())
      return s;
    for (uint64_t id : unsummed) {
      const __int128 sum = sums[id];
      if (sum < -kSpendTotalLimit || sum > kSpendTotalLimit) continue;
      rows[id].push_back({from_ms, to_ms, static_cast<int64_t>(sum)});
      spend_dirty_.insert(id);
    }
    for (uint64_t id : ids) spend_rows_[id] = std::move(rows[id]);
    return Status::Ok();
  }

  Status PruneSpendTotals(int64_t ended_by_ms) override {
    if (Status s = FlushSpends(); !s.ok()) return s;
    spend_rows_.clear();
    spend_stored_.clear();
    HQ_PREPARE(st, "DELETE FROM spend_totals WHERE to_ms <= ?");
    st.Bind(1, ended_by_ms);
    return st.Run();
  }

  Result<int64_t> PruneDownloads(int64_t before_ms) override {
    int64_t removed = 0;
    // The members sent alone first: they are measured against the page that stays.
    for (const char* sql :
         {"DELETE FROM member_downloads WHERE at_ms < (SELECT max(u.at_ms) FROM "
          "terminal_downloads u WHERE u.terminal_id = member_downloads.terminal_id AND u.at_ms < "
          "?1)",
          "DELETE FROM terminal_downloads WHERE at_ms < ?1 AND at_ms < (SELECT max(u.at_ms) FROM "
          "terminal_downloads u WHERE u.terminal_id = terminal_downloads.terminal_id AND "
          "u.at_ms < ?1)"}) {
      HQ_PREPARE(st, sql);
      st.Bind(1, before_ms);
      if (Status s = st.Run(); !s.ok()) return s;
      removed += db_->Changes();
    }
    return removed;
  }

  // --- coupons, devices, revocations, adjustments
  Status PutCoupon(const CouponRecord& c) override {
    auto seq = NextChange();
    if (!seq.ok()) return seq.status();
    HQ_PREPARE(st, std::string("INSERT INTO coupons (") + kCouponCols +
                       ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?)");
    model::BindCouponColumns(st, c.coupon);
    constexpr int n = model::kCouponColumnCount;
    st.Bind(n + 1, c.body_hash).Bind(n + 2, c.used_by_terminal).Bind(n + 3, c.used_by_checkout);
    st.Bind(n + 4, *seq);
    return st.Run();
  }

  Result<std::optional<CouponRecord>> GetCoupon(const std::string& coupon_id) override {
    HQ_PREPARE(st, std::string("SELECT ") + kCouponCols + " FROM coupons WHERE coupon_id = ?");
    st.Bind(1, coupon_id);
    if (st.Step()) return std::optional<CouponRecord>(ReadCoupon(st));
    if (!st.status().ok()) return st.status();
    return std::optional<CouponRecord>();
  }

  Status MarkCouponUsed(const std::string& coupon_id, const std::string& terminal_id,
                        const std::string& checkout_id) override {
    auto seq = NextChange();
    if (!seq.ok()) return seq.status();
    HQ_PREPARE(st,
               "UPDATE coupons SET used_by_terminal = ?, used_by_checkout = ?, change_seq = ? "
               "WHERE coupon_id = ? AND used_by_checkout = ''");
    st.Bind(1, terminal_id).Bind(2, checkout_id).Bind(3, *seq).Bind(4, coupon_id);
    return st.Run();
  }

  Result<std::vector<CouponRecord>> CouponsChanged(int64_t after, int64_t up_to) override {
    HQ_PREPARE(st,
               std::string("SELECT ") + kCouponCols +
                   " FROM coupons WHERE change_seq > ? AND change_seq <= ? ORDER BY change_seq");
    st.Bind(1, after).Bind(2, up_to);
    return ReadAll<CouponRecord>(st, [&](const Stmt& r) { return ReadCoupon(r); });
  }

  Status PutDevice(const DeviceRecord& d) override {
    HQ_PREPARE(
        st,
        "INSERT INTO devices (device_public_key, member_id, key_id, not_after_s, issued_at_ms) "
        "VALUES (?,?,?,?,?) ON CONFLICT (device_public_key) DO UPDATE SET member_id = "
        "excluded.member_id, key_id = excluded.key_id, not_after_s = excluded.not_after_s, "
        "issued_at_ms = excluded.issued_at_ms");
    st.Bind(1, d.device_public_key).Bind(2, d.member_id).Bind(3, d.key_id).Bind(4, d.not_after_s);
    st.Bind(5, d.issued_at_ms);
    return st.Run();
  }

  Status Revoke(const std::string& device_public_key, int64_t at_ms) override {
    {
      HQ_PREPARE(q, "SELECT 1 FROM revocations WHERE device_public_key = ?");
      q.Bind(1, device_public_key);
      if (q.Step()) return Status::Ok();
      if (!q.status().ok()) return q.status();
    }
    auto seq = NextChange();
    if (!seq.ok()) return seq.status();
    HQ_PREPARE(st, "INSERT INTO revocations (device_public_key, at_ms, change_seq) VALUES (?,?,?)");
    st.Bind(1, device_public_key).Bind(2, at_ms).Bind(3, *seq);
    return st.Run();
  }

  Result<std::vector<std::string>> RevocationsChanged(int64_t after, int64_t up_to) override {
    HQ_PREPARE(st,
               "SELECT device_public_key FROM revocations WHERE change_seq > ? AND change_seq <= ? "
               "ORDER BY change_seq");
    st.Bind(1, after).Bind(2, up_to);
    return ReadAll<std::string>(st, [&](const Stmt& r) { return r.Text(0); });
  }

  Result<std::optional<AdjustmentRecord>> GetAdjustment(const std::string& id) override {
    HQ_PREPARE(st,
               "SELECT adjustment_id, member_id, points, reason, entry_id, at_ms FROM adjustments "
               "WHERE adjustment_id = ?");
    st.Bind(1, id);
    if (st.Step()) {
      return std::optional<AdjustmentRecord>(
          AdjustmentRecord{st.Text(0), static_cast<uint64_t>(st.Int(1)), st.Int(2), st.Text(3),
                           st.Text(4), st.Int(5)});
    }
    if (!st.status().ok()) return st.status();
    return std::optional<AdjustmentRecord>();
  }

  Status PutAdjustment(const AdjustmentRecord& a) override {
    HQ_PREPARE(
        st,
        "INSERT INTO adjustments (adjustment_id, member_id, points, reason, entry_id, at_ms) "
        "VALUES (?,?,?,?,?,?)");
    st.Bind(1, a.adjustment_id)
        .Bind(2, a.member_id)
        .Bind(3, a.points)
        .Bind(4, a.reason)
        .Bind(5, a.entry_id);
    st.Bind(6, a.at_ms);
    return st.Run();
  }

  // --- conflicts and terminals
  Status AddConflict(const ConflictRecord& c) override {
    HQ_PREPARE(st, std::string("INSERT INTO conflicts (") + kConflictCols +
                       ") VALUES (?,?,?,?,?,?,?) ON CONFLICT DO NOTHING");
    st.Bind(1, c.kind)
        .Bind(2, c.at_ms)
        .Bind(3, c.terminal_id)
        .Bind(4, c.other_terminal_id)
        .Bind(5, c.member_id);
    st.Bind(6, c.detail).Bind(7, c.dedupe_key);
    return st.Run();
  }

  Result<std::vector<ConflictRecord>> ConflictsOfMember(uint64_t member_id) override {
    HQ_PREPARE(st, std::string("SELECT ") + kConflictCols +
                       " FROM conflicts WHERE member_id = ? ORDER BY id");
    st.Bind(1, member_id);
    return ReadConflicts(st);
  }

  Result<std::vector<ConflictRecord>> ConflictsOfTerminal(const std::string& terminal_id) override {
    HQ_PREPARE(st,
               std::string("SELECT ") + kConflictCols +
                   " FROM conflicts WHERE terminal_id = ?1 OR other_terminal_id = ?1 ORDER BY id");
    st.Bind(1, terminal_id);
    return ReadConflicts(st);
  }

  Status PutTerminal(const TerminalRecord& t) override {
    HQ_PREPARE(st,
               "INSERT INTO terminals (terminal_id, store_id, first_seen_ms, last_sync_ms, "
               "head_seq, head_hash) VALUES (?,?,?,?,?,?) ON CONFLICT (terminal_id) DO UPDATE SET "
               "store_id = excluded.store_id, first_seen_ms = excluded.first_seen_ms, "
               "last_sync_ms = excluded.last_sync_ms, head_seq = excluded.head_seq, "
               "head_hash = excluded.head_hash");
    st.Bind(1, t.terminal_id).Bind(2, t.store_id).Bind(3, t.first_seen_ms).Bind(4, t.last_sync_ms);
    st.Bind(5, t.head_seq).Bind(6, t.head_hash);
    return st.Run();
  }

  Result<std::optional<TerminalRecord>> GetTerminal(const std::string& terminal_id) override {
    HQ_PREPARE(st,
               "SELECT terminal_id, store_id, first_seen_ms, last_sync_ms, head_seq, head_hash "
               "FROM terminals "
               "WHERE terminal_id = ?");
    st.Bind(1, terminal_id);
    if (st.Step()) {
      return std::optional<TerminalRecord>(
          TerminalRecord{st.Text(0), st.Text(1), st.Int(2), st.Int(3), st.Int(4), st.Text(5)});
    }
    if (!st.status().ok()) return st.status();
    return std::optional<TerminalRecord>();
  }

  Result<std::vector<TerminalSummary>> ListTerminals(const TerminalFilter& f) override {
    // Only the filters asked for are in the text: each combination is one prepared statement.
    std::string sql =
        "SELECT t.terminal_id, t.store_id, t.first_seen_ms, t.last_sync_ms, t.head_seq, "
        "t.head_hash, (SELECT count(*) FROM entries e WHERE e.terminal_id = t.terminal_id), "
        "(SELECT count(*) FROM checkouts c WHERE c.terminal_id = t.terminal_id), "
        "(SELECT count(*) FROM conflicts k WHERE k.terminal_id = t.terminal_id OR "
        "k.other_terminal_id = t.terminal_id), "
        "(SELECT count(*) FROM conflicts k WHERE k.terminal_id = t.terminal_id AND k.kind IN "
        "('chain_fork', 'chain_gap', 'entry_mismatch')) "
        "FROM terminals t WHERE t.terminal_id > ?";
    if (!f.store_id.empty()) sql += " AND t.store_id = ?";
    if (f.synced_before_ms) sql += " AND t.last_sync_ms < ?";
    if (f.synced_since_ms) sql += " AND t.last_sync_ms >= ?";
    sql += " ORDER BY t.terminal_id LIMIT ?";
    HQ_PREPARE(st, sql);
    int i = 1;
    st.Bind(i++, f.after);
    if (!f.store_id.empty()) st.Bind(i++, f.store_id);
    if (f.synced_before_ms) st.Bind(i++, *f.synced_before_ms);
    if (f.synced_since_ms) st.Bind(i++, *f.synced_since_ms);
    st.Bind(i, f.limit);
    std::vector<TerminalSummary> out;
    while (st.Step()) {
      out.push_back(
          {TerminalRecord{st.Text(0), st.Text(1), st.Int(2), st.Int(3), st.Int(4), st.Text(5)},
           st.Int(6), st.Int(7), st.Int(8), st.Int(9)});
    }
    if (!st.status().ok()) return st.status();
    return out;
  }

  Result<FleetCounts> CountFleet(int64_t since_ms, int64_t before_ms) override {
    FleetCounts out;
    {
      HQ_PREPARE(st,
                 "SELECT count(*), sum(CASE WHEN last_sync_ms >= ? THEN 1 ELSE 0 END), "
                 "sum(CASE WHEN last_sync_ms < ? THEN 1 ELSE 0 END) FROM terminals");
      st.Bind(1, since_ms).Bind(2, before_ms);
      if (!st.Step()) return Fail(st);
      out.terminals = st.Int(0);
      out.synced_since = st.Int(1);  // sum() of no rows is NULL: 0
      out.synced_before = st.Int(2);
    }
    HQ_PREPARE(st, "SELECT kind, count(*) FROM conflicts GROUP BY kind");
    while (st.Step()) out.conflicts[st.Text(0)] = st.Int(1);
    if (!st.status().ok()) return st.status();
    return out;
  }

  Result<std::optional<std::string>> GetMeta(const std::string& key) override {
    HQ_PREPARE(st, "SELECT value FROM meta WHERE key = ?");
    st.Bind(1, key);
    if (st.Step()) return std::optional<std::string>(st.Text(0));
    if (!st.status().ok()) return st.status();
    return std::optional<std::string>();
  }

  Status PutMeta(const std::string& key, const std::string& value) override {
    HQ_PREPARE(st,
               "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value "
               "= excluded.value");
    st.Bind(1, key).Bind(2, value);
    return st.Run();
  }

  // --- reconciliation sets
  // In a transaction, set writes wait for its commit (FlushSets): an upload changes the same
  // sets thousands of times, and PostgreSQL takes them in a few statements. Outside one they
  // go at once, the same way.
  Status AddToTerminalSet(const std::string& terminal_id, const recon::Item& item) override {
    auto set = OpenTerminalSet(terminal_id);
    if (!set.ok()) return set.status();
    pending_items_.emplace_back(*set, item);
    return SetsWritten();
  }

  // --- member scope
  // The members of a store's scope: parameter `store` the store, `since` the moment.
  static std::string InScope(int store, int since) {
    return "(SELECT member_id FROM store_members WHERE store_id = ?" + std::to_string(store) +
           " AND (reason = 'enrolled' OR last_at_ms >= ?" + std::to_string(since) + "))";
  }

  // A scope row's moment is kept to the end of its UTC day: a member stays in the scope at
  // most a day past member_scope_months, never less, and their other sales there that day
  // write nothing.
  static int64_t ScopeDayEnd(int64_t at_ms) {
    constexpr int64_t kDayMs = 86'400'000;
    const int64_t into = ((at_ms % kDayMs) + kDayMs) % kDayMs;
    if (at_ms > std::numeric_limits<int64_t>::max() - kDayMs) return at_ms;
    return at_ms - into + kDayMs - 1;
  }

  Result<bool> AddStoreMember(const std::string& store_id, uint64_t member_id,
                              const std::string& reason, int64_t at, int64_t since_ms) override {
    const int64_t at_ms = ScopeDayEnd(at);
    std::optional<std::pair<std::string, int64_t>> had;
    {
      HQ_PREPARE(
          st, "SELECT reason, last_at_ms FROM store_members WHERE store_id = ? AND member_id = ?");
      st.Bind(1, store_id).Bind(2, member_id);
      if (st.Step()) had.emplace(st.Text(0), st.Int(1));
      if (!st.status().ok()) return st.status();
    }
    const bool in_scope = had && (had->first == "enrolled" || had->second >= since_ms);
    const std::string keep = had && had->first == "enrolled" ? "enrolled" : reason;
    const int64_t last = had ? std::max(had->second, at_ms) : at_ms;
    if (had && had->first == keep && had->second == last) return !in_scope;
    HQ_PREPARE(st,
               "INSERT INTO store_members (store_id, member_id, reason, last_at_ms) VALUES "
               "(?,?,?,?) ON CONFLICT (store_id, member_id) DO UPDATE SET reason = "
               "excluded.reason, last_at_ms = excluded.last_at_ms");
    st.Bind(1, store_id).Bind(2, member_id).Bind(3, keep).Bind(4, last);
    if (Status s = st.Run(); !s.ok()) return s;
    return !in_scope;
  }

  Result<std::set<uint64_t>> AddStoreMembers(
      const std::string& store_id, const std::vector<std::pair<uint64_t, int64_t>>& members,
      const std::string& reason, int64_t since_ms) override {
    std::set<uint64_t> fresh;
    std::vector<uint64_t> ids;
    for (const auto& [id, at] : members) ids.push_back(id);
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    std::map<uint64_t, std::pair<std::string, int64_t>> row;  // as AddStoreMember leaves it
    if (Status s = EachChunk(
            "SELECT member_id, reason, last_at_ms FROM store_members WHERE store_id = ?1 AND "
            "member_id " +
                B::InInts(2),
            2, ids, [&](Stmt& st) { st.Bind(1, store_id); },
            [&](const Stmt& r) {
              row[static_cast<uint64_t>(r.Int(0))] = {r.Text(1), r.Int(2)};
              return Status::Ok();
            });
        !s.ok())
      return s;
    std::set<uint64_t> changed;  // rows to write: new, or with a later day or another reason
    for (const auto& [id, at] : members) {  // each call in turn, on the row as it stands
      const int64_t at_ms = ScopeDayEnd(at);
      auto had = row.find(id);
      const bool in_scope =
          had != row.end() && (had->second.first == "enrolled" || had->second.second >= since_ms);
      if (!in_scope) fresh.insert(id);
      std::pair<std::string, int64_t> now;
      if (had == row.end()) {
        now = {reason, at_ms};
      } else {
        now = {had->second.first == "enrolled" ? "enrolled" : reason,
               std::max(had->second.second, at_ms)};
      }
      if (had == row.end() || now != had->second) {
        row[id] = std::move(now);
        changed.insert(id);
      }
    }
    std::vector<std::pair<uint64_t, std::pair<std::string, int64_t>>> rows;
    for (uint64_t id : changed) rows.emplace_back(id, row[id]);
    if (Status s = InsertRows(
            "INSERT INTO store_members (store_id, member_id, reason, last_at_ms)", 4, rows,
            " ON CONFLICT (store_id, member_id) DO UPDATE SET reason = excluded.reason, "
            "last_at_ms = excluded.last_at_ms",
            false,
            [&](Stmt& st, int b, const std::pair<uint64_t, std::pair<std::string, int64_t>>& row) {
              st.Bind(b + 1, store_id).Bind(b + 2, row.first);
              st.Bind(b + 3, row.second.first).Bind(b + 4, row.second.second);
            });
        !s.ok())
      return s;
    return fresh;
  }

  Result<std::vector<MemberRecord>> StoreMembersChangedAfter(const std::string& store_id,
                                                             int64_t since_ms, int64_t after,
                                                             int64_t limit) override {
    // On PostgreSQL the store's scope rows first, then each member by its key (a nested loop,
    // kept so by the LATERAL subquery's OFFSET 0), so a page costs the store's scope: the
    // planner's own choice for the form below scanned every member the chain changed since
    // the cursor — an hour's changes of the whole chain for each terminal's hourly page, its
    // whole membership for a first sync — and joined the scope to them (7.5 ms against 2–3 ms
    // with 10,000 members, growing with the chain). The scope's condition is InScope's.
    HQ_PREPARE(st,
               B::kLateralPages
                   ? std::string("SELECT m.* FROM store_members s CROSS JOIN LATERAL (SELECT ") +
                         kMemberCols +
                         " FROM members WHERE member_id = s.member_id AND change_seq > ?1 "
                         "OFFSET 0) m WHERE s.store_id = ?2 AND (s.reason = 'enrolled' OR "
                         "s.last_at_ms >= ?3) ORDER BY m.change_seq LIMIT ?4"
                   : std::string("SELECT ") + kMemberCols +
                         " FROM members WHERE change_seq > ?1 AND member_id IN " + InScope(2, 3) +
                         " ORDER BY change_seq LIMIT ?4");
    st.Bind(1, after).Bind(2, store_id).Bind(3, since_ms).Bind(4, limit);
    return ReadAll<MemberRecord>(st, [&](const Stmt& r) { return ReadMember(r); });
  }

  Result<std::vector<CouponRecord>> StoreCouponsChanged(const std::string& store_id,
                                                        int64_t since_ms, int64_t after,
                                                        int64_t up_to) override {
    HQ_PREPARE(st, std::string("SELECT ") + kCouponCols +
                       " FROM coupons WHERE change_seq > ?1 AND change_seq <= ?2 AND (member_id "
                       "= 0 OR member_id IN " +
                       InScope(3, 4) + ") ORDER BY change_seq");
    st.Bind(1, after).Bind(2, up_to).Bind(3, store_id).Bind(4, since_ms);
    return ReadAll<CouponRecord>(st, [&](const Stmt& r) { return ReadCoupon(r); });
  }

  Result<bool> HoldsMember(const std::string& terminal_id, uint64_t member_id) override {
    HQ_PREPARE(st, "SELECT 1 FROM terminal_members WHERE terminal_id = ? AND member_id = ?");
    st.Bind(1, terminal_id).Bind(2, member_id);
    if (st.Step()) return true;
    if (!st.status().ok()) return st.status();
    return false;
  }

  Status HoldMembers(const std::string& terminal_id,
                     const std::vector<std::pair<uint64_t, int64_t>>& members,
                     Holding how) override {
    std::map<uint64_t, int64_t> balance_of(members.begin(), members.end());
    std::vector<uint64_t> ids;
    for (const auto& [id, balance] : balance_of) ids.push_back(id);
    Set* set = nullptr;
    for (size_t at = 0; at < ids.size(); at += kListChunk) {
      const std::vector<uint64_t> chunk = Chunk(ids, at);
      std::vector<uint64_t> added;
      {
        // "WHERE true": SQLite's parser needs it between a SELECT and ON CONFLICT.
        HQ_PREPARE(st, "INSERT INTO terminal_members (terminal_id, member_id) SELECT ?1, * FROM " +
                           B::IntRows(2) +
                           " AS l WHERE true ON CONFLICT DO NOTHING RETURNING member_id");
        st.Bind(1, terminal_id).Bind(2, ListText(chunk));
        while (st.Step()) added.push_back(static_cast<uint64_t>(st.Int(0)));
        if (!st.status().ok()) return st.status();
      }
      const std::vector<uint64_t>& joined = how == Holding::kSent ? chunk : added;
      if (joined.empty()) continue;
      if (!set) {
        auto opened = OpenBalanceSet(terminal_id);
        if (!opened.ok()) return opened.status();
        set = *opened;
      }
      for (uint64_t id : joined)
        pending_items_.emplace_back(
            set, recon::MemberBalanceItem(std::to_string(id), balance_of[id], 0));
    }
    return SetsWritten();
  }

  Result<const recon::FingerprintStore*> TerminalSet(const std::string& terminal_id) override {
    if (Status s = FlushSets(); !s.ok()) return s;
    auto set = OpenTerminalSet(terminal_id);
    if (!set.ok()) return set.status();
    return static_cast<const recon::FingerprintStore*>(*set);
  }

  Result<const recon::FingerprintStore*> BalanceSet(const std::string& terminal_id) override {
    if (Status s = FlushSets(); !s.ok()) return s;
    auto set = OpenBalanceSet(terminal_id);
    if (!set.ok()) return set.status();
    return static_cast<const recon::FingerprintStore*>(*set);
  }

 private:
  Result<int64_t> NextChange() {
    HQ_PREPARE(st, "UPDATE change_counter SET value = value + 1 WHERE id = 1 RETURNING value");
    if (st.Step()) {
      int64_t v = st.Int(0);
      if (Status s = st.Run(); !s.ok()) return s;
      return v;
    }
    return Fail(st);
  }

  static constexpr int kMemberColCount = 17;  // kMemberCols
  // The member's columns as parameters base + 1 … base + 17.
  void BindMember(Stmt& st, const MemberRecord& m, int64_t change_seq, int base = 0) {
    const int b = base;
    st.Bind(b + 1, m.member_id);
    m.name_enc.empty() ? st.BindNull(b + 2) : st.BindBlob(b + 2, m.name_enc);
    m.phone_enc.empty() ? st.BindNull(b + 3) : st.BindBlob(b + 3, m.phone_enc);
    m.birthday_enc.empty() ? st.BindNull(b + 4) : st.BindBlob(b + 4, m.birthday_enc);
    st.Bind(b + 5, m.display_name)
        .Bind(b + 6, m.phone_masked)
        .Bind(b + 7, m.phone_hash)
        .Bind(b + 8, m.birthday_month);
    st.Bind(b + 9, m.card_number)
        .Bind(b + 10, m.tier)
        .Bind(b + 11, m.status)
        .Bind(b + 12, m.frozen_reason);
    st.Bind(b + 13, m.unfrozen_at_ms)
        .Bind(b + 14, m.balance)
        .Bind(b + 15, m.created_at_ms)
        .Bind(b + 16, change_seq)
        .Bind(b + 17, int64_t{m.phone_lookup_consent ? 1 : 0});
  }

  static constexpr int64_t kSpendTotalLimit = int64_t{1} << 62;

  // An accepted checkout of the member was stored: every kept window holding its time grows.
  Status SpendTotalsAdd(uint64_t member_id, int64_t committed_at_ms, int64_t cents) {
    if (cents < 0 || cents > sync::kMaxCents) return SpendTotalsDrop(member_id, committed_at_ms);
    if (auto known = spend_rows_.find(member_id); known != spend_rows_.end()) {
      auto& rows = known->second;
      for (auto& r : rows) {
        if (r.from_ms > committed_at_ms || r.to_ms <= committed_at_ms) continue;
        r.cents += cents;  // |cents| <= 2^62 + kMaxCents: no overflow
        spend_dirty_.insert(member_id);
      }
      rows.erase(std::remove_if(rows.begin(), rows.end(),
                                [](const SpendRow& r) {
                                  return r.cents > kSpendTotalLimit || r.cents < -kSpendTotalLimit;
                                }),
                 rows.end());
      return Status::Ok();
    }
    {
      HQ_PREPARE(st,
                 "UPDATE spend_totals SET cents = cents + ?3 WHERE member_id = ?1 AND from_ms <= "
                 "?2 AND to_ms > ?2");
      st.Bind(1, member_id).Bind(2, committed_at_ms).Bind(3, cents);
      if (Status s = st.Run(); !s.ok()) return s;
    }
    if (db_->Changes() == 0) return Status::Ok();
    HQ_PREPARE(big, "DELETE FROM spend_totals WHERE member_id = ? AND abs(cents) > ?");
    big.Bind(1, member_id).Bind(2, kSpendTotalLimit);
    return big.Run();
  }

  // A checkout was refused, or one of its refunds stored or refused: the windows holding it
  // are summed again when next asked.
  Status SpendTotalsForget(const std::string& terminal_id, const std::string& checkout_id) {
    HQ_PREPARE(st,
               "SELECT member_id, committed_at_ms FROM checkouts WHERE terminal_id = ? AND "
               "checkout_id = ?");
    st.Bind(1, terminal_id).Bind(2, checkout_id);
    if (!st.Step()) return st.status();  // no such checkout: it counts nowhere
    if (st.IsNull(0)) return Status::Ok();
    uint64_t member_id = static_cast<uint64_t>(st.Int(0));
    int64_t at_ms = st.Int(1);
    st.Reset();
    return SpendTotalsDrop(member_id, at_ms);
  }

  Status SpendTotalsDrop(uint64_t member_id, int64_t at_ms) {
    if (auto known = spend_rows_.find(member_id); known != spend_rows_.end()) {
      auto& rows = known->second;
      const size_t before = rows.size();
      rows.erase(
          std::remove_if(rows.begin(), rows.end(),
                         [&](const SpendRow& r) { return r.from_ms <= at_ms && r.to_ms > at_ms; }),
          rows.end());
      if (rows.size() != before) spend_dirty_.insert(member_id);
      return Status::Ok();
    }
    HQ_PREPARE(st,
               "DELETE FROM spend_totals WHERE member_id = ?1 AND from_ms <= ?2 AND to_ms > ?2");
    st.Bind(1, member_id).Bind(2, at_ms);
    return st.Run();
  }

  // The lots of each of these members that meet `condition`, by expiry then lot id.
  Result<std::map<uint64_t, std::vector<model::Lot>>> LotsOfMembersWhere(
      const std::vector<uint64_t>& member_ids, const char* condition) {
    std::map<uint64_t, std::vector<model::Lot>> out;
    if (Status s =
            EachChunk("SELECT " LOYALTY_LOT_COLUMNS " FROM lots WHERE member_id " + B::InInts(1) +
                          " AND " + condition + " ORDER BY member_id, expires_at_s, lot_id",
                      1, member_ids, NoBind,
                      [&](const Stmt& r) {
                        model::Lot l = model::ReadLotColumns(r);
                        out[l.member_id].push_back(std::move(l));
                        return Status::Ok();
                      });
        !s.ok())
      return s;
    return out;
  }

  // (member_id, ±cents) of what a month's spend sums: the member's accepted checkouts
  // committed in [?2, ?3) and their accepted refunds; of one member (?1) or of a list.
  static std::string SpendRowsSql(bool list) {
    const std::string member = list ? B::InInts(1) : std::string("= ?1");
    return "SELECT c.member_id, c.total_due_cents FROM checkouts c WHERE c.member_id " + member +
           " AND c.committed_at_ms >= ?2 AND c.committed_at_ms < ?3 AND c.refused = 0 "
           "UNION ALL SELECT c2.member_id, -r.refund_cents FROM refunds r JOIN checkouts c2 ON "
           "c2.terminal_id = r.sold_at AND c2.checkout_id = r.checkout_id WHERE c2.member_id " +
           member +
           " AND c2.committed_at_ms >= ?2 AND c2.committed_at_ms < ?3 AND c2.refused = 0 "
           "AND r.refused = 0";
  }
  static int64_t Saturate(__int128 sum) {
    constexpr __int128 kMax = std::numeric_limits<int64_t>::max(),
                       kMin = std::numeric_limits<int64_t>::min();
    return static_cast<int64_t>(sum > kMax ? kMax : sum < kMin ? kMin : sum);
  }

  // Rows queued by a write transaction (FlushRows).
  struct QueuedCheckout {
    std::string terminal_id, checkout_id;
    std::optional<uint64_t> member_id;
    int64_t committed_at_ms, total_due_cents;
    std::string code_hash, coupon_id, body, cashier_id;
  };
  struct QueuedEntry {
    sync::Entry e;
    bool applied;
    int64_t received_at_ms;
  };
  struct QueuedRows {
    std::vector<QueuedCheckout> checkouts;
    std::vector<QueuedEntry> entries;
    std::vector<model::Lot> lots;
  };

  // Rows of a table, 500 to a statement (an entry's 14 parameters a row make 7,000, within
  // both engines' limits): `head` VALUES (…),… `tail`, bind_row(st, first parameter - 1, row).
  // all_new: each statement must change as many rows as it has, else the write fails. Like
  // HQ_PREPARE, it writes what is queued first (unless it is that write, FlushRows).
  static constexpr size_t kRowsPerInsert = 500;
  template <class T, class BindRow>
  Status InsertRows(const std::string& head, int columns, const std::vector<T>& rows,
                    const std::string& tail, bool all_new, BindRow bind_row) {
    if (Status s = FlushRows(); !s.ok()) return s;
    std::string group = "(";
    for (int c = 0; c < columns; ++c) group += c ? ",?" : "?";
    group += ")";
    for (size_t at = 0; at < rows.size(); at += kRowsPerInsert) {
      const size_t n = std::min(kRowsPerInsert, rows.size() - at);
      std::string sql = head + " VALUES ";
      for (size_t i = 0; i < n; ++i) sql += (i ? "," : "") + group;
      auto st = db_->Prepare(sql + tail);
      if (!st.ok()) return st.status();
      for (size_t i = 0; i < n; ++i) bind_row(**st, static_cast<int>(i) * columns, rows[at + i]);
      if (Status s = (*st)->Run(); !s.ok()) return s;
      if (all_new && static_cast<size_t>(db_->Changes()) != n)
        return Status::Error(ErrorCode::kInternal,
                             "a row this write read as absent was stored meanwhile");
    }
    return Status::Ok();
  }
  static constexpr const char* kCheckoutInsert =
      "INSERT INTO checkouts (terminal_id, checkout_id, member_id, committed_at_ms, "
      "total_due_cents, code_hash, coupon_id, body, cashier_id)";
  static constexpr const char* kCheckoutConflict = " ON CONFLICT DO NOTHING";
  static void BindCheckout(Stmt& st, int b, const QueuedCheckout& c) {
    st.Bind(b + 1, c.terminal_id).Bind(b + 2, c.checkout_id).Bind(b + 3, c.member_id);
    st.Bind(b + 4, c.committed_at_ms).Bind(b + 5, c.total_due_cents).Bind(b + 6, c.code_hash);
    st.Bind(b + 7, c.coupon_id).BindBlob(b + 8, c.body).Bind(b + 9, c.cashier_id);
  }
  // Every write the transaction queued: its rows, its sets' items, its spend rows.
  Status FlushQueued() {
    Status s = FlushRows();
    if (s.ok()) s = FlushSets();
    if (s.ok()) s = FlushSpends();
    return s;
  }

  // The rows a write transaction queued (InsertCheckout of a checkout it read as absent,
  // InsertEntry, AddLot), written in this order.
  Status FlushRows() {
    if (flushing_ || (rows_.checkouts.empty() && rows_.entries.empty() && rows_.lots.empty()))
      return Status::Ok();
    flushing_ = true;
    QueuedRows rows = std::move(rows_);
    rows_ = QueuedRows{};
    Status s =
        InsertRows(kCheckoutInsert, 9, rows.checkouts, kCheckoutConflict, true, BindCheckout);
    if (s.ok())
      s = InsertRows("INSERT INTO entries (" LOYALTY_ENTRY_COLUMNS ", applied, received_at_ms)", 14,
                     rows.entries, "", false, [](Stmt& st, int b, const QueuedEntry& q) {
                       const sync::Entry& e = q.e;
                       st.Bind(b + 1, e.seq).Bind(b + 2, e.entry_id).Bind(b + 3, e.terminal_id);
                       st.Bind(b + 4, e.kind).Bind(b + 5, e.member_id).Bind(b + 6, e.points);
                       st.Bind(b + 7, e.at_ms).Bind(b + 8, e.checkout_id).Bind(b + 9, e.refund_id);
                       st.Bind(b + 10, e.detail).Bind(b + 11, HexEncode(e.prev_hash));
                       st.Bind(b + 12, HexEncode(e.hash)).Bind(b + 13, int64_t{q.applied ? 1 : 0});
                       st.Bind(b + 14, q.received_at_ms);
                     });
    if (s.ok())
      s = InsertRows("INSERT INTO lots (" LOYALTY_LOT_COLUMNS ")", 7, rows.lots, "", false,
                     [](Stmt& st, int b, const model::Lot& l) {
                       st.Bind(b + 1, l.lot_id).Bind(b + 2, l.member_id).Bind(b + 3, l.points);
                       st.Bind(b + 4, l.remaining).Bind(b + 5, l.earned_at_s);
                       st.Bind(b + 6, l.expires_at_s).Bind(b + 7, l.entry_id);
                     });
    flushing_ = false;
    return s;
  }

  // The spend rows of the members whose rows changed in the transaction, written back, 500
  // rows a statement: each such member's rows as they stand now against those stored; a member with
  // a stored row gone (dropped, or past the limit) has its rows deleted and written again; the
  // others only their new and changed rows, updated in place (`cents` is in no index, so
  // PostgreSQL updates the row without touching the index: the common case, an upload
  // adding to a member's month).
  Status FlushSpends() {
    if (spend_dirty_.empty()) return Status::Ok();
    auto same_window = [](const SpendRow& a, const SpendRow& b) {
      return a.from_ms == b.from_ms && a.to_ms == b.to_ms;
    };
    std::vector<uint64_t> rewrite;
    std::vector<std::pair<uint64_t, SpendRow>> rows, changed;
    for (uint64_t id : spend_dirty_) {
      const auto& now = spend_rows_[id];
      const auto& stored = spend_stored_[id];
      const bool gone = std::any_of(stored.begin(), stored.end(), [&](const SpendRow& s) {
        return std::none_of(now.begin(), now.end(),
                            [&](const SpendRow& r) { return same_window(r, s); });
      });
      if (gone) {
        rewrite.push_back(id);
        for (const auto& r : now) rows.emplace_back(id, r);
        continue;
      }
      for (const auto& r : now)
        if (std::none_of(stored.begin(), stored.end(), [&](const SpendRow& s) {
              return same_window(r, s) && s.cents == r.cents;
            }))
          changed.emplace_back(id, r);
    }
    auto bind = [](Stmt& st, int b, const std::pair<uint64_t, SpendRow>& row) {
      const auto& [id, r] = row;
      st.Bind(b + 1, id).Bind(b + 2, r.from_ms);
      st.Bind(b + 3, r.to_ms).Bind(b + 4, r.cents);
    };
    if (Status s = EachChunk("DELETE FROM spend_totals WHERE member_id " + B::InInts(1), 1, rewrite,
                             NoBind, [](const Stmt&) { return Status::Ok(); });
        !s.ok())
      return s;
    if (Status s = InsertRows("INSERT INTO spend_totals (member_id, from_ms, to_ms, cents)", 4,
                              rows, "", false, bind);
        !s.ok())
      return s;
    if (Status s =
            InsertRows("INSERT INTO spend_totals (member_id, from_ms, to_ms, cents)", 4, changed,
                       " ON CONFLICT (member_id, from_ms, to_ms) DO UPDATE SET cents = "
                       "excluded.cents",
                       false, bind);
        !s.ok())
      return s;
    for (uint64_t id : spend_dirty_) spend_stored_[id] = spend_rows_[id];
    spend_dirty_.clear();
    return Status::Ok();
  }

  // Every row of a statement, as `read` makes it.
  template <class T, class Read>
  static Result<std::vector<T>> ReadAll(Stmt& st, Read read) {
    std::vector<T> out;
    while (st.Step()) out.push_back(read(st));
    if (!st.status().ok()) return st.status();
    return out;
  }

  static Status Fail(const Stmt& st) {
    return st.status().ok() ? Status::Error(ErrorCode::kInternal, "query returned no row")
                            : st.status();
  }

  // A stored refund's body, read as its upload was: one HQ refused for a line's qty past the
  // limits (value_out_of_range) reads back too, or every later upload naming its sale would
  // fail on it.
  static Result<sync::Refund> StoredRefund(std::string_view body) {
    auto j = ParseJsonObject(body);
    if (!j.ok()) return j.status();
    sync::Refund r;
    if (Status s = sync::FromJsonAsUploaded(*j, &r); !s.ok()) return s;
    return r;
  }

  // The stored refunds a query over (terminal_id, checkout_id) selects.
  Result<std::vector<sync::Refund>> Refunds(const std::string& sql, const std::string& terminal_id,
                                            const std::string& checkout_id) {
    HQ_PREPARE(st, sql);
    st.Bind(1, terminal_id).Bind(2, checkout_id);
    std::vector<sync::Refund> out;
    while (st.Step()) {
      auto r = StoredRefund(st.Text(0));
      if (!r.ok())
        return Status::Error(ErrorCode::kInternal, "stored refund: " + r.status().message());
      out.push_back(std::move(*r));
    }
    if (!st.status().ok()) return st.status();
    return out;
  }

  // Σ of the first column in 128 bits; `overflow` when the total leaves int64.
  Result<int64_t> SumChecked(Stmt& st) {
    __int128 sum = 0;
    while (st.Step()) sum += st.Int(0);
    if (!st.status().ok()) return st.status();
    if (sum > std::numeric_limits<int64_t>::max() || sum < std::numeric_limits<int64_t>::min()) {
      return Status::Error(ErrorCode::kOverflow, "a sum of points leaves 64 bits");
    }
    return static_cast<int64_t>(sum);
  }

  Result<int64_t> Count(const std::string& sql, const std::string& arg) {
    HQ_PREPARE(st, sql);
    st.Bind(1, arg);
    return st.Step() ? Result<int64_t>(st.Int(0)) : Result<int64_t>(Fail(st));
  }

  Result<std::vector<std::pair<std::string, std::string>>> Pairs(const std::string& sql,
                                                                 const std::string& arg) {
    HQ_PREPARE(st, sql);
    st.Bind(1, arg);
    std::vector<std::pair<std::string, std::string>> out;
    while (st.Step()) out.emplace_back(st.Text(0), st.Text(1));
    if (!st.status().ok()) return st.status();
    return out;
  }

  static Result<std::vector<ConflictRecord>> ReadConflicts(Stmt& st) {
    return ReadAll<ConflictRecord>(st, [&](const Stmt& r) { return ReadConflict(r); });
  }

  Result<Set*> OpenTerminalSet(const std::string& terminal_id) {
    auto it = terminal_sets_.find(terminal_id);
    if (it != terminal_sets_.end()) return it->second.get();
    auto s = B::OpenSet(*db_, "terminal:" + terminal_id);
    if (!s.ok()) return s.status();
    auto* p = s->get();
    terminal_sets_.emplace(terminal_id, std::move(*s));
    return p;
  }

  Result<Set*> OpenBalanceSet(const std::string& terminal_id) {
    auto it = balance_sets_.find(terminal_id);
    if (it != balance_sets_.end()) return it->second.get();
    auto s = B::OpenSet(*db_, "balances:" + terminal_id);
    if (!s.ok()) return s.status();
    auto* p = s->get();
    balance_sets_.emplace(terminal_id, std::move(*s));
    return p;
  }

  // A migration from before member scope asks (meta rebuild_balance_sets) for every
  // terminal's balance set to be made from the members it holds (all of them, then).
  Status RebuildBalanceSetsIfAsked() {
    auto asked = GetMeta("rebuild_balance_sets");
    if (!asked.ok()) return asked.status();
    if (!*asked) return Status::Ok();
    return Transaction([&]() -> Status {
      if (Status s = FlushSets(); !s.ok()) return s;
      auto again = GetMeta("rebuild_balance_sets");  // another process may have done it
      if (!again.ok()) return again.status();
      if (!*again) return Status::Ok();
      std::vector<std::tuple<std::string, uint64_t, int64_t>> rows;
      {
        HQ_PREPARE(st,
                   "SELECT t.terminal_id, m.member_id, m.balance FROM terminal_members t JOIN "
                   "members m ON m.member_id = t.member_id");
        while (st.Step())
          rows.emplace_back(st.Text(0), static_cast<uint64_t>(st.Int(1)), st.Int(2));
        if (!st.status().ok()) return st.status();
      }
      for (const auto& [tid, id, balance] : rows) {
        auto set = OpenBalanceSet(tid);
        if (!set.ok()) return set.status();
        if (Status s = (*set)->Upsert(recon::MemberBalanceItem(std::to_string(id), balance, 0));
            !s.ok())
          return s;
      }
      HQ_PREPARE(st, "DELETE FROM meta WHERE key = 'rebuild_balance_sets'");
      return st.Run();
    });
  }

  // The set writes the open transaction made: each terminal's entries and the balances of
  // the members it was sent or newly holds, in order (a later item of the same id stands).
  Status FlushSets() {
    if (pending_items_.empty()) return Status::Ok();
    std::vector<std::pair<Set*, recon::Item>> items;
    items.swap(pending_items_);
    // A shared write never folds: another may be writing the same set's journal (docs/hq.md,
    // "Writers in parallel").
    return B::UpsertMany(items, /*may_fold=*/!shared_);
  }

  // After a set write was queued: outside a transaction it goes now (and a failure leaves
  // nothing queued for a later transaction).
  Status SetsWritten() {
    if (B::InTransaction(*db_)) return Status::Ok();
    Status s = FlushSets();
    pending_items_.clear();
    return s;
  }

  static constexpr size_t kListChunk = 1000;  // ids in one IN list
  template <class T>
  static std::vector<T> Chunk(const std::vector<T>& all, size_t at) {
    return std::vector<T>(
        all.begin() + static_cast<std::ptrdiff_t>(at),
        all.begin() + static_cast<std::ptrdiff_t>(std::min(all.size(), at + kListChunk)));
  }
  // A list parameter: a JSON array, which both engines take apart (B::InInts, B::InTexts,
  // B::IntRows).
  static std::string ListText(const std::vector<uint64_t>& ids) {
    std::string out = "[";
    for (uint64_t id : ids) out += (out.size() > 1 ? "," : "") + std::to_string(id);
    return out + "]";
  }
  static std::string ListText(const std::vector<std::string>& items) {
    std::string out = "[";
    for (const auto& v : items) {
      if (out.size() > 1) out += ',';
      out += '"';
      for (unsigned char c : v) {
        if (c == '"' || c == '\\') {
          out += '\\';
          out += static_cast<char>(c);
        } else if (c < 0x20) {
          static const char* hex = "0123456789abcdef";
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
      }
      out += '"';
    }
    return out + "]";
  }
  // Runs `sql` once per kListChunk of `ids`, the chunk as parameter `list_param` (a list
  // B::InInts or B::InTexts reads), `bind` setting the others, `row` for each row.
  template <class T, class Bind, class Row>
  Status EachChunk(const std::string& sql, int list_param, const std::vector<T>& ids, Bind bind,
                   Row row) {
    for (size_t at = 0; at < ids.size(); at += kListChunk) {
      HQ_PREPARE(st, sql);
      bind(st);
      st.Bind(list_param, ListText(Chunk(ids, at)));
      while (st.Step())
        if (Status r = row(st); !r.ok()) return r;
      if (!st.status().ok()) return st.status();
    }
    return Status::Ok();
  }
  static void NoBind(Stmt&) {}

  std::unique_ptr<Db> db_;
  std::vector<std::pair<Set*, recon::Item>> pending_items_;
  struct SpendRow {
    int64_t from_ms, to_ms, cents;
  };
  std::map<uint64_t, std::vector<SpendRow>> spend_rows_;    // by member (PrefetchSpends)
  std::map<uint64_t, std::vector<SpendRow>> spend_stored_;  // the same, as the table has them
  std::set<uint64_t> spend_dirty_;
  QueuedRows rows_;
  bool flushing_ = false;
  std::set<std::pair<std::string, std::string>> absent_checkouts_;  // read absent in this write
  static constexpr int kLotIdsReserved = 256;
  std::deque<int64_t> lot_ids_;  // reserved in this write, not yet used
  std::map<std::string, std::unique_ptr<Set>> terminal_sets_;
  std::map<std::string, std::unique_ptr<Set>> balance_sets_;  // by terminal
  bool shared_ = false;                                       // inside a SharedTransaction
};

}  // namespace loyalty::hq::internal
