// The invariants a chain must hold once every terminal has synced (after failures too),
// checked through HQ's admin API and in its database:
//
//   - every terminal has nothing pending, and HQ answered `created` or `exists` for every
//     entry it sent (no conflict, no refusal);
//   - GET /v1/terminals/{tid}: as many entries as the terminal made, its last seq, chain_ok
//     and no conflicts;
//   - GET /v1/members/{id}: the balance the chain's view holds, for `member_sample` members;
//   - in the database: every uploaded entry stored exactly once (count = distinct ids = what
//     the terminals made), none refused, one checkout row per checkout, every member's
//     balance the sum of its applied entries, the chain's total the view's total, no
//     conflicts;
//   - a reconciliation of balances at rest is in sync with HQ's set (no difference).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "chain.h"
#include "cluster.h"
#include "terminal_run.h"

namespace loyalty::hqload {

struct VerifyResult {
  std::vector<std::string> passed, failed;
  bool ok() const { return failed.empty(); }
};

// query_int: the first column of the first row of `sql` in HQ's database.
VerifyResult VerifyChain(Chain& chain, const HqProcess& hq, const HqEndpoint& endpoint,
                         const std::function<Result<int64_t>(const std::string&)>& query_int,
                         size_t member_sample);

}  // namespace loyalty::hqload
