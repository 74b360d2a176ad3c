// The shipped example files must load exactly as shipped: they are the documentation store
// IT copies from.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "loyalty/base/encoding.h"
#include "loyalty/config/config.h"

namespace loyalty::config {
namespace {

const std::string kConfigDir = std::string(LOYALTY_SOURCE_DIR) + "/config";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(ExampleFiles, AgentExampleLoads) {
  auto r = LoadAgentConfig(kConfigDir + "/agent.example.toml");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const AgentConfig& c = *r;
  EXPECT_EQ(c.terminal_id, "T01");
  EXPECT_EQ(c.store_id, "S001");
  EXPECT_EQ(c.timezone, "Asia/Shanghai");
  EXPECT_EQ(c.database, "/var/lib/loyaltyd/ledger.db");
  EXPECT_EQ(c.listen_host, "127.0.0.1");
  EXPECT_EQ(c.listen_port, 8787);
  EXPECT_EQ(c.token_file, kConfigDir + "/api.token");
  // The demo key is the public key of the member-code test vectors.
  ASSERT_EQ(c.hq_public_keys.count(1), 1u);
  EXPECT_EQ(c.hq_public_keys.at(1),
            *Base64UrlDecode("ebVWLo_mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ"));
  ASSERT_EQ(c.channels.size(), 2u);
  EXPECT_EQ(c.channels[0].name, "wechat");
  EXPECT_EQ(c.interval_s, 3600);
  EXPECT_EQ(c.log_file_max_bytes, 10 << 20);
  ASSERT_EQ(c.scanners.size(), 1u);
  EXPECT_EQ(c.scanners[0].kind, "serial");
  EXPECT_EQ(c.scanners[0].path, "/dev/ttyACM0");
  EXPECT_TRUE(c.warnings.empty());
}

// The commented-out examples in the file are valid too: uncomment every "# key = value"
// line and every "# [[scanners]]" header and load the result.
std::string Uncomment(const std::string& text) {
  static const std::regex kSetting(R"(^# ([a-z_]+ = .*|\[\[scanners\]\])$)");
  std::istringstream in(text);
  std::string line, out;
  while (std::getline(in, line)) {
    if (std::regex_match(line, kSetting)) line = line.substr(2);
    out += line + "\n";
  }
  return out;
}

TEST(ExampleFiles, AgentExampleCommentedKeysAreValidWhenUncommented) {
  const std::string out = Uncomment(ReadFile(kConfigDir + "/agent.example.toml"));
  auto r = ParseAgentConfig(out, kConfigDir + "/agent.example.toml");
  ASSERT_TRUE(r.ok()) << r.status().ToString() << "\n" << out;
  EXPECT_EQ(r->rules_file, kConfigDir + "/rules.toml");
  EXPECT_EQ(r->hq_host, "hq.example.com");
  EXPECT_EQ(r->log_format, "json");
  EXPECT_EQ(r->scanners.size(), 5u);
}

TEST(ExampleFiles, HqExampleLoads) {
  auto r = LoadHqConfig(kConfigDir + "/hq.example.toml");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->listen_port, 8443);
  EXPECT_EQ(r->database, kConfigDir + "/hq.db");
  EXPECT_EQ(r->signing_keys.at(1), kConfigDir + "/hq-ed25519.pem");
  EXPECT_EQ(r->pii_key_file, kConfigDir + "/pii.key");
  EXPECT_EQ(r->card_prefix, "88");
}

TEST(ExampleFiles, HqExampleWithTlsUncommented) {
  const std::string out = Uncomment(ReadFile(kConfigDir + "/hq.example.toml"));
  auto r = ParseHqConfig(out, kConfigDir + "/hq.example.toml");
  ASSERT_TRUE(r.ok()) << r.status().ToString() << "\n" << out;
  EXPECT_EQ(r->tls_cert_file, kConfigDir + "/hq.pem");
  EXPECT_EQ(r->log_format, "json");
  EXPECT_TRUE(r->warnings.empty());
}

// operations.md: the example files document every key with its default. Every key of
// docs/configuration.md's tables for agent.toml (but the per-kind [[scanners]] keys, shown in
// commented scanner examples) and hq.toml appears in its example, set or commented out.
TEST(ExampleFiles, EveryDocumentedKeyIsInItsExample) {
  const std::string doc = ReadFile(std::string(LOYALTY_SOURCE_DIR) + "/docs/configuration.md");
  const std::string agent = ReadFile(kConfigDir + "/agent.example.toml");
  const std::string hq = ReadFile(kConfigDir + "/hq.example.toml");
  ASSERT_FALSE(doc.empty() || agent.empty() || hq.empty());
  const std::regex row(R"(^\| (`[a-z_]+`(, `[a-z_]+`)*) \|)");
  const std::regex key("`([a-z_]+)`");
  const std::string* example = nullptr;
  std::istringstream in(doc);
  int checked = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("## agent.toml", 0) == 0) example = &agent;
    if (line.rfind("## hq.toml", 0) == 0) example = &hq;
    if (line.rfind("### `[[scanners]]`", 0) == 0 || line.rfind("## Secret", 0) == 0)
      example = nullptr;
    std::smatch m;
    if (!example || !std::regex_search(line, m, row)) continue;
    const std::string keys = m[1];
    for (std::sregex_iterator k(keys.begin(), keys.end(), key), end; k != end; ++k) {
      const std::regex set("(^|\n)#?\\s*" + (*k)[1].str() + " = ");
      EXPECT_TRUE(std::regex_search(*example, set))
          << (*k)[1] << " (docs/configuration.md) is not in its example file";
      ++checked;
    }
  }
  EXPECT_GT(checked, 40);
}

}  // namespace
}  // namespace loyalty::config
