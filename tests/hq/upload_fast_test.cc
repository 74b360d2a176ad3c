// The upload's fast reader (sync::ParseUploadFast) against the tree reader it stands in for:
// whatever it takes, ParseMessage<UploadRequest> reads to the same value; whatever it
// declines, ParseUploadRequest answers exactly as ParseMessage does. A valid upload is
// mutated field by field — each value replaced by values of every kind and at the edges of
// its range, each key removed, unknown keys added — and every variant checked both ways.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "json_scan.h"
#include "loyalty/sync/messages.h"
#include "support/json_events.h"

namespace loyalty::sync {
namespace {

using nlohmann::json;

Entry AnEntry(int seq, uint64_t member) {
  Entry e;
  e.entry_id = std::string(30, '0') + std::to_string(10 + seq);
  e.terminal_id = "T-01";
  e.seq = seq;
  e.kind = "earn";
  e.member_id = member;
  e.points = 240;
  e.at_ms = 1790000000123;
  e.checkout_id = "c-" + std::to_string(seq);
  e.detail = R"({"rule":"vip"})";
  e.prev_hash = std::string(32, '\x01');
  e.hash = std::string(32, '\xfe');
  return e;
}

Checkout ACheckout(int n, std::optional<uint64_t> member) {
  Checkout c;
  c.checkout_id = "c-" + std::to_string(n);
  c.request_hash = std::string(64, 'b');
  c.member_id = member;
  c.rules_version = "2026-11";
  c.committed_at_ms = 1790000000123 + n;
  // Two lines of 2 x 19.90 less 0.10 each; only the first earns points.
  c.subtotal_cents = 7960;
  c.total_due_cents = 7940;
  c.points_earned = member ? 59 : 0;
  c.eligible_cents = 3970;
  c.redeemable_cents = 7940;
  c.code_hash = member ? std::string(64, 'c') : "";
  c.tender = "wechat";
  c.cashier_id = n % 2 ? "cashier-7" : "";
  c.request_json = R"({"checkout_id":"c-1","lines":[{"sku":"A\"1"}]})";
  c.response_json = "{\"total\":\"\xe5\x85\x83\"}";
  for (int i = 0; i < 2; ++i) {
    CheckoutLine l;
    l.line = i;
    l.sku = "SKU-" + std::to_string(i);
    l.category = "食品";
    l.qty = 2;
    l.unit_price_cents = 1990;
    l.tier_discount_cents = 10;
    l.net_cents = 3970;
    l.net_before_redeem_cents = 3970;
    l.points_eligible = i == 0;
    l.redeemable = true;
    c.lines.push_back(l);
  }
  return c;
}

UploadRequest AnUpload() {
  UploadRequest up;
  up.entries = {AnEntry(1, 42), AnEntry(2, 18446744073709551615ull)};
  up.checkouts = {ACheckout(1, 42), ACheckout(2, std::nullopt)};
  return up;
}

// Checks `body` both ways; returns whether the fast reader took it.
bool CheckSame(const std::string& body) {
  auto slow = ParseMessage<UploadRequest>(body);
  auto via = ParseUploadRequest(body);
  EXPECT_EQ(slow.ok(), via.ok()) << body;
  if (slow.ok() && via.ok()) {
    EXPECT_EQ(*slow, *via) << body;
  } else if (!slow.ok() && !via.ok()) {
    EXPECT_EQ(slow.status().code(), via.status().code()) << body;
    EXPECT_EQ(slow.status().message(), via.status().message()) << body;
  }
  UploadRequest fast;
  if (!ParseUploadFast(body, &fast)) return false;
  EXPECT_TRUE(slow.ok()) << "the fast reader took what the tree reader refuses ("
                         << (slow.ok() ? "" : slow.status().message()) << "): " << body;
  if (slow.ok()) {
    EXPECT_EQ(fast, *slow) << body;
  }
  return true;
}

const std::vector<json>& Replacements() {
  static const std::vector<json> kValues = {
      nullptr,
      true,
      false,
      0,
      1,
      -1,
      10000,
      10001,
      499,
      500,
      json(int64_t{253'402'300'799'999}),
      json(int64_t{253'402'300'800'000}),
      json(int64_t{1'000'000'000'000'000}),
      json(int64_t{-1'000'000'000'000'001}),
      json(int64_t{500'000'000'000'001}),
      json(uint64_t{9223372036854775807ull}),
      json(uint64_t{9223372036854775808ull}),
      json(int64_t{-9223372036854775807 - 1}),
      1.5,
      1.0,
      "",
      "x",
      "T-01",
      "earn",
      "0",
      "01",
      "18446744073709551616",
      std::string(32, 'a'),
      std::string(32, 'A'),
      std::string(64, 'a'),
      std::string(64, 'G'),
      std::string(65, 'a'),
      std::string(257, 'k'),
      "cashier 7",
      json::array(),
      json::array({1}),
      json::object(),
      json{{"k", json::array({json::object()})}},
  };
  return kValues;
}

// Every place in `j` (objects' members and arrays' elements), as JSON pointers.
void Places(const json& j, const json::json_pointer& at, std::vector<json::json_pointer>* out) {
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) {
      out->push_back(at / k);
      Places(v, at / k, out);
    }
  } else if (j.is_array()) {
    for (size_t i = 0; i < j.size(); ++i) {
      out->push_back(at / i);
      Places(j[i], at / i, out);
    }
  }
}

TEST(UploadFastTest, TakesAnUploadAndReadsWhatTheTreeReads) {
  const UploadRequest up = AnUpload();
  const std::string body = SerializeMessage(up);
  ASSERT_TRUE(CheckSame(body));
  UploadRequest fast;
  ASSERT_TRUE(ParseUploadFast(body, &fast));
  EXPECT_EQ(fast, up);
  EXPECT_FALSE(fast.checkouts[1].member_id.has_value());
  EXPECT_EQ(fast.checkouts[0].cashier_id, "cashier-7");
  EXPECT_EQ(fast.checkouts[1].cashier_id, "");
  EXPECT_EQ(fast.entries[1].member_id, 18446744073709551615ull);

  // Empty lists, and an upload of the most entries and checkouts allowed.
  EXPECT_TRUE(CheckSame(R"({"entries":[],"checkouts":[],"refunds":[]})"));
  UploadRequest most;
  most.entries.assign(kMaxUploadEntries, AnEntry(1, 42));
  EXPECT_TRUE(CheckSame(SerializeMessage(most)));
  most.entries.push_back(AnEntry(1, 42));
  EXPECT_FALSE(CheckSame(SerializeMessage(most)));
}

TEST(UploadFastTest, EveryFieldMutatedReadsAsTheTreeReadsIt) {
  const json good = ToJson(AnUpload());
  std::vector<json::json_pointer> places;
  Places(good, json::json_pointer(), &places);
  int taken = 0, declined = 0;
  auto check = [&](const json& j) {
    if (CheckSame(j.dump()))
      ++taken;
    else
      ++declined;
  };
  for (const auto& at : places) {
    for (const json& v : Replacements()) {
      json j = good;
      j[at] = v;
      check(j);
    }
    if (at.parent_pointer().empty() || good[at.parent_pointer()].is_object()) {
      json j = good;
      j[at.parent_pointer()].erase(at.back());
      check(j);
    }
  }
  // Unknown keys, of every kind, at every level: ignored.
  for (const char* obj : {"", "/entries/0", "/checkouts/0", "/checkouts/1/lines/1"}) {
    for (const json& v : Replacements()) {
      json j = good;
      j[json::json_pointer(obj)]["zz_newer_field"] = v;
      EXPECT_TRUE(CheckSame(j.dump())) << obj << " " << v.dump();
    }
  }
  // Both readers agree on every variant; the fast one takes the many that stay valid (a
  // value replaced by another in range) and leaves every refusal to the tree reader.
  EXPECT_GT(taken, 100);
  EXPECT_GT(declined, 1000);
  std::printf("variants: %d taken by the fast reader, %d declined\n", taken, declined);
}

// `raw` as the value of an unknown key first in `body`; `raw` inside the first SKU.
std::string WithUnknown(const std::string& body, const std::string& raw) {
  return "{\"zz\":" + raw + "," + body.substr(1);
}
std::string InSku(const std::string& body, const std::string& raw) {
  std::string out = body;
  return out.insert(out.find("SKU-0") + 3, raw);
}

TEST(UploadFastTest, DeclinesWhatTheTreeReadsDifferently) {
  const std::string body = SerializeMessage(AnUpload());
  UploadRequest out;
  // A key twice in one object, known or not, at any depth, even inside a value the fast
  // reader skips: declined, and the tree reader refuses it (bad_request).
  std::string twice = body;
  twice.insert(twice.find("\"seq\":1") + 7, R"(,"seq":5)");
  EXPECT_TRUE(CheckSame(WithUnknown(body, "1")));
  for (const std::string& t :
       {twice, "{\"zz\":1," + WithUnknown(body, "2").substr(1),
        WithUnknown(body, R"({"a":1,"a":1})"), WithUnknown(body, R"([{"k":{"b":[],"b":0}}])"),
        std::string(body).insert(body.find("\"seq\":1"), R"("q":1,"q":2,)")}) {
    auto r = ParseUploadRequest(t);
    EXPECT_FALSE(ParseUploadFast(t, &out)) << t;
    ASSERT_FALSE(r.ok()) << t;
    EXPECT_EQ(r.status().code(), ErrorCode::kBadRequest);
    EXPECT_EQ(r.status().message(), "the body has a key twice in one object");
    CheckSame(t);
  }
  // Sixteen unknown keys in one object are taken; past that the object is declined to the tree
  // reader, whose duplicate check is linear: 90,000 keys must not cost the scanner's
  // pairwise look-up (an upload of < 1 MiB had held HQ for minutes).
  auto many_keys = [&](int n) {
    std::string obj = "{";
    for (int i = 0; i < n; ++i) obj += (i ? ",\"" : "\"") + std::to_string(i) + "\":0";
    return WithUnknown(body, obj + "}");
  };
  EXPECT_TRUE(CheckSame(many_keys(15)));
  EXPECT_FALSE(CheckSame(many_keys(17)));
  EXPECT_FALSE(ParseUploadFast(many_keys(90000), &out));
  auto wide = ParseUploadRequest(many_keys(90000));
  EXPECT_TRUE(wide.ok()) << wide.status().ToString();
  // The same unknown key in two sibling objects, and in an object and the one it holds: taken.
  std::string siblings = body;
  const std::string zz = R"("zz":{"zz":1},)";
  for (size_t at = 0; (at = siblings.find("\"seq\":", at)) != std::string::npos;
       at += zz.size() + 6)
    siblings.insert(at, zz);
  EXPECT_TRUE(CheckSame(siblings)) << siblings;
  // A refund (here of a sale made at another till): the tree reader's.
  auto rf = ParseMessage<Refund>(
      R"({"refund_id":"r-9","checkout_id":"c-1","request_hash":"","reason":"return",)"
      R"("at_ms":1790000000999,"refund_cents":3970,"points_clawed_back":60,)"
      R"("points_restored":0,"response_json":"{}","lines":[{"line":1,"qty":2}],)"
      R"("sold_at":"T-02","cashier_id":"cashier-7"})");
  ASSERT_TRUE(rf.ok()) << rf.status().ToString();
  UploadRequest with_refund = AnUpload();
  with_refund.refunds = {*rf};
  EXPECT_FALSE(ParseUploadFast(SerializeMessage(with_refund), &out));
  EXPECT_FALSE(CheckSame(SerializeMessage(with_refund)));
  auto back = ParseUploadRequest(SerializeMessage(with_refund));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, with_refund);
}

TEST(UploadFastTest, TextTheTreeRefusesIsRefusedTheSameWay) {
  const std::string body = SerializeMessage(AnUpload());
  const std::vector<std::string> texts = {
      "",
      "[]",
      "5",
      "null",
      "\"entries\"",
      body + " {}",
      body + "x",
      body.substr(0, body.size() / 2),
      std::string(body).insert(1, "\x01"),
      std::string(body).insert(10, std::string("\0", 1)),
      std::string(body).insert(body.find("SKU-0") + 3, "\xc3\x28"),
      std::string(body).insert(body.find("SKU-0") + 3, "\\ud800"),
      std::string(body).insert(body.find("SKU-0") + 3, "\\u00e9\\n"),
      // UTF-8 the tree's check refuses, in a string and outside one: overlong, a surrogate,
      // past U+10FFFF, cut short, a lone continuation byte, a five-byte form.
      std::string(body).insert(body.find("SKU-0") + 3, "\xc0\xaf"),
      std::string(body).insert(body.find("SKU-0") + 3, "\xed\xa0\x80"),
      std::string(body).insert(body.find("SKU-0") + 3, "\xf4\x90\x80\x80"),
      std::string(body).insert(body.find("SKU-0") + 3, "\xe5\x85"),
      std::string(body).insert(body.find("SKU-0") + 3, "\x80"),
      std::string(body).insert(body.find("SKU-0") + 3, "\xf8\x88\x80\x80\x80"),
      std::string(body).insert(body.find("SKU-0") + 3, "\xf4\x8f\xbf\xbf"),
      std::string(body).insert(1, "\xe5\x85\x83"),
      body + std::string("\0", 1),
      body + std::string("\0", 1) + "junk",
      std::string(40, '[') + std::string(40, ']'),
      R"({"entries":[],"checkouts":[],"refunds":[],"x":)" + std::string(31, '[') +
          std::string(31, ']') + "}",
      R"({"entries":[],"checkouts":[],"refunds":[],"x":)" + std::string(32, '[') +
          std::string(32, ']') + "}",
      R"({"entries":[],"checkouts":[]})",
      R"({"entries":[5],"checkouts":[],"refunds":[]})",
      R"({"entries":[[]],"checkouts":[],"refunds":[]})",
      R"({"entries":{},"checkouts":[],"refunds":[]})",
      R"({"entries":[],"checkouts":[],"refunds":[{}]})",
      R"({"entries":[],"checkouts":[],"refunds":[1]})",
      R"({"entries":[],"checkouts":[],"refunds":null})",
  };
  for (const auto& t : texts) CheckSame(t);
}

// The scanner under the fast reader (sync/protocol/src/json_scan.h) takes a strict subset
// of JSON and declines the rest: each edge of that subset, checked both ways.
TEST(UploadFastTest, TheScannerTakesStrictJsonAndDeclinesTheRest) {
  const std::string body = SerializeMessage(AnUpload());
  // Whitespace as JSON has it, anywhere a token may end.
  EXPECT_TRUE(CheckSame(" \t\r\n" + body + " \t\r\n"));
  EXPECT_TRUE(CheckSame(ToJson(AnUpload()).dump(2)));
  EXPECT_TRUE(CheckSame(ToJson(AnUpload()).dump(1, '\t')));
  std::string crlf = ToJson(AnUpload()).dump(1, ' ');
  for (size_t at = crlf.find('\n'); at != std::string::npos; at = crlf.find('\n', at + 2))
    crlf.insert(at, "\r");
  EXPECT_TRUE(CheckSame(crlf));
  for (const char* ws : {"\f", "\v", "\xc2\xa0"}) EXPECT_FALSE(CheckSame(ws + body)) << ws;

  // Every escape but \u, read as the tree reads it; \u declined (and read by the tree).
  UploadRequest escaped = AnUpload();
  escaped.entries[0].detail = "q\" b\\ s/ \b\f\n\r\t end";
  const std::string with_escapes = SerializeMessage(escaped);
  ASSERT_TRUE(CheckSame(with_escapes));
  std::string solidus = with_escapes;
  solidus.replace(solidus.find("s/"), 2, "s\\/");
  ASSERT_TRUE(CheckSame(solidus));
  UploadRequest fast;
  ASSERT_TRUE(ParseUploadFast(solidus, &fast));
  EXPECT_EQ(fast.entries[0].detail, escaped.entries[0].detail);
  UploadRequest control = AnUpload();
  control.entries[0].detail = std::string("a\x1f", 2) + "b";
  EXPECT_FALSE(CheckSame(SerializeMessage(control)));  // written as \u001f
  EXPECT_TRUE(ParseUploadRequest(SerializeMessage(control)).ok());
  for (const char* bad : {"\\x", "\\U0041", "\\", "\\u00", "\\ud83d\\ude00", "\\u0000"})
    CheckSame(InSku(body, bad));

  // UTF-8 at each edge of RFC 3629's table, in a known field and under an unknown key.
  const std::vector<std::pair<std::string, bool>> utf8 = {
      {"\x7f", true},
      {"\xc2\x80", true},
      {"\xdf\xbf", true},
      {"\xe0\xa0\x80", true},
      {"\xed\x9f\xbf", true},
      {"\xee\x80\x80", true},
      {"\xef\xbf\xbf", true},
      {"\xf0\x90\x80\x80", true},
      {"\xf4\x8f\xbf\xbf", true},
      {"\xc1\xbf", false},
      {"\xc2\x7f", false},
      {"\xc2\xc0", false},
      {"\xe0\x9f\xbf", false},
      {"\xed\xa0\x80", false},
      {"\xef\xbf", false},
      {"\xf0\x8f\xbf\xbf", false},
      {"\xf4\x90\x80\x80", false},
      {"\xf5\x80\x80\x80", false},
      {"\xff", false},
      {"\xf0\x90\x80", false},
  };
  for (const auto& [bytes, valid] : utf8) {
    EXPECT_EQ(CheckSame(InSku(body, bytes)), valid) << ::testing::PrintToString(bytes);
    EXPECT_EQ(CheckSame(WithUnknown(body, "\"" + bytes + "\"")), valid)
        << ::testing::PrintToString(bytes);
  }
  // A string cut short by the end of the text, at every byte of a sequence.
  for (const std::string cut : {"\"\xe5", "\"\xe5\x85", "\"ab", "\"a\\"})
    EXPECT_FALSE(CheckSame("{\"zz\":" + cut)) << ::testing::PrintToString(cut);

  // Numbers: RFC 8259's, each read as the tree reads it (under an unknown key: ignored);
  // what is not a JSON number refused by both.
  const std::vector<std::pair<std::string, bool>> numbers = {
      {"0", true},
      {"7", true},
      {"-7", true},
      {"999999999999999999", true},
      {"-999999999999999999", true},
      {"1000000000000000000", true},
      {"9223372036854775807", true},
      {"-9223372036854775808", true},
      {"18446744073709551616", true},
      {"123456789012345678901234567890", true},
      {"-0", true},
      {"1.0", true},
      {"1e2", true},
      {"1E+2", true},
      {"-1.5e-3", true},
      {"0.000", true},
      {"1.7976931348623157e308", true},
      {"1e309", false},
      {"-1e400", false},
      {std::string(400, '7'), false},
      {"1e-400", false},
      {"01", false},
      {"-01", false},
      {"-", false},
      {"1.", false},
      {"1.e2", false},
      {"1e", false},
      {"1e+", false},
      {".5", false},
      {"+1", false},
      {"1x", false},
      {"0x1f", false},
      {"--1", false},
  };
  for (const auto& [text, taken] : numbers) {
    EXPECT_EQ(CheckSame(WithUnknown(body, text)), taken) << text;
    std::string seq = body;
    seq.replace(seq.find("\"seq\":1") + 6, 1, text);
    CheckSame(seq);
  }
  // In a known integer field only an integer of up to 18 digits is taken; others declined.
  for (const char* text : {"1000000000000000000", "1.0", "1e2", "-0"}) {
    std::string seq = body;
    seq.replace(seq.find("\"seq\":1") + 6, 1, text);
    EXPECT_FALSE(CheckSame(seq)) << text;
  }
  std::string big_seq = body;
  big_seq.replace(big_seq.find("\"seq\":1") + 6, 1, "999999999999999999");
  ASSERT_TRUE(CheckSame(big_seq));
  ASSERT_TRUE(ParseUploadFast(big_seq, &fast));
  EXPECT_EQ(fast.entries[0].seq, 999999999999999999);

  // Literals, containers and separators.
  for (const char* ok : {"true", "false", "null", "[]", "{}", "[[],{}]", R"({"a":[1,{"b":null}]})"})
    EXPECT_TRUE(CheckSame(WithUnknown(body, ok))) << ok;
  for (const char* bad :
       {"tru", "nul", "fals", "truex", "nulll", "True", "[1,]", "[,1]", "[1 2]", R"({"a":1,})",
        R"({"a" 1})", R"({1:2})", R"({"a":})", "[", "{", R"({"a":1)", "]", "}", "'a'"})
    EXPECT_FALSE(CheckSame(WithUnknown(body, bad))) << bad;
  EXPECT_FALSE(CheckSame(body + ","));
  EXPECT_FALSE(CheckSame(body + "]"));
  EXPECT_FALSE(CheckSame("{" + body));
}

// The scanner alone, under a handler that takes every event, against nlohmann's SAX parser:
// what the scanner reads through, nlohmann reads to the same events (numbers as the scanner
// passes them: support/json_events.h); what nlohmann refuses, the scanner refuses.
using Recorder = loyalty::testing::JsonEventRecorder;

// Returns whether the scanner read `text` through.
bool ScanSame(const std::string& text) {
  Recorder scanned, reference;
  const bool took = internal::JsonScanner<Recorder>(text, &scanned).Run();
  bool valid = false;
  try {
    valid = json::sax_parse(text.begin(), text.end(), &reference) &&
            text.find('\0') == std::string::npos;
  } catch (const std::exception&) {
    valid = false;
  }
  if (took) {
    EXPECT_TRUE(valid) << "the scanner took what nlohmann refuses: "
                       << ::testing::PrintToString(text);
    if (valid) {
      EXPECT_EQ(scanned.events, reference.events) << ::testing::PrintToString(text);
    }
  }
  return took;
}

TEST(UploadFastTest, TheScannerReadsWhatNlohmannReadsToTheSameEvents) {
  const std::string body = SerializeMessage(AnUpload());
  ASSERT_TRUE(ScanSame(body));
  ASSERT_TRUE(ScanSame(ToJson(AnUpload()).dump(2)));
  for (const char* t : {"0", "-7", "\"\"", "[]", "{}", "true", "null",
                        " [1, -2, 3.5e1, \"a\\tb\", {\"k\": [false]}] ", "999999999999999999",
                        "1000000000000000000", "-0", "18446744073709551616", "1e308"})
    EXPECT_TRUE(ScanSame(t)) << t;
  // Past double's range nlohmann refuses ("number overflow"); below it, the scanner declines.
  for (const std::string& t :
       std::vector<std::string>{"1e400", "-1e400", "[1e309]", std::string(400, '9'), "1e-400"})
    EXPECT_FALSE(ScanSame(t)) << t;
  // Every byte of a small valid upload (one sale, one line) replaced by each of a set of
  // bytes: the edits that keep it JSON the scanner mostly takes, and nothing it takes is
  // read otherwise by nlohmann.
  UploadRequest one;
  one.entries = {AnEntry(1, 42)};
  one.checkouts = {ACheckout(1, 42)};
  one.checkouts[0].lines.resize(1);
  const std::string small = SerializeMessage(one);
  const std::string subst =
      std::string("\"\\{}[],:0-.eE+ tnf\x01\x7f\xc3\xa9\xe5\xed\xf4\xff", 25) +
      std::string("\0", 1);
  int taken = 0;
  for (size_t at = 0; at < small.size(); ++at) {
    for (char c : subst) {
      std::string t = small;
      t[at] = c;
      taken += ScanSame(t) ? 1 : 0;
    }
    ScanSame(small.substr(0, at));
  }
  EXPECT_GT(taken, 500);
  // The scanner's own bound on open containers, at its edge.
  const size_t d = internal::kMaxScanDepth;
  EXPECT_TRUE(ScanSame(std::string(d, '[') + std::string(d, ']')));
  EXPECT_FALSE(ScanSame(std::string(d + 1, '[') + std::string(d + 1, ']')));
  std::string objects;
  for (size_t i = 0; i < d; ++i) objects += "{\"a\":";
  objects += "1" + std::string(d, '}');
  EXPECT_TRUE(ScanSame(objects));
  EXPECT_FALSE(ScanSame("{\"a\":" + objects + "}"));
}

TEST(UploadFastTest, TheDepthLimitHoldsUnderEveryObject) {
  // An unknown key's value nested so that the whole document is 31, 32 and 33 levels deep,
  // under each kind of object (the root is level 1, a line object level 5).
  const json good = ToJson(AnUpload());
  const std::vector<std::pair<const char*, int>> objects = {
      {"", 1}, {"/entries/0", 3}, {"/checkouts/1", 3}, {"/checkouts/0/lines/1", 5}};
  for (const auto& [obj, level] : objects) {
    for (int total : {31, 32, 33}) {
      const int nested = total - level;
      json j = good;
      j[json::json_pointer(obj)]["zz"] = "@";
      std::string body = j.dump();
      const std::string mark = "\"zz\":\"@\"";
      body.replace(body.find(mark), mark.size(),
                   "\"zz\":" + std::string(nested, '[') + std::string(nested, ']'));
      const bool taken = CheckSame(body);
      EXPECT_EQ(taken, total <= kMaxJsonDepth) << obj << " " << total;
    }
  }
}

}  // namespace
}  // namespace loyalty::sync
