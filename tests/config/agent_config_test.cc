#include <unistd.h>

#include <filesystem>

#include "loyalty/base/encoding.h"
#include "test_util.h"

namespace loyalty::config {
namespace {

using testing::Build;
using testing::kDemoKey;
using testing::kFile;
using testing::MustParse;
using testing::Parse;
using testing::Parts;

TEST(AgentConfig, MinimalFileGetsEveryDefault) {
  AgentConfig c = MustParse(Parts{});
  EXPECT_EQ(c.path, kFile);
  EXPECT_EQ(c.terminal_id, "T01");
  EXPECT_EQ(c.store_id, "S001");
  EXPECT_EQ(c.timezone, "Asia/Shanghai");
  EXPECT_EQ(c.database, "/var/lib/loyaltyd/ledger.db");
  EXPECT_EQ(c.rules_file, "");
  EXPECT_EQ(c.listen, "127.0.0.1:8787");
  EXPECT_EQ(c.listen_host, "127.0.0.1");
  EXPECT_EQ(c.listen_port, 8787);
  EXPECT_EQ(c.token_file, "/etc/loyaltyd/api.token");
  EXPECT_FALSE(c.allow_public_listen);
  EXPECT_EQ(c.max_connections, 256);
  EXPECT_EQ(c.request_timeout_ms, 10000);
  ASSERT_EQ(c.hq_public_keys.size(), 1u);
  EXPECT_EQ(c.hq_public_keys.at(1), *Base64UrlDecode(kDemoKey));
  EXPECT_EQ(c.code_max_age_s, 120);
  EXPECT_EQ(c.clock_skew_s, 60);
  EXPECT_EQ(c.card_prefix, "88");
  EXPECT_TRUE(c.channels.empty());
  EXPECT_EQ(c.hq_url, "");
  EXPECT_EQ(c.ca_file, "");
  EXPECT_EQ(c.interval_s, 3600);
  EXPECT_EQ(c.run_timeout_s, 60);
  EXPECT_EQ(c.log_level, "info");
  EXPECT_EQ(c.log_format, "");
  EXPECT_EQ(c.log_file, "");
  EXPECT_EQ(c.log_file_max_bytes, 10 << 20);
  EXPECT_EQ(c.log_file_count, 3);
  EXPECT_TRUE(c.scanners.empty());
  EXPECT_TRUE(c.warnings.empty());
}

TEST(AgentConfig, SectionsMayBeOmittedExceptTheRequiredKeys) {
  auto r = ParseAgentConfig(std::string("[agent]\nterminal_id = \"T01\"\nstore_id = "
                                        "\"S001\"\n[codes]\nhq_public_keys = { \"7\" = \"") +
                                kDemoKey + "\" }\n",
                            kFile);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->hq_public_keys.count(7), 1u);
  auto empty = ParseAgentConfig("", kFile);
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(
      empty.status().message(),
      std::string(kFile) + ": agent.terminal_id: required (1..32 characters of A-Z a-z 0-9 _ -)");
}

TEST(AgentConfig, DeepNestingIsRefusedBeforeTheTomlParser) {
  // A header nested 100,000 levels deep (200 KB) used to take the parser's recursion down.
  std::string deep = "[agent]\nterminal_id = \"T01\"\n[";
  for (int i = 0; i < 100000; ++i) deep += i ? ".a" : "a";
  deep += "]\n";
  auto r = ParseAgentConfig(deep, kFile);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kConfigInvalid);
  EXPECT_NE(r.status().message().find(std::string(kFile) + ":3: nests deeper than 32 levels"),
            std::string::npos)
      << r.status().message();
  std::string hq = "[hq]\nx = " + std::string(100000, '[') + "\n";
  auto h = ParseHqConfig(hq, kFile);
  ASSERT_FALSE(h.ok());
  EXPECT_NE(h.status().message().find("nests deeper than 32 levels"), std::string::npos)
      << h.status().message();
}

TEST(AgentConfig, SyntaxErrorsGiveLineAndColumn) {
  auto r = ParseAgentConfig("[agent]\nterminal_id = \"T01\"\nstore_id = \n", kFile);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kConfigInvalid);
  EXPECT_EQ(r.status().message().rfind(std::string(kFile) + ":3:", 0), 0u) << r.status().message();

  auto dup = ParseAgentConfig("[agent]\nterminal_id = \"T01\"\nterminal_id = \"T02\"\n", kFile);
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.status().message().rfind(std::string(kFile) + ":3:", 0), 0u)
      << dup.status().message();

  auto utf8 = ParseAgentConfig("[agent]\nterminal_id = \"\xff\"\n", kFile);
  ASSERT_FALSE(utf8.ok());
  EXPECT_EQ(utf8.status().message().rfind(std::string(kFile) + ":2:", 0), 0u)
      << utf8.status().message();
}

TEST(AgentConfig, UnknownKeysAreRefused) {
  EXPECT_CONFIG_ERROR(Parts{.tail = "colour = \"blue\"\n"}, "log.colour: unknown key");
  EXPECT_CONFIG_ERROR(Parts{.api = "listne = \"127.0.0.1:8787\"\n"},
                      "api.listne: unknown key (did you mean 'listen'?)");
  EXPECT_CONFIG_ERROR(Parts{.sync = "interval = 60\n"},
                      "sync.interval: unknown key (did you mean 'interval_s'?)");
  EXPECT_CONFIG_ERROR(Parts{.tail = "[apis]\nx = 1\n"}, "apis: unknown key (did you mean 'api'?)");
  EXPECT_CONFIG_ERROR(Parts{.tail = "[extra]\n\"odd key\" = 1\n"}, "extra: unknown key");
  EXPECT_CONFIG_ERROR(Parts{.log = "[log.sub]\n"}, "log.sub: unknown key");
  // A key placed before any section header is at the top level.
  auto r = ParseAgentConfig(std::string("terminal_id = \"T01\"\n") + Build(Parts{}), kFile);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(
      r.status().message(),
      std::string(kFile) + ": terminal_id: unknown key at the top level (it belongs in [agent])");
  // The first unknown key in the file is the one reported.
  EXPECT_CONFIG_ERROR(Parts{.agent = "zzz = 1\nstore_id = \"S\"\nterminal_id = \"T\"\naaa = 2\n"},
                      "agent.zzz: unknown key");
}

TEST(AgentConfig, WrongTypesAreNamed) {
  EXPECT_CONFIG_ERROR(Parts{.api = "max_connections = \"64\"\n"},
                      "api.max_connections: expected an integer, got a string");
  EXPECT_CONFIG_ERROR(Parts{.api = "max_connections = 64.0\n"},
                      "api.max_connections: expected an integer, got a float");
  EXPECT_CONFIG_ERROR(Parts{.api = "allow_public_listen = \"yes\"\n"},
                      "api.allow_public_listen: expected a boolean (true or false), got a string");
  EXPECT_CONFIG_ERROR(Parts{.api = "listen = 8787\n"},
                      "api.listen: expected a string, got an integer");
  EXPECT_CONFIG_ERROR(
      Parts{.agent = "terminal_id = \"T01\"\nstore_id = \"S001\"\ntimezone = 2026-01-01\n"},
      "agent.timezone: expected a string, got a date");
  EXPECT_CONFIG_ERROR(
      Parts{.agent = "terminal_id = \"T01\"\nstore_id = \"S001\"\ndatabase = [\"a\"]\n"},
      "agent.database: expected a string, got an array");
  auto r = ParseAgentConfig("agent = 5\n", kFile);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), std::string(kFile) + ": agent: expected a table, got an integer");
}

TEST(AgentConfig, ControlCharactersInStringsAreRefused) {
  EXPECT_CONFIG_ERROR(
      Parts{.agent = "terminal_id = \"T01\"\nstore_id = \"S001\"\ndatabase = \"/var/a\\nb.db\"\n"},
      "agent.database: '/var/a\\x0ab.db' contains a control character");
}

TEST(AgentConfig, TerminalAndStoreIds) {
  EXPECT_CONFIG_ERROR(Parts{.agent = "store_id = \"S001\"\n"},
                      "agent.terminal_id: required (1..32 characters of A-Z a-z 0-9 _ -)");
  EXPECT_CONFIG_ERROR(Parts{.agent = "terminal_id = \"T01\"\n"},
                      "agent.store_id: required (1..32 characters of A-Z a-z 0-9 _ -)");
  EXPECT_CONFIG_ERROR(Parts{.agent = "terminal_id = \"T 01\"\nstore_id = \"S001\"\n"},
                      "agent.terminal_id: 'T 01' must be 1..32 characters of A-Z a-z 0-9 _ -");
  EXPECT_CONFIG_ERROR(Parts{.agent = "terminal_id = \"\"\nstore_id = \"S001\"\n"},
                      "agent.terminal_id: '' must be 1..32 characters of A-Z a-z 0-9 _ -");
  EXPECT_CONFIG_ERROR(Parts{.agent = "terminal_id = \"T01\"\nstore_id = \"店1\"\n"},
                      "agent.store_id: '店1' must be 1..32 characters of A-Z a-z 0-9 _ -");
  const std::string id32(32, 'a');
  AgentConfig c =
      MustParse(Parts{.agent = "terminal_id = \"" + id32 + "\"\nstore_id = \"S_0-1\"\n"});
  EXPECT_EQ(c.terminal_id, id32);
  EXPECT_CONFIG_ERROR(
      Parts{.agent = "terminal_id = \"" + id32 + "a\"\nstore_id = \"S001\"\n"},
      "agent.terminal_id: '" + id32 + "a' must be 1..32 characters of A-Z a-z 0-9 _ -");
}

TEST(AgentConfig, TimeZoneMustLoad) {
  const std::string ids = "terminal_id = \"T01\"\nstore_id = \"S001\"\n";
  EXPECT_EQ(MustParse(Parts{.agent = ids + "timezone = \"Europe/London\"\n"}).timezone,
            "Europe/London");
  EXPECT_EQ(MustParse(Parts{.agent = ids + "timezone = \"UTC\"\n"}).timezone, "UTC");
  EXPECT_EQ(MustParse(Parts{.agent = ids + "timezone = \"+08:00\"\n"}).timezone, "+08:00");
  EXPECT_CONFIG_ERROR(Parts{.agent = ids + "timezone = \"Mars/Olympus\"\n"},
                      "agent.timezone: unknown time zone 'Mars/Olympus' (no file "
                      "/usr/share/zoneinfo/Mars/Olympus)");
  EXPECT_CONFIG_ERROR(Parts{.agent = ids + "timezone = \"../etc/passwd\"\n"},
                      "agent.timezone: '../etc/passwd' is not a time zone name: the name must not "
                      "contain empty, '.' or "
                      "'..' parts");
  EXPECT_CONFIG_ERROR(
      Parts{.agent = ids + "timezone = \"+25:00\"\n"},
      "agent.timezone: '+25:00' is not a UTC offset of the form +HH:MM (within ±18:00)");
}

TEST(AgentConfig, RelativePathsResolveAgainstTheConfigFolder) {
  AgentConfig c = MustParse(
      Parts{.agent = "terminal_id = \"T01\"\nstore_id = \"S001\"\ndatabase = "
                     "\"data/ledger.db\"\nrules_file = \"../rules.toml\"\n",
            .api = "token_file = \"secrets/./api.token\"\n",
            .hq = "ca_file = \"hq-ca.pem\"\ncert_file = \"/opt/t.pem\"\nkey_file = \"t.key\"\n",
            .log = "file = \"log/agent.log\"\n",
            .tail = "[[scanners]]\nid = \"f\"\nkind = \"fifo\"\npath = \"scans.fifo\"\n"
                    "[[scanners]]\nid = \"i\"\nkind = \"image\"\ndirectory = \"frames\"\nprocessed "
                    "= \"move\"\nprocessed_dir = \"done\"\n"});
  EXPECT_EQ(c.database, "/etc/loyaltyd/data/ledger.db");
  EXPECT_EQ(c.rules_file, "/etc/rules.toml");
  EXPECT_EQ(c.token_file, "/etc/loyaltyd/secrets/api.token");
  EXPECT_EQ(c.ca_file, "/etc/loyaltyd/hq-ca.pem");
  EXPECT_EQ(c.cert_file, "/opt/t.pem");
  EXPECT_EQ(c.key_file, "/etc/loyaltyd/t.key");
  EXPECT_EQ(c.log_file, "/etc/loyaltyd/log/agent.log");
  ASSERT_EQ(c.scanners.size(), 2u);
  EXPECT_EQ(c.scanners[0].path, "/etc/loyaltyd/scans.fifo");
  EXPECT_EQ(c.scanners[1].directory, "/etc/loyaltyd/frames");
  EXPECT_EQ(c.scanners[1].processed_dir, "/etc/loyaltyd/done");
}

TEST(AgentConfig, AConfigPathWithoutFolderResolvesAgainstTheCurrentDirectory) {
  auto r = ParseAgentConfig(Build(Parts{}), "agent.toml");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->token_file,
            (std::filesystem::current_path() / "api.token").lexically_normal().string());
}

TEST(AgentConfig, LoadReadsTheFileAndAnchorsPathsThere) {
  char tmpl[] = "/tmp/config_test_XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  const std::string file = dir + "/agent.toml";
  {
    std::FILE* f = std::fopen(file.c_str(), "w");
    ASSERT_NE(f, nullptr);
    const std::string text = Build(Parts{.api = "token_file = \"pos.token\"\n"});
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
  }
  auto r = LoadAgentConfig(file);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->path, file);
  EXPECT_EQ(r->token_file, dir + "/pos.token");

  auto missing = LoadAgentConfig(dir + "/nope.toml");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), ErrorCode::kConfigInvalid);
  EXPECT_EQ(missing.status().message(), dir + "/nope.toml: cannot open: No such file or directory");

  // Over 1 MiB is refused before parsing.
  const std::string big = dir + "/big.toml";
  {
    std::FILE* f = std::fopen(big.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::string line = "# " + std::string(1022, 'x') + "\n";
    for (int i = 0; i < 1025; ++i) std::fwrite(line.data(), 1, line.size(), f);
    std::fclose(f);
  }
  auto too_big = LoadAgentConfig(big);
  ASSERT_FALSE(too_big.ok());
  EXPECT_EQ(too_big.status().message(), big + ": larger than 1048576 bytes");
  std::filesystem::remove_all(dir);
}

TEST(AgentConfig, ListenMustBeLoopbackUnlessAllowed) {
  EXPECT_CONFIG_ERROR(Parts{.api = "listen = \"0.0.0.0:8787\"\n"},
                      "api.listen: '0.0.0.0:8787' is not a loopback address (set "
                      "api.allow_public_listen = true to bind it)");
  EXPECT_CONFIG_ERROR(Parts{.api = "listen = \"[::]:8787\"\n"},
                      "api.listen: '[::]:8787' is not a loopback address (set "
                      "api.allow_public_listen = true to bind it)");
  AgentConfig open =
      MustParse(Parts{.api = "listen = \"0.0.0.0:8787\"\nallow_public_listen = true\n"});
  EXPECT_EQ(open.listen_host, "0.0.0.0");
  ASSERT_EQ(open.warnings.size(), 1u);
  EXPECT_EQ(open.warnings[0],
            std::string(kFile) +
                ": api.listen: the POS API listens on a non-loopback address '0.0.0.0:8787'");

  AgentConfig v6 = MustParse(Parts{.api = "listen = \"[::1]:9000\"\n"});
  EXPECT_EQ(v6.listen_host, "::1");
  EXPECT_EQ(v6.listen_port, 9000);
  EXPECT_EQ(MustParse(Parts{.api = "listen = \"127.0.0.2:8787\"\n"}).listen_host, "127.0.0.2");
  EXPECT_EQ(MustParse(Parts{.api = "listen = \"localhost:8787\"\n"}).listen_host, "localhost");
  EXPECT_CONFIG_ERROR(Parts{.api = "listen = \"::1:8787\"\n"},
                      "api.listen: '::1:8787': write an IPv6 address in brackets, e.g. [::1]:8787");
  EXPECT_CONFIG_ERROR(
      Parts{.api = "listen = \"pos.local:8787\"\n"},
      "api.listen: 'pos.local:8787': 'pos.local' is not an IP address or localhost");
  EXPECT_CONFIG_ERROR(Parts{.api = "listen = \"127.0.0.1\"\n"},
                      "api.listen: '127.0.0.1' is not host:port (e.g. 127.0.0.1:8787)");
  EXPECT_CONFIG_ERROR(Parts{.api = "listen = \"[::1]\"\n"},
                      "api.listen: '[::1]' is not host:port (e.g. 127.0.0.1:8787 or [::1]:8787)");
}

TEST(AgentConfig, ListenPortBoundaries) {
  EXPECT_CONFIG_ERROR(Parts{.api = "listen = \"127.0.0.1:0\"\n"},
                      "api.listen: '127.0.0.1:0': port 0 is out of range 1..65535");
  EXPECT_EQ(MustParse(Parts{.api = "listen = \"127.0.0.1:1\"\n"}).listen_port, 1);
  EXPECT_EQ(MustParse(Parts{.api = "listen = \"127.0.0.1:65535\"\n"}).listen_port, 65535);
  EXPECT_CONFIG_ERROR(Parts{.api = "listen = \"127.0.0.1:65536\"\n"},
                      "api.listen: '127.0.0.1:65536': port 65536 is out of range 1..65535");
  EXPECT_CONFIG_ERROR(Parts{.api = "listen = \"127.0.0.1:\"\n"},
                      "api.listen: '127.0.0.1:': port '' is not a number 1..65535");
  EXPECT_CONFIG_ERROR(Parts{.api = "listen = \"127.0.0.1:+80\"\n"},
                      "api.listen: '127.0.0.1:+80': port '+80' is not a number 1..65535");
  EXPECT_CONFIG_ERROR(Parts{.api = "listen = \"127.0.0.1:100000\"\n"},
                      "api.listen: '127.0.0.1:100000': port '100000' is not a number 1..65535");
}

TEST(AgentConfig, ApiLimits) {
  EXPECT_CONFIG_ERROR(Parts{.api = "max_connections = 0\n"},
                      "api.max_connections: 0 is out of range 1..1024");
  EXPECT_EQ(MustParse(Parts{.api = "max_connections = 1\n"}).max_connections, 1);
  EXPECT_EQ(MustParse(Parts{.api = "max_connections = 1024\n"}).max_connections, 1024);
  EXPECT_CONFIG_ERROR(Parts{.api = "max_connections = 1025\n"},
                      "api.max_connections: 1025 is out of range 1..1024");
  EXPECT_CONFIG_ERROR(Parts{.api = "request_timeout_ms = 99\n"},
                      "api.request_timeout_ms: 99 is out of range 100..300000");
  EXPECT_EQ(MustParse(Parts{.api = "request_timeout_ms = 300000\n"}).request_timeout_ms, 300000);
  EXPECT_CONFIG_ERROR(Parts{.api = "request_timeout_ms = 300001\n"},
                      "api.request_timeout_ms: 300001 is out of range 100..300000");
  EXPECT_CONFIG_ERROR(Parts{.api = "token_file = \"\"\n"}, "api.token_file: must not be empty");
  EXPECT_EQ(MustParse(Parts{}).phone_lookups_per_hour, 30);
  EXPECT_EQ(MustParse(Parts{.api = "phone_lookups_per_hour = 0\n"}).phone_lookups_per_hour, 0);
  EXPECT_EQ(MustParse(Parts{.api = "phone_lookups_per_hour = 1000\n"}).phone_lookups_per_hour,
            1000);
  EXPECT_CONFIG_ERROR(Parts{.api = "phone_lookups_per_hour = -1\n"},
                      "api.phone_lookups_per_hour: -1 is out of range 0..1000");
  EXPECT_CONFIG_ERROR(Parts{.api = "phone_lookups_per_hour = 1001\n"},
                      "api.phone_lookups_per_hour: 1001 is out of range 0..1000");
}

TEST(AgentConfig, HqPublicKeys) {
  const std::string k = kDemoKey;
  EXPECT_CONFIG_ERROR(Parts{.codes = ""},
                      "codes.hq_public_keys: at least one HQ public key is required to verify "
                      "dynamic member codes");
  EXPECT_CONFIG_ERROR(Parts{.codes = "hq_public_keys = {}\n"},
                      "codes.hq_public_keys: at least one HQ public key is required to verify "
                      "dynamic member codes");
  const std::string bad_reason =
      "not strict base64url of 32 bytes (an Ed25519 public key: 43 characters of A-Z a-z 0-9 - _, "
      "no '=')";
  EXPECT_CONFIG_ERROR(Parts{.codes = "hq_public_keys = { \"1\" = \"" + k + "=\" }\n"},
                      "codes.hq_public_keys.\"1\": " + bad_reason);
  EXPECT_CONFIG_ERROR(Parts{.codes = "hq_public_keys = { \"1\" = \"" + k.substr(0, 42) + "\" }\n"},
                      "codes.hq_public_keys.\"1\": " + bad_reason);
  // Standard base64 alphabet is not base64url.
  std::string std_alphabet = k;
  std_alphabet[13] = '+';
  EXPECT_CONFIG_ERROR(Parts{.codes = "hq_public_keys = { \"2\" = \"" + std_alphabet + "\" }\n"},
                      "codes.hq_public_keys.\"2\": " + bad_reason);
  // 33 bytes.
  EXPECT_CONFIG_ERROR(Parts{.codes = "hq_public_keys = { \"1\" = \"" +
                                     Base64UrlEncode(std::string(33, 'k')) + "\" }\n"},
                      "codes.hq_public_keys.\"1\": " + bad_reason);
  const std::string id_reason = "a key id must be a whole number 0..255 without leading zeros";
  EXPECT_CONFIG_ERROR(Parts{.codes = "hq_public_keys = { \"256\" = \"" + k + "\" }\n"},
                      "codes.hq_public_keys.\"256\": " + id_reason);
  EXPECT_CONFIG_ERROR(Parts{.codes = "hq_public_keys = { \"-1\" = \"" + k + "\" }\n"},
                      "codes.hq_public_keys.\"-1\": " + id_reason);
  EXPECT_CONFIG_ERROR(Parts{.codes = "hq_public_keys = { \"01\" = \"" + k + "\" }\n"},
                      "codes.hq_public_keys.\"01\": " + id_reason);
  EXPECT_CONFIG_ERROR(Parts{.codes = "hq_public_keys = { main = \"" + k + "\" }\n"},
                      "codes.hq_public_keys.\"main\": " + id_reason);
  EXPECT_CONFIG_ERROR(Parts{.codes = "hq_public_keys = { \"1\" = 5 }\n"},
                      "codes.hq_public_keys.\"1\": expected a string, got an integer");
  EXPECT_CONFIG_ERROR(Parts{.codes = "hq_public_keys = \"" + k + "\"\n"},
                      "codes.hq_public_keys: expected a table of key id = value (e.g. { \"1\" = "
                      "\"...\" }), got a string");
  // Edges of the id range, and several keys for rotation.
  const std::string other = Base64UrlEncode(std::string(32, '\x07'));
  AgentConfig c = MustParse(
      Parts{.codes = "hq_public_keys = { \"0\" = \"" + k + "\", \"255\" = \"" + other + "\" }\n"});
  ASSERT_EQ(c.hq_public_keys.size(), 2u);
  EXPECT_EQ(c.hq_public_keys.at(0).size(), 32u);
  EXPECT_EQ(c.hq_public_keys.at(255), std::string(32, '\x07'));
  // The sub-table form works too.
  AgentConfig t = MustParse(Parts{.codes = "[codes.hq_public_keys]\n\"3\" = \"" + k + "\"\n"});
  EXPECT_EQ(t.hq_public_keys.count(3), 1u);
}

TEST(AgentConfig, CodeWindows) {
  const std::string keys = Parts{}.codes;
  EXPECT_CONFIG_ERROR(Parts{.codes = keys + "code_max_age_s = 0\n"},
                      "codes.code_max_age_s: 0 is out of range 1..3600");
  EXPECT_EQ(MustParse(Parts{.codes = keys + "code_max_age_s = 1\n"}).code_max_age_s, 1);
  EXPECT_EQ(MustParse(Parts{.codes = keys + "code_max_age_s = 3600\n"}).code_max_age_s, 3600);
  EXPECT_CONFIG_ERROR(Parts{.codes = keys + "code_max_age_s = 3601\n"},
                      "codes.code_max_age_s: 3601 is out of range 1..3600");
  EXPECT_CONFIG_ERROR(Parts{.codes = keys + "clock_skew_s = -1\n"},
                      "codes.clock_skew_s: -1 is out of range 0..3600");
  EXPECT_EQ(MustParse(Parts{.codes = keys + "clock_skew_s = 0\n"}).clock_skew_s, 0);
  EXPECT_EQ(MustParse(Parts{.codes = keys + "clock_skew_s = 3600\n"}).clock_skew_s, 3600);
  EXPECT_CONFIG_ERROR(Parts{.codes = keys + "clock_skew_s = 3601\n"},
                      "codes.clock_skew_s: 3601 is out of range 0..3600");
}

TEST(AgentConfig, CardPrefix) {
  const std::string keys = Parts{}.codes;
  EXPECT_EQ(MustParse(Parts{.codes = keys + "card_prefix = \"12345678\"\n"}).card_prefix,
            "12345678");
  EXPECT_EQ(MustParse(Parts{.codes = keys + "card_prefix = \"0\"\n"}).card_prefix, "0");
  EXPECT_CONFIG_ERROR(Parts{.codes = keys + "card_prefix = \"123456789\"\n"},
                      "codes.card_prefix: '123456789' must be 1..8 digits");
  EXPECT_CONFIG_ERROR(Parts{.codes = keys + "card_prefix = \"8a\"\n"},
                      "codes.card_prefix: '8a' must be 1..8 digits");
  EXPECT_CONFIG_ERROR(Parts{.codes = keys + "card_prefix = \"\"\n"},
                      "codes.card_prefix: must not be empty");
  EXPECT_CONFIG_ERROR(Parts{.codes = keys + "card_prefix = 88\n"},
                      "codes.card_prefix: expected a string, got an integer");
}

TEST(AgentConfig, Channels) {
  const std::string keys = Parts{}.codes;
  AgentConfig c = MustParse(Parts{
      .codes = keys + "channels = [ { name = \"wechat\", pattern = \"^[0-9]{12}$\" },\n"
                      "             { name = \"alipay_2\", pattern = \"^A[0-9]{1000}$\" } ]\n"});
  ASSERT_EQ(c.channels.size(), 2u);
  EXPECT_EQ(c.channels[0].name, "wechat");
  EXPECT_EQ(c.channels[0].pattern, "^[0-9]{12}$");
  EXPECT_EQ(c.channels[1].name, "alipay_2");
  // The array-of-tables form.
  AgentConfig t =
      MustParse(Parts{.codes = keys + "[[codes.channels]]\nname = \"wechat\"\npattern = \"^W\"\n"});
  ASSERT_EQ(t.channels.size(), 1u);

  EXPECT_CONFIG_ERROR(Parts{.codes = keys + "channels = [ { name = \"wechat\", pattern = \"^1\" }, "
                                            "{ name = \"wechat\", pattern = \"^2\" } ]\n"},
                      "codes.channels[1].name: 'wechat' is already used by codes.channels[0]");
  EXPECT_CONFIG_ERROR(
      Parts{.codes = keys + "channels = [ { name = \"WeChat\", pattern = \"^1\" } ]\n"},
      "codes.channels[0].name: 'WeChat' must be snake_case (a-z, 0-9, _; starting with a letter; "
      "at most 32)");
  EXPECT_CONFIG_ERROR(
      Parts{.codes = keys + "channels = [ { name = \"1shop\", pattern = \"^1\" } ]\n"},
      "codes.channels[0].name: '1shop' must be snake_case (a-z, 0-9, _; starting with a letter; at "
      "most 32)");
  EXPECT_CONFIG_ERROR(
      Parts{.codes = keys + "channels = [ { name = \"card\", pattern = \"^1\" } ]\n"},
      "codes.channels[0].name: 'card' is reserved for printed member cards");
  EXPECT_CONFIG_ERROR(Parts{.codes = keys + "channels = [ { name = \"wechat\" } ]\n"},
                      "codes.channels[0].pattern: required");
  EXPECT_CONFIG_ERROR(Parts{.codes = keys + "channels = [ { pattern = \"^1\" } ]\n"},
                      "codes.channels[0].name: required");
  EXPECT_CONFIG_ERROR(
      Parts{.codes =
                keys + "channels = [ { name = \"wechat\", regex = \"^1\", pattern = \"^1\" } ]\n"},
      "codes.channels[0].regex: unknown key");
  EXPECT_CONFIG_ERROR(
      Parts{.codes = keys + "channels = { wechat = \"^1\" }\n"},
      "codes.channels: expected an array of { name = \"...\", pattern = \"...\" }, got a table");
  EXPECT_CONFIG_ERROR(
      Parts{.codes = keys + "channels = [ \"^1\" ]\n"},
      "codes.channels[0]: expected a table { name = \"...\", pattern = \"...\" }, got a string");
  EXPECT_CONFIG_ERROR(
      Parts{.codes = keys + "channels = [ { name = \"w\", pattern = \"a{1001}\" } ]\n"},
      "codes.channels[0].pattern: 'a{1001}': a repetition count above 1000");
  EXPECT_CONFIG_ERROR(
      Parts{.codes = keys +
                     "channels = [ { name = \"w\", pattern = \"a{2,99999999999999999999}\" } ]\n"},
      "codes.channels[0].pattern: 'a{2,99999999999999999999}': a repetition count above 1000");
  EXPECT_CONFIG_ERROR(
      Parts{.codes = keys + "channels = [ { name = \"w\", pattern = \"" + std::string(257, 'a') +
                     "\" } ]\n"},
      "codes.channels[0].pattern: '" + std::string(80, 'a') + "...': longer than 256 characters");
  MustParse(Parts{.codes = keys + "channels = [ { name = \"w\", pattern = \"" +
                           std::string(256, 'a') + "\" } ]\n"});
  // An escaped brace is a literal, not a repetition.
  MustParse(
      Parts{.codes = keys + "channels = [ { name = \"w\", pattern = \"^\\\\{5000\\\\}$\" } ]\n"});

  auto r =
      Parse(Parts{.codes = keys + "channels = [ { name = \"wechat\", pattern = \"^[0-9\" } ]\n"});
  ASSERT_FALSE(r.ok());
  const std::string prefix =
      std::string(kFile) + ": codes.channels[0].pattern: '^[0-9': does not compile: ";
  EXPECT_EQ(r.status().message().rfind(prefix, 0), 0u) << r.status().message();
  EXPECT_GT(r.status().message().size(), prefix.size());
  EXPECT_FALSE(
      Parse(Parts{.codes = keys + "channels = [ { name = \"w\", pattern = \"(a\" } ]\n"}).ok());
  EXPECT_FALSE(
      Parse(Parts{.codes = keys + "channels = [ { name = \"w\", pattern = \"*a\" } ]\n"}).ok());
  EXPECT_FALSE(
      Parse(Parts{.codes = keys + "channels = [ { name = \"w\", pattern = \"\" } ]\n"}).ok());
}

TEST(AgentConfig, HqUrl) {
  AgentConfig https = MustParse(Parts{.hq = "url = \"https://hq.example.com\"\n"});
  EXPECT_TRUE(https.hq_tls);
  EXPECT_EQ(https.hq_host, "hq.example.com");
  EXPECT_EQ(https.hq_port, 443);
  EXPECT_EQ(https.hq_base_path, "");
  EXPECT_TRUE(https.warnings.empty());

  AgentConfig path = MustParse(Parts{.hq = "url = \"https://10.1.2.3:8443/loyalty/\"\n"});
  EXPECT_EQ(path.hq_host, "10.1.2.3");
  EXPECT_EQ(path.hq_port, 8443);
  EXPECT_EQ(path.hq_base_path, "/loyalty");

  AgentConfig v6 = MustParse(Parts{.hq = "url = \"https://[2001:db8::1]:9443\"\n"});
  EXPECT_EQ(v6.hq_host, "2001:db8::1");
  EXPECT_EQ(v6.hq_port, 9443);

  AgentConfig plain = MustParse(Parts{.hq = "url = \"http://127.0.0.1:8443\"\n"});
  EXPECT_FALSE(plain.hq_tls);
  EXPECT_EQ(plain.hq_port, 8443);
  ASSERT_EQ(plain.warnings.size(), 1u);
  EXPECT_EQ(plain.warnings[0], std::string(kFile) +
                                   ": hq.url: plain http:// to HQ (loopback only): sync traffic is "
                                   "not encrypted or authenticated");
  EXPECT_EQ(MustParse(Parts{.hq = "url = \"http://localhost\"\n"}).hq_port, 80);
  EXPECT_EQ(MustParse(Parts{.hq = "url = \"http://[::1]:8443\"\n"}).hq_host, "::1");

  EXPECT_CONFIG_ERROR(Parts{.hq = "url = \"http://10.0.0.5:8443\"\n"},
                      "hq.url: 'http://10.0.0.5:8443': plain http:// is accepted only for a "
                      "loopback host (use https://)");
  EXPECT_CONFIG_ERROR(Parts{.hq = "url = \"ftp://hq.example.com\"\n"},
                      "hq.url: 'ftp://hq.example.com' is not an https:// URL");
  EXPECT_CONFIG_ERROR(Parts{.hq = "url = \"hq.example.com:8443\"\n"},
                      "hq.url: 'hq.example.com:8443' is not an https:// URL");
  EXPECT_CONFIG_ERROR(Parts{.hq = "url = \"https://user@hq.example.com\"\n"},
                      "hq.url: 'https://user@hq.example.com': a URL here is "
                      "scheme://host[:port][/path], without spaces, "
                      "user info, query or fragment");
  EXPECT_CONFIG_ERROR(Parts{.hq = "url = \"https://hq.example.com/?x=1\"\n"},
                      "hq.url: 'https://hq.example.com/?x=1': a URL here is "
                      "scheme://host[:port][/path], without spaces, "
                      "user info, query or fragment");
  EXPECT_CONFIG_ERROR(Parts{.hq = "url = \"https://\"\n"},
                      "hq.url: 'https://': '' is not a host name or address");
  EXPECT_CONFIG_ERROR(
      Parts{.hq = "url = \"https://hq_1.example.com\"\n"},
      "hq.url: 'https://hq_1.example.com': 'hq_1.example.com' is not a host name or address");
  EXPECT_CONFIG_ERROR(Parts{.hq = "url = \"https://hq.example.com:0\"\n"},
                      "hq.url: 'https://hq.example.com:0': port 0 is out of range 1..65535");
  EXPECT_CONFIG_ERROR(
      Parts{.hq = "url = \"https://hq.example.com:65536\"\n"},
      "hq.url: 'https://hq.example.com:65536': port 65536 is out of range 1..65535");
  EXPECT_EQ(MustParse(Parts{.hq = "url = \"https://hq.example.com:65535\"\n"}).hq_port, 65535);
  EXPECT_CONFIG_ERROR(Parts{.hq = "url = \"https://hq.example.com:\"\n"},
                      "hq.url: 'https://hq.example.com:': port '' is not a number 1..65535");
  EXPECT_CONFIG_ERROR(Parts{.hq = "url = \"https://[::1\"\n"},
                      "hq.url: 'https://[::1': unterminated IPv6 address");
  EXPECT_CONFIG_ERROR(Parts{.hq = "url = \"https://[nope]\"\n"},
                      "hq.url: 'https://[nope]': 'nope' is not an IPv6 address");
  // An empty url means no HQ.
  EXPECT_EQ(MustParse(Parts{.hq = "url = \"\"\n"}).hq_port, 0);
}

TEST(AgentConfig, HqClientCertificateAndKeyGoTogether) {
  EXPECT_CONFIG_ERROR(Parts{.hq = "cert_file = \"t.pem\"\n"},
                      "hq.key_file: required when hq.cert_file is set (the client certificate and "
                      "its key go together)");
  EXPECT_CONFIG_ERROR(Parts{.hq = "key_file = \"t.key\"\n"},
                      "hq.cert_file: required when hq.key_file is set (the client certificate and "
                      "its key go together)");
}

TEST(AgentConfig, SyncBoundaries) {
  EXPECT_CONFIG_ERROR(Parts{.sync = "interval_s = -1\n"},
                      "sync.interval_s: -1 is out of range 0..604800");
  EXPECT_EQ(MustParse(Parts{.sync = "interval_s = 0\n"}).interval_s, 0);
  EXPECT_EQ(MustParse(Parts{.sync = "interval_s = 604800\n"}).interval_s, 604800);
  EXPECT_CONFIG_ERROR(Parts{.sync = "interval_s = 604801\n"},
                      "sync.interval_s: 604801 is out of range 0..604800");
  EXPECT_CONFIG_ERROR(Parts{.sync = "run_timeout_s = 0\n"},
                      "sync.run_timeout_s: 0 is out of range 1..3600");
  EXPECT_EQ(MustParse(Parts{.sync = "run_timeout_s = 1\n"}).run_timeout_s, 1);
  EXPECT_EQ(MustParse(Parts{.sync = "run_timeout_s = 3600\n"}).run_timeout_s, 3600);
  EXPECT_CONFIG_ERROR(Parts{.sync = "run_timeout_s = 3601\n"},
                      "sync.run_timeout_s: 3601 is out of range 1..3600");
  EXPECT_CONFIG_ERROR(Parts{.sync = "run_timeout_s = 9223372036854775807\n"},
                      "sync.run_timeout_s: 9223372036854775807 is out of range 1..3600");
}

TEST(AgentConfig, Log) {
  for (const char* level : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
    EXPECT_EQ(MustParse(Parts{.log = std::string("level = \"") + level + "\"\n"}).log_level, level);
  }
  // spdlog's name for warn.
  EXPECT_EQ(MustParse(Parts{.log = "level = \"warning\"\n"}).log_level, "warn");
  EXPECT_CONFIG_ERROR(Parts{.log = "level = \"verbose\"\n"},
                      "log.level: 'verbose' is not one of trace | debug | info | warn | warning | "
                      "error | critical | "
                      "off");
  EXPECT_CONFIG_ERROR(
      Parts{.log = "level = \"INFO\"\n"},
      "log.level: 'INFO' is not one of trace | debug | info | warn | warning | error | critical | "
      "off");
  EXPECT_EQ(MustParse(Parts{.log = "format = \"json\"\n"}).log_format, "json");
  EXPECT_EQ(MustParse(Parts{.log = "format = \"text\"\n"}).log_format, "text");
  EXPECT_CONFIG_ERROR(Parts{.log = "format = \"xml\"\n"},
                      "log.format: 'xml' is not one of json | text");
  EXPECT_CONFIG_ERROR(Parts{.log = "format = \"\"\n"}, "log.format: must not be empty");
  EXPECT_CONFIG_ERROR(Parts{.log = "file_max_bytes = 65535\n"},
                      "log.file_max_bytes: 65535 is out of range 65536..1073741824");
  EXPECT_EQ(MustParse(Parts{.log = "file_max_bytes = 65536\n"}).log_file_max_bytes, 65536);
  EXPECT_EQ(MustParse(Parts{.log = "file_max_bytes = 1073741824\n"}).log_file_max_bytes,
            1073741824);
  EXPECT_CONFIG_ERROR(Parts{.log = "file_max_bytes = 1073741825\n"},
                      "log.file_max_bytes: 1073741825 is out of range 65536..1073741824");
  EXPECT_CONFIG_ERROR(Parts{.log = "file_count = 0\n"}, "log.file_count: 0 is out of range 1..100");
  EXPECT_EQ(MustParse(Parts{.log = "file_count = 100\n"}).log_file_count, 100);
  EXPECT_CONFIG_ERROR(Parts{.log = "file_count = 101\n"},
                      "log.file_count: 101 is out of range 1..100");
  EXPECT_EQ(MustParse(Parts{.log = "file = \"/var/log/loyaltyd.log\"\n"}).log_file,
            "/var/log/loyaltyd.log");
}

// [enrolment] (docs/pos-api.md, "Sign-up at the till"): off unless a link is given.
TEST(AgentConfig, Enrolment) {
  AgentConfig off = MustParse(Parts{});
  EXPECT_EQ(off.enrolment_url_template, "");
  EXPECT_EQ(off.enrolment_qr_module_pixels, 4);
  EXPECT_EQ(off.enrolment_qr_error_correction, "M");
  auto with = [](const std::string& body) { return Parts{.tail = "[enrolment]\n" + body}; };
  AgentConfig on =
      MustParse(with("url_template = \"https://join.example.com/m?claim={claim}&s=S001\"\n"
                     "qr_module_pixels = 16\nqr_error_correction = \"H\"\n"));
  EXPECT_EQ(on.enrolment_url_template, "https://join.example.com/m?claim={claim}&s=S001");
  EXPECT_EQ(on.enrolment_qr_module_pixels, 16);
  EXPECT_EQ(on.enrolment_qr_error_correction, "H");
  // A mini-program path with its query percent-encoded, the claim in a path segment.
  EXPECT_EQ(
      MustParse(
          with("url_template = "
               "\"alipays://platformapi/startapp?appId=2021&page=pages%2Fjoin%3Fc%3D{claim}\"\n"))
          .enrolment_url_template,
      "alipays://platformapi/startapp?appId=2021&page=pages%2Fjoin%3Fc%3D{claim}");
  EXPECT_EQ(
      MustParse(with("url_template = \"https://j.example/{claim}\"\n")).enrolment_url_template,
      "https://j.example/{claim}");
  EXPECT_EQ(MustParse(with("qr_module_pixels = 1\n")).enrolment_qr_module_pixels, 1);
  EXPECT_CONFIG_ERROR(with("qr_module_pixels = 0\n"),
                      "enrolment.qr_module_pixels: 0 is out of range 1..16");
  EXPECT_CONFIG_ERROR(with("qr_module_pixels = 17\n"),
                      "enrolment.qr_module_pixels: 17 is out of range 1..16");
  EXPECT_CONFIG_ERROR(with("qr_error_correction = \"X\"\n"),
                      "enrolment.qr_error_correction: 'X' is not one of L | M | Q | H");
  EXPECT_CONFIG_ERROR(with("url_template = \"\"\n"), "enrolment.url_template: must not be empty");
  EXPECT_CONFIG_ERROR(
      with("url_template = \"https://join.example.com/m\"\n"),
      "enrolment.url_template: 'https://join.example.com/m' must contain {claim}, where the signed "
      "claim goes");
  EXPECT_CONFIG_ERROR(with("url_template = \"https://j.example/{claim}/{claim}\"\n"),
                      "enrolment.url_template: 'https://j.example/{claim}/{claim}' must contain "
                      "{claim} exactly once");
  EXPECT_CONFIG_ERROR(with("url_template = \"https://j.example/m?c={claim}&n={name}\"\n"),
                      "enrolment.url_template: 'https://j.example/m?c={claim}&n={name}' holds "
                      "'{', which a link cannot (percent-encode it; only {claim} is replaced)");
  EXPECT_CONFIG_ERROR(
      with("url_template = \"https://j.example/m c={claim}\"\n"),
      "enrolment.url_template: 'https://j.example/m c={claim}' holds 'a space or "
      "control', which a link cannot (percent-encode it; only {claim} is replaced)");
  EXPECT_CONFIG_ERROR(with("url_template = \"join.example.com/m?c={claim}\"\n"),
                      "enrolment.url_template: 'join.example.com/m?c={claim}' must begin with a "
                      "scheme before {claim} (e.g. https://join.example.com/m?claim={claim})");
  EXPECT_CONFIG_ERROR(with("url_template = \"{claim}:x\"\n"),
                      "enrolment.url_template: '{claim}:x' must begin with a scheme before {claim} "
                      "(e.g. https://join.example.com/m?claim={claim})");
  // 512 characters at most.
  const std::string base = "https://j.example/?c={claim}&p=";
  const std::string at_limit = base + std::string(512 - base.size(), 'x');
  EXPECT_EQ(MustParse(with("url_template = \"" + at_limit + "\"\n")).enrolment_url_template,
            at_limit);
  auto over = Parse(with("url_template = \"" + at_limit + "x\"\n"));
  ASSERT_FALSE(over.ok());
  EXPECT_NE(over.status().message().find("must be 1..512 characters"), std::string::npos)
      << over.status().message();
  EXPECT_CONFIG_ERROR(with("claim_window_days = 3\n"), "enrolment.claim_window_days: unknown key");
}

TEST(AgentConfig, ParsedConfigsAreIndependentOfEachOther) {
  // Parsing is stateless: a failing parse leaves nothing behind for the next one.
  EXPECT_FALSE(Parse(Parts{.api = "listen = \"0.0.0.0:1\"\n"}).ok());
  AgentConfig c = MustParse(Parts{});
  EXPECT_EQ(c.listen_port, 8787);
  EXPECT_TRUE(c.warnings.empty());
}

}  // namespace
}  // namespace loyalty::config
