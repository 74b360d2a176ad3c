// The pure parts of loyaltyctl: CSV quoting, the --since argument, and the human-readable
// renderings of the POS API's answers. No I/O; every function is thread-safe.
//
// The renderers take the daemon's JSON as it arrived and never throw: a missing field or
// one of an unexpected type is shown as "-" (the daemon may be older or newer than this
// program).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "loyalty/base/status.h"
#include "loyalty/base/timezone.h"

namespace loyalty::ctl {

// One CSV field as RFC 4180 wants it: quoted (with quotes doubled) when it contains a comma,
// a double quote, CR or LF; as is otherwise. Bytes are passed through (the ledger holds UTF-8).
std::string CsvField(std::string_view v);
// The fields joined by ',' and ended by CRLF.
std::string CsvRow(const std::vector<std::string>& fields);

// The --since argument, as unix milliseconds:
//   RFC 3339 ("2026-11-22T06:12:26Z", "2026-11-22T14:12:26+08:00"; a fraction is dropped)
//   YYYY-MM-DD: midnight at the start of that day in the store's time zone `tz`.
// Anything else, or a date that does not exist (2026-02-29), is a "bad_request" Status
// whose message says what is accepted.
Result<int64_t> ParseSince(std::string_view text, const TimeZone& tz);

// RFC 3339 UTC with milliseconds: "2026-11-22T06:12:26.042Z".
std::string FormatTimeMs(int64_t unix_ms);
// Integer cents as a decimal amount: 20380 -> "203.80", -5 -> "-0.05". No floating point.
std::string FormatCents(int64_t cents);

// GET /v1/health as a few labelled lines: terminal, ledger, scanners, sync, clock, rules.
std::string FormatHealth(const nlohmann::json& health);
// A <Member> (with recent_entries when present) as labelled lines.
std::string FormatMember(const nlohmann::json& member);
// POST /v1/identify's answer: the identification, then the member.
std::string FormatIdentify(const nlohmann::json& identify);
// One entry of GET /v1/sync's last_runs, as one line without a line end:
//   "sync run r-1 ok: uploaded 3, downloaded 0, repaired 0, 2 round trips, 1204 bytes sent, 880
//   received"
std::string FormatSyncRun(const nlohmann::json& run);
// The one-line reason of a non-2xx answer: "<code>: <message> (HTTP <status>)"; falls back
// to the raw body (cut to 200 bytes) when it is not the contract's error shape.
std::string FormatApiError(int http_status, const nlohmann::json& body, std::string_view raw);

// Percent-encodes everything but RFC 3986 unreserved characters, for one path segment.
std::string EncodePathSegment(std::string_view s);

}  // namespace loyalty::ctl
