// HqService over a real SQLite file: the admin API's shapes and codes, uploads and chains,
// conflicts, balances, expiry, the terminal routes and reconciliation.
#include "loyalty/hq/service.h"

#include <fstream>
#include <iterator>

#include "hq_test_util.h"
#include "loyalty/base/hash.h"
#include "loyalty/codes/codes.h"
#include "loyalty/pg/pg.h"
#include "loyalty/recon/protocol.h"
#include "loyalty/recon/recon.h"
#include "loyalty/sqlite/sqlite.h"

namespace loyalty::hq::testing {
namespace {

using nlohmann::json;

class HqServiceTest : public HqFixture {};

TEST_F(HqServiceTest, HealthNeedsNoTokenAndAdminRoutesDo) {
  auto r = Call("GET", "/v1/health", "", false);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(J(r), json({{"status", "ok"}}));
  r = Call("POST", "/v1/members", json{{"name", "x"}}, false);
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(J(r)["error"]["code"], "unauthorized");
  EXPECT_EQ(Call("GET", "/v1/nothing").status, 404);
}

TEST_F(HqServiceTest, CreateMemberShapesAndCodes) {
  auto r = Call("POST", "/v1/members",
                json{{"member_id", "1001"},
                     {"name", "张三"},
                     {"phone", "13812345678"},
                     {"birthday", "03-09"},
                     {"tier", "vip"},
                     {"identities", {{{"channel", "wechat"}, {"external_id", "123456789012"}}}}});
  ASSERT_EQ(r.status, 201) << r.body;
  json j = J(r);
  EXPECT_EQ(j["member_id"], "1001");
  std::string card = j["card_number"];
  EXPECT_EQ(card.size(), 16u);
  EXPECT_EQ(card.substr(0, 2), "88");
  EXPECT_TRUE(codes::IsLuhnValid(card));

  // The same member id again, and an identity another member holds: 409.
  r = Call("POST", "/v1/members", json{{"member_id", "1001"}, {"name", "李四"}});
  EXPECT_EQ(r.status, 409);
  r = Call("POST", "/v1/members",
           json{{"name", "李四"},
                {"identities", {{{"channel", "wechat"}, {"external_id", "123456789012"}}}}});
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(J(r)["error"]["code"], "identity_conflict");
  r = Call("POST", "/v1/members", json{{"name", "李四"}, {"card_number", card}});
  EXPECT_EQ(r.status, 409);
  // Bad inputs.
  EXPECT_EQ(Call("POST", "/v1/members", json{{"phone", "13812345678"}}).status, 400);  // no name
  // A phone as typed (docs/hq.md): 5..20 digits, 1..32 characters of digits and separators.
  for (const char* bad : {"1234", "138 1234 5678 ext 9", "138\n12345678", "138/1234/5678",
                          "123456789012345678901", "+86 (138) 1234-5678 -- -- -- -- --"}) {
    auto b = Call("POST", "/v1/members", json{{"name", "a"}, {"phone", bad}});
    EXPECT_EQ(b.status, 400) << bad;
    EXPECT_EQ(J(b)["error"]["code"], "bad_request") << bad;
  }
  for (const char* good : {"12345", "12345678901234567890", "+86 (138) 1234-5678 -- -- ----"})
    EXPECT_EQ(Call("POST", "/v1/members", json{{"name", "a"}, {"phone", good}}).status, 201)
        << good;
  EXPECT_EQ(Call("POST", "/v1/members", json{{"name", "a"}, {"birthday", "13-01"}}).status, 400);
  EXPECT_EQ(Call("POST", "/v1/members", json{{"name", "a"}, {"birthday", "02-30"}}).status, 400);
  EXPECT_EQ(Call("POST", "/v1/members", json{{"name", "a"}, {"tier", "gold"}}).status, 400);
  EXPECT_EQ(
      Call("POST", "/v1/members", json{{"name", "a"}, {"card_number", "8800000000000001"}}).status,
      400);
  EXPECT_EQ(Call("POST", "/v1/members", "not json").status, 400);
  // Member ids are 1 to 18 digits (docs/hq.md): the edges, and 2^63 - 1, 2^63, 2^64 - 1.
  EXPECT_EQ(Call("POST", "/v1/members", json{{"member_id", "0"}, {"name", "a"}}).status, 400);
  auto big = Call("POST", "/v1/members", json{{"member_id", "999999999999999999"}, {"name", "a"}});
  EXPECT_EQ(big.status, 201) << big.body;
  EXPECT_EQ(J(big)["member_id"], "999999999999999999");
  EXPECT_EQ(Member("999999999999999999")["member_id"], "999999999999999999");
  for (const char* id : {"1000000000000000000", "9223372036854775807", "9223372036854775808",
                         "18446744073709551615"}) {
    auto r2 = Call("POST", "/v1/members", json{{"member_id", id}, {"name", "a"}});
    EXPECT_EQ(r2.status, 400) << id << ": " << r2.body;
    EXPECT_EQ(J(r2)["error"]["code"], "bad_request") << id;
  }

  json v = Member("1001");
  EXPECT_EQ(v, json({{"member_id", "1001"},
                     {"tier", "vip"},
                     {"status", "active"},
                     {"balance", 0},
                     {"entries", 0},
                     {"month_spend_cents", 0},
                     {"phone_lookup_consent", false},
                     {"conflicts", json::array()}}));
  EXPECT_EQ(Call("GET", "/v1/members/999").status, 404);
  EXPECT_EQ(J(Call("GET", "/v1/members/999"))["error"]["code"], "member_unknown");
}

// Phone look-up with consent (docs/pos-api.md, "Phone look-up"): the store's key on the last
// changes page, the store-keyed hash for a consenting member only, the online look-up by
// number found with consent and not without, consent withdrawn reaching the terminal, and
// the per-terminal limit.
TEST_F(HqServiceTest, PhoneLookupNeedsConsent) {
  const PiiCipher pii = PiiCipher::FromKey(std::string(32, 'k'));
  const std::string yes = CreateMember(
      {{"name", "钱七"}, {"phone", "+86 139-1234-8765"}, {"phone_lookup_consent", true}});
  const std::string no = CreateMember({{"name", "孙八"}, {"phone", "13700001111"}});
  auto changes = [&] {
    auto ch = sync::ParseMessage<sync::ChangesResponse>(
        Call("GET", "/v1/sync/T01/changes", "", false).body);
    EXPECT_TRUE(ch.ok());
    return ch.ok() ? *ch : sync::ChangesResponse{};
  };
  auto ch = changes();
  ASSERT_TRUE(ch.phone_key.has_value());
  const int64_t key_id = ch.phone_key->key_id;
  EXPECT_EQ(key_id, kNowMs / 1000 / (30 * 86400) + 1);
  EXPECT_EQ(ch.phone_key->key, pii.StorePhoneKey(kStore, key_id));
  EXPECT_NE(ch.phone_key->key, pii.StorePhoneKey("S002", key_id));      // per store
  EXPECT_NE(ch.phone_key->key, pii.StorePhoneKey(kStore, key_id + 1));  // per period
  ASSERT_EQ(ch.members.size(), 2u);
  for (const auto& m : ch.members) {
    if (std::to_string(m.member_id) == yes) {
      EXPECT_EQ(m.phone_key_id, key_id);
      // What a till computes from the number as typed, in any of its forms.
      EXPECT_EQ(m.phone_hash, KeyedHashHex(ch.phone_key->key, "13912348765"));
      EXPECT_EQ(m.phone_hash, StorePhoneHash(ch.phone_key->key, "0086 13912348765"));
    } else {
      EXPECT_EQ(m.phone_hash, "");
      EXPECT_EQ(m.phone_key_id, 0);
    }
  }

  auto ask = [&](const std::string& digits) {
    sync::MembersRequest req;
    req.identities.emplace();
    req.phone = digits;
    return Call("POST", "/v1/sync/T01/members", sync::SerializeMessage(req), false);
  };
  auto found = sync::ParseMessage<sync::MembersResponse>(ask("13912348765").body);
  ASSERT_TRUE(found.ok());
  ASSERT_EQ(found->members.size(), 1u);
  EXPECT_EQ(std::to_string(found->members[0].member_id), yes);
  auto none = sync::ParseMessage<sync::MembersResponse>(ask("13700001111").body);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->members.empty());  // a phone, but no consent
  none = sync::ParseMessage<sync::MembersResponse>(ask("13600000000").body);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->members.empty());

  // Consent withdrawn: the member's snapshot changes and carries no hash; HQ finds nobody.
  auto r = Call("PUT", "/v1/members/" + yes + "/phone-lookup-consent", json{{"consent", false}});
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(J(r), json({{"member_id", yes}, {"phone_lookup_consent", false}}));
  EXPECT_EQ(Member(yes)["phone_lookup_consent"], false);
  auto later = sync::ParseMessage<sync::ChangesResponse>(
      Call("GET", "/v1/sync/T01/changes?cursor=" + ch.cursor, "", false).body);
  ASSERT_TRUE(later.ok());
  ASSERT_EQ(later->members.size(), 1u);
  EXPECT_EQ(later->members[0].phone_hash, "");
  EXPECT_TRUE(sync::ParseMessage<sync::MembersResponse>(ask("13912348765").body)->members.empty());
  EXPECT_EQ(
      Call("PUT", "/v1/members/" + yes + "/phone-lookup-consent", json{{"consent", "yes"}}).status,
      400);
  EXPECT_EQ(Call("PUT", "/v1/members/999/phone-lookup-consent", json{{"consent", true}}).status,
            404);

  // 60 online look-ups an hour per terminal (4 made above); then 429, another terminal not.
  for (int i = 4; i < 60; ++i) EXPECT_EQ(ask("13600000000").status, 200) << i;
  auto limited = ask("13600000000");
  EXPECT_EQ(limited.status, 429);
  EXPECT_EQ(J(limited)["error"]["code"], "rate_limited");
  EXPECT_EQ(Call("POST", "/v1/sync/T02/hello", Hello("T02"), false).status, 200);
  EXPECT_EQ(Call("POST", "/v1/sync/T02/members",
                 sync::SerializeMessage(sync::MembersRequest{
                     {}, std::vector<sync::IdentityKey>{}, std::string("13600000000")}),
                 false)
                .status,
            200);
  clock_.set_now_ms(kNowMs + 3'600'001);
  EXPECT_EQ(ask("13600000000").status, 200);
}

TEST_F(HqServiceTest, UnionIdMergeAddsIdentitiesToOneMember) {
  std::string id = CreateMember(
      {{"name", "王五"}, {"identities", {{{"channel", "wechat_unionid"}, {"external_id", "U1"}}}}});
  auto r = Call("POST", "/v1/members/" + id + "/identities",
                json{{"channel", "alipay"}, {"external_id", "2088"}});
  EXPECT_EQ(r.status, 201);
  r = Call("POST", "/v1/members/" + id + "/identities",
           json{{"channel", "alipay"}, {"external_id", "2088"}});
  EXPECT_EQ(r.status, 200);
  std::string other = CreateMember({{"name", "赵六"}});
  r = Call("POST", "/v1/members/" + other + "/identities",
           json{{"channel", "wechat_unionid"}, {"external_id", "U1"}});
  EXPECT_EQ(r.status, 409);
  EXPECT_NE(J(r)["error"]["message"].get<std::string>().find(id), std::string::npos);
}

TEST_F(HqServiceTest, DeviceCertificateVerifiesWithTheCurrentKey) {
  std::string id = CreateMember();
  std::string device_seed(32, '\x42');
  std::string device_pk = codes::Ed25519PublicFromSeed(device_seed);
  auto r = Call("POST", "/v1/members/" + id + "/devices",
                json{{"device_public_key", Base64UrlEncode(device_pk)}, {"not_after", 1800000000}});
  ASSERT_EQ(r.status, 201) << r.body;
  json j = J(r);
  EXPECT_EQ(j["key_id"], 3);  // the highest key id signs
  auto cert = Base64UrlDecode(j["certificate"].get<std::string>());
  ASSERT_TRUE(cert);
  ASSERT_EQ(cert->size(), 110u);

  codes::CodesConfig cc;
  cc.hq_public_keys[3] = codes::Ed25519PublicFromSeed(HqSeed());
  auto verifier = codes::CodeVerifier::Create(cc);
  ASSERT_TRUE(verifier.ok());
  uint32_t t = 1773547200;
  auto ident = (*verifier)->Identify(codes::MakeDynamicCode(*cert, device_seed, t), t, {});
  ASSERT_TRUE(ident.ok()) << ident.status().ToString();
  EXPECT_EQ(std::to_string(ident->member_id), id);
  EXPECT_EQ(ident->not_after, 1800000000u);

  EXPECT_EQ(
      Call("POST", "/v1/members/" + id + "/devices", json{{"device_public_key", "short"}}).status,
      400);
  EXPECT_EQ(Call("POST", "/v1/members/77/devices",
                 json{{"device_public_key", Base64UrlEncode(device_pk)}})
                .status,
            404);

  // Revocation reaches terminals with the next changes page.
  EXPECT_EQ(Call("POST", "/v1/devices/" + Base64UrlEncode(device_pk) + "/revoke").status, 200);
  EXPECT_EQ(Call("POST", "/v1/devices/" + Base64UrlEncode(device_pk) + "/revoke").status, 200);
  auto ch = sync::ParseMessage<sync::ChangesResponse>(
      Call("GET", "/v1/sync/T01/changes", "", false).body);
  ASSERT_TRUE(ch.ok());
  EXPECT_EQ(ch->revocations, std::vector<std::string>{Base64UrlEncode(device_pk)});
}

TEST_F(HqServiceTest, PiiIsNeverStoredInClear) {
  std::string id =
      CreateMember({{"name", "欧阳明月"}, {"phone", "13912348765"}, {"birthday", "11-30"}});
  auto ch = sync::ParseMessage<sync::ChangesResponse>(
      Call("GET", "/v1/sync/T01/changes", "", false).body);
  ASSERT_TRUE(ch.ok());
  ASSERT_EQ(ch->members.size(), 1u);
  EXPECT_EQ(ch->members[0].display_name, "欧*");
  EXPECT_EQ(ch->members[0].phone, "139****8765");
  EXPECT_EQ(ch->members[0].birthday_month, 11);
  // No consent to phone look-up: no look-up hash leaves HQ (docs/pos-api.md).
  EXPECT_EQ(ch->members[0].phone_hash, "");
  EXPECT_EQ(ch->members[0].phone_key_id, 0);
  service_.reset();
  store_.reset();  // close: WAL checkpointed into the file
  // Every byte the database keeps on disk: the SQLite file, or PostgreSQL's table files and
  // write-ahead log.
  auto raw = loyalty::testing::RawTestHqStoreBytes(dir_);
  ASSERT_TRUE(raw.ok()) << raw.status().ToString();
  const std::string& all = *raw;
  ASSERT_GT(all.size(), 0u);
  EXPECT_EQ(all.find("13912348765"), std::string::npos);
  EXPECT_EQ(all.find("欧阳明月"), std::string::npos);
  EXPECT_EQ(all.find("11-30"), std::string::npos);
  EXPECT_NE(all.find("139****8765"),
            std::string::npos);  // the masked form is what is kept in clear
}

TEST(PiiTest, EncryptionAuthenticatesAndKeyFileIsPrivate) {
  auto dir = TempDir("pii");
  auto key = PiiCipher::LoadOrCreate((dir / "pii.key").string());
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(std::filesystem::file_size(dir / "pii.key"), 32u);
  EXPECT_EQ(std::filesystem::status(dir / "pii.key").permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  std::string blob = key->Encrypt("13812345678", "1/phone");
  EXPECT_EQ(blob.size(), 12u + 11u + 16u);
  EXPECT_NE(blob, key->Encrypt("13812345678", "1/phone"));  // a fresh nonce each time
  EXPECT_EQ(*key->Decrypt(blob, "1/phone"), "13812345678");
  EXPECT_FALSE(key->Decrypt(blob, "2/phone").ok());
  blob[15] ^= 1;
  EXPECT_FALSE(key->Decrypt(blob, "1/phone").ok());
  auto again = PiiCipher::LoadOrCreate((dir / "pii.key").string());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->PhoneHash("138"), key->PhoneHash("138"));
  std::filesystem::permissions(dir / "pii.key", std::filesystem::perms::others_read,
                               std::filesystem::perm_options::add);
  EXPECT_FALSE(PiiCipher::LoadOrCreate((dir / "pii.key").string()).ok());
  EXPECT_EQ(MaskName("张三"), "张*");
  EXPECT_EQ(MaskName("Bob"), "B*");
  // One character shown would be the whole name (hq-and-sync.md: never a full name).
  EXPECT_EQ(MaskName("鑫"), "*");
  EXPECT_EQ(MaskName("A"), "*");
  EXPECT_EQ(MaskName("欧阳"), "欧*");
  EXPECT_EQ(MaskPhone("+86 138-1234-5678"), "138****5678");
  EXPECT_EQ(MaskPhone("0086 13812345678"), "138****5678");
  EXPECT_EQ(MaskPhone("+852 9123 4567"), "852****4567");
  EXPECT_EQ(MaskPhone("13812345678"), "138****5678");
  EXPECT_EQ(MaskPhone("12345"), "***45");
  std::filesystem::remove_all(dir);
}

// The daily job's timer: an hour, or one second past the next local midnight when that is
// sooner (lots expire at the end of a local day, tiers change with the local month).
TEST(DailyJobTimer, RunsOneSecondAfterLocalMidnightOrWithinTheHour) {
  auto sh = TimeZone::Load("Asia/Shanghai");
  ASSERT_TRUE(sh.ok());
  const int64_t midnight = *ParseRfc3339("2027-01-31T16:00:00Z");  // 1 Feb 00:00 in Shanghai
  EXPECT_EQ(HqService::SecondsToNextDailyRun(*sh, midnight - 1), 2);
  EXPECT_EQ(HqService::SecondsToNextDailyRun(*sh, midnight - 1800), 1801);
  EXPECT_EQ(HqService::SecondsToNextDailyRun(*sh, midnight - 3599), 3600);
  EXPECT_EQ(HqService::SecondsToNextDailyRun(*sh, midnight - 3600), 3600);
  EXPECT_EQ(HqService::SecondsToNextDailyRun(*sh, midnight - 12 * 3600), 3600);
  EXPECT_EQ(HqService::SecondsToNextDailyRun(*sh, midnight), 3600);  // a day away
  // The run one second after midnight is itself an hour from the next.
  EXPECT_EQ(HqService::SecondsToNextDailyRun(*sh, midnight + 1), 3600);
  // A zone with daylight saving: New York's 23-hour day, midnight to midnight.
  auto ny = TimeZone::Load("America/New_York");
  ASSERT_TRUE(ny.ok());
  const int64_t ny_midnight = *ParseRfc3339("2027-03-15T04:00:00Z");  // after the spring jump
  EXPECT_EQ(HqService::SecondsToNextDailyRun(*ny, ny_midnight - 60), 61);
  EXPECT_EQ(
      HqService::SecondsToNextDailyRun(TimeZone::Utc(), *ParseRfc3339("2027-01-01T23:59:00Z")), 61);
}

TEST_F(HqServiceTest, AdjustmentsAreIdempotent) {
  std::string id = CreateMember();
  json body = {{"adjustment_id", "wx-1"}, {"points", 500}, {"reason", "wechat shop"}};
  auto r1 = Call("POST", "/v1/members/" + id + "/adjustments", body);
  ASSERT_EQ(r1.status, 201) << r1.body;
  auto r2 = Call("POST", "/v1/members/" + id + "/adjustments", body);
  EXPECT_EQ(r2.status, 201);
  EXPECT_EQ(J(r1), J(r2));
  body["points"] = 501;
  EXPECT_EQ(Call("POST", "/v1/members/" + id + "/adjustments", body).status, 409);
  EXPECT_EQ(Member(id)["balance"], 500);
  EXPECT_EQ(Member(id)["entries"], 1);
  EXPECT_EQ(Call("POST", "/v1/members/" + id + "/adjustments",
                 json{{"adjustment_id", "x"}, {"points", 1.5}, {"reason", ""}})
                .status,
            400);
}

TEST_F(HqServiceTest, UploadStatusesAndChainChecks) {
  std::string id = CreateMember();
  uint64_t m = std::stoull(id);
  FakeTerminal t{"T01"};
  sync::UploadRequest up;
  up.entries = {t.Make("earn", m, 100, kNowMs - 5000, "c1"),
                t.Make("earn", m, 50, kNowMs - 4000, "c2")};
  up.checkouts = {MakeCheckout("c1", m, 10000, kNowMs - 5000),
                  MakeCheckout("c2", m, 5000, kNowMs - 4000)};
  auto res = Upload("T01", up);
  ASSERT_EQ(res.results.size(), 2u);
  EXPECT_EQ(res.results[0].status, "created");
  EXPECT_EQ(res.results[1].status, "created");
  // Again: exists, nothing counted twice.
  res = Upload("T01", up);
  EXPECT_EQ(res.results[0].status, "exists");
  EXPECT_EQ(Member(id)["balance"], 150);
  EXPECT_EQ(Member(id)["month_spend_cents"], 15000);

  // The same id with other content: conflict, the first kept.
  sync::UploadRequest changed;
  changed.entries = {up.entries[1]};
  changed.entries[0].points = 5000;
  // Recompute the hash so the content is self-consistent but different.
  changed.entries[0].hash = model::EntryHash(changed.entries[0]);
  res = Upload("T01", changed);
  EXPECT_EQ(res.results[0].status, "conflict");
  EXPECT_EQ(Member(id)["balance"], 150);

  // A hash that does not match the content: invalid, nothing stored.
  sync::UploadRequest bad;
  bad.entries = {t.Make("earn", m, 7, kNowMs - 3000)};
  bad.entries[0].points = 70000;
  res = Upload("T01", bad);
  EXPECT_EQ(res.results[0].status, "invalid");
  EXPECT_EQ(Member(id)["balance"], 150);
  EXPECT_EQ(Member(id)["entries"], 2);
  // Another terminal's entry in T01's upload: invalid too, nothing stored, and recorded
  // against T01.
  FakeTerminal other{"T02"};
  res = Upload("T01", {{other.Make("earn", m, 7, kNowMs - 2500)}, {}, {}});
  EXPECT_EQ(res.results[0].status, "invalid");
  EXPECT_EQ(Member(id)["entries"], 2);
  std::set<std::string> reasons;
  const json t01 = J(Call("GET", "/v1/terminals/T01"));
  for (const auto& c : t01["conflicts"])
    if (c["kind"] == "entry_mismatch" && c["detail"].contains("reason"))
      reasons.insert(c["detail"]["reason"].get<std::string>());  // not the changed entry's
  EXPECT_EQ(reasons,
            (std::set<std::string>{"hash_does_not_match_content", "another_terminals_entry"}));

  // T01's seq 3 never arrived (it was invalid): seq 4 is a gap, stored and counted.
  sync::UploadRequest gap;
  gap.entries = {t.Make("earn", m, 10, kNowMs - 2000, "c3")};
  gap.checkouts = {MakeCheckout("c3", m, 1000, kNowMs - 2000)};
  res = Upload("T01", gap);
  EXPECT_EQ(res.results[0].status, "created");
  EXPECT_EQ(Member(id)["balance"], 160);

  auto view = J(Call("GET", "/v1/terminals/T01"));
  EXPECT_EQ(view["terminal_id"], "T01");
  EXPECT_EQ(view["entries"], 3);
  EXPECT_EQ(view["checkouts"], 3);
  EXPECT_EQ(view["last_seq"], 4);
  EXPECT_EQ(view["chain_ok"], false);
  std::set<std::string> kinds;
  for (const auto& c : view["conflicts"]) kinds.insert(c["kind"]);
  EXPECT_EQ(kinds, (std::set<std::string>{"entry_mismatch", "chain_gap"}));
  EXPECT_EQ(Call("GET", "/v1/terminals/T99").status, 404);
  // The gap's entry is the member's: the member view lists it too.
  std::set<std::string> member_kinds;
  const json member_view = Member(id);
  for (const auto& c : member_view["conflicts"]) member_kinds.insert(c["kind"]);
  EXPECT_TRUE(member_kinds.count("chain_gap")) << member_view.dump();
}

TEST_F(HqServiceTest, RestoredTerminalForksAndBothBranchesCount) {
  uint64_t m = std::stoull(CreateMember());
  FakeTerminal t{"T01"};
  sync::UploadRequest up;
  up.entries = {t.Make("earn", m, 100, kNowMs - 9000, "c1"),
                t.Make("earn", m, 20, kNowMs - 8000, "c2")};
  up.checkouts = {MakeCheckout("c1", m, 10000, kNowMs - 9000),
                  MakeCheckout("c2", m, 2000, kNowMs - 8000)};
  Upload("T01", up);
  // Restored from a backup taken after seq 1: the next commit is another seq 2.
  FakeTerminal restored{"T01"};
  restored.seq = 1;
  restored.head_hash = up.entries[0].hash;
  sync::UploadRequest fork;
  fork.entries = {restored.Make("earn", m, 7, kNowMs - 1000, "c3")};
  fork.checkouts = {MakeCheckout("c3", m, 700, kNowMs - 1000)};
  auto res = Upload("T01", fork);
  EXPECT_EQ(res.results[0].status, "created");
  EXPECT_EQ(Member(std::to_string(m))["balance"], 127);
  auto view = J(Call("GET", "/v1/terminals/T01"));
  ASSERT_EQ(view["conflicts"].size(), 1u);
  EXPECT_EQ(view["conflicts"][0]["kind"], "chain_fork");
  EXPECT_EQ(view["chain_ok"], false);
  // The forked entry is the member's: the member view lists the fork too.
  auto member_view = Member(std::to_string(m));
  ASSERT_EQ(member_view["conflicts"].size(), 1u) << member_view.dump();
  EXPECT_EQ(member_view["conflicts"][0]["kind"], "chain_fork");
}

// A fork is reported once, where the branches part: the restored branch's later entries, at
// seqs the lost branch also holds, follow their own branch and are no new fork (one report
// for each of them flooded the member views of whoever bought next). A terminal restored
// from an empty disk forks at seq 1, once. An entry at such a seq that follows nothing is
// still a gap.
TEST_F(HqServiceTest, AForkIsReportedOnceWhereTheBranchesPart) {
  uint64_t m = std::stoull(CreateMember());
  auto kinds = [&](const std::string& tid) {
    std::multiset<std::string> out;
    const json view = J(Call("GET", "/v1/terminals/" + tid));
    for (const auto& c : view["conflicts"]) out.insert(c["kind"]);
    return out;
  };
  auto sell = [&](FakeTerminal& t, int n, const std::string& tag) {
    sync::UploadRequest up;
    for (int i = 0; i < n; ++i) {
      const std::string c = tag + std::to_string(i);
      const int64_t at = kNowMs - 9000 + t.seq * 10;
      up.entries.push_back(t.Make("earn", m, 1, at, c));
      up.checkouts.push_back(MakeCheckout(c, m, 100, at));
    }
    std::vector<std::string> got;
    for (const auto& r : Upload(t.id, up).results) got.push_back(r.status);
    EXPECT_EQ(got, std::vector<std::string>(static_cast<size_t>(n), "created")) << tag;
  };
  // Restored from a backup after seq 1, the lost branch at seqs 2..6: the restored one sells
  // seqs 2..8, in two uploads.
  FakeTerminal t{"T01"};
  sell(t, 1, "a");
  FakeTerminal restored = t;
  sell(t, 5, "lost");
  sell(restored, 4, "r");
  sell(restored, 3, "s");
  EXPECT_EQ(kinds("T01"), std::multiset<std::string>{"chain_fork"});
  // An entry at seq 4 (both branches hold one) that follows no entry at seq 3: a gap.
  FakeTerminal stray{"T01"};
  stray.seq = 3;
  stray.head_hash = std::string(32, '\x5a');
  sell(stray, 1, "x");
  EXPECT_EQ(kinds("T01"), (std::multiset<std::string>{"chain_fork", "chain_gap"}));
  // A lost disk: the chain starts again at seq 1.
  FakeTerminal before{"T02"}, after{"T02"};
  sell(before, 6, "b");
  sell(after, 8, "n");
  EXPECT_EQ(kinds("T02"), std::multiset<std::string>{"chain_fork"});
  EXPECT_EQ(Member(std::to_string(m))["balance"], 1 + 5 + 4 + 3 + 1 + 6 + 8);
}

// An upload's chain checks read the entries around its seqs in one statement when its seqs
// span at most 2 x 500 (upload.cc, ReadBatchEntries), one seq at a time otherwise. Both
// reads must give the same answers: the same fork, gap and linked entries, whatever the span.
TEST_F(HqServiceTest, ChainChecksAnswerAlikeWhenAnUploadSpansMoreSeqsThanOneRead) {
  uint64_t m = std::stoull(CreateMember());
  struct Answers {
    std::vector<std::string> statuses;
    std::map<std::string, std::string> conflict_of_entry;  // entry_id → kind
    int64_t balance = 0;
  };
  int64_t balance_before = 0;
  auto play = [&](const std::string& tid, int64_t gap_seq,
                  std::vector<std::string>* entry_order) -> Answers {
    FakeTerminal t{tid};
    sync::UploadRequest first;
    for (int i = 1; i <= 3; ++i) {
      const std::string c = tid + "-c" + std::to_string(i);
      first.entries.push_back(t.Make("earn", m, 10, kNowMs - 9000 + i, c));
      first.checkouts.push_back(MakeCheckout(c, m, 1000, kNowMs - 9000 + i));
    }
    auto res = Upload(tid, first);
    for (const auto& r : res.results) EXPECT_EQ(r.status, "created") << tid;
    balance_before = Member(std::to_string(m))["balance"].get<int64_t>();
    // One upload: another seq 2 (a restored terminal), seq 4 after the stored seq 3, and
    // an entry at gap_seq whose prev_hash links to nothing.
    FakeTerminal restored{tid};
    restored.seq = 1;
    restored.head_hash = first.entries[0].hash;
    FakeTerminal lost{tid};
    lost.seq = gap_seq - 1;
    lost.head_hash = std::string(32, '\x5a');
    sync::UploadRequest next;
    next.entries = {restored.Make("earn", m, 1, kNowMs - 5000, tid + "-c4"),
                    t.Make("earn", m, 2, kNowMs - 4000, tid + "-c5"),
                    lost.Make("earn", m, 4, kNowMs - 3000, tid + "-c6")};
    next.checkouts = {MakeCheckout(tid + "-c4", m, 100, kNowMs - 5000),
                      MakeCheckout(tid + "-c5", m, 200, kNowMs - 4000),
                      MakeCheckout(tid + "-c6", m, 400, kNowMs - 3000)};
    entry_order->clear();
    for (const auto& e : next.entries) entry_order->push_back(e.entry_id);
    Answers a;
    for (const auto& r : Upload(tid, next).results) a.statuses.push_back(r.status);
    const json view = J(Call("GET", "/v1/terminals/" + tid));
    for (const auto& c : view["conflicts"])
      a.conflict_of_entry[c["detail"].value("entry_id", "")] = c["kind"];
    a.balance = Member(std::to_string(m))["balance"].get<int64_t>() - balance_before;
    return a;
  };
  std::vector<std::string> near_ids, far_ids;
  Answers near = play("T01", 9, &near_ids);   // seqs 1..9: one read
  Answers far = play("T02", 1600, &far_ids);  // seqs 1..1600: one read per seq
  for (const Answers* a : {&near, &far}) {
    EXPECT_EQ(a->statuses, (std::vector<std::string>{"created", "created", "created"}));
    EXPECT_EQ(a->balance, 7);  // every entry kept and applied
  }
  EXPECT_EQ(near.conflict_of_entry, (std::map<std::string, std::string>{
                                        {near_ids[0], "chain_fork"}, {near_ids[2], "chain_gap"}}));
  EXPECT_EQ(far.conflict_of_entry, (std::map<std::string, std::string>{{far_ids[0], "chain_fork"},
                                                                       {far_ids[2], "chain_gap"}}));
  EXPECT_EQ(J(Call("GET", "/v1/terminals/T02"))["last_seq"], 1600);
}

// Health is what a load balancer asks: a process whose database does not answer says so
// (503), and says ok again once it does.
TEST_F(HqServiceTest, HealthFailsWhileTheDatabaseDoesNotAnswer) {
  auto ok = Call("GET", "/v1/health", "", false);
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(J(ok), (json{{"status", "ok"}}));
  const std::string sql = "SELECT value FROM meta WHERE key = ?";
  sqlite::InjectStepFault({sql, 1, -1, SQLITE_IOERR});
  pg::InjectExecFault({sql, 1, -1, "08006"});
  auto down = Call("GET", "/v1/health", "", false);
  const int fired = sqlite::StepFaultsFired() + pg::ExecFaultsFired();
  sqlite::ClearStepFaults();
  pg::ClearExecFaults();
  EXPECT_GT(fired, 0);
  EXPECT_EQ(down.status, 503) << down.body;
  EXPECT_EQ(J(down)["error"]["code"], "unavailable") << down.body;
  EXPECT_EQ(Call("GET", "/v1/health", "", false).status, 200);
}

TEST_F(HqServiceTest, CrossStoreDoubleSpendGoesNegativeAndReuseIsReported) {
  std::string id = CreateMember();
  uint64_t m = std::stoull(id);
  ASSERT_EQ(Call("POST", "/v1/members/" + id + "/adjustments",
                 json{{"adjustment_id", "a1"}, {"points", 1000}, {"reason", "seed"}})
                .status,
            201);
  ASSERT_EQ(Call("POST", "/v1/coupons",
                 json{{"coupon_id", "CP1"},
                      {"member_id", id},
                      {"kind", "amount_off"},
                      {"value_cents", 1000},
                      {"min_spend_cents", 10000},
                      {"valid_from", "2026-03-01T00:00:00Z"},
                      {"valid_to", 1790000000}})
                .status,
            201);
  std::string code = std::string(64, 'e');
  // Both terminals download the member (balance 1000), then each redeems 1000 offline.
  ASSERT_EQ(Call("GET", "/v1/sync/T01/changes", "", false).status, 200);
  ASSERT_EQ(Call("GET", "/v1/sync/T02/changes", "", false).status, 200);
  clock_.advance_ms(1000);
  rules::Coupon cp1;
  cp1.coupon_id = "CP1";
  cp1.value_cents = 1000;
  cp1.min_spend_cents = 10000;
  FakeTerminal a{"T01"}, b{"T02"};
  sync::UploadRequest ua, ub;
  Sale sa = PricedSale(a, m, "ca", Basket(2000), kNowMs + 100, 1000, code, "member", cp1);
  Sale sb = PricedSale(b, m, "cb", Basket(2000), kNowMs + 150, 1000, code, "member", cp1);
  ASSERT_EQ(sa.checkout.points_earned, 10);
  ua.entries = sa.entries;
  ua.checkouts = {sa.checkout};
  ub.entries = sb.entries;
  ub.checkouts = {sb.checkout};
  Upload("T01", ua);
  Upload("T02", ub);
  Upload("T02", ub);  // again: nothing new
  json v = Member(id);
  EXPECT_EQ(v["balance"], 1000 - 2000 + 20);
  std::multiset<std::string> kinds;
  for (const auto& c : v["conflicts"]) kinds.insert(c["kind"]);
  EXPECT_EQ(kinds, (std::multiset<std::string>{"code_reused", "coupon_reused"}));
  for (const auto& c : v["conflicts"]) {
    EXPECT_EQ(c["detail"]["checkouts"].size(), 2u);
    EXPECT_TRUE(ParseRfc3339(c["at"].get<std::string>()));
  }
  // Both terminals see the conflicts; their chains are fine.
  EXPECT_EQ(J(Call("GET", "/v1/terminals/T01"))["conflicts"].size(), 2u);
  EXPECT_EQ(J(Call("GET", "/v1/terminals/T02"))["chain_ok"], true);
  // The balance is the sum of all entries, and the snapshot shows the debt.
  auto sum = store_->SumMemberPoints(m);
  EXPECT_EQ(*sum, -980);
  auto snap = sync::ParseMessage<sync::MembersResponse>(
      Call("POST", "/v1/sync/T01/members", json{{"member_ids", {id, "424242"}}}, false).body);
  ASSERT_TRUE(snap.ok());
  ASSERT_EQ(snap->members.size(), 1u);
  EXPECT_EQ(snap->members[0].balance, -980);
  int64_t lots = 0;
  for (const auto& l : snap->members[0].lots) lots += l.points;
  EXPECT_EQ(lots, -980);
  EXPECT_EQ(snap->members[0].terminal_seq, 2);
}

TEST_F(HqServiceTest, FreezeUnfreezeAndTier) {
  std::string id = CreateMember();
  uint64_t m = std::stoull(id);
  FakeTerminal t{"T01"};
  sync::UploadRequest up;
  up.entries = {t.Make("earn", m, 6000, kNowMs - 100, "c1"),
                t.Make("freeze", m, 0, kNowMs - 100, "c1", R"({"reason":"velocity"})")};
  up.checkouts = {MakeCheckout("c1", m, 600000, kNowMs - 100)};
  Upload("T01", up);
  json v = Member(id);
  EXPECT_EQ(v["status"], "frozen");
  EXPECT_EQ(v["tier"], "black");  // 6000 yuan this month reaches the black threshold
  clock_.advance_ms(1000);
  EXPECT_EQ(Call("POST", "/v1/members/" + id + "/unfreeze", json{{"reason", "reviewed"}}).status,
            200);
  EXPECT_EQ(Member(id)["status"], "active");
  EXPECT_EQ(Call("POST", "/v1/members/" + id + "/tier", json{{"tier", "vip"}}).status, 200);
  EXPECT_EQ(Call("POST", "/v1/members/" + id + "/tier", json{{"tier", "gold"}}).status, 400);
  v = Member(id);
  EXPECT_EQ(v["tier"], "vip");
  // earn, HQ's own velocity freeze (6000 > 5000 in the hour), the terminal's freeze,
  // unfreeze, tier_change
  EXPECT_EQ(v["entries"], 5);
  EXPECT_EQ(v["balance"], 6000);
  auto snap = sync::ParseMessage<sync::MembersResponse>(
      Call("POST", "/v1/sync/T01/members", json{{"member_ids", {id}}}, false).body);
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->members[0].unfrozen_at_ms, kNowMs + 1000);
  EXPECT_EQ(snap->members[0].month_spend_cents, 600000);
}

// At the first daily run of a new month every tier follows the month's spend: a walk of the
// whole chain, 500 members a read, by member id (the tiers it writes move members in the
// change sequence, never in the walk). Members at both ends of every page are reached once.
TEST_F(HqServiceTest, TheMonthlyTierWalkReachesEveryPage) {
  std::vector<std::string> ids;
  for (int i = 0; i < 1101; ++i) {
    char phone[16];
    std::snprintf(phone, sizeof phone, "138%08d", i);
    ids.push_back(CreateMember({{"name", "张三"}, {"phone", phone}}));
  }
  const json fresh = Member(ids[0])["tier"];
  auto daily_job = [&](int64_t now_s) {
    return Call("POST", "/v1/admin/expire?now=" + std::to_string(now_s)).status;
  };
  ASSERT_EQ(daily_job(kNowMs / 1000), 200);  // this month recorded
  const std::vector<size_t> moved{0, 499, 500, 999, 1000, 1100};
  for (size_t k : moved)
    ASSERT_EQ(Call("POST", "/v1/members/" + ids[k] + "/tier", json{{"tier", "vip"}}).status, 200);
  ASSERT_EQ(daily_job(kNowMs / 1000 + 3600), 200);  // the same month: tiers stay
  for (size_t k : moved) EXPECT_EQ(Member(ids[k])["tier"], "vip") << k;
  ASSERT_EQ(daily_job(kNowMs / 1000 + 40 * 86400), 200);  // a new month: no spend in it yet
  for (size_t k : moved) EXPECT_EQ(Member(ids[k])["tier"], fresh) << k;
  EXPECT_EQ(Member(ids[1])["tier"], fresh);
}

TEST_F(HqServiceTest, ExpiryJobWritesExpireEntries) {
  std::string id = CreateMember();
  uint64_t m = std::stoull(id);
  FakeTerminal t{"T01"};
  sync::UploadRequest up;
  // Earned 2026-03-15 (+08:00): valid to the end of 2027-03 local.
  Sale s1 = PricedSale(t, m, "c1", Basket(30000), kNowMs);
  Sale s2 = PricedSale(t, m, "c2", Basket(20000), kNowMs + 1000, 100, std::string(64, 'd'));
  up.entries = {s1.entries[0], s2.entries[0], s2.entries[1]};
  up.checkouts = {s1.checkout, s2.checkout};
  auto res = Upload("T01", up);
  for (const auto& r : res.results) EXPECT_EQ(r.status, "created");
  int64_t end_of_march_2027 = 1806508799;  // 2027-03-31T23:59:59+08:00
  auto r = Call("POST", "/v1/admin/expire?now=" + std::to_string(end_of_march_2027));
  EXPECT_EQ(J(r), json({{"members", 0}, {"points", 0}}));
  r = Call("POST", "/v1/admin/expire?now=" + std::to_string(end_of_march_2027 + 1));
  EXPECT_EQ(J(r), json({{"members", 1}, {"points", 300 + 199 - 100}}));
  r = Call("POST", "/v1/admin/expire?now=" + std::to_string(end_of_march_2027 + 2));
  EXPECT_EQ(J(r)["points"], 0);  // idempotent
  json v = Member(id);
  EXPECT_EQ(v["balance"], 0);
  EXPECT_EQ(v["entries"], 4);
  EXPECT_EQ(*store_->SumMemberPoints(m), 0);
  EXPECT_EQ(Call("POST", "/v1/admin/expire?now=x").status, 400);
}

// A member with many lots, every other one expired: the job takes exactly the expired ones
// (their points, in one expire entry) and leaves the rest as they were.
TEST_F(HqServiceTest, ExpiryJobEmptiesExactlyTheExpiredOfManyLots) {
  const uint64_t m = std::stoull(CreateMember());
  const int64_t now_s = kNowMs / 1000;
  constexpr int kLots = 20'000;
  ASSERT_TRUE(store_
                  ->Transaction([&]() -> Status {
                    for (int k = 0; k < kLots; ++k) {
                      const int64_t expires = k % 2 ? now_s - 10 - k : now_s + 10 + k;
                      model::Lot l{0, m, 2, 2, now_s - 400 * 86'400, expires, "e"};
                      if (auto lot = store_->AddLot(l); !lot.ok()) return lot.status();
                    }
                    return Status::Ok();
                  })
                  .ok());
  auto r = Call("POST", "/v1/admin/expire?now=" + std::to_string(now_s));
  EXPECT_EQ(J(r), json({{"members", 1}, {"points", 2 * (kLots / 2)}}));
  auto lots = store_->Lots(m);
  ASSERT_TRUE(lots.ok());
  int64_t left = 0;
  for (const auto& l : *lots) {
    if (l.remaining == 0) continue;
    EXPECT_GT(l.expires_at_s, now_s);
    EXPECT_EQ(l.remaining, 2);
    ++left;
  }
  EXPECT_EQ(left, kLots / 2);
  EXPECT_EQ(J(Call("POST", "/v1/admin/expire?now=" + std::to_string(now_s)))["points"], 0);
}

// A changes page gives each member this month's spend: kept ones are read, the others
// (a first sync's pages: members no write has summed yet) summed at once and kept.
TEST_F(HqServiceTest, ChangesPageSumsTheSpendsNotKeptAndKeepsThem) {
  std::vector<uint64_t> m;
  for (int i = 0; i < 4; ++i) m.push_back(std::stoull(CreateMember()));
  FakeTerminal t{"T01"};
  sync::UploadRequest up;
  const std::vector<std::pair<size_t, int64_t>> sales = {
      {0, 10000}, {0, 5000}, {1, 7000}, {3, 100}};
  for (size_t i = 0; i < sales.size(); ++i) {
    const std::string c = "c" + std::to_string(i);
    const auto [who, cents] = sales[i];
    up.entries.push_back(t.Make("earn", m[who], cents / 100, kNowMs - 5000 + int64_t(i), c));
    up.checkouts.push_back(MakeCheckout(c, m[who], cents, kNowMs - 5000 + int64_t(i)));
  }
  for (const auto& r : Upload("T01", up).results) ASSERT_EQ(r.status, "created");
  // Member 3's spend stays kept; the others' rows go, as if never summed.
  ASSERT_TRUE(loyalty::testing::ExecOnTestHqStore(
                  dir_, "DELETE FROM spend_totals WHERE member_id <> " + std::to_string(m[3]))
                  .ok());
  auto kept_rows = [&] {
    auto n = loyalty::testing::QueryIntOnTestHqStore(dir_, "SELECT count(*) FROM spend_totals");
    EXPECT_TRUE(n.ok());
    return n.ok() ? *n : -1;
  };
  ASSERT_EQ(kept_rows(), 1);
  const std::map<uint64_t, int64_t> want = {{m[0], 15000}, {m[1], 7000}, {m[2], 0}, {m[3], 100}};
  for (int pass = 0; pass < 2; ++pass) {  // summed, then read as kept
    // The one-member reads of a spend (Store::MemberSpend's) fail if run: the page must
    // not need them, whichever backend this is.
    const std::string one_kept = "SELECT cents FROM spend_totals WHERE member_id = ?";
    const std::string one_summed = "WHERE c.member_id = ?1";
    for (const auto& sql : {one_kept, one_summed}) {
      sqlite::InjectStepFault({sql, 1, -1, SQLITE_IOERR});
      pg::InjectExecFault({sql, 1, -1, "XX000"});
    }
    auto r = Call("GET", "/v1/sync/T01/changes?limit=100", "", false);
    EXPECT_EQ(sqlite::StepFaultsFired() + pg::ExecFaultsFired(), 0);
    sqlite::ClearStepFaults();
    pg::ClearExecFaults();
    ASSERT_EQ(r.status, 200) << r.body;
    auto ch = sync::ParseMessage<sync::ChangesResponse>(r.body);
    ASSERT_TRUE(ch.ok()) << ch.status().ToString();
    std::map<uint64_t, int64_t> got;
    for (const auto& s : ch->members) got[s.member_id] = s.month_spend_cents;
    EXPECT_EQ(got, want) << "pass " << pass;
    EXPECT_EQ(kept_rows(), 4) << "pass " << pass;  // every member's month, 0 included
  }
  auto a = loyalty::testing::QueryIntOnTestHqStore(
      dir_, "SELECT cents FROM spend_totals WHERE member_id = " + std::to_string(m[0]));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, 15000);
}

TEST_F(HqServiceTest, ChangesPageWithCursors) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(CreateMember({{"name", "m" + std::to_string(i)}}));
  ASSERT_EQ(Call("POST", "/v1/coupons",
                 json{{"coupon_id", "ALL"},
                      {"member_id", "0"},
                      {"kind", "percent_off"},
                      {"bp", 1000},
                      {"min_spend_cents", 0},
                      {"valid_from", 0},
                      {"valid_to", 2000000000}})
                .status,
            201);
  std::set<uint64_t> seen;
  std::string cursor;
  int pages = 0, coupons = 0;
  for (bool more = true; more; ++pages) {
    auto r = Call("GET", "/v1/sync/T01/changes?limit=2&cursor=" + cursor, "", false);
    ASSERT_EQ(r.status, 200) << r.body;
    auto ch = sync::ParseMessage<sync::ChangesResponse>(r.body);
    ASSERT_TRUE(ch.ok()) << ch.status().ToString();
    EXPECT_LE(ch->members.size(), 2u);
    for (const auto& m : ch->members) EXPECT_TRUE(seen.insert(m.member_id).second);
    EXPECT_EQ(ch->identities.size(), ch->members.size());  // each has its card
    coupons += static_cast<int>(ch->coupons.size());
    ASSERT_TRUE(ch->rules);  // HQ publishes its rules (here the defaults)
    EXPECT_EQ((*ch->rules)["version"], "default");
    more = ch->more;
    cursor = ch->cursor;
  }
  EXPECT_EQ(seen.size(), 5u);
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(coupons, 1);
  // Nothing new: an empty page with the same cursor.
  auto ch = sync::ParseMessage<sync::ChangesResponse>(
      Call("GET", "/v1/sync/T01/changes?cursor=" + cursor, "", false).body);
  ASSERT_TRUE(ch.ok());
  EXPECT_TRUE(ch->members.empty());
  EXPECT_EQ(ch->cursor, cursor);
  // A change to one member brings exactly that member.
  Call("POST", "/v1/members/" + ids[2] + "/tier", json{{"tier", "vip"}});
  ch = sync::ParseMessage<sync::ChangesResponse>(
      Call("GET", "/v1/sync/T01/changes?cursor=" + cursor, "", false).body);
  ASSERT_TRUE(ch.ok());
  ASSERT_EQ(ch->members.size(), 1u);
  EXPECT_EQ(std::to_string(ch->members[0].member_id), ids[2]);
  EXPECT_EQ(ch->members[0].tier, "vip");
  EXPECT_EQ(Call("GET", "/v1/sync/T01/changes?limit=0", "", false).status, 400);
  EXPECT_EQ(Call("GET", "/v1/sync/T01/changes?cursor=abc", "", false).status, 400);
}

TEST_F(HqServiceTest, HelloFetchAndTerminalIdentity) {
  uint64_t m = std::stoull(CreateMember());
  auto hello = [&](const std::string& tid) {
    return Call("POST", "/v1/sync/" + tid + "/hello",
                sync::SerializeMessage(sync::HelloRequest{1, "S001", "0.1.0", {0, ""}, 0}), false);
  };
  auto h = sync::ParseMessage<sync::HelloResponse>(hello("T01").body);
  ASSERT_TRUE(h.ok());
  EXPECT_FALSE(h->terminal_known);
  EXPECT_EQ(h->hq_time_ms, kNowMs);
  EXPECT_EQ(h->hq_head, (sync::ChainHead{0, ""}));
  FakeTerminal t{"T01"};
  sync::UploadRequest up;
  up.entries = {t.Make("earn", m, 10, kNowMs, "c1")};
  up.checkouts = {MakeCheckout("c1", m, 1000, kNowMs)};
  sync::Refund rf{"r1", "c1", "", "return", kNowMs + 1, 1000, 10, 0, "{}", {{0, 1}}};
  up.refunds = {rf};
  Upload("T01", up);
  h = sync::ParseMessage<sync::HelloResponse>(hello("T01").body);
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h->terminal_known);
  EXPECT_EQ(h->hq_entries, 1);
  EXPECT_EQ(h->hq_head, (sync::ChainHead{1, HexEncode(up.entries[0].hash)}));
  EXPECT_EQ(J(Call("GET", "/v1/terminals/T01"))["store_id"], "S001");

  auto f = sync::ParseMessage<sync::FetchResponse>(
      Call("POST", "/v1/sync/T01/fetch",
           sync::SerializeMessage(sync::FetchRequest{{up.entries[0].entry_id}}), false)
          .body);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->entries, up.entries);
  EXPECT_EQ(f->checkouts, up.checkouts);
  EXPECT_EQ(f->refunds, up.refunds);
  // Another terminal cannot fetch T01's entries.
  f = sync::ParseMessage<sync::FetchResponse>(
      Call("POST", "/v1/sync/T02/fetch",
           sync::SerializeMessage(sync::FetchRequest{{up.entries[0].entry_id}}), false)
          .body);
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->entries.empty());

  // With a client certificate, only its own terminal's routes.
  peer_ = "T02";
  EXPECT_EQ(hello("T01").status, 403);
  EXPECT_EQ(J(hello("T01"))["error"]["code"], "forbidden");
  EXPECT_EQ(hello("T02").status, 200);
  peer_.reset();
  EXPECT_EQ(hello("_hq").status, 400);
  EXPECT_EQ(hello("bad%20id").status, 400);
  EXPECT_EQ(Call("POST", "/v1/sync/T01/hello", "{}", false).status, 400);
  EXPECT_EQ(Call("POST", "/v1/sync/T01/entries", "{\"entries\":5}", false).status, 400);
}

TEST_F(HqServiceTest, ReconciliationAgainstATerminalSet) {
  uint64_t m = std::stoull(CreateMember());
  FakeTerminal t{"T01"};
  sync::UploadRequest up;
  std::vector<sync::Entry> all;
  for (int i = 0; i < 30; ++i) {
    all.push_back(t.Make("earn", m, 1, kNowMs + i, "c" + std::to_string(i)));
    if (i < 27) up.checkouts.push_back(MakeCheckout("c" + std::to_string(i), m, 100, kNowMs + i));
  }
  up.entries.assign(all.begin(), all.begin() + 27);  // HQ lacks the last three
  Upload("T01", up);

  auto item = [](const sync::Entry& e) {
    recon::Item it;
    it.id = *HexDecode(e.entry_id);
    std::copy(e.hash.begin(), e.hash.end(), it.hash.begin());
    return it;
  };
  recon::MemoryStore mine;
  for (const auto& e : all) ASSERT_TRUE(mine.Add(item(e)).ok());
  recon::Initiator ini(mine);
  auto msg = ini.Start();
  ASSERT_TRUE(msg.ok());
  std::vector<std::string> have, need, mismatched;
  std::optional<std::string> next = *msg;
  int trips = 0;
  while (next && trips++ < 5) {
    auto r = Call("POST", "/v1/sync/T01/recon/entries", *next, false);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.content_type, "application/octet-stream");
    auto n = ini.Next(r.body, &have, &need, &mismatched);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    next = *n;
  }
  EXPECT_EQ(have.size(), 3u);
  EXPECT_TRUE(need.empty());
  EXPECT_TRUE(mismatched.empty());
  EXPECT_EQ(Call("POST", "/v1/sync/T01/recon/entries", "garbage", false).status, 400);

  // Balances: the terminal caches the member with HQ's balance → in sync in one trip.
  recon::MemoryStore balances;
  ASSERT_TRUE(balances.Add(recon::MemberBalanceItem(std::to_string(m), 27, 0)).ok());
  recon::Initiator bi(balances);
  auto r = Call("POST", "/v1/sync/T01/recon/balances", *bi.Start(), false);
  ASSERT_EQ(r.status, 200);
  std::vector<std::string> h2, n2, mm2;
  auto done = bi.Next(r.body, &h2, &n2, &mm2);
  ASSERT_TRUE(done.ok());
  EXPECT_FALSE(*done);
  EXPECT_TRUE(h2.empty() && n2.empty() && mm2.empty());
}

TEST_F(HqServiceTest, CouponsAreIdempotentAndValidated) {
  std::string id = CreateMember();
  json c = {{"coupon_id", "C9"},  {"member_id", id},        {"kind", "amount_off"},
            {"value_cents", 500}, {"min_spend_cents", 100}, {"valid_from", 1},
            {"valid_to", 2}};
  EXPECT_EQ(Call("POST", "/v1/coupons", c).status, 201);
  EXPECT_EQ(Call("POST", "/v1/coupons", c).status, 201);
  c["value_cents"] = 600;
  EXPECT_EQ(Call("POST", "/v1/coupons", c).status, 409);
  c["coupon_id"] = "C10";
  c["kind"] = "percent_off";
  EXPECT_EQ(Call("POST", "/v1/coupons", c).status, 400);  // no bp
  c["bp"] = 10001;
  EXPECT_EQ(Call("POST", "/v1/coupons", c).status, 400);
  c["bp"] = 500;
  c["valid_to"] = 0;
  EXPECT_EQ(Call("POST", "/v1/coupons", c).status, 400);
  c["valid_to"] = 5;
  c["member_id"] = "31337";
  EXPECT_EQ(Call("POST", "/v1/coupons", c).status, 404);
}

// Admin bodies are read by the one strict reader: a refusal names the field at fault, a
// member id may be a decimal string or an integer, a time unix seconds or RFC 3339.
TEST_F(HqServiceTest, AdminBodiesNameTheFieldAtFault) {
  std::string id = CreateMember();
  auto message = [&](const std::string& path, const json& body) {
    auto r = Call("POST", path, body);
    EXPECT_EQ(r.status, 400) << r.body;
    return J(r)["error"]["message"].get<std::string>();
  };
  EXPECT_EQ(message("/v1/members", json::object()), "name is missing");
  EXPECT_EQ(message("/v1/members", json{{"name", ""}}), "name must be 1..256 bytes, got 0");
  EXPECT_EQ(message("/v1/members", json{{"name", "a"}, {"tier", "gold"}}),
            "tier must be one of member, vip, black");
  EXPECT_EQ(message("/v1/members", json{{"name", "a"}, {"member_id", 1.5}}),
            "member_id must be a decimal member id, got a float (1.5)");
  EXPECT_EQ(message("/v1/members", json{{"name", "a"}, {"member_id", "12x"}}),
            "member_id must be a decimal member id");
  EXPECT_EQ(message("/v1/members", json{{"name", "a"}, {"identities", {{{"channel", "wechat"}}}}}),
            "identities[0].external_id is missing");
  EXPECT_EQ(message("/v1/members", json{{"name", "a"}, {"identities", json::array({1})}}),
            "identities[0] must be an object, got an integer");

  json c = {{"coupon_id", "R1"},     {"member_id", std::stoull(id)},
            {"kind", "amount_off"},  {"value_cents", 500},
            {"min_spend_cents", 0},  {"valid_from", "2026-12-01T00:00:00+08:00"},
            {"valid_to", 1893456000}};
  EXPECT_EQ(Call("POST", "/v1/coupons", c).status,
            201);  // an integer member id and an RFC 3339 time
  c["coupon_id"] = "R2";
  c["valid_from"] = "yesterday";
  EXPECT_EQ(message("/v1/coupons", c),
            "valid_from must be unix seconds or an RFC 3339 time, got a string");
  c["valid_from"] = -1;
  EXPECT_EQ(message("/v1/coupons", c), "valid_from must be 0..253402300799, got -1");
  c["valid_from"] = 0;
  c["valid_to"] = int64_t{253402300800};  // 10000-01-01: not a four-digit RFC 3339 year
  EXPECT_EQ(message("/v1/coupons", c), "valid_to must be 0..253402300799, got 253402300800");
  c["valid_to"] = int64_t{253402300799};  // the largest: accepted below
  c["kind"] = "bogo";
  EXPECT_EQ(message("/v1/coupons", c), "kind must be one of amount_off, percent_off");
  c["kind"] = "percent_off";
  EXPECT_EQ(message("/v1/coupons", c), "bp is missing");
  c["bp"] = 500;
  c["member_id"] = -3;
  EXPECT_EQ(message("/v1/coupons", c), "member_id must be a 64-bit unsigned integer, got -3");
  c["member_id"] = 0;  // any member
  EXPECT_EQ(Call("POST", "/v1/coupons", c).status, 201);
  EXPECT_EQ(J(Call("POST", "/v1/coupons", c))["coupon_id"], "R2");  // the same body again

  EXPECT_EQ(
      message("/v1/members/" + id + "/adjustments", json{{"adjustment_id", "a1"}, {"points", 1}}),
      "reason is missing");
  EXPECT_EQ(message("/v1/members/" + id + "/tier", json{{"tier", 2}}),
            "tier must be a string, got an integer");
}

TEST_F(HqServiceTest, StoreEnforcesUniqueEntryIds) {
  FakeTerminal t{"T01"};
  sync::Entry e = t.Make("earn", 1, 1, kNowMs);
  ASSERT_TRUE(store_->InsertEntry(e).ok());
  sync::Entry dup = e;
  dup.terminal_id = "T02";
  Status s = store_->InsertEntry(dup);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), ErrorCode::kConstraint);
  // A rolled-back transaction leaves nothing.
  Status tx = store_->Transaction([&] {
    EXPECT_TRUE(store_->InsertEntry(t.Make("earn", 1, 1, kNowMs)).ok());
    return Status::Error(ErrorCode::kInternal, "abort");
  });
  EXPECT_FALSE(tx.ok());
  EXPECT_EQ(*store_->CountEntries("T01"), 1);
  // Reopening keeps everything (migrations run once).
  Open();
  EXPECT_EQ(*store_->CountEntries("T01"), 1);
}

}  // namespace
}  // namespace loyalty::hq::testing

namespace loyalty::hq::testing {
namespace {

// The sale route (returns at another terminal): a sale HQ holds comes with its member; at
// most kSaleFetchesPerHour a terminal in any trailing hour, then 429 rate_limited and an
// event, so a till cannot walk the chain's sales and members.
TEST_F(HqServiceTest, TheSaleRouteAnswersAndIsLimitedPerTerminalPerHour) {
  uint64_t m = std::stoull(CreateMember());
  FakeTerminal t{"T01"};
  Sale s = PricedSale(t, m, "c1", Basket(10000), kNowMs - 5000);
  Upload("T01", sync::UploadRequest{s.entries, {s.checkout}, {}});
  auto ask = [&](const std::string& tid, const std::string& checkout) {
    return Call("POST", "/v1/sync/" + tid + "/sale",
                sync::SerializeMessage(sync::SaleRequest{"T01", checkout}), false);
  };
  auto found = ask("T02", "c1");
  ASSERT_EQ(found.status, 200) << found.body;
  auto sale = sync::ParseMessage<sync::SaleResponse>(found.body);
  ASSERT_TRUE(sale.ok()) << found.body;
  ASSERT_TRUE(sale->checkout.has_value());
  EXPECT_EQ(sale->checkout->checkout_id, "c1");
  EXPECT_TRUE(sale->checkout->response_json.empty());  // the selling terminal's own
  ASSERT_EQ(sale->members.size(), 1u);
  EXPECT_EQ(sale->members[0].member_id, m);
  auto none = sync::ParseMessage<sync::SaleResponse>(ask("T02", "c-none").body);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->checkout.has_value());
  EXPECT_TRUE(none->members.empty());
  for (size_t i = 2; i < 120; ++i) ASSERT_EQ(ask("T02", "c-" + std::to_string(i)).status, 200) << i;
  auto limited = ask("T02", "c1");
  EXPECT_EQ(limited.status, 429) << limited.body;
  EXPECT_EQ(nlohmann::json::parse(limited.body)["error"]["code"], "rate_limited");
  int limited_events = 0;
  for (const auto& [event, fields] : events_) limited_events += event == "sale_fetch_limited";
  EXPECT_EQ(limited_events, 1);
  EXPECT_EQ(ask("T03", "c1").status, 200);  // per terminal
  clock_.advance_ms(3'600'000);
  EXPECT_EQ(ask("T02", "c1").status, 200);  // an hour later
}

}  // namespace
}  // namespace loyalty::hq::testing
