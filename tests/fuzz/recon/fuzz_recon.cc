// Arbitrary bytes as reconciliation messages: to the responder, and as the reply the
// initiator gets in each of its states. Every outcome must be a clean Status, never a crash.
//
// First byte: 0 → Responder::Reply(rest); 1 → reply to HELLO; 2 → reply to the first
// GET_SYMBOLS; 3 → reply to the first GET_ITEMS. The rest is the message.
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "loyalty/recon/protocol.h"
#include "loyalty/recon/recon.h"

namespace lr = loyalty::recon;

namespace {

lr::Item MakeItem(uint32_t i, uint32_t variant) {
  lr::Item it;
  it.id.assign(16, '\0');
  std::memcpy(it.id.data(), &i, sizeof i);
  it.hash = loyalty::Sha256(std::to_string(i) + "/" + std::to_string(variant));
  return it;
}

struct Fixture {
  lr::MemoryStore a{1024}, b{1024}, small_a{64}, small_b{64};
  Fixture() {
    for (uint32_t i = 0; i < 300; ++i) {
      (void)a.Add(MakeItem(i, 0));
      (void)b.Add(MakeItem(i, i % 50 == 0 ? 1 : 0));
      (void)small_a.Add(MakeItem(i, 0));
    }
    for (uint32_t i = 0; i < 40; ++i) (void)b.Add(MakeItem(1000 + i, 0));
    for (uint32_t i = 150; i < 300; ++i) (void)small_b.Add(MakeItem(i * 7, 0));
  }
};

// Drives a real exchange until the initiator sends a message of `type`; returns false if
// the exchange never does.
bool AdvanceTo(lr::Initiator* ini, const lr::Responder& resp, uint8_t type) {
  std::vector<std::string> h, n, m;
  auto msg = ini->Start();
  if (!msg.ok()) return false;
  std::optional<std::string> next = *msg;
  while (next) {
    if (next->size() >= 2 && static_cast<uint8_t>((*next)[1]) == type) return true;
    auto reply = resp.Reply(*next);
    if (!reply.ok()) return false;
    auto r = ini->Next(*reply, &h, &n, &m);
    if (!r.ok()) return false;
    next = *r;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture* f = new Fixture();
  if (size == 0) return 0;
  const std::string_view msg(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::vector<std::string> h, n, m;
  switch (data[0] % 4) {
    case 0: {
      lr::Responder resp(f->b);
      (void)resp.Reply(msg);
      break;
    }
    case 1: {
      lr::Initiator ini(f->a);
      if (!ini.Start().ok()) __builtin_trap();
      (void)ini.Next(msg, &h, &n, &m);
      break;
    }
    case 2: {
      lr::Initiator ini(f->a);
      if (!AdvanceTo(&ini, lr::Responder(f->b), 0x02)) __builtin_trap();
      (void)ini.Next(msg, &h, &n, &m);
      break;
    }
    case 3: {
      lr::Initiator ini(f->small_a);
      if (!AdvanceTo(&ini, lr::Responder(f->small_b), 0x03)) __builtin_trap();
      (void)ini.Next(msg, &h, &n, &m);
      break;
    }
  }
  return 0;
}
