// loyalty-hq's route families (admin routes with the token, terminal sync routes over the
// trusted plain-HTTP path) through HqService::Handle over a real SQLite store in a temporary
// folder, built once at start: the first byte picks a route, the rest is the body. Whatever
// the bytes, the process survives and the answer is 2xx or 4xx, never a 5xx.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "loyalty/base/clock.h"
#include "loyalty/hq/service.h"
#include "loyalty/hq/store.h"

namespace {

using namespace loyalty;

struct Route {
  const char* method;
  const char* target;  // {m}: the member created at start
};
constexpr Route kRoutes[] = {
    {"POST", "/v1/members"},
    {"GET", "/v1/members/{m}"},
    {"POST", "/v1/members/{m}/devices"},
    {"POST", "/v1/members/{m}/adjustments"},
    {"POST", "/v1/members/{m}/unfreeze"},
    {"POST", "/v1/members/{m}/tier"},
    {"POST", "/v1/members/{m}/identities"},
    {"POST", "/v1/devices/d-1/revoke"},
    {"POST", "/v1/coupons"},
    {"GET", "/v1/terminals/T01"},
    {"POST", "/v1/sync/T01/hello"},
    {"POST", "/v1/sync/T01/entries"},
    {"GET", "/v1/sync/T01/changes"},
    {"POST", "/v1/sync/T01/recon/entries"},
    {"POST", "/v1/sync/T01/recon/balances"},
    {"POST", "/v1/sync/T01/fetch"},
    {"POST", "/v1/sync/T01/members"},
    {"POST", "/v1/sync/T01/sale"},
    {"POST", "/v1/sync/T01/receipt-key"},
    {"POST", "/v1/sync/T01/evicted"},
    {"GET", "/v1/refunds"},
    {"GET", "/v1/health"},
};

struct World {
  std::filesystem::path dir;
  FakeClock clock{1773547200000};  // 2026-03-15T04:00:00Z
  std::unique_ptr<hq::Store> store;
  std::unique_ptr<hq::HqService> service;
  std::string member_id;

  World() {
    dir = std::filesystem::temp_directory_path() / ("fuzz_hq_routes_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    // Removed when the run ends (a crash leaves it, with the input that made it).
    static std::filesystem::path made;
    made = dir;
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(made, ec);
    });
    auto s = hq::OpenSqliteStore((dir / "hq.db").string());
    if (!s.ok()) std::abort();
    store = std::move(*s);
    hq::HqOptions o;
    o.admin_token = "fuzz-token";
    o.signing_seeds[1] = std::string(32, '\x07');
    service = std::make_unique<hq::HqService>(*store, clock,
                                              hq::PiiCipher::FromKey(std::string(32, 'k')), o);
    auto r = Call("POST", "/v1/members", R"({"name":"张三","phone":"13812345678"})");
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    if (r.status != 201 || !j.is_object() || !j.contains("member_id")) std::abort();
    member_id = j["member_id"].get<std::string>();
  }

  http::Response Call(const std::string& method, std::string target, std::string body) {
    if (auto at = target.find("{m}"); at != std::string::npos) target.replace(at, 3, member_id);
    http::Request r;
    r.method = method;
    r.target = target;
    r.path = target;
    r.body = std::move(body);
    r.authorization = "Bearer fuzz-token";
    r.remote_address = "127.0.0.1";
    return service->Handle(r, std::nullopt);
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
  auto r = w.Call(route.method, route.target,
                  std::string(reinterpret_cast<const char*>(data) + 1, size - 1));
  if (!((r.status >= 200 && r.status < 300) || (r.status >= 400 && r.status < 500))) std::abort();
  return 0;
}
