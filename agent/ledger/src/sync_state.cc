// What the sync run keeps: meta, acknowledgements, restored rows, upload marks, sync runs.
#include "internal.h"

#include <nlohmann/json.hpp>

#include <algorithm>
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

Result<std::optional<std::string>> Ledger::GetMeta(const std::string& key) {
  LEDGER_PREPARE(st, "SELECT value FROM meta WHERE key = ?");
  st.Bind(1, key);
  if (st.Step()) return std::optional<std::string>(st.Text(0));
  LEDGER_CHECK_STEP(st);
  return std::optional<std::string>();
}

Status Ledger::PutMeta(const std::string& key, const std::string& value) {
  LEDGER_PREPARE(st, "INSERT OR REPLACE INTO meta (key, value) VALUES (?,?)");
  st.Bind(1, key).Bind(2, value);
  return st.Run();
}

// --- sync

Result<std::vector<EntryRow>> Ledger::UnackedEntries(int64_t after_seq, int limit) {
  std::vector<EntryRow> out;
  LEDGER_PREPARE(st, "SELECT " LEDGER_ENTRY_COLS
                     " FROM entries INDEXED BY entries_member_unacked WHERE acked = 0 AND seq > ? "
                     "ORDER BY seq LIMIT ?");
  st.Bind(1, after_seq).Bind(2, limit);
  while (st.Step()) out.push_back(ReadEntry(st));
  LEDGER_CHECK_STEP(st);
  return out;
}

Result<std::vector<EntryRow>> Ledger::EntriesByIds(const std::vector<std::string>& entry_ids) {
  std::vector<EntryRow> out;
  for (const auto& id : entry_ids) {
    {
      LEDGER_PREPARE(st, "SELECT " LEDGER_ENTRY_COLS " FROM entries WHERE entry_id = ?");
      st.Bind(1, id);
      if (st.Step()) {
        out.push_back(ReadEntry(st));
        continue;
      }
      LEDGER_CHECK_STEP(st);
    }
    // branch_entries has no acked column: HQ holds every one of them.
    LEDGER_PREPARE(st,
                   "SELECT " LOYALTY_ENTRY_COLUMNS ", 1 FROM branch_entries WHERE entry_id = ?");
    st.Bind(1, id);
    if (st.Step()) out.push_back(ReadEntry(st));
    LEDGER_CHECK_STEP(st);
  }
  std::sort(out.begin(), out.end(), [](const EntryRow& a, const EntryRow& b) {
    return a.seq != b.seq ? a.seq < b.seq : a.entry_id < b.entry_id;
  });
  return out;
}

Result<std::vector<EntryRow>> Ledger::MemberEntriesAfter(uint64_t member_id, int64_t after_seq) {
  std::vector<EntryRow> out;
  LEDGER_PREPARE(
      st, "SELECT " LEDGER_ENTRY_COLS " FROM entries WHERE member_id = ? AND seq > ? ORDER BY seq");
  st.Bind(1, member_id).Bind(2, after_seq);
  while (st.Step()) out.push_back(ReadEntry(st));
  LEDGER_CHECK_STEP(st);
  return out;
}

Result<int64_t> Ledger::UnackedPoints(uint64_t member_id) {
  return SelectInt("SELECT coalesce(sum(points), 0) FROM entries WHERE member_id = ? AND acked = 0",
                   [&](Stmt& st) { st.Bind(1, member_id); });
}

Result<int64_t> Ledger::BranchEntryCount() {
  return SelectInt("SELECT count(*) FROM branch_entries", nullptr);
}

Status Ledger::AckEntries(const std::vector<std::string>& entry_ids) {
  std::set<uint64_t> members;
  for (const auto& id : entry_ids) {
    LEDGER_PREPARE(
        st, "UPDATE entries SET acked = 1 WHERE entry_id = ? AND acked = 0 RETURNING member_id");
    st.Bind(1, id);
    while (st.Step()) members.insert(static_cast<uint64_t>(st.Int(0)));
    if (!st.status().ok()) return st.status();
  }
  for (uint64_t m : members) {
    auto row = GetMember(m);
    if (!row.ok()) return row.status();
    if (!*row) continue;  // an entry of a member not cached: nothing to index
    if (Status s = RefreshBalanceItem(m, (*row)->balance); !s.ok()) return s;
  }
  return Status::Ok();
}

Result<RestoreOutcome> Ledger::RestoreEntry(const EntryRow& e) {
  if (e.terminal_id != terminal_id_)
    return Status::Error(ErrorCode::kBadRequest,
                         "entry " + e.entry_id + " belongs to terminal " + e.terminal_id);
  if (e.prev_hash.size() != 32 || e.hash.size() != 32 ||
      e.hash != model::ChainHash(e.prev_hash, model::CanonicalEntryBytes(e)))
    return Status::Error(ErrorCode::kBadRequest,
                         "entry " + e.entry_id + ": content does not match its hash");
  for (const char* table : {"entries", "branch_entries"}) {
    LEDGER_PREPARE(st, std::string("SELECT hash FROM ") + table + " WHERE entry_id = ?");
    st.Bind(1, e.entry_id);
    if (st.Step()) {
      if (st.Text(0) == e.hash) return RestoreOutcome::kPresent;
      return Status::Error(ErrorCode::kConflict,
                           "entry " + e.entry_id + " is held here with other content");
    }
    if (!st.status().ok()) return st.status();
  }
  bool chains = e.seq == head_seq_ + 1 && e.prev_hash == head_hash_;
  {
    std::string sql = chains ? "INSERT INTO entries (" LEDGER_ENTRY_COLS
                               ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,1)"
                             : "INSERT INTO branch_entries (" LOYALTY_ENTRY_COLUMNS
                               ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?)";
    LEDGER_PREPARE(st, sql);
    model::BindEntryFields(st, e);
    st.BindBlob(11, e.prev_hash).BindBlob(12, e.hash);
    if (Status s = st.Run(); !s.ok()) return s;
  }
  if (Status s = IndexEntry(e); !s.ok()) return s;
  if (!chains) return RestoreOutcome::kBranch;
  head_seq_ = e.seq;
  head_hash_ = e.hash;
  return RestoreOutcome::kChained;
}

Result<bool> Ledger::RestoreCheckout(const model::Checkout& c) {
  auto existing = GetCheckout(c.checkout_id, /*with_lines=*/false);
  if (!existing.ok()) return existing.status();
  if (*existing) return false;
  if (Status s = InsertCheckout(c); !s.ok()) return s;
  if (Status s = MarkUploaded({c.checkout_id}, {}); !s.ok()) return s;
  // The code stays bound: a restored terminal must still refuse its replay.
  if (!c.code_hash.empty() && c.member_id) {
    auto bound = CodeBoundTo(c.code_hash);
    if (!bound.ok()) return bound.status();
    if (!*bound) {
      if (Status s = BindCode(c.code_hash, c.checkout_id, *c.member_id, c.committed_at_ms); !s.ok())
        return s;
    }
  }
  return true;
}

Result<bool> Ledger::RestoreRefund(const model::Refund& r) {
  auto existing = GetRefund(r.refund_id);
  if (!existing.ok()) return existing.status();
  if (*existing) return false;
  if (Status s = InsertRefund(r); !s.ok()) return s;
  if (Status s = MarkUploaded({}, {r.refund_id}); !s.ok()) return s;
  return true;
}

Result<std::vector<model::Checkout>> Ledger::UnuploadedCheckoutsWithoutEntries(int limit) {
  auto ids = SelectIds(
      "SELECT checkout_id FROM checkouts WHERE uploaded = 0 AND member_id IS NULL "
      "ORDER BY committed_at_ms LIMIT ?",
      [limit](Stmt& st) { st.Bind(1, limit); });
  if (!ids.ok()) return ids.status();
  std::vector<model::Checkout> out;
  for (const auto& id : *ids) {
    auto c = GetCheckout(id);
    if (!c.ok()) return c.status();
    if (*c) out.push_back(std::move(**c));
  }
  return out;
}

Result<std::vector<model::Refund>> Ledger::UnuploadedRefunds(int limit) {
  return RefundsSelected("SELECT refund_id FROM refunds WHERE uploaded = 0 ORDER BY at_ms LIMIT ?",
                         [limit](Stmt& st) { st.Bind(1, limit); });
}

Result<std::vector<model::Refund>> Ledger::UnuploadedRefundsOfSale(const std::string& sold_at,
                                                                   const std::string& checkout_id) {
  return RefundsSelected(
      "SELECT refund_id FROM refunds WHERE checkout_id = ? AND sold_at = ? AND uploaded = 0 "
      "ORDER BY at_ms, refund_id",
      [&](Stmt& st) { st.Bind(1, checkout_id).Bind(2, sold_at); });
}

Status Ledger::MarkUploaded(const std::vector<std::string>& checkout_ids,
                            const std::vector<std::string>& refund_ids) {
  for (const auto& id : checkout_ids) {
    LEDGER_PREPARE(st, "UPDATE checkouts SET uploaded = 1 WHERE checkout_id = ? AND uploaded = 0");
    st.Bind(1, id);
    if (Status s = st.Run(); !s.ok()) return s;
  }
  for (const auto& id : refund_ids) {
    LEDGER_PREPARE(st, "UPDATE refunds SET uploaded = 1 WHERE refund_id = ? AND uploaded = 0");
    st.Bind(1, id);
    if (Status s = st.Run(); !s.ok()) return s;
  }
  return Status::Ok();
}

Status Ledger::DeleteLots(uint64_t member_id) {
  LEDGER_PREPARE(st, "DELETE FROM lots WHERE member_id = ?");
  st.Bind(1, member_id);
  return st.Run();
}

Result<std::vector<uint64_t>> Ledger::MembersByReconKey(const std::vector<std::string>& keys) {
  std::vector<uint64_t> out;
  if (keys.empty()) return out;
  std::set<std::string> wanted(keys.begin(), keys.end());
  LEDGER_PREPARE(st, "SELECT member_id FROM members ORDER BY member_id");
  while (st.Step()) {
    uint64_t id = static_cast<uint64_t>(st.Int(0));
    if (wanted.count(recon::MemberKey(std::to_string(id)))) out.push_back(id);
  }
  LEDGER_CHECK_STEP(st);
  return out;
}

Status Ledger::FlushReconIndex() {
  if (!entries_index_)
    return Status::Error(ErrorCode::kInternal,
                         "the reconciliation index is open on the writer only");
  if (Status s = entries_index_->Flush(); !s.ok()) return s;
  return balances_index_->Flush();
}

namespace {
constexpr const char* kSyncRunCols =
    "run_id, started_at_ms, finished_at_ms, result, uploaded, downloaded, repaired, conflicts, "
    "round_trips, "
    "bytes_sent, bytes_received, error";
SyncRunRow ReadSyncRun(const Stmt& s) {
  SyncRunRow r;
  r.run_id = s.Text(0);
  r.started_at_ms = s.Int(1);
  r.finished_at_ms = s.OptInt(2);
  r.result = s.Text(3);
  r.uploaded = s.Int(4);
  r.downloaded = s.Int(5);
  r.repaired = s.Int(6);
  r.conflicts = s.Int(7);
  r.round_trips = s.Int(8);
  r.bytes_sent = s.Int(9);
  r.bytes_received = s.Int(10);
  r.error = s.Text(11);
  return r;
}
}  // namespace

Status Ledger::PutSyncRun(const SyncRunRow& r) {
  LEDGER_PREPARE(st, std::string("INSERT OR REPLACE INTO sync_runs (") + kSyncRunCols +
                         ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?)");
  st.Bind(1, r.run_id)
      .Bind(2, r.started_at_ms)
      .Bind(3, r.finished_at_ms)
      .Bind(4, r.result)
      .Bind(5, r.uploaded);
  st.Bind(6, r.downloaded)
      .Bind(7, r.repaired)
      .Bind(8, r.conflicts)
      .Bind(9, r.round_trips)
      .Bind(10, r.bytes_sent);
  st.Bind(11, r.bytes_received).Bind(12, r.error);
  return st.Run();
}

Result<std::vector<SyncRunRow>> Ledger::RecentSyncRuns(int limit) {
  std::vector<SyncRunRow> out;
  LEDGER_PREPARE(st, std::string("SELECT ") + kSyncRunCols +
                         " FROM sync_runs ORDER BY started_at_ms DESC, run_id DESC LIMIT ?");
  st.Bind(1, limit);
  while (st.Step()) out.push_back(ReadSyncRun(st));
  LEDGER_CHECK_STEP(st);
  return out;
}

Result<std::optional<SyncRunRow>> Ledger::LastSuccessfulSyncRun() {
  LEDGER_PREPARE(
      st,
      std::string("SELECT ") + kSyncRunCols +
          " FROM sync_runs WHERE result = 'ok' ORDER BY started_at_ms DESC, run_id DESC LIMIT 1");
  if (st.Step()) return std::optional<SyncRunRow>(ReadSyncRun(st));
  LEDGER_CHECK_STEP(st);
  return std::optional<SyncRunRow>();
}

Result<int> Ledger::FailInterruptedSyncRuns(int64_t now_ms) {
  LEDGER_PREPARE(
      st,
      "UPDATE sync_runs SET result = 'failed', finished_at_ms = ?, "
      "error = 'interrupted: the agent stopped during the run' WHERE result = 'running'");
  st.Bind(1, now_ms);
  if (Status s = st.Run(); !s.ok()) return s;
  return db_->Changes();
}

Result<std::unique_ptr<ReconSnapshot>> ReconSnapshot::Open(const std::string& path) {
  std::unique_ptr<ReconSnapshot> v(new ReconSnapshot);
  // Read-only: the writer created the tables and scopes at start-up, and nothing here may
  // change a row.
  auto db = Db::Open(path, /*read_only=*/true);
  if (!db.ok()) return db.status();
  v->db_ = std::move(*db);
  recon::SqliteStore::Options existing;
  existing.existing_only = true;
  auto e = recon::SqliteStore::Open(v->db_->raw(), kReconTablePrefix, kReconEntriesScope, existing);
  if (!e.ok()) return e.status();
  auto b =
      recon::SqliteStore::Open(v->db_->raw(), kReconTablePrefix, kReconBalancesScope, existing);
  if (!b.ok()) return b.status();
  v->entries_ = std::move(*e);
  v->balances_ = std::move(*b);
  // The read that takes the snapshot: WAL holds it from here to the ROLLBACK.
  if (Status s = v->db_->Exec("BEGIN; SELECT count(*) FROM recon_meta;"); !s.ok()) return s;
  v->open_ = true;
  return v;
}

ReconSnapshot::~ReconSnapshot() {
  entries_.reset();
  balances_.reset();
  if (open_) (void)db_->Exec("ROLLBACK");  // a read transaction: nothing to lose
}

}  // namespace loyalty::ledger
