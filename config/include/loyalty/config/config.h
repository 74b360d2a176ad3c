// Configuration files: agent.toml for loyaltyd (and loyaltyctl), hq.toml for loyalty-hq.
//
// Loading validates everything up front, so a wrong store config stops the program at
// start with one precise message instead of misbehaving at the first scan or sync. Every
// error is a Status with code "config_invalid" and a message of the form
//
//   <file>: <dotted key>: <reason>
//   /etc/loyaltyd/agent.toml: api.listen: '0.0.0.0:8787' is not a loopback address (set
//   api.allow_public_listen = true to bind it) /etc/loyaltyd/agent.toml: scanners[2].baud: 9601 is
//   not a standard baud rate (...) /etc/loyaltyd/agent.toml: codes.hq_public_keys."1": not strict
//   base64url of 32 bytes
//
// TOML syntax errors read "<file>:<line>:<column>: <what>". Array elements are counted from
// 0. Keys this version does not know are rejected ("unknown key"): a typo in a store config
// must not pass silently. The first problem found is reported.
//
// Relative paths in a file (database, rules_file, token files, TLS files, scanner paths and
// directories, the log file) are resolved against the folder of that file; the structs
// below hold the resolved paths. Every key, default and rule is listed in
// docs/configuration.md and in the annotated config/agent.example.toml and
// config/hq.example.toml.
//
// Everything here is a plain value: the structs are copyable and the functions are
// thread-safe (they share no state).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "loyalty/base/secret_file.h"
#include "loyalty/base/status.h"

namespace loyalty::config {

// codes.channels: which scanned strings belong to a channel's member cards (first match wins).
struct ChannelPattern {
  std::string name;     // snake_case, unique; "card" is reserved for printed member cards
  std::string pattern;  // std::regex ECMAScript, known to compile
};

struct ScannerConfig {
  std::string id;                     // [A-Za-z0-9_-]{1,32}, unique
  std::string kind;                   // usb-hid-keyboard | usb-hid-pos | serial | image | fifo
  std::string path;                   // serial, fifo (resolved)
  int baud = 9600;                    // serial
  std::string terminator = "CR";      // serial: CR | LF | CRLF
  int vendor_id = 0, product_id = 0;  // usb kinds: 1..0xffff, required
  std::string serial_number;          // usb kinds: optional, matches the device's iSerial
  std::string bus_path;               // usb kinds: optional, e.g. "1-2.3" (bus-port.port...)
  std::string suffix_key = "enter";   // usb-hid-keyboard: enter | tab
  std::string directory;              // image (resolved)
  std::string processed = "delete";   // image: delete | move
  std::string processed_dir;          // image with processed = "move" (resolved)
  std::string prefix, suffix;         // stripped from scans when present (at most 32 bytes each)
  int debounce_ms = 800;              // 0..10000
  // usb-hid-pos input report layout (byte offsets in the report; defaults: the common
  // 64-byte report [0x02][len][3-byte AIM id][56 data][2 vendor][flags], /work/shared
  // testing-usb.md). symbology_offset = -1: the device sends no symbology id.
  int report_id = 2;
  int length_offset = 1;
  int symbology_offset = 2;
  int data_offset = 5;
  int data_len = 56;
  int flags_offset = 63;

  bool operator==(const ScannerConfig&) const = default;
};

struct AgentConfig {
  std::string path;  // the file it came from, as given

  // [agent]
  std::string terminal_id, store_id;       // [A-Za-z0-9_-]{1,32}, required
  std::string timezone = "Asia/Shanghai";  // loads with loyalty::TimeZone::Load
  std::string database = "/var/lib/loyaltyd/ledger.db";
  std::string rules_file;  // optional; empty = the defaults of loyalty-rules.md

  // [api]
  std::string listen = "127.0.0.1:8787";  // host:port as written ("[::1]:8787" for IPv6)
  std::string listen_host = "127.0.0.1";  // without brackets
  uint16_t listen_port = 8787;            // 1..65535
  std::string token_file = "api.token";   // resolved; ReadTokenFile(token_file, kOwnerAndGroupRead)
  bool allow_public_listen = false;       // needed to bind a non-loopback address
  int max_connections = 256;              // 1..1024; at the cap the longest-idle one is closed
  int request_timeout_ms = 10000;         // 100..300000
  int phone_lookups_per_hour = 30;        // 0..1000; 0: no phone look-up (docs/pos-api.md)

  // [codes]
  std::map<int, std::string>
      hq_public_keys;              // key id 0..255 -> raw 32-byte Ed25519 key; at least one
  int64_t code_max_age_s = 120;    // 1..3600
  int64_t clock_skew_s = 60;       // 0..3600
  std::string card_prefix = "88";  // 1..8 digits
  std::vector<ChannelPattern> channels;

  // [hq]; hq_url empty = no HQ configured (sync runs fail with a clear reason).
  std::string hq_url;  // https://host[:port][/path], or http:// to a loopback host
  std::string ca_file, cert_file, key_file;  // resolved; cert_file and key_file go together
  // hq_url taken apart, for the sync client (empty/0 when hq_url is empty).
  bool hq_tls = true;
  std::string hq_host;       // without brackets
  uint16_t hq_port = 0;      // explicit or the scheme's default (443 / 80)
  std::string hq_base_path;  // "" or "/prefix" without a trailing slash
  // How long identify waits on HQ for a member this terminal does not hold (0..5000 ms;
  // 0: never asks, the offline rules at once). docs/sync.md.
  int lookup_timeout_ms = 300;

  // [sync]
  int64_t interval_s = 3600;   // 0 = off, else 1..604800
  int64_t run_timeout_s = 60;  // 1..3600

  // [enrolment]: the sign-up QR code of a sale made without a member (docs/pos-api.md,
  // "Sign-up at the till").
  // The join page's link: 1..512 characters a URI may hold (RFC 3986, '%' escapes
  // included), beginning with a scheme ("https:", "alipays:", ...), with "{claim}" exactly
  // once where the signed claim goes. "" = off: the enrolment routes answer 404 not_found.
  std::string enrolment_url_template;
  int enrolment_qr_module_pixels = 4;               // 1..16 pixels a module (the PNG)
  std::string enrolment_qr_error_correction = "M";  // L | M | Q | H

  // [log]
  std::string log_level = "info";  // trace | debug | info | warn | error | critical | off
  std::string log_format;          // "" (unset: json under systemd, text otherwise) | json | text
  std::string log_file;            // optional size-rotated copy of the log (resolved)
  int64_t log_file_max_bytes = 10 << 20;  // 65536..1 GiB
  int log_file_count = 3;                 // 1..100

  std::vector<ScannerConfig> scanners;

  // Findings that are allowed but worth one log line at start (e.g. plain-HTTP HQ on
  // loopback), each "<file>: <key>: <what>".
  std::vector<std::string> warnings;
};

// Reads (at most 1 MiB) and parses `path`, then looks at the files it names that the agent
// opens (database, rules_file, token_file, ca_file, cert_file, key_file, log.file): one that
// exists and is not a regular file (following symbolic links: a fifo, which would block
// its open, a folder, a device such as /dev/zero) is refused, "<file>: <key>: <path>: not a
// regular file". A missing one passes here (made at start, or reported by its reader).
Result<AgentConfig> LoadAgentConfig(const std::string& path);
// `path` names the file in messages, and its folder anchors relative paths (the current
// directory when `path` has none).
Result<AgentConfig> ParseAgentConfig(std::string_view toml_text, const std::string& path);

struct HqConfig {
  std::string path;
  // [hq]
  std::string listen = "127.0.0.1:8443";  // host:port; a non-loopback host needs TLS
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 8443;
  // A SQLite file (resolved), or a PostgreSQL URI ("postgresql://…" or "postgres://…",
  // kept as written; it must not carry a password: database_password_file does).
  std::string database = "hq.db";
  // PostgreSQL only: the role's password, one line, owner-only (ReadTokenFile); resolved;
  // "" = none (libpq's own: ~/.pgpass, PGPASSWORD, peer authentication).
  std::string database_password_file;
  std::string admin_token_file = "admin.token";  // resolved; ReadTokenFile (owner only)
  // A token that reads GET /metrics and nothing else, for a Prometheus server off the HQ
  // host (resolved; ReadTokenFile); "" = none: loopback or the admin token only.
  std::string metrics_token_file;
  std::map<int, std::string> signing_keys;  // key id 0..255 -> PEM file (resolved); at least one
  std::string tls_cert_file, tls_key_file,
      client_ca_file;                    // all three or none (plain HTTP, loopback only)
  std::string card_prefix = "88";        // 1..8 digits
  std::string pii_key_file = "pii.key";  // resolved
  // The chain's current rules (the agent's rules-file format); resolved; "" = the defaults
  // of loyalty-rules.md (version "default"). HQ keeps every version it publishes.
  std::string rules_file;
  // The chain's calendar (month spend, tiers, lot expiry, birthday months): an IANA zone,
  // "UTC" or "+HH:MM"; loads (checked here). The chain's stores share it.
  std::string timezone = "Asia/Shanghai";
  // Connections (docs/http.md): at max_connections the longest-idle connection without a
  // request in progress is closed to admit a new one; one client address holds at most
  // max_connections_per_address (0: no limit).
  int max_connections = 4096;            // 1..65536
  int max_connections_per_address = 64;  // 0..65536
  // A store's terminals hold the members enrolled there and those that shopped there or
  // were asked for there within this many months (1..120; hq-and-sync.md, "Download").
  int member_scope_months = 12;
  // How long a store's phone look-up key lasts before the next one (1..365 days;
  // docs/pos-api.md, "Phone look-up").
  int phone_key_days = 30;
  // Threads that answer requests, each with its own database connection (1..64; docs/hq.md,
  // "Workers"). Unset (0 here while parsing): 2 on PostgreSQL, 1 on SQLite, which has one
  // writer and refuses more.
  int workers = 0;
  // PEM CRLs, one per CA of client_ca_file (resolved; needs TLS); empty: none. Re-read on
  // SIGHUP (docs/tls.md, "Revocation").
  std::string crl_file;
  // [log]
  std::string log_level = "info";
  std::string log_format;
  std::vector<std::string> warnings;
};

// Reads and parses `path`, and refuses, as LoadAgentConfig does, a file it names that exists
// and is not a regular file: the SQLite database, every key, token, TLS, CRL and rules file.
Result<HqConfig> LoadHqConfig(const std::string& path);
// The [log] format ("json" or "text") a config file names, read as well as it can be when
// the file as a whole was refused: the refusal is then logged in the format the file asks
// for (which the program otherwise learns only from a valid file). "" when it names none,
// or the file cannot be read or parsed.
std::string LogFormatOf(const std::string& path);
Result<HqConfig> ParseHqConfig(std::string_view toml_text, const std::string& path);

// Reads a bearer token file through ReadSecretFile (loyalty/base/secret_file.h): at most
// 4 KiB, one trailing newline ("\n" or "\r\n") trimmed, printable ASCII without spaces.
// Refuses a symbolic link, a file that is not regular, an empty token, and a file others
// may read (the admin token: anyone but its owner, mode & 0077; the POS API token, read with
// kOwnerAndGroupRead: anyone but its owner and group, mode & 0037, so 0640 passes).
// Error code "config_invalid", message "<file>: <reason>".
Result<std::string> ReadTokenFile(const std::string& path,
                                  SecretAccess access = SecretAccess::kOwnerOnly);

// Reads a private key or token file that the config file `config_path` names under `key`,
// through ReadSecretFile. Errors have code "config_invalid" and the loaders' format
// "<config_path>: <key>: <file>: <reason>", e.g.
//   /etc/loyalty-hq/hq.toml: signing_keys."1": /etc/loyalty-hq/k1.pem: has mode 0644, which lets
//   ...
Result<std::string> ReadConfiguredSecret(const std::string& config_path, std::string_view key,
                                         const std::string& file,
                                         SecretAccess access = SecretAccess::kOwnerOnly,
                                         size_t max_bytes = kMaxSecretFileBytes);
// The same wrapping for an error of a secret read elsewhere (e.g. the PII key's loader).
Status SecretFileError(const std::string& config_path, std::string_view key, const Status& error);

}  // namespace loyalty::config
