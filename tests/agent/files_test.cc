// Secret files and database modes, with a real loyaltyd (operations.md, "Secrets and data
// on disk"): a key or token others can read, or a symbolic link, stops --check-config and
// the start alike, naming the config key and the file; the ledger and its -wal/-shm are
// created 0600.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "harness.h"

namespace loyalty::testing {
namespace {

using nlohmann::json;

constexpr uint64_t kDynamicMember = 1234567890123;  // the vectors' certificate member

const std::string kLoyaltyd = std::string(LOYALTY_BINARY_DIR) + "/agent/loyaltyd";

struct ProcessRun {
  int exit = -1;
  std::string err;
};

// Runs loyaltyd with `args` to completion (it must exit by itself: a config it refuses);
// after timeout_s it is killed (exit 124, from timeout(1)).
ProcessRun RunLoyaltyd(const std::filesystem::path& dir, const std::string& args,
                       int timeout_s = 20) {
  const std::string err_file = (dir / "run.err").string();
  const std::string cmd = "timeout " + std::to_string(timeout_s) + " " + kLoyaltyd + " " + args +
                          " >/dev/null 2>" + err_file;
  ProcessRun r;
  const int status = std::system(cmd.c_str());
  r.exit = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(err_file);
  r.err.assign(std::istreambuf_iterator<char>(in), {});
  return r;
}

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

void WriteText(const std::filesystem::path& p, const std::string& text, mode_t mode) {
  std::ofstream(p) << text;
  ::chmod(p.c_str(), mode);
}

class AgentFilesTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = FreshDir("agent-files"); }
  void TearDown() override {
    agent_.reset();
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }
  std::filesystem::path dir_;
  std::unique_ptr<AgentProcess> agent_;
};

// The terminal's client key for HQ ([hq] key_file) and the POS API token: at 0644 both
// --check-config and a real start exit non-zero and the message names the key and file.
// A self-signed Ed25519 certificate and its key, as `openssl` makes them: <stem>.pem/.key.
void MakeCertificate(const std::filesystem::path& dir, const std::string& stem) {
  const std::string cmd =
      "openssl req -x509 -newkey ed25519 -nodes -days 2 -subj /CN=T01 -keyout " +
      (dir / (stem + ".key")).string() + " -out " + (dir / (stem + ".pem")).string() +
      " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  ::chmod((dir / (stem + ".key")).c_str(), 0600);
  ::chmod((dir / (stem + ".pem")).c_str(), 0644);
}

TEST_F(AgentFilesTest, KeysAndTokensOthersCanReadStopCheckConfigAndStart) {
  MakeCertificate(dir_, "terminal");
  agent_ = std::make_unique<AgentProcess>(dir_,
                                          "\n[hq]\nurl = \"https://127.0.0.1:9\"\ncert_file = "
                                          "\"terminal.pem\"\nkey_file = \"terminal.key\"\n");
  const std::string check = "--check-config --config " + agent_->config_path();
  const std::string start = "--config " + agent_->config_path();
  const std::string key = (dir_ / "terminal.key").string();
  const std::string token = (dir_ / "api.token").string();

  ProcessRun ok = RunLoyaltyd(dir_, check);
  ASSERT_EQ(ok.exit, 0) << ok.err;  // 0600 key, 0640 token (the harness's)

  ASSERT_EQ(::chmod(key.c_str(), 0644), 0);
  for (const std::string& args : {check, start}) {
    ProcessRun r = RunLoyaltyd(dir_, args);
    EXPECT_NE(r.exit, 0) << args;
    EXPECT_NE(r.err.find(agent_->config_path() + ": hq.key_file: " + key + ": has mode 0644"),
              std::string::npos)
        << r.err;
  }
  ASSERT_EQ(::chmod(key.c_str(), 0640),
            0);  // group-readable: only the POS token may be
  EXPECT_NE(RunLoyaltyd(dir_, check).exit, 0);

  // A symbolic link to a private key is refused all the same.
  ASSERT_EQ(::chmod(key.c_str(), 0600), 0);
  std::filesystem::rename(key, dir_ / "real.key");
  ASSERT_EQ(::symlink((dir_ / "real.key").c_str(), key.c_str()), 0);
  ProcessRun link = RunLoyaltyd(dir_, check);
  EXPECT_NE(link.exit, 0);
  EXPECT_NE(link.err.find("hq.key_file: " + key + ": is a symbolic link"), std::string::npos)
      << link.err;
  std::filesystem::remove(key);
  std::filesystem::rename(dir_ / "real.key", key);
  ASSERT_EQ(RunLoyaltyd(dir_, check).exit, 0);

  // The POS token: 0640 is fine (above), 0644 and 0660 are not.
  for (mode_t mode : {0644, 0660}) {
    ASSERT_EQ(::chmod(token.c_str(), mode), 0);
    for (const std::string& args : {check, start}) {
      ProcessRun r = RunLoyaltyd(dir_, args);
      EXPECT_NE(r.exit, 0) << args;
      EXPECT_NE(r.err.find(agent_->config_path() + ": api.token_file: " + token + ": has mode"),
                std::string::npos)
          << r.err;
    }
  }
  ASSERT_EQ(::chmod(token.c_str(), 0600), 0);
  EXPECT_EQ(RunLoyaltyd(dir_, check).exit, 0);
}

// operations.md: an invalid config fails at start with the file, key and reason. [hq]'s TLS
// files load at start as the sync client loads them (no connection is made), and a rules file
// that is not there names agent.rules_file: each stops --check-config and a real start.
TEST_F(AgentFilesTest, HqTlsFilesAndTheRulesFileThatDoNotLoadStopTheStartNamingTheirKey) {
  MakeCertificate(dir_, "terminal");
  MakeCertificate(dir_, "other");
  MakeCertificate(dir_, "hqca");
  WriteText(dir_ / "junk.pem", "-----BEGIN CERTIFICATE-----\nnot base64\n", 0644);
  const std::string good = "\n[hq]\nurl = \"https://127.0.0.1:9\"\nca_file = \"hqca.pem\"\n";
  struct Case {
    std::string hq, agent_key, want;
  };
  const std::vector<Case> cases = {
      {"ca_file = \"nope.pem\"\ncert_file = \"terminal.pem\"\nkey_file = \"terminal.key\"\n", "",
       ": hq.ca_file: TLS CA " + (dir_ / "nope.pem").string() +
           ": cannot open: No such file or directory"},
      {"ca_file = \"junk.pem\"\n", "", ": hq.ca_file: TLS CA"},
      {"ca_file = \"hqca.pem\"\ncert_file = \"nope.pem\"\nkey_file = \"terminal.key\"\n", "",
       ": hq.cert_file: TLS certificate " + (dir_ / "nope.pem").string() +
           ": cannot open: No such file or directory"},
      {"ca_file = \"hqca.pem\"\ncert_file = \"junk.pem\"\nkey_file = \"terminal.key\"\n", "",
       ": hq.cert_file: TLS certificate"},
      {"ca_file = \"hqca.pem\"\ncert_file = \"terminal.pem\"\nkey_file = \"other.key\"\n", "",
       ": hq.key_file: TLS key " + (dir_ / "other.key").string()},
      {"ca_file = \"hqca.pem\"\n", "rules_file = \"nope-rules.toml\"\n", ": agent.rules_file: "},
  };
  for (const Case& c : cases) {
    std::filesystem::remove(dir_ / "agent.toml");
    AgentProcess a(dir_, "\n[hq]\nurl = \"https://127.0.0.1:9\"\n" + c.hq);
    if (!c.agent_key.empty()) {
      // A key of [agent]: into that table, which the harness writes first.
      std::ifstream in(a.config_path());
      std::string text(std::istreambuf_iterator<char>(in), {});
      text.insert(text.find("[agent]\n") + 8, c.agent_key);
      WriteText(a.config_path(), text, 0644);
    }
    for (const std::string& args :
         {"--check-config --config " + a.config_path(), "--config " + a.config_path()}) {
      ProcessRun r = RunLoyaltyd(dir_, args);
      EXPECT_EQ(r.exit, 2) << args << "\n" << r.err;
      EXPECT_NE(r.err.find(a.config_path() + c.want), std::string::npos)
          << "want \"" << c.want << "\" in: " << r.err;
    }
  }
  // All of them loading: the check passes (no connection is made to the unreachable HQ).
  AgentProcess ok(dir_, good + "cert_file = \"terminal.pem\"\nkey_file = \"terminal.key\"\n");
  ProcessRun r = RunLoyaltyd(dir_, "--check-config --config " + ok.config_path());
  EXPECT_EQ(r.exit, 0) << r.err;
}

// A file agent.toml names that is not a regular file (a fifo, which would block the open
// for ever, a folder, a device such as /dev/zero) stops --check-config and the start at
// once: exit 2, the config file, the key, the path and the reason, and nothing made
// beside it (no <database>.lock).
TEST_F(AgentFilesTest, AFifoOrADeviceNamedAsAFileStopsCheckConfigAndTheStartAtOnce) {
  MakeCertificate(dir_, "terminal");
  MakeCertificate(dir_, "hqca");
  const std::string fifo = (dir_ / "pipe").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::filesystem::path folder = dir_ / "folder";
  std::filesystem::create_directory(folder);
  const std::string hq = "\n[hq]\nurl = \"https://127.0.0.1:9\"\n";
  struct Case {
    std::string key, path;
    std::string database;  // in place of the harness's ledger.db, when set
    std::string extra;     // appended to the config (after [log])
  };
  const std::vector<Case> cases = {
      {"hq.ca_file", fifo, "", hq + "ca_file = \"" + fifo + "\"\n"},
      {"hq.cert_file", fifo, "",
       hq + "ca_file = \"hqca.pem\"\ncert_file = \"" + fifo + "\"\nkey_file = \"terminal.key\"\n"},
      {"agent.database", fifo, fifo, ""},
      {"agent.database", "/dev/zero", "/dev/zero", ""},
      {"agent.database", folder.string(), folder.string(), ""},
      {"log.file", fifo, "", "file = \"" + fifo + "\"\n"},
      {"log.file", "/dev/zero", "", "file = \"/dev/zero\"\n"},
  };
  for (const Case& c : cases) {
    std::filesystem::remove(dir_ / "agent.toml");
    AgentProcess a(dir_, c.extra);
    if (!c.database.empty()) {
      std::ifstream in(a.config_path());
      std::string text(std::istreambuf_iterator<char>(in), {});
      const std::string db = "database = \"ledger.db\"";
      text.replace(text.find(db), db.size(), "database = \"" + c.database + "\"");
      WriteText(a.config_path(), text, 0644);
    }
    const std::string want =
        a.config_path() + ": " + c.key + ": " + c.path + ": not a regular file";
    for (const std::string& args :
         {"--check-config --config " + a.config_path(), "--config " + a.config_path()}) {
      const auto t0 = std::chrono::steady_clock::now();
      ProcessRun r = RunLoyaltyd(dir_, args, 5);
      EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5)) << args;
      EXPECT_EQ(r.exit, 2) << c.key << " = " << c.path << ": " << args << "\n" << r.err;
      EXPECT_NE(r.err.find(want), std::string::npos) << "want \"" << want << "\" in: " << r.err;
    }
    if (c.key == "agent.database") {  // nothing made beside it
      EXPECT_FALSE(std::filesystem::exists(c.path + ".lock")) << c.path;
      EXPECT_FALSE(std::filesystem::exists(c.path + "-journal")) << c.path;
    }
  }
}

// A new ledger and its -wal/-shm are 0600 after a real start and one commit, whatever the
// umask leaves; an existing ledger others could read loses those bits at the next start.
TEST_F(AgentFilesTest, TheLedgerAndItsWalAndShmAreCreatedWithoutWorldAccess) {
  const mode_t old_umask = ::umask(022);  // SQLite alone would make them 0644
  agent_ = std::make_unique<AgentProcess>(dir_);
  agent_->Start();
  ::umask(old_umask);
  auto id = agent_->Post("/v1/identify", {{"code", MintCode(kDynamicMember)}});
  ASSERT_EQ(id.status, 200) << id.raw;
  json req{
      {"checkout_id", "co-files"},
      {"identification_id", id.body["identification"]["id"]},
      {"lines",
       json::array(
           {{{"sku", "A"}, {"qty", 1}, {"unit_price_cents", 1990}, {"category", "grocery"}}})}};
  auto quote = agent_->Post("/v1/checkouts/quote", req);
  ASSERT_EQ(quote.status, 200) << quote.raw;
  req["rules_version"] = quote.body["rules_version"];
  req["tender"] = "cash";
  auto commit = agent_->Post("/v1/checkouts/commit", req);
  ASSERT_EQ(commit.status, 200) << commit.raw;
  const std::string db = agent_->db_path();
  EXPECT_EQ(ModeOf(db), 0600u);
  ASSERT_TRUE(std::filesystem::exists(db + "-wal"));
  ASSERT_TRUE(std::filesystem::exists(db + "-shm"));
  EXPECT_EQ(ModeOf(db + "-wal"), 0600u);
  EXPECT_EQ(ModeOf(db + "-shm"), 0600u);

  // An existing ledger made world-readable by hand: the next start takes "others" away and
  // keeps the group's bits (a group store IT gave it on purpose).
  agent_->Stop();
  ASSERT_EQ(::chmod(db.c_str(), 0644), 0);
  agent_->Start();
  EXPECT_EQ(ModeOf(db), 0640u);
  EXPECT_EQ(ModeOf(db + "-wal") & 0007, 0u);
  EXPECT_EQ(ModeOf(db + "-shm") & 0007, 0u);
}

// The daemon's connections keep their locks on the ledger while another program reads it
// (store IT's sqlite3 shell, a backup script): opening and closing the file outside SQLite
// would have released the process's POSIX locks, and the other program's close, finding
// itself the last connection, would checkpoint and delete the WAL under the running daemon
// (https://www.sqlite.org/howtocorrupt.html, 2.2). The WAL stays, and so do the sales.
TEST_F(AgentFilesTest, AnotherProgramReadingTheLedgerLeavesTheDaemonsWalInPlace) {
  agent_ = std::make_unique<AgentProcess>(dir_);
  agent_->Start();
  auto commit = [&](const std::string& id) {
    return agent_->Post(
        "/v1/checkouts/commit",
        {{"checkout_id", id},
         {"member_code", MintCode(kDynamicMember)},
         {"lines", json::array({{{"sku", "A"}, {"qty", 1}, {"unit_price_cents", 1990}}})}});
  };
  ASSERT_EQ(commit("co-before").status, 200);
  const std::string db = agent_->db_path();
  ASSERT_TRUE(std::filesystem::exists(db + "-wal"));
  for (int i = 0; i < 2; ++i) {
    sqlite3* h = nullptr;
    ASSERT_EQ(sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(h, "SELECT count(*) FROM entries", nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(h);
    EXPECT_TRUE(std::filesystem::exists(db + "-wal")) << "pass " << i;
    EXPECT_TRUE(std::filesystem::exists(db + "-shm")) << "pass " << i;
  }
  ASSERT_EQ(commit("co-after").status, 200);
  auto before = agent_->Get("/v1/checkouts/co-before");
  EXPECT_EQ(before.status, 200) << before.raw;
  EXPECT_EQ(agent_->Get("/v1/health").body["ledger"]["entries"], 2);
  EXPECT_EQ(agent_->Stop(), 0);
  // Everything committed is in the file after the daemon is gone.
  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(h, "SELECT count(*) FROM checkouts", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(st, 0), 2);
  sqlite3_finalize(st);
  sqlite3_close(h);
}

}  // namespace
}  // namespace loyalty::testing
