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

// The client a connection is counted against for ServerOptions::max_connections_per_address,
// from its remote IP address: an IPv4 address as it is ("192.0.2.7"); an IPv4-mapped IPv6
// address as that IPv4 address ("::ffff:192.0.2.7" → "192.0.2.7"); any other IPv6 address
// by its /64 prefix ("2001:db8:1:2:a:b:c:d" → "2001:db8:1:2::/64"), because one host is
// routinely given a whole /64 and can connect from as many addresses in it as it likes.
// Text that is not an IP address is returned unchanged.
std::string ConnectionLimitKey(std::string_view address);

}  // namespace loyalty::http
