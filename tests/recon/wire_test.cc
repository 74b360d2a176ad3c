// Malformed, truncated and out-of-range messages: always a clean bad_request, never a crash.
#include <gtest/gtest.h>

#include <random>

#include "loyalty/base/encoding.h"
#include "loyalty/recon/protocol.h"
#include "recon_test_util.h"

namespace loyalty::recon {
namespace {

using testing::MakeScenario;

std::string Hex(std::string_view h) { return *HexDecode(h); }

struct Pair {
  MemoryStore a{1024}, b{1024};
  Pair() {
    auto s = MakeScenario(42, 300, 20, 25, 3);
    for (auto* v : {&s.common, &s.only_a, &s.mismatch_a})
      for (auto& i : *v) EXPECT_TRUE(a.Add(i).ok());
    for (auto* v : {&s.common, &s.only_b, &s.mismatch_b})
      for (auto& i : *v) EXPECT_TRUE(b.Add(i).ok());
  }
};

TEST(WireTest, HelloOfEmptySetIsFixed) {
  MemoryStore empty;
  Initiator ini(empty);
  auto hello = ini.Start();
  ASSERT_TRUE(hello.ok());
  // version 1, HELLO, count 0, RootFingerprint(zero symbol).
  EXPECT_EQ(HexEncode(*hello).substr(0, 6), "010100");
  EXPECT_EQ(hello->size(), 3u + 16u);
  Responder r(empty);
  EXPECT_EQ(HexEncode(*r.Reply(*hello)), "0181");
}

TEST(WireTest, ResponderRejectsMalformedRequests) {
  MemoryStore m(1024);
  Responder r(m);
  const std::vector<std::string> bad = {
      "",
      Hex("01"),
      Hex("0201"),                                              // version 2
      Hex("0109"),                                              // unknown type
      Hex("0101"),                                              // HELLO without count
      Hex("010100") + std::string(15, '\0'),                    // short fingerprint
      Hex("010100") + std::string(17, '\0'),                    // trailing byte
      Hex("01018000") + std::string(16, '\0'),                  // non-canonical varint
      Hex("0101ffffffffffffffffff7f") + std::string(16, '\0'),  // varint past 64 bits
      Hex("01020505"),                                          // empty symbol range
      Hex("01020a05"),                                          // reversed range
      Hex("010200818008"),                                      // end past stored symbols
      Hex("0103"),                                              // GET_ITEMS truncated
      Hex("01030200"),                                          // bad has_after flag
      Hex("01030000"),                                          // limit 0
      Hex("0103008180808001"),                                  // limit too large
      Hex("010301") + std::string(10, 'x'),                     // short after-id
  };
  for (const auto& msg : bad) {
    auto reply = r.Reply(msg);
    EXPECT_FALSE(reply.ok()) << HexEncode(msg);
    if (!reply.ok()) {
      EXPECT_EQ(reply.status().code(), ErrorCode::kBadRequest);
    }
  }
  EXPECT_TRUE(r.Reply(Hex("0102000a")).ok());
  EXPECT_TRUE(r.Reply(Hex("01030005")).ok());
}

// Every proper prefix of every valid message is rejected, on both sides; a byte flipped
// anywhere gives an error or a well-formed answer, never a crash.
TEST(WireTest, TruncatedAndCorruptedMessages) {
  Pair p;
  // Record a complete exchange.
  std::vector<std::pair<std::string, std::string>> exchange;  // request, reply
  {
    Initiator ini(p.a);
    Responder resp(p.b);
    std::vector<std::string> h, n, m;
    std::optional<std::string> msg = *ini.Start();
    while (msg) {
      auto reply = resp.Reply(*msg);
      ASSERT_TRUE(reply.ok());
      exchange.emplace_back(*msg, *reply);
      msg = *ini.Next(*reply, &h, &n, &m);
    }
  }
  ASSERT_GE(exchange.size(), 1u);
  Responder resp(p.b);
  for (const auto& [req, rep] : exchange) {
    for (size_t len = 0; len < req.size(); ++len)
      EXPECT_FALSE(resp.Reply(req.substr(0, len)).ok()) << len;
  }
  // Replays the exchange up to step k, then feeds a damaged reply.
  auto run_to = [&](size_t k, Initiator* ini) {
    std::vector<std::string> h, n, m;
    ASSERT_TRUE(ini->Start().ok());
    for (size_t i = 0; i < k; ++i) ASSERT_TRUE(ini->Next(exchange[i].second, &h, &n, &m).ok());
  };
  std::mt19937_64 rng(7);
  for (size_t k = 0; k < exchange.size(); ++k) {
    const std::string& rep = exchange[k].second;
    for (size_t len = 0; len < rep.size(); len += std::max<size_t>(1, rep.size() / 97)) {
      Initiator ini(p.a);
      run_to(k, &ini);
      std::vector<std::string> h, n, m;
      auto r = ini.Next(rep.substr(0, len), &h, &n, &m);
      EXPECT_FALSE(r.ok()) << "step " << k << " len " << len;
      // Once failed, it stays failed.
      EXPECT_FALSE(ini.Next(rep, &h, &n, &m).ok());
    }
    for (int trial = 0; trial < 200; ++trial) {
      std::string bad = rep;
      bad[rng() % bad.size()] ^= static_cast<char>(1 + rng() % 255);
      Initiator ini(p.a);
      run_to(k, &ini);
      std::vector<std::string> h, n, m;
      (void)ini.Next(bad, &h, &n, &m);  // must not crash; either answer is acceptable
    }
  }
}

TEST(WireTest, InitiatorRejectsRepliesOutOfTurn) {
  MemoryStore m;
  Initiator ini(m);
  std::vector<std::string> h, n, mm;
  EXPECT_FALSE(ini.Next(Hex("0181"), &h, &n, &mm).ok());  // before Start
  ASSERT_TRUE(ini.Start().ok());
  EXPECT_FALSE(ini.Start().ok());
  EXPECT_FALSE(Initiator(m).Next(Hex("01830000"), &h, &n, &mm).ok());
  EXPECT_FALSE(ini.Next(Hex("01840000"), &h, &n, &mm).ok());  // ITEMS in reply to HELLO
  Initiator ini2(m);
  ASSERT_TRUE(ini2.Start().ok());
  EXPECT_FALSE(ini2.Next(Hex("018100"), &h, &n, &mm).ok());  // IN_SYNC with a body
  Initiator ini3(m);
  ASSERT_TRUE(ini3.Start().ok());
  auto ok = ini3.Next(Hex("0181"), &h, &n, &mm);
  ASSERT_TRUE(ok.ok());
  EXPECT_FALSE(ok->has_value());
  EXPECT_FALSE(ini3.Next(Hex("0181"), &h, &n, &mm).ok());  // after done
}

}  // namespace
}  // namespace loyalty::recon
