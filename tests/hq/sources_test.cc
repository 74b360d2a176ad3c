// What loyalty-hq's sources must keep to, read as text, so that a path no test runs cannot
// escape it: every event they log (main.cc's Log, the service's Report) is in the event
// catalogue at the level they log it, the catalogue lists nothing they never log, and
// docs/operations.md lists the catalogue; every store transaction of the service is the
// timed one (loyalty_hq_store_transaction_duration_seconds).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <regex>
#include <set>
#include <string>

#include "loyalty/hq/events.h"
#include "support/event_catalogue.h"

namespace loyalty::hq {
namespace {

const std::filesystem::path kRoot = std::filesystem::path(LOYALTY_FIXTURES_DIR) / ".." / "..";

// hq/src's files by name.
std::map<std::string, std::string> Sources() {
  std::map<std::string, std::string> out;
  for (const auto& f : std::filesystem::directory_iterator(kRoot / "hq" / "src")) {
    std::ifstream in(f.path());
    out[f.path().filename().string()] = std::string(std::istreambuf_iterator<char>(in), {});
  }
  return out;
}

TEST(HqEventCatalogue, DocsListEveryEventAndNothingElse) {
  loyalty::testing::ExpectDocsListCatalogue((kRoot / "docs" / "operations.md").string(),
                                            "### loyalty-hq's event catalogue", kHqEventCatalogue,
                                            "hq/include/loyalty/hq/events.h");
}

TEST(HqEventCatalogue, EveryEventTheSourcesLogIsCataloguedAtItsLevel) {
  const std::regex log(R"re(\bLog\(\s*"(\w+)"\s*,\s*"(\w+)")re");
  const std::regex report(R"re(\bReport\(\s*"(\w+)")re");
  std::set<std::string> logged;
  for (const auto& [file, text] : Sources()) {
    for (std::sregex_iterator it(text.begin(), text.end(), log), end; it != end; ++it) {
      const std::string level = (*it)[1], event = (*it)[2];
      logged.insert(event);
      const EventInfo* e = FindHqEvent(event);
      if (e == nullptr) {
        ADD_FAILURE() << file << " logs " << event << ", which loyalty/hq/events.h lacks";
        continue;
      }
      EXPECT_EQ(e->level, level) << file << " logs " << event << " at " << level;
    }
    for (std::sregex_iterator it(text.begin(), text.end(), report), end; it != end; ++it) {
      const std::string event = (*it)[1];
      logged.insert(event);
      EXPECT_NE(FindHqEvent(event), nullptr)
          << file << " reports " << event << ", which loyalty/hq/events.h lacks";
    }
  }
  for (const auto& e : kHqEventCatalogue)
    EXPECT_TRUE(logged.count(std::string(e.name))) << e.name << " is catalogued but never logged";
}

TEST(HqStoreTransactions, EveryOneIsTimed) {
  const std::regex direct(R"(\bstore\.Transaction\()");
  for (const auto& [file, text] : Sources()) {
    auto n = std::distance(std::sregex_iterator(text.begin(), text.end(), direct),
                           std::sregex_iterator());
    // Impl::Transact's own call, and no other: the rest call Transact (or Write).
    EXPECT_EQ(n, file == "write_cache.cc" ? 1 : 0)
        << file << " calls store.Transaction; call Transact so the transaction is timed";
  }
}

}  // namespace
}  // namespace loyalty::hq
