// hq.toml for loyalty-hq: parsing and validation (shared/spec/operations.md).

#include <utility>

#include "loyalty/base/timezone.h"
#include "loyalty/config/config.h"
#include "reader.h"

namespace loyalty::config {
namespace {

using internal::Errors;
using internal::Quote;
using internal::Section;

constexpr size_t kMaxConfigBytes = 1 << 20;

bool IsPostgresUri(const std::string& database) {
  return database.rfind("postgresql://", 0) == 0 || database.rfind("postgres://", 0) == 0;
}

}  // namespace

Result<HqConfig> ParseHqConfig(std::string_view toml_text, const std::string& path) {
  Status syntax;
  auto root = internal::ParseToml(toml_text, path, syntax);
  if (!root) return syntax;

  Errors e(path);
  internal::PathResolver paths(path);
  HqConfig c;
  c.path = path;

  Section top(e, &*root, "");
  top.Has("hq");
  top.Has("log");
  top.Finish([](std::string_view key) -> std::string {
    for (std::string_view k :
         {"listen", "database", "database_password_file", "admin_token_file", "signing_keys",
          "tls_cert_file", "tls_key_file", "client_ca_file", "card_prefix", "pii_key_file",
          "timezone", "max_connections", "max_connections_per_address", "crl_file", "rules_file",
          "member_scope_months", "metrics_token_file", "phone_key_days", "workers"}) {
      if (k == key) return "unknown key at the top level (it belongs in [hq])";
    }
    return {};
  });
  const toml::table* hq = internal::SubTable(e, *root, "hq", "");
  const toml::table* log = internal::SubTable(e, *root, "log", "");
  if (!e.ok()) return e.status();

  Section s(e, hq, "hq");
  s.String("listen", c.listen);
  for (auto [key, out] :
       {std::pair{"database", &c.database}, std::pair{"admin_token_file", &c.admin_token_file},
        std::pair{"pii_key_file", &c.pii_key_file}}) {
    s.String(key, *out);
  }
  for (auto [key, out] :
       {std::pair{"tls_cert_file", &c.tls_cert_file}, std::pair{"tls_key_file", &c.tls_key_file},
        std::pair{"client_ca_file", &c.client_ca_file}, std::pair{"rules_file", &c.rules_file},
        std::pair{"database_password_file", &c.database_password_file},
        std::pair{"metrics_token_file", &c.metrics_token_file}}) {
    s.String(key, *out, true);
  }
  std::vector<std::pair<int, std::string>> keys;
  if (s.IdMap("signing_keys", keys)) {
    for (auto& [id, file] : keys) {
      if (file.empty()) {
        e.Fail(internal::QuotedKey(s.Key("signing_keys"), std::to_string(id)),
               "must name a PEM file");
        break;
      }
      c.signing_keys[id] = paths.Resolve(file);
    }
    if (e.ok() && c.signing_keys.empty()) {
      e.Fail(s.Key("signing_keys"),
             "at least one signing key is required to certify member devices");
    }
  }
  if (s.String("card_prefix", c.card_prefix) && !internal::IsCardPrefix(c.card_prefix)) {
    e.Fail(s.Key("card_prefix"), Quote(c.card_prefix) + " must be 1..8 digits");
  }
  if (s.String("timezone", c.timezone)) {
    auto tz = TimeZone::Load(c.timezone);
    if (!tz.ok()) e.Fail(s.Key("timezone"), tz.status().message());
  }
  s.Int("max_connections", c.max_connections, 1, 65536);
  s.Int("max_connections_per_address", c.max_connections_per_address, 0, 65536);
  s.Int("member_scope_months", c.member_scope_months, 1, 120);
  s.Int("phone_key_days", c.phone_key_days, 1, 365);
  s.Int("workers", c.workers, 1, 64);
  s.String("crl_file", c.crl_file, true);
  s.Finish();
  if (!e.ok()) return e.status();

  const bool postgres = IsPostgresUri(c.database);
  if (c.database.empty()) {
    e.Fail(s.Key("database"), "must name a SQLite file or a PostgreSQL URI");
    return e.status();
  }
  if (postgres) {
    // user:password@ in the URI would put a secret in a world-readable config and in logs.
    const size_t authority = c.database.find("://") + 3;
    const size_t end = c.database.find_first_of("/?", authority);
    const std::string userinfo = c.database.substr(
        authority, (end == std::string::npos ? c.database.size() : end) - authority);
    const size_t at = userinfo.rfind('@');
    if ((at != std::string::npos && userinfo.substr(0, at).find(':') != std::string::npos) ||
        c.database.find("password=") != std::string::npos) {
      e.Fail(s.Key("database"),
             "must not carry a password: put it in a 0600 file named by "
             "database_password_file");
      return e.status();
    }
    if (c.workers == 0) c.workers = 2;
  } else {
    if (c.workers > 1) {
      e.Fail(s.Key("workers"), std::to_string(c.workers) +
                                   ": a SQLite database has one writer; more workers need "
                                   "PostgreSQL (database = \"postgresql://…\")");
      return e.status();
    }
    c.workers = 1;
    if (!c.database_password_file.empty()) {
      e.Fail(s.Key("database_password_file"),
             "is for a PostgreSQL database (database = \"postgresql://…\"); a SQLite file has "
             "no password");
      return e.status();
    }
    c.database = paths.Resolve(c.database);
  }
  c.database_password_file = paths.Resolve(c.database_password_file);
  c.crl_file = paths.Resolve(c.crl_file);
  c.admin_token_file = paths.Resolve(c.admin_token_file);
  c.metrics_token_file = paths.Resolve(c.metrics_token_file);
  c.pii_key_file = paths.Resolve(c.pii_key_file);
  for (auto* f : {&c.tls_cert_file, &c.tls_key_file, &c.client_ca_file, &c.rules_file})
    *f = paths.Resolve(*f);

  const int tls_set =
      !c.tls_cert_file.empty() + !c.tls_key_file.empty() + !c.client_ca_file.empty();
  if (tls_set != 0 && tls_set != 3) {
    const char* missing = c.tls_cert_file.empty()  ? "tls_cert_file"
                          : c.tls_key_file.empty() ? "tls_key_file"
                                                   : "client_ca_file";
    e.Fail(s.Key(missing),
           "required with the other TLS keys (set tls_cert_file, tls_key_file and client_ca_file, "
           "or none of them for plain HTTP on loopback)");
    return e.status();
  }
  if (!c.crl_file.empty() && tls_set == 0) {
    e.Fail(s.Key("crl_file"),
           "needs TLS (tls_cert_file, tls_key_file and client_ca_file): without client "
           "certificates there is nothing to revoke");
    return e.status();
  }
  internal::HostPort hp;
  std::string why;
  if (!internal::ParseListen(c.listen, hp, why)) {
    e.Fail(s.Key("listen"), why);
    return e.status();
  }
  if (tls_set == 0) {
    if (!internal::IsLoopbackHost(hp.host)) {
      e.Fail(s.Key("listen"),
             Quote(c.listen) +
                 " is not a loopback address (plain HTTP is allowed on loopback only; set "
                 "tls_cert_file, tls_key_file and client_ca_file)");
      return e.status();
    }
    e.Warn(s.Key("listen"),
           "plain HTTP without TLS (loopback only): terminals are trusted by the id they name");
  }
  c.listen_host = hp.host;
  c.listen_port = hp.port;

  Section l(e, log, "log");
  // spdlog's own name of the warn level, "warning", is taken too (and read as "warn").
  l.OneOf("level", c.log_level,
          {"trace", "debug", "info", "warn", "warning", "error", "critical", "off"});
  if (c.log_level == "warning") c.log_level = "warn";
  if (l.Has("format")) l.OneOf("format", c.log_format, {"json", "text"});
  l.Finish();
  if (!e.ok()) return e.status();
  c.warnings = std::move(e.warnings());
  return c;
}

Result<HqConfig> LoadHqConfig(const std::string& path) {
  auto text = internal::ReadConfigFile(path, kMaxConfigBytes);
  if (!text.ok()) return text.status();
  auto c = ParseHqConfig(*text, path);
  if (!c.ok()) return c;
  // Every file it names that HQ opens (a PostgreSQL URI is no file).
  Errors e(path);
  if (!IsPostgresUri(c->database)) internal::RequireRegularFile(e, "hq.database", c->database);
  for (const auto& [key, file] :
       {std::pair<const char*, const std::string*>{"hq.admin_token_file", &c->admin_token_file},
        {"hq.metrics_token_file", &c->metrics_token_file},
        {"hq.database_password_file", &c->database_password_file},
        {"hq.pii_key_file", &c->pii_key_file},
        {"hq.tls_cert_file", &c->tls_cert_file},
        {"hq.tls_key_file", &c->tls_key_file},
        {"hq.client_ca_file", &c->client_ca_file},
        {"hq.crl_file", &c->crl_file},
        {"hq.rules_file", &c->rules_file}})
    internal::RequireRegularFile(e, key, *file);
  for (const auto& [id, file] : c->signing_keys)
    internal::RequireRegularFile(e, internal::QuotedKey("hq.signing_keys", std::to_string(id)),
                                 file);
  if (!e.ok()) return e.status();
  return c;
}

std::string LogFormatOf(const std::string& path) {
  auto text = internal::ReadConfigFile(path, kMaxConfigBytes);
  if (!text.ok()) return "";
  Status error;
  auto t = internal::ParseToml(*text, path, error);
  if (!t) return "";
  const auto* format = (*t)["log"]["format"].as_string();
  if (!format || (format->get() != "json" && format->get() != "text")) return "";
  return format->get();
}

}  // namespace loyalty::config
