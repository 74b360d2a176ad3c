// loyalty-demo-code: what a member's phone and HQ enrolment do, for demos on one machine.
//   loyalty-demo-code pubkey SEED_HEX                      → base64url Ed25519 public key
//   loyalty-demo-code code HQ_SEED_HEX DEVICE_SEED_HEX MEMBER_ID [KEY_ID]
//                                                         → an LM1 code signed now
//   loyalty-demo-code code-cert CERT_B64URL DEVICE_SEED_HEX
//                                                         → an LM1 code signed now with a
//                                                           certificate HQ issued
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

#include "loyalty/base/encoding.h"
#include "loyalty/codes/mint.h"

using namespace loyalty;

static int Usage() {
  std::fprintf(stderr,
               "usage: loyalty-demo-code pubkey SEED_HEX\n"
               "       loyalty-demo-code code HQ_SEED_HEX DEVICE_SEED_HEX MEMBER_ID [KEY_ID]\n"
               "       loyalty-demo-code code-cert CERT_B64URL DEVICE_SEED_HEX\n");
  return 2;
}

static bool Seed(const char* hex, std::string* out) {
  auto s = HexDecode(hex);
  if (!s || s->size() != 32) {
    std::fprintf(stderr, "loyalty-demo-code: a seed is 64 hex characters\n");
    return false;
  }
  *out = *s;
  return true;
}

int main(int argc, char** argv) {
  if (argc < 2) return Usage();
  std::string cmd = argv[1];
  if (cmd == "pubkey" && argc == 3) {
    std::string seed;
    if (!Seed(argv[2], &seed)) return 2;
    std::printf("%s\n", Base64UrlEncode(codes::Ed25519PublicFromSeed(seed)).c_str());
    return 0;
  }
  if (cmd == "code" && (argc == 5 || argc == 6)) {
    std::string hq, dev;
    if (!Seed(argv[2], &hq) || !Seed(argv[3], &dev)) return 2;
    uint64_t member = std::strtoull(argv[4], nullptr, 10);
    int key_id = argc == 6 ? std::atoi(argv[5]) : 1;
    auto now = static_cast<uint32_t>(std::time(nullptr));
    std::string cert =
        codes::MakeCertificate(hq, static_cast<uint8_t>(key_id), member,
                               codes::Ed25519PublicFromSeed(dev), now + 365u * 86400u);
    std::printf("%s\n", codes::MakeDynamicCode(cert, dev, now).c_str());
    return 0;
  }
  if (cmd == "code-cert" && argc == 4) {
    auto cert = Base64UrlDecode(argv[2]);
    std::string dev;
    if (!cert || cert->size() != 110) {
      std::fprintf(stderr, "loyalty-demo-code: a certificate is 110 bytes of base64url\n");
      return 2;
    }
    if (!Seed(argv[3], &dev)) return 2;
    std::printf(
        "%s\n",
        codes::MakeDynamicCode(*cert, dev, static_cast<uint32_t>(std::time(nullptr))).c_str());
    return 0;
  }
  return Usage();
}
