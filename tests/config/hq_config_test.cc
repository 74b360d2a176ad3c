#include <gtest/gtest.h>

#include <string>

#include "loyalty/config/config.h"

namespace loyalty::config {
namespace {

constexpr char kHqFile[] = "/srv/hq/hq.toml";

Result<HqConfig> ParseHq(const std::string& hq_body, const std::string& rest = "") {
  return ParseHqConfig("[hq]\n" + hq_body + "\n" + rest, kHqFile);
}

const std::string kKeys = "signing_keys = { \"1\" = \"hq-ed25519.pem\" }\n";
const std::string kTls =
    "tls_cert_file = \"hq.pem\"\ntls_key_file = \"hq.key\"\nclient_ca_file = \"ca.pem\"\n";

#define EXPECT_HQ_ERROR(result, key_and_reason)                                       \
  do {                                                                                \
    auto r_ = (result);                                                               \
    ASSERT_FALSE(r_.ok());                                                            \
    EXPECT_EQ(r_.status().code(), ErrorCode::kConfigInvalid);                         \
    EXPECT_EQ(r_.status().message(), std::string(kHqFile) + ": " + (key_and_reason)); \
  } while (0)

TEST(HqConfig, AMetricsTokenFileIsResolvedAndOnlyInHq) {
  auto r = ParseHq("metrics_token_file = \"scrape.token\"\n" + kKeys);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->metrics_token_file, "/srv/hq/scrape.token");
  auto top = ParseHqConfig("metrics_token_file = \"scrape.token\"\n[hq]\n" + kKeys, kHqFile);
  EXPECT_FALSE(top.ok());
}

TEST(HqConfig, DefaultsResolvedAgainstTheConfigFolder) {
  auto r = ParseHq(kKeys);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const HqConfig& c = *r;
  EXPECT_EQ(c.path, kHqFile);
  EXPECT_EQ(c.listen, "127.0.0.1:8443");
  EXPECT_EQ(c.listen_host, "127.0.0.1");
  EXPECT_EQ(c.listen_port, 8443);
  EXPECT_EQ(c.database, "/srv/hq/hq.db");
  EXPECT_EQ(c.admin_token_file, "/srv/hq/admin.token");
  EXPECT_EQ(c.metrics_token_file, "");  // none: loopback or the admin token
  ASSERT_EQ(c.signing_keys.size(), 1u);
  EXPECT_EQ(c.signing_keys.at(1), "/srv/hq/hq-ed25519.pem");
  EXPECT_EQ(c.tls_cert_file, "");
  EXPECT_EQ(c.card_prefix, "88");
  EXPECT_EQ(c.pii_key_file, "/srv/hq/pii.key");
  EXPECT_EQ(c.timezone, "Asia/Shanghai");
  EXPECT_EQ(c.log_level, "info");
  EXPECT_EQ(c.log_format, "");
  ASSERT_EQ(c.warnings.size(), 1u);
  EXPECT_EQ(c.warnings[0], std::string(kHqFile) +
                               ": hq.listen: plain HTTP without TLS (loopback only): terminals are "
                               "trusted by the id they name");
}

TEST(HqConfig, TlsAllowsAPublicListenAddress) {
  auto r = ParseHq(kKeys + kTls + "listen = \"0.0.0.0:443\"\ndatabase = \"/var/lib/hq/hq.db\"\n",
                   "[log]\nlevel = \"debug\"\nformat = \"json\"\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->listen_host, "0.0.0.0");
  EXPECT_EQ(r->listen_port, 443);
  EXPECT_EQ(r->tls_cert_file, "/srv/hq/hq.pem");
  EXPECT_EQ(r->tls_key_file, "/srv/hq/hq.key");
  EXPECT_EQ(r->client_ca_file, "/srv/hq/ca.pem");
  EXPECT_EQ(r->database, "/var/lib/hq/hq.db");
  EXPECT_EQ(r->log_level, "debug");
  EXPECT_EQ(r->log_format, "json");
  EXPECT_TRUE(r->warnings.empty());
  auto warning =
      ParseHq(kKeys + kTls + "listen = \"0.0.0.0:443\"\n", "[log]\nlevel = \"warning\"\n");
  ASSERT_TRUE(warning.ok()) << warning.status().ToString();
  EXPECT_EQ(warning->log_level, "warn");  // spdlog's name for it
}

TEST(HqConfig, PlainHttpOnlyOnLoopback) {
  EXPECT_HQ_ERROR(ParseHq(kKeys + "listen = \"0.0.0.0:8443\"\n"),
                  "hq.listen: '0.0.0.0:8443' is not a loopback address (plain HTTP is allowed on "
                  "loopback only; set "
                  "tls_cert_file, tls_key_file and client_ca_file)");
  EXPECT_HQ_ERROR(ParseHq(kKeys + "listen = \"127.0.0.1:65536\"\n"),
                  "hq.listen: '127.0.0.1:65536': port 65536 is out of range 1..65535");
}

TEST(HqConfig, TlsKeysComeInThrees) {
  const std::string reason =
      ": required with the other TLS keys (set tls_cert_file, tls_key_file and client_ca_file, or "
      "none of them for plain "
      "HTTP on loopback)";
  EXPECT_HQ_ERROR(ParseHq(kKeys + "tls_cert_file = \"hq.pem\"\n"), "hq.tls_key_file" + reason);
  EXPECT_HQ_ERROR(ParseHq(kKeys + "tls_cert_file = \"hq.pem\"\ntls_key_file = \"hq.key\"\n"),
                  "hq.client_ca_file" + reason);
  EXPECT_HQ_ERROR(ParseHq(kKeys + "client_ca_file = \"ca.pem\"\n"), "hq.tls_cert_file" + reason);
}

TEST(HqConfig, SigningKeys) {
  EXPECT_HQ_ERROR(
      ParseHq(""),
      "hq.signing_keys: at least one signing key is required to certify member devices");
  EXPECT_HQ_ERROR(
      ParseHq("signing_keys = { \"300\" = \"k.pem\" }\n"),
      "hq.signing_keys.\"300\": a key id must be a whole number 0..255 without leading zeros");
  EXPECT_HQ_ERROR(ParseHq("signing_keys = { \"1\" = \"\" }\n"),
                  "hq.signing_keys.\"1\": must name a PEM file");
  EXPECT_HQ_ERROR(ParseHq("signing_keys = \"k.pem\"\n"),
                  "hq.signing_keys: expected a table of key id = value (e.g. { \"1\" = \"...\" }), "
                  "got a string");
  auto r = ParseHq("signing_keys = { \"1\" = \"old.pem\", \"2\" = \"/keys/new.pem\" }\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->signing_keys.at(1), "/srv/hq/old.pem");
  EXPECT_EQ(r->signing_keys.at(2), "/keys/new.pem");
}

TEST(HqConfig, OtherKeys) {
  EXPECT_HQ_ERROR(ParseHq(kKeys + "card_prefix = \"8x\"\n"),
                  "hq.card_prefix: '8x' must be 1..8 digits");
  EXPECT_HQ_ERROR(ParseHq(kKeys + "databse = \"x.db\"\n"),
                  "hq.databse: unknown key (did you mean 'database'?)");
  EXPECT_HQ_ERROR(ParseHq(kKeys + "pii_key_file = \"\"\n"), "hq.pii_key_file: must not be empty");
  EXPECT_HQ_ERROR(
      ParseHq(kKeys, "[log]\nlevel = \"loud\"\n"),
      "log.level: 'loud' is not one of trace | debug | info | warn | warning | error | critical | "
      "off");
  EXPECT_HQ_ERROR(ParseHq(kKeys, "[log]\nfile = \"hq.log\"\n"), "log.file: unknown key");
  EXPECT_HQ_ERROR(ParseHq(kKeys, "[agent]\n"), "agent: unknown key");
  auto top = ParseHqConfig("listen = \"127.0.0.1:1\"\n[hq]\n" + kKeys, kHqFile);
  ASSERT_FALSE(top.ok());
  EXPECT_EQ(top.status().message(),
            std::string(kHqFile) + ": listen: unknown key at the top level (it belongs in [hq])");
  auto syntax = ParseHqConfig("[hq\n", kHqFile);
  ASSERT_FALSE(syntax.ok());
  EXPECT_EQ(syntax.status().message().rfind(std::string(kHqFile) + ":1:", 0), 0u)
      << syntax.status().message();
}

// Connection limits and the CRL (docs/http.md, docs/tls.md): defaults, the edges of each
// range, and crl_file only with TLS.
TEST(HqConfig, ConnectionLimitsAndCrl) {
  auto d = ParseHq(kKeys);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->max_connections, 4096);
  EXPECT_EQ(d->max_connections_per_address, 64);
  EXPECT_EQ(d->crl_file, "");
  EXPECT_EQ(ParseHq(kKeys + "max_connections = 1\n")->max_connections, 1);
  EXPECT_EQ(ParseHq(kKeys + "max_connections = 65536\n")->max_connections, 65536);
  EXPECT_HQ_ERROR(ParseHq(kKeys + "max_connections = 0\n"),
                  "hq.max_connections: 0 is out of range 1..65536");
  EXPECT_HQ_ERROR(ParseHq(kKeys + "max_connections = 65537\n"),
                  "hq.max_connections: 65537 is out of range 1..65536");
  EXPECT_EQ(ParseHq(kKeys + "max_connections_per_address = 0\n")->max_connections_per_address, 0);
  EXPECT_EQ(ParseHq(kKeys + "max_connections_per_address = 65536\n")->max_connections_per_address,
            65536);
  EXPECT_HQ_ERROR(ParseHq(kKeys + "max_connections_per_address = -1\n"),
                  "hq.max_connections_per_address: -1 is out of range 0..65536");
  EXPECT_HQ_ERROR(ParseHq(kKeys + "max_connections = \"64\"\n"),
                  "hq.max_connections: expected an integer, got a string");
  auto crl = ParseHq(kKeys + kTls + "crl_file = \"crl.pem\"\n");
  ASSERT_TRUE(crl.ok()) << crl.status().ToString();
  EXPECT_EQ(crl->crl_file, "/srv/hq/crl.pem");
  EXPECT_HQ_ERROR(
      ParseHq(kKeys + "crl_file = \"crl.pem\"\n"),
      "hq.crl_file: needs TLS (tls_cert_file, tls_key_file and client_ca_file): without client "
      "certificates there is nothing to revoke");
  auto top = ParseHqConfig("crl_file = \"crl.pem\"\n[hq]\n" + kKeys, kHqFile);
  ASSERT_FALSE(top.ok());
  EXPECT_NE(top.status().message().find("it belongs in [hq]"), std::string::npos);
}

// The scope of a store and the life of its phone look-up key, at their edges.
TEST(HqConfig, ScopeAndPhoneKeyDays) {
  auto d = ParseHq(kKeys);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->member_scope_months, 12);
  EXPECT_EQ(d->phone_key_days, 30);
  EXPECT_EQ(ParseHq(kKeys + "phone_key_days = 1\n")->phone_key_days, 1);
  EXPECT_EQ(ParseHq(kKeys + "phone_key_days = 365\n")->phone_key_days, 365);
  EXPECT_HQ_ERROR(ParseHq(kKeys + "phone_key_days = 0\n"),
                  "hq.phone_key_days: 0 is out of range 1..365");
  EXPECT_HQ_ERROR(ParseHq(kKeys + "phone_key_days = 366\n"),
                  "hq.phone_key_days: 366 is out of range 1..365");
  EXPECT_HQ_ERROR(ParseHq(kKeys + "member_scope_months = 121\n"),
                  "hq.member_scope_months: 121 is out of range 1..120");
}

// Workers: each a thread with its own database connection. PostgreSQL takes several (two
// unless set), SQLite one writer only.
TEST(HqConfig, Workers) {
  const std::string pg = "database = \"postgresql://loyalty@127.0.0.1:5432/loyalty\"\n";
  EXPECT_EQ(ParseHq(kKeys)->workers, 1);
  EXPECT_EQ(ParseHq(kKeys + "workers = 1\n")->workers, 1);
  EXPECT_EQ(ParseHq(kKeys + pg)->workers, 2);
  EXPECT_EQ(ParseHq(kKeys + pg + "workers = 1\n")->workers, 1);
  EXPECT_EQ(ParseHq(kKeys + pg + "workers = 64\n")->workers, 64);
  EXPECT_HQ_ERROR(ParseHq(kKeys + pg + "workers = 0\n"), "hq.workers: 0 is out of range 1..64");
  EXPECT_HQ_ERROR(ParseHq(kKeys + pg + "workers = 65\n"), "hq.workers: 65 is out of range 1..64");
  EXPECT_HQ_ERROR(ParseHq(kKeys + pg + "workers = \"4\"\n"),
                  "hq.workers: expected an integer, got a string");
  EXPECT_HQ_ERROR(ParseHq(kKeys + "workers = 2\n"),
                  "hq.workers: 2: a SQLite database has one writer; more workers need "
                  "PostgreSQL (database = \"postgresql://…\")");
  auto top = ParseHqConfig("workers = 2\n[hq]\n" + kKeys, kHqFile);
  ASSERT_FALSE(top.ok());
  EXPECT_NE(top.status().message().find("it belongs in [hq]"), std::string::npos);
}

// The chain's calendar: the same zone forms as agent.timezone, and one that does not load is
// refused with the key named.
TEST(HqConfig, TimeZone) {
  for (const char* zone : {"Asia/Urumqi", "UTC", "+08:00", "-03:30"}) {
    auto r = ParseHq(kKeys + "timezone = \"" + zone + "\"\n");
    ASSERT_TRUE(r.ok()) << zone << ": " << r.status().ToString();
    EXPECT_EQ(r->timezone, zone);
  }
  auto bad = ParseHq(kKeys + "timezone = \"Mars/Olympus\"\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message().rfind(std::string(kHqFile) + ": hq.timezone: ", 0), 0u)
      << bad.status().message();
  EXPECT_HQ_ERROR(ParseHq(kKeys + "timezone = 8\n"),
                  "hq.timezone: expected a string, got an integer");
  auto top = ParseHqConfig("timezone = \"UTC\"\n[hq]\n" + kKeys, kHqFile);
  ASSERT_FALSE(top.ok());
  EXPECT_NE(top.status().message().find("it belongs in [hq]"), std::string::npos);
}

}  // namespace
}  // namespace loyalty::config
