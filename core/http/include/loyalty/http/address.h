// Host and port text as configuration files and command lines spell it. Pure functions,
// safe from any thread, never throw; malformed input is a `bad_request` Status.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "loyalty/base/status.h"

namespace loyalty::http {

// "127.0.0.1:8787", "[::1]:8787", "localhost:8787" → {host, port}. The host of a bracketed
// form must be an IPv6 literal and is returned without brackets; an unbracketed host is an
// IPv4 literal or a DNS name (letters, digits, '-', '.', '_'; at most 253 characters); an
// unbracketed IPv6 literal is refused as ambiguous. The port is required: decimal digits,
// 0..65535 (0 asks a listener for an ephemeral port).
Result<std::pair<std::string, uint16_t>> ParseHostPort(std::string_view text);

// True for "localhost" (any case, with or without a trailing dot), any IPv4 address in
// 127.0.0.0/8, "::1" (bracketed or not) and IPv4-mapped loopback ("::ffff:127.0.0.1").
// Everything else, including names that merely resolve to loopback, is false: this decides
// what a listener may bind without an explicit opt-in, so it does not consult DNS.
bool IsLoopbackAddress(std::string_view host);

}  // namespace loyalty::http
