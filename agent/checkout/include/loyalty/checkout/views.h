// The POS API's JSON for each checkout outcome (pos-api.md), written in one place.
//
// Every body is the compact form with keys in byte order — what nlohmann's dump() prints of
// the same document — so a body written here and one dumped from a document are the same
// text. The quote and commit bodies are written directly (loyalty/base/json_writer.h): they
// are on the lane's critical path.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "loyalty/checkout/outcomes.h"

namespace loyalty::checkout {

std::string ViewJson(const MemberView& m);
std::string ViewJson(const IdentifyOutcome& o);
std::string ViewJson(const QuoteOutcome& o);
std::string ViewJson(const MemberDetail& o);
std::string ViewJson(const CheckoutRecord& o);
inline const std::string& ViewJson(const CommitOutcome& o) { return o.view; }
inline const std::string& ViewJson(const RefundOutcome& o) { return o.view; }

// What a commit adds to its quote: the commit body of pos-api.md.
struct CommitDetails {
  std::optional<int64_t> balance_after;
  int64_t committed_at_s = 0;
  std::vector<std::string> entries;
  std::vector<std::string> receipt_lines;
  // The receipt's return token (docs/pos-api.md, "Returns anywhere"); nullopt: none (no
  // certified receipt key yet, or more lines than a token carries).
  std::optional<std::string> return_token;
};
std::string CommitViewJson(const QuoteOutcome& priced, const CommitDetails& d);

struct RefundDetails {
  std::string refund_id, checkout_id;
  int64_t refund_cents = 0, points_clawed_back = 0, points_restored = 0;
  std::optional<int64_t> balance_after;
  std::vector<std::string> entries;
  std::string sold_at;  // another terminal's sale: its terminal ("" for this terminal's)
};
std::string RefundViewJson(const RefundDetails& d);

}  // namespace loyalty::checkout
