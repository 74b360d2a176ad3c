// Pure parsers of the HTTP layer: percent-decoding, query strings, request targets,
// host:port text and loopback detection.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "loyalty/http/address.h"
#include "loyalty/http/errors.h"
#include "loyalty/http/message.h"

namespace loyalty::http {
namespace {

TEST(PercentEncode, KeepsUnreservedAndEscapesEveryOtherByte) {
  EXPECT_EQ(PercentEncode("AZaz09-._~"), "AZaz09-._~");
  EXPECT_EQ(PercentEncode("a b/c?d=e&f+g%"), "a%20b%2Fc%3Fd%3De%26f%2Bg%25");
  EXPECT_EQ(PercentEncode(std::string("\0\xff", 2)), "%00%FF");
  EXPECT_EQ(PercentEncode("中"), "%E4%B8%AD");
  EXPECT_EQ(PercentEncode(""), "");
  // The inverse of PercentDecode for every byte.
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  auto back = PercentDecode(PercentEncode(all), /*plus_is_space=*/true);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, all);
}

TEST(PercentDecode, DecodesEscapesInEitherCase) {
  auto r = PercentDecode("a%20b%2fc%2Fd%e4%B8%ad", false);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "a b/c/d\xe4\xb8\xad");
}

TEST(PercentDecode, PlusIsSpaceOnlyWhenAsked) {
  EXPECT_EQ(*PercentDecode("a+b", true), "a b");
  EXPECT_EQ(*PercentDecode("a+b", false), "a+b");
  EXPECT_EQ(*PercentDecode("a%2Bb", true), "a+b");
}

TEST(PercentDecode, RefusesTruncatedAndNonHexEscapes) {
  for (const char* bad : {"%", "%2", "a%", "a%4", "%zz", "%2g", "%g2", "%%41"}) {
    auto r = PercentDecode(bad, false);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), ErrorCode::kBadRequest);
    }
  }
  // The escape at the very end is complete.
  EXPECT_EQ(*PercentDecode("ab%41", false), "abA");
}

TEST(PercentDecode, KeepsNulForCallerToJudge) {
  auto r = PercentDecode("a%00b", false);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, std::string("a\0b", 3));
}

TEST(ParseQuery, SplitsAndDecodes) {
  auto q = ParseQuery("after=12&wait_ms=30000&name=%E5%BC%A0+san&flag&empty=");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->size(), 5u);
  EXPECT_EQ(q->at("after"), "12");
  EXPECT_EQ(q->at("wait_ms"), "30000");
  EXPECT_EQ(q->at("name"), "\xe5\xbc\xa0 san");
  EXPECT_EQ(q->at("flag"), "");
  EXPECT_EQ(q->at("empty"), "");
}

TEST(ParseQuery, FirstOfRepeatedKeyWinsAndEmptyPiecesAreSkipped) {
  auto q = ParseQuery("&a=1&&a=2&b=x=y&");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->size(), 2u);
  EXPECT_EQ(q->at("a"), "1");
  EXPECT_EQ(q->at("b"), "x=y");  // only the first '=' separates
}

TEST(ParseQuery, EmptyIsEmpty) {
  auto q = ParseQuery("");
  ASSERT_TRUE(q.ok());
  EXPECT_TRUE(q->empty());
}

TEST(ParseQuery, RefusesBadEscapeInKeyOrValue) {
  EXPECT_FALSE(ParseQuery("a=%zz").ok());
  EXPECT_FALSE(ParseQuery("%zz=1").ok());
  EXPECT_FALSE(ParseQuery("ok=1&bad=%4").ok());
}

TEST(ParseTarget, OriginForm) {
  auto t = ParseTarget("/v1/scans?after=3&wait_ms=100");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->path, "/v1/scans");
  EXPECT_EQ(t->raw_query, "after=3&wait_ms=100");
  EXPECT_EQ(t->query.at("after"), "3");
  EXPECT_EQ(t->query.at("wait_ms"), "100");
}

TEST(ParseTarget, PathIsDecodedButPlusStays) {
  auto t = ParseTarget("/v1/members/a%20b+c?");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->path, "/v1/members/a b+c");
  EXPECT_EQ(t->raw_query, "");
  EXPECT_TRUE(t->query.empty());
}

TEST(ParseTarget, AbsoluteFormDropsSchemeAndAuthority) {
  auto t = ParseTarget("http://127.0.0.1:8787/v1/health?x=1");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->path, "/v1/health");
  EXPECT_EQ(t->query.at("x"), "1");
  auto bare = ParseTarget("HTTP://localhost");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->path, "/");
  auto query_only = ParseTarget("http://localhost?x=2");
  ASSERT_TRUE(query_only.ok());
  EXPECT_EQ(query_only->path, "/");
  EXPECT_EQ(query_only->query.at("x"), "2");
}

TEST(ParseTarget, Asterisk) {
  auto t = ParseTarget("*");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->path, "*");
}

TEST(ParseTarget, RefusesWhatNoRouteCanMean) {
  for (const char* bad : {"", "v1/health", "ftp://h/x", "http:///x", "/a#frag", "/a%zz", "/a%00b",
                          "/a%0Ab", "/a%7F", "/ok?x=%"}) {
    auto t = ParseTarget(bad);
    EXPECT_FALSE(t.ok()) << bad;
    if (!t.ok()) {
      EXPECT_EQ(t.status().code(), ErrorCode::kBadRequest);
    }
  }
}

TEST(JsonError, HasTheContractShape) {
  Response r = JsonError(ErrorCode::kBodyTooLarge, "too \"big\"");
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(r.content_type, "application/json");
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j,
            (nlohmann::json{{"error", {{"code", "body_too_large"}, {"message", "too \"big\""}}}}));
}

TEST(JsonError, InvalidUtf8InMessageStillGivesValidJson) {
  Response r = JsonError(ErrorCode::kBadRequest, "bad byte \xff here");
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["error"]["code"], "bad_request");
}

TEST(RequestHeaders, LookupIsCaseInsensitiveAndFirstWins) {
  Request r;
  r.headers = {{"X-Thing", "one"}, {"x-thing", "two"}, {"Accept", "*/*"}};
  EXPECT_EQ(r.Header("x-THING"), "one");
  EXPECT_TRUE(r.HasHeader("accept"));
  EXPECT_FALSE(r.HasHeader("authorization"));
  EXPECT_EQ(r.Header("authorization"), "");
}

TEST(ParseHostPort, TheThreeSpellings) {
  auto a = ParseHostPort("127.0.0.1:8787");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->first, "127.0.0.1");
  EXPECT_EQ(a->second, 8787);
  auto b = ParseHostPort("[::1]:8787");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->first, "::1");
  EXPECT_EQ(b->second, 8787);
  auto c = ParseHostPort("localhost:8787");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->first, "localhost");
  EXPECT_EQ(c->second, 8787);
}

TEST(ParseHostPort, PortBoundaries) {
  EXPECT_EQ(ParseHostPort("h:0")->second, 0);
  EXPECT_EQ(ParseHostPort("h:65535")->second, 65535);
  EXPECT_EQ(ParseHostPort("h:00080")->second, 80);
  EXPECT_FALSE(ParseHostPort("h:65536").ok());
  EXPECT_FALSE(ParseHostPort("h:100000").ok());
  EXPECT_FALSE(ParseHostPort("h:").ok());
  EXPECT_FALSE(ParseHostPort("h:-1").ok());
  EXPECT_FALSE(ParseHostPort("h:+80").ok());
  EXPECT_FALSE(ParseHostPort("h:8 0").ok());
}

TEST(ParseHostPort, RefusesMalformedHosts) {
  for (const char* bad :
       {"", "8787", ":8787", "[]:8787", "[::1]", "[::1]8787", "[::1:8787", "[not-v6]:1", "::1:8787",
        "a b:1", "host/x:1", "[127.0.0.1]:80", "h\n:1"}) {
    auto r = ParseHostPort(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), ErrorCode::kBadRequest);
    }
  }
  EXPECT_FALSE(ParseHostPort(std::string(254, 'a') + ":1").ok());
  EXPECT_TRUE(ParseHostPort(std::string(253, 'a') + ":1").ok());
}

TEST(IsLoopbackAddress, LoopbackForms) {
  for (const char* yes : {"127.0.0.1", "127.255.255.254", "127.1.2.3", "::1", "[::1]", "localhost",
                          "LocalHost", "localhost.", "::ffff:127.0.0.1", "0:0:0:0:0:0:0:1"}) {
    EXPECT_TRUE(IsLoopbackAddress(yes)) << yes;
  }
}

TEST(IsLoopbackAddress, EverythingElse) {
  for (const char* no : {"", "0.0.0.0", "::", "128.0.0.1", "126.255.255.255", "10.0.0.1",
                         "192.168.1.2", "::2", "::ffff:10.0.0.1", "localhost.example",
                         "example.com", "127.0.0.1:80", "127.1", "[127.0.0.1]", "localhos"}) {
    EXPECT_FALSE(IsLoopbackAddress(no)) << no;
  }
}

// The per-address connection cap counts IPv4 clients by address and IPv6 ones by /64.
TEST(ConnectionLimitKey, Ipv4ByAddress) {
  EXPECT_EQ(ConnectionLimitKey("192.0.2.7"), "192.0.2.7");
  EXPECT_EQ(ConnectionLimitKey("127.0.0.1"), "127.0.0.1");
  EXPECT_NE(ConnectionLimitKey("192.0.2.7"), ConnectionLimitKey("192.0.2.8"));
}

TEST(ConnectionLimitKey, Ipv4MappedIpv6IsTheIpv4Address) {
  EXPECT_EQ(ConnectionLimitKey("::ffff:192.0.2.7"), "192.0.2.7");
  EXPECT_EQ(ConnectionLimitKey("::ffff:c000:207"), "192.0.2.7");
  EXPECT_EQ(ConnectionLimitKey("::ffff:127.0.0.1"), ConnectionLimitKey("127.0.0.1"));
  EXPECT_NE(ConnectionLimitKey("::ffff:192.0.2.7"), ConnectionLimitKey("::ffff:192.0.2.8"));
}

TEST(ConnectionLimitKey, Ipv6ByItsSlash64) {
  EXPECT_EQ(ConnectionLimitKey("2001:db8:1:2:a:b:c:d"), "2001:db8:1:2::/64");
  // Any interface identifier, and any spelling of it, is the same client.
  for (const char* same : {"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff",
                           "2001:0DB8:0001:0002:0:0:0:0", "2001:db8:1:2::"}) {
    EXPECT_EQ(ConnectionLimitKey(same), "2001:db8:1:2::/64") << same;
  }
  // The next /64 over, or one differing only in the upper half, is another client.
  EXPECT_EQ(ConnectionLimitKey("2001:db8:1:3::1"), "2001:db8:1:3::/64");
  EXPECT_EQ(ConnectionLimitKey("2001:db9:1:2::1"), "2001:db9:1:2::/64");
  EXPECT_EQ(ConnectionLimitKey("::1"), "::/64");
  EXPECT_EQ(ConnectionLimitKey("fe80::1%1"), "fe80::/64");  // the scope id does not matter
  // Not the IPv4 text of a mapped address: an IPv6 /64 never collides with an IPv4 client.
  EXPECT_NE(ConnectionLimitKey("::c000:207"), ConnectionLimitKey("192.0.2.7"));
}

TEST(ConnectionLimitKey, TextThatIsNoAddressIsItsOwnKey) {
  for (const char* other : {"", "localhost", "not an address", "2001:db8::1::2"}) {
    EXPECT_EQ(ConnectionLimitKey(other), other) << other;
  }
}

// The Bearer scheme in any case (RFC 9110), one space, then exactly the token.
TEST(BearerMatches, TheSchemeInAnyCaseAndExactlyTheToken) {
  for (const char* ok : {"Bearer s3cret", "bearer s3cret", "BEARER s3cret", "bEaReR s3cret"})
    EXPECT_TRUE(BearerMatches(ok, "s3cret")) << ok;
  for (const char* bad : {"", "Bearer", "Bearer ", "Bearer s3cre", "Bearer s3cret ",
                          "Bearer  s3cret", "Bearer S3CRET", "Basic s3cret", "Bearers3cret",
                          "Bearer\ts3cret", "Bearerxs3cret", " Bearer s3cret"})
    EXPECT_FALSE(BearerMatches(bad, "s3cret")) << bad;
  EXPECT_FALSE(BearerMatches("Bearer ", ""));  // an empty token never matches
  EXPECT_FALSE(BearerMatches("", ""));
}

}  // namespace
}  // namespace loyalty::http
