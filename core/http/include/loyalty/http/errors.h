// The one table from an error code to an HTTP status, used by both servers (the agent's POS
// API and HQ), and the error body every non-2xx answer carries (pos-api.md, "Errors").
#pragma once

#include <string_view>

#include "loyalty/base/status.h"
#include "loyalty/http/message.h"

namespace loyalty::http {

// 400 bad_request; 401 unauthorized; 403 forbidden; 404 not_found, checkout_unknown,
// member_unknown; 409 idempotency_conflict, rules_changed, identity_conflict, member_exists;
// 413 body_too_large; 422 the code, member, coupon and refund refusals; 503 unavailable,
// ledger_damaged. Every other code is internal to a process: 500.
int HttpStatusFor(ErrorCode code);

// The code a client sees: the code itself, or "internal" for one that answers 500.
ErrorCode PublicCode(ErrorCode code);

// {"error":{"code":"<code>","message":"<message>"}} with the code's status. Invalid UTF-8
// in the message is replaced, never an exception.
Response JsonError(ErrorCode code, std::string_view message);
// The same for a non-ok Status (an ok one is answered as a 500: a caller's bug).
Response ErrorResponse(const Status& s);

}  // namespace loyalty::http
