// Private helpers shared by the agent and HQ config parsers: a first-error collector, a
// table reader that checks types and ranges and rejects unknown keys, key and value
// quoting for messages, and path resolution.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "loyalty/base/status.h"

namespace loyalty::config::internal {

inline constexpr ErrorCode kCode = ErrorCode::kConfigInvalid;

// Dotted key paths as messages show them: bare keys as is, others quoted.
std::string JoinKey(std::string_view prefix, std::string_view key);
std::string QuotedKey(std::string_view prefix,
                      std::string_view key);  // always quoted: codes.hq_public_keys."1"
std::string IndexKey(std::string_view prefix, size_t index);  // scanners[2]
// A value from the file for a message: single-quoted, control characters escaped, long
// values shortened.
std::string Quote(std::string_view value);
std::string TypeName(const toml::node& node);  // "a string", "an integer", ...

// The first error wins; later calls are ignored so the parsers can read on unconditionally.
class Errors {
 public:
  explicit Errors(std::string file) : file_(std::move(file)) {}
  void Fail(const std::string& key, const std::string& reason);
  void Warn(const std::string& key, const std::string& what);
  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  const std::string& file() const { return file_; }
  std::vector<std::string>& warnings() { return warnings_; }

 private:
  std::string file_;
  Status status_;
  std::vector<std::string> warnings_;
};

// Resolves relative paths against the folder of the config file.
class PathResolver {
 public:
  explicit PathResolver(const std::string& config_path);
  std::string Resolve(const std::string& p) const;

 private:
  std::filesystem::path dir_;
};

// Reads one TOML table. Every accessor marks its key as known; Finish() reports the first
// key that no accessor asked for.
class Section {
 public:
  // `table` may be null (the section is absent): every key then keeps its default.
  Section(Errors& errors, const toml::table* table, std::string prefix);

  std::string Key(std::string_view key) const { return JoinKey(prefix_, key); }
  const std::string& prefix() const { return prefix_; }
  Errors& errors() { return errors_; }

  bool Has(std::string_view key);               // marks the key known
  const toml::node* Get(std::string_view key);  // marks the key known; null when absent

  // Optional string: leaves `out` alone when absent. allow_empty=false rejects "".
  // Control characters are refused unless allow_control (scanner prefixes such as STX).
  bool String(std::string_view key, std::string& out, bool allow_empty = false,
              bool allow_control = false);
  bool OneOf(std::string_view key, std::string& out,
             std::initializer_list<std::string_view> allowed);
  bool Bool(std::string_view key, bool& out);
  bool Int(std::string_view key, int64_t& out, int64_t lo, int64_t hi);
  template <typename T>
  bool Int(std::string_view key, T& out, int64_t lo, int64_t hi) {
    int64_t v = static_cast<int64_t>(out);
    if (!Int(key, v, lo, hi)) return false;
    out = static_cast<T>(v);
    return true;
  }
  // A table of key id ("0".."255") -> string.
  bool IdMap(std::string_view key, std::vector<std::pair<int, std::string>>& out);

  // Keys in the table that no accessor asked for are unknown. `hint(key)` may explain why
  // a known-elsewhere key is not allowed here (e.g. "not used by kind 'fifo'").
  void Finish(const std::function<std::string(std::string_view key)>& hint = {});

 private:
  Errors& errors_;
  const toml::table* table_;
  std::string prefix_;
  std::set<std::string, std::less<>> seen_;
};

// A sub-table of `parent` (null when absent); a non-table value is an error.
const toml::table* SubTable(Errors& errors, const toml::table& parent, std::string_view key,
                            std::string_view prefix);

// Parses TOML text, reporting a syntax error as "<file>:<line>:<column>: <what>".
std::optional<toml::table> ParseToml(std::string_view text, const std::string& file, Status& error);

// Reads a whole file of at most max_bytes (ReadFileCapped, loyalty/base/file.h); any error
// is config_invalid, "<file>: <reason>".
Result<std::string> ReadConfigFile(const std::string& path, size_t max_bytes);

// A file the config names under `key` that the program opens (reads, or writes as its log
// or database) must be a regular file, judged as ReadFileCapped judges (stat, following
// symbolic links): a fifo there would block the open or the first read for ever (a start
// or --check-config that hangs), and a device or a folder is no such file either. Fails
// "<key>: <file>: not a regular file" when the file exists and is not regular; a path with
// nothing there (a database or log made at start; a missing file its reader reports) or
// that cannot be looked at (its reader says why) passes. Never opens the file.
void RequireRegularFile(Errors& errors, const std::string& key, const std::string& file);

// Host and port as in "127.0.0.1:8787", "[::1]:8787", "localhost:8787".
struct HostPort {
  std::string host;  // without brackets
  uint16_t port = 0;
};
// Error text describes what is wrong (no file/key prefix).
bool ParseListen(std::string_view s, HostPort& out, std::string& why);
bool IsLoopbackHost(std::string_view host);

// "https://host[:port][/path]" taken apart.
struct Url {
  bool tls = true;
  std::string host;
  uint16_t port = 0;
  std::string base_path;
};
bool ParseHttpUrl(std::string_view s, Url& out, std::string& why);

// [A-Za-z0-9_-]{1,32}
bool IsIdentifier(std::string_view s);
// "1".."8 digits" card prefix
bool IsCardPrefix(std::string_view s);

}  // namespace loyalty::config::internal
