#include "cluster.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "loyalty/http/client.h"

namespace loyalty::hqload {
namespace {

const std::string kHqBinary = std::string(LOYALTY_BINARY_DIR) + "/hq/loyalty-hq";
// hq/src/pg_store.cc: kWriterLock, taken by pg_advisory_xact_lock(bigint) at every write.
constexpr uint64_t kWriterLock = 0x4c6f79616c747901;

// What the file holds, or what was read of it before an error (empty if none). With read(2):
// a /proc file of a process that exits meanwhile fails with ESRCH, which std::filebuf turns
// into an exception that an istreambuf_iterator does not catch.
std::string ReadAll(const std::filesystem::path& p) {
  std::string out;
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

void WriteFile(const std::filesystem::path& p, const std::string& text, mode_t mode) {
  std::filesystem::remove(p);
  int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, mode);
  if (fd < 0) return;
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  ::fchmod(fd, mode);
  ::close(fd);
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// Fields of /proc/PID/stat after the command: [0] is field 3 (state).
std::vector<std::string> StatFields(pid_t pid) {
  std::string stat = ReadAll("/proc/" + std::to_string(pid) + "/stat");
  size_t paren = stat.rfind(')');
  std::vector<std::string> out;
  if (paren == std::string::npos) return out;
  std::istringstream in(stat.substr(paren + 2));
  for (std::string f; in >> f;) out.push_back(f);
  return out;
}

double Ticks() { return static_cast<double>(::sysconf(_SC_CLK_TCK)); }

std::string Ed25519Pem() {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (!key) return "";
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(n));
  BIO_free(bio);
  EVP_PKEY_free(key);
  return pem;
}

}  // namespace

double ProcessCpuMs(pid_t pid) {
  auto f = StatFields(pid);
  if (f.size() < 13) return -1;
  // utime and stime are fields 14 and 15 (1-based): [11] and [12] here.
  return (std::atof(f[11].c_str()) + std::atof(f[12].c_str())) * 1000.0 / Ticks();
}

double SelfCpuMs() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  auto ms = [](const timeval& t) { return t.tv_sec * 1000.0 + t.tv_usec / 1000.0; };
  return ms(ru.ru_utime) + ms(ru.ru_stime);
}

std::string LoadAverage() {
  std::istringstream in(ReadAll("/proc/loadavg"));
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

double LoadAverage1() { return std::atof(LoadAverage().c_str()); }

std::string AdminToken() { return "hq-load-admin-token"; }

uint16_t FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// --------------------------------------------------------------------------------- PgServer

Result<PgServer> PgServer::Open(const std::filesystem::path& dir) {
  PgServer s;
  s.dir = dir;
  std::string port = Trim(ReadAll(dir / "port"));
  if (port.empty())
    return Status::Error(ErrorCode::kNotFound, (dir / "port").string() +
                                                   " is missing: start the server with "
                                                   "scripts/pg-test-server start DIR");
  s.port = static_cast<uint16_t>(std::atoi(port.c_str()));
  s.loyalty_password = Trim(ReadAll(dir / "loyalty.password"));
  s.superuser_password = Trim(ReadAll(dir / "superuser.password"));
  std::istringstream pidfile(ReadAll(dir / "data" / "postmaster.pid"));
  pidfile >> s.postmaster;
  if (s.postmaster <= 0)
    return Status::Error(ErrorCode::kNotFound, "no postmaster.pid in " + dir.string());
  return s;
}

std::string PgServer::Uri(const std::string& db, const std::string& user) const {
  return "postgresql://" + user + "@127.0.0.1:" + std::to_string(port) + "/" + db;
}

Result<std::unique_ptr<pg::Db>> PgServer::Connect(const std::string& db, bool superuser) const {
  return pg::Db::Open(Uri(db, superuser ? "postgres" : "loyalty"),
                      superuser ? superuser_password : loyalty_password);
}

double PgServer::CpuMs() const {
  auto f = StatFields(postmaster);
  if (f.size() < 15) return -1;
  // Fields 14-17 (1-based): utime, stime, cutime, cstime.
  double ticks = 0;
  for (int i = 11; i <= 14; ++i) ticks += std::atof(f[static_cast<size_t>(i)].c_str());
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    auto c = StatFields(static_cast<pid_t>(std::atoi(name.c_str())));
    if (c.size() < 13 || std::atoi(c[1].c_str()) != postmaster) continue;
    ticks += std::atof(c[11].c_str()) + std::atof(c[12].c_str());
  }
  return ticks * 1000.0 / Ticks();
}

Status PgServer::Admin(const std::vector<std::string>& statements, const std::string& db) const {
  auto c = Connect(db, true);
  if (!c.ok()) return c.status();
  for (const auto& sql : statements) {
    if (Status s = (*c)->Exec(sql); !s.ok())
      return Status::Error(s.code(), sql.substr(0, 80) + ": " + s.message());
  }
  return Status::Ok();
}

// ------------------------------------------------------------------------------- HqProcess

HqProcess::HqProcess(std::filesystem::path dir, std::string database_toml, Tls tls)
    : dir_(std::move(dir)), tls_(std::move(tls)), port_(FreePort()) {
  std::filesystem::create_directories(dir_);
  WriteFile(dir_ / "admin.token", AdminToken() + "\n", 0600);
  if (!std::filesystem::exists(dir_ / "hq-ed25519.pem"))
    WriteFile(dir_ / "hq-ed25519.pem", Ed25519Pem(), 0600);
  // Every terminal of the benchmark connects from 127.0.0.1: no cap per address.
  std::string toml =
      "[log]\nformat = \"json\"\n\n[hq]\nlisten = \"127.0.0.1:" + std::to_string(port_) + "\"\n" +
      database_toml +
      "admin_token_file = \"admin.token\"\n"
      "signing_keys = { \"1\" = \"hq-ed25519.pem\" }\n"
      "card_prefix = \"88\"\npii_key_file = \"pii.key\"\n"
      "max_connections = 4096\nmax_connections_per_address = 0\n"
      "tls_cert_file = \"" +
      tls_.cert_file + "\"\ntls_key_file = \"" + tls_.key_file + "\"\nclient_ca_file = \"" +
      tls_.client_ca_file + "\"\n";
  WriteFile(dir_ / "hq.toml", toml, 0600);
}

HqProcess::~HqProcess() { Kill(); }

Status HqProcess::Start(int timeout_ms) {
  const std::string config = (dir_ / "hq.toml").string();
  const std::string log = (dir_ / "hq.log").string();
  pid_ = ::fork();
  if (pid_ == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::close(fd);
    }
    ::execl(kHqBinary.c_str(), "loyalty-hq", "--config", config.c_str(), nullptr);
    ::_exit(127);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      return Status::Error(ErrorCode::kUnavailable, "loyalty-hq exited at start:\n" + ReadLog());
    }
    auto r = Admin("GET", "/v1/health");
    if (r.ok() && r->first == 200) return Status::Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  Kill();
  return Status::Error(ErrorCode::kTimeout, "loyalty-hq did not start:\n" + ReadLog());
}

int HqProcess::Stop() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int st = 0;
  ::waitpid(pid_, &st, 0);
  pid_ = -1;
  return st;
}

void HqProcess::Kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int st = 0;
  ::waitpid(pid_, &st, 0);
  pid_ = -1;
}

std::string HqProcess::ReadLog() const { return ReadAll(dir_ / "hq.log"); }

Result<std::pair<int, std::string>> HqProcess::Admin(const std::string& method,
                                                     const std::string& target,
                                                     const std::string& body) const {
  http::ClientTlsOptions o;
  o.ca_file = tls_.ca_file;
  http::Client c("127.0.0.1", port_, o);
  http::HeaderList h{{"Authorization", "Bearer " + AdminToken()}};
  auto r = c.Request(method, target, body, std::move(h), 60000);
  if (!r.ok()) return r.status();
  return std::make_pair(r->status, r->body);
}

// ------------------------------------------------------------------------ WriterLockSampler

WriterLockSampler::WriterLockSampler(const PgServer& server, const std::string& db, int period_ms) {
  auto conn = server.Connect(db, true);
  if (!conn.ok()) return;
  thread_ = std::thread([this, c = std::shared_ptr<pg::Db>(std::move(*conn)), period_ms] {
    const std::string sql =
        "SELECT count(*) FILTER (WHERE granted), count(*) FILTER (WHERE NOT granted) FROM "
        "pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database "
        "WHERE datname = current_database()) AND classid = " +
        std::to_string(kWriterLock >> 32) +
        " AND objid = " + std::to_string(kWriterLock & 0xffffffffu) + " AND objsubid = 1";
    while (!stop_.load()) {
      auto st = c->Prepare(sql);
      if (st.ok() && (*st)->Step()) {
        int64_t held = (*st)->Int(0), waiting = (*st)->Int(1);
        ++samples_;
        if (held > 0) ++held_;
        waiters_ += waiting;
        if (waiting > max_waiters_.load()) max_waiters_ = waiting;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(period_ms));
    }
  });
}

WriterLockSampler::~WriterLockSampler() { Stop(); }

void WriterLockSampler::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

WriterLockSampler::Figures WriterLockSampler::figures() const {
  Figures f;
  f.samples = samples_.load();
  if (f.samples > 0) {
    f.held_fraction = static_cast<double>(held_.load()) / static_cast<double>(f.samples);
    f.mean_waiters = static_cast<double>(waiters_.load()) / static_cast<double>(f.samples);
  }
  f.max_waiters = max_waiters_.load();
  return f;
}

// --------------------------------------------------------------------------- StatementStats

StatementStats::StatementStats(const PgServer& server, const std::string& db)
    : server_(server), db_(db) {
  auto c = server_.Connect(db_, true);
  if (!c.ok()) return;
  auto st =
      (*c)->Prepare("SELECT setting FROM pg_settings WHERE name = 'shared_preload_libraries'");
  if (!st.ok() || !(*st)->Step()) return;
  if ((*st)->Text(0).find("pg_stat_statements") == std::string::npos) return;
  available_ = (*c)->Exec("CREATE EXTENSION IF NOT EXISTS pg_stat_statements").ok();
}

void StatementStats::Reset() {
  if (!available_) return;
  auto c = server_.Connect(db_, true);
  // HQ's role in this database only: another run on the same server keeps its figures.
  if (c.ok())
    (void)(*c)->Exec(
        "SELECT pg_stat_statements_reset((SELECT oid FROM pg_roles WHERE rolname = 'loyalty'), "
        "(SELECT oid FROM pg_database WHERE datname = current_database()), 0)");
}

std::vector<StatementStats::Row> StatementStats::Read() {
  std::vector<Row> out;
  if (!available_) return out;
  auto c = server_.Connect(db_, true);
  if (!c.ok()) return out;
  auto st = (*c)->Prepare(
      "SELECT query, calls, total_exec_time::text, rows FROM pg_stat_statements WHERE dbid = "
      "(SELECT oid FROM pg_database WHERE datname = current_database()) AND userid = (SELECT "
      "oid FROM pg_roles WHERE rolname = 'loyalty') ORDER BY total_exec_time DESC");
  if (!st.ok()) return out;
  while ((*st)->Step()) {
    Row r;
    r.query = (*st)->Text(0);
    r.calls = (*st)->Int(1);
    r.total_ms = std::atof((*st)->Text(2).c_str());
    r.rows = (*st)->Int(3);
    out.push_back(std::move(r));
  }
  return out;
}

std::pair<int64_t, double> StatementStats::Totals() {
  if (!available_) return {0, 0};
  if (!kept_) {
    auto c = server_.Connect(db_, true);
    if (!c.ok()) return {0, 0};
    kept_ = std::move(*c);
  }
  auto st = kept_->Prepare(
      "SELECT coalesce(sum(calls), 0)::bigint, coalesce(sum(total_exec_time), 0)::text FROM "
      "pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = "
      "current_database()) AND userid = (SELECT oid FROM pg_roles WHERE rolname = 'loyalty')");
  if (!st.ok() || !(*st)->Step()) return {0, 0};
  return {(*st)->Int(0), std::atof((*st)->Text(1).c_str())};
}

std::vector<double> PgRoundTrips(const PgServer& server, const std::string& db, int n) {
  std::vector<double> out;
  auto c = server.Connect(db);
  if (!c.ok()) return out;
  for (int i = 0; i < n; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    auto st = (*c)->Prepare("SELECT 1");
    if (!st.ok() || !(*st)->Step()) break;
    out.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<WalFigures> ReadWal(const PgServer& server, const std::string& db) {
  auto c = server.Connect(db, true);
  if (!c.ok()) return std::nullopt;
  WalFigures w;
  // The bytes from the WAL's insert position, exact at any moment; pg_stat_wal's counters
  // reach the view only when a backend reports them (at the latest a second after, or at its
  // exit), so a window of a second or two misses some of its syncs and records.
  auto st = (*c)->Prepare(
      "SELECT wal_records, pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint::text, "
      "wal_sync, wal_sync_time::text FROM pg_stat_wal");
  if (!st.ok() || !(*st)->Step()) return std::nullopt;
  w.wal_records = (*st)->Int(0);
  w.wal_bytes = std::atoll((*st)->Text(1).c_str());
  w.wal_sync = (*st)->Int(2);
  w.wal_sync_ms = std::atof((*st)->Text(3).c_str());
  auto x =
      (*c)->Prepare("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()");
  if (x.ok() && (*x)->Step()) w.xact_commit = (*x)->Int(0);
  return w;
}

WalFigures WalGrowth(const WalFigures& before, const WalFigures& after) {
  WalFigures g;
  g.wal_records = after.wal_records - before.wal_records;
  g.wal_bytes = after.wal_bytes - before.wal_bytes;
  g.wal_sync = after.wal_sync - before.wal_sync;
  g.wal_sync_ms = after.wal_sync_ms - before.wal_sync_ms;
  g.xact_commit = after.xact_commit - before.xact_commit;
  return g;
}

}  // namespace loyalty::hqload
