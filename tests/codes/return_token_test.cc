// Return tokens (codes/return_token.h): what a receipt's QR carries, made by the selling
// terminal with a key HQ certified, verified offline by any terminal of the chain.
#include "loyalty/codes/return_token.h"

#include <gtest/gtest.h>

#include <string>

#include "loyalty/base/encoding.h"
#include "loyalty/codes/mint.h"

namespace loyalty::codes {
namespace {

const std::string kHqSeed(32, '\x11');
const std::string kOtherHqSeed(32, '\x22');
const std::string kTerminalSeed(32, '\x33');
constexpr int64_t kSaleMs = 1'790'000'000'000;  // 2026-09-21
constexpr uint32_t kNotAfter = 1'800'000'000;

std::map<int, std::string> HqKeys() { return {{1, Ed25519PublicFromSeed(kHqSeed)}}; }

ReturnBasis Sale(size_t lines = 2) {
  ReturnBasis b;
  b.checkout_id = "chk-0001";
  b.member_id = 1234567;
  b.committed_at_ms = kSaleMs;
  b.rules_version = "2026-11";
  b.points_earned = 150;
  b.redeemed_points = 200;
  b.eligible_cents = 15000;
  b.redeemable_cents = 20000;
  for (size_t i = 0; i < lines; ++i)
    b.lines.push_back({static_cast<int64_t>(i + 1), 5000 + static_cast<int64_t>(i),
                       5100 + static_cast<int64_t>(i), i % 2 == 0, i % 3 != 2});
  return b;
}

std::string Cert(const std::string& terminal = "T01", uint32_t not_after = kNotAfter,
                 const std::string& hq_seed = kHqSeed) {
  return MakeReceiptKeyCert(hq_seed, 1, terminal, ReceiptPublicKey(kTerminalSeed), not_after);
}

TEST(ReturnTokenTest, RoundTripsTheSaleAndNamesTheCertifiedTerminal) {
  std::string token = MakeReturnToken(Cert(), kTerminalSeed, Sale());
  ASSERT_FALSE(token.empty());
  EXPECT_EQ(token.rfind("LR1:", 0), 0u);
  auto b = VerifyReturnToken(token, HqKeys());
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  ReturnBasis want = Sale();
  want.terminal_id = "T01";
  EXPECT_EQ(*b, want);
}

TEST(ReturnTokenTest, ASaleWithoutAMemberRoundTrips) {
  ReturnBasis sale = Sale(1);
  sale.member_id.reset();
  auto b = VerifyReturnToken(MakeReturnToken(Cert(), kTerminalSeed, sale), HqKeys());
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_FALSE(b->member_id.has_value());
}

TEST(ReturnTokenTest, EveryAlteredByteIsRefused) {
  std::string token = MakeReturnToken(Cert(), kTerminalSeed, Sale());
  auto raw = *Base64UrlDecode(token.substr(4));
  for (size_t i = 0; i < raw.size(); ++i) {
    std::string bad = raw;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    auto b = VerifyReturnToken("LR1:" + Base64UrlEncode(bad), HqKeys());
    ASSERT_FALSE(b.ok()) << "byte " << i << " altered and still verified";
    const auto c = b.status().code();
    EXPECT_TRUE(c == ErrorCode::kCodeMalformed || c == ErrorCode::kCodeSignatureInvalid ||
                c == ErrorCode::kCodeIssuerUnknown || c == ErrorCode::kCodeExpired)
        << "byte " << i << ": " << b.status().ToString();
  }
}

TEST(ReturnTokenTest, AKeyNotCertifiedByThisChainsHqIsRefused) {
  std::string token = MakeReturnToken(Cert("T01", kNotAfter, kOtherHqSeed), kTerminalSeed, Sale());
  auto b = VerifyReturnToken(token, HqKeys());
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), ErrorCode::kCodeSignatureInvalid);
  EXPECT_EQ(VerifyReturnToken(token, {}).status().code(), ErrorCode::kCodeIssuerUnknown);
}

TEST(ReturnTokenTest, SignedWithAnotherKeyThanTheCertifiedOneIsRefused) {
  std::string token = MakeReturnToken(Cert(), std::string(32, '\x44'), Sale());
  EXPECT_EQ(VerifyReturnToken(token, HqKeys()).status().code(), ErrorCode::kCodeSignatureInvalid);
}

TEST(ReturnTokenTest, TheCertificateCountsAtTheSalesTime) {
  // Valid until one second after the sale: the token still proves the sale later.
  std::string ok = MakeReturnToken(Cert("T01", kSaleMs / 1000 + 1), kTerminalSeed, Sale());
  EXPECT_TRUE(VerifyReturnToken(ok, HqKeys()).ok());
  // Expired before the sale: refused.
  std::string late = MakeReturnToken(Cert("T01", kSaleMs / 1000 - 1), kTerminalSeed, Sale());
  EXPECT_EQ(VerifyReturnToken(late, HqKeys()).status().code(), ErrorCode::kCodeExpired);
}

TEST(ReturnTokenTest, LimitsAreExplicit) {
  // 40 lines fit a token within 4096 characters; 41 make none (returned online only).
  std::string forty = MakeReturnToken(Cert("T-long-terminal-id-0123456789abc"), kTerminalSeed,
                                      Sale(kMaxReturnTokenLines));
  ASSERT_FALSE(forty.empty());
  EXPECT_LE(forty.size(), kMaxReturnTokenChars);
  EXPECT_TRUE(MakeReturnToken(Cert(), kTerminalSeed, Sale(kMaxReturnTokenLines + 1)).empty());
  EXPECT_TRUE(MakeReturnToken(Cert(), kTerminalSeed, Sale(0)).empty());
  ReturnBasis neg = Sale();
  neg.lines[0].net_cents = -1;
  EXPECT_TRUE(MakeReturnToken(Cert(), kTerminalSeed, neg).empty());
  ReturnBasis long_id = Sale();
  long_id.checkout_id = std::string(65, 'x');
  EXPECT_TRUE(MakeReturnToken(Cert(), kTerminalSeed, long_id).empty());
  // A terminal id that is not one gets no certificate.
  EXPECT_TRUE(MakeReceiptKeyCert(kHqSeed, 1, "T 01", ReceiptPublicKey(kTerminalSeed), 1).empty());
  EXPECT_TRUE(
      MakeReceiptKeyCert(kHqSeed, 1, std::string(33, 'T'), ReceiptPublicKey(kTerminalSeed), 1)
          .empty());
  // Too long a text is refused before it is decoded.
  EXPECT_EQ(
      VerifyReturnToken("LR1:" + std::string(kMaxReturnTokenChars, 'A'), HqKeys()).status().code(),
      ErrorCode::kCodeMalformed);
}

TEST(ReturnTokenTest, TextThatIsNotATokenIsMalformedAndNeverEchoed) {
  for (std::string text :
       {"", "LR1:", "LR1:!!!!", "LM1:abcd", "lr1:AAAA", "LR1:AAAAAAAA", "8800000000000001"}) {
    auto b = VerifyReturnToken(text, HqKeys());
    ASSERT_FALSE(b.ok()) << text;
    EXPECT_EQ(b.status().code(), ErrorCode::kCodeMalformed) << text;
    if (text.size() > 4) EXPECT_EQ(b.status().message().find(text), std::string::npos);
  }
  // A truncated token at every length.
  std::string token = MakeReturnToken(Cert(), kTerminalSeed, Sale());
  for (size_t n = 4; n < token.size(); n += 7)
    EXPECT_FALSE(VerifyReturnToken(token.substr(0, n), HqKeys()).ok()) << n;
}

TEST(ReturnTokenTest, ReceiptKeyCertificateChecksItsTerminalAndKey) {
  auto c = VerifyReceiptKeyCert(Cert("T07"), HqKeys(), kNotAfter);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->terminal_id, "T07");
  EXPECT_EQ(c->public_key, ReceiptPublicKey(kTerminalSeed));
  EXPECT_EQ(c->not_after, kNotAfter);
  EXPECT_EQ(VerifyReceiptKeyCert(Cert("T07"), HqKeys(), kNotAfter + 1LL).status().code(),
            ErrorCode::kCodeExpired);
  std::string cert = Cert("T07");
  cert.back() = static_cast<char>(cert.back() ^ 1);
  EXPECT_EQ(VerifyReceiptKeyCert(cert, HqKeys(), 0).status().code(),
            ErrorCode::kCodeSignatureInvalid);
  EXPECT_EQ(NewReceiptKeySeed().size(), 32u);
  EXPECT_NE(NewReceiptKeySeed(), NewReceiptKeySeed());
}

TEST(ReturnTokenTest, ACachedCertificateStillCountsItsValidityAndItsKey) {
  ReceiptKeyCache cache(2);
  std::string token = MakeReturnToken(Cert(), kTerminalSeed, Sale());
  ASSERT_TRUE(VerifyReturnToken(token, HqKeys(), &cache).ok());
  EXPECT_EQ(cache.size(), 1u);
  ASSERT_TRUE(VerifyReturnToken(token, HqKeys(), &cache).ok());
  // A sale after the cached certificate's end is refused all the same.
  ReturnBasis late = Sale();
  late.committed_at_ms = (kNotAfter + 1LL) * 1000;
  EXPECT_EQ(VerifyReturnToken(MakeReturnToken(Cert(), kTerminalSeed, late), HqKeys(), &cache)
                .status()
                .code(),
            ErrorCode::kCodeExpired);
  // HQ's key taken out of the configuration: the cached certificate no longer counts.
  EXPECT_EQ(VerifyReturnToken(token, {}, &cache).status().code(), ErrorCode::kCodeIssuerUnknown);
  // A signature by another key under a cached certificate is refused.
  EXPECT_EQ(
      VerifyReturnToken(MakeReturnToken(Cert(), std::string(32, '\x44'), Sale()), HqKeys(), &cache)
          .status()
          .code(),
      ErrorCode::kCodeSignatureInvalid);
  // Bounded: the oldest goes.
  for (const char* t : {"T02", "T03", "T04"})
    ASSERT_TRUE(
        VerifyReturnToken(MakeReturnToken(Cert(t), kTerminalSeed, Sale()), HqKeys(), &cache).ok());
  EXPECT_EQ(cache.size(), 2u);
}

}  // namespace
}  // namespace loyalty::codes
