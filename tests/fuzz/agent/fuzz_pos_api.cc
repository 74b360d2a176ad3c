// The POS API's route family through the daemon's own request handler (PosApi::Handle), over
// a real ledger in a temporary folder built once at start: the first byte picks a route, the
// rest is the body. Whatever the bytes, the process survives and the answer is 2xx or 4xx
// (a malformed or too deep body is 400 bad_request on every route); never a 5xx, except the
// documented 503 of /v1/sync, which this in-process handler runs without a sync service.
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <memory>
#include <string>

#include "api.h"
#include "log.h"
#include "loyalty/base/clock.h"
#include "loyalty/base/encoding.h"
#include "loyalty/codes/codes.h"
#include "loyalty/codes/mint.h"
#include "loyalty/codes/return_token.h"
#include "loyalty/codes/trusted_time.h"
#include "loyalty/rules/rules.h"

namespace {

using namespace loyalty;

constexpr char kHqSeedHex[] = "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20";
constexpr char kToken[] = "fuzz-token";

struct Route {
  const char* method;
  const char* target;
  bool sync;  // /v1/sync: 503 without a sync service
};
constexpr Route kRoutes[] = {
    {"POST", "/v1/identify", false},
    {"POST", "/v1/checkouts/quote", false},
    {"POST", "/v1/checkouts/commit", false},
    {"POST", "/v1/refunds", false},
    {"GET", "/v1/members/1234567890123", false},
    {"GET", "/v1/checkouts/c-1", false},
    {"GET", "/v1/checkouts/c-1/enrolment", false},
    {"GET", "/v1/checkouts/c-1/enrolment.svg", false},
    {"GET", "/v1/scans", false},
    {"POST", "/v1/sync", true},
    {"GET", "/v1/sync", true},
    {"POST", "/v1/members/lookup", false},
};

// Everything the handler needs, built once: the ledger file, the writer thread, the service.
struct World {
  std::filesystem::path dir;
  SystemClock clock;
  std::unique_ptr<codes::CodeVerifier> verifier;
  codes::TrustedTime trusted{60};
  std::unique_ptr<ledger::Ledger> reader;
  std::unique_ptr<checkout::CheckoutService> service;
  std::unique_ptr<checkout::LedgerWriter> writer;
  boost::asio::io_context ioc;
  std::unique_ptr<agent::ScanHub> scans;
  std::unique_ptr<agent::PosApi> api;

  World() {
    agent::SetLogLevel(agent::Level::kOff);
    dir = std::filesystem::temp_directory_path() / ("fuzz_pos_api_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    // Removed when the run ends (a crash leaves it, with the input that made it).
    static std::filesystem::path made;
    made = dir;
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(made, ec);
    });
    const std::string db = (dir / "ledger.db").string();
    auto w = ledger::Ledger::Open(db, ledger::Ledger::Mode::kWriter, "T01");
    if (!w.ok()) std::abort();
    auto r = ledger::Ledger::Open(db, ledger::Ledger::Mode::kReader, "T01");
    if (!r.ok()) std::abort();
    reader = std::move(*r);
    codes::CodesConfig cc;
    cc.hq_public_keys[1] = codes::Ed25519PublicFromSeed(*HexDecode(kHqSeedHex));
    cc.channels.push_back({"wechat", "^[0-9]{12}$"});
    auto v = codes::CodeVerifier::Create(cc);
    if (!v.ok()) std::abort();
    verifier = std::move(*v);
    service = std::make_unique<checkout::CheckoutService>(
        [] {
          checkout::ServiceOptions o{"T01", "S001"};
          o.phone_lookups_per_hour = 1 << 30;  // the limit would soon answer every look-up
          return o;
        }(),
        clock, *verifier, trusted, TimeZone::Utc(),
        std::make_shared<rules::Rules>(rules::Rules::Defaults()));
    service->SetPhoneKeys({{1, std::string(32, '\x07')}});
    // A certified receipt key, so the enrolment routes answer what a synced terminal does.
    const std::string receipt_seed(32, '\x42');
    service->SetReceiptKey(
        receipt_seed, codes::MakeReceiptKeyCert(*HexDecode(kHqSeedHex), 1, "T01",
                                                codes::ReceiptPublicKey(receipt_seed), 0xffffffff));
    writer = std::make_unique<checkout::LedgerWriter>(std::move(*w));
    scans = std::make_unique<agent::ScanHub>(ioc);
    agent::ApiContext ctx;
    ctx.token = kToken;
    ctx.version = "fuzz";
    ctx.terminal_id = "T01";
    ctx.store_id = "S001";
    ctx.service = service.get();
    ctx.writer = writer.get();
    ctx.reader = reader.get();
    ctx.scans = scans.get();
    ctx.enrolment.url_template = "https://join.example.com/m?claim={claim}";
    api = std::make_unique<agent::PosApi>(std::move(ctx));
  }
};

World& TheWorld() {
  static World* w = new World();  // lives for the process: the fuzzer exits without unwinding
  return *w;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  World& w = TheWorld();
  if (size == 0) return 0;
  const Route& route = kRoutes[data[0] % (sizeof kRoutes / sizeof kRoutes[0])];
  http::Request req;
  req.method = route.method;
  req.target = route.target;
  req.path = route.target;
  if (req.path == "/v1/scans") req.query["wait_ms"] = "0";
  req.remote_address = "127.0.0.1";
  req.authorization = std::string("Bearer ") + kToken;
  req.body.assign(reinterpret_cast<const char*>(data) + 1, size - 1);
  // Commit and refund answer from the writer thread; the scans long-poll from the event loop.
  std::promise<http::Response> answered;
  auto future = answered.get_future();
  w.api->Handle(std::move(req),
                [&answered](http::Response r) { answered.set_value(std::move(r)); });
  while (future.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
    w.ioc.restart();
    w.ioc.run_for(std::chrono::milliseconds(1));
  }
  http::Response r = future.get();
  const bool ok = (r.status >= 200 && r.status < 300) || (r.status >= 400 && r.status < 500) ||
                  (route.sync && r.status == 503);
  if (!ok) std::abort();
  return 0;
}
