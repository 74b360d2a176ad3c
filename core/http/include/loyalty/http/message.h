// HTTP messages as handlers see them, and the parsers of what a request target carries.
//
// Request and Response are plain values (copyable, thread-compatible). The parsers are pure
// functions of their input, safe from any thread, and never throw: malformed input is a
// `bad_request` Status.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "loyalty/base/status.h"

namespace loyalty::http {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct Request {
  std::string method;                        // as sent, e.g. "GET", "POST"
  std::string target;                        // the request target as sent, e.g. "/v1/scans?after=3"
  std::string path;                          // percent-decoded path, without the query
  std::map<std::string, std::string> query;  // percent-decoded; for a repeated key the first wins
  std::string body;
  std::string authorization;   // the Authorization header, empty if absent
  HeaderList headers;          // every header as received, in order, names as sent
  std::string remote_address;  // peer IP address, e.g. "127.0.0.1" or "::1"
  uint16_t remote_port = 0;
  bool tls = false;  // received over TLS
  // The subject CN of the client certificate, only when one was presented AND verified
  // against the server's client CA (ServerOptions::tls); empty otherwise. A certificate
  // whose subject has no CN, more than one CN, or a CN with control characters gives "".
  std::string peer_cn;
  // Why a presented client certificate was not accepted (OpenSSL's verify message, e.g.
  // "certificate has expired"), for the caller's logs; empty when verified or none sent.
  std::string peer_cert_error;

  // The value of the first header named `name` (case-insensitive), empty if absent.
  std::string_view Header(std::string_view name) const;
  bool HasHeader(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  // Extra headers. Content-Length and Transfer-Encoding are the server's to set and are
  // ignored here; `Connection: close` makes the server close the connection after this
  // response.
  HeaderList headers;
};

// True when `authorization` (the Authorization header) is the Bearer scheme, named in any
// case (RFC 9110: schemes are case-insensitive), one space, then exactly `token`, compared
// in constant time. An empty token never matches.
bool BearerMatches(std::string_view authorization, std::string_view token);

// The check of routes that act for a terminal over mutual TLS: ok when the request came
// over TLS with a verified client certificate whose CN is exactly `terminal_id`
// (byte-for-byte, case-sensitive); otherwise a `forbidden` Status whose message says which
// (no certificate, not verified and why, or the CN it carries). Answer it with 403.
Status CheckPeerCn(const Request& request, std::string_view terminal_id);

// Percent-encodes everything but RFC 3986's unreserved characters (A-Z a-z 0-9 - . _ ~),
// with upper-case hex: safe in a path segment and in a query key or value.
std::string PercentEncode(std::string_view in);

// Decodes %XX escapes (either hex case); with `plus_is_space` a '+' is a space (query
// strings, application/x-www-form-urlencoded). A '%' not followed by two hex digits is an
// error. The result may contain any byte, including NUL: callers decide what they accept.
Result<std::string> PercentDecode(std::string_view in, bool plus_is_space);

// Parses a query string (without the leading '?'): pairs separated by '&', key and value
// separated by the first '='. A key without '=' has the empty value; empty pieces ("a=1&&b")
// are skipped; for a repeated key the first value wins. Keys and values are percent-decoded
// with '+' as a space.
Result<std::map<std::string, std::string>> ParseQuery(std::string_view query);

struct Target {
  std::string path;                          // percent-decoded ('+' stays '+'), starts with '/'
  std::string raw_query;                     // what follows the first '?', undecoded
  std::map<std::string, std::string> query;  // ParseQuery(raw_query)
};

// Parses a request target: origin form ("/a/b?x=1"), absolute form
// ("http://host:port/a/b?x=1", whose path defaults to "/") or "*" (path "*"). A fragment
// ('#...') is not allowed in a request target. A path that decodes to a NUL byte, a
// control character or an invalid escape is an error.
Result<Target> ParseTarget(std::string_view target);

}  // namespace loyalty::http
