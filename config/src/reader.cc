#include "reader.h"

#include "loyalty/base/file.h"
#include "loyalty/base/toml_scan.h"

#include <arpa/inet.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <limits>

namespace loyalty::config::internal {
namespace {

bool IsBareKey(std::string_view k) {
  if (k.empty()) return false;
  for (char c : k) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string EscapeForMessage(std::string_view s, char quote) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\\' || c == static_cast<unsigned char>(quote)) {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] =
          std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

bool ParsePort(std::string_view s, uint16_t& out, std::string& why) {
  if (s.empty() || s.size() > 5 ||
      !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    why = "port " + Quote(s) + " is not a number 1..65535";
    return false;
  }
  int v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  if (v < 1 || v > 65535) {
    why = "port " + std::to_string(v) + " is out of range 1..65535";
    return false;
  }
  out = static_cast<uint16_t>(v);
  return true;
}

bool IsIpv4(std::string_view host, unsigned char* bytes = nullptr) {
  unsigned char buf[4];
  std::string h(host);
  if (inet_pton(AF_INET, h.c_str(), buf) != 1) return false;
  if (bytes != nullptr) std::memcpy(bytes, buf, 4);
  return true;
}

bool IsIpv6(std::string_view host, unsigned char* bytes = nullptr) {
  unsigned char buf[16];
  std::string h(host);
  if (inet_pton(AF_INET6, h.c_str(), buf) != 1) return false;
  if (bytes != nullptr) std::memcpy(bytes, buf, 16);
  return true;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

std::string JoinKey(std::string_view prefix, std::string_view key) {
  std::string k = IsBareKey(key) ? std::string(key) : "\"" + EscapeForMessage(key, '"') + "\"";
  return prefix.empty() ? k : std::string(prefix) + "." + k;
}

std::string QuotedKey(std::string_view prefix, std::string_view key) {
  std::string k = "\"" + EscapeForMessage(key, '"') + "\"";
  return prefix.empty() ? k : std::string(prefix) + "." + k;
}

std::string IndexKey(std::string_view prefix, size_t index) {
  return std::string(prefix) + "[" + std::to_string(index) + "]";
}

std::string Quote(std::string_view value) {
  constexpr size_t kMax = 80;
  bool cut = value.size() > kMax;
  if (cut) {
    size_t n = kMax;
    // Do not split a UTF-8 sequence.
    while (n > 0 && (static_cast<unsigned char>(value[n]) & 0xC0) == 0x80) --n;
    value = value.substr(0, n);
  }
  return "'" + EscapeForMessage(value, '\'') + (cut ? "...'" : "'");
}

std::string TypeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    default:
      return "nothing";
  }
}

void Errors::Fail(const std::string& key, const std::string& reason) {
  if (!status_.ok()) return;
  status_ = Status::Error(kCode, file_ + ": " + (key.empty() ? "" : key + ": ") + reason);
}

void Errors::Warn(const std::string& key, const std::string& what) {
  warnings_.push_back(file_ + ": " + key + ": " + what);
}

PathResolver::PathResolver(const std::string& config_path) {
  std::error_code ec;
  std::filesystem::path p(config_path);
  std::filesystem::path dir = p.parent_path();
  if (dir.empty()) dir = ".";
  std::filesystem::path abs = std::filesystem::absolute(dir, ec);
  dir_ = ec ? dir : abs.lexically_normal();
}

std::string PathResolver::Resolve(const std::string& p) const {
  if (p.empty()) return p;
  std::filesystem::path path(p);
  std::string out = (path.is_absolute() ? path : dir_ / path).lexically_normal().string();
  // "frames/" and "frames" name the same folder; compare and report them alike.
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

Section::Section(Errors& errors, const toml::table* table, std::string prefix)
    : errors_(errors), table_(table), prefix_(std::move(prefix)) {}

bool Section::Has(std::string_view key) { return Get(key) != nullptr; }

const toml::node* Section::Get(std::string_view key) {
  seen_.emplace(key);
  if (table_ == nullptr) return nullptr;
  return table_->get(key);
}

bool Section::String(std::string_view key, std::string& out, bool allow_empty, bool allow_control) {
  const toml::node* n = Get(key);
  if (n == nullptr) return true;
  const auto* s = n->as_string();
  if (s == nullptr) {
    errors_.Fail(Key(key), "expected a string, got " + TypeName(*n));
    return false;
  }
  const std::string& v = s->get();
  if (v.empty() && !allow_empty) {
    errors_.Fail(Key(key), "must not be empty");
    return false;
  }
  for (unsigned char c : v) {
    if (c == 0 || (!allow_control && (c < 0x20 || c == 0x7f))) {
      errors_.Fail(Key(key), Quote(v) + " contains a control character");
      return false;
    }
  }
  out = v;
  return true;
}

bool Section::OneOf(std::string_view key, std::string& out,
                    std::initializer_list<std::string_view> allowed) {
  std::string v = out;
  if (!String(key, v)) return false;
  if (std::find(allowed.begin(), allowed.end(), v) == allowed.end()) {
    std::string list;
    for (auto a : allowed) list += (list.empty() ? "" : " | ") + std::string(a);
    errors_.Fail(Key(key), Quote(v) + " is not one of " + list);
    return false;
  }
  out = v;
  return true;
}

bool Section::Bool(std::string_view key, bool& out) {
  const toml::node* n = Get(key);
  if (n == nullptr) return true;
  const auto* b = n->as_boolean();
  if (b == nullptr) {
    errors_.Fail(Key(key), "expected a boolean (true or false), got " + TypeName(*n));
    return false;
  }
  out = b->get();
  return true;
}

bool Section::Int(std::string_view key, int64_t& out, int64_t lo, int64_t hi) {
  const toml::node* n = Get(key);
  if (n == nullptr) return true;
  const auto* i = n->as_integer();
  if (i == nullptr) {
    errors_.Fail(Key(key), "expected an integer, got " + TypeName(*n));
    return false;
  }
  const int64_t v = i->get();
  if (v < lo || v > hi) {
    errors_.Fail(Key(key), std::to_string(v) + " is out of range " + std::to_string(lo) + ".." +
                               std::to_string(hi));
    return false;
  }
  out = v;
  return true;
}

bool Section::IdMap(std::string_view key, std::vector<std::pair<int, std::string>>& out) {
  const toml::node* n = Get(key);
  if (n == nullptr) return true;
  const auto* t = n->as_table();
  if (t == nullptr) {
    errors_.Fail(Key(key), "expected a table of key id = value (e.g. { \"1\" = \"...\" }), got " +
                               TypeName(*n));
    return false;
  }
  const std::string map_key = Key(key);
  for (const auto& [k, v] : *t) {
    const std::string_view id = k.str();
    const std::string item = QuotedKey(map_key, id);
    const bool digits =
        !id.empty() && id.size() <= 3 &&
        std::all_of(id.begin(), id.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
        (id.size() == 1 || id[0] != '0');
    const int value = digits ? std::stoi(std::string(id)) : -1;
    if (!digits || value > 255) {
      errors_.Fail(item, "a key id must be a whole number 0..255 without leading zeros");
      return false;
    }
    const auto* s = v.as_string();
    if (s == nullptr) {
      errors_.Fail(item, "expected a string, got " + TypeName(v));
      return false;
    }
    out.emplace_back(value, s->get());
  }
  return true;
}

void Section::Finish(const std::function<std::string(std::string_view)>& hint) {
  if (table_ == nullptr || !errors_.ok()) return;
  // Report the unknown key that comes first in the file.
  const toml::key* first = nullptr;
  for (const auto& [k, v] : *table_) {
    if (seen_.count(k.str()) != 0) continue;
    if (first == nullptr || k.source().begin < first->source().begin) first = &k;
  }
  if (first == nullptr) return;
  const std::string_view name = first->str();
  std::string reason = hint ? hint(name) : std::string();
  if (reason.empty()) {
    reason = "unknown key";
    std::string best;
    size_t best_d = 3;
    for (const auto& known : seen_) {
      size_t d = EditDistance(name, known);
      if (d < best_d) {
        best_d = d;
        best = known;
      }
    }
    if (!best.empty()) reason += " (did you mean '" + best + "'?)";
  }
  errors_.Fail(Key(name), reason);
}

const toml::table* SubTable(Errors& errors, const toml::table& parent, std::string_view key,
                            std::string_view prefix) {
  const toml::node* n = parent.get(key);
  if (n == nullptr) return nullptr;
  const auto* t = n->as_table();
  if (t == nullptr) errors.Fail(JoinKey(prefix, key), "expected a table, got " + TypeName(*n));
  return t;
}

std::optional<toml::table> ParseToml(std::string_view text, const std::string& file,
                                     Status& error) {
  // toml++ recurses over table headers and dotted keys without a bound: refused first.
  if (auto line = FindTooDeepTomlLine(text)) {
    error =
        Status::Error(kCode, file + ":" + std::to_string(*line) + ": nests deeper than 32 levels");
    return std::nullopt;
  }
  try {
    return toml::parse(text, file);
  } catch (const toml::parse_error& e) {
    const auto& pos = e.source().begin;
    error =
        Status::Error(kCode, file + ":" + std::to_string(pos.line) + ":" +
                                 std::to_string(pos.column) + ": " + std::string(e.description()));
  } catch (const std::exception& e) {
    error = Status::Error(kCode, file + ": cannot parse: " + e.what());
  }
  return std::nullopt;
}

Result<std::string> ReadConfigFile(const std::string& path, size_t max_bytes) {
  auto text = ReadFileCapped(path, max_bytes);
  if (!text.ok()) return Status::Error(kCode, text.status().message());
  return text;
}

void RequireRegularFile(Errors& errors, const std::string& key, const std::string& file) {
  if (file.empty() || !errors.ok()) return;
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return;
  if (!S_ISREG(st.st_mode)) errors.Fail(key, file + ": not a regular file");
}

bool ParseListen(std::string_view s, HostPort& out, std::string& why) {
  std::string_view host, port;
  if (!s.empty() && s[0] == '[') {
    size_t close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') {
      why = Quote(s) + " is not host:port (e.g. 127.0.0.1:8787 or [::1]:8787)";
      return false;
    }
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
    if (!IsIpv6(host)) {
      why = Quote(s) + ": " + Quote(host) + " is not an IPv6 address";
      return false;
    }
  } else {
    size_t colon = s.rfind(':');
    if (colon == std::string_view::npos) {
      why = Quote(s) + " is not host:port (e.g. 127.0.0.1:8787)";
      return false;
    }
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      why = Quote(s) + ": write an IPv6 address in brackets, e.g. [::1]:8787";
      return false;
    }
    if (!IsIpv4(host) && !EqualsIgnoreCase(host, "localhost")) {
      why = Quote(s) + ": " + Quote(host) + " is not an IP address or localhost";
      return false;
    }
  }
  if (!ParsePort(port, out.port, why)) {
    why = Quote(s) + ": " + why;
    return false;
  }
  out.host = std::string(host);
  return true;
}

bool IsLoopbackHost(std::string_view host) {
  if (EqualsIgnoreCase(host, "localhost")) return true;
  unsigned char b[16];
  if (IsIpv4(host, b)) return b[0] == 127;
  if (IsIpv6(host, b)) {
    static const unsigned char kLoop[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return std::memcmp(b, kLoop, 16) == 0 || (std::memcmp(b, kMapped, 12) == 0 && b[12] == 127);
  }
  return false;
}

bool ParseHttpUrl(std::string_view s, Url& out, std::string& why) {
  std::string_view rest;
  if (s.size() >= 8 && EqualsIgnoreCase(s.substr(0, 8), "https://")) {
    out.tls = true;
    rest = s.substr(8);
  } else if (s.size() >= 7 && EqualsIgnoreCase(s.substr(0, 7), "http://")) {
    out.tls = false;
    rest = s.substr(7);
  } else {
    why = Quote(s) + " is not an https:// URL";
    return false;
  }
  for (unsigned char c : rest) {
    if (c <= 0x20 || c == 0x7f || c == '?' || c == '#' || c == '@' || c == '\\') {
      why = Quote(s) +
            ": a URL here is scheme://host[:port][/path], without spaces, user info, query or "
            "fragment";
      return false;
    }
  }
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  std::string_view host, port;
  if (!authority.empty() && authority[0] == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      why = Quote(s) + ": unterminated IPv6 address";
      return false;
    }
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty() && after[0] != ':') {
      why = Quote(s) + ": unexpected text after the host";
      return false;
    }
    if (!after.empty()) port = after.substr(1);
    if (!IsIpv6(host)) {
      why = Quote(s) + ": " + Quote(host) + " is not an IPv6 address";
      return false;
    }
    if (!after.empty() && port.empty()) port = "-";  // "host:" with nothing after
  } else {
    size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos)
      port = authority.substr(colon + 1).empty() ? "-" : authority.substr(colon + 1);
    const bool host_ok = !host.empty() && host.size() <= 253 && host.front() != '.' &&
                         host.front() != '-' && std::all_of(host.begin(), host.end(), [](char c) {
                           return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                                  (c >= '0' && c <= '9') || c == '.' || c == '-';
                         });
    if (!host_ok) {
      why = Quote(s) + ": " + Quote(host) + " is not a host name or address";
      return false;
    }
  }
  out.port = out.tls ? 443 : 80;
  if (!port.empty() && !ParsePort(port == "-" ? std::string_view() : port, out.port, why)) {
    why = Quote(s) + ": " + why;
    return false;
  }
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  out.host = std::string(host);
  out.base_path = std::string(path);
  return true;
}

bool IsIdentifier(std::string_view s) { return !s.empty() && s.size() <= 32 && IsBareKey(s); }

bool IsCardPrefix(std::string_view s) {
  return !s.empty() && s.size() <= 8 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace loyalty::config::internal
