#include "loyalty/pg/pg.h"

#include <libpq-fe.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <cstring>
#include <mutex>

namespace loyalty::pg {
namespace {

constexpr Oid kByteaOid = 17;

struct FaultState {
  std::mutex mu;
  ExecFault fault;
  int seen = 0;
  int fired = 0;
};
std::atomic<bool> g_fault_armed{false};
FaultState& Faults() {
  static FaultState s;
  return s;
}

// The SQLSTATE an armed fault gives this execution, or "".
std::string FaultFor(const std::string& sql) {
  if (!g_fault_armed.load(std::memory_order_relaxed)) return {};
  FaultState& f = Faults();
  std::lock_guard<std::mutex> g(f.mu);
  if (f.fault.sql_contains.empty() || sql.find(f.fault.sql_contains) == std::string::npos)
    return {};
  ++f.seen;
  if (f.seen < f.fault.nth) return {};
  if (f.fault.count >= 0 && f.seen >= f.fault.nth + f.fault.count) return {};
  ++f.fired;
  return f.fault.sqlstate;
}

std::string ResultMessage(PGconn* conn, const PGresult* res) {
  const char* m = res ? PQresultErrorMessage(res) : nullptr;
  std::string msg = (m && *m) ? m : (conn ? PQerrorMessage(conn) : "no connection");
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  return msg;
}

Status ResultError(PGconn* conn, const PGresult* res, std::string_view what) {
  const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  return PgError(state ? state : "", std::string(what) + ": " + ResultMessage(conn, res));
}

}  // namespace

void InjectExecFault(ExecFault f) {
  FaultState& s = Faults();
  std::lock_guard<std::mutex> g(s.mu);
  s.fault = std::move(f);
  s.seen = 0;
  g_fault_armed.store(true, std::memory_order_relaxed);
}

void ClearExecFaults() {
  FaultState& s = Faults();
  std::lock_guard<std::mutex> g(s.mu);
  s.fault = ExecFault{};
  s.seen = 0;
  s.fired = 0;
  g_fault_armed.store(false, std::memory_order_relaxed);
}

int ExecFaultsFired() {
  FaultState& s = Faults();
  std::lock_guard<std::mutex> g(s.mu);
  return s.fired;
}

Status PgError(std::string_view state, std::string_view message) {
  const std::string msg(message);
  if (state.size() != 5) return Status::Error(ErrorCode::kUnavailable, msg);  // no server answer
  const std::string_view cls = state.substr(0, 2);
  if (cls == "23") return Status::Error(ErrorCode::kConstraint, msg);
  // connection exceptions, serialisation failure / deadlock, insufficient resources,
  // operator intervention (shutdown, cancel), system errors (I/O)
  if (cls == "08" || cls == "40" || cls == "53" || cls == "57" || cls == "58")
    return Status::Error(ErrorCode::kUnavailable, msg);
  // lock_not_available: a lock waited for past lock_timeout (another writer holds it); the
  // same statement later may well get it.
  if (state == "55P03") return Status::Error(ErrorCode::kUnavailable, msg);
  return Status::Error(ErrorCode::kInternal, msg);
}

std::string TranslateParams(std::string_view sql, int* count) {
  std::string out;
  out.reserve(sql.size() + 16);
  int max = 0;
  for (size_t i = 0; i < sql.size();) {
    const char c = sql[i];
    if (c == '\'' || c == '"') {  // a literal or quoted identifier: to its closing quote
      size_t j = i + 1;
      while (j < sql.size() && sql[j] != c) ++j;
      j = std::min(j + 1, sql.size());
      out.append(sql.substr(i, j - i));
      i = j;
    } else if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
      size_t j = sql.find('\n', i);
      j = j == std::string_view::npos ? sql.size() : j;
      out.append(sql.substr(i, j - i));
      i = j;
    } else if (c == '?') {
      size_t j = i + 1;
      int n = 0;
      while (j < sql.size() && sql[j] >= '0' && sql[j] <= '9' && n < 100000)
        n = n * 10 + (sql[j++] - '0');
      if (j == i + 1) n = max + 1;
      max = std::max(max, n);
      out += '$';
      out += std::to_string(n);
      i = j;
    } else {
      out += c;
      ++i;
    }
  }
  if (count) *count = max;
  return out;
}

// ------------------------------------------------------------------ Stmt

Stmt::Stmt(Db* db, const std::string* name, const std::string* sql, int nparams)
    : db_(db), name_(name), sql_(sql), values_(nparams), formats_(nparams, 0) {}

Stmt::~Stmt() { Reset(); }

void Stmt::Reset() {
  if (res_) PQclear(res_);
  res_ = nullptr;
  row_ = -1;
  rows_ = 0;
  for (auto& v : values_) v.reset();
  for (int& f : formats_) f = 0;
}

Stmt& Stmt::Bind(int i, int64_t v) {
  if (i >= 1 && i <= static_cast<int>(values_.size())) {
    values_[i - 1] = std::to_string(v);
    formats_[i - 1] = 0;
  }
  return *this;
}

Stmt& Stmt::Bind(int i, std::string_view v) {
  if (i >= 1 && i <= static_cast<int>(values_.size())) {
    values_[i - 1] = std::string(v);
    formats_[i - 1] = 0;
  }
  return *this;
}

Stmt& Stmt::BindBlob(int i, std::string_view v) {
  if (i >= 1 && i <= static_cast<int>(values_.size())) {
    values_[i - 1] = std::string(v);
    formats_[i - 1] = 1;
  }
  return *this;
}

Stmt& Stmt::BindNull(int i) {
  if (i >= 1 && i <= static_cast<int>(values_.size())) values_[i - 1].reset();
  return *this;
}

namespace {
// A statement that changes nothing by itself: safe to send again on a new session when the
// old one turned out dead (a server restart, a failover) before it answered.
bool SafeToRetry(std::string_view sql) {
  size_t i = 0;
  while (i < sql.size() && (sql[i] == ' ' || sql[i] == '\n' || sql[i] == '\t')) ++i;
  auto starts = [&](std::string_view word) {
    if (sql.size() - i < word.size()) return false;
    for (size_t k = 0; k < word.size(); ++k)
      if (std::toupper(static_cast<unsigned char>(sql[i + k])) != word[k]) return false;
    return sql.size() - i == word.size() ||
           !std::isalnum(static_cast<unsigned char>(sql[i + word.size()]));
  };
  return starts("SELECT") || starts("BEGIN") || starts("START") || starts("SET");
}
}  // namespace

bool Stmt::Execute() {
  // A session found dead by this statement, outside a transaction, on a statement that
  // changes nothing: once more on a new session, so that the first request after a restart
  // of the server does not fail (docs/hq.md: a process reconnects at the next request).
  const bool may_retry = !db_->in_transaction() && SafeToRetry(*sql_);
  if (ExecuteOnce()) return true;
  if (!may_retry || PQstatus(db_->conn_) != CONNECTION_BAD) return false;
  status_ = Status::Ok();
  return ExecuteOnce();
}

bool Stmt::ExecuteOnce() {
  if (std::string state = FaultFor(*sql_); !state.empty()) {
    status_ = PgError(state, "execute (injected fault)");
    return false;
  }
  if (!db_->EnsureConnected()) {
    status_ = PgError("", "connection: " + ResultMessage(db_->conn_, nullptr));
    return false;
  }
  auto& prepared = *db_->cache_.at(*sql_);
  if (!prepared.ready) {
    PGresult* p = PQprepare(db_->conn_, name_->c_str(), prepared.sql.c_str(),
                            static_cast<int>(values_.size()), nullptr);
    const bool ok = p && PQresultStatus(p) == PGRES_COMMAND_OK;
    if (!ok) status_ = ResultError(db_->conn_, p, "prepare");
    PQclear(p);
    if (!ok) return false;
    prepared.ready = true;
  }
  std::vector<const char*> vals(values_.size());
  std::vector<int> lens(values_.size());
  for (size_t k = 0; k < values_.size(); ++k) {
    vals[k] = values_[k] ? values_[k]->data() : nullptr;
    lens[k] = values_[k] ? static_cast<int>(values_[k]->size()) : 0;
  }
  res_ = PQexecPrepared(db_->conn_, name_->c_str(), static_cast<int>(values_.size()), vals.data(),
                        lens.data(), formats_.data(), 0);
  const ExecStatusType st = res_ ? PQresultStatus(res_) : PGRES_FATAL_ERROR;
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    status_ = ResultError(db_->conn_, res_, "execute");
    PQclear(res_);
    res_ = nullptr;
    return false;
  }
  rows_ = PQntuples(res_);
  changes_ = 0;
  const char* n = PQcmdTuples(res_);
  if (n && *n) std::from_chars(n, n + std::strlen(n), changes_);
  db_->changes_ = changes_;
  return true;
}

bool Stmt::Step() {
  if (!status_.ok()) return false;
  if (row_ < 0) {
    row_ = 0;
    if (!Execute()) return false;
  } else {
    ++row_;
  }
  return row_ < rows_;
}

Status Stmt::Run() {
  while (Step()) {
  }
  return status_;
}

bool Stmt::IsNull(int c) const {
  return !res_ || row_ < 0 || row_ >= rows_ || c < 0 || c >= PQnfields(res_) ||
         PQgetisnull(res_, row_, c);
}

int64_t Stmt::Int(int c) const {
  if (IsNull(c)) return 0;
  const char* v = PQgetvalue(res_, row_, c);
  int64_t out = 0;
  std::from_chars(v, v + PQgetlength(res_, row_, c), out);
  return out;
}

std::string Stmt::Text(int c) const {
  if (IsNull(c)) return {};
  const char* v = PQgetvalue(res_, row_, c);
  if (PQftype(res_, c) == kByteaOid) {
    size_t len = 0;
    unsigned char* raw = PQunescapeBytea(reinterpret_cast<const unsigned char*>(v), &len);
    if (!raw) return {};
    std::string out(reinterpret_cast<const char*>(raw), len);
    PQfreemem(raw);
    return out;
  }
  return std::string(v, PQgetlength(res_, row_, c));
}

// ------------------------------------------------------------------ Db

Result<std::unique_ptr<Db>> Db::Open(const std::string& conninfo, const std::string& password) {
  // The password goes in as a keyword beside the URI or key=value string, never into it.
  const char* keys[] = {"dbname", "password", "connect_timeout", "application_name", nullptr};
  const char* vals[] = {conninfo.c_str(), password.empty() ? nullptr : password.c_str(), "10",
                        "loyalty-hq", nullptr};
  PGconn* conn = PQconnectdbParams(keys, vals, /*expand_dbname=*/1);
  if (!conn) return Status::Error(ErrorCode::kUnavailable, "PostgreSQL: out of memory");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string msg = ResultMessage(conn, nullptr);
    PQfinish(conn);
    return Status::Error(ErrorCode::kUnavailable, "PostgreSQL: " + msg);
  }
  auto db = std::unique_ptr<Db>(new Db(conn, conninfo, password));
  // Every statement of ours names its values; text in and out is UTF-8, times are integers.
  if (Status s = db->Exec("SET client_encoding = 'UTF8'; SET client_min_messages = warning");
      !s.ok())
    return s;
  return db;
}

Db::~Db() {
  if (conn_) PQfinish(conn_);
}

bool Db::in_transaction() const {
  const PGTransactionStatusType t = PQtransactionStatus(conn_);
  return t == PQTRANS_INTRANS || t == PQTRANS_INERROR || t == PQTRANS_ACTIVE;
}

int Db::server_major() const { return PQserverVersion(conn_) / 10000; }

bool Db::EnsureConnected() {
  if (PQstatus(conn_) == CONNECTION_OK) return true;
  if (in_transaction()) return false;
  PQreset(conn_);
  if (PQstatus(conn_) != CONNECTION_OK) return false;
  for (auto& [sql, p] : cache_) p->ready = false;  // prepared statements died with the session
  return true;
}

Status Db::Exec(std::string_view sql) {
  const bool may_retry = !in_transaction() && SafeToRetry(sql);
  Status s = ExecOnce(sql);
  if (s.ok() || !may_retry || PQstatus(conn_) != CONNECTION_BAD) return s;
  return ExecOnce(sql);  // the session was dead: once more on a new one (Stmt::Execute)
}

Status Db::ExecOnce(std::string_view sql) {
  const std::string text(sql);
  if (std::string state = FaultFor(text); !state.empty())
    return PgError(state, "exec (injected fault)");
  if (!EnsureConnected()) return PgError("", "connection: " + ResultMessage(conn_, nullptr));
  PGresult* res = PQexec(conn_, text.c_str());
  const ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  Status s;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) s = ResultError(conn_, res, "exec");
  PQclear(res);
  return s;
}

Result<std::unique_ptr<Stmt>> Db::Prepare(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    auto p = std::make_unique<Prepared>();
    p->name = "s" + std::to_string(cache_.size() + 1);
    p->sql = TranslateParams(sql, &p->nparams);
    it = cache_.emplace(sql, std::move(p)).first;
  }
  return std::make_unique<Stmt>(this, &it->second->name, &it->first, it->second->nparams);
}

}  // namespace loyalty::pg
