// Arbitrary bytes as agent.toml and hq.toml: parsing must return a value or an error,
// never crash, hang or leak, and a config it accepts must hold its validated invariants.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "loyalty/config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto agent = loyalty::config::ParseAgentConfig(text, "/etc/loyaltyd/agent.toml");
  if (agent.ok()) {
    if (agent->listen_port == 0 || agent->terminal_id.empty() || agent->hq_public_keys.empty())
      std::abort();
    for (const auto& [id, key] : agent->hq_public_keys) {
      if (id < 0 || id > 255 || key.size() != 32) std::abort();
    }
    for (const auto& s : agent->scanners) {
      if (s.id.empty() || s.debounce_ms < 0 || s.debounce_ms > 10000) std::abort();
    }
  } else if (agent.status().code() != loyalty::ErrorCode::kConfigInvalid) {
    std::abort();
  }
  auto hq = loyalty::config::ParseHqConfig(text, "/srv/hq/hq.toml");
  if (hq.ok() && (hq->listen_port == 0 || hq->signing_keys.empty())) std::abort();
  return 0;
}
