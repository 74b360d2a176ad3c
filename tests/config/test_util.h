// Helpers for the config tests: an agent.toml assembled from sections, and exact-message checks.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "loyalty/config/config.h"

namespace loyalty::config::testing {

inline constexpr char kFile[] = "/etc/loyaltyd/agent.toml";
// The public key of shared/vectors/member-codes.json (also the example file's demo key).
inline constexpr char kDemoKey[] = "ebVWLo_mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ";

struct Parts {
  std::string agent = "terminal_id = \"T01\"\nstore_id = \"S001\"\n";
  std::string api;
  std::string codes = std::string("hq_public_keys = { \"1\" = \"") + kDemoKey + "\" }\n";
  std::string hq, sync, log;
  std::string tail;  // appended last: [[scanners]] blocks, stray keys
};

inline std::string Build(const Parts& p) {
  return "[agent]\n" + p.agent + "\n[api]\n" + p.api + "\n[codes]\n" + p.codes + "\n[hq]\n" + p.hq +
         "\n[sync]\n" + p.sync + "\n[log]\n" + p.log + "\n" + p.tail;
}

inline Result<AgentConfig> Parse(const Parts& p) { return ParseAgentConfig(Build(p), kFile); }

inline AgentConfig MustParse(const Parts& p) {
  auto r = Parse(p);
  EXPECT_TRUE(r.ok()) << r.status().ToString() << "\n--- config ---\n" << Build(p);
  return r.ok() ? *r : AgentConfig{};
}

// The whole message must match: file, dotted key, reason.
#define EXPECT_CONFIG_ERROR(parts, key_and_reason)                                       \
  do {                                                                                   \
    auto r_ = ::loyalty::config::testing::Parse(parts);                                  \
    ASSERT_FALSE(r_.ok()) << "accepted:\n" << ::loyalty::config::testing::Build(parts);  \
    EXPECT_EQ(r_.status().code(), ErrorCode::kConfigInvalid);                            \
    EXPECT_EQ(r_.status().message(),                                                     \
              std::string(::loyalty::config::testing::kFile) + ": " + (key_and_reason)); \
  } while (0)

}  // namespace loyalty::config::testing
