#include "loyalty/recon/pg_store.h"

#include <algorithm>
#include <map>
#include <tuple>

#include "loyalty/base/encoding.h"

#include "blocks.h"

namespace loyalty::recon {
namespace {

using namespace internal;

Status Malformed(const char* what) {
  return Status::Error(ErrorCode::kInternal, std::string("malformed reconciliation ") + what);
}

std::string_view Bytes(const ElementId& id) {
  return {reinterpret_cast<const char*>(id.data()), id.size()};
}
std::string_view Bytes(const Tag& t) { return {reinterpret_cast<const char*>(t.data()), t.size()}; }

bool ReadId(const pg::Stmt& s, int col, ElementId* id) {
  const std::string v = s.Text(col);
  if (s.IsNull(col) || v.size() != kIdSize) return false;
  std::memcpy(id->data(), v.data(), kIdSize);
  return true;
}

// false for NULL; *ok false for a malformed value.
bool ReadTag(const pg::Stmt& s, int col, Tag* tag, bool* ok) {
  *ok = true;
  if (s.IsNull(col)) return false;
  const std::string v = s.Text(col);
  if (v.size() != kTagSize) {
    *ok = false;
    return false;
  }
  std::memcpy(tag->data(), v.data(), kTagSize);
  return true;
}

#define RECON_PREPARE(var, sql)               \
  auto var##_r = db_.Prepare(sql);            \
  if (!var##_r.ok()) return var##_r.status(); \
  pg::Stmt& var = **var##_r

}  // namespace

Result<std::string> PgStore::TablesSql(const std::string& p, uint64_t stored_symbols) {
  if (!ValidPrefix(p))
    return Status::Error(ErrorCode::kBadRequest, "table prefix must match [A-Za-z0-9_]{0,32}");
  if (stored_symbols < kBlockSymbols || stored_symbols > kMaxSymbolIndex ||
      stored_symbols % kBlockSymbols != 0) {
    return Status::Error(ErrorCode::kBadRequest,
                         "stored_symbols must be a multiple of 64 in [64, 2^24]");
  }
  return "CREATE TABLE " + p + "meta(name TEXT PRIMARY KEY, value BIGINT NOT NULL);" +
         "CREATE TABLE " + p +
         "scopes(scope_id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE);" + "CREATE TABLE " +
         p +
         "items(scope_id BIGINT NOT NULL, id BYTEA NOT NULL, tag BYTEA NOT NULL,"
         " PRIMARY KEY(scope_id, id));" +
         "CREATE TABLE " + p +
         "blocks(scope_id BIGINT NOT NULL, block BIGINT NOT NULL, data BYTEA NOT NULL,"
         " PRIMARY KEY(scope_id, block));" +
         "CREATE TABLE " + p +
         "journal(scope_id BIGINT NOT NULL, id BYTEA NOT NULL, tag BYTEA, old_tag BYTEA,"
         " PRIMARY KEY(scope_id, id));" +
         "INSERT INTO " + p + "meta(name, value) VALUES('format', " + std::to_string(kFormat) +
         "), ('stored_symbols', " + std::to_string(stored_symbols) + ");";
}

Result<std::unique_ptr<PgStore>> PgStore::Open(pg::Db& db, std::string table_prefix,
                                               std::string scope) {
  return Open(db, std::move(table_prefix), std::move(scope), Options());
}

Result<std::unique_ptr<PgStore>> PgStore::Open(pg::Db& db, std::string p, std::string scope,
                                               const Options& options) {
  if (!ValidPrefix(p))
    return Status::Error(ErrorCode::kBadRequest, "table prefix must match [A-Za-z0-9_]{0,32}");
  if (scope.empty()) return Status::Error(ErrorCode::kBadRequest, "scope must not be empty");
  int64_t format = 0, stored = 0, scope_id = 0;
  {
    auto st = db.Prepare("SELECT name, value FROM " + p + "meta");
    if (!st.ok()) return st.status();
    while ((*st)->Step()) {
      if ((*st)->Text(0) == "format") format = (*st)->Int(1);
      if ((*st)->Text(0) == "stored_symbols") stored = (*st)->Int(1);
    }
    if (!(*st)->status().ok()) return (*st)->status();
  }
  if (format != kFormat)
    return Status::Error(ErrorCode::kInternal,
                         "unknown reconciliation table format " + std::to_string(format));
  if (stored < static_cast<int64_t>(kBlockSymbols) ||
      stored > static_cast<int64_t>(kMaxSymbolIndex) || stored % kBlockSymbols != 0) {
    return Status::Error(ErrorCode::kInternal, "corrupt stored_symbols in meta");
  }
  {
    // A scope that exists is read, not written: a write would lock its row to the end of
    // the transaction, and two transactions opening two scopes in turn could wait for each
    // other. Another process may add the same new scope at the same moment: the insert of one
    // does nothing, and the read after it finds the other's row.
    auto st = db.Prepare("WITH found AS (SELECT scope_id FROM " + p +
                         "scopes WHERE name = ?1), added AS (INSERT INTO " + p +
                         "scopes(name) SELECT ?1 WHERE NOT EXISTS (SELECT 1 FROM found)"
                         " ON CONFLICT(name) DO NOTHING RETURNING scope_id)"
                         " SELECT scope_id FROM found UNION ALL SELECT scope_id FROM added");
    if (!st.ok()) return st.status();
    (*st)->Bind(1, scope);
    if ((*st)->Step()) {
      scope_id = (*st)->Int(0);
    } else {
      if (!(*st)->status().ok()) return (*st)->status();
      auto again = db.Prepare("SELECT scope_id FROM " + p + "scopes WHERE name = ?1");
      if (!again.ok()) return again.status();
      (*again)->Bind(1, scope);
      if (!(*again)->Step())
        return (*again)->status().ok() ? Status::Error(ErrorCode::kInternal, "no scope id")
                                       : (*again)->status();
      scope_id = (*again)->Int(0);
    }
  }
  std::unique_ptr<PgStore> store(new PgStore(
      db, std::move(p), scope_id, static_cast<uint64_t>(stored), options.auto_flush_rows));
  return store;
}

PgStore::PgStore(pg::Db& db, std::string prefix, int64_t scope_id, uint64_t stored_symbols,
                 size_t auto_flush_rows)
    : db_(db),
      prefix_(std::move(prefix)),
      scope_id_(scope_id),
      stored_symbols_(stored_symbols),
      auto_flush_rows_(auto_flush_rows) {
  journal_get_ = Sql("SELECT tag, old_tag FROM {p}journal WHERE scope_id = ?1 AND id = ?2");
  journal_put_ =
      Sql("INSERT INTO {p}journal(scope_id, id, tag, old_tag) VALUES(?1, ?2, ?3, ?4)"
          " ON CONFLICT(scope_id, id) DO UPDATE SET tag = excluded.tag");
  journal_scope_ = Sql("SELECT id, tag, old_tag FROM {p}journal WHERE scope_id = ?1 ORDER BY id");
  journal_count_ = Sql("SELECT count(*) FROM {p}journal WHERE scope_id = ?1");
  journal_clear_ = Sql("DELETE FROM {p}journal WHERE scope_id = ?1");
  item_get_ = Sql("SELECT tag FROM {p}items WHERE scope_id = ?1 AND id = ?2");
  items_put_many_ =
      Sql("INSERT INTO {p}items(scope_id, id, tag) SELECT ?1, decode(u.id, 'hex'),"
          " decode(u.tag, 'hex') FROM unnest(?2::text[], ?3::text[]) AS u(id, tag)"
          " ON CONFLICT(scope_id, id) DO UPDATE SET tag = excluded.tag");
  items_del_many_ =
      Sql("DELETE FROM {p}items WHERE scope_id = ?1 AND id IN"
          " (SELECT decode(x, 'hex') FROM unnest(?2::text[]) AS x)");
  // Blocks and the journal in one snapshot (column 0: 0 block, 1 journal row).
  symbols_ =
      Sql("SELECT 0, block, data, NULL::bytea, NULL::bytea FROM {p}blocks"
          " WHERE scope_id = ?1 AND block BETWEEN ?2 AND ?3"
          " UNION ALL SELECT 1, 0, id, tag, old_tag FROM {p}journal WHERE scope_id = ?1");
  // The journal past `after` and the items past it, in one snapshot (column 0: 0 journal,
  // 1 item); each journal row hides at most one item, so limit + journal rows + 1 items
  // always suffice to fill a page and tell whether more remain.
  elements_ = Sql(
      "(SELECT 0, id, tag FROM {p}journal WHERE scope_id = ?1 AND id > ?2)"
      " UNION ALL (SELECT 1, id, tag FROM {p}items WHERE scope_id = ?1 AND id > ?2"
      " ORDER BY id LIMIT ?3 + (SELECT count(*) FROM {p}journal WHERE scope_id = ?1 AND id > ?2))");
  block_put_ =
      Sql("INSERT INTO {p}blocks(scope_id, block, data) VALUES(?1, ?2, ?3)"
          " ON CONFLICT(scope_id, block) DO UPDATE SET data = excluded.data");
}

std::string PgStore::Sql(const char* fmt) const {
  std::string s(fmt);
  for (size_t at; (at = s.find("{p}")) != std::string::npos;) s.replace(at, 3, prefix_);
  return s;
}

Status PgStore::Lookup(const ElementId& id, std::optional<Tag>* current,
                       std::optional<Tag>* folded) const {
  {
    RECON_PREPARE(st, journal_get_);
    st.Bind(1, scope_id_).BindBlob(2, Bytes(id));
    if (st.Step()) {
      Tag tag{}, old{};
      bool ok_new, ok_old;
      const bool has_new = ReadTag(st, 0, &tag, &ok_new);
      const bool has_old = ReadTag(st, 1, &old, &ok_old);
      if (!ok_new || !ok_old) return Malformed("journal row");
      *current = has_new ? std::optional<Tag>(tag) : std::nullopt;
      *folded = has_old ? std::optional<Tag>(old) : std::nullopt;
      return Status::Ok();
    }
    if (!st.status().ok()) return st.status();
  }
  RECON_PREPARE(st, item_get_);
  st.Bind(1, scope_id_).BindBlob(2, Bytes(id));
  *folded = std::nullopt;
  if (st.Step()) {
    Tag tag{};
    bool ok;
    if (!ReadTag(st, 0, &tag, &ok)) return Malformed("item row");
    *folded = tag;
  } else if (!st.status().ok()) {
    return st.status();
  }
  *current = *folded;
  return Status::Ok();
}

Status PgStore::WriteJournal(const ElementId& id, const std::optional<Tag>& tag,
                             const std::optional<Tag>& folded) {
  {
    RECON_PREPARE(st, journal_put_);
    st.Bind(1, scope_id_).BindBlob(2, Bytes(id));
    tag ? st.BindBlob(3, Bytes(*tag)) : st.BindNull(3);
    folded ? st.BindBlob(4, Bytes(*folded)) : st.BindNull(4);
    if (Status s = st.Run(); !s.ok()) return s;
  }
  return NoteWrites(1);
}

Status PgStore::NoteWrites(size_t n) {
  changes_since_check_ += static_cast<unsigned>(std::min<size_t>(n, kAutoFlushCheckEvery));
  if (changes_since_check_ < kAutoFlushCheckEvery) return Status::Ok();
  return FlushIfDue();
}

Result<bool> PgStore::FlushDue() const {
  auto pending = PendingChanges();
  if (!pending.ok()) return pending.status();
  return *pending > auto_flush_rows_;
}

Status PgStore::FlushIfDue() {
  changes_since_check_ = 0;
  auto due = FlushDue();
  if (!due.ok()) return due.status();
  return *due ? Flush() : Status::Ok();
}

Status PgStore::UpsertMany(const std::vector<std::pair<PgStore*, Item>>& items, bool may_fold) {
  if (items.empty()) return Status::Ok();
  PgStore& first = *items.front().first;
  // One row per (set, id), the last item's tag; sets in a stable order for the checks after.
  std::map<std::pair<int64_t, ElementId>, std::pair<PgStore*, Tag>> rows;
  for (const auto& [set, item] : items) {
    if (&set->db_ != &first.db_ || set->prefix_ != first.prefix_)
      return Status::Error(ErrorCode::kInternal, "UpsertMany: sets of different tables");
    auto e = MakeElement(item);
    if (!e.ok()) return e.status();
    rows[{set->scope_id_, e->id}] = {set, e->tag};
  }
  // ON CONFLICT keeps the journal row's old_tag (the tag folded at its first change since the
  // last flush), as WriteJournal does; a new row takes the folded item's tag.
  const std::string sql = first.Sql(
      "INSERT INTO {p}journal(scope_id, id, tag, old_tag)"
      " SELECT u.s, decode(u.id, 'hex'), decode(u.tag, 'hex'), i.tag"
      " FROM unnest(?1::bigint[], ?2::text[], ?3::text[]) AS u(s, id, tag)"
      " LEFT JOIN {p}items i ON i.scope_id = u.s AND i.id = decode(u.id, 'hex')"
      " ON CONFLICT(scope_id, id) DO UPDATE SET tag = excluded.tag");
  constexpr size_t kRowsPerStatement = 1000;
  std::map<PgStore*, size_t> written;
  auto it = rows.begin();
  while (it != rows.end()) {
    std::string scopes = "{", ids = "{", tags = "{";
    for (size_t n = 0; it != rows.end() && n < kRowsPerStatement; ++it, ++n) {
      const char* sep = n ? "," : "";
      scopes += sep + std::to_string(it->first.first);
      ids += sep + HexEncode(Bytes(it->first.second));
      tags += sep + HexEncode(Bytes(it->second.second));
      ++written[it->second.first];
    }
    scopes += "}";
    ids += "}";
    tags += "}";
    auto st = first.db_.Prepare(sql);
    if (!st.ok()) return st.status();
    (*st)->Bind(1, scopes).Bind(2, ids).Bind(3, tags);
    if (Status s = (*st)->Run(); !s.ok()) return s;
  }
  if (!may_fold) return Status::Ok();
  for (const auto& [set, n] : written)
    if (Status s = set->NoteWrites(n); !s.ok()) return s;
  return Status::Ok();
}

Status PgStore::Add(const Item& item) { return JournalOps<PgStore>::Add(*this, item); }
Status PgStore::AddNew(const Item& item) { return JournalOps<PgStore>::AddNew(*this, item); }
Status PgStore::Upsert(const Item& item) { return JournalOps<PgStore>::Upsert(*this, item); }
Status PgStore::Remove(std::string_view id) { return JournalOps<PgStore>::Remove(*this, id); }

Result<size_t> PgStore::PendingChanges() const {
  RECON_PREPARE(st, journal_count_);
  st.Bind(1, scope_id_);
  if (!st.Step())
    return st.status().ok() ? Status::Error(ErrorCode::kInternal, "no count") : st.status();
  return static_cast<size_t>(st.Int(0));
}

Result<uint64_t> PgStore::Count() const {
  std::vector<Symbol> s0;
  if (Status s = ReadSymbols(0, 1, &s0); !s.ok()) return s;
  if (s0[0].count < 0) return Status::Error(ErrorCode::kInternal, "negative reconciliation count");
  return static_cast<uint64_t>(s0[0].count);
}

Status PgStore::PendingDeltas(std::vector<std::pair<Element, int64_t>>* deltas) const {
  deltas->clear();
  RECON_PREPARE(st, journal_scope_);
  st.Bind(1, scope_id_);
  while (st.Step()) {
    ElementId id;
    Tag tag{}, old{};
    bool ok_new, ok_old;
    if (!ReadId(st, 0, &id)) return Malformed("journal row");
    const bool has_new = ReadTag(st, 1, &tag, &ok_new);
    const bool has_old = ReadTag(st, 2, &old, &ok_old);
    if (!ok_new || !ok_old) return Malformed("journal row");
    if (has_new && has_old && tag == old) continue;
    if (has_old) deltas->emplace_back(Element{id, old}, -1);
    if (has_new) deltas->emplace_back(Element{id, tag}, +1);
  }
  return st.status();
}

Status PgStore::ReadSymbols(uint64_t begin, uint64_t end, std::vector<Symbol>* out) const {
  if (begin > end || end > stored_symbols_)
    return Status::Error(ErrorCode::kBadRequest, "symbol range out of bounds");
  out->assign(end - begin, Symbol());
  if (begin == end) return Status::Ok();
  RECON_PREPARE(st, symbols_);
  st.Bind(1, scope_id_)
      .Bind(2, static_cast<int64_t>(begin / kBlockSymbols))
      .Bind(3, static_cast<int64_t>((end - 1) / kBlockSymbols));
  std::vector<std::pair<Element, int64_t>> deltas;
  Symbol block[kBlockSymbols];
  while (st.Step()) {
    if (st.Int(0) == 0) {
      const uint64_t b = static_cast<uint64_t>(st.Int(1));
      const std::string data = st.Text(2);
      if (!DecodeBlock(data.data(), static_cast<int>(data.size()), block))
        return Malformed("block");
      for (uint64_t i = 0; i < kBlockSymbols; ++i) {
        const uint64_t idx = b * kBlockSymbols + i;
        if (idx >= begin && idx < end) (*out)[idx - begin] = block[i];
      }
      continue;
    }
    ElementId id;
    Tag tag{}, old{};
    bool ok_new, ok_old;
    if (!ReadId(st, 2, &id)) return Malformed("journal row");
    const bool has_new = ReadTag(st, 3, &tag, &ok_new);
    const bool has_old = ReadTag(st, 4, &old, &ok_old);
    if (!ok_new || !ok_old) return Malformed("journal row");
    if (has_new && has_old && tag == old) continue;
    if (has_old) deltas.emplace_back(Element{id, old}, -1);
    if (has_new) deltas.emplace_back(Element{id, tag}, +1);
  }
  if (!st.status().ok()) return st.status();
  for (const auto& [e, sign] : deltas) ApplyToRange(e, sign, begin, out);
  return Status::Ok();
}

Status PgStore::ListElements(const ElementId* after, size_t limit, std::vector<Element>* out,
                             bool* more) const {
  out->clear();
  *more = false;
  RECON_PREPARE(st, elements_);
  st.Bind(1, scope_id_);
  st.BindBlob(2, after ? Bytes(*after) : std::string_view());  // '' sorts before every id
  st.Bind(3, static_cast<int64_t>(limit) + 1);
  std::map<ElementId, std::optional<Tag>> overlay;  // the journal past `after`
  std::map<ElementId, Tag> items;                   // the folded items past it
  while (st.Step()) {
    ElementId id;
    Tag tag{};
    bool ok;
    if (!ReadId(st, 1, &id)) return Malformed("row");
    const bool has = ReadTag(st, 2, &tag, &ok);
    if (!ok) return Malformed("row");
    if (st.Int(0) == 0) {
      overlay.emplace(id, has ? std::optional<Tag>(tag) : std::nullopt);
    } else {
      if (!has) return Malformed("item row");
      items.emplace(id, tag);
    }
  }
  if (!st.status().ok()) return st.status();
  for (const auto& [id, tag] : overlay) {  // the journal's word is the last
    if (tag)
      items[id] = *tag;
    else
      items.erase(id);
  }
  for (const auto& [id, tag] : items) {
    if (out->size() == limit) {
      *more = true;
      break;
    }
    out->push_back(Element{id, tag});
  }
  return Status::Ok();
}

Status PgStore::Flush() {
  const bool own = !db_.in_transaction();
  if (Status s = db_.Exec(own ? "BEGIN" : "SAVEPOINT recon_flush"); !s.ok()) return s;
  Status s = FlushLocked();
  if (!s.ok()) {
    (void)db_.Exec(own ? "ROLLBACK" : "ROLLBACK TO SAVEPOINT recon_flush");
    if (!own) (void)db_.Exec("RELEASE SAVEPOINT recon_flush");
    return s;
  }
  return db_.Exec(own ? "COMMIT" : "RELEASE SAVEPOINT recon_flush");
}

Status PgStore::FlushLocked() {
  std::vector<std::pair<Element, int64_t>> deltas;
  if (Status s = PendingDeltas(&deltas); !s.ok()) return s;
  if (!deltas.empty()) {
    std::vector<Symbol> symbols;
    if (Status s = ReadSymbols(0, stored_symbols_, &symbols); !s.ok()) return s;
    std::vector<Symbol> changed(stored_symbols_, Symbol());
    for (const auto& [e, sign] : deltas) ApplyToRange(e, -sign, 0, &changed);
    std::string blob;
    for (uint64_t b = 0; b < stored_symbols_ / kBlockSymbols; ++b) {
      bool dirty = false;
      for (uint64_t i = b * kBlockSymbols; i < (b + 1) * kBlockSymbols && !dirty; ++i)
        dirty = !changed[i].IsZero();
      if (!dirty) continue;
      EncodeBlock(&symbols[b * kBlockSymbols], &blob);
      RECON_PREPARE(st, block_put_);
      st.Bind(1, scope_id_).Bind(2, static_cast<int64_t>(b)).BindBlob(3, blob);
      if (Status s = st.Run(); !s.ok()) return s;
    }
    // The items, in two statements per 10,000: every removal first, then every new tag (a
    // changed item's journal row gives its old tag −1 and its new one +1).
    constexpr size_t kRowsPerStatement = 10000;
    for (int pass = 0; pass < 2; ++pass) {
      const int64_t want = pass == 0 ? -1 : +1;
      std::string ids = "{", tags = "{";
      size_t n = 0;
      auto run = [&]() -> Status {
        if (n == 0) return Status::Ok();
        ids += "}";
        tags += "}";
        RECON_PREPARE(st, want < 0 ? items_del_many_ : items_put_many_);
        st.Bind(1, scope_id_).Bind(2, ids);
        if (want > 0) st.Bind(3, tags);
        ids = "{";
        tags = "{";
        n = 0;
        return st.Run();
      };
      for (const auto& [e, sign] : deltas) {
        if (sign != want) continue;
        ids += (n ? "," : "") + HexEncode(Bytes(e.id));
        tags += (n ? "," : "") + HexEncode(Bytes(e.tag));
        if (++n == kRowsPerStatement)
          if (Status s = run(); !s.ok()) return s;
      }
      if (Status s = run(); !s.ok()) return s;
    }
  }
  RECON_PREPARE(st, journal_clear_);
  st.Bind(1, scope_id_);
  return st.Run();
}

}  // namespace loyalty::recon
