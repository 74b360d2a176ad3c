// One HTTP answer as tests look at it. Header-only; link loyalty_http and nlohmann_json.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "loyalty/base/status.h"
#include "loyalty/http/message.h"

namespace loyalty::testing {

struct HttpReply {
  int status = 0;            // -1: no HTTP answer (raw says why)
  nlohmann::json body;       // the body parsed (discarded when it is not JSON)
  std::string raw;           // the body as received, or the error
  std::string content_type;  // as the answer named it ("" without an answer)
};

inline HttpReply ToHttpReply(const Result<http::Response>& r) {
  HttpReply out;
  if (!r.ok()) {
    out.status = -1;
    out.raw = r.status().ToString();
    return out;
  }
  out.status = r->status;
  out.raw = r->body;
  out.content_type = r->content_type;
  out.body = nlohmann::json::parse(r->body, nullptr, false);
  return out;
}

}  // namespace loyalty::testing
