// bench_identify: latency of CodeVerifier::Identify against the bare Ed25519 verification
// it cannot avoid. Prints p50/p99/max per call (each call timed alone, latencies sorted).
//
//   bench_identify [iterations]   (default 20000)
//
// Cases:
//   warm      a fresh dynamic code (new code_time, so a new device_sig) whose certificate
//             is cached: one Ed25519 verification per scan
//   cold      first sight of a certificate: hq_sig + device_sig, two verifications
//   verify    bare OpenSSL Ed25519 verification of the same device signatures (context
//             per call, key pre-built), the floor for `warm`
//   warm x2   `warm` on two threads at once (same certificate: both use one cache entry)
//   static / channel / other   the non-cryptographic paths
#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "loyalty/base/encoding.h"
#include "loyalty/codes/codes.h"
#include "loyalty/codes/mint.h"

namespace {

using Clock = std::chrono::steady_clock;
using loyalty::codes::CodeVerifier;

struct Figures {
  double p50_us, p99_us, max_us, mean_us;
};

Figures Summarize(std::vector<double> us) {
  std::sort(us.begin(), us.end());
  double sum = 0;
  for (double v : us) sum += v;
  auto at = [&](double q) {
    return us[std::min(us.size() - 1, static_cast<size_t>(q * us.size()))];
  };
  return {at(0.50), at(0.99), us.back(), sum / us.size()};
}

void Print(const char* name, const Figures& f, size_t n) {
  std::printf("%-8s n=%-6zu p50 %7.1f us   p99 %7.1f us   max %7.1f us   mean %7.1f us\n", name, n,
              f.p50_us, f.p99_us, f.max_us, f.mean_us);
}

template <typename F>
std::vector<double> Time(size_t n, F&& f) {
  std::vector<double> us;
  us.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    auto t0 = Clock::now();
    f(i);
    auto t1 = Clock::now();
    us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  return us;
}

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "bench_identify: %s\n", what);
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 20000;
  if (n < 100) n = 100;
  const size_t n_cold = std::min<size_t>(n, 5000);  // each needs a freshly minted certificate

  const std::string hq_seed(32, '\x01'), device_seed(32, '\x02');
  const std::string device_pk = loyalty::codes::Ed25519PublicFromSeed(device_seed);
  loyalty::codes::CodesConfig cfg;
  cfg.hq_public_keys[1] = loyalty::codes::Ed25519PublicFromSeed(hq_seed);
  cfg.channels = {{"wechat", "^[0-9]{12}$"}, {"alipay", "^[0-9]{18}$"}};
  auto created = CodeVerifier::Create(cfg);
  Check(created.ok(), "Create failed");
  const CodeVerifier& verifier = **created;
  const auto not_revoked = [](std::string_view) { return false; };

  // Minting is signing: do it all before timing anything.
  const uint32_t t0 = 1'800'000'000;
  const std::string cert =
      loyalty::codes::MakeCertificate(hq_seed, 1, 1234567890123, device_pk, 2'000'000'000);
  std::vector<std::string> warm_codes(n), cold_codes(n_cold);
  for (size_t i = 0; i < n; ++i)
    warm_codes[i] = loyalty::codes::MakeDynamicCode(cert, device_seed, t0 + i);
  for (size_t i = 0; i < n_cold; ++i) {
    std::string c = loyalty::codes::MakeCertificate(hq_seed, 1, 1000 + i, device_pk, 2'000'000'000);
    cold_codes[i] = loyalty::codes::MakeDynamicCode(c, device_seed, t0);
  }
  // The device_sig messages and signatures of the warm codes, for the bare verification.
  std::vector<std::string> messages(n), signatures(n);
  for (size_t i = 0; i < n; ++i) {
    std::string payload = *loyalty::Base64UrlDecode(std::string_view(warm_codes[i]).substr(4));
    messages[i] = "LM1-CODE" + payload.substr(0, 114);
    signatures[i] = payload.substr(114);
  }
  EVP_PKEY* key = EVP_PKEY_new_raw_public_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(device_pk.data()), 32);
  Check(key != nullptr, "device key");

  // Warm-up: caches the certificate, faults in code and tables.
  Check(verifier.Identify(warm_codes[0], t0, not_revoked).ok(), "warm-up identify failed");

  // Interleave the two crypto measurements in blocks so CPU frequency or noise from
  // other processes affects both alike.
  std::vector<double> warm_us, verify_us;
  const size_t kBlock = 500;
  for (size_t start = 0; start < n; start += kBlock) {
    size_t len = std::min(kBlock, n - start);
    auto w = Time(len, [&](size_t i) {
      size_t k = start + i;
      auto r = verifier.Identify(warm_codes[k], t0 + k, not_revoked);
      Check(r.ok(), "warm identify failed");
    });
    auto v = Time(len, [&](size_t i) {
      size_t k = start + i;
      EVP_MD_CTX* ctx = EVP_MD_CTX_new();
      int ok = EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, key) == 1 &&
               EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(signatures[k].data()),
                                64, reinterpret_cast<const unsigned char*>(messages[k].data()),
                                messages[k].size()) == 1;
      EVP_MD_CTX_free(ctx);
      Check(ok, "bare verify failed");
    });
    warm_us.insert(warm_us.end(), w.begin(), w.end());
    verify_us.insert(verify_us.end(), v.begin(), v.end());
  }
  // Two threads identifying at once, each with its own codes (odd/even code times).
  std::vector<double> par_us[2];
  {
    std::vector<std::thread> threads;
    for (int th = 0; th < 2; ++th) {
      threads.emplace_back([&, th] {
        par_us[th] = Time(n / 2, [&](size_t i) {
          size_t k = 2 * i + th;
          Check(verifier.Identify(warm_codes[k], t0 + k, not_revoked).ok(),
                "parallel identify failed");
        });
      });
    }
    for (auto& t : threads) t.join();
  }
  std::vector<double> par_all = par_us[0];
  par_all.insert(par_all.end(), par_us[1].begin(), par_us[1].end());
  auto cold_us = Time(n_cold, [&](size_t i) {
    Check(verifier.Identify(cold_codes[i], t0, not_revoked).ok(), "cold");
  });
  auto static_us = Time(n, [&](size_t) {
    Check(verifier.Identify("8800123456789010", t0, not_revoked).ok(), "static");
  });
  auto channel_us = Time(n, [&](size_t) {
    Check(verifier.Identify("123456789012345678", t0, not_revoked).ok(), "channel");
  });
  auto other_us = Time(n, [&](size_t) {
    Check(!verifier.Identify("6901234567892", t0, not_revoked).ok(), "other");
  });
  EVP_PKEY_free(key);

  Figures warm = Summarize(warm_us), bare = Summarize(verify_us);
  Print("warm", warm, warm_us.size());
  Print("verify", bare, verify_us.size());
  Print("warm x2", Summarize(par_all), par_all.size());
  Print("cold", Summarize(cold_us), cold_us.size());
  Print("static", Summarize(static_us), static_us.size());
  Print("channel", Summarize(channel_us), channel_us.size());
  Print("other", Summarize(other_us), other_us.size());
  std::printf("warm/verify ratio: p50 %.2f  p99 %.2f\n", warm.p50_us / bare.p50_us,
              warm.p99_us / bare.p99_us);
  auto s = verifier.stats();
  std::printf("certificate verifications %llu, cache hits %llu, cache size %zu\n",
              static_cast<unsigned long long>(s.certificate_verifications),
              static_cast<unsigned long long>(s.certificate_cache_hits), s.certificate_cache_size);
  return 0;
}
