// The columns an entry is stored in and the one reader of them, for both ends' SQLite
// stores: the terminal's ledger (agent/ledger) and HQ's store (hq/src/sqlite_store.cc).
//
// The reader is a template over the row so that the model needs no SQLite: any row type
// with Text(int) -> std::string and Int(int) -> int64_t will do (loyalty::sqlite::Stmt).
#pragma once

#include <cstdint>

#include "loyalty/model/entry.h"

// The entry's columns in the order ReadEntryColumns reads them; a literal, so that SQL text
// is spliced together at compile time ("SELECT " LOYALTY_ENTRY_COLUMNS " FROM entries").
#define LOYALTY_ENTRY_COLUMNS                                                                    \
  "seq, entry_id, terminal_id, kind, member_id, points, at_ms, checkout_id, refund_id, detail, " \
  "prev_hash, hash"

namespace loyalty::model {

// How many columns LOYALTY_ENTRY_COLUMNS names: a store's own columns selected after them
// start at this index.
inline constexpr int kEntryColumnCount = 12;

// The entry in columns [0, kEntryColumnCount) of a row selected as LOYALTY_ENTRY_COLUMNS.
// prev_hash and hash are the columns' bytes as stored: raw in the ledger; HQ stores them as
// hex text and decodes them itself.
template <class Row>
Entry ReadEntryColumns(const Row& row) {
  Entry e;
  e.seq = row.Int(0);
  e.entry_id = row.Text(1);
  e.terminal_id = row.Text(2);
  e.kind = row.Text(3);
  e.member_id = static_cast<uint64_t>(row.Int(4));
  e.points = row.Int(5);
  e.at_ms = row.Int(6);
  e.checkout_id = row.Text(7);
  e.refund_id = row.Text(8);
  e.detail = row.Text(9);
  e.prev_hash = row.Text(10);
  e.hash = row.Text(11);
  return e;
}

// Binds the entry's fields to parameters 1..10, in LOYALTY_ENTRY_COLUMNS order. The two
// hashes (11 prev_hash, 12 hash) the store binds itself, in its own form: raw blobs in the
// ledger, hex text at HQ.
template <class Stmt>
void BindEntryFields(Stmt& st, const Entry& e) {
  st.Bind(1, e.seq).Bind(2, e.entry_id).Bind(3, e.terminal_id).Bind(4, e.kind);
  st.Bind(5, e.member_id).Bind(6, e.points).Bind(7, e.at_ms).Bind(8, e.checkout_id);
  st.Bind(9, e.refund_id).Bind(10, e.detail);
}

}  // namespace loyalty::model
