// first_sync: the first sync of a brand-new till in a chain of many members over many stores,
// measured end to end (docs/performance.md, "Issue 11: chain scale", "First sync of a new till
// in 1,000,000 members over 1,000 stores").
//
//   first_sync --pg-dir DIR [--members N] [--stores S] [--store K] [--cases scoped,all]
//              [--lots L] [--consent-share F] [--wechat-share F] [--run-timeout-s T]
//              [--sample-s P] [--pg-work-mem-mb M] [--work DIR] [--keep]
//
// --pg-dir names a server of scripts/pg-test-server (scripts/first-sync-bench starts one with
// the benchmark settings of scripts/hq-load pg-start). Defaults: 1,000,000 members spread
// evenly over 1,000 stores (member i enrolled at store 1 + i mod S), the till in store 1
// ("S0001"), two lots per member, half of them consenting to phone look-up, half with a
// WeChat member card beside the printed card; both cases.
//
// Set-up: a throwaway PKI (tests/support/pki.h) with the till's client certificate; HQ's
// schema made by loyalty-hq itself in a database of its own; the chain's first member
// enrolled through HQ's admin API (POST /v1/members, with the fields the bulk load uses for
// it), then every other member loaded in bulk with COPY (one transaction, HQ stopped): the
// `members` row (name, phone and birthday encrypted with HQ's own PII key and cipher, bound
// to each member's id as HQ binds them; masked name and phone; HQ's phone hash; a change
// sequence value each), its `identities` (the card, and a WeChat card for some), its
// `member_states` row, its `store_members` row (`enrolled` at its store) and its `lots`
// (the balance is their sum); then HQ's change counter set past the last value, and VACUUM
// ANALYZE of those tables. The first member's row as the admin API wrote it is compared
// with what the bulk load writes for it (every plain column equal, the ciphertexts decrypt
// to the same values) and one bulk member's ciphertexts are decrypted, so the rows are
// HQ's own shape. Cases:
//   scoped  the chain as loaded: the till's store holds its ~N/S members in scope;
//   all     a copy of that database (CREATE DATABASE … TEMPLATE) where every member is also
//           `enrolled` at the till's store (store_members rows for all of them): the download
//           before member scope, every member of the chain to the till.
// Each case: a fresh loyalty-hq on its database (TLS, the till's CA), a real loyaltyd with an
// empty ledger as a new lane of the store, then the agent's sync command (POST /v1/sync) and
// its run record polled every 200 ms until the run has a result, timed (as `loyaltyctl sync
// --wait` does, without a process in between).
//
// Figures, per case: members, identities and lots in the ledger after the sync; changes
// pages (HQ's /metrics, route "changes") and their time at HQ; bytes downloaded and uploaded
// (the run's counters: body bytes, before TLS) and round trips; the wall time of the sync
// command and of the run as the agent recorded it; CPU time (user + system, /proc) of
// loyalty-hq, of the whole PostgreSQL server and of loyaltyd during the sync; loyaltyd's RSS
// (VmRSS) after it and its peak (VmHWM), HQ's peak; the ledger's size on disk (the file and
// its -wal) right after the sync and after loyaltyd has stopped; the statements HQ ran
// (pg_stat_statements when preloaded), most total time first. While the sync runs, a line
// every --sample-s seconds: pages so far and the time per page in the last interval, so a
// cost per page that grows with the cursor shows. The load average at each step. A last
// line `RESULT {json}` holds every figure. Exit status 1 when a sync fails, 2 when the
// set-up fails. HQ's statements that have been running for 10 s or more when the run has
// ended are printed and cancelled (pg_cancel_backend), so that HQ answers again and stops.
//
// --pg-work-mem-mb M: ALTER DATABASE … SET work_mem for each case's database before its HQ
// starts (0, the default: the server's, 4 MB on scripts/pg-test-server's). The last changes
// page runs HQ's eviction query over the store's scope; written as NOT IN (before this
// version's NOT EXISTS) PostgreSQL hashed it only when the scope fitted in work_mem ×
// hash_mem_multiplier, and else rescanned the scope for every member the terminal held.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cluster.h"
#include "loyalty/base/encoding.h"
#include "loyalty/base/status.h"
#include "loyalty/codes/mint.h"
#include "loyalty/hq/pii.h"
#include "loyalty/http/client.h"
#include "loyalty/pg/pg.h"
#include "support/pki.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace loyalty::firstsync {
namespace {

using hqload::HqProcess;
using hqload::LoadAverage;
using hqload::PgServer;
using hqload::ProcessCpuMs;
using Clk = std::chrono::steady_clock;

const std::string kAgentBinary = std::string(LOYALTY_BINARY_DIR) + "/agent/loyaltyd";
constexpr char kTerminalId[] = "S0001-NEW";  // replaced by the store's when --store is given
constexpr int64_t kDayMs = 86'400'000;

struct Options {
  std::string pg_dir;
  int64_t members = 1'000'000;
  int stores = 1000;
  int store = 1;
  std::vector<std::string> cases = {"scoped", "all"};
  int lots = 2;
  double consent_share = 0.5;
  double wechat_share = 0.5;
  int run_timeout_s = 3600;
  int sample_s = 10;
  int pg_work_mem_mb = 0;  // 0: the server's work_mem
  std::string work;
  bool keep = false;
};

double Secs(Clk::time_point a, Clk::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

std::string ReadAll(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

void WriteFile(const fs::path& p, const std::string& text, fs::perms perms) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
  fs::permissions(p, perms);
}

std::string StoreId(int k) {
  char b[16];
  std::snprintf(b, sizeof b, "S%04d", k);
  return b;
}

// A share in thousandths, spread over the members without a pattern of their stores.
bool InShare(int64_t i, int64_t salt, double share) {
  return (i * 7919 + salt) % 1000 < static_cast<int64_t>(share * 1000.0 + 0.5);
}

// The chain's member i (0-based): everything the admin API is given for it.
struct MemberSpec {
  uint64_t id = 0;
  std::string name, phone, birthday, card, store, wechat;
  int birthday_month = 0;
  bool consent = false;
  int64_t created_at_ms = 0;
  std::vector<std::pair<int64_t, int64_t>> lots;  // points, expires_at_s
  int64_t balance = 0;
};

class Chain {
 public:
  Chain(const Options& o, int64_t now_ms) : o_(o), now_ms_(now_ms) {}

  MemberSpec Member(int64_t i) const {
    MemberSpec m;
    // Ids as HQ picks them look random (below 2^53); an odd multiplier modulo 2^53 is a
    // bijection, so i + 1 > 0 gives distinct ids, none of them 0.
    m.id = (static_cast<uint64_t>(i + 1) * 0x9E3779B97F4A7C15ull) & ((uint64_t{1} << 53) - 1);
    m.name = "会员" + std::to_string(i);
    char b[32];
    std::snprintf(b, sizeof b, "139%08" PRId64, i);
    m.phone = b;
    m.birthday_month = static_cast<int>(1 + i % 12);
    std::snprintf(b, sizeof b, "%02d-%02d", m.birthday_month, static_cast<int>(1 + (i / 12) % 28));
    m.birthday = b;
    std::snprintf(b, sizeof b, "%013" PRId64, i);
    m.card = codes::MakeCardNumber("88", b);
    m.store = StoreId(static_cast<int>(1 + i % o_.stores));
    if (InShare(i, 13, o_.wechat_share)) m.wechat = "wx-openid-" + std::to_string(i);
    m.consent = InShare(i, 501, o_.consent_share);
    m.created_at_ms = now_ms_ - (30 + i % 300) * kDayMs;
    const int64_t now_s = now_ms_ / 1000;
    for (int k = 0; k < o_.lots; ++k) {
      const int64_t points = 100 + (i * 31 + k * 17) % 900;
      m.lots.emplace_back(points, now_s + (330 - 60 * int64_t{k}) * 86'400);
      m.balance += points;
    }
    return m;
  }

  int64_t now_ms() const { return now_ms_; }

 private:
  const Options& o_;
  int64_t now_ms_;
};

// -------------------------------------------------------------------------- COPY FROM STDIN

class Copy {
 public:
  Copy(PGconn* conn, const std::string& sql) : conn_(conn) {
    PGresult* r = PQexec(conn_, sql.c_str());
    if (PQresultStatus(r) != PGRES_COPY_IN)
      status_ = Status::Error(ErrorCode::kUnavailable, sql + ": " + PQerrorMessage(conn_));
    PQclear(r);
  }
  void Row(const std::string& line) {
    buf_ += line;
    buf_ += '\n';
    ++rows_;
    if (buf_.size() >= (1u << 20)) Flush();
  }
  Status Finish() {
    Flush();
    if (status_.ok() && PQputCopyEnd(conn_, nullptr) != 1)
      status_ = Status::Error(ErrorCode::kUnavailable, PQerrorMessage(conn_));
    for (PGresult* r; (r = PQgetResult(conn_)) != nullptr; PQclear(r)) {
      if (status_.ok() && PQresultStatus(r) != PGRES_COMMAND_OK)
        status_ = Status::Error(ErrorCode::kUnavailable, PQresultErrorMessage(r));
    }
    return status_;
  }
  int64_t rows() const { return rows_; }

 private:
  void Flush() {
    if (status_.ok() && !buf_.empty() &&
        PQputCopyData(conn_, buf_.data(), static_cast<int>(buf_.size())) != 1)
      status_ = Status::Error(ErrorCode::kUnavailable, PQerrorMessage(conn_));
    buf_.clear();
  }
  PGconn* conn_;
  Status status_ = Status::Ok();
  std::string buf_;
  int64_t rows_ = 0;
};

// One row in COPY's text format: the fields joined by tabs.
std::string Tsv(std::initializer_list<std::string> fields) {
  std::string out;
  bool first = true;
  for (const auto& f : fields) {
    if (!first) out.push_back('\t');
    out.append(f);
    first = false;
  }
  return out;
}

// A bytea value in COPY's text format (the backslash of \x doubled).
std::string CopyBytea(const std::string& raw) { return "\\\\x" + HexEncode(raw); }

// ---------------------------------------------------------------------------- processes

pid_t Spawn(const std::vector<std::string>& argv, const fs::path& out, const fs::path& cwd) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::close(fd);
    }
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) ::_exit(126);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

int Reap(pid_t pid) {
  int st = 0;
  ::waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// kB from /proc/PID/status ("VmRSS", "VmHWM"); -1 when gone.
int64_t StatusKb(pid_t pid, const std::string& key) {
  std::istringstream in(ReadAll("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key + ":", 0) == 0) return std::atoll(line.c_str() + key.size() + 1);
  }
  return -1;
}

int64_t FileSize(const fs::path& p) {
  std::error_code ec;
  auto n = fs::file_size(p, ec);
  return ec ? 0 : static_cast<int64_t>(n);
}

// The raw Ed25519 public key of HQ's signing key file, base64url: the agent's hq_public_keys.
std::string PublicKeyOf(const fs::path& pem) {
  FILE* f = std::fopen(pem.c_str(), "r");
  if (!f) return "";
  EVP_PKEY* key = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (!key) return "";
  unsigned char raw[32];
  size_t n = sizeof raw;
  std::string out;
  if (EVP_PKEY_get_raw_public_key(key, raw, &n) == 1)
    out = Base64UrlEncode(std::string(reinterpret_cast<char*>(raw), n));
  EVP_PKEY_free(key);
  return out;
}

// A sample of /metrics: `name{…labels…} value`, every label given present.
double Metric(const std::string& text, const std::string& name,
              const std::vector<std::string>& labels) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name, 0) != 0 || line.size() <= name.size()) continue;
    if (line[name.size()] != '{' && line[name.size()] != ' ') continue;
    bool all = true;
    for (const auto& l : labels) all = all && line.find(l) != std::string::npos;
    if (!all) continue;
    return std::atof(line.c_str() + line.rfind(' ') + 1);
  }
  return 0;
}

struct HqCounters {
  bool answered = false;  // HQ answered /metrics
  double pages = 0, pages_failed = 0, changes_s = 0;
};

HqCounters ReadHqCounters(const HqProcess& hq) {
  HqCounters c;
  auto r = hq.Admin("GET", "/metrics");
  if (!r.ok() || r->first != 200) return c;
  c.answered = true;
  c.pages =
      Metric(r->second, "loyalty_hq_sync_requests_total", {"route=\"changes\"", "result=\"ok\""});
  c.pages_failed = Metric(r->second, "loyalty_hq_sync_requests_total",
                          {"route=\"changes\"", "result=\"failed\""});
  c.changes_s =
      Metric(r->second, "loyalty_hq_sync_request_duration_seconds_sum", {"route=\"changes\""});
  return c;
}

int64_t LedgerCount(const fs::path& db, const std::string& table) {
  sqlite3* h = nullptr;
  int64_t out = -1;
  if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_busy_timeout(h, 5000);
    sqlite3_stmt* st = nullptr;
    const std::string sql = "SELECT count(*) FROM " + table;
    if (sqlite3_prepare_v2(h, sql.c_str(), -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
      out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  sqlite3_close(h);
  return out;
}

// ------------------------------------------------------------------------------ the bench

class Bench {
 public:
  explicit Bench(Options o) : o_(std::move(o)), chain_(o_, NowMs()) {}
  ~Bench();
  Status Setup();
  Status Load();
  Status MakeAllCase();
  json RunCase(const std::string& name, const std::string& db);
  const std::string& db_scoped() const { return db_scoped_; }
  const std::string& db_all() const { return db_all_; }
  json& result() { return result_; }

 private:
  static int64_t NowMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  std::string DatabaseToml(const fs::path& dir, const std::string& db) const;
  std::unique_ptr<HqProcess> MakeHq(const std::string& name, const std::string& db) const;
  Status EnrolReference(HqProcess& hq);
  Status CheckReference(pg::Db& db);
  Status Sql(pg::Db& db, const std::string& sql, const char* what);

  Options o_;
  Chain chain_;
  fs::path work_;
  std::unique_ptr<testing::TestPki> pki_;
  std::optional<PgServer> pg_;
  std::unique_ptr<hq::PiiCipher> pii_;
  std::string terminal_id_, store_id_;
  std::string db_schema_, db_scoped_, db_all_;
  std::vector<std::string> made_dbs_;
  json result_ = json::object();
};

Bench::~Bench() {
  if (o_.keep || !pg_) return;
  for (const auto& db : made_dbs_) (void)pg_->Admin({"DROP DATABASE IF EXISTS " + db});
  fs::remove_all(work_);
}

Status Bench::Sql(pg::Db& db, const std::string& sql, const char* what) {
  Status s = db.Exec(sql);
  if (!s.ok()) return Status::Error(s.code(), std::string(what) + ": " + s.message());
  return s;
}

std::string Bench::DatabaseToml(const fs::path& dir, const std::string& db) const {
  WriteFile(dir / "db.password", pg_->loyalty_password,
            fs::perms::owner_read | fs::perms::owner_write);
  return "database = \"" + pg_->Uri(db) + "\"\ndatabase_password_file = \"db.password\"\n";
}

std::unique_ptr<HqProcess> Bench::MakeHq(const std::string& name, const std::string& db) const {
  const fs::path dir = work_ / ("hq-" + name);
  fs::create_directories(dir);
  // The chain's PII key: the one the bulk load encrypted with (the first HQ makes it).
  if (fs::exists(work_ / "pii.key")) {
    fs::copy_file(work_ / "pii.key", dir / "pii.key", fs::copy_options::overwrite_existing);
    fs::permissions(dir / "pii.key", fs::perms::owner_read | fs::perms::owner_write);
  }
  HqProcess::Tls tls{pki_->server().cert_file, pki_->server().key_file, pki_->ca_file(),
                     pki_->ca_file()};
  return std::make_unique<HqProcess>(dir, DatabaseToml(dir, db), tls);
}

Status Bench::Setup() {
  work_ = o_.work.empty() ? fs::temp_directory_path() / ("first_sync_" + std::to_string(::getpid()))
                          : fs::path(o_.work);
  fs::remove_all(work_);
  fs::create_directories(work_);
  store_id_ = StoreId(o_.store);
  terminal_id_ = o_.store == 1 ? kTerminalId : store_id_ + "-NEW";
  auto pki = testing::TestPki::Create({terminal_id_});
  if (!pki.ok()) return pki.status();
  pki_ = std::move(*pki);
  auto s = PgServer::Open(o_.pg_dir);
  if (!s.ok()) return s.status();
  pg_ = *s;
  const std::string base = "firstsync_" + std::to_string(::getpid());
  db_schema_ = base + "_schema";
  db_scoped_ = base + "_scoped";
  db_all_ = base + "_all";
  made_dbs_ = {db_schema_, db_scoped_, db_all_};
  if (Status st = pg_->Admin({"CREATE DATABASE " + db_schema_ + " OWNER loyalty"}); !st.ok())
    return st;
  // HQ's schema, made by loyalty-hq itself; its PII key becomes the chain's.
  {
    auto made = MakeHq("schema", db_schema_);
    if (Status st = made->Start(); !st.ok()) return st;
    made->Stop();
    fs::copy_file(work_ / "hq-schema" / "pii.key", work_ / "pii.key");
  }
  auto pii = hq::PiiCipher::LoadOrCreate((work_ / "pii.key").string());
  if (!pii.ok()) return pii.status();
  pii_ = std::make_unique<hq::PiiCipher>(std::move(*pii));
  if (Status st = pg_->Admin(
          {"CREATE DATABASE " + db_scoped_ + " TEMPLATE " + db_schema_ + " OWNER loyalty"});
      !st.ok())
    return st;
  std::printf("set-up: PostgreSQL on port %u (%s), HQ's schema by loyalty-hq, database %s\n",
              pg_->port, o_.pg_dir.c_str(), db_scoped_.c_str());
  std::printf("set-up: chain of %" PRId64 " members over %d stores; the new till %s of store %s\n",
              o_.members, o_.stores, terminal_id_.c_str(), store_id_.c_str());
  std::fflush(stdout);
  return Status::Ok();
}

// Member 0 through the admin API, with exactly what the bulk load gives the others.
Status Bench::EnrolReference(HqProcess& hq) {
  const MemberSpec m = chain_.Member(0);
  json body{{"member_id", std::to_string(m.id)},
            {"name", m.name},
            {"phone", m.phone},
            {"birthday", m.birthday},
            {"card_number", m.card},
            {"store_id", m.store},
            {"phone_lookup_consent", m.consent}};
  if (!m.wechat.empty())
    body["identities"] = json::array({{{"channel", "wechat"}, {"external_id", m.wechat}}});
  auto r = hq.Admin("POST", "/v1/members", body.dump());
  if (!r.ok()) return r.status();
  if (r->first != 201) return Status::Error(ErrorCode::kInternal, "POST /v1/members: " + r->second);
  return Status::Ok();
}

// The admin API's row of member 0 against the bulk load's for it, and a bulk member's
// ciphertexts decrypted with HQ's key and binding.
Status Bench::CheckReference(pg::Db& db) {
  auto fail = [](const std::string& what) {
    return Status::Error(ErrorCode::kInternal, "bulk rows differ from HQ's: " + what);
  };
  for (int64_t i : {int64_t{0}, std::max<int64_t>(1, o_.members / 2)}) {
    if (i >= o_.members) continue;
    const MemberSpec m = chain_.Member(i);
    const std::string mid = std::to_string(m.id);
    auto st = db.Prepare(
        "SELECT name_enc, phone_enc, birthday_enc, display_name, phone_masked, phone_hash, "
        "birthday_month, card_number, tier, status, frozen_reason, unfrozen_at_ms, phone_consent, "
        "(SELECT count(*) FROM identities WHERE member_id = m.member_id), "
        "(SELECT count(*) FROM member_states WHERE member_id = m.member_id), "
        "(SELECT string_agg(store_id || ':' || reason, ',') FROM store_members WHERE member_id = "
        "m.member_id) FROM members m WHERE member_id = " +
        mid);
    if (!st.ok()) return st.status();
    if (!(*st)->Step()) return fail("member " + mid + " missing");
    auto dec = [&](int c, const std::string& field) {
      auto v = pii_->Decrypt((*st)->Text(c), mid + "/" + field);
      return v.ok() ? *v : std::string("<undecryptable>");
    };
    if (dec(0, "name") != m.name || dec(1, "phone") != m.phone || dec(2, "birthday") != m.birthday)
      return fail("member " + mid + " PII");
    if ((*st)->Text(3) != hq::MaskName(m.name) || (*st)->Text(4) != hq::MaskPhone(m.phone) ||
        (*st)->Text(5) != pii_->PhoneHash(m.phone) || (*st)->Int(6) != m.birthday_month ||
        (*st)->Text(7) != m.card || (*st)->Text(8) != "member" || (*st)->Text(9) != "active" ||
        !(*st)->Text(10).empty() || (*st)->Int(11) != 0 || (*st)->Int(12) != (m.consent ? 1 : 0))
      return fail("member " + mid + " columns");
    if ((*st)->Int(13) != (m.wechat.empty() ? 1 : 2) || (*st)->Int(14) != 1 ||
        (*st)->Text(15) != m.store + ":enrolled")
      return fail("member " + mid + " identities, states or scope");
  }
  return Status::Ok();
}

Status Bench::Load() {
  auto t0 = Clk::now();
  // Member 0 through HQ itself.
  {
    auto hq = MakeHq("enrol", db_scoped_);
    if (Status st = hq->Start(); !st.ok()) return st;
    if (Status st = EnrolReference(*hq); !st.ok()) return st;
    hq->Stop();
  }
  auto conn = pg_->Connect(db_scoped_);
  if (!conn.ok()) return conn.status();
  pg::Db& db = **conn;
  PGconn* c = db.raw();
  std::printf("load: member 0 enrolled through the admin API; bulk load of %" PRId64
              " more (load average %s)\n",
              o_.members - 1, LoadAverage().c_str());
  std::fflush(stdout);
  auto b0 = Clk::now();
  if (Status st = Sql(db, "BEGIN", "begin"); !st.ok()) return st;
  int64_t change_seq = 0;
  {
    auto st = db.Prepare("SELECT value FROM change_counter WHERE id = 1");
    if (!st.ok()) return st.status();
    if ((*st)->Step()) change_seq = (*st)->Int(0);
  }
  json tables = json::object();
  auto timed = [&](const char* table, const std::function<Status()>& body) -> Status {
    auto t = Clk::now();
    Status s = body();
    tables[table] = std::round(Secs(t, Clk::now()) * 10) / 10;
    std::printf("load: %-14s %6.1f s\n", table, Secs(t, Clk::now()));
    std::fflush(stdout);
    return s;
  };
  Status s = timed("members", [&] {
    Copy cp(c,
            "COPY members (member_id, name_enc, phone_enc, birthday_enc, display_name, "
            "phone_masked, phone_hash, birthday_month, card_number, tier, status, frozen_reason, "
            "unfrozen_at_ms, balance, created_at_ms, change_seq, phone_consent) FROM STDIN");
    for (int64_t i = 1; i < o_.members; ++i) {
      const MemberSpec m = chain_.Member(i);
      const std::string mid = std::to_string(m.id);
      using std::to_string;
      cp.Row(Tsv({mid, CopyBytea(pii_->Encrypt(m.name, mid + "/name")),
                  CopyBytea(pii_->Encrypt(m.phone, mid + "/phone")),
                  CopyBytea(pii_->Encrypt(m.birthday, mid + "/birthday")), hq::MaskName(m.name),
                  hq::MaskPhone(m.phone), pii_->PhoneHash(m.phone), to_string(m.birthday_month),
                  m.card, "member", "active", "", "0", to_string(m.balance),
                  to_string(m.created_at_ms), to_string(change_seq + i), m.consent ? "1" : "0"}));
    }
    return cp.Finish();
  });
  if (s.ok())
    s = timed("identities", [&] {
      Copy cp(c, "COPY identities (channel, external_id, member_id) FROM STDIN");
      for (int64_t i = 1; i < o_.members; ++i) {
        const MemberSpec m = chain_.Member(i);
        cp.Row(Tsv({"card", m.card, std::to_string(m.id)}));
        if (!m.wechat.empty()) cp.Row(Tsv({"wechat", m.wechat, std::to_string(m.id)}));
      }
      return cp.Finish();
    });
  if (s.ok())
    s = timed("member_states", [&] {
      Copy cp(c, "COPY member_states (member_id, at_ms, tier, status) FROM STDIN");
      for (int64_t i = 1; i < o_.members; ++i) {
        const MemberSpec m = chain_.Member(i);
        cp.Row(Tsv({std::to_string(m.id), std::to_string(m.created_at_ms), "member", "active"}));
      }
      return cp.Finish();
    });
  if (s.ok())
    s = timed("store_members", [&] {
      Copy cp(c, "COPY store_members (store_id, member_id, reason, last_at_ms) FROM STDIN");
      for (int64_t i = 1; i < o_.members; ++i) {
        const MemberSpec m = chain_.Member(i);
        cp.Row(Tsv({m.store, std::to_string(m.id), "enrolled", std::to_string(m.created_at_ms)}));
      }
      return cp.Finish();
    });
  if (s.ok())
    s = timed("lots", [&] {
      Copy cp(c,
              "COPY lots (member_id, points, remaining, earned_at_s, expires_at_s, entry_id) "
              "FROM STDIN");
      for (int64_t i = 0; i < o_.members; ++i) {
        const MemberSpec m = chain_.Member(i);
        for (const auto& [points, expires] : m.lots)
          cp.Row(Tsv({std::to_string(m.id), std::to_string(points), std::to_string(points),
                      std::to_string(expires - 365 * 86'400), std::to_string(expires), ""}));
      }
      return cp.Finish();
    });
  // Member 0's balance is its lots' sum, as every other member's; the change counter past
  // the last value the load gave.
  if (s.ok())
    s = Sql(db,
            "UPDATE members SET balance = " + std::to_string(chain_.Member(0).balance) +
                " WHERE member_id = " + std::to_string(chain_.Member(0).id),
            "member 0's balance");
  if (s.ok())
    s = Sql(db,
            "UPDATE change_counter SET value = GREATEST(value, (SELECT max(change_seq) FROM "
            "members)) WHERE id = 1",
            "change counter");
  if (s.ok()) s = Sql(db, "COMMIT", "commit");
  if (!s.ok()) {
    (void)db.Exec("ROLLBACK");
    return s;
  }
  const double copy_s = Secs(b0, Clk::now());
  auto v0 = Clk::now();
  s = Sql(db, "VACUUM (ANALYZE) members, identities, member_states, store_members, lots",
          "vacuum analyze");
  if (!s.ok()) return s;
  const double vacuum_s = Secs(v0, Clk::now());
  if (Status st = CheckReference(db); !st.ok()) return st;
  int64_t bytes = 0;
  {
    auto st = db.Prepare("SELECT pg_database_size(current_database())");
    if (st.ok() && (*st)->Step()) bytes = (*st)->Int(0);
  }
  std::printf("load: %" PRId64
              " members in %.1f s of COPY (one transaction) + %.1f s VACUUM ANALYZE; %.1f s in all "
              "with HQ's start and member 0; database %.0f MB; bulk rows checked against the admin "
              "API's (load average %s)\n",
              o_.members, copy_s, vacuum_s, Secs(t0, Clk::now()), bytes / 1e6,
              LoadAverage().c_str());
  std::fflush(stdout);
  result_["load"] = {{"members", o_.members},
                     {"stores", o_.stores},
                     {"lots_per_member", o_.lots},
                     {"copy_s", copy_s},
                     {"tables_s", tables},
                     {"vacuum_analyze_s", vacuum_s},
                     {"total_s", Secs(t0, Clk::now())},
                     {"database_bytes", bytes},
                     {"load_average_end", LoadAverage()}};
  return Status::Ok();
}

// The `all` case: a copy of the loaded chain, every member also enrolled at the till's store.
Status Bench::MakeAllCase() {
  auto t0 = Clk::now();
  if (Status st =
          pg_->Admin({"CREATE DATABASE " + db_all_ + " TEMPLATE " + db_scoped_ + " OWNER loyalty"});
      !st.ok())
    return st;
  const double copy_s = Secs(t0, Clk::now());
  auto conn = pg_->Connect(db_all_);
  if (!conn.ok()) return conn.status();
  auto t1 = Clk::now();
  if (Status st =
          Sql(**conn,
              "INSERT INTO store_members (store_id, member_id, reason, last_at_ms) SELECT '" +
                  store_id_ +
                  "', member_id, 'enrolled', created_at_ms FROM members ON CONFLICT DO "
                  "NOTHING",
              "scope rows");
      !st.ok())
    return st;
  const double insert_s = Secs(t1, Clk::now());
  auto t2 = Clk::now();
  if (Status st = Sql(**conn, "VACUUM (ANALYZE) store_members", "vacuum"); !st.ok()) return st;
  const double vacuum_s = Secs(t2, Clk::now());
  int64_t in_scope = 0;
  {
    auto st =
        (*conn)->Prepare("SELECT count(*) FROM store_members WHERE store_id = '" + store_id_ + "'");
    if (st.ok() && (*st)->Step()) in_scope = (*st)->Int(0);
  }
  std::printf("load (all): database copied in %.1f s; %" PRId64
              " members in %s's scope after %.1f s of INSERT … SELECT and %.1f s VACUUM ANALYZE\n",
              copy_s, in_scope, store_id_.c_str(), insert_s, vacuum_s);
  std::fflush(stdout);
  result_["load_all"] = {{"copy_database_s", copy_s},
                         {"scope_insert_s", insert_s},
                         {"vacuum_analyze_s", vacuum_s},
                         {"in_scope", in_scope}};
  return Status::Ok();
}

json Bench::RunCase(const std::string& name, const std::string& db) {
  json out{{"case", name}};
  if (o_.pg_work_mem_mb > 0) {
    const std::string set =
        "ALTER DATABASE " + db + " SET work_mem = '" + std::to_string(o_.pg_work_mem_mb) + "MB'";
    if (Status st = pg_->Admin({set}); !st.ok()) {
      out["error"] = st.ToString();
      return out;
    }
    std::printf("%s: %s (HQ's connections to it use that work_mem)\n", name.c_str(), set.c_str());
  }
  auto hq = MakeHq(name, db);
  if (Status st = hq->Start(); !st.ok()) {
    out["error"] = st.ToString();
    return out;
  }
  // The till: a new lane of the store, an empty ledger, mutual TLS with its certificate.
  const fs::path till = work_ / ("till-" + name);
  fs::create_directories(till);
  const uint16_t api_port = hqload::FreePort();
  const std::string token = HexEncode(std::string(16, '\x5a'));
  WriteFile(till / "api.token", token + "\n",
            fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  const auto cert = pki_->client(terminal_id_);
  std::ostringstream toml;
  toml << "[agent]\nterminal_id = \"" << terminal_id_ << "\"\nstore_id = \"" << store_id_
       << "\"\ntimezone = \"Asia/Shanghai\"\ndatabase = \"ledger.db\"\n"
       << "\n[api]\nlisten = \"127.0.0.1:" << api_port << "\"\ntoken_file = \"api.token\"\n"
       << "\n[codes]\nhq_public_keys = { \"1\" = \"" << PublicKeyOf(hq->dir() / "hq-ed25519.pem")
       << "\" }\n"
       << "\n[hq]\nurl = \"https://127.0.0.1:" << hq->port() << "\"\nca_file = \""
       << pki_->ca_file() << "\"\ncert_file = \"" << cert.cert_file << "\"\nkey_file = \""
       << cert.key_file << "\"\n"
       << "\n[sync]\ninterval_s = 0\nrun_timeout_s = " << o_.run_timeout_s << "\n"
       << "\n[log]\nlevel = \"info\"\nformat = \"json\"\n";
  WriteFile(till / "agent.toml", toml.str(), fs::perms::owner_read | fs::perms::owner_write);
  const std::string config = (till / "agent.toml").string();
  pid_t agent = Spawn({kAgentBinary, "--config", config}, till / "agent.log", till);
  {
    http::Client client("127.0.0.1", api_port);
    bool up = false;
    for (int i = 0; i < 300 && !up; ++i) {
      auto r = client.Request("GET", "/v1/health", "", {}, 1000);
      up = r.ok() && r->status == 200;
      if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (!up) {
      ::kill(agent, SIGKILL);
      Reap(agent);
      out["error"] = "loyaltyd did not start: " + ReadAll(till / "agent.log");
      return out;
    }
  }
  const fs::path ledger = till / "ledger.db";
  const fs::path wal = till / "ledger.db-wal";
  const int64_t ledger_before = FileSize(ledger) + FileSize(wal);
  hqload::StatementStats stmts(*pg_, db);
  stmts.Reset();
  const HqCounters m0 = ReadHqCounters(*hq);
  const double hq0 = ProcessCpuMs(hq->pid()), pg0 = pg_->CpuMs(), agent0 = ProcessCpuMs(agent);
  const std::string load0 = LoadAverage();
  std::printf("%s: loyalty-hq pid %d, loyaltyd pid %d; first sync (load average %s)\n",
              name.c_str(), hq->pid(), agent, load0.c_str());
  std::fflush(stdout);

  // Progress while the sync runs: pages so far, time per page in the last interval.
  std::atomic<bool> done{false};
  json timeline = json::array();
  std::mutex timeline_mu;
  const auto t0 = Clk::now();
  std::thread sampler([&] {
    HqCounters last = m0;
    double last_hq = hq0, last_pg = pg0;
    auto last_t = t0;
    while (!done.load()) {
      for (int i = 0; i < o_.sample_s * 10 && !done.load(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (done.load()) break;
      const HqCounters now = ReadHqCounters(*hq);
      const double hq_now = ProcessCpuMs(hq->pid()), pg_now = pg_->CpuMs();
      const auto t = Clk::now();
      if (!now.answered) {
        std::printf(
            "%s: %6.0f s  loyalty-hq did not answer GET /metrics within 60 s (CPU since "
            "the last line: HQ %.1f s, PostgreSQL %.1f s)  load %s\n",
            name.c_str(), Secs(t0, t), (hq_now - last_hq) / 1000, (pg_now - last_pg) / 1000,
            LoadAverage().c_str());
        std::fflush(stdout);
        std::lock_guard<std::mutex> l(timeline_mu);
        timeline.push_back({{"t_s", std::round(Secs(t0, t) * 10) / 10}, {"metrics", false}});
        continue;
      }
      const double pages = now.pages - last.pages;
      json p{{"t_s", std::round(Secs(t0, t) * 10) / 10},
             {"pages", now.pages - m0.pages},
             {"pages_per_s", pages / std::max(1e-9, Secs(last_t, t))},
             {"hq_ms_per_page", pages > 0 ? 1000 * (now.changes_s - last.changes_s) / pages : 0},
             {"hq_cpu_ms_per_page", pages > 0 ? (hq_now - last_hq) / pages : 0},
             {"pg_cpu_ms_per_page", pages > 0 ? (pg_now - last_pg) / pages : 0},
             {"loyaltyd_rss_kb", StatusKb(agent, "VmRSS")},
             {"ledger_bytes", FileSize(ledger) + FileSize(wal)},
             {"load_average", LoadAverage()}};
      std::printf(
          "%s: %6.0f s  %5.0f pages  %5.2f pages/s  HQ %6.0f ms/page (CPU HQ %5.0f, PostgreSQL "
          "%5.0f ms/page)  loyaltyd RSS %5.1f MB  ledger %6.1f MB  load %s\n",
          name.c_str(), Secs(t0, t), now.pages - m0.pages, p["pages_per_s"].get<double>(),
          p["hq_ms_per_page"].get<double>(), p["hq_cpu_ms_per_page"].get<double>(),
          p["pg_cpu_ms_per_page"].get<double>(), StatusKb(agent, "VmRSS") / 1024.0,
          (FileSize(ledger) + FileSize(wal)) / 1e6, LoadAverage().c_str());
      std::fflush(stdout);
      {
        std::lock_guard<std::mutex> l(timeline_mu);
        timeline.push_back(std::move(p));
      }
      last = now;
      last_hq = hq_now;
      last_pg = pg_now;
      last_t = t;
    }
  });
  // The agent's sync command (POST /v1/sync), then its record polled every 200 ms until
  // the run has a result, as `loyaltyctl sync --wait` polls.
  json run = json::object();
  std::string sync_error;
  {
    http::Client client("127.0.0.1", api_port);
    const http::HeaderList auth{{"Authorization", "Bearer " + token}};
    auto started = client.Request("POST", "/v1/sync", "{}", auth, 10000);
    std::string run_id;
    if (started.ok() && started->status == 202) {
      auto j = json::parse(started->body, nullptr, false);
      if (j.is_object() && j.contains("run_id") && j["run_id"].is_string())
        run_id = j["run_id"].get<std::string>();
    }
    if (run_id.empty())
      sync_error = "POST /v1/sync: " + (started.ok() ? started->body : started.status().ToString());
    const auto deadline = Clk::now() + std::chrono::seconds(o_.run_timeout_s + 60);
    while (!run_id.empty() && run.empty() && Clk::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      auto r = client.Request("GET", "/v1/sync", "", auth, 10000);
      if (!r.ok() || r->status != 200) continue;
      auto j = json::parse(r->body, nullptr, false);
      if (!j.is_object() || !j.contains("last_runs") || !j["last_runs"].is_array()) continue;
      for (const auto& one : j["last_runs"]) {
        if (one.value("run_id", "") == run_id && one.value("result", "") != "running" &&
            one.contains("finished_at") && !one["finished_at"].is_null())
          run = one;
      }
    }
    if (!run_id.empty() && run.empty()) sync_error = "the run did not finish in time";
  }
  const double wall_s = Secs(t0, Clk::now());
  done = true;
  sampler.join();
  const double hq_cpu = ProcessCpuMs(hq->pid()) - hq0, pg_cpu = pg_->CpuMs() - pg0,
               agent_cpu = ProcessCpuMs(agent) - agent0;
  // HQ's statements still running in the case's database 10 s or more after the run ended:
  // named, then cancelled so that HQ answers again and stops.
  json stuck = json::array();
  if (auto c = pg_->Connect(db, true); c.ok()) {
    auto st = (*c)->Prepare(
        "SELECT pid, extract(epoch FROM now() - query_start)::bigint, query FROM "
        "pg_stat_activity WHERE datname = current_database() AND state = 'active' AND pid <> "
        "pg_backend_pid() AND now() - query_start > interval '10 seconds'");
    std::vector<int64_t> pids;
    while (st.ok() && (*st)->Step()) {
      std::string q = (*st)->Text(2);
      for (char& ch : q)
        if (ch == '\n' || ch == '\t') ch = ' ';
      std::printf("%s: HQ's statement running for %" PRId64 " s after the run: %s\n", name.c_str(),
                  (*st)->Int(1), q.c_str());
      stuck.push_back({{"running_s", (*st)->Int(1)}, {"query", q}});
      pids.push_back((*st)->Int(0));
    }
    for (int64_t pid : pids) {
      auto cancel = (*c)->Prepare("SELECT pg_cancel_backend(" + std::to_string(pid) + ")");
      if (cancel.ok()) (*cancel)->Step();
    }
    if (!pids.empty()) {
      std::printf("%s: cancelled (pg_cancel_backend)\n", name.c_str());
      std::this_thread::sleep_for(std::chrono::seconds(2));
    }
  }
  const HqCounters m1 = ReadHqCounters(*hq);
  const int64_t rss_kb = StatusKb(agent, "VmRSS"), hwm_kb = StatusKb(agent, "VmHWM");
  const int64_t hq_hwm_kb = StatusKb(hq->pid(), "VmHWM");
  const int64_t db_bytes = FileSize(ledger), wal_bytes = FileSize(wal);
  const std::string load1 = LoadAverage();

  const int64_t members = LedgerCount(ledger, "members"),
                identities = LedgerCount(ledger, "identities"), lots = LedgerCount(ledger, "lots");
  // The ledger at rest: loyaltyd stopped (its last checkpoint folds the WAL in).
  ::kill(agent, SIGTERM);
  const int agent_exit = Reap(agent);
  const int64_t db_stopped = FileSize(ledger), wal_stopped = FileSize(wal);
  // By total time (StatementStats::Read's ORDER BY meets its text column of that name).
  auto top = stmts.Read();
  std::sort(top.begin(), top.end(),
            [](const auto& a, const auto& b) { return a.total_ms > b.total_ms; });
  const double hq_rss_mb = hq_hwm_kb / 1024.0;
  hq->Stop();

  // -1: HQ did not answer /metrics at the end.
  const double pages = m1.answered ? m1.pages - m0.pages : -1;
  const double changes_s = m1.answered ? m1.changes_s - m0.changes_s : -1;
  out.update({{"ok", run.value("result", "") == "ok"},
              {"run", run},
              {"members_in_ledger", members},
              {"identities_in_ledger", identities},
              {"lots_in_ledger", lots},
              {"changes_pages", pages},
              {"changes_pages_failed", m1.answered ? m1.pages_failed - m0.pages_failed : -1},
              {"hq_changes_s", changes_s},
              {"bytes_received", run.value("bytes_received", int64_t{-1})},
              {"bytes_sent", run.value("bytes_sent", int64_t{-1})},
              {"round_trips", run.value("round_trips", int64_t{-1})},
              {"sync_wall_s", wall_s},
              {"cpu_ms", {{"hq", hq_cpu}, {"postgres", pg_cpu}, {"loyaltyd", agent_cpu}}},
              {"loyaltyd_rss_kb", rss_kb},
              {"loyaltyd_peak_rss_kb", hwm_kb},
              {"hq_peak_rss_kb", hq_hwm_kb},
              {"ledger_bytes_before_sync", ledger_before},
              {"ledger_bytes_after_sync", {{"db", db_bytes}, {"wal", wal_bytes}}},
              {"ledger_bytes_stopped", {{"db", db_stopped}, {"wal", wal_stopped}}},
              {"loyaltyd_exit", agent_exit},
              {"statements_running_after", stuck},
              {"pg_work_mem_mb", o_.pg_work_mem_mb},
              {"load_average", {{"start", load0}, {"end", load1}}},
              {"timeline", timeline}});
  std::printf("%s: %s; %" PRId64 " members, %" PRId64 " identities, %" PRId64
              " lots in the ledger; %.0f changes pages (%.0f failed)\n",
              name.c_str(), out["ok"].get<bool>() ? "ok" : ("FAILED " + run.dump()).c_str(),
              members, identities, lots, pages, m1.pages_failed - m0.pages_failed);
  std::printf("%s: downloaded %.1f MB, uploaded %.1f KB (body bytes), %" PRId64
              " round trips; sync command %.1f s wall\n",
              name.c_str(), run.value("bytes_received", int64_t{0}) / 1e6,
              run.value("bytes_sent", int64_t{0}) / 1e3, run.value("round_trips", int64_t{0}),
              wall_s);
  std::printf(
      "%s: CPU during the sync: loyalty-hq %.1f s, PostgreSQL %.1f s, loyaltyd %.1f s; HQ's "
      "time in changes %.1f s (%.0f ms a page); HQ peak RSS %.1f MB\n",
      name.c_str(), hq_cpu / 1000, pg_cpu / 1000, agent_cpu / 1000, changes_s,
      pages > 0 ? 1000 * changes_s / pages : 0.0, hq_rss_mb);
  std::printf(
      "%s: ledger before the sync %.2f MB (file + WAL); after it %.1f MB + %.1f MB WAL; after "
      "loyaltyd stopped %.1f MB + %.1f MB WAL; loyaltyd RSS after the sync %.1f MB (peak %.1f "
      "MB) (load average %s)\n",
      name.c_str(), ledger_before / 1e6, db_bytes / 1e6, wal_bytes / 1e6, db_stopped / 1e6,
      wal_stopped / 1e6, rss_kb / 1024.0, hwm_kb / 1024.0, load1.c_str());
  if (!sync_error.empty()) {
    out["error"] = sync_error;
    std::printf("%s: %s\n", name.c_str(), sync_error.c_str());
  }
  if (!top.empty()) {
    json st = json::array();
    std::printf("%s: statements HQ ran during the sync, most total time first:\n", name.c_str());
    for (size_t i = 0; i < top.size() && i < 10; ++i) {
      std::string q = top[i].query;
      for (char& ch : q)
        if (ch == '\n' || ch == '\t') ch = ' ';
      if (q.size() > 150) q = q.substr(0, 150) + "…";
      std::printf("  %9.1f ms %8" PRId64 " calls %8.3f ms/call %10" PRId64 " rows  %s\n",
                  top[i].total_ms, top[i].calls,
                  top[i].calls ? top[i].total_ms / static_cast<double>(top[i].calls) : 0.0,
                  top[i].rows, q.c_str());
      st.push_back({{"query", q},
                    {"calls", top[i].calls},
                    {"total_ms", top[i].total_ms},
                    {"rows", top[i].rows}});
    }
    out["statements"] = st;
  }
  std::fflush(stdout);
  return out;
}

int Usage() {
  std::fprintf(stderr,
               "usage: first_sync --pg-dir DIR [--members N] [--stores S] [--store K] "
               "[--cases scoped,all] [--lots L] [--consent-share F] [--wechat-share F] "
               "[--run-timeout-s T] [--sample-s P] [--pg-work-mem-mb M] [--work DIR] [--keep]\n");
  return 2;
}

}  // namespace
}  // namespace loyalty::firstsync

int main(int argc, char** argv) {
  using namespace loyalty::firstsync;
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--pg-dir") {
      o.pg_dir = next();
    } else if (a == "--members") {
      o.members = std::atoll(next().c_str());
    } else if (a == "--stores") {
      o.stores = std::atoi(next().c_str());
    } else if (a == "--store") {
      o.store = std::atoi(next().c_str());
    } else if (a == "--cases") {
      o.cases.clear();
      std::istringstream in(next());
      for (std::string c; std::getline(in, c, ',');) o.cases.push_back(c);
    } else if (a == "--lots") {
      o.lots = std::atoi(next().c_str());
    } else if (a == "--consent-share") {
      o.consent_share = std::atof(next().c_str());
    } else if (a == "--wechat-share") {
      o.wechat_share = std::atof(next().c_str());
    } else if (a == "--run-timeout-s") {
      o.run_timeout_s = std::atoi(next().c_str());
    } else if (a == "--pg-work-mem-mb") {
      o.pg_work_mem_mb = std::atoi(next().c_str());
    } else if (a == "--sample-s") {
      o.sample_s = std::atoi(next().c_str());
    } else if (a == "--work") {
      o.work = next();
    } else if (a == "--keep") {
      o.keep = true;
    } else {
      return Usage();
    }
  }
  if (o.pg_dir.empty() || o.members < 1 || o.stores < 1 || o.store < 1 || o.store > o.stores ||
      o.lots < 0 || o.run_timeout_s < 1 || o.run_timeout_s > 3600 || o.sample_s < 1 ||
      o.pg_work_mem_mb < 0)
    return Usage();
  for (const auto& c : o.cases)
    if (c != "scoped" && c != "all") return Usage();

  std::printf("first_sync: %s; nproc %ld; load average %s\n", std::string(argv[0]).c_str(),
              ::sysconf(_SC_NPROCESSORS_ONLN), LoadAverage().c_str());
  Bench bench(o);
  auto fail = [](const loyalty::Status& s) {
    std::fprintf(stderr, "first_sync: set-up failed: %s\n", s.ToString().c_str());
    return 2;
  };
  if (auto s = bench.Setup(); !s.ok()) return fail(s);
  if (auto s = bench.Load(); !s.ok()) return fail(s);
  const bool all = std::find(o.cases.begin(), o.cases.end(), "all") != o.cases.end();
  if (all) {
    if (auto s = bench.MakeAllCase(); !s.ok()) return fail(s);
  }
  bool ok = true;
  json cases = json::array();
  for (const auto& c : o.cases) {
    json r = bench.RunCase(c, c == "all" ? bench.db_all() : bench.db_scoped());
    ok = ok && r.value("ok", false);
    cases.push_back(std::move(r));
  }
  bench.result()["cases"] = cases;
  bench.result()["load_average_end"] = LoadAverage();
  std::printf("RESULT %s\n", bench.result().dump().c_str());
  return ok ? 0 : 1;
}
