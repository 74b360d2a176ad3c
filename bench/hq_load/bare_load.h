// The anchor of the ingest figure: the same rows HQ stores for an upload — each checkout's
// `checkouts` row (its body in HQ's compact form, hq::EncodeCheckout) and each entry's
// `entries` row — loaded straight into PostgreSQL, into a database with HQ's own tables and
// indexes (a copy of a database loyalty-hq created), one transaction per upload batch:
//
//   BEGIN; INSERT INTO checkouts … VALUES (…), (…) … ON CONFLICT DO NOTHING;
//          INSERT INTO entries … VALUES (…), (…) … ON CONFLICT DO NOTHING; COMMIT
//
// from `connections` connections at once, as many as the uploads that ran concurrently.
// None of HQ's work besides: no checks, no lots, no member rows, no reconciliation sets.
//
// kRowAtATime loads the same rows in the same transactions one INSERT (one round trip) per
// row, as HQ's store writes them: what the round trips alone cost, without HQ's checks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cluster.h"
#include "loyalty/sync/messages.h"

namespace loyalty::hqload {

struct BareFigures {
  bool ok = false;
  std::string error;
  int64_t entries = 0, transactions = 0;
  double wall_s = 0;
  double pg_cpu_ms = 0, self_cpu_ms = 0;
  int64_t wal_bytes = -1;      // what pg_stat_wal grew by over the load (-1: not read)
  std::vector<double> txn_ms;  // each transaction, sorted
};

enum class BareMode { kMultiRow, kRowAtATime };

BareFigures BareLoad(const PgServer& server, const std::string& db,
                     const std::vector<std::string>& terminal_ids,
                     const std::vector<sync::UploadRequest>& batches, int connections,
                     BareMode mode = BareMode::kMultiRow);

}  // namespace loyalty::hqload
