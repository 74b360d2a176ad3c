#include "support/hq_server.h"
#include "support/api_record.h"
#include "support/hq_store.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include <thread>

#include "loyalty/hq/pii.h"
#include "loyalty/hq/service.h"
#include "loyalty/hq/store.h"
#include "loyalty/http/client.h"
#include "loyalty/http/errors.h"
#include "loyalty/http/message.h"
#include "loyalty/http/server.h"

namespace loyalty::testing {

using nlohmann::json;

namespace {

// The terminal id a terminal route (/v1/sync/{tid}/...) names; nullopt for other routes.
std::optional<std::string> TerminalOfRoute(const std::string& path) {
  static const std::string kPrefix = "/v1/sync/";
  if (path.rfind(kPrefix, 0) != 0) return std::nullopt;
  size_t end = path.find('/', kPrefix.size());
  if (end == std::string::npos) return std::nullopt;
  return path.substr(kPrefix.size(), end - kPrefix.size());
}

}  // namespace

struct InProcessHq::Loop {
  boost::asio::io_context ioc;
  std::unique_ptr<hq::Store> store;
  std::unique_ptr<hq::HqService> service;
  std::unique_ptr<http::Server> server;
  std::thread thread;
};

InProcessHq::InProcessHq(std::filesystem::path dir, InProcessHqOptions options)
    : dir_(std::move(dir)), opt_(std::move(options)), loop_(std::make_unique<Loop>()) {
  std::filesystem::create_directories(dir_);
  auto store = OpenTestHqStore(dir_);
  if (!store.ok()) {
    ADD_FAILURE() << "HQ store: " << store.status().ToString();
    return;
  }
  loop_->store = std::move(*store);
  hq::HqOptions o;
  o.admin_token = opt_.admin_token;
  o.signing_seeds[1] = std::string(32, '\x01');
  o.card_prefix = "88";
  o.rules = opt_.rules;
  const Clock& clock = opt_.clock ? *opt_.clock : SystemClock::Instance();
  loop_->service = std::make_unique<hq::HqService>(*loop_->store, clock,
                                                   hq::PiiCipher::FromKey(std::string(32, 'k')), o);
  if (Status s = loop_->service->Start(); !s.ok()) {
    ADD_FAILURE() << "HQ start: " << s.ToString();
    return;
  }
  http::ServerOptions so;
  so.host = "127.0.0.1";
  so.port = 0;
  so.body_limit = 1 << 20;
  const bool tls = opt_.pki != nullptr;
  if (tls) {
    http::TlsServerOptions t;
    t.cert_chain_file = opt_.pki->server().cert_file;
    t.key_file = opt_.pki->server().key_file;
    t.client_ca_file = opt_.pki->ca_file();
    t.client_certs = http::ClientCertMode::kRequest;
    so.tls = std::move(t);
  }
  hq::HqService* service = loop_->service.get();
  loop_->server = std::make_unique<http::Server>(
      loop_->ioc, so, [service, tls](http::Request&& req, http::Responder respond) {
        if (!tls) {
          respond(service->Handle(req, std::nullopt));
          return;
        }
        if (auto tid = TerminalOfRoute(req.path)) {
          if (Status s = http::CheckPeerCn(req, *tid); !s.ok()) {
            respond(http::JsonError(ErrorCode::kForbidden, s.message()));
            return;
          }
          respond(service->Handle(req, req.peer_cn));
          return;
        }
        respond(service->Handle(req, std::nullopt));
      });
  if (Status s = loop_->server->Listen(); !s.ok()) {
    ADD_FAILURE() << "HQ listen: " << s.ToString();
    return;
  }
  loop_->thread = std::thread([l = loop_.get()] { l->ioc.run(); });
}

InProcessHq::~InProcessHq() {
  if (loop_->thread.joinable()) {
    loop_->server->Stop([l = loop_.get()] { l->ioc.stop(); });
    loop_->thread.join();
  }
  loop_->server.reset();
  loop_->service.reset();
  loop_->store.reset();
}

uint16_t InProcessHq::port() const { return loop_->server ? loop_->server->port() : 0; }

HttpReply InProcessHq::Admin(const std::string& method, const std::string& target,
                             const json& body) {
  std::unique_ptr<http::Client> c;
  if (tls()) {
    http::ClientTlsOptions o;
    o.ca_file = opt_.pki->ca_file();
    c = std::make_unique<http::Client>("127.0.0.1", port(), o);
  } else {
    c = std::make_unique<http::Client>("127.0.0.1", port());
  }
  return RecordedReply(Api::kHq, method, target,
                       c->Request(method, target, body.is_null() ? "" : body.dump(),
                                  {{"Authorization", "Bearer " + opt_.admin_token}}, 10000));
}

std::string InProcessHq::CreateMember(const std::string& phone) {
  auto r = Admin("POST", "/v1/members", json{{"name", "张三"}, {"phone", phone}});
  EXPECT_EQ(r.status, 201) << r.raw;
  return r.body.is_object() ? r.body.value("member_id", "") : "";
}

json InProcessHq::Member(const std::string& member_id) {
  auto r = Admin("GET", "/v1/members/" + member_id);
  EXPECT_EQ(r.status, 200) << r.raw;
  return r.body;
}

json InProcessHq::Terminal(const std::string& terminal_id) {
  auto r = Admin("GET", "/v1/terminals/" + terminal_id);
  if (r.status == 404) return json::object();
  EXPECT_EQ(r.status, 200) << r.raw;
  return r.body;
}

}  // namespace loyalty::testing
