// The transport to HQ: the project's HTTP client (loyalty/http/client.h), plain or TLS,
// with the daemon's cancel flag, HQ's base path and the protocol's response limit.
#include <memory>
#include <utility>

#include "loyalty/http/client.h"
#include "loyalty/sync/transport.h"

namespace loyalty::sync {
namespace {

constexpr size_t kMaxResponseBytes = 8 << 20;  // PROTOCOL.md: responses ≤ 8 MiB

class ClientTransport final : public Transport {
 public:
  ClientTransport(std::unique_ptr<http::Client> client, std::string base_path)
      : client_(std::move(client)), base_path_(std::move(base_path)) {}

  Result<Exchange> Send(std::string_view method, std::string_view target,
                        std::string_view content_type, std::string_view body,
                        int timeout_ms) override {
    http::HeaderList headers;
    if (!body.empty() || method == "POST")
      headers.emplace_back("Content-Type", std::string(content_type));
    // Every sync route is idempotent, so the client's one resend on a fresh connection
    // (a kept connection HQ closed just as it was reused) is safe here.
    auto r = client_->Request(method, base_path_ + std::string(target), body, std::move(headers),
                              timeout_ms);
    if (!r.ok()) return r.status();
    return Exchange{r->status, std::move(r->content_type), std::move(r->body)};
  }

  void Reset() override { client_->Close(); }
  std::optional<int64_t> BodyBytesWritten() const override {
    return static_cast<int64_t>(client_->counters().request_body_bytes);
  }

 private:
  std::unique_ptr<http::Client> client_;
  std::string base_path_;
};

}  // namespace

Result<std::unique_ptr<Transport>> NewHqTransport(HqEndpoint endpoint,
                                                  const std::atomic<bool>* cancel) {
  std::unique_ptr<http::Client> client;
  if (endpoint.tls) {
    http::ClientTlsOptions tls;
    tls.ca_file = endpoint.ca_file;
    tls.cert_file = endpoint.cert_file;
    tls.key_file = endpoint.key_file;
    client = std::make_unique<http::Client>(endpoint.host, endpoint.port, std::move(tls));
    if (!client->status().ok()) return client->status();
  } else {
    client = std::make_unique<http::Client>(endpoint.host, endpoint.port);
  }
  client->set_response_limit(kMaxResponseBytes);
  client->set_cancel(cancel);
  return std::unique_ptr<Transport>(
      std::make_unique<ClientTransport>(std::move(client), std::move(endpoint.base_path)));
}

std::unique_ptr<Transport> NewHttpTransport(std::string host, uint16_t port,
                                            std::string base_path) {
  HqEndpoint e;
  e.host = std::move(host);
  e.port = port;
  e.base_path = std::move(base_path);
  e.tls = false;
  return NewHqTransport(std::move(e)).value();  // plain HTTP loads no files: cannot fail
}

}  // namespace loyalty::sync
