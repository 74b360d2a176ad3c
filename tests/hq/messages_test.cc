// The sync messages' codecs: round trips, and every kind of rejection at its boundary.
#include "loyalty/sync/messages.h"

#include "loyalty/base/encoding.h"

#include <gtest/gtest.h>

#include <limits>

namespace loyalty::sync {
namespace {

using nlohmann::json;

Entry SampleEntry() {
  Entry e;
  e.entry_id = "0192a3b4c5d6e7f8091a2b3c4d5e6f70";
  e.terminal_id = "T01";
  e.seq = 7;
  e.kind = "earn";
  e.member_id = 18446744073709551615ull;
  e.points = -240;
  e.at_ms = 1790000000123;
  e.checkout_id = "c-1";
  e.detail = R"({"a":1})";
  e.prev_hash = std::string(32, '\0');  // raw; hex on the wire
  e.hash = std::string(32, '\xaa');
  return e;
}

Checkout SampleCheckout() {
  Checkout c;
  c.checkout_id = "c-1";
  c.request_hash = std::string(64, 'b');
  c.member_id = 42;
  c.rules_version = "default";
  c.committed_at_ms = 1790000000123;
  c.subtotal_cents = 20380;
  c.total_due_cents = 20380;
  c.points_earned = 168;
  c.eligible_cents = 16880;
  c.redeemable_cents = 16880;
  c.tender = "cash";
  c.request_json = R"({"checkout_id":"c-1"})";
  c.response_json = R"({"checkout_id":"c-1"})";
  CheckoutLine l;
  l.line = 0;
  l.sku = "A";
  l.category = "grocery";
  l.qty = 2;
  l.unit_price_cents = 1990;
  l.net_cents = 3980;
  l.net_before_redeem_cents = 3980;
  l.points_eligible = true;
  l.redeemable = true;
  c.lines.push_back(l);
  return c;
}

Snapshot SampleSnapshot() {
  Snapshot s;
  s.member_id = 42;
  s.display_name = "张*";
  s.phone = "138****5678";
  s.phone_hash = std::string(64, 'c');
  s.tier = "vip";
  s.status = "frozen";
  s.frozen_reason = "velocity";
  s.birthday_month = 12;
  s.balance = -50;
  s.lots = {{100, 1800000000}, {-150, 9223372036854775807}};
  s.month_spend_cents = 50000;
  s.unfrozen_at_ms = 5;
  s.snapshot_at_s = 1790000000;
  s.terminal_seq = 9;
  return s;
}

Refund SampleRefund() {
  Refund rf;
  rf.refund_id = "r-1";
  rf.checkout_id = "c-1";
  rf.reason = "return";
  rf.at_ms = 3;
  rf.refund_cents = 100;
  rf.points_clawed_back = 1;
  rf.response_json = "{}";
  rf.lines = {{0, 1}};
  return rf;
}

template <typename T>
void ExpectRoundTrip(const T& v) {
  std::string body = SerializeMessage(v);
  auto back = ParseMessage<T>(body);
  ASSERT_TRUE(back.ok()) << back.status().ToString() << "\n" << body;
  EXPECT_EQ(*back, v);
}

// Expects `body` to be rejected with bad_request and a message naming `field`.
template <typename T>
void ExpectRejected(const json& j, const std::string& field) {
  auto r = ParseMessage<T>(j.dump());
  ASSERT_FALSE(r.ok()) << j.dump();
  EXPECT_EQ(r.status().code(), ErrorCode::kBadRequest);
  EXPECT_NE(r.status().message().find(field), std::string::npos)
      << r.status().message() << " does not name " << field;
}

TEST(MessagesTest, RoundTripsEveryMessage) {
  UploadRequest up;
  up.entries = {SampleEntry()};
  up.checkouts = {SampleCheckout()};
  Checkout anon = SampleCheckout();
  anon.member_id.reset();
  anon.checkout_id = "c-2";
  up.checkouts.push_back(anon);
  up.refunds = {SampleRefund()};
  ExpectRoundTrip(up);

  ExpectRoundTrip(
      UploadResponse{{{SampleEntry().entry_id, "created"}, {SampleEntry().entry_id, "invalid"}}});
  ExpectRoundTrip(HelloRequest{1, "S001", "0.1.0", {3, std::string(64, 'f')}, 3});
  ExpectRoundTrip(HelloResponse{1, 1790000000000, true, 0, {0, ""}});
  // HQ's time feeds the terminal's trusted time: 0..the year 9999, as every time.
  for (int64_t bad : {int64_t{-1}, kMaxTimeMs + 1}) {
    json hj = ToJson(HelloResponse{1, 1790000000000, true, 0, {0, ""}});
    hj["hq_time_ms"] = bad;
    ExpectRejected<HelloResponse>(hj, "hq_time_ms");
  }

  ChangesResponse ch;
  ch.cursor = "17";
  ch.more = true;
  ch.hq_time_ms = 1;
  ch.members = {SampleSnapshot()};
  Snapshot unnamed = SampleSnapshot();
  unnamed.display_name.reset();
  unnamed.phone.reset();
  unnamed.phone_hash.clear();
  ch.members.push_back(unnamed);
  ch.identities = {{"wechat", "123456789012", 42}};
  ch.coupons = {{"cp1", 0, "percent_off", 0, 1000, 10000, 1, 2, true}};
  ch.revocations = {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"};
  ch.rules = json{{"version", "v2"}, {"earn_points_per_yuan", 2}};
  ExpectRoundTrip(ch);
  ch.rules.reset();
  ExpectRoundTrip(ch);

  ExpectRoundTrip(FetchRequest{{SampleEntry().entry_id}});
  ExpectRoundTrip(FetchResponse{{SampleEntry()}, {SampleCheckout()}, {}});
  ExpectRoundTrip(MembersRequest{{0, 42, 18446744073709551615ull}});
  ExpectRoundTrip(MembersResponse{{SampleSnapshot()}});
  // A look-up: cards to resolve, and the identities of what HQ found.
  ExpectRoundTrip(MembersRequest{{}, std::vector<IdentityKey>{{"card", "8812345678901234"}}});
  ExpectRoundTrip(MembersRequest{{42}, std::vector<IdentityKey>{}});
  ExpectRoundTrip(MembersResponse{{SampleSnapshot()}, std::vector<Identity>{{"wechat", "1", 7}}});
  ExpectRoundTrip(MembersResponse{{}, std::vector<Identity>{}});
}

TEST(MessagesTest, WireFormsAreThoseOfTheProtocol) {
  json e = ToJson(SampleEntry());
  EXPECT_EQ(e["member_id"], "18446744073709551615");
  json c = ToJson(SampleCheckout());
  EXPECT_EQ(c["member_id"], "42");
  Checkout anon = SampleCheckout();
  anon.member_id.reset();
  EXPECT_TRUE(ToJson(anon)["member_id"].is_null());
  json s = ToJson(SampleSnapshot());
  EXPECT_EQ(s["display_name"], "张*");
  EXPECT_EQ(s["lots"][1]["expires_at_s"], 9223372036854775807);
  EXPECT_TRUE(ToJson(ChangesResponse{})["rules"].is_null());
}

TEST(MessagesTest, MemberIdsAreCanonicalDecimalUint64) {
  EXPECT_EQ(ParseMemberId("0"), 0u);
  EXPECT_EQ(ParseMemberId("18446744073709551615"), 18446744073709551615ull);
  EXPECT_FALSE(ParseMemberId("18446744073709551616"));
  EXPECT_FALSE(ParseMemberId("99999999999999999999"));
  EXPECT_FALSE(ParseMemberId("012"));
  EXPECT_FALSE(ParseMemberId("-1"));
  EXPECT_FALSE(ParseMemberId("+1"));
  EXPECT_FALSE(ParseMemberId(""));
  EXPECT_FALSE(ParseMemberId("1 "));
}

TEST(MessagesTest, TerminalIds) {
  EXPECT_TRUE(IsTerminalId("T01"));
  EXPECT_TRUE(IsTerminalId(std::string(32, 'a')));
  EXPECT_FALSE(IsTerminalId(std::string(33, 'a')));
  EXPECT_FALSE(IsTerminalId(""));
  EXPECT_FALSE(IsTerminalId("T/1"));
  EXPECT_FALSE(IsTerminalId("T 1"));
}

TEST(MessagesTest, EntryFieldsAreChecked) {
  json good = ToJson(SampleEntry());
  auto with = [&](const char* key, json v) {
    json j = good;
    j[key] = std::move(v);
    return j;
  };
  auto without = [&](const char* key) {
    json j = good;
    j.erase(key);
    return j;
  };
  ExpectRejected<Entry>(without("hash"), "hash is missing");
  ExpectRejected<Entry>(with("seq", 0), "seq");
  ExpectRejected<Entry>(with("seq", 1.0), "seq must be an integer");
  ExpectRejected<Entry>(with("seq", "1"), "seq must be an integer");
  ExpectRejected<Entry>(with("seq", 9223372036854775808ull),
                        "seq must be 1..9223372036854775807, got 9223372036854775808");
  ExpectRejected<Entry>(with("points", true), "points");
  ExpectRejected<Entry>(with("member_id", 42), "member_id");
  ExpectRejected<Entry>(with("kind", "steal"), "kind");
  ExpectRejected<Entry>(with("entry_id", std::string(31, 'a')), "entry_id");
  ExpectRejected<Entry>(with("entry_id", std::string(32, 'A')), "entry_id");
  ExpectRejected<Entry>(with("prev_hash", std::string(63, '0')), "prev_hash");
  ExpectRejected<Entry>(with("terminal_id", "bad id"), "terminal_id");
  ExpectRejected<Entry>(with("detail", nullptr), "detail");
  ExpectRejected<Entry>(with("checkout_id", std::string(65, 'x')), "checkout_id");
  // At the edges: accepted.
  EXPECT_TRUE(ParseMessage<Entry>(with("seq", 9223372036854775807ll).dump()).ok());
  EXPECT_TRUE(ParseMessage<Entry>(with("checkout_id", std::string(64, 'x')).dump()).ok());
  // The limits table: |points| <= 10^15, times within the year 9999.
  EXPECT_TRUE(ParseMessage<Entry>(with("points", kMaxPoints).dump()).ok());
  EXPECT_TRUE(ParseMessage<Entry>(with("points", -kMaxPoints).dump()).ok());
  ExpectRejected<Entry>(with("points", kMaxPoints + 1), "points");
  ExpectRejected<Entry>(with("points", -kMaxPoints - 1), "points");
  ExpectRejected<Entry>(with("points", -9223372036854775807ll - 1), "points");
  ExpectRejected<Entry>(with("points", 9223372036854775807ll), "points");
  EXPECT_TRUE(ParseMessage<Entry>(with("at_ms", kMaxTimeMs).dump()).ok());
  ExpectRejected<Entry>(with("at_ms", kMaxTimeMs + 1), "at_ms");
  ExpectRejected<Entry>(with("at_ms", -1), "at_ms");
  // Unknown keys are ignored (a later version may add fields).
  EXPECT_TRUE(ParseMessage<Entry>(with("future", 1).dump()).ok());
}

TEST(MessagesTest, NestedErrorsNameTheirPath) {
  UploadRequest up;
  up.entries = {SampleEntry(), SampleEntry()};
  up.checkouts = {SampleCheckout()};
  json j = ToJson(up);
  j["entries"][1]["seq"] = -1;
  ExpectRejected<UploadRequest>(j, "entries[1].seq");
  j = ToJson(up);
  j["checkouts"][0]["lines"][0]["qty"] = 1.5;
  ExpectRejected<UploadRequest>(j, "checkouts[0].lines[0].qty");
  // Past loyalty-rules.md's limits, but an integer: HQ's checks refuse the record alone.
  j["checkouts"][0]["lines"][0]["qty"] = 10001;
  EXPECT_TRUE(ParseMessage<UploadRequest>(j.dump()).ok());
  j["checkouts"][0]["lines"][0]["qty"] = 10000;
  EXPECT_TRUE(ParseMessage<UploadRequest>(j.dump()).ok());
  j["checkouts"][0]["lines"][0]["points_eligible"] = 1;
  ExpectRejected<UploadRequest>(j, "checkouts[0].lines[0].points_eligible must be a boolean");
  j = ToJson(up);
  j["checkouts"][0]["member_id"] = "";
  ExpectRejected<UploadRequest>(j, "checkouts[0].member_id");
}

TEST(MessagesTest, ArrayLimits) {
  UploadRequest up;
  up.entries.assign(kMaxUploadEntries, SampleEntry());
  EXPECT_TRUE(ParseMessage<UploadRequest>(SerializeMessage(up)).ok());
  up.entries.push_back(SampleEntry());
  ExpectRejected<UploadRequest>(ToJson(up), "entries must hold at most 500");

  FetchRequest f;
  f.entry_ids.assign(kMaxFetchIds, SampleEntry().entry_id);
  EXPECT_TRUE(ParseMessage<FetchRequest>(SerializeMessage(f)).ok());
  f.entry_ids.push_back(SampleEntry().entry_id);
  ExpectRejected<FetchRequest>(ToJson(f), "entry_ids");
  ExpectRejected<FetchRequest>(json{{"entry_ids", {"xyz"}}}, "entry_ids[0]");

  MembersRequest m;
  m.member_ids.assign(kMaxMemberIds, 1);
  EXPECT_TRUE(ParseMessage<MembersRequest>(SerializeMessage(m)).ok());
  m.member_ids.push_back(1);
  ExpectRejected<MembersRequest>(ToJson(m), "member_ids");
  ExpectRejected<MembersRequest>(json{{"member_ids", {1}}}, "member_ids[0]");

  // At most 16 cards in a look-up; each a channel and an id, nothing else.
  MembersRequest look;
  look.identities.emplace(kMaxLookupIdentities, IdentityKey{"card", "8812345678901234"});
  EXPECT_TRUE(ParseMessage<MembersRequest>(SerializeMessage(look)).ok());
  look.identities->push_back({"card", "8812345678901234"});
  ExpectRejected<MembersRequest>(ToJson(look), "identities");
  ExpectRejected<MembersRequest>(json{{"member_ids", json::array()},
                                      {"identities", {{{"channel", ""}, {"external_id", "1"}}}}},
                                 "identities[0].channel");
  ExpectRejected<MembersRequest>(
      json{{"member_ids", json::array()}, {"identities", {{{"channel", "card"}}}}},
      "identities[0].external_id");
  ExpectRejected<MembersRequest>(json{{"member_ids", json::array()}, {"identities", "card"}},
                                 "identities");
  // The wire form: the key present only in a look-up.
  EXPECT_EQ(SerializeMessage(MembersRequest{{42}, std::nullopt}), R"({"member_ids":["42"]})");
  EXPECT_EQ(SerializeMessage(MembersRequest{{}, std::vector<IdentityKey>{{"card", "1"}}}),
            R"({"identities":[{"channel":"card","external_id":"1"}],"member_ids":[]})");
}

// The store a look-up or a sale request names (the terminal's, as its hello names it): a
// string of at most 64 bytes, "" allowed as in hello; absent (an older terminal) or null
// is none, and only a request that names one carries the key.
TEST(MessagesTest, TheStoreOfALookUpOrASaleRequestIsBounded) {
  MembersRequest look{{}, std::vector<IdentityKey>{{"card", "1"}}, std::nullopt, "S001"};
  ExpectRoundTrip(look);
  EXPECT_EQ(SerializeMessage(look),
            R"({"identities":[{"channel":"card","external_id":"1"}],"member_ids":[],)"
            R"("store_id":"S001"})");
  SaleRequest sale{"T01", "c-1", "S001"};
  ExpectRoundTrip(sale);
  EXPECT_EQ(SerializeMessage(SaleRequest{"T01", "c-1", std::nullopt}),
            R"({"checkout_id":"c-1","terminal_id":"T01"})");
  for (const std::string& ok : {std::string(), std::string(kMaxIdChars, 's')}) {
    look.store_id = ok;
    ExpectRoundTrip(look);
    sale.store_id = ok;
    ExpectRoundTrip(sale);
  }
  json lj = ToJson(look), sj = ToJson(sale);
  for (const json& bad : {json(std::string(kMaxIdChars + 1, 's')), json(7), json::array()}) {
    lj["store_id"] = bad;
    ExpectRejected<MembersRequest>(lj, "store_id");
    sj["store_id"] = bad;
    ExpectRejected<SaleRequest>(sj, "store_id");
  }
  lj["store_id"] = nullptr;
  auto none = ParseMessage<MembersRequest>(lj.dump());
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_FALSE(none->store_id.has_value());
  sj.erase("store_id");
  auto older = ParseMessage<SaleRequest>(sj.dump());
  ASSERT_TRUE(older.ok()) << older.status().ToString();
  EXPECT_FALSE(older->store_id.has_value());
}

// The limits of the messages of returns anywhere and eviction, at their edges.
TEST(MessagesTest, SaleEvictionAndReceiptKeyLimits) {
  ChangesResponse page;
  page.evict.assign(kMaxEvictions, 7);
  EXPECT_TRUE(ParseMessage<ChangesResponse>(SerializeMessage(page)).ok());
  page.evict.push_back(7);
  ExpectRejected<ChangesResponse>(ToJson(page), "evict");

  EvictedRequest evicted;
  evicted.member_ids.assign(kMaxEvictions, 7);
  EXPECT_TRUE(ParseMessage<EvictedRequest>(SerializeMessage(evicted)).ok());
  evicted.member_ids.push_back(7);
  ExpectRejected<EvictedRequest>(ToJson(evicted), "member_ids");

  const Refund rf = SampleRefund();
  SaleResponse sale;
  sale.checkout = SampleCheckout();
  sale.refunds.assign(kMaxSaleRefunds, {"T02", rf});
  auto read = ParseMessage<SaleResponse>(SerializeMessage(sale));
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->refunds.size(), kMaxSaleRefunds);
  sale.refunds.push_back({"T02", rf});
  ExpectRejected<SaleResponse>(ToJson(sale), "refunds");

  // A certificate of at most 256 bytes (its base64url at most 512 characters).
  ReceiptKeyResponse cert{std::string(256, '\x5a')};
  ExpectRoundTrip(cert);
  cert.certificate.push_back('\x5a');
  ExpectRejected<ReceiptKeyResponse>(ToJson(cert), "certificate");
}

// Phone look-up on the wire: the store key on a changes page, the key id of a snapshot's
// hash, the number of a look-up; each at its edges.
TEST(MessagesTest, PhoneLookupFields) {
  ChangesResponse page;
  page.phone_key = PhoneKey{7, std::string(32, '\x01')};
  ExpectRoundTrip(page);
  page.phone_key = PhoneKey{kMaxPhoneKeyId, std::string(32, '\x01')};
  ExpectRoundTrip(page);
  json j = ToJson(page);
  j["phone_key"]["key_id"] = 0;
  ExpectRejected<ChangesResponse>(j, "phone_key.key_id");
  j["phone_key"]["key_id"] = kMaxPhoneKeyId + 1;
  ExpectRejected<ChangesResponse>(j, "phone_key.key_id");
  j = ToJson(page);
  j["phone_key"]["key"] = Base64UrlEncode(std::string(31, '\x01'));
  ExpectRejected<ChangesResponse>(j, "phone_key.key");
  EXPECT_FALSE(ToJson(ChangesResponse{}).contains("phone_key"));  // absent unless sent

  Snapshot s = SampleSnapshot();
  s.phone_key_id = 3;
  ExpectRoundTrip(s);
  EXPECT_FALSE(ToJson(SampleSnapshot()).contains("phone_key_id"));
  json sj = ToJson(s);
  sj["phone_key_id"] = 0;
  ExpectRejected<Snapshot>(sj, "phone_key_id");

  // Names and phones only masked (hq-and-sync.md): a terminal refuses a page with either
  // in clear, rather than hold and show it.
  auto with = [](const char* field, const char* value) {
    json j = ToJson(SampleSnapshot());
    j[field] = value;
    return j;
  };
  for (const char* good : {"*", "张*", "B*", "😀*"}) {
    Snapshot back;
    EXPECT_TRUE(FromJson(with("display_name", good), &back).ok()) << good;
  }
  for (const char* bad : {"张三丰", "张三*", "Bob", "", "Bo*"})
    ExpectRejected<Snapshot>(with("display_name", bad), "display_name");
  for (const char* good : {"138****5678", "***45", "**", "852****4567"}) {
    Snapshot back;
    EXPECT_TRUE(FromJson(with("phone", good), &back).ok()) << good;
  }
  for (const char* bad : {"13812345673", "138 ****5678", "138*****45678", "", "+86****5678"})
    ExpectRejected<Snapshot>(with("phone", bad), "phone");

  MembersRequest look;
  look.identities.emplace();
  look.phone = "12345";
  ExpectRoundTrip(look);
  look.phone = std::string(20, '9');
  ExpectRoundTrip(look);
  for (const std::string& bad :
       std::vector<std::string>{"1234", std::string(21, '9'), "138-12345678", "+8613812345678"}) {
    json mj = ToJson(look);
    mj["phone"] = bad;
    ExpectRejected<MembersRequest>(mj, "phone");
  }
}

// A snapshot's hq_entries (HQ's own entries of the member, for the terminal to show): absent
// when empty, at most kMaxSnapshotHqEntries, each with an entry id, one of HQ's kinds, points
// and a time inside the limits table.
TEST(MessagesTest, SnapshotHqEntries) {
  EXPECT_FALSE(ToJson(SampleSnapshot()).contains("hq_entries"));
  json bare = ToJson(SampleSnapshot());
  auto parsed = ParseMessage<Snapshot>(bare.dump());
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(parsed->hq_entries.empty());

  Snapshot s = SampleSnapshot();
  for (const char* kind : {"adjust", "expire", "unfreeze", "tier_change", "freeze"})
    s.hq_entries.push_back({std::string(32, 'a'), kind, -kMaxPoints, kMaxTimeMs});
  ExpectRoundTrip(s);
  s.hq_entries.resize(kMaxSnapshotHqEntries,
                      HqEntry{std::string(32, 'b'), "adjust", kMaxPoints, 0});
  ExpectRoundTrip(s);
  ChangesResponse page;
  page.members = {s};
  ExpectRoundTrip(page);

  json j = ToJson(s);
  j["hq_entries"].push_back(j["hq_entries"][0]);  // one past the limit
  ExpectRejected<Snapshot>(j, "hq_entries");
  auto one_bad = [&](const std::string& field, const json& value) {
    json b = ToJson(SampleSnapshot());
    json e{{"entry_id", std::string(32, 'a')}, {"kind", "adjust"}, {"points", 5}, {"at_ms", 1}};
    if (value.is_null())
      e.erase(field);
    else
      e[field] = value;
    b["hq_entries"] = json::array({e});
    ExpectRejected<Snapshot>(b, "hq_entries[0]." + field);
  };
  one_bad("kind", "earn");  // a terminal's kind
  one_bad("kind", "bogus");
  one_bad("kind", nullptr);
  one_bad("entry_id", std::string(31, 'a'));
  one_bad("entry_id", std::string(32, 'G'));
  one_bad("points", kMaxPoints + 1);
  one_bad("points", -kMaxPoints - 1);
  one_bad("points", 1.5);
  one_bad("at_ms", -1);
  one_bad("at_ms", kMaxTimeMs + 1);
  json not_list = ToJson(SampleSnapshot());
  not_list["hq_entries"] = json::object();
  ExpectRejected<Snapshot>(not_list, "hq_entries");
}

// A fetch of the checkouts no entry brings back (a terminal restored from an empty disk): the
// cursors are "" or a checkout id, absent unless given; the answer's lists stay bounded.
TEST(MessagesTest, FetchOfCheckoutsWithoutEntries) {
  FetchRequest f;
  EXPECT_FALSE(ToJson(f).contains("without_entries_after"));
  f.without_entries_after = "";
  ExpectRoundTrip(f);
  f.without_entries_after = std::string(64, 'z');
  ExpectRoundTrip(f);
  for (const json& bad : {json(std::string(65, 'z')), json("a b"), json(5), json("ä")}) {
    json j = ToJson(FetchRequest{});
    j["without_entries_after"] = bad;
    ExpectRejected<FetchRequest>(j, "without_entries_after");
  }
  FetchResponse r{{}, {SampleCheckout()}, {SampleRefund()}, std::string("c-1")};
  ExpectRoundTrip(r);
  EXPECT_FALSE(ToJson(FetchResponse{}).contains("next_without_entries"));
  json j = ToJson(r);
  j["next_without_entries"] = "no spaces";
  ExpectRejected<FetchResponse>(j, "next_without_entries");
  j = ToJson(r);
  j["checkouts"] = json::array();
  for (size_t i = 0; i <= kMaxFetchIds + kMaxFetchCheckoutsWithoutEntries; ++i)
    j["checkouts"].push_back(ToJson(SampleCheckout()));
  ExpectRejected<FetchResponse>(j, "checkouts");
}

TEST(MessagesTest, HelloChecks) {
  json h = ToJson(HelloRequest{1, "S001", "0.1.0", {0, ""}, 0});
  EXPECT_TRUE(ParseMessage<HelloRequest>(h.dump()).ok());
  h["protocol"] = 2;
  ExpectRejected<HelloRequest>(h, "protocol");
  h["protocol"] = 1;
  h["head"] = json{{"seq", 1}, {"hash", ""}};
  ExpectRejected<HelloRequest>(h, "head.hash");
  h["head"] = json{{"seq", 0}, {"hash", std::string(64, '1')}};
  ExpectRejected<HelloRequest>(h, "head.hash");
  h["head"] = "x";
  ExpectRejected<HelloRequest>(h, "head must be an object");
}

TEST(MessagesTest, SnapshotAndChangesChecks) {
  json s = ToJson(SampleSnapshot());
  s["birthday_month"] = 13;
  ExpectRejected<Snapshot>(s, "birthday_month");
  s = ToJson(SampleSnapshot());
  s["tier"] = "gold";
  ExpectRejected<Snapshot>(s, "tier");
  s = ToJson(SampleSnapshot());
  s["display_name"] = 5;
  ExpectRejected<Snapshot>(s, "display_name");

  json c = ToJson(ChangesResponse{});
  c["rules"] = json::array();
  ExpectRejected<ChangesResponse>(c, "rules");
  c["rules"] = json{{"earn_points_per_yuan", 1}};
  ExpectRejected<ChangesResponse>(c, "rules.version");
  c["rules"] = nullptr;
  c["revocations"] = {"AAAA"};
  ExpectRejected<ChangesResponse>(c, "revocations[0]");
  c["revocations"] = json::array();
  c["coupons"] = {ToJson(Coupon{{"cp", 0, "bogo", 0, 0, 0, 0, 0}, false})};
  ExpectRejected<ChangesResponse>(c, "coupons[0].kind");
}

TEST(MessagesTest, BodiesThatAreNotObjects) {
  for (std::string_view body :
       {"", "[]", "1", "null", "{", "{\"entries\":[]", "\"x\"", "{\"a\":\"\xff\"}"}) {
    auto r = ParseMessage<UploadRequest>(body);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.status().code(), ErrorCode::kBadRequest);
  }
  // Entries must be objects.
  ExpectRejected<UploadRequest>(
      json{{"entries", {1}}, {"checkouts", json::array()}, {"refunds", json::array()}},
      "entries[0] must be an object");
}

TEST(MessagesTest, DumpNeverThrowsOnBadUtf8) {
  Entry e = SampleEntry();
  e.detail = "\xff\xfe";
  std::string out;
  EXPECT_NO_THROW(out = SerializeMessage(e));
  EXPECT_NE(out.find("\xef\xbf\xbd"), std::string::npos);
}

TEST(MessagesTest, ChangesQuery) {
  auto q = ParseChangesQuery({});
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->cursor, "");
  EXPECT_EQ(q->limit, 1000);
  q = ParseChangesQuery({{"cursor", "abc"}, {"limit", "2000"}});
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->cursor, "abc");
  EXPECT_EQ(q->limit, 2000);
  EXPECT_TRUE(ParseChangesQuery({{"limit", "1"}}).ok());
  for (const char* bad : {"0", "2001", "-1", "", "01", "1e3", "99999"}) {
    EXPECT_FALSE(ParseChangesQuery({{"limit", bad}}).ok()) << bad;
  }
  EXPECT_FALSE(ParseChangesQuery({{"cursor", std::string(257, 'c')}}).ok());
}

TEST(MessagesTest, ValueLimitsAreOneTableAtBothEnds) {
  // Refunds, checkouts, lots and snapshots: every amount at its edge and one past it.
  Refund f;
  f.refund_id = "r1";
  f.checkout_id = "c1";
  f.lines = {{0, 1}};
  f.refund_cents = kMaxCents;
  EXPECT_TRUE(ParseMessage<Refund>(SerializeMessage(f)).ok());
  f.refund_cents = kMaxCents + 1;
  EXPECT_FALSE(ParseMessage<Refund>(SerializeMessage(f)).ok());
  f.refund_cents = 9223372036854775807ll;  // the overflow attack: refused by the codec
  EXPECT_FALSE(ParseMessage<Refund>(SerializeMessage(f)).ok());
  f.refund_cents = 1;
  f.points_clawed_back = kMaxPoints + 1;
  EXPECT_FALSE(ParseMessage<Refund>(SerializeMessage(f)).ok());

  Checkout c;
  c.checkout_id = "c1";
  c.total_due_cents = kMaxCents;
  c.points_earned = kMaxPoints;
  EXPECT_TRUE(ParseMessage<Checkout>(SerializeMessage(c)).ok());
  c.total_due_cents = kMaxCents + 1;
  EXPECT_FALSE(ParseMessage<Checkout>(SerializeMessage(c)).ok());
  c.total_due_cents = 0;
  c.points_earned = kMaxPoints + 1;
  EXPECT_FALSE(ParseMessage<Checkout>(SerializeMessage(c)).ok());
  c.points_earned = 0;
  c.lines = {{0, "s", "", 1, kMaxUnitPriceCents + 1, 0, 0, 0, 0, 0, false, false}};
  EXPECT_FALSE(ParseMessage<Checkout>(SerializeMessage(c)).ok());
  // In an upload only, a line's qty and unit price are any integer: HQ's checks refuse a
  // record past loyalty-rules.md's limits alone (value_out_of_range), not the upload. What
  // HQ sends a terminal (a sale, a fetch) keeps the limits: the terminal trusts no other.
  UploadRequest up;
  up.checkouts = {c};
  EXPECT_TRUE(ParseMessage<UploadRequest>(SerializeMessage(up)).ok());
  up.checkouts[0].lines = {
      {0, "s", "", -1, std::numeric_limits<int64_t>::min(), 0, 0, 0, 0, 0, false, false}};
  EXPECT_TRUE(ParseMessage<UploadRequest>(SerializeMessage(up)).ok());
  FetchResponse fetched;
  fetched.checkouts = up.checkouts;
  EXPECT_FALSE(ParseMessage<FetchResponse>(SerializeMessage(fetched)).ok());
  up.checkouts[0].lines[0].net_cents = -1;
  EXPECT_FALSE(ParseMessage<UploadRequest>(SerializeMessage(up)).ok());
  // A refund line's qty the same: read as uploaded (how HQ reads back what it stored), any
  // integer; as a terminal reads it, 1..10000.
  Refund wide = SampleRefund();
  for (int64_t qty : {int64_t{0}, int64_t{10001}, std::numeric_limits<int64_t>::max()}) {
    wide.lines = {{0, qty}};
    Refund back;
    EXPECT_TRUE(FromJsonAsUploaded(ToJson(wide), &back).ok()) << qty;
    EXPECT_EQ(back, wide);
    EXPECT_FALSE(FromJson(ToJson(wide), &back).ok()) << qty;
  }
  wide.lines = {{static_cast<int64_t>(kMaxCheckoutLines), 1}};  // the line index keeps its limits
  Refund back;
  EXPECT_FALSE(FromJsonAsUploaded(ToJson(wide), &back).ok());

  Snapshot s;
  s.member_id = 7;
  s.balance = -kMaxPoints;
  s.frozen_reason = std::string(kMaxReasonBytes, 'x');
  EXPECT_TRUE(ValidateSnapshot(s).ok());
  s.frozen_reason = std::string(kMaxReasonBytes + 1, 'x');  // a 65-byte reason is refused
  EXPECT_FALSE(ValidateSnapshot(s).ok());
  s.frozen_reason.clear();
  s.balance = kMaxPoints + 1;
  EXPECT_FALSE(ValidateSnapshot(s).ok());
  s.balance = 0;
  s.month_spend_cents = kMaxSpendCents + 1;
  EXPECT_FALSE(ValidateSnapshot(s).ok());
  s.month_spend_cents = 0;
  s.lots = {{kMaxPoints + 1, 0}};
  EXPECT_FALSE(ValidateSnapshot(s).ok());

  UploadResult u{std::string(32, 'a'), "refused"};
  EXPECT_TRUE(ParseMessage<UploadResult>(SerializeMessage(u)).ok());
  EXPECT_TRUE(IsTerminalEntryKind("earn") && IsTerminalEntryKind("correction"));
  EXPECT_FALSE(IsTerminalEntryKind("adjust") || IsTerminalEntryKind("unfreeze") ||
               IsTerminalEntryKind("tier_change") || IsTerminalEntryKind("expire"));
}

}  // namespace
}  // namespace loyalty::sync
