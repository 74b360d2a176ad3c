// HQ's replies as arbitrary bytes, fed to a whole sync run: hello, upload results, changes
// pages, reconciliation messages, fetch and members answers each come from the input, so
// every step's response handling meets malformed, truncated and hostile bodies. The run
// must end (ok or failed) without crashing, and never ask the ledger to apply something
// it could not parse.
//
// Input: a sequence of replies, each `status byte, 2-byte length, body`; the status byte
// picks 200 (mostly), 403, 500 or 400. When the input runs out the transport fails.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "loyalty/base/clock.h"
#include "loyalty/recon/recon.h"
#include "loyalty/sync/run.h"

namespace {

using namespace loyalty;

class ScriptedTransport final : public sync::Transport {
 public:
  explicit ScriptedTransport(std::string_view in) : in_(in) {}
  Result<sync::Exchange> Send(std::string_view, std::string_view, std::string_view,
                              std::string_view, int) override {
    if (in_.size() < 3) return Status::Error(ErrorCode::kUnavailable, "input exhausted");
    uint8_t s = static_cast<uint8_t>(in_[0]);
    size_t len =
        static_cast<uint8_t>(in_[1]) | (static_cast<size_t>(static_cast<uint8_t>(in_[2])) << 8);
    in_.remove_prefix(3);
    len = std::min(len, in_.size());
    sync::Exchange e;
    e.status = s < 200 ? 200 : s < 220 ? 403 : s < 240 ? 500 : 400;
    e.content_type = "application/json";
    e.body = std::string(in_.substr(0, len));
    in_.remove_prefix(len);
    return e;
  }

 private:
  std::string_view in_;
};

// A terminal with a few entries and members, in memory; writes are accepted and ignored.
class FakeLedger final : public sync::LocalLedger {
 public:
  FakeLedger() {
    for (int i = 0; i < 3; ++i) {
      recon::Item item;
      item.id = std::string(16, static_cast<char>('a' + i));
      item.hash.fill(static_cast<uint8_t>(i));
      (void)entries_.Add(item);
      (void)balances_.Add(recon::MemberBalanceItem(std::to_string(1000 + i), 100 * i, 0));
    }
  }
  class View final : public ReconView {
   public:
    View(const recon::MemoryStore& e, const recon::MemoryStore& b) : e_(e), b_(b) {}
    const recon::FingerprintStore& entries() override { return e_; }
    const recon::FingerprintStore& balances() override { return b_; }

   private:
    const recon::MemoryStore& e_;
    const recon::MemoryStore& b_;
  };

  Result<sync::HelloRequest> Hello() override {
    sync::HelloRequest h;
    h.store_id = "S001";
    h.agent_version = "fuzz";
    return h;
  }
  Result<std::string> Cursor() override { return std::string(); }
  Result<sync::UploadBatch> NextUploadBatch(int64_t, size_t) override {
    return sync::UploadBatch{};
  }
  Result<sync::UploadRequest> EntriesForUpload(const std::vector<std::string>&) override {
    return sync::UploadRequest{};
  }
  Result<std::unique_ptr<ReconView>> OpenReconView() override {
    return std::unique_ptr<ReconView>(std::make_unique<View>(entries_, balances_));
  }
  Result<std::vector<uint64_t>> MembersForKeys(const std::vector<std::string>& keys) override {
    return std::vector<uint64_t>(keys.size(), 1000);
  }
  Status Acknowledge(const sync::UploadRequest&, const sync::UploadResponse&) override {
    return Status::Ok();
  }
  Status ApplyChanges(const sync::ChangesResponse&) override { return Status::Ok(); }
  Result<int64_t> Restore(const sync::FetchResponse& f) override {
    return static_cast<int64_t>(f.entries.size());
  }
  Result<int64_t> RepairBalances(const sync::MembersResponse& m) override {
    return static_cast<int64_t>(m.members.size());
  }
  Status RecordRun(const sync::RunRecord&) override { return Status::Ok(); }
  Status Finish() override { return Status::Ok(); }

 private:
  recon::MemoryStore entries_, balances_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  FakeLedger ledger;
  ScriptedTransport transport(in);
  FakeClock clock(1773547200000);
  sync::RunOptions o;
  o.terminal_id = "T01";
  o.max_attempts = 2;
  o.jitter_seed = 1;
  o.sleep = [&clock](int64_t ms) { clock.advance_ms(ms); };
  sync::SyncRun run(ledger, transport, clock, o);
  auto rec = run.Execute("run-1");
  if (rec.result != "ok" && rec.result != "failed") __builtin_trap();
  return 0;
}
