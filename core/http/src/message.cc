#include "loyalty/http/message.h"

#include <openssl/crypto.h>
#include <nlohmann/json.hpp>

namespace loyalty::http {
namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    unsigned char x = static_cast<unsigned char>(a[i]);
    unsigned char y = static_cast<unsigned char>(b[i]);
    if (x >= 'A' && x <= 'Z') x = static_cast<unsigned char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<unsigned char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Status BadRequest(std::string message) {
  return Status::Error(ErrorCode::kBadRequest, std::move(message));
}

}  // namespace

std::string_view Request::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (EqualsIgnoreCase(k, name)) return v;
  }
  return {};
}

bool Request::HasHeader(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (EqualsIgnoreCase(k, name)) return true;
  }
  return false;
}

bool BearerMatches(std::string_view authorization, std::string_view token) {
  static constexpr std::string_view kScheme = "bearer ";
  if (token.empty() || authorization.size() != kScheme.size() + token.size()) return false;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    char c = authorization[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kScheme[i]) return false;
  }
  return CRYPTO_memcmp(authorization.data() + kScheme.size(), token.data(), token.size()) == 0;
}

Status CheckPeerCn(const Request& request, std::string_view terminal_id) {
  if (!request.tls)
    return Status::Error(ErrorCode::kForbidden, "a client certificate over TLS is required");
  if (!request.peer_cert_error.empty()) {
    return Status::Error(ErrorCode::kForbidden,
                         "client certificate not accepted: " + request.peer_cert_error);
  }
  if (request.peer_cn.empty())
    return Status::Error(ErrorCode::kForbidden, "a verified client certificate is required");
  if (terminal_id.empty() || request.peer_cn != terminal_id) {
    return Status::Error(ErrorCode::kForbidden, "client certificate is for " + request.peer_cn +
                                                    ", not for " + std::string(terminal_id));
  }
  return Status::Ok();
}

std::string PercentEncode(std::string_view in) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(in.size());
  for (unsigned char c : in) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

Result<std::string> PercentDecode(std::string_view in, bool plus_is_space) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return BadRequest("truncated percent escape");
      int hi = HexValue(in[i + 1]);
      int lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return BadRequest("invalid percent escape");
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

Result<std::map<std::string, std::string>> ParseQuery(std::string_view query) {
  std::map<std::string, std::string> out;
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view piece = query.substr(pos, amp - pos);
    pos = amp + 1;
    if (piece.empty()) continue;
    size_t eq = piece.find('=');
    std::string_view raw_key = piece.substr(0, eq);
    std::string_view raw_value =
        eq == std::string_view::npos ? std::string_view() : piece.substr(eq + 1);
    auto key = PercentDecode(raw_key, true);
    if (!key.ok()) return BadRequest("query key: " + key.status().message());
    auto value = PercentDecode(raw_value, true);
    if (!value.ok())
      return BadRequest("query value of '" + *key + "': " + value.status().message());
    out.emplace(std::move(*key), std::move(*value));  // emplace keeps the first
  }
  return out;
}

Result<Target> ParseTarget(std::string_view target) {
  if (target.empty()) return BadRequest("empty request target");
  if (target.find('#') != std::string_view::npos) return BadRequest("fragment in request target");
  Target t;
  if (target == "*") {
    t.path = "*";
    return t;
  }
  std::string_view rest = target;
  if (rest.front() != '/') {
    // Absolute form: a server must accept it (RFC 9112 3.2.2). The authority is dropped:
    // this server answers for one host, whatever the client calls it.
    size_t scheme_end = rest.find("://");
    if (scheme_end == std::string_view::npos) return BadRequest("request target is not a path");
    std::string_view scheme = rest.substr(0, scheme_end);
    if (!EqualsIgnoreCase(scheme, "http") && !EqualsIgnoreCase(scheme, "https")) {
      return BadRequest("request target has an unsupported scheme");
    }
    rest.remove_prefix(scheme_end + 3);
    size_t path_start = rest.find_first_of("/?");
    if (path_start == 0) return BadRequest("request target has no host");
    rest = path_start == std::string_view::npos ? std::string_view() : rest.substr(path_start);
  }
  size_t qmark = rest.find('?');
  std::string_view raw_path = rest.substr(0, qmark);
  if (qmark != std::string_view::npos) t.raw_query = std::string(rest.substr(qmark + 1));
  if (raw_path.empty()) raw_path = "/";
  auto path = PercentDecode(raw_path, false);
  if (!path.ok()) return BadRequest("path: " + path.status().message());
  for (char c : *path) {
    unsigned char u = static_cast<unsigned char>(c);
    // A decoded control character would reach routes and logs; no route needs one.
    if (u < 0x20 || u == 0x7f) return BadRequest("control character in path");
  }
  t.path = std::move(*path);
  auto query = ParseQuery(t.raw_query);
  if (!query.ok()) return query.status();
  t.query = std::move(*query);
  return t;
}

}  // namespace loyalty::http
