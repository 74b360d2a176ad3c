// Shared by the HQ tests: a service over a real SQLite file with a fake clock, and a
// terminal that writes hash-chained entries the way a ledger does.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "loyalty/base/clock.h"
#include "loyalty/base/encoding.h"
#include "loyalty/base/ids.h"
#include "loyalty/codes/mint.h"
#include "loyalty/hq/events.h"
#include "loyalty/hq/service.h"
#include "loyalty/hq/store.h"
#include "loyalty/ledger/ledger.h"
#include "loyalty/rules/rules.h"
#include "loyalty/sync/messages.h"
#include "support/api_record.h"
#include "support/hq_store.h"

namespace loyalty::hq::testing {

inline std::filesystem::path TempDir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() /
           ("hq_test_" + std::to_string(::getpid()) + "_" + name);
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

inline std::string HqSeed() { return std::string(32, '\x07'); }

// HqService::Handle's answer to `req`, recorded for the check against docs/openapi after the
// run (support/api_record.h). Every answer a test reads goes through here.
inline http::Response Recorded(const http::Request& req, http::Response r) {
  loyalty::testing::RecordApiResponse(loyalty::testing::Api::kHq, req.method, req.target, r);
  return r;
}

// A terminal's chain: each Add() makes the next entry with the ledger's hash rule.
struct FakeTerminal {
  std::string id;
  int64_t seq = 0;
  std::string head_hash = std::string(32, '\0');  // raw

  sync::Entry Make(const std::string& kind, uint64_t member, int64_t points, int64_t at_ms,
                   const std::string& checkout_id = "", const std::string& detail = "") {
    return MakeFull(kind, member, points, at_ms, checkout_id, "", detail);
  }
  sync::Entry MakeFull(const std::string& kind, uint64_t member, int64_t points, int64_t at_ms,
                       const std::string& checkout_id, const std::string& refund_id,
                       const std::string& detail) {
    model::Entry e;
    e.entry_id = NewEntryId(at_ms);
    e.terminal_id = id;
    e.seq = ++seq;
    e.kind = kind;
    e.member_id = member;
    e.points = points;
    e.at_ms = at_ms;
    e.checkout_id = checkout_id;
    e.refund_id = refund_id;
    e.detail = detail;
    e.prev_hash = head_hash;
    e.hash = model::EntryHash(e);
    const std::string h = e.hash;
    head_hash = h;
    return e;
  }
};

inline sync::Checkout MakeCheckout(const std::string& id, std::optional<uint64_t> member,
                                   int64_t total_due, int64_t at_ms,
                                   const std::string& code_hash = "",
                                   const std::string& coupon = "") {
  sync::Checkout c;
  c.checkout_id = id;
  c.request_hash = std::string(64, 'a');
  c.member_id = member;
  c.rules_version = "default";
  c.committed_at_ms = at_ms;
  c.subtotal_cents = total_due;
  c.total_due_cents = total_due;
  c.points_earned = total_due / 100;
  c.eligible_cents = total_due;
  c.redeemable_cents = total_due;
  c.code_hash = code_hash;
  c.tender = "cash";
  c.coupon_id = coupon;
  c.request_json = "{}";
  c.response_json = "{}";
  c.lines.push_back({0, "sku", "grocery", 1, total_due, 0, 0, 0, total_due, total_due, true, true});
  return c;
}

// A checkout priced as a terminal prices it (the default rules), and the entries its commit
// writes: what an honest terminal uploads.
struct Sale {
  sync::Checkout checkout;
  std::vector<sync::Entry> entries;
};
inline Sale PricedSaleOf(FakeTerminal& t, uint64_t member, const std::string& id,
                         const rules::QuoteInput& in, int64_t at_ms, const std::string& code_hash);
inline Sale PricedSale(FakeTerminal& t, uint64_t member, const std::string& id,
                       const std::vector<rules::Line>& lines, int64_t at_ms, int64_t redeem = 0,
                       const std::string& code_hash = "", const std::string& tier = "member",
                       const std::optional<rules::Coupon>& coupon = std::nullopt,
                       bool frozen = false) {
  rules::QuoteInput in;
  in.lines = lines;
  rules::MemberContext ctx;
  ctx.tier = tier;
  ctx.frozen = frozen;
  ctx.available_balance = 1'000'000'000;
  ctx.static_identification = code_hash.empty();
  in.member = ctx;
  in.coupon = coupon;
  in.redeem.points = redeem;
  return PricedSaleOf(t, member, id, in, at_ms, code_hash);
}
// `in` priced with the default rules (its member's context included) into a sale.
inline Sale PricedSaleOf(FakeTerminal& t, uint64_t member, const std::string& id,
                         const rules::QuoteInput& in, int64_t at_ms, const std::string& code_hash) {
  const auto& lines = in.lines;
  const auto& coupon = in.coupon;
  auto q = rules::ComputeQuote(rules::Rules::Defaults(), in);
  EXPECT_TRUE(q.ok()) << q.status().ToString();
  Sale s;
  sync::Checkout& c = s.checkout;
  c.checkout_id = id;
  c.request_hash = std::string(64, 'a');
  c.member_id = member;
  c.rules_version = "default";
  c.committed_at_ms = at_ms;
  c.subtotal_cents = q->subtotal_cents;
  c.total_due_cents = q->total_due_cents;
  c.points_earned = q->points_to_earn;
  c.redeemed_points = q->redeem_points;
  c.eligible_cents = q->eligible_cents;
  c.redeemable_cents = q->redeemable_cents;
  c.code_hash = code_hash;
  c.tender = "cash";
  c.coupon_id = coupon ? coupon->coupon_id : "";
  for (size_t i = 0; i < lines.size(); ++i) {
    const auto& l = q->lines[i];
    c.lines.push_back({static_cast<int64_t>(i), lines[i].sku, lines[i].category, lines[i].qty,
                       lines[i].unit_price_cents, l.tier_discount_cents, l.coupon_cents,
                       l.redeem_cents, l.net_cents, l.net_before_redeem_cents, l.points_eligible,
                       l.redeemable});
  }
  s.entries.push_back(t.Make("earn", member, c.points_earned, at_ms, id));
  if (c.redeemed_points > 0)
    s.entries.push_back(t.Make("redeem", member, -c.redeemed_points, at_ms, id));
  return s;
}
inline std::vector<rules::Line> Basket(int64_t cents, const std::string& category = "grocery") {
  return {{"sku-1", 1, cents, category}};
}

// Every route of HQ, method and target: the admin routes (for this member), the terminal
// routes of T01, health, and one route that does not exist.
inline std::vector<std::pair<std::string, std::string>> HqRoutes(const std::string& member_id) {
  return {{"GET", "/v1/health"},
          {"POST", "/v1/members"},
          {"GET", "/v1/members/" + member_id},
          {"POST", "/v1/members/" + member_id + "/devices"},
          {"POST", "/v1/members/" + member_id + "/adjustments"},
          {"POST", "/v1/members/" + member_id + "/unfreeze"},
          {"POST", "/v1/members/" + member_id + "/tier"},
          {"POST", "/v1/members/" + member_id + "/identities"},
          {"POST", "/v1/members/" + member_id + "/claims"},
          {"GET", "/v1/members/" + member_id + "/claims"},
          {"POST", "/v1/devices/d-1/revoke"},
          {"POST", "/v1/coupons"},
          {"GET", "/v1/terminals/T01"},
          {"POST", "/v1/admin/expire"},
          {"POST", "/v1/sync/T01/hello"},
          {"POST", "/v1/sync/T01/entries"},
          {"GET", "/v1/sync/T01/changes"},
          {"POST", "/v1/sync/T01/recon/entries"},
          {"POST", "/v1/sync/T01/recon/balances"},
          {"POST", "/v1/sync/T01/fetch"},
          {"POST", "/v1/sync/T01/members"},
          {"POST", "/v1/no-such-route"}};
}

class HqFixture : public ::testing::Test {
 protected:
  // 2026-03-15T04:00:00Z
  static constexpr int64_t kNowMs = 1773547200000;

  void SetUp() override {
    dir_ = TempDir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    clock_.set_now_ms(kNowMs);
    Open();
  }
  void TearDown() override {
    service_.reset();
    store_.reset();
    (void)loyalty::testing::DropTestHqStore(dir_);  // the server is thrown away after the run
    std::filesystem::remove_all(dir_);
  }

  void Open() {
    service_.reset();
    store_.reset();
    greeted_.clear();
    auto s = loyalty::testing::OpenTestHqStore(dir_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    HqOptions o;
    o.admin_token = "secret-token";
    o.metrics_token = "scrape-token";
    o.signing_seeds[1] = std::string(32, '\x01');
    o.signing_seeds[3] = HqSeed();
    o.card_prefix = "88";
    o.timezone = *TimeZone::Fixed(8 * 3600);
    o.rules = rules_;
    o.on_event = [this](const char* event, const nlohmann::json& fields) {
      // loyalty-hq logs what the service reports: each is an event of its catalogue.
      EXPECT_NE(FindHqEvent(event), nullptr) << event << " is not in loyalty/hq/events.h";
      events_.push_back({event, fields});
    };
    service_ =
        std::make_unique<HqService>(*store_, clock_, PiiCipher::FromKey(std::string(32, 'k')), o);
  }

  http::Response Call(const std::string& method, const std::string& target,
                      const std::string& body = "", bool admin = true) {
    http::Request r;
    r.method = method;
    r.target = target;
    size_t q = target.find('?');
    r.path = target.substr(0, q);
    if (q != std::string::npos) {
      auto parsed = http::ParseQuery(target.substr(q + 1));
      if (parsed.ok()) r.query = *parsed;
    }
    r.body = body;
    if (admin) r.authorization = "Bearer secret-token";
    GreetOnce(r.path);
    r.remote_address = remote_;
    return Recorded(r, service_->Handle(r, peer_));
  }

  // Every terminal the fixture talks to is a lane of store S001 (kStore), where CreateMember
  // enrols members: its first terminal route is preceded by the hello a real run starts
  // with, which tells HQ its store (hq-and-sync.md: terminals hold their store's members).
  static constexpr char kStore[] = "S001";
  void GreetOnce(const std::string& path) {
    static const std::string kSync = "/v1/sync/";
    if (path.rfind(kSync, 0) != 0) return;
    const size_t end = path.find('/', kSync.size());
    if (end == std::string::npos || path.substr(end) == "/hello") return;
    const std::string tid = path.substr(kSync.size(), end - kSync.size());
    if (!greeted_.insert(tid).second) return;
    http::Request h;
    h.method = "POST";
    h.target = h.path = kSync + tid + "/hello";
    h.body = Hello(tid);
    service_->Handle(h, peer_);
  }
  static std::string Hello(const std::string& tid, const std::string& store = kStore) {
    (void)tid;
    return nlohmann::json{{"protocol", 1},
                          {"store_id", store},
                          {"agent_version", "test"},
                          {"head", {{"seq", 0}, {"hash", ""}}},
                          {"entries", 0}}
        .dump();
  }
  http::Response Call(const std::string& method, const std::string& target,
                      const nlohmann::json& body, bool admin = true) {
    return Call(method, target, body.dump(), admin);
  }
  http::Response Call(const std::string& method, const std::string& target, const char* body,
                      bool admin = true) {
    return Call(method, target, std::string(body), admin);
  }
  static nlohmann::json J(const http::Response& r) { return nlohmann::json::parse(r.body); }

  std::string CreateMember(nlohmann::json body = {{"name", "张三"}, {"phone", "13812345678"}}) {
    if (!body.contains("store_id"))
      body["store_id"] = kStore;
    else if (body["store_id"].is_null())
      body.erase("store_id");  // enrolled at no store
    auto r = Call("POST", "/v1/members", body);
    EXPECT_EQ(r.status, 201) << r.body;
    return J(r)["member_id"];
  }

  sync::UploadResponse Upload(const std::string& tid, const sync::UploadRequest& up) {
    auto r = Call("POST", "/v1/sync/" + tid + "/entries", sync::SerializeMessage(up), false);
    EXPECT_EQ(r.status, 200) << r.body;
    auto out = sync::ParseMessage<sync::UploadResponse>(r.body);
    EXPECT_TRUE(out.ok()) << r.body;
    return out.ok() ? *out : sync::UploadResponse{};
  }

  nlohmann::json Member(const std::string& id) {
    auto r = Call("GET", "/v1/members/" + id);
    EXPECT_EQ(r.status, 200) << r.body;
    return J(r);
  }

  std::filesystem::path dir_;
  FakeClock clock_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<HqService> service_;
  std::optional<std::string> peer_;
  std::set<std::string> greeted_;  // terminals that said hello (GreetOnce)
  std::string remote_;  // the client's address as the listener gives it ("": not loopback)
  std::optional<rules::Rules> rules_;  // HQ's rules file; nullopt: the defaults
  std::vector<std::pair<std::string, nlohmann::json>> events_;  // what the service reported
};

}  // namespace loyalty::hq::testing
