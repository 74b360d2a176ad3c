// The writer thread checkpoints the WAL when its queue runs empty, so that the work never
// lands inside a job (a checkout's commit).
#include "loyalty/checkout/writer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <thread>

#include "loyalty/base/ids.h"

namespace loyalty::checkout {
namespace {

TEST(LedgerWriterTest, CheckpointsWhenItsQueueRunsEmpty) {
  auto dir = std::filesystem::temp_directory_path() / ("writer_test_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  {
    auto l = ledger::Ledger::Open((dir / "l.db").string(), ledger::Ledger::Mode::kWriter, "T01");
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    (*l)->UseIdleCheckpoints(/*idle_pages=*/8, /*backstop_pages=*/100000);
    LedgerWriter writer(std::move(*l));
    for (int i = 0; i < 50; ++i) {
      ASSERT_TRUE(writer.Post([i](ledger::Ledger& w) {
        ASSERT_TRUE(w.Begin().ok());
        ledger::MemberRow m;
        m.member_id = static_cast<uint64_t>(i) * 7919 + 1;
        ASSERT_TRUE(w.UpsertMember(m).ok());
        ASSERT_TRUE(w.Commit().ok());
      }));
    }
    // A job that finds a checkpoint done: the queue ran empty after some job before it.
    int64_t seen = 0;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (seen == 0 && std::chrono::steady_clock::now() < deadline) {
      std::promise<int64_t> p;
      auto f = p.get_future();
      ASSERT_TRUE(writer.Post([&p](ledger::Ledger& w) { p.set_value(w.idle_checkpoints()); }));
      seen = f.get();
      if (seen == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    EXPECT_GT(seen, 0);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace loyalty::checkout
