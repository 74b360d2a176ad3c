#include "loyalty/sqlite/sqlite.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <vector>

#include "loyalty/sqlite/db_file.h"

namespace loyalty::sqlite {

bool DamageLatch::damaged() const {
  std::lock_guard<std::mutex> g(mu_);
  return damaged_;
}

std::string DamageLatch::reason() const {
  std::lock_guard<std::mutex> g(mu_);
  return reason_;
}

bool DamageLatch::Latch(const std::string& reason) {
  std::function<void(const std::string&)> f;
  {
    std::lock_guard<std::mutex> g(mu_);
    if (damaged_) return false;
    damaged_ = true;
    reason_ = reason.empty() ? "damaged" : reason;
    f = on_damaged_;
  }
  if (f) f(reason);
  return true;
}

void DamageLatch::OnDamaged(std::function<void(const std::string& reason)> f) {
  std::string now;
  {
    std::lock_guard<std::mutex> g(mu_);
    on_damaged_ = f;
    if (!damaged_) return;
    now = reason_;
  }
  if (f) f(now);
}

namespace {

// One latch per file while any connection to it is open: a corruption the event loop's
// reader meets also stops the writer's commits.
std::shared_ptr<DamageLatch> LatchFor(const std::string& path) {
  static std::mutex mu;
  static std::map<std::string, std::weak_ptr<DamageLatch>> latches;
  if (path.empty() || path == ":memory:" || path.rfind("file:", 0) == 0)
    return std::make_shared<DamageLatch>();
  std::error_code ec;
  std::string key = std::filesystem::weakly_canonical(path, ec).string();
  if (ec) key = path;
  std::lock_guard<std::mutex> g(mu);
  for (auto it = latches.begin(); it != latches.end();)
    it = it->second.expired() ? latches.erase(it) : std::next(it);
  auto& slot = latches[key];
  auto latch = slot.lock();
  if (!latch) {
    latch = std::make_shared<DamageLatch>();
    slot = latch;
  }
  return latch;
}

// The step fault seam (StepFault in sqlite.h).
struct ArmedFault {
  StepFault f;
  int seen = 0;
  int fired = 0;
};
std::atomic<bool> g_faults_armed{false};
std::atomic<int> g_faults_fired{0};
std::mutex g_faults_mu;
std::vector<ArmedFault>& Faults() {
  static std::vector<ArmedFault> faults;
  return faults;
}

// The rc an armed fault gives this step of the statement, or SQLITE_OK.
int InjectedRc(sqlite3_stmt* s) {
  const char* sql = sqlite3_sql(s);
  std::string_view text = sql ? sql : "";
  std::lock_guard<std::mutex> g(g_faults_mu);
  for (auto& a : Faults()) {
    if (text.find(a.f.sql_contains) == std::string_view::npos) continue;
    ++a.seen;
    if (a.seen < a.f.nth || (a.f.count >= 0 && a.fired >= a.f.count)) continue;
    ++a.fired;
    ++g_faults_fired;
    return a.f.rc;
  }
  return SQLITE_OK;
}

}  // namespace

void InjectStepFault(StepFault f) {
  std::lock_guard<std::mutex> g(g_faults_mu);
  Faults().push_back(ArmedFault{std::move(f)});
  g_faults_armed = true;
}

void ClearStepFaults() {
  std::lock_guard<std::mutex> g(g_faults_mu);
  Faults().clear();
  g_faults_armed = false;
  g_faults_fired = 0;
}

int StepFaultsFired() { return g_faults_fired.load(); }

bool IsCorruption(int rc) { return (rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB; }

Status SqliteError(sqlite3* db, int rc, std::string_view what) {
  std::string msg = std::string(what) + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc & 0xff) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Status::Error(ErrorCode::kLedgerDamaged, msg);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_NOMEM:
      return Status::Error(ErrorCode::kUnavailable, msg);
    case SQLITE_CONSTRAINT:
      return Status::Error(ErrorCode::kConstraint, msg);
    default:
      return Status::Error(ErrorCode::kInternal, msg);
  }
}

Stmt& Stmt::Bind(int i, int64_t v) {
  sqlite3_bind_int64(s_, i, v);
  return *this;
}
Stmt& Stmt::Bind(int i, std::string_view v) {
  sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}
Stmt& Stmt::BindBlob(int i, std::string_view v) {
  sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}
Stmt& Stmt::BindNull(int i) {
  sqlite3_bind_null(s_, i);
  return *this;
}

bool Stmt::Step() {
  if (g_faults_armed.load(std::memory_order_relaxed)) {
    if (int rc = InjectedRc(s_); rc != SQLITE_OK) {
      if (status_.ok()) status_ = SqliteError(nullptr, rc, "step (injected fault)");
      if (damage_ && IsCorruption(rc)) damage_->Latch(status_.message());
      return false;
    }
  }
  int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) return true;
  if (rc != SQLITE_DONE && status_.ok()) {
    status_ = SqliteError(db_, rc, "step");
    if (damage_ && IsCorruption(rc)) damage_->Latch(status_.message());
  }
  return false;
}

Status Stmt::Run() {
  while (Step()) {
  }
  return status_;
}

std::string Stmt::Text(int c) const {
  const void* p = sqlite3_column_blob(s_, c);
  int n = sqlite3_column_bytes(s_, c);
  return p ? std::string(static_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
}

void Stmt::Reset() {
  if (s_) {
    // The step's error was reported through status(); reset repeats it.
    (void)sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
}

Result<std::unique_ptr<Db>> Db::Open(const std::string& path, bool read_only) {
  sqlite3* db = nullptr;
  int flags = read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  flags |= SQLITE_OPEN_NOMUTEX;
  if (!read_only) {
    // New databases and their -wal/-shm are created 0600 (operations.md); see db_file.h.
    if (Status s = PrepareDatabaseFile(path); !s.ok()) return s;
  }
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    Status s = SqliteError(db, rc, "open " + path);
    sqlite3_close(db);
    return s;
  }
  sqlite3_extended_result_codes(db, 0);
  sqlite3_busy_timeout(db, 5000);
  return std::unique_ptr<Db>(new Db(db, LatchFor(path)));
}

Result<std::string> Db::ReadFileHead(size_t n) {
  sqlite3_file* file = nullptr;
  int rc = sqlite3_file_control(db_, "main", SQLITE_FCNTL_FILE_POINTER, &file);
  if (rc != SQLITE_OK || file == nullptr || file->pMethods == nullptr)
    return Status::Error(ErrorCode::kUnavailable, "the database file is not open");
  sqlite3_int64 size = 0;
  rc = file->pMethods->xFileSize(file, &size);
  if (rc != SQLITE_OK) return SqliteError(db_, rc, "file size");
  std::string head(std::min<size_t>(n, static_cast<size_t>(std::max<sqlite3_int64>(size, 0))),
                   '\0');
  if (head.empty()) return head;
  rc = file->pMethods->xRead(file, head.data(), static_cast<int>(head.size()), 0);
  if (rc != SQLITE_OK) return SqliteError(db_, rc, "reading the file's header");
  return head;
}

Status Db::Error(int rc, std::string_view what) {
  Status s = SqliteError(db_, rc, what);
  if (IsCorruption(rc)) damage_->Latch(s.message());
  return s;
}

Db::~Db() {
  for (auto& [sql, s] : cache_) sqlite3_finalize(s);
  sqlite3_close(db_);
}

Status Db::Exec(std::string_view sql) {
  char* err = nullptr;
  std::string text(sql);
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    Status s = Error(rc, "exec");  // SqliteError adds the message (err is the same)
    sqlite3_free(err);
    return s;
  }
  return Status::Ok();
}

Result<std::unique_ptr<Stmt>> Db::Prepare(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    sqlite3_stmt* s = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &s, nullptr);
    if (rc != SQLITE_OK) return Error(rc, "prepare");
    it = cache_.emplace(sql, s).first;
  }
  return std::make_unique<Stmt>(db_, it->second, damage_.get());
}

Result<std::unique_ptr<Stmt>> Db::Prepare(const char* literal_sql) {
  auto it = by_literal_.find(literal_sql);
  if (it != by_literal_.end()) return std::make_unique<Stmt>(db_, it->second, damage_.get());
  auto st = Prepare(std::string(literal_sql));
  if (st.ok()) by_literal_.emplace(literal_sql, cache_.at(literal_sql));
  return st;
}

}  // namespace loyalty::sqlite
