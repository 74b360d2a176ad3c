#include "loyalty/http/address.h"

#include <algorithm>

#include <boost/asio/ip/address.hpp>

namespace loyalty::http {
namespace {

Status BadRequest(std::string message) {
  return Status::Error(ErrorCode::kBadRequest, std::move(message));
}

bool IsHostNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_';
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace

Result<std::pair<std::string, uint16_t>> ParseHostPort(std::string_view text) {
  std::string_view host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return BadRequest("'[' without ']' in address");
    host = text.substr(1, close - 1);
    std::string_view after = text.substr(close + 1);
    if (after.empty() || after.front() != ':')
      return BadRequest("address needs ':<port>' after ']'");
    port_text = after.substr(1);
    boost::system::error_code ec;
    // make_address_v6 accepts a scope id ("fe80::1%eth0"), which a listener may need.
    boost::asio::ip::make_address_v6(std::string(host), ec);
    if (ec) return BadRequest("not an IPv6 address between brackets");
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return BadRequest("address needs ':<port>'");
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return BadRequest("an IPv6 address must be written in brackets, e.g. [::1]:8787");
    }
    if (host.size() > 253) return BadRequest("host name too long");
    for (char c : host) {
      if (!IsHostNameChar(c)) return BadRequest("invalid character in host name");
    }
  }
  if (host.empty()) return BadRequest("empty host in address");
  if (port_text.empty() || port_text.size() > 5) return BadRequest("port must be 0..65535");
  uint32_t port = 0;
  for (char c : port_text) {
    if (c < '0' || c > '9') return BadRequest("port must be decimal digits");
    port = port * 10 + static_cast<uint32_t>(c - '0');
  }
  if (port > 65535) return BadRequest("port must be 0..65535");
  return std::make_pair(std::string(host), static_cast<uint16_t>(port));
}

bool IsLoopbackAddress(std::string_view host) {
  bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
  if (bracketed) host = host.substr(1, host.size() - 2);
  std::string lower = Lower(host);
  if (!bracketed && (lower == "localhost" || lower == "localhost.")) return true;
  if (host.empty() || host.size() > 64) return false;
  boost::system::error_code ec;
  auto addr = boost::asio::ip::make_address(std::string(host), ec);
  if (ec) return false;
  if (addr.is_v4()) return !bracketed && addr.to_v4().is_loopback();
  auto v6 = addr.to_v6();
  if (v6.is_loopback()) return true;
  if (v6.is_v4_mapped()) {
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, v6).is_loopback();
  }
  return false;
}

std::string ConnectionLimitKey(std::string_view address) {
  boost::system::error_code ec;
  auto addr = boost::asio::ip::make_address(std::string(address), ec);
  if (ec) return std::string(address);
  if (addr.is_v4()) return addr.to_string();
  auto v6 = addr.to_v6();
  if (v6.is_v4_mapped())
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, v6).to_string();
  auto bytes = v6.to_bytes();
  std::fill(bytes.begin() + 8, bytes.end(), 0);  // the interface identifier (and scope id) go
  return boost::asio::ip::address_v6(bytes).to_string() + "/64";
}

}  // namespace loyalty::http
