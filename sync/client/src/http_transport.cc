#include "loyalty/http/client.h"
#include "loyalty/sync/transport.h"

namespace loyalty::sync {
namespace {

constexpr size_t kMaxResponseBytes = 8 << 20;  // PROTOCOL.md: responses ≤ 8 MiB

class HttpTransport final : public Transport {
 public:
  HttpTransport(std::string host, uint16_t port, std::string base_path)
      : client_(std::move(host), port), base_path_(std::move(base_path)) {
    client_.set_response_limit(kMaxResponseBytes);
  }

  Result<Exchange> Send(std::string_view method, std::string_view target, std::string_view content_type,
                        std::string_view body, int timeout_ms) override {
    http::HeaderList headers;
    if (!body.empty() || method == "POST") headers.emplace_back("Content-Type", std::string(content_type));
    auto r = client_.Request(method, base_path_ + std::string(target), body, std::move(headers), timeout_ms);
    if (!r.ok()) return r.status();
    Exchange e;
    e.status = r->status;
    e.content_type = r->content_type;
    e.body = std::move(r->body);
    return e;
  }

  void Reset() override { client_.Close(); }

 private:
  http::Client client_;
  std::string base_path_;
};

}  // namespace

std::unique_ptr<Transport> NewHttpTransport(std::string host, uint16_t port, std::string base_path) {
  return std::make_unique<HttpTransport>(std::move(host), port, std::move(base_path));
}

std::string UrlEncode(std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                      c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace loyalty::sync
