// What loyalty-hq's sources must keep to, read as text, so that a path no test runs cannot
// escape it: every store transaction of the service is the timed one
// (loyalty_hq_store_transaction_duration_seconds).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <regex>
#include <string>

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
