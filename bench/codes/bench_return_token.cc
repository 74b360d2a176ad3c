// bench_return_token: offline verification of a receipt's return token (docs/pos-api.md,
// "Returns anywhere") against the one Ed25519 verification it cannot avoid. Prints
// p50/p99/max per call (each call timed alone, latencies sorted).
//
//   bench_return_token [iterations]   (default 20000)
//
// Cases:
//   warm     a different token each call (a new sale: a new terminal signature) whose
//            receipt-key certificate is cached: one Ed25519 verification per refund
//   cold     a token whose certificate is seen for the first time: two verifications
//   verify   bare OpenSSL Ed25519 verification of the same token signatures, the floor
//   make     the selling terminal making a five-line token at commit
#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "loyalty/base/encoding.h"
#include "loyalty/codes/mint.h"
#include "loyalty/codes/return_token.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace loyalty::codes;

struct Figures {
  double p50_us, p99_us, max_us;
};

Figures Summarize(std::vector<double> us) {
  std::sort(us.begin(), us.end());
  auto at = [&](double q) {
    return us[std::min(us.size() - 1, static_cast<size_t>(q * us.size()))];
  };
  return {at(0.50), at(0.99), us.back()};
}

void Print(const char* name, const Figures& f, size_t n) {
  std::printf("%-7s n=%-6zu p50 %7.1f us   p99 %7.1f us   max %7.1f us\n", name, n, f.p50_us,
              f.p99_us, f.max_us);
}

template <typename F>
Figures Time(size_t n, F&& f) {
  std::vector<double> us;
  us.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    auto t0 = Clock::now();
    f(i);
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  return Summarize(std::move(us));
}

ReturnBasis Sale(size_t i) {
  ReturnBasis b;
  b.checkout_id = "chk-" + std::to_string(i);
  b.member_id = 1000 + i;
  b.committed_at_ms = 1'790'000'000'000 + static_cast<int64_t>(i);
  b.rules_version = "2026-11";
  b.points_earned = 150;
  b.eligible_cents = 15000;
  b.redeemable_cents = 15000;
  for (int l = 0; l < 5; ++l) b.lines.push_back({1 + l, 3000, 3000, true, true});
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  const size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 20000;
  const std::string hq_seed(32, '\x11'), terminal_seed(32, '\x33');
  const std::map<int, std::string> keys = {{1, Ed25519PublicFromSeed(hq_seed)}};
  const std::string cert =
      MakeReceiptKeyCert(hq_seed, 1, "T01", ReceiptPublicKey(terminal_seed), 1'800'000'000);
  std::vector<std::string> tokens;
  tokens.reserve(n);
  for (size_t i = 0; i < n; ++i) tokens.push_back(MakeReturnToken(cert, terminal_seed, Sale(i)));

  ReceiptKeyCache cache;
  if (!VerifyReturnToken(tokens[0], keys, &cache).ok()) return 1;
  int failures = 0;
  Figures warm =
      Time(n, [&](size_t i) { failures += !VerifyReturnToken(tokens[i], keys, &cache).ok(); });
  Figures cold = Time(n, [&](size_t i) { failures += !VerifyReturnToken(tokens[i], keys).ok(); });
  // The floor: the terminal's signature alone over the same bytes, key pre-built.
  EVP_PKEY* pk = EVP_PKEY_new_raw_public_key(
      EVP_PKEY_ED25519, nullptr,
      reinterpret_cast<const unsigned char*>(ReceiptPublicKey(terminal_seed).data()), 32);
  std::vector<std::pair<std::string, std::string>> signed_parts;
  for (const auto& t : tokens) {
    std::string raw = *loyalty::Base64UrlDecode(t.substr(4));
    size_t cl = (static_cast<uint8_t>(raw[0]) << 8) | static_cast<uint8_t>(raw[1]);
    size_t pl = (static_cast<uint8_t>(raw[2 + cl]) << 8) | static_cast<uint8_t>(raw[3 + cl]);
    std::string msg = "LR1-RETURN" + raw.substr(2, cl) + raw.substr(4 + cl, pl);
    signed_parts.emplace_back(msg, raw.substr(4 + cl + pl, 64));
  }
  Figures bare = Time(n, [&](size_t i) {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, pk);
    const auto& [msg, sig] = signed_parts[i];
    failures +=
        EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), 64,
                         reinterpret_cast<const unsigned char*>(msg.data()), msg.size()) != 1;
    EVP_MD_CTX_free(ctx);
  });
  Figures make = Time(std::min<size_t>(n, 5000), [&](size_t i) {
    failures += MakeReturnToken(cert, terminal_seed, Sale(i)).empty();
  });
  EVP_PKEY_free(pk);
  Print("warm", warm, n);
  Print("cold", cold, n);
  Print("verify", bare, n);
  Print("make", make, std::min<size_t>(n, 5000));
  std::printf("token: %zu characters (five lines)\n", tokens[0].size());
  std::printf("warm/verify ratio: p50 %.2f  p99 %.2f\n", warm.p50_us / bare.p50_us,
              warm.p99_us / bare.p99_us);
  return failures == 0 ? 0 : 1;
}
