// Checking the ledger: SQLite integrity and the hash chain (loyaltyctl verify).
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

Result<std::vector<std::string>> Ledger::CheckIntegrity(bool quick, int max_problems) {
  // The pragma's argument is its limit on the problems it lists.
  std::string sql = std::string(quick ? "PRAGMA quick_check(" : "PRAGMA integrity_check(") +
                    std::to_string(std::max(1, max_problems)) + ")";
  auto st_r = db_->Prepare(sql);
  if (!st_r.ok()) return st_r.status();
  Stmt& st = **st_r;
  std::vector<std::string> problems;
  while (st.Step()) {
    std::string line = st.Text(0);
    if (line != "ok") problems.push_back(std::move(line));
  }
  if (!st.status().ok()) return st.status();
  if (!problems.empty())
    db_->damage().Latch(std::string(quick ? "quick_check: " : "integrity_check: ") + problems[0]);
  return problems;
}

VerifyReport Ledger::Verify() {
  VerifyReport rep;
  auto add = [&](std::string p) {
    if (rep.problems.size() < 100) rep.problems.push_back(std::move(p));
  };
  // SQLite's own check first: a damaged b-tree can hide rows from the checks below
  // (a member page that reads as empty verifies as "no members").
  if (auto integrity = CheckIntegrity(/*quick=*/false); !integrity.ok()) {
    add("integrity_check failed: " + integrity.status().message());
  } else {
    for (auto& p : *integrity) add("integrity_check: " + p);
  }
  {
    auto st_r = db_->Prepare("SELECT " LEDGER_ENTRY_COLS " FROM entries ORDER BY seq");
    if (!st_r.ok()) {
      add("cannot read entries: " + st_r.status().message());
      return rep;
    }
    Stmt& st = **st_r;
    std::string prev = model::ZeroHash();
    int64_t expect_seq = 1;
    while (st.Step()) {
      EntryRow e = ReadEntry(st);
      ++rep.entries;
      if (e.seq != expect_seq)
        add("entry seq " + std::to_string(e.seq) + ": expected seq " + std::to_string(expect_seq) +
            " (gap)");
      if (e.prev_hash != prev)
        add("entry seq " + std::to_string(e.seq) + " (" + e.entry_id +
            "): prev_hash does not link to its predecessor");
      if (e.hash != model::ChainHash(e.prev_hash, model::CanonicalEntryBytes(e)))
        add("entry seq " + std::to_string(e.seq) + " (" + e.entry_id +
            "): content does not match its hash");
      prev = e.hash;
      expect_seq = e.seq + 1;
    }
    if (!st.status().ok()) add("reading entries: " + st.status().message());
  }
  {
    auto st_r = db_->Prepare(
        "SELECT m.member_id, m.balance, coalesce((SELECT sum(remaining) FROM lots l WHERE "
        "l.member_id = m.member_id), 0)"
        " FROM members m");
    if (!st_r.ok()) {
      add("cannot read members: " + st_r.status().message());
      return rep;
    }
    Stmt& st = **st_r;
    while (st.Step()) {
      if (st.Int(1) != st.Int(2))
        add("member " + std::to_string(st.Int(0)) + ": balance " + std::to_string(st.Int(1)) +
            " but its lots sum to " + std::to_string(st.Int(2)));
    }
    if (!st.status().ok()) add("reading members: " + st.status().message());
  }
  {
    auto orphans = SelectInt(
        "SELECT count(*) FROM lots WHERE member_id NOT IN (SELECT member_id FROM members)",
        nullptr);
    if (!orphans.ok())
      add("reading lots: " + orphans.status().message());
    else if (*orphans > 0)
      add("lots without a member: " + std::to_string(*orphans));
  }
  if (db_->damaged()) add("the ledger is damaged: " + db_->damage().reason());
  return rep;
}

}  // namespace loyalty::ledger
