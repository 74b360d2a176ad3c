// agent.toml: parsing and validation. Keys and defaults are the contract of
// shared/spec/operations.md; docs/configuration.md lists every rule enforced here.

#include <algorithm>
#include <array>
#include <cstdint>
#include <regex>
#include <set>
#include <utility>

#include "loyalty/base/encoding.h"
#include "loyalty/base/timezone.h"
#include "loyalty/config/config.h"
#include "reader.h"

namespace loyalty::config {
namespace {

using internal::Errors;
using internal::IndexKey;
using internal::JoinKey;
using internal::Quote;
using internal::Section;

constexpr size_t kMaxConfigBytes = 1 << 20;
constexpr size_t kMaxPatternLength = 256;
// std::regex expands counted repetitions into copies of the automaton; a large count in a
// config (or from the fuzzer) would cost seconds and megabytes to compile.
constexpr int64_t kMaxRepetition = 1000;
constexpr size_t kMaxAffixBytes = 32;

constexpr std::array<int, 11> kBaudRates = {1200,  2400,   4800,   9600,   19200, 38400,
                                            57600, 115200, 230400, 460800, 921600};

constexpr std::string_view kKinds[] = {"usb-hid-keyboard", "usb-hid-pos", "serial", "image",
                                       "fifo"};

const std::vector<std::string_view>& KindKeys(std::string_view kind) {
  static const std::vector<std::string_view> kSerial = {"path", "baud", "terminator"};
  static const std::vector<std::string_view> kFifo = {"path"};
  static const std::vector<std::string_view> kKeyboard = {
      "vendor_id", "product_id", "serial_number", "bus_path", "suffix_key"};
  static const std::vector<std::string_view> kPos = {
      "vendor_id",     "product_id",       "serial_number", "bus_path", "report_id",
      "length_offset", "symbology_offset", "data_offset",   "data_len", "flags_offset"};
  static const std::vector<std::string_view> kImage = {"directory", "processed", "processed_dir"};
  static const std::vector<std::string_view> kNone;
  if (kind == "serial") return kSerial;
  if (kind == "fifo") return kFifo;
  if (kind == "usb-hid-keyboard") return kKeyboard;
  if (kind == "usb-hid-pos") return kPos;
  if (kind == "image") return kImage;
  return kNone;
}

// Where a key that is unknown at the top level belongs, for a friendlier message.
std::string TopLevelHint(std::string_view key) {
  static const std::pair<std::string_view, std::vector<std::string_view>> kSections[] = {
      {"agent", {"terminal_id", "store_id", "timezone", "database", "rules_file"}},
      {"api",
       {"listen", "token_file", "allow_public_listen", "max_connections", "request_timeout_ms",
        "phone_lookups_per_hour"}},
      {"codes", {"hq_public_keys", "code_max_age_s", "clock_skew_s", "card_prefix", "channels"}},
      {"hq", {"url", "ca_file", "cert_file", "key_file", "lookup_timeout_ms"}},
      {"sync", {"interval_s", "run_timeout_s"}},
      {"enrolment", {"url_template", "qr_module_pixels", "qr_error_correction"}},
      {"log", {"level", "format", "file", "file_max_bytes", "file_count"}},
  };
  for (const auto& [section, keys] : kSections) {
    if (std::find(keys.begin(), keys.end(), key) != keys.end()) {
      return "unknown key at the top level (it belongs in [" + std::string(section) + "])";
    }
  }
  return {};
}

std::optional<std::string> CheckPattern(const std::string& p) {
  if (p.size() > kMaxPatternLength)
    return "longer than " + std::to_string(kMaxPatternLength) + " characters";
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == '\\') {
      ++i;
      continue;
    }
    if (p[i] != '{') continue;
    // {n}, {n,}, {n,m}: every count must be small.
    for (size_t j = i + 1; j < p.size() && ((p[j] >= '0' && p[j] <= '9') || p[j] == ','); ++j) {
      if (p[j] == ',') continue;
      int64_t v = 0;
      while (j < p.size() && p[j] >= '0' && p[j] <= '9') {
        v = std::min<int64_t>(v * 10 + (p[j] - '0'), kMaxRepetition + 1);
        ++j;
      }
      if (v > kMaxRepetition) return "a repetition count above " + std::to_string(kMaxRepetition);
      --j;
    }
  }
  try {
    std::regex re(p, std::regex::ECMAScript);
  } catch (const std::exception& e) {
    return std::string("does not compile: ") + e.what();
  }
  return std::nullopt;
}

bool IsSnakeCase(std::string_view s) {
  if (s.empty() || s.size() > 32 || !(s[0] >= 'a' && s[0] <= 'z')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// "1-2", "1-2.3.4": bus number, then port numbers down the hub chain.
bool IsBusPath(std::string_view s) {
  size_t dash = s.find('-');
  if (dash == 0 || dash == std::string_view::npos || dash > 3) return false;
  for (size_t i = 0; i < dash; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
  }
  std::string_view ports = s.substr(dash + 1);
  size_t parts = 0, run = 0;
  for (char c : ports) {
    if (c == '.') {
      if (run == 0) return false;
      run = 0;
      continue;
    }
    if (c < '0' || c > '9' || ++run > 3) return false;
    if (run == 1) ++parts;
  }
  return run > 0 && parts <= 7;
}

const std::string kIdRule = "must be 1..32 characters of A-Z a-z 0-9 _ -";

void ParseAgentSection(Section& s, AgentConfig& c, const internal::PathResolver& paths) {
  Errors& e = s.errors();
  for (auto [key, out] :
       {std::pair{"terminal_id", &c.terminal_id}, std::pair{"store_id", &c.store_id}}) {
    if (!s.Has(key)) {
      e.Fail(s.Key(key), "required (" + kIdRule.substr(8) + ")");
    } else if (s.String(key, *out, true) && !internal::IsIdentifier(*out)) {
      e.Fail(s.Key(key), Quote(*out) + " " + kIdRule);
    }
  }
  if (s.String("timezone", c.timezone)) {
    auto tz = TimeZone::Load(c.timezone);
    if (!tz.ok()) e.Fail(s.Key("timezone"), tz.status().message());
  }
  if (s.String("database", c.database)) c.database = paths.Resolve(c.database);
  if (s.String("rules_file", c.rules_file, true)) c.rules_file = paths.Resolve(c.rules_file);
  s.Finish();
}

void ParseApiSection(Section& s, AgentConfig& c, const internal::PathResolver& paths) {
  Errors& e = s.errors();
  s.String("listen", c.listen);
  s.Bool("allow_public_listen", c.allow_public_listen);
  if (s.String("token_file", c.token_file)) c.token_file = paths.Resolve(c.token_file);
  s.Int("max_connections", c.max_connections, 1, 1024);
  s.Int("request_timeout_ms", c.request_timeout_ms, 100, 300000);
  s.Int("phone_lookups_per_hour", c.phone_lookups_per_hour, 0, 1000);
  s.Finish();
  if (!e.ok()) return;
  internal::HostPort hp;
  std::string why;
  if (!internal::ParseListen(c.listen, hp, why)) {
    e.Fail(s.Key("listen"), why);
    return;
  }
  if (!internal::IsLoopbackHost(hp.host) && !c.allow_public_listen) {
    e.Fail(s.Key("listen"),
           Quote(c.listen) +
               " is not a loopback address (set api.allow_public_listen = true to bind it)");
    return;
  }
  if (!internal::IsLoopbackHost(hp.host)) {
    e.Warn(s.Key("listen"), "the POS API listens on a non-loopback address " + Quote(c.listen));
  }
  c.listen_host = hp.host;
  c.listen_port = hp.port;
}

void ParseChannels(Section& s, AgentConfig& c) {
  Errors& e = s.errors();
  const toml::node* n = s.Get("channels");
  if (n == nullptr) return;
  const auto* arr = n->as_array();
  if (arr == nullptr) {
    e.Fail(s.Key("channels"), "expected an array of { name = \"...\", pattern = \"...\" }, got " +
                                  internal::TypeName(*n));
    return;
  }
  for (size_t i = 0; i < arr->size() && e.ok(); ++i) {
    const std::string item = IndexKey(s.Key("channels"), i);
    const auto* t = (*arr)[i].as_table();
    if (t == nullptr) {
      e.Fail(item, "expected a table { name = \"...\", pattern = \"...\" }, got " +
                       internal::TypeName((*arr)[i]));
      return;
    }
    Section ch(e, t, item);
    ChannelPattern p;
    if (!ch.Has("name")) e.Fail(ch.Key("name"), "required");
    if (!ch.Has("pattern")) e.Fail(ch.Key("pattern"), "required");
    if (ch.String("name", p.name) && e.ok()) {
      if (!IsSnakeCase(p.name)) {
        e.Fail(ch.Key("name"),
               Quote(p.name) +
                   " must be snake_case (a-z, 0-9, _; starting with a letter; at most 32)");
      } else if (p.name == "card") {
        e.Fail(ch.Key("name"), "'card' is reserved for printed member cards");
      } else {
        for (size_t j = 0; j < c.channels.size(); ++j) {
          if (c.channels[j].name == p.name) {
            e.Fail(ch.Key("name"),
                   Quote(p.name) + " is already used by " + IndexKey(s.Key("channels"), j));
          }
        }
      }
    }
    if (ch.String("pattern", p.pattern) && e.ok()) {
      if (auto why = CheckPattern(p.pattern))
        e.Fail(ch.Key("pattern"), Quote(p.pattern) + ": " + *why);
    }
    ch.Finish();
    c.channels.push_back(std::move(p));
  }
}

void ParseCodesSection(Section& s, AgentConfig& c) {
  Errors& e = s.errors();
  std::vector<std::pair<int, std::string>> keys;
  if (s.IdMap("hq_public_keys", keys)) {
    for (const auto& [id, text] : keys) {
      auto raw = Base64UrlDecode(text);
      if (!raw || raw->size() != 32) {
        e.Fail(internal::QuotedKey(s.Key("hq_public_keys"), std::to_string(id)),
               "not strict base64url of 32 bytes (an Ed25519 public key: 43 characters of A-Z a-z "
               "0-9 - _, no '=')");
        break;
      }
      c.hq_public_keys[id] = *raw;
    }
    if (e.ok() && c.hq_public_keys.empty()) {
      e.Fail(s.Key("hq_public_keys"),
             "at least one HQ public key is required to verify dynamic member codes");
    }
  }
  s.Int("code_max_age_s", c.code_max_age_s, 1, 3600);
  s.Int("clock_skew_s", c.clock_skew_s, 0, 3600);
  if (s.String("card_prefix", c.card_prefix) && !internal::IsCardPrefix(c.card_prefix)) {
    e.Fail(s.Key("card_prefix"), Quote(c.card_prefix) + " must be 1..8 digits");
  }
  ParseChannels(s, c);
  s.Finish();
}

void ParseHqSection(Section& s, AgentConfig& c, const internal::PathResolver& paths) {
  Errors& e = s.errors();
  s.String("url", c.hq_url, true);
  for (auto [key, out] : {std::pair{"ca_file", &c.ca_file}, std::pair{"cert_file", &c.cert_file},
                          std::pair{"key_file", &c.key_file}}) {
    if (s.String(key, *out, true)) *out = paths.Resolve(*out);
  }
  s.Int("lookup_timeout_ms", c.lookup_timeout_ms, 0, 5000);
  s.Finish();
  if (!e.ok()) return;
  if (c.cert_file.empty() != c.key_file.empty()) {
    const char* missing = c.cert_file.empty() ? "cert_file" : "key_file";
    const char* present = c.cert_file.empty() ? "key_file" : "cert_file";
    e.Fail(s.Key(missing), std::string("required when hq.") + present +
                               " is set (the client certificate and its key go together)");
    return;
  }
  if (c.hq_url.empty()) return;
  internal::Url url;
  std::string why;
  if (!internal::ParseHttpUrl(c.hq_url, url, why)) {
    e.Fail(s.Key("url"), why);
    return;
  }
  if (!url.tls) {
    if (!internal::IsLoopbackHost(url.host)) {
      e.Fail(
          s.Key("url"),
          Quote(c.hq_url) + ": plain http:// is accepted only for a loopback host (use https://)");
      return;
    }
    e.Warn(s.Key("url"),
           "plain http:// to HQ (loopback only): sync traffic is not encrypted or authenticated");
  }
  c.hq_tls = url.tls;
  c.hq_host = url.host;
  c.hq_port = url.port;
  c.hq_base_path = url.base_path;
}

void ParseSyncSection(Section& s, AgentConfig& c) {
  s.Int("interval_s", c.interval_s, 0, 604800);
  s.Int("run_timeout_s", c.run_timeout_s, 1, 3600);
  s.Finish();
}

// [enrolment] url_template: what a URI may hold (RFC 3986: unreserved, reserved and '%'),
// "{claim}" exactly once, a scheme first. The claim itself is URL-unreserved, so the link
// needs no escaping, and at most 512 + 379 - 7 bytes, within a QR code's 1,024.
constexpr size_t kMaxUrlTemplateBytes = 512;
constexpr std::string_view kClaimPlaceholder = "{claim}";

std::optional<std::string> CheckUrlTemplate(const std::string& t) {
  if (t.empty() || t.size() > kMaxUrlTemplateBytes)
    return "must be 1.." + std::to_string(kMaxUrlTemplateBytes) + " characters";
  const size_t at = t.find(kClaimPlaceholder);
  if (at == std::string::npos) return "must contain {claim}, where the signed claim goes";
  if (t.find(kClaimPlaceholder, at + 1) != std::string::npos)
    return "must contain {claim} exactly once";
  std::string rest = t.substr(0, at) + t.substr(at + kClaimPlaceholder.size());
  static constexpr std::string_view kUriPunctuation = "-._~:/?#[]@!$&'()*+,;=%";
  for (char ch : rest) {
    const bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                    (ch >= '0' && ch <= '9') || kUriPunctuation.find(ch) != std::string_view::npos;
    if (!ok) {
      std::string shown = ch >= 0x21 && ch <= 0x7e ? std::string(1, ch) : "a space or control";
      return "holds '" + shown +
             "', which a link cannot (percent-encode it; only {claim} is replaced)";
    }
  }
  // A scheme: a letter, then letters, digits, + - ., then ':' (https:, alipays:, weixin:).
  size_t colon = rest.find(':');
  bool scheme = colon != std::string::npos && colon > 0 && at > colon &&
                ((rest[0] >= 'a' && rest[0] <= 'z') || (rest[0] >= 'A' && rest[0] <= 'Z'));
  for (size_t i = 0; scheme && i < colon; ++i) {
    const char ch = rest[i];
    scheme = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
             ch == '+' || ch == '-' || ch == '.';
  }
  if (!scheme)
    return "must begin with a scheme before {claim} (e.g. "
           "https://join.example.com/m?claim={claim})";
  return std::nullopt;
}

void ParseEnrolmentSection(Section& s, AgentConfig& c) {
  Errors& e = s.errors();
  if (s.Has("url_template") && s.String("url_template", c.enrolment_url_template) && e.ok()) {
    if (auto why = CheckUrlTemplate(c.enrolment_url_template))
      e.Fail(s.Key("url_template"), Quote(c.enrolment_url_template) + " " + *why);
  }
  s.Int("qr_module_pixels", c.enrolment_qr_module_pixels, 1, 16);
  s.OneOf("qr_error_correction", c.enrolment_qr_error_correction, {"L", "M", "Q", "H"});
  s.Finish();
}

void ParseLogSection(Section& s, AgentConfig& c, const internal::PathResolver& paths) {
  // spdlog's own name of the warn level, "warning", is taken too (and read as "warn").
  s.OneOf("level", c.log_level,
          {"trace", "debug", "info", "warn", "warning", "error", "critical", "off"});
  if (c.log_level == "warning") c.log_level = "warn";
  if (s.Has("format")) s.OneOf("format", c.log_format, {"json", "text"});
  if (s.String("file", c.log_file, true)) c.log_file = paths.Resolve(c.log_file);
  s.Int("file_max_bytes", c.log_file_max_bytes, 65536, int64_t{1} << 30);
  s.Int("file_count", c.log_file_count, 1, 100);
  s.Finish();
}

void ParseScanner(Section& s, ScannerConfig& sc, const internal::PathResolver& paths) {
  Errors& e = s.errors();
  if (!s.Has("id")) {
    e.Fail(s.Key("id"), "required (" + kIdRule.substr(8) + ")");
  } else if (s.String("id", sc.id, true) && !internal::IsIdentifier(sc.id)) {
    e.Fail(s.Key("id"), Quote(sc.id) + " " + kIdRule);
  }
  if (!s.Has("kind")) {
    e.Fail(s.Key("kind"), "required (usb-hid-keyboard | usb-hid-pos | serial | image | fifo)");
  } else {
    s.OneOf("kind", sc.kind, {"usb-hid-keyboard", "usb-hid-pos", "serial", "image", "fifo"});
  }
  if (!e.ok()) return;

  const std::string& k = sc.kind;
  if (k == "serial" || k == "fifo") {
    if (!s.Has("path")) e.Fail(s.Key("path"), "required for kind '" + k + "'");
    if (s.String("path", sc.path)) sc.path = paths.Resolve(sc.path);
  }
  if (k == "serial") {
    if (s.Int("baud", sc.baud, INT32_MIN, INT32_MAX) &&
        std::find(kBaudRates.begin(), kBaudRates.end(), sc.baud) == kBaudRates.end()) {
      std::string list;
      for (int b : kBaudRates) list += (list.empty() ? "" : ", ") + std::to_string(b);
      e.Fail(s.Key("baud"),
             std::to_string(sc.baud) + " is not a standard baud rate (" + list + ")");
    }
    s.OneOf("terminator", sc.terminator, {"CR", "LF", "CRLF"});
  }
  if (k == "usb-hid-keyboard" || k == "usb-hid-pos") {
    for (auto [key, out] :
         {std::pair{"vendor_id", &sc.vendor_id}, std::pair{"product_id", &sc.product_id}}) {
      if (!s.Has(key)) {
        e.Fail(s.Key(key),
               std::string("required for kind '") + k + "' (e.g. " + key + " = 0x05e0)");
      } else {
        s.Int(key, *out, 1, 0xffff);
      }
    }
    if (s.String("serial_number", sc.serial_number, true) && sc.serial_number.size() > 126) {
      e.Fail(s.Key("serial_number"), "longer than 126 characters");
    }
    if (s.String("bus_path", sc.bus_path, true) && !sc.bus_path.empty() &&
        !IsBusPath(sc.bus_path)) {
      e.Fail(s.Key("bus_path"), Quote(sc.bus_path) + " is not a USB bus path such as 1-2 or 1-2.3");
    }
  }
  if (k == "usb-hid-keyboard") s.OneOf("suffix_key", sc.suffix_key, {"enter", "tab"});
  if (k == "usb-hid-pos") {
    s.Int("report_id", sc.report_id, -1, 255);  // -1: the device sends no report id
    s.Int("length_offset", sc.length_offset, 0, 1023);
    s.Int("symbology_offset", sc.symbology_offset, -1, 1021);
    s.Int("data_offset", sc.data_offset, 0, 1023);
    s.Int("data_len", sc.data_len, 1, 1024);
    s.Int("flags_offset", sc.flags_offset, -1, 1023);
    if (e.ok() && sc.report_id >= 0 && (sc.length_offset == 0 || sc.data_offset == 0)) {
      e.Fail(s.Key(sc.length_offset == 0 ? "length_offset" : "data_offset"),
             "byte 0 is the report id (report_id = " + std::to_string(sc.report_id) +
                 "); set report_id = -1 for a device that sends none");
    } else if (e.ok() && sc.data_offset + sc.data_len > 1024) {
      e.Fail(s.Key("data_len"),
             "data_offset + data_len = " + std::to_string(sc.data_offset + sc.data_len) +
                 " exceeds the largest report (1024 bytes)");
    }
  }
  if (k == "image") {
    if (!s.Has("directory")) e.Fail(s.Key("directory"), "required for kind 'image'");
    if (s.String("directory", sc.directory)) sc.directory = paths.Resolve(sc.directory);
    s.OneOf("processed", sc.processed, {"delete", "move"});
    const bool has_dir = s.Has("processed_dir");
    if (s.String("processed_dir", sc.processed_dir))
      sc.processed_dir = paths.Resolve(sc.processed_dir);
    if (e.ok()) {
      if (sc.processed == "move" && !has_dir) {
        e.Fail(s.Key("processed_dir"), "required when processed = \"move\"");
      } else if (sc.processed == "delete" && has_dir) {
        e.Fail(s.Key("processed_dir"), "only used when processed = \"move\"");
      } else if (has_dir && sc.processed_dir == sc.directory) {
        e.Fail(s.Key("processed_dir"),
               "must differ from directory (processed images would be read again)");
      }
    }
  }
  for (auto [key, out] : {std::pair{"prefix", &sc.prefix}, std::pair{"suffix", &sc.suffix}}) {
    if (s.String(key, *out, true, true) && out->size() > kMaxAffixBytes) {
      e.Fail(s.Key(key), "longer than " + std::to_string(kMaxAffixBytes) + " bytes");
    }
  }
  s.Int("debounce_ms", sc.debounce_ms, 0, 10000);
  s.Finish([&k](std::string_view key) -> std::string {
    for (std::string_view kind : kKinds) {
      const auto& keys = KindKeys(kind);
      if (std::find(keys.begin(), keys.end(), key) != keys.end())
        return "not used by kind '" + k + "'";
    }
    return {};
  });
}

void ParseScanners(Errors& e, const toml::node* n, AgentConfig& c,
                   const internal::PathResolver& paths) {
  if (n == nullptr) return;
  const auto* arr = n->as_array();
  if (arr == nullptr) {
    e.Fail("scanners", "expected an array of tables ([[scanners]]), got " + internal::TypeName(*n));
    return;
  }
  for (size_t i = 0; i < arr->size() && e.ok(); ++i) {
    const std::string item = IndexKey("scanners", i);
    const auto* t = (*arr)[i].as_table();
    if (t == nullptr) {
      e.Fail(item, "expected a table ([[scanners]]), got " + internal::TypeName((*arr)[i]));
      return;
    }
    Section s(e, t, item);
    ScannerConfig sc;
    ParseScanner(s, sc, paths);
    if (!e.ok()) return;
    for (size_t j = 0; j < c.scanners.size(); ++j) {
      const ScannerConfig& o = c.scanners[j];
      const std::string other = IndexKey("scanners", j);
      if (o.id == sc.id) {
        e.Fail(s.Key("id"), Quote(sc.id) + " is already used by " + other);
      } else if (!sc.path.empty() && o.path == sc.path) {
        e.Fail(s.Key("path"), Quote(sc.path) + " is already used by " + other);
      } else if (!sc.directory.empty() &&
                 (o.directory == sc.directory || o.processed_dir == sc.directory)) {
        e.Fail(s.Key("directory"), Quote(sc.directory) + " is already used by " + other);
      } else if (sc.vendor_id != 0 && o.vendor_id == sc.vendor_id &&
                 o.product_id == sc.product_id && o.serial_number == sc.serial_number &&
                 o.bus_path == sc.bus_path) {
        e.Fail(item, "selects the same USB device as " + other +
                         " (set serial_number or bus_path to tell them apart)");
      }
      if (!e.ok()) return;
    }
    c.scanners.push_back(std::move(sc));
  }
}

}  // namespace

Result<AgentConfig> ParseAgentConfig(std::string_view toml_text, const std::string& path) {
  Status syntax;
  auto root = internal::ParseToml(toml_text, path, syntax);
  if (!root) return syntax;

  Errors e(path);
  internal::PathResolver paths(path);
  AgentConfig c;
  c.path = path;
  c.token_file = paths.Resolve(c.token_file);
  c.database = paths.Resolve(c.database);

  Section top(e, &*root, "");
  for (const char* section :
       {"agent", "api", "codes", "hq", "sync", "enrolment", "log", "scanners"})
    top.Has(section);
  top.Finish(TopLevelHint);

  const toml::table* agent = internal::SubTable(e, *root, "agent", "");
  const toml::table* api = internal::SubTable(e, *root, "api", "");
  const toml::table* codes = internal::SubTable(e, *root, "codes", "");
  const toml::table* hq = internal::SubTable(e, *root, "hq", "");
  const toml::table* sync = internal::SubTable(e, *root, "sync", "");
  const toml::table* log = internal::SubTable(e, *root, "log", "");
  const toml::table* enrolment = internal::SubTable(e, *root, "enrolment", "");
  if (!e.ok()) return e.status();

  Section agent_s(e, agent, "agent");
  ParseAgentSection(agent_s, c, paths);
  Section api_s(e, api, "api");
  if (e.ok()) ParseApiSection(api_s, c, paths);
  Section codes_s(e, codes, "codes");
  if (e.ok()) ParseCodesSection(codes_s, c);
  Section hq_s(e, hq, "hq");
  if (e.ok()) ParseHqSection(hq_s, c, paths);
  Section sync_s(e, sync, "sync");
  if (e.ok()) ParseSyncSection(sync_s, c);
  Section log_s(e, log, "log");
  if (e.ok()) ParseLogSection(log_s, c, paths);
  Section enrolment_s(e, enrolment, "enrolment");
  if (e.ok()) ParseEnrolmentSection(enrolment_s, c);
  if (e.ok()) ParseScanners(e, root->get("scanners"), c, paths);
  if (!e.ok()) return e.status();
  c.warnings = std::move(e.warnings());
  return c;
}

Result<AgentConfig> LoadAgentConfig(const std::string& path) {
  auto text = internal::ReadConfigFile(path, kMaxConfigBytes);
  if (!text.ok()) return text.status();
  auto c = ParseAgentConfig(*text, path);
  if (!c.ok()) return c;
  // Every file it names that the agent (or loyaltyctl) opens; scanner paths are devices
  // and fifos on purpose, and image folders folders.
  Errors e(path);
  for (const auto& [key, file] :
       {std::pair<const char*, const std::string*>{"agent.database", &c->database},
        {"agent.rules_file", &c->rules_file},
        {"api.token_file", &c->token_file},
        {"hq.ca_file", &c->ca_file},
        {"hq.cert_file", &c->cert_file},
        {"hq.key_file", &c->key_file},
        {"log.file", &c->log_file}})
    internal::RequireRegularFile(e, key, *file);
  if (!e.ok()) return e.status();
  return c;
}

}  // namespace loyalty::config
