// Damages a real SQLite file the way a bad disk sector does, for tests of a damaged ledger:
// finds the leaf page of a rowid table that holds a given rowid (walking the table's b-tree
// from its root page, file format 3: https://www.sqlite.org/fileformat2.html), or a table's
// root page, and overwrites that page's b-tree header. Header-only; link SQLite::SQLite3.
//
// The file must be closed by every connection that wrote it (no -wal left), or the page may
// be stale; DamageRowPage checks that.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

namespace loyalty::testing {

namespace sqlite_damage_detail {

inline uint32_t Be(const std::string& b, size_t at, int n) {
  uint32_t v = 0;
  for (int i = 0; i < n; ++i)
    v = (v << 8) | static_cast<unsigned char>(b[at + static_cast<size_t>(i)]);
  return v;
}

inline int64_t Varint(const std::string& b, size_t& at) {
  int64_t v = 0;
  for (int i = 0; i < 9; ++i) {
    unsigned char c = static_cast<unsigned char>(b[at++]);
    if (i == 8) return (v << 8) | c;
    v = (v << 7) | (c & 0x7f);
    if (!(c & 0x80)) break;
  }
  return v;
}

}  // namespace sqlite_damage_detail

// The root page of `table` (nullopt: no such table).
inline std::optional<uint32_t> RootPage(const std::string& path, const std::string& table) {
  sqlite3* db = nullptr;
  std::optional<uint32_t> root;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db,
                           "SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name = ?",
                           -1, &st, nullptr) == SQLITE_OK) {
      sqlite3_bind_text(st, 1, table.c_str(), -1, SQLITE_TRANSIENT);
      if (sqlite3_step(st) == SQLITE_ROW) root = static_cast<uint32_t>(sqlite3_column_int64(st, 0));
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return root;
}

// The leaf page of rowid table `table` holding `rowid` (nullopt: not found).
inline std::optional<uint32_t> LeafPageOfRowid(const std::string& path, const std::string& table,
                                               int64_t rowid) {
  using namespace sqlite_damage_detail;
  auto root = RootPage(path, table);
  if (!root) return std::nullopt;
  std::ifstream f(path, std::ios::binary);
  std::string file((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (file.size() < 100) return std::nullopt;
  uint32_t page_size = Be(file, 16, 2);
  if (page_size == 1) page_size = 65536;
  uint32_t page = *root;
  for (int depth = 0; depth < 20; ++depth) {
    size_t base = static_cast<size_t>(page - 1) * page_size;
    size_t hdr = base + (page == 1 ? 100 : 0);
    if (hdr + 12 > file.size()) return std::nullopt;
    unsigned char type = static_cast<unsigned char>(file[hdr]);
    uint32_t cells = Be(file, hdr + 3, 2);
    if (type == 0x0d) {  // table leaf: cells are (payload size, rowid, payload)
      for (uint32_t i = 0; i < cells; ++i) {
        size_t at = base + Be(file, hdr + 8 + 2 * i, 2);
        Varint(file, at);
        if (Varint(file, at) == rowid) return page;
      }
      return std::nullopt;
    }
    if (type != 0x05) return std::nullopt;  // not a table b-tree page
    // Table interior: cells are (left child, largest rowid in it); then the right-most child.
    uint32_t next = Be(file, hdr + 8, 4);
    for (uint32_t i = 0; i < cells; ++i) {
      size_t at = base + Be(file, hdr + 12 + 2 * i, 2);
      uint32_t child = Be(file, at, 4);
      at += 4;
      if (rowid <= Varint(file, at)) {
        next = child;
        break;
      }
    }
    page = next;
  }
  return std::nullopt;
}

// Overwrites the b-tree header of `page` (its first bytes: page type, free-block offset,
// cell count, …) with 0xff: SQLite then reports the page corrupt to whatever reads it.
inline bool DamagePage(const std::string& path, uint32_t page) {
  std::ifstream in(path, std::ios::binary);
  std::string head(100, '\0');
  if (!in.read(head.data(), 100)) return false;
  uint32_t page_size = sqlite_damage_detail::Be(head, 16, 2);
  if (page_size == 1) page_size = 65536;
  std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
  f.seekp(static_cast<std::streamoff>(page - 1) * page_size + (page == 1 ? 100 : 0));
  std::string junk(12, '\xff');
  f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  f.flush();
  return static_cast<bool>(f);
}

// Folds a left-over WAL into the file (every frame copied back, the -wal truncated) so the
// file alone holds the current pages. No other process may have the file open.
inline bool FoldWal(const std::string& path) {
  sqlite3* db = nullptr;
  bool ok =
      sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK &&
      sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr) == SQLITE_OK;
  sqlite3_close(db);
  return ok;
}

// Damages the page of `table` that holds `rowid`; returns its number (nullopt: not found, or
// a -wal file is there, whose frames may hold a newer copy of the page).
inline std::optional<uint32_t> DamageRowPage(const std::string& path, const std::string& table,
                                             int64_t rowid) {
  std::error_code ec;
  if (std::filesystem::exists(path + "-wal", ec) &&
      std::filesystem::file_size(path + "-wal", ec) > 0)
    return std::nullopt;
  auto page = LeafPageOfRowid(path, table, rowid);
  if (!page || !DamagePage(path, *page)) return std::nullopt;
  return page;
}

// Damages the root page of `table` (every read of the table starts there), or page 1 for
// "sqlite_schema" (the schema itself, below the file's 100-byte header, which stays
// intact); returns the page's number (nullopt: no such table, or a -wal file is there, as
// for DamageRowPage).
inline std::optional<uint32_t> DamageRootPage(const std::string& path, const std::string& table) {
  std::error_code ec;
  if (std::filesystem::exists(path + "-wal", ec) &&
      std::filesystem::file_size(path + "-wal", ec) > 0)
    return std::nullopt;
  auto page = table == "sqlite_schema" ? std::optional<uint32_t>(1) : RootPage(path, table);
  if (!page || !DamagePage(path, *page)) return std::nullopt;
  return page;
}

}  // namespace loyalty::testing
