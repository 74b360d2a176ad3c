#include "bare_load.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "loyalty/base/encoding.h"
#include "loyalty/hq/record_codec.h"
#include "loyalty/model/entry_columns.h"

namespace loyalty::hqload {
namespace {

using Clk = std::chrono::steady_clock;

// Binds through an offset, so that the model's own binder of an entry's columns
// (model::BindEntryFields, parameters 1..10) fills row k of a multi-row INSERT.
struct OffsetBinder {
  pg::Stmt& st;
  int offset;
  template <typename T>
  OffsetBinder& Bind(int i, const T& v) {
    st.Bind(offset + i, v);
    return *this;
  }
};

std::string Rows(size_t rows, int columns) {
  std::string out;
  std::string one = "(";
  for (int c = 0; c < columns; ++c) one += c ? ",?" : "?";
  one += ")";
  for (size_t r = 0; r < rows; ++r) out += (r ? "," : "") + one;
  return out;
}

// Binds checkout c to parameters p+1 .. p+8.
void BindCheckout(pg::Stmt& st, int p, const std::string& terminal_id, const sync::Checkout& c) {
  st.Bind(p + 1, terminal_id).Bind(p + 2, c.checkout_id).Bind(p + 3, c.member_id);
  st.Bind(p + 4, c.committed_at_ms).Bind(p + 5, c.total_due_cents);
  st.Bind(p + 6, c.code_hash).Bind(p + 7, c.coupon_id);
  st.BindBlob(p + 8, hq::EncodeCheckout(c));
}

// Binds entry e to parameters p+1 .. p+14.
void BindEntry(pg::Stmt& st, int p, const sync::Entry& e, int64_t now_ms) {
  OffsetBinder ob{st, p};
  model::BindEntryFields(ob, e);
  st.Bind(p + 11, HexEncode(e.prev_hash)).Bind(p + 12, HexEncode(e.hash));
  st.Bind(p + 13, int64_t{1}).Bind(p + 14, now_ms);
}

const char* kCheckoutInsert =
    "INSERT INTO checkouts (terminal_id, checkout_id, member_id, committed_at_ms, "
    "total_due_cents, code_hash, coupon_id, body) VALUES ";
const char* kEntryInsert =
    "INSERT INTO entries (" LOYALTY_ENTRY_COLUMNS ", applied, received_at_ms) VALUES ";

Status LoadOne(pg::Db& db, const std::string& terminal_id, const sync::UploadRequest& b,
               BareMode mode) {
  if (Status s = db.Exec("BEGIN"); !s.ok()) return s;
  auto fail = [&](Status s) {
    (void)db.Exec("ROLLBACK");
    return s;
  };
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  if (mode == BareMode::kRowAtATime) {
    for (const auto& c : b.checkouts) {
      auto st = db.Prepare(std::string(kCheckoutInsert) + Rows(1, 8) + " ON CONFLICT DO NOTHING");
      if (!st.ok()) return fail(st.status());
      BindCheckout(**st, 0, terminal_id, c);
      if (Status s = (*st)->Run(); !s.ok()) return fail(s);
    }
    for (const auto& e : b.entries) {
      auto st = db.Prepare(std::string(kEntryInsert) + Rows(1, 14) + " ON CONFLICT DO NOTHING");
      if (!st.ok()) return fail(st.status());
      BindEntry(**st, 0, e, now_ms);
      if (Status s = (*st)->Run(); !s.ok()) return fail(s);
    }
  } else {
    if (!b.checkouts.empty()) {
      auto st = db.Prepare(std::string(kCheckoutInsert) + Rows(b.checkouts.size(), 8) +
                           " ON CONFLICT DO NOTHING");
      if (!st.ok()) return fail(st.status());
      int p = 0;
      for (const auto& c : b.checkouts) {
        BindCheckout(**st, p, terminal_id, c);
        p += 8;
      }
      if (Status s = (*st)->Run(); !s.ok()) return fail(s);
    }
    if (!b.entries.empty()) {
      auto st = db.Prepare(std::string(kEntryInsert) + Rows(b.entries.size(), 14) +
                           " ON CONFLICT DO NOTHING");
      if (!st.ok()) return fail(st.status());
      int p = 0;
      for (const auto& e : b.entries) {
        BindEntry(**st, p, e, now_ms);
        p += 14;
      }
      if (Status s = (*st)->Run(); !s.ok()) return fail(s);
    }
  }
  if (Status s = db.Exec("COMMIT"); !s.ok()) return fail(s);
  return Status::Ok();
}

}  // namespace

BareFigures BareLoad(const PgServer& server, const std::string& db,
                     const std::vector<std::string>& terminal_ids,
                     const std::vector<sync::UploadRequest>& batches, int connections,
                     BareMode mode) {
  BareFigures f;
  std::vector<std::unique_ptr<pg::Db>> conns;
  for (int i = 0; i < connections; ++i) {
    auto c = server.Connect(db);
    if (!c.ok()) {
      f.error = c.status().ToString();
      return f;
    }
    conns.push_back(std::move(*c));
  }
  std::atomic<size_t> next{0};
  std::mutex mu;
  std::string error;
  std::vector<double> txn_ms;
  const std::optional<WalFigures> wal0 = ReadWal(server, db);
  const double pg0 = server.CpuMs(), self0 = SelfCpuMs();
  auto t0 = Clk::now();
  std::vector<std::thread> threads;
  for (int i = 0; i < connections; ++i) {
    threads.emplace_back([&, i] {
      std::vector<double> mine;
      for (size_t k = next++; k < batches.size(); k = next++) {
        auto a = Clk::now();
        Status s = LoadOne(*conns[static_cast<size_t>(i)], terminal_ids[k], batches[k], mode);
        mine.push_back(std::chrono::duration<double, std::milli>(Clk::now() - a).count());
        if (!s.ok()) {
          std::lock_guard<std::mutex> lock(mu);
          if (error.empty()) error = s.ToString();
          return;
        }
      }
      std::lock_guard<std::mutex> lock(mu);
      txn_ms.insert(txn_ms.end(), mine.begin(), mine.end());
    });
  }
  for (auto& t : threads) t.join();
  f.wall_s = std::chrono::duration<double>(Clk::now() - t0).count();
  // Measured before the connections close: a backend's CPU counts until it exits.
  f.pg_cpu_ms = server.CpuMs() - pg0;
  f.self_cpu_ms = SelfCpuMs() - self0;
  if (const std::optional<WalFigures> wal1 = ReadWal(server, db); wal0 && wal1)
    f.wal_bytes = WalGrowth(*wal0, *wal1).wal_bytes;
  f.error = error;
  f.ok = error.empty();
  for (const auto& b : batches) f.entries += static_cast<int64_t>(b.entries.size());
  f.transactions = static_cast<int64_t>(batches.size());
  std::sort(txn_ms.begin(), txn_ms.end());
  f.txn_ms = std::move(txn_ms);
  return f;
}

}  // namespace loyalty::hqload
