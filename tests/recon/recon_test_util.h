// Shared helpers of the reconciliation tests: seeded random sets and a loopback exchange.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "loyalty/recon/protocol.h"
#include "loyalty/recon/recon.h"

namespace loyalty::recon::testing {

// A time-ordered 16-byte id like NewEntryId's: 48-bit ms, then 80 random bits.
inline std::string RandomId(std::mt19937_64& rng, uint64_t ms) {
  std::string id(kIdSize, '\0');
  for (int i = 0; i < 6; ++i) id[i] = static_cast<char>(ms >> (8 * (5 - i)));
  uint64_t a = rng(), b = rng();
  std::memcpy(id.data() + 6, &a, 8);
  std::memcpy(id.data() + 14, &b, 2);
  return id;
}

inline Digest RandomDigest(std::mt19937_64& rng) {
  Digest d;
  for (auto& b : d) b = static_cast<uint8_t>(rng());
  return d;
}

// Two sets differing at random: `common` shared items, `only_a`/`only_b` on one side,
// `mismatched` ids on both sides with different contents.
struct Scenario {
  std::vector<Item> common, only_a, only_b, mismatch_a, mismatch_b;

  std::vector<std::string> Ids(const std::vector<Item>& v) const {
    std::vector<std::string> out;
    for (const Item& i : v) out.push_back(i.id);
    std::sort(out.begin(), out.end());
    return out;
  }
};

inline Scenario MakeScenario(uint64_t seed, size_t common, size_t only_a, size_t only_b,
                             size_t mismatched) {
  std::mt19937_64 rng(seed);
  Scenario s;
  uint64_t ms = 1'700'000'000'000ULL;
  auto fresh = [&] {
    ms += 1 + rng() % 5000;
    return Item{RandomId(rng, ms), RandomDigest(rng)};
  };
  for (size_t i = 0; i < common; ++i) s.common.push_back(fresh());
  for (size_t i = 0; i < only_a; ++i) s.only_a.push_back(fresh());
  for (size_t i = 0; i < only_b; ++i) s.only_b.push_back(fresh());
  for (size_t i = 0; i < mismatched; ++i) {
    Item a = fresh();
    Item b{a.id, RandomDigest(rng)};
    s.mismatch_a.push_back(a);
    s.mismatch_b.push_back(b);
  }
  return s;
}

struct Outcome {
  std::vector<std::string> have, need, mismatched;
  int round_trips = 0;
  uint64_t bytes = 0;
  bool listed = false;
};

// Runs a whole exchange in memory; fails the test on any protocol error.
inline Outcome Reconcile(const FingerprintStore& initiator_store,
                         const FingerprintStore& responder_store) {
  Outcome o;
  Initiator ini(initiator_store);
  Responder resp(responder_store);
  auto msg = ini.Start();
  EXPECT_TRUE(msg.ok()) << msg.status().ToString();
  if (!msg.ok()) return o;
  std::optional<std::string> next = *msg;
  for (int guard = 0; next && guard < 1000; ++guard) {
    auto reply = resp.Reply(*next);
    EXPECT_TRUE(reply.ok()) << reply.status().ToString();
    if (!reply.ok()) return o;
    auto n = ini.Next(*reply, &o.have, &o.need, &o.mismatched);
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    if (!n.ok()) return o;
    next = *n;
  }
  EXPECT_FALSE(next.has_value()) << "exchange did not finish";
  o.round_trips = ini.round_trips();
  o.bytes = ini.bytes_sent() + ini.bytes_received();
  o.listed = ini.listed_items();
  return o;
}

// Checks the outcome against the scenario, initiator = side A.
inline void ExpectExact(const Scenario& s, const Outcome& o) {
  EXPECT_EQ(o.have, s.Ids(s.only_a));
  EXPECT_EQ(o.need, s.Ids(s.only_b));
  EXPECT_EQ(o.mismatched, s.Ids(s.mismatch_a));
}

}  // namespace loyalty::recon::testing
