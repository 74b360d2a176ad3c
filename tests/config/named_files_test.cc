// The files a config names must be regular files where they exist (operations.md: an
// invalid config fails with the file, key and reason): a fifo would block the program that
// opens it, and a folder or a device (/dev/zero) is no database, log, key or certificate.
// Each load runs in a child process given 5 s, so a load that blocks fails the test
// instead of stalling the suite.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "loyalty/config/config.h"
#include "support/process.h"
#include "support/temp_dir_test.h"
#include "test_util.h"

namespace loyalty::config {
namespace {

struct Loaded {
  bool finished = false;  // false: still loading after the time allowed (killed)
  bool ok = false;
  std::string message;
};

// Runs `load` in a child process and waits at most ms for it.
Loaded LoadWithin(const std::function<Status()>& load, int ms = 5000) {
  int fds[2];
  if (::pipe(fds) != 0) {
    ADD_FAILURE() << "pipe";
    return {};
  }
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    const Status s = load();
    const std::string out = (s.ok() ? "1" : "0") + s.message();
    (void)!::write(fds[1], out.data(), out.size());
    ::_exit(0);
  }
  ::close(fds[1]);
  Loaded r;
  if (loyalty::testing::ReapWithin(pid, ms) == -2) {
    loyalty::testing::SignalAndReap(pid, SIGKILL);
    ::close(fds[0]);
    return r;
  }
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;)
    out.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  r.finished = !out.empty();
  r.ok = out.rfind('1', 0) == 0;
  r.message = out.empty() ? "" : out.substr(1);
  return r;
}

class NamedFilesTest : public loyalty::testing::TempDirTest {
 protected:
  void SetUp() override {
    fifo_ = dir_ + "/pipe";
    ASSERT_EQ(::mkfifo(fifo_.c_str(), 0600), 0);
    folder_ = dir_ + "/folder";
    std::filesystem::create_directory(folder_);
    link_ = dir_ + "/link-to-pipe";
    ASSERT_EQ(::symlink(fifo_.c_str(), link_.c_str()), 0);
  }
  // What is not a regular file: a fifo (and a link to one), a folder, a character device.
  std::vector<std::string> NotRegular() const { return {fifo_, link_, folder_, "/dev/zero"}; }

  Loaded LoadAgent(const config::testing::Parts& parts) {
    const std::string file = Write("agent.toml", config::testing::Build(parts), 0644);
    return LoadWithin([file] { return LoadAgentConfig(file).status(); });
  }
  // hq.toml with [hq] hq_body, and a signing key (a file that is not there) unless the
  // body names its own.
  Loaded LoadHq(const std::string& hq_body) {
    const std::string keys = hq_body.find("signing_keys") == std::string::npos
                                 ? "signing_keys = { \"1\" = \"hq-ed25519.pem\" }\n"
                                 : "";
    const std::string file = Write("hq.toml", "[hq]\n" + keys + hq_body, 0644);
    return LoadWithin([file] { return LoadHqConfig(file).status(); });
  }

  std::string fifo_, folder_, link_;
};

// agent.toml: every file the agent (and loyaltyctl) opens, set to each kind of non-file.
TEST_F(NamedFilesTest, AgentFilesThatAreNotRegularAreRefusedNamingTheKey) {
  using config::testing::Parts;
  struct Key {
    std::string name;                                          // dotted, as messages say it
    std::function<void(Parts&, const std::string& path)> set;  // puts path under the key
  };
  const std::string missing = dir_ + "/missing";
  const std::vector<Key> keys = {
      {"agent.database",
       [](Parts& p, const std::string& f) { p.agent += "database = \"" + f + "\"\n"; }},
      {"agent.rules_file",
       [](Parts& p, const std::string& f) { p.agent += "rules_file = \"" + f + "\"\n"; }},
      {"api.token_file",
       [](Parts& p, const std::string& f) { p.api += "token_file = \"" + f + "\"\n"; }},
      {"hq.ca_file",
       [](Parts& p, const std::string& f) {
         p.hq += "url = \"https://hq.example.com\"\nca_file = \"" + f + "\"\n";
       }},
      {"hq.cert_file",
       [&](Parts& p, const std::string& f) {
         p.hq += "url = \"https://hq.example.com\"\ncert_file = \"" + f + "\"\nkey_file = \"" +
                 missing + "\"\n";
       }},
      {"hq.key_file",
       [&](Parts& p, const std::string& f) {
         p.hq += "cert_file = \"" + missing + "\"\nkey_file = \"" + f + "\"\n";
       }},
      {"log.file", [](Parts& p, const std::string& f) { p.log += "file = \"" + f + "\"\n"; }},
  };
  for (const Key& key : keys) {
    for (const std::string& path : NotRegular()) {
      Parts parts;
      key.set(parts, path);
      Loaded r = LoadAgent(parts);
      ASSERT_TRUE(r.finished) << key.name << " = " << path << ": the load blocked";
      EXPECT_FALSE(r.ok) << key.name << " = " << path << " accepted";
      EXPECT_EQ(r.message,
                dir_ + "/agent.toml: " + key.name + ": " + path + ": not a regular file");
    }
    // Nothing there yet passes the load: a database or log is made at start, and any
    // other file's reader says it is missing.
    Parts parts;
    key.set(parts, missing);
    Loaded r = LoadAgent(parts);
    ASSERT_TRUE(r.finished);
    EXPECT_TRUE(r.ok) << key.name << ": " << r.message;
  }
  // A regular file, and a link to one (links are followed as the readers follow them).
  const std::string db = Write("ledger.db", "", 0600);
  const std::string db_link = dir_ + "/ledger-link.db";
  ASSERT_EQ(::symlink(db.c_str(), db_link.c_str()), 0);
  for (const std::string& path : {db, db_link}) {
    Parts parts;
    parts.agent += "database = \"" + path + "\"\n";
    Loaded r = LoadAgent(parts);
    ASSERT_TRUE(r.finished);
    EXPECT_TRUE(r.ok) << r.message;
  }
}

// hq.toml: the SQLite database and every file HQ reads.
TEST_F(NamedFilesTest, HqFilesThatAreNotRegularAreRefusedNamingTheKey) {
  const std::string missing = dir_ + "/missing";
  const std::string tls = "tls_cert_file = \"" + missing + "\"\ntls_key_file = \"" + missing +
                          "\"\nclient_ca_file = \"" + missing + "\"\n";
  // The key as messages say it, and the hq.toml lines that put a path there.
  const std::vector<std::pair<std::string, std::function<std::string(const std::string&)>>> keys = {
      {"hq.database", [](const std::string& f) { return "database = \"" + f + "\"\n"; }},
      {"hq.admin_token_file",
       [](const std::string& f) { return "admin_token_file = \"" + f + "\"\n"; }},
      {"hq.metrics_token_file",
       [](const std::string& f) { return "metrics_token_file = \"" + f + "\"\n"; }},
      {"hq.database_password_file",
       [](const std::string& f) {
         return "database = \"postgresql://hq@127.0.0.1/loyalty\"\n"
                "database_password_file = \"" +
                f + "\"\n";
       }},
      {"hq.pii_key_file", [](const std::string& f) { return "pii_key_file = \"" + f + "\"\n"; }},
      {"hq.signing_keys.\"1\"",
       [](const std::string& f) { return "signing_keys = { \"1\" = \"" + f + "\" }\n"; }},
      {"hq.tls_cert_file",
       [&](const std::string& f) {
         return "tls_cert_file = \"" + f + "\"\ntls_key_file = \"" + missing +
                "\"\nclient_ca_file = \"" + missing + "\"\n";
       }},
      {"hq.tls_key_file",
       [&](const std::string& f) {
         return "tls_cert_file = \"" + missing + "\"\ntls_key_file = \"" + f +
                "\"\nclient_ca_file = \"" + missing + "\"\n";
       }},
      {"hq.client_ca_file",
       [&](const std::string& f) {
         return "tls_cert_file = \"" + missing + "\"\ntls_key_file = \"" + missing +
                "\"\nclient_ca_file = \"" + f + "\"\n";
       }},
      {"hq.crl_file", [&](const std::string& f) { return tls + "crl_file = \"" + f + "\"\n"; }},
      {"hq.rules_file", [](const std::string& f) { return "rules_file = \"" + f + "\"\n"; }},
  };
  for (const auto& [key, lines] : keys) {
    for (const std::string& path : NotRegular()) {
      Loaded r = LoadHq(lines(path));
      ASSERT_TRUE(r.finished) << key << " = " << path << ": the load blocked";
      EXPECT_FALSE(r.ok) << key << " = " << path << " accepted";
      EXPECT_EQ(r.message, dir_ + "/hq.toml: " + key + ": " + path + ": not a regular file");
    }
    Loaded r = LoadHq(lines(missing));
    ASSERT_TRUE(r.finished);
    EXPECT_TRUE(r.ok) << key << ": " << r.message;
  }
}

}  // namespace
}  // namespace loyalty::config
