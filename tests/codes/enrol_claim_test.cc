// Enrolment claims (codes/enrol_claim.h): what the enrolment QR's link carries, signed by the
// selling terminal's certified receipt key and verified at HQ with HQ's own keys.
#include "loyalty/codes/enrol_claim.h"

#include <gtest/gtest.h>

#include <string>

#include "loyalty/base/encoding.h"
#include "loyalty/codes/mint.h"
#include "loyalty/codes/return_token.h"

namespace loyalty::codes {
namespace {

const std::string kHqSeed(32, '\x11');
const std::string kOtherHqSeed(32, '\x22');
const std::string kTerminalSeed(32, '\x33');
constexpr int64_t kSaleMs = 1'790'000'000'123;  // 2026-09-21, not on a whole second
constexpr int64_t kSaleS = 1'790'000'000;
constexpr uint32_t kNotAfter = 1'800'000'000;
constexpr int64_t kWeek = 7 * 86400;

std::map<int, std::string> HqKeys() { return {{1, Ed25519PublicFromSeed(kHqSeed)}}; }

std::string Cert(const std::string& terminal = "T01", uint32_t not_after = kNotAfter,
                 const std::string& hq_seed = kHqSeed, uint8_t key_id = 1) {
  return MakeReceiptKeyCert(hq_seed, key_id, terminal, ReceiptPublicKey(kTerminalSeed), not_after);
}

EnrolClaim Claim(const std::string& checkout = "chk-000001") {
  EnrolClaim c;
  c.checkout_id = checkout;
  c.committed_at_ms = kSaleMs;
  c.expires_at_s = EnrolClaimExpiry(kSaleMs, 7);
  return c;
}

bool UrlUnreserved(const std::string& s) {
  for (char c : s)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '.' || c == '_' || c == '~'))
      return false;
  return true;
}

TEST(EnrolClaimTest, RoundTripsAndNamesTheCertifiedTerminal) {
  const std::string text = MakeEnrolClaim(Cert(), kTerminalSeed, Claim());
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.rfind("LC1.", 0), 0u);
  EXPECT_TRUE(UrlUnreserved(text)) << text;
  auto c = VerifyEnrolClaim(text, HqKeys(), kSaleS);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EnrolClaim want = Claim();
  want.terminal_id = "T01";
  EXPECT_EQ(*c, want);
  // Ed25519 is deterministic: the same sale's claim is the same text every time it is asked.
  EXPECT_EQ(MakeEnrolClaim(Cert(), kTerminalSeed, Claim()), text);
}

TEST(EnrolClaimTest, SizesAreThoseTheDocumentsGive) {
  // A 10-character checkout at T01: 268 characters; the longest claim (a 32-character
  // terminal id, a 64-character checkout id): 379, under the 512 refused beyond.
  EXPECT_EQ(MakeEnrolClaim(Cert(), kTerminalSeed, Claim("chk-000001")).size(), 268u);
  const std::string longest =
      MakeEnrolClaim(Cert(std::string(32, 'T')), kTerminalSeed, Claim(std::string(64, 'c')));
  EXPECT_EQ(longest.size(), 379u);
  EXPECT_LE(longest.size(), kMaxEnrolClaimChars);
  EXPECT_TRUE(VerifyEnrolClaim(longest, HqKeys(), kSaleS).ok());
}

TEST(EnrolClaimTest, ExpiresAtTheEndOfTheRefundWindowToTheSecond) {
  EXPECT_EQ(EnrolClaimExpiry(kSaleMs, 7), kSaleS + kWeek);
  EXPECT_EQ(EnrolClaimExpiry(kSaleMs, 1), kSaleS + 86400);
  // No window (0): the longest the rules allow; never beyond it.
  EXPECT_EQ(EnrolClaimExpiry(kSaleMs, 0), kSaleS + kMaxEnrolClaimLifetimeS);
  EXPECT_EQ(EnrolClaimExpiry(kSaleMs, -3), kSaleS + kMaxEnrolClaimLifetimeS);
  EXPECT_EQ(EnrolClaimExpiry(kSaleMs, 3650), kSaleS + kMaxEnrolClaimLifetimeS);
  EXPECT_EQ(EnrolClaimExpiry(kSaleMs, 99999), kSaleS + kMaxEnrolClaimLifetimeS);

  const std::string text = MakeEnrolClaim(Cert(), kTerminalSeed, Claim());
  EXPECT_TRUE(VerifyEnrolClaim(text, HqKeys(), kSaleS + kWeek).ok());  // the last second
  auto late = VerifyEnrolClaim(text, HqKeys(), kSaleS + kWeek + 1);
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.status().code(), ErrorCode::kCodeExpired);
}

TEST(EnrolClaimTest, LimitsOfWhatATerminalMaySign) {
  const std::string cert = Cert();
  EXPECT_FALSE(MakeEnrolClaim(cert, kTerminalSeed, Claim(std::string(64, 'c'))).empty());
  EXPECT_TRUE(MakeEnrolClaim(cert, kTerminalSeed, Claim(std::string(65, 'c'))).empty());
  EXPECT_TRUE(MakeEnrolClaim(cert, kTerminalSeed, Claim("")).empty());
  EXPECT_TRUE(MakeEnrolClaim(cert, kTerminalSeed, Claim("a b")).empty());
  EXPECT_TRUE(MakeEnrolClaim(cert, kTerminalSeed, Claim("chk/1")).empty());
  EnrolClaim c = Claim();
  c.committed_at_ms = -1;
  c.expires_at_s = 100;
  EXPECT_TRUE(MakeEnrolClaim(cert, kTerminalSeed, c).empty());
  c = Claim();
  c.expires_at_s = kSaleS;  // lives 0 s
  EXPECT_TRUE(MakeEnrolClaim(cert, kTerminalSeed, c).empty());
  c.expires_at_s = kSaleS + 1;
  EXPECT_FALSE(MakeEnrolClaim(cert, kTerminalSeed, c).empty());
  c.expires_at_s = kSaleS + kMaxEnrolClaimLifetimeS;
  EXPECT_FALSE(MakeEnrolClaim(cert, kTerminalSeed, c).empty());
  c.expires_at_s = kSaleS + kMaxEnrolClaimLifetimeS + 1;
  EXPECT_TRUE(MakeEnrolClaim(cert, kTerminalSeed, c).empty());
  c.committed_at_ms = int64_t{0xffffffff} * 1000;  // an expiry past 2^32 - 1
  c.expires_at_s = int64_t{0xffffffff} + 1;
  EXPECT_TRUE(MakeEnrolClaim(cert, kTerminalSeed, c).empty());
  EXPECT_TRUE(MakeEnrolClaim("", kTerminalSeed, Claim()).empty());
  EXPECT_TRUE(MakeEnrolClaim(std::string(136, 'x'), kTerminalSeed, Claim()).empty());
  EXPECT_TRUE(MakeEnrolClaim(cert, "short seed", Claim()).empty());
}

TEST(EnrolClaimTest, EveryAlteredCharacterIsRefused) {
  const std::string text = MakeEnrolClaim(Cert(), kTerminalSeed, Claim());
  for (size_t i = kEnrolClaimPrefix.size(); i < text.size(); ++i) {
    std::string altered = text;
    altered[i] = altered[i] == 'A' ? 'B' : 'A';
    auto c = VerifyEnrolClaim(altered, HqKeys(), kSaleS);
    ASSERT_FALSE(c.ok()) << "character " << i;
    const ErrorCode code = c.status().code();
    EXPECT_TRUE(code == ErrorCode::kCodeMalformed || code == ErrorCode::kCodeSignatureInvalid ||
                code == ErrorCode::kCodeIssuerUnknown || code == ErrorCode::kCodeExpired)
        << "character " << i << ": " << c.status().ToString();
    // The message never quotes the claim.
    EXPECT_EQ(c.status().message().find(altered.substr(4, 16)), std::string::npos);
  }
}

TEST(EnrolClaimTest, ForgeriesAndStrangersAreRefused) {
  // A certificate from another HQ under the same key id.
  auto other =
      VerifyEnrolClaim(MakeEnrolClaim(Cert("T01", kNotAfter, kOtherHqSeed), kTerminalSeed, Claim()),
                       HqKeys(), kSaleS);
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), ErrorCode::kCodeSignatureInvalid);
  // An HQ key id this side does not know.
  auto unknown = VerifyEnrolClaim(
      MakeEnrolClaim(Cert("T01", kNotAfter, kHqSeed, 9), kTerminalSeed, Claim()), HqKeys(), kSaleS);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), ErrorCode::kCodeIssuerUnknown);
  // Signed with a key the certificate does not name.
  auto wrong_key =
      VerifyEnrolClaim(MakeEnrolClaim(Cert(), std::string(32, '\x44'), Claim()), HqKeys(), kSaleS);
  ASSERT_FALSE(wrong_key.ok());
  EXPECT_EQ(wrong_key.status().code(), ErrorCode::kCodeSignatureInvalid);
  // A sale after the receipt key's certificate expired.
  auto stale = VerifyEnrolClaim(MakeEnrolClaim(Cert("T01", kSaleS - 1), kTerminalSeed, Claim()),
                                HqKeys(), kSaleS);
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.status().code(), ErrorCode::kCodeExpired);
  // ...but one that expired after the sale still proves it.
  EXPECT_TRUE(VerifyEnrolClaim(MakeEnrolClaim(Cert("T01", kSaleS + 1), kTerminalSeed, Claim()),
                               HqKeys(), kSaleS + 100)
                  .ok());
}

TEST(EnrolClaimTest, AReturnTokenIsNotAClaimNorTheOtherWayRound) {
  ReturnBasis b;
  b.checkout_id = "chk-000001";
  b.committed_at_ms = kSaleMs;
  b.lines.push_back({1, 100, 100, true, true});
  const std::string token = MakeReturnToken(Cert(), kTerminalSeed, b);
  ASSERT_FALSE(token.empty());
  auto as_claim = VerifyEnrolClaim(token, HqKeys(), kSaleS);
  ASSERT_FALSE(as_claim.ok());
  EXPECT_EQ(as_claim.status().code(), ErrorCode::kCodeMalformed);
  // The same bytes under the other prefix: the layouts and signature domains differ.
  const std::string claim = MakeEnrolClaim(Cert(), kTerminalSeed, Claim());
  auto as_token =
      VerifyReturnToken(std::string(kReturnTokenPrefix) + claim.substr(4), HqKeys(), nullptr);
  EXPECT_FALSE(as_token.ok());
  auto relabelled = VerifyEnrolClaim("LC1." + token.substr(4), HqKeys(), kSaleS);
  EXPECT_FALSE(relabelled.ok());
}

TEST(EnrolClaimTest, TextLimitsAreCheckedBeforeDecoding) {
  auto c = VerifyEnrolClaim("LC1." + std::string(kMaxEnrolClaimChars - 4, 'A'), HqKeys(), kSaleS);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), ErrorCode::kCodeMalformed);
  auto over =
      VerifyEnrolClaim("LC1." + std::string(kMaxEnrolClaimChars - 3, 'A'), HqKeys(), kSaleS);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.status().code(), ErrorCode::kCodeMalformed);
  EXPECT_EQ(over.status().message(), "enrolment claim: not an enrolment claim");
  for (const char* bad : {"", "LC1.", "LC1", "lc1.AAAA", "LC1:AAAA", "LC1.AA=A", "LC1.A+/A"}) {
    auto r = VerifyEnrolClaim(bad, HqKeys(), kSaleS);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), ErrorCode::kCodeMalformed) << bad;
  }
  // Truncated at every length.
  const std::string text = MakeEnrolClaim(Cert(), kTerminalSeed, Claim());
  for (size_t n = 0; n < text.size(); ++n)
    EXPECT_FALSE(VerifyEnrolClaim(text.substr(0, n), HqKeys(), kSaleS).ok()) << n;
  // One byte more after the signature.
  auto raw = Base64UrlDecode(text.substr(4));
  ASSERT_TRUE(raw.has_value());
  auto longer = VerifyEnrolClaim("LC1." + Base64UrlEncode(*raw + "x"), HqKeys(), kSaleS);
  ASSERT_FALSE(longer.ok());
  EXPECT_EQ(longer.status().code(), ErrorCode::kCodeMalformed);
}

TEST(EnrolClaimTest, TheCacheSkipsTheCertificateButNotItsKeyOrValidity) {
  ReceiptKeyCache cache;
  const std::string text = MakeEnrolClaim(Cert(), kTerminalSeed, Claim());
  ASSERT_TRUE(VerifyEnrolClaim(text, HqKeys(), kSaleS, &cache).ok());
  EXPECT_EQ(cache.size(), 1u);
  ASSERT_TRUE(VerifyEnrolClaim(text, HqKeys(), kSaleS, &cache).ok());
  EXPECT_EQ(cache.size(), 1u);
  // HQ's key 1 rotated out of the keys given: the cached certificate no longer counts.
  auto gone = VerifyEnrolClaim(text, {{2, Ed25519PublicFromSeed(kOtherHqSeed)}}, kSaleS, &cache);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.status().code(), ErrorCode::kCodeIssuerUnknown);
  // An altered claim with a cached certificate is still refused by the terminal's signature.
  std::string altered = text;
  altered.back() = altered.back() == 'A' ? 'B' : 'A';
  EXPECT_FALSE(VerifyEnrolClaim(altered, HqKeys(), kSaleS, &cache).ok());
}

}  // namespace
}  // namespace loyalty::codes
