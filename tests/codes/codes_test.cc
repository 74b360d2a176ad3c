#include "loyalty/codes/codes.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "loyalty/base/encoding.h"
#include "loyalty/base/hash.h"
#include "loyalty/codes/mint.h"

namespace loyalty::codes {
namespace {

using nlohmann::json;

json LoadVectors() {
  std::ifstream in(std::string(LOYALTY_FIXTURES_DIR) + "/member-codes.json");
  EXPECT_TRUE(in.good()) << "missing tests/fixtures/member-codes.json";
  return json::parse(in);
}

std::string Hex(const json& j) { return HexDecode(j.get<std::string>()).value(); }
std::string B64(const json& j) { return Base64UrlDecode(j.get<std::string>()).value(); }

const auto kNotRevoked = [](std::string_view) { return false; };

class CodesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    v_ = LoadVectors();
    hq_seed_ = Hex(v_["hq_seed_hex"]);
    device_seed_ = Hex(v_["device_seed_hex"]);
    hq_pk_ = B64(v_["hq_public_key_b64url"]);
    device_pk_ = B64(v_["device_public_key_b64url"]);
    key_id_ = v_["hq_key_id"].get<int>();
    member_id_ = v_["member_id"].get<uint64_t>();
    not_after_ = v_["cert_not_after"].get<uint32_t>();
    cert_ = B64(v_["certificate_b64url"]);
    verifier_ = MakeVerifier(DefaultConfig());
  }

  CodesConfig DefaultConfig() const {
    CodesConfig cfg;
    cfg.hq_public_keys[key_id_] = hq_pk_;
    cfg.channels = {{"wechat", "^[0-9]{12}$"}, {"alipay", "[0-9]{18}"}};
    return cfg;
  }

  static std::unique_ptr<CodeVerifier> MakeVerifier(CodesConfig cfg) {
    auto v = CodeVerifier::Create(std::move(cfg));
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return std::move(v).value();
  }

  // The error code of identifying `text` at `now` ("ok" on success).
  std::string Outcome(const CodeVerifier& v, std::string_view text, int64_t now) const {
    auto r = v.Identify(text, now, kNotRevoked);
    return std::string(r.status().code_name());
  }
  std::string Outcome(std::string_view text, int64_t now) const {
    return Outcome(*verifier_, text, now);
  }

  std::string Code(uint32_t code_time) const {
    return MakeDynamicCode(cert_, device_seed_, code_time);
  }

  json v_;
  std::string hq_seed_, device_seed_, hq_pk_, device_pk_, cert_;
  int key_id_ = 0;
  uint64_t member_id_ = 0;
  uint32_t not_after_ = 0;
  std::unique_ptr<CodeVerifier> verifier_;
};

// ---- The vector file, case by case -------------------------------------------------------

TEST_F(CodesTest, VectorValidCodeIdentifiesTheMember) {
  const json& c = v_["valid"];
  std::string text = c["code"];
  auto r = verifier_->Identify(text, c["now"].get<int64_t>(), kNotRevoked);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->kind, CodeKind::kDynamic);
  EXPECT_EQ(r->member_id, member_id_);
  EXPECT_EQ(r->device_public_key, device_pk_);
  EXPECT_EQ(r->code_time, c["code_time"].get<uint32_t>());
  EXPECT_EQ(r->not_after, not_after_);
  EXPECT_EQ(r->key_id, key_id_);
  EXPECT_EQ(r->code_hash, DigestHex(Sha256(text)));
  EXPECT_EQ(r->code_hash.size(), 64u);
  EXPECT_TRUE(r->card_number.empty());
  EXPECT_EQ(CodeKindName(r->kind), "dynamic");
}

TEST_F(CodesTest, EveryVectorCaseHasItsExpectedOutcome) {
  int checked = 0;
  for (const char* name :
       {"tampered_member_id", "expired_code_time", "future_code_time", "expired_certificate",
        "unknown_key_id", "wrong_device_signature", "edge_max_age_ok", "edge_skew_ok",
        "edge_not_after_ok", "non_canonical_base64"}) {
    SCOPED_TRACE(name);
    const json& c = v_.at(name);
    EXPECT_EQ(Outcome(c["code"].get<std::string>(), c["now"].get<int64_t>()),
              c["expect"].get<std::string>());
    ++checked;
  }
  for (const json& c : v_["malformed"]) {
    SCOPED_TRACE(c["code"].get<std::string>());
    EXPECT_EQ(Outcome(c["code"].get<std::string>(), v_["valid"]["now"].get<int64_t>()),
              c["expect"].get<std::string>());
    ++checked;
  }
  EXPECT_EQ(checked, 15);
}

TEST_F(CodesTest, VectorStaticCards) {
  const json& s = v_["static_cards"];
  ASSERT_EQ(s["prefix"].get<std::string>(), DefaultConfig().card_prefix);
  for (const json& n : s["valid"]) {
    auto r = verifier_->Identify(n.get<std::string>(), 0, kNotRevoked);
    ASSERT_TRUE(r.ok()) << n;
    EXPECT_EQ(r->kind, CodeKind::kStatic);
    EXPECT_EQ(r->card_number, n.get<std::string>());
    EXPECT_EQ(r->code_hash, DigestHex(Sha256(n.get<std::string>())));
  }
  for (const json& n : s["invalid_check_digit"])
    EXPECT_EQ(Outcome(n.get<std::string>(), 0), "code_malformed") << n;
  // Wrong lengths are not cards (see codes.h): with no channel claiming them they are
  // plain non-member scans, not alarms.
  for (const json& n : s["wrong_length"])
    EXPECT_EQ(Outcome(n.get<std::string>(), 0), "not_a_member_code") << n;
}

// ---- Minting agrees with the vectors -------------------------------------------------------

TEST_F(CodesTest, MintReproducesVectorKeysCertificateAndCode) {
  EXPECT_EQ(Ed25519PublicFromSeed(hq_seed_), hq_pk_);
  EXPECT_EQ(Ed25519PublicFromSeed(device_seed_), device_pk_);
  // Ed25519 is deterministic, so the certificate and code are byte-identical.
  EXPECT_EQ(MakeCertificate(hq_seed_, key_id_, member_id_, device_pk_, not_after_), cert_);
  const json& c = v_["valid"];
  std::string code = Code(c["code_time"].get<uint32_t>());
  EXPECT_EQ(code, c["code"].get<std::string>());
  EXPECT_EQ(code.size(), kDynamicCodeChars);
}

TEST_F(CodesTest, MintRejectsWrongSizes) {
  EXPECT_EQ(Ed25519PublicFromSeed("short"), "");
  EXPECT_EQ(MakeCertificate("short", 1, 1, device_pk_, 1), "");
  EXPECT_EQ(MakeCertificate(hq_seed_, 1, 1, "short", 1), "");
  EXPECT_EQ(MakeDynamicCode(cert_.substr(1), device_seed_, 1), "");
  EXPECT_EQ(MakeDynamicCode(cert_, "short", 1), "");
}

TEST_F(CodesTest, MintedCodeRoundTrips) {
  std::string dev_seed(32, '\x42');
  std::string dev_pk = Ed25519PublicFromSeed(dev_seed);
  std::string cert = MakeCertificate(hq_seed_, key_id_, 42, dev_pk, 2'000'000'000);
  ASSERT_EQ(cert.size(), kCertificateBytes);
  auto parsed = ParseCertificate(cert);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->member_id, 42u);
  EXPECT_EQ(parsed->device_public_key, dev_pk);
  EXPECT_EQ(parsed->not_after, 2'000'000'000u);
  EXPECT_EQ(parsed->key_id, key_id_);
  EXPECT_EQ(parsed->hq_signature.size(), 64u);
  auto r = verifier_->Identify(MakeDynamicCode(cert, dev_seed, 1'800'000'000), 1'800'000'010,
                               kNotRevoked);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->member_id, 42u);
  EXPECT_EQ(r->device_public_key, dev_pk);
  EXPECT_EQ(r->code_time, 1'800'000'000u);
}

TEST_F(CodesTest, ParseCertificateRejectsBadShapes) {
  EXPECT_EQ(ParseCertificate(cert_.substr(0, 109)).status().code(), ErrorCode::kCodeMalformed);
  std::string v2 = cert_;
  v2[0] = 2;
  EXPECT_EQ(ParseCertificate(v2).status().code(), ErrorCode::kCodeMalformed);
}

// ---- Windows at the edge and one second past -----------------------------------------------

TEST_F(CodesTest, MaxAgeWindowEdges) {
  const uint32_t t = 1'795'000'000;
  std::string code = Code(t);
  EXPECT_EQ(Outcome(code, t), "ok");
  EXPECT_EQ(Outcome(code, t + 120), "ok");
  EXPECT_EQ(Outcome(code, t + 121), "code_expired");
}

TEST_F(CodesTest, SkewWindowEdges) {
  const uint32_t t = 1'795'000'000;
  std::string code = Code(t);
  EXPECT_EQ(Outcome(code, t - 60), "ok");
  EXPECT_EQ(Outcome(code, t - 61), "code_not_yet_valid");
}

TEST_F(CodesTest, CertificateNotAfterEdges) {
  std::string cert = MakeCertificate(hq_seed_, key_id_, member_id_, device_pk_, 1'795'000'000);
  std::string at = MakeDynamicCode(cert, device_seed_, 1'795'000'000);
  std::string past = MakeDynamicCode(cert, device_seed_, 1'795'000'001);
  EXPECT_EQ(Outcome(at, 1'795'000'000), "ok");
  EXPECT_EQ(Outcome(past, 1'795'000'001), "code_expired");
}

TEST_F(CodesTest, ConfiguredWindowsAreHonoured) {
  CodesConfig cfg = DefaultConfig();
  cfg.code_max_age_s = 30;
  cfg.clock_skew_s = 5;
  auto v = MakeVerifier(cfg);
  const uint32_t t = 1'795'000'000;
  std::string code = Code(t);
  EXPECT_EQ(Outcome(*v, code, t + 30), "ok");
  EXPECT_EQ(Outcome(*v, code, t + 31), "code_expired");
  EXPECT_EQ(Outcome(*v, code, t - 5), "ok");
  EXPECT_EQ(Outcome(*v, code, t - 6), "code_not_yet_valid");
}

TEST_F(CodesTest, ExpiryIsCheckedBeforeSkewAndSignaturesBeforeWindows) {
  // A certificate past not_after with a code far in the future: expired comes first.
  std::string cert = MakeCertificate(hq_seed_, key_id_, member_id_, device_pk_, 1000);
  EXPECT_EQ(Outcome(MakeDynamicCode(cert, device_seed_, 5000), 0), "code_expired");
  // A bad device signature on an expired code: the signature step comes first.
  std::string bad = Code(1000);
  bad[bad.size() - 5] = bad[bad.size() - 5] == 'A' ? 'B' : 'A';
  EXPECT_EQ(Outcome(bad, 1'000'000), "code_signature_invalid");
}

// ---- Issuers and key rotation --------------------------------------------------------------

TEST_F(CodesTest, SeveralHqKeysVerifyTheirOwnCertificates) {
  std::string seed2(32, '\x07');
  CodesConfig cfg = DefaultConfig();
  cfg.hq_public_keys[2] = Ed25519PublicFromSeed(seed2);
  auto v = MakeVerifier(cfg);
  std::string cert1 = MakeCertificate(hq_seed_, key_id_, 1, device_pk_, 2'000'000'000);
  std::string cert2 = MakeCertificate(seed2, 2, 2, device_pk_, 2'000'000'000);
  auto r1 =
      v->Identify(MakeDynamicCode(cert1, device_seed_, 1'800'000'000), 1'800'000'000, kNotRevoked);
  auto r2 =
      v->Identify(MakeDynamicCode(cert2, device_seed_, 1'800'000'000), 1'800'000'000, kNotRevoked);
  ASSERT_TRUE(r1.ok() && r2.ok());
  EXPECT_EQ(r1->member_id, 1u);
  EXPECT_EQ(r2->key_id, 2);
  EXPECT_EQ(r2->member_id, 2u);
  // A certificate claiming key 2 but signed with key 1's seed is a forgery.
  std::string forged = MakeCertificate(hq_seed_, 2, 3, device_pk_, 2'000'000'000);
  EXPECT_EQ(Outcome(*v, MakeDynamicCode(forged, device_seed_, 1'800'000'000), 1'800'000'000),
            "code_signature_invalid");
  // After rotation key 1 is no longer configured: its certificates have an unknown issuer.
  CodesConfig rotated;
  rotated.hq_public_keys[2] = cfg.hq_public_keys[2];
  auto v2 = MakeVerifier(rotated);
  EXPECT_EQ(Outcome(*v2, MakeDynamicCode(cert1, device_seed_, 1'800'000'000), 1'800'000'000),
            "code_issuer_unknown");
  EXPECT_EQ(Outcome(*v2, MakeDynamicCode(cert2, device_seed_, 1'800'000'000), 1'800'000'000), "ok");
}

TEST_F(CodesTest, UnknownIssuerIsReportedBeforeSignatures) {
  std::string cert = cert_;
  cert[1] = 9;  // key id 9, not configured; the signature no longer matches either
  EXPECT_EQ(Outcome(MakeDynamicCode(cert, device_seed_, 1'795'000'000), 1'795'000'000),
            "code_issuer_unknown");
}

// ---- Revocation ----------------------------------------------------------------------------

TEST_F(CodesTest, RevocationIsAskedOnlyForOtherwiseValidCodes) {
  std::vector<std::string> asked;
  auto revoked = [&](std::string_view pk) {
    asked.emplace_back(pk);
    return true;
  };
  const uint32_t t = 1'795'000'000;
  auto r = verifier_->Identify(Code(t), t, revoked);
  EXPECT_EQ(r.status().code(), ErrorCode::kCodeRevoked);
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0], device_pk_);
  // Expired, not-yet-valid, bad signature: never asked.
  asked.clear();
  EXPECT_EQ(verifier_->Identify(Code(t), t + 121, revoked).status().code(),
            ErrorCode::kCodeExpired);
  EXPECT_EQ(verifier_->Identify(Code(t), t - 61, revoked).status().code(),
            ErrorCode::kCodeNotYetValid);
  const json& bad = v_["wrong_device_signature"];
  EXPECT_EQ(verifier_->Identify(bad["code"].get<std::string>(), bad["now"].get<int64_t>(), revoked)
                .status()
                .code(),
            ErrorCode::kCodeSignatureInvalid);
  EXPECT_TRUE(asked.empty());
  // Not revoked, and an empty callback.
  EXPECT_TRUE(verifier_->Identify(Code(t), t, kNotRevoked).ok());
  EXPECT_TRUE(verifier_->Identify(Code(t), t, nullptr).ok());
}

// ---- Shape of LM1 texts --------------------------------------------------------------------

TEST_F(CodesTest, DamagedLm1TextsAreAlwaysRejectedCodes) {
  std::string code = Code(1'795'000'000);
  std::string wrong_version = B64(json(code.substr(4)));
  wrong_version[0] = 2;
  EXPECT_EQ(Outcome("LM1:" + Base64UrlEncode(wrong_version), 1'795'000'000), "code_malformed");
  EXPECT_EQ(Outcome("LM1:", 0), "code_malformed");
  EXPECT_EQ(Outcome("LM1:hello", 0), "code_malformed");
  EXPECT_EQ(Outcome(code + "\n", 1'795'000'000), "code_malformed");
  std::string plus = code;
  plus[10] = '+';  // standard alphabet
  EXPECT_EQ(Outcome(plus, 1'795'000'000), "code_malformed");
  // 179 and 177 bytes of otherwise valid base64url.
  std::string payload = B64(json(code.substr(4)));
  EXPECT_EQ(Outcome("LM1:" + Base64UrlEncode(payload + "x"), 1'795'000'000), "code_malformed");
  EXPECT_EQ(Outcome("LM1:" + Base64UrlEncode(payload.substr(0, 177)), 1'795'000'000),
            "code_malformed");
  // The prefix is case-sensitive: "lm1:" is simply not a member code.
  EXPECT_EQ(Outcome("lm1:" + code.substr(4), 1'795'000'000), "not_a_member_code");
}

TEST_F(CodesTest, ScanLengthLimit) {
  std::string at_limit(kMaxScanBytes, 'x');
  std::string past_limit(kMaxScanBytes + 1, 'x');
  EXPECT_EQ(Outcome(at_limit, 0), "not_a_member_code");
  EXPECT_EQ(Outcome(past_limit, 0), "code_malformed");
  std::string lm1_at_limit = "LM1:" + std::string(kMaxScanBytes - 4, 'A');
  std::string lm1_past_limit = "LM1:" + std::string(kMaxScanBytes - 3, 'A');
  EXPECT_EQ(Outcome(lm1_at_limit, 0), "code_malformed");
  EXPECT_EQ(Outcome(lm1_past_limit, 0), "code_malformed");
  // A channel pattern that would match anything still sees no text over the channel cap.
  CodesConfig cfg = DefaultConfig();
  cfg.channels = {{"any", ".*"}};
  auto v = MakeVerifier(cfg);
  EXPECT_EQ(Outcome(*v, std::string(kMaxChannelCodeBytes, '7'), 0), "ok");
  EXPECT_EQ(Outcome(*v, std::string(kMaxChannelCodeBytes + 1, '7'), 0), "not_a_member_code");
  EXPECT_EQ(Outcome(*v, at_limit, 0), "not_a_member_code");
  EXPECT_EQ(Outcome(*v, past_limit, 0), "code_malformed");
}

// ---- Static cards --------------------------------------------------------------------------

TEST_F(CodesTest, LuhnArithmetic) {
  EXPECT_TRUE(IsLuhnValid("79927398713"));
  EXPECT_FALSE(IsLuhnValid("79927398710"));
  EXPECT_EQ(LuhnCheckDigit("7992739871"), '3');
  EXPECT_EQ(LuhnCheckDigit("880012345678901"), '0');
  EXPECT_FALSE(IsLuhnValid(""));
  EXPECT_FALSE(IsLuhnValid("12a4"));
  EXPECT_FALSE(LuhnCheckDigit("1x").has_value());
  // Every wrong check digit is caught.
  for (char d = '0'; d <= '9'; ++d)
    EXPECT_EQ(IsLuhnValid(std::string("880012345678901") + d), d == '0');
  EXPECT_EQ(MakeCardNumber("88", "12345"), "8800000000123450");
  EXPECT_TRUE(IsLuhnValid(MakeCardNumber("88", "12345")));
  EXPECT_EQ(MakeCardNumber("88", "1234567890123456"), "");
  EXPECT_EQ(MakeCardNumber("8a", "1"), "");
}

TEST_F(CodesTest, StaticCardFormat) {
  std::string good = MakeCardNumber("88", "777");
  auto r = verifier_->Identify(good, 0, kNotRevoked);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kind, CodeKind::kStatic);
  EXPECT_EQ(r->member_id, 0u);
  std::string bad = good;
  bad.back() = bad.back() == '9' ? '0' : bad.back() + 1;
  EXPECT_EQ(Outcome(bad, 0), "code_malformed");
  // Other prefix, right length, valid Luhn: not a card of this chain.
  EXPECT_EQ(Outcome(MakeCardNumber("77", "777"), 0), "not_a_member_code");
  // 15 and 17 digits with the prefix, a space, a letter: not cards.
  EXPECT_EQ(Outcome(good.substr(0, 15), 0), "not_a_member_code");
  EXPECT_EQ(Outcome(good + "0", 0), "not_a_member_code");
  EXPECT_EQ(Outcome(good + " ", 0), "not_a_member_code");
  std::string letter = good;
  letter[5] = 'A';
  EXPECT_EQ(Outcome(letter, 0), "not_a_member_code");
  // A 13-digit product barcode that happens to start with "88".
  EXPECT_EQ(Outcome("8801234567890", 0), "not_a_member_code");
}

TEST_F(CodesTest, CardPrefixIsConfigurable) {
  CodesConfig cfg = DefaultConfig();
  cfg.card_prefix = "6200";
  auto v = MakeVerifier(cfg);
  EXPECT_EQ(Outcome(*v, MakeCardNumber("6200", "1"), 0), "ok");
  EXPECT_EQ(Outcome(*v, MakeCardNumber("88", "1"), 0), "not_a_member_code");
  EXPECT_EQ(Outcome(*v, "6200000000000000", 0), "code_malformed");
}

TEST_F(CodesTest, WrongLengthPrefixedDigitsRemainAvailableToChannels) {
  CodesConfig cfg = DefaultConfig();
  cfg.channels = {{"wechat", "^[0-9]{12}$"}, {"long", "[0-9]{17}"}};
  auto v = MakeVerifier(cfg);
  auto r = v->Identify("880012345678", 0, kNotRevoked);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->channel, "wechat");
  r = v->Identify("88001234567890123", 0, kNotRevoked);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->channel, "long");
}

// ---- Channel codes -------------------------------------------------------------------------

TEST_F(CodesTest, ChannelPatternsFullMatchFirstWins) {
  CodesConfig cfg = DefaultConfig();
  cfg.channels = {{"wechat", "^[0-9]{12}$"}, {"alipay", "[0-9]{12,20}"}, {"gs1", "\\x1d.*"}};
  auto v = MakeVerifier(cfg);
  auto r = v->Identify("123456789012", 0, kNotRevoked);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kind, CodeKind::kChannel);
  EXPECT_EQ(r->channel, "wechat");  // also matches alipay: first wins
  EXPECT_EQ(r->external_id, "123456789012");
  EXPECT_EQ(r->code_hash, DigestHex(Sha256("123456789012")));
  r = v->Identify("1234567890123", 0, kNotRevoked);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->channel, "alipay");
  // Full match: a pattern without anchors does not match a substring.
  EXPECT_EQ(Outcome(*v, "x1234567890123", 0), "not_a_member_code");
  EXPECT_EQ(Outcome(*v, "123456789012345678901", 0), "not_a_member_code");
  EXPECT_EQ(Outcome(*v, "12345678901", 0), "not_a_member_code");
  r = v->Identify(
      "\x1d"
      "01034531200000111719112510ABCD1234",
      0, kNotRevoked);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->channel, "gs1");
  // A static card wins over a channel pattern that also matches 16 digits.
  std::string card = MakeCardNumber("88", "5");
  r = v->Identify(card, 0, kNotRevoked);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kind, CodeKind::kStatic);
  // ... and its bad-check-digit twin is still malformed, not a channel code.
  card.back() = card.back() == '9' ? '0' : card.back() + 1;
  EXPECT_EQ(Outcome(*v, card, 0), "code_malformed");
  // An LM1 text never reaches the channel patterns.
  cfg.channels = {{"any", ".*"}};
  auto any = MakeVerifier(cfg);
  EXPECT_EQ(Outcome(*any, "LM1:abc", 0), "code_malformed");
  EXPECT_EQ(Outcome(*any, "", 0), "ok");
}

TEST_F(CodesTest, NothingMatchesWithoutChannels) {
  CodesConfig cfg = DefaultConfig();
  cfg.channels.clear();
  auto v = MakeVerifier(cfg);
  EXPECT_EQ(Outcome(*v, "123456789012", 0), "not_a_member_code");
  EXPECT_EQ(Outcome(*v, "", 0), "not_a_member_code");
  EXPECT_EQ(Outcome(*v, "4006381333931", 0), "not_a_member_code");
  EXPECT_EQ(Outcome(*v, std::string("\0\xff\x1d", 3), 0), "not_a_member_code");
}

// ---- Configuration -------------------------------------------------------------------------

TEST_F(CodesTest, CreateRejectsBadConfiguration) {
  auto code_of = [](CodesConfig cfg) {
    auto r = CodeVerifier::Create(std::move(cfg));
    return std::string(r.status().code_name());
  };
  EXPECT_EQ(code_of(DefaultConfig()), "ok");
  EXPECT_EQ(code_of(CodesConfig{}), "ok");  // no keys: every LM1 code has an unknown issuer
  CodesConfig c = DefaultConfig();
  c.hq_public_keys[256] = hq_pk_;
  EXPECT_EQ(code_of(c), "config_invalid");
  c = DefaultConfig();
  c.hq_public_keys[-1] = hq_pk_;
  EXPECT_EQ(code_of(c), "config_invalid");
  c = DefaultConfig();
  c.hq_public_keys[0] = hq_pk_.substr(0, 31);
  EXPECT_EQ(code_of(c), "config_invalid");
  c = DefaultConfig();
  c.hq_public_keys[255] = hq_pk_;
  EXPECT_EQ(code_of(c), "ok");
  c = DefaultConfig();
  c.channels.push_back({"broken", "[0-9"});
  EXPECT_EQ(code_of(c), "config_invalid");
  c = DefaultConfig();
  c.channels.push_back({"", "[0-9]"});
  EXPECT_EQ(code_of(c), "config_invalid");
  c = DefaultConfig();
  c.card_prefix = "8a";
  EXPECT_EQ(code_of(c), "config_invalid");
  c.card_prefix = std::string(16, '8');
  EXPECT_EQ(code_of(c), "config_invalid");
  c = DefaultConfig();
  c.code_max_age_s = -1;
  EXPECT_EQ(code_of(c), "config_invalid");
  c = DefaultConfig();
  c.clock_skew_s = kMaxWindowS + 1;
  EXPECT_EQ(code_of(c), "config_invalid");
  c = DefaultConfig();
  c.certificate_cache_capacity = 0;
  EXPECT_EQ(code_of(c), "config_invalid");
}

TEST_F(CodesTest, NoKeysMeansUnknownIssuer) {
  auto v = MakeVerifier(CodesConfig{});
  EXPECT_EQ(Outcome(*v, v_["valid"]["code"].get<std::string>(), v_["valid"]["now"].get<int64_t>()),
            "code_issuer_unknown");
}

// ---- The certificate cache -----------------------------------------------------------------

TEST_F(CodesTest, SecondCodeOfACertificateSkipsTheCertificateVerification) {
  const uint32_t t = 1'795'000'000;
  EXPECT_EQ(verifier_->stats().certificate_verifications, 0u);
  ASSERT_EQ(Outcome(Code(t), t), "ok");
  EXPECT_EQ(verifier_->stats().certificate_verifications, 1u);
  EXPECT_EQ(verifier_->stats().certificate_cache_size, 1u);
  ASSERT_EQ(Outcome(Code(t + 30), t + 30), "ok");
  ASSERT_EQ(Outcome(Code(t + 60), t + 60), "ok");
  EXPECT_EQ(verifier_->stats().certificate_verifications, 1u);
  EXPECT_EQ(verifier_->stats().certificate_cache_hits, 2u);
  // The device signature is still checked on every scan of a cached certificate.
  EXPECT_EQ(Outcome(v_["wrong_device_signature"]["code"].get<std::string>(), t + 30),
            "code_signature_invalid");
  EXPECT_EQ(verifier_->stats().certificate_verifications, 1u);
}

TEST_F(CodesTest, TamperedCertificateIsRefusedEvenWhenTheGenuineOneIsCached) {
  const uint32_t t = 1'795'000'000;
  ASSERT_EQ(Outcome(Code(t), t), "ok");
  // Same member id, device key swapped for an attacker's, signed by the attacker's device
  // key: the hq_sig no longer matches, and the cache must not vouch for it.
  std::string attacker_seed(32, '\x66');
  std::string forged = cert_;
  forged.replace(10, 32, Ed25519PublicFromSeed(attacker_seed));
  EXPECT_EQ(Outcome(MakeDynamicCode(forged, attacker_seed, t), t), "code_signature_invalid");
  // A later not_after, same everything else.
  forged = cert_;
  forged[45] = static_cast<char>(forged[45] + 1);
  EXPECT_EQ(Outcome(MakeDynamicCode(forged, device_seed_, t), t), "code_signature_invalid");
  // The vector's tampered member id, with the genuine certificate in the cache.
  const json& c = v_["tampered_member_id"];
  EXPECT_EQ(Outcome(c["code"].get<std::string>(), c["now"].get<int64_t>()),
            "code_signature_invalid");
  // Failed certificates are not cached: trying again verifies again, and fails again.
  uint64_t before = verifier_->stats().certificate_verifications;
  EXPECT_EQ(Outcome(c["code"].get<std::string>(), c["now"].get<int64_t>()),
            "code_signature_invalid");
  EXPECT_EQ(verifier_->stats().certificate_verifications, before + 1);
  EXPECT_EQ(verifier_->stats().certificate_cache_size, 1u);
}

TEST_F(CodesTest, CacheIsBoundedAndEvictsTheLeastRecentlyUsed) {
  CodesConfig cfg = DefaultConfig();
  cfg.certificate_cache_capacity = 2;
  auto v = MakeVerifier(cfg);
  const uint32_t t = 1'795'000'000;
  std::vector<std::string> certs;
  for (uint64_t m = 1; m <= 3; ++m)
    certs.push_back(MakeCertificate(hq_seed_, key_id_, m, device_pk_, 2'000'000'000));
  auto scan = [&](int i) { return Outcome(*v, MakeDynamicCode(certs[i], device_seed_, t), t); };
  ASSERT_EQ(scan(0), "ok");  // verify #1: [0]
  ASSERT_EQ(scan(1), "ok");  // verify #2: [1, 0]
  ASSERT_EQ(scan(0), "ok");  // hit:       [0, 1]
  ASSERT_EQ(scan(2), "ok");  // verify #3: [2, 0], 1 evicted
  EXPECT_EQ(v->stats().certificate_cache_size, 2u);
  EXPECT_EQ(v->stats().certificate_verifications, 3u);
  ASSERT_EQ(scan(0), "ok");  // still cached
  EXPECT_EQ(v->stats().certificate_verifications, 3u);
  ASSERT_EQ(scan(1), "ok");  // evicted: verified again
  EXPECT_EQ(v->stats().certificate_verifications, 4u);
  EXPECT_EQ(v->stats().certificate_cache_size, 2u);
}

TEST_F(CodesTest, ConcurrentIdentifyAgrees) {
  CodesConfig cfg = DefaultConfig();
  cfg.certificate_cache_capacity = 3;  // small, so threads evict entries others are using
  auto v = MakeVerifier(cfg);
  const uint32_t t = 1'795'000'000;
  std::vector<std::string> codes, bad;
  for (uint64_t m = 1; m <= 6; ++m) {
    std::string cert = MakeCertificate(hq_seed_, key_id_, m, device_pk_, 2'000'000'000);
    codes.push_back(MakeDynamicCode(cert, device_seed_, t));
    std::string forged = cert;
    forged[9] = static_cast<char>(forged[9] ^ 1);
    bad.push_back(MakeDynamicCode(forged, device_seed_, t));
  }
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int th = 0; th < 4; ++th) {
    threads.emplace_back([&, th] {
      for (int i = 0; i < 60; ++i) {
        size_t k = static_cast<size_t>(i + th) % codes.size();
        auto r = v->Identify(codes[k], t, kNotRevoked);
        if (!r.ok() || r->member_id != k + 1) ++failures;
        if (v->Identify(bad[k], t, kNotRevoked).status().code() != ErrorCode::kCodeSignatureInvalid)
          ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_LE(v->stats().certificate_cache_size, 3u);
}

}  // namespace
}  // namespace loyalty::codes
